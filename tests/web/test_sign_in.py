"""Web sign-in against a real server and a real SQLite store: Argon2id hashes, sessions, the login
throttle, CSRF, cookie flags and registration by invite."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from http.cookies import SimpleCookie

import httpx
import pytest
import sqlalchemy as sa
from webkit import PASSWORDS, Neighborhood, csrf_of, form_field, sign_in

from hub.domain.model import LoanState, Role
from hub.telemetry import Telemetry
from hub.web import WebServer, create_app

NEW_PASSWORD = "a new neighbor's password"


def _rows(neighborhood: Neighborhood, sql: str) -> list[sa.Row]:
    with neighborhood.store._engine.connect() as conn:
        return list(conn.execute(sa.text(sql)))


def _session_cookie(response: httpx.Response) -> SimpleCookie:
    cookies = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("hub_session="):
            cookies.load(header)
    return cookies


def test_passwords_are_stored_as_argon2id_hashes_and_sessions_as_digests(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    client = client_for("dee")
    hashes = {row.resident_id: row.password_hash for row in _rows(neighborhood, "SELECT * FROM credentials")}
    assert set(hashes) == {neighborhood.ids[name] for name in PASSWORDS}
    for name, password in PASSWORDS.items():
        stored = hashes[neighborhood.ids[name]]
        assert stored.startswith("$argon2id$")
        assert password not in stored
    token = client.cookies["hub_session"]
    sessions = _rows(neighborhood, "SELECT token_hash FROM web_sessions")
    assert [row.token_hash for row in sessions] == [hashlib.sha256(token.encode()).hexdigest()]


def test_login_opens_my_page_and_logout_ends_the_session(client_for: Callable[..., httpx.Client]) -> None:
    client = client_for()
    assert client.get("/me").status_code == 303  # to /login
    response = sign_in(client, "dee")
    assert response.status_code == 303 and response.headers["location"] == "/me"
    me = client.get("/me")
    assert me.status_code == 200 and "Hello, dee" in me.text
    old_cookie = client.cookies["hub_session"]

    out = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert out.status_code == 303
    assert "hub_session" not in client.cookies
    assert client.get("/me").headers["location"] == "/login?next=/me"
    # the old cookie, replayed, is dead on the server too
    client.cookies.set("hub_session", old_cookie)
    assert client.get("/me").status_code == 303


def test_wrong_password_is_refused_without_a_session(client_for: Callable[..., httpx.Client]) -> None:
    client = client_for()
    response = sign_in(client, "dee", "not dee's password")
    assert response.status_code == 401
    assert "do not match" in response.text
    assert "hub_session" not in client.cookies
    unknown = sign_in(client, "nobody-here", "whatever password")
    assert unknown.status_code == 401 and "do not match" in unknown.text


def test_login_returns_only_to_paths_on_this_site(client_for: Callable[..., httpx.Client]) -> None:
    client = client_for()
    page = client.get("/login?next=//evil.example/x")
    response = client.post(
        "/login",
        data={
            "pseudonym": "dee",
            "password": PASSWORDS["dee"],
            "csrf_token": form_field(page.text, "csrf_token"),
            "next": "//evil.example/x",
        },
    )
    assert response.headers["location"] == "/me"


def test_sixth_quick_failure_waits_with_retry_after_then_the_right_password_works(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    client = client_for()
    for _ in range(5):
        assert sign_in(client, "dee", "a wrong guess").status_code == 401
    refused = sign_in(client, "dee")  # even the right password waits: nothing is checked meanwhile
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 15 * 60
    assert "hub_session" not in client.cookies

    neighborhood.clock.advance(wait - 1)
    assert sign_in(client, "dee").status_code == 429
    neighborhood.clock.advance(1)
    assert sign_in(client, "dee").status_code == 303
    assert client.get("/me").status_code == 200


def test_backoff_grows_but_never_beyond_fifteen_minutes(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    client = client_for()
    waits = []
    for _ in range(12):
        response = sign_in(client, "dee", "a wrong guess")
        if response.status_code == 429:
            wait = int(response.headers["retry-after"])
            waits.append(wait)
            neighborhood.clock.advance(wait)
            assert sign_in(client, "dee", "a wrong guess").status_code == 401
    assert waits == sorted(waits) and waits[0] < waits[-1]
    assert max(waits) == 15 * 60
    neighborhood.clock.advance(15 * 60)
    assert sign_in(client, "dee").status_code == 303


def test_failures_from_one_address_do_not_lock_the_account_elsewhere(
    neighborhood: Neighborhood, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> None:
    # behind a trusted proxy the client address comes from X-Forwarded-For
    server = start_server(neighborhood.context(telemetry), trust_proxy=True)
    with (
        httpx.Client(base_url=server.url or "", headers={"X-Forwarded-For": "203.0.113.9"}) as attacker,
        httpx.Client(base_url=server.url or "", headers={"X-Forwarded-For": "198.51.100.4"}) as dee,
    ):
        for _ in range(6):
            sign_in(attacker, "dee", "a wrong guess")
        assert sign_in(attacker, "dee").status_code == 429
        assert sign_in(dee, "dee").status_code == 303


def test_a_form_post_without_the_csrf_token_is_refused(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    client = client_for("dee")
    assert client.post("/things/drill/borrow").status_code == 403
    assert client.post("/things/drill/borrow", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    # a JSON call on the session cookie needs the header as well
    assert client.post("/api/v1/things/drill/checkout").status_code == 403
    assert neighborhood.directory.loans(thing="drill") == []
    # with the token the same form works
    done = client.post("/things/drill/borrow", data={"csrf_token": csrf_of(client)})
    assert done.status_code == 303
    assert [loan.state for loan in neighborhood.directory.loans(thing="drill")] == [LoanState.OUT]


def test_the_login_form_itself_needs_its_csrf_token(client_for: Callable[..., httpx.Client]) -> None:
    client = client_for()
    client.get("/login")
    response = client.post("/login", data={"pseudonym": "dee", "password": PASSWORDS["dee"]})
    assert response.status_code == 403
    assert "hub_session" not in client.cookies


def test_session_cookie_is_httponly_lax_and_not_secure_over_plain_http(
    client_for: Callable[..., httpx.Client],
) -> None:
    response = sign_in(client_for(), "dee")
    cookie = _session_cookie(response)["hub_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "lax"
    assert cookie["path"] == "/"
    assert not cookie["secure"]


@pytest.mark.parametrize(("trust_proxy", "secure"), [(True, True), (False, False)])
def test_session_cookie_is_secure_behind_https_only_when_the_proxy_is_trusted(
    trust_proxy: bool, secure: bool, neighborhood: Neighborhood, telemetry: Telemetry
) -> None:
    # In process, without uvicorn: uvicorn itself applies X-Forwarded-* from 127.0.0.1 before the app.
    app = create_app(neighborhood.context(telemetry), trust_proxy=trust_proxy)

    async def sign_in_over_asgi() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        headers = {"X-Forwarded-Proto": "https"}
        async with httpx.AsyncClient(transport=transport, base_url="http://hub", headers=headers) as client:
            page = await client.get("/login")
            token = form_field(page.text, "csrf_token")
            return await client.post(
                "/login",
                data={"pseudonym": "dee", "password": PASSWORDS["dee"], "csrf_token": token},
                headers={"Cookie": f"hub_form={token}"},
            )

    answer = asyncio.run(sign_in_over_asgi())
    assert answer.status_code == 303, answer.text
    cookie = _session_cookie(answer)["hub_session"]
    assert bool(cookie["secure"]) is secure
    assert cookie["httponly"] is True and cookie["samesite"] == "lax"


def test_an_invite_registers_one_resident_only(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    code = neighborhood.directory.create_invite(created_by=neighborhood.ids["dee"], now=neighborhood.clock())

    def join(client: httpx.Client, pseudonym: str, password: str = NEW_PASSWORD) -> httpx.Response:
        page = client.get(f"/join?code={code}")
        assert page.status_code == 200 and code in page.text
        return client.post(
            "/join",
            data={
                "code": code,
                "pseudonym": pseudonym,
                "password": password,
                "password_again": password,
                "csrf_token": form_field(page.text, "csrf_token"),
            },
        )

    first = client_for()
    weak = join(first, "erin", "short")
    assert weak.status_code == 400 and "at least 10 characters" in weak.text
    assert neighborhood.directory.resident_by_pseudonym("erin") is None  # the invite is still good

    joined = join(first, "erin")
    assert joined.status_code == 303 and joined.headers["location"] == "/me"
    assert "Hello, erin" in first.get("/me").text
    erin = neighborhood.directory.resident_by_pseudonym("erin")
    assert erin is not None and erin.role is Role.RESIDENT
    assert neighborhood.accounts.verify(erin.id, NEW_PASSWORD, now=neighborhood.clock())

    second = join(client_for(), "frank")
    assert second.status_code == 409 and "already used" in second.text
    assert neighborhood.directory.resident_by_pseudonym("frank") is None


@pytest.mark.parametrize("path", ["/me", "/me/tokens", "/things/drill"])
def test_resident_pages_send_anonymous_visitors_to_sign_in(
    path: str, client_for: Callable[..., httpx.Client]
) -> None:
    response = client_for().get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


def test_without_accounts_sign_in_answers_503_and_the_kiosk_still_works(http: httpx.Client) -> None:
    assert http.get("/login").status_code == 503
    assert http.get("/api/v1/loans", headers={"Authorization": "Bearer nhub_x"}).status_code == 503
    assert http.get("/").status_code == 200
    assert http.get("/api/v1/things").status_code == 200


def test_erasing_a_resident_ends_their_sessions_and_deletes_their_password(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    client = client_for("dee")
    dee = neighborhood.ids["dee"]
    neighborhood.accounts.create_token(dee, "script", now=neighborhood.clock())
    neighborhood.directory.erase_resident(dee, actor=dee, now=neighborhood.clock())
    assert client.get("/me").status_code == 303
    for table in ("credentials", "web_sessions", "api_tokens"):
        assert _rows(neighborhood, f"SELECT * FROM {table} WHERE resident_id = '{dee}'") == [], table
