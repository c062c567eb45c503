#!/usr/bin/env bash
# Benchmark: two mosquitto brokers on loopback (external + platform), a C load generator, a sink on
# the platform broker, and either tbgw (MQTT connector, memory storage) or the bare relay in between.
# Prints a markdown table (also bench/results/latest.md). Knobs: BENCH_MESSAGES (flat-out run, default
# 100000), BENCH_QOS (QoS of the devices' publishes in the flat-out runs, "0 1"; the gateway and the
# relay subscribe and publish with QoS 1 always), BENCH_REPEAT (3 alternating relay/tbgw flat-out runs
# per QoS), BENCH_DEVICES (100), BENCH_RATES ("1000 5000 10000", devices at QoS 1), BENCH_RELAY_RATES
# (fixed rates the relay runs at too, for its CPU: "1000"), BENCH_RATE_SECONDS (5), BENCH_STORAGE
# (memory|file|sqlite), BENCH_TBGW_MAX_PAYLOAD (the gateway's maxPayloadSizeBytes, default the
# platform's 65536 like the relay's packs), BENCH_LOG_LEVEL (the gateway's, WARNING), BENCH_PERF (perf record --call-graph dwarf (bench/perf_breakdown.py sorts it), perf stat and per-thread context switches of tbgw
# in the flat-out and fixed-rate runs and of the relay at its fixed rates, into bench/results/), BUILD,
# BENCH_TBGW (the gateway binary, default $BUILD/tbgw).
# BENCH_PEERS=broker|direct|both (both): "broker" is the setup above; "direct" replaces both brokers by
# the bench's own servers (bench_source streams the device messages to the forwarder, bench_sink --serve
# is the platform's broker), so that the load side is far faster than the forwarders: it measures and
# prints that ceiling first (BENCH_CEIL_MESSAGES, default 5 x BENCH_MESSAGES), then alternates the
# relay and tbgw flat out BENCH_REPEAT times per device QoS. BENCH_RELAY_MQTT5=1: the relay subscribes
# over MQTT 5 there (announcing libmosquitto's Receive Maximum 20 like the gateway), 3.1.1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
TBGW_EXE=${BENCH_TBGW:-$BUILD/tbgw}
PEERS=${BENCH_PEERS:-both}
case "$PEERS" in broker | direct | both) ;; *) echo "BENCH_PEERS must be broker, direct or both" >&2; exit 2 ;; esac
N=${BENCH_MESSAGES:-100000}
QOSES=${BENCH_QOS:-"0 1"}
RELAY_RATES_FIXED=${BENCH_RELAY_RATES:-1000}
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
  for b in external platform; do [ -f "$WORK/$b.log" ] && cp "$WORK/$b.log" "$OUT/broker-$b.log"; done
  [ -n "${BENCH_KEEP:-}" ] && cp -r "$WORK" /tmp/bench-keep; rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up" >&2; return 1; }

start_broker() { # name port
  cat >"$WORK/$1.conf" <<CONF
listener $2 127.0.0.1
allow_anonymous true
persistence false
user root
log_dest file $WORK/$1.log
log_type error
log_type warning
log_type notice
connection_messages false
max_queued_messages 10000000
max_inflight_messages 0
CONF
  mosquitto -c "$WORK/$1.conf" >/dev/null 2>&1 &
  PIDS+=("$!")
  wait_port "$2"
}

EXT=$(free_port); PLAT=$(free_port)
if [ "$PEERS" != direct ]; then
  start_broker external "$EXT"
  start_broker platform "$PLAT"
  "$BUILD/bench_sink" -p "$PLAT" -a -m "$MAXP" >/dev/null 2>&1 & # the platform's getSessionLimits answer
  PIDS+=("$!")
fi

# write_tbgw_config [external port] [platform port] [directory]: the gateway's configuration
write_tbgw_config() {
  local EXT=${1:-$EXT} PLAT=${2:-$PLAT} CFG=${3:-$WORK/cfg}
  mkdir -p "$CFG"
  case "$STORAGE" in
    memory) STORAGE_JSON='{"type": "memory", "read_records_count": 1000, "max_records_count": 2000000}' ;;
    file) STORAGE_JSON='{"type": "file", "data_folder_path": "'"$WORK"'/data/", "max_file_count": 100, "max_read_records_count": 1000, "max_records_per_file": 100000}' ;;
    sqlite) STORAGE_JSON='{"type": "sqlite", "data_file_path": "'"$WORK"'/data/data.db", "messages_ttl_check_in_hours": 1, "messages_ttl_in_days": 7, "max_read_records_count": 1000}' ;;
    *) echo "unknown BENCH_STORAGE $STORAGE" >&2; exit 2 ;;
  esac
  mkdir -p "$WORK/data"
  cat >"$CFG/tb_gateway.json" <<CONF
{"thingsboard": {"host": "127.0.0.1", "port": $PLAT, "security": {"type": "accessToken", "accessToken": "BENCH"},
                 "statistics": {"enable": false}, "minPackSendDelayMS": 5, "maxPayloadSizeBytes": ${BENCH_TBGW_MAX_PAYLOAD:-$MAXP}},
 "storage": $STORAGE_JSON,
 "connectors": [{"type": "mqtt", "name": "Bench MQTT", "configuration": "bench_mqtt.json"}]}
CONF
  cat >"$CFG/bench_mqtt.json" <<CONF
{"broker": {"host": "127.0.0.1", "port": $EXT, "clientId": "tbgw-bench", "version": 5, "security": {"type": "anonymous"}},
 "mapping": [{"topicFilter": "bench/+/data", "subscriptionQos": 1,
   "converter": {"type": "json",
     "deviceInfo": {"deviceNameExpressionSource": "topic", "deviceNameExpression": "(?<=bench/)[^/]+",
                    "deviceProfileExpressionSource": "constant", "deviceProfileExpression": "bench"},
     "timeseries": [{"type": "double", "key": "v1", "value": "\${v1}"}, {"type": "integer", "key": "v2", "value": "\${v2}"},
                    {"type": "boolean", "key": "v3", "value": "\${v3}"}, {"type": "string", "key": "v4", "value": "\${v4}"}]}}]}
CONF
}

# CPU time of a process in ns: the sum over its threads' schedstat (ns resolution; /proc/<pid>/stat
# counts in 10 ms ticks, too coarse for the short fixed-rate runs). The bench's processes keep their
# threads for the whole run.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}'; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
json_get() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# run_case <messages> <rate> <device qos> [sink port] [sink args] [loadgen port] [loadgen args]:
# sink + loadgen, prints the sink's JSON
run_case() {
  local values=$(( $1 * 4 )) sport=${4:-$PLAT} sargs=${5:-} lport=${6:-$EXT} largs=${7:-}
  # shellcheck disable=SC2086
  "$BUILD/bench_sink" -p "$sport" -n "$values" -i 5000 -t 600 -m "$MAXP" $sargs >"$WORK/sink.out" 2>"$WORK/sink.err" &
  local sp=$!
  for _ in $(seq 100); do grep -q ready "$WORK/sink.err" 2>/dev/null && break; sleep 0.05; done
  # shellcheck disable=SC2086
  "$BUILD/bench_loadgen" -p "$lport" -n "$1" -d "$D" -r "$2" -q "$3" $largs >"$WORK/loadgen.out"
  wait "$sp"
  cat "$WORK/sink.out"
}

RESULTS="$OUT/latest.md"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "| run | messages | values received / sent | values/s | p50 ms | p99 ms | max ms | CPU s per 1M values | peak RSS MB |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >"$RESULTS"
row() { # label messages sink-json cpu rss
  echo "| $1 | $2 | $(json_get "$3" values) / $(($2*4)) | $(json_get "$3" values_per_s) | $(json_get "$3" p50_ms) | $(json_get "$3" p99_ms) | $(json_get "$3" max_ms) | $4 | $5 |" >>"$RESULTS"
}
cpu_per_m() { /usr/bin/python3 -c "print('%.2f' % ((($2-$1)/1e9) / max($3,1) * 1e6))"; }

start_tbgw() {
  TBGW_LOG_LEVEL=${BENCH_LOG_LEVEL:-WARNING} "$TBGW_EXE" -c "$WORK/cfg/tb_gateway.json" >>"$WORK/tbgw.log" 2>&1 &
  GP=$!; PIDS+=("$GP")
  for _ in $(seq 100); do grep -q "session limits" "$WORK/tbgw.log" 2>/dev/null && break; sleep 0.05; done
  sleep 0.5
}
start_relay() {
  "$BUILD/bench_relay" -s "$EXT" -d "$PLAT" -m $(( MAXP * 8 / 10 )) &
  RP=$!; PIDS+=("$RP")
  sleep 0.5
}
# BENCH_PERF: perf record -g of the measured process (bench/results/perf-<label>.data) and perf stat of
# its context switches, plus the voluntary/involuntary switches of each of its threads
# (bench/results/ctxsw-<label>.txt)
ctxsw() { for t in /proc/"$1"/task/*; do echo "$(cat "$t/comm") $(awk '/voluntary_ctxt_switches/ {printf "%s ", $2}' "$t/status")"; done; }
prof_start() { # pid label
  PERFP=""; PSTATP=""
  [ -n "${BENCH_PERF:-}" ] || return 0
  ctxsw "$1" >"$WORK/ctx0"
  perf record --call-graph dwarf,8192 -F 2000 -p "$1" -o "$OUT/perf-$2.data" >/dev/null 2>&1 &
  PERFP=$!
  perf stat -e context-switches,cpu-migrations,task-clock -p "$1" -o "$OUT/perfstat-$2.txt" >/dev/null 2>&1 &
  PSTATP=$!
  sleep 0.3
}
prof_stop() { # pid label messages
  [ -n "$PERFP" ] || return 0
  kill -INT "$PERFP" "$PSTATP"; wait "$PERFP" "$PSTATP" 2>/dev/null || true
  ctxsw "$1" >"$WORK/ctx1"
  { echo "# thread: voluntary involuntary context switches during the run (before -> after), $3 messages"
    paste -d' ' "$WORK/ctx0" "$WORK/ctx1"; } >"$OUT/ctxsw-$2.txt"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

REPEAT=${BENCH_REPEAT:-3}
if [ "$PEERS" != direct ]; then
# 0. the bench's own ceiling, no forwarder: (a) the load generator into the external broker, the sink
# subscribed there to the device messages (one message per record: harder for the sink than packs);
# (b) packs of the relay's size and format published straight to the platform broker, for the sink
declare -A CEIL_IN LOADGEN_RATE
for q in $QOSES; do
  R=$(run_case "$N" 0 "$q" "$EXT" "-s bench/#")
  CEIL_IN[$q]=$(json_get "$R" values_per_s)
  LOADGEN_RATE[$q]=$(json_get "$(cat "$WORK/loadgen.out")" rate) # messages/s the generator wrote
  row "ceiling: loadgen (QoS $q) -> broker -> sink, no forwarder" "$N" "$R" - -
done
R=$(run_case "$N" 0 1 "$PLAT" "" "$PLAT" "-k $(( MAXP * 8 / 10 )) -t relay/telemetry")
CEIL_OUT=$(json_get "$R" values_per_s)
row "ceiling: packs (QoS 1) -> platform broker -> sink" "$N" "$R" - -

# 1. flat out, alternating the bare relay and tbgw REPEAT times per device QoS (the machine is
# shared: take medians)
write_tbgw_config
declare -A RELAY_MED TBGW_MED TBGW_CPU_MED RELAY_CPU_MED
for q in $QOSES; do
  RELAY_RATES=(); TBGW_RATES=(); TBGW_CPUS=(); RELAY_CPUS=()
  for i in $(seq "$REPEAT"); do
    start_relay
    c0=$(cpu_ns "$RP")
    R=$(run_case "$N" 0 "$q")
    c1=$(cpu_ns "$RP")
    kill "$RP"; wait "$RP" 2>/dev/null || true
    CPU_PER_M=$(cpu_per_m "$c0" "$c1" "$(json_get "$R" values)")
    RELAY_RATES+=("$(json_get "$R" values_per_s)"); RELAY_CPUS+=("$CPU_PER_M")
    row "bare relay, devices QoS $q, flat out (run $i)" "$N" "$R" "$CPU_PER_M" -
    start_tbgw
    prof_start "$GP" "tbgw-flat-qos$q"
    c0=$(cpu_ns "$GP")
    R=$(run_case "$N" 0 "$q")
    c1=$(cpu_ns "$GP")
    prof_stop "$GP" "tbgw-flat-qos$q" "$N"
    CPU_PER_M=$(cpu_per_m "$c0" "$c1" "$(json_get "$R" values)")
    TBGW_RATES+=("$(json_get "$R" values_per_s)"); TBGW_CPUS+=("$CPU_PER_M")
    row "tbgw, devices QoS $q, flat out (run $i)" "$N" "$R" "$CPU_PER_M" "$(( $(hwm_kb "$GP") / 1024 ))"
    kill "$GP"; wait "$GP" 2>/dev/null || true
  done
  RELAY_MED[$q]=$(median "${RELAY_RATES[@]}"); TBGW_MED[$q]=$(median "${TBGW_RATES[@]}")
  RELAY_CPU_MED[$q]=$(median "${RELAY_CPUS[@]}"); TBGW_CPU_MED[$q]=$(median "${TBGW_CPUS[@]}")
done

# 2. fixed rates (devices at QoS 1): the relay's CPU at the same rate, then tbgw (latency, CPU)
declare -A RELAY_FIXED_CPU
for rate in $RELAY_RATES_FIXED; do
  M=$(( rate * RATE_SECONDS ))
  start_relay
  prof_start "$RP" "relay-$rate"
  c0=$(cpu_ns "$RP")
  R=$(run_case "$M" "$rate" 1)
  c1=$(cpu_ns "$RP")
  prof_stop "$RP" "relay-$rate" "$M"
  kill "$RP"; wait "$RP" 2>/dev/null || true
  RELAY_FIXED_CPU[$rate]=$(cpu_per_m "$c0" "$c1" "$(json_get "$R" values)")
  row "bare relay, $rate msg/s" "$M" "$R" "${RELAY_FIXED_CPU[$rate]}" -
done
start_tbgw
IDLE_RSS=$(awk '/VmRSS/ {print $2}' "/proc/$GP/status")
declare -A TBGW_FIXED_CPU
for rate in $RATES; do
  M=$(( rate * RATE_SECONDS ))
  prof_start "$GP" "tbgw-$rate"
  c0=$(cpu_ns "$GP")
  R=$(run_case "$M" "$rate" 1)
  c1=$(cpu_ns "$GP")
  TBGW_FIXED_CPU[$rate]=$(cpu_per_m "$c0" "$c1" "$(json_get "$R" values)")
  prof_stop "$GP" "tbgw-$rate" "$M"
  row "tbgw, $rate msg/s" "$M" "$R" "${TBGW_FIXED_CPU[$rate]}" "$(( $(hwm_kb "$GP") / 1024 ))"
done
kill "$GP"; wait "$GP" 2>/dev/null || true
cp "$WORK/tbgw.log" "$OUT/tbgw.log"
fi


# 3. direct: the bench's own servers instead of the brokers. bench_source streams the device messages
# to the one forwarder subscribed to it; bench_sink --serve is the platform's broker. The ceiling
# first: (a) bench_source -> bench_sink -s (the sink's minimal reader, one message per record), (b)
# relay-format packs from bench_loadgen -k -> bench_sink --serve; then the forwarders between them.
CEIL_N=${BENCH_CEIL_MESSAGES:-$(( N * 5 ))}
# direct_case <relay|tbgw> <device qos>: one run; sets R (the sink's JSON), SRC (the source's) and
# CPU_PER_M (the forwarder's CPU s per 1M values), and FWP (the forwarder's pid, still running)
direct_case() {
  local fwd=$1 q=$2 ds dp sk so c0 c1
  ds=$(free_port); dp=$(free_port)
  : >"$WORK/dsink.err"; : >"$WORK/dsrc.err"
  "$BUILD/bench_sink" --serve -p "$dp" -n $(( N * 4 )) -i 5000 -t 600 -m "$MAXP" >"$WORK/dsink.out" 2>"$WORK/dsink.err" &
  sk=$!; PIDS+=("$sk")
  "$BUILD/bench_source" -p "$ds" -n "$N" -d "$D" -q "$q" -w >"$WORK/dsrc.out" 2>"$WORK/dsrc.err" &
  so=$!; PIDS+=("$so")
  for _ in $(seq 100); do grep -q ready "$WORK/dsink.err" && grep -q listening "$WORK/dsrc.err" && break; sleep 0.05; done
  if [ "$fwd" = relay ]; then
    # shellcheck disable=SC2046
    "$BUILD/bench_relay" -s "$ds" -d "$dp" -m $(( MAXP * 8 / 10 )) $([ -n "${BENCH_RELAY_MQTT5:-}" ] && echo -5) &
    FWP=$!; PIDS+=("$FWP")
  else
    write_tbgw_config "$ds" "$dp" "$WORK/cfg-direct"
    : >"$WORK/tbgw-direct.log"
    TBGW_LOG_LEVEL=${BENCH_LOG_LEVEL:-WARNING} "$TBGW_EXE" -c "$WORK/cfg-direct/tb_gateway.json" >>"$WORK/tbgw-direct.log" 2>&1 &
    FWP=$!; PIDS+=("$FWP")
    for _ in $(seq 200); do grep -q getSessionLimits "$WORK/dsink.err" && break; sleep 0.05; done
  fi
  for _ in $(seq 200); do grep -q subscribed "$WORK/dsrc.err" && break; sleep 0.05; done
  sleep 0.3
  c0=$(cpu_ns "$FWP")
  kill -USR1 "$so"
  wait "$sk" || true
  c1=$(cpu_ns "$FWP")
  sleep 0.1 # the last PUBACKs back to the source
  kill "$so" 2>/dev/null || true; wait "$so" 2>/dev/null || true
  R=$(cat "$WORK/dsink.out"); SRC=$(cat "$WORK/dsrc.out")
  CPU_PER_M=$(cpu_per_m "$c0" "$c1" "$(json_get "$R" values)")
  LOAD_CPUS+=("$(/usr/bin/python3 -c "import json; a = json.loads('$SRC'); b = json.loads('$R'); print('%.2f' % ((a['cpu_s'] + b['cpu_s']) / max(b['values'], 1) * 1e6))")")
  [ "$fwd" = tbgw ] && TBGW_WINDOW[$q]=$(json_get "$SRC" max_inflight) && cat "$WORK/tbgw-direct.log" >>"$WORK/tbgw.log"
  return 0
}
if [ "$PEERS" != broker ]; then
  declare -A DCEIL_IN DSRC_RATE DRELAY_MED DTBGW_MED DRELAY_CPU_MED DTBGW_CPU_MED TBGW_WINDOW
  LOAD_CPUS=() # CPU s per 1M values of bench_source + bench_sink --serve during the forwarder runs
  for q in $QOSES; do
    ds=$(free_port)
    "$BUILD/bench_source" -p "$ds" -n "$CEIL_N" -d "$D" -q "$q" >"$WORK/dsrc.out" 2>"$WORK/dsrc.err" &
    so=$!; PIDS+=("$so")
    for _ in $(seq 100); do grep -q listening "$WORK/dsrc.err" 2>/dev/null && break; sleep 0.05; done
    R=$("$BUILD/bench_sink" -p "$ds" -n $(( CEIL_N * 4 )) -i 5000 -t 600 -s "bench/#" 2>/dev/null)
    wait "$so" || true
    DCEIL_IN[$q]=$(json_get "$R" values_per_s)
    DSRC_RATE[$q]=$(json_get "$(cat "$WORK/dsrc.out")" rate)
    row "direct ceiling: bench_source (QoS $q) -> sink reader, no forwarder" "$CEIL_N" "$R" - -
  done
  # QoS 1 at the in-flight window a forwarder announces (MQTT 5 Receive Maximum; libmosquitto's
  # default, 20, is what the gateway's MQTT 5 client announces unless configured otherwise): a
  # round trip per window, the bound such a forwarder meets from any broker
  CEIL_WIN=${BENCH_CEIL_INFLIGHT:-20}
  DCEIL_WIN=""
  if [[ " $QOSES " == *" 1 "* ]]; then
    ds=$(free_port)
    : >"$WORK/dsrc.err"
    "$BUILD/bench_source" -p "$ds" -n "$CEIL_N" -d "$D" -q 1 >"$WORK/dsrc.out" 2>"$WORK/dsrc.err" &
    so=$!; PIDS+=("$so")
    for _ in $(seq 100); do grep -q listening "$WORK/dsrc.err" 2>/dev/null && break; sleep 0.05; done
    R=$("$BUILD/bench_sink" -p "$ds" -n $(( CEIL_N * 4 )) -i 5000 -t 600 -s "bench/#" -R "$CEIL_WIN" 2>/dev/null)
    wait "$so" || true
    DCEIL_WIN=$(json_get "$R" values_per_s)
    row "direct ceiling: bench_source (QoS 1) -> sink reader announcing Receive Maximum $CEIL_WIN" "$CEIL_N" "$R" - -
  fi
  dp=$(free_port)
  "$BUILD/bench_sink" --serve -p "$dp" -n $(( CEIL_N * 4 )) -i 5000 -t 600 -m "$MAXP" >"$WORK/dsink.out" 2>"$WORK/dsink.err" &
  sk=$!; PIDS+=("$sk")
  for _ in $(seq 100); do grep -q ready "$WORK/dsink.err" 2>/dev/null && break; sleep 0.05; done
  "$BUILD/bench_loadgen" -p "$dp" -n "$CEIL_N" -d "$D" -q 1 -k $(( MAXP * 8 / 10 )) -t relay/telemetry >/dev/null
  wait "$sk" || true
  R=$(cat "$WORK/dsink.out")
  DCEIL_OUT=$(json_get "$R" values_per_s)
  row "direct ceiling: packs (QoS 1) -> bench_sink --serve" "$CEIL_N" "$R" - -
  for q in $QOSES; do
    RELAY_RATES=(); TBGW_RATES=(); TBGW_CPUS=(); RELAY_CPUS=()
    for i in $(seq "$REPEAT"); do
      direct_case relay "$q"
      kill "$FWP"; wait "$FWP" 2>/dev/null || true
      RELAY_RATES+=("$(json_get "$R" values_per_s)"); RELAY_CPUS+=("$CPU_PER_M")
      row "direct: bare relay, devices QoS $q, flat out (run $i)" "$N" "$R" "$CPU_PER_M" -
      direct_case tbgw "$q"
      TBGW_RATES+=("$(json_get "$R" values_per_s)"); TBGW_CPUS+=("$CPU_PER_M")
      row "direct: tbgw, devices QoS $q, flat out (run $i)" "$N" "$R" "$CPU_PER_M" "$(( $(hwm_kb "$FWP") / 1024 ))"
      kill "$FWP"; wait "$FWP" 2>/dev/null || true
    done
    DRELAY_MED[$q]=$(median "${RELAY_RATES[@]}"); DTBGW_MED[$q]=$(median "${TBGW_RATES[@]}")
    DRELAY_CPU_MED[$q]=$(median "${RELAY_CPUS[@]}"); DTBGW_CPU_MED[$q]=$(median "${TBGW_CPUS[@]}")
  done
  cp "$WORK/tbgw.log" "$OUT/tbgw.log"
fi

ratio() { /usr/bin/python3 -c "print('%.2f' % (float('$1') / max(float('$2'), 1e-9)))"; }
# ceiling / forwarder, flagged when the load side is not at least 1.5x the forwarder it measures
cratio() { /usr/bin/python3 -c "r = float('$1') / max(float('$2'), 1e-9); print('%.2fx' % r + ('' if r >= 1.5 else ' (BELOW 1.5x: the load side bounds this figure)'))"; }
lower() { /usr/bin/python3 -c "print(min(float('$1'), float('$2')))"; }
{
  echo
  if [ "$PEERS" != direct ]; then
    echo "Brokers (mosquitto external + platform):"
    for q in $QOSES; do
      echo "Devices QoS $q, medians of $REPEAT flat-out runs: bare relay ${RELAY_MED[$q]} values/s (${RELAY_CPU_MED[$q]} CPU s/1M), tbgw ${TBGW_MED[$q]} values/s (${TBGW_CPU_MED[$q]} CPU s/1M) = **$(ratio "${TBGW_MED[$q]}" "${RELAY_MED[$q]}")x the relay**; the bench's ceiling without a forwarder ${CEIL_IN[$q]} values/s in (the generator alone wrote $(( ${LOADGEN_RATE[$q]} * 4 )) values/s), $CEIL_OUT out = $(ratio "${CEIL_IN[$q]}" "${RELAY_MED[$q]}")x / $(ratio "$CEIL_OUT" "${RELAY_MED[$q]}")x the relay, $(ratio "${CEIL_IN[$q]}" "${TBGW_MED[$q]}")x / $(ratio "$CEIL_OUT" "${TBGW_MED[$q]}")x tbgw."
    done
    for rate in $RELAY_RATES_FIXED; do
      [ -n "${TBGW_FIXED_CPU[$rate]:-}" ] && echo "At $rate msg/s: tbgw ${TBGW_FIXED_CPU[$rate]} CPU s/1M, the relay ${RELAY_FIXED_CPU[$rate]} = **$(ratio "${TBGW_FIXED_CPU[$rate]}" "${RELAY_FIXED_CPU[$rate]}")x the relay's CPU**."
    done
    echo "tbgw idle RSS: $(( IDLE_RSS / 1024 )) MB."
  fi
  if [ "$PEERS" != broker ]; then
    echo "Direct (bench_source -> forwarder -> bench_sink --serve):"
    for q in $QOSES; do
      c=$(lower "${DCEIL_IN[$q]}" "$DCEIL_OUT")
      ct=$c; win=""
      if [ "$q" = 1 ] && [ -n "$DCEIL_WIN" ] && [ "${TBGW_WINDOW[$q]:-0}" -le "$CEIL_WIN" ] 2>/dev/null; then
        ct=$(lower "$DCEIL_WIN" "$DCEIL_OUT")
        win=" (tbgw let ${TBGW_WINDOW[$q]:-?} messages be in flight: against the ceiling at $CEIL_WIN in flight, $DCEIL_WIN values/s)"
      fi
      echo "Devices QoS $q: load side ceiling ${DCEIL_IN[$q]} values/s in (the source wrote $(( ${DSRC_RATE[$q]} * 4 )) values/s), $DCEIL_OUT out = $(cratio "$c" "${DRELAY_MED[$q]}") the relay, $(cratio "$ct" "${DTBGW_MED[$q]}") tbgw$win; medians of $REPEAT flat-out runs: bare relay ${DRELAY_MED[$q]} values/s (${DRELAY_CPU_MED[$q]} CPU s/1M), tbgw ${DTBGW_MED[$q]} values/s (${DTBGW_CPU_MED[$q]} CPU s/1M) = **$(ratio "${DTBGW_MED[$q]}" "${DRELAY_MED[$q]}")x the relay**."
    done
    echo "The load side (bench_source + bench_sink --serve) took $(median "${LOAD_CPUS[@]}") CPU s per 1M values in those runs (median; $(printf '%s ' "${LOAD_CPUS[@]}")), against the forwarders' figures above."
  fi
  echo "($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $LOAD_BEFORE before / $(cut -d' ' -f1-3 /proc/loadavg) after, $STORAGE storage, $N messages x 4 values over $D devices; the gateway and the relay subscribe and publish with QoS 1)"
} >>"$RESULTS"
cat "$RESULTS"
