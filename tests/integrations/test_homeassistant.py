"""Home Assistant notifications against a local server replaying recorded REST responses."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from local_servers import HA_TOKEN, HangingServer, RecordingServer

from hub.integrations.delivery import DeliveryError, Message
from hub.integrations.homeassistant import HomeAssistantNotifier, homeassistant_sender


class Plain:
    def __init__(self, value: str) -> None:
        self.value = value

    def reveal(self) -> str:
        return self.value


@dataclass
class Endpoint:
    target: Plain
    secret: Plain | None
    enabled: bool = True


def message(state: str = "active", alert_id: str = "a1") -> Message:
    return Message(
        delivery_id=7,
        channel="homeassistant:ch1",
        resident="r1",
        title="Water in the basement",
        body="The flood sensor reports a leak",
        alert_id=alert_id,
        severity="critical",
        data={"state": state},
    )


def test_check_accepts_an_instance_that_says_api_running(homeassistant: RecordingServer) -> None:
    HomeAssistantNotifier(homeassistant.url, HA_TOKEN).check()
    (request,) = homeassistant.requests
    assert (request.method, request.path) == ("GET", "/api/")


def test_notify_creates_a_persistent_notification_keyed_by_the_alert(homeassistant: RecordingServer) -> None:
    HomeAssistantNotifier(homeassistant.url, HA_TOKEN).notify("Leak", "Water detected", "hub_alert_a1")
    (request,) = homeassistant.requests
    assert (request.method, request.path) == ("POST", "/api/services/persistent_notification/create")
    assert request.body == {"title": "Leak", "message": "Water detected", "notification_id": "hub_alert_a1"}
    assert request.headers["Authorization"] == f"Bearer {HA_TOKEN}"


def test_a_resent_alert_updates_the_same_notification_and_clearing_dismisses_it(
    homeassistant: RecordingServer,
) -> None:
    send = homeassistant_sender(lambda _id: Endpoint(Plain(homeassistant.url), Plain(HA_TOKEN)))
    send(message("active"))
    send(message("claimed"))
    send(message("cleared"))
    requests = homeassistant.requests
    assert [r.path.rsplit("/", 1)[1] for r in requests] == ["create", "create", "dismiss"]
    assert {r.body["notification_id"] for r in requests} == {"hub_alert_a1"}


def test_a_rejected_token_is_not_retried_and_says_to_relink(homeassistant: RecordingServer) -> None:
    with pytest.raises(DeliveryError) as failed:
        HomeAssistantNotifier(homeassistant.url, "stale-token").notify("t", "b", "hub_alert_a1")
    assert failed.value.retryable is False
    assert "token rejected: relink Home Assistant" in failed.value.message
    assert "stale-token" not in failed.value.message


def test_an_unreachable_instance_is_retried_with_its_url_named(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(DeliveryError) as failed:
        HomeAssistantNotifier(url, HA_TOKEN).notify("t", "b", "hub_alert_a1")
    assert failed.value.retryable is True
    assert url in failed.value.message and HA_TOKEN not in failed.value.message


def test_a_hanging_instance_times_out_and_is_retried(hanging_server: HangingServer) -> None:
    started = time.monotonic()
    with pytest.raises(DeliveryError) as failed:
        HomeAssistantNotifier(hanging_server.url, HA_TOKEN, timeout=0.5).notify("t", "b", "hub_alert_a1")
    assert time.monotonic() - started < 5
    assert failed.value.retryable is True
    assert "did not answer within 0.5 s" in failed.value.message


def test_a_removed_or_disabled_channel_is_not_retried(homeassistant: RecordingServer) -> None:
    with pytest.raises(DeliveryError) as gone:
        homeassistant_sender(lambda _id: None)(message())
    with pytest.raises(DeliveryError) as off:
        homeassistant_sender(lambda _id: Endpoint(Plain(homeassistant.url), Plain(HA_TOKEN), False))(
            message()
        )
    assert not gone.value.retryable and not off.value.retryable
    assert homeassistant.requests == []


def test_the_token_never_shows_in_the_notifiers_repr(homeassistant: RecordingServer) -> None:
    assert HA_TOKEN not in repr(HomeAssistantNotifier(homeassistant.url, HA_TOKEN))
