"""/: the shared dashboard, rendered on the server so it works without JavaScript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from hub.web import display
from hub.web.context import WebContext, get_context, kiosk_view

router = APIRouter(tags=["dashboard"])

# Every asset is served by the hub itself; nothing may load from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

SCANS_SHOWN = 20


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard(request: Request, ctx: Annotated[WebContext, Depends(get_context)]) -> HTMLResponse:
    now = ctx.clock()
    view = kiosk_view(ctx)
    version, states = view.things(0)
    return request.app.state.templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "ctx": ctx,
            "version": version,
            "now": now,
            "things": [display.thing_view(s, now) for s in states],
            "scans": [display.scan_view(s, now) for s in view.scans(SCANS_SHOWN)],
            "status": display.status_view(ctx.telemetry),
        },
        headers=SECURITY_HEADERS,
    )
