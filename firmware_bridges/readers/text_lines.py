"""Splitting a serial byte stream into bounded text lines (for readers behind a sketch's ``print``)."""

from __future__ import annotations

import re

from firmware_bridges.readers import Rejection

MAX_LINE = 256
_EOL = re.compile(rb"\r\n|\r|\n")


class LineSplitter:
    """Yields complete lines as ``str`` (CR, LF or CRLF endings); overlong or non-ASCII lines are rejected."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False  # inside an overlong line, until its end

    def feed(self, data: bytes) -> list[str | Rejection]:
        self._buf += data
        out: list[str | Rejection] = []
        while True:
            match = _EOL.search(self._buf)
            if match is None:
                if len(self._buf) > MAX_LINE:
                    if not self._discarding:
                        detail = f"more than {MAX_LINE} bytes without a line end"
                        out.append(Rejection("line_too_long", detail))
                    self._discarding = True
                    # keep a lone trailing CR: it may be the first half of CRLF
                    del self._buf[: len(self._buf) - 1]
                return out
            raw = bytes(self._buf[: match.start()])
            # A CR at the very end may be followed by LF in the next read: wait for it.
            if match.group() == b"\r" and match.end() == len(self._buf) and len(raw) <= MAX_LINE:
                return out
            del self._buf[: match.end()]
            if self._discarding:
                self._discarding = False
                continue
            if len(raw) > MAX_LINE:
                out.append(Rejection("line_too_long", f"{len(raw)} bytes"))
                continue
            try:
                line = raw.decode("ascii").strip()
            except UnicodeDecodeError:
                out.append(Rejection("not_text", f"non-ASCII bytes in line: {raw[:32].hex(' ')}"))
                continue
            if line:
                out.append(line)
