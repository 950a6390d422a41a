"""InfluxDB line protocol for the ``reading`` measurement (DESIGN §5 "Time series").

Escaping follows the InfluxDB 1.x/2.x parser: in tag values and field keys a comma, a space and an equals
sign are escaped with a backslash; any other backslash is read literally, so it is written as it is.
Two things cannot be represented and are handled so that a line is never unparsable (one bad line would
make the server reject the whole batch):

- a trailing backslash (it would escape the separator after it) is dropped;
- newline, carriage return and tab are written as the two characters ``\\n``, ``\\r``, ``\\t``, as the
  official client does.

Fields are always floats (never the ``i`` suffix: ``21`` and ``21.0`` both become ``21.0``) or booleans.
NaN and infinities have no line-protocol form and are left out; a point left with no field, and an empty
tag, are left out too, as InfluxDB would refuse them.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.storage.sink import MEASUREMENT, Point

_ESCAPES = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\=", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_NOT_FINITE = frozenset({"nan", "inf", "-inf"})
# Tag sets and field keys repeat endlessly (a few hundred things, a few dozen measurement names), so
# their escaped forms are cached; the bound keeps a stream of unique ids from growing memory for ever.
_CACHE_LIMIT = 10_000
_tag_sets: dict[tuple[str, str], str] = {}
_field_keys: dict[str, str] = {}


def escape(text: str) -> str:
    """Escape a tag value or field key; a trailing backslash, which cannot be written, is dropped."""
    return text.rstrip("\\").translate(_ESCAPES)


def _tag_set(thing: str, source: str) -> str:
    prefix = MEASUREMENT
    if thing_escaped := escape(thing):
        prefix += ",thing=" + thing_escaped
    if source_escaped := escape(source):
        prefix += ",source=" + source_escaped
    if len(_tag_sets) >= _CACHE_LIMIT:
        _tag_sets.clear()
    _tag_sets[thing, source] = prefix + " "
    return prefix + " "


def _field_key(key: str) -> str:
    """``key=`` escaped, or "" for a key that escapes to nothing."""
    escaped = escape(key)
    prefix = escaped + "=" if escaped else ""
    if len(_field_keys) >= _CACHE_LIMIT:
        _field_keys.clear()
    _field_keys[key] = prefix
    return prefix


def encode(points: Sequence[Point]) -> bytes:
    """Encode points as newline-separated line protocol with nanosecond timestamps."""
    tag_sets = _tag_sets
    field_keys = _field_keys
    not_finite = _NOT_FINITE
    float_repr = float.__repr__
    lines: list[str] = []
    append = lines.append
    for point in points:
        fields: list[str] = []
        for key, value in point.values.items():
            if value is True:
                text = "true"
            elif value is False:
                text = "false"
            else:
                text = float_repr(value if type(value) is float else float(value))
                if text in not_finite:
                    continue
            name = field_keys.get(key)
            if name is None:
                name = _field_key(key)
            if name:
                fields.append(name + text)
        if fields:
            prefix = tag_sets.get((point.thing, point.source))
            if prefix is None:
                prefix = _tag_set(point.thing, point.source)
            append(f"{prefix}{','.join(fields)} {point.time_ns}")
    return "\n".join(lines).encode()
