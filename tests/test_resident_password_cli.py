"""``hub resident password PSEUDONYM``: the first admin's web password, read from stdin (or a terminal
prompt), stored as an Argon2id hash; too short a password changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hub.storage.accounts import Accounts
from hub.storage.directory import Directory
from hub.storage.store import Store


def _hub(config: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *argv, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_first_admin_gets_a_web_password_from_stdin(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(f"timeseries:\n  kind: embedded\nstorage:\n  path: {tmp_path}\n", encoding="utf-8")
    created = _hub(config, "admin", "create", "ada")
    assert created.returncode == 0, created.stderr
    assert "hub resident password ada" in created.stdout

    short = _hub(config, "resident", "password", "ada", stdin="short\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    done = _hub(config, "resident", "password", "ada", stdin="a long enough secret\n")
    assert done.returncode == 0, done.stderr
    assert "a long enough secret" not in done.stdout + done.stderr

    store = Store.open(tmp_path)
    try:
        ada = Directory(store).resident_by_pseudonym("ada")
        assert ada is not None
        accounts = Accounts(store)
        assert accounts.verify(ada.id, "a long enough secret", now=0.0)
        assert not accounts.verify(ada.id, "short", now=0.0)
    finally:
        store.close()
    unknown = _hub(config, "resident", "password", "nobody", stdin="a long enough secret\n")
    assert unknown.returncode == 1 and "no resident called 'nobody'" in unknown.stderr
