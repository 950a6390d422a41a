"""The shipped systemd units run commands the CLI accepts, and the scale-out units replace hub.service."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from hub.cli import build_parser

UNITS = sorted((Path(__file__).resolve().parents[1] / "config" / "systemd").glob("*.service"))


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser


@pytest.mark.parametrize("path", UNITS, ids=[p.name for p in UNITS])
def test_every_unit_runs_a_command_the_cli_accepts(path: Path) -> None:
    argv = shlex.split(unit(path)["Service"]["ExecStart"].replace("%i", "1"))
    assert argv[0].endswith("/hub")
    args = build_parser().parse_args(argv[1:])
    assert args.config == "/etc/hub/hub.yaml"


def test_the_scale_out_units_run_the_roles_and_exclude_the_single_process() -> None:
    names = {p.name for p in UNITS}
    assert {"hub.service", "hub-state.service", "hub-ingest@.service"} <= names
    by_name = {p.name: unit(p) for p in UNITS}
    state = shlex.split(by_name["hub-state.service"]["Service"]["ExecStart"])
    ingest = shlex.split(by_name["hub-ingest@.service"]["Service"]["ExecStart"])
    assert state[-2:] == ["--role", "state"]
    assert ingest[-4:] == ["--role", "ingest", "--worker", "%i"]
    for name in ("hub-state.service", "hub-ingest@.service"):
        assert by_name[name]["Service"]["Restart"] == "always"  # a worker's session waits for it
        assert by_name[name]["Unit"]["Conflicts"] == "hub.service"
