"""Who is who and who may hold what: residents, invites, cards, things, relations, loans and the audit log.

SQLAlchemy Core on the store's engine, the same code on SQLite and PostgreSQL. Every mutation writes one
audit row in its own transaction, so the log cannot disagree with the data it describes. Reads take no
actor and are not logged here; a path that discloses something can log it with ``append_audit``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from hub.domain.model import (
    AuditEntry,
    Contact,
    LendPolicy,
    Loan,
    LoanState,
    Location,
    Relation,
    RelationKind,
    Resident,
    Role,
    Share,
    Thing,
    Visibility,
    WatchSettings,
)
from hub.storage import store as tables
from hub.storage.store import Store

#: ecosystem recorded for a thing a resident registered before any device reported it
REGISTERED = "registered"
#: pseudonym given to an erased resident, followed by a number
ERASED_PREFIX = "former-neighbor-"
#: what an erased resident's name becomes inside audit details
ERASED_MARK = "[erased]"
#: invite code alphabet: no 0/O, 1/I/L, so a code read aloud or off paper survives
INVITE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
INVITE_LENGTH = 10
INVITE_TTL_S = 7 * 24 * 3600

_PSEUDONYM = re.compile(r"[A-Za-z0-9_.-]{2,32}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
#: loan states in which the borrower holds the thing
_HELD = frozenset({LoanState.OUT, LoanState.OVERDUE})


class DirectoryError(Exception):
    """A request the directory refuses; ``reason`` is a stable code, the message says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A thing's maintenance interval, by calendar and/or by hours of use, and when it was last done."""

    thing: str
    every_days: float | None = None
    every_hours_used: float | None = None
    last_done_at: float | None = None
    last_done_hours: float | None = None  # the usage counter when it was last done
    hours_used: float = 0.0  # running hours measured so far (from its power readings)


def new_id() -> str:
    """A short random url-safe id."""
    return secrets.token_urlsafe(8)


def normalise_tag(tag: str) -> str:
    """A tag id as DESIGN §5 spells it: surrounding space dropped, hex uppercased; other ids kept as typed."""
    text = tag.strip()
    return text.upper() if _HEX.fullmatch(text) else text


class Directory:
    """Residents, things, relations, loans and the audit log in the hub's relational store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- residents -------------------------------------------------------------------------------

    def add_resident(
        self,
        pseudonym: str,
        *,
        role: Role = Role.RESIDENT,
        real_name: str | None = None,
        contacts: Sequence[Contact] = (),
        actor: str | None,
        now: float,
    ) -> Resident:
        """A new resident; the pseudonym must be free (case-insensitively)."""
        with self._tx() as conn:
            resident = self._insert_resident(conn, pseudonym, role, real_name, contacts, now)
            self._audit(
                conn, now, actor, "resident.add", subject=resident.id, detail={"pseudonym": pseudonym}
            )
        return resident

    def resident(self, resident_id: str) -> Resident | None:
        with self._read() as conn:
            return self._resident(conn, resident_id)

    def resident_by_pseudonym(self, pseudonym: str) -> Resident | None:
        key = pseudonym.strip().lower()
        with self._read() as conn:
            row = conn.execute(
                sa.select(tables.residents).where(tables.residents.c.pseudonym_key == key)
            ).first()
            return None if row is None else self._resident_from(conn, row)

    def residents(self) -> list[Resident]:
        """Every resident, erased ones included (their placeholder keeps history readable), by join time."""
        r = tables.residents
        with self._read() as conn:
            rows = conn.execute(sa.select(r).order_by(r.c.joined_at, r.c.id)).all()
            found = _contacts_by_resident(conn, [row.id for row in rows])
        return [_resident(row, found.get(row.id, ())) for row in rows]

    def set_role(self, resident_id: str, role: Role, *, actor: str | None, now: float) -> Resident:
        """Change a resident's role; the last admin cannot be demoted (nobody could manage the hub)."""
        with self._tx() as conn:
            old = self._require_resident(conn, resident_id)
            if old.role is Role.ADMIN and role is not Role.ADMIN and self._admins(conn) <= 1:
                raise DirectoryError(
                    "last_admin", f"{old.pseudonym} is the only admin: make someone else admin first"
                )
            conn.execute(
                sa.update(tables.residents)
                .where(tables.residents.c.id == resident_id)
                .values(role=role.value)
            )
            self._audit(
                conn, now, actor, "resident.role", subject=resident_id, detail={"role": role, "was": old.role}
            )
        return replace(old, role=role)

    def update_contacts(
        self,
        resident_id: str,
        real_name: str | None,
        contacts: Sequence[Contact],
        *,
        actor: str | None,
        now: float,
    ) -> Resident:
        """Replace a resident's real name and contact channels (the audit row names the kinds, not values)."""
        contacts = _checked_contacts(contacts)
        with self._tx() as conn:
            old = self._require_resident(conn, resident_id)
            conn.execute(
                sa.update(tables.residents)
                .where(tables.residents.c.id == resident_id)
                .values(real_name=_blank_to_none(real_name))
            )
            conn.execute(sa.delete(tables.contacts).where(tables.contacts.c.resident_id == resident_id))
            _insert_contacts(conn, resident_id, contacts)
            detail = {
                "real_name": "set" if _blank_to_none(real_name) else "none",
                "contacts": ",".join(c.kind for c in contacts),
            }
            self._audit(conn, now, actor, "resident.contacts", subject=resident_id, detail=detail)
        return replace(old, real_name=_blank_to_none(real_name), contacts=contacts)

    def erase_resident(self, resident_id: str, *, actor: str | None, now: float) -> Resident:
        """Remove a resident's personal data and keep the history anonymised (``hub resident erase``).

        Real name, contacts, cards, waitlist places, the web password, sessions, access tokens,
        notification channels and the link to their own Home Assistant (its address, token and shares)
        go; the things those shares became are retired, as unlinking retires them, their history kept;
        the pseudonym becomes ``former-neighbor-<n>``;
        the role drops to resident; relations still active end now, except a borrows relation of a
        loan still out (custody is a fact, not personal data). Loans, vouches and the audit log stay,
        with the old pseudonym, real name and contact values cut out of audit details, and scans of
        the resident's cards no longer carry the card's id.
        """
        r = tables.residents
        with self._tx() as conn:
            old = self._require_resident(conn, resident_id)
            erased = conn.execute(sa.select(sa.func.count()).select_from(r).where(r.c.erased)).scalar_one()
            placeholder = f"{ERASED_PREFIX}{int(erased) + 1}"
            cards = self._cards(conn, resident_id)
            conn.execute(
                sa.update(r)
                .where(r.c.id == resident_id)
                .values(
                    pseudonym=placeholder,
                    pseudonym_key=placeholder,
                    real_name=None,
                    role=Role.RESIDENT.value,
                    erased=True,
                )
            )
            conn.execute(sa.delete(tables.contacts).where(tables.contacts.c.resident_id == resident_id))
            conn.execute(sa.delete(tables.tags).where(tables.tags.c.resident_id == resident_id))
            conn.execute(sa.delete(tables.waitlist).where(tables.waitlist.c.resident_id == resident_id))
            self._unlink_home_assistant(conn, resident_id, actor=actor, now=now)
            # sign-in and notification channels are personal data too: password, sessions, tokens, URLs
            for table in (tables.credentials, tables.web_sessions, tables.api_tokens, tables.channels):
                conn.execute(sa.delete(table).where(table.c.resident_id == resident_id))
            # the delivery log keeps that a message went out, not to whom
            conn.execute(
                sa.update(tables.deliveries)
                .where(tables.deliveries.c.resident_id == resident_id)
                .values(resident_id=None)
            )
            if cards:
                # where the card was read is where its holder was; the scans themselves stay countable
                conn.execute(
                    sa.update(tables.scans).where(tables.scans.c.tag.in_(cards)).values(tag=ERASED_MARK)
                )
            rel = tables.relations
            held = sa.select(tables.loans.c.id).where(tables.loans.c.state.in_([s.value for s in _HELD]))
            conn.execute(
                sa.update(rel)
                .where(
                    rel.c.resident_id == resident_id,
                    rel.c.revoked_at.is_(None),
                    sa.or_(rel.c.valid_until.is_(None), rel.c.valid_until > now),
                    sa.or_(rel.c.loan_id.is_(None), rel.c.loan_id.not_in(held)),
                )
                .values(revoked_at=now)
            )
            secrets_ = [
                old.pseudonym,
                *([old.real_name] if old.real_name else []),
                *(c.value for c in old.contacts),
            ]
            self._anonymise_audit(conn, secrets_, old.pseudonym, placeholder)
            self._audit(conn, now, actor, "resident.erase", subject=resident_id)
        return Resident(resident_id, placeholder, Role.RESIDENT, None, (), old.joined_at, erased=True)

    def _unlink_home_assistant(
        self, conn: Connection, resident_id: str, *, actor: str | None, now: float
    ) -> None:
        """Delete a resident's Home Assistant link (address, token) and shares, and retire the things the
        shares became, as ``HaLinkDesk.unlink`` does; a running hub stops following the link on its next
        look at the store."""
        shares, links, t = tables.ha_shares, tables.ha_links, tables.things
        shared = list(
            conn.execute(sa.select(shares.c.thing_id).where(shares.c.resident_id == resident_id)).scalars()
        )
        conn.execute(sa.delete(shares).where(shares.c.resident_id == resident_id))
        linked = conn.execute(sa.delete(links).where(links.c.resident_id == resident_id)).rowcount
        for thing_id in shared:
            retired = conn.execute(
                sa.update(t)
                .where(t.c.id == thing_id, t.c.retired.is_(False))
                .values(retired=True, retired_by=tables.RETIRED_BY_RESIDENT)
            ).rowcount
            if retired:
                self._audit(conn, now, actor, "thing.retire", thing=thing_id)
        if linked:
            detail = {"shares": str(len(shared))}
            self._audit(conn, now, actor, "homeassistant.unlink", subject=resident_id, detail=detail)

    # -- invites ---------------------------------------------------------------------------------

    def create_invite(
        self, *, created_by: str, role: Role = Role.RESIDENT, ttl_s: float = INVITE_TTL_S, now: float
    ) -> str:
        """A single-use code to join: any resident invites residents; only admins invite stewards, admins."""
        with self._tx() as conn:
            inviter = self._require_resident(conn, created_by)
            if role is not Role.RESIDENT and inviter.role is not Role.ADMIN:
                raise DirectoryError(
                    "not_admin",
                    f"only an admin may invite a {role.value}; {inviter.pseudonym} is a {inviter.role.value}",
                )
            code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))
            conn.execute(
                sa.insert(tables.invites).values(
                    code=code, created_by=created_by, role=role.value, created_at=now, expires_at=now + ttl_s
                )
            )
            self._audit(
                conn, now, created_by, "invite.create", detail={"role": role, "expires": _num(now + ttl_s)}
            )
        return code

    def redeem_invite(
        self,
        code: str,
        pseudonym: str,
        *,
        now: float,
        real_name: str | None = None,
        contacts: Sequence[Contact] = (),
    ) -> Resident:
        """Join with an invite code: it is used up, unless the join fails (then it can be tried again)."""
        key = re.sub(r"[\s-]", "", code).upper()
        inv = tables.invites
        with self._tx() as conn:
            row = conn.execute(sa.select(inv).where(inv.c.code == key)).first()
            if row is None:
                raise DirectoryError(
                    "unknown_invite", "this invite code is not known: check it or ask for a new one"
                )
            if row.redeemed_at is not None:
                raise DirectoryError("invite_used", "this invite code was already used: ask for a new one")
            if row.expires_at <= now:
                raise DirectoryError("invite_expired", "this invite code has expired: ask for a new one")
            resident = self._insert_resident(conn, pseudonym, Role(row.role), real_name, contacts, now)
            claimed = conn.execute(
                sa.update(inv)
                .where(inv.c.code == key, inv.c.redeemed_at.is_(None))
                .values(redeemed_by=resident.id, redeemed_at=now)
            )
            if claimed.rowcount != 1:  # redeemed by someone else meanwhile
                raise DirectoryError("invite_used", "this invite code was already used: ask for a new one")
            detail = {
                "pseudonym": resident.pseudonym,
                "role": resident.role,
                "invited_by": row.created_by or "",
            }
            self._audit(conn, now, resident.id, "resident.join", detail=detail)
        return resident

    def bootstrap_admin(self, pseudonym: str, *, now: float) -> Resident:
        """The first admin, created from the command line; refused once an admin exists."""
        with self._tx() as conn:
            if self._admins(conn) > 0:
                raise DirectoryError(
                    "admin_exists", "an admin already exists: ask them for an invite instead"
                )
            resident = self._insert_resident(conn, pseudonym, Role.ADMIN, None, (), now)
            self._audit(
                conn, now, None, "resident.bootstrap", subject=resident.id, detail={"pseudonym": pseudonym}
            )
        return resident

    # -- cards -----------------------------------------------------------------------------------

    def add_card(self, resident_id: str, tag: str, *, actor: str | None, now: float) -> str:
        """Link a card (its tag id) to a resident; returns the tag id as stored."""
        tag = _checked_tag(tag)
        with self._tx() as conn:
            self._require_resident(conn, resident_id)
            self._claim_tag(conn, tag, now, resident_id=resident_id)
            # the card id is personal data: the audit row says that a card was added, not which
            self._audit(conn, now, actor, "card.add", subject=resident_id)
        return tag

    def remove_card(self, resident_id: str, tag: str, *, actor: str | None, now: float) -> None:
        """Unlink a lost or given-back card."""
        tag = normalise_tag(tag)
        t = tables.tags
        with self._tx() as conn:
            gone = conn.execute(sa.delete(t).where(t.c.tag == tag, t.c.resident_id == resident_id))
            if gone.rowcount != 1:
                raise DirectoryError("unknown_card", f"tag {tag} is not a card of resident {resident_id}")
            self._audit(conn, now, actor, "card.remove", subject=resident_id)

    def resident_by_card(self, tag: str) -> str | None:
        t = tables.tags
        with self._read() as conn:
            found = conn.execute(sa.select(t.c.resident_id).where(t.c.tag == normalise_tag(tag))).scalar()
        return None if found is None else str(found)

    def cards_of(self, resident_id: str) -> list[str]:
        with self._read() as conn:
            return self._cards(conn, resident_id)

    # -- things ----------------------------------------------------------------------------------

    def create_thing(self, thing: Thing, *, owner: str | None, actor: str | None, now: float) -> Thing:
        """Register a thing (claiming it when a device reported first), with its tags and owner.

        An empty ``thing.id`` gets a new one; ``created_at`` 0 becomes ``now``. With an owner, the owns
        relation is granted in the same transaction.
        """
        thing = replace(
            thing,
            id=thing.id or new_id(),
            created_at=thing.created_at or now,
            tags=tuple(_checked_tag(tag) for tag in thing.tags),
            retired=False,
        )
        if not thing.name.strip():
            raise DirectoryError("bad_name", "a thing needs a name")
        t = tables.things
        with self._tx() as conn:
            row = conn.execute(sa.select(t.c.created_at).where(t.c.id == thing.id)).first()
            if row is not None and row.created_at is not None:
                raise DirectoryError("duplicate_thing", f"a thing with id {thing.id} is already registered")
            values = _thing_values(thing)
            if row is None:
                conn.execute(
                    sa.insert(t).values(
                        id=thing.id, source=REGISTERED, first_seen=now, last_seen=now, **values
                    )
                )
            else:
                conn.execute(sa.update(t).where(t.c.id == thing.id).values(**values))
            for tag in thing.tags:
                self._claim_tag(conn, tag, now, thing_id=thing.id)
            detail = {"name": thing.name, "kind": thing.kind, "visibility": thing.visibility}
            if owner is not None:
                self._require_resident(conn, owner)
                owns = Relation(
                    new_id(), owner, thing.id, RelationKind.OWNS, granted_by=actor, valid_from=now
                )
                conn.execute(sa.insert(tables.relations).values(**_relation_values(owns)))
                detail |= {"owner": owner, "relation": owns.id}
            self._audit(conn, now, actor, "thing.create", thing=thing.id, subject=owner, detail=detail)
        return thing

    def update_thing(self, thing: Thing, *, actor: str | None, now: float) -> Thing:
        """Write a thing's name, kind, visibility, sharing, location and derived measurements.

        Tags change through ``attach_tag``/``detach_tag`` and retirement through ``retire_thing``;
        the returned thing shows what is stored.
        """
        if not thing.name.strip():
            raise DirectoryError("bad_name", "a thing needs a name")
        t = tables.things
        with self._tx() as conn:
            old = self._require_thing(conn, thing.id)
            values = _thing_values(thing)
            del values["created_at"]  # registration time is not edited
            conn.execute(sa.update(t).where(t.c.id == thing.id).values(**values))
            changed = {
                name: str(getattr(thing, name))
                for name in ("name", "kind", "visibility", "watcher_share")
                if getattr(thing, name) != getattr(old, name)
            }
            if thing.derived_from != old.derived_from:
                changed["derived_from"] = ",".join(thing.derived_from)
            if thing.location != old.location:
                changed["location"] = "changed"  # exact coordinates never leave the owner's view
            self._audit(conn, now, actor, "thing.update", thing=thing.id, detail=changed)
            return self._require_thing(conn, thing.id)

    def thing(self, thing_id: str) -> Thing | None:
        with self._read() as conn:
            return self._thing(conn, thing_id)

    def things(self) -> list[Thing]:
        """Every thing, claimed or only heard of, by id."""
        t = tables.things
        with self._read() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.id)).all()
            tag_rows = conn.execute(
                sa.select(tables.tags.c.thing_id, tables.tags.c.tag)
                .where(tables.tags.c.thing_id.is_not(None))
                .order_by(tables.tags.c.added_at, tables.tags.c.tag)
            ).all()
        by_thing: dict[str, list[str]] = {}
        for row in tag_rows:
            by_thing.setdefault(row.thing_id, []).append(row.tag)
        return [_thing(row, by_thing.get(row.id, ())) for row in rows]

    def attach_tag(self, thing_id: str, tag: str, *, actor: str | None, now: float) -> str:
        """Attach an RFID/NFC/QR id to a thing; returns the tag id as stored."""
        tag = _checked_tag(tag)
        with self._tx() as conn:
            self._require_thing(conn, thing_id)
            self._claim_tag(conn, tag, now, thing_id=thing_id)
            self._audit(conn, now, actor, "thing.tag", thing=thing_id, detail={"tag": tag})
        return tag

    def detach_tag(self, thing_id: str, tag: str, *, actor: str | None, now: float) -> None:
        tag = normalise_tag(tag)
        t = tables.tags
        with self._tx() as conn:
            gone = conn.execute(sa.delete(t).where(t.c.tag == tag, t.c.thing_id == thing_id))
            if gone.rowcount != 1:
                raise DirectoryError("unknown_tag", f"tag {tag} is not attached to thing {thing_id}")
            self._audit(conn, now, actor, "thing.untag", thing=thing_id, detail={"tag": tag})

    def thing_by_tag(self, tag: str) -> str | None:
        t = tables.tags
        with self._read() as conn:
            found = conn.execute(sa.select(t.c.thing_id).where(t.c.tag == normalise_tag(tag))).scalar()
        return None if found is None else str(found)

    def thing_tags(self) -> dict[str, str]:
        """tag → thing id for every tag attached to a thing (cards are not included)."""
        t = tables.tags
        with self._read() as conn:
            rows = conn.execute(sa.select(t.c.tag, t.c.thing_id).where(t.c.thing_id.is_not(None))).all()
        return {str(tag): str(thing) for tag, thing in rows}

    def retire_thing(self, thing_id: str, *, actor: str | None, now: float) -> None:
        """Mark a thing retired; its relations, loans and history stay."""
        t = tables.things
        with self._tx() as conn:
            self._require_thing(conn, thing_id)
            # a resident's decision: the device announcing itself again does not bring it back
            conn.execute(
                sa.update(t)
                .where(t.c.id == thing_id)
                .values(retired=True, retired_by=tables.RETIRED_BY_RESIDENT)
            )
            self._audit(conn, now, actor, "thing.retire", thing=thing_id)

    # -- relations -------------------------------------------------------------------------------

    def grant(self, relation: Relation, *, actor: str | None, now: float) -> Relation:
        """Store a relation; an empty id gets a new one, ``valid_from`` 0 becomes ``now`` and
        ``granted_by`` defaults to the actor.

        A resident holds at most one active relation of a kind to a thing.
        """
        relation = replace(
            relation,
            id=relation.id or new_id(),
            valid_from=relation.valid_from or now,
            granted_by=relation.granted_by or actor,
        )
        with self._tx() as conn:
            self._require_resident(conn, relation.resident)
            self._require_thing(conn, relation.thing)
            self._insert_relation(conn, relation, now)
            detail = {"relation": relation.id, "kind": relation.kind}
            if relation.valid_until is not None:
                detail["until"] = _num(relation.valid_until)
            self._audit(
                conn,
                now,
                actor,
                "relation.grant",
                thing=relation.thing,
                subject=relation.resident,
                detail=detail,
            )
        return relation

    def revoke(self, relation_id: str, *, actor: str | None, now: float) -> Relation:
        """End a relation now (the row stays, with ``revoked_at``)."""
        rel = tables.relations
        with self._tx() as conn:
            row = conn.execute(sa.select(rel).where(rel.c.id == relation_id)).first()
            if row is None:
                raise DirectoryError("unknown_relation", f"no relation with id {relation_id}")
            if row.revoked_at is not None:
                raise DirectoryError("already_revoked", f"relation {relation_id} was already revoked")
            conn.execute(sa.update(rel).where(rel.c.id == relation_id).values(revoked_at=now))
            self._audit(
                conn,
                now,
                actor,
                "relation.revoke",
                thing=row.thing_id,
                subject=row.resident_id,
                detail={"relation": relation_id, "kind": row.kind},
            )
        return replace(_relation(row), revoked_at=now)

    def relation(self, relation_id: str) -> Relation | None:
        rel = tables.relations
        with self._read() as conn:
            row = conn.execute(sa.select(rel).where(rel.c.id == relation_id)).first()
        return None if row is None else _relation(row)

    def relations_of_thing(
        self,
        thing_id: str,
        *,
        include_inactive: bool = False,
        now: float,
        kinds: Collection[RelationKind] | None = None,
    ) -> list[Relation]:
        """Relations to a thing (only those active at ``now`` unless asked), oldest first."""
        return self._relations(tables.relations.c.thing_id == thing_id, include_inactive, now, kinds)

    def relations_of_resident(
        self,
        resident_id: str,
        *,
        include_inactive: bool = False,
        now: float,
        kinds: Collection[RelationKind] | None = None,
    ) -> list[Relation]:
        """A resident's relations (only those active at ``now`` unless asked), oldest first."""
        return self._relations(tables.relations.c.resident_id == resident_id, include_inactive, now, kinds)

    def all_relations(self, *, now: float) -> list[Relation]:
        """Every relation active at ``now`` (one query, for read caches such as the catalog)."""
        return self._relations(sa.true(), False, now, None)

    # -- loans -----------------------------------------------------------------------------------

    def save_loan(
        self,
        loan: Loan,
        *,
        actor: str | None,
        now: float,
        action: str,
        scan: tuple[str, str, float] | None = None,
    ) -> Loan:
        """Insert or update a loan; ``action`` names the step in the audit log ("loan.out", ...).

        While the loan is out (or overdue) its borrower holds a borrows relation tied to it; when it
        leaves those states that relation ends, in the same transaction. A thing can be out on one
        loan at a time. ``scan`` (reader, tag, time): the scan that made this step, marked handled in
        the same transaction; a scan marked already is refused (``scan_handled``), so a scan delivered
        twice changes the loan once.
        """
        loan = replace(loan, id=loan.id or new_id())
        lo = tables.loans
        with self._tx() as conn:
            if scan is not None:  # first, so a refusal leaves nothing to undo but this transaction
                reader, tag, at = scan
                try:
                    conn.execute(
                        sa.insert(tables.handled_scans).values(
                            reader=reader, tag=tag, time=at, loan_id=loan.id, handled_at=now
                        )
                    )
                except exc.IntegrityError as e:
                    raise DirectoryError(
                        "scan_handled", f"the scan of {tag} at {reader} was handled already"
                    ) from e
            self._require_thing(conn, loan.thing)
            self._require_resident(conn, loan.borrower)
            self._require_resident(conn, loan.lender)
            exists = conn.execute(sa.select(lo.c.state).where(lo.c.id == loan.id)).first()
            values = _loan_values(loan)
            try:
                if exists is None:
                    conn.execute(sa.insert(lo).values(id=loan.id, **values))
                else:
                    conn.execute(sa.update(lo).where(lo.c.id == loan.id).values(**values))
            except exc.IntegrityError as e:
                if loan.state in _HELD:
                    raise DirectoryError(
                        "already_out", f"thing {loan.thing} is already out on another loan: return it first"
                    ) from e
                raise
            detail = {"loan": loan.id, "state": loan.state, "due": _num(loan.due)}
            relation = self._follow_custody(conn, loan, now)
            if relation is not None:
                detail["relation"] = relation
            if loan.damage:
                detail["damage"] = loan.damage
            self._audit(conn, now, actor, action, thing=loan.thing, subject=loan.borrower, detail=detail)
        return loan

    def scan_handled(self, reader: str, tag: str, at: float) -> bool:
        """Whether this scan already changed a loan (see ``save_loan``)."""
        h = tables.handled_scans
        with self._read() as conn:
            query = sa.select(h.c.loan_id).where(h.c.reader == reader, h.c.tag == tag, h.c.time == at)
            return conn.execute(query).first() is not None

    def loan(self, loan_id: str) -> Loan | None:
        with self._read() as conn:
            row = conn.execute(sa.select(tables.loans).where(tables.loans.c.id == loan_id)).first()
        return None if row is None else _loan(row)

    def loans(
        self,
        *,
        thing: str | None = None,
        borrower: str | None = None,
        states: Collection[LoanState] | None = None,
    ) -> list[Loan]:
        """Loans, filtered, by start time."""
        lo = tables.loans
        query = sa.select(lo).order_by(lo.c.start, lo.c.id)
        if thing is not None:
            query = query.where(lo.c.thing_id == thing)
        if borrower is not None:
            query = query.where(lo.c.borrower == borrower)
        if states is not None:
            query = query.where(lo.c.state.in_([LoanState(s).value for s in states]))
        with self._read() as conn:
            return [_loan(row) for row in conn.execute(query)]

    # -- waitlist --------------------------------------------------------------------------------

    def join_waitlist(self, thing: str, resident: str, *, actor: str | None, now: float) -> None:
        w = tables.waitlist
        with self._tx() as conn:
            self._require_thing(conn, thing)
            self._require_resident(conn, resident)
            if conn.execute(
                sa.select(w.c.joined_at).where(w.c.thing_id == thing, w.c.resident_id == resident)
            ).first():
                raise DirectoryError("already_waiting", f"resident {resident} is already waiting for {thing}")
            conn.execute(sa.insert(w).values(thing_id=thing, resident_id=resident, joined_at=now))
            self._audit(conn, now, actor, "waitlist.join", thing=thing, subject=resident)

    def leave_waitlist(self, thing: str, resident: str, *, actor: str | None, now: float) -> None:
        w = tables.waitlist
        with self._tx() as conn:
            gone = conn.execute(sa.delete(w).where(w.c.thing_id == thing, w.c.resident_id == resident))
            if gone.rowcount != 1:
                raise DirectoryError("not_waiting", f"resident {resident} is not waiting for {thing}")
            self._audit(conn, now, actor, "waitlist.leave", thing=thing, subject=resident)

    def waitlist(self, thing: str) -> list[tuple[str, float]]:
        """(resident, joined at) of everyone waiting for a thing, first come first."""
        w = tables.waitlist
        query = sa.select(w.c.resident_id, w.c.joined_at).where(w.c.thing_id == thing)
        with self._read() as conn:
            rows = conn.execute(query.order_by(w.c.joined_at, w.c.resident_id)).all()
        return [(row.resident_id, row.joined_at) for row in rows]

    # -- notices ---------------------------------------------------------------------------------

    def record_notice(self, loan_id: str, kind: str, *, now: float) -> bool:
        """Remember that a notice ("reminder", "overdue", ...) went out; False when it already had."""
        n = tables.notices
        with self._tx() as conn:
            if not self._loan_exists(conn, loan_id):
                raise DirectoryError("unknown_loan", f"no loan with id {loan_id}")
            # ON CONFLICT DO NOTHING: of two hubs recording at once, exactly one gets True
            insert = self.store._insert(n).values(loan_id=loan_id, kind=kind, sent_at=now)
            return conn.execute(insert.on_conflict_do_nothing().returning(n.c.kind)).first() is not None

    def sent_notices(self) -> set[tuple[str, str]]:
        n = tables.notices
        with self._read() as conn:
            return {(row.loan_id, row.kind) for row in conn.execute(sa.select(n.c.loan_id, n.c.kind))}

    # -- vouches ---------------------------------------------------------------------------------

    def vouch(self, from_resident: str, to_resident: str, *, now: float) -> None:
        """``from_resident`` vouches for ``to_resident``: once per pair, never for oneself."""
        v = tables.vouches
        if from_resident == to_resident:
            raise DirectoryError("self_vouch", "you cannot vouch for yourself")
        with self._tx() as conn:
            self._require_resident(conn, from_resident)
            self._require_resident(conn, to_resident)
            pair = sa.and_(v.c.from_resident == from_resident, v.c.to_resident == to_resident)
            if conn.execute(sa.select(v.c.time).where(pair)).first():
                raise DirectoryError("already_vouched", "you already vouched for this neighbor")
            conn.execute(sa.insert(v).values(from_resident=from_resident, to_resident=to_resident, time=now))
            self._audit(conn, now, from_resident, "resident.vouch", subject=to_resident)

    def withdraw_vouch(self, from_resident: str, to_resident: str, *, now: float) -> None:
        v = tables.vouches
        with self._tx() as conn:
            gone = conn.execute(
                sa.delete(v).where(v.c.from_resident == from_resident, v.c.to_resident == to_resident)
            )
            if gone.rowcount != 1:
                raise DirectoryError("not_vouched", "there is no vouch to withdraw")
            self._audit(conn, now, from_resident, "resident.unvouch", subject=to_resident)

    def vouchers_of(self, resident: str) -> list[str]:
        """Who vouched for a resident, earliest first."""
        v = tables.vouches
        query = sa.select(v.c.from_resident).where(v.c.to_resident == resident)
        with self._read() as conn:
            return [str(x) for x in conn.execute(query.order_by(v.c.time, v.c.from_resident)).scalars()]

    # -- maintenance -----------------------------------------------------------------------------

    def set_maintenance(
        self,
        thing: str,
        every_days: float | None,
        every_hours_used: float | None,
        *,
        actor: str | None,
        now: float,
    ) -> Maintenance:
        """Set how often a thing needs maintenance, by days and/or by hours of use (None: not by that)."""
        for value in (every_days, every_hours_used):
            if value is not None and not value > 0:
                raise DirectoryError("bad_interval", "a maintenance interval must be a positive number")
        m = tables.maintenance
        with self._tx() as conn:
            self._require_thing(conn, thing)
            current = self._maintenance(conn, thing)
            if current is None:
                conn.execute(
                    sa.insert(m).values(
                        thing_id=thing, every_days=every_days, every_hours_used=every_hours_used
                    )
                )
            else:
                conn.execute(
                    sa.update(m)
                    .where(m.c.thing_id == thing)
                    .values(every_days=every_days, every_hours_used=every_hours_used)
                )
            detail = {"every_days": _num(every_days), "every_hours_used": _num(every_hours_used)}
            self._audit(conn, now, actor, "maintenance.set", thing=thing, detail=detail)
            result = self._maintenance(conn, thing)
        assert result is not None
        return result

    def maintenance(self, thing: str) -> Maintenance | None:
        with self._read() as conn:
            return self._maintenance(conn, thing)

    def maintenance_done(
        self, thing: str, hours_at: float | None, *, actor: str | None, now: float
    ) -> Maintenance:
        """Record maintenance done now, with the usage counter (hours) read at that moment if known."""
        m = tables.maintenance
        with self._tx() as conn:
            self._require_thing(conn, thing)
            if self._maintenance(conn, thing) is None:
                conn.execute(sa.insert(m).values(thing_id=thing, last_done_at=now, last_done_hours=hours_at))
            else:
                conn.execute(
                    sa.update(m)
                    .where(m.c.thing_id == thing)
                    .values(last_done_at=now, last_done_hours=hours_at)
                )
            self._audit(conn, now, actor, "maintenance.done", thing=thing, detail={"hours": _num(hours_at)})
            result = self._maintenance(conn, thing)
        assert result is not None
        return result

    def maintenance_plans(self) -> list[Maintenance]:
        """Every thing's maintenance plan."""
        m = tables.maintenance
        with self._read() as conn:
            return [_maintenance_row(row) for row in conn.execute(sa.select(m).order_by(m.c.thing_id))]

    def add_usage(self, thing: str, hours: float) -> None:
        """Add measured running hours to a thing's usage counter (a measurement: not audited)."""
        m = tables.maintenance
        with self._tx() as conn:
            conn.execute(
                sa.update(m)
                .where(m.c.thing_id == thing)
                .values(hours_used=sa.func.coalesce(m.c.hours_used, 0.0) + hours)
            )

    def claim_maintenance_notice(self, thing: str, last_done_at: float) -> bool:
        """True for the first caller only, per maintenance interval: that one announces it is due."""
        m = tables.maintenance
        with self._tx() as conn:
            result = conn.execute(
                sa.update(m)
                .where(m.c.thing_id == thing)
                .where(sa.or_(m.c.notified_for.is_(None), m.c.notified_for != last_done_at))
                .values(notified_for=last_done_at)
            )
        return bool(result.rowcount)

    # -- audit -----------------------------------------------------------------------------------

    def append_audit(self, entry: AuditEntry) -> None:
        """Log something that changed nothing here, e.g. a disclosure ("thing.history.view")."""
        with self._tx() as conn:
            self._audit(conn, entry.time, entry.actor, entry.action, entry.thing, entry.subject, entry.detail)

    def audit(
        self,
        *,
        thing: str | None = None,
        subject: str | None = None,
        actor: str | None = None,
        since: float | None = None,
        limit: int = 500,
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries that match every filter given, oldest first."""
        a = tables.audit
        conditions = []
        if thing is not None:
            conditions.append(a.c.thing_id == thing)
        if subject is not None:
            conditions.append(a.c.subject == subject)
        if actor is not None:
            conditions.append(a.c.actor == actor)
        return self._audit_rows(conditions, since, limit)

    def audit_for_resident(
        self, resident_id: str, *, since: float | None = None, limit: int = 500
    ) -> list[AuditEntry]:
        """What a resident may read of the log: entries about them or by them, and entries about things
        they owned or stewarded at the time of the entry ("who saw or changed what about my things")."""
        a, rel = tables.audit, tables.relations
        ended = sa.case(
            (rel.c.revoked_at.is_(None), rel.c.valid_until),
            (sa.or_(rel.c.valid_until.is_(None), rel.c.revoked_at < rel.c.valid_until), rel.c.revoked_at),
            else_=rel.c.valid_until,
        )
        keeper = (
            sa.select(rel.c.id)
            .where(
                rel.c.thing_id == a.c.thing_id,
                rel.c.resident_id == resident_id,
                rel.c.kind.in_([RelationKind.OWNS.value, RelationKind.STEWARDS.value]),
                rel.c.valid_from <= a.c.time,
                sa.or_(ended.is_(None), a.c.time < ended),
            )
            .exists()
        )
        return self._audit_rows(
            [sa.or_(a.c.subject == resident_id, a.c.actor == resident_id, keeper)], since, limit
        )

    # -- internals -------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        # the store's connection handling names the database in its errors
        with self.store._begin() as conn:
            yield conn

    _read = _tx

    def _audit(
        self,
        conn: Connection,
        now: float,
        actor: str | None,
        action: str,
        thing: str | None = None,
        subject: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        text = json.dumps({k: str(v) for k, v in (detail or {}).items()}, ensure_ascii=False, sort_keys=True)
        conn.execute(
            sa.insert(tables.audit).values(
                time=now, actor=actor, action=action, thing_id=thing, subject=subject, detail=text
            )
        )

    def _audit_rows(self, conditions: list[Any], since: float | None, limit: int) -> list[AuditEntry]:
        a = tables.audit
        if since is not None:
            conditions = [*conditions, a.c.time >= since]
        query = sa.select(a).where(*conditions).order_by(a.c.time.desc(), a.c.id.desc()).limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEntry(row.time, row.actor, row.action, row.thing_id, row.subject, json.loads(row.detail))
            for row in reversed(rows)
        ]

    def _anonymise_audit(
        self, conn: Connection, secrets_: Iterable[str], pseudonym: str, placeholder: str
    ) -> None:
        a = tables.audit
        words = sorted({s for s in secrets_ if s}, key=len, reverse=True)
        if not words:
            return
        found = sa.or_(*(sa.func.lower(a.c.detail).contains(w.lower(), autoescape=True) for w in words))
        pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)

        def scrub(value: str) -> str:
            return pattern.sub(
                lambda m: placeholder if m.group(0).lower() == pseudonym.lower() else ERASED_MARK, value
            )

        for row in conn.execute(sa.select(a.c.id, a.c.detail).where(found)).all():
            detail = {k: scrub(v) for k, v in json.loads(row.detail).items()}
            text = json.dumps(detail, ensure_ascii=False, sort_keys=True)
            conn.execute(sa.update(a).where(a.c.id == row.id).values(detail=text))

    def _insert_resident(
        self,
        conn: Connection,
        pseudonym: str,
        role: Role,
        real_name: str | None,
        contacts: Sequence[Contact],
        now: float,
    ) -> Resident:
        pseudonym = pseudonym.strip()
        if not _PSEUDONYM.fullmatch(pseudonym):
            raise DirectoryError(
                "bad_pseudonym",
                f"pseudonym {pseudonym!r}: use 2 to 32 letters, digits, '_', '.' or '-'",
            )
        if pseudonym.lower().startswith(ERASED_PREFIX):
            raise DirectoryError("bad_pseudonym", f"pseudonyms starting with {ERASED_PREFIX!r} are reserved")
        contacts = _checked_contacts(contacts)
        r = tables.residents
        if conn.execute(sa.select(r.c.id).where(r.c.pseudonym_key == pseudonym.lower())).first():
            raise _taken(pseudonym)
        resident = Resident(new_id(), pseudonym, Role(role), _blank_to_none(real_name), contacts, now)
        try:
            conn.execute(
                sa.insert(r).values(
                    id=resident.id,
                    pseudonym=pseudonym,
                    pseudonym_key=pseudonym.lower(),
                    role=resident.role.value,
                    real_name=resident.real_name,
                    joined_at=now,
                    erased=False,
                )
            )
        except exc.IntegrityError as e:  # taken by a concurrent join
            raise _taken(pseudonym) from e
        _insert_contacts(conn, resident.id, contacts)
        return resident

    def _resident(self, conn: Connection, resident_id: str) -> Resident | None:
        row = conn.execute(sa.select(tables.residents).where(tables.residents.c.id == resident_id)).first()
        return None if row is None else self._resident_from(conn, row)

    def _resident_from(self, conn: Connection, row: Any) -> Resident:
        return _resident(row, _contacts_by_resident(conn, [row.id]).get(row.id, ()))

    def _require_resident(self, conn: Connection, resident_id: str) -> Resident:
        resident = self._resident(conn, resident_id)
        if resident is None:
            raise DirectoryError("unknown_resident", f"no resident with id {resident_id}")
        if resident.erased:
            raise DirectoryError("erased_resident", f"resident {resident_id} was erased")
        return resident

    def _admins(self, conn: Connection) -> int:
        r = tables.residents
        query = (
            sa.select(sa.func.count()).select_from(r).where(r.c.role == Role.ADMIN.value, sa.not_(r.c.erased))
        )
        return int(conn.execute(query).scalar_one())

    def _cards(self, conn: Connection, resident_id: str) -> list[str]:
        t = tables.tags
        query = sa.select(t.c.tag).where(t.c.resident_id == resident_id).order_by(t.c.added_at, t.c.tag)
        return [str(tag) for tag in conn.execute(query).scalars()]

    def _claim_tag(
        self,
        conn: Connection,
        tag: str,
        now: float,
        *,
        thing_id: str | None = None,
        resident_id: str | None = None,
    ) -> None:
        t = tables.tags
        holder = conn.execute(sa.select(t.c.thing_id, t.c.resident_id).where(t.c.tag == tag)).first()
        if holder is None:
            try:
                conn.execute(
                    sa.insert(t).values(tag=tag, thing_id=thing_id, resident_id=resident_id, added_at=now)
                )
            except exc.IntegrityError as e:
                raise DirectoryError("tag_in_use", f"tag {tag} was attached elsewhere just now") from e
            return
        if holder.thing_id is not None:
            raise DirectoryError("tag_in_use", f"tag {tag} is already attached to thing {holder.thing_id}")
        raise DirectoryError("tag_in_use", f"tag {tag} is already a resident's card")

    def _thing(self, conn: Connection, thing_id: str) -> Thing | None:
        row = conn.execute(sa.select(tables.things).where(tables.things.c.id == thing_id)).first()
        if row is None:
            return None
        t = tables.tags
        query = sa.select(t.c.tag).where(t.c.thing_id == thing_id).order_by(t.c.added_at, t.c.tag)
        return _thing(row, [str(tag) for tag in conn.execute(query).scalars()])

    def _require_thing(self, conn: Connection, thing_id: str) -> Thing:
        thing = self._thing(conn, thing_id)
        if thing is None:
            raise DirectoryError("unknown_thing", f"no thing with id {thing_id}")
        return thing

    def _insert_relation(self, conn: Connection, relation: Relation, now: float) -> None:
        rel = tables.relations
        same = conn.execute(
            sa.select(rel).where(
                rel.c.resident_id == relation.resident,
                rel.c.thing_id == relation.thing,
                rel.c.kind == relation.kind.value,
            )
        ).all()
        if any(_relation(row).active(now) for row in same):
            raise DirectoryError(
                "duplicate_relation",
                f"resident {relation.resident} already {relation.kind.value} thing {relation.thing}",
            )
        try:
            conn.execute(sa.insert(rel).values(**_relation_values(relation)))
        except exc.IntegrityError as e:
            raise DirectoryError("duplicate_relation", f"a relation with id {relation.id} exists") from e

    def _relations(
        self, where: Any, include_inactive: bool, now: float, kinds: Collection[RelationKind] | None
    ) -> list[Relation]:
        rel = tables.relations
        query = sa.select(rel).where(where).order_by(rel.c.valid_from, rel.c.id)
        if kinds is not None:
            query = query.where(rel.c.kind.in_([RelationKind(k).value for k in kinds]))
        with self._read() as conn:
            found = [_relation(row) for row in conn.execute(query)]
        return found if include_inactive else [r for r in found if r.active(now)]

    def _follow_custody(self, conn: Connection, loan: Loan, now: float) -> str | None:
        """Grant or end the borrows relation of a loan to match its state; the relation id touched."""
        rel = tables.relations
        open_ = conn.execute(
            sa.select(rel.c.id).where(
                rel.c.loan_id == loan.id,
                rel.c.kind == RelationKind.BORROWS.value,
                rel.c.revoked_at.is_(None),
                sa.or_(rel.c.valid_until.is_(None), rel.c.valid_until > now),
            )
        ).first()
        if loan.state in _HELD:
            if open_ is not None:
                return None
            borrows = Relation(
                new_id(),
                loan.borrower,
                loan.thing,
                RelationKind.BORROWS,
                granted_by=None,
                valid_from=min(loan.out_at or now, now),
                loan=loan.id,
            )
            conn.execute(sa.insert(rel).values(**_relation_values(borrows)))
            return borrows.id
        if open_ is None:
            return None
        conn.execute(sa.update(rel).where(rel.c.id == open_.id).values(valid_until=now))
        return str(open_.id)

    def _loan_exists(self, conn: Connection, loan_id: str) -> bool:
        return (
            conn.execute(sa.select(tables.loans.c.id).where(tables.loans.c.id == loan_id)).first() is not None
        )

    def _maintenance(self, conn: Connection, thing: str) -> Maintenance | None:
        m = tables.maintenance
        row = conn.execute(sa.select(m).where(m.c.thing_id == thing)).first()
        if row is None:
            return None
        return _maintenance_row(row)


# -- rows ↔ dataclasses ----------------------------------------------------------------------------


def _maintenance_row(row: Any) -> Maintenance:
    return Maintenance(
        row.thing_id,
        row.every_days,
        row.every_hours_used,
        row.last_done_at,
        row.last_done_hours,
        row.hours_used or 0.0,
    )


def _taken(pseudonym: str) -> DirectoryError:
    return DirectoryError("pseudonym_taken", f"the pseudonym {pseudonym!r} is taken: choose another")


def _blank_to_none(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _checked_tag(tag: str) -> str:
    tag = normalise_tag(tag)
    if not tag or len(tag) > 128:
        raise DirectoryError("bad_tag", f"tag id {tag!r} must be 1 to 128 characters")
    return tag


def _checked_contacts(contacts: Sequence[Contact]) -> tuple[Contact, ...]:
    checked = tuple(Contact(c.kind.strip(), c.value.strip()) for c in contacts)
    for c in checked:
        if not c.kind or not c.value:
            raise DirectoryError("bad_contact", "a contact needs a kind (email, phone, ...) and a value")
    return checked


def _insert_contacts(conn: Connection, resident_id: str, contacts: Sequence[Contact]) -> None:
    if contacts:
        conn.execute(
            sa.insert(tables.contacts),
            [
                {"resident_id": resident_id, "position": i, "kind": c.kind, "value": c.value}
                for i, c in enumerate(contacts)
            ],
        )


def _contacts_by_resident(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[Contact, ...]]:
    c = tables.contacts
    found: dict[str, list[Contact]] = {}
    if ids:
        query = sa.select(c).where(c.c.resident_id.in_(ids)).order_by(c.c.resident_id, c.c.position)
        for row in conn.execute(query):
            found.setdefault(row.resident_id, []).append(Contact(row.kind, row.value))
    return {k: tuple(v) for k, v in found.items()}


def _resident(row: Any, contacts: tuple[Contact, ...]) -> Resident:
    return Resident(
        row.id, row.pseudonym, Role(row.role), row.real_name, contacts, row.joined_at, bool(row.erased)
    )


def _thing_values(thing: Thing) -> dict[str, Any]:
    location = thing.location or Location()
    return {
        "name": thing.name.strip(),
        "kind": thing.kind,
        "visibility": Visibility(thing.visibility).value,
        "watcher_share": Share(thing.watcher_share).value,
        "lat": location.lat,
        "lon": location.lon,
        "place": location.place,
        "derived_from": json.dumps(list(thing.derived_from)),
        "created_at": thing.created_at,
    }


def _thing(row: Any, tags: Iterable[str]) -> Thing:
    location = None
    if row.lat is not None or row.lon is not None or row.place is not None:
        location = Location(row.lat, row.lon, row.place)
    return Thing(
        id=row.id,
        name=row.name or row.id,
        kind=row.kind or "sensor",
        visibility=Visibility(row.visibility),
        watcher_share=Share(row.watcher_share),
        location=location,
        tags=tuple(tags),
        derived_from=tuple(json.loads(row.derived_from)) if row.derived_from else (),
        # an unclaimed thing dates from when it was first heard
        created_at=row.created_at if row.created_at is not None else row.first_seen,
        retired=bool(row.retired),
    )


def _relation_values(relation: Relation) -> dict[str, Any]:
    return {
        "id": relation.id,
        "resident_id": relation.resident,
        "thing_id": relation.thing,
        "kind": RelationKind(relation.kind).value,
        "granted_by": relation.granted_by,
        "valid_from": relation.valid_from,
        "valid_until": relation.valid_until,
        "revoked_at": relation.revoked_at,
        "policy": None if relation.policy is None else json.dumps(asdict(relation.policy)),
        "watch": None if relation.watch is None else json.dumps(asdict(relation.watch)),
        "loan_id": relation.loan,
    }


def _relation(row: Any) -> Relation:
    return Relation(
        id=row.id,
        resident=row.resident_id,
        thing=row.thing_id,
        kind=RelationKind(row.kind),
        granted_by=row.granted_by,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        revoked_at=row.revoked_at,
        policy=None if row.policy is None else _policy(json.loads(row.policy)),
        watch=None if row.watch is None else _watch(json.loads(row.watch)),
        loan=row.loan_id,
    )


def _policy(data: dict[str, Any]) -> LendPolicy:
    known = {k: v for k, v in data.items() if k in LendPolicy.__dataclass_fields__}
    if "approved" in known:
        known["approved"] = tuple(known["approved"])
    return LendPolicy(**known)


def _watch(data: dict[str, Any]) -> WatchSettings:
    return WatchSettings(
        thresholds=tuple((str(m), low, high) for m, low, high in data.get("thresholds", ())),
        quiet_start=data.get("quiet_start"),
        quiet_end=data.get("quiet_end"),
    )


def _loan_values(loan: Loan) -> dict[str, Any]:
    return {
        "thing_id": loan.thing,
        "borrower": loan.borrower,
        "lender": loan.lender,
        "state": LoanState(loan.state).value,
        "start": loan.start,
        "due": loan.due,
        "requested_at": loan.requested_at,
        "out_at": loan.out_at,
        "returned_at": loan.returned_at,
        "out_reader": loan.out_reader,
        "return_reader": loan.return_reader,
        "damage": loan.damage,
    }


def _loan(row: Any) -> Loan:
    return Loan(
        id=row.id,
        thing=row.thing_id,
        borrower=row.borrower,
        lender=row.lender,
        state=LoanState(row.state),
        start=row.start,
        due=row.due,
        requested_at=row.requested_at,
        out_at=row.out_at,
        returned_at=row.returned_at,
        out_reader=row.out_reader,
        return_reader=row.return_reader,
        damage=row.damage,
    )
