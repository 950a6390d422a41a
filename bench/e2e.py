"""End-to-end benchmark: simulated devices → Mosquitto → the hub (or a peer) → InfluxDB 1.x.

One command measures the hub and, with ``--peers``, Node-RED (a naive flow writing each message, and a
batched flow) and Home Assistant 2025.4 (MQTT sensors and its InfluxDB integration) on the same
machine, the same broker configuration and the same workload, and writes the figures and ratios to
``--results`` (bench/RESULTS.md):

    .venv/bin/python bench/e2e.py --peers --results bench/RESULTS.md

For each system, fresh servers on free loopback ports:

- Mosquitto configured as ``hub mqtt-setup`` writes it for production (a user and password per device,
  the ACL, ``config/mosquitto/tuning.conf`` as ``conf.d/hub-tuning.conf``), plus ``sys_interval 1`` so
  the broker's counters are read every second; an anonymous read-only loopback listener for them.
- InfluxDB 1.6.7 (Debian's ``influxd``) with an empty database.
- the system under test, subscribed as its own MQTT user.

Then rate steps of ``--step-s`` seconds each, from ``--start-rate`` doubling until a step loses a
message, then ``--refine`` bisections between the last clean step and the first lossy one. A step is
clean when every published message is stored (``count(temperature)`` over the step's window equals what
the load generator published) and the broker's ``$SYS/broker/publish/messages/dropped`` did not move.
The load is bench/loadgen.py in its own process (``--devices`` devices, each its own MQTT connection,
ecosystems mixed); QoS 0, and for the hub also QoS 1 (acknowledged by the hub only after storage).

Measured per step:

- publish → stored latency: a probe device publishes 20 readings/s with distinct values during the
  step; InfluxDB is polled every 20 ms for them, and a probe's latency is the poll that first returned it
  minus its publish time (one clock; resolution one poll, about 20 ms, which the figures include);
- CPU seconds (user + system, from /proc) of the system under test, Mosquitto and influxd separately,
  per 1,000 messages published; peak RSS (VmHWM) of each;
- for the hub, alert latency at ``--alert-rate`` msg/s of background load: a seeded flood sensor's
  ``water_leak`` toggled ``--alerts`` times, from the publish of ``true`` to the alert's retained message
  on ``neighborhood/alerts/<id>`` (received by this process).

Benchmarks are not part of the test suite. Needs: mosquitto, influxd (scripts/test installs them), and
for ``--peers`` bench/peers/install.sh (Node-RED; the InfluxDB client for scripts/test's Home Assistant).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(BENCH))
import loadgen  # noqa: E402
from services import InfluxDB1, MosquittoWithConfig, free_port, port_open  # noqa: E402

DB = "bench"
PROBE = "bench-probe"
FLOOD = "bench-flood"
PROBE_RATE = 20.0
#: a step is sustained when its last message is stored within this many seconds of its last publish
DRAIN_LIMIT_S = 3.0
POLL_S = 0.02
CACHE = Path(os.environ.get("BENCH_CACHE", "/var/cache/neighborhood-hub"))
NODE_RED = CACHE / "node-red" / "node_modules" / "node-red" / "red.js"
HASS = Path(os.environ.get("HUB_TEST_HASS", CACHE / "ha-2025.4.4" / "bin" / "hass"))


# -- processes --------------------------------------------------------------------------------------------
def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, with reaped children) of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def proc_memory(pid: int) -> tuple[int, int]:
    """(RSS, peak RSS) in bytes."""
    rss = peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return rss, peak


def versions() -> str:
    """What ran: Python and paho-mqtt of the hub, Mosquitto, InfluxDB, Node-RED, Home Assistant."""
    import paho.mqtt

    def first_line(command: list[str]) -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        except OSError:
            return "not installed"
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"

    node_red = CACHE / "node-red" / "node_modules" / "node-red" / "package.json"
    red = json.loads(node_red.read_text())["version"] if node_red.exists() else "not installed"
    hass = HASS.parent.parent / ".hub-installed"
    ha = hass.read_text().split()[0] if hass.exists() else "not installed"
    return (
        f"Python {platform.python_version()}, paho-mqtt {paho.mqtt.__version__}; "
        f"{first_line(['/usr/sbin/mosquitto', '-h'])}; InfluxDB {first_line(['influxd', 'version'])}; "
        f"Node-RED {red} on Node.js {first_line(['node', '--version'])}; {ha}"
    )


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- servers ----------------------------------------------------------------------------------------------
class Broker:
    """Mosquitto as ``hub mqtt-setup`` configures it, for these devices and controllers."""

    def __init__(self, work: Path, devices: list[str]) -> None:
        self.work = work
        self.port = free_port()
        self.local_port = free_port()
        out = work / "mosquitto"
        ids = work / "device-ids.txt"
        ids.write_text("\n".join(devices) + "\n")
        subprocess.run(
            [
                sys.executable, "-m", "hub.cli", "mqtt-setup", "--out", str(out), "--devices-file", str(ids),
                "--controller", "homeassistant", "--controller", "nodered",
                "--listen", f"127.0.0.1:{self.port}", "--loopback-port", str(self.local_port),
                "--allow-anonymous-loopback", "--persistence-dir", str(work / "mosquitto-data"),
            ],
            check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        (work / "mosquitto-data").mkdir(exist_ok=True)
        # Local additions: counters every second, and stay root (the files are in a private temp dir).
        extra = "sys_interval 1\n" + ("user root\n" if os.geteuid() == 0 else "")
        (out / "conf.d" / "bench.conf").write_text(extra)
        self.credentials_file = out / "credentials.txt"
        self.credentials = loadgen.read_credentials(str(self.credentials_file))
        self.server = MosquittoWithConfig(work / "mosquitto-run", out / "mosquitto.conf", self.port)
        self._dropped = 0
        #: $SYS/broker/messages/stored: retained, queued and in-flight messages the broker holds, and
        #: when it last changed (Mosquitto publishes a $SYS value only when it changes)
        self.stored_messages: list[int] = []
        self.stored_changed = time.monotonic()
        self._seen = threading.Event()
        self._monitor: paho.Client | None = None

    def start(self) -> None:
        self.server.start()
        while not port_open(self.local_port):
            time.sleep(0.05)
        monitor = self._monitor = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-monitor")

        def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
            if message.topic.endswith("/dropped"):
                self._dropped = int(message.payload)
                self._seen.set()
            else:
                self.stored_messages = [*self.stored_messages[-9:], int(message.payload)]
                self.stored_changed = time.monotonic()

        monitor.on_message = on_message
        monitor.on_connect = lambda c, *_: c.subscribe(
            [("$SYS/broker/publish/messages/dropped", 0), ("$SYS/broker/messages/stored", 0)]
        )
        monitor.connect("127.0.0.1", self.local_port)
        monitor.loop_start()
        if not self._seen.wait(10):
            raise RuntimeError("Mosquitto published no $SYS/broker/publish/messages/dropped within 10 s")

    def wait_idle(self, timeout: float = 300.0) -> float:
        """Wait until the broker holds no backlog: its count of stored messages unchanged for 3 s, or
        moved by fewer than 50 over its last four updates (a step that overloaded a QoS 1 subscriber
        leaves up to max_queued_messages queued for it, and the next step must not start on top of
        them). Seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            time.sleep(1.0)
            last = self.stored_messages[-4:]
            if time.monotonic() - self.stored_changed > 3.0 or (
                len(last) == 4 and max(last) - min(last) < 50
            ):
                break
        return time.monotonic() - started

    def dropped(self) -> int:
        """The broker's drop counter, as of its next $SYS update (at most 1 s away)."""
        self._seen.clear()
        self._seen.wait(2.5)
        return self._dropped

    def client(self, user: str, name: str) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=name)
        c.username_pw_set(user, self.credentials[user])
        c.max_inflight_messages_set(1000)
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        return c

    def listener(self, topic: str, on_message: Any) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-listen-{topic[:20]}")
        c.on_message = on_message
        c.on_connect = lambda cl, *_: cl.subscribe(topic, 1)
        c.connect("127.0.0.1", self.local_port)
        c.loop_start()
        return c

    @property
    def pid(self) -> int:
        assert self.server._process is not None
        return self.server._process.pid

    def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.loop_stop()
        self.server.stop()


class Influx:
    def __init__(self, work: Path) -> None:
        self.server = InfluxDB1(work / "influxdb")

    def start(self) -> None:
        self.server.start()
        self.server.create_database(DB)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        assert self.server._process is not None
        return self.server._process.pid

    def values(self, query: str) -> list[Any]:
        """First column after time of every row (empty when the measurement does not exist yet)."""
        data = urllib.parse.urlencode({"q": query, "db": DB, "epoch": "ns"}).encode()
        with urllib.request.urlopen(f"{self.url}/query", data, timeout=30) as response:
            answer = json.loads(response.read())
        out = []
        for result in answer.get("results", []):
            for series in result.get("series", []):
                out += [row[1] for row in series["values"]]
        return out

    def stop(self) -> None:
        self.server.stop()


# -- systems under test ----------------------------------------------------------------------------------
class System:
    """A system that takes the devices' messages from the broker and writes them to InfluxDB."""

    name = "system"
    label = "system"
    qos_levels: tuple[int, ...] = (0,)
    #: InfluxQL: the field every load message stores, the tag naming the device, the probe's tag value
    field_name = "temperature"
    tag = "thing"
    probe_tag = PROBE

    def __init__(self, work: Path, broker: Broker, influx: Influx) -> None:
        self.work = work
        self.broker = broker
        self.influx = influx
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log = work / f"{self.name}.log"

    def start(self) -> None:
        raise NotImplementedError

    def _spawn(self, command: list[str], **kwargs: Any) -> None:
        with self.log.open("ab") as log:
            self.processes.append(
                subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
                )
            )

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stored(self, since_ns: int) -> int:
        rows = self.influx.values(
            f'SELECT count("{self.field_name}") FROM "reading" '
            f"WHERE time >= {since_ns} AND \"{self.tag}\" != '{self.probe_tag}'"
        )
        return int(rows[0]) if rows else 0

    def probes(self, since_ns: int) -> list[float]:
        return [
            float(v)
            for v in self.influx.values(
                f'SELECT "{self.field_name}" FROM "reading" '
                f"WHERE time >= {since_ns} AND \"{self.tag}\" = '{self.probe_tag}'"
            )
        ]

    def alive(self) -> bool:
        return bool(self.processes) and all(process.poll() is None for process in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


class Hub(System):
    """``hub run``; with ``workers``, the scale-out of docs/scale-out.md: one ``--role state`` process
    and that many ``--role ingest`` workers on a PostgreSQL store (the machine's, 127.0.0.1:5432)."""

    qos_levels = (0, 1)

    def __init__(self, work: Path, broker: Broker, influx: Influx, workers: int = 0) -> None:
        self.workers = workers
        self.name = f"hub-{workers}w" if workers else "hub"
        self.label = f"Neighborhood Hub, {workers} ingest workers" if workers else "Neighborhood Hub"
        super().__init__(work, broker, influx)
        self.database: Any = None

    def start(self) -> None:
        storage = f"storage:\n  path: {self.work / 'hub-data'}\n"
        if self.workers:
            from services import PostgresDatabase

            self.database = PostgresDatabase()
            self.database.create()
            storage += f"  url: {self.database.url}\n"
        seed(self.database.url if self.database else self.work / "hub-data", self.work / "hub-data")
        setup = self.broker.work / "mosquitto"
        config = self.work / "hub.yaml"
        config.write_text(
            f"mqtt:\n  url: mqtt://hub@127.0.0.1:{self.broker.local_port}\n"
            f"  password_file: {setup / 'hub-mqtt-password'}\n  client_id: hub-bench\n"
            f"timeseries:\n  kind: influxdb-v1\n  url: {self.influx.url}\n  database: {DB}\n"
            f"{storage}web:\n  listen: 127.0.0.1:{free_port()}\nlog:\n  level: warning\n"
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        run = [sys.executable, "-m", "hub.cli", "run", "--config", str(config)]
        if not self.workers:
            self._spawn(run, cwd=ROOT, env=env)
            return
        self._spawn([*run, "--role", "state"], cwd=ROOT, env=env)
        for n in range(1, self.workers + 1):
            self._spawn([*run, "--role", "ingest", "--worker", str(n)], cwd=ROOT, env=env)

    def stop(self) -> None:
        super().stop()
        if self.database is not None:
            self.database.drop()


class NodeRed(System):
    """Node-RED with node-red-contrib-influxdb; ``batched``: a join node gathers up to 1,000 points or
    1 s, then one influxdb batch write; otherwise one influxdb out write per message."""

    def __init__(self, work: Path, broker: Broker, influx: Influx, *, batched: bool) -> None:
        self.batched = batched
        self.name = "node-red-batched" if batched else "node-red-naive"
        self.label = "Node-RED, batched flow" if batched else "Node-RED, naive flow"
        super().__init__(work, broker, influx)

    def start(self) -> None:
        if not NODE_RED.exists():
            raise SystemExit(f"Node-RED not found at {NODE_RED}: run bench/peers/install.sh")
        user_dir = self.work / self.name
        user_dir.mkdir(exist_ok=True)
        flow = "flow-batched.json" if self.batched else "flow-naive.json"
        text = (BENCH / "peers" / "node-red" / flow).read_text()
        port = urllib.parse.urlsplit(self.influx.url).port
        text = text.replace("@BROKER_PORT@", str(self.broker.port)).replace("@INFLUX_PORT@", str(port))
        (user_dir / "flows.json").write_text(text)
        credentials = {"bench-broker": {"user": "nodered", "password": self.broker.credentials["nodered"]}}
        (user_dir / "flows_cred.json").write_text(json.dumps(credentials))
        settings = (BENCH / "peers" / "node-red" / "settings.js").read_text()
        (user_dir / "settings.js").write_text(settings.replace("@UI_PORT@", str(free_port())))
        self._spawn(
            ["node", str(NODE_RED), "--userDir", str(user_dir), "--settings", str(user_dir / "settings.js")]
        )


class HomeAssistant(System):
    """Home Assistant 2025.4 with one MQTT sensor per device and its InfluxDB integration (1.x API)."""

    name = "homeassistant"
    label = "Home Assistant 2025.4"
    field_name = "value"
    tag = "entity_id"
    probe_tag = PROBE.replace("-", "_")

    def __init__(self, work: Path, broker: Broker, influx: Influx, devices: list[loadgen.Device]) -> None:
        super().__init__(work, broker, influx)
        self.devices = devices

    def start(self) -> None:
        if not HASS.exists():
            raise SystemExit(
                f"Home Assistant not found at {HASS}: run scripts/test, then bench/peers/install.sh"
            )
        config = self.work / "homeassistant"
        (config / ".storage").mkdir(parents=True, exist_ok=True)
        sensors = [sensor_yaml(PROBE, f"neighborhood/things/{PROBE}/state", "{{ value_json.temperature }}")]
        templates = {
            "native": "{{ value_json.temperature }}",
            "zigbee2mqtt": "{{ value_json.temperature }}",
            "tasmota": "{{ value_json.BME280.Temperature }}",
            "shelly": "{{ value_json.params['temperature:0'].tC }}",
            "esphome": "{{ value }}",
        }
        for device in self.devices:
            sensors.append(sensor_yaml(device.ident, device.topic.decode(), templates[device.ecosystem]))
        port = urllib.parse.urlsplit(self.influx.url).port
        template = (BENCH / "peers" / "homeassistant" / "configuration.yaml").read_text()
        (config / "configuration.yaml").write_text(
            template.replace("@HTTP_PORT@", str(free_port())).replace("@INFLUX_PORT@", str(port))
            + "\n".join(sensors)
            + "\n"
        )
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        entry = {
            "created_at": now,
            "data": {
                "broker": "127.0.0.1",
                "port": self.broker.port,
                "username": "homeassistant",
                "password": self.broker.credentials["homeassistant"],
            },
            "disabled_by": None,
            "discovery_keys": {},
            "domain": "mqtt",
            "entry_id": "01BENCHMQTTENTRY0000000000",
            "minor_version": 2,
            "modified_at": now,
            "options": {},
            "pref_disable_new_entities": False,
            "pref_disable_polling": False,
            "source": "user",
            "subentries": [],
            "title": "127.0.0.1",
            "unique_id": None,
            "version": 1,
        }
        store = {"version": 1, "minor_version": 5, "key": "core.config_entries", "data": {"entries": [entry]}}
        (config / ".storage" / "core.config_entries").write_text(json.dumps(store))
        self._spawn([str(HASS), "-c", str(config), "--skip-pip", "--log-no-color"])


def sensor_yaml(ident: str, topic: str, template: str) -> str:
    # force_update: every message is a state write (and so an InfluxDB point), even with an equal value
    return (
        f"    - name: {ident}\n      unique_id: {ident}\n      state_topic: {topic}\n"
        f'      value_template: "{template}"\n      unit_of_measurement: "°C"\n'
        "      device_class: temperature\n      force_update: true\n"
    )


def seed(target: Path | str, data: Path) -> None:
    """The hub's store (a directory or a PostgreSQL URL) with a public flood sensor, whose water_leak
    raises the default leak alert."""
    from hub.domain.model import Thing, Visibility
    from hub.storage.directory import Directory
    from hub.storage.store import Store

    if (data / "seeded").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    store = Store.open(target)
    store.migrate()
    directory = Directory(store)
    now = time.time()
    owner = directory.bootstrap_admin("bench", now=now)
    flood = Thing(id=FLOOD, name="Flood sensor", visibility=Visibility.PUBLIC)
    directory.create_thing(flood, owner=owner.id, actor=owner.id, now=now)
    store.close()
    (data / "seeded").touch()


# -- measuring --------------------------------------------------------------------------------------------
def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Step:
    rate: float
    qos: int
    profile: str = "steady"
    published: int = 0
    achieved: float = 0.0
    stored: int = 0
    dropped: int = 0
    clean: bool = False
    #: clean, and everything stored within DRAIN_LIMIT_S of the last publish (kept up, not buffered)
    sustained: bool = False
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    probes: int = 0
    probes_seen: int = 0
    cpu_per_1000: dict[str, float] = field(default_factory=dict)
    drain_s: float = 0.0
    loadgen_cpu_s: float = 0.0
    note: str = ""


class Probe:
    """Publishes probe readings and polls InfluxDB for them: publish → queryable latency."""

    def __init__(self, system: System, broker: Broker, qos: int, since_ns: int) -> None:
        self.system = system
        self.client = broker.client(PROBE, "bench-probe")
        self.qos = qos
        self.since_ns = since_ns
        self.sent: dict[float, float] = {}
        self.latencies: list[float] = []
        self._publishing = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._publish, daemon=True),
            threading.Thread(target=self._poll, daemon=True),
        ]

    def start(self) -> None:
        self._publishing.set()
        for thread in self._threads:
            thread.start()

    def _publish(self) -> None:
        n = 0
        next_at = time.monotonic()
        while self._publishing.is_set():
            value = round(n % 4000 / 100, 2)
            self.sent[value] = time.monotonic()
            self.client.publish(
                f"neighborhood/things/{PROBE}/state", json.dumps({"temperature": value}), self.qos
            )
            n += 1
            next_at += 1 / PROBE_RATE
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _poll(self) -> None:
        seen: set[float] = set()
        while not self._stop.is_set():
            try:
                values = self.system.probes(self.since_ns)
            except OSError:
                values = []
            now = time.monotonic()
            for value in values:
                if value not in seen and value in self.sent:
                    seen.add(value)
                    self.latencies.append((now - self.sent[value]) * 1000)
            time.sleep(POLL_S)

    def stop_publishing(self) -> None:
        self._publishing.clear()

    def stop(self) -> None:
        self._publishing.clear()
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()


def run_step(
    system: System,
    broker: Broker,
    influx: Influx,
    args: argparse.Namespace,
    rate: float,
    qos: int,
    extra: tuple[str, ...] = (),
) -> Step:
    step = Step(rate=rate, qos=qos, profile=" ".join(extra) or "steady")
    waited = broker.wait_idle()
    if waited > 5:
        step.note += f"waited {waited:.0f} s for the broker to drain the previous step's backlog; "
    dropped0 = broker.dropped()
    pids = {system.name: system.pids, "mosquitto": [broker.pid], "influxd": [influx.pid]}
    cpu0 = {name: sum(map(proc_cpu, group)) for name, group in pids.items()}
    since = time.time_ns()
    probe = Probe(system, broker, qos, since)
    probe.start()
    command = [
        sys.executable, str(BENCH / "loadgen.py"), "--broker", f"127.0.0.1:{broker.port}",
        "--credentials", str(broker.credentials_file), "--devices", str(args.devices),
        "--rate", str(rate), "--duration", str(args.step_s), "--qos", str(qos), "--json", *extra,
    ]  # fmt: skip
    gen = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert gen.stdout is not None
    out = gen.stdout.read()
    _, status, usage = os.wait4(gen.pid, 0)
    gen.returncode = os.waitstatus_to_exitcode(status)
    step.loadgen_cpu_s = usage.ru_utime + usage.ru_stime
    probe.stop_publishing()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    step.published = summary["published"]
    step.achieved = summary["rate"]
    if qos and summary["acked"] != step.published:
        step.note += f"broker acknowledged {summary['acked']} of {step.published}; "
    ended = time.monotonic()
    # drain: until everything is stored, or nothing more arrives for --settle-s
    last, last_change = -1, time.monotonic()
    while True:
        step.stored = system.stored(since)
        if step.stored != last:
            last, last_change = step.stored, time.monotonic()
        if step.stored >= step.published or time.monotonic() - last_change > args.settle_s:
            break
        time.sleep(0.1)
    step.drain_s = round(time.monotonic() - ended, 2)
    time.sleep(0.3)  # the last probes
    probe.stop()
    cpu1 = {name: sum(map(proc_cpu, group)) for name, group in pids.items()}
    step.dropped = broker.dropped() - dropped0
    step.stored = system.stored(since)
    thousands = max(step.published, 1) / 1000
    step.cpu_per_1000 = {name: round((cpu1[name] - cpu0[name]) / thousands, 4) for name in pids}
    step.probes = len(probe.sent)
    step.probes_seen = len(probe.latencies)
    step.latency_p50_ms = _round(quantile(probe.latencies, 0.5))
    step.latency_p99_ms = _round(quantile(probe.latencies, 0.99))
    # in a storm, devices that are down skip their messages: the offered rate is lower by design
    offered = bool(extra) or step.achieved >= 0.97 * rate
    step.clean = (
        step.stored == step.published
        and step.dropped == 0
        and offered
        and gen.returncode == 0
        and system.alive()
    )
    step.sustained = step.clean and step.drain_s <= DRAIN_LIMIT_S
    if step.clean and not step.sustained:
        step.note += f"stored only {step.drain_s:g} s after the last publish (buffered, not kept up); "
    if not offered:
        step.note += f"the load generator offered only {step.achieved:,.0f} msg/s; "
    if not system.alive():
        step.note += f"{system.name} exited; "
    if summary.get("reconnects"):
        step.note += f"{summary['reconnects']} reconnects in {summary['storms']} storms; "
    return step


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def alert_latency(system: Hub, broker: Broker, args: argparse.Namespace) -> dict[str, Any]:
    """Publish → alert on MQTT for the seeded flood sensor, under --alert-rate msg/s of other load."""
    arrived = threading.Condition()
    alerts: list[tuple[float, bytes]] = []

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with arrived:
            alerts.append((time.monotonic(), message.payload))
            arrived.notify_all()

    listener = broker.listener("neighborhood/alerts/#", on_message)
    trigger = broker.client(FLOOD, "bench-flood")
    duration = args.alerts * 3 + 30  # stopped when the alerts are done; a scale-out takes ~2 s per toggle
    command = [
        sys.executable, str(BENCH / "loadgen.py"), "--broker", f"127.0.0.1:{broker.port}",
        "--credentials", str(broker.credentials_file), "--devices", str(args.devices),
        "--rate", str(args.alert_rate), "--duration", str(duration), "--qos", "0", "--json",
    ]  # fmt: skip
    gen = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    time.sleep(2.0)
    topic = f"neighborhood/things/{FLOOD}/state"

    def active(payload: bytes) -> bool:
        return bool(payload) and json.loads(payload).get("state") == "active"

    latencies: list[float] = []
    missed = 0
    try:
        for _ in range(args.alerts):
            with arrived:
                seen = len(alerts)
            sent = time.monotonic()
            trigger.publish(topic, json.dumps({"water_leak": True}), qos=1)
            with arrived:
                arrived.wait_for(lambda s=seen: any(active(p) for _t, p in alerts[s:]), timeout=5)
                hit = next((t for t, p in alerts[seen:] if active(p)), None)
            if hit is None:
                missed += 1
            else:
                latencies.append((hit - sent) * 1000)
            with arrived:
                seen = len(alerts)
            trigger.publish(topic, json.dumps({"water_leak": False}), qos=1)
            with arrived:
                arrived.wait_for(lambda s=seen: any(not p for _t, p in alerts[s:]), timeout=5)
            time.sleep(0.05)
    finally:
        gen.send_signal(signal.SIGTERM)
        gen.wait(10)
        for c in (listener, trigger):
            c.disconnect()
            c.loop_stop()
    return {
        "rate": args.alert_rate,
        "alerts": len(latencies),
        "missed": missed,
        "p50_ms": _round(quantile(latencies, 0.5)),
        "p99_ms": _round(quantile(latencies, 0.99)),
        "max_ms": _round(max(latencies, default=None) if latencies else None),
    }


# -- one system, all its steps -----------------------------------------------------------------------------
def wait_ready(system: System, broker: Broker, influx: Influx, timeout: float) -> float:
    """Publish warm-up probes until one is stored; seconds it took. The first message of each device
    also creates its series in InfluxDB, so a short warm-up load runs before the steps."""
    started = time.monotonic()
    client = broker.client(PROBE, "bench-warmup")
    since = time.time_ns()
    try:
        while time.monotonic() - started < timeout:
            if not system.alive():
                raise RuntimeError(f"{system.name} exited while starting; see {system.log}")
            client.publish(f"neighborhood/things/{PROBE}/state", json.dumps({"temperature": 99.0}), 0)
            time.sleep(0.5)
            if system.probes(since):
                return time.monotonic() - started
    finally:
        client.disconnect()
        client.loop_stop()
    raise RuntimeError(f"{system.name} stored nothing within {timeout:g} s; see {system.log}")


def ladder(system: System, broker: Broker, influx: Influx, args: argparse.Namespace, qos: int) -> list[Step]:
    steps: list[Step] = []
    rate = args.start_rate
    good: float | None = None
    bad: float | None = None
    while rate <= args.max_rate:
        step = run_step(system, broker, influx, args, rate, qos)
        steps.append(step)
        report(system, step)
        if not step.sustained:
            bad = rate
            break
        good = rate
        rate *= 2
    for _ in range(args.refine if bad is not None and good is not None else 0):
        rate = round((good + bad) / 2, -2)  # type: ignore[operator]
        if rate in (good, bad):
            break
        step = run_step(system, broker, influx, args, rate, qos)
        steps.append(step)
        report(system, step)
        if step.sustained:
            good = rate
        else:
            bad = rate
    return steps


def report(system: System, step: Step) -> None:
    cpu = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in step.cpu_per_1000.items())
    print(
        f"[{system.name}] QoS {step.qos} {step.rate:>7,.0f} msg/s: published {step.published:,} "
        f"({step.achieved:,.0f}/s), stored {step.stored:,}, broker dropped {step.dropped}, "
        f"{'sustained' if step.sustained else 'clean' if step.clean else 'LOSS'}; "
        f"latency p50 {step.latency_p50_ms} ms p99 "
        f"{step.latency_p99_ms} ms; CPU per 1,000: {cpu}; drain {step.drain_s} s {step.note}",
        flush=True,
    )


def run_system(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"hub-e2e-{kind}-", dir=args.workdir))
    devices = loadgen.make_devices(args.devices, loadgen.parse_mix(loadgen.DEFAULT_MIX), 1)
    users = sorted({d.ident for d in devices if d.ecosystem != "zigbee2mqtt"} | {"zigbee2mqtt", PROBE, FLOOD})
    broker = Broker(work, users)
    influx = Influx(work)
    system: System
    if kind == "hub":
        system = Hub(work, broker, influx)
    elif kind.startswith("hub-") and kind.endswith("w") and kind[4:-1].isdigit():
        system = Hub(work, broker, influx, workers=int(kind[4:-1]))
    elif kind == "node-red-naive":
        system = NodeRed(work, broker, influx, batched=False)
    elif kind == "node-red-batched":
        system = NodeRed(work, broker, influx, batched=True)
    else:
        system = HomeAssistant(work, broker, influx, devices)
    result: dict[str, Any] = {"system": kind, "label": system.label, "load_before": load_average()}
    broker.start()
    influx.start()
    try:
        system.start()
        result["ready_s"] = round(wait_ready(system, broker, influx, args.start_timeout), 1)
        # warm-up: every device once or more, so series exist and the system has seen all of them
        warm = Step(rate=0, qos=0)
        warm = run_step(system, broker, influx, warm_args(args), max(args.start_rate, 500), 0)
        result["warmup"] = asdict(warm)
        result["steps"] = []
        for qos in system.qos_levels:
            result["steps"] += [asdict(s) for s in ladder(system, broker, influx, args, qos)]
        if args.storm_clients:
            storm = (
                "--profile", "storm", "--storm-clients", str(args.storm_clients), "--storm-every", "3",
            )  # fmt: skip
            step = run_step(system, broker, influx, args, args.storm_rate, 0, storm)
            report(system, step)
            result["storm"] = asdict(step)
        if isinstance(system, Hub) and args.alerts:
            result["alerts"] = alert_latency(system, broker, args)
            print(f"[{system.name}] alert latency: {result['alerts']}", flush=True)
        result["rss"] = {}
        for name, group in (("system", system.pids), ("mosquitto", [broker.pid]), ("influxd", [influx.pid])):
            # several processes: the sum of their RSS, and of their peaks
            rss, peak = map(sum, zip(*map(proc_memory, group), strict=True))
            result["rss"][name] = {"rss_mib": round(rss / 2**20, 1), "peak_mib": round(peak / 2**20, 1)}
    finally:
        result["load_after"] = load_average()
        system.stop()
        broker.stop()
        influx.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


def warm_args(args: argparse.Namespace) -> argparse.Namespace:
    warm = argparse.Namespace(**vars(args))
    warm.step_s = max(3.0, args.devices * 2 / max(args.start_rate, 500))
    return warm


# -- the report -------------------------------------------------------------------------------------------
def sustained(step: dict[str, Any]) -> bool:
    """Zero loss and kept up (see Step.sustained); computed for results saved before the field existed."""
    if "sustained" in step:
        return bool(step["sustained"])
    return bool(step["clean"]) and step["drain_s"] <= DRAIN_LIMIT_S


def best(steps: list[dict[str, Any]], qos: int) -> dict[str, Any] | None:
    clean = [s for s in steps if s["qos"] == qos and sustained(s) and s.get("profile", "steady") == "steady"]
    return max(clean, key=lambda s: s["rate"]) if clean else None


def at_rate(steps: list[dict[str, Any]], rate: float, qos: int = 0) -> dict[str, Any] | None:
    return next((s for s in steps if s["qos"] == qos and s["rate"] == rate and sustained(s)), None)


def markdown(results: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Produced in one run by:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"- machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"{_memory_gib():.0f} GiB, {platform.platform()}",
        f"- started {args.started}, load average (1, 5, 15 min) before each system and after it below",
        f"- versions: {getattr(args, 'versions', '?')}",
        f"- workload: {args.devices} devices (loadgen mix {loadgen.DEFAULT_MIX}), each its own MQTT "
        f"connection (Zigbee2MQTT devices through one bridge connection); steps of {args.step_s:g} s from "
        f"{args.start_rate:g} msg/s doubling until a step is not sustained, then {args.refine} bisection(s)",
        f"- a step is **sustained** when every message published is stored (count in InfluxDB = published, "
        f"Mosquitto's drop counter unchanged) and the last of them is stored within {DRAIN_LIMIT_S:g} s of "
        "the last publish: a system that only buffers (and stores minutes later, or runs out of memory) "
        "does not count as keeping up",
        "- Mosquitto as `hub mqtt-setup` writes it (users, passwords, ACL, tuning.conf), "
        "plus `sys_interval 1`",
        "",
    ]
    systems = {r["system"]: r for r in results}
    lines += [
        "## Summary",
        "",
        "| system | max sustained QoS 0 | max sustained QoS 1 | p50 / p99 publish → stored at that rate "
        "| peak RSS | load before → after |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        b0, b1 = best(r["steps"], 0), best(r["steps"], 1)
        lat = f"{b0['latency_p50_ms']} / {b0['latency_p99_ms']} ms" if b0 else "–"
        lines.append(
            f"| {r['label']} | {_rate(b0)} | {_rate(b1) if 1 in [s['qos'] for s in r['steps']] else 'n/a'} | "
            f"{lat} | {r['rss']['system']['peak_mib']} MiB | {r['load_before']} → {r['load_after']} |"
        )
    lines.append("")
    # CPU at the highest rate that every system took without loss
    common = None
    rates = sorted({s["rate"] for r in results for s in r["steps"] if s["qos"] == 0})
    for rate in rates:
        if all(at_rate(r["steps"], rate) for r in results):
            common = rate
    if common is not None:
        lines += [
            f"## CPU per 1,000 messages at {common:,.0f} msg/s "
            "(the highest rate every system took without loss)",
            "",
            "| system | system | Mosquitto | influxd | p50 / p99 publish → stored |",
            "|---|---|---|---|---|",
        ]
        for r in results:
            s = at_rate(r["steps"], common)
            assert s is not None
            cpu = s["cpu_per_1000"]
            lines.append(
                f"| {r['label']} | {cpu[r['system']] * 1000:.0f} ms | {cpu['mosquitto'] * 1000:.0f} ms | "
                f"{cpu['influxd'] * 1000:.0f} ms | {s['latency_p50_ms']} / {s['latency_p99_ms']} ms |"
            )
        lines.append("")
    for hub in [r for r in results if r["system"].startswith("hub")]:
        lines += [f"## Ratios: {hub['label']}", ""]
        name = hub["system"]
        hb = best(hub["steps"], 0)
        for peer, what in (("node-red-naive", "Node-RED naive"), ("node-red-batched", "Node-RED batched")):
            pb = best(systems[peer]["steps"], 0) if peer in systems else None
            if hb and pb:
                lines.append(
                    f"- {name} / {what}, max sustained zero-loss QoS 0 rate: "
                    f"{hb['rate']:,.0f} / {pb['rate']:,.0f} = "
                    f"**{hb['rate'] / pb['rate']:.1f}×**"
                )
        if "homeassistant" in systems and common is not None:
            h = at_rate(hub["steps"], common)["cpu_per_1000"][name]  # type: ignore[index]
            a = at_rate(systems["homeassistant"]["steps"], common)["cpu_per_1000"]["homeassistant"]  # type: ignore[index]
            lines.append(
                f"- {name} CPU / Home Assistant CPU per 1,000 messages at {common:,.0f} msg/s: "
                f"{h * 1000:.0f} ms / {a * 1000:.0f} ms = **1/{a / h:.1f}**"
            )
        if "alerts" in hub:
            al = hub["alerts"]
            lines.append(
                f"- {name} alert latency at {al['rate']:,} msg/s "
                f"({al['alerts']} alerts, {al['missed']} missed): p50 {al['p50_ms']} ms, "
                f"p99 **{al['p99_ms']} ms**, max {al['max_ms']} ms"
            )
        lines.append("")
    lines += ["## Every step", ""]
    for r in results:
        lines += [
            f"### {r['label']}",
            "",
            f"Ready after {r['ready_s']} s. RSS at the end / peak: "
            + ", ".join(f"{k} {v['rss_mib']} / {v['peak_mib']} MiB" for k, v in r["rss"].items()),
            "",
            "| QoS | rate | published | stored | broker drops | zero loss, kept up | p50 / p99 ms | "
            "CPU/1,000: system, Mosquitto, influxd (ms) | loadgen CPU s | note |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in r["steps"] + ([r["storm"]] if "storm" in r else []):
            cpu = s["cpu_per_1000"]
            kind = f"{s['qos']}, storm" if s["profile"] != "steady" else f"{s['qos']}"
            lines.append(
                f"| {kind} | {s['rate']:,.0f} | {s['published']:,} | {s['stored']:,} | {s['dropped']} | "
                f"{_verdict(s)} | {s['latency_p50_ms']} / {s['latency_p99_ms']} | "
                f"{cpu[r['system']] * 1000:.0f}, {cpu['mosquitto'] * 1000:.0f}, "
                f"{cpu['influxd'] * 1000:.0f} | "
                f"{s['loadgen_cpu_s']:.1f} | {s['note'].strip('; ')} |"
            )
        lines.append("")
    return "\n".join(lines)


def _verdict(step: dict[str, Any]) -> str:
    if sustained(step):
        return "yes, yes"
    return "yes, no" if step["stored"] == step["published"] and not step["dropped"] else "no"


def _rate(step: dict[str, Any] | None) -> str:
    return f"{step['rate']:,.0f} msg/s" if step else "none"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--systems", default="hub", help="comma-separated: hub, hub-2w (the scale-out: "
                        "a state process and 2 ingest workers), node-red-naive, node-red-batched, "
                        "homeassistant")  # fmt: skip
    parser.add_argument("--peers", action="store_true", help="all four systems")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--start-rate", type=float, default=250.0)
    parser.add_argument("--max-rate", type=float, default=64000.0)
    parser.add_argument("--step-s", type=float, default=10.0)
    parser.add_argument(
        "--settle-s", type=float, default=5.0, help="a drain ends after this long without progress"
    )
    parser.add_argument("--refine", type=int, default=1, help="bisections after the first lossy step")
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--alert-rate", type=int, default=1000)
    parser.add_argument("--start-timeout", type=float, default=300.0)
    parser.add_argument("--storm-rate", type=float, default=2000.0, help="msg/s of the reconnect-storm step")
    parser.add_argument(
        "--storm-clients",
        type=int,
        default=300,
        help="devices that drop and reconnect at once (0: no storm step)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' data and logs")
    parser.add_argument("--workdir", default=None, help="where the servers' temporary directories go")
    parser.add_argument("--json", type=Path, default=BENCH / "out" / "e2e.json")
    parser.add_argument("--results", type=Path, help="write the Markdown report here (bench/RESULTS.md)")
    parser.add_argument(
        "--from-json", type=Path, help="only write the report again from the figures a run saved (--json)"
    )
    args = parser.parse_args()
    args.started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.versions = versions()
    kinds = (
        ["hub", "node-red-naive", "node-red-batched", "homeassistant"]
        if args.peers
        else args.systems.split(",")
    )
    loadgen.raise_file_limit(args.devices * 2 + 1024)  # the broker inherits it
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/e2e.py", *sys.argv[1:]])
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        for key, value in saved.get("args", {}).items():
            setattr(args, key, value)
        text = markdown(saved["results"], args, saved["command"])
        print(text)
        if args.results:
            args.results.write_text(text + "\n")
        return 0
    results = []
    for kind in kinds:
        print(f"== {kind} (load average {load_average()})", flush=True)
        results.append(run_system(kind, args))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        kept = ("started", "versions", "devices", "step_s", "start_rate", "refine")
        recorded = {k: getattr(args, k) for k in kept}
        args.json.write_text(json.dumps({"command": command, "args": recorded, "results": results}, indent=1))
    text = markdown(results, args, command)
    print(text)
    if args.results:
        args.results.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    # stop cleanly (servers stopped, temporary data removed) on Ctrl-C and on SIGTERM, also when started
    # in the background, where a shell leaves SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
