#!/usr/bin/env bash
# `make run`: a local mosquitto plays ThingsBoard, tbgw runs on config/, and every message the
# platform receives is printed. A second mosquitto is the external broker of the MQTT connector, with
# simulated devices publishing JSON once a second (scripts/mqtt_device_sim.py); the configuration is
# copied to run/demo/config with that broker's free port. Ctrl-C stops everything. DEMO_SECONDS=N
# stops after N seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
run=run/demo
mkdir -p "$run"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$run/platform.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest none
CONF
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
mosquitto -c "$run/platform.conf" & pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
ext=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed "s/^listener $port /listener $ext /" "$run/platform.conf" > "$run/external.conf"
mosquitto -c "$run/external.conf" & pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$ext) 2>/dev/null && break; sleep 0.1; done
# the demo configuration with the external broker's port (plugin paths made absolute)
rm -rf "$run/config" && cp -r config "$run/config"
/usr/bin/python3 - "$run/config" "$ext" "$PWD" <<'PY'
import json, os, sys
d, ext, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
gw = json.load(open(os.path.join(d, "tb_gateway.json")))
for c in gw["connectors"]:
    if "plugin" in c:
        c["plugin"] = os.path.normpath(os.path.join(root, "config", c["plugin"]))
json.dump(gw, open(os.path.join(d, "tb_gateway.json"), "w"), indent=2)
m = json.load(open(os.path.join(d, "mqtt.json")))
m["broker"]["port"] = ext
json.dump(m, open(os.path.join(d, "mqtt.json"), "w"), indent=2)
PY
echo "== external MQTT broker on 127.0.0.1:$ext with simulated devices TH-01..TH-03 (sensor/<name>/data)"
/usr/bin/python3 scripts/mqtt_device_sim.py "$ext" & pids+=($!)
echo "== platform (mosquitto playing ThingsBoard) on 127.0.0.1:$port; what it receives:"
/usr/bin/python3 scripts/platform_sim.py "$port" & pids+=($!)
# a simulated Modbus slave (libmodbus) for config/modbus.json: 21.5 degC, 45.5 %, model "TB01"
./build/bench_modbus_slave tcp 5021 -h 0=215,1=455,10=0x5442,11=0x3031 -c 1=1 -a 1 >/dev/null & pids+=($!)
sleep 0.3
conf="$run/config/tb_gateway.json"
# With node-opcua installed (tests/peers), an OPC-UA server joins the demo: its MyObject is read by an
# OPC-UA connector using the reference's example config (a copy of config/ with that connector added).
if [ -d tests/peers/node_modules/node-opcua ] && command -v node >/dev/null; then
  opc_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  node tests/peers/opcua_server.js "$opc_port" > "$run/opcua.log" 2>&1 & pids+=($!)
  for _ in $(seq 300); do grep -q READY "$run/opcua.log" 2>/dev/null && break; sleep 0.1; done
  echo "== OPC-UA server (node-opcua) on opc.tcp://127.0.0.1:$opc_port/"
  /usr/bin/python3 - "$run/config" "$opc_port" "$PWD" <<'PY'
import json, os, sys
cfgdir, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
main = os.path.join(cfgdir, "tb_gateway.json")
with open(main) as f:
    gw = json.load(f)
opc = {"server": {"url": "opc.tcp://127.0.0.1:%d/" % port, "pollPeriodInMillis": 2000, "enableSubscriptions": True,
                  "identity": {"type": "anonymous"}},
       "mapping": [{"deviceNodePattern": "Root\\.Objects\\.MyObject",
                    "deviceInfo": {"deviceNameExpression": "OPC-UA ${Name}", "deviceNameExpressionSource": "path"},
                    "attributes": [{"key": "frequency", "type": "path", "value": "${Frequency}"}],
                    "timeseries": [{"key": "temperature", "type": "path", "value": "${Temperature}"},
                                   {"key": "counter", "type": "path", "value": "${Counter}"}],
                    "rpc_methods": [{"method": "multiply", "arguments": [{"type": "integer", "value": 2},
                                                                         {"type": "integer", "value": 4}]}]}]}
with open(os.path.join(cfgdir, "opcua.json"), "w") as f:
    json.dump(opc, f, indent=2)
gw["connectors"].append({"type": "opcua", "name": "Demo OPC-UA", "configuration": "opcua.json"})
with open(main, "w") as f:
    json.dump(gw, f, indent=2)
PY
fi
TB_GW_HOST=127.0.0.1 TB_GW_PORT=$port ./build/tbgw -c "$conf" 2> >(sed 's/^/[tbgw] /' >&2) & pids+=($!)
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
else
  wait "${pids[-1]}"
fi
