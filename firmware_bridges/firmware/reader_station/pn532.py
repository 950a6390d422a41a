"""PN532 over HSU (UART, 115200 8N1) for the reader station; runs under MicroPython and CPython.

Frames (NXP UM0701 §6.2): ``00 00 FF LEN LCS TFI CMD DATA… DCS 00`` with ``LCS = -LEN`` and
``DCS = -Σ(TFI..DATA)`` (mod 256); TFI ``D4`` host→chip, ``D5`` chip→host, and the chip answers
``CMD`` with ``CMD + 1``. ``00 00 FF 00 FF 00`` is ACK, ``00 00 FF FF 00 00`` NACK. The tag id is
the NFCID1 of an InListPassiveTarget (106 kbps type A) answer in uppercase hex (``C2994A1B``), as
the hub-bridge's parser gives it.

``feed`` returns ``(kind, value)`` tuples: ``(ACK, None)``, ``(NACK, None)``, ``(FRAME, (tfi,
command, params))``, ``(TAG, "C2994A1B")`` after its InListPassiveTarget frame, ``(REJECT, reason)``
with the bridge's reasons. Only bytes, ints and str are used, so CPython tests run this very file.
"""

TAG = "tag"
REJECT = "reject"
ACK = "ack"
NACK = "nack"
FRAME = "frame"

START = b"\x00\x00\xff"
ACK_FRAME = b"\x00\x00\xff\x00\xff\x00"
TFI_HOST = 0xD4
TFI_CHIP = 0xD5
TFI_ERROR = 0x7F

SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A

# HSU wake-up from power-down: 0x55 0x55 then zeros long enough for the chip's oscillator to start.
WAKEUP = b"\x55\x55" + bytes(12)
_READY = b"\x01"  # I2C/SPI ready byte; never sent over HSU, but skipped quietly like the bridge does
_MAX_FRAME = 300


def build_frame(command, params=b""):
    """The host→chip normal information frame for ``command``."""
    body = bytes([TFI_HOST, command]) + params
    if len(body) > 255:
        raise ValueError("PN532 command too long for a normal frame")
    length = len(body)
    return START + bytes([length, (-length) & 0xFF]) + body + bytes([(-sum(body)) & 0xFF, 0x00])


def sam_configuration():
    """SAMConfiguration, normal mode (no secure access module): the first command after wake-up."""
    return build_frame(SAM_CONFIGURATION, b"\x01")


def rf_configuration_max_retries(passive_activation=0x02):
    """RFConfiguration MaxRetries with bounded passive activation, so an empty field gets an answer
    (0 targets) instead of silence, and a silent chip can be told from no card."""
    return build_frame(RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, passive_activation]))


def in_list_passive_target():
    """InListPassiveTarget: at most one target, 106 kbps ISO/IEC 14443 type A."""
    return build_frame(IN_LIST_PASSIVE_TARGET, b"\x01\x00")


class Pn532Parser:
    """Incremental parser of chip→host bytes with LCS and DCS checks; resynchronises on ``00 00 FF``.
    Holds at most one frame (``_MAX_FRAME``) plus a possible start code."""

    def __init__(self):
        self._buf = b""
        self._resyncing = False  # after a bad frame, skip quietly to the next start code

    def feed(self, data):
        buf = self._buf + bytes(data)
        out = []
        while True:
            idx = buf.find(START)
            if idx < 0:
                buf = self._skip(buf, len(buf) - _start_prefix_len(buf), out)
                break
            if idx > 0:
                buf = self._skip(buf, idx, out)
            self._resyncing = False
            if len(buf) < 5:
                break
            length, lcs = buf[3], buf[4]
            if length == 0x00 and lcs == 0xFF:
                buf = buf[5:]
                out.append((ACK, None))
                continue
            if length == 0xFF and lcs == 0x00:
                buf = buf[5:]
                out.append((NACK, None))
                continue
            if length == 0xFF and lcs == 0xFF:
                if len(buf) < 8:
                    break
                if (buf[5] + buf[6] + buf[7]) & 0xFF:
                    buf = self._reject(buf, out, "bad_lcs")
                    continue
                length = buf[5] << 8 | buf[6]
                header = 8
            elif (length + lcs) & 0xFF:
                buf = self._reject(buf, out, "bad_lcs")
                continue
            else:
                header = 5
            if length > _MAX_FRAME or length == 0:
                buf = self._reject(buf, out, "bad_length")
                continue
            end = header + length
            if len(buf) < end + 1:
                break
            body = buf[header:end]
            if (sum(body) + buf[end]) & 0xFF:
                buf = self._reject(buf, out, "bad_dcs")
                continue
            buf = buf[end + 1 :]
            out.extend(_interpret(body))
        self._buf = buf
        return out

    def _skip(self, buf, count, out):
        skipped = buf[:count]
        rest = buf[count:]
        if self._resyncing:
            return rest
        if skipped[-1:] == _READY and rest[:3] == START:
            skipped = skipped[:-1]
        if any(b != 0x00 for b in skipped):  # zeros are preambles and postambles
            out.append((REJECT, "noise"))
        return rest

    def _reject(self, buf, out, reason):
        out.append((REJECT, reason))
        self._resyncing = True
        return buf[len(START) :]


def _start_prefix_len(buf):
    """How many trailing bytes could begin a frame (``01 00 00 FF`` or ``00 00 FF``) and must wait."""
    for n in (3, 2, 1):
        if len(buf) >= n:
            tail = buf[-n:]
            if tail == START[:n] or tail == (_READY + START)[:n]:
                return n
    return 0


def _interpret(body):
    tfi = body[0]
    if tfi == TFI_ERROR and len(body) == 1:
        return [(REJECT, "error_frame")]
    if (tfi != TFI_HOST and tfi != TFI_CHIP) or len(body) < 2:
        return [(REJECT, "bad_tfi")]
    frame = (FRAME, (tfi, body[1], body[2:]))
    if tfi == TFI_CHIP and body[1] == IN_LIST_PASSIVE_TARGET + 1:
        out = [frame]
        out.extend(targets_106a(body[2:]))  # no [*a, b] displays: MicroPython lacks PEP 448
        return out
    return [frame]


def targets_106a(params):
    """Events for the data of an InListPassiveTarget answer at 106 kbps type A:
    ``NbTg`` then per target ``Tg SENS_RES(2) SEL_RES NFCIDLength NFCID… [ATS]``."""
    if not params:
        return [(REJECT, "bad_target_data")]
    count = params[0]
    if count > 2:
        return [(REJECT, "bad_target_data")]
    out = []
    pos = 1
    for _ in range(count):
        if len(params) < pos + 5:
            out.append((REJECT, "bad_target_data"))
            return out
        sel_res, uid_len = params[pos + 3], params[pos + 4]
        uid = params[pos + 5 : pos + 5 + uid_len]
        if uid_len not in (4, 7, 10) or len(uid) != uid_len:
            out.append((REJECT, "bad_target_data"))
            return out
        pos += 5 + uid_len
        if sel_res & 0x20:  # ISO/IEC 14443-4 card: an ATS follows, its first byte counts itself
            if len(params) <= pos or params[pos] == 0 or len(params) < pos + params[pos]:
                out.append((REJECT, "bad_target_data"))
                return out
            pos += params[pos]
        out.append((TAG, "".join([f"{b:02X}" for b in uid])))
    return out
