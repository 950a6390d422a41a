"""``hub loan|waitlist``: loans from the console, through the lending desk, without a reader.

Every test runs ``hub.cli.main`` in-process against a real store (a SQLite file in tmp_path; the full
loan also on PostgreSQL) and checks what was printed, the exit code and what the store then holds.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from console import Console

from hub.cli import main
from hub.domain.model import LoanState
from hub.storage.directory import Directory
from hub.storage.store import Store

CARD = "45C52583"
DAY = 86400.0


class Hub(Console):
    """``hub ... --config FILE`` in this process, with the helpers these tests share."""

    def join(self, *pseudonyms: str) -> None:
        for pseudonym in pseudonyms:
            code = self.ok("resident", "invite", "--as", "root").strip()
            self.ok("resident", "join", code, pseudonym)

    def reserve(self, thing: str, borrower: str, *extra: str) -> str:
        """Reserve and return the new loan's id."""
        out = self.ok("loan", "reserve", thing, "--as", borrower, *extra)
        found = re.search(r"^loan: +(\S+)$", out, re.M)
        assert found, out
        return found.group(1)

    def loans(self, *extra: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.ok("loan", "list", "--json", *extra))
        return rows


def write_config(tmp_path: Path, storage: str) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(f"timeseries:\n  kind: embedded\nstorage:\n{storage}", encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def hub(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Hub:
    return Hub(write_config(tmp_path, f"  path: {data_dir}\n"), capsys)


@pytest.fixture
def directory(data_dir: Path) -> Iterator[Directory]:
    """The same SQLite store the commands write, opened after they ran."""
    s = Store.open(data_dir)
    yield Directory(s)
    s.close()


def neighborhood(hub: Hub, *lend: str) -> None:
    """root (admin), wren (owns drill-1, lends it with ``lend`` options), bob and carol."""
    hub.ok("admin", "create", "root")
    hub.join("wren", "bob", "carol")
    hub.ok("thing", "add", "drill-1", "--name", "Cordless drill", "--kind", "tool", "--owner", "wren")
    hub.ok("thing", "lend", "drill-1", "--as", "wren", *lend)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- a full loan, on SQLite and on PostgreSQL ------------------------------------------------------------


def run_full_loan(hub: Hub) -> str:
    """request → approve → out → return, checking the listing at each step; returns the loan id."""
    neighborhood(hub, "--days", "3", "--approval")
    hub.ok("resident", "card", "bob", CARD)

    before = time.time()
    out = hub.ok("loan", "reserve", "drill-1", "--as", "bob")
    assert "state:  requested: wren approves with hub loan approve" in out
    found = re.search(r"^loan: +(\S+)$", out, re.M)
    assert found is not None
    loan_id = found.group(1)
    window = re.search(r"^window: (\S+) to (\S+)$", out, re.M)
    assert window is not None
    start = datetime.fromisoformat(window.group(1)).timestamp()
    due = datetime.fromisoformat(window.group(2)).timestamp()
    assert before - 1 <= start <= time.time() + 1 and due - start == pytest.approx(3 * DAY, abs=1)
    assert f"due:    {window.group(2)}" in out

    # nobody but the owner approves; the borrower cannot collect before approval
    assert "(forbidden)" in hub.fails("loan", "approve", loan_id, "--as", "bob")
    assert "(not_approved)" in hub.fails("loan", "out", "drill-1", "--as", "bob")
    assert "reserved by wren" in hub.ok("loan", "approve", loan_id, "--as", "wren")

    out = hub.ok("loan", "out", "drill-1", "--as", "bob")
    assert f"drill-1 is out to bob on loan {loan_id}" in out and "only returns scanned at a reader" in out
    [row] = hub.loans("--thing", "drill-1")
    assert row["id"] == loan_id and row["state"] == "out" and row["borrower"] == "bob"
    assert row["lender"] == "wren" and row["out"] and row["out_reader"] is None and row["returned"] is None
    table = hub.ok("loan", "list", "--open")
    assert loan_id in table and "no reader" in table
    assert CARD not in table and CARD not in json.dumps(hub.loans())

    out = hub.ok("loan", "return", "drill-1", "--as", "bob")
    assert f"drill-1 is back from bob (on time), loan {loan_id}" in out
    [row] = hub.loans("--resident", "bob")
    assert row["state"] == "returned" and row["returned"] and row["return_reader"] is None
    assert hub.ok("loan", "list", "--open") == "no loans\n"

    audit = json.loads(hub.ok("audit", "--thing", "drill-1", "--json"))
    steps = [entry["action"] for entry in audit if entry["detail"].get("loan") == loan_id]
    assert sorted(steps) == sorted(["loan.requested", "loan.reserved", "loan.out", "loan.return"])
    by = {entry["action"]: entry["actor"] for entry in audit if entry["detail"].get("loan") == loan_id}
    assert by["loan.reserved"] == "wren" and by["loan.out"] == "bob" and by["loan.return"] == "bob"
    return loan_id


def check_full_loan_store(d: Directory, loan_id: str) -> None:
    loan = d.loan(loan_id)
    bob = d.resident_by_pseudonym("bob")
    assert loan is not None and bob is not None
    assert loan.state is LoanState.RETURNED and loan.borrower == bob.id
    assert loan.out_at is not None and loan.returned_at is not None and loan.returned_at >= loan.out_at
    assert loan.out_reader is None and loan.return_reader is None
    # the borrows relation lived exactly as long as the loan was out
    assert not [r for r in d.relations_of_resident(bob.id, now=time.time()) if r.kind == "borrows"]


def test_full_console_loan_from_request_to_return(hub: Hub, directory: Directory) -> None:
    loan_id = run_full_loan(hub)
    check_full_loan_store(directory, loan_id)


def test_full_console_loan_on_postgresql(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    loan_id = run_full_loan(Hub(write_config(tmp_path, f"  url: {postgres_url}\n"), capsys))
    s = Store(postgres_url)
    try:
        check_full_loan_store(Directory(s), loan_id)
    finally:
        s.close()


# -- refusals ----------------------------------------------------------------------------------------------


def test_overlapping_reservation_is_refused_as_conflict(hub: Hub) -> None:
    neighborhood(hub, "--days", "2", "--buffer-hours", "2")
    first = hub.reserve("drill-1", "bob")
    tomorrow = iso(time.time() + DAY)
    err = hub.fails("loan", "reserve", "drill-1", "--as", "carol", "--start", tomorrow)
    assert err.endswith("(conflict)\n") and "is booked from" in err and "2 h between loans" in err
    # a window after the first one and its buffer is free
    later = hub.reserve("drill-1", "carol", "--start", iso(time.time() + 3 * DAY), "--days", "1")
    assert {row["id"]: row["state"] for row in hub.loans()} == {first: "reserved", later: "reserved"}


def test_borrower_outside_the_approved_list_is_refused_and_told_the_policy(hub: Hub) -> None:
    neighborhood(hub, "--who", "list", "--approved", "carol")
    err = hub.fails("loan", "reserve", "drill-1", "--as", "bob")
    assert err.startswith("hub: you cannot borrow drill-1: its owner lends it only to residents on")
    assert err.endswith("(not_eligible)\n")
    assert "(not_eligible)" in hub.fails("loan", "out", "drill-1", "--as", "bob")
    assert "(forbidden)" in hub.fails("waitlist", "join", "drill-1", "--as", "bob")
    assert hub.loans() == []
    hub.reserve("drill-1", "carol")


def test_reserving_with_a_bad_start_or_length_names_the_problem(hub: Hub) -> None:
    neighborhood(hub, "--days", "3")
    assert "not an ISO date or time" in hub.fails(
        "loan", "reserve", "drill-1", "--as", "bob", "--start", "soon"
    )
    past = iso(time.time() - DAY)
    assert "(bad_window)" in hub.fails("loan", "reserve", "drill-1", "--as", "bob", "--start", past)
    assert "at most 3 days (bad_window)" in hub.fails(
        "loan", "reserve", "drill-1", "--as", "bob", "--days", "4"
    )


def test_owner_cannot_borrow_their_own_thing(hub: Hub) -> None:
    neighborhood(hub)
    assert "(own_thing)" in hub.fails("loan", "reserve", "drill-1", "--as", "wren")
    assert "(own_thing)" in hub.fails("loan", "out", "drill-1", "--as", "wren")


def test_returning_a_thing_at_home_is_refused(hub: Hub) -> None:
    neighborhood(hub)
    assert hub.fails("loan", "return", "drill-1", "--as", "wren") == "hub: drill-1 is not out (not_out)\n"


def test_cancelled_reservation_frees_the_window(hub: Hub) -> None:
    neighborhood(hub)
    loan_id = hub.reserve("drill-1", "bob")
    assert "(forbidden)" in hub.fails("loan", "cancel", loan_id, "--as", "carol")
    assert f"loan {loan_id} of drill-1: cancelled by bob" in hub.ok("loan", "cancel", loan_id, "--as", "bob")
    assert "(bad_state)" in hub.fails("loan", "cancel", loan_id, "--as", "bob")
    hub.reserve("drill-1", "carol")


def test_owner_declines_a_request(hub: Hub) -> None:
    neighborhood(hub, "--approval")
    loan_id = hub.reserve("drill-1", "bob")
    assert "declined by wren" in hub.ok("loan", "decline", loan_id, "--as", "wren")
    assert hub.loans("--open") == []
    assert "(bad_state)" in hub.fails("loan", "approve", loan_id, "--as", "wren")


def test_unknown_loan_id_is_refused(hub: Hub) -> None:
    neighborhood(hub)
    assert hub.fails("loan", "approve", "nope", "--as", "wren") == (
        "hub: no loan 'nope' that wren may see (unknown_loan)\n"
    )


# -- private things stay unknown ---------------------------------------------------------------------------


def test_private_thing_is_answered_like_a_missing_one(hub: Hub) -> None:
    neighborhood(hub)
    hub.ok("thing", "add", "safe-1", "--name", "Wall safe", "--kind", "tool", "--owner", "wren",
           "--visibility", "private")  # fmt: skip
    hub.ok("thing", "lend", "safe-1", "--as", "wren")
    hub.ok("relation", "grant", "carol", "stewards", "safe-1", "--as", "wren")
    carols = hub.reserve("safe-1", "carol")  # a related resident may borrow it

    for command in (
        ("loan", "reserve", "{}", "--as", "bob"),
        ("loan", "out", "{}", "--as", "bob"),
        ("loan", "return", "{}", "--as", "bob"),
        ("waitlist", "join", "{}", "--as", "bob"),
        ("waitlist", "leave", "{}", "--as", "bob"),
        ("waitlist", "show", "{}", "--as", "bob"),
        ("loan", "list", "--thing", "{}", "--as", "bob"),
    ):
        hidden = hub.fails(*(part.format("safe-1") for part in command))
        missing = hub.fails(*(part.format("no-such-thing") for part in command))
        assert hidden == missing.replace("no-such-thing", "safe-1"), command
        assert hidden == "hub: no thing with id 'safe-1' that bob may see (unknown_thing)\n"

    hidden = hub.fails("loan", "cancel", carols, "--as", "bob")
    assert hidden == hub.fails("loan", "cancel", "XXXX", "--as", "bob").replace("XXXX", carols)
    assert "safe-1" not in hidden
    assert hub.loans("--as", "bob") == []
    assert [row["id"] for row in hub.loans("--as", "carol")] == [carols]
    assert [row["id"] for row in hub.loans()] == [carols]  # the console operator sees everything


# -- waitlist ----------------------------------------------------------------------------------------------


def test_waitlist_join_show_leave(hub: Hub) -> None:
    neighborhood(hub)
    hub.join("dave")
    hub.ok("loan", "out", "drill-1", "--as", "bob")
    assert hub.ok("waitlist", "show", "drill-1") == "nobody is waiting for drill-1\n"
    assert "carol is number 1 on the waitlist of drill-1" in hub.ok(
        "waitlist", "join", "drill-1", "--as", "carol"
    )
    assert "dave is number 2" in hub.ok("waitlist", "join", "drill-1", "--as", "dave")
    assert hub.fails("waitlist", "join", "drill-1", "--as", "carol") == (
        "hub: carol is already on the waitlist of drill-1 (already_waiting)\n"
    )
    shown = hub.ok("waitlist", "show", "drill-1", "--as", "bob").splitlines()
    assert [line.split()[:2] for line in shown] == [["#", "PSEUDONYM"], ["1", "carol"], ["2", "dave"]]

    out = hub.ok("loan", "return", "drill-1", "--as", "bob")
    assert "first on the waitlist: carol" in out

    assert "carol left the waitlist of drill-1" in hub.ok("waitlist", "leave", "drill-1", "--as", "carol")
    assert hub.fails("waitlist", "leave", "drill-1", "--as", "carol") == (
        "hub: carol is not on the waitlist of drill-1 (not_waiting)\n"
    )
    shown = hub.ok("waitlist", "show", "drill-1").splitlines()
    assert [line.split()[1] for line in shown[1:]] == ["dave"]
    audit = json.loads(hub.ok("audit", "--thing", "drill-1", "--json"))
    waits = [(e["action"], e["about"]) for e in audit if e["action"].startswith("waitlist.")]
    assert sorted(waits) == [
        ("waitlist.join", "carol"),
        ("waitlist.join", "dave"),
        ("waitlist.leave", "carol"),
    ]


# -- reports -----------------------------------------------------------------------------------------------


def test_damage_report_is_stored_and_listed(hub: Hub, directory: Directory) -> None:
    neighborhood(hub)
    hub.ok("loan", "out", "drill-1", "--as", "bob")
    [row] = hub.loans()
    assert row["damage"] is None
    assert "(empty_report)" in hub.fails("loan", "report", row["id"], "--as", "bob", "--damage", "  ")
    assert "(forbidden)" in hub.fails("loan", "report", row["id"], "--as", "carol", "--damage", "bent")

    out = hub.ok("loan", "report", row["id"], "--as", "bob", "--damage", "chuck wobbles")
    assert f"loan {row['id']} of drill-1: reported damaged: chuck wobbles by bob" in out
    [row] = hub.loans()
    assert row["damage"] == "chuck wobbles" and row["state"] == "out"
    assert "chuck wobbles" in hub.ok("loan", "list")
    loan = directory.loan(row["id"])
    assert loan is not None and loan.damage == "chuck wobbles"
    audit = json.loads(hub.ok("audit", "--thing", "drill-1", "--json"))
    assert [e["detail"]["damage"] for e in audit if e["action"] == "loan.damage"] == ["chuck wobbles"]


def test_lost_report_is_stored_and_listed(hub: Hub) -> None:
    neighborhood(hub)
    hub.ok("loan", "out", "drill-1", "--as", "bob")
    [row] = hub.loans()
    out = hub.ok("loan", "report", row["id"], "--as", "wren", "--lost")
    assert f"loan {row['id']} of drill-1: reported lost by wren" in out
    assert [r["state"] for r in hub.loans()] == ["lost"]


def test_lost_thing_cannot_be_reserved_until_it_turns_up(hub: Hub) -> None:
    neighborhood(hub)
    hub.ok("loan", "out", "drill-1", "--as", "bob")
    [row] = hub.loans()
    hub.ok("loan", "report", row["id"], "--as", "wren", "--lost")
    assert "(conflict)" in hub.fails("loan", "reserve", "drill-1", "--as", "carol")


def test_report_needs_damage_or_lost() -> None:
    with pytest.raises(SystemExit) as info:
        main(["loan", "report", "L1", "--as", "bob", "--config", "hub.yaml"])
    assert info.value.code == 2


# -- help --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        *(
            ["loan", c]
            for c in ("reserve", "approve", "decline", "cancel", "out", "return", "report", "list")
        ),
        *(["waitlist", c] for c in ("join", "leave", "show")),
    ],
)
def test_every_loan_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert f"usage: hub {' '.join(command)}" in capsys.readouterr().out


def test_changing_commands_say_the_running_hub_picks_them_up(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["loan", "out", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "within a minute" in text and "only returns scanned at a reader count for trust" in text


def test_the_borrower_sees_the_lenders_contact_only_while_the_loan_runs(hub: Hub) -> None:
    hub.ok("admin", "create", "root")
    code = hub.ok("resident", "invite", "--as", "root").strip()
    hub.ok("resident", "join", code, "wren", "--contact", "email:wren@example.org")
    hub.join("bob", "carol")
    hub.ok("thing", "add", "drill-1", "--name", "Cordless drill", "--kind", "tool", "--owner", "wren")
    hub.ok("thing", "lend", "drill-1", "--as", "wren")
    contact = "contact:    wren: email: wren@example.org"

    assert contact not in hub.ok("thing", "show", "drill-1", "--as", "bob")
    hub.ok("loan", "out", "drill-1", "--as", "bob")
    assert contact in hub.ok("thing", "show", "drill-1", "--as", "bob")
    assert contact not in hub.ok("thing", "show", "drill-1", "--as", "carol")  # no relation, no contact
    hub.ok("loan", "return", "drill-1", "--as", "bob")
    assert contact not in hub.ok("thing", "show", "drill-1", "--as", "bob")
