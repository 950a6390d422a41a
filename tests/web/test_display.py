"""How values and ages read on the dashboard (shared by the page and the live stream)."""

from __future__ import annotations

import pytest

from hub.web.display import age_text, label, value_text


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("temperature", 21.5, "21.5 °C"),
        ("temperature", -3.0, "-3 °C"),
        ("temperature", 21.004, "21 °C"),
        ("pressure", 1013.256, "1013.26 hPa"),
        ("pm25", 8.4, "8.4 µg/m³"),
        ("linkquality", 120.0, "120"),
        ("water_leak", True, "leak"),
        ("water_leak", False, "dry"),
        ("state", True, "on"),
        ("state", False, "off"),
        ("contact", False, "open"),
        ("some_new_flag", True, "yes"),
    ],
)
def test_value_text(name: str, value: float | bool, text: str) -> None:
    assert value_text(name, value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-2, "0 s ago"),
        (0, "0 s ago"),
        (119.9, "119 s ago"),
        (120, "2 min ago"),
        (7199, "119 min ago"),
        (7200, "2 h ago"),
        (172800, "2 d ago"),
    ],
)
def test_age_text(seconds: float, text: str) -> None:
    assert age_text(seconds) == text


def test_labels_for_abbreviations_and_snake_case() -> None:
    assert [label(n) for n in ("pm25", "co2", "water_leak", "temperature")] == [
        "PM2.5",
        "CO₂",
        "Water leak",
        "Temperature",
    ]
