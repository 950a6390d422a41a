"""The web app factory: one FastAPI app per hub, built from a WebContext."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from hub.web.context import WebContext
from hub.web.routers import dashboard, events, health, metrics, things

HERE = Path(__file__).parent


def create_app(ctx: WebContext, *, poll_interval: float = 0.5, keepalive_interval: float = 15.0) -> FastAPI:
    """The dashboard, REST API, /healthz and /metrics over ``ctx``.

    ``app.state.closing`` is a threading.Event; setting it ends open event streams (WebServer.stop does).
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

    templates = Jinja2Templates(directory=HERE / "templates")
    app.state.templates = templates

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (dashboard, events, things, health, metrics):
        app.include_router(module.router)
    return app
