"""The real device payloads in ``../shared/fixtures/payloads`` as test cases, and routing helpers.

Every case of a fixture file must be claimed by a test (``claimed`` checks that nothing is left out),
so a payload added to the fixtures without a test fails the suite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.config import HubConfig
from hub.domain.events import Event
from hub.ingest.router import Router

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "payloads"
NOW = 1_790_000_000.0  # 2026-09-21, a sane "now" for device timestamps


@dataclass(frozen=True)
class Case:
    file: str
    index: int
    topic: str | None
    payload: Any
    meaning: Any
    notes: str

    @property
    def id(self) -> str:
        return f"{self.file.removesuffix('.json')}[{self.index}]"

    def payload_bytes(self) -> bytes:
        """The bytes a device would publish (a pretty-printed docs example stays as printed)."""
        if self.payload is None:
            return b""
        if isinstance(self.payload, str):
            return self.payload.encode("utf-8", "surrogateescape")
        return json.dumps(self.payload).encode()


def cases(file: str) -> list[Case]:
    path = FIXTURES / file
    if not path.is_file():
        pytest.fail(f"device payload fixture {path} not found (the shared fixtures must sit beside the repo)")
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [
        Case(file, i, c.get("topic"), c.get("payload"), c.get("meaning"), c.get("notes", ""))
        for i, c in enumerate(raw)
    ]


def case(file: str, index: int) -> Case:
    return cases(file)[index]


def hub_router(**ingest: Any) -> Router:
    """The router exactly as ``hub run`` builds it, with optional ``ingest`` config overrides."""
    from hub.app import build_router

    config = HubConfig.model_validate({"ingest": ingest}) if ingest else HubConfig()
    return build_router(config)


def route(router: Router, topic: str, payload: str | bytes, received: float = NOW) -> list[Event]:
    data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else payload
    return router.route(topic, data, received)
