"""ESPHome (MQTT mode): plain-value states, <node>/status, esphome/discover, tag events.

ESPHome publishes each entity's state as plain text on ``<node>/<component>/<object_id>/state``
(``20``, ``21.50``, ``ON``, ``nan``); units and device classes exist only in the Home Assistant
discovery configs it also publishes. The Home Assistant decoder, earlier in the router, reads the
states of nodes that publish those configs. This decoder is the fallback for nodes without them: it
reads the object id's words (``living_room_temperature``, ``pm_2_5``, ``wifi_signal``) and assumes
ESPHome's default units (°C, %, hPa, µg/m³, ppm, lx, V, A, W, kWh, dBm). Only the default topic
prefix (the node name, one topic level) is followed; a node with a custom prefix needs discovery.

Tags: ESPHome has no tag topic of its own; users publish ``on_tag`` themselves, typically to
``<node>/tag`` or ``rdm6300/tag``. An rdm6300's ``x`` is the card id as a decimal uint32 (the 4 id
bytes, without the version/customer byte), a pn532's is ``74-10-37-94``. The tag id is the
uppercase hex of those bytes: ``7616525`` → ``0074380D``. The hub-bridge reads an RDM6300's whole
frame and reports 5 bytes, customer byte included (``010074380D``), so the same card has a
different id at an ESPHome reader; residents register a tag as the reader they use reports it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hub.domain.events import Availability, Discovery, Event, Ignored, Scan
from hub.domain.units import NO_VALUE, UnitError, convert, normalize_unit, parse_bool, parse_number
from hub.ingest.decoder import PayloadError, Subscription, Values, decode_json_object, decode_text, thing_id

DEFAULT_DISCOVERY_PREFIX = "esphome/discover"

#: ESPHome's MQTT component types (the second level of a state topic).
COMPONENTS = frozenset(
    {
        "sensor", "binary_sensor", "switch", "text_sensor", "light", "fan", "number", "select", "text",
        "cover", "lock", "valve", "button", "climate", "event", "update", "datetime", "date", "time",
        "alarm_control_panel", "media_player",
    }
)  # fmt: skip
#: Components whose state is ON/OFF and means "switched on".
ON_OFF_COMPONENTS = frozenset({"switch", "light", "fan"})
#: Switches that are actions on the node itself (ESPHome's restart switch publishes OFF), not a load.
_NODE_ACTIONS = frozenset({"restart", "reboot", "reset", "shutdown", "safe", "factory", "identify"})
#: A climate entity's sub-topics that are measurements of the room.
CLIMATE_READINGS = {"current_temperature": "temperature", "current_humidity": "humidity"}

#: Home Assistant's own birth message (``homeassistant/status``) is no ESPHome node.
_NOT_NODES = frozenset({"homeassistant"})

# -- object id words ---------------------------------------------------------------------------------

#: Words that make a value something other than the current reading (a setpoint, a statistic, a
#: derived quantity, the chip's own temperature, a daily counter that resets).
_NOT_A_READING = frozenset(
    {
        "internal", "cpu", "chip", "device", "core", "soc", "mcu", "board",
        "target", "setpoint", "set", "offset", "calibration", "threshold", "limit", "interval",
        "delay", "timeout", "min", "max", "minimum", "maximum", "avg", "average", "mean", "median",
        "trend", "delta", "diff", "difference", "rate", "change", "forecast",
        "dew", "dewpoint", "heat", "index", "aqi", "feels", "apparent", "reactive", "factor", "pf",
        "absolute", "daily", "today", "yesterday", "hourly", "weekly", "monthly", "yearly",
        "count", "number", "nc", "size", "std", "cf1",
    }
)  # fmt: skip

#: (canonical name, words naming it, words that mean another quantity), first match wins: a
#: `battery_voltage` is a voltage, a `current_temperature` a temperature, a `battery_current` a current.
_NUMERIC_WORDS: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    ("co2", frozenset({"co2"}), frozenset()),
    ("voc", frozenset({"voc", "tvoc"}), frozenset()),
    ("voltage", frozenset({"voltage", "volt", "volts", "vcc", "vbat", "spannung"}), frozenset()),
    ("energy", frozenset({"energy", "energie", "kwh"}), frozenset()),
    ("power", frozenset({"power", "watt", "watts", "wattage", "leistung"}), frozenset({"supply"})),
    ("temperature", frozenset({"temperature", "temp", "temperatur", "temperatura"}), frozenset()),
    (
        "humidity",
        frozenset({"humidity", "hum", "humid", "rh", "feuchte", "luftfeuchte", "luftfeuchtigkeit"}),
        frozenset(),
    ),
    (
        "pressure",
        frozenset({"pressure", "baro", "barometer", "barometric", "luftdruck"}),
        frozenset({"water", "oil", "tire", "tyre", "gas", "differential"}),
    ),
    ("illuminance", frozenset({"illuminance", "illumination", "lux", "helligkeit"}), frozenset()),
    ("rssi", frozenset({"rssi"}), frozenset({"percent", "percentage", "pct", "quality"})),
    ("noise", frozenset({"noise", "sound", "loudness", "dba"}), frozenset()),
    ("current", frozenset({"current", "amps", "ampere", "amperage", "strom"}), frozenset()),
    ("battery", frozenset({"battery", "batt", "bat", "akku"}), frozenset()),
)

#: (canonical name, words naming it, inverted): a binary_sensor's ON means "detected", except a
#: door's or window's ON, which means open (canonical `contact` is true when closed).
_BOOLEAN_WORDS: tuple[tuple[str, frozenset[str], bool], ...] = (
    ("tamper", frozenset({"tamper", "sabotage"}), False),
    ("smoke", frozenset({"smoke", "rauch", "rauchmelder"}), False),
    ("water_leak", frozenset({"leak", "leakage", "water", "flood", "moisture", "wasser"}), False),
    (
        "occupancy",
        frozenset({"motion", "occupancy", "occupied", "presence", "pir", "movement", "bewegung", "radar"}),
        False,
    ),
    (
        "contact",
        frozenset({"door", "window", "contact", "opening", "gate", "garage", "fenster", "tuer", "reed"}),
        True,
    ),
)

_PM_WORD = re.compile(r"pm(\d*)")
_PM_CONTEXT = frozenset({"particulate", "particle", "feinstaub"})
_PM_SIZES = {1.0: "pm1", 2.5: "pm25", 10.0: "pm10"}


def words(object_id: str) -> list[str]:
    """The words of an ESPHome object id (``living_room_temperature`` → living, room, temperature)."""
    return [w for w in re.split(r"[^a-z0-9]+", object_id.lower()) if w]


def _pm_size(tokens: list[str]) -> str | None:
    """``pm_2_5``, ``pm2_5``, ``pm25``, ``pm_10``, ``pm1_0``, ``particulate_matter_2_5_m`` → pm1/pm25/pm10."""
    for i, token in enumerate(tokens):
        match = _PM_WORD.fullmatch(token)
        if match is None and token not in _PM_CONTEXT:
            continue
        digits = [match.group(1)] if match is not None and match.group(1) else []
        j = i + 1
        if not digits:  # `particulate_matter_2_5`: one filler word may sit between
            j += 1 if j < len(tokens) and not tokens[j].isdigit() else 0
        while j < len(tokens) and tokens[j].isdigit() and len(digits) < 2:
            digits.append(tokens[j])
            j += 1
        if not digits:
            continue
        if len(digits) == 2:
            size = float(f"{digits[0]}.{digits[1]}")
        else:
            size = 2.5 if digits[0] == "25" else float(digits[0])
        return _PM_SIZES.get(size)
    return None


def numeric_measurement(object_id: str) -> str | None:
    """The canonical measurement a sensor's object id names, or None."""
    tokens = words(object_id)
    present = set(tokens)
    if present & _NOT_A_READING:
        return None
    pm = _pm_size(tokens)
    if pm is not None:
        return pm
    if "carbon" in present and "dioxide" in present:
        return "co2"
    if "wifi" in present and present & {"signal", "strength"}:
        present = present | {"rssi"}
    for name, named_by, other in _NUMERIC_WORDS:
        if present & named_by and not present & other:
            return name
    return None


def unit_in_id(name: str, object_id: str) -> str | None:
    """A unit the object id ends in (``energy_wh``, ``temperature_f``), when it fits the measurement."""
    tokens = words(object_id)
    if len(tokens) < 2:
        return None
    unit = normalize_unit(tokens[-1])
    try:
        convert(name, 1.0, unit)
    except UnitError:
        return None
    return unit


def boolean_measurement(object_id: str) -> tuple[str, bool] | None:
    """The canonical boolean a binary_sensor's object id names, and whether ON means false."""
    present = set(words(object_id))
    for name, named_by, inverted in _BOOLEAN_WORDS:
        if present & named_by:
            return name, inverted
    return None


_DECIMAL = re.compile(r"[0-9]{1,13}")
_SEPARATED_HEX = re.compile(r"[0-9A-Fa-f]{1,2}(?:[-: ][0-9A-Fa-f]{1,2})+")
_PLAIN_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){1,10}")


def esphome_tag(raw: Any) -> str:
    """A tag id (DESIGN §5) from what an ESPHome ``on_tag`` published.

    Decimal (an rdm6300's uint32 ``x``) → 8 uppercase hex digits, the 4 id bytes (10 when a wider
    number carries a fifth byte); ``74-10-37-94`` (a pn532's ``x``) → ``74103794``; hex with letters
    → uppercase. Digits alone are always read as decimal.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise PayloadError("bad_tag", f"tag: expected text or a number, got {type(raw).__name__}")
    text = raw.strip()
    if _DECIMAL.fullmatch(text):
        number = int(text)
        if number < 1 << 32:
            return f"{number:08X}"
        if number < 1 << 40:
            return f"{number:010X}"
        raise PayloadError("bad_tag", f"tag: {text:.20} is wider than 5 bytes")
    if _SEPARATED_HEX.fullmatch(text):
        return "".join(part.zfill(2) for part in re.split(r"[-: ]", text)).upper()
    if _PLAIN_HEX.fullmatch(text):
        return text.upper()
    raise PayloadError("bad_tag", f"tag: {text!r:.40} is neither a decimal id nor hex bytes")


def manufacturer_of(platform: str | None) -> str | None:
    """The chip maker from esphome/discover's ``platform`` (ESP32, ESP8266, RP2040, BK72XX, ...)."""
    if platform is None:
        return None
    key = platform.upper()
    if key.startswith("ESP"):
        return "Espressif"
    if key.startswith("RP2040"):
        return "Raspberry Pi"
    if key.startswith("BK72"):
        return "Beken"
    if key.startswith("RTL87"):
        return "Realtek"
    return None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


class EsphomeDecoder:
    """ESPHome nodes in MQTT mode, under their default topic prefix (the node name)."""

    name = "esphome"

    def __init__(self, discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> None:
        self.discovery_prefix = discovery_prefix.strip().rstrip("/")
        self._discovery_depth = self.discovery_prefix.count("/") + 1

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(f"{self.discovery_prefix}/+", replay=True),
            Subscription("+/status"),
            Subscription("+/+/+/state"),
            Subscription("+/climate/+/+/state"),
            Subscription("+/tag"),
            Subscription("+/+/tag"),
        ]

    def matches(self, topic: str) -> bool:
        return self._kind(topic) is not None

    def _kind(self, topic: str) -> str | None:
        levels = topic.split("/")
        if not all(levels):
            return None
        if topic == self.discovery_prefix or (
            topic.startswith(self.discovery_prefix + "/") and len(levels) == self._discovery_depth + 1
        ):
            return "discovery"
        if len(levels) == 2 and levels[1] == "status":
            return None if levels[0] in _NOT_NODES else "status"
        if levels[-1] == "tag" and len(levels) in (2, 3):
            return "tag"
        if len(levels) in (4, 5) and levels[1] in COMPONENTS and levels[-1] in ("state", "command"):
            return "state"
        return None

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        kind = self._kind(topic)
        if kind == "discovery":
            return self._discovery(topic, payload)
        if kind == "status":
            return self._status(topic, payload)
        if kind == "tag":
            return self._tag(topic, payload)
        if kind == "state":
            return self._state(topic, payload)
        return [Ignored(self.name, topic)]

    def _status(self, topic: str, payload: bytes) -> list[Event]:
        text = decode_text(payload).strip()
        if text not in ("online", "offline"):
            return [Ignored(self.name, topic)]  # other firmwares use <x>/status too
        node = topic.split("/")[0]
        return [Availability(thing_id(self.name, node), self.name, text == "online")]

    def _discovery(self, topic: str, payload: bytes) -> list[Event]:
        if topic == self.discovery_prefix or not decode_text(payload).strip():
            return [Ignored(self.name, topic)]  # a request for announcements, or a cleared message
        node = topic.rsplit("/", 1)[1]
        info = decode_json_object(payload)
        platform = _text(info.get("platform"))
        board = _text(info.get("board"))
        attributes = {
            key: info[key].strip() for key in ("ip", "mac", "platform", "board") if _text(info.get(key))
        }
        return [
            Discovery(
                thing=thing_id(self.name, node),
                source=self.name,
                name=_text(info.get("friendly_name")) or _text(info.get("name")) or node,
                model=board or platform,
                manufacturer=manufacturer_of(platform),
                sw_version=_text(info.get("version")),
                attributes=attributes,
            )
        ]

    def _tag(self, topic: str, payload: bytes) -> list[Event]:
        text = decode_text(payload).strip()
        if not text:
            return [Ignored(self.name, topic)]
        prefix = topic.split("/")[:-1]
        if len(prefix) == 2 and prefix[0] == "esphome":  # a `topic_prefix: esphome/<node>` layout
            prefix = prefix[1:]
        raw: Any = text
        if text.startswith("{"):  # mqtt.publish_json: {"tag": ...} or {"uid": ...}
            obj = decode_json_object(payload)
            raw = next((obj[k] for k in ("tag", "uid", "id", "tag_id") if k in obj), None)
        return [Scan(reader=thing_id(self.name, "/".join(prefix)), source=self.name, tag=esphome_tag(raw))]

    def _state(self, topic: str, payload: bytes) -> list[Event]:
        levels = topic.split("/")
        node, component, object_id = levels[0], levels[1], levels[2]
        if levels[-1] == "command":
            return [Ignored(self.name, topic)]
        text = decode_text(payload).strip()
        if text.lower() in NO_VALUE:
            return [Ignored(self.name, topic)]  # nan / None: the sensor has no value right now
        thing = thing_id(self.name, node)
        values = Values(self.name, topic)
        if len(levels) == 5:  # a climate's, fan's or cover's sub-state
            measurement = CLIMATE_READINGS.get(levels[3]) if component == "climate" else None
            if measurement is None:
                return [Ignored(self.name, topic)]
            values.add(measurement, text)
        elif component in ("sensor", "number"):
            # a number entity is a control (a setpoint, an offset), whatever its name says
            measurement = numeric_measurement(object_id) if component == "sensor" else None
            if measurement is not None:
                values.add(measurement, text, unit_in_id(measurement, object_id))
            else:
                number = self._number(object_id, text)
                if number is None:
                    return [Ignored(self.name, topic)]
                values.skip(object_id, number)
        elif component == "binary_sensor":
            on = self._on(object_id, text)
            named = boolean_measurement(object_id)
            if named is None:
                values.add("state", on)
            else:
                values.add(named[0], not on if named[1] else on)
        elif component in ON_OFF_COMPONENTS:
            if set(words(object_id)) & _NODE_ACTIONS:
                return [Ignored(self.name, topic)]
            raw: Any = text
            if component == "light" and text.startswith("{"):  # the JSON light schema
                raw = decode_json_object(payload).get("state")
                if raw is None:
                    return [Ignored(self.name, topic)]
            values.add("state", self._on(object_id, raw))
        else:
            return [Ignored(self.name, topic)]  # text_sensor, select, cover, lock, ...: no measurement
        return values.events(thing)

    @staticmethod
    def _number(object_id: str, text: str) -> float | None:
        try:
            return parse_number(text)
        except UnitError as exc:
            raise PayloadError(exc.reason, f"{object_id}: {exc.detail}") from None

    @staticmethod
    def _on(object_id: str, raw: Any) -> bool:
        try:
            on = parse_bool(raw)
        except UnitError as exc:
            raise PayloadError(exc.reason, f"{object_id}: {exc.detail}") from None
        if on is None:
            raise PayloadError("bad_value", f"{object_id}: expected ON or OFF, got {raw!r:.40}")
        return on
