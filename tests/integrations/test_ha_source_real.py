"""A resident's own Home Assistant as a source, against the session's real Home Assistant 2025.4.4: the
hub links it through its REST API, lists and shares entities, follows their state changes over the
websocket (or polls them) and stores them in a real InfluxDB 1.x; unsharing and unlinking stop them, a
silent or unreachable Home Assistant (a fault proxy dropping, then resetting every connection) takes
the things offline with a backoff, and the token appears in no log line, page or API answer.

Entity states are set through Home Assistant's own REST API (``POST /api/states/<entity>``), which
fires the same ``state_changed`` a device's integration would.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from faults.faultproxy import FaultProxy
from homeassistant_real import RealHomeAssistant
from hubprocess import HubProcess
from services import InfluxDB1, Mosquitto
from waiting import wait_for

from hub.app import Hub
from hub.cli import main
from hub.config import HubConfig
from hub.domain.model import RelationKind, Share, Visibility
from hub.integrations.ha_source import HaLinkDesk, HaSource
from hub.storage.accounts import Accounts
from hub.storage.directory import Directory
from hub.storage.halinks import HaLinks
from hub.storage.store import Store

pytestmark = pytest.mark.integration

TEMPERATURE = {
    "device_class": "temperature",
    "unit_of_measurement": "°C",
    "friendly_name": "Basement temperature",
}
FLOOD = {"device_class": "moisture", "friendly_name": "Basement flood"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def set_state(ha: RealHomeAssistant, entity_id: str, state: str, attributes: dict[str, Any]) -> None:
    """Set an entity's state through Home Assistant's REST API (it fires state_changed)."""
    request = urllib.request.Request(
        f"{ha.url}/api/states/{entity_id}",
        data=json.dumps({"state": state, "attributes": attributes}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {ha.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201)


def points(influx: InfluxDB1, db: str, thing: str, field: str) -> list[Any]:
    rows = influx.rows(db, f'SELECT "{field}" FROM "reading" WHERE "thing" = \'{thing}\'')
    return [row[field] for row in rows]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def hub_config(
    tmp_path: Path, broker: Mosquitto, influx: InfluxDB1, db: str, **source: Any
) -> dict[str, Any]:
    return {
        "mqtt": {"url": broker.url, "client_id": f"hub-ha-{tmp_path.name}"[:60]},
        "timeseries": {"kind": "influxdb-v1", "url": influx.url, "database": db, "flush_interval": 0.2},
        "storage": {"path": str(tmp_path / "data")},
        "web": {"listen": f"127.0.0.1:{free_port()}"},
        "homeassistant_discovery": {"enabled": False},
        "integrations": {"homeassistant_source": source},
    }


class Resident:
    """A resident of a running hub, with an access token for the API and a browser session cookie."""

    def __init__(self, hub: Hub, pseudonym: str) -> None:
        now = time.time()
        self.hub = hub
        self.resident = hub.directory.add_resident(pseudonym, actor=None, now=now)
        self.id = self.resident.id
        accounts = Accounts(hub.store)
        _, plain = accounts.create_token(self.id, "tests", now=now)
        session = accounts.create_session(self.id, now=now)
        assert hub.web_url
        self.api = httpx.Client(
            base_url=hub.web_url, headers={"Authorization": f"Bearer {plain}"}, timeout=30
        )
        self.browser = httpx.Client(base_url=hub.web_url, cookies={"hub_session": session.token}, timeout=30)
        self.csrf = session.session.csrf_token
        self.seen: list[str] = []  # every answer's text, searched for the token at the end

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        answer = self.api.request(method, path, **kwargs)
        self.seen.append(answer.text)
        return answer

    def page(self, path: str = "/me/homeassistant", form: dict[str, str] | None = None) -> httpx.Response:
        if form is None:
            answer = self.browser.get(path)
        else:
            answer = self.browser.post(path, data={**form, "csrf_token": self.csrf}, follow_redirects=True)
        self.seen.append(answer.text)
        return answer

    def status(self) -> dict[str, Any]:
        answer = self.call("GET", "/api/v1/me/homeassistant")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def link(self, url: str, token: str) -> None:
        answer = self.call("PUT", "/api/v1/me/homeassistant", json={"url": url, "token": token})
        assert answer.status_code == 200, answer.text

    def share(self, entity_id: str, **choice: str) -> str:
        answer = self.call("POST", "/api/v1/me/homeassistant/shares", json={"entity_id": entity_id, **choice})
        assert answer.status_code == 201, answer.text
        thing: str = answer.json()["thing"]
        return thing

    def close(self) -> None:
        self.api.close()
        self.browser.close()


@pytest.fixture
def started(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1
) -> Iterator[Callable[..., tuple[Hub, str]]]:
    """``started(**homeassistant_source)`` → a running hub on Mosquitto and its own InfluxDB database."""
    hubs: list[Hub] = []

    def start(**source: Any) -> tuple[Hub, str]:
        db = unique("ha_source")
        influxdb_v1.create_database(db)
        hub = Hub(
            HubConfig.model_validate(hub_config(tmp_path, mosquitto, influxdb_v1, db, **source)), env={}
        )
        hub.start()
        hubs.append(hub)
        return hub, db

    yield start
    for hub in hubs:
        hub.stop()


def source_of(hub: Hub) -> HaSource:
    assert hub.ha_source is not None
    return hub.ha_source


def test_a_shared_entity_is_stored_in_influxdb_within_5_s_and_unsharing_stops_it(
    real_homeassistant: RealHomeAssistant,
    started: Callable[..., tuple[Hub, str]],
    influxdb_v1: InfluxDB1,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ha = real_homeassistant
    temperature, flood = unique("sensor.basement_temperature"), unique("binary_sensor.basement_flood")
    tracker, phone = unique("device_tracker.phone"), unique("sensor.phone_battery")
    set_state(ha, temperature, "19.5", TEMPERATURE)
    set_state(ha, flood, "off", FLOOD)
    set_state(ha, tracker, "home", {"source_type": "gps", "latitude": 52.52, "longitude": 13.40})
    set_state(ha, phone, "80", {"device_class": "battery", "unit_of_measurement": "%", "latitude": 52.52})
    hub, db = started()
    wren = Resident(hub, "wren")
    try:
        wrong = wren.page("/me/homeassistant/link", form={"url": ha.url, "token": f"{ha.token[:-6]}wrong1"})
        assert wrong.status_code == 422 and "rejected the access token" in wrong.text, wrong.text
        assert "create a new long-lived access token" in wrong.text
        wren.link(ha.url, ha.token)
        listed = wren.call("GET", "/api/v1/me/homeassistant/entities")
        assert listed.status_code == 200, listed.text
        by_id = {e["entity_id"]: e for e in listed.json()["entities"]}
        assert by_id[temperature]["measurement"] == "temperature" and by_id[temperature]["shareable"]
        assert by_id[flood]["measurement"] == "water_leak" and by_id[flood]["state"] == "off"
        for personal in (tracker, phone, "zone.home"):
            assert by_id[personal]["refusal"] == "personal_data", by_id[personal]
            assert by_id[personal]["state"] is None  # not even shown to its owner in the list
        assert any(
            e["refusal"] == "personal_data" for e in by_id.values() if e["entity_id"].startswith("person.")
        )
        refused = wren.call("POST", "/api/v1/me/homeassistant/shares", json={"entity_id": tracker})
        assert refused.status_code == 422 and refused.json()["reason"] == "personal_data", refused.text

        thing = wren.share(temperature, visibility="neighbors", watchers="state")
        flood_thing = wren.share(flood, visibility="public", watchers="full")
        shared = hub.directory.thing(thing)
        assert shared is not None
        assert (shared.visibility, shared.watcher_share) == (Visibility.NEIGHBORS, Share.DERIVED)
        assert hub.directory.thing(flood_thing).watcher_share is Share.FULL  # type: ignore[union-attr]
        owners = hub.directory.relations_of_thing(thing, now=time.time(), kinds=[RelationKind.OWNS])
        assert [r.resident for r in owners] == [wren.id]
        wait_for(lambda: wren.status()["state"] == "connected", 10, "the websocket connects")
        wait_for(lambda: points(influxdb_v1, db, thing, "temperature") == [19.5], 5, "the current state")

        start = time.monotonic()
        set_state(ha, temperature, "21.25", TEMPERATURE)
        wait_for(lambda: 21.25 in points(influxdb_v1, db, thing, "temperature"), 5, "the change in InfluxDB")
        latency = time.monotonic() - start
        print(f"\nHome Assistant state change → point in InfluxDB (websocket): {latency * 1000:.0f} ms")
        assert latency < 5.0
        set_state(ha, flood, "on", FLOOD)
        wait_for(lambda: True in points(influxdb_v1, db, flood_thing, "water_leak"), 5, "the flood")
        assert hub.live.get(thing).values == {"temperature": 21.25}  # type: ignore[union-attr]

        gone = wren.call("DELETE", f"/api/v1/me/homeassistant/shares/{temperature}")
        assert gone.status_code == 204, gone.text
        assert hub.directory.thing(thing).retired  # type: ignore[union-attr]
        set_state(ha, temperature, "30.0", TEMPERATURE)
        set_state(ha, flood, "off", FLOOD)  # still shared: proves the stream still flows
        wait_for(lambda: False in points(influxdb_v1, db, flood_thing, "water_leak"), 5, "the shared one")
        time.sleep(0.5)
        assert points(influxdb_v1, db, thing, "temperature") == [19.5, 21.25]

        page = wren.page()
        assert page.status_code == 200 and "connected" in page.text and flood in page.text
        metrics = wren.api.get("/metrics").text
        assert (
            "hub_ha_source_connected 1.0" in metrics
            and 'hub_readings_decoded_total{source="ha_link"}' in metrics
        )
        assert ha.token not in caplog.text
        assert not any(ha.token in text for text in wren.seen)
    finally:
        wren.close()


def test_unlinking_deletes_the_token_and_stops_every_shared_entity(
    real_homeassistant: RealHomeAssistant, started: Callable[..., tuple[Hub, str]], influxdb_v1: InfluxDB1
) -> None:
    ha = real_homeassistant
    first, second = unique("sensor.garden_temperature"), unique("sensor.garden_humidity")
    set_state(ha, first, "15.0", TEMPERATURE)
    set_state(ha, second, "60", {"device_class": "humidity", "unit_of_measurement": "%"})
    hub, db = started(max_entities=2)
    kit = Resident(hub, "kit")
    try:
        kit.link(ha.url, ha.token)
        things = [kit.share(first), kit.share(second)]
        third = kit.call("POST", "/api/v1/me/homeassistant/shares", json={"entity_id": unique("sensor.x")})
        assert third.status_code == 409 and third.json()["reason"] == "too_many", third.text
        assert "integrations.homeassistant_source.max_entities" in third.json()["detail"]
        wait_for(lambda: kit.status()["state"] == "connected", 10, "the websocket connects")
        wait_for(lambda: points(influxdb_v1, db, things[1], "humidity") == [60.0], 5, "the current state")

        page = kit.page("/me/homeassistant/unlink", form={})
        assert page.status_code == 200 and "Home Assistant unlinked" in page.text
        assert kit.status()["linked"] is False and kit.status()["shares"] == []
        with hub.store._engine.connect() as conn:  # the token in no cell of any table
            for table in sa.inspect(hub.store._engine).get_table_names():
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                    assert not any(ha.token in str(cell) for cell in row), table
        assert all(hub.directory.thing(t).retired for t in things)  # type: ignore[union-attr]
        set_state(ha, first, "16.0", TEMPERATURE)
        set_state(ha, second, "61", {"device_class": "humidity", "unit_of_measurement": "%"})
        time.sleep(1.0)
        assert points(influxdb_v1, db, things[0], "temperature") == [15.0]
        assert points(influxdb_v1, db, things[1], "humidity") == [60.0]
        assert all(hub.live.get(t).online is False for t in things)  # type: ignore[union-attr]
    finally:
        kit.close()


def test_a_silent_or_unreachable_home_assistant_takes_its_things_offline_with_a_backoff(
    real_homeassistant: RealHomeAssistant, started: Callable[..., tuple[Hub, str]], influxdb_v1: InfluxDB1
) -> None:
    ha = real_homeassistant
    host, port = ha.url.removeprefix("http://").split(":")
    entity = unique("sensor.shed_temperature")
    set_state(ha, entity, "10.0", TEMPERATURE)
    hub, db = started(retry_initial_s=0.5, retry_max_s=2.0, keepalive_s=1.0, timeout_s=2.0)
    sam = Resident(hub, "sam")
    with FaultProxy(host, int(port)) as proxy:
        try:
            sam.link(f"http://{proxy.url_netloc}", ha.token)
            thing = sam.share(entity, visibility="public")
            wait_for(lambda: sam.status()["state"] == "connected", 10, "the websocket connects")
            wait_for(lambda: hub.live.get(thing) and hub.live.get(thing).online, 5, "online")  # type: ignore[union-attr]

            # the network drops everything, without a word: the unanswered pings give it away
            proxy.blackhole()
            wait_for(lambda: hub.live.get(thing).online is False, 2 * 1.0 + 2, "offline")  # type: ignore[union-attr]
            assert sam.status()["reason"] == "timeout"

            proxy.reset()  # every open connection reset, every new one refused: Home Assistant is gone
            status = wait_for(lambda: (s := sam.status())["reason"] == "unreachable" and s, 5, "unreachable")
            assert status["state"] == "unreachable" and "check that Home Assistant runs" in status["problem"]
            page = sam.page()
            assert "Home Assistant runs" in page.text and "tries again" in page.text
            assert "Your Home Assistant:" in sam.page("/me").text  # the resident's own page says so too

            before, window = source_of(hub).attempts(sam.id), 6.0
            time.sleep(window)
            attempts = source_of(hub).attempts(sam.id) - before
            print(
                f"\nconnection attempts while unreachable: {attempts} in {window:g} s (0.5 s doubling to 2 s)"
            )
            assert 2 <= attempts <= 8, attempts  # retried, but no tight loop

            proxy.passthrough()
            wait_for(lambda: hub.live.get(thing).online, 5, "back online", every=0.1)  # type: ignore[union-attr]
            set_state(ha, entity, "11.5", TEMPERATURE)
            wait_for(lambda: 11.5 in points(influxdb_v1, db, thing, "temperature"), 5, "readings again")
        finally:
            sam.close()


def test_a_polled_link_in_hub_run_stores_a_change_within_one_interval_and_logs_no_token(
    real_homeassistant: RealHomeAssistant, tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1
) -> None:
    """`hub run` at debug level, its link and share made with `hub ha` beforehand; the interval is 1 s."""
    ha = real_homeassistant
    entity = unique("sensor.cellar_temperature")
    set_state(ha, entity, "12.0", TEMPERATURE)
    db = unique("ha_poll")
    influxdb_v1.create_database(db)
    config = hub_config(tmp_path, mosquitto, influxdb_v1, db, mode="poll", poll_interval_s=1.0)
    path = tmp_path / "hub.yaml"
    path.write_text(json.dumps({**config, "log": {"level": "debug"}}), encoding="utf-8")  # JSON is YAML
    (tmp_path / "token").write_text(ha.token + "\n", encoding="utf-8")
    assert main(["admin", "create", "ada", "--config", str(path)]) == 0
    token_file = tmp_path / "token"
    link = ["ha", "link", "--resident", "ada", "--url", ha.url, "--token-file", str(token_file)]
    assert main([*link, "--config", str(path)]) == 0
    assert main(["ha", "share", entity, "--resident", "ada", "--config", str(path)]) == 0
    store = Store.open(tmp_path / "data")
    (share,) = HaLinks(store).shares()
    store.close()
    hub = HubProcess(path).start()
    try:
        wait_for(lambda: points(influxdb_v1, db, share.thing, "temperature") == [12.0], 20, "the first poll")
        start = time.monotonic()
        set_state(ha, entity, "13.5", TEMPERATURE)
        wait_for(lambda: 13.5 in points(influxdb_v1, db, share.thing, "temperature"), 3, "the polled change")
        latency = time.monotonic() - start
        print(
            f"\nHome Assistant state change → point in InfluxDB (polled every 1 s): {latency * 1000:.0f} ms"
        )
        assert latency < 1.0 + 1.0  # one interval, plus the recorder's flush and the write
    finally:
        assert hub.stop() == 0
    log = hub.stderr
    assert "home assistant connected" in log and "DEBUG" in log
    assert ha.token not in log


def test_the_console_links_lists_and_unshares_against_a_real_home_assistant(
    real_homeassistant: RealHomeAssistant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ha = real_homeassistant
    entity = unique("sensor.loft_temperature")
    set_state(ha, entity, "18.0", TEMPERATURE)
    path = tmp_path / "hub.yaml"
    path.write_text(
        f"timeseries:\n  kind: embedded\nstorage:\n  path: {tmp_path / 'data'}\n", encoding="utf-8"
    )

    def hub(*argv: str, code: int = 0) -> str:
        capsys.readouterr()
        assert main([*argv, "--config", str(path)]) == code
        out, err = capsys.readouterr()
        assert ha.token not in out + err
        return out + err

    hub("admin", "create", "ada")
    bad = hub(
        "ha", "link", "--resident", "ada", "--url", ha.url, "--token-file", str(tmp_path / "none"), code=1
    )
    assert "cannot read the token file" in bad
    (tmp_path / "token").write_text("eyJ0eXAiOiJKV1Qi.not-the-token.at-all\n", encoding="utf-8")
    wrong = hub(
        "ha", "link", "--resident", "ada", "--url", ha.url, "--token-file", str(tmp_path / "token"), code=1
    )
    assert "rejected the access token" in wrong and "Long-lived access tokens" in wrong
    (tmp_path / "token").write_text(ha.token, encoding="utf-8")
    linked = hub(
        "ha", "link", "--resident", "ada", "--url", f"{ha.url}/api/", "--token-file", str(tmp_path / "token")
    )
    assert "is linked" in linked
    listed = hub("ha", "entities", "--resident", "ada", "--all")
    assert entity in listed and "temperature (°C)" in listed and "never shared" in listed
    shared = hub(
        "ha", "share", entity, "--resident", "ada", "--visibility", "neighbors", "--watchers", "full"
    )
    assert "shared as thing ha_link." in shared
    assert "personal_data" in hub("ha", "share", "zone.home", "--resident", "ada", code=1)
    assert entity in hub("ha", "status", "--resident", "ada")
    assert "no longer shared" in hub("ha", "unshare", entity, "--resident", "ada")
    assert "not_shared" in hub("ha", "unshare", entity, "--resident", "ada", code=1)
    assert "token is deleted" in hub("ha", "unlink", "--resident", "ada")
    store = Store.open(tmp_path / "data")
    try:
        assert HaLinks(store).links() == [] and HaLinkDesk(HaLinks(store), Directory(store)).get("x") is None
    finally:
        store.close()
