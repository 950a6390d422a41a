"""A resident's own Home Assistant as a source: the page /me/homeassistant and /api/v1/me/homeassistant.

The resident links their instance (URL and a long-lived access token), sees whether the hub reaches it
and what to do when it does not, picks entities from the list their Home Assistant reports and shares
each with a visibility and a watcher share (full readings, the derived state only, nothing); unsharing
and unlinking stop the readings at once. The token is taken, never shown: not on the page (the form
never echoes it), not in the API's answers, not in the log.

Served only when the hub follows residents' Home Assistant (``integrations.homeassistant_source``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from hub.web import display
from hub.web.access import Refused
from hub.web.auth import Viewer, api_viewer, page_viewer
from hub.web.context import HomeAssistantSource, WebContext, get_context, refusal
from hub.web.routers.account import render

router = APIRouter(tags=["homeassistant"])

Context = Annotated[WebContext, Depends(get_context)]
PageViewer = Annotated[Viewer, Depends(page_viewer)]
ApiViewer = Annotated[Viewer, Depends(api_viewer)]

DONE = {
    "linked": "Home Assistant linked. Pick the entities to share below.",
    "unlinked": "Home Assistant unlinked: its token is deleted and nothing of it is read any more.",
    "shared": "Shared. Its readings arrive as they change.",
    "unshared": "No longer shared: its readings stopped. Its history stays, as its visibility allows.",
}
#: refusals that are the request's own fault (422) or a conflict with what exists (409)
_UNPROCESSABLE = frozenset(
    {
        "bad_url",
        "bad_token",
        "bad_visibility",
        "bad_watchers",
        "bad_entity_id",
        "personal_data",
        "no_measurement",
    }
)
_CONFLICT = frozenset({"not_linked", "already_shared", "too_many"})
#: words for a link's state on the page
STATES = {
    "linked": "linked (the running hub picks it up within seconds)",
    "idle": "linked, nothing shared yet",
    "connecting": "connecting…",
    "connected": "connected",
    "unreachable": "unreachable",
    "rejected": "token rejected",
}
VISIBILITIES = (
    ("private", "private: only you"),
    ("neighbors", "neighbors: every signed-in resident"),
    ("public", "public: also the kiosk screen"),
)
WATCHERS = (
    ("full", "watchers see full readings"),
    ("state", "watchers see the derived state only (yes/no)"),
    ("none", "watchers see nothing of its readings"),
)


def _source(ctx: WebContext) -> HomeAssistantSource:
    if ctx.homeassistant_source is None:
        raise Refused(503, "unavailable", "this hub does not take readings from residents' Home Assistant")
    return ctx.homeassistant_source


def _refused(exc: Exception, *, upstream: int = 502) -> Refused:
    """An operation's refusal as an API answer; ``upstream``: the status for Home Assistant's failures."""
    found = refusal(exc)
    if found is None:
        raise exc
    reason, message = found
    if reason in _UNPROCESSABLE:
        status = 422
    elif reason in _CONFLICT:
        status = 409
    elif reason in ("unknown_entity", "not_shared"):
        status = 404
    else:
        status = upstream
    return Refused(status, reason, message)


def _sentence(message: str) -> str:
    """The message as a sentence, but an entity id it starts with (``sensor.rain``) stays as it is."""
    if "." in message.split(" ", 1)[0]:
        return message
    return message[:1].upper() + message[1:]


# -- the page -------------------------------------------------------------------------------------------


def _status_view(status: Any, names: dict[str, str]) -> dict[str, Any] | None:
    if status is None:
        return None
    now = time.time()
    return {
        "url": status.url,
        "state": status.state,
        "state_text": STATES.get(status.state, status.state),
        "mode": status.mode,
        "problem": status.problem,
        "since": display.iso(status.since) if status.since else "",
        "retry_in": max(0, round(status.next_try - now)) if status.next_try else None,
        "shares": [
            {
                "entity_id": s.entity_id,
                "thing": s.thing,
                "name": names.get(s.thing, s.thing),
                "measurement": s.measurement,
                "online": s.online,
            }
            for s in status.shares
        ],
    }


def _page(
    request: Request,
    ctx: WebContext,
    viewer: Viewer,
    *,
    message: str | None = None,
    error: str | None = None,
    url: str = "",
    list_entities: bool = False,
    status_code: int = 200,
) -> HTMLResponse:
    source = _source(ctx)
    me = viewer.resident.id
    status = source.status(me)
    names = {}
    if status is not None and ctx.directory is not None:
        for share in status.shares:
            thing = ctx.directory.thing(share.thing)
            names[share.thing] = thing.name if thing is not None else share.thing
    entities: list[Any] = []
    entities_error = None
    if status is not None and list_entities:
        try:
            entities = list(source.entities(me))
        except Exception as exc:
            found = refusal(exc)
            if found is None:
                raise
            entities_error = _sentence(found[1])
    context = {
        "link": _status_view(status, names),
        "entities": [e for e in entities if e.shareable and not e.thing],
        "refused": [e for e in entities if not e.shareable],
        "listed": list_entities and entities_error is None,
        "entities_error": entities_error,
        "message": message,
        "error": error,
        "url": url or (status.url if status is not None else ""),
        "visibilities": VISIBILITIES,
        "watchers": WATCHERS,
    }
    return render(request, "ha_link.html", context, status_code=status_code)


@router.get("/me/homeassistant", response_class=HTMLResponse, include_in_schema=False)
def ha_page(
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    done: str | None = None,
    entities: Annotated[bool, Query()] = False,
) -> Response:
    return _page(request, ctx, viewer, message=DONE.get(done or ""), list_entities=entities)


@router.post("/me/homeassistant/link", response_class=HTMLResponse, include_in_schema=False)
def ha_link_form(
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    url: Annotated[str, Form(max_length=2048)],
    token: Annotated[str, Form(max_length=4096)],
) -> Response:
    try:
        _source(ctx).link(viewer.resident.id, url, token)
    except Exception as exc:
        found = refusal(exc)
        if found is None:
            raise
        # the URL is shown again to correct it (unless it holds a password); the token never is
        kept = "" if "@" in url else url
        return _page(request, ctx, viewer, error=_sentence(found[1]), url=kept, status_code=422)
    return RedirectResponse("/me/homeassistant?done=linked&entities=true", status_code=303)


@router.post("/me/homeassistant/unlink", include_in_schema=False)
def ha_unlink_form(ctx: Context, viewer: PageViewer) -> Response:
    _source(ctx).unlink(viewer.resident.id)
    return RedirectResponse("/me/homeassistant?done=unlinked", status_code=303)


@router.post("/me/homeassistant/share", response_class=HTMLResponse, include_in_schema=False)
def ha_share_form(
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    entity_id: Annotated[str, Form(max_length=256)],
    visibility: Annotated[str, Form(max_length=16)] = "private",
    watchers: Annotated[str, Form(max_length=16)] = "none",
    name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        _source(ctx).share(
            viewer.resident.id, entity_id, visibility=visibility, watchers=watchers, name=name or None
        )
    except Exception as exc:
        found = refusal(exc)
        if found is None:
            raise
        return _page(request, ctx, viewer, error=_sentence(found[1]), list_entities=True, status_code=422)
    return RedirectResponse("/me/homeassistant?done=shared&entities=true", status_code=303)


@router.post("/me/homeassistant/unshare", response_class=HTMLResponse, include_in_schema=False)
def ha_unshare_form(
    request: Request, ctx: Context, viewer: PageViewer, entity_id: Annotated[str, Form(max_length=256)]
) -> Response:
    try:
        _source(ctx).unshare(viewer.resident.id, entity_id)
    except Exception as exc:
        found = refusal(exc)
        if found is None:
            raise
        return _page(request, ctx, viewer, error=_sentence(found[1]), status_code=404)
    return RedirectResponse("/me/homeassistant?done=unshared", status_code=303)


# -- the API --------------------------------------------------------------------------------------------


class RefusalOut(BaseModel):
    reason: str = Field(description="Stable code: bad_url, token_rejected, unreachable, personal_data, …")
    detail: str = Field(description="What happened and what to do, in words")


class ShareOut(BaseModel):
    entity_id: str
    thing: str = Field(description="The thing the entity is shared as (you own it)")
    measurement: str = Field(description="The canonical measurement its readings are recorded as")
    online: bool | None = Field(description="Whether the entity is reachable now; null: not known yet")


class LinkOut(BaseModel):
    linked: bool
    url: str | None = Field(
        default=None, description="Your Home Assistant's base URL (the token is never shown)"
    )
    state: str | None = Field(
        default=None, description="linked, idle, connecting, connected, unreachable or rejected"
    )
    mode: str | None = Field(default=None, description="websocket or poll")
    reason: str | None = Field(default=None, description="With unreachable or rejected: the stable code")
    problem: str | None = Field(default=None, description="With unreachable or rejected: what to do")
    next_try: float | None = Field(default=None, description="With unreachable: the next attempt (epoch s)")
    shares: list[ShareOut] = []


class LinkIn(BaseModel):
    url: str = Field(min_length=1, max_length=2048, description="e.g. http://homeassistant.local:8123")
    token: str = Field(min_length=1, max_length=4096, description="A long-lived access token")


class EntityOut(BaseModel):
    entity_id: str
    name: str
    measurement: str | None = Field(description="What it would be recorded as; null when it cannot be")
    unit: str | None = Field(description="The canonical unit of that measurement")
    state: str | None = Field(description="Its state now (only for entities that may be shared)")
    shareable: bool
    refusal: str | None = Field(description="personal_data, no_measurement or bad_entity_id")
    detail: str
    thing: str | None = Field(description="The thing it is shared as, when it is")


class EntityList(BaseModel):
    entities: list[EntityOut]


class ShareIn(BaseModel):
    entity_id: str = Field(min_length=1, max_length=256)
    visibility: str = Field("private", description="private, neighbors or public")
    watchers: str = Field("none", description="full, state (the derived yes/no only) or none")
    name: str | None = Field(default=None, max_length=100, description="Default: its friendly name")
    measurement: str | None = Field(
        default=None,
        max_length=32,
        description="A canonical measurement, for an entity Home Assistant "
        "describes too little (it must fit its domain and unit)",
    )


REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": RefusalOut, "description": "Not signed in"},
    404: {"model": RefusalOut, "description": "No such entity, or it is not shared"},
    409: {"model": RefusalOut, "description": "Not linked, already shared, or too many shared"},
    422: {"model": RefusalOut, "description": "Malformed, or an entity that may not be shared (reason)"},
    502: {"model": RefusalOut, "description": "Your Home Assistant could not be reached or refused"},
    503: {"model": RefusalOut, "description": "This hub does not take readings from Home Assistant"},
}


def _link_out(status: Any) -> LinkOut:
    if status is None:
        return LinkOut(linked=False)
    return LinkOut(
        linked=True,
        url=status.url,
        state=status.state,
        mode=status.mode,
        reason=status.reason,
        problem=status.problem,
        next_try=status.next_try,
        shares=[
            ShareOut(entity_id=s.entity_id, thing=s.thing, measurement=s.measurement, online=s.online)
            for s in status.shares
        ],
    )


@router.get("/api/v1/me/homeassistant", response_model=LinkOut, responses=REFUSALS)
def ha_status(ctx: Context, viewer: ApiViewer) -> LinkOut:
    """Your Home Assistant link: whether the hub reaches it, what to do when not, what you share."""
    return _link_out(_source(ctx).status(viewer.resident.id))


@router.put("/api/v1/me/homeassistant", response_model=LinkOut, responses=REFUSALS)
def ha_link(body: LinkIn, ctx: Context, viewer: ApiViewer) -> LinkOut:
    """Link (or relink) your Home Assistant; it must accept the token. The token is never shown again."""
    try:
        return _link_out(_source(ctx).link(viewer.resident.id, body.url, body.token))
    except Exception as exc:
        raise _refused(exc, upstream=422) from None


@router.delete("/api/v1/me/homeassistant", status_code=204, responses=REFUSALS)
def ha_unlink(ctx: Context, viewer: ApiViewer) -> Response:
    """Unlink: the token is deleted and every shared entity stops (its thing is retired)."""
    if not _source(ctx).unlink(viewer.resident.id):
        raise Refused(404, "not_linked", "no Home Assistant is linked")
    return Response(status_code=204)


@router.get("/api/v1/me/homeassistant/entities", response_model=EntityList, responses=REFUSALS)
def ha_entities(ctx: Context, viewer: ApiViewer) -> EntityList:
    """The entities your Home Assistant reports, with what each would be recorded as, or why it may not
    be shared (personal data is never shared)."""
    try:
        listed = _source(ctx).entities(viewer.resident.id)
    except Exception as exc:
        raise _refused(exc) from None
    return EntityList(
        entities=[
            EntityOut(
                entity_id=e.entity_id,
                name=e.name,
                measurement=e.measurement,
                unit=e.unit,
                state=e.state,
                shareable=e.shareable,
                refusal=e.refusal,
                detail=e.detail,
                thing=e.thing,
            )
            for e in listed
        ]
    )


@router.post("/api/v1/me/homeassistant/shares", status_code=201, response_model=ShareOut, responses=REFUSALS)
def ha_share(body: ShareIn, ctx: Context, viewer: ApiViewer) -> ShareOut:
    """Share one entity as a thing you own, with its visibility and what watchers see."""
    try:
        share, _ = _source(ctx).share(
            viewer.resident.id,
            body.entity_id,
            visibility=body.visibility,
            watchers=body.watchers,
            name=body.name,
            measurement=body.measurement,
        )
    except Exception as exc:
        raise _refused(exc) from None
    return ShareOut(entity_id=share.entity_id, thing=share.thing, measurement=share.measurement, online=None)


@router.delete("/api/v1/me/homeassistant/shares/{entity_id}", status_code=204, responses=REFUSALS)
def ha_unshare(entity_id: str, ctx: Context, viewer: ApiViewer) -> Response:
    """Stop sharing an entity: its readings stop at once; its thing is retired, its history stays."""
    try:
        _source(ctx).unshare(viewer.resident.id, entity_id)
    except Exception as exc:
        raise _refused(exc) from None
    return Response(status_code=204)
