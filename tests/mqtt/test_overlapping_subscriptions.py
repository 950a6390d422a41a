"""One message, one delivery: overlapping subscriptions must not double readings.

Mosquitto 2 sends an MQTT 5 client one copy of a message per matching subscription. The hub's filters
overlap by design (``neighborhood/things/+/state`` and ESPHome's ``+/+/+/state``; a learned Home
Assistant state topic under an ecosystem's filter), so the connection keeps exactly one copy.
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto

from hub.mqtt.client import BrokerAddress, Inbound, MqttConnection


def _publisher(broker: Mosquitto) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="overlap-publisher")
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _connection(broker: Mosquitto, protocol: str, got: list[Inbound]) -> MqttConnection:
    lock = threading.Lock()

    def deliver(message: Inbound) -> None:
        with lock:
            got.append(message)
        if message.token is not None:
            conn.ack(message.token)

    conn = MqttConnection(
        BrokerAddress(broker.host, broker.port),
        client_id=f"overlap-{protocol}",
        subscriptions=[
            ("neighborhood/things/+/state", 1, False),
            ("+/+/+/state", 1, False),
            ("zigbee2mqtt/#", 1, False),
            ("zigbee2mqtt/bridge/devices", 1, True),
        ],
        deliver=deliver,
        protocol=protocol,
    )
    conn.start()
    assert conn.wait_connected(10), f"no connection to Mosquitto at {broker}"
    return conn


def _wait_for(got: list[Inbound], count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # any extra copy would arrive right behind the first


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_message_matching_several_filters_is_delivered_once(mosquitto: Mosquitto, protocol: str) -> None:
    got: list[Inbound] = []
    conn = _connection(mosquitto, protocol, got)
    publisher = _publisher(mosquitto)
    try:
        conn.add_subscriptions([("livingroom/sensor/temperature/state", 1, False)])
        time.sleep(0.3)  # the SUBSCRIBE is on its way
        sent = [
            ("neighborhood/things/air-1/state", b'{"pm25": 1}'),  # two filters
            ("livingroom/sensor/temperature/state", b"21.5"),  # a wildcard and a learned exact topic
            ("livingroom/sensor/temperature/state", b"21.5"),  # the same again: a real second message
            ("zigbee2mqtt/bridge/devices", b"[]"),  # zigbee2mqtt/# and the replayed filter
            ("zigbee2mqtt/kitchen", b'{"temperature": 20}'),  # one filter only
        ]
        for topic, payload in sent:
            publisher.publish(topic, payload, qos=1).wait_for_publish(5)
        _wait_for(got, len(sent))
        assert [(m.topic, m.payload) for m in got] == sent
        if protocol == "5":
            assert conn.duplicates == 4  # one extra copy for each of the four overlapping messages
    finally:
        publisher.loop_stop()
        conn.stop()


@pytest.mark.integration
def test_retained_messages_of_a_replayed_filter_arrive_on_every_connection(mosquitto: Mosquitto) -> None:
    publisher = _publisher(mosquitto)
    publisher.publish(
        "zigbee2mqtt/bridge/devices", b'[{"ieee_address": "0x1"}]', qos=1, retain=True
    ).wait_for_publish(5)
    publisher.loop_stop()
    for _ in range(2):  # the second connection finds its session kept by the broker
        got: list[Inbound] = []
        conn = _connection(mosquitto, "5", got)
        try:
            _wait_for(got, 1)
            assert [m.topic for m in got if m.retain] == ["zigbee2mqtt/bridge/devices"]
        finally:
            conn.stop()


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_topic_learned_after_its_live_message_does_not_bring_it_again(
    mosquitto: Mosquitto, protocol: str
) -> None:
    """An ESPHome state arrives through ``+/+/+/state``; its Home Assistant config then makes the hub
    subscribe to the exact topic, and the broker sends the retained value again."""
    got: list[Inbound] = []
    conn = _connection(mosquitto, protocol, got)
    publisher = _publisher(mosquitto)
    topic = "porch/sensor/temperature/state"
    try:
        publisher.publish(topic, b"7.5", qos=1, retain=True).wait_for_publish(5)
        _wait_for(got, 1)
        conn.add_subscriptions([(topic, 1, False)])
        time.sleep(0.5)
        publisher.publish(topic, b"7.6", qos=1, retain=True).wait_for_publish(5)
        _wait_for(got, 2)
        assert [m.payload for m in got] == [b"7.5", b"7.6"]
    finally:
        publisher.loop_stop()
        conn.stop()
