"""The custom connector kit's complete example, examples/serial_connector (SerialConnector.so), run
as the reference's custom serial connector: the reference's own custom_serial.json unchanged but for
the port, a socat pty pair as the serial line and this test as the device on its other end."""

import json
import os
import select
import shutil
import subprocess
import termios
import time
import tty

from tbgwtest import BUILD_DIR, SOURCE_DIR, GatewayTestCase, test_connector, wait_for, main

PLUGIN = os.path.join(BUILD_DIR, "plugins", "serial_connector.so")
REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "custom_serial.json")


class Device:
    """The device end of a socat pty pair."""

    def __init__(self, workdir):
        self.gw_end = os.path.join(workdir, "ttyGW")
        self.dev_end = os.path.join(workdir, "ttyDEV")
        self.proc = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s" % self.gw_end,
                                      "pty,raw,echo=0,link=%s" % self.dev_end],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: os.path.exists(self.gw_end) and os.path.exists(self.dev_end), 10, what="socat ptys")
        self.fd = os.open(self.dev_end, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    def send(self, data):
        os.write(self.fd, data)

    def read(self, n, timeout=10.0):
        out = b""
        deadline = time.time() + timeout
        while len(out) < n and time.time() < deadline:
            r, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.time()))
            if r:
                out += os.read(self.fd, n - len(out))
        return out

    def stop(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


class CustomSerialTest(GatewayTestCase):
    def start_gateway(self, dev, extra_devices=()):
        with open(REFERENCE) as f:
            cfg = json.load(f)
        cfg["devices"][0]["port"] = dev.gw_end
        cfg["devices"] += list(extra_devices)
        gw = self.gateway(connectors=[{"type": "serial", "name": "Custom serial connector",
                                       "class": "SerialConnector", "config": cfg}])
        ext = os.path.join(gw.cfgdir, "extensions", "serial")
        os.makedirs(ext)
        shutil.copy(PLUGIN, os.path.join(ext, "SerialConnector.so"))
        gw.start()
        gw.wait_log("port %s open" % dev.gw_end)
        return gw

    def rpc(self, rid, method, params):
        self.platform.publish("v1/gateway/rpc", {"device": "SerialDevice1",
                                                 "data": {"id": rid, "method": method, "params": params}})
        return lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid]

    def test_reference_config_end_to_end(self):
        dev = Device(self.workdir)
        self.extra.append(dev)
        bad = {"name": "Broken", "port": "/dev/null", "converter": "NoSuchConverter"}
        gw = self.start_gateway(dev, [bad])
        self.assertIn("devices[1].converter: \"NoSuchConverter\" is not available", gw.log())

        # Uplink: humidity is the float before "\r", SerialNumber bytes 4..-1 of the line, stripped.
        dev.send(b"25.5\rXYZ123\n")
        tel = wait_for(lambda: [v for d, _, v in self.platform.telemetry("SerialDevice1") if "humidity" in v], 10,
                       what="humidity")
        self.assertEqual(tel[0], {"humidity": 25.5})
        attrs = wait_for(lambda: self.platform.attributes("SerialDevice1").get("SerialDevice1", {}).get("SerialNumber"), 10,
                         what="SerialNumber")
        self.assertEqual(attrs, "XYZ123")
        # A line without the delimiter is taken after the device's read timeout (1 s).
        dev.send(b"7")
        wait_for(lambda: [v for d, _, v in self.platform.telemetry("SerialDevice1") if v.get("humidity") == 7.0],
                 10, what="partial chunk")

        # Attribute update: stringToDevice with ${attr1} replaced.
        self.platform.publish("v1/gateway/attributes", {"device": "SerialDevice1", "data": {"attr1": 42}})
        self.assertEqual(dev.read(len(b"value = 42\n")), b"value = 42\n")
        self.platform.publish("v1/gateway/attributes", {"device": "SerialDevice1", "data": {"attr1": True}})
        self.assertEqual(dev.read(len(b"value = True\n")), b"value = True\n")

        # RPC setValue: int params as minimal big-endian bytes; the answer until "\r" is the result.
        got = self.rpc(1, "setValue", 258)
        self.assertEqual(dev.read(2), b"\x01\x02")
        dev.send(b"OK 258\r\n")
        reply = wait_for(got, 10, what="setValue reply")[0]
        self.assertEqual(reply["data"], {"result": "OK 258"})
        # The answer went to the RPC, not to telemetry.
        time.sleep(0.3)
        self.assertFalse([v for d, _, v in self.platform.telemetry("SerialDevice1") if "OK" in json.dumps(v)])

        # RPC getValue: string params written as UTF-8, no response expected.
        got = self.rpc(2, "getValue", "hello")
        self.assertEqual(dev.read(5), b"hello")
        self.assertEqual(wait_for(got, 10, what="getValue reply")[0]["data"], {"success": True})

        # Unknown method, and a bad params type.
        got = self.rpc(3, "nope", 1)
        self.assertEqual(wait_for(got, 10, what="unknown method reply")[0]["data"],
                         {"error": "Method not found", "success": False})
        got = self.rpc(4, "setValue", "abc")
        data = wait_for(got, 10, what="bad params reply")[0]["data"]
        self.assertFalse(data["success"])
        self.assertIn("non-negative integer", data["error"])

    def test_port_appears_later_and_comes_back(self):
        dev = Device(self.workdir)
        self.extra.append(dev)
        gw = self.start_gateway(dev)
        dev.stop()  # the line goes away: the connector closes the port and retries
        wait_for(lambda: "ttyGW closed (" in gw.log(), 10, what="hang-up noticed")
        dev2 = Device(self.workdir)
        self.extra.append(dev2)
        gw.wait_log("port %s open" % dev2.gw_end, timeout=15)
        wait_for(lambda: gw.log().count("port %s open" % dev2.gw_end) >= 2, 15, what="reopen")
        dev2.send(b"30.25\rSN\n")
        wait_for(lambda: [v for d, _, v in self.platform.telemetry("SerialDevice1") if v.get("humidity") == 30.25],
                 10, what="value after reopen")


    def test_plugin_of_another_abi_is_refused_and_others_run(self):
        src = os.path.join(self.workdir, "future.c")
        with open(src, "w") as f:
            f.write('#include <tbgw/connector.h>\n'
                    'static const tbgw_connector_ops ops = {.abi = 99, .type = "future"};\n'
                    'const tbgw_connector_ops *tbgw_connector_entry(uint32_t abi);\n'
                    'const tbgw_connector_ops *tbgw_connector_entry(uint32_t abi) { (void)abi; return &ops; }\n')
        so = os.path.join(self.workdir, "FutureConnector.so")
        cflags = subprocess.run(["pkg-config", "--cflags", "jansson"], capture_output=True, text=True).stdout.split()
        subprocess.run(["cc", "-shared", "-fPIC", "-I", os.path.join(SOURCE_DIR, "include")] + cflags +
                       [src, "-o", so], check=True)
        gw = self.gateway(connectors=[{"type": "future", "name": "Future", "plugin": so, "config": {}},
                                      test_connector(messages=2)])
        gw.start()
        gw.wait_log("ABI 1 expected, plugin has 99")
        wait_for(lambda: self.platform.telemetry(), 10, what="the other connector's telemetry")


if __name__ == "__main__":
    main()
