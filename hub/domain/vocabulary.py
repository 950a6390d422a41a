"""Canonical measurement names and units (DESIGN §5), shared by every decoder and sink."""

from __future__ import annotations

from typing import Final

#: Numeric measurements and their units. Names follow Zigbee2MQTT's expose names.
NUMERIC: Final[dict[str, str]] = {
    "temperature": "°C",
    "humidity": "%",
    "pressure": "hPa",
    "pm1": "µg/m³",
    "pm25": "µg/m³",
    "pm10": "µg/m³",
    "co2": "ppm",
    "voc": "ppb",
    "illuminance": "lx",
    "noise": "dB(A)",
    "battery": "%",
    "voltage": "V",
    "current": "A",
    "power": "W",
    "energy": "kWh",
    "linkquality": "",
    "rssi": "dBm",
}

#: Boolean measurements; `state` is true when a switch is on, `contact` true when closed.
BOOLEAN: Final[frozenset[str]] = frozenset({"water_leak", "contact", "occupancy", "smoke", "tamper", "state"})

MEASUREMENTS: Final[frozenset[str]] = frozenset(NUMERIC) | BOOLEAN


def unit_of(name: str) -> str:
    """The unit of a canonical measurement ("" for booleans and unitless ones)."""
    return NUMERIC.get(name, "")
