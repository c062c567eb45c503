"""Remote configuration: connector configurations pushed as shared attributes start, replace
(safely) and remove connectors; unchanged storage configuration re-sent on reconnect leaves the
stored data alone; connector files edited on disk are picked up; a connector whose configuration tree
the core freed after create (Modbus: TBGW_CONNECTOR_COPIES_CONFIG) is reported, compared and replaced
the same way."""

import json
import os
import shutil
import time

from tbgwtest import TEST_PLUGIN, GatewayTestCase, free_port, test_connector, wait_for, main
from test_modbus import LMB, Peer


def sim_attr(name, prefix, **cfg):
    body = {"devices": 1, "intervalMs": 100, "messages": 0, "keys": 1, "deviceNamePrefix": prefix}
    body.update(cfg)
    return {name: {"name": name, "type": "tbgw_test", "configuration": name.lower().replace(" ", "_") + ".json",
                   "configurationJson": body, "ts": int(time.time() * 1000)}}


class RemoteConfig(GatewayTestCase):
    def start_gateway(self, **kw):
        gw = self.gateway(connectors=[test_connector(name="Local", deviceNamePrefix="Local ", messages=0,
                                                     intervalMs=200)],
                          thingsboard={"remoteConfiguration": True, "checkConnectorsConfigurationInSeconds": 1},
                          **kw)
        # remote connectors of type tbgw_test are found as extensions/tbgw_test/tbgw_test.so
        ext = os.path.join(gw.cfgdir, "extensions", "tbgw_test")
        os.makedirs(ext, exist_ok=True)
        shutil.copy(TEST_PLUGIN, os.path.join(ext, "tbgw_test.so"))
        return gw.start()

    def own_attrs(self):
        out = {}
        for _, p in self.platform.all("v1/devices/me/attributes"):
            out.update(p)
        return out

    def test_connector_lifecycle(self):
        gw = self.start_gateway()
        wait_for(lambda: "active_connectors" in self.own_attrs(), 15, what="own configuration attributes")
        attrs = self.own_attrs()
        self.assertEqual(attrs["active_connectors"], ["Local"])
        self.assertEqual(attrs["Local"]["configurationJson"]["deviceNamePrefix"], "Local ")
        self.assertEqual(attrs["general_configuration"]["host"], "127.0.0.1")
        self.assertIn("Version", attrs)
        # the gateway asked for its shared attributes
        reqs = [t for t, _ in self.platform.all() if t.startswith("v1/devices/me/attributes/request/")]
        self.assertTrue(reqs)

        # a new connector pushed as a shared attribute starts and its data arrives
        self.platform.publish("v1/devices/me/attributes", sim_attr("Remote Sim", "Remote "))
        wait_for(lambda: self.platform.telemetry("Remote 1"), 15, what="data of the pushed connector")
        wait_for(lambda: "Remote Sim" in self.own_attrs().get("active_connectors", []), 10)
        saved = json.load(open(os.path.join(gw.cfgdir, "remote_sim.json")))
        self.assertEqual(saved["deviceNamePrefix"], "Remote ")
        main_cfg = json.load(open(gw.config_path))
        self.assertIn("Remote Sim", [c["name"] for c in main_cfg["connectors"]])

        # a broken configuration is refused with an error attribute; the running one keeps going
        self.platform.publish("v1/devices/me/attributes", sim_attr("Remote Sim", "Broken ", devices="many"))
        err = wait_for(lambda: self.own_attrs().get("remoteConfigurationError"), 10, what="error attribute")
        self.assertIn("devices", err["error"])
        n = len(self.platform.telemetry("Remote 1"))
        wait_for(lambda: len(self.platform.telemetry("Remote 1")) > n + 3, 10, what="old instance still running")
        self.assertFalse(self.platform.telemetry("Broken 1"))

        # a changed valid configuration replaces the instance
        self.platform.publish("v1/devices/me/attributes", sim_attr("Remote Sim", "Second "))
        wait_for(lambda: self.platform.telemetry("Second 1"), 15, what="data of the reconfigured connector")

        # active_connectors without "Local" stops it
        self.platform.publish("v1/devices/me/attributes", {"active_connectors": ["Remote Sim"]})
        wait_for(lambda: "stopping connector \"Local\"" in gw.log(), 10)
        time.sleep(0.5)
        n = len(self.platform.telemetry("Local 1"))
        time.sleep(1)
        self.assertEqual(len(self.platform.telemetry("Local 1")), n)
        main_cfg = json.load(open(gw.config_path))
        self.assertEqual([c["name"] for c in main_cfg["connectors"]], ["Remote Sim"])
        self.assertTrue(os.path.exists(gw.config_path + ".bak1"))
        self.assertEqual(gw.stop(), 0)

    def test_unchanged_storage_configuration_is_ignored(self):
        gw = self.start_gateway()
        wait_for(lambda: "storage_configuration" in self.own_attrs(), 15)
        storage = dict(self.own_attrs()["storage_configuration"])
        self.platform.publish("v1/devices/me/attributes", {"storage_configuration": storage})
        time.sleep(1.5)
        self.assertNotIn("restarting", gw.log())
        self.assertIn("storage_configuration unchanged", gw.log())
        self.assertEqual(gw.stop(), 0)

    def test_logs_configuration(self):
        gw = self.start_gateway()
        wait_for(lambda: "logs_configuration" in self.own_attrs(), 15)
        logs = {"version": 1, "loggers": {"service": {"level": "LOUD"}}, "root": {"level": "INFO"}}
        self.platform.publish("v1/devices/me/attributes", {"logs_configuration": logs})
        err = wait_for(lambda: self.own_attrs().get("remoteConfigurationError"), 10, what="refused logging config")
        self.assertEqual(err["key"], "logs_configuration")
        self.assertFalse(os.path.exists(os.path.join(gw.cfgdir, "logs.json")))
        logs["loggers"]["service"]["level"] = "WARNING"
        self.platform.publish("v1/devices/me/attributes", {"logs_configuration": logs})
        wait_for(lambda: os.path.exists(os.path.join(gw.cfgdir, "logs.json")), 10, what="logs.json written")
        with open(os.path.join(gw.cfgdir, "logs.json")) as f:
            self.assertEqual(json.load(f)["loggers"]["service"]["level"], "WARNING")
        self.assertEqual(gw.stop(), 0)

    def test_connector_file_edited_on_disk(self):
        gw = self.start_gateway()
        wait_for(lambda: self.platform.telemetry("Local 1"), 15)
        path = os.path.join(gw.cfgdir, "Local.json")
        cfg = json.load(open(path))
        cfg["deviceNamePrefix"] = "Edited "
        time.sleep(1.1)
        with open(path, "w") as f:
            json.dump(cfg, f)
        wait_for(lambda: self.platform.telemetry("Edited 1"), 15, what="data after the file edit")
        # a broken edit keeps the running connector
        with open(path, "w") as f:
            f.write("{ broken")
        gw.wait_log("keeps its configuration", 10)
        n = len(self.platform.telemetry("Edited 1"))
        wait_for(lambda: len(self.platform.telemetry("Edited 1")) > n + 2, 10)
        self.assertEqual(gw.stop(), 0)

    def test_modbus_configuration_kept_packed(self):
        port = free_port()
        peer = Peer([LMB, "tcp", str(port), "-h", "0=1234,1=7,2=9"])
        self.extra.append(peer)

        def modbus(tag, address):
            return {"master": {"slaves": [{
                "host": "127.0.0.1", "port": port, "type": "tcp", "method": "socket", "unitId": 1,
                "deviceName": "MB \u00fc", "deviceType": "modbus", "timeout": 2, "pollPeriod": 200,
                "byteOrder": "BIG", "wordOrder": "BIG",
                "timeseries": [{"tag": tag, "type": "16uint", "functionCode": 3, "objectsCount": 1,
                                "address": address, "multiplier": 0.5, "variants": {"1": "one"}}]}]},
                "logLevel": "INFO"}

        def push(cfg):
            self.platform.publish("v1/devices/me/attributes", {"Modbus": {
                "name": "Modbus", "type": "modbus", "configuration": "Modbus.json", "configurationJson": cfg,
                "ts": int(time.time() * 1000)}})

        def has_key(key):
            return lambda: [v for _, _, v in self.platform.telemetry("MB \u00fc") if key in v]

        gw = self.gateway(connectors=[{"type": "modbus", "name": "Modbus", "config": modbus("a", 0)}],
                          thingsboard={"remoteConfiguration": True, "checkConnectorsConfigurationInSeconds": 1})
        gw.start()
        values = wait_for(has_key("a"), 15, what="Modbus data")
        self.assertEqual(values[0]["a"], 617.0)
        # the configuration the core keeps packed comes back exactly as written
        wait_for(lambda: "Modbus" in self.own_attrs(), 15, what="the connector's configuration attribute")
        published = dict(self.own_attrs()["Modbus"]["configurationJson"])
        published.pop("name", None)
        self.assertEqual(published, modbus("a", 0))
        # the same configuration pushed again is recognised as unchanged (compared with the packed one)
        push(modbus("a", 0))
        time.sleep(1.5)
        self.assertNotIn('replacing connector "Modbus"', gw.log())
        # a changed one replaces the instance
        push(modbus("b", 1))
        values = wait_for(has_key("b"), 15, what="data of the reconfigured connector")
        self.assertEqual(values[0]["b"], 3.5)
        self.assertIn('replacing connector "Modbus"', gw.log())
        # and so does an edit of its file on disk (the replacement's tree was freed too)
        path = os.path.join(gw.cfgdir, "Modbus.json")
        with open(path) as f:
            self.assertEqual(json.load(f)["master"]["slaves"][0]["timeseries"][0]["tag"], "b")
        time.sleep(1.1)
        with open(path, "w") as f:
            json.dump(modbus("c", 2), f)
        values = wait_for(has_key("c"), 15, what="data after the file edit")
        self.assertEqual(values[0]["c"], 4.5)
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
