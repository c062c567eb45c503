"""CAN connector over slcan: the reference's can.json (interface switched to an slcan adapter on a
socat pty pair; its CAN FD flags need SocketCAN) against tests/peers/slcan_adapter.py, which answers
the polling frames as a car would: the door flag with its expression, rpm by command, milliage with
no command on the same id; attribute updates and RPCs arriving as frames; an adapter that is
unplugged and comes back. A last test runs on a real vcan0 where the kernel has SocketCAN."""

import json
import os
import queue
import socket
import subprocess
import threading
import time
import unittest

from tbgwtest import SOURCE_DIR, GatewayTestCase, wait_for, main

REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "can.json")
ADAPTER = os.path.join(SOURCE_DIR, "tests", "peers", "slcan_adapter.py")

RULES = {
    # door: id 41 (0x029), poll AB CD AB CD -> command 0x220D at 2..3, value byte 4 = 0x04
    "t0294ABCDABCD": ["t0298AA00220D04000000"],
    # rpm: id 1918 extended, command 0xBBBB at 2..3, value 0x0FA0 at 4..5 (big) -> 4000 / 4
    "T0000077E8AAAABBBBAAAABBBB": ["T0000077E800 00BBBB0FA00000".replace(" ", "")],
    # milliage: the same id, no command: bytes 4..5 little 0x0064 -> 100 * 10
    "T0000077E8AABBCCDDEEFFAABB": ["T0000077E800001234640000 00".replace(" ", "")],
}


class Adapter:
    def __init__(self, workdir, tag=""):
        self.gw_end = os.path.join(workdir, "ttyCAN" + tag)
        self.dev_end = os.path.join(workdir, "ttyADP" + tag)
        self.socat = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s" % self.gw_end,
                                       "pty,raw,echo=0,link=%s" % self.dev_end],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: os.path.exists(self.gw_end) and os.path.exists(self.dev_end), 10, what="ptys")
        self.proc = subprocess.Popen(["/usr/bin/python3", ADAPTER, self.dev_end, json.dumps(RULES)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.rx = queue.Queue()
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
        assert self.rx.get(timeout=10).get("ready")

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            if "rx" in msg:
                self.lines.append(msg["rx"])
            self.rx.put(msg)

    def inject(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self):
        for p in (self.proc, self.socat):
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class Can(GatewayTestCase):
    def config(self, port):
        with open(REFERENCE) as f:
            cfg = json.load(f)
        cfg.update({"interface": "slcan", "channel": port, "backend": {"bitrate": 500000}, "reconnectPeriod": 1})
        return cfg

    def start(self, cfg):
        return self.gateway(connectors=[{"type": "can", "name": "CAN", "config": cfg}]).start()

    def rpc(self, rid, method, params):
        self.platform.publish("v1/gateway/rpc", {"device": "Car", "data": {"id": rid, "method": method,
                                                                          "params": params}})
        return wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 10,
                        what="rpc reply %d" % rid)[0]["data"]

    def test_reference_config_over_slcan(self):
        a = Adapter(self.workdir)
        self.extra.append(a)
        cfg = self.config(a.gw_end)
        cfg["devices"][0]["timeseries"][0]["polling"]["period"] = 0.5
        gw = self.start(cfg)
        wait_for(lambda: "S6" in a.lines and "O" in a.lines, 10, what="slcan set-up C, S6, O")
        door = wait_for(lambda: self.platform.attributes("Car").get("Car", {}).get("isDriverDoorOpened") is not None
                        and self.platform.attributes("Car")["Car"], 10, what="door attribute")
        self.assertIs(door["isDriverDoorOpened"], True)  # bool(value & 0b100): a JSON boolean
        rpm = wait_for(lambda: [v["rpm"] for d, _, v in self.platform.telemetry("Car") if "rpm" in v], 10, what="rpm")
        self.assertEqual(rpm[0], 1000.0)  # Python's true division: a float
        self.assertIsInstance(rpm[0], float)
        mil = wait_for(lambda: [v["milliage"] for d, _, v in self.platform.telemetry("Car") if "milliage" in v], 10,
                       what="milliage (no command on that id)")
        self.assertIn(1000, mil)
        # "always" polls again every period; "once" does not
        wait_for(lambda: a.lines.count("T0000077E8AAAABBBBAAAABBBB") >= 3, 10, what="periodic polls")
        self.assertEqual(a.lines.count("t0294ABCDABCD"), 1)
        # injected traffic: an unknown command on the rpm id is ignored, a known one converted
        a.inject("T0000077E8000012340FA00000")
        a.inject("T0000077E80000BBBB00C80000")
        wait_for(lambda: 50.0 in [v.get("rpm") for d, _, v in self.platform.telemetry("Car")], 10,
                 what="injected rpm")
        # attribute update: value + 5 as 4 little-endian bytes on extended id 64
        self.platform.publish("v1/gateway/attributes", {"device": "Car", "data": {"softwareVersion": 3}})
        wait_for(lambda: "T0000004040 8000000".replace(" ", "") in a.lines, 10, what="attribute update frame")
        # RPC with params over the configuration (enableUnknownRpc): dataBefore + 2 little-endian bytes
        self.assertEqual(self.rpc(1, "setLightLevel", {"value": 258}), {"success": True})
        wait_for(lambda: "t005400AA0201" in a.lines, 10, what="setLightLevel frame")
        # dataExpression over the params, dataAfter kept
        self.assertEqual(self.rpc(2, "setSpeed", {"userSpeed": 50, "maxAllowedSpeed": 40}), {"success": True})
        wait_for(lambda: "t0103280102" in a.lines, 10, what="setSpeed frame")
        # reserved set with text params: nodeId coerced to a number
        self.assertEqual(self.rpc(3, "set", "nodeId=16;dataInHex=AABB;"), {"result": {"success": True}})
        wait_for(lambda: "t0102AABB" in a.lines, 10, what="reserved set frame")
        # the reference's sendSameData has a broken dataInHex ("cc d ee"): the reply names it
        reply = self.rpc(4, "sendSameData", {})
        self.assertIn("dataInHex", reply["error"])
        # a CAN FD frame cannot go through slcan: the reply says so
        reply = self.rpc(5, "anyMethod", {"nodeId": 4, "isExtendedId": True, "isFd": True, "dataInHex": "AABB"})
        self.assertFalse(reply["success"])
        self.assertIn("classic CAN frames only", reply["error"])

        # the adapter is unplugged and plugged in again
        a.stop()
        gw.wait_log("reopening", timeout=10)
        b = Adapter(self.workdir)
        self.extra.append(b)
        wait_for(lambda: "O" in b.lines, 15, what="set-up on the new adapter")
        n = len([1 for d, _, v in self.platform.telemetry("Car") if "rpm" in v])
        wait_for(lambda: len([1 for d, _, v in self.platform.telemetry("Car") if "rpm" in v]) > n, 10,
                 what="rpm after the adapter came back")

    def test_bad_entries_are_skipped(self):
        a = Adapter(self.workdir, "2")
        self.extra.append(a)
        cfg = self.config(a.gw_end)
        cfg["devices"][0]["attributes"].append({"key": "broken", "nodeId": 41, "value": "4:1:quaternion"})
        cfg["devices"][0]["attributes"].append({"key": "badexpr", "nodeId": 41, "value": "4:1:int",
                                                "expression": "value +* 2"})
        cfg["devices"].append({"attributes": [{"key": "x", "nodeId": 7, "value": "0:1:int"}]})
        cfg["devices"].append({"name": "Other", "attributes": {"key": "y"}})
        gw = self.start(cfg)
        wait_for(lambda: self.platform.attributes("Car").get("Car", {}).get("isDriverDoorOpened") is not None, 10,
                 what="the good entries still work")
        log = gw.log()
        # each at its own file:line:column; a device without a name is skipped, the others stay
        self.assertRegex(log, r"CAN\.json:\d+:\d+: devices\[0\]\.attributes\[1\]\.value: ")
        self.assertRegex(log, r"CAN\.json:\d+:\d+: devices\[0\]\.attributes\[2\]\.expression: ")
        self.assertRegex(log, r"CAN\.json:\d+:\d+: devices\[1\]: name: expected a string")
        self.assertRegex(log, r"CAN\.json:\d+:\d+: devices\[2\]\.attributes: expected a list")


class VCan(GatewayTestCase):
    def test_socketcan_on_vcan0(self):
        try:
            s = socket.socket(socket.PF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
            s.bind(("vcan0",))
        except OSError as e:
            raise unittest.SkipTest("no SocketCAN vcan0 on this machine (%s)" % e)
        with open(REFERENCE) as f:
            cfg = json.load(f)
        self.gateway(connectors=[{"type": "can", "name": "CAN", "config": cfg}]).start()
        import struct
        s.send(struct.pack("=IB3x8s", 41, 8, bytes.fromhex("AA00220D04000000")))
        wait_for(lambda: self.platform.attributes("Car").get("Car", {}).get("isDriverDoorOpened") is True, 10,
                 what="door over vcan0")


if __name__ == "__main__":
    main()
