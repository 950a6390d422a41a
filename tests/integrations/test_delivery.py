"""The dispatcher over a real delivery log (SQLite), real local HTTP servers and a real Mosquitto:
retries with backoff, giving up, one hanging channel never delaying the others, drops left for resume.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from local_servers import HA_TOKEN, HangingServer, RecordingServer, retained_payload
from paho.mqtt.enums import CallbackAPIVersion

from hub.integrations.alert_topics import AlertSnapshot, AlertTopics
from hub.integrations.apprise_channel import apprise_sender
from hub.integrations.delivery import Dispatcher, Message, Sender
from hub.integrations.homeassistant import homeassistant_sender
from hub.storage.alertstore import AlertRecord, AlertStore, Delivery
from hub.storage.directory import Directory
from hub.storage.store import Store
from hub.telemetry import Telemetry

T0 = 1_750_000_000.0
FAST = (0.2, 0.4)  # the backoff, shortened so the test sees every retry


@pytest.fixture
def alerts(tmp_path: Path) -> Iterator[AlertStore]:
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    store.migrate()
    yield AlertStore(store)
    store.close()


@pytest.fixture
def ada(alerts: AlertStore) -> str:
    resident = Directory(alerts.store).bootstrap_admin("ada", now=T0).id
    alerts.upsert_alert(
        AlertRecord("a1", "leak", "basement-flood", "boolean", "critical", "active", "leak", T0, T0)
    )
    return resident


def text_for(alerts: AlertStore, channel: str, resident: str | None, **data: Any) -> Message:
    delivery_id = alerts.enqueue("a1", resident, channel, "opened", now=time.time())
    return Message(delivery_id, channel, resident, "Leak", "Water in the basement", "a1", "critical", data)


def timed(send: Sender, log: list[float]) -> Sender:
    def wrapped(message: Message) -> None:
        log.append(time.monotonic())
        send(message)

    return wrapped


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def state_of(alerts: AlertStore, delivery_id: int) -> Delivery:
    found = alerts.delivery(delivery_id)
    assert found is not None
    return found


def test_an_apprise_message_reaches_the_webhook_and_is_logged_sent(
    alerts: AlertStore, ada: str, webhook: RecordingServer
) -> None:
    channel = alerts.add_channel(ada, "apprise", f"json://{webhook.host}:{webhook.port}/hook", now=T0)
    dispatcher = Dispatcher({"apprise": apprise_sender(alerts.endpoint)}, alerts, drops=Telemetry().drops)
    dispatcher.start()
    try:
        message = text_for(alerts, f"apprise:{channel.id}", ada)
        assert dispatcher.submit(message)
        (request,) = webhook.wait_for(1)
        assert (request.body["title"], request.body["message"]) == ("Leak", "Water in the basement")
        assert wait_until(lambda: state_of(alerts, message.delivery_id).state == "sent")
        assert state_of(alerts, message.delivery_id).attempts == 1
    finally:
        dispatcher.stop()


def test_a_closed_port_is_retried_with_backoff_then_failed_while_another_channel_delivers(
    alerts: AlertStore, ada: str, homeassistant: RecordingServer, closed_port: int
) -> None:
    broken = alerts.add_channel(ada, "apprise", f"json://127.0.0.1:{closed_port}/hook", now=T0)
    healthy = alerts.add_channel(ada, "homeassistant", homeassistant.url, HA_TOKEN, now=T0)
    attempts: list[float] = []
    dispatcher = Dispatcher(
        {
            "apprise": timed(apprise_sender(alerts.endpoint), attempts),
            "homeassistant": homeassistant_sender(alerts.endpoint),
        },
        alerts,
        drops=Telemetry().drops,
        backoff=FAST,
    )
    dispatcher.start()
    try:
        failing = text_for(alerts, f"apprise:{broken.id}", ada)
        dispatcher.submit(failing)
        # while the broken channel retries, the other kind's messages go out at once
        sent_at = []
        for _ in range(3):
            started = time.monotonic()
            dispatcher.submit(text_for(alerts, f"homeassistant:{healthy.id}", ada, state="active"))
            homeassistant.wait_for(len(sent_at) + 1, timeout=1.0)
            sent_at.append(time.monotonic() - started)
            time.sleep(0.15)
        assert len(homeassistant.requests) == 3 and max(sent_at) < 1.0
        assert wait_until(lambda: state_of(alerts, failing.delivery_id).state == "failed")
    finally:
        dispatcher.stop()
    row = state_of(alerts, failing.delivery_id)
    assert row.attempts == 3 and row.next_attempt_at is None
    assert row.last_error is not None and f"127.0.0.1:{closed_port}" in row.last_error
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(attempts) == 3
    assert gaps[0] >= FAST[0] and gaps[1] >= FAST[1]


def test_a_hanging_home_assistant_never_delays_apprise_or_mqtt(
    alerts: AlertStore,
    ada: str,
    webhook: RecordingServer,
    hanging_server: HangingServer,
    mosquitto: Any,
) -> None:
    ha = alerts.add_channel(ada, "homeassistant", hanging_server.url, HA_TOKEN, now=T0)
    hook = alerts.add_channel(ada, "apprise", f"json://{webhook.host}:{webhook.port}/hook", now=T0)
    arrived = threading.Event()
    watcher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    watcher.on_connect = lambda c, *_: c.subscribe("neighborhood/alerts/#", qos=1)
    watcher.on_message = lambda *_: arrived.set()
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.loop_start()
    publisher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    topics = AlertTopics(lambda t, p, q, r: publisher.publish(t, p, q, r).wait_for_publish(2))
    dispatcher = Dispatcher(
        {
            "homeassistant": homeassistant_sender(alerts.endpoint, timeout=3.0),
            "apprise": apprise_sender(alerts.endpoint),
            "mqtt": topics.sender(),
        },
        alerts,
        drops=Telemetry().drops,
    )
    dispatcher.start()
    try:
        time.sleep(0.3)  # the watcher's subscription is in place
        stuck = text_for(alerts, f"homeassistant:{ha.id}", ada, state="active")
        dispatcher.submit(stuck)
        assert wait_until(lambda: hanging_server.accepted >= 1, timeout=2)
        started = time.monotonic()
        dispatcher.submit(text_for(alerts, f"apprise:{hook.id}", ada))
        snapshot = AlertSnapshot(
            "a1", "basement-flood", "boolean", "critical", "active", "Leak", None, T0, T0
        )
        dispatcher.submit(text_for(alerts, "mqtt", None, **snapshot.to_data()))
        webhook.wait_for(1, timeout=1.0)
        apprise_latency = time.monotonic() - started
        assert arrived.wait(1.0)
        mqtt_latency = time.monotonic() - started
        assert len(webhook.requests) == 1 and apprise_latency < 1.0 and mqtt_latency < 1.0
        # the Home Assistant attempt is still hanging at this point
        assert state_of(alerts, stuck.delivery_id).attempts == 0
        assert wait_until(lambda: state_of(alerts, stuck.delivery_id).attempts == 1, timeout=6)
        row = state_of(alerts, stuck.delivery_id)
        assert row.state == "pending" and row.last_error is not None and "did not answer" in row.last_error
    finally:
        dispatcher.stop()
        for client in (watcher, publisher):
            client.disconnect()
            client.loop_stop()


def test_a_rejected_token_fails_at_once_without_retries(
    alerts: AlertStore, ada: str, homeassistant: RecordingServer
) -> None:
    channel = alerts.add_channel(ada, "homeassistant", homeassistant.url, "revoked-token", now=T0)
    dispatcher = Dispatcher(
        {"homeassistant": homeassistant_sender(alerts.endpoint)},
        alerts,
        drops=Telemetry().drops,
        backoff=FAST,
    )
    dispatcher.start()
    try:
        message = text_for(alerts, f"homeassistant:{channel.id}", ada, state="active")
        dispatcher.submit(message)
        assert wait_until(lambda: state_of(alerts, message.delivery_id).state == "failed")
        time.sleep(FAST[0] + 0.1)
    finally:
        dispatcher.stop()
    row = state_of(alerts, message.delivery_id)
    assert row.attempts == 1 and "token rejected: relink Home Assistant" in (row.last_error or "")
    assert len(homeassistant.requests) == 1


def test_a_full_queue_counts_the_drop_and_resume_delivers_it_later(
    alerts: AlertStore, ada: str, webhook: RecordingServer
) -> None:
    channel = alerts.add_channel(ada, "apprise", f"json://{webhook.host}:{webhook.port}/hook", now=T0)
    telemetry = Telemetry()
    messages: dict[int, Message] = {}

    def compose(row: Delivery) -> Message | None:
        return messages.get(row.id)

    dispatcher = Dispatcher(
        {"apprise": apprise_sender(alerts.endpoint)},
        alerts,
        drops=telemetry.drops,
        compose=compose,
        queue_size=1,
    )
    first = text_for(alerts, f"apprise:{channel.id}", ada)
    second = text_for(alerts, f"apprise:{channel.id}", ada)
    messages = {first.delivery_id: first, second.delivery_id: second}
    assert dispatcher.submit(first) is True
    assert dispatcher.submit(second) is False  # not started: the queue of one is full
    assert telemetry.value("hub_drops_total", queue="delivery_apprise") == 1
    assert state_of(alerts, second.delivery_id).state == "pending"
    dispatcher.start()
    try:
        webhook.wait_for(1)
        assert dispatcher.resume(time.time()) == 1  # the first is in hand already, only the dropped one
        webhook.wait_for(2)
        assert wait_until(
            lambda: {state_of(alerts, m.delivery_id).state for m in (first, second)} == {"sent"}
        )
    finally:
        dispatcher.stop()
    assert len(webhook.requests) == 2


def test_resume_after_a_restart_continues_the_backoff_from_the_log(
    alerts: AlertStore, ada: str, closed_port: int, webhook: RecordingServer
) -> None:
    broken = alerts.add_channel(ada, "apprise", f"json://127.0.0.1:{closed_port}/hook", now=T0)
    good = alerts.add_channel(ada, "apprise", f"json://{webhook.host}:{webhook.port}/hook", now=T0)
    retried = alerts.enqueue("a1", ada, f"apprise:{broken.id}", "opened", now=T0)
    alerts.mark_failed(retried, "refused", T0, T0 + 5)
    alerts.mark_failed(retried, "refused", T0 + 5, T0 + 35)  # two attempts made before the restart
    waiting = alerts.enqueue("a1", ada, f"apprise:{good.id}", "opened", now=T0)
    obsolete = alerts.enqueue("a1", ada, f"apprise:{good.id}", "reminder", now=T0)
    not_yet = alerts.enqueue("a1", ada, f"apprise:{good.id}", "opened", now=time.time() + 3600)

    def compose(row: Delivery) -> Message | None:
        if row.message == "reminder":
            return None  # e.g. the alert was acknowledged meanwhile: nothing to remind of
        return Message(0, "", row.resident, "Leak", "Water in the basement", row.alert_id, "critical")

    dispatcher = Dispatcher(
        {"apprise": apprise_sender(alerts.endpoint)},
        alerts,
        drops=Telemetry().drops,
        compose=compose,
        backoff=FAST,
        max_attempts=3,
    )
    dispatcher.start()
    try:
        assert dispatcher.resume(time.time()) == 2
        webhook.wait_for(1)
        assert wait_until(lambda: state_of(alerts, retried).state == "failed")
        assert wait_until(lambda: state_of(alerts, waiting).state == "sent")
    finally:
        dispatcher.stop()
    assert state_of(alerts, retried).attempts == 3  # one more attempt, then the limit
    assert state_of(alerts, obsolete).state == "failed"
    assert "nothing left to send" in (state_of(alerts, obsolete).last_error or "")
    assert state_of(alerts, not_yet).state == "pending" and state_of(alerts, not_yet).attempts == 0
    assert len(webhook.requests) == 1


def test_a_message_for_a_kind_without_a_sender_fails_with_the_reason(alerts: AlertStore, ada: str) -> None:
    dispatcher = Dispatcher({"mqtt": lambda _m: None}, alerts, drops=Telemetry().drops)
    message = text_for(alerts, "homeassistant:ch1", ada)
    assert dispatcher.submit(message) is False
    row = state_of(alerts, message.delivery_id)
    assert row.state == "failed" and "no sender configured" in (row.last_error or "")


def test_mqtt_alert_payload_through_the_dispatcher_is_retained(
    alerts: AlertStore, ada: str, mosquitto: Any
) -> None:
    publisher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    topics = AlertTopics(lambda t, p, q, r: publisher.publish(t, p, q, r).wait_for_publish(2))
    dispatcher = Dispatcher({"mqtt": topics.sender()}, alerts, drops=Telemetry().drops)
    dispatcher.start()
    try:
        snapshot = AlertSnapshot(
            "a1", "basement-flood", "boolean", "critical", "claimed", "Leak", None, T0, T0
        )
        message = text_for(alerts, "mqtt", None, **snapshot.to_data())
        dispatcher.submit(message)
        assert wait_until(lambda: state_of(alerts, message.delivery_id).state == "sent")
    finally:
        dispatcher.stop()
        publisher.disconnect()
        publisher.loop_stop()
    got = retained_payload(mosquitto, "neighborhood/alerts/a1")
    assert got is not None and json.loads(got)["state"] == "claimed"
