"""Simulated devices for ``hub demo``: realistic readings from eight things over real MQTT."""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


@dataclass
class _Walk:
    """A bounded random walk around a daily cycle, so charts look like a real sensor's."""

    base: float
    swing: float
    noise: float
    low: float
    high: float
    digits: int = 1
    value: float = 0.0

    def next(self, now: float, rng: random.Random) -> float:
        day = math.sin((now % 86400) / 86400 * 2 * math.pi)
        target = self.base + self.swing * day
        self.value = self.value or target
        self.value += (target - self.value) * 0.2 + rng.gauss(0, self.noise)
        return round(min(self.high, max(self.low, self.value)), self.digits)


#: The demo neighborhood's things and the tags on its tools.
TOOLS = {"drill-makita": "04A1B2C3", "cargo-bike": "01000734E0", "hedge-trimmer": "C2994A1B"}
CARDS = ["45C52583", "E4F0A1B2"]  # residents' cards


class Simulator:
    """Publishes like real devices: native JSON state, retained availability with LWT, scans."""

    def __init__(
        self,
        host: str,
        port: int,
        base_topic: str = "neighborhood",
        interval: float = 2.0,
        seed: int | None = None,
    ) -> None:
        self.host, self.port, self.base, self.interval = host, port, base_topic, interval
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="hub-demo-simulator", protocol=paho.MQTTv311
        )
        self.client.will_set(
            f"{self.base}/readers/workshop-reader/availability", "offline", qos=1, retain=True
        )
        self.walks = {
            "air-quality-courtyard": {
                "pm25": _Walk(12, 6, 1.5, 1, 150),
                "pm10": _Walk(20, 8, 2, 2, 250),
                "temperature": _Walk(9, 4, 0.2, -20, 45),
                "humidity": _Walk(72, 10, 1, 5, 100),
            },
            "noise-playground": {"noise": _Walk(52, 8, 3, 30, 95)},
            "washing-machine-basement": {"voltage": _Walk(230, 1, 0.5, 215, 245)},
            "flood-basement": {"battery": _Walk(87, 0, 0.05, 0, 100, 0)},
            "drill-makita": {"battery": _Walk(64, 0, 0.3, 0, 100, 0)},
            "cargo-bike": {"battery": _Walk(81, 0, 0.3, 0, 100, 0)},
            "hedge-trimmer": {"battery": _Walk(47, 0, 0.3, 0, 100, 0)},
            "workshop-reader": {"rssi": _Walk(-61, 0, 1.5, -95, -30, 0)},
        }
        self.energy = 412.35
        self.washing_until = 0.0

    def start(self) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        for thing in self.walks:
            self.client.publish(f"{self.base}/things/{thing}/availability", "online", qos=1, retain=True)
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()

    def _publish(self, thing: str, values: dict[str, float | bool]) -> None:
        self.client.publish(f"{self.base}/things/{thing}/state", json.dumps(values), qos=1)

    def tick(self, now: float) -> None:
        rng = self.rng
        for thing, walks in self.walks.items():
            values: dict[str, float | bool] = {name: w.next(now, rng) for name, w in walks.items()}
            if thing == "flood-basement":
                values["water_leak"] = rng.random() < 0.02
            elif thing == "washing-machine-basement":
                if now > self.washing_until and rng.random() < 0.05:
                    self.washing_until = now + rng.uniform(20, 60)
                running = now < self.washing_until
                power = round(rng.uniform(350, 2100), 1) if running else round(rng.uniform(0.3, 1.2), 1)
                self.energy += power * self.interval / 3.6e6
                values.update(
                    state=running,
                    power=power,
                    energy=round(self.energy, 3),
                    current=round(power / values["voltage"], 3),
                )
            self._publish(thing, values)
        if rng.random() < 0.15:  # someone taps their card, then a tool's tag
            reader = f"{self.base}/readers/workshop-reader/scan"
            self.client.publish(reader, json.dumps({"tag": rng.choice(CARDS), "time": now}), qos=1)
            self.client.publish(
                reader, json.dumps({"tag": rng.choice(list(TOOLS.values())), "time": now + 1}), qos=1
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick(time.time())
            except Exception:  # a demo device keeps going, like a real one
                log.exception("simulator tick failed")
            self._stop.wait(self.interval)
