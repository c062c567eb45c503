"""The Socket connector against real clients (Python sockets and socat) over TCP and UDP: the
reference example configuration unchanged (only its port), byte slices and encodings, attribute
requests answered with json.dumps values, attribute updates and RPC written into the open
connection and to a new connection, the reserved `set`, many concurrent clients and a garbage flood."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tbgwtest import SOURCE_DIR, GatewayTestCase, free_port, main, wait_for, wait_port  # noqa: E402

REF = os.path.join(SOURCE_DIR, "tests", "data", "reference")


def ref_config(name, port, udp=False):
    with open(os.path.join(REF, name)) as f:
        cfg = json.load(f)
    sock = cfg["socket"] if "socket" in cfg else cfg
    sock["port"] = port
    if udp:
        sock["type"] = "UDP"
    return cfg


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recv_exact(conn, n, timeout=10):
    conn.settimeout(timeout)
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


class Listener:
    """A TCP server on a fixed port collecting what each accepted connection sends."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.got = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            c.settimeout(5)
            data = b""
            try:
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            c.close()
            self.got.append(data)

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


class SocketIntegration(GatewayTestCase):
    def start_gateway(self, cfg):
        gw = self.gateway(connectors=[{"type": "socket", "name": "Socket", "config": cfg}]).start()
        return gw

    def values(self, device, key):
        return [v[key] for _, _, v in self.platform.telemetry(device) if key in v]

    def rpc(self, device, rid, method, params):
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                             "params": params}})
        msgs = wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 10,
                        what="rpc reply %d" % rid)
        return msgs[0]["data"]

    def test_reference_config_tcp(self):
        port = free_port()
        gw = self.start_gateway(ref_config("socket.json", port))
        wait_port(port)
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"hello world")
        wait_for(lambda: self.values("Device Example", "temp"), 10, what="telemetry")
        t = self.platform.telemetry("Device Example")[0][2]
        self.assertEqual(t, {"temp": "hello world", "hum": "he"})
        attrs = wait_for(lambda: self.platform.attributes("Device Example").get("Device Example"), 10,
                         what="attributes")
        self.assertEqual({k: v for k, v in attrs.items() if not k.startswith("connector")},
                         {"name": "hello world", "num": "ll"})
        # an attribute request is answered on the open connection with json.dumps(value)
        c.sendall(b"atrsharedName")
        req = wait_for(lambda: self.platform.all("v1/gateway/attributes/request"), 10, what="attribute request")[0][1]
        self.assertEqual({k: v for k, v in req.items() if k != "id"},
                         {"device": "Device Example", "keys": ["sharedName"], "client": False})
        self.platform.publish("v1/gateway/attributes/response",
                              {"id": req["id"], "device": "Device Example", "value": "Zürich"})
        self.assertEqual(recv_exact(c, len(b'"Z\\u00fcrich"')), b'"Z\\u00fcrich"')
        # the request itself is not data
        time.sleep(0.3)
        self.assertNotIn("atrsharedName", self.values("Device Example", "temp"))
        # attribute update: str(value) in the entry's encoding (utf-16: BOM + little endian)
        self.platform.publish("v1/gateway/attributes", {"device": "Device Example", "data": {"sharedName": "Ok"}})
        want = "Ok".encode("utf-16")
        self.assertEqual(recv_exact(c, len(want)), want)
        self.platform.publish("v1/gateway/attributes", {"device": "Device Example", "data": {"sharedName": 25.0}})
        want = "25.0".encode("utf-16")
        self.assertEqual(recv_exact(c, len(want)), want)
        # RPC with response: params written, {"result": "ok"}
        data = self.rpc("Device Example", 1, "rpcMethod1", "switch on")
        self.assertEqual(recv_exact(c, 9), b"switch on")
        self.assertEqual(data, {"result": "ok"})
        # an unknown method is answered with an error at once
        data = self.rpc("Device Example", 2, "nope", 1)
        self.assertIn("nope", json.loads(data)["error"] if isinstance(data, str) else data["error"])
        # frames that are not UTF-8 become the bytes repr; NUL bytes are stripped before decoding
        c.sendall(b"\xff\x00ab")
        wait_for(lambda: "b'\\xff\\x00ab'" in self.values("Device Example", "temp"), 10, what="repr value")
        c.sendall(b"a\x00b\x00c")
        wait_for(lambda: "abc" in self.values("Device Example", "temp"), 10, what="NUL stripped")
        c.close()
        self.assertEqual(gw.stop(), 0)

    def test_broken_entries_are_skipped_with_their_position(self):
        """A key without a name, bad byte bounds, an RPC with an unknown codec and an attribute update
        without its name are each reported with file:line:column and skipped; the rest works."""
        port = free_port()
        cfg = ref_config("socket.json", port)
        dev = cfg["devices"][0]
        dev["telemetry"].insert(0, {"byteFrom": 0, "byteTo": 2})
        dev["telemetry"].append({"key": "bad", "byteFrom": "x"})
        dev["serverSideRpc"].insert(0, {"methodRPC": "rpcMethod1", "encoding": "klingon"})
        dev["attributeUpdates"].insert(0, {"encoding": "utf-8"})
        gw = self.start_gateway(cfg)
        wait_port(port)
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"hello")
        wait_for(lambda: self.values("Device Example", "temp"), 10, what="telemetry")
        self.assertEqual(self.platform.telemetry("Device Example")[0][2], {"temp": "hello", "hum": "he"})
        data = self.rpc("Device Example", 1, "rpcMethod1", "on")
        self.assertEqual(recv_exact(c, 2), b"on")
        self.assertEqual(data, {"result": "ok"})
        log = gw.log()
        for want in (r"devices\[0\]\.telemetry\[0\]: key: missing",
                     r"devices\[0\]\.telemetry\[3\]: byteFrom/byteTo: expected integers",
                     r"devices\[0\]\.serverSideRpc\[0\]: encoding: unknown encoding 'klingon'",
                     r"devices\[0\]\.attributeUpdates\[0\]: attributeOnThingsBoard: required"):
            self.assertRegex(log, r"Socket\.json:\d+:\d+: " + want)
        c.close()
        self.assertEqual(gw.stop(), 0)

    def test_downlink_new_connection_and_reserved_set(self):
        port = free_port()
        cfg = ref_config("socket.json", port)
        dev = cfg["devices"][0]
        dev["serverSideRpc"].append({"methodRPC": "oneway", "withResponse": False, "encoding": "latin-1"})
        dev["attributeUpdates"][0]["encoding"] = "hex"
        self.start_gateway(cfg)
        wait_port(port)
        # the device connects from a known port, sends, and goes away
        dport = free_port()
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c.bind(("127.0.0.1", dport))
        c.connect(("127.0.0.1", port))
        c.sendall(b"12345")
        wait_for(lambda: self.values("Device Example", "temp"), 10)
        c.close()
        time.sleep(0.3)
        lst = Listener(dport)
        self.extra.append(lst)
        # now a new connection to the device's last address carries the write
        data = self.rpc("Device Example", 10, "rpcMethod1", {"a": 1})
        self.assertEqual(data, {"result": "ok"})
        wait_for(lambda: lst.got, 10, what="write on a new connection")
        self.assertEqual(lst.got[0], b'{"a":1}')
        data = self.rpc("Device Example", 11, "oneway", "caf\u00e9")
        self.assertEqual(json.loads(data), {"success": True})
        wait_for(lambda: len(lst.got) >= 2, 10)
        self.assertEqual(lst.got[1], b"caf\xe9")
        self.platform.publish("v1/gateway/attributes", {"device": "Device Example", "data": {"sharedName": "0aff10"}})
        wait_for(lambda: len(lst.got) >= 3, 10)
        self.assertEqual(lst.got[2], b"\x0a\xff\x10")
        # reserved set: to any address
        other = free_port()
        lst2 = Listener(other)
        self.extra.append(lst2)
        data = self.rpc("Device Example", 12, "set", "address=127.0.0.1;port=%d;value=hello;" % other)
        self.assertEqual(data, {"result": "ok"})
        wait_for(lambda: lst2.got, 10)
        self.assertEqual(lst2.got[0], b"hello")
        data = self.rpc("Device Example", 13, "set", "address=127.0.0.1;value=x;")
        self.assertIn("Not enough params", json.loads(data)["error"])
        # a refused connection is an error reply, not a hang
        lst.stop()
        self.extra.remove(lst)
        data = self.rpc("Device Example", 14, "rpcMethod1", "x")
        self.assertIn("refused", json.loads(data)["error"].lower())

    def test_report_strategy_on_change(self):
        port = free_udp_port()
        cfg = {"socket": {"type": "UDP", "address": "127.0.0.1", "port": port},
               "devices": [{"address": "127.0.0.1:*", "deviceName": "Changes", "reportStrategy": {"type": "ON_CHANGE"},
                            "telemetry": [{"key": "v", "byteFrom": 0, "byteTo": -1}],
                            "attributes": [{"key": "first", "byteFrom": 0, "byteTo": 1,
                                            "reportStrategy": {"type": "ON_RECEIVED"}}]}]}
        self.start_gateway(cfg)
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(c.close)
        wait_for(lambda: c.sendto(b"a1", ("127.0.0.1", port)) and self.values("Changes", "v"), 10, what="first value")
        for m in (b"a1", b"a1", b"b2", b"b2", b"a1"):
            c.sendto(m, ("127.0.0.1", port))
            time.sleep(0.05)
        wait_for(lambda: len(self.values("Changes", "v")) >= 3, 10, what="changed values")
        time.sleep(0.5)
        self.assertEqual(self.values("Changes", "v"), ["a1", "b2", "a1"])

    def test_old_format_and_socat(self):
        port = free_port()
        self.start_gateway(ref_config(os.path.join("socket_old_format", "old_config.json"), port))
        wait_port(port)
        subprocess.run(["socat", "-u", "-", "TCP:127.0.0.1:%d" % port], input=b"socat!", check=True, timeout=10)
        wait_for(lambda: "socat!" in self.values("Device Example", "temp"), 10, what="socat message")
        gw = self.gateways[0]
        gw.wait_log("Old Socket connector configuration format detected")

    def test_udp(self):
        port = free_udp_port()
        cfg = ref_config("socket.json", port, udp=True)
        dev = cfg["devices"][0]
        dev["address"] = dev["addressFilter"] = "127.0.0.1:*"
        dev["encoding"] = "hex"
        dev["attributeUpdates"][0]["encoding"] = "utf-8"
        self.start_gateway(cfg)
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind(("127.0.0.1", 0))
        c.settimeout(10)

        def sent():
            c.sendto(b"\x01\x02\x03\x04\x05", ("127.0.0.1", port))
            time.sleep(0.1)
            return self.values("Device Example", "temp")
        wait_for(sent, 10, what="udp telemetry")
        self.assertEqual(self.platform.telemetry("Device Example")[0][2], {"temp": "0102030405", "hum": "0102"})
        self.platform.publish("v1/gateway/attributes", {"device": "Device Example", "data": {"sharedName": True}})
        data, _ = c.recvfrom(100)
        self.assertEqual(data, b"True")
        # RPC over UDP is answered too
        self.assertEqual(self.rpc("Device Example", 3, "rpcMethod1", 7), {"result": "ok"})
        data, _ = c.recvfrom(100)
        self.assertEqual(data, b"7")
        # a datagram larger than bufferSize is cut to bufferSize (1024)
        c.sendto(b"\xaa" * 1500, ("127.0.0.1", port))
        wait_for(lambda: [v for v in self.values("Device Example", "temp") if v.startswith("aaaa")], 10)
        big = [v for v in self.values("Device Example", "temp") if v.startswith("aaaa")][0]
        self.assertEqual(len(big), 2048)

    def test_many_clients_and_garbage_flood(self):
        port = free_port()
        cfg = {"socket": {"type": "TCP", "address": "127.0.0.1", "port": port, "bufferSize": 64,
                          "maxMessagesPerSecond": 500},
               "devices": [{"address": "127.0.0.1:*", "deviceName": "Clients", "encoding": "utf-8",
                            "telemetry": [{"key": "v", "byteFrom": 0, "byteTo": -1}]}]}
        gw = self.start_gateway(cfg)
        wait_port(port)
        stop = threading.Event()
        flood_sent = [0, 0]

        def flood_unmatched():
            # 127.0.0.2 matches no device: its connections are refused and counted
            while not stop.is_set():
                try:
                    s = socket.socket()
                    s.bind(("127.0.0.2", 0))
                    s.connect(("127.0.0.1", port))
                    s.sendall(os.urandom(512))
                    s.close()
                    flood_sent[0] += 1
                except OSError:
                    pass

        def flood_garbage():
            # a matching client sending random bytes as fast as it can
            s = socket.create_connection(("127.0.0.1", port))
            s.settimeout(1)
            try:
                while not stop.is_set():
                    s.sendall(os.urandom(4096))
                    flood_sent[1] += 1
            except OSError:
                pass
            s.close()
        floods = [threading.Thread(target=flood_unmatched, daemon=True),
                  threading.Thread(target=flood_garbage, daemon=True)]
        for t in floods:
            t.start()
        n_clients, per_client = 1000, 4
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n_clients)]
        t0 = time.time()
        for k in range(per_client):
            for i, c in enumerate(conns):
                c.sendall(b"c%03d-%d;" % (i, k))
            time.sleep(0.05)
        want = {"c%03d-%d" % (i, k) for i in range(n_clients) for k in range(per_client)}

        def arrived():
            # one recv() is one message: sends of a client read together arrive as one value
            got = set()
            for v in self.values("Clients", "v"):
                got |= {t for t in v.split(";") if t in want}
            return got if len(got) == len(want) else None
        wait_for(arrived, 30, what="every client message")
        elapsed = time.time() - t0
        stop.set()
        for t in floods:
            t.join(5)
        for c in conns:
            c.close()
        self.assertGreater(flood_sent[0], 0)
        self.assertGreater(flood_sent[1], 0)
        self.assertLess(elapsed, 20)
        gw.wait_log("matches no device", 10)
        gw.wait_log("socket.maxMessagesPerSecond", 10)
        self.assertEqual(gw.stop(), 0)
        log = gw.log()
        self.assertIn("refused connection(s)", log)

    def test_custom_converter_limits_and_connector_rpc(self):
        port = free_port()
        cfg = {"socket": {"type": "TCP", "address": "127.0.0.1", "port": port, "maxConnections": 3},
               "devices": [{"address": "127.0.0.1:*", "deviceName": "unused", "converter": "CustomMqttUplinkConverter"}]}
        gw = self.start_gateway(cfg)
        wait_port(port)
        # the example plugin (build/plugins) names the device after the topic: the peer's ip:port
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"0x1A2B")
        dev = "127.0.0.1:%d" % c.getsockname()[1]
        wait_for(lambda: self.values(dev, "data"), 10, what="custom converter output")
        self.assertEqual(self.values(dev, "data"), [0x1A2B])
        # maxConnections: the 4th and 5th connection are closed at once
        extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        closed = 0
        for s in extra:
            s.settimeout(2)
            try:
                if s.recv(10) == b"":
                    closed += 1
            except socket.timeout:
                pass
        self.assertEqual(closed, 2)
        gw.wait_log("socket.maxConnections", 5)
        for s in extra:
            s.close()
        # the reserved set as a connector RPC on the gateway device
        target = free_port()
        lst = Listener(target)
        self.extra.append(lst)
        self.platform.publish("v1/devices/me/rpc/request/77",
                              {"method": "socket_set", "params": "address=127.0.0.1;port=%d;value=ping;" % target})
        reply = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/77"), 10, what="connector rpc reply")
        self.assertIn("ok", json.dumps(reply[0][1]))
        wait_for(lambda: lst.got, 10)
        self.assertEqual(lst.got[0], b"ping")
        c.close()


if __name__ == "__main__":
    main()
