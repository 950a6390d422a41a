"""The card-then-tool sequence at a reader, as a table of scans with times and what each one means."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hub.domain.readers import (
    CardAccepted,
    CheckOutRequested,
    Denied,
    Ignored,
    Outcome,
    ReaderMode,
    ReaderSession,
    ReturnRequested,
)

CARDS = {"C0A1": "ada", "C0B2": "bea"}
TOOLS = {"D1": "drill", "S2": "saw"}
LEND, RETURN_ONLY, CHECKOUT_ONLY = ReaderMode.LEND, ReaderMode.RETURN_ONLY, ReaderMode.CHECKOUT_ONLY


@dataclass
class Neighborhood:
    """Tags and custody as the store would answer them; applies each outcome as the hub would."""

    held: dict[str, str] = field(default_factory=dict)

    def resident_by_card(self, tag: str) -> str | None:
        return CARDS.get(tag)

    def thing_by_tag(self, tag: str) -> str | None:
        return TOOLS.get(tag)

    def custody(self, thing: str) -> str | None:
        return self.held.get(thing)

    def apply(self, outcome: Outcome) -> None:
        if isinstance(outcome, CheckOutRequested):
            self.held[outcome.thing] = outcome.resident
        elif isinstance(outcome, ReturnRequested):
            del self.held[outcome.thing]


def run(mode: ReaderMode, held: dict[str, str], scans: list[tuple[str, float]]) -> list[Outcome]:
    session = ReaderSession("shed", mode)
    world = Neighborhood(dict(held))
    outcomes = []
    for tag, t in scans:
        outcome = session.on_scan(tag, t, world)
        world.apply(outcome)
        outcomes.append(outcome)
    return outcomes


CASES = [
    # (name, mode, things out at the start, scans (tag, seconds), outcomes)
    (
        "card then tool checks out",
        LEND,
        {},
        [("C0A1", 0), ("D1", 5)],
        [CardAccepted("ada"), CheckOutRequested("ada", "drill")],
    ),
    ("tool alone at home needs a card", LEND, {}, [("D1", 0)], [Denied("no_card")]),
    ("tool alone while out returns it", LEND, {"drill": "bea"}, [("D1", 0)], [ReturnRequested("drill")]),
    (
        "tool out after a card is returned by that card",
        LEND,
        {"drill": "bea"},
        [("C0A1", 0), ("D1", 4)],
        [CardAccepted("ada"), ReturnRequested("drill", by="ada")],
    ),
    (
        "tool on the last second of the window checks out",
        LEND,
        {},
        [("C0A1", 0), ("D1", 30)],
        [CardAccepted("ada"), CheckOutRequested("ada", "drill")],
    ),
    (
        "tool after the window is refused",
        LEND,
        {},
        [("C0A1", 0), ("D1", 30.5)],
        [CardAccepted("ada"), Denied("card_expired")],
    ),
    (
        "second card replaces the first",
        LEND,
        {},
        [("C0A1", 0), ("C0B2", 3), ("D1", 6)],
        [CardAccepted("ada"), CardAccepted("bea"), CheckOutRequested("bea", "drill")],
    ),
    (
        "same card again is ignored and waits a full window again",
        LEND,
        {},
        [("C0A1", 0), ("C0A1", 20), ("D1", 45)],
        [CardAccepted("ada"), Ignored("C0A1"), CheckOutRequested("ada", "drill")],
    ),
    (
        "same card after its window expired is a new tap",
        LEND,
        {},
        [("C0A1", 0), ("C0A1", 40), ("D1", 45)],
        [CardAccepted("ada"), CardAccepted("ada"), CheckOutRequested("ada", "drill")],
    ),
    (
        "tool held against the reader after check-out does not return it",
        LEND,
        {},
        [("C0A1", 0), ("D1", 5), ("D1", 5.5), ("D1", 7), ("D1", 9.5)],
        [
            CardAccepted("ada"),
            CheckOutRequested("ada", "drill"),
            Ignored("D1"),
            Ignored("D1"),
            Ignored("D1"),
        ],
    ),
    (
        "tool tapped again deliberately later is returned",
        LEND,
        {},
        [("C0A1", 0), ("D1", 5), ("D1", 20)],
        [CardAccepted("ada"), CheckOutRequested("ada", "drill"), ReturnRequested("drill")],
    ),
    (
        "a card serves one tool: the next tool needs a card again",
        LEND,
        {},
        [("C0A1", 0), ("D1", 5), ("S2", 8)],
        [CardAccepted("ada"), CheckOutRequested("ada", "drill"), Denied("no_card")],
    ),
    (
        "unknown tag is refused and keeps the card waiting",
        LEND,
        {},
        [("C0A1", 0), ("FFFF", 2), ("D1", 4)],
        [CardAccepted("ada"), Denied("unknown_tag"), CheckOutRequested("ada", "drill")],
    ),
    (
        "clock running backwards makes the card stale",
        LEND,
        {},
        [("C0A1", 100), ("D1", 90)],
        [CardAccepted("ada"), Denied("card_expired")],
    ),
    ("return-only reader refuses cards", RETURN_ONLY, {}, [("C0A1", 0)], [Denied("mode_forbids")]),
    (
        "return-only reader takes a tool that is out",
        RETURN_ONLY,
        {"drill": "bea"},
        [("D1", 0)],
        [ReturnRequested("drill")],
    ),
    ("return-only reader refuses a tool at home", RETURN_ONLY, {}, [("D1", 0)], [Denied("not_out")]),
    (
        "checkout-only reader refuses returns",
        CHECKOUT_ONLY,
        {"drill": "bea"},
        [("D1", 0)],
        [Denied("mode_forbids")],
    ),
    (
        "checkout-only reader lends by card then tool",
        CHECKOUT_ONLY,
        {},
        [("C0B2", 0), ("S2", 10)],
        [CardAccepted("bea"), CheckOutRequested("bea", "saw")],
    ),
    (
        "checkout-only reader keeps the card after refusing a tool that is out",
        CHECKOUT_ONLY,
        {"drill": "bea"},
        [("C0A1", 0), ("D1", 3), ("S2", 6)],
        [CardAccepted("ada"), Denied("mode_forbids"), CheckOutRequested("ada", "saw")],
    ),
]


@pytest.mark.parametrize(
    ("mode", "held", "scans", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_scan_sequence(
    mode: ReaderMode, held: dict[str, str], scans: list[tuple[str, float]], expected: list[Outcome]
) -> None:
    got = run(mode, held, scans)
    # Denied details are for people; the table pins the reason codes.
    assert [Denied(o.reason) if isinstance(o, Denied) else o for o in got] == expected


def test_refusals_tell_the_resident_what_to_do() -> None:
    [denied] = run(LEND, {}, [("D1", 0)])
    assert isinstance(denied, Denied) and "card" in denied.detail and "drill" in denied.detail
    [_, expired] = run(LEND, {}, [("C0A1", 0), ("D1", 60)])
    assert isinstance(expired, Denied) and "30 s" in expired.detail


def test_session_shows_whose_card_is_waiting_until_a_tool_uses_it() -> None:
    session = ReaderSession("shed", LEND)
    world = Neighborhood()
    assert session.waiting_for is None
    session.on_scan("C0B2", 0, world)
    assert session.waiting_for == "bea"
    session.on_scan("D1", 5, world)
    assert session.waiting_for is None


def test_card_window_is_configurable_per_reader() -> None:
    session = ReaderSession("gate", LEND, card_window_s=5)
    world = Neighborhood()
    session.on_scan("C0A1", 0, world)
    assert session.on_scan("D1", 6, world) == Denied(
        "card_expired", "tap your card again, then drill within 5 s"
    )
