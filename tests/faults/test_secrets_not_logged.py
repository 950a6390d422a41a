"""Secrets never show: `hub run` as a subprocess at debug level with an MQTT password (in the URL), an
InfluxDB 1.x password and a token (the server unreachable), a resident's apprise URL with a token and a
Home Assistant token (both channels failing), the airrohr password, a resident's password, and the
long-lived token of the resident's own Home Assistant linked as a source (a Home Assistant that rejects
it, so the hub sends it, is refused and says so). Driven through sign-in with a wrong and a right
password, pushes with a wrong and a right password, an alert delivered to the failing channels, the
link followed and refused, a relink with another token through the API and the page, and a restart with
a bad config; then the whole log, /metrics, /healthz, the API's JSON and the HTML pages are searched for
every secret."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import paho.mqtt.publish as publish
import pytest
from argon2 import PasswordHasher
from faultkit import HubProcess, hub_config, wait_for, write_config
from services import Mosquitto

from hub.domain.model import Thing, Visibility
from hub.storage.accounts import Accounts
from hub.storage.alertstore import AlertStore
from hub.storage.directory import Directory
from hub.storage.halinks import HaLinks, HaShare
from hub.storage.store import Store

pytestmark = pytest.mark.integration

MQTT_PASSWORD = "mqtt-pw-Zq81xK"
INFLUX_PASSWORD = "influx-pw-Lr52mN"
INFLUX_TOKEN = "influx-token-Hv93pQ"
APPRISE_TOKEN = "tk_apprisetokenWx47tB0a1b2c3d4e5f"  # an ntfy access token
HA_TOKEN = "ha-token-Kc66yD"
AIRROHR_PASSWORD = "airrohr-pw-Bn18sF"
RESIDENT_PASSWORD = "resident-pw-Gt29uJ"
# the resident's own Home Assistant: the token of her stored link, and one she types to link again
LINK_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJzZWNyZXRzIn0.bGluay10b2tlbi1NcDQ3dlk"
TYPED_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ0eXBlZCJ9.dHlwZWQtdG9rZW4tUmU1OGhU"
SECRETS = (
    MQTT_PASSWORD,
    INFLUX_PASSWORD,
    INFLUX_TOKEN,
    APPRISE_TOKEN,
    HA_TOKEN,
    AIRROHR_PASSWORD,
    RESIDENT_PASSWORD,
    LINK_TOKEN,
    TYPED_TOKEN,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Rejecting(BaseHTTPRequestHandler):
    """Home Assistant's answer to a token it does not know, to every request; the Authorization
    headers it was sent are kept."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization") or "")
        body = b"401: Unauthorized"
        self.send_response(401)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def rejecting_home_assistant() -> Iterator[tuple[str, list[str]]]:
    """(its URL, the Authorization headers it received)."""
    seen: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Rejecting,), {"seen": seen}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _leaks(text: str, where: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [f"{where}: {secret}" for secret in (*SECRETS, *extra) if secret in text]


def test_no_secret_appears_in_the_log_metrics_health_api_or_pages(
    tmp_path: Path, mosquitto: Mosquitto, rejecting_home_assistant: tuple[str, list[str]]
) -> None:
    ha_url, ha_seen = rejecting_home_assistant
    dead = _free_port()  # nothing listens here: InfluxDB, ntfy and Home Assistant are unreachable
    web = _free_port()
    config = hub_config(tmp_path, f"mqtt://hub:{MQTT_PASSWORD}@{mosquitto.host}:{mosquitto.port}")
    config["timeseries"] = {
        "kind": "influxdb-v1", "url": f"http://127.0.0.1:{dead}", "database": "hub", "username": "hub",
        "password": INFLUX_PASSWORD, "token": INFLUX_TOKEN, "flush_interval": 0.2, "timeout": 1.0,
    }  # fmt: skip
    config["web"] = {"listen": f"127.0.0.1:{web}"}
    config["log"] = {"level": "debug"}
    config["ingest"] = {"ecosystems": {"airrohr": {"password": AIRROHR_PASSWORD}}}
    # polled, the link's token goes out in the Authorization header of every request
    config["integrations"] = {"homeassistant_source": {"mode": "poll", "timeout_s": 5}}
    path = write_config(tmp_path, config)
    # a resident with a password, a thing she owns, and two channels that fail
    store = Store.open(tmp_path / "data")
    store.migrate()
    d = Directory(store)
    ada = d.bootstrap_admin("ada", now=time.time())
    Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)).set_password(
        ada.id, RESIDENT_PASSWORD, now=time.time()
    )
    cellar = Thing(id="cellar", name="Cellar", visibility=Visibility.PUBLIC)
    d.create_thing(cellar, owner=ada.id, actor=ada.id, now=time.time())
    alerts = AlertStore(store)
    alerts.add_channel(ada.id, "apprise", f"ntfy://{APPRISE_TOKEN}@127.0.0.1:{dead}/cellar", now=time.time())
    alerts.add_channel(ada.id, "homeassistant", f"http://127.0.0.1:{dead}", HA_TOKEN, now=time.time())
    # her own Home Assistant linked as a source, a rain gauge shared from it
    links = HaLinks(store)
    links.link(ada.id, ha_url, LINK_TOKEN, now=time.time())
    rain = Thing(id="ha_link.rain", name="Rain gauge", visibility=Visibility.PUBLIC)
    d.create_thing(rain, owner=ada.id, actor=ada.id, now=time.time())
    links.add_share(HaShare(ada.id, "sensor.rain_today", rain.id, "precipitation", False, time.time()))
    store.close()

    hub = HubProcess(path).start()
    base = f"http://127.0.0.1:{web}"
    seen: dict[str, str] = {}
    session = ""
    try:
        wait_for(lambda: _up(base), 30, "the hub's web server")
        with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as client:
            for password, status in (("a wrong guess!", 401), (RESIDENT_PASSWORD, 303)):
                page = client.get("/login")
                token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
                assert token, page.text[:300]
                answer = client.post("/login", data={"pseudonym": "ada", "password": password,
                                                     "csrf_token": token.group(1)})  # fmt: skip
                assert answer.status_code == status, answer.text[:300]
            session = client.cookies.get("hub_session") or ""
            assert session
            push = {"esp8266id": "77", "sensordatavalues": [{"value_type": "SDS_P1", "value": "3.5"}]}
            for auth, status in ((("x", "guess"), 401), (("airrohr", AIRROHR_PASSWORD), 200)):
                answer = httpx.post(f"{base}/api/v1/push/airrohr", json=push, auth=auth,
                                    headers={"X-Sensor": "esp8266-77"}, timeout=5)  # fmt: skip
                assert answer.status_code == status, answer.text
            publish.single("neighborhood/things/cellar/state", json.dumps({"water_leak": True}), qos=1,
                           hostname=mosquitto.host, port=mosquitto.port)  # fmt: skip
            wait_for(lambda: "cellar" in client.get("/api/v1/alerts").text, 15, "the leak alert")
            # the deliveries to both channels are tried and fail
            wait_for(
                lambda: hub.output().count("deliver") >= 1, 20, "a failed delivery in the log", every=0.2
            )
            # the hub follows her link: its token is sent, refused, and the refusal logged
            wait_for(lambda: "home assistant rejected" in hub.output(), 20, "the link's token refused")
            assert f"Bearer {LINK_TOKEN}" in ha_seen
            # she links again with another token, through the API and the page: refused as well
            csrf = re.search(r'name="csrf_token" value="([^"]*)"', client.get("/me/homeassistant").text)
            assert csrf
            relink = {"url": ha_url, "token": TYPED_TOKEN}
            answer = client.put("/api/v1/me/homeassistant", json=relink,
                                headers={"X-CSRF-Token": csrf.group(1)})  # fmt: skip
            assert answer.status_code == 422 and answer.json()["reason"] == "token_rejected", answer.text
            seen["PUT /api/v1/me/homeassistant"] = answer.text
            answer = client.post("/me/homeassistant/link", data={**relink, "csrf_token": csrf.group(1)})
            assert answer.status_code == 422 and "rejected the access token" in answer.text, answer.text[:300]
            seen["POST /me/homeassistant/link"] = answer.text
            answer = client.get("/api/v1/me/homeassistant/entities")
            assert answer.status_code == 502 and answer.json()["reason"] == "token_rejected", answer.text
            seen["/api/v1/me/homeassistant/entities"] = answer.text
            assert f"Bearer {TYPED_TOKEN}" in ha_seen
            time.sleep(1.0)
            for url in ("/metrics", "/healthz", "/api/v1/things", "/api/v1/alerts", "/api/v1/residents",
                        "/api/v1/things/cellar", "/", "/me", "/me/channels", "/me/tokens", "/things/cellar",
                        "/admin/residents", "/admin/audit", "/me/audit", "/me/homeassistant",
                        "/me/homeassistant?entities=true", "/api/v1/me/homeassistant",
                        "/api/v1/things/ha_link.rain", "/things/ha_link.rain"):  # fmt: skip
                answer = client.get(url)
                assert answer.status_code == 200, (url, answer.status_code)
                seen[url] = answer.text
            assert "ntfy://" in seen["/me/channels"]  # the channel is listed, masked
            assert json.loads(seen["/api/v1/me/homeassistant"])["state"] == "rejected"  # and says so
    finally:
        hub.stop()
    log = hub.stderr
    # the run did log at debug level, and the failed deliveries with their channel masked
    assert " DEBUG " in log and "delivery retry" in log and "ntfy://" in log, log[-2000:]
    # a restart with a bad config names the problem, never the secrets next to it
    bad = dict(config, mqtt={**config["mqtt"], "keepalive": "often"})
    bad_path = write_config(tmp_path, bad, "bad.yaml")
    commands = (["run", "--config", str(bad_path)], ["check-config", str(bad_path)])
    runs = [
        subprocess.run([sys.executable, "-m", "hub.cli", *argv], capture_output=True, text=True, timeout=60)
        for argv in commands
    ]
    for run in runs:
        assert run.returncode != 0 and "keepalive" in run.stderr + run.stdout, run.stderr
    leaks = _leaks(log, "log", (session,))
    for url, text in seen.items():
        leaks += _leaks(text, url, (session,))
    for run in runs:
        leaks += _leaks(run.stdout + run.stderr, f"bad config: hub {run.args[3]}")
    lines = len(log.splitlines())
    print(
        f"searched {lines} log lines, {len(seen)} responses and 2 bad-config runs for {len(SECRETS)} secrets"
    )
    assert leaks == [], "secrets shown:\n" + "\n".join(leaks)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False
