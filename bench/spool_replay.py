"""Spool replay benchmark: a backlog spooled during an outage drains into InfluxDB 1.x while live
readings keep flowing.

Fills a spool with N points (as an outage would have: 5,000-point line-protocol batches), starts the
hub in-process against Mosquitto and InfluxDB (started here on free loopback ports, or the InfluxDB at
--influx-url), publishes live QoS 1 readings at a fixed rate through the broker during the replay, and
prints:

- replayed points/s, from the hub's start to the spool being empty;
- the live readings' publish → stored latency during the replay (p50, p99, max), measured by polling
  InfluxDB for new live points every --poll seconds (the figures include up to one poll interval);
- zero loss: stored == spooled + published.

    .venv/bin/python bench/spool_replay.py --points 500000 --rate 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from services import InfluxDB1, Mosquitto  # noqa: E402  (the same service runners as the tests)

from hub.app import Hub  # noqa: E402
from hub.config import HubConfig  # noqa: E402
from hub.storage.lineprotocol import encode  # noqa: E402
from hub.storage.sink import Point  # noqa: E402
from hub.storage.spool import Spool  # noqa: E402

DB = "replay_bench"


class Influx:
    """Queries against a server started here (InfluxDB1) or one at a URL."""

    def __init__(self, server: InfluxDB1 | None, url: str) -> None:
        self.server = server
        self.url = url

    def rows(self, query: str) -> list[dict[str, Any]]:
        import urllib.parse
        import urllib.request

        data = urllib.parse.urlencode({"q": query, "db": DB, "epoch": "ns"}).encode()
        with urllib.request.urlopen(f"{self.url}/query", data, timeout=30) as response:
            answer = json.loads(response.read())
        out = []
        for result in answer.get("results", []):
            for series in result.get("series", []):
                for values in series["values"]:
                    out.append(
                        {**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))}
                    )
        return out

    def create(self) -> None:
        self.rows(f'CREATE DATABASE "{DB}"')


def fill(path: Path, points: int) -> None:
    spool = Spool(path, 1 << 40)
    base = 1.7e9
    for start in range(0, points, 5000):
        batch = [
            Point(
                f"old-{i % 500:03d}",
                "native",
                {"temperature": 20.0 + i % 7, "humidity": 50.0},
                int((base + i) * 1e9),
            )
            for i in range(start, min(start + 5000, points))
        ]
        spool.append(encode(batch), len(batch))
    spool.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=500_000, help="points in the spool")
    parser.add_argument("--rate", type=float, default=200.0, help="live messages/s during replay")
    parser.add_argument("--influx-url", default=None, help="an InfluxDB 1.x to use instead of starting one")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between latency polls")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hub-replay-bench-"))
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    server = None
    if args.influx_url is None:
        server = InfluxDB1(work / "influxdb")
        server.start()
    influx = Influx(server, args.influx_url or (server.url if server else ""))
    influx.create()

    t0 = time.monotonic()
    fill(work / "data" / "spool.sqlite", args.points)
    print(f"spool filled with {args.points:,} points in {time.monotonic() - t0:.1f} s")

    config = HubConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": f"hub-{uuid.uuid4().hex[:6]}"},
            "timeseries": {"kind": "influxdb-v1", "url": influx.url, "database": DB, "flush_interval": 0.2},
            "storage": {"path": str(work / "data"), "spool_max_mb": 4096},
            "web": {"enabled": False},
        }
    )
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-live", protocol=paho.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()

    published: dict[int, float] = {}  # seq -> wall time of publish
    first_seen: dict[int, float] = {}
    stop = threading.Event()

    def live() -> None:
        seq = 0
        start = time.monotonic()
        while not stop.is_set():
            due = start + seq / args.rate
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            now = time.time()
            payload = json.dumps({"temperature": 21.0, "linkquality": seq, "time": now})
            published[seq] = now
            client.publish(f"neighborhood/things/live-{seq % 10}/state", payload, qos=1)
            seq += 1

    def poll() -> None:
        while not stop.is_set() or len(first_seen) < len(published):
            try:
                rows = influx.rows(
                    'SELECT "linkquality" FROM "reading" WHERE "thing" =~ /^live-/ AND time > now() - 1h'
                )
            except OSError:
                rows = []
            seen = time.time()
            for row in rows:
                seq = int(row["linkquality"])
                first_seen.setdefault(seq, seen)
            if stop.is_set() and time.monotonic() > deadline:
                return
            time.sleep(args.poll)

    hub = Hub(config, env={})
    deadline = float("inf")
    hub.start()
    assert hub.spool is not None
    started = time.monotonic()
    live_thread = threading.Thread(target=live, daemon=True)
    poll_thread = threading.Thread(target=poll, daemon=True)
    live_thread.start()
    poll_thread.start()
    while hub.spool.points > 0 and time.monotonic() - started < 600:
        time.sleep(0.01)
    replay_s = time.monotonic() - started
    during = {seq for seq, at in published.items() if at <= time.time()}
    stop.set()
    live_thread.join()
    deadline = time.monotonic() + 30
    poll_thread.join(35)
    hub.stop()
    client.disconnect()
    client.loop_stop()

    old = influx.rows('SELECT count("temperature") FROM "reading" WHERE "thing" =~ /^old-/')
    stored_old = int(old[0]["count"]) if old else 0
    latencies = sorted((first_seen[s] - published[s]) * 1000 for s in during if s in first_seen)
    missing = len(during) - len(latencies)
    print(
        f"replayed {stored_old:,} of {args.points:,} points in {replay_s:.2f} s: "
        f"{args.points / replay_s:,.0f} points/s"
    )
    print(
        f"live messages during replay: {len(during)} at {args.rate:g}/s, "
        f"stored {len(latencies)}, missing {missing}"
    )
    if latencies:
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"live publish->stored latency during replay: p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
            f"max {latencies[-1]:.0f} ms"
        )
    ok = stored_old == args.points and missing == 0
    if server is not None:
        server.stop()
    broker.stop()
    print("zero loss" if ok else "LOSS: stored differs from spooled + published")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
