"""A private thing stays unknown to an unrelated resident on every path — page, things API, loans API,
live stream — and a forbidden id answers exactly like a missing one. Its owner sees it on the same
paths, so each check can fail."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from webkit import EventStream, Neighborhood, csrf_of

from hub.domain.model import Loan, LoanState, Relation, RelationKind
from hub.web import WebServer


@pytest.fixture
def cellar_loan(neighborhood: Neighborhood) -> str:
    """bruno borrowed ada's private cellar sensor (so the loans API has something to hide)."""
    ids, d, now = neighborhood.ids, neighborhood.directory, neighborhood.clock()
    d.grant(Relation("", ids["ada"], "ada-cellar", RelationKind.LENDS), actor=ids["ada"], now=now)
    bruno, ada = ids["bruno"], ids["ada"]
    loan = Loan("cellar-loan", "ada-cellar", bruno, ada, LoanState.OUT, now, now + 86400, out_at=now)
    d.save_loan(loan, actor=ids["ada"], now=now, action="loan.out")
    return loan.id


def _things(client: httpx.Client) -> set[str]:
    return {thing["id"] for thing in client.get("/api/v1/things").json()["things"]}


def test_owner_sees_the_private_thing_everywhere(
    cellar_loan: str, client_for: Callable[..., httpx.Client]
) -> None:
    ada = client_for("ada")
    page = ada.get("/things/ada-cellar")
    assert page.status_code == 200 and "Ada&#39;s cellar" in page.text and "71.5 %" in page.text
    assert "ada-cellar" in _things(ada)
    assert ada.get("/api/v1/things/ada-cellar").json()["values"]["humidity"]["value"] == 71.5
    assert cellar_loan in {loan["id"] for loan in ada.get("/api/v1/loans").json()["loans"]}
    assert ada.get(f"/api/v1/loans/{cellar_loan}").status_code == 200


def test_an_unrelated_resident_cannot_tell_the_private_thing_from_a_missing_one(
    cellar_loan: str, client_for: Callable[..., httpx.Client]
) -> None:
    dee = client_for("dee")
    headers = {"X-CSRF-Token": csrf_of(dee)}

    def same(method: str, path: str, missing_path: str) -> None:
        hidden = dee.request(method, path, headers=headers)
        missing = dee.request(method, missing_path, headers=headers)
        assert hidden.status_code == missing.status_code == 404, (path, hidden.text)
        assert hidden.text.replace("ada-cellar", "X").replace(cellar_loan, "X") == missing.text.replace(
            "no-such-thing", "X"
        ).replace("no-such-loan", "X")

    same("GET", "/things/ada-cellar", "/things/no-such-thing")
    same("GET", "/api/v1/things/ada-cellar", "/api/v1/things/no-such-thing")
    same("POST", "/api/v1/things/ada-cellar/checkout", "/api/v1/things/no-such-thing/checkout")
    same("POST", "/api/v1/things/ada-cellar/return", "/api/v1/things/no-such-thing/return")
    same("POST", "/api/v1/things/ada-cellar/waitlist", "/api/v1/things/no-such-thing/waitlist")
    same("GET", f"/api/v1/loans/{cellar_loan}", "/api/v1/loans/no-such-loan")
    same("POST", f"/api/v1/loans/{cellar_loan}/cancel", "/api/v1/loans/no-such-loan/cancel")

    reserve = dee.post("/api/v1/loans", json={"thing": "ada-cellar"}, headers=headers)
    assert reserve.status_code == 404 and reserve.json() == {
        "reason": "not_found",
        "detail": "no thing with id 'ada-cellar'",
    }
    assert "ada-cellar" not in _things(dee)
    assert "drill" in _things(dee)
    loans = dee.get("/api/v1/loans").json()["loans"]
    assert all(loan["thing"] != "ada-cellar" for loan in loans)
    assert "cellar" not in dee.get("/me").text.lower()
    assert "cellar" not in dee.get("/").text.lower()


def test_the_live_stream_is_graded_for_the_signed_in_resident(
    neighborhood: Neighborhood,
    client_for: Callable[..., httpx.Client],
    hood_server: WebServer,
    open_stream: Callable[..., EventStream],
) -> None:
    def things_streamed(pseudonym: str | None) -> set[str]:
        headers = {}
        if pseudonym is not None:
            headers["Cookie"] = f"hub_session={client_for(pseudonym).cookies['hub_session']}"
        stream = open_stream(f"{hood_server.url}/events", headers)
        return {thing["id"] for thing in stream.next("things").json()["things"]}

    assert things_streamed("ada") == {"ada-cellar", "drill"}
    assert things_streamed("dee") == {"drill"}
    assert _things(client_for()) == set()  # the kiosk: neither thing is public


def test_an_access_token_is_graded_like_its_resident(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    _, token = neighborhood.accounts.create_token(neighborhood.ids["dee"], "script", now=neighborhood.clock())
    api = client_for()
    listed = api.get("/api/v1/things", headers={"Authorization": f"Bearer {token}"})
    assert {thing["id"] for thing in listed.json()["things"]} == {"drill"}
    hidden = api.get("/api/v1/things/ada-cellar", headers={"Authorization": f"Bearer {token}"})
    assert hidden.status_code == 404
