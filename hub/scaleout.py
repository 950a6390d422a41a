"""Scale-out on one broker: several ingest workers share the messages, one state process owns the state.

``hub run --role ingest --worker NAME`` (any number of them) subscribes through the MQTT shared
subscription ``$share/<scale_out.share_group>/<filter>``, so the broker gives each device message to one
worker. A worker decodes it, records its points (deterministic timestamps, its own spool and timestamp
journal) and forwards the decoded events, QoS 1, to ``<base>/internal/events/<worker>``. It acknowledges
the device's message only once the points are in the sink or its spool *and* the broker has taken the
forwarded events: a worker killed in between gets the message again (same session), stamps it with the
journaled time, and forwards the same entry again, which the state process drops as a duplicate.

``hub run --role state`` is the one owner of every piece of per-thing state: live state and its store
writes, alert rules with their hysteresis, availability and the silence sweep, the lending desk, the
dashboard. A thing's messages may reach different workers, so their events arrive at the state process
from several connections, slightly out of order: it holds them for ``scale_out.reorder_window_s`` and
applies them in the order of their reading time (the device's time when it gave one, else the worker's
arrival time). An event older than one already applied for its thing (a worker that was down for longer
than the window) still updates the latest values (newer wins) and the scan log, but is not fed to the alert
rules or to availability, so it cannot make an alert flap or bring an old state back; it is counted
(``hub_scaleout_late_events``).

Inventories (the filters decoders replay on every connection: Home Assistant discovery, Zigbee2MQTT's
device list, Homie attributes, ...) are not shared: every worker reads them all, to learn what its
decoders need and which announced topics to follow, but forwards nothing from them; the state process
subscribes to them itself and runs them through the single-process pipeline. docs/scale-out.md has the
reasons and the limits.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from prometheus_client import Counter

from hub.config import ConfigError, HubConfig
from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected, Scan
from hub.mqtt.client import AckToken, Inbound
from hub.storage.sink import Point
from hub.telemetry import Telemetry

if TYPE_CHECKING:  # the roles plug into the composition root, which imports this module
    from hub.app import Hub

log = logging.getLogger(__name__)

ROLES = ("all", "ingest", "state")
#: forwarded entries per internal message at most
FORWARD_BATCH = 500
#: internal messages published and not yet acknowledged by the broker, at most
FORWARD_IN_FLIGHT = 200
#: message keys the state process remembers to drop a forwarded entry it already applied
SEEN_MAX = 200_000
#: a worker name: part of its client id, its spool directory and its internal topic
_WORKER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
#: wakes the state process's ingest worker to apply events whose reorder window has passed
TICK = object()


def internal_prefix(base_topic: str) -> str:
    return f"{base_topic}/internal/events/"


def config_for_role(
    config: HubConfig, role: str, worker: str | None, filename: str = "<config>"
) -> HubConfig:
    """The config one process of a scaled-out hub runs with; ``all`` is the single hub, unchanged.

    An ingest worker gets its own client id (``<client_id>-<worker>``), its own spool and timestamp
    journal (``<storage.path>/ingest-<worker>``), no dashboard and no Home Assistant announcement (the
    state process has those). Both roles need a store and a time-series server every process reaches.
    """
    if role not in ROLES:
        raise ConfigError(f"--role {role!r}: use one of {', '.join(ROLES)}")
    if role == "all":
        return config
    url = config.storage.url or ""
    if not url.startswith("postgresql"):
        raise ConfigError(
            f"{filename}, key storage.url: --role {role} needs the PostgreSQL store every hub process "
            "shares (storage.url: postgresql+psycopg://USER@HOST/DATABASE); SQLite is for one process"
        )
    if config.timeseries.kind == "embedded":
        raise ConfigError(
            f"{filename}, key timeseries.kind: --role {role} needs a time-series server every hub process "
            "writes to (influxdb-v1 or influxdb-v2), not the embedded file"
        )
    if role == "state":
        if worker is not None:
            raise ConfigError("--worker names an ingest worker; the state process has no worker name")
        return config
    if not worker or not set(worker) <= _WORKER_CHARS or len(worker) > 32:
        raise ConfigError(
            f"--role ingest needs --worker NAME (1-32 of a-z, 0-9, '-', '_'), got {worker!r}; "
            "give each worker its own"
        )
    client_id = f"{config.mqtt.client_id}-{worker}"
    if len(client_id) > 64:
        raise ConfigError(
            f"{filename}, key mqtt.client_id: {client_id!r} (client id and worker name) is longer than 64"
        )
    return config.model_copy(
        update={
            "mqtt": config.mqtt.model_copy(update={"client_id": client_id}),
            "storage": config.storage.model_copy(
                update={"path": Path(config.storage.path) / f"ingest-{worker}"}
            ),
            "web": config.web.model_copy(update={"enabled": False}),
            "homeassistant_discovery": config.homeassistant_discovery.model_copy(update={"enabled": False}),
        }
    )


# -- forwarded events on the wire ---------------------------------------------------------------------


def encode_event(event: Event) -> dict[str, Any]:
    """One decoded event as JSON-ready data (the internal topic's format, version 1)."""
    if isinstance(event, Reading):
        out: dict[str, Any] = {"t": "reading", "thing": event.thing, "source": event.source}
        out["values"] = event.values
        if event.time is not None:
            out["time"] = event.time
        if event.unmapped:
            out["unmapped"] = event.unmapped
        return out
    if isinstance(event, Availability):
        return {"t": "availability", "thing": event.thing, "source": event.source, "online": event.online}
    if isinstance(event, Scan):
        return {
            "t": "scan",
            "reader": event.reader,
            "source": event.source,
            "tag": event.tag,
            "time": event.time,
        }
    if isinstance(event, Discovery):
        return {
            "t": "discovery",
            "thing": event.thing,
            "source": event.source,
            "name": event.name,
            "model": event.model,
            "manufacturer": event.manufacturer,
            "sw_version": event.sw_version,
            "measurements": list(event.measurements),
            "power": event.power,
            "retired": event.retired,
            "topics": list(event.topics),
            "attributes": event.attributes,
        }
    raise TypeError(f"{type(event).__name__} is not forwarded")


def _text(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} must be text")
    return value


def _time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("time must be a number")
    return float(value)


def decode_event(data: dict[str, Any]) -> Reading | Availability | Scan | Discovery:
    """The event ``encode_event`` wrote; raises KeyError, TypeError or ValueError on anything else."""
    kind = data["t"]
    if kind == "reading":
        values = data["values"]
        if not isinstance(values, dict):
            raise TypeError("values must be an object")
        clean: dict[str, float | bool] = {}
        for name, value in values.items():
            if isinstance(value, bool):
                clean[str(name)] = value
            elif isinstance(value, int | float):
                clean[str(name)] = float(value)
            else:
                raise TypeError(f"value of {name} must be a number or a boolean")
        unmapped = data.get("unmapped") or {}
        if not isinstance(unmapped, dict):
            raise TypeError("unmapped must be an object")
        return Reading(_text(data, "thing"), _text(data, "source"), clean, _time(data.get("time")), unmapped)
    if kind == "availability":
        return Availability(_text(data, "thing"), _text(data, "source"), bool(data["online"]))
    if kind == "scan":
        return Scan(_text(data, "reader"), _text(data, "source"), _text(data, "tag"), _time(data.get("time")))
    if kind == "discovery":
        attributes = data.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise TypeError("attributes must be an object")
        return Discovery(
            _text(data, "thing"),
            _text(data, "source"),
            name=data.get("name"),
            model=data.get("model"),
            manufacturer=data.get("manufacturer"),
            sw_version=data.get("sw_version"),
            measurements=tuple(str(m) for m in data.get("measurements") or ()),
            power=data.get("power"),
            retired=bool(data.get("retired")),
            topics=tuple(str(t) for t in data.get("topics") or ()),
            attributes=attributes,
        )
    raise ValueError(f"unknown event type {kind!r}")


def _counter(telemetry: Telemetry, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
    existing = telemetry.registry._names_to_collectors.get(name + "_total")  # one hub, one registry
    if isinstance(existing, Counter):
        return existing
    return Counter(name, doc, labelnames=list(labels), registry=telemetry.registry)


# -- the ingest worker ----------------------------------------------------------------------------------


class Forwarder:
    """Publishes forwarded entries in batches (QoS 1) and acknowledges each device message once the
    broker has taken the batch that holds its entry. Runs on its own thread; ``submit`` comes from the
    recorder, after the message's points are stored, and blocks while the queue is full (backpressure:
    the broker then holds the rest)."""

    def __init__(
        self,
        publish: Callable[[bytes], paho.MQTTMessageInfo | None],
        ack: Callable[[AckToken], None],
        worker: str,
        telemetry: Telemetry,
        *,
        max_queue: int = 20_000,
    ) -> None:
        self.publish = publish
        self.ack = ack
        self.worker = worker
        self._queue: queue.Queue[tuple[dict[str, Any] | None, AckToken | None] | None] = queue.Queue(
            max_queue
        )
        self._pending: deque[tuple[paho.MQTTMessageInfo, list[AckToken]]] = deque()
        self._thread: threading.Thread | None = None
        self.forwarded = _counter(
            telemetry, "hub_forwarded_entries", "Decoded messages forwarded to the state process"
        )
        self.unpublished = _counter(
            telemetry,
            "hub_forward_failures",
            "Batches the MQTT client could not take (their messages are delivered again by the broker)",
        )

    def submit(self, entry: dict[str, Any] | None, token: AckToken | None) -> None:
        self._queue.put((entry, token))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish what was submitted, wait for the broker to take it, acknowledge, then stop."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while True:
            items: list[tuple[dict[str, Any] | None, AckToken | None]] = []
            try:
                item = self._queue.get(timeout=0.02 if self._pending else 0.5)
            except queue.Empty:
                pass
            else:
                if item is None:
                    stopping = True
                else:
                    items.append(item)
            if items:
                while len(items) < FORWARD_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stopping = True
                        break
                    items.append(more)
            if items:
                self._send(items)
            self._settle(wait=stopping or len(self._pending) >= FORWARD_IN_FLIGHT)
            if stopping:
                deadline = time.monotonic() + 3.0
                while self._pending and time.monotonic() < deadline:
                    self._settle(wait=True)
                return

    def _send(self, items: list[tuple[dict[str, Any] | None, AckToken | None]]) -> None:
        entries = [entry for entry, _ in items if entry is not None]
        tokens = [token for _, token in items if token is not None]
        if not entries:
            for token in tokens:
                self.ack(token)
            return
        body = json.dumps({"v": 1, "worker": self.worker, "entries": entries}, separators=(",", ":"))
        info = self.publish(body.encode())
        if info is None or info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            # not connected (or the client's queue is full): the tokens are void, so the broker delivers
            # the messages again after the reconnect, and anything the client still sends is a duplicate
            self.unpublished.inc()
            return
        self.forwarded.inc(len(entries))
        self._pending.append((info, tokens))

    def _settle(self, *, wait: bool) -> None:
        while self._pending:
            info, tokens = self._pending[0]
            if wait:
                info.wait_for_publish(0.5)
            if not info.is_published():
                return
            self._pending.popleft()
            for token in tokens:
                self.ack(token)


class IngestRole:
    """``hub run --role ingest``: decode, record, forward; no state of its own but the decoders'."""

    def __init__(self, hub: Hub, worker: str) -> None:
        self.hub = hub
        self.worker = worker
        cfg = hub.config
        self.share_group = cfg.scale_out.share_group
        self.topic = internal_prefix(cfg.mqtt.base_topic) + worker
        self.status_topic = f"{cfg.mqtt.base_topic}/hub/workers/{worker}/status"
        #: the state process's retained status: once it exists, so does the session its events queue in
        self.state_status = f"{cfg.mqtt.base_topic}/hub/status"
        self._waiting = True
        self._waiting_timer: threading.Timer | None = None
        self._replayed = [sub.topic for sub in hub.router.subscriptions() if sub.replay]
        self._replay_cache: dict[str, bool] = {}
        self.forwarder = Forwarder(self._publish, self._ack, worker, hub.telemetry)
        self.retained_unrecorded = _counter(
            hub.telemetry,
            "hub_retained_readings_unrecorded",
            "Retained readings without a device time that a worker's shared subscription replayed: "
            "forwarded, not written as a point",
        )
        hub.handle = self.handle  # type: ignore[method-assign]

    def subscriptions(self, subs: list[tuple[str, int, bool]]) -> list[tuple[str, int, bool]]:
        """The decoders' filters, shared unless replayed (``share_group``), and the state process's
        status. The connection holds the shared ones back until that status exists: before the state
        process's first connection the broker keeps no session for it, and events forwarded then would
        be lost."""
        return [*subs, (self.state_status, 1, True)]

    def start(self) -> None:
        self.forwarder.start()
        self._waiting_timer = threading.Timer(10.0, self._still_waiting)
        self._waiting_timer.daemon = True
        self._waiting_timer.start()

    def _still_waiting(self) -> None:
        if self._waiting:
            log.warning(
                "waiting for the state process: no retained status on %s yet; start hub run --role "
                "state (once) before the workers take messages",
                self.state_status,
            )

    def _open(self) -> None:
        """The state process exists: take the devices' messages from now on."""
        self._waiting = False
        if self.hub.mqtt is not None:
            self.hub.mqtt.release_shared()
            log.info("state process found; taking messages worker=%s", self.worker)

    def drain(self) -> None:
        pass

    def stop(self) -> None:
        if self._waiting_timer is not None:
            self._waiting_timer.cancel()
        self.forwarder.stop()

    def _publish(self, body: bytes) -> paho.MQTTMessageInfo | None:
        mqtt = self.hub.mqtt
        return mqtt.publish(self.topic, body, 1, False) if mqtt is not None else None

    def _ack(self, token: AckToken) -> None:
        mqtt = self.hub.mqtt
        if mqtt is not None:
            mqtt.ack(token)

    def replayed(self, topic: str) -> bool:
        """The topic is an inventory every worker reads (not shared)."""
        known = self._replay_cache.get(topic)
        if known is None:
            known = any(paho.topic_matches_sub(sub, topic) for sub in self._replayed)
            if len(self._replay_cache) >= 20_000:
                self._replay_cache = {}
            self._replay_cache[topic] = known
        return known

    def handle(self, message: Inbound) -> None:
        hub = self.hub
        if message.topic == self.state_status:
            if self._waiting:
                self._open()
            if message.token is not None:
                self._ack(message.token)
            return
        t = hub.telemetry
        t.messages.inc()
        events = hub.router.route(message.topic, message.payload, message.received)
        if self.replayed(message.topic):
            # read by every worker for its decoders and the topics to follow; the state process stores it
            for event in events:
                if isinstance(event, Discovery) and event.topics:
                    hub._follow(event)
                elif isinstance(event, Rejected):
                    hub._rejected(event)
            if message.token is not None:
                self._ack(message.token)
            return
        points: list[Point] = []
        held: list[Point] = []
        forward: list[dict[str, Any]] = []
        arrival: tuple[int, Any, bool] | None = None

        def stamp() -> tuple[int, Any, bool]:
            nonlocal arrival
            if arrival is None:
                arrival = hub.stamper.arrival(
                    message.topic, message.payload, message.received, qos=message.qos, dup=message.dup
                )
            return arrival

        for event in events:
            if isinstance(event, Reading):
                if event.unmapped:
                    t.unmapped.labels(event.source).inc(len(event.unmapped))
                if event.values:
                    if event.time is not None:
                        points.append(Point(event.thing, event.source, event.values, int(event.time * 1e9)))
                    elif message.retain:  # a replayed retained value was not measured now
                        self.retained_unrecorded.inc()
                    else:
                        at, _, is_held = stamp()
                        (held if is_held else points).append(
                            Point(event.thing, event.source, event.values, at)
                        )
                    t.readings.labels(event.source).inc()
                forward.append(encode_event(event))
            elif isinstance(event, Availability | Scan):
                forward.append(encode_event(event))
                if isinstance(event, Scan):
                    t.scans.inc()
            elif isinstance(event, Discovery):
                if event.retired:
                    t.retirements.labels(event.source).inc()
                else:
                    t.discoveries.labels(event.source).inc()
                if event.topics:
                    hub._follow(event)
                forward.append(encode_event(event))
            elif isinstance(event, Rejected):
                hub._rejected(event)
            elif isinstance(event, Ignored):
                pass
        entry: dict[str, Any] | None = None
        journal = []
        if forward:
            at, journaled, is_held = stamp()
            if journaled is not None:
                journal.append(journaled)
            entry = {
                # the message's key and its arrival time identify the entry: a redelivery (DUP) gets the
                # journaled time of its first arrival back. Only a redelivery: an identical message that
                # merely repeats one from the last minutes (``online`` again) is a new event, whatever
                # time the journal gives its point
                "key": journaled[0].hex() if journaled is not None else None,
                "stamp": at if message.dup and not is_held else int(message.received * 1e9),
                "retained": message.retain,
                "events": forward,
            }
        token = message.token
        if entry is None and token is None and not points and not held:
            return
        ack = None
        if entry is not None or token is not None:
            forwarder = self.forwarder

            def ack() -> None:
                forwarder.submit(entry, token)

        hub.recorder.submit(points, ack, journal=journal, held=held)


# -- the state process ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Parent:
    """An internal message: acknowledged once each of its entries was applied (or dropped)."""

    token: AckToken | None
    remaining: int


@dataclass(order=True, slots=True)
class _Held:
    due_ns: int
    order: float
    seq: int
    stamp_ns: int = field(compare=False)
    events: list[Reading | Availability | Scan | Discovery] = field(compare=False)
    parent: _Parent = field(compare=False)


class StateRole:
    """``hub run --role state``: applies the workers' events, in reading-time order, to the one copy of
    the per-thing state; inventories it reads itself, through the single-process pipeline."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        cfg = hub.config
        self.share_group = None
        self.status_topic = f"{cfg.mqtt.base_topic}/hub/status"
        self.prefix = internal_prefix(cfg.mqtt.base_topic)
        self.window_ns = int(cfg.scale_out.reorder_window_s * 1e9)
        self._single = hub.handle  # the single-process pipeline, for the inventories
        self._heap: list[_Held] = []
        self._seq = 0
        self._seen: OrderedDict[tuple[str, int] | str, None] = OrderedDict()
        #: per thing, the newest reading time and availability time applied (reading time order)
        self._newest: dict[str, float] = {}
        self._newest_availability: dict[str, float] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        t = hub.telemetry
        self.entries = _counter(t, "hub_state_entries", "Forwarded entries the state process applied")
        self.duplicates = _counter(
            t, "hub_state_duplicates", "Forwarded entries dropped as already applied (redeliveries)"
        )
        self.late = _counter(
            t,
            "hub_scaleout_late_events",
            "Events older than one already applied for their thing (kept as values, not fed to the rules)",
            ("kind",),
        )
        self.bad = _counter(t, "hub_state_bad_messages", "Internal messages the state process could not read")
        t.gauge(
            "hub_state_reorder_depth",
            "Forwarded entries waiting in the reorder window",
            lambda: len(self._heap),
        )
        hub.handle = self.handle  # type: ignore[method-assign]
        hub._follow = lambda _event: None  # type: ignore[method-assign,assignment]  # workers follow topics

    def subscriptions(self, subs: list[tuple[str, int, bool]]) -> list[tuple[str, int, bool]]:
        """The inventories (the workers share the rest) and the workers' internal topics."""
        qos = self.hub.config.mqtt.qos
        return [*(sub for sub in subs if sub[2]), (self.prefix + "+", max(qos, 1), False)]

    def start(self) -> None:
        self._ticker = threading.Thread(target=self._tick, name="reorder", daemon=True)
        self._ticker.start()

    def drain(self) -> None:
        """Stopping: apply whatever waits in the window (called once the ingest worker has stopped)."""
        self._stop.set()
        self._release(None)

    def stop(self) -> None:
        self._stop.set()

    def _tick(self) -> None:
        every = max(0.02, min(0.2, self.window_ns / 5e9))
        while not self._stop.wait(every):
            if self._heap:
                # a full queue: the worker is busy and releases on its next message anyway
                with contextlib.suppress(queue.Full):
                    self.hub.queue.put_nowait(TICK)

    def handle(self, message: Any) -> None:
        if message is TICK:
            self._release(time.time_ns())
            return
        if message.topic.startswith(self.prefix):
            self._take(message)
            self._release(time.time_ns())
            return
        self._single(message)

    def _take(self, message: Inbound) -> None:
        try:
            body = json.loads(message.payload)
            entries = body["entries"]
            if not isinstance(entries, list):
                raise TypeError("entries must be a list")
            parsed = [self._entry(entry) for entry in entries]
        except (ValueError, KeyError, TypeError) as exc:
            self.bad.inc()
            log.error("internal message not understood topic=%s error=%s", message.topic, exc)
            if message.token is not None and self.hub.mqtt is not None:
                self.hub.mqtt.ack(message.token)
            return
        parent = _Parent(message.token, 1)  # one extra, released below, so it cannot complete early
        for key, stamp_ns, retained, events in parsed:
            seen = key if retained else (key, stamp_ns) if key else None
            if seen is not None and seen in self._seen:
                self.duplicates.inc()
                continue
            if seen is not None:
                self._seen[seen] = None
                if len(self._seen) > SEEN_MAX:
                    self._seen.popitem(last=False)
            parent.remaining += 1
            order = next((e.time for e in events if isinstance(e, Reading) and e.time is not None), None)
            self._seq += 1
            heapq.heappush(
                self._heap,
                _Held(
                    stamp_ns + self.window_ns,
                    order if order is not None else stamp_ns / 1e9,
                    self._seq,
                    stamp_ns,
                    events,
                    parent,
                ),
            )
        self._done(parent)

    @staticmethod
    def _entry(data: Any) -> tuple[str | None, int, bool, list[Reading | Availability | Scan | Discovery]]:
        if not isinstance(data, dict):
            raise TypeError("an entry must be an object")
        key = data.get("key")
        stamp_ns = data["stamp"]
        if (key is not None and not isinstance(key, str)) or not isinstance(stamp_ns, int):
            raise TypeError("key must be text and stamp an integer")
        events = data["events"]
        if not isinstance(events, list):
            raise TypeError("events must be a list")
        return key, stamp_ns, bool(data.get("retained")), [decode_event(e) for e in events]

    def _release(self, now_ns: int | None) -> None:
        """Apply the entries whose window has passed, in reading-time order (all of them when stopping)."""
        heap = self._heap
        due: list[_Held] = []
        while heap and (now_ns is None or heap[0].due_ns <= now_ns):
            due.append(heapq.heappop(heap))
        if not due:
            return
        due.sort(key=lambda held: (held.order, held.seq))
        for held in due:
            try:
                self._apply(held)
            except Exception:  # one bad entry must not stop the state
                log.exception("applying a forwarded entry failed")
            self._done(held.parent)

    def _done(self, parent: _Parent) -> None:
        parent.remaining -= 1
        if parent.remaining == 0 and parent.token is not None:
            # through the recorder, so the scans it carried are committed before the acknowledgement
            self.hub.recorder.submit([], self.hub._acker(parent.token))

    def _apply(self, held: _Held) -> None:
        """Each event as ``Hub.handle`` applies it in one process, minus the points (the worker has
        written them)."""
        hub = self.hub
        at = held.stamp_ns / 1e9
        self.entries.inc()
        for event in held.events:
            if isinstance(event, Reading):
                when = event.time if event.time is not None else at
                late = when < self._newest.get(event.thing, float("-inf"))
                if not late:
                    self._remember(self._newest, event.thing, when)
                back = hub.live.apply_reading(event, at)
                if event.values:
                    if late:
                        self.late.labels("reading").inc()
                    else:
                        hub.alerting.on_reading(event.thing, event.values, at)
                    power = event.values.get("power")
                    if power is not None:
                        hub.desk.observe_power(event.thing, float(power), when)
                if back and not late:
                    hub.alerting.on_availability(event.thing, True, at)
            elif isinstance(event, Availability):
                if at < self._newest_availability.get(event.thing, float("-inf")):
                    self.late.labels("availability").inc()
                    continue
                self._remember(self._newest_availability, event.thing, at)
                hub.live.apply_availability(event, at)
                hub.alerting.on_availability(event.thing, event.online, at)
            elif isinstance(event, Discovery):
                hub._discovered(event, at)
            elif isinstance(event, Scan):
                record = hub.live.record_scan(event, at)
                hub.writer.add_scan(record)
                hub.desk.submit_scan(record)
                hub.telemetry.scans.inc()

    def _remember(self, newest: dict[str, float], thing: str, when: float) -> None:
        if len(newest) >= 2 * self.hub.live.max_things and thing not in newest:
            newest.clear()  # ids beyond the live state's bound: forget rather than grow
        newest[thing] = when
