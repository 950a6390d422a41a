"""Shelly Gen2/Gen3 JSON-RPC (partial NotifyStatus merged over the last full status) and Gen1 topics."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fixturecases import NOW, Case, cases, hub_router, route
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected, Scan
from hub.ingest import shelly as shelly_module
from hub.ingest.router import Router
from hub.ingest.shelly import ShellyDecoder

PLUS_1PM = "shellyplus1pm-441793a3b4c8"


@pytest.fixture
def router() -> Router:
    return hub_router()


def rpc(method: str, params: dict[str, Any], src: str = PLUS_1PM) -> str:
    return json.dumps({"src": src, "dst": f"{src}/events", "method": method, "params": params})


def readings(events: list[Event]) -> dict[str, Reading]:
    found = {e.thing: e for e in events if isinstance(e, Reading)}
    assert all(isinstance(e, Reading | Discovery) for e in events), events
    return found


def only_reading(events: list[Event]) -> Reading:
    [reading] = [e for e in events if isinstance(e, Reading)]
    return reading


# -- the real payloads ---------------------------------------------------------------------------------
def _case_0(events: list[Event]) -> None:  # NotifyStatus delta: aenergy.total 0 Wh, ts epoch float
    reading = only_reading(events)
    assert reading.thing == "shelly.shellyplus1pm-a8032abe2f18"
    assert reading.values == {"energy": 0.0}
    assert reading.time == pytest.approx(1632666420.17)


def _case_1(events: list[Event]) -> None:  # full switch status, irregular whitespace
    reading = only_reading(events)
    assert all(isinstance(e, Reading | Discovery) for e in events)
    assert reading.values == {"state": False, "power": 0.0, "voltage": 240.873, "energy": 0.0}
    assert reading.unmapped == {"switch:0.temperature": 46.2}  # the relay's own temperature, not the room's
    assert reading.time is None


def _ignored(events: list[Event]) -> None:  # input state null, mqtt connected: nothing to record
    assert [type(e) for e in events] == [Ignored]


def _case_4(events: list[Event]) -> None:  # custom prefix; counters kept unmapped; model from src
    [discovery, reading] = events
    assert isinstance(discovery, Discovery) and isinstance(reading, Reading)
    assert discovery.thing == reading.thing == "shelly.ShellyLichtGarten"
    assert (discovery.model, discovery.manufacturer) == ("shelly1pmminig3", "Shelly")
    assert reading.values == {}
    assert reading.unmapped["switch:0.counts.switch_on"] == 192
    assert reading.unmapped["switch:0.counts.on_time"] == 241680


def _offline(events: list[Event]) -> None:
    assert events == [Availability("shelly.shellyplus1pm-Kuechenblock", "shelly", False)]


def _online(events: list[Event]) -> None:
    assert events == [Availability(f"shelly.{PLUS_1PM}", "shelly", True)]


def _case_8(events: list[Event]) -> None:  # Gen1 3EM phase A power
    assert events == [Reading("shelly.shellyem3-68C63AFAF952", "shelly", {"power": 120.11})]


EXPECTED: dict[str, Callable[[list[Event]], None]] = {
    "shelly[0]": _case_0,
    "shelly[1]": _case_1,
    "shelly[2]": _ignored,
    "shelly[3]": _ignored,
    "shelly[4]": _case_4,
    "shelly[5]": _ignored,
    "shelly[6]": _offline,
    "shelly[7]": _online,
    "shelly[8]": _case_8,
}
CONCRETE = {"<topic_prefix>": PLUS_1PM}


def concrete(topic: str | None) -> str:
    assert topic is not None
    for placeholder, value in CONCRETE.items():
        topic = topic.replace(placeholder, value)
    return topic


def test_every_fixture_case_has_an_expectation() -> None:
    assert {c.id for c in cases("shelly.json")} == set(EXPECTED)


@pytest.mark.parametrize("case", cases("shelly.json"), ids=lambda c: c.id)
def test_fixture_case_decodes_to_its_meaning(router: Router, case: Case) -> None:
    events = route(router, concrete(case.topic), case.payload_bytes())
    assert all(e.source == "shelly" for e in events if not isinstance(e, Scan))
    EXPECTED[case.id](events)


def test_fixture_cases_in_order_through_one_router() -> None:
    """As a device dump replayed through ``hub decode``: every case still decodes to its meaning."""
    router = hub_router()
    for case in cases("shelly.json"):
        events = route(router, concrete(case.topic), case.payload_bytes())
        EXPECTED[case.id](events)


# -- Gen2: merging deltas ------------------------------------------------------------------------------
FULL_SWITCH = {
    "id": 0,
    "source": "init",
    "output": True,
    "apower": 50.0,
    "voltage": 230.1,
    "current": 0.22,
    "freq": 50.0,
    "aenergy": {"total": 1234.5, "by_minute": [1, 2, 3], "minute_ts": 1789999980},
    "temperature": {"tC": 40.1, "tF": 104.2},
}


def test_notify_status_delta_is_merged_over_the_last_full_status(router: Router) -> None:
    route(router, f"{PLUS_1PM}/status/switch:0", json.dumps(FULL_SWITCH))
    events = route(
        router,
        f"{PLUS_1PM}/events/rpc",
        rpc("NotifyStatus", {"ts": NOW - 5, "switch:0": {"id": 0, "apower": 12.3}}),
    )
    reading = only_reading(events)
    assert reading.values == {
        "state": True,
        "power": 12.3,
        "voltage": 230.1,
        "current": 0.22,
        "energy": pytest.approx(1.2345),
    }
    assert reading.unmapped == {"switch:0.temperature": 40.1, "switch:0.freq": 50.0}
    assert reading.time == NOW - 5


def test_nested_delta_keeps_sibling_fields(router: Router) -> None:
    route(router, f"{PLUS_1PM}/status/switch:0", json.dumps(FULL_SWITCH))
    delta = {"ts": NOW, "switch:0": {"id": 0, "temperature": {"tC": 44.0}}}
    reading = only_reading(route(router, f"{PLUS_1PM}/events/rpc", rpc("NotifyStatus", delta)))
    assert reading.unmapped["switch:0.temperature"] == 44.0
    assert reading.values["energy"] == pytest.approx(1.2345)


def test_full_status_replaces_what_was_known(router: Router) -> None:
    route(router, f"{PLUS_1PM}/status/switch:0", json.dumps(FULL_SWITCH))
    route(
        router,
        f"{PLUS_1PM}/events/rpc",
        rpc("NotifyFullStatus", {"ts": NOW, "switch:0": {"id": 0, "output": False}}),
    )
    reading = only_reading(
        route(router, f"{PLUS_1PM}/events/rpc", rpc("NotifyStatus", {"ts": NOW, "switch:0": {"apower": 1.0}}))
    )
    assert reading.values == {"state": False, "power": 1.0}  # no voltage left over from before


def test_repeated_retained_status_gives_the_same_reading(router: Router) -> None:
    first = route(router, f"{PLUS_1PM}/status/switch:0", json.dumps(FULL_SWITCH))
    second = route(router, f"{PLUS_1PM}/status/switch:0", json.dumps(FULL_SWITCH))
    assert only_reading(first) == only_reading(second)
    assert [type(e) for e in second] == [Reading]  # the Discovery came once


def test_notify_event_is_ignored(router: Router) -> None:
    payload = rpc(
        "NotifyEvent", {"ts": NOW, "events": [{"component": "input:0", "id": 0, "event": "single_push"}]}
    )
    assert route(router, f"{PLUS_1PM}/events/rpc", payload) == [Ignored("shelly", f"{PLUS_1PM}/events/rpc")]


def test_device_time_before_2020_falls_back_to_arrival(router: Router) -> None:
    events = route(
        router, f"{PLUS_1PM}/events/rpc", rpc("NotifyStatus", {"ts": 12.5, "switch:0": {"apower": 3}})
    )
    assert only_reading(events).time is None


def test_plus_ht_full_status_reads_climate_and_battery_and_announces_battery_power(router: Router) -> None:
    """A Plus H&T wakes, sends one NotifyFullStatus; sys.unixtime is null, params.ts is the time."""
    payload = (
        '{"src":"shellyplusht-08b61fcb75b8","dst":"SH-ShellyPHT-002/events","method":"NotifyFullStatus",'
        '"params":{"ts":1789999000.5,"ble":{},"cloud":{"connected":false},'
        '"devicepower:0":{"id":0,"battery":{"V":5.56,"percent":96},"external":{"present":false}},'
        '"ht_ui":{},"humidity:0":{"id":0,"rh":56.8},"mqtt":{"connected":true},'
        '"sys":{"mac":"08B61FCB75B8","time":null,"unixtime":null,"uptime":1,"wakeup_period":7200},'
        '"temperature:0":{"id":0,"tC":22.3,"tF":72.1},'
        '"wifi":{"sta_ip":"192.0.2.7","status":"got ip","ssid":"home","rssi":-64},"ws":{"connected":false}}}'
    )
    [discovery, reading] = route(router, "SH-ShellyPHT-002/events/rpc", payload)
    assert discovery == Discovery(
        "shelly.SH-ShellyPHT-002", "shelly", model="shellyplusht", manufacturer="Shelly", power="battery",
        attributes={"gen": 2},
    )  # fmt: skip
    assert isinstance(reading, Reading) and reading.thing == "shelly.SH-ShellyPHT-002"
    assert reading.values == {
        "temperature": 22.3,
        "humidity": 56.8,
        "battery": 96.0,
        "voltage": 5.56,
        "rssi": -64.0,
    }
    assert reading.time == 1789999000.5
    assert "sys.mac" not in reading.unmapped and not any(k.startswith("wifi") for k in reading.unmapped)


def test_battery_voltage_stays_unmapped_on_a_device_that_meters_mains(router: Router) -> None:
    route(router, f"{PLUS_1PM}/status/switch:0", json.dumps(FULL_SWITCH))
    events = route(router, f"{PLUS_1PM}/status/devicepower:0", '{"id":0,"battery":{"V":3.1,"percent":80}}')
    reading = only_reading(events)
    assert reading.values == {"battery": 80.0}
    assert reading.unmapped == {"devicepower:0.battery.V": 3.1}
    [discovery] = [e for e in events if isinstance(e, Discovery)]
    assert discovery.power == "battery"


def test_external_power_present_announces_mains(router: Router) -> None:
    body = '{"id":0,"battery":{"V":5.9,"percent":100},"external":{"present":true}}'
    events = route(router, "shellyhtg3-aabbccddeeff/status/devicepower:0", body)
    [discovery] = [e for e in events if isinstance(e, Discovery)]
    assert (discovery.power, discovery.model) == ("mains", "shellyhtg3")


def test_channel_zero_is_the_device_and_higher_channels_are_things_of_their_own(router: Router) -> None:
    params = {
        "ts": NOW,
        "switch:0": {"id": 0, "output": True, "apower": 10},
        "switch:1": {"id": 1, "output": False, "apower": 0},
        "temperature:100": {"id": 100, "tC": 19.5},
        "input:1": {"id": 1, "state": True},
    }
    found = readings(route(router, "shellyplus2pm-aabbccddeeff/events/rpc", rpc("NotifyStatus", params)))
    base = "shelly.shellyplus2pm-aabbccddeeff"
    assert found[base].values == {"state": True, "power": 10.0}
    assert found[base].unmapped == {"input:1.state": True}
    assert found[f"{base}.switch1"].values == {"state": False, "power": 0.0}
    assert found[f"{base}.temperature100"].values == {"temperature": 19.5}


def test_pro_3em_totals_and_energy_data(router: Router) -> None:
    params = {
        "ts": NOW,
        "em:0": {
            "id": 0, "a_current": 1.0, "a_voltage": 231.0, "a_act_power": 200.0, "b_current": 0.5,
            "b_voltage": 229.5, "b_act_power": 100.0, "c_current": 0.0, "c_voltage": 230.0,
            "c_act_power": 0.0, "n_current": None, "total_current": 1.5, "total_act_power": 300.0,
            "total_aprt_power": 320.0,
        },
        "emdata:0": {"id": 0, "total_act": 123456.7, "total_act_ret": 0.0, "a_total_act_energy": 50000.0},
    }  # fmt: skip
    reading = only_reading(route(router, "shellypro3em-c8f09e8842ac/events/rpc", rpc("NotifyStatus", params)))
    assert reading.values == {"power": 300.0, "current": 1.5, "energy": pytest.approx(123.4567)}
    assert reading.unmapped["em:0.a_voltage"] == 231.0
    assert "em:0.n_current" not in reading.unmapped


def test_pro_em_second_clamp_and_its_energy_share_a_thing(router: Router) -> None:
    params = {
        "ts": NOW,
        "em1:1": {"id": 1, "current": 2.0, "voltage": 230.0, "act_power": 460.0, "pf": 1.0, "freq": 50.0},
        "em1data:1": {"id": 1, "total_act_energy": 2500.0, "total_act_ret_energy": 0.0},
    }
    found = readings(route(router, "shellyproem50-08f9e0e5a1b2/events/rpc", rpc("NotifyStatus", params)))
    sub = found["shelly.shellyproem50-08f9e0e5a1b2.em11"]
    assert sub.values == {"current": 2.0, "voltage": 230.0, "power": 460.0, "energy": 2.5}


def test_illuminance_smoke_and_fahrenheit_only_temperature(router: Router) -> None:
    params = {
        "ts": NOW,
        "illuminance:0": {"id": 0, "lux": 120, "illumination": "twilight"},
        "smoke:0": {"id": 0, "alarm": False, "mute": False},
        "temperature:0": {"id": 0, "tC": None, "tF": 68.0},
    }
    reading = only_reading(
        route(router, "shellyplussmoke-aabbccddeeff/events/rpc", rpc("NotifyStatus", params))
    )
    assert reading.values == {"illuminance": 120.0, "smoke": False, "temperature": 20.0}
    assert reading.unmapped == {"illuminance:0.illumination": "twilight", "smoke:0.mute": False}


def test_a_bad_field_is_rejected_and_the_rest_still_lands(router: Router) -> None:
    params = {"ts": NOW, "switch:0": {"apower": "lots", "voltage": 229.0}}
    events = route(router, f"{PLUS_1PM}/events/rpc", rpc("NotifyStatus", params))
    assert only_reading(events).values == {"voltage": 229.0}
    [rejected] = [e for e in events if isinstance(e, Rejected)]
    assert rejected.reason == "bad_value"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (f"{PLUS_1PM}/events/rpc", b"{not json", "not_json"),
        (f"{PLUS_1PM}/events/rpc", b'{"method":"NotifyStatus","params":[1]}', "not_object"),
        (f"{PLUS_1PM}/events/rpc", b'{"method":"NotifyStatus","params":{"ts":"soon"}}', "bad_time"),
        (f"{PLUS_1PM}/status/switch:0", b"[]", "not_object"),
        (f"{PLUS_1PM}/status/switch:0", b"\xff\xfe", "not_utf8"),
    ],
)
def test_broken_payloads_are_rejected_with_a_reason(
    router: Router, topic: str, payload: bytes, reason: str
) -> None:
    [event] = route(router, topic, payload)
    assert isinstance(event, Rejected) and event.reason == reason and event.source == "shelly"


def test_online_of_another_ecosystem_is_ignored(router: Router) -> None:
    assert route(router, "my-gateway/online", "online") == [Ignored("shelly", "my-gateway/online")]


def test_gen2_prefix_under_shellies_names_the_same_thing_as_its_online_topic(router: Router) -> None:
    events = route(
        router, "shellies/kitchen/events/rpc", rpc("NotifyStatus", {"ts": NOW, "switch:0": {"apower": 5}})
    )
    assert only_reading(events).thing == "shelly.kitchen"
    assert route(router, "shellies/kitchen/online", "true") == [
        Availability("shelly.kitchen", "shelly", True)
    ]


# -- topic ownership -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "topic",
    [
        f"{PLUS_1PM}/events/rpc",
        f"{PLUS_1PM}/status/switch:0",
        f"{PLUS_1PM}/status/sys",
        f"{PLUS_1PM}/online",
        "home/garden/relay/events/rpc",
        "home/garden/relay/status/cover:0",
        "shellies/shelly1-B929CC/relay/0",
        "shellies/announce",
    ],
)
def test_shelly_topics_are_owned_by_the_shelly_decoder(router: Router, topic: str) -> None:
    decoder = router.decoder_for(topic)
    assert decoder is not None and decoder.name == "shelly"


@pytest.mark.parametrize(
    "topic",
    [
        "homie/device/node/online",
        "living-room/status",
        "garage/status/door",
        "garage/status/temperature",
        "homie/dev/status/wifi",
        "zigbee2mqtt/plug/availability",
        "tele/sonoff/LWT",
        "a/b/online",
    ],
)
def test_foreign_topics_are_not_claimed(topic: str) -> None:
    assert not ShellyDecoder().matches(topic)


def test_subscriptions_cover_the_topic_families() -> None:
    topics = {s.topic for s in ShellyDecoder().subscriptions()}
    assert topics == {"+/events/rpc", "+/status/+", "+/online", "shellies/#"}


# -- Gen1 ----------------------------------------------------------------------------------------------
GEN1 = "shelly1pm-B929CC"


@pytest.mark.parametrize(
    ("suffix", "payload", "thing", "values"),
    [
        ("relay/0", "on", GEN1, {"state": True}),
        ("relay/0", "off", GEN1, {"state": False}),
        ("relay/0", "overpower", GEN1, {"state": False}),
        ("relay/0/power", "42.5", GEN1, {"power": 42.5}),
        ("relay/0/energy", "6000", GEN1, {"energy": 0.1}),  # watt-minutes
        ("relay/1/power", "7", f"{GEN1}.relay1", {"power": 7.0}),
        ("emeter/0/voltage", "239.03", GEN1, {"voltage": 239.03}),
        ("emeter/0/current", "0.71", GEN1, {"current": 0.71}),
        ("emeter/2/total", "123456.5", f"{GEN1}.emeter2", {"energy": 123.4565}),  # Wh
        ("sensor/temperature", "21.25", GEN1, {"temperature": 21.25}),
        ("sensor/humidity", "48", GEN1, {"humidity": 48.0}),
        ("sensor/lux", "310", GEN1, {"illuminance": 310.0}),
        ("sensor/flood", "true", GEN1, {"water_leak": True}),
        ("sensor/state", "close", GEN1, {"contact": True}),
        ("sensor/state", "open", GEN1, {"contact": False}),
        ("ext_temperature/0", "18.5", GEN1, {"temperature": 18.5}),
        ("ext_temperature/1", "4.0", f"{GEN1}.ext_temperature1", {"temperature": 4.0}),
    ],
)
def test_gen1_values(router: Router, suffix: str, payload: str, thing: str, values: dict[str, Any]) -> None:
    reading = only_reading(route(router, f"shellies/{GEN1}/{suffix}", payload))
    assert reading.thing == f"shelly.{thing}"
    assert reading.values == pytest.approx(values)


def test_gen1_device_temperature_and_meter_extras_stay_unmapped(router: Router) -> None:
    assert only_reading(route(router, f"shellies/{GEN1}/temperature", "51.3")).unmapped == {
        "temperature": 51.3
    }
    assert only_reading(route(router, f"shellies/{GEN1}/emeter/0/pf", "0.71")).unmapped == {
        "emeter/0/pf": 0.71
    }
    assert only_reading(route(router, f"shellies/{GEN1}/emeter/0/energy", "900")).unmapped == {
        "emeter/0/energy": 900.0  # watt-minutes since reboot; emeter total is the energy series
    }


def test_gen1_battery_sensor_announces_battery_power_once(router: Router) -> None:
    first = route(router, "shellies/shellyht-6F6B5E/sensor/battery", "87")
    assert first[0] == Discovery(
        "shelly.shellyht-6F6B5E", "shelly", model="shellyht", manufacturer="Shelly", power="battery",
        attributes={"gen": 1},
    )  # fmt: skip
    assert only_reading(first).values == {"battery": 87.0}
    again = route(router, "shellies/shellyht-6F6B5E/sensor/battery", "86")
    assert [type(e) for e in again] == [Reading]


def test_gen1_announce_is_a_discovery(router: Router) -> None:
    body = {
        "id": "shellyht-6F6B5E",
        "model": "SHHT-1",
        "mac": "ECFABC6F6B5E",
        "ip": "192.0.2.9",
        "new_fw": False,
        "fw_ver": "20230913-112531/v1.14.0-gcb84623",
    }
    [event] = route(router, "shellies/announce", json.dumps(body))
    assert event == Discovery(
        "shelly.shellyht-6F6B5E", "shelly", model="SHHT-1", manufacturer="Shelly",
        sw_version="20230913-112531/v1.14.0-gcb84623", power="battery", attributes={"gen": 1},
    )  # fmt: skip


def test_gen1_online_and_commands(router: Router) -> None:
    assert route(router, f"shellies/{GEN1}/online", "false") == [
        Availability(f"shelly.{GEN1}", "shelly", False)
    ]
    for topic in (f"shellies/{GEN1}/relay/0/command", "shellies/command", f"shellies/{GEN1}/info"):
        assert route(router, topic, "on") == [Ignored("shelly", topic)]


def test_gen1_motion_status_json(router: Router) -> None:
    body = '{"motion":true,"timestamp":1789999000,"active":true,"vibration":false,"lux":31,"bat":88}'
    reading = only_reading(route(router, "shellies/shellymotionsensor-60A423000000/status", body))
    assert reading.values == {"occupancy": True, "illuminance": 31.0, "battery": 88.0}
    assert reading.unmapped == {"vibration": False}


def test_gen1_bad_number_is_rejected(router: Router) -> None:
    [event] = route(router, f"shellies/{GEN1}/relay/0/energy", "many")
    assert isinstance(event, Rejected) and event.reason == "bad_value"


def test_device_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shelly_module, "MAX_DEVICES", 8)
    decoder = ShellyDecoder()
    router = Router([decoder])
    for i in range(50):
        route(router, f"dev{i}/status/switch:0", json.dumps(FULL_SWITCH))
    assert len(decoder._devices) == 8


# -- properties ----------------------------------------------------------------------------------------
KNOWN = (Reading, Availability, Discovery, Rejected, Ignored)
_level = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/#+\x00"), min_size=1, max_size=12
)
_component = st.one_of(
    st.sampled_from(["switch:0", "switch:1", "cover:0", "em:0", "em1data:1", "devicepower:0", "sys", "wifi"]),
    st.builds(
        lambda k, i: f"{k}:{i}",
        st.sampled_from(["temperature", "humidity", "input", "pm1", "x"]),
        st.integers(0, 300),
    ),
)
_topics = st.one_of(
    st.builds(lambda p: f"{p}/events/rpc", _level),
    st.builds(lambda p, c: f"{p}/status/{c}", _level, _component),
    st.builds(lambda p: f"{p}/online", _level),
    st.builds(lambda ls: "shellies/" + "/".join(ls), st.lists(_level, min_size=1, max_size=5)),
)
_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
_rpc_payloads = st.builds(
    lambda method, ts, comps: json.dumps({"method": method, "params": {"ts": ts, **comps}}).encode(),
    st.sampled_from(["NotifyStatus", "NotifyFullStatus", "NotifyEvent"]),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5)),
    st.dictionaries(_component, st.dictionaries(st.sampled_from(["output", "apower", "aenergy", "tC", "rh",
                    "battery", "external", "total_act", "rssi", "id"]), _json, max_size=4), max_size=4),
)  # fmt: skip


def _assert_sane(events: list[Event]) -> None:
    assert events
    for event in events:
        assert isinstance(event, KNOWN)
        if isinstance(event, Rejected):
            assert event.reason != "decoder_error", event.detail
        if isinstance(event, Reading):
            assert all(isinstance(v, bool | float) for v in event.values.values())


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(topic=_topics, payload=st.binary(max_size=200))
def test_arbitrary_bytes_on_shelly_topics_never_break_the_router(
    router: Router, topic: str, payload: bytes
) -> None:
    _assert_sane(router.route(topic, payload, NOW))


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(prefix=_level, payloads=st.lists(_rpc_payloads, min_size=1, max_size=3))
def test_arbitrary_rpc_notifications_decode_to_known_events(
    router: Router, prefix: str, payloads: list[bytes]
) -> None:
    for payload in payloads:
        _assert_sane(router.route(f"{prefix}/events/rpc", payload, NOW))


@given(topic=st.text(max_size=40))
def test_matches_never_raises_on_any_topic(topic: str) -> None:
    assert isinstance(ShellyDecoder().matches(topic), bool)
