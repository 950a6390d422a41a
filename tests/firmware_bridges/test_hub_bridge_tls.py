"""``mqtts://``: the bridge speaks TLS to a real Mosquitto and verifies the broker's certificate."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bridgekit import BridgeProcess, PtyReader, Subscriber

pytestmark = pytest.mark.integration


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl not found: apt-get install openssl", pytrace=False)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-subj", "/CN=bridge test CA", "-days", "2")  # fmt: skip
    run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.cnf")  # fmt: skip
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


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
