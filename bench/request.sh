#!/usr/bin/env bash
# Request connector bench: N endpoints (default 1000) polled every second (scanPeriod 1) from a local
# device API (bench_http_bare -b: a C server on the HTTP module that measures, per endpoint, how far
# each interval is from the period). Reports the achieved poll rate, the interval error (jitter),
# values arriving at the platform, tbgw CPU and RSS. Knobs: BENCH_ENDPOINTS (1000), BENCH_SECONDS (20),
# BUILD (build). Output: a markdown row (also bench/results/request.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${BENCH_ENDPOINTS:-1000}
SECS=${BENCH_SECONDS:-20}
OUT=bench/results
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/tbgw-request-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$WORK/tbgw.log" ] && cp "$WORK/tbgw.log" "$OUT/tbgw-request.log"
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up" >&2; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

PLAT=$(free_port); API=$(free_port)
cat >"$WORK/broker.conf" <<CONF
listener $PLAT 127.0.0.1
allow_anonymous true
persistence false
log_dest none
max_queued_messages 10000000
max_inflight_messages 0
CONF
mosquitto -c "$WORK/broker.conf" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$PLAT"
"$BUILD/bench_http_bare" -p "$API" -t 1 -b '{"id":"x","v":21.5,"s":"ok"}' -P 1000 >"$WORK/api.out" 2>"$WORK/api.err" &
AP=$!; PIDS+=($AP)
wait_port "$API"

mkdir -p "$WORK/cfg"
cat >"$WORK/cfg/tb_gateway.json" <<CONF
{"thingsboard": {"host": "127.0.0.1", "port": $PLAT, "security": {"type": "accessToken", "accessToken": "BENCH"},
                 "statistics": {"enable": false}, "minPackSendDelayMS": 5},
 "storage": {"type": "memory", "read_records_count": 1000, "max_records_count": 5000000},
 "connectors": [{"type": "request", "name": "Bench Request", "configuration": "request.json"}]}
CONF
/usr/bin/python3 - "$WORK/cfg/request.json" "$API" "$N" <<'PY'
import json, sys
path, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
maps = [{"url": "e/%d" % i, "scanPeriod": 1, "timeout": 2,
         "converter": {"type": "json", "deviceNameJsonExpression": "dev-%d" % i,
                       "telemetry": [{"key": "v", "type": "double", "value": "${v}"}]}} for i in range(n)]
json.dump({"host": "127.0.0.1:%d" % port, "mapping": maps}, open(path, "w"))
PY
"$BUILD/bench_sink" -p "$PLAT" -n 1000000000 -i 3000 -t 600 >"$WORK/sink.out" 2>"$WORK/sink.err" &
SP=$!; PIDS+=($SP)
for _ in $(seq 100); do grep -q ready "$WORK/sink.err" 2>/dev/null && break; sleep 0.05; done
TBGW_LOG_LEVEL=WARNING "$BUILD/tbgw" -c "$WORK/cfg/tb_gateway.json" >>"$WORK/tbgw.log" 2>&1 &
GP=$!; PIDS+=($GP)
sleep 3 # start-up and the first round
t0=$(cpu_ticks "$GP")
sleep "$SECS"
t1=$(cpu_ticks "$GP")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$GP/status")
kill "$GP"; wait "$GP" 2>/dev/null || true
kill "$AP"; wait "$AP" 2>/dev/null || true
wait "$SP" || true
/usr/bin/python3 - "$WORK/api.out" "$WORK/sink.out" "$N" "$SECS" "$t0" "$t1" "$HZ" "$rss" "$OUT/request.md" <<'PY'
import json, sys
api = json.load(open(sys.argv[1])); sink = json.load(open(sys.argv[2]))
n, secs, t0, t1, hz, rss = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
cpu = (t1 - t0) / hz / secs * 100
row = ("| %d endpoints, 1 s | %d requests in all (%d paths) | interval error p50 %d ms, p99 %d ms, max %d ms "
       "| %d values at the platform | tbgw %.1f %% of a core | RSS %.1f MB |" %
       (n, api["requests"], api["paths"], api["err_p50_ms"], api["err_p99_ms"], api["err_max_ms"],
        sink["values"], cpu, rss / 1024))
print(row)
open(sys.argv[9], "w").write(row + "\n")
PY
