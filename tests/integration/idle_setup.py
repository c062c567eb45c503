"""The Socket, SNMP, KNX, CAN and ODBC connectors idle against their real peers on 127.0.0.1, for the
idle wake-up check (test_idle.py) and bench/idle_peers.py: a TCP device connected to the Socket
connector and silent, snmpd polled every 10 s, knxd with a bus device polled every 10 s, an slcan
adapter on a socat pty pair without polling frames, a SQLite file polled by the ODBC connector every
10 s. Every connector has one RPC that goes to its peer and back (or is written to it).

    peers = IdlePeers(workdir)         # starts the peers
    connectors = peers.connectors()    # for tbgwtest.Gateway
    ...start the gateway...
    peers.settle(platform)             # until every device's first values are on the platform
    peers.calls                        # [(label, device, method, params, check(reply) -> bool)]
    peers.stop()
"""

import json
import os
import socket
import sqlite3
import threading
import time

from knxbus import Knxd, KnxBus, dpt9
from tbgwtest import free_port, thread_switches, wait_for, wait_port
from test_can import Adapter
from test_snmp_connector import SYS_NAME, Snmpd

POLL_MS = 10000
# the connector threads are named after their connectors
NAMES = ("Socket", "SNMP", "KNX", "CAN", "ODBC")


def name14(s):
    return list(s.encode("latin-1").ljust(14, b"\0"))


class SocketDevice:
    """A TCP device that connects to the Socket connector, sends one message and stays connected,
    reading what the gateway writes to it."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.got = b""
        self.lock = threading.Lock()
        self.running = True
        self.sock.settimeout(0.5)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while self.running:
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not b:
                return
            with self.lock:
                self.got += b

    def send(self, data):
        self.sock.sendall(data)

    def stop(self):
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass


class IdlePeers:
    def __init__(self, workdir):
        self.workdir = workdir
        self.parts = []
        try:
            self.snmpd = Snmpd(workdir, "idle").start()
            self.parts.append(self.snmpd)
            self.knxd = Knxd(workdir).start()
            self.parts.append(self.knxd)
            self.bus = KnxBus(self.knxd.tcp_port).start()
            self.parts.append(self.bus)
            self.bus.answers.update({"1/0/5": [0x00, 0x40] + name14("Idle"), "1/0/6": [0x00, 0x40, 0x0C, 0x33],
                                     "1/0/7": [0x00, 0x40] + dpt9(44.0)})
            self.can = Adapter(workdir, "idle")
            self.parts.append(self.can)
            self.db = os.path.join(workdir, "idle.db")
            con = sqlite3.connect(self.db)
            con.execute("CREATE TABLE t (name TEXT, ts BIGINT, v DOUBLE)")
            con.execute("INSERT INTO t VALUES ('Idle', 1, 1.5)")
            con.commit()
            con.close()
        except Exception:
            self.stop()
            raise
        self.sock_port = free_port()
        self.device = None

    def connectors(self):
        sock = {"socket": {"address": "127.0.0.1", "type": "TCP", "port": self.sock_port, "bufferSize": 1024},
                "devices": [{"address": "*:*", "deviceName": "Sock Idle", "deviceType": "default",
                             "encoding": "utf-8", "telemetry": [{"key": "v", "byteFrom": 0, "byteTo": -1}],
                             "serverSideRpc": [{"methodRPC": "write", "withResponse": True,
                                                "methodProcessing": "write", "encoding": "utf-8"}]}]}
        snmp = {"devices": [{"deviceName": "SNMP Idle", "ip": "127.0.0.1", "port": self.snmpd.port,
                             "community": "public", "pollPeriod": POLL_MS,
                             "attributes": [{"key": "name", "method": "get", "oid": SYS_NAME}]}]}
        knx = {"client": {"type": "TUNNELING", "gatewayIP": "127.0.0.1", "gatewayPort": self.knxd.udp_port,
                          "individualAddress": "1.0.10", "autoReconnect": True},
               "devices": [{"deviceInfo": {"deviceNameExpressionSource": "expression",
                                           "deviceNameExpression": "KNX ${1/0/5}", "deviceNameDataType": "string"},
                            "pollPeriod": POLL_MS,
                            "timeseries": [{"type": "humidity", "key": "humidity", "groupAddress": "1/0/7"}]}]}
        can = {"interface": "slcan", "channel": self.can.gw_end, "backend": {"bitrate": 500000},
               "reconnectPeriod": 1,
               "devices": [{"name": "CAN Idle", "sendDataOnlyOnChange": False, "enableUnknownRpc": True,
                            "attributes": [{"key": "door", "nodeId": 41, "value": "4:1:int"}]}]}
        odbc = {"connection": {"str": "Driver=SQLite3;Database=%s" % self.db},
                "polling": {"query": "SELECT name, ts, v FROM t WHERE ts > ? ORDER BY ts",
                            "period": POLL_MS / 1000, "iterator": {"column": "ts", "value": 0}},
                "mapping": {"device": {"name": "'ODBC ' + name"}, "sendDataOnlyOnChange": False,
                            "timeseries": [{"name": "v", "value": "v"}]},
                "serverSideRpc": {"enableUnknownRpc": False, "overrideRpcConfig": True, "methods": []}}
        return [{"type": "socket", "name": "Socket", "config": sock},
                {"type": "snmp", "name": "SNMP", "config": snmp},
                {"type": "knx", "name": "KNX", "config": knx},
                {"type": "can", "name": "CAN", "config": can},
                {"type": "odbc", "name": "ODBC", "config": odbc}]

    def settle(self, platform, timeout=30):
        """Until every connector's device is on the platform (the Socket device connected)."""
        wait_port(self.sock_port, timeout)
        self.device = SocketDevice(self.sock_port)
        self.device.send(b"1")
        self.can.inject("t0298" + "0000000004000000")  # door: byte 4
        wanted = ("Sock Idle", "SNMP Idle", "KNX Idle", "CAN Idle", "ODBC Idle")

        def seen():
            names = set(d for d, _, _ in platform.telemetry()) | set(platform.attributes())
            return all(w in names for w in wanted)
        wait_for(seen, timeout, what="first values of %s" % ", ".join(wanted))

    # (label, device, method, params, check of the reply's data)
    calls = [
        ("Socket write", "Sock Idle", "write", "ping", lambda d: d == {"result": "ok"}),
        ("SNMP get", "SNMP Idle", "get", "method=get;oid=%s;" % SYS_NAME, lambda d: d == {"result": "idle"}),
        ("KNX get", "KNX Idle", "get", "groupAddress=1/0/7;dataType=humidity;",
         lambda d: isinstance(d, dict) and "44" in str(d.get("result"))),
        ("CAN set", "CAN Idle", "set", "nodeId=16;dataInHex=AABB;", lambda d: d == {"result": {"success": True}}),
        ("ODBC get", "ODBC Idle", "get", "query=SELECT v FROM t WHERE name = ?;value=Idle;with_result=true;",
         lambda d: d == {"result": {"v": 1.5}}),
    ]

    def stop(self):
        if self.device:
            self.device.stop()
        for p in reversed(self.parts):
            try:
                p.stop()
            except Exception:
                pass
        self.parts = []


def latency_line(label, lat, errors, example):
    """One line of a latency report: p50/p99/max of lat (ms), the errors, an example reply."""
    lat = sorted(lat)
    if not lat:
        return "  %-13s no replies" % label
    return "  %-13s p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  (%d errors) e.g. %s" % (
        label, lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1], errors, example[:70])


def rates(pid, seconds):
    """Context switches per second of each thread over seconds: [(name, tid, rate)]."""
    a = thread_switches(pid)
    t0 = time.time()
    time.sleep(seconds)
    b = thread_switches(pid)
    dt = time.time() - t0
    return [(name, tid, (n - a.get(tid, (name, 0))[1]) / dt)
            for tid, (name, n) in sorted(b.items(), key=lambda kv: int(kv[0]))]


def rpc_reply(platform, rid, timeout):
    """The first v1/gateway/rpc reply with that id (data decoded when it is a JSON string)."""
    msgs = wait_for(lambda: [p for t, p in platform.all("v1/gateway/rpc") if p.get("id") == rid], timeout,
                    what="rpc reply %d" % rid)
    data = msgs[0]["data"]
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            pass
    return data
