"""/api/v1/things: the latest state of every thing, as JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from hub.web.context import WebContext, get_context, kiosk_view
from hub.web.models import ErrorOut, ThingList, ThingOut

router = APIRouter(prefix="/api/v1/things", tags=["things"])

Context = Annotated[WebContext, Depends(get_context)]


@router.get("", response_model=ThingList)
def list_things(ctx: Context) -> ThingList:
    """Every known thing with its latest values, sorted by id."""
    _, states = kiosk_view(ctx).things(0)
    return ThingList(things=[ThingOut.of(s) for s in states])


@router.get("/{thing_id}", response_model=ThingOut, responses={404: {"model": ErrorOut}})
def get_thing(thing_id: str, ctx: Context) -> ThingOut:
    """One thing's latest values."""
    state = kiosk_view(ctx).thing(thing_id)
    if state is None:  # unknown and not visible look the same: no id probing
        raise HTTPException(status_code=404, detail=f"no thing with id {thing_id!r}")
    return ThingOut.of(state)
