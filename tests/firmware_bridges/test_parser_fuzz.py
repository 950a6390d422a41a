"""Random and mangled input never raises, and how bytes are split into reads never changes the tags."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridges.readers import READER_KINDS, Rejection, Tag, make_parser, pn532

REAL = {
    "rdm6300": [b"\x0267003B51C6CB\x03", b"\x02100086F44426\x03", b"\x0202004DB005FC\x03"],
    "pn532": [
        bytes.fromhex("00 00 FF 00 FF 00"),
        bytes.fromhex("00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 07 8C FC 4F F0 00"),
        bytes.fromhex("00 00 FF 03 FD D5 4B 00 E0 00"),
        bytes.fromhex("01 00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 5C BB E5 D5 FD 00"),
    ],
    "lines": [b"Card UID: 45 C5 25 83\r\n", b"EDBA996\n", b"Card SAK: 08\n"],
    "wiegand": [b"10001010100111110000100100\n", b"00000000100101101001101001\r\n"],
}

# Streams mixing real frames with random bytes, so the parsers meet near-valid input, not only noise.
streams = st.sampled_from(READER_KINDS).flatmap(
    lambda kind: st.tuples(
        st.just(kind),
        st.lists(st.one_of(st.sampled_from(REAL[kind]), st.binary(max_size=40)), max_size=12).map(b"".join),
        st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=30),
    )
)


def feed_in_chunks(kind: str, data: bytes, sizes: list[int]) -> list[object]:
    parser = make_parser(kind)
    events: list[object] = []
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        events += parser.feed(data[pos : pos + size])
        pos += size
        i += 1
    return events


@pytest.mark.parametrize("kind", READER_KINDS)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600))
def test_parser_random_bytes_never_raise_and_yield_only_tags_or_rejections(kind: str, data: bytes) -> None:
    allowed = (Tag, Rejection, pn532.Ack, pn532.Nack, pn532.Frame) if kind == "pn532" else (Tag, Rejection)
    for event in make_parser(kind).feed(data):
        assert isinstance(event, allowed)
        if isinstance(event, Rejection):
            assert event.reason and event.reason.isidentifier()


@settings(max_examples=400, deadline=None)
@given(stream=streams)
def test_parser_tags_do_not_depend_on_how_reads_split_the_stream(
    stream: tuple[str, bytes, list[int]],
) -> None:
    kind, data, sizes = stream
    whole = [e for e in make_parser(kind).feed(data) if isinstance(e, Tag)]
    chunked = [e for e in feed_in_chunks(kind, data, sizes) if isinstance(e, Tag)]
    assert chunked == whole


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(READER_KINDS), junk=st.binary(max_size=60))
def test_parser_recovers_a_real_frame_after_random_garbage(kind: str, junk: bytes) -> None:
    # A line-based reader needs the garbage's line ended before the next frame starts; a reader that
    # keeps repeating its frame (as real ones do) is recovered even if the garbage opened a long frame.
    separator = b"\n" if kind in ("lines", "wiegand") else b""
    good = REAL[kind][1] if kind == "pn532" else REAL[kind][0]
    expected = [e for e in make_parser(kind).feed(good) if isinstance(e, Tag)]
    events = make_parser(kind).feed(junk + separator + good * 20)
    assert [e for e in events if isinstance(e, Tag)][-1:] == expected
