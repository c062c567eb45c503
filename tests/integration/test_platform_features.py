"""Statistics, device registry persistence and renames, supervisor restarts, report strategy,
storage caps, configuration checks."""

import json
import os
import subprocess
import time

from tbgwtest import GatewayTestCase, SOURCE_DIR, TBGW_BIN, test_connector, wait_for, main

REF = os.path.join(SOURCE_DIR, "tests", "data", "reference")


class Features(GatewayTestCase):
    def test_statistics_messages(self):
        gw = self.gateway(connectors=[test_connector(messages=3)],
                          thingsboard={"statistics": {"enable": True, "statsSendPeriodInSeconds": 10}})
        gw.start()
        attrs = wait_for(lambda: [p for t, p in self.platform.all("v1/devices/me/attributes") if "cpuCount" in p], 10)
        self.assertIn("totalMemory", attrs[0])
        stats = wait_for(lambda: self.platform.all("v1/devices/me/telemetry"), 20, what="statistics telemetry")
        values = stats[0][1][0]["values"]
        self.assertIn("machineStats", values)
        self.assertEqual(values["connectorsStats"]["Test Connector"]["storageMsgPushed"], 3)
        self.assertEqual(values["connectorsStats"]["Test Connector"]["connectorMsgsReceived"], 3)
        self.assertIn("storageMsgCount", values["serviceStats"])
        self.assertIn(values["connectorsStats"]["Test Connector"]["state"], ("CONNECTED", "STARTING"))
        self.assertEqual(values["serviceStats"]["storageDiskBytes"], 0)  # memory storage
        self.assertEqual(gw.stop(), 0)

    def test_custom_command_statistics(self):
        commands = [{"command": ["echo", "42.5"], "timeout": 2, "attributeOnGateway": "Answer"},
                    {"command": "echo hello world", "timeout": 2, "attributeOnGateway": "Greeting"},
                    {"command": ["sleep", "5"], "timeout": 0.5, "attributeOnGateway": "Slow"}]
        gw = self.gateway(connectors=[test_connector(messages=1)],
                          thingsboard={"statistics": {"enable": True, "statsSendPeriodInSeconds": 60,
                                                      "customStatsSendPeriodInSeconds": 2,
                                                      "configuration": "custom_stats.json"}},
                          extra_files={"custom_stats.json": commands})
        gw.start()

        def custom():
            out = {}
            for _, p in self.platform.all("v1/devices/me/telemetry"):
                for e in p:
                    out.update(e["values"])
            return out if "Answer" in out and "Greeting" in out else None
        values = wait_for(custom, 15, what="custom statistics telemetry")
        self.assertEqual(values["Answer"], 42.5)
        self.assertEqual(values["Greeting"], "hello world")
        self.assertNotIn("Slow", values)  # timed out, left out
        gw.wait_log('custom statistics command for "Slow" failed or timed out', 10)
        self.assertEqual(gw.stop(), 0)

    def test_device_deleted(self):
        gw = self.gateway(connectors=[test_connector(messages=1)])
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        self.platform.publish("v1/devices/me/rpc/request/5",
                              {"method": "gateway_device_deleted", "params": "Test Device 1"})
        rep = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/5"), 10)
        self.assertEqual(rep[0][1], {"success": True})
        self.platform.publish("v1/devices/me/rpc/request/6", {"method": "gateway_devices"})
        devs = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/6"), 10)
        self.assertEqual(devs[0][1], {"code": 200, "resp": {}})
        self.assertEqual(gw.stop(), 0)

    def test_rename_maps_both_directions_and_registry_persists(self):
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)])
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        self.platform.publish("v1/devices/me/rpc/request/1",
                              {"method": "gateway_device_renamed", "params": {"Test Device 1": "Boiler"}})
        wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/1"), 10)
        self.assertEqual(self.platform.all("v1/devices/me/rpc/response/1")[0][1], {"success": True})
        wait_for(lambda: self.platform.telemetry("Boiler"), 10, what="data under the new name")
        self.platform.publish("v1/gateway/rpc", {"device": "Boiler", "data": {"id": 3, "method": "echo", "params": 1}})
        rep = wait_for(lambda: self.platform.all("v1/gateway/rpc"), 10)
        self.assertEqual(rep[0][1], {"device": "Boiler", "id": 3, "data": {"echo": 1}})
        self.assertEqual(gw.stop(), 0)
        saved = json.load(open(os.path.join(gw.cfgdir, "connected_devices.json")))
        self.assertEqual(saved["Test Device 1"]["renaming"], "Boiler")
        self.assertEqual(saved["Test Device 1"]["connectorName"], "Test Connector")
        # a restart re-connects the saved device under its platform name before new data
        self.platform.clear()
        gw.start()
        wait_for(lambda: self.platform.telemetry("Boiler"), 15)
        self.assertIn({"device": "Boiler", "type": "default"}, [p for t, p in self.platform.all("v1/gateway/connect")])
        self.assertEqual(gw.stop(), 0)

    def test_failing_connector_is_restarted(self):
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=50, failAfter=3),
                                      test_connector(name="Healthy", deviceNamePrefix="Healthy ", messages=0,
                                                     intervalMs=100)])
        gw.start()
        gw.wait_log("connector stopped unexpectedly", 15)
        wait_for(lambda: gw.log().count("restarting in") >= 2, 20, what="two restarts")
        n = len(self.platform.telemetry("Healthy 1"))
        wait_for(lambda: len(self.platform.telemetry("Healthy 1")) > n + 5, 10, what="the other connector unaffected")
        self.assertEqual(gw.stop(), 0)

    def test_on_change_strategy_and_storage_cap(self):
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=50, keys=2)],
                          thingsboard={"reportStrategy": {"type": "ON_CHANGE"}})
        gw.start()
        wait_for(lambda: len(self.platform.telemetry("Test Device 1")) >= 5, 15)
        # k0 is always 0: sent once; seq changes every time
        sent_k0 = [v for _, _, v in self.platform.telemetry("Test Device 1") if "k0" in v]
        self.assertEqual(len(sent_k0), 1)
        self.assertEqual(gw.stop(), 0)

    def test_memory_cap_drops_oldest_and_recovers(self):
        self.platform.stop()
        self.broker.stop()
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=10)],
                          storage={"type": "memory", "max_records_count": 20, "read_records_count": 10},
                          thingsboard={"reconnectMaxDelayMs": 1000})
        gw.start()
        gw.wait_log("memory storage full", 15)
        self.broker.start()
        from tbgwtest import Platform
        self.platform = Platform(self.broker).start()
        wait_for(lambda: len(self.platform.telemetry("Test Device 1")) >= 50, 20, what="delivery resumes")
        seqs = [v["seq"] for _, _, v in self.platform.telemetry("Test Device 1")]
        self.assertGreater(min(seqs), 1)  # the oldest were dropped
        self.assertEqual(gw.stop(), 0)

    def test_check_config(self):
        ok = subprocess.run([TBGW_BIN, "--check-config", "-c", os.path.join(REF, "tb_gateway.json")],
                            capture_output=True, text=True)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        gw = self.gateway(connectors=[test_connector(devices="many")])
        bad = subprocess.run([TBGW_BIN, "--check-config", "-c", gw.config_path], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("Test_Connector.json:2:3: devices: expected an integer, got a string", bad.stdout)
        start = subprocess.run([TBGW_BIN, "-c", os.path.join(self.workdir, "missing.json")],
                               capture_output=True, text=True)
        self.assertEqual(start.returncode, 1)
        self.assertIn("missing.json: cannot open", start.stderr)


if __name__ == "__main__":
    main()
