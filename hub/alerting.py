"""Alerting: the rule engine on the ingest path, and everything that follows a transition.

The ingest worker feeds readings and availability to the engine (pure, in memory, no I/O). The few
transitions it produces go through a bounded queue to this service's thread, which in this order
  1. publishes the alert on ``<base>/alerts/<id>`` (retained while open, an empty retained payload when
     cleared), for things every neighbor may see, with the body their share allows;
  2. stores the alert and its history;
  3. works out the addressees from the thing's relations (owner, stewards, lenders, current borrower for
     custody-aware rules, watchers with their own thresholds and quiet hours) and hands one message per
     addressee and channel (Home Assistant, apprise URLs) to the dispatcher, which retries each channel
     on its own worker with backoff, recorded in the delivery log.
A tick each second advances durations, stale checks, debounces and reminders.

The rules are the configured ones (the defaults and the config's) followed by the enabled rules stored in
``alert_rules`` (added by owners and stewards on the web); a change through this service reloads them at
once, and a change by another hub process sharing the store arrives within the 30 s resync.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from hub.domain.alert_rules import HUB_THING, Rule, RuleError, Severity, rule_from_dict, rule_to_dict
from hub.domain.alerts import (
    Addressee,
    Alert,
    AlertEngine,
    AlertError,
    AlertState,
    Detail,
    Transition,
    addressees,
    render,
)
from hub.domain.model import Action, Resident, Share, Thing, Visibility
from hub.domain.permissions import may
from hub.integrations.alert_topics import AlertSnapshot, AlertTopics
from hub.integrations.apprise_channel import apprise_sender
from hub.integrations.delivery import Dispatcher, Message
from hub.integrations.homeassistant import homeassistant_sender
from hub.storage.alertstore import AlertRecord, AlertStore, Delivery, RuleRecord
from hub.storage.catalog import Catalog
from hub.storage.directory import Directory
from hub.telemetry import Telemetry

log = logging.getLogger(__name__)

#: transitions that push a message to the addressees (the others show on the dashboard and in history)
PUSHED = ("opened", "reminder_due", "claimed", "cleared")
#: an unrelated resident: the audience of the alert topics
_ANY_NEIGHBOR = Resident(id="", pseudonym="any neighbor")
_SHARE_DETAIL = {Share.FULL: Detail.FULL, Share.DERIVED: Detail.DERIVED, Share.NONE: Detail.NONE}
#: the pseudo-thing the hub's own alerts are raised on: seen by residents, handled by stewards and admins
#: (their role grants acknowledge_alert on a neighbors-visible thing); owners and stewards related to it
#: are told, like for any thing
HUB = Thing(id=HUB_THING, name="Neighborhood hub", kind="hub", visibility=Visibility.NEIGHBORS)


class AlertPermissionDenied(Exception):
    reason = "forbidden"


class AlertService:
    def __init__(
        self,
        *,
        directory: Directory,
        catalog: Catalog,
        store: AlertStore,
        publish: Callable[[str, str, int, bool], None],
        telemetry: Telemetry,
        rules: Sequence[Rule],
        base_topic: str = "neighborhood",
        custody: Callable[[str], str | None] = lambda _thing: None,
        clock: Callable[[], float] = time.time,
        max_pending: int = 10_000,
    ) -> None:
        self.directory = directory
        self.catalog = catalog
        self.store = store
        self.telemetry = telemetry
        self.custody = custody
        self.clock = clock
        self.topics = AlertTopics(publish, base_topic)
        #: the defaults and the config's rules; stored rules come after them (``reload_rules``)
        self.configured: tuple[Rule, ...] = tuple(rules)
        self.engine = AlertEngine(rules, now=clock())
        self._stored: tuple[Rule, ...] = ()
        self._rules_lock = threading.Lock()  # one reload at a time: a slower, older read never wins
        self.lock = threading.Lock()  # the engine is fed by the ingest worker, the tick and residents
        self._queue: queue.Queue[Transition | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._known: set[str] = set()
        self._prepared = False
        self.dispatcher = Dispatcher(
            {
                "homeassistant": homeassistant_sender(store.endpoint),
                "apprise": apprise_sender(store.endpoint),
            },
            store,
            drops=telemetry.drops,
            compose=self._compose,
        )
        telemetry.gauge("hub_alerts_open", "Open alerts", lambda: len(self.engine.open_alerts()))
        telemetry.gauge("hub_alert_queue_depth", "Alert transitions waiting", self._queue.qsize)

    # -- life -----------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Load the registered things and the open alerts, before the first message is evaluated."""
        self.sync_things(self.clock())
        self.reload_rules()  # before restoring: alerts of stored rules are taken back too
        self.engine.restore(_alert(record) for record in self.store.active_alerts())
        self._prepared = True

    def start(self) -> None:
        if not self._prepared:
            self.prepare()
        now = self.clock()
        self.dispatcher.start()
        self.dispatcher.resume(now)
        self._thread = threading.Thread(target=self._run, name="alerting", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is None:
            return  # never started
        self._queue.put(None)
        self._thread.join(10)
        self.dispatcher.stop()

    def sync_things(self, now: float) -> None:
        """Evaluate every registered thing (things registered by another process arrive within a tick)."""
        things = {thing.id: thing for thing in self.directory.things() if not thing.retired}
        with self.lock:
            for thing_id in self._known - set(things):
                self._emit_all(self.engine.remove_thing(thing_id, now))
            for thing_id in set(things) - self._known:
                self.engine.add_thing(things[thing_id], now)
        self._known = set(things)

    # -- the hot path (ingest worker): memory only ----------------------------------------------------
    def on_reading(self, thing: str, values: dict[str, float | bool], at: float) -> None:
        with self.lock:
            transitions = self.engine.on_reading(thing, values, at)
        self._emit_all(transitions)

    def on_availability(self, thing: str, online: bool, at: float) -> None:
        with self.lock:
            transitions = self.engine.on_availability(thing, online, at)
        self._emit_all(transitions)

    def overdue(self, thing: str, loan_id: str) -> None:
        with self.lock:
            transitions = self.engine.overdue(thing, loan_id, self.clock())
        self._emit_all(transitions)

    def loan_returned(self, thing: str, loan_id: str) -> None:
        with self.lock:
            transitions = self.engine.loan_returned(thing, loan_id, self.clock())
        self._emit_all(transitions)

    def hub_condition(self, condition: str, active: bool, value: float | None = None) -> None:
        """A condition of the hub itself (``HubCondition`` rules, e.g. ``spool_full``) began or ended.

        The pseudo-thing ``hub`` is registered the first time a condition begins, so a hub that never
        had one shows no extra thing. Called from any thread."""
        now = self.clock()
        if active and HUB_THING not in self._known:
            if self.directory.thing(HUB_THING) is None:
                self.directory.create_thing(replace(HUB, created_at=now), owner=None, actor=None, now=now)
                self.catalog.invalidate()
            self.sync_things(now)
        with self.lock:
            transitions = self.engine.hub_condition(condition, active, now, value)
        self._emit_all(transitions)

    def _emit_all(self, transitions: Sequence[Transition]) -> None:
        for transition in transitions:
            try:
                self._queue.put_nowait(transition)
            except queue.Full:
                self.telemetry.drops.labels("alert_transitions").inc()

    # -- residents acting on alerts -------------------------------------------------------------------
    def act(self, alert_id: str, resident_id: str, action: str, note: str = "") -> Alert:
        """acknowledge, claim, release or clear an alert, when the permission function allows it."""
        now = self.clock()
        alert = self.engine.get(alert_id)
        thing = self.catalog.thing(alert.thing) if alert else None
        resident = self.directory.resident(resident_id)
        if (
            alert is None
            or thing is None
            or resident is None
            or not may(resident, Action.ACKNOWLEDGE_ALERT, thing, self.catalog.relations(thing.id), now)
        ):
            raise AlertPermissionDenied(f"no open alert {alert_id!r} that this resident may act on")
        with self.lock:
            if action == "acknowledge":
                transition = self.engine.acknowledge(alert_id, resident_id, now)
            elif action == "claim":
                transition = self.engine.claim(alert_id, resident_id, now, note)
            elif action == "release":
                transition = self.engine.release(alert_id, resident_id, now)
            elif action == "clear":
                transition = self.engine.clear_manually(alert_id, resident_id, now)
            else:
                raise AlertError("bad_state", f"no such action {action!r}")
        self._emit_all([transition])
        return transition.alert

    def open_alerts(self) -> list[Alert]:
        with self.lock:
            return self.engine.open_alerts()

    # -- rules stored on the web --------------------------------------------------------------------
    def configured_rules(self) -> tuple[Rule, ...]:
        """The defaults and the config's rules: shown on the web, changed only in the config."""
        return self.configured

    def stored_rules(self, thing: str | None = None) -> list[RuleRecord]:
        """Rules kept in the store (enabled or not), all or one thing's, oldest first."""
        return self.store.rules(thing=thing)

    def add_rule(self, thing: str, data: Mapping[str, Any], *, created_by: str | None) -> RuleRecord:
        """Store a rule for one thing and apply it now. ``data`` is ``rule_to_dict`` data without ``id``
        and ``thing`` (the hub names the rule); raises ``RuleError`` naming the field that is wrong.

        The caller has asked the permission function (manage) for ``created_by`` on ``thing``.
        """
        for key in ("id", "thing", "thing_kind"):
            if key in data:
                raise RuleError(f"rule: {key!r} is set by the hub for a rule added to a thing")
        kind = data.get("kind")
        rule = rule_from_dict({**data, "id": f"{kind}-{secrets.token_hex(4)}", "thing": thing})
        record = self.store.add_rule(rule_to_dict(rule), created_by=created_by, now=self.clock())
        self.reload_rules()
        return record

    def update_rule(
        self, rule_id: str, data: Mapping[str, Any] | None = None, *, enabled: bool | None = None
    ) -> RuleRecord | None:
        """Change a stored rule's terms (same id, thing and kind) or turn it on or off; None if unknown."""
        if data is not None:
            data = rule_to_dict(rule_from_dict(data))
        record = self.store.update_rule(rule_id, data, enabled=enabled)
        if record is not None:
            self.reload_rules()
        return record

    def delete_rule(self, rule_id: str) -> bool:
        """Remove a stored rule; its open alerts clear. False when there is none with this id."""
        deleted = self.store.delete_rule(rule_id)
        if deleted:
            self.reload_rules()
        return deleted

    def reload_rules(self, *, only_if_changed: bool = False) -> None:
        """Apply the configured rules plus the enabled stored ones (``engine.set_rules``).

        A stored rule this hub cannot read (written by a newer hub, or naming an id the config uses)
        is skipped with a log line, never a reason to stop alerting.
        """
        with self._rules_lock:
            taken = {rule.id for rule in self.configured}
            stored: list[Rule] = []
            for record in self.store.rules(enabled_only=True):
                try:
                    rule = rule_from_dict(record.data)
                except RuleError as exc:
                    log.warning("stored alert rule skipped rule=%s error=%s", record.id, exc)
                    continue
                if rule.id in taken:
                    log.warning("stored alert rule skipped rule=%s error=its id is taken", record.id)
                    continue
                taken.add(rule.id)
                stored.append(rule)
            if only_if_changed and tuple(stored) == self._stored:
                return
            with self.lock:
                transitions = self.engine.set_rules([*self.configured, *stored], self.clock())
            self._stored = tuple(stored)
        log.info("alert rules loaded configured=%d stored=%d", len(self.configured), len(stored))
        self._emit_all(transitions)

    # -- the service thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        next_tick = time.monotonic() + 1.0
        next_sync = time.monotonic() + 30.0
        while not self._stop.is_set():
            try:
                transition = self._queue.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                transition = None
            if transition is not None:
                try:
                    self.handle(transition)
                except Exception:  # one bad transition must not stop alerting
                    log.exception("alert handling failed alert=%s", transition.alert.id)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + 1.0
                with self.lock:
                    ticked = self.engine.tick(self.clock())
                self._emit_all(ticked)
            if time.monotonic() >= next_sync:
                next_sync = time.monotonic() + 30.0
                try:
                    self.sync_things(self.clock())
                    self.reload_rules(only_if_changed=True)
                    self.dispatcher.resume(self.clock())
                except Exception:
                    log.exception("alert resync failed")

    def handle(self, transition: Transition) -> None:
        alert = transition.alert
        thing = self.catalog.thing(alert.thing)
        if thing is None:
            return
        now = self.clock()
        relations = self.catalog.relations(thing.id)
        names = {r.id: r for r in self.directory.residents()}
        # 1. the alert topic first: it is what the latency target is about
        if may(_ANY_NEIGHBOR, Action.SEE, thing, relations, now):
            if alert.state is AlertState.CLEARED:
                self.topics.clear(alert.id)
            else:
                detail = _SHARE_DETAIL[thing.watcher_share]
                title, body = render(alert, detail, thing)
                self.topics.publish(
                    AlertSnapshot(
                        alert.id,
                        thing.id,
                        alert.kind,
                        alert.severity.value,
                        alert.state.value,
                        title,
                        body,
                        alert.opened_at,
                        alert.updated_at,
                        acknowledged_by=_pseudonym(names, alert.acknowledged_by),
                        claimed_by=_pseudonym(names, alert.claimed_by),
                    )
                )
        # 2. the record and its history
        title, body = render(alert, Detail.FULL, thing)
        self.store.upsert_alert(_record(alert, body))
        self.store.append_event(alert.id, transition.kind, time=transition.at, actor=transition.by)
        # 3. the people to tell, on every channel they added
        if transition.kind not in PUSHED:
            return
        borrower = self.custody(thing.id) if alert.custody_aware else None
        told = addressees(alert, thing, relations, now, residents=names, custody_borrower=borrower)
        for addressee in told:
            if addressee.quiet and alert.severity is not Severity.CRITICAL:
                continue  # quiet hours: on the dashboard and in the history, no push
            self._push(alert, thing, addressee, transition, names)

    def _push(
        self, alert: Alert, thing: Thing, who: Addressee, transition: Transition, names: dict[str, Resident]
    ) -> None:
        if transition.by == who.resident and transition.kind != "cleared":
            return  # the resident who claimed it does not need telling
        by = _pseudonym(names, transition.by)
        title, body = render(alert, who.detail, thing, by=by)
        for endpoint in self.store.endpoints(who.resident):
            if not endpoint.enabled:
                continue
            channel = f"{endpoint.kind}:{endpoint.channel_id}"
            delivery = self.store.enqueue(alert.id, who.resident, channel, transition.kind, now=self.clock())
            self.dispatcher.submit(
                Message(
                    delivery,
                    channel,
                    who.resident,
                    title,
                    body,
                    alert.id,
                    alert.severity.value,
                    data={"state": alert.state.value},
                )
            )

    def _compose(self, row: Delivery) -> Message | None:
        """Rebuild a pending message after a restart; None when there is nothing left worth sending."""
        record = self.store.alert(row.alert_id) if row.alert_id else None
        thing = self.catalog.thing(record.thing) if record else None
        if record is None or thing is None or row.resident is None:
            return None
        if row.message == "reminder_due" and record.state != AlertState.ACTIVE.value:
            return None
        alert = self.engine.get(record.id) or _alert(record)
        detail = next(
            (
                a.detail
                for a in addressees(
                    alert,
                    thing,
                    self.catalog.relations(thing.id),
                    self.clock(),
                    residents={r.id: r for r in self.directory.residents()},
                    custody_borrower=self.custody(thing.id),
                )
                if a.resident == row.resident
            ),
            None,
        )
        if detail is None:
            return None  # no longer someone to tell (relation ended, resident erased)
        title, body = render(alert, detail, thing)
        return Message(
            row.id,
            row.channel,
            row.resident,
            title,
            body,
            record.id,
            record.severity,
            data={"state": record.state},
            attempts=row.attempts,
        )


def _pseudonym(names: dict[str, Resident], resident: str | None) -> str | None:
    if resident is None:
        return None
    person = names.get(resident)
    return person.pseudonym if person else None


def _record(alert: Alert, body: str) -> AlertRecord:
    value = (
        alert.value if isinstance(alert.value, int | float) and not isinstance(alert.value, bool) else None
    )
    return AlertRecord(
        alert.id,
        alert.rule,
        alert.thing,
        alert.kind,
        alert.severity.value,
        alert.state.value,
        body,
        alert.opened_at,
        alert.updated_at,
        value=value,
        cleared_at=alert.cleared_at,
        acknowledged_by=alert.acknowledged_by,
        acknowledged_at=alert.acknowledged_at,
        claimed_by=alert.claimed_by,
        claimed_at=alert.claimed_at,
        triggers=alert.triggers,
    )


def _alert(record: AlertRecord) -> Alert:
    return Alert(
        record.id,
        record.rule_id,
        record.thing,
        record.kind,
        Severity(record.severity),
        record.opened_at,
        record.updated_at,
        state=AlertState(record.state),
        value=record.value,
        triggers=record.triggers,
        acknowledged_by=record.acknowledged_by,
        acknowledged_at=record.acknowledged_at,
        claimed_by=record.claimed_by,
        claimed_at=record.claimed_at,
        cleared_at=record.cleared_at,
    )
