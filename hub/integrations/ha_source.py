"""A resident's own Home Assistant as a source of readings (README: "A resident's Home Assistant as a
source").

A resident links their instance (base URL and a long-lived access token) and picks entities to share;
each becomes a thing the resident owns, with the visibility and watcher share they chose (full readings,
the derived yes/no state only, or nothing: ``Thing.watcher_share``). Entities that are personal data
(people, trackers, GPS attributes) are refused (hub/domain/ha_entities.py).

- :class:`HaClient`: one instance over REST (homeassistant-api ``Client``): the check when linking, the
  entity list, one entity's state.
- :class:`HaLinkDesk`: link, unlink, share, unshare against the store and the directory. ``hub ha`` uses it
  directly; no running hub is needed.
- :class:`HaSource`: in ``hub run``, follows every link on one asyncio thread. Per link, a websocket
  (homeassistant-api ``AsyncWebsocketClient``) subscribed to a state trigger on exactly the shared
  entities, so nothing else of the resident's home crosses the wire; or, with ``mode: poll`` or where a
  proxy in front of Home Assistant does not pass websockets, each shared entity's state read over REST
  every ``poll_interval_s`` by an apscheduler job. Every state goes to the ingest queue as topic
  ``$ha_link/<thing>/state`` through ``Hub.push`` and is decoded by hub/ingest/ha_link.py, so it is
  recorded like any MQTT reading (time series, latest value, alerts).
- Home Assistant unreachable: the link's things go offline (``$ha_link/<thing>/availability``) and the
  next attempt waits a capped exponential backoff with jitter (``retry_initial_s`` doubling up to
  ``retry_max_s``, each drawn from its upper half). A rejected token is not retried until the resident
  links again. An idle websocket is pinged every ``keepalive_s``; a connection that answers nothing for
  twice that is dropped.
- Unsharing removes the entity from the followed set before the call returns (its next state change is
  dropped) and retires its thing; unlinking does that for every entity and deletes the token. History
  stays, visible as the thing's visibility allows. Changes made by ``hub ha`` in another process reach
  a running hub within ``RECONCILE_S``.

The token is kept in :class:`~hub.storage.alertstore.Secret` and revealed only into the Authorization
header and the websocket's auth message; homeassistant-api's own log lines (every state and attribute it
receives) are held at warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import niquests
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from homeassistant_api import AsyncClient, AsyncWebsocketClient, Client
from homeassistant_api.errors import (
    EndpointNotFoundError,
    HomeassistantAPIError,
    InternalServerError,
    MalformedDataError,
    ProcessorNotFoundError,
    ReceivingError,
    RequestError,
    RequestTimeoutError,
    UnauthorizedError,
)
from prometheus_client import Counter

from hub.domain.ha_entities import (
    SWITCH_DOMAINS,
    UNAVAILABLE,
    domain_of,
    entity_meaning,
    personal_reason,
)
from hub.domain.model import AuditEntry, Share, Thing, Visibility
from hub.domain.vocabulary import BOOLEAN, unit_of
from hub.ingest.ha_link import SOURCE, availability_topic, state_topic
from hub.storage.alertstore import Secret
from hub.storage.directory import Directory, new_id
from hub.storage.halinks import HaLink, HaLinks, HaShare
from hub.telemetry import Telemetry

log = logging.getLogger(__name__)
# its info lines print every event it receives and its debug lines every message: states and attributes
# of a resident's home (the auth message, with the token, it never logs)
logging.getLogger("homeassistant_api").setLevel(logging.WARNING)
#: the poll jobs' executor; apscheduler logs each run at info under apscheduler.executors.<alias>
_EXECUTOR = "ha_source"
logging.getLogger(f"apscheduler.executors.{_EXECUTOR}").setLevel(logging.WARNING)

#: seconds between reading the links and shares from the store (changes made by ``hub ha``)
RECONCILE_S: Final = 2.0
#: watcher share words of the CLI, the forms and the API → the thing's watcher share
WATCHERS: Final[dict[str, Share]] = {"full": Share.FULL, "state": Share.DERIVED, "none": Share.NONE}
WATCHER_WORDS: Final[dict[Share, str]] = {share: word for word, share in WATCHERS.items()}
#: a long-lived access token is a JWT: base64url parts joined by dots
_TOKEN: Final = re.compile(r"[A-Za-z0-9._~+/=-]{16,4096}")
_TOKEN_WHERE: Final = "your Home Assistant profile → Security → Long-lived access tokens"


class HaSourceError(Exception):
    """Something a resident can act on: ``reason`` is a stable code, ``message`` says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """``integrations.homeassistant_source`` of the config."""

    mode: str = "auto"  # auto | websocket | poll
    poll_interval_s: float = 30.0
    retry_initial_s: float = 1.0
    retry_max_s: float = 300.0
    max_entities: int = 20
    timeout_s: float = 10.0
    keepalive_s: float = 30.0


# -- talking to one instance ------------------------------------------------------------------------


def check_url(text: str) -> str:
    """The base URL of a Home Assistant as the hub keeps it (no trailing ``/`` or ``/api``), or an error
    saying what to type."""
    example = "the address you open Home Assistant at, such as http://homeassistant.local:8123"
    url = text.strip()
    if not url or len(url) > 2048:
        raise HaSourceError("bad_url", f"give {example}")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise HaSourceError("bad_url", f"the port in {url!r:.80} is not a number: give {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HaSourceError("bad_url", f"{url!r:.80} is not an http(s) address: give {example}")
    if parts.username is not None or parts.password is not None:
        raise HaSourceError("bad_url", "put the access token in the token field, not in the URL")
    if parts.query or parts.fragment:
        raise HaSourceError("bad_url", f"leave out the part after ? or #: give {example}")
    path = parts.path.rstrip("/")
    path = path.removesuffix("/api").rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def check_token(text: str) -> str:
    """A long-lived access token as typed, stripped; the error never repeats it."""
    token = text.strip()
    if not token:
        raise HaSourceError("bad_token", f"paste a long-lived access token ({_TOKEN_WHERE})")
    if not _TOKEN.fullmatch(token):
        raise HaSourceError(
            "bad_token",
            f"that is not a long-lived access token: copy the whole token ({_TOKEN_WHERE}), nothing else",
        )
    return token


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _cause(exc: BaseException) -> str:
    text = f"{exc} {exc.__cause__ or ''}".lower()
    if "resolution" in text or "name or service not known" in text or "resolve" in text:
        return "its name could not be resolved"
    if "refused" in text or "errno 111" in text:
        return "the connection was refused"
    if "ssl" in text or "certificate" in text or "tls" in text:
        return "its TLS certificate was not accepted"
    if "unreachable" in text or "no route" in text:
        return "the network cannot reach it"
    if "reset" in text or "closed" in text or "eof" in text:
        return "the connection was closed"
    return type(exc).__name__


def explain(exc: BaseException, url: str, timeout: float) -> HaSourceError:
    """A failure talking to Home Assistant at ``url``, as a reason code and what to do about it."""
    where = f"Home Assistant at {url}"
    check = "check that Home Assistant runs and that this hub can reach that address"
    if isinstance(exc, HaSourceError):
        return exc
    if isinstance(exc, UnauthorizedError):
        return HaSourceError(
            "token_rejected",
            f"{where} rejected the access token (revoked or mistyped): create a new long-lived access "
            f"token ({_TOKEN_WHERE}) and link again",
        )
    if isinstance(exc, RequestTimeoutError | niquests.exceptions.Timeout | TimeoutError):
        return HaSourceError("timeout", f"{where} did not answer within {timeout:g} s: {check}")
    if isinstance(exc, niquests.exceptions.SSLError):
        return HaSourceError(
            "tls",
            f"{where}: its TLS certificate was not accepted; use its address with a valid certificate, "
            "or http:// inside your home network",
        )
    if isinstance(exc, niquests.exceptions.RequestException):
        return HaSourceError(
            "unreachable",
            f"{where} could not be reached ({_cause(exc)}): {check}, and that the URL is the one you open "
            "it at (such as http://homeassistant.local:8123)",
        )
    if isinstance(exc, EndpointNotFoundError | ProcessorNotFoundError | MalformedDataError):
        return HaSourceError(
            "not_homeassistant",
            f"{url} answered, but not as Home Assistant's API: give the address you open Home Assistant "
            "at, without a page path",
        )
    if isinstance(exc, InternalServerError):
        return HaSourceError(
            "server_error", f"{where} failed with a server error: look at its log (Settings → System → Logs)"
        )
    if isinstance(exc, ReceivingError):
        return HaSourceError("unreachable", f"{where} closed the connection ({exc}): {check}")
    if isinstance(exc, RequestError | HomeassistantAPIError):
        return HaSourceError("refused", f"{where} refused the request: {str(exc)[:200]}")
    if isinstance(exc, OSError):
        return HaSourceError("unreachable", f"{where} could not be reached ({_cause(exc)}): {check}")
    return HaSourceError("unexpected", f"{where} answered unexpectedly ({type(exc).__name__}): {check}")


class HaClient:
    """One Home Assistant over REST, for the link check and the entity list (short-lived, synchronous)."""

    def __init__(self, url: str, token: Secret, *, timeout: float = 10.0) -> None:
        self.url = url
        self._token = token
        self.timeout = timeout

    def check(self) -> None:
        """Raise HaSourceError unless the instance answers its API with this token."""
        if not self._call(lambda client: client.check_api_running()):
            raise HaSourceError(
                "not_homeassistant",
                f"{self.url} answered, but not as Home Assistant's API: give the address you open Home "
                "Assistant at",
            )

    def states(self) -> list[Any]:
        """Every entity's state (homeassistant-api ``State``)."""
        return list(self._call(lambda client: client.get_states()))

    def state(self, entity_id: str) -> Any:
        """One entity's state; HaSourceError ``unknown_entity`` when Home Assistant has no such entity."""
        try:
            return self._call(lambda client: client.get_state(entity_id=entity_id))
        except HaSourceError as exc:
            if exc.reason == "not_homeassistant":  # the API answered, the entity is what is missing
                raise HaSourceError(
                    "unknown_entity",
                    f"Home Assistant at {self.url} has no entity {entity_id}: pick one from your list",
                ) from None
            raise

    def _call(self, action: Callable[[Client], Any]) -> Any:
        session = niquests.Session()
        client = Client(
            f"{self.url}/api",
            self._token.reveal(),
            session=session,
            global_request_kwargs={"timeout": self.timeout},  # type: ignore[dict-item]
        )
        try:
            return action(client)
        except Exception as exc:
            raise explain(exc, self.url, self.timeout) from None
        finally:
            session.close()

    def __repr__(self) -> str:
        return f"HaClient({self.url!r})"


# -- links and shares, as stored ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntityChoice:
    """One entity of the resident's Home Assistant as the list to choose from shows it."""

    entity_id: str
    name: str
    measurement: str | None
    unit: str | None  # the canonical unit its readings are recorded in
    state: str | None  # its state now; only for entities that may be shared
    refusal: str | None
    detail: str
    thing: str | None  # the thing it is shared as

    @property
    def shareable(self) -> bool:
        return self.refusal is None and self.measurement is not None


def _friendly(state: Any) -> str:
    name = state.attributes.get("friendly_name")
    return name.strip()[:100] if isinstance(name, str) and name.strip() else str(state.entity_id)


class HaLinkDesk:
    """Link, unlink, share and unshare: the store's tables, the directory's things, and the checks."""

    def __init__(
        self,
        links: HaLinks,
        directory: Directory,
        settings: SourceSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.links = links
        self.directory = directory
        self.settings = settings or SourceSettings()
        self.clock = clock

    def client(self, link: HaLink) -> HaClient:
        return HaClient(link.url, link.token, timeout=self.settings.timeout_s)

    def link(self, resident: str, url: str, token: str, *, check: bool = True) -> HaLink:
        """Store a resident's link after Home Assistant accepted the token (``check``)."""
        self._resident(resident)
        url = check_url(url)
        secret = Secret(check_token(token))
        if check:
            HaClient(url, secret, timeout=self.settings.timeout_s).check()
        now = self.clock()
        link = self.links.link(resident, url, secret.reveal(), now=now)
        self.directory.append_audit(AuditEntry(now, resident, "homeassistant.link", subject=resident))
        log.info("home assistant linked resident=%s host=%s", resident, _host(url))
        return link

    def unlink(self, resident: str, *, actor: str | None) -> bool:
        """Delete the link and its token and stop every share (their things are retired). ``actor``
        None: the hub itself (the resident was erased)."""
        linked, removed = self.links.unlink(resident)
        now = self.clock()
        for share in removed:
            self._retire(share, actor, now)
        if linked:
            detail = {"shares": str(len(removed))}
            self.directory.append_audit(
                AuditEntry(now, actor, "homeassistant.unlink", subject=resident, detail=detail)
            )
            log.info("home assistant unlinked resident=%s shares=%d", resident, len(removed))
        return linked

    def get(self, resident: str) -> HaLink | None:
        return self.links.get(resident)

    def shares(self, resident: str) -> list[HaShare]:
        return self.links.shares(resident)

    def entities(self, resident: str) -> list[EntityChoice]:
        """The entities the resident's Home Assistant reports, with what each would be (or why not)."""
        link = self._link(resident)
        shared = {share.entity_id: share.thing for share in self.links.shares(resident)}
        out = []
        for state in sorted(self.client(link).states(), key=lambda s: str(s.entity_id)):
            entity_id = str(state.entity_id)
            meaning = entity_meaning(entity_id, state.attributes)
            personal = meaning.refusal is not None and meaning.refusal.value == "personal_data"
            out.append(
                EntityChoice(
                    entity_id=entity_id,
                    name=entity_id if personal else _friendly(state),  # a person's name is theirs
                    measurement=meaning.measurement,
                    unit=(unit_of(meaning.measurement) or None) if meaning.measurement else None,
                    state=str(state.state)[:64] if meaning.shareable else None,
                    refusal=meaning.refusal.value if meaning.refusal else None,
                    detail=meaning.detail,
                    thing=shared.get(entity_id),
                )
            )
        return out

    def share(
        self,
        resident: str,
        entity_id: str,
        *,
        visibility: str = "private",
        watchers: str = "none",
        name: str | None = None,
        measurement: str | None = None,
    ) -> tuple[HaShare, Thing]:
        """Share one entity as a new thing the resident owns."""
        link = self._link(resident)
        try:
            seen_by = Visibility(visibility)
        except ValueError:
            raise HaSourceError("bad_visibility", "visibility is private, neighbors or public") from None
        level = WATCHERS.get(watchers)
        if level is None:
            raise HaSourceError(
                "bad_watchers", "watchers see full (readings), state (derived yes/no only) or none"
            )
        mine = self.links.shares(resident)
        if any(share.entity_id == entity_id for share in mine):
            raise HaSourceError("already_shared", f"{entity_id} is shared already")
        if len(mine) >= self.settings.max_entities:
            raise HaSourceError(
                "too_many",
                f"you share {len(mine)} entities, the most this hub allows "
                "(integrations.homeassistant_source.max_entities): unshare one first",
            )
        state = self.client(link).state(entity_id)
        meaning = entity_meaning(entity_id, state.attributes, measurement or None)
        if not meaning.shareable or meaning.measurement is None:
            reason = meaning.refusal.value if meaning.refusal else "no_measurement"
            raise HaSourceError(reason, f"{entity_id} cannot be shared: {meaning.detail}")
        now = self.clock()
        chosen = meaning.measurement
        thing = Thing(
            id=f"{SOURCE}.{new_id()}",
            name=(name or "").strip()[:100] or _friendly(state),
            kind="device" if domain_of(entity_id) in SWITCH_DOMAINS else "sensor",
            visibility=seen_by,
            watcher_share=level,
            derived_from=(chosen,) if chosen in BOOLEAN else (),
        )
        thing = self.directory.create_thing(thing, owner=resident, actor=resident, now=now)
        share = HaShare(resident, entity_id, thing.id, chosen, meaning.invert, now)
        try:
            self.links.add_share(share)
        except Exception:
            self.directory.retire_thing(thing.id, actor=resident, now=now)
            raise
        log.info(
            "home assistant entity shared resident=%s thing=%s measurement=%s", resident, thing.id, chosen
        )
        return share, thing

    def unshare(self, resident: str, entity_id: str) -> HaShare:
        """Stop sharing an entity; its thing is retired, its history stays."""
        removed = self.links.remove_share(resident, entity_id)
        if removed is None:
            raise HaSourceError("not_shared", f"{entity_id} is not shared")
        self._retire(removed, resident, self.clock())
        log.info("home assistant entity unshared resident=%s thing=%s", resident, removed.thing)
        return removed

    def _retire(self, share: HaShare, actor: str | None, now: float) -> None:
        thing = self.directory.thing(share.thing)
        if thing is not None and not thing.retired:
            self.directory.retire_thing(share.thing, actor=actor, now=now)

    def _link(self, resident: str) -> HaLink:
        link = self.links.get(resident)
        if link is None:
            raise HaSourceError("not_linked", "link your Home Assistant first (its URL and an access token)")
        return link

    def _resident(self, resident: str) -> None:
        found = self.directory.resident(resident)
        if found is None or found.erased:
            raise HaSourceError("unknown_resident", f"no resident with id {resident}")


# -- following the links in a running hub --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShareStatus:
    entity_id: str
    thing: str
    measurement: str
    online: bool | None


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """A link as the resident's page and the API show it; never the token."""

    url: str
    #: linked (not followed by this process), idle (nothing shared), connecting, connected,
    #: unreachable (retrying), rejected (the token: link again)
    state: str
    mode: str
    reason: str | None = None
    problem: str | None = None
    since: float | None = None
    next_try: float | None = None
    shares: tuple[ShareStatus, ...] = ()


@dataclass(eq=False)
class _Follow:
    """One link as the running hub follows it (touched only on the source's event loop)."""

    resident: str
    url: str
    token: Secret
    mode: str
    shares: dict[str, HaShare] = field(default_factory=dict)
    state: str = "idle"
    problem: HaSourceError | None = None
    since: float = 0.0
    next_try: float | None = None
    failures: int = 0
    attempts: int = 0
    task: asyncio.Task[None] | None = None
    online: dict[str, bool] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)  # entity → last_updated pushed


class _Websocket(AsyncWebsocketClient):
    """The websocket client, noting when anything last arrived and forgetting answered pings."""

    def handle_recv(self, data: dict[str, Any]) -> None:
        super().handle_recv(data)
        if data.get("type") == "pong":  # the base client keeps each until asked; nobody asks
            self._ping_responses.pop(data.get("id", -1), None)


class _NoWebsocket(Exception):
    """The server (or a proxy in front of it) does not pass websockets."""


class HaSource:
    """Follows every resident's link in a running hub (see the module docstring). ``start``/``stop``."""

    def __init__(
        self,
        desk: HaLinkDesk,
        push: Callable[[str, bytes], bool],
        telemetry: Telemetry,
        *,
        on_registry_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.desk = desk
        self.settings = desk.settings
        self._push = push
        self._on_registry_change = on_registry_change
        self._follows: dict[str, _Follow] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._reconciling: asyncio.Lock | None = None
        self._reconciler: asyncio.Task[None] | None = None
        registry = telemetry.registry
        self.connections = Counter(
            "hub_ha_source_connections",
            "Attempts to reach residents' Home Assistant, by result (ok or the failure's reason)",
            ["result"],
            registry=registry,
        )
        self.states = Counter(
            "hub_ha_source_states", "Shared entities' states handed to ingest", registry=registry
        )
        self.dropped = Counter(
            "hub_ha_source_dropped",
            "States of shared entities not handed to ingest, by why (queue_full, personal_data)",
            ["why"],
            registry=registry,
        )
        telemetry.gauge("hub_ha_source_links", "Residents' Home Assistant links followed", self._count_links)
        telemetry.gauge(
            "hub_ha_source_connected", "Residents' Home Assistant links connected now", self._count_connected
        )

    # -- life ------------------------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._begin())
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="ha-source", daemon=True)
        self._thread.start()
        ready.wait(10)
        log.info(
            "following residents' home assistant mode=%s poll_interval_s=%g",
            self.settings.mode,
            self.settings.poll_interval_s,
        )

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._end(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    async def _begin(self) -> None:
        self._reconciling = asyncio.Lock()
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_executor(AsyncIOExecutor(), alias=_EXECUTOR)
        scheduler.start()
        self._scheduler = scheduler
        self._reconciler = asyncio.get_running_loop().create_task(self._reconcile_forever())

    async def _end(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
        for resident in list(self._follows):
            await self._drop(resident, announce=False)  # the hub stops: its things are not offline
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    # -- what residents do (web threads) ---------------------------------------------------------------
    def status(self, resident: str) -> LinkStatus | None:
        link = self.desk.get(resident)
        if link is None:
            return None
        follow = self._follows.get(resident)
        if follow is None or follow.url != link.url:
            shares = tuple(
                ShareStatus(s.entity_id, s.thing, s.measurement, None) for s in self.desk.shares(resident)
            )
            return LinkStatus(link.url, "linked", self.settings.mode, shares=shares)
        problem = follow.problem
        return LinkStatus(
            url=follow.url,
            state=follow.state,
            mode=follow.mode,
            reason=problem.reason if problem else None,
            problem=problem.message if problem else None,
            since=follow.since or None,
            next_try=follow.next_try if follow.state == "unreachable" else None,
            shares=tuple(
                ShareStatus(s.entity_id, s.thing, s.measurement, follow.online.get(s.thing))
                for s in sorted(follow.shares.values(), key=lambda s: s.entity_id)
            ),
        )

    def link(self, resident: str, url: str, token: str) -> LinkStatus:
        self.desk.link(resident, url, token)
        self.sync()
        status = self.status(resident)
        assert status is not None
        return status

    def unlink(self, resident: str) -> bool:
        linked = self.desk.unlink(resident, actor=resident)
        self.sync()
        self._on_registry_change()
        return linked

    def entities(self, resident: str) -> list[EntityChoice]:
        return self.desk.entities(resident)

    def share(self, resident: str, entity_id: str, **choice: Any) -> tuple[HaShare, Thing]:
        done = self.desk.share(resident, entity_id, **choice)
        self._on_registry_change()
        self.sync()
        return done

    def unshare(self, resident: str, entity_id: str) -> HaShare:
        removed = self.desk.unshare(resident, entity_id)
        self.sync()
        self._on_registry_change()
        return removed

    def sync(self) -> None:
        """Follow the store's links and shares now (returns once followed; no-op when not running)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._reconcile(), loop).result(timeout=30)
        except Exception:
            log.exception("following home assistant links failed")

    def attempts(self, resident: str) -> int:
        """Connection attempts made for this resident's link since it was followed (tests, diagnostics)."""
        follow = self._follows.get(resident)
        return follow.attempts if follow is not None else 0

    # -- reconciling with the store --------------------------------------------------------------------
    async def _reconcile_forever(self) -> None:
        logged = -math.inf
        while True:
            try:
                await self._reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                if time.monotonic() - logged >= 60.0:  # a store that is down: one line a minute
                    logged = time.monotonic()
                    log.exception("reading home assistant links from the store failed")
            await asyncio.sleep(RECONCILE_S)

    def _load(self) -> tuple[list[HaLink], list[HaShare]]:
        links = []
        for link in self.desk.links.links():
            resident = self.desk.directory.resident(link.resident)
            if resident is None or resident.erased:  # erased: the token goes too
                self.desk.unlink(link.resident, actor=None)
                continue
            links.append(link)
        return links, self.desk.links.shares()

    async def _reconcile(self) -> None:
        assert self._reconciling is not None
        async with self._reconciling:
            links, shares = await asyncio.to_thread(self._load)
            wanted = {link.resident: link for link in links}
            by_resident: dict[str, dict[str, HaShare]] = {}
            for share in shares:
                by_resident.setdefault(share.resident, {})[share.entity_id] = share
            for resident in [r for r in self._follows if r not in wanted]:
                await self._drop(resident)
            for resident, link in wanted.items():
                shared = by_resident.get(resident, {})
                follow = self._follows.get(resident)
                if follow is not None and (follow.url != link.url or follow.token != link.token):
                    await self._drop(resident)
                    follow = None
                if follow is None:
                    mode = "poll" if self.settings.mode == "poll" else "websocket"
                    follow = _Follow(resident, link.url, link.token, mode, dict(shared))
                    self._follows[resident] = follow
                    self._restart(follow)
                elif shared != follow.shares:
                    gone = [s for e, s in follow.shares.items() if shared.get(e) != s]
                    follow.shares = dict(shared)  # from here on, states of unshared entities are dropped
                    for share in gone:
                        self._availability(follow, share, online=False)
                        follow.seen.pop(share.entity_id, None)
                    self._restart(follow)

    async def _drop(self, resident: str, *, announce: bool = True) -> None:
        follow = self._follows.pop(resident, None)
        if follow is None:
            return
        shares, follow.shares = list(follow.shares.values()), {}
        await self._halt(follow)
        for share in shares if announce else ():
            self._availability(follow, share, online=False)

    async def _halt(self, follow: _Follow) -> None:
        self._unschedule(follow)
        task, follow.task = follow.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def _restart(self, follow: _Follow) -> None:
        """(Re)connect with the current shares; nothing shared: no connection at all."""
        self._unschedule(follow)
        if follow.task is not None:
            follow.task.cancel()
            follow.task = None
        follow.failures = 0
        follow.next_try = None
        if not follow.shares:
            follow.state, follow.problem = "idle", None
            return
        if follow.state in ("idle", "rejected"):
            follow.state = "connecting"
        if follow.mode == "poll":
            self._schedule(follow)
        else:
            follow.task = asyncio.get_running_loop().create_task(self._follow_websocket(follow))

    # -- websocket ------------------------------------------------------------------------------------
    async def _follow_websocket(self, follow: _Follow) -> None:
        while True:
            try:
                await self._websocket_session(follow)
                raise ReceivingError("WebSocket connection closed")
            except asyncio.CancelledError:
                raise
            except _NoWebsocket:
                if self.settings.mode == "websocket":
                    self._failed(follow, HaSourceError("no_websocket", self._no_websocket(follow)))
                else:
                    log.warning(
                        "home assistant does not pass websockets, polling instead resident=%s host=%s",
                        follow.resident,
                        _host(follow.url),
                    )
                    follow.mode = "poll"
                    self._schedule(follow)
                    return
            except UnauthorizedError as exc:
                self._failed(follow, explain(exc, follow.url, self.settings.timeout_s), retry=False)
                return
            except Exception as exc:
                self._failed(follow, explain(exc, follow.url, self.settings.timeout_s))
            await asyncio.sleep(self._backoff(follow))

    def _no_websocket(self, follow: _Follow) -> str:
        return (
            f"Home Assistant at {follow.url} does not accept websockets (a proxy in front of it may not pass "
            "them): let the proxy pass websockets, or set integrations.homeassistant_source.mode to poll"
        )

    async def _websocket_session(self, follow: _Follow) -> None:
        follow.attempts += 1
        keepalive = self.settings.keepalive_s
        # connecting and signing in take at most timeout_s; afterwards no frame for two keepalive periods
        # (the pings go unanswered) times the read out
        timeout = self.settings.timeout_s
        session = niquests.AsyncSession(timeout=(timeout, 2 * keepalive))
        client = _Websocket(f"{follow.url}/api/websocket", follow.token.reveal(), session=session)
        entered = False
        try:
            try:
                await asyncio.wait_for(client.__aenter__(), timeout)
            except niquests.exceptions.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if 400 <= status < 500 and status not in (401, 403):
                    raise _NoWebsocket from None
                raise
            except ReceivingError as exc:
                if "upgrade" in str(exc).lower():
                    raise _NoWebsocket from None
                raise
            entered = True
            trigger = {"platform": "state", "entity_id": sorted(follow.shares)}
            subscription = (
                await client.recv_result(await client.send("subscribe_trigger", trigger=trigger))
            ).id
            await self._read_current(follow)  # after subscribing: no change falls between the two
            self._connected(follow)
            pinger = asyncio.get_running_loop().create_task(self._ping(client, keepalive))
            try:
                while True:
                    response = await client.recv_event(subscription)
                    variables = getattr(response.event, "variables", None)
                    fired = variables.get("trigger") if isinstance(variables, dict) else None
                    if isinstance(fired, dict) and isinstance(fired.get("entity_id"), str):
                        self._state(follow, fired["entity_id"], fired.get("to_state"))
            finally:
                pinger.cancel()
        finally:
            with contextlib.suppress(BaseException):
                if entered:
                    await client.__aexit__(None, None, None)
                else:
                    await session.close()

    @staticmethod
    async def _ping(client: _Websocket, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await client.send("ping")

    # -- polling --------------------------------------------------------------------------------------
    def _schedule(self, follow: _Follow) -> None:
        if self._scheduler is None:
            return
        self._scheduler.add_job(
            self._poll,
            "interval",
            seconds=self.settings.poll_interval_s,
            args=[follow.resident],
            id=f"poll:{follow.resident}",
            replace_existing=True,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            executor=_EXECUTOR,
        )

    def _unschedule(self, follow: _Follow) -> None:
        if self._scheduler is not None:
            with contextlib.suppress(Exception):
                self._scheduler.remove_job(f"poll:{follow.resident}")

    async def _poll(self, resident: str) -> None:
        follow = self._follows.get(resident)
        if follow is None or follow.mode != "poll" or not follow.shares or follow.state == "rejected":
            return
        if follow.next_try is not None and time.time() < follow.next_try:
            return  # backing off: the next poll after next_try tries again
        follow.attempts += 1
        try:
            await self._read_current(follow)
        except asyncio.CancelledError:
            raise
        except UnauthorizedError as exc:
            self._failed(follow, explain(exc, follow.url, self.settings.timeout_s), retry=False)
            self._unschedule(follow)
            return
        except Exception as exc:
            self._failed(follow, explain(exc, follow.url, self.settings.timeout_s))
            self._backoff(follow)
            return
        self._connected(follow)

    async def _read_current(self, follow: _Follow) -> None:
        """Each shared entity's state now, over REST (only what is shared is asked for)."""
        session = niquests.AsyncSession(timeout=self.settings.timeout_s)
        client = AsyncClient(f"{follow.url}/api", follow.token.reveal(), session=session)
        try:
            for entity_id in sorted(follow.shares):
                try:
                    state = await client.get_state(entity_id=entity_id)
                except EndpointNotFoundError:
                    self._state(follow, entity_id, None)
                    continue
                self._state(follow, entity_id, state.model_dump(mode="json"))
        finally:
            await session.close()

    # -- states, availability, failures ---------------------------------------------------------------
    def _state(self, follow: _Follow, entity_id: str, state: Any) -> None:
        share = follow.shares.get(entity_id)
        if share is None:
            return  # unshared meanwhile
        if not isinstance(state, Mapping):  # removed from Home Assistant
            self._availability(follow, share, online=False)
            return
        value = state.get("state")
        attributes = state.get("attributes")
        attributes = attributes if isinstance(attributes, Mapping) else {}
        if personal_reason(entity_id, attributes) is not None:
            # its attributes turned personal after it was shared: nothing of it is recorded any more
            self.dropped.labels("personal_data").inc()
            self._availability(follow, share, online=False)
            return
        if not isinstance(value, str):
            return
        if value == UNAVAILABLE:
            self._availability(follow, share, online=False)
            return
        self._availability(follow, share, online=True)
        updated = state.get("last_updated")
        stamp = updated if isinstance(updated, str) else None
        if stamp is not None and follow.seen.get(entity_id) == stamp:
            return  # polled again, unchanged
        unit = attributes.get("unit_of_measurement")
        payload = {
            "entity_id": entity_id,
            "state": value[:256],
            "unit": unit if isinstance(unit, str) else None,
            "measurement": share.measurement,
            "invert": share.invert,
            "time": stamp,
        }
        if self._send(state_topic(share.thing), json.dumps(payload).encode()):
            if stamp is not None:
                follow.seen[entity_id] = stamp
            self.states.inc()

    def _availability(self, follow: _Follow, share: HaShare, *, online: bool) -> None:
        if follow.online.get(share.thing) is online:
            return
        if self._send(availability_topic(share.thing), b"online" if online else b"offline"):
            follow.online[share.thing] = online

    def _send(self, topic: str, payload: bytes) -> bool:
        if self._push(topic, payload):
            return True
        self.dropped.labels("queue_full").inc()
        return False

    def _connected(self, follow: _Follow) -> None:
        if follow.state != "connected":
            log.info(
                "home assistant connected resident=%s host=%s mode=%s shares=%d",
                follow.resident,
                _host(follow.url),
                follow.mode,
                len(follow.shares),
            )
            follow.since = time.time()
        self.connections.labels("ok").inc()
        follow.state, follow.problem, follow.failures, follow.next_try = "connected", None, 0, None

    def _failed(self, follow: _Follow, problem: HaSourceError, *, retry: bool = True) -> None:
        state = "unreachable" if retry else "rejected"
        self.connections.labels(problem.reason).inc()
        if follow.state != state or follow.problem is None or follow.problem.reason != problem.reason:
            log.warning(
                "home assistant %s resident=%s host=%s reason=%s detail=%s",
                state,
                follow.resident,
                _host(follow.url),
                problem.reason,
                problem.message,
            )
            follow.since = time.time()
        follow.state, follow.problem = state, problem
        follow.failures += 1
        for share in follow.shares.values():
            self._availability(follow, share, online=False)

    def _backoff(self, follow: _Follow) -> float:
        """The wait before the next attempt: doubling from retry_initial_s up to retry_max_s, each drawn
        from its upper half so that many links do not retry in step."""
        s = self.settings
        ceiling = min(s.retry_max_s, s.retry_initial_s * math.pow(2, max(follow.failures - 1, 0)))
        delay = random.uniform(ceiling / 2, ceiling)
        follow.next_try = time.time() + delay
        return delay

    def _count_links(self) -> float:
        return float(len(self._follows))

    def _count_connected(self) -> float:
        return float(sum(1 for f in list(self._follows.values()) if f.state == "connected"))
