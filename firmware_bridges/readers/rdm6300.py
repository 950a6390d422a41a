"""RDM6300 (125 kHz EM4100) frames: ``02`` + 10 ASCII hex data + 2 ASCII hex checksum + ``03``.

The 5 data bytes are one version/customer byte and the 4-byte card id; the checksum is their XOR.
The tag id is the 10 data hex digits, uppercase (``01000734E0``). The reader repeats the frame about
every 50 ms while a card is present; debouncing is the caller's job, not the parser's.
"""

from __future__ import annotations

from firmware_bridges.readers import Rejection, Tag

STX = 0x02
ETX = 0x03
FRAME_LEN = 14
_HEX = frozenset(b"0123456789ABCDEFabcdef")


class Rdm6300Parser:
    """Incremental RDM6300 parser; resynchronises on ``0x02`` after garbage."""

    def __init__(self) -> None:
        self._buf = bytearray()
        # after a bad frame, the bytes up to the next start byte belong to it: skipped quietly, so
        # one bad frame is one rejection however the serial reads cut the stream
        self._resyncing = False

    def feed(self, data: bytes) -> list[object]:
        self._buf += data
        out: list[object] = []
        buf = self._buf
        while buf:
            start = buf.find(STX)
            if start < 0:
                if not self._resyncing:
                    out.append(Rejection("noise", f"{len(buf)} bytes without a start byte 0x02"))
                buf.clear()
                break
            if start > 0:
                if not self._resyncing:
                    out.append(Rejection("noise", f"{start} bytes before the start byte 0x02"))
                del buf[:start]
            self._resyncing = False
            if len(buf) < FRAME_LEN:
                # A second start byte inside a short buffer means the first frame was cut off.
                restart = buf.find(STX, 1)
                if restart > 0:
                    out.append(Rejection("truncated_frame", buf[:restart].hex(" ")))
                    del buf[:restart]
                    continue
                break
            frame = bytes(buf[:FRAME_LEN])
            result = _decode(frame)
            if isinstance(result, Tag):
                del buf[:FRAME_LEN]
            else:
                # Drop the whole bad frame up to the next start byte, so one bad frame is one rejection.
                restart = buf.find(STX, 1)
                del buf[: restart if restart > 0 else len(buf)]
                self._resyncing = restart <= 0
            out.append(result)
        return out


def _decode(frame: bytes) -> Tag | Rejection:
    body = frame[1:13]
    if STX in body:
        return Rejection("truncated_frame", f"a new start byte inside the frame: {frame.hex(' ')}")
    if frame[13] != ETX:
        return Rejection("bad_frame", f"no end byte 0x03 at offset 13: {frame.hex(' ')}")
    if not all(b in _HEX for b in body):
        return Rejection("not_hex", f"non-hex characters in frame: {frame.hex(' ')}")
    text = body.decode("ascii").upper()
    data = bytes.fromhex(text[:10])
    checksum = int(text[10:], 16)
    computed = 0
    for b in data:
        computed ^= b
    if computed != checksum:
        return Rejection("bad_checksum", f"data {text[:10]} checksum {text[10:]} computed {computed:02X}")
    return Tag(text[:10])
