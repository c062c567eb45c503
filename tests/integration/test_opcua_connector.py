"""OPC-UA connector end to end: a node-opcua server (tests/peers/opcua_server.js) serving MyObject like
the reference's opcua.json; the gateway with that config; what arrives on the platform.

Polling and subscription modes deliver the right values, multiply [7, 8] returns
{"result":{"result":56}}, an attribute update writes Relay, get/set RPCs, username identity, a
server restart in subscription mode, and rescans that keep the subscription (a node added later
arrives, nothing else is sent again). Skipped when node-opcua is not installed."""

import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from tbgwtest import GatewayTestCase, SOURCE_DIR, free_port, wait_for, main

PEERS = os.path.join(SOURCE_DIR, "tests", "peers")
HAVE_PEER = os.path.isdir(os.path.join(PEERS, "node_modules", "node-opcua")) and shutil.which("node")
REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "opcua.json")


class OpcuaServer:
    def __init__(self, workdir, port=None, user=None, pki=None, x509_user=None, extra=()):
        self.workdir = workdir
        self.extra = list(extra)
        self.port = port or free_port()
        self.user = user
        self.pki = pki
        self.x509_user = x509_user
        self.proc = None

    @property
    def url(self):
        return "opc.tcp://127.0.0.1:%d/" % self.port

    def start(self):
        # Basic128Rsa15 needs RSA PKCS#1 v1.5 decryption, which node 20 only allows with this flag
        args = ["node", "--security-revert=CVE-2023-46809", os.path.join(PEERS, "opcua_server.js"), str(self.port)]
        if self.user:
            args += ["--user", self.user]
        if self.pki:
            args += ["--pki", self.pki]
        if self.x509_user:
            args += ["--x509-user", self.x509_user]
        args += self.extra
        self.log = os.path.join(self.workdir, "opcua-%d.log" % self.port)
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._ready, 60, what="OPC-UA server ready")
        return self

    def _ready(self):
        with open(self.log, errors="replace") as f:
            return "READY" in f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None


def make_pki(folder):
    """A CA, and a server and a client certificate it signed (with the issuer appended), by openssl."""
    os.makedirs(folder, exist_ok=True)

    def run(*args):
        subprocess.run(args, cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days",
        "30", "-subj", "/CN=tbgw test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
        "keyUsage=critical,keyCertSign,cRLSign")
    for name, uri in (("server", "urn:tbgw:test-server"), ("client", "urn:tbgw:client")):
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + name)
        with open(os.path.join(folder, name + ".ext"), "w") as f:
            f.write("subjectAltName=URI:%s,DNS:localhost,IP:127.0.0.1\n"
                    "keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n" % uri)
        run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", name + ".pem", "-days", "30", "-extfile", name + ".ext")
        with open(os.path.join(folder, "ca.pem")) as ca, open(os.path.join(folder, name + ".pem"), "a") as out:
            out.write(ca.read())
    return folder


def make_user_certs(folder):
    """Self-signed user certificates 'user' and 'rogue' (application URI urn:tbgw:client), by openssl."""
    for name in ("user", "rogue"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                        name + ".pem", "-days", "30", "-subj", "/CN=" + name, "-addext",
                        "subjectAltName=URI:urn:tbgw:client", "-addext",
                        "keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment"],
                       cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def revoke_server_cert(folder):
    """A CRL of the test CA revoking the server certificate (openssl ca), as revoked.crl."""
    with open(os.path.join(folder, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\n"
                "default_crl_days=30\n")
    open(os.path.join(folder, "index.txt"), "w").close()
    with open(os.path.join(folder, "crlnumber"), "w") as f:
        f.write("1000\n")

    def run(*args):
        subprocess.run(args, cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    ca = ["-batch", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem"]
    run("openssl", "x509", "-in", "server.pem", "-out", "server-leaf.pem")
    run("openssl", "ca", *ca, "-revoke", "server-leaf.pem")
    run("openssl", "ca", *ca, "-gencrl", "-out", "revoked.crl")


def reference_config(url, subscriptions=False):
    """The reference's example config, pointed at the test server."""
    with open(REFERENCE) as f:
        cfg = json.load(f)
    cfg["server"]["url"] = url
    cfg["server"]["pollPeriodInMillis"] = 300
    cfg["server"]["enableSubscriptions"] = subscriptions
    return cfg


def opcua_connector(cfg, name="OPCUA Connector"):
    return {"type": "opcua", "name": name, "config": cfg}


@unittest.skipUnless(HAVE_PEER, "node-opcua test peer not installed (scripts/install-deps.sh)")
class OpcuaConnector(GatewayTestCase):
    def server(self, **kw):
        s = OpcuaServer(self.workdir, **kw).start()
        self.extra.append(s)
        return s

    def rpc(self, rid, method, params):
        self.platform.publish("v1/gateway/rpc", {"device": "Demo Device",
                                                 "data": {"id": rid, "method": method, "params": params}})
        return wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 15,
                        what="rpc reply %d" % rid)[0]

    def test_polling_values_rpc_and_attribute_update(self):
        srv = self.server()
        gw = self.gateway(connectors=[opcua_connector(reference_config(srv.url))]).start()
        tel = wait_for(lambda: self.platform.telemetry("Demo Device"), 20, what="OPC-UA telemetry")
        self.assertEqual(tel[0][2], {"temperature": 21.5, "humidity": 55.25, "relay": False})
        attrs = wait_for(lambda: self.platform.attributes("Demo Device").get("Demo Device"), 10)
        self.assertEqual(attrs["frequency"], 50)
        self.assertEqual(attrs["power"], 230.5)
        self.assertIn({"device": "Demo Device", "type": "default"}, [p for t, p in self.platform.all("v1/gateway/connect")])

        reply = self.rpc(1, "multiply", [7, 8])
        self.assertEqual(reply, {"device": "Demo Device", "id": 1, "data": {"result": {"result": 56}}})
        reply = self.rpc(2, "get", "temperature")
        self.assertEqual(reply["data"], {"result": {"value": 21.5}})
        reply = self.rpc(3, "no_such_method", None)
        self.assertEqual(reply["data"], {"result": {"error": "Requested rpc method is not found in config"}})
        reply = self.rpc(4, "set", "Power=240.5")
        self.assertEqual(reply["data"], {"result": {"value": 240.5}})

        self.platform.publish("v1/gateway/attributes", {"device": "Demo Device", "data": {"relay": True}})
        wait_for(lambda: [v for _, _, v in self.platform.telemetry("Demo Device") if v.get("relay") is True], 15,
                 what="relay written and polled back")
        self.assertEqual(gw.stop(), 0)

    def test_typed_method_arguments(self):
        """Arguments are encoded as the method's InputArguments declare them (multiply takes Int32 here);
        values that do not fit get an error naming the argument."""
        srv = self.server(extra=["--multiply", "Int32"])
        cfg = reference_config(srv.url)
        cfg["mapping"][0]["rpc_methods"] += [{"method": m, "arguments": []} for m in ("scale", "greet", "sum", "echo", "configure")]
        gw = self.gateway(connectors=[opcua_connector(cfg)]).start()
        wait_for(lambda: self.platform.telemetry("Demo Device"), 20, what="OPC-UA telemetry")

        def result(rid, method, params):
            return self.rpc(rid, method, params)["data"]["result"]

        self.assertEqual(result(1, "multiply", [7, 8]), {"result": 56})
        self.assertEqual(result(2, "multiply", None), {"result": 8})  # the configured arguments 2 and 4
        self.assertEqual(result(3, "multiply", [7, 3000000000]),
                         {"error": "multiply: argument 2 'b' (Int32): 3000000000 out of range (-2147483648..2147483647)"})
        self.assertEqual(result(4, "multiply", ["x", 2]),
                         {"error": "multiply: argument 1 'a' (Int32): \"x\" expected an integer"})
        self.assertEqual(result(5, "multiply", [1, 2, 3]), {"error": "multiply takes 2 arguments, got 3"})
        self.assertEqual(result(6, "multiply", ["6", 7.0]), {"result": 42})  # integral text and reals fit
        # by the declared names; a name not given takes the configured argument (b = 4)
        self.assertEqual(result(61, "multiply", {"b": 3, "a": 5}), {"result": 15})
        self.assertEqual(result(62, "multiply", {"a": 5}), {"result": 20})
        self.assertEqual(result(63, "multiply", {"a": 5, "c": 1}), {"error": "multiply has no argument 'c'"})
        self.assertEqual(result(7, "scale", [1000, 0.5]), {"result": 500.0})
        self.assertEqual(result(8, "scale", [-1, 2]),
                         {"error": "scale: argument 1 'raw' (UInt16): -1 out of range (0..65535)"})
        self.assertEqual(result(9, "greet", ["tbgw"]), {"result": "hello tbgw"})
        self.assertEqual(result(10, "sum", [[1, 2, 3]]), {"result": 6})
        self.assertEqual(result(11, "sum", [4, 5]), {"result": 9})  # the only argument is a list
        self.assertEqual(result(12, "sum", [[1, "z"]]),
                         {"error": "sum: argument 1 'values' (Int32[]): [1,\"z\"] element 2: expected an integer"})
        echo = [True, -5, 200, -300, 60000, -70000, 4000000000, -5000000000, 9000000000000000000, 1.5, 2.25,
                "text", "2024-01-02T03:04:05Z", "0a0bff"]
        self.assertEqual(result(13, "echo", echo),
                         {"result": echo[:12] + ["2024-01-02T03:04:05+00:00", "0a0bff"]})
        self.assertEqual(result(14, "echo", ["yes"] + echo[1:]),
                         {"error": "echo: argument 1 'boolean' (Boolean): \"yes\" expected true or false"})
        self.assertEqual(result(15, "echo", echo[:2] + [256] + echo[3:]),
                         {"error": "echo: argument 3 'byte' (Byte): 256 out of range (0..255)"})
        self.assertEqual(result(16, "echo", echo[:9] + [1e39] + echo[10:]),
                         {"error": "echo: argument 10 'float' (Float): 1e+39 out of range of Float"})
        self.assertEqual(result(17, "echo", echo[:13]), {"error": "echo: argument 14 'bytestring' (ByteString) is missing"})
        # a custom enumeration goes as Int32, Duration as Double: found through their supertypes
        self.assertEqual(result(18, "configure", [2, 1500]), {"result": "mode 2 (Int32) after 1500 ms (Double)"})
        self.assertEqual(result(19, "configure", [2.5, 1]),
                         {"error": "configure: argument 1 'mode' (Int32): 2.5 expected an integer"})
        self.assertEqual(gw.stop(), 0)

    def test_reserved_get_set_forms(self):
        """get/set params as the reference's users write them: node ids of every kind with and without
        ns=, keys, relative and absolute paths, the delimiters ' ', '=', ';', '; ' and stray spaces."""
        srv = self.server()
        gw = self.gateway(connectors=[opcua_connector(reference_config(srv.url))]).start()
        wait_for(lambda: self.platform.telemetry("Demo Device"), 20, what="OPC-UA telemetry")
        rid = [100]

        def result(method, params):
            rid[0] += 1
            return self.rpc(rid[0], method, params)["data"]["result"]

        cases = [  # (set params, get params, value read back)
            ("ns=1;i=9; 456.34", "ns=1;i=9", 456.34),
            ("ns=1;i=9;457.5", " ns=1;i=9; ", 457.5),
            ("ns=1;i=9 458", "ns=1;i=9;", 458),
            ("ns=1;s=Power; 241.5", "ns=1;s=Power", 241.5),
            ("ns=1;s=Power=242.5", "power", 242.5),
            ("ns=1;s=Frequency 61", "frequency", 61),
            ("ns=1;g=72962b91-fa75-4ae6-8d28-b404dc7daf63;=8", "ns=1;g=72962b91-fa75-4ae6-8d28-b404dc7daf63", 8),
            ("ns=1;b=dGJndw== changed", "ns=1;b=dGJndw==", "changed"),
            ("Power 243.5", "Power", 243.5),
            ("Power=244.5", "${Power}", 244.5),
            ("Power;245.5", "Root\\.Objects\\.MyObject\\.Power", 245.5),
            ("  Root\\.Objects\\.MyObject\\.Frequency ;= 62 ; ", "Frequency", 62),
            ("${ns=1;s=Power} 246.5", "${ns=1;s=Power}", 246.5),
            ("ns=1; s=Power; 247.5", "ns=1; s=Power", 247.5),
        ]
        for set_params, get_params, value in cases:
            self.assertEqual(result("set", set_params), {"value": value}, set_params)
            self.assertEqual(result("get", get_params), {"value": value}, get_params)
        # a namespace-0 node without ns=: the server's state (0 = Running)
        self.assertEqual(result("get", "i=2259"), {"value": 0})
        self.assertEqual(result("get", "ns=1;s=NoSuchNode"), {"error": "BadNodeIdUnknown"})
        self.assertEqual(result("set", "ns=1;i=9"),
                         {"error": "Method set requires parameters 'path value', 'path=value' or 'path;value'"})
        self.assertEqual(result("set", "NoSuchNode 1"), {"error": "Node not found"})
        self.assertEqual(gw.stop(), 0)

    def test_subscriptions_and_server_restart(self):
        srv = self.server()
        cfg = reference_config(srv.url, subscriptions=True)
        cfg["server"]["reconnectBackoffInitialDelay"] = 200
        cfg["mapping"][0]["timeseries"].append({"key": "counter", "type": "identifier",
                                                "value": "${ns=1;s=Counter}"})
        gw = self.gateway(connectors=[opcua_connector(cfg)]).start()

        def counters():
            return [v["counter"] for _, _, v in self.platform.telemetry("Demo Device") if "counter" in v]

        wait_for(lambda: len(counters()) >= 3, 20, what="three counter changes")
        c = counters()
        self.assertEqual(c, sorted(c))
        self.assertGreater(c[-1], c[0])
        first = self.platform.telemetry("Demo Device")[0][2]
        self.assertEqual(first.get("temperature"), 21.5)

        port = srv.port
        srv.stop()
        time.sleep(0.5)
        n = len(counters())
        self.server(port=port)
        wait_for(lambda: len(counters()) >= n + 3, 60, what="counter changes after the server restart")
        self.assertEqual(gw.stop(), 0)

    def test_rescans_keep_the_subscription(self):
        srv = self.server(extra=["--late", "3"])
        cfg = reference_config(srv.url, subscriptions=True)
        cfg["server"]["scanPeriodInMillis"] = 700
        cfg["mapping"][0]["timeseries"].append({"key": "late", "type": "path", "value": "${Late}"})
        gw = self.gateway(connectors=[opcua_connector(cfg)]).start()

        def values(key):
            return [v[key] for _, _, v in self.platform.telemetry("Demo Device") if key in v]

        wait_for(lambda: values("late"), 30, what="the node added on the server after 3 s")
        self.assertEqual(values("late"), [7.5])
        gw.wait_log("monitored items: 5 kept, 1 added, 0 removed")  # the late node joined the subscription
        gw.wait_log("monitored items: 6 kept, 0 added, 0 removed")  # and later rescans change nothing
        # the constant nodes were sent once, the device announced once, across all the rescans
        self.assertEqual(values("temperature"), [21.5])
        self.assertEqual(values("humidity"), [55.25])
        connects = [p for t, p in self.platform.all("v1/gateway/connect") if p.get("device") == "Demo Device"]
        self.assertEqual(len(connects), 1)
        self.assertEqual(gw.stop(), 0)

    def test_certificates_security_policies(self):
        pki = make_pki(os.path.join(self.workdir, "pki"))
        srv = self.server(pki=pki)
        for policy, mode in (("Basic256Sha256", "SignAndEncrypt"), ("Aes256_Sha256_RsaPss", "Sign"),
                             ("Basic128Rsa15", "SignAndEncrypt")):
            with self.subTest(policy=policy, mode=mode):
                self.platform.clear()
                cfg = reference_config(srv.url)
                cfg["server"]["security"] = policy
                # relative paths are resolved against the configuration folder
                cfg["server"]["identity"] = {"type": "cert.PEM", "cert": "../pki/client.pem",
                                             "privateKey": "../pki/client.key", "caCert": "../pki/ca.pem",
                                             "mode": mode}
                gw = self.gateway(connectors=[opcua_connector(cfg)]).start()
                tel = wait_for(lambda: self.platform.telemetry("Demo Device"), 30, what="telemetry over " + policy)
                self.assertEqual(tel[0][2]["temperature"], 21.5)
                reply = self.rpc(11, "multiply", [6, 7])
                self.assertEqual(reply["data"], {"result": {"result": 42}})
                gw.wait_log("SecurityPolicy %s %s, anonymous identity" % (policy, mode))
                self.assertEqual(gw.stop(), 0)

    def test_certificate_user_identity(self):
        """A server without anonymous logins: the gateway's cert.PEM identity logs in with an X509 user
        token and delivers values; a certificate the server does not trust is refused, named in the log."""
        pki = make_pki(os.path.join(self.workdir, "pki"))
        make_user_certs(pki)
        srv = self.server(pki=pki, x509_user=os.path.join(pki, "user.pem"))
        cfg = reference_config(srv.url)
        cfg["server"]["security"] = "Basic256Sha256"
        cfg["server"]["identity"] = {"type": "cert.PEM", "cert": "../pki/user.pem", "privateKey": "../pki/user.key",
                                     "caCert": "../pki/ca.pem", "mode": "SignAndEncrypt"}
        gw = self.gateway(connectors=[opcua_connector(cfg)]).start()
        tel = wait_for(lambda: self.platform.telemetry("Demo Device"), 30, what="telemetry with an X509 identity")
        self.assertEqual(tel[0][2]["temperature"], 21.5)
        self.assertEqual(self.rpc(12, "multiply", [3, 5])["data"], {"result": {"result": 15}})
        gw.wait_log("SecurityPolicy Basic256Sha256 SignAndEncrypt, X509 certificate identity")
        self.assertEqual(gw.stop(), 0)

        self.platform.clear()
        cfg["server"]["identity"].update({"cert": "../pki/rogue.pem", "privateKey": "../pki/rogue.key"})
        gw = self.gateway(connectors=[opcua_connector(cfg)]).start()
        gw.wait_log("the server refused the X509 certificate identity (BadIdentityTokenRejected)", 20)
        self.assertEqual(self.platform.telemetry("Demo Device"), [])
        self.assertEqual(gw.stop(), 0)

    def test_revoked_server_certificate(self):
        """caCert plus a CRL revoking the server's certificate: the gateway refuses the server."""
        pki = make_pki(os.path.join(self.workdir, "pki"))
        revoke_server_cert(pki)
        srv = self.server(pki=pki)
        cfg = reference_config(srv.url)
        cfg["server"]["security"] = "Basic256Sha256"
        cfg["server"]["identity"] = {"type": "cert.PEM", "cert": "../pki/client.pem",
                                     "privateKey": "../pki/client.key", "caCert": "../pki/ca.pem",
                                     "crl": "../pki/revoked.crl"}
        gw = self.gateway(connectors=[opcua_connector(cfg)]).start()
        gw.wait_log("the server certificate /CN=server (serial", 20)
        gw.wait_log("is revoked by its CA's certificate revocation list", 5)
        self.assertEqual(self.platform.telemetry("Demo Device"), [])
        self.assertEqual(gw.stop(), 0)

    def test_username_identity(self):
        srv = self.server(user="gw:secret")
        cfg = reference_config(srv.url)
        cfg["server"]["identity"] = {"type": "username", "username": "gw", "password": "secret"}
        gw = self.gateway(connectors=[opcua_connector(cfg)]).start()
        tel = wait_for(lambda: self.platform.telemetry("Demo Device"), 20, what="telemetry with username identity")
        self.assertEqual(tel[0][2]["temperature"], 21.5)
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
