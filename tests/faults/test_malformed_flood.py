"""Malformed input at volume: hundreds of bad payloads on the topics of every ecosystem, through the real
Mosquitto to a real `hub run`; after each one a good native reading must be stored within a second.

The bad payloads are the shared fixtures the decoders reject plus variants made from every fixture:
truncations, bit flips, wrong types, huge numbers, deep nesting, NUL bytes, invalid UTF-8, oversize. Each
is kept only if the hub's own router (built from the same config, fed the same messages in the same
order) rejects it, and that offline run also gives the rejections the hub must count on /metrics by
source and reason.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from faultkit import HubProcess, Mosquitto, Publisher, hub_config, wait_for, write_config
from prometheus_client.parser import text_string_to_metric_families

from hub.app import build_router, valid_filter
from hub.config import HubConfig
from hub.domain.events import Discovery, Rejected

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
from fixturecases import FIXTURES, Case, cases  # tests/ingest's loaders of the shared fixtures

pytestmark = pytest.mark.integration

MAX_PAYLOAD = (
    65536  # the config's ingest.max_payload_bytes here: an oversize variant stays under the broker's
)
PROBE = "probe"
VARIANTS = 240  # sent; a variant the decoder happens to accept in sending order is skipped
T0 = 1_790_000_000.0


def fixture_cases() -> list[Case]:
    found = [c for path in sorted(FIXTURES.glob("*.json")) for c in cases(path.name)]
    return [c for c in found if isinstance(c.topic, str) and c.topic and valid_filter(c.topic)]


def _wrong_types(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        return {k: _wrong_types(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrong_types(v, rng) for v in value]
    if isinstance(value, bool | int | float):
        return rng.choice([str(value), [value], {"v": value}, None])
    if isinstance(value, str):
        return rng.choice([[value], {"v": value}, 12345, True])
    return value


def _huge(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _huge(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_huge(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return 10**400
    return value


def variants(case: Case, rng: random.Random) -> list[tuple[str, bytes]]:
    """Malformed payloads made from one fixture: (kind, payload)."""
    raw = case.payload_bytes()
    made: list[tuple[str, bytes]] = []
    if len(raw) > 2:
        made.append(("truncated", raw[: len(raw) // 2]))
        made.append(("truncated", raw[:-1]))
        flipped = bytearray(raw)
        for _ in range(3):
            i = rng.randrange(len(flipped))
            flipped[i] ^= 1 << rng.randrange(8)
        made.append(("bit_flip", bytes(flipped)))
        made.append(("nul", raw[: len(raw) // 2] + b"\x00" + raw[len(raw) // 2 :]))
        made.append(("invalid_utf8", raw[:1] + b"\xff\xfe\xc3" + raw[1:]))
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if isinstance(value, dict | list):
        made.append(("wrong_types", json.dumps(_wrong_types(value, rng)).encode()))
        made.append(("huge_numbers", json.dumps(_huge(value)).encode()))
        made.append(("huge_numbers", raw.replace(b"1", b"1e999", 1)))
    made.append(("deep_nesting", b"[" * 5000 + b"]" * 5000))
    made.append(("deep_nesting", b'{"a":' * 3000 + b"1" + b"}" * 3000))
    made.append(("oversize", b'{"temperature": 1, "pad": "' + b"x" * (MAX_PAYLOAD + 10) + b'"}'))
    made.append(("wrong_types", b"[1, 2, 3]"))
    made.append(("wrong_types", b'"just a string"'))
    return made


def pick(candidates: list[tuple[str, str, bytes]], n: int) -> list[tuple[str, str, bytes]]:
    """``n`` of the candidates, in their order: every fixture the decoders reject, then kinds in turn."""
    chosen = {i for i, (kind, _, _) in enumerate(candidates) if kind == "fixture"}
    by_kind: dict[str, list[int]] = {}
    for i, (kind, _, _) in enumerate(candidates):
        if kind != "fixture":
            by_kind.setdefault(kind, []).append(i)
    queues = [iter(indices) for indices in by_kind.values()]
    while len(chosen) < n and queues:
        for q in list(queues):
            index = next(q, None)
            if index is None:
                queues.remove(q)
            elif len(chosen) < n:
                chosen.add(index)
    return [candidates[i] for i in sorted(chosen)]


class Expectation:
    """The hub's router as `hub run` builds it, fed what the hub is fed: the rejections it must count."""

    def __init__(self, config: HubConfig) -> None:
        self.router = build_router(config)
        self.counted: Counter[tuple[str, str]] = Counter()

    def route(self, topic: str, payload: bytes) -> list[tuple[str, str]]:
        got = []
        for event in self.router.route(topic, payload, time.time()):
            if isinstance(event, Rejected):
                got.append((event.source, event.reason))
            elif isinstance(event, Discovery) and any(not valid_filter(t) for t in event.topics):
                got.append((event.source, "bad_topic"))  # refused as the hub's Hub._follow does
        self.counted.update(got)
        return got


def rejections(web: str) -> Counter[tuple[str, str]]:
    text = httpx.get(f"{web}/metrics", timeout=5).text
    found: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name == "hub_rejections":
            for sample in family.samples:
                if sample.name == "hub_rejections_total":
                    found[(sample.labels["source"], sample.labels["reason"])] = int(sample.value)
    return found


def stored(conn: sqlite3.Connection, at_ns: int) -> bool:
    row = conn.execute("SELECT 1 FROM points WHERE thing = ? AND time_ns = ?", (PROBE, at_ns)).fetchone()
    return row is not None


def test_200_malformed_variants_on_every_ecosystem_never_delay_a_good_reading_past_1s(
    tmp_path: Path, mosquitto: Mosquitto, hub_process: Any
) -> None:
    config = hub_config(tmp_path, mosquitto.url, flush_interval=0.05)
    config["web"] = {"enabled": True, "listen": "127.0.0.1:0"}
    config["ingest"] = {"max_payload_bytes": MAX_PAYLOAD}
    config["homeassistant_discovery"] = {"enabled": False}
    expect = Expectation(HubConfig.model_validate(config))
    hub: HubProcess = hub_process(write_config(tmp_path, config))
    wait_for(lambda: "dashboard url=" in hub.output(), 30, "the hub's dashboard to start")
    web = re.search(r"dashboard url=(\S+)", hub.output()).group(1)  # type: ignore[union-attr]
    wait_for(lambda: httpx.get(f"{web}/healthz", timeout=2).status_code == 200, 20, "healthz ok")
    db = tmp_path / "data" / "timeseries.sqlite"
    wait_for(db.exists, 10, "the embedded time-series store")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)

    rng = random.Random(20240607)
    bad: list[tuple[str, str, bytes]] = []  # (kind, topic, payload)
    fixtures = fixture_cases()
    ecosystems = {c.file for c in fixtures}
    for case in fixtures:
        for kind, payload in [("fixture", case.payload_bytes()), *variants(case, rng)]:
            if expect.route(case.topic or "", payload):
                bad.append((kind, case.topic or "", payload))
    bad = pick(bad, VARIANTS)
    # the expectation again, over exactly what is sent, in sending order
    expect = Expectation(HubConfig.model_validate(config))
    sent: list[tuple[str, str, bytes]] = []
    publisher = Publisher(mosquitto)
    latencies: list[float] = []
    seen_kinds: Counter[str] = Counter()
    try:
        for seq, (kind, topic, payload) in enumerate(bad):
            if not expect.route(topic, payload):
                continue  # a variant the decoder reads anyway (or ignores): not malformed
            sent.append((kind, topic, payload))
            seen_kinds[kind] += 1
            publisher.client.publish(topic, payload, qos=1).wait_for_publish(5)
            at = T0 + seq
            good = json.dumps({"temperature": 20.0 + seq % 10, "time": at})
            expect.route(f"neighborhood/things/{PROBE}/state", good.encode())
            started = time.monotonic()
            publisher.client.publish(f"neighborhood/things/{PROBE}/state", good, qos=1).wait_for_publish(5)
            at_ns = int(at * 1e9)
            while not stored(conn, at_ns):
                if time.monotonic() - started > 5:
                    pytest.fail(
                        f"the good reading after {kind} variant #{len(sent)} on {topic} was not stored in 5 s"
                    )
                time.sleep(0.002)
            latencies.append(time.monotonic() - started)
            if len(sent) % 50 == 0:
                assert hub.running, (
                    f"the hub died after {len(sent)} malformed messages:\n{hub.output()[-3000:]}"
                )
    finally:
        publisher.close()
        conn.close()

    assert hub.running, hub.output()[-3000:]
    health = httpx.get(f"{web}/healthz", timeout=5)
    assert health.status_code == 200, health.text
    counted = rejections(web)
    expected = +expect.counted
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"\nmalformed flood: {len(sent)} variants ({dict(seen_kinds)}) on {len(ecosystems)} fixture files; "
        f"good reading stored after each: max {max(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"median {statistics.median(latencies) * 1000:.0f} ms; rejections by source, reason: {dict(expected)}"
    )
    assert len(sent) >= 200, f"only {len(sent)} malformed variants were rejected offline"
    assert len(set(seen_kinds)) >= 9, seen_kinds
    crashed = {key: n for key, n in expected.items() if key[1] == "decoder_error"}
    assert not crashed, (
        f"decoders raised instead of rejecting (a decoder bug, logged with a traceback): {crashed}"
    )
    assert counted == expected, f"counted on /metrics {dict(counted)} != sent {dict(expected)}"
    assert max(latencies) <= 1.0, f"a good reading took {max(latencies):.3f} s to be stored"
    assert "Traceback" not in hub.output()
    assert hub.stop() == 0
