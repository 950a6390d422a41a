"""The fault proxy itself, against a real TCP echo server on the loopback."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from faultkit import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: EchoServer = self.server  # type: ignore[assignment]
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                server.received += len(data)
                self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.received = 0
        self.port = int(self.server_address[1])


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: EchoServer, fault_proxy: Callable[[str, int], FaultProxy]) -> FaultProxy:
    return fault_proxy("127.0.0.1", echo.port)


def connect(proxy: FaultProxy, timeout: float = 2.0) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_pass_forwards_both_ways_and_closes_cleanly(proxy: FaultProxy, echo: EchoServer) -> None:
    payload = bytes(range(256)) * 4000  # 1 MB: more than one chunk and than the bounded buffers hold
    with connect(proxy, timeout=5) as sock:
        assert roundtrip(sock, b"hello") == b"hello"
        assert roundtrip(sock, payload) == payload
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(10) == b""  # the FIN went through and came back
    assert echo.received == len(payload) + 5
    assert proxy.stats.dropped_bytes == 0


def test_latency_delays_each_direction_and_keeps_order(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        start = time.monotonic()
        assert roundtrip(sock, b"x") == b"x"
        fast = time.monotonic() - start

        proxy.latency(150)
        start = time.monotonic()
        assert roundtrip(sock, b"abc") == b"abc"
        slow = time.monotonic() - start
        for digit in (b"1", b"2", b"3"):
            sock.sendall(digit)
        got = b""
        while len(got) < 3:
            got += sock.recv(3)
        assert got == b"123"
        proxy.passthrough()
    print(f"\nround trip: {fast * 1000:.1f} ms in pass, {slow * 1000:.1f} ms with 150 ms each way")
    assert slow >= 0.29  # 150 ms there and 150 ms back
    assert fast < 0.1


def test_blackhole_accepts_and_reads_but_never_answers(proxy: FaultProxy, echo: EchoServer) -> None:
    with connect(proxy) as old:
        assert roundtrip(old, b"before") == b"before"
        proxy.blackhole()
        old.settimeout(0.5)
        old.sendall(b"lost")
        with pytest.raises(TimeoutError):
            old.recv(10)
        with connect(proxy) as new:  # new connections are accepted too, and ignored
            new.settimeout(0.5)
            new.sendall(b"also lost")
            with pytest.raises(TimeoutError):
                new.recv(10)
        assert echo.received == len(b"before")
        assert proxy.stats.dropped_bytes >= len(b"lost") + len(b"also lost")

        proxy.passthrough()  # the network heals: new connections work, the broken one stays silent
        with connect(proxy) as healed:
            assert roundtrip(healed, b"after") == b"after"
        old.sendall(b"still lost")
        with pytest.raises(TimeoutError):
            old.recv(10)


def test_reset_resets_open_and_new_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as old:
        assert roundtrip(old, b"ping") == b"ping"
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            old.sendall(b"x")
            old.recv(10)
    # accepted, then reset at once: the reset may even beat the end of the connect
    with pytest.raises(ConnectionResetError), connect(proxy) as new:
        new.sendall(b"x")
        new.recv(10)
    assert proxy.stats.resets >= 2
    proxy.passthrough()
    with connect(proxy) as again:
        assert roundtrip(again, b"back") == b"back"


def test_an_unreachable_target_is_a_reset_not_a_hang(fault_proxy: Callable[[str, int], FaultProxy]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections to it are refused
        proxy = fault_proxy("127.0.0.1", port)
        with pytest.raises(ConnectionResetError), connect(proxy) as sock:  # may reset during the connect
            sock.sendall(b"x")
            sock.recv(10)


def test_an_unknown_mode_is_refused_naming_the_modes(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="pass, blackhole, reset, latency"):
        proxy.set_mode("slow")  # type: ignore[arg-type]
