"""Charts in a real browser (Debian's Chromium): the kiosk draws a day of readings with the vendored uPlot,
loaded from the readings API, nothing from elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, expect
from webkit import OpenCatalog

from hub.domain.livestate import LiveState
from hub.storage.embedded import EmbeddedSink
from hub.storage.sink import Point
from hub.web import WebContext, WebServer


def test_kiosk_draws_a_day_of_readings_as_a_chart(
    browser: Browser,
    live: LiveState,
    telemetry,
    health,
    tmp_path: Path,
    start_server: Callable[..., WebServer],
) -> None:
    sink = EmbeddedSink(tmp_path / "ts")
    now = time.time()  # the real clock: the API's window ends now
    sink.write_points(
        [
            Point(
                "cellar-flood",
                "native",
                {"temperature": 12 + (i % 12) / 4},
                int((now - 86_400 + i * 600) * 1e9),
            )
            for i in range(144)
        ]
    )
    ctx = WebContext(
        live=live,
        catalog=OpenCatalog(private={"washer"}),
        telemetry=telemetry,
        health=health,
        version="9.8.7",
        history=sink,
    )
    server = start_server(ctx)
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("request", lambda r: r.url.startswith(server.url or "") or outside.append(r.url))
    page.goto(f"{server.url}/")

    chart = page.locator('.chart[data-thing="cellar-flood"][data-measurement="temperature"]')
    expect(chart.locator("canvas")).to_have_count(1, timeout=5000)
    expect(chart).to_have_attribute("data-loaded", "drawn")
    # the private washer gets no chart; the kiosk's chart has a real size
    assert page.locator('.chart[data-thing="washer"]').count() == 0
    box = chart.locator("canvas").bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 50
    chart.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "kiosk-chart.png"), full_page=True)
    assert (tmp_path / "kiosk-chart.png").stat().st_size > 0
    assert errors == []
    assert outside == []
    page.close()
    sink.close()
