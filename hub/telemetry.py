"""The hub's own counters and gauges, exported as Prometheus text on ``/metrics``.

Each hub instance has its own registry, so several hubs (tests, workers) never share counters.
Label values are short stable codes (rejection reasons, queue names), never free text.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages = Counter("hub_messages_received", "MQTT messages received", registry=r)
        self.readings = Counter(
            "hub_readings_decoded", "Readings decoded from messages", ["source"], registry=r
        )
        self.stored = Counter("hub_points_stored", "Points written to the time-series sink", registry=r)
        self.spooled = Counter("hub_points_spooled", "Points written to the durable spool", registry=r)
        self.replayed = Counter("hub_points_replayed", "Spooled points replayed to the sink", registry=r)
        self.rejections = Counter(
            "hub_rejections", "Messages rejected, by reason", ["source", "reason"], registry=r
        )
        self.drops = Counter("hub_drops", "Items dropped at a bound, by queue", ["queue"], registry=r)
        self.sink_errors = Counter(
            "hub_sink_errors", "Failed writes to the time-series sink", ["kind"], registry=r
        )
        self.scans = Counter("hub_scans", "Tag scans received", registry=r)
        self.scans_redelivered = Counter(
            "hub_scans_redelivered",
            "Scans delivered again after a crash that had changed their loan already (not handled twice)",
            registry=r,
        )
        self.unmapped = Counter(
            "hub_unmapped_fields",
            "Payload fields that map to no canonical measurement, by source (ingest.field_map maps them)",
            ["source"],
            registry=r,
        )
        self.discoveries = Counter(
            "hub_discoveries", "Device announcements received, by source", ["source"], registry=r
        )
        self.retirements = Counter(
            "hub_retirements",
            "Withdrawn device announcements received (the thing is retired), by source",
            ["source"],
            registry=r,
        )
        self.silenced = Counter(
            "hub_things_silent_offline",
            "Things marked offline after staying silent past their availability timeout",
            registry=r,
        )
        self.mqtt_connected = Gauge("hub_mqtt_connected", "1 while connected to the broker", registry=r)
        self._gauges: list[tuple[str, str, Callable[[], float]]] = []
        r.register(_CallbackCollector(self._gauges))

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A gauge read at scrape time (queue depth, spool size, things known)."""
        self._gauges.append((name, doc, read))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample, for tests and the dashboard (0 when never set)."""
        got = self.registry.get_sample_value(name, labels or None)
        return 0.0 if got is None else got


class _CallbackCollector:
    def __init__(self, gauges: list[tuple[str, str, Callable[[], float]]]) -> None:
        self._gauges = gauges

    def collect(self):  # type: ignore[no-untyped-def]
        for name, doc, read in self._gauges:
            family = GaugeMetricFamily(name, doc)
            family.add_metric([], float(read()))
            yield family

    def describe(self):  # type: ignore[no-untyped-def]
        return []
