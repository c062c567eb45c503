#!/usr/bin/python3
"""FTP connector benchmark: a large CSV file on a local pyftpdlib server read in PARTIAL mode into a
mosquitto "platform" (a subscriber counting the "value" datapoints): rows/s, gateway CPU per row and
peak RSS (VmHWM), for a small and a large file in separate gateway processes (the file is streamed, so
the peak RSS should not grow with the file). Then 1 MB is appended to the large file: only the new
rows arrive, and the server sends about 1 MB (its RETR log lines), not the file again.

usage: /usr/bin/python3 bench/ftp_bench.py [--small-mb 10] [--large-mb 100]
Needs a build in ./build (tbgw and modules/) or TBGW_BIN / TBGW_BUILD_DIR."""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TBGW_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "tbgw"))
os.environ.setdefault("TBGW_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "build"))
from tbgwtest import Broker, Gateway, free_port, wait_for, wait_port  # noqa: E402
from odbc_bench import Counter, proc_stats  # noqa: E402

ROW = "dev%02d,%d,%d.%03d,%s\n"
PAD = "x" * 30


def write_rows(path, first, mb, mode="w"):
    """Rows first.. until mb megabytes are written; returns the number of rows."""
    n, size, limit = 0, 0, mb * 1024 * 1024
    with open(path, mode) as f:
        if mode == "w":
            f.write("name,ts,value,pad\n")
        chunk = []
        while size < limit:
            i = first + n
            line = ROW % (i % 10, 1700000000000 + i, i % 1000, i % 997, PAD)
            chunk.append(line)
            size += len(line)
            n += 1
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    st = os.stat(path)
    os.utime(path, (st.st_atime, st.st_mtime + 2))  # a new MDTM second
    return n


def retr_bytes(log):
    """Bytes of every RETR pyftpdlib logged as done (" RETR /data/bench.csv completed=1 bytes=N ...")."""
    with open(log, "rb") as f:
        return [int(m) for m in re.findall(rb" RETR \S+ completed=\d+ bytes=(\d+)", f.read())]


def run(work, broker, plat, mb, append_mb=0):
    root = os.path.join(work, "root-%d" % mb)
    os.makedirs(os.path.join(root, "data"))
    csv = os.path.join(root, "data", "bench.csv")
    rows = write_rows(csv, 0, mb)
    port = free_port()
    ftpd_log = os.path.join(work, "ftpd-%d.log" % mb)
    with open(ftpd_log, "wb") as logf:
        ftpd = subprocess.Popen(["/usr/bin/python3", "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", str(port), "-d",
                                 root, "-u", "u", "-P", "p"], stdout=subprocess.DEVNULL, stderr=logf,
                                start_new_session=True)
    wait_port(port)
    cfg = {"parameters": {"host": "127.0.0.1", "port": port, "security": {"type": "basic", "username": "u",
                                                                          "password": "p"}},
           "paths": [{"path": "data/bench.csv", "readMode": "PARTIAL", "pollPeriod": 1, "maxFileSize": 4096,
                      "devicePatternName": "${name}",
                      "timeseries": [{"key": "ts", "value": "${ts}"}, {"key": "value", "value": "${value}"}]}],
           "requestsMapping": {}}
    gdir = os.path.join(work, "gw-%d" % mb)
    os.makedirs(gdir)
    gw = Gateway(gdir, broker.port, connectors=[{"type": "ftp", "name": "FTP", "config": cfg}],
                 storage={"type": "file", "data_folder_path": "./data/", "max_file_count": 2000,
                          "max_records_per_file": 10000, "max_read_records_count": 1000})
    base = plat.get()
    try:
        t0 = time.time()
        gw.start(env={"TBGW_LOG_LEVEL": "WARNING"})
        wait_for(lambda: plat.get() - base >= rows, 600, interval=0.1, what="every row on the platform")
        elapsed = time.time() - t0
        cpu, hwm = proc_stats(gw.proc.pid)
        print("%d MB: rows: %d  elapsed: %.2f s  rows/s: %.0f  gateway CPU: %.2f s (%.2f us per row)  "
              "peak RSS: %d kB" % (mb, rows, elapsed, rows / elapsed, cpu, cpu * 1e6 / rows, hwm))
        time.sleep(1.5)
        extra = plat.get() - base - rows
        if extra:
            print("  %d rows more than the file has" % extra)
        if append_mb:
            before, n_retr, cpu0 = plat.get(), len(retr_bytes(ftpd_log)), cpu
            t0 = time.time()
            new = write_rows(csv, rows, append_mb, mode="a")
            wait_for(lambda: plat.get() - before >= new, 120, interval=0.1, what="the appended rows")
            elapsed = time.time() - t0
            time.sleep(2.5)  # two more polls: nothing else arrives
            cpu, hwm = proc_stats(gw.proc.pid)
            sent = retr_bytes(ftpd_log)[n_retr:]
            print("append %d MB: %d new rows, %d arrived (%.2f s after the write, poll period 1 s); the server "
                  "sent %d bytes in %d RETR; gateway CPU %.2f s, peak RSS %d kB" %
                  (append_mb, new, plat.get() - before, elapsed, sum(sent), len(sent), cpu - cpu0, hwm))
        gw.stop(30)
    finally:
        gw.kill()
        os.killpg(ftpd.pid, signal.SIGKILL)
        ftpd.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small-mb", type=int, default=10)
    ap.add_argument("--large-mb", type=int, default=100)
    ap.add_argument("--append-mb", type=int, default=1)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tbgw-bench-")
    broker = Broker(work, name="platform").start()
    plat = Counter(broker).start()
    try:
        for mb in (args.small_mb, args.large_mb):
            run(work, broker, plat, mb, args.append_mb if mb == args.large_mb else 0)
    finally:
        plat.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
