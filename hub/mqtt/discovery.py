"""Home Assistant sees the hub: MQTT device discovery of one device, "Neighborhood Hub".

Its entities are what any neighbor may know, decided by the permission function for an unrelated
resident (the audience of everything the hub publishes on the broker):
  - per shared thing (not private, not retired): a ``binary_sensor`` (device class connectivity), its
    availability, on ``<base>/hub/ha/thing/<id>/availability`` (``online``/``offline``, ``None`` unknown);
  - per lendable thing (an active lends relation, custody visible to neighbors): a ``sensor`` with the
    custody — ``available`` or the holder's pseudonym, attributes ``due`` and ``overdue`` — read straight
    from the lending desk's retained ``<base>/loans/<thing>``, so Home Assistant shows exactly what the
    desk decided to publish;
  - the number of open alerts on shared things (``sensor``, state class measurement) on
    ``<base>/hub/ha/active_alerts``.
Every entity is available while the hub is: its LWT ``<base>/hub/status``. State topics stay out of
``<base>/things/``, which the hub's own decoder reads.

The config is one retained message, ``<prefix>/device/<hub>/config``, republished on every connection,
when Home Assistant announces itself (``<prefix>/status`` ``online``) and when the entities change, at
most once per ``min_interval`` (bursts coalesce). A removed entity stays in the config as its platform
alone — Home Assistant 2025.4 removes one component of a device only so, and keeps one merely left out —
for the rest of the run and the next one (which learns it from the retained config), and its retained
state is cleared. That retained config is taken off the ingest path, so the Home Assistant decoder never
reads the hub as a device of its own.

Everything runs on this module's thread: the MQTT thread only hands over the two topics it watches
through a bounded queue (drops counted), and nothing is added to the ingest path — availability and the
alert count are read from the live state and the alert engine once per ``poll_interval``, the registry
once per ``resync_interval``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paho.mqtt.client import topic_matches_sub

from hub.domain.model import Action, Relation, RelationKind, Resident, Thing
from hub.domain.permissions import may

log = logging.getLogger(__name__)

#: ``publish(topic, payload, qos, retain)``, as ``hub.app`` and the MQTT connection offer it
Publish = Callable[[str, str, int, bool], None]
#: ``registry(now)`` → (every registered thing, the relations active at ``now``)
Registry = Callable[[float], tuple[Sequence[Thing], Sequence[Relation]]]

NAME = "Neighborhood Hub"
#: brokers commonly cap packets at 256 KiB and drop the connection of a client that sends more
MAX_CONFIG_BYTES = 200_000
ONLINE, OFFLINE, UNKNOWN = "online", "offline", "None"  # "None" is Home Assistant's "unknown"

#: an unrelated resident: the audience of every topic the hub publishes
_ANY_NEIGHBOR = Resident(id="", pseudonym="any neighbor")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_TOPIC_LEVEL = re.compile(r"[^/+#\x00]+")

# Custody as the lending desk publishes it: {"state": "available"} or {"state": "out"|"overdue",
# "holder": pseudonym, "since": epoch, "due": epoch}; an empty payload (thing no longer public) → unknown.
CUSTODY_TEMPLATE = (
    "{{ (value_json.get('holder') or value_json.get('state') or 'None') "
    "if value_json is defined and value_json is mapping else 'None' }}"
)
CUSTODY_ATTRIBUTES_TEMPLATE = (
    "{% set c = value_json if value_json is defined and value_json is mapping else {} %}"
    "{{ {'due': (c.get('due') | timestamp_custom('%Y-%m-%dT%H:%M:%SZ', false))"
    " if c.get('due') is number else none,"
    " 'overdue': c.get('state') == 'overdue'} | tojson }}"
)


def object_id(raw: str) -> str:
    """``raw`` as a Home Assistant object id ([a-zA-Z0-9_-]): unchanged when it is one already, else the
    unsafe characters replaced and a short digest of ``raw`` appended, so distinct ids never collide."""
    if raw and not _UNSAFE.search(raw):
        return raw
    digest = hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    readable = _UNSAFE.sub("_", raw).strip("_")
    return f"{readable}_{digest}" if readable else digest


def readable_id(raw: str) -> str:
    """``raw`` with unsafe characters replaced, for entity ids (Home Assistant numbers any clash)."""
    return _UNSAFE.sub("_", raw).strip("_").lower() or "thing"


@dataclass(frozen=True, slots=True)
class Entities:
    """The things Home Assistant gets an entity for, by id."""

    shared: tuple[Thing, ...] = ()
    lendable: tuple[Thing, ...] = ()

    @property
    def shared_ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.shared)

    @property
    def lendable_ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.lendable)


def select_entities(things: Iterable[Thing], relations: Iterable[Relation], now: float) -> Entities:
    """Shared things (a neighbor may see them) and lendable ones (lent, custody visible to neighbors).

    The same questions the alert and custody topics ask, so Home Assistant shows no more than they do.
    """
    lent = {r.thing for r in relations if r.kind == RelationKind.LENDS and r.active(now)}
    shared: list[Thing] = []
    lendable: list[Thing] = []
    for thing in sorted(things, key=lambda t: t.id):
        if may(_ANY_NEIGHBOR, Action.SEE, thing, [], now):
            shared.append(thing)
        # the custody topic names the thing id as one topic level: an id that cannot be one has no custody
        if (
            thing.id in lent
            and _TOPIC_LEVEL.fullmatch(thing.id)
            and may(_ANY_NEIGHBOR, Action.SEE_CUSTODY, thing, [], now)
        ):
            lendable.append(thing)
    return Entities(tuple(shared), tuple(lendable))


class HomeAssistantDiscovery:
    """Publishes the hub's device discovery and its entities' states; ``start()``/``stop()``."""

    def __init__(
        self,
        publish: Publish,
        *,
        registry: Registry,
        availability: Callable[[str], bool | None],
        open_alerts: Callable[[], Iterable[str]],
        connection: Callable[[], int],
        refresh_custody: Callable[[str], None] = lambda _thing: None,
        on_drop: Callable[[], None] = lambda: None,
        base_topic: str = "neighborhood",
        discovery_prefix: str = "homeassistant",
        client_id: str = "neighborhood-hub",
        version: str = "",
        support_url: str | None = None,
        qos: int = 1,
        clock: Callable[[], float] = time.time,
        min_interval: float = 2.0,
        poll_interval: float = 1.0,
        resync_interval: float = 5.0,
        max_pending: int = 100,
    ) -> None:
        """``availability(thing)`` is the thing's live online state (None: unknown); ``open_alerts()``
        the thing id of each open alert; ``connection()`` a number that changes with every broker
        connection, 0 while there is none; ``refresh_custody(thing)`` asks the lending desk to publish a
        newly lendable thing's custody now."""
        self.publish_raw = publish
        self.registry = registry
        self.availability = availability
        self.open_alerts = open_alerts
        self.connection = connection
        self.refresh_custody = refresh_custody
        self.on_drop = on_drop
        self.base = base_topic.rstrip("/")
        self.prefix = discovery_prefix.rstrip("/")
        self.hub_id = object_id(client_id)
        self.version = version
        self.support_url = support_url
        self.qos = qos
        self.clock = clock
        self.min_interval = min_interval
        self.poll_interval = poll_interval
        self.resync_interval = resync_interval
        #: Home Assistant's birth and last-will topic, and the hub's own retained config
        self.status_topic = f"{self.prefix}/status"
        self.config_topic = f"{self.prefix}/device/{self.hub_id}/config"
        self.alerts_topic = f"{self.base}/hub/ha/active_alerts"
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=max_pending)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # everything below belongs to the publisher thread
        self._entities: Entities | None = None
        self._config = ""  # the config as last built
        self._config_due = True
        self._states_due = True
        self._last_config = float("-inf")
        self._generation = 0
        self._next_resync = 0.0
        self._states: dict[str, str] = {}  # state topic → payload last published
        self._removed: dict[str, str] = {}  # component id → platform, kept in the config to remove it
        self._to_clear: set[str] = set()  # state topics to clear once the config without them is out
        self._previous: bytes | None = None  # a config found on the broker, to learn what it held
        self._last_wanted: dict[str, dict[str, Any]] = {}
        self._custody_asked: set[str] = set()
        self._failure_logged = float("-inf")
        self.published_configs = 0

    # -- from other threads ---------------------------------------------------------------------------
    def subscriptions(self, followed: Iterable[str] = ()) -> list[tuple[str, int, bool]]:
        """The topics to follow — Home Assistant's status, and the config a previous run left retained —
        unless a ``followed`` filter covers them already (MQTT 5 brokers deliver once per match)."""
        covered = list(followed)
        return [
            (topic, self.qos, replay)
            for topic, replay in ((self.status_topic, False), (self.config_topic, True))
            if not any(topic_matches_sub(sub, topic) for sub in covered)
        ]

    def take(self, topic: str, payload: bytes) -> bool:
        """From the MQTT thread, for every message: never blocks. True when the message is the hub's own
        config (not a device's: the caller drops it); Home Assistant's status is left to the router too."""
        if topic == self.status_topic:
            if payload.strip().lower() == b"online":
                self._hand_over("online", b"")
            return False
        if topic == self.config_topic:
            if payload:
                self._hand_over("config", payload)
            return True
        return False

    def republish(self) -> None:
        """Publish the config and every state again (coalesced with any other republish)."""
        self._hand_over("online", b"")

    def things_changed(self) -> None:
        """Read the registry now instead of at the next resync."""
        self._hand_over("resync", b"")

    def _hand_over(self, kind: str, payload: bytes) -> None:
        try:
            self._queue.put_nowait((kind, payload))
        except queue.Full:
            self.on_drop()

    # -- life -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="homeassistant-discovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item: tuple[str, bytes] | None = self._queue.get(timeout=self.poll_interval)
            except queue.Empty:
                item = None
            while item is not None:
                self._note(*item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            try:
                self.step()
            except Exception:  # the broker or the store failing now must not end discovery for good
                if time.monotonic() - self._failure_logged >= 60.0:  # one line a minute, not one a second
                    self._failure_logged = time.monotonic()
                    log.exception("home assistant discovery round failed; retrying every second")

    def _note(self, kind: str, payload: bytes) -> None:
        if kind == "online":
            self._config_due = self._states_due = True
        elif kind == "resync":
            self._next_resync = 0.0
        elif kind == "config":
            self._previous = payload

    # -- one round (the publisher thread; tests call it directly) -------------------------------------
    def step(self) -> None:
        generation = self.connection()
        if not generation:
            return  # nothing goes out while disconnected: everything does on the next connection
        if generation != self._generation:
            self._generation = generation
            self._config_due = self._states_due = True
            self._custody_asked = set()
            self._next_resync = 0.0
        mono = time.monotonic()
        if self._entities is None or mono >= self._next_resync:
            self._resync()
            self._next_resync = mono + self.resync_interval
        if self._previous is not None:
            self._forget_previous(self._previous)
            self._previous = None
        if self._config_due and mono - self._last_config >= self.min_interval:
            self._publish_config()
            self._last_config = mono
        self._publish_states(force=self._states_due)
        self._states_due = False

    def _resync(self) -> None:
        now = self.clock()
        things, relations = self.registry(now)
        entities = select_entities(things, relations, now)
        self._entities = entities
        # the desk publishes custody at its start (maybe before the connection) and on loan changes, and
        # a thing newly lent only at its minute's resync: ask it once per connection and lendable thing
        for thing in entities.lendable:
            if thing.id not in self._custody_asked:
                self.refresh_custody(thing.id)
        self._custody_asked = set(entities.lendable_ids)
        wanted = self._components(entities)
        topics = self._state_topics(entities)
        self._to_clear = (self._to_clear | set(self._states)) - topics
        config = self._build(wanted)
        if config != self._config:
            self._config = config
            self._config_due = True

    def _forget_previous(self, payload: bytes) -> None:
        """A config on the broker (a previous run's, or the echo of ours): what it names that is no longer
        wanted is removed from Home Assistant, and its retained states are cleared."""
        try:
            previous = json.loads(payload)
            components = previous.get("components") or previous.get("cmps") or {}
        except (ValueError, AttributeError):
            return
        if not isinstance(components, Mapping) or self._entities is None:
            return
        wanted = self._components(self._entities)
        changed = False
        for key, component in components.items():
            if not isinstance(component, Mapping) or key in wanted:
                continue
            platform = component.get("platform") or component.get("p")
            topic = component.get("state_topic") or component.get("stat_t")
            if isinstance(topic, str) and topic.startswith(f"{self.base}/hub/ha/"):
                self._to_clear.add(topic)
            # only live components: a removal the previous run already sent is not carried on for ever
            if isinstance(platform, str) and len(component) > 1 and key not in self._removed:
                self._removed[str(key)] = platform
                changed = True
        if changed:
            self._config = self._build(wanted)
            self._config_due = True

    def _publish_config(self) -> None:
        self.publish_raw(self.config_topic, self._config, self.qos, True)
        self.published_configs += 1
        for topic in sorted(self._to_clear):
            self.publish_raw(topic, "", self.qos, True)
            self._states.pop(topic, None)
        self._to_clear.clear()
        self._config_due = False
        log.info(
            "home assistant discovery published topic=%s bytes=%d",
            self.config_topic,
            len(self._config.encode()),
        )

    def _publish_states(self, *, force: bool) -> None:
        entities = self._entities
        if entities is None:
            return
        states: dict[str, str] = {}
        for thing in entities.shared:
            online = self.availability(thing.id)
            states[self.availability_topic(thing.id)] = (
                UNKNOWN if online is None else ONLINE if online else OFFLINE
            )
        shared = entities.shared_ids
        states[self.alerts_topic] = str(sum(1 for thing in self.open_alerts() if thing in shared))
        for topic, payload in states.items():
            if topic in self._to_clear:
                continue
            if force or self._states.get(topic) != payload:
                self.publish_raw(topic, payload, self.qos, True)
                self._states[topic] = payload

    # -- the config -----------------------------------------------------------------------------------
    def availability_topic(self, thing_id: str) -> str:
        return f"{self.base}/hub/ha/thing/{object_id(thing_id)}/availability"

    def custody_topic(self, thing_id: str) -> str:
        return f"{self.base}/loans/{thing_id}"

    def _state_topics(self, entities: Entities) -> set[str]:
        return {self.alerts_topic, *(self.availability_topic(t.id) for t in entities.shared)}

    def _components(self, entities: Entities) -> dict[str, dict[str, Any]]:
        hub = readable_id(self.hub_id)
        components: dict[str, dict[str, Any]] = {
            "active_alerts": {
                "platform": "sensor",
                "unique_id": f"{self.hub_id}_active_alerts",
                "object_id": f"{hub}_active_alerts",
                "name": "Active alerts",
                "icon": "mdi:alert",
                "state_topic": self.alerts_topic,
                "state_class": "measurement",
            }
        }
        for thing in entities.shared:
            key = f"{object_id(thing.id)}_availability"
            components[key] = {
                "platform": "binary_sensor",
                "unique_id": f"{self.hub_id}_{key}",
                "object_id": f"{hub}_{readable_id(thing.id)}_availability",
                "name": f"{thing.name} availability",
                "device_class": "connectivity",
                "state_topic": self.availability_topic(thing.id),
                "payload_on": ONLINE,
                "payload_off": OFFLINE,
            }
        for thing in entities.lendable:
            key = f"{object_id(thing.id)}_custody"
            topic = self.custody_topic(thing.id)
            components[key] = {
                "platform": "sensor",
                "unique_id": f"{self.hub_id}_{key}",
                "object_id": f"{hub}_{readable_id(thing.id)}_custody",
                "name": f"{thing.name} custody",
                "icon": "mdi:hand-extended",
                "state_topic": topic,
                "value_template": CUSTODY_TEMPLATE,
                "json_attributes_topic": topic,
                "json_attributes_template": CUSTODY_ATTRIBUTES_TEMPLATE,
            }
        return components

    def _build(self, wanted: dict[str, dict[str, Any]]) -> str:
        """The device config: device, origin, availability, and the components (removed ones as their
        platform only), cut to MAX_CONFIG_BYTES in component order if a neighborhood outgrows it."""
        for key in wanted:
            self._removed.pop(key, None)
        for key, component in self._last_wanted.items():
            if key not in wanted:
                self._removed[key] = component["platform"]
        self._last_wanted = wanted
        origin: dict[str, str] = {"name": NAME, "sw": self.version}
        device: dict[str, Any] = {
            "identifiers": [self.hub_id],
            "name": NAME,
            "manufacturer": NAME,
            "model": NAME,
            "sw_version": self.version,
        }
        if self.support_url:
            origin["url"] = self.support_url
            device["configuration_url"] = self.support_url
        components: dict[str, dict[str, Any]] = {
            key: {"platform": platform} for key, platform in sorted(self._removed.items())
        }
        config: dict[str, Any] = {
            "device": device,
            "o": origin,
            "availability_topic": f"{self.base}/hub/status",
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "qos": self.qos,
            "components": components,
        }
        size = len(json.dumps(config, separators=(",", ":")))
        left_out = 0
        for key, component in wanted.items():
            entry = json.dumps({key: component}, separators=(",", ":"))
            if size + len(entry) > MAX_CONFIG_BYTES:
                left_out += 1
                continue
            components[key] = component
            size += len(entry)
        if left_out:
            log.warning(
                "home assistant discovery config full: %d entities left out (limit %d bytes)",
                left_out,
                MAX_CONFIG_BYTES,
            )
        return json.dumps(config, separators=(",", ":"), ensure_ascii=False)


__all__ = [
    "MAX_CONFIG_BYTES",
    "NAME",
    "Entities",
    "HomeAssistantDiscovery",
    "object_id",
    "readable_id",
    "select_entities",
]
