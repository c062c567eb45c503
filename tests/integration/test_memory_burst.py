"""Memory taken during a burst is given back once the burst is delivered (issue 22): 50,000 messages
arrive from an external broker while the platform is away (the memory storage holds them all), the
platform comes back, everything is delivered, and a few seconds later the idle gateway is back near
its idle RSS (heap trimmed, the storage ring's pages returned) instead of keeping the peak.
glibc malloc only: under the sanitizers the allocator is ASan's, so the test is skipped there."""

import os
import subprocess
import time
import unittest

import tbgwtest
from tbgwtest import Broker, GatewayTestCase, main, rss_kb, wait_for

MESSAGES = 50000


class MemoryBurst(GatewayTestCase):
    @unittest.skipIf(tbgwtest.SANITIZED, "the sanitizers' allocator does not trim like glibc malloc")
    def test_rss_returns_near_idle_after_a_stored_burst(self):
        ext = Broker(self.workdir, name="external").start()
        self.extra.append(ext)
        mapping = {"topicFilter": "bench/+/data", "subscriptionQos": 1,
                   "converter": {"type": "json",
                                 "deviceInfo": {"deviceNameExpressionSource": "topic",
                                                "deviceNameExpression": "(?<=bench/)[^/]+"},
                                 "timeseries": [{"type": "double", "key": "v1", "value": "${v1}"},
                                                {"type": "integer", "key": "v2", "value": "${v2}"}]}}
        conn = {"type": "mqtt", "name": "Burst",
                "config": {"broker": {"host": "127.0.0.1", "port": ext.port, "clientId": "tbgw-burst",
                                      "version": 5, "security": {"type": "anonymous"}},
                           "mapping": [mapping]}}
        gw = self.gateway([conn], storage={"type": "memory", "read_records_count": 1000,
                                           "max_records_count": 200000}).start(env={"TBGW_LOG_LEVEL": "INFO"})
        loadgen = os.path.join(tbgwtest.BUILD_DIR, "bench_loadgen")
        gw.wait_log("connected to 127.0.0.1:%d" % ext.port, 10)
        subprocess.run([loadgen, "-p", str(ext.port), "-n", "10", "-d", "10", "-q", "1"], check=True,
                       stdout=subprocess.DEVNULL)
        wait_for(lambda: len(self.platform.telemetry()) >= 10, 15, what="warm-up delivered")
        time.sleep(2)
        idle = rss_kb(gw.proc.pid)
        self.platform.stop()
        self.broker.stop()
        subprocess.run([loadgen, "-p", str(ext.port), "-n", str(MESSAGES), "-d", "100", "-q", "1"], check=True,
                       stdout=subprocess.DEVNULL)
        time.sleep(1)
        stored = rss_kb(gw.proc.pid)
        self.broker.start()
        self.platform.resume()
        self.platform.clear()
        wait_for(lambda: len(self.platform.telemetry()) >= MESSAGES, 60, what="the burst delivered")
        peak = rss_kb(gw.proc.pid)
        time.sleep(4)
        after = rss_kb(gw.proc.pid)
        print("RSS kB: idle %d, burst stored %d, delivered %d, 4 s later %d" % (idle, stored, peak, after))
        self.assertGreater(stored - idle, 4000, "the stored burst should have taken memory")
        self.assertLess(after - idle, 3000, "the idle gateway kept %d kB of the burst" % (after - idle))
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
