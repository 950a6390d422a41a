"""What the recorder needs of a time-series sink (DESIGN §5 "Time series").

One point per decoded message: measurement ``reading``, tags ``thing`` and ``source``, one field per
canonical measurement (float or bool), timestamp in ns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

MEASUREMENT = "reading"


@dataclass(frozen=True, slots=True)
class Point:
    thing: str
    source: str
    values: Mapping[str, float | bool]
    time_ns: int


class SinkUnavailable(Exception):
    """The sink cannot take writes now (down, timeout, 5xx, full): spool and retry later."""


class SinkRejected(Exception):
    """The sink refused the data itself (4xx): retrying the same lines will not help."""


class LineSink(Protocol):
    """A remote sink that takes InfluxDB line protocol (InfluxDB 1.x, 2.x/3.x, VictoriaMetrics)."""

    kind: str

    def write_lines(self, body: bytes) -> None:
        """Write newline-joined line protocol (ns precision). Raises SinkUnavailable or SinkRejected."""
        ...

    def ping(self) -> bool:
        """True when the server answers its health endpoint."""
        ...

    def close(self) -> None: ...


class PointSink(Protocol):
    """A local sink (the embedded store): writes cannot be 'unreachable', so it needs no spool."""

    kind: str

    def write_points(self, points: Sequence[Point]) -> None: ...

    def close(self) -> None: ...
