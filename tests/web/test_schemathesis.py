"""Schemathesis against /openapi.json of the real app: no operation answers 500, whatever the body,
path, query or header, signed in as an admin, as a resident, or not at all.

The app is ``create_app`` over a real SQLite store with residents, things, a lending desk, alerting
(tests/web/webkit.py's neighborhood) and the link manager of residents' own Home Assistant, so
/api/v1/me/homeassistant is fuzzed too: the resident has linked hers (a port on 127.0.0.1 that never
answers) and shares an entity, linked again before each operation; the admin has none. Requests go to
the app in process. Every example is sent three times: with an admin's token, a resident's, and none.
``HUB_FUZZ_EXAMPLES`` sets the examples per operation (default 8, in each of schemathesis' positive and
negative modes).

A 5xx is a failure, except a 502 that says the resident's Home Assistant could not be reached (it
cannot: the answer the API documents for it).
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from starlette.testclient import TestClient
from webkit import NOW, Neighborhood

from hub.alerting import AlertService
from hub.domain.model import Thing
from hub.integrations.ha_source import HaLinkDesk, HaSource, SourceSettings
from hub.storage.alertstore import AlertStore
from hub.storage.catalog import Catalog
from hub.storage.halinks import HaLinks, HaShare
from hub.telemetry import Telemetry
from hub.web import create_app

EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "8"))
#: the resident's Home Assistant link: a long-lived token's shape, and the entity shared from it
HA_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJmdXp6In0.ZnV6ei1saW5rLXNpZ25hdHVyZQ"
HA_ENTITY = "sensor.dee_rain"
HA_PATHS = "/api/v1/me/homeassistant"


@pytest.fixture
def ha_url() -> Iterator[str]:
    """A Home Assistant that never answers: a port bound on 127.0.0.1 but not listening (every
    connection refused at once, and no other process takes the port meanwhile)."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


@pytest.fixture
def web_app(neighborhood: Neighborhood, telemetry: Telemetry, ha_url: str) -> Iterator[Any]:
    """The app with alerting and residents' Home Assistant on; ``app.state.fuzz_headers`` holds an
    admin's and a resident's token, ``app.state.relink()`` links the resident's Home Assistant again."""
    hood = neighborhood
    alerts = AlertService(
        directory=hood.directory,
        catalog=Catalog(hood.directory, ttl=0.0, clock=hood.clock),
        store=AlertStore(hood.store),
        publish=lambda topic, payload, qos, retain: None,
        telemetry=telemetry,
        rules=(),
        custody=hood.desk.custody,
        clock=hood.clock,
    )
    alerts.start()
    pushed: deque[tuple[str, bytes]] = deque(maxlen=1000)

    def push(topic: str, payload: bytes) -> bool:  # the ingest queue: always room here
        pushed.append((topic, payload))
        return True

    links = HaLinks(hood.store)
    dee = hood.ids["dee"]

    def relink() -> None:
        """dee's link and share as the fuzzing found them or, when a request removed them, anew."""
        links.link(dee, ha_url, HA_TOKEN, now=hood.clock())
        if not links.shares(dee):
            rain = hood.directory.create_thing(
                Thing(id=f"ha_link.rain-{time.monotonic_ns()}", name="rain gauge"),
                owner=dee,
                actor=dee,
                now=hood.clock(),
            )
            links.add_share(HaShare(dee, HA_ENTITY, rain.id, "precipitation", False, hood.clock()))

    relink()
    # the link manager as the hub builds it, not started: no connection until an operation needs one
    source = HaSource(
        HaLinkDesk(links, hood.directory, SourceSettings(timeout_s=3.0), clock=hood.clock), push, telemetry
    )
    ctx = replace(hood.context(telemetry, alerts=alerts), push=push, homeassistant_source=source)
    app = create_app(ctx)
    app.state.relink = relink
    _, admin = hood.accounts.create_token(hood.ids["ada"], "fuzz", now=NOW - 50)
    _, resident = hood.accounts.create_token(hood.ids["dee"], "fuzz", now=NOW - 50)
    app.state.fuzz_headers = {
        "admin": {"Authorization": f"Bearer {admin}"},
        "resident": {"Authorization": f"Bearer {resident}"},
        "anonymous": {},
    }
    yield app
    alerts.stop()


def _fuzz(app: Any, operation: Any, mode: schemathesis.GenerationMode) -> list[str]:
    """Examples of one operation in one mode, each sent as each caller; what answered 500."""
    found: list[str] = []
    client = TestClient(app, raise_server_exceptions=False)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        for who, headers in app.state.fuzz_headers.items():
            request = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
            client.cookies.clear()
            client.cookies.update(request.pop("cookies", None) or {})
            response = client.request(
                request.pop("method"),
                request.pop("url"),
                headers=request.pop("headers", None),
                params=request.pop("params", None),
                files=request.pop("files", None),
                **_body(request),
            )
            if response.status_code >= 500 and not _unreachable(case, response) and len(found) < 3:
                found.append(
                    f"{case.method} {case.formatted_path} as {who}: {response.status_code} "
                    f"{response.text[:300]}\n  {case.as_curl_command(headers=headers)}"
                )

    try:
        run()
    except Unsatisfiable:  # an operation with nothing to get wrong has no negative examples
        if mode is schemathesis.GenerationMode.POSITIVE:
            raise
    return found


def _unreachable(case: schemathesis.Case, response: Any) -> bool:
    """The documented 502 of the resident's Home Assistant that cannot be reached (it never answers)."""
    if response.status_code != 502 or not case.path.startswith(HA_PATHS):
        return False
    try:
        return bool(response.json().get("reason") == "unreachable")
    except ValueError:
        return False


def _body(request: dict[str, Any]) -> dict[str, Any]:
    """The body of a requests-style request as httpx takes it."""
    if request.get("json") is not None:
        return {"json": request["json"]}
    data = request.get("data")
    if isinstance(data, bytes | str):
        return {"content": data}
    return {"data": data} if data is not None else {}


#: the live event stream never ends: fuzzed by tests/web/test_events_stream.py's own cases instead
STREAMING = {"/events", "/api/v1/events"}


def test_no_operation_answers_500(web_app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", web_app)
    failures: list[str] = []
    operations = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in STREAMING:
            continue
        operations += 1
        if operation.path.startswith(HA_PATHS):
            web_app.state.relink()  # an earlier operation may have unlinked or unshared
        for mode in schemathesis.GenerationMode:
            failures += _fuzz(web_app, operation, mode)
    took = time.monotonic() - started
    print(f"schemathesis: {took:.0f} s, {operations} operations, {EXAMPLES} examples x 2 modes x 3 callers")
    assert operations >= 10, "the schema lists too few operations to be the real API"
    fuzzed = {result.ok().path for result in schema.get_all_operations()}
    assert f"{HA_PATHS}/shares/{{entity_id}}" in fuzzed, "residents' Home Assistant is not served"
    assert not failures, "\n".join(failures)


def test_the_schema_lists_the_api() -> None:
    """The fuzzing above is only worth something if the schema covers the REST API."""
    from webkit import Health, LiveState, WebContext

    ctx = WebContext(live=LiveState(), catalog=None, telemetry=Telemetry(), health=Health(), version="0")
    paths = create_app(ctx).openapi()["paths"]
    assert any(path.startswith("/api/v1/things") for path in paths), sorted(paths)
    assert any(path.startswith("/api/v1/loans") for path in paths), sorted(paths)
