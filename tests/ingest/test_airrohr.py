"""Sensor.Community airrohr pushes, routed as ``http/airrohr/<sensor>``: string values, Pa, no GPS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixturecases import NOW, Case, cases, hub_router, route
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.events import Availability, Discovery, Ignored, Reading, Rejected, Scan
from hub.ingest.airrohr import AirrohrDecoder
from hub.ingest.router import Router

AIRROHR = cases("sensorcommunity.json")
TOPIC = "http/airrohr/esp8266-12331981"


@pytest.fixture(scope="module")
def router() -> Router:
    return hub_router()


def push(*pairs: tuple[str, str], **body: Any) -> str:
    values = [{"value_type": t, "value": v} for t, v in pairs]
    return json.dumps({"software_version": "NRZ-2020-129", **body, "sensordatavalues": values})


def reading(events: list[Any]) -> Reading:
    [event] = [e for e in events if isinstance(e, Reading)]
    return event


# -- the fixtures ---------------------------------------------------------------------------------------


def test_every_sensorcommunity_fixture_is_claimed() -> None:
    assert [c.id for c in AIRROHR] == [f"sensorcommunity[{i}]" for i in range(4)]


#: case → (canonical values, unmapped fields) its meaning gives
EXPECTED: dict[int, tuple[dict[str, float], dict[str, str]]] = {
    0: (  # custom API push from a SDS011 + BME280
        {
            "pm10": 0.40,
            "pm25": 0.20,
            "temperature": 20.47,
            "pressure": 1006.1325,
            "humidity": 69.02,
            "rssi": -94.0,
        },
        {"samples": "4222662", "min_micro": "32", "max_micro": "3301275"},
    ),
    1: (  # the sensor's local /data.json: SHT3X, no esp8266id, "age" beside the values
        {"pm10": 5.90, "pm25": 4.10, "temperature": 25.84, "humidity": 46.32, "rssi": -83.0},
        {"samples": "10575534", "min_micro": "27", "max_micro": "20137", "interval": "300000"},
    ),
    2: ({"pm10": 0.40, "pm25": 0.20}, {}),  # sensor.community API body, X-Pin 1 (SDS)
    3: ({"temperature": 20.47, "pressure": 1006.1325, "humidity": 69.02}, {}),  # X-Pin 11 (BME280)
}


@pytest.mark.parametrize("case", AIRROHR, ids=lambda c: c.id)
def test_fixture_bodies_give_their_canonical_values(router: Router, case: Case) -> None:
    values, unmapped = EXPECTED[case.index]
    events = route(router, TOPIC, case.payload_bytes())
    assert events == [Reading("airrohr.esp8266-12331981", "airrohr", values, None, unmapped)]


# -- value types ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (
            (("PMS_P0", "3.00"), ("PMS_P1", "9.00"), ("PMS_P2", "6.00")),
            {"pm1": 3.0, "pm10": 9.0, "pm25": 6.0},
        ),
        (
            (("SPS30_P0", "1.10"), ("SPS30_P2", "2.20"), ("SPS30_P4", "2.90"), ("SPS30_P1", "3.30")),
            {"pm1": 1.1, "pm25": 2.2, "pm10": 3.3},
        ),
        ((("HPM_P1", "12.00"), ("HPM_P2", "8.00")), {"pm10": 12.0, "pm25": 8.0}),
        (
            (("NPM_P0", "1.00"), ("NPM_P1", "4.00"), ("NPM_P2", "2.00")),
            {"pm1": 1.0, "pm10": 4.0, "pm25": 2.0},
        ),
        (
            (("BMP280_pressure", "99870.00"), ("BMP280_temperature", "11.20")),
            {"pressure": 998.7, "temperature": 11.2},
        ),
        (
            (("BMP_pressure", "101200.00"), ("BMP_temperature", "9.90")),
            {"pressure": 1012.0, "temperature": 9.9},
        ),
        (
            (("HTU21D_temperature", "19.00"), ("HTU21D_humidity", "60.00")),
            {"temperature": 19.0, "humidity": 60.0},
        ),
        ((("temperature", "18.40"), ("humidity", "71.30")), {"temperature": 18.4, "humidity": 71.3}),  # DHT22
        ((("DS18B20_temperature", "7.25"),), {"temperature": 7.25}),
        (
            (("SCD30_temperature", "22.00"), ("SCD30_humidity", "40.00"), ("SCD30_co2_ppm", "812")),
            {"temperature": 22.0, "humidity": 40.0, "co2": 812.0},
        ),
        (
            (("DNMS_noise_LAeq", "48.30"), ("DNMS_noise_LA_min", "40.10"), ("DNMS_noise_LA_max", "63.00")),
            {"noise": 48.3},
        ),
        ((("noise_LAeq", "48.30"),), {"noise": 48.3}),  # sensor.community body, X-Pin 15
        ((("signal", "-71"),), {"rssi": -71.0}),
    ],
)
def test_firmware_value_types(
    router: Router, pairs: tuple[tuple[str, str], ...], expected: dict[str, float]
) -> None:
    assert reading(route(router, TOPIC, push(*pairs))).values == expected


def test_ppd42ns_counts_are_not_taken_for_micrograms(router: Router) -> None:
    pairs = (
        ("durP1", "4520"),
        ("ratioP1", "0.15"),
        ("P1", "79.31"),
        ("durP2", "300"),
        ("ratioP2", "0.01"),
        ("P2", "5.82"),
    )
    event = reading(route(router, TOPIC, push(*pairs)))
    assert event.values == {}
    assert event.unmapped == dict(pairs)


def test_gps_values_are_dropped_and_never_stored(router: Router) -> None:
    pairs = (
        ("SDS_P1", "4.00"),
        ("GPS_lat", "48.778123"),
        ("GPS_lon", "9.179881"),
        ("GPS_height", "247.30"),
        ("GPS_date", "09/21/2026"),
        ("GPS_time", "13:50:00.00"),
        ("GPS_timestamp", "09/21/2026T13:50:00.00"),
    )
    events = route(router, TOPIC, push(*pairs))
    assert events == [Reading("airrohr.esp8266-12331981", "airrohr", {"pm10": 4.0}, None, {})]


def test_gps_body_for_the_sensor_community_api_is_dropped_too(router: Router) -> None:
    pairs = (
        ("lat", "48.778123"),
        ("lon", "9.179881"),
        ("height", "247.30"),
        ("timestamp", "09/21/2026T13:50"),
    )
    events = route(router, TOPIC, push(*pairs))
    assert events == [Ignored("airrohr", TOPIC)]
    assert "48.77" not in repr(events)


def test_two_sensors_of_one_quantity_first_wins_other_listed(router: Router) -> None:
    pairs = (("BME280_temperature", "20.00"), ("temperature", "21.50"), ("BME280_humidity", "50.00"))
    event = reading(route(router, TOPIC, push(*pairs)))
    assert event.values == {"temperature": 20.0, "humidity": 50.0}
    assert event.unmapped == {"temperature": "21.50"}


def test_failed_sensor_sentinels_are_rejected_and_the_rest_lands(router: Router) -> None:
    pairs = (("BME280_temperature", "-128.00"), ("BME280_humidity", "-1.00"), ("SDS_P1", "3.10"))
    events = route(router, TOPIC, push(*pairs))
    assert reading(events).values == {"pm10": 3.1}
    assert [e.reason for e in events if isinstance(e, Rejected)] == ["out_of_range", "out_of_range"]


def test_a_failed_sensor_leaves_the_quantity_to_the_next() -> None:
    pairs = (("BME280_temperature", "nan"), ("DS18B20_temperature", "6.50"))
    assert reading(route(hub_router(), TOPIC, push(*pairs))).values == {"temperature": 6.5}


def test_bare_chip_id_names_the_same_thing_as_x_sensor(router: Router) -> None:
    by_body = reading(route(router, "http/airrohr/12331981", push(("SDS_P1", "1.00"))))
    by_header = reading(route(router, TOPIC, push(("SDS_P1", "1.00"))))
    assert by_body.thing == by_header.thing == "airrohr.esp8266-12331981"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json", "not_json"),
        ('[{"value_type": "SDS_P1", "value": "1"}]', "not_object"),
        ('{"software_version": "NRZ-2020-129"}', "no_values"),
        ('{"sensordatavalues": {"SDS_P1": "1"}}', "no_values"),
        (b"\xfe\xff", "not_utf8"),
    ],
)
def test_broken_bodies_are_rejected_with_a_reason(router: Router, payload: str | bytes, reason: str) -> None:
    [event] = route(router, TOPIC, payload)
    assert isinstance(event, Rejected) and (event.source, event.reason) == ("airrohr", reason)


def test_text_where_a_number_belongs_is_rejected_per_field(router: Router) -> None:
    events = route(router, TOPIC, push(("SDS_P1", "twelve"), ("SDS_P2", "1.50")))
    assert reading(events).values == {"pm25": 1.5}
    assert [(e.reason, e.detail.split(":")[0]) for e in events if isinstance(e, Rejected)] == [
        ("bad_value", "pm10")
    ]


def test_topics_and_subscriptions() -> None:
    decoder = AirrohrDecoder()
    assert decoder.subscriptions() == []
    assert decoder.matches("http/airrohr/esp8266-1")
    for topic in ("http/airrohr/", "http/airrohr/a/b", "http/airrohr", "airrohr/esp8266-1", "http/other/x"):
        assert not decoder.matches(topic), topic


# -- properties -----------------------------------------------------------------------------------------

KNOWN = (Reading, Availability, Discovery, Scan, Rejected, Ignored)
_sensor = st.text(st.characters(exclude_characters="/", exclude_categories=("Cs",)), min_size=1, max_size=20)
_value_types = st.sampled_from(
    [
        "SDS_P1",
        "SDS_P2",
        "PMS_P0",
        "P1",
        "P2",
        "durP1",
        "BME280_pressure",
        "temperature",
        "humidity",
        "signal",
        "GPS_lat",
        "lat",
        "samples",
        "noise_LAeq",
        "SCD30_co2_ppm",
    ]
) | st.text(max_size=15)
_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sensor=_sensor, payload=st.binary(max_size=300))
def test_any_bytes_for_any_sensor_never_raise(router: Router, sensor: str, payload: bytes) -> None:
    events = router.route(f"http/airrohr/{sensor}", payload, NOW)
    assert events and all(isinstance(e, KNOWN) for e in events)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entries=st.lists(st.fixed_dictionaries({"value_type": _value_types, "value": _values}), max_size=12))
def test_any_sensordatavalues_decode_without_a_decoder_error(
    router: Router, entries: list[dict[str, Any]]
) -> None:
    payload = json.dumps({"sensordatavalues": entries}, allow_nan=True)
    events = router.route(TOPIC, payload.encode(), NOW)
    assert events and all(isinstance(e, KNOWN) for e in events)
    assert not [e for e in events if isinstance(e, Rejected) and e.reason == "decoder_error"]
    for event in events:
        if isinstance(event, Reading):
            assert not {"GPS_lat", "lat"} & set(event.unmapped)
            assert all(isinstance(v, float) for v in event.values.values())
