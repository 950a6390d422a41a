"""Sensor.Community airrohr firmware's custom-API HTTP push, routed as topic ``http/airrohr/<X-Sensor>``.

The firmware POSTs ``{"esp8266id": "…", "software_version": "NRZ-…", "sensordatavalues": [{"value_type":
"SDS_P1", "value": "12.30"}, …]}`` with the header ``X-Sensor: esp8266-<chip id>``; every value is a
string. The web endpoint (``POST /api/v1/push/airrohr``) hands the body to the hub as topic
``http/airrohr/<sensor>``, so ``hub decode`` replays a push as ``{"topic": "http/airrohr/esp8266-1",
"payload": {…}}``. A bare chip id (``12331981``, the body's ``esp8266id``) names the same thing as
``esp8266-12331981``.

Value types are the firmware's, prefixed by sensor in the custom API (``SDS_P1``, ``BME280_pressure``)
and stripped in bodies meant for the sensor.community API (``P1``, ``pressure``, with an ``X-Pin``);
both read the same, so the pin is not needed:

* ``P0`` → pm1, ``P1`` → pm10, ``P2`` → pm25 (µg/m³) for every dust sensor (SDS, PMS, HPM, SPS30, NPM,
  IPS) — except a PPD42NS, recognised by its ``durP1``/``ratioP1`` companions: its P1/P2 are particle
  counts, listed as unmapped.
* ``*_temperature`` / bare ``temperature`` (DHT22) °C, ``*_humidity`` %, ``*_pressure`` in **Pa** (BME280,
  BMP280, BMP180) → hPa, ``*_co2_ppm`` (SCD30) ppm, ``noise_LAeq`` (DNMS) dB(A), ``signal`` → rssi dBm.
* Everything else (``samples``, ``min_micro``, ``max_micro``, ``interval``, ``age``, ``SPS30_P4``, number
  concentrations, ``noise_LA_min``/``_max``) is listed as unmapped.
* GPS values (``GPS_lat``, ``GPS_lon``, ``GPS_height``, ``GPS_date``, ``GPS_time``, ``GPS_timestamp``, and
  the stripped ``lat``/``lon``/``height``/``timestamp``/``date``/``time``) are where the sensor stands,
  often a resident's home: they are dropped here and never stored, not even as unmapped fields.

When two sensors give the same quantity (a BME280 and a DHT22 both measure temperature), the first
readable one in the body wins and the other is listed as unmapped under its value type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hub.domain.events import Event
from hub.ingest.decoder import PayloadError, Subscription, Values, decode_json_object, thing_id

TOPIC_PREFIX = "http/airrohr/"

#: value type (lower case, sensor prefix removed) → (canonical name, unit)
_BY_SUFFIX: dict[str, tuple[str, str | None]] = {
    "p0": ("pm1", None),
    "p1": ("pm10", None),
    "p2": ("pm25", None),
    "temperature": ("temperature", None),
    "humidity": ("humidity", None),
    "pressure": ("pressure", "Pa"),
    "co2_ppm": ("co2", None),
    "co2": ("co2", None),
    "noise_laeq": ("noise", None),
}
_SUFFIX = re.compile(r"(?:^|_)(" + "|".join(sorted(_BY_SUFFIX, key=len, reverse=True)) + r")$")
_GPS_STRIPPED = frozenset(
    {"lat", "lon", "lng", "latitude", "longitude", "height", "altitude", "alt", "date", "time", "timestamp"}
)
_PPD_MARKERS = frozenset({"durp1", "ratiop1", "durp2", "ratiop2"})
_CHIP_ID = re.compile(r"[0-9]+")


def sensor_thing(sensor: str) -> str:
    """The thing id of an airrohr sensor: ``airrohr.esp8266-<chip id>`` whether named by header or body."""
    if _CHIP_ID.fullmatch(sensor):
        sensor = f"esp8266-{sensor}"
    return thing_id(AirrohrDecoder.name, sensor)


def meaning(value_type: str, ppd: bool) -> tuple[str, str | None] | None:
    """(canonical name, unit) of a value type; None for unmapped. GPS types are handled before."""
    key = value_type.lower()
    if key == "signal":
        return ("rssi", None)
    if ppd and key in ("p1", "p2"):  # a PPD42NS's P1/P2 are counts per 0.01 cubic foot, not µg/m³
        return None
    match = _SUFFIX.search(key)
    return _BY_SUFFIX[match.group(1)] if match else None


def is_location(value_type: str) -> bool:
    key = value_type.lower()
    return key.startswith("gps_") or key in _GPS_STRIPPED


class AirrohrDecoder:
    """Reads pushes the web endpoint routes as ``http/airrohr/<sensor>``; nothing to subscribe to."""

    name = "airrohr"

    def subscriptions(self) -> list[Subscription]:
        return []

    def matches(self, topic: str) -> bool:
        sensor = topic.removeprefix(TOPIC_PREFIX)
        return topic.startswith(TOPIC_PREFIX) and bool(sensor) and "/" not in sensor

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        sensor = topic.removeprefix(TOPIC_PREFIX)
        body = decode_json_object(payload)
        entries = body.get("sensordatavalues")
        if not isinstance(entries, list):
            raise PayloadError("no_values", "the body has no sensordatavalues list")
        pairs = [
            (str(e["value_type"]), e.get("value"))
            for e in entries
            if isinstance(e, dict) and isinstance(e.get("value_type"), str)
        ]
        ppd = any(value_type.lower() in _PPD_MARKERS for value_type, _ in pairs)
        values = Values(self.name, topic)
        claimed: set[str] = set()
        for value_type, raw in pairs:
            if is_location(value_type):
                continue
            found = meaning(value_type, ppd)
            if found is None or found[0] in claimed:
                values.skip(value_type, raw)
                continue
            name, unit = found
            values.add(name, raw, unit)
            if name in values.values:  # a failed or empty value leaves the quantity to the next sensor
                claimed.add(name)
        return values.events(sensor_thing(sensor))
