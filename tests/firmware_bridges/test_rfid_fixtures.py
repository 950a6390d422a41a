"""Every captured frame in the shared rfid_serial.json, through the parser of its reader.

Expectations are derived from each entry's own description (``meaning``, ``checksum_valid``), not
from the parsers, and every entry must be claimed by one of the cases below.
"""

from __future__ import annotations

import re

import pytest
from rfid_fixtures import load_rfid_fixtures

from firmware_bridges.readers import Rejection, Tag, make_parser, pn532
from firmware_bridges.readers.wiegand import parse_bits

ENTRIES = load_rfid_fixtures()


def _ids(entry: dict) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "-", entry["payload"][:24]).strip("-")


def _feed_whole_and_bytewise(kind: str, data: bytes) -> tuple[list[object], list[object]]:
    """Events from one feed, and the same bytes fed one at a time (must agree, see _same)."""
    whole = make_parser(kind).feed(data)
    parser = make_parser(kind)
    bytewise = [event for i in range(len(data)) for event in parser.feed(data[i : i + 1])]
    assert _same(whole) == _same(bytewise)
    return whole, bytewise


def _same(events: list[object]) -> list[object]:
    """Events with rejections reduced to their reason; noise split over reads counts once."""
    out: list[object] = []
    for event in events:
        item = event.reason if isinstance(event, Rejection) else event
        if not (item == "noise" and out and out[-1] == "noise"):
            out.append(item)
    return out


def _tags(events: list[object]) -> list[str]:
    return [e.id for e in events if isinstance(e, Tag)]


def _is_rdm6300(entry: dict) -> bool:
    return "RDM6300" in entry["topic"]


def _is_pn532(entry: dict, direction: str) -> bool:
    return "PN532" in entry["topic"] and entry.get("direction") == direction


def _is_uid_text(entry: dict) -> bool:
    return "Arduino sketch" in entry["topic"] or "UID string" in entry["topic"]


def _is_wiegand(entry: dict) -> bool:
    return "Wiegand" in entry["topic"] or "on_tag" in entry["topic"]


CASES = (_is_rdm6300, _is_uid_text, _is_wiegand)


def test_every_fixture_entry_is_claimed_by_exactly_one_reader_case() -> None:
    for entry in ENTRIES:
        claims = [c.__name__ for c in CASES if c(entry)]
        claims += [d for d in ("PN532->host", "host->PN532") if _is_pn532(entry, d)]
        assert len(claims) == 1, f"entry {entry['payload'][:30]!r} claimed by {claims}"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if _is_rdm6300(e)], ids=_ids)
def test_rdm6300_fixture_frames_give_data_bytes_or_checksum_rejection(entry: dict) -> None:
    whole, _ = _feed_whole_and_bytewise("rdm6300", bytes.fromhex(entry["payload"]))
    if entry["checksum_valid"]:
        version = entry["meaning"]["version_or_customer_byte"].removeprefix("0x")
        card = entry["meaning"]["tag_id_32bit"].split()[0].removeprefix("0x")
        assert whole == [Tag((version + card).upper())]
    else:
        assert whole == [Rejection("bad_checksum", whole[0].detail)]
        assert "computed " + entry["meaning"]["computed"] in whole[0].detail


@pytest.mark.parametrize("entry", [e for e in ENTRIES if _is_pn532(e, "PN532->host")], ids=_ids)
def test_pn532_fixture_responses_parse_to_their_meaning(entry: dict) -> None:
    whole, _ = _feed_whole_and_bytewise("pn532", bytes.fromhex(entry["payload"]))
    meaning = entry["meaning"]
    if "UID" in meaning:
        assert _tags(whole) == [meaning["UID"].replace(" ", "")]
        assert not [e for e in whole if isinstance(e, Rejection)]
    elif meaning.get("frame") == "ACK":
        assert whole == [pn532.Ack()]
    elif not entry["checksum_valid"]:  # wrong baud: noise, never a frame or a tag
        assert [type(e) for e in whole] == [Rejection]
        assert whole[0].reason == "noise"
    else:  # SAMConfiguration / firmware / no-card answers: a frame, no tag
        assert [type(e) for e in whole] == [pn532.Frame]
        assert whole[0].tfi == pn532.TFI_CHIP


@pytest.mark.parametrize("entry", [e for e in ENTRIES if _is_pn532(e, "host->PN532")], ids=_ids)
def test_pn532_commands_the_bridge_sends_are_byte_identical_to_captures(entry: dict) -> None:
    captured = bytes.fromhex(entry["payload"])
    command = entry["meaning"]["command"]
    if "SAMConfiguration" in command:
        assert pn532.WAKEUP + pn532.sam_configuration() == captured
    elif "InListPassiveTarget" in command:
        assert pn532.in_list_passive_target() == captured
    else:
        pytest.fail(f"no builder claims captured command {command!r}")


@pytest.mark.parametrize("entry", [e for e in ENTRIES if _is_uid_text(e)], ids=_ids)
def test_uid_text_fixtures_give_the_uid_or_reject_a_dropped_zero(entry: dict) -> None:
    data = entry["payload"].encode() + b"\r\n"
    whole, _ = _feed_whole_and_bytewise("lines", data)
    if "uid" in entry["meaning"]:
        assert _tags(whole) == [entry["meaning"]["uid"].split()[0]]
    else:  # the reported id lost a leading zero: rejected, and the true id is not guessed either
        assert _tags(whole) == []
        assert [e.reason for e in whole] == ["odd_length"]


@pytest.mark.parametrize("entry", [e for e in ENTRIES if _is_wiegand(e)], ids=_ids)
def test_wiegand_fixtures_give_w26_of_the_24_data_bits(entry: dict) -> None:
    bits = re.search(r"\b[01]{26}\b", entry["payload"] + " " + entry["notes"])
    assert bits, "a 26-bit frame in the payload or the notes"
    meaning = entry["meaning"]
    fc, cn = meaning["facility_code"], meaning["card_number"]
    fc = int(fc.split()[-1]) if isinstance(fc, str) else fc
    cn = int(cn.split()[-1]) if isinstance(cn, str) else cn
    whole, _ = _feed_whole_and_bytewise("wiegand", bits.group().encode() + b"\n")
    assert whole == [Tag(f"W26:{fc * 65536 + cn}")]
    if entry["payload"] != bits.group():  # a decimal rendering alone carries no parity: rejected
        assert isinstance(parse_bits(entry["payload"]), Rejection)


# -- what the entries' notes describe beyond the captured bytes --------------------------------------


def _rdm6300_frame(data_hex: str, checksum_hex: str) -> bytes:
    return b"\x02" + (data_hex + checksum_hex).encode() + b"\x03"


def test_rdm6300_design_example_and_lowercase_hex_give_the_uppercase_data_bytes() -> None:
    # DESIGN §5 names 01000734E0: 01^00^07^34^E0 = D2
    assert make_parser("rdm6300").feed(_rdm6300_frame("01000734E0", "D2")) == [Tag("01000734E0")]
    assert make_parser("rdm6300").feed(_rdm6300_frame("01000734e0", "d2")) == [Tag("01000734E0")]


def test_rdm6300_the_forum_posts_altered_raw_frame_is_rejected_not_corrected() -> None:
    [entry] = [e for e in ENTRIES if "hobbycomponents" in e["source"]]
    raw = bytes.fromhex("02 31 30 30 30 32 36 46 34 34 34 32 36 03")  # as posted, "author altered bytes"
    assert raw != bytes.fromhex(entry["payload"])
    whole, _ = _feed_whole_and_bytewise("rdm6300", raw)
    assert [type(e) for e in whole] == [Rejection]
    assert whole[0].reason == "bad_checksum"
    assert "computed 86" in whole[0].detail  # the notes' XOR 86 != 26


def test_rdm6300_library_invalid_vectors_from_the_notes_give_no_tag() -> None:
    valid = bytes.fromhex(ENTRIES[0]["payload"])
    too_long = b"\x0268003B51C6CBDA\x03"
    crappy = "SomeThingCrappyÚTFŐ".encode()
    mid_frame = valid[6:]  # the stream starts inside a frame: resync on the next 0x02
    for data in (too_long, crappy, mid_frame):
        whole, _ = _feed_whole_and_bytewise("rdm6300", data)
        assert _tags(whole) == [], data
        assert whole and all(isinstance(e, Rejection) for e in whole), data
    whole, _ = _feed_whole_and_bytewise("rdm6300", mid_frame + crappy + valid)
    assert _tags(whole) == ["67003B51C6"]


def test_pn532_ack_glued_to_the_no_card_answer_in_one_read_splits_into_both_frames() -> None:
    ack = next(e for e in ENTRIES if e["meaning"].get("frame") == "ACK")
    no_card = next(e for e in ENTRIES if str(e["meaning"].get("NbTg", "")).startswith("0"))
    data = bytes.fromhex(ack["payload"]) + bytes.fromhex(no_card["payload"])
    whole, _ = _feed_whole_and_bytewise("pn532", data)
    assert whole == [pn532.Ack(), pn532.Frame(pn532.TFI_CHIP, 0x4B, b"\x00")]


def test_pn532_i2c_status_byte_before_the_frame_is_not_noise() -> None:
    [entry] = [e for e in ENTRIES if "ready_status_byte" in e["meaning"]]
    whole, _ = _feed_whole_and_bytewise("pn532", bytes.fromhex(entry["payload"]))
    assert whole[1:] == [Tag("5CBBE5D5")]
    assert isinstance(whole[0], pn532.Frame)
    # the comment's decimal uid=15055708 is a 3-byte little-endian rendering, never the tag id
    assert "15055708" not in _tags(whole)


def test_pn532_a_corrupted_target_answer_is_rejected_never_a_tag() -> None:
    [entry] = [e for e in ENTRIES if e["meaning"].get("UID") == "07 8C FC 4F"]
    frame = bytearray(bytes.fromhex(entry["payload"]))
    frame[14] ^= 0x01  # one UID bit flipped on the wire: the DCS no longer matches
    whole, _ = _feed_whole_and_bytewise("pn532", bytes(frame))
    assert _tags(whole) == []
    assert [e.reason for e in whole if isinstance(e, Rejection)][:1] == ["bad_dcs"]


def test_mfrc522_lines_other_than_the_uid_are_not_tags() -> None:
    [entry] = [e for e in ENTRIES if "Card UID" in e["payload"]]
    whole, _ = _feed_whole_and_bytewise("lines", entry["payload"].encode() + b"\n")
    assert whole[0] == Tag("45C52583")
    assert [e.reason for e in whole[1:]] == ["not_uid", "not_uid"]


@pytest.mark.parametrize("entry", [e for e in ENTRIES if _is_wiegand(e)], ids=_ids)
def test_wiegand_any_single_flipped_bit_fails_parity(entry: dict) -> None:
    bits = re.search(r"\b[01]{26}\b", entry["payload"] + " " + entry["notes"])
    assert bits
    good = bits.group()
    for i in range(26):
        flipped = good[:i] + ("1" if good[i] == "0" else "0") + good[i + 1 :]
        result = parse_bits(flipped)
        assert isinstance(result, Rejection) and result.reason == "bad_parity", (i, flipped)


def test_rdm6300_one_bad_frame_is_one_rejection_however_the_reads_cut_it() -> None:
    """The tail of an overlong frame arriving in a later read is part of that frame, not new noise."""
    parser = make_parser("rdm6300")
    first = parser.feed(b"\x0268003B51C6CBD")  # 14 bytes: no end byte where it belongs
    second = parser.feed(b"A\x03")
    third = parser.feed(bytes.fromhex(ENTRIES[0]["payload"]))
    assert [e.reason for e in first] == ["bad_frame"]
    assert second == []
    assert third == [Tag("67003B51C6")]
    assert make_parser("rdm6300").feed(b"junk") == [Rejection("noise", "4 bytes without a start byte 0x02")]
