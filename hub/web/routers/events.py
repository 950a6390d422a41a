"""/events: Server-Sent Events that keep the dashboard live without reloads.

The stream polls ``LiveState.snapshot(since)`` and sends only what changed:
``event: things`` (changed things, ``id:`` is the state version so a reconnecting
browser resumes via Last-Event-ID), ``event: scans``, ``event: status`` and ``event: alerts`` (the
open alerts the viewer may see, graded, whenever that list changes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from hub.web import display
from hub.web.alert_grading import visible_alerts
from hub.web.auth import Viewer, optional_viewer
from hub.web.context import WebContext, get_context, view_for
from hub.web.routers.dashboard import SCANS_SHOWN

log = logging.getLogger(__name__)

router = APIRouter(tags=["dashboard"])


SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}
}
#: a stream re-checks its viewer's session or token this often; a sign-out or erasure ends the stream
RECHECK_VIEWER_S = 15.0


@router.get("/events", response_class=StreamingResponse, responses=SSE_RESPONSE)
async def events(
    request: Request,
    ctx: Annotated[WebContext, Depends(get_context)],
    viewer: Annotated[Viewer | None, Depends(optional_viewer)],
    since: Annotated[int, Query(ge=0, description="State version the client already shows")] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Live changes as Server-Sent Events; the first event carries everything newer than ``since``.

    Graded for the signed-in resident (session cookie or access token), else the kiosk view."""
    if last_event_id is not None and last_event_id.isdigit():
        since = int(last_event_id)
    settings = request.app.state
    return StreamingResponse(
        _stream(
            request,
            ctx,
            viewer,
            since,
            settings.closing,
            settings.poll_interval,
            settings.keepalive_interval,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    request: Request,
    ctx: WebContext,
    viewer: Viewer | None,
    since: int,
    closing: threading.Event,
    poll_interval: float,
    keepalive_interval: float,
) -> AsyncIterator[str]:
    version = since
    scans: list[dict[str, Any]] | None = None
    status: dict[str, int] | None = None
    alerts: list[dict[str, Any]] | None = None
    last_sent = checked = time.monotonic()
    view = view_for(ctx, viewer.resident if viewer else None)
    yield "retry: 3000\n\n"
    try:
        # Bounded by the client (disconnect) and by the server (closing is set when it stops).
        while not closing.is_set() and not await request.is_disconnected():
            if viewer is not None and time.monotonic() - checked >= RECHECK_VIEWER_S:
                checked = time.monotonic()
                if not _still_valid(ctx, viewer):
                    log.info("event stream ended: its session or token ended")
                    return
            now = ctx.clock()
            chunk = ""
            version_now, changed = view.things(version)
            if changed:
                payload = {
                    "version": version_now,
                    "now": now,
                    "things": [display.thing_view(s, now) for s in changed],
                }
                chunk += _event("things", payload, event_id=version_now)
            if version_now != version or scans is None:
                fresh = [display.scan_view(s, now) for s in view.scans(SCANS_SHOWN)]
                if fresh != scans:
                    chunk += _event("scans", {"scans": fresh})
                    scans = fresh
            version = version_now
            fresh_status = display.status_view(ctx.telemetry)
            if fresh_status != status:
                chunk += _event("status", fresh_status)
                status = fresh_status
            if ctx.alerts is not None:
                fresh_alerts = visible_alerts(ctx, view.viewer)
                if fresh_alerts != alerts:
                    chunk += _event("alerts", {"alerts": fresh_alerts})
                    alerts = fresh_alerts
            if not chunk and time.monotonic() - last_sent >= keepalive_interval:
                chunk = ": keep-alive\n\n"
            if chunk:
                yield chunk
                last_sent = time.monotonic()
            await asyncio.sleep(poll_interval)
    finally:  # also reached when a write to a gone client ends the generator
        log.debug("event stream ended closing=%s", closing.is_set())


def _still_valid(ctx: WebContext, viewer: Viewer) -> bool:
    """Whether the session or token the stream was opened with still stands (and its resident)."""
    accounts, directory, now = ctx.accounts, ctx.directory, ctx.clock()
    if accounts is None or directory is None:
        return False
    if viewer.session_token is not None:
        valid = accounts.session(viewer.session_token, now=now) is not None
    else:
        tokens = accounts.tokens(viewer.resident.id)
        valid = any(t.id == viewer.token_id and t.revoked_at is None for t in tokens)
    if not valid:
        return False
    resident = directory.resident(viewer.resident.id)
    return resident is not None and not resident.erased


def _event(name: str, data: Any, event_id: int | None = None) -> str:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head + f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"
