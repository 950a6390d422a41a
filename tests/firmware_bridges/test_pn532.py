from __future__ import annotations

from firmware_bridges.readers import Rejection, Tag
from firmware_bridges.readers.pn532 import (
    ACK,
    Ack,
    Frame,
    Nack,
    Pn532Parser,
    build_frame,
    rf_configuration_max_retries,
    targets_106a,
)

CARD = bytes.fromhex("00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 07 8C FC 4F F0 00")
NO_CARD = bytes.fromhex("00 00 FF 03 FD D5 4B 00 E0 00")
I2C_CARD = bytes.fromhex("01 00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 5C BB E5 D5 FD 00")


def chip_frame(data: bytes) -> bytes:
    """A chip→host frame (TFI D5) with correct LCS/DCS, written out here independently of the code."""
    body = b"\xd5" + data
    return b"\x00\x00\xff" + bytes([len(body), 256 - len(body)]) + body + bytes([-sum(body) & 0xFF, 0])


def test_pn532_in_list_passive_target_response_gives_nfcid_hex() -> None:
    events = Pn532Parser().feed(CARD)
    assert events[-1] == Tag("078CFC4F")


def test_pn532_ack_glued_to_no_card_response_is_split_on_start_code() -> None:
    events = Pn532Parser().feed(ACK + NO_CARD)
    assert events == [Ack(), Frame(0xD5, 0x4B, b"\x00")]


def test_pn532_i2c_ready_status_byte_is_skipped_not_counted() -> None:
    assert Pn532Parser().feed(I2C_CARD)[-1] == Tag("5CBBE5D5")
    assert not [e for e in Pn532Parser().feed(I2C_CARD) if isinstance(e, Rejection)]


def test_pn532_bad_dcs_rejected_not_guessed_and_next_frame_parsed() -> None:
    corrupt = bytearray(CARD)
    corrupt[-2] ^= 0x01
    events = Pn532Parser().feed(bytes(corrupt) + NO_CARD)
    assert [e.reason for e in events if isinstance(e, Rejection)] == ["bad_dcs"]
    assert not [e for e in events if isinstance(e, Tag)]
    assert events[-1] == Frame(0xD5, 0x4B, b"\x00")


def test_pn532_bad_lcs_rejected() -> None:
    corrupt = bytearray(CARD)
    corrupt[4] = 0xF3
    events = Pn532Parser().feed(bytes(corrupt))
    assert [e.reason for e in events if isinstance(e, Rejection)] == ["bad_lcs"]
    assert not [e for e in events if isinstance(e, Tag)]


def test_pn532_nack_and_error_frame_recognised() -> None:
    events = Pn532Parser().feed(bytes.fromhex("00 00 FF FF 00 00 00 00 FF 01 FF 7F 81 00"))
    assert events == [Nack(), Rejection("error_frame", events[1].detail)]


def test_pn532_seven_byte_uid_and_ats_of_iso14443_4_card() -> None:
    # DESFire-like: SAK 0x20, 7-byte UID, ATS of 6 bytes (its first byte counts itself)
    data = bytes.fromhex("4B 01 01 03 44 20 07 04 11 22 33 44 55 66 06 75 77 81 02 80")
    assert Pn532Parser().feed(chip_frame(data))[-1] == Tag("04112233445566")


def test_pn532_target_with_impossible_uid_length_rejected() -> None:
    assert targets_106a(bytes.fromhex("01 01 00 04 08 03 AA BB CC")) == [
        Rejection("bad_target_data", "NFCID length 3: 01 01 00 04 08 03 aa bb cc")
    ]


def test_pn532_wrong_baud_garbage_counted_as_noise() -> None:
    events = Pn532Parser().feed(bytes.fromhex("98 80 98 80 1E 66"))
    assert [e.reason for e in events if isinstance(e, Rejection)] == ["noise"]


def test_pn532_frame_builder_checksums_match_hand_computed_frame() -> None:
    # RFConfiguration MaxRetries FF 01 02: D4+32+05+FF+01+02 = 0x20D -> DCS F3
    assert rf_configuration_max_retries() == bytes.fromhex("00 00 FF 06 FA D4 32 05 FF 01 02 F3 00")
    assert build_frame(0x02) == bytes.fromhex("00 00 FF 02 FE D4 02 2A 00")  # GetFirmwareVersion
