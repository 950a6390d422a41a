"""ESPHome's Home Assistant discovery configs (esphome.json cases 6, 7, 8) through the router as ``hub run``
builds it: the config makes the node's states canonical readings of thing ``esphome.<node>``, the same
thing the ESPHome decoder names for ``<node>/status``."""

from __future__ import annotations

import json

import pytest
from fixturecases import Case, cases, hub_router, route

from hub.domain.events import Availability, Discovery, Event, Reading, Rejected
from hub.ingest.esphome import EsphomeDecoder
from hub.ingest.router import Router

ESPHOME = cases("esphome.json")
DISCOVERY_CASES = [c for c in ESPHOME if c.index in (6, 7, 8)]


def readings(events: list[Event]) -> list[Reading]:
    return [e for e in events if isinstance(e, Reading)]


def discoveries(events: list[Event]) -> list[Discovery]:
    return [e for e in events if isinstance(e, Discovery)]


def announce(router: Router, topic: str, payload: bytes) -> Discovery:
    events = route(router, topic, payload)
    [found] = discoveries(events)
    assert not found.retired and not [e for e in events if isinstance(e, Rejected)], events
    return found


def esphome_thing(node: str) -> str:
    """The thing the ESPHome decoder names for ``<node>/status``."""
    [event] = EsphomeDecoder().decode(f"{node}/status", b"online", 0.0)
    assert isinstance(event, Availability)
    return event.thing


def case_6_garage_door_button(case: Case) -> None:
    """A button has no state; its node's availability (custom topic prefix) is followed."""
    router = hub_router()
    topic = case.topic.replace("<node>", "single-car-gdo").replace("<object_id>", "restart")
    found = announce(router, topic, case.payload_bytes())
    assert found.thing == "esphome.single-car-gdo"
    assert (found.name, found.model, found.manufacturer) == (
        "Single Car Garage Door Opener",
        "esp32dev",
        "espressif",
    )
    assert found.attributes["identifiers"] == [case.meaning["device_mac"].replace(":", "")]
    assert found.measurements == ()
    assert found.topics == ("esphome/single-car-gdo/status",)  # the command topic is not followed
    for payload, online in ((b"online", True), (b"offline", False)):
        events = route(router, "esphome/single-car-gdo/status", payload)
        assert events == [Availability("esphome.single-car-gdo", "esphome", online)]
    command = route(router, "esphome/single-car-gdo/button/restart/command", b"PRESS")
    assert not readings(command)


def case_7_water_meter_truncated(case: Case) -> None:
    """The truncated config is rejected and teaches nothing; complete, a volume in m³ stays unmapped."""
    router = hub_router()
    state = "watermetermqtt/sensor/hauptwasserzaehler_total/state"
    events = route(router, case.topic, case.payload_bytes())
    assert [(type(e), getattr(e, "reason", None)) for e in events] == [(Rejected, "not_json")]
    # nothing learned: the state falls to ESPHome's own decoder, which stores no volume
    assert not [e for e in route(router, state, b"123.456") if isinstance(e, Reading) and e.values]
    # the same config as the firmware published it before the log cut it
    complete = json.loads(case.payload + '"}}')
    assert (
        complete["unit_of_meas"] == case.meaning["unit"]
        and complete["dev_cla"] == case.meaning["device_class"]
    )
    found = announce(router, case.topic, json.dumps(complete).encode())
    assert found.thing == "esphome.watermetermqtt-e5fe64"  # the node name in the discovery topic
    assert found.measurements == ()  # water volume is no canonical measurement
    assert set(found.topics) == {state, "watermetermqtt/status"}
    [reading] = readings(route(router, state, b"123.456"))
    assert reading.thing == "esphome.watermetermqtt-e5fe64"
    assert reading.values == {}  # nothing stored in the time series
    assert reading.unmapped == {"hauptwasserzaehler_total": 123.456}  # listed on the thing


def case_8_temperature(case: Case) -> None:
    router = hub_router()
    found = announce(router, case.topic, case.payload_bytes())
    assert found.thing == "esphome.livingroom" == esphome_thing("livingroom")
    assert found.measurements == ("temperature",)
    assert (found.manufacturer, found.model) == ("Espressif", "esp32dev")
    state = "livingroom/sensor/living_room_temperature/state"
    [reading] = readings(route(router, state, b"21.50"))
    assert (reading.thing, reading.source, reading.values) == (
        "esphome.livingroom",
        "esphome",
        {"temperature": 21.5},
    )
    for nothing in (b"nan", b"None"):
        events = route(router, state, nothing)
        assert not readings(events) and not [e for e in events if isinstance(e, Rejected)], events
    assert route(router, "livingroom/status", b"offline") == [
        Availability("esphome.livingroom", "esphome", False)
    ]


CHECKS = {6: case_6_garage_door_button, 7: case_7_water_meter_truncated, 8: case_8_temperature}


@pytest.mark.parametrize("case", DISCOVERY_CASES, ids=lambda c: c.id)
def test_esphome_discovery_case(case: Case) -> None:
    CHECKS[case.index](case)


def test_every_esphome_discovery_case_is_checked() -> None:
    assert sorted(CHECKS) == [c.index for c in DISCOVERY_CASES] == [6, 7, 8]


def test_fahrenheit_node_converted_and_retired_by_esphome_clean() -> None:
    """An ESPHome node in °F: canonical °C; ``esphome clean-mqtt`` (empty configs) retires the thing."""
    router = hub_router()
    config = {
        "dev_cla": "temperature",
        "unit_of_meas": "°F",
        "stat_t": "porch/sensor/porch_temperature/state",
        "avty_t": "porch/status",
        "uniq_id": "ESPsensorporch_temperature",
        "dev": {
            "ids": "a0b1c2d3e4f5",
            "name": "porch",
            "sw": "2024.11.1 (config hash 0x0badcafe)",
            "mf": "Espressif",
        },
    }
    topic = "homeassistant/sensor/porch/porch_temperature/config"
    assert announce(router, topic, json.dumps(config).encode()).thing == "esphome.porch"
    [reading] = readings(route(router, "porch/sensor/porch_temperature/state", b"68.0"))
    assert reading.values == {"temperature": 20.0}
    assert route(router, topic, b"") == [Discovery("esphome.porch", "esphome", retired=True)]
