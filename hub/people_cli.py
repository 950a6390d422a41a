"""The ``hub`` commands for people, things and relations: admin, resident, thing, relation, audit.

Every command opens the store named by ``--config`` and acts through the directory, which writes each
change to the audit log. The operator at the console is trusted, like ``sudo``; ``--as PSEUDONYM`` names
the resident who acts, so the log says who, and where that resident acts on a thing the permission
function (``hub.domain.permissions.may``) decides whether they may.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from hub.config import load_config
from hub.domain.lending import HELD, custody
from hub.domain.model import (
    Action,
    AuditEntry,
    Contact,
    LendPolicy,
    Loan,
    LoanState,
    Location,
    Relation,
    RelationKind,
    Resident,
    Role,
    Share,
    Thing,
    Visibility,
)
from hub.domain.permissions import may
from hub.domain.privacy import coarse_location, contact_for, location_for
from hub.domain.trust import TIER_NAMES, explain, tier, trust_record
from hub.storage import store as tables
from hub.storage.accounts import AccountError, Accounts
from hub.storage.directory import ERASED_MARK, Directory, DirectoryError
from hub.storage.store import Store, StoreError

DAY_S = 24 * 3600.0
#: loans that still concern a thing: waiting, reserved, or out
OPEN_LOANS = (LoanState.REQUESTED, LoanState.RESERVED, LoanState.OUT, LoanState.OVERDUE)
#: a thing id is a topic level (``neighborhood/things/<thing>/...``): no separators or wildcards
_THING_ID = re.compile(r"[^\s/+#]{1,128}")
#: audit details that hold epoch seconds, printed as ISO times
_TIME_DETAILS = frozenset({"due", "expires", "until"})
#: what the audit listing prints for an entry without an actor: the hub itself or the console operator
NO_ACTOR = "-"

Handler = Callable[[argparse.Namespace, "Session"], int]


class CommandError(Exception):
    """A request the user can correct; ``hub`` prints it as one line and exits 1."""


# -- the session a command runs in -----------------------------------------------------------------------


@dataclass
class Session:
    """The directory a command works on, the moment it acts at, and lookups that fail in plain words."""

    directory: Directory
    now: float

    def resident(self, pseudonym: str) -> Resident:
        found = self.directory.resident_by_pseudonym(pseudonym)
        if found is None:
            raise CommandError(f"no resident called {pseudonym!r} (hub resident list shows them)")
        return found

    def actor(self, pseudonym: str) -> Resident:
        """A resident who acts: known and not erased."""
        found = self.resident(pseudonym)
        if found.erased:
            raise CommandError(f"{pseudonym} was erased and can no longer act")
        return found

    def thing(self, thing_id: str) -> Thing:
        found = self.directory.thing(thing_id)
        if found is None:
            raise CommandError(f"no thing with id {thing_id!r} (hub thing list shows them)")
        return found

    def relations(self, thing: Thing) -> list[Relation]:
        return self.directory.relations_of_thing(thing.id, now=self.now)

    def require(self, actor: Resident, action: Action, thing: Thing, doing: str) -> None:
        """Refuse unless the permission function lets ``actor`` do ``action`` on ``thing`` now."""
        if not may(actor, action, thing, self.relations(thing), self.now):
            raise CommandError(
                f"{actor.pseudonym} may not {doing} thing {thing.id}: that needs the right to "
                f"{action.value.replace('_', ' ')} it"
            )

    def names(self) -> dict[str, str]:
        """Resident id → pseudonym (erased residents under their placeholder)."""
        return {r.id: r.pseudonym for r in self.directory.residents()}


def _run(handler: Handler, args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        store = Store.open(config.storage.url or config.storage.path)
        try:
            store.migrate()
            return handler(args, Session(Directory(store), time.time()))
        finally:
            store.close()
    except (DirectoryError, StoreError, AccountError) as exc:
        raise CommandError(str(exc)) from exc


# -- formatting -----------------------------------------------------------------------------------------


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else many or word + 's'}"


def _where(location: Location | None) -> str:
    if location is None:
        return "not given"
    parts = []
    if location.place:
        parts.append(location.place)
    if location.lat is not None and location.lon is not None:
        parts.append(f"{location.lat:.5f}, {location.lon:.5f}")
    return " / ".join(parts) or "not given"


def _table(rows: Sequence[Sequence[str]]) -> None:
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# -- parsing values (errors here are the user's to fix: exit 1, not a usage error) -------------------------


def _contact(text: str) -> Contact:
    kind, sep, value = text.partition(":")
    if not sep or not kind.strip() or not value.strip():
        raise CommandError(f"contact {text!r}: write it as kind:value, e.g. email:me@example.org")
    return Contact(kind.strip(), value.strip())


def _until(text: str, now: float) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--until {text!r}: not an ISO date or time, e.g. 2026-07-01T18:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the hub speaks UTC, as its notices do
    ts = moment.timestamp()
    if ts <= now:
        raise CommandError(f"--until {text}: that is already past")
    return ts


def _positive(value: float | None, option: str, *, zero_ok: bool = False) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise CommandError(f"{option} {value:g}: give a {'non-negative' if zero_ok else 'positive'} number")
    return value


def _tier(text: str) -> int:
    if text.isdigit() and int(text) < len(TIER_NAMES):
        return int(text)
    if text.lower() in TIER_NAMES:
        return TIER_NAMES.index(text.lower())
    names = ", ".join(f"{i} {name}" for i, name in enumerate(TIER_NAMES))
    raise CommandError(f"--min-tier {text!r}: use one of {names}")


def _location(args: argparse.Namespace) -> Location | None:
    """The location the options give, or None when they give none."""
    has_point = args.lat is not None or args.lon is not None
    if args.place is not None and has_point:
        raise CommandError("give either --place or --lat and --lon, not both")
    if args.place is not None:
        if not args.place.strip():
            raise CommandError("--place: give a name, e.g. 'tool shed, house 12'")
        return Location(place=args.place.strip())
    if not has_point:
        return None
    if args.lat is None or args.lon is None:
        raise CommandError("give --lat and --lon together")
    if not -90 <= args.lat <= 90 or not -180 <= args.lon <= 180:
        raise CommandError(f"--lat {args.lat:g} --lon {args.lon:g}: latitude is -90..90, longitude -180..180")
    return Location(lat=args.lat, lon=args.lon)


# -- admin ----------------------------------------------------------------------------------------------


def cmd_admin_create(args: argparse.Namespace, s: Session) -> int:
    admin = s.directory.bootstrap_admin(args.pseudonym, now=s.now)
    print(f"{admin.pseudonym} is the first admin. Set their web password with:")
    print(f"  hub resident password {admin.pseudonym}")
    print("Invite neighbors with:")
    print(f"  hub resident invite --as {admin.pseudonym}")
    return 0


# -- residents ------------------------------------------------------------------------------------------


def cmd_resident_invite(args: argparse.Namespace, s: Session) -> int:
    inviter = s.actor(args.actor)
    ttl_days = _positive(args.ttl_days, "--ttl-days")
    ttl_s = (ttl_days if ttl_days is not None else 7.0) * DAY_S
    role = Role(args.role)
    code = s.directory.create_invite(created_by=inviter.id, role=role, ttl_s=ttl_s, now=s.now)
    # the code alone on stdout, so CODE=$(hub resident invite ...) works; the words go to stderr
    print(code)
    print(
        f"an invite to join as {role.value}, from {inviter.pseudonym}, valid until {_iso(s.now + ttl_s)}; "
        f"join with: hub resident join {code} PSEUDONYM",
        file=sys.stderr,
    )
    return 0


def cmd_resident_join(args: argparse.Namespace, s: Session) -> int:
    contacts = [_contact(text) for text in args.contact or ()]
    resident = s.directory.redeem_invite(
        args.code, args.pseudonym, now=s.now, real_name=args.name, contacts=contacts
    )
    print(f"welcome, {resident.pseudonym}: you joined as {resident.role.value}")
    return 0


def _read_password(pseudonym: str) -> str:
    """From a terminal: asked twice, not echoed. Otherwise the first line of stdin (for scripts)."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"New web password for {pseudonym}: ")
        if getpass.getpass("Again: ") != first:
            raise CommandError("the two passwords differ: nothing was changed")
        return first
    line = sys.stdin.readline()
    if not line:
        raise CommandError("no password on stdin: pipe it in, e.g. from a password manager")
    return line.rstrip("\r\n")


def cmd_resident_password(args: argparse.Namespace, s: Session) -> int:
    resident = s.actor(args.pseudonym)
    accounts = Accounts(s.directory.store)
    password = _read_password(resident.pseudonym)
    accounts.check_password(password)
    accounts.set_password(resident.id, password, now=s.now)
    print(f"{resident.pseudonym} can now sign in at the dashboard's /login; their other sessions ended")
    return 0


def cmd_resident_list(args: argparse.Namespace, s: Session) -> int:
    residents = s.directory.residents()
    if args.json:
        _print_json(
            [
                {
                    "id": r.id,
                    "pseudonym": r.pseudonym,
                    "role": r.role.value,
                    "joined": _iso(r.joined_at),
                    "erased": r.erased,
                }
                for r in residents
            ]
        )
        return 0
    if not residents:
        print("no residents yet: hub admin create PSEUDONYM makes the first admin")
        return 0
    rows = [("PSEUDONYM", "ROLE", "JOINED")]
    rows += [(r.pseudonym, "erased" if r.erased else r.role.value, _iso(r.joined_at)) for r in residents]
    _table(rows)
    return 0


def cmd_resident_show(args: argparse.Namespace, s: Session) -> int:
    resident = s.resident(args.pseudonym)
    record = trust_record(
        resident.id, s.directory.loans(borrower=resident.id), s.directory.vouchers_of(resident.id)
    )
    level = tier(record)
    print(f"pseudonym: {resident.pseudonym}")
    if resident.erased:
        print("erased: personal data removed, history kept under this placeholder")
    print(f"role:      {resident.role.value}")
    print(f"joined:    {_iso(resident.joined_at)}")
    # contact values are personal data: shown to the resident themself, otherwise only their kinds
    own = args.actor is not None and s.actor(args.actor).id == resident.id
    if resident.real_name:
        hidden = f"on record (shown with --as {resident.pseudonym})"
        print(f"real name: {resident.real_name if own else hidden}")
    kinds = ", ".join(c.kind for c in resident.contacts)
    if own:
        kinds = ", ".join(f"{c.kind}:{c.value}" for c in resident.contacts)
    print(f"contacts:  {kinds or 'none'}")
    print(f"cards:     {len(s.directory.cards_of(resident.id))}")
    print(f"trust:     {TIER_NAMES[level]} (tier {level}): {explain(record)}")
    relations = s.directory.relations_of_resident(resident.id, now=s.now)
    print("relations: " + (", ".join(f"{r.kind.value} {r.thing}" for r in relations) or "none"))
    loans = s.directory.loans(borrower=resident.id, states=OPEN_LOANS)
    for loan in loans:
        print(f"loan:      {loan.thing} {loan.state.value}, due {_iso(loan.due)}")
    return 0


def cmd_resident_role(args: argparse.Namespace, s: Session) -> int:
    admin = s.actor(args.actor)
    if admin.role is not Role.ADMIN:
        raise CommandError(f"only an admin may change roles; {admin.pseudonym} is a {admin.role.value}")
    resident = s.actor(args.pseudonym)
    changed = s.directory.set_role(resident.id, Role(args.role), actor=admin.id, now=s.now)
    print(f"{changed.pseudonym} is now {changed.role.value} (was {resident.role.value})")
    return 0


def _confirm_erase(pseudonym: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CommandError(f"erasing {pseudonym} cannot be undone: pass --yes to confirm")
    answer = input(f"Erase {pseudonym}'s personal data? This cannot be undone. [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError(f"{pseudonym} was not erased")


def cmd_resident_erase(args: argparse.Namespace, s: Session) -> int:
    resident = s.resident(args.pseudonym)
    if resident.erased:
        raise CommandError(f"{resident.pseudonym} was already erased")
    actor = s.actor(args.actor) if args.actor else None
    if actor is not None and actor.id != resident.id and actor.role is not Role.ADMIN:
        raise CommandError(f"only {resident.pseudonym} themself or an admin may erase {resident.pseudonym}")
    _confirm_erase(resident.pseudonym, args.yes)
    cards = len(s.directory.cards_of(resident.id))
    erased = s.directory.erase_resident(resident.id, actor=actor.id if actor else None, now=s.now)
    _erase_alert_notes(s.directory.store, resident)
    ended = [
        r
        for r in s.directory.relations_of_resident(resident.id, include_inactive=True, now=s.now)
        if r.revoked_at == s.now
    ]
    loans = s.directory.loans(borrower=resident.id)
    vouches = s.directory.vouchers_of(resident.id)
    cleared = _forget_erased_bytes(s.directory.store)
    removed = [
        "real name" if resident.real_name else "",
        _plural(len(resident.contacts), "contact") if resident.contacts else "",
        _plural(cards, "card") if cards else "",
        "any waitlist places",
    ]
    print(f"erased {resident.pseudonym}: now {erased.pseudonym}")
    print(f"removed: {', '.join(x for x in removed if x)}; ended {_plural(len(ended), 'relation')}")
    kept = f"{_plural(len(loans), 'loan')}, {_plural(len(vouches), 'vouch', 'vouches')} received"
    print(
        f"kept, anonymised: {kept}, and the audit log with the old pseudonym, real name and contacts cut out"
    )
    if not cleared:
        print(
            "note: another process held the database, so freed pages could not all be cleared yet; "
            "they are overwritten as the store is used",
            file=sys.stderr,
        )
    held = [loan for loan in loans if loan.state in HELD]
    if held:
        print(f"still out on a loan (custody is kept): {', '.join(loan.thing for loan in held)}")
    return 0


def _erase_alert_notes(store: Store, resident: Resident) -> None:
    """Alert history keeps who acted (an id) but not what an erased resident wrote: their notes go, and
    their pseudonym, real name and contact values are cut out of everyone's notes."""
    personal = [resident.pseudonym, *([resident.real_name] if resident.real_name else [])]
    personal += [c.value for c in resident.contacts]
    events = tables.alert_events
    with store._begin() as conn:
        rows = conn.execute(
            sa.select(events.c.id, events.c.actor, events.c.detail).where(events.c.detail.is_not(None))
        )
        for row in list(rows):
            try:
                detail = json.loads(row.detail)
            except ValueError:
                continue
            if not isinstance(detail, dict):
                continue
            changed = {}
            for key, value in detail.items():
                if not isinstance(value, str):
                    continue
                if key == "note" and row.actor == resident.id:
                    new = ERASED_MARK if value else value
                else:
                    new = value
                    for text in personal:
                        new = re.sub(re.escape(text), ERASED_MARK, new, flags=re.IGNORECASE)
                if new != value:
                    changed[key] = new
            if changed:
                text = json.dumps({**detail, **changed}, ensure_ascii=False, sort_keys=True)
                conn.execute(sa.update(events).where(events.c.id == row.id).values(detail=text))


def _forget_erased_bytes(store: Store) -> bool:
    """Rewrite a SQLite store so deleted personal data leaves no bytes in freed pages or the WAL.

    SQLite keeps deleted rows' bytes in free space until overwritten; VACUUM rebuilds the file and a
    truncating checkpoint empties the write-ahead log. PostgreSQL reclaims dead rows on its own vacuum.
    False when another connection kept the log from being emptied.
    """
    if store.dialect != "sqlite":
        return True
    engine = sa.create_engine(store.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
        return busy is None or busy[0] == 0
    except sa.exc.OperationalError:  # locked by a running hub: erasure itself is done
        return False
    finally:
        engine.dispose()


def cmd_resident_card(args: argparse.Namespace, s: Session) -> int:
    resident = s.actor(args.pseudonym)
    actor = s.actor(args.actor).id if args.actor else None
    if args.remove:
        s.directory.remove_card(resident.id, args.tag, actor=actor, now=s.now)
        print(f"card {args.tag} no longer belongs to {resident.pseudonym}")
        return 0
    tag = s.directory.add_card(resident.id, args.tag, actor=actor, now=s.now)
    print(f"card {tag} now belongs to {resident.pseudonym}: tap it at a reader, then the tool's tag")
    return 0


def cmd_resident_vouch(args: argparse.Namespace, s: Session) -> int:
    voucher = s.actor(args.actor)
    neighbor = s.actor(args.pseudonym)
    s.directory.vouch(voucher.id, neighbor.id, now=s.now)
    print(f"{voucher.pseudonym} vouches for {neighbor.pseudonym}")
    return 0


# -- things ---------------------------------------------------------------------------------------------


def _describe_thing(thing: Thing) -> str:
    return (
        f"{thing.id} ({thing.name}, {thing.kind}), visible to {_AUDIENCE[thing.visibility]}, "
        f"watchers see {_SHARED[thing.watcher_share]}"
    )


_AUDIENCE = {
    Visibility.PRIVATE: "its related residents only",
    Visibility.NEIGHBORS: "neighbors",
    Visibility.PUBLIC: "everyone",
}
_SHARED = {Share.FULL: "full readings", Share.DERIVED: "a derived state only", Share.NONE: "nothing"}


def cmd_thing_add(args: argparse.Namespace, s: Session) -> int:
    if not _THING_ID.fullmatch(args.id):
        raise CommandError(f"thing id {args.id!r}: 1 to 128 characters, no spaces, '/', '+' or '#'")
    actor = s.actor(args.actor) if args.actor else None
    owner = s.actor(args.owner) if args.owner else actor
    thing = Thing(
        id=args.id,
        name=args.name,
        kind=args.kind or "sensor",
        visibility=Visibility(args.visibility or Visibility.NEIGHBORS),
        watcher_share=Share(args.share or Share.DERIVED),
        location=_location(args),
        tags=tuple(args.tag or ()),
    )
    thing = s.directory.create_thing(
        thing, owner=owner.id if owner else None, actor=actor.id if actor else None, now=s.now
    )
    print(f"added {_describe_thing(thing)}")
    print(f"owner: {owner.pseudonym if owner else 'none yet (hub relation grant PSEUDONYM owns ...)'}")
    if thing.tags:
        print(f"tags: {', '.join(thing.tags)}")
    return 0


def cmd_thing_edit(args: argparse.Namespace, s: Session) -> int:
    thing = s.thing(args.id)
    actor = s.actor(args.actor) if args.actor else None
    if actor is not None:
        s.require(actor, Action.MANAGE, thing, "edit")
    actor_id = actor.id if actor else None
    changes: dict[str, Any] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.kind is not None:
        changes["kind"] = args.kind
    if args.visibility is not None:
        changes["visibility"] = Visibility(args.visibility)
    if args.share is not None:
        changes["watcher_share"] = Share(args.share)
    location = _location(args)
    if location is not None:
        changes["location"] = location
    new_owner = s.actor(args.owner) if args.owner else None
    if not (changes or args.tag or args.untag or new_owner):
        raise CommandError(
            "nothing to change: give --name, --kind, --visibility, --share, a location, "
            "--tag, --untag or --owner"
        )
    done: list[str] = []
    if changes:
        thing = s.directory.update_thing(replace(thing, **changes), actor=actor_id, now=s.now)
        done.append(", ".join(sorted(changes)))
    for tag in args.untag or ():
        s.directory.detach_tag(thing.id, tag, actor=actor_id, now=s.now)
        done.append(f"tag {tag} removed")
    for tag in args.tag or ():
        done.append(f"tag {s.directory.attach_tag(thing.id, tag, actor=actor_id, now=s.now)} attached")
    if new_owner is not None:
        done.append(_transfer(s, thing, new_owner, actor_id))
    print(f"{thing.id}: {'; '.join(done)}")
    return 0


def _transfer(s: Session, thing: Thing, owner: Resident, actor: str | None) -> str:
    """Make ``owner`` the thing's one owner: grant their owns relation, end the others'."""
    owns = [r for r in s.relations(thing) if r.kind is RelationKind.OWNS]
    if any(r.resident == owner.id for r in owns):
        return f"{owner.pseudonym} already owns it"
    s.directory.grant(Relation("", owner.id, thing.id, RelationKind.OWNS), actor=actor, now=s.now)
    for relation in owns:
        s.directory.revoke(relation.id, actor=actor, now=s.now)
    return f"now owned by {owner.pseudonym}"


def _custody_line(loans: Iterable[Loan], thing: Thing, names: dict[str, str], now: float) -> str:
    loan = custody(thing.id, loans, now)
    if loan is None:
        return "retired" if thing.retired else "at home"
    return f"{loan.state.value}: held by {names.get(loan.borrower, loan.borrower)}, due {_iso(loan.due)}"


def _visible_things(s: Session, viewer: Resident | None) -> list[Thing]:
    things = s.directory.things()
    if viewer is None:
        return things
    return [t for t in things if may(viewer, Action.SEE, t, s.relations(t), s.now)]


def cmd_thing_list(args: argparse.Namespace, s: Session) -> int:
    viewer = s.actor(args.actor) if args.actor else None
    things = _visible_things(s, viewer)
    names = s.names()
    loans = s.directory.loans(states=OPEN_LOANS)
    rows: list[dict[str, Any]] = []
    for thing in things:
        relations = s.relations(thing)
        rows.append(
            {
                "id": thing.id,
                "name": thing.name,
                "kind": thing.kind,
                "visibility": thing.visibility.value,
                "share": thing.watcher_share.value,
                "owners": [
                    names.get(r.resident, r.resident) for r in relations if r.kind is RelationKind.OWNS
                ],
                "lent": any(r.kind is RelationKind.LENDS for r in relations),
                "custody": _custody_line(loans, thing, names, s.now),
                "retired": thing.retired,
            }
        )
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no things yet: hub thing add ID --name NAME")
        return 0
    table = [("ID", "NAME", "KIND", "VISIBILITY", "SHARE", "OWNERS", "LENT", "STATE")]
    table += [
        (
            row["id"],
            row["name"],
            row["kind"],
            row["visibility"],
            row["share"],
            ",".join(row["owners"]) or "-",
            "yes" if row["lent"] else "no",
            row["custody"],
        )
        for row in rows
    ]
    _table(table)
    return 0


def _policy_words(policy: LendPolicy, names: dict[str, str]) -> str:
    level = TIER_NAMES[policy.min_tier] if 0 <= policy.min_tier < len(TIER_NAMES) else str(policy.min_tier)
    who = {
        "any": "any resident",
        "tier": f"residents of trust tier {level} or above",
        "list": "only " + ", ".join(names.get(r, r) for r in policy.approved),
    }.get(policy.who, policy.who)
    words = [f"{policy.loan_days:g} days", who, "owner approves" if policy.needs_approval else "automatic"]
    if policy.buffer_hours:
        words.append(f"{policy.buffer_hours:g} h between loans")
    return ", ".join(words)


def cmd_thing_show(args: argparse.Namespace, s: Session) -> int:
    viewer = s.actor(args.actor) if args.actor else None
    thing = s.thing(args.id)
    relations = s.relations(thing)
    if viewer is not None and not may(viewer, Action.SEE, thing, relations, s.now):
        # the same answer as for a thing that does not exist: a private thing stays unknown
        raise CommandError(f"no thing with id {args.id!r} that {viewer.pseudonym} may see")
    names = s.names()
    print(f"thing:      {thing.id}")
    print(f"name:       {thing.name}")
    print(f"kind:       {thing.kind}")
    print(f"visibility: {thing.visibility.value}")
    print(f"watchers:   see {_SHARED[thing.watcher_share]}")
    # without --as, the console shows what neighbors see: exact coordinates stay in their owner's view
    shown = location_for(viewer, thing, relations, s.now) if viewer else coarse_location(thing.location)
    print(f"location:   {_where(shown)}")
    print(f"tags:       {', '.join(thing.tags) or 'none'}")
    if thing.retired:
        print("retired:    yes")
    for relation in relations:
        line = f"{relation.kind.value:<9} {names.get(relation.resident, relation.resident)}"
        if relation.valid_until is not None:
            line += f" until {_iso(relation.valid_until)}"
        if relation.policy is not None:
            line += f" ({_policy_words(relation.policy, names)})"
        print(f"relation:   {line}  [{relation.id}]")
    if viewer is not None:  # contacts of the people behind the thing, as far as a relation discloses them
        shown_for: set[str] = set()
        for relation in relations:
            if relation.kind in (RelationKind.OWNS, RelationKind.STEWARDS, RelationKind.LENDS) and (
                relation.resident not in shown_for
            ):
                shown_for.add(relation.resident)
                person = s.directory.resident(relation.resident)
                contacts = contact_for(viewer, person, thing, relations, s.now) if person else ()
                if contacts and person is not None and person.id != viewer.id:
                    listed = ", ".join(f"{c.kind}: {c.value}" for c in contacts)
                    print(f"contact:    {person.pseudonym}: {listed}")
    if viewer is None or may(viewer, Action.SEE_CUSTODY, thing, relations, s.now):
        loans = s.directory.loans(thing=thing.id, states=OPEN_LOANS)
        print(f"custody:    {_custody_line(loans, thing, names, s.now)}")
        for loan in loans:
            if loan.state in (LoanState.REQUESTED, LoanState.RESERVED):
                print(
                    f"booked:     {names.get(loan.borrower, loan.borrower)} {loan.state.value} "
                    f"{_iso(loan.start)} to {_iso(loan.due)}"
                )
    return 0


def cmd_thing_retire(args: argparse.Namespace, s: Session) -> int:
    thing = s.thing(args.id)
    actor = s.actor(args.actor) if args.actor else None
    if actor is not None:
        s.require(actor, Action.MANAGE, thing, "retire")
    if thing.retired:
        raise CommandError(f"{thing.id} is already retired")
    s.directory.retire_thing(thing.id, actor=actor.id if actor else None, now=s.now)
    print(f"retired {thing.id}: nobody can borrow, reserve or watch it; its history stays")
    return 0


def _policy(args: argparse.Namespace, s: Session) -> LendPolicy:
    who = args.who or ("list" if args.approved else "tier" if args.min_tier is not None else "any")
    if who == "tier" and args.min_tier is None:
        raise CommandError("--who tier needs --min-tier (0 newcomer .. 3 pillar)")
    if who == "list" and not args.approved:
        raise CommandError("--who list needs --approved P1,P2")
    if who != "tier" and args.min_tier is not None:
        raise CommandError("--min-tier goes with --who tier")
    if who != "list" and args.approved:
        raise CommandError("--approved goes with --who list")
    approved = tuple(s.actor(name.strip()).id for name in (args.approved or "").split(",") if name.strip())
    days = _positive(args.days, "--days")
    buffer = _positive(args.buffer_hours, "--buffer-hours", zero_ok=True)
    defaults = LendPolicy()
    return LendPolicy(
        loan_days=days if days is not None else defaults.loan_days,
        who=who,
        min_tier=_tier(args.min_tier) if args.min_tier is not None else 0,
        approved=approved,
        needs_approval=args.approval,
        buffer_hours=buffer if buffer is not None else defaults.buffer_hours,
    )


def cmd_thing_lend(args: argparse.Namespace, s: Session) -> int:
    lender = s.actor(args.actor)
    thing = s.thing(args.id)
    s.require(lender, Action.MANAGE, thing, "lend")
    if thing.retired:
        raise CommandError(f"{thing.id} is retired: it cannot be lent")
    policy = _policy(args, s)
    earlier = [r for r in s.relations(thing) if r.kind is RelationKind.LENDS and r.resident == lender.id]
    for relation in earlier:  # lending again replaces the policy
        s.directory.revoke(relation.id, actor=lender.id, now=s.now)
    lends = s.directory.grant(
        Relation("", lender.id, thing.id, RelationKind.LENDS, policy=policy), actor=lender.id, now=s.now
    )
    verb = "now lends" if not earlier else "changed the lending policy of"
    print(f"{lender.pseudonym} {verb} {thing.id}: {_policy_words(policy, s.names())} [{lends.id}]")
    return 0


def cmd_thing_unlend(args: argparse.Namespace, s: Session) -> int:
    lender = s.actor(args.actor)
    thing = s.thing(args.id)
    s.require(lender, Action.MANAGE, thing, "stop lending")
    offers = [r for r in s.relations(thing) if r.kind is RelationKind.LENDS]
    if not offers:
        raise CommandError(f"{thing.id} is not offered for lending")
    for relation in offers:
        s.directory.revoke(relation.id, actor=lender.id, now=s.now)
    print(f"{thing.id} is no longer offered for lending")
    booked = s.directory.loans(thing=thing.id, states=(LoanState.REQUESTED, LoanState.RESERVED))
    if booked:
        waiting = _plural(len(booked), "reservation")
        print(f"{waiting} can no longer be collected; a loan that is out still comes back as usual")
    return 0


# -- relations ------------------------------------------------------------------------------------------


def cmd_relation_grant(args: argparse.Namespace, s: Session) -> int:
    kind = RelationKind(args.kind)
    if kind is RelationKind.LENDS:
        raise CommandError("a lends relation carries a lending policy: use hub thing lend THING --as OWNER")
    if kind is RelationKind.BORROWS:
        raise CommandError(
            "borrows relations come only from loans: reserve the thing, or tap a card and its tag at a reader"
        )
    granter = s.actor(args.actor)
    resident = s.actor(args.pseudonym)
    thing = s.thing(args.thing)
    until = _until(args.until, s.now) if args.until else None
    if kind is RelationKind.WATCHES and granter.id == resident.id:
        s.require(granter, Action.WATCH, thing, "watch")  # watching oneself needs no keeper
    else:
        s.require(granter, Action.MANAGE, thing, f"grant {kind.value} on")
    relation = s.directory.grant(
        Relation("", resident.id, thing.id, kind, valid_until=until), actor=granter.id, now=s.now
    )
    limit = f" until {_iso(until)}" if until is not None else ""
    print(f"granted: {resident.pseudonym} {kind.value} {thing.id}{limit} [{relation.id}]")
    return 0


def cmd_relation_revoke(args: argparse.Namespace, s: Session) -> int:
    actor = s.actor(args.actor)
    relation = s.directory.relation(args.relation_id)
    if relation is None:
        raise CommandError(f"no relation with id {args.relation_id!r} (hub relation list shows them)")
    if relation.kind is RelationKind.BORROWS:
        raise CommandError("a borrows relation ends when its loan does: return the thing")
    thing = s.thing(relation.thing)
    if relation.resident != actor.id:  # anyone may give up their own relation
        s.require(actor, Action.MANAGE, thing, f"revoke a {relation.kind.value} relation on")
    s.directory.revoke(relation.id, actor=actor.id, now=s.now)
    names = s.names()
    print(f"revoked: {names.get(relation.resident, relation.resident)} {relation.kind.value} {thing.id}")
    return 0


def cmd_relation_list(args: argparse.Namespace, s: Session) -> int:
    if args.thing:
        relations = s.directory.relations_of_thing(
            s.thing(args.thing).id, include_inactive=args.all, now=s.now
        )
    elif args.resident:
        relations = s.directory.relations_of_resident(
            s.resident(args.resident).id, include_inactive=args.all, now=s.now
        )
    else:
        relations = [
            r
            for t in s.directory.things()
            for r in s.directory.relations_of_thing(t.id, include_inactive=args.all, now=s.now)
        ]
    names = s.names()
    rows: list[dict[str, Any]] = [
        {
            "id": r.id,
            "resident": names.get(r.resident, r.resident),
            "kind": r.kind.value,
            "thing": r.thing,
            "since": _iso(r.valid_from),
            "until": _iso(r.valid_until) or None,
            "revoked": _iso(r.revoked_at) or None,
            "granted_by": names.get(r.granted_by, r.granted_by) if r.granted_by else None,
            "active": r.active(s.now),
        }
        for r in relations
    ]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no relations")
        return 0
    table: list[tuple[str, ...]] = [("ID", "RESIDENT", "KIND", "THING", "SINCE", "UNTIL", "GRANTED BY")]
    for row in rows:
        ended = f"revoked {row['revoked']}" if row["revoked"] else None
        table.append(
            (
                row["id"],
                row["resident"],
                row["kind"],
                row["thing"],
                row["since"],
                ended or row["until"] or "-",
                row["granted_by"] or NO_ACTOR,
            )
        )
    _table(table)
    return 0


# -- audit ----------------------------------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace, s: Session) -> int:
    if args.limit < 1:
        raise CommandError(f"--limit {args.limit}: give a positive number")
    if args.thing:
        entries = s.directory.audit(thing=s.thing(args.thing).id, limit=args.limit)
    elif args.resident:
        entries = s.directory.audit_for_resident(s.resident(args.resident).id, limit=args.limit)
    else:
        entries = s.directory.audit(limit=args.limit)
    names = s.names()
    rows = [_audit_row(entry, names) for entry in entries]
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        detail = " ".join(f"{k}={v}" for k, v in row["detail"].items())
        about = f" about={row['about']}" if row["about"] else ""
        line = f"{row['time']}  {row['actor']}  {row['action']}  {row['thing'] or '-'}{about}  {detail}"
        print(line.rstrip())
    return 0


def _audit_row(entry: AuditEntry, names: dict[str, str]) -> dict[str, Any]:
    # ids of residents in details read as their (current, possibly anonymised) pseudonyms
    return {
        "time": _iso(entry.time),
        "actor": names.get(entry.actor, entry.actor) if entry.actor else NO_ACTOR,
        "action": entry.action,
        "thing": entry.thing,
        "about": names.get(entry.subject, entry.subject) if entry.subject else None,
        "detail": {k: _detail_value(k, v, names) for k, v in sorted(entry.detail.items())},
    }


def _detail_value(key: str, value: str, names: dict[str, str]) -> str:
    if key in _TIME_DETAILS and value:
        try:
            return _iso(float(value))
        except ValueError:
            return value
    return names.get(value, value)


# -- the parser -----------------------------------------------------------------------------------------


def _config_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config", required=True, metavar="FILE", help="the hub's YAML config: storage.path or storage.url"
    )
    return parent


def _command(
    group: Any, name: str, handler: Handler, help_: str, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = group.add_parser(name, help=help_, description=help_, parents=[parent])
    p.set_defaults(func=functools.partial(_run, handler))
    return p


def _as(p: argparse.ArgumentParser, *, required: bool, help_: str) -> None:
    p.add_argument("--as", dest="actor", metavar="PSEUDONYM", required=required, help=help_)


def _thing_options(p: argparse.ArgumentParser, *, adding: bool) -> None:
    p.add_argument("--name", required=adding, help="what neighbors call it")
    p.add_argument("--kind", choices=["tool", "sensor", "device", "reader"], help="default sensor")
    owner = "its owner (default: the --as resident)" if adding else "transfer it to this owner"
    p.add_argument("--owner", metavar="PSEUDONYM", help=owner)
    p.add_argument(
        "--visibility",
        choices=[v.value for v in Visibility],
        help="who knows it exists (default neighbors)",
    )
    p.add_argument(
        "--share",
        choices=[v.value for v in Share],
        help="what watchers see of its readings: full, a derived yes/no state, or none (default derived)",
    )
    p.add_argument("--place", metavar="TEXT", help="a named place, shown instead of coordinates")
    p.add_argument("--lat", type=float, help="latitude; others see only a ~100 m cell")
    p.add_argument("--lon", type=float, help="longitude")
    p.add_argument(
        "--tag", action="extend", nargs="+", metavar="TAG", help="RFID/NFC/QR ids to attach (hex UIDs)"
    )


def add_people_commands(sub: Any) -> None:
    """Add admin, resident, thing, relation, audit, loan and waitlist to the ``hub`` subcommands ``sub``."""
    cfg = _config_parent()

    group = sub.add_parser("admin", help="the first admin").add_subparsers(
        dest="admin_command", metavar="COMMAND", required=True
    )
    p = _command(group, "create", cmd_admin_create, "create the first admin (only while there is none)", cfg)
    p.add_argument("pseudonym", metavar="PSEUDONYM")

    group = sub.add_parser(
        "resident", help="residents: invite, join, password, list, show, role, erase, card, vouch"
    )
    group = group.add_subparsers(dest="resident_command", metavar="COMMAND", required=True)
    p = _command(group, "invite", cmd_resident_invite, "make a single-use invite code (printed alone)", cfg)
    _as(p, required=True, help_="who invites")
    p.add_argument("--role", choices=[r.value for r in Role], default=Role.RESIDENT.value)
    p.add_argument("--ttl-days", type=float, metavar="N", help="days the code stays valid (default 7)")
    p = _command(group, "join", cmd_resident_join, "join the neighborhood with an invite code", cfg)
    p.add_argument("code", metavar="CODE")
    p.add_argument("pseudonym", metavar="PSEUDONYM")
    p.add_argument("--name", metavar="REAL_NAME", help="optional; disclosed only as a relation allows")
    p.add_argument(
        "--contact", action="extend", nargs="+", metavar="KIND:VALUE", help="e.g. email:me@example.org"
    )
    p = _command(
        group,
        "password",
        cmd_resident_password,
        "set a resident's web password (asked on a terminal, else the first line of stdin)",
        cfg,
    )
    p.add_argument("pseudonym", metavar="PSEUDONYM")
    p = _command(group, "list", cmd_resident_list, "pseudonyms, roles and join dates (never contacts)", cfg)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = _command(group, "show", cmd_resident_show, "one resident, with trust and relations", cfg)
    p.add_argument("pseudonym", metavar="PSEUDONYM")
    _as(p, required=False, help_="who looks; a resident sees their own name and contact values")
    p = _command(group, "role", cmd_resident_role, "change a resident's role", cfg)
    p.add_argument("pseudonym", metavar="PSEUDONYM")
    p.add_argument("role", choices=[r.value for r in Role])
    _as(p, required=True, help_="the admin who changes it")
    p = _command(group, "erase", cmd_resident_erase, "remove personal data, keep anonymised history", cfg)
    p.add_argument("pseudonym", metavar="PSEUDONYM")
    p.add_argument("--yes", action="store_true", help="do not ask (needed when not on a terminal)")
    _as(p, required=False, help_="who erases: the resident themself or an admin")
    p = _command(group, "card", cmd_resident_card, "link an RFID card to a resident", cfg)
    p.add_argument("pseudonym", metavar="PSEUDONYM")
    p.add_argument("tag", metavar="TAG")
    p.add_argument("--remove", action="store_true", help="unlink the card instead")
    _as(p, required=False, help_="who links it")
    p = _command(group, "vouch", cmd_resident_vouch, "vouch for a neighbor (counts toward trust)", cfg)
    p.add_argument("pseudonym", metavar="PSEUDONYM")
    _as(p, required=True, help_="who vouches")

    group = sub.add_parser("thing", help="things: add, edit, list, show, retire, lend, unlend")
    group = group.add_subparsers(dest="thing_command", metavar="COMMAND", required=True)
    p = _command(group, "add", cmd_thing_add, "register a thing", cfg)
    p.add_argument("id", metavar="ID")
    _thing_options(p, adding=True)
    _as(p, required=False, help_="who registers it")
    p = _command(group, "edit", cmd_thing_edit, "change a thing; --owner transfers it", cfg)
    p.add_argument("id", metavar="ID")
    _thing_options(p, adding=False)
    p.add_argument("--untag", action="extend", nargs="+", metavar="TAG", help="tags to detach")
    _as(p, required=False, help_="who edits (must be allowed to manage it)")
    p = _command(group, "list", cmd_thing_list, "every thing, with owners and custody", cfg)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _as(p, required=False, help_="list only what this resident may see")
    p = _command(group, "show", cmd_thing_show, "one thing: relations, tags, custody", cfg)
    p.add_argument("id", metavar="ID")
    _as(p, required=False, help_="show it as this resident may see it")
    p = _command(group, "retire", cmd_thing_retire, "retire a thing; its history stays", cfg)
    p.add_argument("id", metavar="ID")
    _as(p, required=False, help_="who retires it (must be allowed to manage it)")
    p = _command(group, "lend", cmd_thing_lend, "offer a thing for lending, with a policy", cfg)
    p.add_argument("id", metavar="ID")
    _as(p, required=True, help_="the lender (must be allowed to manage it)")
    p.add_argument("--days", type=float, metavar="N", help="loan length (default 7)")
    p.add_argument("--who", choices=["any", "tier", "list"], help="who may borrow (default any)")
    p.add_argument(
        "--min-tier", metavar="N", help="with --who tier: 0 newcomer, 1 known, 2 trusted, 3 pillar"
    )
    p.add_argument("--approved", metavar="P1,P2", help="with --who list: pseudonyms who may borrow")
    p.add_argument("--approval", action="store_true", help="the owner approves each loan")
    p.add_argument("--buffer-hours", type=float, metavar="H", help="free time between loans (default 0)")
    p = _command(group, "unlend", cmd_thing_unlend, "stop offering a thing for lending", cfg)
    p.add_argument("id", metavar="ID")
    _as(p, required=True, help_="who stops it (must be allowed to manage it)")

    group = sub.add_parser("relation", help="relations: grant, revoke, list")
    group = group.add_subparsers(dest="relation_command", metavar="COMMAND", required=True)
    p = _command(group, "grant", cmd_relation_grant, "grant owns, stewards or watches", cfg)
    p.add_argument("pseudonym", metavar="PSEUDONYM")
    p.add_argument(
        "kind", choices=[k.value for k in RelationKind], metavar="KIND", help="owns, stewards, watches"
    )
    p.add_argument("thing", metavar="THING")
    _as(p, required=True, help_="who grants it")
    p.add_argument("--until", metavar="ISO", help="when it ends, e.g. 2026-07-01T18:00Z (UTC if no offset)")
    p = _command(group, "revoke", cmd_relation_revoke, "end a relation now", cfg)
    p.add_argument("relation_id", metavar="RELATION_ID")
    _as(p, required=True, help_="who revokes it (its holder, or someone who may manage the thing)")
    p = _command(group, "list", cmd_relation_list, "relations, by thing or by resident", cfg)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--thing", metavar="ID")
    which.add_argument("--resident", metavar="PSEUDONYM")
    p.add_argument("--all", action="store_true", help="also relations that ended")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser(
        "audit", help="the audit log: who saw or changed what", description="the audit log", parents=[cfg]
    )
    p.set_defaults(func=functools.partial(_run, cmd_audit))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--thing", metavar="ID", help="entries about this thing")
    which.add_argument(
        "--resident",
        metavar="PSEUDONYM",
        help="what this resident may read: about them, by them, their things",
    )
    p.add_argument("--limit", type=int, default=100, metavar="N", help="the newest N entries (default 100)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    # imported here: hub.loans_cli builds on this module's session and formatting
    from hub.loans_cli import add_loan_commands

    add_loan_commands(sub, cfg)
