"""The hub's own Home Assistant discovery, through a real Mosquitto: a running Hub with a shared thing, a
lendable thing, a private one and an open alert publishes one retained device config and retained
states, follows availability, custody and the alert count, republishes when Home Assistant announces
itself, and removes an entity when its thing stops being shared. What Home Assistant makes of it is
tests/integrations/test_hub_in_homeassistant.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto, free_port

from hub import __version__
from hub.app import Hub
from hub.config import HubConfig
from hub.domain.model import LendPolicy, Relation, RelationKind, Thing, Visibility
from hub.mqtt.discovery import MAX_CONFIG_BYTES, HomeAssistantDiscovery, object_id, select_entities
from hub.storage.directory import Directory
from hub.storage.store import Store

pytestmark = pytest.mark.integration

BASE = "neighborhood"
CLIENT_ID = "hub-ha-test"
CONFIG_TOPIC = f"homeassistant/device/{CLIENT_ID}/config"
WASHER = "washer:basement"  # a native id with a ':' that Home Assistant ids may not hold
DRILL = "drill"
SAFE = re.compile(r"[a-zA-Z0-9_-]+")


class Broker:
    """A client that keeps every message under ``homeassistant/#`` and ``neighborhood/#``."""

    def __init__(self, mosquitto: Mosquitto) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.arrived = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        self.client.on_connect = lambda c, *_: c.subscribe([("homeassistant/#", 1), (f"{BASE}/#", 1)])
        self.client.on_message = self._on_message
        self.client.connect(mosquitto.host, mosquitto.port)
        self.client.loop_start()

    def _on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with self.arrived:
            self.messages.append((message.topic, message.payload, bool(message.retain)))
            self.arrived.notify_all()

    def on(self, topic: str) -> list[bytes]:
        with self.arrived:
            return [payload for t, payload, _ in self.messages if t == topic]

    def last(self, topic: str) -> bytes | None:
        found = self.on(topic)
        return found[-1] if found else None

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                result = check()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({t for t, _, _ in self.messages})
                    raise AssertionError(f"timed out waiting for {what}; topics seen: {topics}")
                self.arrived.wait(min(left, 0.2))

    def wait_for(self, topic: str, payload: bytes, timeout: float = 15.0) -> None:
        self.wait(f"{payload!r} on {topic}", lambda: self.last(topic) == payload, timeout)

    def config(self, check: Callable[[dict[str, Any]], bool] = lambda _c: True) -> dict[str, Any]:
        def latest() -> dict[str, Any] | None:
            raw = self.last(CONFIG_TOPIC)
            config = json.loads(raw) if raw else None
            return config if config is not None and check(config) else None

        found: dict[str, Any] = self.wait("the hub's discovery config", latest)
        return found

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def retained(self, topic: str, timeout: float = 3.0) -> bytes | None:
        """What a new subscriber gets on ``topic`` (None: nothing retained)."""
        got: list[bytes] = []
        done = threading.Event()
        client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        client.on_connect = lambda c, *_: c.subscribe(topic, 1)

        def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
            if message.retain:
                got.append(message.payload)
                done.set()

        client.on_message = on_message
        client.connect(self.client.host, self.client.port)
        client.loop_start()
        done.wait(timeout)
        client.disconnect()
        client.loop_stop()
        return got[-1] if got else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def hub_config(tmp_path: Path, broker: Mosquitto, web_port: int | None = None) -> HubConfig:
    return HubConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": CLIENT_ID},
            "timeseries": {"kind": "embedded"},
            "storage": {"path": str(tmp_path / "data")},
            "web": {"enabled": web_port is not None, "listen": f"127.0.0.1:{web_port or 8080}"},
            "alerts": {
                "defaults": False,
                "rules": [{"kind": "boolean", "id": "leak", "measurement": "water_leak", "thing": WASHER}],
            },
        }
    )


def start_hub(config: HubConfig, *, min_interval: float = 0.2) -> Hub:
    hub = Hub(config, env={})
    assert hub.ha_discovery is not None
    hub.ha_discovery.resync_interval = 0.3  # registry changes show at once (5 s in production)
    hub.ha_discovery.min_interval = min_interval
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
    return hub


def neighborhood(hub: Hub) -> dict[str, str]:
    """alice owns a shared washer, a lent drill, a private cellar sensor and a retired radio; bob borrows."""
    d, now = hub.directory, time.time()
    admin = d.bootstrap_admin("ada", now=now)
    alice = d.redeem_invite(d.create_invite(created_by=admin.id, now=now), "alice", now=now)
    bob = d.redeem_invite(d.create_invite(created_by=alice.id, now=now), "bob", now=now)
    for thing in (
        Thing(id=WASHER, name="Basement washer", kind="device", visibility=Visibility.NEIGHBORS),
        Thing(id=DRILL, name="Makita drill", kind="tool", visibility=Visibility.PUBLIC),
        Thing(id="cellar", name="Cellar flood sensor", visibility=Visibility.PRIVATE),
        Thing(id="radio", name="Old radio", kind="device", visibility=Visibility.NEIGHBORS),
    ):
        d.create_thing(thing, owner=alice.id, actor=alice.id, now=now)
    d.retire_thing("radio", actor=alice.id, now=now)
    lends = d.grant(
        Relation(id="", resident=alice.id, thing=DRILL, kind=RelationKind.LENDS, policy=LendPolicy()),
        actor=alice.id,
        now=now,
    )
    hub.alerting.sync_things(now)  # the alert engine learns new things within 30 s; the test wants now
    return {"alice": alice.id, "bob": bob.id, "lends": lends.id}


def components(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = config["components"]
    return found


def live(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The components that are entities (a removed one stays as its platform only)."""
    return {key: c for key, c in components(config).items() if set(c) != {"platform"}}


@pytest.fixture
def broker(mosquitto: Mosquitto) -> Iterator[Broker]:
    listener = Broker(mosquitto)
    yield listener
    listener.close()


def test_the_hub_publishes_one_retained_device_config_with_its_entities(
    tmp_path: Path, mosquitto: Mosquitto, broker: Broker
) -> None:
    web_port = free_port()
    hub = start_hub(hub_config(tmp_path, mosquitto, web_port))
    try:
        neighborhood(hub)
        washer, drill = object_id(WASHER), object_id(DRILL)
        config = broker.config(lambda c: f"{washer}_availability" in c["components"])
    finally:
        hub.stop()

    assert config["device"] == {
        "identifiers": [CLIENT_ID],
        "name": "Neighborhood Hub",
        "manufacturer": "Neighborhood Hub",
        "model": "Neighborhood Hub",
        "sw_version": __version__,
        "configuration_url": f"http://127.0.0.1:{web_port}",
    }
    assert config["o"] == {
        "name": "Neighborhood Hub",
        "sw": __version__,
        "url": f"http://127.0.0.1:{web_port}",
    }
    # every entity is available while the hub is: its LWT
    assert config["availability_topic"] == f"{BASE}/hub/status"
    assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")

    entities = live(config)
    assert set(entities) == {
        "active_alerts",
        f"{washer}_availability",
        f"{drill}_availability",
        f"{drill}_custody",
    }, "the private cellar sensor and the retired radio have no entity"
    assert entities[f"{washer}_availability"] == {
        "platform": "binary_sensor",
        "unique_id": f"{CLIENT_ID}_{washer}_availability",
        "object_id": "hub-ha-test_washer_basement_availability",
        "name": "Basement washer availability",
        "device_class": "connectivity",
        "state_topic": f"{BASE}/hub/ha/thing/{washer}/availability",
        "payload_on": "online",
        "payload_off": "offline",
    }
    custody = entities[f"{drill}_custody"]
    assert custody["platform"] == "sensor"
    assert custody["unique_id"] == f"{CLIENT_ID}_{drill}_custody"
    assert custody["state_topic"] == custody["json_attributes_topic"] == f"{BASE}/loans/{DRILL}"
    assert "holder" in custody["value_template"] and "overdue" in custody["json_attributes_template"]
    alerts = entities["active_alerts"]
    assert (alerts["platform"], alerts["state_class"], alerts["state_topic"]) == (
        "sensor",
        "measurement",
        f"{BASE}/hub/ha/active_alerts",
    )
    for key, component in entities.items():
        assert SAFE.fullmatch(key) and SAFE.fullmatch(component["unique_id"]), key
        # never under <base>/things/: the hub's own decoder reads those
        assert component["state_topic"].startswith((f"{BASE}/hub/ha/", f"{BASE}/loans/")), key
    assert len({c["unique_id"] for c in entities.values()}) == len(entities)
    assert broker.retained(CONFIG_TOPIC) is not None, "the config is retained"


def test_states_follow_availability_custody_and_alerts(
    tmp_path: Path, mosquitto: Mosquitto, broker: Broker
) -> None:
    hub = start_hub(hub_config(tmp_path, mosquitto))
    try:
        people = neighborhood(hub)
        washer_topic = f"{BASE}/hub/ha/thing/{object_id(WASHER)}/availability"
        drill_topic = f"{BASE}/hub/ha/thing/{object_id(DRILL)}/availability"
        alerts_topic = f"{BASE}/hub/ha/active_alerts"
        # nothing heard of either thing yet: unknown, which Home Assistant spells "None"
        broker.wait_for(washer_topic, b"None")
        broker.wait_for(drill_topic, b"None")
        broker.wait_for(alerts_topic, b"0")

        broker.publish(f"{BASE}/things/{WASHER}/availability", "online", retain=True)
        broker.wait_for(washer_topic, b"online")
        broker.publish(f"{BASE}/things/{WASHER}/availability", "offline", retain=True)
        broker.wait_for(washer_topic, b"offline")

        broker.publish(f"{BASE}/things/{WASHER}/state", json.dumps({"water_leak": True}))
        broker.wait_for(alerts_topic, b"1")
        broker.publish(f"{BASE}/things/{WASHER}/state", json.dumps({"water_leak": False}))
        broker.wait_for(alerts_topic, b"0")

        # custody: the sensor reads the desk's retained topic, which names bob by pseudonym only
        custody_topic = f"{BASE}/loans/{DRILL}"
        broker.wait(
            "the drill available",
            lambda: (raw := broker.last(custody_topic)) and json.loads(raw)["state"] == "available",
        )
        loan = hub.desk.check_out(DRILL, people["bob"], actor=people["bob"])
        out = broker.wait(
            "the drill out to bob",
            lambda: (raw := broker.last(custody_topic)) and json.loads(raw).get("holder") == "bob" and raw,
        )
        assert json.loads(out)["due"] == pytest.approx(loan.due)
        assert people["bob"].encode() not in out
        for topic in (washer_topic, drill_topic, alerts_topic):
            assert broker.retained(topic) is not None, f"{topic} is retained"
        # the hub's own config and states never come back as things of the Home Assistant decoder
        _, things = hub.live.snapshot()
        assert {t.id for t in things} == {WASHER}, [t.id for t in things]
    finally:
        hub.stop()
    assert broker.retained(f"{BASE}/hub/status") == b"offline", "entities go unavailable with the hub"


def test_home_assistant_coming_online_gets_the_configs_again_coalesced(
    tmp_path: Path, mosquitto: Mosquitto, broker: Broker
) -> None:
    hub = start_hub(hub_config(tmp_path, mosquitto), min_interval=2.0)
    try:
        neighborhood(hub)
        broker.config(lambda c: f"{object_id(WASHER)}_availability" in c["components"])
        time.sleep(2.5)  # past the rate limit
        before = len(broker.on(CONFIG_TOPIC))
        states_before = len(broker.on(f"{BASE}/hub/ha/active_alerts"))

        broker.publish("homeassistant/status", "online")
        broker.wait("a republished config", lambda: len(broker.on(CONFIG_TOPIC)) > before, timeout=5)
        broker.wait(
            "the states again too", lambda: len(broker.on(f"{BASE}/hub/ha/active_alerts")) > states_before
        )

        # a burst of announcements within the rate limit: at most one more config, not ten
        republished = len(broker.on(CONFIG_TOPIC))
        for _ in range(10):
            broker.publish("homeassistant/status", "online")
        time.sleep(3.0)
        assert 1 <= len(broker.on(CONFIG_TOPIC)) - republished <= 2

        # Home Assistant going away asks for nothing
        quiet = len(broker.on(CONFIG_TOPIC))
        broker.publish("homeassistant/status", "offline")
        time.sleep(2.5)
        assert len(broker.on(CONFIG_TOPIC)) == quiet
    finally:
        hub.stop()


def test_unsharing_a_thing_removes_its_entity_and_clears_its_state(
    tmp_path: Path, mosquitto: Mosquitto, broker: Broker
) -> None:
    hub = start_hub(hub_config(tmp_path, mosquitto))
    try:
        people = neighborhood(hub)
        washer = object_id(WASHER)
        washer_topic = f"{BASE}/hub/ha/thing/{washer}/availability"
        broker.config(lambda c: f"{washer}_availability" in live(c))
        broker.publish(f"{BASE}/things/{WASHER}/availability", "online")
        broker.wait_for(washer_topic, b"online")

        thing = hub.directory.thing(WASHER)
        assert thing is not None
        hub.directory.update_thing(
            Thing(**{**_fields(thing), "visibility": Visibility.PRIVATE}),
            actor=people["alice"],
            now=time.time(),
        )
        config = broker.config(lambda c: f"{washer}_availability" not in live(c))
        # Home Assistant 2025.4 removes one component of a device when it is sent as its platform alone
        assert components(config)[f"{washer}_availability"] == {"platform": "binary_sensor"}
        broker.wait_for(washer_topic, b"")
        assert broker.retained(washer_topic) is None, "the state is no longer retained"

        # the drill stops being lent: its custody sensor goes, its availability stays
        hub.directory.revoke(people["lends"], actor=people["alice"], now=time.time())
        config = broker.config(lambda c: f"{object_id(DRILL)}_custody" not in live(c))
        assert f"{object_id(DRILL)}_availability" in live(config)

        # shared again: back as an entity
        hub.directory.update_thing(thing, actor=people["alice"], now=time.time())
        broker.config(lambda c: f"{washer}_availability" in live(c))
        broker.wait_for(washer_topic, b"online")
    finally:
        hub.stop()


def test_a_restarted_hub_removes_what_was_unshared_while_it_was_down(
    tmp_path: Path, mosquitto: Mosquitto, broker: Broker
) -> None:
    config = hub_config(tmp_path, mosquitto)
    hub = start_hub(config)
    washer = object_id(WASHER)
    washer_topic = f"{BASE}/hub/ha/thing/{washer}/availability"
    try:
        people = neighborhood(hub)
        broker.config(lambda c: f"{washer}_availability" in live(c))
        broker.wait_for(washer_topic, b"None")
    finally:
        hub.stop()

    store = Store.open(Path(config.storage.path))
    Directory(store).retire_thing(WASHER, actor=people["alice"], now=time.time())
    store.close()

    hub = start_hub(config)
    try:
        found = broker.config(
            lambda c: components(c).get(f"{washer}_availability") == {"platform": "binary_sensor"}
        )
        assert f"{object_id(DRILL)}_availability" in live(found)
        broker.wait_for(washer_topic, b"")
    finally:
        hub.stop()


def idle_publisher(**kwargs: Any) -> HomeAssistantDiscovery:
    return HomeAssistantDiscovery(
        lambda *_: None,
        registry=lambda _now: ((), ()),
        availability=lambda _t: None,
        open_alerts=lambda: (),
        connection=lambda: 0,
        client_id=CLIENT_ID,
        **kwargs,
    )


def test_the_hubs_own_config_is_taken_off_the_ingest_path_and_the_status_is_not() -> None:
    ha = idle_publisher()
    assert ha.take(CONFIG_TOPIC, b"{}") is True, "the caller drops it: the hub is not a foreign device"
    assert ha.take("homeassistant/status", b"online") is False, "the router sees it too"
    assert ha.take("homeassistant/sensor/x/config", b"{}") is False
    assert ha.take(f"{BASE}/things/x/state", b"{}") is False


def test_a_full_hand_over_queue_counts_its_drops() -> None:
    drops: list[int] = []
    ha = idle_publisher(on_drop=lambda: drops.append(1), max_pending=3)
    for _ in range(5):
        ha.take("homeassistant/status", b"online")
    assert len(drops) == 2


def test_object_ids_are_safe_and_distinct() -> None:
    ids = ["washer:basement", "washer.basement", "washer_basement", "zigbee2mqtt.0x00158d0001:ab", "é/+#", ""]
    made = [object_id(raw) for raw in ids]
    assert all(SAFE.fullmatch(made_id) for made_id in made)
    assert len(set(made)) == len(made)
    assert object_id("washer_basement") == "washer_basement", "a safe id stays as it is"
    assert object_id("washer:basement") == object_id("washer:basement"), "deterministic"


def test_only_things_neighbors_may_see_become_entities() -> None:
    now = time.time()
    things = [
        Thing(id="a", name="A", visibility=Visibility.NEIGHBORS),
        Thing(id="b", name="B", visibility=Visibility.PRIVATE),
        Thing(id="c", name="C", visibility=Visibility.PUBLIC, retired=True),
        Thing(id="d", name="D", visibility=Visibility.PUBLIC),
        Thing(id="e", name="E", visibility=Visibility.PRIVATE),
    ]
    lends = [
        Relation(id=f"r{t}", resident="alice", thing=t, kind=RelationKind.LENDS, valid_from=now - 10)
        for t in ("a", "b", "c")
    ]
    expired = Relation(
        id="rd", resident="alice", thing="d", kind=RelationKind.LENDS, valid_from=now - 10, revoked_at=now - 1
    )
    entities = select_entities(things, [*lends, expired], now)
    assert [t.id for t in entities.shared] == ["a", "d"]
    assert [t.id for t in entities.lendable] == ["a"]


def _fields(thing: Thing) -> dict[str, Any]:
    return {name: getattr(thing, name) for name in Thing.__dataclass_fields__}


def test_a_neighborhood_too_big_for_one_config_stays_under_the_broker_limit() -> None:
    things = [Thing(id=f"native.sensor-{n:05d}", name=f"Sensor {n} " + "x" * 60) for n in range(3000)]
    published: list[tuple[str, str, int, bool]] = []
    ha = HomeAssistantDiscovery(
        lambda *message: published.append(message),
        registry=lambda _now: (things, ()),
        availability=lambda _t: True,
        open_alerts=lambda: ["native.sensor-00001", "native.sensor-00001", "not-registered"],
        connection=lambda: 1,
        client_id=CLIENT_ID,
    )
    ha.step()
    [config] = [payload for topic, payload, _, retain in published if topic == CONFIG_TOPIC and retain]
    assert len(config.encode()) <= MAX_CONFIG_BYTES
    entities = json.loads(config)["components"]
    assert "active_alerts" in entities and 100 < len(entities) < 3001, "as many as fit, the count first"
    states = {topic: payload for topic, payload, _, _ in published if topic != CONFIG_TOPIC}
    assert states[f"{BASE}/hub/ha/active_alerts"] == "2", "open alerts on shared things only"
    assert len(states) == 3001, "every shared thing still gets its state"


def test_topics_a_decoder_already_follows_are_not_subscribed_twice() -> None:
    ha = idle_publisher()
    assert ha.subscriptions() == [("homeassistant/status", 1, False), (CONFIG_TOPIC, 1, True)]
    assert ha.subscriptions(["homeassistant/#"]) == [], "one delivery per message, not two"
    assert ha.subscriptions(["+/status", f"{BASE}/things/+/state"]) == [(CONFIG_TOPIC, 1, True)]
