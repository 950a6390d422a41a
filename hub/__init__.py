"""Neighborhood Hub: shared sensors and machines of a neighborhood, over MQTT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neighborhood-hub")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
