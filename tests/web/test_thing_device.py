"""A thing's device side on its page and in GET /api/v1/things/<id>: availability and how it is decided,
what its device announced, retirement, and the unmapped fields shown only to those who manage it."""

from __future__ import annotations

import html
from collections.abc import Callable

import httpx
from webkit import NOW, Neighborhood

from hub.domain.events import Discovery, Reading

UNMAPPED = {"ENERGY.ApparentPower": 12.5, "Wifi.SSId": "cellar"}


def _device_traffic(hood: Neighborhood) -> None:
    hood.live.apply_discovery(
        Discovery(
            "ada-cellar",
            "homeassistant",
            name="Cellar sensor",
            model="WS-1",
            manufacturer="Acme",
            sw_version="1.2",
            measurements=("humidity", "water_leak"),
            attributes={"identifiers": ["cellar-1"]},
        ),
        at=NOW - 50,
    )
    hood.live.apply_reading(Reading("ada-cellar", "homeassistant", {}, unmapped=UNMAPPED), at=NOW - 3)


def test_owner_gets_unmapped_fields_with_a_field_map_hint_in_the_api(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    _device_traffic(neighborhood)
    body = client_for("ada").get("/api/v1/things/ada-cellar").json()
    assert body["availability"] == "online"
    assert body["availability_by"] == "silence" and body["silence_timeout_s"] == 600.0
    assert body["power"] == "mains"
    assert body["announced"]["model"] == "WS-1" and body["announced"]["manufacturer"] == "Acme"
    assert body["announced"]["attributes"] == {"identifiers": ["cellar-1"]}
    assert [(f["field"], f["value"]) for f in body["unmapped"]] == [
        ("ENERGY.ApparentPower", 12.5),
        ("Wifi.SSId", "cellar"),
    ]
    assert "ingest.field_map" in body["field_map_hint"]
    assert body["retired"] is False and body["name"] == "Ada's cellar"


def test_a_resident_who_may_only_see_a_thing_gets_no_unmapped_fields_nor_attributes(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    neighborhood.live.apply_discovery(
        Discovery("drill", "homeassistant", model="DX", power="battery", attributes={"mac": "aa:bb"}), NOW - 9
    )
    neighborhood.live.apply_reading(Reading("drill", "native", {}, unmapped={"rpm_raw": 4}), at=NOW - 2)
    body = client_for("chen").get("/api/v1/things/drill").json()
    assert body["unmapped"] is None and body["field_map_hint"] is None
    assert body["announced"]["model"] == "DX" and body["announced"]["attributes"] is None
    assert body["power"] == "battery" and body["silence_timeout_s"] == 90_000.0
    owner = client_for("bruno").get("/api/v1/things/drill").json()
    assert [f["field"] for f in owner["unmapped"]] == ["rpm_raw"]


def test_thing_page_lists_unmapped_fields_and_how_to_map_them_for_the_owner_only(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    _device_traffic(neighborhood)
    page = client_for("ada").get("/things/ada-cellar").text
    assert 'id="unmapped"' in page and "ENERGY.ApparentPower" in page
    assert "field_map:" in page and 'thing: "ada-cellar"' in html.unescape(page)
    assert 'id="model">Acme WS-1<' in page
    assert 'data-status="online"' in page
    neighborhood.live.apply_reading(Reading("drill", "native", {}, unmapped={"rpm_raw": 4}), at=NOW - 2)
    other = client_for("chen").get("/things/drill").text
    assert 'id="device"' in other and 'id="unmapped"' not in other and "rpm_raw" not in other


def test_a_thing_retired_by_its_device_leaves_the_lists_but_its_page_says_retired(
    neighborhood: Neighborhood, client_for: Callable[..., httpx.Client]
) -> None:
    live = neighborhood.live
    live.apply_discovery(Discovery("drill", "homeassistant", name="Drill"), NOW - 9)
    ada = client_for("ada")
    assert "drill" in [t["id"] for t in ada.get("/api/v1/things").json()["things"]]
    live.apply_discovery(Discovery("drill", "homeassistant", retired=True), NOW - 1)
    assert "drill" not in [t["id"] for t in ada.get("/api/v1/things").json()["things"]]
    assert 'data-thing="drill"' not in ada.get("/").text
    bruno = client_for("bruno")  # its owner still reaches its page and its API entry
    assert bruno.get("/api/v1/things/drill").json()["retired"] is True
    assert 'id="retired"' in bruno.get("/things/drill").text
