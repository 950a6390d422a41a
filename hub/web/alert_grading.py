"""What each viewer may see of the open alerts: only alerts of things they may see, each body carrying no
more than the viewer may see of the thing's readings (the kiosk: what the owner shares with everyone).

One place for the dashboard, the live stream, /me and the REST API, so the paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from hub.domain.alerts import Alert, AlertState, Detail, addressees, render
from hub.domain.lending import HELD, custody
from hub.domain.model import Action, Relation, Resident, Thing
from hub.domain.permissions import allowed_actions, may
from hub.domain.privacy import public_pseudonym
from hub.web.context import PeopleSide, WebContext

#: every step a resident may take on an open alert, in the order the buttons show
ACTIONS = ("acknowledge", "claim", "release", "clear")

Names = Callable[[str | None], str | None]


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def detail_for(viewer: Resident | None, thing: Thing, relations: Sequence[Relation], now: float) -> Detail:
    """How much of an alert's values the viewer may read: their readings grant, else the derived state.

    For the kiosk this is the thing's watcher share (full → full, derived → derived, none → none)."""
    if may(viewer, Action.SEE_READINGS, thing, relations, now):
        return Detail.FULL
    if may(viewer, Action.SEE_DERIVED, thing, relations, now):
        return Detail.DERIVED
    return Detail.NONE


def pseudonyms(ctx: WebContext) -> Names:
    """Resident id → the name others see, looked up once each (None without a directory)."""
    cache: dict[str, str | None] = {}

    def name(resident_id: str | None) -> str | None:
        if resident_id is None or ctx.directory is None:
            return None
        if resident_id not in cache:
            resident = ctx.directory.resident(resident_id)
            cache[resident_id] = public_pseudonym(resident) if resident else None
        return cache[resident_id]

    return name


def shown(alert: Alert, thing: Thing, detail: Detail, names: Names) -> dict[str, Any]:
    """An alert as a page, the live stream and the API show it (JSON-ready, no resident ids)."""
    acknowledged_by, claimed_by = names(alert.acknowledged_by), names(alert.claimed_by)
    by = claimed_by if alert.state is AlertState.CLAIMED else acknowledged_by
    title, body = render(alert, detail, thing, by=by)
    return {
        "id": alert.id,
        "thing": thing.id,
        "thing_name": thing.name,
        "kind": alert.kind,
        "severity": alert.severity.value,
        "state": alert.state.value,
        "title": title,
        "body": body,
        "opened_at": alert.opened_at,
        "opened_text": when(alert.opened_at),
        "updated_at": alert.updated_at,
        "acknowledged_by": acknowledged_by,
        "claimed_by": claimed_by,
    }


def _order(alert: Alert) -> tuple[int, float, str]:
    return (-alert.severity.rank, alert.opened_at, alert.id)


def visible_alerts(ctx: WebContext, viewer: Resident | None) -> list[dict[str, Any]]:
    """The open alerts of things ``viewer`` (None: the kiosk) may see, most severe first, graded."""
    if ctx.alerts is None:
        return []
    now = ctx.clock()
    names = pseudonyms(ctx)
    out = []
    for alert in sorted(ctx.alerts.open_alerts(), key=_order):
        thing = ctx.catalog.thing(alert.thing)
        if thing is None:
            continue
        relations = ctx.catalog.relations(thing.id)
        if not may(viewer, Action.SEE, thing, relations, now):
            continue
        out.append(shown(alert, thing, detail_for(viewer, thing, relations, now), names))
    return out


def alerts_for(ctx: WebContext, side: PeopleSide, me: Resident) -> list[dict[str, Any]]:
    """Open alerts ``me`` is an addressee of (owner, steward, watcher, lender or borrower as the rule
    reaches them), graded for them, each with the steps they may take now (``actions``)."""
    if ctx.alerts is None:
        return []
    now = ctx.clock()
    names = pseudonyms(ctx)
    out = []
    for alert in sorted(ctx.alerts.open_alerts(), key=_order):
        thing = side.directory.thing(alert.thing)
        if thing is None:
            continue
        relations = side.directory.relations_of_thing(thing.id, now=now)
        borrower = None
        if alert.custody_aware:
            holder = custody(thing.id, side.directory.loans(thing=thing.id, states=HELD), now)
            borrower = holder.borrower if holder is not None else None
        told = addressees(alert, thing, relations, now, residents={me.id: me}, custody_borrower=borrower)
        mine = next((a for a in told if a.resident == me.id), None)
        if mine is None:
            continue
        row = shown(alert, thing, mine.detail, names)
        row["reason"] = mine.reason.value
        may_act = Action.ACKNOWLEDGE_ALERT in allowed_actions(me, thing, relations, now)
        row["actions"] = steps(alert, me.id) if may_act else []
        out.append(row)
    return out


def steps(alert: Alert, me: str) -> list[str]:
    """The lifecycle steps that make sense for ``me`` on this alert now (the buttons shown)."""
    found = []
    if alert.state is AlertState.ACTIVE:
        found.append("acknowledge")
    if alert.state in (AlertState.ACTIVE, AlertState.ACKNOWLEDGED):
        found.append("claim")
    if alert.state is AlertState.CLAIMED and alert.claimed_by == me:
        found.append("release")
    if alert.open:
        found.append("clear")
    return found
