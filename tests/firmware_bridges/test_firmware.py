"""The reader station firmware (firmware_bridges/firmware/reader_station) run on CPython.

Its frame parsers are checked against every RDM6300 and PN532 capture in the shared
rfid_serial.json and against hub-bridge's own parsers on random byte streams. Its main loop is
imported with small stand-ins for the MicroPython-only hardware modules (``machine``, ``network``,
``ntptime``, ``umqtt.simple``): they do not exist on CPython, and the MQTT side of the real bridge
is tested against the real broker elsewhere.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
import time
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rfid_fixtures import load_rfid_fixtures

from firmware_bridges.readers import Rejection, Tag, make_parser, pn532

REPO = Path(__file__).resolve().parents[2]
STATION = REPO / "firmware_bridges" / "firmware" / "reader_station"
ENTRIES = load_rfid_fixtures()


def _load(name: str, module_name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, STATION / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"{STATION / name}.py not found"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fw_rdm6300 = _load("rdm6300", "reader_station_rdm6300")
fw_pn532 = _load("pn532", "reader_station_pn532")
FW_PARSERS = {"rdm6300": fw_rdm6300.Rdm6300Parser, "pn532": fw_pn532.Pn532Parser}

RDM6300_ENTRIES = [e for e in ENTRIES if "RDM6300" in e["topic"]]
PN532_ANSWERS = [e for e in ENTRIES if "PN532" in e["topic"] and e.get("direction") == "PN532->host"]
PN532_COMMANDS = [e for e in ENTRIES if "PN532" in e["topic"] and e.get("direction") == "host->PN532"]


def _ids(entry: dict) -> str:
    return entry["payload"][:29].replace(" ", "")


def _whole_and_bytewise(kind: str, data: bytes) -> list[tuple]:
    whole = FW_PARSERS[kind]().feed(data)
    parser = FW_PARSERS[kind]()
    bytewise = [event for i in range(len(data)) for event in parser.feed(data[i : i + 1])]
    assert _without_noise(bytewise) == _without_noise(whole)
    return whole


def _without_noise(events: list[tuple]) -> list[tuple]:
    return [e for e in events if e != ("reject", "noise")]


# --- the shared captures -------------------------------------------------------------------------


def test_fixture_file_holds_rdm6300_and_pn532_frames_in_both_directions() -> None:
    assert len(RDM6300_ENTRIES) >= 4
    assert len(PN532_ANSWERS) >= 4
    assert len(PN532_COMMANDS) >= 2


@pytest.mark.parametrize("entry", RDM6300_ENTRIES, ids=_ids)
def test_firmware_rdm6300_gives_the_five_data_bytes_or_rejects_the_checksum(entry: dict) -> None:
    events = _whole_and_bytewise("rdm6300", bytes.fromhex(entry["payload"]))
    if entry["checksum_valid"]:
        version = entry["meaning"]["version_or_customer_byte"].removeprefix("0x")
        card = entry["meaning"]["tag_id_32bit"].split()[0].removeprefix("0x")
        assert events == [("tag", (version + card).upper())]
    else:
        assert events == [("reject", "bad_checksum")]


@pytest.mark.parametrize("entry", RDM6300_ENTRIES, ids=_ids)
def test_firmware_rdm6300_resyncs_after_garbage_and_a_frame_cut_short(entry: dict) -> None:
    frame = bytes.fromhex(entry["payload"])
    expected = [("tag", e[1]) for e in fw_rdm6300.Rdm6300Parser().feed(frame) if e[0] == "tag"]
    events = fw_rdm6300.Rdm6300Parser().feed(b"\x31\xff\x03" + frame[:7] + frame)
    assert [e for e in events if e[0] == "tag"] == expected
    assert ("reject", "truncated_frame") in events


@pytest.mark.parametrize("entry", PN532_ANSWERS, ids=_ids)
def test_firmware_pn532_answers_parse_to_their_meaning(entry: dict) -> None:
    events = _whole_and_bytewise("pn532", bytes.fromhex(entry["payload"]))
    meaning = entry["meaning"]
    if "UID" in meaning:
        assert [e for e in events if e[0] != "frame"] == [("tag", meaning["UID"].replace(" ", ""))]
    elif meaning.get("frame") == "ACK":
        assert events == [("ack", None)]
    elif not entry["checksum_valid"]:  # wrong baud: noise, never a frame or a tag
        assert events == [("reject", "noise")]
    else:
        assert [kind for kind, _ in events] == ["frame"]
        assert events[0][1][0] == fw_pn532.TFI_CHIP


@pytest.mark.parametrize("entry", PN532_COMMANDS, ids=_ids)
def test_firmware_pn532_commands_are_byte_identical_to_captures(entry: dict) -> None:
    captured = bytes.fromhex(entry["payload"])
    command = entry["meaning"]["command"]
    if "SAMConfiguration" in command:
        assert fw_pn532.WAKEUP + fw_pn532.sam_configuration() == captured
    elif "InListPassiveTarget" in command:
        assert fw_pn532.in_list_passive_target() == captured
    else:
        pytest.fail(f"no firmware builder claims captured command {command!r}")


def test_firmware_pn532_rejects_a_frame_with_a_bad_length_or_data_checksum() -> None:
    good = bytes.fromhex("00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 07 8C FC 4F F0 00")
    bad_lcs = good[:4] + b"\xf5" + good[5:]
    bad_dcs = good[:-2] + b"\xf1\x00"
    assert _without_noise(fw_pn532.Pn532Parser().feed(bad_lcs)) == [("reject", "bad_lcs")]
    assert _without_noise(fw_pn532.Pn532Parser().feed(bad_dcs)) == [("reject", "bad_dcs")]


def test_firmware_and_bridge_build_the_same_pn532_commands() -> None:
    assert fw_pn532.rf_configuration_max_retries() == pn532.rf_configuration_max_retries()
    assert fw_pn532.ACK_FRAME == pn532.ACK
    for command in (0x02, 0x14, 0x4A):
        assert fw_pn532.build_frame(command, b"\x01\x02") == pn532.build_frame(command, b"\x01\x02")


# --- agreement with hub-bridge's parsers ---------------------------------------------------------


def _bridge_events(kind: str, data: bytes) -> list[tuple]:
    out: list[tuple] = []
    for event in make_parser(kind).feed(data):
        if isinstance(event, Tag):
            out.append(("tag", event.id))
        elif isinstance(event, Rejection):
            out.append(("reject", event.reason))
        elif isinstance(event, pn532.Ack):
            out.append(("ack", None))
        elif isinstance(event, pn532.Nack):
            out.append(("nack", None))
        elif isinstance(event, pn532.Frame):
            out.append(("frame", (event.tfi, event.command, event.params)))
        else:
            pytest.fail(f"unexpected bridge event {event!r}")
    return out


def _real_frames(kind: str) -> list[bytes]:
    if kind == "rdm6300":
        return [bytes.fromhex(e["payload"]) for e in RDM6300_ENTRIES]
    answers = [bytes.fromhex(e["payload"]) for e in PN532_ANSWERS]
    return [*answers, bytes.fromhex("00 00 FF FF 00 00"), bytes.fromhex("00 00 FF 01 FF 7F 81 00")]


def _mangled(frame: bytes) -> st.SearchStrategy[bytes]:
    """A real frame with one byte changed, or cut short: near-valid input, not only noise."""
    return st.one_of(
        st.integers(0, len(frame) - 1).flatmap(
            lambda i: st.integers(0, 255).map(lambda b: frame[:i] + bytes([b]) + frame[i + 1 :])
        ),
        st.integers(1, len(frame) - 1).map(lambda n: frame[:n]),
    )


def _chip_frame(command: int, params: bytes) -> bytes:
    body = bytes([0xD5, command]) + params
    return b"\x00\x00\xff" + bytes([len(body), -len(body) & 0xFF]) + body + bytes([-sum(body) & 0xFF, 0])


def _one_target(sel_res: int, uid: bytes, ats: bytes, tag_len_off: int) -> bytes:
    return bytes([1, 0x00, 0x04, sel_res, max(0, len(uid) + tag_len_off)]) + uid + ats


# InListPassiveTarget data near the valid: real NFCID lengths and odd ones, ATS bytes right or wrong.
target_params = st.builds(
    lambda count, targets, tail: bytes([count]) + b"".join(targets) + tail,
    st.integers(0, 3),
    st.lists(
        st.builds(
            _one_target,
            st.sampled_from([0x00, 0x08, 0x20, 0x28]),
            st.one_of(st.sampled_from([4, 7, 10]), st.integers(0, 11)).flatmap(
                lambda n: st.binary(min_size=n, max_size=n)
            ),
            st.one_of(st.just(b""), st.binary(max_size=6).map(lambda b: bytes([len(b) + 1]) + b)),
            st.sampled_from([0, 0, 0, -1, 1]),
        ),
        max_size=3,
    ),
    st.binary(max_size=3),
)
target_answers = target_params.map(lambda params: _chip_frame(0x4B, params))


def _streams(kind: str) -> st.SearchStrategy[bytes]:
    pieces = st.one_of(
        st.sampled_from(_real_frames(kind)),
        st.sampled_from(_real_frames(kind)).flatmap(_mangled),
        st.binary(max_size=30),
        *([target_answers] if kind == "pn532" else []),
    )
    return st.lists(pieces, max_size=14).map(b"".join)


def _feed_in_chunks(kind: str, data: bytes, sizes: list[int]) -> list[tuple]:
    parser = FW_PARSERS[kind]()
    events: list[tuple] = []
    pos = 0
    for i in range(len(data)):
        if pos >= len(data):
            break
        size = sizes[i % len(sizes)]
        events += parser.feed(data[pos : pos + size])
        pos += size
    return events


@pytest.mark.parametrize("kind", ["rdm6300", "pn532"])
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_firmware_parser_agrees_with_the_bridge_parser_on_random_streams(
    kind: str, data: st.DataObject
) -> None:
    stream = data.draw(_streams(kind), label="stream")
    sizes = data.draw(st.lists(st.integers(1, 20), min_size=1, max_size=20), label="read sizes")
    bridge = _without_noise(_bridge_events(kind, stream))
    assert _without_noise(FW_PARSERS[kind]().feed(stream)) == bridge
    assert _without_noise(_feed_in_chunks(kind, stream, sizes)) == bridge


@settings(max_examples=500, deadline=None)
@given(params=target_params)
def test_firmware_and_bridge_read_the_same_tags_from_any_target_data(params: bytes) -> None:
    bridge = [
        ("tag", e.id) if isinstance(e, Tag) else ("reject", e.reason) for e in pn532.targets_106a(params)
    ]
    assert fw_pn532.targets_106a(params) == bridge


@pytest.mark.parametrize("kind", ["rdm6300", "pn532"])
@settings(max_examples=200, deadline=None)
@given(junk=st.binary(max_size=600))
def test_firmware_parser_holds_at_most_one_frame_of_pending_bytes(kind: str, junk: bytes) -> None:
    parser = FW_PARSERS[kind]()
    parser.feed(junk)
    assert len(parser._buf) <= (14 if kind == "rdm6300" else 8 + 300 + 1)


# --- the main loop, with stand-ins for the hardware modules --------------------------------------


class StandInBroker:
    """What the stand-in MQTT clients talk to: up or down, and every acknowledged publish."""

    def __init__(self) -> None:
        self.up = False
        self.connects = 0
        self.attempts: list[int] = []
        self.refuse_code: int | None = None
        self.fail_next_publish = False
        self.published: list[tuple[str, bytes, bool, int]] = []
        self.will: tuple[str, bytes, bool, int] | None = None

    def payloads(self, topic: str) -> list[bytes]:
        return [p for t, p, _, _ in self.published if t == topic]


class StandInSocket:
    def __init__(self, broker: StandInBroker) -> None:
        self.broker = broker
        self.timeout: float | None = None
        self.closed = False

    def settimeout(self, value: float | None) -> None:
        self.timeout = value

    def close(self) -> None:
        self.closed = True


class StandInUart:
    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args = args
        self.kwargs = kwargs
        self.incoming = b""
        self.written: list[bytes] = []
        self.on_write = None  # a PN532 stand-in answers here

    def read(self) -> bytes | None:
        data, self.incoming = self.incoming, b""
        return data or None

    def write(self, data: bytes) -> int:
        self.written.append(bytes(data))
        if self.on_write is not None:
            self.incoming += self.on_write(bytes(data))
        return len(data)


class StandInWlan:
    def __init__(self, interface: int = 0) -> None:
        self.connected = True
        self.connect_calls = 0
        self.is_active = False

    def active(self, on: bool) -> None:
        self.is_active = on

    def isconnected(self) -> bool:
        return self.connected

    def connect(self, ssid: str, password: str) -> None:
        self.connect_calls += 1

    def ifconfig(self) -> tuple[str, str, str, str]:
        return ("192.0.2.10", "255.255.255.0", "192.0.2.1", "192.0.2.1")


class StandInWdt:
    def __init__(self, timeout: int) -> None:
        self.timeout = timeout
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1


@pytest.fixture
def station_module(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """main.py imported with the hardware modules stood in; ``.broker`` is the stand-in broker,
    ``.ntp_ok`` says whether ``ntptime.settime`` answers."""
    broker = StandInBroker()
    env = types.SimpleNamespace(broker=broker, ntp_ok=True, ntp_calls=0)

    class MQTTException(Exception):
        pass

    class MQTTClient:
        def __init__(self, client_id: str, server: str, port: int = 0, **kwargs: object) -> None:
            self.client_id = client_id
            self.server = server
            self.port = port
            self.kwargs = kwargs
            self.sock: StandInSocket | None = None
            self.will: tuple[str, bytes, bool, int] | None = None

        def set_last_will(self, topic: str, msg: bytes, retain: bool = False, qos: int = 0) -> None:
            self.will = (topic, msg, retain, qos)

        def connect(self, clean_session: bool = True) -> bool:
            broker.attempts.append(env.clock.now if hasattr(env, "clock") else 0)
            self.sock = StandInSocket(broker)
            if not broker.up:
                raise OSError(113, "EHOSTUNREACH")
            if broker.refuse_code is not None:
                raise MQTTException(broker.refuse_code)
            broker.connects += 1
            broker.will = self.will
            return False

        def _alive(self) -> None:
            if not broker.up or self.sock is None or self.sock.closed:
                raise OSError(104, "ECONNRESET")

        def publish(self, topic: str, msg: bytes | str, retain: bool = False, qos: int = 0) -> None:
            self._alive()
            if broker.fail_next_publish:  # the broker went away before its PUBACK
                broker.fail_next_publish = False
                broker.up = False
                raise OSError(110, "ETIMEDOUT")
            payload = msg.encode() if isinstance(msg, str) else bytes(msg)
            broker.published.append((topic, payload, retain, qos))

        def ping(self) -> None:
            self._alive()

        def check_msg(self) -> None:
            self._alive()

    def settime() -> None:
        env.ntp_calls += 1
        if not env.ntp_ok:
            raise OSError(110, "ETIMEDOUT")

    umqtt = types.ModuleType("umqtt")
    simple = types.ModuleType("umqtt.simple")
    simple.MQTTClient = MQTTClient  # type: ignore[attr-defined]
    simple.MQTTException = MQTTException  # type: ignore[attr-defined]
    umqtt.simple = simple  # type: ignore[attr-defined]
    machine = types.ModuleType("machine")
    machine.UART = StandInUart  # type: ignore[attr-defined]
    machine.WDT = StandInWdt  # type: ignore[attr-defined]
    network = types.ModuleType("network")
    network.STA_IF = 0  # type: ignore[attr-defined]
    network.WLAN = StandInWlan  # type: ignore[attr-defined]
    ntptime = types.ModuleType("ntptime")
    ntptime.host = "pool.ntp.org"  # type: ignore[attr-defined]
    ntptime.settime = settime  # type: ignore[attr-defined]
    for name, module in {
        "umqtt": umqtt,
        "umqtt.simple": simple,
        "machine": machine,
        "network": network,
        "ntptime": ntptime,
        "rdm6300": fw_rdm6300,
        "pn532": fw_pn532,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    env.main = _load("main", "reader_station_main")
    env.MQTTException = MQTTException
    return env


def _config(**overrides: object) -> types.SimpleNamespace:
    values: dict[str, object] = {
        "WIFI_SSID": "street",
        "WIFI_PASSWORD": "wifi-secret",
        "MQTT_HOST": "192.0.2.1",
        "MQTT_PASSWORD": "reader-secret",
        "READER_ID": "workshop-door",
    }
    values.update(overrides)
    return types.SimpleNamespace(**values)


class Station:
    """A station built from main.py's classes around stand-ins, with a hand-driven clock."""

    def __init__(self, env: types.SimpleNamespace, reader: str = "rdm6300", **config: object) -> None:
        main = env.main

        class ManualClock(main.Clock):  # type: ignore[misc,name-defined]
            """The real Clock's NTP and epoch logic; ticks advance only when the test says so."""

            def __init__(self) -> None:
                super().__init__()
                self.now = 100_000

            def ticks_ms(self) -> int:
                return self.now

            def diff(self, later: int, earlier: int) -> int:
                return later - earlier

            def sleep_ms(self, ms: int) -> None:
                self.now += ms

        self.main = main
        self.env = env
        self.settings = main.Settings(_config(READER=reader, **config))
        self.clock = ManualClock()
        env.clock = self.clock
        self.uart = StandInUart()
        self.wlan = StandInWlan()
        self.wdt = StandInWdt(30_000)
        self.probes: list[tuple[str, int]] = []
        reader_obj = (
            main.Rdm6300Reader(self.uart) if reader == "rdm6300" else main.Pn532Reader(self.uart, self.clock)
        )
        wifi = main.WifiLink(self.wlan, "street", "wifi-secret", main.Backoff(self.clock, 10_000, 60_000))
        broker = main.BrokerLink(
            self.settings,
            lambda: sys.modules["umqtt.simple"].MQTTClient(
                main.client_id(self.settings), self.settings.mqtt_host, port=self.settings.mqtt_port
            ),
            main.Backoff(self.clock, 1000, 60_000),
            self.clock,
            probe=lambda host, port: self.probes.append((host, port)),
        )
        self.station = main.Station(self.settings, reader_obj, wifi, broker, self.clock, self.wdt)

    def run(self, ms: int, every: int = 10) -> None:
        for _ in range(ms // every):
            self.station.step()
            self.clock.sleep_ms(every)

    def present(self, frame: bytes, ms: int = 200) -> None:
        """A card held to an RDM6300 for ``ms``: it repeats its frame every 50 ms."""
        for _ in range(max(1, ms // 50)):
            self.uart.incoming += frame
            self.run(50)

    def scans(self) -> list[dict]:
        return [json.loads(p) for p in self.env.broker.payloads(self.settings.scan_topic)]


def _rdm6300_frame(data: bytes) -> bytes:
    checksum = 0
    for b in data:
        checksum ^= b
    return b"\x02" + (data.hex().upper() + f"{checksum:02X}").encode() + b"\x03"


TAGS = [bytes([0x01, 0x00, 0x07, 0x34, n]) for n in range(0xE0, 0xE8)]


def test_scans_queued_while_broker_down_are_published_in_order_after_reconnect(station_module) -> None:
    s = Station(station_module)
    for data in TAGS[:3]:
        s.present(_rdm6300_frame(data))
        s.run(1500)
    assert s.scans() == []
    assert len(s.station.queue) == 3
    station_module.broker.up = True
    s.run(70_000)
    assert [scan["tag"] for scan in s.scans()] == [d.hex().upper() for d in TAGS[:3]]
    assert len(s.station.queue) == 0
    assert station_module.broker.connects == 1
    assert all(
        qos == 1 and not retain for t, _, retain, qos in station_module.broker.published if "scan" in t
    )


def test_connect_sets_offline_will_and_publishes_online_retained_before_scans(station_module) -> None:
    s = Station(station_module)
    s.present(_rdm6300_frame(TAGS[0]))  # the first attempt meets a broker that is down
    station_module.broker.up = True
    s.run(1500)
    availability = "neighborhood/readers/workshop-door/availability"
    assert station_module.broker.will == (availability, b"offline", True, 1)
    first, second = station_module.broker.published[:2]
    assert first == (availability, b"online", True, 1)
    assert second[0] == "neighborhood/readers/workshop-door/scan"


def test_queue_drops_the_oldest_scans_past_its_bound_and_counts_them(station_module) -> None:
    s = Station(station_module, QUEUE_SIZE=3)
    for data in TAGS[:5]:
        s.present(_rdm6300_frame(data))
    assert s.station.queue.dropped == 2
    station_module.broker.up = True
    s.run(70_000)
    assert [scan["tag"] for scan in s.scans()] == [d.hex().upper() for d in TAGS[2:5]]


def test_scan_whose_publish_is_not_acknowledged_stays_queued_and_goes_out_after_reconnect(
    station_module,
) -> None:
    s = Station(station_module)
    station_module.broker.up = True
    s.run(100)
    station_module.broker.fail_next_publish = True
    s.present(_rdm6300_frame(TAGS[0]))
    assert s.scans() == []
    assert len(s.station.queue) == 1
    station_module.broker.up = True
    s.run(5000)
    assert [scan["tag"] for scan in s.scans()] == [TAGS[0].hex().upper()]
    assert station_module.broker.connects == 2


def test_scan_payload_is_exactly_tag_and_epoch_seconds_once_ntp_has_set_the_clock(station_module) -> None:
    s = Station(station_module)
    station_module.broker.up = True
    s.present(_rdm6300_frame(TAGS[0]))
    s.run(100)
    (scan,) = s.scans()
    assert set(scan) == {"tag", "time"}
    assert scan["tag"] == "01000734E0"
    assert isinstance(scan["time"], int)
    assert abs(scan["time"] - int(time.time())) <= 5


def test_scan_time_is_left_out_while_ntp_does_not_answer(station_module) -> None:
    station_module.ntp_ok = False
    s = Station(station_module)
    station_module.broker.up = True
    s.present(_rdm6300_frame(TAGS[0]))
    s.run(100)
    assert station_module.ntp_calls >= 1
    assert s.scans() == [{"tag": "01000734E0"}]


def test_scan_made_before_the_clock_was_set_is_back_dated_when_ntp_answers_later(station_module) -> None:
    s = Station(station_module)
    s.wlan.connected = False
    s.present(_rdm6300_frame(TAGS[0]))
    s.run(30_000, every=100)
    s.wlan.connected = True
    station_module.broker.up = True
    s.run(200)
    (scan,) = s.scans()
    expected = int(time.time()) - 30
    assert abs(scan["time"] - expected) <= 2


def test_tag_held_on_the_reader_is_one_scan_and_lifting_it_for_over_a_second_makes_another(
    station_module,
) -> None:
    s = Station(station_module)
    station_module.broker.up = True
    s.present(_rdm6300_frame(TAGS[0]), ms=3000)
    s.present(_rdm6300_frame(TAGS[1]), ms=100)  # another tag is not held back by the first
    assert s.station.scans == 2
    s.run(800)
    s.present(_rdm6300_frame(TAGS[0]), ms=100)  # back within a second: still the same presentation
    assert s.station.scans == 2
    s.run(1200)
    s.present(_rdm6300_frame(TAGS[0]), ms=100)
    assert [scan["tag"] for scan in s.scans()] == ["01000734E0", "01000734E1", "01000734E0"]


def test_bad_frames_are_counted_by_reason_and_never_published(station_module) -> None:
    s = Station(station_module)
    station_module.broker.up = True
    bad = bytes.fromhex("02 30 32 30 30 34 44 42 30 30 35 46 43 03")  # captured bad checksum
    s.present(bad, ms=500)
    assert s.station.rejections == {"bad_checksum": 10}
    assert s.scans() == []


def test_mqtt_reconnect_attempts_back_off_exponentially_up_to_a_minute(station_module) -> None:
    s = Station(station_module)
    s.run(200_000, every=100)
    start = station_module.broker.attempts[0]
    gaps = [b - a for a, b in itertools.pairwise(station_module.broker.attempts)]
    assert start == 100_000
    # Each gap is the delay rounded up to the loop's 100 ms steps.
    assert [round(g / 1000) for g in gaps[:7]] == [1, 2, 4, 8, 16, 32, 60]
    assert all(round(g / 1000) == 60 for g in gaps[6:])
    assert len(s.probes) == len(station_module.broker.attempts)


def test_refused_credentials_are_reported_with_the_config_keys_to_fix(station_module, capsys) -> None:
    s = Station(station_module)
    station_module.broker.up = True
    station_module.broker.refuse_code = 4
    s.run(100)
    out = capsys.readouterr().out
    assert "refused the connection: bad user name or password (config.py MQTT_USER, MQTT_PASSWORD)" in out
    assert s.scans() == []


def test_wifi_is_reconnected_with_backoff_while_scans_keep_queueing(station_module) -> None:
    s = Station(station_module)
    s.wlan.connected = False
    s.present(_rdm6300_frame(TAGS[0]))
    s.run(35_000, every=100)
    # Attempts at 0 s, 10 s and 30 s: the association runs in the background between them.
    assert s.wlan.connect_calls == 3
    assert len(s.station.queue) == 1
    assert station_module.broker.attempts == []
    s.wlan.connected = True
    station_module.broker.up = True
    s.run(100)
    assert [scan["tag"] for scan in s.scans()] == ["01000734E0"]


def test_broker_closing_the_connection_is_noticed_between_scans_and_reconnected(station_module) -> None:
    s = Station(station_module)
    station_module.broker.up = True
    s.run(100)
    station_module.broker.up = False
    s.run(100)
    assert not s.station.broker.connected
    station_module.broker.up = True
    s.run(1500)
    assert s.station.broker.connected
    assert station_module.broker.connects == 2


def test_watchdog_is_fed_on_every_step(station_module) -> None:
    s = Station(station_module)
    s.run(1000)
    assert s.wdt.feeds == 100


PN532_CARD = bytes.fromhex("00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 07 8C FC 4F F0 00")
PN532_NO_CARD = bytes.fromhex("00 00 FF 03 FD D5 4B 00 E0 00")


def _pn532_chip(card: list[bool]):
    """A PN532 answering over HSU: ACK then the answer to each command; ``card[0]`` says whether a
    card lies on it. Commands it does not know go unanswered."""

    def answer(frame: bytes) -> bytes:
        frame = frame.removeprefix(fw_pn532.WAKEUP)
        if frame == fw_pn532.sam_configuration():
            return fw_pn532.ACK_FRAME + bytes.fromhex("00 00 FF 02 FE D5 15 16 00")
        if frame == fw_pn532.rf_configuration_max_retries():
            return fw_pn532.ACK_FRAME + bytes.fromhex("00 00 FF 02 FE D5 33 F8 00")
        if frame == fw_pn532.in_list_passive_target():
            return fw_pn532.ACK_FRAME + (PN532_CARD if card[0] else PN532_NO_CARD)
        return b""

    return answer


def test_pn532_station_wakes_configures_and_polls_and_publishes_the_card_once(station_module) -> None:
    s = Station(station_module, reader="pn532")
    card = [False]
    s.uart.on_write = _pn532_chip(card)
    station_module.broker.up = True
    s.run(1000)
    assert s.uart.written[0] == fw_pn532.WAKEUP + fw_pn532.sam_configuration()
    assert s.uart.written[1] == fw_pn532.rf_configuration_max_retries()
    assert set(s.uart.written[2:]) == {fw_pn532.in_list_passive_target()}
    assert len(s.uart.written) > 5  # polled again and again
    card[0] = True
    s.run(3000)
    assert [scan["tag"] for scan in s.scans()] == ["078CFC4F"]


def test_silent_pn532_is_woken_again_every_two_seconds_and_aborted_commands_acked(station_module) -> None:
    s = Station(station_module, reader="pn532")
    s.run(2400)
    assert s.uart.written == [fw_pn532.WAKEUP + fw_pn532.sam_configuration(), fw_pn532.ACK_FRAME]
    s.run(2700)
    wakeups = [w for w in s.uart.written if w.startswith(fw_pn532.WAKEUP)]
    assert len(wakeups) == 3  # at 0 s, then each 0.5 s ACK timeout plus a 2 s pause
    assert s.uart.written.count(fw_pn532.ACK_FRAME) >= 2


def test_pn532_that_stops_answering_is_woken_and_configured_again(station_module) -> None:
    s = Station(station_module, reader="pn532")
    card = [False]
    chip = _pn532_chip(card)
    s.uart.on_write = chip
    s.run(2500)  # a chip that fell silent again is retried after a 2 s pause
    assert s.station.reader.configured
    s.uart.on_write = lambda frame: b""
    s.run(2000)
    assert not s.station.reader.configured
    s.uart.on_write = chip
    s.run(2500)  # a chip that fell silent again is retried after a 2 s pause
    assert s.station.reader.configured


def test_config_without_a_password_names_the_key(station_module) -> None:
    with pytest.raises(station_module.main.ConfigError, match="MQTT_PASSWORD is required"):
        station_module.main.Settings(_config(MQTT_PASSWORD=""))


@pytest.mark.parametrize("reader_id", ["", "door 1", "-door", "door/1", "tür", "d" * 65])
def test_config_rejects_reader_ids_the_hub_would_reject(station_module, reader_id: str) -> None:
    with pytest.raises(station_module.main.ConfigError, match="READER_ID"):
        station_module.main.Settings(_config(READER_ID=reader_id))


def test_config_defaults_mqtt_user_to_the_reader_id_and_topics_to_the_hub_scheme(station_module) -> None:
    settings = station_module.main.Settings(_config(BASE_TOPIC="street7", READER_ID="door:1"))
    assert settings.mqtt_user == "door:1"
    assert settings.scan_topic == "street7/readers/door:1/scan"
    assert settings.availability_topic == "street7/readers/door:1/availability"


def test_clock_gives_no_epoch_until_ntp_has_set_it(station_module) -> None:
    clock = station_module.main.Clock()
    assert clock.epoch() is None
    station_module.ntp_ok = False
    assert not clock.sync("pool.ntp.org")
    assert clock.epoch() is None
    station_module.ntp_ok = True
    assert clock.sync("ntp.example.org")
    assert sys.modules["ntptime"].host == "ntp.example.org"
    assert clock.epoch() >= 1577836800


def test_build_wires_uart2_at_the_reader_baud_the_watchdog_and_station_wifi(
    station_module, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MicroPython's time module adds ms ticks; CPython's has none.
    monkeypatch.setattr(time, "ticks_ms", lambda: 5, raising=False)
    monkeypatch.setattr(time, "ticks_diff", lambda a, b: a - b, raising=False)
    main = station_module.main
    station = main.build(main.Settings(_config(READER="pn532", WATCHDOG_MS=45000)))
    uart = station.reader._uart
    assert uart.args == (2,)
    assert uart.kwargs | {"rx": 16, "tx": 17, "baudrate": 115200} == uart.kwargs
    assert station.watchdog.timeout == 45000
    assert station.wifi._wlan.is_active
    rdm = main.build(main.Settings(_config(WATCHDOG_MS=0)))
    assert rdm.reader._uart.kwargs["baudrate"] == 9600
    assert rdm.watchdog is None


def test_example_config_has_no_usable_password_and_is_valid_once_one_is_set(station_module) -> None:
    example = _load("config.example", "reader_station_config_example")
    with pytest.raises(station_module.main.ConfigError, match="MQTT_PASSWORD"):
        station_module.main.Settings(example)
    example.MQTT_PASSWORD = "made-at-set-up"
    settings = station_module.main.Settings(example)
    assert settings.scan_topic == f"neighborhood/readers/{example.READER_ID}/scan"
    assert (settings.uart_id, settings.uart_rx, settings.uart_tx) == (2, 16, 17)
