"""Runs the web app with uvicorn in a background thread, so the hub's main thread stays its own."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


class WebServerError(RuntimeError):
    """The server could not start; the message names host:port and what to change."""


class WebServer:
    """``start()`` binds and serves, ``stop()`` ends it, open event streams included.

    With ``try_next_ports=N`` a taken port is not an error while one of the next N ports is free.
    Port 0 picks any free port. ``trust_proxy``: apply X-Forwarded-Proto and X-Forwarded-For (from any
    address: the hub is then reachable through its reverse proxy only); off, they are ignored. Uvicorn
    logs through ``logging`` (loggers ``uvicorn.*``); its access log is off unless ``access_log=True``
    (uvicorn makes that switch for the whole process).
    """

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        *,
        try_next_ports: int = 0,
        access_log: bool = False,
        trust_proxy: bool = False,
        start_timeout: float = 10.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.try_next_ports = try_next_ports
        self.access_log = access_log
        self.trust_proxy = trust_proxy
        self.start_timeout = start_timeout
        self.url: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Bind, serve, and return the URL once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("WebServer already started")
        sock = self._bind()
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave logging set-up to the hub
            access_log=self.access_log,
            timeout_graceful_shutdown=2,  # a backstop; streams end on their own when closing is set
            lifespan="on",
            # uvicorn believes X-Forwarded-* from 127.0.0.1 by default; only a configured proxy may say
            # that a request came over https or from another address (web.trust_proxy)
            proxy_headers=self.trust_proxy,
            forwarded_allow_ips="*" if self.trust_proxy else None,
        )
        if self.access_log:
            # uvicorn's access-log switch is process-wide: access_log=False cuts "uvicorn.access" off
            # from logging; undo that when a server wants it back.
            logging.getLogger("uvicorn.access").propagate = True
        server = uvicorn.Server(config)
        closing = getattr(self.app.state, "closing", None)
        if closing is not None:
            closing.clear()
        thread = threading.Thread(target=self._run, args=(server, sock), name=f"web:{port}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise WebServerError(f"web server on {_hostport(self.host, port)} did not start; see the log")
            time.sleep(0.02)
        self.port = port
        self.url = f"http://{_hostport(self.host, port)}"
        log.info("web server listening url=%s", self.url)
        return self.url

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the server to exit and wait for it, at most ``timeout`` seconds."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        closing = getattr(self.app.state, "closing", None)
        if closing is not None:
            closing.set()
        server.should_exit = True
        thread.join(max(0.0, timeout - 1.0))
        if thread.is_alive():
            log.warning("web server slow to stop; forcing url=%s", self.url)
            server.force_exit = True
            thread.join(1.0)
        if thread.is_alive():
            log.error("web server thread still running after %.1f s url=%s", timeout, self.url)
        self._server = self._thread = None

    @staticmethod
    def _run(server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException:  # SystemExit from a failed lifespan start-up included
            log.exception("web server stopped with an error")
        finally:
            sock.close()

    def _bind(self) -> socket.socket:
        last = self.port + self.try_next_ports if self.port else self.port
        for port in range(self.port, last + 1):
            try:
                return _listen(self.host, port)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise WebServerError(
                    f"cannot listen on {_hostport(self.host, port)}: {exc.strerror or exc}; "
                    "set web.listen in the config"
                ) from exc
        ports = f"{self.port} to {last} are" if last > self.port else f"{self.port} is"
        raise WebServerError(f"{_bracket(self.host)}:{ports} in use; set web.listen in the config")

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted hub reuse a port in TIME_WAIT; a port with a live listener stays refused.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _hostport(host: str, port: int) -> str:
    return f"{_bracket(host)}:{port}"
