"""What a signed-in resident may do with a thing or a loan, asked of the permission function with the
directory's current relations (never the read cache: a loan just made must count at once).

A thing the viewer may not see answers exactly like a thing that does not exist, on every path.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.domain.lending import HELD
from hub.domain.model import Action, Loan, Relation, RelationKind, Resident, Thing
from hub.domain.permissions import active_relations, allowed_actions
from hub.domain.trust import tier
from hub.web.context import PeopleSide


class Refused(Exception):
    """An API or page request refused with a status, a stable reason code and words a person can act on."""

    def __init__(
        self, status: int, reason: str, detail: str, *, window: tuple[float, float] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.window = window


def not_found(kind: str, ident: str) -> Refused:
    """The one answer for a missing id and for an id the viewer may not know about."""
    return Refused(404, "not_found", f"no {kind} with id {ident!r}")


@dataclass(frozen=True, slots=True)
class Access:
    """A thing the viewer may see, its active relations, and everything the viewer may do with it now."""

    thing: Thing
    relations: list[Relation]
    actions: frozenset[Action]
    now: float

    def may(self, action: Action) -> bool:
        return action in self.actions

    def people(self, kind: RelationKind) -> list[str]:
        return [r.resident for r in active_relations(self.thing, self.relations, self.now) if r.kind is kind]


def access(side: PeopleSide, viewer: Resident, thing_id: str, now: float) -> Access | None:
    """The viewer's access to a thing, or None when it does not exist or they may not know it exists."""
    thing = side.directory.thing(thing_id)
    if thing is None:
        return None
    relations = side.directory.relations_of_thing(thing_id, now=now)
    # a trust tier matters only to lending policies; skip its queries for things nobody lends
    lent = any(r.kind is RelationKind.LENDS and r.active(now) for r in relations)
    trust_tier = tier(side.desk.trust(viewer.id)) if lent else 0
    actions = allowed_actions(viewer, thing, relations, now, trust_tier=trust_tier)
    if Action.SEE not in actions:
        return None
    return Access(thing, relations, actions, now)


def require_access(side: PeopleSide, viewer: Resident, thing_id: str, now: float) -> Access:
    found = access(side, viewer, thing_id, now)
    if found is None:
        raise not_found("thing", thing_id)
    return found


def loan_visible(loan: Loan, viewer: Resident, found: Access | None) -> bool:
    """Whether the viewer may see this loan: their own; every loan of a thing they manage or lend (they
    decide on requests); of any other thing they may see custody of, only the loan holding it now."""
    if loan.borrower == viewer.id:
        return True
    if found is None:
        return False
    if found.may(Action.MANAGE) or loan.lender == viewer.id:
        return True
    return found.may(Action.SEE_CUSTODY) and loan.state in HELD
