"""Homie 4 and 5: device attributes, node properties with datatype and unit, ``$state``.

Homie 4 (``<root>/<device>/...``, all retained): ``$homie`` says a device exists and ``$name`` names it
(each → a Discovery with what is known so far); ``$state`` ready, sleeping, alert → online,
disconnected, lost → offline, init → ignored; legacy ``$online`` true/false → availability;
``$nodes``, ``<node>/$name|$type|$properties`` and ``<node>/<prop>/$datatype|$unit|$name|$settable|$format``
are learned (bounded), and a Discovery follows when they reveal a measurement not announced before.
A zero-length ``$homie`` (the device's retained topics being cleared) retires the thing.

Homie 5 (``<root>/5/<device>/...``): ``$description`` is one JSON document of nodes and properties →
the learned metadata and a Discovery; a zero-length ``$state`` means the device was removed → retired.
``$target``, ``$log/*``, ``$alert/*`` and ``/set`` commands are ignored. An empty string value is one
0x00 byte.

Values (``<node>/<prop>``) become readings of ``homie.<device>``. The canonical name comes from the
words of the property id and its ``$name`` (``temperature``, ``temp``, ``humidity``, ``pm2_5``, ...),
else from an unambiguous ``$unit`` (hPa → pressure, W → power, lx → illuminance, ...), else, for a
number whose unit fits, from the node's words (node ``battery``, property ``level`` in %). The value
is converted from ``$unit`` (°F → °C, Pa → hPa, Wh → kWh, mV → V). Booleans must be exactly
``true``/``false``, and are named by their own words (``on``, ``power``, ``motion``, ``leak``, ...).
Settable numbers (set points, dimmer levels), enums and numbers that name no measurement are kept
unmapped as ``<node>/<prop>``; strings, colours, dates and durations are ignored.
When two properties of a device name the same measurement, the first one heard owns it and the other is
kept unmapped, so one series never mixes two sensors.

Retained messages arrive in no guaranteed order. A value that comes before its ``$datatype``/``$unit`` is
decoded at once by its property id, its number taken as already in the canonical unit (Homie's
recommended units are the hub's for everything but pressure, where a Pa value then fails the range check
instead of being stored wrong); once the unit is learned, later values are converted. Holding values
back until a unit that may never come (``$unit`` is optional) would lose them. The subscriptions put the
attribute filters first and ask for them again on every connection, so after the first start the
metadata is known before any value.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from hub.domain.events import Availability, Discovery, Event, Ignored
from hub.domain.units import UnitError, convert, normalize_unit, parse_number
from hub.ingest.decoder import PayloadError, Subscription, Values, decode_json_object, decode_text, thing_id

#: Devices whose metadata is remembered (least recently heard forgotten first), and their bounds.
MAX_DEVICES: Final = 2048
MAX_NODES: Final = 128
MAX_PROPERTIES: Final = 512

#: $state → online (None: says nothing yet)
_STATES: Final[dict[str, bool | None]] = {
    "ready": True,
    "sleeping": True,
    "alert": True,
    "disconnected": False,
    "lost": False,
    "init": None,
}
_NUMBERS: Final = frozenset({"integer", "float"})
_TEXTS: Final = frozenset({"string", "color", "datetime", "duration", "json"})

# Words of a property → canonical measurement, first match in this order wins ("battery-voltage" is a
# voltage, "current-temperature" a temperature).
_NUMERIC_WORDS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("temperature", frozenset({"temperature", "temp", "tmp", "celsius", "fahrenheit"})),
    ("humidity", frozenset({"humidity", "hum", "humid", "rh"})),
    ("pressure", frozenset({"pressure", "baro", "barometer", "barometric", "press", "airpressure"})),
    ("co2", frozenset({"co2", "eco2", "carbondioxide"})),
    ("voc", frozenset({"voc", "tvoc"})),
    ("illuminance", frozenset({"illuminance", "lux", "illumination", "luminosity", "ambientlight"})),
    ("noise", frozenset({"noise", "sound", "loudness"})),
    ("energy", frozenset({"energy", "consumption"})),
    ("power", frozenset({"power", "watt", "watts", "wattage"})),
    ("voltage", frozenset({"voltage", "volt", "volts", "vbat", "vcc"})),
    ("battery", frozenset({"battery", "bat", "batt"})),
    ("current", frozenset({"current", "amps", "ampere", "amperage"})),
    ("rssi", frozenset({"rssi"})),
    ("linkquality", frozenset({"linkquality", "lqi"})),
)
_BOOLEAN_WORDS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("water_leak", frozenset({"leak", "leakage", "flood", "water", "waterleak"})),
    ("smoke", frozenset({"smoke"})),
    ("occupancy", frozenset({"motion", "occupancy", "occupied", "presence", "pir", "movement"})),
    ("contact", frozenset({"contact"})),
    ("tamper", frozenset({"tamper", "tampered"})),
    ("state", frozenset({"power", "on", "onoff", "switch", "relay", "state", "output"})),
)
#: Words that make a number a setting, not a measurement.
_SETTING_WORDS: Final = frozenset(
    {"target", "setpoint", "set", "desired", "threshold", "offset", "min", "max", "limit", "interval"}
)
_PM: Final = (
    (re.compile(r"(?<![a-z])pm[-_. ]?2[-_.,]?5"), "pm25"),
    (re.compile(r"(?<![a-z])pm[-_. ]?1[-_.,]0(?![0-9])"), "pm1"),
    (re.compile(r"(?<![a-z])pm[-_. ]?10(?![0-9])"), "pm10"),
    (re.compile(r"(?<![a-z])pm[-_. ]?1(?![0-9])"), "pm1"),
)
#: Units that name their measurement on their own (not %, ppm or µg/m³, which several share).
_UNIT_MEASUREMENTS: Final[dict[str, str]] = {
    "°C": "temperature",
    "°F": "temperature",
    **dict.fromkeys(("hPa", "Pa", "kPa", "bar", "mmHg", "inHg", "psi"), "pressure"),
    "lx": "illuminance",
    **dict.fromkeys(("W", "kW", "mW"), "power"),
    **dict.fromkeys(("Wh", "kWh", "MWh"), "energy"),
    **dict.fromkeys(("V", "mV", "kV"), "voltage"),
    **dict.fromkeys(("A", "mA"), "current"),
    "dBm": "rssi",
    "dB(A)": "noise",
}
_ANGLE_UNITS: Final = frozenset({"°", "deg"})  # Homie's degree of angle, not of temperature
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


@dataclass(slots=True)
class _Property:
    datatype: str | None = None
    unit: str | None = None
    name: str | None = None
    settable: bool = False
    format: str | None = None


@dataclass(slots=True)
class _Node:
    name: str | None = None
    type: str | None = None


@dataclass(slots=True)
class _Device:
    version: str | None = None
    name: str | None = None
    revision: int | None = None
    nodes: dict[str, _Node] = field(default_factory=dict)
    properties: dict[str, _Property] = field(default_factory=dict)
    #: canonical name → the ``node/prop`` that owns it
    owners: dict[str, str] = field(default_factory=dict)
    announced: frozenset[str] = frozenset()

    def node(self, node_id: str) -> _Node | None:
        if node_id not in self.nodes and len(self.nodes) >= MAX_NODES:
            return None
        return self.nodes.setdefault(node_id, _Node())

    def property(self, path: str) -> _Property | None:
        if path not in self.properties and len(self.properties) >= MAX_PROPERTIES:
            return None
        return self.properties.setdefault(path, _Property())


def _words(*texts: str | None) -> set[str]:
    words: set[str] = set()
    for text in texts:
        if text:
            lowered = _CAMEL.sub(" ", text).lower()
            words.update(w for w in _NON_WORD.split(lowered) if w)
            words.update(name for pattern, name in _PM if pattern.search(lowered))
    return words


def _unit_fits(name: str, unit: str | None) -> bool:
    if unit is None or not unit.strip():
        return True
    try:
        convert(name, 1.0, unit)
    except UnitError:
        return False
    return True


def _numeric_name(words: set[str], unit: str | None) -> str | None:
    for name, synonyms in _NUMERIC_WORDS:
        if words & synonyms and _unit_fits(name, unit):
            return name
    return next((pm for pm in ("pm25", "pm10", "pm1") if pm in words and _unit_fits(pm, unit)), None)


def _boolean_name(words: set[str]) -> str | None:
    return next((name for name, synonyms in _BOOLEAN_WORDS if words & synonyms), None)


def measurement(
    node_id: str, prop_id: str, prop: _Property | None, node: _Node | None, *, boolean: bool
) -> str | None:
    """The canonical name of a property: by its own words, then by its unit, then by its node's words
    (numbers with a unit only; a boolean is named by its own words alone)."""
    prop = prop or _Property()
    node = node or _Node()
    own = _words(prop_id, prop.name)
    around = _words(node_id, node.name, node.type)
    if boolean:
        return _boolean_name(own)
    if prop.settable or own & _SETTING_WORDS:
        return None
    unit = normalize_unit(prop.unit)
    if unit is None:
        return _numeric_name(own, None)
    by_unit = None if (prop.unit or "").strip() in _ANGLE_UNITS else _UNIT_MEASUREMENTS.get(unit)
    # the node's words only with a unit that fits: node "temperature" may hold hum and p as well
    return _numeric_name(own, unit) or by_unit or _numeric_name(around, unit)


def _text(payload: bytes) -> str:
    return decode_text(payload).strip()


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class HomieDecoder:
    name = "homie"

    def __init__(self, root: str = "homie") -> None:
        self.root = root.rstrip("/")
        self._prefix = self.root + "/"
        self._devices: OrderedDict[tuple[int, str], _Device] = OrderedDict()

    def subscriptions(self) -> list[Subscription]:
        r = self.root
        # Attributes first and replayed on every connection, so metadata is learned before values;
        # values come through the wildcard once (its retained copies only when the session is new).
        attributes = [
            f"{r}/+/$homie",
            f"{r}/+/$name",
            f"{r}/+/$state",
            f"{r}/+/$online",
            f"{r}/+/$nodes",
            f"{r}/+/+/$name",
            f"{r}/+/+/$type",
            f"{r}/+/+/$properties",
            f"{r}/+/+/+/$datatype",
            f"{r}/+/+/+/$unit",
            f"{r}/+/+/+/$name",
            f"{r}/+/+/+/$settable",
            f"{r}/5/+/$state",
            f"{r}/5/+/$description",
        ]
        return [*(Subscription(t, replay=True) for t in attributes), Subscription(f"{r}/#")]

    def matches(self, topic: str) -> bool:
        return topic.startswith(self._prefix)

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        parts = topic[len(self._prefix) :].split("/")
        if parts[0] == "5" and len(parts) >= 3 and parts[1] and not parts[1].startswith("$"):
            return self._v5(parts[1], parts[2:], topic, payload)
        if len(parts) < 2 or not parts[0] or parts[0].startswith("$") or not all(parts[1:]):
            return [Ignored(self.name, topic)]  # $broadcast, malformed
        return self._v4(parts[0], parts[1:], topic, payload)

    # -- devices --------------------------------------------------------------------------------------
    def _device(self, version: int, device_id: str) -> _Device:
        key = (version, device_id)
        device = self._devices.get(key)
        if device is None:
            device = self._devices[key] = _Device()
            if len(self._devices) > MAX_DEVICES:
                self._devices.popitem(last=False)
        else:
            self._devices.move_to_end(key)
        return device

    def _measurements(self, device: _Device) -> set[str]:
        found: set[str] = set()
        for path, prop in device.properties.items():
            # a unit without its datatype yet already tells a number (retained order is not guaranteed)
            if prop.datatype in _NUMBERS or prop.datatype == "boolean" or (not prop.datatype and prop.unit):
                node_id, _, prop_id = path.partition("/")
                name = measurement(
                    node_id, prop_id, prop, device.nodes.get(node_id), boolean=prop.datatype == "boolean"
                )
                if name is not None:
                    found.add(name)
        return found

    def _discovery(self, device_id: str, device: _Device) -> Discovery:
        measurements = self._measurements(device)
        device.announced = frozenset(measurements)
        attributes: dict[str, Any] = {}
        if device.version:
            attributes["homie"] = device.version
        if device.revision is not None:
            attributes["version"] = device.revision
        return Discovery(
            thing_id(self.name, device_id),
            self.name,
            name=device.name,
            measurements=tuple(sorted(measurements)),
            attributes=attributes,
        )

    def _retire(self, version: int, device_id: str) -> list[Event]:
        self._devices.pop((version, device_id), None)
        return [Discovery(thing_id(self.name, device_id), self.name, retired=True)]

    def _state(self, device_id: str, text: str, topic: str) -> list[Event]:
        if text not in _STATES:
            raise PayloadError("bad_value", f"$state: {text!r:.40} is not a Homie state")
        online = _STATES[text]
        if online is None:
            return [Ignored(self.name, topic)]
        return [Availability(thing_id(self.name, device_id), self.name, online)]

    # -- Homie 4 --------------------------------------------------------------------------------------
    def _v4(self, device_id: str, rest: list[str], topic: str, payload: bytes) -> list[Event]:
        text = _text(payload)
        if rest[0].startswith("$"):
            return self._v4_device_attribute(device_id, "/".join(rest), text, topic, payload)
        if len(rest) == 2 and rest[1].startswith("$"):
            device = self._device(4, device_id)
            node = device.node(rest[0])
            if node is not None and rest[1] in ("$name", "$type"):
                setattr(node, rest[1][1:], text or None)
            elif node is not None and rest[1] == "$properties":
                for prop_id in text.split(",")[:MAX_PROPERTIES]:
                    if prop_id.strip():  # Homie 3 wrote "prop:settable"
                        device.property(f"{rest[0]}/{prop_id.strip().partition(':')[0]}")
            return [Ignored(self.name, topic)]  # learned; $array and extensions ignored
        if len(rest) == 3 and rest[2].startswith("$") and not rest[1].startswith("$"):
            return self._v4_property_attribute(device_id, rest, text, topic)
        if len(rest) == 2 and not rest[1].startswith("$"):
            return self._value(4, device_id, rest[0], rest[1], text, topic)
        return [Ignored(self.name, topic)]  # /set commands, deeper topics

    def _v4_device_attribute(
        self, device_id: str, attribute: str, text: str, topic: str, payload: bytes
    ) -> list[Event]:
        if attribute == "$homie":
            if not payload:
                return self._retire(4, device_id)
            device = self._device(4, device_id)
            device.version = text or None
            return [self._discovery(device_id, device)]
        if attribute == "$name":
            device = self._device(4, device_id)
            device.name = text or None
            return [self._discovery(device_id, device)]
        if attribute == "$state":
            return self._state(device_id, text, topic) if payload else [Ignored(self.name, topic)]
        if attribute == "$online":  # Homie 1 and 2
            if text not in ("true", "false"):
                raise PayloadError("bad_value", f"$online: expected true or false, got {text!r:.40}")
            return [Availability(thing_id(self.name, device_id), self.name, text == "true")]
        if attribute == "$nodes":
            device = self._device(4, device_id)
            for node_id in text.split(",")[:MAX_NODES]:
                if node_id.strip():
                    device.node(node_id.strip().removesuffix("[]"))
        if attribute == "$stats/battery":  # Homie 3
            values = Values(self.name, topic)
            values.add("battery", text, "%")
            return values.events(thing_id(self.name, device_id))
        return [Ignored(self.name, topic)]

    def _v4_property_attribute(self, device_id: str, rest: list[str], text: str, topic: str) -> list[Event]:
        device = self._device(4, device_id)
        prop = device.property(f"{rest[0]}/{rest[1]}")
        attribute = rest[2]
        if prop is None:
            return [Ignored(self.name, topic)]
        if attribute == "$datatype":
            prop.datatype = text.lower() or None
        elif attribute == "$unit":
            prop.unit = text or None
        elif attribute == "$name":
            prop.name = text or None
        elif attribute == "$format":
            prop.format = text[:256] or None
        elif attribute == "$settable":
            prop.settable = text == "true"
        else:
            return [Ignored(self.name, topic)]  # $retained and extensions
        if not self._measurements(device) <= device.announced:
            return [self._discovery(device_id, device)]
        return [Ignored(self.name, topic)]

    # -- Homie 5 --------------------------------------------------------------------------------------
    def _v5(self, device_id: str, rest: list[str], topic: str, payload: bytes) -> list[Event]:
        if rest == ["$state"]:
            if not payload:  # zero-length $state: the device is gone
                return self._retire(5, device_id)
            return self._state(device_id, _text(payload), topic)
        if rest == ["$description"]:
            return [self._description(device_id, payload)]
        if len(rest) == 2 and all(rest) and not any(p.startswith("$") for p in rest):
            return self._value(5, device_id, rest[0], rest[1], _text(payload), topic)
        return [Ignored(self.name, topic)]  # $target, $log/*, $alert/*, /set

    def _description(self, device_id: str, payload: bytes) -> Discovery:
        doc = decode_json_object(payload)
        nodes = doc.get("nodes", {})
        if not isinstance(nodes, dict):
            raise PayloadError("not_object", "$description: nodes is not an object")
        device = self._device(5, device_id)
        device.name = _optional_text(doc.get("name"))
        device.version = _optional_text(doc.get("homie"))
        revision = doc.get("version")
        device.revision = revision if isinstance(revision, int) and not isinstance(revision, bool) else None
        device.nodes = {}
        device.properties = {}
        for node_id, node_doc in list(nodes.items())[:MAX_NODES]:
            if not isinstance(node_doc, dict):
                continue
            device.nodes[node_id] = _Node(
                _optional_text(node_doc.get("name")), _optional_text(node_doc.get("type"))
            )
            props = node_doc.get("properties")
            for prop_id, doc_prop in props.items() if isinstance(props, dict) else ():
                if isinstance(doc_prop, dict) and len(device.properties) < MAX_PROPERTIES:
                    datatype = _optional_text(doc_prop.get("datatype"))
                    device.properties[f"{node_id}/{prop_id}"] = _Property(
                        datatype=datatype.lower() if datatype else None,
                        unit=_optional_text(doc_prop.get("unit")),
                        name=_optional_text(doc_prop.get("name")),
                        settable=doc_prop.get("settable") is True,
                        format=_optional_text(doc_prop.get("format")),
                    )
        device.owners = {}
        return self._discovery(device_id, device)

    # -- values ---------------------------------------------------------------------------------------
    def _value(
        self, version: int, device_id: str, node_id: str, prop_id: str, text: str, topic: str
    ) -> list[Event]:
        if not text:  # a cleared retained value, or Homie 5's empty string (one 0x00 byte)
            return [Ignored(self.name, topic)]
        device = self._device(version, device_id)
        path = f"{node_id}/{prop_id}"
        prop = device.properties.get(path)
        datatype = prop.datatype if prop is not None else None
        values = Values(self.name, topic)
        thing = thing_id(self.name, device_id)
        if datatype == "enum":
            values.skip(path, text[:64])
            return values.events(thing)
        if datatype in _TEXTS:
            return [Ignored(self.name, topic)]
        node = device.nodes.get(node_id)
        if datatype == "boolean" or (datatype not in _NUMBERS and text in ("true", "false")):
            if text not in ("true", "false"):
                raise PayloadError("bad_value", f"{path}: a Homie boolean is true or false, got {text!r:.40}")
            name = measurement(node_id, prop_id, prop, node, boolean=True)
            raw: float | bool = text == "true"
        else:
            try:
                number = parse_number(text)
            except UnitError as exc:
                if datatype is None:
                    return [Ignored(self.name, topic)]  # text of a property whose datatype is not known yet
                raise PayloadError(exc.reason, f"{path}: {exc.detail}") from None
            if number is None:
                return [Ignored(self.name, topic)]
            name = measurement(node_id, prop_id, prop, node, boolean=False)
            raw = number
        if name is not None and device.owners.setdefault(name, path) == path:
            values.add(name, raw, prop.unit if prop is not None else None)
        else:
            values.skip(path, raw)
        return values.events(thing)
