"""What a resident's Home Assistant entity becomes in the hub (hub/domain/ha_entities.py): one canonical
measurement from its domain, device class and unit, or a refusal; personal data is always refused.

The attributes are those Home Assistant 2025.4 reports for the integrations named in each case."""

from __future__ import annotations

import pytest

from hub.domain.ha_entities import Refusal, entity_meaning, entity_value, personal_reason
from hub.domain.units import UnitError
from hub.domain.vocabulary import MEASUREMENTS


@pytest.mark.parametrize(
    ("entity_id", "attributes", "measurement", "invert"),
    [
        # a weather station (Ecowitt, Netatmo): device classes with their units
        (
            "sensor.station_temperature",
            {"device_class": "temperature", "unit_of_measurement": "°C"},
            "temperature",
            False,
        ),
        (
            "sensor.station_temp_f",
            {"device_class": "temperature", "unit_of_measurement": "°F"},
            "temperature",
            False,
        ),
        (
            "sensor.station_humidity",
            {"device_class": "humidity", "unit_of_measurement": "%"},
            "humidity",
            False,
        ),
        (
            "sensor.station_pressure",
            {"device_class": "atmospheric_pressure", "unit_of_measurement": "hPa"},
            "pressure",
            False,
        ),
        (
            "sensor.station_pressure_inhg",
            {"device_class": "pressure", "unit_of_measurement": "inHg"},
            "pressure",
            False,
        ),
        ("sensor.air_co2", {"device_class": "carbon_dioxide", "unit_of_measurement": "ppm"}, "co2", False),
        ("sensor.air_pm25", {"device_class": "pm25", "unit_of_measurement": "µg/m³"}, "pm25", False),
        ("sensor.plug_energy", {"device_class": "energy", "unit_of_measurement": "Wh"}, "energy", False),
        # a rain gauge (Ecowitt, Netatmo), in any unit Home Assistant offers for precipitation
        (
            "sensor.rain_today",
            {"device_class": "precipitation", "unit_of_measurement": "mm"},
            "precipitation",
            False,
        ),
        (
            "sensor.rain_event_in",
            {"device_class": "precipitation", "unit_of_measurement": "in"},
            "precipitation",
            False,
        ),
        (
            "sensor.rain_year_cm",
            {"device_class": "precipitation", "unit_of_measurement": "cm"},
            "precipitation",
            False,
        ),
        (
            "sensor.plug_rssi",
            {"device_class": "signal_strength", "unit_of_measurement": "dBm"},
            "rssi",
            False,
        ),
        # no device class: a unit that names one quantity on its own
        ("sensor.diy_lux", {"unit_of_measurement": "lx"}, "illuminance", False),
        ("input_number.setpoint", {"unit_of_measurement": "°C"}, "temperature", False),
        # a basement flood sensor and a door contact (on = open, so the canonical contact is inverted)
        ("binary_sensor.basement_flood", {"device_class": "moisture"}, "water_leak", False),
        ("binary_sensor.shed_door", {"device_class": "door"}, "contact", True),
        ("binary_sensor.hall_motion", {"device_class": "motion"}, "occupancy", False),
        ("switch.pump", {}, "state", False),
        ("light.porch", {"friendly_name": "Porch"}, "state", False),
    ],
)
def test_entities_map_to_their_canonical_measurement(
    entity_id: str, attributes: dict[str, object], measurement: str, invert: bool
) -> None:
    meaning = entity_meaning(entity_id, attributes)
    assert meaning.shareable, meaning.detail
    assert (meaning.measurement, meaning.invert) == (measurement, invert)
    assert meaning.measurement in MEASUREMENTS


@pytest.mark.parametrize(
    ("entity_id", "attributes"),
    [
        ("person.jenny", {"user_id": "abc", "device_trackers": ["device_tracker.phone"]}),
        (
            "device_tracker.phone",
            {"source_type": "gps", "latitude": 52.5, "longitude": 13.4, "gps_accuracy": 12},
        ),
        ("zone.home", {"latitude": 52.5, "longitude": 13.4, "radius": 100}),
        ("geo_location.quake_1", {"source": "usgs"}),
        # any entity carrying coordinates or a user, whatever its domain
        ("sensor.phone_battery", {"device_class": "battery", "unit_of_measurement": "%", "latitude": 52.5}),
        ("sensor.car_fuel", {"unit_of_measurement": "%", "gps": [52.5, 13.4]}),
        ("sensor.who_cooked", {"user_id": "abc"}),
        # whether someone is home, a health reading
        ("binary_sensor.jenny_home", {"device_class": "presence"}),
        ("sensor.glucose", {"device_class": "blood_glucose_concentration", "unit_of_measurement": "mg/dL"}),
    ],
)
def test_personal_data_is_refused_for_sharing(entity_id: str, attributes: dict[str, object]) -> None:
    meaning = entity_meaning(entity_id, attributes)
    assert not meaning.shareable
    assert meaning.refusal is Refusal.PERSONAL_DATA
    assert meaning.detail.startswith("never shared: ")
    assert personal_reason(entity_id, attributes) is not None


def test_personal_data_is_refused_even_when_the_resident_names_a_measurement() -> None:
    attributes = {"device_class": "battery", "unit_of_measurement": "%", "latitude": 52.5}
    meaning = entity_meaning("sensor.phone_battery", attributes, "battery")
    assert meaning.refusal is Refusal.PERSONAL_DATA


@pytest.mark.parametrize(
    ("entity_id", "attributes", "why"),
    [
        # a rain rate is no amount of rain, and mm alone may be a distance (a tank's water level)
        (
            "sensor.rain_rate",
            {"device_class": "precipitation_intensity", "unit_of_measurement": "mm/h"},
            "precipitation_intensity",
        ),
        ("sensor.tank_level", {"unit_of_measurement": "mm"}, "set its device class"),
        (
            "sensor.rain_wrong",
            {"device_class": "precipitation", "unit_of_measurement": "mm/h"},
            "cannot be converted to precipitation in mm",
        ),
        ("sensor.level", {"unit_of_measurement": "%"}, "set its device class"),
        ("sensor.mode", {}, "no device class and no unit"),
        (
            "sensor.temp_wrong",
            {"device_class": "temperature", "unit_of_measurement": "kWh"},
            "cannot be converted",
        ),
        ("sensor.wifi_signal", {"device_class": "signal_strength", "unit_of_measurement": "%"}, "not rssi"),
        ("binary_sensor.update", {"device_class": "update"}, "update"),
        ("binary_sensor.bare", {}, "no device class"),
        ("weather.home", {"temperature": 20}, "weather entities"),
        ("sun.sun", {"elevation": 30}, "sun entities"),
    ],
)
def test_entities_without_a_canonical_measurement_are_refused_with_why(
    entity_id: str, attributes: dict[str, object], why: str
) -> None:
    meaning = entity_meaning(entity_id, attributes)
    assert meaning.refusal is Refusal.NO_MEASUREMENT
    assert why in meaning.detail


def test_a_resident_may_name_the_measurement_when_it_fits_domain_and_unit() -> None:
    assert entity_meaning("sensor.level", {"unit_of_measurement": "%"}, "humidity").measurement == "humidity"
    assert entity_meaning("binary_sensor.bare", {}, "water_leak").measurement == "water_leak"
    assert (
        entity_meaning("sensor.level", {"unit_of_measurement": "%"}, "temperature").refusal
        is Refusal.NO_MEASUREMENT
    )
    assert entity_meaning("switch.pump", {}, "temperature").refusal is Refusal.NO_MEASUREMENT
    assert entity_meaning("sensor.level", {}, "rain").refusal is Refusal.NO_MEASUREMENT


@pytest.mark.parametrize("entity_id", ["sensor", "Sensor.Temp", "sensor.temp;drop", "sensor.", ".temp", ""])
def test_what_is_no_entity_id_is_refused(entity_id: str) -> None:
    assert entity_meaning(entity_id, {}).refusal is Refusal.BAD_ENTITY


def test_states_become_canonical_values() -> None:
    assert entity_value("temperature", "71.6", "°F") == 22.0
    assert entity_value("energy", "1500", "Wh") == 1.5
    assert entity_value("water_leak", "on", None) is True
    assert entity_value("contact", "on", None, invert=True) is False  # an open door
    assert entity_value("contact", "off", None, invert=True) is True
    assert entity_value("temperature", "unknown", "°C") is None
    with pytest.raises(UnitError):
        entity_value("temperature", "warm", "°C")
    with pytest.raises(UnitError):
        entity_value("humidity", "140", "%")  # out of range


def test_rain_is_recorded_in_millimetres_whatever_unit_home_assistant_shows() -> None:
    assert entity_value("precipitation", "4.2", "mm") == 4.2
    assert entity_value("precipitation", "0.5", "in") == 12.7
    assert entity_value("precipitation", "1.25", "cm") == 12.5
    assert entity_value("precipitation", "0", "mm") == 0.0
    assert entity_value("precipitation", "unknown", "mm") is None
    for impossible in ("-1", "65535"):  # a gauge's sentinel or a wrapped counter is not rain
        with pytest.raises(UnitError, match=r"is outside 0\.\.50000"):
            entity_value("precipitation", impossible, "mm")
    with pytest.raises(UnitError, match="cannot be converted"):
        entity_value("precipitation", "2", "mm/h")
