"""Steward and admin pages: /admin/residents (admins), /admin/things, /admin/readers, /admin/relations
and /admin/audit (stewards and admins).

What a page lists comes from the permission function: stewards and admins manage non-private things by
their role and private ones only through their own relations, so a private thing stays invisible to an
unrelated steward or admin here too. Every change goes through the directory, which writes the audit
log; every form carries the session's CSRF token. Residents get a 403 page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.domain.model import Action, Location, RelationKind, Resident, Role, Share, Thing, Visibility
from hub.domain.privacy import public_pseudonym
from hub.web.access import Access, Refused, access, not_found
from hub.web.auth import Viewer, page_viewer
from hub.web.context import PeopleSide, WebContext, get_context, people_side
from hub.web.routers.account import render
from hub.web.routers.admin_api import (
    GRANTABLE,
    Names,
    audit_shown,
    detail_words,
    directory_step,
    grant_relation,
    is_staff,
    live_resident,
    relations_shown,
    revoke_relation,
)

router = APIRouter(tags=["admin pages"], include_in_schema=False)

Context = Annotated[WebContext, Depends(get_context)]
PageViewer = Annotated[Viewer, Depends(page_viewer)]

#: scans of the live state looked through for the readers page
RECENT_SCANS = 200
#: scans shown per reader
SCANS_PER_READER = 10
#: audit entries shown on the page
AUDIT_SHOWN = 200

DONE = {
    "role": "Role changed.",
    "thing": "Thing saved.",
    "tag": "Tag attached.",
    "retired": "Thing retired.",
    "granted": "Relation granted.",
    "revoked": "Relation revoked.",
}


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _forbidden(request: Request, what: str) -> HTMLResponse:
    return render(request, "admin_forbidden.html", {"what": what}, status_code=403)


def _staff_only(request: Request, viewer: Viewer) -> HTMLResponse | None:
    if is_staff(viewer.resident):
        return None
    return _forbidden(request, "These pages are for the neighborhood's stewards and admins.")


def _admin_only(request: Request, viewer: Viewer) -> HTMLResponse | None:
    if viewer.resident.role is Role.ADMIN:
        return None
    return _forbidden(request, "Residents and invites are managed by the neighborhood's admins.")


def _managed(side: PeopleSide, me: Resident, now: float, kind: str | None = None) -> list[Access]:
    """The things ``me`` may manage, by id (optionally of one kind)."""
    found = []
    for thing in side.directory.things():
        if kind is not None and thing.kind != kind:
            continue
        seen = access(side, me, thing.id, now)
        if seen is not None and seen.may(Action.MANAGE):
            found.append(seen)
    return found


def _step(
    request: Request, page: Callable[..., Response], step: Callable[[], Any], done: str, path: str
) -> Response:
    """Run a change; on success back to the page with a message, on refusal the page with the error."""
    try:
        step()
    except Refused as exc:
        return page(error=exc.detail[:1].upper() + exc.detail[1:], status_code=exc.status)
    return RedirectResponse(f"{path}?done={done}", status_code=303)


# -- /admin/residents ---------------------------------------------------------------------------------


@router.get("/admin/residents", response_class=HTMLResponse)
def residents_page(request: Request, ctx: Context, viewer: PageViewer, done: str | None = None) -> Response:
    return _admin_only(request, viewer) or _residents(request, ctx, message=DONE.get(done or ""))


def _residents(
    request: Request,
    ctx: WebContext,
    *,
    message: str | None = None,
    error: str | None = None,
    invite: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    side = people_side(ctx)
    rows = [
        {
            "pseudonym": public_pseudonym(r),
            "role": r.role.value,
            "joined": when(r.joined_at),
            "erased": r.erased,
        }
        for r in side.directory.residents()
    ]
    return render(
        request,
        "admin_residents.html",
        {
            "residents": rows,
            "roles": [r.value for r in Role],
            "message": message,
            "error": error,
            "invite": invite,
        },
        status_code=status_code,
    )


@router.post("/admin/residents/role", response_class=HTMLResponse)
def change_role(
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    pseudonym: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=16)],
) -> Response:
    refused = _admin_only(request, viewer)
    if refused is not None:
        return refused
    side = people_side(ctx)

    def step() -> None:
        resident = live_resident(side, pseudonym)
        if role not in {r.value for r in Role}:
            raise Refused(422, "bad_role", f"{role!r} is not a role: resident, steward or admin")
        directory_step(
            lambda: side.directory.set_role(
                resident.id, Role(role), actor=viewer.resident.id, now=ctx.clock()
            )
        )

    return _step(request, lambda **kw: _residents(request, ctx, **kw), step, "role", "/admin/residents")


@router.post("/admin/invites", response_class=HTMLResponse)
def create_invite(
    request: Request, ctx: Context, viewer: PageViewer, role: Annotated[str, Form(max_length=16)] = "resident"
) -> Response:
    """A new invite code, shown on this response only (it is not put in a URL or shown again)."""
    refused = _admin_only(request, viewer)
    if refused is not None:
        return refused
    side = people_side(ctx)
    if role not in {r.value for r in Role}:
        return _residents(
            request, ctx, error=f"{role!r} is not a role: resident, steward or admin", status_code=422
        )
    try:
        code = directory_step(
            lambda: side.directory.create_invite(
                created_by=viewer.resident.id, role=Role(role), now=ctx.clock()
            )
        )
    except Refused as exc:
        return _residents(request, ctx, error=exc.detail, status_code=exc.status)
    return _residents(request, ctx, invite={"code": code, "role": role})


# -- /admin/things ------------------------------------------------------------------------------------


@router.get("/admin/things", response_class=HTMLResponse)
def things_page(request: Request, ctx: Context, viewer: PageViewer, done: str | None = None) -> Response:
    return _staff_only(request, viewer) or _things(request, ctx, viewer, message=DONE.get(done or ""))


def _things(
    request: Request,
    ctx: WebContext,
    viewer: Viewer,
    *,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    side = people_side(ctx)
    names = Names(side)
    rows = []
    for found in _managed(side, viewer.resident, ctx.clock()):
        thing = found.thing
        rows.append(
            {
                "id": thing.id,
                "name": thing.name,
                "kind": thing.kind,
                "visibility": thing.visibility.value,
                "share": thing.watcher_share.value,
                # a named place only: exact coordinates never leave the owner's view
                "place": thing.location.place if thing.location and thing.location.place else "",
                "owners": [names(r) for r in found.people(RelationKind.OWNS)],
                "tags": list(thing.tags),
                "retired": thing.retired,
            }
        )
    return render(
        request,
        "admin_things.html",
        {
            "things": rows,
            "visibilities": [v.value for v in Visibility],
            "shares": [s.value for s in Share],
            "message": message,
            "error": error,
        },
        status_code=status_code,
    )


def _managed_thing(side: PeopleSide, viewer: Viewer, thing_id: str, now: float) -> Thing:
    found = access(side, viewer.resident, thing_id, now)
    if found is None:
        raise not_found("thing", thing_id)
    if not found.may(Action.MANAGE):
        raise Refused(403, "forbidden", f"you may not manage {found.thing.name}")
    return found.thing


@router.post("/admin/things/{thing_id}", response_class=HTMLResponse)
def edit_thing(
    thing_id: str,
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    name: Annotated[str, Form(max_length=120)],
    visibility: Annotated[Visibility, Form()],
    share: Annotated[Share, Form()],
    place: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    refused = _staff_only(request, viewer)
    if refused is not None:
        return refused
    side = people_side(ctx)
    now = ctx.clock()

    def step() -> None:
        thing = _managed_thing(side, viewer, thing_id, now)
        old = thing.location or Location()
        location: Location | None = replace(old, place=place.strip() or None)
        if location == Location():
            location = None
        edited = replace(
            thing, name=name.strip(), visibility=visibility, watcher_share=share, location=location
        )
        directory_step(lambda: side.directory.update_thing(edited, actor=viewer.resident.id, now=now))

    return _step(request, lambda **kw: _things(request, ctx, viewer, **kw), step, "thing", "/admin/things")


@router.post("/admin/things/{thing_id}/tags", response_class=HTMLResponse)
def attach_tag(
    thing_id: str,
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    tag: Annotated[str, Form(max_length=64)],
) -> Response:
    refused = _staff_only(request, viewer)
    if refused is not None:
        return refused
    side = people_side(ctx)
    now = ctx.clock()

    def step() -> None:
        _managed_thing(side, viewer, thing_id, now)
        directory_step(lambda: side.directory.attach_tag(thing_id, tag, actor=viewer.resident.id, now=now))

    return _step(request, lambda **kw: _things(request, ctx, viewer, **kw), step, "tag", "/admin/things")


@router.post("/admin/things/{thing_id}/retire", response_class=HTMLResponse)
def retire_thing(thing_id: str, request: Request, ctx: Context, viewer: PageViewer) -> Response:
    refused = _staff_only(request, viewer)
    if refused is not None:
        return refused
    side = people_side(ctx)
    now = ctx.clock()

    def step() -> None:
        _managed_thing(side, viewer, thing_id, now)
        directory_step(lambda: side.directory.retire_thing(thing_id, actor=viewer.resident.id, now=now))

    return _step(request, lambda **kw: _things(request, ctx, viewer, **kw), step, "retired", "/admin/things")


# -- /admin/readers -----------------------------------------------------------------------------------


@router.get("/admin/readers", response_class=HTMLResponse)
def readers_page(request: Request, ctx: Context, viewer: PageViewer) -> Response:
    refused = _staff_only(request, viewer)
    if refused is not None:
        return refused
    side = people_side(ctx)
    now = ctx.clock()
    me = viewer.resident
    names = Names(side)
    scans = ctx.live.recent_scans(RECENT_SCANS)

    def tag_words(tag: str) -> str:
        # a card id is personal: only an admin sees whose card it was; a tool's tag names the tool
        thing_id = side.directory.thing_by_tag(tag)
        if thing_id is not None:
            found = access(side, me, thing_id, now)
            return f"tag of {found.thing.name}" if found is not None else "a tag"
        holder = side.directory.resident_by_card(tag)
        if holder is not None:
            return f"card of {names(holder)}" if me.role is Role.ADMIN else "a card"
        return f"unknown tag {tag}" if me.role is Role.ADMIN else "an unknown tag"

    readers = []
    for found in _managed(side, me, now, kind="reader"):
        mine = [s for s in scans if s.reader == found.thing.id][:SCANS_PER_READER]
        readers.append(
            {
                "id": found.thing.id,
                "name": found.thing.name,
                "retired": found.thing.retired,
                "scans": [{"time": when(s.time), "tag": tag_words(s.tag)} for s in mine],
            }
        )
    return render(request, "admin_readers.html", {"readers": readers})


# -- /admin/relations ---------------------------------------------------------------------------------


@router.get("/admin/relations", response_class=HTMLResponse)
def relations_page(request: Request, ctx: Context, viewer: PageViewer, done: str | None = None) -> Response:
    return _staff_only(request, viewer) or _relations(request, ctx, viewer, message=DONE.get(done or ""))


def _relations(
    request: Request,
    ctx: WebContext,
    viewer: Viewer,
    *,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    side = people_side(ctx)
    now = ctx.clock()
    names = Names(side)
    rows = [
        {
            "id": r.id,
            "resident": names(r.resident),
            "kind": r.kind.value,
            "thing": r.thing,
            "since": when(r.valid_from),
            "until": when(r.valid_until),
            "granted_by": names(r.granted_by),
            "revocable": r.kind is not RelationKind.BORROWS,
        }
        for r in relations_shown(side, viewer.resident, now)
    ]
    things = [{"id": f.thing.id, "name": f.thing.name} for f in _managed(side, viewer.resident, now)]
    return render(
        request,
        "admin_relations.html",
        {
            "relations": rows,
            "things": things,
            "kinds": [k.value for k in GRANTABLE],
            "message": message,
            "error": error,
        },
        status_code=status_code,
    )


@router.post("/admin/relations", response_class=HTMLResponse)
def grant(
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    pseudonym: Annotated[str, Form(max_length=64)],
    thing: Annotated[str, Form(max_length=128)],
    kind: Annotated[str, Form(max_length=16)],
    until: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    refused = _staff_only(request, viewer)
    if refused is not None:
        return refused
    side = people_side(ctx)
    now = ctx.clock()

    def step() -> None:
        if kind not in {k.value for k in RelationKind}:
            raise Refused(422, "bad_kind", f"{kind!r} is not a relation: owns, stewards or watches")
        grant_relation(side, viewer.resident, pseudonym, thing, RelationKind(kind), _day(until), now)

    return _step(
        request, lambda **kw: _relations(request, ctx, viewer, **kw), step, "granted", "/admin/relations"
    )


@router.post("/admin/relations/{relation_id}/revoke", response_class=HTMLResponse)
def revoke(relation_id: str, request: Request, ctx: Context, viewer: PageViewer) -> Response:
    refused = _staff_only(request, viewer)
    if refused is not None:
        return refused
    side = people_side(ctx)
    return _step(
        request,
        lambda **kw: _relations(request, ctx, viewer, **kw),
        lambda: revoke_relation(side, viewer.resident, relation_id, ctx.clock()),
        "revoked",
        "/admin/relations",
    )


def _day(text: str) -> float | None:
    """The end of a relation from a date (YYYY-MM-DD, UTC midnight) or date and time; blank: none."""
    text = text.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Refused(422, "bad_window", f"{text!r} is not a date such as 2025-07-01") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


# -- /admin/audit -------------------------------------------------------------------------------------


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request, ctx: Context, viewer: PageViewer, thing: str | None = None, resident: str | None = None
) -> Response:
    refused = _staff_only(request, viewer)
    if refused is not None:
        return refused
    side = people_side(ctx)
    now = ctx.clock()
    names = Names(side)
    thing = (thing or "").strip() or None
    resident = (resident or "").strip() or None
    try:
        about = live_resident(side, resident) if resident else None
        entries = audit_shown(side, viewer.resident, now, thing_id=thing, resident=about, limit=AUDIT_SHOWN)
    except Refused as exc:
        if exc.status == 403:
            return _forbidden(request, exc.detail[:1].upper() + exc.detail[1:] + ".")
        return render(request, "not_found.html", {"what": exc.detail.removeprefix("no ")}, status_code=404)
    thing_names: dict[str, str] = {}

    def thing_name(thing_id: str) -> str:
        if thing_id not in thing_names:
            known = side.directory.thing(thing_id)
            thing_names[thing_id] = known.name if known else thing_id
        return thing_names[thing_id]

    rows = [
        {
            "time": when(e.time),
            "who": names(e.actor),
            "action": e.action,
            "thing": e.thing,
            "thing_name": thing_name(e.thing) if e.thing else "",
            "subject": names(e.subject) if e.subject else "",
            "detail": ", ".join(f"{k}={v}" for k, v in detail_words(e, names).items()),
        }
        for e in reversed(entries)
    ]
    return render(
        request, "admin_audit.html", {"entries": rows, "thing": thing or "", "resident": resident or ""}
    )
