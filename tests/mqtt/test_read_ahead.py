"""The hub's MQTT connection reads the broker's socket ahead (64 KiB at a time) and decodes MQTT 5
publishes itself when their only properties are subscription identifiers (hub/mqtt/client.py). Over
plain TCP and TLS, MQTT 5 and 3.1.1, a burst of messages whose sizes put packet boundaries anywhere in a
read, some carrying other properties (paho's general path), arrives whole, once each and in order."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from services import Mosquitto, free_port, make_ca_and_server_cert
from waiting import wait_for

from hub.mqtt.client import READ_AHEAD, BrokerAddress, Inbound, MqttConnection

pytestmark = pytest.mark.integration

#: payload sizes cycling through tiny, around the read size and past it
SIZES = (1, 17, 300, 4_000, READ_AHEAD - 40, READ_AHEAD + 3, 150_000)


def payload(seq: int) -> bytes:
    size = SIZES[seq % len(SIZES)]
    head = f"{seq}:".encode()
    return head + bytes((seq + i) % 251 for i in range(max(0, size - len(head))))


@pytest.fixture(params=["plain", "tls"])
def broker(
    request: pytest.FixtureRequest, mosquitto_factory, tmp_path: Path
) -> tuple[Mosquitto, BrokerAddress]:
    if request.param == "plain":
        plain = mosquitto_factory()
        return plain, BrokerAddress(plain.host, plain.port)
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    port = free_port()
    server = mosquitto_factory(
        extra_config=f"listener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}"
    )

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 10, f"Mosquitto's TLS listener on port {port}")
    return server, BrokerAddress("127.0.0.1", port, tls=True, ca_file=str(ca))


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_burst_arrives_whole_once_and_in_order(
    broker: tuple[Mosquitto, BrokerAddress], protocol: str
) -> None:
    server, address = broker
    got: list[Inbound] = []
    lock = threading.Lock()

    def deliver(message: Inbound) -> None:
        with lock:
            got.append(message)
        if message.token is not None:
            conn.ack(message.token)

    conn = MqttConnection(
        address,
        client_id=f"read-ahead-{protocol}-{address.tls}",
        subscriptions=[("burst/#", 1, False)],
        deliver=deliver,
        protocol=protocol,
    )
    conn.start()
    publisher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    publisher.max_inflight_messages_set(0)
    try:
        assert conn.wait_connected(10), f"no connection to Mosquitto at {address}"
        time.sleep(0.3)  # the SUBSCRIBE is on its way
        publisher.connect(server.host, server.port)
        publisher.loop_start()
        sent = []
        for seq in range(600):
            properties = None
            if seq % 50 == 7:  # a property other than a subscription identifier: paho decodes it
                properties = Properties(PacketTypes.PUBLISH)
                properties.UserProperty = ("seq", str(seq))
            topic = f"burst/{seq % 5}"
            body = payload(seq)
            publisher.publish(topic, body, qos=seq % 2, properties=properties)
            sent.append((topic, body))
        wait_for(lambda: len(got) >= len(sent), 30, f"{len(sent)} messages")
        time.sleep(0.3)  # a duplicate would arrive right behind
        assert len(got) == len(sent)
        assert [(m.topic, m.payload) for m in got] == sent
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        conn.stop()
