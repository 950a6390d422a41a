"""The ``hub`` commands for loans without a reader: loan reserve|approve|decline|cancel|out|return|report|list
and waitlist join|leave|show.

Every change goes through ``hub.loans.LendingDesk``, which asks the permission function and the lending
rules; this module only finds the residents, things and loans a command names and prints the answer.
The console is not the running hub: its desk publishes nothing and schedules nothing. The running hub
rereads the store every minute, republishes custody and rebuilds its reminders from it.

A thing (or a loan of a thing) that the acting resident may not see is answered exactly like one that
does not exist, so the console never confirms that a private thing is there.
"""

from __future__ import annotations

import argparse
import functools
from datetime import UTC, datetime
from typing import Any

from hub.domain.lending import LendingError
from hub.domain.model import Action, Loan, LoanState, RelationKind, Resident, Thing
from hub.domain.permissions import may
from hub.domain.trust import tier
from hub.loans import LendingDesk, PermissionDenied
from hub.people_cli import (
    OPEN_LOANS,
    CommandError,
    Handler,
    Session,
    _as,
    _command,
    _iso,
    _policy_words,
    _print_json,
    _table,
)
from hub.storage.directory import DirectoryError
from hub.telemetry import Telemetry

#: said by every command that changes a loan: the console's desk reaches neither broker nor scheduler
PICKED_UP = "the running hub republishes custody and rebuilds its reminders from the store within a minute"
UNVERIFIED_OUT = (
    "web and console hand-overs are not verified: only returns scanned at a reader count for trust"
)
UNVERIFIED_RETURN = "a return without a reader is not verified: it neither raises nor lowers trust"


def _no_publish(topic: str, payload: str, qos: int, retain: bool) -> None:
    """The console does not talk to the broker (see PICKED_UP)."""


def _desk(s: Session) -> LendingDesk:
    # no start(): no scheduler and no scan thread in a console process
    return LendingDesk(s.directory, _no_publish, Telemetry(), clock=lambda: s.now)


def _lending(handler: Handler) -> Handler:
    """Refusals of the desk and the directory as one line: "<detail> (<reason>)"."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, s: Session) -> int:
        try:
            return handler(args, s)
        except LendingError as exc:
            raise CommandError(f"{exc.detail} ({exc.reason})") from exc
        except PermissionDenied as exc:
            raise CommandError(f"{exc} ({exc.reason})") from exc
        except DirectoryError as exc:
            raise CommandError(f"{exc.message} ({exc.reason})") from exc

    return run


# -- what the acting resident may know of ---------------------------------------------------------------


def _unknown_thing(thing_id: str, viewer: Resident) -> CommandError:
    return CommandError(f"no thing with id {thing_id!r} that {viewer.pseudonym} may see (unknown_thing)")


def _seen_thing(s: Session, thing_id: str, viewer: Resident | None, action: Action = Action.SEE) -> Thing:
    """The thing, when ``viewer`` (None: the console operator) may see it; else as if it did not exist."""
    thing = s.directory.thing(thing_id)
    if viewer is None:
        return s.thing(thing_id)
    if thing is None or not may(viewer, action, thing, s.relations(thing), s.now):
        raise _unknown_thing(thing_id, viewer)
    return thing


def _seen_loan(s: Session, loan_id: str, viewer: Resident) -> Loan:
    """A loan the viewer takes part in, or of a thing they may see; else as if it did not exist."""
    loan = s.directory.loan(loan_id)
    if loan is not None and viewer.id in (loan.borrower, loan.lender):
        return loan
    thing = s.directory.thing(loan.thing) if loan is not None else None
    if loan is None or thing is None or not may(viewer, Action.SEE, thing, s.relations(thing), s.now):
        raise CommandError(f"no loan {loan_id!r} that {viewer.pseudonym} may see (unknown_loan)")
    return loan


def _refused(s: Session, exc: PermissionDenied, thing: Thing, actor: Resident, doing: str) -> CommandError:
    """Why the desk said no, with the lending policy when it is lending that was refused."""
    why = f"{actor.pseudonym} may not {doing} {thing.id}"
    offers = [r for r in s.relations(thing) if r.kind is RelationKind.LENDS and r.policy is not None]
    if doing in ("reserve", "borrow") and offers:
        names = s.names()
        policies = "; ".join(_policy_words(r.policy, names) for r in offers if r.policy is not None)
        why += f": it is lent for {policies}"
    elif thing.retired:
        why += ": it is retired"
    return CommandError(f"{why} ({exc.reason})")


# -- loans ----------------------------------------------------------------------------------------------


def _start(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--start {text!r}: not an ISO date or time, e.g. 2026-07-01T09:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the hub speaks UTC, as its notices do
    return moment.timestamp()


@_lending
def cmd_loan_reserve(args: argparse.Namespace, s: Session) -> int:
    borrower = s.actor(args.actor)
    thing = _seen_thing(s, args.thing, borrower)
    try:
        loan = _desk(s).reserve(borrower.id, thing.id, start=_start(args.start), days=args.days)
    except PermissionDenied as exc:
        raise _refused(s, exc, thing, borrower, "reserve") from exc
    print(f"loan:   {loan.id}")
    print(f"thing:  {loan.thing}")
    if loan.state is LoanState.REQUESTED:
        lender = s.names().get(loan.lender, loan.lender)
        print(f"state:  requested: {lender} approves with hub loan approve {loan.id} --as {lender}")
    else:
        print(f"state:  {loan.state.value}")
    print(f"window: {_iso(loan.start)} to {_iso(loan.due)}")
    print(f"due:    {_iso(loan.due)}")
    return 0


def _decide(args: argparse.Namespace, s: Session, approve: bool) -> int:
    owner = s.actor(args.actor)
    loan = _seen_loan(s, args.loan, owner)
    loan = _desk(s).decide(loan.id, approve, owner.id)
    borrower = s.names().get(loan.borrower, loan.borrower)
    print(f"loan {loan.id} of {loan.thing} for {borrower}: {loan.state.value} by {owner.pseudonym}")
    if approve:
        print(f"{borrower} may collect it from {_iso(loan.start)}; due back {_iso(loan.due)}")
    return 0


@_lending
def cmd_loan_approve(args: argparse.Namespace, s: Session) -> int:
    return _decide(args, s, approve=True)


@_lending
def cmd_loan_decline(args: argparse.Namespace, s: Session) -> int:
    return _decide(args, s, approve=False)


@_lending
def cmd_loan_cancel(args: argparse.Namespace, s: Session) -> int:
    actor = s.actor(args.actor)
    loan = _seen_loan(s, args.loan, actor)
    loan = _desk(s).cancel(loan.id, actor.id)
    print(f"loan {loan.id} of {loan.thing}: cancelled by {actor.pseudonym}")
    return 0


@_lending
def cmd_loan_out(args: argparse.Namespace, s: Session) -> int:
    borrower = s.actor(args.actor)
    thing = _seen_thing(s, args.thing, borrower)
    try:
        loan = _desk(s).check_out(thing.id, borrower.id, reader=None, actor=borrower.id)
    except PermissionDenied as exc:
        raise _refused(s, exc, thing, borrower, "borrow") from exc
    except LendingError as exc:
        if exc.reason != "needs_approval":
            raise
        # the desk's words point at the web; here the request is made, or waits, at the console
        waiting = s.directory.loans(thing=thing.id, borrower=borrower.id, states=(LoanState.REQUESTED,))
        if waiting:
            detail = f"the owner has not yet approved the request {waiting[0].id} of {thing.id}"
            raise CommandError(f"{detail} (not_approved)") from exc
        ask = f"request it first: hub loan reserve {thing.id} --as {borrower.pseudonym}"
        raise CommandError(f"the owner approves each loan of {thing.id}; {ask} ({exc.reason})") from exc
    print(f"{loan.thing} is out to {borrower.pseudonym} on loan {loan.id}, due back {_iso(loan.due)}")
    print(f"note: {UNVERIFIED_OUT}")
    return 0


@_lending
def cmd_loan_return(args: argparse.Namespace, s: Session) -> int:
    actor = s.actor(args.actor)
    thing = _seen_thing(s, args.thing, actor)
    try:
        loan = _desk(s).check_in(thing.id, reader=None, actor=actor.id)
    except PermissionDenied as exc:
        raise _refused(s, exc, thing, actor, "return") from exc
    names = s.names()
    when = "on time" if loan.returned_at is not None and loan.returned_at <= loan.due else "late"
    print(f"{loan.thing} is back from {names.get(loan.borrower, loan.borrower)} ({when}), loan {loan.id}")
    print(f"note: {UNVERIFIED_RETURN}")
    waiting = s.directory.waitlist(thing.id)
    if waiting:
        # the desk's waitlist notice goes to the broker, which the console does not reach
        first = names.get(waiting[0][0], waiting[0][0])
        print(f"first on the waitlist: {first}; the console sends no notices, so tell them")
    return 0


@_lending
def cmd_loan_report(args: argparse.Namespace, s: Session) -> int:
    actor = s.actor(args.actor)
    loan = _seen_loan(s, args.loan, actor)
    try:
        loan = _desk(s).report(loan.id, actor.id, damage=args.damage, lost=args.lost)
    except PermissionDenied as exc:
        thing = s.thing(loan.thing)
        raise _refused(s, exc, thing, actor, "report on") from exc
    what = "lost" if args.lost else f"damaged: {args.damage.strip()}"
    print(f"loan {loan.id} of {loan.thing}: reported {what} by {actor.pseudonym}")
    return 0


def _loan_row(loan: Loan, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": loan.id,
        "thing": loan.thing,
        "borrower": names.get(loan.borrower, loan.borrower),
        "lender": names.get(loan.lender, loan.lender),
        "state": loan.state.value,
        "start": _iso(loan.start),
        "due": _iso(loan.due),
        "requested": _iso(loan.requested_at) or None,
        "out": _iso(loan.out_at) or None,
        "out_reader": loan.out_reader,
        "returned": _iso(loan.returned_at) or None,
        "return_reader": loan.return_reader,
        "damage": loan.damage,
    }


def _listed(s: Session, loans: list[Loan], viewer: Resident | None) -> list[Loan]:
    """Without --as, every loan; with it, the viewer's own and those of things whose custody they see."""
    if viewer is None:
        return loans
    things = {t.id: t for t in s.directory.things()}
    custody: dict[str, bool] = {}

    def sees(thing_id: str) -> bool:
        if thing_id not in custody:
            thing = things.get(thing_id)
            custody[thing_id] = thing is not None and may(
                viewer, Action.SEE_CUSTODY, thing, s.relations(thing), s.now
            )
        return custody[thing_id]

    return [loan for loan in loans if viewer.id in (loan.borrower, loan.lender) or sees(loan.thing)]


@_lending
def cmd_loan_list(args: argparse.Namespace, s: Session) -> int:
    viewer = s.actor(args.actor) if args.actor else None
    states = OPEN_LOANS if args.open else None
    if args.thing:
        thing = _seen_thing(s, args.thing, viewer, Action.SEE_CUSTODY)
        loans = s.directory.loans(thing=thing.id, states=states)
    elif args.resident:
        who = s.resident(args.resident)
        loans = [loan for loan in s.directory.loans(states=states) if who.id in (loan.borrower, loan.lender)]
    else:
        loans = s.directory.loans(states=states)
    names = s.names()
    rows = [_loan_row(loan, names) for loan in _listed(s, loans, viewer)]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no loans")
        return 0
    table: list[tuple[str, ...]] = [
        ("ID", "THING", "BORROWER", "STATE", "FROM", "DUE", "OUT", "RETURNED", "DAMAGE")
    ]
    for row in rows:
        out = f"{row['out']} @{row['out_reader'] or 'no reader'}" if row["out"] else "-"
        back = f"{row['returned']} @{row['return_reader'] or 'no reader'}" if row["returned"] else "-"
        damage = (row["damage"] or "-").replace("\n", " / ")
        table.append(
            (
                row["id"],
                row["thing"],
                row["borrower"],
                row["state"],
                row["start"],
                row["due"],
                out,
                back,
                damage,
            )
        )
    _table(table)
    return 0


# -- waitlist -------------------------------------------------------------------------------------------


@_lending
def cmd_waitlist_join(args: argparse.Namespace, s: Session) -> int:
    resident = s.actor(args.actor)
    thing = _seen_thing(s, args.thing, resident)
    desk = _desk(s)
    # waiting makes sense only for someone who may reserve it once it is back
    if not may(
        resident, Action.RESERVE, thing, s.relations(thing), s.now, trust_tier=tier(desk.trust(resident.id))
    ):
        raise _refused(s, PermissionDenied(), thing, resident, "reserve")
    if any(waiting == resident.id for waiting, _ in s.directory.waitlist(thing.id)):
        raise CommandError(f"{resident.pseudonym} is already on the waitlist of {thing.id} (already_waiting)")
    s.directory.join_waitlist(thing.id, resident.id, actor=resident.id, now=s.now)
    place = len(s.directory.waitlist(thing.id))
    print(f"{resident.pseudonym} is number {place} on the waitlist of {thing.id}")
    return 0


@_lending
def cmd_waitlist_leave(args: argparse.Namespace, s: Session) -> int:
    resident = s.actor(args.actor)
    waiting = any(r == resident.id for r, _ in s.directory.waitlist(args.thing))
    if not waiting:
        thing = _seen_thing(s, args.thing, resident)
        raise CommandError(f"{resident.pseudonym} is not on the waitlist of {thing.id} (not_waiting)")
    s.directory.leave_waitlist(args.thing, resident.id, actor=resident.id, now=s.now)
    print(f"{resident.pseudonym} left the waitlist of {args.thing}")
    return 0


@_lending
def cmd_waitlist_show(args: argparse.Namespace, s: Session) -> int:
    viewer = s.actor(args.actor) if args.actor else None
    thing = _seen_thing(s, args.thing, viewer, Action.SEE_CUSTODY)
    waiting = s.directory.waitlist(thing.id)
    if not waiting:
        print(f"nobody is waiting for {thing.id}")
        return 0
    names = s.names()
    rows = [("#", "PSEUDONYM", "SINCE")]
    rows += [(str(n), names.get(r, r), _iso(since)) for n, (r, since) in enumerate(waiting, 1)]
    _table(rows)
    return 0


# -- the parser -----------------------------------------------------------------------------------------


def add_loan_commands(sub: Any, cfg: argparse.ArgumentParser) -> None:
    """Add loan and waitlist to the ``hub`` subcommands ``sub`` (``cfg``: the --config parent parser)."""

    def command(
        group: Any, name: str, handler: Handler, help_: str, *, changes: bool = True
    ) -> argparse.ArgumentParser:
        p = _command(group, name, handler, help_, cfg)
        if changes:
            p.description = f"{help_}. Stored at once; {PICKED_UP}."
        return p

    group = sub.add_parser(
        "loan",
        help="loans without a reader: reserve, approve, decline, cancel, out, return, report, list",
        description=f"Loans from the console. Changes are stored at once; {PICKED_UP}.",
    )
    group = group.add_subparsers(dest="loan_command", metavar="COMMAND", required=True)
    p = command(group, "reserve", cmd_loan_reserve, "reserve a thing, or request it when the owner approves")
    p.add_argument("thing", metavar="THING")
    _as(p, required=True, help_="the borrower")
    p.add_argument(
        "--start", metavar="ISO", help="when the loan starts, e.g. 2026-07-01T09:00Z (default now)"
    )
    p.add_argument("--days", type=float, metavar="N", help="how long (default: the lending policy's length)")
    p = command(group, "approve", cmd_loan_approve, "approve a requested loan")
    p.add_argument("loan", metavar="LOAN")
    _as(p, required=True, help_="the owner (or someone who may manage the thing)")
    p = command(group, "decline", cmd_loan_decline, "decline a request or withdraw a reservation")
    p.add_argument("loan", metavar="LOAN")
    _as(p, required=True, help_="the owner (or someone who may manage the thing)")
    p = command(group, "cancel", cmd_loan_cancel, "cancel a request or reservation before collecting it")
    p.add_argument("loan", metavar="LOAN")
    _as(p, required=True, help_="the borrower, or someone who may manage the thing")
    p = command(
        group,
        "out",
        cmd_loan_out,
        f"hand a thing over without a reader, e.g. at the owner's door; {UNVERIFIED_OUT}",
    )
    p.add_argument("thing", metavar="THING")
    _as(p, required=True, help_="the borrower: their reservation, or a loan on the spot")
    p = command(group, "return", cmd_loan_return, f"take a thing back without a reader; {UNVERIFIED_RETURN}")
    p.add_argument("thing", metavar="THING")
    _as(p, required=True, help_="who returns it: the borrower, the lender or a keeper")
    p = command(group, "report", cmd_loan_report, "report damage to, or the loss of, a loaned thing")
    p.add_argument("loan", metavar="LOAN")
    _as(p, required=True, help_="who reports: the borrower, the lender or a keeper")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--damage", metavar="TEXT", help="what is damaged")
    what.add_argument("--lost", action="store_true", help="the thing is lost")
    p = command(
        group,
        "list",
        cmd_loan_list,
        "loans: state, window, due, out and return times and readers",
        changes=False,
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--thing", metavar="ID", help="loans of this thing")
    which.add_argument("--resident", metavar="PSEUDONYM", help="loans this resident borrows or lends")
    p.add_argument("--open", action="store_true", help="only requested, reserved, out and overdue loans")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _as(p, required=False, help_="only what this resident may see: their loans and custody they see")

    group = sub.add_parser(
        "waitlist",
        help="who waits for a thing: join, leave, show",
        description="The first resident waiting is told when the thing comes back.",
    )
    group = group.add_subparsers(dest="waitlist_command", metavar="COMMAND", required=True)
    p = command(group, "join", cmd_waitlist_join, "wait for a thing that is out or booked")
    p.add_argument("thing", metavar="THING")
    _as(p, required=True, help_="who waits (must be able to reserve it)")
    p = command(group, "leave", cmd_waitlist_leave, "stop waiting for a thing")
    p.add_argument("thing", metavar="THING")
    _as(p, required=True, help_="who stops waiting")
    p = command(group, "show", cmd_waitlist_show, "who waits for a thing, first come first", changes=False)
    p.add_argument("thing", metavar="THING")
    _as(p, required=False, help_="show it as this resident may see it")
