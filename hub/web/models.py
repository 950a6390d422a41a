"""Response models: the REST API's contract, and what /openapi.json is generated from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from hub.domain.livestate import ThingState
from hub.domain.vocabulary import unit_of

Status = Literal["ok", "degraded", "down"]


class ValueOut(BaseModel):
    value: bool | float
    unit: str = Field(description='Unit of the canonical measurement; "" for booleans and unitless ones')
    time: datetime = Field(description="Device time of the value when it sent a sane one, else arrival")


class ThingOut(BaseModel):
    id: str
    source: str = Field(description="Ecosystem the thing speaks: native, tasmota, zigbee2mqtt, …")
    online: bool | None = Field(description="null until the thing has reported availability or a reading")
    first_seen: datetime
    last_seen: datetime
    values: dict[str, ValueOut] = Field(description="Latest value per canonical measurement")

    @classmethod
    def of(cls, state: ThingState) -> ThingOut:
        return cls(
            id=state.id,
            source=state.source,
            online=state.online,
            first_seen=_utc(state.first_seen),
            last_seen=_utc(state.last_seen),
            values={
                name: ValueOut(
                    value=value, unit=unit_of(name), time=_utc(state.times.get(name, state.last_seen))
                )
                for name, value in state.values.items()
            },
        )


class ThingList(BaseModel):
    things: list[ThingOut]


class ComponentHealth(BaseModel):
    status: Status
    detail: str = ""


class HealthOut(BaseModel):
    status: Status
    version: str
    components: dict[str, ComponentHealth]


class ErrorOut(BaseModel):
    detail: str


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
