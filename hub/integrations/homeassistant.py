"""Alerts into a resident's Home Assistant: a persistent notification per alert, through homeassistant-api.

The notification id is the alert id, so a re-sent alert (re-triggered, acknowledged, claimed) updates the
one notification instead of stacking new ones, and a cleared alert dismisses it. Errors come back as
``DeliveryError``: an unreachable instance is retried, a rejected token is not (the resident must relink).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import niquests
from homeassistant_api import Client
from homeassistant_api.errors import (
    EndpointNotFoundError,
    HomeassistantAPIError,
    InternalServerError,
    MalformedDataError,
    RequestError,
    RequestTimeoutError,
    UnauthorizedError,
)

from hub.integrations.delivery import DeliveryError, Message, Sender

log = logging.getLogger(__name__)

#: seconds to wait for a resident's Home Assistant before the attempt counts as failed (and is retried)
TIMEOUT_S = 10.0
DOMAIN = "persistent_notification"


class _Revealable(Protocol):
    def reveal(self) -> str: ...


class HomeAssistantNotifier:
    """One resident's Home Assistant at ``url`` (its base URL, e.g. ``http://homeassistant.local:8123``)."""

    def __init__(self, url: str, token: str | _Revealable, *, timeout: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def check(self) -> None:
        """Raise DeliveryError unless the instance answers ``API running.`` to this token (when linking)."""
        if not self._call(lambda client: client.check_api_running()):
            raise DeliveryError(
                f"{self.url} answered, but not as the Home Assistant REST API", retryable=False
            )

    def notify(self, title: str, message: str, notification_id: str) -> None:
        """Create or replace the persistent notification ``notification_id``."""
        self._call(
            lambda client: client.trigger_service(
                DOMAIN, "create", title=title, message=message, notification_id=notification_id
            )
        )

    def dismiss(self, notification_id: str) -> None:
        """Remove the persistent notification ``notification_id`` (nothing happens if it is gone)."""
        self._call(lambda client: client.trigger_service(DOMAIN, "dismiss", notification_id=notification_id))

    def _call(self, action: Callable[[Client], Any]) -> Any:
        token = self._token if isinstance(self._token, str) else self._token.reveal()
        session = niquests.Session()
        client = Client(
            f"{self.url}/api", token, session=session, global_request_kwargs={"timeout": self.timeout}
        )
        try:
            return action(client)
        except UnauthorizedError as e:
            raise DeliveryError(f"token rejected: relink Home Assistant ({self.url})", retryable=False) from e
        except (RequestTimeoutError, niquests.exceptions.Timeout) as e:
            raise DeliveryError(
                f"Home Assistant at {self.url} did not answer within {self.timeout:g} s"
            ) from e
        except (EndpointNotFoundError, RequestError) as e:
            raise DeliveryError(
                f"Home Assistant at {self.url} refused the notification service call: {e}", retryable=False
            ) from e
        except InternalServerError as e:
            raise DeliveryError(f"Home Assistant at {self.url} failed with a server error") from e
        except niquests.exceptions.RequestException as e:
            raise DeliveryError(
                f"Home Assistant at {self.url} could not be reached: {type(e).__name__} "
                "(is it running, and is the URL right?)"
            ) from e
        except (MalformedDataError, HomeassistantAPIError, ValueError, TypeError) as e:
            raise DeliveryError(f"Home Assistant at {self.url} answered unexpectedly: {e}") from e
        finally:
            session.close()

    def __repr__(self) -> str:
        return f"HomeAssistantNotifier({self.url!r})"


class _Endpoint(Protocol):
    @property
    def target(self) -> _Revealable: ...
    @property
    def secret(self) -> _Revealable | None: ...
    @property
    def enabled(self) -> bool: ...


def homeassistant_sender(
    endpoint: Callable[[str], _Endpoint | None], *, timeout: float = TIMEOUT_S
) -> Sender:
    """A dispatcher sender for ``homeassistant:<channel id>`` messages.

    ``endpoint(channel id)`` gives the channel's URL and token (``AlertStore.endpoint`` fits). A message
    whose ``data["state"]`` is ``cleared`` dismisses the alert's notification; any other creates or
    updates it.
    """

    def send(message: Message) -> None:
        channel_id = message.channel_id
        found = endpoint(channel_id) if channel_id else None
        if found is None or found.secret is None:
            raise DeliveryError(f"Home Assistant channel {channel_id!r} no longer exists", retryable=False)
        if not found.enabled:
            raise DeliveryError(f"Home Assistant channel {channel_id!r} is turned off", retryable=False)
        notifier = HomeAssistantNotifier(found.target.reveal(), found.secret, timeout=timeout)
        notification_id = f"hub_alert_{message.alert_id or message.delivery_id}"
        if message.data.get("state") == "cleared":
            notifier.dismiss(notification_id)
        else:
            notifier.notify(message.title, message.body, notification_id)

    return send
