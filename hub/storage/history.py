"""Reading history back out of the time-series store, for charts (DESIGN §5 "Time series").

The embedded sink answers ``history`` itself. ``InfluxV1History`` asks InfluxDB 1.x's ``/query`` with
InfluxQL over the same shape the sinks write (measurement ``reading``, tag ``thing``, one field per
canonical measurement), bucketed by ``GROUP BY time(...)``: the mean for numbers, the last value for
booleans. InfluxDB 2.x has no InfluxQL by default, so the v2 sink has no history reader here.
"""

from __future__ import annotations

import json
import logging
import math
import time
from urllib.parse import urlencode

import urllib3

from hub.config import Secrets
from hub.domain.vocabulary import BOOLEAN
from hub.storage.embedded import EmbeddedSink
from hub.storage.influx import InfluxV1Sink, _base_url

log = logging.getLogger(__name__)

_NS_PER_S = 1_000_000_000


class HistoryUnavailable(Exception):
    """The time-series store could not answer a history query; ``message`` says why and what to check."""

    reason = "unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _quote_tag(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote_name(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxV1History:
    """History of one thing's measurement from InfluxDB 1.x, over one pooled urllib3 connection."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = _base_url(url)
        self.database = database
        self.retention_policy = retention_policy
        self.timeout = timeout
        self._headers: dict[str, str] = {}
        if username:
            self._headers.update(urllib3.util.make_headers(basic_auth=f"{username}:{password or ''}"))
        self._http = urllib3.PoolManager(
            num_pools=1, maxsize=2, block=False, retries=False, timeout=urllib3.Timeout(total=timeout)
        )

    def history(
        self,
        thing: str,
        measurement: str,
        since_ns: int,
        until_ns: int | None = None,
        max_points: int = 1000,
    ) -> list[tuple[int, float | bool]]:
        """(time_ns, value) of one measurement in [since_ns, until_ns), oldest first, in at most
        ``max_points`` time buckets (each at its start: the mean of numbers, the last boolean)."""
        if max_points < 1:
            raise ValueError("max_points must be at least 1")
        end = until_ns if until_ns is not None else time.time_ns()
        if end <= since_ns:
            return []
        width_s = max(1, math.ceil((end - since_ns) / max_points / _NS_PER_S))
        boolean = measurement in BOOLEAN
        rows = self._select(thing, measurement, since_ns, end, width_s, "last" if boolean else "mean")
        if rows is None:  # a boolean field the vocabulary does not know: mean() refuses it
            rows = self._select(thing, measurement, since_ns, end, width_s, "last") or []
        return [(int(t), bool(v) if isinstance(v, bool) else float(v)) for t, v in rows if v is not None]

    def _select(
        self, thing: str, measurement: str, since_ns: int, until_ns: int, width_s: int, function: str
    ) -> list[list[object]] | None:
        source = "reading"
        if self.retention_policy:
            source = f"{_quote_name(self.retention_policy)}.reading"
        query = (
            f"SELECT {function}({_quote_name(measurement)}) FROM {source} "
            f"WHERE thing = {_quote_tag(thing)} AND time >= {since_ns} AND time < {until_ns} "
            # the offset starts the buckets at since_ns (InfluxDB aligns them to the epoch otherwise)
            f"GROUP BY time({width_s}s, {(since_ns // _NS_PER_S) % width_s}s) fill(none)"
        )
        params = urlencode({"db": self.database, "q": query, "epoch": "ns"})
        try:
            response = self._http.request("GET", f"{self.url}/query?{params}", headers=self._headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise HistoryUnavailable(
                f"InfluxDB at {self.url} could not be reached for history: {exc} (timeseries.url)"
            ) from exc
        try:
            answer = json.loads(response.data)
        except ValueError:
            answer = {}
        if response.status >= 300:
            error = answer.get("error") if isinstance(answer, dict) else None
            raise HistoryUnavailable(
                f"InfluxDB at {self.url} refused the history query ({response.status}: "
                f"{error or response.reason}); check timeseries.username/password and timeseries.database"
            )
        result = (answer.get("results") or [{}])[0]
        if "error" in result:
            if "unsupported mean" in str(result["error"]) and function == "mean":
                return None
            if "database not found" in str(result["error"]):
                return []  # nothing written yet
            raise HistoryUnavailable(f"InfluxDB at {self.url} could not answer history: {result['error']}")
        series = result.get("series") or []
        return [list(values) for s in series for values in s.get("values", [])]

    def close(self) -> None:
        self._http.clear()


def history_for(sink: object, secrets: Secrets | None = None) -> EmbeddedSink | InfluxV1History | None:
    """The history reader that goes with a sink: the embedded sink itself, an InfluxDB 1.x reader over
    the same database (with the sink's credentials from ``secrets``), or None (InfluxDB 2.x: charts say
    that history needs one of the other two)."""
    if isinstance(sink, EmbeddedSink):
        return sink
    if isinstance(sink, InfluxV1Sink):
        return InfluxV1History(
            sink.url,
            sink.database,
            retention_policy=sink.retention_policy,
            username=secrets.timeseries_username if secrets else None,
            password=secrets.timeseries_password if secrets else None,
            timeout=sink.timeout,
        )
    return None
