"""Alert rules: what each kind watches, when it trips and clears, and the defaults for community sensors.

Pure data with validation. The engine that evaluates them is ``hub.domain.alerts``; the thresholds and
their sources are explained in docs/alerts.md. A rule's ``scope`` picks the things it applies to: one
thing, every thing of a kind, or every thing. ``custody_aware`` rules also reach the current borrower of
a thing out on loan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar, Final, Literal

from hub.domain.vocabulary import BOOLEAN, NUMERIC

_RANK: Final[dict[str, int]] = {"info": 0, "warning": 1, "minor": 2, "major": 3, "critical": 4}


class Severity(StrEnum):
    """How bad an alert is, ordered: info < warning < minor < major < critical."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _RANK[self.value]

    def __lt__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


class RuleError(ValueError):
    """A rule that cannot work as written; the message names the rule and the field."""


@dataclass(frozen=True, slots=True)
class Scope:
    """The things a rule applies to: ``thing`` (one id), else ``kind`` (a thing kind), else all things."""

    thing: str | None = None
    kind: str | None = None

    def covers(self, thing_id: str, thing_kind: str) -> bool:
        if self.thing is not None:
            return self.thing == thing_id
        if self.kind is not None:
            return self.kind == thing_kind
        return True


ALL_THINGS: Final = Scope()

#: Rule ids appear in alert ids and so in MQTT topics: no separators, wildcards or spaces.
_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleBase:
    """What every rule has: an id, a severity, a scope and whether the borrower is told."""

    kind: ClassVar[str] = ""
    id: str
    severity: Severity = Severity.MINOR
    scope: Scope = ALL_THINGS
    custody_aware: bool = False

    def _check_base(self) -> None:
        if not _ID.fullmatch(self.id):
            raise RuleError(
                f"rule id {self.id!r}: use 1-64 letters, digits, '_', '.', ':' or '-' (it becomes part of an "
                "MQTT topic)"
            )


def _check_measurement(rule_id: str, measurement: str, numeric: bool) -> None:
    known = NUMERIC if numeric else BOOLEAN
    if measurement not in known:
        what = "numeric" if numeric else "boolean"
        raise RuleError(f"rule {rule_id}: {measurement!r} is not a canonical {what} measurement")


def _check_duration(rule_id: str, name: str, value: float, *, positive: bool = False) -> None:
    if value != value or value < 0 or (positive and value == 0) or value == float("inf"):
        bound = "positive" if positive else "zero or more"
        raise RuleError(f"rule {rule_id}: {name} must be {bound} seconds, got {value}")


@dataclass(frozen=True, slots=True)
class Threshold(RuleBase):
    """Trips when the value is above ``above`` or below ``below`` for at least ``for_s`` seconds.

    Hysteresis: a high alert clears only below ``clear_below`` (default: at or below ``above``), a low
    alert only above ``clear_above`` (default: at or above ``below``). Between the two it stays as it is.
    """

    kind: ClassVar[str] = "threshold"
    measurement: str
    above: float | None = None
    below: float | None = None
    clear_below: float | None = None
    clear_above: float | None = None
    for_s: float = 0.0

    def __post_init__(self) -> None:
        self._check_base()
        _check_measurement(self.id, self.measurement, numeric=True)
        _check_duration(self.id, "for_s", self.for_s)
        if self.above is None and self.below is None:
            raise RuleError(f"rule {self.id}: a threshold needs 'above', 'below' or both")
        if self.clear_below is not None and (self.above is None or self.clear_below > self.above):
            raise RuleError(f"rule {self.id}: clear_below must be set with 'above' and be at most 'above'")
        if self.clear_above is not None and (self.below is None or self.clear_above < self.below):
            raise RuleError(f"rule {self.id}: clear_above must be set with 'below' and be at least 'below'")
        if self.above is not None and self.below is not None and self.below >= self.above:
            raise RuleError(f"rule {self.id}: 'below' ({self.below}) must be under 'above' ({self.above})")


@dataclass(frozen=True, slots=True)
class RateOfChange(RuleBase):
    """Trips when the value moved by more than ``max_delta`` within the last ``per_s`` seconds."""

    kind: ClassVar[str] = "rate_of_change"
    measurement: str
    per_s: float
    max_delta: float
    direction: Literal["rise", "fall", "both"] = "both"

    def __post_init__(self) -> None:
        self._check_base()
        _check_measurement(self.id, self.measurement, numeric=True)
        _check_duration(self.id, "per_s", self.per_s, positive=True)
        if not self.max_delta > 0:
            raise RuleError(f"rule {self.id}: max_delta must be positive, got {self.max_delta}")
        if self.direction not in ("rise", "fall", "both"):
            raise RuleError(f"rule {self.id}: direction must be rise, fall or both, got {self.direction!r}")


@dataclass(frozen=True, slots=True)
class BooleanRule(RuleBase):
    """Trips while a boolean measurement equals ``when`` (``water_leak`` true); clears when it does not."""

    kind: ClassVar[str] = "boolean"
    measurement: str
    when: bool = True

    def __post_init__(self) -> None:
        self._check_base()
        _check_measurement(self.id, self.measurement, numeric=False)


@dataclass(frozen=True, slots=True)
class Stale(RuleBase):
    """Trips when a thing sent no reading for ``after_s`` seconds; its next reading clears it."""

    kind: ClassVar[str] = "stale"
    after_s: float = 1800.0

    def __post_init__(self) -> None:
        self._check_base()
        _check_duration(self.id, "after_s", self.after_s, positive=True)


@dataclass(frozen=True, slots=True)
class Offline(RuleBase):
    """Trips when a thing went offline and was not back online for ``debounce_s`` seconds.

    Online blips shorter than ``debounce_s`` neither reset the wait nor clear an open alert, so a device
    flapping online/offline raises one alert; it clears after ``debounce_s`` seconds online.
    """

    kind: ClassVar[str] = "offline"
    debounce_s: float = 300.0

    def __post_init__(self) -> None:
        self._check_base()
        _check_duration(self.id, "debounce_s", self.debounce_s)


@dataclass(frozen=True, slots=True)
class LowBattery(RuleBase):
    """Trips when ``battery`` falls below ``below`` %; clears above ``clear_above`` % (a new battery)."""

    kind: ClassVar[str] = "low_battery"
    below: float = 15.0
    clear_above: float = 25.0
    measurement: ClassVar[str] = "battery"

    def __post_init__(self) -> None:
        self._check_base()
        if not 0 <= self.below <= self.clear_above <= 100:
            raise RuleError(
                f"rule {self.id}: need 0 <= below ({self.below}) <= clear_above ({self.clear_above}) <= 100"
            )


@dataclass(frozen=True, slots=True)
class OverdueLoan(RuleBase):
    """Raised by the lending notices (``AlertEngine.overdue``); cleared when the loan comes back."""

    kind: ClassVar[str] = "overdue_loan"
    custody_aware: bool = True

    def __post_init__(self) -> None:
        self._check_base()


#: the pseudo-thing that alerts about the hub itself are raised on (kind ``hub``)
HUB_THING: Final = "hub"
#: conditions of the hub itself that a ``HubCondition`` rule can watch
HUB_CONDITIONS: Final = frozenset({"spool_full"})


@dataclass(frozen=True, slots=True)
class HubCondition(RuleBase):
    """A condition of the hub itself, raised and cleared by the hub (``AlertEngine.hub_condition``) on
    the pseudo-thing ``hub``. ``spool_full``: the durable spool reached ``storage.spool_max_mb`` and
    dropped its oldest readings; it clears once replay has brought the spool under half its bound."""

    kind: ClassVar[str] = "hub_condition"
    condition: str = "spool_full"
    severity: Severity = Severity.CRITICAL
    scope: Scope = Scope(thing=HUB_THING)

    def __post_init__(self) -> None:
        self._check_base()
        if self.condition not in HUB_CONDITIONS:
            raise RuleError(
                f"rule {self.id}: condition must be one of {', '.join(sorted(HUB_CONDITIONS))}, "
                f"got {self.condition!r}"
            )


Rule = Threshold | RateOfChange | BooleanRule | Stale | Offline | LowBattery | OverdueLoan | HubCondition

RULE_KINDS: Final[dict[str, type[Rule]]] = {
    cls.kind: cls
    for cls in (Threshold, RateOfChange, BooleanRule, Stale, Offline, LowBattery, OverdueLoan, HubCondition)
}

#: The hub's own alerts: always on, whatever ``alerts.defaults`` says (docs/alerts.md).
HUB_RULES: Final[tuple[Rule, ...]] = (HubCondition(id="hub-spool-full", condition="spool_full"),)

#: Defaults for community sensors; docs/alerts.md gives each value's source and why it was chosen.
DEFAULT_RULES: Final[tuple[Rule, ...]] = (
    Threshold("pm25", id="pm25-high", severity=Severity.MINOR, above=35.0, clear_below=25.0, for_s=600.0),
    Threshold(
        "pm25", id="pm25-very-high", severity=Severity.MAJOR, above=75.0, clear_below=50.0, for_s=600.0
    ),
    Threshold("pm10", id="pm10-high", severity=Severity.MINOR, above=50.0, clear_below=45.0, for_s=600.0),
    Threshold(
        "pm10", id="pm10-very-high", severity=Severity.MAJOR, above=150.0, clear_below=100.0, for_s=600.0
    ),
    Threshold("noise", id="noise-loud", severity=Severity.WARNING, above=70.0, clear_below=65.0, for_s=900.0),
    Threshold("co2", id="co2-high", severity=Severity.WARNING, above=2000.0, clear_below=1000.0, for_s=600.0),
    BooleanRule("water_leak", id="water-leak", severity=Severity.CRITICAL, custody_aware=True),
    BooleanRule("smoke", id="smoke", severity=Severity.CRITICAL, custody_aware=True),
    LowBattery(id="battery-low", severity=Severity.WARNING, custody_aware=True),
    Offline(id="offline", severity=Severity.MINOR, debounce_s=300.0, custody_aware=True),
    OverdueLoan(id="loan-overdue", severity=Severity.MINOR),
)


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """A rule as plain data (config, the ``alert_rules`` table, web forms); ``rule_from_dict`` reads it."""
    data: dict[str, Any] = {"kind": rule.kind, "id": rule.id, "severity": rule.severity.value}
    if rule.scope.thing is not None:
        data["thing"] = rule.scope.thing
    if rule.scope.kind is not None:
        data["thing_kind"] = rule.scope.kind
    data["custody_aware"] = rule.custody_aware
    for f in fields(rule):
        if f.name not in ("id", "severity", "scope", "custody_aware"):
            data[f.name] = getattr(rule, f.name)
    return data


def rule_from_dict(data: Mapping[str, Any]) -> Rule:
    """Build a rule from plain data; a bad or unknown key raises ``RuleError`` naming it."""
    kind = data.get("kind")
    cls = RULE_KINDS.get(kind) if isinstance(kind, str) else None
    rule_id = data.get("id")
    label = rule_id if isinstance(rule_id, str) else "?"
    if cls is None:
        raise RuleError(f"rule {label}: kind must be one of {', '.join(RULE_KINDS)}, got {kind!r}")
    if not isinstance(rule_id, str):
        raise RuleError(f"rule of kind {kind}: 'id' must be text")
    own = {f.name: f for f in fields(cls)}
    args: dict[str, Any] = {"id": rule_id}
    for key, value in data.items():
        if key in ("kind", "id"):
            continue
        if key == "severity":
            try:
                args["severity"] = Severity(value)
            except ValueError:
                names = ", ".join(s.value for s in Severity)
                raise RuleError(f"rule {label}: severity must be one of {names}, got {value!r}") from None
        elif key in ("thing", "thing_kind"):
            if value is not None and not isinstance(value, str):
                raise RuleError(f"rule {label}: {key} must be text")
        elif key == "custody_aware" or (key in own and own[key].type in ("bool", bool)):
            if not isinstance(value, bool):
                raise RuleError(f"rule {label}: {key} must be true or false, got {value!r}")
            args[key] = value
        elif key in own and key not in ("scope", "severity"):
            args[key] = _field_value(label, key, value)
        else:
            raise RuleError(f"rule {label}: unknown key {key!r} for a {kind} rule")
    thing, thing_kind = data.get("thing"), data.get("thing_kind")
    args["scope"] = Scope(thing=thing, kind=thing_kind)
    try:
        return cls(**args)
    except TypeError as e:
        raise RuleError(f"rule {label}: {e}") from None


def _field_value(label: str, key: str, value: Any) -> Any:
    if key in ("measurement", "direction", "condition"):
        if not isinstance(value, str):
            raise RuleError(f"rule {label}: {key} must be text, got {value!r}")
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"rule {label}: {key} must be a number, got {value!r}")
    return float(value)
