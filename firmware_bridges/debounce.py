"""One presentation of a tag is one scan, however many frames the reader repeats."""

from __future__ import annotations


class Debouncer:
    """Accepts a tag unless it was last *seen* less than ``window`` seconds ago.

    Measured from the last sighting, not the last accepted scan: an RDM6300 repeats its frame every
    ~50 ms and a PN532 poll finds the card on every round while it lies on the reader, so a card held
    there for a minute is still one scan; lifting it for longer than ``window`` makes the next a new one.
    """

    _PRUNE_AT = 1024

    def __init__(self, window: float) -> None:
        self.window = window
        self._last_seen: dict[str, float] = {}

    def accept(self, tag: str, now: float) -> bool:
        """Record a sighting of ``tag`` at monotonic time ``now``; True if it starts a new scan."""
        last = self._last_seen.get(tag)
        self._last_seen[tag] = now
        if len(self._last_seen) > self._PRUNE_AT:
            self._last_seen = {t: s for t, s in self._last_seen.items() if now - s <= self.window}
        return last is None or now - last > self.window
