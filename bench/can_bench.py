#!/usr/bin/python3
"""CAN connector throughput over slcan: N classic frames (id 0x100, 4 data bytes) written into the master
of a pty as an slcan adapter would send them, tbgw's CAN connector on the other end
(interface slcan), records counted by bench_sink on a mosquitto playing ThingsBoard. Runs once paced
at the rate of a saturated 1 Mbit/s bus (about 8,000 frames/s of 4 data bytes) and once flat out.
Prints the values delivered per second, tbgw's CPU per value, and the writer's own CPU (near 100 % of a core: the
generator was the ceiling).
Usage: bench/can_bench.py [N=40000]   (from the repository root, after `make build`)"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import tty

N = int(sys.argv[1]) if len(sys.argv) > 1 else 40000
BUILD = os.environ.get("BUILD", "build")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    raise SystemExit("timed out")


def cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def run(rate):
    work = tempfile.mkdtemp(prefix="tbgw-canbench-")
    plat = free_port()
    procs = []
    try:
        with open(os.path.join(work, "m.conf"), "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
                    "max_queued_messages 10000000\nmax_inflight_messages 0\n" % plat)
        procs.append(subprocess.Popen(["mosquitto", "-c", os.path.join(work, "m.conf")]))
        # one pty: the bench holds the master (the adapter's side), the connector opens the slave
        fd, slave = os.openpty()
        gw_end = os.ttyname(slave)
        tty.setraw(slave)
        cfg = {"interface": "slcan", "channel": gw_end, "devices": [
            {"name": "Bench", "timeseries": [{"key": "v", "nodeId": 256, "value": "0:4:big:int"}]}]}
        with open(os.path.join(work, "can.json"), "w") as f:
            json.dump(cfg, f)
        with open(os.path.join(work, "tb_gateway.json"), "w") as f:
            json.dump({"thingsboard": {"host": "127.0.0.1", "port": plat, "security": {"accessToken": "B"},
                                       "sessionLimitsTimeoutMs": 0, "statistics": {"enable": False}},
                       "storage": {"type": "memory", "max_records_count": 2000000},
                       "connectors": [{"type": "can", "name": "CAN", "configuration": "can.json"}]}, f)
        time.sleep(0.3)
        sink = subprocess.Popen([os.path.join(BUILD, "bench_sink"), "-p", str(plat), "-n", str(N), "-i", "8000",
                                 "-t", "300"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(sink)
        gw = subprocess.Popen([os.path.join(BUILD, "tbgw"), "-c", os.path.join(work, "tb_gateway.json")],
                              env=dict(os.environ, TBGW_LOG_LEVEL="WARNING"), stderr=open(os.path.join(work, "gw.log"), "w"))
        procs.append(gw)
        deadline = time.time() + 10
        buf = b""
        while b"O\r" not in buf and time.time() < deadline:  # the connector's set-up: C, S6, O
            try:
                buf += os.read(fd, 64)
            except BlockingIOError:
                pass
        g0, w0, t0 = cpu(gw.pid), time.process_time(), time.time()
        batch = 100
        for i in range(0, N, batch):
            os.write(fd, b"".join(b"t1004%08X\r" % (k & 0xFFFFFFFF) for k in range(i, min(i + batch, N))))
            if rate:
                ahead = (i + batch) / rate - (time.time() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        w1 = time.process_time()
        res = json.loads(sink.communicate(timeout=120)[0].strip().splitlines()[-1])
        g1 = cpu(gw.pid)
        secs = max(res.get("seconds", 0), 1e-9)
        os.close(fd)
        os.close(slave)
        if os.environ.get("SHOW_LOG"):
            print(open(os.path.join(work, "gw.log")).read()[-2000:])
        return res["values"], secs, (g1 - g0) / max(res["values"], 1) * 1e6, 100 * (w1 - w0) / (time.time() - t0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def main():
    for label, rate in (("paced at a full 1 Mbit/s bus (8,000 frames/s)", 8000), ("flat out", 0)):
        got, secs, us, wcpu = run(rate)
        print("%s: %d of %d frames' values reached the platform, %.0f values/s, tbgw %.1f µs CPU per value, "
              "writer %.0f%% of a core" % (label, got, N, got / secs, us, wcpu))
    print("(frames of one key decoded in the same millisecond carry one timestamp: the packer sends the last, as "
          "ThingsBoard keeps one value per key and millisecond; so a flat-out run delivers fewer values than frames)")


if __name__ == "__main__":
    main()
