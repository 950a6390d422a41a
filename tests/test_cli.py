"""The ``hub`` command line: version, usage errors, and ``hub decode`` (DESIGN §5)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from hub import __version__
from hub.cli import main


def decode(lines: list[dict | str], *args: str) -> list[dict]:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    proc = subprocess.run(
        [sys.executable, "-m", "hub.cli", "decode", *args],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hub {__version__}"


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["run"], ["check-config"], ["decode", "--nope"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


@pytest.mark.parametrize("command", ["demo", "run", "check-config", "decode"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: hub" in capsys.readouterr().out


def test_decode_prints_one_event_per_message_in_order() -> None:
    events = decode(
        [
            {
                "topic": "neighborhood/things/air-1/state",
                "payload": '{"pm25": 12.5, "time": "2026-11-01T10:00:00Z"}',
            },
            {"topic": "neighborhood/things/air-1/availability", "payload": "offline"},
            {"topic": "neighborhood/readers/shed/scan", "payload": {"tag": "01000734e0"}},
            {"topic": "neighborhood/things/air-1/state", "payload": '{"pm25": "high"}'},
            {"topic": "somewhere/else", "payload": "x"},
        ]
    )
    assert events == [
        {
            "type": "reading",
            "source": "native",
            "thing": "air-1",
            "values": {"pm25": 12.5},
            "time": "2026-11-01T10:00:00.000Z",
        },
        {"type": "availability", "source": "native", "thing": "air-1", "online": False},
        {"type": "scan", "source": "native", "reader": "shed", "tag": "01000734E0"},
        {
            "type": "rejected",
            "source": "native",
            "topic": "neighborhood/things/air-1/state",
            "reason": "bad_value",
            "detail": events[3]["detail"],
        },
        {"type": "ignored", "source": "unknown", "topic": "somewhere/else"},
    ]
    assert "pm25" in events[3]["detail"]


def test_decode_accepts_base64_payloads_for_binary_data() -> None:
    raw = b'{"noise": 61.5}'
    [event] = decode(
        [{"topic": "neighborhood/things/n/state", "payload_b64": base64.b64encode(raw).decode()}]
    )
    assert event["values"] == {"noise": 61.5}
    [event] = decode(
        [{"topic": "neighborhood/things/n/state", "payload_b64": base64.b64encode(b"\xff").decode()}]
    )
    assert event["reason"] == "not_utf8"


def test_decode_reports_bad_input_lines_and_keeps_going() -> None:
    events = decode(
        [
            "this is not json",
            '{"payload": "no topic"}',
            {"topic": "neighborhood/things/t/state", "payload": '{"humidity": 50}'},
        ]
    )
    assert [e["type"] for e in events] == ["rejected", "rejected", "reading"]
    assert events[0]["reason"] == "bad_input" and "line 1" in events[0]["detail"]


def test_decode_from_file_with_base_topic(tmp_path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"topic": "street/things/t/state", "payload": '{"co2": 612}'}) + "\n")
    [event] = decode([], str(path), "--base-topic", "street")
    assert event["values"] == {"co2": 612.0}
