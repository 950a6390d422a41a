"""/me/audit: what the audit log holds about the signed-in resident, by them, and about the things they
own or steward ("who saw or changed what about my things"), newest first, under pseudonyms."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from hub.domain.privacy import public_pseudonym
from hub.web.alert_grading import when
from hub.web.auth import Viewer, page_viewer
from hub.web.context import WebContext, get_context, people_side
from hub.web.routers.account import render

router = APIRouter(tags=["audit"], include_in_schema=False)

#: entries shown on the page
SHOWN = 200


@router.get("/me/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    ctx: Annotated[WebContext, Depends(get_context)],
    viewer: Annotated[Viewer, Depends(page_viewer)],
) -> Response:
    side = people_side(ctx)
    me = viewer.resident
    names: dict[str, str] = {}
    things: dict[str, str] = {}

    def who(resident_id: str | None) -> str:
        if resident_id is None:
            return "the hub"
        if resident_id == me.id:
            return "you"
        if resident_id not in names:
            resident = side.directory.resident(resident_id)
            names[resident_id] = public_pseudonym(resident) if resident else "a neighbor"
        return names[resident_id]

    def thing_name(thing_id: str | None) -> str:
        if thing_id is None:
            return ""
        if thing_id not in things:
            thing = side.directory.thing(thing_id)
            things[thing_id] = thing.name if thing else thing_id
        return things[thing_id]

    entries = side.directory.audit_for_resident(me.id, limit=SHOWN)
    rows = [
        {
            "time": when(entry.time),
            "who": who(entry.actor),
            "action": entry.action,
            "thing": entry.thing,
            "thing_name": thing_name(entry.thing),
            "subject": who(entry.subject) if entry.subject is not None else "",
            "detail": ", ".join(f"{k}={v}" for k, v in sorted(entry.detail.items())),
        }
        for entry in reversed(entries)
    ]
    return render(request, "audit.html", {"entries": rows})
