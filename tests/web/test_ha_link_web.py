"""/me/homeassistant and /api/v1/me/homeassistant over a real store and a real server: link errors shown
with what to do (and never the token), sign-in and CSRF, what one resident shares is theirs alone,
unsharing retires the thing, and nothing is served when the hub does not follow residents' Home Assistant.

The Home Assistant side of linking and sharing runs against a real Home Assistant in
tests/integrations/test_ha_source_real.py; here links and shares that need none are made in the store.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa
from webkit import NOW, Neighborhood, csrf_of

from hub.domain.model import Share, Thing, Visibility
from hub.integrations.ha_source import HaLinkDesk, HaSource, SourceSettings
from hub.storage import store as tables
from hub.storage.halinks import HaLinks, HaShare
from hub.telemetry import Telemetry
from hub.web import WebServer

#: a well-formed long-lived access token (a JWT's shape) that must never be shown back
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJkZWUtdGVzdCJ9.c2VjcmV0LXNpZ25hdHVyZS1vZi1kZWU"


@pytest.fixture
def source(neighborhood: Neighborhood, telemetry: Telemetry) -> HaSource:
    """The link manager as the hub builds it, not started: no streams, every operation works."""
    desk = HaLinkDesk(
        HaLinks(neighborhood.store),
        neighborhood.directory,
        SourceSettings(timeout_s=3.0),
        clock=neighborhood.clock,
    )
    return HaSource(desk, lambda topic, payload: True, telemetry)


@pytest.fixture
def client(
    neighborhood: Neighborhood, telemetry: Telemetry, source: HaSource, start_server: Callable[..., WebServer]
) -> Iterator[Callable[..., httpx.Client]]:
    """``client("dee")``: signed in as dee on a server whose hub follows residents' Home Assistant."""
    ctx = dataclasses.replace(neighborhood.context(telemetry), homeassistant_source=source)
    server = start_server(ctx)
    clients: list[httpx.Client] = []

    def make(pseudonym: str | None = None) -> httpx.Client:
        from webkit import sign_in

        made = httpx.Client(base_url=server.url or "", timeout=20)
        clients.append(made)
        if pseudonym is not None:
            assert sign_in(made, pseudonym).status_code == 303
        return made

    yield make
    for made in clients:
        made.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def links(neighborhood: Neighborhood) -> int:
    with neighborhood.store._engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(tables.ha_links)).scalar_one())


#: (URL, token, what the page and the API say); the closed port is filled in
LINK_ERRORS = [
    (
        "homeassistant.local:8123",
        TOKEN,
        "is not an http(s) address: give the address you open Home Assistant",
    ),
    ("http://dee:pw@ha.example:8123", TOKEN, "the access token in the token field, not in the URL"),
    (
        "http://127.0.0.1:{closed}",
        TOKEN,
        "could not be reached (the connection was refused): check that Home",
    ),
    (
        "http://127.0.0.1:{closed}",
        f"{TOKEN} pasted twice {TOKEN}",
        "is not a long-lived access token: copy the",
    ),
    ("http://127.0.0.1:{closed}", "   ", "a long-lived access token (your Home Assistant profile"),
]


def test_a_link_that_fails_says_what_to_do_and_never_shows_the_token(
    client: Callable[..., httpx.Client], neighborhood: Neighborhood
) -> None:
    dee = client("dee")
    for url, token, shown in LINK_ERRORS:
        url = url.format(closed=closed_port())
        form = {"url": url, "token": token, "csrf_token": csrf_of(dee, "/me/homeassistant")}
        page = dee.post("/me/homeassistant/link", data=form)
        assert page.status_code == 422, url
        assert 'role="alert" id="error"' in page.text and shown in page.text, (url, shown)
        if "@" in url:  # a password typed into the address is not shown back either
            assert "pw@" not in page.text
        else:
            assert f'value="{url}"' in page.text  # the address is kept to correct it
        assert TOKEN not in page.text
        answer = dee.put("/api/v1/me/homeassistant", json={"url": url, "token": token}, headers=_csrf(dee))
        assert answer.status_code == 422 and shown in answer.json()["detail"], answer.text
        assert TOKEN not in answer.text
    assert links(neighborhood) == 0


def _csrf(client: httpx.Client) -> dict[str, str]:
    return {"X-CSRF-Token": csrf_of(client, "/me/homeassistant")}


def test_anonymous_and_forged_requests_are_refused(
    client: Callable[..., httpx.Client], neighborhood: Neighborhood
) -> None:
    anonymous = client()
    page = anonymous.get("/me/homeassistant")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert anonymous.get("/api/v1/me/homeassistant").status_code == 401
    assert (
        anonymous.put("/api/v1/me/homeassistant", json={"url": "http://x", "token": TOKEN}).status_code == 401
    )
    dee = client("dee")
    forged = dee.post("/me/homeassistant/link", data={"url": "http://127.0.0.1:9", "token": TOKEN})
    assert forged.status_code == 403
    assert (
        dee.put("/api/v1/me/homeassistant", json={"url": "http://127.0.0.1:9", "token": TOKEN}).status_code
        == 403
    )
    assert links(neighborhood) == 0


def _shared(neighborhood: Neighborhood, resident: str, entity_id: str) -> Thing:
    """A link and a share made in the store, as linking and sharing against a Home Assistant leave them."""
    d = neighborhood.directory
    thing = d.create_thing(
        Thing(
            id=f"ha_link.{entity_id}",
            name="Basement flood",
            visibility=Visibility.NEIGHBORS,
            watcher_share=Share.DERIVED,
        ),
        owner=resident,
        actor=resident,
        now=NOW,
    )
    halinks = HaLinks(neighborhood.store)
    halinks.link(resident, "http://127.0.0.1:9", TOKEN, now=NOW)
    halinks.add_share(HaShare(resident, entity_id, thing.id, "water_leak", False, NOW))
    return thing


def test_what_a_resident_shares_is_shown_to_them_alone_and_unsharing_retires_it(
    client: Callable[..., httpx.Client], neighborhood: Neighborhood
) -> None:
    dee_id = neighborhood.ids["dee"]
    thing = _shared(neighborhood, dee_id, "binary_sensor.flood")
    dee, chen = client("dee"), client("chen")
    page = dee.get("/me/homeassistant")
    assert (
        page.status_code == 200 and "binary_sensor.flood" in page.text and f"/things/{thing.id}" in page.text
    )
    assert "http://127.0.0.1:9" in page.text and TOKEN not in page.text
    assert 'href="/me/homeassistant"' in dee.get("/me").text
    status = dee.get("/api/v1/me/homeassistant").json()
    assert status["linked"] and status["url"] == "http://127.0.0.1:9" and TOKEN not in str(status)
    assert [s["thing"] for s in status["shares"]] == [thing.id]

    assert chen.get("/api/v1/me/homeassistant").json()["linked"] is False
    assert "binary_sensor.flood" not in chen.get("/me/homeassistant").text
    stolen = chen.delete("/api/v1/me/homeassistant/shares/binary_sensor.flood", headers=_csrf(chen))
    assert stolen.status_code == 404 and stolen.json()["reason"] == "not_shared"
    assert not neighborhood.directory.thing(thing.id).retired  # type: ignore[union-attr]

    done = dee.post(
        "/me/homeassistant/unshare",
        data={"entity_id": "binary_sensor.flood", "csrf_token": csrf_of(dee, "/me/homeassistant")},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "No longer shared" in done.text
    assert neighborhood.directory.thing(thing.id).retired  # type: ignore[union-attr]
    assert HaLinks(neighborhood.store).shares(dee_id) == []
    again = dee.delete("/api/v1/me/homeassistant/shares/binary_sensor.flood", headers=_csrf(dee))
    assert again.status_code == 404


def test_without_a_link_the_list_and_sharing_say_link_first(client: Callable[..., httpx.Client]) -> None:
    dee = client("dee")
    assert dee.get("/api/v1/me/homeassistant").json() == {
        "linked": False, "url": None, "state": None, "mode": None, "reason": None, "problem": None,
        "next_try": None, "shares": [],
    }  # fmt: skip
    listed = dee.get("/api/v1/me/homeassistant/entities")
    assert listed.status_code == 409 and listed.json()["reason"] == "not_linked"
    shared = dee.post("/api/v1/me/homeassistant/shares", json={"entity_id": "sensor.t"}, headers=_csrf(dee))
    assert shared.status_code == 409 and "link your Home Assistant first" in shared.json()["detail"]
    assert dee.delete("/api/v1/me/homeassistant", headers=_csrf(dee)).status_code == 404


def test_unlinking_from_the_page_deletes_the_token(
    client: Callable[..., httpx.Client], neighborhood: Neighborhood
) -> None:
    dee_id = neighborhood.ids["dee"]
    thing = _shared(neighborhood, dee_id, "binary_sensor.flood")
    dee = client("dee")
    done = dee.post(
        "/me/homeassistant/unlink",
        data={"csrf_token": csrf_of(dee, "/me/homeassistant")},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "its token is deleted" in done.text
    assert links(neighborhood) == 0 and HaLinks(neighborhood.store).shares() == []
    assert neighborhood.directory.thing(thing.id).retired  # type: ignore[union-attr]
    actions = [entry.action for entry in neighborhood.directory.audit(subject=dee_id)]
    assert "homeassistant.unlink" in actions


def test_nothing_is_served_when_the_hub_does_not_follow_home_assistant(
    neighborhood: Neighborhood, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> None:
    from webkit import sign_in

    server = start_server(neighborhood.context(telemetry))
    with httpx.Client(base_url=server.url or "", timeout=10) as dee:
        assert sign_in(dee, "dee").status_code == 303
        assert dee.get("/me/homeassistant").status_code == 404
        assert dee.get("/api/v1/me/homeassistant").status_code == 404
        assert "/me/homeassistant" not in dee.get("/me").text
