"""Load generator: many simulated devices publishing over raw MQTT 3.1.1 sockets (asyncio).

Each device is one MQTT connection with its own client id, as a real device is, publishing in its
ecosystem's own topics and payload shapes (compact forms of the cases in the shared payload fixtures):

    native       neighborhood/things/<id>/state        {"temperature":21.3,"humidity":55.2,"pm25":8.1}
    zigbee2mqtt  zigbee2mqtt/<name>                    {"temperature":24.59,...,"voltage":2975}
    tasmota      tele/<topic>/SENSOR                   {"Time":"…","BME280":{"Temperature":21.7,…},…}
    shelly       <prefix>/events/rpc                   NotifyStatus with temperature:0 and humidity:0
    esphome      <node>/sensor/temperature/state       20.5

Every message carries a ``temperature`` (so one count over that field is the number of points stored,
whatever the ecosystem) plus the fields its kind of device sends. Device times, where the ecosystem
sends one (Tasmota's ``Time``, Shelly's ``ts``), are the send time in milliseconds and strictly increase
per device, so no two messages of one device become one point.

Devices publish at different rates (a power plug more often than an air sensor: ``--mix`` weights
ecosystems, each device gets a rate weight of 1 to 4). The total rate follows a profile:

    steady   --rate msg/s for --duration s
    ramp     from --rate-from to --rate over --duration s
    burst    --rate, with --burst-factor times that for --burst-s every --burst-every s
    storm    --rate, and every --storm-every s, --storm-clients devices drop their connection without
             DISCONNECT (their last will, ``offline`` on the availability topic, fires), then all
             reconnect at once and say ``online`` again

Messages are paced in 5 ms ticks; each connection's messages of a tick go out in one write. The
summary (JSON on stdout with ``--json``) says what was published, acknowledged (QoS 1) and how far the
generator fell behind its schedule, so a run that could not offer the load is never mistaken for one
the hub could not take.

    .venv/bin/python bench/loadgen.py --broker 127.0.0.1:1883 --devices 1000 --rate 5000 --duration 10
    .venv/bin/python bench/loadgen.py --broker 127.0.0.1:1883 --profile storm --storm-clients 300
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import resource
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

TICK_S = 0.005
ECOSYSTEMS = ("native", "zigbee2mqtt", "tasmota", "shelly", "esphome")
DEFAULT_MIX = "native=40,zigbee2mqtt=25,tasmota=15,shelly=10,esphome=10"


# -- MQTT 3.1.1 packets (only what a device sends) -------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(raw)) + raw


def connect_packet(
    client_id: str,
    *,
    keepalive: int = 60,
    will: tuple[str, bytes] | None = None,
    clean: bool = True,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT, MQTT 3.1.1; ``will`` (topic, payload) is sent retained at QoS 1."""
    flags = 0x02 if clean else 0
    body = _string(client_id)
    if will is not None:
        flags |= 0x04 | 0x08 | 0x20  # will, will QoS 1, will retain
        body += _string(will[0]) + _string(will[1])
    if username is not None:
        flags |= 0x80
        body += _string(username)
        if password is not None:
            flags |= 0x40
            body += _string(password)
    header = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    return b"\x10" + _varint(len(header) + len(body)) + header + body


def publish_packet(topic: bytes, payload: bytes, qos: int = 0, mid: int = 0, retain: bool = False) -> bytes:
    """PUBLISH; ``topic`` already UTF-8."""
    head = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    return bytes([0x30 | qos << 1 | retain]) + _varint(len(head) + len(payload)) + head + payload


DISCONNECT = b"\xe0\x00"
PINGREQ = b"\xc0\x00"


def read_packets(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Complete packets at the front of ``buffer`` (removed from it): (first byte, body)."""
    packets = []
    pos = 0
    end = len(buffer)
    while end - pos >= 2:
        length = mult = 0
        i = pos + 1
        while True:
            if i >= end:
                del buffer[:pos]
                return packets
            byte = buffer[i]
            length += (byte & 0x7F) << mult
            mult += 7
            i += 1
            if not byte & 0x80:
                break
        if end - i < length:
            break
        packets.append((buffer[pos], bytes(buffer[i : i + length])))
        pos = i + length
    del buffer[:pos]
    return packets


# -- devices --------------------------------------------------------------------------------------------
@dataclass
class Device:
    ident: str
    ecosystem: str
    weight: int
    topic: bytes
    availability: tuple[str, bytes, bytes] | None  # (topic, online, offline), retained
    last_ms: int = 0
    seq: int = 0

    def payload(self, now: float) -> bytes:
        """The next message's payload: values drift with the sequence number, times strictly increase."""
        self.seq += 1
        s = self.seq
        t = 18.0 + (s % 97) / 10
        h = 40.0 + (s % 43)
        eco = self.ecosystem
        if eco == "native":
            return b'{"temperature":%.1f,"humidity":%.1f,"pm25":%.1f,"pm10":%.1f}' % (
                t,
                h,
                3 + s % 30,
                8 + s % 40,
            )
        if eco == "zigbee2mqtt":
            return (
                b'{"temperature":%.2f,"linkquality":%d,"humidity":%.2f,"pressure":%d,"battery":%d,"voltage":%d}'
                % (t, 30 + s % 200, h, 990 + s % 30, 100 - s % 60, 2900 + s % 300)
            )
        ms = max(int(now * 1000), self.last_ms + 1)
        self.last_ms = ms
        if eco == "tasmota":
            stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
            return (
                b'{"Time":"%s","BME280":{"Temperature":%.1f,"Humidity":%.1f,"Pressure":%.1f},'
                b'"PressureUnit":"hPa","TempUnit":"C"}' % (stamp.encode(), t, h, 980 + (s % 40) / 2)
            )
        if eco == "shelly":
            return (
                b'{"src":"%s","dst":"%s/events","method":"NotifyStatus","params":{"ts":%.3f,'
                b'"temperature:0":{"id":0,"tC":%.1f,"tF":%.1f},"humidity:0":{"id":0,"rh":%.1f}}}'
                % (self.ident.encode(), self.ident.encode(), ms / 1000, t, t * 1.8 + 32, h)
            )
        return b"%.1f" % t  # esphome: a plain value on the component's state topic


def make_devices(count: int, mix: dict[str, int], seed: int = 1, prefix: str = "") -> list[Device]:
    """``count`` devices, ecosystems in proportion to ``mix``, rate weights 1-4 (seeded, reproducible)."""
    rng = random.Random(seed)
    total = sum(mix.values())
    plan: list[str] = []
    for eco, weight in mix.items():
        plan += [eco] * round(count * weight / total)
    plan = (plan + [next(iter(mix))] * count)[:count]
    devices = []
    for i, eco in enumerate(plan):
        n = f"{prefix}{i:05d}"
        weight = rng.choice((1, 1, 2, 4))
        if eco == "native":
            ident = f"dev-{n}"
            topic = f"neighborhood/things/{ident}/state"
            avail = (f"neighborhood/things/{ident}/availability", b"online", b"offline")
        elif eco == "zigbee2mqtt":
            ident = f"z2m-{n}"
            topic, avail = f"zigbee2mqtt/{ident}", None  # behind the bridge: no connection of its own
        elif eco == "tasmota":
            ident = f"tasmota_{n}"
            topic = f"tele/{ident}/SENSOR"
            avail = (f"tele/{ident}/LWT", b"Online", b"Offline")
        elif eco == "shelly":
            ident = f"shellyplusht-{n}"
            topic = f"{ident}/events/rpc"
            avail = (f"{ident}/online", b"true", b"false")
        else:
            ident = f"esp-{n}"
            topic = f"{ident}/sensor/temperature/state"
            avail = (f"{ident}/status", b"online", b"offline")
        devices.append(Device(ident, eco, weight, topic.encode(), avail))
    return devices


# -- rate profiles --------------------------------------------------------------------------------------
def profile(args: argparse.Namespace) -> Callable[[float], float]:
    """Messages/s at ``t`` seconds into the run."""
    rate = float(args.rate)
    if args.profile == "ramp":
        start, span = float(args.rate_from), max(args.duration, 1e-9)
        return lambda t: start + (rate - start) * min(t / span, 1.0)
    if args.profile == "burst":
        factor, on, every = args.burst_factor, args.burst_s, args.burst_every
        return lambda t: rate * factor if (t % every) >= every - on else rate
    return lambda t: rate


# -- connections ----------------------------------------------------------------------------------------
class Connection(asyncio.Protocol):
    """One device's MQTT connection: CONNACK, PUBACKs counted, everything else ignored."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self.mid = 0
        self.pending = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) == 4 and self._buffer[0] == 0x40:  # the common case: one PUBACK
            self.stats.acked += 1
            self._buffer.clear()
            return
        for kind, body in read_packets(self._buffer):
            if kind == 0x40:
                self.stats.acked += 1
            elif kind == 0x20 and not self.connected.done():
                if body[1] == 0:
                    self.connected.set_result(True)
                else:
                    self.connected.set_exception(ConnectionError(f"CONNACK return code {body[1]}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(exc or ConnectionError("closed before CONNACK"))
        if not self.closed.done():
            self.closed.set_result(None)

    def next_mid(self) -> int:
        self.mid = self.mid % 65535 + 1
        return self.mid

    def flush(self) -> None:
        if self.pending and self.transport is not None and not self.transport.is_closing():
            self.transport.write(bytes(self.pending))
        self.pending.clear()


@dataclass
class Stats:
    published: int = 0
    acked: int = 0
    behind_max: float = 0.0
    by_ecosystem: dict[str, int] = field(default_factory=dict)
    #: QoS 1 availability announcements (their PUBACKs are not part of the load)
    announced: int = 0
    reconnects: int = 0
    storms: int = 0
    connect_s: float = 0.0
    elapsed: float = 0.0
    wanted: float = 0.0


class LoadGenerator:
    """Runs the devices against one broker; ``run()`` returns the Stats when the profile is done."""

    def __init__(self, args: argparse.Namespace, devices: list[Device]) -> None:
        self.args = args
        self.devices = devices
        self.stats = Stats(by_ecosystem=dict.fromkeys(ECOSYSTEMS, 0))
        self.qos = args.qos
        # Zigbee2MQTT devices publish through their bridge's one connection, as they do for real.
        self.bridge_index = next((i for i, d in enumerate(devices) if d.ecosystem == "zigbee2mqtt"), None)
        self.conns: list[Connection | None] = [None] * len(devices)
        #: MQTT user → password (``hub mqtt-setup``'s credentials.txt); a device without one is anonymous
        self.credentials = read_credentials(args.credentials) if args.credentials else {}

    def _owner(self, i: int) -> int:
        return self.bridge_index if self.devices[i].ecosystem == "zigbee2mqtt" else i  # type: ignore[return-value]

    async def _connect(self, i: int) -> Connection:
        loop = asyncio.get_running_loop()
        device = self.devices[i]
        will = None
        client_id = user = device.ident
        if device.ecosystem == "zigbee2mqtt":
            client_id, user = f"zigbee2mqtt-bridge{self.args.prefix}", "zigbee2mqtt"
            will = ("zigbee2mqtt/bridge/state", b'{"state":"offline"}')
        elif device.availability is not None:
            will = (device.availability[0], device.availability[2])
        _, conn = await loop.create_connection(lambda: Connection(self.stats), self.args.host, self.args.port)
        password = self.credentials.get(user)
        packet = connect_packet(
            client_id, will=will, username=user if password is not None else None, password=password
        )
        conn.transport.write(packet)  # type: ignore[union-attr]
        await asyncio.wait_for(conn.connected, 30)
        if device.availability is not None:
            conn.transport.write(  # type: ignore[union-attr]
                publish_packet(
                    device.availability[0].encode(), device.availability[1], 1, conn.next_mid(), True
                )
            )
            self.stats.announced += 1
        self.conns[i] = conn
        return conn

    async def connect_all(self) -> None:
        started = time.perf_counter()
        owners = sorted({self._owner(i) for i in range(len(self.devices))})
        for start in range(0, len(owners), 100):  # a few at a time, as devices booting on a LAN
            await asyncio.gather(*(self._connect(i) for i in owners[start : start + 100]))
        self.stats.connect_s = time.perf_counter() - started

    async def _storm(self, rng: random.Random) -> None:
        """Drop ``--storm-clients`` connections without DISCONNECT, then reconnect them all at once."""
        owners = sorted({self._owner(i) for i in range(len(self.devices))})
        victims = rng.sample(owners, min(self.args.storm_clients, len(owners)))
        for i in victims:
            conn = self.conns[i]
            self.conns[i] = None
            if conn is not None and conn.transport is not None:
                conn.transport.abort()  # a power cut: the broker sends the device's last will
        await asyncio.sleep(self.args.storm_down_s)
        await asyncio.gather(*(self._connect(i) for i in victims))
        self.stats.reconnects += len(victims)
        self.stats.storms += 1

    async def run(self) -> Stats:
        args = self.args
        rate_at = profile(args)
        devices = self.devices
        # a cyclic schedule in which each device appears as often as its weight says
        order = [i for i, d in enumerate(devices) for _ in range(d.weight)]
        rng = random.Random(args.seed)
        rng.shuffle(order)
        cycle = itertools.cycle(order)
        owner = [self._owner(i) for i in range(len(devices))]
        conns = self.conns
        qos = self.qos
        stats = self.stats
        by_eco = stats.by_ecosystem
        storms: list[asyncio.Task[None]] = []
        next_storm = args.storm_every if args.profile == "storm" else float("inf")
        start = time.perf_counter()
        due = 0.0
        sent = 0
        last = 0.0
        while True:
            now = time.perf_counter()
            t = now - start
            if t >= args.duration:
                break
            due += rate_at(t) * (t - last)
            last = t
            if t >= next_storm:
                next_storm += args.storm_every
                storms.append(asyncio.create_task(self._storm(rng)))
            n = int(due) - sent
            if n > 0:
                wall = time.time()
                touched = set()
                for _ in range(n):
                    i = next(cycle)
                    o = owner[i]
                    conn = conns[o]
                    if conn is None:  # down in a storm: the device has nothing to send to (skipped)
                        due -= 1
                        continue
                    device = devices[i]
                    payload = device.payload(wall)
                    conn.pending += publish_packet(device.topic, payload, qos, conn.next_mid() if qos else 0)
                    touched.add(o)
                    by_eco[device.ecosystem] += 1
                    sent += 1
                for o in touched:
                    conns[o].flush()  # type: ignore[union-attr]
            stats.behind_max = max(stats.behind_max, (time.perf_counter() - now))
            await asyncio.sleep(max(0.0, TICK_S - (time.perf_counter() - now)))
        stats.elapsed = time.perf_counter() - start
        stats.published = sent
        stats.wanted = due
        for task in storms:
            await task
        if qos:
            deadline = time.monotonic() + 60
            while stats.acked < sent + stats.announced and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        return stats

    async def close(self) -> None:
        for conn in {id(c): c for c in self.conns if c is not None}.values():
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.write(DISCONNECT)
                conn.transport.close()


def read_credentials(path: str) -> dict[str, str]:
    """``user<TAB>password`` lines, as ``hub mqtt-setup`` writes credentials.txt (# comments)."""
    pairs = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip() and not line.startswith("#"):
                user, _, password = line.rstrip("\n").partition("\t")
                pairs[user] = password
    return pairs


def parse_mix(text: str) -> dict[str, int]:
    mix = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name not in ECOSYSTEMS:
            raise argparse.ArgumentTypeError(
                f"--mix: unknown ecosystem {name!r} (one of {', '.join(ECOSYSTEMS)})"
            )
        mix[name] = int(weight or 1)
    return mix


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT (loopback only)")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--credentials", help="user<TAB>password lines (hub mqtt-setup's credentials.txt)")
    p.add_argument("--mix", type=parse_mix, default=parse_mix(DEFAULT_MIX))
    p.add_argument("--qos", type=int, choices=(0, 1), default=0)
    p.add_argument("--profile", choices=("steady", "ramp", "burst", "storm"), default="steady")
    p.add_argument("--rate", type=float, default=1000.0, help="messages/s (the top of a ramp)")
    p.add_argument("--rate-from", type=float, default=100.0, help="ramp: messages/s at the start")
    p.add_argument("--duration", type=float, default=10.0, help="seconds")
    p.add_argument("--burst-factor", type=float, default=5.0)
    p.add_argument("--burst-s", type=float, default=1.0)
    p.add_argument("--burst-every", type=float, default=5.0)
    p.add_argument("--storm-clients", type=int, default=300)
    p.add_argument("--storm-every", type=float, default=5.0)
    p.add_argument("--storm-down-s", type=float, default=0.5)
    p.add_argument("--prefix", default="", help="device id prefix (keeps runs apart)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    return p


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


async def run(args: argparse.Namespace) -> Stats:
    host, _, port = args.broker.rpartition(":")
    args.host, args.port = host or "127.0.0.1", int(port)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        raise SystemExit(
            "loadgen: only brokers on this machine's loopback are a target (--broker 127.0.0.1:PORT)"
        )
    raise_file_limit(args.devices + 256)
    gen = LoadGenerator(args, make_devices(args.devices, args.mix, args.seed, args.prefix))
    await gen.connect_all()
    try:
        return await gen.run()
    finally:
        await gen.close()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stats = asyncio.run(run(args))
    summary = {
        "published": stats.published,
        "acked": stats.acked - stats.announced if args.qos else None,
        "rate": round(stats.published / stats.elapsed, 1) if stats.elapsed else 0.0,
        "wanted": int(stats.wanted),
        "elapsed_s": round(stats.elapsed, 3),
        "connect_s": round(stats.connect_s, 3),
        "tick_max_ms": round(stats.behind_max * 1000, 1),
        "by_ecosystem": stats.by_ecosystem,
        "reconnects": stats.reconnects,
        "storms": stats.storms,
    }
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0 if not args.qos or stats.acked - stats.announced >= stats.published else 1


if __name__ == "__main__":
    sys.exit(main())
