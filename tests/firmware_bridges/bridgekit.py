"""Real pieces for the bridge tests: pseudo-terminals that play the reader, a subscriber on the real
broker (the ``mosquitto`` fixture of tests/conftest.py), and ``hub-bridge`` run as a subprocess."""

from __future__ import annotations

import os
import queue
import select
import signal
import subprocess
import sys
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[2]


class PtyReader:
    """A serial reader on a pseudo-terminal, reached by the bridge through a stable symlink.

    ``unplug()`` closes the master side (the bridge's reads fail as on a pulled USB cable);
    ``plug()`` makes a new pseudo-terminal and points the symlink at it.
    """

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master: int | None = None
        self.plug()

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or line editing before the bridge configures the port itself
        target = os.ttyname(slave)
        os.close(slave)
        tmp = self.link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(self.link)
        self.master = master

    def unplug(self) -> None:
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def write(self, data: bytes) -> None:
        assert self.master is not None, "reader is unplugged"
        os.write(self.master, data)

    def read(self, timeout: float) -> bytes:
        """Whatever the bridge wrote within ``timeout`` (b"" if nothing)."""
        if self.master is None:
            return b""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.master, 4096)
        except OSError:  # EIO: the bridge closed the port
            return b""


@pytest.fixture
def pty_reader(tmp_path: Path) -> Iterator[PtyReader]:
    reader = PtyReader(tmp_path / "ttyREADER")
    yield reader
    reader.unplug()


class Subscriber:
    """A plain paho subscriber on the test broker that records every message it receives."""

    def __init__(self, host: str, port: int, topic: str, session: str | None = None) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self._subscribed = queue.Queue[bool]()
        # With a session name the subscription survives broker restarts (persistent session, QoS 1).
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=session or f"test-sub-{os.getpid()}-{time.time_ns()}",
            clean_session=session is None,
        )
        client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        client.on_subscribe = lambda c, u, mid, rc, p: self._subscribed.put(True)
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        client.reconnect_delay_set(0.1, 0.5)
        client.connect(host, port)
        client.loop_start()
        self._client = client
        self._subscribed.get(timeout=5)

    def next(self, topic: str, timeout: float) -> bytes:
        """The next message on ``topic`` (others are skipped); fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no message on {topic} within {timeout} s", pytrace=False)
            try:
                got_topic, payload, _ = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if got_topic == topic:
                return payload

    def wait_for(self, topic: str, payload: bytes, timeout: float) -> None:
        """Skip messages on ``topic`` until one equals ``payload``; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                got_topic, got, _ = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if got_topic == topic:
                seen.append(got)
                if got == payload:
                    return
        pytest.fail(f"no {payload!r} on {topic} within {timeout} s (saw {seen})", pytrace=False)

    def collect(self, topic: str, seconds: float) -> list[bytes]:
        """Every message on ``topic`` that arrives during the next ``seconds``."""
        found = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got_topic, payload, _ = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if got_topic == topic:
                found.append(payload)
        return found

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def subscribe() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(host: str, port: int, topic: str, session: str | None = None) -> Subscriber:
        sub = Subscriber(host, port, topic, session)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()


class BridgeProcess:
    """``hub-bridge serial …`` as a subprocess (``python -m firmware_bridges``), stderr kept for asserts."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "firmware_bridges", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=REPO,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def run_bridge(tmp_path: Path) -> Iterator[Callable[..., BridgeProcess]]:
    started: list[BridgeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> BridgeProcess:
        bridge = BridgeProcess(list(args), tmp_path / f"bridge-{len(started)}.log", env)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.kill()
