"""Devices that push over HTTP instead of MQTT: the Sensor.Community airrohr firmware's custom API.

In the sensor's configuration page, under "Send data to custom API": server = the hub's address,
path ``/api/v1/push/airrohr``, port = the hub's web port, and (when ``ingest.ecosystems.airrohr.password``
is set) any user name with that password. The body goes to the hub's ingest queue as topic
``http/airrohr/<sensor>``, where the airrohr decoder reads it like any MQTT message; ``hub decode``
replays the same pair.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel

from hub.web.context import WebContext, get_context

log = logging.getLogger(__name__)

router = APIRouter(tags=["push"])

Context = Annotated[WebContext, Depends(get_context)]

#: The ingest's default ``max_payload_bytes``, when the context names none.
DEFAULT_MAX_BYTES = 65536
#: Seconds a sensor is asked to wait when the ingest queue is full.
RETRY_AFTER_S = 30
#: What a sensor id may be: it becomes one topic level and part of a thing id.
_SENSOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")

_basic = HTTPBasic(auto_error=False, realm="airrohr", description="any user, the configured password")

_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sensordatavalues"],
    "properties": {
        "esp8266id": {"type": "string", "description": "chip id; names the sensor without X-Sensor"},
        "software_version": {"type": "string", "example": "NRZ-2020-129"},
        "sensordatavalues": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["value_type", "value"],
                "properties": {
                    "value_type": {"type": "string", "example": "SDS_P1"},
                    "value": {"type": "string", "example": "12.30"},
                },
            },
        },
    },
}


class PushAccepted(BaseModel):
    """The push is queued for ingest; the values are decoded (or rejected and counted) there."""

    accepted: bool = True


def _settings(ctx: WebContext) -> tuple[int, str | None]:
    """(body size limit, airrohr password) the hub was configured with; 404 when airrohr is turned off
    (``ingest.ecosystems.airrohr.enabled: false``): the endpoint does not exist on such a hub."""
    if not ctx.airrohr_enabled:
        raise HTTPException(
            status_code=404, detail="airrohr pushes are turned off (ingest.ecosystems.airrohr.enabled)"
        )
    return ctx.push_max_bytes or DEFAULT_MAX_BYTES, ctx.airrohr_password or None


def _check_password(password: str | None, credentials: HTTPBasicCredentials | None) -> None:
    if password is None:
        return
    given = credentials.password.encode() if credentials is not None else b""
    if credentials is None or not secrets.compare_digest(given, password.encode()):
        raise HTTPException(
            status_code=401,
            detail="this hub wants the password of ingest.ecosystems.airrohr.password (HTTP basic auth)",
            headers={"WWW-Authenticate": 'Basic realm="airrohr"'},
        )


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = HTTPException(status_code=413, detail=f"the body exceeds {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _parse(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HTTPException(status_code=400, detail=f"the body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise HTTPException(
            status_code=400, detail=f"the body is not JSON: {exc.msg} at char {exc.pos}"
        ) from None
    if not isinstance(doc, dict):
        raise HTTPException(status_code=400, detail=f"the body is JSON {type(doc).__name__}, not an object")
    if not isinstance(doc.get("sensordatavalues"), list):
        raise HTTPException(status_code=400, detail="the body has no sensordatavalues list")
    return doc


def _sensor(x_sensor: str | None, doc: dict[str, Any]) -> str:
    """The X-Sensor header, else the body's esp8266id; 400 when neither names the sensor."""
    raw = x_sensor.strip() if x_sensor else None
    if not raw:
        chip = doc.get("esp8266id")
        raw = str(chip).strip() if isinstance(chip, str | int) and not isinstance(chip, bool) else None
    if not raw:
        raise HTTPException(
            status_code=400,
            detail="the X-Sensor header (esp8266-<chip id>) is missing and the body has no esp8266id",
        )
    if not _SENSOR_ID.fullmatch(raw):
        raise HTTPException(
            status_code=400, detail=f"X-Sensor {raw!r:.80} is not a sensor id (letters, digits, _ . : -)"
        )
    return raw


@router.post(
    "/api/v1/push/airrohr",
    response_model=PushAccepted,
    summary="Sensor.Community airrohr push (the firmware's custom API)",
    responses={
        400: {"description": "not JSON, no sensordatavalues, or no sensor id"},
        401: {"description": "a password is configured and was not given"},
        413: {"description": "the body exceeds the ingest's max_payload_bytes"},
        503: {"description": "ingest not running, or its queue is full (see Retry-After)"},
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}}
    },
)
async def push_airrohr(
    request: Request,
    ctx: Context,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    x_sensor: Annotated[str | None, Header(description="esp8266-<chip id>")] = None,
    x_pin: Annotated[str | None, Header(description="sensor slot; the value types say the same")] = None,
) -> PushAccepted:
    """Queue one push from an airrohr sensor for ingest, as topic ``http/airrohr/<sensor>``."""
    max_bytes, password = _settings(ctx)
    _check_password(password, credentials)
    body = await _read_body(request, max_bytes)
    sensor = _sensor(x_sensor, _parse(body))
    if ctx.push is None:
        raise HTTPException(status_code=503, detail="ingest not running")
    if not ctx.push(f"http/airrohr/{sensor}", body):
        log.warning("airrohr push refused: ingest queue full sensor=%s", sensor)
        raise HTTPException(
            status_code=503,
            detail="the ingest queue is full; try again later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return PushAccepted()
