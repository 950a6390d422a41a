"""A whole loan through the real broker: reserve → scan out → reminder → overdue → restart → scan back.

The lending desk's clock is a test clock, so a week passes in a second; everything else is real: Mosquitto,
the hub's ingest path, the SQLite store, the apscheduler schedule.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto
from waiting import wait_for

from hub.app import Hub
from hub.config import HubConfig
from hub.domain.model import Contact, LendPolicy, LoanState, Relation, RelationKind, Thing, Visibility

pytestmark = pytest.mark.integration

DAY = 86400.0
DRILL_TAG = "04A1B2C3"
BOB_CARD = "45C52583"


class StepClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Listener:
    """Collects what the hub publishes on its loans and notices topics."""

    def __init__(self, broker: Mosquitto) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.arrived = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        self.client.on_connect = lambda c, *_: c.subscribe(
            [("neighborhood/loans/#", 1), ("neighborhood/notices/#", 1)]
        )
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with self.arrived:
            self.messages.append((message.topic, message.payload, bool(message.retain)))
            self.arrived.notify_all()

    def wait(self, topic: str, match: dict, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for got_topic, payload, _retain in self.messages:
                    if got_topic == topic and payload:
                        body = json.loads(payload)
                        if all(body.get(k) == v for k, v in match.items()):
                            return body
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no message on {topic} matching {match}; got {self.messages}")
                self.arrived.wait(left)

    def on(self, topic: str) -> list[dict]:
        with self.arrived:
            return [json.loads(p) for t, p, _ in self.messages if t == topic and p]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def scan(broker: Mosquitto, tag: str) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish("neighborhood/readers/workshop/scan", json.dumps({"tag": tag}), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def start_hub(tmp_path: Path, broker: Mosquitto, clock: StepClock) -> Hub:
    config = HubConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": "hub-lending"},
            "timeseries": {"kind": "embedded"},
            "storage": {"path": str(tmp_path / "data")},
            "web": {"enabled": False},
        }
    )
    hub = Hub(config, env={})
    hub.desk.clock = clock
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
    return hub


def test_a_whole_loan_through_the_broker(tmp_path: Path, mosquitto: Mosquitto) -> None:
    clock = StepClock(time.time())
    listener = Listener(mosquitto)
    hub = start_hub(tmp_path, mosquitto, clock)
    try:
        d = hub.directory
        now = clock()
        admin = d.bootstrap_admin("ada", now=now)
        alice = d.redeem_invite(
            d.create_invite(created_by=admin.id, now=now),
            "alice",
            now=now,
            contacts=(Contact("email", "alice@example.org"),),
        )
        bob = d.redeem_invite(d.create_invite(created_by=alice.id, now=now), "bob", now=now)
        d.create_thing(
            Thing(id="drill", name="Makita drill", kind="tool", visibility=Visibility.NEIGHBORS),
            owner=alice.id,
            actor=alice.id,
            now=now,
        )
        d.attach_tag("drill", DRILL_TAG, actor=alice.id, now=now)
        d.grant(
            Relation(
                id="",
                resident=alice.id,
                thing="drill",
                kind=RelationKind.LENDS,
                policy=LendPolicy(loan_days=7),
            ),
            actor=alice.id,
            now=now,
        )
        d.add_card(bob.id, BOB_CARD, actor=bob.id, now=now)

        # reserve
        loan = hub.desk.reserve(bob.id, "drill", start=now)
        assert loan.state == LoanState.RESERVED
        due = loan.due
        assert due == pytest.approx(now + 7 * DAY)

        # scan out: bob taps his card, then the drill's tag
        scan(mosquitto, BOB_CARD)
        scan(mosquitto, DRILL_TAG)
        wait_for(lambda: d.loan(loan.id).state == LoanState.OUT, 10, "the loan to go out")
        wait_for(lambda: len(hub.desk.planned()) == 3, 5, "the loan's notices to be scheduled")
        assert d.loan(loan.id).out_reader == "workshop"
        custody = listener.wait("neighborhood/loans/drill", {"state": "out"})
        assert custody["holder"] == "bob" and custody["due"] == pytest.approx(due)
        assert any(
            r.kind == RelationKind.BORROWS and r.resident == bob.id
            for r in d.relations_of_thing("drill", now=clock())
        )

        # the schedule: a reminder a day before, the overdue notice at due, the escalation after three days
        planned = dict(hub.desk.planned())
        assert planned[f"{loan.id}:due_soon"] == pytest.approx(due - DAY, abs=1)
        assert planned[f"{loan.id}:overdue"] == pytest.approx(due, abs=1)
        assert planned[f"{loan.id}:escalation"] == pytest.approx(due + 3 * DAY, abs=1)

        # nothing is due yet
        assert hub.desk.run_due() == []

        # six days and one hour later: the reminder, to bob only
        clock.now = due - DAY + 3600
        assert [n.kind for n in hub.desk.run_due()] == ["due_soon"]
        reminder = listener.wait(f"neighborhood/notices/{bob.id}", {"kind": "due_soon"})
        assert "Makita drill" in reminder["text"]
        assert listener.on(f"neighborhood/notices/{alice.id}") == []

        # due time passes: overdue, to bob and alice; custody says so
        clock.now = due + 60
        assert [n.kind for n in hub.desk.run_due()] == ["overdue"]
        listener.wait(f"neighborhood/notices/{bob.id}", {"kind": "overdue"})
        listener.wait(f"neighborhood/notices/{alice.id}", {"kind": "overdue"})
        assert d.loan(loan.id).state == LoanState.OVERDUE
        listener.wait("neighborhood/loans/drill", {"state": "overdue"})
    finally:
        hub.stop()

    # the hub restarts: the schedule is rebuilt from the store, nothing is sent twice
    clock.now = due + 120
    hub = start_hub(tmp_path, mosquitto, clock)
    try:
        d = hub.directory
        assert hub.desk.run_due() == []
        assert [job for job, _ in hub.desk.planned()] == [f"{loan.id}:escalation"]

        # scan back: the drill alone, at the reader
        scan(mosquitto, DRILL_TAG)
        wait_for(lambda: d.loan(loan.id).state == LoanState.RETURNED, 10, "the return")
        returned = d.loan(loan.id)
        assert returned.return_reader == "workshop" and returned.returned_at == clock.now
        listener.wait("neighborhood/loans/drill", {"state": "available"})
        assert not any(r.kind == RelationKind.BORROWS for r in d.relations_of_thing("drill", now=clock()))
        wait_for(lambda: hub.desk.planned() == [], 5, "the schedule to empty")

        # trust comes from the verified (scanned) return, which was late
        record = hub.desk.trust(bob.id)
        assert (record.on_time, record.late) == (0, 1)
        assert hub.desk.explain_trust(bob.id).endswith("1 late")

        # the audit log tells the whole story, in order
        actions = [entry.action for entry in d.audit(thing="drill")]
        for expected in ("loan.reserved", "loan.out", "loan.overdue", "loan.return"):
            assert expected in actions, actions
        assert (
            actions.index("loan.reserved")
            < actions.index("loan.out")
            < actions.index("loan.overdue")
            < actions.index("loan.return")
        )
        assert any(a.startswith("relation.") for a in actions)
        assert any(a.startswith("thing.") for a in actions)
        assert {e.action for e in d.audit_for_resident(alice.id)} >= {"loan.out", "loan.return"}
    finally:
        hub.stop()
        listener.close()


def test_a_card_alone_then_an_unknown_tool_is_refused_and_nothing_goes_out(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    clock = StepClock(time.time())
    hub = start_hub(tmp_path, mosquitto, clock)
    try:
        d = hub.directory
        now = clock()
        admin = d.bootstrap_admin("ada", now=now)
        d.create_thing(
            Thing(id="ladder", name="Ladder", kind="tool", visibility=Visibility.NEIGHBORS),
            owner=admin.id,
            actor=admin.id,
            now=now,
        )
        d.attach_tag("ladder", DRILL_TAG, actor=admin.id, now=now)  # owned but not offered for lending
        bob = d.redeem_invite(d.create_invite(created_by=admin.id, now=now), "bob", now=now)
        d.add_card(bob.id, BOB_CARD, actor=bob.id, now=now)
        scan(mosquitto, BOB_CARD)
        scan(mosquitto, "DEADBEEF")
        scan(mosquitto, BOB_CARD)
        scan(mosquitto, DRILL_TAG)
        wait_for(lambda: len(hub.desk.outcomes) >= 4, 10, "four scans handled")
        reasons = [getattr(outcome, "reason", None) for _reader, outcome in hub.desk.outcomes]
        assert reasons[1] == "unknown_tag"
        assert reasons[3] == "not_lendable"
        assert d.loans(thing="ladder") == []
    finally:
        hub.stop()


def test_maintenance_comes_due_by_hours_measured_from_the_power_plug(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    clock = StepClock(time.time())
    listener = Listener(mosquitto)
    hub = start_hub(tmp_path, mosquitto, clock)
    try:
        d = hub.directory
        now = clock()
        ada = d.bootstrap_admin("ada", now=now)
        d.create_thing(
            Thing(id="washer", name="Washing machine", kind="device", visibility=Visibility.NEIGHBORS),
            owner=ada.id,
            actor=ada.id,
            now=now,
        )
        d.set_maintenance("washer", None, 1.0, actor=ada.id, now=now)  # descale every hour of running
        d.maintenance_done("washer", 0.0, actor=ada.id, now=now)
        hub.desk.check_maintenance()  # learns which things are metered

        client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        start = now - 3 * 3600
        # 70 minutes running at ~2 kW, a reading a minute, then standby
        for minute in range(80):
            watts = 2000.0 if minute < 70 else 0.8
            body = {"power": watts, "time": start + minute * 60}
            client.publish("neighborhood/things/washer/state", json.dumps(body), qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        wait_for(lambda: hub.telemetry.value("hub_messages_received_total") >= 80, 10, "80 power readings")

        told = hub.desk.check_maintenance()
        assert told == [(ada.id, "washer")]
        notice = listener.wait(f"neighborhood/notices/{ada.id}", {"kind": "maintenance_due"})
        assert notice["thing"] == "washer"
        plan = d.maintenance("washer")
        assert plan is not None and plan.hours_used == pytest.approx(70 / 60, abs=0.02)
        assert hub.desk.check_maintenance() == []  # told once per interval
    finally:
        hub.stop()
        listener.close()
