#!/usr/bin/python3
"""Back at once after an outage: time from the platform's return to the first delivered value.

Pairs of (mosquitto playing the platform, tbgw with the test connector: 1 device, a value every
100 ms, memory storage) run side by side, one pair per run, so that 10 runs of one outage take one
outage's time. For every outage length the platform brokers are stopped together, kept away for the
outage, and started again (one after the other); per pair the bench takes the time from the moment
its broker accepts TCP connections again to the first telemetry message arriving at a recorder
subscribed on that broker (a persistent session: what the gateway publishes before the recorder has
resumed is queued for it, so the figure is an upper bound by the recorder's own reconnect, a few ms).
It also counts the gateway's connection attempts during the outage ("reconnecting to ThingsBoard in"
log lines) per minute.

--mode closed: the port is closed during the outage (connections refused at once, as a stopped
  ThingsBoard on a reachable host). --mode silent: a listener whose accept queue is full holds the
  port, so SYNs are dropped as by a host that does not answer (a firewall, a dead node behind a
  stale address); the gateway's non-blocking connect must give up by itself.

usage: /usr/bin/python3 bench/outage.py [--outages 5,30] [--runs 10] [--mode closed|silent]
  OUTAGE_LONG=1 adds a 5 min outage with 2 runs (opt-in: the default stays near 1.5 min).
Needs a build in ./build (tbgw and plugins/test_connector.so) or TBGW_BIN / TBGW_BUILD_DIR."""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
os.environ.setdefault("TBGW_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "tbgw"))
os.environ.setdefault("TBGW_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "build"))
from tbgwtest import Broker, Gateway, Platform, SilentPort, test_connector, wait_for  # noqa: E402


class FirstTelemetry(Platform):
    """Records the arrival time of the first telemetry message after arm()."""

    def __init__(self, broker):
        super().__init__(broker)
        self.first = None
        self.armed = True
        self.got = threading.Event()

    def arm(self):
        self.first = None
        self.armed = True
        self.got.clear()

    def _on_message(self, client, userdata, msg):
        if msg.topic == "v1/gateway/telemetry":
            if self.armed and self.first is None:
                self.first = time.time()
                self.got.set()
            return
        super()._on_message(client, userdata, msg)


def accepting(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05):
            return True
    except OSError:
        return False


def start_broker_timed(broker):
    """Starts the broker; returns the time its port first accepted a connection (5 ms polling)."""
    conf = os.path.join(broker.workdir, "%s.conf" % broker.name)
    broker.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        if accepting(broker.port):
            return time.time()
        time.sleep(0.005)
    raise RuntimeError("broker on port %d did not come back" % broker.port)


def attempts(gw):
    return gw.log().count("reconnecting to ThingsBoard in")


def pct(vals, p):
    s = sorted(vals)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def run_outage(length, runs, mode, reconnect_max):
    work = tempfile.mkdtemp(prefix="tbgw-outage-")
    pairs = []
    try:
        for i in range(runs):
            d = os.path.join(work, "p%d" % i)
            os.makedirs(d)
            b = Broker(d, name="platform", persistent=True).start()
            rec = FirstTelemetry(b).start()
            tb = {"reconnectMaxDelayMs": reconnect_max} if reconnect_max else {}
            gw = Gateway(d, b.port, [test_connector(devices=1, intervalMs=100, messages=0, keys=1)],
                         thingsboard=tb).start(env={"TBGW_LOG_LEVEL": "INFO"})
            pairs.append((b, rec, gw))
        for b, rec, gw in pairs:
            wait_for(lambda: rec.got.is_set(), 15, what="first telemetry")
        for b, rec, gw in pairs:
            rec.stop()
        holes = []
        t_down = time.time()
        a0 = []
        for b, rec, gw in pairs:
            b.stop()
            a0.append(attempts(gw))
            if mode == "silent":
                holes.append(SilentPort(b.port))
        time.sleep(max(0.0, length - (time.time() - t_down)))
        lat, per_min = [], []
        ups = []
        for i, (b, rec, gw) in enumerate(pairs):
            if holes:
                holes[i].close()
            t_up = start_broker_timed(b)
            a1 = attempts(gw)
            per_min.append((a1 - a0[i]) * 60.0 / (t_up - t_down))
            rec.arm()
            rec.resume()
            ups.append(t_up)
        for i, (b, rec, gw) in enumerate(pairs):
            if not rec.got.wait(max(0.1, ups[i] + 60 - time.time())):
                lat.append(float("inf"))
            else:
                lat.append(rec.first - ups[i])
        return lat, per_min
    finally:
        for b, rec, gw in pairs:
            gw.kill()
            rec.stop()
            b.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--outages", default="5,30", help="outage lengths in seconds")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--mode", choices=("closed", "silent"), default="closed")
    ap.add_argument("--reconnect-max", type=int, default=0,
                    help="thingsboard.reconnectMaxDelayMs for the gateways (0: the default)")
    args = ap.parse_args()
    cases = [(float(x), args.runs) for x in args.outages.split(",") if x]
    if os.environ.get("OUTAGE_LONG"):
        cases.append((300.0, 2))
    load = os.getloadavg()[0]
    print("| outage | mode | runs | return -> first value p50 s | max s | connection attempts per minute (mean) |")
    print("|---|---|---|---|---|---|")
    for length, runs in cases:
        lat, per_min = run_outage(length, runs, args.mode, args.reconnect_max)
        print("| %g s | %s | %d | %.2f | %.2f | %.1f |" % (length, args.mode, runs, pct(lat, 50), max(lat),
                                                         sum(per_min) / len(per_min)))
        print("  latencies s: " + " ".join("%.2f" % x for x in sorted(lat)), flush=True)
    print("(%s, %d cores, load average %.2f at the start; reconnectMaxDelayMs %s)" % (
        time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), os.cpu_count(), load,
        args.reconnect_max or "default"))


if __name__ == "__main__":
    main()
