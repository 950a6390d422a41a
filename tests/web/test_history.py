"""GET /api/v1/things/{id}/readings and the thing page's history: graded on the server by the permission
function (see_history), with a real embedded time-series store and a real directory."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from webkit import NOW, PASSWORDS, Neighborhood, sign_in

from hub.domain.events import Reading
from hub.domain.model import Relation, RelationKind, Share, Thing, Visibility
from hub.storage.embedded import EmbeddedSink
from hub.storage.sink import Point
from hub.telemetry import Telemetry
from hub.web import WebServer

S = 1_000_000_000
HOUR = 3600.0


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[EmbeddedSink]:
    store = EmbeddedSink(tmp_path / "ts")
    yield store
    store.close()


def day_of_readings(thing: str, values: Callable[[int], dict[str, float | bool]]) -> list[Point]:
    """A reading every 10 minutes over the 24 h before NOW, oldest first."""
    return [Point(thing, "native", values(i), int((NOW - 86_400 + i * 600) * S)) for i in range(144)]


@pytest.fixture
def hood(neighborhood: Neighborhood, sink: EmbeddedSink) -> Neighborhood:
    """The neighborhood plus two public sensors of bruno's with a day of history: a street air sensor
    that shares its readings, and a yard flood sensor that shares only "leak yes/no" (dee watches it)."""
    d, ids = neighborhood.directory, neighborhood.ids
    d.create_thing(
        Thing(id="street-air", name="Street air", visibility=Visibility.PUBLIC),
        owner=ids["bruno"],
        actor=ids["bruno"],
        now=NOW - 100,
    )
    d.create_thing(
        Thing(id="yard-flood", name="Yard flood", visibility=Visibility.PUBLIC, watcher_share=Share.DERIVED),
        owner=ids["bruno"],
        actor=ids["bruno"],
        now=NOW - 100,
    )
    d.grant(Relation("", ids["dee"], "yard-flood", RelationKind.WATCHES), actor=ids["dee"], now=NOW - 100)
    sink.write_points(day_of_readings("street-air", lambda i: {"temperature": 10 + i / 10, "co2": 400.0}))
    sink.write_points(day_of_readings("yard-flood", lambda i: {"temperature": 8.0, "water_leak": i > 140}))
    sink.write_points(day_of_readings("ada-cellar", lambda i: {"humidity": 70.0}))
    live = neighborhood.live
    live.apply_reading(Reading("street-air", "native", {"temperature": 24.3, "co2": 400.0}), NOW)
    live.apply_reading(Reading("yard-flood", "native", {"temperature": 8.0, "water_leak": True}), NOW)
    return neighborhood


@pytest.fixture
def server(
    hood: Neighborhood, sink: EmbeddedSink, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> WebServer:
    return start_server(dataclasses.replace(hood.context(telemetry), history=sink))


@pytest.fixture
def client(server: WebServer) -> Iterator[Callable[[str | None], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(pseudonym: str | None = None) -> httpx.Client:
        c = httpx.Client(base_url=server.url or "", timeout=10)
        clients.append(c)
        if pseudonym is not None:
            assert sign_in(c, pseudonym, PASSWORDS[pseudonym]).status_code == 303
        return c

    yield make
    for c in clients:
        c.close()


def series(response: httpx.Response) -> dict[str, list[list[float]]]:
    assert response.status_code == 200, response.text
    return {s["measurement"]: s["points"] for s in response.json()["series"]}


def test_kiosk_gets_the_history_of_a_public_thing_that_shares_readings(client) -> None:
    response = client(None).get("/api/v1/things/street-air/readings", params={"measurement": "temperature"})
    points = series(response)["temperature"]
    assert len(points) == 144
    assert points[0] == [NOW - 86_400, 10.0]
    assert points[-1][1] == pytest.approx(24.3)
    assert response.json()["until"] == NOW


def test_without_a_measurement_every_current_measurement_is_charted(client) -> None:
    assert sorted(series(client(None).get("/api/v1/things/street-air/readings"))) == ["co2", "temperature"]


def test_hours_narrow_the_window(client) -> None:
    response = client(None).get("/api/v1/things/street-air/readings?measurement=temperature&hours=2")
    points = series(response)["temperature"]
    assert len(points) == 12
    assert all(t >= NOW - 2 * HOUR for t, _ in points)


def test_a_private_thing_is_404_exactly_like_a_missing_one(client) -> None:
    for viewer in (None, "chen", "dee"):
        c = client(viewer)
        hidden = c.get("/api/v1/things/ada-cellar/readings?measurement=humidity")
        missing = c.get("/api/v1/things/no-such-thing/readings?measurement=humidity")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"].replace("ada-cellar", "X") == missing.json()["detail"].replace(
            "no-such-thing", "X"
        )
        assert "70" not in hidden.text
    owner = series(client("ada").get("/api/v1/things/ada-cellar/readings?measurement=humidity"))
    assert len(owner["humidity"]) == 144


def test_the_kiosk_gets_no_history_of_a_thing_only_residents_may_see(client) -> None:
    assert client(None).get("/api/v1/things/drill/readings").status_code == 404
    assert client("chen").get("/api/v1/things/drill/readings").status_code == 200


def test_a_watcher_with_a_derived_share_gets_no_numeric_history(client) -> None:
    for viewer in ("dee", None, "chen"):
        response = client(viewer).get("/api/v1/things/yard-flood/readings?measurement=temperature")
        assert series(response) == {}, viewer  # may know the thing: 200, but no series at all
    owner = series(client("bruno").get("/api/v1/things/yard-flood/readings?measurement=temperature"))
    assert len(owner["temperature"]) == 144


def test_a_resident_reading_someone_elses_history_is_in_the_owners_audit_log(
    client, hood: Neighborhood
) -> None:
    client("chen").get("/api/v1/things/street-air/readings?measurement=temperature")
    entries = hood.directory.audit_for_resident(hood.ids["bruno"])
    views = [(e.actor, e.thing) for e in entries if e.action == "thing.view"]
    assert (hood.ids["chen"], "street-air") in views


def test_without_a_history_store_a_visible_thing_answers_503_and_a_hidden_one_still_404(
    hood: Neighborhood, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> None:
    server = start_server(hood.context(telemetry))  # history=None: an InfluxDB 2.x hub
    with httpx.Client(base_url=server.url or "") as c:
        visible = c.get("/api/v1/things/street-air/readings")
        hidden = c.get("/api/v1/things/ada-cellar/readings")
        page = c.get("/")
    assert visible.status_code == 503
    assert "embedded store or InfluxDB 1.x" in visible.json()["detail"]
    assert hidden.status_code == 404
    assert 'class="chart"' not in page.text and "uplot" not in page.text


def test_a_window_longer_than_a_week_is_refused(client) -> None:
    assert client(None).get("/api/v1/things/street-air/readings?hours=169").status_code == 422


def test_thing_page_charts_for_viewers_who_may_see_history_only(client) -> None:
    owner = client("bruno").get("/things/yard-flood")
    assert 'data-measurement="temperature"' in owner.text and 'data-chart-hours="168"' in owner.text
    watcher = client("dee").get("/things/yard-flood")
    assert watcher.status_code == 200
    assert 'class="chart"' not in watcher.text and 'id="history"' not in watcher.text


def test_past_loans_name_borrowers_to_the_owner_and_count_them_for_others(client, hood: Neighborhood) -> None:
    ids = hood.ids
    hood.desk.check_out("drill", ids["dee"], actor=ids["dee"])
    hood.clock.advance(4 * 86_400)  # the drill lends for 3 days: back a day late
    hood.desk.check_in("drill", actor=ids["dee"])

    owner = client("bruno").get("/things/drill").text
    assert 'id="custody-history"' in owner
    assert '<td data-label="Borrower">dee</td>' in owner and "(late)" in owner

    borrower = client("dee").get("/things/drill").text
    assert '<td data-label="Borrower">you</td>' in borrower

    other = client("chen").get("/things/drill").text
    assert 'id="custody-history"' not in other
    assert "1 loan by neighbors, 1 returned late." in other
    assert "dee" not in other.split('id="custody-counts"')[1].split("</section>")[0]
