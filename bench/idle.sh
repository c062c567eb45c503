#!/usr/bin/env bash
# Idle figures of tbgw with one connector (the test connector, 1 device, 1 message/s):
# RSS after 5 s, time from exec to the first telemetry on the platform, CPU over SECONDS.
# Usage: bench/idle.sh [SECONDS]   (from the repository root, after `make build`)
# PMAP=1 lists the largest mappings (PMAP_LINES=N of them); STRACE=1 counts 10 s of system calls.
#
# bench/idle.sh --connectors [SECONDS] [CALLS]: the gateway with MQTT + Modbus + OPC-UA connectors
# idle (quiet broker, one slave polled every 10 s, 100 subscribed OPC-UA nodes that do not change):
# context switches per second of every thread over SECONDS (30), then platform -> device -> platform
# RPC latency of each connector at idle, p50/p99 over CALLS (100) calls (bench/idle_connectors.py;
# needs the bench_modbus_slave and bench_opcua_peer targets built).
#
# bench/idle.sh --peers [SECONDS] [CALLS]: the same figures for the Socket, SNMP, KNX, CAN and ODBC
# connectors against their real peers (a connected silent TCP device; snmpd, knxd and a SQLite file
# polled every 10 s; an slcan adapter on a socat pty pair) (bench/idle_peers.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--connectors" ]; then
  shift
  exec /usr/bin/python3 bench/idle_connectors.py "${1:-30}" "${2:-100}"
fi
if [ "${1:-}" = "--peers" ]; then
  shift
  exec /usr/bin/python3 bench/idle_peers.py "${1:-30}" "${2:-100}"
fi
secs=${1:-30}
work=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n' "$port" > "$work/m.conf"
mosquitto -c "$work/m.conf" & mpid=$!
trap 'kill $mpid ${gpid:-} ${spid:-} 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 0.3
cat > "$work/tb_gateway.json" <<CONF
{"thingsboard": {"host": "127.0.0.1", "port": $port, "security": {"accessToken": "t"},
                 "sessionLimitsTimeoutMs": 0},
 "storage": {"type": "memory"},
 "connectors": [{"type": "sim", "name": "Sim", "configuration": "sim.json",
                 "plugin": "$PWD/build/plugins/test_connector.so"}]}
CONF
echo '{"devices": 1, "intervalMs": 1000, "keys": 4}' > "$work/sim.json"
mosquitto_sub -p "$port" -t v1/gateway/telemetry -C 1 > "$work/first" & spid=$!
sleep 0.2
t0=$(date +%s%N)
TBGW_LOG_LEVEL=WARNING ./build/tbgw -c "$work/tb_gateway.json" 2>"$work/log" & gpid=$!
wait $spid
t1=$(date +%s%N)
echo "start-up to first telemetry on the platform: $(( (t1 - t0) / 1000000 )) ms"
sleep 5
echo "RSS after 5 s: $(awk '/VmRSS/ {print $2, $3}' /proc/$gpid/status)"
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$gpid/stat)
[ -n "${PMAP:-}" ] && pmap -x $gpid | sort -k3 -n | tail -${PMAP_LINES:-12}
[ -n "${STRACE:-}" ] && timeout 10 strace -c -f -p $gpid 2>&1 | head -25
sleep "$secs"
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$gpid/stat)
tck=$(getconf CLK_TCK)
awk -v d=$(( u1 + s1 - u0 - s0 )) -v t="$tck" -v s="$secs" 'BEGIN {printf "CPU over %d s: %.3f%% of one core\n", s, 100 * d / t / s}'
echo "RSS after $((secs + 5)) s: $(awk '/VmRSS/ {print $2, $3}' /proc/$gpid/status)"
