"""A scan is stored once and changes its loan once, even when the broker delivers it again.

The broker redelivers a QoS 1 scan whose acknowledgement was lost (the hub was killed after the scan was
stored and handled, before the broker heard back). The redelivery carries the same (reader, tag, time):
the store keeps one row, and the lending desk, finding the scan marked in the loan's transaction, does not
hand the tool over (or take it back) a second time. Real SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from hub.domain.livestate import ScanRecord
from hub.domain.model import LendPolicy, Relation, RelationKind, Thing, Visibility
from hub.domain.readers import CardAccepted, CheckOutRequested, Ignored, ReturnRequested
from hub.loans import LendingDesk
from hub.storage.directory import Directory, DirectoryError
from hub.storage.store import MIGRATIONS, Store
from hub.telemetry import Telemetry

T0 = 1_750_000_000.0
CARD, DRILL = "45C52583", "C2994A1B"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'hub.sqlite'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    s = Store(url)
    s.migrate()
    yield s
    s.close()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def lending(store: Store) -> tuple[Directory, str]:
    d = Directory(store)
    ada = d.bootstrap_admin("ada", now=T0 - 100)
    bob = d.add_resident("bob", actor=ada.id, now=T0 - 100)
    d.add_card(bob.id, CARD, actor=bob.id, now=T0 - 100)
    d.create_thing(
        Thing(id="drill", name="drill", kind="tool", visibility=Visibility.NEIGHBORS),
        owner=ada.id,
        actor=ada.id,
        now=T0 - 100,
    )
    d.attach_tag("drill", DRILL, actor=ada.id, now=T0 - 100)
    d.grant(
        Relation("", ada.id, "drill", RelationKind.LENDS, policy=LendPolicy(loan_days=7)),
        actor=ada.id,
        now=T0 - 100,
    )
    return d, bob.id


def desk(directory: Directory, clock: Clock) -> LendingDesk:
    """A desk as a freshly started hub has one: no reader session remembered."""
    return LendingDesk(directory, lambda *_: None, Telemetry(), clock=clock)


def scan(tag: str, at: float) -> ScanRecord:
    return ScanRecord("bench", "native", tag, at)


def loan_steps(store: Store) -> list[str]:
    with store._engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT action FROM audit WHERE action LIKE 'loan.%' ORDER BY id"))
        return [action for (action,) in rows]


def test_a_redelivered_scan_is_one_row(store: Store) -> None:
    s = scan(DRILL, T0)
    store.apply([], [s])
    store.apply([], [s, scan(DRILL, T0 + 1)])  # the same scan again, beside a new one
    assert store.count_scans() == 2
    assert sorted(r.time for r in store.recent_scans()) == [T0, T0 + 1]


def test_redelivered_check_out_and_return_change_the_loan_once(store: Store) -> None:
    directory, bob = lending(store)
    clock = Clock()
    first = desk(directory, clock)
    assert isinstance(first.handle_scan(scan(CARD, T0)), CardAccepted)
    assert first.handle_scan(scan(DRILL, T0 + 2)) == CheckOutRequested(bob, "drill")
    assert first.custody("drill") == bob

    # killed before the acknowledgements: a new hub gets both scans again, then a return tap
    clock.now = T0 + 20
    again = desk(directory, clock)
    assert isinstance(again.handle_scan(scan(CARD, T0)), CardAccepted)  # cards change no loan
    assert again.handle_scan(scan(DRILL, T0 + 2)) == Ignored(DRILL)
    assert again.custody("drill") == bob
    # the card delivered again was spent on that tool: the next tap of the tool is a plain return
    clock.now = T0 + 25
    assert again.handle_scan(scan(DRILL, T0 + 25)) == ReturnRequested("drill", by=None)
    assert again.custody("drill") is None

    # and the return, delivered again, does not lend or return anything
    clock.now = T0 + 40
    third = desk(directory, clock)
    assert third.handle_scan(scan(DRILL, T0 + 25)) == Ignored(DRILL)
    assert third.custody("drill") is None
    assert loan_steps(store) == ["loan.out", "loan.return"]
    assert [loan.state for loan in directory.loans(thing="drill")] == ["returned"]


def test_a_scan_marked_handled_cannot_change_a_second_loan(store: Store) -> None:
    directory, _ = lending(store)
    clock = Clock()
    first = desk(directory, clock)
    first.handle_scan(scan(CARD, T0))
    first.handle_scan(scan(DRILL, T0 + 2))
    (loan,) = directory.loans(thing="drill")
    with pytest.raises(DirectoryError) as caught:
        directory.save_loan(loan, actor=None, now=T0 + 3, action="loan.out", scan=("bench", DRILL, T0 + 2))
    assert caught.value.reason == "scan_handled"
    assert directory.scan_handled("bench", DRILL, T0 + 2)
    assert not directory.scan_handled("bench", DRILL, T0 + 3)
    assert loan_steps(store) == ["loan.out"]  # the refused step left nothing behind


def test_the_migration_keeps_the_first_of_each_stored_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        rows = [("bench", DRILL, T0), ("bench", DRILL, T0), ("bench", CARD, T0), ("bench", DRILL, T0 + 1)]
        for reader, tag, at in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO scans (reader, source, tag, time, received)"
                    " VALUES (:r, 'native', :t, :a, :a)"
                ),
                {"r": reader, "t": tag, "a": at},
            )
    engine.dispose()
    store = Store(url)
    store.migrate()
    try:
        assert store.count_scans() == 3
        store.apply([], [scan(DRILL, T0)])
        assert store.count_scans() == 3
    finally:
        store.close()
