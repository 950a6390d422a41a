"""May resident R do action A on thing T? The one answer every path asks (DESIGN §2).

Permissions are derived here from the thing's visibility and watcher share, the viewer's role and the
viewer's *active* relations to the thing; nothing is stored beside the relations. What one viewer may do
is the union of what each source below grants, then cut by the overrides.

``share`` stands for what ``thing.watcher_share`` opens: FULL → see_readings, see_derived, see_history;
DERIVED → see_derived; NONE → nothing.

Grants (a row applies when its condition holds; the viewer gets the union of all rows that apply):

==========================  ====================  ==========================================================
source                      thing visibility      grants
==========================  ====================  ==========================================================
kiosk (viewer None)         public                see, see_availability, share
kiosk (viewer None)         neighbors, private    nothing
any logged-in resident      neighbors, public     see, see_availability, see_custody, watch, share
role steward or admin       neighbors, public     + manage, return, report_damage, acknowledge_alert
role admin                  neighbors, public     + see_audit
owns / stewards relation    any                   every action except borrow and reserve
lends relation              any                   see, see_availability, see_custody, return, report_damage
borrows relation (active)   any                   see, see_availability, see_readings, see_derived,
                                                  see_custody, see_owner_contact, return, report_damage,
                                                  acknowledge_alert
watches relation            any                   see, see_availability, watch, acknowledge_alert, share
lending (see below)         any                   borrow, reserve
==========================  ====================  ==========================================================

Lending: borrow and reserve need an active ``lends`` relation on the thing. A ``stewards`` relation may
always borrow it; anyone else must be ``eligible`` under at least one active lends policy and must be able
to know the thing exists (a non-private thing, or any active relation to a private one). An owner or
lender never borrows the thing they own or lend.

Overrides, in this order:

1. An erased resident may do nothing, whatever relations are left.
2. A role alone opens nothing on a PRIVATE thing: an unrelated resident, steward or admin cannot even see
   that it exists (the admin's see_audit covers non-private things only).
3. A retired thing keeps only the grants of owns/stewards relations and, when not private, of the admin
   role; an active borrower keeps return and report_damage so a tool retired mid-loan can still come
   back. Nobody may borrow, reserve or watch a retired thing.

Only relations of this thing that are active at ``now`` count; revoked, expired or not-yet-valid ones grant
nothing. see_exact_location and see_owner_contact therefore reach only owners, stewards (relation) and the
borrower while the loan runs; the kiosk never sees custody, contacts or anything of a non-public thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from hub.domain.model import (
    Action,
    LendPolicy,
    Relation,
    RelationKind,
    Resident,
    Role,
    Share,
    Thing,
    Visibility,
)

_A = Action

_SHARED: Final[dict[Share, frozenset[Action]]] = {
    Share.FULL: frozenset({_A.SEE_READINGS, _A.SEE_DERIVED, _A.SEE_HISTORY}),
    Share.DERIVED: frozenset({_A.SEE_DERIVED}),
    Share.NONE: frozenset(),
}

_KIOSK: Final = frozenset({_A.SEE, _A.SEE_AVAILABILITY})
_RESIDENT: Final = frozenset({_A.SEE, _A.SEE_AVAILABILITY, _A.SEE_CUSTODY, _A.WATCH})
_ROLE_STEWARD: Final = frozenset({_A.MANAGE, _A.RETURN, _A.REPORT_DAMAGE, _A.ACKNOWLEDGE_ALERT})
_ROLE_ADMIN: Final = _ROLE_STEWARD | {_A.SEE_AUDIT}
_LENDING: Final = frozenset({_A.BORROW, _A.RESERVE})
_KEEPER: Final = frozenset(Action) - _LENDING
_LENDER: Final = frozenset({_A.SEE, _A.SEE_AVAILABILITY, _A.SEE_CUSTODY, _A.RETURN, _A.REPORT_DAMAGE})
_BORROWER: Final = frozenset(
    {
        _A.SEE,
        _A.SEE_AVAILABILITY,
        _A.SEE_READINGS,
        _A.SEE_DERIVED,
        _A.SEE_CUSTODY,
        _A.SEE_OWNER_CONTACT,
        _A.RETURN,
        _A.REPORT_DAMAGE,
        _A.ACKNOWLEDGE_ALERT,
    }
)
_WATCHER: Final = frozenset({_A.SEE, _A.SEE_AVAILABILITY, _A.WATCH, _A.ACKNOWLEDGE_ALERT})
_BORROWER_ON_RETIRED: Final = frozenset({_A.RETURN, _A.REPORT_DAMAGE})
_NEVER_ON_RETIRED: Final = _LENDING | {_A.WATCH}


def eligible(policy: LendPolicy, resident_id: str, trust_tier: int) -> bool:
    """Whether a lends policy admits this resident as a borrower ("any", "tier" or "list").

    An unknown ``who`` admits nobody, so a policy written by a newer hub fails closed.
    """
    if policy.who == "any":
        return True
    if policy.who == "tier":
        return trust_tier >= policy.min_tier
    if policy.who == "list":
        return resident_id in policy.approved
    return False


def active_relations(thing: Thing, relations: Iterable[Relation], now: float) -> list[Relation]:
    """The relations of this thing that are in force at ``now`` (others in the input are ignored)."""
    return [r for r in relations if r.thing == thing.id and r.active(now)]


def allowed_actions(
    viewer: Resident | None,
    thing: Thing,
    relations: Sequence[Relation],
    now: float,
    *,
    trust_tier: int = 0,
) -> frozenset[Action]:
    """Everything ``viewer`` may do on ``thing`` at ``now`` (the module's table); None is the kiosk."""
    if viewer is not None and viewer.erased:
        return frozenset()
    active = active_relations(thing, relations, now)
    mine = {r.kind for r in active if viewer is not None and r.resident == viewer.id}
    private = thing.visibility == Visibility.PRIVATE
    shared = _SHARED[thing.watcher_share]

    by_relation: set[Action] = set()
    if RelationKind.OWNS in mine or RelationKind.STEWARDS in mine:
        by_relation |= _KEEPER
    if RelationKind.LENDS in mine:
        by_relation |= _LENDER
    if RelationKind.BORROWS in mine:
        by_relation |= _BORROWER
    if RelationKind.WATCHES in mine:
        by_relation |= _WATCHER | shared

    by_standing: set[Action] = set()
    if viewer is None:
        if thing.visibility == Visibility.PUBLIC:
            by_standing |= _KIOSK | shared
    elif not private:
        by_standing |= _RESIDENT | shared
        if viewer.role == Role.STEWARD:
            by_standing |= _ROLE_STEWARD
        elif viewer.role == Role.ADMIN:
            by_standing |= _ROLE_ADMIN

    if viewer is not None and _may_borrow(viewer, active, mine, private, trust_tier):
        by_relation |= _LENDING

    if not thing.retired:
        return frozenset(by_relation | by_standing)

    kept: set[Action] = set()
    if RelationKind.OWNS in mine or RelationKind.STEWARDS in mine:
        kept |= by_relation
    if viewer is not None and viewer.role == Role.ADMIN and not private:
        kept |= by_standing
    if RelationKind.BORROWS in mine:
        kept |= _BORROWER_ON_RETIRED
    return frozenset(kept - _NEVER_ON_RETIRED)


def may(
    viewer: Resident | None,
    action: Action,
    thing: Thing,
    relations: Sequence[Relation],
    now: float,
    *,
    trust_tier: int = 0,
) -> bool:
    """May ``viewer`` (None: the anonymous kiosk) do ``action`` on ``thing`` at ``now``?

    ``relations`` are the thing's relations, all residents; only those active at ``now`` count.
    ``trust_tier`` is the viewer's current tier, used by lending policies that require one.
    """
    return action in allowed_actions(viewer, thing, relations, now, trust_tier=trust_tier)


def _may_borrow(
    viewer: Resident,
    active: Sequence[Relation],
    mine: set[RelationKind],
    private: bool,
    trust_tier: int,
) -> bool:
    offers = [r for r in active if r.kind == RelationKind.LENDS]
    if not offers or RelationKind.OWNS in mine or RelationKind.LENDS in mine:
        return False
    if RelationKind.STEWARDS in mine:
        return True
    if private and not mine:
        return False
    # A lends relation without a policy lends on the defaults.
    return any(eligible(r.policy or LendPolicy(), viewer.id, trust_tier) for r in offers)
