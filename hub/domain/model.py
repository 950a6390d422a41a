"""The nouns of DESIGN §2: residents, things, relations, loans, and the audit trail. Pure data.

Times are float epoch seconds, ids are short strings. Everything here is immutable: a change is a new
value, written by the store and recorded in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """A resident's standing in the neighborhood (not a relation to any one thing)."""

    RESIDENT = "resident"
    STEWARD = "steward"  # looks after shared things and readers of the neighborhood
    ADMIN = "admin"  # manages residents, invites and roles


class Visibility(StrEnum):
    PRIVATE = "private"  # only people related to the thing know it exists
    NEIGHBORS = "neighbors"  # every resident (logged in)
    PUBLIC = "public"  # also the kiosk screen and anonymous visitors


class Share(StrEnum):
    """What a watcher (and, capped by visibility, an unrelated viewer) may see of a thing's readings."""

    FULL = "full"  # readings and history
    DERIVED = "derived"  # only a derived state such as "leak yes/no"
    NONE = "none"  # that the thing exists, nothing more


class RelationKind(StrEnum):
    OWNS = "owns"
    STEWARDS = "stewards"
    LENDS = "lends"
    BORROWS = "borrows"
    WATCHES = "watches"


class Action(StrEnum):
    SEE = "see"  # know the thing exists: name, kind, coarse location
    SEE_READINGS = "see_readings"  # current values
    SEE_DERIVED = "see_derived"  # derived state only
    SEE_HISTORY = "see_history"  # time series
    SEE_CUSTODY = "see_custody"  # who holds it (pseudonym)
    SEE_AVAILABILITY = "see_availability"  # whether it is free to borrow (no names)
    SEE_OWNER_CONTACT = "see_owner_contact"
    SEE_EXACT_LOCATION = "see_exact_location"
    SEE_AUDIT = "see_audit"
    BORROW = "borrow"
    RESERVE = "reserve"
    RETURN = "return"
    WATCH = "watch"
    MANAGE = "manage"  # edit, attach tags and sources, grant and revoke relations, set policy
    ACKNOWLEDGE_ALERT = "acknowledge_alert"
    REPORT_DAMAGE = "report_damage"


@dataclass(frozen=True, slots=True)
class Contact:
    kind: str  # "email", "phone", "matrix", "ntfy", ...
    value: str


@dataclass(frozen=True, slots=True)
class Resident:
    id: str
    pseudonym: str
    role: Role = Role.RESIDENT
    real_name: str | None = None
    contacts: tuple[Contact, ...] = ()
    joined_at: float = 0.0
    erased: bool = False


@dataclass(frozen=True, slots=True)
class Location:
    """Exact coordinates (owner's view only) and the coarse form everyone else gets."""

    lat: float | None = None
    lon: float | None = None
    place: str | None = None  # a named place ("basement, house 12") replaces coordinates if set


@dataclass(frozen=True, slots=True)
class Thing:
    id: str
    name: str
    kind: str = "sensor"  # sensor, device, tool, reader
    visibility: Visibility = Visibility.NEIGHBORS
    watcher_share: Share = Share.FULL
    location: Location | None = None
    tags: tuple[str, ...] = ()
    #: derived state shown when only DERIVED is shared: measurement names (booleans) that make it
    derived_from: tuple[str, ...] = ()
    created_at: float = 0.0
    retired: bool = False


@dataclass(frozen=True, slots=True)
class LendPolicy:
    """How a lends relation lends: who, how long, approval, buffer between loans."""

    loan_days: float = 7.0
    who: str = "any"  # "any" | "tier" | "list"
    min_tier: int = 0  # with who == "tier"
    approved: tuple[str, ...] = ()  # resident ids, with who == "list"
    needs_approval: bool = False
    buffer_hours: float = 0.0


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """A watcher's own thresholds (measurement → (low, high)) and quiet hours (local hours, [start, end))."""

    thresholds: tuple[tuple[str, float | None, float | None], ...] = ()
    quiet_start: int | None = None
    quiet_end: int | None = None


@dataclass(frozen=True, slots=True)
class Relation:
    id: str
    resident: str
    thing: str
    kind: RelationKind
    granted_by: str | None = None  # resident id; None when the hub created it (e.g. through a loan)
    valid_from: float = 0.0
    valid_until: float | None = None
    revoked_at: float | None = None
    policy: LendPolicy | None = None  # lends
    watch: WatchSettings | None = None  # watches
    loan: str | None = None  # borrows: the loan that made it

    def active(self, now: float) -> bool:
        return (
            self.valid_from <= now
            and (self.valid_until is None or now < self.valid_until)
            and (self.revoked_at is None or now < self.revoked_at)
        )


class LoanState(StrEnum):
    REQUESTED = "requested"  # waiting for the owner's approval
    RESERVED = "reserved"  # approved for a future window
    OUT = "out"
    RETURNED = "returned"
    OVERDUE = "overdue"
    LOST = "lost"
    CANCELLED = "cancelled"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class Loan:
    id: str
    thing: str
    borrower: str
    lender: str
    state: LoanState
    start: float  # reserved window start (or check-out time)
    due: float
    requested_at: float = 0.0
    out_at: float | None = None
    returned_at: float | None = None
    out_reader: str | None = None  # verified by a scan at this reader
    return_reader: str | None = None
    damage: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the append-only audit log: who did what about which thing or resident."""

    time: float
    actor: str | None  # resident id, None for the hub itself
    action: str  # "relation.grant", "loan.out", "thing.update", "resident.erase", ...
    thing: str | None = None
    subject: str | None = None  # the resident the entry concerns, when not the actor
    detail: dict[str, str] = field(default_factory=dict)
