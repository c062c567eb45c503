"""Connection handling: refused connections are explained, the gateway keeps retrying, an outage
of the platform broker loses nothing, the session-limits handshake has a timeout."""

import os
import time

from tbgwtest import Broker, GatewayTestCase, Platform, test_connector, wait_for, main


class Connection(GatewayTestCase):
    def test_bad_token_is_explained_and_retried(self):
        secure = Broker(self.workdir, passwords={"GOOD_TOKEN": "x"}, name="secure").start()
        self.extra.append(secure)
        gw = self.gateway(connectors=[test_connector(messages=1)], token=" BAD TOKEN ",
                          thingsboard={"port": secure.port, "reconnectMaxDelayMs": 1000})
        gw.start()
        gw.wait_log("check the gateway access token (it contains whitespace)", 15)
        self.assertIn("not authorized", gw.log())
        # keeps retrying
        wait_for(lambda: gw.log().count("reconnecting to ThingsBoard") >= 3, 15, what="3 retries")
        self.assertEqual(gw.stop(), 0)

    def test_refused_port_and_unknown_host_are_told_apart(self):
        from tbgwtest import free_port
        port = free_port()
        gw = self.gateway(connectors=[test_connector(messages=1)], thingsboard={"port": port})
        gw.start()
        gw.wait_log("connection refused: nothing listens on port %d" % port, 15)
        self.assertEqual(gw.stop(), 0)
        gw2 = self.gateway(connectors=[test_connector(messages=1)],
                           thingsboard={"host": "no-such-host.invalid", "port": port})
        gw2.start()
        gw2.wait_log('cannot resolve host name "no-such-host.invalid"', 20)
        self.assertEqual(gw2.stop(), 0)

    def test_outage_loses_nothing(self):
        n = 60
        gw = self.gateway(connectors=[test_connector(devices=3, messages=n, intervalMs=100)],
                          thingsboard={"reconnectMaxDelayMs": 1000})
        gw.start()
        wait_for(lambda: len(self.platform.telemetry("Test Device 1")) >= 5, 15, what="data before the outage")
        self.broker.stop()
        time.sleep(10)  # the connector keeps producing while the platform is away
        self.broker.start()
        self.platform.resume()  # its session survived the restart: nothing published meanwhile is lost
        for d in (1, 2, 3):
            wait_for(lambda: {v["seq"] for _, _, v in self.platform.telemetry("Test Device %d" % d)} >= set(range(30, n + 1)),
                     30, what="all values of device %d after the outage" % d)
        # values produced during the outage were stored and arrive in order
        seqs = [v["seq"] for _, _, v in self.platform.telemetry("Test Device 2")]
        after = [s for s in seqs if s >= min(seqs)]
        self.assertEqual(sorted(set(after)), list(range(min(seqs), n + 1)))
        self.assertEqual(after, sorted(after))
        self.assertEqual(gw.stop(), 0)

    def test_session_limits_timeout_and_small_payload(self):
        self.platform.answer_limits = False
        gw = self.gateway(connectors=[test_connector(messages=3)],
                          thingsboard={"sessionLimitsTimeoutMs": 1000})
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15, what="telemetry without an answer")
        self.assertIn("no answer to getSessionLimits", gw.log())
        self.assertEqual(gw.stop(), 0)

    def test_max_payload_from_session_limits_is_respected(self):
        self.platform.limits = {"maxPayloadSize": 1000, "maxInflightMessages": 100}
        gw = self.gateway(connectors=[test_connector(devices=20, keys=10, messages=3, intervalMs=50)])
        gw.start()
        wait_for(lambda: len(self.platform.telemetry()) >= 60, 20, what="60 telemetry entries")
        for t, p in self.platform.all("v1/gateway/telemetry"):
            import json
            self.assertLessEqual(len(json.dumps(p, separators=(",", ":"))), 800)
        self.assertEqual(gw.stop(), 0)

    def test_rate_limit_bounds_message_rate(self):
        gw = self.gateway(connectors=[test_connector(devices=1, messages=0, intervalMs=10)],
                          thingsboard={"deviceRateLimits": "5:1", "deviceMessagesRateLimits": "0:0",
                                       "deviceDpRateLimits": "0:0"},
                          storage={"type": "memory", "read_records_count": 1, "max_records_count": 100000})
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        time.sleep(3)
        msgs = self.platform.all("v1/gateway/telemetry") + self.platform.all("v1/gateway/attributes")
        # capacity 5*80% = 4 per second (+ the initial full bucket)
        self.assertLessEqual(len(msgs), 4 * 5 + 4)
        self.assertGreaterEqual(len(msgs), 8)
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
