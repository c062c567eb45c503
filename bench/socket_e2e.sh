#!/usr/bin/env bash
# Socket connector end to end: a paced load (bench_socket_bench --send) into tbgw (Socket connector,
# memory storage) publishing to a mosquitto playing ThingsBoard, where bench_sink counts every value
# and its latency (receive time at the connector -> arrival at the platform). Prints a markdown table.
# Knobs: E2E_MESSAGES (100000), E2E_RATES ("10000 20000"), E2E_CLIENTS (1000), BUILD (build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${E2E_MESSAGES:-100000}
RATES=${E2E_RATES:-"10000 20000"}
CLIENTS=${E2E_CLIENTS:-1000}
WORK=$(mktemp -d /tmp/tbgw-sockbench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
json_get() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

PLAT=$(free_port tcp)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 10000000\nmax_inflight_messages 0\n' "$PLAT" >"$WORK/mosq.conf"
mosquitto -c "$WORK/mosq.conf" >/dev/null 2>&1 & PIDS+=($!)
wait_port "$PLAT"
"$BUILD/bench_sink" -p "$PLAT" -a >/dev/null 2>&1 & PIDS+=($!)

echo "| run | rate msg/s | values received / sent | p50 ms | p99 ms | tbgw CPU µs per message |"
echo "|---|---|---|---|---|---|"
for proto in udp tcp; do
  for rate in $RATES; do
    PORT=$(free_port "$proto")
    mkdir -p "$WORK/cfg"
    cat >"$WORK/cfg/tb_gateway.json" <<CONF
{"thingsboard": {"host": "127.0.0.1", "port": $PLAT, "security": {"type": "accessToken", "accessToken": "BENCH"},
                 "statistics": {"enable": false}, "minPackSendDelayMS": 5},
 "storage": {"type": "memory", "read_records_count": 1000, "max_records_count": 2000000},
 "connectors": [{"type": "socket", "name": "Bench Socket", "configuration": "socket.json"}]}
CONF
    cat >"$WORK/cfg/socket.json" <<CONF
{"socket": {"type": "${proto^^}", "address": "127.0.0.1", "port": $PORT, "bufferSize": 1024, "maxMessagesPerSecond": 0},
 "devices": [{"address": "127.0.0.1:*", "deviceName": "bench", "telemetry": [{"key": "v", "byteFrom": 0, "byteTo": -1}]}]}
CONF
    TBGW_LOG_LEVEL=WARNING "$BUILD/tbgw" -c "$WORK/cfg/tb_gateway.json" >"$WORK/tbgw.log" 2>&1 & GP=$!
    sleep 1
    clients=1; [ "$proto" = tcp ] && clients=$CLIENTS
    "$BUILD/bench_sink" -p "$PLAT" -n "$N" -i 5000 -t 300 >"$WORK/sink.out" 2>"$WORK/sink.err" & SP=$!
    for _ in $(seq 100); do grep -q ready "$WORK/sink.err" 2>/dev/null && break; sleep 0.05; done
    c0=$(cpu_ticks "$GP")
    "$BUILD/bench_socket_bench" --send "$proto" "$PORT" "$N" "$rate" "$clients" >/dev/null
    wait "$SP" || true
    c1=$(cpu_ticks "$GP")
    R=$(cat "$WORK/sink.out")
    V=$(json_get "$R" values)
    CPU=$(/usr/bin/python3 -c "print('%.1f' % ((($c1-$c0)/$HZ) / max($V,1) * 1e6))")
    echo "| ${proto^^}, $clients client(s) | $rate | $V / $N | $(json_get "$R" p50_ms) | $(json_get "$R" p99_ms) | $CPU |"
    kill "$GP"; wait "$GP" 2>/dev/null || true
  done
done
