"""/api/v1/things: the latest state of every thing, as JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from hub.web.context import WebContext, get_context
from hub.web.models import ErrorOut, ThingList, ThingOut

router = APIRouter(prefix="/api/v1/things", tags=["things"])

Context = Annotated[WebContext, Depends(get_context)]


@router.get("", response_model=ThingList)
def list_things(ctx: Context) -> ThingList:
    """Every known thing with its latest values, sorted by id."""
    _, states = ctx.live.snapshot(0)
    return ThingList(things=[ThingOut.of(s) for s in states])


@router.get("/{thing_id}", response_model=ThingOut, responses={404: {"model": ErrorOut}})
def get_thing(thing_id: str, ctx: Context) -> ThingOut:
    """One thing's latest values."""
    state = ctx.live.get(thing_id)
    if state is None:
        raise HTTPException(status_code=404, detail=f"no thing with id {thing_id!r}")
    return ThingOut.of(state)
