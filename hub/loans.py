"""The lending desk: reader scans become check-outs and returns, custody goes out on MQTT, and loan
notices (due soon, overdue, escalation, waitlist) go out on schedule.

Loans live in the store. The schedule is derived from them: apscheduler date jobs, one per
(loan, notice kind), rebuilt from the store at start-up and after every loan change, so reminders
survive restarts and are sent once (sent notices are recorded in the store).

Every operation asks the permission function (``hub.domain.permissions.may``) before it acts.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from hub.domain import lending, maintenance
from hub.domain.livestate import ScanRecord
from hub.domain.model import Action, Loan, LoanState, Relation, RelationKind, Resident, Thing
from hub.domain.permissions import may
from hub.domain.privacy import public_pseudonym
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
from hub.domain.trust import TrustRecord, explain, tier, trust_record
from hub.storage.directory import Directory, DirectoryError
from hub.telemetry import Telemetry

log = logging.getLogger(__name__)

Publish = Callable[[str, str, int, bool], None]

#: loans the desk keeps an eye on
OPEN = (LoanState.REQUESTED, LoanState.RESERVED, LoanState.OUT, LoanState.OVERDUE)
_NOTICE_TEXT = {
    "due_soon": "{thing} is due back {due}.",
    "overdue": "{thing} was due back {due} and has not been returned.",
    "escalation": "{thing} is long overdue (due {due}); the stewards have been told.",
    "waitlist_available": "{thing} is back and you are first on its waitlist.",
}


#: an unrelated resident: the audience of the custody topic
_ANY_NEIGHBOR = Resident(id="", pseudonym="any neighbor")


class PermissionDenied(Exception):
    """The permission function said no."""

    reason = "forbidden"


class LendingDesk:
    def __init__(
        self,
        directory: Directory,
        publish: Publish,
        telemetry: Telemetry,
        *,
        base_topic: str = "neighborhood",
        readers: Mapping[str, ReaderMode] | None = None,
        default_mode: ReaderMode = ReaderMode.LEND,
        clock: Callable[[], float] = time.time,
        max_pending_scans: int = 1000,
        remind_before_s: float = lending.DAY_S,
        escalate_after_s: float = 3 * lending.DAY_S,
    ) -> None:
        self.directory = directory
        self.publish = publish
        self.telemetry = telemetry
        self.base = base_topic
        self.readers = dict(readers or {})
        self.default_mode = default_mode
        self.clock = clock
        self._sessions: dict[str, ReaderSession] = {}
        self._scans: queue.Queue[ScanRecord | None] = queue.Queue(maxsize=max_pending_scans)
        self._lock = threading.RLock()  # one loan change at a time: conflict checks read then write
        self._thread: threading.Thread | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.outcomes: list[tuple[str, Outcome]] = []  # recent scan outcomes, for the dashboard
        self.stewards_of: Callable[[str], list[str]] = self._stewards
        #: told when a loan becomes overdue and when a loan is returned (thing id, loan id): alerting
        self.on_overdue: Callable[[str, str], None] | None = None
        self.on_returned: Callable[[str, str], None] | None = None
        self.remind_before_s = remind_before_s
        self.escalate_after_s = escalate_after_s
        # running hours measured from power readings, for things with a maintenance plan
        self._metered: set[str] = set()
        self._last_power: dict[str, tuple[float, float]] = {}
        self._usage_s: dict[str, float] = {}
        self._usage_lock = threading.Lock()

    # -- life -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.scheduler.start()
        self.run_due()
        self.check_maintenance()
        self.reschedule()
        self.publish_all_custody()
        self._thread = threading.Thread(target=self._scan_loop, name="lending-desk", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._scans.put(None)
            self._thread.join(10)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)

    # -- scans ----------------------------------------------------------------------------------------
    def submit_scan(self, scan: ScanRecord) -> None:
        """From the ingest worker: never blocks; a full queue drops the scan and counts it."""
        try:
            self._scans.put_nowait(scan)
        except queue.Full:
            self.telemetry.drops.labels("lending_scans").inc()

    def _scan_loop(self) -> None:
        while (scan := self._scans.get()) is not None:
            try:
                self.handle_scan(scan)
            except Exception:  # one bad scan must not stop the desk
                log.exception("scan handling failed reader=%s tag=%s", scan.reader, scan.tag)

    def handle_scan(self, scan: ScanRecord) -> Outcome:
        """Apply one scan at a reader: card then tool → check-out; a tool that is out → return."""
        now = self.clock()
        handled = (scan.reader, scan.tag, scan.time)
        with self._lock:
            if self.directory.scan_handled(*handled):
                return self._redelivered(scan)
            session = self._sessions.get(scan.reader)
            if session is None:
                mode = self.readers.get(scan.reader, self.default_mode)
                session = self._sessions[scan.reader] = ReaderSession(scan.reader, mode)
            outcome = session.on_scan(scan.tag, now, self)
            if isinstance(outcome, CheckOutRequested):
                try:
                    self.check_out(
                        outcome.thing,
                        outcome.resident,
                        reader=scan.reader,
                        actor=outcome.resident,
                        scan=handled,
                    )
                except (lending.LendingError, PermissionDenied) as exc:
                    outcome = Denied(exc.reason, str(exc))
                except DirectoryError as exc:
                    if exc.reason != "scan_handled":
                        raise
                    return self._redelivered(scan)
            elif isinstance(outcome, ReturnRequested):
                try:
                    self.check_in(outcome.thing, reader=scan.reader, actor=None, scan=handled)
                except lending.LendingError as exc:
                    outcome = Denied(exc.reason, str(exc))
                except DirectoryError as exc:
                    if exc.reason != "scan_handled":
                        raise
                    return self._redelivered(scan)
        self.outcomes = [*self.outcomes[-49:], (scan.reader, outcome)]
        if isinstance(outcome, Denied):
            log.info("scan denied reader=%s reason=%s", scan.reader, outcome.reason)
        elif not isinstance(outcome, CardAccepted):
            log.info("scan reader=%s outcome=%s", scan.reader, type(outcome).__name__)
        return outcome

    def _redelivered(self, scan: ScanRecord) -> Outcome:
        """A scan the broker delivered again (the hub died before acknowledging it) that changed its
        loan already: nothing happens twice, and the card tapped before it is spent."""
        self._sessions.pop(scan.reader, None)
        self.telemetry.scans_redelivered.inc()
        log.info("scan handled already, delivered again reader=%s", scan.reader)
        outcome = Ignored(scan.tag)
        self.outcomes = [*self.outcomes[-49:], (scan.reader, outcome)]
        return outcome

    # TagLookup, for the reader sessions
    def resident_by_card(self, tag: str) -> str | None:
        return self.directory.resident_by_card(tag)

    def thing_by_tag(self, tag: str) -> str | None:
        return self.directory.thing_by_tag(tag)

    def custody(self, thing: str) -> str | None:
        loan = lending.custody(thing, self.directory.loans(thing=thing, states=OPEN), self.clock())
        return loan.borrower if loan is not None else None

    # -- operations -----------------------------------------------------------------------------------
    def _thing(self, thing_id: str) -> Thing:
        thing = self.directory.thing(thing_id)
        if thing is None:
            raise lending.LendingError("unknown_thing", f"no thing {thing_id!r}")
        return thing

    def _lends(self, thing_id: str) -> Relation | None:
        now = self.clock()
        return next(
            (
                r
                for r in self.directory.relations_of_thing(thing_id, now=now)
                if r.kind == RelationKind.LENDS and r.active(now)
            ),
            None,
        )

    def _stewards(self, thing_id: str) -> list[str]:
        now = self.clock()
        return [
            r.resident
            for r in self.directory.relations_of_thing(thing_id, now=now)
            if r.kind in (RelationKind.STEWARDS,) and r.active(now)
        ]

    def trust(self, resident: str) -> TrustRecord:
        return trust_record(
            resident, self.directory.loans(borrower=resident), self.directory.vouchers_of(resident)
        )

    def explain_trust(self, resident: str) -> str:
        record = self.trust(resident)
        return f"tier {tier(record)}: {explain(record)}"

    def _require(self, resident: str | None, action: Action, thing: Thing) -> None:
        now = self.clock()
        viewer = self.directory.resident(resident) if resident else None
        tier_ = tier(self.trust(resident)) if resident else 0
        relations = self.directory.relations_of_thing(thing.id, now=now)
        if not may(viewer, action, thing, relations, now, trust_tier=tier_):
            raise PermissionDenied(f"{action.value} on {thing.id} is not allowed")

    def _lending_context(self, thing_id: str) -> tuple[Relation, list[Loan]]:
        lends = self._lends(thing_id)
        if lends is None:
            raise lending.LendingError("not_lendable", f"{thing_id} is not offered for lending")
        # BLOCKING includes lost loans: a lost thing is closed to new loans until it turns up
        return lends, self.directory.loans(thing=thing_id, states=lending.BLOCKING)

    def reserve(
        self, borrower: str, thing_id: str, start: float | None = None, days: float | None = None
    ) -> Loan:
        """Reserve a window (or request it, when the owner approves loans)."""
        now = self.clock()
        with self._lock:
            thing = self._thing(thing_id)
            lends, loans = self._lending_context(thing_id)
            loan = lending.request(
                _new_id(),
                thing_id,
                lends,
                borrower,
                start if start is not None else now,
                now,
                loans,
                tier(self.trust(borrower)),
                days,
            )
            self._require(borrower, Action.RESERVE, thing)  # the lending rules gave their reason first
            self.directory.save_loan(loan, actor=borrower, now=now, action=f"loan.{loan.state.value}")
        self.reschedule()
        return loan

    def decide(self, loan_id: str, approve: bool, actor: str) -> Loan:
        now = self.clock()
        with self._lock:
            loan = self._loan(loan_id)
            self._require(actor, Action.MANAGE, self._thing(loan.thing))
            loan = lending.approve(loan, now) if approve else lending.decline(loan, now)
            self.directory.save_loan(loan, actor=actor, now=now, action=f"loan.{loan.state.value}")
        self.reschedule()
        return loan

    def cancel(self, loan_id: str, actor: str) -> Loan:
        now = self.clock()
        with self._lock:
            loan = self._loan(loan_id)
            if actor != loan.borrower:
                self._require(actor, Action.MANAGE, self._thing(loan.thing))
            loan = lending.cancel(loan, now)
            self.directory.save_loan(loan, actor=actor, now=now, action="loan.cancel")
        self.reschedule()
        return loan

    def _loan(self, loan_id: str) -> Loan:
        loan = self.directory.loan(loan_id)
        if loan is None:
            raise lending.LendingError("unknown_loan", f"no loan {loan_id!r}")
        return loan

    def check_out(
        self,
        thing_id: str,
        borrower: str,
        *,
        reader: str | None = None,
        actor: str | None,
        scan: tuple[str, str, float] | None = None,
    ) -> Loan:
        """Hand a thing over: the borrower's reservation when one is due now, else a walk-up loan.
        ``scan`` (reader, tag, time): the scan that asked, marked handled with the loan."""
        now = self.clock()
        with self._lock:
            thing = self._thing(thing_id)
            lends, loans = self._lending_context(thing_id)
            reserved = lending.reservation_to_collect(thing_id, borrower, loans, now)
            if reserved is not None:
                loan = lending.check_out(reserved, now, reader, by=borrower, loans=loans)
            else:
                loan = lending.walk_up(
                    _new_id(), thing_id, lends, borrower, now, loans, tier(self.trust(borrower)), reader
                )
            self._require(borrower, Action.BORROW, thing)  # the lending rules gave their reason first
            self.directory.save_loan(loan, actor=actor, now=now, action="loan.out", scan=scan)
        self.publish_custody(thing_id)
        self.reschedule()
        return loan

    def check_in(
        self,
        thing_id: str,
        *,
        reader: str | None = None,
        actor: str | None,
        scan: tuple[str, str, float] | None = None,
    ) -> Loan:
        """Take a thing back (a tool tapped at a reader, or the web's return button)."""
        now = self.clock()
        with self._lock:
            thing = self._thing(thing_id)
            if actor is not None:
                self._require(actor, Action.RETURN, thing)
            loan = lending.custody(thing_id, self.directory.loans(thing=thing_id, states=OPEN), now)
            if loan is None:
                raise lending.LendingError("not_out", f"{thing_id} is not out")
            loan = lending.check_in(loan, now, reader)
            self.directory.save_loan(loan, actor=actor, now=now, action="loan.return", scan=scan)
        if self.on_returned is not None:
            self.on_returned(thing_id, loan.id)
        self._tell_waitlist(thing_id)
        self.publish_custody(thing_id)
        self.reschedule()
        return loan

    def _tell_waitlist(self, thing_id: str) -> list[lending.Notice]:
        """Tell the first resident waiting that a returned thing is back (once per return)."""
        now = self.clock()
        with self._lock:
            entries = self._waitlist(thing_id)
            loans = self.directory.loans(thing=thing_id)
            if not entries or lending.custody(thing_id, loans, now) is not None:
                return []
            returned = [loan for loan in loans if loan.state is LoanState.RETURNED and loan.returned_at]
            if not returned:
                return []
            last = max(returned, key=lambda loan: loan.returned_at or 0.0)
            notices = lending.on_return(thing_id, entries, now, loan_id=last.id)
            notices = [n for n in notices if self.directory.record_notice(n.loan_id, n.kind, now=now)]
        for notice in notices:
            self._deliver(notice, last)
        return notices

    def _waitlist(self, thing_id: str) -> list[lending.WaitEntry]:
        return [
            lending.WaitEntry(thing_id, resident, since)
            for resident, since in self.directory.waitlist(thing_id)
        ]

    def report(self, loan_id: str, actor: str, *, damage: str | None = None, lost: bool = False) -> Loan:
        now = self.clock()
        with self._lock:
            loan = self._loan(loan_id)
            thing = self._thing(loan.thing)
            self._require(actor, Action.REPORT_DAMAGE, thing)
            if lost:
                loan = lending.report_lost(loan, now)
            if damage:
                loan = lending.report_damage(loan, damage, now)
            self.directory.save_loan(
                loan, actor=actor, now=now, action="loan.lost" if lost else "loan.damage"
            )
        self.publish_custody(loan.thing)
        self.reschedule()
        return loan

    # -- custody on MQTT ------------------------------------------------------------------------------
    def publish_custody(self, thing_id: str) -> None:
        """Retained custody on ``<base>/loans/<thing>``: pseudonyms only, and nothing for private things."""
        thing = self.directory.thing(thing_id)
        topic = f"{self.base}/loans/{thing_id}"
        # The topic's audience is the neighborhood: what any resident without a relation may see.
        if thing is None or not may(_ANY_NEIGHBOR, Action.SEE_CUSTODY, thing, [], self.clock()):
            self.publish(topic, "", 1, True)  # clears earlier custody of a thing now private or retired
            return
        loan = lending.custody(thing_id, self.directory.loans(thing=thing_id, states=OPEN), self.clock())
        body: dict[str, Any] = {"thing": thing_id, "state": "available"}
        if loan is not None:
            borrower = self.directory.resident(loan.borrower)
            body = {
                "thing": thing_id,
                "state": loan.state.value,
                "holder": public_pseudonym(borrower) if borrower else None,
                "since": loan.out_at,
                "due": loan.due,
            }
        self.publish(topic, json.dumps(body), 1, True)

    # -- notices --------------------------------------------------------------------------------------
    def run_due(self) -> list[lending.Notice]:
        """Mark overdue loans and send every notice whose time has come (each once, across restarts)."""
        now = self.clock()
        with self._lock:
            loans = self.directory.loans(states=OPEN)
            for loan in lending.lapse_unclaimed(loans, now):
                self.directory.save_loan(loan, actor=None, now=now, action="loan.lapse")
            for loan in lending.mark_overdue(loans, now):
                self.directory.save_loan(loan, actor=None, now=now, action="loan.overdue")
                self.publish_custody(loan.thing)
                if self.on_overdue is not None:
                    self.on_overdue(loan.thing, loan.id)
            loans = self.directory.loans(states=OPEN)
            by_id = {loan.id: loan for loan in loans}
            notices = lending.notices_due(
                loans,
                now,
                remind_before_s=self.remind_before_s,
                escalate_after_s=self.escalate_after_s,
                sent=self.directory.sent_notices(),
                stewards={loan.thing: tuple(self.stewards_of(loan.thing)) for loan in loans},
            )
            for notice in notices:
                self.directory.record_notice(notice.loan_id, notice.kind, now=now)
        for notice in notices:
            self._deliver(notice, by_id.get(notice.loan_id))
        return notices

    def _deliver(self, notice: lending.Notice, loan: Loan | None) -> None:
        thing = self.directory.thing(loan.thing) if loan else None
        due = datetime.fromtimestamp(loan.due, UTC).strftime("%Y-%m-%d %H:%M UTC") if loan else ""
        text = _NOTICE_TEXT.get(notice.kind, notice.kind).format(
            thing=thing.name if thing else "a thing", due=due
        )
        for resident in notice.to:
            body = {
                "kind": notice.kind,
                "loan": notice.loan_id,
                "thing": loan.thing if loan else None,
                "text": text,
                "time": self.clock(),
            }
            self.publish(f"{self.base}/notices/{resident}", json.dumps(body), 1, False)
        log.info("notice kind=%s loan=%s to=%d", notice.kind, notice.loan_id, len(notice.to))

    def reschedule(self) -> None:
        """Rebuild the notice jobs from the store (cheap: only open loans)."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        now = self.clock()
        with self._lock:
            loans = self.directory.loans(states=OPEN)
            planned = lending.schedule(
                loans, now, remind_before_s=self.remind_before_s, escalate_after_s=self.escalate_after_s
            )
        scheduler.remove_all_jobs()
        # Loans changed by another process (the CLI, a second hub) are picked up within a minute.
        scheduler.add_job(self._resync, "interval", seconds=60, id="resync", coalesce=True)
        for notice in planned:
            scheduler.add_job(
                self.run_due,
                "date",
                run_date=datetime.fromtimestamp(notice.at, UTC),
                id=f"{notice.loan_id}:{notice.kind}",
                replace_existing=True,
                misfire_grace_time=None,
                coalesce=True,
            )

    def _resync(self) -> None:
        self.run_due()
        for thing in self.directory.things():  # returns made by another process (the console)
            if self.directory.waitlist(thing.id):
                self._tell_waitlist(thing.id)
        self.check_maintenance()
        self.reschedule()
        self.publish_all_custody()  # an erased borrower's pseudonym leaves the broker within a minute

    def publish_all_custody(self) -> None:
        for thing in self.directory.things():
            if self._lends(thing.id) is not None:
                self.publish_custody(thing.id)

    # -- maintenance ----------------------------------------------------------------------------------
    def observe_power(self, thing: str, watts: float, at: float) -> None:
        """From the ingest worker, for readings with ``power``: counts running time (no I/O)."""
        if thing not in self._metered:
            return
        with self._usage_lock:
            last = self._last_power.get(thing)
            self._last_power[thing] = (at, watts)
            if last is not None and at > last[0] and last[1] > maintenance.RUNNING_W:
                # each reading counts until the next one, but never across a long gap (device off)
                self._usage_s[thing] = self._usage_s.get(thing, 0.0) + min(
                    at - last[0], maintenance.MAX_GAP_S
                )

    def check_maintenance(self) -> list[tuple[str, str]]:
        """Store measured usage, then tell owners and stewards of maintenance that has come due (once)."""
        now = self.clock()
        with self._usage_lock:
            usage, self._usage_s = self._usage_s, {}
        for thing, seconds in usage.items():
            self.directory.add_usage(thing, seconds / 3600.0)
        told: list[tuple[str, str]] = []
        plans = self.directory.maintenance_plans()
        self._metered = {p.thing for p in plans if p.every_hours_used}
        for stored in plans:
            plan = maintenance.MaintenancePlan(
                stored.thing,
                stored.every_days,
                stored.every_hours_used,
                stored.last_done_at or 0.0,
                stored.last_done_hours or 0.0,
            )
            due = maintenance.due(plan, now, stored.hours_used)
            if due is None:
                continue
            if not self.directory.claim_maintenance_notice(stored.thing, plan.last_done):
                continue  # already told for this interval
            people = [
                r.resident
                for r in self.directory.relations_of_thing(stored.thing, now=now)
                if r.kind in (RelationKind.OWNS, RelationKind.STEWARDS)
            ]
            body = {"kind": "maintenance_due", "thing": stored.thing, "text": due.explain(plan), "time": now}
            for resident in people:
                self.publish(f"{self.base}/notices/{resident}", json.dumps(body), 1, False)
                told.append((resident, stored.thing))
            log.info("maintenance due thing=%s told=%d", stored.thing, len(people))
        return told

    def planned(self) -> list[tuple[str, float]]:
        """(job id, epoch seconds) of every scheduled notice, for the dashboard and tests."""
        if self.scheduler is None:
            return []
        return sorted(
            (job.id, job.next_run_time.timestamp()) for job in self.scheduler.get_jobs() if job.id != "resync"
        )


def _new_id() -> str:
    return secrets.token_urlsafe(8)
