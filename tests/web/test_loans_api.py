"""The loans API and access tokens over a real server, store and lending desk: borrow and return, reserve
conflicts, approvals, refusals as JSON with the lending rules' reason, and tokens that stop working when
revoked."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from webkit import Neighborhood, csrf_of

from hub.domain.model import LendPolicy, LoanState, Relation, RelationKind

DAY = 86400.0


def _token(client: httpx.Client, name: str = "my script") -> str:
    """Create a personal access token through the page, as a resident would."""
    page = client.post("/me/tokens", data={"name": name, "csrf_token": csrf_of(client, "/me/tokens")})
    assert page.status_code == 201, page.text
    match = re.search(r'<code id="new-token" class="secret">([^<]+)</code>', page.text)
    assert match, "the new token is shown once on the page"
    return match.group(1)


def _csrf(client: httpx.Client) -> dict[str, str]:
    """The header a script running in the signed-in browser sends with JSON calls."""
    return {"X-CSRF-Token": csrf_of(client)}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_access_token_works_for_the_api_and_not_once_revoked(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    browser = client_for("dee")
    token = _token(browser)
    api = client_for()
    assert api.get("/api/v1/loans").status_code == 401
    mine = api.get("/api/v1/loans", headers=_bearer(token))
    assert mine.status_code == 200 and mine.json() == {"loans": []}
    # a token needs no CSRF token: it is no ambient credential a foreign page could ride on
    out = api.post("/api/v1/things/drill/checkout", headers=_bearer(token))
    assert out.status_code == 201 and out.json()["borrower"] == "dee"

    token_id = neighborhood.accounts.tokens(neighborhood.ids["dee"])[0].id
    assert token not in browser.get("/me/tokens").text  # shown once, never again
    form = {"csrf_token": csrf_of(browser, "/me/tokens")}
    revoked = browser.post(f"/me/tokens/{token_id}/revoke", data=form)
    assert revoked.status_code == 303
    refused = api.get("/api/v1/loans", headers=_bearer(token))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    # a wrong token is an error, never a quiet fall-back to the kiosk view
    assert api.get("/api/v1/things", headers=_bearer(token)).status_code == 401
    assert api.get("/api/v1/things", headers=_bearer("nhub_made-up")).status_code == 401


def test_borrow_and_return_through_the_api(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    dee = client_for()
    headers = _bearer(_token(client_for("dee")))
    out = dee.post("/api/v1/things/drill/checkout", headers=headers)
    assert out.status_code == 201, out.text
    loan = out.json()
    assert loan["state"] == "out" and loan["mine"] is True and loan["lender"] == "bruno"
    # three days, the drill's lending policy
    assert loan["due"].startswith("2025-06-18")

    listed = dee.get("/api/v1/loans", headers=headers).json()["loans"]
    assert [item["id"] for item in listed] == [loan["id"]]
    again = dee.post("/api/v1/things/drill/checkout", headers=headers)
    assert again.status_code == 409, again.text

    neighborhood.clock.advance(DAY)
    back = dee.post("/api/v1/things/drill/return", headers=headers)
    assert back.status_code == 200, back.text
    assert back.json()["state"] == "returned" and back.json()["returned_at"] is not None
    # once back, dee holds no relation that lets her return it; its owner may, but it is not out
    assert dee.post("/api/v1/things/drill/return", headers=headers).status_code == 403
    bruno = client_for("bruno")
    not_out = bruno.post("/api/v1/things/drill/return", headers=_csrf(bruno))
    assert not_out.status_code == 409 and not_out.json()["reason"] == "not_out"

    actions = [(entry.action, entry.actor) for entry in neighborhood.directory.audit(thing="drill")]
    dee_id = neighborhood.ids["dee"]
    assert ("loan.out", dee_id) in actions and ("loan.return", dee_id) in actions
    assert neighborhood.directory.loan(loan["id"]).state is LoanState.RETURNED


def test_custody_of_a_loan_is_visible_to_neighbors_but_bookings_only_to_those_concerned(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    dee = client_for("dee")
    booked = dee.post(
        "/api/v1/loans",
        json={"thing": "drill", "start": "2025-06-20T10:00:00Z", "days": 1},
        headers=_csrf(dee),
    )
    assert booked.status_code == 201, booked.text
    chen, bruno = client_for("chen"), client_for("bruno")
    assert chen.get("/api/v1/loans").json()["loans"] == []  # a future booking is not custody
    assert [loan["borrower"] for loan in bruno.get("/api/v1/loans").json()["loans"]] == ["dee"]
    out = bruno.post("/api/v1/things/drill/checkout", headers=_csrf(bruno))
    assert out.status_code == 409 and out.json()["reason"] == "own_thing"
    walk_up = chen.post("/api/v1/things/drill/checkout", headers=_csrf(chen))
    assert walk_up.status_code == 201, walk_up.text
    seen_by_dee = dee.get("/api/v1/loans").json()["loans"]
    seen = {(loan["borrower"], loan["state"]) for loan in seen_by_dee}
    assert seen == {("dee", "reserved"), ("chen", "out")}


def test_a_reservation_that_overlaps_another_is_a_409_conflict_naming_the_window(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    dee, chen = client_for("dee"), client_for("chen")
    first = dee.post("/api/v1/loans", json={"thing": "drill", "days": 2}, headers=_csrf(dee))
    assert first.status_code == 201 and first.json()["state"] == "reserved"
    clash = chen.post(
        "/api/v1/loans",
        json={"thing": "drill", "start": "2025-06-16T12:00:00Z", "days": 1},
        headers=_csrf(chen),
    )
    assert clash.status_code == 409
    body = clash.json()
    assert body["reason"] == "conflict" and body["detail"]
    assert body["window"][0] == neighborhood.clock()
    too_long = chen.post("/api/v1/loans", json={"thing": "drill", "days": 30}, headers=_csrf(chen))
    assert too_long.status_code == 422 and too_long.json()["reason"] == "bad_window"
    unknown = chen.post("/api/v1/loans", json={"thing": "no-such-thing"}, headers=_csrf(chen))
    assert unknown.status_code == 404 and unknown.json()["reason"] == "not_found"


def test_owner_approves_a_request_and_the_borrower_may_not(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    ids, d, now = neighborhood.ids, neighborhood.directory, neighborhood.clock()
    lends = next(r for r in d.relations_of_thing("drill", now=now) if r.kind is RelationKind.LENDS)
    d.revoke(lends.id, actor=ids["bruno"], now=now)
    policy = LendPolicy(loan_days=3, needs_approval=True)
    lends = Relation("", ids["bruno"], "drill", RelationKind.LENDS, policy=policy)
    d.grant(lends, actor=ids["bruno"], now=now)

    dee, bruno = client_for("dee"), client_for("bruno")
    asked = dee.post("/api/v1/loans", json={"thing": "drill"}, headers=_csrf(dee))
    assert asked.status_code == 201 and asked.json()["state"] == "requested"
    loan_id = asked.json()["id"]
    self_approval = dee.post(f"/api/v1/loans/{loan_id}/approve", headers=_csrf(dee))
    assert self_approval.status_code == 403 and self_approval.json()["reason"] == "forbidden"
    assert "Requests waiting for you" in bruno.get("/me").text
    approved = bruno.post(f"/api/v1/loans/{loan_id}/approve", headers=_csrf(bruno))
    assert approved.status_code == 200 and approved.json()["state"] == "reserved"
    cancelled = dee.post(f"/api/v1/loans/{loan_id}/cancel", headers=_csrf(dee))
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"


def test_a_resident_joins_the_waitlist_of_a_thing_that_is_out(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    dee, chen = client_for("dee"), client_for("chen")
    out = dee.post("/api/v1/things/drill/checkout", headers=_csrf(dee))
    assert out.status_code == 201
    page = chen.get("/things/drill")
    assert "Join the waitlist" in page.text and "Borrow now" not in page.text
    joined = chen.post("/things/drill/waitlist", data={"csrf_token": csrf_of(chen, "/things/drill")})
    assert joined.status_code == 303
    assert [r for r, _ in neighborhood.directory.waitlist("drill")] == [neighborhood.ids["chen"]]
    assert "number 1 on the waitlist" in chen.get("/things/drill").text


def test_openapi_documents_the_loans_api(client_for: Callable[..., httpx.Client]) -> None:
    paths = client_for().get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/loans",
        "/api/v1/loans/{loan_id}",
        "/api/v1/loans/{loan_id}/approve",
        "/api/v1/loans/{loan_id}/decline",
        "/api/v1/loans/{loan_id}/cancel",
        "/api/v1/things/{thing_id}/checkout",
        "/api/v1/things/{thing_id}/return",
    ):
        assert path in paths, path
    assert "/login" not in paths and "/me" not in paths  # pages are not API
