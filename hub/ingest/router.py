"""Topic → decoder. The first decoder whose ``matches`` accepts a topic owns it."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hub.domain.events import Discovery, Event, Ignored, Reading, Rejected, Value
from hub.domain.units import UnitError, to_canonical
from hub.ingest.decoder import Decoder, PayloadError, Subscription

log = logging.getLogger(__name__)

_NO_DECODER = object()


@dataclass(frozen=True, slots=True)
class FieldRule:
    """Config's ``ingest.field_map`` entry: an unmapped field of matching things → a canonical name."""

    thing: str
    field: str
    to: str
    unit: str | None = None


class Router:
    """Dispatches each message to its decoder and guarantees a decoder error never escapes.

    The topic → decoder choice is cached (bounded; the oldest entry goes first), so the matching cost is
    paid once per topic.
    Decoders earlier in the list win: an ecosystem decoder that reads a topic natively (Tasmota's
    ``tele/…/SENSOR``) is preferred over a Home Assistant discovery config pointing at the same topic,
    and such a config then yields no thing of its own (the device would otherwise appear twice).
    """

    def __init__(
        self,
        decoders: Sequence[Decoder],
        *,
        max_payload_bytes: int = 65536,
        cache_size: int = 20000,
        field_map: Sequence[FieldRule] = (),
    ) -> None:
        self.decoders = list(decoders)
        self.max_payload_bytes = max_payload_bytes
        self.field_map = list(field_map)
        self._cache: dict[str, object] = {}
        self._cache_size = cache_size

    def subscriptions(self) -> list[Subscription]:
        seen: dict[str, bool] = {}
        for decoder in self.decoders:
            for sub in decoder.subscriptions():
                seen[sub.topic] = seen.get(sub.topic, False) or sub.replay
        return [Subscription(topic, replay) for topic, replay in seen.items()]

    def decoder_for(self, topic: str) -> Decoder | None:
        cache = self._cache
        found = cache.get(topic)
        if found is not None:
            return None if found is _NO_DECODER else found  # type: ignore[return-value]
        decoder = next((d for d in self.decoders if d.matches(topic)), None)
        if len(cache) >= self._cache_size:
            del cache[next(iter(cache))]
        cache[topic] = _NO_DECODER if decoder is None else decoder
        return decoder

    def route(self, topic: str, payload: bytes, received: float) -> list[Event]:
        """Events of one message; never raises."""
        try:
            decoder = self.decoder_for(topic)
        except Exception as exc:  # a decoder's matches() must not kill the ingest loop either
            log.exception("choosing a decoder failed topic=%s", topic)
            return [Rejected("unknown", topic, "decoder_error", f"{type(exc).__name__}: {exc}")]
        if decoder is None:
            return [Ignored(source="unknown", topic=topic)]
        if len(payload) > self.max_payload_bytes:
            return [
                Rejected(
                    decoder.name,
                    topic,
                    "too_large",
                    f"payload of {len(payload)} bytes exceeds {self.max_payload_bytes}",
                )
            ]
        try:
            events = decoder.decode(topic, payload, received)
            if type(events) is not list:
                events = list(events)
        except PayloadError as exc:
            return [exc.rejection(decoder.name, topic)]
        except Exception as exc:  # a decoder bug must not kill the ingest loop
            log.exception("decoder failed topic=%s decoder=%s", topic, decoder.name)
            return [Rejected(decoder.name, topic, "decoder_error", f"{type(exc).__name__}: {exc}")]
        return self._settle(decoder, topic, events)

    # -- after the decoder ----------------------------------------------------------------------------
    def _settle(self, decoder: Decoder, topic: str, events: list[Event]) -> list[Event]:
        if len(events) == 1 and type(events[0]) is Reading and not (events[0].unmapped and self.field_map):
            return events  # the common case: one reading, nothing to map
        out = events
        for i, event in enumerate(events):
            if isinstance(event, Discovery) and (event.topics or event.retired):
                self._cache.clear()  # topics came or went: choose decoders afresh
                if event.topics:
                    out = out if out is not events else list(events)
                    out[i] = self._claimed(decoder, topic, event)
            elif isinstance(event, Reading) and event.unmapped and self.field_map:
                out = out if out is not events else list(events)
                out[i : i + 1] = self._map_fields(event)
        return out

    def _claimed(self, owner: Decoder, topic: str, event: Discovery) -> Event:
        """Drop announced topics an earlier decoder reads natively; all dropped → no second thing."""
        earlier = self.decoders[: self.decoders.index(owner)] if owner in self.decoders else []
        kept = tuple(t for t in event.topics if not any(d.matches(t) for d in earlier))
        if kept == event.topics:
            return event
        if not kept:
            return Ignored(event.source, topic)
        return replace(event, topics=kept)

    def _map_fields(self, event: Reading) -> list[Event]:
        values: dict[str, Value] = dict(event.values)
        unmapped = dict(event.unmapped)
        problems: list[Event] = []
        for rule in self.field_map:
            if rule.field in unmapped and fnmatch.fnmatchcase(event.thing, rule.thing):
                raw = unmapped.pop(rule.field)
                try:
                    value = to_canonical(rule.to, raw, rule.unit)
                except UnitError as exc:
                    detail = f"{rule.field} → {rule.to}: {exc.detail}"
                    problems.append(Rejected(event.source, event.thing, exc.reason, detail))
                    continue
                if value is not None:
                    values.setdefault(rule.to, value)
        return [replace(event, values=values, unmapped=unmapped), *problems]
