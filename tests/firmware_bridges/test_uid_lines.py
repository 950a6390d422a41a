from __future__ import annotations

import pytest

from firmware_bridges.readers import Rejection, Tag
from firmware_bridges.readers.lines import UidLineParser, parse_uid_line


@pytest.mark.parametrize(
    "line",
    [
        "Card UID: 45 C5 25 83",
        "UID: 45:C5:25:83",
        "uid=45-c5-25-83",
        "45C52583",
        "45 C5 25 83",
        "0x45 0xC5 0x25 0x83",
        "UID Value: 0x45 0xC5 0x25 0x83",
    ],
)
def test_uid_line_formats_sketches_print_give_the_same_tag(line: str) -> None:
    assert parse_uid_line(line) == Tag("45C52583")


@pytest.mark.parametrize("line", ["EDBA996", "ac8c5ea", "UID: ED B A9 96", "Card UID: 45 C 25 83"])
def test_uid_line_with_dropped_leading_zero_rejected_not_guessed(line: str) -> None:
    result = parse_uid_line(line)
    assert isinstance(result, Rejection)
    assert result.reason in {"odd_length", "dropped_leading_zero"}


@pytest.mark.parametrize("line", ["Card SAK: 08", "PICC type: MIFARE 1KB", "Scan PICC to see UID, SAK..."])
def test_uid_line_other_sketch_output_is_not_a_uid(line: str) -> None:
    assert parse_uid_line(line) == Rejection("not_uid", parse_uid_line(line).detail)


def test_uid_line_decimal_print_rejected() -> None:
    assert isinstance(parse_uid_line("UID: 09 015 16 240"), Rejection)


def test_uid_line_mixed_separators_rejected() -> None:
    assert isinstance(parse_uid_line("45:C5 25-83"), Rejection)


def test_uid_lines_split_on_any_line_ending_across_reads() -> None:
    parser = UidLineParser()
    events = parser.feed(b"Card UID: 45 C5 25 83\r") + parser.feed(b"\nDEADBEEF\nCAFE")
    assert events == [Tag("45C52583"), Tag("DEADBEEF")]
    assert parser.feed(b"BABE\r\n") == [Tag("CAFEBABE")]


def test_uid_lines_overlong_line_rejected_once_then_parsing_resumes() -> None:
    parser = UidLineParser()
    events = parser.feed(b"A" * 1000) + parser.feed(b"B" * 1000 + b"\n45C52583\n")
    assert [e.reason for e in events if isinstance(e, Rejection)] == ["line_too_long"]
    assert events[-1] == Tag("45C52583")


def test_uid_lines_non_ascii_rejected() -> None:
    assert [e.reason for e in UidLineParser().feed("UID: ÄÖ\n".encode())] == ["not_text"]
