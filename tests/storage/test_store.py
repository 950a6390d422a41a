"""The relational store against a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from hub.domain.livestate import ScanRecord, ThingState
from hub.storage.store import Store, StoreError, metadata

T0 = 1_750_000_000.0


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


def thing(
    id: str,
    first: float,
    last: float,
    values: dict[str, float | bool] | None = None,
    times: dict[str, float] | None = None,
    online: bool | None = None,
    source: str = "native",
) -> ThingState:
    values = values or {}
    return ThingState(id, source, first, last, online, dict(values), times or dict.fromkeys(values, last))


def test_migrate_from_empty_creates_the_tables(store: Store) -> None:
    tables = set(sa.inspect(store._engine).get_table_names())
    assert {"things", "sources", "latest", "scans", "alembic_version"} <= tables
    indexes = {i["name"] for i in sa.inspect(store._engine).get_indexes("scans")}
    assert {"scans_reader_time", "scans_tag_time"} <= indexes


def test_migrations_match_the_table_definitions(store: Store) -> None:
    with store._engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from hub.storage.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_migrate_twice_is_a_no_op(store: Store) -> None:
    store.apply([thing("t1", T0, T0, {"temperature": 20.5})], [])
    store.migrate()
    with store._engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (_head_revision(),)
    assert store.thing("t1") == thing("t1", T0, T0, {"temperature": 20.5})


def test_apply_then_load_round_trips_values_and_times(store: Store) -> None:
    a = thing(
        "air-1",
        T0,
        T0 + 60,
        {"temperature": 21.25, "pm25": 7.0, "water_leak": False, "contact": True},
        {"temperature": T0 + 60, "pm25": T0 + 30, "water_leak": T0 + 10, "contact": T0 + 59.5},
        online=True,
        source="zigbee2mqtt",
    )
    b = thing("bike", T0 + 1, T0 + 2, online=False)
    store.apply([b, a], [])

    loaded = store.load_things()

    assert loaded == [a, b]
    assert type(loaded[0].values["water_leak"]) is bool
    assert type(loaded[0].values["pm25"]) is float
    assert store.thing("air-1") == a
    assert store.thing("nobody") is None


def test_upsert_keeps_the_earliest_first_seen_and_the_latest_last_seen(store: Store) -> None:
    store.apply([thing("t1", T0, T0 + 100, online=True)], [])
    store.apply([thing("t1", T0 + 50, T0 + 60, online=None)], [])

    t1 = store.thing("t1")
    assert t1 is not None
    assert (t1.first_seen, t1.last_seen, t1.online) == (T0, T0 + 100, True)

    store.apply([thing("t1", T0 - 10, T0 + 200, online=False)], [])
    t1 = store.thing("t1")
    assert t1 is not None
    assert (t1.first_seen, t1.last_seen, t1.online) == (T0 - 10, T0 + 200, False)


def test_an_older_reading_does_not_overwrite_a_newer_latest_value(store: Store) -> None:
    store.apply([thing("t1", T0, T0 + 10, {"temperature": 22.0, "smoke": True})], [])
    # replayed or late message: older device time
    late = dict.fromkeys(["temperature", "smoke"], T0 + 5)
    store.apply([thing("t1", T0, T0 + 20, {"temperature": 18.0, "smoke": False}, late)], [])

    t1 = store.thing("t1")
    assert t1 is not None
    assert t1.values == {"temperature": 22.0, "smoke": True}
    assert t1.times == {"temperature": T0 + 10, "smoke": T0 + 10}


def test_a_newer_or_same_time_different_value_replaces_the_latest(store: Store) -> None:
    store.apply([thing("t1", T0, T0 + 10, {"temperature": 22.0, "humidity": 40.0})], [])
    times = {"temperature": T0 + 11, "humidity": T0 + 10}  # humidity: same time, new value
    store.apply([thing("t1", T0, T0 + 11, {"temperature": 23.0, "humidity": 41.0}, times)], [])

    t1 = store.thing("t1")
    assert t1 is not None
    assert t1.values == {"temperature": 23.0, "humidity": 41.0}
    assert t1.times == {"temperature": T0 + 11, "humidity": T0 + 10}


def test_a_value_that_changes_type_keeps_only_the_new_kind(store: Store) -> None:
    store.apply([thing("t1", T0, T0 + 1, {"state": 1.0})], [])
    store.apply([thing("t1", T0, T0 + 2, {"state": True})], [])

    t1 = store.thing("t1")
    assert t1 is not None
    assert t1.values == {"state": True}


def test_non_finite_values_are_not_stored(store: Store) -> None:
    store.apply([thing("t1", T0, T0, {"temperature": float("nan"), "humidity": 50.0})], [])

    t1 = store.thing("t1")
    assert t1 is not None
    assert t1.values == {"humidity": 50.0}


def test_a_source_row_links_each_thing_to_its_ecosystem_identity(store: Store) -> None:
    store.apply([thing("plug-7", T0 + 5, T0 + 5, source="tasmota")], [])
    store.apply([thing("plug-7", T0, T0 + 9, source="tasmota")], [])

    with store._engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT ecosystem, identity, thing_id, first_seen FROM sources")).all()
    assert [tuple(r) for r in rows] == [("tasmota", "plug-7", "plug-7", T0)]


def test_scans_are_recorded_and_listed_newest_first(store: Store) -> None:
    scans = [
        ScanRecord("door", "native", "01000734E0", T0 + 1),
        ScanRecord("shed", "native", "C2994A1B", T0 + 2),
        ScanRecord("door", "native", "W26:123456", T0 + 3),
    ]
    store.apply([], scans[:2])
    store.apply([], scans[2:])

    assert store.count_scans() == 3
    assert store.recent_scans() == scans[::-1]
    assert store.recent_scans(limit=1) == [scans[2]]
    assert store.recent_scans(reader="door") == [scans[2], scans[0]]


def test_apply_is_one_transaction(store: Store) -> None:
    bad = ScanRecord("door", "native", None, T0)  # type: ignore[arg-type]  # violates NOT NULL

    with pytest.raises(sa.exc.IntegrityError):
        store.apply([thing("t1", T0, T0, {"temperature": 20.0})], [bad])

    assert store.load_things() == []
    assert store.count_scans() == 0


def test_apply_of_many_things_in_one_call(store: Store) -> None:
    batch = [
        thing(f"t{i:04}", T0, T0 + i, {"temperature": i / 10, "occupancy": i % 2 == 0}) for i in range(1500)
    ]

    store.apply(batch, [])

    assert store.load_things() == batch


def test_ping_answers_while_open(store: Store) -> None:
    assert store.ping() is True


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "data")
    store.migrate()
    with store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    store.close()
    assert (tmp_path / "data" / "hub.sqlite").is_file()


def test_open_a_directory_creates_it_with_the_database_inside(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "a" / "b"))
    store.migrate()
    store.apply([thing("t1", T0, T0)], [])
    store.close()

    again = Store.open(tmp_path / "a" / "b")
    assert [t.id for t in again.load_things()] == ["t1"]
    again.close()


def test_a_storage_path_that_cannot_be_a_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")

    with pytest.raises(StoreError, match=r"storage directory .*file/hub.*storage\.path"):
        Store.open(tmp_path / "file" / "hub")


def test_plain_postgresql_url_uses_psycopg(postgres_url: str) -> None:
    store = Store(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    store.migrate()
    assert store.ping() is True
    assert store.url.drivername == "postgresql+psycopg"
    store.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_postgresql_names_host_port_and_setting() -> None:
    port = closed_port()
    store = Store(f"postgresql://postgres@127.0.0.1:{port}/hub")

    with pytest.raises(StoreError) as caught:
        store.migrate()

    assert str(caught.value).startswith(
        f"PostgreSQL at 127.0.0.1:{port} refused the connection (storage.url)"
    )
    assert store.ping() is False
    with pytest.raises(StoreError, match="refused"):
        store.load_things()


def test_unknown_database_kind_is_refused() -> None:
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        Store("mysql://root@127.0.0.1/hub")
