"""WebServer: a real uvicorn in a background thread, port fallback, clean and prompt stop."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from hub.web import WebContext, WebServer, WebServerError, create_app


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port with a live listener on 127.0.0.1, as another program would hold it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_start_returns_a_url_that_serves(ctx: WebContext, start_server: Callable[..., WebServer]) -> None:
    server = start_server(ctx)
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.port != 0
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_stop_is_prompt_with_an_event_stream_open(
    ctx: WebContext, start_server: Callable[..., WebServer], open_stream
) -> None:
    server = start_server(ctx)  # default poll and keep-alive intervals, as in production
    stream = open_stream(f"{server.url}/events")
    stream.next("things")

    started = time.monotonic()
    server.stop(timeout=5)
    assert time.monotonic() - started < 1.5  # the stream ends itself; uvicorn's 2 s backstop is not needed
    assert stream.ended(timeout=2), "the event stream stayed open after stop()"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=1)


def test_taken_port_falls_back_to_the_next_free_one(
    ctx: WebContext, start_server: Callable[..., WebServer], taken_port: int
) -> None:
    server = start_server(ctx, port=taken_port, try_next_ports=5)
    assert taken_port < server.port <= taken_port + 5
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_taken_port_without_fallback_names_host_port_and_config_key(ctx: WebContext, taken_port: int) -> None:
    server = WebServer(create_app(ctx), "127.0.0.1", taken_port)
    with pytest.raises(WebServerError) as error:
        server.start()
    assert str(error.value) == f"127.0.0.1:{taken_port} is in use; set web.listen in the config"


def test_all_fallback_ports_taken_is_an_error_naming_the_range(ctx: WebContext) -> None:
    with contextlib.ExitStack() as held:
        first = _hold_two_consecutive_ports(held)
        server = WebServer(create_app(ctx), "127.0.0.1", first, try_next_ports=1)
        with pytest.raises(WebServerError, match=rf"^127\.0\.0\.1:{first} to {first + 1} are in use"):
            server.start()


def _hold_two_consecutive_ports(stack: contextlib.ExitStack) -> int:
    for _ in range(50):
        low = stack.enter_context(socket.socket())
        low.bind(("127.0.0.1", 0))
        low.listen()
        port = low.getsockname()[1]
        high = stack.enter_context(socket.socket())
        try:
            high.bind(("127.0.0.1", port + 1))
        except OSError:
            continue  # the next port is busy; pick another pair
        high.listen()
        return port
    raise AssertionError("no two consecutive free ports on 127.0.0.1")


def test_unknown_host_is_an_error_naming_it(ctx: WebContext) -> None:
    with pytest.raises(WebServerError, match=r"cannot listen on 203\.0\.113\.9:8080: .*web\.listen"):
        WebServer(create_app(ctx), "203.0.113.9", 8080).start()


def test_restart_after_stop_serves_event_streams_again(
    ctx: WebContext, start_server: Callable[..., WebServer], open_stream
) -> None:
    server = start_server(ctx)
    server.stop()
    server.start()
    assert open_stream(f"{server.url}/events").next("things").json()["things"]


def test_access_log_is_off_by_default(
    ctx: WebContext, start_server: Callable[..., WebServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    quiet = start_server(ctx)
    httpx.get(f"{quiet.url}/healthz")
    loud = WebServer(create_app(ctx), "127.0.0.1", 0, access_log=True)
    loud.start()
    try:
        httpx.get(f"{loud.url}/metrics")
    finally:
        loud.stop()
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/metrics" in m for m in access), "access log records should reach logging when enabled"
    assert not any("/healthz" in m for m in access)
    assert any(r.name == "uvicorn.error" for r in caplog.records), "uvicorn logs go through logging"
