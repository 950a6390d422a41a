"""/api/v1/loans and the lending actions on /api/v1/things/{id}: reserve, approve, decline, cancel,
check out, return, waitlist.

Every request names a signed-in resident (access token or session); the lending desk asks the
permission function before it acts. Refusals are JSON ``{"reason": ..., "detail": ...}``: 404
``not_found`` alike for ids that do not exist and ids the resident may not know, 403 ``forbidden``
when the permission function says no, 409 (or 422 for a malformed window) with the lending rules'
reason code otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from hub.domain.lending import LendingError
from hub.domain.model import Action, Loan, LoanState
from hub.domain.privacy import public_pseudonym
from hub.web.access import Access, Refused, access, loan_visible, not_found, require_access
from hub.web.auth import Viewer, api_viewer
from hub.web.context import PeopleSide, WebContext, get_context, people_side, refusal

router = APIRouter(prefix="/api/v1", tags=["loans"])

Context = Annotated[WebContext, Depends(get_context)]
ApiViewer = Annotated[Viewer, Depends(api_viewer)]

#: lending reasons that mean "the request itself is malformed" rather than "not now"
_MALFORMED = frozenset({"bad_window", "empty_report"})


class RefusalOut(BaseModel):
    reason: str = Field(description="Stable code: not_found, forbidden, conflict, not_eligible, …")
    detail: str = Field(description="What happened and what to do, in words")
    window: list[float] | None = Field(
        default=None, description="With conflict: the clashing window [start, end] in epoch seconds"
    )


class LoanOut(BaseModel):
    id: str
    thing: str
    state: LoanState
    borrower: str = Field(description="The borrower's pseudonym")
    lender: str = Field(description="The lender's pseudonym")
    mine: bool = Field(description="Whether you are the borrower")
    start: datetime
    due: datetime
    requested_at: datetime
    out_at: datetime | None = None
    returned_at: datetime | None = None


class LoanList(BaseModel):
    loans: list[LoanOut]


class LoanRequest(BaseModel):
    thing: str = Field(min_length=1, max_length=128)
    start: datetime | None = Field(default=None, description="When the loan starts; default now")
    days: float | None = Field(default=None, gt=0, description="Loan length; default the lending policy's")


REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": RefusalOut, "description": "Not signed in"},
    403: {"model": RefusalOut, "description": "The permission function said no"},
    404: {"model": RefusalOut, "description": "No such id, or one you may not know about"},
    409: {"model": RefusalOut, "description": "The lending rules refuse it now (reason says why)"},
    422: {"model": RefusalOut, "description": "Malformed request"},
}


def loan_out(side: PeopleSide, loan: Loan, viewer_id: str) -> LoanOut:
    def name(resident_id: str) -> str:
        resident = side.directory.resident(resident_id)
        return public_pseudonym(resident) if resident else "unknown"

    return LoanOut(
        id=loan.id,
        thing=loan.thing,
        state=loan.state,
        borrower=name(loan.borrower),
        lender=name(loan.lender),
        mine=loan.borrower == viewer_id,
        start=_utc(loan.start),
        due=_utc(loan.due),
        requested_at=_utc(loan.requested_at),
        out_at=_utc(loan.out_at) if loan.out_at is not None else None,
        returned_at=_utc(loan.returned_at) if loan.returned_at is not None else None,
    )


def lending_step(step: Callable[[], Loan]) -> Loan:
    """Run a desk operation, turning its refusals into ``Refused`` with the right status."""
    try:
        return step()
    except LendingError as exc:
        if exc.reason in ("unknown_thing", "unknown_loan"):
            raise Refused(404, "not_found", exc.detail) from exc
        status = 422 if exc.reason in _MALFORMED else 409
        raise Refused(status, exc.reason, exc.detail, window=exc.window) from exc
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        reason, detail = refused
        if reason == "forbidden":
            raise Refused(403, "forbidden", "you may not do that with this thing") from exc
        raise Refused(409, reason, detail) from exc


# -- loans --------------------------------------------------------------------------------------------


@router.get("/loans", response_model=LoanList, responses=REFUSALS)
def list_loans(
    ctx: Context,
    viewer: ApiViewer,
    thing: Annotated[str | None, Query(max_length=128, description="Only loans of this thing")] = None,
    state: Annotated[list[LoanState] | None, Query(description="Only loans in these states")] = None,
) -> LoanList:
    """Your loans, and the loans you may see: every loan of things you own, steward or lend; of other
    things you may see custody of, the loan that holds them now."""
    side = people_side(ctx)
    now = ctx.clock()
    me = viewer.resident
    accesses: dict[str, Access | None] = {}
    shown = []
    for loan in side.directory.loans(thing=thing, states=state):
        if loan.thing not in accesses:
            accesses[loan.thing] = access(side, me, loan.thing, now)
        if loan_visible(loan, me, accesses[loan.thing]):
            shown.append(loan_out(side, loan, me.id))
    return LoanList(loans=shown)


@router.get("/loans/{loan_id}", response_model=LoanOut, responses=REFUSALS)
def get_loan(loan_id: str, ctx: Context, viewer: ApiViewer) -> LoanOut:
    side = people_side(ctx)
    return loan_out(side, _visible_loan(side, viewer, loan_id, ctx.clock()), viewer.resident.id)


def _visible_loan(side: PeopleSide, viewer: Viewer, loan_id: str, now: float) -> Loan:
    loan = side.directory.loan(loan_id)
    found = access(side, viewer.resident, loan.thing, now) if loan is not None else None
    if loan is None or not loan_visible(loan, viewer.resident, found):
        raise not_found("loan", loan_id)
    return loan


@router.post("/loans", response_model=LoanOut, status_code=201, responses=REFUSALS)
def reserve(body: LoanRequest, ctx: Context, viewer: ApiViewer) -> LoanOut:
    """Reserve a thing (or request it, when its owner approves each loan)."""
    side = people_side(ctx)
    require_access(side, viewer.resident, body.thing, ctx.clock())
    start = body.start.timestamp() if body.start is not None else None
    if start is not None and not math.isfinite(start):
        raise Refused(422, "bad_window", "start must be a date and time")
    loan = lending_step(lambda: side.desk.reserve(viewer.resident.id, body.thing, start, body.days))
    return loan_out(side, loan, viewer.resident.id)


@router.post("/loans/{loan_id}/approve", response_model=LoanOut, responses=REFUSALS)
def approve(loan_id: str, ctx: Context, viewer: ApiViewer) -> LoanOut:
    return _decide(loan_id, ctx, viewer, approve=True)


@router.post("/loans/{loan_id}/decline", response_model=LoanOut, responses=REFUSALS)
def decline(loan_id: str, ctx: Context, viewer: ApiViewer) -> LoanOut:
    return _decide(loan_id, ctx, viewer, approve=False)


def _decide(loan_id: str, ctx: WebContext, viewer: Viewer, *, approve: bool) -> LoanOut:
    side = people_side(ctx)
    loan = _visible_loan(side, viewer, loan_id, ctx.clock())
    loan = lending_step(lambda: side.desk.decide(loan.id, approve, viewer.resident.id))
    return loan_out(side, loan, viewer.resident.id)


@router.post("/loans/{loan_id}/cancel", response_model=LoanOut, responses=REFUSALS)
def cancel(loan_id: str, ctx: Context, viewer: ApiViewer) -> LoanOut:
    side = people_side(ctx)
    loan = _visible_loan(side, viewer, loan_id, ctx.clock())
    loan = lending_step(lambda: side.desk.cancel(loan.id, viewer.resident.id))
    return loan_out(side, loan, viewer.resident.id)


# -- things -------------------------------------------------------------------------------------------


@router.post("/things/{thing_id}/checkout", response_model=LoanOut, status_code=201, responses=REFUSALS)
def check_out(thing_id: str, ctx: Context, viewer: ApiViewer) -> LoanOut:
    """Borrow a thing now (your reservation when one is due, else a walk-up loan), without a reader."""
    side = people_side(ctx)
    require_access(side, viewer.resident, thing_id, ctx.clock())
    me = viewer.resident.id
    loan = lending_step(lambda: side.desk.check_out(thing_id, me, actor=me))
    return loan_out(side, loan, me)


@router.post("/things/{thing_id}/return", response_model=LoanOut, responses=REFUSALS)
def check_in(thing_id: str, ctx: Context, viewer: ApiViewer) -> LoanOut:
    """Record that the thing is back (the borrower, its owner, stewards or lender may)."""
    side = people_side(ctx)
    require_access(side, viewer.resident, thing_id, ctx.clock())
    me = viewer.resident.id
    loan = lending_step(lambda: side.desk.check_in(thing_id, actor=me))
    return loan_out(side, loan, me)


class WaitlistOut(BaseModel):
    thing: str
    waiting: bool
    position: int | None = Field(description="1 is next; null when not waiting")


@router.post("/things/{thing_id}/waitlist", response_model=WaitlistOut, status_code=201, responses=REFUSALS)
def join_waitlist(thing_id: str, ctx: Context, viewer: ApiViewer) -> WaitlistOut:
    """Wait for a thing that is out or booked; the first in line is told when it comes back."""
    side = people_side(ctx)
    now = ctx.clock()
    found = require_access(side, viewer.resident, thing_id, now)
    if not found.may(Action.RESERVE):
        raise Refused(403, "forbidden", "you may not borrow this thing, so you cannot wait for it")
    me = viewer.resident.id
    _directory_step(lambda: side.directory.join_waitlist(thing_id, me, actor=me, now=now))
    return waitlist_out(side, thing_id, me)


@router.delete("/things/{thing_id}/waitlist", response_model=WaitlistOut, responses=REFUSALS)
def leave_waitlist(thing_id: str, ctx: Context, viewer: ApiViewer) -> WaitlistOut:
    side = people_side(ctx)
    now = ctx.clock()
    require_access(side, viewer.resident, thing_id, now)
    me = viewer.resident.id
    _directory_step(lambda: side.directory.leave_waitlist(thing_id, me, actor=me, now=now))
    return waitlist_out(side, thing_id, me)


def waitlist_out(side: PeopleSide, thing_id: str, resident_id: str) -> WaitlistOut:
    line = [resident for resident, _ in side.directory.waitlist(thing_id)]
    position = line.index(resident_id) + 1 if resident_id in line else None
    return WaitlistOut(thing=thing_id, waiting=position is not None, position=position)


def _directory_step(step: Callable[[], None]) -> None:
    try:
        step()
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        raise Refused(409, *refused) from exc


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
