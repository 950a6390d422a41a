"""The hub's configuration: YAML validated by pydantic, errors that name file, line and key.

Secrets never have to live in the YAML: each one may come from the environment (``HUB_MQTT_PASSWORD``,
``HUB_TIMESERIES_PASSWORD``, ``HUB_TIMESERIES_TOKEN``) or from a ``*_file`` key naming a file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError


class ConfigError(Exception):
    """A configuration problem a user can fix; the message names the file, line and key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(_Section):
    #: ``mqtt://[user[:password]@]host[:port]``, ``mqtts://...`` for TLS, or ``embedded``.
    url: str = "mqtt://127.0.0.1:1883"
    base_topic: str = Field("neighborhood", pattern=r"^[^#+\s]+[^#+\s/]$|^[^#+\s/]$")
    client_id: str = Field("neighborhood-hub", min_length=1, max_length=64)
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    keepalive: int = Field(30, ge=5, le=3600)
    qos: Literal[0, 1] = 1
    session_expiry: int = Field(7 * 24 * 3600, ge=0)
    receive_maximum: int = Field(1000, ge=1, le=65535)
    tls_ca_file: Path | None = None

    @model_validator(mode="after")
    def _url_shape(self) -> MqttConfig:
        if self.url != "embedded":
            parts = urlsplit(self.url)
            if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
                raise ValueError(
                    f"url {self.url!r} is not mqtt://host[:port], mqtts://host[:port] or embedded"
                )
        return self


class TimeseriesConfig(_Section):
    kind: Literal["influxdb-v2", "influxdb-v1", "embedded"] = "embedded"
    url: str | None = None
    # InfluxDB 1.x
    database: str = "hub"
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    # InfluxDB 2.x / 3.x
    org: str | None = None
    bucket: str | None = None
    token: SecretStr | None = None
    token_file: Path | None = None
    # batching and the embedded store
    batch_size: int = Field(5000, ge=1, le=5000)
    flush_interval: float = Field(1.0, gt=0, le=10)
    timeout: float = Field(10.0, gt=0, le=120)
    retention_days: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _kind_needs(self) -> TimeseriesConfig:
        if self.kind != "embedded" and not self.url:
            raise ValueError(f"kind {self.kind} needs a url (e.g. http://127.0.0.1:8086)")
        if self.kind == "influxdb-v2" and not (self.org and self.bucket):
            raise ValueError("kind influxdb-v2 needs org and bucket")
        return self


class RetentionConfig(_Section):
    scans_days: float = Field(90.0, gt=0)
    audit_days: float = Field(365.0, gt=0)
    deliveries_days: float = Field(30.0, gt=0)
    alert_events_days: float = Field(365.0, gt=0)


class StorageConfig(_Section):
    #: Directory for the SQLite store, the spool and the embedded time series.
    path: Path = Path("hub-data")
    #: A PostgreSQL URL (``postgresql+psycopg://user@host/db``) when several hub processes share state.
    url: str | None = None
    spool_max_mb: float = Field(512.0, gt=0)
    #: days the relational store keeps rows that grow with use (hub.storage.housekeeping)
    retention: RetentionConfig = Field(default_factory=lambda: RetentionConfig())


class WebConfig(_Section):
    enabled: bool = True
    listen: str = Field("127.0.0.1:8080", pattern=r"^[^:\s]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$")
    #: believe X-Forwarded-Proto/-For: only when the hub is reachable through a reverse proxy alone
    trust_proxy: bool = False

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


_TOPIC_PREFIX = r"^[^#+\s]+$"


class EcosystemToggle(_Section):
    enabled: bool = True


class HomeAssistantIngest(_Section):
    """Home Assistant MQTT discovery: devices that announce themselves under ``discovery_prefix``."""

    enabled: bool = True
    discovery_prefix: str = Field("homeassistant", pattern=_TOPIC_PREFIX)
    #: at most this many state/availability topics learned from discovery are followed
    max_topics: int = Field(10000, ge=1)


class TasmotaIngest(_Section):
    enabled: bool = True
    #: Tasmota's FullTopic; %prefix% is one of cmnd/stat/tele, %topic% the device topic
    full_topic: str = "%prefix%/%topic%/"
    discovery_prefix: str = Field("tasmota/discovery", pattern=_TOPIC_PREFIX)

    @field_validator("full_topic")
    @classmethod
    def _layout(cls, full_topic: str) -> str:
        if "%prefix%" not in full_topic:
            raise ValueError("must hold %prefix% (where Tasmota puts tele, stat or cmnd)")
        if not any(token in full_topic for token in ("%topic%", "%hostname%", "%id%")):
            raise ValueError("must name the device with %topic%, %hostname% or %id%")
        if any(c in full_topic for c in "+#"):
            raise ValueError("must not hold the MQTT wildcards + or #")
        return full_topic


class Zigbee2MqttIngest(_Section):
    enabled: bool = True
    #: more than one Zigbee2MQTT instance may run (one per coordinator)
    base_topics: list[str] = ["zigbee2mqtt"]


class EsphomeIngest(_Section):
    enabled: bool = True
    discovery_prefix: str = Field("esphome/discover", pattern=_TOPIC_PREFIX)


class HomieIngest(_Section):
    enabled: bool = True
    root: str = Field("homie", pattern=_TOPIC_PREFIX)


class TtnIngest(_Section):
    enabled: bool = True
    #: The Things Stack's topic prefix (``v3``)
    prefix: str = Field("v3", pattern=_TOPIC_PREFIX)


class AirrohrIngest(_Section):
    """Sensor.Community airrohr firmware's custom-API HTTP push to ``POST /api/v1/push/airrohr``."""

    enabled: bool = True
    #: optional shared secret the firmware sends as HTTP basic auth password (user: anything)
    password: SecretStr | None = None


class Ecosystems(_Section):
    homeassistant: HomeAssistantIngest = HomeAssistantIngest()
    tasmota: TasmotaIngest = TasmotaIngest()
    zigbee2mqtt: Zigbee2MqttIngest = Zigbee2MqttIngest()
    esphome: EsphomeIngest = EsphomeIngest()
    shelly: EcosystemToggle = EcosystemToggle()
    homie: HomieIngest = HomieIngest()
    ttn: TtnIngest = TtnIngest()
    airrohr: AirrohrIngest = AirrohrIngest()


def _canonical_measurement(name: str) -> str:
    from hub.domain.vocabulary import MEASUREMENTS  # pure; imported here to keep config light

    if name not in MEASUREMENTS:
        names = ", ".join(sorted(MEASUREMENTS))
        raise ValueError(f"{name!r} is not a canonical measurement: use one of {names}")
    return name


class RuleField(_Section):
    """Where one canonical value sits in a payload matched by a topic rule."""

    #: dotted path into the JSON payload (``env.temp``, ``sensors[0].value``, ``"PM2.5"`` quoted);
    #: ``$`` or absent: the whole payload is the value (plain-text payloads)
    path: str = "$"
    #: the canonical measurement (DESIGN §5)
    name: str
    #: the unit the device uses; converted to the canonical unit (°F, Pa, Wh, mV, ...)
    unit: str | None = None

    @field_validator("name")
    @classmethod
    def _canonical(cls, name: str) -> str:
        return _canonical_measurement(name)


_RULE_CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TopicRule(_Section):
    """A topic the built-in decoders do not know, read by pattern (like Telegraf's ``topic_parsing``).

    ``topic`` is an MQTT filter where a level ``{name}`` captures that level (``+`` captures nothing,
    a trailing ``#`` matches the rest); ``thing`` is a template over the captures.
    """

    topic: str = Field(min_length=1)
    thing: str = Field(min_length=1)
    source: str = Field("rules", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    fields: list[RuleField] = Field(min_length=1)
    #: JSON path of the device's own timestamp, if any
    time_path: str | None = None

    @field_validator("topic")
    @classmethod
    def _pattern(cls, topic: str) -> str:
        levels = topic.split("/")
        names: list[str] = []
        for i, level in enumerate(levels):
            capture = _RULE_CAPTURE.fullmatch(level)
            if capture and capture.group(1) in names:
                raise ValueError(f"captures {level} twice")
            if capture:
                names.append(capture.group(1))
            elif level == "#" and i < len(levels) - 1:
                raise ValueError("# may only be the last level")
            elif level not in ("+", "#") and any(c in level for c in "+#{}"):
                raise ValueError(
                    f"level {level!r} must be text, {{name}} (letters, digits, _), + or a final #"
                )
        return topic

    @model_validator(mode="after")
    def _thing_uses_captures(self) -> TopicRule:
        captured = set(_RULE_CAPTURE.findall(self.topic))
        for name in _RULE_CAPTURE.findall(self.thing):
            if name not in captured:
                raise ValueError(
                    f"thing {self.thing!r} uses {{{name}}}, which topic {self.topic!r} does not capture"
                )
        if any(c in _RULE_CAPTURE.sub("", self.thing) for c in "{}"):
            raise ValueError(f"thing {self.thing!r}: braces only as {{name}} of a captured topic level")
        return self


class FieldMapping(_Section):
    """Maps a field a decoder left unmapped (listed on the thing's page) to a canonical measurement."""

    #: glob over thing ids (``tasmota.*``)
    thing: str = "*"
    #: the field as listed under "unmapped" (``ENERGY.ApparentPower``)
    field: str = Field(min_length=1)
    to: str
    unit: str | None = None

    @field_validator("to")
    @classmethod
    def _canonical(cls, name: str) -> str:
        return _canonical_measurement(name)


class AvailabilityTimeouts(_Section):
    """How long a thing that never publishes availability may stay silent before it counts as offline."""

    mains_s: float = Field(600.0, gt=0)
    battery_s: float = Field(25 * 3600.0, gt=0)


class IngestConfig(_Section):
    max_payload_bytes: int = Field(1_048_576, ge=64)
    queue_size: int = Field(20000, ge=10)
    ecosystems: Ecosystems = Ecosystems()
    rules: list[TopicRule] = []
    field_map: list[FieldMapping] = []
    availability_timeout: AvailabilityTimeouts = AvailabilityTimeouts()


class HomeAssistantPublish(_Section):
    """The hub's own MQTT discovery, so residents' Home Assistant shows the neighborhood's things."""

    enabled: bool = True
    discovery_prefix: str = Field("homeassistant", pattern=_TOPIC_PREFIX)


class HomeAssistantSource(_Section):
    """Residents share entities of their own Home Assistant as things (hub/integrations/ha_source.py)."""

    enabled: bool = True
    #: websocket: state changes as they happen; poll: every poll_interval_s; auto: the websocket, and
    #: polling for an instance whose proxy does not pass websockets
    mode: Literal["auto", "websocket", "poll"] = "auto"
    poll_interval_s: float = Field(30.0, ge=1, le=3600)
    #: an unreachable instance is tried again after retry_initial_s, doubling up to retry_max_s
    retry_initial_s: float = Field(1.0, gt=0, le=60)
    retry_max_s: float = Field(300.0, ge=1, le=3600)
    max_entities: int = Field(20, ge=1, le=1000)  # shared entities per resident
    timeout_s: float = Field(10.0, gt=0, le=120)
    #: an idle websocket is pinged this often; no answer for twice as long drops the connection
    keepalive_s: float = Field(30.0, ge=1, le=600)


class IntegrationsConfig(_Section):
    homeassistant_source: HomeAssistantSource = HomeAssistantSource()


class LendingConfig(_Section):
    #: reader id → lend (card then tool checks out; a tool that is out, tapped, is returned),
    #: return_only or checkout_only. Readers not listed use default_mode.
    readers: dict[str, Literal["lend", "return_only", "checkout_only"]] = {}
    default_mode: Literal["lend", "return_only", "checkout_only"] = "lend"
    remind_before_hours: float = Field(24.0, gt=0)
    escalate_after_days: float = Field(3.0, gt=0)


class AlertsConfig(_Section):
    #: the default rules for community sensors (docs/alerts.md lists them with their sources)
    defaults: bool = True
    #: more rules: {kind: threshold|rate|boolean|stale|offline|battery|overdue, id: ..., ...}
    rules: list[dict[str, Any]] = []

    @field_validator("rules")
    @classmethod
    def _rules_parse(cls, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from hub.domain.alert_rules import rule_from_dict  # pure; imported here to keep config light

        for rule in rules:
            rule_from_dict(rule)  # raises ValueError naming the rule and field
        return rules


class ScaleOutConfig(_Section):
    """Several hub processes on one broker (docs/scale-out.md): ``hub run --role ingest`` workers and one
    ``hub run --role state``."""

    #: the MQTT shared-subscription group the ingest workers join (``$share/<group>/<filter>``)
    share_group: str = Field("neighborhood-hub", pattern=r"^[^#+/\s]{1,64}$")
    #: seconds the state process holds events from the workers to put each thing's back in order
    reorder_window_s: float = Field(1.0, ge=0, le=30)


class FederationConfig(_Section):
    """What this neighborhood shares with others through a Mosquitto bridge (docs/scale-out.md)."""

    enabled: bool = False
    #: seconds each published summary covers (mean, min, max, count per measurement)
    interval_s: float = Field(3600.0, ge=1, le=86400)
    #: locations cross as the centre of a cell of this many metres (named places never cross)
    grid_m: float = Field(1000.0, ge=100)


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class HubConfig(_Section):
    mqtt: MqttConfig = MqttConfig()
    timeseries: TimeseriesConfig = TimeseriesConfig()
    storage: StorageConfig = StorageConfig()
    web: WebConfig = WebConfig()
    ingest: IngestConfig = IngestConfig()
    homeassistant_discovery: HomeAssistantPublish = HomeAssistantPublish()
    integrations: IntegrationsConfig = IntegrationsConfig()
    lending: LendingConfig = LendingConfig()
    alerts: AlertsConfig = AlertsConfig()
    log: LogConfig = LogConfig()
    scale_out: ScaleOutConfig = ScaleOutConfig()
    federation: FederationConfig = FederationConfig()


class Secrets(BaseModel):
    """Secrets resolved from the environment, ``*_file`` keys or the YAML, in that order."""

    mqtt_username: str | None = None
    mqtt_password: str | None = None
    timeseries_username: str | None = None
    timeseries_password: str | None = None
    timeseries_token: str | None = None


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _line_of(doc: Any, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the deepest key of ``loc`` present in the YAML document."""
    line = None
    node = doc
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
        else:
            break
    if line is None and isinstance(doc, CommentedMap):
        line = doc.lc.line + 1
    return line


def _key_path(loc: tuple[int | str, ...]) -> str:
    """``mqtt.keepalive``; a key with spaces, dots or control characters quoted (one line per problem)."""
    parts = [str(p) if isinstance(p, int) or _PLAIN_KEY.fullmatch(p) else repr(p) for p in loc]
    return ".".join(parts) or "(top level)"


def _describe(err: dict[str, Any]) -> str:
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return "unknown key (check the spelling against config/hub.example.yaml)"
    if err["type"] == "missing":
        return "required key is missing"
    if "input" in err and not isinstance(err["input"], dict | list):
        return f"{msg} (got {err['input']!r})"
    return msg


def parse_config(text: str, filename: str = "<config>") -> HubConfig:
    """Validate YAML text; raise ConfigError naming file, line and key of every problem."""
    yaml = YAML(typ="rt")
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}, line {mark.line + 1}" if mark else filename
        raise ConfigError(f"{where}: not valid YAML: {exc.problem or exc.context}") from None
    except ReaderError as exc:  # a control character or a byte that is not text
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        bad = f"character {exc.character!r} is not allowed ({exc.reason})"
        raise ConfigError(f"{filename}, line {line}: not valid YAML: {bad}") from None
    except YAMLError as exc:
        raise ConfigError(f"{filename}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{filename}: not valid YAML: nested too deeply") from None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise ConfigError(
            f"{filename}, line 1: the config must be a mapping of sections (mqtt:, timeseries:, ...)"
        )
    too_big = _too_big(doc)
    if too_big:
        raise ConfigError(f"{filename}: {too_big}")
    try:
        return HubConfig.model_validate(_plain(doc))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(doc, loc)
            key = _key_path(loc)
            at = f"{filename}, line {line}" if line else filename
            problems.append(f"{at}, key {key}: {_describe(err)}")
        raise ConfigError("\n".join(problems)) from None


#: the deepest nesting and the most values a config document may have (aliases counted as expanded)
MAX_DEPTH = 32
MAX_NODES = 100_000


def _too_big(doc: Any) -> str | None:
    """Why a document is too deep or too large to be a config, walked without recursion, so neither
    deep nesting nor aliases of aliases (a "billion laughs") can exhaust the stack or the memory."""
    stack = [(doc, 0)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep; no config key needs that"
        if nodes > MAX_NODES:
            return f"more than {MAX_NODES} values (aliases counted as expanded); no config needs that"
        if isinstance(node, Mapping):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return None


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_config(path: str | Path) -> HubConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (copy config/hub.example.yaml to start)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc}") from None
    config = parse_config(text, str(path))
    resolve_secrets(config, env=os.environ, filename=str(path))  # fail early on a missing secret file
    return config


def _from_file(path: Path | None, key: str, filename: str) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{filename}, key {key}: cannot read {path}: {exc.strerror}") from None


def resolve_secrets(config: HubConfig, env: Mapping[str, str], filename: str = "<config>") -> Secrets:
    """Credentials from the environment, then ``*_file`` keys, then the YAML (or the MQTT URL)."""
    url_user = url_password = None
    if config.mqtt.url != "embedded":
        parts = urlsplit(config.mqtt.url)
        url_user = unquote(parts.username) if parts.username else None
        url_password = unquote(parts.password) if parts.password else None

    def pick(
        env_key: str,
        file_path: Path | None,
        file_key: str,
        inline: SecretStr | None,
        fallback: str | None = None,
    ) -> str | None:
        return (
            env.get(env_key)
            or _from_file(file_path, file_key, filename)
            or (inline.get_secret_value() if inline else None)
            or fallback
        )

    ts = config.timeseries
    return Secrets(
        mqtt_username=env.get("HUB_MQTT_USERNAME") or config.mqtt.username or url_user,
        mqtt_password=pick(
            "HUB_MQTT_PASSWORD",
            config.mqtt.password_file,
            "mqtt.password_file",
            config.mqtt.password,
            url_password,
        ),
        timeseries_username=env.get("HUB_TIMESERIES_USERNAME") or ts.username,
        timeseries_password=pick(
            "HUB_TIMESERIES_PASSWORD", ts.password_file, "timeseries.password_file", ts.password
        ),
        timeseries_token=pick("HUB_TIMESERIES_TOKEN", ts.token_file, "timeseries.token_file", ts.token),
    )
