"""Tasmota (DESIGN §5): SENSOR, STATE, LWT, command replies, its own discovery, tags; every fixture case."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fixturecases import NOW, Case, case, cases, hub_router, route
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.app import build_router
from hub.config import HubConfig
from hub.domain.events import Availability, Discovery, Event, Ignored, Reading, Rejected, Scan
from hub.ingest.router import Router
from hub.ingest.tasmota import TasmotaDecoder

FILE = "tasmota.json"
DEVICE = "tasmota_5C3A1B"  # the concrete %topic% the fixtures' placeholders stand for
CUSTOM = {"ecosystems": {"tasmota": {"full_topic": "%topic%/%prefix%/"}}}


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def topic_of(c: Case) -> str:
    assert c.topic is not None
    return c.topic.replace("%topic%", DEVICE)


def only(events: list[Event], kind: type, thing: str | None = None) -> list:
    return [
        e for e in events if isinstance(e, kind) and (thing is None or getattr(e, "thing", None) == thing)
    ]


def reading(events: list[Event], thing: str) -> Reading:
    [found] = only(events, Reading, thing)
    return found


def discovery(events: list[Event], thing: str) -> Discovery:
    [found] = only(events, Discovery, thing)
    return found


def rejected(events: list[Event]) -> Rejected:
    [event] = events
    assert isinstance(event, Rejected), events
    return event


@pytest.fixture
def router() -> Router:
    return hub_router()


# -- every fixture case ------------------------------------------------------------------------------------
def _bme280(c: Case, router: Router) -> None:
    got = reading(route(router, topic_of(c), c.payload_bytes()), f"tasmota.{DEVICE}")
    assert got.values == {"temperature": 21.7, "humidity": 66.6, "pressure": 988.6}
    assert got.time is None  # 2019 is before any synced clock the hub accepts: arrival time is used


def _ds18b20_by_id(c: Case, router: Router) -> None:
    events = route(router, topic_of(c), c.payload_bytes())
    assert {e.thing: e.values for e in only(events, Reading)} == {
        f"tasmota.{DEVICE}.00000566CC39": {"temperature": 13.3},
        f"tasmota.{DEVICE}.0000059352D4": {"temperature": 1.2},
        f"tasmota.{DEVICE}.000005937C90": {"temperature": 22.5},
    }
    assert {e.time for e in only(events, Reading)} == {utc("2021-01-02T09:09:44")}


def _ds18b20_single_old_format(c: Case, router: Router) -> None:
    events = route(router, topic_of(c), c.payload_bytes())
    assert events == [Reading("tasmota.tasmota", "tasmota", {"temperature": 20.6}, None, {})]


def _pow_energy(c: Case, router: Router) -> None:
    got = reading(route(router, topic_of(c), c.payload_bytes()), "tasmota.pow1")
    assert got.values == {"energy": 6.294, "power": 2635.0, "voltage": 227.0, "current": 11.661}
    assert got.unmapped == {
        "ENERGY.Today": 0.954,
        "ENERGY.Yesterday": 5.340,
        "ENERGY.Period": 217,
        "ENERGY.ApparentPower": 2650,
        "ENERGY.ReactivePower": 282,
        "ENERGY.Factor": 0.99,
    }


def _state_health(c: Case, router: Router) -> None:
    got = reading(route(router, topic_of(c), c.payload_bytes()), "tasmota.tasmota")
    assert got.values == {"state": False}  # Wifi.RSSI 100 is a quality %, never rssi
    assert got.unmapped["Vcc"] == 3.423
    assert got.unmapped["UptimeSec"] == 66972
    assert got.unmapped["Heap"] == 28
    assert got.unmapped["LoadAvg"] == 19
    assert got.unmapped["Wifi.RSSI"] == 100
    assert "Uptime" not in got.unmapped and "Wifi.SSId" not in got.unmapped


def _state_signal(c: Case, router: Router) -> None:
    got = reading(route(router, topic_of(c), c.payload_bytes()), "tasmota.demo-sensor")
    assert got.values == {"state": True, "rssi": -57.0}
    assert got.unmapped["Wifi.RSSI"] == 86
    assert got.time == utc("2021-06-27T13:03:44")  # +02:00 honoured


def _lwt_online(c: Case, router: Router) -> None:
    assert route(router, topic_of(c), c.payload_bytes()) == [
        Availability("tasmota.tasmota_XXXXXX", "tasmota", True)
    ]


def _relay_off(c: Case, router: Router) -> None:
    got = reading(route(router, topic_of(c), c.payload_bytes()), "tasmota.tasmota_switch")
    assert got.values == {"state": False}


def _relay_on_json_then_text(c: Case, router: Router) -> None:
    first = reading(route(router, topic_of(c), c.payload_bytes()), "tasmota.demo-sensor")
    second = reading(route(router, topic_of(c), "ON"), "tasmota.demo-sensor")
    assert first.values == second.values == {"state": True}


def _discovery_config(c: Case, router: Router) -> None:
    events = route(router, topic_of(c), c.payload_bytes())
    device = discovery(events, "tasmota.cv-ruimte")
    assert device.name == "CV-Ruimte"
    assert device.model == "Technische Ruimte"
    assert device.sw_version == "13.4.0"
    assert device.manufacturer is None
    assert device.power == "mains"
    assert device.measurements == ("state",)
    assert device.topics == ()  # the device uses the layout the hub already reads
    assert device.attributes["mac"] == "DC4F220756C6"
    assert device.attributes["hostname"] == "cv-ruimte-5830"
    assert device.attributes["relays"] == 4
    relays = {e.thing: e.name for e in only(events, Discovery) if e.thing != "tasmota.cv-ruimte"}
    assert relays == {
        "tasmota.cv-ruimte.power2": "Relais1",
        "tasmota.cv-ruimte.power3": "Relais2",
        "tasmota.cv-ruimte.power4": "Relais3",
    }
    # its availability topic tele/cv-ruimte/LWT with its online payload
    assert route(router, "tele/cv-ruimte/LWT", "Online")[0] == Availability(
        "tasmota.cv-ruimte", "tasmota", True
    )


def _discovery_sensors(c: Case, router: Router) -> None:
    route(router, "tasmota/discovery/DC4F220756C6/config", case(FILE, 10).payload_bytes())
    events = route(router, topic_of(c), c.payload_bytes())
    assert discovery(events, "tasmota.cv-ruimte.3CCCE3810022").measurements == ("temperature",)
    assert discovery(events, "tasmota.cv-ruimte.3CF0E381CD74").measurements == ("temperature",)
    assert discovery(events, "tasmota.cv-ruimte").name == "CV-Ruimte"  # each announcement is whole
    # the telemetry the snapshot announces lands on the same things
    snapshot = json.dumps(json.loads(c.payload_bytes())["sn"])
    live = route(router, "tele/cv-ruimte/SENSOR", snapshot)
    assert reading(live, "tasmota.cv-ruimte.3CCCE3810022").values == {"temperature": 18.4}
    assert reading(live, "tasmota.cv-ruimte.3CF0E381CD74").values == {"temperature": 17.7}
    assert reading(live, "tasmota.cv-ruimte").unmapped == {"Switch1": "ON"}


def _discovery_sensors_before_config(c: Case, router: Router) -> None:
    assert route(router, topic_of(c), c.payload_bytes()) == [Ignored("tasmota", topic_of(c))]
    config = json.dumps({"t": "pow-r2", "dn": "Washer", "mac": "CC50E3******", "rl": [1, 0], "sw": "8.5.1"})
    events = route(router, "tasmota/discovery/CC50E3******/config", config)
    device = discovery(events, "tasmota.pow-r2")
    assert set(device.measurements) == {"state", "energy", "power", "voltage", "current"}
    snapshot = json.loads(c.payload_bytes())["sn"]
    live = reading(route(router, "tele/pow-r2/SENSOR", json.dumps(snapshot)), "tasmota.pow-r2")
    assert live.values == {"energy": 261.244, "power": 76.2, "voltage": 231.1, "current": 0.568}
    assert live.time == pytest.approx(utc("2020-10-17T16:56:16.440"))


def _serial_rdm6300_bad_checksum(c: Case, router: Router) -> None:
    event = rejected(route(router, topic_of(c), c.payload_bytes()))
    assert event.reason == "bad_checksum"
    assert "FE" in event.detail


def _wiegand(c: Case, router: Router) -> None:
    assert route(router, topic_of(c), c.payload_bytes()) == [
        Scan("tasmota.EMLL_62DE74", "tasmota", "W26:16770365", utc("2022-02-14T16:16:39"))
    ]


def _status10_missing_brace(c: Case, router: Router) -> None:
    assert rejected(route(router, topic_of(c), c.payload_bytes())).reason == "not_json"
    mended = c.payload_bytes() + b"}"
    assert reading(route(router, topic_of(c), mended), "tasmota.sonoff").values == {
        "temperature": 69.8,  # no TempUnit: Tasmota's default °C is all the message says
        "humidity": 26.9,
    }


def _custom_layout_dangling(c: Case, router: Router) -> None:
    assert route(router, topic_of(c), c.payload_bytes()) == [Ignored("unknown", topic_of(c))]
    custom = hub_router(**CUSTOM)
    assert rejected(route(custom, topic_of(c), c.payload_bytes())).reason == "not_json"
    mended = c.payload_bytes().replace(b',"}', b"}}")
    got = reading(route(custom, topic_of(c), mended), "tasmota.GasMeter")
    assert got.values == {}
    assert got.unmapped["COUNTER.C1"] == 1156
    assert got.unmapped["HMC5883L.MagneticInduction"] == 1360


EXPECTED: dict[int, Callable[[Case, Router], None]] = {
    0: _bme280,
    1: _ds18b20_by_id,
    2: _ds18b20_single_old_format,
    3: _pow_energy,
    4: _state_health,
    5: _state_signal,
    6: _lwt_online,
    7: _relay_off,
    8: _relay_off,
    9: _relay_on_json_then_text,
    10: _discovery_config,
    11: _discovery_sensors,
    12: _discovery_sensors_before_config,
    13: _serial_rdm6300_bad_checksum,
    14: _wiegand,
    15: _status10_missing_brace,
    16: _custom_layout_dangling,
}


@pytest.mark.parametrize("c", cases(FILE), ids=lambda c: c.id)
def test_fixture_case_decodes_to_its_meaning(c: Case, router: Router) -> None:
    assert c.index in EXPECTED, f"{c.id} has no expectation: add one to EXPECTED"
    EXPECTED[c.index](c, router)


def test_every_fixture_case_is_claimed() -> None:
    assert sorted(EXPECTED) == [c.index for c in cases(FILE)]


# -- topics ------------------------------------------------------------------------------------------------
def test_subscriptions_follow_the_default_layout() -> None:
    subs = {(s.topic, s.replay) for s in TasmotaDecoder().subscriptions()}
    assert subs == {
        ("tele/+/+", False),
        ("stat/+/+", False),
        ("tasmota/discovery/+/config", True),
        ("tasmota/discovery/+/sensors", True),
    }


def test_custom_layout_subscribes_and_decodes_topic_first() -> None:
    assert {s.topic for s in hub_router(**CUSTOM).subscriptions()} >= {"+/tele/+", "+/stat/+"}
    router = hub_router(**CUSTOM)
    got = reading(route(router, "GasMeter/tele/SENSOR", '{"BH1750":{"Illuminance":312}}'), "tasmota.GasMeter")
    assert got.values == {"illuminance": 312.0}
    assert route(router, "tele/GasMeter/SENSOR", '{"BH1750":{"Illuminance":312}}')[0].source != "tasmota"


def test_layout_with_literal_levels_and_hostname() -> None:
    decoder = TasmotaDecoder("home/%prefix%/%hostname%/", "tasmota/discovery")
    assert {s.topic for s in decoder.subscriptions()} >= {"home/tele/+/+", "home/stat/+/+"}
    events = Router([decoder]).route("home/tele/porch-7/SENSOR", b'{"SHT3X":{"Humidity":51}}', NOW)
    assert reading(events, "tasmota.porch-7").values == {"humidity": 51.0}


def test_layout_without_a_device_token_is_refused() -> None:
    with pytest.raises(ValueError, match="full_topic"):
        TasmotaDecoder("%prefix%/fixed/")


def test_commands_are_never_decoded(router: Router) -> None:
    assert route(router, "cmnd/tasmota_switch/Power", "") == [Ignored("tasmota", "cmnd/tasmota_switch/Power")]
    assert route(router, "cmnd/tasmota_switch/POWER", "ON") == [
        Ignored("tasmota", "cmnd/tasmota_switch/POWER")
    ]
    assert "cmnd/+/+" not in {s.topic for s in router.subscriptions()}


def test_lower_case_leaves_are_not_tasmotas(router: Router) -> None:
    assert route(router, "tele/x/availability", "online")[0].source != "tasmota"


def test_device_with_its_own_layout_is_learned_from_discovery(router: Router) -> None:
    config = {
        "t": "GasMeter",
        "ft": "%topic%/%prefix%/",
        "tp": ["cmnd", "stat", "tele"],
        "mac": "AABBCC001122",
    }
    payload = '{"Time":"2022-12-06T18:53:52","SDS0X1":{"PM2.5":4.1,"PM10":9.8}}'
    assert route(router, "GasMeter/tele/SENSOR", payload)[0].source == "unknown"
    events = route(router, "tasmota/discovery/AABBCC001122/config", json.dumps(config))
    assert set(discovery(events, "tasmota.GasMeter").topics) == {"GasMeter/tele/+", "GasMeter/stat/+"}
    assert reading(route(router, "GasMeter/tele/SENSOR", payload), "tasmota.GasMeter").values == {
        "pm25": 4.1,
        "pm10": 9.8,
    }
    assert route(router, "GasMeter/tele/LWT", "Offline") == [
        Availability("tasmota.GasMeter", "tasmota", False)
    ]
    # withdrawn: the topics are no longer the device's
    assert route(router, "tasmota/discovery/AABBCC001122/config", "") == [
        Discovery("tasmota.GasMeter", "tasmota", retired=True)
    ]
    assert route(router, "GasMeter/tele/SENSOR", payload)[0].source == "unknown"


def test_device_with_own_prefixes_is_learned(router: Router) -> None:
    config = {"t": "bulb", "ft": "%prefix%/%topic%/", "tp": ["c", "s", "t"], "mac": "AABBCC001199"}
    events = route(router, "tasmota/discovery/AABBCC001199/config", json.dumps(config))
    assert set(discovery(events, "tasmota.bulb").topics) == {"s/bulb/+", "t/bulb/+"}
    assert reading(route(router, "s/bulb/POWER", "ON"), "tasmota.bulb").values == {"state": True}


def test_retiring_an_unknown_device_is_ignored(router: Router) -> None:
    assert route(router, "tasmota/discovery/000000000000/config", "") == [
        Ignored("tasmota", "tasmota/discovery/000000000000/config")
    ]


def test_retire_withdraws_sub_things_too(router: Router) -> None:
    route(router, "tasmota/discovery/DC4F220756C6/config", case(FILE, 10).payload_bytes())
    route(router, "tasmota/discovery/DC4F220756C6/sensors", case(FILE, 11).payload_bytes())
    events = route(router, "tasmota/discovery/DC4F220756C6/config", "")
    assert all(isinstance(e, Discovery) and e.retired for e in events)
    assert {e.thing for e in events} >= {
        "tasmota.cv-ruimte",
        "tasmota.cv-ruimte.power2",
        "tasmota.cv-ruimte.3CCCE3810022",
    }


def test_discovery_without_device_topic_is_rejected(router: Router) -> None:
    event = rejected(route(router, "tasmota/discovery/AABBCC001122/config", '{"dn":"x"}'))
    assert event.reason == "bad_discovery"


def test_discovery_repeated_gives_the_same_events(router: Router) -> None:
    payload = case(FILE, 10).payload_bytes()
    first = route(router, "tasmota/discovery/DC4F220756C6/config", payload)
    assert route(router, "tasmota/discovery/DC4F220756C6/config", payload) == first


def test_battery_device_announces_battery_power(router: Router) -> None:
    config = {"t": "door", "mac": "AABBCC000001", "dslp": 1, "fn": ["Front door"]}
    event = discovery(
        route(router, "tasmota/discovery/AABBCC000001/config", json.dumps(config)), "tasmota.door"
    )
    assert event.power == "battery"
    assert event.name == "Front door"


# -- sensors -----------------------------------------------------------------------------------------------
def test_ds18b20_sensors_keyed_by_id_not_suffix(router: Router) -> None:
    one = '{"DS18B20-1":{"Id":"AA01","Temperature":10.5},"DS18B20-2":{"Id":"BB02","Temperature":20.5}}'
    two = '{"DS18B20-1":{"Id":"BB02","Temperature":20.5},"DS18B20-2":{"Id":"AA01","Temperature":10.5}}'
    first = {e.thing: e.values for e in only(route(router, "tele/boiler/SENSOR", one), Reading)}
    again = {e.thing: e.values for e in only(route(router, "tele/boiler/SENSOR", two), Reading)}
    assert (
        first
        == again
        == {
            "tasmota.boiler.AA01": {"temperature": 10.5},
            "tasmota.boiler.BB02": {"temperature": 20.5},
        }
    )


def test_old_ds18x20_address_is_the_id(router: Router) -> None:
    payload = '{"DS18x20":{"DS1":{"Type":"DS18B20","Address":"28FF8BB0A0160450","Temperature":21.1}}}'
    got = reading(route(router, "tele/old/SENSOR", payload), "tasmota.old.28FF8BB0A0160450")
    assert got.values == {"temperature": 21.1}


def test_second_sensor_measuring_the_same_goes_to_a_sub_thing(router: Router) -> None:
    payload = (
        '{"BME280":{"Temperature":21.0,"Humidity":50.0,"Pressure":1001.0},'
        '"SHT3X-0x45":{"Temperature":20.5,"Humidity":52.0},"TempUnit":"C","PressureUnit":"hPa"}'
    )
    events = route(router, f"tele/{DEVICE}/SENSOR", payload)
    assert reading(events, f"tasmota.{DEVICE}").values == {
        "temperature": 21.0,
        "humidity": 50.0,
        "pressure": 1001.0,
    }
    assert reading(events, f"tasmota.{DEVICE}.SHT3X-0x45").values == {"temperature": 20.5, "humidity": 52.0}


def test_only_the_colliding_measurement_leaves_the_device(router: Router) -> None:
    payload = '{"AM2301":{"Temperature":19.0,"Humidity":60},"BMP180":{"Temperature":19.4,"Pressure":1012.5}}'
    events = route(router, "tele/attic/SENSOR", payload)
    assert reading(events, "tasmota.attic").values == {
        "temperature": 19.0,
        "humidity": 60.0,
        "pressure": 1012.5,
    }
    assert reading(events, "tasmota.attic.BMP180").values == {"temperature": 19.4}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            '{"DHT11":{"Temperature":70.0,"Humidity":40},"TempUnit":"F"}',
            {"temperature": 21.111111, "humidity": 40.0},
        ),
        (
            '{"BMP280":{"Temperature":20,"Pressure":750.0},"PressureUnit":"mmHg"}',
            {"temperature": 20.0, "pressure": 999.91776},
        ),
        ('{"BMP280":{"Pressure":29.53},"PressureUnit":"inHg"}', {"pressure": 1000.000573}),
        ('{"BME280":{"Temperature":"21.5","Humidity":"nan"}}', {"temperature": 21.5}),
    ],
)
def test_sibling_units_convert(router: Router, payload: str, expected: dict[str, float]) -> None:
    got = reading(route(router, "tele/unit/SENSOR", payload), "tasmota.unit")
    assert got.values == pytest.approx(expected)


def test_dew_point_and_sea_pressure_are_unmapped(router: Router) -> None:
    payload = (
        '{"BME280":{"Temperature":21,"Humidity":50,"DewPoint":10.2,"Pressure":990,"SeaPressure":1013.1}}'
    )
    got = reading(route(router, "tele/w/SENSOR", payload), "tasmota.w")
    assert got.values == {"temperature": 21.0, "humidity": 50.0, "pressure": 990.0}
    assert got.unmapped == {"BME280.DewPoint": 10.2, "BME280.SeaPressure": 1013.1}


def test_particulate_sensors_and_cf_variants(router: Router) -> None:
    payload = '{"PMS5003":{"CF1":3,"CF2.5":5,"CF10":6,"PM1":3,"PM2.5":5,"PM10":6,"PB0.3":510,"PB10":0}}'
    got = reading(route(router, "tele/air/SENSOR", payload), "tasmota.air")
    assert got.values == {"pm1": 3.0, "pm25": 5.0, "pm10": 6.0}
    assert got.unmapped == {
        "PMS5003.CF1": 3,
        "PMS5003.CF2.5": 5,
        "PMS5003.CF10": 6,
        "PMS5003.PB0.3": 510,
        "PMS5003.PB10": 0,
    }


def test_gas_sensors(router: Router) -> None:
    payload = (
        '{"SCD30":{"CarbonDioxide":612,"eCO2":590,"Temperature":22.1,"Humidity":41.2},'
        '"CCS811":{"eCO2":700,"TVOC":35},"MHZ19B":{"Model":"B","CarbonDioxide":640}}'
    )
    events = route(router, "tele/office/SENSOR", payload)
    device = reading(events, "tasmota.office")
    assert device.values == {"co2": 612.0, "temperature": 22.1, "humidity": 41.2, "voc": 35.0}
    assert device.unmapped == {"SCD30.eCO2": 590}
    assert reading(events, "tasmota.office.CCS811").values == {"co2": 700.0}
    assert reading(events, "tasmota.office.MHZ19B").values == {"co2": 640.0}


def test_light_battery_noise_and_analog(router: Router) -> None:
    payload = '{"BH1750":{"Illuminance":1234},"ANALOG":{"A0":512},"SPL":{"Noise":48.5},"BAT":{"Battery":87}}'
    got = reading(route(router, "tele/garden/SENSOR", payload), "tasmota.garden")
    assert got.values == {"illuminance": 1234.0, "noise": 48.5, "battery": 87.0}
    assert got.unmapped == {"ANALOG.A0": 512}


def test_chip_temperature_is_not_the_rooms(router: Router) -> None:
    got = reading(
        route(router, "tele/esp/SENSOR", '{"ESP32":{"Temperature":47.8},"TempUnit":"C"}'), "tasmota.esp"
    )
    assert got.values == {}
    assert got.unmapped == {"ESP32.Temperature": 47.8}


def test_ble_sensor_relayed_by_mi32_is_its_own_thing(router: Router) -> None:
    payload = (
        '{"ATC-a9fcf0":{"mac":"a4c138a9fcf0","Temperature":21.8,"Humidity":55.1,"Battery":66,"RSSI":-69}}'
    )
    got = reading(route(router, "tele/tasmota_11DA0C/SENSOR", payload), "tasmota.tasmota_11DA0C.A4C138A9FCF0")
    assert got.values == {"temperature": 21.8, "humidity": 55.1, "battery": 66.0, "rssi": -69.0}


def test_two_channel_energy_arrays(router: Router) -> None:
    payload = (
        '{"ENERGY":{"Total":3.2,"Power":[12.5,40.0],"Voltage":230,"Current":[0.1,0.2],"Factor":[0.9,0.8]}}'
    )
    events = route(router, "tele/shelly25/SENSOR", payload)
    assert reading(events, "tasmota.shelly25").values == {
        "energy": 3.2,
        "power": 12.5,
        "voltage": 230.0,
        "current": 0.1,
    }
    second = reading(events, "tasmota.shelly25.ENERGY.2")
    assert second.values == {"power": 40.0, "current": 0.2}
    assert second.unmapped == {"ENERGY.Factor": 0.8}


def test_sentinel_value_rejected_while_the_rest_lands(router: Router) -> None:
    events = route(router, "tele/air/SENSOR", '{"SDS0X1":{"PM2.5":43521,"PM10":12.0}}')
    assert reading(events, "tasmota.air").values == {"pm10": 12.0}
    assert [e.reason for e in only(events, Rejected)] == ["out_of_range"]


def test_text_in_a_measurement_is_rejected_not_stored(router: Router) -> None:
    events = route(router, "tele/x/SENSOR", '{"AHT2X":{"Temperature":"warm","Humidity":40}}')
    assert reading(events, "tasmota.x").values == {"humidity": 40.0}
    assert [e.reason for e in only(events, Rejected)] == ["bad_value"]


def test_sensor_message_with_nothing_to_record_is_ignored(router: Router) -> None:
    assert route(router, "tele/x/SENSOR", '{"Time":"2024-01-01T00:00:00","TempUnit":"C"}') == [
        Ignored("tasmota", "tele/x/SENSOR")
    ]


def test_status_sns_and_sts_replies(router: Router) -> None:
    sns = (
        '{"StatusSNS":{"Time":"2024-03-31T08:46:17",'
        '"AM2301":{"Temperature":68.0,"Humidity":30},"TempUnit":"F"}}'
    )
    assert reading(route(router, "stat/hall/STATUS10", sns), "tasmota.hall").values == pytest.approx(
        {"temperature": 20.0, "humidity": 30.0}
    )
    old = '{"StatusSNS":{"DS18B20":{"Temperature":5.5}}}'
    assert reading(route(router, "stat/hall/STATUS8", old), "tasmota.hall").values == {"temperature": 5.5}
    sts = '{"StatusSTS":{"POWER":"ON","Wifi":{"RSSI":70,"Signal":-65}}}'
    assert reading(route(router, "stat/hall/STATUS11", sts), "tasmota.hall").values == {
        "state": True,
        "rssi": -65.0,
    }
    assert route(router, "stat/hall/STATUS5", '{"StatusNET":{"Hostname":"hall"}}') == [
        Ignored("tasmota", "stat/hall/STATUS5")
    ]


def test_zigbee_device_relayed_by_the_bridge_is_its_own_thing(router: Router) -> None:
    payload = (
        '{"ZbReceived":{"0x8F20":{"Device":"0x8F20","Name":"Kitchen","Temperature":21.5,"LinkQuality":66}}}'
    )
    got = reading(route(router, "tele/zbbridge/SENSOR", payload), "tasmota.zbbridge.0x8F20")
    assert got.values == {"temperature": 21.5, "linkquality": 66.0}


# -- relays and replies ------------------------------------------------------------------------------------
def test_multi_relay_state_goes_to_power_sub_things(router: Router) -> None:
    events = route(router, "tele/quad/STATE", '{"POWER1":"ON","POWER2":"OFF","POWER3":"ON"}')
    assert reading(events, "tasmota.quad").values == {"state": True}
    assert reading(events, "tasmota.quad.power2").values == {"state": False}
    assert reading(events, "tasmota.quad.power3").values == {"state": True}
    assert reading(route(router, "stat/quad/POWER2", "ON"), "tasmota.quad.power2").values == {"state": True}
    assert reading(route(router, "stat/quad/RESULT", '{"POWER3":"OFF"}'), "tasmota.quad.power3").values == {
        "state": False
    }


def test_other_command_replies_are_ignored(router: Router) -> None:
    assert route(router, "stat/lamp/RESULT", '{"Dimmer":50}') == [Ignored("tasmota", "stat/lamp/RESULT")]
    assert route(router, "stat/lamp/DIMMER", '{"Dimmer":50}') == [Ignored("tasmota", "stat/lamp/DIMMER")]
    assert route(router, "stat/lamp/UPGRADE", "Version 13.4.0") == [Ignored("tasmota", "stat/lamp/UPGRADE")]


def test_set_option_4_reply_on_command_topic(router: Router) -> None:
    got = reading(route(router, "stat/lamp/POWER", '{"POWER":"ON","Dimmer":80}'), "tasmota.lamp")
    assert got.values == {"state": True}


def test_info_messages_are_ignored(router: Router) -> None:
    for n in (1, 2, 3):
        topic = f"tele/lamp/INFO{n}"
        assert route(router, topic, f'{{"Info{n}":{{"Module":"Sonoff Basic"}}}}') == [
            Ignored("tasmota", topic)
        ]


def test_power_text_not_on_or_off_is_rejected(router: Router) -> None:
    assert rejected(route(router, "stat/lamp/POWER", "MAYBE")).reason == "bad_value"


def test_state_texts_learned_from_discovery(router: Router) -> None:
    config = {"t": "fan", "mac": "AABBCC000002", "rl": [1], "state": ["AUS", "AN", "UM", "HALTEN"]}
    route(router, "tasmota/discovery/AABBCC000002/config", json.dumps(config))
    assert reading(route(router, "stat/fan/POWER", "AN"), "tasmota.fan").values == {"state": True}
    assert reading(route(router, "stat/fan/POWER", "AUS"), "tasmota.fan").values == {"state": False}


# -- availability --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "online"), [("Online", True), ("Offline", False), ("online", True), ("OFFLINE\n", False)]
)
def test_lwt_any_capitalisation(router: Router, payload: str, online: bool) -> None:
    assert route(router, "tele/lamp/LWT", payload) == [Availability("tasmota.lamp", "tasmota", online)]


def test_lwt_other_words_rejected(router: Router) -> None:
    assert rejected(route(router, "tele/lamp/LWT", "Sleeping")).reason == "bad_value"


def test_lwt_reaches_the_sub_things_of_the_device(router: Router) -> None:
    route(router, "tele/boiler/SENSOR", '{"DS18B20-1":{"Id":"AA01","Temperature":60}}')
    assert set(route(router, "tele/boiler/LWT", "Offline")) == {
        Availability("tasmota.boiler", "tasmota", False),
        Availability("tasmota.boiler.AA01", "tasmota", False),
    }


def test_lwt_payloads_learned_from_discovery(router: Router) -> None:
    route(
        router, "tasmota/discovery/AABBCC000003/config", json.dumps({"t": "x1", "onln": "Up", "ofln": "Down"})
    )
    assert route(router, "tele/x1/LWT", "Down") == [Availability("tasmota.x1", "tasmota", False)]


# -- tags ----------------------------------------------------------------------------------------------------
def test_pn532_uid_is_the_tag(router: Router) -> None:
    payload = '{"Time":"2024-05-01T10:00:00","PN532":{"UID":"94d8fc5f","DATA":"hello"}}'
    assert route(router, "tele/door/SENSOR", payload) == [
        Scan("tasmota.door", "tasmota", "94D8FC5F", utc("2024-05-01T10:00:00"))
    ]


def test_rc522_and_native_rdm6300_uids(router: Router) -> None:
    assert route(
        router, "tele/door/SENSOR", '{"RC522":{"UID":"45C52583","Data":"","Type":"MIFARE 1KB"}}'
    ) == [Scan("tasmota.door", "tasmota", "45C52583")]
    assert route(router, "tele/door/SENSOR", '{"RDM6300":{"UID":"0734e0a1"}}') == [
        Scan("tasmota.door", "tasmota", "0734E0A1")
    ]


def test_serial_bridge_rdm6300_with_a_correct_checksum(router: Router) -> None:
    # 01^02^03^04^FA = FE
    assert route(router, "tele/sonoff-rfid-1/RESULT", '{"SSerialReceived":"01020304FAFE"}') == [
        Scan("tasmota.sonoff-rfid-1", "tasmota", "01020304FA")
    ]


@pytest.mark.parametrize(
    "serial",
    [
        "\u000267003B51C6CB\u0003",  # start and end bytes left in (SerialDelimiter docs warning)
        "\u000267003b51c6cb",
        "67003B51C6CB\r\n",
        "\u000267003B51C6CB\u0003\u000267003B51C6CB\u0003",  # the reader repeats while the card is there
        "02363730303342353143364342" + "03",  # the bridge's binary mode prints bytes as hex
    ],
)
def test_serial_bridge_frame_shapes(router: Router, serial: str) -> None:
    payload = json.dumps({"SSerialReceived": serial})
    assert route(router, "tele/rfid/RESULT", payload) == [Scan("tasmota.rfid", "tasmota", "67003B51C6")]


def test_serial_bridge_clone_with_wrong_checksum_is_never_guessed(router: Router) -> None:
    event = rejected(route(router, "tele/rfid/RESULT", '{"SSerialReceived":"\\u000202004DB005FC\\u0003"}'))
    assert event.reason == "bad_checksum"


def test_serial_bridge_other_data_is_not_a_tag(router: Router) -> None:
    assert route(router, "tele/rfid/RESULT", '{"SSerialReceived":"Hello there"}') == [
        Ignored("tasmota", "tele/rfid/RESULT")
    ]
    assert (
        rejected(route(router, "tele/rfid/RESULT", '{"SSerialReceived":"\\u00026700XX\\u0003"}')).reason
        == "bad_tag"
    )


@pytest.mark.parametrize(
    ("wiegand", "tag"),
    [
        ({"UID": 16770365, "Size": 26}, "W26:16770365"),
        ({"UID": "0xFFE53D", "Size": 26}, "W26:16770365"),
        ({"UID": "16770365", "Size": "26"}, "W26:16770365"),
        ({"UID": 4294967295, "Size": 34}, "W34:4294967295"),
    ],
)
def test_wiegand_tags(router: Router, wiegand: dict[str, object], tag: str) -> None:
    assert route(router, "tele/gate/SENSOR", json.dumps({"Wiegand": wiegand})) == [
        Scan("tasmota.gate", "tasmota", tag)
    ]


def test_wiegand_keypad_press_is_not_a_tag(router: Router) -> None:
    assert route(router, "tele/gate/SENSOR", '{"Wiegand":{"UID":5,"Size":4}}') == [
        Ignored("tasmota", "tele/gate/SENSOR")
    ]


@pytest.mark.parametrize("uid", ['"zz"', "-1", "true", '"0x"'])
def test_wiegand_bad_uid_is_rejected(router: Router, uid: str) -> None:
    payload = f'{{"Wiegand":{{"UID":{uid},"Size":26}}}}'
    assert rejected(route(router, "tele/gate/SENSOR", payload)).reason == "bad_tag"


# -- time ----------------------------------------------------------------------------------------------------
def _local(ts: float, offset_h: float) -> str:
    return (
        datetime.fromtimestamp(ts + offset_h * 3600, UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    )


@pytest.mark.parametrize("offset_h", [0, 2, -5, 5.5, 13])
def test_local_time_without_offset_is_placed_exactly(offset_h: float) -> None:
    router = hub_router()
    payload = json.dumps({"Time": _local(NOW - 3, offset_h), "BH1750": {"Illuminance": 10}})
    assert reading(route(router, "tele/tz/SENSOR", payload), "tasmota.tz").time == NOW - 3
    # a late (retained) message from the same device is placed with the offset learned
    late = json.dumps({"Time": _local(NOW - 7637, offset_h), "BH1750": {"Illuminance": 11}})
    assert reading(route(router, "tele/tz/SENSOR", late), "tasmota.tz").time == NOW - 7637


def test_local_time_of_an_unknown_offset_that_is_not_live_is_read_as_utc(router: Router) -> None:
    payload = json.dumps({"Time": _local(NOW - 7637, 0), "BH1750": {"Illuminance": 11}})
    assert reading(route(router, "tele/tz/SENSOR", payload), "tasmota.tz").time == NOW - 7637


def test_unparseable_time_keeps_the_values(router: Router) -> None:
    events = route(router, "tele/t/SENSOR", '{"Time":"soon","BH1750":{"Illuminance":10}}')
    assert reading(events, "tasmota.t") == Reading("tasmota.t", "tasmota", {"illuminance": 10.0}, None, {})
    assert [e.reason for e in only(events, Rejected)] == ["bad_time"]


def test_unsynced_clock_falls_back_to_arrival(router: Router) -> None:
    payload = '{"Time":"1970-01-01T00:00:12","BH1750":{"Illuminance":10}}'
    assert reading(route(router, "tele/t/SENSOR", payload), "tasmota.t").time is None


# -- malformed -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("tele/x/SENSOR", b'{"Time":"2022-12-06T18:53:52","COUNTER":{"C1":1,"}', "not_json"),
        ("tele/x/SENSOR", b"[1,2]", "not_object"),
        ("tele/x/STATE", b"\xff\xfe", "not_utf8"),
        ("stat/x/RESULT", b"POWER ON", "not_json"),
        ("tele/x/SENSOR", b'{"a":' * 3000 + b"1" + b"}" * 3000, "not_json"),
        ("tasmota/discovery/AA/config", b"{", "not_json"),
        ("tasmota/discovery/AA/sensors", b'{"sn":5}', "bad_discovery"),
    ],
)
def test_malformed_payloads_are_rejected(router: Router, topic: str, payload: bytes, reason: str) -> None:
    assert rejected(router.route(topic, payload, NOW)).reason == reason


def test_retained_clear_on_a_data_topic_is_ignored(router: Router) -> None:
    assert route(router, "tele/x/SENSOR", b"") == [Ignored("tasmota", "tele/x/SENSOR")]


def test_repeated_message_gives_the_same_events(router: Router) -> None:
    payload = case(FILE, 1).payload_bytes()
    first = route(router, f"tele/{DEVICE}/SENSOR", payload)
    assert route(router, f"tele/{DEVICE}/SENSOR", payload) == first


# -- properties ----------------------------------------------------------------------------------------------
_HUB = HubConfig()


def fresh_hub_router() -> Router:
    """``hub_router()`` with the default config validated once, for the many examples of a property."""
    return build_router(_HUB)


KNOWN = (Reading, Availability, Discovery, Scan, Rejected, Ignored)
_level = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/+#\x00"), min_size=1, max_size=12
)
_leaf = (
    st.sampled_from(["SENSOR", "STATE", "LWT", "RESULT", "POWER", "POWER2", "STATUS10", "INFO1", "X"])
    | _level
)
_topics = st.one_of(
    st.builds(lambda p, t, leaf: f"{p}/{t}/{leaf}", st.sampled_from(["tele", "stat", "cmnd"]), _level, _leaf),
    st.builds(
        lambda m, leaf: f"tasmota/discovery/{m}/{leaf}", _level, st.sampled_from(["config", "sensors", "x"])
    ),
)
_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
_sensor_keys = st.sampled_from(
    [
        "Time",
        "TempUnit",
        "BME280",
        "DS18B20-1",
        "ENERGY",
        "PN532",
        "Wiegand",
        "SSerialReceived",
        "POWER",
        "Wifi",
        "StatusSNS",
        "StatusSTS",
        "sn",
        "t",
        "ft",
        "tp",
        "rl",
        "fn",
        "state",
        "Id",
        "Temperature",
        "UID",
        "Size",
    ]
)
_payload_objects = st.dictionaries(_sensor_keys | st.text(max_size=8), _json_values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(topic=_topics, payload=st.binary(max_size=200))
def test_any_bytes_on_tasmota_topics_never_raise(topic: str, payload: bytes) -> None:
    events = fresh_hub_router().route(topic, payload, NOW)
    assert events and all(isinstance(e, KNOWN) for e in events)
    assert not [e for e in events if isinstance(e, Rejected) and e.reason == "decoder_error"]


@settings(max_examples=300, deadline=None)
@given(topic=_topics, obj=_payload_objects)
def test_any_json_object_never_raises_and_values_are_canonical(topic: str, obj: dict[str, object]) -> None:
    router = fresh_hub_router()
    events = router.route(topic, json.dumps(obj).encode(), NOW)
    assert events and all(isinstance(e, KNOWN) for e in events)
    assert not [e for e in events if isinstance(e, Rejected) and e.reason == "decoder_error"]
    for event in events:
        if isinstance(event, Reading):
            assert event.source == "tasmota" and event.thing.startswith("tasmota.")
            assert all(isinstance(v, float | bool) for v in event.values.values())
        if isinstance(event, Scan):
            assert event.tag == event.tag.upper()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=5, max_size=5), wrong=st.integers(1, 255))
def test_rdm6300_checksum_decides(data: bytes, wrong: int) -> None:
    check = 0
    for byte in data:
        check ^= byte
    router = Router([TasmotaDecoder()])
    good = json.dumps({"SSerialReceived": f"\u0002{data.hex()}{check:02x}\u0003"}).encode()
    assert router.route("tele/r/RESULT", good, NOW) == [Scan("tasmota.r", "tasmota", data.hex().upper())]
    bad = json.dumps({"SSerialReceived": f"{data.hex()}{check ^ wrong:02X}"}).encode()
    [event] = router.route("tele/r/RESULT", bad, NOW)
    assert isinstance(event, Rejected) and event.reason == "bad_checksum"


@settings(max_examples=100, deadline=None)
@given(temps=st.lists(st.integers(-500, 1000), min_size=1, max_size=6, unique=True), order=st.randoms())
def test_renumbering_never_moves_a_reading(temps: list[int], order: object) -> None:
    sensors = [(f"{i:012X}", t / 10) for i, t in enumerate(temps)]
    shuffled = list(sensors)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    router = Router([TasmotaDecoder()])

    def things(pairs: list[tuple[str, float]]) -> dict[str, dict[str, object]]:
        payload = {f"DS18B20-{n}": {"Id": ident, "Temperature": t} for n, (ident, t) in enumerate(pairs, 1)}
        events = router.route("tele/tank/SENSOR", json.dumps(payload).encode(), NOW)
        return {e.thing: e.values for e in events if isinstance(e, Reading)}

    assert (
        things(sensors) == things(shuffled) == {f"tasmota.tank.{i}": {"temperature": t} for i, t in sensors}
    )


@settings(max_examples=100, deadline=None)
@given(config=_payload_objects, snapshot=_payload_objects, telemetry=_payload_objects)
def test_any_discovery_sequence_never_raises(
    config: dict[str, object], snapshot: dict[str, object], telemetry: dict[str, object]
) -> None:
    router = fresh_hub_router()
    steps = [
        ("tasmota/discovery/AABBCC000009/sensors", json.dumps({"sn": snapshot})),
        ("tasmota/discovery/AABBCC000009/config", json.dumps({**config, "t": "dev"})),
        ("tele/dev/SENSOR", json.dumps(telemetry)),
        ("tele/dev/LWT", "Offline"),
        ("tasmota/discovery/AABBCC000009/config", ""),
    ]
    for topic, payload in steps:
        events = router.route(topic, payload.encode(), NOW)
        assert events and all(isinstance(e, KNOWN) for e in events)
        assert not [e for e in events if isinstance(e, Rejected) and e.reason == "decoder_error"]
