"""/api/v1/things: the latest state of every thing, as JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from hub.web.auth import Viewer, optional_viewer
from hub.web.context import WebContext, get_context, view_for
from hub.web.models import ErrorOut, ThingList, ThingOut

router = APIRouter(prefix="/api/v1/things", tags=["things"])

Context = Annotated[WebContext, Depends(get_context)]
#: the signed-in resident (session cookie or access token), or None for the kiosk view
MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]


@router.get("", response_model=ThingList)
def list_things(ctx: Context, viewer: MaybeViewer) -> ThingList:
    """Every thing you may see with the values you may see, sorted by id (anonymous: public ones)."""
    _, states = view_for(ctx, viewer.resident if viewer else None).things(0)
    return ThingList(things=[ThingOut.of(s) for s in states])


@router.get("/{thing_id}", response_model=ThingOut, responses={404: {"model": ErrorOut}})
def get_thing(thing_id: str, request: Request, ctx: Context, viewer: MaybeViewer) -> ThingOut:
    """One thing's latest values, as far as you may see them. A signed-in resident who does not own
    the thing is recorded in the audit log its owner reads (at most once an hour)."""
    state = view_for(ctx, viewer.resident if viewer else None).thing(thing_id)
    if state is None:  # unknown and not visible look the same: no id probing
        raise HTTPException(status_code=404, detail=f"no thing with id {thing_id!r}")
    thing = ctx.catalog.thing(thing_id)
    if viewer is not None and ctx.directory is not None and thing is not None:
        relations = ctx.catalog.relations(thing_id)
        request.app.state.view_log.viewed(ctx.directory, viewer.resident, thing, relations, "api")
    return ThingOut.of(state)
