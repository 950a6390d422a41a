"""Resident pages: /me (my things, things I watch, my loans and reservations, requests to decide) and
/things/{id} (a thing as the viewer may see it), with the forms that borrow, reserve, wait and return.

Everything shown is graded by the permission function for the signed-in viewer; the buttons come from
``allowed_actions``, and the lending desk asks again when a form is posted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.domain.lending import HELD, custody
from hub.domain.model import Action, Loan, LoanState, RelationKind, Resident
from hub.domain.privacy import contact_for, location_for, public_pseudonym, visible_values
from hub.domain.trust import TIER_NAMES, explain, tier
from hub.web import display
from hub.web.access import Access, Refused, access, loan_visible, require_access
from hub.web.alert_grading import alerts_for
from hub.web.auth import Viewer, page_viewer, safe_next
from hub.web.context import PeopleSide, WebContext, get_context, people_side, refusal
from hub.web.routers.account import render
from hub.web.routers.loans import lending_step
from hub.web.routers.things import device_view

router = APIRouter(tags=["resident pages"], include_in_schema=False)

Context = Annotated[WebContext, Depends(get_context)]
PageViewer = Annotated[Viewer, Depends(page_viewer)]

OPEN = (LoanState.REQUESTED, LoanState.RESERVED, LoanState.OUT, LoanState.OVERDUE)
#: closed loans listed on /me
RECENT_CLOSED = 10
_KEEPERS = (RelationKind.OWNS, RelationKind.STEWARDS, RelationKind.LENDS)


@dataclass
class Names:
    """Resident id → the name others see, looked up once per page."""

    side: PeopleSide
    cache: dict[str, str] = field(default_factory=dict)

    def __call__(self, resident_id: str) -> str:
        if resident_id not in self.cache:
            resident = self.side.directory.resident(resident_id)
            self.cache[resident_id] = public_pseudonym(resident) if resident else "unknown"
        return self.cache[resident_id]


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def loan_row(loan: Loan, names: Names, me: str, thing_name: str) -> dict[str, Any]:
    return {
        "id": loan.id,
        "thing": loan.thing,
        "thing_name": thing_name,
        "state": loan.state.value,
        "borrower": "you" if loan.borrower == me else names(loan.borrower),
        "lender": "you" if loan.lender == me else names(loan.lender),
        "start": when(loan.start),
        "due": when(loan.due),
        "out": loan.state in HELD,
        "cancellable": loan.state in (LoanState.REQUESTED, LoanState.RESERVED),
        "requested": loan.state is LoanState.REQUESTED,
    }


# -- /me ----------------------------------------------------------------------------------------------


ME_DONE = {
    "alert-acknowledge": "Acknowledged.",
    "alert-claim": "Claimed: the others see that you are on it.",
    "alert-release": "Released.",
    "alert-clear": "Cleared.",
}


@router.get("/me", response_class=HTMLResponse)
def me_page(request: Request, ctx: Context, viewer: PageViewer, done: str | None = None) -> Response:
    return me_page_response(request, ctx, viewer, message=ME_DONE.get(done or ""))


def me_page_response(
    request: Request,
    ctx: WebContext,
    viewer: Viewer,
    *,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """/me with an optional notice (after a form) or error (a refused form, with its status)."""
    side = people_side(ctx)
    now = ctx.clock()
    me = viewer.resident
    names = Names(side)
    relations = side.directory.relations_of_resident(me.id, now=now)
    mine: dict[str, set[str]] = {}
    watched: list[str] = []
    for relation in relations:
        if relation.kind in _KEEPERS:
            mine.setdefault(relation.thing, set()).add(relation.kind.value)
        elif relation.kind is RelationKind.WATCHES:
            watched.append(relation.thing)

    def thing_row(thing_id: str, kinds: set[str] | None = None) -> dict[str, Any] | None:
        found = access(side, me, thing_id, now)
        if found is None:
            return None
        holder = custody(thing_id, side.directory.loans(thing=thing_id, states=OPEN), now)
        state = "available"
        if holder is not None and found.may(Action.SEE_CUSTODY):
            state = f"{holder.state.value}: {'you' if holder.borrower == me.id else names(holder.borrower)}"
        elif holder is not None:
            state = "out"
        return {"id": thing_id, "name": found.thing.name, "kinds": sorted(kinds or ()), "state": state}

    my_things = [row for thing_id, kinds in sorted(mine.items()) if (row := thing_row(thing_id, kinds))]
    watched_things = [row for thing_id in sorted(set(watched)) if (row := thing_row(thing_id))]

    thing_names: dict[str, str] = {}

    def thing_name(thing_id: str) -> str:
        if thing_id not in thing_names:
            thing = side.directory.thing(thing_id)
            thing_names[thing_id] = thing.name if thing else thing_id
        return thing_names[thing_id]

    loans = side.directory.loans(borrower=me.id)
    open_loans = [
        loan_row(loan, names, me.id, thing_name(loan.thing)) for loan in loans if loan.state in OPEN
    ]
    closed = [loan for loan in loans if loan.state not in OPEN]
    closed.sort(key=lambda loan: loan.returned_at or loan.due, reverse=True)
    past = [loan_row(loan, names, me.id, thing_name(loan.thing)) for loan in closed[:RECENT_CLOSED]]

    to_decide = []
    for thing_id in sorted(mine):
        found = access(side, me, thing_id, now)
        if found is None or not found.may(Action.MANAGE):
            continue
        for loan in side.directory.loans(thing=thing_id, states=(LoanState.REQUESTED,)):
            to_decide.append(loan_row(loan, names, me.id, found.thing.name))

    record = side.desk.trust(me.id)
    return render(
        request,
        "me.html",
        {
            "me": me,
            "my_things": my_things,
            "watched": watched_things,
            "loans": open_loans,
            "past": past,
            "to_decide": to_decide,
            "trust": f"{TIER_NAMES[tier(record)]}: {explain(record)}",
            "alerts": alerts_for(ctx, side, me),
            "alerting": ctx.alerts is not None,
            "message": message,
            "error": error,
        },
        status_code=status_code,
    )


# -- /things/{id} -------------------------------------------------------------------------------------


DONE = {
    "borrowed": "It is out to you now.",
    "returned": "It is back.",
    "reserved": "Booked.",
    "waiting": "You are on the waitlist.",
    "left-waitlist": "You left the waitlist.",
}


@router.get("/things/{thing_id}", response_class=HTMLResponse)
def thing_page(
    thing_id: str, request: Request, ctx: Context, viewer: PageViewer, done: str | None = None
) -> Response:
    side = people_side(ctx)
    found = access(side, viewer.resident, thing_id, ctx.clock())
    if found is not None:  # "who saw what about my things": the owner reads it on /me/audit
        request.app.state.view_log.viewed(
            side.directory, viewer.resident, found.thing, found.relations, "page"
        )
    return _thing_page(request, ctx, viewer, thing_id, message=DONE.get(done or ""))


def _thing_page(
    request: Request,
    ctx: WebContext,
    viewer: Viewer,
    thing_id: str,
    *,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    side = people_side(ctx)
    now = ctx.clock()
    me = viewer.resident
    found = access(side, me, thing_id, now)
    if found is None:  # the same page for a thing that does not exist and one the viewer may not know
        return render(request, "not_found.html", {"what": f"no thing with id {thing_id!r}"}, status_code=404)
    return render(
        request,
        "thing.html",
        {**thing_context(ctx, side, me, found), "message": message, "error": error},
        status_code=status_code,
    )


def thing_context(ctx: WebContext, side: PeopleSide, me: Resident, found: Access) -> dict[str, Any]:
    thing, relations, now = found.thing, found.relations, found.now
    names = Names(side)

    people = []
    for relation in sorted(relations, key=lambda r: (list(RelationKind).index(r.kind), r.valid_from)):
        if not relation.active(now):
            continue
        # keepers are the thing's public face; who holds it is custody; who watches is their own business
        if relation.kind is RelationKind.BORROWS and not found.may(Action.SEE_CUSTODY):
            continue
        watcher = relation.kind is RelationKind.WATCHES
        if watcher and relation.resident != me.id and not found.may(Action.MANAGE):
            continue
        person = side.directory.resident(relation.resident)
        contacts = contact_for(me, person, thing, relations, now) if person and person.id != me.id else ()
        people.append(
            {
                "kind": relation.kind.value,
                "who": "you" if relation.resident == me.id else names(relation.resident),
                "until": when(relation.valid_until),
                "contacts": [f"{c.kind}: {c.value}" for c in contacts],
            }
        )

    state = ctx.live.get(thing.id)
    values = visible_values(me, thing, relations, now, state.values) if state is not None else None
    readings = None
    if state is not None and values is not None:
        times = {name: state.times[name] for name in values if name in state.times}
        readings = display.thing_view(replace(state, values=dict(values), times=times), now)

    loans = side.directory.loans(thing=thing.id, states=OPEN)
    holder = custody(thing.id, loans, now)
    out = holder is not None
    custody_text = None
    if found.may(Action.SEE_CUSTODY):
        custody_text = (
            f"{holder.state.value}: held by {'you' if holder.borrower == me.id else names(holder.borrower)}, "
            f"due {when(holder.due)}"
            if holder is not None
            else "available"
        )
    elif found.may(Action.SEE_AVAILABILITY):
        custody_text = "out" if out else "available"
    bookings = [
        {
            "who": _booker(loan, me, found, names),
            "state": loan.state.value,
            "start": when(loan.start),
            "due": when(loan.due),
            "id": loan.id,
            "mine": loan.borrower == me.id,
        }
        for loan in loans
        if loan.state in (LoanState.REQUESTED, LoanState.RESERVED) and found.may(Action.SEE_AVAILABILITY)
    ]
    waiting = [resident for resident, _ in side.directory.waitlist(thing.id)]
    lent = bool(found.people(RelationKind.LENDS))
    location = location_for(me, thing, relations, now)
    return {
        "thing": thing,
        "place": display_place(location),
        "people": people,
        "readings": readings,
        "custody": custody_text,
        "bookings": bookings,
        "lent": lent,
        "can_borrow": found.may(Action.BORROW) and not out,
        "can_reserve": found.may(Action.RESERVE),
        "can_wait": found.may(Action.RESERVE)
        and (out or bool(bookings))
        and me.id not in waiting
        and not (holder is not None and holder.borrower == me.id),
        "waiting_at": waiting.index(me.id) + 1 if me.id in waiting else None,
        "can_return": found.may(Action.RETURN) and out,
        "holder_is_me": holder is not None and holder.borrower == me.id,
        "today": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d"),
        "can_edit_rules": ctx.alerts is not None and found.may(Action.MANAGE),
        "device": device_view(ctx, thing, now, manage=found.may(Action.MANAGE)),
    }


def _booker(loan: Loan, me: Resident, found: Access, names: Names) -> str:
    """Who booked a window: named to themself and to those who decide on loans, else "a neighbor"."""
    if loan.borrower == me.id:
        return "you"
    if found.may(Action.MANAGE) or loan.lender == me.id:
        return names(loan.borrower)
    return "a neighbor"


def display_place(location: Any) -> str:
    if location is None:
        return "not given"
    if location.place:
        return str(location.place)
    if location.lat is not None and location.lon is not None:
        return f"{location.lat:.5f}, {location.lon:.5f}"
    return "not given"


# -- forms --------------------------------------------------------------------------------------------


def _act(request: Request, ctx: WebContext, viewer: Viewer, thing_id: str, step: Any, done: str) -> Response:
    side = people_side(ctx)
    require_visible = access(side, viewer.resident, thing_id, ctx.clock())
    if require_visible is None:
        return render(request, "not_found.html", {"what": f"no thing with id {thing_id!r}"}, status_code=404)
    try:
        step(side)
    except Refused as exc:
        return _thing_page(request, ctx, viewer, thing_id, error=_words(exc), status_code=exc.status)
    return RedirectResponse(f"/things/{thing_id}?done={done}", status_code=303)


def _words(exc: Refused) -> str:
    if exc.reason == "forbidden":
        return "You may not do that with this thing."
    return exc.detail[:1].upper() + exc.detail[1:]


@router.post("/things/{thing_id}/borrow")
def borrow(thing_id: str, request: Request, ctx: Context, viewer: PageViewer) -> Response:
    me = viewer.resident.id
    return _act(
        request,
        ctx,
        viewer,
        thing_id,
        lambda side: lending_step(lambda: side.desk.check_out(thing_id, me, actor=me)),
        "borrowed",
    )


@router.post("/things/{thing_id}/return")
def give_back(thing_id: str, request: Request, ctx: Context, viewer: PageViewer) -> Response:
    me = viewer.resident.id
    return _act(
        request,
        ctx,
        viewer,
        thing_id,
        lambda side: lending_step(lambda: side.desk.check_in(thing_id, actor=me)),
        "returned",
    )


@router.post("/things/{thing_id}/reserve")
def reserve(
    thing_id: str,
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    start: Annotated[str, Form(max_length=32)] = "",
    days: Annotated[float | None, Form(gt=0, le=365)] = None,
) -> Response:
    me = viewer.resident.id

    def step(side: PeopleSide) -> None:
        when_ = _parse_day(start, ctx.clock())
        lending_step(lambda: side.desk.reserve(me, thing_id, when_, days))

    return _act(request, ctx, viewer, thing_id, step, "reserved")


def _parse_day(text: str, now: float) -> float | None:
    """A date (YYYY-MM-DD, from the start of that day UTC, or now when it is today) or a date and time."""
    text = text.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Refused(422, "bad_window", f"{text!r} is not a date such as 2025-07-01") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return max(parsed.timestamp(), now)


@router.post("/things/{thing_id}/waitlist")
def wait_for(thing_id: str, request: Request, ctx: Context, viewer: PageViewer) -> Response:
    me = viewer.resident.id
    now = ctx.clock()

    def step(side: PeopleSide) -> None:
        found = require_access(side, viewer.resident, thing_id, now)
        if not found.may(Action.RESERVE):
            raise Refused(403, "forbidden", "you may not borrow this thing")
        _directory(lambda: side.directory.join_waitlist(thing_id, me, actor=me, now=now))

    return _act(request, ctx, viewer, thing_id, step, "waiting")


@router.post("/things/{thing_id}/waitlist/leave")
def stop_waiting(thing_id: str, request: Request, ctx: Context, viewer: PageViewer) -> Response:
    me = viewer.resident.id
    now = ctx.clock()
    return _act(
        request,
        ctx,
        viewer,
        thing_id,
        lambda side: _directory(lambda: side.directory.leave_waitlist(thing_id, me, actor=me, now=now)),
        "left-waitlist",
    )


def _directory(step: Any) -> None:
    try:
        step()
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        raise Refused(409, *refused) from exc


@router.post("/loans/{loan_id}/{decision}")
def decide(
    loan_id: str,
    decision: str,
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    next_path: Annotated[str | None, Form(alias="next")] = None,
) -> Response:
    """Cancel your reservation, or approve or decline a request for a thing you lend."""
    side = people_side(ctx)
    me = viewer.resident
    now = ctx.clock()
    loan = side.directory.loan(loan_id)
    found = access(side, me, loan.thing, now) if loan is not None else None
    if loan is None or decision not in ("cancel", "approve", "decline") or not loan_visible(loan, me, found):
        return render(request, "not_found.html", {"what": f"no loan with id {loan_id!r}"}, status_code=404)
    try:
        if decision == "cancel":
            lending_step(lambda: side.desk.cancel(loan_id, me.id))
        else:
            lending_step(lambda: side.desk.decide(loan_id, decision == "approve", me.id))
    except Refused as exc:
        return _thing_page(request, ctx, viewer, loan.thing, error=_words(exc), status_code=exc.status)
    return RedirectResponse(safe_next(next_path), status_code=303)
