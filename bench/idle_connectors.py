#!/usr/bin/python3
"""Idle gateway with the MQTT, Modbus, OPC-UA, Request and REST connectors (bench/idle.sh --connectors).

Peers on 127.0.0.1: a platform mosquitto, an external mosquitto (quiet: one telemetry message at
start registers the MQTT device), a libmodbus slave (bench_modbus_slave) polled every 10 s, the C
OPC UA bench server (bench_opcua_peer) with 100 subscribed Double nodes that do not change, and a
device HTTP API (bench_http_bare -b: answers a JSON body to every path) that the Request connector
polls every 10 s and both HTTP connectors send their RPCs to; one POST to the REST connector at start
registers its device.

1. Context switches per second of all gateway threads over SECONDS (from
   /proc/<pid>/task/*/status voluntary_ctxt_switches + nonvoluntary_ctxt_switches), per thread too.
2. Platform -> device -> platform RPC latency at idle, 100 calls per connector, one at a time:
   Modbus reserved `get` (a holding register), OPC-UA reserved `get` (a node), MQTT two-way RPC
   answered by an echo device on the external broker, Request and REST `serverSideRpc` GETs to the
   device API. Prints p50/p99/max in ms.

bench/idle_connectors.py --xmpp-ocpp [SECONDS] [CALLS]: the same two figures for the XMPP and OCPP
connectors on their reference configs: prosody with one device account (tests/peers/xmpp_device.py)
and one OCPP 1.6 charge point (python3-websockets) connected, both quiet. RPCs: XMPP reserved `set`
(sent to the device as a chat message, answered by the gateway once sent) and OCPP `Reset` (a CALL
to the charge point whose CALLRESULT is the reply).

Usage: bench/idle_connectors.py [--xmpp-ocpp] [SECONDS] [CALLS]; TBGW_BIN / BUILD select the binaries."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from idle_setup import latency_line  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from tbgwtest import thread_switches as ctxt  # noqa: E402 (the test harness's /proc reader)
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
TBGW = os.environ.get("TBGW_BIN", os.path.join(BUILD, "tbgw"))
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
XMPP_OCPP = "--xmpp-ocpp" in sys.argv
SECS = int(ARGS[0]) if len(ARGS) > 0 else 30
CALLS = int(ARGS[1]) if len(ARGS) > 1 else 100
NODES = 100


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not up" % port)


class Client:
    def __init__(self, port, name, on_message):
        self.c = mqtt.Client(client_id=name)
        self.c.on_message = on_message
        self.c.connect("127.0.0.1", port, 60)
        self.c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as ThingsBoard's transport
        self.c.loop_start()


def cleanup(procs, work):
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
    shutil.rmtree(work, ignore_errors=True)


def write_gateway(work, plat, connectors):
    """tb_gateway.json in work (memory storage, the platform broker at plat) with one file per connector
    (type, name, configuration)."""
    entries = []
    for type_, name, cfg in connectors:
        with open(os.path.join(work, type_ + ".json"), "w") as f:
            json.dump(cfg, f)
        entries.append({"type": type_, "name": name, "configuration": type_ + ".json"})
    gw_cfg = {"thingsboard": {"host": "127.0.0.1", "port": plat, "security": {"accessToken": "t"},
                              "sessionLimitsTimeoutMs": 0},
              "storage": {"type": "memory"}, "connectors": entries}
    with open(os.path.join(work, "tb_gateway.json"), "w") as f:
        json.dump(gw_cfg, f)


class PlatformView:
    """The platform side: device names seen in telemetry and attributes, RPC replies with their time."""

    def __init__(self, port):
        self.lock = threading.Condition()
        self.seen, self.replies = set(), {}
        self.client = Client(port, "platform", self.on_message)
        self.client.c.subscribe("v1/#", qos=1)

    def on_message(self, c, u, m):
        try:
            p = json.loads(m.payload)
        except ValueError:
            return
        with self.lock:
            if m.topic in ("v1/gateway/telemetry", "v1/gateway/attributes"):
                self.seen.update(p.keys())
            elif m.topic == "v1/gateway/rpc":
                self.replies[p.get("id")] = (time.perf_counter(), p)
            self.lock.notify_all()

    def wait_seen(self, names, timeout):
        with self.lock:
            return self.lock.wait_for(lambda: set(names) <= self.seen, timeout)


def report_switches(pid):
    """Prints the context switches per second of every thread of pid over SECS."""
    a = ctxt(pid)
    t0 = time.time()
    time.sleep(SECS)
    b = ctxt(pid)
    dt = time.time() - t0
    total = 0
    print("context switches per second over %d s (all threads of the gateway):" % SECS)
    for tid, (name, n) in sorted(b.items(), key=lambda kv: int(kv[0])):
        d = n - a.get(tid, (name, 0))[1]
        total += d
        print("  %-16s %7.2f/s" % (name + "[" + tid + "]", d / dt))
    print("  %-16s %7.2f/s" % ("total", total / dt))
    print("RSS: %s" % [l.split(":")[1].strip() for l in open("/proc/%d/status" % pid) if l.startswith("VmRSS")][0])


def rpc_latency(view, calls):
    """CALLS platform RPCs per (label, device, method, params), one at a time: p50/p99/max in ms."""
    print("RPC platform -> device -> platform, %d calls each, at idle:" % CALLS)
    rid = 1000
    for label, device, method, params in calls:
        lat, errors = [], 0
        for _ in range(CALLS):
            rid += 1
            msg = json.dumps({"device": device, "data": {"id": rid, "method": method, "params": params}})
            t = time.perf_counter()
            view.client.c.publish("v1/gateway/rpc", msg, qos=1)
            with view.lock:
                if not view.lock.wait_for(lambda: rid in view.replies, 6):
                    errors += 1
                    continue
                t1, p = view.replies[rid]
            if "error" in json.dumps(p.get("data")):
                errors += 1
            lat.append((t1 - t) * 1000)
            time.sleep(0.02)
        example = json.dumps(view.replies[rid][1].get("data")) if rid in view.replies else ""
        print(latency_line(label, lat, errors, example))


def main_xmpp_ocpp():
    from test_ocpp import BASIC, ChargePoint, Loop  # the test peers, reused as they are
    from test_xmpp import Device, Prosody
    work = tempfile.mkdtemp(prefix="tbgw-idle-")
    procs, aio, server, dev = [], None, None, None
    try:
        plat, ocpp_port = free_port(), free_port()
        with open(os.path.join(work, "plat.conf"), "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
                    "set_tcp_nodelay true\n" % plat)
        procs.append(subprocess.Popen(["mosquitto", "-c", os.path.join(work, "plat.conf")]))
        wait_port(plat)
        server = Prosody(work, [("gateway", "password"), ("device", "devpass")]).start()
        with open(os.path.join(ROOT, "tests", "data", "reference", "xmpp.json")) as f:
            xmpp_cfg = json.load(f)
        xmpp_cfg["server"].update({"host": "127.0.0.1", "port": server.port, "caCert": server.cert})
        with open(os.path.join(ROOT, "tests", "data", "reference", "ocpp.json")) as f:
            ocpp_cfg = json.load(f)
        ocpp_cfg["centralSystem"].update({"host": "127.0.0.1", "port": ocpp_port})
        write_gateway(work, plat, [("xmpp", "XMPP", xmpp_cfg), ("ocpp", "OCPP", ocpp_cfg)])
        view = PlatformView(plat)
        time.sleep(0.2)
        log = open(os.path.join(work, "tbgw.log"), "w")
        gw = subprocess.Popen([TBGW, "-c", os.path.join(work, "tb_gateway.json")], stdout=log, stderr=log,
                              env=dict(os.environ, TBGW_LOG_LEVEL="INFO"))
        procs.append(gw)
        end = time.time() + 20
        while "connected to the XMPP server" not in open(log.name).read() and time.time() < end:
            time.sleep(0.1)
        dev = Device(server, "device@localhost/TMP_1101", "devpass").start()
        dev.send(json.dumps({"serialNumber": "SN-1", "temp": 25.5, "hum": 60}))
        aio = Loop()
        cp = aio.run(ChargePoint(ocpp_port, "bidon/hello/CP_1", auth=BASIC).connect())
        aio.run(cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "X1"}))
        if not view.wait_seen(["SN-1"], 20):
            raise RuntimeError("no XMPP data on the platform (log: %s)" % open(log.name).read())
        time.sleep(3)
        report_switches(gw.pid)
        rpc_latency(view, [("XMPP set", "SN-1", "set", "value=5;"),
                                              ("OCPP Reset", "Acme X1", "Reset", {"type": "Soft"})])
        gw.terminate()
        gw.wait(10)
    finally:
        if aio:
            aio.stop()
        if dev:
            dev.stop()
        if server:
            server.stop()
        cleanup(procs, work)


def main():
    work = tempfile.mkdtemp(prefix="tbgw-idle-")
    procs = []

    def spawn(argv, **kw):
        p = subprocess.Popen(argv, **kw)
        procs.append(p)
        return p

    try:
        plat, ext, mb, api, rest = free_port(), free_port(), free_port(), free_port(), free_port()
        for name, port in (("plat", plat), ("ext", ext)):
            with open(os.path.join(work, name + ".conf"), "w") as f:
                f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
                        "set_tcp_nodelay true\n" % port)
            spawn(["mosquitto", "-c", os.path.join(work, name + ".conf")])
            wait_port(port)
        spawn([os.path.join(BUILD, "bench_modbus_slave"), "tcp", str(mb), "-h", "0=1234"],
              stdout=subprocess.DEVNULL)
        wait_port(mb)
        ua = spawn([os.path.join(BUILD, "bench_opcua_peer"), "0", str(NODES), "3600000"],
                   stdout=subprocess.PIPE, text=True)
        ua_port = int(ua.stdout.readline().split()[1])
        spawn([os.path.join(BUILD, "bench_http_bare"), "-p", str(api), "-b", '{"v": 1}', "-P", "10000"],
              stderr=subprocess.DEVNULL)
        wait_port(api)

        # the echo device on the external broker: answers every RPC request with its params
        def echo(c, u, m):
            parts = m.topic.split("/")  # rpc/req/<device>/<id>
            c.publish("rpc/resp/%s/%s" % (parts[2], parts[3]), m.payload, qos=0)
        dev = Client(ext, "echo-device", echo)
        dev.c.subscribe("rpc/req/+/+", qos=0)

        mqtt_cfg = {"broker": {"host": "127.0.0.1", "port": ext, "clientId": "tbgw-idle", "version": 5},
                    "mapping": [{"topicFilter": "sensors/+", "converter": {
                        "type": "json", "deviceInfo": {"deviceNameExpressionSource": "topic",
                                                       "deviceNameExpression": "(?<=sensors/).+"},
                        "timeseries": [{"type": "double", "key": "t", "value": "${t}"}]}}],
                    "requestsMapping": {"serverSideRpc": [{
                        "type": "twoWay", "deviceNameFilter": ".*", "methodFilter": "echo",
                        "requestTopicExpression": "rpc/req/${deviceName}/${requestId}",
                        "responseTopicExpression": "rpc/resp/${deviceName}/${requestId}",
                        "responseTimeout": 5000, "valueExpression": "${params}"}]}}
        mb_cfg = {"master": {"slaves": [{
            "host": "127.0.0.1", "port": mb, "type": "tcp", "method": "socket", "unitId": 1,
            "deviceName": "MB", "deviceType": "modbus", "timeout": 2, "pollPeriod": 10000,
            "timeseries": [{"tag": "r0", "type": "16int", "functionCode": 3, "objectsCount": 1, "address": 0}]}]}}
        ua_cfg = {"server": {"url": "opc.tcp://127.0.0.1:%d" % ua_port, "enableSubscriptions": True},
                  "mapping": [{"deviceNodePattern": "Root\\.Objects\\.Many",
                               "deviceInfo": {"deviceNameExpression": "Many",
                                              "deviceNameExpressionSource": "constant"},
                               "timeseries": [{"key": "v%d" % i, "type": "path", "value": "${V%d}" % i}
                                              for i in range(NODES)]}]}
        rq_cfg = {"host": "http://127.0.0.1:%d" % api,
                  "mapping": [{"url": "poll", "scanPeriod": 10, "converter": {
                      "type": "json", "deviceNameJsonExpression": "ReqDev",
                      "telemetry": [{"key": "v", "type": "int", "value": "${v}"}]}}],
                  "serverSideRpc": [{"deviceNameFilter": ".*", "methodFilter": "echo", "httpMethod": "GET",
                                     "requestUrlExpression": "echo/${deviceName}/${requestId}", "timeout": 2}]}
        rs_cfg = {"server": {"host": "127.0.0.1", "port": rest},
                  "mapping": [{"endpoint": "/data", "HTTPMethods": ["POST"], "converter": {
                      "type": "json", "deviceInfo": {"deviceNameExpressionSource": "constant",
                                                     "deviceNameExpression": "RestDev"},
                      "timeseries": [{"type": "int", "key": "v", "value": "${v}"}]}}],
                  "requestsMapping": {"serverSideRpc": [{
                      "deviceNameFilter": ".*", "methodFilter": "echo", "HTTPMethod": "GET", "timeout": 2,
                      "requestUrlExpression": "http://127.0.0.1:%d/echo/${deviceName}/${requestId}" % api}]}}
        write_gateway(work, plat, [("mqtt", "MQTT", mqtt_cfg), ("modbus", "Modbus", mb_cfg),
                                   ("opcua", "OPCUA", ua_cfg), ("request", "Request", rq_cfg),
                                   ("rest", "REST", rs_cfg)])
        view = PlatformView(plat)
        time.sleep(0.2)

        log = open(os.path.join(work, "tbgw.log"), "w")
        gw = spawn([TBGW, "-c", os.path.join(work, "tb_gateway.json")], stdout=log, stderr=log,
                   env=dict(os.environ, TBGW_LOG_LEVEL="WARNING"))
        ok, end = False, time.time() + 20
        wait_port(rest)
        post = http.client.HTTPConnection("127.0.0.1", rest, timeout=5)
        post.request("POST", "/data", body='{"v": 2}', headers={"Content-Type": "application/json"})
        post.getresponse().read()
        post.close()
        while not ok and time.time() < end:  # until the connector has subscribed
            dev.c.publish("sensors/MqttDev", json.dumps({"t": 1.5}), qos=1)
            ok = view.wait_seen(["MB", "Many", "MqttDev", "ReqDev", "RestDev"], 0.5)
        if not ok:
            raise RuntimeError("devices seen on the platform: %s (log: %s)" % (sorted(view.seen),
                                                                              open(log.name).read()))
        time.sleep(3)  # first values delivered, subscriptions settled

        report_switches(gw.pid)
        calls = [("Modbus get", "MB", "get", "type=16int;functionCode=3;objectsCount=1;address=0;"),
                 ("OPC-UA get", "Many", "get", "ns=1;s=V0"),
                 ("MQTT two-way", "MqttDev", "echo", {"v": 1}),
                 ("Request RPC", "ReqDev", "echo", {}),
                 ("REST RPC", "RestDev", "echo", {})]
        rpc_latency(view, calls)
        gw.terminate()
        gw.wait(10)
    finally:
        cleanup(procs, work)


if __name__ == "__main__":
    main_xmpp_ocpp() if XMPP_OCPP else main()
