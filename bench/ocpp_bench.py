#!/usr/bin/python3
"""OCPP central system under load: N charge points (python3-websockets, one asyncio loop) each send
M MeterValues (one CALL at a time, as OCPP-J asks) to tbgw, whose records go to a mosquitto playing
ThingsBoard, where bench_sink counts the values. Prints MeterValues/s, tbgw's CPU per message and RSS
per charge point, and the load generator's own CPU: near one full core means the generator was the
ceiling, not the gateway.
Usage: bench/ocpp_bench.py [N=500] [M=40]   (from the repository root, after `make build`)"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import websockets

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500
M = int(sys.argv[2]) if len(sys.argv) > 2 else 40
BUILD = os.environ.get("BUILD", "build")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("port %d never opened" % port)


def cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


async def charge_point(port, i, sent):
    ws = await websockets.connect("ws://127.0.0.1:%d/bench/CP_%d" % (port, i), subprotocols=["ocpp1.6"],
                                  open_timeout=30, max_queue=None)
    seq = 0

    async def call(action, payload):
        nonlocal seq
        seq += 1
        await ws.send(json.dumps([2, str(seq), action, payload]))
        while True:
            msg = json.loads(await ws.recv())
            if msg[1] == str(seq):
                return msg

    await call("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "CP%d" % i})
    booted[0] += 1
    await start.wait()
    for k in range(M):
        await call("MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": "2026-12-03T10:00:00Z", "sampledValue": [{"value": str(k), "measurand": "Energy"}]}]})
        sent[0] += 1
    await ws.close()


async def load(port):
    global start
    start = asyncio.Event()
    sent = [0]
    tasks = [asyncio.ensure_future(charge_point(port, i, sent)) for i in range(N)]
    while booted[0] < N:  # every charge point connected and booted before the clock starts
        await asyncio.sleep(0.05)
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise failed[0].exception()
    t0 = time.time()
    start.set()
    await asyncio.gather(*tasks)
    return time.time() - t0, sent[0]


booted = [0]


def main():
    work = tempfile.mkdtemp(prefix="tbgw-ocppbench-")
    plat, cs = free_port(), free_port()
    with open(os.path.join(work, "m.conf"), "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
                "max_queued_messages 10000000\nmax_inflight_messages 0\n" % plat)
    procs = [subprocess.Popen(["mosquitto", "-c", os.path.join(work, "m.conf")])]
    wait_port(plat)
    cfg = {"centralSystem": {"host": "127.0.0.1", "port": cs, "connection": {"type": "insecure"}},
           "chargePoints": [{"idRegexpPattern": "bench/CP_", "deviceNameExpression": "${Vendor} ${Model}",
                             "timeseries": [{"messageTypeFilter": "MeterValues,", "key": "energy",
                                             "value": "${meter_value[:].sampled_value[:].value}"}]}]}
    with open(os.path.join(work, "ocpp.json"), "w") as f:
        json.dump(cfg, f)
    with open(os.path.join(work, "tb_gateway.json"), "w") as f:
        json.dump({"thingsboard": {"host": "127.0.0.1", "port": plat, "security": {"accessToken": "B"},
                                   "sessionLimitsTimeoutMs": 0, "statistics": {"enable": False}},
                   "storage": {"type": "memory", "max_records_count": 2000000},
                   "connectors": [{"type": "ocpp", "name": "OCPP", "configuration": "ocpp.json"}]}, f)
    sink = subprocess.Popen([os.path.join(BUILD, "bench_sink"), "-p", str(plat), "-n", str(N * M), "-i", "10000",
                             "-t", "600"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(sink)
    gw = subprocess.Popen([os.path.join(BUILD, "tbgw"), "-c", os.path.join(work, "tb_gateway.json")],
                          env=dict(os.environ, TBGW_LOG_LEVEL="WARNING"), stderr=subprocess.DEVNULL)
    procs.append(gw)
    wait_port(cs)
    try:
        g0, l0 = cpu(gw.pid), time.process_time()
        secs, sent = asyncio.run(load(cs))
        g1, l1 = cpu(gw.pid), time.process_time()
        rss = rss_kb(gw.pid)
        res = json.loads(sink.communicate(timeout=120)[0].strip().splitlines()[-1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    print("charge points: %d, MeterValues sent %d, values received %d (%s)" % (
        N, sent, res["values"], "none lost" if res["values"] >= N * M else "LOST %d" % (N * M - res["values"])))
    print("MeterValues/s: %.0f over %.1f s (each answered before the next, as OCPP-J asks)" % (sent / secs, secs))
    print("tbgw: %.1f µs CPU per message, RSS %d KB (%.1f KB per charge point)" % (
        (g1 - g0) / max(sent, 1) * 1e6, rss, rss / N))
    print("load generator: %.0f%% of one core over the run (near 100%% = the generator was the ceiling)" % (
        100 * (l1 - l0) / secs))


if __name__ == "__main__":
    main()
