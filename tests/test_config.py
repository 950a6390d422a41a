"""Config: valid examples, errors naming file/line/key, secrets from env and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.cli import main
from hub.config import ConfigError, load_config, parse_config, resolve_secrets

ROOT = Path(__file__).resolve().parents[1]

BAD_KIND = """\
# a config with a wrong sink kind
mqtt:
  url: mqtt://127.0.0.1:1883
timeseries:
  kind: influxdb-v7
  url: http://127.0.0.1:8086
"""


@pytest.mark.parametrize("name", ["hub.example.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROOT / "config" / name)]) == 0
    assert "ok" in capsys.readouterr().out


def test_bad_kind_names_key_and_line_5_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_KIND)
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}, line 5, key timeseries.kind" in err
    assert "influxdb-v7" in err


def test_unknown_key_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigError, match=r"x.yaml, line 3, key web.listne: unknown key"):
        parse_config("web:\n  listen: 127.0.0.1:8080\n  listne: 1\n", "x.yaml")


def test_yaml_syntax_error_names_line() -> None:
    with pytest.raises(ConfigError, match=r"x.yaml, line 3: not valid YAML"):
        parse_config("mqtt:\n  url: [1\n", "x.yaml")


def test_every_problem_is_listed() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("mqtt:\n  qos: 2\nweb:\n  listen: nowhere\n", "x.yaml")
    message = str(info.value)
    assert "line 2, key mqtt.qos" in message
    assert "line 4, key web.listen" in message


def test_influxdb_v2_requires_org_and_bucket() -> None:
    with pytest.raises(ConfigError, match="needs org and bucket"):
        parse_config("timeseries:\n  kind: influxdb-v2\n  url: http://127.0.0.1:8086\n", "x.yaml")


def test_remote_sink_requires_url() -> None:
    with pytest.raises(ConfigError, match="needs a url"):
        parse_config("timeseries:\n  kind: influxdb-v1\n", "x.yaml")


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hub\.example\.yaml"):
        load_config(tmp_path / "absent.yaml")


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="line 1"):
        parse_config("- just\n- a list\n", "x.yaml")


def test_secrets_prefer_environment_then_file_then_yaml(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    config = parse_config(f"mqtt:\n  username: hub\n  password: inline\n  password_file: {secret}\n")
    assert resolve_secrets(config, {}).mqtt_password == "from-file"
    assert resolve_secrets(config, {"HUB_MQTT_PASSWORD": "from-env"}).mqtt_password == "from-env"
    inline_only = parse_config("mqtt:\n  password: inline\n")
    assert resolve_secrets(inline_only, {}).mqtt_password == "inline"


def test_credentials_in_the_mqtt_url_are_used() -> None:
    config = parse_config("mqtt:\n  url: mqtt://dev%40ice:s3cr%2Ft@broker.local:1884\n")
    secrets = resolve_secrets(config, {})
    assert (secrets.mqtt_username, secrets.mqtt_password) == ("dev@ice", "s3cr/t")


def test_token_from_environment_for_influxdb_v2() -> None:
    config = parse_config("timeseries:\n  kind: influxdb-v2\n  url: http://x:8086\n  org: o\n  bucket: b\n")
    assert resolve_secrets(config, {"HUB_TIMESERIES_TOKEN": "tok"}).timeseries_token == "tok"


def test_unreadable_secret_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text(f"mqtt:\n  password_file: {tmp_path / 'missing'}\n")
    with pytest.raises(ConfigError, match=r"mqtt.password_file: cannot read"):
        load_config(path)


def test_secrets_do_not_appear_in_the_config_repr() -> None:
    config = parse_config("mqtt:\n  password: hunter2\n")
    assert "hunter2" not in repr(config)


@pytest.mark.parametrize(
    ("full_topic", "says"),
    [
        ("%topic%/x/", "must hold %prefix%"),
        ("%prefix%/devices/", "%topic%, %hostname% or %id%"),
        ("%prefix%/+/%topic%/", "wildcards"),
    ],
)
def test_a_tasmota_full_topic_the_decoder_cannot_follow_is_refused(full_topic: str, says: str) -> None:
    text = f'ingest:\n  ecosystems:\n    tasmota:\n      full_topic: "{full_topic}"\n'
    with pytest.raises(ConfigError, match=r"line 4, key ingest\.ecosystems\.tasmota\.full_topic") as err:
        parse_config(text, "hub.yaml")
    assert says in str(err.value)


def test_topic_rules_and_field_map_name_canonical_measurements() -> None:
    text = (
        "ingest:\n  rules:\n    - topic: 'a/{x}'\n      thing: '{x}'\n      fields:\n"
        "        - name: temprature\n  field_map:\n    - field: F\n      to: humidity\n"
    )
    with pytest.raises(ConfigError, match=r"ingest\.rules\.0\.fields\.0\.name") as err:
        parse_config(text, "hub.yaml")
    assert "'temprature' is not a canonical measurement" in str(err.value)
