"""The canonical vocabulary (hub/domain/vocabulary.py) and the unit conversions into it
(hub/domain/units.py): every numeric measurement has a plausible range, and rain arrives in millimetres
whatever unit a gauge speaks."""

from __future__ import annotations

import pytest

from hub.domain.units import UnitError, convert, normalize_unit, to_canonical
from hub.domain.vocabulary import NUMERIC, RANGES, unit_of


def test_every_numeric_measurement_has_a_range_in_its_unit() -> None:
    assert set(RANGES) == set(NUMERIC)
    for name, (low, high) in RANGES.items():
        assert low < high, name


@pytest.mark.parametrize(
    ("raw", "unit", "mm"),
    [
        (4.2, "mm", 4.2),
        (4.2, None, 4.2),  # no unit: already canonical
        (0.5, "in", 12.7),
        (0.5, "inch", 12.7),
        (2, "Inches", 50.8),
        (1.25, "cm", 12.5),
        ("0.3 in", None, 7.62),  # a unit inside the text wins
        ("12,5 mm", "in", 12.5),
    ],
)
def test_precipitation_is_converted_to_millimetres(raw: object, unit: str | None, mm: float) -> None:
    assert unit_of("precipitation") == "mm"
    assert to_canonical("precipitation", raw, unit) == pytest.approx(mm)


def test_precipitation_refuses_what_is_no_amount_of_rain() -> None:
    assert normalize_unit(" IN ") == "in" and normalize_unit("mm") == "mm"
    for unit in ("mm/h", "°C", "%", "hPa"):
        with pytest.raises(UnitError) as refused:
            convert("precipitation", 1.0, unit)
        assert refused.value.reason == "bad_unit"
    for value in (-0.1, 65535.0):  # a negative amount, a 16-bit sentinel
        with pytest.raises(UnitError) as refused:
            to_canonical("precipitation", value, "mm")
        assert refused.value.reason == "out_of_range"
    assert to_canonical("precipitation", 26_500, "mm") == 26_500  # the wettest year on record
    with pytest.raises(UnitError):  # inches are not a pressure or a temperature
        convert("pressure", 1.0, "in")
