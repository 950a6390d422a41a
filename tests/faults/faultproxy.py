"""A small TCP fault proxy for the fault-injection tests: put it between the hub and the broker (or
InfluxDB) and switch what the "network" does while the test runs.

Modes, switchable at any moment with :meth:`FaultProxy.set_mode` (or the shortcuts):

- ``pass``: bytes go through both ways.
- ``latency``: every chunk is held ``latency_ms`` before it is passed on, in each direction (so a
  request and its answer are late by twice that). Order is kept.
- ``blackhole``: a network that silently drops everything. Connections are still accepted and read,
  but nothing is forwarded or answered and no close is passed on. A connection that lost bytes this
  way never forwards again (its stream is broken); new connections in pass mode work as usual.
- ``reset``: every open connection is reset (SO_LINGER 0, so the peers see RST, not FIN), and every
  new connection is accepted and reset at once.

It runs an asyncio loop on its own thread and listens on a free loopback port (``host``, ``port``).
Per-direction buffers are bounded (``MAX_CHUNKS``): when the receiving side does not keep up, the
proxy stops reading, as a real network's window would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["pass", "blackhole", "reset", "latency"]
MODES: tuple[Mode, ...] = ("pass", "blackhole", "reset", "latency")
MAX_CHUNKS = 1024
CHUNK = 65536


def _linger_zero(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close with RST: SO_LINGER 0, then abort (no graceful FIN, pending data thrown away)."""
    if writer is None:
        return
    _linger_zero(writer)
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    """One client connection and, once connected, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    broken: bool = False  # bytes were dropped: never forward again
    eofs: int = 0  # directions whose sender closed; at 2 the link is done
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass
class ProxyStats:
    accepted: int = 0
    forwarded_bytes: int = 0
    dropped_bytes: int = 0
    resets: int = 0


class FaultProxy:
    """``FaultProxy(target_host, target_port)``; ``start()`` then connect to ``host:port``."""

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self.mode: Mode = "pass"
        self.latency_ms = 0.0
        self.stats = ProxyStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._links: set[_Link] = set()
        self._ready = threading.Event()

    # -- control (any thread) -------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start within 10 s")
        return self

    def close(self) -> None:
        loop = self._loop
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def set_mode(self, mode: Mode, latency_ms: float | None = None) -> None:
        """Switch the mode now; ``reset`` resets the open connections before this returns."""
        if mode not in MODES:
            raise ValueError(f"unknown fault proxy mode {mode!r}; one of {', '.join(MODES)}")
        loop = self._loop
        assert loop is not None, "start() the proxy first"
        asyncio.run_coroutine_threadsafe(self._switch(mode, latency_ms), loop).result(10)

    def passthrough(self) -> None:
        self.set_mode("pass")

    def blackhole(self) -> None:
        self.set_mode("blackhole")

    def reset(self) -> None:
        self.set_mode("reset")

    def latency(self, ms: float) -> None:
        self.set_mode("latency", ms)

    @property
    def connections(self) -> int:
        return len(self._links)

    @property
    def url_netloc(self) -> str:
        return f"{self.host}:{self.port}"

    # -- the loop -------------------------------------------------------------------------------------
    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._accept, self.host, 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _switch(self, mode: Mode, latency_ms: float | None) -> None:
        self.mode = mode
        if latency_ms is not None:
            self.latency_ms = float(latency_ms)
        if mode == "reset":
            for link in list(self._links):
                self._kill(link)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            self._kill(link)
        await asyncio.sleep(0)

    def _kill(self, link: _Link) -> None:
        self.stats.resets += 1
        _reset(link.client)
        _reset(link.upstream)
        for task in link.tasks:
            task.cancel()
        self._links.discard(link)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        if self.mode == "reset":
            self._kill(link)
            return
        if self.mode == "blackhole":  # a dropped SYN-ACK would be closer, but accept-and-ignore will do
            link.broken = True
        else:
            try:
                up_reader, link.upstream = await asyncio.open_connection(self.target_host, self.target_port)
            except OSError:
                self._kill(link)  # nothing behind the proxy: the client sees a reset, as from a real refusal
                return
        if link not in self._links:  # reset while connecting
            _reset(link.upstream)
            return
        link.tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        if link.upstream is not None:
            link.tasks.append(asyncio.create_task(self._pipe(link, up_reader, writer)))
        await self._pipe(link, reader, link.upstream)

    async def _pipe(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None
    ) -> None:
        """Read one direction and hand the chunks, with the time each is due, to a writer task."""
        chunks: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(MAX_CHUNKS)
        sender = asyncio.create_task(self._send(link, chunks, writer)) if writer is not None else None
        if sender is not None:
            link.tasks.append(sender)
        try:
            while True:
                try:
                    data = await reader.read(CHUNK)
                except (ConnectionError, OSError):
                    if not link.broken:
                        self._kill(link)  # reset by one peer: the other sees a reset too
                    return
                if self.mode == "blackhole" or link.broken or writer is None:
                    link.broken = True
                    self.stats.dropped_bytes += len(data)
                    if not data:
                        return  # the peer closed: a silent network passes no FIN on
                    continue
                if not data:
                    await chunks.put(None)
                    return
                delay = self.latency_ms / 1000 if self.mode == "latency" else 0.0
                await chunks.put((time.monotonic() + delay, data))
        except asyncio.CancelledError:
            raise
        finally:
            if link.broken and sender is not None:
                sender.cancel()

    async def _send(
        self, link: _Link, chunks: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter
    ) -> None:
        while True:
            item = await chunks.get()
            if link.broken:
                return
            if item is None:  # the other side closed: pass the FIN on, close when both are done
                with contextlib.suppress(OSError, RuntimeError):
                    writer.write_eof()
                link.eofs += 1
                if link.eofs == 2:
                    for end in (link.client, link.upstream):
                        if end is not None:
                            end.close()
                    self._links.discard(link)
                return
            due, data = item
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if link.broken or self.mode == "blackhole":
                link.broken = True
                self.stats.dropped_bytes += len(data)
                return
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                self._kill(link)  # one side is gone: reset the other, as a broken path would
                return
            self.stats.forwarded_bytes += len(data)
