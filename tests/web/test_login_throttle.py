"""Failed sign-ins slow down per account across many addresses, without locking its owner out: the
account-wide limit (a growing delay with a cap, forgotten a day after the last failure) does not apply to
a browser holding the signed "known device" cookie of an earlier sign-in. Clocks are injected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from webkit import NOW, PASSWORDS, Clock, Neighborhood, form_field

from hub.telemetry import Telemetry
from hub.web import create_app
from hub.web.auth import DEVICE_COOKIE, LoginThrottle


def test_failures_spread_over_addresses_slow_the_account_with_a_growing_capped_delay() -> None:
    clock = Clock(NOW)
    throttle = LoginThrottle(clock)
    for n in range(10):  # ten addresses, one guess each: no address and no (account, address) limit hit
        assert throttle.wait("dee", f"10.0.0.{n}") == 0
        throttle.failed("dee", f"10.0.0.{n}")
    waits = []
    for n in range(12):
        address = f"10.0.1.{n}"
        wait = throttle.wait("dee", address)
        waits.append(wait)
        clock.advance(wait)
        assert throttle.wait("dee", address) == 0
        throttle.failed("dee", address)
    print("account-wide waits (s):", waits)
    assert waits[:4] == [1, 2, 4, 8]
    assert waits == sorted(waits)
    assert max(waits) == throttle.max_account_wait == 300
    # other accounts are not slowed by it
    assert throttle.wait("bruno", "10.0.9.9") == 0


def test_a_known_device_skips_the_account_wide_limit_and_its_typos_do_not_feed_it() -> None:
    clock = Clock(NOW)
    throttle = LoginThrottle(clock)
    for n in range(40):
        throttle.failed("dee", f"192.0.2.{n}")
    assert throttle.wait("dee", "198.51.100.4") == 300
    assert throttle.wait("dee", "198.51.100.4", known_device=True) == 0
    for _ in range(4):  # the owner mistypes at home: counted per (account, address) only
        throttle.failed("dee", "198.51.100.4", known_device=True)
    assert throttle.wait("dee", "198.51.100.4", known_device=True) == 0
    clock.advance(300)
    assert throttle.wait("dee", "203.0.113.1") == 0  # the capped delay has passed
    throttle.failed("dee", "198.51.100.4", known_device=True)
    assert throttle.wait("dee", "203.0.113.1") == 0  # the owner's typo did not restart it


def test_the_account_wide_limit_expires_a_day_after_the_last_failure() -> None:
    clock = Clock(NOW)
    throttle = LoginThrottle(clock)
    for n in range(30):
        throttle.failed("dee", f"192.0.2.{n}")
    assert throttle.wait("dee", "203.0.113.1") > 0
    clock.advance(24 * 3600)
    assert throttle.wait("dee", "203.0.113.1") == 0
    throttle.failed("dee", "203.0.113.1")  # counting starts over
    assert throttle.wait("dee", "203.0.113.2") == 0


def test_invite_codes_are_limited_per_address_only() -> None:
    throttle = LoginThrottle(Clock(NOW))
    for n in range(50):
        throttle.failed("invite", f"192.0.2.{n}", account_wide=False)
    assert throttle.wait("invite", "203.0.113.1", account_wide=False) == 0


# -- through the sign-in form ---------------------------------------------------------------------------


@pytest.fixture
def app_client(neighborhood: Neighborhood, telemetry: Telemetry) -> Iterator[TestClient]:
    app = create_app(neighborhood.context(telemetry), trust_proxy=True)  # addresses from X-Forwarded-For
    with TestClient(app, base_url="http://hub", follow_redirects=False) as client:
        yield client


def _sign_in(client: TestClient, address: str, password: str, device: str | None = None) -> int:
    client.cookies.clear()
    if device is not None:
        client.cookies.set(DEVICE_COOKIE, device)
    headers = {"X-Forwarded-For": address}
    page = client.get("/login", headers=headers)
    token = form_field(page.text, "csrf_token")
    client.cookies.set("hub_form", token)
    answer = client.post(
        "/login", data={"pseudonym": "dee", "password": password, "csrf_token": token}, headers=headers
    )
    return answer.status_code


def test_a_guesser_on_many_addresses_waits_while_the_owners_browser_signs_in(
    app_client: TestClient, neighborhood: Neighborhood
) -> None:
    # dee signed in at home once: her browser keeps the signed device cookie
    assert _sign_in(app_client, "198.51.100.4", PASSWORDS["dee"]) == 303
    device = app_client.cookies.get(DEVICE_COOKIE)
    assert device
    guesses = [_sign_in(app_client, f"192.0.2.{n}", "a wrong guess") for n in range(10)]
    assert guesses == [401] * 10
    # an eleventh address, even with the right password, waits: nothing is checked meanwhile
    assert _sign_in(app_client, "203.0.113.50", PASSWORDS["dee"]) == 429
    # dee's browser, from a new address too, is not slowed
    assert _sign_in(app_client, "203.0.113.51", PASSWORDS["dee"], device=device) == 303
    # a forged or foreign device cookie does not count as known
    assert _sign_in(app_client, "203.0.113.52", PASSWORDS["dee"], device=f"{int(NOW)}.{'0' * 64}") == 429
    neighborhood.clock.advance(2)
    assert _sign_in(app_client, "203.0.113.53", PASSWORDS["dee"]) == 303  # the delay ran out


def test_a_new_password_forgets_the_known_devices(app_client: TestClient, neighborhood: Neighborhood) -> None:
    assert _sign_in(app_client, "198.51.100.4", PASSWORDS["dee"]) == 303
    device = app_client.cookies.get(DEVICE_COOKIE)
    accounts = neighborhood.accounts
    assert accounts.known_device(neighborhood.ids["dee"], device, now=NOW)
    assert not accounts.known_device(neighborhood.ids["bruno"], device, now=NOW)  # per account
    assert not accounts.known_device(neighborhood.ids["dee"], device, now=NOW + 181 * 86400)  # expired
    accounts.set_password(neighborhood.ids["dee"], "a brand new passphrase", now=NOW)
    assert not accounts.known_device(neighborhood.ids["dee"], device, now=NOW)
