"""The spine end to end: telemetry/attributes arrive with the right topics and JSON, device
connect messages, RPC and attribute updates reach the connector and replies reach the platform,
SIGTERM exits 0."""

import json
import time

from tbgwtest import GatewayTestCase, test_connector, wait_for, main


class PlatformBasics(GatewayTestCase):
    def test_telemetry_attributes_and_connect(self):
        gw = self.gateway(connectors=[test_connector(devices=2, messages=5, keys=2,
                                                     attributes={"firmware": "1.0", "serial": 42})]).start()
        wait_for(lambda: len(self.platform.telemetry("Test Device 2")) >= 5, 15, what="5 rounds for device 2")
        # connect precedes data, with the device type
        connects = [p for t, p in self.platform.all("v1/gateway/connect")]
        self.assertIn({"device": "Test Device 1", "type": "default"}, connects)
        self.assertIn({"device": "Test Device 2", "type": "default"}, connects)
        topics = [t for t, _ in self.platform.all()]
        first_connect = topics.index("v1/gateway/connect")
        first_tel = topics.index("v1/gateway/telemetry")
        self.assertLess(first_connect, first_tel)
        # exact telemetry values in order
        tel = self.platform.telemetry("Test Device 1")
        seqs = [v["seq"] for _, _, v in tel]
        self.assertEqual(seqs, [1, 2, 3, 4, 5])
        self.assertEqual(tel[2][2], {"seq": 3, "k0": 0, "k1": 3})
        for _, ts, _ in tel:
            self.assertIsInstance(ts, int)
            self.assertGreater(ts, 1700000000000)
        attrs = self.platform.attributes()
        self.assertEqual(attrs["Test Device 1"]["firmware"], "1.0")
        self.assertEqual(attrs["Test Device 2"]["serial"], 42)
        self.assertEqual(attrs["Test Device 1"]["connectorType"], "tbgw_test")
        self.assertEqual(attrs["Test Device 1"]["connectorName"], "Test Connector")
        # the session-limits handshake was made
        reqs = [p for t, p in self.platform.all() if t.startswith("v1/devices/me/rpc/request/")]
        self.assertEqual(reqs[0], {"method": "getSessionLimits", "params": {"timeout": 5000}})
        self.assertEqual(gw.stop(), 0)

    def test_rpc_and_attribute_update_round_trip(self):
        gw = self.gateway(connectors=[test_connector(messages=1)]).start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15, what="first telemetry")
        self.platform.publish("v1/gateway/rpc", {"device": "Test Device 1",
                                                 "data": {"id": 42, "method": "echo", "params": {"a": 1}}})
        rpc = wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc")], 10, what="rpc reply")
        self.assertEqual(rpc[0], {"device": "Test Device 1", "id": 42, "data": {"echo": {"a": 1}}})
        # success_sent encoding: data is a JSON string of {"error":..,"success":false}
        self.platform.publish("v1/gateway/rpc", {"device": "Test Device 1",
                                                 "data": {"id": 43, "method": "fail", "params": None}})
        rpc = wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p["id"] == 43], 10)
        self.assertEqual(json.loads(rpc[0]["data"]), {"error": "device failed", "success": False})
        # shared attribute update reaches the connector, which echoes it back as telemetry
        self.platform.publish("v1/gateway/attributes", {"device": "Test Device 1", "data": {"target": 21.5}})
        echo = wait_for(lambda: [v for _, _, v in self.platform.telemetry("Test Device 1") if "echo_target" in v], 10,
                        what="echoed attribute")
        self.assertEqual(echo[0]["echo_target"], 21.5)
        # gateway RPCs
        self.platform.publish("v1/devices/me/rpc/request/7", {"method": "gateway_ping", "params": {}})
        pong = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/7"), 10)
        self.assertEqual(pong[0][1], {"code": 200, "resp": "pong"})
        self.platform.publish("v1/devices/me/rpc/request/8", {"method": "gateway_devices"})
        devs = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/8"), 10)
        self.assertEqual(devs[0][1], {"code": 200, "resp": {"Test Device 1": "Test Connector"}})
        self.platform.publish("v1/devices/me/rpc/request/12", {"method": "gateway_stats"})
        st = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/12"), 10)[0][1]
        self.assertGreaterEqual(st["eventsProduced"], 2)  # the device's attributes and its telemetry
        self.assertGreaterEqual(st["eventsSent"], 1)
        self.assertGreaterEqual(st["TestConnectorEventsProduced"], 1)
        self.assertGreaterEqual(st["TestConnectorEventsSent"], 1)
        self.assertLessEqual(st["TestConnectorEventsSent"], st["TestConnectorEventsProduced"])
        self.platform.publish("v1/devices/me/rpc/request/9", {"method": "tbgw_test_ping"})
        cp = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/9"), 10)
        self.assertEqual(cp[0][1], {"pong": True})
        self.platform.publish("v1/devices/me/rpc/request/10", {"method": "bacnet_get"})
        nf = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/10"), 10)
        self.assertEqual(nf[0][1], {"error": "bacnet - connector not found in available connectors.", "code": 404})
        self.platform.publish("v1/devices/me/rpc/request/11", {"method": "gateway_nonsense"})
        nm = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/11"), 10)
        self.assertEqual(nm[0][1], {"error": "Method not found", "code": 404})
        self.assertEqual(gw.stop(), 0)

    def test_rpc_to_unknown_device_times_out_once(self):
        gw = self.gateway(connectors=[test_connector(messages=1)]).start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        self.platform.publish("v1/gateway/rpc", {"device": "Nobody", "data": {"id": 5, "method": "echo"}})
        rep = wait_for(lambda: self.platform.all("v1/gateway/rpc"), 12, what="408 reply")
        self.assertEqual(rep[0][1], {"device": "Nobody", "id": 5, "data": {"error": "Request timeout", "code": 408}})
        time.sleep(1)
        self.assertEqual(len(self.platform.all("v1/gateway/rpc")), 1)
        self.assertEqual(gw.stop(), 0)

    def test_malformed_downlink_is_reported_not_fatal(self):
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)]).start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        self.platform.publish("v1/gateway/rpc", b"{not json")
        self.platform.publish("v1/gateway/attributes", {"device": 5})
        self.platform.publish("v1/devices/me/rpc/request/3", {"params": 1})
        err = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/3"), 10)
        self.assertEqual(err[0][1]["code"], 400)
        n = len(self.platform.telemetry("Test Device 1"))
        wait_for(lambda: len(self.platform.telemetry("Test Device 1")) > n + 2, 10, what="data keeps flowing")
        self.assertIn("ignoring downlink message", gw.log())
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
