"""POST /api/v1/push/airrohr: the airrohr firmware's custom API, into the ingest queue as a topic."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from webkit import Health, OpenCatalog

from hub.app import build_router
from hub.config import HubConfig
from hub.domain.events import Reading
from hub.domain.livestate import LiveState
from hub.telemetry import Telemetry
from hub.web import WebContext, WebServer

URL = "/api/v1/push/airrohr"
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "payloads"
SENSORCOMMUNITY = json.loads((FIXTURES / "sensorcommunity.json").read_text(encoding="utf-8"))
RECEIVED = 1_790_000_000.0


@dataclass
class Queue:
    """Stands in for the ingest queue: keeps what was pushed, refuses when ``full``."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    full: bool = False

    def __call__(self, topic: str, payload: bytes) -> bool:
        if self.full:
            return False
        self.messages.append((topic, payload))
        return True


@pytest.fixture
def queue() -> Queue:
    return Queue()


@pytest.fixture
def serve(
    queue: Queue,
    live: LiveState,
    catalog: OpenCatalog,
    telemetry: Telemetry,
    health: Health,
    start_server: Any,
) -> Iterator[Callable[..., httpx.Client]]:
    """A real server over a WebContext (``serve(airrohr_password=...)``); closes its clients at the end."""
    clients: list[httpx.Client] = []

    def serve(**settings: Any) -> httpx.Client:
        settings.setdefault("push", queue)
        ctx = WebContext(
            live=live, catalog=catalog, telemetry=telemetry, health=health, version="9.8.7", **settings
        )
        server: WebServer = start_server(ctx)
        client = httpx.Client(base_url=server.url or "", timeout=5)
        clients.append(client)
        return client

    yield serve
    for client in clients:
        client.close()


def decoded(message: tuple[str, bytes]) -> Reading:
    """What the hub's ingest makes of a pushed message (the same router ``hub run`` uses)."""
    [event] = build_router(HubConfig()).route(*message, RECEIVED)
    assert isinstance(event, Reading), event
    return event


# -- accepted pushes ------------------------------------------------------------------------------------


def test_custom_api_push_is_queued_as_a_topic_and_decodes(
    serve: Callable[..., httpx.Client], queue: Queue
) -> None:
    body = SENSORCOMMUNITY[0]["payload"].encode()
    response = serve().post(
        URL, content=body, headers={"X-Sensor": "esp8266-12331981", "Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()) == (200, {"accepted": True})
    assert queue.messages == [("http/airrohr/esp8266-12331981", body)]
    event = decoded(queue.messages[0])
    assert event.thing == "airrohr.esp8266-12331981"
    assert event.values == {
        "pm10": 0.4,
        "pm25": 0.2,
        "temperature": 20.47,
        "pressure": 1006.1325,
        "humidity": 69.02,
        "rssi": -94.0,
    }


def test_without_x_sensor_the_body_esp8266id_names_the_same_thing(
    serve: Callable[..., httpx.Client], queue: Queue
) -> None:
    response = serve().post(URL, content=SENSORCOMMUNITY[0]["payload"])
    assert response.status_code == 200
    [(topic, _)] = queue.messages
    assert topic == "http/airrohr/12331981"
    assert decoded(queue.messages[0]).thing == "airrohr.esp8266-12331981"


@pytest.mark.parametrize(
    ("index", "pin", "values"),
    [
        (2, "1", {"pm10": 0.4, "pm25": 0.2}),
        (3, "11", {"temperature": 20.47, "pressure": 1006.1325, "humidity": 69.02}),
    ],
    ids=["sensorcommunity[2]", "sensorcommunity[3]"],
)
def test_sensor_community_api_bodies_with_x_pin_decode(
    serve: Callable[..., httpx.Client], queue: Queue, index: int, pin: str, values: dict[str, float]
) -> None:
    body = SENSORCOMMUNITY[index]["payload"]
    response = serve().post(URL, content=body, headers={"X-Sensor": "esp8266-12331981", "X-Pin": pin})
    assert response.status_code == 200
    assert decoded(queue.messages[0]).values == values


def test_gps_values_are_forwarded_to_ingest_and_dropped_there(
    serve: Callable[..., httpx.Client], queue: Queue
) -> None:
    body = {
        "sensordatavalues": [
            {"value_type": "SDS_P2", "value": "3.00"},
            {"value_type": "GPS_lat", "value": "48.7"},
        ]
    }
    assert serve().post(URL, json=body, headers={"X-Sensor": "esp8266-5"}).status_code == 200
    event = decoded(queue.messages[0])
    assert (event.values, event.unmapped) == ({"pm25": 3.0}, {})


# -- refused pushes -------------------------------------------------------------------------------------


def test_no_sensor_id_is_a_400_naming_the_header(serve: Callable[..., httpx.Client], queue: Queue) -> None:
    response = serve().post(URL, json={"sensordatavalues": []})
    assert response.status_code == 400 and "X-Sensor" in response.json()["detail"]
    assert queue.messages == []


@pytest.mark.parametrize("sensor", ["../etc", "esp 1", "a/b", "+", "#"])
def test_a_sensor_id_that_cannot_be_a_topic_level_is_a_400(
    serve: Callable[..., httpx.Client], sensor: str
) -> None:
    response = serve().post(URL, json={"sensordatavalues": []}, headers={"X-Sensor": sensor})
    assert response.status_code == 400 and "not a sensor id" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"P1=12.3&P2=4.5", "not JSON"),
        (b'{"sensordatavalues": [', "not JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'{"esp8266id": "1"}', "no sensordatavalues"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_a_body_that_is_not_a_push_is_a_400_with_the_reason(
    serve: Callable[..., httpx.Client], queue: Queue, body: bytes, reason: str
) -> None:
    response = serve().post(URL, content=body, headers={"X-Sensor": "esp8266-1"})
    assert response.status_code == 400 and reason in response.json()["detail"]
    assert queue.messages == []


def test_a_body_over_the_ingest_limit_is_a_413(serve: Callable[..., httpx.Client], queue: Queue) -> None:
    client = serve(push_max_bytes=256)
    values = [{"value_type": f"x{i}", "value": "1.00"} for i in range(20)]
    body = json.dumps({"sensordatavalues": values}).encode()
    assert len(body) > 256
    assert client.post(URL, content=body, headers={"X-Sensor": "esp8266-1"}).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield body[:200]
        yield body[200:]

    assert client.post(URL, content=chunks(), headers={"X-Sensor": "esp8266-1"}).status_code == 413
    assert (
        client.post(URL, content=b'{"sensordatavalues": []}', headers={"X-Sensor": "e-1"}).status_code == 200
    )
    assert queue.messages == [("http/airrohr/e-1", b'{"sensordatavalues": []}')]


def test_a_full_ingest_queue_is_a_503_with_retry_after(
    serve: Callable[..., httpx.Client], queue: Queue
) -> None:
    queue.full = True
    response = serve().post(URL, json={"sensordatavalues": []}, headers={"X-Sensor": "esp8266-1"})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0


def test_without_ingest_the_push_is_a_503(serve: Callable[..., httpx.Client]) -> None:
    response = serve(push=None).post(URL, json={"sensordatavalues": []}, headers={"X-Sensor": "esp8266-1"})
    assert (response.status_code, response.json()) == (503, {"detail": "ingest not running"})


# -- the shared password --------------------------------------------------------------------------------


def test_a_configured_password_is_required_with_any_user(
    serve: Callable[..., httpx.Client], queue: Queue
) -> None:
    client = serve(airrohr_password="s3cret")
    push = {"json": {"sensordatavalues": []}, "headers": {"X-Sensor": "esp8266-1"}}
    missing = client.post(URL, **push)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Basic")
    assert "ingest.ecosystems.airrohr.password" in missing.json()["detail"]
    assert client.post(URL, auth=("airrohr", "wrong"), **push).status_code == 401
    assert queue.messages == []
    assert client.post(URL, auth=("anyone", "s3cret"), **push).status_code == 200
    assert len(queue.messages) == 1


def test_without_a_configured_password_credentials_are_not_needed(serve: Callable[..., httpx.Client]) -> None:
    client = serve()
    assert client.post(URL, json={"sensordatavalues": []}, headers={"X-Sensor": "e-1"}).status_code == 200
    assert (
        client.post(
            URL, json={"sensordatavalues": []}, headers={"X-Sensor": "e-1"}, auth=("u", "p")
        ).status_code
        == 200
    )


# -- the API document -----------------------------------------------------------------------------------


def test_openapi_documents_the_push(serve: Callable[..., httpx.Client]) -> None:
    spec = serve().get("/openapi.json").json()
    post = spec["paths"][URL]["post"]
    assert post["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PushAccepted"
    }
    assert {"400", "401", "413", "503"} <= set(post["responses"])
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["sensordatavalues"]
    assert {p["name"] for p in post["parameters"]} == {"x-sensor", "x-pin"}


def test_a_hub_with_airrohr_turned_off_has_no_push_endpoint(
    serve: Callable[..., httpx.Client], queue: Queue
) -> None:
    client = serve(airrohr_enabled=False)
    body = {"esp8266id": "1", "sensordatavalues": [{"value_type": "SDS_P1", "value": "1.00"}]}
    response = client.post(URL, json=body, headers={"X-Sensor": "esp8266-1"})
    assert response.status_code == 404
    assert "ingest.ecosystems.airrohr.enabled" in response.json()["detail"]
    assert queue.messages == []
