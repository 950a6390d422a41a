"""The shared captures of real serial reader output (rfid_serial.json, beside the repository)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RFID_FIXTURES = REPO.parent / "shared" / "fixtures" / "payloads" / "rfid_serial.json"


def load_rfid_fixtures() -> list[dict]:
    """The captured serial frames; a missing file fails with where it was expected."""
    if not RFID_FIXTURES.is_file():
        pytest.fail(
            f"serial frame fixtures not found at {RFID_FIXTURES}: the shared folder must sit at "
            f"../shared next to the repository root",
            pytrace=False,
        )
    return json.loads(RFID_FIXTURES.read_text())
