"""Text readers: one UID per line, as Arduino/ESP sketches print them (MFRC522, PN532 examples).

Accepted: ``Card UID: 45 C5 25 83``, ``UID: 45:C5:25:83``, ``uid=45-c5-25-83``, ``45C52583``,
``0x45 0xC5 0x25 0x83``. The tag id is the bytes in printed order, uppercase hex (``45C52583``).

A byte printed without its leading zero (``EDBA996`` for ``ED0BA996``, ``45 C 25 83``) is rejected:
which nibble lost its zero cannot be known, and a guessed id could credit a loan to the wrong tool.
Lines with another label (``Card SAK: 08``, ``PICC type: …``, dump tables) are rejected as ``not_uid``.
"""

from __future__ import annotations

import re

from firmware_bridges.readers import Rejection, Tag
from firmware_bridges.readers.text_lines import LineSplitter

UID_BYTES = (4, 5, 7, 8, 10)  # ISO 14443A single/double/triple size, EM4100, ISO 15693

_LABEL = re.compile(r"^(?P<label>[A-Za-z][A-Za-z0-9 _#()-]*?)\s*[:=]\s*(?P<value>.*)$")
_BYTE = r"(?:0[xX])?[0-9A-Fa-f]{1,2}"
_GROUPED = re.compile(rf"^{_BYTE}(?P<sep>[ :-]){_BYTE}(?:(?P=sep){_BYTE})*$")
_PLAIN = re.compile(r"^(?:0[xX])?(?P<hex>[0-9A-Fa-f]+)$")


class UidLineParser:
    """Incremental parser: bytes in, one :class:`Tag` or :class:`Rejection` per non-empty line."""

    def __init__(self) -> None:
        self._lines = LineSplitter()

    def feed(self, data: bytes) -> list[object]:
        lines = self._lines.feed(data)
        return [item if isinstance(item, Rejection) else parse_uid_line(item) for item in lines]


def parse_uid_line(line: str) -> Tag | Rejection:
    """The tag on one printed line, or why there is none."""
    value = line.strip()
    labelled = _LABEL.match(value)
    uid_label = False
    if labelled and not _GROUPED.match(value):
        if "uid" not in labelled.group("label").lower():
            return Rejection("not_uid", f"line is not a UID: {line[:64]!r}")
        value = labelled.group("value").strip()
        uid_label = True
    grouped = _GROUPED.match(value)
    if grouped:
        groups = value.split(grouped.group("sep"))
        groups = [g[2:] if g[:2] in ("0x", "0X") else g for g in groups]
        if any(len(g) != 2 for g in groups):
            return Rejection("dropped_leading_zero", f"a byte printed without its leading zero: {value!r}")
        hex_text = "".join(groups)
    else:
        plain = _PLAIN.match(value)
        if not plain:
            if uid_label:
                return Rejection("not_hex", f"not a hex UID: {line[:64]!r}")
            return Rejection("not_uid", f"line is not a UID: {line[:64]!r}")
        hex_text = plain.group("hex")
        if len(hex_text) % 2:
            return Rejection(
                "odd_length", f"{len(hex_text)} hex digits: a leading zero was dropped somewhere: {value!r}"
            )
    if len(hex_text) // 2 not in UID_BYTES:
        return Rejection("bad_length", f"{len(hex_text) // 2}-byte UID: {value!r}")
    return Tag(hex_text.upper())
