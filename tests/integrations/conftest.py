"""Fixtures of the delivery tests; the servers behind them live in local_servers.py."""

from local_servers import closed_port, hanging_server, homeassistant, webhook

__all__ = ["closed_port", "hanging_server", "homeassistant", "webhook"]
