"""Who may call what: every role (anonymous, resident, steward, admin) × the admin pages, the residents,
relations and audit API, and the things, loans and alerts API × their own and someone else's private
thing. The expected statuses are written out row by row; a private thing of someone else answers like
a thing that does not exist, on every path and for every role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from webkit import NOW, AlertHood, csrf_of

from hub.domain.events import Reading
from hub.domain.model import Relation, RelationKind, Role, Thing, Visibility

#: who plays each role, and the private thing each one owns (the anonymous kiosk owns nothing)
PLAYERS = {"anonymous": None, "resident": "dee", "steward": "chen", "admin": "ada"}
OWN = {"resident": "dee-box", "steward": "chen-box", "admin": "ada-cellar"}
#: someone else's private thing, per role
OTHERS = {"anonymous": "ada-cellar", "resident": "ada-cellar", "steward": "ada-cellar", "admin": "dee-box"}

ROLES = ("anonymous", "resident", "steward", "admin")
_ = None  # no such case: the kiosk owns no thing

# (method, path, target) → status for anonymous, resident, steward, admin.
# {T} is the target thing, {A} its open alert, {R} the relation "bruno watches {T}".
# target "-": the request names no thing; "own": the caller's private thing; "others": someone else's.
MATRIX: list[tuple[str, str, str, tuple[int | None, int, int, int]]] = [
    # -- the API this issue adds
    ("GET", "/api/v1/residents", "-", (401, 200, 200, 200)),
    ("GET", "/api/v1/residents/bruno", "-", (401, 200, 200, 200)),
    ("GET", "/api/v1/residents/nobody", "-", (401, 404, 404, 404)),
    ("GET", "/api/v1/relations", "-", (401, 200, 200, 200)),
    ("GET", "/api/v1/relations?thing={T}", "own", (_, 200, 200, 200)),
    ("GET", "/api/v1/relations?thing={T}", "others", (401, 404, 404, 404)),
    ("POST", "/api/v1/relations", "own", (_, 201, 201, 201)),
    ("POST", "/api/v1/relations", "others", (401, 404, 404, 404)),
    ("DELETE", "/api/v1/relations/{R}", "own", (_, 200, 200, 200)),
    ("DELETE", "/api/v1/relations/{R}", "others", (401, 404, 404, 404)),
    ("GET", "/api/v1/audit", "-", (401, 403, 200, 200)),
    ("GET", "/api/v1/audit?thing={T}", "own", (_, 403, 200, 200)),
    ("GET", "/api/v1/audit?thing={T}", "others", (401, 403, 404, 404)),
    # -- the API that was there before
    ("GET", "/api/v1/things/{T}", "own", (_, 200, 200, 200)),
    ("GET", "/api/v1/things/{T}", "others", (404, 404, 404, 404)),
    ("GET", "/api/v1/loans?thing={T}", "own", (_, 200, 200, 200)),
    ("GET", "/api/v1/loans?thing={T}", "others", (401, 200, 200, 200)),  # an empty list, see below
    ("POST", "/api/v1/loans", "own", (_, 409, 409, 409)),  # known, but not offered for lending
    ("POST", "/api/v1/loans", "others", (401, 404, 404, 404)),
    ("GET", "/api/v1/alerts", "-", (200, 200, 200, 200)),
    ("POST", "/api/v1/alerts/{A}/acknowledge", "own", (_, 200, 200, 200)),
    ("POST", "/api/v1/alerts/{A}/acknowledge", "others", (401, 404, 404, 404)),
    # -- the pages (anonymous: to the sign-in page; residents: a 403 page)
    ("GET", "/admin/residents", "-", (303, 403, 403, 200)),
    ("POST", "/admin/residents/role", "-", (303, 403, 403, 303)),
    ("POST", "/admin/invites", "-", (303, 403, 403, 200)),
    ("GET", "/admin/things", "-", (303, 403, 200, 200)),
    ("POST", "/admin/things/{T}", "own", (_, 403, 303, 303)),
    ("POST", "/admin/things/{T}", "others", (303, 403, 404, 404)),
    ("POST", "/admin/things/{T}/tags", "own", (_, 403, 303, 303)),
    ("POST", "/admin/things/{T}/tags", "others", (303, 403, 404, 404)),
    ("POST", "/admin/things/{T}/retire", "own", (_, 403, 303, 303)),
    ("POST", "/admin/things/{T}/retire", "others", (303, 403, 404, 404)),
    ("GET", "/admin/readers", "-", (303, 403, 200, 200)),
    ("GET", "/admin/relations", "-", (303, 403, 200, 200)),
    ("POST", "/admin/relations", "own", (_, 403, 303, 303)),
    ("POST", "/admin/relations", "others", (303, 403, 404, 404)),
    ("POST", "/admin/relations/{R}/revoke", "own", (_, 403, 303, 303)),
    ("POST", "/admin/relations/{R}/revoke", "others", (303, 403, 404, 404)),
    ("GET", "/admin/audit", "-", (303, 403, 200, 200)),
    ("GET", "/admin/audit?thing={T}", "own", (_, 403, 200, 200)),
    ("GET", "/admin/audit?thing={T}", "others", (303, 403, 404, 404)),
]

CASES = [
    pytest.param(
        method, path, target, role, expected[ROLES.index(role)], id=f"{role} {method} {path} {target}"
    )
    for method, path, target, expected in MATRIX
    for role in ROLES
    if expected[ROLES.index(role)] is not None
]

#: bodies of the unsafe requests ({T} filled in)
JSON_BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/relations": {"resident": "bruno", "thing": "{T}", "kind": "stewards"},
    "/api/v1/loans": {"thing": "{T}"},
    "/api/v1/alerts/{A}/acknowledge": {},
}
FORM_BODIES: dict[str, dict[str, str]] = {
    "/admin/residents/role": {"pseudonym": "bruno", "role": "steward"},
    "/admin/invites": {"role": "resident"},
    "/admin/things/{T}": {"name": "Renamed", "visibility": "private", "share": "none", "place": ""},
    "/admin/things/{T}/tags": {"tag": "0A0B0C0D"},
    "/admin/relations": {"pseudonym": "bruno", "thing": "{T}", "kind": "stewards", "until": ""},
}


@dataclass
class Private:
    """Per private thing: its open alert and the relation "bruno watches it"."""

    alert: str
    watch: str


@pytest.fixture
def private_things(alert_hood: AlertHood) -> dict[str, Private]:
    """chen is a steward; dee and chen own a private box each, next to ada's private cellar; bruno
    watches all three, and each has an open leak alert."""
    hood = alert_hood.hood
    d, ids = hood.directory, hood.ids
    d.set_role(ids["chen"], Role.STEWARD, actor=ids["ada"], now=NOW - 90)
    for owner in ("dee", "chen"):
        thing = Thing(id=f"{owner}-box", name=f"{owner}'s box", visibility=Visibility.PRIVATE)
        d.create_thing(thing, owner=ids[owner], actor=ids[owner], now=NOW - 90)
        hood.live.apply_reading(Reading(thing.id, "native", {"water_leak": False}), at=NOW - 5)
    alert_hood.service.sync_things(hood.clock())  # the engine learns of new things as the hub does
    found = {}
    for thing_id in ("ada-cellar", "dee-box", "chen-box"):
        [alert] = alert_hood.reading(thing_id, {"water_leak": True})
        watch = d.grant(
            Relation("", ids["bruno"], thing_id, RelationKind.WATCHES), actor=ids["bruno"], now=NOW - 80
        )
        found[thing_id] = Private(alert=alert, watch=watch.id)
    return found


def _fill(text: str, thing: str, private: Private | None) -> str:
    text = text.replace("{T}", thing)
    if private is not None:
        text = text.replace("{A}", private.alert).replace("{R}", private.watch)
    return text


def _request(
    client: httpx.Client, csrf: str | None, method: str, path: str, thing: str, private: Private | None
) -> httpx.Response:
    url = _fill(path, thing, private)
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    bare = path.split("?")[0]
    if method == "GET":
        return client.get(url)
    if method == "DELETE":
        return client.delete(url, headers=headers)
    if bare in JSON_BODIES:
        body = {k: _fill(v, thing, private) for k, v in JSON_BODIES[bare].items()}
        return client.post(url, json=body, headers=headers)
    form = {k: _fill(v, thing, private) for k, v in FORM_BODIES.get(bare, {}).items()}
    if csrf:
        form["csrf_token"] = csrf
    return client.post(url, data=form)


@pytest.mark.parametrize(("method", "path", "target", "role", "expected"), CASES)
def test_status_of_each_role_on_each_endpoint(
    alert_client: Callable[..., httpx.Client],
    private_things: dict[str, Private],
    method: str,
    path: str,
    target: str,
    role: str,
    expected: int,
) -> None:
    client = alert_client(PLAYERS[role])
    client.follow_redirects = False
    csrf = csrf_of(client) if PLAYERS[role] else None
    thing = {"own": OWN.get(role, ""), "others": OTHERS[role], "-": ""}[target]
    response = _request(client, csrf, method, path, thing, private_things.get(thing))
    assert response.status_code == expected, response.text[:500]
    if target == "others" and response.status_code < 400:
        assert thing not in response.text  # listed endpoints answer, but never with someone's private thing
    if expected == 303 and role == "anonymous":
        assert response.headers["location"].startswith("/login")


@pytest.mark.parametrize("role", ROLES)
def test_lists_never_name_someone_elses_private_thing(
    alert_client: Callable[..., httpx.Client], private_things: dict[str, Private], role: str
) -> None:
    client = alert_client(PLAYERS[role])
    others = OTHERS[role]
    hidden = {others} | ({"dee-box", "chen-box", "ada-cellar"} - {OWN.get(role, "")})
    paths = ["/api/v1/things", "/api/v1/alerts"]
    if role != "anonymous":
        paths += ["/api/v1/relations", "/api/v1/loans"]
    if role in ("steward", "admin"):
        paths += ["/api/v1/audit", "/admin/things", "/admin/relations", "/admin/audit", "/admin/readers"]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        for thing in hidden:
            assert thing not in response.text, f"{path} names {thing} to the {role}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/things/{T}"),
        ("GET", "/api/v1/relations?thing={T}"),
        ("POST", "/api/v1/relations"),
        ("POST", "/api/v1/loans"),
        ("GET", "/admin/audit?thing={T}"),
        ("POST", "/admin/relations"),
    ],
)
def test_steward_gets_the_same_404_for_missing_and_forbidden_things(
    alert_client: Callable[..., httpx.Client], private_things: dict[str, Private], method: str, path: str
) -> None:
    # a steward: a plain resident stops at the pages' role gate before any thing is looked up
    client = alert_client("chen")
    csrf = csrf_of(client)
    forbidden = _request(client, csrf, method, path, "ada-cellar", None)
    missing = _request(client, csrf, method, path, "no-such-thin", None)  # same length as the private id
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.text.replace("ada-cellar", "ID") == missing.text.replace("no-such-thin", "ID")
    assert forbidden.headers.get("content-type") == missing.headers.get("content-type")


def test_resident_gets_the_same_404_for_missing_and_forbidden_ids_in_the_api(
    alert_client: Callable[..., httpx.Client], private_things: dict[str, Private]
) -> None:
    client = alert_client("dee")
    csrf = csrf_of(client)
    headers = {"X-CSRF-Token": csrf}
    forbidden_relation = client.delete(
        f"/api/v1/relations/{private_things['ada-cellar'].watch}", headers=headers
    )
    missing_relation = client.delete("/api/v1/relations/no-such-relation", headers=headers)
    assert forbidden_relation.status_code == missing_relation.status_code == 404
    assert forbidden_relation.json()["reason"] == missing_relation.json()["reason"] == "not_found"
    for path in ("/api/v1/things/{T}", "/api/v1/relations?thing={T}"):
        forbidden = client.get(path.replace("{T}", "ada-cellar"))
        missing = client.get(path.replace("{T}", "no-such-thin"))
        assert forbidden.status_code == missing.status_code == 404
        assert forbidden.text.replace("ada-cellar", "ID") == missing.text.replace("no-such-thin", "ID")
