"""End-to-end ingest benchmark: publisher → Mosquitto → `hub run` → InfluxDB 1.x.

Starts its own Mosquitto (the project's tuning) and InfluxDB on free loopback ports, runs the hub as
a subprocess, publishes N readings from many things as fast as the broker takes them, and prints:
messages/s from first publish to last point stored, the hub's CPU seconds per 1,000 messages, and
its peak RSS. Zero loss is checked: stored must equal published.

    .venv/bin/python bench/ingest_throughput.py --messages 50000 --things 1000 --qos 1
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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
from services import InfluxDB1, Mosquitto  # noqa: E402  (the same service runners as the tests)


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return cpu, peak


def count(influx: InfluxDB1, db: str) -> int:
    try:
        rows = influx.rows(db, 'SELECT count("temperature") FROM "reading"')
    except AssertionError:
        return 0
    return int(rows[0]["count"]) if rows else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--things", type=int, default=1000)
    parser.add_argument("--qos", type=int, choices=[0, 1], default=1)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    broker = Mosquitto(work / "mosquitto")
    influx = InfluxDB1(work / "influxdb")
    broker.start()
    influx.start()
    influx.create_database("bench")
    config = work / "hub.yaml"
    config.write_text(
        f"mqtt:\n  url: {broker.url}\n  client_id: hub-bench\n  qos: {args.qos}\n"
        f"timeseries:\n  kind: influxdb-v1\n  url: {influx.url}\n  database: bench\n"
        f"storage:\n  path: {work / 'data'}\nweb:\n  enabled: false\nlog:\n  level: warning\n"
    )
    hub = subprocess.Popen([sys.executable, "-m", "hub.cli", "run", "--config", str(config)], cwd=ROOT)
    try:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher", protocol=paho.MQTTv311)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        online = threading.Event()
        client.on_message = lambda _c, _u, m: online.set() if m.payload == b"online" else None
        client.connect(broker.host, broker.port)
        client.subscribe("neighborhood/hub/status")
        client.loop_start()
        # the hub publishes "online" once connected and subscribed; publishing earlier would be lost
        if not online.wait(60):
            print("the hub did not come online within 60 s", file=sys.stderr)
            return 1
        time.sleep(0.5)  # the status is published right after SUBSCRIBE; let the SUBACK land
        cpu0, _ = proc_stats(hub.pid)
        t0 = 1_790_000_000.0
        payloads = [
            (
                f"neighborhood/things/thing-{i % args.things:04d}/state",
                json.dumps({"temperature": 20 + (i % 100) / 10, "humidity": 55.0, "time": t0 + i / 1000}),
            )
            for i in range(args.messages)
        ]
        start = time.perf_counter()
        infos = [client.publish(topic, payload, qos=args.qos) for topic, payload in payloads]
        for info in infos:
            info.wait_for_publish(args.timeout)
        published = time.perf_counter() - start
        deadline = time.monotonic() + args.timeout
        stored = 0
        while time.monotonic() < deadline:
            stored = count(influx, "bench")
            if stored >= args.messages:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
        cpu1, peak = proc_stats(hub.pid)
        client.disconnect()
        client.loop_stop()
        time.sleep(1.0)
        stored = count(influx, "bench")
        cpu_per_1000 = (cpu1 - cpu0) / args.messages * 1000
        print(f"messages={args.messages} things={args.things} qos={args.qos}")
        print(f"published in {published:.2f} s; all stored after {elapsed:.2f} s")
        print(f"throughput {args.messages / elapsed:,.0f} msg/s (publish to stored)")
        print(f"stored {stored} of {args.messages} ({'zero loss' if stored == args.messages else 'LOSS'})")
        print(f"hub CPU {cpu_per_1000 * 1000:.1f} ms per 1,000 messages; hub peak RSS {peak / 2**20:.1f} MiB")
        return 0 if stored == args.messages else 1
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(30)
        broker.stop()
        influx.stop()


if __name__ == "__main__":
    sys.exit(main())
