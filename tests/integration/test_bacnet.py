"""BACnet/IP connector against devices of another BACnet stack (tests/peers/bacnet_device.js on
@bacnet-js/client), each on its own free loopback UDP port; discovery is a unicast Who-Is to each
configured device address, and a broadcast for the entry whose address is a pattern (that device
listens on 0.0.0.0 and its own port, so the subnet broadcast 127.0.0.255 reaches it). The reference's bacnet.json (addresses pointed at the test devices, its
entries unchanged) plus a device that rejects ReadPropertyMultiple, "*" discovery from the
objectList, priority writes and relinquish, the reserved RPCs and a device going away."""

import json
import os
import queue
import signal
import subprocess
import threading
import time

from tbgwtest import SOURCE_DIR, GatewayTestCase, free_port, wait_for, main

PEERS = os.path.join(SOURCE_DIR, "tests", "peers")
REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "bacnet.json")


def free_udp_port():
    import socket
    while True:
        p = free_port()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()


class Devices:
    def __init__(self, spec):
        self.spec = spec
        self.events = queue.Queue()
        self.writes = queue.Queue()
        self.proc = subprocess.Popen(["node", os.path.join(PEERS, "bacnet_device.js"), json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, start_new_session=True, cwd=PEERS)
        threading.Thread(target=self._read, daemon=True).start()
        ready = set()
        while len(ready) < len(spec):
            ev = self.events.get(timeout=20)
            if "ready" in ev:
                ready.add(ev["ready"])

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            (self.writes if "write" in ev else self.events).put(ev)

    def command(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def write(self, timeout=10):
        return self.writes.get(timeout=timeout)["write"]

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Bacnet(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.pa, self.pb, self.pc, self.pg = free_udp_port(), free_udp_port(), free_udp_port(), free_udp_port()
        self.dev = Devices([
            {"port": self.pa, "instance": 1234, "name": "test emulator device", "cov": True, "objects": [
                {"type": 0, "instance": 1, "name": "temp", "value": 21.537},
                {"type": 5, "instance": 1, "name": "state", "value": 1},
                {"type": 1, "instance": 1, "name": "brightness", "value": 0},
                {"type": 1, "instance": 2, "name": "level", "value": 56},
                {"type": 4, "instance": 1, "name": "switch", "value": 0}]},
            {"port": self.pb, "instance": 77, "name": "no rpm", "rpm": False, "objects": [
                {"type": 0, "instance": 1, "name": "pressure", "value": 3.14159},
                {"type": 19, "instance": 2, "name": "mode", "value": 2}]},
            {"port": self.pc, "host": "0.0.0.0", "instance": 500, "name": "big", "segmented": True, "objects": [
                {"type": 2, "instance": i, "name": "v%d" % i, "value": i + 0.5} for i in range(60)]},
        ])
        self.extra.append(self.dev)

    def config(self):
        with open(REFERENCE) as f:
            cfg = json.load(f)
        cfg["application"].update({"host": "127.0.0.1", "port": self.pg, "apduTimeout": 500,
                                   "numberOfApduRetries": 1})
        ref = cfg["devices"][0]
        ref.update({"host": "127.0.0.1", "port": str(self.pa)})  # mask "24" kept: it must not matter
        ref["useCov"] = True  # tbgw's option; device 77 (no COV) has it too and stays polled
        ref["attributeUpdates"].append({"key": "setpoint", "objectType": "analogOutput", "objectId": 2,
                                        "propertyId": "presentValue", "priority": 8})
        cfg["devices"].append({
            "deviceInfo": {"deviceNameExpression": "Plant ${objectId} ${objectName}",
                           "deviceProfileExpression": "plant"},
            "host": "127.0.0.1", "port": self.pb, "deviceId": "70-80", "pollPeriod": 300, "useCov": True,
            "timeseries": "*",
            "attributes": [{"key": "${objectName}", "objectType": "analog-input", "objectId": "1",
                            "propertyId": ["presentValue", "objectName", "description"]}]})
        cfg["devices"].append({
            "deviceInfo": {"deviceNameExpression": "Big", "deviceNameExpressionSource": "constant"},
            "address": "127.0.0.X:%d" % self.pc, "pollPeriod": 1000,  # a pattern: found by a broadcast Who-Is
            "timeseries": [{"key": "${objectName}", "objectType": "analogValue", "objectId": "*",
                            "propertyId": "presentValue"},
                           {"key": "d", "objectType": "analogValue", "objectId": 1, "propertyId": "descriptionList"}]})
        return cfg

    def rpc(self, device, rid, method, params):
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                             "params": params}})
        return wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 10,
                        what="rpc reply %d" % rid)[0]["data"]

    def test_reference_config_end_to_end(self):
        gw = self.gateway(connectors=[{"type": "bacnet", "name": "BACnet", "config": self.config()}]).start()
        gw.wait_log("BACnet/IP device 599", timeout=10)
        # a proprietary property without loadProprietaryDevices: that key is skipped with the reason
        self.assertRegex(gw.log(), r"\.json:\d+:\d+: devices\[2\]\.timeseries\[1\]\.propertyId: 'descriptionList' is a "
                                   r"proprietary property of vendor 7: set loadProprietaryDevices")
        name = "BACnet Device test emulator device"
        attrs = wait_for(lambda: self.platform.attributes(name).get(name, {}).get("temperature"), 15,
                         what="temperature attribute")
        self.assertEqual(attrs, 21.54)
        tel = wait_for(lambda: [v for d, _, v in self.platform.telemetry(name) if "state" in v], 10, what="state")
        self.assertEqual(tel[0]["state"], "1")

        # the device without ReadPropertyMultiple: polled with ReadProperty; "*" from its objectList
        plant = "Plant 77 no rpm"
        got = wait_for(lambda: [v for d, _, v in self.platform.telemetry(plant) if "pressure" in v and "mode" in v],
                       15, what="plant telemetry")
        self.assertEqual(got[0], {"pressure": 3.14, "mode": "2"})
        pa = wait_for(lambda: self.platform.attributes(plant).get(plant, {}).get("pressure.description"), 10,
                      what="plant attributes")
        self.assertEqual(pa, "object pressure")
        self.assertEqual(self.platform.attributes(plant)[plant]["pressure.presentValue"], 3.14)
        self.assertIn("does not take ReadPropertyMultiple", gw.log())

        # found by broadcast (the application's subnet, 127.0.0.255, on the entry's port); a segmented
        # objectList (60 objects in 3 segments, each acknowledged) and "*" by type
        big = wait_for(lambda: [v for d, _, v in self.platform.telemetry("Big") if len(v) == 60], 15,
                       what="60 values of the segmented device")
        self.assertEqual(big[0]["v0"], 0.5)
        self.assertEqual(big[0]["v59"], 59.5)
        seg = wait_for(lambda: self._event("segmented"), 5, what="segmented answer acknowledged")
        self.assertEqual(seg["segmented"], {"segments": 3, "acks": 3})

        # COV: a change reaches the platform at once, not after the 10 s poll period
        wait_for(lambda: "no COV subscription for object 0,1" in gw.log(), 10, what="COV refused by device 77")
        sub = wait_for(lambda: self._event("subscribe"), 10, what="COV subscription")
        self.assertEqual(sub["subscribe"]["lifetime"], 300)
        time.sleep(0.3)
        t0 = time.time()
        self.dev.command("set 1234 0 1 30.456")
        wait_for(lambda: self.platform.attributes(name).get(name, {}).get("temperature") == 30.46, 5,
                 what="temperature by COV")
        self.assertLess(time.time() - t0, 3)

        # attribute updates: no priority in the reference entry; priority 8 in the added one; null relinquishes
        self.platform.publish("v1/gateway/attributes", {"device": name, "data": {"brightness": 75}})
        w = self.dev.write()
        self.assertEqual((w["type"], w["object"], w["value"], w["priority"]), (1, 1, 75, 16))
        self.platform.publish("v1/gateway/attributes", {"device": name, "data": {"setpoint": 12.5}})
        w = self.dev.write()
        self.assertEqual((w["object"], w["value"], w["priority"]), (2, 12.5, 8))
        self.platform.publish("v1/gateway/attributes", {"device": name, "data": {"setpoint": None}})
        w = self.dev.write()
        self.assertEqual((w["object"], w["value"], w["priority"]), (2, None, 8))

        # RPC of the reference config
        self.assertEqual(self.rpc(name, 1, "set_state", 1), {"result": "{'value': 1}"})
        w = self.dev.write()
        self.assertEqual((w["type"], w["object"], w["value"]), (4, 1, 1))
        self.assertEqual(self.rpc(name, 2, "get_state", None), {"result": "{'value': '56.0'}"})
        # reserved get / set
        r = self.rpc(name, 3, "get", "objectType=analogInput;objectId=1;propertyId=presentValue;")
        self.assertEqual(r, {"result": "{'value': '30.45599937438965'}"})  # str() of the Real as Python prints it
        r = self.rpc(name, 4, "set", "objectType=analogOutput;objectId=2;propertyId=presentValue;priority=5;value=42;")
        self.assertEqual(r, {"result": "{'value': '42'}"})
        w = self.dev.write()
        self.assertEqual((w["object"], w["value"], w["priority"]), (2, 42, 5))
        self.assertEqual(self.rpc(name, 5, "get_state", None), {"result": "{'value': '42.0'}"})
        r = self.rpc(name, 6, "get", "objectType=analogInput;objectId=99;propertyId=presentValue;")
        self.assertEqual(r, {"result": "{'error': 'error: object/unknown-object'}"})
        # the reference's error texts
        self.assertEqual(self.rpc(name, 7, "nope", None),
                         {"result": {"error": "Neither of configured device rpc methods match with nope"}})
        self.assertEqual(self.rpc(name, 8, "set", None), {"result": {"error": "No params section found in RPC request"}})
        self.assertIn("does not match with the schema: get objectType=<objectType>;",
                      self.rpc(name, 9, "get", "objectType=1;")["result"]["error"])
        self.assertEqual(self.rpc(name, 10, "get", "objectType=device;objectId=1;propertyId=objectName;"),
                         {"result": {"error": "The objectType must be from '['analogInput', 'analogOutput', "
                                              "'analogValue', 'binaryInput', 'binaryOutput', 'binaryValue'], "
                                              "but got'device"}})

        # a device going away: marked inactive (the other keeps its values flowing), then back
        self.dev.command("stop 77")
        gw.wait_log("device Plant 77 no rpm (127.0.0.1:%d) stopped answering" % self.pb, timeout=10)
        before = len(self.platform.telemetry(name))
        self.platform.publish("v1/gateway/attributes", {"device": name, "data": {"brightness": 5}})
        self.assertEqual(self.dev.write()["value"], 5)  # the silent device does not hold the others up
        # retried with a backoff (1 s doubling to 60 s, with jitter), each failed retry logged
        gw.wait_log("device Plant 77 no rpm (127.0.0.1:%d) still not answering; next retry in " % self.pb, timeout=10)
        self.dev.command("set 77 0 1 7.777")
        self.dev.command("start 77")
        wait_for(lambda: [v for d, _, v in self.platform.telemetry(plant) if v.get("pressure") == 7.78], 20,
                 what="plant telemetry after it came back")
        self.assertIn("answers again", gw.log())
        self.assertGreaterEqual(len(self.platform.telemetry(name)), before)
        self.assertEqual(gw.stop(), 0)

    def test_own_device_and_foreign_device_mode(self):
        cfg = self.config()
        cfg["devices"] = cfg["devices"][:1]
        cfg["foreignDevice"] = {"address": "127.0.0.1:%d" % self.pb, "ttl": 2}  # device 77 plays the BBMD
        cfg["application"]["devicesDiscoverPeriodSeconds"] = 1
        gw = self.gateway(connectors=[{"type": "bacnet", "name": "BACnet", "config": cfg}]).start()
        gw.wait_log("registered as a foreign device", timeout=10)
        regs = [wait_for(lambda: self._event("register"), 10, what="registration")]
        self.assertEqual(regs[0]["register"], 2)
        regs.append(wait_for(lambda: self._event("register"), 5, what="renewal before the TTL ends"))
        # the gateway's own device object answers Who-Is and ReadProperty (another stack asking)
        self.dev.command("probe 1234 %d 599" % self.pg)
        iam = wait_for(lambda: self._event("iam"), 10, what="I-Am of the gateway")
        self.assertEqual(iam["iam"]["deviceId"], 599)
        name = wait_for(lambda: self._event("read"), 10, what="objectName of the gateway")
        self.assertEqual(name["read"], ["TB_gateway"])
        # discovery repeats every devicesDiscoverPeriodSeconds (1 s here): Who-Is again and again
        # (through the BBMD for broadcasts; device 1234's is a unicast)
        first = wait_for(lambda: self._event("whois"), 10, what="a Who-Is")
        again = wait_for(lambda: self._event("whois"), 5, what="the next discovery round")
        self.assertEqual((first["whois"], again["whois"]), (1234, 1234))
        # a malformed frame: dropped, logged with its source, counted
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.sendto(b"\x81\x0a\x00\x07\x01\x00\x30", ("127.0.0.1", self.pg))  # a ComplexACK cut short
        src = "127.0.0.1:%d" % s.getsockname()[1]
        s.close()
        gw.wait_log("malformed APDU from %s (dropped)" % src, timeout=5)
        self.assertEqual(gw.stop(), 0)
        # closing deletes the gateway's entry in the BBMD's foreign-device table
        fdt = wait_for(lambda: self._event("deleteFdt"), 5, what="Delete-Foreign-Device-Table-Entry")
        self.assertTrue(fdt["deleteFdt"].endswith(":%d" % self.pg), fdt)

    def test_router_names_and_segmented_write(self):
        """A device on network 2001 behind a router (the router side of the peer works on raw frames;
        the router's own device object and the remote device are the npm stack): Who-Is-Router-To-
        Network finds the router, the Who-Is goes through it, the router's objectName / instance /
        vendor name the device; the remote device takes segmented requests (max APDU 128), so a
        1000-character write goes in segments with a window of 4."""
        pr, pr2 = free_udp_port(), free_udp_port()
        routed = Devices([
            {"host": "127.0.0.2", "port": self.pg, "instance": 4000, "name": "Router R1", "vendor": 7,
             "router": {"net": 2001, "stations": {"10": pr}}, "objects": []},
            {"port": pr, "instance": 1500, "name": "remote dev", "maxApdu": 128, "segmentation": 2, "vendor": 7,
             "objects": [
                {"type": 0, "instance": 1, "name": "temp", "value": 19.25, "descriptionList": ["Room 1", "North"]},
                {"type": 2, "instance": 1, "name": "text", "value": 1.5}]},
            # a second router whose own device object does not answer Who-Is
            {"host": "127.0.0.3", "port": self.pg, "instance": 4001, "name": "Mute", "silent": True,
             "router": {"net": 2002, "stations": {"20": pr2}}, "objects": []},
            {"port": pr2, "instance": 1600, "name": "remote two", "objects": []},
        ])
        self.extra.append(routed)
        cfg = self.config()
        cfg["application"]["devicesDiscoverPeriodSeconds"] = 60  # the router's answer sends the Who-Is
        cfg["loadProprietaryDevices"] = True  # top level, where the reference reads it
        cfg["application"]["deviceDiscoveryTimeoutInSec"] = 1  # how long a router's I-Am is waited for
        # loopback's broadcast address is 127.255.255.255 (127.0.0.255 reaches one socket only): both
        # routers, on 0.0.0.0 and the gateway's port, hear the Who-Is-Router-To-Network
        cfg["application"]["mask"] = "8"
        cfg["devices"] = [{
            "deviceInfo": {"deviceNameExpression": "${routerName} / ${objectName}",
                           "deviceProfileExpression": "r${routerVendorId} id${routerId} at ${routerAddress}"},
            "address": "2001:10", "pollPeriod": 500,
            "timeseries": [{"key": "temp", "objectType": "analogInput", "objectId": 1, "propertyId": "presentValue"},
                           {"key": "info", "objectType": "analogInput", "objectId": 1,  # Siemens' proprietary
                            "propertyId": ["objectName", "descriptionList"]}],
            "serverSideRpc": [{"method": "set_text", "requestType": "writeProperty",
                               "objectType": "analogValue", "objectId": 1, "propertyId": "description"}]},
            {"deviceInfo": {"deviceNameExpression": "${routerName} / ${objectName}"}, "address": "2002:*",
             "timeseries": []}]
        gw = self.gateway(connectors=[{"type": "bacnet", "name": "BACnet", "config": cfg}]).start()
        name = "Router R1 / remote dev"
        tel = wait_for(lambda: [v for d, _, v in self.platform.telemetry(name) if "temp" in v], 20,
                       what="telemetry of the routed device")
        self.assertEqual(tel[0]["temp"], 19.25)
        self.assertEqual(tel[0]["info.descriptionList"], "['Room 1', 'North']")
        self.assertEqual(tel[0]["info.objectName"], "temp")
        self.assertIn({"device": name, "type": "r7 id4000 at 127.0.0.2:%d" % self.pg},
                      [p for _, p in self.platform.all("v1/gateway/connect")])
        self.assertIn("network 2001 is reached through the router at 127.0.0.2:%d" % self.pg, gw.log())
        stash = []
        while not routed.events.empty():
            stash.append(routed.events.get_nowait())
        self.assertTrue([e for e in stash if "whoIsRouter" in e], stash)
        self.assertTrue([e for e in stash if "routed" in e])
        # the router that does not answer: its devices are named with the router tags left as they are
        wait_for(lambda: {"device": "${routerName} / remote two", "type": "default"} in
                 [p for _, p in self.platform.all("v1/gateway/connect")], 10, what="device behind the mute router")
        self.assertIn("router 127.0.0.3:%d did not answer Who-Is" % self.pg, gw.log())
        text = "".join(chr(ord("a") + i % 26) for i in range(1000))
        self.assertEqual(self.rpc(name, 1, "set_text", text), {"result": "{'value': '%s'}" % text})
        w = routed.write()
        self.assertEqual((w["instance"], w["type"], w["property"], w["value"]), (1500, 2, "description", text))
        self.assertEqual(w["segments"], 9)  # 1000+ octets in segments of 122 (128 - the 6-octet header)

        # the router says it is busy: the requests through it wait (no timeouts, the device is not
        # marked inactive although apduTimeout is 500 ms), and go once it says it is available
        routed.command("busy 4000")
        gw.wait_log("router 127.0.0.2:%d is busy for network 2001: requests to it wait" % self.pg, timeout=5)
        time.sleep(0.3)
        held = len(self.platform.telemetry(name))
        time.sleep(2)
        self.assertLessEqual(len(self.platform.telemetry(name)) - held, 1)  # 4 cycles at 500 ms without it
        routed.command("available 4000")
        gw.wait_log("router 127.0.0.2:%d takes messages again for network 2001" % self.pg, timeout=5)
        wait_for(lambda: len(self.platform.telemetry(name)) >= held + 3, 10, what="polls after the router is available")
        self.assertNotIn("stopped answering", gw.log())

        # the router goes away: its route is forgotten and looked for again; the device behind it is
        # marked inactive, and polled again through the router once that answers again
        while not routed.events.empty():
            routed.events.get_nowait()
        routed.command("stop 4000")
        gw.wait_log("network 2001: the router at 127.0.0.2:%d no longer answers; forgotten, looking for a router "
                    "again" % self.pg, timeout=10)
        gw.wait_log("device %s (2001:10) stopped answering" % name, timeout=10)
        routed.command("set 1500 0 1 23.5")
        routed.command("start 4000")
        wait_for(lambda: [v for d, _, v in self.platform.telemetry(name) if v.get("temp") == 23.5], 20,
                 what="telemetry through the router after it came back")
        events = []
        while not routed.events.empty():
            events.append(routed.events.get_nowait())
        self.assertTrue([e for e in events if "whoIsRouter" in e and e["instance"] == 4000], events)
        self.assertEqual(gw.log().count("network 2001 is reached through the router at 127.0.0.2:%d" % self.pg), 2)
        self.assertIn("device %s (2001:10) answers again" % name, gw.log())
        self.assertEqual(gw.stop(), 0)

    def test_objectlist_index_rescanned(self):
        """A device that cannot segment gives its objectList index by index; an entry whose read
        failed is read again after devicesRescanObjectsPeriodSeconds and its object then polled."""
        port = free_udp_port()
        flaky = Devices([{"port": port, "instance": 88, "name": "flaky", "rpm": False, "flakyIndex": 3, "objects": [
            {"type": 0, "instance": 1, "name": "pressure", "value": 1.25},
            {"type": 19, "instance": 2, "name": "mode", "value": 3}]}])
        self.extra.append(flaky)
        cfg = self.config()
        cfg["application"]["devicesRescanObjectsPeriodSeconds"] = 1
        cfg["devices"] = [{"deviceInfo": {"deviceNameExpression": "Flaky", "deviceNameExpressionSource": "constant"},
                           "host": "127.0.0.1", "port": port, "pollPeriod": 300, "timeseries": "*"}]
        gw = self.gateway(connectors=[{"type": "bacnet", "name": "BACnet", "config": cfg}]).start()
        first = wait_for(lambda: [v for d, _, v in self.platform.telemetry("Flaky") if "pressure" in v], 15,
                         what="telemetry without the object whose entry failed")
        self.assertNotIn("mode", first[0])
        seen = []
        while not seen or "flaky" not in seen[-1]:
            seen.append(flaky.events.get(timeout=5))
        self.assertEqual(seen[-1]["flaky"], 3)
        gw.wait_log("device Flaky: reading 1 objectList entries again", timeout=10)
        got = wait_for(lambda: [v for d, _, v in self.platform.telemetry("Flaky") if "mode" in v], 10,
                       what="the object of the entry read again")
        self.assertEqual(got[0], {"pressure": 1.25, "mode": "3"})
        self.assertEqual(gw.stop(), 0)

    def test_ede_file_base64_and_old_format(self):
        """Devices from an EDE file next to the config (edeFilePath), from base64 EDE content
        (edeConfig) and from the old format (top-level general), each on its own connector, found
        and polled on the npm devices."""
        pe, pb64, pold = free_udp_port(), free_udp_port(), free_udp_port()
        devs = Devices([
            {"port": pe, "instance": 3001, "name": "boiler", "objects": [
                {"type": 0, "instance": 1, "name": "flow", "value": 61.237},
                {"type": 4, "instance": 2, "name": "pump", "value": 1}]},
            {"port": pb64, "instance": 3002, "name": "chiller", "objects": [
                {"type": 2, "instance": 7, "name": "setp", "value": 6.5}]},
            {"port": pold, "instance": 3003, "name": "legacy", "objects": [
                {"type": 5, "instance": 1, "name": "state", "value": 0},
                {"type": 1, "instance": 2, "name": "out", "value": 40}]}])
        self.extra.append(devs)
        ports = [free_udp_port() for _ in range(3)]
        app = lambda p: {"objectName": "TB_gateway", "host": "127.0.0.1", "port": p, "objectIdentifier": 599 + p % 100,
                         "apduTimeout": 500, "numberOfApduRetries": 1}
        ede = ("#Engineering-Data-Exchange - B.I.G.-EU\nPROJECT_NAME;plant\n"
               "# keyname;device obj.-instance;object-name;object-type;object-instance;description\n"
               "d;3001;Boiler;8;3001;the boiler\nt;3001;Flow temp;0;1;\np;3001;Pump;4;2;\nc;3001;Cal;6;1;\n")
        ede64 = ("# keyname,device obj.-instance,object-name,object-type,object-instance\n"
                 "d,3002,Chiller,8,3002\ns,3002,Setpoint,2,7\n")
        import base64
        old = {"general": dict(app(ports[2]), address="127.0.0.1:%d" % ports[2]),
               "devices": [{"deviceName": "Legacy ${objectName}", "deviceType": "old",
                            "address": "127.0.0.1:%d" % pold, "pollPeriod": 500,
                            "timeseries": [{"key": "state", "objectId": "binaryValue:1", "propertyId": "presentValue"}],
                            "rpc": [{"method": "get_out", "requestType": "readProperty", "objectId": "analogOutput:2",
                                     "propertyId": "presentValue"}]}]}
        del old["general"]["host"], old["general"]["port"]
        gw = self.gateway(connectors=[
            {"type": "bacnet", "name": "EDE file", "config": {"application": app(ports[0]), "edeFilePath": "plant.csv"}},
            {"type": "bacnet", "name": "EDE b64",
             "config": {"application": app(ports[1]), "edeConfig": base64.b64encode(ede64.encode()).decode()}},
            {"type": "bacnet", "name": "Old", "config": old}], extra_files={"plant.csv": ede}).start()
        # EDE devices have address "*": found when their I-Am comes (a device announces itself)
        for inst, port in ((3001, ports[0]), (3002, ports[1])):
            gw.wait_log('("TB_gateway") on UDP port %d' % port, timeout=10)
            devs.command("announce %d %d" % (inst, port))
        got = wait_for(lambda: [v for d, _, v in self.platform.telemetry("Boiler") if "Flow temp" in v], 20,
                       what="telemetry of the EDE file device")
        self.assertEqual(got[0], {"Flow temp": 61.24, "Pump": "1"})
        got = wait_for(lambda: [v for d, _, v in self.platform.telemetry("Chiller") if "Setpoint" in v], 20,
                       what="telemetry of the base64 EDE device")
        self.assertEqual(got[0], {"Setpoint": 6.5})
        got = wait_for(lambda: [v for d, _, v in self.platform.telemetry("Legacy legacy") if "state" in v], 20,
                       what="telemetry of the old-format device")
        self.assertEqual(got[0], {"state": "0"})
        self.assertIn({"device": "Legacy legacy", "type": "old"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        self.assertEqual(self.rpc("Legacy legacy", 1, "get_out", None), {"result": "{'value': '40.0'}"})
        self.assertEqual(gw.stop(), 0)

    def test_cov_lifetime_renewal_and_confirmed_notifications(self):
        """covLifetime (tbgw's, default 300 s): the subscriptions are renewed at half the lifetime, so
        they never lapse on the device; a device that sends confirmed notifications gets its
        SimpleACK and the value reaches the platform at once."""
        port = free_udp_port()
        dev = Devices([{"port": port, "instance": 91, "name": "cov dev", "cov": True, "covConfirmed": True,
                        "objects": [{"type": 0, "instance": 1, "name": "t", "value": 1.5}]}])
        self.extra.append(dev)
        cfg = self.config()
        cfg["devices"] = [{"deviceInfo": {"deviceNameExpression": "Cov", "deviceNameExpressionSource": "constant"},
                           "host": "127.0.0.1", "port": port, "pollPeriod": 60000, "useCov": True, "covLifetime": 2,
                           "timeseries": [{"key": "t", "objectType": "analogInput", "objectId": 1,
                                           "propertyId": "presentValue"}]}]
        gw = self.gateway(connectors=[{"type": "bacnet", "name": "BACnet", "config": cfg}]).start()
        wait_for(lambda: [v for d, _, v in self.platform.telemetry("Cov") if v.get("t") == 1.5], 15, what="first poll")
        subs = []
        while len(subs) < 3:
            ev = dev.events.get(timeout=5)
            if "subscribe" in ev:
                subs.append((time.time(), ev["subscribe"]))
        self.assertEqual([s["lifetime"] for _, s in subs], [2, 2, 2])
        self.assertEqual({(s["type"], s["instance"], s["confirmed"]) for _, s in subs}, {(0, 1, False)})
        gaps = [b[0] - a[0] for a, b in zip(subs, subs[1:])]
        self.assertTrue(all(0.7 < g < 1.6 for g in gaps), gaps)  # renewed at half the 2 s lifetime
        dev.command("set 91 0 1 7.25")  # no poll for a minute: only the notification can bring it
        wait_for(lambda: [v for d, _, v in self.platform.telemetry("Cov") if v.get("t") == 7.25], 5,
                 what="value by a confirmed COV notification")
        acked = []
        while not acked:
            ev = dev.events.get(timeout=5)
            if "covAcked" in ev or "covError" in ev:
                acked.append(ev)
        self.assertEqual(acked[0].get("covAcked"), 1, acked)
        self.assertEqual(gw.stop(), 0)

    def test_adaptive_poll_period(self):
        """A device slower than its pollPeriod: each cycle starts when the last one is over (no
        overlapping reads, no timeouts, not marked inactive); when it is fast again the period
        goes back to pollPeriod."""
        port = free_udp_port()
        dev = Devices([{"port": port, "instance": 92, "name": "slow", "rpm": False, "delay": 700,
                        "objects": [{"type": 0, "instance": 1, "name": "t", "value": 2.5}]}])
        self.extra.append(dev)
        cfg = self.config()
        cfg["application"].update({"apduTimeout": 2000, "numberOfApduRetries": 0})
        cfg["devices"] = [{"deviceInfo": {"deviceNameExpression": "Slow", "deviceNameExpressionSource": "constant"},
                           "host": "127.0.0.1", "port": port, "pollPeriod": 200,
                           "timeseries": [{"key": "t", "objectType": "analogInput", "objectId": 1,
                                           "propertyId": "presentValue"}]}]
        gw = self.gateway(connectors=[{"type": "bacnet", "name": "BACnet", "config": cfg}]).start()
        wait_for(lambda: self.platform.telemetry("Slow"), 15, what="first value")
        n0 = len(self.platform.telemetry("Slow"))
        time.sleep(3)
        slow = len(self.platform.telemetry("Slow")) - n0
        self.assertTrue(2 <= slow <= 5, slow)  # one per 700 ms cycle, not one per 200 ms
        dev.command("delay 92 0")
        time.sleep(1)
        n1 = len(self.platform.telemetry("Slow"))
        time.sleep(3)
        fast = len(self.platform.telemetry("Slow")) - n1
        self.assertGreaterEqual(fast, 9, fast)  # back to about one per 200 ms
        self.assertNotIn("stopped answering", gw.log())
        self.assertEqual(gw.stop(), 0)

    def test_rpm_batches_by_max_apdu(self):
        """ReadPropertyMultiple batches as the reference computes them: floor(floor(maxAPDU / 26) /
        maxPropsPerObject) objects per request; a device whose I-Am says max APDU 206, each object read
        for presentValue and the objectName of its key: floor(7 / 2) = 3."""
        port = free_udp_port()
        dev = Devices([{"port": port, "instance": 93, "name": "small", "maxApdu": 206, "reportRpm": True,
                        "objects": [{"type": 2, "instance": i, "name": "v%d" % i, "value": i} for i in range(15)]}])
        self.extra.append(dev)
        cfg = self.config()
        cfg["devices"] = [{"deviceInfo": {"deviceNameExpression": "Small", "deviceNameExpressionSource": "constant"},
                           "host": "127.0.0.1", "port": port, "pollPeriod": 60000,
                           "timeseries": [{"key": "${objectName}", "objectType": "analogValue", "objectId": "*",
                                           "propertyId": "presentValue"}]}]
        gw = self.gateway(connectors=[{"type": "bacnet", "name": "BACnet", "config": cfg}]).start()
        got = wait_for(lambda: [v for d, _, v in self.platform.telemetry("Small") if len(v) == 15], 15,
                       what="15 values")
        self.assertEqual(got[0]["v14"], 14.0)
        sizes = []
        while len(sizes) < 5:
            ev = dev.events.get(timeout=5)
            if "rpm" in ev:
                sizes.append(ev["rpm"])
        self.assertEqual(sizes, [3, 3, 3, 3, 3])
        self.assertEqual(gw.stop(), 0)

    def _event(self, kind):
        """The first not yet taken peer event of that kind (others are kept for later calls)."""
        stash = self.__dict__.setdefault("_stash", [])
        while True:
            try:
                stash.append(self.dev.events.get_nowait())
            except queue.Empty:
                break
        for i, ev in enumerate(stash):
            if kind in ev:
                return stash.pop(i)
        return None

if __name__ == "__main__":
    main()
