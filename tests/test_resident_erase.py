"""`hub resident erase`, verified column by column on SQLite and PostgreSQL: after it, no cell of any
table (read from the database itself, so a new table or column is covered without touching this test)
holds the resident's pseudonym, real name, contacts, card, channel URLs or tokens, password hash,
session or access tokens, or the address and token of their own Home Assistant (whose shared entities'
things are retired); on SQLite not even the file's bytes do. Loans, vouches and relations stay,
anonymised as docs and ``Directory.erase_resident`` describe."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from console import Console

from hub.domain.livestate import ScanRecord
from hub.domain.model import AuditEntry, Loan, LoanState, Relation, RelationKind, Thing, Visibility
from hub.storage import store as tables
from hub.storage.accounts import Accounts, digest
from hub.storage.alertstore import AlertRecord, AlertStore
from hub.storage.directory import Directory
from hub.storage.halinks import HaLinks, HaShare
from hub.storage.store import Store

PSEUDONYM = "wren42"
REAL_NAME = "Jenny Wren"
EMAIL = "jenny@wren.example"
PHONE = "+49301234567"
CARD = "45C52583"
PASSWORD = "wren's secret passphrase"
APPRISE = "ntfys://wrentoken0123456789@ntfy.wren.example/wren-alerts"
HA_URL = "http://wren-home.example:8123"
HA_TOKEN = "ha-token-of-wren-abcdef0123456789"
# the Home Assistant wren shares her cellar thermometer from (a link and one shared entity)
LINK_URL = "http://wren-cellar.example:8123"
LINK_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ3cmVuLWxpbmsifQ.d3Jlbi1saW5rLXNpZ25hdHVyZQ"
T0 = 1_790_000_000.0
DAY = 86400.0


@pytest.fixture(params=["sqlite", "postgresql"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "sqlite":
        storage = f"  path: {tmp_path / 'data'}\n"
    else:
        storage = f"  path: {tmp_path / 'data'}\n  url: {request.getfixturevalue('postgres_url')}\n"
    path = tmp_path / "hub.yaml"
    path.write_text(f"timeseries:\n  kind: embedded\nstorage:\n{storage}", encoding="utf-8")
    return path


@pytest.fixture
def hub(config: Path, capsys: pytest.CaptureFixture[str]) -> Console:
    return Console(config, capsys)


@pytest.fixture
def store(hub: Console, config: Path) -> Iterator[Store]:
    """The store the commands write (made by the first command)."""
    hub.ok("admin", "create", "root")
    text = config.read_text()
    url = next((line.split("url: ", 1)[1] for line in text.splitlines() if "url: " in line), None)
    s = Store(url) if url else Store.open(config.parent / "data")
    yield s
    s.close()


def every_cell(store: Store) -> Iterator[tuple[str, str, object]]:
    """(table, column, value) of every non-null cell of every table the database has."""
    inspector = sa.inspect(store._engine)
    with store._engine.connect() as conn:
        for table in inspector.get_table_names():
            columns = [c["name"] for c in inspector.get_columns(table)]
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        yield table, column, value


def test_erase_leaves_no_personal_data_in_any_column(hub: Console, store: Store) -> None:
    d, alerts = Directory(store), AlertStore(store)
    accounts = Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    code = hub.ok("resident", "invite", "--as", "root").strip()
    hub.ok("resident", "join", code, PSEUDONYM, "--name", REAL_NAME, "--contact", f"email:{EMAIL}",
           f"phone:{PHONE}")  # fmt: skip
    hub.ok("resident", "card", PSEUDONYM, CARD, "--as", "root")
    root, wren = d.resident_by_pseudonym("root"), d.resident_by_pseudonym(PSEUDONYM)
    assert root is not None and wren is not None
    # sign-in: a password, a browser session, an access token
    accounts.set_password(wren.id, PASSWORD, now=T0)
    session = accounts.create_session(wren.id, now=T0)
    _, token = accounts.create_token(wren.id, "wren's script", now=T0)
    # where wren hears of alerts, and a delivery to one of them
    apprise = alerts.add_channel(wren.id, "apprise", APPRISE, now=T0)
    alerts.add_channel(wren.id, "homeassistant", HA_URL, HA_TOKEN, now=T0)
    alerts.enqueue(None, wren.id, f"apprise:{apprise.id}", "opened", now=T0)
    # relations and loans: a drill out with wren now, a saw returned, a sensor watched, a waitlist place
    for thing_id in ("drill", "saw", "sensor"):
        d.create_thing(Thing(id=thing_id, name=thing_id, visibility=Visibility.PUBLIC), owner=root.id,
                       actor=root.id, now=T0)  # fmt: skip
    watch = d.grant(Relation("", wren.id, "sensor", RelationKind.WATCHES), actor=wren.id, now=T0)
    out = d.save_loan(Loan("", "drill", wren.id, root.id, LoanState.OUT, T0, T0 + DAY, out_at=T0),
                      actor=wren.id, now=T0, action="loan.out")  # fmt: skip
    saw = d.save_loan(Loan("", "saw", wren.id, root.id, LoanState.OUT, T0, T0 + DAY, out_at=T0),
                      actor=wren.id, now=T0, action="loan.out")  # fmt: skip
    d.save_loan(replace(saw, state=LoanState.RETURNED, returned_at=T0 + 10), actor=wren.id, now=T0 + 10,
                action="loan.return")  # fmt: skip
    # an alert wren claimed, with a note of her own words
    alert = AlertRecord("a1", "leak", "sensor", "boolean", "critical", "claimed", "leak", T0, T0,
                        claimed_by=wren.id, claimed_at=T0)  # fmt: skip
    alerts.record(
        alert, "claimed", time=T0, actor=wren.id, detail={"note": f"{REAL_NAME} on it, call {PHONE}"}
    )
    d.join_waitlist("sensor", wren.id, actor=wren.id, now=T0)
    # her own Home Assistant, linked, with one entity shared as a thing she owns
    links = HaLinks(store)
    links.link(wren.id, LINK_URL, LINK_TOKEN, now=T0)
    d.create_thing(Thing(id="ha_link.cellar", name="cellar", visibility=Visibility.PUBLIC), owner=wren.id,
                   actor=wren.id, now=T0)  # fmt: skip
    links.add_share(HaShare(wren.id, "sensor.cellar_temperature", "ha_link.cellar", "temperature", False, T0))
    d.vouch(wren.id, root.id, now=T0)
    d.vouch(root.id, wren.id, now=T0)
    store.apply([], [ScanRecord("shed", "native", CARD, T0 + 1)])
    d.append_audit(AuditEntry(T0, root.id, "note", "drill", wren.id,
                              {"text": f"lent to {PSEUDONYM} ({REAL_NAME}, {EMAIL}, {PHONE})"}))  # fmt: skip
    with store._begin() as conn:
        password_hash = conn.execute(sa.select(tables.credentials.c.password_hash)).scalar_one()
    personal = [
        PSEUDONYM, REAL_NAME, EMAIL, PHONE, CARD, PASSWORD, password_hash, APPRISE, "wrentoken0123456789",
        HA_URL, "wren-home.example", HA_TOKEN, session.token, digest(session.token),
        session.session.csrf_token, token, digest(token), LINK_URL, "wren-cellar.example", LINK_TOKEN,
    ]  # fmt: skip
    before = {p for _, _, v in every_cell(store) for p in personal if p.lower() in str(v).lower()}
    assert before >= set(personal) - {PASSWORD, session.token, token}  # the scan finds what is there

    hub.ok("resident", "erase", PSEUDONYM, "--yes", "--as", "root")

    if store.dialect == "sqlite":  # deleted rows leave no bytes behind, in the file or its log
        files = sorted(Path(store.url.database or "").parent.glob("hub.sqlite*"))
        assert files
        for path in files:
            data = path.read_bytes().lower()
            for p in personal:
                assert p.lower().encode() not in data, f"{p!r} is still in the bytes of {path.name}"
    leaks = [
        (table, column, p)
        for table, column, value in every_cell(store)
        for p in personal
        if p.lower() in str(value).lower()
    ]
    assert leaks == [], f"personal data left after erase: {leaks}"
    # anonymised as designed: the resident row stays under a placeholder, rows about them go
    erased = d.resident(wren.id)
    assert erased is not None and erased.erased and erased.pseudonym.startswith("former-neighbor-")
    assert erased.real_name is None and erased.contacts == () and erased.role.value == "resident"
    for table in (tables.contacts, tables.credentials, tables.web_sessions, tables.api_tokens,
                  tables.channels, tables.waitlist, tables.tags):  # fmt: skip
        assert _count(store, table, table.c.resident_id == wren.id) == 0, table.name
    dl = tables.deliveries
    assert _count(store, dl, dl.c.resident_id == wren.id) == 0 and _count(store, dl) == 1
    # history stays: both loans, the borrows relation of the loan still out, the vouches
    assert sorted(x.state for x in d.loans(borrower=wren.id)) == [LoanState.OUT, LoanState.RETURNED]
    relations = d.relations_of_resident(wren.id, now=T0 + 20, include_inactive=True)
    held = [r for r in relations if r.kind is RelationKind.BORROWS and r.loan == out.id]
    assert held and held[0].revoked_at is None  # custody is a fact, not personal data
    assert d.relation(watch.id).revoked_at is not None  # type: ignore[union-attr]
    assert d.vouchers_of(root.id) == [wren.id] and d.vouchers_of(wren.id) == [root.id]
    assert store.recent_scans()[0].tag == "[erased]"
    assert accounts.session(session.token, now=T0) is None and accounts.token(token, now=T0) is None
    # the Home Assistant link is gone with its share; the thing the share became is retired, as unlinking
    # does, and the erase says so in the audit log
    assert links.get(wren.id) is None and links.shares() == []
    for table in (tables.ha_links, tables.ha_shares):
        assert _count(store, table) == 0, table.name
    cellar = d.thing("ha_link.cellar")
    assert cellar is not None and cellar.retired
    actions = [(e.action, e.thing) for e in d.audit(subject=wren.id)] + [
        (e.action, e.thing) for e in d.audit(thing="ha_link.cellar")
    ]
    assert ("homeassistant.unlink", None) in actions and ("thing.retire", "ha_link.cellar") in actions


def _count(store: Store, table: sa.Table, where: sa.ColumnElement[bool] | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    with store._begin() as conn:
        return int(conn.execute(query if where is None else query.where(where)).scalar_one())
