"""Alerts, their history, residents' notification channels, rules added on the web and the delivery log
in the relational store.

SQLAlchemy Core on the store's engine, the same code on SQLite and PostgreSQL. The alert engine decides;
this module only keeps what it decided. Channel secrets (a Home Assistant token, credentials inside an
apprise URL) leave this module only wrapped in :class:`Secret`, whose repr and str never show them.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.storage import store as tables
from hub.storage.store import Store

#: alert states in which an alert is still open
OPEN_STATES = ("active", "acknowledged", "claimed")
ALERT_STATES = (*OPEN_STATES, "cleared")
CHANNEL_KINDS = ("apprise", "homeassistant")
PENDING, SENT, FAILED = "pending", "sent", "failed"
#: longest error text kept in the delivery log
ERROR_LIMIT = 500
MASK = "****"

_CHANNEL_NAME = re.compile(r"[a-z]+(:[A-Za-z0-9_-]+)?")


class AlertStoreError(Exception):
    """A request the alert store refuses; ``reason`` is a stable code, the message says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Secret:
    """A credential that never shows itself in repr, str, logs or f-strings; ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as the engine last decided it; ``thing`` is the thing id, pseudonyms are resident ids."""

    id: str
    rule_id: str
    thing: str
    kind: str
    severity: str
    state: str
    message: str
    opened_at: float
    updated_at: float
    value: float | None = None
    cleared_at: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    claimed_by: str | None = None
    claimed_at: float | None = None
    triggers: int = 1


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One line of an alert's history: opened, retriggered, acknowledged, claimed, reminded, cleared, ..."""

    id: int
    alert_id: str
    time: float
    action: str
    actor: str | None
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RuleRecord:
    """A rule kept in ``alert_rules``: ``data`` is ``rule_to_dict`` of it (``rule_from_dict`` reads it)."""

    id: str
    thing: str | None
    kind: str
    severity: str
    data: Mapping[str, Any]
    enabled: bool
    created_by: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Channel:
    """A resident's channel as it may be listed: credentials in the target masked, the secret never shown."""

    id: str
    resident: str
    kind: str
    target: str
    enabled: bool
    created_at: float
    has_secret: bool


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to send, for the dispatcher: the full target and secret, each wrapped so they never print."""

    channel_id: str
    resident: str
    kind: str
    target: Secret
    secret: Secret | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the delivery log: a message of kind ``message`` to one resident over one channel."""

    id: int
    alert_id: str | None
    resident: str | None
    channel: str
    message: str
    state: str
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    created_at: float
    sent_at: float | None

    @property
    def channel_kind(self) -> str:
        """``apprise`` for ``apprise:<channel id>``, ``mqtt`` for ``mqtt``."""
        return self.channel.partition(":")[0]


def mask_target(kind: str, target: str) -> str:
    """A channel target fit to show: an apprise URL with its credentials masked, a plain URL without userinfo.

    Apprise knows where each service keeps its secrets (a Telegram bot token sits in the path, an ntfy
    password in the userinfo), so its own privacy rendering is used; a URL it cannot parse shows only
    its scheme.
    """
    if kind == "apprise":
        import apprise  # imported here: loading its plugins is slow and only channel listings need it

        plugin = apprise.Apprise.instantiate(target)
        if plugin is not None:
            shown = str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
            # a bare user part is often a token (ntfy://TOKEN@host/topic), which apprise shows as is
            parts = urlsplit(shown)
            if parts.username and parts.password is None:
                host = parts.netloc.rpartition("@")[2]
                return parts._replace(netloc=f"{MASK}@{host}").geturl()
            return shown
        scheme = target.split("://", 1)[0] if "://" in target else "?"
        return f"{scheme}://{MASK}"
    parts = urlsplit(target)
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc, query="", fragment="").geturl()
    return parts._replace(query="", fragment="").geturl()


class AlertStore:
    """Alerts, alert history, channels and deliveries in the hub's relational store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- alerts ----------------------------------------------------------------------------------

    def upsert_alert(self, alert: AlertRecord) -> bool:
        """Insert or update an alert; False when the stored row is newer (an older decision never wins).

        ``rule_id``, ``thing``, ``kind`` and ``opened_at`` are kept from the first insert.
        """
        _check_alert(alert)
        with self._tx() as conn:
            return self._upsert(conn, alert)

    def record(
        self,
        alert: AlertRecord,
        action: str,
        *,
        time: float,
        actor: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Upsert an alert and append a history line in one transaction; the event id, None when stale."""
        _check_alert(alert)
        with self._tx() as conn:
            if not self._upsert(conn, alert):
                return None
            return self._append(conn, alert.id, time, action, actor, detail)

    def append_event(
        self,
        alert_id: str,
        action: str,
        *,
        time: float,
        actor: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one line to an alert's history (never updated; housekeeping deletes it); its id."""
        with self._tx() as conn:
            return self._append(conn, alert_id, time, action, actor, detail)

    def alert(self, alert_id: str) -> AlertRecord | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(tables.alerts).where(tables.alerts.c.id == alert_id)).first()
        return None if row is None else _alert(row)

    def open_alert(self, rule_id: str, thing: str) -> AlertRecord | None:
        """The open alert a rule raised on a thing, if any: a re-trigger updates it instead of a new one."""
        a = tables.alerts
        query = (
            sa.select(a)
            .where(a.c.rule_id == rule_id, a.c.thing_id == thing, a.c.state.in_(OPEN_STATES))
            .order_by(a.c.opened_at.desc())
            .limit(1)
        )
        with self._tx() as conn:
            row = conn.execute(query).first()
        return None if row is None else _alert(row)

    def active_alerts(self, thing: str | None = None) -> list[AlertRecord]:
        """Open alerts (active, acknowledged, claimed), oldest first, optionally of one thing."""
        a = tables.alerts
        query = sa.select(a).where(a.c.state.in_(OPEN_STATES))
        if thing is not None:
            query = query.where(a.c.thing_id == thing)
        with self._tx() as conn:
            rows = conn.execute(query.order_by(a.c.opened_at, a.c.id)).all()
        return [_alert(r) for r in rows]

    def alerts(
        self, *, thing: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[AlertRecord]:
        """Alerts in any state, newest update first (the alert history page)."""
        a = tables.alerts
        query = sa.select(a)
        if thing is not None:
            query = query.where(a.c.thing_id == thing)
        if since is not None:
            query = query.where(a.c.updated_at >= since)
        with self._tx() as conn:
            rows = conn.execute(query.order_by(a.c.updated_at.desc(), a.c.id).limit(limit)).all()
        return [_alert(r) for r in rows]

    def history(self, alert_id: str) -> list[AlertEvent]:
        """An alert's history in the order it happened."""
        e = tables.alert_events
        query = sa.select(e).where(e.c.alert_id == alert_id).order_by(e.c.time, e.c.id)
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [
            AlertEvent(r.id, r.alert_id, r.time, r.action, r.actor, json.loads(r.detail) if r.detail else {})
            for r in rows
        ]

    # -- rules -----------------------------------------------------------------------------------

    def add_rule(
        self, data: Mapping[str, Any], *, created_by: str | None, now: float, enabled: bool = True
    ) -> RuleRecord:
        """Keep a rule given as ``rule_to_dict`` data (already validated); its ``id`` must be new."""
        rule_id, kind, severity = _rule_keys(data)
        row = {
            "id": rule_id,
            "thing_id": data.get("thing"),
            "kind": kind,
            "params": _params(data),
            "severity": severity,
            "enabled": enabled,
            "created_by": created_by,
            "created_at": now,
        }
        r = tables.alert_rules
        with self._tx() as conn:
            if conn.execute(sa.select(r.c.id).where(r.c.id == rule_id)).first() is not None:
                raise AlertStoreError("rule.id", f"there is already an alert rule with the id {rule_id!r}")
            conn.execute(sa.insert(r).values(**row))
        return _rule(row)

    def update_rule(
        self, rule_id: str, data: Mapping[str, Any] | None = None, *, enabled: bool | None = None
    ) -> RuleRecord | None:
        """Replace a stored rule's terms (id, thing and kind stay) or turn it on or off; None if unknown."""
        r = tables.alert_rules
        values: dict[str, Any] = {}
        if data is not None:
            _, kind, severity = _rule_keys(data)
            same = (data.get("id"), data.get("thing"), kind)
            values.update(params=_params(data), severity=severity)
        if enabled is not None:
            values["enabled"] = enabled
        with self._tx() as conn:
            row = conn.execute(sa.select(r).where(r.c.id == rule_id)).first()
            if row is None:
                return None
            if data is not None and same != (rule_id, row.thing_id, row.kind):
                raise AlertStoreError("rule.id", "a stored rule keeps its id, thing and kind; add a new one")
            if values:
                conn.execute(sa.update(r).where(r.c.id == rule_id).values(**values))
            row = conn.execute(sa.select(r).where(r.c.id == rule_id)).one()
        return _rule(row._mapping)

    def delete_rule(self, rule_id: str) -> bool:
        """Remove a stored rule; False when there is none with this id."""
        r = tables.alert_rules
        with self._tx() as conn:
            return conn.execute(sa.delete(r).where(r.c.id == rule_id)).rowcount > 0

    def rules(self, *, thing: str | None = None, enabled_only: bool = False) -> list[RuleRecord]:
        """Stored rules, oldest first, all or one thing's; ``enabled_only`` leaves out disabled ones."""
        r = tables.alert_rules
        query = sa.select(r)
        if thing is not None:
            query = query.where(r.c.thing_id == thing)
        if enabled_only:
            query = query.where(r.c.enabled)
        with self._tx() as conn:
            rows = conn.execute(query.order_by(r.c.created_at, r.c.id)).all()
        return [_rule(row._mapping) for row in rows]

    # -- channels --------------------------------------------------------------------------------

    def add_channel(
        self, resident: str, kind: str, target: str, secret: str | None = None, *, now: float
    ) -> Channel:
        """A new enabled channel for a resident: an apprise URL, or a Home Assistant base URL and token."""
        target = target.strip()
        if kind not in CHANNEL_KINDS:
            raise AlertStoreError(
                "channel.kind", f"unknown channel kind {kind!r}: use one of {', '.join(CHANNEL_KINDS)}"
            )
        if kind == "apprise":
            if mask_target(kind, target).endswith(f"://{MASK}"):
                raise AlertStoreError(
                    "channel.target",
                    "apprise does not recognise this URL: see https://github.com/caronc/apprise/wiki "
                    "for the form of each service's URL (ntfy://, mailto://, matrix://, tgram://, ...)",
                )
        else:
            parts = urlsplit(target)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise AlertStoreError(
                    "channel.target",
                    "a Home Assistant channel needs its base URL, such as http://homeassistant.local:8123",
                )
            if parts.username is not None or parts.password is not None:
                raise AlertStoreError(
                    "channel.target", "put the Home Assistant token in the token field, not in the URL"
                )
            if not secret or not secret.strip():
                raise AlertStoreError(
                    "channel.secret",
                    "a Home Assistant channel needs a long-lived access token "
                    "(Home Assistant: your profile, Security, Long-lived access tokens)",
                )
        channel_id = secrets.token_urlsafe(8)
        row = {
            "id": channel_id,
            "resident_id": resident,
            "kind": kind,
            "target": target,
            "secret": secret.strip() if secret else None,
            "enabled": True,
            "created_at": now,
        }
        with self._tx() as conn:
            conn.execute(sa.insert(tables.channels).values(**row))
        return Channel(channel_id, resident, kind, mask_target(kind, target), True, now, bool(secret))

    def list_channels(self, resident: str) -> list[Channel]:
        """A resident's channels, oldest first, fit to show: credentials masked, secrets absent."""
        c = tables.channels
        query = sa.select(c).where(c.c.resident_id == resident).order_by(c.c.created_at, c.c.id)
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [
            Channel(
                r.id,
                r.resident_id,
                r.kind,
                mask_target(r.kind, r.target),
                bool(r.enabled),
                r.created_at,
                r.secret is not None,
            )
            for r in rows
        ]

    def endpoint(self, channel_id: str) -> Endpoint | None:
        """One channel with its full target and secret (wrapped), for sending."""
        with self._tx() as conn:
            row = conn.execute(sa.select(tables.channels).where(tables.channels.c.id == channel_id)).first()
        return None if row is None else _endpoint(row)

    def endpoints(self, resident: str) -> list[Endpoint]:
        """A resident's enabled channels with full targets and secrets (wrapped), for fanning out."""
        c = tables.channels
        query = sa.select(c).where(c.c.resident_id == resident, c.c.enabled).order_by(c.c.created_at, c.c.id)
        with self._tx() as conn:
            return [_endpoint(r) for r in conn.execute(query).all()]

    def set_channel_enabled(self, channel_id: str, enabled: bool) -> bool:
        """Turn a channel on or off (a rejected token turns it off until relinked); False if unknown."""
        c = tables.channels
        with self._tx() as conn:
            done = conn.execute(sa.update(c).where(c.c.id == channel_id).values(enabled=enabled))
        return done.rowcount > 0

    def remove_channel(self, channel_id: str, resident: str) -> bool:
        """Remove one of a resident's channels; False when it is not theirs or does not exist."""
        c = tables.channels
        with self._tx() as conn:
            done = conn.execute(sa.delete(c).where(c.c.id == channel_id, c.c.resident_id == resident))
        return done.rowcount > 0

    def erase_resident(self, resident: str) -> int:
        """Remove every channel of an erased resident (targets and tokens are personal data); how many.

        The delivery log keeps its rows: they name a channel id and a message kind, not an address.
        """
        c = tables.channels
        with self._tx() as conn:
            return int(conn.execute(sa.delete(c).where(c.c.resident_id == resident)).rowcount)

    # -- the delivery log ------------------------------------------------------------------------

    def enqueue(
        self, alert_id: str | None, resident: str | None, channel: str, message: str, *, now: float
    ) -> int:
        """A pending delivery, due now; its id. ``channel``: ``mqtt``, ``web`` or ``<kind>:<channel id>``."""
        if not _CHANNEL_NAME.fullmatch(channel):
            raise AlertStoreError(
                "delivery.channel", f"delivery channel {channel!r} is not 'mqtt', 'web' or '<kind>:<id>'"
            )
        row = {
            "alert_id": alert_id,
            "resident_id": resident,
            "channel": channel,
            "message": message,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        with self._tx() as conn:
            inserted = conn.execute(
                sa.insert(tables.deliveries).values(**row).returning(tables.deliveries.c.id)
            )
            return int(inserted.scalar_one())

    def due(self, now: float, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, the most overdue first."""
        d = tables.deliveries
        query = (
            sa.select(d)
            .where(d.c.state == PENDING, d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(limit)
        )
        with self._tx() as conn:
            return [_delivery(r) for r in conn.execute(query).all()]

    def mark_sent(self, delivery_id: int, now: float) -> None:
        """One attempt that succeeded."""
        d = tables.deliveries
        with self._tx() as conn:
            conn.execute(
                sa.update(d)
                .where(d.c.id == delivery_id)
                .values(state=SENT, attempts=d.c.attempts + 1, sent_at=now, next_attempt_at=None)
            )

    def mark_failed(self, delivery_id: int, error: str, now: float, next_attempt_at: float | None) -> None:
        """One attempt that failed: pending again at ``next_attempt_at``, or failed for good when it is None.

        ``now`` is the attempt's time; the table keeps no column for it, the next attempt implies it.
        """
        d = tables.deliveries
        values: dict[str, Any] = {
            "attempts": d.c.attempts + 1,
            "last_error": error[:ERROR_LIMIT],
            "next_attempt_at": next_attempt_at,
            "state": PENDING if next_attempt_at is not None else FAILED,
        }
        with self._tx() as conn:
            conn.execute(sa.update(d).where(d.c.id == delivery_id).values(**values))

    def delivery(self, delivery_id: int) -> Delivery | None:
        d = tables.deliveries
        with self._tx() as conn:
            row = conn.execute(sa.select(d).where(d.c.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def deliveries(self, alert_id: str) -> list[Delivery]:
        """Every delivery of an alert, in the order they were enqueued."""
        d = tables.deliveries
        query = sa.select(d).where(d.c.alert_id == alert_id).order_by(d.c.created_at, d.c.id)
        with self._tx() as conn:
            return [_delivery(r) for r in conn.execute(query).all()]

    # -- internals -------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        # the store's connection handling names the database in its errors
        with self.store._begin() as conn:
            yield conn

    def _upsert(self, conn: Connection, alert: AlertRecord) -> bool:
        a = tables.alerts
        row = {
            "id": alert.id,
            "rule_id": alert.rule_id,
            "thing_id": alert.thing,
            "kind": alert.kind,
            "severity": alert.severity,
            "state": alert.state,
            "message": alert.message,
            "value": alert.value,
            "opened_at": alert.opened_at,
            "updated_at": alert.updated_at,
            "cleared_at": alert.cleared_at,
            "acknowledged_by": alert.acknowledged_by,
            "acknowledged_at": alert.acknowledged_at,
            "claimed_by": alert.claimed_by,
            "claimed_at": alert.claimed_at,
            "triggers": alert.triggers,
        }
        stmt = self.store._insert(a).values(**row)
        mutable = (
            "severity",
            "state",
            "message",
            "value",
            "updated_at",
            "cleared_at",
            "acknowledged_by",
            "acknowledged_at",
            "claimed_by",
            "claimed_at",
            "triggers",
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[a.c.id],
            set_={name: stmt.excluded[name] for name in mutable},
            where=stmt.excluded.updated_at >= a.c.updated_at,
        )
        # RETURNING, not rowcount: psycopg reports no row count for an upsert that went either way
        return conn.execute(stmt.returning(a.c.id)).first() is not None

    def _append(
        self,
        conn: Connection,
        alert_id: str,
        time: float,
        action: str,
        actor: str | None,
        detail: Mapping[str, Any] | None,
    ) -> int:
        e = tables.alert_events
        text = json.dumps(dict(detail), ensure_ascii=False, sort_keys=True) if detail else None
        stmt = sa.insert(e).values(alert_id=alert_id, time=time, actor=actor, action=action, detail=text)
        return int(conn.execute(stmt.returning(e.c.id)).scalar_one())

    def __repr__(self) -> str:
        return f"AlertStore({self.store!r})"


def _check_alert(alert: AlertRecord) -> None:
    if alert.state not in ALERT_STATES:
        raise AlertStoreError(
            "alert.state", f"alert state {alert.state!r} is not one of {', '.join(ALERT_STATES)}"
        )


def _alert(r: Any) -> AlertRecord:
    return AlertRecord(
        id=r.id,
        rule_id=r.rule_id,
        thing=r.thing_id,
        kind=r.kind,
        severity=r.severity,
        state=r.state,
        message=r.message,
        opened_at=r.opened_at,
        updated_at=r.updated_at,
        value=r.value,
        cleared_at=r.cleared_at,
        acknowledged_by=r.acknowledged_by,
        acknowledged_at=r.acknowledged_at,
        claimed_by=r.claimed_by,
        claimed_at=r.claimed_at,
        triggers=r.triggers,
    )


#: keys of ``rule_to_dict`` kept in their own columns, not in ``params``
_RULE_COLUMNS = ("id", "kind", "severity", "thing")


def _rule_keys(data: Mapping[str, Any]) -> tuple[str, str, str]:
    rule_id, kind, severity = data.get("id"), data.get("kind"), data.get("severity")
    if not isinstance(rule_id, str) or not isinstance(kind, str) or not isinstance(severity, str):
        raise AlertStoreError("rule", "a stored rule needs its id, kind and severity as text")
    return rule_id, kind, severity


def _params(data: Mapping[str, Any]) -> str:
    params = {k: v for k, v in data.items() if k not in _RULE_COLUMNS}
    return json.dumps(params, ensure_ascii=False, sort_keys=True)


def _rule(r: Mapping[Any, Any]) -> RuleRecord:
    """A rule record from a row's mapping (or the values just inserted)."""
    data: dict[str, Any] = {"kind": r["kind"], "id": r["id"], "severity": r["severity"]}
    if r["thing_id"] is not None:
        data["thing"] = r["thing_id"]
    data.update(json.loads(r["params"]))
    return RuleRecord(
        id=r["id"],
        thing=r["thing_id"],
        kind=r["kind"],
        severity=r["severity"],
        data=data,
        enabled=bool(r["enabled"]),
        created_by=r["created_by"],
        created_at=r["created_at"],
    )


def _endpoint(r: Any) -> Endpoint:
    return Endpoint(
        r.id, r.resident_id, r.kind, Secret(r.target), Secret(r.secret) if r.secret else None, bool(r.enabled)
    )


def _delivery(r: Any) -> Delivery:
    return Delivery(
        id=int(r.id),
        alert_id=r.alert_id,
        resident=r.resident_id,
        channel=r.channel,
        message=r.message,
        state=r.state,
        attempts=int(r.attempts),
        next_attempt_at=r.next_attempt_at,
        last_error=r.last_error,
        created_at=r.created_at,
        sent_at=r.sent_at,
    )
