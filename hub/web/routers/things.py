"""/api/v1/things: the latest state of every thing, as JSON; one thing with its availability, what its
device announced, and (for those who manage it) the payload fields no measurement took.

``device_view`` is the same detail for the thing page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from hub.domain.availability import SilenceTimeouts
from hub.domain.livestate import ThingState
from hub.domain.model import Action, Resident, Thing
from hub.domain.permissions import may
from hub.web import display
from hub.web.auth import Viewer, optional_viewer
from hub.web.context import WebContext, get_context, view_for
from hub.web.models import ErrorOut, ThingList, ThingOut

router = APIRouter(prefix="/api/v1/things", tags=["things"])

Context = Annotated[WebContext, Depends(get_context)]
#: the signed-in resident (session cookie or access token), or None for the kiosk view
MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]

FIELD_MAP_HINT = (
    "A field listed here maps to no canonical measurement, so it is not stored. To store it, map it in "
    "the hub's config under ingest.field_map: thing (this id, or a glob), field (the path as listed), to "
    "(a canonical measurement) and unit (the unit the device uses), then restart the hub."
)


class UnmappedFieldOut(BaseModel):
    field: str = Field(description='Path of the field in the payload ("ENERGY.ApparentPower")')
    value: bool | int | float | str | None = Field(description="Its last raw value")
    last_seen: datetime


class AnnouncementOut(BaseModel):
    """What the device said about itself when it announced itself (MQTT discovery and the like)."""

    source: str = Field(description="The ecosystem whose announcement it was")
    name: str | None
    model: str | None
    manufacturer: str | None
    sw_version: str | None
    measurements: list[str] = Field(description="Canonical measurements it said it reports")
    announced_at: datetime
    attributes: dict[str, Any] | None = Field(
        description="Whatever else it announced; null unless you may manage the thing"
    )


class ThingDetailOut(ThingOut):
    name: str | None = Field(description="The registered name, else the one its device announced")
    retired: bool = Field(description="Retired by a resident, or by its device withdrawing its announcement")
    availability: Literal["online", "offline", "unknown"]
    availability_by: Literal["device", "silence"] = Field(
        description='"device": it reports its own availability; "silence": offline once silent too long'
    )
    silence_timeout_s: float | None = Field(description='The timeout that applies with "silence"')
    power: Literal["mains", "battery"] = Field(
        description="Battery when its announcement says so or its readings carry a battery level"
    )
    announced: AnnouncementOut | None
    unmapped: list[UnmappedFieldOut] | None = Field(
        description="Payload fields no measurement took (at most 64, newest kept); null unless you may "
        "manage the thing (owners, stewards, admins)"
    )
    field_map_hint: str | None = Field(description="How to map an unmapped field, when any is listed")


@router.get("", response_model=ThingList)
def list_things(ctx: Context, viewer: MaybeViewer) -> ThingList:
    """Every thing you may see with the values you may see, sorted by id (anonymous: public ones)."""
    _, states = view_for(ctx, viewer.resident if viewer else None).things(0)
    return ThingList(things=[ThingOut.of(s) for s in states])


@router.get("/{thing_id}", response_model=ThingDetailOut, responses={404: {"model": ErrorOut}})
def get_thing(thing_id: str, request: Request, ctx: Context, viewer: MaybeViewer) -> ThingDetailOut:
    """One thing's latest values, as far as you may see them, with its availability and what its device
    announced; owners, stewards and admins also get the fields no measurement took. A signed-in resident
    who does not own the thing is recorded in the audit log its owner reads (at most once an hour)."""
    resident = viewer.resident if viewer else None
    state = view_for(ctx, resident).thing(thing_id)
    thing = ctx.catalog.thing(thing_id)
    if state is None or thing is None:  # unknown and not visible look the same: no id probing
        raise HTTPException(status_code=404, detail=f"no thing with id {thing_id!r}")
    if viewer is not None and ctx.directory is not None:
        relations = ctx.catalog.relations(thing_id)
        request.app.state.view_log.viewed(ctx.directory, viewer.resident, thing, relations, "api")
    manage = _may_manage(ctx, resident, thing)
    base = ThingOut.of(state)
    announced = state.announced
    timeout = _timeout(ctx, state)
    unmapped = None
    if manage:
        unmapped = [
            UnmappedFieldOut(field=path, value=f.raw, last_seen=_utc(f.last_seen))
            for path, f in ctx.live.unmapped(thing_id)
        ]
    return ThingDetailOut(
        **base.model_dump(),
        name=thing.name,
        retired=thing.retired or state.withdrawn,
        availability=_availability(state.online),
        availability_by="device" if state.reports_availability else "silence",
        silence_timeout_s=None if state.reports_availability else timeout,
        power="battery" if state.on_battery else "mains",
        announced=None
        if announced is None
        else AnnouncementOut(
            source=announced.source,
            name=announced.name,
            model=announced.model,
            manufacturer=announced.manufacturer,
            sw_version=announced.sw_version,
            measurements=list(announced.measurements),
            announced_at=_utc(announced.at),
            attributes=dict(announced.attributes) if manage else None,
        ),
        unmapped=unmapped,
        field_map_hint=FIELD_MAP_HINT if unmapped else None,
    )


def device_view(ctx: WebContext, thing: Thing, now: float, *, manage: bool) -> dict[str, Any]:
    """The thing page's device section: availability and how it is decided, what the device announced,
    retirement, and (``manage``: for those who may manage the thing) its unmapped fields with a
    field_map example."""
    state = ctx.live.get(thing.id)
    withdrawn = state is not None and state.withdrawn
    view: dict[str, Any] = {
        "availability": display.online_word(state.online if state else None),
        "last_seen_text": display.age_text(now - state.last_seen) if state else None,
        "rule": None,
        "announced": None,
        "power": None,
        "retired": thing.retired or withdrawn,
        "withdrawn": withdrawn,
        "unmapped": [],
        "example": None,
    }
    if state is None:
        return view
    view["power"] = "battery" if state.on_battery else "mains"
    if state.reports_availability:
        view["rule"] = "reported by the device itself"
    else:
        timeout = _timeout(ctx, state)
        view["rule"] = f"offline after {_duration(timeout)} without a message ({view['power']})"
    a = state.announced
    if a is not None:
        view["announced"] = {
            "source": a.source,
            "name": a.name,
            "model": " ".join(part for part in (a.manufacturer, a.model) if part) or None,
            "sw_version": a.sw_version,
            "measurements": ", ".join(a.measurements),
        }
    if manage:
        fields = ctx.live.unmapped(thing.id)
        view["unmapped"] = [
            {
                "field": path,
                "value": "null" if f.raw is None else str(f.raw),
                "last_seen_text": display.age_text(now - f.last_seen),
                "last_seen_iso": display.iso(f.last_seen),
            }
            for path, f in fields
        ]
        if fields:
            view["example"] = (
                "ingest:\n  field_map:\n"
                f'    - thing: "{thing.id}"\n'
                f'      field: "{fields[0][0]}"\n'
                "      to: <canonical measurement>\n"
                "      unit: <the unit the device uses>\n"
            )
    return view


def _availability(online: bool | None) -> Literal["online", "offline", "unknown"]:
    if online is None:
        return "unknown"
    return "online" if online else "offline"


def _may_manage(ctx: WebContext, viewer: Resident | None, thing: Thing) -> bool:
    return may(viewer, Action.MANAGE, thing, ctx.catalog.relations(thing.id), ctx.clock())


def _timeout(ctx: WebContext, state: ThingState) -> float:
    return (ctx.silence_timeouts or SilenceTimeouts()).for_power(state.on_battery)


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:g} h"
    if seconds >= 120:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
