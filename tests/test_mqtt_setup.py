"""``hub mqtt-setup``: the files it writes (tests/faults/test_broker_acl.py runs them in Mosquitto)."""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path

import pytest

from hub.app import build_router
from hub.cli import main
from hub.config import HubConfig
from hub.mqttsetup import (
    TUNING,
    Address,
    Plan,
    acl_text,
    check_password,
    filter_covers,
    hash_password,
    write_setup,
)

REPO = Path(__file__).resolve().parents[1]
# Written by `mosquitto_passwd -c -b pw hub secret` (Mosquitto 2.0.11).
MOSQUITTO_PASSWD_LINE = (
    "hub:$7$101$jztViXV8LHCmLlwN$"
    "Cy29nlhFTeC9CdXj2D1xfPjYbHlrAKyi/ToxAMwTEHjbYH1uY4CrFBIEKQxO2GEmphlPXoFPGI4uG0Rz494/6w=="
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["mqtt-setup", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def credentials(out: Path) -> dict[str, str]:
    lines = (out / "credentials.txt").read_text().splitlines()
    return dict(line.split("\t") for line in lines if line and not line.startswith("#"))


def passwd(out: Path) -> dict[str, str]:
    return dict(line.split(":", 1) for line in (out / "passwd").read_text().splitlines())


def listeners(conf: str) -> list[list[str]]:
    """mosquitto.conf cut into listener blocks (each starting with its listener line)."""
    blocks: list[list[str]] = []
    for line in conf.splitlines():
        if line.startswith("listener "):
            blocks.append([line])
        elif blocks and line and not line.startswith("#"):
            blocks[-1].append(line)
    return blocks


# -- passwords ----------------------------------------------------------------------------------------------
def test_hash_is_the_line_mosquitto_passwd_writes() -> None:
    import base64

    _, stored = MOSQUITTO_PASSWD_LINE.split(":", 1)
    salt = base64.b64decode(stored.split("$")[3])
    assert hash_password("secret", salt=salt, iterations=101) == stored
    assert check_password("secret", stored)
    assert not check_password("Secret", stored)


def test_every_hash_has_its_own_salt() -> None:
    first, second = hash_password("same"), hash_password("same")
    assert first != second
    assert re.fullmatch(r"\$7\$101\$[A-Za-z0-9+/=]{16}\$[A-Za-z0-9+/=]{88}", first)
    assert check_password("same", first) and check_password("same", second)


# -- files ---------------------------------------------------------------------------------------------------
def test_writes_each_file_with_secrets_readable_by_the_owner_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mqtt"
    code, printed, _ = run(capsys, "--out", str(out), "--device", "air-1", "--device", "tasmota-a")
    assert code == 0
    modes = {
        p.relative_to(out).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()
    }
    assert modes == {
        "mosquitto.conf": 0o644,
        "conf.d/hub-tuning.conf": 0o644,
        "hub-mqtt.yaml": 0o644,
        "acl": 0o600,
        "passwd": 0o600,
        "credentials.txt": 0o600,
        "hub-mqtt-password": 0o600,
    }
    new = credentials(out)
    assert set(new) == {"hub", "air-1", "tasmota-a"}
    hashes = passwd(out)
    for user, password in new.items():
        assert len(password) == 32
        assert f"  {user}\t{password}" in printed  # shown once, on standard output
        assert check_password(password, hashes[user])
    assert (out / "hub-mqtt-password").read_text().strip() == new["hub"]


def test_passwords_are_never_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert run(capsys, "--out", str(tmp_path / "m"), "--device", "air-1")[0] == 0
    for password in credentials(tmp_path / "m").values():
        assert password not in caplog.text
    assert "$7$" not in caplog.text


def test_existing_files_are_kept_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    assert run(capsys, "--out", str(out), "--device", "air-1")[0] == 0
    before = (out / "passwd").read_text()
    code, _, err = run(capsys, "--out", str(out), "--device", "air-1")
    assert code == 1
    assert f"{out / 'passwd'}" in err and "--force" in err and "not overwritten" in err
    assert (out / "passwd").read_text() == before


def test_force_keeps_known_passwords_and_rotate_replaces_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m"
    run(capsys, "--out", str(out), "--device", "air-1", "--device", "air-2")
    first, hashes = credentials(out), passwd(out)
    code, printed, _ = run(capsys, "--out", str(out), "--force", "--device", "air-1", "--device", "air-3")
    assert code == 0
    assert "kept the passwords of: hub, air-1" in printed
    assert "removed users no longer listed: air-2" in printed
    assert set(credentials(out)) == {"air-3"}
    now = passwd(out)
    assert set(now) == {"hub", "air-1", "air-3"}
    assert now["air-1"] == hashes["air-1"] and now["hub"] == hashes["hub"]
    assert (out / "hub-mqtt-password").read_text().strip() == first["hub"]

    run(capsys, "--out", str(out), "--force", "--rotate", "--device", "air-1", "--device", "air-3")
    rotated = credentials(out)
    assert set(rotated) == {"hub", "air-1", "air-3"}
    assert not check_password(first["air-1"], passwd(out)["air-1"])
    assert (out / "hub-mqtt-password").read_text().strip() == rotated["hub"]


def test_devices_file_takes_one_id_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    devices = tmp_path / "devices.txt"
    devices.write_text("# courtyard\nair-1\n\nesp-kitchen   # ESPHome node\n")
    assert run(capsys, "--out", str(tmp_path / "m"), "--devices-file", str(devices), "--device", "x")[0] == 0
    assert set(passwd(tmp_path / "m")) == {"hub", "x", "air-1", "esp-kitchen"}


def test_tuning_is_the_shipped_tuning_conf() -> None:
    assert (REPO / "config" / "mosquitto" / "tuning.conf").read_text() == TUNING


# -- refusals ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("device", "says"),
    [
        ("a/b", "one topic level"),
        ("+", "one topic level"),
        ("x:y", "one topic level"),
        ("with space", "one topic level"),
        ("%u", "one topic level"),
        ("tele", "shared by other devices"),
        ("neighborhood", "shared by other devices"),
        ("homeassistant", "shared by other devices"),
        ("hub", "shared by other devices"),
    ],
)
def test_ids_that_would_reach_other_topics_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str, says: str
) -> None:
    code, _, err = run(capsys, "--out", str(tmp_path / "m"), "--device", device)
    assert code == 1
    assert f"--device {device!r}" in err and says in err
    assert not (tmp_path / "m").exists()


def test_a_device_given_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--out", str(tmp_path / "m"), "--device", "a", "--device", "a")
    assert code == 1 and "given twice" in err


def test_anonymous_loopback_needs_a_port_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--out", str(tmp_path / "m"), "--allow-anonymous-loopback")
    assert code == 1
    assert "--allow-anonymous-loopback" in err and "--listen" in err and "--loopback-port" in err


def test_tls_flags_name_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--out", str(tmp_path / "m"), "--tls-cert", str(tmp_path / "c.pem"))
    assert code == 1 and "--tls-cert and --tls-key go together" in err
    key = tmp_path / "k.pem"
    key.write_text("key")
    code, _, err = run(
        capsys, "--out", str(tmp_path / "m"), "--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(key)
    )
    assert code == 1 and f"--tls-cert {tmp_path / 'c.pem'}: no such file" in err


def test_bad_listen_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--out", str(tmp_path / "m"), "--listen", "1883")
    assert code == 1 and "--listen '1883': expected ADDR:PORT" in err


# -- mosquitto.conf ------------------------------------------------------------------------------------------
def test_every_listener_requires_a_password(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("c")
    key.write_text("k")
    plan = Plan(tmp_path / "m", HubConfig(), listen=Address("192.168.1.10", 1883), tls_cert=cert, tls_key=key)
    write_setup(plan)
    conf = (tmp_path / "m" / "mosquitto.conf").read_text()
    blocks = listeners(conf)
    assert [b[0] for b in blocks] == [
        "listener 1883 127.0.0.1",
        "listener 1883 192.168.1.10",
        "listener 8883 192.168.1.10",
    ]
    for block in blocks:
        assert "allow_anonymous false" in block
        assert f"password_file {(tmp_path / 'm' / 'passwd').resolve()}" in block
        assert f"acl_file {(tmp_path / 'm' / 'acl').resolve()}" in block
    assert {"tls_version tlsv1.2", f"certfile {cert.resolve()}", f"keyfile {key.resolve()}"} <= set(blocks[2])
    assert "per_listener_settings true" in conf
    assert conf.rstrip().endswith(f"include_dir {(tmp_path / 'm' / 'conf.d').resolve()}")
    assert "persistence true" in TUNING and "autosave_interval 60" in TUNING


def test_a_wildcard_listen_serves_the_loopback_too(tmp_path: Path) -> None:
    write_setup(Plan(tmp_path / "m", HubConfig()))
    blocks = listeners((tmp_path / "m" / "mosquitto.conf").read_text())
    assert [b[0] for b in blocks] == ["listener 1883 0.0.0.0"]  # 127.0.0.1:1883 beside it would not bind
    assert "url: mqtt://hub@127.0.0.1:1883" in (tmp_path / "m" / "hub-mqtt.yaml").read_text()


def test_anonymous_only_on_the_loopback_and_read_only(tmp_path: Path) -> None:
    plan = Plan(tmp_path / "m", HubConfig(), loopback_port=1884, allow_anonymous_loopback=True)
    write_setup(plan)
    blocks = listeners((tmp_path / "m" / "mosquitto.conf").read_text())
    assert "allow_anonymous true" in blocks[0] and blocks[0][0] == "listener 1884 127.0.0.1"
    assert "allow_anonymous false" in blocks[1]
    acl = (tmp_path / "m" / "acl").read_text()
    anonymous = [line for line in acl.split("\nuser ")[0].splitlines() if line.startswith("topic ")]
    assert anonymous == ["topic read #", "topic read $SYS/#"]


# -- the ACL -------------------------------------------------------------------------------------------------
def acl_of(config: HubConfig, *devices: str, controllers: tuple[str, ...] = ()) -> str:
    return acl_text(Plan(Path("/x"), config, devices=devices, controllers=controllers))


def section(acl: str, user: str) -> list[str]:
    body = acl.split(f"\nuser {user}\n", 1)[1].split("\n\n", 1)[0]
    return [line for line in body.splitlines() if line.startswith("topic ")]


def test_the_hub_reads_every_topic_its_decoders_subscribe_to() -> None:
    config = HubConfig.model_validate(
        {
            "mqtt": {"base_topic": "street/7"},
            "ingest": {
                "ecosystems": {
                    "zigbee2mqtt": {"base_topics": ["zigbee2mqtt", "z2m-cellar"]},
                    "tasmota": {"full_topic": "tasmota/%topic%/%prefix%/"},
                }
            },
        }
    )
    reads = [
        line.split()[2] for line in section(acl_of(config, "air-1"), "hub") if line.split()[1] != "write"
    ]
    for sub in build_router(config).subscriptions():
        assert any(filter_covers(read, sub.topic) for read in reads), f"hub cannot read {sub.topic}"
    assert "air-1/#" in reads  # a device's own root, where discovery may point the hub


def test_the_hub_writes_only_its_own_topics() -> None:
    writes = [line.split()[2] for line in section(acl_of(HubConfig()), "hub") if "write" in line.split()[1]]
    assert writes == [
        "neighborhood/hub/#",
        "neighborhood/alerts/#",
        "neighborhood/loans/#",
        "neighborhood/notices/#",
        "neighborhood/internal/#",
        "neighborhood/federation/out/#",
        "homeassistant/device/neighborhood-hub/config",
    ]
    access = {line.split()[2]: line.split()[1] for line in section(acl_of(HubConfig()), "hub")}
    # scale-out workers read the state process's status and hand it their events (docs/scale-out.md)
    assert access["neighborhood/hub/status"] == "read"
    assert access["neighborhood/internal/#"] == "readwrite"
    assert access["neighborhood/federation/out/#"] == "write"


def test_device_patterns_are_confined_to_the_user() -> None:
    acl = acl_of(HubConfig(), "air-1")
    patterns = [line.split()[1:] for line in acl.splitlines() if line.startswith("pattern ")]
    for access, topic in patterns:
        if "write" in access:
            assert "%u" in topic, f"{topic} is writable by every device"
        else:
            assert "%u" in topic
    assert ["read", "cmnd/%u/#"] in patterns  # commands: read only
    assert section(acl, "air-1") == ["topic read homeassistant/status"]
    assert ["write", "tele/%u/#"] in patterns and ["readwrite", "neighborhood/things/%u/#"] in patterns


def test_patterns_follow_the_config() -> None:
    config = HubConfig.model_validate(
        {
            "mqtt": {"base_topic": "street/7"},
            "ingest": {
                "ecosystems": {
                    "tasmota": {"full_topic": "tasmota/%topic%/%prefix%/"},
                    "homie": {"enabled": False},
                }
            },
        }
    )
    acl = acl_of(config)
    assert "pattern readwrite street/7/things/%u/#" in acl
    assert "pattern write tasmota/%u/tele/#" in acl and "pattern read tasmota/%u/cmnd/#" in acl
    assert "homie" not in acl


def test_zigbee2mqtt_and_a_controller_get_their_own_sections() -> None:
    acl = acl_of(HubConfig(), "zigbee2mqtt", controllers=("homeassistant",))
    assert section(acl, "zigbee2mqtt") == ["topic readwrite homeassistant/#"]
    controller = section(acl, "homeassistant")
    assert "topic write cmnd/+/#" in controller and "topic write zigbee2mqtt/+/set" in controller
    assert not any("notices" in line for line in controller)  # residents' notices are not its business
