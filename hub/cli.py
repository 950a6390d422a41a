"""The ``hub`` command: demo, run, check-config, decode. Exit codes: 0 ok, 1 failure, 2 usage."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from hub import __version__
from hub.config import ConfigError, HubConfig, load_config
from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected, Scan
from hub.ha_cli import add_ha_commands
from hub.mqttsetup import add_mqtt_setup_command
from hub.people_cli import CommandError, add_people_commands


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("amqtt", "transitions", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # apprise's debug lines carry notification URLs and request headers, tokens included
    logging.getLogger("apprise").setLevel(max(logging.INFO, logging.getLogger().level))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_json(event: Event) -> dict[str, Any]:
    """The JSON shape ``hub decode`` prints for one event (DESIGN §5)."""
    if isinstance(event, Reading):
        out: dict[str, Any] = {
            "type": "reading",
            "source": event.source,
            "thing": event.thing,
            "values": event.values,
        }
        if event.time is not None:
            out["time"] = _iso(event.time)
        if event.unmapped:
            out["unmapped"] = event.unmapped
        return out
    if isinstance(event, Availability):
        return {"type": "availability", "source": event.source, "thing": event.thing, "online": event.online}
    if isinstance(event, Discovery):
        out = {"type": "discovery", "source": event.source, "thing": event.thing}
        if event.retired:
            out["retired"] = True
        for key in ("name", "model", "manufacturer", "sw_version", "power"):
            if getattr(event, key) is not None:
                out[key] = getattr(event, key)
        if event.measurements:
            out["measurements"] = list(event.measurements)
        if event.topics:
            out["topics"] = list(event.topics)
        if event.attributes:
            out["attributes"] = event.attributes
        return out
    if isinstance(event, Scan):
        out = {"type": "scan", "source": event.source, "reader": event.reader, "tag": event.tag}
        if event.time is not None:
            out["time"] = _iso(event.time)
        return out
    if isinstance(event, Rejected):
        return {
            "type": "rejected",
            "source": event.source,
            "topic": event.topic,
            "reason": event.reason,
            "detail": event.detail,
        }
    assert isinstance(event, Ignored)
    return {"type": "ignored", "source": event.source, "topic": event.topic}


def _payload_of(record: dict[str, Any]) -> bytes:
    if "payload_b64" in record:
        return base64.b64decode(record["payload_b64"], validate=True)
    payload = record.get("payload")
    if payload is None:
        return b""
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return json.dumps(payload).encode()


def cmd_decode(args: argparse.Namespace) -> int:
    from hub.app import build_router

    config = load_config(args.config) if args.config else HubConfig()
    if args.base_topic:
        config = config.model_copy(
            update={"mqtt": config.mqtt.model_copy(update={"base_topic": args.base_topic})}
        )
    router = build_router(config)
    stream: IO[str] = open(args.file, encoding="utf-8") if args.file and args.file != "-" else sys.stdin  # noqa: SIM115
    out = sys.stdout
    with stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("topic"), str):
                    raise ValueError('expected {"topic": ..., "payload": ...}')
                events = router.route(record["topic"], _payload_of(record), time.time())
            except (ValueError, TypeError) as exc:
                events = [Rejected("input", "", "bad_input", f"line {number}: {exc}")]
            for event in events:
                out.write(json.dumps(event_json(event), ensure_ascii=False) + "\n")
    out.flush()
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(
        f"{args.file}: ok (mqtt {config.mqtt.url}, timeseries {config.timeseries.kind}, "
        f"storage {config.storage.url or config.storage.path})"
    )
    return 0


def _stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM; installed before start-up, so a stop during it is clean too."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_run(args: argparse.Namespace) -> int:
    from hub.app import Hub, settle_memory
    from hub.scaleout import config_for_role

    config = config_for_role(load_config(args.config), args.role, args.worker, str(args.config))
    setup_logging(args.log_level or config.log.level)
    stop = _stop_on_signals()
    hub = Hub(config, role=args.role, worker=args.worker)
    try:
        hub.start()
        settle_memory()
        logging.getLogger("hub").info("hub running version=%s", __version__)
        while not stop.wait(0.5):
            pass
    finally:
        hub.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    setup_logging(args.log_level or "warning")
    return run_demo(Path(args.dir), port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub", description="Neighborhood Hub: shared sensors and machines over MQTT."
    )
    parser.add_argument("--version", action="version", version=f"hub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="run everything on this machine with simulated devices, no set-up")
    p.add_argument("--dir", default="hub-demo", help="where the demo keeps its data (default ./hub-demo)")
    p.add_argument(
        "--port", type=int, default=8080, help="dashboard port, or the next free one (default 8080)"
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="run the hub in production")
    p.add_argument(
        "--config", required=True, metavar="FILE", help="the YAML config (see config/hub.example.yaml)"
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--role",
        choices=["all", "ingest", "state"],
        default="all",
        help="all: the whole hub in one process (default); ingest: one of several workers sharing the "
        "broker's messages; state: the one process owning alerts, availability, lending and the "
        "dashboard (docs/scale-out.md)",
    )
    p.add_argument("--worker", metavar="NAME", help="with --role ingest: this worker's name (1, 2, ...)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a config file; errors name file, line and key")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("decode", help="decode JSON lines {topic, payload} through the hub's decoders")
    p.add_argument("file", nargs="?", metavar="FILE", help="input file (default: standard input)")
    p.add_argument("--config", metavar="FILE", help="take the base topic and limits from this config")
    p.add_argument("--base-topic", help="the hub's base topic (default neighborhood)")
    p.set_defaults(func=cmd_decode)

    add_mqtt_setup_command(sub)
    add_people_commands(sub)
    add_ha_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 1
    except CommandError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
