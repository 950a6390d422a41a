"""ESPHome in MQTT mode through the router as ``hub run`` builds it: status, plain-value states read by
their object ids, esphome/discover, on_tag scans, the esphome.json cases, and properties for any input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fixturecases import NOW, Case, cases, hub_router, route
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected, Scan
from hub.domain.vocabulary import BOOLEAN, RANGES
from hub.ingest.esphome import COMPONENTS, EsphomeDecoder, esphome_tag, numeric_measurement
from hub.ingest.router import Router

ESP = "esphome"
EVENT_TYPES = Availability | Discovery | Ignored | Reading | Rejected | Scan

#: Cases 6–8 are Home Assistant discovery configs ESPHome publishes: the Home Assistant decoder's tests.
HOME_ASSISTANT_CASES = {6, 7, 8}


def reading(node: str, values: dict[str, Any], **unmapped: Any) -> Reading:
    return Reading(f"{ESP}.{node}", ESP, values, None, unmapped)


# case index → (concrete topic, the events its `meaning` calls for)
EXPECTED: dict[int, tuple[str, list[Event]]] = {
    0: ("livingroom/status", [Availability("esphome.livingroom", ESP, True)]),
    1: ("livingroom/status", [Availability("esphome.livingroom", ESP, False)]),
    2: (
        "esp-weather-outdoor/sensor/temperature/state",
        [reading("esp-weather-outdoor", {"temperature": 20.0})],
    ),
    3: (
        "aircon-sonoffpowr320d-2/sensor/aircon_power_factor/state",
        [Ignored(ESP, "aircon-sonoffpowr320d-2/sensor/aircon_power_factor/state")],
    ),
    4: (
        "livingroom/sensor/living_room_temperature/state",
        [Ignored(ESP, "livingroom/sensor/living_room_temperature/state")],
    ),
    # a binary sensor whose id names no boolean measurement is an on/off state
    5: ("livingroom/binary_sensor/doorbell_button/state", [reading("livingroom", {"state": True})]),
    9: (
        "esphome/discover/esp32-test",
        [
            Discovery(
                thing="esphome.esp32-test",
                source=ESP,
                name="Test Device",
                model="esp32-c3-devkitm-1",
                manufacturer="Espressif",
                sw_version="2024.4.1",
                attributes={
                    "ip": "192.168.0.122",
                    "mac": "84fce6123456",
                    "platform": "ESP32",
                    "board": "esp32-c3-devkitm-1",
                },
            )
        ],
    ),
    # rdm6300's x: the 4 id bytes as a decimal uint32, 7616525 = 0x0074380D
    10: ("rdm6300/tag", [Scan(reader="esphome.rdm6300", source=ESP, tag="0074380D")]),
}


def esphome_cases() -> list[Case]:
    return [c for c in cases("esphome.json") if c.index not in HOME_ASSISTANT_CASES]


@pytest.mark.parametrize("case", esphome_cases(), ids=lambda c: c.id)
def test_fixture_case_decodes_to_its_meaning(case: Case) -> None:
    topic, expected = EXPECTED[case.index]
    if "<" not in case.topic:
        assert topic == case.topic
    assert route(hub_router(), topic, case.payload_bytes()) == expected


def test_every_fixture_case_has_an_owner() -> None:
    assert {c.index for c in cases("esphome.json")} == {*EXPECTED, *HOME_ASSISTANT_CASES}


@pytest.mark.parametrize("payload", [b"nan", b"NaN", b"None", b"-nan", b""])
def test_no_value_spellings_are_ignored_not_rejected(payload: bytes) -> None:
    router = hub_router()
    for topic in (
        "node/sensor/temperature/state",
        "node/sensor/uptime/state",
        "node/binary_sensor/motion/state",
    ):
        assert route(router, topic, payload) == [Ignored(ESP, topic)]


# -- object ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("object_id", "payload", "values"),
    [
        ("living_room_temperature", "21.50", {"temperature": 21.5}),
        ("bme280_temperature", "-3.2", {"temperature": -3.2}),
        ("outside_temp", "7", {"temperature": 7.0}),
        ("humidity", "45.3", {"humidity": 45.3}),
        ("bme280_pressure", "1013.2", {"pressure": 1013.2}),
        ("pm_2_5", "8", {"pm25": 8.0}),
        ("pm2_5", "8", {"pm25": 8.0}),
        ("pm25", "8", {"pm25": 8.0}),
        ("particulate_matter_2_5_m_concentration", "8", {"pm25": 8.0}),
        ("pm_10_0", "12", {"pm10": 12.0}),
        ("pm10", "12", {"pm10": 12.0}),
        ("pm_1_0", "3", {"pm1": 3.0}),
        ("co2", "612", {"co2": 612.0}),
        ("scd30_carbon_dioxide", "612", {"co2": 612.0}),
        ("bh1750_illuminance", "350.5", {"illuminance": 350.5}),
        ("battery_level", "87", {"battery": 87.0}),
        ("battery_voltage", "3.71", {"voltage": 3.71}),
        ("vcc", "3.29", {"voltage": 3.29}),
        ("current", "0.42", {"current": 0.42}),
        ("power", "97.1", {"power": 97.1}),
        ("energy", "12.25", {"energy": 12.25}),
        ("energy_wh", "1250", {"energy": 1.25}),  # a unit the id ends in is honoured
        ("wifi_signal", "-67", {"rssi": -67.0}),
        ("rssi", "-71", {"rssi": -71.0}),
        ("noise_level", "48.2", {"noise": 48.2}),
        ("tvoc", "120", {"voc": 120.0}),
    ],
)
def test_sensor_object_ids_name_canonical_measurements(
    object_id: str, payload: str, values: dict[str, Any]
) -> None:
    topic = f"node/sensor/{object_id}/state"
    assert route(hub_router(), topic, payload) == [reading("node", values)]


@pytest.mark.parametrize(
    "object_id",
    [
        "uptime",
        "aircon_power_factor",
        "apparent_power",
        "reactive_power",
        "internal_temperature",
        "dew_point",
        "dew_point_temperature",
        "heat_index",
        "absolute_humidity",
        "total_daily_energy",
        "target_temperature",
        "wifi_signal_percent",
        "sps30_pm_2_5_number_concentration",
        "pm_2_5_24h_average",
        "pm_4_0",
        "voc_index",
    ],
)
def test_sensors_that_measure_something_else_stay_unmapped(object_id: str) -> None:
    topic = f"node/sensor/{object_id}/state"
    assert route(hub_router(), topic, "42") == [reading("node", {}, **{object_id: 42.0})]


def test_a_sensor_that_is_not_a_number_is_rejected() -> None:
    for topic in ("node/sensor/temperature/state", "node/sensor/uptime/state"):
        [event] = route(hub_router(), topic, "warm")
        assert isinstance(event, Rejected) and event.reason == "bad_value", event


def test_out_of_range_values_are_rejected() -> None:
    [event] = route(hub_router(), "node/sensor/pm_2_5/state", "43521")
    assert isinstance(event, Rejected) and event.reason == "out_of_range"


@pytest.mark.parametrize(
    ("object_id", "payload", "values"),
    [
        ("pir_motion", "ON", {"occupancy": True}),
        ("presence", "OFF", {"occupancy": False}),
        ("water_leak", "ON", {"water_leak": True}),
        ("smoke_detector", "OFF", {"smoke": False}),
        ("case_tamper", "ON", {"tamper": True}),
        ("front_door", "ON", {"contact": False}),  # ON = open; canonical contact is true when closed
        ("kitchen_window", "OFF", {"contact": True}),
        ("garage_door_contact", "OFF", {"contact": True}),
        ("status", "ON", {"state": True}),
        ("button", "OFF", {"state": False}),
    ],
)
def test_binary_sensors_by_object_id(object_id: str, payload: str, values: dict[str, Any]) -> None:
    assert route(hub_router(), f"node/binary_sensor/{object_id}/state", payload) == [reading("node", values)]


@pytest.mark.parametrize(
    ("topic", "payload", "values"),
    [
        ("node/switch/relay/state", "ON", {"state": True}),
        ("node/switch/water_pump/state", "OFF", {"state": False}),  # a switch is never a leak
        ("node/fan/ceiling_fan/state", "ON", {"state": True}),
        ("node/light/desk_lamp/state", '{"state":"ON","brightness":255,"color_mode":"rgb"}', {"state": True}),
        ("node/light/desk_lamp/state", "OFF", {"state": False}),
        ("node/climate/radiator/current_temperature/state", "19.5", {"temperature": 19.5}),
        ("node/climate/radiator/current_humidity/state", "52", {"humidity": 52.0}),
        ("node/number/temperature_offset/state", "-0.5", {}),
        ("node/number/temperature/state", "21", {}),  # a number entity is a control, never a reading
    ],
)
def test_switches_lights_fans_and_climates(topic: str, payload: str, values: dict[str, Any]) -> None:
    [event] = route(hub_router(), topic, payload)
    assert isinstance(event, Reading) and event.thing == "esphome.node" and event.values == values


def test_binary_sensor_that_is_not_on_off_is_rejected() -> None:
    [event] = route(hub_router(), "node/binary_sensor/motion/state", "maybe")
    assert isinstance(event, Rejected) and event.reason == "bad_value"


@pytest.mark.parametrize(
    "topic",
    [
        "node/text_sensor/ip_address/state",
        "node/text_sensor/esphome_version/state",
        "node/switch/relay/command",
        "node/switch/restart/state",  # ESPHome's restart switch: an action on the node, not a load
        "node/switch/node_safe_mode/state",
        "node/light/desk_lamp/command",
        "node/select/mode/state",
        "node/cover/garage/state",
        "node/climate/radiator/mode/state",
        "node/climate/radiator/target_temperature/state",
        "node/fan/ceiling_fan/speed_level/state",
        "esphome/discover",
    ],
)
def test_text_commands_and_settings_are_ignored(topic: str) -> None:
    assert route(hub_router(), topic, b"192.168.1.20") == [Ignored(ESP, topic)]


# -- status and announcements ---------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"Online", b"1", b'{"state":"online"}', b"connected", b""])
def test_other_status_words_are_someone_elses(payload: bytes) -> None:
    assert route(hub_router(), "somedevice/status", payload) == [Ignored(ESP, "somedevice/status")]


def test_home_assistants_own_status_is_no_esphome_node() -> None:
    router = Router([EsphomeDecoder()])
    assert router.route("homeassistant/status", b"online", NOW) == [
        Ignored("unknown", "homeassistant/status")
    ]


def test_discovery_of_a_non_espressif_board_and_a_custom_prefix() -> None:
    router = hub_router(ecosystems={"esphome": {"discovery_prefix": "lab/esphome"}})
    [event] = route(
        router, "lab/esphome/pico-w", b'{"name":"pico-w","platform":"RP2040","version":"2024.6.0"}'
    )
    assert event == Discovery(
        "esphome.pico-w",
        ESP,
        name="pico-w",
        model="RP2040",
        manufacturer="Raspberry Pi",
        sw_version="2024.6.0",
        attributes={"platform": "RP2040"},
    )
    assert route(router, "lab/esphome/pico-w", b"") == [Ignored(ESP, "lab/esphome/pico-w")]
    [bad] = route(router, "lab/esphome/pico-w", b"[1]")
    assert isinstance(bad, Rejected) and bad.reason == "not_object"


def test_subscriptions_replay_only_the_announcements() -> None:
    subs = {(s.topic, s.replay) for s in EsphomeDecoder().subscriptions()}
    assert ("esphome/discover/+", True) in subs
    assert {"+/status", "+/+/+/state", "+/tag", "+/+/tag"} <= {topic for topic, _ in subs}
    assert [topic for topic, replay in subs if replay] == ["esphome/discover/+"]


# -- tags ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "payload", "reader", "tag"),
    [
        ("rdm6300/tag", "7616525", "esphome.rdm6300", "0074380D"),
        ("frontdoor/tag", "74-10-37-94", "esphome.frontdoor", "74103794"),  # pn532's x
        ("frontdoor/tag", "4-A1-37-94-C2-80-0", "esphome.frontdoor", "04A13794C28000"),
        ("workshop/rdm6300/tag", "4294967295", "esphome.workshop_rdm6300", "FFFFFFFF"),
        ("esphome/workshop/tag", "1", "esphome.workshop", "00000001"),
        ("frontdoor/tag", '{"tag":"C2:99:4A:1B"}', "esphome.frontdoor", "C2994A1B"),
        ("frontdoor/tag", '{"uid":7616525}', "esphome.frontdoor", "0074380D"),
        ("frontdoor/tag", "c2994a1b", "esphome.frontdoor", "C2994A1B"),
    ],
)
def test_on_tag_scans(topic: str, payload: str, reader: str, tag: str) -> None:
    assert route(hub_router(), topic, payload) == [Scan(reader=reader, source=ESP, tag=tag)]


@pytest.mark.parametrize("payload", ["hello", "12-3G", "123456789012345", '{"tag": null}', "-5", "ABC"])
def test_tags_that_are_no_uid_are_rejected_not_guessed(payload: str) -> None:
    [event] = route(hub_router(), "frontdoor/tag", payload)
    assert isinstance(event, Rejected) and event.reason == "bad_tag", event


def test_a_cleared_tag_topic_is_ignored() -> None:
    assert route(hub_router(), "frontdoor/tag", b"") == [Ignored(ESP, "frontdoor/tag")]


# -- properties ------------------------------------------------------------------------------------------

node = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)
object_id = st.from_regex(r"[a-z0-9_]{1,24}", fullmatch=True)
components = st.sampled_from(sorted(COMPONENTS))
leaves = st.sampled_from(["state", "command"])
climate_parts = st.sampled_from(["current_temperature", "current_humidity", "mode"])
topics = st.one_of(
    st.builds("{}/status".format, node),
    st.builds("{}/{}/{}/{}".format, node, components, object_id, leaves),
    st.builds("{}/climate/{}/{}/state".format, node, object_id, climate_parts),
    st.builds("{}/tag".format, node),
    st.builds("{}/{}/tag".format, node, node),
    st.builds("esphome/discover/{}".format, node),
)


@settings(max_examples=600, deadline=None)
@given(topic=topics, payload=st.binary(max_size=120))
def test_any_bytes_on_esphome_topics_never_raise(topic: str, payload: bytes) -> None:
    for event in hub_router().route(topic, payload, NOW):
        assert isinstance(event, EVENT_TYPES)
        if isinstance(event, Reading):
            assert event.thing.startswith("esphome.")
            for name, value in event.values.items():
                assert (
                    isinstance(value, bool)
                    if name in BOOLEAN
                    else type(value) is float and math.isfinite(value)
                )


@settings(max_examples=300, deadline=None)
@given(
    object_id=st.sampled_from(["temperature", "humidity", "pm_2_5", "co2", "wifi_signal", "power", "uptime"]),
    number=st.floats(allow_nan=False, allow_infinity=False, width=32),
    decimals=st.integers(0, 3),
)
def test_a_formatted_number_lands_as_itself_or_is_out_of_range(
    object_id: str, number: float, decimals: int
) -> None:
    text = f"{number:.{decimals}f}"
    [event] = hub_router().route(f"node/sensor/{object_id}/state", text.encode(), NOW)
    name = numeric_measurement(object_id)
    if name is None:
        assert event == reading("node", {}, **{object_id: float(text)})
    elif RANGES[name][0] <= float(text) <= RANGES[name][1]:
        assert event == reading("node", {name: float(text)})
    else:
        assert isinstance(event, Rejected) and event.reason == "out_of_range"


@given(uid=st.integers(0, 2**32 - 1))
def test_decimal_uid_is_the_four_id_bytes_in_hex(uid: int) -> None:
    tag = esphome_tag(str(uid))
    assert len(tag) == 8 and int(tag, 16) == uid and tag == tag.upper()


@given(uid=st.binary(min_size=4, max_size=10))
def test_dashed_hex_uid_is_its_bytes_without_separators(uid: bytes) -> None:
    assert esphome_tag("-".join(f"{b:02X}" for b in uid)) == uid.hex().upper()
