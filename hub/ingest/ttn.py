"""The Things Stack v3 uplinks: decoded_payload, RSSI and SNR from rx_metadata.

Topics are ``<prefix>/<application id>[@<tenant id>]/devices/<device id>/<event>``. Only ``/up`` carries
readings; ``/join``, ``/down/*``, ``/service/data`` and ``/location/solved`` are owned and ignored (a solved
location is a device's position: personal data, never recorded).

An uplink's ``decoded_payload`` is whatever the application's payload formatter returned: keys of the
formatter's choosing and no units. Keys are read by the words they are made of (``TempC_SHT`` →
temp, c, sht; ``relative_humidity_2`` → relative, humidity, 2), with the units those words name or the
defaults of DESIGN §5:

* temperature / temp °C (``…_f`` / ``fahrenheit`` °F), humidity / hum / rh %, co2 ppm, tvoc / voc ppb,
  pm1 / pm2_5 / pm25 / pm10 µg/m³, illuminance / lux / light / luminosity lx (Cayenne LPP's name),
  noise / sound / laeq dB(A), water_leak / leak, occupancy / motion, smoke, tamper, contact, power W,
  energy kWh, current A.
* pressure: hPa, unless the key names Pa / kPa; without a unit a value above 2000 is taken as Pa and
  one below 200 as kPa (no air pressure in hPa is either), so 101325 and 101.3 both read 1013.25 hPa.
* battery / bat: % when the value is 0..100 (or the key says %, level, percent); a battery *voltage*
  (``battery_voltage``, ``vbat``, ``batV``, ``bat_mv``) becomes ``voltage`` (mV when the key says so or
  the value is above 100); a bare ``battery`` above 100 is taken as millivolts.
* Keys that qualify the quantity into another one are not mapped: soil, water, dew point, heat index,
  min / max, thresholds, counts (``pm25_count``), chip temperatures, status codes.
* When two keys give the same quantity (``TempC_SHT`` and the probe's ``TempC_DS``; Cayenne LPP's
  ``temperature_1`` and ``temperature_2``), the first key without a probe / external / internal word
  wins and the other is listed as unmapped.
* Nested objects and arrays are flattened into unmapped paths (``accelerometer_3.x``); SenseCAP's
  ``messages`` arrays (``{"measurementId", "measurementValue", "type": "Air Temperature"}``, possibly
  nested in lists) are read by their ``type`` words like a key.
* Location is never recorded: keys about position (lat, lon, latitude, longitude, altitude, gps,
  location, ssid, mac) are dropped with everything under them, as are ``uplink_message.locations``.

RSSI is the best (highest) ``rssi`` among the gateways in ``rx_metadata`` (``channel_rssi`` when ``rssi``
is omitted), SNR that gateway's ``snr``. The time is ``received_at`` (RFC 3339 with nanoseconds) when
sane. An uplink without ``decoded_payload`` (no formatter) yields a reading of RSSI and SNR only:
``frm_payload`` is the device's own binary encoding and is not decoded here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from hub.domain.events import Event, Ignored
from hub.domain.units import UnitError, parse_bool, parse_number
from hub.domain.vocabulary import BOOLEAN
from hub.ingest.decoder import PayloadError, Subscription, Values, decode_json_object, thing_id
from hub.ingest.native import device_time

#: Events other than ``/up``: owned (nobody else may claim them) and ignored.
_IGNORED_EVENTS = (("join",), ("service", "data"), ("location", "solved"))
_DOWN_EVENTS = frozenset({"queued", "sent", "ack", "nack", "failed", "push", "replace"})

#: How deep nested formatter output is walked; deeper parts are dropped.
_MAX_DEPTH = 8

# -- reading formatter keys by their words ------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^a-z0-9%]+")
#: unit prefixes camel case splits off their unit: "mV" → m, v; "hPa" → h, pa
_PREFIXED = {("m", "v"): "mv", ("m", "a"): "ma", ("m", "w"): "mw", ("k", "w"): "kw", ("k", "wh"): "kwh",
             ("h", "pa"): "hpa", ("k", "pa"): "kpa"}  # fmt: skip

_PRIVATE = frozenset(
    {"lat", "lon", "lng", "latitude", "longitude", "altitude", "alt", "gps", "gnss", "location",
     "locations", "position", "geo", "geolocation", "coordinates", "coords", "ssid", "bssid", "mac"}
)  # fmt: skip
_DISQUALIFY = frozenset(
    {"soil", "water", "dew", "dewpoint", "feels", "feelslike", "heat", "heatindex", "index", "setpoint",
     "target", "min", "max", "minimum", "maximum", "threshold", "thresh", "limit", "offset", "cpu",
     "chip", "mcu", "board", "delta", "diff", "change", "raw", "nc", "count", "counts", "cnt", "num",
     "number", "pcs", "particles", "factor", "calibration", "calib", "correction", "interval",
     "period", "hysteresis", "status", "error", "err", "flag", "mode", "type", "id", "adc", "alarm"}
)  # fmt: skip
#: words that make a reading second choice when another key gives the same quantity
_SECONDARY = frozenset({"ext", "external", "probe", "ds", "ds18b20", "remote", "aux", "internal", "int"})

_PM10 = re.compile(r"(?:^|_)pm_?10(?:_0|p0)?(?:_|$)")
_PM25 = re.compile(r"(?:^|_)pm_?2(?:_|p)?5(?:_|$)")
_PM1 = re.compile(r"(?:^|_)pm_?1(?:_0|p0)?(?:_|$)")

_TEMPERATURE = frozenset({"temperature", "temp", "tmp", "tempc", "tempf", "celsius", "fahrenheit"})
_HUMIDITY = frozenset({"humidity", "hum", "humi", "humid", "rh"})
_PRESSURE = frozenset({"pressure", "press", "pres", "baro", "barometer", "barometric"})
_LIGHT = frozenset(
    {"illuminance", "illumination", "illum", "lux", "light", "luminosity", "lum", "brightness", "als"}
)
_NOISE = frozenset({"noise", "sound", "laeq", "leq", "spl", "loudness", "dba"})
_BATTERY = frozenset({"battery", "bat", "batt", "vbat", "vbatt", "batv", "vbattery"})
_VOLTS = frozenset({"v", "volt", "volts", "voltage", "mv", "vbat", "vbatt", "batv", "vdd", "vcc"})
_PERCENT = frozenset({"%", "percent", "percentage", "pct", "level", "soc"})
_BOOLEANS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"leak", "leakage", "waterleak", "flood", "flooding"}), "water_leak"),
    (frozenset({"smoke"}), "smoke"),
    (frozenset({"tamper", "tampered", "tampering"}), "tamper"),
    (frozenset({"occupancy", "occupied", "motion", "pir", "presence"}), "occupancy"),
    (frozenset({"contact"}), "contact"),
)
_BOOLEAN_NOT = frozenset({"count", "counts", "cnt", "num", "number", "time", "duration", "interval"})


def words(key: str) -> list[str]:
    """The lower-case words of a formatter key: ``TempC_SHT`` → temp, c, sht; ``Bat_mV`` → bat, mv."""
    parts = [w for w in _SPLIT.split(_CAMEL.sub("_", key).lower()) if w]
    merged: list[str] = []
    for part in parts:
        if merged and (merged[-1], part) in _PREFIXED:
            merged[-1] = _PREFIXED[(merged[-1], part)]
        else:
            merged.append(part)
    return merged


@dataclass(frozen=True, slots=True)
class Meaning:
    """What a key holds: a canonical name, the unit its words name (None: the default) and its rank."""

    name: str
    unit: str | None = None
    secondary: bool = False


def meaning(key: str, raw: Any) -> Meaning | None:
    """The canonical measurement a formatter key names, or None (unmapped)."""
    ws = words(key)
    found = set(ws)
    if not found:
        return None
    secondary = bool(found & _SECONDARY)
    if not found & _BOOLEAN_NOT:
        for names, boolean in _BOOLEANS:
            if found & names or (boolean == "water_leak" and any("leak" in w for w in ws)):
                return Meaning(boolean, None, secondary)
    if found & _DISQUALIFY:
        return None
    joined = "_".join(ws)
    name: str | None = None
    unit: str | None = None
    if _PM10.search(joined):
        name = "pm10"
    elif _PM25.search(joined):
        name = "pm25"
    elif _PM1.search(joined):
        name = "pm1"
    elif "co2" in joined:
        name = "co2"
    elif found & {"tvoc", "voc", "vocs"}:
        name = "voc"
    elif found & _HUMIDITY or any(w.startswith("humid") for w in ws):
        name = "humidity"
    elif found & _TEMPERATURE:
        name = "temperature"
        if found & {"f", "tempf", "fahrenheit", "degf"}:
            unit = "°F"
        elif found & {"k", "kelvin"}:
            unit = "K"
    elif found & _PRESSURE:
        name, unit = "pressure", _pressure_unit(found, raw)
    elif found & _LIGHT:
        name = "illuminance"
    elif found & _NOISE or "laeq" in joined.replace("_", ""):
        name = "noise"
    elif found & _BATTERY:
        name, unit = _battery(found, raw)
    elif found & {"voltage", "volt", "volts", "vdd", "vcc"}:
        name, unit = "voltage", "mV" if "mv" in found else None
    elif found & {"current", "amps", "ampere"}:
        name, unit = "current", "mA" if "ma" in found else None
    elif found & {"power", "watt", "watts"}:
        name, unit = "power", "kW" if "kw" in found else "mW" if "mw" in found else None
    elif found & {"energy", "kwh", "wh"}:
        name, unit = "energy", "Wh" if "wh" in found and "kwh" not in found else None
    if name is None:
        return None
    return Meaning(name, unit, secondary)


def _number(raw: Any) -> float | None:
    try:
        return parse_number(raw)
    except UnitError:
        return None


def _pressure_unit(found: set[str], raw: Any) -> str | None:
    if "pa" in found:
        return "Pa"
    if "kpa" in found:
        return "kPa"
    if found & {"hpa", "mbar"}:
        return None
    value = _number(raw)
    if value is not None and value > 2000:
        return "Pa"
    if value is not None and 0 < value < 200:
        return "kPa"
    return None


def _battery(found: set[str], raw: Any) -> tuple[str, str | None]:
    value = _number(raw)
    if found & _VOLTS:
        return "voltage", "mV" if "mv" in found or (value is not None and value > 100) else None
    if found & _PERCENT or value is None or value <= 100:
        return "battery", None
    return "voltage", "mV"


# -- reading a formatter's output -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Candidate:
    path: str
    raw: Any
    meaning: Meaning | None


def _private(key: str) -> bool:
    return bool(set(words(key)) & _PRIVATE)


def _flatten(path: str, value: Any, depth: int) -> Iterator[_Candidate]:
    """Leaves under a nested value, all unmapped; private keys dropped with their subtree."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not _private(str(key)):
                yield from _flatten(f"{path}.{key}", item, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _flatten(f"{path}[{i}]", item, depth + 1)
    else:
        yield _Candidate(path, value, None)


def _fields(obj: dict[str, Any], prefix: str = "") -> Iterator[_Candidate]:
    """One flat object of formatter keys, read by their words."""
    for key, raw in obj.items():
        key = str(key)
        if _private(key):
            continue
        path = f"{prefix}{key}"
        if isinstance(raw, dict | list):
            yield from _flatten(path, raw, 1)
        else:
            yield _Candidate(path, raw, meaning(key, raw))


def _sensecap(messages: Any, depth: int = 0) -> Iterator[_Candidate]:
    """SenseCAP's ``messages``: measurement objects, possibly in lists of lists."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(messages, list):
        for item in messages:
            yield from _sensecap(item, depth + 1)
    elif isinstance(messages, dict):
        kind = messages.get("type")
        if "measurementValue" in messages and isinstance(kind, str):
            if not _private(kind):
                raw = messages["measurementValue"]
                yield _Candidate(kind, raw, None if isinstance(raw, dict | list) else meaning(kind, raw))
        elif "measurementValue" in messages:
            ident = messages.get("measurementId")
            yield _Candidate(f"measurementId {ident}", messages["measurementValue"], None)
        else:  # device status objects: {"Battery(%)": 90, "Hardware Version": "V1.0", ...}
            yield from _fields(messages)


def _collect(decoded: dict[str, Any]) -> Iterator[_Candidate]:
    if isinstance(decoded.get("messages"), list):  # SenseCAP's formatters
        yield from _sensecap(decoded["messages"])
        rest = {k: v for k, v in decoded.items() if k not in ("messages", "err", "valid", "payload")}
        yield from _fields(rest)
    else:
        yield from _fields(decoded)


def read_formatter_output(values: Values, decoded: dict[str, Any]) -> None:
    """Add a decoded_payload's measurements to ``values``; the rest is listed as unmapped."""
    candidates = list(_collect(decoded))
    ranked = sorted(
        (c for c in candidates if c.meaning is not None),
        key=lambda c: c.meaning.secondary if c.meaning else True,
    )
    claimed: set[str] = set()
    for cand in ranked:
        assert cand.meaning is not None
        name = cand.meaning.name
        if name in claimed or not _fits(name, cand.raw):
            values.skip(cand.path, cand.raw)
            continue
        if cand.raw is None:
            continue
        claimed.add(name)
        values.add(name, cand.raw, cand.meaning.unit)
    for cand in candidates:
        if cand.meaning is None:
            values.skip(cand.path, cand.raw)


def _fits(name: str, raw: Any) -> bool:
    """A value of the right kind: a number for a numeric name, an on/off spelling for a boolean one.

    A key that matches by name but carries something else (``"light": true``, ``"motion": 7``) is
    listed as unmapped instead of rejected: the name guessed wrong, the device did not.
    """
    if name in BOOLEAN:
        try:
            parse_bool(raw)
        except UnitError:
            return False
        return True
    return not isinstance(raw, bool)


def _best_gateway(rx_metadata: Any) -> tuple[float | None, float | None]:
    """(rssi, snr) of the gateway that heard the uplink best."""
    best: tuple[float, float | None] | None = None
    if not isinstance(rx_metadata, list):
        return None, None
    for gateway in rx_metadata:
        if not isinstance(gateway, dict):
            continue
        rssi = gateway.get("rssi", gateway.get("channel_rssi"))
        if isinstance(rssi, bool) or not isinstance(rssi, int | float):
            continue
        snr = gateway.get("snr")
        try:
            snr_value = float(snr) if isinstance(snr, int | float) and not isinstance(snr, bool) else None
            rssi_value = float(rssi)
        except OverflowError:  # an integer of hundreds of digits is no radio measurement
            continue
        if best is None or rssi_value > best[0]:
            best = (rssi_value, snr_value)
    return best if best is not None else (None, None)


class TtnDecoder:
    """The Things Stack v3 MQTT integration (``v3/+/devices/+/up``)."""

    name = "ttn"

    def __init__(self, prefix: str = "v3") -> None:
        self.prefix = prefix.strip("/")
        self._start = self.prefix + "/"
        self._depth = self.prefix.count("/") + 1

    def subscriptions(self) -> list[Subscription]:
        return [Subscription(f"{self.prefix}/+/devices/+/up")]

    def _event(self, topic: str) -> tuple[str, tuple[str, ...]] | None:
        """(device id, event levels) of a topic this decoder owns, else None."""
        if not topic.startswith(self._start):
            return None
        parts = topic.split("/")[self._depth :]
        if len(parts) < 4 or parts[1] != "devices" or not parts[0] or not parts[2]:
            return None
        event = tuple(parts[3:])
        if event == ("up",) or event in _IGNORED_EVENTS:
            return parts[2], event
        if len(event) == 2 and event[0] == "down" and event[1] in _DOWN_EVENTS:
            return parts[2], event
        return None

    def matches(self, topic: str) -> bool:
        return self._event(topic) is not None

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        found = self._event(topic)
        if found is None:
            raise PayloadError("bad_topic", f"{topic!r:.80} is not a The Things Stack event topic")
        device, event = found
        if event != ("up",):
            return [Ignored(self.name, topic)]
        message = decode_json_object(payload)
        uplink = message.get("uplink_message")
        if not isinstance(uplink, dict):
            raise PayloadError("no_values", "the /up message has no uplink_message object")
        values = Values(self.name, topic)
        decoded = uplink.get("decoded_payload")
        if isinstance(decoded, dict):
            read_formatter_output(values, decoded)
        rssi, snr = _best_gateway(uplink.get("rx_metadata"))
        if rssi is not None:
            values.add("rssi", rssi)
        if snr is not None:
            values.add("snr", snr)
        return values.events(thing_id(self.name, device), self._time(message, uplink, received))

    @staticmethod
    def _time(message: dict[str, Any], uplink: dict[str, Any], received: float) -> float | None:
        raw = message.get("received_at", uplink.get("received_at"))
        try:
            return device_time(raw, received)
        except PayloadError:  # the network server's clock, not the device's: never worth the reading
            return None
