"""/metrics and /healthz (tbgw extension), gateway_reboot opt-in, remote shell RPCs."""

import json
import os
import shutil
import time
import urllib.error
import urllib.request

from tbgwtest import GatewayTestCase, TBGW_BIN, free_port, test_connector, wait_for, main


def mapped(gw, name):
    with open("/proc/%d/maps" % gw.proc.pid) as f:
        return name in f.read()


def with_metrics(gw, port):
    with open(gw.config_path) as f:
        conf = json.load(f)
    conf["metrics"] = {"enabled": True, "port": port}
    with open(gw.config_path, "w") as f:
        json.dump(conf, f)


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def parse_prom(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


class Metrics(GatewayTestCase):
    def test_metrics_and_health_follow_the_gateway(self):
        port = free_port()
        lst = {"deny": {"Test Connector": ["Test Device 2"]}}
        gw = self.gateway(connectors=[test_connector(devices=2, messages=5, intervalMs=50),
                                      test_connector(name="Flaky", deviceNamePrefix="F ", messages=0,
                                                     intervalMs=50, failAfter=2)],
                          thingsboard={"deviceFiltering": {"enable": True, "filterFile": "list.json"}},
                          extra_files={"list.json": lst})
        with open(gw.config_path) as f:
            conf = json.load(f)
        conf["metrics"] = {"enabled": True, "port": port, "host": "127.0.0.1"}
        with open(gw.config_path, "w") as f:
            json.dump(conf, f)
        gw.start()
        gw.wait_log("metrics on http://127.0.0.1:%d/metrics" % port)
        wait_for(lambda: len(self.platform.telemetry("Test Device 1")) >= 5, 15)

        def metrics():
            st, ctype, body = http_get(port, "/metrics")
            self.assertEqual(st, 200)
            self.assertTrue(ctype.startswith("text/plain; version=0.0.4"))
            return parse_prom(body)
        m = wait_for(lambda: (lambda x: x if x["tbgw_storage_committed_total"] >= 5
                              and x["tbgw_filtered_records_total"] == 5 else None)(metrics()), 10)
        self.assertEqual(m["tbgw_up"], 1)
        self.assertEqual(m["tbgw_platform_connected"], 1)
        self.assertGreaterEqual(m["tbgw_messages_sent_total"], 5)
        self.assertGreaterEqual(m["tbgw_messages_received_total"], 1)  # getSessionLimits answer
        self.assertEqual(m["tbgw_filtered_records_total"], 5)
        self.assertGreaterEqual(m["tbgw_filtered_datapoints_total"], 5)
        self.assertEqual(m['tbgw_connector_storage_pushed_total{connector="Test Connector"}'], 5)
        # every record the connector produced was acknowledged (the platform is up all along)
        wait_for(lambda: metrics()['tbgw_connector_events_sent_total{connector="Test Connector"}'] == 5, 10)
        self.assertGreaterEqual(m['tbgw_connector_messages_received_total{connector="Test Connector"}'], 5)
        self.assertIn('tbgw_connector_state{connector="Flaky",type="tbgw_test",state="FAILED"}', m)
        self.assertIn("tbgw_storage_records", m)
        wait_for(lambda: metrics()['tbgw_connector_restarts_total{connector="Flaky"}'] >= 1, 15)
        st, ctype, body = http_get(port, "/nothing")
        self.assertEqual(st, 404)
        # health: platform down -> 503 with the reason; back -> 200 (the failing connector is restarted,
        # so poll until it is not in FAILED)
        self.platform.stop()
        self.broker.stop()
        st, ctype, body = wait_for(lambda: (lambda r: r if r[0] == 503 and "disconnected" in r[2] else None)(
            http_get(port, "/healthz")), 15, what="503 while the platform is down")
        h = json.loads(body)
        self.assertEqual(h["platform"], "disconnected")
        self.assertEqual(h["status"], "unhealthy")
        self.assertEqual(metrics()["tbgw_platform_connected"], 0)
        self.assertEqual(gw.stop(), 0)

    def test_healthy(self):
        port = free_port()
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)])
        with_metrics(gw, port)
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        st, ctype, body = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(http_get(port, "/healthz")), 10)
        self.assertEqual(json.loads(body), {"platform": "connected", "connectors": {"Test Connector": "CONNECTED"},
                                            "status": "ok"})
        self.assertTrue(mapped(gw, "tbgw_http.so"))  # the HTTP module is loaded when metrics are on
        self.assertEqual(gw.stop(), 0)

    def test_off_by_default(self):
        port = free_port()
        gw = self.gateway(connectors=[test_connector(messages=1)])
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        self.assertNotIn("metrics on", gw.log())
        # the HTTP module and its libraries are not even mapped
        self.assertFalse(mapped(gw, "tbgw_http.so"))
        self.assertFalse(mapped(gw, "libmicrohttpd"))
        with self.assertRaises(OSError):
            urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2)
        self.assertEqual(gw.stop(), 0)

    def test_module_missing_is_a_clear_error_not_a_failure(self):
        # a binary copied away from its modules/ folder: metrics are off with a message naming the
        # module and the places tried; everything else runs
        bindir = os.path.join(self.workdir, "bin")
        os.makedirs(bindir)
        shutil.copy(TBGW_BIN, bindir)
        port = free_port()
        gw = self.gateway(connectors=[test_connector(messages=3, intervalMs=50)])
        with_metrics(gw, port)
        gw.start(env={"TBGW_MODULE_PATH": os.path.join(self.workdir, "nothing")},
                 binary=os.path.join(bindir, os.path.basename(TBGW_BIN)))
        gw.wait_log("metrics: cannot load module tbgw_http: tried %s/nothing/tbgw_http.so (absent), %s/modules/tbgw_http.so (absent)"
                    % (self.workdir, bindir))
        wait_for(lambda: len(self.platform.telemetry("Test Device 1")) >= 3, 15)
        self.assertEqual(gw.stop(), 0)


class GatewayRpc(GatewayTestCase):
    def rpc(self, rid, method, params=None, timeout=10):
        self.platform.publish("v1/devices/me/rpc/request/%d" % rid, {"method": method, "params": params})
        return wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/%d" % rid), timeout)[0][1]

    def test_reboot_refused_by_default(self):
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)])
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        r = self.rpc(1, "gateway_reboot", 0)
        self.assertEqual(r["code"], 403)
        self.assertIn("thingsboard.allowReboot", r["error"])
        self.assertEqual(gw.stop(), 0)

    def test_reboot_opt_in_runs_the_command_after_the_delay(self):
        marker = os.path.join(self.workdir, "rebooted")
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)],
                          thingsboard={"allowReboot": True, "rebootCommand": "touch '%s'" % marker})
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        t0 = time.time()
        self.assertEqual(self.rpc(1, "gateway_reboot", 2), {"success": True})
        wait_for(lambda: os.path.exists(marker), 10, what="the reboot command ran")
        self.assertGreaterEqual(time.time() - t0, 1.8)
        self.assertEqual(gw.stop(), 0)

    def test_shell_off_unless_enabled(self):
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)])
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        r = self.rpc(1, "sendCommand", {"command": "touch should-not-exist"})
        self.assertEqual(r["code"], 403)
        self.assertIn("remoteShell", r["error"])
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "should-not-exist")))
        self.assertEqual(gw.stop(), 0)

    def test_shell_commands(self):
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)],
                          thingsboard={"remoteShell": True})
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        info = self.rpc(1, "getTermInfo")
        self.assertEqual(info["platform"], "Linux")
        self.assertEqual(os.path.realpath(info["cwd"]), os.path.realpath(self.workdir))
        self.assertEqual(self.rpc(2, "sendCommand", {"command": "cd config"}), {"ok": True})
        self.assertEqual(self.rpc(3, "getCommandStatus")["cwd"], os.path.realpath(gw.cfgdir))
        self.assertEqual(self.rpc(4, "sendCommand", {"command": "ls; echo err >&2"}), {"ok": True})
        out, rid = "", 5
        while True:
            st = self.rpc(rid, "getCommandStatus")
            rid += 1
            out += st["data"][0]["stdout"]
            if st["done"]:
                break
        self.assertIn("tb_gateway.json", out)
        self.assertIn("err", out)
        # bounded output: a big output arrives in chunks of at most 4096 bytes
        self.assertEqual(self.rpc(rid, "sendCommand", {"command": "head -c 20000 /dev/zero | tr '\\\\0' x"}),
                         {"ok": True})
        rid += 1
        total = 0
        for _ in range(50):
            st = self.rpc(rid, "getCommandStatus")
            rid += 1
            self.assertLessEqual(len(st["data"][0]["stdout"]), 4096)
            total += len(st["data"][0]["stdout"])
            if st["done"]:
                break
        self.assertEqual(total, 20000)
        # a long command can be terminated
        self.assertEqual(self.rpc(rid, "sendCommand", {"command": "sleep 30"}), {"ok": True})
        self.assertEqual(self.rpc(rid + 1, "terminateCommand"), {"ok": True})
        self.assertEqual(self.rpc(rid + 2, "terminateCommand"),
                         {"ok": False, "error": "Process for termination not found."})
        # "cd" moved the shell's folder only, never the gateway's working directory
        self.assertEqual(os.path.realpath(self.rpc(rid + 3, "getTermInfo")["cwd"]), os.path.realpath(gw.cfgdir))
        self.assertEqual(os.readlink("/proc/%d/cwd" % gw.proc.pid), os.path.realpath(self.workdir))
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
