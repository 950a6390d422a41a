"""Homie 4 and 5: attributes learned (in any order), values read with their datatype and unit, $state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fixturecases import NOW, Case, cases, hub_router, route
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected
from hub.ingest import homie as homie_module
from hub.ingest.homie import HomieDecoder
from hub.ingest.router import Router


@pytest.fixture
def router() -> Router:
    return hub_router()


def feed(router: Router, messages: list[tuple[str, str | bytes]]) -> list[Event]:
    """Route messages in order; the events of the last one."""
    events: list[Event] = []
    for topic, payload in messages:
        events = route(router, topic, payload)
    return events


def only_reading(events: list[Event]) -> Reading:
    [reading] = events
    assert isinstance(reading, Reading), events
    return reading


def ignored(events: list[Event]) -> None:
    assert [type(e) for e in events] == [Ignored]


# -- the real payloads ---------------------------------------------------------------------------------
SUPER_CAR_V4 = [c for c in cases("homie.json") if c.topic and c.topic.startswith("homie/super-car/$")]
DESCRIPTION = {
    "homie": "5.0",
    "name": "Supercar",
    "version": 7,
    "nodes": {
        "engine": {
            "name": "Car engine",
            "properties": {
                "temperature": {
                    "name": "Engine temperature",
                    "unit": "°C",
                    "datatype": "float",
                    "format": "-20:120",
                }
            },
        },
        "info": {"properties": {"label": {"datatype": "string"}}},
    },
}


def _case_0(events: list[Event]) -> None:  # $homie: the device exists
    [event] = events
    assert isinstance(event, Discovery) and event.thing == "homie.super-car"
    assert event.attributes == {"homie": "2.1.0"}


def _case_1(events: list[Event]) -> None:  # $name
    [event] = events
    assert isinstance(event, Discovery) and event.thing == "homie.super-car" and event.name == "Super car"


def _case_3(events: list[Event]) -> None:  # $state ready
    assert events == [Availability("homie.super-car", "homie", True)]


def _case_6(events: list[Event]) -> None:  # the spec's excerpt with "..." placeholders is not JSON
    [event] = events
    assert isinstance(event, Rejected) and event.reason == "not_json"


def _case_7(events: list[Event]) -> None:  # engine temperature 21.5 °C
    assert only_reading(events) == Reading("homie.super-car", "homie", {"temperature": 21.5})


def _case_10(events: list[Event]) -> None:  # hand-rolled device says "4.0"
    [event] = events
    assert isinstance(event, Discovery) and event.thing == "homie.living-room-temp"
    assert event.attributes == {"homie": "4.0"}


def _case_11(events: list[Event]) -> None:  # $unit hPa on property "p": learned, announced as pressure
    [event] = events
    assert isinstance(event, Discovery) and event.measurements == ("pressure",)


def _case_12(events: list[Event]) -> None:  # legacy $online true
    assert events == [Availability("homie.dev", "homie", True)]


EXPECTED: dict[str, Callable[[list[Event]], None]] = {
    "homie[0]": _case_0,
    "homie[1]": _case_1,
    "homie[2]": ignored,  # $nodes: learned
    "homie[3]": _case_3,
    "homie[4]": ignored,  # /set: a command to the device
    "homie[5]": ignored,  # v5 $state init: says nothing yet
    "homie[6]": _case_6,
    "homie[7]": _case_7,
    "homie[8]": ignored,  # $target
    "homie[9]": ignored,  # 0x00: the empty string
    "homie[10]": _case_10,
    "homie[11]": _case_11,
    "homie[12]": _case_12,
}
CONCRETE = {"<device>": "dev", "<node>": "info", "<string-property>": "label"}


def concrete(topic: str | None) -> str:
    assert topic is not None
    for placeholder, value in CONCRETE.items():
        topic = topic.replace(placeholder, value)
    return topic


def test_every_fixture_case_has_an_expectation() -> None:
    assert {c.id for c in cases("homie.json")} == set(EXPECTED)


@pytest.mark.parametrize("case", cases("homie.json"), ids=lambda c: c.id)
def test_fixture_case_decodes_to_its_meaning(router: Router, case: Case) -> None:
    topic = concrete(case.topic)
    if case.id in ("homie[7]", "homie[9]"):  # a v5 value: its device's description first
        route(router, "homie/5/super-car/$description", json.dumps(DESCRIPTION))
        route(router, "homie/5/dev/$description", json.dumps(DESCRIPTION))
    if case.id in ("homie[1]", "homie[2]", "homie[3]"):  # the device's earlier attributes first
        for earlier in SUPER_CAR_V4[: SUPER_CAR_V4.index(case)]:
            route(router, concrete(earlier.topic), earlier.payload_bytes())
    events = route(router, topic, case.payload_bytes())
    assert all(e.source == "homie" for e in events)
    EXPECTED[case.id](events)


def test_fixture_cases_in_order_through_one_router() -> None:
    router = hub_router()
    for case in cases("homie.json"):
        EXPECTED[case.id](route(router, concrete(case.topic), case.payload_bytes()))


def test_v5_value_without_its_description_is_read_by_its_property_id(router: Router) -> None:
    events = route(router, "homie/5/super-car/engine/temperature", "21.5")
    assert only_reading(events).values == {"temperature": 21.5}


# -- Homie 4 -------------------------------------------------------------------------------------------
WEATHER = "homie/living-room-temp"
WEATHER_ATTRIBUTES: list[tuple[str, str | bytes]] = [
    (f"{WEATHER}/$homie", "4.0"),
    (f"{WEATHER}/$name", "Living room"),
    (f"{WEATHER}/$nodes", "temperature,pump"),
    (f"{WEATHER}/temperature/$name", "Climate"),
    (f"{WEATHER}/temperature/$properties", "temp,hum,p"),
    (f"{WEATHER}/temperature/temp/$datatype", "float"),
    (f"{WEATHER}/temperature/temp/$unit", "°F".encode()),
    (f"{WEATHER}/temperature/hum/$datatype", "integer"),
    (f"{WEATHER}/temperature/hum/$unit", "%"),
    (f"{WEATHER}/temperature/p/$datatype", "integer"),
    (f"{WEATHER}/temperature/p/$unit", "Pa"),
    (f"{WEATHER}/pump/on/$datatype", "boolean"),
    (f"{WEATHER}/pump/mode/$datatype", "enum"),
    (f"{WEATHER}/pump/mode/$format", "auto,manual"),
    (f"{WEATHER}/pump/label/$datatype", "string"),
    (f"{WEATHER}/$state", "ready"),
]


@pytest.mark.parametrize(
    ("prop", "payload", "values", "unmapped"),
    [
        ("temperature/temp", "71.6", {"temperature": 22.0}, {}),
        ("temperature/hum", "48", {"humidity": 48.0}, {}),
        ("temperature/p", "101325", {"pressure": 1013.25}, {}),
        ("pump/on", "true", {"state": True}, {}),
        ("pump/on", "false", {"state": False}, {}),
        ("pump/mode", "auto", {}, {"pump/mode": "auto"}),
    ],
)
def test_values_are_converted_from_their_unit(
    router: Router, prop: str, payload: str, values: dict[str, Any], unmapped: dict[str, Any]
) -> None:
    reading = only_reading(feed(router, [*WEATHER_ATTRIBUTES, (f"{WEATHER}/{prop}", payload)]))
    assert reading.thing == "homie.living-room-temp"
    assert reading.values == pytest.approx(values)
    assert reading.unmapped == unmapped


def test_attributes_announce_the_measurements_they_reveal(router: Router) -> None:
    discoveries = []
    for topic, payload in WEATHER_ATTRIBUTES:
        discoveries += [e for e in route(router, topic, payload) if isinstance(e, Discovery)]
    last = discoveries[-1]
    assert last.name == "Living room"
    assert last.measurements == ("humidity", "pressure", "state", "temperature")
    # a retained attribute heard again reveals nothing new
    assert route(router, f"{WEATHER}/temperature/temp/$unit", "°F") == [
        Ignored("homie", f"{WEATHER}/temperature/temp/$unit")
    ]


def test_unit_as_exact_utf8_bytes(router: Router) -> None:
    attrs = [(f"{WEATHER}/n/t/$datatype", "float"), (f"{WEATHER}/n/t/$unit", b"\xc2\xb0C")]
    reading = only_reading(feed(router, [*attrs, (f"{WEATHER}/n/t", "19.5")]))
    assert reading.values == {"temperature": 19.5}


def test_value_before_its_unit_is_read_unconverted_then_converted_once_the_unit_is_known(
    router: Router,
) -> None:
    """Retained order is not guaranteed: decode by the property id at once, convert once $unit is learned."""
    early = only_reading(route(router, "homie/attic/climate/temperature", "20.5"))
    assert early.values == {"temperature": 20.5}
    route(router, "homie/attic/climate/temperature/$datatype", "float")
    route(router, "homie/attic/climate/temperature/$unit", "°F")
    later = only_reading(route(router, "homie/attic/climate/temperature", "68"))
    assert later.values == {"temperature": 20.0}


def test_value_before_its_datatype_with_a_wild_unit_is_rejected_not_stored(router: Router) -> None:
    [event] = route(router, "homie/attic/baro/pressure", "101325")  # Pa, but no $unit heard yet
    assert isinstance(event, Rejected) and event.reason == "out_of_range"


@pytest.mark.parametrize(
    ("unit", "payload", "expected"),
    [
        ("kPa", "101.3", {"pressure": 1013.0}),
        ("hPa", "1013", {"pressure": 1013.0}),
        ("mV", "3175", {"voltage": 3.175}),
        ("kW", "1.5", {"power": 1500.0}),
        ("Wh", "2500", {"energy": 2.5}),
        ("kWh", "2.5", {"energy": 2.5}),
        ("A", "0.5", {"current": 0.5}),
        ("lx", "300", {"illuminance": 300.0}),
        ("dBm", "-70", {"rssi": -70.0}),
    ],
)
def test_unit_alone_names_the_measurement(
    router: Router, unit: str, payload: str, expected: dict[str, float]
) -> None:
    attrs = [("homie/meter/main/value/$datatype", "float"), ("homie/meter/main/value/$unit", unit)]
    reading = only_reading(feed(router, [*attrs, ("homie/meter/main/value", payload)]))
    assert reading.values == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prop", "unit", "payload", "expected"),
    [
        ("battery-voltage", "V", "3.7", {"voltage": 3.7}),
        ("battery", "%", "88", {"battery": 88.0}),
        ("co2", "ppm", "612", {"co2": 612.0}),
        ("pm2-5", "µg/m³", "7.1", {"pm25": 7.1}),
        ("pm10", "µg/m³", "12", {"pm10": 12.0}),
        ("currentTemperature", "°C", "21", {"temperature": 21.0}),
    ],
)
def test_property_words_name_the_measurement(
    router: Router, prop: str, unit: str, payload: str, expected: dict[str, float]
) -> None:
    attrs = [(f"homie/air/sensor/{prop}/$datatype", "float"), (f"homie/air/sensor/{prop}/$unit", unit)]
    reading = only_reading(feed(router, [*attrs, (f"homie/air/sensor/{prop}", payload)]))
    assert reading.values == pytest.approx(expected)


def test_property_name_attribute_names_a_terse_id(router: Router) -> None:
    attrs = [
        ("homie/air/s/rh/$datatype", "float"),
        ("homie/air/s/x1/$datatype", "float"),
        ("homie/air/s/x1/$name", "Relative humidity"),
    ]
    reading = only_reading(feed(router, [*attrs, ("homie/air/s/x1", "55")]))
    assert reading.values == {"humidity": 55.0}


def test_node_words_name_a_number_only_when_its_unit_fits(router: Router) -> None:
    """Node "temperature" of the weatherstation also holds hum and p: p without a unit is no temperature."""
    early = only_reading(route(router, f"{WEATHER}/temperature/p", "0"))
    assert early.values == {} and early.unmapped == {"temperature/p": 0.0}
    attrs = [("homie/cell/battery/level/$datatype", "integer"), ("homie/cell/battery/level/$unit", "%")]
    assert only_reading(feed(router, [*attrs, ("homie/cell/battery/level", "77")])).values == {
        "battery": 77.0
    }
    attrs = [("homie/cell/switch/locked/$datatype", "boolean")]
    assert only_reading(feed(router, [*attrs, ("homie/cell/switch/locked", "true")])).unmapped == {
        "switch/locked": True
    }


@pytest.mark.parametrize(
    ("prop", "attrs", "payload"),
    [
        ("dimmer/level", [("$datatype", "integer"), ("$unit", "%"), ("$settable", "true")], "40"),
        ("wind/direction", [("$datatype", "float"), ("$unit", "°")], "270"),
        ("counter/pulses", [("$datatype", "integer"), ("$unit", "#")], "17"),
        ("heater/target-temperature", [("$datatype", "float"), ("$unit", "°C")], "21"),
    ],
)
def test_settings_angles_and_counts_stay_unmapped(
    router: Router, prop: str, attrs: list[tuple[str, str]], payload: str
) -> None:
    messages = [(f"homie/dev/{prop}/{attr}", value) for attr, value in attrs]
    reading = only_reading(feed(router, [*messages, (f"homie/dev/{prop}", payload)]))
    assert reading.values == {}
    assert reading.unmapped == {prop: float(payload)}


def test_a_second_node_with_the_same_measurement_does_not_mix_into_the_series(router: Router) -> None:
    first = only_reading(route(router, "homie/two/indoor/temperature", "21"))
    second = only_reading(route(router, "homie/two/outdoor/temperature", "4"))
    assert first.values == {"temperature": 21.0}
    assert second.values == {} and second.unmapped == {"outdoor/temperature": 4.0}


@pytest.mark.parametrize("payload", ["TRUE", "1", "on", "yes", "True "])
def test_booleans_are_exactly_true_or_false(router: Router, payload: str) -> None:
    route(router, "homie/lamp/light/on/$datatype", "boolean")
    [event] = route(router, "homie/lamp/light/on", payload.encode())
    assert isinstance(event, Rejected) and event.reason == "bad_value"


def test_float_that_is_not_a_number_is_rejected(router: Router) -> None:
    route(router, "homie/lamp/sensor/temperature/$datatype", "float")
    [event] = route(router, "homie/lamp/sensor/temperature", "warm")
    assert isinstance(event, Rejected) and event.reason == "bad_value"


def test_text_datatypes_are_ignored(router: Router) -> None:
    for datatype, payload in [
        ("string", "hello"),
        ("color", "255,0,0"),
        ("datetime", "2026-09-21T10:00:00Z"),
    ]:
        route(router, f"homie/lamp/info/{datatype}/$datatype", datatype)
        ignored(route(router, f"homie/lamp/info/{datatype}", payload))


@pytest.mark.parametrize(
    ("state", "online"),
    [("ready", True), ("sleeping", True), ("alert", True), ("disconnected", False), ("lost", False)],
)
def test_state_is_availability(router: Router, state: str, online: bool) -> None:
    assert route(router, "homie/lamp/$state", state) == [Availability("homie.lamp", "homie", online)]
    assert route(router, "homie/5/lamp/$state", state) == [Availability("homie.lamp", "homie", online)]


def test_unknown_state_is_rejected(router: Router) -> None:
    [event] = route(router, "homie/lamp/$state", "asleep")
    assert isinstance(event, Rejected) and event.reason == "bad_value"


def test_cleared_homie_attribute_retires_the_device(router: Router) -> None:
    assert route(router, "homie/lamp/$homie", b"") == [Discovery("homie.lamp", "homie", retired=True)]


def test_commands_and_broadcasts_are_ignored(router: Router) -> None:
    for topic in (
        "homie/lamp/light/on/set",
        "homie/$broadcast/alert",
        "homie/lamp/$fw/name",
        "homie/lamp/$mac",
    ):
        ignored(route(router, topic, "x"))


def test_not_utf8_is_rejected(router: Router) -> None:
    [event] = route(router, "homie/lamp/$name", b"\xff\xfeLamp")
    assert isinstance(event, Rejected) and event.reason == "not_utf8"


# -- Homie 5 -------------------------------------------------------------------------------------------
def test_description_is_a_discovery_and_its_units_convert_values(router: Router) -> None:
    description = json.loads(json.dumps(DESCRIPTION))
    description["nodes"]["engine"]["properties"]["temperature"]["unit"] = "°F"
    [discovery] = route(router, "homie/5/super-car/$description", json.dumps(description))
    assert discovery == Discovery(
        "homie.super-car", "homie", name="Supercar", measurements=("temperature",),
        attributes={"homie": "5.0", "version": 7},
    )  # fmt: skip
    reading = only_reading(route(router, "homie/5/super-car/engine/temperature", "212"))
    assert reading.values == {"temperature": 100.0}


def test_v5_zero_length_state_retires_and_forgets_the_device(router: Router) -> None:
    route(router, "homie/5/super-car/$description", json.dumps(DESCRIPTION))
    assert route(router, "homie/5/super-car/$state", b"") == [
        Discovery("homie.super-car", "homie", retired=True)
    ]
    decoder = router.decoder_for("homie/5/super-car/$state")
    assert isinstance(decoder, HomieDecoder) and (5, "super-car") not in decoder._devices


def test_v5_empty_string_value_is_one_nul_byte(router: Router) -> None:
    route(router, "homie/5/dev/$description", json.dumps(DESCRIPTION))
    ignored(route(router, "homie/5/dev/info/label", b"\x00"))


@pytest.mark.parametrize(
    "suffix", ["engine/temperature/$target", "$log/warn", "$alert/low-battery", "engine/temperature/set"]
)
def test_v5_targets_logs_alerts_and_commands_are_ignored(router: Router, suffix: str) -> None:
    ignored(route(router, f"homie/5/super-car/{suffix}", "x"))


def test_description_that_is_not_an_object_is_rejected(router: Router) -> None:
    [event] = route(router, "homie/5/super-car/$description", "[1]")
    assert isinstance(event, Rejected) and event.reason == "not_object"


# -- subscriptions and ownership -----------------------------------------------------------------------
def test_attribute_filters_are_replayed_and_values_are_not() -> None:
    subs = HomieDecoder("homie").subscriptions()
    replayed = {s.topic for s in subs if s.replay}
    assert {"homie/+/$homie", "homie/+/$state", "homie/+/+/+/$datatype", "homie/+/+/+/$unit"} <= replayed
    assert {"homie/5/+/$state", "homie/5/+/$description"} <= replayed
    assert subs[-1].topic == "homie/#" and not subs[-1].replay  # values once, after the attributes
    assert all(s.topic.split("/")[-1].startswith("$") for s in subs if s.replay)


def test_custom_root_is_owned_and_the_default_is_not() -> None:
    router = hub_router(ecosystems={"homie": {"root": "devices/homie"}})
    reading = only_reading(route(router, "devices/homie/attic/climate/temperature", "20"))
    assert reading.thing == "homie.attic"
    decoder = router.decoder_for("homie/attic/climate/temperature")
    assert decoder is None or decoder.name != "homie"


def test_homie_topics_are_owned_by_the_homie_decoder(router: Router) -> None:
    for topic in ("homie/dev/$state", "homie/dev/status/wifi", "homie/5/dev/$description", "homie/dev/n/p"):
        decoder = router.decoder_for(topic)
        assert decoder is not None and decoder.name == "homie", topic


def test_device_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(homie_module, "MAX_DEVICES", 8)
    decoder = HomieDecoder()
    router = Router([decoder])
    for i in range(40):
        route(router, f"homie/dev{i}/n/p/$datatype", "float")
    assert len(decoder._devices) == 8


# -- properties ----------------------------------------------------------------------------------------
KNOWN = (Reading, Availability, Discovery, Rejected, Ignored)
_level = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/#+\x00"), max_size=10)
_attribute = st.sampled_from(
    [
        "$homie",
        "$name",
        "$state",
        "$online",
        "$nodes",
        "$datatype",
        "$unit",
        "$settable",
        "$description",
        "set",
        "$target",
        "$format",
        "$properties",
        "$log",
    ]
)
_topics = st.builds(
    lambda levels, attr, v5: "homie/" + ("5/" if v5 else "") + "/".join([*levels, attr]),
    st.lists(
        st.one_of(_level, st.sampled_from(["dev", "node", "temperature", "$fw"])), min_size=0, max_size=4
    ),
    st.one_of(_attribute, _level),
    st.booleans(),
)
_property_doc = st.dictionaries(
    st.sampled_from(["datatype", "unit", "name", "settable"]), st.one_of(st.text(max_size=6), st.booleans())
)
_node_doc = st.dictionaries(
    st.sampled_from(["properties", "name"]),
    st.one_of(st.text(max_size=5), st.dictionaries(st.text(max_size=5), _property_doc, max_size=3)),
)
_description = st.dictionaries(
    st.sampled_from(["nodes", "name", "homie", "version"]),
    st.one_of(
        st.text(max_size=5), st.integers(), st.dictionaries(st.text(max_size=5), _node_doc, max_size=3)
    ),
)
_payloads = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"\x00",
            b"true",
            b"false",
            b"21.5",
            b"nan",
            b"1e999",
            b"ready",
            b"lost",
            "°C".encode(),
            b"%",
            b"float",
            b"boolean",
            b"integer",
            b"enum",
            b"Pa",
        ]
    ),
    st.builds(lambda obj: json.dumps(obj).encode(), _description),
)


@settings(max_examples=250, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(messages=st.lists(st.tuples(_topics, _payloads), min_size=1, max_size=8))
def test_arbitrary_messages_under_the_root_never_break_the_router(
    router: Router, messages: list[tuple[str, bytes]]
) -> None:
    for topic, payload in messages:
        events = router.route(topic, payload, NOW)
        assert events
        for event in events:
            assert isinstance(event, KNOWN)
            if isinstance(event, Rejected):
                assert event.reason != "decoder_error", event.detail
            if isinstance(event, Reading):
                assert all(isinstance(v, bool | float) for v in event.values.values())


@given(topic=st.text(max_size=40), payload=st.binary(max_size=40))
def test_any_topic_at_all_never_raises(topic: str, payload: bytes) -> None:
    decoder = HomieDecoder()
    if decoder.matches(topic):
        assert all(isinstance(e, KNOWN) for e in Router([decoder]).route(topic, payload, NOW))


def test_node_properties_list_is_learned_without_inventing_measurements() -> None:
    decoder = HomieDecoder()
    router = Router([decoder])
    ignored(route(router, f"{WEATHER}/temperature/$properties", "temp,hum:settable,p"))
    device = decoder._devices[(4, "living-room-temp")]
    assert set(device.properties) == {"temperature/temp", "temperature/hum", "temperature/p"}
    [discovery] = route(router, f"{WEATHER}/$name", "Living room")
    assert isinstance(discovery, Discovery) and discovery.measurements == ()
