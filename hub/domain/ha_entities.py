"""What an entity of a resident's Home Assistant may become in the hub: one canonical measurement
(DESIGN §5), or a refusal that says why.

Used when a resident picks entities to share (hub/integrations/ha_source.py) and when their states are
decoded (hub/ingest/ha_link.py). The meaning comes from the entity's domain, ``device_class`` and
``unit_of_measurement``, as Home Assistant itself describes the entity:

* ``sensor``, ``number``, ``input_number``: the device class names the measurement (``temperature``,
  ``atmospheric_pressure`` → pressure, ``carbon_dioxide`` → co2, …) when the unit can be converted to
  the canonical one; without a device class, a unit that names one quantity on its own (°C, hPa, lx,
  ppm, W, kWh, dBm, …). A rain gauge's ``precipitation`` (mm, cm or in) is precipitation in mm; its
  rate (``precipitation_intensity``) and anything else (``%`` alone, text states, ``mm`` without a
  device class, which may be a distance) has no measurement yet.
* ``binary_sensor``: ``moisture`` → water_leak, ``door``/``window``/``opening``/``garage_door`` →
  contact (true when closed, so inverted), ``motion``/``occupancy`` → occupancy, ``smoke``, ``tamper``.
* ``switch``, ``light``, ``input_boolean``, ``fan``: ``state`` (on = true).

Personal data is refused, whatever the resident asks: ``person``, ``device_tracker``, ``zone`` and
``geo_location`` entities, any entity whose attributes carry GPS coordinates or a user, presence sensors
(whether someone is home) and health readings. Only the state, the unit and the time of a shared entity
ever leave the resident's Home Assistant; its other attributes are never stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from hub.domain.events import Value
from hub.domain.units import UnitError, convert, normalize_unit, parse_bool, to_canonical
from hub.domain.vocabulary import BOOLEAN, NUMERIC

#: Home Assistant's entity id: ``<domain>.<object id>``, lower-case letters, digits and underscores.
ENTITY_ID: Final = re.compile(r"[a-z0-9_]{1,64}\.[a-z0-9_]{1,191}")

#: Domains whose entities are people or where they are.
PERSONAL_DOMAINS: Final = frozenset({"person", "device_tracker", "zone", "geo_location"})
#: Attributes that locate or name a person; an entity carrying any of them is never shared.
PERSONAL_ATTRIBUTES: Final = frozenset(
    {"latitude", "longitude", "gps", "gps_accuracy", "altitude", "user_id", "device_trackers"}
)
#: (domain, device class) pairs that describe a person rather than a place.
PERSONAL_CLASSES: Final[dict[tuple[str, str], str]] = {
    ("binary_sensor", "presence"): "a presence sensor tells whether someone is home",
    ("sensor", "blood_glucose_concentration"): "a health reading",
}

NUMERIC_DOMAINS: Final = frozenset({"sensor", "number", "input_number"})
BINARY_DOMAINS: Final = frozenset({"binary_sensor"})
SWITCH_DOMAINS: Final = frozenset({"switch", "light", "input_boolean", "fan"})

#: sensor device class → canonical measurement
SENSOR_CLASSES: Final[dict[str, str]] = {
    "temperature": "temperature",
    "humidity": "humidity",
    "pressure": "pressure",
    "atmospheric_pressure": "pressure",
    "pm1": "pm1",
    "pm25": "pm25",
    "pm10": "pm10",
    "carbon_dioxide": "co2",
    "volatile_organic_compounds_parts": "voc",
    "illuminance": "illuminance",
    "sound_pressure": "noise",
    "battery": "battery",
    "voltage": "voltage",
    "current": "current",
    "power": "power",
    "energy": "energy",
    "signal_strength": "rssi",
    "precipitation": "precipitation",
}
#: binary_sensor device class → (canonical measurement, canonical = NOT on). A door is "on" when open;
#: the canonical contact is true when closed.
BINARY_CLASSES: Final[dict[str, tuple[str, bool]]] = {
    "moisture": ("water_leak", False),
    "door": ("contact", True),
    "window": ("contact", True),
    "opening": ("contact", True),
    "garage_door": ("contact", True),
    "motion": ("occupancy", False),
    "occupancy": ("occupancy", False),
    "smoke": ("smoke", False),
    "tamper": ("tamper", False),
}
#: Units that name one measurement on their own (µg/m³ and % do not: pm1/pm25/pm10, humidity/battery;
#: nor does K, which is a light's colour temperature more often than a thermometer's).
UNIT_MEASUREMENTS: Final[dict[str, str]] = {
    "°C": "temperature",
    "°F": "temperature",
    "hPa": "pressure",
    "Pa": "pressure",
    "kPa": "pressure",
    "mmHg": "pressure",
    "inHg": "pressure",
    "lx": "illuminance",
    "ppm": "co2",
    "ppb": "voc",
    "dB(A)": "noise",
    "V": "voltage",
    "mV": "voltage",
    "kV": "voltage",
    "A": "current",
    "mA": "current",
    "W": "power",
    "kW": "power",
    "mW": "power",
    "Wh": "energy",
    "kWh": "energy",
    "MWh": "energy",
    "dBm": "rssi",
}
#: Home Assistant's state of an entity whose device cannot be reached.
UNAVAILABLE: Final = "unavailable"


class Refusal(StrEnum):
    """Why an entity cannot be shared (a stable code; the meaning's ``detail`` says it in words)."""

    PERSONAL_DATA = "personal_data"
    NO_MEASUREMENT = "no_measurement"
    BAD_ENTITY = "bad_entity_id"


@dataclass(frozen=True, slots=True)
class EntityMeaning:
    """What one entity would be in the hub: a canonical measurement, or a refusal with its reason."""

    entity_id: str
    measurement: str | None = None
    #: a boolean whose canonical value is the entity's "off" (a door sensor, on = open)
    invert: bool = False
    refusal: Refusal | None = None
    detail: str = ""

    @property
    def shareable(self) -> bool:
        return self.refusal is None and self.measurement is not None


def domain_of(entity_id: str) -> str:
    """``sensor`` of ``sensor.rain_gauge``."""
    return entity_id.partition(".")[0]


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def personal_reason(entity_id: str, attributes: Mapping[str, object]) -> str | None:
    """Why this entity is personal data (in words), or None when it is not."""
    domain = domain_of(entity_id)
    if domain in PERSONAL_DOMAINS:
        return f"{domain} entities say where people are"
    carried = sorted(PERSONAL_ATTRIBUTES.intersection(attributes))
    if carried:
        return f"its attributes carry personal data ({', '.join(carried)})"
    device_class = _text(attributes.get("device_class"))
    if device_class is not None:
        return PERSONAL_CLASSES.get((domain, device_class))
    return None


def _unit_fits(measurement: str, unit: str | None) -> bool:
    try:
        convert(measurement, 1.0, unit)
    except UnitError:
        return False
    return True


def entity_meaning(
    entity_id: str, attributes: Mapping[str, object], measurement: str | None = None
) -> EntityMeaning:
    """The meaning of an entity from its id and attributes; ``measurement`` is the resident's own choice
    for an entity Home Assistant does not describe well enough (it must still fit its domain and unit)."""
    if not ENTITY_ID.fullmatch(entity_id):
        return EntityMeaning(
            entity_id,
            refusal=Refusal.BAD_ENTITY,
            detail=f"{entity_id!r:.80} is not a Home Assistant entity id",
        )
    personal = personal_reason(entity_id, attributes)
    if personal is not None:
        return EntityMeaning(entity_id, refusal=Refusal.PERSONAL_DATA, detail=f"never shared: {personal}")
    domain = domain_of(entity_id)
    device_class = _text(attributes.get("device_class"))
    unit = _text(attributes.get("unit_of_measurement"))
    if measurement is not None:
        return _chosen(entity_id, domain, unit, measurement)
    if domain in NUMERIC_DOMAINS:
        return _numeric(entity_id, device_class, unit)
    if domain in BINARY_DOMAINS:
        found = BINARY_CLASSES.get(device_class or "")
        if found is None:
            what = f"device class {device_class!r}" if device_class else "no device class"
            return _none(entity_id, f"a binary sensor with {what} has no canonical measurement")
        return EntityMeaning(entity_id, found[0], invert=found[1])
    if domain in SWITCH_DOMAINS:
        return EntityMeaning(entity_id, "state")
    return _none(entity_id, f"{domain} entities have no canonical measurement")


def _numeric(entity_id: str, device_class: str | None, unit: str | None) -> EntityMeaning:
    if device_class is not None:
        name = SENSOR_CLASSES.get(device_class)
        if name is None:
            return _none(entity_id, f"device class {device_class!r} has no canonical measurement yet")
        if name == "rssi" and normalize_unit(unit) != "dBm":
            return _none(entity_id, f"signal strength in {unit or 'no unit'} is not rssi in dBm")
        if not _unit_fits(name, unit):
            return _none(entity_id, f"{unit!r} cannot be converted to {name} in {NUMERIC[name] or 'no unit'}")
        return EntityMeaning(entity_id, name)
    symbol = normalize_unit(unit)
    by_unit = UNIT_MEASUREMENTS.get(symbol) if symbol else None
    if by_unit is None:
        said = f"unit {unit!r}" if unit else "no unit"
        return _none(entity_id, f"no device class and {said}: set its device class in Home Assistant")
    return EntityMeaning(entity_id, by_unit)


def _chosen(entity_id: str, domain: str, unit: str | None, measurement: str) -> EntityMeaning:
    if measurement in NUMERIC:
        if domain not in NUMERIC_DOMAINS:
            return _none(entity_id, f"{domain} entities are not numbers: {measurement} does not fit")
        if not _unit_fits(measurement, unit):
            return _none(entity_id, f"{unit!r} cannot be converted to {measurement} ({NUMERIC[measurement]})")
        return EntityMeaning(entity_id, measurement)
    if measurement in BOOLEAN:
        if domain not in BINARY_DOMAINS | SWITCH_DOMAINS:
            return _none(entity_id, f"{domain} entities are not on/off: {measurement} does not fit")
        return EntityMeaning(entity_id, measurement)
    return _none(entity_id, f"{measurement!r:.40} is not a canonical measurement (DESIGN §5 lists them)")


def _none(entity_id: str, detail: str) -> EntityMeaning:
    return EntityMeaning(entity_id, refusal=Refusal.NO_MEASUREMENT, detail=detail)


def entity_value(measurement: str, state: str, unit: str | None, *, invert: bool = False) -> Value | None:
    """A Home Assistant state as the canonical value of ``measurement``; None for no value (``unknown``).

    Raises :class:`hub.domain.units.UnitError` for a state that is no value of that measurement.
    """
    if measurement in BOOLEAN:
        on = parse_bool(state)
        return None if on is None else on != invert
    return to_canonical(measurement, state, unit)
