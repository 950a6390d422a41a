"""Home Assistant MQTT discovery: configs under the discovery prefix, and the state and availability topics
they name.

A config (``<prefix>/<component>/[<node_id>/]<object_id>/config``, or ``<prefix>/device/<object_id>/config``
with a ``cmps`` map) is validated at the edge: abbreviations expanded, ``~`` applied, types coerced, its
value template compiled once in a sandbox and its entity mapped to a canonical measurement. The decoder
then follows the state and availability topics the config names: a message there is one dict lookup,
one template render per entity and the unit conversion, and all entities of one device that share the
topic land in one reading.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from jinja2 import Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hub.domain.events import Availability, Discovery, Event, Ignored, Rejected
from hub.domain.ha_entities import BINARY_CLASSES, SENSOR_CLASSES, UNIT_MEASUREMENTS
from hub.domain.units import NO_VALUE, UnitError, convert, normalize_unit, parse_bool, parse_number
from hub.ingest.decoder import PayloadError, Subscription, Values, decode_json_object, decode_text, thing_id

# -- abbreviations (Home Assistant's table) --------------------------------------------------------------

# fmt: off
ABBREVIATIONS: Final[dict[str, str]] = {
    "act_t": "action_topic", "act_tpl": "action_template", "atype": "automation_type",
    "aux_cmd_t": "aux_command_topic", "aux_stat_tpl": "aux_state_template", "aux_stat_t": "aux_state_topic",
    "av_tones": "available_tones", "avty": "availability", "avty_mode": "availability_mode",
    "avty_t": "availability_topic", "avty_tpl": "availability_template",
    "away_mode_cmd_t": "away_mode_command_topic", "away_mode_stat_tpl": "away_mode_state_template",
    "away_mode_stat_t": "away_mode_state_topic", "b_tpl": "blue_template",
    "bri_cmd_tpl": "brightness_command_template", "bri_cmd_t": "brightness_command_topic",
    "bri_scl": "brightness_scale", "bri_stat_t": "brightness_state_topic", "bri_tpl": "brightness_template",
    "bri_val_tpl": "brightness_value_template", "bat_lev_t": "battery_level_topic",
    "bat_lev_tpl": "battery_level_template", "chrg_t": "charging_topic", "chrg_tpl": "charging_template",
    "clr_temp_cmd_tpl": "color_temp_command_template", "clrm": "color_mode",
    "clrm_stat_t": "color_mode_state_topic", "clrm_val_tpl": "color_mode_value_template",
    "clr_temp_cmd_t": "color_temp_command_topic", "clr_temp_stat_t": "color_temp_state_topic",
    "clr_temp_tpl": "color_temp_template", "clr_temp_val_tpl": "color_temp_value_template",
    "cln_t": "cleaning_topic", "cln_tpl": "cleaning_template", "cmd_off_tpl": "command_off_template",
    "cmd_on_tpl": "command_on_template", "cmd_t": "command_topic", "cmd_tpl": "command_template",
    "cmps": "components", "cod_arm_req": "code_arm_required", "cod_dis_req": "code_disarm_required",
    "cod_trig_req": "code_trigger_required", "cont_type": "content_type",
    "curr_temp_t": "current_temperature_topic", "curr_temp_tpl": "current_temperature_template",
    "curr_hum_t": "current_humidity_topic", "curr_hum_tpl": "current_humidity_template",
    "dev": "device", "dev_cla": "device_class", "dir_cmd_t": "direction_command_topic",
    "dir_cmd_tpl": "direction_command_template", "dir_stat_t": "direction_state_topic",
    "dir_val_tpl": "direction_value_template", "dock_t": "docked_topic", "dock_tpl": "docked_template",
    "sug_dsp_prc": "suggested_display_precision",
    "e": "encoding", "en": "enabled_by_default", "ent_cat": "entity_category",
    "ent_pic": "entity_picture", "err_t": "error_topic", "err_tpl": "error_template",
    "evt_typ": "event_types", "fanspd_t": "fan_speed_topic", "fanspd_tpl": "fan_speed_template",
    "fanspd_lst": "fan_speed_list", "flsh_tlng": "flash_time_long", "flsh_tsht": "flash_time_short",
    "fx_cmd_tpl": "effect_command_template", "fx_cmd_t": "effect_command_topic", "fx_list": "effect_list",
    "fx_stat_t": "effect_state_topic", "fx_tpl": "effect_template", "fx_val_tpl": "effect_value_template",
    "exp_aft": "expire_after", "fan_mode_cmd_tpl": "fan_mode_command_template",
    "fan_mode_cmd_t": "fan_mode_command_topic", "fan_mode_stat_tpl": "fan_mode_state_template",
    "fan_mode_stat_t": "fan_mode_state_topic", "frc_upd": "force_update", "g_tpl": "green_template",
    "hs_cmd_t": "hs_command_topic", "hs_cmd_tpl": "hs_command_template", "hs_stat_t": "hs_state_topic",
    "hs_val_tpl": "hs_value_template", "ic": "icon", "img_e": "image_encoding", "img_t": "image_topic",
    "img_u": "image_url", "init": "initial", "hum_cmd_t": "target_humidity_command_topic",
    "hum_cmd_tpl": "target_humidity_command_template", "hum_stat_t": "target_humidity_state_topic",
    "hum_stat_tpl": "target_humidity_state_template", "json_attr": "json_attributes",
    "json_attr_t": "json_attributes_topic", "json_attr_tpl": "json_attributes_template",
    "l_ver_t": "latest_version_topic", "l_ver_tpl": "latest_version_template",
    "lrst_t": "last_reset_topic", "lrst_val_tpl": "last_reset_value_template", "max": "max", "min": "min",
    "max_hum": "max_humidity", "min_hum": "min_humidity", "max_mirs": "max_mireds", "min_mirs": "min_mireds",
    "max_kltn": "max_kelvin", "min_kltn": "min_kelvin", "max_temp": "max_temp", "min_temp": "min_temp",
    "migr_discvry": "migrate_discovery", "mode": "mode", "mode_cmd_tpl": "mode_command_template",
    "mode_cmd_t": "mode_command_topic", "mode_stat_t": "mode_state_topic",
    "mode_stat_tpl": "mode_state_template", "modes": "modes", "name": "name", "o": "origin",
    "obj_id": "object_id", "off_dly": "off_delay", "on_cmd_type": "on_command_type", "ops": "options",
    "opt": "optimistic", "osc_cmd_t": "oscillation_command_topic",
    "osc_cmd_tpl": "oscillation_command_template", "osc_stat_t": "oscillation_state_topic",
    "osc_val_tpl": "oscillation_value_template", "p": "platform", "pct_cmd_t": "percentage_command_topic",
    "pct_cmd_tpl": "percentage_command_template", "pct_stat_t": "percentage_state_topic",
    "pct_val_tpl": "percentage_value_template", "pl": "payload", "pl_arm_away": "payload_arm_away",
    "pl_arm_home": "payload_arm_home", "pl_arm_nite": "payload_arm_night",
    "pl_arm_vacation": "payload_arm_vacation", "pl_arm_custom_b": "payload_arm_custom_bypass",
    "pl_avail": "payload_available", "pl_cln_sp": "payload_clean_spot", "pl_cls": "payload_close",
    "pl_disarm": "payload_disarm", "pl_dir_fwd": "payload_direction_forward",
    "pl_dir_rev": "payload_direction_reverse", "pl_home": "payload_home", "pl_inst": "payload_install",
    "pl_lock": "payload_lock", "pl_loc": "payload_locate", "pl_not_avail": "payload_not_available",
    "pl_not_home": "payload_not_home", "pl_off": "payload_off", "pl_on": "payload_on",
    "pl_open": "payload_open", "pl_osc_off": "payload_oscillation_off",
    "pl_osc_on": "payload_oscillation_on", "pl_paus": "payload_pause", "pl_prs": "payload_press",
    "pl_rst": "payload_reset", "pl_rst_hum": "payload_reset_humidity", "pl_rst_mode": "payload_reset_mode",
    "pl_rst_pct": "payload_reset_percentage", "pl_rst_pr_mode": "payload_reset_preset_mode",
    "pl_stop": "payload_stop", "pl_stop_tilt": "payload_stop_tilt", "pl_strt": "payload_start",
    "pl_stpa": "payload_start_pause", "pl_ret": "payload_return_to_base", "pl_toff": "payload_turn_off",
    "pl_ton": "payload_turn_on", "pl_trig": "payload_trigger", "pl_unlk": "payload_unlock",
    "pos": "reports_position", "pos_clsd": "position_closed", "pos_open": "position_open",
    "pow_cmd_t": "power_command_topic", "pow_cmd_tpl": "power_command_template",
    "pr_mode_cmd_t": "preset_mode_command_topic", "pr_mode_cmd_tpl": "preset_mode_command_template",
    "pr_mode_stat_t": "preset_mode_state_topic", "pr_mode_val_tpl": "preset_mode_value_template",
    "pr_modes": "preset_modes", "ptrn": "pattern", "r_tpl": "red_template", "rel_s": "release_summary",
    "rel_u": "release_url", "ret": "retain", "rgb_cmd_tpl": "rgb_command_template",
    "rgb_cmd_t": "rgb_command_topic", "rgb_stat_t": "rgb_state_topic", "rgb_val_tpl": "rgb_value_template",
    "rgbw_cmd_tpl": "rgbw_command_template", "rgbw_cmd_t": "rgbw_command_topic",
    "rgbw_stat_t": "rgbw_state_topic", "rgbw_val_tpl": "rgbw_value_template",
    "rgbww_cmd_tpl": "rgbww_command_template", "rgbww_cmd_t": "rgbww_command_topic",
    "rgbww_stat_t": "rgbww_state_topic", "rgbww_val_tpl": "rgbww_value_template",
    "send_cmd_t": "send_command_topic", "send_if_off": "send_if_off",
    "set_fan_spd_t": "set_fan_speed_topic", "set_pos_tpl": "set_position_template",
    "set_pos_t": "set_position_topic", "pos_t": "position_topic", "pos_tpl": "position_template",
    "spd_rng_min": "speed_range_min", "spd_rng_max": "speed_range_max", "src_type": "source_type",
    "stat_cla": "state_class", "stat_clsd": "state_closed", "stat_closing": "state_closing",
    "stat_jam": "state_jammed", "stat_locked": "state_locked", "stat_locking": "state_locking",
    "stat_off": "state_off", "stat_on": "state_on", "stat_open": "state_open",
    "stat_opening": "state_opening", "stat_stopped": "state_stopped", "stat_unlocked": "state_unlocked",
    "stat_unlocking": "state_unlocking", "stat_t": "state_topic", "stat_tpl": "state_template",
    "stat_val_tpl": "state_value_template", "step": "step", "stype": "subtype",
    "sup_clrm": "supported_color_modes", "sup_dur": "support_duration", "sup_feat": "supported_features",
    "sup_vol": "support_volume_set", "swing_mode_cmd_tpl": "swing_mode_command_template",
    "swing_mode_cmd_t": "swing_mode_command_topic", "swing_mode_stat_tpl": "swing_mode_state_template",
    "swing_mode_stat_t": "swing_mode_state_topic", "t": "topic",
    "temp_cmd_tpl": "temperature_command_template", "temp_cmd_t": "temperature_command_topic",
    "temp_hi_cmd_tpl": "temperature_high_command_template",
    "temp_hi_cmd_t": "temperature_high_command_topic",
    "temp_hi_stat_tpl": "temperature_high_state_template", "temp_hi_stat_t": "temperature_high_state_topic",
    "temp_lo_cmd_tpl": "temperature_low_command_template", "temp_lo_cmd_t": "temperature_low_command_topic",
    "temp_lo_stat_tpl": "temperature_low_state_template", "temp_lo_stat_t": "temperature_low_state_topic",
    "temp_stat_tpl": "temperature_state_template", "temp_stat_t": "temperature_state_topic",
    "temp_unit": "temperature_unit", "tilt_clsd_val": "tilt_closed_value", "tilt_cmd_t": "tilt_command_topic",
    "tilt_cmd_tpl": "tilt_command_template", "tilt_inv_stat": "tilt_invert_state", "tilt_max": "tilt_max",
    "tilt_min": "tilt_min", "tilt_opnd_val": "tilt_opened_value", "tilt_opt": "tilt_optimistic",
    "tilt_status_t": "tilt_status_topic", "tilt_status_tpl": "tilt_status_template",
    "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement", "url_t": "url_topic",
    "url_tpl": "url_template", "val_tpl": "value_template", "whit_cmd_t": "white_command_topic",
    "whit_scl": "white_scale", "xy_cmd_t": "xy_command_topic", "xy_cmd_tpl": "xy_command_template",
    "xy_stat_t": "xy_state_topic", "xy_val_tpl": "xy_value_template",
}
DEVICE_ABBREVIATIONS: Final[dict[str, str]] = {
    "cns": "connections", "cu": "configuration_url", "ids": "identifiers", "name": "name",
    "mf": "manufacturer", "mdl": "model", "mdl_id": "model_id", "hw": "hw_version", "sw": "sw_version",
    "sa": "suggested_area", "sn": "serial_number", "via_device": "via_device",
}
ORIGIN_ABBREVIATIONS: Final[dict[str, str]] = {"name": "name", "sw": "sw_version", "url": "support_url"}
# fmt: on

#: Options a device-based config may hold at its root for all of its components.
_SHARED_OPTIONS: Final = (
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "command_topic",
    "encoding",
    "payload_available",
    "payload_not_available",
    "qos",
    "state_topic",
)

# -- what an entity means ---------------------------------------------------------------------------------

_SENSOR_CLASSES: Final = SENSOR_CLASSES
#: binary_sensor device class → (canonical name, canonical = NOT on). A device's presence sensor is a
#: place's occupancy here; only a resident's own Home Assistant refuses it as personal (ha_entities).
_BINARY_CLASSES: Final[dict[str, tuple[str, bool]]] = {**BINARY_CLASSES, "presence": ("occupancy", False)}
#: A device class that names a quantity only in one unit: signal strength is rssi only in dBm.
_REQUIRED_UNIT: Final[dict[str, str]] = {"signal_strength": "dBm"}
#: Firmwares that put power's class on an energy counter (Tasmota's kWh ``power``): the unit decides.
_SIBLING: Final[dict[str, str]] = {"power": "energy", "energy": "power"}

_UNIT_MEASUREMENT: Final = UNIT_MEASUREMENTS
#: Words that say a ppm sensor measures some other gas than CO2.
_OTHER_GASES: Final = frozenset(
    {"co", "monoxide", "voc", "tvoc", "hcho", "formaldehyde", "ozone", "o3", "no2", "nh3", "ch4", "methane",
     "lpg", "gas", "h2s", "alcohol", "ethanol"}
)  # fmt: skip
_SENSOR_WORDS: Final[dict[str, str]] = {
    "temperature": "temperature",
    "temp": "temperature",
    "humidity": "humidity",
    "pressure": "pressure",
    "pm1": "pm1",
    "pm25": "pm25",
    "pm10": "pm10",
    "co2": "co2",
    "eco2": "co2",
    "voc": "voc",
    "tvoc": "voc",
    "illuminance": "illuminance",
    "lux": "illuminance",
    "noise": "noise",
    "battery": "battery",
    "voltage": "voltage",
    "current": "current",
    "power": "power",
    "energy": "energy",
    "rssi": "rssi",
    "linkquality": "linkquality",
    "lqi": "linkquality",
}
_BINARY_WORDS: Final[dict[str, tuple[str, bool]]] = {
    "motion": ("occupancy", False),
    "occupancy": ("occupancy", False),
    "presence": ("occupancy", False),
    "pir": ("occupancy", False),
    "leak": ("water_leak", False),
    "flood": ("water_leak", False),
    "contact": ("contact", True),
    "door": ("contact", True),
    "window": ("contact", True),
    "smoke": ("smoke", False),
    "tamper": ("tamper", False),
}
#: Words that make a name mean something else than the quantity it mentions (a power factor, a set point).
_NOT_A_MEASUREMENT: Final = frozenset(
    {"factor", "apparent", "reactive", "target", "setpoint", "set", "threshold", "offset", "calibration",
     "limit", "alarm", "min", "max", "average", "avg", "mean", "low", "high"}
)  # fmt: skip
#: Words that make a binary sensor's name mean something else than the state it mentions.
_NOT_A_STATE: Final = frozenset({"battery", "low", "fault", "problem", "test", "indicator", "led", "enable"})
#: Words that make an entity the second choice when two of one device measure the same quantity: a
#: chip's own temperature, a daily energy counter.
_SECONDARY: Final = frozenset(
    {"internal", "chip", "cpu", "core", "processor", "board", "soc", "mcu", "esp", "esp32", "esp8266",
     "system", "wifi", "today", "yesterday", "daily", "day", "week", "weekly", "month", "monthly", "year",
     "yearly", "last", "period"}
)  # fmt: skip

#: Components whose every message is about where a person is.
_PERSONAL_COMPONENTS: Final = frozenset({"device_tracker", "person"})
_LOCATION_WORDS: Final = frozenset(
    {"latitude", "longitude", "lat", "lon", "lng", "gps", "geolocation", "coordinates", "geohash"}
)
_LOCATION_IN_TEMPLATE: Final = re.compile(r"latitude|longitude|\bgps|\blat\b|\blon\b|\blng\b", re.IGNORECASE)
_PERSONAL_TOPIC_ROOTS: Final = frozenset({"owntracks"})

_ID: Final = re.compile(r"[A-Za-z0-9_-]+")
_COMPONENT: Final = re.compile(r"[A-Za-z0-9_]+")
_WORD: Final = re.compile(r"[a-z0-9]+")
_PM25: Final = re.compile(r"pm[\s_]*2[\s._,]?5")
_PM1: Final = re.compile(r"pm[\s_]*1[\s._,]0|pm[\s_]*1(?![\d\s._,]*\d)")
_PM10: Final = re.compile(r"pm[\s_]*10(?!\d)")
_ESPHOME_MAC_ID: Final = re.compile(r"[0-9a-f]{12}-([a-z_]+)-[0-9a-f]{8}")

_MAX_TEMPLATE_CHARS: Final = 4096
_MAX_AVAILABILITY: Final = 16
_MAX_COMPONENTS: Final = 512
_MAX_PERSONAL_TOPICS: Final = 4096

# -- value templates ---------------------------------------------------------------------------------------

_MISSING: Final = object()
_NOT_JSON: Final = object()
#: Largest sequence a template may build by repetition, and the widest format field it may ask for.
_MAX_BUILT: Final = 100_000
_WIDE_PERCENT: Final = re.compile(r"%[^a-zA-Z%]*\d{4,}")
_WIDE_BRACE: Final = re.compile(r"\{[^}]*\d{4,}[^}]*\}")


def _no_default(name: str, value: Any) -> Any:
    raise ValueError(f"{name} got invalid input {value!r:.40} and no default was given")


_CONVERSION_ERRORS: Final = (TypeError, ValueError, OverflowError, UndefinedError)


def _t_float(value: Any, default: Any = _MISSING) -> Any:
    try:
        return float(value)
    except _CONVERSION_ERRORS:
        return _no_default("float", value) if default is _MISSING else default


def _t_int(value: Any, default: Any = _MISSING, base: int = 10) -> Any:
    try:
        if isinstance(value, str):
            try:
                return int(value.strip(), base)
            except ValueError:
                return int(float(value))
        return int(value)
    except _CONVERSION_ERRORS:
        return _no_default("int", value) if default is _MISSING else default


def _t_round(value: Any, precision: int = 0, method: str = "common", default: Any = _MISSING) -> Any:
    try:
        number = float(value)
        if not isinstance(precision, int) or not -20 <= precision <= 20:
            raise ValueError(f"precision {precision!r:.20} is out of range")
        if method == "ceil":
            result = math.ceil(number * 10**precision) / 10**precision
        elif method == "floor":
            result = math.floor(number * 10**precision) / 10**precision
        elif method == "half":
            result = round(number * 2) / 2
        else:
            result = round(number, precision)
        return int(result) if precision == 0 else result
    except _CONVERSION_ERRORS:
        return _no_default("round", value) if default is _MISSING else default


def _t_bool(value: Any, default: Any = _MISSING) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, str):
        key = value.strip().lower()
        if key in ("1", "true", "yes", "on", "enable"):
            return True
        if key in ("0", "false", "no", "off", "disable"):
            return False
    return _no_default("bool", value) if default is _MISSING else default


def _t_is_defined(value: Any) -> Any:
    if isinstance(value, Undefined):
        raise ValueError("is_defined: the value is undefined")
    return value


def _t_iif(value: Any, if_true: Any = True, if_false: Any = False, if_none: Any = _MISSING) -> Any:
    if value is None and if_none is not _MISSING:
        return if_none
    return if_true if value else if_false


def _t_is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except _CONVERSION_ERRORS:
        return False


def _extremes(pick: Callable[..., Any]) -> Callable[..., Any]:
    def choose(*args: Any, **kwargs: Any) -> Any:
        return pick(args[0] if len(args) == 1 else args, **kwargs)

    return choose


def _t_replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text, old, new = str(value), str(old), str(new)
    hits = (len(text) + 1 if not old else text.count(old)) if count is None else min(count, len(text) + 1)
    if len(text) + hits * max(0, len(new) - len(old)) > _MAX_BUILT:
        raise SecurityError("replace would build a string longer than a template may")
    return text.replace(old, new, -1 if count is None else count)


def _t_format(value: Any, *args: Any, **kwargs: Any) -> str:
    text = str(value)
    if _WIDE_PERCENT.search(text):
        raise SecurityError("format width or precision too large")
    return text % (kwargs or args)


def _t_range(*args: Any) -> range:
    span = range(*args)
    if len(span) > 1000:
        raise SecurityError("range longer than 1000 in a value template")
    return span


_SAFE_BUILTIN_FILTERS: Final = (
    "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "items", "join",
    "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "reverse", "select",
    "selectattr", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique",
    "upper", "wordcount",
)  # fmt: skip


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, also bounded in what a published template can make the hub compute."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > _MAX_BUILT
                ):
                    raise SecurityError("repetition builds a sequence longer than a template may")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > 65536:
                raise SecurityError("exponent too large in a value template")
        elif operator == "%" and isinstance(left, str) and _WIDE_PERCENT.search(left):
            raise SecurityError("format width or precision too large")
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and _WIDE_BRACE.search(value.__self__):

            def refuse(*args: Any, **kwargs: Any) -> str:
                raise SecurityError("format width or precision too large")

            return refuse
        return wrapped


def _environment() -> _Sandbox:
    env = _Sandbox(autoescape=False)
    env.filters = {name: FILTERS[name] for name in _SAFE_BUILTIN_FILTERS}
    helpers: dict[str, Callable[..., Any]] = {
        "float": _t_float,
        "int": _t_int,
        "round": _t_round,
        "bool": _t_bool,
        "iif": _t_iif,
        "is_number": _t_is_number,
        "min": _extremes(min),
        "max": _extremes(max),
        "abs": abs,
    }
    env.filters.update({k: v for k, v in helpers.items() if k not in ("min", "max")})
    env.filters.update(
        {
            "is_defined": _t_is_defined,
            "replace": _t_replace,
            "format": _t_format,
            "from_json": json.loads,
            "to_json": json.dumps,
        }
    )
    env.tests["is_number"] = _t_is_number
    # Functions reach templates with each render's variables: an empty ``globals`` spares Jinja merging
    # them into every context, a third of a short template's render time.
    env.globals = {}
    _FUNCTIONS.update(helpers)
    _FUNCTIONS.update({"range": _t_range, "from_json": json.loads, "to_json": json.dumps})
    return env


_FUNCTIONS: Final[dict[str, Any]] = {}
_ENV: Final = _environment()
#: ``{{ value }}`` and ``{{ value_json.a['b-c'][0] }}``: evaluated without Jinja (the common case).
_SIMPLE_TEMPLATE: Final = re.compile(
    r"\s*\{\{-?\s*(value_json(?:\s*\.\s*[A-Za-z_]\w*|\s*\[\s*'[^'\\]*'\s*\]|\s*\[\s*\"[^\"\\]*\"\s*\]"
    r"|\s*\[\s*-?\d+\s*\])*|value)\s*-?\}\}\s*"
)
_PATH_STEP: Final = re.compile(
    r"\.\s*([A-Za-z_]\w*)|\[\s*'([^'\\]*)'\s*\]|\[\s*\"([^\"\\]*)\"\s*\]|\[\s*(-?\d+)\s*\]"
)
_DICT_ATTRIBUTES: Final = frozenset(dir(dict))


class _Template:
    """A value template compiled once; ``render`` never compiles."""

    __slots__ = ("compiled", "path", "source", "uses_json")

    def __init__(self, source: str) -> None:
        self.source = source
        self.uses_json = "value_json" in source
        self.path = _simple_path(source)
        ast = _ENV.parse(source)
        _check_bounded(ast)
        self.compiled = _ENV.from_string(ast)

    def render(self, text: str, data: Any) -> Any:
        """The template's result: a JSON scalar on the fast path, else the rendered, stripped text."""
        path = self.path
        if path is not None:
            if not path:
                return text
            if data is not _NOT_JSON:
                found = _walk(data, path)
                if found is not _MISSING:
                    return found
        if data is _NOT_JSON:
            return self.compiled.render({**_FUNCTIONS, "value": text}).strip()
        return self.compiled.render({**_FUNCTIONS, "value": text, "value_json": data}).strip()


def _simple_path(source: str) -> tuple[str | int, ...] | None:
    match = _SIMPLE_TEMPLATE.fullmatch(source)
    if match is None:
        return None
    expr = match.group(1)
    if expr == "value":
        return ()
    steps: list[str | int] = []
    for attr, single, double, index in _PATH_STEP.findall(expr[len("value_json") :]):
        if attr:
            if attr in _DICT_ATTRIBUTES:  # value_json.items is the dict's method in Jinja
                return None
            steps.append(attr)
        elif index:
            steps.append(int(index))
        else:
            steps.append(single or double)
    return ("json", *steps)


def _walk(data: Any, path: tuple[str | int, ...]) -> Any:
    """Follow a simple path as Jinja would; ``_MISSING`` hands the case to Jinja (which reports it)."""
    node = data
    last = len(path) - 1
    for i, step in enumerate(path[1:], 1):
        if isinstance(node, dict):
            nxt = node.get(step, _MISSING) if isinstance(step, str) else _MISSING
        elif isinstance(node, list) and isinstance(step, int):
            nxt = node[step] if -len(node) <= step < len(node) else _MISSING
        else:
            return _MISSING
        if nxt is _MISSING:
            return "" if i == last else _MISSING  # an undefined leaf renders as ""
        node = nxt
    return _MISSING if isinstance(node, dict | list) else node


def _check_bounded(ast: nodes.Template) -> None:
    """Refuse what could make one message cost unbounded time: macros, nested or recursive loops."""
    if any(True for _ in ast.find_all((nodes.Macro, nodes.CallBlock))):
        raise TemplateError("macros are not allowed in a value template")
    for loop in ast.find_all(nodes.For):
        if loop.recursive or any(True for _ in loop.find_all(nodes.For)):
            raise TemplateError("nested or recursive loops are not allowed in a value template")


# -- config parsing ----------------------------------------------------------------------------------------


def _expand(raw: dict[str, Any]) -> dict[str, Any]:
    """Abbreviations replaced by full keys (a full key already present wins)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        full = ABBREVIATIONS.get(key, key)
        if full not in out or full == key:
            out[full] = value
    for key, table in (("device", DEVICE_ABBREVIATIONS), ("origin", ORIGIN_ABBREVIATIONS)):
        block = out.get(key)
        if isinstance(block, dict):
            out[key] = {table.get(k, k): v for k, v in block.items()}
    entries = out.get("availability")
    if isinstance(entries, list):
        out["availability"] = [
            {ABBREVIATIONS.get(k, k): v for k, v in e.items()} if isinstance(e, dict) else e for e in entries
        ]
    return out


def _apply_base(config: dict[str, Any], base: Any) -> None:
    """``~`` at the start or end of a ``*topic`` value stands for the base topic."""
    if not isinstance(base, str) or not base:
        return

    def expand(value: Any) -> Any:
        if isinstance(value, str) and value:
            if value[0] == "~":
                value = base + value[1:]
            if value and value[-1] == "~":
                value = value[:-1] + base
        return value

    for key, value in config.items():
        if key.endswith("topic"):
            config[key] = expand(value)
    entries = config.get("availability")
    if isinstance(entries, list):  # copied: a device config's components share its root list
        config["availability"] = [
            {**e, "topic": expand(e["topic"])} if isinstance(e, dict) and "topic" in e else e for e in entries
        ]


def _text(config: dict[str, Any], key: str) -> str | None:
    """A text option; numbers are accepted as their text, anything else is a bad config."""
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise PayloadError("bad_config", f"{key}: expected text, got {type(value).__name__}")


def _payload_text(value: Any, key: str) -> str | None:
    """A payload option as Home Assistant compares it: text, with JSON true/false as ``True``/``False``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise PayloadError("bad_config", f"{key}: expected text, got {type(value).__name__}")


def _coerce_int(value: Any) -> int | None:
    """``"expire_after": "1"`` as 1; None for anything that is no whole number."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, str | int | float) else math.nan
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number == int(number) else None


def _coerce_bool(value: Any) -> bool | None:
    """``"force_update": "true"`` as True; None for anything that is no boolean."""
    try:
        return parse_bool(value)
    except UnitError:
        return None


def _words(*texts: str | None) -> frozenset[str]:
    joined = " ".join(t for t in texts if t).lower()
    joined = _PM10.sub(" pm10 ", _PM1.sub(" pm1 ", _PM25.sub(" pm25 ", joined)))
    return frozenset(_WORD.findall(joined.replace("_", " ")))


def _unit_fits(name: str, unit: str | None) -> bool:
    try:
        convert(name, 1.0, unit)
    except UnitError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Meaning:
    measurement: str | None = None
    invert: bool = False
    unit_ok: bool = True
    explicit: bool = False


def _sensor_meaning(device_class: str | None, unit: str | None, words: frozenset[str]) -> _Meaning:
    if device_class is not None:
        name = _SENSOR_CLASSES.get(device_class)
        required = _REQUIRED_UNIT.get(device_class)
        if name is None or (required is not None and normalize_unit(unit) != required):
            return _Meaning()
        if _unit_fits(name, unit):
            return _Meaning(name, explicit=True)
        sibling = _SIBLING.get(name)
        if sibling is not None and _unit_fits(sibling, unit):
            return _Meaning(sibling, explicit=True)
        return _Meaning(name, unit_ok=False, explicit=True)  # each value is rejected as bad_unit
    if words & _NOT_A_MEASUREMENT:
        return _Meaning()
    symbol = normalize_unit(unit)
    by_unit = _UNIT_MEASUREMENT.get(symbol) if symbol else None
    if by_unit is not None:
        return _Meaning() if by_unit == "co2" and words & _OTHER_GASES else _Meaning(by_unit)
    candidates = {_SENSOR_WORDS[w] for w in words if w in _SENSOR_WORDS}
    fitting = [name for name in candidates if _unit_fits(name, unit)]
    return _Meaning(fitting[0]) if len(fitting) == 1 else _Meaning()


def _binary_meaning(device_class: str | None, words: frozenset[str]) -> _Meaning:
    if device_class is not None:
        found = _BINARY_CLASSES.get(device_class)
        return _Meaning(found[0], found[1], explicit=True) if found else _Meaning()
    if words & _NOT_A_STATE:
        return _Meaning()
    candidates = {_BINARY_WORDS[w] for w in words if w in _BINARY_WORDS}
    if len(candidates) == 1:
        name, invert = candidates.pop()
        return _Meaning(name, invert)
    return _Meaning()


def _valid_topic(topic: str) -> str | None:
    """Why a topic cannot be followed, or None when it can."""
    if not topic or len(topic.encode("utf-8", "surrogatepass")) > 65535 or "\x00" in topic:
        return "is not a valid MQTT topic"
    if "+" in topic or "#" in topic:
        return "is a wildcard filter, not a topic a device publishes to"
    if topic.startswith("$"):
        return "is a broker topic"
    return None


# -- learned entities --------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Watch:
    """One availability source of an entity."""

    topic: str
    on: str
    off: str
    template: _Template | None


@dataclass(slots=True, eq=False)
class _Entity:
    config_topic: str
    component_id: str
    thing: str
    component: str
    path: str
    name: str | None
    kind: str  # "number" | "binary" | "none"
    meaning: _Meaning
    unit: str | None
    state_topic: str | None
    template: _Template | None
    on: str
    off: str
    explicit_payloads: bool
    watches: tuple[_Watch, ...]
    mode: str
    battery: bool
    rank: tuple[int, int, str]
    expire_after: int | None
    on_key: str = ""
    off_key: str = ""
    claimed: bool = False
    seen: list[bool | None] = field(default_factory=list)
    latest: bool | None = None

    def __post_init__(self) -> None:
        self.on_key = self.on.strip().casefold()
        self.off_key = self.off.strip().casefold()
        self.seen = [None] * len(self.watches)

    def topics(self) -> Iterator[str]:
        if self.state_topic is not None:
            yield self.state_topic
        for watch in self.watches:
            yield watch.topic

    def is_on(self, raw: Any) -> bool | None:
        """A binary state by the entity's own payloads, compared as Home Assistant compares them."""
        text = _ha_text(raw)
        if text == self.on:
            return True
        if text == self.off:
            return False
        key = text.strip().casefold()
        if key == self.on_key:
            return True
        if key == self.off_key:
            return False
        if key in NO_VALUE:
            return None
        if not self.explicit_payloads:
            return parse_bool(text)
        raise UnitError("bad_value", f"{text!r:.40} is neither {self.on!r:.20} nor {self.off!r:.20}")

    def available(self) -> bool:
        if self.mode == "all":
            return all(self.seen)
        if self.mode == "any":
            return any(self.seen)
        return bool(self.latest)


@dataclass(slots=True, eq=False)
class _Device:
    thing: str
    name: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    sw_version: str | None = None
    identifiers: tuple[str, ...] = ()
    origin: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    entities: dict[tuple[str, str], _Entity] = field(default_factory=dict)


def _ha_text(raw: Any) -> str:
    """A template result as text the way Jinja would render it."""
    return raw if isinstance(raw, str) else str(raw)


def _scalar(raw: Any) -> float | bool | None:
    """An unmapped value worth listing: a number or a boolean; text is not a value."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    try:
        return parse_number(raw)
    except UnitError:
        return None


class _Message:
    """One state message, decoded at most once however many entities read it."""

    __slots__ = ("_json", "_text", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._text: str | None = None
        self._json: Any = _MISSING

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = decode_text(self.payload)
        return self._text

    @property
    def data(self) -> Any:
        if self._json is _MISSING:
            try:
                self._json = json.loads(self.text, parse_constant=_not_a_json_constant)
            except (ValueError, RecursionError):
                self._json = _NOT_JSON
        return self._json

    def render(self, template: _Template | None) -> Any:
        if template is None:
            return self.text
        return template.render(self.text, self.data if template.uses_json else _NOT_JSON)


def _not_a_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# -- the decoder -------------------------------------------------------------------------------------------


class HomeAssistantDecoder:
    """Discovery configs under the prefix; then the state and availability topics they named."""

    name = "homeassistant"

    def __init__(self, discovery_prefix: str = "homeassistant", max_topics: int = 10000) -> None:
        self.prefix = discovery_prefix.strip("/")
        self._under = self.prefix + "/"
        self.max_topics = max_topics
        self.max_entities = 4 * max_topics
        self._configs: dict[str, dict[str, _Entity]] = {}
        self._devices: dict[str, _Device] = {}
        self._state: dict[str, list[_Entity]] = {}
        self._watched: dict[str, list[tuple[_Entity, int]]] = {}
        self._refs: dict[str, int] = {}
        self._personal: set[str] = set()
        self._templates: dict[str, _Template] = {}
        self._entity_count = 0

    def subscriptions(self) -> list[Subscription]:
        return [Subscription(f"{self.prefix}/#", replay=True)]

    def matches(self, topic: str) -> bool:
        return topic.startswith(self._under) or topic in self._refs

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        if topic in self._refs:
            return self._message(topic, payload)
        if topic.startswith(self._under):
            rest = topic[len(self._under) :]
            if rest.endswith("/config"):
                return self._config(topic, rest, payload)
        return [Ignored(self.name, topic)]  # HA's own status, attributes, commands, or a forgotten topic

    # -- configs ----------------------------------------------------------------------------------------
    def _config(self, topic: str, rest: str, payload: bytes) -> list[Event]:
        parts = rest.split("/")
        if len(parts) not in (3, 4) or not _COMPONENT.fullmatch(parts[0]):
            raise PayloadError("bad_topic", f"{topic!r:.80} is not <prefix>/<component>/[<node>/]<id>/config")
        if not all(_ID.fullmatch(p) for p in parts[1:-1]):
            raise PayloadError("bad_topic", f"{topic!r:.80}: node and object ids are [A-Za-z0-9_-]")
        component, object_id = parts[0], parts[-2]
        node_id = parts[1] if len(parts) == 4 else None
        if not payload.strip(b" \t\r\n\x00"):
            return self._forget(topic)
        if component in _PERSONAL_COMPONENTS:
            try:
                tracker = _expand(decode_json_object(payload))
            except PayloadError:
                return [Ignored(self.name, topic)]
            _apply_base(tracker, tracker.pop("~", None))
            self._remember_personal(tracker)
            return [Ignored(self.name, topic)]
        raw = self._json_config(payload)
        if _coerce_bool(raw.get("migrate_discovery", raw.get("migr_discvry"))):
            return [Ignored(self.name, topic)]  # the sender moves to another config topic; keep the entity
        config = _expand(raw)
        problems: list[Event] = []
        if component == "device":
            entities = self._device_config(topic, object_id, config, problems)
        else:
            _apply_base(config, config.pop("~", None))
            entity = self._entity(topic, "", component, node_id, object_id, config, problems)
            entities = {} if entity is None else {"": entity}
        if not entities and topic not in self._configs:
            return problems or [Ignored(self.name, topic)]
        return self._replace(topic, entities, config, problems)

    def _json_config(self, payload: bytes) -> dict[str, Any]:
        try:
            return decode_json_object(payload)
        except PayloadError as exc:
            if exc.reason == "not_json" and payload.lstrip()[:2] in (b"{'", b"['"):
                raise PayloadError("not_json", "config is a Python repr (single quotes), not JSON") from None
            raise

    def _remember_personal(self, config: dict[str, Any]) -> None:
        """A tracker's topics are remembered so no other config can make the hub follow them."""
        for key, value in config.items():
            if (
                key.endswith("topic")
                and isinstance(value, str)
                and len(self._personal) < _MAX_PERSONAL_TOPICS
            ):
                self._personal.add(value)

    def _device_config(
        self, topic: str, object_id: str, config: dict[str, Any], problems: list[Event]
    ) -> dict[str, _Entity]:
        components = config.get("components")
        if not isinstance(components, dict):
            raise PayloadError("bad_config", "a device config needs a cmps (components) object")
        if len(components) > _MAX_COMPONENTS:
            raise PayloadError("bad_config", f"{len(components)} components, at most {_MAX_COMPONENTS}")
        base = config.get("~")
        shared: dict[str, Any] = {k: config[k] for k in _SHARED_OPTIONS if k in config}
        entities: dict[str, _Entity] = {}
        for cid, raw in components.items():
            if not isinstance(raw, dict):
                problems.append(
                    Rejected(self.name, topic, "bad_config", f"component {cid!r:.40} is no object")
                )
                continue
            part = _expand(raw)
            platform = part.get("platform")
            if not isinstance(platform, str) or not _COMPONENT.fullmatch(platform):
                problems.append(Rejected(self.name, topic, "bad_config", f"component {cid!r:.40} has no p"))
                continue
            if len(part) == 1:
                continue  # {"p": ...} alone removes the component
            merged: dict[str, Any] = {**shared, **part}
            merged["device"], merged["origin"] = config.get("device"), config.get("origin")
            _apply_base(merged, merged.pop("~", base))
            try:
                entity = self._entity(topic, str(cid), platform, None, object_id, merged, problems)
            except PayloadError as exc:
                problems.append(
                    Rejected(self.name, topic, exc.reason, f"component {cid!r:.40}: {exc.detail}")
                )
                continue
            if entity is not None:
                entities[str(cid)] = entity
        return entities

    def _entity(
        self,
        topic: str,
        cid: str,
        component: str,
        node_id: str | None,
        object_id: str,
        config: dict[str, Any],
        problems: list[Event],
    ) -> _Entity | None:
        """One entity's config, validated and mapped; None when it is personal data."""
        if component in _PERSONAL_COMPONENTS:
            self._remember_personal(config)
            return None
        path = cid or object_id
        name = _text(config, "name")
        unique_id = _text(config, "unique_id")
        value_source = _text(config, "value_template")
        words = _words(name, path)
        if words & _LOCATION_WORDS or (value_source and _LOCATION_IN_TEMPLATE.search(value_source)):
            return None
        device = _block(config, "device")
        origin = _block(config, "origin")
        device_class = _text(config, "device_class")
        unit = _text(config, "unit_of_measurement")
        binary = component in ("binary_sensor", "switch", "light")
        on = _payload_text(config.get("payload_on"), "payload_on") if binary else None
        off = _payload_text(config.get("payload_off"), "payload_off") if binary else None
        explicit = on is not None or off is not None
        kind, meaning = "none", _Meaning()
        template_source = value_source
        state_key = "state_topic"
        if component == "sensor":
            kind, meaning = "number", _sensor_meaning(device_class, unit, words)
        elif component == "binary_sensor":
            kind, meaning = "binary", _binary_meaning(device_class, words)
        elif component == "switch":
            kind, meaning = "binary", _Meaning("state", explicit=True)
            state_on = _payload_text(config.get("state_on"), "state_on")
            state_off = _payload_text(config.get("state_off"), "state_off")
            explicit = explicit or state_on is not None or state_off is not None
            on, off = state_on or on, state_off or off
        elif component == "light":
            kind, meaning = "binary", _Meaning("state", explicit=True)
            schema = _text(config, "schema") or "basic"
            if schema == "json":
                template_source, on, off, explicit = "{{ value_json.state }}", "ON", "OFF", False
            elif schema == "template":
                template_source, on, off, explicit = _text(config, "state_template"), "on", "off", False
            else:
                template_source = _text(config, "state_value_template")
        state_topic = self._topic(topic, config, state_key, problems) if kind != "none" else None
        template = self._template(template_source) if template_source and state_topic else None
        thing = self._thing(component, node_id, object_id, unique_id, device, origin, config)
        return _Entity(
            config_topic=topic,
            component_id=cid,
            thing=thing,
            component=component,
            path=path,
            name=name,
            kind=kind,
            meaning=meaning,
            unit=unit,
            state_topic=state_topic,
            template=template,
            on=on if on is not None else "ON",
            off=off if off is not None else "OFF",
            explicit_payloads=explicit,
            watches=self._watches(topic, config, problems),
            mode=_availability_mode(config.get("availability_mode")),
            battery=device_class == "battery",
            rank=(0 if meaning.explicit else 1, len(words & _SECONDARY), path),
            expire_after=_coerce_int(config.get("expire_after")),
        )

    def _topic(
        self, config_topic: str, config: dict[str, Any], key: str, problems: list[Event]
    ) -> str | None:
        value = _text(config, key)
        if value is None:
            return None
        why = _valid_topic(value)
        if why is None and (value in self._personal or value.split("/", 1)[0] in _PERSONAL_TOPIC_ROOTS):
            why = "carries a person's location"
        if why is None and value.startswith(self._under) and value.endswith("/config"):
            why = "is a discovery config topic"
        if why is not None:
            problems.append(Rejected(self.name, config_topic, "bad_topic", f"{key} {value!r:.60} {why}"))
            return None
        return value

    def _watches(self, topic: str, config: dict[str, Any], problems: list[Event]) -> tuple[_Watch, ...]:
        entries: list[dict[str, Any]] = []
        if config.get("availability_topic") is not None:
            entries.append(
                {
                    "topic": config.get("availability_topic"),
                    "payload_available": config.get("payload_available"),
                    "payload_not_available": config.get("payload_not_available"),
                    "value_template": config.get("availability_template"),
                }
            )
        listed = config.get("availability")
        if listed is not None:
            if not isinstance(listed, list) or not all(isinstance(e, dict) for e in listed):
                raise PayloadError("bad_config", "availability: expected a list of objects")
            entries.extend(listed)
        watches: list[_Watch] = []
        for entry in entries[:_MAX_AVAILABILITY]:
            watched = self._topic(topic, entry, "topic", problems)
            if watched is None:
                continue
            source = _text(entry, "value_template")
            watches.append(
                _Watch(
                    topic=watched,
                    on=_payload_text(entry.get("payload_available"), "payload_available") or "online",
                    off=_payload_text(entry.get("payload_not_available"), "payload_not_available")
                    or "offline",
                    template=self._template(source) if source else None,
                )
            )
        return tuple(watches)

    def _template(self, source: str) -> _Template:
        found = self._templates.get(source)
        if found is not None:
            return found
        if len(source) > _MAX_TEMPLATE_CHARS:
            raise PayloadError(
                "template_error", f"template of {len(source)} chars, at most {_MAX_TEMPLATE_CHARS}"
            )
        try:
            compiled = _Template(source)
        except TemplateError as exc:
            raise PayloadError("template_error", f"{source!r:.60}: {exc.message or exc}") from None
        if len(self._templates) >= 4096:
            self._templates.clear()
        self._templates[source] = compiled
        return compiled

    def _thing(
        self,
        component: str,
        node_id: str | None,
        object_id: str,
        unique_id: str | None,
        device: dict[str, Any],
        origin: dict[str, Any],
        config: dict[str, Any],
    ) -> str:
        node = node_id or (object_id if component == "device" else None)
        if _is_esphome(component, node_id, object_id, unique_id, device, origin):
            if node is None:
                status = _text(config, "availability_topic") or ""
                if status.endswith("/status"):
                    node = status.removesuffix("/status")
                node = node or _first_identifier(device) or object_id
            return thing_id("esphome", node)
        ident = _first_identifier(device) or _mac(device)
        if ident is None:
            if component == "device":
                ident = object_id
            else:
                ident = unique_id or (f"{node_id}/{object_id}" if node_id else object_id)
        return thing_id(self.name, ident)

    # -- the registry -----------------------------------------------------------------------------------
    def _replace(
        self, topic: str, entities: dict[str, _Entity], config: dict[str, Any], problems: list[Event]
    ) -> list[Event]:
        old = self._configs.get(topic, {})
        for entity in old.values():
            self._unlearn(entity)
        wanted = {t for e in entities.values() for t in e.topics()}
        fresh = len(wanted - self._refs.keys())
        too_many_topics = len(self._refs) + fresh > self.max_topics
        too_many_entities = self._entity_count - len(old) + len(entities) > self.max_entities
        if too_many_topics or too_many_entities:
            for entity in old.values():
                self._learn(entity)
            what = "topics" if too_many_topics else "entities"
            limit = self.max_topics if too_many_topics else self.max_entities
            return [Rejected(self.name, topic, "too_many_topics", f"following it would pass {limit} {what}")]
        for entity in entities.values():
            self._learn(entity)
        if entities:
            self._configs[topic] = entities
        else:
            self._configs.pop(topic, None)
        self._entity_count += len(entities) - len(old)
        touched = self._detach(old.values())
        for entity in entities.values():
            device = self._devices.get(entity.thing)
            if device is None:
                device = self._devices[entity.thing] = _Device(entity.thing)
            device.entities[(entity.config_topic, entity.component_id)] = entity
            touched.setdefault(entity.thing, device)
        for thing in {e.thing for e in entities.values()}:
            _describe(touched[thing], config)
        return [*self._announce(touched.values(), topic), *problems]

    def _forget(self, topic: str) -> list[Event]:
        old = self._configs.pop(topic, None)
        if not old:
            return [Ignored(self.name, topic)]
        for entity in old.values():
            self._unlearn(entity)
        self._entity_count -= len(old)
        return self._announce(self._detach(old.values()).values(), topic)

    def _detach(self, entities: Iterable[_Entity]) -> dict[str, _Device]:
        touched: dict[str, _Device] = {}
        for entity in entities:
            device = self._devices.get(entity.thing)
            if device is not None:
                device.entities.pop((entity.config_topic, entity.component_id), None)
                touched[entity.thing] = device
        return touched

    def _learn(self, entity: _Entity) -> None:
        if entity.state_topic is not None:
            self._state.setdefault(entity.state_topic, []).append(entity)
        for i, watch in enumerate(entity.watches):
            self._watched.setdefault(watch.topic, []).append((entity, i))
        for topic in entity.topics():
            self._refs[topic] = self._refs.get(topic, 0) + 1

    def _unlearn(self, entity: _Entity) -> None:
        if entity.state_topic is not None:
            readers = self._state.get(entity.state_topic, [])
            readers[:] = [e for e in readers if e is not entity]
            if not readers:
                self._state.pop(entity.state_topic, None)
        for watch in entity.watches:
            watchers = self._watched.get(watch.topic, [])
            watchers[:] = [w for w in watchers if w[0] is not entity]
            if not watchers:
                self._watched.pop(watch.topic, None)
        for topic in entity.topics():
            left = self._refs.get(topic, 1) - 1
            if left > 0:
                self._refs[topic] = left
            else:
                self._refs.pop(topic, None)

    def _announce(self, devices: Iterable[_Device], topic: str) -> list[Event]:
        events: list[Event] = []
        for device in devices:
            if not device.entities:
                del self._devices[device.thing]
                events.append(Discovery(device.thing, _source(device.thing), retired=True))
                continue
            _claim(device)
            entities = list(device.entities.values())
            topics = sorted({t for e in entities for t in e.topics()})
            attributes: dict[str, Any] = {"identifiers": list(device.identifiers), "entities": len(entities)}
            if device.origin:
                attributes["origin"] = device.origin
            attributes.update(device.extra)
            expiries = [e.expire_after for e in entities if e.expire_after]
            if expiries:
                attributes["expire_after"] = max(expiries)
            events.append(
                Discovery(
                    device.thing,
                    _source(device.thing),
                    name=device.name or next((e.name for e in entities if e.name), None),
                    model=device.model,
                    manufacturer=device.manufacturer,
                    sw_version=device.sw_version,
                    measurements=tuple(
                        sorted({m for e in entities if e.claimed and (m := e.meaning.measurement)})
                    ),
                    power="battery" if any(e.battery for e in entities) else None,
                    topics=tuple(topics),
                    attributes=attributes,
                )
            )
        return events or [Ignored(self.name, topic)]

    # -- states and availability ------------------------------------------------------------------------
    def _message(self, topic: str, payload: bytes) -> list[Event]:
        message = _Message(payload)
        events: list[Event] = []
        readers = self._state.get(topic)
        if readers:
            events.extend(self._readings(topic, readers, message))
        watchers = self._watched.get(topic)
        if watchers:
            events.extend(self._availability(topic, watchers, message))
        return events or [Ignored(self.name, topic)]

    def _readings(self, topic: str, readers: list[_Entity], message: _Message) -> list[Event]:
        collected: dict[str, Values] = {}
        for entity in readers:
            values = collected.get(entity.thing)
            if values is None:
                values = collected[entity.thing] = Values(_source(entity.thing), topic)
            try:
                raw = message.render(entity.template)
            except PayloadError:
                raise
            except Exception as exc:  # a published template may fail in any way; it must not stop ingest
                values.problems.append(
                    Rejected(
                        self.name,
                        topic,
                        "template_error",
                        f"{entity.path}: {type(exc).__name__}: {exc}"[:200],
                    )
                )
                continue
            _read(entity, raw, values)
        events: list[Event] = []
        for thing, values in collected.items():
            events.extend(e for e in values.events(thing) if not isinstance(e, Ignored))
        return events

    def _availability(
        self, topic: str, watchers: list[tuple[_Entity, int]], message: _Message
    ) -> list[Event]:
        events: list[Event] = []
        touched: dict[str, None] = {}
        for entity, i in watchers:
            watch = entity.watches[i]
            try:
                raw = message.render(watch.template)
            except PayloadError:
                raise
            except Exception as exc:
                events.append(
                    Rejected(
                        self.name, topic, "template_error", f"availability: {type(exc).__name__}: {exc}"[:200]
                    )
                )
                continue
            text = _ha_text(raw)
            key = text.strip().casefold()
            if text == watch.on or key == watch.on.casefold():
                state = True
            elif text == watch.off or key == watch.off.casefold():
                state = False
            else:
                continue  # neither payload: not an availability message for this entity
            entity.seen[i] = state
            entity.latest = state
            touched[entity.thing] = None
        for thing in touched:
            device = self._devices.get(thing)
            if device is not None:
                online = any(e.available() for e in device.entities.values() if e.watches)
                events.append(Availability(thing, _source(thing), online))
        return events


def _source(thing: str) -> str:
    """The ecosystem a device's events are tagged with: an ESPHome node announced through discovery is
    still an ESPHome device (one thing, one ``source``, whether or not its config was seen)."""
    return "esphome" if thing.startswith("esphome.") else "homeassistant"


def _read(entity: _Entity, raw: Any, values: Values) -> None:
    """One entity's value from one message into the message's values."""
    name = entity.meaning.measurement
    if entity.kind == "number":
        if name is not None and (entity.claimed or not entity.meaning.unit_ok):
            values.add(name, raw, entity.unit)
            return
        scalar = _scalar(raw)
        if scalar is not None:
            values.skip(entity.path, scalar)
        return
    try:
        on = entity.is_on(raw)
    except UnitError as exc:
        values.problems.append(
            Rejected(values.source, values.topic, exc.reason, f"{entity.path}: {exc.detail}")
        )
        return
    if on is None:
        return
    if name is not None and entity.claimed:
        values.add(name, (not on) if entity.meaning.invert else on)
    else:
        values.skip(entity.path, on)


def _claim(device: _Device) -> None:
    """One entity per canonical name of a device writes it; the others stay unmapped (by rank, not order)."""
    rivals: dict[str, list[_Entity]] = {}
    for entity in device.entities.values():
        entity.claimed = False
        if entity.meaning.measurement and entity.meaning.unit_ok and entity.kind != "none":
            rivals.setdefault(entity.meaning.measurement, []).append(entity)
    for group in rivals.values():
        min(group, key=lambda e: e.rank).claimed = True


def _describe(device: _Device, config: dict[str, Any]) -> None:
    """What the latest config says of its device (a config without a device block changes nothing)."""
    block = config.get("device")
    if isinstance(block, dict):
        text = {k: v for k, v in block.items() if isinstance(v, str) and v}
        device.name = text.get("name", device.name)
        device.model = text.get("model", device.model)
        device.manufacturer = text.get("manufacturer", device.manufacturer)
        device.sw_version = text.get("sw_version", device.sw_version)
        identifiers = _identifiers(block)
        if identifiers:
            device.identifiers = identifiers
        for key in ("model_id", "hw_version", "suggested_area"):
            if key in text:
                device.extra[key] = text[key]
    origin = config.get("origin")
    if isinstance(origin, dict) and isinstance(origin.get("name"), str):
        device.origin = origin["name"]


def _block(config: dict[str, Any], key: str) -> dict[str, Any]:
    block = config.get(key)
    return block if isinstance(block, dict) else {}


def _availability_mode(value: Any) -> str:
    return value if isinstance(value, str) and value in ("all", "any") else "latest"


def _identifiers(device: dict[str, Any]) -> tuple[str, ...]:
    raw = device.get("identifiers")
    items = raw if isinstance(raw, list) else [raw]
    return tuple(
        str(i) for i in items if isinstance(i, str | int) and not isinstance(i, bool) and str(i).strip()
    )


def _first_identifier(device: dict[str, Any]) -> str | None:
    identifiers = _identifiers(device)
    return identifiers[0] if identifiers else None


def _mac(device: dict[str, Any]) -> str | None:
    connections = device.get("connections")
    if isinstance(connections, list):
        for pair in connections:
            if isinstance(pair, list) and len(pair) == 2 and pair[0] == "mac" and isinstance(pair[1], str):
                return pair[1].strip().lower() or None
    return None


def _is_esphome(
    component: str,
    node_id: str | None,
    object_id: str,
    unique_id: str | None,
    device: dict[str, Any],
    origin: dict[str, Any],
) -> bool:
    """ESPHome's own configs: by its origin, its version text, or Espressif hardware under a node level."""
    origin_name = origin.get("name")
    if isinstance(origin_name, str) and origin_name.strip().lower() == "esphome":
        return True
    sw = device.get("sw_version")
    if isinstance(sw, str) and ("config hash" in sw.lower() or sw.lower().startswith("esphome")):
        return True
    if node_id is None:
        return False
    manufacturer = device.get("manufacturer")
    if isinstance(manufacturer, str) and manufacturer.strip().lower() == "espressif":
        return True
    if unique_id is None:
        return False
    mac_id = _ESPHOME_MAC_ID.fullmatch(unique_id)
    return unique_id == f"ESP{component}{object_id}" or (mac_id is not None and mac_id.group(1) == component)
