"""XMPP connector against prosody started here on a free loopback port, with a second account as
the device (tests/peers/xmpp_device.py on python3-slixmpp): the reference's xmpp.json (host and
port pointed at the test server), JSON and text bodies, attribute updates, RPC (named and reserved
set) reaching the device, certificate verification, and a restart of the server."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from tbgwtest import SLOW, SOURCE_DIR, TBGW_BIN, GatewayTestCase, free_port, wait_for, wait_port, wake_rate, main

PEERS = os.path.join(SOURCE_DIR, "tests", "peers")
REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "xmpp.json")


class Prosody:
    def __init__(self, workdir, accounts):
        self.dir = os.path.join(workdir, "prosody")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.port = free_port()
        self.cert = os.path.join(self.dir, "localhost.crt")
        key = os.path.join(self.dir, "localhost.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", key, "-out",
                        self.cert], check=True, capture_output=True)
        self.cfg = os.path.join(self.dir, "prosody.cfg.lua")
        with open(self.cfg, "w") as f:
            f.write("\n".join([
                "run_as_root = true", "daemonize = false", 'pidfile = "%s/prosody.pid"' % self.dir,
                'data_path = "%s/data"' % self.dir, 'certificates = "%s"' % self.dir,
                'interfaces = { "127.0.0.1" }', "c2s_ports = { %d }" % self.port, "c2s_direct_tls_ports = { }",
                "s2s_ports = { }", "http_ports = { }", "https_ports = { }",
                'modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "posix" }',
                'modules_disabled = { "s2s" }', 'authentication = "internal_plain"',
                "c2s_require_encryption = true", 'log = { warn = "%s/prosody.log" }' % self.dir,
                'VirtualHost "localhost"', '  ssl = { key = "%s"; certificate = "%s" }' % (key, self.cert), ""]))
        for user, password in accounts:
            subprocess.run(["prosodyctl", "--config", self.cfg, "register", user, "localhost", password],
                           check=True, capture_output=True)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["prosody", "--config", self.cfg], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


class Device:
    def __init__(self, server, jid, password):
        self.server, self.jid, self.password = server, jid, password
        self.got = queue.Queue()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(PEERS, "xmpp_device.py"), self.jid, self.password,
                                      "127.0.0.1", str(self.server.port), self.server.cert],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        first = self.got.get(timeout=20)
        assert first.get("ready"), first
        return self

    def _read(self):
        for line in self.proc.stdout:
            self.got.put(json.loads(line))

    def send(self, body, to="gateway@localhost"):
        self.proc.stdin.write("%s\t%s\n" % (to, body.replace("\n", "\\n")))
        self.proc.stdin.flush()

    def receive(self, timeout=10):
        return self.got.get(timeout=timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Xmpp(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.server = Prosody(self.workdir, [("gateway", "password"), ("device", "devpass"),
                                             ("stranger", "strpass")]).start()
        self.extra.append(self.server)

    def gateway_for(self, ca=True, extra_devices=()):
        with open(REFERENCE) as f:
            cfg = json.load(f)
        cfg["server"].update({"host": "127.0.0.1", "port": self.server.port})
        if ca:
            cfg["server"]["caCert"] = self.server.cert
        cfg["devices"] += list(extra_devices)
        gw = self.gateway(connectors=[{"type": "xmpp", "name": "XMPP", "config": cfg}]).start()
        return gw

    def device(self, resource="TMP_1101", user="device", password="devpass"):
        d = Device(self.server, "%s@localhost/%s" % (user, resource), password).start()
        self.extra.append(d)
        return d

    def rpc(self, device, rid, method, params):
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                             "params": params}})
        return wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 10,
                        what="rpc reply %d" % rid)[0]

    def test_reference_config_end_to_end(self):
        text_dev = {"jid": "device@localhost/TXT", "deviceNameExpression": "[0:4]", "deviceTypeExpression": "tank",
                    "timeseries": [{"key": "level", "value": "[5:]"}]}
        gw = self.gateway_for(extra_devices=[text_dev])
        gw.wait_log("connected to the XMPP server as gateway@localhost", timeout=20)
        dev = self.device()
        dev.send(json.dumps({"serialNumber": "SN-1", "temp": 25.5, "hum": 60}))
        tel = wait_for(lambda: [v for d, _, v in self.platform.telemetry("SN-1") if "humidity" in v], 15,
                       what="telemetry of SN-1")
        self.assertEqual(tel[0], {"humidity": "60", "combination": "25.5:60"})
        attrs = wait_for(lambda: self.platform.attributes("SN-1").get("SN-1", {}).get("temperature"), 10,
                         what="attribute")
        self.assertEqual(attrs, "25.5")
        # a body with its own timestamp
        dev.send(json.dumps({"serialNumber": "SN-1", "temp": 1, "hum": 2, "ts": 1700000000000}))
        wait_for(lambda: [ts for d, ts, v in self.platform.telemetry("SN-1") if ts == 1700000000000], 10,
                 what="telemetry with ts")
        # text bodies by character slices, from the device's second resource
        txt = self.device(resource="TXT")
        txt.send("TANK 42.5%")
        tank = wait_for(lambda: [v for d, _, v in self.platform.telemetry("TANK")], 10, what="text telemetry")
        self.assertEqual(tank[0], {"level": "42.5%"})
        # a stranger's messages are not a device's
        stranger = self.device(resource="X", user="stranger", password="strpass")
        stranger.send(json.dumps({"serialNumber": "EVIL", "temp": 1, "hum": 1}))

        # attribute update: the first matching entry's valueExpression as a chat message
        self.platform.publish("v1/gateway/attributes", {"device": "SN-1", "data": {"shared": "on"}})
        got = dev.receive()
        self.assertEqual(got, {"from": "gateway@localhost/" + got["from"].split("/", 1)[1], "body": '{"shared":"on"}'})
        # RPC rpc1: ${params} as json.dumps, reply success
        reply = self.rpc("SN-1", 7, "rpc1", {"speed": 3, "dir": "up"})
        self.assertEqual(json.loads(reply["data"]), {"success": True})  # the reference's success_sent: a string
        self.assertEqual(dev.receive()["body"], '{"speed": 3, "dir": "up"}')
        # reserved set: k=v; pairs sent as JSON
        reply = self.rpc("SN-1", 8, "set", "value=5; mode=auto;")
        self.assertEqual(reply["data"], {"result": {"success": True}})
        self.assertEqual(dev.receive()["body"], '{"value": "5", "mode": "auto"}')
        reply = self.rpc("SN-1", 9, "set", "")
        self.assertIn("RPC params are empty", reply["data"]["set"])
        reply = self.rpc("SN-1", 10, "nothing", {})
        self.assertEqual(reply["data"], {"error": "Method not found"})
        time.sleep(0.5)
        self.assertFalse(self.platform.telemetry("EVIL"))

        # idle, the connector thread sleeps on its socket and the downlink descriptor (about one look
        # a second at libstrophe's timers) and an RPC still goes out at once
        rate = wake_rate(gw.proc.pid, "XMPP")
        self.assertLess(rate, 10.0 * SLOW, "XMPP thread context switches per second at idle: %.1f" % rate)
        t0 = time.time()
        reply = self.rpc("SN-1", 11, "set", "value=6;")
        self.assertEqual(reply["data"], {"result": {"success": True}})
        self.assertLess(time.time() - t0, 1.0 * SLOW)
        self.assertEqual(dev.receive()["body"], '{"value": "6"}')

        # the server restarts: the connector logs in again and data flows
        self.server.stop()
        gw.wait_log("XMPP session ended", timeout=10)
        self.server.start()
        wait_for(lambda: gw.log().count("connected to the XMPP server") >= 2, 30, what="reconnect")
        dev2 = self.device()
        dev2.send(json.dumps({"serialNumber": "SN-2", "temp": 3, "hum": 4}))
        wait_for(lambda: self.platform.telemetry("SN-2"), 15, what="telemetry after the restart")

    def test_unverified_server_certificate_is_refused(self):
        gw = self.gateway_for(ca=False)
        gw.wait_log("server certificate refused", timeout=20)
        self.assertNotIn("connected to the XMPP server", gw.log())


class XmppConfig(GatewayTestCase):
    def test_bad_entries_reported_with_their_place(self):
        """A device entry or one key that cannot be used is reported with file:line:column (by
        --check-config too) and skipped; the rest of the file is used."""
        with open(REFERENCE) as f:
            cfg = json.load(f)
        cfg["devices"][0]["attributes"].append({"key": "k"})  # no value template
        cfg["devices"].append({"jid": "nobody"})
        gw = self.gateway(connectors=[{"type": "xmpp", "name": "XMPP", "config": cfg}])
        check = subprocess.run([TBGW_BIN, "--check-config", "-c", gw.config_path], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout)
        self.assertRegex(check.stdout, r"warning: \S*XMPP\.json:\d+:\d+: devices\[0\]\.attributes\[%d\]\.value: "
                                       r"expected a string" % (len(cfg["devices"][0]["attributes"]) - 1))
        self.assertRegex(check.stdout, r"warning: \S*XMPP\.json:\d+:\d+: devices\[%d\]\.jid: expected the device's "
                                       r"full JID" % (len(cfg["devices"]) - 1))
        self.assertIn("0 error(s), 2 warning(s)", check.stdout)


if __name__ == "__main__":
    main()
