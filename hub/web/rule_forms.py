"""Alert rules on the web: the form of each kind an owner may add to a thing, reading a posted form into
``rule_to_dict`` data, naming the field a refusal is about, and a rule in plain words.

Validation is ``rule_from_dict``'s (through the alert board); this module only turns text into numbers
and points an error at the field it names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.domain.alert_rules import (
    BooleanRule,
    LowBattery,
    Offline,
    OverdueLoan,
    RateOfChange,
    Rule,
    Severity,
    Stale,
    Threshold,
)
from hub.domain.vocabulary import BOOLEAN, NUMERIC, unit_of
from hub.web.display import label


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    kind: str  # "number", "numeric-measurement", "boolean-measurement", "when"
    hint: str = ""


#: the kinds an owner or steward adds on the web, with their fields in form order
FORMS: dict[str, tuple[Field, ...]] = {
    Threshold.kind: (
        Field("measurement", "Measurement", "numeric-measurement"),
        Field("above", "Alert above", "number"),
        Field("clear_below", "Clear below", "number", "default: at or below the alert level"),
        Field("below", "Alert below", "number"),
        Field("clear_above", "Clear above", "number", "default: at or above the alert level"),
        Field("for_s", "Held for (seconds)", "number", "default 0"),
    ),
    BooleanRule.kind: (
        Field("measurement", "Measurement", "boolean-measurement"),
        Field("when", "Alert when it is", "when"),
    ),
    LowBattery.kind: (
        Field("below", "Alert below (%)", "number", "default 15"),
        Field("clear_above", "Clear above (%)", "number", "default 25"),
    ),
    Offline.kind: (Field("debounce_s", "Offline for (seconds)", "number", "default 300"),),
    Stale.kind: (Field("after_s", "No reading for (seconds)", "number", "default 1800"),),
}
TITLES = {
    Threshold.kind: "Threshold",
    BooleanRule.kind: "Yes/no measurement",
    LowBattery.kind: "Low battery",
    Offline.kind: "Offline",
    Stale.kind: "No readings",
}
#: kinds the REST API takes as well: a rate of change, with its fields as rule_from_dict reads them
API_KINDS = (*FORMS, RateOfChange.kind)
SEVERITIES = tuple(s.value for s in Severity)
NUMERIC_MEASUREMENTS = tuple(NUMERIC)
BOOLEAN_MEASUREMENTS = tuple(sorted(BOOLEAN))


class RuleFormError(ValueError):
    """A posted rule that cannot be used; ``field`` names the input it is about (None: the whole form)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def form_data(form: Mapping[str, Any]) -> dict[str, Any]:
    """A posted rule form as ``rule_to_dict`` data without id and thing (empty inputs left out)."""
    kind = form.get("kind")
    if kind not in FORMS:
        raise RuleFormError("kind", f"choose one of: {', '.join(FORMS)}")
    severity = str(form.get("severity") or Severity.MINOR.value)
    data: dict[str, Any] = {"kind": kind, "severity": severity}
    for field in FORMS[kind]:
        text = str(form.get(field.name) or "").strip()
        if not text:
            continue
        if field.kind == "number":
            data[field.name] = _number(field.name, text)
        elif field.kind == "when":
            data[field.name] = text == "true"
        else:
            data[field.name] = text
    if form.get("custody_aware"):
        data["custody_aware"] = True
    return data


def _number(name: str, text: str) -> float:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise RuleFormError(name, f"{text!r} is not a number: write it like 35 or 2.5") from None
    if not math.isfinite(value):
        raise RuleFormError(name, "write a finite number, such as 35 or 2.5")
    return value


def field_of(message: str, kind: str | None) -> str | None:
    """The form field a ``RuleError`` message is about: the field named first in it, else None."""
    names = [f.name for f in FORMS.get(kind or "", ())] + ["severity", "custody_aware"]
    found = []
    for name in names:
        match = re.search(rf"(?<![A-Za-z_]){re.escape(name)}(?![A-Za-z_])", message)
        if match:
            found.append((match.start(), name))
    if found:
        return min(found)[1]
    if "measurement" in message and any(f.name == "measurement" for f in FORMS.get(kind or "", ())):
        return "measurement"
    return None


def describe(rule: Rule) -> str:
    """A rule in plain words, as the rules page lists it."""
    text = _terms(rule)
    if rule.custody_aware:
        text += "; also tells the lender and the borrower while it is out"
    return text


def _terms(rule: Rule) -> str:
    if isinstance(rule, LowBattery):
        return f"battery below {_n(rule.below)} % (clears above {_n(rule.clear_above)} %)"
    if isinstance(rule, Threshold):
        unit = unit_of(rule.measurement)
        parts = []
        if rule.above is not None:
            clear = rule.clear_below if rule.clear_below is not None else rule.above
            parts.append(f"above {_q(rule.above, unit)} (clears below {_q(clear, unit)})")
        if rule.below is not None:
            clear = rule.clear_above if rule.clear_above is not None else rule.below
            parts.append(f"below {_q(rule.below, unit)} (clears above {_q(clear, unit)})")
        held = f", held for {_n(rule.for_s)} s" if rule.for_s else ""
        return f"{label(rule.measurement)} " + " or ".join(parts) + held
    if isinstance(rule, RateOfChange):
        moves = {"rise": "rises", "fall": "falls", "both": "moves"}[rule.direction]
        delta = _q(rule.max_delta, unit_of(rule.measurement))
        return f"{label(rule.measurement)} {moves} by more than {delta} within {_n(rule.per_s)} s"
    if isinstance(rule, BooleanRule):
        return f"{label(rule.measurement)} is {'yes' if rule.when else 'no'}"
    if isinstance(rule, Offline):
        return f"offline and not back within {_n(rule.debounce_s)} s"
    if isinstance(rule, Stale):
        return f"no reading for {_n(rule.after_s)} s"
    if isinstance(rule, OverdueLoan):
        return "a loan of it is overdue"
    return rule.kind


def _n(value: float) -> str:
    return f"{value:g}"


def _q(value: float, unit: str) -> str:
    return f"{value:g} {unit}".strip()
