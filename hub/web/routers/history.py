"""Past readings and what grows out of them: the readings API behind every chart, and the kiosk's and the
thing page's history sections (charts, tools to borrow, things by place, custody history).

Every answer is graded on the server by the permission function: a series only with see_history on the
thing, tools only with see_availability and never with a borrower, past borrowers only to those who may
see that loan. The page sections are template functions (``kiosk_sections``, ``thing_history``) that
``hub.web.application`` registers, so the dashboard and thing pages render them without JavaScript;
only the charts' data is fetched by ``static/charts.js``, one request per chart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

from hub.domain.events import Value
from hub.domain.model import Action, Loan, LoanState, Relation, RelationKind, Resident, Thing
from hub.domain.permissions import may
from hub.domain.privacy import coarse_location
from hub.domain.vocabulary import BOOLEAN, NUMERIC, unit_of
from hub.web import display
from hub.web.access import access, loan_visible
from hub.web.auth import Viewer, optional_viewer
from hub.web.context import WebContext, get_context, people_side, refusal
from hub.web.models import ErrorOut
from hub.web.routers.residents_view import Names, when

router = APIRouter(prefix="/api/v1/things", tags=["readings"])

Context = Annotated[WebContext, Depends(get_context)]
MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]

#: the longest window a chart may ask for (the 7-day toggle; the embedded store keeps 7 days by default)
MAX_HOURS = 168
#: points per series: enough for a chart a screen wide, few enough for a Pi to send quickly
MAX_POINTS = 300
#: the place of things with no named place (coordinates alone are not a place one can read on a screen)
ELSEWHERE = "elsewhere"
#: past loans listed on a thing's page
PAST_LOANS_SHOWN = 20
NO_HISTORY = "History needs the embedded store or InfluxDB 1.x (timeseries.kind); this hub has neither."

_NS_PER_S = 1_000_000_000
_UNAVAILABLE = (LoanState.OUT, LoanState.OVERDUE, LoanState.LOST)


class SeriesOut(BaseModel):
    measurement: str
    unit: str
    #: [epoch seconds, value], oldest first; bucket averages when the window holds many readings
    points: list[tuple[float, float | bool]]


class ReadingHistory(BaseModel):
    thing: str
    since: float
    until: float
    #: only measurements you may see the history of; none when you may see the thing but not its history
    series: list[SeriesOut]


@router.get(
    "/{thing_id}/readings",
    response_model=ReadingHistory,
    responses={404: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
def readings(
    thing_id: str,
    request: Request,
    response: Response,
    ctx: Context,
    viewer: MaybeViewer,
    measurement: Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")] = None,
    hours: Annotated[float, Query(gt=0, le=MAX_HOURS)] = 24,
) -> ReadingHistory:
    """A thing's readings over the last ``hours`` (one ``measurement``, or every one it reports now),
    as far as you may see its history. Anonymous: public things whose owners share readings."""
    resident = viewer.resident if viewer else None
    now = ctx.clock()
    found = _thing_and_relations(ctx, thing_id, now)
    if found is None or not may(resident, Action.SEE, found[0], found[1], now):
        raise HTTPException(status_code=404, detail=f"no thing with id {thing_id!r}")
    thing, relations = found
    if viewer is not None:
        response.headers["Cache-Control"] = "no-store"
        if ctx.directory is not None:
            request.app.state.view_log.viewed(ctx.directory, viewer.resident, thing, relations, "api")
    since = now - hours * 3600
    answer = ReadingHistory(thing=thing.id, since=since, until=now, series=[])
    if not may(resident, Action.SEE_HISTORY, thing, relations, now):
        return answer
    if ctx.history is None:
        raise HTTPException(status_code=503, detail=NO_HISTORY)
    if measurement is not None:
        names: Sequence[str] = [measurement]
    else:
        state = ctx.live.get(thing.id)
        names = _ordered(state.values) if state is not None else []
    for name in names:
        try:
            points = ctx.history.history(
                thing.id, name, int(since * _NS_PER_S), int(now * _NS_PER_S), max_points=MAX_POINTS
            )
        except Exception as exc:
            refused = refusal(exc)
            if refused is None:
                raise
            raise HTTPException(status_code=503, detail=refused[1]) from exc
        series = [(t / _NS_PER_S, v) for t, v in points]
        answer.series.append(SeriesOut(measurement=name, unit=unit_of(name), points=series))
    return answer


def _thing_and_relations(ctx: WebContext, thing_id: str, now: float) -> tuple[Thing, list[Relation]] | None:
    """The thing and its relations, from the directory when the hub has one (a watch just revoked counts
    at once), else from the catalog."""
    if ctx.directory is not None:
        thing = ctx.directory.thing(thing_id)
        return None if thing is None else (thing, ctx.directory.relations_of_thing(thing_id, now=now))
    thing = ctx.catalog.thing(thing_id)
    return None if thing is None else (thing, ctx.catalog.relations(thing_id))


# -- template functions ------------------------------------------------------------------------------


_ORDER = {name: i for i, name in enumerate(NUMERIC)}


def _ordered(values: Mapping[str, Value]) -> list[str]:
    """Measurement names in the vocabulary's order (as the dashboard lists them), unknown names last."""
    return sorted(values, key=lambda name: (_ORDER.get(name, len(_ORDER)), name))


def _numeric(values: Mapping[str, Value]) -> list[str]:
    """Names of numeric values (booleans are not charted)."""
    return [name for name in _ordered(values) if name not in BOOLEAN and not isinstance(values[name], bool)]


def _chart(name: str) -> dict[str, str]:
    return {"name": name, "label": display.label(name), "unit": unit_of(name)}


def kiosk_sections(ctx: WebContext, viewer: Viewer | None) -> dict[str, Any]:
    """The dashboard's charts, tools to borrow and things by place, graded for ``viewer`` (None: kiosk).

    ``charts``: sensors whose history the viewer may see, each with its numeric measurements;
    ``tools``: [{name, count}] of lendable things available now (counts only, never who has the others);
    ``places``: [{place, things: [name]}], named places first by name, then "elsewhere";
    ``history``: whether the hub can chart at all; ``lending``: whether it knows loans.
    """
    resident = viewer.resident if viewer else None
    now = ctx.clock()
    things: dict[str, tuple[Thing, list[Relation]]] = {}
    ids = {thing.id for thing in ctx.directory.things()} if ctx.directory is not None else set()
    ids |= {state.id for state in ctx.live.snapshot(0)[1]}
    for thing_id in ids:
        thing = ctx.catalog.thing(thing_id)
        if thing is None or thing.retired:
            continue
        relations = ctx.catalog.relations(thing_id)
        if may(resident, Action.SEE, thing, relations, now):
            things[thing_id] = (thing, relations)

    charts = []
    if ctx.history is not None:
        for thing_id, (thing, relations) in sorted(things.items()):
            state = ctx.live.get(thing_id)
            if thing.kind != "sensor" or state is None:
                continue
            if not may(resident, Action.SEE_HISTORY, thing, relations, now):
                continue
            if measurements := [_chart(name) for name in _numeric(state.values)]:
                charts.append({"id": thing_id, "name": thing.name, "measurements": measurements})

    tools: Counter[str] = Counter()
    if ctx.directory is not None:
        away = {loan.thing for loan in ctx.directory.loans(states=_UNAVAILABLE)}
        for thing_id, (thing, relations) in things.items():
            lent = any(r.kind is RelationKind.LENDS and r.active(now) for r in relations)
            if (
                lent
                and thing_id not in away
                and may(resident, Action.SEE_AVAILABILITY, thing, relations, now)
            ):
                tools[thing.name] += 1

    places: dict[str, list[str]] = {}
    for thing, _ in things.values():
        coarse = coarse_location(thing.location)
        place = coarse.place if coarse is not None and coarse.place else ELSEWHERE
        places.setdefault(place, []).append(thing.name)
    order = sorted(places, key=lambda place: (place == ELSEWHERE, place.casefold()))
    return {
        "charts": charts,
        "tools": [{"name": name, "count": tools[name]} for name in sorted(tools, key=str.casefold)],
        "places": [{"place": place, "things": sorted(places[place], key=str.casefold)} for place in order],
        "history": ctx.history is not None,
        "lending": ctx.directory is not None,
    }


def thing_history(ctx: WebContext, viewer: Viewer, thing: Thing) -> dict[str, Any]:
    """A thing page's history: charts (``measurements``, or ``note`` why there are none) and its custody
    history (``loans`` the viewer may see, named; ``others`` counted without names)."""
    side = people_side(ctx)
    me = viewer.resident
    now = ctx.clock()
    found = access(side, me, thing.id, now)
    if found is None:
        return {"chart": False, "measurements": [], "note": None, "loans": [], "others": None}

    measurements: list[dict[str, str]] = []
    note = None
    if found.may(Action.SEE_HISTORY):
        state = ctx.live.get(thing.id)
        measurements = [_chart(name) for name in _numeric(state.values)] if state is not None else []
        if ctx.history is None:
            note = NO_HISTORY
        elif not measurements:
            note = "No numeric readings to chart yet."

    names = Names(side)
    past = [loan for loan in side.directory.loans(thing=thing.id) if loan.out_at is not None]
    past.sort(key=lambda loan: loan.out_at or 0.0, reverse=True)
    shown = [loan for loan in past if loan_visible(loan, me, found)]
    hidden = [loan for loan in past if not loan_visible(loan, me, found)]
    others = None
    if hidden and found.may(Action.SEE_AVAILABILITY):
        late = sum(1 for loan in hidden if _late(loan, now))
        others = {"count": len(hidden), "late": late}
    return {
        "chart": found.may(Action.SEE_HISTORY) and ctx.history is not None and bool(measurements),
        "measurements": measurements,
        "note": note,
        "loans": [_loan_row(loan, me, names, now) for loan in shown[:PAST_LOANS_SHOWN]],
        "others": others,
    }


def _late(loan: Loan, now: float) -> bool:
    if loan.state is LoanState.OVERDUE:
        return True
    end = loan.returned_at if loan.returned_at is not None else now
    return loan.state in (LoanState.RETURNED, LoanState.OUT, LoanState.LOST) and end > loan.due


def _loan_row(loan: Loan, me: Resident, names: Names, now: float) -> dict[str, Any]:
    return {
        "state": loan.state.value,
        "who": "you" if loan.borrower == me.id else names(loan.borrower),
        "out": when(loan.out_at),
        "due": when(loan.due),
        "returned": when(loan.returned_at),
        "late": _late(loan, now),
    }
