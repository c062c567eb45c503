#!/usr/bin/python3
"""ODBC connector benchmark: rows/s from a large SQLite table (SQLite ODBC driver) into a mosquitto
"platform", CPU per row and peak RSS of the gateway. Mapping as the reference's odbc.json (device
name expression, "*" attributes, the list-comprehension value), rows read 10,000 per poll.

usage: /usr/bin/python3 bench/odbc_bench.py [--rows 1000000] [--devices 10]
Needs a build in ./build (tbgw and modules/) or TBGW_BIN / TBGW_BUILD_DIR."""

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
os.environ.setdefault("TBGW_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "tbgw"))
os.environ.setdefault("TBGW_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "build"))
from tbgwtest import Broker, Gateway, Platform, wait_for  # noqa: E402


class Counter(Platform):
    """Counts telemetry entries ("value" keys) without keeping the messages."""

    def __init__(self, broker):
        super().__init__(broker, limits={"maxPayloadSize": 65536, "maxInflightMessages": 1000})
        self.rows = 0
        self.count_lock = threading.Lock()

    def _on_message(self, client, userdata, msg):
        if msg.topic == "v1/gateway/telemetry":
            n = msg.payload.count(b'"value"')
            with self.count_lock:
                self.rows += n
        elif msg.topic.startswith("v1/devices/me/rpc/request/") and b"getSessionLimits" in msg.payload:
            rid = msg.topic.rsplit("/", 1)[1]
            client.publish("v1/devices/me/rpc/response/" + rid, json.dumps(self.limits), qos=1)

    def get(self):
        with self.count_lock:
            return self.rows


def proc_stats(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, hwm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--devices", type=int, default=10)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tbgw-bench-")
    db = os.path.join(work, "bench.db")
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE ts_kv (entity_id TEXT, ts BIGINT, bool_v BOOLEAN, str_v VARCHAR(64), long_v BIGINT,"
                " dbl_v DOUBLE)")
    con.executemany("INSERT INTO ts_kv VALUES (?, ?, NULL, NULL, ?, ?)",
                    (("dev%d" % (i % args.devices), 1000 + i, i if i % 2 else None, None if i % 2 else i * 0.5)
                     for i in range(args.rows)))
    con.execute("CREATE INDEX ts_i ON ts_kv (ts)")
    con.commit()
    con.close()
    cfg = {"connection": {"str": "Driver=SQLite3;Database=%s" % db, "attributes": {"autocommit": True}},
           "polling": {"query": "SELECT bool_v, str_v, dbl_v, long_v, entity_id, ts FROM ts_kv WHERE ts > ?"
                                " ORDER BY ts ASC LIMIT 10000",
                       "period": 0.01, "iterator": {"column": "ts", "query": "SELECT MIN(ts) - 1 FROM ts_kv"}},
           "mapping": {"device": {"type": "postgres", "name": "'ODBC ' + entity_id"}, "attributes": "*",
                       "timeseries": [{"name": "value",
                                       "value": "[i for i in [str_v, long_v, dbl_v,bool_v] if i is not None][0]"}]}}
    broker = Broker(work, name="platform").start()
    plat = Counter(broker).start()
    gw = Gateway(work, broker.port, connectors=[{"type": "odbc", "name": "ODBC", "config": cfg}],
                 storage={"type": "memory", "max_records_count": 4000000, "read_records_count": 1000})
    try:
        t0 = time.time()
        gw.start(env={"TBGW_LOG_LEVEL": "WARNING"})
        wait_for(lambda: plat.get() >= args.rows, 3600, interval=0.2, what="every row on the platform")
        elapsed = time.time() - t0
        cpu, hwm = proc_stats(gw.proc.pid)
        print("rows: %d  elapsed: %.2f s  rows/s: %.0f" % (args.rows, elapsed, args.rows / elapsed))
        print("gateway CPU: %.2f s  (%.2f us per row)  peak RSS: %d kB" % (cpu, cpu * 1e6 / args.rows, hwm))
        gw.stop(30)
    finally:
        gw.kill()
        plat.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
