"""Retention for the relational tables that grow with use: old scans, the audit log, the delivery log,
the history of cleared alerts, and expired browser sessions.

Limits come from ``storage.retention`` (days; defaults: scans 90, audit 365, deliveries 30, alert
events 365). What goes, once it is older than its limit:

- ``scans``: by the time the store received them, and the marks of handled scans by when they were
  handled (the same limit);
- ``audit``: entries by their time (erasure has already cut personal data out of them);
- ``deliveries``: sent or failed ones by their creation time; a pending delivery stays until it is done;
- ``alert_events``: the history of cleared alerts by its time, and a cleared alert itself (with its
  deliveries) once it was cleared that long ago; an open alert keeps all of its history;
- ``web_sessions``: every session past its expiry.

Loans, relations, vouches and things are facts the lending and trust records rest on and are kept.
Deletes go in batches of ``batch`` rows, one short transaction each, so the ingest writer and web
requests are never held up for long. The hub runs this once an hour on its own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from prometheus_client import Counter

from hub.storage import store as tables
from hub.storage.store import Store, StoreError
from hub.telemetry import Telemetry

log = logging.getLogger(__name__)

DAY = 86400.0
#: rows deleted per transaction
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Retention:
    """Days each kind of row is kept."""

    scans_days: float = 90.0
    audit_days: float = 365.0
    deliveries_days: float = 30.0
    alert_events_days: float = 365.0


class Housekeeper:
    """Deletes what ``retention`` no longer keeps: ``run(now)`` once, or ``start()`` a thread that runs
    it ``first_after`` seconds after the start and every ``every`` seconds after that."""

    def __init__(
        self,
        store: Store,
        retention: Retention,
        *,
        telemetry: Telemetry | None = None,
        clock: Callable[[], float] = time.time,
        every: float = 3600.0,
        first_after: float = 60.0,
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self.retention = retention
        self.clock = clock
        self.every = every
        self.first_after = first_after
        self.batch = batch
        self._deleted = (
            Counter(
                "hub_retention_deleted",
                "Rows of the relational store deleted by retention, by table",
                ["table"],
                registry=telemetry.registry,
            )
            if telemetry is not None
            else None
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass -----------------------------------------------------------------------------------

    def run(self, now: float | None = None) -> dict[str, int]:
        """Delete everything past its limit at ``now`` (default: the clock); rows deleted per table."""
        now = self.clock() if now is None else now
        r = self.retention
        s, hs, a, d = tables.scans, tables.handled_scans, tables.audit, tables.deliveries
        al, ev, ws = tables.alerts, tables.alert_events, tables.web_sessions
        cleared_before = now - r.alert_events_days * DAY
        old_cleared = sa.select(al.c.id).where(al.c.state == "cleared", al.c.cleared_at < cleared_before)
        done = {
            "scans": self._delete(s, s.c.id, s.c.received < now - r.scans_days * DAY),
            "handled_scans": self._delete(hs, hs.c.handled_at, hs.c.handled_at < now - r.scans_days * DAY),
            "audit": self._delete(a, a.c.id, a.c.time < now - r.audit_days * DAY),
            "deliveries": self._delete(
                d, d.c.id, sa.and_(d.c.state != "pending", d.c.created_at < now - r.deliveries_days * DAY)
            ),
            "alert_events": self._delete(
                ev,
                ev.c.id,
                sa.and_(
                    ev.c.time < cleared_before,
                    ev.c.alert_id.in_(sa.select(al.c.id).where(al.c.state == "cleared")),
                ),
            ),
            "web_sessions": self._delete(ws, ws.c.token_hash, ws.c.expires_at <= now),
        }
        # a cleared alert long gone: its remaining history and deliveries first (they refer to it)
        done["alert_events"] += self._delete(ev, ev.c.id, ev.c.alert_id.in_(old_cleared))
        done["deliveries"] += self._delete(d, d.c.id, d.c.alert_id.in_(old_cleared))
        done["alerts"] = self._delete(al, al.c.id, al.c.id.in_(old_cleared))
        for table, count in done.items():
            if count and self._deleted is not None:
                self._deleted.labels(table).inc(count)
        if any(done.values()):
            log.info(
                "retention deleted %s", " ".join(f"{table}={count}" for table, count in done.items() if count)
            )
        return done

    def _delete(self, table: sa.Table, key: sa.Column[object], where: sa.ColumnElement[bool]) -> int:
        total = 0
        while True:
            batch = sa.select(key).where(where).limit(self.batch).scalar_subquery()
            with self.store._begin() as conn:
                count = int(conn.execute(sa.delete(table).where(key.in_(batch))).rowcount)
            total += count
            if count < self.batch:
                return total

    # -- life ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _loop(self) -> None:
        wait = self.first_after
        while not self._stop.wait(wait):
            wait = self.every
            try:
                self.run()
            except StoreError as exc:
                log.warning("retention skipped this hour: %s", exc)
            except Exception:  # never let housekeeping take the hub down; the next hour tries again
                log.exception("retention failed")
