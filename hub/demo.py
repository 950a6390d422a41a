"""``hub demo``: the whole hub on one machine with no set-up.

An embedded broker on a free port, the embedded store under ./hub-demo/, simulated devices, and the
dashboard on 127.0.0.1:8080 (or the next free port). Ctrl-C stops everything.
"""

from __future__ import annotations

import secrets
import signal
import sys
import threading
import time
from pathlib import Path

from hub.app import Hub, settle_memory
from hub.config import HubConfig
from hub.domain.model import LendPolicy, Relation, RelationKind, Role, Share, Thing, Visibility
from hub.simulator import CARDS, TOOLS, Simulator
from hub.storage.accounts import Accounts
from hub.storage.directory import Directory

#: the demo neighborhood: (thing id, name, kind, owner, what the kiosk may see of its readings)
DEMO_THINGS = [
    ("air-quality-courtyard", "Air quality, courtyard", "sensor", "ada", Share.FULL),
    ("noise-playground", "Noise, playground", "sensor", "ada", Share.FULL),
    ("flood-basement", "Flood sensor, basement", "sensor", "ada", Share.DERIVED),  # leak yes/no only
    ("washing-machine-basement", "Washing machine, basement", "device", "ada", Share.FULL),
    ("drill-makita", "Cordless drill", "tool", "bruno", Share.FULL),
    ("cargo-bike", "Cargo bike", "tool", "chen", Share.FULL),
    ("hedge-trimmer", "Hedge trimmer", "tool", "chen", Share.FULL),
    ("workshop-reader", "Tag reader, workshop", "reader", "ada", Share.FULL),
]


def seed_neighborhood(directory: Directory, now: float) -> None:
    """Residents, things, tags and lending offers for the demo (once: a second run keeps its data)."""
    if directory.residents():
        return
    ada = directory.bootstrap_admin("ada", now=now)
    people = {"ada": ada}
    for name, role in (("bruno", Role.RESIDENT), ("chen", Role.STEWARD), ("dee", Role.RESIDENT)):
        people[name] = directory.add_resident(name, role=role, actor=ada.id, now=now)
    for card, name in zip(CARDS, ("dee", "bruno"), strict=True):
        directory.add_card(people[name].id, card, actor=people[name].id, now=now)
    for thing_id, name, kind, owner, share in DEMO_THINGS:
        derived = ("water_leak",) if share is Share.DERIVED else ()
        thing = Thing(
            id=thing_id,
            name=name,
            kind=kind,
            visibility=Visibility.PUBLIC,
            watcher_share=share,
            derived_from=derived,
        )
        directory.create_thing(thing, owner=people[owner].id, actor=people[owner].id, now=now)
        if thing_id in TOOLS:
            directory.attach_tag(thing_id, TOOLS[thing_id], actor=people[owner].id, now=now)
            lends = Relation(
                id="",
                resident=people[owner].id,
                thing=thing_id,
                kind=RelationKind.LENDS,
                policy=LendPolicy(loan_days=3),
            )
            directory.grant(lends, actor=people[owner].id, now=now)


#: the resident whose sign-in the demo prints
DEMO_LOGIN = "dee"


def set_demo_password(hub: Hub, now: float) -> str:
    """A fresh password for the demo resident at every start: never a default one (DESIGN §7)."""
    resident = hub.directory.resident_by_pseudonym(DEMO_LOGIN)
    if resident is None:
        raise RuntimeError(f"the demo data in {hub.config.storage.path} has no resident {DEMO_LOGIN}")
    password = secrets.token_urlsafe(9)
    Accounts(hub.store).set_password(resident.id, password, now=now)
    return password


def demo_config(directory: Path, port: int = 8080) -> HubConfig:
    return HubConfig.model_validate(
        {
            "mqtt": {"url": "embedded", "client_id": "hub-demo"},
            "timeseries": {"kind": "embedded", "retention_days": 2},
            "storage": {"path": str(directory)},
            "web": {"listen": f"127.0.0.1:{port}"},
        }
    )


def run_demo(directory: Path, port: int = 8080) -> int:
    hub = Hub(demo_config(directory, port), env={}, web_try_next_ports=20)
    hub.store.migrate()
    seed_neighborhood(hub.directory, time.time())
    password = set_demo_password(hub, time.time())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    hub.start()
    settle_memory()
    assert hub.broker is not None and hub.mqtt is not None
    simulator = Simulator(hub.broker.host, hub.broker.port, hub.config.mqtt.base_topic)
    try:
        hub.mqtt.wait_connected(10)
        simulator.start()
        print(f"Neighborhood Hub demo: {hub.web_url}", flush=True)
        print(f"  demo login: {DEMO_LOGIN} / {password}  (sign in at {hub.web_url}/login)", flush=True)
        print(f"  MQTT broker {hub.broker.url}, data in {directory}/ — Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping…", file=sys.stderr, flush=True)
    finally:
        simulator.stop()
        hub.stop()
    return 0
