"""The store after 50 random SIGKILLs under load: `hub run` with lending set up, readings and reader scans
that check tools out and back in flowing through the real Mosquitto, the hub killed at random moments
(during start-up, mid-batch, mid-loan) and restarted each time.

At the end every SQLite file passes ``PRAGMA integrity_check`` and ``foreign_key_check``, and every loan
is whole. The invariants, read straight from the store:

- a thing is out on at most one loan;
- a loan that is out (or overdue) has its hand-over time and reader, exactly one open ``borrows``
  relation of its borrower tied to it, one ``loan.out`` audit entry, and a stored scan of the thing's
  tag at that reader no later than the hand-over (nothing goes out without the scan that did it);
- a returned loan was out first (out and return times in order, readers set), has ``loan.out`` then
  ``loan.return`` in the audit log, each once, and no open ``borrows`` relation;
- every open ``borrows`` relation belongs to a loan that is out; custody on MQTT says the same.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from faultkit import HubProcess, Mosquitto, hub_config, soak_enabled, wait_for, write_config
from paho.mqtt.enums import CallbackAPIVersion

from hub.domain.model import LendPolicy, Relation, RelationKind, Thing, Visibility
from hub.storage.directory import Directory
from hub.storage.store import Store

pytestmark = pytest.mark.integration

TOOLS = {"drill": "04A1B2C3", "saw": "04D5E6F7", "ladder": "0411223344"}
CARDS = {"bob": "45C52583", "cy": "45C52584", "di": "45C52585", "ed": "45C52586"}
HELD = ("out", "overdue")


def set_up_lending(data: Path) -> None:
    """ada lends three tagged tools; four residents with cards may borrow them (walk-up loans)."""
    store = Store.open(data)
    store.migrate()
    d = Directory(store)
    now = time.time()
    ada = d.bootstrap_admin("ada", now=now)
    for name, card in CARDS.items():
        resident = d.add_resident(name, actor=ada.id, now=now)
        d.add_card(resident.id, card, actor=resident.id, now=now)
    for tool, tag in TOOLS.items():
        d.create_thing(
            Thing(id=tool, name=tool, kind="tool", visibility=Visibility.NEIGHBORS),
            owner=ada.id,
            actor=ada.id,
            now=now,
        )
        d.attach_tag(tool, tag, actor=ada.id, now=now)
        lends = Relation("", ada.id, tool, RelationKind.LENDS, policy=LendPolicy(loan_days=7))
        d.grant(lends, actor=ada.id, now=now)
    store.close()


class Load:
    """Readings of ten meters; at one reader per tool, card-then-tool check-outs and tool-alone returns."""

    def __init__(self, broker: Mosquitto, seed: int) -> None:
        self.rng = random.Random(seed)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"load-{uuid.uuid4().hex[:6]}", protocol=paho.MQTTv311
        )
        self.client.max_inflight_messages_set(1000)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.sent = Counter[str]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def _scan(self, reader: str, tag: str) -> None:
        body = json.dumps({"tag": tag, "time": time.time()})
        self.client.publish(f"neighborhood/readers/{reader}/scan", body, qos=1)
        self.sent["scans"] += 1

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            for meter in range(10):
                body = json.dumps({"power": 100.0 + seq % 50, "temperature": 20.5, "time": time.time()})
                self.client.publish(f"neighborhood/things/meter-{meter}/state", body, qos=1)
                self.sent["readings"] += 1
            tool = self.rng.choice(sorted(TOOLS))
            if self.rng.random() < 0.5:  # a card, then the tool: out (or, when it is out, back)
                self._scan(f"bench-{tool}", self.rng.choice(list(CARDS.values())))
                time.sleep(0.01)
            self._scan(f"bench-{tool}", TOOLS[tool])
            seq += 1
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()


ZYGOTE = """
import os, signal, sys
import hub.app, hub.cli  # the slow part of start-up (3-4 s on a loaded 2-core machine), paid once
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
for line in sys.stdin:
    config, log = line.rstrip("\\n").split("\\t")
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 2)
        os._exit(hub.cli.main(["run", "--config", config]))
    print(pid, flush=True)
"""


class HubRuns:
    """`hub run` started many times in quick succession: a pre-imported interpreter forks each run, which
    then executes ``hub.cli.main(["run", ...])`` exactly as the console script does, until SIGKILLed."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.zygote = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.pid = 0
        self.log = config.with_name("hub-runs.log")
        self._offset = 0

    def start(self) -> None:
        assert self.zygote.stdin is not None and self.zygote.stdout is not None
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        self.zygote.stdin.write(f"{self.config}\t{self.log}\n")
        self.zygote.stdin.flush()
        self.pid = int(self.zygote.stdout.readline())

    def output(self) -> str:
        if not self.log.exists():
            return ""
        with self.log.open(encoding="utf-8", errors="replace") as log:
            log.seek(self._offset)
            return log.read()

    @property
    def running(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        wait_for(lambda: not self.running, 10, f"hub run pid {self.pid} to die")

    def close(self) -> None:
        if self.pid and self.running:
            self.kill()
        self.zygote.kill()
        self.zygote.wait()


def distinct_scans(data: Path) -> int:
    with sqlite3.connect(f"file:{data / 'hub.sqlite'}?mode=ro", uri=True, timeout=5) as conn:
        return int(
            conn.execute("SELECT count(*) FROM (SELECT DISTINCT reader, tag, time FROM scans)").fetchone()[0]
        )


def integrity(path: Path) -> tuple[str, list[Any]]:
    with sqlite3.connect(path) as conn:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    return ok, fk


def half_done_loans(db: Path) -> list[str]:
    """Every broken loan invariant of the module docstring, as a sentence each."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    problems: list[str] = []
    now = time.time()
    tags = {
        r["thing_id"]: r["tag"]
        for r in conn.execute("SELECT thing_id, tag FROM tags WHERE thing_id IS NOT NULL")
    }
    loans = conn.execute("SELECT * FROM loans").fetchall()
    open_borrows = conn.execute(
        "SELECT * FROM relations WHERE kind = 'borrows' AND revoked_at IS NULL "
        "AND (valid_until IS NULL OR valid_until > ?)",
        (now,),
    ).fetchall()
    audit: dict[str, list[str]] = {}
    for row in conn.execute("SELECT action, detail FROM audit WHERE action LIKE 'loan.%' ORDER BY id"):
        loan_id = json.loads(row["detail"]).get("loan")
        audit.setdefault(loan_id, []).append(row["action"])
    out_per_thing = Counter(loan["thing_id"] for loan in loans if loan["state"] in HELD)
    problems += [f"{thing} is out on {n} loans" for thing, n in out_per_thing.items() if n > 1]
    for loan in loans:
        lid, state = loan["id"], loan["state"]
        ties = [r for r in open_borrows if r["loan_id"] == lid]
        steps = audit.get(lid, [])
        if state in HELD:
            if loan["out_at"] is None or loan["out_reader"] is None:
                problems.append(f"loan {lid} is {state} without hand-over time or reader")
            if len(ties) != 1 or ties[0]["resident_id"] != loan["borrower"]:
                problems.append(
                    f"loan {lid} is {state} with {len(ties)} open borrows relations of its borrower"
                )
            if steps.count("loan.out") != 1:
                problems.append(f"loan {lid} is {state} with audit {steps}")
            scan = conn.execute(
                "SELECT 1 FROM scans WHERE reader = ? AND tag = ? AND received <= ? + 1",
                (loan["out_reader"], tags.get(loan["thing_id"]), loan["out_at"]),
            ).fetchone()
            if scan is None:
                problems.append(f"loan {lid} went out at {loan['out_reader']} with no stored scan of its tag")
        elif state == "returned":
            if loan["out_at"] is None or loan["returned_at"] is None or loan["returned_at"] < loan["out_at"]:
                problems.append(f"loan {lid} returned at {loan['returned_at']} but out at {loan['out_at']}")
            if loan["out_reader"] is None or loan["return_reader"] is None:
                problems.append(f"loan {lid} returned without both scans' readers")
            if [s for s in steps if s in ("loan.out", "loan.return")] != ["loan.out", "loan.return"]:
                problems.append(f"loan {lid} returned with audit {steps}")
            if ties:
                problems.append(f"loan {lid} returned but its borrows relation is still open")
        else:
            problems.append(f"loan {lid} is {state}: only walk-up loans were made")
    held_ids = {loan["id"] for loan in loans if loan["state"] in HELD}
    problems += [
        f"borrows relation {r['id']} open for loan {r['loan_id']}, which is not out"
        for r in open_borrows
        if r["loan_id"] not in held_ids
    ]
    conn.close()
    return problems


def retained_custody(broker: Mosquitto) -> dict[str, dict[str, Any]]:
    got: dict[str, dict[str, Any]] = {}
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        if message.payload:
            got[message.topic.rsplit("/", 1)[1]] = json.loads(message.payload)

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("neighborhood/loans/+", 1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    time.sleep(1.0)
    client.disconnect()
    client.loop_stop()
    return got


def run_kills(
    tmp_path: Path, mosquitto: Mosquitto, hub_process: Any, kills: int, load_s: tuple[float, float]
):
    data = tmp_path / "data"
    set_up_lending(data)
    config = hub_config(tmp_path, mosquitto.url, client_id="hub-sigkill", flush_interval=0.1)
    config["homeassistant_discovery"] = {"enabled": False}
    path = write_config(tmp_path, config)
    rng = random.Random(7)
    runs = HubRuns(path)
    runs.start()  # the first run makes the hub's broker session: from then on the broker keeps its messages
    wait_for(lambda: "connected broker=" in runs.output(), 30, "the first run to connect")
    load = Load(mosquitto, seed=11).start()
    started = time.monotonic()
    lived: list[float] = []
    try:
        for kill in range(kills):
            if kill:
                runs.start()
            life = rng.uniform(*load_s)  # from the fork: start-up, migrations, connecting, then load
            time.sleep(life)
            assert runs.running, f"the hub died by itself:\n{runs.output()[-3000:]}"
            runs.kill()
            lived.append(life)
    finally:
        load.stop()
        runs.close()
    connected = runs.log.read_text(errors="replace").count("connected broker=")
    hub: HubProcess = hub_process(path)  # the last run, the console script: drains, then stops cleanly
    wait_for(lambda: "connected broker=" in hub.output(), 30, "the last run to connect")
    wait_for(lambda: distinct_scans(data) >= load.sent["scans"], 30, "every scan sent to be stored")
    time.sleep(1)  # the desk handles the last scans after they are stored
    assert hub.stop() == 0, hub.stderr[-3000:]
    took = time.monotonic() - started

    files = [data / "hub.sqlite", data / "timeseries.sqlite", *data.glob("spool*.sqlite")]
    checks = {f.name: integrity(f) for f in files if f.exists()}
    problems = half_done_loans(data / "hub.sqlite")
    conn = sqlite3.connect(data / "hub.sqlite")
    loans = Counter(state for (state,) in conn.execute("SELECT state FROM loans"))
    scans = conn.execute("SELECT count(*) FROM scans").fetchone()[0]
    distinct = distinct_scans(data)
    steps = conn.execute("SELECT count(*) FROM audit WHERE action IN ('loan.out', 'loan.return')").fetchone()[
        0
    ]
    handled = conn.execute("SELECT count(*) FROM handled_scans").fetchone()[0]
    redelivered = runs.log.read_text(errors="replace").count("scan handled already") + hub.output().count(
        "scan handled already"
    )
    conn.close()
    custody = retained_custody(mosquitto)
    print(
        f"\nstore under SIGKILL: {kills} kills in {took:.0f} s "
        f"(each run {min(lived):.2f}-{max(lived):.2f} s, {connected} had connected), "
        f"sent {dict(load.sent)}; stored {scans} scans ({distinct} distinct), loans {dict(loans)}; "
        f"{redelivered} handled scans delivered again and ignored; integrity {checks}"
    )
    assert checks and all(ok == "ok" and not fk for ok, fk in checks.values()), checks
    assert "hub.sqlite" in checks and "timeseries.sqlite" in checks
    assert distinct == load.sent["scans"], "a scan acknowledged by the broker was lost"
    assert scans == distinct, "a scan delivered again was stored twice"
    # every loan step here came from a scan at a reader: one mark per step means no scan acted twice
    assert handled == steps, f"{steps} loan steps from {handled} handled scans"
    assert loans["returned"] + loans["out"] > kills // 5, f"too few loans to prove anything: {dict(loans)}"
    assert not problems, "\n".join(problems)
    with sqlite3.connect(data / "hub.sqlite") as conn:
        out = {t for (t,) in conn.execute("SELECT thing_id FROM loans WHERE state IN ('out', 'overdue')")}
    for tool in TOOLS:
        assert tool in custody, f"no retained custody of {tool}"
        assert (custody[tool].get("state") in HELD) == (tool in out), (tool, custody[tool], out)


def test_50_random_sigkills_under_load_leave_the_store_whole_and_no_loan_half_done(
    tmp_path: Path, mosquitto: Mosquitto, hub_process: Any
) -> None:
    run_kills(tmp_path, mosquitto, hub_process, kills=50, load_s=(0.3, 1.5))


@pytest.mark.soak
def test_soak_500_random_sigkills_under_load(tmp_path: Path, mosquitto: Mosquitto, hub_process: Any) -> None:
    assert soak_enabled()
    run_kills(tmp_path, mosquitto, hub_process, kills=500, load_s=(0.1, 4.0))
