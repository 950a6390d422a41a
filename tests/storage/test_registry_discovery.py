"""The registry fed by discovery: announcements, withdrawals and unmapped fields through the live state and
the store writer, on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from hub.domain.events import Discovery, Reading
from hub.domain.livestate import LiveState
from hub.domain.model import Relation, RelationKind, Role, Share, Thing, Visibility
from hub.storage import store as tables
from hub.storage.directory import Directory
from hub.storage.store import MIGRATIONS, Store
from hub.storage.writer import StoreWriter
from hub.telemetry import Telemetry

T0 = 1_790_000_000.0
WS = "homeassistant.garden-weather-1"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = Store(url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def live(store: Store) -> LiveState:
    state = LiveState()
    state.load(store.load_things(), store.load_unmapped())
    return state


@pytest.fixture
def writer(store: Store, live: LiveState) -> StoreWriter:
    return StoreWriter(store, live, Telemetry())


def announce(name: str | None = "Garden weather", **extra: object) -> Discovery:
    return Discovery(
        WS,
        "homeassistant",
        name=name,
        model=str(extra.get("model", "WS-1")),
        manufacturer="Acme",
        sw_version=str(extra.get("sw_version", "1.2")),
        measurements=("temperature", "humidity"),
        power="battery",
        topics=("garden/weather/state",),
        attributes={"identifiers": ["garden-weather-1"], "entities": 2},
    )


def withdraw() -> Discovery:
    return Discovery(WS, "homeassistant", retired=True)


def test_an_announced_device_is_registered_unclaimed_and_private_with_what_it_said(
    store: Store, live: LiveState, writer: StoreWriter
) -> None:
    live.apply_discovery(announce(), at=T0)
    writer.flush()

    thing = Directory(store).thing(WS)
    assert thing is not None
    assert (thing.name, thing.visibility, thing.watcher_share, thing.retired) == (
        "Garden weather",
        Visibility.PRIVATE,
        Share.NONE,
        False,
    )
    state = store.thing(WS)
    assert state is not None and state.announced is not None
    a = state.announced
    assert (a.source, a.name, a.model, a.manufacturer, a.sw_version, a.power, a.at) == (
        "homeassistant",
        "Garden weather",
        "WS-1",
        "Acme",
        "1.2",
        "battery",
        T0,
    )
    assert a.measurements == ("temperature", "humidity")
    assert a.attributes == {"identifiers": ["garden-weather-1"], "entities": 2}
    assert (state.source, state.first_seen, state.last_seen, state.online) == ("homeassistant", T0, T0, None)


def test_a_new_announcement_updates_the_device_data_but_never_a_residents_name(
    store: Store, live: LiveState, writer: StoreWriter
) -> None:
    live.apply_discovery(announce(), at=T0)
    writer.flush()
    live.apply_discovery(announce(name="Weather 2", sw_version="1.3"), at=T0 + 10)
    writer.flush()
    d = Directory(store)
    thing = d.thing(WS)
    assert thing is not None and thing.name == "Weather 2"  # unclaimed: goes by the device's name

    admin = d.bootstrap_admin("ada", now=T0)
    d.create_thing(
        Thing(WS, "Roof station", visibility=Visibility.NEIGHBORS), owner=admin.id, actor=admin.id, now=T0
    )
    live.apply_discovery(announce(name="Weather 3", sw_version="1.4"), at=T0 + 20)
    writer.flush()
    thing = d.thing(WS)
    state = store.thing(WS)
    assert thing is not None and thing.name == "Roof station"
    assert state is not None and state.announced is not None
    assert (state.announced.name, state.announced.sw_version) == ("Weather 3", "1.4")


def test_a_withdrawn_announcement_retires_the_thing_keeping_relations_and_a_new_one_brings_it_back(
    store: Store, live: LiveState, writer: StoreWriter
) -> None:
    d = Directory(store)
    live.apply_discovery(announce(), at=T0)
    writer.flush()
    admin = d.bootstrap_admin("ada", now=T0)
    d.create_thing(Thing(WS, "Roof station"), owner=admin.id, actor=admin.id, now=T0)
    watcher = d.add_resident("bob", role=Role.RESIDENT, actor=admin.id, now=T0)
    d.grant(Relation("", watcher.id, WS, RelationKind.WATCHES), actor=admin.id, now=T0)

    live.apply_discovery(withdraw(), at=T0 + 60)
    writer.flush()
    thing = d.thing(WS)
    assert thing is not None and thing.retired
    kinds = sorted(r.kind for r in d.relations_of_thing(WS, now=T0 + 61))
    assert kinds == [RelationKind.OWNS, RelationKind.WATCHES]  # not deleted: relations stay
    state = store.thing(WS)
    assert state is not None and state.withdrawn and state.announced is not None  # what it said stays

    live.apply_discovery(announce(), at=T0 + 120)
    writer.flush()
    thing = d.thing(WS)
    assert thing is not None and not thing.retired and thing.name == "Roof station"


def test_a_thing_a_resident_retired_stays_retired_when_its_device_announces_itself_again(
    store: Store, live: LiveState, writer: StoreWriter
) -> None:
    d = Directory(store)
    live.apply_discovery(announce(), at=T0)
    writer.flush()
    admin = d.bootstrap_admin("ada", now=T0)
    d.create_thing(Thing(WS, "Roof station"), owner=admin.id, actor=admin.id, now=T0)
    d.retire_thing(WS, actor=admin.id, now=T0 + 1)

    live.apply_discovery(withdraw(), at=T0 + 2)
    writer.flush()
    live.apply_discovery(announce(model="WS-2"), at=T0 + 3)
    writer.flush()
    thing = d.thing(WS)
    state = store.thing(WS)
    assert thing is not None and thing.retired
    assert state is not None and state.announced is not None and state.announced.model == "WS-2"


def test_announcement_withdrawal_and_unmapped_fields_come_back_after_a_restart(
    url: str, store: Store, live: LiveState, writer: StoreWriter
) -> None:
    live.apply_discovery(announce(), at=T0)
    live.apply_reading(
        Reading(WS, "homeassistant", {"temperature": 21.5}, unmapped={"wind": 3, "note": "gusty"}), T0 + 1
    )
    live.apply_discovery(Discovery("homeassistant.old", "homeassistant", name="Old"), at=T0)
    writer.flush()
    live.apply_discovery(Discovery("homeassistant.old", "homeassistant", retired=True), at=T0 + 2)
    writer.flush()

    again = Store(url)
    try:
        fresh = LiveState()
        fresh.load(again.load_things(), again.load_unmapped())
    finally:
        again.close()
    ws, old = fresh.get(WS), fresh.get("homeassistant.old")
    assert ws is not None and old is not None
    assert ws.announced == live.get(WS).announced  # type: ignore[union-attr]
    assert not ws.withdrawn and old.withdrawn
    assert [(p, f.raw, f.last_seen) for p, f in fresh.unmapped(WS)] == [
        ("note", "gusty", T0 + 1),
        ("wind", 3, T0 + 1),
    ]
    # a replayed retained config after the restart is recognised as unchanged: nothing to write
    assert not fresh.apply_discovery(announce(), at=T0 + 100)


def test_a_retained_inventory_of_thousands_is_stored_in_one_batched_transaction(
    store: Store, live: LiveState, writer: StoreWriter
) -> None:
    statements: list[str] = []
    commits: list[int] = []
    sa.event.listen(
        store._engine, "before_cursor_execute", lambda *args: statements.append(str(args[2])[:40])
    )
    sa.event.listen(store._engine, "commit", lambda conn: commits.append(1))
    for i in range(3000):
        live.apply_discovery(Discovery(f"homeassistant.dev-{i:04d}", "homeassistant", name=f"d{i}"), T0)
    writer.flush()
    assert len(commits) == 1
    assert len(statements) < 20  # executemany: not one statement per device
    assert len(Directory(store).things()) == 3000


def test_a_failed_write_keeps_announcements_for_the_next_flush(
    store: Store, live: LiveState, writer: StoreWriter
) -> None:
    live.apply_discovery(announce(), at=T0)
    with store._engine.begin() as conn:  # a write that must fail: the things table is locked away
        conn.execute(sa.text("ALTER TABLE things RENAME TO things_away"))
    writer.flush()
    assert not writer.healthy
    with store._engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE things_away RENAME TO things"))
    writer.flush()
    assert writer.healthy
    state = store.thing(WS)
    assert state is not None and state.announced is not None and state.announced.model == "WS-1"


def test_upgrade_from_0003_keeps_things_a_resident_retired_retired(url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    old = Store(url)
    try:
        with old._engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0003")
            conn.execute(
                sa.text(
                    "INSERT INTO things (id, source, first_seen, last_seen, retired) "
                    "VALUES (:id, 'homeassistant', :t, :t, :r)"
                ),
                [{"id": WS, "t": T0, "r": True}, {"id": "kept", "t": T0, "r": False}],
            )
        old.migrate()
        live = LiveState()
        live.load(old.load_things(), old.load_unmapped())
        state = live.get(WS)
        assert state is not None and not state.withdrawn and state.announced is None
        live.apply_discovery(announce(), at=T0 + 1)
        StoreWriter(old, live, Telemetry()).flush()
        with old._engine.connect() as conn:
            row = conn.execute(sa.select(tables.things).where(tables.things.c.id == WS)).one()
        assert row.retired and row.retired_by is None and row.model == "WS-1"
    finally:
        old.close()
