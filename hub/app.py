"""The composition root: builds every part of the hub from the config and runs the ingest pipeline.

The hot path, top to bottom:
  MQTT client (paho thread) → bounded queue → ingest worker: router → decoder → events
      readings      → live state + recorder (batches → sink or spool → acknowledgement);
                      fields no measurement took → counted, listed on the thing
      availability  → live state + alerts
      discovery     → live state (the store writer registers it in batches); announced topics followed
      scans         → live state + store writer (committed before the acknowledgement)
      rejections    → counted by reason
The same worker sweeps every ``sweep_every`` seconds for things silent past their availability timeout
and routes each like an ``offline`` message. Side effects (store writes, the dashboard) read the live
state; nothing on the hot path does I/O.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hub import __version__
from hub.alerting import AlertService
from hub.config import HubConfig, resolve_secrets
from hub.domain.alert_rules import DEFAULT_RULES, HUB_RULES, rule_from_dict
from hub.domain.availability import SilenceTimeouts
from hub.domain.events import Availability, Discovery, Ignored, Reading, Rejected, Scan
from hub.domain.livestate import LiveState
from hub.domain.readers import ReaderMode
from hub.federation import Federation
from hub.ingest.airrohr import AirrohrDecoder
from hub.ingest.decoder import Decoder
from hub.ingest.esphome import EsphomeDecoder
from hub.ingest.ha_link import HaLinkDecoder
from hub.ingest.homeassistant import HomeAssistantDecoder
from hub.ingest.homie import HomieDecoder
from hub.ingest.native import NativeDecoder
from hub.ingest.router import FieldRule, Router
from hub.ingest.rules import TopicRulesDecoder
from hub.ingest.shelly import ShellyDecoder
from hub.ingest.tasmota import TasmotaDecoder
from hub.ingest.ttn import TtnDecoder
from hub.ingest.zigbee2mqtt import Zigbee2MqttDecoder
from hub.integrations.ha_source import HaLinkDesk, HaSource, SourceSettings
from hub.loans import LendingDesk
from hub.mqtt.client import AckToken, BrokerAddress, Inbound, MqttConnection
from hub.mqtt.discovery import HomeAssistantDiscovery
from hub.mqtt.embedded import EmbeddedBroker
from hub.scaleout import IngestRole, StateRole
from hub.storage.accounts import Accounts
from hub.storage.alertstore import AlertStore
from hub.storage.catalog import Catalog
from hub.storage.directory import Directory
from hub.storage.embedded import EmbeddedSink
from hub.storage.halinks import HaLinks
from hub.storage.history import history_for
from hub.storage.housekeeping import Housekeeper, Retention
from hub.storage.influx import InfluxV1Sink, InfluxV2Sink
from hub.storage.recorder import JournalEntry, Recorder, Stamper
from hub.storage.sink import LineSink, Point, PointSink
from hub.storage.spool import Spool
from hub.storage.store import Store
from hub.storage.writer import StoreWriter
from hub.telemetry import Telemetry
from hub.web.application import create_app
from hub.web.context import WebContext
from hub.web.server import WebServer

log = logging.getLogger(__name__)

_STOP = object()
#: topics learned from announcements the hub follows at most (each decoder bounds its own as well)
MAX_LEARNED_TOPICS = 50_000
#: learned topics are subscribed in batches of this many (or when the ingest queue runs empty)
SUBSCRIBE_BATCH = 100


def valid_filter(topic: str) -> bool:
    """An MQTT topic filter the broker accepts: not empty, no NUL, ``+`` and ``#`` as whole levels,
    ``#`` only last, at most 65535 bytes."""
    if not topic or "\x00" in topic or len(topic.encode("utf-8", "surrogatepass")) > 65535:
        return False
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if ("#" in level and (level != "#" or i != len(levels) - 1)) or ("+" in level and level != "+"):
            return False
    return True


def settle_memory() -> None:
    """After start-up: move what was loaded out of the garbage collector's way.

    The imports and the loaded store leave ~180,000 tracked objects; a full collection over them takes
    about 100 ms on a 2-core machine and landed in the dashboard's slowest requests. Frozen objects are
    never scanned again, and a higher first threshold makes collections rarer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


def build_decoders(config: HubConfig) -> list[Decoder]:
    """Every decoder the config enables, in the order that decides who owns a topic.

    The hub's own scheme first, then the user's topic rules (explicit config beats recognition), then
    the ecosystems that read their topics natively; Home Assistant discovery after them (it only reads
    topics no native decoder owns) and ESPHome last (its generic ``<node>/<component>/<id>/state``
    yields to a discovery config that gives the same topic a unit and a device class).
    """
    eco = config.ingest.ecosystems
    decoders: list[Decoder] = [NativeDecoder(config.mqtt.base_topic)]
    if config.integrations.homeassistant_source.enabled:  # its $-topics come only through Hub.push
        decoders.append(HaLinkDecoder())
    if config.ingest.rules:
        decoders.append(TopicRulesDecoder(config.ingest.rules))
    if eco.tasmota.enabled:
        decoders.append(TasmotaDecoder(eco.tasmota.full_topic, eco.tasmota.discovery_prefix))
    if eco.zigbee2mqtt.enabled:
        decoders.append(Zigbee2MqttDecoder(eco.zigbee2mqtt.base_topics))
    if eco.shelly.enabled:
        decoders.append(ShellyDecoder())
    if eco.homie.enabled:
        decoders.append(HomieDecoder(eco.homie.root))
    if eco.ttn.enabled:
        decoders.append(TtnDecoder(eco.ttn.prefix))
    if eco.airrohr.enabled:
        decoders.append(AirrohrDecoder())
    if eco.homeassistant.enabled:
        decoders.append(
            HomeAssistantDecoder(eco.homeassistant.discovery_prefix, eco.homeassistant.max_topics)
        )
    if eco.esphome.enabled:
        decoders.append(EsphomeDecoder(eco.esphome.discovery_prefix))
    return decoders


def build_router(config: HubConfig) -> Router:
    """The router with every decoder the hub speaks, as ``hub run`` and ``hub decode`` use it."""
    field_map = [FieldRule(m.thing, m.field, m.to, m.unit) for m in config.ingest.field_map]
    return Router(
        build_decoders(config), max_payload_bytes=config.ingest.max_payload_bytes, field_map=field_map
    )


def build_sink(config: HubConfig, env: Mapping[str, str]) -> LineSink | PointSink:
    ts = config.timeseries
    secrets = resolve_secrets(config, env)
    if ts.kind == "influxdb-v1":
        assert ts.url
        return InfluxV1Sink(
            ts.url,
            ts.database,
            retention_policy=ts.retention_policy,
            username=secrets.timeseries_username,
            password=secrets.timeseries_password,
            timeout=ts.timeout,
        )
    if ts.kind == "influxdb-v2":
        assert ts.url and ts.org and ts.bucket
        return InfluxV2Sink(ts.url, ts.org, ts.bucket, secrets.timeseries_token or "", timeout=ts.timeout)
    return EmbeddedSink(Path(config.storage.path) / "timeseries.sqlite", retention_days=ts.retention_days)


@dataclass
class _Counters:
    rejected_logged: dict[str, float] = field(default_factory=dict)
    learned_logged: bool = False
    learned_overflow_logged: bool = False


class Hub:
    """One running hub. ``start()`` returns once every part runs; ``stop()`` drains and closes them."""

    def __init__(
        self,
        config: HubConfig,
        *,
        env: Mapping[str, str] | None = None,
        web_try_next_ports: int = 0,
        clock: Callable[[], float] = time.time,
        role: str = "all",
        worker: str | None = None,
    ) -> None:
        self.config = config
        #: ``all`` (the single hub), ``ingest`` or ``state`` (hub/scaleout.py; config from config_for_role)
        self.role = role
        #: the wall clock readings without a device time are stamped by (tests inject one)
        self.clock = clock
        self.env = dict(os.environ if env is None else env)
        self.telemetry = Telemetry()
        self.live = LiveState()
        self.router = build_router(config)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=config.ingest.queue_size)
        self.broker: EmbeddedBroker | None = None
        self.web_url: str | None = None
        self._web_try_next_ports = web_try_next_ports
        self._web: WebServer | None = None
        self._worker: threading.Thread | None = None
        self._running = False
        self._counters = _Counters()
        self.mqtt: MqttConnection | None = None
        timeouts = config.ingest.availability_timeout
        self.timeouts = SilenceTimeouts(timeouts.mains_s, timeouts.battery_s)
        #: seconds between silence sweeps (on the ingest worker)
        self.sweep_every = self.timeouts.sweep_every()
        self._watching_since = time.time()
        #: topics announced by devices that the hub follows, and those still to subscribe
        self._learned: set[str] = set()
        self._to_subscribe: list[str] = []

        storage = Path(config.storage.path)
        self.store = Store.open(config.storage.url or storage)
        self.sink = build_sink(config, self.env)
        self.spool = None
        if hasattr(self.sink, "write_lines"):
            self.spool = Spool(
                storage / "spool.sqlite",
                int(config.storage.spool_max_mb * 1024 * 1024),
                on_drop=self._spool_dropped,
                on_relief=self._spool_relieved,
            )
        self.stamper = Stamper(
            clock=clock, on_overflow=lambda: self.telemetry.drops.labels("timestamp_journal").inc()
        )
        self.recorder = Recorder(
            self.sink,
            self.telemetry,
            spool=self.spool,
            stamper=self.stamper,
            batch_size=config.timeseries.batch_size,
            flush_interval=config.timeseries.flush_interval,
            ack_threshold=max(1, config.mqtt.receive_maximum // 2),
            max_pending=max(config.timeseries.batch_size * 4, config.ingest.queue_size),
        )
        self.writer = StoreWriter(self.store, self.live, self.telemetry)
        kept = config.storage.retention
        self.housekeeper = Housekeeper(
            self.store,
            Retention(kept.scans_days, kept.audit_days, kept.deliveries_days, kept.alert_events_days),
            telemetry=self.telemetry,
        )
        self.directory = Directory(self.store)
        self.catalog = Catalog(self.directory)
        self.writer.on_registry_change = self._registry_changed
        lend = config.lending
        self.desk = LendingDesk(
            self.directory,
            self._publish,
            self.telemetry,
            base_topic=config.mqtt.base_topic,
            readers={reader: ReaderMode(mode) for reader, mode in lend.readers.items()},
            default_mode=ReaderMode(lend.default_mode),
            remind_before_s=lend.remind_before_hours * 3600,
            escalate_after_s=lend.escalate_after_days * 86400,
        )
        rules = [
            *HUB_RULES,  # the hub's own alerts (spool full), whatever alerts.defaults says
            *(DEFAULT_RULES if config.alerts.defaults else ()),
            *map(rule_from_dict, config.alerts.rules),
        ]
        self.alerting = AlertService(
            directory=self.directory,
            catalog=self.catalog,
            store=AlertStore(self.store),
            publish=self._publish,
            telemetry=self.telemetry,
            rules=rules,
            base_topic=config.mqtt.base_topic,
            custody=self.desk.custody,
        )
        self.desk.on_overdue = self.alerting.overdue
        self.desk.on_returned = self.alerting.loan_returned
        self.recorder.before_ack = self.writer.commit_scans
        t = self.telemetry
        t.gauge("hub_ingest_queue_depth", "Messages waiting for the ingest worker", self.queue.qsize)
        t.gauge(
            "hub_recorder_pending_points", "Points waiting for the next batch", lambda: self.recorder.pending
        )
        t.gauge(
            "hub_spool_points", "Points in the durable spool", lambda: self.spool.points if self.spool else 0
        )
        t.gauge(
            "hub_spool_bytes", "Bytes in the durable spool", lambda: self.spool.bytes if self.spool else 0
        )
        t.gauge("hub_things", "Things known", lambda: len(self.live))
        self.ha_discovery = self._homeassistant_discovery()
        self.ha_source = self._homeassistant_source()
        self.scale: IngestRole | StateRole | None = None
        if role == "ingest":
            self.scale = IngestRole(self, worker or "1")
        elif role == "state":
            self.scale = StateRole(self)
        self.federation: Federation | None = None
        if config.federation.enabled and role != "ingest":
            self.federation = Federation(
                self.live,
                self.catalog,
                self.alerting,
                self._publish,
                config.mqtt.base_topic,
                config.federation,
            )

    # -- life -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.store.migrate()
        stateful = self.role != "ingest"  # an ingest worker keeps no per-thing state (hub/scaleout.py)
        if stateful:
            self.live.load(self.store.load_things(), self.store.load_unmapped())
        self._watching_since = time.time()
        if stateful:
            self.alerting.prepare()  # retained messages arriving at connect are evaluated too
        if self.spool is not None:  # a spool alert left open by an earlier run clears once it has drained
            self.spool.overflowing = self.spool.bytes > self.spool.max_bytes // 2
            if not self.spool.overflowing:
                self.alerting.hub_condition("spool_full", False)
        if hasattr(self.sink, "ping") and not self.sink.ping():
            self.recorder.mark_unavailable(
                f"{self.sink.kind} at {self.config.timeseries.url} does not answer "
                "(timeseries.url); spooling until it is back"
            )
        self.writer.start()
        self.recorder.start()
        self._running = True
        self._worker = threading.Thread(target=self._ingest_loop, name="ingest", daemon=True)
        self._worker.start()
        if self.scale is not None:
            self.scale.start()
        self.mqtt = self._connect_mqtt()
        self._follow_homeassistant(self.mqtt)
        self.mqtt.start()
        if stateful:
            self.desk.start()
            self.alerting.start()
            self.housekeeper.start()
        if self.federation is not None:
            self.federation.start()
        if self.ha_source is not None:
            self.ha_source.start()
        if self.config.web.enabled:
            airrohr = self.config.ingest.ecosystems.airrohr
            ctx = WebContext(
                live=self.live,
                catalog=self.catalog,
                telemetry=self.telemetry,
                health=self.health,
                version=__version__,
                directory=self.directory,
                desk=self.desk,
                accounts=Accounts(self.store),
                alerts=self.alerting,
                history=history_for(self.sink, resolve_secrets(self.config, self.env)),
                push=self.push,
                silence_timeouts=self.timeouts,
                push_max_bytes=self.config.ingest.max_payload_bytes,
                airrohr_enabled=airrohr.enabled,
                airrohr_password=airrohr.password.get_secret_value() if airrohr.password else None,
                homeassistant_source=self.ha_source,
            )
            trust_proxy = self.config.web.trust_proxy
            self._web = WebServer(
                create_app(ctx, trust_proxy=trust_proxy),
                self.config.web.host,
                self.config.web.port,
                try_next_ports=self._web_try_next_ports,
                trust_proxy=trust_proxy,
            )
            self.web_url = self._web.start()
            log.info("dashboard url=%s", self.web_url)

    def _connect_mqtt(self) -> MqttConnection:
        cfg = self.config.mqtt
        if cfg.url == "embedded":
            self.broker = EmbeddedBroker()
            self.broker.start()
            address = BrokerAddress(self.broker.host, self.broker.port)
        else:
            parts = urlsplit(cfg.url)
            secrets = resolve_secrets(self.config, self.env)
            tls = parts.scheme == "mqtts"
            address = BrokerAddress(
                parts.hostname or "127.0.0.1",
                parts.port or (8883 if tls else 1883),
                tls,
                secrets.mqtt_username,
                secrets.mqtt_password,
                str(cfg.tls_ca_file) if cfg.tls_ca_file else None,
            )
        subs: list[tuple[str, int, bool]] = [
            (sub.topic, cfg.qos, sub.replay) for sub in self.router.subscriptions()
        ]
        if self.scale is not None:
            subs = self.scale.subscriptions(subs)
        # amqtt speaks MQTT 3.1.1 only (and does not answer an MQTT 5 CONNECT).
        protocol = "3.1.1" if self.broker is not None else cfg.protocol
        return MqttConnection(
            address,
            client_id=cfg.client_id,
            subscriptions=subs,
            deliver=self._deliver,
            status_topic=self.scale.status_topic if self.scale else f"{cfg.base_topic}/hub/status",
            protocol=protocol,
            keepalive=cfg.keepalive,
            session_expiry=cfg.session_expiry,
            receive_maximum=cfg.receive_maximum,
            on_state=lambda up: self.telemetry.mqtt_connected.set(1 if up else 0),
            share_group=self.scale.share_group if self.scale else None,
            hold_shared=self.role == "ingest",  # until the state process exists (hub/scaleout.py)
        )

    def stop(self) -> None:
        """Stop taking messages, store what was taken and acknowledge it while still connected, then close.

        Messages arriving during the stop are left unacknowledged: the broker delivers them again to the
        next run, and nothing processed is delivered twice.
        """
        if self.ha_source is not None:
            self.ha_source.stop()
        self._running = False
        if self._worker is not None:
            self.queue.put(_STOP)
            self._worker.join(10)
        if self.scale is not None:
            self.scale.drain()
        if self.federation is not None:
            self.federation.stop()
        self.recorder.stop()
        if self.scale is not None:
            self.scale.stop()  # forwards what the recorder acknowledged last, while still connected
        self.writer.stop()
        self.housekeeper.stop()
        self.alerting.stop()
        self.desk.stop()
        if self.ha_discovery is not None:
            self.ha_discovery.stop()
        if self.mqtt is not None:
            self.mqtt.stop()
        if self._web is not None:
            self._web.stop()
        if self.broker is not None:
            self.broker.stop()
        self.sink.close()
        if self.spool is not None:
            self.spool.close()
        self.store.close()

    # -- the hot path ---------------------------------------------------------------------------------
    def _deliver(self, message: Inbound) -> None:
        """Called on the MQTT thread. QoS 0 is dropped when full; QoS 1 waits (the broker holds the rest)."""
        if not self._running:
            return  # stopping: unacknowledged, so the broker redelivers it to the next run
        if self.ha_discovery is not None and self.ha_discovery.take(message.topic, message.payload):
            if message.token is not None and self.mqtt is not None:
                self.mqtt.ack(message.token)  # the hub's own discovery config: not a device to decode
            return
        if message.token is None:
            try:
                self.queue.put_nowait(message)
            except queue.Full:
                self.telemetry.drops.labels("ingest_queue").inc()
            return
        while self._running:
            try:
                self.queue.put(message, timeout=0.5)
                return
            except queue.Full:
                continue

    def push(self, topic: str, payload: bytes) -> bool:
        """A message that arrived another way than MQTT (an HTTP push), onto the ingest queue as if it
        came from the broker with QoS 0. False when the queue is full (the drop is counted) or the hub
        is stopping."""
        if not self._running:
            return False
        try:
            self.queue.put_nowait(Inbound(topic, payload, 0, False, time.time(), None))
        except queue.Full:
            self.telemetry.drops.labels("ingest_queue").inc()
            return False
        return True

    def _ingest_loop(self) -> None:
        get = self.queue.get
        every = self.sweep_every
        next_sweep = time.monotonic() + every
        while True:
            try:
                message = get(timeout=every)
            except queue.Empty:
                message = None
            if message is _STOP:
                return
            if message is not None:
                try:
                    self.handle(message)
                except Exception:  # never let one message stop ingest
                    log.exception("ingest failed topic=%s", getattr(message, "topic", "?"))
            if self._to_subscribe and (len(self._to_subscribe) >= SUBSCRIBE_BATCH or self.queue.empty()):
                try:
                    self._subscribe_learned()
                except Exception:
                    log.exception("subscribing to announced topics failed")
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + every
                try:
                    self.sweep(time.time())
                except Exception:
                    log.exception("availability sweep failed")

    def handle(self, message: Inbound) -> None:
        t = self.telemetry
        t.messages.inc()
        points: list[Point] = []
        held: list[Point] = []  # stamped while the hub's clock was before 2020 (recorder.Stamper)
        journal: list[JournalEntry] = []
        arrival: tuple[int, JournalEntry | None, bool] | None = None
        for event in self.router.route(message.topic, message.payload, message.received):
            if isinstance(event, Reading):
                back = self.live.apply_reading(event, message.received)
                if event.unmapped:
                    t.unmapped.labels(event.source).inc(len(event.unmapped))
                if event.values:  # only unmapped fields: the thing was heard, but there is no point
                    at = event.time if event.time is not None else message.received
                    if event.time is not None:
                        points.append(Point(event.thing, event.source, event.values, int(at * 1e9)))
                    else:  # arrival time, the same again for a redelivered message
                        if arrival is None:
                            arrival = self._arrival(message, journal)
                        point = Point(event.thing, event.source, event.values, arrival[0])
                        (held if arrival[2] else points).append(point)
                    self.alerting.on_reading(event.thing, event.values, message.received)
                    power = event.values.get("power")
                    if power is not None:
                        self.desk.observe_power(event.thing, float(power), at)
                    t.readings.labels(event.source).inc()
                if back:  # silent past its timeout before, talking again: online, as if it said so
                    self.alerting.on_availability(event.thing, True, message.received)
            elif isinstance(event, Availability):
                self.live.apply_availability(event, message.received)
                self.alerting.on_availability(event.thing, event.online, message.received)
            elif isinstance(event, Discovery):
                self._discovered(event, message.received)
            elif isinstance(event, Scan):
                at = message.received
                if event.time is None:  # the journaled arrival time: a redelivered scan is the same scan
                    if arrival is None:
                        arrival = self._arrival(message, journal)
                    if not arrival[2]:
                        at = arrival[0] / 1e9
                record = self.live.record_scan(event, at)
                self.writer.add_scan(record)
                self.desk.submit_scan(record)
                t.scans.inc()
            elif isinstance(event, Rejected):
                self._rejected(event)
            elif isinstance(event, Ignored):
                pass
        ack = self._acker(message.token) if message.token is not None else None
        if points or held or ack is not None:
            self.recorder.submit(points, ack, journal=journal, held=held)

    def _arrival(
        self, message: Inbound, journal: list[JournalEntry]
    ) -> tuple[int, JournalEntry | None, bool]:
        """The message's arrival stamp (recorder.Stamper: the same again for a redelivery), once per
        message for its readings and scans; its journal entry goes into ``journal``."""
        arrival = self.stamper.arrival(
            message.topic, message.payload, message.received, qos=message.qos, dup=message.dup
        )
        if arrival[1] is not None:
            journal.append(arrival[1])
        return arrival

    def _spool_dropped(self, points: int) -> None:
        """The spool hit storage.spool_max_mb and dropped its oldest points: counted, and a critical
        alert on the pseudo-thing ``hub`` (cleared when the spool is back under half its bound)."""
        self.telemetry.drops.labels("spool").inc(points)
        dropped = self.spool.dropped_points if self.spool is not None else points
        now = time.monotonic()
        if now - getattr(self, "_spool_alerted_at", -60.0) < 60.0:
            return  # opened or re-triggered within the minute: the count is on /metrics meanwhile
        self._spool_alerted_at = now
        try:
            self.alerting.hub_condition("spool_full", True, float(dropped))
        except Exception:  # the alert must never stop the spool
            log.exception("raising the spool alert failed")

    def _spool_relieved(self) -> None:
        self._spool_alerted_at = -60.0
        self.alerting.hub_condition("spool_full", False)

    def _publish(self, topic: str, payload: str, qos: int, retain: bool) -> None:
        if self.mqtt is not None:
            self.mqtt.publish(topic, payload, qos, retain)

    # -- the registry fed by discovery, availability by silence ---------------------------------------
    def _discovered(self, event: Discovery, at: float) -> None:
        """An announcement registers or updates the thing, a withdrawal retires it; both reach the store
        through the writer's next batch. Announced topics are followed from now on."""
        if event.retired:
            self.telemetry.retirements.labels(event.source).inc()
        else:
            self.telemetry.discoveries.labels(event.source).inc()
        self.live.apply_discovery(event, at)
        if event.topics:
            self._follow(event)

    def _follow(self, event: Discovery) -> None:
        fresh = [topic for topic in event.topics if topic not in self._learned]
        if not fresh:
            return
        bad = [topic for topic in fresh if not valid_filter(topic)]
        if bad:  # one bad filter would make the broker (or paho) refuse the whole batch
            detail = f"{event.thing} announced a topic that is not a valid MQTT topic filter"
            self._rejected(Rejected(event.source, bad[0], "bad_topic", detail))
            fresh = [topic for topic in fresh if topic not in bad]
        room = MAX_LEARNED_TOPICS - len(self._learned)
        if len(fresh) > room:
            self.telemetry.drops.labels("learned_topics").inc(len(fresh) - room)
            if not self._counters.learned_overflow_logged:
                self._counters.learned_overflow_logged = True
                log.warning(
                    "announced topics not followed: the hub follows at most %d learned topics",
                    MAX_LEARNED_TOPICS,
                )
            fresh = fresh[: max(room, 0)]
        self._learned.update(fresh)
        self._to_subscribe.extend(fresh)

    def _subscribe_learned(self) -> None:
        """Subscribe to the learned topics collected so far, in one batch (from the ingest worker)."""
        mqtt = self.mqtt
        if mqtt is None:
            return
        topics, self._to_subscribe = self._to_subscribe, []
        qos = self.config.mqtt.qos
        mqtt.add_subscriptions([(topic, qos, False) for topic in topics])
        if not self._counters.learned_logged:
            self._counters.learned_logged = True
            log.info("following topics announced by devices count=%d first=%s", len(topics), topics[0])
        else:
            log.debug("following topics announced by devices count=%d", len(topics))

    def sweep(self, now: float) -> None:
        """Mark things silent past their availability timeout offline, routed like an ``offline``
        message (alerts, dashboard). Runs on the ingest worker, in order with the messages."""
        for event in self.live.silent(now, self.timeouts, self._watching_since):
            self.live.apply_availability(event, now, reported=False)
            self.alerting.on_availability(event.thing, False, now)
            self.telemetry.silenced.inc()
            log.info("offline after silence thing=%s source=%s", event.thing, event.source)

    def _registry_changed(self) -> None:
        """Announcements or retirements were stored: read caches of the registry reload now."""
        self.catalog.invalidate()
        ha_discovery = getattr(self, "ha_discovery", None)
        if ha_discovery is not None:
            ha_discovery.things_changed()

    def _acker(self, token: AckToken) -> Callable[[], None]:
        mqtt = self.mqtt
        assert mqtt is not None
        return lambda: mqtt.ack(token)

    def _rejected(self, event: Rejected) -> None:
        self.telemetry.rejections.labels(event.source, event.reason).inc()
        now = time.monotonic()
        key = f"{event.source}/{event.reason}"
        if now - self._counters.rejected_logged.get(key, -60.0) >= 60.0:  # one line a minute per reason
            self._counters.rejected_logged[key] = now
            log.warning(
                "rejected source=%s reason=%s topic=%s detail=%s",
                event.source,
                event.reason,
                event.topic,
                event.detail,
            )

    # -- health ---------------------------------------------------------------------------------------
    def health(self) -> dict[str, dict[str, str]]:
        mqtt = self.mqtt
        report: dict[str, dict[str, str]] = {}
        if mqtt is not None and mqtt.connected.is_set():
            report["mqtt"] = {
                "status": "ok",
                "detail": f"connected to {mqtt.broker} (MQTT {mqtt.protocol_name})",
            }
        else:
            detail = (mqtt.last_error if mqtt else None) or "not connected"
            report["mqtt"] = {"status": "down", "detail": detail}
        if self.recorder.sink_up:
            report["timeseries"] = {"status": "ok", "detail": f"{self.sink.kind}"}
        else:
            report["timeseries"] = {
                "status": "degraded",
                "detail": f"{self.sink.kind} unavailable, spooling: {self.recorder.last_error}",
            }
        if self.spool is not None:
            status = "ok" if self.spool.points == 0 else "degraded"
            report["spool"] = {
                "status": status,
                "detail": f"{self.spool.points} points, {self.spool.bytes} bytes",
            }
        report["store"] = (
            {"status": "ok", "detail": repr(self.store)}
            if self.writer.healthy
            else {"status": "down", "detail": self.writer.last_error or "write failed"}
        )
        return report

    # -- Home Assistant discovery (hub/mqtt/discovery.py) ---------------------------------------------
    def _homeassistant_discovery(self) -> HomeAssistantDiscovery | None:
        """The hub as a device in residents' Home Assistant; its thread reads the live state, the alert
        engine and the registry, so nothing is added to the ingest path."""
        ha = self.config.homeassistant_discovery
        if not ha.enabled:
            return None
        web = self.config.web
        dashboard = f"http://{web.listen}" if web.enabled and web.host not in ("0.0.0.0", "::", "") else None

        def availability(thing: str) -> bool | None:
            state = self.live.get(thing)
            return state.online if state is not None else None

        def connection() -> int:
            mqtt = self.mqtt
            return mqtt.connects if mqtt is not None and mqtt.connected.is_set() else 0

        return HomeAssistantDiscovery(
            self._publish,
            registry=lambda now: (self.directory.things(), self.directory.all_relations(now=now)),
            availability=availability,
            open_alerts=lambda: [alert.thing for alert in self.alerting.open_alerts()],
            connection=connection,
            refresh_custody=self.desk.publish_custody,
            on_drop=lambda: self.telemetry.drops.labels("homeassistant_discovery").inc(),
            base_topic=self.config.mqtt.base_topic,
            discovery_prefix=ha.discovery_prefix,
            client_id=self.config.mqtt.client_id,
            version=__version__,
            support_url=dashboard,
            qos=self.config.mqtt.qos,
        )

    def _homeassistant_source(self) -> HaSource | None:
        """Entities residents share from their own Home Assistant (hub/integrations/ha_source.py); their
        states enter through ``push``, like an HTTP push, and follow the same path as MQTT readings."""
        cfg = self.config.integrations.homeassistant_source
        if not cfg.enabled or self.role == "ingest":  # one process follows the links: never each worker
            return None
        settings = SourceSettings(**cfg.model_dump(exclude={"enabled"}))
        desk = HaLinkDesk(HaLinks(self.store), self.directory, settings)
        return HaSource(desk, self.push, self.telemetry, on_registry_change=self._registry_changed)

    def _follow_homeassistant(self, mqtt: MqttConnection) -> None:
        """Before the connection starts: Home Assistant's status and the hub's own config are followed
        from the first connection on (``_deliver`` hands them to the publisher)."""
        if self.ha_discovery is not None:
            mqtt.add_subscriptions(self.ha_discovery.subscriptions(sub[0] for sub in mqtt.subscriptions))
            self.ha_discovery.start()
