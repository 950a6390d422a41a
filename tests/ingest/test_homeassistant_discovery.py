"""Home Assistant MQTT discovery: configs (single-component and device-based), the states and availability
they name, canonical names, one thing per device, personal data, every homeassistant.json case, and
properties for any input."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from fixturecases import NOW, Case, cases, hub_router, route
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected, Scan
from hub.domain.vocabulary import BOOLEAN, NUMERIC
from hub.ingest.homeassistant import HomeAssistantDecoder
from hub.ingest.router import Router

HA = "homeassistant"
CASES = cases("homeassistant.json")
EVENT_TYPES = (Reading, Availability, Discovery, Scan, Rejected, Ignored)


def ha_router(**kwargs: Any) -> Router:
    """The Home Assistant decoder alone: what it does, whichever other ecosystems run beside it."""
    return Router([HomeAssistantDecoder(**kwargs)])


def fixture(index: int) -> Case:
    return CASES[index]


def send(router: Router, topic: str, payload: str | bytes | dict[str, Any]) -> list[Event]:
    data = json.dumps(payload) if isinstance(payload, dict) else payload
    return route(router, topic, data)


def readings(events: list[Event]) -> list[Reading]:
    return [e for e in events if isinstance(e, Reading)]


def rejections(events: list[Event]) -> list[Rejected]:
    return [e for e in events if isinstance(e, Rejected)]


def discoveries(events: list[Event]) -> list[Discovery]:
    return [e for e in events if isinstance(e, Discovery)]


def availability(events: list[Event]) -> list[Availability]:
    return [e for e in events if isinstance(e, Availability)]


def only_ignored(events: list[Event]) -> bool:
    return bool(events) and all(isinstance(e, Ignored) for e in events)


def announce(router: Router, topic: str, config: dict[str, Any] | str | bytes) -> Discovery:
    """Publish a config; its one live Discovery."""
    events = send(router, topic, config)
    [found] = discoveries(events)
    assert not found.retired, events
    return found


def one_reading(events: list[Event]) -> Reading:
    [reading] = readings(events)
    assert reading.source == HA
    return reading


def sensor(
    router: Router,
    object_id: str,
    state_topic: str,
    *,
    component: str = "sensor",
    device: str | None = "dev1",
    **options: Any,
) -> Discovery:
    """Announce one entity of device ``device`` (None: no device block)."""
    config: dict[str, Any] = {"name": object_id.replace("_", " "), "state_topic": state_topic, **options}
    if device is not None:
        config.setdefault("device", {"identifiers": [device], "name": device})
    return announce(router, f"{HA}/{component}/{object_id}/config", config)


# -- every fixture case ----------------------------------------------------------------------------------


def case_0_motion_config_named_by_its_device(case: Case) -> None:
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    assert found.thing == "homeassistant.01ad"
    assert found.name == "Garden"  # name null: the entity takes its device's name
    assert found.measurements == ("occupancy",)
    assert found.topics == ("homeassistant/binary_sensor/garden/state",)


def case_1_motion_on(case: Case) -> None:
    router = ha_router()
    announce(router, fixture(0).topic, fixture(0).payload_bytes())
    assert case.meaning == {"motion": True}
    assert one_reading(send(router, case.topic, case.payload_bytes())).values == {"occupancy": True}
    assert one_reading(send(router, case.topic, "OFF")).values == {"occupancy": False}


def case_2_empty_config_deletes(case: Case) -> None:
    router = ha_router()
    announce(router, fixture(0).topic, fixture(0).payload_bytes())
    events = send(router, case.topic, case.payload_bytes())
    assert events == [Discovery("homeassistant.01ad", HA, retired=True)]
    assert only_ignored(send(router, fixture(1).topic, "ON"))  # no longer read


def case_3_switch(case: Case) -> None:
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    assert (found.thing, found.name, found.measurements) == ("homeassistant.garden01ad", "Garden", ("state",))
    assert found.topics == ("homeassistant/switch/irrigation/state",)  # the command topic is not followed
    state = "homeassistant/switch/irrigation/state"
    assert one_reading(send(router, state, "ON")).values == {"state": True}
    assert one_reading(send(router, state, "OFF")).values == {"state": False}


def case_4_abbreviations_and_base_topic(case: Case) -> None:
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    assert found.topics == (case.meaning["state_topic"],)
    assert case.meaning["command_topic"] not in found.topics
    assert found.name == "garden" and found.thing == "homeassistant.irrigation"  # no device, no unique_id
    assert one_reading(send(router, case.meaning["state_topic"], "ON")).values == {"state": True}


def case_5_device_based_discovery(case: Case) -> None:
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    assert found.thing == "homeassistant.0AFFD2"
    assert found.attributes["entities"] == len(case.meaning["components"]) == 2
    assert found.attributes["origin"] == "foobar"
    assert found.topics == ("foobar/sensor/sensor1",)  # the trigger's topic is no state
    reading = one_reading(send(router, "foobar/sensor/sensor1", "12"))
    assert reading.values == {} and reading.unmapped == {"bla2": 12.0}  # no class, no unit: unmapped
    assert not router.decoder_for("foobar/triggers/button1")


def case_6_device_based_shared_state_topic(case: Case) -> None:
    router = ha_router()
    found = announce(router, "homeassistant/device/bedroom/config", case.payload_bytes())
    assert (found.thing, found.name, found.model) == ("homeassistant.ea334450945afc", "Kitchen", "xya")
    assert (found.manufacturer, found.sw_version) == ("Bla electronics", "1.0")
    assert found.measurements == ("humidity", "temperature")
    assert found.topics == (case.meaning["shared_state_topic"],)
    assert found.attributes["origin"] == "bla2mqtt"
    events = send(router, "sensorBedroom/state", '{"temperature": 21.5, "humidity": 48}')
    assert one_reading(events).values == {"temperature": 21.5, "humidity": 48.0}  # ONE reading


def case_7_migrate_discovery_keeps_the_entity(case: Case) -> None:
    router = ha_router()
    sensor_config = {"stat_t": "foobar/sensor/bla2", "dev_cla": "temperature", "unit_of_meas": "°C"}
    announce(router, case.topic, sensor_config)
    assert send(router, case.topic, case.payload_bytes()) == [Ignored(HA, case.topic)]
    assert one_reading(send(router, "foobar/sensor/bla2", "20.5")).values == {"temperature": 20.5}


def case_8_device_tracker_is_never_followed(case: Case) -> None:
    router = ha_router()
    assert only_ignored(send(router, case.topic, case.payload_bytes()))
    decoder = router.decoders[0]
    assert isinstance(decoder, HomeAssistantDecoder)
    assert not decoder.matches("a4567d663eaf/state")  # the older docs' state topic, outside the prefix
    assert only_ignored(send(router, fixture(9).topic, "home"))
    # a sensor naming the tracker's state topic does not make the hub follow it either
    events = send(
        router,
        "homeassistant/sensor/tracker_copy/config",
        {"stat_t": "homeassistant/device_tracker/a4567d663eaf/state", "name": "copy"},
    )
    assert [r.reason for r in rejections(events)] == ["bad_topic"]
    assert all(not d.topics for d in discoveries(events))


def case_9_tracker_state_yields_nothing(case: Case) -> None:
    router = ha_router()
    send(router, fixture(8).topic, fixture(8).payload_bytes())
    for payload in (case.payload_bytes(), b"not_home", b"location_name"):
        assert only_ignored(send(router, case.topic, payload))


def case_10_gps_attributes_are_never_recorded(case: Case) -> None:
    router = ha_router()
    send(router, fixture(8).topic, fixture(8).payload_bytes())
    assert only_ignored(send(router, case.topic, case.payload_bytes()))
    # an entity with a GPS attributes topic: the topic is not followed, its GPS never read
    found = sensor(
        router,
        "phone_battery",
        "phone/battery",
        device_class="battery",
        unit_of_measurement="%",
        json_attributes_topic="phone/gps",
    )
    assert found.topics == ("phone/battery",)
    assert router.decoder_for("phone/gps") is None
    assert only_ignored(send(router, "phone/gps", case.payload_bytes()))
    # entities reading coordinates are personal: not learned
    for name, template in (("latitude", "{{ value_json.latitude }}"), ("where", "{{ value_json.gps.lat }}")):
        events = send(
            router, f"homeassistant/sensor/{name}/config", {"stat_t": "phone/where", "val_tpl": template}
        )
        assert only_ignored(events)
    assert only_ignored(send(router, "phone/where", case.payload_bytes()))


def case_11_home_assistant_birth(case: Case) -> None:
    router = ha_router()
    assert send(router, case.topic, case.payload_bytes()) == [Ignored(HA, "homeassistant/status")]
    assert send(router, case.topic, "offline") == [Ignored(HA, "homeassistant/status")]


def case_12_tasmota_kwh_with_power_class(case: Case) -> None:
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    assert found.measurements == ("energy",)  # never kWh stored as W
    assert set(found.topics) == {case.meaning["state_topic"], case.meaning["availability_topic"]}
    reading = one_reading(send(router, "tasmota01/tele/SENSOR", '{"ENERGY": {"Today": 1.5, "Power": 40}}'))
    assert reading.values == {"energy": 1.5}
    lwt = case.meaning["availability_topic"]
    assert send(router, lwt, "Online") == [Availability("homeassistant.522851", HA, True)]
    assert send(router, lwt, "Offline") == [Availability("homeassistant.522851", HA, False)]


def case_13_tasmota_ble_temperature(case: Case) -> None:
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    assert (found.thing, found.measurements) == ("homeassistant.11DA0C", ("temperature",))
    payload = '{"Time": "2020-09-28T10:00:00", "ATC-a9fcf0": {"Temperature": 21.3, "Humidity": 55}}'
    assert one_reading(send(router, "tele/tasmota_11DA0C/SENSOR", payload)).values == {"temperature": 21.3}
    # the hub reads Tasmota natively: through the whole router the config adds no second thing
    hub = hub_router()
    assert only_ignored(send(hub, case.topic, case.payload_bytes()))
    assert all(e.source == "tasmota" for e in send(hub, "tele/tasmota_11DA0C/SENSOR", payload))


def case_14_empty_retained_config_of_an_unknown_entity(case: Case) -> None:
    router = ha_router()
    assert send(router, case.topic, case.payload_bytes()) == [Ignored(HA, case.topic)]
    sensor(router, "703C50_SW_1", "stat/703C50/SW1", component="binary_sensor", device="703C50")
    assert send(router, case.topic, case.payload_bytes()) == [
        Discovery("homeassistant.703C50", HA, retired=True)
    ]


def _z2m_case(case: Case, state: str, expect: dict[str, Any]) -> None:
    """A Zigbee2MQTT-published config: read alone it works; beside the Z2M decoder it adds nothing."""
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    [z2m_topic] = [t for t in found.topics if t != "zigbee2mqtt/bridge/state"]
    assert one_reading(send(router, z2m_topic, state)).values == expect
    hub = hub_router()
    assert only_ignored(send(hub, case.topic, case.payload_bytes()))
    events = send(hub, z2m_topic, state)
    assert events and all(e.source == "zigbee2mqtt" for e in events), events
    assert all(e.source == "zigbee2mqtt" for e in send(hub, "zigbee2mqtt/bridge/state", '{"state":"online"}'))


def case_15_z2m_battery(case: Case) -> None:
    assert case.meaning["device_class"] == "battery"
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    assert found.power == "battery" and found.measurements == ("battery",)
    assert found.manufacturer == "Xiaomi" and found.sw_version == "3000-0001"
    assert found.thing == "homeassistant.zigbee2mqtt_0x00158d0002d7bcbf"
    _z2m_case(case, '{"battery": 97, "temperature": 21.2, "linkquality": 60}', {"battery": 97.0})


def case_16_z2m_availability_with_template(case: Case) -> None:
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    thing = found.thing
    assert send(router, "zigbee2mqtt/bridge/state", '{"state":"online"}') == [Availability(thing, HA, True)]
    assert send(router, "zigbee2mqtt/bridge/state", '{"state":"offline"}') == [Availability(thing, HA, False)]
    _z2m_case(case, '{"battery": 100, "water_leak": false}', {"battery": 100.0})


def case_17_z2m_inverted_contact(case: Case) -> None:
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    assert found.measurements == ("contact",)
    # contact:true (closed) is payload_off: the door is not open, canonical contact true
    assert one_reading(send(router, "zigbee2mqtt/porte", '{"contact": true}')).values == {"contact": True}
    assert one_reading(send(router, "zigbee2mqtt/porte", '{"contact": false}')).values == {"contact": False}
    _z2m_case(case, '{"contact": true}', {"contact": True})


def case_18_strings_for_numbers_and_booleans(case: Case) -> None:
    router = ha_router()
    found = announce(router, case.topic, case.payload_bytes())
    assert found.attributes["expire_after"] == 1  # "1" coerced
    assert found.measurements == ("power",)  # no class: W names the quantity
    for raw, value in (("10", 10.0), ("20", 20.0)):
        assert one_reading(send(router, "zigbee2mqtt/sensor/state", raw)).values == {"power": value}


CHECKS: dict[int, Callable[[Case], None]] = {
    0: case_0_motion_config_named_by_its_device,
    1: case_1_motion_on,
    2: case_2_empty_config_deletes,
    3: case_3_switch,
    4: case_4_abbreviations_and_base_topic,
    5: case_5_device_based_discovery,
    6: case_6_device_based_shared_state_topic,
    7: case_7_migrate_discovery_keeps_the_entity,
    8: case_8_device_tracker_is_never_followed,
    9: case_9_tracker_state_yields_nothing,
    10: case_10_gps_attributes_are_never_recorded,
    11: case_11_home_assistant_birth,
    12: case_12_tasmota_kwh_with_power_class,
    13: case_13_tasmota_ble_temperature,
    14: case_14_empty_retained_config_of_an_unknown_entity,
    15: case_15_z2m_battery,
    16: case_16_z2m_availability_with_template,
    17: case_17_z2m_inverted_contact,
    18: case_18_strings_for_numbers_and_booleans,
}


def test_every_homeassistant_fixture_case_has_a_check() -> None:
    assert sorted(CHECKS) == [c.index for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_homeassistant_fixture_case(case: Case) -> None:
    CHECKS[case.index](case)


def test_a_tracker_inside_a_device_config_is_skipped_and_its_topics_never_followed() -> None:
    router = ha_router()
    config = {
        "dev": {"ids": "phone-1"},
        "o": {"name": "companion"},
        "cmps": {
            "where": {"p": "device_tracker", "stat_t": "phone/where", "json_attr_t": "phone/gps"},
            "bat": {"p": "sensor", "stat_t": "phone/battery", "dev_cla": "battery", "unit_of_meas": "%"},
        },
    }
    found = announce(router, "homeassistant/device/phone1/config", config)
    assert found.topics == ("phone/battery",) and found.attributes["entities"] == 1
    events = send(router, "homeassistant/sensor/spy/config", {"stat_t": "phone/gps", "name": "spy"})
    assert [r.reason for r in rejections(events)] == ["bad_topic"]
    assert router.decoder_for("phone/gps") is None and router.decoder_for("phone/where") is None


# -- configs -----------------------------------------------------------------------------------------------


def test_device_origin_and_availability_abbreviations_are_expanded() -> None:
    router = ha_router()
    config = {
        "stat_t": "kitchen/air",
        "uniq_id": "kitchen_air_t",
        "val_tpl": "{{ value_json.t }}",
        "dev_cla": "temperature",
        "unit_of_meas": "°C",
        "avty": [{"t": "kitchen/alive", "pl_avail": "yes", "pl_not_avail": "no", "val_tpl": "{{ value }}"}],
        "dev": {
            "ids": "kitchen-1",
            "name": "Kitchen air",
            "mf": "Acme",
            "mdl": "Air 2",
            "mdl_id": "A2",
            "sw": "1.4",
            "hw": "rev3",
            "sn": "SN1",
            "sa": "Kitchen",
            "cu": "http://kitchen-air.local",
            "cns": [["mac", "AA:BB:CC:DD:EE:FF"]],
        },
        "o": {"name": "acme2mqtt", "sw": "0.9", "url": "https://acme.example"},
        "some_future_option": {"ignored": True},
    }
    found = announce(router, "homeassistant/sensor/kitchen_air/config", config)
    assert (found.thing, found.name, found.model, found.manufacturer, found.sw_version) == (
        "homeassistant.kitchen-1",
        "Kitchen air",
        "Air 2",
        "Acme",
        "1.4",
    )
    assert found.attributes["identifiers"] == ["kitchen-1"]
    assert found.attributes["origin"] == "acme2mqtt"
    assert found.attributes["model_id"] == "A2" and found.attributes["hw_version"] == "rev3"
    assert set(found.topics) == {"kitchen/air", "kitchen/alive"}
    assert one_reading(send(router, "kitchen/air", '{"t": 19.5}')).values == {"temperature": 19.5}
    assert send(router, "kitchen/alive", "yes") == [Availability("homeassistant.kitchen-1", HA, True)]
    assert send(router, "kitchen/alive", "no") == [Availability("homeassistant.kitchen-1", HA, False)]


@pytest.mark.parametrize(
    ("base", "value", "expected"),
    [
        ("garden/pump", "~/state", "garden/pump/state"),
        ("garden/pump", "devices/~", "devices/garden/pump"),
        ("garden/pump", "a/~/b", "a/~/b"),  # only at the start or the end
    ],
)
def test_base_topic_expands_at_start_or_end_only(base: str, value: str, expected: str) -> None:
    found = announce(ha_router(), "homeassistant/switch/pump/config", {"~": base, "stat_t": value})
    assert found.topics == (expected,)


def test_base_topic_applies_to_availability_entries_and_device_components() -> None:
    router = ha_router()
    config = {
        "dev": {"ids": ["pump-7"]},
        "o": {"name": "diy"},
        "~": "garden/pump",
        "avty": [{"t": "~/alive"}],
        "cmps": {"relay": {"p": "switch", "stat_t": "~/relay", "uniq_id": "pump7_relay"}},
    }
    found = announce(router, "homeassistant/device/pump7/config", config)
    assert set(found.topics) == {"garden/pump/relay", "garden/pump/alive"}


def test_unknown_keys_are_ignored_and_strings_coerced() -> None:
    router = ha_router()
    config = {
        "stat_t": "lab/power",
        "dev_cla": "power",
        "unit_of_meas": "W",
        "exp_aft": "300",
        "frc_upd": "true",
        "qos": "1",
        "en": "false",
        "brand_new_option": [1, 2, 3],
        "dev": {"ids": ["lab-1"]},
    }
    found = announce(router, "homeassistant/sensor/lab_power/config", config)
    assert found.attributes["expire_after"] == 300
    assert one_reading(send(router, "lab/power", "12.5")).values == {"power": 12.5}


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        (b"{'name': 'x', 'stat_t': 'a/b'}", "not_json", "Python repr"),
        (b'{"name": "x", "stat_t": "a/b"', "not_json", "not JSON"),
        (b"[1, 2]", "not_object", "expected an object"),
        (b"\xff\xfe{}", "not_utf8", "UTF-8"),
        (b'{"stat_t": ["a"]}', "bad_config", "state_topic"),
        (b'{"stat_t": "a/b", "val_tpl": "{{ value_json.x "}', "template_error", "value_json"),
        (b'{"stat_t": "a/b", "val_tpl": "{% macro m() %}{% endmacro %}"}', "template_error", "macro"),
        (
            b'{"stat_t": "a/b", "val_tpl": "{% for a in value %}{% for b in a %}{% endfor %}{% endfor %}"}',
            "template_error",
            "nested",
        ),
        (b'{"stat_t": "a/b", "avty": "online"}', "bad_config", "availability"),
    ],
)
def test_broken_configs_are_rejected_with_a_reason(payload: bytes, reason: str, detail: str) -> None:
    router = ha_router()
    [rejected] = send(router, "homeassistant/sensor/broken/config", payload)
    assert isinstance(rejected, Rejected)
    assert rejected.reason == reason and detail in rejected.detail, rejected
    assert router.decoder_for("a/b") is None  # nothing was learned


@pytest.mark.parametrize(
    "topic",
    [
        "homeassistant/sensor/config",
        "homeassistant/sensor/a/b/c/config",
        "homeassistant/sensor/bad.id/config",
        "homeassistant/sensor/node/bad id/config",
        "homeassistant/sen-sor/x/config",
    ],
)
def test_config_topics_outside_the_layout_are_rejected(topic: str) -> None:
    [rejected] = send(ha_router(), topic, {"stat_t": "x/y"})
    assert isinstance(rejected, Rejected) and rejected.reason == "bad_topic"


def test_a_broken_config_keeps_what_was_learned_before() -> None:
    router = ha_router()
    sensor(router, "t", "lab/t", device_class="temperature", unit_of_measurement="°C")
    assert rejections(send(router, "homeassistant/sensor/t/config", b'{"stat_t": "lab/t"'))
    assert one_reading(send(router, "lab/t", "20")).values == {"temperature": 20.0}


def test_retained_config_replayed_is_idempotent() -> None:
    router = ha_router()
    first = sensor(router, "t", "lab/t", device_class="temperature", unit_of_measurement="°C")
    again = sensor(router, "t", "lab/t", device_class="temperature", unit_of_measurement="°C")
    assert first == again
    assert one_reading(send(router, "lab/t", "20")).values == {"temperature": 20.0}  # read once, not twice


def test_deleting_one_entity_updates_the_device_and_the_last_retires_it() -> None:
    router = ha_router()
    sensor(router, "t", "lab/t", device_class="temperature", unit_of_measurement="°C")
    sensor(router, "h", "lab/h", device_class="humidity", unit_of_measurement="%")
    [left] = send(router, "homeassistant/sensor/t/config", b"")
    assert isinstance(left, Discovery) and not left.retired
    assert left.measurements == ("humidity",) and left.topics == ("lab/h",)
    assert router.decoder_for("lab/t") is None
    assert send(router, "homeassistant/sensor/h/config", b"") == [
        Discovery("homeassistant.dev1", HA, retired=True)
    ]
    assert router.decoder_for("lab/h") is None


def test_an_entity_moved_to_another_device_retires_the_empty_one() -> None:
    router = ha_router()
    sensor(router, "t", "lab/t", device="old", device_class="temperature")
    events = send(
        router,
        "homeassistant/sensor/t/config",
        {"stat_t": "lab/t", "dev_cla": "temperature", "dev": {"ids": "new"}},
    )
    assert [(d.thing, d.retired) for d in discoveries(events)] == [
        ("homeassistant.old", True),
        ("homeassistant.new", False),
    ]
    assert one_reading(send(router, "lab/t", "20")).thing == "homeassistant.new"


def test_device_config_components_removed_by_platform_only_or_by_leaving_them_out() -> None:
    router = ha_router()
    topic = "homeassistant/device/air7/config"
    components = {
        "t": {"p": "sensor", "dev_cla": "temperature", "unit_of_meas": "°C", "val_tpl": "{{ value_json.t }}"},
        "h": {"p": "sensor", "dev_cla": "humidity", "unit_of_meas": "%", "val_tpl": "{{ value_json.h }}"},
        "co2": {
            "p": "sensor",
            "dev_cla": "carbon_dioxide",
            "unit_of_meas": "ppm",
            "val_tpl": "{{ value_json.c }}",
        },
    }
    base = {"dev": {"ids": "air7"}, "o": {"name": "diy"}, "stat_t": "air7/state"}
    assert announce(router, topic, {**base, "cmps": components}).measurements == (
        "co2",
        "humidity",
        "temperature",
    )
    removed = {**components, "h": {"p": "sensor"}}
    assert announce(router, topic, {**base, "cmps": removed}).measurements == ("co2", "temperature")
    left_out = {"t": components["t"]}
    assert announce(router, topic, {**base, "cmps": left_out}).measurements == ("temperature",)
    reading = one_reading(send(router, "air7/state", '{"t": 20, "h": 40, "c": 600}'))
    assert reading.values == {"temperature": 20.0}


def test_device_config_bad_component_is_rejected_and_the_others_kept() -> None:
    router = ha_router()
    config = {
        "dev": {"ids": "air8"},
        "o": {"name": "diy"},
        "stat_t": "air8/state",
        "cmps": {
            "t": {"p": "sensor", "dev_cla": "temperature", "val_tpl": "{{ value_json.t }}"},
            "bad": {"p": "sensor", "val_tpl": "{{ value_json.t "},
            "nop": {"dev_cla": "humidity"},
            "junk": "sensor",
        },
    }
    events = send(router, "homeassistant/device/air8/config", config)
    [found] = discoveries(events)
    assert found.measurements == ("temperature",)
    assert sorted(r.reason for r in rejections(events)) == ["bad_config", "bad_config", "template_error"]
    [rejected] = send(router, "homeassistant/device/air9/config", {"dev": {"ids": "x"}, "cmps": "sensor"})
    assert isinstance(rejected, Rejected) and rejected.reason == "bad_config"


# -- topics the decoder follows ------------------------------------------------------------------------------


def test_subscribes_to_the_prefix_with_replay_and_claims_learned_topics_only() -> None:
    decoder = HomeAssistantDecoder("ha-discovery")
    router = Router([decoder])
    assert [(s.topic, s.replay) for s in decoder.subscriptions()] == [("ha-discovery/#", True)]
    assert decoder.matches("ha-discovery/sensor/x/config")
    assert not decoder.matches("homeassistant/sensor/x/config")
    assert not decoder.matches("lab/t")
    found = announce(router, "ha-discovery/sensor/t/config", {"stat_t": "lab/t", "avty_t": "lab/alive"})
    assert found.topics == ("lab/alive", "lab/t")
    assert decoder.matches("lab/t") and decoder.matches("lab/alive")
    assert not decoder.matches("lab/t/more") and not decoder.matches("lab")


def test_wildcard_state_topics_are_refused_and_counted() -> None:
    router = ha_router()
    events = send(
        router,
        "homeassistant/sensor/rtl433/config",
        {"stat_t": "+/+/RTL_433toMQTT/GT-WT02/1/4", "avty_t": "rtl/#", "dev_cla": "battery", "name": "b"},
    )
    assert sorted(r.reason for r in rejections(events)) == ["bad_topic", "bad_topic"]
    [found] = discoveries(events)
    assert found.topics == ()
    assert router.decoder_for("a/b/RTL_433toMQTT/GT-WT02/1/4") is None
    assert router.decoder_for("+/+/RTL_433toMQTT/GT-WT02/1/4") is None


def test_config_topics_are_never_taken_as_state_topics() -> None:
    router = ha_router()
    events = send(router, "homeassistant/sensor/sly/config", {"stat_t": "homeassistant/sensor/victim/config"})
    assert [r.reason for r in rejections(events)] == ["bad_topic"]
    found = announce(router, "homeassistant/sensor/victim/config", {"stat_t": "lab/v", "dev_cla": "humidity"})
    assert found.topics == ("lab/v",)


def test_topics_beyond_max_topics_are_refused() -> None:
    router = ha_router(max_topics=3)
    sensor(router, "a", "lab/a", avty_t="lab/alive")
    sensor(router, "b", "lab/b", avty_t="lab/alive")  # the shared availability topic counts once
    [rejected] = send(router, "homeassistant/sensor/c/config", {"stat_t": "lab/c", "name": "c"})
    assert isinstance(rejected, Rejected) and rejected.reason == "too_many_topics"
    assert router.decoder_for("lab/c") is None
    # forgetting one makes room
    send(router, "homeassistant/sensor/a/config", b"")
    assert announce(router, "homeassistant/sensor/c/config", {"stat_t": "lab/c", "name": "c"}).topics == (
        "lab/c",
    )


# -- states -------------------------------------------------------------------------------------------------

TEMPLATES = [
    ("{{ value_json.t | float(0) * 2 }}", '{"t": "10.5"}', 21.0),
    ("{{ value_json.t | float(0) }}", '{"t": "n/a"}', 0.0),
    ("{{ float(value_json.t, 5) }}", '{"t": "bad"}', 5.0),
    ("{{ value_json.t | int }}", '{"t": "21.9"}', 21.0),
    ("{{ value_json.t | int(7) }}", '{"t": "x"}', 7.0),
    ("{{ int(value_json.t, 3) + 1 }}", '{"t": "x"}', 4.0),
    ("{{ value_json.t | round(1) }}", '{"t": 21.456}', 21.5),
    ("{{ (value_json.t | float) | round }}", '{"t": "21.6"}', 22.0),
    ("{{ value_json.t | is_defined }}", '{"t": 18}', 18.0),
    ("{{ value_json.missing | default(19) }}", '{"t": 18}', 19.0),
    ("{{ value_json.unit | lower | replace('c', '20') }}", '{"unit": "C"}', 20.0),
    ("{{ value_json.u | upper | replace('X', '3') }}", '{"u": "x"}', 3.0),
    ("{{ iif(value_json.on, 25, 15) }}", '{"on": true}', 25.0),
    ("{{ value_json.on | iif(25, 15) }}", '{"on": false}', 15.0),
    ("{{ min(value_json.a, value_json.b) }}", '{"a": 4, "b": 3}', 3.0),
    ("{{ max([value_json.a, value_json.b]) }}", '{"a": 4, "b": 3}', 4.0),
    ("{{ value_json.l | max }}", '{"l": [1, 9, 2]}', 9.0),
    ("{{ abs(value_json.t) }}", '{"t": -12}', 12.0),
    ("{{ value_json.t | abs }}", '{"t": -13}', 13.0),
    ("{{ 30 if value_json.on | bool else 10 }}", '{"on": "yes"}', 30.0),
    ("{{ 30 if bool(value_json.on, false) else 10 }}", '{"on": "maybe"}', 10.0),
    ("{{ value_json['ATC-a9fcf0']['Temperature'] }}", '{"ATC-a9fcf0": {"Temperature": 21.3}}', 21.3),
    ('{{ value_json["ENERGY"].Today }}', '{"ENERGY": {"Today": 1.2}}', 1.2),
    ("{{ value_json.list[1] }}", '{"list": [1, 2, 3]}', 2.0),
    ("{{ value_json.list[-1] }}", '{"list": [1, 2, 3]}', 3.0),
    ("{{ value | float / 10 }}", "215", 21.5),
    ("{{ value }}", "21.5", 21.5),
    ("{{ value_json }}", "21.5", 21.5),
    ("{{ value_json.t if value_json.t is number else 0 }}", '{"t": 4}', 4.0),
    ("{{ value_json.t | is_number | iif(8, 9) }}", '{"t": "4"}', 8.0),
    ("{{ '%.1f' | format(value_json.t) }}", '{"t": 21.26}', 21.3),
    ("{{ '%.1f' % value_json.t }}", '{"t": 21.24}', 21.2),
    ("{{ '{:.0f}'.format(value_json.t) }}", '{"t": 21.6}', 22.0),
]


@pytest.mark.parametrize(("template", "payload", "expected"), TEMPLATES)
def test_value_templates_with_home_assistant_filters_and_functions(
    template: str, payload: str, expected: float
) -> None:
    router = ha_router()
    sensor(
        router, "t", "lab/t", device_class="temperature", unit_of_measurement="°C", value_template=template
    )
    events = send(router, "lab/t", payload)
    assert rejections(events) == []
    assert one_reading(events).values == {"temperature": pytest.approx(expected)}


@pytest.mark.parametrize(
    ("template", "payload"),
    [
        ("{{ value_json.t | float }}", '{"t": "n/a"}'),
        ("{{ int(value_json.t) }}", '{"t": "x"}'),
        ("{{ value_json.missing | is_defined }}", '{"t": 1}'),
        ("{{ value_json.t }}", "not json"),  # value_json is undefined when the payload is no JSON
        ("{{ value_json.a.b }}", '{"t": 1}'),
        ("{{ 1 / value_json.t }}", '{"t": 0}'),
        ("{{ value_json.t | round(1000000) }}", '{"t": 1}'),
        ("{{ 'a' * 100000000 }}", "1"),
        ("{{ [1] * 100000000 }}", "1"),
        ("{{ 10 ** 100000000 }}", "1"),
        ("{{ range(100000000) | list | length }}", "1"),
        ("{{ '{:>999999999}'.format(1) }}", "1"),
        ("{{ '%999999999d' % 1 }}", "1"),
        ("{{ '%999999999d' | format(1) }}", "1"),
        ("{{ value | replace('', value * 1000) }}", "x" * 1000),
        ("{{ value.__class__.__mro__[1].__subclasses__() }}", "1"),
        ("{% set x = [] %}{{ x.append(1) }}", "1"),
    ],
)
def test_template_errors_are_rejections_never_exceptions(template: str, payload: str) -> None:
    router = ha_router()
    sensor(router, "t", "lab/t", device_class="temperature", value_template=template)
    events = send(router, "lab/t", payload)
    assert not readings(events) or readings(events)[0].values == {}, events
    reasons = [r.reason for r in rejections(events)]
    assert reasons in (["template_error"], []), events
    assert "decoder_error" not in reasons


def test_a_template_error_of_one_entity_leaves_the_others_of_the_message() -> None:
    router = ha_router()
    sensor(router, "t", "lab/air", device_class="temperature", value_template="{{ value_json.t | float }}")
    sensor(router, "h", "lab/air", device_class="humidity", value_template="{{ value_json.h }}")
    events = send(router, "lab/air", '{"t": "broken", "h": 41}')
    assert one_reading(events).values == {"humidity": 41.0}
    assert [r.reason for r in rejections(events)] == ["template_error"]


@pytest.mark.parametrize(
    ("options", "payload", "expected"),
    [
        ({}, "ON", True),
        ({}, "OFF", False),
        ({"payload_on": "1", "payload_off": "0"}, "1", True),
        ({"payload_on": "1", "payload_off": "0"}, "0", False),
        ({"pl_on": "open", "pl_off": "closed"}, "open", True),
        (
            {"payload_on": True, "payload_off": False, "value_template": "{{ value_json.wet }}"},
            '{"wet": true}',
            True,
        ),
        (
            {"payload_on": False, "payload_off": True, "value_template": "{{ value_json.dry }}"},
            '{"dry": false}',
            True,
        ),
        (
            {"payload_on": False, "payload_off": True, "value_template": "{{ value_json.dry }}"},
            '{"dry": true}',
            False,
        ),
        (
            {"payload_on": "true", "payload_off": "false", "value_template": "{{ value_json.w }}"},
            '{"w": true}',
            True,
        ),
        ({"value_template": "{{ value_json.state }}"}, '{"state": "ON"}', True),
        ({}, "on", True),  # HA's defaults, in another case
    ],
)
def test_binary_states_honour_the_entity_payloads_exactly(
    options: dict[str, Any], payload: str, expected: bool
) -> None:
    router = ha_router()
    sensor(router, "leak", "lab/leak", component="binary_sensor", device_class="moisture", **options)
    assert one_reading(send(router, "lab/leak", payload)).values == {"water_leak": expected}


def test_binary_state_matching_neither_declared_payload_is_rejected() -> None:
    router = ha_router()
    sensor(
        router,
        "leak",
        "lab/leak",
        component="binary_sensor",
        device_class="moisture",
        payload_on="WET",
        payload_off="DRY",
    )
    [rejected] = send(router, "lab/leak", "MAYBE")
    assert isinstance(rejected, Rejected) and rejected.reason == "bad_value"
    for nothing in ("", "unknown", "None"):
        assert only_ignored(send(router, "lab/leak", nothing)), nothing


@pytest.mark.parametrize(
    ("component", "options", "payload", "expected"),
    [
        ("switch", {}, "ON", True),
        ("switch", {"state_on": "running", "state_off": "stopped"}, "running", True),
        ("switch", {"state_on": "running", "state_off": "stopped"}, "stopped", False),
        ("switch", {"payload_on": "1", "payload_off": "0"}, "0", False),
        ("switch", {"val_tpl": "{{ value_json.POWER }}"}, '{"POWER": "OFF"}', False),
        ("light", {}, "ON", True),
        ("light", {"stat_val_tpl": "{{ value_json.state }}"}, '{"state": "OFF"}', False),
        ("light", {"schema": "json"}, '{"state": "ON", "brightness": 200}', True),
        ("light", {"schema": "template", "stat_tpl": "{{ value.split(',')[0] }}"}, "off,255", False),
    ],
)
def test_switches_and_lights_give_state(
    component: str, options: dict[str, Any], payload: str, expected: bool
) -> None:
    router = ha_router()
    found = sensor(router, "relay", "lab/relay", component=component, **options)
    assert found.measurements == ("state",)
    assert one_reading(send(router, "lab/relay", payload)).values == {"state": expected}


# -- canonical names --------------------------------------------------------------------------------------

SENSOR_CLASSES = [
    ("temperature", "°C", "21.5", {"temperature": 21.5}),
    ("temperature", "°F", "68", {"temperature": 20.0}),
    ("humidity", "%", "40", {"humidity": 40.0}),
    ("pressure", "hPa", "1013.2", {"pressure": 1013.2}),
    ("pressure", "Pa", "101320", {"pressure": 1013.2}),
    ("atmospheric_pressure", "kPa", "101.3", {"pressure": 1013.0}),
    ("pm1", "µg/m³", "3", {"pm1": 3.0}),
    ("pm25", "µg/m³", "5.2", {"pm25": 5.2}),
    ("pm10", "µg/m³", "8.1", {"pm10": 8.1}),
    ("carbon_dioxide", "ppm", "612", {"co2": 612.0}),
    ("volatile_organic_compounds_parts", "ppb", "120", {"voc": 120.0}),
    ("illuminance", "lx", "300", {"illuminance": 300.0}),
    ("sound_pressure", "dB", "45", {"noise": 45.0}),
    ("battery", "%", "88", {"battery": 88.0}),
    ("voltage", "mV", "3175", {"voltage": 3.175}),
    ("current", "mA", "250", {"current": 0.25}),
    ("power", "W", "40", {"power": 40.0}),
    ("power", "kW", "1.5", {"power": 1500.0}),
    ("energy", "Wh", "1500", {"energy": 1.5}),
    ("energy", "kWh", "12.3", {"energy": 12.3}),
    ("power", "kWh", "12.3", {"energy": 12.3}),  # Tasmota's class on an energy counter
    ("signal_strength", "dBm", "-61", {"rssi": -61.0}),
    ("precipitation", "mm", "12.4", {"precipitation": 12.4}),
    ("precipitation", "in", "0.5", {"precipitation": 12.7}),  # a rain gauge set to inches
]


@pytest.mark.parametrize(("device_class", "unit", "payload", "expected"), SENSOR_CLASSES)
def test_sensor_device_classes_become_canonical_names_in_canonical_units(
    device_class: str, unit: str, payload: str, expected: dict[str, float]
) -> None:
    router = ha_router()
    found = sensor(router, "x", "lab/x", device_class=device_class, unit_of_measurement=unit)
    assert found.measurements == tuple(expected)
    values = one_reading(send(router, "lab/x", payload)).values
    assert values == {k: pytest.approx(v) for k, v in expected.items()}


@pytest.mark.parametrize(
    ("device_class", "unit"),
    [
        ("signal_strength", "%"),  # Tasmota's Wi-Fi quality, not dBm
        ("volatile_organic_compounds", "µg/m³"),
        ("water", "m³"),
        ("frequency", "Hz"),
        ("moisture", "%"),  # soil moisture is not air humidity
        ("power_factor", "%"),
        ("apparent_power", "VA"),
    ],
)
def test_other_sensor_classes_stay_unmapped_under_the_object_id(device_class: str, unit: str) -> None:
    router = ha_router()
    found = sensor(router, "odd_one", "lab/odd", device_class=device_class, unit_of_measurement=unit)
    assert found.measurements == ()
    reading = one_reading(send(router, "lab/odd", "42"))
    assert reading.values == {} and reading.unmapped == {"odd_one": 42.0}


@pytest.mark.parametrize(
    ("device_class", "unit"), [("power", "%"), ("temperature", "%"), ("pressure", "kWh"), ("power", "VA")]
)
def test_a_class_with_a_unit_it_cannot_have_is_rejected_not_stored(device_class: str, unit: str) -> None:
    router = ha_router()
    found = sensor(router, "odd", "lab/odd", device_class=device_class, unit_of_measurement=unit)
    assert found.measurements == ()
    events = send(router, "lab/odd", "42")
    assert not any(r.values for r in readings(events))
    assert [r.reason for r in rejections(events)] == ["bad_unit"]


@pytest.mark.parametrize(
    ("device_class", "payload", "expected"),
    [
        ("moisture", "ON", {"water_leak": True}),
        ("door", "ON", {"contact": False}),  # on = open; canonical contact true = closed
        ("door", "OFF", {"contact": True}),
        ("window", "ON", {"contact": False}),
        ("opening", "OFF", {"contact": True}),
        ("garage_door", "ON", {"contact": False}),
        ("motion", "ON", {"occupancy": True}),
        ("occupancy", "OFF", {"occupancy": False}),
        ("presence", "ON", {"occupancy": True}),
        ("smoke", "ON", {"smoke": True}),
        ("tamper", "ON", {"tamper": True}),
    ],
)
def test_binary_sensor_classes(device_class: str, payload: str, expected: dict[str, bool]) -> None:
    router = ha_router()
    sensor(router, "b", "lab/b", component="binary_sensor", device_class=device_class)
    assert one_reading(send(router, "lab/b", payload)).values == expected


def test_low_battery_binary_sensor_is_not_the_battery_level() -> None:
    router = ha_router()
    found = sensor(router, "battery_low", "lab/batlow", component="binary_sensor", device_class="battery")
    assert found.measurements == () and found.power == "battery"
    reading = one_reading(send(router, "lab/batlow", "ON"))
    assert reading.values == {} and reading.unmapped == {"battery_low": True}


@pytest.mark.parametrize(
    ("object_id", "unit", "payload", "expected"),
    [
        ("outside", "°C", "4.5", {"temperature": 4.5}),
        ("outside", "°F", "50", {"temperature": 10.0}),
        ("baro", "hPa", "1002", {"pressure": 1002.0}),
        ("baro", "Pa", "100200", {"pressure": 1002.0}),
        ("light_level", "lx", "120", {"illuminance": 120.0}),
        ("air", "ppm", "700", {"co2": 700.0}),
        ("mains", "V", "231", {"voltage": 231.0}),
        ("pm2_5", "µg/m³", "7", {"pm25": 7.0}),
        ("PM10", "µg/m3", "9", {"pm10": 9.0}),
        ("pm_1_0", "µg/m³", "2", {"pm1": 2.0}),
        ("room_humidity", "%", "45", {"humidity": 45.0}),
        ("battery", "%", "90", {"battery": 90.0}),
        ("bme280_temperature", None, "21", {"temperature": 21.0}),
        ("linkquality", "lqi", "120", {"linkquality": 120.0}),
    ],
)
def test_without_a_class_the_unit_or_the_words_name_the_quantity(
    object_id: str, unit: str | None, payload: str, expected: dict[str, float]
) -> None:
    router = ha_router()
    options = {} if unit is None else {"unit_of_measurement": unit}
    found = sensor(router, object_id, "lab/x", **options)
    assert found.measurements == tuple(expected)
    assert one_reading(send(router, "lab/x", payload)).values == {
        k: pytest.approx(v) for k, v in expected.items()
    }


@pytest.mark.parametrize(
    ("object_id", "unit"),
    [
        ("dust", "µg/m³"),  # pm1, pm25 or pm10: unknowable
        ("level", "%"),
        ("power_factor", None),
        ("target_temperature", "°C"),
        ("carbon_monoxide", "ppm"),
        ("uptime", "s"),
        ("wifi_signal", "%"),
    ],
)
def test_ambiguous_entities_stay_unmapped(object_id: str, unit: str | None) -> None:
    router = ha_router()
    options = {} if unit is None else {"unit_of_measurement": unit}
    found = sensor(router, object_id, "lab/x", **options)
    assert found.measurements == ()
    reading = one_reading(send(router, "lab/x", "12"))
    assert reading.values == {} and reading.unmapped == {object_id: 12.0}


def test_text_states_of_unmapped_entities_are_not_kept_as_values() -> None:
    router = ha_router()
    sensor(router, "restart_reason", "lab/reason")
    assert only_ignored(send(router, "lab/reason", "Software Watchdog"))


# -- one reading per device and message -----------------------------------------------------------------


def tasmota_energy(router: Router, key: str, cls: str, unit: str) -> None:
    announce(
        router,
        f"homeassistant/sensor/A1B2C3_ENERGY_{key}/config",
        {
            "name": f"Plug ENERGY {key}",
            "stat_t": "~SENSOR",
            "~": "plug/tele/",
            "avty_t": "~LWT",
            "pl_avail": "Online",
            "pl_not_avail": "Offline",
            "uniq_id": f"A1B2C3_ENERGY_{key}",
            "dev": {"ids": ["A1B2C3"]},
            "unit_of_meas": unit,
            "dev_cla": cls,
            "val_tpl": f"{{{{value_json['ENERGY'].{key}}}}}",
        },
    )


ENERGY_ENTITIES = [
    ("Today", "power", "kWh"),
    ("Total", "power", "kWh"),
    ("Yesterday", "power", "kWh"),
    ("Power", "power", "W"),
    ("Voltage", "voltage", "V"),
    ("Current", "current", "A"),
]
ENERGY_PAYLOAD = (
    '{"Time":"2024-01-01T10:00:00","ENERGY":{"Total":123.45,"Yesterday":1.2,"Today":0.4,'
    '"Power":40,"Voltage":231,"Current":0.18,"Factor":0.94}}'
)


@pytest.mark.parametrize("order", [1, -1], ids=["in order", "reversed"])
def test_entities_sharing_a_topic_give_one_reading_and_one_writer_per_name(order: int) -> None:
    router = ha_router()
    for key, cls, unit in ENERGY_ENTITIES[::order]:
        tasmota_energy(router, key, cls, unit)
    reading = one_reading(send(router, "plug/tele/SENSOR", ENERGY_PAYLOAD))
    # the counter that does not reset each day is the energy, whatever order the configs came in
    assert reading.values == {"energy": 123.45, "power": 40.0, "voltage": 231.0, "current": 0.18}
    assert reading.unmapped == {"A1B2C3_ENERGY_Today": 0.4, "A1B2C3_ENERGY_Yesterday": 1.2}
    assert send(router, "plug/tele/LWT", "Offline") == [Availability("homeassistant.A1B2C3", HA, False)]


def test_two_temperatures_of_one_device_the_chip_is_second_choice() -> None:
    router = ha_router()
    sensor(
        router, "esp_internal_temperature", "node/int", device_class="temperature", unit_of_measurement="°C"
    )
    sensor(router, "room_temperature", "node/room", device_class="temperature", unit_of_measurement="°C")
    assert one_reading(send(router, "node/room", "21")).values == {"temperature": 21.0}
    chip = one_reading(send(router, "node/int", "48"))
    assert chip.values == {} and chip.unmapped == {"esp_internal_temperature": 48.0}


def test_devices_sharing_one_state_topic_get_one_reading_each() -> None:
    router = ha_router()
    sensor(
        router, "a_t", "gw/all", device="a", device_class="temperature", value_template="{{ value_json.a }}"
    )
    sensor(
        router, "b_t", "gw/all", device="b", device_class="temperature", value_template="{{ value_json.b }}"
    )
    got = {r.thing: r.values for r in readings(send(router, "gw/all", '{"a": 20, "b": 22}'))}
    assert got == {"homeassistant.a": {"temperature": 20.0}, "homeassistant.b": {"temperature": 22.0}}


# -- availability -------------------------------------------------------------------------------------------


def test_availability_defaults_and_custom_payloads() -> None:
    router = ha_router()
    sensor(router, "t", "lab/t", avty_t="lab/status")
    assert send(router, "lab/status", "online") == [Availability("homeassistant.dev1", HA, True)]
    assert send(router, "lab/status", "offline") == [Availability("homeassistant.dev1", HA, False)]
    assert only_ignored(send(router, "lab/status", "rebooting"))
    sensor(router, "t2", "lab/t2", device="dev2", avty_t="lab/lwt", pl_avail="Alive", pl_not_avail="Dead")
    assert send(router, "lab/lwt", "Alive") == [Availability("homeassistant.dev2", HA, True)]
    assert send(router, "lab/lwt", "Dead") == [Availability("homeassistant.dev2", HA, False)]


@pytest.mark.parametrize(
    ("mode", "steps"),
    [
        ("latest", [("a", "online", True), ("b", "offline", False), ("a", "online", True)]),
        ("any", [("a", "online", True), ("b", "offline", True), ("a", "offline", False)]),
        ("all", [("a", "online", False), ("b", "online", True), ("b", "offline", False)]),
        (None, [("a", "online", True), ("b", "offline", False)]),  # default: latest
    ],
)
def test_availability_modes(mode: str | None, steps: list[tuple[str, str, bool]]) -> None:
    router = ha_router()
    options: dict[str, Any] = {
        "availability": [{"topic": "lab/a"}, {"topic": "lab/b", "value_template": "{{ value }}"}]
    }
    if mode is not None:
        options["availability_mode"] = mode
    sensor(router, "t", "lab/t", **options)
    for which, payload, online in steps:
        assert send(router, f"lab/{which}", payload) == [Availability("homeassistant.dev1", HA, online)], (
            which,
            payload,
        )


def test_state_and_availability_on_one_topic() -> None:
    router = ha_router()
    sensor(
        router,
        "t",
        "lab/all",
        device_class="temperature",
        value_template="{{ value_json.t }}",
        availability=[
            {"topic": "lab/all", "value_template": "{{ iif(value_json.ok, 'online', 'offline') }}"}
        ],
    )
    events = send(router, "lab/all", '{"t": 20, "ok": true}')
    assert readings(events)[0].values == {"temperature": 20.0}
    assert availability(events) == [Availability("homeassistant.dev1", HA, True)]


# -- identity and the discovery event ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "config", "thing"),
    [
        ("homeassistant/sensor/x/config", {"dev": {"ids": ["first", "second"]}}, "homeassistant.first"),
        ("homeassistant/sensor/x/config", {"dev": {"ids": "single"}}, "homeassistant.single"),
        (
            "homeassistant/sensor/x/config",
            {"dev": {"cns": [["ip", "10.0.0.2"], ["mac", "AA:BB:CC:00:11:22"]]}},
            "homeassistant.aa:bb:cc:00:11:22",
        ),
        ("homeassistant/sensor/x/config", {"uniq_id": "u-42"}, "homeassistant.u-42"),
        ("homeassistant/sensor/node9/x/config", {}, "homeassistant.node9_x"),
        ("homeassistant/sensor/x/config", {}, "homeassistant.x"),
        ("homeassistant/sensor/livingroom/x/config", {"o": {"name": "ESPHome"}}, "esphome.livingroom"),
        (
            "homeassistant/sensor/attic/x/config",
            {"dev": {"ids": "aa", "sw": "2024.6.1 (config hash 0x1a2b3c4d)"}},
            "esphome.attic",
        ),
        ("homeassistant/sensor/garage/x/config", {"dev": {"ids": "bb", "mf": "Espressif"}}, "esphome.garage"),
        ("homeassistant/sensor/x/config", {"dev": {"ids": "cc", "mf": "Espressif"}}, "homeassistant.cc"),
        ("homeassistant/sensor/shed/x/config", {"uniq_id": "ESPsensorx"}, "esphome.shed"),
    ],
)
def test_thing_identity(topic: str, config: dict[str, Any], thing: str) -> None:
    found = announce(ha_router(), topic, {"stat_t": "lab/x", **config})
    assert found.thing == thing


def test_discovery_names_its_measurements_and_battery_power() -> None:
    router = ha_router()
    sensor(
        router, "t", "lab/t", device_class="temperature", unit_of_measurement="°C", name="Porch temperature"
    )
    found = sensor(router, "b", "lab/b", device_class="battery", unit_of_measurement="%")
    assert found.measurements == ("battery", "temperature")
    assert found.power == "battery"
    assert found.name == "dev1"
    assert found.attributes["entities"] == 2 and found.attributes["identifiers"] == ["dev1"]
    nameless = sensor(router, "z", "lab/z", device=None, unique_id="z1", name="Porch light")
    assert nameless.name == "Porch light" and nameless.power is None


# -- through the whole router -------------------------------------------------------------------------------


def test_configs_for_topics_an_earlier_decoder_owns_add_no_thing() -> None:
    hub = hub_router()
    for index in (15, 16, 17, 18):
        case = fixture(index)
        assert only_ignored(send(hub, case.topic, case.payload_bytes())), case.id
    for topic, payload in (
        ("zigbee2mqtt/porte", '{"contact": false}'),
        ("zigbee2mqtt/0x00158d0002d7bcbf", '{"battery": 97}'),
    ):
        events = send(hub, topic, payload)
        assert [e.source for e in events] == ["zigbee2mqtt"], events
    # a config for a topic nobody reads natively is followed by this decoder
    found = announce(
        hub, "homeassistant/sensor/pico/config", {"stat_t": "pico-1/state", "dev_cla": "temperature"}
    )
    assert found.topics == ("pico-1/state",)
    assert one_reading(send(hub, "pico-1/state", "19.5")).values == {"temperature": 19.5}


def test_state_messages_stay_cheap() -> None:
    """The hot path is a dict lookup and a render per entity (no compiling): a generous bound for a Pi."""
    import time

    router = ha_router()
    for key, cls, unit in ENERGY_ENTITIES:
        tasmota_energy(router, key, cls, unit)
    payload = ENERGY_PAYLOAD.encode()
    start = time.perf_counter()
    for _ in range(2000):
        router.route("plug/tele/SENSOR", payload, NOW)
    assert time.perf_counter() - start < 10.0


# -- properties ---------------------------------------------------------------------------------------------

LEVELS = st.sampled_from(
    ["sensor", "binary_sensor", "switch", "light", "device", "device_tracker", "button", "config", "status",
     "state", "node", "x", "0x00158d0002d7bcbf", "", "+", "#", "a.b"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(levels=st.lists(LEVELS | st.text(max_size=8), min_size=0, max_size=5), payload=st.binary(max_size=200))
def test_any_topic_under_the_prefix_and_any_bytes_never_raise(levels: list[str], payload: bytes) -> None:
    router = ha_router()
    topic = "/".join(["homeassistant", *levels])
    events = router.route(topic, payload, NOW)
    assert events and all(isinstance(e, EVENT_TYPES) for e in events)
    assert not [e for e in events if isinstance(e, Rejected) and e.reason == "decoder_error"], events


KEYS = st.sampled_from(
    ["stat_t", "state_topic", "avty_t", "avty", "val_tpl", "value_template", "dev_cla", "unit_of_meas", "dev",
     "device", "o", "~", "uniq_id", "name", "pl_on", "pl_off", "payload_on", "stat_on", "schema", "avty_mode",
     "cmps", "p", "json_attr_t", "exp_aft", "frc_upd", "pl_avail", "pl_not_avail", "migrate_discovery"]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(
        ["lab/s", "~/s", "lab/+", "lab/a", "°C", "hPa", "kWh", "temperature", "door", "power", "ON", "OFF",
         "{{ value_json.t }}", "{{ value | float }}", "{{ value_json.t | round(1) }}", "{{ value_json.t.u }}",
         "{{ value_json['a-b'][0] }}", "{% if value %}1{% endif %}", "{{ 1/0 }}", "{{", "all", "any", "json",
         "online"]
    )
    | st.text(max_size=12)
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(KEYS | st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=25,
)
CONFIG = st.dictionaries(KEYS, JSON, max_size=10)
STATE = (
    st.binary(max_size=60)
    | st.sampled_from([b"ON", b"OFF", b"21.5", b"nan", b"None", b"", b"online", b"offline"])
    | JSON.map(lambda v: json.dumps(v).encode())
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    configs=st.lists(
        st.tuples(st.sampled_from(["sensor", "binary_sensor", "switch", "light", "device", "cover"]), CONFIG),
        min_size=1,
        max_size=4,
    ),
    states=st.lists(st.tuples(st.sampled_from(["lab/s", "lab/a", "lab/+", "~/s", "x"]), STATE), max_size=5),
)
def test_any_configs_then_any_states_never_raise(
    configs: list[tuple[str, dict[str, Any]]], states: list[tuple[str, bytes]]
) -> None:
    router = ha_router()
    learned: set[str] = set()
    for i, (component, config) in enumerate(configs):
        events = router.route(f"homeassistant/{component}/n{i % 2}/config", json.dumps(config).encode(), NOW)
        check_events(events)
        learned.update(t for d in discoveries(events) for t in d.topics)
    for topic, payload in [*states, *((t, b"21.5") for t in sorted(learned))]:
        check_events(router.route(topic, payload, NOW))


def check_events(events: list[Event]) -> None:
    assert events and all(isinstance(e, EVENT_TYPES) for e in events), events
    for event in events:
        if isinstance(event, Rejected):
            assert event.reason != "decoder_error", event
        if isinstance(event, Reading):
            for name, value in event.values.items():
                assert name in NUMERIC or name in BOOLEAN, name
                assert isinstance(value, bool) or (isinstance(value, float) and math.isfinite(value)), value
        if isinstance(event, Discovery):
            assert not any("+" in t or "#" in t for t in event.topics), event
