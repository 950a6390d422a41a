"""The ``hub-bridge`` command line: help, version, exit codes and messages a user can act on."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest
from bridgekit import REPO, BridgeProcess, PtyReader, Subscriber


def hub_bridge(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("hub-bridge")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "firmware_bridges"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_help_lists_the_serial_command_and_its_options() -> None:
    top = hub_bridge("--help")
    assert top.returncode == 0 and "serial" in top.stdout
    sub = hub_bridge("serial", "--help")
    assert sub.returncode == 0
    for option in ("--port", "--reader", "--id", "--mqtt", "--base-topic", "--baud", "--debounce"):
        assert option in sub.stdout
    assert "HUB_MQTT_PASSWORD" in sub.stdout


def test_version_printed() -> None:
    result = hub_bridge("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"hub-bridge {version('neighborhood-hub')}"


SERIAL = ("serial", "--port", "/dev/null", "--id", "r")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "COMMAND"),
        (("serial", "--reader", "rdm6300", "--id", "r", "--mqtt", "mqtt://h"), "--port"),
        ((*SERIAL, "--reader", "em4100", "--mqtt", "mqtt://h"), "em4100"),
        ((*SERIAL, "--reader", "lines", "--mqtt", "http://h"), "mqtt or mqtts"),
        (("serial", "--port", "/dev/null", "--id", "a/b", "--reader", "lines", "--mqtt", "mqtt://h"), "--id"),
        ((*SERIAL, "--reader", "lines", "--mqtt", "mqtt://h", "--baud", "0"), "--baud"),
        ((*SERIAL, "--reader", "lines", "--mqtt", "mqtt://h", "--debounce", "-1"), "--debounce"),
    ],
)
def test_usage_errors_exit_2_and_say_what_is_wrong(args: tuple[str, ...], says: str) -> None:
    result = hub_bridge(*args)
    assert result.returncode == 2
    assert says in result.stderr


def test_missing_port_exits_1_naming_the_port_and_what_to_check(tmp_path: Path) -> None:
    missing = tmp_path / "ttyUSB9"
    result = hub_bridge("serial", "--port", str(missing), "--reader", "rdm6300", "--id", "r",
                        "--mqtt", "mqtt://127.0.0.1:1")  # fmt: skip
    assert result.returncode == 1
    assert f"cannot open {missing}: no such device; check that the reader is plugged in" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_that_is_not_a_serial_device_exits_1(tmp_path: Path) -> None:
    plain = tmp_path / "notatty"
    plain.write_text("")
    result = hub_bridge("serial", "--port", str(plain), "--reader", "rdm6300", "--id", "r",
                        "--mqtt", "mqtt://127.0.0.1:1")  # fmt: skip
    assert result.returncode == 1
    assert f"cannot open {plain}" in result.stderr


def _password_broker(mosquitto_factory: Callable[..., object], tmp_path: Path, user: str, password: str):
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.fail("mosquitto_passwd not found: apt-get install mosquitto", pytrace=False)
    password_file = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(password_file), user, password], check=True, capture_output=True)
    password_file.chmod(0o600)
    return mosquitto_factory(extra_config=f"allow_anonymous false\npassword_file {password_file}")


def test_wrong_broker_password_exits_1_naming_broker_and_fix(
    mosquitto_factory, tmp_path: Path, pty_reader: PtyReader
) -> None:
    broker = _password_broker(mosquitto_factory, tmp_path, "bridge", "right-secret")
    result = hub_bridge("serial", "--port", str(pty_reader.link), "--reader", "rdm6300", "--id", "r",
                        "--mqtt", f"mqtt://bridge:Pw-7q1x@{broker.host}:{broker.port}")  # fmt: skip
    assert result.returncode == 1
    assert f"broker {broker.host}:{broker.port} refused the connection" in result.stderr
    assert "HUB_MQTT_PASSWORD" in result.stderr
    assert "Pw-7q1x" not in result.stderr  # the password itself is never printed


def test_broker_password_taken_from_environment(
    mosquitto_factory,
    tmp_path: Path,
    pty_reader: PtyReader,
    subscribe: Callable[..., Subscriber],
    run_bridge: Callable[..., BridgeProcess],
) -> None:
    broker = _password_broker(mosquitto_factory, tmp_path, "bridge", "env-secret")
    bridge = run_bridge("serial", "--port", str(pty_reader.link), "--reader", "lines", "--id", "desk",
                        "--mqtt", f"mqtt://bridge@{broker.host}:{broker.port}",
                        env={"HUB_MQTT_PASSWORD": "env-secret"})  # fmt: skip
    deadline = time.monotonic() + 10
    while "connected to broker" not in bridge.output and time.monotonic() < deadline:
        assert bridge.process.poll() is None, bridge.output
        time.sleep(0.05)
    assert "connected to broker" in bridge.output
    assert bridge.terminate() == 0


def test_unreachable_broker_is_retried_not_fatal(pty_reader: PtyReader, run_bridge) -> None:
    bridge = run_bridge("serial", "--port", str(pty_reader.link), "--reader", "rdm6300", "--id", "r",
                        "--mqtt", "mqtt://127.0.0.1:1")  # fmt: skip
    deadline = time.monotonic() + 10
    while "cannot reach broker" not in bridge.output and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "cannot reach broker broker=127.0.0.1:1" in bridge.output
    time.sleep(1.5)
    assert bridge.process.poll() is None, "still running, retrying"
    assert bridge.terminate() == 0
