"""Topic → decoder. The first decoder whose ``matches`` accepts a topic owns it."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

from hub.domain.events import Event, Ignored, Rejected
from hub.ingest.decoder import Decoder, PayloadError

log = logging.getLogger(__name__)

_NO_DECODER = object()


class Router:
    """Dispatches each message to its decoder and guarantees a decoder error never escapes.

    The topic → decoder choice is cached (bounded LRU), so the matching cost is paid once per topic.
    """

    def __init__(
        self, decoders: Sequence[Decoder], *, max_payload_bytes: int = 65536, cache_size: int = 20000
    ) -> None:
        self.decoders = list(decoders)
        self.max_payload_bytes = max_payload_bytes
        self._cache: OrderedDict[str, object] = OrderedDict()
        self._cache_size = cache_size

    def subscriptions(self) -> list[str]:
        seen: dict[str, None] = {}
        for decoder in self.decoders:
            for sub in decoder.subscriptions():
                seen.setdefault(sub, None)
        return list(seen)

    def decoder_for(self, topic: str) -> Decoder | None:
        found = self._cache.get(topic)
        if found is not None:
            self._cache.move_to_end(topic)
            return None if found is _NO_DECODER else found  # type: ignore[return-value]
        decoder = next((d for d in self.decoders if d.matches(topic)), None)
        self._cache[topic] = _NO_DECODER if decoder is None else decoder
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return decoder

    def route(self, topic: str, payload: bytes, received: float) -> list[Event]:
        """Events of one message; never raises."""
        decoder = self.decoder_for(topic)
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
            return list(decoder.decode(topic, payload, received))
        except PayloadError as exc:
            return [exc.rejection(decoder.name, topic)]
        except Exception as exc:  # a decoder bug must not kill the ingest loop
            log.exception("decoder failed topic=%s decoder=%s", topic, decoder.name)
            return [Rejected(decoder.name, topic, "decoder_error", f"{type(exc).__name__}: {exc}")]
