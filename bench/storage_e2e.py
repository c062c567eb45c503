#!/usr/bin/python3
"""End-to-end storage benchmark: values/s from the test connector to a mosquitto "platform" per
storage type and fsync policy, and the replay rate of a backlog after an outage.

usage: /usr/bin/python3 bench/storage_e2e.py [--seconds 8] [--devices 20] [--keys 4] [--backlog 2000]
Needs a build in ./build (tbgw and plugins/test_connector.so) or TBGW_BIN / TBGW_BUILD_DIR."""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
os.environ.setdefault("TBGW_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "tbgw"))
os.environ.setdefault("TBGW_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "build"))
import tbgwtest  # noqa: E402
from tbgwtest import Broker, Gateway, Platform, test_connector, wait_for  # noqa: E402


class Counter(Platform):
    """Counts telemetry values ("seq" occurrences x values per entry) without keeping messages."""

    def __init__(self, broker, per_entry):
        super().__init__(broker, limits={"maxPayloadSize": 65536, "maxInflightMessages": 1000})
        self.per_entry = per_entry
        self.values = 0
        self.count_lock = threading.Lock()

    def _on_message(self, client, userdata, msg):
        if msg.topic == "v1/gateway/telemetry":
            n = msg.payload.count(b'"seq"')
            with self.count_lock:
                self.values += n * self.per_entry
        elif msg.topic.startswith("v1/devices/me/rpc/request/") and b"getSessionLimits" in msg.payload:
            rid = msg.topic.rsplit("/", 1)[1]
            client.publish("v1/devices/me/rpc/response/" + rid, json.dumps(self.limits), qos=1)

    def get(self):
        with self.count_lock:
            return self.values


STORAGES = [
    ("memory", "-", {"type": "memory", "max_records_count": 2000000, "read_records_count": 1000}),
    ("file", "always", {"type": "file", "data_folder_path": "./data/", "fsync": "always", "max_file_count": 1000,
                        "max_records_per_file": 100000, "max_read_records_count": 1000}),
    ("file", "interval", {"type": "file", "data_folder_path": "./data/", "max_file_count": 1000,
                          "max_records_per_file": 100000, "max_read_records_count": 1000}),
    ("sqlite", "always", {"type": "sqlite", "data_file_path": "./data/", "fsync": "always",
                          "max_read_records_count": 1000}),
    ("sqlite", "interval", {"type": "sqlite", "data_file_path": "./data/", "max_read_records_count": 1000}),
]


def live_rate(storage, args):
    work = tempfile.mkdtemp(prefix="tbgw-bench-")
    broker = Broker(work, name="platform").start()
    plat = Counter(broker, 1 + args.keys).start()
    gw = Gateway(work, broker.port, connectors=[test_connector(devices=args.devices, intervalMs=0, messages=0,
                                                               keys=args.keys)], storage=storage)
    try:
        gw.start(env={"TBGW_LOG_LEVEL": "WARNING"})
        wait_for(lambda: plat.get() > 0, 20, what="first values")
        time.sleep(2)
        v0, t0 = plat.get(), time.time()
        time.sleep(args.seconds)
        rate = (plat.get() - v0) / (time.time() - t0)
        gw.stop(30)
        return rate
    finally:
        gw.kill()
        plat.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def replay_rate(storage, args):
    work = tempfile.mkdtemp(prefix="tbgw-bench-")
    broker = Broker(work, name="platform").start()
    port = broker.port
    broker.stop()
    rounds = max(1, args.backlog // args.devices)
    total = rounds * args.devices * (1 + args.keys)
    gw = Gateway(work, port, connectors=[test_connector(devices=args.devices, intervalMs=0, messages=rounds,
                                                        keys=args.keys)], storage=storage)
    plat = None
    try:
        gw.start(env={"TBGW_LOG_LEVEL": "WARNING"})
        time.sleep(args.fill)  # the connector stores its rounds while the platform is down
        broker = Broker(work, port=port, name="platform").start()
        plat = Counter(broker, 1 + args.keys).start()
        t0 = time.time()
        wait_for(lambda: plat.get() >= total, 120, interval=0.01, what="backlog of %d values" % total)
        rate = total / (time.time() - t0)
        gw.stop(30)
        return rate, total
    finally:
        gw.kill()
        if plat:
            plat.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--keys", type=int, default=4)
    ap.add_argument("--backlog", type=int, default=20000, help="rounds x devices stored during the outage")
    ap.add_argument("--fill", type=float, default=6, help="seconds of outage")
    ap.add_argument("--only", default="", help="comma-separated storage types to run (default all)")
    args = ap.parse_args()
    print("devices %d, %d values per entry, live window %.0f s, backlog %d entries"
          % (args.devices, 1 + args.keys, args.seconds, args.backlog))
    print("| storage | fsync | live values/s | replay values/s (backlog) |")
    print("|---------|-------|--------------:|--------------------------:|")
    for name, pol, st in STORAGES:
        if args.only and name not in args.only.split(","):
            continue
        live = live_rate(st, args)
        rep, total = replay_rate(st, args)
        print("| %s | %s | %.0f | %.0f (%d values) |" % (name, pol, live, rep, total))
        sys.stdout.flush()


if __name__ == "__main__":
    tbgwtest.SLOW = 1
    main()
