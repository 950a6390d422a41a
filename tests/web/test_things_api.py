"""/api/v1/things: response models, units, times and 404."""

from __future__ import annotations

from datetime import datetime

import httpx


def test_list_things_sorted_with_values_units_and_times(http: httpx.Client, now: float) -> None:
    response = http.get("/api/v1/things")
    assert response.status_code == 200
    things = response.json()["things"]
    assert [t["id"] for t in things] == ["cellar-flood", "washer"]
    flood = things[0]
    assert flood["source"] == "native"
    assert flood["online"] is True
    assert flood["values"]["temperature"]["value"] == 12.25
    assert flood["values"]["temperature"]["unit"] == "°C"
    assert flood["values"]["water_leak"] == {
        "value": False,
        "unit": "",
        "time": flood["values"]["water_leak"]["time"],
    }
    assert datetime.fromisoformat(flood["last_seen"]).timestamp() == now - 4


def test_get_thing_by_id(http: httpx.Client) -> None:
    response = http.get("/api/v1/things/washer")
    assert response.status_code == 200
    washer = response.json()
    assert set(washer) == {
        *("id", "source", "online", "first_seen", "last_seen", "values"),
        *("name", "retired", "availability", "availability_by", "silence_timeout_s", "power"),
        *("announced", "unmapped", "field_map_hint"),
    }
    assert washer["online"] is False
    assert washer["availability"] == "offline"
    assert washer["availability_by"] == "device"  # it said so itself: no silence timeout applies
    assert washer["silence_timeout_s"] is None
    assert washer["unmapped"] is None  # the kiosk may not manage it
    assert washer["values"]["state"]["value"] is True
    assert washer["values"]["power"] == {
        "value": 1850.0,
        "unit": "W",
        "time": washer["values"]["power"]["time"],
    }


def test_unknown_thing_is_404_with_json_detail(http: httpx.Client) -> None:
    response = http.get("/api/v1/things/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "no thing with id 'no-such-thing'"}


def test_openapi_documents_the_things_models(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["info"]["version"] == "9.8.7"
    one = spec["paths"]["/api/v1/things/{thing_id}"]["get"]["responses"]
    detail = {"$ref": "#/components/schemas/ThingDetailOut"}
    assert one["200"]["content"]["application/json"]["schema"] == detail
    assert "404" in one
    fields = spec["components"]["schemas"]["ThingOut"]["properties"]
    assert set(fields) == {"id", "source", "online", "first_seen", "last_seen", "values"}
    assert set(spec["components"]["schemas"]["ValueOut"]["properties"]) == {"value", "unit", "time"}
