"""The connector kit through a real plugin (the test connector): its deviceList is parsed with the
kit's device and key entries (a bad entry is reported with file:line:column, counted and skipped,
the rest works, per-key report strategies apply), reserved get/set RPCs use the kit's parameter
parsing and reply forms, and a broken connector-level section still refuses the connector. Also the
downlink descriptor end to end: an RPC to a connector that waits with a long host->wait() timeout is
answered at once."""

import json
import time

from tbgwtest import GatewayTestCase, test_connector, wait_for, main


def rpc(platform, rid, device, method, params):
    platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method, "params": params}})
    got = wait_for(lambda: [p for t, p in platform.all("v1/gateway/rpc") if p.get("id") == rid], 10,
                   what="reply to RPC %d" % rid)
    return got[0]["data"]


class ConnectorKit(GatewayTestCase):
    def test_device_list_get_set_and_skipped_entries(self):
        devices = [
            {"deviceName": "Listed", "deviceType": "kit",
             "timeseries": [{"key": "a"},
                            {"type": "int"},  # no key: skipped
                            {"key": "b", "reportStrategy": {"type": "ON_CHANGE"}}],
             "attributes": [{"key": "model", "value": "K1"}]},
            {"deviceType": "nameless"},  # no name: skipped
        ]
        # intervalMs long: downlink must not wait for the connector's host->wait() timeout
        gw = self.gateway(connectors=[test_connector(devices=0, intervalMs=60000, messages=0,
                                                     deviceList=devices)]).start()
        wait_for(lambda: self.platform.telemetry("Listed"), 15, what="first round of the listed device")
        self.assertEqual(self.platform.telemetry("Listed")[0][2], {"a": 1, "b": 1})
        wait_for(lambda: self.platform.attributes().get("Listed", {}).get("model") == "K1", 10, what="attribute")
        self.assertIn({"device": "Listed", "type": "kit"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        log = gw.log()
        self.assertIn("Test_Connector.json:", log)
        skipped = [l for l in log.splitlines() if "entry is skipped" in l]
        self.assertEqual(len(skipped), 2, skipped)
        self.assertRegex(skipped[0], r"Test_Connector\.json:\d+:\d+: deviceList\[0\]\.timeseries\[1\]: key: missing")
        self.assertRegex(skipped[1], r"Test_Connector\.json:\d+:\d+: deviceList\[1\]: deviceName: missing")
        # reserved get/set through the kit's parameter parsing and reply forms, answered at once
        t0 = time.time()
        self.assertEqual(rpc(self.platform, 1, "Listed", "set", "key=mode;value=eco;"), {"result": {"value": "eco"}})
        self.assertLess(time.time() - t0, 2.0)
        self.assertEqual(rpc(self.platform, 2, "Listed", "get", "key=mode"), {"result": {"value": "eco"}})
        self.assertEqual(rpc(self.platform, 3, "Listed", "get", "key=other;"),
                         {"error": "Listed has no value for other"})
        self.assertEqual(rpc(self.platform, 4, "Listed", "set", "key=mode;junk;"),
                         {"error": "params: \"junk\" is not key=value"})
        self.assertEqual(gw.stop(), 0)

    def test_broken_section_refuses_the_connector(self):
        gw = self.gateway(connectors=[test_connector(deviceList={"not": "a list"}),
                                      test_connector(name="Other", messages=1)]).start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15, what="the other connector's data")
        gw.wait_log("Test_Connector.json:")
        line = [l for l in gw.log().splitlines() if "not started" in l]
        self.assertTrue(line, gw.log()[-2000:])
        self.assertRegex(line[0], r"Test_Connector\.json:\d+:\d+: deviceList: expected a list, got an object")
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
