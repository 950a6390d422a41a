"""``hub demo``: prints its URL within 30 s, serves the things live, stops on Ctrl-C within 10 s."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_line(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            return proc.stdout.readline()
        if proc.poll() is not None:
            break
    return ""


def test_demo_serves_live_things_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo", "--dir", str(tmp_path / "demo"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = ""
        while not url and time.monotonic() - started < 30:
            line = _read_line(proc, started + 30)
            if not line and proc.poll() is not None:
                break
            match = re.search(r"http://127\.0\.0\.1:\d+", line)
            url = match.group(0) if match else ""
        assert url, f"no URL within 30 s; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        assert url == f"http://127.0.0.1:{port}"

        with urllib.request.urlopen(url + "/", timeout=10) as response:
            assert response.status == 200
            assert "Neighborhood Hub" in response.read().decode()

        # The simulator's eight things appear with readings, and keep updating.
        deadline = time.monotonic() + 20
        things: dict[str, dict] = {}
        while time.monotonic() < deadline and len(things) < 8:
            with urllib.request.urlopen(url + "/api/v1/things", timeout=10) as response:
                things = {t["id"]: t for t in json.load(response)["things"]}
            time.sleep(0.5)
        assert len(things) == 8, sorted(things)
        assert "pm25" in things["air-quality-courtyard"]["values"]
        assert "water_leak" in things["flood-basement"]["values"]
        first_seen = things["noise-playground"]["last_seen"]
        time.sleep(3)
        with urllib.request.urlopen(url + "/api/v1/things/noise-playground", timeout=10) as response:
            assert json.load(response)["last_seen"] > first_seen
        with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
            assert json.load(response)["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        stopping = time.monotonic()
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("hub demo did not stop within 10 s of Ctrl-C") from None
    assert code == 0, proc.stderr.read()
    assert time.monotonic() - stopping < 10
    assert (tmp_path / "demo" / "hub.sqlite").exists()
