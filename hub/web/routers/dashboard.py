"""/: the shared dashboard, rendered on the server so it works without JavaScript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from hub.web import display
from hub.web.alert_grading import visible_alerts
from hub.web.auth import Viewer, optional_viewer
from hub.web.context import WebContext, get_context, view_for

router = APIRouter(tags=["dashboard"])

# Every asset is served by the hub itself; nothing may load from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

SCANS_SHOWN = 20


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard(
    request: Request,
    ctx: Annotated[WebContext, Depends(get_context)],
    viewer: Annotated[Viewer | None, Depends(optional_viewer)],
) -> HTMLResponse:
    """The kiosk view, or with a signed-in resident what they may see."""
    now = ctx.clock()
    view = view_for(ctx, viewer.resident if viewer else None)
    version, states = view.things(0)
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "ctx": ctx,
            "viewer": viewer,
            "version": version,
            "now": now,
            "things": [display.thing_view(s, now) for s in states],
            "scans": [display.scan_view(s, now) for s in view.scans(SCANS_SHOWN)],
            "status": display.status_view(ctx.telemetry),
            "alerting": ctx.alerts is not None,
            "alerts": visible_alerts(ctx, viewer.resident if viewer else None),
        },
        # a resident's view is theirs alone: no shared cache may keep it
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"} if viewer else SECURITY_HEADERS,
    )
    return response
