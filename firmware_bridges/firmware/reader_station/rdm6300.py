"""RDM6300 (125 kHz EM4100) framing for the reader station; runs under MicroPython and CPython.

A frame is ``02`` + 10 ASCII hex data + 2 ASCII hex checksum + ``03`` (14 bytes) at 9600 8N1. The
five data bytes are a version/customer byte and the 4-byte card id; the checksum is their XOR. The
tag id is the 10 data digits in uppercase (``01000734E0``), as the hub-bridge's parser gives it.

Only bytes, ints and str are used (no bytearray slice deletion, ``bytes.hex`` or ``bytes.fromhex``,
which not every MicroPython build has), so the same file is tested on CPython against the bridge.
``feed`` returns events as ``(TAG, "01000734E0")`` or ``(REJECT, reason)`` tuples; the reasons are
the bridge's (``noise``, ``truncated_frame``, ``bad_frame``, ``not_hex``, ``bad_checksum``).
"""

TAG = "tag"
REJECT = "reject"

STX = b"\x02"
ETX = 0x03
FRAME_LEN = 14


class Rdm6300Parser:
    """Incremental parser: a frame split over reads is completed by the next ``feed``; after
    garbage or a bad frame it resynchronises on the next ``0x02``. Holds at most one frame."""

    def __init__(self):
        self._buf = b""

    def feed(self, data):
        buf = self._buf + bytes(data)
        out = []
        while buf:
            start = buf.find(STX)
            if start < 0:
                out.append((REJECT, "noise"))
                buf = b""
                break
            if start > 0:
                out.append((REJECT, "noise"))
                buf = buf[start:]
            if len(buf) < FRAME_LEN:
                # A second start byte inside a short buffer means the first frame was cut off.
                restart = buf.find(STX, 1)
                if restart > 0:
                    out.append((REJECT, "truncated_frame"))
                    buf = buf[restart:]
                    continue
                break
            event = decode(buf[:FRAME_LEN])
            if event[0] == TAG:
                buf = buf[FRAME_LEN:]
            else:
                # Drop the whole bad frame up to the next start byte: one bad frame, one rejection.
                restart = buf.find(STX, 1)
                buf = buf[restart:] if restart > 0 else b""
            out.append(event)
        self._buf = buf
        return out


def decode(frame):
    """``(TAG, id)`` for one complete 14-byte frame, else ``(REJECT, reason)``."""
    if frame[1:13].find(STX) >= 0:
        return (REJECT, "truncated_frame")
    if frame[13] != ETX:
        return (REJECT, "bad_frame")
    nibbles = [_nibble(c) for c in frame[1:13]]
    if min(nibbles) < 0:
        return (REJECT, "not_hex")
    values = [nibbles[i] << 4 | nibbles[i + 1] for i in range(0, 12, 2)]
    computed = 0
    for b in values[:5]:
        computed ^= b
    if computed != values[5]:
        return (REJECT, "bad_checksum")
    return (TAG, hex_upper(values[:5]))


def hex_upper(values):
    """Uppercase hex of a sequence of byte values, no separators."""
    return "".join([f"{b:02X}" for b in values])


def _nibble(c):
    if 0x30 <= c <= 0x39:
        return c - 0x30
    if 0x41 <= c <= 0x46:
        return c - 0x37
    if 0x61 <= c <= 0x66:
        return c - 0x57
    return -1
