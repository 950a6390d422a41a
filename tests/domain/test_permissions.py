"""The permission table: every viewer × action × visibility × watcher share, written out by hand."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from hub.domain.permissions import allowed_actions, eligible, may

NOW = 1_790_000_000.0
DAY = 86_400.0

# Short names for the table; every Action must have one (checked below).
CODE = {
    "see": Action.SEE,
    "read": Action.SEE_READINGS,
    "deriv": Action.SEE_DERIVED,
    "hist": Action.SEE_HISTORY,
    "cust": Action.SEE_CUSTODY,
    "avail": Action.SEE_AVAILABILITY,
    "contact": Action.SEE_OWNER_CONTACT,
    "exact": Action.SEE_EXACT_LOCATION,
    "audit": Action.SEE_AUDIT,
    "borrow": Action.BORROW,
    "reserve": Action.RESERVE,
    "return": Action.RETURN,
    "watch": Action.WATCH,
    "manage": Action.MANAGE,
    "ack": Action.ACKNOWLEDGE_ALERT,
    "damage": Action.REPORT_DAMAGE,
}

# The thing "drill" is owned by owner, stewarded by keeper, offered by lender (policy: any resident),
# borrowed now by borrower, was borrowed by past-borrower, and watched by watcher. The erased resident
# still has an active watches relation: erasure must win over it.
# Columns: viewer, visibility (* any), watcher share (* any), allowed actions (- none); an indented
# line continues the row above.
# Exactly one row matches each (viewer, visibility, share).
TABLE = """
anonymous     private   *       -
anonymous     neighbors *       -
anonymous     public    full    see avail read deriv hist
anonymous     public    derived see avail deriv
anonymous     public    none    see avail

unrelated     private   *       -
unrelated     neighbors full    see avail cust watch read deriv hist borrow reserve
unrelated     neighbors derived see avail cust watch deriv borrow reserve
unrelated     neighbors none    see avail cust watch borrow reserve
unrelated     public    full    see avail cust watch read deriv hist borrow reserve
unrelated     public    derived see avail cust watch deriv borrow reserve
unrelated     public    none    see avail cust watch borrow reserve

owner         *         *       see read deriv hist cust avail contact exact audit return watch manage ack
                                damage

steward-rel   *         *       see read deriv hist cust avail contact exact audit return watch manage ack
                                damage borrow reserve

lender        private   *       see avail cust return damage
lender        neighbors full    see avail cust return damage watch read deriv hist
lender        neighbors derived see avail cust return damage watch deriv
lender        neighbors none    see avail cust return damage watch
lender        public    full    see avail cust return damage watch read deriv hist
lender        public    derived see avail cust return damage watch deriv
lender        public    none    see avail cust return damage watch

borrower      private   *       see avail read deriv cust contact return damage ack borrow reserve
borrower      neighbors full    see avail read deriv hist cust contact return damage ack borrow reserve
                                watch
borrower      neighbors derived see avail read deriv cust contact return damage ack borrow reserve watch
borrower      neighbors none    see avail read deriv cust contact return damage ack borrow reserve watch
borrower      public    full    see avail read deriv hist cust contact return damage ack borrow reserve
                                watch
borrower      public    derived see avail read deriv cust contact return damage ack borrow reserve watch
borrower      public    none    see avail read deriv cust contact return damage ack borrow reserve watch

past-borrower private   *       -
past-borrower neighbors full    see avail cust watch read deriv hist borrow reserve
past-borrower neighbors derived see avail cust watch deriv borrow reserve
past-borrower neighbors none    see avail cust watch borrow reserve
past-borrower public    full    see avail cust watch read deriv hist borrow reserve
past-borrower public    derived see avail cust watch deriv borrow reserve
past-borrower public    none    see avail cust watch borrow reserve

watcher       private   full    see avail watch ack read deriv hist borrow reserve
watcher       private   derived see avail watch ack deriv borrow reserve
watcher       private   none    see avail watch ack borrow reserve
watcher       neighbors full    see avail watch ack cust read deriv hist borrow reserve
watcher       neighbors derived see avail watch ack cust deriv borrow reserve
watcher       neighbors none    see avail watch ack cust borrow reserve
watcher       public    full    see avail watch ack cust read deriv hist borrow reserve
watcher       public    derived see avail watch ack cust deriv borrow reserve
watcher       public    none    see avail watch ack cust borrow reserve

role-steward  private   *       -
role-steward  neighbors full    see avail cust watch read deriv hist borrow reserve manage return damage ack
role-steward  neighbors derived see avail cust watch deriv borrow reserve manage return damage ack
role-steward  neighbors none    see avail cust watch borrow reserve manage return damage ack
role-steward  public    full    see avail cust watch read deriv hist borrow reserve manage return damage ack
role-steward  public    derived see avail cust watch deriv borrow reserve manage return damage ack
role-steward  public    none    see avail cust watch borrow reserve manage return damage ack

role-admin    private   *       -
role-admin    neighbors full    see avail cust watch read deriv hist borrow reserve manage return damage ack
                                audit
role-admin    neighbors derived see avail cust watch deriv borrow reserve manage return damage ack audit
role-admin    neighbors none    see avail cust watch borrow reserve manage return damage ack audit
role-admin    public    full    see avail cust watch read deriv hist borrow reserve manage return damage ack
                                audit
role-admin    public    derived see avail cust watch deriv borrow reserve manage return damage ack audit
role-admin    public    none    see avail cust watch borrow reserve manage return damage ack audit

erased        *         *       -
"""

# The same drill once retired: only owners, stewards (relation) and the admin role still see it; the
# borrower can still bring it back; nobody borrows, reserves or watches it.
RETIRED_TABLE = """
anonymous     *         *       -
unrelated     *         *       -
owner         *         *       see read deriv hist cust avail contact exact audit return manage ack damage
steward-rel   *         *       see read deriv hist cust avail contact exact audit return manage ack damage
lender        *         *       -
borrower      *         *       return damage
past-borrower *         *       -
watcher       *         *       -
role-steward  *         *       -
role-admin    private   *       -
role-admin    neighbors full    see avail cust read deriv hist manage return damage ack audit
role-admin    neighbors derived see avail cust deriv manage return damage ack audit
role-admin    neighbors none    see avail cust manage return damage ack audit
role-admin    public    full    see avail cust read deriv hist manage return damage ack audit
role-admin    public    derived see avail cust deriv manage return damage ack audit
role-admin    public    none    see avail cust manage return damage ack audit
erased        *         *       -
"""

VIEWERS: dict[str, Resident | None] = {
    "anonymous": None,
    "unrelated": Resident("u", "Quiet Fox"),
    "owner": Resident("o", "Drill Owner"),
    "steward-rel": Resident("k", "Keeper"),
    "lender": Resident("l", "Lender"),
    "borrower": Resident("b", "Borrower"),
    "past-borrower": Resident("p", "Past Borrower"),
    "watcher": Resident("w", "Watcher"),
    "role-steward": Resident("rs", "Street Steward", role=Role.STEWARD),
    "role-admin": Resident("ra", "Hub Admin", role=Role.ADMIN),
    "erased": Resident("z", "Gone", erased=True),
}

RELATIONS = (
    Relation("r1", "o", "drill", RelationKind.OWNS),
    Relation("r2", "k", "drill", RelationKind.STEWARDS),
    Relation("r3", "l", "drill", RelationKind.LENDS, policy=LendPolicy(who="any")),
    Relation(
        "r4", "b", "drill", RelationKind.BORROWS, valid_from=NOW - DAY, valid_until=NOW + DAY, loan="L1"
    ),
    Relation("r5", "p", "drill", RelationKind.BORROWS, valid_from=NOW - 9 * DAY, valid_until=NOW - 2 * DAY),
    Relation("r6", "w", "drill", RelationKind.WATCHES),
    Relation("r7", "z", "drill", RelationKind.WATCHES),
)


def parse(table: str) -> dict[tuple[str, str, str], frozenset[Action]]:
    """Expand the table's wildcards into one entry per (viewer, visibility, share); no overlaps.

    An indented line continues the previous row's actions.
    """
    rows: list[str] = []
    for line in table.strip().splitlines():
        if line[:1].isspace() and line.strip():
            rows[-1] += " " + line.strip()
        elif line.strip():
            rows.append(line)
    expected: dict[tuple[str, str, str], frozenset[Action]] = {}
    for line in rows:
        viewer, visibility, share, *codes = line.split()
        visibilities = [v.value for v in Visibility] if visibility == "*" else [visibility]
        shares = [s.value for s in Share] if share == "*" else [share]
        actions = frozenset() if codes == ["-"] else frozenset(CODE[c] for c in codes)
        for key in itertools.product([viewer], visibilities, shares):
            assert key not in expected, f"table row {line!r} overlaps another for {key}"
            expected[key] = actions
    return expected


EXPECTED = parse(TABLE)
EXPECTED_RETIRED = parse(RETIRED_TABLE)
COMBINATIONS = list(itertools.product(VIEWERS, [v.value for v in Visibility], [s.value for s in Share]))


def drill(visibility: str, share: str, *, retired: bool = False) -> Thing:
    return Thing("drill", "Drill", kind="tool", visibility=Visibility(visibility), watcher_share=Share(share),
                 retired=retired)  # fmt: skip


def test_table_names_every_action_and_covers_every_combination() -> None:
    assert set(CODE.values()) == set(Action)
    assert set(EXPECTED) == set(COMBINATIONS)
    assert set(EXPECTED_RETIRED) == set(COMBINATIONS)


@pytest.mark.parametrize(("viewer", "visibility", "share"), COMBINATIONS)
def test_permission_table(viewer: str, visibility: str, share: str) -> None:
    thing = drill(visibility, share)
    want = EXPECTED[(viewer, visibility, share)]
    got = allowed_actions(VIEWERS[viewer], thing, RELATIONS, NOW)
    assert got == want, f"extra: {sorted(got - want)}, missing: {sorted(want - got)}"
    for action in Action:
        assert may(VIEWERS[viewer], action, thing, RELATIONS, NOW) is (action in want), action


@pytest.mark.parametrize(("viewer", "visibility", "share"), COMBINATIONS)
def test_permission_table_for_retired_thing(viewer: str, visibility: str, share: str) -> None:
    thing = drill(visibility, share, retired=True)
    want = EXPECTED_RETIRED[(viewer, visibility, share)]
    got = allowed_actions(VIEWERS[viewer], thing, RELATIONS, NOW)
    assert got == want, f"extra: {sorted(got - want)}, missing: {sorted(want - got)}"


# --- lending eligibility ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "resident", "tier", "expected"),
    [
        (LendPolicy(who="any"), "u", 0, True),
        (LendPolicy(who="tier", min_tier=2), "u", 1, False),
        (LendPolicy(who="tier", min_tier=2), "u", 2, True),
        (LendPolicy(who="tier", min_tier=2), "u", 3, True),
        (LendPolicy(who="list", approved=("a", "u")), "u", 0, True),
        (LendPolicy(who="list", approved=("a",)), "u", 3, False),
        (LendPolicy(who="friends-of-friends"), "u", 3, False),
    ],
)
def test_eligible_follows_policy_and_unknown_policy_admits_nobody(
    policy: LendPolicy, resident: str, tier: int, expected: bool
) -> None:
    assert eligible(policy, resident, tier) is expected


NEIGHBOR = Resident("u", "Quiet Fox")
SHARED_DRILL = Thing("drill", "Drill", kind="tool", visibility=Visibility.NEIGHBORS)


def lends(policy: LendPolicy | None, **validity: float) -> Relation:
    return Relation("lend", "o", "drill", RelationKind.LENDS, policy=policy, **validity)


def test_nobody_borrows_a_thing_that_is_not_offered() -> None:
    relations = [Relation("own", "o", "drill", RelationKind.OWNS)]
    assert not may(NEIGHBOR, Action.BORROW, SHARED_DRILL, relations, NOW)
    assert not may(NEIGHBOR, Action.RESERVE, SHARED_DRILL, relations, NOW)


def test_tier_policy_admits_only_residents_at_or_above_the_tier() -> None:
    relations = [lends(LendPolicy(who="tier", min_tier=2))]
    assert not may(NEIGHBOR, Action.BORROW, SHARED_DRILL, relations, NOW, trust_tier=1)
    assert may(NEIGHBOR, Action.BORROW, SHARED_DRILL, relations, NOW, trust_tier=2)
    assert may(NEIGHBOR, Action.RESERVE, SHARED_DRILL, relations, NOW, trust_tier=2)


def test_list_policy_admits_only_listed_residents() -> None:
    relations = [lends(LendPolicy(who="list", approved=("u",)))]
    assert may(NEIGHBOR, Action.BORROW, SHARED_DRILL, relations, NOW)
    assert not may(Resident("x", "Stranger"), Action.BORROW, SHARED_DRILL, relations, NOW)


def test_one_eligible_offer_is_enough_when_several_are_active() -> None:
    relations = [
        lends(LendPolicy(who="list", approved=("someone-else",))),
        Relation("lend2", "k", "drill", RelationKind.LENDS, policy=LendPolicy(who="tier", min_tier=1)),
    ]
    assert not may(NEIGHBOR, Action.BORROW, SHARED_DRILL, relations, NOW, trust_tier=0)
    assert may(NEIGHBOR, Action.BORROW, SHARED_DRILL, relations, NOW, trust_tier=1)


def test_lends_relation_without_policy_lends_to_any_resident() -> None:
    assert may(NEIGHBOR, Action.BORROW, SHARED_DRILL, [lends(None)], NOW)


def test_expired_revoked_or_future_offer_lends_nothing() -> None:
    for validity in (
        {"valid_until": NOW - 1},
        {"revoked_at": NOW - 1},
        {"valid_from": NOW + 1},
        {"valid_until": NOW},  # the end instant is already outside the interval
    ):
        assert not may(NEIGHBOR, Action.BORROW, SHARED_DRILL, [lends(LendPolicy(), **validity)], NOW), (
            validity
        )


def test_owner_and_lender_never_borrow_what_they_own_or_lend() -> None:
    relations = [Relation("own", "o", "drill", RelationKind.OWNS), lends(LendPolicy())]
    owner = Resident("o", "Drill Owner")
    assert not may(owner, Action.BORROW, SHARED_DRILL, relations, NOW, trust_tier=3)
    assert not may(owner, Action.RESERVE, SHARED_DRILL, relations, NOW, trust_tier=3)


def test_steward_relation_borrows_an_offered_thing_whatever_the_policy() -> None:
    relations = [
        lends(LendPolicy(who="list", approved=())),
        Relation("st", "k", "drill", RelationKind.STEWARDS),
    ]
    assert may(Resident("k", "Keeper"), Action.BORROW, SHARED_DRILL, relations, NOW)


def test_listed_resident_cannot_borrow_a_private_thing_they_are_not_related_to() -> None:
    private = Thing("drill", "Drill", kind="tool", visibility=Visibility.PRIVATE)
    relations = [lends(LendPolicy(who="list", approved=("u",)))]
    assert allowed_actions(NEIGHBOR, private, relations, NOW) == frozenset()


def test_relations_of_other_things_grant_nothing_here() -> None:
    private = Thing("drill", "Drill", visibility=Visibility.PRIVATE)
    relations = [Relation("own", "u", "bike", RelationKind.OWNS)]
    assert allowed_actions(NEIGHBOR, private, relations, NOW) == frozenset()


def test_borrower_loses_contact_custody_and_return_when_the_loan_ends() -> None:
    private = Thing("drill", "Drill", kind="tool", visibility=Visibility.PRIVATE)
    borrower = Resident("b", "Borrower")
    relations = [Relation("loan", "b", "drill", RelationKind.BORROWS, valid_from=NOW, valid_until=NOW + DAY)]
    during = allowed_actions(borrower, private, relations, NOW + DAY / 2)
    assert {Action.SEE_OWNER_CONTACT, Action.SEE_CUSTODY, Action.RETURN} <= during
    assert allowed_actions(borrower, private, relations, NOW + DAY) == frozenset()
    assert allowed_actions(borrower, private, relations, NOW - 1) == frozenset()


def test_watch_settings_do_not_widen_a_derived_share() -> None:
    flood = Thing("flood", "Basement flood", visibility=Visibility.PRIVATE, watcher_share=Share.DERIVED)
    watcher = Resident("w", "Watcher")
    relations = [Relation("watch", "w", "flood", RelationKind.WATCHES)]
    got = allowed_actions(watcher, flood, relations, NOW)
    assert Action.SEE_DERIVED in got
    assert Action.SEE_READINGS not in got
    assert Action.SEE_HISTORY not in got


# --- properties --------------------------------------------------------------------------------------

RESIDENT_IDS = ["a", "b", "c", "u"]

policies = st.one_of(
    st.none(),
    st.builds(LendPolicy, who=st.just("any")),
    st.builds(LendPolicy, who=st.just("tier"), min_tier=st.integers(0, 3)),
    st.builds(LendPolicy, who=st.just("list"), approved=st.lists(st.sampled_from(RESIDENT_IDS)).map(tuple)),
)
times = st.floats(NOW - 10 * DAY, NOW + 10 * DAY)


@st.composite
def relations_of(draw: st.DrawFn, residents: st.SearchStrategy[str]) -> Relation:
    kind = draw(st.sampled_from(RelationKind))
    start = draw(st.one_of(st.just(0.0), times))
    return Relation(
        id=draw(st.text("0123456789abcdef", min_size=1, max_size=6)),
        resident=draw(residents),
        thing=draw(st.sampled_from(["drill", "bike"])),
        kind=kind,
        valid_from=start,
        valid_until=draw(st.one_of(st.none(), times)),
        revoked_at=draw(st.one_of(st.none(), times)),
        policy=draw(policies) if kind == RelationKind.LENDS else None,
    )


things = st.builds(
    Thing,
    id=st.just("drill"),
    name=st.just("Drill"),
    visibility=st.sampled_from(Visibility),
    watcher_share=st.sampled_from(Share),
    retired=st.booleans(),
)
others = st.sampled_from(["a", "b", "c"])


@settings(max_examples=400)
@given(
    thing=things,
    relations=st.lists(relations_of(others), max_size=12),
    role=st.sampled_from(Role),
    tier=st.integers(0, 3),
)
def test_unrelated_resident_of_any_role_gets_nothing_on_a_private_thing(
    thing: Thing, relations: list[Relation], role: Role, tier: int
) -> None:
    private = Thing(thing.id, thing.name, visibility=Visibility.PRIVATE, watcher_share=thing.watcher_share,
                    retired=thing.retired)  # fmt: skip
    viewer = Resident("u", "Quiet Fox", role=role)
    assert allowed_actions(viewer, private, relations, NOW, trust_tier=tier) == frozenset()
    assert allowed_actions(None, private, relations, NOW) == frozenset()


@st.composite
def inactive_relations_of_u(draw: st.DrawFn) -> Relation:
    relation = draw(relations_of(st.just("u")))
    how = draw(st.sampled_from(["expired", "revoked", "future"]))
    if how == "expired":
        return replace(relation, valid_until=draw(st.floats(NOW - 10 * DAY, NOW)))
    if how == "revoked":
        return replace(relation, revoked_at=draw(st.floats(NOW - 10 * DAY, NOW)))
    return replace(relation, valid_from=draw(st.floats(NOW + 1, NOW + 10 * DAY)))


@settings(max_examples=400)
@given(
    thing=things,
    relations=st.lists(relations_of(others), max_size=8),
    lapsed=st.lists(inactive_relations_of_u(), min_size=1, max_size=5),
    role=st.sampled_from(Role),
    tier=st.integers(0, 3),
)
def test_revoked_expired_or_future_relations_grant_nothing(
    thing: Thing, relations: list[Relation], lapsed: list[Relation], role: Role, tier: int
) -> None:
    viewer = Resident("u", "Quiet Fox", role=role)
    without = allowed_actions(viewer, thing, relations, NOW, trust_tier=tier)
    with_lapsed = allowed_actions(viewer, thing, relations + lapsed, NOW, trust_tier=tier)
    assert with_lapsed == without


@settings(max_examples=200)
@given(thing=things, relations=st.lists(relations_of(st.sampled_from(RESIDENT_IDS)), max_size=12))
def test_erased_resident_may_do_nothing_whatever_relations_remain(
    thing: Thing, relations: list[Relation]
) -> None:
    assert allowed_actions(Resident("u", "Gone", erased=True), thing, relations, NOW) == frozenset()
