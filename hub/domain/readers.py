"""One tag reader's tap sequence: a resident's card, then a tool's tag. Pure state machine.

The session turns scans into requests (check out, return) or refusals; the lending rules and the store
decide what actually happens. At a ``lend`` reader a card followed within the card window by a tool that
is at home asks to check it out; a tool that is out, tapped alone or after a card, asks to return it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

#: A tag read again this soon is the same tap (held against the reader, or a reader that repeats).
REPEAT_S: Final[float] = 3.0


class ReaderMode(StrEnum):
    LEND = "lend"  # card then tool → check-out; tool that is out → return
    RETURN_ONLY = "return_only"  # a drop box: tools that are out come back, cards are refused
    CHECKOUT_ONLY = "checkout_only"  # card then tool → check-out; returns go elsewhere


class TagLookup(Protocol):
    """What the session needs to know about tags, answered from the store."""

    def resident_by_card(self, tag: str) -> str | None: ...

    def thing_by_tag(self, tag: str) -> str | None: ...

    def custody(self, thing: str) -> str | None:
        """The borrower holding ``thing`` now, or None when it is at home."""
        ...


@dataclass(frozen=True, slots=True)
class CardAccepted:
    """A card was read; a tool tapped within the card window is checked out to this resident."""

    resident: str


@dataclass(frozen=True, slots=True)
class CheckOutRequested:
    resident: str
    thing: str


@dataclass(frozen=True, slots=True)
class ReturnRequested:
    thing: str
    by: str | None = None  # the card tapped before the tool, when there was one


@dataclass(frozen=True, slots=True)
class Denied:
    """A scan the reader refuses. ``reason``: unknown_tag, no_card, card_expired, not_out, mode_forbids."""

    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Ignored:
    """The same tag again (a card re-tapped in its window, a tag held against the reader)."""

    tag: str


Outcome = CardAccepted | CheckOutRequested | ReturnRequested | Denied | Ignored


class ReaderSession:
    """The tap sequence at one reader. Feed it every scan of that reader in order with ``on_scan``."""

    def __init__(
        self, reader_id: str, mode: ReaderMode, card_window_s: float = 30.0, repeat_s: float = REPEAT_S
    ) -> None:
        self.reader_id = reader_id
        self.mode = mode
        self.card_window_s = card_window_s
        self.repeat_s = repeat_s
        self._card: tuple[str, str, float] | None = None  # (tag, resident, tapped at)
        self._last: tuple[str, float] | None = None  # (tag, read at)

    @property
    def waiting_for(self) -> str | None:
        """The resident whose card was tapped last, while the session still holds it."""
        return self._card[1] if self._card is not None else None

    def on_scan(self, tag: str, now: float, lookup: TagLookup) -> Outcome:
        """What the scan of ``tag`` at ``now`` means, given what was tapped before."""
        last, self._last = self._last, (tag, now)
        if last is not None and last[0] == tag and 0 <= now - last[1] < self.repeat_s:
            if self._card is not None and self._card[0] == tag:
                self._card = (tag, self._card[1], now)
            return Ignored(tag)

        resident = lookup.resident_by_card(tag)
        if resident is not None:
            return self._on_card(tag, resident, now)
        thing = lookup.thing_by_tag(tag)
        if thing is not None:
            return self._on_tool(thing, now, lookup)
        return Denied("unknown_tag", f"tag {tag} belongs to no resident and no thing")

    def _on_card(self, tag: str, resident: str, now: float) -> Outcome:
        if self.mode is ReaderMode.RETURN_ONLY:
            return Denied("mode_forbids", f"reader {self.reader_id} only takes returns: tap the tool alone")
        if self._card is not None and self._card[0] == tag and self._fresh(self._card[2], now):
            # Re-tapped while waiting, usually because nothing seemed to happen: wait a full window again.
            self._card = (tag, resident, now)
            return Ignored(tag)
        self._card = (tag, resident, now)
        return CardAccepted(resident)

    def _on_tool(self, thing: str, now: float, lookup: TagLookup) -> Outcome:
        card, self._card = self._card, None  # a card serves one tool: the next person's tool is theirs
        fresh = card is not None and self._fresh(card[2], now)
        resident = card[1] if card is not None and fresh else None
        if lookup.custody(thing) is not None:
            if self.mode is ReaderMode.CHECKOUT_ONLY:
                self._card = card if fresh else None
                return Denied(
                    "mode_forbids", f"{thing} is out; reader {self.reader_id} does not take returns"
                )
            return ReturnRequested(thing, by=resident)
        if self.mode is ReaderMode.RETURN_ONLY:
            return Denied("not_out", f"{thing} is not out on loan")
        if resident is not None:
            return CheckOutRequested(resident, thing)
        if card is not None:
            return Denied(
                "card_expired", f"tap your card again, then {thing} within {self.card_window_s:g} s"
            )
        return Denied("no_card", f"tap your card first, then {thing}")

    def _fresh(self, tapped_at: float, now: float) -> bool:
        # A clock that jumped backwards makes the card stale: refusing beats lending to the wrong person.
        return 0 <= now - tapped_at <= self.card_window_s
