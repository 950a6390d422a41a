"""``--mqtt`` URLs: ``mqtt://[user[:password]@]host[:port]`` and ``mqtts://`` (TLS, system CAs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

PASSWORD_ENV = "HUB_MQTT_PASSWORD"
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``host:port`` for messages (never the credentials)."""
        return f"{self.host}:{self.port}"


def parse_broker_url(url: str, env: Mapping[str, str]) -> BrokerUrl:
    """Parse ``url``; a password missing from the URL comes from ``HUB_MQTT_PASSWORD`` in ``env``.

    Raises ValueError with a message naming what is wrong and the accepted form.
    """
    form = "expected mqtt://[user[:password]@]host[:port] or mqtts://…"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad --mqtt URL {_redact(url)!r}: {exc}; {form}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"bad --mqtt URL {_redact(url)!r}: scheme must be mqtt or mqtts; {form}")
    if not parts.hostname:
        raise ValueError(f"bad --mqtt URL {_redact(url)!r}: no host; {form}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"bad --mqtt URL {_redact(url)!r}: unexpected path or query; {form}")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else env.get(PASSWORD_ENV) or None
    if password is not None and username is None:
        raise ValueError(f"bad --mqtt URL {_redact(url)!r}: a password needs a user name; {form}")
    return BrokerUrl(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
        username=username,
        password=password,
    )


def _redact(url: str) -> str:
    """The URL with any password replaced, for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hostpart}"
