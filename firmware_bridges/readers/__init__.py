"""Pure framing and parsing of serial tag readers: bytes in, tags or counted rejections out.

Nothing here does I/O. Each reader module has an incremental parser with ``feed(bytes) -> list``;
a frame split across reads is completed by the next ``feed``, garbage is skipped up to the next
start of frame, and anything malformed becomes a :class:`Rejection` with a short stable reason.

Why not a library: the PyPI packages for these readers (``rdm6300``, ``nfcpy``, ``pn532pi``,
``adafruit-circuitpython-pn532``) each own the serial port and their own read loop, so they cannot
be fed bytes, resynchronised or tested against recorded frames; the framing itself is a few lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Tag:
    """A tag id as DESIGN §5 Tags defines it (``01000734E0``, ``C2994A1B``, ``W26:1392146``)."""

    id: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Input that was not a valid frame; ``reason`` is a short stable code, ``detail`` is for humans."""

    reason: str
    detail: str = ""


class Parser(Protocol):
    def feed(self, data: bytes) -> list[object]:
        """Consume bytes; return the tags, rejections (and reader-specific events) they completed."""
        ...


READER_KINDS = ("rdm6300", "pn532", "lines", "wiegand")


def make_parser(kind: str) -> Parser:
    """A fresh parser for one reader kind (one of :data:`READER_KINDS`)."""
    from firmware_bridges.readers import lines, pn532, rdm6300, wiegand

    parsers: dict[str, type[Parser]] = {
        "rdm6300": rdm6300.Rdm6300Parser,
        "pn532": pn532.Pn532Parser,
        "lines": lines.UidLineParser,
        "wiegand": wiegand.Wiegand26Parser,
    }
    return parsers[kind]()
