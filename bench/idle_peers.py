#!/usr/bin/python3
"""Idle gateway with the Socket, SNMP, KNX, CAN and ODBC connectors against their real peers
(bench/idle.sh --peers; peers and configuration in tests/integration/idle_setup.py): a connected,
silent TCP device; snmpd, knxd (a bus device) and a SQLite file polled every 10 s; an slcan adapter
on a socat pty pair with no polling frames.

1. Context switches per second of every gateway thread over SECONDS (voluntary + involuntary, from
   /proc/<pid>/task/*/status); the connector threads are named after their connectors.
2. Platform -> device -> platform RPC latency at idle, CALLS calls per connector one at a time:
   Socket write into the open connection, SNMP reserved get (snmpd), KNX reserved get (a
   GroupValueRead answered by the bus device through knxd), CAN reserved set (a frame written to the
   adapter), ODBC reserved get (a SELECT on the SQLite file). p50/p99/max in ms.
3. CPU-seconds of the gateway over the idle window (utime + stime).

Usage: bench/idle_peers.py [SECONDS] [CALLS]; TBGW_BIN / TBGW_BUILD_DIR select the binaries."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("TBGW_BIN", os.path.join(HERE, "..", "build", "tbgw"))
os.environ.setdefault("TBGW_BUILD_DIR", os.path.join(HERE, "..", "build"))
from tbgwtest import Broker, Gateway, Platform, wait_port  # noqa: E402
from idle_setup import NAMES, IdlePeers, latency_line, rates  # noqa: E402

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
CALLS = int(sys.argv[2]) if len(sys.argv) > 2 else 100


class NoDelayBroker(Broker):
    """mosquitto with TCP_NODELAY, as ThingsBoard's MQTT transport (no Nagle delay in the figures)."""

    def start(self):
        conf = os.path.join(self.workdir, "nodelay.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
                    "set_tcp_nodelay true\n" % self.port)
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)
        return self


class TimedPlatform(Platform):
    """Records when each RPC reply arrives."""

    def __init__(self, broker):
        super().__init__(broker)
        self.cv = threading.Condition()
        self.replies = {}

    def start(self):
        super().start()
        self.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def _on_message(self, client, userdata, msg):
        t = time.perf_counter()
        super()._on_message(client, userdata, msg)
        if msg.topic == "v1/gateway/rpc":
            p = self.all("v1/gateway/rpc")[-1][1]
            with self.cv:
                self.replies[p.get("id")] = (t, p)
                self.cv.notify_all()


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    work = tempfile.mkdtemp(prefix="tbgw-idle-peers-")
    broker = peers = gw = platform = None
    try:
        broker = NoDelayBroker(work).start()
        platform = TimedPlatform(broker).start()
        peers = IdlePeers(work)
        gw = Gateway(work, broker.port, connectors=peers.connectors()).start(env={"TBGW_LOG_LEVEL": "WARNING"})
        peers.settle(platform)
        time.sleep(3)  # first values delivered, sessions settled
        print("load average before: %s" % open("/proc/loadavg").read().split()[:3])
        c0 = cpu_s(gw.proc.pid)
        per = rates(gw.proc.pid, SECS)
        c1 = cpu_s(gw.proc.pid)
        print("context switches per second over %d s (every thread of the gateway):" % SECS)
        total = conn = 0.0
        for name, tid, r in per:
            total += r
            if name in NAMES:
                conn += r
            print("  %-16s %7.2f/s" % ("%s[%s]" % (name, tid), r))
        print("  %-16s %7.2f/s  (the five connector threads: %.2f/s)" % ("total", total, conn))
        print("CPU over the idle window: %.3f s (%.3f%% of one core)" % (c1 - c0, 100 * (c1 - c0) / SECS))
        print("RPC platform -> device -> platform, %d calls each, at idle:" % CALLS)
        rid = 0
        for label, device, method, params, check in peers.calls:
            lat, errors, last = [], 0, None
            for _ in range(CALLS):
                rid += 1
                t = time.perf_counter()
                platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                                "params": params}})
                with platform.cv:
                    if not platform.cv.wait_for(lambda: rid in platform.replies, 6):
                        errors += 1
                        continue
                    t1, p = platform.replies[rid]
                data = p.get("data")
                if isinstance(data, str):
                    try:
                        data = json.loads(data)
                    except ValueError:
                        pass
                last = data
                if not check(data):
                    errors += 1
                lat.append((t1 - t) * 1000)
                time.sleep(0.02)
            print(latency_line(label, lat, errors, str(last)))
        print("load average after: %s" % open("/proc/loadavg").read().split()[:3])
    finally:
        if gw:
            gw.stop()
        if peers:
            peers.stop()
        if platform:
            platform.stop()
        if broker:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
