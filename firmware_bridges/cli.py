"""``hub-bridge``: device-side bridges to the hub's MQTT topics.

Exit codes: 0 stopped cleanly (SIGINT/SIGTERM), 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from firmware_bridges import __version__
from firmware_bridges.broker_url import PASSWORD_ENV, parse_broker_url
from firmware_bridges.readers import READER_KINDS

_TOPIC_FORBIDDEN = set("+#/\0")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub-bridge",
        description="Bridges device-side hardware to the Neighborhood Hub over MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"hub-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serial_cmd = commands.add_parser(
        "serial",
        help="serial RFID/NFC tag reader to MQTT",
        description=(
            "Read a serial tag reader and publish each scan to <base>/readers/<READER>/scan as "
            '{"tag": ..., "time": ...} (QoS 1); availability (online/offline, retained) on '
            "<base>/readers/<READER>/availability."
        ),
        epilog=f"The broker password may also come from the environment variable {PASSWORD_ENV}.",
    )
    serial_cmd.add_argument("--port", required=True, metavar="DEV", help="serial device, e.g. /dev/ttyUSB0")
    serial_cmd.add_argument(
        "--reader",
        required=True,
        choices=READER_KINDS,
        help="rdm6300 (125 kHz EM4100), pn532 (NFC over HSU, polled), lines (one UID per text line), "
        "wiegand (26-bit frames printed as 0/1 lines)",
    )
    serial_cmd.add_argument(
        "--id", required=True, dest="reader_id", metavar="READER", help="reader id in the MQTT topics"
    )
    serial_cmd.add_argument(
        "--mqtt", required=True, metavar="URL", help="mqtt://[user[:password]@]host[:port] or mqtts://..."
    )
    serial_cmd.add_argument(
        "--base-topic", default="neighborhood", metavar="TOPIC", help="default: neighborhood"
    )
    serial_cmd.add_argument(
        "--baud", type=int, metavar="N", help="default: 9600 (rdm6300, lines, wiegand), 115200 (pn532)"
    )
    serial_cmd.add_argument(
        "--debounce",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="a tag seen again within this many seconds of its last sighting is the same scan (default 1.0)",
    )
    serial_cmd.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="default: INFO"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        broker = parse_broker_url(args.mqtt, os.environ)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.reader_id or set(args.reader_id) & _TOPIC_FORBIDDEN:
        parser.error(f"--id {args.reader_id!r}: must be non-empty without '/', '+' or '#'")
    base = args.base_topic
    if not base or set(base) & set("+#\0") or base.strip("/") != base:
        parser.error(f"--base-topic {args.base_topic!r}: no wildcards and no leading or trailing '/'")
    if args.baud is not None and args.baud <= 0:
        parser.error(f"--baud {args.baud}: must be a positive number, e.g. 9600 or 115200")
    if not args.debounce >= 0:
        parser.error(f"--debounce {args.debounce}: must be zero or more seconds")

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    # Imported here so --help and usage errors stay fast and independent of paho/pyserial.
    from firmware_bridges.bridge import BridgeConfig, BridgeFailure, SerialBridge

    config = BridgeConfig(
        port=args.port,
        reader=args.reader,
        reader_id=args.reader_id,
        broker=broker,
        base_topic=args.base_topic,
        baud=args.baud,
        debounce=args.debounce,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        SerialBridge(config).run(stop)
    except BridgeFailure as exc:
        print(f"hub-bridge: error: {exc}", file=sys.stderr)
        return 1
    return 0
