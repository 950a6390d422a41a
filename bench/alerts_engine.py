"""Micro-benchmark of the pure alert engine: readings evaluated per second, in process, no broker.

Builds N things and R rules (a third scoped to one thing, a third to a thing kind, a third to all things,
spread over the air, noise, climate and battery measurements, plus the default rules), then feeds
readings of four measurements each, round-robin over the things, and prints readings/s and the p50/p99
cost of one ``on_reading`` call. A share of the readings trips and clears rules so the alert paths run.

    .venv/bin/python bench/alerts_engine.py --rules 100 --things 1000 --readings 200000
"""

from __future__ import annotations

import argparse
import statistics
import time

from hub.domain.alert_rules import DEFAULT_RULES, Rule, Scope, Threshold
from hub.domain.alerts import AlertEngine
from hub.domain.model import Thing

MEASUREMENTS = ("pm25", "pm10", "noise", "co2", "temperature", "humidity", "voc")


def build(rule_count: int, thing_count: int, t0: float) -> AlertEngine:
    things = [Thing(f"t{i}", f"Thing {i}", kind="sensor" if i % 2 else "device") for i in range(thing_count)]
    rules: list[Rule] = list(DEFAULT_RULES)
    for i in range(rule_count - len(rules)):
        m = MEASUREMENTS[i % len(MEASUREMENTS)]
        if i % 3 == 0:
            scope = Scope(thing=f"t{(i * 7) % thing_count}")
        elif i % 3 == 1:
            scope = Scope(kind="sensor")
        else:
            scope = Scope()
        rules.append(Threshold(m, id=f"r{i}", above=60.0 + i % 20, clear_below=50.0, for_s=30.0, scope=scope))
    return AlertEngine(rules, things, now=t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--things", type=int, default=1000)
    parser.add_argument("--readings", type=int, default=200_000)
    args = parser.parse_args()

    t0 = 1_750_000_000.0
    engine = build(args.rules, args.things, t0)
    # Every 50th thing runs hot (pm25 80, noise 75): its rules trip, open after 30 s, and stay open.
    readings = []
    for n in range(args.readings):
        i = n % args.things
        hot = i % 50 == 0
        values = {
            "pm25": 80.0 if hot else 12.0 + n % 5,
            "noise": 75.0 if hot else 48.0,
            "temperature": 21.0,
            "battery": 90.0,
        }
        readings.append((f"t{i}", values))

    costs: list[float] = []
    transitions = 0
    clock = time.perf_counter
    start = clock()
    for n, (thing, values) in enumerate(readings):
        at = t0 + n * 0.001  # 1,000 readings per simulated second
        before = clock()
        transitions += len(engine.on_reading(thing, values, at))
        costs.append(clock() - before)
        if n % 1000 == 0:
            transitions += len(engine.tick(at))
    elapsed = clock() - start

    costs.sort()
    p50 = statistics.median(costs) * 1e6
    p99 = costs[int(len(costs) * 0.99)] * 1e6
    print(
        f"rules={len(engine.rules)} things={args.things} readings={args.readings} "
        f"readings_per_s={args.readings / elapsed:,.0f} on_reading_p50_us={p50:.1f} "
        f"on_reading_p99_us={p99:.1f} transitions={transitions} open_alerts={len(engine.open_alerts())}"
    )


if __name__ == "__main__":
    main()
