"""/api/v1/residents, /api/v1/relations and /api/v1/audit, and the rules the admin pages share with them.

Every rule asks the permission function (``hub.web.access``) the way ``hub relation grant|revoke`` and
``hub audit`` do on the console; nothing here is stored beside the relations. Residents are listed by
pseudonym and role only, never with contacts. A thing the viewer may not know answers like a missing one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from hub.domain.model import Action, AuditEntry, Relation, RelationKind, Resident, Role
from hub.domain.privacy import public_pseudonym
from hub.domain.trust import TIER_NAMES, explain, tier
from hub.web.access import Refused, access, not_found
from hub.web.auth import Viewer, api_viewer
from hub.web.context import PeopleSide, WebContext, get_context, people_side, refusal
from hub.web.routers.loans import RefusalOut

router = APIRouter(prefix="/api/v1", tags=["residents and relations"])

Context = Annotated[WebContext, Depends(get_context)]
ApiViewer = Annotated[Viewer, Depends(api_viewer)]

#: relations granted by hand; lends carries a lending policy (set by the owner), borrows comes from loans
GRANTABLE = (RelationKind.OWNS, RelationKind.STEWARDS, RelationKind.WATCHES)
STAFF = (Role.STEWARD, Role.ADMIN)
#: audit entries read per request before filtering by what the viewer may see
AUDIT_WINDOW = 500

T = TypeVar("T")

REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": RefusalOut, "description": "Not signed in"},
    403: {"model": RefusalOut, "description": "The permission function said no"},
    404: {"model": RefusalOut, "description": "No such id, or one you may not know about"},
    409: {"model": RefusalOut, "description": "The directory refuses it (reason says why)"},
    422: {"model": RefusalOut, "description": "Malformed request"},
}


# -- the shared rules ---------------------------------------------------------------------------------


def is_staff(resident: Resident) -> bool:
    return resident.role in STAFF


@dataclass
class Names:
    """Resident id → the name others see, looked up once per request."""

    side: PeopleSide
    cache: dict[str, str] = field(default_factory=dict)

    def __call__(self, resident_id: str | None) -> str:
        if resident_id is None:
            return "the hub"
        if resident_id not in self.cache:
            resident = self.side.directory.resident(resident_id)
            self.cache[resident_id] = public_pseudonym(resident) if resident else "unknown"
        return self.cache[resident_id]


def directory_step(step: Callable[[], T]) -> T:
    """Run a directory operation, turning its refusals into a 409 ``Refused`` with its reason code."""
    try:
        return step()
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        reason, detail = refused
        status = 404 if reason in ("unknown_resident", "unknown_thing", "unknown_relation") else 409
        raise Refused(status, reason, detail) from exc


def live_resident(side: PeopleSide, pseudonym: str) -> Resident:
    """A resident by pseudonym; erased ones are gone for every purpose but history."""
    resident = side.directory.resident_by_pseudonym(pseudonym)
    if resident is None or resident.erased:
        raise Refused(404, "not_found", f"no resident called {pseudonym!r}")
    return resident


def grant_relation(
    side: PeopleSide,
    me: Resident,
    pseudonym: str,
    thing_id: str,
    kind: RelationKind,
    until: float | None,
    now: float,
) -> Relation:
    """Grant owns, stewards or watches as ``hub relation grant`` does: the granter must be allowed to
    manage the thing, except that anyone who may watch it may add themself as a watcher."""
    if kind not in GRANTABLE:
        detail = (
            "a lends relation carries a lending policy: its owner offers the thing for lending"
            if kind is RelationKind.LENDS
            else "borrows relations come only from loans: reserve the thing or scan it out at a reader"
        )
        raise Refused(422, "not_grantable", detail)
    found = access(side, me, thing_id, now)
    if found is None:
        raise not_found("thing", thing_id)
    resident = live_resident(side, pseudonym)
    if until is not None and until <= now:
        raise Refused(422, "bad_window", "the relation would end before it starts: give a later date")
    needed = Action.WATCH if kind is RelationKind.WATCHES and resident.id == me.id else Action.MANAGE
    if not found.may(needed):
        raise Refused(403, "forbidden", f"you may not grant {kind.value} on this thing")
    relation = Relation("", resident.id, thing_id, kind, valid_until=until)
    return directory_step(lambda: side.directory.grant(relation, actor=me.id, now=now))


def revoke_relation(side: PeopleSide, me: Resident, relation_id: str, now: float) -> Relation:
    """End a relation as ``hub relation revoke`` does: anyone may give up their own; others' need the
    right to manage the thing; a borrows relation ends only with its loan."""
    relation = side.directory.relation(relation_id)
    found = access(side, me, relation.thing, now) if relation is not None else None
    if relation is None or (found is None and relation.resident != me.id):
        raise not_found("relation", relation_id)
    if relation.kind is RelationKind.BORROWS:
        raise Refused(409, "loan_relation", "a borrows relation ends when its loan does: return the thing")
    if relation.resident != me.id and (found is None or not found.may(Action.MANAGE)):
        raise Refused(403, "forbidden", f"you may not revoke a {relation.kind.value} relation on this thing")
    return directory_step(lambda: side.directory.revoke(relation_id, actor=me.id, now=now))


def relations_shown(
    side: PeopleSide, me: Resident, now: float, thing_id: str | None = None, *, include_inactive: bool = False
) -> list[Relation]:
    """The relations a viewer may list: their own, and every relation of a thing they may manage."""
    if thing_id is not None:
        found = access(side, me, thing_id, now)
        if found is None:
            raise not_found("thing", thing_id)
        relations = side.directory.relations_of_thing(thing_id, include_inactive=include_inactive, now=now)
        if found.may(Action.MANAGE):
            return relations
        return [r for r in relations if r.resident == me.id]
    shown = {
        r.id: r
        for r in side.directory.relations_of_resident(me.id, include_inactive=include_inactive, now=now)
    }
    for thing in side.directory.things():
        found = access(side, me, thing.id, now)
        if found is not None and found.may(Action.MANAGE):
            for r in side.directory.relations_of_thing(thing.id, include_inactive=include_inactive, now=now):
                shown[r.id] = r
    return sorted(shown.values(), key=lambda r: (r.thing, r.valid_from, r.id))


def audit_shown(
    side: PeopleSide,
    me: Resident,
    now: float,
    *,
    thing_id: str | None = None,
    resident: Resident | None = None,
    limit: int = AUDIT_WINDOW,
) -> list[AuditEntry]:
    """Audit entries a steward or admin may read, oldest first.

    An entry about a thing shows when the permission function grants see_audit on it (admins on every
    non-private thing; owners and stewards by relation on theirs). An entry about no thing (roles,
    invites, joins, cards) shows to admins, and to others when they are its actor or subject.
    """
    if thing_id is not None:
        found = access(side, me, thing_id, now)
        if found is None:
            raise not_found("thing", thing_id)
        if not found.may(Action.SEE_AUDIT):
            raise Refused(403, "forbidden", f"you may not read the audit log of {found.thing.name}")
        entries = side.directory.audit(thing=thing_id, limit=limit)
        if resident is not None:
            entries = [e for e in entries if resident.id in (e.actor, e.subject)]
        return entries
    if resident is not None:
        merged = {
            _entry_key(e): e
            for e in (
                *side.directory.audit(subject=resident.id, limit=limit),
                *side.directory.audit(actor=resident.id, limit=limit),
            )
        }
        entries = sorted(merged.values(), key=lambda e: e.time)[-limit:]
    else:
        entries = side.directory.audit(limit=limit)
    seen: dict[str, bool] = {}

    def readable(entry: AuditEntry) -> bool:
        if entry.thing is None:
            return me.role is Role.ADMIN or me.id in (entry.actor, entry.subject)
        if entry.thing not in seen:
            found = access(side, me, entry.thing, now)
            seen[entry.thing] = found is not None and found.may(Action.SEE_AUDIT)
        return seen[entry.thing]

    return [e for e in entries if readable(e)]


def _entry_key(entry: AuditEntry) -> tuple[object, ...]:
    return (
        entry.time,
        entry.actor,
        entry.action,
        entry.thing,
        entry.subject,
        tuple(sorted(entry.detail.items())),
    )


def detail_words(entry: AuditEntry, names: Names) -> dict[str, str]:
    """An entry's detail with resident ids read as pseudonyms (as ``hub audit`` prints them)."""
    ids = {entry.actor, entry.subject}
    return {
        key: names(value) if value in ids or (key in ("owner", "invited_by") and value) else value
        for key, value in sorted(entry.detail.items())
    }


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def require_staff(viewer: Viewer) -> Resident:
    if not is_staff(viewer.resident):
        raise Refused(403, "forbidden", "only stewards and admins may read the audit log of the hub")
    return viewer.resident


# -- models -------------------------------------------------------------------------------------------


class ResidentOut(BaseModel):
    pseudonym: str
    role: Role


class ResidentList(BaseModel):
    residents: list[ResidentOut]


class TrustOut(BaseModel):
    tier: int = Field(description="0 newcomer … 3 pillar")
    tier_name: str
    explanation: str = Field(description='Why, e.g. "4 on-time returns, 1 late, vouched by 2"')
    on_time: int
    late: int
    damaged: int
    lost: int
    vouches: int = Field(description="How many residents vouched (not who)")


class ResidentDetail(ResidentOut):
    trust: TrustOut


class RelationOut(BaseModel):
    id: str
    resident: str = Field(description="The related resident's pseudonym")
    thing: str
    kind: RelationKind
    since: datetime
    until: datetime | None = None
    revoked_at: datetime | None = None
    granted_by: str | None = Field(default=None, description="Pseudonym of who granted it; none: the hub")
    active: bool


class RelationList(BaseModel):
    relations: list[RelationOut]


class RelationRequest(BaseModel):
    resident: str = Field(min_length=1, max_length=64, description="Pseudonym of the resident")
    thing: str = Field(min_length=1, max_length=128)
    kind: RelationKind = Field(description="owns, stewards or watches (lends and borrows come otherwise)")
    until: datetime | None = Field(default=None, description="When the relation ends; none: until revoked")


class AuditOut(BaseModel):
    time: datetime
    actor: str = Field(description="Pseudonym of who did it, or 'the hub'")
    action: str
    thing: str | None = None
    subject: str | None = Field(default=None, description="Pseudonym of the resident it concerns")
    detail: dict[str, str]


class AuditList(BaseModel):
    entries: list[AuditOut]


def relation_out(relation: Relation, names: Names, now: float) -> RelationOut:
    return RelationOut(
        id=relation.id,
        resident=names(relation.resident),
        thing=relation.thing,
        kind=relation.kind,
        since=utc(relation.valid_from),
        until=utc(relation.valid_until) if relation.valid_until is not None else None,
        revoked_at=utc(relation.revoked_at) if relation.revoked_at is not None else None,
        granted_by=names(relation.granted_by) if relation.granted_by else None,
        active=relation.active(now),
    )


def audit_out(entries: Iterable[AuditEntry], names: Names) -> AuditList:
    return AuditList(
        entries=[
            AuditOut(
                time=utc(e.time),
                actor=names(e.actor),
                action=e.action,
                thing=e.thing,
                subject=names(e.subject) if e.subject else None,
                detail=detail_words(e, names),
            )
            for e in entries
        ]
    )


# -- endpoints ----------------------------------------------------------------------------------------


@router.get("/residents", response_model=ResidentList, responses=REFUSALS)
def list_residents(ctx: Context, viewer: ApiViewer) -> ResidentList:
    """Every resident by pseudonym and role, by join time; erased residents and contacts never."""
    side = people_side(ctx)
    return ResidentList(
        residents=[
            ResidentOut(pseudonym=r.pseudonym, role=r.role)
            for r in side.directory.residents()
            if not r.erased
        ]
    )


@router.get("/residents/{pseudonym}", response_model=ResidentDetail, responses=REFUSALS)
def get_resident(pseudonym: str, ctx: Context, viewer: ApiViewer) -> ResidentDetail:
    """A resident's pseudonym, role and trust, explained from verified loans and vouches."""
    side = people_side(ctx)
    resident = live_resident(side, pseudonym)
    record = side.desk.trust(resident.id)
    level = tier(record)
    return ResidentDetail(
        pseudonym=resident.pseudonym,
        role=resident.role,
        trust=TrustOut(
            tier=level,
            tier_name=TIER_NAMES[level],
            explanation=explain(record),
            on_time=record.on_time,
            late=record.late,
            damaged=record.damaged,
            lost=record.lost,
            vouches=len(record.vouches),
        ),
    )


@router.get("/relations", response_model=RelationList, responses=REFUSALS)
def list_relations(
    ctx: Context,
    viewer: ApiViewer,
    thing: Annotated[str | None, Query(max_length=128, description="Only relations of this thing")] = None,
    include_inactive: Annotated[bool, Query(description="Also revoked and expired relations")] = False,
) -> RelationList:
    """Your relations, and every relation of the things you may manage."""
    side = people_side(ctx)
    now = ctx.clock()
    names = Names(side)
    shown = relations_shown(side, viewer.resident, now, thing, include_inactive=include_inactive)
    return RelationList(relations=[relation_out(r, names, now) for r in shown])


@router.post("/relations", response_model=RelationOut, status_code=201, responses=REFUSALS)
def create_relation(body: RelationRequest, ctx: Context, viewer: ApiViewer) -> RelationOut:
    """Grant owns, stewards or watches on a thing you may manage (or watch it yourself)."""
    side = people_side(ctx)
    now = ctx.clock()
    until = body.until.timestamp() if body.until is not None else None
    relation = grant_relation(side, viewer.resident, body.resident, body.thing, body.kind, until, now)
    return relation_out(relation, Names(side), now)


@router.delete("/relations/{relation_id}", response_model=RelationOut, responses=REFUSALS)
def delete_relation(relation_id: str, ctx: Context, viewer: ApiViewer) -> RelationOut:
    """End a relation now: your own, or one on a thing you may manage. The row stays, revoked."""
    side = people_side(ctx)
    now = ctx.clock()
    return relation_out(revoke_relation(side, viewer.resident, relation_id, now), Names(side), now)


@router.get("/audit", response_model=AuditList, responses=REFUSALS)
def read_audit(
    ctx: Context,
    viewer: ApiViewer,
    thing: Annotated[str | None, Query(max_length=128, description="Only entries about this thing")] = None,
    resident: Annotated[
        str | None, Query(max_length=64, description="Only entries by or about this pseudonym")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=AUDIT_WINDOW)] = AUDIT_WINDOW,
) -> AuditList:
    """The audit log as far as you may read it (stewards and admins; residents read /me/audit)."""
    side = people_side(ctx)
    me = require_staff(viewer)
    about = live_resident(side, resident) if resident else None
    entries = audit_shown(side, me, ctx.clock(), thing_id=thing, resident=about)
    return audit_out(entries[-limit:], Names(side))
