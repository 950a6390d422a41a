"""The steward and admin pages through a real server: residents and invites, things, readers, relations
and the audit log."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from webkit import NOW, Neighborhood, csrf_of

from hub.domain.events import Scan
from hub.domain.model import RelationKind, Role, Thing, Visibility


def _post(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    return client.post(path, data={**data, "csrf_token": csrf_of(client, "/me")})


def _rows(html: str, attribute: str) -> list[str]:
    return re.findall(rf'<tr data-{attribute}="([^"]+)"', html)


def test_admin_creates_an_invite_whose_code_is_shown_once_and_joins_with_its_role(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    ada = client_for("ada")
    page = _post(ada, "/admin/invites", {"role": "steward"})
    assert page.status_code == 200
    match = re.search(r'<code id="invite-code">([^<]+)</code>', page.text)
    assert match, page.text
    code = match.group(1)
    assert code not in ada.get("/admin/residents").text  # shown on the answer to the form only

    newcomer = neighborhood.directory.redeem_invite(code, "erin", now=NOW)
    assert newcomer.role is Role.STEWARD
    assert 'data-resident="erin" data-role="steward"' in ada.get("/admin/residents").text


def test_admin_changes_a_role_but_never_demotes_the_last_admin(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    ada = client_for("ada")
    changed = _post(ada, "/admin/residents/role", {"pseudonym": "chen", "role": "steward"})
    assert changed.status_code == 303 and changed.headers["location"] == "/admin/residents?done=role"
    assert neighborhood.directory.resident(neighborhood.ids["chen"]).role is Role.STEWARD  # type: ignore[union-attr]
    assert 'data-resident="chen" data-role="steward"' in ada.get("/admin/residents").text

    refused = _post(ada, "/admin/residents/role", {"pseudonym": "ada", "role": "resident"})
    assert refused.status_code == 409
    assert "only admin" in refused.text
    assert neighborhood.directory.resident(neighborhood.ids["ada"]).role is Role.ADMIN  # type: ignore[union-attr]


def test_steward_manages_things_but_not_residents(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    neighborhood.directory.set_role(neighborhood.ids["chen"], Role.STEWARD, actor=None, now=NOW)
    chen = client_for("chen")
    residents = chen.get("/admin/residents")
    assert residents.status_code == 403 and "admins" in residents.text
    assert _post(chen, "/admin/invites", {"role": "admin"}).status_code == 403
    things = chen.get("/admin/things")
    assert things.status_code == 200
    assert _rows(things.text, "thing") == ["drill"]  # ada's private cellar stays out of sight
    assert 'href="/admin/things"' in things.text and 'href="/admin/residents"' not in things.text


def test_resident_gets_a_forbidden_page_and_anonymous_the_sign_in(
    client_for: Callable[..., httpx.Client],
) -> None:
    for path in ("/admin/things", "/admin/readers", "/admin/relations", "/admin/audit", "/admin/residents"):
        assert client_for("dee").get(path).status_code == 403
        anonymous = client_for().get(path, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_admin_edits_tags_and_retires_a_thing_and_the_directory_records_it(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    ada = client_for("ada")
    form = {"name": "Big drill", "visibility": "public", "share": "derived", "place": "shed, house 4"}
    assert _post(ada, "/admin/things/drill", form).status_code == 303
    assert _post(ada, "/admin/things/drill/tags", {"tag": "04a1b2c3"}).status_code == 303
    taken = _post(ada, "/admin/things/ada-cellar/tags", {"tag": "04A1B2C3"})
    assert taken.status_code == 409  # a tag names one thing
    assert _post(ada, "/admin/things/drill/retire", {}).status_code == 303

    drill = neighborhood.directory.thing("drill")
    assert drill is not None
    assert (drill.name, drill.visibility.value, drill.watcher_share.value) == (
        "Big drill",
        "public",
        "derived",
    )
    assert drill.location is not None and drill.location.place == "shed, house 4"
    assert "04A1B2C3" in drill.tags and drill.retired
    actions = [e.action for e in neighborhood.directory.audit(thing="drill")]
    assert actions[-3:] == ["thing.update", "thing.tag", "thing.retire"]


def test_forms_without_the_csrf_token_change_nothing(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    ada = client_for("ada")
    response = ada.post("/admin/residents/role", data={"pseudonym": "dee", "role": "admin"})
    assert response.status_code == 403
    assert neighborhood.directory.resident(neighborhood.ids["dee"]).role is Role.RESIDENT  # type: ignore[union-attr]


def test_granted_and_revoked_relations_appear_on_the_relations_and_audit_pages(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    ada = client_for("ada")
    granted = _post(
        ada, "/admin/relations", {"pseudonym": "chen", "thing": "drill", "kind": "stewards", "until": ""}
    )
    assert granted.status_code == 303, granted.text
    page = ada.get("/admin/relations").text
    [relation] = re.findall(
        r'data-relation="([^"]+)" data-kind="stewards" data-thing="drill" data-resident="chen"', page
    )

    revoked = _post(ada, f"/admin/relations/{relation}/revoke", {})
    assert revoked.status_code == 303
    assert relation not in ada.get("/admin/relations").text
    assert not neighborhood.directory.relations_of_thing("drill", now=NOW, kinds=(RelationKind.STEWARDS,))

    audit = ada.get("/admin/audit", params={"thing": "drill"})
    assert audit.status_code == 200
    rows = re.findall(
        r'<tr data-action="(relation\.[a-z]+)" data-thing="drill">\s*<td>[^<]*</td>'
        r'<td class="who">([^<]+)</td><td><code>[^<]+</code></td>\s*<td>[^<]*</td><td>([^<]*)</td>',
        audit.text,
    )
    # newest first: ada revoked, ada granted chen; bruno's lends relation at the start
    assert rows[:3] == [
        ("relation.revoke", "ada", "chen"),
        ("relation.grant", "ada", "chen"),
        ("relation.grant", "bruno", "bruno"),
    ]


def test_borrows_relations_cannot_be_granted_on_the_page(client_for: Callable[..., httpx.Client]) -> None:
    ada = client_for("ada")
    refused = _post(
        ada, "/admin/relations", {"pseudonym": "dee", "thing": "drill", "kind": "borrows", "until": ""}
    )
    assert refused.status_code == 422 and "loans" in refused.text


def test_readers_page_names_whose_card_it_was_to_admins_only(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    d, ids = neighborhood.directory, neighborhood.ids
    d.create_thing(
        Thing(id="shed-reader", name="Shed reader", kind="reader", visibility=Visibility.NEIGHBORS),
        owner=None,
        actor=ids["ada"],
        now=NOW,
    )
    d.add_card(ids["dee"], "AA11BB22", actor=ids["ada"], now=NOW)
    d.set_role(ids["chen"], Role.STEWARD, actor=None, now=NOW)
    neighborhood.live.record_scan(Scan("shed-reader", "native", "AA11BB22"), at=NOW - 20)
    neighborhood.live.record_scan(Scan("shed-reader", "native", "C2994A1B"), at=NOW - 10)

    admin = client_for("ada").get("/admin/readers").text
    assert 'data-reader="shed-reader"' in admin
    assert "card of dee" in admin and "tag of Cordless drill" in admin

    steward = client_for("chen").get("/admin/readers").text
    assert "a card" in steward and "tag of Cordless drill" in steward
    assert "AA11BB22" not in steward and "dee" not in steward.replace("data-reader", "")


def test_audit_page_filters_by_resident_and_hides_others_private_things(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    d, ids = neighborhood.directory, neighborhood.ids
    d.create_thing(
        Thing(id="dee-diary", name="Dee's diary", visibility=Visibility.PRIVATE),
        owner=ids["dee"],
        actor=ids["dee"],
        now=NOW,
    )
    ada = client_for("ada")
    everything = ada.get("/admin/audit").text
    assert "dee-diary" not in everything and "Dee&#39;s diary" not in everything
    assert 'data-thing="ada-cellar"' in everything  # her own private thing

    by_bruno = ada.get("/admin/audit", params={"resident": "bruno"})
    assert by_bruno.status_code == 200
    assert set(re.findall(r'data-thing="([^"]+)"', by_bruno.text)) == {"drill"}
    assert ada.get("/admin/audit", params={"thing": "dee-diary"}).status_code == 404
    assert ada.get("/admin/audit", params={"resident": "nobody"}).status_code == 404
