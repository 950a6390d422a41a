"""The native scheme (DESIGN §5): readings, availability, scans, and every way a payload can be wrong."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.events import Availability, Ignored, Reading, Rejected, Scan
from hub.ingest.native import NativeDecoder
from hub.ingest.router import Router

NOW = 1_790_000_000.0  # 2026-09-21


@pytest.fixture
def router() -> Router:
    return Router([NativeDecoder("neighborhood")], max_payload_bytes=4096)


def route(router: Router, topic: str, payload: bytes | str, received: float = NOW) -> list:
    data = payload.encode() if isinstance(payload, str) else payload
    return router.route(topic, data, received)


def test_state_becomes_reading_with_canonical_values(router: Router) -> None:
    [event] = route(
        router, "neighborhood/things/air-1/state", '{"pm25": 12.5, "temperature": 21, "water_leak": false}'
    )
    assert event == Reading("air-1", "native", {"pm25": 12.5, "temperature": 21.0, "water_leak": False})
    assert isinstance(event.values["temperature"], float)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1_789_999_990, 1_789_999_990.0),
        (1_789_999_990_500, 1_789_999_990.5),
        ('"2026-09-21T13:50:00Z"', 1_789_999_800.0),
        ('"2026-09-21T15:50:00+02:00"', 1_789_999_800.0),
        ('"2026-09-21T13:50:00.250"', 1_789_999_800.25),
    ],
)
def test_device_time_as_epoch_seconds_ms_or_iso(router: Router, raw: object, expected: float) -> None:
    [event] = route(router, "neighborhood/things/t/state", f'{{"temperature": 1, "time": {raw}}}')
    assert isinstance(event, Reading)
    assert event.time == pytest.approx(expected)


def test_time_from_a_pi_booted_in_1970_is_replaced_by_arrival(router: Router) -> None:
    [event] = route(router, "neighborhood/things/t/state", '{"temperature": 1, "time": 42}')
    assert isinstance(event, Reading) and event.time is None


def test_time_far_in_the_future_is_replaced_by_arrival(router: Router) -> None:
    [event] = route(router, "neighborhood/things/t/state", f'{{"temperature": 1, "time": {NOW + 86400}}}')
    assert isinstance(event, Reading) and event.time is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b'{"temperature": NaN}', "bad_number"),
        (b'{"temperature": Infinity}', "bad_number"),
        (b'{"temperature": -Infinity}', "bad_number"),
        (b'{"temperature": "21.5"}', "bad_value"),
        (b'{"temperature": true}', "bad_value"),
        (b'{"temperature": null}', "bad_value"),
        (b'{"temperature": 1e999}', "bad_value"),
        (b'{"water_leak": "yes"}', "bad_value"),
        (b'{"water_leak": 1}', "bad_value"),
        (b'{"temp": 21}', "unknown_measurement"),
        (b"{}", "no_values"),
        (b'{"time": 1790000000}', "no_values"),
        (b'{"temperature": 1, "time": "yesterday"}', "bad_time"),
        (b"\xff\xfe{}", "not_utf8"),
        (b'{"temperature": 2', "not_json"),
        (b"", "not_json"),
    ],
)
def test_bad_state_payloads_are_rejected_with_reason(router: Router, payload: bytes, reason: str) -> None:
    [event] = route(router, "neighborhood/things/t/state", payload)
    assert isinstance(event, Rejected)
    assert event.reason == reason
    assert event.detail


def test_trailing_nul_from_c_firmware_is_tolerated(router: Router) -> None:
    [event] = route(router, "neighborhood/things/t/state", b'{"humidity": 40}\x00')
    assert event == Reading("t", "native", {"humidity": 40.0})


def test_oversized_payload_rejected_before_parsing(router: Router) -> None:
    [event] = route(router, "neighborhood/things/t/state", b'{"noise": 1, "x": "' + b"a" * 5000 + b'"}')
    assert isinstance(event, Rejected) and event.reason == "too_large"


@pytest.mark.parametrize(("payload", "online"), [("online", True), ("offline", False), ("online\n", True)])
def test_availability(router: Router, payload: str, online: bool) -> None:
    assert route(router, "neighborhood/things/flood/availability", payload) == [
        Availability("flood", "native", online)
    ]


def test_availability_other_words_rejected(router: Router) -> None:
    [event] = route(router, "neighborhood/things/flood/availability", "Online-ish")
    assert isinstance(event, Rejected) and event.reason == "bad_value"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("01000734e0", "01000734E0"),
        ("C2:99:4A:1B", "C2994A1B"),
        ("45 C5 25 83", "45C52583"),
        ("W26:1392146", "W26:1392146"),
    ],
)
def test_scan_tags_normalised(router: Router, tag: str, expected: str) -> None:
    [event] = route(router, "neighborhood/readers/workshop/scan", json.dumps({"tag": tag, "time": NOW - 1}))
    assert event == Scan("workshop", "native", expected, NOW - 1)


@pytest.mark.parametrize("tag", ["EDBA996", "xyz", "", 1234, None, "0" * 22])
def test_scan_bad_tag_rejected_not_guessed(router: Router, tag: object) -> None:
    [event] = route(router, "neighborhood/readers/workshop/scan", json.dumps({"tag": tag}))
    assert isinstance(event, Rejected) and event.reason == "bad_tag"


def test_invalid_thing_id_rejected(router: Router) -> None:
    [event] = route(router, "neighborhood/things/bad id!/state", '{"noise": 40}')
    assert isinstance(event, Rejected) and event.reason == "bad_id"


@pytest.mark.parametrize(
    "topic",
    [
        "neighborhood/things/x/set",
        "neighborhood/things/x",
        "other/things/x/state",
        "neighborhood/things/x/state/extra",
        "neighborhood/hub/status",
    ],
)
def test_foreign_topics_are_ignored(router: Router, topic: str) -> None:
    [event] = route(router, topic, '{"noise": 40}')
    assert isinstance(event, Ignored)


def test_custom_base_topic_with_levels() -> None:
    router = Router([NativeDecoder("street/42")])
    [event] = route(router, "street/42/things/door/state", '{"contact": true}')
    assert event == Reading("door", "native", {"contact": True})
    assert [s.topic for s in router.subscriptions()] == [
        "street/42/things/+/state",
        "street/42/things/+/availability",
        "street/42/readers/+/scan",
    ]


def _fixture_payloads() -> list[bytes]:
    folder = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "payloads"
    if not folder.is_dir():
        pytest.fail(f"device payload fixtures not found at {folder}")
    payloads = []
    for path in sorted(folder.glob("*.json")):
        for case in json.loads(path.read_text()):
            raw = case.get("payload")
            if raw is not None:
                payloads.append(
                    raw.encode("utf-8", "surrogateescape")
                    if isinstance(raw, str)
                    else json.dumps(raw).encode()
                )
    return payloads


def test_every_real_device_payload_on_a_native_topic_decodes_or_is_rejected(router: Router) -> None:
    payloads = _fixture_payloads()
    assert len(payloads) > 100
    outcomes = {"reading": 0, "rejected": 0}
    for payload in payloads:
        [event] = router.route("neighborhood/things/t/state", payload, NOW)
        assert isinstance(event, Reading | Rejected)
        outcomes["reading" if isinstance(event, Reading) else "rejected"] += 1
    assert outcomes["rejected"] > outcomes["reading"]  # foreign shapes are not the native scheme


class _Broken:
    name = "broken"

    def subscriptions(self) -> list[str]:
        return ["x/#"]

    def matches(self, topic: str) -> bool:
        return topic.startswith("x/")

    def decode(self, topic: str, payload: bytes, received: float) -> list:
        raise ZeroDivisionError("bug")


def test_a_decoder_bug_becomes_a_counted_rejection_not_a_crash() -> None:
    [event] = Router([_Broken()]).route("x/1", b"{}", NOW)
    assert (
        isinstance(event, Rejected)
        and event.reason == "decoder_error"
        and "ZeroDivisionError" in event.detail
    )


class _BrokenMatcher(_Broken):
    def matches(self, topic: str) -> bool:
        return topic.split("/")[3] == "x"  # IndexError on short topics


def test_a_decoder_whose_matching_fails_is_a_counted_rejection_not_a_crash() -> None:
    router = Router([_BrokenMatcher()])
    [event] = router.route("a/b", b"{}", NOW)
    assert isinstance(event, Rejected) and event.reason == "decoder_error" and "IndexError" in event.detail
    [event] = router.route("a/b", b"{}", NOW)  # a failure is not cached as "no decoder"
    assert isinstance(event, Rejected) and event.reason == "decoder_error"


@settings(max_examples=400, deadline=None)
@given(payload=st.binary(max_size=300), leaf=st.sampled_from(["state", "availability"]))
def test_random_bytes_never_raise(payload: bytes, leaf: str) -> None:
    router = Router([NativeDecoder()])
    for event in router.route(f"neighborhood/things/t/{leaf}", payload, time.time()):
        assert isinstance(event, Reading | Availability | Rejected)
        if isinstance(event, Reading):
            assert all(isinstance(v, bool) or math.isfinite(v) for v in event.values.values())


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(
    obj=st.dictionaries(
        st.sampled_from(["temperature", "pm25", "water_leak", "time", "x", "tag"]), json_values, max_size=5
    )
)
def test_random_json_objects_decode_or_reject(obj: dict) -> None:
    router = Router([NativeDecoder()])
    payload = json.dumps(obj).encode()
    for topic in ("neighborhood/things/t/state", "neighborhood/readers/r/scan"):
        [event] = router.route(topic, payload, time.time())
        assert isinstance(event, Reading | Scan | Rejected)
