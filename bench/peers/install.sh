#!/usr/bin/env bash
# Installs the peers that bench/e2e.py --peers measures the hub against, outside the repository:
#
#   Node-RED 4.1 with node-red-contrib-influxdb   into $BENCH_CACHE/node-red (npm; Node-RED 5 needs
#                                                 Node.js 22, Debian 12 has 18 and this machine 20)
#   Home Assistant 2025.4.4's InfluxDB client     into the Home Assistant virtualenv that scripts/test
#                                                 builds ($HUB_TEST_HASS, or $BENCH_CACHE/ha-2025.4.4)
#
# Home Assistant itself comes from scripts/test (Python 3.13 through pyenv or python3.13 on PATH); it runs
# with --skip-pip, so the InfluxDB integration's requirement is installed here. Safe to run again.
set -euo pipefail

if [[ -n ${BENCH_CACHE:-} ]]; then
    cache=$BENCH_CACHE
elif [[ $(id -u) -eq 0 ]]; then
    cache=/var/cache/neighborhood-hub
else
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/neighborhood-hub
fi
node_red_pins="node-red@4.1.8 node-red-contrib-influxdb@0.7.0"
# the requirement in homeassistant/components/influxdb/manifest.json of 2025.4.4
ha_influx_pins="influxdb==5.3.1 influxdb-client==1.24.0"

say() { printf 'bench/peers/install.sh: %s\n' "$*" >&2; }

command -v npm >/dev/null || { say "npm not found: apt-get install nodejs npm (Node.js 18 or newer)"; exit 1; }
node_red=$cache/node-red
if [[ ! -f $node_red/.installed || $(cat "$node_red/.installed") != "$node_red_pins" ]]; then
    say "installing $node_red_pins into $node_red"
    mkdir -p "$node_red"
    [[ -f $node_red/package.json ]] || printf '{"name": "hub-bench-node-red", "private": true}\n' >"$node_red/package.json"
    # shellcheck disable=SC2086 # a list of packages
    npm install --prefix "$node_red" --no-audit --no-fund --loglevel=error $node_red_pins
    printf '%s\n' "$node_red_pins" >"$node_red/.installed"
fi
say "Node-RED: $node_red/node_modules/.bin/node-red"

hass=${HUB_TEST_HASS:-$cache/ha-2025.4.4/bin/hass}
if [[ ! -x $hass ]]; then
    say "no Home Assistant at $hass: run scripts/test once (it installs 2025.4.4 with Python 3.13)"
    exit 1
fi
ha_python=$(dirname "$hass")/python
if ! "$ha_python" -c 'import influxdb, influxdb_client' 2>/dev/null; then
    say "installing $ha_influx_pins into $(dirname "$(dirname "$hass")")"
    # shellcheck disable=SC2086 # a list of requirements
    "$ha_python" -m pip install -q --disable-pip-version-check $ha_influx_pins
fi
say "Home Assistant: $hass"
