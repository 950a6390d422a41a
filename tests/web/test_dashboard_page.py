"""The dashboard page as the server renders it (what a browser without JavaScript sees)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from webkit import OpenCatalog

from hub.domain.events import Reading, Scan
from hub.domain.livestate import LiveState
from hub.telemetry import Telemetry
from hub.web import WebContext, WebServer
from hub.web.grading import HIDDEN_TAG


def row(html: str, thing: str) -> str:
    match = re.search(rf'<tr data-thing="{re.escape(thing)}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {thing!r}"
    return match.group(1)


def test_things_listed_with_values_and_units(http: httpx.Client) -> None:
    html = http.get("/").text
    flood = row(html, "cellar-flood")
    assert '<span class="value">12.25 °C</span>' in flood
    assert '<span class="value">87 %</span>' in flood
    assert '<span class="value">1850 W</span>' in row(html, "washer")


def test_booleans_read_as_words(http: httpx.Client, live: LiveState, now: float) -> None:
    html = http.get("/").text
    assert '<span class="name">Water leak</span> <span class="value">dry</span>' in row(html, "cellar-flood")
    assert '<span class="name">State</span> <span class="value">on</span>' in row(html, "washer")

    live.apply_reading(Reading("cellar-flood", "native", {"water_leak": True}), at=now)
    flooded = row(http.get("/").text, "cellar-flood")
    assert '<li data-name="water_leak" class="alarm">' in flooded
    assert '<span class="value">leak</span>' in flooded


def test_online_badge_and_last_seen_age(http: httpx.Client) -> None:
    html = http.get("/").text
    assert 'data-status="online">online</span>' in row(html, "cellar-flood")
    assert ">4 s ago</time>" in row(html, "cellar-flood")
    assert 'data-status="offline">offline</span>' in row(html, "washer")
    assert ">5 min ago</time>" in row(html, "washer")


def test_recent_scans_newest_first_naming_things_never_card_ids(
    http: httpx.Client, live: LiveState, now: float
) -> None:
    live.record_scan(Scan("workshop", "native", "C2994A1B", time=now - 5), at=now - 5)  # a resident's card
    html = http.get("/").text
    scans = html[html.index('id="scans"') :]
    assert scans.index(HIDDEN_TAG) < scans.index("shed-drill")  # the tool's tag is shown as the tool
    assert '<td data-label="Reader">workshop</td>' in scans
    assert "C2994A1B" not in html and "01000734E0" not in html


def test_private_and_unclaimed_things_are_not_on_the_kiosk(
    ctx: WebContext, live: LiveState, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> None:
    live.apply_reading(Reading("basement-humidity", "native", {"humidity": 81.0}), at=1)
    private = WebContext(
        live=live,
        catalog=OpenCatalog(private={"basement-humidity"}),
        telemetry=telemetry,
        health=ctx.health,
        version="1",
    )
    server = start_server(private)
    assert "basement-humidity" not in httpx.get(f"{server.url}/").text
    assert "basement-humidity" not in httpx.get(f"{server.url}/api/v1/things").text
    missing = httpx.get(f"{server.url}/api/v1/things/no-such-thing")
    hidden = httpx.get(f"{server.url}/api/v1/things/basement-humidity")
    assert hidden.status_code == missing.status_code == 404
    assert "cellar-flood" in httpx.get(f"{server.url}/api/v1/things").text


def test_status_line_counts_messages_stored_and_rejected(http: httpx.Client, telemetry: Telemetry) -> None:
    telemetry.messages.inc(42)
    telemetry.stored.inc(40)
    telemetry.rejections.labels(source="native", reason="bad_json").inc(2)
    telemetry.rejections.labels(source="tasmota", reason="unknown_unit").inc()
    html = http.get("/").text
    assert '<dd data-key="messages">42</dd>' in html
    assert '<dd data-key="stored">40</dd>' in html
    assert '<dd data-key="rejected">3</dd>' in html


def test_thing_ids_are_escaped(http: httpx.Client, live: LiveState, now: float) -> None:
    live.apply_reading(Reading("<script>alert(1)</script>", "native", {"temperature": 1.0}), at=now)
    html = http.get("/").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_page_loads_only_assets_the_hub_serves(http: httpx.Client) -> None:
    response = http.get("/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="([^"#]+)"', response.text)
    assert "/static/live.js?v=9.8.7" in assets and "/static/hub.css?v=9.8.7" in assets
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by the hub"
        assert http.get(asset).status_code == 200, asset


def test_empty_hub_says_nothing_has_reported(
    ctx: WebContext, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> None:
    empty = WebContext(
        live=LiveState(), catalog=ctx.catalog, telemetry=telemetry, health=ctx.health, version="1"
    )
    html = httpx.get(f"{start_server(empty).url}/").text
    assert '<p id="no-things" class="empty">No things have reported yet.</p>' in html
    assert '<p id="no-scans" class="empty">No tags scanned yet.</p>' in html
    assert not re.search(r'<tr data-thing="[^"]', html)


def test_hidden_empty_messages_when_there_is_data(http: httpx.Client) -> None:
    html = http.get("/").text
    assert '<p id="no-things" class="empty" hidden>' in html
    assert '<p id="no-scans" class="empty" hidden>' in html
