"""The hub as a device in a real Home Assistant 2025.4.4 (the session's ``real_homeassistant``): its MQTT
integration is set up through the config-flow REST API against the test's Mosquitto, the hub runs, and
what Home Assistant holds — devices, entities, states — is read back through its own REST and websocket
APIs, never from what the hub believes it published.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from homeassistant_real import RealHomeAssistant
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto
from waiting import wait_for

from hub import __version__
from hub.app import Hub
from hub.config import HubConfig
from hub.domain.model import LendPolicy, Relation, RelationKind, Thing, Visibility
from hub.mqtt.discovery import object_id

pytestmark = pytest.mark.integration

BASE = "neighborhood"
WASHER = "washer:basement"
DRILL = "drill"
TIMEOUT = 30.0


def api(ha: RealHomeAssistant, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One authenticated REST call; (status, JSON answer or raw bytes)."""
    request = urllib.request.Request(
        f"{ha.url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {ha.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def remove_mqtt_entries(ha: RealHomeAssistant) -> None:
    status, entries = api(ha, "GET", "/api/config/config_entries/entry?domain=mqtt")
    assert status == 200, entries
    for entry in entries:
        status, answer = api(ha, "DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
        assert status == 200, answer


def set_up_mqtt(ha: RealHomeAssistant, broker: Mosquitto) -> None:
    """Home Assistant's MQTT integration on ``broker``, as a user would add it: the config flow."""
    remove_mqtt_entries(ha)  # one MQTT entry per Home Assistant; an earlier test's broker is gone
    status, flow = api(ha, "POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
    assert status == 200 and flow["type"] == "form" and flow["step_id"] == "broker", (
        f"Home Assistant did not start its MQTT config flow ({status}: {flow!r}); its integration needs "
        "paho-mqtt==2.1.0 in Home Assistant's virtualenv, which scripts/test installs"
    )
    status, done = api(
        ha,
        "POST",
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {"broker": broker.host, "port": broker.port},
    )
    assert status == 200 and done["type"] == "create_entry", done


def entity_id(ha: RealHomeAssistant, unique_id: str) -> str | None:
    """The entity Home Assistant registered for the MQTT unique id, if any."""
    for entry in ha.websocket("config/entity_registry/list"):
        if entry["platform"] == "mqtt" and entry["unique_id"] == unique_id:
            return str(entry["entity_id"])
    return None


def state(ha: RealHomeAssistant, entity: str) -> dict[str, Any] | None:
    status, answer = api(ha, "GET", f"/api/states/{entity}")
    if status == 404:
        return None
    assert status == 200, answer
    found: dict[str, Any] = answer
    return found


def state_is(ha: RealHomeAssistant, entity: str, value: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        found = state(ha, entity)
        return found if found is not None and found["state"] == value else None

    return check


def publish(broker: Mosquitto, topic: str, payload: str, retain: bool = False) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def homeassistant_on_mqtt(real_homeassistant: RealHomeAssistant) -> Iterator[RealHomeAssistant]:
    yield real_homeassistant
    remove_mqtt_entries(real_homeassistant)  # the session's other tests get Home Assistant as it was


def test_home_assistant_shows_the_hub_its_shared_things_custody_and_alerts(
    tmp_path: Path, mosquitto: Mosquitto, homeassistant_on_mqtt: RealHomeAssistant
) -> None:
    ha = homeassistant_on_mqtt
    client_id = f"hub-{uuid.uuid4().hex[:8]}"  # the session's Home Assistant may have met other hubs
    config = HubConfig.model_validate(
        {
            "mqtt": {"url": mosquitto.url, "client_id": client_id},
            "timeseries": {"kind": "embedded"},
            "storage": {"path": str(tmp_path / "data")},
            "web": {"enabled": False},
            "alerts": {
                "defaults": False,
                "rules": [{"kind": "boolean", "id": "leak", "measurement": "water_leak", "thing": WASHER}],
            },
        }
    )
    hub = Hub(config, env={})
    assert hub.ha_discovery is not None
    hub.ha_discovery.resync_interval = 0.3
    hub.ha_discovery.min_interval = 0.5
    hub.start()
    try:
        assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
        d, now = hub.directory, time.time()
        admin = d.bootstrap_admin("ada", now=now)
        alice = d.redeem_invite(d.create_invite(created_by=admin.id, now=now), "alice", now=now)
        bob = d.redeem_invite(d.create_invite(created_by=alice.id, now=now), "bob", now=now)
        washer = d.create_thing(
            Thing(id=WASHER, name="Basement washer", kind="device", visibility=Visibility.NEIGHBORS),
            owner=alice.id,
            actor=alice.id,
            now=now,
        )
        d.create_thing(
            Thing(id=DRILL, name="Makita drill", kind="tool", visibility=Visibility.PUBLIC),
            owner=alice.id,
            actor=alice.id,
            now=now,
        )
        d.create_thing(
            Thing(id="cellar", name="Cellar flood sensor", visibility=Visibility.PRIVATE),
            owner=alice.id,
            actor=alice.id,
            now=now,
        )
        d.grant(
            Relation(id="", resident=alice.id, thing=DRILL, kind=RelationKind.LENDS, policy=LendPolicy()),
            actor=alice.id,
            now=now,
        )
        hub.alerting.sync_things(now)
        publish(mosquitto, f"{BASE}/things/{WASHER}/availability", "online", retain=True)
        wait_for(
            lambda: hub.ha_discovery and hub.ha_discovery.published_configs, TIMEOUT, "the hub's first config"
        )
        # the config is retained already; Home Assistant connecting announces itself, and the hub answers
        published = hub.ha_discovery.published_configs
        set_up_mqtt(ha, mosquitto)
        wait_for(
            lambda: hub.ha_discovery and hub.ha_discovery.published_configs > published,
            TIMEOUT,
            "the hub republishing on Home Assistant's birth message",
        )

        washer_key, drill_key = object_id(WASHER), object_id(DRILL)
        availability = wait_for(
            lambda: entity_id(ha, f"{client_id}_{washer_key}_availability"),
            TIMEOUT,
            "the washer's availability entity",
        )
        custody = wait_for(
            lambda: entity_id(ha, f"{client_id}_{drill_key}_custody"), TIMEOUT, "the drill's custody entity"
        )
        alerts = wait_for(
            lambda: entity_id(ha, f"{client_id}_active_alerts"), TIMEOUT, "the alert count entity"
        )
        hub_slug = client_id.replace("-", "_")
        assert availability == f"binary_sensor.{hub_slug}_washer_basement_availability"
        assert custody == f"sensor.{hub_slug}_drill_custody"
        assert alerts == f"sensor.{hub_slug}_active_alerts"
        assert entity_id(ha, f"{client_id}_{object_id('cellar')}_availability") is None, "private: no entity"

        [device] = [
            dev
            for dev in ha.websocket("config/device_registry/list")
            if ["mqtt", client_id] in dev["identifiers"]
        ]
        assert (device["name"], device["sw_version"]) == ("Neighborhood Hub", __version__)
        on_device = {
            e["entity_id"]
            for e in ha.websocket("config/entity_registry/list")
            if e["device_id"] == device["id"]
        }
        assert {availability, custody, alerts} <= on_device

        # availability follows the thing
        found = wait_for(state_is(ha, availability, "on"), TIMEOUT, "the washer online")
        assert found["attributes"]["device_class"] == "connectivity"
        publish(mosquitto, f"{BASE}/things/{WASHER}/availability", "offline", retain=True)
        wait_for(state_is(ha, availability, "off"), TIMEOUT, "the washer offline")
        publish(mosquitto, f"{BASE}/things/{WASHER}/availability", "online", retain=True)
        wait_for(state_is(ha, availability, "on"), TIMEOUT, "the washer online again")

        # the alert count
        found = wait_for(state_is(ha, alerts, "0"), TIMEOUT, "no alerts")
        assert found["attributes"]["state_class"] == "measurement"
        publish(mosquitto, f"{BASE}/things/{WASHER}/state", json.dumps({"water_leak": True}))
        wait_for(state_is(ha, alerts, "1"), TIMEOUT, "one active alert")

        # custody: available, then bob's pseudonym with the due time
        found = wait_for(state_is(ha, custody, "available"), TIMEOUT, "the drill available")
        assert found["attributes"]["overdue"] is False and found["attributes"]["due"] is None
        loan = hub.desk.check_out(DRILL, bob.id, actor=bob.id)
        found = wait_for(state_is(ha, custody, "bob"), TIMEOUT, "the drill out to bob")
        due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(loan.due))
        assert found["attributes"]["due"] == due and found["attributes"]["overdue"] is False
        assert bob.id not in json.dumps(found)
        hub.desk.check_in(DRILL, actor=bob.id)
        wait_for(state_is(ha, custody, "available"), TIMEOUT, "the drill back")

        # unsharing the washer removes its entity from Home Assistant
        d.update_thing(
            Thing(
                id=washer.id,
                name=washer.name,
                kind=washer.kind,
                visibility=Visibility.PRIVATE,
                created_at=washer.created_at,
            ),
            actor=alice.id,
            now=time.time(),
        )
        wait_for(
            lambda: entity_id(ha, f"{client_id}_{washer_key}_availability") is None,
            TIMEOUT,
            "the washer's entity gone",
        )
        assert state(ha, availability) is None
        wait_for(state_is(ha, alerts, "0"), TIMEOUT, "no alerts on shared things")
        assert entity_id(ha, f"{client_id}_{drill_key}_availability") is not None, "the drill stays"
    finally:
        hub.stop()
    # the hub's last will: every entity goes unavailable with it
    wait_for(state_is(ha, alerts, "unavailable"), TIMEOUT, "the entities unavailable")
    wait_for(state_is(ha, custody, "unavailable"), TIMEOUT, "the custody unavailable")
