"""Helpers of the fault-injection tests (tests/faults/): faults on real services, the hub in-process or
as `hub run`, a QoS 1 publisher that counts what the broker acknowledged, and counts of what was stored.

Test modules import from here (``from faultkit import ...``), never from a conftest or another test.

Faults on a running service (Mosquitto, InfluxDB; anything from tests/services.py):

- ``kill(service)``: SIGKILL, as a power cut; ``restart(service, down_for=s)`` kills, waits, starts
  again on the same port and data, and returns the monotonic time at which it served again;
- ``freeze(service)`` / ``thaw(service)``: SIGSTOP / SIGCONT (the kernel still accepts connections,
  nothing answers); ``frozen(service)`` as a context manager that always thaws;
- the network: :class:`faultproxy.FaultProxy` (pass, blackhole, reset, latency), re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from faultproxy import FaultProxy, Mode
from hubprocess import HubProcess
from paho.mqtt.enums import CallbackAPIVersion
from services import LOOPBACK, InfluxDB1, Mosquitto, Service
from waiting import seconds_until, wait_for

__all__ = [
    "LOOPBACK",
    "T0",
    "FaultProxy",
    "HubProcess",
    "InfluxDB1",
    "Mode",
    "Mosquitto",
    "Publisher",
    "freeze",
    "frozen",
    "hub_config",
    "influx_count",
    "influx_times",
    "kill",
    "restart",
    "seconds_until",
    "soak_enabled",
    "thaw",
    "wait_for",
]

#: device time of the first reading: distinct, sane, deterministic timestamps per message
T0 = 1_790_000_000.0


def soak_enabled() -> bool:
    """True when the soak variants were asked for (``--soak``, or HUB_SOAK=1 from scripts/test)."""
    return os.environ.get("HUB_SOAK", "") not in ("", "0")


# -- faults on services ------------------------------------------------------------------------------
def kill(service: Service) -> float:
    """SIGKILL the service (no clean shutdown, no final save); returns when its port is closed."""
    service.kill()
    return time.monotonic()


def freeze(service: Service) -> float:
    """SIGSTOP: the process stops, its listening socket still accepts, nothing is read or answered."""
    service.pause()
    return time.monotonic()


def thaw(service: Service) -> float:
    """SIGCONT after :func:`freeze`."""
    service.resume()
    return time.monotonic()


@contextlib.contextmanager
def frozen(service: Service) -> Iterator[float]:
    """Frozen for the body; thawed afterwards whatever happens. Yields the time of the freeze."""
    at = freeze(service)
    try:
        yield at
    finally:
        thaw(service)


def restart(service: Service, down_for: float = 0.0, *, clean: bool = False) -> float:
    """Kill (or, with ``clean``, stop with SIGTERM), stay down ``down_for`` seconds, start again on the
    same port and data. Returns the monotonic time at which the service served again."""
    if clean:
        service.stop()
    else:
        service.kill()
    if down_for > 0:
        time.sleep(down_for)
    service.start()
    return time.monotonic()


# -- MQTT ----------------------------------------------------------------------------------------------
class Publisher:
    """A device-like QoS 1 publisher of native readings with deterministic timestamps.

    Message ``seq`` of thing ``t`` carries ``"time": T0 + offset + seq``, so a stored point is
    identified by (thing, time) and a redelivered one overwrites itself. ``acked`` counts PUBACKs from
    the broker: what the broker took responsibility for.
    """

    def __init__(self, broker: Mosquitto, *, client_id: str | None = None, base_topic: str = "neighborhood"):
        self.broker = broker
        self.base_topic = base_topic
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"pub-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv311,
            clean_session=client_id is None,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]
        self.acked = 0
        self.sent = 0
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.connect_async(broker.host, broker.port, keepalive=60)
        self.client.loop_start()
        wait_for(self.client.is_connected, 15, f"a publisher to connect to {broker.url}")

    def _on_publish(self, *_args: Any) -> None:
        with self._lock:
            self.acked += 1

    def reading(self, thing: str, seq: int, *, offset: float = 0, qos: int = 1, retain: bool = False) -> Any:
        payload = {"temperature": 20 + (seq % 1000) / 100, "time": T0 + offset + seq}
        self.sent += 1
        return self.client.publish(
            f"{self.base_topic}/things/{thing}/state", json.dumps(payload), qos=qos, retain=retain
        )

    def burst(
        self, things: int, per_thing: int, *, offset: float = 0, qos: int = 1, timeout: float = 60
    ) -> int:
        """``things`` x ``per_thing`` readings (things ``thing-000`` ...); waits for every PUBACK."""
        infos = [
            self.reading(f"thing-{t:03d}", i, offset=offset, qos=qos)
            for i in range(per_thing)
            for t in range(things)
        ]
        for info in infos:
            info.wait_for_publish(timeout)
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- InfluxDB ------------------------------------------------------------------------------------------
def influx_count(server: InfluxDB1, db: str, where: str = "") -> int:
    """Points of measurement ``reading`` with a temperature (0 while the database is missing or down)."""
    query = 'SELECT count("temperature") FROM "reading"' + (f" WHERE {where}" if where else "")
    try:
        rows = server.rows(db, query)
    except (AssertionError, OSError):
        return 0
    return int(rows[0]["count"]) if rows else 0


def influx_times(server: InfluxDB1, db: str, thing: str) -> set[int]:
    """Timestamps (ns) stored for one thing."""
    rows = server.rows(db, f'SELECT "temperature" FROM "reading" WHERE "thing" = \'{thing}\'')
    return {int(row["time"]) for row in rows}


# -- the hub -------------------------------------------------------------------------------------------
def hub_config(
    tmp_path: Path,
    mqtt_url: str,
    *,
    influx: InfluxDB1 | None = None,
    influx_url: str | None = None,
    db: str = "hub",
    client_id: str | None = None,
    keepalive: int = 30,
    flush_interval: float = 0.2,
    extra: str = "",
) -> dict[str, Any]:
    """A hub configuration as a dict (``HubConfig.model_validate`` it, or ``write_config`` it)."""
    config: dict[str, Any] = {
        "mqtt": {
            "url": mqtt_url,
            "client_id": client_id or f"hub-{uuid.uuid4().hex[:8]}",
            "keepalive": keepalive,
        },
        "storage": {"path": str(tmp_path / "data")},
        "web": {"enabled": False},
    }
    if influx is not None or influx_url is not None:
        config["timeseries"] = {
            "kind": "influxdb-v1",
            "url": influx_url or (influx.url if influx else ""),
            "database": db,
            "flush_interval": flush_interval,
        }
    else:
        config["timeseries"] = {"kind": "embedded", "flush_interval": flush_interval}
    return config


def write_config(tmp_path: Path, config: dict[str, Any], name: str = "hub.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path
