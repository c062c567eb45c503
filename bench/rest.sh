#!/usr/bin/env bash
# REST connector bench: wrk POSTs small JSON bodies to tbgw's REST connector (one endpoint, JSON
# converter, memory storage) at 1, 16 and 256 connections; a sink on the platform broker counts the
# values that arrive (zero loss = every 2xx request's value arrived). The same wrk runs against
# bench_http_bare (the HTTP module answering 200 only: the ceiling). Prints a markdown table (also
# bench/results/rest.md). Knobs: BENCH_SECONDS (3), BENCH_CONNS ("1 16 256"), BENCH_THREADS (server
# worker threads, 0 = one per core), BENCH_REPEAT (3: bare and tbgw runs alternate that many times per
# connection count; a summary gives the medians and their ratio, which a loaded machine shifts less
# than one pair of runs), BUILD (build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-3}
CONNS=${BENCH_CONNS:-"1 16 256"}
THREADS=${BENCH_THREADS:-0}
REPEAT=${BENCH_REPEAT:-3}
OUT=bench/results
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/tbgw-rest-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$WORK/tbgw.log" ] && cp "$WORK/tbgw.log" "$OUT/tbgw-rest.log"
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up" >&2; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)

PLAT=$(free_port); REST=$(free_port); BARE=$(free_port)
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
"$BUILD/bench_sink" -p "$PLAT" -a >/dev/null 2>&1 &
PIDS+=($!)

mkdir -p "$WORK/cfg"
cat >"$WORK/cfg/tb_gateway.json" <<CONF
{"thingsboard": {"host": "127.0.0.1", "port": $PLAT, "security": {"type": "accessToken", "accessToken": "BENCH"},
                 "statistics": {"enable": false}, "minPackSendDelayMS": 5},
 "storage": {"type": "memory", "read_records_count": 1000, "max_records_count": 5000000},
 "connectors": [{"type": "rest", "name": "Bench REST", "configuration": "rest.json"}]}
CONF
cat >"$WORK/cfg/rest.json" <<CONF
{"server": {"host": "127.0.0.1", "port": $REST, "threads": $THREADS},
 "mapping": [{"endpoint": "/data", "HTTPMethods": ["POST"], "security": {"type": "anonymous"},
   "converter": {"type": "json",
     "deviceInfo": {"deviceNameExpressionSource": "request", "deviceNameExpression": "\${name}"},
     "timeseries": [{"type": "double", "key": "v", "value": "\${v}"}]}}]}
CONF
cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"name":"bench-1","v":21.5,"ts":1700000000000}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.stderr:write(string.format("RESULT %d %d %d %.3f %.3f\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA

TBGW_LOG_LEVEL=WARNING "$BUILD/tbgw" -c "$WORK/cfg/tb_gateway.json" >>"$WORK/tbgw.log" 2>&1 &
GP=$!; PIDS+=($GP)
wait_port "$REST"
"$BUILD/bench_http_bare" -p "$BARE" -t "$THREADS" 2>"$WORK/bare.err" &
BP=$!; PIDS+=($BP)
wait_port "$BARE"
sleep 0.5

RESULTS="$OUT/rest.md"
{
  echo "| server | connections | requests/s | p50 ms | p99 ms | errors | values arrived / 2xx | server CPU µs per request | server RSS MB |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >"$RESULTS"

# run <label> <pid> <port> <conns>
run() {
  local label=$1 pid=$2 port=$3 c=$4 threads=$(( $4 < 2 ? 1 : 2 ))
  local sink_pid=""
  if [ "$label" = tbgw ]; then
    "$BUILD/bench_sink" -p "$PLAT" -n 1000000000 -i 3000 -t 600 >"$WORK/sink.out" 2>"$WORK/sink.err" &
    sink_pid=$!
    for _ in $(seq 100); do grep -q ready "$WORK/sink.err" 2>/dev/null && break; sleep 0.05; done
  fi
  local t0; t0=$(cpu_ticks "$pid")
  wrk -t "$threads" -c "$c" -d "${SECS}s" --latency -s "$WORK/post.lua" "http://127.0.0.1:$port/data" \
    >"$WORK/wrk.out" 2>"$WORK/wrk.err"
  local t1; t1=$(cpu_ticks "$pid")
  read -r _ reqs errs dur p50 p99 < <(grep RESULT "$WORK/wrk.err")
  local arrived="-"
  if [ -n "$sink_pid" ]; then
    wait "$sink_pid" || true
    arrived=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["values"])' "$WORK/sink.out")
    arrived="$arrived / $(( reqs - errs ))"
  fi
  local rps; rps=$(/usr/bin/python3 -c "print(round($reqs / ($dur / 1e6)))")
  local cpu_us; cpu_us=$(/usr/bin/python3 -c "print(round(($t1 - $t0) / $HZ * 1e6 / max(1, $reqs), 1))")
  local rss; rss=$(/usr/bin/python3 -c "print(round($(rss_kb "$pid") / 1024, 1))")
  echo "| $label | $c | $rps | $p50 | $p99 | $errs | $arrived | $cpu_us | $rss |" | tee -a "$RESULTS"
  echo "$label $c $rps $cpu_us $p50 $p99" >>"$WORK/runs"
}

for c in $CONNS; do
  for _ in $(seq "$REPEAT"); do
    run bare "$BP" "$BARE" "$c"
    run tbgw "$GP" "$REST" "$c"
  done
done
/usr/bin/python3 - "$WORK/runs" >>"$RESULTS" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, c, rps, cpu, p50, p99 = line.split()
    runs.setdefault(int(c), {}).setdefault(label, []).append((float(rps), float(cpu), float(p50), float(p99)))
print()
print("| connections | bare requests/s (median) | tbgw requests/s (median) | tbgw / bare | bare CPU µs/req | tbgw CPU µs/req | tbgw p50 / p99 ms |")
print("|---|---|---|---|---|---|---|")
for c in sorted(runs):
    m = lambda label, i: statistics.median(r[i] for r in runs[c][label])
    print("| %d | %d | %d | %.0f %% | %.1f | %.1f | %.2f / %.1f |" % (
        c, m("bare", 0), m("tbgw", 0), 100 * m("tbgw", 0) / m("bare", 0), m("bare", 1), m("tbgw", 1),
        m("tbgw", 2), m("tbgw", 3)))
PY
cat "$RESULTS"
