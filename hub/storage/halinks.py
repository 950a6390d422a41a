"""Residents' links to their own Home Assistant and the entities they share from it (tables ``ha_links``
and ``ha_shares``, migration 0006).

A token leaves this module only wrapped in :class:`~hub.storage.alertstore.Secret`, whose repr and str
never show it. Unlinking deletes the token and every share in one transaction; the things the shares
became are retired by the caller (hub/integrations/ha_source.py), so their history stays with its owner.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from hub.storage import store as tables
from hub.storage.alertstore import Secret
from hub.storage.store import Store


class HaLinkError(Exception):
    """A change the store refuses; ``reason`` is a stable code, the message says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class HaLink:
    """A resident's Home Assistant: its base URL and the long-lived token (never shown)."""

    resident: str
    url: str
    token: Secret
    created_at: float


@dataclass(frozen=True, slots=True)
class HaShare:
    """One shared entity and the thing it became."""

    resident: str
    entity_id: str
    thing: str
    measurement: str
    invert: bool
    created_at: float


class HaLinks:
    """Links and shares in the hub's relational store (SQLite or PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def link(self, resident: str, url: str, token: str, *, now: float) -> HaLink:
        """Store (or replace) a resident's link; the shares of an earlier link stay."""
        t = tables.ha_links
        with self._tx() as conn:
            if conn.execute(sa.select(t.c.resident_id).where(t.c.resident_id == resident)).first():
                conn.execute(sa.update(t).where(t.c.resident_id == resident).values(url=url, token=token))
            else:
                conn.execute(sa.insert(t).values(resident_id=resident, url=url, token=token, created_at=now))
        found = self.get(resident)
        assert found is not None
        return found

    def unlink(self, resident: str) -> tuple[bool, list[HaShare]]:
        """Delete the link and its shares: (whether there was a link, the shares that were removed)."""
        s, t = tables.ha_shares, tables.ha_links
        with self._tx() as conn:
            removed = [_share(row) for row in conn.execute(sa.select(s).where(s.c.resident_id == resident))]
            conn.execute(sa.delete(s).where(s.c.resident_id == resident))
            gone = conn.execute(sa.delete(t).where(t.c.resident_id == resident)).rowcount
        return bool(gone), removed

    def get(self, resident: str) -> HaLink | None:
        t = tables.ha_links
        with self._tx() as conn:
            row = conn.execute(sa.select(t).where(t.c.resident_id == resident)).first()
        return None if row is None else _link(row)

    def links(self) -> list[HaLink]:
        t = tables.ha_links
        with self._tx() as conn:
            return [_link(row) for row in conn.execute(sa.select(t).order_by(t.c.resident_id))]

    def add_share(self, share: HaShare) -> HaShare:
        """Record a shared entity; its thing must exist already. One share per (resident, entity)."""
        try:
            with self._tx() as conn:
                if self._link_row(conn, share.resident) is None:
                    raise HaLinkError("not_linked", "link your Home Assistant first")
                conn.execute(
                    sa.insert(tables.ha_shares).values(
                        resident_id=share.resident,
                        entity_id=share.entity_id,
                        thing_id=share.thing,
                        measurement=share.measurement,
                        invert=share.invert,
                        created_at=share.created_at,
                    )
                )
        except exc.IntegrityError:
            raise HaLinkError("already_shared", f"{share.entity_id} is shared already") from None
        return share

    def remove_share(self, resident: str, entity_id: str) -> HaShare | None:
        """Stop sharing an entity; the share that was removed, or None when it was not shared."""
        s = tables.ha_shares
        where = (s.c.resident_id == resident, s.c.entity_id == entity_id)
        with self._tx() as conn:
            row = conn.execute(sa.select(s).where(*where)).first()
            if row is None:
                return None
            conn.execute(sa.delete(s).where(*where))
        return _share(row)

    def shares(self, resident: str | None = None) -> list[HaShare]:
        """Shares of one resident (or of everyone), by resident and entity id."""
        s = tables.ha_shares
        query = sa.select(s).order_by(s.c.resident_id, s.c.entity_id)
        if resident is not None:
            query = query.where(s.c.resident_id == resident)
        with self._tx() as conn:
            return [_share(row) for row in conn.execute(query)]

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.store._begin() as conn:
            yield conn

    @staticmethod
    def _link_row(conn: Connection, resident: str) -> Any:
        t = tables.ha_links
        return conn.execute(sa.select(t.c.resident_id).where(t.c.resident_id == resident)).first()


def _link(row: Any) -> HaLink:
    return HaLink(row.resident_id, row.url, Secret(row.token), row.created_at)


def _share(row: Any) -> HaShare:
    return HaShare(
        row.resident_id, row.entity_id, row.thing_id, row.measurement, bool(row.invert), row.created_at
    )
