"""In a real browser, an unrelated resident finds a neighbor's private thing nowhere: not on the pages,
not in the API, not in the live stream, while a thing they may see keeps updating live."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect
from webkit import PASSWORDS, Neighborhood

from hub.domain.events import Reading
from hub.web import WebServer

PRIVATE = ("ada-cellar", "Ada's cellar", "Ada&#39;s cellar")


def test_a_private_thing_appears_nowhere_for_an_unrelated_resident(
    browser: Browser, neighborhood: Neighborhood, hood_server: WebServer, tmp_path: Path
) -> None:
    page = browser.new_page()
    page.goto(f"{hood_server.url}/login")
    page.get_by_label("Pseudonym").fill("dee")
    page.get_by_label("Password").fill(PASSWORDS["dee"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{hood_server.url}/me")

    # the live stream, as the browser receives it, for a few seconds while both things change
    page.goto(f"{hood_server.url}/")
    page.evaluate(
        """() => {
            window.__events = [];
            const source = new EventSource('/events');
            for (const name of ['things', 'scans', 'status', 'alerts']) {
                source.addEventListener(name, (e) => window.__events.push(name + ' ' + e.data));
            }
        }"""
    )
    page.wait_for_timeout(700)
    neighborhood.live.apply_reading(
        Reading("ada-cellar", "native", {"humidity": 93.0}), at=neighborhood.clock()
    )
    neighborhood.live.apply_reading(Reading("drill", "native", {"battery": 41.0}), at=neighborhood.clock())
    page.wait_for_function("() => window.__events.some((e) => e.includes('41'))", timeout=5000)
    expect(page.locator("body")).to_contain_text("41")  # the visible thing updated live on the page
    page.screenshot(path=tmp_path / "dashboard.png")
    streamed = "\n".join(page.evaluate("() => window.__events"))
    html = page.content()

    api = page.request.get(f"{hood_server.url}/api/v1/things")
    assert api.ok
    missing = page.request.get(f"{hood_server.url}/api/v1/things/no-such-thing")
    hidden = page.request.get(f"{hood_server.url}/api/v1/things/ada-cellar")
    assert hidden.status == missing.status == 404
    assert hidden.json()["detail"].replace("ada-cellar", "X") == missing.json()["detail"].replace(
        "no-such-thing", "X"
    )
    readings = page.request.get(f"{hood_server.url}/api/v1/things/ada-cellar/readings")
    assert readings.status == 404

    # the private thing's page is the same "not found" as a missing one's (the asked-for id is echoed)
    page.goto(f"{hood_server.url}/things/ada-cellar")
    thing_page = page.content().replace("ada-cellar", "X")
    page.screenshot(path=tmp_path / "thing-page.png")
    page.goto(f"{hood_server.url}/things/no-such-thing")
    assert page.content().replace("no-such-thing", "X") == thing_page
    page.goto(f"{hood_server.url}/me")
    me_page = page.content()

    for text in (html, streamed, api.text(), thing_page, me_page):
        for needle in PRIVATE:
            assert needle not in text
    assert "93" not in streamed
    assert "drill" in api.text()
    assert (tmp_path / "dashboard.png").stat().st_size > 0
