"""Wiegand-26 (HID H10301) as a bridge sketch prints it: one line of 26 ``0``/``1`` characters.

Bits: ``P_even`` over the next 12, 8-bit facility code, 16-bit card number, ``P_odd`` over the 12
before it. Both parity bits are checked; a frame that fails either is rejected.

Rendering: ``W26:<decimal of the 24 bits FC‖CN>``, i.e. ``FC * 65536 + CN`` (``W26:1392146`` for
FC 21, CN 15890). Chosen because it is what the common Arduino Wiegand library (``getCode``) and
ESPHome's ``wiegand`` ``on_tag`` report, so a tag enrolled from either matches, and because it is
one-to-one with the card's bits. The other common rendering, decimal FC and CN written side by side
(``2115890``), is ambiguous: FC 211 / CN 5890 gives the same string.
"""

from __future__ import annotations

from firmware_bridges.readers import Rejection, Tag
from firmware_bridges.readers.text_lines import LineSplitter

BITS = 26


class Wiegand26Parser:
    """Incremental parser: bytes in, one :class:`Tag` or :class:`Rejection` per non-empty line."""

    def __init__(self) -> None:
        self._lines = LineSplitter()

    def feed(self, data: bytes) -> list[object]:
        return [item if isinstance(item, Rejection) else parse_bits(item) for item in self._lines.feed(data)]


def parse_bits(line: str) -> Tag | Rejection:
    """The tag in one line of 26 bits, or why there is none."""
    bits = line.strip()
    if not bits or set(bits) - {"0", "1"}:
        return Rejection("not_bits", f"not a line of 0/1 bits: {line[:64]!r}")
    if len(bits) != BITS:
        return Rejection("bad_length", f"{len(bits)} bits, Wiegand-26 has {BITS}")
    if bits[:13].count("1") % 2:
        return Rejection("bad_parity", f"even parity over bits 1-13 fails: {bits}")
    if bits[13:].count("1") % 2 == 0:
        return Rejection("bad_parity", f"odd parity over bits 14-26 fails: {bits}")
    return Tag(f"W26:{int(bits[1:25], 2)}")
