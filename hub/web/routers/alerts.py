"""Alerts on the web: the buttons on /me (acknowledge, claim with a note, release, clear), an alert's
history page /alerts/{id}, and /api/v1/alerts.

The alert board asks the permission function (acknowledge_alert) before any step. A missing alert, a
cleared one and one the resident may not act on all answer 404 alike, so ids cannot be probed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from hub.domain.alerts import Alert, AlertError, Detail
from hub.domain.model import Resident
from hub.domain.privacy import public_pseudonym
from hub.web.access import Refused, access, not_found
from hub.web.alert_grading import ACTIONS, detail_for, pseudonyms, shown, visible_alerts, when
from hub.web.auth import Viewer, api_viewer, optional_viewer, page_viewer, safe_next
from hub.web.context import AlertBoard, AlertRecordView, WebContext, get_context, people_side, refusal
from hub.web.routers.account import render as render_page
from hub.web.routers.residents_view import me_page_response

router = APIRouter(tags=["alerts"])

Context = Annotated[WebContext, Depends(get_context)]
PageViewer = Annotated[Viewer, Depends(page_viewer)]
ApiViewer = Annotated[Viewer, Depends(api_viewer)]
MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]
Step = Literal["acknowledge", "claim", "release", "clear"]

#: longest claim note kept ("I'm going to check the flood sensor")
NOTE_LIMIT = 500


def board(ctx: WebContext) -> AlertBoard:
    """The alert board, or 503 when the hub runs without alerting (fail closed)."""
    if ctx.alerts is None:
        raise HTTPException(status_code=503, detail="alerting is not set up on this hub")
    return ctx.alerts


# -- the REST API -------------------------------------------------------------------------------------


class AlertOut(BaseModel):
    id: str
    thing: str
    thing_name: str
    kind: str = Field(description="The rule kind: threshold, boolean, offline, stale, low_battery, …")
    severity: str = Field(description="critical, major, minor, warning or info")
    state: str = Field(description="active, acknowledged or claimed")
    title: str
    body: str = Field(description="In words, with no more of the readings than you may see")
    opened_at: datetime
    updated_at: datetime
    acknowledged_by: str | None = Field(description="Pseudonym")
    claimed_by: str | None = Field(description="Pseudonym")

    @classmethod
    def of(cls, row: dict[str, Any]) -> AlertOut:
        return cls(
            **{k: v for k, v in row.items() if k in cls.model_fields and not k.endswith("_at")},
            opened_at=datetime.fromtimestamp(row["opened_at"], UTC),
            updated_at=datetime.fromtimestamp(row["updated_at"], UTC),
        )


class AlertList(BaseModel):
    alerts: list[AlertOut]


class AlertStep(BaseModel):
    note: str = Field(default="", max_length=NOTE_LIMIT, description="With claim: what you are doing")


class RefusalOut(BaseModel):
    reason: str
    detail: str


REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": RefusalOut, "description": "Not signed in"},
    404: {"model": RefusalOut, "description": "No such open alert, or one you may not act on"},
    409: {"model": RefusalOut, "description": "The alert's lifecycle does not allow this step now"},
    503: {"model": RefusalOut, "description": "Alerting is not set up on this hub"},
}


@router.get("/api/v1/alerts", response_model=AlertList, responses=REFUSALS)
def list_alerts(ctx: Context, viewer: MaybeViewer) -> AlertList:
    """Open alerts of the things you may see, most severe first (anonymous: public things only)."""
    board(ctx)
    return AlertList(alerts=[AlertOut.of(row) for row in visible_alerts(ctx, _resident(viewer))])


@router.post("/api/v1/alerts/{alert_id}/{step}", response_model=AlertOut, responses=REFUSALS)
def act_on_alert(
    alert_id: str,
    step: Step,
    ctx: Context,
    viewer: ApiViewer,
    body: Annotated[AlertStep | None, Body()] = None,
) -> AlertOut:
    """Acknowledge, claim (with a note), release your claim on, or clear an open alert."""
    alert = _act(ctx, viewer, alert_id, step, body.note if body else "")
    side = people_side(ctx)
    now = ctx.clock()
    thing = side.directory.thing(alert.thing)
    if thing is None:
        raise not_found("alert", alert_id)
    relations = side.directory.relations_of_thing(thing.id, now=now)
    detail = detail_for(viewer.resident, thing, relations, now)
    return AlertOut.of(shown(alert, thing, detail, pseudonyms(ctx)))


def _act(ctx: WebContext, viewer: Viewer, alert_id: str, step: str, note: str) -> Alert:
    """One step through the board; Refused 404 for missing or forbidden, 409 for the lifecycle."""
    alerts = board(ctx)
    try:
        return alerts.act(alert_id, viewer.resident.id, step, note.strip()[:NOTE_LIMIT])
    except AlertError as exc:
        if exc.reason == "unknown_alert":
            raise not_found("open alert", alert_id) from exc
        raise Refused(409, exc.reason, exc.detail) from exc
    except Exception as exc:
        refused = refusal(exc)
        if refused is None or refused[0] != "forbidden":
            raise
        raise not_found("open alert", alert_id) from exc


def _resident(viewer: Viewer | None) -> Resident | None:
    return viewer.resident if viewer else None


# -- pages --------------------------------------------------------------------------------------------


@router.post("/alerts/{alert_id}/{step}", include_in_schema=False)
def act_from_page(
    alert_id: str,
    step: str,
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    note: Annotated[str, Form(max_length=NOTE_LIMIT)] = "",
    next_path: Annotated[str | None, Form(alias="next")] = None,
) -> Response:
    """The buttons on /me; back to ``next`` (a path on this site) or /me."""
    if step not in ACTIONS:
        return _missing(request, alert_id)
    try:
        _act(ctx, viewer, alert_id, step, note)
    except Refused as exc:
        if exc.status == 404:
            return _missing(request, alert_id)
        error = exc.detail[:1].upper() + exc.detail[1:]
        return me_page_response(request, ctx, viewer, error=error, status_code=exc.status)
    to = safe_next(next_path)
    separator = "&" if "?" in to else "?"
    return RedirectResponse(f"{to}{separator}done=alert-{step}#alerts", status_code=303)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse, include_in_schema=False)
def alert_page(alert_id: str, request: Request, ctx: Context, viewer: PageViewer) -> Response:
    """An alert, open or cleared, and its history, for residents who may see its thing."""
    alerts = board(ctx)
    side = people_side(ctx)
    now = ctx.clock()
    me = viewer.resident
    open_alert = next((a for a in alerts.open_alerts() if a.id == alert_id), None)
    record = alerts.store.alert(alert_id)
    thing_id = open_alert.thing if open_alert is not None else record.thing if record is not None else None
    found = access(side, me, thing_id, now) if thing_id is not None else None
    if found is None:
        return _missing(request, alert_id)
    thing, relations = found.thing, found.relations
    detail = detail_for(me, thing, relations, now)
    names = pseudonyms(ctx)
    if open_alert is not None:
        row = shown(open_alert, thing, detail, names)
    else:
        assert record is not None
        title, body = render_cleared(record, thing.name, detail)
        row = {
            "id": record.id,
            "thing": thing.id,
            "thing_name": thing.name,
            "kind": record.kind,
            "severity": record.severity,
            "state": record.state,
            "title": title,
            "body": body,
            "opened_text": when(record.opened_at),
        }
    history = [
        {
            "time": when(line.time),
            "action": line.action,
            "who": _who(ctx, line.actor, me.id),
        }
        for line in alerts.store.history(alert_id)
    ]
    return render_page(request, "alert.html", {"alert": row, "history": history})


def render_cleared(record: AlertRecordView, thing_name: str, detail: Detail) -> tuple[str, str]:
    """Title and body of a stored alert the engine no longer holds: its stored words (written with full
    detail) only for a viewer who may read the readings, else the kind and severity in plain words."""
    kind = record.kind.replace("_", " ")
    title = f"{thing_name}: {kind} alert"
    if detail is Detail.FULL:
        return title, record.message
    return title, f"{record.severity.capitalize()} {kind} alert, {record.state}."


def _who(ctx: WebContext, resident_id: str | None, me: str) -> str:
    if resident_id is None:
        return "the hub"
    if resident_id == me:
        return "you"
    resident = ctx.directory.resident(resident_id) if ctx.directory else None
    return public_pseudonym(resident) if resident else "a neighbor"


def _missing(request: Request, alert_id: str) -> HTMLResponse:
    return render_page(request, "not_found.html", {"what": f"no alert with id {alert_id!r}"}, status_code=404)
