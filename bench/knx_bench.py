#!/usr/bin/python3
"""KNX benchmark: group telegrams/s from the bus into the platform, tbgw's CPU (% of one core) and RSS.
tbgw tunnels to a KNXnet/IP server and listens to D devices x K group addresses (DPT 9); a mosquitto
"platform" counts the telemetry values that arrive. Two sources:
  knxd: knxd (dummy bus) as the server and a client of knxd's own protocol writing the addresses at a
        fixed rate. knxd paces its bus like a TP1 line (about 50 telegrams/s), which bounds this one.
  peer: bench_knx_peer, a tunnelling server pushing GroupValueWrite indications itself, each after the
        previous one was acknowledged (rate 0 = as fast as tbgw acknowledges).

usage: /usr/bin/python3 bench/knx_bench.py [--seconds 5] [--devices 10] [--keys 10] [--knxd-rates 20,45]
                                           [--peer-rates 1000,0]
Needs a build in ./build (tbgw, bench_knx_peer) or TBGW_BIN / TBGW_BUILD_DIR."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
os.environ.setdefault("TBGW_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "tbgw"))
os.environ.setdefault("TBGW_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "build"))
from tbgwtest import Broker, Gateway, Platform  # noqa: E402
from knxbus import Knxd, KnxBus, dpt9, free_udp_port  # noqa: E402


class Counter(Platform):
    """Counts telemetry values (occurrences of the key prefix) without keeping messages."""

    def __init__(self, broker):
        super().__init__(broker, limits={"maxPayloadSize": 65536, "maxInflightMessages": 1000})
        self.values = 0
        self.count_lock = threading.Lock()

    def _on_message(self, client, userdata, msg):
        if msg.topic == "v1/gateway/telemetry":
            n = msg.payload.count(b'"k')
            with self.count_lock:
                self.values += n
        elif msg.topic.startswith("v1/devices/me/rpc/request/") and b"getSessionLimits" in msg.payload:
            rid = msg.topic.rsplit("/", 1)[1]
            client.publish("v1/devices/me/rpc/response/" + rid, json.dumps(self.limits), qos=1)

    def count(self):
        with self.count_lock:
            return self.values


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def addresses(devices, keys):
    """1/0/0, 1/0/1, ... (the same numbering as bench_knx_peer: 0x0800 + i)."""
    return ["1/%d/%d" % (i >> 8, i & 0xFF) for i in range(devices * keys)]


def start_peer(port, naddr, rate, seconds):
    peer = subprocess.Popen([os.path.join(os.environ["TBGW_BUILD_DIR"], "bench_knx_peer"), str(port), str(naddr),
                             str(rate), str(seconds)], stdout=subprocess.PIPE, start_new_session=True)
    assert b"ready" in peer.stdout.readline()
    return peer


def run(args, source, rate, workdir):
    if source == "peer":
        return run_peer(args, rate, workdir)
    knxd = Knxd(workdir).start()
    broker = Broker(workdir, name="platform").start()
    platform = Counter(broker).start()
    gas = addresses(args.devices, args.keys)
    gw = gateway_for(args, workdir, broker, knxd.udp_port)
    src = KnxBus(knxd.tcp_port).start()
    try:
        gw.wait_log("tunnel to 127.0.0.1:%d open" % knxd.udp_port, 15)
        time.sleep(1.5)  # the first polls of every address (nobody answers them) are over
        base = platform.count()
        cpu0, t0 = proc_cpu_s(gw.proc.pid), time.time()
        sent = 0
        end = t0 + args.seconds
        payload = [0x00, 0x80] + dpt9(21.5)
        while time.time() < end:
            src.send(gas[sent % len(gas)], payload)
            sent += 1
            if rate:
                nxt = t0 + sent / rate
                delay = nxt - time.time()
                if delay > 0:
                    time.sleep(delay)
        send_s = time.time() - t0
        # wait until arrivals stop growing
        last, stable = -1, 0
        while stable < 5:
            time.sleep(0.1)
            c = platform.count()
            stable = stable + 1 if c == last else 0
            last = c
        elapsed = time.time() - t0 - 0.5
        cpu = proc_cpu_s(gw.proc.pid) - cpu0
        rss = proc_rss_kb(gw.proc.pid)
        got = platform.count() - base
        return {"rate": rate or "max", "sent": sent, "sent_per_s": sent / send_s, "arrived": got,
                "arrived_per_s": got / max(elapsed, send_s), "cpu_pct": 100 * cpu / max(elapsed, send_s),
                "rss_mb": rss / 1024}
    finally:
        src.stop()
        gw.stop()
        platform.stop()
        broker.stop()
        knxd.stop()


def gateway_for(args, workdir, broker, port):
    gas = addresses(args.devices, args.keys)
    devices = []
    for d in range(args.devices):
        devices.append({"deviceInfo": {"deviceNameExpression": "Bench %d" % d}, "pollPeriod": 3600000,
                        "timeseries": [{"key": "k%d" % k, "groupAddress": gas[d * args.keys + k], "type": "2byte_float"}
                                       for k in range(args.keys)]})
    cfg = {"client": {"type": "TUNNELING", "gatewayIP": "127.0.0.1", "gatewayPort": port}, "devices": devices}
    gw = Gateway(workdir, broker.port, connectors=[{"type": "knx", "name": "KNX", "config": cfg}],
                 storage={"type": "memory", "read_records_count": 1000, "max_records_count": 1000000})
    return gw.start(env={"TBGW_LOG_LEVEL": "INFO"})


def run_peer(args, rate, workdir):
    broker = Broker(workdir, name="platform").start()
    platform = Counter(broker).start()
    port = free_udp_port()
    naddr = args.devices * args.keys
    peer = start_peer(port, naddr, rate, args.seconds)
    gw = gateway_for(args, workdir, broker, port)
    try:
        gw.wait_log("tunnel to 127.0.0.1:%d open" % port, 15)
        t0 = time.time()
        base, cpu0 = platform.count(), proc_cpu_s(gw.proc.pid)
        out = json.loads(peer.stdout.readline())
        peer.wait(10)
        last, stable = -1, 0
        while stable < 5:
            time.sleep(0.1)
            c = platform.count()
            stable = stable + 1 if c == last else 0
            last = c
        cpu = proc_cpu_s(gw.proc.pid) - cpu0
        busy = time.time() - t0 - 0.5
        got = platform.count() - base
        return {"rate": rate or "max", "sent": out["pushed"], "sent_per_s": out["pushed"] / args.seconds,
                "arrived": got, "arrived_per_s": got / args.seconds, "cpu_pct": 100 * cpu / busy,
                "rss_mb": proc_rss_kb(gw.proc.pid) / 1024}
    finally:
        gw.stop()
        if peer.poll() is None:
            peer.kill()
        platform.stop()
        broker.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--knxd-rates", default="20,45")
    ap.add_argument("--peer-rates", default="1000,0")
    args = ap.parse_args()
    print("| source | rate (/s) | telegrams sent (/s) | values on the platform (/s) | tbgw CPU (% of a core) | tbgw RSS |")
    print("|---|---|---|---|---|---|")
    runs = [("knxd", int(x)) for x in args.knxd_rates.split(",") if x] + \
           [("peer", int(x)) for x in args.peer_rates.split(",") if x]
    for source, r in runs:
        workdir = tempfile.mkdtemp(prefix="tbgw-knx-bench-")
        try:
            res = run(args, source, r, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print("| %s | %s | %d (%.0f) | %d (%.0f) | %.1f | %.1f MB |" % (
            source, res["rate"], res["sent"], res["sent_per_s"], res["arrived"], res["arrived_per_s"],
            res["cpu_pct"], res["rss_mb"]))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
