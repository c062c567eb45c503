"""The SNMP connector against Debian's snmpd started by the test on free loopback ports (own
configuration, persistent dir in the temp folder): the reference example (get, multiget, getnext,
bulkget, table), v2c walk, v3 SHA-256/AES, a wrong v3 password, sets that really change the agent
(0 and "" included) through RPC, reserved set and attribute updates, an OID that changes, and a
stopped agent that does not slow the other device."""

import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tbgwtest import SLOW, SOURCE_DIR, GatewayTestCase, main, wait_for  # noqa: E402

REF = os.path.join(SOURCE_DIR, "tests", "data", "reference")
PASS = os.path.join(SOURCE_DIR, "tests", "peers", "snmp_pass.py")
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJID = "1.3.6.1.2.1.1.2.0"
SYS_CONTACT = "1.3.6.1.2.1.1.4.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
PASS_INT = "1.3.6.1.4.1.99999.1.0"
PASS_SEQ = "1.3.6.1.4.1.99999.2.0"
PASS_STR = "1.3.6.1.4.1.99999.3.0"


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Snmpd:
    """snmpd on a free loopback UDP port: public (ro), private (rw), v3 user gwuser SHA-256/AES."""

    def __init__(self, workdir, name):
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, "persist"), exist_ok=True)
        self.port = free_udp_port()
        self.conf = os.path.join(self.dir, "snmpd.conf")
        with open(self.conf, "w") as f:
            f.write("agentAddress udp:127.0.0.1:%d\n" % self.port)
            f.write("rocommunity public 127.0.0.1\nrwcommunity private 127.0.0.1\n")
            f.write("createUser gwuser SHA-256 authpass123 AES privpass123\nrwuser gwuser priv\n")
            f.write("createUser gwuser2 SHA-256 otherpass123 AES privpass123\nrouser gwuser2 priv\n")
            f.write("createUser u_md5 MD5 md5pass123 DES despass123\nrouser u_md5 priv\n")
            f.write("createUser u_auth SHA-512 authonly123\nrouser u_auth auth\n")
            f.write("createUser u_none\nrouser u_none noauth\n")
            f.write("sysName %s\n" % name)
            f.write("pass .1.3.6.1.4.1.99999 /usr/bin/python3 %s %s\n" % (PASS, os.path.join(self.dir, "state.json")))
        self.proc = None

    def start(self):
        env = dict(os.environ, SNMP_PERSISTENT_DIR=os.path.join(self.dir, "persist"), MIBS="")
        self.proc = subprocess.Popen(["snmpd", "-f", "-Lo", "-C", "-c", self.conf], env=env, cwd=self.dir,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self.get(SYS_NAME, timeout=0.5) is not None, 15, what="snmpd on %d" % self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def get(self, oid, timeout=2):
        r = subprocess.run(["snmpget", "-v2c", "-c", "public", "-Oqv", "-t", str(timeout), "-r", "0",
                            "127.0.0.1:%d" % self.port, oid], capture_output=True, text=True,
                           env=dict(os.environ, MIBS=""))
        return r.stdout.strip() if r.returncode == 0 else None


def snmp_connector(devices, name="SNMP"):
    return {"type": "snmp", "name": name, "config": {"devices": devices}}


class SnmpIntegration(GatewayTestCase):
    def agent(self, name="agent"):
        a = Snmpd(self.workdir, name).start()
        self.extra.append(a)
        return a

    def latest(self, device, key, timeout=15):
        def find():
            for dev, ts, values in reversed(self.platform.telemetry(device)):
                if key in values:
                    return ts, values[key]
            return None
        return wait_for(find, timeout, what="telemetry %s of %s" % (key, device))

    def attrs(self, device, keys, timeout=15):
        def find():
            a = self.platform.attributes(device).get(device, {})
            return a if all(k in a for k in keys) else None
        return wait_for(find, timeout, what="attributes %s of %s" % (keys, device))

    def rpc(self, device, rid, method, params):
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                             "params": params}})
        msgs = wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 15,
                        what="rpc reply %d" % rid)
        data = msgs[0]["data"]
        return json.loads(data) if isinstance(data, str) else data

    def test_host_name_resolved_off_the_loop(self):
        """A device given by host name: resolved in a helper thread that wakes the loop when done, so
        the first poll follows at once (localhost is 127.0.0.1 in the test machines' /etc/hosts)."""
        a = self.agent()
        devs = [{"deviceName": "Named", "ip": "localhost", "port": a.port, "community": "public", "pollPeriod": 60000,
                 "telemetry": [{"key": "name", "method": "get", "oid": SYS_NAME}]}]
        t0 = time.time()
        gw = self.gateway(connectors=[snmp_connector(devs)]).start()
        self.assertEqual(self.latest("Named", "name", timeout=10)[1], "agent")
        self.assertLess(time.time() - t0, 5 * SLOW)
        self.assertEqual(gw.stop(), 0)

    def test_broken_entries_are_skipped_with_their_position(self):
        """An unknown method, an entry without its key and an attribute update without its filter are
        each reported with file:line:column and skipped; the good entry is still polled."""
        a = self.agent()
        devs = [{"deviceName": "Half", "ip": "127.0.0.1", "port": a.port, "community": "public", "pollPeriod": 300,
                 "telemetry": [{"key": "bad", "method": "fetch", "oid": SYS_NAME},
                               {"method": "get", "oid": SYS_NAME},
                               {"key": "name", "method": "get", "oid": SYS_NAME}],
                 "attributeUpdateRequests": [{"method": "set", "oid": SYS_CONTACT}]}]
        gw = self.gateway(connectors=[snmp_connector(devs)]).start()
        self.assertEqual(self.latest("Half", "name")[1], "agent")
        log = gw.log()
        for want in (r"devices\[0\]\.telemetry\[0\]\.method: 'fetch' unknown",
                     r"devices\[0\]\.telemetry\[1\]\.key: required string",
                     r"devices\[0\]\.attributeUpdateRequests\[0\]\.attributeFilter: required string"):
            self.assertRegex(log, r"SNMP\.json:\d+:\d+: " + want)
        self.assertEqual(gw.stop(), 0)

    def test_reference_config(self):
        a = self.agent()
        with open(os.path.join(REF, "snmp.json")) as f:
            cfg = json.load(f)
        dev = cfg["devices"][0]
        dev["ip"], dev["port"], dev["pollPeriod"] = "127.0.0.1", a.port, 500
        gw = self.gateway(connectors=[{"type": "snmp", "name": "SNMP", "config": cfg}]).start()
        at = self.attrs("SNMP router", ["ReceivedFromGet", "ReceivedFromMultiGet", "ReceivedFromGetNext",
                                        "ReceivedFromBulkGet"])
        descr = a.get(SYS_DESCR).strip('"')
        self.assertEqual(at["ReceivedFromGet"], descr)
        self.assertEqual(at["ReceivedFromMultiGet"], descr + ",1.3.6.1.4.1.8072.3.2.10")
        self.assertEqual(at["ReceivedFromGetNext"], {SYS_OBJID: "1.3.6.1.4.1.8072.3.2.10"})
        self.assertEqual(at["ReceivedFromBulkGet"], {SYS_DESCR: descr, SYS_OBJID: "1.3.6.1.4.1.8072.3.2.10"})
        # walks of leaf OIDs are empty and not sent; the table of the system group is one merged row
        _, table = self.latest("SNMP router", "ReceivedFromTable")
        self.assertIsInstance(table, dict)
        self.assertIn("0", table)
        keys = set()
        for _, _, v in self.platform.telemetry("SNMP router"):
            keys |= set(v)
        self.assertNotIn("ReceivedFromWalk", keys)
        # the second device (127.0.0.1:161, no agent) times out without delaying the first
        n0 = len(self.platform.telemetry("SNMP router"))
        time.sleep(2)
        self.assertGreaterEqual(len(self.platform.telemetry("SNMP router")) - n0, 2)
        self.assertEqual(gw.stop(), 0)

    def test_v2c_v3_walk_and_sets(self):
        a = self.agent()
        base = {"ip": "127.0.0.1", "port": a.port, "pollPeriod": 300, "timeout": 2}
        v2 = dict(base, deviceName="V2", deviceType="snmp", community="private", snmpVersion="2c",
                  attributes=[{"key": "name", "method": "get", "oid": SYS_NAME}],
                  telemetry=[{"key": "seq", "method": "get", "oid": PASS_SEQ},
                             {"key": "system", "method": "bulkwalk", "oid": ["1.3.6.1.2.1.1"], "bulkSize": 5},
                             {"key": "pass", "method": "walk", "oid": "1.3.6.1.4.1.99999"},
                             {"key": "ifTable", "method": "table", "oid": "1.3.6.1.2.1.2.2"}],
                  attributeUpdateRequests=[{"attributeFilter": "contact", "method": "set", "oid": SYS_CONTACT}],
                  serverSideRpcRequests=[{"requestFilter": "setInt", "method": "set", "oid": PASS_INT},
                                         {"requestFilter": "getInt", "method": "get", "oid": PASS_INT},
                                         {"requestFilter": "walkPass", "method": "walk", "oid": "1.3.6.1.4.1.99999"},
                                         {"requestFilter": "setBoth", "method": "multiset",
                                          "mappings": {PASS_INT: "${value}", PASS_STR: "${value}"}}])
        v3 = dict(base, deviceName="V3", snmpVersion=3, securityName="gwuser", authProtocol="SHA-256",
                  authKey="authpass123", privProtocol="AES", privKey="privpass123",
                  attributes=[{"key": "name", "method": "get", "oid": SYS_NAME}], telemetry=[])
        bad = dict(v3, deviceName="V3bad", securityName="gwuser2", authKey="wrongpass1")
        md5 = dict(v3, deviceName="V3md5", securityName="u_md5", authProtocol="MD5", authKey="md5pass123",
                   privProtocol="DES", privKey="despass123")
        auth = {k: v for k, v in v3.items() if k not in ("privProtocol", "privKey")}
        auth.update(deviceName="V3auth", securityName="u_auth", authProtocol="SHA-512", authKey="authonly123")
        none = {k: v for k, v in v3.items() if k not in ("privProtocol", "privKey", "authProtocol", "authKey")}
        none.update(deviceName="V3none", securityName="u_none")
        gw = self.gateway(connectors=[snmp_connector([v2, v3, bad, md5, auth, none])]).start()
        self.assertEqual(self.attrs("V3", ["name"])["name"], "agent")
        for name in ("V3md5", "V3auth", "V3none"):
            self.assertEqual(self.attrs(name, ["name"])["name"], "agent")
        self.assertEqual(self.attrs("V2", ["name"])["name"], "agent")
        # the pass OID changes between polls
        ts1, s1 = self.latest("V2", "seq")
        wait_for(lambda: self.latest("V2", "seq")[1] != s1, 10, what="a changed value")
        _, system = self.latest("V2", "system")
        self.assertEqual(system[SYS_NAME], "agent")
        self.assertIn(SYS_DESCR, system)
        # ifTable: rows merged, later rows win; "0" is the last row's index, "2" its ifDescr
        _, ift = self.latest("V2", "ifTable")
        self.assertTrue(ift["0"].isdigit(), ift)
        self.assertIn("2", ift)
        self.assertEqual(ift["1"], ift["0"])  # ifIndex column equals the row index
        _, pw = self.latest("V2", "pass")
        self.assertEqual(pw[PASS_INT], "7")
        self.assertEqual(pw[PASS_STR], "hello")
        # a wrong v3 password is a clear error
        gw.wait_log("Authentication failure", 15)
        self.assertNotIn("V3bad", self.platform.attributes())
        # RPC set typed per OID: 0 is really sent
        self.assertEqual(self.rpc("V2", 1, "setInt", 0), {"result": "0"})
        self.assertEqual(a.get(PASS_INT), "0")
        self.assertEqual(self.rpc("V2", 2, "getInt", None), {"result": "0"})
        # reserved set/get
        self.assertEqual(self.rpc("V2", 3, "set", "method=set;oid=%s;value=42;" % PASS_INT), {"result": "42"})
        self.assertEqual(a.get(PASS_INT), "42")
        self.assertEqual(self.rpc("V2", 4, "get", "method=get;oid=%s;" % SYS_NAME), {"result": "agent"})
        # multiset with the request's value
        self.assertEqual(self.rpc("V2", 5, "setBoth", 5), {"result": {PASS_INT: "5", PASS_STR: "5"}})
        self.assertEqual(a.get(PASS_STR), '"5"')
        # a walk as RPC: the object of texts
        r = self.rpc("V2", 8, "walkPass", None)
        self.assertEqual(r["result"][PASS_INT], "5")
        self.assertIn(PASS_SEQ, r["result"])
        # a type mismatch is an error reply, not a crash
        r = self.rpc("V2", 6, "setInt", "abc")
        self.assertIn("error", r)
        # attribute update: an empty string is really written
        self.platform.publish("v1/gateway/attributes", {"device": "V2", "data": {"contact": "ops@example.com"}})
        wait_for(lambda: a.get(SYS_CONTACT) == '"ops@example.com"', 10, what="sysContact set")
        self.platform.publish("v1/gateway/attributes", {"device": "V2", "data": {"contact": ""}})
        wait_for(lambda: a.get(SYS_CONTACT) == '""', 10, what="sysContact emptied")
        # read-only community: the agent's refusal is the reply
        self.assertIn("error", self.rpc("V3bad", 7, "get", "method=get;oid=%s;" % SYS_NAME))
        self.assertEqual(gw.stop(), 0)

    def test_stopped_agent_does_not_delay_others(self):
        a1 = self.agent("one")
        a2 = self.agent("two")
        devs = [{"deviceName": "Live", "ip": "127.0.0.1", "port": a1.port, "community": "public", "pollPeriod": 200,
                 "timeout": 2, "attributes": [], "telemetry": [{"key": "name", "method": "get", "oid": SYS_NAME}]},
                {"deviceName": "Dying", "ip": "127.0.0.1", "port": a2.port, "community": "public", "pollPeriod": 200,
                 "timeout": 1.5, "attributes": [],
                 "telemetry": [{"key": "name", "method": "get", "oid": SYS_NAME},
                               {"key": "descr", "method": "get", "oid": SYS_DESCR}]}]
        gw = self.gateway(connectors=[snmp_connector(devs)]).start()
        self.latest("Live", "name")
        self.latest("Dying", "name")
        a2.stop()
        time.sleep(0.5)
        t0 = time.time()
        n0 = len(self.platform.telemetry("Live"))
        time.sleep(3)
        stamps = sorted(ts for _, ts, v in self.platform.telemetry("Live") if "name" in v)
        recent = [t for t in stamps if t >= (t0 - 0.1) * 1000]
        gaps = [b - a for a, b in zip(recent, recent[1:])]
        # 200 ms period: ~15 polls in 3 s even though the other device times out every 1.5 s
        self.assertGreaterEqual(len(self.platform.telemetry("Live")) - n0, 10 // SLOW)
        self.assertLess(max(gaps), 700 * SLOW, gaps)
        gw.wait_log("Dying: no answer from", 10)
        # the agent comes back: its data flows again
        a2.start()
        n1 = len(self.platform.telemetry("Dying"))
        wait_for(lambda: len(self.platform.telemetry("Dying")) > n1, 15, what="data after the restart")
        gw.wait_log("Dying: the agent answers again", 5)
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
