"""The load generator's MQTT packets against a real Mosquitto, and its payloads through the hub's decoders
(bench/loadgen.py; the benchmark itself is not part of the suite)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from hub.app import build_router
from hub.config import HubConfig
from hub.domain.events import Reading

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import loadgen


def _args(port: int, **overrides: object) -> argparse.Namespace:
    args = loadgen.parser().parse_args(["--broker", f"127.0.0.1:{port}"])
    args.host, args.port = "127.0.0.1", port
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_every_publish_reaches_a_subscriber_and_is_acknowledged_at_qos_1(mosquitto_factory) -> None:
    broker = mosquitto_factory()
    received: list[tuple[str, bytes, bool]] = []
    lock = threading.Lock()
    subscribed = threading.Event()
    listener = paho.Client(CallbackAPIVersion.VERSION2, client_id="loadgen-test-listener")

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with lock:
            received.append((message.topic, message.payload, bool(message.retain)))

    listener.on_message = on_message
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.on_connect = lambda c, *_: c.subscribe("#", 1)
    listener.connect(broker.host, broker.port)
    listener.loop_start()
    try:
        assert subscribed.wait(10)
        args = _args(broker.port, devices=60, rate=600.0, duration=1.0, qos=1)
        devices = loadgen.make_devices(args.devices, args.mix, args.seed)
        gen = loadgen.LoadGenerator(args, devices)

        async def run() -> loadgen.Stats:
            await gen.connect_all()
            try:
                return await gen.run()
            finally:
                await gen.close()

        stats = asyncio.run(run())
        deadline = time.monotonic() + 5
        availability = {d.availability[0] for d in devices if d.availability}
        while time.monotonic() < deadline:
            with lock:
                readings = [r for r in received if r[0] not in availability]
            if len(readings) >= stats.published:
                break
            time.sleep(0.05)
    finally:
        listener.disconnect()
        listener.loop_stop()

    assert 500 <= stats.published <= 700, stats
    assert stats.acked - stats.announced == stats.published  # a PUBACK for every reading
    assert len(readings) == stats.published
    assert set(stats.by_ecosystem) == set(loadgen.ECOSYSTEMS)
    assert all(n > 0 for n in stats.by_ecosystem.values()), stats.by_ecosystem
    # every device with a connection of its own said it is online, as its firmware would
    online = {d.availability[0]: d.availability[1] for d in devices if d.availability}
    assert {topic: payload for topic, payload, _r in received if topic in availability} == online


def test_each_ecosystems_payloads_decode_to_one_reading_with_a_temperature() -> None:
    config = HubConfig.model_validate(
        {"mqtt": {"url": "mqtt://127.0.0.1:1883"}, "timeseries": {"kind": "embedded"}}
    )
    router = build_router(config)
    devices = loadgen.make_devices(50, loadgen.parse_mix(loadgen.DEFAULT_MIX))
    now = time.time()
    for device in devices:
        for n in range(3):  # later messages of a device too (Shelly announces itself first)
            events = router.route(device.topic.decode(), device.payload(now + n / 1000), now)
            readings = [e for e in events if isinstance(e, Reading)]
            assert len(readings) == 1, (device.ecosystem, events)
            assert "temperature" in readings[0].values, (device.ecosystem, readings[0])
            assert not [e for e in events if type(e).__name__ == "Rejected"], events


def test_device_times_strictly_increase_so_no_two_messages_become_one_point() -> None:
    device = next(d for d in loadgen.make_devices(20, {"tasmota": 1}) if d.ecosystem == "tasmota")
    same_instant = 1_790_000_000.0
    stamps = [loadgen.json.loads(device.payload(same_instant))["Time"] for _ in range(5)]
    assert len(set(stamps)) == 5
