"""The relational store: things, their sources, their latest values, what they announced, and tag scans.

SQLAlchemy Core over SQLite (one file, WAL) or PostgreSQL (several hubs sharing state), through the
same code. Times are float epoch seconds in both dialects: the domain already uses them, they compare
and sort the same everywhere, and SQLite has no native timestamp type to disagree with.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url

from hub.domain.events import Value
from hub.domain.livestate import Announcement, ScanRecord, ThingState, UnmappedField

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_FILE = "hub.sqlite"
#: ecosystem whose identities are the thing ids themselves
NATIVE = "native"
#: ms a SQLite writer waits for another process's lock before failing
BUSY_TIMEOUT_MS = 10_000
#: arbitrary constant naming the PostgreSQL advisory lock that serialises concurrent migrations
_MIGRATION_LOCK = 0x6E_68_75_62
#: ``things.retired_by``: the device withdrew its announcement (a new one brings the thing back)
RETIRED_BY_ANNOUNCEMENT = "announcement"
#: ``things.retired_by``: a resident retired it (only a resident brings it back)
RETIRED_BY_RESIDENT = "resident"

Time = sa.Double
metadata = sa.MetaData()

things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("kind", sa.Text),
    # the ecosystem the thing was first heard through
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("first_seen", Time, nullable=False),
    sa.Column("last_seen", Time, nullable=False),
    sa.Column("online", sa.Boolean),
    # what residents said about it (hub.storage.directory); a row first made by ingest keeps the
    # safe defaults until someone claims it: private, nothing shared with watchers
    sa.Column("visibility", sa.Text, nullable=False, server_default="private"),
    sa.Column("watcher_share", sa.Text, nullable=False, server_default="none"),
    sa.Column("lat", sa.Double),
    sa.Column("lon", sa.Double),
    sa.Column("place", sa.Text),
    sa.Column("derived_from", sa.Text),  # JSON list of measurement names
    sa.Column("created_at", Time),  # when a resident registered it; NULL while unclaimed
    sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()),
    # what the device announced about itself (0004); ``name`` follows the announced name only while
    # nobody has claimed the thing, a resident's name is never overwritten
    sa.Column("announced_name", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("manufacturer", sa.Text),
    sa.Column("sw_version", sa.Text),
    sa.Column("power", sa.Text),  # "mains" | "battery"
    sa.Column("measurements", sa.Text),  # JSON list of canonical names
    sa.Column("attributes", sa.Text),  # JSON object
    sa.Column("announced_by", sa.Text),  # the ecosystem whose announcement it was
    sa.Column("announced_at", Time),
    # NULL or RETIRED_BY_RESIDENT: a resident's decision; RETIRED_BY_ANNOUNCEMENT: the device's
    sa.Column("retired_by", sa.Text),
    # JSON {field path: [last raw value, last seen]}: payload fields no measurement took, at most 64
    sa.Column("unmapped", sa.Text),
)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("ecosystem", sa.Text, primary_key=True),
    sa.Column("identity", sa.Text, primary_key=True),
    sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id", ondelete="CASCADE"), nullable=False),
    sa.Column("first_seen", Time, nullable=False),
    sa.Index("sources_thing", "thing_id"),
)

latest = sa.Table(
    "latest",
    metadata,
    sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("measurement", sa.Text, primary_key=True),
    sa.Column("value_num", sa.Double),
    sa.Column("value_bool", sa.Boolean),
    sa.Column("time", Time, nullable=False),
)

scans = sa.Table(
    "scans",
    metadata,
    # INTEGER PRIMARY KEY on SQLite is the rowid (autoincrementing); BIGINT identity on PostgreSQL
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("reader", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("tag", sa.Text, nullable=False),
    sa.Column("time", Time, nullable=False),
    # when the store took it: differs from ``time`` when a reader's clock is off or scans were queued
    sa.Column("received", Time, nullable=False),
    sa.Index("scans_reader_time", "reader", "time"),
    sa.Index("scans_tag_time", "tag", "time"),
    # a scan's time is the device's or its journaled arrival time, so a redelivered scan is the same row
    sa.UniqueConstraint("reader", "tag", "time", name="scans_once"),
)

# the scans that changed a loan, marked in the transaction that changed it: a scan delivered again
# (the hub was killed before the broker had its acknowledgement) is not handled twice
handled_scans = sa.Table(
    "handled_scans",
    metadata,
    sa.Column("reader", sa.Text, primary_key=True),
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Column("time", Time, primary_key=True),
    sa.Column("loan_id", sa.Text, nullable=False),
    sa.Column("handled_at", Time, nullable=False),
)

# -- people, relations, loans and the audit log (hub.storage.directory) ----------------------------

residents = sa.Table(
    "residents",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("pseudonym", sa.Text, nullable=False),
    # lowercased pseudonym: unique case-insensitively in both dialects
    sa.Column("pseudonym_key", sa.Text, nullable=False, unique=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("real_name", sa.Text),
    sa.Column("joined_at", Time, nullable=False),
    sa.Column("erased", sa.Boolean, nullable=False, server_default=sa.false()),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("value", sa.Text, nullable=False),
)

invites = sa.Table(
    "invites",
    metadata,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("created_by", sa.Text, sa.ForeignKey("residents.id")),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.Column("redeemed_by", sa.Text, sa.ForeignKey("residents.id")),
    sa.Column("redeemed_at", Time),
)

# one table for residents' cards and things' tags, so a tag id can never be both
tags = sa.Table(
    "tags",
    metadata,
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id")),
    sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id")),
    sa.Column("added_at", Time, nullable=False),
    sa.CheckConstraint("(thing_id IS NULL) <> (resident_id IS NULL)", name="tags_thing_xor_card"),
    sa.Index("tags_thing", "thing_id"),
    sa.Index("tags_resident", "resident_id"),
)

loans = sa.Table(
    "loans",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id"), nullable=False),
    sa.Column("borrower", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
    sa.Column("lender", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("start", Time, nullable=False),
    sa.Column("due", Time, nullable=False),
    sa.Column("requested_at", Time, nullable=False),
    sa.Column("out_at", Time),
    sa.Column("returned_at", Time),
    sa.Column("out_reader", sa.Text),
    sa.Column("return_reader", sa.Text),
    sa.Column("damage", sa.Text),
    sa.Index("loans_thing", "thing_id", "start"),
    sa.Index("loans_borrower", "borrower"),
    # two concurrent check-outs of one thing: the database refuses the second
    sa.Index(
        "loans_one_out_per_thing",
        "thing_id",
        unique=True,
        sqlite_where=sa.text("state IN ('out', 'overdue')"),
        postgresql_where=sa.text("state IN ('out', 'overdue')"),
    ),
)

relations = sa.Table(
    "relations",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
    sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("granted_by", sa.Text, sa.ForeignKey("residents.id")),
    sa.Column("valid_from", Time, nullable=False),
    sa.Column("valid_until", Time),
    sa.Column("revoked_at", Time),
    sa.Column("policy", sa.Text),  # JSON LendPolicy, lends
    sa.Column("watch", sa.Text),  # JSON WatchSettings, watches
    sa.Column("loan_id", sa.Text, sa.ForeignKey("loans.id")),  # borrows
    sa.Index("relations_thing", "thing_id"),
    sa.Index("relations_resident", "resident_id"),
    sa.Index("relations_loan", "loan_id"),
)

waitlist = sa.Table(
    "waitlist",
    metadata,
    sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id"), primary_key=True),
    sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
    sa.Column("joined_at", Time, nullable=False),
)

notices = sa.Table(
    "notices",
    metadata,
    sa.Column("loan_id", sa.Text, sa.ForeignKey("loans.id"), primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("sent_at", Time, nullable=False),
)

vouches = sa.Table(
    "vouches",
    metadata,
    sa.Column("from_resident", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
    sa.Column("to_resident", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
    sa.Column("time", Time, nullable=False),
    sa.CheckConstraint("from_resident <> to_resident", name="vouches_not_self"),
    sa.Index("vouches_to", "to_resident"),
)

maintenance = sa.Table(
    "maintenance",
    metadata,
    sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id"), primary_key=True),
    sa.Column("every_days", sa.Double),
    sa.Column("every_hours_used", sa.Double),
    sa.Column("last_done_at", Time),
    sa.Column("last_done_hours", sa.Double),  # the usage counter when it was last done
    sa.Column("hours_used", sa.Double),  # running hours measured from the thing's power readings
    sa.Column("notified_for", sa.Double),  # the last_done_at whose coming due was already announced
)

# append-only: rows are never updated, except ``detail`` anonymised when a resident is erased; rows older
# than storage.retention.audit_days (365) are deleted by the housekeeping (hub/storage/housekeeping.py)
audit = sa.Table(
    "audit",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("time", Time, nullable=False),
    sa.Column("actor", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("thing_id", sa.Text),
    sa.Column("subject", sa.Text),
    sa.Column("detail", sa.Text, nullable=False),  # JSON object of strings
    sa.Index("audit_thing_time", "thing_id", "time"),
    sa.Index("audit_subject_time", "subject", "time"),
    sa.Index("audit_actor_time", "actor", "time"),
)

# -- web sign-in (0003) --------------------------------------------------------------------------------

# one row per resident who set a password; kept apart from ``residents`` so erase removes it whole
credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),  # Argon2id, PHC string
    sa.Column("updated_at", Time, nullable=False),
)

# browser sessions: the cookie carries a random token, the table only its SHA-256
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("last_seen", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.Index("web_sessions_resident", "resident_id"),
)

# personal access tokens for scripts and integrations (shown once; stored as SHA-256)
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("last_used", Time),
    sa.Column("revoked_at", Time),
    sa.Index("api_tokens_resident", "resident_id"),
)

# -- alerts (0003) ---------------------------------------------------------------------------------------

# rules edited by owners and stewards (rules from the config file are not stored)
alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id")),  # NULL: every thing of ``kind``
    sa.Column("kind", sa.Text, nullable=False),  # threshold, rate, boolean, stale, battery, overdue
    sa.Column("params", sa.Text, nullable=False),  # JSON
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_by", sa.Text, sa.ForeignKey("residents.id")),
    sa.Column("created_at", Time, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("rule_id", sa.Text, nullable=False),
    sa.Column("thing_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # active, acknowledged, claimed, cleared
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("value", sa.Double),
    sa.Column("opened_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Column("cleared_at", Time),
    sa.Column("acknowledged_by", sa.Text),
    sa.Column("acknowledged_at", Time),
    sa.Column("claimed_by", sa.Text),
    sa.Column("claimed_at", Time),
    sa.Column("triggers", sa.Integer, nullable=False, server_default="1"),
    sa.Index("alerts_thing_state", "thing_id", "state"),
    sa.Index("alerts_rule_thing", "rule_id", "thing_id"),
)

# the alert's history: opened, re-triggered, acknowledged, claimed, reminded, cleared
alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("alert_id", sa.Text, sa.ForeignKey("alerts.id"), nullable=False),
    sa.Column("time", Time, nullable=False),
    sa.Column("actor", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),  # JSON
    sa.Index("alert_events_alert", "alert_id", "time"),
)

# where a resident wants to hear: apprise URLs, a linked Home Assistant, ...
channels = sa.Table(
    "channels",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # apprise, homeassistant
    sa.Column("target", sa.Text, nullable=False),  # apprise URL, or Home Assistant base URL
    sa.Column("secret", sa.Text),  # a Home Assistant token; never shown, never logged
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("channels_resident", "resident_id"),
)

# the delivery log: one row per (message, addressee, channel), retried with backoff
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("alert_id", sa.Text, sa.ForeignKey("alerts.id")),
    sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id")),
    sa.Column("channel", sa.Text, nullable=False),  # mqtt, web, homeassistant, apprise:<channel id>
    sa.Column("message", sa.Text, nullable=False),  # opened, reminder, cleared, ...
    sa.Column("state", sa.Text, nullable=False),  # pending, sent, failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Time),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("sent_at", Time),
    sa.Index("deliveries_due", "state", "next_attempt_at"),
    sa.Index("deliveries_alert", "alert_id"),
)

# -- residents' Home Assistant as a source of readings (0006, hub.storage.halinks) -----------------------

# one link per resident; the token is never shown or logged, and unlinking deletes the row
ha_links = sa.Table(
    "ha_links",
    metadata,
    sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),  # the instance's base URL
    sa.Column("token", sa.Text, nullable=False),  # a long-lived access token
    sa.Column("created_at", Time, nullable=False),
)

# the entities a resident shares, each recorded as a thing they own
ha_shares = sa.Table(
    "ha_shares",
    metadata,
    sa.Column("resident_id", sa.Text, sa.ForeignKey("ha_links.resident_id"), primary_key=True),
    sa.Column("entity_id", sa.Text, primary_key=True),
    sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id"), nullable=False, unique=True),
    sa.Column("measurement", sa.Text, nullable=False),  # the canonical name chosen when shared
    sa.Column("invert", sa.Boolean, nullable=False, server_default=sa.false()),  # on = open doors
    sa.Column("created_at", Time, nullable=False),
)


class StoreError(Exception):
    """The store cannot be opened or reached; the message says what to do."""


class Store:
    """Things, sources, latest values and scans in SQLite or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = _normalise(make_url(url))
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            self._engine = _sqlite_engine(self.url)
        elif self.dialect == "postgresql":
            self._engine = _postgres_engine(self.url)
        else:
            raise StoreError(
                f"storage.url: unsupported database {self.dialect!r}; use a directory path, "
                "sqlite:///FILE or postgresql://USER@HOST/DATABASE"
            )
        self._insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert

    @classmethod
    def open(cls, path_or_url: str | os.PathLike[str]) -> Store:
        """A store from ``storage.path`` (a directory, holding ``hub.sqlite``) or ``storage.url``."""
        text = os.fspath(path_or_url)
        if "://" in text:
            return cls(text)
        directory = Path(text).expanduser().absolute()
        _ensure_writable_directory(directory)
        return cls(str(URL.create("sqlite", database=str(directory / SQLITE_FILE))))

    # -- life ------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest revision (``alembic upgrade head``); a no-op when current."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._begin() as conn:
            if self.dialect == "postgresql":
                # two hubs starting together must not both create the tables
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except exc.SQLAlchemyError:
            return False

    def close(self) -> None:
        self._engine.dispose()

    # -- writes ----------------------------------------------------------------------------------

    def apply(
        self,
        things_: Sequence[ThingState],
        scans_: Sequence[ScanRecord],
        *,
        announced: Sequence[ThingState] = (),
        unmapped: Mapping[str, Mapping[str, UnmappedField]] | None = None,
    ) -> None:
        """Store changed things (with their sources and latest values), new scans, changed announcements
        and unmapped fields in one transaction.

        first_seen keeps the earliest, last_seen the latest, online changes only when given, and a
        latest value is replaced only by a newer one (or a different one at the same time). An
        announcement updates the thing's registry entry and brings back a thing its device had retired;
        a withdrawn one retires it (see ``_announce``). Announced things must exist already, or be among
        ``things_``.
        """
        unique = {s.id: s for s in things_}
        # a fixed order keeps concurrent writers from deadlocking on PostgreSQL
        ordered = [unique[k] for k in sorted(unique)]
        thing_rows = [
            {
                "id": s.id,
                "source": s.source,
                "first_seen": s.first_seen,
                "last_seen": s.last_seen,
                "online": s.online,
            }
            for s in ordered
        ]
        source_rows = [
            {"ecosystem": s.source, "identity": s.id, "thing_id": s.id, "first_seen": s.first_seen}
            for s in ordered
        ]
        latest_rows = [
            _latest_row(s.id, name, value, s.times.get(name, s.last_seen))
            for s in ordered
            for name, value in s.values.items()
            if _storable(value)
        ]
        received = time.time()
        scan_rows = [
            {"reader": r.reader, "source": r.source, "tag": r.tag, "time": r.time, "received": received}
            for r in scans_
        ]
        with self._begin() as conn:
            if thing_rows:
                conn.execute(self._upsert_things(), thing_rows)
                conn.execute(self._upsert_sources(), source_rows)
            self._announce(conn, announced)
            if unmapped:
                rows = [
                    {"b_id": thing, "b_unmapped": _unmapped_json(fields)}
                    for thing, fields in sorted(unmapped.items())
                ]
                conn.execute(
                    sa.update(things)
                    .where(things.c.id == sa.bindparam("b_id"))
                    .values(unmapped=sa.bindparam("b_unmapped")),
                    rows,
                )
            if latest_rows:
                conn.execute(self._upsert_latest(), latest_rows)
            if scan_rows:  # a redelivered scan is the same (reader, tag, time): stored once
                conn.execute(self._insert(scans).on_conflict_do_nothing(), scan_rows)

    def _announce(self, conn: Connection, states: Sequence[ThingState]) -> None:
        """Write announcements and withdrawals, in batches (a retained inventory brings thousands)."""
        t = things
        ordered = sorted(states, key=lambda s: s.id)
        withdrawn = [{"b_id": s.id} for s in ordered if s.withdrawn]
        announced = [_announcement_row(s.id, s.announced) for s in ordered if not s.withdrawn and s.announced]
        if announced:
            by_device = t.c.retired_by == RETIRED_BY_ANNOUNCEMENT
            conn.execute(
                sa.update(t)
                .where(t.c.id == sa.bindparam("b_id"))
                .values(
                    # an unclaimed thing goes by the name its device gives; a claimed one keeps its own
                    name=sa.case(
                        (t.c.created_at.is_(None), sa.func.coalesce(sa.bindparam("b_name"), t.c.name)),
                        else_=t.c.name,
                    ),
                    announced_name=sa.bindparam("b_name"),
                    model=sa.bindparam("b_model"),
                    manufacturer=sa.bindparam("b_manufacturer"),
                    sw_version=sa.bindparam("b_sw_version"),
                    power=sa.bindparam("b_power"),
                    measurements=sa.bindparam("b_measurements"),
                    attributes=sa.bindparam("b_attributes"),
                    announced_by=sa.bindparam("b_announced_by"),
                    announced_at=sa.bindparam("b_announced_at"),
                    # announced again: back, unless a resident retired it
                    retired=sa.case((by_device, sa.false()), else_=t.c.retired),
                    retired_by=sa.case((by_device, sa.null()), else_=t.c.retired_by),
                ),
                announced,
            )
        if withdrawn:
            conn.execute(
                sa.update(t)
                .where(t.c.id == sa.bindparam("b_id"), t.c.retired == sa.false())
                .values(retired=True, retired_by=RETIRED_BY_ANNOUNCEMENT),
                withdrawn,
            )

    def _upsert_things(self) -> Any:
        stmt = self._insert(things)
        new, old = stmt.excluded, things.c
        earliest = sa.case((new.first_seen < old.first_seen, new.first_seen), else_=old.first_seen)
        return stmt.on_conflict_do_update(
            index_elements=[old.id],
            set_={
                "first_seen": earliest,
                "last_seen": sa.case((new.last_seen > old.last_seen, new.last_seen), else_=old.last_seen),
                "online": sa.func.coalesce(new.online, old.online),
            },
        )

    def _upsert_sources(self) -> Any:
        stmt = self._insert(sources)
        new, old = stmt.excluded, sources.c
        # nothing is written for an already-known source unless it was seen earlier than recorded
        return stmt.on_conflict_do_update(
            index_elements=[old.ecosystem, old.identity],
            set_={"first_seen": new.first_seen},
            where=new.first_seen < old.first_seen,
        )

    def _upsert_latest(self) -> Any:
        stmt = self._insert(latest)
        new, old = stmt.excluded, latest.c
        changed = sa.or_(
            new.value_num.is_distinct_from(old.value_num), new.value_bool.is_distinct_from(old.value_bool)
        )
        # an unchanged value is not rewritten: the flusher sends every value of a changed thing
        return stmt.on_conflict_do_update(
            index_elements=[old.thing_id, old.measurement],
            set_={"value_num": new.value_num, "value_bool": new.value_bool, "time": new.time},
            where=sa.or_(new.time > old.time, sa.and_(new.time == old.time, changed)),
        )

    # -- reads -----------------------------------------------------------------------------------

    def load_things(self) -> list[ThingState]:
        """Every thing with its latest values and their times, sorted by id (to prime the live state)."""
        with self._begin() as conn:
            rows = conn.execute(sa.select(things).order_by(things.c.id)).all()
            values = conn.execute(sa.select(latest)).all()
        states = {r.id: _state(r) for r in rows}
        for v in values:
            state = states.get(v.thing_id)
            if state is not None:
                state.values[v.measurement] = _value(v)
                state.times[v.measurement] = v.time
        return list(states.values())

    def load_unmapped(self) -> dict[str, dict[str, UnmappedField]]:
        """Every thing's unmapped fields (to prime the live state)."""
        query = sa.select(things.c.id, things.c.unmapped).where(things.c.unmapped.is_not(None))
        with self._begin() as conn:
            return {row.id: _unmapped(row.unmapped) for row in conn.execute(query)}

    def thing(self, thing_id: str) -> ThingState | None:
        """One thing with its latest values, or None when it was never seen."""
        with self._begin() as conn:
            row = conn.execute(sa.select(things).where(things.c.id == thing_id)).first()
            if row is None:
                return None
            values = conn.execute(sa.select(latest).where(latest.c.thing_id == thing_id)).all()
        state = _state(row)
        for v in values:
            state.values[v.measurement] = _value(v)
            state.times[v.measurement] = v.time
        return state

    def recent_scans(self, limit: int = 50, reader: str | None = None) -> list[ScanRecord]:
        """The newest scans first, optionally of one reader."""
        query = sa.select(scans.c.reader, scans.c.source, scans.c.tag, scans.c.time)
        if reader is not None:
            query = query.where(scans.c.reader == reader)
        query = query.order_by(scans.c.time.desc(), scans.c.id.desc()).limit(limit)
        with self._begin() as conn:
            return [ScanRecord(r.reader, r.source, r.tag, r.time) for r in conn.execute(query)]

    def count_scans(self) -> int:
        with self._begin() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(scans)).scalar_one())

    # -- connections -----------------------------------------------------------------------------

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            conn = self._engine.connect()
        except exc.DBAPIError as e:
            raise StoreError(self._explain(e)) from e
        with conn, conn.begin():
            yield conn

    def _explain(self, error: exc.DBAPIError) -> str:
        detail = str(error.orig).strip().splitlines()[-1] if error.orig else str(error)
        if self.dialect == "sqlite":
            return f"cannot open SQLite database {self.url.database}: {detail} (storage.path)"
        where = f"PostgreSQL at {self.url.host or 'localhost'}:{self.url.port or 5432}"
        text = str(error.orig).lower()
        if "refused" in text:
            return f"{where} refused the connection (storage.url): is PostgreSQL running and listening there?"
        if "timeout" in text or "timed out" in text:
            return f"{where} did not answer in time (storage.url): check the host, the port and the firewall"
        if "authentication" in text or "password" in text:
            return f"{where} rejected the credentials (storage.url): check the user name and password"
        if "does not exist" in text:
            return f"{where}: {detail} (storage.url): create it or correct the URL"
        return f"{where} could not be reached (storage.url): {detail}"

    def _describe(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Store({self._describe()!r})"


def _normalise(url: URL) -> URL:
    # "postgresql://" means psycopg2 to SQLAlchemy; the hub ships psycopg (3)
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        _ensure_writable_directory(Path(url.database).absolute().parent)
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return engine


def _postgres_engine(url: URL) -> Engine:
    try:
        import psycopg  # noqa: F401
    except ImportError as e:
        raise StoreError(
            "storage.url names PostgreSQL, which needs psycopg: pip install 'neighborhood-hub[postgres]'"
        ) from e
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _ensure_writable_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise StoreError(f"cannot create the storage directory {directory}: {reason} (storage.path)") from e
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreError(
            f"the storage directory {directory} is not writable by this user (storage.path): "
            "fix its owner or permissions, or choose another path"
        )


def _storable(value: Value) -> bool:
    return isinstance(value, bool) or math.isfinite(value)


def _latest_row(thing_id: str, name: str, value: Value, at: float) -> dict[str, Any]:
    is_bool = isinstance(value, bool)
    return {
        "thing_id": thing_id,
        "measurement": name,
        "value_num": None if is_bool else float(value),
        "value_bool": value if is_bool else None,
        "time": at,
    }


def _value(row: Any) -> Value:
    return bool(row.value_bool) if row.value_bool is not None else float(row.value_num)


def _state(row: Any) -> ThingState:
    state = ThingState(row.id, row.source, row.first_seen, row.last_seen, row.online)
    if row.announced_by is not None:
        state.announced = Announcement(
            row.announced_by,
            row.announced_name,
            row.model,
            row.manufacturer,
            row.sw_version,
            row.power,
            tuple(json.loads(row.measurements)) if row.measurements else (),
            json.loads(row.attributes) if row.attributes else {},
            row.announced_at or 0.0,
        )
    state.withdrawn = bool(row.retired) and row.retired_by == RETIRED_BY_ANNOUNCEMENT
    return state


def _announcement_row(thing_id: str, a: Announcement | None) -> dict[str, Any]:
    assert a is not None
    return {
        "b_id": thing_id,
        "b_name": a.name,
        "b_model": a.model,
        "b_manufacturer": a.manufacturer,
        "b_sw_version": a.sw_version,
        "b_power": a.power,
        "b_measurements": json.dumps(list(a.measurements)),
        "b_attributes": json.dumps(a.attributes, default=str),
        "b_announced_by": a.source,
        "b_announced_at": a.at,
    }


def _unmapped_json(fields: Mapping[str, UnmappedField]) -> str:
    return json.dumps({path: [f.raw, f.last_seen] for path, f in sorted(fields.items())})


def _unmapped(text: str) -> dict[str, UnmappedField]:
    """Unmapped fields as stored; a row that does not read as such yields none (never a failed start)."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, UnmappedField] = {}
    for path, entry in data.items():
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], int | float):
            out[str(path)] = UnmappedField(entry[0], float(entry[1]))
    return out
