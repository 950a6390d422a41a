"""Alert rules of a thing, for the residents who may manage it (owners and stewards): /things/{id}/rules
and /api/v1/things/{id}/rules.

Listed: every rule that applies to the thing. The defaults and the config's rules are read-only here;
the thing's own rules (kept in the store) can be added and deleted, and the hub applies them at once.
A thing the viewer may not see answers 404 like a missing one; one they may see but not manage, 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from hub.domain.alert_rules import DEFAULT_RULES, Rule, RuleError, rule_from_dict, rule_to_dict
from hub.domain.model import Action, Resident, Thing
from hub.web.access import Access, Refused, access, not_found
from hub.web.alert_grading import when as time_text
from hub.web.auth import Viewer, api_viewer, page_viewer
from hub.web.context import AlertBoard, PeopleSide, WebContext, get_context, people_side, refusal
from hub.web.routers.account import render
from hub.web.routers.alerts import board
from hub.web.rule_forms import (
    API_KINDS,
    BOOLEAN_MEASUREMENTS,
    FORMS,
    NUMERIC_MEASUREMENTS,
    SEVERITIES,
    TITLES,
    RuleFormError,
    describe,
    field_of,
    form_data,
)

router = APIRouter(tags=["alert rules"])

Context = Annotated[WebContext, Depends(get_context)]


EXAMPLE = {"kind": "threshold", "severity": "minor", "measurement": "pm25", "above": 35, "clear_below": 25}


class RuleOut(BaseModel):
    id: str
    kind: str
    severity: str
    source: str = Field(description="default, config (read-only here) or thing (this thing's own rule)")
    editable: bool = Field(description="Whether you may delete it here")
    text: str = Field(description="The rule in words")
    rule: dict[str, Any] = Field(description="The rule as data (the fields of its kind)")
    created_by: str | None = Field(default=None, description="Pseudonym of who added it, for a thing's own")


class RuleList(BaseModel):
    rules: list[RuleOut]


class RuleRefusal(BaseModel):
    reason: str
    detail: str
    field: str | None = None


REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": RuleRefusal, "description": "Not signed in"},
    403: {"model": RuleRefusal, "description": "You may see the thing but not manage it"},
    404: {"model": RuleRefusal, "description": "No such thing or rule, or one you may not know about"},
    422: {"model": RuleRefusal, "description": "The rule cannot work as written; field names the input"},
    503: {"model": RuleRefusal, "description": "Alerting is not set up on this hub"},
}


def _manage(side: PeopleSide, me: Resident, thing_id: str, now: float) -> Access:
    found = access(side, me, thing_id, now)
    if found is None:
        raise not_found("thing", thing_id)
    if not found.may(Action.MANAGE):
        raise Refused(403, "forbidden", "only the thing's owners and stewards edit its alert rules")
    return found


def applying_rules(alerts: AlertBoard, side: PeopleSide, thing: Thing) -> list[dict[str, Any]]:
    """Every rule that applies to ``thing``: configured ones, neighborhood-wide stored ones, its own."""
    rows: list[dict[str, Any]] = []
    for rule in alerts.configured_rules():
        if rule.scope.covers(thing.id, thing.kind):
            rows.append(_row(rule, "default" if rule in DEFAULT_RULES else "config", editable=False))
    for record in alerts.stored_rules():
        if record.thing not in (None, thing.id):
            continue
        try:
            rule = rule_from_dict(record.data)
        except RuleError:
            continue  # written by a newer hub; the alert board skips it too
        if record.thing is None and not rule.scope.covers(thing.id, thing.kind):
            continue
        creator = side.directory.resident(record.created_by) if record.created_by else None
        row = _row(rule, "thing" if record.thing else "config", editable=record.thing is not None)
        row["created_by"] = creator.pseudonym if creator and not creator.erased else None
        row["created_text"] = time_text(record.created_at)
        row["enabled"] = record.enabled
        rows.append(row)
    return rows


def _row(rule: Rule, source: str, *, editable: bool) -> dict[str, Any]:
    return {
        "id": rule.id,
        "kind": rule.kind,
        "severity": rule.severity.value,
        "source": source,
        "editable": editable,
        "text": describe(rule),
        "rule": rule_to_dict(rule),
        "created_by": None,
        "enabled": True,
    }


# -- the REST API -------------------------------------------------------------------------------------


@router.get("/api/v1/things/{thing_id}/rules", response_model=RuleList, responses=REFUSALS)
def list_rules(thing_id: str, ctx: Context, viewer: Annotated[Viewer, Depends(api_viewer)]) -> RuleList:
    """The alert rules that apply to a thing you manage."""
    alerts, side = board(ctx), people_side(ctx)
    found = _manage(side, viewer.resident, thing_id, ctx.clock())
    return RuleList(rules=[RuleOut(**_out(r)) for r in applying_rules(alerts, side, found.thing)])


@router.post("/api/v1/things/{thing_id}/rules", response_model=RuleOut, status_code=201, responses=REFUSALS)
def add_rule_api(
    thing_id: str,
    ctx: Context,
    viewer: Annotated[Viewer, Depends(api_viewer)],
    body: Annotated[
        dict[str, Any], Body(examples=[{"kind": "threshold", "measurement": "pm25", "above": 35}])
    ],
) -> Response:
    """Add a rule to a thing you manage: ``kind`` (threshold, boolean, low_battery, offline, stale,
    rate_of_change), ``severity`` and the fields of its kind (docs/alerts.md); the hub names it."""
    alerts, side = board(ctx), people_side(ctx)
    _manage(side, viewer.resident, thing_id, ctx.clock())
    kind = body.get("kind")
    if kind not in API_KINDS:
        return _rule_refused("kind", f"kind must be one of {', '.join(API_KINDS)}, got {kind!r}")
    try:
        record = alerts.add_rule(thing_id, body, created_by=viewer.resident.id)
    except RuleError as exc:
        return _rule_refused(field_of(str(exc), str(kind)), str(exc))
    rule = rule_from_dict(record.data)
    row = _row(rule, "thing", editable=True)
    row["created_by"] = viewer.resident.pseudonym
    return JSONResponse(RuleOut(**_out(row)).model_dump(), status_code=201)


@router.delete("/api/v1/things/{thing_id}/rules/{rule_id}", status_code=204, responses=REFUSALS)
def delete_rule_api(
    thing_id: str, rule_id: str, ctx: Context, viewer: Annotated[Viewer, Depends(api_viewer)]
) -> Response:
    """Delete one of a thing's own rules; its open alerts clear."""
    _delete(ctx, viewer, thing_id, rule_id)
    return Response(status_code=204)


def _delete(ctx: WebContext, viewer: Viewer, thing_id: str, rule_id: str) -> None:
    alerts, side = board(ctx), people_side(ctx)
    _manage(side, viewer.resident, thing_id, ctx.clock())
    if not any(r.id == rule_id for r in alerts.stored_rules(thing_id)):
        raise not_found("rule of this thing", rule_id)
    alerts.delete_rule(rule_id)


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in RuleOut.model_fields}


def _rule_refused(field: str | None, detail: str) -> JSONResponse:
    return JSONResponse({"reason": "bad_rule", "detail": detail, "field": field}, status_code=422)


# -- pages --------------------------------------------------------------------------------------------


@router.get("/things/{thing_id}/rules", response_class=HTMLResponse, include_in_schema=False)
def rules_page(
    thing_id: str,
    request: Request,
    ctx: Context,
    viewer: Annotated[Viewer, Depends(page_viewer)],
    done: str | None = None,
) -> Response:
    message = {"added": "Rule added: it applies from now on.", "deleted": "Rule deleted."}.get(done or "")
    return _page(request, ctx, viewer, thing_id, message=message)


def _page(
    request: Request,
    ctx: WebContext,
    viewer: Viewer,
    thing_id: str,
    *,
    message: str | None = None,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    alerts, side = board(ctx), people_side(ctx)
    try:
        found = _manage(side, viewer.resident, thing_id, ctx.clock())
    except Refused as exc:
        what = f"no thing with id {thing_id!r}" if exc.status == 404 else exc.detail
        return render(request, "not_found.html", {"what": what}, status_code=exc.status)
    return render(
        request,
        "rules.html",
        {
            "thing": found.thing,
            "rules": applying_rules(alerts, side, found.thing),
            "forms": FORMS,
            "titles": TITLES,
            "severities": SEVERITIES,
            "numeric": NUMERIC_MEASUREMENTS,
            "boolean": BOOLEAN_MEASUREMENTS,
            "message": message,
            "posted": form or {},
            "errors": errors or {},
        },
        status_code=status_code,
    )


#: one text input, as a form posts it
Text = Annotated[str, Form(max_length=64)]


@router.post("/things/{thing_id}/rules", response_class=HTMLResponse, include_in_schema=False)
def add_rule_page(
    thing_id: str,
    request: Request,
    ctx: Context,
    viewer: Annotated[Viewer, Depends(page_viewer)],
    kind: Text = "",
    severity: Text = "",
    measurement: Text = "",
    above: Text = "",
    below: Text = "",
    clear_below: Text = "",
    clear_above: Text = "",
    for_s: Text = "",
    when: Text = "",
    debounce_s: Text = "",
    after_s: Text = "",
    custody_aware: Text = "",
) -> Response:
    """The add-a-rule forms (one per kind); an error is shown next to the field it is about."""
    posted = {
        name: value
        for name, value in {
            "kind": kind,
            "severity": severity,
            "measurement": measurement,
            "above": above,
            "below": below,
            "clear_below": clear_below,
            "clear_above": clear_above,
            "for_s": for_s,
            "when": when,
            "debounce_s": debounce_s,
            "after_s": after_s,
            "custody_aware": custody_aware,
        }.items()
        if value
    }
    return _add_from_form(request, ctx, viewer, thing_id, posted)


def _add_from_form(
    request: Request, ctx: WebContext, viewer: Viewer, thing_id: str, posted: dict[str, str]
) -> Response:
    alerts, side = board(ctx), people_side(ctx)
    try:
        _manage(side, viewer.resident, thing_id, ctx.clock())
    except Refused:
        return _page(request, ctx, viewer, thing_id)  # the same 404 or 403 page as a GET
    kind = posted.get("kind")
    try:
        alerts.add_rule(thing_id, form_data(posted), created_by=viewer.resident.id)
    except RuleFormError as exc:
        return _form_error(request, ctx, viewer, thing_id, posted, exc.field, exc.message)
    except RuleError as exc:
        return _form_error(request, ctx, viewer, thing_id, posted, field_of(str(exc), kind), str(exc))
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        return _form_error(request, ctx, viewer, thing_id, posted, None, refused[1])
    return RedirectResponse(f"/things/{thing_id}/rules?done=added", status_code=303)


def _form_error(
    request: Request,
    ctx: WebContext,
    viewer: Viewer,
    thing_id: str,
    posted: dict[str, str],
    field: str | None,
    message: str,
) -> HTMLResponse:
    # "rule threshold-…: clear_below must …" reads better without the rule's made-up id
    words = message.split(": ", 1)[1] if message.startswith("rule ") and ": " in message else message
    words = words[:1].upper() + words[1:]
    return _page(
        request, ctx, viewer, thing_id, form=posted, errors={field or "form": words}, status_code=422
    )


@router.post("/things/{thing_id}/rules/{rule_id}/delete", include_in_schema=False)
def delete_rule_page(
    thing_id: str,
    rule_id: str,
    request: Request,
    ctx: Context,
    viewer: Annotated[Viewer, Depends(page_viewer)],
) -> Response:
    try:
        _delete(ctx, viewer, thing_id, rule_id)
    except Refused as exc:
        what = exc.detail if exc.status == 403 else f"no rule {rule_id!r} on thing {thing_id!r}"
        return render(request, "not_found.html", {"what": what}, status_code=exc.status)
    return RedirectResponse(f"/things/{thing_id}/rules?done=deleted", status_code=303)
