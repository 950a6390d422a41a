"""The Things Stack v3 uplinks: formatter keys read by their words, best gateway's RSSI/SNR, no location."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixturecases import NOW, Case, cases, hub_router, route
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.events import Availability, Discovery, Ignored, Reading, Rejected, Scan
from hub.ingest.decoder import Subscription
from hub.ingest.router import Router
from hub.ingest.ttn import TtnDecoder

TTN = cases("ttn.json")
UP = "v3/garden@ttn/devices/{device}/up"


@pytest.fixture(scope="module")
def router() -> Router:
    return hub_router()


def uplink(decoded: Any = None, *, rx: list[dict[str, Any]] | None = None, **message: Any) -> str:
    """A /up message as The Things Stack publishes it."""
    up: dict[str, Any] = {"f_port": 1, "frm_payload": "AQI="}
    if decoded is not None:
        up["decoded_payload"] = decoded
    up["rx_metadata"] = (
        rx if rx is not None else [{"gateway_ids": {"gateway_id": "gw"}, "rssi": -80, "snr": 7.5}]
    )
    return json.dumps({"end_device_ids": {"device_id": "x"}, "uplink_message": up, **message})


def reading(events: list[Any]) -> Reading:
    [event] = [e for e in events if isinstance(e, Reading)]
    return event


# -- the fixtures ---------------------------------------------------------------------------------------


def test_every_ttn_fixture_is_claimed() -> None:
    assert [c.id for c in TTN] == ["ttn[0]", "ttn[1]", "ttn[2]"]


@pytest.mark.parametrize("case", [TTN[0]], ids=lambda c: c.id)
def test_docs_uplink_gives_formatter_values_best_rssi_snr_and_received_at(router: Router, case: Case) -> None:
    events = route(router, case.topic or "", case.payload_bytes())
    assert events == [
        Reading(
            "ttn.dev1",
            "ttn",
            # "luminosity" is Cayenne LPP's (and the docs example's) name for illuminance in lx
            {"temperature": 1.0, "illuminance": 0.64, "rssi": -35.0, "snr": 5.0},
            time=pytest.approx(1581520546.014773),
        )
    ]


@pytest.mark.parametrize("case", [TTN[1]], ids=lambda c: c.id)
def test_uplink_without_formatter_gives_only_rssi_and_snr(router: Router, case: Case) -> None:
    [event] = route(router, case.topic or "", case.payload_bytes())
    # frm_payload ("Temperature = 0.0" in base64) is the device's own encoding: not decoded, not stored
    assert event == Reading("ttn.dev1", "ttn", {"rssi": -35.0, "snr": 5.0}, time=None, unmapped={})


@pytest.mark.parametrize("case", [TTN[2]], ids=lambda c: c.id)
def test_sensecap_truncated_capture_is_not_json_and_completed_reads_air_temperature(
    router: Router, case: Case
) -> None:
    [rejected] = route(router, case.topic or "", case.payload_bytes())
    assert isinstance(rejected, Rejected) and (rejected.source, rejected.reason) == ("ttn", "not_json")

    # the same uplink with the truncated tail completed as the S2120 formatter writes it
    completed = case.payload + (
        ' "measurementValue": 77, "type": "Air Humidity"}]},'
        ' "rx_metadata": [{"rssi": -101, "channel_rssi": -101, "snr": -3.2}]}}'
    )
    event = reading(route(router, case.topic or "", completed))
    assert event.thing == "ttn.eui-2cf7f1c044300279"
    assert event.values == {"temperature": 13.3, "humidity": 77.0, "rssi": -101.0, "snr": -3.2}
    assert event.time == pytest.approx(1720196190.899243)


# -- topics ---------------------------------------------------------------------------------------------


def test_subscribes_to_uplinks_only() -> None:
    assert TtnDecoder().subscriptions() == [Subscription("v3/+/devices/+/up")]
    assert TtnDecoder("lorawan/v3").subscriptions() == [Subscription("lorawan/v3/+/devices/+/up")]


@pytest.mark.parametrize(
    "topic",
    [
        "v3/app1@ttn/devices/dev1/join",
        "v3/app1@ttn/devices/dev1/down/queued",
        "v3/app1@ttn/devices/dev1/down/sent",
        "v3/app1@ttn/devices/dev1/down/ack",
        "v3/app1@ttn/devices/dev1/down/nack",
        "v3/app1@ttn/devices/dev1/down/failed",
        "v3/app1/devices/dev1/service/data",
        "v3/app1/devices/dev1/location/solved",
    ],
)
def test_other_events_are_owned_and_ignored(router: Router, topic: str) -> None:
    assert route(router, topic, '{"end_device_ids": {"device_id": "dev1"}}') == [Ignored("ttn", topic)]


def test_solved_location_is_never_recorded(router: Router) -> None:
    payload = (
        '{"location_solved": {"location": {"latitude": 52.37, "longitude": 4.89, "source": "SOURCE_GPS"}}}'
    )
    events = route(router, "v3/app1/devices/dev1/location/solved", payload)
    assert events == [Ignored("ttn", "v3/app1/devices/dev1/location/solved")]


@pytest.mark.parametrize(
    "topic",
    [
        "v3/app1/devices/dev1",
        "v3/app1/devices/dev1/up/extra",
        "v3/app1/things/dev1/up",
        "v4/app1/devices/d/up",
    ],
)
def test_foreign_shapes_under_the_prefix_are_not_owned(topic: str) -> None:
    assert not TtnDecoder().matches(topic)


def test_open_source_deployment_without_tenant_and_custom_prefix() -> None:
    router = hub_router(ecosystems={"ttn": {"prefix": "tts/v3"}})
    event = reading(route(router, "tts/v3/farm/devices/node-7/up", uplink({"temperature": 4.5})))
    assert (event.thing, event.values["temperature"]) == ("ttn.node-7", 4.5)


# -- radio metadata -------------------------------------------------------------------------------------


def test_rssi_is_the_best_gateway_and_snr_is_that_gateways() -> None:
    rx = [
        {"gateway_ids": {"gateway_id": "far"}, "rssi": -119, "snr": -9.5},
        {"gateway_ids": {"gateway_id": "near"}, "channel_rssi": -64, "snr": 9.25},  # rssi omitted
        {"gateway_ids": {"gateway_id": "mid"}, "rssi": -90, "snr": 2},
        {"gateway_ids": {"gateway_id": "packet-broker"}},  # no signal figures at all
    ]
    event = reading(route(hub_router(), UP.format(device="d"), uplink(None, rx=rx)))
    assert event.values == {"rssi": -64.0, "snr": 9.25}


def test_received_at_far_ahead_of_arrival_is_replaced_by_arrival(router: Router) -> None:
    payload = uplink({"temperature": 20}, received_at="2099-01-01T00:00:00.123456789Z")
    assert reading(route(router, UP.format(device="d"), payload)).time is None


def test_garbled_received_at_keeps_the_reading(router: Router) -> None:
    payload = uplink({"temperature": 20}, received_at="yesterday")
    event = reading(route(router, UP.format(device="d"), payload))
    assert event.values["temperature"] == 20.0 and event.time is None


# -- formatter output -----------------------------------------------------------------------------------


def test_cayenne_lpp_formatter_keys(router: Router) -> None:
    decoded = {
        "temperature_1": 21.3,
        "relative_humidity_2": 48.5,
        "barometric_pressure_3": 1011.2,
        "luminosity_4": 312,
        "analog_in_5": 3.29,
        "accelerometer_6": {"x": 0.01, "y": -0.02, "z": 1.0},
        "gps_7": {"latitude": 52.3702, "longitude": 4.8952, "altitude": 2},
    }
    event = reading(route(router, UP.format(device="lpp"), uplink(decoded)))
    assert event.values == {
        "temperature": 21.3,
        "humidity": 48.5,
        "pressure": 1011.2,
        "illuminance": 312.0,
        "rssi": -80.0,
        "snr": 7.5,
    }
    assert event.unmapped == {
        "analog_in_5": 3.29,
        "accelerometer_6.x": 0.01,
        "accelerometer_6.y": -0.02,
        "accelerometer_6.z": 1.0,
    }


def test_dragino_lht65_prefers_the_built_in_sensor_over_the_probe(router: Router) -> None:
    decoded = {"BatV": 3.05, "Bat_status": 3, "Ext_sensor": "Temperature Sensor", "TempC_DS": 24.44,
               "TempC_SHT": 23.26, "Hum_SHT": 55.6}  # fmt: skip
    event = reading(route(router, UP.format(device="lht65"), uplink(decoded)))
    assert event.values == {
        "voltage": 3.05,
        "temperature": 23.26,
        "humidity": 55.6,
        "rssi": -80.0,
        "snr": 7.5,
    }
    assert event.unmapped == {"TempC_DS": 24.44, "Bat_status": 3, "Ext_sensor": "Temperature Sensor"}


@pytest.mark.parametrize(
    ("decoded", "expected"),
    [
        ({"pressure": 101325}, {"pressure": 1013.25}),  # Pa
        ({"pressure": 101.3}, {"pressure": 1013.0}),  # kPa
        ({"pressure": 1013.25}, {"pressure": 1013.25}),  # hPa
        ({"pressure_pa": 99000}, {"pressure": 990.0}),
        ({"temperature_f": 68}, {"temperature": 20.0}),
        ({"tempF": 212}, {"temperature": 100.0}),
        ({"battery": 87}, {"battery": 87.0}),
        ({"battery": 3012}, {"voltage": 3.012}),  # a bare "battery" above 100 is millivolts
        ({"battery_voltage": 3.6}, {"voltage": 3.6}),
        ({"vbat": 3.3}, {"voltage": 3.3}),
        ({"batV": 2.95}, {"voltage": 2.95}),
        ({"Bat_mV": 3280}, {"voltage": 3.28}),
        ({"battery_level": 55}, {"battery": 55.0}),
        ({"co2": 612, "tvoc": 87}, {"co2": 612.0, "voc": 87.0}),
        ({"pm1": 3, "pm2_5": 5.5, "pm10": 9}, {"pm1": 3.0, "pm25": 5.5, "pm10": 9.0}),
        ({"PM2.5": 5.5, "pm25": 7}, {"pm25": 5.5}),
        ({"pm1_0": 2, "pm10_0": 4}, {"pm1": 2.0, "pm10": 4.0}),
        ({"lux": 1200}, {"illuminance": 1200.0}),
        ({"light": 40}, {"illuminance": 40.0}),
        ({"laeq": 54.2}, {"noise": 54.2}),
        ({"sound_level": 61}, {"noise": 61.0}),
        ({"water_leak": 1}, {"water_leak": True}),
        ({"leak": "no"}, {"water_leak": False}),
        ({"occupancy": True}, {"occupancy": True}),
        ({"temperature": "21.5"}, {"temperature": 21.5}),
        ({"temperature": "20.6 ℃"}, {"temperature": 20.6}),
    ],
)
def test_formatter_keys_and_their_units(
    router: Router, decoded: dict[str, Any], expected: dict[str, Any]
) -> None:
    event = reading(route(router, UP.format(device="k"), uplink(decoded, rx=[])))
    assert event.values == expected


@pytest.mark.parametrize(
    "key",
    [
        "soil_temperature",
        "dew_point",
        "temp_max",
        "pm25_count",
        "uv_index",
        "cpu_temp",
        "water_temp",
        "wind_speed",
    ],
)
def test_keys_naming_another_quantity_stay_unmapped(router: Router, key: str) -> None:
    event = reading(route(router, UP.format(device="k"), uplink({key: 12.5}, rx=[])))
    assert event.values == {} and event.unmapped == {key: 12.5}


def test_a_name_that_matches_but_a_value_that_does_not_is_listed_not_rejected(router: Router) -> None:
    events = route(router, UP.format(device="k"), uplink({"light": True, "motion": 7}, rx=[]))
    assert events == [Reading("ttn.k", "ttn", {}, None, {"light": True, "motion": 7})]


def test_a_bad_value_is_rejected_and_the_rest_still_lands(router: Router) -> None:
    events = route(router, UP.format(device="k"), uplink({"temperature": "hot", "humidity": 140, "co2": 500}))
    assert reading(events).values == {"co2": 500.0, "rssi": -80.0, "snr": 7.5}
    assert sorted(e.reason for e in events if isinstance(e, Rejected)) == ["bad_value", "out_of_range"]


def test_null_and_nan_are_no_value(router: Router) -> None:
    event = reading(route(router, UP.format(device="k"), uplink({"temperature": None, "humidity": "nan"})))
    assert event.values == {"rssi": -80.0, "snr": 7.5}


def test_location_keys_are_dropped_at_every_depth(router: Router) -> None:
    decoded = {
        "temperature": 18,
        "latitude": 52.37,
        "lon": 4.89,
        "gps": {"fix": 3, "hdop": 0.9},
        "status": {"lat": 52.3, "uptime": 99},
        "wifi": [{"mac": "AA:BB:CC:DD:EE:FF", "rssi": -60}],
    }
    payload = json.loads(uplink(decoded))
    payload["uplink_message"]["locations"] = {"user": {"latitude": 52.37, "longitude": 4.89}}
    event = reading(route(router, UP.format(device="k"), json.dumps(payload)))
    text = json.dumps([event.values, event.unmapped])
    assert "52.3" not in text and "4.89" not in text and "AA:BB" not in text
    assert event.unmapped == {"status.uptime": 99, "wifi[0].rssi": -60}


def test_sensecap_messages_by_type_in_nested_lists(router: Router) -> None:
    decoded = {
        "err": 0,
        "valid": True,
        "payload": "0100854D00000F47",
        "messages": [
            [
                {"measurementId": "4097", "measurementValue": 13.3, "type": "Air Temperature"},
                {"measurementId": "4098", "measurementValue": 77, "type": "Air Humidity"},
                {"measurementId": "4099", "measurementValue": 820, "type": "Light Intensity"},
                {"measurementId": "4190", "measurementValue": 1, "type": "UV Index"},
                {"measurementId": "4105", "measurementValue": 2.1, "type": "Wind Speed"},
                {"measurementId": "4101", "measurementValue": 100600, "type": "Barometric Pressure"},
                {"measurementId": "4198", "measurementValue": 52.37, "type": "Latitude"},
                {"measurementId": "4197", "measurementValue": 4.89, "type": "Longitude"},
            ],
            [{"Battery(%)": 90, "Hardware Version": "V1.0"}],
        ],
    }
    event = reading(route(router, UP.format(device="s2120"), uplink(decoded, rx=[])))
    assert event.values == {
        "temperature": 13.3,
        "humidity": 77.0,
        "illuminance": 820.0,
        "pressure": 1006.0,
        "battery": 90.0,
    }
    assert event.unmapped == {"UV Index": 1, "Wind Speed": 2.1, "Hardware Version": "V1.0"}


def test_repeated_uplink_decodes_the_same(router: Router) -> None:
    payload = uplink({"temperature": 12.5}, received_at="2026-09-21T13:00:00.5Z")
    assert route(router, UP.format(device="r"), payload) == route(router, UP.format(device="r"), payload)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json", "not_json"),
        ("[1]", "not_object"),
        ('{"end_device_ids": {}}', "no_values"),
        (b"\xff", "not_utf8"),
    ],
)
def test_broken_uplinks_are_rejected_with_a_reason(router: Router, payload: str | bytes, reason: str) -> None:
    [event] = route(router, UP.format(device="b"), payload)
    assert isinstance(event, Rejected) and (event.source, event.reason) == ("ttn", reason)


# -- properties -----------------------------------------------------------------------------------------

KNOWN = (Reading, Availability, Discovery, Scan, Rejected, Ignored)
_level = st.text(st.characters(exclude_characters="/#+", exclude_categories=("Cs",)), max_size=12)
_topics = st.builds(
    lambda app, dev, tail: f"v3/{app}/devices/{dev}/{tail}",
    _level,
    _level,
    st.sampled_from(["up", "join", "down/queued", "service/data", "location/solved", "up/x", ""]),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(topic=_topics, payload=st.binary(max_size=300))
def test_any_bytes_on_any_ttn_topic_never_raise(router: Router, topic: str, payload: bytes) -> None:
    events = router.route(topic, payload, NOW)
    assert events and all(isinstance(e, KNOWN) for e in events)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(decoded=_json, rx=st.lists(st.dictionaries(st.sampled_from(["rssi", "channel_rssi", "snr"]), _json)))
def test_any_formatter_output_decodes_without_a_decoder_error(router: Router, decoded: Any, rx: Any) -> None:
    payload = json.dumps({"uplink_message": {"decoded_payload": decoded, "rx_metadata": rx}})
    events = router.route(UP.format(device="p"), payload.encode(), NOW)
    assert all(isinstance(e, KNOWN) for e in events)
    assert not [e for e in events if isinstance(e, Rejected) and e.reason == "decoder_error"]
    for event in events:
        if isinstance(event, Reading):
            assert all(isinstance(v, float | bool) for v in event.values.values())
