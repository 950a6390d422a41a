"""Residents' Home Assistant links and shares in the store (hub/storage/halinks.py), on SQLite and
PostgreSQL: one link per resident, one share per entity and thing, unlinking takes the token and every
share in one transaction, and a running hub drops the link of a resident who was erased."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.domain.model import Thing
from hub.integrations.ha_source import RECONCILE_S, HaLinkDesk, HaSource
from hub.storage import store as tables
from hub.storage.directory import Directory
from hub.storage.halinks import HaLinkError, HaLinks, HaShare
from hub.storage.store import Store
from hub.telemetry import Telemetry

T = 1_790_000_000.0
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJzdG9yZS10ZXN0In0.c3RvcmUtdGVzdC1zaWduYXR1cmU"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    opened = Store(url) if url else Store.open(tmp_path)
    opened.migrate()
    yield opened
    opened.close()


def _thing(directory: Directory, resident: str, thing_id: str) -> None:
    directory.create_thing(Thing(id=thing_id, name=thing_id), owner=resident, actor=resident, now=T)


def test_a_link_keeps_its_token_hidden_and_unlinking_takes_every_share(store: Store) -> None:
    directory, links = Directory(store), HaLinks(store)
    wren = directory.add_resident("wren", actor=None, now=T).id
    with pytest.raises(HaLinkError, match="link your Home Assistant first"):
        links.add_share(HaShare(wren, "sensor.t", "t", "temperature", False, T))
    link = links.link(wren, "http://ha.example:8123", TOKEN, now=T)
    assert TOKEN not in repr(link) and TOKEN not in str(link) and link.token.reveal() == TOKEN
    relinked = links.link(wren, "http://ha2.example:8123", TOKEN + "x", now=T + 5)
    assert (relinked.url, relinked.created_at, relinked.token.reveal()) == (
        "http://ha2.example:8123",
        T,
        TOKEN + "x",
    )
    for entity, thing in (("sensor.t", "ha_link.t"), ("binary_sensor.flood", "ha_link.f")):
        _thing(directory, wren, thing)
        links.add_share(HaShare(wren, entity, thing, "temperature", False, T))
    with pytest.raises(HaLinkError, match="shared already"):
        links.add_share(HaShare(wren, "sensor.t", "ha_link.f", "temperature", False, T))
    assert [s.entity_id for s in links.shares(wren)] == ["binary_sensor.flood", "sensor.t"]
    assert links.remove_share(wren, "sensor.t") is not None
    assert links.remove_share(wren, "sensor.t") is None

    linked, removed = links.unlink(wren)
    assert linked and [s.thing for s in removed] == ["ha_link.f"]
    assert links.get(wren) is None and links.shares() == [] and links.unlink(wren) == (False, [])
    with store._engine.connect() as conn:
        for table in (tables.ha_links, tables.ha_shares):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0


def test_a_running_hub_drops_the_link_of_an_erased_resident(store: Store) -> None:
    directory, links = Directory(store), HaLinks(store)
    wren = directory.add_resident("wren", actor=None, now=T).id
    _thing(directory, wren, "ha_link.t")
    directory.erase_resident(wren, actor=None, now=T)
    # erasing deletes a link itself; this one was written behind its back (a process racing the erase)
    links.link(wren, "http://127.0.0.1:9", TOKEN, now=T)
    links.add_share(HaShare(wren, "sensor.t", "ha_link.t", "temperature", False, T))
    assert links.links()
    source = HaSource(HaLinkDesk(links, directory), lambda topic, payload: True, Telemetry())
    source.start()
    try:
        deadline = time.monotonic() + RECONCILE_S + 5
        retired = False
        while not retired and time.monotonic() < deadline:  # the thing is retired after the link goes
            time.sleep(0.1)
            retired = directory.thing("ha_link.t").retired  # type: ignore[union-attr]
        assert links.links() == [] and links.shares() == []
        assert retired
    finally:
        source.stop()
