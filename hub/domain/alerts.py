"""The alert engine: rules evaluated on readings, availability and loans; the alert lifecycle; addressees
from relations; messages in plain words. Pure: every time is a parameter and nothing here does I/O.

Lifecycle: ``active`` → ``acknowledged`` or ``claimed`` ("I'm going to check the flood sensor") →
``cleared``. A claim also acknowledges; a claimer may release the claim (back to acknowledged). A
re-trigger of an open alert updates it (value, trigger count) and never opens a duplicate. Alerts still
``active`` are reminded by severity until someone acknowledges them.

The engine keeps per-(rule, thing) state in memory only. A reading touches only the rules indexed under
its thing and measurements (cached per thing and measurement), so evaluation is O(1) per reading per
applicable rule. Durations, stale checks and debounce expiries advance in ``tick(now)``. Only things the
engine was told about (``AlertEngine(things=...)``, ``add_thing``) are evaluated, which keeps its memory
bounded by the registry, not by whatever ids arrive on the broker. Feed events in arrival order with the
arrival time as ``at``: durations are measured on the hub's clock, not on the devices'.

Callers ask ``permissions.may(..., Action.ACKNOWLEDGE_ALERT, ...)`` before acknowledge, claim, release or
clear; the engine checks only that the step exists in the lifecycle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final, Literal, TypeVar

from hub.domain.alert_rules import (
    HUB_THING,
    BooleanRule,
    HubCondition,
    LowBattery,
    Offline,
    OverdueLoan,
    RateOfChange,
    Rule,
    Severity,
    Stale,
    Threshold,
)
from hub.domain.events import Value
from hub.domain.model import Action, Relation, RelationKind, Resident, Thing
from hub.domain.permissions import active_relations, may
from hub.domain.vocabulary import unit_of

MINUTE: Final[float] = 60.0
HOUR: Final[float] = 3600.0

#: How often an alert nobody acknowledged is sent again; None: never.
REMINDER_INTERVAL_S: Final[Mapping[Severity, float | None]] = {
    Severity.CRITICAL: 15 * MINUTE,
    Severity.MAJOR: HOUR,
    Severity.MINOR: 6 * HOUR,
    Severity.WARNING: 24 * HOUR,
    Severity.INFO: None,
}

#: Past this many (thing, measurement) entries the rule cache starts afresh (it is rebuilt on demand).
_CACHE_LIMIT: Final = 200_000


class AlertState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLAIMED = "claimed"
    CLEARED = "cleared"


Direction = Literal["above", "below", "rise", "fall"]
TransitionKind = Literal[
    "opened", "retriggered", "acknowledged", "claimed", "released", "cleared", "reminder_due"
]


@dataclass(frozen=True, slots=True)
class Alert:
    """A rule that fired on a thing. ``id`` is ``<rule>-<thing>-<int(opened_at)>``, stable for MQTT.

    ``value`` is the latest value the rule saw, ``peak`` the worst one while open (highest for ``above``
    and ``rise``, lowest for ``below``), ``limit`` the level crossed and ``clear_limit`` the level that
    clears it; ``window_s`` is the rule's duration (minimum duration, rate window, staleness, debounce).
    """

    id: str
    rule: str
    thing: str
    kind: str
    severity: Severity
    opened_at: float
    updated_at: float
    state: AlertState = AlertState.ACTIVE
    measurement: str | None = None
    value: Value | None = None
    peak: Value | None = None
    limit: float | None = None
    clear_limit: float | None = None
    direction: Direction | None = None
    window_s: float = 0.0
    change: float | None = None  # rate of change: the movement within the window
    triggers: int = 1
    custody_aware: bool = False
    loan: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    claimed_by: str | None = None
    claimed_at: float | None = None
    claim_note: str = ""
    cleared_at: float | None = None
    cleared_by: str | None = None  # a resident who cleared it by hand; None when the condition cleared
    reminded_at: float | None = None
    reminders: int = 0

    @property
    def open(self) -> bool:
        return self.state is not AlertState.CLEARED


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of one alert: what happened, the alert after it, when, and who did it (if a person)."""

    kind: TransitionKind
    alert: Alert
    at: float
    by: str | None = None


AlertErrorReason = Literal["unknown_alert", "bad_state", "already_claimed", "not_claimer"]


class AlertError(Exception):
    """A lifecycle step the alert cannot take. ``reason`` is a stable code, ``detail`` says why."""

    def __init__(self, reason: AlertErrorReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def reminders_due(
    alerts: Iterable[Alert],
    now: float,
    *,
    intervals: Mapping[Severity, float | None] = REMINDER_INTERVAL_S,
) -> list[Transition]:
    """A ``reminder_due`` for each active (unacknowledged) alert whose severity's interval has passed.

    Counted from the last reminder, else from the opening. After a long outage one reminder is due, not
    one for each missed interval. The transitions carry the alert with ``reminded_at`` and ``reminders``
    updated; the caller stores it.
    """
    due: list[Transition] = []
    for alert in alerts:
        interval = intervals.get(alert.severity)
        if alert.state is not AlertState.ACTIVE or interval is None:
            continue
        last = alert.reminded_at if alert.reminded_at is not None else alert.opened_at
        if now - last >= interval:
            reminded = replace(alert, reminded_at=now, reminders=alert.reminders + 1)
            due.append(Transition("reminder_due", reminded, now))
    return due


# --- the engine ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    """What one rule remembers about one thing."""

    alert: Alert | None = None
    tripped: bool = False  # the last input tripped the rule (a re-trigger needs a fresh crossing)
    since: float | None = None  # the condition holds since (waiting for a minimum duration/debounce)
    online_since: float | None = None  # offline rules: back online since
    value: Value | None = None  # thresholds: the latest tripping value, for an opening from tick()
    direction: Direction | None = None  # thresholds: which side it tripped on
    low: deque[tuple[float, float]] | None = None  # rate: increasing values in the window
    high: deque[tuple[float, float]] | None = None  # rate: decreasing values in the window
    # An open alert's newer value and worst value, folded into ``alert`` only when someone looks
    # (a transition, get, open_alerts): the hot path allocates nothing for an alert that stays open.
    latest: Value | None = None
    peak: Value | None = None
    dirty: bool = False


_Levels = tuple[float | None, float | None, float | None, float | None]


_Key = tuple[str, str]  # (rule id, thing id)
_Evaluator = Callable[[Rule, _Key, "_State | None", Value, float, "_Levels | None"], Transition | None]
_Entry = tuple[_Key, Rule, _Evaluator, "_Levels | None"]
_R = TypeVar(
    "_R", Threshold, RateOfChange, BooleanRule, Stale, Offline, LowBattery, OverdueLoan, HubCondition
)


class AlertEngine:
    """Evaluates rules on the hot path and keeps the open alerts, one per (rule, thing)."""

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        things: Iterable[Thing] = (),
        *,
        now: float = 0.0,
        reminder_intervals: Mapping[Severity, float | None] = REMINDER_INTERVAL_S,
    ) -> None:
        """``now`` starts the stale clock of the ``things`` given (a silent thing alerts after a restart)."""
        self._rules: dict[str, Rule] = {}
        self._kinds: dict[str, str] = {}
        self._last_seen: dict[str, float] = {}
        self._states: dict[_Key, _State] = {}
        self._by_id: dict[str, _Key] = {}
        self._last_base: dict[_Key, tuple[str, int]] = {}
        self._pending: set[_Key] = set()  # thresholds waiting for their minimum duration
        self._watching: set[_Key] = set()  # offline rules waiting for a debounce to expire
        self._stale_open: dict[str, set[_Key]] = {}
        self._cache: dict[tuple[str, str], tuple[_Entry, ...]] = {}
        self._intervals = reminder_intervals
        self._evaluators: dict[type, _Evaluator] = {
            Threshold: self._eval_threshold,
            LowBattery: self._eval_threshold,
            RateOfChange: self._eval_rate,
            BooleanRule: self._eval_boolean,
        }
        for thing in things:
            self.add_thing(thing, now)
        self.set_rules(rules, now)

    # -- configuration -----------------------------------------------------------------------------

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(self._rules.values())

    def set_rules(self, rules: Iterable[Rule], now: float) -> list[Transition]:
        """Replace the rules. Open alerts of removed rules are cleared (returned); a changed rule keeps
        its open alerts and judges them by its new terms from the next input."""
        new: dict[str, Rule] = {}
        for rule in rules:
            if rule.id in new:
                raise ValueError(f"two alert rules share the id {rule.id!r}")
            new[rule.id] = rule
        out: list[Transition] = []
        for key in sorted(self._states):
            rule_id, _ = key
            if rule_id not in new:
                out.extend(self._close(key, now, by=None))
                self._drop(key)
            elif new[rule_id] != self._rules.get(rule_id):
                state = self._states[key]
                _fresh(state)
                self._states[key] = _State(alert=state.alert, tripped=state.alert is not None)
                self._pending.discard(key)
                if isinstance(new[rule_id], Offline) and state.alert is not None:
                    self._states[key].since = state.alert.opened_at
                    self._watching.add(key)
        self._rules = new
        self._cache.clear()
        return out

    def add_thing(self, thing: Thing, now: float) -> None:
        """Evaluate rules for this thing from now on (its stale clock starts at ``now``)."""
        if self._kinds.get(thing.id) != thing.kind:
            self._cache.clear()
        self._kinds[thing.id] = thing.kind
        self._last_seen.setdefault(thing.id, now)

    def remove_thing(self, thing_id: str, now: float) -> list[Transition]:
        """Stop evaluating a thing (retired, deleted); its open alerts are cleared and returned."""
        out: list[Transition] = []
        for key in sorted(k for k in self._states if k[1] == thing_id):
            out.extend(self._close(key, now, by=None))
            self._drop(key)
        self._kinds.pop(thing_id, None)
        self._last_seen.pop(thing_id, None)
        self._cache.clear()
        return out

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Take back the open alerts stored before a restart, so a re-trigger updates them.

        Alerts of unknown rules or things, and cleared ones, are ignored. An offline alert waits for the
        device to be back online for the debounce time, as if it had just gone offline.
        """
        for alert in alerts:
            rule = self._rules.get(alert.rule)
            if not alert.open or rule is None or alert.thing not in self._kinds:
                continue
            key = (alert.rule, alert.thing)
            self._states[key] = _State(alert=alert, tripped=True, since=alert.opened_at)
            self._by_id[alert.id] = key
            self._last_base[key] = (alert.id, 1)
            if isinstance(rule, Offline):
                self._watching.add(key)
            if isinstance(rule, Stale):
                self._stale_open.setdefault(alert.thing, set()).add(key)

    def open_alerts(self) -> list[Alert]:
        """The open alerts, oldest first."""
        found = [a for s in self._states.values() if (a := _fresh(s)) is not None]
        return sorted(found, key=lambda a: (a.opened_at, a.id))

    def get(self, alert_id: str) -> Alert | None:
        key = self._by_id.get(alert_id)
        state = self._states.get(key) if key is not None else None
        return _fresh(state) if state is not None else None

    # -- inputs ------------------------------------------------------------------------------------

    def on_reading(self, thing: str, values: Mapping[str, Value], at: float) -> list[Transition]:
        """Evaluate a reading of a known thing (unknown things are ignored). Hot path: no I/O."""
        if thing not in self._kinds:
            return []
        self._last_seen[thing] = at
        out: list[Transition] = []
        stale = self._stale_open.get(thing)
        if stale:
            for key in sorted(stale):
                out.extend(self._close(key, at, by=None, value=None))
                self._states.pop(key, None)
            del self._stale_open[thing]
        for measurement, value in values.items():
            entry = self._cache.get((thing, measurement))
            if entry is None:
                entry = self._index(thing, measurement)
            for key, rule, evaluate, levels in entry:
                transition = evaluate(rule, key, self._states.get(key), value, at, levels)
                if transition is not None:
                    out.append(transition)
        return out

    def on_availability(self, thing: str, online: bool, at: float) -> list[Transition]:
        """Evaluate an availability message (``online``/``offline``) for the offline rules."""
        if thing not in self._kinds:
            return []
        out: list[Transition] = []
        for rule in self._rules_of(thing, Offline):
            key = (rule.id, thing)
            state = self._states.setdefault(key, _State())
            out.extend(self._settle_offline(rule, key, state, at))
            state = self._states.setdefault(key, state)
            if not online:
                state.online_since = None
                if state.alert is not None:
                    if not state.tripped:
                        out.append(self._retrigger(key, state, None, at))
                else:
                    if state.since is None:
                        state.since = at
                    if at - state.since >= rule.debounce_s:
                        out.append(self._open(rule, thing, state, None, at))
                state.tripped = True
                self._watching.add(key)
            elif state.tripped:
                state.tripped = False
                state.online_since = at
                out.extend(self._settle_offline(rule, key, state, at))
        return out

    def overdue(self, thing: str, loan_id: str, now: float) -> list[Transition]:
        """A loan of ``thing`` is overdue (from the lending notices): open, or re-trigger, its alert."""
        if thing not in self._kinds:
            return []
        out: list[Transition] = []
        for rule in self._rules_of(thing, OverdueLoan):
            key = (rule.id, thing)
            state = self._states.setdefault(key, _State())
            if state.alert is None:
                out.append(self._open(rule, thing, state, None, now, loan=loan_id))
            else:
                state.tripped = False
                out.append(self._retrigger(key, state, None, now, loan=loan_id))
        return out

    def loan_returned(self, thing: str, loan_id: str, now: float) -> list[Transition]:
        """The loan is back (or settled): clear the overdue alerts raised for it."""
        out: list[Transition] = []
        for rule in self._rules_of(thing, OverdueLoan):
            key = (rule.id, thing)
            state = self._states.get(key)
            if state is not None and state.alert is not None and state.alert.loan == loan_id:
                out.extend(self._close(key, now, by=None))
                self._states.pop(key, None)
        return out

    def hub_condition(
        self, condition: str, active: bool, now: float, value: float | None = None
    ) -> list[Transition]:
        """A condition of the hub itself began (open, or re-trigger, its alert) or ended (clear it)."""
        if HUB_THING not in self._kinds:
            return []
        out: list[Transition] = []
        for rule in self._rules_of(HUB_THING, HubCondition):
            if rule.condition != condition:
                continue
            key = (rule.id, HUB_THING)
            state = self._states.setdefault(key, _State())
            if not active:
                out.extend(self._close(key, now, by=None, value=value))
            elif state.alert is None:
                out.append(self._open(rule, HUB_THING, state, value, now))
            else:
                out.append(self._retrigger(key, state, value, now))
        return out

    def tick(self, now: float) -> list[Transition]:
        """Advance time: minimum durations, stale things, offline debounces, reminders."""
        out: list[Transition] = []
        for key in sorted(self._pending):
            threshold = self._rules.get(key[0])
            state = self._states.get(key)
            if not isinstance(threshold, Threshold | LowBattery) or state is None or state.since is None:
                self._pending.discard(key)
                continue
            if state.alert is None and now - state.since >= _for_s(threshold):
                out.append(self._open(threshold, key[1], state, state.value, now, direction=state.direction))
        for key in sorted(self._watching):
            offline = self._rules.get(key[0])
            state = self._states.get(key)
            if not isinstance(offline, Offline) or state is None:
                self._watching.discard(key)
                continue
            out.extend(self._settle_offline(offline, key, state, now))
        for rule in self._rules.values():
            if isinstance(rule, Stale):
                out.extend(self._check_stale(rule, now))
        out.extend(self._remind(now))
        return out

    # -- lifecycle ---------------------------------------------------------------------------------

    def acknowledge(self, alert_id: str, resident: str, now: float) -> Transition:
        """``resident`` has seen the alert; reminders stop. Only an active alert can be acknowledged."""
        key, alert = self._find(alert_id)
        if alert.state is AlertState.ACKNOWLEDGED:
            raise AlertError("bad_state", f"alert {alert_id} was already acknowledged")
        if alert.state is AlertState.CLAIMED:
            raise AlertError("bad_state", f"alert {alert_id} is already claimed by someone handling it")
        changed = replace(
            alert,
            state=AlertState.ACKNOWLEDGED,
            acknowledged_by=resident,
            acknowledged_at=now,
            updated_at=now,
        )
        return self._set(key, changed, "acknowledged", now, resident)

    def claim(self, alert_id: str, resident: str, now: float, note: str = "") -> Transition:
        """``resident`` takes care of it ("I'm going to check the flood sensor"); shown to all addressees.

        A claim acknowledges too. The claimer may claim again to change the note; nobody else may claim
        a claimed alert until it is released.
        """
        key, alert = self._find(alert_id)
        if alert.state is AlertState.CLAIMED and alert.claimed_by != resident:
            raise AlertError("already_claimed", f"alert {alert_id} is already claimed by someone else")
        changed = replace(
            alert,
            state=AlertState.CLAIMED,
            claimed_by=resident,
            claimed_at=now if alert.claimed_by != resident else alert.claimed_at,
            claim_note=note.strip(),
            acknowledged_by=alert.acknowledged_by or resident,
            acknowledged_at=alert.acknowledged_at if alert.acknowledged_at is not None else now,
            updated_at=now,
        )
        return self._set(key, changed, "claimed", now, resident)

    def release(self, alert_id: str, resident: str, now: float) -> Transition:
        """The claimer gives the alert back (it stays acknowledged); others may claim it then."""
        key, alert = self._find(alert_id)
        if alert.state is not AlertState.CLAIMED:
            raise AlertError("bad_state", f"alert {alert_id} is not claimed")
        if alert.claimed_by != resident:
            raise AlertError("not_claimer", f"only the resident who claimed alert {alert_id} can release it")
        changed = replace(
            alert,
            state=AlertState.ACKNOWLEDGED,
            claimed_by=None,
            claimed_at=None,
            claim_note="",
            updated_at=now,
        )
        return self._set(key, changed, "released", now, resident)

    def clear_manually(self, alert_id: str, resident: str, now: float) -> Transition:
        """A resident clears the alert by hand. The rule starts afresh for that thing: if the condition
        still holds it raises a new alert (after its minimum duration, staleness or debounce from now)."""
        key, _ = self._find(alert_id)
        [transition] = self._close(key, now, by=resident)
        rule = self._rules.get(key[0])
        state = self._states.get(key)
        if isinstance(rule, Offline) and state is not None and state.tripped:
            self._states[key] = _State(tripped=True, since=now)
            self._watching.add(key)
        else:
            self._drop(key)
        if isinstance(rule, Stale):
            self._last_seen[key[1]] = now
        return transition

    # -- evaluation --------------------------------------------------------------------------------

    def _index(self, thing: str, measurement: str) -> tuple[_Entry, ...]:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        kind = self._kinds[thing]
        entry = tuple(
            ((rule.id, thing), rule, self._evaluators[type(rule)], _levels(rule))
            for rule in self._rules.values()
            if isinstance(rule, Threshold | LowBattery | RateOfChange | BooleanRule)
            and rule.measurement == measurement
            and rule.scope.covers(thing, kind)
        )
        self._cache[(thing, measurement)] = entry
        return entry

    def _rules_of(self, thing: str, cls: type[_R]) -> list[_R]:
        kind = self._kinds.get(thing)
        if kind is None:
            return []
        return [r for r in self._rules.values() if isinstance(r, cls) and r.scope.covers(thing, kind)]

    def _eval_threshold(
        self, rule: Rule, key: _Key, state: _State | None, value: Value, at: float, levels: _Levels | None
    ) -> Transition | None:
        if value.__class__ is bool or levels is None:
            return None
        above, below, clear_below, clear_above = levels
        high = above is not None and value > above
        low = below is not None and value < below
        if state is None:
            if not (high or low):
                return None  # the common case: nothing to remember
            state = self._states[key] = _State()
        if state.alert is not None:
            if high or low:
                if not state.tripped:
                    state.tripped = True
                    return self._retrigger(key, state, value, at)
                _note(state, value)
                return None
            state.tripped = False
            cleared_high = above is None or (
                value < clear_below if clear_below is not None else value <= above
            )
            cleared_low = below is None or (
                value > clear_above if clear_above is not None else value >= below
            )
            if cleared_high and cleared_low:
                [transition] = self._close(key, at, by=None, value=value)
                self._drop(key)
                return transition
            _note(state, value)
            return None
        if not (high or low):
            self._drop(key)
            return None
        state.tripped = True
        state.value = value
        state.direction = "above" if high else "below"
        if state.since is None:
            state.since = at
        if at - state.since >= _for_s(rule):
            return self._open(rule, key[1], state, value, at, direction=state.direction)
        self._pending.add(key)
        return None

    def _eval_rate(
        self, rule: Rule, key: _Key, state: _State | None, value: Value, at: float, levels: _Levels | None
    ) -> Transition | None:
        assert isinstance(rule, RateOfChange)
        if isinstance(value, bool):
            return None
        if state is None:
            state = self._states[key] = _State()
        if state.low is None or state.high is None:
            state.low, state.high = deque(), deque()
        v = float(value)
        low, high = state.low, state.high
        while low and low[-1][1] >= v:
            low.pop()
        low.append((at, v))
        while high and high[-1][1] <= v:
            high.pop()
        high.append((at, v))
        start = at - rule.per_s
        while low[0][0] < start:
            low.popleft()
        while high[0][0] < start:
            high.popleft()
        rise, fall = v - low[0][1], high[0][1] - v
        direction: Direction | None = None
        if rule.direction != "fall" and rise > rule.max_delta:
            direction = "rise"
        elif rule.direction != "rise" and fall > rule.max_delta:
            direction = "fall"
        if direction is None:
            state.tripped = False
            if state.alert is not None:
                [transition] = self._close(key, at, by=None, value=v)
                self._states[key] = _State(low=low, high=high)
                return transition
            return None
        change = rise if direction == "rise" else -fall
        if state.alert is None:
            state.tripped = True
            return self._open(rule, key[1], state, v, at, direction=direction, change=change)
        if state.tripped:
            _note(state, v)
            return None
        state.tripped = True
        return self._retrigger(key, state, v, at, change=change)

    def _eval_boolean(
        self, rule: Rule, key: _Key, state: _State | None, value: Value, at: float, levels: _Levels | None
    ) -> Transition | None:
        assert isinstance(rule, BooleanRule)
        if not isinstance(value, bool):
            return None
        if value is rule.when:
            if state is None:
                state = self._states[key] = _State()
            state.tripped = True
            return self._open(rule, key[1], state, value, at) if state.alert is None else None
        if state is not None and state.alert is not None:
            [transition] = self._close(key, at, by=None, value=value)
            self._drop(key)
            return transition
        if state is not None:
            self._drop(key)
        return None

    def _settle_offline(self, rule: Offline, key: _Key, state: _State, now: float) -> list[Transition]:
        """Apply what the passing of time decides: offline long enough → open; online long enough → back."""
        if state.tripped:
            if state.alert is None and state.since is not None and now - state.since >= rule.debounce_s:
                return [self._open(rule, key[1], state, None, now)]
            return []
        if state.online_since is None or now - state.online_since < rule.debounce_s:
            return []
        out = self._close(key, now, by=None) if state.alert is not None else []
        self._drop(key)
        return out

    def _check_stale(self, rule: Stale, now: float) -> list[Transition]:
        out: list[Transition] = []
        for thing, kind in self._kinds.items():
            if not rule.scope.covers(thing, kind):
                continue
            key = (rule.id, thing)
            state = self._states.get(key)
            if state is not None and state.alert is not None:
                continue
            if now - self._last_seen.get(thing, now) >= rule.after_s:
                state = self._states.setdefault(key, _State())
                out.append(self._open(rule, thing, state, None, now))
                self._stale_open.setdefault(thing, set()).add(key)
        return out

    def _remind(self, now: float) -> list[Transition]:
        # Judged on the stored alerts (reminder times never wait in a state); only the due ones are folded.
        waiting = sorted(
            (s.alert for s in self._states.values() if s.alert is not None), key=lambda a: (a.opened_at, a.id)
        )
        out: list[Transition] = []
        for due in reminders_due(waiting, now, intervals=self._intervals):
            state = self._states[self._by_id[due.alert.id]]
            current = _fresh(state)
            assert current is not None
            state.alert = replace(current, reminded_at=due.alert.reminded_at, reminders=due.alert.reminders)
            out.append(Transition("reminder_due", state.alert, now))
        return out

    # -- alert bookkeeping -------------------------------------------------------------------------

    def _open(
        self,
        rule: Rule,
        thing: str,
        state: _State,
        value: Value | None,
        at: float,
        *,
        direction: Direction | None = None,
        change: float | None = None,
        loan: str | None = None,
    ) -> Transition:
        key = (rule.id, thing)
        direction = direction or _direction_of(rule)
        limit, clear_limit = _limits_of(rule, direction)
        alert = Alert(
            id=self._new_id(key, at),
            rule=rule.id,
            thing=thing,
            kind=rule.kind,
            severity=rule.severity,
            opened_at=at,
            updated_at=at,
            measurement=getattr(rule, "measurement", None),
            value=value,
            peak=value,
            direction=direction,
            limit=limit,
            clear_limit=clear_limit,
            window_s=_window_of(rule),
            change=change,
            custody_aware=rule.custody_aware,
            loan=loan,
        )
        state.alert = alert
        state.since = None
        self._pending.discard(key)
        self._by_id[alert.id] = key
        return Transition("opened", alert, at)

    def _retrigger(
        self,
        key: _Key,
        state: _State,
        value: Value | None,
        at: float,
        *,
        change: float | None = None,
        loan: str | None = None,
    ) -> Transition:
        alert = _fresh(state)
        assert alert is not None
        alert = _seen(alert, value) if value is not None else alert
        alert = replace(
            alert,
            triggers=alert.triggers + 1,
            updated_at=at,
            change=change if change is not None else alert.change,
            loan=loan if loan is not None else alert.loan,
        )
        state.alert = alert
        return Transition("retriggered", alert, at)

    def _close(self, key: _Key, at: float, *, by: str | None, value: Value | None = None) -> list[Transition]:
        state = self._states.get(key)
        alert = _fresh(state) if state is not None else None
        if state is None or alert is None:
            return []
        if value is not None:
            alert = replace(alert, value=value)
        alert = replace(alert, state=AlertState.CLEARED, cleared_at=at, cleared_by=by, updated_at=at)
        state.alert = None
        self._by_id.pop(alert.id, None)
        stale = self._stale_open.get(key[1])
        if stale is not None:
            stale.discard(key)
        return [Transition("cleared", alert, at, by)]

    def _drop(self, key: _Key) -> None:
        self._states.pop(key, None)
        self._pending.discard(key)
        self._watching.discard(key)

    def _find(self, alert_id: str) -> tuple[_Key, Alert]:
        key = self._by_id.get(alert_id)
        state = self._states.get(key) if key is not None else None
        alert = _fresh(state) if state is not None else None
        if key is None or alert is None:
            raise AlertError("unknown_alert", f"no open alert {alert_id} (it may have cleared already)")
        return key, alert

    def _set(self, key: _Key, alert: Alert, kind: TransitionKind, now: float, by: str) -> Transition:
        self._states[key].alert = alert
        return Transition(kind, alert, now, by)

    def _new_id(self, key: _Key, at: float) -> str:
        base = f"{key[0]}-{key[1]}-{int(at)}"
        previous = self._last_base.get(key)
        count = previous[1] + 1 if previous is not None and previous[0] == base else 1
        self._last_base[key] = (base, count)
        return base if count == 1 else f"{base}-{count}"


def _for_s(rule: Rule) -> float:
    return rule.for_s if isinstance(rule, Threshold) else 0.0


def _levels(rule: Rule) -> _Levels | None:
    """(above, below, clear_below, clear_above) of a threshold-like rule, None for other kinds."""
    if isinstance(rule, LowBattery):
        return None, rule.below, None, rule.clear_above
    if isinstance(rule, Threshold):
        return rule.above, rule.below, rule.clear_below, rule.clear_above
    return None


def _direction_of(rule: Rule) -> Direction | None:
    if isinstance(rule, LowBattery):
        return "below"
    return None


def _limits_of(rule: Rule, direction: Direction | None) -> tuple[float | None, float | None]:
    """(limit crossed, limit that clears) for the side the alert opened on."""
    if isinstance(rule, LowBattery):
        return rule.below, rule.clear_above
    if isinstance(rule, Threshold):
        if direction == "above":
            return rule.above, rule.clear_below if rule.clear_below is not None else rule.above
        return rule.below, rule.clear_above if rule.clear_above is not None else rule.below
    if isinstance(rule, RateOfChange):
        return rule.max_delta, None
    return None, None


def _window_of(rule: Rule) -> float:
    if isinstance(rule, Threshold):
        return rule.for_s
    if isinstance(rule, RateOfChange):
        return rule.per_s
    if isinstance(rule, Stale):
        return rule.after_s
    if isinstance(rule, Offline):
        return rule.debounce_s
    return 0.0


def _note(state: _State, value: Value) -> None:
    """Remember a newer value of an open alert (hot path: no allocation)."""
    alert = state.alert
    assert alert is not None
    peak = state.peak if state.dirty else alert.peak
    if not isinstance(value, bool) and isinstance(peak, int | float) and not isinstance(peak, bool):
        peak = min(peak, value) if alert.direction in ("below", "fall") else max(peak, value)
    state.latest, state.peak, state.dirty = value, peak, True


def _fresh(state: _State) -> Alert | None:
    """The state's alert with any remembered newer value folded in."""
    if state.dirty and state.alert is not None:
        state.alert = replace(state.alert, value=state.latest, peak=state.peak)
    state.dirty = False
    return state.alert


def _seen(alert: Alert, value: Value | None) -> Alert:
    """The alert with a newer value, its peak kept at the worst value while open."""
    if value is None or isinstance(value, bool) or isinstance(alert.peak, bool):
        return replace(alert, value=value) if value is not None else alert
    peak = alert.peak
    if peak is None:
        peak = value
    elif alert.direction in ("above", "rise"):
        peak = max(peak, value)
    elif alert.direction == "below":
        peak = min(peak, value)
    return replace(alert, value=value, peak=peak)


# --- addressees ---------------------------------------------------------------------------------------


class Reason(StrEnum):
    """Why a resident hears of an alert; the first that applies wins, in this order."""

    OWNER = "owner"
    STEWARD = "steward"
    LENDER = "lender"
    BORROWER = "borrower"
    WATCHER = "watcher"


class Detail(StrEnum):
    """How much of the alert a resident's message may carry (from ``permissions.may``)."""

    FULL = "full"  # values and limits
    DERIVED = "derived"  # the state in words ("PM2.5 above the alert level"), no values
    NONE = "none"  # that the thing needs attention, nothing more


@dataclass(frozen=True, slots=True)
class Addressee:
    """A resident to tell. ``quiet``: inside their quiet hours, so show it on the dashboard and in the
    history but hold pushes (notifications, e-mail, …) until the quiet hours end."""

    resident: str
    reason: Reason
    detail: Detail
    quiet: bool = False


def utc_hour(ts: float) -> int:
    """The hour of day (0-23) in UTC; pass a local-time function to ``addressees`` for quiet hours."""
    return int(ts // 3600 % 24)


def in_quiet_hours(start: int | None, end: int | None, hour: int) -> bool:
    """Whether ``hour`` lies in ``[start, end)``; the span may cross midnight (22 → 7)."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def addressees(
    alert: Alert,
    thing: Thing,
    relations: Sequence[Relation],
    now: float,
    *,
    residents: Mapping[str, Resident],
    custody_borrower: str | None = None,
    local_hour: Callable[[float], int] = utc_hour,
) -> list[Addressee]:
    """Who hears of ``alert`` at ``now``, why, and how much they may be told.

    Owners, stewards (by relation) and watchers of the thing; for custody-aware rules also its lenders
    and ``custody_borrower``, the resident holding it now (``lending.custody``). Overdue-loan alerts
    never reach watchers. A watcher with their own thresholds for the alert's measurement hears of it
    only when the alert's worst value crosses them; a watcher in their quiet hours is marked ``quiet``
    unless the alert is critical. Everyone must pass ``may(…, Action.SEE, thing, …)`` at ``now``;
    residents missing from ``residents`` are left out.
    """
    active = active_relations(thing, relations, now)
    wanted: list[tuple[str, Reason, Relation | None]] = []
    for kind, reason in ((RelationKind.OWNS, Reason.OWNER), (RelationKind.STEWARDS, Reason.STEWARD)):
        wanted.extend((r.resident, reason, None) for r in active if r.kind is kind)
    if alert.custody_aware:
        wanted.extend((r.resident, Reason.LENDER, None) for r in active if r.kind is RelationKind.LENDS)
        if custody_borrower is not None:
            wanted.append((custody_borrower, Reason.BORROWER, None))
    if alert.kind != OverdueLoan.kind:
        wanted.extend((r.resident, Reason.WATCHER, r) for r in active if r.kind is RelationKind.WATCHES)

    out: list[Addressee] = []
    seen: set[str] = set()
    for resident_id, reason, watch in wanted:
        resident = residents.get(resident_id)
        if resident_id in seen or resident is None or not may(resident, Action.SEE, thing, relations, now):
            continue
        quiet = False
        if watch is not None and watch.watch is not None:
            if not _crosses_own_threshold(alert, watch.watch.thresholds):
                continue
            hour = local_hour(now)
            quiet = alert.severity is not Severity.CRITICAL and in_quiet_hours(
                watch.watch.quiet_start, watch.watch.quiet_end, hour
            )
        seen.add(resident_id)
        out.append(Addressee(resident_id, reason, _detail(resident, thing, relations, now), quiet))
    return out


def _crosses_own_threshold(
    alert: Alert, thresholds: Sequence[tuple[str, float | None, float | None]]
) -> bool:
    """A watcher's own (low, high) for the alert's measurement decide, judged on the worst value."""
    worst = alert.peak if alert.peak is not None else alert.value
    if alert.measurement is None or worst is None or isinstance(worst, bool):
        return True
    for measurement, low, high in thresholds:
        if measurement == alert.measurement:
            return (high is not None and worst > high) or (low is not None and worst < low)
    return True


def _detail(resident: Resident, thing: Thing, relations: Sequence[Relation], now: float) -> Detail:
    if may(resident, Action.SEE_READINGS, thing, relations, now):
        return Detail.FULL
    if may(resident, Action.SEE_DERIVED, thing, relations, now):
        return Detail.DERIVED
    return Detail.NONE


# --- messages -----------------------------------------------------------------------------------------

_NAMES: Final[dict[str, str]] = {
    "pm1": "PM1",
    "pm25": "PM2.5",
    "pm10": "PM10",
    "co2": "CO2",
    "voc": "VOC",
    "rssi": "Signal strength",
    "linkquality": "Link quality",
}

#: What a boolean measurement's value means in words: (when true, when false).
_STATES: Final[dict[str, tuple[str, str]]] = {
    "water_leak": ("water leak detected", "no water leak"),
    "smoke": ("smoke detected", "no smoke"),
    "tamper": ("tampering detected", "no tampering"),
    "contact": ("closed", "open"),
    "occupancy": ("occupied", "not occupied"),
    "state": ("switched on", "switched off"),
}


def render(alert: Alert, detail: Detail, thing: Thing, *, by: str | None = None) -> tuple[str, str]:
    """(title, body) of a message about ``alert`` in plain words, carrying no more than ``detail`` allows.

    ``thing`` names it ("Flood sensor, basement"). ``by`` is the pseudonym of whoever acknowledged,
    claimed or cleared it, as the caller may show it; a cleared alert gives the done message.
    """
    label = thing.name
    if thing.location is not None and thing.location.place:
        label = f"{thing.name}, {thing.location.place}"
    if detail is Detail.NONE:
        return _render_bare(alert, label, by)
    headline = _headline(alert)
    if alert.state is AlertState.CLEARED:
        body = [_done(alert, detail) + "."]
        body.append(f"Open for {_duration((alert.cleared_at or alert.updated_at) - alert.opened_at)}.")
        if alert.cleared_by is not None:
            body.append(f"Cleared by {by or 'a neighbor'}.")
        return f"{label}: {headline} – cleared", " ".join(body)
    body = [_problem(alert, detail) + "."]
    if alert.triggers > 1:
        body.append(f"Triggered {alert.triggers} times.")
    body.extend(_handling(alert, by))
    return f"{label}: {headline}", " ".join(body)


def _render_bare(alert: Alert, label: str, by: str | None) -> tuple[str, str]:
    severity = alert.severity.value.capitalize()
    if alert.state is AlertState.CLEARED:
        return f"{label}: back to normal", f"The {alert.severity.value} alert on {label} has cleared."
    body = [f"{severity} alert: {label} needs attention."]
    body.extend(_handling(alert, by))
    return f"{label}: needs attention", " ".join(body)


def _handling(alert: Alert, by: str | None) -> list[str]:
    who = by or "a neighbor"
    if alert.state is AlertState.CLAIMED:
        note = f": “{alert.claim_note}”" if alert.claim_note else "."
        # a pseudonym is written as its resident chose it, never re-capitalized
        return [f"Claimed by {who}, who is taking care of it{note}"]
    if alert.state is AlertState.ACKNOWLEDGED:
        return [f"Acknowledged by {who}."]
    return []


def _name(measurement: str | None) -> str:
    if measurement is None:
        return "Value"
    return _NAMES.get(measurement, measurement.replace("_", " ").capitalize())


def _headline(alert: Alert) -> str:
    name = _name(alert.measurement)
    if alert.kind == BooleanRule.kind and isinstance(alert.value, bool) and alert.measurement is not None:
        tripped = alert.peak if isinstance(alert.peak, bool) else alert.value
        return _bool_words(alert.measurement, tripped)
    if alert.kind == LowBattery.kind:
        return "battery low"
    if alert.kind == Threshold.kind:
        return f"{name} {'high' if alert.direction == 'above' else 'low'}"
    if alert.kind == RateOfChange.kind:
        return f"{name} {'rising' if alert.direction == 'rise' else 'falling'} fast"
    if alert.kind == Stale.kind:
        return "no readings"
    if alert.kind == Offline.kind:
        return "offline"
    if alert.kind == OverdueLoan.kind:
        return "loan overdue"
    if alert.kind == HubCondition.kind:
        return "spool full, oldest readings dropped"
    return f"{alert.kind.replace('_', ' ')} alert"


def _problem(alert: Alert, detail: Detail) -> str:
    name, unit = _name(alert.measurement), unit_of(alert.measurement or "")
    full = detail is Detail.FULL
    if alert.kind in (Threshold.kind, LowBattery.kind):
        side = "above" if alert.direction == "above" else "below"
        held = f" for {_duration(alert.window_s)}" if alert.window_s > 0 else ""
        if full and isinstance(alert.value, int | float) and alert.limit is not None:
            return f"{name} at {_quantity(alert.value, unit)} {side} {_number(alert.limit)}{held}"
        return f"{name} {side} the alert level{held}"
    if alert.kind == RateOfChange.kind:
        verb = "rose" if alert.direction == "rise" else "fell"
        window = _duration(alert.window_s)
        if full and alert.change is not None and isinstance(alert.value, int | float):
            moved = _quantity(abs(alert.change), unit)
            return f"{name} {verb} by {moved} within {window}, to {_quantity(alert.value, unit)}"
        return f"{name} {verb} faster than the alert allows ({window})"
    if alert.kind == BooleanRule.kind:
        return _headline(alert).capitalize()
    if alert.kind == Stale.kind:
        return f"No reading for {_duration(alert.window_s)}"
    if alert.kind == Offline.kind:
        return f"Offline and not back for {_duration(alert.window_s)}"
    if alert.kind == OverdueLoan.kind:
        return "Not returned by its due date"
    if alert.kind == HubCondition.kind:
        dropped = f" ({_number(alert.value)} so far)" if full and isinstance(alert.value, int | float) else ""
        return (
            "The time-series database has been unreachable long enough to fill the durable spool "
            f"(storage.spool_max_mb): the oldest readings are being dropped{dropped}. "
            "Bring the database back or raise the bound"
        )
    return f"{alert.severity.value.capitalize()} alert"


def _done(alert: Alert, detail: Detail) -> str:
    name, unit = _name(alert.measurement), unit_of(alert.measurement or "")
    full = detail is Detail.FULL
    if alert.cleared_by is not None:
        return f"{_headline(alert).capitalize()}: marked as handled"
    if alert.kind in (Threshold.kind, LowBattery.kind):
        side = "below" if alert.direction == "above" else "above"
        if full and isinstance(alert.value, int | float) and alert.clear_limit is not None:
            return f"{name} back at {_quantity(alert.value, unit)}, {side} {_number(alert.clear_limit)}"
        return f"{name} back to normal"
    if alert.kind == RateOfChange.kind:
        return f"{name} steady again"
    if alert.kind == BooleanRule.kind and alert.measurement is not None:
        tripped = alert.peak if isinstance(alert.peak, bool) else True
        return _bool_words(alert.measurement, not tripped).capitalize()
    if alert.kind == Stale.kind:
        return "Readings arrive again"
    if alert.kind == Offline.kind:
        return "Back online"
    if alert.kind == OverdueLoan.kind:
        return "Returned"
    if alert.kind == HubCondition.kind:
        return "The spool is back under half its bound"
    return "Back to normal"


def _bool_words(measurement: str, value: bool) -> str:
    words = _STATES.get(measurement)
    if words is None:
        return f"{measurement.replace('_', ' ')} {'yes' if value else 'no'}"
    return words[0] if value else words[1]


def _number(value: float) -> str:
    return f"{round(value, 1):g}" if abs(value) < 1e6 else f"{value:.0f}"


def _quantity(value: float, unit: str) -> str:
    return f"{_number(value)} {unit}" if unit else _number(value)


def _duration(seconds: float) -> str:
    """Seconds in plain words: 45 s, 10 min, 1 h 30 min, 2 days."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    if s < 86400:
        h, m = divmod(round(s / 60), 60)
        return f"{h} h {m} min" if m else f"{h} h"
    days = round(s / 86400, 1)
    return f"{days:g} day" if days == 1 else f"{days:g} days"
