"""Home Assistant delivery against a real Home Assistant 2025.4.4 (one instance for the session, started
by the ``real_homeassistant`` fixture). What Home Assistant holds is read back through its own websocket
API, never from what the hub believes it sent. test_homeassistant.py keeps the recorded-response tests
for the error paths a real instance cannot be made to produce on demand.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from homeassistant_real import RealHomeAssistant
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto
from waiting import wait_for

from hub.app import Hub
from hub.config import HubConfig
from hub.domain.model import Relation, RelationKind, Share, Thing, Visibility
from hub.integrations.delivery import DeliveryError
from hub.integrations.homeassistant import HomeAssistantNotifier

pytestmark = pytest.mark.integration


def fresh_id() -> str:
    """A notification id no other test of the session uses (they share one Home Assistant)."""
    return f"hub_test_{uuid.uuid4().hex[:12]}"


def held(ha: RealHomeAssistant, notification_id: str) -> list[dict[str, Any]]:
    """The notifications Home Assistant holds under ``notification_id`` (at most one when all is well)."""
    return [n for n in ha.notifications() if n["notification_id"] == notification_id]


def test_check_accepts_the_onboarded_token(real_homeassistant: RealHomeAssistant) -> None:
    HomeAssistantNotifier(real_homeassistant.url, real_homeassistant.token).check()


def test_check_with_a_wrong_token_says_relink_and_is_not_retried(
    real_homeassistant: RealHomeAssistant,
) -> None:
    with pytest.raises(DeliveryError) as failed:
        HomeAssistantNotifier(real_homeassistant.url, "not-a-token-home-assistant-issued").check()
    assert failed.value.retryable is False
    assert "token rejected: relink Home Assistant" in failed.value.message
    assert "not-a-token" not in failed.value.message


def test_notify_creates_a_persistent_notification_home_assistant_holds(
    real_homeassistant: RealHomeAssistant,
) -> None:
    notification_id = fresh_id()
    assert held(real_homeassistant, notification_id) == []
    HomeAssistantNotifier(real_homeassistant.url, real_homeassistant.token).notify(
        "Water in the basement", "The flood sensor reports a leak", notification_id
    )
    [notification] = held(real_homeassistant, notification_id)
    assert notification["title"] == "Water in the basement"
    assert notification["message"] == "The flood sensor reports a leak"


def test_a_second_notify_with_the_same_id_replaces_the_notification(
    real_homeassistant: RealHomeAssistant,
) -> None:
    notification_id = fresh_id()
    notifier = HomeAssistantNotifier(real_homeassistant.url, real_homeassistant.token)
    before = len(real_homeassistant.notifications())
    notifier.notify("Water in the basement", "The flood sensor reports a leak", notification_id)
    notifier.notify("Water in the basement", "claimed by wren: I'm going to check", notification_id)
    [notification] = held(real_homeassistant, notification_id)
    assert notification["message"] == "claimed by wren: I'm going to check"
    assert len(real_homeassistant.notifications()) == before + 1


def test_dismiss_removes_the_notification_and_a_second_dismiss_is_harmless(
    real_homeassistant: RealHomeAssistant,
) -> None:
    notification_id, other_id = fresh_id(), fresh_id()
    notifier = HomeAssistantNotifier(real_homeassistant.url, real_homeassistant.token)
    notifier.notify("Leak", "Water detected", notification_id)
    notifier.notify("Other", "Stays", other_id)
    notifier.dismiss(notification_id)
    assert held(real_homeassistant, notification_id) == []
    assert len(held(real_homeassistant, other_id)) == 1  # only the one named goes
    notifier.dismiss(notification_id)  # already gone: Home Assistant accepts it, nothing raises


# -- end to end: a reading through Mosquitto → the hub's alerting → the resident's Home Assistant -------


def publish(broker: Mosquitto, thing: str, values: dict[str, Any]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(f"neighborhood/things/{thing}/state", json.dumps(values), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def sent_to_homeassistant(hub: Hub, alert_id: str) -> list[str]:
    deliveries = hub.alerting.store.deliveries(alert_id)
    return [d.channel for d in deliveries if d.channel.startswith("homeassistant:") and d.state == "sent"]


@pytest.fixture
def hub(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Hub]:
    config = HubConfig.model_validate(
        {
            "mqtt": {"url": mosquitto.url, "client_id": "hub-homeassistant"},
            "timeseries": {"kind": "embedded", "flush_interval": 0.2},
            "storage": {"path": str(tmp_path / "data")},
            "web": {"enabled": False},
        }
    )
    hub = Hub(config, env={})
    hub.store.migrate()
    yield hub
    hub.stop()


def test_a_leak_through_mosquitto_becomes_a_notification_in_home_assistant_and_clears(
    hub: Hub, mosquitto: Mosquitto, real_homeassistant: RealHomeAssistant
) -> None:
    """ada owns the flood sensor and linked her Home Assistant; wren watches it with no channel."""
    d, now = hub.directory, time.time()
    ada = d.bootstrap_admin("ada", now=now)
    wren = d.add_resident("wren", actor=ada.id, now=now)
    hub.alerting.store.add_channel(
        ada.id, "homeassistant", real_homeassistant.url, secret=real_homeassistant.token, now=now
    )
    flood = Thing(
        id="flood-1",
        name="Flood sensor",
        kind="sensor",
        visibility=Visibility.PUBLIC,
        watcher_share=Share.DERIVED,
        derived_from=("water_leak",),
    )
    d.create_thing(flood, owner=ada.id, actor=ada.id, now=now)
    d.grant(
        Relation(id="", resident=wren.id, thing="flood-1", kind=RelationKind.WATCHES), actor=wren.id, now=now
    )
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)

    publish(mosquitto, "flood-1", {"water_leak": True})
    wait_for(lambda: hub.alerting.open_alerts(), 10, "the leak alert to open")
    [alert] = hub.alerting.open_alerts()
    notification_id = f"hub_alert_{alert.id}"
    wait_for(lambda: held(real_homeassistant, notification_id), 10, "the notification in Home Assistant")
    [notification] = held(real_homeassistant, notification_id)
    assert "Flood sensor" in notification["title"]
    assert "water leak" in notification["title"].lower()
    wait_for(lambda: sent_to_homeassistant(hub, alert.id), 5, "the delivery log to say sent")

    publish(mosquitto, "flood-1", {"water_leak": False})
    wait_for(lambda: hub.alerting.open_alerts() == [], 10, "the leak alert to clear")
    wait_for(lambda: not held(real_homeassistant, notification_id), 10, "the notification to be dismissed")
