"""The hub's MQTT connection: paho-mqtt 2, MQTT 5 where the broker speaks it, else 3.1.1.

- a fixed client id and a persistent session, so QoS 1 messages published while the hub is down are
  delivered when it returns;
- manual acknowledgement: a QoS 1 message is acknowledged only when ``ack()`` is called for its token,
  which the recorder does once the reading is in the sink or the spool;
- reconnect with a short capped backoff, resubscribe, and a retained LWT on the hub status topic;
- a watchdog that drops a connection on which the broker has gone silent (frozen, or a network that
  drops everything), so the hub notices within 1.25x the keepalive instead of paho's up to 2x.

Why the backoff is capped at 3 s (paho's default grows to 30 s and more): the hub is one client of
one broker, usually on the same Pi or LAN. After a broker restart it must be back, subscribed, within
5 s whether the broker was gone for 5 s or for an hour; a refused TCP connection every 1.5-3 s costs
nothing. The jitter keeps several hubs (or a hub and its bridges) from knocking in step.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MalformedPacket, Properties  # paho 2.1 and 2.2 both have both here
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)

_UNSUPPORTED_PROTOCOL = 132
#: reconnect waits: doubling from RECONNECT_MIN, capped at RECONNECT_MAX, each scaled by U(0.5, 1)
RECONNECT_MIN = 1.0
RECONNECT_MAX = 3.0
#: a connection on which nothing arrived for this many keepalives is dropped (paho pings at 1x)
WATCHDOG_KEEPALIVES = 1.25
#: how often paho's network loop wakes up when idle: the watchdog's and the PINGREQ's resolution
LOOP_TIMEOUT = 0.25
_BAD_CREDENTIALS = (134, 135)  # bad user name or password, not authorized
#: bytes read from the broker's socket at once (see ``_Client._sock_recv``)
READ_AHEAD = 65536


@dataclass(frozen=True, slots=True)
class AckToken:
    """Identifies one received QoS 1 message on one connection."""

    generation: int
    mid: int
    qos: int


@dataclass(slots=True)
class Inbound:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    received: float
    token: AckToken | None
    #: the broker sent it again (MQTT DUP): it may have been received, and stored, before
    dup: bool = False


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def reconnect_delay(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0 for the first after a loss)."""
    return min(RECONNECT_MAX, RECONNECT_MIN * 2**attempt) * (0.5 + 0.5 * rng())


class _PublishProperties:
    """The properties of a PUBLISH that carried only subscription identifiers (``_publish_v5``)."""

    __slots__ = ("SubscriptionIdentifier",)

    def __init__(self, idents: list[int]) -> None:
        if idents:
            self.SubscriptionIdentifier = idents


_SUBSCRIPTION_IDENTIFIER = 11


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """An MQTT variable byte integer at ``pos``: (value, position after it)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ValueError("variable byte integer longer than 4 bytes")


def _publish_v5(data: bytes, qos: int) -> tuple[bytes, int, list[int], bytes] | None:
    """(topic, packet id, subscription identifiers, payload) of an MQTT 5 PUBLISH body, or None when it
    has any other property (paho decodes those) or does not parse (paho reports it)."""
    try:
        after_topic = 2 + int.from_bytes(data[0:2], "big")
        end = after_topic + 2 if qos else after_topic
        if end > len(data):
            return None
        mid = int.from_bytes(data[after_topic:end], "big") if qos else 0
        length, pos = _varint(data, end)
        stop = pos + length
        if stop > len(data):
            return None
        idents: list[int] = []
        while pos < stop:
            if data[pos] != _SUBSCRIPTION_IDENTIFIER:
                return None
            ident, pos = _varint(data, pos + 1)
            idents.append(ident)
        if pos != stop:
            return None
        return bytes(data[2:after_topic]), mid, idents, bytes(data[stop:])
    except (IndexError, ValueError):
        return None


def _in_packet(header: int, body: bytes) -> dict[str, Any]:
    """paho's state of a packet being read, as its ``_packet_read`` leaves it for ``_packet_handle``."""
    return {
        "command": header,
        "have_remaining": 1 if header else 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": len(body),
        "packet": body if header else bytearray(),
        "to_process": 0,
        "pos": 0,
    }


class _Client(paho.Client):
    """paho's client plus when bytes last arrived from the broker and a watchdog on the network loop.

    paho sends a PINGREQ once the connection has been quiet for a keepalive and gives up only a
    further keepalive after that, so a frozen broker or a silently dropping network is noticed 1-2
    keepalives late. ``loop_misc`` runs on every pass of paho's own loop: when nothing has arrived for
    ``silence_limit`` seconds (1.25 keepalives: the PINGREQ was due and its PINGRESP did not come), it
    shuts the socket down, and paho's ordinary path (disconnect callback, reconnect) takes over.
    """

    heard = 0.0
    silence_limit = 0.0
    on_silence: Callable[[float], None] | None = None
    #: bytes read ahead from the socket (``_rsock``) and how far paho has taken them
    _rbuf = b""
    _rpos = 0
    _rsock: object = None

    def _sock_recv(self, bufsize: int) -> bytes:  # paho 2's one read path (plain and TLS sockets)
        # paho asks for 1 byte, then 1 per length byte, then the rest: three system calls and a select
        # per message. One read of up to READ_AHEAD bytes serves hundreds of messages instead.
        sock = self._sock
        if self._rsock is not sock:  # a new connection: nothing read ahead belongs to it
            self._rsock, self._rbuf, self._rpos = sock, b"", 0
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf = super()._sock_recv(max(bufsize, READ_AHEAD))
            self.heard = time.monotonic()
            if not buf:
                return buf  # the end of the stream
            pos = 0
        end = pos + bufsize
        self._rbuf, self._rpos = buf, end
        return buf[pos:end]

    def loop_read(self, max_packets: int = 1) -> paho.MQTTErrorCode:
        # paho's loop reads one packet per select(); packets already read ahead are not signalled by
        # select, so keep going until they are used up: whole packets straight from the buffer, a
        # partial one through paho (its rest comes from the socket).
        rc = super().loop_read(max_packets)
        while rc == paho.MQTT_ERR_SUCCESS and self._rpos < len(self._rbuf) and self._sock is not None:
            if self._in_packet["command"] == 0:
                rc, whole = self._read_buffered()
                if whole:
                    continue
            rc = super().loop_read(max_packets)
        return rc

    def _read_buffered(self) -> tuple[paho.MQTTErrorCode, bool]:
        """Handle the whole packets at the front of the read-ahead buffer; (rc, all of it was whole).

        The same work as paho's ``_packet_read`` per packet, without its one-byte reads."""
        buf, end = self._rbuf, len(self._rbuf)
        pos = self._rpos
        rc = paho.MQTT_ERR_SUCCESS
        whole = True
        while pos < end and self._sock is not None:
            length = shift = 0
            i = pos + 1
            while True:
                if i >= end:
                    whole = False
                    break
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    return self._loop_rc_handle(paho.MQTT_ERR_PROTOCOL), True
            if not whole or i + length > end:
                whole = False
                break
            header = buf[pos]
            body = buf[i : i + length]
            pos = self._rpos = i + length
            handled = self._publish(header, body) if header & 0xF0 == 0x30 else None
            if handled is None:
                self._in_packet = _in_packet(header, body)
                try:
                    handled = self._packet_handle()
                except MalformedPacket:
                    handled = paho.MQTT_ERR_PROTOCOL
                self._in_packet = _in_packet(0, b"")
            if handled:
                return self._loop_rc_handle(handled), True
        with self._msgtime_mutex:  # what paho's keepalive reads (2.2 renamed it)
            if hasattr(self, "_last_bytes_received"):
                self._last_bytes_received = time.monotonic()
            else:
                self._last_msg_in = time.monotonic()
        return rc, whole

    def _handle_publish(self) -> paho.MQTTErrorCode:
        packet = self._in_packet
        handled = self._publish(packet["command"], packet["packet"])
        return super()._handle_publish() if handled is None else handled

    def _publish(self, header: int, data: bytes) -> paho.MQTTErrorCode | None:
        """A PUBLISH delivered, or None when paho must decode it.

        paho builds a general Properties object per MQTT 5 PUBLISH (about half of this thread's time at
        10,000 msg/s). QoS 0/1 publishes whose only properties are subscription identifiers, the hub's
        whole stream, are decoded here; anything else goes the general way."""
        qos = (header & 0x06) >> 1
        if self._protocol != paho.MQTTv5 or qos > 1 or self._on_message_filtered._root._children:
            return None
        parsed = _publish_v5(data, qos)
        if parsed is None:
            return None
        topic, mid, idents, payload = parsed
        message = paho.MQTTMessage(mid=mid, topic=topic)
        message.dup = bool(header & 0x08)
        message.qos = qos
        message.retain = bool(header & 0x01)
        message.properties = _PublishProperties(idents)
        message.payload = payload
        message.timestamp = time.monotonic()
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                on_message(self, self._userdata, message)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return paho.MQTT_ERR_SUCCESS

    def loop_misc(self) -> paho.MQTTErrorCode:
        if self.silence_limit and self.is_connected():
            silent = time.monotonic() - self.heard
            sock = self.socket()
            if silent > self.silence_limit and sock is not None:
                self.heard = time.monotonic()  # once per silence
                if self.on_silence is not None:
                    self.on_silence(silent)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # the next read sees the end: paho reconnects
        return super().loop_misc()


class MqttConnection:
    """One supervised broker connection; messages go to ``deliver``, which may block (backpressure)."""

    def __init__(
        self,
        broker: BrokerAddress,
        *,
        client_id: str,
        subscriptions: Sequence[tuple[str, int, bool]],
        deliver: Callable[[Inbound], None],
        status_topic: str | None = None,
        protocol: str = "auto",
        keepalive: int = 30,
        session_expiry: int = 7 * 24 * 3600,
        receive_maximum: int = 1000,
        on_state: Callable[[bool], None] | None = None,
        share_group: str | None = None,
        hold_shared: bool = False,
    ) -> None:
        self.broker = broker
        #: with a group, every filter that is not replayed is subscribed as ``$share/<group>/<filter>``:
        #: the broker gives each message to one member of the group (``hub run --role ingest``)
        self.share_group = share_group
        #: shared filters wait for ``release_shared()``; replayed ones are subscribed at once
        self._holding = bool(share_group and hold_shared)
        self.client_id = client_id
        #: (topic filter, QoS, replay retained on every connection)
        self.subscriptions = list(subscriptions)
        self._static = {sub[0] for sub in self.subscriptions}
        self._extra: dict[str, tuple[str, int, bool]] = {}
        self._subs_lock = threading.Lock()
        # shared: the filters every member reads get the lowest identifiers, so of a message matching one
        # of them and a shared filter, each member keeps the copy it surely gets
        ordered = (
            sorted(self.subscriptions, key=lambda sub: not sub[2]) if share_group else self.subscriptions
        )
        self._overlaps = _Overlaps([sub[0] for sub in ordered])
        #: copies of one message that overlapping subscriptions delivered again (acknowledged, dropped)
        self.duplicates = 0
        self.deliver = deliver
        self.status_topic = status_topic
        self.keepalive = keepalive
        self.session_expiry = session_expiry
        self.receive_maximum = receive_maximum
        self.on_state = on_state
        self.protocol = paho.MQTTv311 if protocol == "3.1.1" else paho.MQTTv5
        self._auto = protocol == "auto"
        self._client: paho.Client | None = None
        self._generation = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self._fallback = False
        self._connack_seen = False
        self._closed_before_connack = 0
        self._unreachable_logged = False
        self.last_error: str | None = None
        self.connects = 0
        #: connections the watchdog dropped because the broker went silent
        self.silences = 0
        self._silence_reason: str | None = None
        self._attempt = 0

    # -- life -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="mqtt", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        client = self._client
        if client is not None:
            if self.status_topic and self.connected.is_set():
                info = client.publish(self.status_topic, "offline", qos=1, retain=True)
                info.wait_for_publish(min(timeout, 2.0))
            client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    # -- operations from other threads ----------------------------------------------------------------
    def ack(self, token: AckToken) -> None:
        """Acknowledge a message; a token from an earlier connection is void (the broker redelivers)."""
        client = self._client
        if client is not None and token.generation == self._generation and self.connected.is_set():
            client.ack(token.mid, token.qos)

    def add_subscriptions(self, subscriptions: Sequence[tuple[str, int, bool]]) -> None:
        """Follow more topics from now on (and after every reconnect); already followed ones are skipped."""
        with self._subs_lock:
            fresh = [s for s in subscriptions if s[0] not in self._extra and s[0] not in self._static]
            for sub in fresh:
                self._extra[sub[0]] = sub
            self._overlaps.add([sub[0] for sub in fresh])
        client = self._client
        if fresh and client is not None and self.connected.is_set():
            self._subscribe(client, fresh, session_present=False)

    def _all_subscriptions(self) -> list[tuple[str, int, bool]]:
        with self._subs_lock:
            return [*self.subscriptions, *self._extra.values()]

    def _subscribe(
        self, client: paho.Client, subs: Sequence[tuple[str, int, bool]], *, session_present: bool
    ) -> None:
        """Subscribe. ``replay`` filters get their retained messages on every connection; the others only
        when the broker did not keep the session (MQTT 5 retainHandling=1). Under MQTT 5 every packet
        carries the subscription identifier :class:`_Overlaps` gave its filters."""
        if self._holding:
            subs = [sub for sub in subs if sub[2]]
        if self.protocol == paho.MQTTv5:
            packets: dict[int, list[tuple[str, SubscribeOptions]]] = {}
            for topic, qos, replay in subs:
                options = SubscribeOptions(qos=qos, retainHandling=0 if replay else 1)
                packets.setdefault(self._overlaps.ident(topic), []).append(
                    (self._wire(topic, replay), options)
                )
            for ident, filters in packets.items():
                properties = None
                if ident:
                    properties = Properties(PacketTypes.SUBSCRIBE)
                    properties.SubscriptionIdentifier = ident
                for start in range(0, len(filters), 100):
                    client.subscribe(filters[start : start + 100], properties=properties)
            return
        # 3.1.1: a kept session keeps its subscriptions; re-subscribing a filter resends its retained
        plain = [
            (self._wire(topic, replay), qos) for topic, qos, replay in subs if replay or not session_present
        ]
        for start in range(0, len(plain), 100):
            client.subscribe(plain[start : start + 100])

    def release_shared(self) -> None:
        """Subscribe the shared filters held back (``hold_shared``), now and on every reconnect."""
        if not self._holding:
            return
        self._holding = False
        client = self._client
        if client is not None and self.connected.is_set():
            shared = [sub for sub in self._all_subscriptions() if not sub[2]]
            self._subscribe(client, shared, session_present=False)

    def _wire(self, topic: str, replay: bool) -> str:
        """The filter as subscribed: shared unless replayed (inventories every member must read)."""
        return f"$share/{self.share_group}/{topic}" if self.share_group and not replay else topic

    def publish(
        self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
    ) -> paho.MQTTMessageInfo | None:
        client = self._client
        if client is None:
            return None
        return client.publish(topic, payload, qos=qos, retain=retain)

    @property
    def protocol_name(self) -> str:
        return "5" if self.protocol == paho.MQTTv5 else "3.1.1"

    # -- supervision ----------------------------------------------------------------------------------
    def _new_client(self) -> paho.Client:
        v5 = self.protocol == paho.MQTTv5
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if v5 else False,
            protocol=self.protocol,
            manual_ack=True,
        )
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            context = ssl.create_default_context(cafile=self.broker.ca_file)
            client.tls_set_context(context)
        if self.status_topic:
            client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.silence_limit = WATCHDOG_KEEPALIVES * self.keepalive
        client.on_silence = self._on_silence
        self._attempt = 0
        client.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)  # type: ignore[arg-type]
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(10000)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        return client

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            client = self._client = self._new_client()
            properties = None
            if self.protocol == paho.MQTTv5:
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = self.session_expiry
                properties.ReceiveMaximum = self.receive_maximum
            client.connect_async(
                self.broker.host, self.broker.port, self.keepalive, clean_start=False, properties=properties
            )
            try:
                client.loop_forever(timeout=LOOP_TIMEOUT, retry_first_connection=True)
            except Exception as exc:  # e.g. TLS set-up errors: report and retry, never die
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("mqtt loop failed broker=%s error=%s", self.broker, self.last_error)
                self._stopping.wait(5.0)
            if self._fallback:
                self._fallback = False
                self.protocol = paho.MQTTv311
                log.info("broker %s does not speak MQTT 5; using MQTT 3.1.1", self.broker)
                continue
            if not self._stopping.is_set():
                self._stopping.wait(1.0)

    def _set_connected(self, up: bool) -> None:
        if up:
            self.connected.set()
        else:
            self.connected.clear()
        if self.on_state is not None:
            self.on_state(up)

    def _next_delay(self, client: paho.Client) -> None:
        """Set the wait before paho's next reconnect attempt (paho's own doubling has no jitter; set to
        one value, its next wait is exactly that). Called before each of paho's waits."""
        delay = reconnect_delay(self._attempt)
        self._attempt += 1
        client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]

    def _on_silence(self, silent: float) -> None:
        self.silences += 1
        self._silence_reason = (
            f"broker {self.broker} stopped answering: nothing received for {silent:.1f} s "
            f"(mqtt.keepalive {self.keepalive} s); dropped the connection"
        )

    def _on_connect(
        self, client: paho.Client, _userdata: Any, flags: Any, rc: ReasonCode, _props: Any
    ) -> None:
        self._connack_seen = True
        self._closed_before_connack = 0
        if rc.is_failure:
            code = rc.value
            if code == _UNSUPPORTED_PROTOCOL and self._auto and self.protocol == paho.MQTTv5:
                self._fallback = True
                client.disconnect()
                return
            if code in _BAD_CREDENTIALS:
                self.last_error = (
                    f"broker {self.broker} refused the connection: bad username or password "
                    "(mqtt.username, mqtt.password_file or HUB_MQTT_PASSWORD)"
                )
            else:
                self.last_error = f"broker {self.broker} refused the connection: {rc}"
            log.error("%s; retrying with backoff", self.last_error)
            return
        self._generation += 1
        self._attempt = 0  # paho starts its waits afresh too
        self._overlaps.new_connection()
        self.connects += 1
        self.last_error = None
        self._unreachable_logged = False
        log.info(
            "connected broker=%s protocol=%s session_present=%s",
            self.broker,
            self.protocol_name,
            flags.session_present,
        )
        self._subscribe(client, self._all_subscriptions(), session_present=flags.session_present)
        if self.status_topic:
            client.publish(self.status_topic, "online", qos=1, retain=True)
        self._set_connected(True)

    def _on_socket_open(self, _client: paho.Client, _userdata: Any, _sock: Any) -> None:
        self._connack_seen = False

    def _on_socket_close(self, client: paho.Client, _userdata: Any, _sock: Any) -> None:
        # Some 3.1.1-only brokers close an MQTT 5 connection without a CONNACK: fall back after two.
        if self._auto and self.protocol == paho.MQTTv5 and not self._connack_seen:
            self._closed_before_connack += 1
            if self._closed_before_connack >= 2:
                self._fallback = True
                client.disconnect()

    def _on_connect_fail(self, client: paho.Client, _userdata: Any) -> None:
        self._next_delay(client)
        if not self._unreachable_logged:
            self._unreachable_logged = True
            self.last_error = f"broker {self.broker} is unreachable"
            log.error(
                "broker %s is unreachable; is Mosquitto running? (mqtt.url) Retrying with backoff",
                self.broker,
            )

    def _on_disconnect(
        self, client: paho.Client, _userdata: Any, _flags: Any, rc: ReasonCode, _props: Any
    ) -> None:
        self._next_delay(client)
        was_up = self.connected.is_set()
        silence, self._silence_reason = self._silence_reason, None
        self._set_connected(False)
        if was_up and not self._stopping.is_set():
            self.last_error = silence or f"lost the connection to broker {self.broker}: {rc}"
            log.warning("%s; reconnecting", self.last_error)

    def _on_message(self, client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers refuse such topics; never let one kill the network loop
            topic = message._topic.decode("utf-8", "replace")
        properties = getattr(message, "properties", None)
        idents = getattr(properties, "SubscriptionIdentifier", None) if properties is not None else None
        if message.retain:
            duplicate = self._overlaps.seen(topic, message.payload, remember=True)
        else:
            duplicate = bool(idents) and not self._overlaps.keep(topic, idents)
            if not duplicate:
                self._overlaps.seen(topic, message.payload, remember=True)
        if duplicate:
            self.duplicates += 1
            if message.qos > 0:
                client.ack(message.mid, message.qos)
            return
        token = AckToken(self._generation, message.mid, message.qos) if message.qos > 0 else None
        self.deliver(
            Inbound(
                topic,
                message.payload,
                message.qos,
                bool(message.retain),
                time.time(),
                token,
                bool(message.dup),
            )
        )
        if isinstance(client, _Client):  # deliver may have blocked (backpressure): not the broker's silence
            client.heard = time.monotonic()


class _Overlaps:
    """Keeps one copy of a message that several of the hub's subscriptions match.

    Under MQTT 5, Mosquitto 2 sends a copy per matching subscription (``neighborhood/things/+/state``
    and ESPHome's ``+/+/+/state`` both match a native state topic; a learned Home Assistant state topic
    may fall under an ecosystem's filter). Each filter is subscribed with a subscription identifier, and
    each copy carries the identifier of the subscription it came through: a live copy is kept only when
    that is the lowest identifier of all the filters matching its topic.

    Retained copies are sent by each matching filter that is (re)subscribed, and again when a learned
    topic is subscribed after its live message already came through a wildcard: a retained copy whose
    payload is the last one this connection delivered on its topic is a duplicate too.

    Wildcard filters get an identifier each; exact topics learned later share one per batch (an exact
    topic matches only itself). The topic → lowest identifier answer is cached, bounded.
    """

    _CACHE = 20000
    _RETAINED = 50000

    def __init__(self, filters: Sequence[str]) -> None:
        self._ids: dict[str, int] = {}
        self._wild: list[tuple[int, str]] = []
        self._exact: dict[str, int] = {}
        self._next = 1
        self._lowest: dict[str, int] = {}
        self._retained: dict[str, int] = {}
        self.add(filters)

    def new_connection(self) -> None:
        self._retained = {}

    def seen(self, topic: str, payload: bytes, *, remember: bool) -> bool:
        """True when this connection's last delivery on ``topic`` had this payload; remembers it."""
        digest = hash(payload)
        last = self._retained.get(topic)
        if remember and last != digest and (last is not None or len(self._retained) < self._RETAINED):
            self._retained[topic] = digest
        return last == digest

    def add(self, filters: Sequence[str]) -> None:
        batch = 0
        for topic in filters:
            if topic in self._ids:
                continue
            if "+" in topic or "#" in topic:
                self._ids[topic] = self._next
                self._wild.append((self._next, topic))
                self._next += 1
            else:
                if not batch:
                    batch = self._next
                    self._next += 1
                self._ids[topic] = batch
                self._exact[topic] = batch
        self._lowest = {}  # filters changed: answer afresh

    def ident(self, topic: str) -> int:
        return self._ids.get(topic) or 0

    def keep(self, topic: str, idents: Sequence[int]) -> bool:
        lowest = self._lowest.get(topic)
        if lowest is None:
            matches = [ident for ident, sub in self._wild if paho.topic_matches_sub(sub, topic)]
            exact = self._exact.get(topic)
            if exact is not None:
                matches.append(exact)
            lowest = min(matches, default=0)
            if len(self._lowest) >= self._CACHE:
                self._lowest = {}
            self._lowest[topic] = lowest
        return lowest == 0 or lowest in idents
