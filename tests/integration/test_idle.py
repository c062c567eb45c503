"""An idle gateway sleeps: with an MQTT connector on a quiet broker, a Modbus slave polled every
10 s and the test connector waiting a minute between rounds, all its threads together make only a
few context switches per second (the connectors wait on their I/O, the host's downlink descriptor
and their next timer; the core on I/O and what is due). Downlink still arrives at once: an RPC to
the Modbus device and one to the test connector are answered although no poll or round is due."""

import time

from tbgwtest import SLOW, Broker, GatewayTestCase, switches, test_connector, wait_for, main
from test_modbus import LMB, Peer, free_port, slave_cfg, modbus_connector


class Idle(GatewayTestCase):
    def test_idle_gateway_sleeps_and_answers_at_once(self):
        ext = Broker(self.workdir, name="external").start()
        self.extra.append(ext)
        port = free_port()
        self.extra.append(Peer([LMB, "tcp", str(port), "-h", "0=77"]))
        mqtt = {"type": "mqtt", "name": "MQTT", "config": {
            "broker": {"host": "127.0.0.1", "port": ext.port, "clientId": "idle-test"},
            "mapping": [{"topicFilter": "idle/+", "converter": {
                "type": "json", "deviceInfo": {"deviceNameExpressionSource": "topic",
                                               "deviceNameExpression": "(?<=idle/).+"},
                "timeseries": [{"type": "double", "key": "t", "value": "${t}"}]}}]}}
        slave = slave_cfg("Idle", port=port, pollPeriod=10000,
                          timeseries=[{"tag": "r", "type": "16int", "functionCode": 3, "objectsCount": 1,
                                       "address": 0}])
        gw = self.gateway(connectors=[mqtt, modbus_connector([slave]),
                                      test_connector(intervalMs=60000, messages=0)]).start(
            env={"TBGW_LOG_LEVEL": "INFO"})
        wait_for(lambda: self.platform.telemetry("Idle") and self.platform.telemetry("Test Device 1"), 15,
                 what="first values")
        gw.wait_log("connected to 127.0.0.1:%d" % ext.port)
        time.sleep(1.0)
        a = switches(gw.proc.pid)
        secs = 4.0
        time.sleep(secs)
        rate = (switches(gw.proc.pid) - a) / secs
        # before the downlink descriptor: ~300/s with three connectors; goal ≤ 5/s beyond the polls
        self.assertLess(rate, 5.0 * SLOW, "context switches per second at idle: %.1f" % rate)
        for rid, (device, method, params, want) in enumerate([
                ("Idle", "get", "type=16int;functionCode=3;objectsCount=1;address=0;", None),
                ("Test Device 1", "set", "key=a;value=1;", {"result": {"value": "1"}})], 1):
            t0 = time.time()
            self.platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                                "params": params}})
            got = wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 10,
                           what="reply %d" % rid)
            self.assertLess(time.time() - t0, 1.0 * SLOW)  # not after the next poll (10 s) or round (60 s)
            self.assertIn("result", got[0]["data"])
            if want:
                self.assertEqual(got[0]["data"], want)
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
