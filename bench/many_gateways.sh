#!/usr/bin/env bash
# Many gateways against one platform: N tbgw processes on this machine, each with its own devices
# (the test connector: D devices, K keys + seq, one round every I ms, M rounds), all publishing to one
# mosquitto that plays ThingsBoard, counted by bench_sink. Prints the values delivered (all must
# arrive), the total values/s, and CPU and RSS per gateway; the broker's and the sink's CPU show
# whether the load side was the ceiling.
# Usage: bench/many_gateways.sh [N] [D] [M]   (from the repository root, after `make build`)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
devs=${2:-20}
rounds=${3:-100}
keys=${KEYS:-4}
interval=${INTERVAL_MS:-100}
work=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 1000000\n' \
  "$port" > "$work/m.conf"
mosquitto -c "$work/m.conf" & mpid=$!
pids=()
trap 'kill $mpid ${spid:-} "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 0.3
expected=$(( n * devs * rounds * (keys + 1) ))
./build/bench_sink -p "$port" -n "$expected" -i 10000 -t 600 > "$work/sink.json" & spid=$!
sleep 0.3
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
m0=$(cpu $mpid)
for i in $(seq 1 "$n"); do
  d="$work/gw$i"
  mkdir -p "$d"
  cat > "$d/tb_gateway.json" <<CONF
{"thingsboard": {"host": "127.0.0.1", "port": $port, "security": {"accessToken": "gateway-$i"},
                 "sessionLimitsTimeoutMs": 0, "minPackSendDelayMS": 50},
 "storage": {"type": "memory", "max_records_count": 1000000},
 "connectors": [{"type": "sim", "name": "Sim", "configuration": "sim.json",
                 "plugin": "$PWD/build/plugins/test_connector.so"}]}
CONF
  printf '{"devices": %d, "intervalMs": %d, "keys": %d, "messages": %d, "deviceNamePrefix": "Site %d Device "}\n' \
    "$devs" "$interval" "$keys" "$rounds" "$i" > "$d/sim.json"
  TBGW_LOG_LEVEL=WARNING ./build/tbgw -c "$d/tb_gateway.json" 2>"$d/log" &
  pids+=($!)
done
# While they run: the largest RSS seen per gateway (sampled every 0.5 s).
peak=0
while kill -0 $spid 2>/dev/null; do
  for p in "${pids[@]}"; do
    r=$(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    [ "$r" -gt "$peak" ] && peak=$r
  done
  sleep 0.5
done
total_cpu=0
rss_sum=0
for p in "${pids[@]}"; do
  total_cpu=$(( total_cpu + $(cpu "$p") ))
  rss_sum=$(( rss_sum + $(awk '/VmRSS/ {print $2}' "/proc/$p/status") ))
done
m1=$(cpu $mpid)
cat "$work/sink.json"
/usr/bin/python3 - "$work/sink.json" "$n" "$expected" "$total_cpu" "$tck" "$rss_sum" "$peak" "$(( m1 - m0 ))" <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
n, expected, cpu, tck, rss, peak, mcpu = (int(x) for x in sys.argv[2:])
secs = max(s.get("seconds", 0), 1e-9)
print("gateways: %d, values expected %d, received %d (%s)" % (n, expected, s["values"],
      "none lost" if s["values"] >= expected else "LOST %d" % (expected - s["values"])))
print("total: %.0f values/s over %.1f s" % (s["values"] / secs, secs))
print("per gateway: CPU %.3f s (%.2f s per million values), RSS %.0f KB at the end, peak %d KB" %
      (cpu / tck / n, cpu / tck / max(s["values"], 1) * 1e6, rss / n, peak))
print("broker (mosquitto) CPU: %.2f s for the run" % (mcpu / tck))
PY
