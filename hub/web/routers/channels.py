"""/me/channels: where the hub sends a resident's alerts. An apprise URL (ntfy://, mailto://, matrix://,
tgram://, ...) is checked with apprise when added and only ever shown masked afterwards; the form
never echoes what was typed, since the URL may carry a password or token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.web.alert_grading import when
from hub.web.auth import Viewer, page_viewer
from hub.web.context import WebContext, get_context, refusal
from hub.web.routers.account import render
from hub.web.routers.alerts import board

router = APIRouter(tags=["channels"], include_in_schema=False)

Context = Annotated[WebContext, Depends(get_context)]
PageViewer = Annotated[Viewer, Depends(page_viewer)]

DONE = {"added": "Channel added.", "removed": "Channel removed."}


@router.get("/me/channels", response_class=HTMLResponse)
def channels_page(request: Request, ctx: Context, viewer: PageViewer, done: str | None = None) -> Response:
    return _page(request, ctx, viewer, message=DONE.get(done or ""))


def _page(
    request: Request,
    ctx: WebContext,
    viewer: Viewer,
    *,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    channels = [
        {"id": c.id, "kind": c.kind, "target": c.target, "enabled": c.enabled, "added": when(c.created_at)}
        for c in board(ctx).store.list_channels(viewer.resident.id)
    ]
    return render(
        request,
        "channels.html",
        {"channels": channels, "message": message, "error": error},
        status_code=status_code,
    )


@router.post("/me/channels", response_class=HTMLResponse)
def add_channel(
    request: Request,
    ctx: Context,
    viewer: PageViewer,
    url: Annotated[str, Form(max_length=2048)],
) -> Response:
    store = board(ctx).store
    try:
        store.add_channel(viewer.resident.id, "apprise", url, now=ctx.clock())
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        message = refused[1]
        return _page(request, ctx, viewer, error=message[:1].upper() + message[1:], status_code=422)
    return RedirectResponse("/me/channels?done=added", status_code=303)


@router.post("/me/channels/{channel_id}/remove")
def remove_channel(channel_id: str, request: Request, ctx: Context, viewer: PageViewer) -> Response:
    if not board(ctx).store.remove_channel(channel_id, viewer.resident.id):
        return render(
            request, "not_found.html", {"what": f"no channel with id {channel_id!r}"}, status_code=404
        )
    return RedirectResponse("/me/channels?done=removed", status_code=303)
