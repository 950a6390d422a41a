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
