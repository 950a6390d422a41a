"""Scans and reader availability to MQTT, with paho-mqtt's own reconnect.

Scans are taken from the :class:`~firmware_bridges.scan_queue.ScanQueue` one at a time and only
while connected; each stays in that bounded queue until the broker acknowledged it (QoS 1), so while
the broker is down scans wait there (oldest dropped first) and go out after the reconnect.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_bridges.broker_url import BrokerUrl
from firmware_bridges.scan_queue import Scan, ScanQueue

log = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"
# CONNACK codes that retrying will never fix (MQTT 3.1.1 codes 4 and 5 as paho names them in v5 terms).
_FATAL_CONNACK = {"Bad user name or password", "Not authorized"}


class Publisher:
    """Owns the MQTT client: LWT, ``online``/``offline`` availability and the scan delivery thread."""

    def __init__(
        self,
        broker: BrokerUrl,
        base_topic: str,
        reader_id: str,
        queue: ScanQueue,
        on_fatal: Callable[[str], None],
    ) -> None:
        self.broker = broker
        self.scan_topic = f"{base_topic}/readers/{reader_id}/scan"
        self.availability_topic = f"{base_topic}/readers/{reader_id}/availability"
        self.published = 0
        self._queue = queue
        self._on_fatal = on_fatal
        self._reader_online = False
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._acked: set[int] = set()
        self._acked_cond = threading.Condition()
        self._outage_logged = False
        self._thread = threading.Thread(target=self._deliver, name="mqtt-publish", daemon=True)

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"hub-bridge-{reader_id}",
            protocol=mqtt.MQTTv311,
        )
        if broker.username is not None:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            client.tls_set()
        client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client

    def start(self) -> None:
        """Connect (retrying in the background if the broker is unreachable) and start delivering."""
        try:
            self._client.connect(self.broker.host, self.broker.port, keepalive=30)
        except ssl.SSLCertVerificationError as exc:
            self._on_fatal(
                f"broker {self.broker.address}: its TLS certificate is not trusted ({exc.verify_message}); "
                f"add its CA to the system store or point SSL_CERT_FILE at it"
            )
            return
        except OSError as exc:
            self._outage_logged = True
            log.warning(
                "cannot reach broker broker=%s error=%r action=retrying_every_few_seconds scans=queued",
                self.broker.address,
                str(exc),
            )
            # connect() stored host and port; the loop thread retries them.
        self._client.loop_start()
        self._thread.start()

    def stop(self, drain_seconds: float = 2.0) -> None:
        """Deliver what is queued (briefly), publish ``offline`` and disconnect cleanly."""
        if self._connected.is_set():
            waited = 0.0
            while len(self._queue) and waited < drain_seconds:
                self._stop.wait(0.05)
                waited += 0.05
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        if self._connected.is_set():
            info = self._client.publish(self.availability_topic, OFFLINE, qos=1, retain=True)
            self._wait_acked(info.mid, timeout=2.0, stop=None)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def set_reader_online(self, online: bool) -> None:
        """Publish the reader's availability now if connected, and on every (re)connect."""
        self._reader_online = online
        if self._connected.is_set():
            self._client.publish(self.availability_topic, ONLINE if online else OFFLINE, qos=1, retain=True)

    # paho callbacks, on paho's loop thread

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            reason = str(reason_code)
            if reason in _FATAL_CONNACK:
                self._outage_logged = True  # the fatal message says it all
                self._on_fatal(
                    f"broker {self.broker.address} refused the connection: {reason.lower()}; "
                    f"check the user in --mqtt and the password (in the URL or HUB_MQTT_PASSWORD)"
                )
            else:
                log.warning("broker refused connection broker=%s reason=%r", self.broker.address, reason)
            return
        log.info("connected to broker broker=%s", self.broker.address)
        self._outage_logged = False
        state = ONLINE if self._reader_online else OFFLINE
        client.publish(self.availability_topic, state, qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self._connected.clear()
        if not self._stop.is_set() and not self._outage_logged:
            self._outage_logged = True
            log.warning(
                "lost broker broker=%s reason=%r action=reconnecting scans=queued",
                self.broker.address,
                str(reason_code),
            )

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        with self._acked_cond:
            self._acked.add(mid)
            self._acked_cond.notify_all()

    # delivery thread

    def _deliver(self) -> None:
        while not self._stop.is_set():
            scan = self._queue.peek(timeout=0.5)
            if scan is None or not self._connected.wait(timeout=0.5):
                continue
            info = self._client.publish(self.scan_topic, _scan_payload(scan), qos=1)
            # Not connected after all: paho keeps a QoS 1 message and sends it after the reconnect.
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.warning("publish failed topic=%s rc=%s", self.scan_topic, mqtt.error_string(info.rc))
                self._stop.wait(1.0)
                continue
            if self._wait_acked(info.mid, timeout=None, stop=self._stop):
                self._queue.done(scan)
                self.published += 1
                log.info("scan published topic=%s tag=%s", self.scan_topic, scan.tag)

    def _wait_acked(self, mid: int, timeout: float | None, stop: threading.Event | None) -> bool:
        waited = 0.0
        with self._acked_cond:
            while mid not in self._acked:
                if (stop is not None and stop.is_set()) or (timeout is not None and waited >= timeout):
                    return False
                self._acked_cond.wait(0.1)
                waited += 0.1
            # One scan is in flight at a time, so no other acknowledgement is still awaited.
            self._acked.clear()
            return True


def _scan_payload(scan: Scan) -> str:
    return json.dumps({"tag": scan.tag, "time": scan.time})
