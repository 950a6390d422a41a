"""X-Forwarded-Proto through the real WebServer (uvicorn included): only with trust_proxy does a proxy's
word make the session cookie Secure. Uvicorn on its own believes these headers from 127.0.0.1."""

from __future__ import annotations

import re

import httpx
import pytest

# fixtures: neighborhood, telemetry, start_server (tests/web/conftest.py)


@pytest.mark.parametrize(("trust_proxy", "secure"), [(False, False), (True, True)])
def test_x_forwarded_proto_makes_the_cookie_secure_only_when_the_proxy_is_trusted(
    trust_proxy: bool, secure: bool, neighborhood, telemetry, start_server
) -> None:
    server = start_server(neighborhood.context(telemetry), trust_proxy=trust_proxy)
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    with httpx.Client(base_url=server.url or "", headers=headers) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        # sent by hand: a client over plain http keeps a Secure cookie to itself
        answer = client.post(
            "/login",
            data={"pseudonym": "dee", "password": "dee borrows things", "csrf_token": token.group(1)},
            headers={"Cookie": f"hub_form={token.group(1)}"},
        )
    assert answer.status_code == 303, answer.text
    (cookie,) = [c for c in answer.headers.get_list("set-cookie") if c.startswith("hub_session=")]
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert ("secure" in flags) is secure
