"""/events: Server-Sent Events that keep the dashboard live without reloads.

The stream polls ``LiveState.snapshot(since)`` and sends only what changed:
``event: things`` (changed things, ``id:`` is the state version so a reconnecting
browser resumes via Last-Event-ID), ``event: scans`` and ``event: status``.
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
from hub.web.context import WebContext, get_context, kiosk_view
from hub.web.routers.dashboard import SCANS_SHOWN

log = logging.getLogger(__name__)

router = APIRouter(tags=["dashboard"])


SSE_RESPONSE = {200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}}


@router.get("/events", response_class=StreamingResponse, responses=SSE_RESPONSE)
async def events(
    request: Request,
    ctx: Annotated[WebContext, Depends(get_context)],
    since: Annotated[int, Query(ge=0, description="State version the client already shows")] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Live changes as Server-Sent Events; the first event carries everything newer than ``since``."""
    if last_event_id is not None and last_event_id.isdigit():
        since = int(last_event_id)
    settings = request.app.state
    return StreamingResponse(
        _stream(request, ctx, since, settings.closing, settings.poll_interval, settings.keepalive_interval),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    request: Request,
    ctx: WebContext,
    since: int,
    closing: threading.Event,
    poll_interval: float,
    keepalive_interval: float,
) -> AsyncIterator[str]:
    version = since
    scans: list[dict[str, Any]] | None = None
    status: dict[str, int] | None = None
    last_sent = time.monotonic()
    view = kiosk_view(ctx)
    yield "retry: 3000\n\n"
    try:
        # Bounded by the client (disconnect) and by the server (closing is set when it stops).
        while not closing.is_set() and not await request.is_disconnected():
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
            if not chunk and time.monotonic() - last_sent >= keepalive_interval:
                chunk = ": keep-alive\n\n"
            if chunk:
                yield chunk
                last_sent = time.monotonic()
            await asyncio.sleep(poll_interval)
    finally:  # also reached when a write to a gone client ends the generator
        log.debug("event stream ended closing=%s", closing.is_set())


def _event(name: str, data: Any, event_id: int | None = None) -> str:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head + f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"
