from __future__ import annotations

from firmware_bridges.readers import Rejection, Tag
from firmware_bridges.readers.rdm6300 import Rdm6300Parser

GOOD = b"\x0267003B51C6CB\x03"  # library test vector, XOR checks
GOOD_2 = b"\x02100086F44426\x03"
BAD_CHECKSUM = b"\x0202004DB005FC\x03"  # clone reader output: computed FA, sent FC


def tags(events: list[object]) -> list[str]:
    return [e.id for e in events if isinstance(e, Tag)]


def reasons(events: list[object]) -> list[str]:
    return [e.reason for e in events if isinstance(e, Rejection)]


def test_rdm6300_tag_is_the_five_data_bytes_without_checksum() -> None:
    assert Rdm6300Parser().feed(GOOD) == [Tag("67003B51C6")]


def test_rdm6300_bad_checksum_rejected_not_guessed() -> None:
    events = Rdm6300Parser().feed(BAD_CHECKSUM)
    assert tags(events) == []
    assert reasons(events) == ["bad_checksum"]


def test_rdm6300_repeated_frames_each_decoded_for_the_debouncer() -> None:
    assert tags(Rdm6300Parser().feed(GOOD * 5)) == ["67003B51C6"] * 5


def test_rdm6300_resyncs_on_start_byte_after_garbage_and_mid_frame_start() -> None:
    stream = b"SomeThingCrappy\xc3\x9a" + GOOD[6:] + GOOD + b"\x0268003B51C6CBDA\x03" + GOOD_2
    events = Rdm6300Parser().feed(stream)
    assert tags(events) == ["67003B51C6", "100086F444"]
    assert "noise" in reasons(events)
    assert "bad_frame" in reasons(events)  # the too-long frame


def test_rdm6300_frame_split_across_reads_is_completed() -> None:
    parser = Rdm6300Parser()
    assert parser.feed(GOOD[:5]) == []
    assert parser.feed(GOOD[5:]) == [Tag("67003B51C6")]


def test_rdm6300_truncated_frame_rejected_and_next_frame_kept() -> None:
    parser = Rdm6300Parser()
    events = parser.feed(GOOD[:8]) + parser.feed(GOOD_2)
    assert tags(events) == ["100086F444"]
    assert reasons(events) == ["truncated_frame"]


def test_rdm6300_non_hex_characters_rejected() -> None:
    events = Rdm6300Parser().feed(b"\x0267003B51G6CB\x03")
    assert reasons(events) == ["not_hex"]


def test_rdm6300_lowercase_hex_accepted_and_uppercased() -> None:
    assert Rdm6300Parser().feed(b"\x0267003b51c6cb\x03") == [Tag("67003B51C6")]
