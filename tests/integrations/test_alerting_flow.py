"""Alerts end to end: readings through the real Mosquitto → the engine on the ingest path → the retained
alert topic → the residents related to the thing, on their apprise channel (a real local webhook).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from local_servers import RecordingServer, retained_payload
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto
from waiting import wait_for

from hub.app import Hub
from hub.config import HubConfig
from hub.domain.model import (
    LendPolicy,
    Relation,
    RelationKind,
    Share,
    Thing,
    Visibility,
    WatchSettings,
)

pytestmark = pytest.mark.integration


class StepClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def publish(broker: Mosquitto, thing: str, values: dict) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(f"neighborhood/things/{thing}/state", json.dumps(values), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def hub(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Hub]:
    config = HubConfig.model_validate(
        {
            "mqtt": {"url": mosquitto.url, "client_id": "hub-alerts"},
            "timeseries": {"kind": "embedded", "flush_interval": 0.2},
            "storage": {"path": str(tmp_path / "data")},
            "web": {"enabled": False},
            "alerts": {
                "rules": [
                    {
                        "kind": "threshold",
                        "id": "pm25-test",
                        "measurement": "pm25",
                        "above": 35,
                        "clear_below": 25,
                        "severity": "minor",
                    },
                    {
                        "kind": "rate_of_change",
                        "id": "temp-jump",
                        "measurement": "temperature",
                        "per_s": 60,
                        "max_delta": 5,
                        "severity": "warning",
                    },
                    {"kind": "stale", "id": "silent", "after_s": 1800, "severity": "info", "thing": "air-1"},
                ]
            },
        }
    )
    hub = Hub(config, env={})
    hub.store.migrate()
    yield hub
    hub.stop()


def neighborhood(hub: Hub, hook: RecordingServer) -> dict[str, str]:
    """ada owns the flood sensor and the air sensor; wren watches the flood sensor (derived share) and is
    quiet all day; bob borrows ada's dehumidifier; carol is unrelated. Everyone has a webhook channel."""
    d, now = hub.directory, time.time()
    ada = d.bootstrap_admin("ada", now=now)
    people = {"ada": ada.id}
    for name in ("wren", "bob", "carol", "dee"):
        people[name] = d.add_resident(name, actor=ada.id, now=now).id
    for name, rid in people.items():
        hub.alerting.store.add_channel(rid, "apprise", f"json://{hook.host}:{hook.port}/{name}", now=now)
    things = [
        Thing(
            id="flood-1",
            name="Flood sensor",
            kind="sensor",
            visibility=Visibility.PUBLIC,
            watcher_share=Share.DERIVED,
            derived_from=("water_leak",),
        ),
        Thing(id="air-1", name="Air sensor", kind="sensor", visibility=Visibility.PUBLIC),
        Thing(id="dehumidifier", name="Dehumidifier", kind="device", visibility=Visibility.NEIGHBORS),
        Thing(id="cellar-private", name="Cellar humidity", kind="sensor", visibility=Visibility.PRIVATE),
    ]
    for thing in things:
        d.create_thing(thing, owner=ada.id, actor=ada.id, now=now)
    d.grant(
        Relation(id="", resident=people["wren"], thing="flood-1", kind=RelationKind.WATCHES),
        actor=people["wren"],
        now=now,
    )
    d.grant(
        Relation(
            id="",
            resident=people["dee"],
            thing="flood-1",
            kind=RelationKind.WATCHES,
            watch=WatchSettings(quiet_start=0, quiet_end=24),
        ),
        actor=people["dee"],
        now=now,
    )
    d.grant(
        Relation(
            id="",
            resident=ada.id,
            thing="dehumidifier",
            kind=RelationKind.LENDS,
            policy=LendPolicy(loan_days=3),
        ),
        actor=ada.id,
        now=now,
    )
    return people


def cellar(hook: RecordingServer) -> list[dict]:
    """ada's messages about the private cellar sensor (other rules may fire while the clock moves)."""
    return [m for m in messages_to(hook, "ada") if m["title"].startswith("Cellar humidity")]


def messages_to(hook: RecordingServer, who: str) -> list[dict]:
    return [r.body for r in hook.requests if r.path == f"/{who}"]


def test_a_leak_reaches_the_related_residents_and_clears(
    hub: Hub, mosquitto: Mosquitto, webhook: RecordingServer
) -> None:
    people = neighborhood(hub, webhook)
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)

    publish(mosquitto, "flood-1", {"water_leak": True})
    wait_for(lambda: messages_to(webhook, "ada") and messages_to(webhook, "wren"), 10, "the leak alert")
    [alert] = hub.alerting.open_alerts()
    assert alert.severity.value == "critical" and alert.thing == "flood-1"

    retained = json.loads(retained_payload(mosquitto, f"neighborhood/alerts/{alert.id}") or b"{}")
    assert retained["state"] == "active" and retained["severity"] == "critical"
    assert "water leak" in retained["title"].lower()

    [to_ada] = messages_to(webhook, "ada")
    assert "Flood sensor" in to_ada["title"] and "water leak" in to_ada["title"].lower()
    # critical breaks through dee's quiet hours; the unrelated carol and bob hear nothing
    wait_for(lambda: messages_to(webhook, "dee"), 5, "the critical alert through quiet hours")
    assert messages_to(webhook, "carol") == [] and messages_to(webhook, "bob") == []

    # wren claims it: everyone told sees who is on it
    claimed = hub.alerting.act(alert.id, people["wren"], "claim", "I'm going to check the cellar")
    assert claimed.state.value == "claimed"
    wait_for(lambda: len(messages_to(webhook, "ada")) >= 2, 5, "the claim message")
    assert "wren" in messages_to(webhook, "ada")[-1]["message"]
    wait_for(
        lambda: (
            json.loads(retained_payload(mosquitto, f"neighborhood/alerts/{alert.id}") or b"{}").get(
                "claimed_by"
            )
            == "wren"
        ),
        5,
        "the claim on the alert topic",
    )
    with pytest.raises(Exception, match="may act"):
        hub.alerting.act(alert.id, people["carol"], "acknowledge")  # unrelated: not allowed

    publish(mosquitto, "flood-1", {"water_leak": False})
    wait_for(
        lambda: retained_payload(mosquitto, f"neighborhood/alerts/{alert.id}") is None,
        10,
        "the retained alert to be cleared",
    )
    wait_for(lambda: len(messages_to(webhook, "ada")) >= 3, 5, "the done message")
    assert hub.alerting.open_alerts() == []
    actions = [e.action for e in hub.alerting.store.history(alert.id)]
    assert actions[0] == "opened" and "claimed" in actions and actions[-1] == "cleared"
    sent = [d for d in hub.alerting.store.deliveries(alert.id) if d.state == "sent"]
    assert len(sent) >= 5


def test_threshold_hysteresis_and_a_watcher_without_values(
    hub: Hub, mosquitto: Mosquitto, webhook: RecordingServer
) -> None:
    neighborhood(hub, webhook)
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
    publish(mosquitto, "air-1", {"pm25": 41.0})
    wait_for(lambda: messages_to(webhook, "ada"), 10, "the PM2.5 alert")
    assert "41" in messages_to(webhook, "ada")[0]["message"]
    publish(mosquitto, "air-1", {"pm25": 30.0})  # below 35 but not below 25: still open
    time.sleep(1.0)
    assert [a.thing for a in hub.alerting.open_alerts()] == ["air-1"]
    publish(mosquitto, "air-1", {"pm25": 20.0})
    wait_for(lambda: hub.alerting.open_alerts() == [], 10, "the alert to clear below 25")


def test_custody_aware_alert_reaches_the_current_borrower(
    hub: Hub, mosquitto: Mosquitto, webhook: RecordingServer
) -> None:
    people = neighborhood(hub, webhook)
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
    hub.desk.check_out("dehumidifier", people["bob"], actor=people["bob"])
    publish(mosquitto, "dehumidifier", {"water_leak": True})
    wait_for(
        lambda: messages_to(webhook, "bob") and messages_to(webhook, "ada"), 10, "owner and borrower told"
    )
    assert messages_to(webhook, "carol") == []


def test_reminders_until_acknowledged_and_private_things_stay_off_the_topic(
    hub: Hub, mosquitto: Mosquitto, webhook: RecordingServer
) -> None:
    people = neighborhood(hub, webhook)
    clock = StepClock()
    hub.alerting.clock = clock
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
    publish(mosquitto, "cellar-private", {"water_leak": True})
    wait_for(lambda: cellar(webhook), 10, "the owner told of the private leak")
    [alert] = hub.alerting.open_alerts()
    assert retained_payload(mosquitto, f"neighborhood/alerts/{alert.id}") is None  # not for the neighborhood

    clock.offset = 16 * 60  # a critical alert nobody acknowledged is sent again after 15 minutes
    wait_for(lambda: len(cellar(webhook)) >= 2, 10, "the reminder")
    hub.alerting.act(alert.id, people["ada"], "acknowledge")
    time.sleep(1.0)
    count = len(cellar(webhook))
    clock.offset = 40 * 60
    time.sleep(2.5)
    assert len(cellar(webhook)) == count  # acknowledged: no more reminders


def publish_availability(broker: Mosquitto, thing: str, states: list[str]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.connect(broker.host, broker.port)
    client.loop_start()
    for state in states:
        client.publish(f"neighborhood/things/{thing}/availability", state, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def kinds_open(hub: Hub) -> dict[str, str]:
    return {a.rule: a.thing for a in hub.alerting.open_alerts()}


def test_rate_of_change_and_low_battery(hub: Hub, mosquitto: Mosquitto, webhook: RecordingServer) -> None:
    neighborhood(hub, webhook)
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
    publish(mosquitto, "air-1", {"temperature": 20.0})
    publish(mosquitto, "air-1", {"temperature": 27.5})  # +7.5 within a minute
    wait_for(lambda: kinds_open(hub).get("temp-jump") == "air-1", 10, "the rate-of-change alert")
    publish(mosquitto, "flood-1", {"battery": 12.0})
    wait_for(lambda: kinds_open(hub).get("battery-low") == "flood-1", 10, "the low-battery alert")
    publish(mosquitto, "flood-1", {"battery": 20.0})  # above 15 but not above 25: hysteresis holds
    time.sleep(1.0)
    assert "battery-low" in kinds_open(hub)
    publish(mosquitto, "flood-1", {"battery": 95.0})
    wait_for(lambda: "battery-low" not in kinds_open(hub), 10, "the battery alert to clear")


def test_a_flapping_device_raises_one_offline_alert_and_a_silent_one_goes_stale(
    hub: Hub, mosquitto: Mosquitto, webhook: RecordingServer
) -> None:
    neighborhood(hub, webhook)
    clock = StepClock()
    hub.alerting.clock = clock
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
    publish(mosquitto, "air-1", {"pm25": 5.0})
    publish_availability(mosquitto, "flood-1", ["offline", "online"] * 10 + ["offline"])
    wait_for(lambda: hub.telemetry.value("hub_messages_received_total") >= 22, 10, "the flapping")
    time.sleep(1.5)
    assert "offline" not in kinds_open(hub)  # debounced: nothing yet
    clock.offset = 6 * 60  # offline held past the 5 min debounce
    wait_for(lambda: kinds_open(hub).get("offline") == "flood-1", 10, "one offline alert")
    assert [a.rule for a in hub.alerting.open_alerts()].count("offline") == 1
    clock.offset = 31 * 60  # air-1 silent for more than 30 min
    wait_for(lambda: kinds_open(hub).get("silent") == "air-1", 10, "the stale alert")
    publish(mosquitto, "air-1", {"pm25": 6.0})
    wait_for(lambda: "silent" not in kinds_open(hub), 10, "the stale alert to clear on a reading")


def test_an_overdue_loan_raises_an_alert_that_clears_on_return(
    hub: Hub, mosquitto: Mosquitto, webhook: RecordingServer
) -> None:
    people = neighborhood(hub, webhook)
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
    loan = hub.desk.check_out("dehumidifier", people["bob"], actor=people["bob"])
    hub.desk.clock = lambda: loan.due + 60
    hub.desk.run_due()
    wait_for(lambda: kinds_open(hub).get("loan-overdue") == "dehumidifier", 10, "the overdue alert")
    wait_for(
        lambda: messages_to(webhook, "ada") and messages_to(webhook, "bob"), 10, "lender and borrower told"
    )
    hub.desk.check_in("dehumidifier", actor=people["bob"])
    wait_for(lambda: "loan-overdue" not in kinds_open(hub), 10, "the overdue alert to clear")
