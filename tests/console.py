"""Running ``hub ... --config FILE`` in this process for the console tests, with its output captured."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.cli import main


@dataclass
class Ran:
    code: int
    out: str
    err: str


class Console:
    """``hub ... --config FILE`` in this process, with its output captured."""

    def __init__(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = config
        self.capsys = capsys

    def __call__(self, *argv: str) -> Ran:
        self.capsys.readouterr()
        code = main([*argv, "--config", str(self.config)])
        captured = self.capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    def ok(self, *argv: str) -> str:
        ran = self(*argv)
        assert ran.code == 0, ran.err
        assert ran.err == "" or argv[:2] == ("resident", "invite"), ran.err
        return ran.out

    def fails(self, *argv: str) -> str:
        """Run a command that must be refused: exit 1, one "hub: ..." line, no traceback."""
        ran = self(*argv)
        assert ran.code == 1, (ran.out, ran.err)
        assert ran.err.startswith("hub: ") and ran.err.count("\n") == 1, ran.err
        assert "Traceback" not in ran.err
        return ran.err
