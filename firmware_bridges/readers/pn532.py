"""PN532 frames (NXP UM0701 §6.2), as spoken over HSU (UART) and, with a status byte, over I2C/SPI.

Normal frame: ``00 00 FF LEN LCS TFI CMD DATA… DCS 00`` with ``LCS = -LEN`` and ``DCS = -Σ(TFI..DATA)``
(mod 256); TFI is ``D4`` host→chip, ``D5`` chip→host, and the chip answers command ``CMD`` with
``CMD + 1``. ``00 00 FF 00 FF 00`` is ACK, ``00 00 FF FF 00 00`` NACK, ``00 00 FF 01 FF 7F 81 00`` the
error frame. Frames can share one read; I2C/SPI reads prepend a ``01`` ready byte, which is skipped.

The tag id is the NFCID1 of an InListPassiveTarget (106 kbps type A) response, uppercase hex
(``C2994A1B``). This module builds the host's commands and parses the chip's answers; the poll
loop that sends them lives in :mod:`firmware_bridges.pn532_poller`.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridges.readers import Rejection, Tag

START = b"\x00\x00\xff"
ACK = b"\x00\x00\xff\x00\xff\x00"
TFI_HOST = 0xD4
TFI_CHIP = 0xD5
TFI_ERROR = 0x7F

SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A

# HSU wake-up from power-down: 0x55 0x55 then zeros long enough for the chip's oscillator to start.
WAKEUP = b"\x55\x55" + bytes(12)
_I2C_READY = 0x01
_MAX_FRAME = 300  # longest answer we ask for is far shorter; longer extended frames are rejected


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class Nack:
    pass


@dataclass(frozen=True, slots=True)
class Frame:
    """A well-formed information frame: ``tfi``, ``command`` byte and the bytes after it."""

    tfi: int
    command: int
    params: bytes


def build_frame(command: int, params: bytes = b"") -> bytes:
    """The host→chip information frame for ``command`` (normal frame, TFI ``D4``)."""
    body = bytes([TFI_HOST, command]) + params
    if len(body) > 255:
        raise ValueError("PN532 command too long for a normal frame")
    length = len(body)
    return START + bytes([length, (-length) & 0xFF]) + body + bytes([(-sum(body)) & 0xFF, 0x00])


def sam_configuration() -> bytes:
    """SAMConfiguration, normal mode (no secure access module), as every PN532 driver sends first."""
    return build_frame(SAM_CONFIGURATION, b"\x01")


def rf_configuration_max_retries(passive_activation: int = 0x02) -> bytes:
    """RFConfiguration item 5 (MaxRetries): ATR 0xFF, PSL 0x01 (defaults), passive activation bounded.

    With the default passive activation retries (0xFF, forever) InListPassiveTarget never answers
    while no card is present, and a silent chip cannot be told from an empty field.
    """
    return build_frame(RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, passive_activation]))


def in_list_passive_target() -> bytes:
    """InListPassiveTarget: at most one target, 106 kbps ISO/IEC 14443 type A."""
    return build_frame(IN_LIST_PASSIVE_TARGET, b"\x01\x00")


class Pn532Parser:
    """Incremental parser of chip→host bytes: yields :class:`Ack`, :class:`Nack`, :class:`Frame`,
    a :class:`Tag` after each InListPassiveTarget response with a target, and :class:`Rejection`."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._resyncing = False  # after a bad frame, skip quietly to the next start code

    def feed(self, data: bytes) -> list[object]:
        self._buf += data
        out: list[object] = []
        buf = self._buf
        while True:
            idx = buf.find(START)
            if idx < 0:
                keep = _start_prefix_len(buf)
                self._skip(len(buf) - keep, out)
                return out
            if idx > 0:
                self._skip(idx, out)
            self._resyncing = False
            # buf now starts with 00 00 FF
            if len(buf) < 5:
                return out
            length, lcs = buf[3], buf[4]
            if length == 0x00 and lcs == 0xFF:
                del buf[:5]
                out.append(Ack())
                continue
            if length == 0xFF and lcs == 0x00:
                del buf[:5]
                out.append(Nack())
                continue
            if length == 0xFF and lcs == 0xFF:
                if len(buf) < 8:
                    return out
                lenm, lenl, elcs = buf[5], buf[6], buf[7]
                if (lenm + lenl + elcs) & 0xFF:
                    self._reject(out, "bad_lcs", f"extended frame length {lenm:02X}{lenl:02X} LCS {elcs:02X}")
                    continue
                length = lenm << 8 | lenl
                header = 8
            elif (length + lcs) & 0xFF:
                self._reject(out, "bad_lcs", f"LEN {length:02X} LCS {lcs:02X}")
                continue
            else:
                header = 5
            if length > _MAX_FRAME or length == 0:
                self._reject(out, "bad_length", f"frame length {length}")
                continue
            if len(buf) < header + length + 1:
                return out
            body = bytes(buf[header : header + length])
            dcs = buf[header + length]
            if (sum(body) + dcs) & 0xFF:
                self._reject(out, "bad_dcs", f"frame {bytes(buf[: header + length + 1]).hex(' ')}")
                continue
            del buf[: header + length + 1]
            out.extend(_interpret(body))

    def _skip(self, count: int, out: list[object]) -> None:
        skipped = bytes(self._buf[:count])
        del self._buf[:count]
        if self._resyncing:
            return
        if skipped.endswith(bytes([_I2C_READY])) and self._buf.startswith(START):
            skipped = skipped[:-1]  # the I2C/SPI ready byte before a frame
        noise = sum(1 for b in skipped if b != 0x00)  # zeros are preambles and postambles
        if noise:
            sample = skipped[:16].hex(" ")
            out.append(Rejection("noise", f"{noise} bytes outside a frame (wrong --baud?): {sample}"))

    def _reject(self, out: list[object], reason: str, detail: str) -> None:
        out.append(Rejection(reason, detail))
        del self._buf[: len(START)]
        self._resyncing = True


def _start_prefix_len(buf: bytearray) -> int:
    """How many trailing bytes could begin a frame (``01 00 00 FF`` or ``00 00 FF``) and must wait."""
    for n in (3, 2, 1):
        tail = bytes(buf[-n:]) if len(buf) >= n else None
        if tail is not None and (START.startswith(tail) or (bytes([_I2C_READY]) + START).startswith(tail)):
            return n
    return 0


def _interpret(body: bytes) -> list[object]:
    tfi = body[0]
    if tfi == TFI_ERROR and len(body) == 1:
        return [Rejection("error_frame", "the PN532 answered with its error frame (syntax error)")]
    if tfi not in (TFI_HOST, TFI_CHIP) or len(body) < 2:
        return [Rejection("bad_tfi", f"frame body {body.hex(' ')}")]
    frame = Frame(tfi, body[1], body[2:])
    if tfi == TFI_CHIP and frame.command == IN_LIST_PASSIVE_TARGET + 1:
        return [frame, *targets_106a(frame.params)]
    return [frame]


def targets_106a(params: bytes) -> list[object]:
    """Tags from the data of an InListPassiveTarget response for 106 kbps type A.

    Layout: ``NbTg`` then per target ``Tg SENS_RES(2) SEL_RES NFCIDLength NFCID… [ATS]``; the ATS
    (its first byte counts itself) is present when SEL_RES says the card speaks ISO/IEC 14443-4.
    """
    if not params:
        return [Rejection("bad_target_data", "empty InListPassiveTarget response")]
    count = params[0]
    if count > 2:
        return [Rejection("bad_target_data", f"{count} targets reported, the PN532 handles at most 2")]
    out: list[object] = []
    pos = 1
    for _ in range(count):
        if len(params) < pos + 5:
            return [*out, Rejection("bad_target_data", f"target truncated: {params.hex(' ')}")]
        sel_res, uid_len = params[pos + 3], params[pos + 4]
        uid = params[pos + 5 : pos + 5 + uid_len]
        if uid_len not in (4, 7, 10) or len(uid) != uid_len:
            return [*out, Rejection("bad_target_data", f"NFCID length {uid_len}: {params.hex(' ')}")]
        pos += 5 + uid_len
        if sel_res & 0x20:
            if len(params) <= pos or params[pos] == 0 or len(params) < pos + params[pos]:
                return [*out, Rejection("bad_target_data", f"ATS truncated: {params.hex(' ')}")]
            pos += params[pos]
        out.append(Tag(uid.hex().upper()))
    return out
