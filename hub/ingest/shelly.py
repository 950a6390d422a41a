"""Shelly Gen2/Gen3 JSON-RPC over MQTT, and Gen1's one-value-per-topic ``shellies/`` tree.

Gen2/Gen3 (topic prefix user-configurable, default ``<model>-<mac>``; the prefix is the device's id):

* ``<prefix>/events/rpc``: ``NotifyStatus`` carries only the fields that changed per component; they are
  merged over the last known status of that component (per device, bounded) and the reading is taken
  from the merged status. ``NotifyFullStatus`` replaces what is known of the device. ``NotifyEvent``
  and other methods are ignored. ``params.ts`` (epoch seconds) is the reading's time when sane.
* ``<prefix>/status/<component>[:<id>]``: one component's full status, read the same way.
* ``<prefix>/online``: ``true`` / ``false`` → availability; any other payload is not Shelly's → ignored.

Components: ``switch``/``pm1``/``cover``/``light``: output → state, apower → power, voltage, current,
aenergy.total (Wh) → energy; the device's own temperature is kept unmapped as ``switch:0.temperature``
(it is not the room's). ``em`` total_act_power → power, total_current → current; ``em1`` act_power,
voltage, current; ``emdata`` total_act and ``em1data`` total_act_energy (Wh) → energy. ``temperature``
tC, ``humidity`` rh, ``illuminance`` lux, ``devicepower`` battery.percent → battery (battery.V → voltage
unless the device meters mains voltage), ``smoke``/``flood`` alarm. ``wifi`` rssi → rssi; the rest of
``sys``, ``wifi``, ``cloud``, ``mqtt``, ``ble`` and kin is dropped. Other fields, and components the hub
does not model, are kept unmapped as ``<component>.<path>``.

Channels: component id 0 and single-instance components belong to the device, ``shelly.<prefix>``; id N>0
of a channelled component (switch, cover, pm1, light, em, em1, temperature, humidity, ...) is a thing of
its own, ``shelly.<prefix>.<component><N>`` (``emdata:N``/``em1data:N`` go with ``em``/``em1`` N).

A Discovery (manufacturer Shelly, model from ``src`` or the prefix) comes with a device's first reading,
and again when its power source becomes known: ``devicepower`` seen → ``battery`` (``mains`` when it says
external power is present), so the hub applies the battery availability timeout.

A Gen2 prefix may itself sit under ``shellies/`` (``shellies/<name>/events/rpc``); the thing is then
``shelly.<name>``, the same thing Gen1's ``shellies/<name>/online`` names.

Gen1 (``shellies/<id>/...``, one plain value per topic; thing ``shelly.<id>``, channel N>0 of relay,
emeter, roller, light → ``shelly.<id>.<kind><N>``): ``relay/<n>`` on/off → state, ``relay/<n>/power`` W,
``relay/<n>/energy`` in watt-minutes → kWh, ``emeter/<n>/power|voltage|current``, ``emeter/<n>/total``
(Wh) → energy, ``sensor/temperature|humidity|battery|lux|flood|smoke|state``, ``ext_temperature/<n>``,
``online`` → availability, ``announce`` → Discovery. Commands and ``info`` are ignored.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected
from hub.domain.units import UnitError, parse_number
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

#: Devices whose component status is remembered (least recently heard forgotten first).
MAX_DEVICES: Final = 2048
#: Components remembered per device, and fields per component, so a runaway publisher stays bounded.
MAX_COMPONENTS: Final = 64
MAX_FIELDS: Final = 256

_CHANNEL_NUMBER = re.compile(r"[0-9]{1,6}")
_COMPONENT = re.compile(r"([a-z][a-z0-9_]{0,31})(?::([0-9]{1,6}))?")
_MODEL_MAC = re.compile(r"(?P<model>[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*?)-(?:[0-9A-Fa-f]{12}|[0-9A-Fa-f]{6})")

#: Single-instance components that carry no measurement of the device's surroundings.
_INFRA: Final = frozenset(
    {"sys", "wifi", "eth", "cloud", "mqtt", "ble", "ws", "script", "ui", "plugs_ui", "ht_ui", "knx",
     "matter", "modbus", "zigbee", "bthome", "blugw", "schedule", "webhook", "kvs", "ota", "sensoraddon",
     "wd", "debug", "service"}
)  # fmt: skip
#: Components that switch or dim a load and meter it.
_LOAD: Final = frozenset({"switch", "pm1", "cover", "light", "rgb", "rgbw", "cct", "rgbcct"})
#: Components whose id N>0 is a thing of its own; the value names the channel (emdata goes with em).
_CHANNELS: Final[dict[str, str]] = {
    **{kind: kind for kind in _LOAD},
    **{kind: kind for kind in ("em", "em1", "temperature", "humidity", "illuminance", "voltmeter")},
    **{kind: kind for kind in ("smoke", "flood", "devicepower")},
    "emdata": "em",
    "em1data": "em1",
}
#: Components that meter mains voltage (then a battery's voltage is not the device's ``voltage``).
_METERS: Final = _LOAD | {"em", "em1"}

# component kind → {field path: (canonical name, unit)}
_MAPPED: Final[dict[str, dict[str, tuple[str, str | None]]]] = {
    **{
        kind: {
            "output": ("state", None),
            "apower": ("power", "W"),
            "voltage": ("voltage", "V"),
            "current": ("current", "A"),
            "aenergy.total": ("energy", "Wh"),
        }
        for kind in _LOAD
    },
    "em": {"total_act_power": ("power", "W"), "total_current": ("current", "A")},
    "em1": {"act_power": ("power", "W"), "voltage": ("voltage", "V"), "current": ("current", "A")},
    "emdata": {"total_act": ("energy", "Wh")},
    "em1data": {"total_act_energy": ("energy", "Wh")},
    "temperature": {"tC": ("temperature", "°C")},
    "humidity": {"rh": ("humidity", "%")},
    "illuminance": {"lux": ("illuminance", "lx")},
    "devicepower": {"battery.percent": ("battery", "%")},
    "voltmeter": {"voltage": ("voltage", "V")},
    "smoke": {"alarm": ("smoke", None)},
    "flood": {"alarm": ("water_leak", None)},
}
#: Unmapped fields kept under a plainer name: the load's own temperature is not the room's.
_RENAMED: Final = {"temperature.tC": "temperature"}
#: Field names that are bookkeeping, not readings (ids, timers, minute buckets, Fahrenheit twins).
_DROPPED: Final = frozenset(
    {"id", "source", "errors", "by_minute", "minute_ts", "timer_started_at", "timer_duration", "tF",
     "last_updated_ts", "flags", "calibration", "user_calibrated_phase", "move_started_at",
     "move_timeout"}
)  # fmt: skip

#: Gen1 models that run on batteries (``announce`` names them).
_GEN1_BATTERY_MODELS: Final = frozenset(
    {"SHHT-1", "SHWT-1", "SHDW-1", "SHDW-2", "SHBTN-1", "SHBTN-2", "SHMOS-01", "SHMOS-02", "SHSM-01",
     "SHSM-02", "SHTRV-01"}
)  # fmt: skip
_GEN1_CHANNELS: Final = frozenset({"relay", "emeter", "roller", "light", "color", "white"})
_GEN1_SENSORS: Final[dict[str, tuple[str, str | None]]] = {
    "temperature": ("temperature", "°C"),
    "humidity": ("humidity", "%"),
    "battery": ("battery", "%"),
    "lux": ("illuminance", "lx"),
    "flood": ("water_leak", None),
    "smoke": ("smoke", None),
    "motion": ("occupancy", None),
}
_GEN1_METER: Final[dict[str, tuple[str, str | None]]] = {
    "power": ("power", "W"),
    "voltage": ("voltage", "V"),
    "current": ("current", "A"),
    "total": ("energy", "Wh"),
}


@dataclass(slots=True)
class _Device:
    """What is known of one Gen2 device: the merged status per component, and what was announced."""

    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: str | None = None
    power: str | None = None
    announced: tuple[str | None, str | None] | None = None


def _component(key: str) -> tuple[str, int | None] | None:
    match = _COMPONENT.fullmatch(key)
    if match is None:
        return None
    return match.group(1), None if match.group(2) is None else int(match.group(2))


def _merge(old: dict[str, Any], delta: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """``delta`` laid over ``old``, nested objects field by field (a NotifyStatus carries changes only)."""
    merged = dict(old)
    for key, value in delta.items():
        before = merged.get(key)
        if isinstance(value, dict) and isinstance(before, dict) and depth < 4:
            merged[key] = _merge(before, value, depth + 1)
        else:
            merged[key] = value
    return merged if len(merged) <= MAX_FIELDS else dict(delta)


def _flatten(obj: dict[str, Any], prefix: str = "", depth: int = 0) -> Iterable[tuple[str, str, Any]]:
    """(path, leaf name, scalar) of every scalar inside ``obj``; lists are not readings and are left out."""
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            if depth < 3:
                yield from _flatten(value, path + ".", depth + 1)
        elif not isinstance(value, list):
            yield path, str(key), value


def _model(ident: str | None) -> str | None:
    """``shellyplusht`` from ``shellyplusht-08b61fcb75b8`` (the default prefix and ``src``)."""
    if not ident or len(ident) > 128:
        return None
    match = _MODEL_MAC.fullmatch(ident)
    return match.group("model") if match else None


def _scalar(text: str) -> float | str:
    try:
        number = parse_number(text)
    except UnitError:
        return text[:64]
    return text[:64] if number is None else number


def _is_gen2_component(name: str, *, singletons: bool) -> bool:
    parsed = _component(name)
    if parsed is None:
        return False
    kind, ident = parsed
    return ident is not None or (singletons and kind in _INFRA)  # measuring components always say :<id>


class ShellyDecoder:
    name = "shelly"

    def __init__(self) -> None:
        self._devices: OrderedDict[str, _Device] = OrderedDict()
        #: Gen1 devices whose battery power was announced
        self._gen1_battery: OrderedDict[str, None] = OrderedDict()

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription("+/events/rpc"),
            Subscription("+/status/+"),
            Subscription("+/online"),
            Subscription("shellies/#"),
        ]

    def matches(self, topic: str) -> bool:
        parts = topic.split("/")
        if parts[0] == "shellies":
            return len(parts) >= 2 and all(parts[1:])
        if not all(parts) or parts[0].startswith("$"):
            return False
        if len(parts) < 3:
            return len(parts) == 2 and parts[1] == "online"
        if parts[-2:] == ["events", "rpc"]:
            return True
        # a one-level prefix may carry single-instance components (status/sys); deeper ones must say :<id>
        return parts[-2] == "status" and _is_gen2_component(parts[-1], singletons=len(parts) == 3)

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        parts = topic.split("/")
        gen1 = parts[0] == "shellies"
        start = 1 if gen1 else 0
        if len(parts) - start >= 3 and parts[-2:] == ["events", "rpc"]:
            return self._rpc("/".join(parts[start:-2]), topic, payload, received)
        if (
            len(parts) - start >= 3
            and parts[-2] == "status"
            and _is_gen2_component(parts[-1], singletons=len(parts) - start == 3)
        ):
            return self._status("/".join(parts[start:-2]), parts[-1], topic, payload)
        if len(parts) - start == 2 and parts[-1] == "online":
            return self._online(parts[start], topic, payload)
        if gen1:
            return self._gen1(parts[1:], topic, payload)
        return [Ignored(self.name, topic)]

    # -- Gen2 -----------------------------------------------------------------------------------------
    def _device(self, key: str) -> _Device:
        device = self._devices.get(key)
        if device is None:
            device = self._devices[key] = _Device()
            if len(self._devices) > MAX_DEVICES:
                self._devices.popitem(last=False)
        else:
            self._devices.move_to_end(key)
        return device

    def _online(self, key: str, topic: str, payload: bytes) -> list[Event]:
        text = payload.decode("utf-8", "replace").strip()
        if text not in ("true", "false"):  # another ecosystem's <x>/online
            return [Ignored(self.name, topic)]
        return [Availability(thing_id(self.name, key), self.name, text == "true")]

    def _rpc(self, key: str, topic: str, payload: bytes, received: float) -> list[Event]:
        message = decode_json_object(payload)
        method = message.get("method")
        if method not in ("NotifyStatus", "NotifyFullStatus"):
            return [Ignored(self.name, topic)]  # NotifyEvent (button pushes, scripts) and RPC traffic
        params = message.get("params")
        if not isinstance(params, dict):
            raise PayloadError("not_object", f"{method}: params is not an object")
        time = device_time(params.get("ts"), received)
        device = self._device(key)
        src = message.get("src")
        device.model = _model(src if isinstance(src, str) else None) or device.model or _model(key)
        if method == "NotifyFullStatus":
            device.components = {}
        changed: dict[str, dict[str, Any]] = {}
        for name, status in params.items():
            if name == "ts" or not isinstance(status, dict):
                continue
            merged = _merge(device.components.get(name, {}), status)
            if name in device.components or len(device.components) < MAX_COMPONENTS:
                device.components[name] = merged
            changed[name] = merged
        return self._events(key, device, changed, topic, time)

    def _status(self, key: str, name: str, topic: str, payload: bytes) -> list[Event]:
        status = decode_json_object(payload)
        device = self._device(key)
        device.model = device.model or _model(key)
        if name in device.components or len(device.components) < MAX_COMPONENTS:
            device.components[name] = status
        return self._events(key, device, {name: status}, topic, None)

    def _events(
        self, key: str, device: _Device, changed: dict[str, dict[str, Any]], topic: str, time: float | None
    ) -> list[Event]:
        base = thing_id(self.name, key)
        meters = any((_component(n) or ("", None))[0] in _METERS for n in device.components)
        per_thing: dict[str, Values] = {}
        for name, status in changed.items():
            parsed = _component(name)
            kind, ident = parsed if parsed is not None else (name, None)
            thing = base
            if ident and kind in _CHANNELS:
                thing = thing_id(self.name, f"{key}.{_CHANNELS[kind]}{ident}")
            values = per_thing.setdefault(thing, Values(self.name, topic))
            self._read_component(values, name, kind, status, battery_is_voltage=not meters)
            if kind == "devicepower":
                external = status.get("external")
                present = isinstance(external, dict) and external.get("present") is True
                device.power = "mains" if present else "battery"
        out: list[Event] = []
        for thing, values in per_thing.items():
            out.extend(e for e in values.events(thing, time) if not isinstance(e, Ignored))
        heard = any(isinstance(e, Reading) for e in out) or device.power is not None
        if heard and device.announced != (device.model, device.power):
            device.announced = (device.model, device.power)
            out.insert(0, self._discovery(base, device.model, device.power, gen=2))
        return out or [Ignored(self.name, topic)]

    @staticmethod
    def _read_component(
        values: Values, name: str, kind: str, status: dict[str, Any], *, battery_is_voltage: bool
    ) -> None:
        if kind in _INFRA:
            if "rssi" in status:
                values.add("rssi", status["rssi"], "dBm")
            return
        mapped = _MAPPED.get(kind, {})
        for path, leaf, raw in _flatten(status):
            target = mapped.get(path)
            if target is not None:
                values.add(target[0], raw, target[1])
            elif kind == "temperature" and path == "tF" and status.get("tC") is None:
                values.add("temperature", raw, "°F")
            elif kind == "devicepower" and path == "battery.V" and battery_is_voltage:
                values.add("voltage", raw, "V")
            elif path in _RENAMED:
                if raw is not None:
                    values.skip(f"{name}.{_RENAMED[path]}", raw)
            elif leaf not in _DROPPED and raw is not None:
                values.skip(f"{name}.{path}", raw)

    def _discovery(self, thing: str, model: str | None, power: str | None, *, gen: int) -> Discovery:
        return Discovery(
            thing, self.name, model=model, manufacturer="Shelly", power=power, attributes={"gen": gen}
        )

    # -- Gen1 -----------------------------------------------------------------------------------------
    def _gen1(self, rest: list[str], topic: str, payload: bytes) -> list[Event]:
        if not rest:
            return [Ignored(self.name, topic)]
        if rest[-1] == "announce" and len(rest) <= 2:
            return [self._announce(rest[0] if len(rest) == 2 else None, topic, payload)]
        if len(rest) < 2 or "command" in rest or rest[-1] == "set":
            return [Ignored(self.name, topic)]  # shellies/command, .../relay/0/command: commands to devices
        ident, kind, tail = rest[0], rest[1], rest[2:]
        if kind == "info" or (tail and tail[-1] == "status" and kind in _GEN1_CHANNELS):
            return [Ignored(self.name, topic)]  # JSON snapshots repeating the per-value topics
        if kind == "status" and not tail:
            return self._gen1_status(ident, topic, payload)
        if kind.endswith("_f") or kind == "temperature_status":
            return [Ignored(self.name, topic)]  # Fahrenheit twins of values read in Celsius
        text = decode_text(payload).strip()
        if text.startswith(("{", "[")) or not text:
            return [Ignored(self.name, topic)]  # input_event, act_reasons: events, not readings
        thing = thing_id(self.name, ident)
        values = Values(self.name, topic)
        path = "/".join(rest[1:])
        events: list[Event] = []
        if tail and _CHANNEL_NUMBER.fullmatch(tail[0]) and len(tail) <= 2:
            channel = int(tail[0])
            if channel and (kind in _GEN1_CHANNELS or kind.startswith("ext_")):
                thing = thing_id(self.name, f"{ident}.{kind}{channel}")
            field_ = tail[1] if len(tail) == 2 else None
            self._gen1_channel(values, kind, field_, text, path)
        elif kind == "relay" and len(tail) == 1 and tail[0] in ("power", "energy"):
            self._gen1_channel(values, kind, tail[0], text, path)
        elif kind == "sensor" and len(tail) == 1:
            self._gen1_sensor(values, tail[0], text, path)
            if tail[0] == "battery" and ident not in self._gen1_battery:
                self._gen1_battery[ident] = None
                if len(self._gen1_battery) > MAX_DEVICES:
                    self._gen1_battery.popitem(last=False)
                model = _model(ident)
                events.append(self._discovery(thing, model, "battery", gen=1))
        elif kind == "voltage" and not tail:
            values.add("voltage", text, "V")
        else:
            values.skip(path, _scalar(text))  # the device's own temperature, overtemperature, ...
        events.extend(values.events(thing))
        return events

    @staticmethod
    def _gen1_channel(values: Values, kind: str, field_: str | None, text: str, path: str) -> None:
        if field_ is None:
            if kind in ("relay", "light", "color", "white"):
                values.add("state", "off" if text == "overpower" else text)
            elif kind == "ext_temperature":
                values.add("temperature", text, "°C")
            elif kind == "ext_humidity":
                values.add("humidity", text, "%")
            else:
                values.skip(path, _scalar(text))  # roller/0 open|close|stop, input/0, ext_switch/0
        elif field_ == "energy" and kind != "emeter":
            try:
                watt_minutes = parse_number(text)
            except UnitError as exc:
                values.problems.append(Rejected(values.source, values.topic, exc.reason, exc.detail))
                return
            if watt_minutes is not None:
                values.add("energy", watt_minutes / 60.0, "Wh")
        elif field_ == "power" or (kind == "emeter" and field_ in _GEN1_METER):
            name, unit = _GEN1_METER[field_]
            values.add(name, text, unit)
        else:
            values.skip(path, _scalar(text))  # pf, reactive_power, emeter energy in Wmin, roller pos

    @staticmethod
    def _gen1_sensor(values: Values, name: str, text: str, path: str) -> None:
        if name == "state":  # door/window: contact is true when closed
            if text in ("open", "close", "closed"):
                values.add("contact", text != "open")
            else:
                values.skip(path, text[:64])
        elif name in _GEN1_SENSORS:
            canonical_name, unit = _GEN1_SENSORS[name]
            values.add(canonical_name, text, unit)
        else:
            values.skip(path, _scalar(text))  # tilt, vibration, illumination, charger, error, gas

    def _gen1_status(self, ident: str, topic: str, payload: bytes) -> list[Event]:
        """``shellies/<id>/status`` of the Motion sensor: motion, lux, bat, tmp."""
        status = decode_json_object(payload)
        values = Values(self.name, topic)
        for key, raw in status.items():
            if key == "motion":
                values.add("occupancy", raw)
            elif key == "lux":
                values.add("illuminance", raw, "lx")
            elif key == "bat":
                values.add("battery", raw, "%")
            elif key == "tmp" and isinstance(raw, dict):
                unit = "°F" if raw.get("units") == "F" else "°C"
                values.add("temperature", raw.get("value"), unit)
            elif key not in ("timestamp", "active") and not isinstance(raw, dict | list) and raw is not None:
                values.skip(key, raw)
        return values.events(thing_id(self.name, ident))

    def _announce(self, ident: str | None, topic: str, payload: bytes) -> Discovery:
        body = decode_json(payload)
        if not isinstance(body, dict):
            raise PayloadError("not_object", "announce: expected a JSON object")
        raw_id = body.get("id", ident)
        if not isinstance(raw_id, str) or not raw_id:
            raise PayloadError("bad_value", "announce: no device id")
        model = body.get("model")
        model = model if isinstance(model, str) else _model(raw_id)
        version = body.get("fw_ver") or body.get("ver")
        battery = model in _GEN1_BATTERY_MODELS
        gen = body.get("gen") if isinstance(body.get("gen"), int) else 1
        return Discovery(
            thing_id(self.name, raw_id),
            self.name,
            model=model,
            manufacturer="Shelly",
            sw_version=version if isinstance(version, str) else None,
            power="battery" if battery else None,
            attributes={"gen": gen},
        )
