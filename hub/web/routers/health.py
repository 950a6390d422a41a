"""/healthz: liveness plus each component's status, for probes and people."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from hub.web.context import WebContext, get_context
from hub.web.models import ComponentHealth, HealthOut, Status

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
def healthz(ctx: Annotated[WebContext, Depends(get_context)]) -> JSONResponse:
    """200 when every component is ok or degraded, 503 when any is down."""
    components = _components(ctx)
    statuses = {c.status for c in components.values()}
    overall: Status = "down" if "down" in statuses else "degraded" if "degraded" in statuses else "ok"
    body = HealthOut(status=overall, version=ctx.version, components=components)
    return JSONResponse(body.model_dump(), status_code=503 if overall == "down" else 200)


def _components(ctx: WebContext) -> dict[str, ComponentHealth]:
    try:
        report = ctx.health()
    except Exception as exc:  # a failing probe is itself a finding, never a 500
        log.exception("health probe failed")
        return {"health": ComponentHealth(status="down", detail=f"health probe failed: {exc}")}
    components: dict[str, ComponentHealth] = {}
    for name, raw in report.items():
        try:
            components[name] = ComponentHealth.model_validate(raw)
        except ValidationError:
            components[name] = ComponentHealth(status="down", detail=f"unreadable status report: {raw!r}")
    return components
