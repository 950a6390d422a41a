"""Zigbee2MQTT through the router as ``hub run`` builds it: device JSON, attribute output, availability,
the bridge's state, inventory and events, every zigbee2mqtt.json case, and properties for any input."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fixturecases import NOW, Case, cases, hub_router, route
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected, Scan
from hub.domain.vocabulary import BOOLEAN, NUMERIC, RANGES
from hub.ingest.decoder import thing_id
from hub.ingest.router import Router
from hub.ingest.zigbee2mqtt import Zigbee2MqttDecoder

Z2M = "zigbee2mqtt"
BASES = ["zigbee2mqtt", "zigbee2mqttcc1352"]
EVENT_TYPES = Availability | Discovery | Ignored | Reading | Rejected | Scan


def z2m_router() -> Router:
    """The hub's router with the two coordinators the fixtures come from."""
    return hub_router(ecosystems={"zigbee2mqtt": {"base_topics": BASES}})


def readings(events: list[Event]) -> list[Reading]:
    return [e for e in events if isinstance(e, Reading)]


def rejections(events: list[Event]) -> list[Rejected]:
    return [e for e in events if isinstance(e, Rejected)]


def discoveries(events: list[Event]) -> list[Discovery]:
    return [e for e in events if isinstance(e, Discovery)]


def reading(thing: str, values: dict[str, Any], time: float | None = None, **unmapped: Any) -> Reading:
    return Reading(f"{Z2M}.{thing}", Z2M, values, time, unmapped)


# -- the fixture cases ---------------------------------------------------------------------------------

# case index → (concrete topic, the events its `meaning` calls for)
EXPECTED: dict[int, tuple[str, list[Event]]] = {
    0: (
        "zigbee2mqtt/kitchen_climate",
        [reading("kitchen_climate", {"temperature": 27.34, "humidity": 44.72})],
    ),
    1: ("zigbee2mqtt/hall_motion", [reading("hall_motion", {"occupancy": True})]),
    2: (
        "zigbee2mqtt/0x00158d0001e50d78",
        [
            reading(
                "0x00158d0001e50d78",
                # illuminance and illuminance_lux are one value; 3175 mV on a battery device
                {
                    "battery": 100.0,
                    "voltage": 3.175,
                    "illuminance": 0.0,
                    "linkquality": 18.0,
                    "occupancy": False,
                },
            )
        ],
    ),
    3: (
        "zigbee2mqtt/0x00158d0002006aa6",
        [
            reading(
                "0x00158d0002006aa6",
                {"illuminance": 122.0, "occupancy": False, "battery": 100.0, "voltage": 3.005},
            )
        ],
    ),
    4: (
        "zigbee2mqtt/WeatherGuestRoom",
        [
            reading(
                "WeatherGuestRoom",
                {
                    "temperature": 24.59,
                    "linkquality": 39.0,
                    "humidity": 36.56,
                    "pressure": 990.0,
                    "battery": 37.0,
                    "voltage": 2.975,
                },
            )
        ],
    ),
    5: (
        "zigbee2mqtt/bathroom_leak",
        [
            reading(
                "bathroom_leak",
                {
                    "battery": 100.0,
                    "linkquality": 83.0,
                    "tamper": False,
                    "temperature": 26.0,
                    "voltage": 3.025,
                    "water_leak": False,
                },
                1656118444.933,  # last_seen in epoch milliseconds
                battery_low=False,
                device_temperature=26,
            )
        ],
    ),
    6: (
        "zigbee2mqtt/waterleak-bad",
        [
            # water_leak and battery_low null: no value; the embedded device object and elapsed dropped
            reading(
                "waterleak-bad",
                {"battery": 100.0, "linkquality": 167.0, "temperature": 31.0, "voltage": 3.005},
                1641128048.0,  # 2022-01-02T13:54:08+01:00
            )
        ],
    ),
    7: (
        "zigbee2mqttcc1352/plug_zigbee23",
        [
            reading(
                "plug_zigbee23",
                # mains voltage 241 is volts; the nested update object and the nulls are dropped
                {
                    "current": 0.1,
                    "energy": 8.42,
                    "linkquality": 48.0,
                    "power": 3.0,
                    "state": True,
                    "voltage": 241.0,
                },
                1668539198.0,  # 2022-11-15T19:06:38+00:00
                child_lock="UNLOCK",
                power_outage_memory="on",
            )
        ],
    ),
    8: ("zigbee2mqtt/z1/power", [reading("z1", {"power": 0.0})]),
    9: (
        "zigbee2mqtt/Chauffe-eau",
        [
            reading(
                "Chauffe-eau",
                {
                    "current": 0.0,
                    "energy": 0.01,
                    "linkquality": 87.0,
                    "power": 0.0,
                    "temperature": 33.0,
                    "voltage": 0.0,
                },
                1725921366.0,  # 2024-09-10T00:36:06+02:00
                consumption=0.009999999776482582,
                device_temperature=32,
                interlock=False,
                power_outage_count=177,
                state_l1="OFF",
                state_l2="OFF",
            )
        ],
    ),
    10: ("zigbee2mqtt/bridge/state", [Availability("zigbee2mqtt.bridge", Z2M, True)]),
    11: ("zigbee2mqtt/bridge/state", [Availability("zigbee2mqtt.bridge", Z2M, True)]),
    12: ("zigbee2mqtt/bridge/event", [Ignored(Z2M, "zigbee2mqtt/bridge/event")]),
}


@pytest.mark.parametrize("case", cases("zigbee2mqtt.json"), ids=lambda c: c.id)
def test_fixture_case_decodes_to_its_meaning(case: Case) -> None:
    if case.index == 13:  # the docs excerpt with `[...]` and `//` comments
        [event] = route(z2m_router(), case.topic, case.payload_bytes())
        assert isinstance(event, Rejected) and event.reason == "not_json", event
        return
    topic, expected = EXPECTED[case.index]
    if "<" not in case.topic and "FRIENDLY_NAME" not in case.topic:
        assert topic == case.topic
    assert route(z2m_router(), topic, case.payload_bytes()) == expected


def test_every_fixture_case_has_an_expectation() -> None:
    assert {c.index for c in cases("zigbee2mqtt.json")} == {*EXPECTED, 13}


def test_values_are_floats_or_bools() -> None:
    [event] = route(
        z2m_router(), "zigbee2mqtt/WeatherGuestRoom", cases("zigbee2mqtt.json")[4].payload_bytes()
    )
    assert isinstance(event, Reading)
    assert all(type(v) is float for v in event.values.values())


# -- device messages -----------------------------------------------------------------------------------


def test_range_sentinels_are_rejected_per_field_while_the_rest_lands() -> None:
    router = z2m_router()
    events = route(router, "zigbee2mqtt/air", json.dumps({"pm25": 43521, "energy": 2**48, "humidity": 45}))
    [got] = readings(events)
    assert got.values == {"humidity": 45.0}
    assert sorted((r.reason, r.detail.split(":")[0]) for r in rejections(events)) == [
        ("out_of_range", "energy"),
        ("out_of_range", "pm25"),
    ]


def test_pm_and_air_quality_names_are_canonical() -> None:
    payload = {"pm1": 3, "pm25": 7, "pm10": 11, "co2": 612, "voc": 140, "smoke": False, "contact": True}
    [got] = route(z2m_router(), "zigbee2mqtt/air", json.dumps(payload))
    assert isinstance(got, Reading)
    assert got.values == {
        "pm1": 3.0,
        "pm25": 7.0,
        "pm10": 11.0,
        "co2": 612.0,
        "voc": 140.0,
        "smoke": False,
        "contact": True,  # Zigbee2MQTT's contact is true when closed, as the canonical one
    }


def test_lux_beside_a_raw_illuminance_wins() -> None:
    # Zigbee2MQTT 1.x Hue motion sensor: `illuminance` is 10000·log10(lux)+1, `illuminance_lux` is lux
    [got] = route(z2m_router(), "zigbee2mqtt/hue_motion", b'{"illuminance":16990,"illuminance_lux":50}')
    assert isinstance(got, Reading) and got.values == {"illuminance": 50.0} and got.unmapped == {}


def test_aliases_give_canonical_names_and_yield_to_the_canonical_key() -> None:
    [trv] = route(
        z2m_router(), "zigbee2mqtt/trv", b'{"local_temperature":19.5,"occupied_heating_setpoint":21}'
    )
    assert isinstance(trv, Reading)
    assert trv.values == {"temperature": 19.5} and trv.unmapped == {"occupied_heating_setpoint": 21}
    [both] = route(z2m_router(), "zigbee2mqtt/trv", b'{"local_temperature":19.5,"temperature":20.0}')
    assert isinstance(both, Reading) and both.values == {"temperature": 20.0}
    [radar] = route(z2m_router(), "zigbee2mqtt/radar", b'{"presence":true,"target_distance":1.2}')
    assert isinstance(radar, Reading) and radar.values == {"occupancy": True}


def test_state_other_than_on_off_stays_unmapped() -> None:
    [cover] = route(z2m_router(), "zigbee2mqtt/blind", b'{"state":"OPEN","position":100}')
    assert isinstance(cover, Reading)
    assert cover.values == {} and cover.unmapped == {"state": "OPEN", "position": 100}
    [plug] = route(z2m_router(), "zigbee2mqtt/plug", b'{"state":"OFF"}')
    assert isinstance(plug, Reading) and plug.values == {"state": False}


@pytest.mark.parametrize(
    ("voltage", "battery", "expected"),
    [(3005, True, 3.005), (2.9, True, 2.9), (241, False, 241.0), (3300, False, 3.3), (230.4, False, 230.4)],
)
def test_voltage_without_exposes_is_millivolts_on_battery_devices(
    voltage: float, battery: bool, expected: float
) -> None:
    payload: dict[str, Any] = {"voltage": voltage}
    if battery:
        payload["battery"] = 80
    [got] = route(z2m_router(), "zigbee2mqtt/dev", json.dumps(payload))
    assert isinstance(got, Reading) and got.values["voltage"] == pytest.approx(expected)


def test_bad_last_seen_is_a_counted_problem_not_a_lost_message() -> None:
    events = route(z2m_router(), "zigbee2mqtt/dev", b'{"temperature":20,"last_seen":"yesterday"}')
    [got] = readings(events)
    assert got.values == {"temperature": 20.0} and got.time is None
    assert [r.reason for r in rejections(events)] == ["bad_time"]


def test_last_seen_from_an_unsynced_clock_is_replaced_by_arrival() -> None:
    [got] = route(z2m_router(), "zigbee2mqtt/dev", json.dumps({"temperature": 20, "last_seen": NOW + 86400}))
    assert isinstance(got, Reading) and got.time is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not_json"),
        (b"[1,2]", "not_object"),
        (b'{"temperature": "warm"}', "bad_value"),
        (b'{"occupancy": "maybe"}', "bad_value"),
        (b"\xff\xfe", "not_utf8"),
    ],
)
def test_broken_device_messages_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    events = route(z2m_router(), "zigbee2mqtt/dev", payload)
    assert [r.reason for r in rejections(events)] == [reason]
    assert readings(events) == []


def test_all_null_message_and_empty_retained_payload_are_ignored() -> None:
    router = z2m_router()
    assert route(router, "zigbee2mqtt/dev", b'{"temperature":null,"update":{"state":null}}') == [
        Ignored(Z2M, "zigbee2mqtt/dev")
    ]
    assert route(router, "zigbee2mqtt/dev", b"") == [Ignored(Z2M, "zigbee2mqtt/dev")]


def test_friendly_names_with_slashes_and_spaces_without_inventory() -> None:
    router = z2m_router()
    [got] = route(router, "zigbee2mqtt/garden/Temperatur Balkon", b'{"temperature":12.5}')
    assert isinstance(got, Reading) and got.thing == "zigbee2mqtt.garden_Temperatur_Balkon"
    # a plain value under a name is attribute output of its last level
    [attr] = route(router, "zigbee2mqtt/garden/Temperatur Balkon/humidity", b"80")
    assert attr == Reading("zigbee2mqtt.garden_Temperatur_Balkon", Z2M, {"humidity": 80.0})
    [avail] = route(router, "zigbee2mqtt/garden/Temperatur Balkon/availability", b'{"state":"offline"}')
    assert avail == Availability("zigbee2mqtt.garden_Temperatur_Balkon", Z2M, False)


@pytest.mark.parametrize(
    ("prop", "payload", "values"),
    [
        ("state", b"OFF", {"state": False}),
        ("voltage", b"243", {"voltage": 243.0}),
        ("energy", b"12.05", {"energy": 12.05}),
        ("occupancy", b"true", {"occupancy": True}),
        ("illuminance_lux", b"35", {"illuminance": 35.0}),
    ],
)
def test_attribute_output_plain_values(prop: str, payload: bytes, values: dict[str, Any]) -> None:
    [got] = route(z2m_router(), f"zigbee2mqtt/z1/{prop}", payload)
    assert got == Reading("zigbee2mqtt.z1", Z2M, values)


@pytest.mark.parametrize(
    ("prop", "payload"),
    [("power", b"null"), ("last_seen", b"1656118444933"), ("update", b'{"state":"idle"}'), ("color", b"{}")],
)
def test_attribute_output_without_a_value_is_ignored(prop: str, payload: bytes) -> None:
    topic = f"zigbee2mqtt/z1/{prop}"
    assert route(z2m_router(), topic, payload) == [Ignored(Z2M, topic)]


def test_attribute_output_of_other_properties_is_unmapped() -> None:
    [got] = route(z2m_router(), "zigbee2mqtt/z1/state_l1", b"OFF")
    assert got == Reading("zigbee2mqtt.z1", Z2M, {}, None, {"state_l1": "OFF"})


@pytest.mark.parametrize(
    "topic",
    [
        "zigbee2mqtt/z1/set",
        "zigbee2mqtt/z1/set/state",
        "zigbee2mqtt/z1/get",
        "zigbee2mqtt/room/lamp/get/brightness",
        "zigbee2mqtt/bridge/logging",
        "zigbee2mqtt/bridge/groups",
        "zigbee2mqtt/bridge/request/permit_join",
        "zigbee2mqtt/bridge/response/device/remove",
        "zigbee2mqtt/bridge/extensions",
        "zigbee2mqtt/",
    ],
)
def test_commands_and_other_bridge_topics_are_ignored(topic: str) -> None:
    events = route(z2m_router(), topic, b'{"state":"ON","data":{}}')
    assert events == [Ignored(Z2M, topic)]


# -- availability ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "online"),
    [(b'{"state":"online"}', True), (b'{"state":"offline"}', False), (b"online", True), (b"offline", False)],
)
def test_device_and_bridge_availability_json_or_legacy_text(payload: bytes, online: bool) -> None:
    router = z2m_router()
    assert route(router, "zigbee2mqtt/leak/availability", payload) == [
        Availability("zigbee2mqtt.leak", Z2M, online)
    ]
    assert route(router, "zigbee2mqttcc1352/bridge/state", payload) == [
        Availability("zigbee2mqtt.zigbee2mqttcc1352_bridge", Z2M, online)
    ]


def test_availability_cleared_or_garbled() -> None:
    router = z2m_router()
    assert route(router, "zigbee2mqtt/leak/availability", b"") == [
        Ignored(Z2M, "zigbee2mqtt/leak/availability")
    ]
    [bad] = route(router, "zigbee2mqtt/leak/availability", b'{"state":"maybe"}')
    assert isinstance(bad, Rejected) and bad.reason == "bad_value"
    [bad_bridge] = route(router, "zigbee2mqtt/bridge/state", b"Online-ish")
    assert isinstance(bad_bridge, Rejected) and bad_bridge.reason == "bad_value"


# -- the inventory ---------------------------------------------------------------------------------------

COORDINATOR = {
    "ieee_address": "0x00124b0023456789",
    "type": "Coordinator",
    "network_address": 0,
    "supported": True,
    "friendly_name": "Coordinator",
    "definition": None,
    "power_source": None,
    "interviewing": False,
    "interview_completed": True,
}


def weather_sensor(name: str = "garden/weather", ieee: str = "0x00158d0001a2b3c4") -> dict[str, Any]:
    """A real-shaped WSDCGQ11LM entry of bridge/devices (Zigbee2MQTT 1.x)."""
    return {
        "ieee_address": ieee,
        "type": "EndDevice",
        "network_address": 41234,
        "supported": True,
        "disabled": False,
        "friendly_name": name,
        "description": "",
        "endpoints": {
            "1": {"bindings": [], "configured_reportings": [], "clusters": {"input": [], "output": []}}
        },
        "definition": {
            "model": "WSDCGQ11LM",
            "vendor": "Aqara",
            "description": "Temperature, humidity and pressure sensor",
            "supports_ota": False,
            "options": [],
            "exposes": [
                {"access": 1, "name": "battery", "property": "battery", "type": "numeric", "unit": "%"},
                {
                    "access": 1,
                    "name": "temperature",
                    "property": "temperature",
                    "type": "numeric",
                    "unit": "°C",
                },
                {"access": 1, "name": "humidity", "property": "humidity", "type": "numeric", "unit": "%"},
                {"access": 1, "name": "pressure", "property": "pressure", "type": "numeric", "unit": "hPa"},
                {"access": 1, "name": "voltage", "property": "voltage", "type": "numeric", "unit": "mV"},
                {
                    "access": 1,
                    "name": "linkquality",
                    "property": "linkquality",
                    "type": "numeric",
                    "unit": "lqi",
                    "value_max": 255,
                    "value_min": 0,
                },
            ],
        },
        "power_source": "Battery",
        "software_build_id": "3000-0001",
        "model_id": "lumi.weather",
        "interviewing": False,
        "interview_completed": True,
    }


PLUG = {
    "ieee_address": "0xa4c138d2e5f60718",
    "type": "Router",
    "network_address": 5678,
    "supported": True,
    "disabled": False,
    "friendly_name": "Living room/Plug 1",
    "definition": {
        "model": "TS011F_plug_1",
        "vendor": "TuYa",
        "description": "Smart plug (with power monitoring)",
        "supports_ota": True,
        "exposes": [
            {
                "type": "switch",
                "features": [
                    {
                        "access": 7,
                        "name": "state",
                        "property": "state",
                        "type": "binary",
                        "value_on": "ON",
                        "value_off": "OFF",
                        "value_toggle": "TOGGLE",
                    }
                ],
            },
            {"access": 5, "name": "power", "property": "power", "type": "numeric", "unit": "W"},
            {"access": 5, "name": "current", "property": "current", "type": "numeric", "unit": "A"},
            {"access": 5, "name": "voltage", "property": "voltage", "type": "numeric", "unit": "V"},
            {"access": 5, "name": "energy", "property": "energy", "type": "numeric", "unit": "Wh"},
            {
                "type": "lock",
                "features": [
                    {
                        "name": "state",
                        "property": "child_lock",
                        "type": "binary",
                        "value_on": "LOCK",
                        "value_off": "UNLOCK",
                    }
                ],
            },
            {
                "type": "composite",
                "name": "color_xy",
                "property": "color",
                "features": [{"name": "x", "property": "x", "type": "numeric"}],
            },
            {"access": 1, "name": "linkquality", "property": "linkquality", "type": "numeric", "unit": "lqi"},
        ],
    },
    "power_source": "Mains (single phase)",
    "software_build_id": None,
    "model_id": "TS011F",
    "interviewing": False,
    "interview_completed": True,
}

UNSUPPORTED = {
    "ieee_address": "0x0017880104c5d6e7",
    "type": "EndDevice",
    "friendly_name": "0x0017880104c5d6e7",
    "supported": False,
    "definition": None,
    "power_source": "Battery",
    "model_id": "SML001",
    "interview_completed": True,
}


def inventory(*devices: dict[str, Any]) -> bytes:
    return json.dumps([COORDINATOR, *devices]).encode()


def test_inventory_announces_each_device_and_skips_the_coordinator() -> None:
    events = route(z2m_router(), "zigbee2mqtt/bridge/devices", inventory(weather_sensor(), PLUG, UNSUPPORTED))
    assert events == [
        Discovery(
            thing="zigbee2mqtt.garden_weather",
            source=Z2M,
            name="garden/weather",
            model="WSDCGQ11LM",
            manufacturer="Aqara",
            sw_version="3000-0001",
            measurements=("battery", "temperature", "humidity", "pressure", "voltage", "linkquality"),
            power="battery",
            attributes={
                "ieee_address": "0x00158d0001a2b3c4",
                "type": "EndDevice",
                "model_id": "lumi.weather",
                "description": "Temperature, humidity and pressure sensor",
            },
        ),
        Discovery(
            thing="zigbee2mqtt.Living_room_Plug_1",
            source=Z2M,
            name="Living room/Plug 1",
            model="TS011F_plug_1",
            manufacturer="TuYa",
            sw_version=None,
            measurements=("state", "power", "current", "voltage", "energy", "linkquality"),
            power="mains",
            attributes={
                "ieee_address": "0xa4c138d2e5f60718",
                "type": "Router",
                "model_id": "TS011F",
                "description": "Smart plug (with power monitoring)",
            },
        ),
        Discovery(
            thing="zigbee2mqtt.0x0017880104c5d6e7",
            source=Z2M,
            name="0x0017880104c5d6e7",
            model="SML001",
            power="battery",
            attributes={"ieee_address": "0x0017880104c5d6e7", "type": "EndDevice", "model_id": "SML001"},
        ),
    ]


def test_units_from_exposes_and_names_resolved_from_the_inventory() -> None:
    router = z2m_router()
    route(router, "zigbee2mqtt/bridge/devices", inventory(weather_sensor(), PLUG))
    # exposes say Wh: converted; a plug's voltage in V whatever its size
    [plug] = route(router, "zigbee2mqtt/Living room/Plug 1", b'{"energy":1250,"voltage":231,"state":"ON"}')
    assert plug == Reading(
        "zigbee2mqtt.Living_room_Plug_1", Z2M, {"energy": 1.25, "voltage": 231.0, "state": True}
    )
    # mV from the exposes, even without `battery` in the message
    [attr] = route(router, "zigbee2mqtt/garden/weather/voltage", b"3005")
    assert attr == Reading("zigbee2mqtt.garden_weather", Z2M, {"voltage": 3.005})
    [avail] = route(router, "zigbee2mqtt/Living room/Plug 1/availability", b"online")
    assert avail == Availability("zigbee2mqtt.Living_room_Plug_1", Z2M, True)
    assert route(router, "zigbee2mqtt/Living room/Plug 1/set", b'{"state":"OFF"}') == [
        Ignored(Z2M, "zigbee2mqtt/Living room/Plug 1/set")
    ]


def test_longest_known_friendly_name_wins() -> None:
    router = z2m_router()
    route(
        router, "zigbee2mqtt/bridge/devices", inventory(weather_sensor("room"), weather_sensor("room/power"))
    )
    [got] = route(router, "zigbee2mqtt/room/power", b'{"temperature":20}')
    assert isinstance(got, Reading) and got.thing == "zigbee2mqtt.room_power"
    [attr] = route(router, "zigbee2mqtt/room/temperature", b"21")
    assert attr == Reading("zigbee2mqtt.room", Z2M, {"temperature": 21.0})


def test_a_device_missing_from_a_new_inventory_is_retired_and_a_repeat_retires_nothing() -> None:
    router = z2m_router()
    first = route(router, "zigbee2mqtt/bridge/devices", inventory(weather_sensor(), PLUG))
    again = route(router, "zigbee2mqtt/bridge/devices", inventory(weather_sensor(), PLUG))
    assert again == first and not any(d.retired for d in discoveries(again))
    events = route(router, "zigbee2mqtt/bridge/devices", inventory(PLUG))
    assert [(d.thing, d.retired) for d in discoveries(events)] == [
        ("zigbee2mqtt.Living_room_Plug_1", False),
        ("zigbee2mqtt.garden_weather", True),
    ]


def test_inventories_of_two_coordinators_are_kept_apart() -> None:
    router = z2m_router()
    route(router, "zigbee2mqtt/bridge/devices", inventory(weather_sensor()))
    events = route(router, "zigbee2mqttcc1352/bridge/devices", inventory(PLUG))
    assert [(d.thing, d.retired) for d in discoveries(events)] == [("zigbee2mqtt.Living_room_Plug_1", False)]


def test_device_leave_retires_by_name_or_by_ieee_address() -> None:
    router = z2m_router()
    route(router, "zigbee2mqtt/bridge/devices", inventory(weather_sensor(), PLUG))
    leave = {"type": "device_leave", "data": {"ieee_address": "0x00158d0001a2b3c4"}}
    assert route(router, "zigbee2mqtt/bridge/event", json.dumps(leave)) == [
        Discovery("zigbee2mqtt.garden_weather", Z2M, name="garden/weather", retired=True)
    ]
    leave = {
        "type": "device_leave",
        "data": {"ieee_address": "0xa4c138d2e5f60718", "friendly_name": "Living room/Plug 1"},
    }
    assert route(router, "zigbee2mqtt/bridge/event", json.dumps(leave)) == [
        Discovery("zigbee2mqtt.Living_room_Plug_1", Z2M, name="Living room/Plug 1", retired=True)
    ]
    # gone from what the decoder knows: the next inventory does not retire them again
    assert discoveries(route(router, "zigbee2mqtt/bridge/devices", inventory())) == []


@pytest.mark.parametrize(
    "event",
    [
        {
            "type": "device_joined",
            "data": {"friendly_name": "0x90fd9ffffe6494fc", "ieee_address": "0x90fd9ffffe6494fc"},
        },
        {
            "type": "device_interview",
            "data": {"friendly_name": "x", "status": "started", "ieee_address": "0x1"},
        },
        {"type": "device_announce", "data": {"friendly_name": "x", "ieee_address": "0x1"}},
    ],
)
def test_join_and_interview_events_wait_for_the_inventory(event: dict[str, Any]) -> None:
    assert route(z2m_router(), "zigbee2mqtt/bridge/event", json.dumps(event)) == [
        Ignored(Z2M, "zigbee2mqtt/bridge/event")
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b'{"devices": []}', "not_array"), (b"[{", "not_json"), (b"[42]", "bad_device")],
)
def test_broken_inventories_are_rejected(payload: bytes, reason: str) -> None:
    events = route(z2m_router(), "zigbee2mqtt/bridge/devices", payload)
    assert [r.reason for r in rejections(events)] == [reason]


def test_bridge_info_names_the_bridge_without_its_config() -> None:
    info = {
        "version": "1.40.2",
        "commit": "abc1234",
        "coordinator": {
            "ieee_address": "0x00124b0023456789",
            "type": "zStack3x0",
            "meta": {"revision": 20230507},
        },
        "network": {"channel": 11, "pan_id": 6754},
        "log_level": "info",
        "permit_join": False,
        "config": {"advanced": {"network_key": [1, 2, 3]}, "mqtt": {"user": "z2m", "password": "secret"}},
    }
    [got] = route(z2m_router(), "zigbee2mqtt/bridge/info", json.dumps(info))
    assert got == Discovery(
        "zigbee2mqtt.bridge",
        Z2M,
        name="Zigbee2MQTT (zigbee2mqtt)",
        model="zStack3x0",
        sw_version="1.40.2",
        power="mains",
        attributes={"base_topic": "zigbee2mqtt", "ieee_address": "0x00124b0023456789"},
    )
    assert "secret" not in repr(got) and "network_key" not in repr(got)


def test_subscriptions_per_base_topic_with_the_inventory_replayed() -> None:
    subs = Zigbee2MqttDecoder(BASES).subscriptions()
    assert {(s.topic, s.replay) for s in subs} == {
        (f"{base}/{leaf}", replay)
        for base in BASES
        for leaf, replay in (("#", False), ("bridge/devices", True), ("bridge/info", True))
    }


def test_only_configured_base_topics_match() -> None:
    decoder = Zigbee2MqttDecoder(["zigbee2mqtt"])
    assert decoder.matches("zigbee2mqtt/x")
    assert not decoder.matches("zigbee2mqttcc1352/x")
    assert not decoder.matches("zigbee2mqtt")


# -- properties ------------------------------------------------------------------------------------------

level = st.text(st.characters(codec="utf-8", exclude_characters="/#+\x00"), min_size=0, max_size=8)
tails = st.lists(
    st.one_of(
        level, st.sampled_from(["bridge", "set", "get", "availability", "devices", "state", "event", "info"])
    ),
    min_size=0,
    max_size=5,
).map("/".join)


@settings(max_examples=500, deadline=None)
@given(base=st.sampled_from(BASES), tail=tails, payload=st.binary(max_size=200))
def test_any_topic_under_a_base_and_any_bytes_never_raise(base: str, tail: str, payload: bytes) -> None:
    for event in z2m_router().route(f"{base}/{tail}", payload, NOW):
        assert isinstance(event, EVENT_TYPES)
        assert event.source == Z2M


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(
    [
        *NUMERIC,
        *BOOLEAN,
        "illuminance_lux",
        "presence",
        "local_temperature",
        "last_seen",
        "update",
        "state_l1",
    ]
)


@settings(max_examples=500, deadline=None)
@given(obj=st.dictionaries(keys, json_values, max_size=8), battery=st.booleans())
def test_any_device_object_gives_only_canonical_plausible_values(obj: dict[str, Any], battery: bool) -> None:
    if battery:
        obj["battery"] = 50
    payload = json.dumps(obj, allow_nan=True).encode()
    for event in z2m_router().route("zigbee2mqtt/some/device", payload, NOW):
        assert isinstance(event, Reading | Rejected | Ignored), event
        if isinstance(event, Reading):
            assert event.thing == "zigbee2mqtt.some_device"
            for name, value in event.values.items():
                if name in BOOLEAN:
                    assert isinstance(value, bool)
                else:
                    low, high = RANGES[name]
                    assert type(value) is float and math.isfinite(value) and low <= value <= high


# Zigbee2MQTT friendly names: words with spaces, dashes and underscores, levels joined by `/`
name_level = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,5}", fullmatch=True)
friendly_names = (
    st.lists(name_level, min_size=1, max_size=3)
    .filter(lambda levels: levels[0] != "bridge" and "availability" not in levels)
    .map("/".join)
)


@settings(max_examples=100, deadline=None)
@given(names=st.lists(friendly_names, min_size=1, max_size=6, unique=True))
def test_every_inventoried_name_resolves_to_its_own_thing(names: list[str]) -> None:
    router = z2m_router()
    devices = [weather_sensor(name, f"0x{i:016x}") for i, name in enumerate(names)]
    announced = discoveries(route(router, "zigbee2mqtt/bridge/devices", inventory(*devices)))
    assert [d.thing for d in announced] == [thing_id(Z2M, name) for name in names]
    for name in names:
        [got] = route(router, f"zigbee2mqtt/{name}", b'{"temperature":20,"voltage":3000}')
        assert got == Reading(thing_id(Z2M, name), Z2M, {"temperature": 20.0, "voltage": 3.0})
        assert route(router, f"zigbee2mqtt/{name}/availability", b"offline") == [
            Availability(thing_id(Z2M, name), Z2M, False)
        ]


@settings(max_examples=100, deadline=None)
@given(
    before=st.lists(friendly_names, max_size=6, unique=True),
    after=st.lists(friendly_names, max_size=6, unique=True),
)
def test_retired_things_are_exactly_those_left_out(before: list[str], after: list[str]) -> None:
    router = z2m_router()
    route(router, "zigbee2mqtt/bridge/devices", inventory(*(weather_sensor(n) for n in before)))
    events = route(router, "zigbee2mqtt/bridge/devices", inventory(*(weather_sensor(n) for n in after)))
    retired = {d.thing for d in discoveries(events) if d.retired}
    assert retired == {thing_id(Z2M, n) for n in set(before) - set(after)}
    assert {d.thing for d in discoveries(events) if not d.retired} == {thing_id(Z2M, n) for n in after}
