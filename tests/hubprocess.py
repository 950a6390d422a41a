"""`hub run` as a subprocess, shared by the integration and fault tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path


class HubProcess:
    """`hub run --config FILE [ARGS]` as a subprocess, as systemd would run it; ``output()`` reads its log
    live. ``args``: more options, such as ``--role ingest --worker w1``."""

    def __init__(self, config: Path, *args: str) -> None:
        self.config = config
        self.args = list(args)
        self.proc: subprocess.Popen[str] | None = None
        self.stderr = ""
        self.log = config.with_name(f"{config.stem}-{uuid.uuid4().hex[:6]}.log")
        self._offset = 0

    def start(self) -> HubProcess:
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "run", "--config", str(self.config), *self.args],
                stderr=log,
                stdout=subprocess.DEVNULL,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def output(self) -> str:
        with self.log.open(encoding="utf-8", errors="replace") as log:
            log.seek(self._offset)
            return log.read()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.stderr += self.output()
        return code
