"""Alerts to any apprise URL a resident adds (ntfy, e-mail, Matrix, Telegram, a JSON webhook, ...).

An apprise URL usually carries credentials (a password, a bot token), so it is never logged or put in an
error: messages name the URL as apprise's own privacy rendering shows it, secrets masked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import apprise

from hub.integrations.delivery import DeliveryError, Message, Sender

log = logging.getLogger(__name__)

#: alert severities (and a cleared alert) as apprise notification types, which services show as colours
_TYPES = {
    "critical": apprise.NotifyType.FAILURE,
    "major": apprise.NotifyType.FAILURE,
    "minor": apprise.NotifyType.WARNING,
    "warning": apprise.NotifyType.WARNING,
    "info": apprise.NotifyType.INFO,
    "cleared": apprise.NotifyType.SUCCESS,
}


class _Revealable(Protocol):
    def reveal(self) -> str: ...


class AppriseChannel:
    """One apprise URL; ``notify`` sends and says whether the service accepted it."""

    def __init__(self, url: str | _Revealable) -> None:
        self._apprise = apprise.Apprise()
        raw = url if isinstance(url, str) else url.reveal()
        self.valid = bool(self._apprise.add(raw))
        plugin = self._apprise[0] if self.valid else None
        #: the URL fit to show: credentials masked by apprise, which knows where each service keeps them
        self.display = (
            str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
            if plugin is not None
            else "an unrecognised apprise URL"
        )

    def notify(self, title: str, body: str, severity: str = "info") -> bool:
        """Send one notification; False when the URL is invalid or the service did not accept it."""
        if not self.valid:
            return False
        notify_type = _TYPES.get(severity, apprise.NotifyType.INFO)
        return bool(self._apprise.notify(title=title, body=body, notify_type=notify_type))

    def __repr__(self) -> str:
        return f"AppriseChannel({self.display!r})"


class _Endpoint(Protocol):
    @property
    def target(self) -> _Revealable: ...
    @property
    def enabled(self) -> bool: ...


def apprise_sender(endpoint: Callable[[str], _Endpoint | None]) -> Sender:
    """A dispatcher sender for ``apprise:<channel id>`` messages; ``AlertStore.endpoint`` fits ``endpoint``.

    A cleared alert's message goes out as a success notification, whatever the alert's severity was.
    """

    def send(message: Message) -> None:
        channel_id = message.channel_id
        found = endpoint(channel_id) if channel_id else None
        if found is None:
            raise DeliveryError(f"apprise channel {channel_id!r} no longer exists", retryable=False)
        if not found.enabled:
            raise DeliveryError(f"apprise channel {channel_id!r} is turned off", retryable=False)
        channel = AppriseChannel(found.target)
        if not channel.valid:
            raise DeliveryError(
                f"apprise does not recognise the URL of channel {channel_id!r}", retryable=False
            )
        severity = "cleared" if message.data.get("state") == "cleared" else message.severity
        if not channel.notify(message.title, message.body, severity):
            raise DeliveryError(f"{channel.display} did not accept the notification")

    return send
