"""/events: Server-Sent Events that carry live changes to the dashboard."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from hub.domain.events import Availability, Reading, Scan
from hub.domain.livestate import LiveState
from hub.telemetry import Telemetry
from hub.web import WebContext, WebServer
from hub.web.grading import HIDDEN_TAG


@pytest.fixture
def events_url(ctx: WebContext, start_server: Callable[..., WebServer]) -> str:
    server = start_server(ctx, poll_interval=0.1, keepalive_interval=0.5)
    return f"{server.url}/events"


def test_change_made_after_the_stream_opened_is_delivered(
    events_url: str, open_stream, live: LiveState, now: float
) -> None:
    stream = open_stream(f"{events_url}?since={live.version}")
    stream.next("status")  # the stream is running
    live.apply_reading(Reading("cellar-flood", "native", {"temperature": 13.5}), at=now)

    event = stream.next("things")
    data = event.json()
    assert event.id == str(live.version) == str(data["version"])
    [thing] = data["things"]
    assert thing["id"] == "cellar-flood"
    assert {v["name"]: v["text"] for v in thing["values"]}["temperature"] == "13.5 °C"
    assert thing["last_seen_text"] == "0 s ago"


def test_new_thing_and_availability_changes_are_delivered(
    events_url: str, open_stream, live: LiveState, now: float
) -> None:
    stream = open_stream(f"{events_url}?since={live.version}")
    stream.next("status")
    live.apply_reading(Reading("bike-3", "native", {"battery": 40.0}), at=now)
    live.apply_availability(Availability("cellar-flood", "native", online=False), at=now)

    changed: dict[str, dict] = {}
    while len(changed) < 2:
        changed.update({t["id"]: t for t in stream.next("things").json()["things"]})
    assert changed["bike-3"]["status"] == "online"
    assert changed["bike-3"]["values"][0]["text"] == "40 %"
    assert changed["cellar-flood"]["status"] == "offline"


def test_without_since_the_first_event_carries_every_thing(events_url: str, open_stream) -> None:
    things = open_stream(events_url).next("things").json()["things"]
    assert [t["id"] for t in things] == ["cellar-flood", "washer"]


def test_last_event_id_resumes_after_that_version(
    events_url: str, open_stream, live: LiveState, now: float
) -> None:
    seen = live.version
    live.apply_reading(Reading("washer", "tasmota", {"power": 12.0}), at=now)
    stream = open_stream(f"{events_url}?since=0", headers={"Last-Event-ID": str(seen)})
    assert [t["id"] for t in stream.next("things").json()["things"]] == ["washer"]


def test_scans_and_status_are_streamed(
    events_url: str, open_stream, live: LiveState, telemetry: Telemetry, now: float
) -> None:
    stream = open_stream(events_url)
    assert stream.next("scans").json()["scans"][0]["tag"] == "shed-drill"
    assert stream.next("status").json()["messages"] == 0

    live.record_scan(Scan("workshop", "native", "C2994A1B"), at=now)
    telemetry.messages.inc(7)
    assert [s["tag"] for s in stream.next("scans").json()["scans"]] == [HIDDEN_TAG, "shed-drill"]
    assert stream.next("status").json()["messages"] == 7


def test_idle_stream_sends_keep_alive_comments(events_url: str, open_stream) -> None:
    stream = open_stream(events_url)
    stream.next("status")
    assert stream.next(":", timeout=3).data == "keep-alive"


def test_stream_ends_when_the_client_disconnects(
    events_url: str, open_stream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hub.web.routers.events")
    stream = open_stream(events_url)
    stream.next("status")
    stream.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if any("event stream ended closing=False" in r.getMessage() for r in caplog.records):
            return
        time.sleep(0.05)
    pytest.fail("the server kept streaming after the client disconnected")
