"""Units, spellings and conversions into the canonical vocabulary (DESIGN §5).

Devices spell the same thing many ways: ``°C``, ``C``, ``° C``, ``℃``, ``ºC`` and even the mojibake
``Â°C``; ``ON``, ``true``, ``"true"``, ``1``, ``Online``. Every decoder goes through this module, so a
spelling learned once is understood everywhere. Nothing here raises anything but :class:`UnitError`.
"""

from __future__ import annotations

import math
import re
from typing import Final

from hub.domain.vocabulary import BOOLEAN, NUMERIC, RANGES


class UnitError(ValueError):
    """A value or unit that cannot become a canonical value; ``reason`` is the counted code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


#: Text that means "no value right now": firmwares publish these instead of leaving a value out.
NO_VALUE: Final[frozenset[str]] = frozenset(
    {"", "nan", "-nan", "none", "null", "unknown", "unavailable", "n/a", "na", "-"}
)

_TRUE: Final[frozenset[str]] = frozenset({"on", "true", "1", "yes", "online", "open", "active", "detected"})
_FALSE: Final[frozenset[str]] = frozenset(
    {"off", "false", "0", "no", "offline", "closed", "inactive", "clear"}
)

# Spellings → canonical unit symbol. Keys are compared after lower-casing and removing spaces.
# fmt: off
_UNIT_SPELLINGS: Final[dict[str, str]] = {
    "°c": "°C", "c": "°C", "℃": "°C", "ºc": "°C", "degc": "°C", "celsius": "°C", "°": "°C",
    "<c2><b0>c": "°C", "â°c": "°C", "deg": "°C",
    "°f": "°F", "f": "°F", "℉": "°F", "ºf": "°F", "degf": "°F", "fahrenheit": "°F", "â°f": "°F",
    "k": "K", "kelvin": "K",
    "hpa": "hPa", "mbar": "hPa", "millibar": "hPa", "pa": "Pa", "kpa": "kPa", "bar": "bar",
    "mmhg": "mmHg", "inhg": "inHg", "psi": "psi",
    "%": "%", "%rh": "%", "percent": "%",
    "µg/m³": "µg/m³", "μg/m³": "µg/m³", "ug/m3": "µg/m³", "µg/m3": "µg/m³", "μg/m3": "µg/m³",
    "ug/m³": "µg/m³",
    "ppm": "ppm", "ppb": "ppb",
    "lx": "lx", "lux": "lx",
    "db": "dB", "dba": "dB(A)", "db(a)": "dB(A)",
    "dbm": "dBm",
    "v": "V", "mv": "mV", "kv": "kV",
    "a": "A", "ma": "mA",
    "w": "W", "kw": "kW", "mw": "mW",
    "wh": "Wh", "kwh": "kWh", "mwh": "MWh",  # no firmware reports milliwatt-hours; MWh is the one meant
    "mm": "mm", "cm": "cm", "in": "in", "inch": "in", "inches": "in",
}
# fmt: on

# unit → (canonical unit, scale, offset): canonical = value * scale + offset
_CONVERSIONS: Final[dict[str, tuple[str, float, float]]] = {
    "°F": ("°C", 5 / 9, -32 * 5 / 9),
    "K": ("°C", 1.0, -273.15),
    "Pa": ("hPa", 0.01, 0.0),
    "kPa": ("hPa", 10.0, 0.0),
    "bar": ("hPa", 1000.0, 0.0),
    "mmHg": ("hPa", 1.333223684, 0.0),
    "inHg": ("hPa", 33.8638866667, 0.0),
    "psi": ("hPa", 68.9475729, 0.0),
    "mV": ("V", 0.001, 0.0),
    "kV": ("V", 1000.0, 0.0),
    "mA": ("A", 0.001, 0.0),
    "kW": ("W", 1000.0, 0.0),
    "mW": ("W", 0.001, 0.0),
    "Wh": ("kWh", 0.001, 0.0),
    "MWh": ("kWh", 1000.0, 0.0),
    "cm": ("mm", 10.0, 0.0),
    "in": ("mm", 25.4, 0.0),
    "dB": ("dB(A)", 1.0, 0.0),  # sound level meters publish "dB" for A-weighted levels
}

_NUMBER_WITH_UNIT = re.compile(r"\s*([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*")


def normalize_unit(text: str | None) -> str | None:
    """The canonical symbol of a unit spelling, None for no unit; unknown spellings come back as given."""
    if text is None:
        return None
    key = text.strip().replace(" ", "").lower()
    if not key:
        return None
    if key.startswith("Â".lower()) and key[1:] in _UNIT_SPELLINGS:  # UTF-8 read as Latin-1
        key = key[1:]
    return _UNIT_SPELLINGS.get(key, text.strip())


def parse_number(raw: object) -> float | None:
    """A finite number from a JSON number or numeric text; None for "no value" (``nan``, ``None``, null).

    Raises ``bad_value`` for anything else (booleans, text that is not a number, infinities).
    """
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise UnitError("bad_value", f"expected a number, got {raw!r}")
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:  # an integer of hundreds of digits
            raise UnitError("bad_value", f"{raw!r:.40} is too large a number") from None
        if math.isnan(number):
            return None
        if math.isinf(number):
            raise UnitError("bad_value", f"{raw!r} is not a finite number")
        return number
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in NO_VALUE:
            return None
        try:
            number = float(text)
        except ValueError:
            raise UnitError("bad_value", f"expected a number, got text {raw!r:.40}") from None
        if math.isinf(number):
            raise UnitError("bad_value", f"{raw!r:.40} is not a finite number")
        return None if math.isnan(number) else number
    raise UnitError("bad_value", f"expected a number, got {type(raw).__name__}")


def split_value_unit(raw: str) -> tuple[float | None, str | None]:
    """``"20.6 ℃"`` → ``(20.6, "°C")``; ``"nan"`` → ``(None, None)``. A decimal comma is accepted."""
    text = raw.strip()
    if text.lower() in NO_VALUE:
        return None, None
    match = _NUMBER_WITH_UNIT.fullmatch(text)
    if match is None:
        raise UnitError("bad_value", f"expected a number with an optional unit, got {raw!r:.40}")
    number = float(match.group(1).replace(",", "."))
    return number, normalize_unit(match.group(2))


def parse_bool(raw: object, *, on: object = None, off: object = None) -> bool | None:
    """A boolean from the many spellings devices use; None for "no value".

    ``on``/``off`` are the device's own payloads when it declares them (Home Assistant's ``payload_on``);
    they are compared first and exactly, so an inverted mapping (``payload_on: false``) is honoured.
    """
    if raw is None:
        return None
    if on is not None and (raw == on or (isinstance(on, str) and str(raw) == on)):
        return True
    if off is not None and (raw == off or (isinstance(off, str) and str(raw) == off)):
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        key = raw.strip().lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
        if key in NO_VALUE:
            return None
    raise UnitError("bad_value", f"expected on/off, true/false or 1/0, got {raw!r:.40}")


def convert(name: str, value: float, unit: str | None) -> float:
    """``value`` in ``unit`` expressed in the canonical unit of measurement ``name``.

    ``unit`` None means "already canonical" (the ecosystem's documented default). A unit that cannot
    express the measurement (``kWh`` for ``power``) raises ``bad_unit`` rather than storing a wrong number.
    """
    target = NUMERIC.get(name)
    if target is None:
        raise UnitError("unknown_measurement", f"{name!r:.40} is not a canonical measurement")
    symbol = normalize_unit(unit)
    if symbol is None or symbol == target:
        return value
    conversion = _CONVERSIONS.get(symbol)
    if conversion is not None and conversion[0] == target:
        _, scale, offset = conversion
        return round(value * scale + offset, 6)  # 3175 mV is 3.175 V, not 3.1750000000000003
    if target == "" or (target == "dB(A)" and symbol == "dB"):
        return value
    wanted = target or "a plain number"
    raise UnitError("bad_unit", f"{name}: unit {unit!r:.20} cannot be converted to {wanted}")


def check_range(name: str, value: float) -> float:
    """The value when it is physically plausible for ``name``; else ``out_of_range``.

    Catches sensor sentinels and roll-overs (a PM2.5 of 43521, an energy counter of 2^48) that would
    otherwise poison charts and alert rules.
    """
    bounds = RANGES.get(name)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise UnitError("out_of_range", f"{name}: {value:g} is outside {bounds[0]:g}..{bounds[1]:g}")
    return value


def to_canonical(name: str, raw: object, unit: str | None = None) -> float | bool | None:
    """One raw device value as the canonical value of ``name``: converted, range-checked, or None.

    Numbers may arrive as JSON numbers, numeric text or text with a unit inside (``"20.6 ℃"``); a unit
    found in the text wins over ``unit``. Booleans accept every spelling :func:`parse_bool` knows.
    """
    if name in BOOLEAN:
        return parse_bool(raw)
    if name not in NUMERIC:
        raise UnitError("unknown_measurement", f"{name!r:.40} is not a canonical measurement")
    if isinstance(raw, str):
        try:
            number = parse_number(raw)
        except UnitError:
            number, inner = split_value_unit(raw)
            unit = inner or unit
    else:
        number = parse_number(raw)
    if number is None:
        return None
    return check_range(name, convert(name, number, unit))
