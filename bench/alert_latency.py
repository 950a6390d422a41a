"""Alert latency: a reading published → its alert published on MQTT, under other traffic.

Starts its own Mosquitto (the project's tuning), seeds a store with a public flood sensor and 100 other
registered things, runs `hub run` as a subprocess, sends `--rate` messages/s of other readings in the
background, and toggles the flood sensor's water_leak N times. Each time, the latency from the publish of
`{"water_leak": true}` to the alert's retained message on `neighborhood/alerts/<id>` is measured in this
process (one clock). Prints p50, p95, p99 and max.

    .venv/bin/python bench/alert_latency.py --alerts 200 --rate 1000
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from services import Mosquitto  # noqa: E402  (the same service runner as the tests)

from hub.domain.model import Thing, Visibility  # noqa: E402
from hub.storage.directory import Directory  # noqa: E402
from hub.storage.store import Store  # noqa: E402


def seed(data: Path, others: int) -> None:
    store = Store.open(data)
    store.migrate()
    directory = Directory(store)
    now = time.time()
    owner = directory.bootstrap_admin("bench", now=now)
    directory.create_thing(
        Thing(id="bench-flood", name="Flood sensor", visibility=Visibility.PUBLIC),
        owner=owner.id,
        actor=owner.id,
        now=now,
    )
    for i in range(others):
        directory.create_thing(
            Thing(id=f"other-{i:03d}", name=f"Sensor {i}", visibility=Visibility.PUBLIC),
            owner=owner.id,
            actor=owner.id,
            now=now,
        )
    store.close()


def client(broker: Mosquitto, name: str) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=paho.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--rate", type=float, default=1000.0, help="other traffic, messages/s")
    parser.add_argument("--others", type=int, default=100)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hub-alert-bench-"))
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    seed(work / "data", args.others)
    config = work / "hub.yaml"
    config.write_text(
        f"mqtt:\n  url: {broker.url}\n  client_id: hub-bench\n"
        f"timeseries:\n  kind: embedded\nstorage:\n  path: {work / 'data'}\n"
        "web:\n  enabled: false\nlog:\n  level: warning\n"
    )
    hub = subprocess.Popen([sys.executable, "-m", "hub.cli", "run", "--config", str(config)], cwd=ROOT)
    stop = threading.Event()
    sent_other = 0
    try:
        arrived = threading.Condition()
        alerts: list[tuple[float, bytes]] = []
        listener = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-listener", protocol=paho.MQTTv311
        )

        def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
            with arrived:
                alerts.append((time.perf_counter(), message.payload))
                arrived.notify_all()

        listener.on_message = on_message
        listener.on_connect = lambda c, *_: c.subscribe("neighborhood/alerts/#", 1)
        listener.connect(broker.host, broker.port)
        listener.loop_start()
        time.sleep(3.0)  # the hub connects, subscribes and loads its things

        def background() -> None:
            nonlocal sent_other
            noise = client(broker, "bench-traffic")
            interval = 1.0 / args.rate
            next_at = time.perf_counter()
            i = 0
            while not stop.is_set():
                thing = f"other-{i % args.others:03d}"
                noise.publish(
                    f"neighborhood/things/{thing}/state", json.dumps({"temperature": 20 + i % 5}), qos=1
                )
                i += 1
                sent_other = i
                next_at += interval
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            noise.disconnect()
            noise.loop_stop()

        traffic = threading.Thread(target=background, daemon=True)
        traffic.start()
        time.sleep(1.0)

        trigger = client(broker, "bench-trigger")
        latencies: list[float] = []
        started = time.perf_counter()
        for _ in range(args.alerts):
            with arrived:
                seen = len(alerts)
            sent = time.perf_counter()
            trigger.publish("neighborhood/things/bench-flood/state", json.dumps({"water_leak": True}), qos=1)
            with arrived:
                arrived.wait_for(
                    lambda s=seen: any(p and json.loads(p).get("state") == "active" for _t, p in alerts[s:]),
                    timeout=5,
                )
                hit = next(
                    ((t, p) for t, p in alerts[seen:] if p and json.loads(p).get("state") == "active"), None
                )
            if hit is None:
                print("an alert did not arrive within 5 s")
                return 1
            latencies.append((hit[0] - sent) * 1000)
            with arrived:
                seen = len(alerts)
            trigger.publish("neighborhood/things/bench-flood/state", json.dumps({"water_leak": False}), qos=1)
            with arrived:
                arrived.wait_for(lambda s=seen: any(not p for _t, p in alerts[s:]), timeout=5)
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        stop.set()
        traffic.join(5)
        rate = sent_other / (elapsed + 1.0)
        latencies.sort()
        q = statistics.quantiles(latencies, n=100)
        print(f"alerts={len(latencies)} other traffic ≈ {rate:,.0f} msg/s over {elapsed:.1f} s")
        print(
            f"reading → alert on MQTT: p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms, "
            f"max {latencies[-1]:.1f} ms"
        )
        return 0
    finally:
        stop.set()
        hub.send_signal(signal.SIGTERM)
        hub.wait(30)
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
