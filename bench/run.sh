#!/usr/bin/env bash
# Benchmark: two mosquitto brokers on loopback (external + platform), a C load generator, a sink on
# the platform broker, and either tbgw (MQTT connector, memory storage) or the bare relay in between.
# Prints a markdown table (also bench/results/latest.md). Knobs: BENCH_MESSAGES (flat-out run, default
# 200000), BENCH_REPEAT (3 alternating relay/tbgw flat-out runs), BENCH_DEVICES (100), BENCH_RATES
# ("1000 5000 10000"), BENCH_RATE_SECONDS (5), BENCH_STORAGE (memory|file|sqlite), BENCH_PERF (perf
# record during rate runs), BUILD (build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${BENCH_MESSAGES:-200000}
D=${BENCH_DEVICES:-100}
RATES=${BENCH_RATES:-"1000 5000 10000"}
RATE_SECONDS=${BENCH_RATE_SECONDS:-5}
MAXP=${BENCH_MAX_PAYLOAD:-65536}
STORAGE=${BENCH_STORAGE:-memory} # memory | file | sqlite (when those storages are built in)
OUT=bench/results
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/tbgw-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$WORK/tbgw.log" ] && cp "$WORK/tbgw.log" "$OUT/tbgw.log" # the gateway's log of the last run
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up" >&2; return 1; }

start_broker() { # name port
  cat >"$WORK/$1.conf" <<CONF
listener $2 127.0.0.1
allow_anonymous true
persistence false
log_dest none
max_queued_messages 10000000
max_inflight_messages 0
CONF
  mosquitto -c "$WORK/$1.conf" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_port "$2"
}

EXT=$(free_port); PLAT=$(free_port)
start_broker external "$EXT"
start_broker platform "$PLAT"
"$BUILD/bench_sink" -p "$PLAT" -a -m "$MAXP" >/dev/null 2>&1 & # the platform's getSessionLimits answer
PIDS+=($!)

write_tbgw_config() {
  mkdir -p "$WORK/cfg"
  case "$STORAGE" in
    memory) STORAGE_JSON='{"type": "memory", "read_records_count": 1000, "max_records_count": 2000000}' ;;
    file) STORAGE_JSON='{"type": "file", "data_folder_path": "'"$WORK"'/data/", "max_file_count": 100, "max_read_records_count": 1000, "max_records_per_file": 100000}' ;;
    sqlite) STORAGE_JSON='{"type": "sqlite", "data_file_path": "'"$WORK"'/data/data.db", "messages_ttl_check_in_hours": 1, "messages_ttl_in_days": 7, "max_read_records_count": 1000}' ;;
    *) echo "unknown BENCH_STORAGE $STORAGE" >&2; exit 2 ;;
  esac
  mkdir -p "$WORK/data"
  cat >"$WORK/cfg/tb_gateway.json" <<CONF
{"thingsboard": {"host": "127.0.0.1", "port": $PLAT, "security": {"type": "accessToken", "accessToken": "BENCH"},
                 "statistics": {"enable": false}, "minPackSendDelayMS": 5},
 "storage": $STORAGE_JSON,
 "connectors": [{"type": "mqtt", "name": "Bench MQTT", "configuration": "bench_mqtt.json"}]}
CONF
  cat >"$WORK/cfg/bench_mqtt.json" <<CONF
{"broker": {"host": "127.0.0.1", "port": $EXT, "clientId": "tbgw-bench", "version": 5, "security": {"type": "anonymous"}},
 "mapping": [{"topicFilter": "bench/+/data", "subscriptionQos": 1,
   "converter": {"type": "json",
     "deviceInfo": {"deviceNameExpressionSource": "topic", "deviceNameExpression": "(?<=bench/)[^/]+",
                    "deviceProfileExpressionSource": "constant", "deviceProfileExpression": "bench"},
     "timeseries": [{"type": "double", "key": "v1", "value": "\${v1}"}, {"type": "integer", "key": "v2", "value": "\${v2}"},
                    {"type": "boolean", "key": "v3", "value": "\${v3}"}, {"type": "string", "key": "v4", "value": "\${v4}"}]}}]}
CONF
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
json_get() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# run_case <label> <messages> <rate> : sink + loadgen, prints the sink's JSON
run_case() {
  local values=$(( $2 * 4 ))
  "$BUILD/bench_sink" -p "$PLAT" -n "$values" -i 5000 -t 600 -m "$MAXP" >"$WORK/sink.out" 2>"$WORK/sink.err" &
  local sp=$!
  for _ in $(seq 100); do grep -q ready "$WORK/sink.err" 2>/dev/null && break; sleep 0.05; done
  "$BUILD/bench_loadgen" -p "$EXT" -n "$2" -d "$D" -r "$3" -q 1 >"$WORK/loadgen.out"
  wait "$sp"
  cat "$WORK/sink.out"
}

HZ=$(getconf CLK_TCK)
RESULTS="$OUT/latest.md"
{
  echo "| run | messages | values received / sent | values/s | p50 ms | p99 ms | max ms | tbgw CPU s per 1M values | tbgw peak RSS MB |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >"$RESULTS"

start_tbgw() {
  TBGW_LOG_LEVEL=WARNING "$BUILD/tbgw" -c "$WORK/cfg/tb_gateway.json" >>"$WORK/tbgw.log" 2>&1 &
  GP=$!; PIDS+=($GP)
  for _ in $(seq 100); do grep -q "session limits" "$WORK/tbgw.log" 2>/dev/null && break; sleep 0.05; done
  sleep 0.5
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# 1. flat out, alternating the bare relay and tbgw REPEAT times (the machine is shared: take medians)
REPEAT=${BENCH_REPEAT:-3}
write_tbgw_config
RELAY_RATES=(); TBGW_RATES=()
for i in $(seq "$REPEAT"); do
  "$BUILD/bench_relay" -s "$EXT" -d "$PLAT" -m $(( MAXP * 8 / 10 )) &
  RP=$!; PIDS+=($RP)
  sleep 0.5
  R=$(run_case relay "$N" 0)
  kill "$RP"; wait "$RP" 2>/dev/null || true
  RELAY_RATES+=("$(json_get "$R" values_per_s)")
  echo "| bare relay, flat out (run $i) | $N | $(json_get "$R" values) / $((N*4)) | $(json_get "$R" values_per_s) | $(json_get "$R" p50_ms) | $(json_get "$R" p99_ms) | $(json_get "$R" max_ms) | - | - |" >>"$RESULTS"
  start_tbgw
  c0=$(cpu_ticks "$GP")
  R=$(run_case tbgw "$N" 0)
  c1=$(cpu_ticks "$GP")
  V=$(json_get "$R" values)
  CPU_PER_M=$(/usr/bin/python3 -c "print('%.2f' % ((($c1-$c0)/$HZ) / max($V,1) * 1e6))")
  TBGW_RATES+=("$(json_get "$R" values_per_s)")
  echo "| tbgw, flat out (run $i) | $N | $V / $((N*4)) | $(json_get "$R" values_per_s) | $(json_get "$R" p50_ms) | $(json_get "$R" p99_ms) | $(json_get "$R" max_ms) | $CPU_PER_M | $(( $(hwm_kb "$GP") / 1024 )) |" >>"$RESULTS"
  kill "$GP"; wait "$GP" 2>/dev/null || true
done
RELAY_RATE=$(median "${RELAY_RATES[@]}")
TBGW_RATE=$(median "${TBGW_RATES[@]}")

# 2. tbgw at fixed rates (latency)
start_tbgw
IDLE_RSS=$(awk '/VmRSS/ {print $2}' "/proc/$GP/status")
for rate in $RATES; do
  M=$(( rate * RATE_SECONDS ))
  PERFP=""
  if [ -n "${BENCH_PERF:-}" ]; then # profile the gateway during this run: perf report -i bench/results/perf-<rate>.data
    perf record -g -p "$GP" -o "$OUT/perf-$rate.data" >/dev/null 2>&1 &
    PERFP=$!
  fi
  c0=$(cpu_ticks "$GP")
  R=$(run_case tbgw "$M" "$rate")
  c1=$(cpu_ticks "$GP")
  V=$(json_get "$R" values)
  CPU_PER_M=$(/usr/bin/python3 -c "print('%.2f' % ((($c1-$c0)/$HZ) / max($V,1) * 1e6))")
  if [ -n "$PERFP" ]; then kill -INT "$PERFP"; wait "$PERFP" 2>/dev/null || true; fi
  echo "| tbgw, $rate msg/s | $M | $V / $((M*4)) | $(json_get "$R" values_per_s) | $(json_get "$R" p50_ms) | $(json_get "$R" p99_ms) | $(json_get "$R" max_ms) | $CPU_PER_M | $(( $(hwm_kb "$GP") / 1024 )) |" >>"$RESULTS"
done
kill "$GP"; wait "$GP" 2>/dev/null || true
cp "$WORK/tbgw.log" "$OUT/tbgw.log"

RATIO=$(/usr/bin/python3 -c "print('%.0f%%' % (100.0 * float('$TBGW_RATE') / max(float('$RELAY_RATE'), 1)))")
{
  echo
  echo "Medians of $REPEAT flat-out runs: bare relay $RELAY_RATE values/s, tbgw $TBGW_RATE values/s = $RATIO of the relay."
  echo "tbgw idle RSS: $(( IDLE_RSS / 1024 )) MB."
  echo "($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $STORAGE storage, $N messages x 4 values over $D devices, QoS 1 on both brokers)"
} >>"$RESULTS"
cat "$RESULTS"
