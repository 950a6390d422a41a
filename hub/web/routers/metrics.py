"""/metrics: the hub's counters and gauges in Prometheus text format."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from hub.web.context import WebContext, get_context

router = APIRouter(tags=["operations"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(ctx: Annotated[WebContext, Depends(get_context)]) -> Response:
    return Response(ctx.telemetry.render(), media_type=CONTENT_TYPE)
