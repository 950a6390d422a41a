"""The serial side: keep a reader's port open, feed its bytes to the parser, survive unplugging.

When the port disappears (USB unplugged: a read or write fails) the loop logs it once, marks the
reader offline, and tries to reopen the same path with backoff until the device is back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Protocol

import serial

from firmware_bridges.readers import Parser
from firmware_bridges.serial_port import PortError, open_port

log = logging.getLogger(__name__)

Emit = Callable[[list[object]], None]


class Session(Protocol):
    def run(self, port: serial.Serial, stop: threading.Event, emit: Emit) -> None:
        """Talk to the reader until ``stop``; raise OSError when the port goes away."""
        ...


class PassiveSession:
    """Readers that speak on their own (RDM6300, text sketches, Wiegand sketches): just listen."""

    def __init__(self, make_parser: Callable[[], Parser]) -> None:
        self._make_parser = make_parser

    def run(self, port: serial.Serial, stop: threading.Event, emit: Emit) -> None:
        parser = self._make_parser()  # a fresh parser per connection: no half frame from before
        while not stop.is_set():
            data = port.read(port.in_waiting or 1)
            if data:
                emit(parser.feed(data))


class ReaderLoop:
    """Opens ``path`` and runs the session on it, reopening with backoff after the port is lost."""

    def __init__(
        self,
        path: str,
        baud: int,
        session: Session,
        emit: Emit,
        on_availability: Callable[[bool], None],
        retry_min: float = 1.0,
        retry_max: float = 5.0,
    ) -> None:
        self.path = path
        self.baud = baud
        self._session = session
        self._emit = emit
        self._on_availability = on_availability
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.reconnects = 0

    def open_first(self) -> serial.Serial:
        """The first open; raises :class:`PortError` so the CLI can fail with its message."""
        return open_port(self.path, self.baud)

    def run(self, port: serial.Serial | None, stop: threading.Event) -> None:
        """Serve the reader until ``stop``; ``port`` is the already opened port, if any."""
        delay = self.retry_min
        while not stop.is_set():
            if port is None:
                try:
                    port = open_port(self.path, self.baud)
                except PortError as exc:
                    log.debug("reopen failed port=%s error=%r retry_in=%.0fs", self.path, str(exc), delay)
                    stop.wait(delay)
                    delay = min(delay * 2, self.retry_max)
                    continue
                self.reconnects += 1
                log.info("serial port back port=%s reader=online", self.path)
            delay = self.retry_min
            self._on_availability(True)
            try:
                self._session.run(port, stop, self._emit)
            except OSError as exc:  # serial.SerialException is an OSError
                log.error(
                    "serial port lost port=%s error=%r reader=offline action=%s",
                    self.path,
                    str(exc),
                    "reopening every few seconds until the device is back",
                )
                self._on_availability(False)
            finally:
                _close_quietly(port)
                port = None


def _close_quietly(port: serial.Serial) -> None:
    with contextlib.suppress(OSError):  # the device may already be gone
        port.close()
