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
    #: signal-to-noise ratio of a radio link (LoRaWAN gateways report it per uplink)
    "snr": "dB",
    #: rain (or snow as water) collected by a rain gauge, as the gauge counts it: since midnight, since
    #: the last event, or in total (Home Assistant's ``precipitation`` device class)
    "precipitation": "mm",
}

#: Boolean measurements; `state` is true when a switch is on, `contact` true when closed.
BOOLEAN: Final[frozenset[str]] = frozenset({"water_leak", "contact", "occupancy", "smoke", "tamper", "state"})

MEASUREMENTS: Final[frozenset[str]] = frozenset(NUMERIC) | BOOLEAN


def unit_of(name: str) -> str:
    """The unit of a canonical measurement ("" for booleans and unitless ones)."""
    return NUMERIC.get(name, "")


#: Physically plausible bounds per numeric measurement, in its canonical unit. A value outside is a
#: sensor sentinel or roll-over (a PM2.5 of 43521, an energy counter of 2^48), rejected as
#: ``out_of_range`` instead of stored.
RANGES: Final[dict[str, tuple[float, float]]] = {
    "temperature": (-90.0, 200.0),
    "humidity": (0.0, 100.0),
    "pressure": (300.0, 1200.0),
    "pm1": (0.0, 2000.0),
    "pm25": (0.0, 2000.0),
    "pm10": (0.0, 2000.0),
    "co2": (0.0, 100_000.0),
    "voc": (0.0, 1_000_000.0),
    "illuminance": (0.0, 250_000.0),
    "noise": (0.0, 200.0),
    "battery": (0.0, 100.0),
    "voltage": (-2000.0, 2000.0),
    "current": (-1000.0, 1000.0),
    "power": (-1_000_000.0, 1_000_000.0),
    "energy": (-1e9, 1e9),
    "linkquality": (0.0, 255.0),
    "rssi": (-150.0, 20.0),
    "snr": (-40.0, 40.0),
    # the wettest year on record is about 26,500 mm; a gauge's yearly or running total stays below this,
    # and a 16-bit sentinel (65535) does not
    "precipitation": (0.0, 50_000.0),
}
