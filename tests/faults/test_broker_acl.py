"""Nobody let in: the real Mosquitto running the configuration ``hub mqtt-setup`` writes.

Each test starts Mosquitto on free ports with that configuration (the LAN listener on 127.0.0.2, the
loopback listener on 127.0.0.1, a TLS listener with a certificate from a CA made in the test) and checks
what it allows and denies: the hub reads every ecosystem, a device publishes only under its own id and
reads only its own commands, and nobody without a valid password gets in.

Denials that Mosquitto answers silently are checked with a fence: the publisher sends an allowed message
after the denied one, and the broker keeps one publisher's order, so once the fence arrives the denied
message would have arrived before it.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from services import MosquittoWithConfig, find_binary, free_port

from hub.app import build_router
from hub.cli import main as hub_main
from hub.config import HubConfig, load_config, resolve_secrets

pytestmark = pytest.mark.integration

LAN = "127.0.0.2"  # a second loopback address stands in for the Pi's LAN address
LOOPBACK = "127.0.0.1"
TIMEOUT = 5.0
DEVICES = (
    "air-1",
    "air-2",
    "desk",
    "tasmota-a",
    "tasmota-b",
    "esp-kitchen",
    "shelly-1",
    "homie-1",
    "v3",
    "zigbee2mqtt",
)
NOT_AUTHORIZED = 135  # MQTT 5 reason code; MQTT 3.1.1 CONNACK return code 5


# -- the broker -------------------------------------------------------------------------------------------
@dataclass
class Broker:
    service: MosquittoWithConfig
    out: Path
    lan: int
    loopback: int
    tls: int | None
    ca: Path | None
    passwords: dict[str, str] = field(default_factory=dict)


def make_ca(workdir: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1, 127.0.0.2 and localhost (openssl CLI)."""
    openssl = find_binary("openssl", ("/usr/bin/openssl",), "openssl")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=workdir, check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=hub test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=hub test broker")
    (workdir / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext")  # fmt: skip
    return workdir / "ca.crt", workdir / "server.crt", workdir / "server.key"


def start_broker(workdir: Path, *extra: str, tls: bool = True) -> Broker:
    """Run ``hub mqtt-setup`` into ``workdir/out`` and start Mosquitto with what it wrote."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "out"
    lan, loopback = free_port(), free_port()
    args = ["mqtt-setup", "--out", str(out), "--listen", f"{LAN}:{lan}", "--loopback-port", str(loopback)]
    args += ["--persistence-dir", str(workdir / "db"), *extra]
    for device in DEVICES:
        args += ["--device", device]
    ca = None
    tls_port = None
    if tls:
        ca, cert, key = make_ca(workdir)
        tls_port = free_port()
        args += ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-port", str(tls_port)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the passwords, which the test reads from credentials.txt
        assert hub_main(args) == 0
    if os.geteuid() == 0:
        # Started as root, Mosquitto would switch to its own user and lose the temp dir; include_dir is the
        # generated configuration's own place for local additions.
        (out / "conf.d" / "test.conf").write_text("user root\n")
    passwords = {}
    for line in (out / "credentials.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            user, password = line.split("\t")
            passwords[user] = password
    service = MosquittoWithConfig(workdir, out / "mosquitto.conf", loopback)
    service.start()
    return Broker(service, out, lan, loopback, tls_port, ca, passwords)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    started = start_broker(tmp_path / "broker")
    yield started
    started.service.stop()


# -- clients ----------------------------------------------------------------------------------------------
class Session:
    """One paho client: CONNACK, PUBACK and SUBACK reason codes, and the messages it receives."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        *,
        host: str = LOOPBACK,
        v5: bool = True,
        ca: Path | None = None,
    ) -> None:
        protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.pubacks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self._acked = threading.Condition()
        self._connected = threading.Event()
        self.connack: ReasonCode | None = None
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        assert self._connected.wait(TIMEOUT), f"no CONNACK from {host}:{port} within {TIMEOUT} s"

    def _on_connect(self, client: mqtt.Client, u: object, flags: object, rc: ReasonCode, p: object) -> None:
        if self.connack is None:
            self.connack = rc
        if rc.is_failure:
            client.disconnect()  # no reconnect loop on a refusal
        self._connected.set()

    def _on_publish(self, c: object, u: object, mid: int, rc: ReasonCode, p: object) -> None:
        with self._acked:
            self.pubacks[mid] = rc.value
            self._acked.notify_all()

    def _on_subscribe(self, c: object, u: object, mid: int, codes: list[ReasonCode], p: object) -> None:
        with self._acked:
            self.subacks[mid] = [code.value for code in codes]
            self._acked.notify_all()

    @property
    def refused(self) -> bool:
        return self.connack is not None and self.connack.is_failure

    def publish(self, topic: str, payload: str = "1") -> int:
        """Publish at QoS 1 and return the PUBACK's reason code (always 0 under MQTT 3.1.1)."""
        mid = self.client.publish(topic, payload, qos=1).mid
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self.pubacks, TIMEOUT), f"no PUBACK for {topic}"
            return self.pubacks[mid]

    def subscribe(self, *topics: str) -> list[int]:
        result, mid = self.client.subscribe([(topic, 1) for topic in topics])
        assert result == mqtt.MQTT_ERR_SUCCESS
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self.subacks, TIMEOUT), f"no SUBACK for {topics}"
            return self.subacks[mid]

    def until(self, fence: str) -> list[str]:
        """Topics received up to and including ``fence`` (fails after TIMEOUT)."""
        seen: list[str] = []
        deadline = time.monotonic() + TIMEOUT
        while fence not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{fence} did not arrive within {TIMEOUT} s; got {seen}"
            try:
                seen.append(self.messages.get(timeout=remaining)[0])
            except queue.Empty:
                continue
        return seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def raw_connack(host: str, port: int, user: str | None = None, password: str | None = None) -> bytes:
    """Send an MQTT 3.1.1 CONNECT by hand and return what comes back (b"" when the broker hangs up)."""

    def text(value: str) -> bytes:
        data = value.encode()
        return struct.pack("!H", len(data)) + data

    flags = 0x02 | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
    body = text("MQTT") + bytes([4, flags]) + struct.pack("!H", 30) + text("raw-probe")
    body += (text(user) if user is not None else b"") + (text(password) if password is not None else b"")
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(bytes([0x10, len(body)]) + body)
        try:
            return sock.recv(16)
        except (ConnectionResetError, TimeoutError):
            return b""


# -- the tests ----------------------------------------------------------------------------------------------
def test_hub_receives_every_ecosystem_topic(broker: Broker) -> None:
    """The hub subscribes as `hub run` does and gets what each ecosystem's device publishes."""
    pw = broker.passwords
    hub = Session(broker.loopback, "hub", pw["hub"])
    subscriptions = [sub.topic for sub in build_router(HubConfig()).subscriptions()]
    codes = hub.subscribe(*subscriptions)
    assert all(code < 0x80 for code in codes), codes
    published = {
        "air-1": ["neighborhood/things/air-1/state", "neighborhood/things/air-1/availability"],
        "desk": ["neighborhood/readers/desk/scan"],
        "tasmota-a": ["tele/tasmota-a/SENSOR", "stat/tasmota-a/RESULT"],
        "zigbee2mqtt": [
            "zigbee2mqtt/kitchen",
            "zigbee2mqtt/bridge/devices",
            "homeassistant/sensor/0x1/t/config",
        ],
        "esp-kitchen": [
            "esp-kitchen/status",
            "esp-kitchen/sensor/temperature/state",
            "esphome/discover/esp-kitchen",
            "homeassistant/sensor/esp-kitchen/temperature/config",
        ],
        "shelly-1": [
            "shelly-1/events/rpc",
            "shelly-1/status/switch:0",
            "shelly-1/online",
            "shellies/shelly-1/relay/0",
        ],
        "homie-1": ["homie/homie-1/$state", "homie/homie-1/node/temperature"],
        "v3": ["v3/app@ttn/devices/node-1/up"],
    }
    sent: list[str] = []
    for user, topics in published.items():
        device = Session(broker.lan, user, pw[user], host=LAN)
        for topic in topics:
            assert device.publish(topic) == 0, f"{user} may publish {topic}"
            sent.append(topic)
        device.close()
    fence = "neighborhood/things/air-1/state"
    Session(broker.lan, "air-1", pw["air-1"], host=LAN).publish(fence, "fence")
    received = set(hub.until(fence)) | {t for t, _ in list(hub.messages.queue)}
    missing = sorted(set(sent) - received)
    print(f"\nhub subscriptions {len(subscriptions)}, published {len(sent)} topics from {len(published)} "
          f"device users, received {len(set(sent) & received)}")  # fmt: skip
    assert not missing, f"the hub did not receive {missing}"
    hub.close()


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_device_publishes_only_under_its_own_id(broker: Broker, v5: bool) -> None:
    pw = broker.passwords
    hub = Session(broker.loopback, "hub", pw["hub"])
    hub.subscribe("neighborhood/things/+/state", "neighborhood/hub/#", "tele/+/+", "homeassistant/#")
    air = Session(broker.lan, "air-1", pw["air-1"], host=LAN, v5=v5)
    denied = [
        "neighborhood/things/air-2/state",  # another device
        "neighborhood/hub/status",  # the hub's own topics
        "tele/tasmota-a/SENSOR",  # another ecosystem's device
        "homeassistant/sensor/air-2/pm25/config",  # announcing another device
    ]
    codes = {topic: air.publish(topic, "forged") for topic in denied}
    own = air.publish("neighborhood/things/air-1/state", '{"pm25": 1}')
    got = hub.until("neighborhood/things/air-1/state")
    print(f"\n{'MQTT 5' if v5 else 'MQTT 3.1.1'}: PUBACK codes {codes}, own {own}; hub received {got}")
    assert own == 0
    expected = NOT_AUTHORIZED if v5 else 0  # MQTT 3.1.1 has no way to say no: acknowledged and dropped
    assert codes == dict.fromkeys(denied, expected)
    assert got == ["neighborhood/things/air-1/state"], "a denied publish reached the hub"
    hub.close()
    air.close()


def test_device_reads_only_its_own_commands(tmp_path: Path) -> None:
    started = start_broker(tmp_path / "broker", "--controller", "homeassistant", tls=False)
    try:
        pw = started.passwords
        controller = Session(started.loopback, "homeassistant", pw["homeassistant"])
        plug = Session(started.lan, "tasmota-a", pw["tasmota-a"], host=LAN)
        others = ["cmnd/tasmota-b/POWER", "cmnd/#", "tele/tasmota-b/#", "neighborhood/#", "zigbee2mqtt/#"]
        suback = plug.subscribe(*others, "cmnd/tasmota-a/#")
        assert controller.publish("cmnd/tasmota-b/POWER", "ON") == 0
        assert controller.publish("zigbee2mqtt/lamp/set", '{"state": "ON"}') == 0
        assert controller.publish("cmnd/tasmota-a/POWER", "ON") == 0  # the fence, and its own command
        got = plug.until("cmnd/tasmota-a/POWER")
        print(f"\nSUBACK codes for {[*others, 'cmnd/tasmota-a/#']}: {suback}; tasmota-a received {got}")
        # Mosquitto 2.0's acl_file grants every SUBSCRIBE and checks read access on each delivery; a broker
        # that checks subscriptions answers 0x80/135 instead. Either way nothing of another device arrives.
        assert all(code in (1, 0x80, NOT_AUTHORIZED) for code in suback[:-1]), suback
        assert suback[-1] == 1
        assert got == ["cmnd/tasmota-a/POWER"], "tasmota-a read another device's command"
        assert plug.publish("cmnd/tasmota-b/POWER", "OFF") == NOT_AUTHORIZED, "a device sent a command"
        plug.close()
        controller.close()
    finally:
        started.service.stop()


def test_nobody_without_a_valid_password_gets_in(broker: Broker) -> None:
    pw = broker.passwords
    listeners = {"lan": (LAN, broker.lan, None), "loopback": (LOOPBACK, broker.loopback, None)}
    assert broker.tls is not None
    listeners["tls"] = (LAN, broker.tls, broker.ca)
    results: dict[str, int] = {}
    for name, (host, port, ca) in listeners.items():
        for who, user, password in [
            ("anonymous", None, None),
            ("wrong password", "air-1", pw["air-2"]),
            ("unknown user", "stranger", pw["air-1"]),
            ("hub wrong password", "hub", "hub"),
        ]:
            session = Session(port, user, password, host=host, ca=ca)
            assert session.connack is not None
            results[f"{name} {who}"] = session.connack.value
            session.close()
        if ca is None:
            assert raw_connack(host, port) == b"\x20\x02\x00\x05", f"MQTT 3.1.1 anonymous on {name}"
            assert raw_connack(host, port, "air-1", "nope") == b"\x20\x02\x00\x05"
        good = Session(port, "air-1", pw["air-1"], host=host, ca=ca)
        assert good.connack is not None and good.connack.value == 0, f"air-1 refused on {name}"
        good.close()
    print(f"\nCONNACK reason codes: {results}")
    assert results == dict.fromkeys(results, NOT_AUTHORIZED)


def test_anonymous_loopback_only_when_asked_and_read_only(tmp_path: Path) -> None:
    started = start_broker(tmp_path / "broker", "--allow-anonymous-loopback", tls=False)
    try:
        monitor = Session(started.loopback, None, None)
        assert monitor.connack is not None and monitor.connack.value == 0
        monitor.subscribe("#")
        assert raw_connack(LAN, started.lan) == b"\x20\x02\x00\x05", "anonymous let in on the LAN listener"
        lan = Session(started.lan, None, None, host=LAN)
        assert lan.refused
        assert monitor.publish("neighborhood/things/air-1/state", "{}") == NOT_AUTHORIZED
        device = Session(started.lan, "air-1", started.passwords["air-1"], host=LAN)
        device.publish("neighborhood/things/air-1/state", '{"pm25": 2}')
        got = monitor.until("neighborhood/things/air-1/state")
        print(f"\nanonymous on loopback: CONNACK 0, publish 135, read {got}; on the LAN: refused")
        assert got.count("neighborhood/things/air-1/state") == 1  # its own forged one was dropped
        device.close()
        monitor.close()
    finally:
        started.service.stop()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_listener_with_a_test_ca_and_no_plaintext(broker: Broker, tmp_path: Path) -> None:
    assert broker.tls is not None and broker.ca is not None
    pw = broker.passwords
    hub = Session(broker.loopback, "hub", pw["hub"])
    hub.subscribe("neighborhood/things/+/state")
    device = Session(broker.tls, "air-1", pw["air-1"], host=LAN, ca=broker.ca)
    assert device.connack is not None and device.connack.value == 0
    assert device.publish("neighborhood/things/air-1/state", '{"pm25": 3}') == 0
    assert hub.until("neighborhood/things/air-1/state")
    version = device.client.socket().version()  # type: ignore[union-attr]
    # Plain MQTT on the TLS port: no CONNACK, the handshake fails and the broker hangs up.
    plain = raw_connack(LAN, broker.tls, "air-1", pw["air-1"])
    assert not plain.startswith(b"\x20"), plain
    # A client that does not trust the test CA does not get through either (it is that CA's certificate).
    other_ca = make_ca(tmp_path)[0]
    with pytest.raises(ssl.SSLCertVerificationError):
        Session(broker.tls, "air-1", pw["air-1"], host=LAN, ca=other_ca)
    # TLS older than 1.2 is refused by the broker (the client is allowed to offer it).
    context = ssl.create_default_context(cafile=str(broker.ca))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        pytest.raises(ssl.SSLError) as old,
        socket.create_connection((LAN, broker.tls), timeout=TIMEOUT) as sock,
    ):
        context.wrap_socket(sock, server_hostname=LAN)
    assert "NO_PROTOCOLS_AVAILABLE" not in str(old.value), f"the client could not offer TLS 1.1: {old.value}"
    print(f"\nTLS: {version} with the test CA; plaintext got {plain!r}; TLS 1.1: {old.value}")
    device.close()
    hub.close()


def test_hub_config_snippet_connects(broker: Broker, tmp_path: Path) -> None:
    """hub-mqtt.yaml and hub-mqtt-password, as the hub resolves them, log in on the loopback listener."""
    snippet = (broker.out / "hub-mqtt.yaml").read_text()
    snippet = snippet.replace("/etc/hub/mqtt-password", str(broker.out / "hub-mqtt-password"))
    config_path = tmp_path / "hub.yaml"
    config_path.write_text(snippet)
    config = load_config(config_path)
    secrets = resolve_secrets(config, {})
    assert config.mqtt.url == f"mqtt://hub@127.0.0.1:{broker.loopback}"
    session = Session(broker.loopback, secrets.mqtt_username, secrets.mqtt_password)
    assert session.connack is not None and session.connack.value == 0
    session.close()
