"""Device filtering (allow and deny lists) and device inactivity against a real platform broker."""

import json
import subprocess

from tbgwtest import GatewayTestCase, TBGW_BIN, test_connector, wait_for, main
import time


class DeviceFiltering(GatewayTestCase):
    def test_deny_and_allow_lists(self):
        lst = {"deny": {"Test Connector": ["Test Device [2]"]},
               "allow": {"Other": ["Other 1", "Other 3"]}}
        gw = self.gateway(connectors=[test_connector(devices=3, messages=0, intervalMs=100),
                                      test_connector(name="Other", devices=3, deviceNamePrefix="Other ",
                                                     messages=0, intervalMs=100)],
                          thingsboard={"deviceFiltering": {"enable": True, "filterFile": "filter.json"}},
                          extra_files={"filter.json": lst})
        gw.start()
        for dev in ("Test Device 1", "Test Device 3", "Other 1", "Other 3"):
            wait_for(lambda: self.platform.telemetry(dev), 15, what="data of %s" % dev)
        time.sleep(1)
        devices = {d for d, _, _ in self.platform.telemetry()}
        self.assertEqual(devices, {"Test Device 1", "Test Device 3", "Other 1", "Other 3"})
        connected = {p["device"] for _, p in self.platform.all("v1/gateway/connect")}
        self.assertNotIn("Test Device 2", connected)
        self.assertNotIn("Other 2", connected)
        self.assertNotIn("Test Device 2", self.platform.attributes())
        gw.wait_log("device filter: dropped data of")
        self.assertEqual(gw.stop(), 0)

    def test_full_match_only(self):
        # "Test Device 1" must not match "Test Device 10" (full match)
        lst = {"deny": {"Test Connector": ["Test Device 1"]}}
        gw = self.gateway(connectors=[test_connector(devices=10, messages=0, intervalMs=100)],
                          thingsboard={"deviceFiltering": {"enable": True, "filterFile": "list.json"}},
                          extra_files={"list.json": lst})
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 10"), 15)
        wait_for(lambda: self.platform.telemetry("Test Device 9"), 15)
        time.sleep(0.5)
        self.assertEqual(self.platform.telemetry("Test Device 1"), [])
        self.assertEqual(gw.stop(), 0)

    def test_bad_regex_names_file_and_line(self):
        text = '{\n  "deny": {\n    "Test Connector": [\n      "ok",\n      "bad(("\n    ]\n  }\n}\n'
        gw = self.gateway(connectors=[test_connector()],
                          thingsboard={"deviceFiltering": {"enable": True, "filterFile": "list.json"}},
                          extra_files={"list.json": text})
        out = subprocess.run([TBGW_BIN, "-c", gw.config_path, "--check-config"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("list.json:5:", out.stdout)
        self.assertIn("deny.Test Connector[1]", out.stdout)
        self.assertIn("missing closing parenthesis", out.stdout)
        gw.start()
        rc = gw.proc.wait(20)
        self.assertNotEqual(rc, 0)
        self.assertIn("list.json:5:", gw.log())
        self.assertEqual(self.platform.telemetry(), [])

    def test_missing_file_is_an_error(self):
        gw = self.gateway(connectors=[test_connector()],
                          thingsboard={"deviceFiltering": {"enable": True, "filterFile": "nope.json"}})
        gw.start()
        self.assertNotEqual(gw.proc.wait(20), 0)
        self.assertIn("nope.json", gw.log())


class Inactivity(GatewayTestCase):
    def test_idle_device_disconnected_and_reconnected_on_data(self):
        gw = self.gateway(connectors=[test_connector(name="Once", deviceNamePrefix="Idle ", messages=1),
                                      test_connector(name="Busy", deviceNamePrefix="Busy ", messages=0,
                                                     intervalMs=200)],
                          thingsboard={"checkingDeviceActivity": {"checkDeviceInactivity": True,
                                                                  "inactivityTimeoutSeconds": 2,
                                                                  "inactivityCheckPeriodSeconds": 1}})
        gw.start()
        wait_for(lambda: self.platform.telemetry("Idle 1"), 15)
        t0 = time.time()
        wait_for(lambda: self.platform.all("v1/gateway/disconnect"), 10, what="a disconnect")
        self.assertGreaterEqual(time.time() - t0, 1.0)
        time.sleep(2.5)  # the busy device keeps sending: never disconnected
        discs = [p["device"] for _, p in self.platform.all("v1/gateway/disconnect")]
        self.assertEqual(discs, ["Idle 1"])
        n_conn = len([p for _, p in self.platform.all("v1/gateway/connect") if p["device"] == "Idle 1"])
        # new data of the idle device (an attribute update is echoed back as telemetry) reconnects it
        self.platform.publish("v1/gateway/attributes", {"device": "Idle 1", "data": {"wake": 1}})
        wait_for(lambda: [v for _, _, v in self.platform.telemetry("Idle 1") if "echo_wake" in v], 10)
        conns = [p for _, p in self.platform.all("v1/gateway/connect") if p["device"] == "Idle 1"]
        self.assertEqual(len(conns), n_conn + 1)
        # the echo arrives after the connect
        msgs = self.platform.all()
        i_conn = max(i for i, (t, p) in enumerate(msgs) if t == "v1/gateway/connect" and p["device"] == "Idle 1")
        i_data = min(i for i, (t, p) in enumerate(msgs) if t == "v1/gateway/telemetry" and "Idle 1" in p
                     and any("echo_wake" in e["values"] for e in p["Idle 1"]))
        self.assertLess(i_conn, i_data)
        self.assertEqual(gw.stop(), 0)

    def test_off_by_default(self):
        gw = self.gateway(connectors=[test_connector(messages=1)])
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        time.sleep(3)
        self.assertEqual(self.platform.all("v1/gateway/disconnect"), [])
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
