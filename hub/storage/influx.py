"""Time-series sinks that speak InfluxDB line protocol over HTTP (DESIGN §5 "Time series", §6).

``InfluxV1Sink`` posts to InfluxDB 1.x's ``/write``; ``InfluxV2Sink`` uses influxdb-client's synchronous
write API (InfluxDB 2.x/3.x, and VictoriaMetrics, which accepts ``/api/v2/write``). Both take a body that
``hub.storage.lineprotocol.encode`` already joined, so nothing is serialised twice, and both sort
failures into the two outcomes the recorder acts on:

- ``SinkUnavailable``: the server is down, slow, overloaded (5xx, 429), or misconfigured in a way an
  operator fixes later (wrong credentials, missing database or bucket): keep the batch in the spool;
- ``SinkRejected``: the server refused the data itself (other 4xx, e.g. a field type conflict):
  sending the same lines again cannot succeed.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode, urlsplit

import urllib3

from hub.storage.sink import SinkRejected, SinkUnavailable

log = logging.getLogger(__name__)


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"timeseries.url must be an http:// or https:// URL, got {url!r}")
    if parts.username or parts.password:
        raise ValueError("timeseries.url must not carry credentials; use timeseries.username/password/token")
    return url.rstrip("/")


def _transport_error(url: str, exc: Exception, timeout: float, hint: str) -> SinkUnavailable:
    """Describe a failure to talk to the server at all (no HTTP answer)."""
    # NewConnectionError is a kind of timeout error in urllib3 2.x, so it is tested first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
        return SinkUnavailable(f"InfluxDB at {url} refused the connection; is it running? ({hint})")
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return SinkUnavailable(
            f"InfluxDB at {url} did not answer within {timeout:g} s; is it overloaded? ({hint})"
        )
    return SinkUnavailable(f"InfluxDB at {url} could not be reached: {exc} ({hint})")


def _classify(url: str, status: int, error: str, auth_hint: str, where_hint: str) -> Exception:
    """Map an HTTP error status to SinkUnavailable (operator or time fixes it) or SinkRejected (the data)."""
    if status in (401, 403):
        return SinkUnavailable(
            f"InfluxDB at {url} refused the credentials ({status}: {error}); check {auth_hint}"
        )
    if status == 404:
        return SinkUnavailable(
            f"InfluxDB at {url} has no such target ({error}); create it or fix {where_hint}"
        )
    if status == 429 or status >= 500:
        return SinkUnavailable(f"InfluxDB at {url} cannot take writes now ({status}: {error}); will retry")
    if status == 413:
        return SinkRejected(
            f"InfluxDB at {url} refused the batch as too large ({error}); lower the batch size"
        )
    return SinkRejected(f"InfluxDB at {url} rejected the data ({status}: {error})")


class InfluxV1Sink:
    """InfluxDB 1.x ``/write`` (ns precision) with basic auth over one pooled connection.

    A missing database is created on the first write that meets "database not found", with
    ``CREATE DATABASE`` (idempotent). This needs an admin user when auth is on; without that right the
    write fails as ``SinkUnavailable`` and the batch waits in the spool until an operator creates the
    database. A missing retention policy is never created: its duration is the operator's choice.
    """

    kind = "influxdb-v1"

    def __init__(
        self,
        url: str,
        database: str,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = _base_url(url)
        self.database = database
        self.retention_policy = retention_policy
        self.timeout = timeout
        query = {"db": database, "precision": "ns"}
        if retention_policy:
            query["rp"] = retention_policy
        self._write_url = f"{self.url}/write?{urlencode(query)}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if username:
            self._headers.update(urllib3.util.make_headers(basic_auth=f"{username}:{password or ''}"))
        self._http = urllib3.PoolManager(
            num_pools=1, maxsize=1, block=False, retries=False, timeout=urllib3.Timeout(total=timeout)
        )

    def write_lines(self, body: bytes) -> None:
        """Write line protocol; creates a missing database once (see the class docstring)."""
        status, error = self._post(self._write_url, body)
        if status == 404 and "database not found" in error:
            self._create_database(error)
            status, error = self._post(self._write_url, body)
        if status >= 300:
            raise _classify(
                self.url,
                status,
                error,
                "timeseries.username/password",
                "timeseries.database/retention_policy",
            )

    def ping(self) -> bool:
        """True when ``/ping`` answers 204."""
        try:
            response = self._http.request("GET", f"{self.url}/ping", headers=self._headers)
        except (urllib3.exceptions.HTTPError, OSError):
            return False
        return response.status == 204

    def close(self) -> None:
        self._http.clear()

    def _post(self, url: str, body: bytes) -> tuple[int, str]:
        try:
            response = self._http.request("POST", url, body=body, headers=self._headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _transport_error(self.url, exc, self.timeout, "timeseries.url") from exc
        if response.status < 300:
            return response.status, ""
        return response.status, _error_text(response)

    def _create_database(self, why: str) -> None:
        name = self.database.replace("\\", "\\\\").replace('"', '\\"')
        statement = urlencode({"q": f'CREATE DATABASE "{name}"'}).encode()
        headers = {**self._headers, "Content-Type": "application/x-www-form-urlencoded"}
        try:
            response = self._http.request("POST", f"{self.url}/query", body=statement, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _transport_error(self.url, exc, self.timeout, "timeseries.url") from exc
        error = _error_text(response) if response.status >= 300 else _query_error(response.data)
        if error:
            raise SinkUnavailable(
                f"InfluxDB at {self.url} has no database {self.database!r} ({why}) and could not create it "
                f"({error}); create it with CREATE DATABASE or give the user admin rights "
                "(timeseries.database, timeseries.username)"
            )
        log.info("created influxdb database url=%s database=%s", self.url, self.database)


def _error_text(response: urllib3.BaseHTTPResponse) -> str:
    """The server's own words: the JSON ``error`` of 1.x, else the raw body, else the reason."""
    try:
        return str(json.loads(response.data)["error"])
    except (ValueError, KeyError, TypeError):
        text = response.data.decode("utf-8", "replace").strip()
        return text or response.headers.get("X-Influxdb-Error") or response.reason or ""


def _query_error(data: bytes) -> str:
    """A /query answer is 200 even when a statement fails; the failure sits in results[].error."""
    try:
        answer = json.loads(data)
    except ValueError:
        return "unreadable answer from /query"
    errors = [r["error"] for r in answer.get("results", []) if "error" in r]
    return "; ".join(errors) or answer.get("error", "")


class InfluxV2Sink:
    """InfluxDB 2.x/3.x (and VictoriaMetrics) ``/api/v2/write`` through influxdb-client, synchronously.

    The client's batching writer is not used: the recorder already batches and must know the outcome of
    each write before it acknowledges the messages behind it.
    """

    kind = "influxdb-v2"

    def __init__(self, url: str, org: str, bucket: str, token: str, timeout: float = 10.0) -> None:
        # imported here: influxdb-client and what it pulls in take about 20 MB that a hub writing to
        # InfluxDB 1.x or the embedded store never needs
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.url = _base_url(url)
        self.org = org
        self.bucket = bucket
        self.timeout = timeout
        self._client = InfluxDBClient(url=self.url, token=token, org=org, timeout=int(timeout * 1000))
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def write_lines(self, body: bytes) -> None:
        """Write line protocol to the bucket; raises SinkUnavailable or SinkRejected."""
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._write_api.write(self.bucket, self.org, body, write_precision=WritePrecision.NS)
        except ApiException as exc:
            error = getattr(exc, "message", None) or exc.reason or ""
            if isinstance(error, bytes):
                error = error.decode("utf-8", "replace")
            raise _classify(
                self.url, exc.status or 0, str(error).strip(), "timeseries.token", "timeseries.org/bucket"
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _transport_error(self.url, exc, self.timeout, "timeseries.url") from exc

    def ping(self) -> bool:
        """True when the server answers ``/ping``."""
        return bool(self._client.ping())

    def close(self) -> None:
        self._write_api.close()
        self._client.close()
