"""Request connector end to end: a device HTTP API (Python http.server on loopback) polled by tbgw with
the reference request.json (only the host port changed), the platform broker recording what arrives;
attribute updates and RPC reach the API as HTTP requests. A second configuration pins the schedule:
an endpoint that never answers does not delay another endpoint's polls."""

import json
import os
import re
import statistics
import subprocess
import time

from httpapi import Api, json_reply, make_cert
from tbgwtest import BUILD_DIR, SOURCE_DIR, TBGW_BIN, GatewayTestCase, wait_for, main

REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "request.json")
PLUGIN = os.path.join(BUILD_DIR, "plugins", "http_custom_converters.so")

# get_info bytes: float 25.0 | 0x0064 | 0 | 0x0fa0 | 0 | 0x03e8 | 0 | 0x93
INFO_HEX = "41c80000" "0064" "0000" "0fa0" "0000" "03e8" "00" "93"


def attrs(platform, device):
    a = dict(platform.attributes(device).get(device, {}))
    a.pop("connectorType", None)
    a.pop("connectorName", None)
    return a


def rpc_replies(platform, rid):
    return [p for _, p in platform.all("v1/gateway/rpc") if p.get("id") == rid]


class RequestConnectorTest(GatewayTestCase):
    def start_gateway(self, conf):
        gw = self.gateway(connectors=[{"type": "request", "name": "Request Connector", "config": conf}])
        ext = os.path.join(gw.cfgdir, "extensions", "request")
        os.makedirs(ext, exist_ok=True)
        link = os.path.join(ext, "CustomRequestUplinkConverter.so")
        if not os.path.lexists(link):
            os.symlink(PLUGIN, link)
        gw.start()
        return gw

    def test_reference_config(self):
        echo = lambda h, body: (200, "application/json", {"temp": 25.5, "other": 1})
        routes = {
            ("GET", "/getdata"): json_reply({"serial": "SN-001", "Developer": "Thingsboard", "hum": 45.5}),
            ("GET", "/get_info"): json_reply({"data": {"value": INFO_HEX}}),
            ("GET", "/devices"): json_reply([
                {"id": 1, "type": "UMG", "serialNr": "S-1", "name": "meter one", "description": "hall"},
                {"id": 2, "type": "UMG", "serialNr": "S-2", "name": "meter two", "description": "roof"}]),
            # the cumPwr sub-request: /devices/<id>/hist/values/ActiveEnergy/SUM13/3600?...
            ("GET", "/devices/*"): lambda h, b: (200, "application/json", {
                "values": [{"avg": 1500 if h.path.startswith("/devices/1/") else 12345}]}),
            ("POST", "/sensor/SD8500/send_data"): json_reply({}),
            ("GET", "/sensor/SD8500/request/echo/*"): echo,
            ("POST", "/sensor/SD8500/request/no-reply/*"): json_reply("done"),
            ("GET", "/sensor/value"): lambda h, b: (200, "text/plain", "42"),
            ("POST", "/sensor/value"): json_reply({"ok": True}),
        }
        api = Api(routes, auth=("user", "password")).start()
        self.extra.append(api)
        with open(REFERENCE) as f:
            conf = json.load(f)
        conf["host"] = "http://127.0.0.1:%d" % api.port
        # a processingFunction beyond one `return <expression>` is refused with its position; the
        # reference entry next to it (cumPwr) and the rest of the mapping run
        conf["mapping"][2]["subRequests"]["loop"] = {
            "url": "/${id}/loop", "processingFunction": "def f(data, key):\n    for x in data:\n        pass"}
        gw = self.start_gateway(conf)

        # mapping[0] getdata: templates, a constant device name and type, GET with the content as body
        wait_for(lambda: attrs(self.platform, "SD8500").get("serialNumber"), 10, what="getdata")
        self.assertEqual(attrs(self.platform, "SD8500")["serialNumber"], "SN-001")
        tel = {}
        for _, _, v in self.platform.telemetry("SD8500"):
            tel.update(v)
        wait_for(lambda: "Totaliser" in {k for _, _, v in self.platform.telemetry("SD8500") for k in v}, 10,
                 what="get_info")
        for _, _, v in self.platform.telemetry("SD8500"):
            tel.update(v)
        self.assertEqual(tel["Maintainer"], "Thingsboard")
        self.assertEqual(tel["combine"], "Thingsboard:45.5")
        req = api.got("GET", "/getdata")[0]
        self.assertEqual(json.loads(req["body"]), {"name": "morpheus", "job": "leader"})
        self.assertEqual(req["headers"].get("ACCEPT"), "application/json")
        # mapping[1] get_info: the custom converter decodes the bytes
        self.assertEqual(tel["Totaliser"], 25.0)
        self.assertEqual(tel["Flow"], 1.0)
        self.assertEqual(tel["Temperature"], 40.0)
        self.assertEqual(tel["Pressure"], 10.0)
        self.assertEqual((tel["deviceStatus"], tel["OUT2"], tel["OUT1"]), (9, 1, 1))
        # mapping[2] /devices: one device per list element, typed values; the cumPwr sub-request's
        # processingFunction (the reference's own source) runs on each element's answer
        wait_for(lambda: attrs(self.platform, "2-UMG"), 10, what="devices list")
        self.assertEqual(attrs(self.platform, "1-UMG"),
                         {"id": 1, "type": "UMG", "serialNr": "S-1", "name": "meter one", "description": "hall"})
        cum = lambda dev: [v["cumPwr"] for _, _, v in self.platform.telemetry(dev) if "cumPwr" in v]
        self.assertEqual(wait_for(lambda: cum("1-UMG"), 10, what="cumPwr of 1-UMG")[0], 1.5)
        self.assertEqual(wait_for(lambda: cum("2-UMG"), 10, what="cumPwr of 2-UMG")[0], 12.345)
        sub = api.got("GET", "/devices/1/hist/values/ActiveEnergy/SUM13/3600")
        self.assertTrue(sub and sub[0]["path"].endswith("?start=RELATIVE_-1HOUR&end=RELATIVE_-1HOUR&online=false"
                                                        "&aggregate=false"), sub)
        self.assertEqual(api.got("GET", "/devices/1/loop"), [])
        self.assertIn("mapping[2].subRequests.loop.processingFunction: only a function whose body is one "
                      "`return <expression>` is supported", gw.log())
        # the configuration check names it with its position, as a warning
        chk = subprocess.run([TBGW_BIN, "--check-config", "-c", gw.config_path], capture_output=True, text=True,
                             timeout=30)
        out = chk.stdout + chk.stderr
        self.assertEqual(chk.returncode, 0, out)
        self.assertRegex(out, r"Request_Connector\.json:\d+:\d+: mapping\[2\]\.subRequests\.loop\.processingFunction: "
                              r"only a function whose body is one `return <expression>` is supported")
        self.assertIn("0 error(s), 1 warning(s)", out)
        # the position is that of `for` inside the JSON string in the connector's file
        m = re.search(r"(\S+Request_Connector\.json):(\d+):(\d+): mapping\[2\]\.subRequests\.loop", out)
        with open(m.group(1) if os.path.isabs(m.group(1)) else os.path.join(gw.cfgdir, m.group(1))) as f:
            line = f.read().split("\n")[int(m.group(2)) - 1]
        self.assertEqual(line[int(m.group(3)) - 1:].split("\\n")[0], "for x in data:")
        connects = [p for _, p in self.platform.all("v1/gateway/connect")]
        self.assertIn({"device": "SD8500", "type": "SD"}, connects)
        self.assertIn({"device": "1-UMG", "type": "GridVis"}, connects)
        # basic auth on every request
        self.assertFalse([r for r in api.got() if not r["headers"].get("Authorization", "").startswith("Basic ")])

        # attributeUpdates[0]: POST sensor/${deviceName}/${attributeKey} with the rendered body
        self.platform.publish("v1/gateway/attributes", {"device": "SD8500", "data": {"send_data": "on \"now\""}})
        up = wait_for(lambda: api.got("POST", "/sensor/SD8500/send_data"), 10, what="attribute update")
        self.assertEqual(json.loads(up[0]["body"]), {"send_data": "on \"now\""})
        self.assertEqual(up[0]["headers"]["Content-Type"], "application/json")
        # an attribute the filter does not take is not sent
        self.platform.publish("v1/gateway/attributes", {"device": "SD8500", "data": {"other": 1}})
        # serverSideRpc[0] echo: GET, reply from responseValueExpression
        self.platform.publish("v1/gateway/rpc", {"device": "SD8500", "data": {"id": 7, "method": "echo",
                                                                              "params": {"x": 1}}})
        rep = wait_for(lambda: rpc_replies(self.platform, 7), 10, what="rpc echo")
        self.assertEqual(rep[0]["data"], {"result": {"value": "25.5"}})
        self.assertEqual(len(api.got("GET", "/sensor/SD8500/request/echo/7")), 1)
        # serverSideRpc[1] no-reply: POST with ${params} as the body
        self.platform.publish("v1/gateway/rpc", {"device": "SD8500", "data": {"id": 8, "method": "no-reply",
                                                                              "params": {"a": 1, "b": "x"}}})
        rep = wait_for(lambda: rpc_replies(self.platform, 8), 10, what="rpc no-reply")
        body = api.got("POST", "/sensor/SD8500/request/no-reply/8")[0]["body"]
        self.assertEqual(json.loads(body), {"a": 1, "b": "x"})
        self.assertEqual(rep[0]["data"], {"result": {"value": "done"}})
        # reserved get / set
        self.platform.publish("v1/gateway/rpc", {"device": "SD8500", "data": {
            "id": 9, "method": "get", "params": "requestUrlExpression=sensor/value;"}})
        rep = wait_for(lambda: rpc_replies(self.platform, 9), 10, what="rpc get")
        self.assertEqual(rep[0]["data"], {"result": {"value": "42"}})
        self.platform.publish("v1/gateway/rpc", {"device": "SD8500", "data": {
            "id": 10, "method": "set", "params": "requestUrlExpression=sensor/value;httpMethod=POST;value=17;"}})
        wait_for(lambda: rpc_replies(self.platform, 10), 10, what="rpc set")
        self.assertEqual(api.got("POST", "/sensor/value")[0]["body"], b"17")
        # a method no entry takes, a malformed reserved call
        self.platform.publish("v1/gateway/rpc", {"device": "SD8500", "data": {"id": 11, "method": "get",
                                                                              "params": "nonsense"}})
        rep = wait_for(lambda: rpc_replies(self.platform, 11), 10, what="rpc bad get")
        self.assertIn("does not match with the schema", json.loads(rep[0]["data"])["error"])
        self.assertEqual(api.got("POST", "/sensor/SD8500/other"), [])
        self.assertEqual(gw.stop(), 0)

    def test_schedule_dead_endpoint_unpack_and_subrequests(self):
        routes = {
            ("GET", "/fast"): json_reply({"n": 1}),
            ("GET", "/hang"): lambda h, b: None,
            ("GET", "/down"): lambda h, b: (503, "text/plain", "busy"),
            ("GET", "/list"): json_reply({"result": {"devices": [{"id": "a", "v": 1}, {"id": "b", "v": 2}]}}),
            ("GET", "/list/a/extra"): json_reply({"temp": 21.5}),
            ("GET", "/list/b/extra"): json_reply({"temp": 22.5}),
        }
        api = Api(routes).start()
        self.extra.append(api)
        conv = lambda name, tel: {"type": "json", "deviceNameJsonExpression": name, "telemetry": tel}
        conf = {"host": "127.0.0.1:%d" % api.port, "security": {"type": "anonymous"}, "mapping": [
            {"url": "fast", "scanPeriod": 0.2, "timeout": 1,
             "converter": conv("fast", [{"key": "n", "type": "int", "value": "${n}"}])},
            {"url": "hang", "scanPeriod": 0.2, "timeout": 0.3,
             "converter": conv("hang", [{"key": "n", "type": "int", "value": "${n}"}])},
            {"url": "down", "scanPeriod": 0.2, "timeout": 0.3,
             "converter": conv("down", [{"key": "n", "type": "int", "value": "${n}"}])},
            {"url": "/list", "scanPeriod": 60, "dataUnpackExpression": "${result.devices}",
             "subRequests": {"temp": {"url": "/${id}/extra"}},
             "converter": conv("dev-${id}", [{"key": "v", "type": "int", "value": "${v}"},
                                             {"key": "temp", "type": "double", "value": "${temp}"}])}]}
        gw = self.start_gateway(conf)
        wait_for(lambda: len(api.got("GET", "/fast")) >= 2, 10, what="fast polls")
        time.sleep(3)
        fast = [r["t"] for r in api.got("GET", "/fast")]
        gaps = [b - a for a, b in zip(fast, fast[1:])]
        self.assertGreaterEqual(len(fast), 12)
        # a poll blocked behind the dead endpoint would wait its 0.3 s timeout: the median would show it
        self.assertLess(abs(statistics.median(gaps) - 0.2), 0.04, gaps)
        self.assertLess(max(gaps), 0.45, gaps)
        # the dead endpoint is retried (timeout 0.3 s, then backoff), never more often than its period
        hang = [r["t"] for r in api.got("GET", "/hang")]
        self.assertGreaterEqual(len(hang), 2)
        self.assertGreaterEqual(min(b - a for a, b in zip(hang, hang[1:])), 0.19)
        # a 503 is retried, but never later than the regular schedule
        self.assertLessEqual(abs(len(api.got("GET", "/down")) - len(fast)), 2)
        self.assertIn("request to http://127.0.0.1:%d/hang failed" % api.port, gw.log())
        self.assertIn("HTTP status 503", gw.log())
        # dataUnpackExpression + sub-requests joined to the mapping's URL, merged into each element
        tel = {d: v for d, _, v in self.platform.telemetry() if d.startswith("dev-")}
        self.assertEqual(tel, {"dev-a": {"v": 1, "temp": 21.5}, "dev-b": {"v": 2, "temp": 22.5}})
        wait_for(lambda: len(self.platform.telemetry("fast")) >= len(fast), 5, what="every fast poll converted")
        t0 = time.monotonic()
        self.assertEqual(gw.stop(), 0)  # a request in flight does not hold the shutdown
        self.assertLess(time.monotonic() - t0, 3)

    def test_https_and_ssl_verify(self):
        cert, key = make_cert(self.workdir)
        api = Api({("GET", "/v"): json_reply({"v": 3})}, tls=(cert, key)).start()
        self.extra.append(api)
        conv = lambda name: {"type": "json", "deviceNameJsonExpression": name,
                             "telemetry": [{"key": "v", "type": "int", "value": "${v}"}]}
        conf = {"host": "https://127.0.0.1:%d" % api.port, "SSLVerify": False, "mapping": [
            {"url": "v", "scanPeriod": 0.5, "converter": conv("tls-any")}]}
        gw = self.start_gateway(conf)
        wait_for(lambda: self.platform.telemetry("tls-any"), 10, what="https without verification")
        self.assertEqual(self.platform.telemetry("tls-any")[0][2], {"v": 3})
        self.assertEqual(gw.stop(), 0)
        # SSLVerify: a self-signed certificate nobody vouches for is refused
        conf["SSLVerify"] = True
        conf["mapping"][0]["converter"] = conv("tls-verified")
        gw = self.start_gateway(conf)
        gw.wait_log("request to https://127.0.0.1:%d/v failed" % api.port, 10)
        self.assertIn("certificate", gw.log().split("request to https://127.0.0.1:%d/v failed" % api.port)[1][:300])
        self.assertEqual(self.platform.telemetry("tls-verified"), [])
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
