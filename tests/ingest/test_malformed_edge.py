"""Every case of malformed_edge.json and owntracks.json through the router exactly as ``hub run`` builds it.

The bar (DESIGN §5 and the issue): "nan", "None" and null are no value (never stored as text, never a
rejection storm); empty payloads mean what their ecosystem says (delete, query, clear, removal);
corrupt, truncated and Python-repr payloads are rejected with a reason; units inside values and odd
unit spellings are understood; sentinels are rejected per field while the other fields land; a topic
no decoder owns is ignored unless a topic rule reads it; OwnTracks locations are never recorded.

Cases whose ``topic`` is null are tables of spellings: they are checked against the shared
functions (``parse_bool``, ``parse_timestamp``, ``device_time``) and through the decoders that meet
each spelling.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fixturecases import NOW, Case, cases, hub_router, route

from hub.domain.clock import parse_timestamp
from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected
from hub.domain.units import normalize_unit, parse_bool, to_canonical
from hub.ingest.decoder import PayloadError
from hub.ingest.native import device_time
from hub.ingest.router import Router

EDGE = cases("malformed_edge.json")
OWNTRACKS = cases("owntracks.json")


# -- helpers ------------------------------------------------------------------------------------------


def readings(events: list[Event]) -> list[Reading]:
    return [e for e in events if isinstance(e, Reading)]


def rejections(events: list[Event]) -> list[Rejected]:
    return [e for e in events if isinstance(e, Rejected)]


def values(events: list[Event]) -> dict[str, float | bool]:
    """The canonical values of the message's readings (asserting every one is a number or a bool)."""
    out: dict[str, float | bool] = {}
    for reading in readings(events):
        for name, value in reading.values.items():
            assert isinstance(value, bool | float), f"{name}={value!r} is not float/bool: {events}"
            assert isinstance(value, bool) or math.isfinite(value), f"{name}={value!r}: {events}"
            out[name] = value
    return out


def assert_no_value_no_rejection(events: list[Event]) -> None:
    """What a "nan"/"None" must give: nothing stored, nothing counted as an error."""
    assert events, "the router answers every message"
    assert rejections(events) == [], events
    assert values(events) == {}, events
    for reading in readings(events):  # a no-value is not kept as text either
        assert all(v not in ("nan", "None") for v in reading.unmapped.values()), reading


def assert_only_ignored(events: list[Event]) -> None:
    assert events and all(isinstance(e, Ignored) for e in events), events


def rule(topic: str, thing: str, *fields: dict[str, Any]) -> dict[str, Any]:
    return {"topic": topic, "thing": thing, "fields": list(fields)}


def ha_sensor(
    router: Router,
    object_id: str,
    state_topic: str,
    *,
    device_class: str = "temperature",
    unit: str | None = "°C",
    component: str = "sensor",
    **extra: Any,
) -> list[Event]:
    """Announce a Home Assistant discovery entity; returns the config's events (one Discovery)."""
    config: dict[str, Any] = {
        "name": object_id.replace("_", " "),
        "state_topic": state_topic,
        "unique_id": f"edge_{object_id}",
        "device_class": device_class,
        "device": {"identifiers": [f"edge_{object_id}"], "name": object_id},
        **extra,
    }
    if unit is not None:
        config["unit_of_measurement"] = unit
    events = route(router, f"homeassistant/{component}/{object_id}/config", json.dumps(config))
    discoveries = [e for e in events if isinstance(e, Discovery)]
    assert len(discoveries) == 1 and not discoveries[0].retired, events
    assert state_topic in discoveries[0].topics, discoveries[0]
    return events


# -- one check per malformed_edge case ------------------------------------------------------------------


def nan_esphome_power_factor(case: Case) -> None:
    router = hub_router()
    # no canonical name for a power factor: "nan" stores nothing and is no error
    assert_no_value_no_rejection(route(router, case.topic, case.payload_bytes()))
    # the same device's temperature, announced by ESPHome's discovery: "nan" is no value, a number is
    node = case.topic.split("/")[0]
    state = f"{node}/sensor/aircon_temperature/state"
    ha_sensor(router, "aircon_temperature", state)
    assert_no_value_no_rejection(route(router, state, case.payload_bytes()))
    assert values(route(router, state, b"21.5")) == {"temperature": 21.5}
    assert_no_value_no_rejection(route(router, state, case.payload_bytes()))  # again (retained)


def nan_on_a_topic_no_decoder_owns(case: Case) -> None:
    assert_only_ignored(route(hub_router(), case.topic, case.payload_bytes()))
    pattern, thing = {
        "kitchen/temperature": ("kitchen/temperature", "kitchen"),
        "home/BTtoMQTT/C47C8D6273BD/tem": ("home/BTtoMQTT/{mac}/tem", "ble-{mac}"),
    }[case.topic]
    router = hub_router(rules=[rule(pattern, thing, {"name": "temperature"})])
    assert_no_value_no_rejection(route(router, case.topic, case.payload_bytes()))
    assert_no_value_no_rejection(route(router, case.topic, case.payload_bytes()))  # retained, again
    [reading] = readings(route(router, case.topic, b"21.5"))
    assert reading.values == {"temperature": 21.5}
    assert reading.source == "rules"


def none_esphome(case: Case) -> None:
    assert case.payload == "None"
    router = hub_router()
    state = "weather-station/sensor/outdoor_temperature/state"  # <prefix>/sensor/<id>/state
    ha_sensor(router, "outdoor_temperature", state)
    assert_no_value_no_rejection(route(router, state, case.payload_bytes()))
    assert values(route(router, state, b"-3.5")) == {"temperature": -3.5}
    # without a discovery config, on ESPHome's own topic: still no value and no rejection
    assert_no_value_no_rejection(route(hub_router(), state, case.payload_bytes()))


def empty_ha_config_deletes(case: Case) -> None:
    router = hub_router()
    [announced] = [e for e in ha_sensor(router, "shed_temp", "shed/temp/state") if isinstance(e, Discovery)]
    events = route(router, "homeassistant/sensor/shed_temp/config", case.payload_bytes())
    retired = [e for e in events if isinstance(e, Discovery)]
    assert [(d.thing, d.retired) for d in retired] == [(announced.thing, True)], events
    assert rejections(events) == []
    # the deleted entity's state topic is no longer read
    assert values(route(router, "shed/temp/state", b"20.5")) == {}
    # deleting what was never announced (a ghost retained config) is quiet
    ghost = route(hub_router(), "homeassistant/sensor/never_seen/config", b"")
    assert rejections(ghost) == [] and readings(ghost) == []


def empty_tasmota_command_is_a_query(case: Case) -> None:
    events = route(hub_router(), case.topic, case.payload_bytes())
    assert_only_ignored(events)


def empty_z2m_availability_clears(case: Case) -> None:
    router = hub_router()
    topic = case.topic.replace("<old_name>", "old_kitchen_sensor")
    assert_only_ignored(route(router, topic, case.payload_bytes()))
    # the same topic with a real payload is availability (so the empty one was understood, not unseen)
    [available] = [e for e in route(router, topic, b'{"state":"online"}') if isinstance(e, Availability)]
    assert available.online is True


def empty_homie5_state_removes(case: Case) -> None:
    router = hub_router()
    description = {
        "homie": "5.0",
        "name": "Edge weather",
        "version": 1,
        "nodes": {
            "air": {
                "name": "Air",
                "properties": {"temperature": {"datatype": "float", "unit": "°C"}},
            }
        },
    }
    route(router, "homie/5/edge-weather/$state", b"init")
    route(router, "homie/5/edge-weather/$description", json.dumps(description))
    route(router, "homie/5/edge-weather/$state", b"ready")
    [reading] = readings(route(router, "homie/5/edge-weather/air/temperature", b"12.5"))
    assert reading.values == {"temperature": 12.5}
    events = route(router, case.topic.replace("<device>", "edge-weather"), case.payload_bytes())
    assert [(e.thing, e.retired) for e in events if isinstance(e, Discovery)] == [(reading.thing, True)]
    assert rejections(events) == []


def corrupt_packet_spliced_in(case: Case) -> None:
    events = route(hub_router(), case.topic, case.payload_bytes())
    [rejected] = rejections(events)
    assert rejected.reason == "not_json" and rejected.detail, rejected
    assert not [e for e in events if isinstance(e, Discovery | Reading)]
    # the unknown original bytes: an invalid UTF-8 byte where the viewer showed U+FFFD
    raw = case.payload_bytes().replace("\ufffd".encode(), b"\xff")
    [rejected] = rejections(route(hub_router(), case.topic, raw))
    assert rejected.reason in ("not_utf8", "not_json"), rejected


def trailing_nul_accepted(case: Case) -> None:
    assert case.payload_bytes().endswith(b"\x00")
    assert_only_ignored(route(hub_router(), case.topic, case.payload_bytes()))  # no decoder owns it
    # a rule for the gateway's topic (empty first level) reads it, the NUL notwithstanding
    router = hub_router(
        rules=[rule("/{gate}/cmd/homebridge/to/set", "{gate}", {"path": "value", "name": "temperature"})]
    )
    assert values(route(router, case.topic, case.payload_bytes())) == {"temperature": 26.0}
    # and the ecosystems accept a C firmware's trailing NUL too
    z2m = route(hub_router(), "zigbee2mqtt/nul_sensor", b'{"temperature":21.5,"humidity":40}\x00')
    assert values(z2m) == {"temperature": 21.5, "humidity": 40.0}
    native = route(hub_router(), "neighborhood/things/nul-1/state", b'{"temperature":21.5}\x00')
    assert values(native) == {"temperature": 21.5}


def unit_in_value(case: Case) -> None:
    assert to_canonical("temperature", case.payload) == 20.6
    by_rule = hub_router(rules=[rule("denkovi/{board}/temperature", "{board}", {"name": "temperature"})])
    assert values(route(by_rule, "denkovi/board-1/temperature", case.payload_bytes())) == {
        "temperature": 20.6
    }
    router = hub_router()
    ha_sensor(router, "denkovi_temperature", "denkovi/board-2/temperature")
    events = route(router, "denkovi/board-2/temperature", case.payload_bytes())
    assert values(events) == {"temperature": 20.6} and rejections(events) == []
    # a Fahrenheit unit inside the value wins over the entity's °C
    assert values(route(router, "denkovi/board-2/temperature", "68 °F".encode())) == {"temperature": 20.0}


def python_repr_config_and_unit_spellings(case: Case) -> None:
    events = route(hub_router(), case.topic, case.payload_bytes())
    [rejected] = rejections(events)
    assert rejected.reason == "not_json", rejected
    assert not [e for e in events if isinstance(e, Discovery)]
    # the same config as the JSON it was meant to be: the escaped-bytes unit is understood as °C
    import ast

    config = ast.literal_eval(case.payload)
    assert config["unit_of_measurement"] == "<C2><B0>C"
    router = hub_router()
    events = route(router, case.topic, json.dumps(config))
    assert [type(e) for e in events] == [Discovery], events
    assert "temperature" in events[0].measurements
    state = config["state_topic"]  # homeassistant/XH30000411470157/temp, under the discovery prefix
    assert values(route(router, state, b"41.5")) == {"temperature": 41.5}
    # the related spellings the notes list
    for i, spelling in enumerate(("C", "° C", "℃", "Â°C")):
        topic = f"edge/spelling/{i}"
        ha_sensor(router, f"spelling_{i}", topic, unit=spelling)
        assert values(route(router, topic, b"20.5")) == {"temperature": 20.5}, spelling
    # a single-space unit (Tasmota's status sensor) on a plain number is no unit at all
    ha_sensor(router, "space_unit", "edge/space/rssi", device_class="signal_strength", unit=" ")
    events = route(router, "edge/space/rssi", b"-61")
    assert rejections(events) == []
    assert values(events) in ({}, {"rssi": -61.0})
    for spelling in ("<C2><B0>C", "° C", "C", "℃", "°C", "Â°C"):
        assert normalize_unit(spelling) == "°C", spelling


def numeric_string_telldus(case: Case) -> None:
    # no decoder reads telldus (ESPHome's <node>/<component>/<id>/state needs a component it knows)
    assert_only_ignored(route(hub_router(), case.topic, case.payload_bytes()))
    router = hub_router(
        rules=[
            rule(
                "telldus/{id}/temperature/state",
                "telldus-{id}",
                {"path": "temperature", "name": "temperature"},
            )
        ]
    )
    [reading] = readings(route(router, case.topic, case.payload_bytes()))
    assert reading.values == {"temperature": 15.5}
    # the notes' other numeric strings: Z2M battery "37.00"
    z2m = route(hub_router(), "zigbee2mqtt/WeatherGuestRoom", b'{"battery":"37.00","temperature":"24.59"}')
    assert values(z2m) == {"battery": 37.0, "temperature": 24.59}


def numeric_string_ems_esp(case: Case) -> None:
    assert_only_ignored(route(hub_router(), case.topic, case.payload_bytes()))
    router = hub_router(
        rules=[
            rule(
                "ems-esp/heartbeat",
                "ems-esp",
                {"path": "rssi", "name": "rssi"},
                {"path": "uptime", "name": "voltage"},  # a misconfigured rule: the uptime string is no number
            )
        ]
    )
    events = route(router, case.topic, case.payload_bytes())
    assert values(events) == {"rssi": -42.0}, events
    [bad] = rejections(events)  # the bad field is rejected alone, the good one still lands
    assert bad.reason in ("bad_value", "bad_unit")


BOOL_SPELLINGS: dict[str, list[tuple[object, bool]]] = {
    "ON/OFF": [("ON", True), ("OFF", False)],
    "true/false JSON": [(True, True), (False, False)],
    "'true'/'false' strings": [("true", True), ("false", False)],
    "Online/Offline": [("Online", True), ("Offline", False)],
    "online/offline": [("online", True), ("offline", False)],
    '{"state":"online"}': [("online", True), ("offline", False)],
    "1/0": [("1", True), ("0", False), (1, True), (0, False)],
    "on/off": [("on", True), ("off", False)],
}


def boolean_spellings_table(case: Case) -> None:
    assert case.topic is None and set(case.meaning) == set(BOOL_SPELLINGS)
    for spellings in BOOL_SPELLINGS.values():
        for raw, expected in spellings:
            assert parse_bool(raw) is expected, raw
            assert to_canonical("state", raw) is expected, raw
    router = hub_router()

    def online(topic: str, payload: bytes) -> bool:
        [availability] = [e for e in route(router, topic, payload) if isinstance(e, Availability)]
        return availability.online

    # availability as each ecosystem spells it
    assert online("tele/edge_plug/LWT", b"Online") is True
    assert online("tele/edge_plug/LWT", b"Offline") is False
    assert online("edgenode/status", b"online") is True  # ESPHome (with its discovery, below)
    assert online("zigbee2mqtt/edge_leak/availability", b'{"state":"online"}') is True
    assert online("zigbee2mqtt/edge_leak/availability", b'{"state":"offline"}') is False
    assert online("zigbee2mqtt/edge_leak/availability", b"offline") is False  # Z2M < 2.0
    assert online("shellyplus1pm-edge/online", b"true") is True
    assert online("shellyplus1pm-edge/online", b"false") is False
    # states: Tasmota POWER, Z2M JSON booleans, HA binary sensor ON/OFF, DIY 1/0 and ebusd on/off by rule
    assert values(route(router, "stat/edge_plug/POWER", b"ON")) == {"state": True}
    assert values(route(router, "zigbee2mqtt/edge_leak", b'{"water_leak":true}')) == {"water_leak": True}
    ha_sensor(
        router,
        "edge_motion",
        "edge/motion/state",
        device_class="motion",
        unit=None,
        component="binary_sensor",
    )
    assert values(route(router, "edge/motion/state", b"ON")) == {"occupancy": True}
    assert values(route(router, "edge/motion/state", b"OFF")) == {"occupancy": False}
    by_rule = hub_router(rules=[rule("espurna/{id}/relay/0", "{id}", {"name": "state"})])
    assert values(route(by_rule, "espurna/e1/relay/0", b"1")) == {"state": True}
    assert values(route(by_rule, "espurna/e1/relay/0", b"0")) == {"state": False}
    assert values(route(by_rule, "espurna/e1/relay/0", b"off")) == {"state": False}


def timestamp_formats_table(case: Case) -> None:
    assert case.topic is None

    def utc(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    expected: list[tuple[object, float | None]] = [
        ("2019-11-03T19:34:28", utc("2019-11-03T19:34:28+00:00")),  # no offset: taken as UTC
        ("2021-06-27T15:03:44+02:00", utc("2021-06-27T13:03:44+00:00")),
        ("2020-10-17T18:56:16.440+02:00", utc("2020-10-17T16:56:16.440+00:00")),
        (1656118444933, 1656118444.933),  # Z2M last_seen, epoch ms
        ("2022-01-02T13:54:08+01:00", utc("2022-01-02T12:54:08+00:00")),
        (1632666420.17, 1632666420.17),  # Shelly params.ts
        (1706856298, 1706856298.0),  # OwnTracks tst
        ("2020-02-12T15:15:46.014773143Z", utc("2020-02-12T15:15:46.014773+00:00")),  # TTN, ns
        ("14:05", None),  # Shelly sys.time: a clock reading, not a timestamp
        ("PT12H5M46S", None),  # Homie duration
        ("0T18:36:12", None),  # Tasmota Uptime
        ("000+03:56:02.014", None),  # EMS-ESP uptime
        (None, None),
        (True, None),
    ]
    for raw, ts in expected:
        got = parse_timestamp(raw)
        if ts is None:
            assert got is None, raw
        else:
            assert got == pytest.approx(ts, abs=1e-3), raw
    # device_time: sane times are kept, 2019 (before the hub's earliest) and the future are not
    assert device_time("2019-11-03T19:34:28", NOW) is None
    assert device_time(1656118444933, NOW) == pytest.approx(1656118444.933)
    assert device_time("2020-02-12T15:15:46.014773143Z", NOW) == pytest.approx(
        utc("2020-02-12T15:15:46.014773+00:00")
    )
    assert device_time(NOW + 3600, NOW) is None
    assert device_time(None, NOW) is None
    for not_a_time in ("14:05", "0T18:36:12", "000+03:56:02.014"):
        with pytest.raises(PayloadError) as caught:
            device_time(not_a_time, NOW)
        assert caught.value.reason == "bad_time"
    # through decoders: Z2M last_seen in ms and ISO with offset becomes the reading's time
    router = hub_router()
    [ms] = readings(route(router, "zigbee2mqtt/edge_ts", b'{"temperature":20,"last_seen":1656118444933}'))
    assert ms.time == pytest.approx(1656118444.933)
    [iso] = readings(
        route(router, "zigbee2mqtt/edge_ts", b'{"temperature":20,"last_seen":"2022-01-02T13:54:08+01:00"}')
    )
    assert iso.time == pytest.approx(utc("2022-01-02T12:54:08+00:00"))
    # Tasmota's offset-less 2019 Time is not sane: arrival time is used (no device time on the reading)
    [tasmota] = readings(
        route(router, "tele/edge_bme/SENSOR", b'{"Time":"2019-11-03T19:34:28","BME280":{"Temperature":21.7}}')
    )
    assert tasmota.time is None and tasmota.values == {"temperature": 21.7}


def z2m_pm25_rollover(case: Case) -> None:
    topic = case.topic
    router = hub_router()
    assert values(route(router, topic, b'{"pm25":7,"temperature":21.3,"humidity":45}')) == {
        "pm25": 7.0,
        "temperature": 21.3,
        "humidity": 45.0,
    }
    events = route(router, topic, b'{"pm25":43521,"temperature":21.4,"humidity":45}')
    assert values(events) == {"temperature": 21.4, "humidity": 45.0}
    [rejected] = rejections(events)
    assert rejected.reason == "out_of_range" and "pm25" in rejected.detail


def z2m_energy_sentinel(case: Case) -> None:
    topic = "zigbee2mqtt/EMIZB-151"
    events = route(hub_router(), topic, json.dumps({"energy": 2**48, "power": 120, "voltage": 230}))
    assert values(events) == {"power": 120.0, "voltage": 230.0}
    [rejected] = rejections(events)
    assert rejected.reason == "out_of_range" and "energy" in rejected.detail


def z2m_counter_beyond_consumer_range(case: Case) -> None:
    events = route(hub_router(), "zigbee2mqtt/ptvo_counter", b'{"l2":444740,"linkquality":120}')
    assert values(events) == {"linkquality": 120.0}
    assert rejections(events) == []  # not a canonical measurement: listed as unmapped, no range applies
    [reading] = readings(events)
    assert reading.unmapped.get("l2") == 444740


def z2m_plug_with_sentinel_versions(case: Case) -> None:
    events = route(hub_router(), case.topic, case.payload_bytes())
    assert rejections(events) == [], events
    [reading] = readings(events)
    assert {
        k: reading.values[k] for k in ("power", "current", "voltage", "energy", "temperature", "state")
    } == {
        "power": 428.0,
        "current": 2.88,
        "voltage": 223.0,
        "energy": 0.14,
        "temperature": 24.27,
        "state": True,
    }
    assert reading.values.get("linkquality") == 100.0
    assert set(reading.values) <= {
        "power",
        "current",
        "voltage",
        "energy",
        "temperature",
        "state",
        "linkquality",
    }
    assert reading.time == pytest.approx(datetime.fromisoformat("2023-06-18T12:39:51+03:00").timestamp())


def truncated_ha_config(case: Case) -> None:
    router = hub_router()
    topic = case.topic.replace("<...>", "pico-e6626005a7405528/temperature_e13ca8")
    events = route(router, topic, case.payload_bytes())
    [rejected] = rejections(events)
    assert rejected.reason == "not_json", rejected
    assert not [e for e in events if isinstance(e, Discovery)]
    # nothing was learned: its state topic stays unread
    assert values(route(router, "pico-e6626005a7405528/state", b'{"temperature_e13ca8": 21.2}')) == {}
    # the complete config works
    fixed = case.payload_bytes() + b"}"
    assert [type(e) for e in route(router, topic, fixed)] == [Discovery]
    assert values(route(router, "pico-e6626005a7405528/state", b'{"temperature_e13ca8": 21.2}')) == {
        "temperature": 21.2
    }


def duplicate_illuminance(case: Case) -> None:
    router = hub_router()
    events = route(
        router, "zigbee2mqtt/RTCGQ11LM", b'{"illuminance":122,"illuminance_lux":122,"occupancy":false}'
    )
    assert values(events) == {"illuminance": 122.0, "occupancy": False}
    assert rejections(events) == []
    # literally duplicated keys: the last wins, as in every JSON parser devices are tested with
    assert values(route(router, "zigbee2mqtt/dup", b'{"temperature":20.0,"temperature":21.0}')) == {
        "temperature": 21.0
    }


def special_characters_in_keys(case: Case) -> None:
    assert set(case.meaning) == {"Tasmota", "Shelly", "Z2M"}
    router = hub_router()
    sds = route(
        router, "tele/edge_air/SENSOR", b'{"Time":"2024-03-31T08:46:17","SDS0X1":{"PM2.5":5.2,"PM10":8.1}}'
    )
    assert values(sds) == {"pm25": 5.2, "pm10": 8.1}
    dht = route(
        router,
        "tele/edge_dht/SENSOR",
        b'{"Time":"2024-03-31T08:46:17","DHT22-14":{"Temperature":21.0,"Humidity":40.0},"TempUnit":"C"}',
    )
    assert values(dht) == {"temperature": 21.0, "humidity": 40.0}
    sht = route(
        router, "tele/edge_sht/SENSOR", b'{"SHT3X-0x45":{"Temperature":19.5,"Humidity":55.5},"TempUnit":"C"}'
    )
    assert values(sht) == {"temperature": 19.5, "humidity": 55.5}
    shelly = route(
        router,
        "shellyplus1pm-edge/events/rpc",
        json.dumps(
            {
                "src": "shellyplus1pm-edge",
                "dst": "shellyplus1pm-edge/events",
                "method": "NotifyStatus",
                "params": {"ts": NOW - 10, "switch:0": {"id": 0, "apower": 12.5, "voltage": 230.1}},
            }
        ),
    )
    assert values(shelly) == {"power": 12.5, "voltage": 230.1}
    status = route(router, "shellyplus1pm-edge/status/switch:0", b'{"id":0,"output":true,"apower":3.0}')
    assert values(status) == {"state": True, "power": 3.0}
    z2m = route(router, "zigbee2mqtt/garden/Temperatur Balkon", b'{"temperature":12.5,"humidity":80}')
    [reading] = readings(z2m)
    assert reading.values == {"temperature": 12.5, "humidity": 80.0}
    assert reading.thing.startswith("zigbee2mqtt.") and " " not in reading.thing and "/" not in reading.thing


def same_topic_two_shapes(case: Case) -> None:
    router = hub_router()
    json_shape = route(router, case.topic, case.payload_bytes())
    plain = route(router, case.topic, b"ON")
    assert values(json_shape) == {"state": True}
    assert values(plain) == {"state": True}
    assert readings(json_shape)[0].thing == readings(plain)[0].thing
    assert values(route(router, case.topic, b"OFF")) == {"state": False}
    assert values(route(router, case.topic, b'{"POWER":"OFF"}')) == {"state": False}


CHECKS: dict[int, Callable[[Case], None]] = {
    0: nan_esphome_power_factor,
    1: nan_on_a_topic_no_decoder_owns,
    2: nan_on_a_topic_no_decoder_owns,
    3: none_esphome,
    4: empty_ha_config_deletes,
    5: empty_tasmota_command_is_a_query,
    6: empty_z2m_availability_clears,
    7: empty_homie5_state_removes,
    8: corrupt_packet_spliced_in,
    9: trailing_nul_accepted,
    10: unit_in_value,
    11: python_repr_config_and_unit_spellings,
    12: numeric_string_telldus,
    13: numeric_string_ems_esp,
    14: boolean_spellings_table,
    15: timestamp_formats_table,
    16: z2m_pm25_rollover,
    17: z2m_energy_sentinel,
    18: z2m_counter_beyond_consumer_range,
    19: z2m_plug_with_sentinel_versions,
    20: truncated_ha_config,
    21: duplicate_illuminance,
    22: special_characters_in_keys,
    23: same_topic_two_shapes,
}


def test_every_malformed_edge_case_has_a_check() -> None:
    assert sorted(CHECKS) == [c.index for c in EDGE]


@pytest.mark.parametrize("case", EDGE, ids=lambda c: c.id)
def test_malformed_edge_case(case: Case) -> None:
    CHECKS[case.index](case)


# -- OwnTracks: personal location data is never recorded -----------------------------------------------


def _filter_matches(topic_filter: str, topic: str) -> bool:
    f_levels, t_levels = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(f_levels):
        if level == "#":
            return not (i == 0 and topic.startswith("$"))
        if i >= len(t_levels) or (level != "+" and level != t_levels[i]):
            return False
    return len(f_levels) == len(t_levels)


@pytest.mark.parametrize("case", OWNTRACKS, ids=lambda c: c.id)
def test_owntracks_is_never_subscribed_nor_recorded(case: Case) -> None:
    router = hub_router()
    assert case.topic.startswith("owntracks/")
    filters = [s.topic for s in router.subscriptions()]
    assert filters, "the router subscribes to something"
    assert not [f for f in filters if _filter_matches(f, case.topic)], filters
    assert_only_ignored(route(router, case.topic, case.payload_bytes()))
