"""Retention in the relational store (hub.storage.housekeeping), on SQLite and PostgreSQL, with an
injected clock: what is past its limit goes, in batches; what is younger, pending or still open stays."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.config import parse_config
from hub.storage import store as tables
from hub.storage.housekeeping import DAY, Housekeeper, Retention
from hub.storage.store import Store
from hub.telemetry import Telemetry

NOW = 1_790_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'hub.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    opened = Store(url)
    opened.migrate()
    yield opened
    opened.close()


def _alert(alert_id: str, state: str, cleared_at: float | None) -> dict[str, object]:
    return {
        "id": alert_id, "rule_id": "leak", "thing_id": "cellar", "kind": "boolean", "severity": "critical",
        "state": state, "message": "leak", "opened_at": NOW - 500 * DAY, "updated_at": NOW - 500 * DAY,
        "cleared_at": cleared_at,
    }  # fmt: skip


def _fill(store: Store, old: int) -> None:
    """``old`` rows of each kind past every default limit, and rows that must stay."""
    ago = NOW - 400 * DAY  # older than every default limit
    recent = NOW - 1 * DAY
    with store._begin() as conn:
        conn.execute(sa.insert(tables.residents).values(
            id="r1", pseudonym="dee", pseudonym_key="dee", role="resident", joined_at=ago))  # fmt: skip
        times = [ago + i for i in range(old)] + [recent]  # a scan is one row per (reader, tag, time)
        rows = [{"reader": "door", "source": "native", "tag": "AA", "time": t, "received": t}
                for t in times]  # fmt: skip
        conn.execute(sa.insert(tables.scans), rows)
        rows = [{"reader": "door", "tag": "AA", "time": t, "loan_id": "l1", "handled_at": t} for t in times]
        conn.execute(sa.insert(tables.handled_scans), rows)
        rows = [
            {"time": t, "actor": "r1", "action": "thing.view", "detail": "{}"} for t in [ago] * old + [recent]
        ]
        conn.execute(sa.insert(tables.audit), rows)
        conn.execute(sa.insert(tables.alerts), [
            _alert("gone", "cleared", ago),  # cleared long ago: goes with its history and deliveries
            _alert("cleared", "cleared", recent),  # cleared lately: old history goes, the alert stays
            _alert("open", "active", None),  # open: keeps all of its history
        ])  # fmt: skip
        conn.execute(sa.insert(tables.alert_events), [
            {"alert_id": a, "time": t, "action": "opened"}
            for a in ("gone", "cleared", "open") for t in [ago] * old + [recent]
        ])  # fmt: skip
        conn.execute(sa.insert(tables.deliveries), [
            {"alert_id": "open", "resident_id": "r1", "channel": "web", "message": "opened", "state": state,
             "created_at": t}
            for state, t in [("sent", ago)] * old + [("failed", ago), ("pending", ago), ("sent", recent)]
        ])  # fmt: skip
        pending = {"channel": "web", "message": "opened", "state": "pending", "created_at": recent}
        conn.execute(sa.insert(tables.deliveries).values(alert_id="gone", **pending))
        conn.execute(sa.insert(tables.web_sessions), [
            {"token_hash": f"h{n}", "resident_id": "r1", "csrf_token": "c", "created_at": ago,
             "last_seen": ago, "expires_at": expires}
            for n, expires in enumerate([NOW - 1] * old + [NOW + DAY])
        ])  # fmt: skip


def _count(store: Store, table: sa.Table, where: sa.ColumnElement[bool] | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    with store._begin() as conn:
        return int(conn.execute(query if where is None else query.where(where)).scalar_one())


def test_rows_past_their_limit_go_in_batches_and_the_rest_stays(store: Store) -> None:
    _fill(store, old=25)
    telemetry = Telemetry()
    keeper = Housekeeper(store, Retention(), telemetry=telemetry, clock=lambda: NOW, batch=7)
    done = keeper.run()
    print("deleted", done)
    assert done == {
        "scans": 25, "handled_scans": 25, "audit": 25,
        "deliveries": 27, "alert_events": 2 * 25 + 1, "web_sessions": 25,
        "alerts": 1,
    }  # fmt: skip
    assert (
        _count(store, tables.scans) == _count(store, tables.audit) == _count(store, tables.handled_scans) == 1
    )
    ev = tables.alert_events
    assert _count(store, ev, ev.c.alert_id == "open") == 26  # an open alert keeps its history
    assert _count(store, ev, ev.c.alert_id == "cleared") == 1
    assert _count(store, tables.alerts) == 2
    d = tables.deliveries
    assert sorted(r.state for r in _rows(store, d)) == ["pending", "sent"]
    assert _count(store, tables.web_sessions) == 1
    assert telemetry.value("hub_retention_deleted_total", table="scans") == 25
    assert keeper.run() == dict.fromkeys(done, 0)  # nothing left to do


def _rows(store: Store, table: sa.Table) -> list[sa.Row[object]]:
    with store._begin() as conn:
        return list(conn.execute(sa.select(table)))


def test_limits_follow_the_clock_and_the_config(store: Store) -> None:
    _fill(store, old=3)
    config = parse_config("storage:\n  retention:\n    scans_days: 500\n    audit_days: 1000\n")
    kept = config.storage.retention
    retention = Retention(kept.scans_days, kept.audit_days, kept.deliveries_days, kept.alert_events_days)
    clock = [NOW]
    keeper = Housekeeper(store, retention, clock=lambda: clock[0])
    assert keeper.run()["scans"] == 0 and _count(store, tables.scans) == 4  # 400 days < 500
    clock[0] += 101 * DAY
    assert keeper.run()["scans"] == 3
    assert _count(store, tables.audit) == 4  # 1000 days


def test_the_thread_runs_soon_after_start_and_stops(store: Store) -> None:
    _fill(store, old=2)
    keeper = Housekeeper(store, Retention(), clock=lambda: NOW, first_after=0.05, every=3600)
    keeper.start()
    try:
        deadline = time.monotonic() + 10
        while _count(store, tables.scans) > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        keeper.stop()
    assert _count(store, tables.scans) == 1
