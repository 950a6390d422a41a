"""Topic rules from the config: a topic pattern with named levels, JSON paths to canonical names.

Like Telegraf's ``topic_parsing`` with ``json_v2``::

    rules:
      - topic: "sensors/{room}/{sensor}/json"   # {name} captures a level, + matches one, a final # the rest
        thing: "{room}-{sensor}"
        fields:
          - {path: env.temp, name: temperature, unit: °F}
          - {path: "sensors[0].value", name: humidity}
          - {path: '"PM2.5"', name: pm25}          # a quoted key may hold dots
        time_path: ts

The first rule whose pattern matches a topic reads it. ``path`` ``$`` (the default) is the whole
payload, for plain-text values (``21.5``, ``20.6 ℃``, ``nan``, ``ON``). A path missing from a message
leaves that field out; a message where no path is found at all is rejected as ``no_values``.

Things are named by the user, so the thing template's result is used as it is when it is a valid
thing id (letters, digits, ``_ . : -``, at most 64). Only a result that is not (a captured level with
a space, say) becomes ``<source>.<sanitised result>``, like every foreign device's id. Events carry
the rule's ``source`` (default ``rules``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hub.config import TopicRule
from hub.domain.events import Event, Rejected
from hub.ingest.decoder import PayloadError, Subscription, Values, decode_json, decode_text, thing_id
from hub.ingest.native import ID_PATTERN, device_time

_CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MISSING = object()

Segment = str | int
Path = tuple[Segment, ...]


def parse_path(text: str) -> Path | None:
    """``env.temp`` → ("env", "temp"); ``sensors[0].value`` → ("sensors", 0, "value"); ``"PM2.5"`` →
    ("PM2.5",); ``$`` or empty → None (the whole payload). A leading ``$.`` is allowed.

    Lenient by design: an unterminated quote or bracket reads the rest as one key, never an error.
    """
    text = text.strip()
    if text in ("", "$"):
        return None
    if text.startswith("$.") or text.startswith("$["):
        text = text[1:].lstrip(".")
    segments: list[Segment] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in "\"'":
            end = text.find(text[i], i + 1)
            if end < 0:
                segments.append(text[i + 1 :])
                break
            segments.append(text[i + 1 : end])
            i = end + 1
        elif text[i] != "[":
            end = i
            while end < n and text[end] not in ".[":
                end += 1
            segments.append(text[i:end].strip())
            i = end
        while i < n and text[i] == "[":
            end = text.find("]", i)
            if end < 0:
                segments.append(text[i + 1 :])
                return tuple(segments)
            inner = text[i + 1 : end].strip()
            if re.fullmatch(r"-?\d+", inner):
                segments.append(int(inner))
            else:
                segments.append(inner.strip("\"'"))
            i = end + 1
        if i < n and text[i] == ".":
            i += 1
    return tuple(segments)


def resolve(doc: Any, path: Path) -> Any:
    """The value at ``path`` in a JSON document, or ``_MISSING``."""
    node = doc
    for segment in path:
        if isinstance(node, dict):
            key = str(segment)
            if key not in node:
                return _MISSING
            node = node[key]
        elif isinstance(node, list) and isinstance(segment, int) and -len(node) <= segment < len(node):
            node = node[segment]
        else:
            return _MISSING
    return node


@dataclass(frozen=True, slots=True)
class _Field:
    label: str
    path: Path | None
    name: str
    unit: str | None


class CompiledRule:
    """One rule with its topic pattern and paths parsed once."""

    def __init__(self, rule: TopicRule) -> None:
        self.source = rule.source
        self.template = rule.thing
        self.levels: list[tuple[str, str]] = []  # ("lit", text) | ("any", "") | ("cap", name) | ("rest", "")
        levels = rule.topic.split("/")
        for i, level in enumerate(levels):
            capture = _CAPTURE.fullmatch(level)
            if level == "#" and i == len(levels) - 1:
                self.levels.append(("rest", ""))
            elif level == "+":
                self.levels.append(("any", ""))
            elif capture:
                self.levels.append(("cap", capture.group(1)))
            elif any(c in level for c in "+#{}"):
                raise ValueError(
                    f"topic {rule.topic!r}: level {level!r} is not a name, {{name}}, + or a final #"
                )
            else:
                self.levels.append(("lit", level))
        captured = {text for kind, text in self.levels if kind == "cap"}
        unknown = set(_CAPTURE.findall(rule.thing)) - captured
        if unknown:
            raise ValueError(f"thing {rule.thing!r} uses {sorted(unknown)}, not captured by {rule.topic!r}")
        self.filter = "/".join(
            "#" if kind == "rest" else "+" if kind in ("any", "cap") else text for kind, text in self.levels
        )
        self.fields = [_Field(f.path, parse_path(f.path), f.name, f.unit) for f in rule.fields]
        self.time_path = parse_path(rule.time_path) if rule.time_path else None
        self.needs_json = self.time_path is not None or any(f.path is not None for f in self.fields)

    def match(self, topic: str) -> dict[str, str] | None:
        """The captured levels when ``topic`` matches the pattern, else None."""
        parts = topic.split("/")
        captures: dict[str, str] = {}
        for i, (kind, text) in enumerate(self.levels):
            if kind == "rest":
                return captures
            if i >= len(parts):
                return None
            if kind == "lit" and parts[i] != text:
                return None
            if kind == "cap":
                if not parts[i]:
                    return None
                captures[text] = parts[i]
        return captures if len(parts) == len(self.levels) else None

    def thing(self, captures: dict[str, str]) -> str:
        name = _CAPTURE.sub(lambda m: captures[m.group(1)], self.template)
        return name if ID_PATTERN.fullmatch(name) else thing_id(self.source, name)


def _whole(text: str) -> Any:
    """A plain-text payload's value: a JSON scalar when it is one (``21.5``, ``true``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


class TopicRulesDecoder:
    """Reads the topics the config's ``ingest.rules`` describe; the first matching rule wins."""

    name = "rules"

    def __init__(self, rules: Sequence[TopicRule] = ()) -> None:
        self.rules = [CompiledRule(rule) for rule in rules]

    def subscriptions(self) -> list[Subscription]:
        return [Subscription(topic) for topic in dict.fromkeys(rule.filter for rule in self.rules)]

    def _rule(self, topic: str) -> tuple[CompiledRule, dict[str, str]] | None:
        for rule in self.rules:
            captures = rule.match(topic)
            if captures is not None:
                return rule, captures
        return None

    def matches(self, topic: str) -> bool:
        return self._rule(topic) is not None

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        found = self._rule(topic)
        if found is None:
            raise PayloadError("bad_topic", f"no topic rule matches {topic!r:.80}")
        rule, captures = found
        try:
            return self._read(rule, captures, topic, payload, received)
        except PayloadError as exc:  # rejected under the rule's own source, like its readings
            return [exc.rejection(rule.source, topic)]

    def _read(
        self, rule: CompiledRule, captures: dict[str, str], topic: str, payload: bytes, received: float
    ) -> list[Event]:
        text = decode_text(payload)
        doc = decode_json(payload) if rule.needs_json else None
        values = Values(rule.source, topic)
        found = 0
        for field in rule.fields:
            raw = _whole(text) if field.path is None else resolve(doc, field.path)
            if raw is _MISSING:
                if field.path and isinstance(doc, dict) and field.label in doc:  # an unquoted "PM2.5"
                    raw = doc[field.label]
                else:
                    continue
            found += 1
            values.add(field.name, raw, field.unit)
        if not found:
            paths = ", ".join(f.label for f in rule.fields)
            raise PayloadError("no_values", f"none of the rule's paths ({paths:.80}) is in the payload")
        time = None
        if rule.time_path is not None:
            raw_time = resolve(doc, rule.time_path)
            if raw_time is not _MISSING:
                try:
                    time = device_time(raw_time, received)
                except PayloadError as exc:  # the values still count; the arrival time stands in
                    values.problems.append(Rejected(rule.source, topic, exc.reason, exc.detail))
        return values.events(rule.thing(captures), time)
