"""A rule added on the web, end to end in a real hub: Mosquitto, the embedded time-series store, the web
on a free port. The owner adds a threshold on the thing's rules page; a reading published to the broker
then opens an alert, shown to the owner on the API and retained on the alert topic."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto
from waiting import wait_for

from hub.app import Hub
from hub.config import HubConfig
from hub.domain.model import Thing, Visibility
from hub.storage.accounts import Accounts

pytestmark = pytest.mark.integration

PASSWORD = "bruno keeps the air sensor"


@pytest.fixture
def hub(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Hub]:
    config = HubConfig.model_validate(
        {
            "mqtt": {"url": mosquitto.url, "client_id": "hub-web-rules"},
            "timeseries": {"kind": "embedded", "flush_interval": 0.2},
            "storage": {"path": str(tmp_path / "data")},
            "web": {"listen": "127.0.0.1:0"},
            "alerts": {"defaults": False},
        }
    )
    hub = Hub(config, env={})
    hub.store.migrate()
    now = time.time()
    ada = hub.directory.bootstrap_admin("ada", now=now)
    bruno = hub.directory.add_resident("bruno", actor=ada.id, now=now)
    Accounts(hub.store).set_password(bruno.id, PASSWORD, now=now)
    air = Thing(id="air-1", name="Air sensor, garden 4", visibility=Visibility.NEIGHBORS)
    hub.directory.create_thing(air, owner=bruno.id, actor=bruno.id, now=now)
    hub.start()
    yield hub
    hub.stop()


def retained(broker: Mosquitto, topic: str, timeout: float = 5.0) -> dict:
    got: list[bytes] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.on_message = lambda _c, _u, message: got.append(message.payload)
    client.connect(broker.host, broker.port)
    client.subscribe(topic)
    client.loop_start()
    try:
        wait_for(lambda: got, timeout, f"a retained message on {topic}")
    finally:
        client.disconnect()
        client.loop_stop()
    return json.loads(got[0])


def test_a_rule_added_on_the_web_opens_an_alert_for_a_published_reading(
    hub: Hub, mosquitto: Mosquitto
) -> None:
    with httpx.Client(base_url=hub.web_url or "", timeout=10) as web:
        login = web.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token is not None
        signed = web.post("/login", data={"pseudonym": "bruno", "password": PASSWORD, "csrf_token": token[1]})
        assert signed.status_code == 303

        page = web.get("/things/air-1/rules")
        assert page.status_code == 200
        assert 'data-source="default"' not in page.text  # defaults are off in this hub's config
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        form = {
            "csrf_token": csrf[1],
            "kind": "threshold",
            "measurement": "pm25",
            "above": "35",
            "clear_below": "25",
            "severity": "major",
        }
        assert web.post("/things/air-1/rules", data=form).status_code == 303
        (rule,) = hub.alerting.store.rules(thing="air-1")
        assert web.get("/api/v1/alerts").json() == {"alerts": []}

        publisher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        publisher.connect(mosquitto.host, mosquitto.port)
        publisher.loop_start()
        payload = json.dumps({"pm25": 48.0})
        publisher.publish("neighborhood/things/air-1/state", payload, qos=1).wait_for_publish(5)
        publisher.disconnect()
        publisher.loop_stop()

        alerts = wait_for(lambda: web.get("/api/v1/alerts").json()["alerts"], 10, "the alert on the API")
        (alert,) = alerts  # type: ignore[misc]
        assert (alert["thing"], alert["severity"], alert["state"]) == ("air-1", "major", "active")
        assert alert["id"].startswith(f"{rule.id}-air-1-")
        assert "48" in alert["body"]  # its owner reads the value
        assert alert["id"] in web.get("/me").text  # and it is among "Alerts for me"
    topic = retained(mosquitto, f"neighborhood/alerts/{alert['id']}")
    assert (topic["thing"], topic["severity"]) == ("air-1", "major")
    stored = wait_for(lambda: hub.alerting.store.alert(alert["id"]), 10, "the stored alert")
    assert stored.rule_id == rule.id  # type: ignore[attr-defined]
