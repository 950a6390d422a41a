"""Web pages under load of data: kiosk and thing pages, p95 under 100 ms (issue #6, item 6).

Seeds a store directly (no MQTT, for speed): 100 residents, 1,000 things of mixed kind and visibility
(public, neighbors, private) with owners, lends offers, watchers, stewards and a few loans out, a week
of readings in the embedded time-series store (one reading per thing every 10 minutes, 2–4 measurements
each: about 1M points, 3M values) and the latest values in the relational store. Then runs `hub run`
as a subprocess (embedded broker, embedded store, web on a free loopback port) so the client below does
not share the hub's interpreter, signs a resident in through POST /login, and times sequential requests
on one keep-alive connection (20 warm-up, then ``--requests`` each):

    kiosk /                     anonymous
    kiosk /api/v1/things        anonymous
    /                           signed in
    /api/v1/things              signed in
    /things/<id>                signed in, rotating over every thing the resident may see
    /api/v1/things/<id>         signed in, the same rotation

The app sets no Server-Timing header, so each time is the client's wall time on loopback: the server
time plus a loopback round trip, an upper bound. Prints p50/p95/p99/max per page, the data set, and the
embedded store's history query (24 h and 7 days of one measurement, as a chart needs it). Exits 1 when
any page's p95 is 100 ms or more.

    .venv/bin/python bench/web_pages.py
    .venv/bin/python bench/web_pages.py --data web-bench-data   # keep the data set, reuse it next run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from hub.domain.livestate import ThingState
from hub.domain.model import (
    LendPolicy,
    Relation,
    RelationKind,
    Role,
    Share,
    Thing,
    Visibility,
    WatchSettings,
)
from hub.loans import LendingDesk
from hub.storage.accounts import Accounts
from hub.storage.directory import Directory
from hub.storage.embedded import EmbeddedSink
from hub.storage.sink import Point
from hub.storage.store import Store
from hub.telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[1]
SEEDED = "bench-seed.json"
BUDGET_MS = 100.0
WARM_UP = 20
STEP_S = 600  # one reading per thing every 10 minutes
WEEK_S = 7 * 86_400
BATCH = 50_000
PASSWORD = secrets.token_urlsafe(12)  # a fresh one each run, set before the hub starts
VIEWER = "resident-001"

#: kind → measurements of one reading (2–4), with a value generator each
SENSORS: dict[str, tuple[str, ...]] = {
    "climate": ("temperature", "humidity", "pressure", "battery"),
    "air": ("pm25", "pm10", "co2"),
    "flood": ("water_leak", "battery"),
    "noise": ("noise", "battery"),
    "plug": ("power", "energy", "state"),
}


def value(name: str, i: int, t: int) -> float | bool:
    day = math.sin(2 * math.pi * (t % 86_400) / 86_400)
    match name:
        case "temperature":
            return round(18 + 6 * day + (i % 7) * 0.3, 2)
        case "humidity":
            return round(55 - 15 * day + i % 5, 1)
        case "pressure":
            return round(1013 + 5 * math.sin(t / 200_000 + i), 1)
        case "battery":
            return float(100 - (t // 36_000 + i) % 60)
        case "pm25" | "pm10":
            return round(8 + 6 * abs(day) + i % 4, 1)
        case "co2":
            return float(420 + 200 * abs(day) + i % 50)
        case "noise":
            return round(38 + 15 * abs(day), 1)
        case "power":
            return round(max(0.0, 400 * day), 1)
        case "energy":
            return round((t - i) / 36_000, 3)
        case "water_leak":
            return (t // STEP_S + i) % 997 == 0
        case "state":
            return day > 0
    raise ValueError(name)


def profile(i: int) -> tuple[str, str, Visibility, Share]:
    """Thing i's kind, measurement set, visibility and watcher share (a fixed, mixed pattern)."""
    kind, sensor = ("tool", "plug") if i % 10 == 0 else ("device", "plug") if i % 10 == 5 else ("sensor", "")
    if not sensor:
        sensor = ("climate", "air", "flood", "noise")[i % 4]
    visibility = (Visibility.PUBLIC, Visibility.PUBLIC, Visibility.NEIGHBORS, Visibility.NEIGHBORS)[i % 4]
    if i % 5 == 3 and kind != "tool":  # about one in five is private
        visibility = Visibility.PRIVATE
    share = (Share.FULL, Share.FULL, Share.DERIVED, Share.NONE)[i % 4]
    return kind, sensor, visibility, share


def seed(data: Path, residents: int, things: int, now: float) -> dict[str, float]:
    """The neighborhood and a week of readings ending at ``now``; returns the data set's size."""
    started = time.perf_counter()
    store = Store.open(data)
    store.migrate()
    directory = Directory(store)
    admin = directory.bootstrap_admin("resident-000", now=now - WEEK_S)
    people = [admin.id]
    for r in range(1, residents):
        role = Role.STEWARD if r % 25 == 0 else Role.RESIDENT
        people.append(
            directory.add_resident(f"resident-{r:03d}", role=role, actor=admin.id, now=now - WEEK_S).id
        )
    rng = random.Random(6)
    relations = 0
    tools: list[str] = []
    for i in range(things):
        kind, sensor, visibility, share = profile(i)
        owner = people[i % residents]
        thing = Thing(
            id=f"thing-{i:04d}",
            name=f"{sensor.title()} {kind} {i}",
            kind=kind,
            visibility=visibility,
            watcher_share=share,
            derived_from=("water_leak",) if sensor == "flood" else (),
        )
        directory.create_thing(thing, owner=owner, actor=owner, now=now - WEEK_S)
        relations += 1
        if kind == "tool":
            offer = Relation("", owner, thing.id, RelationKind.LENDS, policy=LendPolicy(loan_days=7))
            directory.grant(offer, actor=owner, now=now - WEEK_S)
            tools.append(thing.id)
            relations += 1
        if i % 20 == 7:
            steward = people[(i + 3) % residents]
            directory.grant(Relation("", steward, thing.id, RelationKind.STEWARDS), actor=owner, now=now)
            relations += 1
        for watcher in rng.sample(people, 2 if i % 3 == 0 else 0):
            if watcher == owner:
                continue
            watch = Relation("", watcher, thing.id, RelationKind.WATCHES, watch=WatchSettings())
            directory.grant(watch, actor=owner, now=now)
            relations += 1
    # loans out: the viewer holds one, others hold some; check_out asks the permission function
    desk = LendingDesk(directory, lambda *_: None, Telemetry(), clock=lambda: now - 86_400)
    viewer = directory.resident_by_pseudonym(VIEWER)
    assert viewer is not None
    loans = 0
    for n, tool in enumerate(tools[1:21]):
        borrower = viewer.id if n == 0 else people[(n * 7 + 2) % residents]
        if directory.relations_of_thing(tool, now=now, kinds=[RelationKind.OWNS])[0].resident == borrower:
            continue
        desk.check_out(tool, borrower, actor=borrower)
        loans += 1
    seeded_people = time.perf_counter() - started

    sink = EmbeddedSink(data)
    start_s = int(now) - WEEK_S
    batch: list[Point] = []
    points = values = 0
    latest: dict[str, ThingState] = {}
    for i in range(things):
        _, sensor, _, _ = profile(i)
        names = SENSORS[sensor]
        thing_id = f"thing-{i:04d}"
        offset = i * STEP_S // things  # things report at different moments within the 10 minutes
        for t in range(start_s + offset, int(now), STEP_S):
            reading = {name: value(name, i, t) for name in names}
            batch.append(Point(thing_id, "native", reading, t * 1_000_000_000))
            values += len(reading)
            if len(batch) >= BATCH:
                sink.write_points(batch)
                points += len(batch)
                batch.clear()
        last = float(t)
        latest[thing_id] = ThingState(
            thing_id, "native", float(start_s + offset), last, True, reading, dict.fromkeys(reading, last)
        )
    sink.write_points(batch)
    points += len(batch)
    sink.close()
    store.apply(list(latest.values()), [])
    store.close()
    size = {
        "now": now,
        "residents": residents,
        "things": things,
        "relations": relations,
        "loans_out": loans,
        "points": points,
        "values": values,
        "timeseries_mb": round((data / "timeseries.sqlite").stat().st_size / 1e6),
        "seed_people_s": round(seeded_people, 1),
        "seed_total_s": round(time.perf_counter() - started, 1),
    }
    (data / SEEDED).write_text(json.dumps(size))
    return size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_hub(work: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = work / "hub.yaml"
    config.write_text(
        "mqtt:\n  url: embedded\n  client_id: hub-web-bench\n"
        f"timeseries:\n  kind: embedded\nstorage:\n  path: {data}\n"
        f"web:\n  listen: 127.0.0.1:{port}\nlog:\n  level: warning\n"
    )
    hub = subprocess.Popen([sys.executable, "-m", "hub.cli", "run", "--config", str(config)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise SystemExit(f"hub run exited with {hub.returncode} before its web server answered")
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return hub, url
        except httpx.TransportError:
            time.sleep(0.2)
    hub.terminate()
    raise SystemExit(f"the hub's web server on {url} did not answer within 60 s")


def sign_in(client: httpx.Client, pseudonym: str, password: str) -> None:
    """Through the login form, with its double-submit CSRF cookie, as a browser does."""
    page = client.get("/login")
    page.raise_for_status()
    token = client.cookies.get("hub_form")
    assert token, "GET /login set no form cookie"
    form = {"pseudonym": pseudonym, "password": password, "csrf_token": token, "next": "/me"}
    done = client.post("/login", data=form)
    if done.status_code != 303 or "hub_session" not in client.cookies:
        raise SystemExit(f"sign-in as {pseudonym} failed: {done.status_code} {done.text[:200]}")


def measure(client: httpx.Client, paths: Callable[[int], str], n: int) -> tuple[list[float], int]:
    """Milliseconds per request, after WARM_UP unrecorded ones, and the mean body size in bytes; every
    answer must be 200."""
    times = []
    size = 0
    for k in range(WARM_UP + n):
        path = paths(k)
        t0 = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: {response.text[:200]}")
        if k >= WARM_UP:
            times.append(elapsed)
            size += len(response.content)
    return times, size // n


def summary(times: list[float]) -> tuple[float, float, float, float]:
    q = statistics.quantiles(times, n=100, method="inclusive")
    return q[49], q[94], q[98], max(times)


def history_times(data: Path, things: int, now: float, n: int, span_s: int) -> list[float]:
    sink = EmbeddedSink(data)
    rng = random.Random(24)
    times = []
    try:
        for k in range(WARM_UP + n):
            i = rng.randrange(things)
            measurement = SENSORS[profile(i)[1]][0]
            t0 = time.perf_counter()
            got = sink.history(f"thing-{i:04d}", measurement, since_ns=int((now - span_s) * 1e9))
            elapsed = (time.perf_counter() - t0) * 1000
            assert got, f"no history for thing-{i:04d} {measurement}"
            if k >= WARM_UP:
                times.append(elapsed)
    finally:
        sink.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300, help="timed requests per page")
    parser.add_argument("--things", type=int, default=1000)
    parser.add_argument("--residents", type=int, default=100)
    parser.add_argument("--data", type=Path, help="keep the data set here; reused when already seeded")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hub-web-bench-"))
    data = args.data.resolve() if args.data else work / "data"
    marker = data / SEEDED
    if marker.exists():
        size = json.loads(marker.read_text())
        print(f"reusing the data set in {data} (seeded {time.time() - size['now']:.0f} s ago)")
    else:
        if data.exists() and any(data.iterdir()):
            raise SystemExit(f"{data} holds something else: give an empty or missing directory")
        print(f"seeding {args.residents} residents, {args.things} things and a week of readings …")
        size = seed(data, args.residents, args.things, time.time())
    now = float(size["now"])  # the week of readings ends here
    print(
        "data set: {residents} residents, {things} things, {relations} relations, {loans_out} loans out, "
        "{points:,} points ({values:,} values, {timeseries_mb} MB embedded store, "
        "seeded in {seed_total_s} s)".format(**size)
    )

    store = Store.open(data)
    viewer = Directory(store).resident_by_pseudonym(VIEWER)
    assert viewer is not None
    Accounts(store).set_password(viewer.id, PASSWORD, now=time.time())
    store.close()

    hub, url = start_hub(work, data)
    results: dict[str, tuple[list[float], int]] = {}
    try:
        with httpx.Client(base_url=url, timeout=30) as kiosk, httpx.Client(base_url=url, timeout=30) as me:
            sign_in(me, VIEWER, PASSWORD)
            visible = [t["id"] for t in me.get("/api/v1/things").json()["things"]]
            public = len(kiosk.get("/api/v1/things").json()["things"])
            print(f"{VIEWER} may see {len(visible)} things, the kiosk {public}")
            n = args.requests
            results["kiosk /"] = measure(kiosk, lambda _: "/", n)
            results["kiosk /api/v1/things"] = measure(kiosk, lambda _: "/api/v1/things", n)
            results["resident /"] = measure(me, lambda _: "/", n)
            results["resident /api/v1/things"] = measure(me, lambda _: "/api/v1/things", n)
            results["resident /things/<id>"] = measure(
                me, lambda k: f"/things/{visible[k % len(visible)]}", n
            )
            results["resident /api/v1/things/<id>"] = measure(
                me, lambda k: f"/api/v1/things/{visible[k % len(visible)]}", n
            )
            day = history_times(data, size["things"], now, n, 86_400)
            week = history_times(data, size["things"], now, n, WEEK_S)
    finally:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(30)
        except subprocess.TimeoutExpired:
            hub.kill()
        shutil.rmtree(work, ignore_errors=True)  # the config; a kept data set lives outside it

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average {load} on {os.cpu_count()} CPUs (the client runs on the same machine)")
    print(
        f"{'page':32} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'kB':>6}  (ms: client wall time, loopback)"
    )
    failed = []
    for page, (times, size) in results.items():
        p50, p95, p99, top = summary(times)
        mark = "" if p95 < BUDGET_MS else f"   ✗ p95 ≥ {BUDGET_MS:.0f} ms"
        print(f"{page:32} {p50:8.1f} {p95:8.1f} {p99:8.1f} {top:8.1f} {size / 1000:6.0f}{mark}")
        if mark:
            failed.append(page)
    for label, times in (("history 24 h (144 points)", day), ("history 7 days (bucketed)", week)):
        p50, p95, p99, top = summary(times)
        print(f"{label:32} {p50:8.1f} {p95:8.1f} {p99:8.1f} {top:8.1f} {'':6}   (in-process query)")
    if failed:
        print(f"\nover budget: {', '.join(failed)}")
        return 1
    print(f"\nevery page's p95 is under {BUDGET_MS:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
