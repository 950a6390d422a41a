"""``hub demo``: the whole hub on one machine with no set-up.

An embedded broker on a free port, the embedded store under ./hub-demo/, simulated devices, and the
dashboard on 127.0.0.1:8080 (or the next free port). Ctrl-C stops everything.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from hub.app import Hub
from hub.config import HubConfig
from hub.simulator import Simulator


def demo_config(directory: Path, port: int = 8080) -> HubConfig:
    return HubConfig.model_validate(
        {
            "mqtt": {"url": "embedded", "client_id": "hub-demo"},
            "timeseries": {"kind": "embedded", "retention_days": 2},
            "storage": {"path": str(directory)},
            "web": {"listen": f"127.0.0.1:{port}"},
        }
    )


def run_demo(directory: Path, port: int = 8080) -> int:
    hub = Hub(demo_config(directory, port), env={}, web_try_next_ports=20)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    hub.start()
    assert hub.broker is not None and hub.mqtt is not None
    simulator = Simulator(hub.broker.host, hub.broker.port, hub.config.mqtt.base_topic)
    try:
        hub.mqtt.wait_connected(10)
        simulator.start()
        print(f"Neighborhood Hub demo: {hub.web_url}", flush=True)
        print(f"  MQTT broker {hub.broker.url}, data in {directory}/ — Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping…", file=sys.stderr, flush=True)
    finally:
        simulator.stop()
        hub.stop()
    return 0
