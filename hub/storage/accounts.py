"""Web sign-in: Argon2id password hashes, browser sessions and personal access tokens, in the store.

Only digests are stored: the password as an Argon2id PHC string, session and access tokens as SHA-256
(they are long random values, so a fast digest suffices and lookups stay one indexed query). The plain
session token lives in the browser's cookie; the plain access token is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Final

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from hub.storage import store as tables
from hub.storage.store import Store

MIN_PASSWORD: Final = 10
#: longer passwords would only make Argon2 a lever for slowing the hub down
MAX_PASSWORD: Final = 1024
#: a session unused this long ends; each use extends it, up to SESSION_MAX_S after sign-in
SESSION_IDLE_S: Final = 14 * 24 * 3600.0
SESSION_MAX_S: Final = 90 * 24 * 3600.0
#: last_seen is written at most this often per session (a page view is not worth a write each)
TOUCH_EVERY_S: Final = 60.0
#: personal access tokens start with this, so secret scanners and people recognise them
TOKEN_PREFIX: Final = "nhub_"
MAX_TOKEN_NAME: Final = 80
#: how long a browser that signed in stays a "known device" of the account (for the login limit)
DEVICE_TTL_S: Final = 180 * 24 * 3600.0


class AccountError(Exception):
    """A request the accounts refuse; ``reason`` is a stable code, the message says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class WebSession:
    resident_id: str
    csrf_token: str
    created_at: float
    last_seen: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just made: ``token`` goes into the cookie and is not kept anywhere else."""

    token: str
    session: WebSession


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    resident_id: str
    name: str
    created_at: float
    last_used: float | None = None
    revoked_at: float | None = None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Passwords, sessions and access tokens of residents (the residents themselves live in Directory)."""

    def __init__(self, store: Store, *, hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.hasher = hasher or PasswordHasher()  # Argon2id with the library's current RFC 9106 profile
        # verified against when a resident has no password, so both cases take the same time
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))

    # -- passwords --------------------------------------------------------------------------------

    def set_password(self, resident_id: str, password: str, *, now: float) -> None:
        """Store an Argon2id hash of ``password`` (replacing any earlier one) and end every session."""
        check_password(password)
        hashed = self.hasher.hash(password)
        c = tables.credentials
        with self._tx() as conn:
            exists = conn.execute(sa.select(c.c.resident_id).where(c.c.resident_id == resident_id)).first()
            values = {"password_hash": hashed, "updated_at": now}
            if exists is None:
                conn.execute(sa.insert(c).values(resident_id=resident_id, **values))
            else:
                conn.execute(sa.update(c).where(c.c.resident_id == resident_id).values(**values))
            # a changed password signs out every browser (the person may be locking someone out)
            ws = tables.web_sessions
            conn.execute(sa.delete(ws).where(ws.c.resident_id == resident_id))
            _audit(conn, now, resident_id, "resident.password", subject=resident_id)

    def check_password(self, password: str) -> None:
        """Raise AccountError when ``password`` would be refused (before an invite is used up on it)."""
        check_password(password)

    def has_password(self, resident_id: str) -> bool:
        c = tables.credentials
        with self._tx() as conn:
            found = conn.execute(sa.select(c.c.resident_id).where(c.c.resident_id == resident_id))
            return found.first() is not None

    def verify(self, resident_id: str | None, password: str, *, now: float) -> bool:
        """Whether ``password`` is the resident's; rehashes it when the hash parameters have changed.

        ``resident_id`` None (an unknown pseudonym) is checked against a dummy hash, so timing does
        not tell which pseudonyms exist.
        """
        stored = None
        if resident_id is not None:
            c = tables.credentials
            with self._tx() as conn:
                stored = conn.execute(
                    sa.select(c.c.password_hash).where(c.c.resident_id == resident_id)
                ).scalar_one_or_none()
        if len(password) > MAX_PASSWORD:
            return False
        try:
            self.hasher.verify(stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        if stored is None or resident_id is None:
            return False
        if self.hasher.check_needs_rehash(stored):
            c = tables.credentials
            with self._tx() as conn:
                conn.execute(
                    sa.update(c)
                    .where(c.c.resident_id == resident_id, c.c.password_hash == stored)
                    .values(password_hash=self.hasher.hash(password), updated_at=now)
                )
        return True

    # -- known devices ----------------------------------------------------------------------------

    def device_token(self, resident_id: str, *, now: float) -> str | None:
        """A token a browser keeps after signing in, proving later that it did (``known_device``).

        Signed with a key derived from the resident's password hash: no key to store, and a new
        password (or erasure) forgets every device. None when the resident has no password.
        """
        key = self._device_key(resident_id)
        if key is None:
            return None
        issued = str(int(now))
        return f"{issued}.{_device_mac(key, resident_id, issued)}"

    def known_device(self, resident_id: str, token: str | None, *, now: float) -> bool:
        """Whether ``token`` came from ``device_token`` for this resident within DEVICE_TTL_S."""
        if not token or "." not in token:
            return False
        issued, _, mac = token.partition(".")
        if not issued.isdigit() or not 0 <= now - int(issued) <= DEVICE_TTL_S:
            return False
        key = self._device_key(resident_id)
        return key is not None and hmac.compare_digest(mac, _device_mac(key, resident_id, issued))

    def _device_key(self, resident_id: str) -> bytes | None:
        c = tables.credentials
        with self._tx() as conn:
            stored = conn.execute(
                sa.select(c.c.password_hash).where(c.c.resident_id == resident_id)
            ).scalar_one_or_none()
        return None if stored is None else hashlib.sha256(b"hub known device\0" + stored.encode()).digest()

    # -- sessions ---------------------------------------------------------------------------------

    def create_session(self, resident_id: str, *, now: float) -> NewSession:
        """A new browser session after a successful sign-in."""
        token = secrets.token_urlsafe(32)
        session = WebSession(resident_id, secrets.token_urlsafe(32), now, now, now + SESSION_IDLE_S)
        with self._tx() as conn:
            conn.execute(
                sa.insert(tables.web_sessions).values(
                    token_hash=digest(token),
                    resident_id=resident_id,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    last_seen=now,
                    expires_at=session.expires_at,
                )
            )
        return NewSession(token, session)

    def session(self, token: str, *, now: float) -> WebSession | None:
        """The live session of a cookie's token, or None (unknown, expired, or its resident erased)."""
        s, r = tables.web_sessions, tables.residents
        query = (
            sa.select(s)
            .join(r, r.c.id == s.c.resident_id)
            .where(s.c.token_hash == digest(token), s.c.expires_at > now, sa.not_(r.c.erased))
        )
        with self._tx() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return WebSession(row.resident_id, row.csrf_token, row.created_at, row.last_seen, row.expires_at)

    def touch_session(self, token: str, *, now: float) -> WebSession | None:
        """Look the session up and record a use: the idle timer restarts (never past SESSION_MAX_S
        after sign-in). None when the session is unknown, expired, or its resident erased."""
        session = self.session(token, now=now)
        if session is None or now - session.last_seen < TOUCH_EVERY_S:
            return session
        expires = min(now + SESSION_IDLE_S, session.created_at + SESSION_MAX_S)
        s = tables.web_sessions
        with self._tx() as conn:
            conn.execute(
                sa.update(s).where(s.c.token_hash == digest(token)).values(last_seen=now, expires_at=expires)
            )
        return replace(session, last_seen=now, expires_at=expires)

    def revoke_session(self, token: str) -> None:
        """Sign out one browser."""
        s = tables.web_sessions
        with self._tx() as conn:
            conn.execute(sa.delete(s).where(s.c.token_hash == digest(token)))

    def revoke_sessions(self, resident_id: str) -> int:
        """Sign out every browser of a resident; returns how many sessions ended."""
        s = tables.web_sessions
        with self._tx() as conn:
            return int(conn.execute(sa.delete(s).where(s.c.resident_id == resident_id)).rowcount)

    def purge_expired(self, *, now: float) -> int:
        s = tables.web_sessions
        with self._tx() as conn:
            return int(conn.execute(sa.delete(s).where(s.c.expires_at <= now)).rowcount)

    # -- personal access tokens -------------------------------------------------------------------

    def create_token(self, resident_id: str, name: str, *, now: float) -> tuple[ApiToken, str]:
        """A new access token for scripts; returns it with the plain token, which is never shown again."""
        name = " ".join(name.split())
        if not name or len(name) > MAX_TOKEN_NAME:
            raise AccountError(
                "bad_name", f"name the token (1 to {MAX_TOKEN_NAME} characters), e.g. what script uses it"
            )
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(secrets.token_urlsafe(8), resident_id, name, now)
        with self._tx() as conn:
            conn.execute(
                sa.insert(tables.api_tokens).values(
                    id=token.id, resident_id=resident_id, name=name, token_hash=digest(plain), created_at=now
                )
            )
            _audit(conn, now, resident_id, "token.create", subject=resident_id, detail={"token": token.id})
        return token, plain

    def token(self, plain: str, *, now: float) -> ApiToken | None:
        """The live token a request presents (recording its use), or None."""
        if not plain.startswith(TOKEN_PREFIX):
            return None
        t, r = tables.api_tokens, tables.residents
        query = (
            sa.select(t)
            .join(r, r.c.id == t.c.resident_id)
            .where(t.c.token_hash == digest(plain), t.c.revoked_at.is_(None), sa.not_(r.c.erased))
        )
        with self._tx() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            found = _token(row)
            if row.last_used is None or now - row.last_used >= TOUCH_EVERY_S:
                conn.execute(sa.update(t).where(t.c.id == row.id).values(last_used=now))
                found = replace(found, last_used=now)
        return found

    def tokens(self, resident_id: str) -> list[ApiToken]:
        """A resident's tokens, revoked ones included, newest first (never the tokens themselves)."""
        t = tables.api_tokens
        query = sa.select(t).where(t.c.resident_id == resident_id).order_by(t.c.created_at.desc(), t.c.id)
        with self._tx() as conn:
            return [_token(row) for row in conn.execute(query)]

    def revoke_token(self, resident_id: str, token_id: str, *, now: float) -> bool:
        """Revoke one of the resident's own tokens; False when they have no such live token."""
        t = tables.api_tokens
        with self._tx() as conn:
            done = conn.execute(
                sa.update(t)
                .where(t.c.id == token_id, t.c.resident_id == resident_id, t.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if done.rowcount != 1:
                return False
            _audit(conn, now, resident_id, "token.revoke", subject=resident_id, detail={"token": token_id})
        return True

    # -- erasure ----------------------------------------------------------------------------------

    def forget(self, resident_id: str) -> None:
        """Delete the resident's password, sessions and tokens (``Directory.erase_resident`` does too)."""
        with self._tx() as conn:
            for table in (tables.credentials, tables.web_sessions, tables.api_tokens):
                conn.execute(sa.delete(table).where(table.c.resident_id == resident_id))

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.store._begin() as conn:
            yield conn


def check_password(password: str) -> None:
    """Refuse passwords too short to resist guessing, or too long to hash cheaply."""
    if len(password) < MIN_PASSWORD:
        raise AccountError("weak_password", f"choose a password of at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError("long_password", f"choose a password of at most {MAX_PASSWORD} characters")


def _device_mac(key: bytes, resident_id: str, issued: str) -> str:
    return hmac.new(key, f"{resident_id}.{issued}".encode(), hashlib.sha256).hexdigest()


def _token(row: Any) -> ApiToken:
    return ApiToken(row.id, row.resident_id, row.name, row.created_at, row.last_used, row.revoked_at)


def _audit(
    conn: Connection,
    now: float,
    actor: str | None,
    action: str,
    *,
    subject: str | None = None,
    detail: dict[str, str] | None = None,
) -> None:
    # the same row shape as Directory's log, so residents read these entries with the rest
    text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)
    conn.execute(
        sa.insert(tables.audit).values(
            time=now, actor=actor, action=action, thing_id=None, subject=subject, detail=text
        )
    )
