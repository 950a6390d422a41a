"""The web app factory: one FastAPI app per hub, built from a WebContext."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from hub.web.access import Refused
from hub.web.auth import LoginThrottle, SignInRequired, login_path
from hub.web.context import WebContext
from hub.web.disclosure import ViewLog
from hub.web.routers import (
    account,
    admin,
    admin_api,
    alerts,
    audit,
    channels,
    dashboard,
    events,
    ha_link,
    health,
    history,
    loans,
    metrics,
    push,
    residents_view,
    rules,
    things,
)

HERE = Path(__file__).parent


def create_app(
    ctx: WebContext,
    *,
    poll_interval: float = 0.5,
    keepalive_interval: float = 15.0,
    trust_proxy: bool = False,
    login_throttle: LoginThrottle | None = None,
) -> FastAPI:
    """The dashboard, resident pages, alerts, REST API, /healthz and /metrics over ``ctx``.

    ``app.state.closing`` is a threading.Event; setting it ends open event streams (WebServer.stop does).
    ``trust_proxy``: believe X-Forwarded-Proto and X-Forwarded-For (only behind a reverse proxy that
    sets them), for Secure cookies and per-address login limits. ``login_throttle`` defaults to one on
    ``ctx.clock``.
    """
    app = FastAPI(
        title=ctx.site_name,
        version=ctx.version,
        description="Dashboard and REST API of a neighborhood hub.",
        docs_url=None,  # the Swagger UI would load from a CDN; /openapi.json is served
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.closing = threading.Event()
    app.state.poll_interval = poll_interval
    app.state.keepalive_interval = keepalive_interval
    app.state.trust_proxy = trust_proxy
    app.state.login_throttle = login_throttle or LoginThrottle(ctx.clock)
    app.state.view_log = ViewLog(ctx.clock)

    templates = Jinja2Templates(directory=HERE / "templates")
    app.state.templates = templates
    # the dashboard's and thing page's history sections, graded where they are rendered
    templates.env.globals["kiosk_sections"] = history.kiosk_sections
    templates.env.globals["thing_history"] = history.thing_history

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    routers = (
        dashboard,
        events,
        things,
        loans,
        alerts,
        rules,
        account,
        residents_view,
        channels,
        audit,
        admin,
        admin_api,
        history,
        push,
    )
    for module in (*routers, health, metrics):
        app.include_router(module.router)
    if ctx.homeassistant_source is not None:  # residents' own Home Assistant: only where the hub follows them
        app.include_router(ha_link.router)
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(Refused, _refused)
    return app


async def _sign_in(request: Request, exc: Exception) -> RedirectResponse:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(login_path(exc.next_path), status_code=303)


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    body: dict[str, object] = {"reason": exc.reason, "detail": exc.detail}
    if exc.window is not None:
        start, end = exc.window
        body["window"] = [start, end if end != float("inf") else None]
    return JSONResponse(body, status_code=exc.status)
