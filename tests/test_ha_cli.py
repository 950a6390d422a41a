"""``hub ha``: where the token comes from (never the command line), and the refusals that need no Home
Assistant, each one line with what to do. Linking, listing and sharing against a real Home Assistant are
in tests/integrations/test_ha_source_real.py."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
from console import Console

from hub.storage.halinks import HaLinks
from hub.storage.store import Store

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJjbGktdGVzdCJ9.c2lnbmF0dXJlLW9mLXRoZS1jbGktdGVzdA"


@pytest.fixture
def hub(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Console:
    config = tmp_path / "hub.yaml"
    config.write_text(
        f"timeseries:\n  kind: embedded\nstorage:\n  path: {tmp_path / 'data'}\n", encoding="utf-8"
    )
    console = Console(config, capsys)
    console.ok("admin", "create", "ada")
    return console


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_token_comes_from_a_file_the_environment_or_stdin_and_is_never_printed(
    hub: Console, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = closed_url()
    link = ("ha", "link", "--resident", "ada", "--url", url)
    monkeypatch.setenv("HUB_HA_TOKEN", TOKEN)
    bad = tmp_path / "token"
    bad.write_text("not a token at all\n", encoding="utf-8")
    # the file wins over the environment
    assert "is not a long-lived access token" in hub.fails(*link, "--token-file", str(bad))
    # the environment's token is tried: Home Assistant is what fails, and the error says what to do
    err = hub.fails(*link)
    assert f"Home Assistant at {url} could not be reached (the connection was refused)" in err
    assert "check that Home Assistant runs" in err and "(unreachable)" in err
    monkeypatch.delenv("HUB_HA_TOKEN")
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{TOKEN}\n"))
    assert "could not be reached" in hub.fails(*link)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert "no token: give --token-file FILE, set HUB_HA_TOKEN, or pipe it on stdin" in hub.fails(*link)
    with pytest.raises(SystemExit) as usage:  # argv is readable by every user of the machine
        hub(*link, "--token", TOKEN)
    assert usage.value.code == 2
    err = capsys.readouterr().err
    assert "the token never goes on the command line: use --token-file FILE or $HUB_HA_TOKEN" in err
    assert TOKEN not in err
    store = Store.open(tmp_path / "data")
    try:
        assert HaLinks(store).links() == []
    finally:
        store.close()


def test_refusals_that_need_no_home_assistant_say_what_to_do(
    hub: Console, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "ada has no Home Assistant linked (not_linked)" in hub.fails("ha", "unlink", "--resident", "ada")
    assert "link your Home Assistant first" in hub.fails("ha", "entities", "--resident", "ada")
    assert "(not_linked)" in hub.fails("ha", "share", "sensor.t", "--resident", "ada")
    assert "sensor.t is not shared (not_shared)" in hub.fails(
        "ha", "unshare", "sensor.t", "--resident", "ada"
    )
    assert "no resident called 'nobody'" in hub.fails("ha", "status", "--resident", "nobody")
    assert "ada has no Home Assistant linked" in hub.ok("ha", "status", "--resident", "ada")
    bad_url = hub.fails("ha", "link", "--resident", "ada", "--url", "ftp://ha.example")
    assert "is not an http(s) address: give the address you open Home Assistant at" in bad_url
    with pytest.raises(SystemExit) as usage:
        hub("ha", "share", "sensor.t", "--resident", "ada", "--watchers", "derived")
    assert usage.value.code == 2
    assert "'full', 'state', 'none'" in capsys.readouterr().err
