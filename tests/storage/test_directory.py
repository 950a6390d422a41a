"""The directory (people, things, relations, loans, audit) against a real SQLite file and real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.domain.livestate import ScanRecord, ThingState
from hub.domain.model import (
    AuditEntry,
    Contact,
    LendPolicy,
    Loan,
    LoanState,
    Location,
    Relation,
    RelationKind,
    Role,
    Share,
    Thing,
    Visibility,
    WatchSettings,
)
from hub.storage.directory import Directory, DirectoryError, Maintenance
from hub.storage.store import Store

T0 = 1_750_000_000.0
DAY = 24 * 3600.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    s = Store(url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def d(store: Store) -> Directory:
    return Directory(store)


@pytest.fixture
def admin(d: Directory) -> str:
    return d.bootstrap_admin("root", now=T0).id


def audit_count(store: Store) -> int:
    with store._engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM audit")).scalar_one())


def refused(reason: str) -> pytest.RaisesExc[DirectoryError]:
    return pytest.raises(DirectoryError, check=lambda e: e.reason == reason)


def drill(d: Directory, owner: str, now: float = T0) -> Thing:
    return d.create_thing(Thing("", "drill", kind="tool"), owner=owner, actor=owner, now=now)


# -- residents ---------------------------------------------------------------------------------------


def test_a_resident_round_trips_with_contacts_in_order(d: Directory, admin: str) -> None:
    contacts = (Contact("email", "ana@example.org"), Contact("phone", "+49 30 1234"))
    made = d.add_resident(
        "ana_k", role=Role.STEWARD, real_name="Ana K.", contacts=contacts, actor=admin, now=T0 + 1
    )

    assert d.resident(made.id) == made
    assert (made.pseudonym, made.role, made.real_name, made.contacts) == (
        "ana_k",
        Role.STEWARD,
        "Ana K.",
        contacts,
    )
    assert made.joined_at == T0 + 1 and not made.erased
    assert d.resident_by_pseudonym("ANA_K") == made
    assert [r.pseudonym for r in d.residents()] == ["root", "ana_k"]
    assert d.resident("nobody") is None


def test_pseudonyms_are_unique_case_insensitively(d: Directory, admin: str) -> None:
    d.add_resident("Bo.Li", actor=admin, now=T0)

    with refused("pseudonym_taken") as info:
        d.add_resident("bo.li", actor=admin, now=T0)
    assert "'bo.li' is taken" in str(info.value)


@pytest.mark.parametrize("bad", ["x", "a" * 33, "has space", "emoji🙂", "semi;colon", "former-neighbor-9"])
def test_a_malformed_or_reserved_pseudonym_is_refused_with_the_rule(d: Directory, bad: str) -> None:
    with refused("bad_pseudonym") as info:
        d.add_resident(bad, actor=None, now=T0)
    assert "2 to 32 letters" in str(info.value) or "reserved" in str(info.value)


def test_update_contacts_replaces_them_and_the_audit_names_only_the_kinds(d: Directory, admin: str) -> None:
    r = d.add_resident("cleo", contacts=[Contact("email", "old@example.org")], actor=admin, now=T0)

    updated = d.update_contacts(
        r.id, "Cleo P.", [Contact("matrix", "@cleo:example.org")], actor=r.id, now=T0 + 5
    )

    assert d.resident(r.id) == updated
    assert updated.contacts == (Contact("matrix", "@cleo:example.org"),) and updated.real_name == "Cleo P."
    [entry] = d.audit(subject=r.id, since=T0 + 5)
    assert entry == AuditEntry(
        T0 + 5, r.id, "resident.contacts", None, r.id, {"real_name": "set", "contacts": "matrix"}
    )


def test_set_role_changes_it_but_never_demotes_the_last_admin(d: Directory, admin: str) -> None:
    other = d.add_resident("dora", actor=admin, now=T0)

    with refused("last_admin"):
        d.set_role(admin, Role.RESIDENT, actor=admin, now=T0 + 1)
    d.set_role(other.id, Role.ADMIN, actor=admin, now=T0 + 2)
    d.set_role(admin, Role.RESIDENT, actor=other.id, now=T0 + 3)

    assert d.resident(admin).role is Role.RESIDENT  # type: ignore[union-attr]
    assert d.audit(subject=admin)[-1].detail == {"role": "resident", "was": "admin"}


def test_unknown_resident_is_named_in_the_error(d: Directory) -> None:
    with refused("unknown_resident") as info:
        d.set_role("ghost", Role.ADMIN, actor=None, now=T0)
    assert "ghost" in str(info.value)


# -- invites -----------------------------------------------------------------------------------------


def test_bootstrap_admin_only_while_no_admin_exists(d: Directory) -> None:
    first = d.bootstrap_admin("root", now=T0)

    assert first.role is Role.ADMIN
    with refused("admin_exists"):
        d.bootstrap_admin("second", now=T0 + 1)


def test_an_invite_is_readable_single_use_and_gives_its_role(d: Directory, admin: str) -> None:
    code = d.create_invite(created_by=admin, role=Role.STEWARD, now=T0)
    assert len(code) == 10 and code.isalnum() and code.isupper()
    assert not set(code) & set("0O1IL")

    # typed in lowercase with a dash: still the same code
    joined = d.redeem_invite(f"{code[:5].lower()}-{code[5:]}", "erin", now=T0 + 60, real_name="Erin")

    assert joined.role is Role.STEWARD and d.resident(joined.id) == joined
    with refused("invite_used"):
        d.redeem_invite(code, "frank", now=T0 + 61)
    assert d.resident_by_pseudonym("frank") is None
    assert d.audit(actor=joined.id)[0].detail == {"pseudonym": "erin", "role": "steward", "invited_by": admin}


def test_an_invite_expires_after_its_ttl(d: Directory, admin: str) -> None:
    code = d.create_invite(created_by=admin, ttl_s=3600, now=T0)

    with refused("invite_expired"):
        d.redeem_invite(code, "late", now=T0 + 3600)
    with refused("unknown_invite"):
        d.redeem_invite("ABCDEFGHJK", "guess", now=T0)
    assert d.redeem_invite(d.create_invite(created_by=admin, ttl_s=3600, now=T0), "early", now=T0 + 3599)


def test_a_failed_join_leaves_the_invite_usable(d: Directory, admin: str) -> None:
    code = d.create_invite(created_by=admin, now=T0)

    with refused("pseudonym_taken"):
        d.redeem_invite(code, "ROOT", now=T0 + 1)

    assert d.redeem_invite(code, "gil", now=T0 + 2).pseudonym == "gil"


def test_only_admins_invite_stewards_and_admins(d: Directory, admin: str) -> None:
    resident = d.add_resident("hana", actor=admin, now=T0)

    assert d.create_invite(created_by=resident.id, now=T0)
    for role in (Role.STEWARD, Role.ADMIN):
        with refused("not_admin") as info:
            d.create_invite(created_by=resident.id, role=role, now=T0)
        assert f"only an admin may invite a {role.value}" in str(info.value)


# -- cards and tags ----------------------------------------------------------------------------------


def test_cards_round_trip_and_tags_are_normalised(d: Directory, admin: str) -> None:
    d.add_card(admin, " c2994a1b ", actor=admin, now=T0)
    d.add_card(admin, "W26:12345", actor=admin, now=T0 + 1)

    assert d.cards_of(admin) == ["C2994A1B", "W26:12345"]
    assert d.resident_by_card("c2994a1b") == admin
    assert d.resident_by_card("FFFF") is None


def test_a_tag_cannot_be_both_a_card_and_a_things_tag(d: Directory, admin: str) -> None:
    t = drill(d, admin)
    d.add_card(admin, "01000734E0", actor=admin, now=T0)
    d.attach_tag(t.id, "AA11", actor=admin, now=T0)
    other = d.add_resident("ivan", actor=admin, now=T0)

    with refused("tag_in_use") as info:
        d.attach_tag(t.id, "01000734e0", actor=admin, now=T0)
    assert "already a resident's card" in str(info.value)
    with refused("tag_in_use") as info:
        d.add_card(other.id, "AA11", actor=admin, now=T0)
    assert f"already attached to thing {t.id}" in str(info.value)
    with refused("tag_in_use"):
        d.add_card(other.id, "01000734E0", actor=admin, now=T0)
    assert d.thing_by_tag("aa11") == t.id and d.thing_by_tag("01000734E0") is None


def test_a_card_removed_no_longer_identifies_anyone(d: Directory, admin: str) -> None:
    d.add_card(admin, "C2994A1B", actor=admin, now=T0)
    d.remove_card(admin, "C2994A1B", actor=admin, now=T0 + 1)

    assert d.resident_by_card("C2994A1B") is None
    with refused("unknown_card"):
        d.remove_card(admin, "C2994A1B", actor=admin, now=T0 + 2)


# -- things ------------------------------------------------------------------------------------------


def test_a_thing_round_trips_with_location_tags_and_derived_state(d: Directory, admin: str) -> None:
    made = d.create_thing(
        Thing(
            "flood-7",
            "basement flood sensor",
            visibility=Visibility.PUBLIC,
            watcher_share=Share.DERIVED,
            location=Location(52.52, 13.405, None),
            tags=("qr:flood-7",),
            derived_from=("water_leak",),
        ),
        owner=admin,
        actor=admin,
        now=T0,
    )

    assert d.thing("flood-7") == made
    assert made.created_at == T0 and made.tags == ("qr:flood-7",) and made.location == Location(52.52, 13.405)
    assert d.things() == [made]
    assert d.thing("nothing") is None


def test_creating_with_an_owner_grants_owns_in_the_same_step(d: Directory, admin: str) -> None:
    t = drill(d, admin)

    [owns] = d.relations_of_thing(t.id, now=T0)
    assert (owns.kind, owns.resident, owns.granted_by, owns.valid_from) == (
        RelationKind.OWNS,
        admin,
        admin,
        T0,
    )
    [entry] = d.audit(thing=t.id)
    assert entry.action == "thing.create" and entry.detail["relation"] == owns.id


def test_an_id_already_registered_is_refused(d: Directory, admin: str) -> None:
    d.create_thing(Thing("bike", "cargo bike"), owner=None, actor=admin, now=T0)

    with refused("duplicate_thing"):
        d.create_thing(Thing("bike", "another bike"), owner=None, actor=admin, now=T0)


def test_a_device_heard_first_is_private_until_claimed_then_keeps_its_ingest_data(
    d: Directory, store: Store, admin: str
) -> None:
    store.apply([ThingState("washer", "zigbee2mqtt", T0 - 100, T0 - 10, True, {"power": 3.5})], [])

    unclaimed = d.thing("washer")
    assert unclaimed is not None
    assert (unclaimed.visibility, unclaimed.watcher_share, unclaimed.created_at) == (
        Visibility.PRIVATE,
        Share.NONE,
        T0 - 100,
    )

    claimed = d.create_thing(
        Thing("washer", "basement washer", kind="device", visibility=Visibility.NEIGHBORS),
        owner=admin,
        actor=admin,
        now=T0,
    )

    assert d.thing("washer") == claimed and claimed.visibility is Visibility.NEIGHBORS
    state = store.thing("washer")
    assert state is not None and (state.source, state.first_seen, state.values) == (
        "zigbee2mqtt",
        T0 - 100,
        {"power": 3.5},
    )
    # ingest keeps writing without touching what residents said
    store.apply([ThingState("washer", "zigbee2mqtt", T0, T0 + 10, True, {"power": 800.0})], [])
    assert d.thing("washer") == claimed


def test_update_thing_writes_metadata_and_audits_changes_without_coordinates(
    d: Directory, admin: str
) -> None:
    t = d.create_thing(Thing("", "drill", location=Location(52.5, 13.4)), owner=admin, actor=admin, now=T0)

    updated = d.update_thing(
        Thing(t.id, "big drill", kind="tool", visibility=Visibility.PRIVATE, location=Location(52.51, 13.41)),
        actor=admin,
        now=T0 + 10,
    )

    assert d.thing(t.id) == updated and updated.created_at == T0 and updated.name == "big drill"
    entry = d.audit(thing=t.id)[-1]
    assert entry.detail == {
        "name": "big drill",
        "kind": "tool",
        "visibility": "private",
        "location": "changed",
    }
    assert "52.51" not in str(d.audit(thing=t.id))


def test_retire_marks_the_thing_and_keeps_its_relations(d: Directory, admin: str) -> None:
    t = drill(d, admin)
    d.retire_thing(t.id, actor=admin, now=T0 + 1)

    assert d.thing(t.id).retired  # type: ignore[union-attr]
    assert len(d.relations_of_thing(t.id, now=T0 + 2)) == 1
    with refused("unknown_thing"):
        d.retire_thing("nope", actor=admin, now=T0)


# -- relations ---------------------------------------------------------------------------------------


def test_relations_round_trip_with_policy_and_watch_settings(d: Directory, admin: str) -> None:
    t = drill(d, admin)
    watcher = d.add_resident("jo", actor=admin, now=T0)
    policy = LendPolicy(loan_days=3, who="list", approved=(watcher.id,), needs_approval=True, buffer_hours=2)
    watch = WatchSettings(
        thresholds=(("noise", None, 70.0), ("temperature", 5.0, 30.0)), quiet_start=22, quiet_end=7
    )

    lends = d.grant(Relation("", admin, t.id, RelationKind.LENDS, policy=policy), actor=admin, now=T0 + 1)
    watches = d.grant(
        Relation("w1", watcher.id, t.id, RelationKind.WATCHES, watch=watch, valid_until=T0 + DAY),
        actor=admin,
        now=T0 + 2,
    )

    assert lends.id and lends.valid_from == T0 + 1
    assert d.relation(lends.id) == lends and d.relation("w1") == watches
    assert d.relations_of_resident(watcher.id, now=T0 + 3) == [watches]
    assert d.relations_of_resident(watcher.id, now=T0 + DAY) == []
    assert d.relations_of_resident(watcher.id, now=T0 + DAY, include_inactive=True) == [watches]
    assert [r.kind for r in d.relations_of_thing(t.id, now=T0 + 3, kinds=[RelationKind.LENDS])] == ["lends"]


def test_revoke_ends_a_relation_and_keeps_the_row(d: Directory, admin: str) -> None:
    t = drill(d, admin)
    other = d.add_resident("kim", actor=admin, now=T0)
    r = d.grant(Relation("", other.id, t.id, RelationKind.STEWARDS), actor=admin, now=T0)

    d.revoke(r.id, actor=admin, now=T0 + 5)

    assert r.granted_by == admin  # the actor, when the relation names no granter
    assert [x.id for x in d.relations_of_resident(other.id, now=T0 + 4)] == [r.id]
    assert d.relations_of_resident(other.id, now=T0 + 5) == []
    assert d.relation(r.id).revoked_at == T0 + 5  # type: ignore[union-attr]
    with refused("already_revoked"):
        d.revoke(r.id, actor=admin, now=T0 + 6)
    with refused("unknown_relation"):
        d.revoke("missing", actor=admin, now=T0)


def test_a_second_active_relation_of_the_same_kind_is_refused(d: Directory, admin: str) -> None:
    t = drill(d, admin)

    with refused("duplicate_relation"):
        d.grant(Relation("", admin, t.id, RelationKind.OWNS), actor=admin, now=T0 + 1)


def test_grant_to_an_unknown_thing_or_resident_is_refused(d: Directory, admin: str) -> None:
    with refused("unknown_thing"):
        d.grant(Relation("", admin, "nothing", RelationKind.WATCHES), actor=admin, now=T0)
    t = drill(d, admin)
    with refused("unknown_resident"):
        d.grant(Relation("", "nobody", t.id, RelationKind.WATCHES), actor=admin, now=T0)


# -- loans -------------------------------------------------------------------------------------------


def lend(d: Directory, admin: str) -> tuple[Thing, str, Loan]:
    t = drill(d, admin)
    borrower = d.add_resident("lea", actor=admin, now=T0).id
    loan = d.save_loan(
        Loan("", t.id, borrower, admin, LoanState.RESERVED, T0 + DAY, T0 + 3 * DAY, requested_at=T0),
        actor=borrower,
        now=T0,
        action="loan.request",
    )
    return t, borrower, loan


def test_a_loan_round_trips_and_filters(d: Directory, admin: str) -> None:
    t, borrower, loan = lend(d, admin)

    assert loan.id and d.loan(loan.id) == loan
    assert d.loans(thing=t.id) == [loan]
    assert d.loans(borrower=borrower, states=[LoanState.RESERVED, LoanState.REQUESTED]) == [loan]
    assert d.loans(states=[LoanState.OUT]) == []
    assert d.loans(borrower=admin) == []


def test_check_out_grants_borrows_and_return_ends_it(d: Directory, admin: str) -> None:
    t, borrower, loan = lend(d, admin)

    out = d.save_loan(
        Loan(**{**_fields(loan), "state": LoanState.OUT, "out_at": T0 + DAY, "out_reader": "shed"}),
        actor=borrower,
        now=T0 + DAY,
        action="loan.out",
    )
    [borrows] = d.relations_of_thing(t.id, now=T0 + DAY, kinds=[RelationKind.BORROWS])
    assert (borrows.resident, borrows.loan, borrows.valid_from, borrows.granted_by) == (
        borrower,
        loan.id,
        T0 + DAY,
        None,
    )

    # overdue: still held, no second relation
    d.save_loan(
        Loan(**{**_fields(out), "state": LoanState.OVERDUE}),
        actor=None,
        now=T0 + 4 * DAY,
        action="loan.overdue",
    )
    assert (
        len(d.relations_of_thing(t.id, now=T0 + 4 * DAY, include_inactive=True, kinds=[RelationKind.BORROWS]))
        == 1
    )

    d.save_loan(
        Loan(**{**_fields(out), "state": LoanState.RETURNED, "returned_at": T0 + 5 * DAY}),
        actor=borrower,
        now=T0 + 5 * DAY,
        action="loan.return",
    )
    assert d.relations_of_thing(t.id, now=T0 + 5 * DAY, kinds=[RelationKind.BORROWS]) == []
    assert d.relation(borrows.id).valid_until == T0 + 5 * DAY  # type: ignore[union-attr]
    assert [(e.action, e.detail["state"]) for e in d.audit(thing=t.id) if e.action.startswith("loan.")] == [
        ("loan.request", "reserved"),
        ("loan.out", "out"),
        ("loan.overdue", "overdue"),
        ("loan.return", "returned"),
    ]


def test_a_lost_loan_ends_the_borrows_relation_too(d: Directory, admin: str) -> None:
    t, borrower, loan = lend(d, admin)
    d.save_loan(
        Loan(**{**_fields(loan), "state": LoanState.OUT}), actor=borrower, now=T0 + DAY, action="loan.out"
    )

    d.save_loan(
        Loan(**{**_fields(loan), "state": LoanState.LOST, "damage": "left on the train"}),
        actor=borrower,
        now=T0 + 2 * DAY,
        action="loan.lost",
    )

    assert d.relations_of_thing(t.id, now=T0 + 2 * DAY, kinds=[RelationKind.BORROWS]) == []
    assert d.audit(thing=t.id)[-1].detail["damage"] == "left on the train"


def test_a_thing_out_on_one_loan_cannot_go_out_on_another_and_nothing_is_logged(
    d: Directory, store: Store, admin: str
) -> None:
    t, borrower, loan = lend(d, admin)
    d.save_loan(
        Loan(**{**_fields(loan), "state": LoanState.OUT}), actor=borrower, now=T0 + DAY, action="loan.out"
    )
    before = audit_count(store)

    second = Loan("", t.id, admin, admin, LoanState.OUT, T0 + DAY, T0 + 2 * DAY)
    with refused("already_out"):
        d.save_loan(second, actor=admin, now=T0 + DAY, action="loan.out")

    assert audit_count(store) == before
    assert [x.id for x in d.loans(thing=t.id)] == [loan.id]
    assert [r.resident for r in d.relations_of_thing(t.id, now=T0 + DAY, kinds=[RelationKind.BORROWS])] == [
        borrower
    ]


def _fields(loan: Loan) -> dict[str, object]:
    return {name: getattr(loan, name) for name in Loan.__dataclass_fields__}


# -- waitlist, notices, vouches, maintenance ---------------------------------------------------------


def test_waitlist_is_first_come_first_served(d: Directory, admin: str) -> None:
    t = drill(d, admin)
    a = d.add_resident("mia", actor=admin, now=T0).id
    b = d.add_resident("ned", actor=admin, now=T0).id
    d.join_waitlist(t.id, b, actor=b, now=T0 + 2)
    d.join_waitlist(t.id, a, actor=a, now=T0 + 1)

    assert d.waitlist(t.id) == [(a, T0 + 1), (b, T0 + 2)]
    with refused("already_waiting"):
        d.join_waitlist(t.id, a, actor=a, now=T0 + 3)
    d.leave_waitlist(t.id, a, actor=a, now=T0 + 4)
    assert d.waitlist(t.id) == [(b, T0 + 2)]
    with refused("not_waiting"):
        d.leave_waitlist(t.id, a, actor=a, now=T0 + 5)


def test_a_notice_is_recorded_once_and_survives_a_new_directory(
    d: Directory, store: Store, admin: str
) -> None:
    _, _, loan = lend(d, admin)

    assert d.record_notice(loan.id, "reminder", now=T0) is True
    assert d.record_notice(loan.id, "reminder", now=T0 + 1) is False
    d.record_notice(loan.id, "overdue", now=T0 + 2)

    assert Directory(store).sent_notices() == {(loan.id, "reminder"), (loan.id, "overdue")}
    with refused("unknown_loan"):
        d.record_notice("nope", "reminder", now=T0)


def test_vouches_once_per_pair_never_for_oneself(d: Directory, admin: str) -> None:
    a = d.add_resident("olga", actor=admin, now=T0).id
    b = d.add_resident("piet", actor=admin, now=T0).id
    d.vouch(b, a, now=T0 + 2)
    d.vouch(admin, a, now=T0 + 1)

    assert d.vouchers_of(a) == [admin, b]
    with refused("already_vouched"):
        d.vouch(b, a, now=T0 + 3)
    with refused("self_vouch"):
        d.vouch(a, a, now=T0)
    d.withdraw_vouch(b, a, now=T0 + 4)
    assert d.vouchers_of(a) == [admin]


def test_maintenance_interval_and_last_done(d: Directory, admin: str) -> None:
    t = drill(d, admin)
    assert d.maintenance(t.id) is None

    d.set_maintenance(t.id, 90, 50, actor=admin, now=T0)
    done = d.maintenance_done(t.id, 12.5, actor=admin, now=T0 + DAY)

    assert done == Maintenance(t.id, 90.0, 50.0, T0 + DAY, 12.5) == d.maintenance(t.id)
    assert d.set_maintenance(t.id, None, 40, actor=admin, now=T0 + 2 * DAY) == Maintenance(
        t.id, None, 40.0, T0 + DAY, 12.5
    )
    with refused("bad_interval"):
        d.set_maintenance(t.id, 0, None, actor=admin, now=T0)


# -- audit -------------------------------------------------------------------------------------------


def test_every_mutation_writes_exactly_one_audit_row(d: Directory, store: Store, admin: str) -> None:
    r = d.add_resident("quin", actor=admin, now=T0)
    t = drill(d, admin)
    _, _, loan = lend(d, admin)
    # loan: its thing, its borrower; notices are bookkeeping, not audited
    steps = [
        lambda: d.set_role(r.id, Role.STEWARD, actor=admin, now=T0),
        lambda: d.update_contacts(r.id, None, [Contact("email", "q@example.org")], actor=r.id, now=T0),
        lambda: d.create_invite(created_by=admin, now=T0),
        lambda: d.add_card(r.id, "AB12", actor=admin, now=T0),
        lambda: d.remove_card(r.id, "AB12", actor=admin, now=T0),
        lambda: d.update_thing(Thing(t.id, "drill 2"), actor=admin, now=T0),
        lambda: d.attach_tag(t.id, "CD34", actor=admin, now=T0),
        lambda: d.detach_tag(t.id, "CD34", actor=admin, now=T0),
        lambda: d.grant(Relation("rel", r.id, t.id, RelationKind.WATCHES), actor=admin, now=T0),
        lambda: d.revoke("rel", actor=admin, now=T0 + 1),
        lambda: d.save_loan(
            Loan(**{**_fields(loan), "state": LoanState.OUT}), actor=None, now=T0, action="loan.out"
        ),
        lambda: d.join_waitlist(t.id, r.id, actor=r.id, now=T0),
        lambda: d.leave_waitlist(t.id, r.id, actor=r.id, now=T0),
        lambda: d.vouch(admin, r.id, now=T0),
        lambda: d.withdraw_vouch(admin, r.id, now=T0),
        lambda: d.set_maintenance(t.id, 30, None, actor=admin, now=T0),
        lambda: d.maintenance_done(t.id, None, actor=admin, now=T0),
        lambda: d.retire_thing(t.id, actor=admin, now=T0),
        lambda: d.append_audit(AuditEntry(T0, r.id, "thing.history.view", t.id)),
        lambda: d.erase_resident(r.id, actor=r.id, now=T0 + 2),
    ]
    for step in steps:
        before = audit_count(store)
        step()
        assert audit_count(store) == before + 1


def test_a_mutation_whose_audit_row_fails_is_not_stored(d: Directory, store: Store, admin: str) -> None:
    with store._engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.execute(
                sa.text("CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'no'); END")
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION no_audit() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'no'; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER no_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION no_audit()"
                )
            )

    with pytest.raises(sa.exc.DBAPIError):
        d.add_resident("rosa", actor=admin, now=T0)
    with pytest.raises(sa.exc.DBAPIError):
        d.create_thing(Thing("saw", "saw"), owner=admin, actor=admin, now=T0)

    assert d.resident_by_pseudonym("rosa") is None
    assert d.thing("saw") is None
    assert d.relations_of_resident(admin, now=T0, include_inactive=True) == []


def test_a_refused_mutation_leaves_no_trace(d: Directory, store: Store, admin: str) -> None:
    t = drill(d, admin)
    d.add_card(admin, "EE01", actor=admin, now=T0)
    before = audit_count(store)

    # the thing row and the first tag are written before the conflict on the second is found
    with refused("tag_in_use"):
        d.create_thing(Thing("saw", "saw", tags=("FF02", "EE01")), owner=admin, actor=admin, now=T0)

    assert audit_count(store) == before
    assert d.thing("saw") is None and d.thing_by_tag("FF02") is None
    assert [r.thing for r in d.relations_of_resident(admin, now=T0)] == [t.id]


def test_audit_filters_and_keeps_the_newest_in_time_order(d: Directory, admin: str) -> None:
    t = drill(d, admin, now=T0)
    for i in range(5):
        d.update_thing(Thing(t.id, f"drill {i}"), actor=admin, now=T0 + 10 + i)

    newest = d.audit(thing=t.id, limit=3)
    assert [e.detail["name"] for e in newest] == ["drill 2", "drill 3", "drill 4"]
    assert [e.time for e in d.audit(thing=t.id, since=T0 + 13)] == [T0 + 13, T0 + 14]
    assert {e.action for e in d.audit(actor=admin)} >= {"thing.create", "thing.update"}


def test_a_resident_reads_entries_about_their_things_only_while_they_held_them(
    d: Directory, admin: str
) -> None:
    owner = d.add_resident("sam", actor=admin, now=T0).id
    stranger = d.add_resident("tia", actor=admin, now=T0).id
    t = drill(d, owner, now=T0 + 1)
    [owns] = d.relations_of_thing(t.id, now=T0 + 1)
    d.update_thing(Thing(t.id, "while owned"), actor=admin, now=T0 + 2)
    d.append_audit(AuditEntry(T0 + 3, stranger, "thing.history.view", t.id))
    d.revoke(owns.id, actor=admin, now=T0 + 4)
    d.update_thing(Thing(t.id, "after"), actor=admin, now=T0 + 5)

    mine = [(e.time, e.action) for e in d.audit_for_resident(owner)]
    assert (T0 + 2, "thing.update") in mine and (T0 + 3, "thing.history.view") in mine
    assert (T0 + 4, "relation.revoke") in mine  # about them (the subject)
    assert (T0 + 5, "thing.update") not in mine
    theirs = [(e.time, e.action) for e in d.audit_for_resident(stranger)]
    assert (T0 + 3, "thing.history.view") in theirs and (T0 + 2, "thing.update") not in theirs


# -- erase -------------------------------------------------------------------------------------------


def every_text_value(store: Store) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text cell in every table of the database."""
    found = []
    inspector = sa.inspect(store._engine)
    with store._engine.connect() as conn:
        for table in inspector.get_table_names():
            for column in inspector.get_columns(table):
                if isinstance(column["type"], sa.String):
                    rows = conn.execute(sa.text(f'SELECT "{column["name"]}" FROM "{table}"')).scalars()
                    found += [(table, column["name"], v) for v in rows if v is not None]
    return found


def test_erase_removes_every_trace_of_personal_data_and_keeps_loan_history(
    d: Directory, store: Store, admin: str
) -> None:
    personal = ["Zoe.Q", "Zoe Quaresma", "zoe@example.org", "+49 170 555"]
    code = d.create_invite(created_by=admin, now=T0)
    zoe = d.redeem_invite(
        code,
        "Zoe.Q",
        now=T0,
        real_name="Zoe Quaresma",
        contacts=[Contact("email", "zoe@example.org"), Contact("phone", "+49 170 555")],
    )
    d.add_card(zoe.id, "C0FFEE01", actor=admin, now=T0)
    store.apply([], [ScanRecord("shed", "native", "C0FFEE01", T0 + 1)])
    t = drill(d, admin)
    watch = d.grant(Relation("", zoe.id, t.id, RelationKind.WATCHES), actor=admin, now=T0)
    loan = d.save_loan(
        Loan("", t.id, zoe.id, admin, LoanState.OUT, T0, T0 + DAY, out_at=T0),
        actor=zoe.id,
        now=T0,
        action="loan.out",
    )
    d.save_loan(
        Loan(**{**_fields(loan), "state": LoanState.RETURNED}), actor=zoe.id, now=T0 + 1, action="loan.return"
    )
    d.vouch(zoe.id, admin, now=T0)
    d.join_waitlist(t.id, zoe.id, actor=zoe.id, now=T0)
    d.append_audit(
        AuditEntry(T0, admin, "note", t.id, zoe.id, {"text": "lent to zoe.q (Zoe Quaresma, zoe@example.org)"})
    )
    assert any(p in v for p in personal for _, _, v in every_text_value(store))  # the scan can find them

    erased = d.erase_resident(zoe.id, actor=admin, now=T0 + 2)

    assert erased == d.resident(zoe.id)
    assert erased.pseudonym == "former-neighbor-1" and erased.erased and erased.real_name is None
    assert erased.contacts == () and d.cards_of(zoe.id) == [] and d.resident_by_card("C0FFEE01") is None
    leaks = [
        (table, col, v)
        for table, col, v in every_text_value(store)
        for p in personal
        if p.lower() in v.lower()
    ]
    assert leaks == []
    assert not any("C0FFEE01" in v for _, _, v in every_text_value(store))
    # history stays: the loan, its borrows relation, the vouch, the audit rows (anonymised)
    assert [x.state for x in d.loans(borrower=zoe.id)] == [LoanState.RETURNED]
    assert len(d.relations_of_resident(zoe.id, now=T0, include_inactive=True)) == 2
    assert d.relation(watch.id).revoked_at == T0 + 2  # type: ignore[union-attr]
    assert d.vouchers_of(admin) == [zoe.id]
    assert d.waitlist(t.id) == []
    note = next(e for e in d.audit(thing=t.id) if e.action == "note")
    assert note.detail == {"text": "lent to former-neighbor-1 ([erased], [erased])"}
    assert store.recent_scans()[0].tag == "[erased]"


def test_erased_placeholders_are_numbered_and_the_old_pseudonym_is_free(d: Directory, admin: str) -> None:
    a = d.add_resident("uma", actor=admin, now=T0)
    b = d.add_resident("vic", actor=admin, now=T0)

    assert d.erase_resident(a.id, actor=admin, now=T0 + 1).pseudonym == "former-neighbor-1"
    assert d.erase_resident(b.id, actor=admin, now=T0 + 2).pseudonym == "former-neighbor-2"
    assert d.add_resident("uma", actor=admin, now=T0 + 3).id != a.id
    with refused("erased_resident"):
        d.update_contacts(a.id, "Uma", [], actor=a.id, now=T0 + 4)


def test_erase_keeps_a_borrows_relation_while_the_loan_is_out(d: Directory, admin: str) -> None:
    t, borrower, loan = lend(d, admin)
    d.save_loan(
        Loan(**{**_fields(loan), "state": LoanState.OUT}), actor=borrower, now=T0 + DAY, action="loan.out"
    )

    d.erase_resident(borrower, actor=borrower, now=T0 + DAY + 1)

    [held] = d.relations_of_thing(t.id, now=T0 + DAY + 2, kinds=[RelationKind.BORROWS])
    assert held.resident == borrower and held.loan == loan.id
