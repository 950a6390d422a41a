"""Helpers of the durable-ingest fault tests: a paced QoS 1 publisher of sequence-numbered readings, the
hub's online status, and per-thing counts of what InfluxDB stored (distinct thing + time).

Imported by the test modules (``from ingestkit import ...``) beside faultkit.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as paho
from faultkit import T0, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from services import InfluxDB1, Mosquitto


class PacedPublisher:
    """Publishes ``rate`` QoS 1 messages a second, round-robin over ``things``, on its own thread.

    Message ``seq`` of a thing carries ``"linkquality": seq`` (so every payload is distinct) and, with
    ``device_time``, ``"time": T0 + seq`` (deterministic timestamps); without it the hub stamps arrival
    time. ``acked`` counts PUBACKs: what the broker took responsibility for.
    """

    def __init__(
        self, broker: Mosquitto, *, things: int = 20, rate: float = 200.0, device_time: bool = True
    ) -> None:
        self.things = [f"thing-{t:03d}" for t in range(things)]
        self.rate = rate
        self.device_time = device_time
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv311
        )
        self.client.max_inflight_messages_set(2000)
        self.client.max_queued_messages_set(0)
        self._lock = threading.Lock()
        self.acked = 0
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port, keepalive=60)
        self.client.loop_start()
        wait_for(self.client.is_connected, 15, f"a publisher to connect to {broker.url}")
        self.sent: dict[str, int] = dict.fromkeys(self.things, 0)
        self._infos: list[Any] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _on_publish(self, *_args: Any) -> None:
        with self._lock:
            self.acked += 1

    @property
    def published(self) -> int:
        return sum(self.sent.values())

    def publish_one(self, index: int) -> None:
        thing = self.things[index % len(self.things)]
        seq = self.sent[thing]
        payload: dict[str, Any] = {"temperature": 20 + (seq % 1000) / 100, "linkquality": seq}
        if self.device_time:
            payload["time"] = T0 + seq
        self._infos.append(self.client.publish(f"neighborhood/things/{thing}/state", json.dumps(payload), 1))
        self.sent[thing] = seq + 1

    def start(self) -> PacedPublisher:
        self._thread = threading.Thread(target=self._run, name="paced-publisher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        start = time.monotonic()
        index = 0
        while not self._stop.is_set():
            due = start + index / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.publish_one(index)
            index += 1

    def stop(self, timeout: float = 60) -> int:
        """Stop publishing and wait for every PUBACK; returns the number of messages published."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for info in self._infos:
            info.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        assert self.acked == self.published, f"the broker acknowledged {self.acked} of {self.published}"
        return self.published


def wait_hub_online(broker: Mosquitto, timeout: float = 30) -> None:
    """The hub's retained status says online (connected and subscribed)."""
    seen = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        if message.payload == b"online":
            seen.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("neighborhood/hub/status", 1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert seen.wait(timeout), "the hub never published online on neighborhood/hub/status"
    finally:
        client.disconnect()
        client.loop_stop()
    time.sleep(0.3)  # the subscription follows the status publish in the same connect callback


def per_thing(server: InfluxDB1, db: str) -> dict[str, int]:
    """Distinct points (thing + time) stored per thing; empty while the database is missing or down."""
    try:
        rows = server.rows(db, 'SELECT count("temperature") FROM "reading" GROUP BY "thing"')
    except (AssertionError, OSError):
        return {}
    return {row["thing"]: int(row["count"]) for row in rows}


def stored(server: InfluxDB1, db: str) -> int:
    return sum(per_thing(server, db).values())
