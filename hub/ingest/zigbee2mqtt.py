"""Zigbee2MQTT: device JSON under the base topic, bridge/devices exposes, availability, bridge/state.

Zigbee2MQTT publishes each device's state as a JSON object on ``<base>/<friendly_name>`` (friendly
names may hold ``/`` and spaces), optionally each property as a plain value on
``<base>/<friendly_name>/<property>`` (``output: attribute``), availability on ``.../availability``,
and its retained device inventory on ``<base>/bridge/devices``. Property names already are the hub's
canonical names (DESIGN §5 follows them); units live only in the inventory's ``exposes``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.domain.events import Availability, Discovery, Event, Ignored, Rejected
from hub.domain.units import UnitError, parse_number, to_canonical
from hub.domain.vocabulary import MEASUREMENTS
from hub.ingest.decoder import (
    PayloadError,
    Subscription,
    Values,
    decode_json,
    decode_json_object,
    decode_text,
    thing_id,
)
from hub.ingest.native import device_time

DEFAULT_BASE_TOPIC = "zigbee2mqtt"

#: Bounds on what one bridge's inventory may teach the decoder (a runaway payload cannot bloat it).
MAX_DEVICES = 4096
MAX_EXPOSES = 256

#: Zigbee2MQTT properties that measure a canonical quantity under another name.
ALIASES: dict[str, str] = {
    "illuminance_lux": "illuminance",  # Zigbee2MQTT 1.x: lux beside a raw `illuminance`
    "presence": "occupancy",  # mmWave presence sensors
    "local_temperature": "temperature",  # thermostats' and radiator valves' room temperature
}

#: Device message fields that describe the message, not the world; dropped silently.
METADATA = frozenset({"last_seen", "elapsed", "update_available", "update", "device"})

#: Properties whose attribute-output value is a JSON object (never a device of that name).
COMPOSITE_PROPERTIES = frozenset({"update", "color", "device"})

#: Levels after a friendly name that are commands to the device, not its state.
COMMANDS = frozenset({"set", "get"})

#: `state` values that mean on/off; other states (covers OPEN/CLOSE, locks LOCK) stay unmapped.
_ON_OFF = frozenset({"on", "off", "true", "false"})


@dataclass(slots=True)
class _Device:
    """What a bridge's inventory says about one device."""

    ieee: str | None = None
    power: str | None = None
    units: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Bridge:
    """One Zigbee2MQTT instance (one coordinator) and the devices its inventory listed."""

    base: str
    devices: dict[str, _Device] = field(default_factory=dict)

    def resolve(self, levels: list[str]) -> tuple[str, list[str]] | None:
        """The longest known friendly name the topic levels start with, and the levels after it."""
        for end in range(len(levels), 0, -1):
            name = "/".join(levels[:end])
            if name in self.devices:
                return name, levels[end:]
        return None


def bridge_thing(base: str) -> str:
    """Thing id of the Zigbee2MQTT bridge under ``base`` (``zigbee2mqtt.bridge`` for the default)."""
    return thing_id("zigbee2mqtt", "bridge" if base == DEFAULT_BASE_TOPIC else f"{base}/bridge")


def power_of(source: Any) -> str | None:
    """``battery`` or ``mains`` from the inventory's ``power_source`` (None when it does not say)."""
    if not isinstance(source, str) or not source.strip() or source.strip().lower() == "unknown":
        return None
    return "battery" if source.strip().lower() == "battery" else "mains"


def voltage_unit(raw: Any, battery: bool) -> str | None:
    """The unit of a voltage whose device has not said (no exposes known).

    Battery devices report millivolts (3005), mains devices volts (241): a value of 1000 or more is
    always millivolts (no Zigbee device sees a kilovolt), and on a battery device so is one of 100
    or more; a small value (3.0) is volts whatever the device.
    """
    try:
        number = parse_number(raw)
    except UnitError:
        return None  # Values.add reports the bad value
    if number is None:
        return None
    if abs(number) >= 1000 or (battery and abs(number) >= 100):
        return "mV"
    return "V"


def read_exposes(exposes: Any, units: dict[str, str], measurements: list[str], depth: int = 0) -> None:
    """Units and canonical measurements from a device definition's ``exposes`` (features included)."""
    if not isinstance(exposes, list) or depth > 4:
        return
    for expose in exposes[:MAX_EXPOSES]:
        if not isinstance(expose, dict):
            continue
        kind = expose.get("type")
        features = expose.get("features")
        # a composite's features are keys inside one JSON object property (color.x), not properties
        if isinstance(features, list) and kind not in ("composite", "list"):
            read_exposes(features, units, measurements, depth + 1)
        prop = expose.get("property")
        if not isinstance(prop, str) or kind not in ("numeric", "binary"):
            continue
        unit = expose.get("unit")
        if isinstance(unit, str) and unit.strip() and len(units) < MAX_EXPOSES:
            units[prop] = unit
        name = ALIASES.get(prop, prop)
        if name in MEASUREMENTS and name not in measurements and (name != "state" or kind == "binary"):
            measurements.append(name)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _scalar(text: str) -> Any:
    """An attribute-output value: JSON when it parses (``0``, ``true``, ``null``), else the text (``OFF``)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _online(payload: bytes) -> bool | None:
    """Availability as JSON ``{"state": "online"}`` or legacy text ``online``; None for an empty payload."""
    text = decode_text(payload).strip()
    if not text:
        return None
    state: Any = decode_json_object(payload).get("state") if text.startswith("{") else text
    if state in ("online", "offline"):
        return bool(state == "online")
    raise PayloadError("bad_value", f"availability: expected online or offline, got {state!r:.40}")


class Zigbee2MqttDecoder:
    """Reads one or more Zigbee2MQTT instances, each under its own base topic."""

    name = "zigbee2mqtt"

    def __init__(self, base_topics: Sequence[str] = (DEFAULT_BASE_TOPIC,)) -> None:
        bases = [b.strip().rstrip("/") for b in base_topics if b.strip().rstrip("/")]
        # the longest base first, so `zigbee2mqtt/cc1352` wins over `zigbee2mqtt` for its own topics
        self._bridges = {base: _Bridge(base) for base in sorted(dict.fromkeys(bases), key=len, reverse=True)}

    def subscriptions(self) -> list[Subscription]:
        subs: list[Subscription] = []
        for base in self._bridges:
            subs.append(Subscription(f"{base}/#"))
            # the inventory and the bridge's info are retained: ask again on every connection
            subs.append(Subscription(f"{base}/bridge/devices", replay=True))
            subs.append(Subscription(f"{base}/bridge/info", replay=True))
        return subs

    def matches(self, topic: str) -> bool:
        return self._split(topic) is not None

    def _split(self, topic: str) -> tuple[_Bridge, str] | None:
        for base, bridge in self._bridges.items():
            if topic.startswith(base + "/"):
                return bridge, topic[len(base) + 1 :]
        return None

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        split = self._split(topic)
        if split is None or not split[1].strip("/"):
            return [Ignored(self.name, topic)]
        bridge, rest = split
        levels = rest.split("/")
        if levels[0] == "bridge":
            return self._bridge_topic(bridge, "/".join(levels[1:]), topic, payload, received)
        return self._device_topic(bridge, levels, topic, payload, received)

    # -- devices ------------------------------------------------------------------------------------
    def _device_topic(
        self, bridge: _Bridge, levels: list[str], topic: str, payload: bytes, received: float
    ) -> list[Event]:
        known = bridge.resolve(levels)
        if known is not None:
            name, suffix = known
        elif any(level in COMMANDS for level in levels[1:]):
            return [Ignored(self.name, topic)]
        elif len(levels) > 1 and (
            levels[-1] == "availability"
            or levels[-1] in COMPOSITE_PROPERTIES
            or not decode_text(payload).lstrip().startswith(("{", "["))
        ):
            # a device message is always a JSON object: a plain value is `output: attribute`
            name, suffix = "/".join(levels[:-1]), levels[-1:]
        else:
            name, suffix = "/".join(levels), []
        device = bridge.devices.get(name)
        thing = thing_id(self.name, name)
        if not suffix:
            return self._state(thing, device, topic, payload, received)
        if suffix[0] in COMMANDS or len(suffix) > 1:
            return [Ignored(self.name, topic)]
        if suffix[0] == "availability":
            online = _online(payload)
            return [Ignored(self.name, topic) if online is None else Availability(thing, self.name, online)]
        return self._attribute(thing, device, suffix[0], topic, payload)

    def _state(
        self, thing: str, device: _Device | None, topic: str, payload: bytes, received: float
    ) -> list[Event]:
        if not decode_text(payload).strip():
            return [Ignored(self.name, topic)]  # a retained message cleared when the device left
        obj = decode_json_object(payload)
        values = Values(self.name, topic)
        time = None
        try:
            time = device_time(obj.get("last_seen"), received)
        except PayloadError as exc:
            values.problems.append(exc.rejection(self.name, topic))
        battery = "battery" in obj or (device is not None and device.power == "battery")
        lux = "illuminance_lux" in obj or (device is not None and "illuminance_lux" in device.units)
        # canonical keys before their aliases, so `temperature` wins over `local_temperature`
        for key, raw in sorted(obj.items(), key=lambda item: item[0] in ALIASES):
            if key == "illuminance" and lux:
                continue  # the same quantity twice; the lux one is sure to be lux
            self._field(values, key, raw, device, battery)
        return values.events(thing, time)

    def _attribute(
        self, thing: str, device: _Device | None, prop: str, topic: str, payload: bytes
    ) -> list[Event]:
        text = decode_text(payload).strip()
        raw = _scalar(text) if text else None
        if raw is None or prop in METADATA or isinstance(raw, dict | list):
            return [Ignored(self.name, topic)]
        values = Values(self.name, topic)
        self._field(values, prop, raw, device, device is not None and device.power == "battery")
        return values.events(thing)

    def _field(self, values: Values, key: str, raw: Any, device: _Device | None, battery: bool) -> None:
        if raw is None or isinstance(raw, dict | list) or key in METADATA:
            return  # no value yet, or nested objects (update, device, color) that measure nothing
        name = ALIASES.get(key, key)
        if name not in MEASUREMENTS:
            values.skip(key, raw)
            return
        unit = device.units.get(key) if device is not None else None
        if name == "voltage" and unit is None:
            unit = voltage_unit(raw, battery)
        if name == "state" and not (isinstance(raw, bool) or str(raw).strip().lower() in _ON_OFF):
            values.skip(key, raw)  # a cover's OPEN/STOP or a lock's LOCK is no on/off
            return
        if key in ALIASES:
            try:
                value = to_canonical(name, raw, unit)
            except UnitError:
                values.skip(key, raw)  # an alias that does not fit is kept as the device said it
                return
            if value is not None:
                values.add(name, value)
            return
        values.add(name, raw, unit)

    # -- the bridge ---------------------------------------------------------------------------------
    def _bridge_topic(
        self, bridge: _Bridge, sub: str, topic: str, payload: bytes, received: float
    ) -> list[Event]:
        if sub == "state":
            online = _online(payload)
            if online is None:
                return [Ignored(self.name, topic)]
            return [Availability(bridge_thing(bridge.base), self.name, online)]
        if sub == "devices":
            return self._inventory(bridge, topic, payload)
        if sub == "info":
            return self._info(bridge, topic, payload)
        if sub == "event":
            return self._event(bridge, topic, payload)
        return [Ignored(self.name, topic)]  # logging, groups, definitions, request/response, ...

    def _inventory(self, bridge: _Bridge, topic: str, payload: bytes) -> list[Event]:
        if not decode_text(payload).strip():
            return [Ignored(self.name, topic)]
        data = decode_json(payload)
        if not isinstance(data, list):
            raise PayloadError("not_array", f"bridge/devices is JSON {type(data).__name__}, expected a list")
        events: list[Event] = []
        devices: dict[str, _Device] = {}
        for index, entry in enumerate(data):
            if len(devices) >= MAX_DEVICES:
                events.append(
                    Rejected(self.name, topic, "too_many_devices", f"only the first {MAX_DEVICES} are read")
                )
                break
            if isinstance(entry, dict) and entry.get("type") == "Coordinator":
                continue
            name = entry.get("friendly_name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name.strip() or not isinstance(entry, dict):
                events.append(Rejected(self.name, topic, "bad_device", f"entry {index} has no friendly_name"))
                continue
            discovery, device = self._device_discovery(name, entry)
            devices[name] = device
            events.append(discovery)
        for gone in bridge.devices.keys() - devices.keys():
            events.append(Discovery(thing_id(self.name, gone), self.name, name=gone, retired=True))
        bridge.devices = devices
        return events or [Ignored(self.name, topic)]

    def _device_discovery(self, name: str, entry: dict[str, Any]) -> tuple[Discovery, _Device]:
        definition = entry.get("definition")
        definition = definition if isinstance(definition, dict) else {}
        units: dict[str, str] = {}
        measurements: list[str] = []
        read_exposes(definition.get("exposes"), units, measurements)
        device = _Device(ieee=_text(entry.get("ieee_address")), power=power_of(entry.get("power_source")))
        device.units = units
        attributes = {
            key: value
            for key, value in (
                ("ieee_address", device.ieee),
                ("type", _text(entry.get("type"))),
                ("model_id", _text(entry.get("model_id"))),
                ("description", _text(definition.get("description"))),
            )
            if value is not None
        }
        discovery = Discovery(
            thing=thing_id(self.name, name),
            source=self.name,
            name=name,
            model=_text(definition.get("model")) or _text(entry.get("model_id")),
            manufacturer=_text(definition.get("vendor")) or _text(entry.get("manufacturer")),
            sw_version=_text(entry.get("software_build_id")),
            measurements=tuple(measurements),
            power=device.power,
            attributes=attributes,
        )
        return discovery, device

    def _info(self, bridge: _Bridge, topic: str, payload: bytes) -> list[Event]:
        if not decode_text(payload).strip():
            return [Ignored(self.name, topic)]
        info = decode_json_object(payload)
        coordinator = info.get("coordinator")
        coordinator = coordinator if isinstance(coordinator, dict) else {}
        # only the version and the coordinator: `config` may hold the network key and broker login
        attributes = {"base_topic": bridge.base}
        if _text(coordinator.get("ieee_address")):
            attributes["ieee_address"] = coordinator["ieee_address"].strip()
        return [
            Discovery(
                thing=bridge_thing(bridge.base),
                source=self.name,
                name=f"Zigbee2MQTT ({bridge.base})",
                model=_text(coordinator.get("type")),
                sw_version=_text(info.get("version")),
                power="mains",
                attributes=attributes,
            )
        ]

    def _event(self, bridge: _Bridge, topic: str, payload: bytes) -> list[Event]:
        event = decode_json_object(payload)
        data = event.get("data")
        if event.get("type") != "device_leave" or not isinstance(data, dict):
            # joined / announce / interview: the inventory that follows carries the details
            return [Ignored(self.name, topic)]
        ieee = _text(data.get("ieee_address"))
        name = _text(data.get("friendly_name"))
        if name is None and ieee is not None:
            name = next((n for n, d in bridge.devices.items() if d.ieee == ieee), ieee)
        if name is None:
            raise PayloadError("bad_value", "device_leave names no friendly_name or ieee_address")
        bridge.devices.pop(name, None)
        return [Discovery(thing_id(self.name, name), self.name, name=name, retired=True)]
