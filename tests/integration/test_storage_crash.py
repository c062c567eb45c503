"""kill -9 with the whole gateway (issue 4 "Proof"), for each durable storage.

Values flow from the test connector while the platform broker is down, so everything goes to
storage; the gateway is killed with SIGKILL at random moments (several rounds) and restarted.
After the last kill the test reads the storage files itself (file segments / sqlite rows) and
decodes the records. Then the broker comes back and the gateway is restarted once more. Checks:
  - every value found in storage after the last kill arrives at the platform;
  - per run and device the values that arrive are exactly seq 1..n (no gap: only the tail not yet
    appended when the process died may be missing), in order;
  - duplicates are at most one pack per crash.
Also: corrupt/truncated storage files at start-up are cut and reported, and the gateway goes on."""

import json
import os
import random
import sqlite3
import struct
import time
import zlib

from tbgwtest import Broker, GatewayTestCase, Platform, test_connector, wait_for, main, SLOW

PACK = 50


def read_file_storage(folder):
    """Records (bytes) of a tbgw file storage not yet committed, oldest first."""
    committed, gen = 0, -1
    try:
        with open(os.path.join(folder, "tbgw-state.dat"), "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raw = b""
    for off in (0, 512):
        slot = raw[off:off + 32]
        if len(slot) == 32 and slot[:8] == b"TBGWSTA1" and \
                struct.unpack("<I", slot[24:28])[0] == zlib.crc32(slot[:24]):
            g, c = struct.unpack("<QQ", slot[8:24])
            if g > gen:
                gen, committed = g, c
    out = []
    for name in sorted(os.listdir(folder)):
        if not (name.startswith("tbgw-seg-") and name.endswith(".dat")):
            continue
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        if len(data) < 32 or data[:8] != b"TBGWSEG1":
            continue
        seq = struct.unpack("<Q", data[16:24])[0]
        pos = 32
        while pos + 8 <= len(data):
            n, crc = struct.unpack("<II", data[pos:pos + 8])
            payload = data[pos + 8:pos + 8 + n]
            if len(payload) != n or zlib.crc32(data[pos:pos + 4] + payload) != crc:
                break
            if seq > committed:
                out.append(payload)
            seq += 1
            pos += 8 + n
    return out


def read_sqlite_storage(path):
    db = sqlite3.connect(path)
    try:
        return [bytes(r[0]) for r in db.execute("SELECT data FROM tbgw_records ORDER BY seq")]
    finally:
        db.close()


def decode_record(rec):
    """The core's storage record (src/core/record.h) -> (device, [(ts, values)])."""
    assert rec[0:1] == b"T"
    pos = 2
    nl = struct.unpack("<H", rec[pos:pos + 2])[0]
    name = rec[pos + 2:pos + 2 + nl].decode()
    pos += 2 + nl
    tl = struct.unpack("<H", rec[pos:pos + 2])[0]
    pos += 2 + tl + 4
    tel_len = struct.unpack("<I", rec[pos:pos + 4])[0]
    tel = rec[pos + 4:pos + 4 + tel_len].decode()
    entries = json.loads("[" + tel + "]") if tel else []
    return name, [(e["ts"], e["values"]) for e in entries]


class StorageCrash(GatewayTestCase):
    def storage_cfg(self, kind):
        if kind == "file":
            return {"type": "file", "data_folder_path": "./data/", "max_file_count": 1000,
                    "max_records_per_file": 200, "max_read_records_count": PACK}
        return {"type": "sqlite", "data_file_path": "./data/", "max_read_records_count": PACK}

    def stored_values(self, kind, gw):
        folder = os.path.join(gw.cfgdir, "data")
        recs = read_file_storage(folder) if kind == "file" else read_sqlite_storage(os.path.join(folder, "data.db"))
        vals = set()
        for r in recs:
            dev, entries = decode_record(r)
            for ts, v in entries:
                if "seq" in v:
                    vals.add((dev, ts, v["seq"]))
        return vals

    def run_kill_rounds(self, kind):
        rnd = random.Random(os.environ.get("TBGW_CRASH_SEED") or time.time())
        port = self.broker.port
        self.platform.stop()
        self.broker.stop()  # the platform is down: everything goes to storage
        conn = test_connector(devices=2, intervalMs=5, messages=0, keys=2)
        storage = self.storage_cfg(kind)
        runs = []
        stored = set()
        for rnd_i in range(4):
            gw = self.gateway(connectors=[conn], storage=storage)
            t0 = int(time.time() * 1000)
            gw.start()
            time.sleep(rnd.uniform(0.6, 1.6) * SLOW)
            gw.kill()
            runs.append((t0, int(time.time() * 1000)))
            now = self.stored_values(kind, gw)
            self.assertTrue(stored <= now, "values stored before a crash vanished after the next one")
            stored = now
            print("%s round %d: %d values in storage after kill -9" % (kind, rnd_i, len(stored)))
        self.assertGreater(len(stored), 100)
        # the platform comes back
        self.broker = Broker(self.workdir, port=port, name="platform").start()
        self.platform = Platform(self.broker).start()
        gw = self.gateway(connectors=[conn], storage=storage)
        final_start = int(time.time() * 1000)
        gw.start()

        def arrived():
            got = {(d, ts, v.get("seq")) for d, ts, v in self.platform.telemetry()}
            return stored <= got

        wait_for(arrived, 60, what="every stored value at the platform")
        self.assertEqual(gw.stop(), 0)
        tel = self.platform.telemetry()
        print("%s: %d values delivered, %d stored before" % (kind, len(tel), len(stored)))
        dups = len(tel) - len({(d, ts, v["seq"]) for d, ts, v in tel})
        self.assertLessEqual(dups, PACK * 4 * 2, "more duplicates than one pack per crash")
        for (a, b) in runs:
            for dev in ("Test Device 1", "Test Device 2"):
                seqs = [v["seq"] for d, ts, v in tel if d == dev and a <= ts <= b]
                uniq = sorted(set(seqs))
                self.assertTrue(uniq, "no value of a crashed run arrived")
                self.assertEqual(uniq, list(range(1, len(uniq) + 1)), "gap in the values of a crashed run")
                # in order: apart from a re-sent pack, seq never goes back
                back = sum(1 for x, y in zip(seqs, seqs[1:]) if y < x)
                self.assertLessEqual(back, 1)
        self.assertTrue(all(ts >= final_start or any(a <= ts <= b for a, b in runs) for _, ts, _ in tel))

    def test_kill9_file_storage(self):
        self.run_kill_rounds("file")

    def test_kill9_sqlite_storage(self):
        self.run_kill_rounds("sqlite")

    def run_kill_while_delivering(self, kind):
        """The platform stays up: packs are being published and committed when the kill lands."""
        rnd = random.Random(os.environ.get("TBGW_CRASH_SEED") or time.time())
        conn = test_connector(devices=2, intervalMs=5, messages=0, keys=2)
        storage = self.storage_cfg(kind)
        runs, pending = [], set()
        for _ in range(3):
            gw = self.gateway(connectors=[conn], storage=storage)
            t0 = int(time.time() * 1000)
            gw.start()
            time.sleep(rnd.uniform(0.8, 1.6) * SLOW)
            gw.kill()
            runs.append((t0, int(time.time() * 1000)))
            pending |= self.stored_values(kind, gw)  # not yet acknowledged: must arrive later
        gw = self.gateway(connectors=[conn], storage=storage)
        final_start = int(time.time() * 1000)
        gw.start()
        wait_for(lambda: pending <= {(d, ts, v.get("seq")) for d, ts, v in self.platform.telemetry()}, 60,
                 what="every value left in storage at a crash")
        wait_for(lambda: any(ts > final_start for _, ts, _ in self.platform.telemetry()), 30,
                 what="values of the last run")
        print("%s: %d values left in storage at the crashes, all delivered" % (kind, len(pending)))
        self.assertEqual(gw.stop(), 0)
        tel = self.platform.telemetry()
        for (a, b) in runs:
            for dev in ("Test Device 1", "Test Device 2"):
                uniq = sorted({v["seq"] for d, ts, v in tel if d == dev and a <= ts <= b})
                self.assertTrue(uniq)
                self.assertEqual(uniq, list(range(1, len(uniq) + 1)), "gap in the values of a crashed run")

    def test_kill9_while_delivering_file(self):
        self.run_kill_while_delivering("file")

    def test_kill9_while_delivering_sqlite(self):
        self.run_kill_while_delivering("sqlite")

    def test_corrupt_file_storage_at_start(self):
        port = self.broker.port
        self.platform.stop()
        self.broker.stop()
        conn = test_connector(devices=1, intervalMs=5, messages=0, keys=1)
        storage = self.storage_cfg("file")
        gw = self.gateway(connectors=[conn], storage=storage)
        gw.start()
        folder = os.path.join(gw.cfgdir, "data")
        wait_for(lambda: os.path.isdir(folder) and len(read_file_storage(folder)) > 500, 20, what="records in storage")
        gw.kill()
        segs = sorted(n for n in os.listdir(folder) if n.startswith("tbgw-seg-"))
        self.assertGreater(len(segs), 2)
        # damage the newest file's tail (torn write) and a record in the middle of the second file
        with open(os.path.join(folder, segs[-1]), "ab") as f:
            f.write(b"\x40\x00\x00\x00garbage")
        with open(os.path.join(folder, segs[1]), "r+b") as f:
            data = f.read()
            mid = 32 + (len(data) - 32) // 2
            f.seek(mid)
            f.write(bytes([data[mid] ^ 0xFF]))
        intact = {(d, ts, v["seq"]) for d, ent in map(decode_record, read_file_storage(folder))
                  for ts, v in ent}
        self.broker = Broker(self.workdir, port=port, name="platform").start()
        self.platform = Platform(self.broker).start()
        gw2 = self.gateway(connectors=[conn], storage=storage)
        gw2.start()
        wait_for(lambda: intact <= {(d, ts, v["seq"]) for d, ts, v in self.platform.telemetry()}, 60,
                 what="every intact record delivered")
        log = gw2.log()
        self.assertIn("torn record at the end", log)
        self.assertTrue("checksum mismatch" in log or "corrupt record length" in log, log[-3000:])
        self.assertEqual(gw2.stop(), 0)


if __name__ == "__main__":
    main()
