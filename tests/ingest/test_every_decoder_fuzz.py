"""Property tests over the whole router as ``hub run`` builds it: whatever arrives, on any topic any
decoder subscribes to, ``Router.route`` returns only known events, readings hold only canonical names
with finite float or bool values, and no decoder ever raises (a raise shows up as ``decoder_error``).
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

from fixturecases import NOW, hub_router
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected, Scan
from hub.domain.vocabulary import MEASUREMENTS
from hub.ingest.router import Router

ROUTER = hub_router()  # built once: building imports and configures every decoder

#: The filters DESIGN §5 names, in case a decoder's own list misses one; plus each decoder's own.
DESIGN_FILTERS = [
    "neighborhood/things/+/state",
    "neighborhood/things/+/availability",
    "neighborhood/readers/+/scan",
    "homeassistant/#",
    "tele/+/SENSOR",
    "tele/+/STATE",
    "tele/+/LWT",
    "stat/+/+",
    "tasmota/discovery/+/config",
    "tasmota/discovery/+/sensors",
    "zigbee2mqtt/#",
    "+/+/+/state",
    "+/status",
    "esphome/discover/+",
    "+/events/rpc",
    "+/status/+",
    "+/online",
    "homie/#",
    "homie/5/+/$state",
    "v3/+/devices/+/up",
    "http/airrohr/+",
]
FILTERS = sorted({*DESIGN_FILTERS, *(s.topic for s in ROUTER.subscriptions())})

EVENT_TYPES = (Reading, Availability, Discovery, Scan, Rejected, Ignored)
REASON = re.compile(r"[a-z][a-z0-9_]*")

# Level names decoders branch on, so generated topics reach their interesting paths.
KNOWN_LEVELS = [
    "SENSOR", "STATE", "LWT", "RESULT", "POWER", "STATUS10", "config", "sensors", "state", "status",
    "availability", "bridge", "devices", "info", "event", "set", "get", "events", "rpc", "online",
    "switch:0", "input:0", "sensor", "binary_sensor", "device", "tag", "up", "join", "5", "$state",
    "$homie", "$name", "$nodes", "$properties", "$datatype", "$unit", "$description", "$target",
    "temperature", "relay", "0", "emeter", "power", "x", "",
]  # fmt: skip
KNOWN_KEYS = [
    "temperature", "Temperature", "humidity", "Humidity", "pressure", "Pressure", "battery", "voltage",
    "power", "Power", "energy", "state", "POWER", "Time", "time", "TempUnit", "PressureUnit", "BME280",
    "DS18B20-1", "ENERGY", "Total", "Wifi", "RSSI", "occupancy", "water_leak", "contact", "linkquality",
    "last_seen", "illuminance", "illuminance_lux", "pm25", "PM2.5", "SDS0X1", "method", "params", "ts",
    "src", "switch:0", "apower", "aenergy", "total", "output", "tC", "uplink_message", "decoded_payload",
    "rx_metadata", "rssi", "received_at", "end_device_ids", "device_id", "sensordatavalues", "value_type",
    "value", "SDS_P1", "SDS_P2", "BME280_pressure", "esp8266id", "sn", "dn", "t", "ft", "tp", "mac",
    "stat_t", "state_topic", "unit_of_measurement", "unit_of_meas", "device_class", "dev_cla", "~",
    "value_template", "val_tpl", "payload_on", "avty_t", "availability", "dev", "device", "ids", "cmps",
    "p", "uniq_id", "unique_id", "name", "exposes", "friendly_name", "ieee_address", "definition",
    "property", "unit", "type", "features", "nodes", "properties", "datatype", "homie", "UID", "Wiegand",
]  # fmt: skip

levels = st.one_of(
    st.sampled_from(KNOWN_LEVELS),
    st.text(st.characters(blacklist_characters="/+#\x00", blacklist_categories=("Cs",)), max_size=12),
)


@st.composite
def topics(draw: st.DrawFn) -> str:
    """A topic one of the filters matches, with its + and # filled by generated levels."""
    parts: list[str] = []
    for level in draw(st.sampled_from(FILTERS)).split("/"):
        if level == "+":
            parts.append(draw(levels))
        elif level == "#":
            parts.extend(draw(st.lists(levels, min_size=1, max_size=4)))
        else:
            parts.append(level)
    return "/".join(parts)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["ON", "OFF", "on", "true", "false", "nan", "None", "20.6 ℃", "1e999", "-", "°C", "C",
                     "online", "Offline", "21.5", "0x1F", "", " ", "2024-03-31T08:46:17", "ready"]),
    st.text(max_size=20),
)  # fmt: skip
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=10))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=20,
)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity come out as the non-JSON tokens devices send


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(json_bytes),
    st.dictionaries(keys, json_values, max_size=8).map(json_bytes),
    scalars.map(lambda v: str(v).encode("utf-8", "surrogatepass")),
)


def check(events: list[Event], topic: str) -> None:
    assert isinstance(events, list) and events, f"{topic!r}: no events"
    for event in events:
        assert isinstance(event, EVENT_TYPES), f"{topic!r}: {event!r}"
        if isinstance(event, Reading):
            assert isinstance(event.thing, str) and event.thing, event
            assert isinstance(event.source, str) and event.source, event
            for name, value in event.values.items():
                assert name in MEASUREMENTS, f"{topic!r}: {name!r} is not canonical: {event}"
                assert type(value) in (float, bool), f"{topic!r}: {name}={value!r} ({type(value).__name__})"
                assert isinstance(value, bool) or math.isfinite(value), f"{topic!r}: {name}={value!r}"
            assert event.time is None or (isinstance(event.time, float) and math.isfinite(event.time))
        elif isinstance(event, Rejected):
            assert event.reason != "decoder_error", f"a decoder raised on {topic!r}: {event.detail}"
            assert REASON.fullmatch(event.reason), event
        elif isinstance(event, Discovery):
            assert isinstance(event.thing, str) and event.thing, event
            assert set(event.measurements) <= MEASUREMENTS, event
            assert all(isinstance(t, str) and t for t in event.topics), event
            json.dumps(event.attributes)  # JSON-serialisable, as the registry stores it
        elif isinstance(event, Availability):
            assert isinstance(event.online, bool), event
        elif isinstance(event, Scan):
            assert isinstance(event.tag, str) and event.tag, event


#: examples per property; ``HUB_FUZZ_EXAMPLES=5000`` for a longer hunt than the suite's quick pass
EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "200"))
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(topic=topics(), payload=payloads)
def test_any_payload_on_any_subscribed_topic_gives_only_known_events(topic: str, payload: bytes) -> None:
    events = ROUTER.route(topic, payload, NOW)
    check(events, topic)
    check(ROUTER.route(topic, payload, NOW), topic)  # the retained copy, again


@FAST
@given(topic=st.text(max_size=60), payload=st.binary(max_size=64))
def test_any_topic_at_all_gives_only_known_events(topic: str, payload: bytes) -> None:
    check(ROUTER.route(topic, payload, NOW), topic)


# -- sequences: something that looks like an announcement, then states on what it announced ------------


UNITS = ["°C", "°F", "C", "<C2><B0>C", "hPa", "Pa", "%", "W", "kWh", "Wh", "mV", "lx", " ", "m³", "bogus"]
DEVICE_CLASSES = [
    "temperature", "humidity", "pressure", "power", "energy", "battery", "voltage", "motion", "door",
    "moisture", "illuminance", "pm25", "water", "signal_strength", "bogus",
]  # fmt: skip
TEMPLATES = ["{{ value_json.temperature }}", "{{ value }}", "{{ value_json['x'] | float * 10 }}", "{{"]


@st.composite
def announcements(draw: st.DrawFn) -> tuple[str, bytes, list[str]]:
    """A discovery-like message and the topics states may follow on."""
    node = draw(st.sampled_from(["garden", "kitchen", "0x00158d0001e50d78", "esp-x", "dev1"]))
    state_topic = draw(st.sampled_from([f"{node}/sensor/temp/state", f"{node}/state", f"tele/{node}/SENSOR"]))
    unit = draw(st.one_of(st.none(), st.sampled_from(UNITS)))
    device_class = draw(st.one_of(st.none(), st.sampled_from(DEVICE_CLASSES)))
    kind = draw(st.sampled_from(["ha", "ha_device", "z2m", "homie4", "homie5", "tasmota", "esphome"]))
    extra = draw(st.dictionaries(keys, json_values, max_size=3))
    if kind == "ha":
        component = draw(st.sampled_from(["sensor", "binary_sensor", "switch", "device_tracker", "button"]))
        config: dict[str, Any] = {"stat_t": state_topic, "uniq_id": f"u_{node}", "name": node, **extra}
        if unit is not None:
            config["unit_of_meas"] = unit
        if device_class is not None:
            config["dev_cla"] = device_class
        if draw(st.booleans()):
            config["val_tpl"] = draw(st.sampled_from(TEMPLATES))
        if draw(st.booleans()):
            config["avty_t"] = f"{node}/status"
        if draw(st.booleans()):
            config["dev"] = {"ids": [node], "name": node}
        return (
            f"homeassistant/{component}/{node}/x/config",
            json_bytes(config),
            [state_topic, f"{node}/status"],
        )
    if kind == "ha_device":
        config = {
            "dev": {"ids": node},
            "o": {"name": "fuzz"},
            "cmps": {"a": {"p": "sensor", "uniq_id": f"{node}_a", "dev_cla": device_class,
                           "unit_of_measurement": unit, "val_tpl": "{{ value_json.a }}"},
                     "b": {"p": "binary_sensor", "uniq_id": f"{node}_b", **extra}},
            "stat_t": state_topic,
        }  # fmt: skip
        return f"homeassistant/device/{node}/config", json_bytes(config), [state_topic]
    if kind == "z2m":
        expose: dict[str, Any] = {
            "type": "numeric",
            "name": device_class or "x",
            "property": device_class or "x",
        }
        if unit is not None:
            expose["unit"] = unit
        definition = {"model": "M", "exposes": [expose]}
        devices = [{"ieee_address": node, "friendly_name": node, "definition": definition, **extra}]
        return (
            "zigbee2mqtt/bridge/devices",
            json_bytes(devices),
            [f"zigbee2mqtt/{node}", f"zigbee2mqtt/{node}/x"],
        )
    if kind == "homie4":
        prop = device_class or "x"
        return (
            f"homie/{node}/n/{prop}/$unit",
            (unit or "").encode(),
            [f"homie/{node}/n/{prop}", f"homie/{node}/$state"],
        )
    if kind == "homie5":
        prop = device_class or "x"
        description = {"homie": "5.0", "version": 1, "nodes": {"n": {"properties": {prop: {
            "datatype": draw(st.sampled_from(["float", "integer", "boolean", "string", "enum", "bogus"])),
            "unit": unit, **extra}}}}}  # fmt: skip
        return (
            f"homie/5/{node}/$description",
            json_bytes(description),
            [f"homie/5/{node}/n/{prop}", f"homie/5/{node}/$state"],
        )
    if kind == "tasmota":
        config = {"dn": node, "hn": node, "mac": "DC4F220756C6", "t": node, "ft": "%prefix%/%topic%/",
                  "tp": ["cmnd", "stat", "tele"], "onln": "Online", "ofln": "Offline", **extra}  # fmt: skip
        return (
            "tasmota/discovery/DC4F220756C6/config",
            json_bytes(config),
            [f"tele/{node}/SENSOR", f"tele/{node}/LWT"],
        )
    announce = {"name": node, "mac": "84fce6123456", "ip": "192.168.0.2", "version": "2024.4.1", **extra}
    return f"esphome/discover/{node}", json_bytes(announce), [f"{node}/sensor/temp/state", f"{node}/status"]


states = st.one_of(
    payloads,
    st.sampled_from(
        [
            b"20.5",
            b"nan",
            b"None",
            b"ON",
            b"OFF",
            b"",
            b"online",
            b"offline",
            b"true",
            b"20.6 \xe2\x84\x83",
            b'{"temperature":21.5}',
            b'{"a":1,"x":"2"}',
            b'{"temperature":"nan"}',
            b"\x00",
        ]
    ),
)


@settings(max_examples=max(EXAMPLES // 3, 1), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_announcement_then_states_on_its_topics_give_only_known_events(data: st.DataObject) -> None:
    router: Router = hub_router()  # fresh: what it learns stays within this example
    topic, payload, followers = data.draw(announcements())
    check(router.route(topic, payload, NOW), topic)
    for _ in range(data.draw(st.integers(1, 5))):
        state_topic = data.draw(st.one_of(st.sampled_from(followers), topics()))
        check(router.route(state_topic, data.draw(states), NOW), state_topic)
    if data.draw(st.booleans()):  # withdrawn (empty retained), then a late state
        check(router.route(topic, b"", NOW), topic)
        check(router.route(followers[0], data.draw(states), NOW), followers[0])
