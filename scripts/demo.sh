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
TB_GW_HOST=127.0.0.1 TB_GW_PORT=$port ./build/tbgw -c config/tb_gateway.json 2> >(sed 's/^/[tbgw] /' >&2) & pids+=($!)
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
else
  wait "${pids[-1]}"
fi
