"""``hub admin|resident|thing|relation|audit``: the console for people, things and relations.

Every test runs ``hub.cli.main`` in-process against a real store (a SQLite file in tmp_path; the full
scenario also on PostgreSQL) and checks what was printed, the exit code and what the store then holds.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from console import Console

from hub.cli import main
from hub.domain.model import Loan, LoanState, Location, RelationKind, Role, Share, Visibility
from hub.domain.privacy import coarse_location
from hub.storage import store as tables
from hub.storage.directory import Directory
from hub.storage.store import Store

# personal data of the resident who is erased: none of it may survive the erasure
PSEUDONYM = "wren42"
REAL_NAME = "Jenny Wren"
EMAIL = "jenny@wren.example"
PHONE = "+49301234567"
DRILL_TAG = "04A1B2C3"
CARD = "45C52583"
DAY = 86400.0


class Hub(Console):
    """``hub ... --config FILE`` in this process, with the helpers these tests share."""

    def invite(self, inviter: str, *extra: str) -> str:
        return self.ok("resident", "invite", "--as", inviter, *extra).strip()


def write_config(tmp_path: Path, storage: str) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(f"timeseries:\n  kind: embedded\nstorage:\n{storage}", encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def hub(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Hub:
    return Hub(write_config(tmp_path, f"  path: {data_dir}\n"), capsys)


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    """The same SQLite store the commands write, opened after they ran."""
    s = Store.open(data_dir)
    yield s
    s.close()


def neighborhood(hub: Hub) -> None:
    """root (admin), wren42 (with real name and contacts) and bob, by invite."""
    hub.ok("admin", "create", "root")
    code = hub.invite("root")
    hub.ok("resident", "join", code, PSEUDONYM, "--name", REAL_NAME, "--contact", f"email:{EMAIL}",
           f"phone:{PHONE}")  # fmt: skip
    hub.ok("resident", "join", hub.invite("root"), "bob")


# -- the full scenario, on SQLite and on PostgreSQL --------------------------------------------------------


def run_scenario(hub: Hub) -> str:
    """admin → invite → join ×2 → thing with a tag → lend → watch → erase; returns the audit listing."""
    neighborhood(hub)
    out = hub.ok(
        "thing", "add", "drill-1", "--name", "Cordless drill", "--kind", "tool", "--owner", PSEUDONYM,
        "--place", "tool shed, house 12", "--tag", "04a1b2c3",
    )  # fmt: skip
    assert "owner: wren42" in out and DRILL_TAG in out
    out = hub.ok("thing", "lend", "drill-1", "--as", PSEUDONYM, "--days", "3", "--buffer-hours", "2")
    assert "wren42 now lends drill-1: 3 days, any resident, automatic, 2 h between loans" in out
    hub.ok("relation", "grant", "bob", "watches", "drill-1", "--as", "bob")
    hub.ok("resident", "card", "bob", CARD)
    before = hub.ok("audit")
    assert PSEUDONYM in before  # the log named them while they were a neighbor

    out = hub.ok("resident", "erase", PSEUDONYM, "--yes")
    assert "erased wren42: now former-neighbor-1" in out
    assert "removed: real name, 2 contacts" in out and "ended 2 relations" in out
    return hub.ok("audit")


def check_scenario_store(d: Directory, audit: str) -> None:
    now = time.time()
    erased = d.resident_by_pseudonym("former-neighbor-1")
    assert erased is not None and erased.erased
    assert erased.real_name is None and erased.contacts == ()
    assert d.resident_by_pseudonym(PSEUDONYM) is None
    drill = d.thing("drill-1")
    assert drill is not None and drill.tags == (DRILL_TAG,) and drill.kind == "tool"
    # the erased owner's owns and lends relations ended; bob still watches
    kinds = {(r.resident, r.kind) for r in d.relations_of_thing("drill-1", now=now)}
    bob = d.resident_by_pseudonym("bob")
    assert bob is not None and kinds == {(bob.id, RelationKind.WATCHES)}
    ended = d.relations_of_thing("drill-1", include_inactive=True, now=now)
    lends = next(r for r in ended if r.kind is RelationKind.LENDS)
    assert lends.resident == erased.id and lends.policy is not None
    assert (lends.policy.loan_days, lends.policy.buffer_hours, lends.policy.who) == (3.0, 2.0, "any")
    assert d.resident_by_card(CARD) == bob.id

    # the anonymised history: every step is there, under the placeholder
    lines = audit.splitlines()
    assert any("former-neighbor-1  resident.join" in line for line in lines)
    assert any("thing.create  drill-1" in line and "owner=former-neighbor-1" in line for line in lines)
    assert any(
        "former-neighbor-1  relation.grant  drill-1" in line and "kind=lends" in line for line in lines
    )
    assert any("bob  relation.grant  drill-1" in line and "kind=watches" in line for line in lines)
    assert any("resident.erase" in line and "about=former-neighbor-1" in line for line in lines)
    for secret in (PSEUDONYM, REAL_NAME, EMAIL, PHONE):
        assert secret not in audit


def test_full_scenario_on_sqlite_leaves_no_personal_data_in_the_file(
    hub: Hub, data_dir: Path, store: Store
) -> None:
    audit = run_scenario(hub)
    check_scenario_store(Directory(store), audit)
    store.close()
    files = sorted(data_dir.glob("hub.sqlite*"))
    assert files
    for path in files:
        text = path.read_bytes().lower()
        for secret in (PSEUDONYM, REAL_NAME, EMAIL, PHONE):
            assert secret.lower().encode() not in text, f"{secret!r} is still in {path.name}"


def test_full_scenario_on_postgresql(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = Hub(write_config(tmp_path, f"  url: {postgres_url}\n"), capsys)
    audit = run_scenario(hub)
    s = Store(postgres_url)
    try:
        check_scenario_store(Directory(s), audit)
        with s._engine.connect() as conn:
            dump = repr([conn.execute(sa.select(t)).all() for t in tables.metadata.sorted_tables])
    finally:
        s.close()
    assert "former-neighbor-1" in dump
    for secret in (PSEUDONYM, REAL_NAME, EMAIL, PHONE):
        assert secret.lower() not in dump.lower()


# -- residents ---------------------------------------------------------------------------------------------


def test_admin_create_is_refused_once_an_admin_exists(hub: Hub, store: Store) -> None:
    hub.ok("admin", "create", "root")
    err = hub.fails("admin", "create", "usurper")
    assert "an admin already exists" in err
    assert [r.pseudonym for r in Directory(store).residents()] == ["root"]


def test_invite_prints_the_code_alone_and_join_uses_it_up(hub: Hub, store: Store) -> None:
    hub.ok("admin", "create", "root")
    code = hub.invite("root", "--role", "steward", "--ttl-days", "2")
    assert len(code) == 10 and code.isalnum()
    assert "welcome, ada: you joined as steward" in hub.ok("resident", "join", code, "ada")
    assert "already used" in hub.fails("resident", "join", code, "eve")
    ada = Directory(store).resident_by_pseudonym("ada")
    assert ada is not None and ada.role is Role.STEWARD


def test_only_an_admin_invites_stewards(hub: Hub) -> None:
    neighborhood(hub)
    assert "only an admin may invite a steward" in hub.fails(
        "resident", "invite", "--as", "bob", "--role", "steward"
    )


def test_join_refuses_a_contact_without_kind_and_uses_no_code(hub: Hub) -> None:
    hub.ok("admin", "create", "root")
    code = hub.invite("root")
    assert "kind:value" in hub.fails("resident", "join", code, "ada", "--contact", "ada@example.org")
    assert "welcome, ada" in hub.ok("resident", "join", code, "ada")


def test_resident_list_shows_pseudonyms_and_roles_never_contacts(hub: Hub) -> None:
    neighborhood(hub)
    text = hub.ok("resident", "list")
    rows = json.loads(hub.ok("resident", "list", "--json"))
    assert [(r["pseudonym"], r["role"]) for r in rows] == [
        ("root", "admin"),
        (PSEUDONYM, "resident"),
        ("bob", "resident"),
    ]
    for secret in (REAL_NAME, EMAIL, PHONE):
        assert secret not in text and secret not in json.dumps(rows)


def test_resident_show_explains_trust_from_verified_loans_and_vouches(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "saw", "--name", "Saw", "--kind", "tool", "--owner", "bob")
    d = Directory(store)
    wren, bob, root = (d.resident_by_pseudonym(p) for p in (PSEUDONYM, "bob", "root"))
    assert wren and bob and root
    t0 = time.time() - 30 * DAY
    for n, returned in enumerate((t0 + DAY, t0 + 5 * DAY)):  # due t0 + 2 days: one on time, one late
        loan = Loan(f"loan-{n}", "saw", wren.id, bob.id, LoanState.RETURNED, t0, t0 + 2 * DAY,
                    out_at=t0, returned_at=returned, out_reader="shed", return_reader="shed")  # fmt: skip
        d.save_loan(loan, actor=None, now=returned, action="loan.return")
    hub.ok("resident", "vouch", PSEUDONYM, "--as", "bob")
    hub.ok("resident", "vouch", PSEUDONYM, "--as", "root")
    out = hub.ok("resident", "show", PSEUDONYM)
    # score 1 + 2×2 − 2 = 3: known
    assert "trust:     known (tier 1): 1 on-time return, 1 late, vouched by 2" in out
    assert "already vouched" in hub.fails("resident", "vouch", PSEUDONYM, "--as", "bob")
    assert "yourself" in hub.fails("resident", "vouch", "bob", "--as", "bob")


def test_resident_show_gives_contact_values_only_to_the_resident_themself(hub: Hub) -> None:
    neighborhood(hub)
    other = hub.ok("resident", "show", PSEUDONYM, "--as", "bob")
    assert "contacts:  email, phone" in other and EMAIL not in other and REAL_NAME not in other
    own = hub.ok("resident", "show", PSEUDONYM, "--as", PSEUDONYM)
    assert f"email:{EMAIL}" in own and f"real name: {REAL_NAME}" in own


def test_role_change_needs_an_admin_and_keeps_the_last_admin(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    assert "only an admin may change roles" in hub.fails("resident", "role", "bob", "admin", "--as", "bob")
    assert "bob is now steward (was resident)" in hub.ok("resident", "role", "bob", "steward", "--as", "root")
    assert "only admin" in hub.fails("resident", "role", "root", "resident", "--as", "root")
    bob = Directory(store).resident_by_pseudonym("bob")
    assert bob is not None and bob.role is Role.STEWARD


def test_erase_refuses_without_yes_when_stdin_is_not_a_terminal(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    proc = subprocess.run(
        [sys.executable, "-m", "hub.cli", "resident", "erase", PSEUDONYM, "--config", str(hub.config)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr == f"hub: erasing {PSEUDONYM} cannot be undone: pass --yes to confirm\n"
    wren = Directory(store).resident_by_pseudonym(PSEUDONYM)
    assert wren is not None and not wren.erased and wren.real_name == REAL_NAME


def test_erase_clears_personal_data_from_the_wal_while_a_hub_holds_the_store_open(
    hub: Hub, data_dir: Path
) -> None:
    hub.ok("admin", "create", "root")
    # a running hub keeps a connection open, so SQLite never folds the log back and deletes it
    held = sqlite3.connect(data_dir / "hub.sqlite")
    try:
        held.execute("SELECT count(*) FROM residents").fetchall()
        hub.ok("resident", "join", hub.invite("root"), PSEUDONYM, "--name", REAL_NAME, "--contact",
               f"email:{EMAIL}", f"phone:{PHONE}")  # fmt: skip
        wal = data_dir / "hub.sqlite-wal"
        assert EMAIL.encode() in wal.read_bytes()  # the join itself went through the log
        hub.ok("resident", "erase", PSEUDONYM, "--yes")
        for path in sorted(data_dir.glob("hub.sqlite*")):
            for secret in (PSEUDONYM, REAL_NAME, EMAIL, PHONE):
                assert secret.encode() not in path.read_bytes(), f"{secret!r} is still in {path.name}"
        assert held.execute("SELECT count(*) FROM contacts").fetchone() == (0,)
    finally:
        held.close()


def test_erase_by_another_resident_is_refused_and_erasing_twice_says_so(hub: Hub) -> None:
    neighborhood(hub)
    assert "themself or an admin" in hub.fails("resident", "erase", PSEUDONYM, "--yes", "--as", "bob")
    hub.ok("resident", "erase", PSEUDONYM, "--yes", "--as", PSEUDONYM)
    assert "former-neighbor-1 was already erased" in hub.fails(
        "resident", "erase", "former-neighbor-1", "--yes"
    )
    assert "was erased and can no longer act" in hub.fails("resident", "invite", "--as", "former-neighbor-1")


def test_card_is_linked_normalised_and_cannot_be_shared(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    assert f"card {CARD} now belongs to bob" in hub.ok("resident", "card", "bob", CARD.lower())
    assert "already a resident's card" in hub.fails("resident", "card", PSEUDONYM, CARD)
    d = Directory(store)
    bob = d.resident_by_pseudonym("bob")
    assert bob is not None and d.cards_of(bob.id) == [CARD]
    hub.ok("resident", "card", "bob", CARD, "--remove")
    assert d.cards_of(bob.id) == []


# -- things ------------------------------------------------------------------------------------------------


def test_thing_add_stores_kind_visibility_share_location_tags_and_owner(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    hub.ok(
        "thing", "add", "flood-1", "--name", "Basement flood", "--owner", "bob", "--visibility", "private",
        "--share", "none", "--lat", "52.520008", "--lon", "13.404954", "--tag", "AA01", "W26:12345",
    )  # fmt: skip
    d = Directory(store)
    flood = d.thing("flood-1")
    bob = d.resident_by_pseudonym("bob")
    assert flood is not None and bob is not None
    assert (flood.visibility, flood.watcher_share, flood.kind) == (Visibility.PRIVATE, Share.NONE, "sensor")
    assert flood.location is not None and (flood.location.lat, flood.location.lon) == (52.520008, 13.404954)
    assert flood.tags == ("AA01", "W26:12345")
    owners = d.relations_of_thing("flood-1", now=time.time(), kinds=[RelationKind.OWNS])
    assert [r.resident for r in owners] == [bob.id]


def test_thing_add_refuses_bad_ids_locations_and_used_tags(hub: Hub) -> None:
    neighborhood(hub)
    assert "no spaces" in hub.fails("thing", "add", "a/b", "--name", "X")
    assert "not both" in hub.fails(
        "thing", "add", "x", "--name", "X", "--place", "yard", "--lat", "1", "--lon", "2"
    )
    assert "together" in hub.fails("thing", "add", "x", "--name", "X", "--lat", "1")
    assert "latitude is -90..90" in hub.fails("thing", "add", "x", "--name", "X", "--lat", "91", "--lon", "2")
    hub.ok("thing", "add", "x", "--name", "X", "--tag", "AA01")
    assert "already attached to thing x" in hub.fails("thing", "add", "y", "--name", "Y", "--tag", "aa01")
    assert "already registered" in hub.fails("thing", "add", "x", "--name", "X again")


def test_thing_show_without_as_gives_the_coarse_cell_not_the_exact_point(hub: Hub) -> None:
    neighborhood(hub)
    hub.ok(
        "thing", "add", "air", "--name", "Air", "--owner", "bob", "--lat", "52.520008", "--lon", "13.404954"
    )
    console = hub.ok("thing", "show", "air")
    cell = coarse_location(Location(lat=52.520008, lon=13.404954))
    assert cell is not None and cell.lat != 52.52001
    assert f"location:   {cell.lat:.5f}, {cell.lon:.5f}" in console and "52.52001" not in console
    assert "52.52001, 13.40495" in hub.ok("thing", "show", "air", "--as", "bob")  # the owner's exact view


def test_private_thing_stays_unknown_to_an_unrelated_resident(hub: Hub) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "flood-1", "--name", "Basement flood", "--owner", "bob", "--visibility", "private")
    hub.ok("thing", "add", "drill-1", "--name", "Drill", "--owner", "bob")
    err = hub.fails("thing", "show", "flood-1", "--as", PSEUDONYM)
    assert err == f"hub: no thing with id 'flood-1' that {PSEUDONYM} may see\n"
    listed = json.loads(hub.ok("thing", "list", "--json", "--as", PSEUDONYM))
    assert [t["id"] for t in listed] == ["drill-1"]
    # the admin's role opens nothing on a private thing either
    assert [t["id"] for t in json.loads(hub.ok("thing", "list", "--json", "--as", "root"))] == ["drill-1"]
    assert [t["id"] for t in json.loads(hub.ok("thing", "list", "--json", "--as", "bob"))] == [
        "drill-1",
        "flood-1",
    ]


def test_thing_edit_changes_fields_tags_and_transfers_ownership(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "drill-1", "--name", "Drill", "--owner", "bob", "--tag", "AA01")
    out = hub.ok(
        "thing", "edit", "drill-1", "--name", "Cordless drill", "--kind", "tool", "--visibility", "public",
        "--untag", "AA01", "--tag", "BB02", "--owner", PSEUDONYM, "--as", "bob",
    )  # fmt: skip
    assert "now owned by wren42" in out
    d = Directory(store)
    drill = d.thing("drill-1")
    wren = d.resident_by_pseudonym(PSEUDONYM)
    assert drill is not None and wren is not None
    assert (drill.name, drill.kind, drill.visibility, drill.tags) == (
        "Cordless drill",
        "tool",
        Visibility.PUBLIC,
        ("BB02",),
    )
    owners = d.relations_of_thing("drill-1", now=time.time(), kinds=[RelationKind.OWNS])
    assert [r.resident for r in owners] == [wren.id]
    # bob gave it away: he may no longer manage it
    assert "may not edit thing drill-1" in hub.fails(
        "thing", "edit", "drill-1", "--name", "Mine", "--as", "bob"
    )
    assert "nothing to change" in hub.fails("thing", "edit", "drill-1")


def test_thing_retire_needs_manage_and_stops_lending(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "drill-1", "--name", "Drill", "--owner", "bob")
    assert "may not retire" in hub.fails("thing", "retire", "drill-1", "--as", PSEUDONYM)
    hub.ok("thing", "retire", "drill-1", "--as", "bob")
    drill = Directory(store).thing("drill-1")
    assert drill is not None and drill.retired
    assert "is retired" in hub.fails("thing", "lend", "drill-1", "--as", "bob")
    assert "already retired" in hub.fails("thing", "retire", "drill-1")


# -- lending -----------------------------------------------------------------------------------------------


def test_lending_a_thing_one_may_not_manage_is_refused(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "drill-1", "--name", "Drill", "--owner", "bob")
    hub.ok("thing", "add", "safe", "--name", "Safe", "--owner", "bob", "--visibility", "private")
    err = hub.fails("thing", "lend", "drill-1", "--as", PSEUDONYM)
    assert err == f"hub: {PSEUDONYM} may not lend thing drill-1: that needs the right to manage it\n"
    # an admin may manage a neighbors' thing, never a private one
    assert "may not lend thing safe" in hub.fails("thing", "lend", "safe", "--as", "root")
    hub.ok("thing", "lend", "drill-1", "--as", "root")
    lends = Directory(store).relations_of_thing("safe", now=time.time(), kinds=[RelationKind.LENDS])
    assert lends == []


def test_lend_policy_options_are_stored_and_lending_again_replaces_the_policy(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "bike", "--name", "Cargo bike", "--owner", "bob")
    out = hub.ok(
        "thing", "lend", "bike", "--as", "bob", "--who", "tier", "--min-tier", "trusted", "--approval"
    )
    assert "residents of trust tier trusted or above, owner approves" in out
    out = hub.ok("thing", "lend", "bike", "--as", "bob", "--approved", f"{PSEUDONYM},root", "--days", "1.5")
    assert "changed the lending policy of bike" in out and "only wren42, root" in out
    d = Directory(store)
    lends = d.relations_of_thing("bike", now=time.time(), kinds=[RelationKind.LENDS])
    assert len(lends) == 1 and lends[0].policy is not None
    policy = lends[0].policy
    wren, root = d.resident_by_pseudonym(PSEUDONYM), d.resident_by_pseudonym("root")
    assert wren and root
    assert (policy.who, policy.approved, policy.loan_days, policy.needs_approval) == (
        "list",
        (wren.id, root.id),
        1.5,
        False,
    )
    assert "--who tier needs --min-tier" in hub.fails("thing", "lend", "bike", "--as", "bob", "--who", "tier")
    assert "use one of 0 newcomer" in hub.fails("thing", "lend", "bike", "--as", "bob", "--min-tier", "9")
    assert "positive number" in hub.fails("thing", "lend", "bike", "--as", "bob", "--days", "0")
    assert "no resident called 'nobody'" in hub.fails(
        "thing", "lend", "bike", "--as", "bob", "--approved", "nobody"
    )


def test_unlend_ends_the_offer(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "bike", "--name", "Cargo bike", "--owner", "bob")
    hub.ok("thing", "lend", "bike", "--as", "bob")
    assert "may not stop lending" in hub.fails("thing", "unlend", "bike", "--as", PSEUDONYM)
    assert "no longer offered" in hub.ok("thing", "unlend", "bike", "--as", "bob")
    assert Directory(store).relations_of_thing("bike", now=time.time(), kinds=[RelationKind.LENDS]) == []
    assert "not offered for lending" in hub.fails("thing", "unlend", "bike", "--as", "bob")


# -- relations ---------------------------------------------------------------------------------------------


def test_grant_refuses_lends_and_borrows_with_the_way_that_works(hub: Hub) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "drill-1", "--name", "Drill", "--owner", "bob")
    assert "hub thing lend" in hub.fails("relation", "grant", PSEUDONYM, "lends", "drill-1", "--as", "bob")
    assert "only from loans" in hub.fails("relation", "grant", PSEUDONYM, "borrows", "drill-1", "--as", "bob")


def test_grant_asks_the_permission_function(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "flood-1", "--name", "Flood", "--owner", "bob", "--visibility", "private")
    # nobody may watch a private thing they are not related to, nor hand out relations to it
    assert "may not watch" in hub.fails(
        "relation", "grant", PSEUDONYM, "watches", "flood-1", "--as", PSEUDONYM
    )
    assert "may not grant stewards on" in hub.fails(
        "relation", "grant", PSEUDONYM, "stewards", "flood-1", "--as", "root"
    )
    until = "2999-01-01T00:00:00+00:00"
    out = hub.ok("relation", "grant", PSEUDONYM, "watches", "flood-1", "--as", "bob", "--until", until)
    assert "granted: wren42 watches flood-1 until 2999-01-01T00:00:00Z" in out
    watches = Directory(store).relations_of_thing("flood-1", now=time.time(), kinds=[RelationKind.WATCHES])
    assert len(watches) == 1 and watches[0].valid_until == 32472144000.0
    assert "already past" in hub.fails(
        "relation", "grant", "root", "watches", "flood-1", "--as", "bob", "--until", "2020-01-01"
    )
    assert "not an ISO date" in hub.fails(
        "relation", "grant", "root", "watches", "flood-1", "--as", "bob", "--until", "next week"
    )


def test_revoke_by_holder_or_manager_and_refused_to_others(hub: Hub, store: Store) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "drill-1", "--name", "Drill", "--owner", "bob")
    hub.ok("relation", "grant", PSEUDONYM, "watches", "drill-1", "--as", PSEUDONYM)
    hub.ok("relation", "grant", "root", "watches", "drill-1", "--as", "root")
    rows = json.loads(hub.ok("relation", "list", "--thing", "drill-1", "--json"))
    ids = {row["resident"]: row["id"] for row in rows if row["kind"] == "watches"}
    assert "may not revoke" in hub.fails("relation", "revoke", ids["root"], "--as", PSEUDONYM)
    hub.ok("relation", "revoke", ids[PSEUDONYM], "--as", PSEUDONYM)  # giving up one's own
    hub.ok("relation", "revoke", ids["root"], "--as", "bob")  # the owner manages it
    active = Directory(store).relations_of_thing("drill-1", now=time.time())
    assert [r.kind for r in active] == [RelationKind.OWNS]
    assert "already revoked" in hub.fails("relation", "revoke", ids["root"], "--as", "bob")
    ended = json.loads(hub.ok("relation", "list", "--resident", PSEUDONYM, "--all", "--json"))
    assert [(r["kind"], r["active"]) for r in ended] == [("watches", False)]


# -- audit, errors, help -----------------------------------------------------------------------------------


def test_audit_filters_by_thing_and_resident_and_prints_times_as_iso(hub: Hub) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "drill-1", "--name", "Drill", "--owner", "bob")
    hub.ok("thing", "add", "saw", "--name", "Saw", "--owner", PSEUDONYM)
    hub.ok("relation", "grant", "root", "watches", "drill-1", "--as", "bob", "--until", "2999-01-01")
    by_thing = json.loads(hub.ok("audit", "--thing", "drill-1", "--json"))
    assert [e["action"] for e in by_thing] == ["thing.create", "relation.grant"]
    assert by_thing[1]["actor"] == "bob" and by_thing[1]["about"] == "root"
    assert by_thing[1]["detail"]["until"] == "2999-01-01T00:00:00Z"
    # bob reads about himself and his things, not about wren's saw
    mine = json.loads(hub.ok("audit", "--resident", "bob", "--json"))
    assert {e["thing"] for e in mine} == {None, "drill-1"}
    assert len(json.loads(hub.ok("audit", "--json", "--limit", "2"))) == 2


def test_unknown_names_print_one_line_and_exit_1(hub: Hub) -> None:
    neighborhood(hub)
    assert "no resident called 'nobody'" in hub.fails("resident", "show", "nobody")
    assert "no thing with id 'nothing'" in hub.fails("thing", "show", "nothing")
    assert "no relation with id 'nope'" in hub.fails("relation", "revoke", "nope", "--as", "bob")
    assert "not known" in hub.fails("resident", "join", "WRONGCODE2", "ada")


def test_an_unreachable_store_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = Hub(write_config(tmp_path, "  url: postgresql://hub@127.0.0.1:1/hub\n"), capsys)
    assert "refused the connection (storage.url)" in hub.fails("resident", "list")


@pytest.mark.parametrize(
    "command",
    [
        ["admin", "create"],
        *(["resident", c] for c in ("invite", "join", "list", "show", "role", "erase", "card", "vouch")),
        *(["thing", c] for c in ("add", "edit", "list", "show", "retire", "lend", "unlend")),
        *(["relation", c] for c in ("grant", "revoke", "list")),
        ["audit"],
    ],
)
def test_every_people_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert f"usage: hub {' '.join(command)}" in capsys.readouterr().out


def test_a_missing_config_option_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["resident", "list"])
    assert info.value.code == 2
