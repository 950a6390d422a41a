"""``hub ha``: a resident's own Home Assistant as a source of readings, from the console.

    hub ha link --resident R --url U [--token-file F]   token from the file, $HUB_HA_TOKEN or a prompt
    hub ha status --resident R
    hub ha entities --resident R [--all] [--json]
    hub ha share ENTITY --resident R [--visibility V] [--watchers full|state|none] [--name N]
    hub ha unshare ENTITY --resident R
    hub ha unlink --resident R

The token is never a command-line argument (other users of the machine can read those) and is never
printed. Changes go to the store at once; a running hub follows them within seconds
(hub/integrations/ha_source.py).
"""

from __future__ import annotations

import argparse
import functools
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.config import load_config
from hub.people_cli import CommandError, Handler, Session, _command, _config_parent, _print_json, _table

if TYPE_CHECKING:
    from hub.integrations.ha_source import HaLinkDesk

#: where the token may come from, besides --token-file and the prompt
TOKEN_ENV = "HUB_HA_TOKEN"
PICKED_UP = "a running hub follows it within seconds"


def _desk(args: argparse.Namespace, s: Session) -> HaLinkDesk:
    # imported here: the Home Assistant client libraries load only for these commands
    from hub.integrations.ha_source import HaLinkDesk, SourceSettings
    from hub.storage.halinks import HaLinks

    cfg = load_config(args.config).integrations.homeassistant_source
    settings = SourceSettings(**cfg.model_dump(exclude={"enabled"}))
    return HaLinkDesk(HaLinks(s.directory.store), s.directory, settings, clock=lambda: s.now)


def _ha(handler: Handler) -> Handler:
    """The desk's refusals as one line: "<what to do> (<reason>)"."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, s: Session) -> int:
        from hub.integrations.ha_source import HaSourceError
        from hub.storage.halinks import HaLinkError

        try:
            return handler(args, s)
        except (HaSourceError, HaLinkError) as exc:
            raise CommandError(f"{exc.message} ({exc.reason})") from exc

    return run


def _read_token(args: argparse.Namespace) -> str:
    """From --token-file, else $HUB_HA_TOKEN, else asked on a terminal (not echoed) or stdin's first line."""
    if args.token_file:
        try:
            text = Path(args.token_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read the token file {args.token_file}: {exc.strerror}") from None
        return text.strip()
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip()
    if sys.stdin.isatty():
        return getpass.getpass("Long-lived access token (not shown): ")
    line = sys.stdin.readline()
    if not line.strip():
        raise CommandError(f"no token: give --token-file FILE, set {TOKEN_ENV}, or pipe it on stdin")
    return line.strip()


@_ha
def cmd_link(args: argparse.Namespace, s: Session) -> int:
    from hub.integrations.ha_source import check_url

    resident = s.actor(args.resident)
    desk = _desk(args, s)
    check_url(args.url)  # before asking for a token
    link = desk.link(resident.id, args.url, _read_token(args))
    print(f"{resident.pseudonym}'s Home Assistant at {link.url} is linked; {PICKED_UP}")
    print(f"next: hub ha entities --resident {resident.pseudonym} lists what can be shared")
    return 0


@_ha
def cmd_unlink(args: argparse.Namespace, s: Session) -> int:
    resident = s.resident(args.resident)
    desk = _desk(args, s)
    shares = len(desk.shares(resident.id))
    if not desk.unlink(resident.id, actor=resident.id):
        raise CommandError(f"{resident.pseudonym} has no Home Assistant linked (not_linked)")
    print(f"unlinked: the token is deleted and {shares} shared entities stopped; {PICKED_UP}")
    return 0


@_ha
def cmd_status(args: argparse.Namespace, s: Session) -> int:
    resident = s.resident(args.resident)
    desk = _desk(args, s)
    link = desk.get(resident.id)
    if link is None:
        print(f"{resident.pseudonym} has no Home Assistant linked")
        return 0
    shares = desk.shares(resident.id)
    if args.json:
        _print_json(
            {
                "url": link.url,
                "shares": [
                    {"entity_id": x.entity_id, "thing": x.thing, "measurement": x.measurement} for x in shares
                ],
            }
        )
        return 0
    print(f"linked: {link.url} (the token is kept, never shown)")
    if shares:
        _table([("ENTITY", "THING", "RECORDED AS"), *((x.entity_id, x.thing, x.measurement) for x in shares)])
    else:
        print("nothing shared yet")
    return 0


@_ha
def cmd_entities(args: argparse.Namespace, s: Session) -> int:
    resident = s.resident(args.resident)
    listed = _desk(args, s).entities(resident.id)
    if not args.all:
        listed = [e for e in listed if e.shareable or e.thing]
    if args.json:
        _print_json([_entity_json(e) for e in listed])
        return 0
    if not listed:
        print("no entity of this Home Assistant can be shared (--all lists why)")
        return 0
    rows: list[tuple[str, ...]] = [("ENTITY", "NOW", "RECORDED AS", "SHARED AS / WHY NOT")]
    for e in listed:
        recorded = f"{e.measurement} ({e.unit})" if e.measurement and e.unit else e.measurement or "-"
        rows.append((e.entity_id, e.state or "-", recorded, e.thing or ("" if e.shareable else e.detail)))
    _table(rows)
    return 0


def _entity_json(e: Any) -> dict[str, Any]:
    return {
        "entity_id": e.entity_id,
        "name": e.name,
        "measurement": e.measurement,
        "unit": e.unit,
        "state": e.state,
        "shareable": e.shareable,
        "refusal": e.refusal,
        "detail": e.detail,
        "thing": e.thing,
    }


@_ha
def cmd_share(args: argparse.Namespace, s: Session) -> int:
    resident = s.actor(args.resident)
    share, thing = _desk(args, s).share(
        resident.id,
        args.entity,
        visibility=args.visibility,
        watchers=args.watchers,
        name=args.name,
        measurement=args.measurement,
    )
    print(
        f"{share.entity_id} shared as thing {thing.id} ({thing.name!r}, {share.measurement}, "
        f"{thing.visibility.value}, watchers see {args.watchers}); {PICKED_UP}"
    )
    return 0


@_ha
def cmd_unshare(args: argparse.Namespace, s: Session) -> int:
    resident = s.resident(args.resident)
    removed = _desk(args, s).unshare(resident.id, args.entity)
    print(f"{removed.entity_id} is no longer shared: thing {removed.thing} is retired; {PICKED_UP}")
    return 0


class _NoTokenOnTheCommandLine(argparse.Action):
    """``--token``: refused without repeating it, since every user of the machine can read the command line
    (and a prefix of --token-file would otherwise take the token for a file name)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        parser.error(f"the token never goes on the command line: use --token-file FILE or ${TOKEN_ENV}")


def add_ha_commands(sub: Any) -> None:
    """Add ``ha`` to the ``hub`` subcommands ``sub``."""
    cfg = _config_parent()
    group = sub.add_parser(
        "ha", help="a resident's own Home Assistant as a source: link, entities, share, unshare, unlink"
    ).add_subparsers(dest="ha_command", metavar="COMMAND", required=True)

    def command(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p = _command(group, name, handler, help_, cfg)
        p.add_argument("--resident", required=True, metavar="PSEUDONYM", help="whose Home Assistant")
        return p

    p = command("link", cmd_link, "link a resident's Home Assistant (it must accept the token)")
    p.add_argument("--url", required=True, help="its address, e.g. http://homeassistant.local:8123")
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"a file holding the long-lived access token (else ${TOKEN_ENV}, else asked)",
    )
    p.add_argument("--token", nargs="?", action=_NoTokenOnTheCommandLine, help=argparse.SUPPRESS)
    command("unlink", cmd_unlink, "delete the link and its token; every shared entity stops")
    p = command("status", cmd_status, "the link and what is shared")
    p.add_argument("--json", action="store_true")
    p = command("entities", cmd_entities, "the entities that Home Assistant reports, and what each would be")
    p.add_argument("--all", action="store_true", help="also those that cannot be shared, with why")
    p.add_argument("--json", action="store_true")
    p = command("share", cmd_share, "share an entity as a thing the resident owns")
    p.add_argument("entity", metavar="ENTITY", help="e.g. sensor.basement_temperature")
    p.add_argument("--visibility", choices=["private", "neighbors", "public"], default="private")
    p.add_argument(
        "--watchers",
        choices=["full", "state", "none"],
        default="none",
        help="what watchers see: full readings, the derived state (yes/no) only, or nothing",
    )
    p.add_argument("--name", help="what neighbors call it (default: its name in Home Assistant)")
    p.add_argument(
        "--as",
        dest="measurement",
        metavar="MEASUREMENT",
        help="a canonical measurement, where Home Assistant says too little (humidity for a %% sensor)",
    )
    p = command("unshare", cmd_unshare, "stop sharing an entity; its thing is retired, its history stays")
    p.add_argument("entity", metavar="ENTITY")
