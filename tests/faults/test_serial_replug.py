"""A serial reader unplugged and plugged back, end to end: a pseudo-terminal plays an RDM6300 behind a
device path (a symlink, as udev's /dev/serial/by-id/... is), `hub-bridge serial` reads it and publishes
to the real Mosquitto, and `hub run` stores the scans and lends the tool.

Unplugging closes the pseudo-terminal and removes the device path; plugging back makes a new
pseudo-terminal and points a new device path at it. tests/firmware_bridges covers the bridge alone (one
log line, reader availability); here the hub must receive the scans before and after, and the time from
plugging back to the first scan stored by the hub is measured.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import tty
from pathlib import Path
from typing import Any

import pytest
from faultkit import HubProcess, Mosquitto, hub_config, wait_for, write_config

from hub.domain.model import LendPolicy, Relation, RelationKind, Thing, Visibility
from hub.storage.directory import Directory
from hub.storage.store import Store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# RDM6300 frames: STX, ten hex digits of data, two of checksum, ETX (tests/firmware_bridges captures)
BOB_CARD = ("67003B51C6", b"\x0267003B51C6CB\x03")
DRILL_TAG = ("100086F444", b"\x02100086F44426\x03")
RETRY_MAX_S = 5.0  # the bridge's longest wait between attempts to reopen the port


class UnpluggableReader:
    """A pseudo-terminal behind a device path that vanishes on unplug and comes back on plug."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.master: int | None = None
        self.plug()

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        target = os.ttyname(slave)
        os.close(slave)
        self.path.symlink_to(target)
        self.master = master

    def unplug(self) -> None:
        assert self.master is not None
        os.close(self.master)
        self.master = None
        self.path.unlink()

    def hold(self, frame: bytes, seconds: float) -> None:
        """A card held on the reader: its frame every 50 ms."""
        for _ in range(int(seconds / 0.05)):
            assert self.master is not None
            os.write(self.master, frame)
            time.sleep(0.05)


def scans_at(data: Path, reader: str, tag: str) -> int:
    try:
        with sqlite3.connect(f"file:{data / 'hub.sqlite'}?mode=ro", uri=True, timeout=5) as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM scans WHERE reader = ? AND tag = ?", (reader, tag)
                ).fetchone()[0]
            )
    except sqlite3.OperationalError:
        return 0


def loan_states(data: Path) -> list[str]:
    with sqlite3.connect(f"file:{data / 'hub.sqlite'}?mode=ro", uri=True, timeout=5) as conn:
        return [state for (state,) in conn.execute("SELECT state FROM loans ORDER BY requested_at")]


def set_up_lending(data: Path) -> None:
    """bob's card and the drill's tag are known: a card then the drill at a reader checks it out."""
    store = Store.open(data)
    store.migrate()
    d = Directory(store)
    now = time.time()
    ada = d.bootstrap_admin("ada", now=now)
    bob = d.add_resident("bob", actor=ada.id, now=now)
    d.add_card(bob.id, BOB_CARD[0], actor=bob.id, now=now)
    d.create_thing(
        Thing(id="drill", name="drill", kind="tool", visibility=Visibility.NEIGHBORS),
        owner=ada.id,
        actor=ada.id,
        now=now,
    )
    d.attach_tag("drill", DRILL_TAG[0], actor=ada.id, now=now)
    d.grant(
        Relation("", ada.id, "drill", RelationKind.LENDS, policy=LendPolicy(loan_days=7)),
        actor=ada.id,
        now=now,
    )
    store.close()


def test_reader_unplugged_and_plugged_back_scans_reach_the_hub_before_and_after(
    tmp_path: Path, mosquitto: Mosquitto, hub_process: Any
) -> None:
    data = tmp_path / "data"
    set_up_lending(data)
    config = hub_config(tmp_path, mosquitto.url, flush_interval=0.05)
    config["homeassistant_discovery"] = {"enabled": False}
    hub: HubProcess = hub_process(write_config(tmp_path, config))
    wait_for(lambda: "connected broker=" in hub.output(), 30, "the hub to connect")

    reader = UnpluggableReader(tmp_path / "ttyUSB-rdm6300")
    log = tmp_path / "bridge.log"
    with log.open("w") as err:
        bridge = subprocess.Popen(
            [sys.executable, "-m", "firmware_bridges", "serial", "--port", str(reader.path),
             "--reader", "rdm6300", "--id", "workshop", "--mqtt", mosquitto.url, "--debounce", "0.3"],
            stderr=err, stdout=subprocess.DEVNULL, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        wait_for(lambda: "connected to broker" in log.read_text(), 30, "the bridge to connect")

        # before: bob's card, then the drill, tapped at the reader, arrive as scans and lend the drill
        reader.hold(BOB_CARD[1], 0.3)
        wait_for(lambda: scans_at(data, "workshop", BOB_CARD[0]) == 1, 10, "bob's card at the hub")
        reader.hold(DRILL_TAG[1], 0.3)
        wait_for(lambda: scans_at(data, "workshop", DRILL_TAG[0]) == 1, 10, "the drill's tag at the hub")
        wait_for(lambda: loan_states(data) == ["out"], 10, "the drill to go out")

        reader.unplug()
        wait_for(lambda: "serial port lost" in log.read_text(), 10, "the bridge to notice the unplug")
        time.sleep(2.5)  # reopen attempts fail meanwhile: the device path is gone
        assert bridge.poll() is None, log.read_text()
        reader.plug()
        plugged = time.monotonic()

        # after: the drill tapped alone, held until the hub has it, brings it back
        while scans_at(data, "workshop", DRILL_TAG[0]) < 2:
            assert time.monotonic() - plugged < RETRY_MAX_S + 5, "no scan reached the hub after the re-plug"
            reader.hold(DRILL_TAG[1], 0.1)
        resumed = time.monotonic() - plugged
        wait_for(lambda: loan_states(data) == ["returned"], 10, "the drill to come back")
    finally:
        bridge.terminate()
        bridge.wait(10)
        if reader.master is not None:
            reader.unplug()
    output = log.read_text()
    print(f"\nserial re-plug: first scan stored by the hub {resumed:.2f} s after the reader was plugged back")
    assert output.count("serial port lost") == 1, "one clear message, not one per retry"
    assert "serial port back" in output
    assert resumed <= RETRY_MAX_S + 2, f"scanning resumed {resumed:.1f} s after the re-plug"
    assert scans_at(data, "workshop", DRILL_TAG[0]) == 2 and scans_at(data, "workshop", BOB_CARD[0]) == 1
    assert "Traceback" not in hub.output() + output
    assert hub.stop() == 0
