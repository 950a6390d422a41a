from __future__ import annotations

from firmware_bridges.readers import Rejection, Tag
from firmware_bridges.readers.wiegand import Wiegand26Parser, parse_bits

FRAME = "10001010100111110000100100"  # FC 21, CN 15890


def flip(bits: str, index: int) -> str:
    return bits[:index] + ("1" if bits[index] == "0" else "0") + bits[index + 1 :]


def test_wiegand26_rendered_as_decimal_of_24_data_bits() -> None:
    assert parse_bits(FRAME) == Tag("W26:1392146")  # 21 * 65536 + 15890


def test_wiegand26_bad_even_parity_rejected() -> None:
    assert parse_bits(flip(FRAME, 0)).reason == "bad_parity"
    assert parse_bits(flip(FRAME, 5)).reason == "bad_parity"  # a data bit in the first half


def test_wiegand26_bad_odd_parity_rejected() -> None:
    assert parse_bits(flip(FRAME, 25)).reason == "bad_parity"
    assert parse_bits(flip(FRAME, 20)).reason == "bad_parity"


def test_wiegand_other_lengths_and_decimal_renderings_rejected() -> None:
    assert parse_bits(FRAME[:-1]).reason == "bad_length"
    assert parse_bits("1392146").reason == "not_bits"
    assert parse_bits("021:15890").reason == "not_bits"


def test_wiegand_parser_one_tag_per_line() -> None:
    events = Wiegand26Parser().feed(f"{FRAME}\r\n{flip(FRAME, 3)}\n".encode())
    assert events[0] == Tag("W26:1392146")
    assert isinstance(events[1], Rejection)
