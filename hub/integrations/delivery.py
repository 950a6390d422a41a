"""Delivery of alert messages: one bounded queue and one worker thread per channel kind, retries with backoff.

A slow or failing channel (a Home Assistant that hangs, an e-mail server that refuses) only holds up its
own worker; the others keep delivering on time. Every attempt is written to the delivery log, so after a
restart ``resume(now)`` re-queues what was still pending. A message that does not fit in its queue is
counted and left pending in the log for the next ``resume``.

The log is passed in (``hub.storage.alertstore.AlertStore`` fits): integrations do not import storage.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: the channel kinds with their own queue and worker
KINDS = ("mqtt", "homeassistant", "apprise")
#: seconds before each retry: 5 s, 30 s, 2 min, 10 min, 1 h; then the delivery is failed
BACKOFF: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 3600.0)
QUEUE_SIZE = 1000


class DeliveryError(Exception):
    """A send that failed; ``retryable`` False means retrying cannot help (a rejected token, a bad URL)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Message:
    """One message to one addressee over one channel, as the delivery log numbered it.

    ``channel`` is the log's channel name: ``mqtt``, or ``<kind>:<channel id>``; ``attempts`` counts the
    attempts already made (from the log, after a restart); ``data`` is what a channel needs beyond the
    text (the alert topic's payload, a Home Assistant notification id).
    """

    delivery_id: int
    channel: str
    resident: str | None
    title: str
    body: str
    alert_id: str | None
    severity: str
    data: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0

    @property
    def kind(self) -> str:
        return self.channel.partition(":")[0]

    @property
    def channel_id(self) -> str | None:
        """The resident's channel id in ``<kind>:<channel id>``, None for ``mqtt``."""
        return self.channel.partition(":")[2] or None


#: sends one message or raises DeliveryError; any other exception counts as a retryable failure
Sender = Callable[[Message], None]


class PendingDelivery(Protocol):
    """A delivery-log row as ``due`` returns it."""

    @property
    def id(self) -> int: ...
    @property
    def channel(self) -> str: ...
    @property
    def attempts(self) -> int: ...


class DeliveryLog(Protocol):
    def due(self, now: float, limit: int = ...) -> Sequence[Any]: ...
    def mark_sent(self, delivery_id: int, now: float) -> None: ...
    def mark_failed(
        self, delivery_id: int, error: str, now: float, next_attempt_at: float | None
    ) -> None: ...


class DropCounter(Protocol):
    """A labelled counter such as ``Telemetry.drops`` (label ``queue``)."""

    def labels(self, *args: str, **kwargs: str) -> Any: ...


#: rebuilds the message of a pending row after a restart, or None when there is nothing left to say
Compose = Callable[[Any], Message | None]


class Dispatcher:
    """Sends messages through per-kind workers; ``start()``, ``submit()``, ``resume()``, ``stop()``."""

    def __init__(
        self,
        senders: Mapping[str, Sender],
        delivery_log: DeliveryLog,
        *,
        drops: DropCounter,
        compose: Compose | None = None,
        backoff: Sequence[float] = BACKOFF,
        max_attempts: int | None = None,
        queue_size: int = QUEUE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unknown = set(senders) - set(KINDS)
        if unknown:
            raise ValueError(
                f"no delivery worker for channel kinds {sorted(unknown)}: use {', '.join(KINDS)}"
            )
        self.log = delivery_log
        self.compose = compose
        self.backoff = tuple(backoff)
        self.max_attempts = max_attempts if max_attempts is not None else len(self.backoff) + 1
        self.clock = clock
        self._drops = drops
        self._workers = {kind: _Worker(self, kind, send, queue_size) for kind, send in senders.items()}
        self._inflight: set[int] = set()
        self._finished: set[int] | None = None  # ids finished while a resume runs
        self._lock = threading.Lock()
        self._resume_lock = threading.Lock()

    # -- life ------------------------------------------------------------------------------------

    def start(self) -> None:
        for worker in self._workers.values():
            worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers; what they had not sent stays pending in the log for the next ``resume``."""
        for worker in self._workers.values():
            worker.stopping.set()
            worker.wake()
        for worker in self._workers.values():
            worker.join(timeout)

    # -- work ------------------------------------------------------------------------------------

    def submit(self, message: Message) -> bool:
        """Queue a message for its channel's worker; False when it was not queued (counted, left pending)."""
        worker = self._workers.get(message.kind)
        if worker is None:
            error = f"no sender configured for channel kind {message.kind!r}"
            self.log.mark_failed(message.delivery_id, error, self.clock(), None)
            log.warning(
                "delivery failed delivery=%s channel=%s reason=no-sender", message.delivery_id, message.kind
            )
            return False
        with self._lock:
            if message.delivery_id in self._inflight:
                return True
            self._inflight.add(message.delivery_id)
        if worker.offer(message):
            return True
        with self._lock:
            self._inflight.discard(message.delivery_id)
        self._drops.labels(queue=f"delivery_{message.kind}").inc()
        worker.log_drop_once()
        return False

    def resume(self, now: float, limit: int = 1000) -> int:
        """Re-queue due pending rows of the log not already in hand (after a restart or drops); how many."""
        if self.compose is None:
            raise RuntimeError("resume needs a compose function to rebuild messages from the delivery log")
        with self._resume_lock:
            with self._lock:
                # a row read as pending may be sent before we look at it: remember what was in hand
                # before the read and what finishes during it, so nothing is sent twice
                in_hand = set(self._inflight)
                self._finished = set()
            try:
                return self._resume(now, limit, in_hand)
            finally:
                with self._lock:
                    self._finished = None

    def _resume(self, now: float, limit: int, in_hand: set[int]) -> int:
        assert self.compose is not None
        queued = 0
        for row in self.log.due(now, limit):
            with self._lock:
                if row.id in in_hand or row.id in self._inflight or row.id in (self._finished or ()):
                    continue
            message = self.compose(row)
            if message is None:
                self.log.mark_failed(row.id, "nothing left to send: the alert is gone or changed", now, None)
                continue
            if self.submit(replace(message, delivery_id=row.id, channel=row.channel, attempts=row.attempts)):
                queued += 1
        return queued

    def depth(self, kind: str) -> int:
        """Messages waiting in a kind's queue (for a gauge)."""
        worker = self._workers.get(kind)
        return 0 if worker is None else worker.queue.qsize()

    # -- called by the workers -------------------------------------------------------------------

    def _attempt(self, send: Sender, message: Message) -> float | None:
        """Send once and log the outcome; the delay before the next attempt, or None when done."""
        try:
            send(message)
        except DeliveryError as e:
            return self._failed(message, e.message, e.retryable)
        except Exception as e:  # a channel's bug must not kill its worker
            return self._failed(message, f"{type(e).__name__}: {e}", True)
        self.log.mark_sent(message.delivery_id, self.clock())
        self._done(message)
        return None

    def _failed(self, message: Message, error: str, retryable: bool) -> float | None:
        attempts = message.attempts + 1
        now = self.clock()
        if retryable and attempts < self.max_attempts:
            delay = self.backoff[min(attempts - 1, len(self.backoff) - 1)]
            self.log.mark_failed(message.delivery_id, error, now, now + delay)
            log.info(
                "delivery retry delivery=%s channel=%s attempt=%d in_s=%g error=%s",
                message.delivery_id,
                message.kind,
                attempts,
                delay,
                error,
            )
            return delay
        self.log.mark_failed(message.delivery_id, error, now, None)
        log.warning(
            "delivery failed delivery=%s channel=%s attempts=%d error=%s",
            message.delivery_id,
            message.kind,
            attempts,
            error,
        )
        self._done(message)
        return None

    def _done(self, message: Message) -> None:
        with self._lock:
            self._inflight.discard(message.delivery_id)
            if self._finished is not None:
                self._finished.add(message.delivery_id)


class _Worker(threading.Thread):
    """One channel kind: a bounded queue of new messages and a heap of retries waiting for their time."""

    def __init__(self, owner: Dispatcher, kind: str, send: Sender, queue_size: int) -> None:
        super().__init__(name=f"delivery-{kind}", daemon=True)
        self.owner = owner
        self.kind = kind
        self.send = send
        self.queue: queue.Queue[Message | None] = queue.Queue(maxsize=queue_size)
        self.stopping = threading.Event()
        self._retries: list[tuple[float, int, Message]] = []  # (monotonic due, delivery id, message)
        self._drop_logged = False

    def offer(self, message: Message) -> bool:
        try:
            self.queue.put_nowait(message)
        except queue.Full:
            return False
        return True

    def wake(self) -> None:
        # a full queue: the worker is busy and sees ``stopping`` after its current message
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)

    def log_drop_once(self) -> None:
        if not self._drop_logged:
            self._drop_logged = True
            log.warning(
                "delivery queue full kind=%s size=%d: messages stay pending in the delivery log "
                "until resumed (counted in hub_drops)",
                self.kind,
                self.queue.maxsize,
            )

    def run(self) -> None:
        while not self.stopping.is_set():
            timeout = None
            if self._retries:
                timeout = max(0.0, self._retries[0][0] - time.monotonic())
            try:
                message = self.queue.get(timeout=timeout)
            except queue.Empty:
                message = None
            if message is not None:
                self._deliver(message)
            while self._retries and self._retries[0][0] <= time.monotonic() and not self.stopping.is_set():
                _, _, retry = heapq.heappop(self._retries)
                self._deliver(retry)

    def _deliver(self, message: Message) -> None:
        delay = self.owner._attempt(self.send, message)
        if delay is not None:
            retry = replace(message, attempts=message.attempts + 1)
            heapq.heappush(self._retries, (time.monotonic() + delay, message.delivery_id, retry))
