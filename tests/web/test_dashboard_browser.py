"""The dashboard in a real browser (Debian's Chromium): a new reading shows up without a reload."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Browser, expect
from webkit import OpenCatalog

from hub.domain.events import Reading
from hub.domain.livestate import LiveState
from hub.web import WebContext, WebServer


def test_new_reading_appears_live_without_reload(
    browser: Browser, live: LiveState, telemetry, health, start_server: Callable[..., WebServer]
) -> None:
    # The real clock here: the browser ticks "last seen" against it.
    ctx = WebContext(live=live, catalog=OpenCatalog(), telemetry=telemetry, health=health, version="9.8.7")
    server = start_server(ctx)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(f"{server.url}/")

    flood = page.locator('tr[data-thing="cellar-flood"]')
    expect(flood.locator('li[data-name="temperature"] .value')).to_have_text("12.25 °C")
    expect(page.locator("#live")).to_have_attribute("data-state", "on", timeout=3000)
    page.evaluate("window.__sameDocument = true")

    live.apply_reading(
        Reading("cellar-flood", "native", {"temperature": 19.75, "water_leak": True}), time.time()
    )
    live.apply_reading(Reading("attic-air", "native", {"co2": 612.0}), time.time())

    expect(flood.locator('li[data-name="temperature"] .value')).to_have_text("19.75 °C", timeout=3000)
    expect(flood.locator('li[data-name="water_leak"]')).to_have_class("alarm", timeout=3000)
    expect(flood.locator('li[data-name="water_leak"] .value')).to_have_text("leak")
    attic = page.locator('tr[data-thing="attic-air"]')
    expect(attic.locator('li[data-name="co2"]')).to_have_text("CO₂ 612 ppm", timeout=3000)
    expect(attic.locator(".badge")).to_have_text("online")
    # New rows keep the server's order (by id).
    assert page.locator("tbody tr[data-thing]").evaluate_all("rows => rows.map(r => r.dataset.thing)") == [
        "attic-air",
        "cellar-flood",
        "washer",
    ]
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    assert errors == []
    page.close()
