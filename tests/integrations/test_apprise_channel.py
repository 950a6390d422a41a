"""Apprise delivery to a real local webhook (apprise's json:// service) and to a closed port."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from local_servers import RecordingServer

from hub.integrations.apprise_channel import AppriseChannel, apprise_sender
from hub.integrations.delivery import DeliveryError, Message

PASSWORD = "s3cret-webhook-pw"


class Plain:
    def __init__(self, value: str) -> None:
        self.value = value

    def reveal(self) -> str:
        return self.value


@dataclass
class Endpoint:
    target: Plain
    enabled: bool = True


def message(state: str = "active", severity: str = "critical") -> Message:
    return Message(
        delivery_id=1,
        channel="apprise:ch1",
        resident="r1",
        title="PM2.5 high at the school gate",
        body="41 µg/m³ for 10 min",
        alert_id="a1",
        severity=severity,
        data={"state": state},
    )


def test_notify_posts_title_and_body_to_the_webhook(webhook: RecordingServer) -> None:
    channel = AppriseChannel(f"json://{webhook.host}:{webhook.port}/hook")
    assert channel.notify("Leak", "Water in the basement", "critical") is True
    (request,) = webhook.wait_for(1)
    assert request.path.startswith("/hook")
    assert request.body["title"] == "Leak" and request.body["message"] == "Water in the basement"
    assert request.body["type"] == "failure"


def test_sender_marks_a_cleared_alert_as_success(webhook: RecordingServer) -> None:
    send = apprise_sender(lambda _id: Endpoint(Plain(f"json://{webhook.host}:{webhook.port}/hook")))
    send(message(state="cleared"))
    (request,) = webhook.wait_for(1)
    assert request.body["type"] == "success" and request.body["message"] == "41 µg/m³ for 10 min"


def test_a_refusing_service_fails_retryably(webhook: RecordingServer) -> None:
    webhook.status = 503
    send = apprise_sender(lambda _id: Endpoint(Plain(f"json://{webhook.host}:{webhook.port}/hook")))
    with pytest.raises(DeliveryError) as failed:
        send(message())
    assert failed.value.retryable is True and len(webhook.requests) == 1


def test_a_closed_port_fails_retryably_without_showing_the_credentials(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"json://hub:{PASSWORD}@127.0.0.1:{closed_port}/hook"
    send = apprise_sender(lambda _id: Endpoint(Plain(url)))
    with pytest.raises(DeliveryError) as failed:
        send(message())
    assert failed.value.retryable is True
    assert f"127.0.0.1:{closed_port}" in failed.value.message
    assert PASSWORD not in failed.value.message
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(AppriseChannel(url))


def test_an_unrecognised_url_is_not_retried() -> None:
    send = apprise_sender(lambda _id: Endpoint(Plain("nosuchservice://x/y")))
    with pytest.raises(DeliveryError) as failed:
        send(message())
    assert failed.value.retryable is False
    assert AppriseChannel("nosuchservice://x/y").notify("t", "b") is False


def test_a_removed_or_disabled_channel_is_not_retried(webhook: RecordingServer) -> None:
    url = Plain(f"json://{webhook.host}:{webhook.port}/hook")
    for lookup in (lambda _id: None, lambda _id: Endpoint(url, enabled=False)):
        with pytest.raises(DeliveryError) as failed:
            apprise_sender(lookup)(message())
        assert failed.value.retryable is False
    assert webhook.requests == []
