"""What the web layer is given by the composition root: live state, telemetry, health, identity."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from hub.domain.livestate import LiveState
from hub.telemetry import Telemetry
from hub.web.grading import Catalog, GradedView

#: component name → {"status": "ok" | "degraded" | "down", "detail": "..."}
HealthReport = dict[str, dict[str, str]]


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


def kiosk_view(ctx: WebContext) -> GradedView:
    """What an anonymous visitor (the kiosk screen) may see; logins come with residents' views."""
    return GradedView(ctx.live, ctx.catalog, ctx.clock, viewer=None)


def get_context(request: Request) -> WebContext:
    """FastAPI dependency: the context the app was created with."""
    ctx: WebContext = request.app.state.ctx
    return ctx
