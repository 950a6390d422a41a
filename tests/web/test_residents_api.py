"""/api/v1/residents, /api/v1/relations and /api/v1/audit over the real store."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from webkit import NOW, Neighborhood, csrf_of

from hub.domain.model import Contact, Loan, LoanState, Relation, RelationKind, Role, Thing, Visibility


def _headers(client: httpx.Client) -> dict[str, str]:
    return {"X-CSRF-Token": csrf_of(client)}


def test_residents_are_listed_by_pseudonym_and_role_without_contacts(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    d, ids = neighborhood.directory, neighborhood.ids
    d.update_contacts(
        ids["bruno"], "Bruno Real", [Contact("email", "bruno@example.org")], actor=None, now=NOW
    )
    d.erase_resident(ids["chen"], actor=ids["ada"], now=NOW)
    response = client_for("dee").get("/api/v1/residents")
    assert response.status_code == 200
    assert sorted(response.json()["residents"], key=lambda r: r["pseudonym"]) == [
        {"pseudonym": "ada", "role": "admin"},
        {"pseudonym": "bruno", "role": "resident"},
        {"pseudonym": "dee", "role": "resident"},
    ]
    assert "bruno@example.org" not in response.text and "Bruno Real" not in response.text


def test_resident_detail_explains_trust_from_verified_loans_and_vouches(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    d, ids = neighborhood.directory, neighborhood.ids
    returned = Loan(
        "",
        "drill",
        ids["dee"],
        ids["bruno"],
        LoanState.RETURNED,
        start=NOW - 5 * 86400,
        due=NOW - 2 * 86400,
        out_at=NOW - 5 * 86400,
        returned_at=NOW - 3 * 86400,
        out_reader="shed",
        return_reader="shed",
    )
    d.save_loan(returned, actor=None, now=NOW - 3 * 86400, action="loan.return")
    d.vouch(ids["bruno"], ids["dee"], now=NOW)
    d.vouch(ids["chen"], ids["dee"], now=NOW)
    response = client_for("chen").get("/api/v1/residents/dee")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pseudonym"] == "dee" and body["role"] == "resident"
    assert body["trust"]["explanation"] == "1 on-time return, vouched by 2"
    assert (body["trust"]["on_time"], body["trust"]["late"], body["trust"]["vouches"]) == (1, 0, 2)
    assert ids["bruno"] not in response.text  # who vouched is not told, only how many


def test_unknown_and_erased_residents_are_not_found(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    neighborhood.directory.erase_resident(neighborhood.ids["chen"], actor=None, now=NOW)
    dee = client_for("dee")
    assert dee.get("/api/v1/residents/nobody").status_code == 404
    assert dee.get("/api/v1/residents/chen").status_code == 404
    assert dee.get("/api/v1/residents/former-neighbor-1").status_code == 404


def test_residents_api_needs_a_signed_in_resident(client_for: Callable[..., httpx.Client]) -> None:
    anonymous = client_for()
    assert anonymous.get("/api/v1/residents").status_code == 401
    assert anonymous.get("/api/v1/residents/ada").status_code == 401


def test_steward_grants_and_revokes_a_relation_and_both_are_audited(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    neighborhood.directory.set_role(neighborhood.ids["chen"], Role.STEWARD, actor=None, now=NOW)
    chen = client_for("chen")
    headers = _headers(chen)
    granted = chen.post(
        "/api/v1/relations",
        json={"resident": "dee", "thing": "drill", "kind": "stewards", "until": "2030-01-01T00:00:00Z"},
        headers=headers,
    )
    assert granted.status_code == 201, granted.text
    relation = granted.json()
    assert (relation["resident"], relation["kind"], relation["granted_by"], relation["active"]) == (
        "dee",
        "stewards",
        "chen",
        True,
    )
    listed = chen.get("/api/v1/relations", params={"thing": "drill"}).json()["relations"]
    assert {(r["resident"], r["kind"]) for r in listed} == {
        ("bruno", "owns"),
        ("bruno", "lends"),
        ("dee", "stewards"),
    }

    revoked = chen.delete(f"/api/v1/relations/{relation['id']}", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert (
        chen.delete(f"/api/v1/relations/{relation['id']}", headers=headers).json()["reason"]
        == "already_revoked"
    )

    audit = client_for("ada").get("/api/v1/audit", params={"thing": "drill"}).json()["entries"]
    steps = [(e["actor"], e["action"], e["subject"]) for e in audit if e["action"].startswith("relation.")]
    assert steps[-2:] == [("chen", "relation.grant", "dee"), ("chen", "relation.revoke", "dee")]


def test_resident_may_watch_a_thing_but_not_make_others_watch_it(
    client_for: Callable[..., httpx.Client],
) -> None:
    dee = client_for("dee")
    headers = _headers(dee)
    for_someone = dee.post(
        "/api/v1/relations", json={"resident": "chen", "thing": "drill", "kind": "watches"}, headers=headers
    )
    assert for_someone.status_code == 403 and for_someone.json()["reason"] == "forbidden"
    for_self = dee.post(
        "/api/v1/relations", json={"resident": "dee", "thing": "drill", "kind": "watches"}, headers=headers
    )
    assert for_self.status_code == 201, for_self.text
    assert [r["kind"] for r in dee.get("/api/v1/relations").json()["relations"]] == ["watches"]
    gave_up = dee.delete(f"/api/v1/relations/{for_self.json()['id']}", headers=headers)
    assert gave_up.status_code == 200


def test_lends_and_borrows_are_not_granted_by_hand(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    bruno = client_for("bruno")
    headers = _headers(bruno)
    for kind in ("lends", "borrows"):
        response = bruno.post(
            "/api/v1/relations", json={"resident": "dee", "thing": "drill", "kind": kind}, headers=headers
        )
        assert response.status_code == 422 and response.json()["reason"] == "not_grantable", response.text
    assert not any(
        r.resident == neighborhood.ids["dee"]
        for r in neighborhood.directory.relations_of_thing("drill", now=NOW)
    )


def test_relation_changes_by_cookie_need_the_csrf_token(client_for: Callable[..., httpx.Client]) -> None:
    bruno = client_for("bruno")
    response = bruno.post("/api/v1/relations", json={"resident": "dee", "thing": "drill", "kind": "watches"})
    assert response.status_code == 403
    assert (
        bruno.get("/api/v1/relations", params={"thing": "drill"}).json()["relations"][-1]["resident"]
        == "bruno"
    )


def test_audit_api_is_for_stewards_and_admins_and_hides_others_private_things(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    d, ids = neighborhood.directory, neighborhood.ids
    d.create_thing(
        Thing(id="dee-diary", name="Dee's diary sensor", visibility=Visibility.PRIVATE),
        owner=ids["dee"],
        actor=ids["dee"],
        now=NOW,
    )
    assert client_for("dee").get("/api/v1/audit").status_code == 403
    assert client_for().get("/api/v1/audit").status_code == 401

    ada = client_for("ada")
    entries = ada.get("/api/v1/audit").json()["entries"]
    things = {e["thing"] for e in entries}
    assert "drill" in things and "ada-cellar" in things  # a neighbors' thing, and her own private one
    assert "dee-diary" not in ada.get("/api/v1/audit").text
    assert ada.get("/api/v1/audit", params={"thing": "dee-diary"}).status_code == 404
    joined = [e for e in entries if e["action"] == "resident.add"]
    assert {e["subject"] for e in joined} == {"bruno", "dee", "chen"}  # admins read entries about residents


def test_audit_filtered_by_resident_shows_what_they_did_and_what_concerns_them(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    entries = client_for("ada").get("/api/v1/audit", params={"resident": "bruno"}).json()["entries"]
    assert {(e["action"], e["thing"]) for e in entries} >= {
        ("thing.create", "drill"),
        ("relation.grant", "drill"),
    }
    assert all("bruno" in (e["actor"], e["subject"]) for e in entries)


def test_steward_role_alone_does_not_open_a_things_audit_but_stewarding_it_does(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    d, ids = neighborhood.directory, neighborhood.ids
    d.set_role(ids["chen"], Role.STEWARD, actor=None, now=NOW)
    chen = client_for("chen")
    refused = chen.get("/api/v1/audit", params={"thing": "drill"})
    assert refused.status_code == 403 and refused.json()["reason"] == "forbidden"
    assert chen.get("/admin/audit", params={"thing": "drill"}).status_code == 403
    d.grant(Relation("", ids["chen"], "drill", RelationKind.STEWARDS), actor=ids["bruno"], now=NOW)
    entries = chen.get("/api/v1/audit", params={"thing": "drill"}).json()["entries"]
    assert entries[-1]["action"] == "relation.grant" and entries[-1]["subject"] == "chen"
