#!/usr/bin/env bash
# `make run`: a local mosquitto plays ThingsBoard, tbgw runs on config/, and every message the
# platform receives is printed. Ctrl-C stops everything. DEMO_SECONDS=N stops after N seconds.
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
echo "== platform (mosquitto playing ThingsBoard) on 127.0.0.1:$port; what it receives:"
/usr/bin/python3 scripts/platform_sim.py "$port" & pids+=($!)
sleep 0.3
conf=config/tb_gateway.json
# With node-opcua installed (tests/peers), an OPC-UA server joins the demo: its MyObject is read by an
# OPC-UA connector using the reference's example config (a copy of config/ with that connector added).
if [ -d tests/peers/node_modules/node-opcua ] && command -v node >/dev/null; then
  opc_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  node tests/peers/opcua_server.js "$opc_port" > "$run/opcua.log" 2>&1 & pids+=($!)
  for _ in $(seq 300); do grep -q READY "$run/opcua.log" 2>/dev/null && break; sleep 0.1; done
  echo "== OPC-UA server (node-opcua) on opc.tcp://127.0.0.1:$opc_port/"
  rm -rf "$run/config" && cp -r config "$run/config"
  /usr/bin/python3 - "$run/config" "$opc_port" "$PWD" <<'PY'
import json, os, sys
cfgdir, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
main = os.path.join(cfgdir, "tb_gateway.json")
with open(main) as f:
    gw = json.load(f)
for c in gw["connectors"]:
    if "plugin" in c and not os.path.isabs(c["plugin"]):
        c["plugin"] = os.path.normpath(os.path.join(root, "config", c["plugin"]))
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
  conf="$run/config/tb_gateway.json"
fi
TB_GW_HOST=127.0.0.1 TB_GW_PORT=$port ./build/tbgw -c "$conf" 2> >(sed 's/^/[tbgw] /' >&2) & pids+=($!)
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
else
  wait "${pids[-1]}"
fi
