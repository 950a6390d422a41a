"""Accounts against a real SQLite file and real PostgreSQL: hashes, rehashing, session lifetimes,
access tokens and forgetting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from hub.storage.accounts import SESSION_IDLE_S, SESSION_MAX_S, AccountError, Accounts
from hub.storage.directory import Directory
from hub.storage.store import Store

T0 = 1_750_000_000.0
DAY = 86400.0
PASSWORD = "a long enough secret"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'hub.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    s = Store(str(url))
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def wren(store: Store) -> str:
    return Directory(store).add_resident("wren", actor=None, now=T0).id


def _hash(store: Store, resident: str) -> str:
    with store._engine.connect() as conn:
        query = sa.text("SELECT password_hash FROM credentials WHERE resident_id = :r")
        return str(conn.execute(query, {"r": resident}).scalar_one())


def test_a_password_is_kept_as_argon2id_and_rehashed_when_the_parameters_change(
    store: Store, wren: str
) -> None:
    weak = Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    weak.set_password(wren, PASSWORD, now=T0)
    old = _hash(store, wren)
    assert old.startswith("$argon2id$") and "m=8192" in old
    accounts = Accounts(store)
    assert accounts.verify(wren, PASSWORD, now=T0 + 1)
    new = _hash(store, wren)
    assert new != old and "m=8192" not in new
    assert accounts.verify(wren, PASSWORD, now=T0 + 2) and not accounts.verify(wren, "wrong password", now=T0)
    with pytest.raises(AccountError, match="at least 10"):
        accounts.set_password(wren, "short", now=T0)


def test_a_session_lives_while_used_and_never_past_its_maximum(store: Store, wren: str) -> None:
    accounts = Accounts(store)
    new = accounts.create_session(wren, now=T0)
    assert accounts.session(new.token, now=T0 + SESSION_IDLE_S - 1) is not None
    assert accounts.session(new.token, now=T0 + SESSION_IDLE_S) is None  # idle too long

    new = accounts.create_session(wren, now=T0)
    at = T0
    while at + SESSION_IDLE_S / 2 < T0 + SESSION_MAX_S:
        at += SESSION_IDLE_S / 2
        assert accounts.touch_session(new.token, now=at) is not None, at - T0
    assert accounts.session(new.token, now=T0 + SESSION_MAX_S) is None
    assert accounts.session("not a token", now=T0) is None


def test_a_new_password_ends_every_session(store: Store, wren: str) -> None:
    accounts = Accounts(store)
    accounts.set_password(wren, PASSWORD, now=T0)
    one, two = accounts.create_session(wren, now=T0), accounts.create_session(wren, now=T0)
    accounts.set_password(wren, "another long secret", now=T0 + 1)
    assert accounts.session(one.token, now=T0 + 2) is None and accounts.session(two.token, now=T0 + 2) is None


def test_tokens_are_shown_once_revocable_by_their_owner_only_and_forgotten(store: Store, wren: str) -> None:
    accounts = Accounts(store)
    other = Directory(store).add_resident("finch", actor=None, now=T0).id
    token, plain = accounts.create_token(wren, "  backup   script ", now=T0)
    assert token.name == "backup script" and plain.startswith("nhub_")
    found = accounts.token(plain, now=T0 + 100)
    assert found is not None and found.id == token.id and found.last_used == T0 + 100
    assert not accounts.revoke_token(other, token.id, now=T0)
    assert accounts.token(plain, now=T0) is not None
    assert accounts.revoke_token(wren, token.id, now=T0 + 200)
    assert accounts.token(plain, now=T0 + 300) is None
    assert [t.revoked_at for t in accounts.tokens(wren)] == [T0 + 200]
    with pytest.raises(AccountError):
        accounts.create_token(wren, "   ", now=T0)

    accounts.set_password(wren, PASSWORD, now=T0)
    accounts.create_session(wren, now=T0)
    accounts.forget(wren)
    assert not accounts.has_password(wren) and accounts.tokens(wren) == []
