"""``hub-bridge serial`` end to end: a pseudo-terminal playing the reader → the bridge process →
the real Mosquitto → a subscriber that must receive exactly the expected scans."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable

import pytest
from bridgekit import BridgeProcess, PtyReader, Subscriber

pytestmark = pytest.mark.integration

RDM_CARD = b"\x0267003B51C6CB\x03"
RDM_CARD_2 = b"\x02100086F44426\x03"
RDM_CLONE_BAD_CHECKSUM = b"\x0202004DB005FC\x03"
# PN532 frames as captured (shared rfid_serial.json)
PN532_ACK = bytes.fromhex("00 00 FF 00 FF 00")
PN532_SAM_OK = bytes.fromhex("00 00 FF 02 FE D5 15 16 00")
PN532_CARD = bytes.fromhex("00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 07 8C FC 4F F0 00")
PN532_NO_CARD = bytes.fromhex("00 00 FF 03 FD D5 4B 00 E0 00")
PN532_IN_LIST_PASSIVE_TARGET = bytes.fromhex("00 00 FF 04 FC D4 4A 01 00 E1 00")

SCAN = "neighborhood/readers/{}/scan"
AVAILABILITY = "neighborhood/readers/{}/availability"


def present_rdm6300(reader: PtyReader, frame: bytes, seconds: float) -> None:
    """A card held on an RDM6300: the same frame every 50 ms."""
    for _ in range(int(seconds / 0.05)):
        reader.write(frame)
        time.sleep(0.05)


def assert_scan(payload: bytes, tag: str, after: float) -> None:
    message = json.loads(payload)
    assert set(message) == {"tag", "time"}
    assert message["tag"] == tag
    assert isinstance(message["time"], float)
    assert after <= message["time"] <= time.time()


def start_bridge(run_bridge: Callable[..., BridgeProcess], mosquitto, reader: PtyReader, kind: str, rid: str):
    return run_bridge(
        "serial", "--port", str(reader.link), "--reader", kind, "--id", rid, "--mqtt", mosquitto.url,
        "--log-level", "DEBUG",
    )  # fmt: skip


def test_rdm6300_held_card_is_one_scan_and_bad_checksum_frames_none(
    mosquitto, pty_reader: PtyReader, subscribe: Callable[..., Subscriber], run_bridge
) -> None:
    sub = subscribe(mosquitto.host, mosquitto.port, "neighborhood/readers/#")
    bridge = start_bridge(run_bridge, mosquitto, pty_reader, "rdm6300", "door")
    sub.wait_for(AVAILABILITY.format("door"), b"online", timeout=10)

    present_rdm6300(pty_reader, RDM_CLONE_BAD_CHECKSUM, 0.5)
    started = time.time()
    present_rdm6300(pty_reader, RDM_CARD, 1.5)  # 30 identical frames

    assert_scan(sub.next(SCAN.format("door"), timeout=5), "67003B51C6", after=started)
    assert sub.collect(SCAN.format("door"), seconds=1.5) == []

    assert bridge.terminate() == 0
    sub.wait_for(AVAILABILITY.format("door"), b"offline", timeout=5)
    assert "reason=bad_checksum" in bridge.output
    assert "scans=1 published=1" in bridge.output


def test_rdm6300_card_lifted_and_presented_again_is_a_second_scan(
    mosquitto, pty_reader: PtyReader, subscribe: Callable[..., Subscriber], run_bridge
) -> None:
    sub = subscribe(mosquitto.host, mosquitto.port, "neighborhood/readers/#")
    bridge = run_bridge(
        "serial", "--port", str(pty_reader.link), "--reader", "rdm6300", "--id", "shed",
        "--mqtt", mosquitto.url, "--debounce", "0.3",
    )  # fmt: skip
    sub.wait_for(AVAILABILITY.format("shed"), b"online", timeout=10)
    present_rdm6300(pty_reader, RDM_CARD, 0.5)
    time.sleep(0.6)  # lifted for longer than the debounce window
    present_rdm6300(pty_reader, RDM_CARD, 0.5)
    scans = [json.loads(p)["tag"] for p in sub.collect(SCAN.format("shed"), seconds=3)]
    assert scans == ["67003B51C6", "67003B51C6"]
    bridge.terminate()


class Pn532Chip(threading.Thread):
    """Plays a PN532 on the master side: reads the bridge's commands, checks their LCS/DCS, and
    answers each with ACK then the captured response frame."""

    def __init__(self, reader: PtyReader) -> None:
        super().__init__(daemon=True)
        self.reader = reader
        self.card_present = threading.Event()
        self.stopped = threading.Event()
        self.received = bytearray()
        self.commands: list[int] = []
        self.bad_checksums = 0

    def run(self) -> None:
        buf = bytearray()
        while not self.stopped.is_set():
            data = self.reader.read(0.05)
            self.received += data
            buf += data
            while (start := buf.find(b"\x00\x00\xff")) >= 0 and len(buf) >= start + 6:
                length, lcs = buf[start + 3], buf[start + 4]
                if (length, lcs) == (0, 0xFF):  # the host's ACK: abort
                    del buf[: start + 6]
                    self.commands.append(-1)
                    continue
                end = start + 5 + length + 2
                if len(buf) < end:
                    break
                body, dcs = bytes(buf[start + 5 : start + 5 + length]), buf[start + 5 + length]
                del buf[:end]
                if (length + lcs) & 0xFF or (sum(body) + dcs) & 0xFF or body[0] != 0xD4:
                    self.bad_checksums += 1
                    continue
                self.commands.append(body[1])
                self.answer(body[1])

    def answer(self, command: int) -> None:
        if command == 0x14:
            self.reader.write(PN532_ACK)
            self.reader.write(PN532_SAM_OK)
        elif command == 0x32:  # RFConfiguration: empty answer D5 33
            self.reader.write(PN532_ACK + bytes.fromhex("00 00 FF 02 FE D5 33 F8 00"))
        elif command == 0x4A:
            if self.card_present.is_set():
                self.reader.write(PN532_ACK)
                self.reader.write(PN532_CARD)
            else:  # as captured: ACK and the empty answer in one chunk
                self.reader.write(PN532_ACK + PN532_NO_CARD)


def test_pn532_polled_over_hsu_card_is_one_scan_of_its_nfcid(
    mosquitto, pty_reader: PtyReader, subscribe: Callable[..., Subscriber], run_bridge
) -> None:
    chip = Pn532Chip(pty_reader)
    chip.start()
    sub = subscribe(mosquitto.host, mosquitto.port, "neighborhood/readers/#")
    bridge = start_bridge(run_bridge, mosquitto, pty_reader, "pn532", "library")
    try:
        sub.wait_for(AVAILABILITY.format("library"), b"online", timeout=10)
        deadline = time.monotonic() + 10
        while chip.commands.count(0x4A) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sub.collect(SCAN.format("library"), seconds=0.5) == []  # empty field: no scan

        started = time.time()
        chip.card_present.set()
        time.sleep(1.2)  # lies on the reader for several polls
        chip.card_present.clear()
        assert_scan(sub.next(SCAN.format("library"), timeout=5), "078CFC4F", after=started)
        assert sub.collect(SCAN.format("library"), seconds=1.5) == []

        bridge.process.send_signal(signal.SIGINT)
        assert bridge.process.wait(timeout=10) == 0
    finally:
        chip.stopped.set()
        chip.join(timeout=2)
    assert chip.received.startswith(b"\x55\x55"), "wake-up preamble first"
    assert chip.commands[:2] == [0x14, 0x32], "SAMConfiguration, then RFConfiguration, before polling"
    assert chip.commands.count(0x4A) >= 10, "the bridge keeps polling"
    assert PN532_IN_LIST_PASSIVE_TARGET in chip.received
    assert chip.bad_checksums == 0


def test_unplugged_reader_goes_offline_and_recovers_when_plugged_back(
    mosquitto, pty_reader: PtyReader, subscribe: Callable[..., Subscriber], run_bridge
) -> None:
    sub = subscribe(mosquitto.host, mosquitto.port, "neighborhood/readers/#")
    bridge = start_bridge(run_bridge, mosquitto, pty_reader, "rdm6300", "gate")
    sub.wait_for(AVAILABILITY.format("gate"), b"online", timeout=10)
    present_rdm6300(pty_reader, RDM_CARD, 0.3)
    assert json.loads(sub.next(SCAN.format("gate"), timeout=5))["tag"] == "67003B51C6"

    pty_reader.unplug()
    sub.wait_for(AVAILABILITY.format("gate"), b"offline", timeout=5)
    time.sleep(2.5)  # several reopen attempts fail meanwhile
    pty_reader.plug()
    sub.wait_for(AVAILABILITY.format("gate"), b"online", timeout=15)

    started = time.time()
    present_rdm6300(pty_reader, RDM_CARD_2, 0.3)
    assert_scan(sub.next(SCAN.format("gate"), timeout=5), "100086F444", after=started)
    assert bridge.terminate() == 0
    assert bridge.process.returncode == 0
    assert bridge.output.count("serial port lost") == 1, "one clear message, not one per retry"
    assert "serial port back" in bridge.output


def test_scans_during_broker_outage_are_queued_and_published_after_reconnect(
    mosquitto, pty_reader: PtyReader, subscribe: Callable[..., Subscriber], run_bridge
) -> None:
    sub = subscribe(mosquitto.host, mosquitto.port, "neighborhood/readers/+/scan", session="outage-sub")
    bridge = start_bridge(run_bridge, mosquitto, pty_reader, "rdm6300", "pantry")
    deadline = time.monotonic() + 10
    while "connected to broker" not in bridge.output and time.monotonic() < deadline:
        time.sleep(0.05)

    mosquitto.stop()
    during = time.time()
    present_rdm6300(pty_reader, RDM_CARD, 0.3)
    present_rdm6300(pty_reader, RDM_CARD_2, 0.3)
    before_restart = time.time()
    time.sleep(1.0)
    mosquitto.start()

    first = json.loads(sub.next(SCAN.format("pantry"), timeout=40))
    second = json.loads(sub.next(SCAN.format("pantry"), timeout=10))
    assert [first["tag"], second["tag"]] == ["67003B51C6", "100086F444"]
    assert during <= first["time"] <= second["time"] <= before_restart  # scanned during the outage
    assert bridge.terminate() == 0
    assert "lost broker" in bridge.output


def test_pn532_that_never_answers_is_reported_and_retried(
    pty_reader: PtyReader, mosquitto, run_bridge
) -> None:
    bridge = start_bridge(run_bridge, mosquitto, pty_reader, "pn532", "silent")
    deadline = time.monotonic() + 10
    while "no answer from PN532" not in bridge.output and time.monotonic() < deadline:
        pty_reader.read(0.1)  # drain what the bridge sends; nobody answers
    assert f"no answer from PN532 port={pty_reader.link}" in bridge.output
    assert "--baud" in bridge.output
    assert bridge.process.poll() is None
    assert bridge.terminate() == 0
