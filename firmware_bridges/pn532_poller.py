"""Actively polling a PN532 over HSU: wake it, configure it, then ask for a card again and again.

A PN532 never speaks first. Each command is answered by an ACK and then the response frame; a
command that is not answered in time is aborted with an ACK from the host (UM0701 §6.2.1.3), and
after repeated silence the chip is woken and configured again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import serial

from firmware_bridges.readers import pn532

log = logging.getLogger(__name__)

Emit = Callable[[list[object]], None]


class Pn532Poller:
    """A :class:`~firmware_bridges.reader_loop.Session` for ``--reader pn532``."""

    def __init__(
        self,
        poll_interval: float = 0.1,
        ack_timeout: float = 0.5,
        response_timeout: float = 1.0,
        reinit_after: int = 3,
    ) -> None:
        self.poll_interval = poll_interval
        self.ack_timeout = ack_timeout
        self.response_timeout = response_timeout
        self.reinit_after = reinit_after

    def run(self, port: serial.Serial, stop: threading.Event, emit: Emit) -> None:
        """Poll until ``stop``; raises OSError (SerialException) when the port goes away."""
        parser = pn532.Pn532Parser()
        silent_logged = False
        while not stop.is_set():
            initialised = self._exchange(
                port, parser, pn532.WAKEUP + pn532.sam_configuration(), pn532.SAM_CONFIGURATION, stop, emit
            ) and self._exchange(
                port, parser, pn532.rf_configuration_max_retries(), pn532.RF_CONFIGURATION, stop, emit
            )
            if not initialised:
                if not silent_logged and not stop.is_set():
                    log.warning(
                        "no answer from PN532 port=%s action=retrying hint=%r",
                        port.port,
                        "check wiring (reader TX to adapter RX), the HSU mode switches and --baud (115200)",
                    )
                    silent_logged = True
                stop.wait(2.0)
                continue
            if silent_logged:
                log.info("PN532 answers port=%s", port.port)
                silent_logged = False
            log.info("PN532 configured port=%s polling=106kbps_type_a", port.port)
            failures = 0
            while not stop.is_set() and failures < self.reinit_after:
                if self._exchange(
                    port, parser, pn532.in_list_passive_target(), pn532.IN_LIST_PASSIVE_TARGET, stop, emit
                ):
                    failures = 0
                    stop.wait(self.poll_interval)
                else:
                    failures += 1
                    port.write(pn532.ACK)  # abort the pending command before the next one
            if failures:
                log.warning("PN532 stopped answering port=%s action=waking_again", port.port)

    def _exchange(
        self,
        port: serial.Serial,
        parser: pn532.Pn532Parser,
        frame: bytes,
        command: int,
        stop: threading.Event,
        emit: Emit,
    ) -> bool:
        """Send ``frame`` and wait for its ACK and response; tags and rejections go to ``emit``."""
        port.write(frame)
        acked = False
        deadline = time.monotonic() + self.ack_timeout
        while not stop.is_set() and time.monotonic() < deadline:
            data = port.read(port.in_waiting or 1)
            if not data:
                continue
            passed: list[object] = []
            answered = nacked = False
            for event in parser.feed(data):
                if isinstance(event, pn532.Ack):
                    acked = True
                    deadline = time.monotonic() + self.response_timeout
                elif isinstance(event, pn532.Nack):
                    nacked = True
                elif isinstance(event, pn532.Frame):
                    # Anything but our answer (a late answer to an aborted command, an echo) is ignored.
                    ours = event.tfi == pn532.TFI_CHIP and event.command == command + 1
                    answered = answered or (acked and ours)
                else:
                    passed.append(event)  # tags follow their response frame in the same list
            emit(passed)
            if nacked:
                log.warning("PN532 sent NACK port=%s command=%02X", port.port, command)
                return False
            if answered:
                return True
        return False
