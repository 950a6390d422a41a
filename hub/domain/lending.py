"""Lending rules: requests, reservations, check-out and return, overdue notices, the waitlist. Pure.

Every function takes ``now`` and returns new ``Loan`` values; the caller stores them and writes the
audit log. A refused step raises ``LendingError`` with a stable ``reason`` code and a ``detail`` a
resident can act on.

A loan's window is ``[start, due)``. While a loan is requested, reserved or out, its window widened by
the policy's buffer on both sides is closed to other loans of the same thing. A thing that is out past
its due date, or reported lost, is closed from its start onwards: no window after it is promised until
it is back (residents join the waitlist instead).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, Literal

from hub.domain.model import LendPolicy, Loan, LoanState, Relation, RelationKind
from hub.domain.permissions import eligible

DAY_S: Final[float] = 86400.0
#: A reserved tool may be collected this long before its window opens.
EARLY_CHECKOUT_S: Final[float] = 3600.0
#: A requested start this far in the past is taken as "now" (clocks of phones and the hub differ).
START_SKEW_S: Final[float] = 300.0
#: A reservation not collected this long after its start lapses (never later than its due time).
PICKUP_GRACE_S: Final[float] = DAY_S

#: Loans whose window is closed to others.
BLOCKING: Final[frozenset[LoanState]] = frozenset(
    {LoanState.REQUESTED, LoanState.RESERVED, LoanState.OUT, LoanState.OVERDUE, LoanState.LOST}
)
#: Loans that hold the thing now.
HELD: Final[frozenset[LoanState]] = frozenset({LoanState.OUT, LoanState.OVERDUE})

#: The stable reason codes of ``LendingError`` raised here (callers may add their own, e.g. unknown_loan).
REASONS: Final[tuple[str, ...]] = (
    "not_lendable",  # no active lends relation with a policy for this thing and window
    "not_eligible",  # the policy does not let this resident borrow
    "own_thing",  # the lender cannot borrow from themselves
    "bad_window",  # start in the past, length not positive or longer than the policy allows
    "conflict",  # the window overlaps another loan of the thing (buffer included)
    "needs_approval",  # a walk-up at a reader, but the owner approves each loan
    "not_approved",  # check-out of a request the owner has not approved
    "too_early",  # check-out more than EARLY_CHECKOUT_S before the window opens
    "expired",  # the window has already ended
    "not_out",  # return, loss report of a loan that is not out
    "not_borrower",  # someone else tries to collect a reservation
    "bad_state",  # any other transition the lifecycle does not have
    "empty_report",  # a damage report without text
)


class LendingError(Exception):
    """A lending step the rules refuse. ``reason`` is a stable code, ``detail`` says why."""

    def __init__(self, reason: str, detail: str, *, window: tuple[float, float] | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        #: with ``conflict``: the clashing window, buffer included (``end`` may be ``inf``)
        self.window = window


NoticeKind = Literal["due_soon", "overdue", "escalation", "waitlist_available"]


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to send once. ``(loan_id, kind)`` identifies it; ``to`` are resident ids."""

    loan_id: str
    kind: NoticeKind
    at: float
    to: tuple[str, ...]
    thing: str = ""


@dataclass(frozen=True, slots=True)
class WaitEntry:
    """A resident waiting for a thing that is out or fully booked."""

    thing: str
    resident: str
    since: float


# -- requests and reservations ------------------------------------------------------------------------


def request(
    loan_id: str,
    thing: str,
    lender_relation: Relation,
    borrower: str,
    start: float,
    now: float,
    loans: Sequence[Loan],
    trust_tier: int,
    days: float | None = None,
) -> Loan:
    """Ask to borrow ``thing`` from ``start`` for ``days`` (default: the policy's loan length).

    Returns a REQUESTED loan when the owner approves each loan, else a RESERVED one.
    """
    policy = _policy(lender_relation, thing)
    _not_own(lender_relation, borrower)
    length_days = policy.loan_days if days is None else days
    if not math.isfinite(start) or start < now - START_SKEW_S:
        raise LendingError("bad_window", f"the loan would start at {_fmt(start)}, which has passed")
    if not (math.isfinite(length_days) and 0 < length_days <= policy.loan_days):
        raise LendingError(
            "bad_window", f"a loan of {thing} lasts more than 0 and at most {policy.loan_days:g} days"
        )
    start = max(start, now)
    end = start + length_days * DAY_S
    _offered_during(lender_relation, start, end)
    _check_eligible(policy, borrower, trust_tier, thing)
    _check_free(thing, start, end, loans, policy.buffer_hours, now)
    return Loan(
        id=loan_id,
        thing=thing,
        borrower=borrower,
        lender=lender_relation.resident,
        state=LoanState.REQUESTED if policy.needs_approval else LoanState.RESERVED,
        start=start,
        due=end,
        requested_at=now,
    )


def approve(loan: Loan, now: float) -> Loan:
    """The owner accepts a request: REQUESTED → RESERVED."""
    _expect(loan, {LoanState.REQUESTED}, "approve")
    if now >= loan.due:
        raise LendingError("expired", f"the requested window of {loan.thing} ended at {_fmt(loan.due)}")
    return replace(loan, state=LoanState.RESERVED)


def decline(loan: Loan, now: float) -> Loan:
    """The owner refuses a request or withdraws a reservation: → DECLINED."""
    _expect(loan, {LoanState.REQUESTED, LoanState.RESERVED}, "decline")
    return replace(loan, state=LoanState.DECLINED)


def cancel(loan: Loan, now: float) -> Loan:
    """The borrower withdraws a request or reservation before collecting it: → CANCELLED."""
    _expect(loan, {LoanState.REQUESTED, LoanState.RESERVED}, "cancel")
    return replace(loan, state=LoanState.CANCELLED)


def lapse_unclaimed(loans: Iterable[Loan], now: float, *, grace_s: float = PICKUP_GRACE_S) -> list[Loan]:
    """Requests and reservations nobody collected in time, now CANCELLED (only the changed loans).

    A reservation lapses ``grace_s`` after its start, or at its due time if that comes first, so a
    no-show does not keep the thing booked for the whole window.
    """
    return [
        replace(loan, state=LoanState.CANCELLED)
        for loan in loans
        if loan.state in (LoanState.REQUESTED, LoanState.RESERVED)
        and now >= min(loan.start + grace_s, loan.due)
    ]


# -- custody --------------------------------------------------------------------------------------------


def check_out(
    loan: Loan,
    now: float,
    reader: str | None,
    *,
    by: str | None = None,
    loans: Sequence[Loan] = (),
) -> Loan:
    """Hand a reserved thing over: RESERVED → OUT. ``reader`` set means a verified scan.

    ``by``, when known, must be the borrower. ``loans`` (the thing's other loans) refuses a hand-over
    while someone else still holds the thing, or before the window opens while another window is on.
    """
    if loan.state is LoanState.REQUESTED:
        raise LendingError("not_approved", f"the owner has not yet approved the loan of {loan.thing}")
    _expect(loan, {LoanState.RESERVED}, "check out")
    if by is not None and by != loan.borrower:
        raise LendingError("not_borrower", f"{loan.thing} is reserved for someone else")
    if now < loan.start - EARLY_CHECKOUT_S:
        raise LendingError(
            "too_early",
            f"{loan.thing} can be collected from {_fmt(loan.start - EARLY_CHECKOUT_S)}",
        )
    if now >= loan.due:
        raise LendingError("expired", f"the reservation of {loan.thing} ended at {_fmt(loan.due)}")
    for other in loans:
        if other.id == loan.id or other.thing != loan.thing:
            continue
        if other.state in HELD or other.state is LoanState.LOST:
            raise LendingError(
                "conflict", f"{loan.thing} has not been returned from an earlier loan ({other.id})"
            )
        if now < loan.start and other.state in BLOCKING and other.start <= now < other.due:
            raise LendingError(
                "conflict",
                f"{loan.thing} is booked until {_fmt(other.due)}; collect it from {_fmt(loan.start)}",
                window=(other.start, other.due),
            )
    return replace(loan, state=LoanState.OUT, out_at=now, out_reader=reader)


def walk_up(
    loan_id: str,
    thing: str,
    lender_relation: Relation,
    borrower: str,
    now: float,
    loans: Sequence[Loan],
    trust_tier: int,
    reader: str | None,
) -> Loan:
    """A card and a tool scanned with no reservation: an OUT loan for the policy's loan length."""
    policy = _policy(lender_relation, thing)
    _not_own(lender_relation, borrower)
    end = now + policy.loan_days * DAY_S
    _offered_during(lender_relation, now, end)
    _check_eligible(policy, borrower, trust_tier, thing)
    if policy.needs_approval:
        raise LendingError(
            "needs_approval", f"the owner approves each loan of {thing}: reserve it first, then collect it"
        )
    _check_free(thing, now, end, loans, policy.buffer_hours, now)
    return Loan(
        id=loan_id,
        thing=thing,
        borrower=borrower,
        lender=lender_relation.resident,
        state=LoanState.OUT,
        start=now,
        due=end,
        requested_at=now,
        out_at=now,
        out_reader=reader,
    )


def check_in(loan: Loan, now: float, reader: str | None) -> Loan:
    """The thing is back: OUT, OVERDUE (or LOST, when it turns up) → RETURNED."""
    if loan.state not in HELD and loan.state is not LoanState.LOST:
        raise LendingError("not_out", f"{loan.thing} is not out on loan {loan.id} ({loan.state})")
    return replace(loan, state=LoanState.RETURNED, returned_at=now, return_reader=reader)


def report_damage(loan: Loan, text: str, now: float) -> Loan:
    """Record damage found during or right after a loan; later reports are appended."""
    text = text.strip()
    if not text:
        raise LendingError("empty_report", "say what is damaged")
    _expect(loan, {LoanState.OUT, LoanState.OVERDUE, LoanState.RETURNED, LoanState.LOST}, "report damage on")
    damage = text if loan.damage is None else f"{loan.damage}\n{text}"
    return replace(loan, damage=damage)


def report_lost(loan: Loan, now: float) -> Loan:
    """The borrower or owner reports the thing lost: OUT/OVERDUE → LOST."""
    if loan.state not in HELD:
        raise LendingError("not_out", f"{loan.thing} is not out on loan {loan.id} ({loan.state})")
    return replace(loan, state=LoanState.LOST)


def mark_overdue(loans: Iterable[Loan], now: float) -> list[Loan]:
    """Loans out past their due time, now OVERDUE (only the changed loans)."""
    return [
        replace(loan, state=LoanState.OVERDUE)
        for loan in loans
        if loan.state is LoanState.OUT and now >= loan.due
    ]


def custody(thing: str, loans: Iterable[Loan], now: float) -> Loan | None:
    """The loan holding ``thing`` at ``now`` (OUT or OVERDUE), or None when it is at home."""
    held = [
        loan
        for loan in loans
        if loan.thing == thing and loan.state in HELD and (loan.out_at is None or loan.out_at <= now)
    ]
    return max(held, key=lambda loan: (loan.out_at or loan.start, loan.id), default=None)


def reservation_to_collect(thing: str, borrower: str, loans: Iterable[Loan], now: float) -> Loan | None:
    """The borrower's reservation of ``thing`` that may be checked out at ``now`` (for a reader scan)."""
    ready = [
        loan
        for loan in loans
        if loan.thing == thing
        and loan.borrower == borrower
        and loan.state is LoanState.RESERVED
        and loan.start - EARLY_CHECKOUT_S <= now < loan.due
    ]
    return min(ready, key=lambda loan: (loan.start, loan.id), default=None)


# -- notices ------------------------------------------------------------------------------------------


def schedule(
    loans: Iterable[Loan],
    now: float,
    *,
    remind_before_s: float = DAY_S,
    escalate_after_s: float = 3 * DAY_S,
    stewards: Mapping[str, Sequence[str]] | None = None,
) -> list[Notice]:
    """Notices of loans out that fall due strictly after ``now``, soonest first.

    One scheduler job per ``(loan_id, kind)`` at its ``at`` rebuilds the plan after a restart; when a
    job fires, ``notices_due`` says what to send. Notices already due at ``now`` are ``notices_due``'s.
    """
    plan = _planned(loans, remind_before_s, escalate_after_s, stewards or {})
    return sorted((n for n in plan if n.at > now), key=lambda n: (n.at, n.loan_id, n.kind))


def notices_due(
    loans: Iterable[Loan],
    now: float,
    *,
    sent: Collection[tuple[str, str]] = frozenset(),
    remind_before_s: float = DAY_S,
    escalate_after_s: float = 3 * DAY_S,
    stewards: Mapping[str, Sequence[str]] | None = None,
) -> list[Notice]:
    """Notices of loans out that are due at ``now`` and not yet in ``sent`` (``(loan_id, kind)`` pairs).

    A reminder is only due before the due time: after a long outage the borrower gets the overdue
    notice, not a stale reminder.
    """
    due: list[Notice] = []
    for notice in _planned(loans, remind_before_s, escalate_after_s, stewards or {}):
        if notice.at > now or (notice.loan_id, notice.kind) in sent:
            continue
        if notice.kind == "due_soon" and now >= notice.at + remind_before_s:
            continue
        due.append(notice)
    return sorted(due, key=lambda n: (n.at, n.loan_id, n.kind))


def _planned(
    loans: Iterable[Loan],
    remind_before_s: float,
    escalate_after_s: float,
    stewards: Mapping[str, Sequence[str]],
) -> list[Notice]:
    plan: list[Notice] = []
    for loan in loans:
        if loan.state not in HELD:
            continue
        remind_at = loan.due - remind_before_s
        # Taken out already inside the reminder period: the borrower saw the due time a moment ago.
        if loan.out_at is None or loan.out_at < remind_at:
            plan.append(Notice(loan.id, "due_soon", remind_at, (loan.borrower,), loan.thing))
        plan.append(Notice(loan.id, "overdue", loan.due, _people(loan.borrower, loan.lender), loan.thing))
        plan.append(
            Notice(
                loan.id,
                "escalation",
                loan.due + escalate_after_s,
                _people(loan.borrower, loan.lender, *sorted(stewards.get(loan.thing, ()))),
                loan.thing,
            )
        )
    return plan


# -- waitlist -----------------------------------------------------------------------------------------


def next_in_line(entries: Iterable[WaitEntry], thing: str) -> WaitEntry | None:
    """The resident who has waited longest for ``thing``."""
    waiting = [entry for entry in entries if entry.thing == thing]
    return min(waiting, key=lambda entry: (entry.since, entry.resident), default=None)


def on_return(thing: str, entries: Iterable[WaitEntry], now: float, *, loan_id: str = "") -> list[Notice]:
    """Tell the first resident on the waitlist that ``thing`` is back (``loan_id``: the returned loan)."""
    first = next_in_line(entries, thing)
    if first is None:
        return []
    return [Notice(loan_id, "waitlist_available", now, (first.resident,), thing)]


# -- rules shared by request and walk-up --------------------------------------------------------------


def _policy(relation: Relation, thing: str) -> LendPolicy:
    if relation.kind is not RelationKind.LENDS or relation.thing != thing or relation.policy is None:
        raise LendingError("not_lendable", f"{thing} is not offered for lending")
    return relation.policy


def _not_own(relation: Relation, borrower: str) -> None:
    if relation.resident == borrower:
        raise LendingError("own_thing", f"{relation.thing} is yours to lend, not to borrow")


def _offered_during(relation: Relation, start: float, end: float) -> None:
    until = min((t for t in (relation.valid_until, relation.revoked_at) if t is not None), default=math.inf)
    if start < relation.valid_from or end > until:
        offered = f"from {_fmt(relation.valid_from)}" + ("" if until == math.inf else f" until {_fmt(until)}")
        raise LendingError("not_lendable", f"{relation.thing} is offered for lending only {offered}")


def _check_eligible(policy: LendPolicy, borrower: str, trust_tier: int, thing: str) -> None:
    if eligible(policy, borrower, trust_tier):
        return
    if policy.who == "tier":
        why = f"its owner lends it from trust tier {policy.min_tier}; yours is {trust_tier}"
    elif policy.who == "list":
        why = "its owner lends it only to residents on their list"
    else:
        why = "its lending policy does not include you"
    raise LendingError("not_eligible", f"you cannot borrow {thing}: {why}")


def _check_free(
    thing: str, start: float, end: float, loans: Iterable[Loan], buffer_hours: float, now: float
) -> None:
    buffer_s = max(buffer_hours, 0.0) * 3600.0
    for other in loans:
        if other.thing != thing or other.state not in BLOCKING:
            continue
        closed_from = min(other.start, other.out_at if other.out_at is not None else other.start) - buffer_s
        if other.state is LoanState.LOST or (other.state in HELD and now >= other.due):
            if end > closed_from:
                why = "was reported lost" if other.state is LoanState.LOST else "is overdue and not back yet"
                raise LendingError(
                    "conflict",
                    f"{thing} {why}; join the waitlist to hear when it returns",
                    window=(closed_from, math.inf),
                )
            continue
        closed_until = other.due + buffer_s
        if start < closed_until and closed_from < end:
            buffer = f" (with {buffer_hours:g} h between loans)" if buffer_s else ""
            raise LendingError(
                "conflict",
                f"{thing} is booked from {_fmt(closed_from)} to {_fmt(closed_until)}{buffer}",
                window=(closed_from, closed_until),
            )


def _expect(loan: Loan, allowed: Collection[LoanState], verb: str) -> None:
    if loan.state not in allowed:
        raise LendingError("bad_state", f"cannot {verb} loan {loan.id} of {loan.thing}: it is {loan.state}")


def _people(*ids: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


def _fmt(ts: float) -> str:
    if not math.isfinite(ts):
        return str(ts)
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.0f}"
