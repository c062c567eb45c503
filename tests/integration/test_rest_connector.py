"""REST connector end to end: curl and Python's http.client send requests to tbgw's HTTP server
(the reference rest.json with only its ports changed, then a configuration with basic auth, TLS,
responseExpected and limits); the platform broker records what arrives; attribute updates and RPC
reach a device HTTP API (Python http.server) as outgoing requests."""

import http.client
import json
import os
import socket
import subprocess
import threading
import time

from httpapi import Api, json_reply, make_cert
from tbgwtest import BUILD_DIR, SLOW, SOURCE_DIR, GatewayTestCase, free_port, wait_for, wait_port, main

REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "rest.json")
PLUGIN = os.path.join(BUILD_DIR, "plugins", "http_custom_converters.so")


def request(port, method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers = dict(headers or {}, **{"Content-Type": "application/json"})
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def curl(*args):
    p = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"] + list(args),
                       capture_output=True, text=True, timeout=20)
    body, _, code = p.stdout.rpartition("\n")
    return int(code or 0), body


def attrs(platform, device):
    a = dict(platform.attributes(device).get(device, {}))
    a.pop("connectorType", None)
    a.pop("connectorName", None)
    return a


def telemetry(platform, device):
    out = {}
    for _, _, v in platform.telemetry(device):
        out.update(v)
    return out


class AttributeResponder:
    """Answers the gateway's attribute requests like ThingsBoard."""

    def __init__(self, platform, values):
        self.platform, self.values, self.stop = platform, values, False
        self.seen = 0
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stop:
            reqs = self.platform.all("v1/gateway/attributes/request")
            for _, p in reqs[self.seen:]:
                vals = {k: self.values[k] for k in p["keys"] if k in self.values}
                self.platform.publish("v1/gateway/attributes/response",
                                      {"id": p["id"], "device": p["device"], "values": vals})
            self.seen = len(reqs)
            time.sleep(0.02)


class RestConnectorTest(GatewayTestCase):
    def start_rest(self, conf):
        gw = self.gateway(connectors=[{"type": "rest", "name": "REST Connector", "config": conf}])
        ext = os.path.join(gw.cfgdir, "extensions", "rest")
        os.makedirs(ext, exist_ok=True)
        os.symlink(PLUGIN, os.path.join(ext, "CustomRestUplinkConverter.so"))
        gw.start()
        wait_port(int(conf["server"]["port"]), 10)
        return gw

    def test_reference_config(self):
        echo = lambda h, body: (200, "application/json", {"echo": h.path})
        api = Api({("POST", "/"): json_reply({}), ("GET", "/*"): echo}).start()
        self.extra.append(api)
        port = free_port()
        with open(REFERENCE) as f:
            text = f.read()
        # ports only: the server, the device API (5001), the server itself (5000), a dead port (5002)
        dead = free_port()  # nothing listens there
        text = text.replace("127.0.0.1:5001", "127.0.0.1:%d" % api.port).replace("127.0.0.1:5000",
                                                                               "127.0.0.1:%d" % port)
        text = text.replace("127.0.0.1:5002", "127.0.0.1:%d" % dead)
        conf = json.loads(text)
        conf["server"]["port"] = str(port)
        gw = self.start_rest(conf)
        responder = AttributeResponder(self.platform, {"a1": 11, "a2": "two"})
        self.addCleanup(setattr, responder, "stop", True)

        # mapping[0] /my_devices: names and values from the request; values go up as strings;
        # query parameters are applied after the body (they win)
        body = {"sensorName": "SN-1", "sensorType": "Thermo", "sensorModel": "M1", "certificateNumber": "C-1",
                "temp": 25.5, "hum": 40}
        self.assertEqual(request(port, "POST", "/my_devices", body)[0], 200)
        wait_for(lambda: attrs(self.platform, "SN-1").get("model"), 10, what="my_devices")
        self.assertEqual(attrs(self.platform, "SN-1"), {"model": "M1", "certificateNumber": "C-1"})
        wait_for(lambda: telemetry(self.platform, "SN-1").get("humidity"), 10, what="my_devices telemetry")
        self.assertEqual(telemetry(self.platform, "SN-1"), {"temperature": "25.5", "humidity": "40"})
        self.assertIn({"device": "SN-1", "type": "Thermo"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        self.assertEqual(request(port, "POST", "/my_devices?temp=30", body)[0], 200)
        wait_for(lambda: ("SN-1", "30") in [(d, v.get("temperature")) for d, _, v in self.platform.telemetry()], 10,
                 what="query wins")
        self.assertEqual(request(port, "GET", "/my_devices?temp=1")[0], 405)  # POST only
        # mapping[1] /anon1: GET with query, POST; constant device; 415 without data; 405 for PUT
        self.assertEqual(curl("http://127.0.0.1:%d/anon1?temp=21&hum=50" % port)[0], 200)
        wait_for(lambda: telemetry(self.platform, "Device 2").get("temperature"), 10, what="anon1")
        self.assertEqual(telemetry(self.platform, "Device 2"), {"temperature": "21", "humidity": "50"})
        self.assertEqual(attrs(self.platform, "Device 2"), {"model": "Model2"})
        self.assertEqual(curl("http://127.0.0.1:%d/anon1" % port)[0], 415)
        self.assertEqual(request(port, "PUT", "/anon1", {"temp": 1})[0], 405)
        self.assertEqual(request(port, "POST", "/nowhere", {"temp": 1})[0], 404)
        # mapping[2] /anon2: the custom converter decodes the body's bytes (a big-endian float)
        self.assertEqual(request(port, "POST", "/anon2", "41c80000", {"Content-Type": "text/plain"})[0], 200)
        wait_for(lambda: telemetry(self.platform, "SuperAnonDevice"), 10, what="anon2")
        self.assertEqual(telemetry(self.platform, "SuperAnonDevice"), {"Totaliser": 25.0})
        # attributeRequests[0]: the platform's answer re-serialized
        st, data = request(port, "POST", "/sharedAttributes", {"deviceName": "SN-1", "attribute": "a1",
                                                                "attribute1": "a2"})
        self.assertEqual(st, 200, data)
        ans = json.loads(data)
        self.assertEqual((ans["device"], ans["values"]), ("SN-1", {"a1": 11, "a2": "two"}))
        req = [p for _, p in self.platform.all("v1/gateway/attributes/request")][0]
        self.assertEqual((req["keys"], req["device"], req["client"]), (["a1", "a2"], "SN-1", False))
        # attributeUpdates[0]: SN.* devices POST the rendered template as JSON
        self.platform.publish("v1/gateway/attributes", {"device": "SN-1", "data": {"led": "on"}})
        up = wait_for(lambda: api.got("POST", "/"), 10, what="attribute update")
        self.assertEqual(json.loads(up[0]["body"]), {"deviceName": "SN-1", "led": "on"})
        self.assertEqual(up[0]["headers"]["Content-Type"], "application/json")
        # attributeUpdates[1]: CERT.* with a client certificate that does not exist: tried, logged
        self.assertEqual(request(port, "POST", "/my_devices", dict(body, sensorName="CERT-1"))[0], 200)
        wait_for(lambda: attrs(self.platform, "CERT-1"), 10, what="CERT-1 known")
        self.platform.publish("v1/gateway/attributes", {"device": "CERT-1", "data": {"led": "on"}})
        gw.wait_log("attribute update led of CERT-1: request to", 10)
        self.assertIn("http://127.0.0.1:%d/ failed after 3 tries" % dead, gw.log())  # tries: 3, with backoff
        # serverSideRpc[0] echo: GET to the device API, reply {"result": <its JSON>}
        self.platform.publish("v1/gateway/rpc", {"device": "SN-1", "data": {"id": 3, "method": "echo",
                                                                            "params": {"a": 1}}})
        rep = wait_for(lambda: [p for _, p in self.platform.all("v1/gateway/rpc") if p.get("id") == 3], 10, what="echo")
        self.assertEqual(rep[0]["data"], {"result": {"echo": "/SN-1"}})
        # serverSideRpc[1] post_attributes: POSTs to the connector's own /my_devices
        self.assertEqual(request(port, "POST", "/my_devices", dict(body, sensorName="SN-2"))[0], 200)
        wait_for(lambda: attrs(self.platform, "SN-2"), 10, what="SN-2 known")
        self.platform.publish("v1/gateway/rpc", {"device": "SN-2", "data": {"id": 4, "method": "post_attributes",
                                                                            "params": {"sensorModel": "M9",
                                                                                       "certificateNumber": "C9",
                                                                                       "temp": 1, "hum": 2}}})
        wait_for(lambda: attrs(self.platform, "SN-2").get("model") == "M9", 10, what="post_attributes loop")
        rep = wait_for(lambda: [p for _, p in self.platform.all("v1/gateway/rpc") if p.get("id") == 4], 10,
                       what="post_attributes reply")
        self.assertEqual(rep[0]["data"], {"result": ""})
        # serverSideRpc[2] no-reply: a relative URL cannot be requested: an error reply
        self.platform.publish("v1/gateway/rpc", {"device": "SN-1", "data": {"id": 5, "method": "no-reply", "params": {"p": 1}}})
        rep = wait_for(lambda: [p for _, p in self.platform.all("v1/gateway/rpc") if p.get("id") == 5], 10, what="no-reply")
        self.assertIn("not an http(s) URL", json.loads(rep[0]["data"])["error"])
        # reserved get
        self.platform.publish("v1/gateway/rpc", {"device": "SN-1", "data": {
            "id": 6, "method": "get", "params": "requestUrlExpression=http://127.0.0.1:%d/value;" % api.port}})
        rep = wait_for(lambda: [p for _, p in self.platform.all("v1/gateway/rpc") if p.get("id") == 6], 10, what="get")
        self.assertEqual(rep[0]["data"], {"result": {"echo": "/value"}})
        self.assertEqual(gw.stop(), 0)

    def test_security_tls_response_expected_and_limits(self):
        port = free_port()
        conv = {"type": "json", "deviceInfo": {"deviceNameExpressionSource": "request", "deviceNameExpression": "${name}"},
                "attributes": [], "timeseries": [{"type": "int", "key": "v", "value": "${v}"}]}
        conf = {"server": {"host": "127.0.0.1", "port": port, "SSL": True, "maxBodySize": 1000,
                           "connectionTimeout": 1},
                "mapping": [
                    {"endpoint": "/basic/{name}", "HTTPMethods": ["POST", "GET"],
                     "security": {"type": "basic", "username": "u", "password": "p"},
                     "response": {"successResponse": "OK", "unsuccessfulResponse": "NO"}, "converter": conv},
                    {"endpoint": "/wait", "HTTPMethods": ["POST"],
                     "response": {"responseExpected": True, "timeout": 1.5, "responseAttribute": "answer",
                                  "unsuccessfulResponse": "too late"}, "converter": conv},
                    {"endpoint": "/any", "HTTPMethods": ["POST"], "converter": conv},
                    {"endpoint": "/custom", "HTTPMethods": ["POST"],
                     "converter": {"type": "custom", "extension": "NotInstalled"}}]}
        gw = self.start_rest(conf)
        url = "https://127.0.0.1:%d" % port
        # TLS with the self-signed certificate made at start; basic auth right and wrong
        code, body = curl("-k", "-u", "u:p", "-d", '{"v": 5}', "-H", "Content-Type: application/json", url + "/basic/B-1")
        self.assertEqual((code, body), (200, "OK"))
        self.assertEqual(curl("-k", "-u", "u:x", "-d", '{"v": 5}', url + "/basic/B-1"), (401, "NO"))
        self.assertEqual(curl("-k", "-d", '{"v": 5}', url + "/basic/B-1"), (401, "NO"))
        self.assertEqual(curl("-u", "u:p", "--cacert", "/dev/null", "-d", '{"v": 5}', url + "/basic/B-1")[0], 0)
        wait_for(lambda: telemetry(self.platform, "B-1"), 10, what="basic over TLS")
        self.assertEqual(telemetry(self.platform, "B-1"), {"v": "5"})
        # form and text bodies, a path parameter as the device name, GET with the query
        self.assertEqual(curl("-k", "-u", "u:p", "-d", "v=6", url + "/basic/B-2")[0], 200)
        self.assertEqual(curl("-k", "-u", "u:p", "-F", "v=7", url + "/basic/B-3")[0], 200)
        self.assertEqual(curl("-k", "-u", "u:p", url + "/basic/B-4?v=8")[0], 200)
        for dev, v in (("B-2", "6"), ("B-3", "7"), ("B-4", "8")):
            wait_for(lambda: telemetry(self.platform, dev).get("v") == v, 10, what=dev)
        # malformed JSON: 400 naming the position; a body over maxBodySize: 413
        code, body = curl("-k", "-d", '{"v": ', "-H", "Content-Type: application/json", url + "/any")
        self.assertEqual(code, 400)
        self.assertIn("line 1 column", body)
        self.assertEqual(curl("-k", "-d", json.dumps({"name": "x", "pad": "y" * 2000}), url + "/any")[0], 413)
        # ... also without Content-Length (chunked), where the limit is found while reading
        big = json.dumps({"name": "x", "pad": "y" * 2000})
        self.assertEqual(curl("-k", "-H", "Transfer-Encoding: chunked", "-d", big, url + "/any")[0], 413)
        self.assertEqual(curl("-k", "-H", "Transfer-Encoding: chunked", "-d", '{"name": "C-1", "v": 3}', url + "/any")[0],
                         200)
        wait_for(lambda: telemetry(self.platform, "C-1").get("v") == "3", 10, what="chunked body")
        # an endpoint whose custom converter is not installed: logged at start, its requests get 500
        self.assertEqual(curl("-k", "-d", "x=1", url + "/custom")[0], 500)
        self.assertIn("NotInstalled", gw.log())
        # responseExpected: the answer is the shared attribute named by responseAttribute ...
        res = {}
        t = threading.Thread(target=lambda: res.update(a=curl("-k", "-d", '{"name": "W-1", "v": 1}', url + "/wait")))
        t.start()
        wait_for(lambda: attrs(self.platform, "W-1").get("responseExpected") is True, 10, what="responseExpected")
        self.platform.publish("v1/gateway/attributes", {"device": "W-1", "data": {"answer": "done"}})
        t.join(10)
        self.assertEqual(res["a"], (200, "done"))
        # ... or 408 with unsuccessfulResponse after the timeout
        t0 = time.monotonic()
        self.assertEqual(curl("-k", "-d", '{"name": "W-2", "v": 1}', url + "/wait"), (408, "too late"))
        self.assertGreater(time.monotonic() - t0, 1.3)
        # on time: the connector thread sleeps until the parked request's deadline (it was woken up
        # when the request was parked)
        self.assertLess(time.monotonic() - t0, 1.5 + 0.5 * SLOW)
        # a slow client is dropped after connectionTimeout without holding other requests
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"\x16\x03\x01")  # a TLS record header, then nothing
        self.assertEqual(curl("-k", "-u", "u:p", url + "/basic/B-5?v=9")[0], 200)
        s.settimeout(5)
        while s.recv(100):  # a TLS alert at most, then closed by the server
            pass
        s.close()
        # refusals are counted and logged once per client per minute
        log = gw.log()
        self.assertEqual(log.count("|WARNING| [connector.REST Connector] refused a request from 127.0.0.1"), 1, log[-3000:])
        self.assertEqual(gw.stop(), 0)

    def test_tls_with_certificate_files(self):
        cert, key = make_cert(self.workdir, "server")
        port = free_port()
        conv = {"type": "json", "deviceInfo": {"deviceNameExpressionSource": "constant", "deviceNameExpression": "T-1"},
                "timeseries": [{"type": "int", "key": "v", "value": "${v}"}]}
        conf = {"server": {"host": "127.0.0.1", "port": port, "SSL": True,
                           "security": {"cert": cert, "key": os.path.relpath(key, os.path.join(self.workdir, "config"))}},
                "mapping": [{"endpoint": "/t", "HTTPMethods": ["POST"], "converter": conv}]}
        gw = self.start_rest(conf)
        # the configured certificate is the one served: curl verifies it against itself
        self.assertEqual(curl("--cacert", cert, "-d", "v=4", "https://127.0.0.1:%d/t" % port)[0], 200)
        wait_for(lambda: telemetry(self.platform, "T-1"), 10, what="TLS with files")
        self.assertNotIn("self-signed", gw.log())
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
