"""``mqtts://``: the bridge speaks TLS to a real Mosquitto and verifies the broker's certificate."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bridgekit import BridgeProcess, PtyReader, Subscriber
from services import make_ca_and_server_cert

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def tls_broker(mosquitto_factory, tmp_path: Path):
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    tls_port = free_port()
    broker = mosquitto_factory(
        extra_config=f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}"
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", tls_port)) == 0:
                break
        time.sleep(0.05)
    return broker, tls_port, ca


def test_mqtts_connects_when_the_broker_certificate_is_trusted(
    tls_broker,
    pty_reader: PtyReader,
    subscribe: Callable[..., Subscriber],
    run_bridge: Callable[..., BridgeProcess],
) -> None:
    broker, tls_port, ca = tls_broker
    sub = subscribe(broker.host, broker.port, "neighborhood/readers/#")  # plain listener, same broker
    url = f"mqtts://127.0.0.1:{tls_port}"
    bridge = run_bridge("serial", "--port", str(pty_reader.link), "--reader", "rdm6300", "--id", "tls",
                        "--mqtt", url, env={"SSL_CERT_FILE": str(ca)})  # fmt: skip
    sub.wait_for("neighborhood/readers/tls/availability", b"online", timeout=10)
    for _ in range(5):
        pty_reader.write(b"\x0267003B51C6CB\x03")
        time.sleep(0.05)
    assert b'"tag": "67003B51C6"' in sub.next("neighborhood/readers/tls/scan", timeout=5)
    assert bridge.terminate() == 0


def test_mqtts_untrusted_broker_certificate_exits_1_saying_how_to_trust_it(
    tls_broker, pty_reader: PtyReader, run_bridge: Callable[..., BridgeProcess], tmp_path: Path
) -> None:
    _, tls_port, _ = tls_broker
    empty_store = tmp_path / "empty.pem"
    empty_store.write_text("")
    bridge = run_bridge("serial", "--port", str(pty_reader.link), "--reader", "rdm6300", "--id", "tls",
                        "--mqtt", f"mqtts://127.0.0.1:{tls_port}",
                        env={"SSL_CERT_FILE": str(empty_store), "SSL_CERT_DIR": str(tmp_path)})  # fmt: skip
    assert bridge.process.wait(timeout=20) == 1
    assert f"broker 127.0.0.1:{tls_port}: its TLS certificate is not trusted" in bridge.output
    assert "SSL_CERT_FILE" in bridge.output
