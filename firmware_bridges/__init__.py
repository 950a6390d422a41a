"""Bridges from device-side hardware (serial tag readers) to the hub's MQTT topics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neighborhood-hub")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
