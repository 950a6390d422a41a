"""Local servers for the delivery tests: a webhook that records what it receives, a server that accepts
connections and never answers, a Home Assistant stand-in replaying recorded REST responses
(recorded_homeassistant/), and a reader of retained MQTT messages. All use real loopback sockets.
The fixtures are exported to the tests by conftest.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

RECORDED = Path(__file__).with_name("recorded_homeassistant")
HA_TOKEN = "recorded-long-lived-token-7f3a"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() on arrival


@dataclass
class RecordingServer:
    """Answers every request with ``status`` and keeps what it received in ``requests``."""

    host: str
    port: int
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server


def _read(handler: BaseHTTPRequestHandler, owner: RecordingServer) -> None:
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    received = Received(handler.command, handler.path, dict(handler.headers), body, time.monotonic())
    with owner.arrived:
        owner.requests.append(received)
        owner.arrived.notify_all()


@pytest.fixture
def webhook() -> Iterator[RecordingServer]:
    """A webhook that records each request and answers ``status`` (200 unless a test changes it)."""
    owner = RecordingServer("127.0.0.1", 0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            _read(self, owner)
            self.send_response(owner.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = _serve(Handler)
    owner.port = server.server_address[1]
    yield owner
    server.shutdown()
    server.server_close()


@dataclass
class HangingServer:
    host: str
    port: int
    accepted: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture
def hanging_server() -> Iterator[HangingServer]:
    """Accepts connections and reads, but never answers: a peer that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    owner = HangingServer("127.0.0.1", listener.getsockname()[1])
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)
            owner.accepted += 1

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield owner
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _recorded() -> dict[tuple[str, str], dict[str, Any]]:
    answers = {}
    for path in sorted(RECORDED.glob("*.json")):
        entry = json.loads(path.read_text())
        answers[(entry["request"]["method"], entry["request"]["path"])] = entry["response"]
    return answers


@pytest.fixture
def homeassistant() -> Iterator[RecordingServer]:
    """Home Assistant's REST API as recorded: ``HA_TOKEN`` is the one valid token; requests are kept."""
    owner = RecordingServer("127.0.0.1", 0)
    answers = _recorded()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            _read(self, owner)
            if self.headers.get("Authorization") != f"Bearer {HA_TOKEN}":
                response = answers[("*", "*")]
            else:
                response = answers.get((self.command, self.path)) or {
                    "status": 404,
                    "content_type": "text/plain",
                    "body": "404: Not Found",
                }
            body = response["body"]
            raw = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(response["status"])
            self.send_header("Content-Type", f"{response['content_type']}; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = _serve(Handler)
    owner.port = server.server_address[1]
    yield owner
    server.shutdown()
    server.server_close()


def retained_payload(mosquitto: Any, topic: str, wait: float = 1.0) -> bytes | None:
    """The retained payload a new subscriber receives on ``topic``, or None when there is none."""
    got: list[bytes] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _u, m: got.append(m.payload) if m.retain else None
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    deadline = time.monotonic() + wait
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    client.disconnect()
    client.loop_stop()
    return got[0] if got else None
