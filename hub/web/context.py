"""What the web layer is given by the composition root: live state, telemetry, health, identity,
the people side (directory, lending desk, accounts) and the alert board.

The web layer may not import the storage or lending packages (the layers contract in pyproject.toml),
so it names what it needs of them here as protocols; the hub passes the real objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import HTTPException, Request

from hub.domain.alert_rules import Rule
from hub.domain.alerts import Alert
from hub.domain.availability import SilenceTimeouts
from hub.domain.livestate import LiveState
from hub.domain.model import (
    AuditEntry,
    Contact,
    Loan,
    LoanState,
    Relation,
    RelationKind,
    Resident,
    Role,
    Thing,
)
from hub.domain.trust import TrustRecord
from hub.telemetry import Telemetry
from hub.web.grading import Catalog, GradedView

#: component name → {"status": "ok" | "degraded" | "down", "detail": "..."}
HealthReport = dict[str, dict[str, str]]


class People(Protocol):
    """Residents, things, relations, loans and waitlists (hub.storage.directory.Directory)."""

    def resident(self, resident_id: str) -> Resident | None: ...

    def resident_by_pseudonym(self, pseudonym: str) -> Resident | None: ...

    def redeem_invite(
        self,
        code: str,
        pseudonym: str,
        *,
        now: float,
        real_name: str | None = None,
        contacts: Sequence[Contact] = (),
    ) -> Resident: ...

    def thing(self, thing_id: str) -> Thing | None: ...

    def things(self) -> list[Thing]: ...

    def relations_of_thing(
        self,
        thing_id: str,
        *,
        include_inactive: bool = False,
        now: float,
        kinds: Collection[RelationKind] | None = None,
    ) -> list[Relation]: ...

    def relations_of_resident(
        self,
        resident_id: str,
        *,
        include_inactive: bool = False,
        now: float,
        kinds: Collection[RelationKind] | None = None,
    ) -> list[Relation]: ...

    def loan(self, loan_id: str) -> Loan | None: ...

    def loans(
        self,
        *,
        thing: str | None = None,
        borrower: str | None = None,
        states: Collection[LoanState] | None = None,
    ) -> list[Loan]: ...

    def join_waitlist(self, thing: str, resident: str, *, actor: str | None, now: float) -> None: ...

    def leave_waitlist(self, thing: str, resident: str, *, actor: str | None, now: float) -> None: ...

    def waitlist(self, thing: str) -> list[tuple[str, float]]: ...

    def append_audit(self, entry: AuditEntry) -> None: ...

    def audit_for_resident(
        self, resident_id: str, *, since: float | None = None, limit: int = 500
    ) -> list[AuditEntry]: ...

    # -- what stewards and admins manage (the admin pages and the relations API) --

    def residents(self) -> list[Resident]: ...

    def set_role(self, resident_id: str, role: Role, *, actor: str | None, now: float) -> Resident: ...

    def create_invite(self, *, created_by: str, role: Role = Role.RESIDENT, now: float) -> str: ...

    def update_thing(self, thing: Thing, *, actor: str | None, now: float) -> Thing: ...

    def attach_tag(self, thing_id: str, tag: str, *, actor: str | None, now: float) -> str: ...

    def retire_thing(self, thing_id: str, *, actor: str | None, now: float) -> None: ...

    def thing_by_tag(self, tag: str) -> str | None: ...

    def resident_by_card(self, tag: str) -> str | None: ...

    def relation(self, relation_id: str) -> Relation | None: ...

    def grant(self, relation: Relation, *, actor: str | None, now: float) -> Relation: ...

    def revoke(self, relation_id: str, *, actor: str | None, now: float) -> Relation: ...

    def audit(
        self,
        *,
        thing: str | None = None,
        subject: str | None = None,
        actor: str | None = None,
        since: float | None = None,
        limit: int = 500,
    ) -> list[AuditEntry]: ...


class Desk(Protocol):
    """The lending desk (hub.loans.LendingDesk). Its operations ask the permission function themselves and
    raise ``hub.domain.lending.LendingError``, or an exception whose ``reason`` is ``"forbidden"`` when
    the permission function says no (see ``refusal``)."""

    def reserve(
        self, borrower: str, thing_id: str, start: float | None = None, days: float | None = None
    ) -> Loan: ...

    def decide(self, loan_id: str, approve: bool, actor: str) -> Loan: ...

    def cancel(self, loan_id: str, actor: str) -> Loan: ...

    def check_out(
        self, thing_id: str, borrower: str, *, reader: str | None = None, actor: str | None
    ) -> Loan: ...

    def check_in(self, thing_id: str, *, reader: str | None = None, actor: str | None) -> Loan: ...

    def trust(self, resident: str) -> TrustRecord: ...


class SessionRecord(Protocol):
    @property
    def resident_id(self) -> str: ...
    @property
    def csrf_token(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    @property
    def last_seen(self) -> float: ...
    @property
    def expires_at(self) -> float: ...


class NewSessionRecord(Protocol):
    @property
    def token(self) -> str: ...
    @property
    def session(self) -> SessionRecord: ...


class TokenRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def resident_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    @property
    def last_used(self) -> float | None: ...
    @property
    def revoked_at(self) -> float | None: ...


class AccountBook(Protocol):
    """Passwords, sessions and access tokens (hub.storage.accounts.Accounts)."""

    def check_password(self, password: str) -> None: ...

    def set_password(self, resident_id: str, password: str, *, now: float) -> None: ...

    def verify(self, resident_id: str | None, password: str, *, now: float) -> bool: ...

    def create_session(self, resident_id: str, *, now: float) -> NewSessionRecord: ...

    def session(self, token: str, *, now: float) -> SessionRecord | None: ...

    def touch_session(self, token: str, *, now: float) -> SessionRecord | None: ...

    def revoke_session(self, token: str) -> None: ...

    def create_token(self, resident_id: str, name: str, *, now: float) -> tuple[TokenRecord, str]: ...

    def token(self, plain: str, *, now: float) -> TokenRecord | None: ...

    def tokens(self, resident_id: str) -> Sequence[TokenRecord]: ...

    def revoke_token(self, resident_id: str, token_id: str, *, now: float) -> bool: ...


class AlertRecordView(Protocol):
    """A stored alert, open or cleared (hub.storage.alertstore.AlertRecord); ``message`` is the full body."""

    @property
    def id(self) -> str: ...
    @property
    def thing(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def opened_at(self) -> float: ...
    @property
    def updated_at(self) -> float: ...
    @property
    def cleared_at(self) -> float | None: ...


class AlertHistoryLine(Protocol):
    """One line of an alert's history (hub.storage.alertstore.AlertEvent); ``actor`` is a resident id."""

    @property
    def time(self) -> float: ...
    @property
    def action(self) -> str: ...
    @property
    def actor(self) -> str | None: ...


class ChannelView(Protocol):
    """A resident's notification channel as it may be shown: credentials masked."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def created_at(self) -> float: ...


class StoredRuleView(Protocol):
    """A rule added on the web (hub.storage.alertstore.RuleRecord); ``data`` reads with rule_from_dict."""

    @property
    def id(self) -> str: ...
    @property
    def thing(self) -> str | None: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def created_by(self) -> str | None: ...
    @property
    def created_at(self) -> float: ...


class AlertLog(Protocol):
    """Alert records, their history and residents' channels (hub.storage.alertstore.AlertStore).
    ``add_channel`` raises an exception with ``reason`` and ``message`` for a target it refuses."""

    def alert(self, alert_id: str) -> AlertRecordView | None: ...

    def history(self, alert_id: str) -> Sequence[AlertHistoryLine]: ...

    def list_channels(self, resident: str) -> Sequence[ChannelView]: ...

    def add_channel(
        self, resident: str, kind: str, target: str, secret: str | None = None, *, now: float
    ) -> ChannelView: ...

    def remove_channel(self, channel_id: str, resident: str) -> bool: ...


class AlertBoard(Protocol):
    """The hub's alerting (hub.alerting.AlertService): open alerts, acting on them, rules, channels.

    ``act`` asks the permission function itself; it raises an exception with reason ``"forbidden"``
    for a missing alert or one the resident may not act on, or ``hub.domain.alerts.AlertError`` for a
    step the lifecycle does not allow. ``add_rule`` raises ``hub.domain.alert_rules.RuleError``.
    """

    @property
    def store(self) -> AlertLog: ...

    def open_alerts(self) -> list[Alert]: ...

    def act(self, alert_id: str, resident_id: str, action: str, note: str = "") -> Alert: ...

    def configured_rules(self) -> tuple[Rule, ...]: ...

    def stored_rules(self, thing: str | None = None) -> Sequence[StoredRuleView]: ...

    def add_rule(self, thing: str, data: Mapping[str, Any], *, created_by: str | None) -> StoredRuleView: ...

    def delete_rule(self, rule_id: str) -> bool: ...


class HistoryReader(Protocol):
    """Past readings of one measurement (the embedded sink, hub.storage.history.InfluxV1History).

    Raises an exception whose ``reason`` is ``"unavailable"`` (with a ``message``) when the store cannot
    answer."""

    def history(
        self,
        thing: str,
        measurement: str,
        since_ns: int,
        until_ns: int | None = None,
        max_points: int = 1000,
    ) -> list[tuple[int, float | bool]]: ...


class HomeAssistantSource(Protocol):
    """Residents' own Home Assistant as a source (hub.integrations.ha_source.HaSource): the link's status
    (never the token), the entities to choose from, sharing and unsharing. Operations raise an exception
    with ``reason`` and ``message`` for what they refuse (see ``refusal``)."""

    def status(self, resident: str) -> Any: ...

    def link(self, resident: str, url: str, token: str) -> Any: ...

    def unlink(self, resident: str) -> bool: ...

    def entities(self, resident: str) -> Sequence[Any]: ...

    def share(self, resident: str, entity_id: str, **choice: Any) -> Any: ...

    def unshare(self, resident: str, entity_id: str) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class WebContext:
    """Everything the dashboard and API read; built by the app, never by the web layer itself."""

    live: LiveState
    #: registered things and relations: every page grades what it shows through them
    catalog: Catalog
    telemetry: Telemetry
    health: Callable[[], HealthReport]
    version: str
    site_name: str = "Neighborhood Hub"
    #: epoch seconds; replaced in tests to pin "last seen N s ago"
    clock: Callable[[], float] = time.time
    #: the people side. Without them the hub serves the kiosk view only: sign-in, resident pages and
    #: the loans API answer 503 (fail closed), they never fall back to a weaker check.
    directory: People | None = None
    desk: Desk | None = None
    accounts: AccountBook | None = None
    #: alerting. Without it the dashboard shows no alerts and the alert pages and API answer 503.
    alerts: AlertBoard | None = None
    #: past readings for charts. Without it (InfluxDB 2.x) the readings API answers 503 and pages say so.
    history: HistoryReader | None = None
    #: hands a message that came over HTTP (topic, payload) to ingest as if from the broker; False when
    #: the ingest queue is full. Without it HTTP push endpoints answer 503.
    push: Callable[[str, bytes], bool] | None = None
    #: how long a thing that never reports its availability may stay silent before it counts as offline
    silence_timeouts: SilenceTimeouts | None = None
    #: the largest body an HTTP push may carry (config ``ingest.max_payload_bytes``)
    push_max_bytes: int = 65536
    #: Sensor.Community airrohr pushes: accepted at all (``ingest.ecosystems.airrohr.enabled``), and the
    #: password the firmware must send (``ingest.ecosystems.airrohr.password``; None: none asked)
    airrohr_enabled: bool = True
    airrohr_password: str | None = None
    #: residents' own Home Assistant as a source of readings; None: off, and its pages are not served
    homeassistant_source: HomeAssistantSource | None = None


def kiosk_view(ctx: WebContext) -> GradedView:
    """What an anonymous visitor (the kiosk screen) may see."""
    return GradedView(ctx.live, ctx.catalog, ctx.clock, viewer=None)


def view_for(ctx: WebContext, viewer: Resident | None) -> GradedView:
    """What ``viewer`` may see (None: the kiosk)."""
    return GradedView(ctx.live, ctx.catalog, ctx.clock, viewer=viewer)


@dataclass(frozen=True)
class PeopleSide:
    """The people side of a context, all present (``people_side`` checked)."""

    directory: People
    desk: Desk
    accounts: AccountBook


def people_side(ctx: WebContext) -> PeopleSide:
    """The directory, desk and accounts, or 503 when the hub runs without them (fail closed)."""
    if ctx.directory is None or ctx.desk is None or ctx.accounts is None:
        raise HTTPException(status_code=503, detail="sign-in and lending are not set up on this hub")
    return PeopleSide(ctx.directory, ctx.desk, ctx.accounts)


def refusal(exc: Exception) -> tuple[str, str] | None:
    """(reason, message) of a refusal raised by the directory, desk or accounts, else None.

    Their exception classes live below the web layer; each carries a stable ``reason`` code. The
    permission function's refusal has reason ``"forbidden"``.
    """
    reason = getattr(exc, "reason", None)
    if not isinstance(reason, str):
        return None
    message = getattr(exc, "detail", None) or getattr(exc, "message", None) or str(exc)
    return reason, str(message)


def get_context(request: Request) -> WebContext:
    """FastAPI dependency: the context the app was created with."""
    ctx: WebContext = request.app.state.ctx
    return ctx
