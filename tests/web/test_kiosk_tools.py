"""The kiosk's "Tools to borrow" and "By place": names and counts of what is free now, never who holds
the rest; places are named places only, private things never listed."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from webkit import NOW, PASSWORDS, Neighborhood, sign_in

from hub.domain.model import LendPolicy, Location, Relation, RelationKind, Thing, Visibility
from hub.telemetry import Telemetry
from hub.web import WebServer


def section(html: str, heading_id: str) -> str:
    """The HTML of the <section> labelled by ``heading_id`` (empty when there is none)."""
    match = re.search(rf'<section aria-labelledby="{heading_id}".*?</section>', html, re.S)
    return match.group(0) if match else ""


def lend_public_tools(hood: Neighborhood) -> None:
    """Two public ladders and a public saw, all lent by bruno, in the shed; a public bench with
    coordinates only; dee has one ladder out."""
    d, ids = hood.directory, hood.ids
    shed = Location(lat=52.52, lon=13.40, place="Shed, house 4")
    for thing_id, name in (("ladder-1", "Ladder"), ("ladder-2", "Ladder"), ("saw", "Hand saw")):
        d.create_thing(
            Thing(id=thing_id, name=name, kind="tool", visibility=Visibility.PUBLIC, location=shed),
            owner=ids["bruno"],
            actor=ids["bruno"],
            now=NOW - 100,
        )
        lends = Relation("", ids["bruno"], thing_id, RelationKind.LENDS, policy=LendPolicy(loan_days=3))
        d.grant(lends, actor=ids["bruno"], now=NOW - 100)
    d.create_thing(
        Thing(
            id="bench",
            name="Bench",
            kind="device",
            visibility=Visibility.PUBLIC,
            location=Location(52.5, 13.4),
        ),
        owner=ids["ada"],
        actor=ids["ada"],
        now=NOW - 100,
    )
    hood.desk.check_out("ladder-1", ids["dee"], actor=ids["dee"])


def test_kiosk_lists_free_tools_by_name_and_count_and_never_the_borrower(
    neighborhood: Neighborhood, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> None:
    lend_public_tools(neighborhood)
    server = start_server(neighborhood.context(telemetry))
    with httpx.Client(base_url=server.url or "") as kiosk:
        page = kiosk.get("/").text
    tools = section(page, "tools-heading")
    items = re.findall(
        r'<span class="tool-name">(.*?)</span> <span class="tool-count">(\d+) available', tools
    )
    assert items == [("Hand saw", "1"), ("Ladder", "1")]  # ladder-1 is out
    assert "Cordless drill" not in tools  # neighbors only: not on the kiosk
    assert not re.search(r"\bdee\b", page), "a borrower's pseudonym reached the kiosk"


def test_a_resident_also_sees_the_tools_lent_to_neighbors_only(
    neighborhood: Neighborhood, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> None:
    lend_public_tools(neighborhood)
    server = start_server(neighborhood.context(telemetry))
    with httpx.Client(base_url=server.url or "") as chen:
        assert sign_in(chen, "chen", PASSWORDS["chen"]).status_code == 303
        tools = section(chen.get("/").text, "tools-heading")
    assert "Cordless drill" in tools
    assert not re.search(r"\bdee\b", tools)


def test_when_every_tool_is_out_the_kiosk_says_so(
    neighborhood: Neighborhood, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> None:
    lend_public_tools(neighborhood)
    ids = neighborhood.ids
    neighborhood.desk.check_out("ladder-2", ids["chen"], actor=ids["chen"])
    neighborhood.desk.check_out("saw", ids["chen"], actor=ids["chen"])
    server = start_server(neighborhood.context(telemetry))
    with httpx.Client(base_url=server.url or "") as kiosk:
        page = kiosk.get("/").text
    tools = section(page, "tools-heading")
    assert 'id="no-tools"' in tools and "tool-name" not in tools
    assert not re.search(r"\b(dee|chen)\b", page)


def test_by_place_groups_named_places_first_then_elsewhere_and_hides_private_things(
    neighborhood: Neighborhood, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> None:
    lend_public_tools(neighborhood)
    server = start_server(neighborhood.context(telemetry))
    with httpx.Client(base_url=server.url or "") as kiosk:
        places = section(kiosk.get("/").text, "places-heading")
    rows = re.findall(r'<div class="place" data-place="([^"]*)"><dt>[^<]*</dt><dd>([^<]*)</dd>', places)
    assert rows == [("Shed, house 4", "Hand saw, Ladder, Ladder"), ("elsewhere", "Bench")]
    # coordinates never reach the kiosk, and neither do things it may not see
    assert "52.5" not in places and "13.4" not in places
    assert "cellar" not in places and "Cordless drill" not in places
