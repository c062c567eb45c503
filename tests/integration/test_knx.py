"""The KNX connector against knxd (Debian) started by the test as a KNXnet/IP tunnelling server on a
dummy bus on loopback. The other parties on the bus are knxtool (groupwrite, groupsocketlisten) and a
small client of knxd's own protocol (tests/integration/knxbus.py) that answers GroupValueRead with
GroupValueResponse like a device would. Asserts what reaches the platform and what the bus sees."""

import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tbgwtest import SOURCE_DIR, SLOW, TBGW_BIN, GatewayTestCase, main, wait_for  # noqa: E402
from knxbus import Knxd, KnxBus, dpt9, free_udp_port, knxtool  # noqa: E402

REF = os.path.join(SOURCE_DIR, "tests", "data", "reference", "knx.json")


def reference_config():
    with open(REF) as f:
        return json.load(f)


def name14(s):
    return list(s.encode("latin-1").ljust(14, b"\0"))


class KnxTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.knxd = Knxd(self.workdir).start()
        self.extra.append(self.knxd)
        self.bus = KnxBus(self.knxd.tcp_port).start()
        self.extra.append(self.bus)

    def connector(self, cfg):
        return {"type": "knx", "name": "KNX", "config": cfg}

    def tunnel_config(self, **client):
        cfg = reference_config()
        cfg["client"]["gatewayIP"] = "127.0.0.1"
        cfg["client"]["gatewayPort"] = self.knxd.udp_port
        cfg["client"].update(client)
        return cfg

    def rpc(self, device, rid, method, params, timeout=10):
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                             "params": params}})
        msgs = wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], timeout,
                        what="rpc reply %d" % rid)
        self.assertEqual(msgs[0]["device"], device)
        return msgs[0]["data"]

    def latest_ts(self, device, key, timeout=15):
        def find():
            for dev, ts, values in reversed(self.platform.telemetry(device)):
                if key in values:
                    return values[key]
            return None
        return wait_for(lambda: find() is not None and [find()], timeout, what="%s of %s" % (key, device))[0]

    def test_reference_config_polls_listens_and_writes(self):
        """The example file as shipped (only the gateway's address changed): the name and values are
        read by GroupValueRead and answered by a bus device; knxtool writes reach the platform as they
        happen; attribute updates and RPCs reach the bus; the misspelt DPT is reported with its
        position and that entry skipped."""
        # the bus device: 1/0/5 name (DPT 16), 1/0/6 temperature 21.5 (0x0C33), 1/0/7 humidity 44.0
        self.bus.answers.update({"1/0/5": [0x00, 0x40] + name14("Hall"), "1/0/6": [0x00, 0x40, 0x0C, 0x33],
                                 "1/0/7": [0x00, 0x40] + dpt9(44.0)})
        cfg = self.tunnel_config()
        gw = self.gateway(connectors=[self.connector(cfg)]).start()
        attrs = wait_for(lambda: self.platform.attributes().get("Device Hall"), 15, what="attributes of Device Hall")
        self.assertEqual(attrs["temperature"], 21.5)
        self.assertEqual(self.latest_ts("Device Hall", "humidity"), 44.0)
        self.assertGreaterEqual(len(self.bus.reads("1/0/6")), 1)
        gw.wait_log('knx: gateway "knxd" (0.0.1), medium')
        log = gw.log()
        m = re.search(r"KNX\.json:(\d+):(\d+): attributeUpdates\[0\]\.dataType: unknown datapoint type "
                      r"\"precent_U8\" \(did you mean \"percentU8\"\?\); the entry is skipped", log)
        self.assertTrue(m, log[-3000:])
        with open(os.path.join(gw.cfgdir, "KNX.json")) as f:
            line = f.read().splitlines()[int(m.group(1)) - 1]
        self.assertIn('"precent_U8"', line)
        # knxtool writes a new humidity (DPT 9: 0x0C01 = 2050 = 1025 * 2**1) -> reported as it happens
        knxtool("groupwrite", self.knxd.url, "1/0/7", "0c", "01")
        wait_for(lambda: any(v.get("humidity") == 20.5 for _, _, v in self.platform.telemetry("Device Hall")), 10,
                 what="humidity 20.5 written by knxtool")
        # RPC read of the name and write of a new one (reach knxtool's groupsocketlisten)
        with knxtool_listen(self.knxd.url) as listen:
            self.assertEqual(self.rpc("Device Hall", 1, "get_name", {}), {"result": "{'value': 'Hall'}"})
            self.assertEqual(self.rpc("Device Hall", 2, "set_name", "Kitchen"), {"result": "{'value': 'Kitchen'}"})
            want = "Write from %s to 1/0/5: " % ".*" + " ".join("%02X" % b for b in name14("Kitchen"))
            wait_for(lambda: re.search(want, listen.text()), 10, what="knxtool sees set_name")
            # reserved set/get
            self.assertEqual(self.rpc("Device Hall", 3, "set", "groupAddress=1/0/9;dataType=percentU8;value=42;"),
                             {"result": "{'value': 42}"})
            wait_for(lambda: re.search(r"Write from .* to 1/0/9: 2A", listen.text()), 10, what="knxtool sees 42")
            self.assertEqual(self.rpc("Device Hall", 4, "get", "groupAddress=1/0/6;dataType=temperature;"),
                             {"result": "{'value': 21.5}"})
            # no device answers 1/0/20: the reference's "None" after the read timeout
            self.assertEqual(self.rpc("Device Hall", 5, "get", "groupAddress=1/0/20;dataType=temperature;"),
                             {"result": "None"})
            data = self.rpc("Device Hall", 6, "get", "groupAddress=1/0/6;dataType=temprature;")
            self.assertIn("unknown dataType", json.dumps(data))
            data = self.rpc("Device Hall", 7, "nope", {})
            self.assertIn("no serverSideRpc entry for method nope of device Device Hall", json.dumps(data))
            # a named write with {"value": ...} params
            self.assertEqual(self.rpc("Device Hall", 8, "set_name", {"value": "Hall"}), {"result": "{'value': 'Hall'}"})
        # the attribute update entry with the misspelt type was skipped: no write reaches the bus
        self.platform.publish("v1/gateway/attributes", {"device": "Device Hall", "data": {"brightness": 50}})
        gw.wait_log("no attributeUpdates entry for device Device Hall")
        self.assertEqual(gw.stop(), 0)

    def test_attribute_updates_types_and_undecodable(self):
        """Attribute updates written with their dataType (1.001 as a JSON boolean both ways, 5.001
        scaling, 9.001, 14, 16); a telegram that does not decode is logged with its group address and
        counted, and the next good one still arrives."""
        cfg = {
            "client": {"type": "TUNNELING", "gatewayIp": "127.0.0.1", "gatewayPort": self.knxd.udp_port},
            "devices": [{"deviceInfo": {"deviceNameExpressionSource": "constant", "deviceNameExpression": "Lamp",
                                        "deviceProfileExpressionSource": "constant",
                                        "deviceProfileNameExpression": "light"},
                         "pollPeriod": 60000,
                         "timeseries": [{"key": "on", "groupAddress": "2/0/1", "type": "1.001"},
                                        {"key": "level", "groupAddress": "2/0/2", "type": "percent"},
                                        {"key": "power", "groupAddress": "2/0/3", "type": "power"},
                                        {"key": "t", "groupAddress": "2/0/4", "type": "temperature"}]},
                        {"deviceInfo": {"deviceNameExpressionSource": "constant", "deviceNameExpression": "Sensor",
                                        "deviceProfileExpressionSource": "expression",
                                        "deviceProfileExpression": "KNX ${2/0/8}", "deviceProfileDataType": "string"},
                         "pollPeriod": 60000,
                         "timeseries": [{"key": "co2", "groupAddress": "2/0/9", "type": "ppm",
                                         "reportStrategy": {"type": "ON_CHANGE"}}]}],
            "attributeUpdates": [
                {"deviceNameFilter": "La.*", "key": "on", "groupAddress": "2/1/1", "dataType": "switch"},
                {"deviceNameFilter": "La.*", "key": "level", "groupAddress": "2/1/2", "dataType": "percent"},
                {"deviceNameFilter": "Other", "key": "t", "groupAddress": "2/1/9", "dataType": "temperature"},
                {"deviceNameFilter": ".*", "key": "t", "groupAddress": "2/1/4", "dataType": "temperature"},
                {"deviceNameFilter": ".*", "key": "label", "groupAddress": "2/1/5", "dataType": "string"}],
        }
        self.bus.answers.update({"2/0/8": [0x00, 0x40] + name14("Thermo"), "2/0/9": [0x00, 0x40] + dpt9(400.0),
                                 "2/0/1": [0x00, 0x41], "2/0/2": [0x00, 0x40, 0xFF],
                                 "2/0/3": [0x00, 0x40, 0x44, 0x7A, 0x20, 0x00], "2/0/4": [0x00, 0x40, 0x07, 0xD0]})
        gw = self.gateway(connectors=[self.connector(cfg)]).start()
        got = wait_for(lambda: self.merged("Lamp", ["on", "level", "power", "t"]), 15, what="Lamp values")
        self.assertIs(got["on"], True)
        self.assertEqual(got["level"], 100)
        self.assertEqual(got["power"], 1000.5)
        self.assertEqual(got["t"], 20.0)
        self.assertIn({"device": "Lamp", "type": "light"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        # the type read from the bus; a per-key ON_CHANGE strategy drops a repeated value
        self.assertEqual(self.latest_ts("Sensor", "co2"), 400.0)
        self.assertIn({"device": "Sensor", "type": "KNX Thermo"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        for v in (400.0, 400.0, 416.0):
            self.bus.send("2/0/9", [0x00, 0x80] + dpt9(v))
        wait_for(lambda: any(x.get("co2") == 416.0 for _, _, x in self.platform.telemetry("Sensor")), 10, what="co2 416")
        self.assertEqual([x["co2"] for _, _, x in self.platform.telemetry("Sensor")], [400.0, 416.0])
        with knxtool_listen(self.knxd.url) as listen:
            self.platform.publish("v1/gateway/attributes", {"device": "Lamp", "data": {"on": False, "level": 50,
                                                                                       "t": -30, "label": "Ütility"}})
            for pat in (r"to 2/1/1: 00", r"to 2/1/2: 80", r"to 2/1/4: 8A 24",
                        r"to 2/1/5: 3F 74 69 6C 69 74 79 00 00 00 00 00 00 00"):
                wait_for(lambda: re.search(r"Write from .* " + pat, listen.text()), 10, what=pat)
            self.assertNotIn("2/1/9", listen.text())
        # a 1-octet payload for the 2-octet temperature: logged with the address and counted
        knxtool("groupwrite", self.knxd.url, "2/0/4", "07")
        gw.wait_log("group address 2/0/4: payload [07] does not decode as temperature (9.001)")
        knxtool("groupswrite", self.knxd.url, "2/0/1", "0")
        wait_for(lambda: any(v.get("on") is False for _, _, v in self.platform.telemetry("Lamp")), 10,
                 what="on=false from knxtool")
        self.assertEqual(gw.stop(), 0)

    def merged(self, device, keys):
        out = {}
        for _, _, v in self.platform.telemetry(device):
            out.update(v)
        return out if all(k in out for k in keys) else None

    def test_knxd_killed_and_restarted(self):
        """The tunnel is lost when knxd dies (the ICMP port-unreachable of the next request, or no ACK
        after its repeat); it is re-established with backoff once knxd is back, and polling resumes."""
        self.bus.answers.update({"1/0/5": [0x00, 0x40] + name14("Hall"), "1/0/6": [0x00, 0x40, 0x0C, 0x33],
                                 "1/0/7": [0x00, 0x40] + dpt9(44.0)})
        cfg = self.tunnel_config(autoReconnectWait=0.5)
        cfg["devices"][0]["pollPeriod"] = 500
        gw = self.gateway(connectors=[self.connector(cfg)]).start()
        self.latest_ts("Device Hall", "humidity")
        self.bus.stop()
        self.knxd.stop()
        gw.wait_log("connection lost", timeout=15)
        self.platform.clear()
        time.sleep(1)
        self.knxd.start()
        self.bus = KnxBus(self.knxd.tcp_port).start()
        self.extra.append(self.bus)
        self.bus.answers.update({"1/0/5": [0x00, 0x40] + name14("Hall"), "1/0/7": [0x00, 0x40] + dpt9(20.5)})
        wait_for(lambda: any(v.get("humidity") == 20.5 for _, _, v in self.platform.telemetry("Device Hall")), 30,
                 what="humidity after knxd restart")
        self.assertGreaterEqual(gw.log().count("tunnel to 127.0.0.1:%d open" % self.knxd.udp_port), 2)
        self.assertEqual(gw.stop(), 0)

    def test_routing(self):
        """ROUTING: telegrams go out as ROUTING_INDICATION on the multicast group (on lo) to knxd, which
        routes them to the bus; the bus device's responses and knxtool's writes come back the same way."""
        self.bus.answers.update({"1/0/6": [0x00, 0x40, 0x0C, 0x33]})
        cfg = {"client": {"type": "ROUTING", "multicastGroup": "224.0.23.12", "multicastPort": self.knxd.udp_port,
                          "localIp": "127.0.0.1", "individualAddress": "1.0.10"},
               "devices": [{"deviceInfo": {"deviceNameExpression": "Routed"}, "pollPeriod": 1000,
                            "timeseries": [{"key": "t", "groupAddress": "1/0/6", "type": "temperature"},
                                           {"key": "sw", "groupAddress": "1/0/1", "type": "switch"}]}],
               "attributeUpdates": [{"deviceNameFilter": ".*", "key": "level", "groupAddress": "1/0/9",
                                     "dataType": "percentU8"}]}
        gw = self.gateway(connectors=[self.connector(cfg)]).start()
        self.assertEqual(self.latest_ts("Routed", "t"), 21.5)
        knxtool("groupswrite", self.knxd.url, "1/0/1", "1")
        self.assertIs(self.latest_ts("Routed", "sw"), True)
        self.platform.publish("v1/gateway/attributes", {"device": "Routed", "data": {"level": 7}})
        wait_for(lambda: [w for w in self.bus.writes("1/0/9") if w[0] == 0x100A and w[3] == [7]], 10,
                 what="routed write from 1.0.10")
        gw.wait_log("knx: routing on 224.0.23.12:%d" % self.knxd.udp_port)
        self.assertEqual(gw.stop(), 0)

    def test_doctor(self):
        """`tbgw doctor` asks the configured gateway for its description (knxd answers; a closed port does
        not) and names the group of a routing connector; --check-config warns about the example's entry."""
        dead = self.tunnel_config()
        dead["client"]["gatewayPort"] = free_udp_port()
        routing = {"client": {"type": "ROUTING"}, "devices": []}
        gw = self.gateway(connectors=[self.connector(self.tunnel_config()),
                                      {"type": "knx", "name": "Dead", "config": dead},
                                      {"type": "knx", "name": "Routed", "config": routing}])
        p = subprocess.run([TBGW_BIN, "doctor", "-c", gw.config_path, "--json"], capture_output=True, text=True,
                           timeout=60)
        items = [i for i in json.loads(p.stdout) if i["check"] == "connector.knx"]
        msgs = {i["status"]: [] for i in items}
        for i in items:
            msgs[i["status"]].append(i["message"])
        self.assertIn('"KNX": KNXnet/IP gateway "knxd" (0.0.1) answers at 127.0.0.1:%d' % self.knxd.udp_port,
                      msgs.get("ok", []), items)
        self.assertTrue(any(m.startswith('"Dead": no KNXnet/IP gateway answered') for m in msgs.get("fail", [])), items)
        self.assertTrue(any(m.startswith('"Routed": routing on 224.0.23.12:3671') for m in msgs.get("ok", [])), items)
        self.assertEqual(p.returncode, 1)
        # --check-config lists the example's misspelt entry as a warning, with its position
        p = subprocess.run([TBGW_BIN, "--check-config", "-c", gw.config_path], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout + p.stderr, r"warning: .*KNX\.json:\d+:\d+: attributeUpdates\[0\]\.dataType: "
                                              r"unknown datapoint type \"precent_U8\"")

    def test_gateway_search_without_address(self):
        """No gateway address: the gateway is found by SEARCH_REQUEST and used. knxd does not answer a
        search sent to the multicast group from its own host, so the search goes to the unicast address
        given as multicastGroup."""
        self.bus.answers.update({"1/0/6": [0x00, 0x40, 0x0C, 0x33]})
        cfg = {"client": {"type": "AUTOMATIC", "multicastGroup": "127.0.0.1", "multicastPort": self.knxd.udp_port,
                          "localIp": "127.0.0.1",
                          "gatewaysScanner": {"enabled": True, "scanPeriod": 1, "stopOnFound": True}},
               "devices": [{"deviceInfo": {"deviceNameExpression": "Found"}, "pollPeriod": 1000,
                            "timeseries": [{"key": "t", "groupAddress": "1/0/6", "type": "temperature"}]}]}
        gw = self.gateway(connectors=[self.connector(cfg)]).start()
        self.assertEqual(self.latest_ts("Found", "t"), 21.5)
        gw.wait_log("found gateway")
        self.assertEqual(gw.stop(), 0)


class knxtool_listen:
    """knxtool groupsocketlisten in the background; text() is what it printed so far."""

    def __init__(self, url):
        self.url = url

    def __enter__(self):
        self.proc = subprocess.Popen(["knxtool", "groupsocketlisten", self.url], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.buf = b""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.3 * SLOW)
        return self

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            with self.lock:
                self.buf += line

    def text(self):
        with self.lock:
            return self.buf.decode("utf-8", "replace")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(5)
        self.proc.stdout.close()


if __name__ == "__main__":
    main()
