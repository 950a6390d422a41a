"""Tasmota: tele/SENSOR, STATE, LWT, stat/RESULT and POWER, its discovery; PN532, RDM6300, Wiegand tags.

Topics
    Tasmota builds every topic from its FullTopic (default ``%prefix%/%topic%/``) plus one leaf:
    ``%prefix%`` is ``cmnd``, ``stat`` or ``tele``, ``%topic%`` the device topic (``%hostname%`` and
    ``%id%`` stand in for it when the FullTopic names no ``%topic%``). The hub subscribes to the ``tele``
    and ``stat`` topics of the configured layout (``tele/+/+``, or ``+/tele/+`` for ``%topic%/%prefix%/``)
    and to the retained discovery under ``tasmota/discovery``. A device's discovery config gives its own
    FullTopic (``ft``), prefixes (``tp``) and topic (``t``); a device whose layout differs from the
    configured one is decoded all the same, and its topics are announced on its ``Discovery``.
    ``cmnd`` topics are commands to devices: never decoded, Ignored if seen.

Things
    - The device is ``tasmota.<topic>``.
    - A sensor object carrying a stable id (``Id``: a 1-Wire serial; ``Address``: the same in older
      firmware; ``mac``: a BLE sensor relayed by MI32; ``IEEEAddr``/``Device``: a Zigbee device in
      ``ZbReceived``) is its own thing ``tasmota.<topic>.<Id>``.
      Tasmota's ``-n`` suffix (``DS18B20-2``) follows bus order and renumbers when a sensor is added or
      lost, so it is never part of an id.
    - A sensor object without such an id reports for the device. When two objects of one message give
      the same measurement (a BME280 and an SHT3X both measure temperature), the first object's value
      stays on the device and each later object's value of that measurement goes to the sub-thing
      ``tasmota.<topic>.<sensor key>`` (``tasmota.kitchen.SHT3X-0x45``): nothing is overwritten or lost.
    - Per-channel arrays (``"Power":[12.1,40.0]`` on two-channel meters): channel 1 is read like a plain
      value, channel n >= 2 goes to ``tasmota.<topic>.<sensor key>.<n>`` (``<topic>.<Id>.<n>`` with an id).
    - Relays: ``POWER``/``POWER1`` is the device's ``state``; ``POWER<n>`` is ``tasmota.<topic>.power<n>``.
    - The chip's own sensors (``ESP32``, ``Global``) are diagnostics, kept unmapped so a 45 °C chip is
      not shown as the room's temperature.

Values
    Units come from sibling keys (``TempUnit`` C/F, ``PressureUnit`` hPa/mmHg/inHg) or are implicit
    (ENERGY kWh, W, V, A). ``Total`` of ``ENERGY`` is ``energy``; ``Today``, ``Period``, apparent and
    reactive power, power factor, dew point, sea-level pressure, counters, uptime, heap and the Wi-Fi
    quality ``Wifi.RSSI`` (0-100 %, not dBm; ``Wifi.Signal`` is the dBm ``rssi``) are listed unmapped.
    ``Time`` is the device's local time, usually without an offset. With an offset it is exact. Without
    one, a message whose time lies within 90 s of a whole number of quarter hours from its arrival is
    live, and that whole number is the device's zone offset, kept per device for its later (retained,
    delayed) messages; with no offset known the text is read as UTC. Insane times (an unsynced clock in
    1970, the future) fall back to arrival time.

Tags
    PN532 / RC522 ``UID`` and the native RDM6300 driver's ``UID`` as delivered (uppercase hex); an
    RDM6300 on the serial bridge (``SSerialReceived``, 12 ASCII hex digits, 0x02/0x03 optional) after
    its XOR checksum, whose failure is a ``bad_checksum`` rejection; Wiegand ``UID`` (decimal, or hex
    with SetOption123) as ``W<Size>:<decimal>``. The reader is the device's thing.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.domain.clock import parse_timestamp, sane_time
from hub.domain.events import Availability, Discovery, Event, Ignored, Rejected, Scan
from hub.domain.units import NO_VALUE, UnitError, parse_bool
from hub.ingest.decoder import (
    PayloadError,
    Subscription,
    Values,
    decode_json,
    decode_text,
    thing_id,
)
from hub.ingest.native import device_time, normalize_tag

SOURCE = "tasmota"
DEFAULT_FULL_TOPIC = "%prefix%/%topic%/"
DEFAULT_PREFIXES = ("cmnd", "stat", "tele")
#: Learned devices, time offsets and pending snapshots are bounded: the oldest is forgotten first.
MAX_DEVICES = 4096
#: Sub-things remembered per device (they follow the device's LWT).
MAX_SUBTHINGS = 64

_IDENTITY_TOKENS = ("%topic%", "%hostname%", "%id%")
_TOKEN = re.compile(r"%(prefix|topic|hostname|id)%")
#: Leaves Tasmota publishes on tele/stat are upper-case words (SENSOR, STATE, LWT, RESULT, POWER2...).
_LEAF = re.compile(r"[A-Z][A-Z0-9_]*")
_POWER = re.compile(r"POWER([1-9][0-9]?)?", re.IGNORECASE)
_STATUS = re.compile(r"STATUS[0-9]{0,2}")
_SUFFIX = re.compile(r"-[0-9]{1,2}$")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_RDM_FRAME = re.compile(r"[0-9A-Fa-f]{12}")
_QUARTER_HOUR = 900.0
_LIVE_SLACK_S = 90.0
_MAX_OFFSET_S = 14 * 3600.0

#: Inner keys of sensor objects → canonical measurement (compared lower-case).
_MEASUREMENTS: dict[str, str] = {
    "temperature": "temperature",
    "humidity": "humidity",
    "pressure": "pressure",
    "illuminance": "illuminance",
    "carbondioxide": "co2",
    "eco2": "co2",
    "co2": "co2",
    "tvoc": "voc",
    "pm1": "pm1",
    "pm1.0": "pm1",
    "pm2.5": "pm25",
    "pm10": "pm10",
    "voltage": "voltage",
    "current": "current",
    "power": "power",
    "battery": "battery",
    "batterypercentage": "battery",
    "noise": "noise",
    "soundlevel": "noise",
    "linkquality": "linkquality",
    "occupancy": "occupancy",
}
#: Sensor objects whose keys are never read as the device's measurements (the chip's own readings).
_DIAGNOSTIC = frozenset({"ESP32", "ESP8266", "GLOBAL"})
#: Keys naming the sensor, not measuring anything, by preference. ``Device`` (a Zigbee short address
#: relayed in ZbReceived) counts only there; elsewhere it may mean anything.
_ID_PREFERENCE = ("id", "address", "mac", "ieeeaddr", "device")
_IDENT_KEYS = frozenset(_ID_PREFERENCE)
_TAG_READERS = frozenset({"PN532", "RC522", "MFRC522", "RDM6300"})


@dataclass
class _Device:
    """What a device's discovery config and sensor snapshot said."""

    mac: str
    ident: str
    bases: dict[str, str]  # topic up to the leaf → role (tele/stat/cmnd)
    topics: tuple[str, ...]  # filters to announce (not covered by the configured layout)
    name: str | None = None
    model: str | None = None
    sw_version: str | None = None
    power: str = "mains"
    attributes: dict[str, Any] = field(default_factory=dict)
    relays: tuple[int, ...] = ()
    relay_names: tuple[str | None, ...] = ()
    on_text: str | None = None
    off_text: str | None = None
    online_text: str | None = None
    offline_text: str | None = None
    snapshot: dict[str, Any] | None = None


class _Message:
    """One message's values, per thing, and its tags; applies the sub-thing rules."""

    def __init__(self, topic: str, ident: str) -> None:
        self.topic = topic
        self.ident = ident
        self.device = thing_id(SOURCE, ident)
        self.things: dict[str, Values] = {}
        self.names: dict[str, list[str]] = {}
        self.labels: dict[str, dict[str, Any]] = {}
        self.owner: dict[str, str] = {}  # measurement on the device → sensor key that gave it
        self.scans: list[Scan] = []
        self.problems: list[Event] = []

    def values(self, thing: str) -> Values:
        found = self.things.get(thing)
        if found is None:
            found = self.things[thing] = Values(SOURCE, self.topic)
        return found

    def sub(self, raw: str, label: dict[str, Any]) -> str:
        thing = thing_id(SOURCE, f"{self.ident}.{raw}")
        self.labels.setdefault(thing, label)
        return thing

    def add(self, thing: str, name: str, raw: Any, unit: str | None = None) -> None:
        names = self.names.setdefault(thing, [])
        if name not in names:
            names.append(name)
        self.values(thing).add(name, raw, unit)

    def skip(self, thing: str, path: str, raw: Any) -> None:
        if _scalar(raw):
            self.values(thing).skip(path, raw)

    def claim(self, name: str, key: str) -> bool:
        """True when the device may take ``name`` from sensor object ``key`` (first object wins)."""
        return self.owner.setdefault(name, key) == key

    def events(self, time: float | None) -> list[Event]:
        out: list[Event] = []
        for thing, values in self.things.items():
            if values.values or values.unmapped or values.problems:
                out.extend(values.events(thing, time))
        out.extend(self.scans)
        out.extend(self.problems)
        return out or [Ignored(SOURCE, self.topic)]


def _scalar(raw: Any) -> bool:
    """Worth listing as unmapped: numbers, booleans, numeric or on/off text (not names, dates, SSIDs)."""
    if isinstance(raw, bool | int | float):
        return True
    if not isinstance(raw, str) or raw.strip().lower() in NO_VALUE:
        return False
    try:
        float(raw)
    except ValueError:
        try:
            return parse_bool(raw) is not None
        except UnitError:
            return False
    return True


def _layout(full_topic: str) -> str:
    """Tasmota's own normalisation: ``%prefix%`` is put first when missing, and a trailing ``/`` added."""
    template = full_topic.strip()
    if "%prefix%" not in template:
        template = "%prefix%/" + template
    if not template.endswith("/"):
        template += "/"
    return template


def _pattern(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    seen: set[str] = set()
    pos = 0
    for match in _TOKEN.finditer(template):
        parts.append(re.escape(template[pos : match.start()]))
        token = match.group(1)
        if token in seen:
            parts.append(f"(?P={token})")
        elif token == "prefix":
            parts.append("(?P<prefix>tele|stat|cmnd)")
        else:
            parts.append(f"(?P<{token}>[^/+#]+)")
        seen.add(token)
        pos = match.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts))


def _filters(template: str, prefixes: Iterable[str]) -> list[str]:
    """MQTT filters for the leaves under ``template``: a level holding a device token becomes ``+``."""
    out: list[str] = []
    for prefix in prefixes:
        levels = []
        for level in template.rstrip("/").split("/"):
            level = level.replace("%prefix%", prefix)
            levels.append("+" if _TOKEN.search(level) else level)
        out.append("/".join([*levels, "+"]))
    return list(dict.fromkeys(out))


def _base(template: str, prefix: str, values: dict[str, str]) -> str:
    text = template.replace("%prefix%", prefix)
    for token, value in values.items():
        text = text.replace(token, value)
    return text


def _text(raw: Any) -> str | None:
    return raw.strip() or None if isinstance(raw, str) else None


def _json(payload: bytes) -> Any:
    try:
        return decode_json(payload)
    except RecursionError:
        raise PayloadError("not_json", "payload is JSON nested too deeply") from None


def _json_object(payload: bytes, what: str) -> dict[str, Any]:
    value = _json(payload)
    if not isinstance(value, dict):
        raise PayloadError(
            "not_object", f"{what}: payload is JSON {type(value).__name__}, expected an object"
        )
    return value


def _naive_utc(raw: Any) -> float | None:
    """Epoch seconds of an ISO time text without an offset, read as if it were UTC; None otherwise."""
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        return None
    return parse_timestamp(raw)


def _stem(key: str) -> str:
    return _SUFFIX.sub("", key)


class TasmotaDecoder:
    name = SOURCE

    def __init__(
        self, full_topic: str = DEFAULT_FULL_TOPIC, discovery_prefix: str = "tasmota/discovery"
    ) -> None:
        self.template = _layout(full_topic)
        if not any(token in self.template for token in _IDENTITY_TOKENS) or any(
            c in self.template for c in "+#"
        ):
            raise ValueError(
                f"ingest.ecosystems.tasmota.full_topic {full_topic!r} must name the device with "
                "%topic%, %hostname% or %id% and hold no + or #"
            )
        self._pattern = _pattern(self.template)
        self.discovery = discovery_prefix.strip("/")
        self._discovery_head = self.discovery + "/"
        self._devices: OrderedDict[str, _Device] = OrderedDict()  # by MAC
        self._by_ident: dict[str, _Device] = {}
        self._bases: dict[str, tuple[str, str]] = {}  # base → (ident, role), from devices' configs
        self._pending: OrderedDict[str, dict[str, Any]] = OrderedDict()  # MAC → snapshot before config
        self._offsets: OrderedDict[str, float] = OrderedDict()  # ident → local time minus UTC
        self._subthings: OrderedDict[str, dict[str, None]] = OrderedDict()  # ident → sub-things seen

    # -- the Decoder protocol --------------------------------------------------------------------------
    def subscriptions(self) -> list[Subscription]:
        subs = [Subscription(t) for t in _filters(self.template, ("tele", "stat"))]
        subs.append(Subscription(f"{self.discovery}/+/config", replay=True))
        subs.append(Subscription(f"{self.discovery}/+/sensors", replay=True))
        return subs

    def matches(self, topic: str) -> bool:
        if topic.startswith(self._discovery_head):
            return self._discovery_leaf(topic) is not None
        return self._locate(topic) is not None

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        if topic.startswith(self._discovery_head):
            found = self._discovery_leaf(topic)
            if found is None:
                return [Ignored(SOURCE, topic)]
            mac, leaf = found
            if leaf == "config":
                return self._config(topic, mac, payload)
            return self._sensors_snapshot(topic, mac, payload)
        located = self._locate(topic)
        if located is None:
            return [Ignored(SOURCE, topic)]
        ident, role, leaf = located
        if role == "cmnd" or not payload.strip(b"\x00 \t\r\n"):
            return [Ignored(SOURCE, topic)]  # a command, or a retained message being cleared
        device = self._by_ident.get(ident)
        if role == "tele":
            if leaf == "SENSOR":
                return self._message(topic, ident, _json_object(payload, "SENSOR"), received, "sensor")
            if leaf == "STATE":
                return self._message(topic, ident, _json_object(payload, "STATE"), received, "state")
            if leaf == "LWT":
                return self._lwt(topic, ident, device, decode_text(payload))
            if leaf == "RESULT":
                return self._message(topic, ident, _json_object(payload, "RESULT"), received, "reply")
            return [Ignored(SOURCE, topic)]  # INFO1-3, MARGINS, UPTIME, ...
        power = _POWER.fullmatch(leaf)
        if power is not None and not payload.lstrip().startswith(b"{"):
            return self._power_text(topic, ident, int(power.group(1) or 1), decode_text(payload))
        if leaf == "RESULT" or power is not None or _STATUS.fullmatch(leaf):
            return self._message(topic, ident, _json_object(payload, leaf), received, "reply")
        try:  # SetOption4: command replies on stat/<topic>/<COMMAND>
            obj = _json(payload)
        except PayloadError:
            return [Ignored(SOURCE, topic)]
        if not isinstance(obj, dict):
            return [Ignored(SOURCE, topic)]
        return self._message(topic, ident, obj, received, "reply")

    # -- topics ----------------------------------------------------------------------------------------
    def _discovery_leaf(self, topic: str) -> tuple[str, str] | None:
        parts = topic[len(self._discovery_head) :].split("/")
        if len(parts) == 2 and parts[0] and parts[1] in ("config", "sensors"):
            return parts[0], parts[1]
        return None

    def _locate(self, topic: str) -> tuple[str, str, str] | None:
        """(device ident, role, leaf) of a device topic, or None when it is not Tasmota's."""
        cut = topic.rfind("/")
        if cut < 0:
            return None
        base, leaf = topic[: cut + 1], topic[cut + 1 :]
        if not leaf:
            return None
        learned = self._bases.get(base)
        if learned is not None:
            ident, role = learned
        else:
            match = self._pattern.fullmatch(base)
            if match is None:
                return None
            groups = match.groupdict()
            ident = groups.get("topic") or groups.get("hostname") or groups.get("id") or ""
            role = groups["prefix"]
        if role != "cmnd" and not _LEAF.fullmatch(leaf):
            return None
        return ident, role, leaf

    # -- data messages ---------------------------------------------------------------------------------
    def _message(
        self, topic: str, ident: str, obj: dict[str, Any], received: float, kind: str
    ) -> list[Event]:
        """A SENSOR (``sensor``), STATE (``state``) or command reply (``reply``, which may hold either)."""
        msg = _Message(topic, ident)
        sections: list[tuple[str, dict[str, Any]]] = []
        if kind == "reply":
            for key, inner in (("StatusSNS", "sensor"), ("StatusSTS", "state")):
                if isinstance(obj.get(key), dict):
                    sections.append((inner, obj[key]))
        sections = sections or [(kind, obj)]
        time: float | None = None
        for part, section in sections:
            if part == "sensor":
                self._read_sensors(msg, section, tags=True)
            elif part == "state":
                self._read_state(msg, section)
            else:
                self._read_reply(msg, section)
            if time is None:
                time = self._time(msg, ident, section.get("Time", section.get("Epoch")), received)
        if msg.scans and time is not None:
            msg.scans = [Scan(s.reader, s.source, s.tag, time) for s in msg.scans]
        self._remember(ident, [t for t in msg.things if t != msg.device])
        return msg.events(time)

    def _read_sensors(self, msg: _Message, obj: dict[str, Any], *, tags: bool) -> None:
        units = {
            "temperature": _text(obj.get("TempUnit")),
            "pressure": _text(obj.get("PressureUnit")),
        }
        for key, raw in obj.items():
            if key in ("Time", "Epoch") or key.endswith("Unit"):
                continue
            if key == "SSerialReceived" or key in _TAG_READERS or key.upper() == "WIEGAND":
                if tags:
                    self._read_tag(msg, key, raw)
                continue
            if isinstance(raw, dict):
                self._read_object(msg, key, raw, units, depth=0)
            else:
                msg.skip(msg.device, key, raw)  # Switch1, top-level counters

    def _read_object(
        self, msg: _Message, key: str, obj: dict[str, Any], units: dict[str, str | None], depth: int
    ) -> None:
        own_id = _own_id(key, obj)
        stem = _stem(key)
        if own_id:
            home = msg.sub(own_id, {"sensor": stem, "id": own_id})
            path = stem
        else:
            home = msg.device
            path = key
        diagnostic = stem.upper() in _DIAGNOSTIC
        energy = stem.upper() == "ENERGY"
        for inner, raw in obj.items():
            lower = inner.lower()
            if lower in _IDENT_KEYS:
                continue
            if isinstance(raw, dict):
                if depth < 2:
                    self._read_object(msg, f"{key}.{inner}", raw, units, depth + 1)
                continue
            name = None if diagnostic else _MEASUREMENTS.get(lower)
            if name is None and not diagnostic:
                if energy and lower == "total":
                    name = "energy"
                elif own_id and lower == "rssi":
                    name = "rssi"  # a BLE sensor's signal at the Tasmota, in dBm
            channels = raw if isinstance(raw, list) else [raw]
            for n, value in enumerate(channels, start=1):
                channel = {"sensor": stem, "channel": n}
                thing = home if n == 1 else msg.sub(f"{own_id or key}.{n}", channel)
                if name is None:
                    msg.skip(thing, f"{path}.{inner}", value)
                    continue
                if thing == msg.device and not msg.claim(name, key):
                    thing = msg.sub(key, {"sensor": key})  # a later object measuring the same
                if name in msg.names.get(thing, ()):
                    msg.skip(thing, f"{path}.{inner}", value)  # SCD30's eCO2 beside CarbonDioxide
                    continue
                msg.add(thing, name, value, units.get(name))

    def _read_state(self, msg: _Message, obj: dict[str, Any]) -> None:
        for key, raw in obj.items():
            if key in ("Time", "Epoch"):
                continue
            power = _POWER.fullmatch(key)
            if power is not None:
                self._relay(msg, int(power.group(1) or 1), raw)
            elif isinstance(raw, dict):
                for inner, value in raw.items():
                    if key == "Wifi" and inner == "Signal":
                        msg.add(msg.device, "rssi", value, "dBm")
                    elif isinstance(value, bool | int | float):
                        msg.skip(msg.device, f"{key}.{inner}", value)  # Wifi.RSSI is 0-100 %, not dBm
            elif isinstance(raw, bool | int | float):
                msg.skip(msg.device, key, raw)  # UptimeSec, Vcc, Heap, LoadAvg, Dimmer

    def _read_reply(self, msg: _Message, obj: dict[str, Any]) -> None:
        """A command reply: relay states and tags; everything else it says is not a measurement."""
        for key, raw in obj.items():
            power = _POWER.fullmatch(key)
            if power is not None and not isinstance(raw, dict):
                self._relay(msg, int(power.group(1) or 1), raw)
            elif key == "SSerialReceived" or key in _TAG_READERS or key.upper() == "WIEGAND":
                self._read_tag(msg, key, raw)

    def _relay(self, msg: _Message, index: int, raw: Any) -> None:
        thing = msg.device if index == 1 else msg.sub(f"power{index}", {"relay": index})
        device = self._by_ident.get(msg.ident)
        try:
            value = parse_bool(
                raw,
                on=device.on_text if device else None,
                off=device.off_text if device else None,
            )
        except UnitError as exc:
            msg.problems.append(Rejected(SOURCE, msg.topic, exc.reason, f"POWER{index}: {exc.detail}"))
            return
        msg.add(thing, "state", value)

    def _power_text(self, topic: str, ident: str, index: int, text: str) -> list[Event]:
        msg = _Message(topic, ident)
        self._relay(msg, index, text.strip())
        return msg.events(None)

    def _lwt(self, topic: str, ident: str, device: _Device | None, text: str) -> list[Event]:
        word = text.strip()
        if device is not None and word and word in (device.online_text, device.offline_text):
            online = word == device.online_text
        elif word.lower() in ("online", "offline"):
            online = word.lower() == "online"
        else:
            raise PayloadError("bad_value", f"LWT: expected Online or Offline, got {word!r:.40}")
        things = [thing_id(SOURCE, ident), *self._subthings.get(ident, {})]
        return [Availability(thing, SOURCE, online) for thing in things]

    # -- tags ------------------------------------------------------------------------------------------
    def _read_tag(self, msg: _Message, key: str, raw: Any) -> None:
        try:
            if key == "SSerialReceived":
                tags = _rdm6300_frames(raw)
            elif key.upper() == "WIEGAND":
                tags = _wiegand(raw)
            else:
                uid = raw.get("UID") if isinstance(raw, dict) else None
                tags = [normalize_tag(uid)] if uid is not None else []
        except PayloadError as exc:
            msg.problems.append(exc.rejection(SOURCE, msg.topic))
            return
        msg.scans.extend(Scan(msg.device, SOURCE, tag) for tag in tags)

    # -- time ------------------------------------------------------------------------------------------
    def _time(self, msg: _Message, ident: str, raw: Any, received: float) -> float | None:
        if raw is None:
            return None
        naive = _naive_utc(raw)
        if naive is None:
            try:
                return device_time(raw, received)
            except PayloadError as exc:  # the values still count; the odd time is reported
                msg.problems.append(exc.rejection(SOURCE, msg.topic))
                return None
        ahead = naive - received
        offset = round(ahead / _QUARTER_HOUR) * _QUARTER_HOUR
        if abs(offset) <= _MAX_OFFSET_S and abs(ahead - offset) <= _LIVE_SLACK_S:
            self._bounded(self._offsets, ident, offset)
        ts = naive - self._offsets.get(ident, 0.0)
        return ts if sane_time(ts, received) else None

    # -- discovery -------------------------------------------------------------------------------------
    def _config(self, topic: str, mac: str, payload: bytes) -> list[Event]:
        if not payload.strip():
            return self._retire(topic, mac)
        obj = _json_object(payload, "discovery config")
        ident = obj.get("t")
        if not isinstance(ident, str) or not ident.strip() or any(c in ident for c in "+#"):
            raise PayloadError("bad_discovery", f"config: 't' (the device topic) is {ident!r:.40}")
        ident = ident.strip()
        template = _layout(_text(obj.get("ft")) or DEFAULT_FULL_TOPIC)
        prefixes = obj.get("tp")
        if not (
            isinstance(prefixes, list)
            and len(prefixes) >= 3
            and all(isinstance(p, str) and p and not any(c in p for c in "/+#") for p in prefixes[:3])
        ):
            prefixes = list(DEFAULT_PREFIXES)
        values = {"%topic%": ident}
        if _text(obj.get("hn")):
            values["%hostname%"] = str(obj["hn"]).strip()
        values["%id%"] = _text(obj.get("mac")) or mac
        bases = {_base(template, prefixes[i], values): role for i, role in enumerate(DEFAULT_PREFIXES)}
        wanted = [
            _base(template, prefixes[i], values) + "+"
            for i, role in enumerate(DEFAULT_PREFIXES)
            if role != "cmnd"
        ]
        topics = tuple(t for t in wanted if not self._covered(t[:-1], ident) and not _TOKEN.search(t))

        rl = obj.get("rl")
        relays = tuple(i + 1 for i, kind in enumerate(rl) if kind) if isinstance(rl, list) else ()
        fn = obj.get("fn")
        relay_names = tuple(_text(n) for n in fn) if isinstance(fn, list) else ()
        texts = obj.get("state")
        if not isinstance(texts, list):
            texts = []
        attributes: dict[str, Any] = {
            k: v
            for k, v in (
                ("mac", _text(obj.get("mac")) or mac),
                ("ip", _text(obj.get("ip"))),
                ("hostname", _text(obj.get("hn"))),
                ("topic", ident),
            )
            if v is not None
        }
        if relays:
            attributes["relays"] = len(relays)
        device = _Device(
            mac=mac,
            ident=ident,
            bases=bases,
            topics=topics,
            name=_text(obj.get("dn")) or (relay_names[0] if relay_names else None),
            model=_text(obj.get("md")),
            sw_version=_text(obj.get("sw")),
            power="battery" if obj.get("bat") or obj.get("dslp") else "mains",
            attributes=attributes,
            relays=relays,
            relay_names=relay_names,
            on_text=_text(texts[1]) if len(texts) > 1 else None,
            off_text=_text(texts[0]) if texts else None,
            online_text=_text(obj.get("onln")),
            offline_text=_text(obj.get("ofln")),
        )
        self._forget(mac)
        self._devices[mac] = device
        self._by_ident[ident] = device
        for base, role in bases.items():
            self._bases[base] = (ident, role)
        while len(self._devices) > MAX_DEVICES:
            self._forget(next(iter(self._devices)))
        pending = self._pending.pop(mac, None)
        if pending is not None:
            device.snapshot = pending
        return self._announce(topic, device)

    def _covered(self, base: str, ident: str) -> bool:
        """True when the configured layout already reads ``base`` as this device's tele/stat topics."""
        match = self._pattern.fullmatch(base)
        if match is None:
            return False
        groups = match.groupdict()
        return (groups.get("topic") or groups.get("hostname") or groups.get("id")) == ident

    def _sensors_snapshot(self, topic: str, mac: str, payload: bytes) -> list[Event]:
        if not payload.strip():
            return [Ignored(SOURCE, topic)]
        obj = _json_object(payload, "discovery sensors")
        snapshot = obj.get("sn")
        if not isinstance(snapshot, dict):
            raise PayloadError("bad_discovery", "sensors: 'sn' (the sensor snapshot) is not an object")
        device = self._devices.get(mac)
        if device is None:  # its config has not come yet: keep the snapshot for it
            self._bounded(self._pending, mac, snapshot)
            return [Ignored(SOURCE, topic)]
        device.snapshot = snapshot
        return self._announce(topic, device)

    def _announce(self, topic: str, device: _Device) -> list[Event]:
        """The device and its sub-things as they are known now: each announcement is the whole picture."""
        msg = _Message(topic, device.ident)
        if device.snapshot is not None:
            self._read_sensors(msg, device.snapshot, tags=False)
        measured: dict[str, list[str]] = {msg.device: []}
        if 1 in device.relays:
            measured[msg.device].append("state")
        for index in device.relays:
            if index > 1:
                thing = msg.sub(f"power{index}", {"relay": index})
                measured[thing] = ["state"]
        for thing, names in msg.names.items():
            measured.setdefault(thing, [])
            measured[thing].extend(n for n in names if n not in measured[thing])
        events: list[Event] = [
            Discovery(
                thing=msg.device,
                source=SOURCE,
                name=device.name,
                model=device.model,
                sw_version=device.sw_version,
                measurements=tuple(measured[msg.device]),
                power=device.power,
                topics=device.topics,
                attributes=dict(device.attributes),
            )
        ]
        subs = [t for t in measured if t != msg.device]
        for thing in subs:
            label = msg.labels.get(thing, {})
            events.append(
                Discovery(
                    thing=thing,
                    source=SOURCE,
                    name=self._sub_name(device, label),
                    model=label.get("sensor"),
                    measurements=tuple(measured[thing]),
                    power=device.power,
                    attributes={"device": msg.device, **label},
                )
            )
        self._remember(device.ident, subs)
        return events

    @staticmethod
    def _sub_name(device: _Device, label: dict[str, Any]) -> str | None:
        relay = label.get("relay")
        if isinstance(relay, int) and relay <= len(device.relay_names) and device.relay_names[relay - 1]:
            return device.relay_names[relay - 1]
        what = " ".join(
            str(label[k]) if k != "relay" else f"relay {label[k]}"
            for k in ("sensor", "id", "channel", "relay")
            if k in label
        )
        base = device.name or device.ident
        return f"{base} {what}".strip()

    def _retire(self, topic: str, mac: str) -> list[Event]:
        device = self._devices.get(mac)
        if device is None:
            self._pending.pop(mac, None)
            return [Ignored(SOURCE, topic)]
        things = [thing_id(SOURCE, device.ident), *self._subthings.get(device.ident, {})]
        self._forget(mac)
        self._subthings.pop(device.ident, None)
        return [Discovery(thing=thing, source=SOURCE, retired=True) for thing in things]

    # -- bounded state ---------------------------------------------------------------------------------
    def _forget(self, mac: str) -> None:
        old = self._devices.pop(mac, None)
        if old is None or self._by_ident.get(old.ident) is not old:
            return  # unknown, or its topic now belongs to a newer config
        del self._by_ident[old.ident]
        for base in old.bases:
            if self._bases.get(base, ("", ""))[0] == old.ident:
                del self._bases[base]

    def _remember(self, ident: str, things: Iterable[str]) -> None:
        known = self._subthings.get(ident)
        for thing in things:
            if known is None:
                known = {}
                self._bounded(self._subthings, ident, known)
            if thing not in known and len(known) < MAX_SUBTHINGS:
                known[thing] = None

    @staticmethod
    def _bounded(store: OrderedDict[str, Any], key: str, value: Any) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > MAX_DEVICES:
            store.popitem(last=False)


# -- tag payloads --------------------------------------------------------------------------------------
def _own_id(key: str, obj: dict[str, Any]) -> str:
    """The stable id a sensor object carries (``Id``, ``Address``, ``mac``...), or ""."""
    by_name = {k.lower(): v for k, v in obj.items() if k.lower() in _IDENT_KEYS}
    for name in _ID_PREFERENCE:
        raw = by_name.get(name)
        if name == "device" and not key.startswith("ZbReceived."):
            continue
        if isinstance(raw, str | int) and not isinstance(raw, bool) and str(raw).strip():
            text = str(raw).strip()
            return text.replace(":", "").upper() if name in ("mac", "ieeeaddr") else text
    return ""


def _split_frames(text: str) -> tuple[list[str], bool]:
    """12-hex-digit chunks between 0x02/0x03, and whether the text was framed at all."""
    chunks = [c.strip(" \r\n\t") for c in re.split("[\x02\x03]", text)]
    frames = [c for c in chunks if _RDM_FRAME.fullmatch(c)]
    framed = ("\x02" in text or "\x03" in text) and any(chunks)
    return frames, framed


def _rdm6300_frames(raw: Any) -> list[str]:
    """Tags in a serial-bridge text: RDM6300 frames, checksum-checked; other serial data yields none."""
    if not isinstance(raw, str):
        return []
    text = raw.strip(" \r\n\t")
    frames, framed = _split_frames(text)
    if not frames and len(text) >= 28 and len(text) % 2 == 0 and _HEX.fullmatch(text):
        # the bridge's binary mode prints the bytes as hex; only a frame inside counts
        frames, framed = _split_frames(bytes.fromhex(text).decode("latin-1"))[0], False
    if not frames:
        if framed:
            raise PayloadError("bad_tag", f"SSerialReceived: {raw!r:.40} is not an RDM6300 frame")
        return []  # another device on the serial bridge
    tags: list[str] = []
    for frame in frames:
        data = bytes.fromhex(frame[:10])
        computed = 0
        for byte in data:
            computed ^= byte
        if computed != int(frame[10:], 16):
            raise PayloadError(
                "bad_checksum",
                f"RDM6300 frame {frame.upper()}: checksum {frame[10:].upper()}, data XOR is {computed:02X}",
            )
        tag = frame[:10].upper()
        if tag not in tags:
            tags.append(tag)
    return tags


def _wiegand(raw: Any) -> list[str]:
    """``W<bits>:<decimal>``; keypad presses (4 or 8 bits) are not tags."""
    if not isinstance(raw, dict):
        raise PayloadError("bad_tag", "Wiegand: expected an object with UID and Size")
    uid, size = raw.get("UID"), raw.get("Size")
    try:
        bits = int(size) if isinstance(size, int | str) and not isinstance(size, bool) else None
    except ValueError:
        bits = None
    if bits is None:
        raise PayloadError("bad_tag", f"Wiegand: Size {size!r:.20} is not a bit count")
    if bits < 24:
        return []
    number: int | None = None
    if isinstance(uid, int) and not isinstance(uid, bool):
        number = uid
    elif isinstance(uid, str):
        text = uid.strip()
        try:
            number = int(text, 16) if text[:2].lower() == "0x" else int(text, 10)
        except ValueError:
            number = None
    if number is None or number < 0 or number >= 1 << min(bits, 64):
        raise PayloadError("bad_tag", f"Wiegand: UID {uid!r:.30} is not a {bits}-bit card number")
    return [f"W{bits}:{number}"]
