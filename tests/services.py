"""Real servers for the tests (DESIGN §6): each one runs from its Debian binary on free loopback ports
with its data in a temporary directory, and is stopped afterwards. Nothing here is a mock.

A missing binary or a server that does not come up fails the test with a message that names the
component and how to install it; it never skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
MOSQUITTO_TUNING = REPO / "config" / "mosquitto" / "tuning.conf"
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl not found: apt-get install openssl", pytrace=False)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-subj", "/CN=hub test CA", "-days", "2")  # fmt: skip
    run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.cnf")  # fmt: skip
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


def find_binary(name: str, candidates: tuple[str, ...], package: str) -> str:
    """Path of a server binary, or fail the test naming the Debian package that provides it."""
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} not found: apt-get install {package} (or run scripts/test as root)", pytrace=False)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def http(method: str, url: str, data: bytes | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """One plain HTTP request (stdlib only, so helpers never depend on the code under test)."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Service:
    """A server process with start/stop/kill that keeps its ports and data across restarts."""

    name = "service"
    package = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = LOOPBACK
        self.port = free_port()
        self.log_path = workdir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    # Subclasses say how to run and how to tell that the server is ready.
    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return port_open(self.port)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (or restart) the server on the same port and data, and wait until it serves."""
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._fail(f"exited with code {self._process.returncode} while starting")
            if self.ready():
                return
            time.sleep(0.05)
        self.kill()
        self._fail(f"did not become ready on port {self.port} within {START_TIMEOUT:g} s")

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): the port still accepts connections but nothing answers."""
        assert self._process is not None, f"{self.name} is not running"
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo pause() (SIGCONT)."""
        assert self._process is not None, f"{self.name} is not running"
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop cleanly (SIGTERM), as an operator would; SIGKILL if it hangs."""
        self._end(signal.SIGTERM, grace=15.0)

    def kill(self) -> None:
        """Kill without warning (SIGKILL), as a power cut would."""
        self._end(signal.SIGKILL, grace=5.0)

    def _end(self, sig: signal.Signals, grace: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused process would not act on SIGTERM
        process.send_signal(sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # A stopped server must not answer any more, or a restart would race the old process.
        deadline = time.monotonic() + 5.0
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _fail(self, what: str) -> None:
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        pytest.fail(f"{self.name} {what}; its log ({self.log_path}):\n{tail}", pytrace=False)


class Mosquitto(Service):
    """Mosquitto with the project's tuning (config/mosquitto/tuning.conf) and an anonymous loopback port."""

    name = "mosquitto"

    def __init__(self, workdir: Path, extra_config: str = "") -> None:
        super().__init__(workdir)
        self.binary = find_binary("mosquitto", ("/usr/sbin/mosquitto",), "mosquitto")
        self.url = f"mqtt://{self.host}:{self.port}"
        self.persistence_dir = workdir / "persistence"
        self.persistence_dir.mkdir(exist_ok=True)
        self.config_path = workdir / "mosquitto.conf"
        lines = [
            MOSQUITTO_TUNING.read_text(),
            "# Test-only settings",
            f"persistence_location {self.persistence_dir}/",
            "log_dest stdout",
            "log_type all",
            # Started as root, Mosquitto would switch to its own user and lose access to the temp dir.
            *(["user root"] if os.geteuid() == 0 else []),
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            extra_config,
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]


class MosquittoWithConfig(Service):
    """Mosquitto running a configuration file as given (e.g. one ``hub mqtt-setup`` wrote); ``port`` is a
    loopback port one of its listeners serves, watched to tell that it is up."""

    name = "mosquitto"

    def __init__(self, workdir: Path, config_path: Path, port: int) -> None:
        super().__init__(workdir)
        self.binary = find_binary("mosquitto", ("/usr/sbin/mosquitto",), "mosquitto")
        self.config_path = config_path
        self.port = port

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]


class InfluxDB1(Service):
    """InfluxDB 1.x (Debian's influxd 1.6.7), HTTP API without auth."""

    name = "influxd"

    admin_user = "admin"
    admin_password = "admin-secret"

    def __init__(self, workdir: Path, auth: bool = False) -> None:
        super().__init__(workdir)
        self.binary = find_binary("influxd", ("/usr/bin/influxd",), "influxdb")
        self.auth = auth
        self.rpc_port = free_port()
        self.url = f"http://{self.host}:{self.port}"
        self.config_path = workdir / "influxdb.conf"
        self.config_path.write_text(
            f"""reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"

[meta]
  dir = "{workdir / "meta"}"
  logging-enabled = false

[data]
  dir = "{workdir / "data"}"
  wal-dir = "{workdir / "wal"}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[retention]
  enabled = false

[subscriber]
  enabled = false

[http]
  bind-address = "{self.host}:{self.port}"
  auth-enabled = {"true" if auth else "false"}
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""
        )

    def command(self) -> list[str]:
        return [self.binary, "run", "-config", str(self.config_path)]

    def ready(self) -> bool:
        try:
            return http("GET", f"{self.url}/ping", timeout=1.0)[0] == 204
        except OSError:
            return False

    def start(self) -> None:
        """Start; with auth, the first start creates the admin user (allowed while there are no users)."""
        super().start()
        if self.auth and not (self.workdir / "admin-created").exists():
            self._statement(
                None,
                f"CREATE USER {self.admin_user} WITH PASSWORD '{self.admin_password}' WITH ALL PRIVILEGES",
            )
            (self.workdir / "admin-created").touch()

    def create_database(self, name: str) -> None:
        self._statement(None, f'CREATE DATABASE "{name}"')

    def create_user(self, name: str, password: str, *, read_write_on: str | None = None) -> None:
        """A non-admin user (auth servers), optionally with ALL privileges on one database."""
        self._statement(None, f"CREATE USER {name} WITH PASSWORD '{password}'")
        if read_write_on:
            self._statement(None, f'GRANT ALL ON "{read_write_on}" TO {name}')

    def query(self, db: str, influxql: str) -> list[dict[str, Any]]:
        """Run one InfluxQL statement; its series (``name``, ``tags``, ``columns``, ``values``)."""
        return self._statement(db, influxql).get("series", [])

    def rows(self, db: str, influxql: str) -> list[dict[str, Any]]:
        """Run one InfluxQL statement; one dict per row, columns and GROUP BY tags merged."""
        return [
            {**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))}
            for series in self.query(db, influxql)
            for values in series["values"]
        ]

    def _statement(self, db: str | None, influxql: str) -> dict[str, Any]:
        params = {"q": influxql, "epoch": "ns", **({"db": db} if db else {})}
        # influxd reads credentials from the query string (or basic auth), not from a form body.
        auth = urllib.parse.urlencode({"u": self.admin_user, "p": self.admin_password}) if self.auth else ""
        status, body = http("POST", f"{self.url}/query?{auth}", urllib.parse.urlencode(params).encode())
        answer = json.loads(body)
        if status != 200 or "error" in answer:
            raise AssertionError(f"InfluxQL {influxql!r} failed ({status}): {answer}")
        (result,) = answer["results"]
        if "error" in result:
            raise AssertionError(f"InfluxQL {influxql!r} failed: {result['error']}")
        return dict(result)


class VictoriaMetrics(Service):
    """Single-node VictoriaMetrics; accepts InfluxDB line protocol on /write and /api/v2/write."""

    name = "victoria-metrics"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.binary = find_binary("victoria-metrics", ("/usr/bin/victoria-metrics",), "victoria-metrics")
        self.url = f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            f"-httpListenAddr={self.host}:{self.port}",
            f"-storageDataPath={self.workdir / 'data'}",
            "-retentionPeriod=100y",
            # Queries see samples as soon as they are stored (default hides the last 30 s).
            "-search.latencyOffset=0",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]

    def ready(self) -> bool:
        try:
            return http("GET", f"{self.url}/health", timeout=1.0)[0] == 200
        except OSError:
            return False

    def flush(self) -> None:
        """Move buffered samples to searchable storage (VictoriaMetrics buffers them for about a second)."""
        status, body = http("GET", f"{self.url}/internal/force_flush")
        assert status == 200, f"force_flush failed ({status}): {body!r}"

    def export(self, match: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Series matching a selector (``{thing="t1"}``), from /api/v1/export.

        Even after a flush, new series take a moment to become searchable, so this polls until two
        consecutive answers agree (or ``timeout`` passes) and returns the last one, possibly empty.
        """
        self.flush()
        query = urllib.parse.urlencode({"match[]": match}).encode()
        previous: list[dict[str, Any]] | None = None
        deadline = time.monotonic() + timeout
        while True:
            status, body = http("POST", f"{self.url}/api/v1/export", query)
            assert status == 200, f"export {match} failed ({status}): {body!r}"
            series = [json.loads(line) for line in body.splitlines() if line.strip()]
            series.sort(key=lambda s: sorted(s["metric"].items()))
            if (series and series == previous) or time.monotonic() > deadline:
                return series
            previous = series
            time.sleep(0.2)


class PostgresDatabase:
    """A uniquely named database on the machine's PostgreSQL (trust auth), dropped afterwards.

    The server defaults to 127.0.0.1:5432, user postgres; HUB_TEST_PG_HOST/PORT/USER override it.
    """

    def __init__(self) -> None:
        self.host = os.environ.get("HUB_TEST_PG_HOST", LOOPBACK)
        self.port = int(os.environ.get("HUB_TEST_PG_PORT", "5432"))
        self.user = os.environ.get("HUB_TEST_PG_USER", "postgres")
        self.name = f"hub_test_{uuid.uuid4().hex[:12]}"
        self.url = f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.name}"

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        try:
            import psycopg
        except ImportError:
            pytest.fail("psycopg not installed: .venv/bin/pip install -e '.[dev]' (or run scripts/test)")
        try:
            with psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                dbname="postgres",
                autocommit=True,
                connect_timeout=5,
            ) as connection:
                connection.execute(statement)
        except psycopg.OperationalError as exc:
            pytest.fail(
                f"PostgreSQL at {self.host}:{self.port} (user {self.user}, trust auth) is not usable: {exc}\n"
                "apt-get install postgresql and start it (scripts/test starts an existing cluster)",
                pytrace=False,
            )


def stop_all(services: list[Service]) -> None:
    """Kill whatever is still running (teardown; data is thrown away anyway)."""
    for service in services:
        with contextlib.suppress(Exception):
            service.kill()
