"""Fixtures for the web tests: a real LiveState and Telemetry, the app, and real servers on free ports."""

from __future__ import annotations

import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, sync_playwright

from hub.alerting import AlertService
from hub.domain.alert_rules import BooleanRule, Severity, Threshold
from hub.domain.events import Availability, Reading, Scan
from hub.domain.livestate import LiveState
from hub.domain.model import LendPolicy, Relation, RelationKind, Role, Share, Thing, Visibility
from hub.loans import LendingDesk
from hub.storage.accounts import Accounts
from hub.storage.alertstore import AlertStore
from hub.storage.catalog import Catalog
from hub.storage.directory import Directory
from hub.storage.store import Store
from hub.telemetry import Telemetry
from hub.web import WebContext, WebServer, create_app

NOW = 1_750_000_000.0  # fixed "now" for pages that say "N s ago"


@pytest.fixture
def now() -> float:
    """The clock the app under test reads."""
    return NOW


@pytest.fixture
def live() -> LiveState:
    """A live state with a flood sensor, a washing machine that went offline, and one scan."""
    state = LiveState()
    state.apply_reading(
        Reading("cellar-flood", "native", {"water_leak": False, "temperature": 12.25, "battery": 87.0}),
        at=NOW - 4,
    )
    state.apply_reading(Reading("washer", "tasmota", {"state": True, "power": 1850.0}), at=NOW - 400)
    state.apply_availability(Availability("washer", "tasmota", online=False), at=NOW - 300)
    state.record_scan(Scan("shed-door", "native", "01000734E0"), at=NOW - 60)
    return state


class OpenCatalog:
    """Every thing the live state knows is registered as public, fully shared; tags name things."""

    def __init__(self, tags: dict[str, str] | None = None, private: set[str] | None = None) -> None:
        self.tags = tags or {}
        self.private = private or set()

    def thing(self, thing_id: str) -> Thing | None:
        visibility = Visibility.PRIVATE if thing_id in self.private else Visibility.PUBLIC
        return Thing(id=thing_id, name=thing_id, visibility=visibility)

    def relations(self, thing_id: str) -> list[Relation]:
        return []

    def thing_by_tag(self, tag: str) -> str | None:
        return self.tags.get(tag)


@pytest.fixture
def catalog() -> OpenCatalog:
    return OpenCatalog(tags={"01000734E0": "shed-drill"})


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


@dataclass
class Health:
    """The app's health callable; tests set ``report`` or ``error``."""

    report: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"mqtt": {"status": "ok", "detail": "connected to 127.0.0.1:1883"}}
    )
    error: Exception | None = None

    def __call__(self) -> dict[str, dict[str, str]]:
        if self.error is not None:
            raise self.error
        return self.report


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
def ctx(live: LiveState, catalog: OpenCatalog, telemetry: Telemetry, health: Health) -> WebContext:
    return WebContext(
        live=live, catalog=catalog, telemetry=telemetry, health=health, version="9.8.7", clock=lambda: NOW
    )


@pytest.fixture
def start_server() -> Iterator[Callable[..., WebServer]]:
    """Starts real servers (port 0 unless given) and stops every one at the end of the test."""
    servers: list[WebServer] = []

    def start(ctx: WebContext, *, port: int = 0, try_next_ports: int = 0, **app_options: Any) -> WebServer:
        server = WebServer(
            create_app(ctx, **app_options),
            "127.0.0.1",
            port,
            try_next_ports=try_next_ports,
            trust_proxy=app_options.get("trust_proxy", False),
        )
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def http(ctx: WebContext, start_server: Callable[..., WebServer]) -> Iterator[httpx.Client]:
    """An HTTP client for a real server running the app over ``ctx`` (clock pinned at NOW)."""
    server = start_server(ctx)
    with httpx.Client(base_url=server.url or "", timeout=5) as client:
        yield client


@dataclass
class Event:
    name: str  # "message" when the stream named none, ":" for a comment line
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class EventStream:
    """Reads a Server-Sent Events stream in a thread; ``next()`` waits for an event with a timeout."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[Event | BaseException | None] = queue.Queue()
        self.response: httpx.Response | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._closed = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, headers or {}), daemon=True)
        self._thread.start()
        if not self._opened.wait(5):
            raise AssertionError(f"event stream {url} did not open within 5 s")

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                self.response = response
                self._opened.set()
                name, data, event_id = "message", [], None
                for line in response.iter_lines():
                    if self._closed.is_set():
                        return
                    if line.startswith(":"):
                        self.events.put(Event(":", line[1:].strip()))
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif line == "" and data:
                        self.events.put(Event(name, "\n".join(data), event_id))
                        name, data, event_id = "message", [], None
                    elif line == "":
                        name = "message"
        except BaseException as exc:
            if not self._closed.is_set():
                self.events.put(exc)
        finally:
            self._opened.set()
            self.events.put(None)  # end of stream

    def next(self, name: str, timeout: float = 3.0) -> Event:
        """The next event called ``name``, skipping others; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.events.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                raise AssertionError(f"stream ended before a {name!r} event")
            if isinstance(item, BaseException):
                raise AssertionError(f"stream failed: {item!r}") from item
            if item.name == name:
                return item
        raise AssertionError(f"no {name!r} event within {timeout} s")

    def ended(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        self._closed.set()
        self._client.close()
        self._thread.join(2)


@pytest.fixture
def open_stream() -> Iterator[Callable[..., EventStream]]:
    streams: list[EventStream] = []

    def open_(url: str, headers: dict[str, str] | None = None) -> EventStream:
        stream = EventStream(url, headers)
        streams.append(stream)
        return stream

    yield open_
    for stream in streams:
        stream.close()


# -- the people side: a real store, directory, lending desk and accounts -------------------------------

PASSWORDS = {
    "ada": "ada's long passphrase",
    "bruno": "bruno lends drills",
    "chen": "chen stewards the shed",
    "dee": "dee borrows things",
}


class Clock:
    """A clock the test moves: the app, the desk and the login throttle all read it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Neighborhood:
    """ada (admin) owns a private cellar sensor; bruno owns and lends a drill; chen and dee are residents."""

    store: Store
    directory: Directory
    desk: LendingDesk
    accounts: Accounts
    clock: Clock
    live: LiveState
    ids: dict[str, str]
    published: list[tuple[str, str]]

    def context(self, telemetry: Telemetry, alerts: AlertService | None = None) -> WebContext:
        return WebContext(
            live=self.live,
            catalog=Catalog(self.directory, ttl=0.0, clock=self.clock),
            telemetry=telemetry,
            health=Health(),
            version="9.8.7",
            clock=self.clock,
            directory=self.directory,
            desk=self.desk,
            accounts=self.accounts,
            alerts=alerts,
        )


@pytest.fixture
def neighborhood(tmp_path: Any, telemetry: Telemetry) -> Iterator[Neighborhood]:
    clock = Clock(NOW)
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    store.migrate()
    directory = Directory(store)
    published: list[tuple[str, str]] = []

    def publish(topic: str, payload: str, qos: int, retain: bool) -> None:
        published.append((topic, payload))  # custody topics are the broker tests' concern

    desk = LendingDesk(directory, publish, telemetry, clock=clock)
    # Argon2id at the lowest cost: the production profile is tested in tests/storage/test_accounts.py,
    # and at its cost every page test would spend most of its time hashing the residents' passwords
    accounts = Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    ada = directory.bootstrap_admin("ada", now=NOW - 100)
    ids = {"ada": ada.id}
    for name, role in (("bruno", Role.RESIDENT), ("dee", Role.RESIDENT), ("chen", Role.RESIDENT)):
        ids[name] = directory.add_resident(name, role=role, actor=ada.id, now=NOW - 100).id
    for name, password in PASSWORDS.items():
        accounts.set_password(ids[name], password, now=NOW - 100)
    directory.create_thing(
        Thing(id="ada-cellar", name="Ada's cellar", visibility=Visibility.PRIVATE),
        owner=ids["ada"],
        actor=ids["ada"],
        now=NOW - 100,
    )
    directory.create_thing(
        Thing(id="drill", name="Cordless drill", kind="tool", visibility=Visibility.NEIGHBORS),
        owner=ids["bruno"],
        actor=ids["bruno"],
        now=NOW - 100,
    )
    directory.attach_tag("drill", "C2994A1B", actor=ids["bruno"], now=NOW - 100)
    lends = Relation("", ids["bruno"], "drill", RelationKind.LENDS, policy=LendPolicy(loan_days=3))
    directory.grant(lends, actor=ids["bruno"], now=NOW - 100)
    state = LiveState()
    state.apply_reading(Reading("ada-cellar", "native", {"humidity": 71.5, "water_leak": False}), at=NOW - 5)
    state.apply_reading(Reading("drill", "native", {"battery": 80.0}), at=NOW - 5)
    yield Neighborhood(store, directory, desk, accounts, clock, state, ids, published)
    store.close()


@pytest.fixture
def hood_server(
    neighborhood: Neighborhood, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> WebServer:
    """A real server over the neighborhood (clock pinned, movable through ``neighborhood.clock``)."""
    return start_server(neighborhood.context(telemetry))


def form_field(html: str, name: str) -> str:
    """The value of a hidden input in a page."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in the page"
    return match.group(1)


def sign_in(client: httpx.Client, pseudonym: str, password: str | None = None) -> httpx.Response:
    """Sign in through the real login form (its CSRF cookie and field included)."""
    page = client.get("/login")
    assert page.status_code == 200, page.text
    return client.post(
        "/login",
        data={
            "pseudonym": pseudonym,
            "password": PASSWORDS[pseudonym] if password is None else password,
            "csrf_token": form_field(page.text, "csrf_token"),
        },
    )


def csrf_of(client: httpx.Client, path: str = "/me") -> str:
    """The session's CSRF token, as a resident page carries it."""
    return form_field(client.get(path).text, "csrf_token")


@pytest.fixture
def client_for(hood_server: WebServer) -> Iterator[Callable[..., httpx.Client]]:
    """``client_for("dee")``: an HTTP client signed in as dee (``client_for()``: anonymous)."""
    clients: list[httpx.Client] = []

    def make(pseudonym: str | None = None) -> httpx.Client:
        client = httpx.Client(base_url=hood_server.url or "", timeout=10)
        clients.append(client)
        if pseudonym is not None:
            response = sign_in(client, pseudonym)
            assert response.status_code == 303, response.text
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def login() -> Callable[..., httpx.Response]:
    """``login(client, pseudonym, password=None)``: sign in through the real form (for test modules that
    cannot import this conftest by name)."""
    return sign_in


@pytest.fixture
def csrf() -> Callable[..., str]:
    """``csrf(client, path="/me")``: the session's CSRF token as a resident page carries it."""
    return csrf_of


# -- alerting: a real AlertService over the neighborhood's store ------------------------------------------

#: the rules of the alerting fixture: a leak, and humidity above 80 % (clears below 70 %)
ALERT_RULES = (
    BooleanRule("water_leak", id="water-leak", severity=Severity.CRITICAL),
    Threshold("humidity", id="humid", severity=Severity.MINOR, above=80.0, clear_below=70.0),
)


@dataclass
class AlertHood:
    """The neighborhood with alerting: bruno also owns a public street flood sensor that shares only its
    derived state, watched by dee; chen is related to nothing. ``server`` serves it all."""

    hood: Neighborhood
    service: AlertService
    server: WebServer

    def reading(self, thing: str, values: dict[str, float | bool]) -> list[str]:
        """Feed a reading to the engine as the ingest worker does; the ids of the alerts open after it."""
        self.service.on_reading(thing, values, self.hood.clock())
        return [a.id for a in self.service.open_alerts() if a.thing == thing]


@pytest.fixture
def alert_hood(
    neighborhood: Neighborhood, telemetry: Telemetry, start_server: Callable[..., WebServer]
) -> Iterator[AlertHood]:
    d, ids = neighborhood.directory, neighborhood.ids
    d.create_thing(
        Thing(
            id="street-flood",
            name="Street flood sensor",
            visibility=Visibility.PUBLIC,
            watcher_share=Share.DERIVED,
            derived_from=("water_leak",),
        ),
        owner=ids["bruno"],
        actor=ids["bruno"],
        now=NOW - 100,
    )
    watch = Relation("", ids["dee"], "street-flood", RelationKind.WATCHES)
    d.grant(watch, actor=ids["dee"], now=NOW - 100)
    service = AlertService(
        directory=d,
        catalog=Catalog(d, ttl=0.0, clock=neighborhood.clock),
        store=AlertStore(neighborhood.store),
        publish=lambda topic, payload, qos, retain: neighborhood.published.append((topic, payload)),
        telemetry=telemetry,
        rules=ALERT_RULES,
        custody=neighborhood.desk.custody,
        clock=neighborhood.clock,
    )
    service.start()
    server = start_server(neighborhood.context(telemetry, alerts=service))
    yield AlertHood(neighborhood, service, server)
    service.stop()


@pytest.fixture
def alert_client(alert_hood: AlertHood) -> Iterator[Callable[..., httpx.Client]]:
    """``alert_client("dee")``: a client of the alerting server signed in as dee (no name: anonymous)."""
    clients: list[httpx.Client] = []

    def make(pseudonym: str | None = None) -> httpx.Client:
        client = httpx.Client(base_url=alert_hood.server.url or "", timeout=10)
        clients.append(client)
        if pseudonym is not None:
            response = sign_in(client, pseudonym)
            assert response.status_code == 303, response.text
        return client

    yield make
    for client in clients:
        client.close()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright; fails, never skips, when it is not installed."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"chromium not found: apt-get install chromium (expected {CHROMIUM})")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
