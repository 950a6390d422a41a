"""Composition of one serial bridge: reader loop → debouncer → bounded queue → MQTT publisher."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

from firmware_bridges.broker_url import BrokerUrl
from firmware_bridges.debounce import Debouncer
from firmware_bridges.pn532_poller import Pn532Poller
from firmware_bridges.publisher import Publisher
from firmware_bridges.reader_loop import PassiveSession, ReaderLoop, Session
from firmware_bridges.readers import Rejection, Tag, make_parser
from firmware_bridges.scan_queue import Scan, ScanQueue
from firmware_bridges.serial_port import PortError

log = logging.getLogger(__name__)

DEFAULT_BAUD = {"rdm6300": 9600, "pn532": 115200, "lines": 9600, "wiegand": 9600}
# Text lines that are simply not UIDs (the rest of an MFRC522 DumpInfo) are counted, not shouted about.
_QUIET_REASONS = frozenset({"not_uid"})


@dataclass(frozen=True)
class BridgeConfig:
    port: str
    reader: str
    reader_id: str
    broker: BrokerUrl
    base_topic: str = "neighborhood"
    baud: int | None = None
    debounce: float = 1.0
    queue_size: int = 1000


class BridgeFailure(Exception):
    """A failure the user must fix (the message says how); the CLI exits 1 with it."""


class SerialBridge:
    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.baud = config.baud or DEFAULT_BAUD[config.reader]
        self.rejections: Counter[str] = Counter()
        self.scans = 0
        self.queue = ScanQueue(config.queue_size)
        self._debouncer = Debouncer(config.debounce)
        self._fatal: str | None = None
        self._stop = threading.Event()
        self.publisher = Publisher(config.broker, config.base_topic, config.reader_id, self.queue, self._fail)
        session: Session = (
            Pn532Poller() if config.reader == "pn532" else PassiveSession(lambda: make_parser(config.reader))
        )
        self.loop = ReaderLoop(
            config.port, self.baud, session, self._handle, self.publisher.set_reader_online
        )

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set; raises :class:`BridgeFailure` for failures the user must fix."""
        try:
            port = self.loop.open_first()
        except PortError as exc:
            raise BridgeFailure(str(exc)) from None
        log.info(
            "bridge started port=%s reader=%s baud=%d id=%s broker=%s topic=%s",
            self.config.port,
            self.config.reader,
            self.baud,
            self.config.reader_id,
            self.config.broker.address,
            self.publisher.scan_topic,
        )
        self._stop = stop
        self.publisher.set_reader_online(True)  # the port is open: the first availability is "online"
        self.publisher.start()
        thread = threading.Thread(target=self.loop.run, args=(port, stop), name="serial-reader", daemon=True)
        thread.start()
        try:
            stop.wait()
        finally:
            stop.set()
            thread.join(timeout=5)
            self.publisher.stop()
            log.info(
                "bridge stopped port=%s scans=%d published=%d queued=%d dropped=%d rejected=%s",
                self.config.port,
                self.scans,
                self.publisher.published,
                len(self.queue),
                self.queue.dropped,
                dict(self.rejections) or "{}",
            )
        if self._fatal:
            raise BridgeFailure(self._fatal)

    def _fail(self, message: str) -> None:
        self._fatal = message
        self._stop.set()

    def _handle(self, events: list[object]) -> None:
        now = time.monotonic()
        for event in events:
            if isinstance(event, Tag):
                if self._debouncer.accept(event.id, now):
                    self.scans += 1
                    log.info("tag scanned port=%s tag=%s", self.config.port, event.id)
                    self.queue.put(Scan(event.id, time.time()))
            elif isinstance(event, Rejection):
                self.rejections[event.reason] += 1
                level = logging.DEBUG if event.reason in _QUIET_REASONS else logging.WARNING
                log.log(
                    level,
                    "frame rejected port=%s reason=%s count=%d detail=%r",
                    self.config.port,
                    event.reason,
                    self.rejections[event.reason],
                    event.detail,
                )
