#!/usr/bin/python3
"""Memory of the gateway: growth per device, and memory given back after a burst.

1. Slope: a fresh gateway per size, RSS and private dirty memory (/proc/<pid>/smaps_rollup
   Private_Dirty: what the process itself wrote, without the shared libraries' clean pages) once
   every device has delivered, then the slope per device between the smallest and the largest size.
   - MQTT connector: N devices publishing once each (bench_loadgen -n N -d N) to an external mosquitto,
     one JSON mapping of 4 values (the run.sh configuration).
   - Modbus connector: N slaves on N ports (bench_modbus_bench --serve N: one process, one epoll loop),
     10 holding registers each, polled every second; measured 8 s after every slave delivered (the
     steady state, once the heap trim of a flow that never pauses has run).
2. Burst (--burst): an MQTT-connector gateway idle, then 100,000 messages x 4 values flat out from 100
   devices (QoS 1), then idle again: RSS and Private_Dirty before, right after the last value
   arrived, and 5 s later (after the gateway trimmed its heap); once forwarded as it comes, once
   stored whole while the platform broker is away and replayed when it is back.

usage: /usr/bin/python3 bench/memory.py [--mqtt 10,1000,10000] [--modbus 10,1000] [--burst 100000]
       (--mqtt "" or --modbus "" skips a part; --burst 0 skips the burst)
Needs a build in ./build (tbgw, bench_loadgen, bench_modbus_bench) or BUILD=dir."""

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build")))
os.environ.setdefault("TBGW_BIN", os.path.join(BUILD, "tbgw"))
os.environ.setdefault("TBGW_BUILD_DIR", BUILD)
from tbgwtest import Broker, Gateway, Platform, wait_for  # noqa: E402


class DeviceCounter(Platform):
    """Counts telemetry values and the distinct devices that delivered."""

    def __init__(self, broker):
        super().__init__(broker, limits={"maxPayloadSize": 65536, "maxInflightMessages": 1000})
        self.devices = set()
        self.values = 0
        self.last = 0.0
        self.clock = threading.Lock()

    def _on_message(self, client, userdata, msg):
        if msg.topic == "v1/gateway/telemetry":
            try:
                p = json.loads(msg.payload)
            except ValueError:
                return
            with self.clock:
                for dev, entries in p.items():
                    self.devices.add(dev)
                    self.values += sum(len(e.get("values", {})) for e in entries)
                self.last = time.time()
            return
        if msg.topic.startswith("v1/devices/me/rpc/request/") and b"getSessionLimits" in msg.payload:
            rid = msg.topic.rsplit("/", 1)[1]
            client.publish("v1/devices/me/rpc/response/" + rid, json.dumps(self.limits), qos=1)

    def n_devices(self):
        with self.clock:
            return len(self.devices)

    def n_values(self):
        with self.clock:
            return self.values


def mem_kb(pid):
    rss = pd = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                pd = int(line.split()[1])
    return rss, pd


def raise_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (16384, 16384))


MQTT_MAPPING = {
    "topicFilter": "bench/+/data", "subscriptionQos": 1,
    "converter": {"type": "json",
                  "deviceInfo": {"deviceNameExpressionSource": "topic", "deviceNameExpression": "(?<=bench/)[^/]+",
                                 "deviceProfileExpressionSource": "constant", "deviceProfileExpression": "bench"},
                  "timeseries": [{"type": "double", "key": "v1", "value": "${v1}"},
                                 {"type": "integer", "key": "v2", "value": "${v2}"},
                                 {"type": "boolean", "key": "v3", "value": "${v3}"},
                                 {"type": "string", "key": "v4", "value": "${v4}"}]}}


class Setup:
    def __init__(self, persistent=False):
        self.work = tempfile.mkdtemp(prefix="tbgw-mem-")
        self.broker = Broker(self.work, name="platform", persistent=persistent).start()
        self.platform = DeviceCounter(self.broker).start()
        self.stop_list = []

    def gateway(self, connectors, storage=None):
        gw = Gateway(self.work, self.broker.port, connectors, storage=storage)
        gw.start(env={"TBGW_LOG_LEVEL": "WARNING"})
        self.stop_list.append(gw)
        return gw

    def close(self):
        for x in self.stop_list:
            x.kill() if isinstance(x, Gateway) else x.stop()
        self.platform.stop()
        self.broker.stop()
        shutil.rmtree(self.work, ignore_errors=True)


def mqtt_gateway(s, storage=None):
    ext = Broker(s.work, name="external").start()
    s.stop_list.append(ext)
    conn = {"type": "mqtt", "name": "Bench MQTT",
            "config": {"broker": {"host": "127.0.0.1", "port": ext.port, "clientId": "tbgw-mem", "version": 5,
                                  "security": {"type": "anonymous"}}, "mapping": [MQTT_MAPPING]}}
    gw = s.gateway([conn], storage)
    time.sleep(1.0)
    return gw, ext


def loadgen(port, n, devices, rate=0):
    subprocess.run([os.path.join(BUILD, "bench_loadgen"), "-p", str(port), "-n", str(n), "-d", str(devices),
                    "-r", str(rate), "-q", "1"], check=True, stdout=subprocess.DEVNULL)


def mqtt_size(n):
    s = Setup()
    try:
        gw, ext = mqtt_gateway(s)
        loadgen(ext.port, n, n)
        wait_for(lambda: s.platform.n_devices() >= n, 60, what="%d MQTT devices delivered" % n)
        time.sleep(2.0)
        return mem_kb(gw.proc.pid)
    finally:
        s.close()


def modbus_size(n):
    s = Setup()
    srv = subprocess.Popen([os.path.join(BUILD, "bench_modbus_bench"), "--serve", str(n)], stdout=subprocess.PIPE,
                           preexec_fn=raise_nofile)
    try:
        ports = [struct.unpack("i", srv.stdout.read(4))[0] for _ in range(n)]
        slaves = [{"host": "127.0.0.1", "port": p, "type": "tcp", "method": "socket", "unitId": 1,
                   "deviceName": "S%d" % i, "deviceType": "modbus", "timeout": 5, "pollPeriod": 1000,
                   "timeseries": [{"tag": "r%d" % k, "type": "16uint", "functionCode": 3, "objectsCount": 1,
                                   "address": k} for k in range(10)]}
                  for i, p in enumerate(ports)]
        gw = Gateway(s.work, s.broker.port, [{"type": "modbus", "name": "Modbus",
                                              "config": {"master": {"slaves": slaves}}}])
        gw.proc = subprocess.Popen([os.environ["TBGW_BIN"], "-c", gw.config_path], cwd=s.work,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=raise_nofile,
                                   env=dict(os.environ, TBGW_LOG_LEVEL="WARNING"), start_new_session=True)
        s.stop_list.append(gw)
        wait_for(lambda: s.platform.n_devices() >= n, 60, what="%d Modbus slaves delivered" % n)
        # Steady state: the polls never pause, so the core's heap trim waits for a pause at most 5 s
        # (TRIM_MAX_WAIT_MS in src/core/gateway.c) after it fell due; measured after that.
        time.sleep(8.0)
        return mem_kb(gw.proc.pid)
    finally:
        srv.kill()
        srv.wait()
        s.close()


def slope(label, sizes, fn):
    res = []
    for n in sizes:
        rss, pd = fn(n)
        res.append((n, rss, pd))
        print("| %s | %d | %.1f | %.1f |" % (label, n, rss / 1024.0, pd / 1024.0), flush=True)
    if len(res) > 1:
        (n0, r0, p0), (n1, r1, p1) = res[0], res[-1]
        print("| %s slope per device (%d -> %d) | | %.2f KB | %.2f KB |" % (
            label, n0, n1, (r1 - r0) / float(n1 - n0), (p1 - p0) / float(n1 - n0)), flush=True)


def burst(n, outage):
    """outage: the platform broker is away while the burst arrives (the whole burst is stored, then
    replayed when it returns); otherwise the gateway forwards it as it comes."""
    s = Setup(persistent=outage)
    try:
        storage = {"type": "memory", "read_records_count": 1000, "max_records_count": 2000000}
        gw, ext = mqtt_gateway(s, storage)
        loadgen(ext.port, 10, 10)
        wait_for(lambda: s.platform.n_values() >= 40, 30, what="warm-up delivered")
        time.sleep(3.0)
        before = mem_kb(gw.proc.pid)
        v0 = s.platform.n_values()
        if outage:
            s.platform.stop()
            s.broker.stop()
        loadgen(ext.port, n, 100)
        if outage:
            time.sleep(1.0)
            stored = mem_kb(gw.proc.pid)
            s.broker.start()
            s.platform.resume()
        wait_for(lambda: s.platform.n_values() >= v0 + 4 * n, 120, what="burst delivered")
        after = mem_kb(gw.proc.pid)
        with open("/proc/%d/status" % gw.proc.pid) as f:
            hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0]
        time.sleep(5.0)
        later = mem_kb(gw.proc.pid)
        print()
        print("| burst of %d messages x 4 values%s | RSS MB | Private_Dirty MB |" % (
            n, ", platform away meanwhile" if outage else ""))
        print("|---|---|---|")
        print("| idle before | %.1f | %.1f |" % (before[0] / 1024.0, before[1] / 1024.0))
        if outage:
            print("| burst stored, platform away | %.1f | %.1f |" % (stored[0] / 1024.0, stored[1] / 1024.0))
        print("| peak (VmHWM) | %.1f | - |" % (hwm / 1024.0))
        print("| right after the last value arrived | %.1f | %.1f |" % (after[0] / 1024.0, after[1] / 1024.0))
        print("| 5 s later | %.1f | %.1f |" % (later[0] / 1024.0, later[1] / 1024.0), flush=True)
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mqtt", default="10,1000,10000")
    ap.add_argument("--modbus", default="10,1000")
    ap.add_argument("--burst", type=int, default=100000)
    a = ap.parse_args()
    print("load average %.2f at the start, %s" % (os.getloadavg()[0], time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())))
    print("| connector | devices | RSS MB | Private_Dirty MB |")
    print("|---|---|---|---|")
    if a.mqtt:
        slope("MQTT", [int(x) for x in a.mqtt.split(",")], mqtt_size)
    if a.modbus:
        slope("Modbus", [int(x) for x in a.modbus.split(",")], modbus_size)
    if a.burst:
        burst(a.burst, False)
        burst(a.burst, True)


if __name__ == "__main__":
    main()
