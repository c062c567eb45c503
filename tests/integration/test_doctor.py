"""`tbgw doctor` against real brokers, ports, certificates, folders and serial ports: every check
passes on a good configuration, and each failure is provoked and named with its cause and fix."""

import datetime
import json
import os
import socket
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tbgwtest import TBGW_BIN, Broker, GatewayTestCase, free_port, wait_for, main


def write_cert(d, name, not_before, not_after, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    cp, kp = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    with open(cp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cp, kp


class Doctor(GatewayTestCase):
    def doctor(self, tb=None, storage=None, connectors=(), files=None, text=False):
        cfgdir = os.path.join(self.workdir, "doc-%d" % len(os.listdir(self.workdir)))
        os.makedirs(cfgdir)
        conf = {"thingsboard": {"host": "127.0.0.1", "port": self.broker.port,
                                "security": {"type": "accessToken", "accessToken": "TOKEN"}},
                "storage": storage or {"type": "memory"}, "connectors": []}
        conf["thingsboard"].update(tb or {})
        for i, (ctype, cfg) in enumerate(connectors):
            name = "c%d.json" % i
            conf["connectors"].append({"type": ctype, "name": "C%d" % i, "configuration": name})
            with open(os.path.join(cfgdir, name), "w") as f:
                json.dump(cfg, f)
        for name, content in (files or {}).items():
            with open(os.path.join(cfgdir, name), "w") as f:
                f.write(content)
        path = os.path.join(cfgdir, "tb_gateway.json")
        with open(path, "w") as f:
            json.dump(conf, f, indent=2)
        args = [TBGW_BIN, "doctor", "-c", path] + ([] if text else ["--json"])
        p = subprocess.run(args, capture_output=True, text=True, timeout=60)
        return p.returncode, (p.stdout if text else json.loads(p.stdout))

    def find(self, items, check, status, text=""):
        hits = [i for i in items if i["check"] == check and i["status"] == status and text in i["message"]]
        self.assertTrue(hits, "no %s %s %r in %s" % (status, check, text, json.dumps(items, indent=1)))
        return hits[0]

    def test_good_configuration_passes_everything(self):
        ext = Broker(self.workdir, name="ext").start()
        self.extra.append(ext)
        slave = socket.socket()
        slave.bind(("127.0.0.1", 0))
        slave.listen()
        self.addCleanup(slave.close)
        rc, items = self.doctor(
            storage={"type": "file", "data_folder_path": os.path.join(self.workdir, "data", "store")},
            connectors=[("mqtt", {"broker": {"host": "127.0.0.1", "port": ext.port}, "mapping": []}),
                        ("modbus", {"master": {"slaves": [{"host": "127.0.0.1", "port": slave.getsockname()[1],
                                                           "type": "tcp", "deviceName": "Meter", "unitId": 1,
                                                           "timeseries": []}]}})])
        self.assertEqual(rc, 0, json.dumps(items, indent=1))
        self.assertFalse([i for i in items if i["status"] == "fail"])
        self.find(items, "platform.mqtt", "ok", "accepted")
        self.find(items, "storage", "ok", "will be created")
        self.find(items, "connector.mqtt", "ok", "accepts TCP")
        self.find(items, "connector.modbus", "ok", "slave Meter")
        rc, out = self.doctor(text=True)
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"(?m)^ok\s+platform\.mqtt\s+MQTT CONNECT")
        self.assertRegex(out, r"(?m)^warn\s+storage\s+memory storage")

    def test_each_platform_failure_is_named(self):
        rc, items = self.doctor(tb={"security": {"type": "accessToken", "accessToken": "TOK\n"}})
        self.assertEqual(rc, 1)
        self.assertIn("line break", self.find(items, "credentials", "fail")["message"])
        rc, items = self.doctor(tb={"host": "no-such-host.invalid"})
        self.assertEqual(rc, 1)
        self.find(items, "platform.dns", "fail", "cannot resolve")
        rc, items = self.doctor(tb={"port": free_port()})
        self.assertIn("nothing listens", self.find(items, "platform.tcp", "fail", "Connection refused")["fix"])
        locked = Broker(self.workdir, name="locked", passwords={"gw": "secret"}).start()
        self.extra.append(locked)
        rc, items = self.doctor(tb={"port": locked.port})
        item = self.find(items, "platform.mqtt", "fail", "refused")
        self.assertIn("credentials", item["fix"])
        rc, items = self.doctor(tb={"port": locked.port, "security": {"type": "usernamePassword", "username": "gw",
                                                                       "password": "secret"}})
        self.assertEqual(rc, 0, json.dumps(items, indent=1))
        self.find(items, "platform.mqtt", "ok", "accepted")

    def test_tls_and_certificate_files(self):
        d = os.path.join(self.workdir, "pki")
        os.makedirs(d)
        now = datetime.datetime.utcnow()
        expired, expired_key = write_cert(d, "expired", now - datetime.timedelta(days=10),
                                          now - datetime.timedelta(days=1))
        good, good_key = write_cert(d, "good", now - datetime.timedelta(days=1), now + datetime.timedelta(days=365))
        soon, _ = write_cert(d, "soon", now - datetime.timedelta(days=1), now + datetime.timedelta(days=5))
        rc, items = self.doctor(tb={"security": {"type": "tlsPrivateKey", "cert": expired, "privateKey": expired_key}})
        self.assertEqual(rc, 1)
        self.find(items, "credentials", "fail", "has expired")
        rc, items = self.doctor(tb={"security": {"type": "tlsPrivateKey", "cert": good, "privateKey": expired_key}})
        self.find(items, "credentials", "fail", "does not match")
        self.find(items, "credentials", "ok", "is valid for")
        rc, items = self.doctor(tb={"security": {"type": "tlsPrivateKey", "cert": soon, "privateKey": good_key}})
        self.find(items, "credentials", "warn", "expires in")
        # A plain MQTT port asked for TLS: the handshake fails with a reason.
        rc, items = self.doctor(tb={"security": {"type": "tlsAccessToken", "accessToken": "T", "caCert": good}})
        self.find(items, "platform.tls", "fail", "TLS handshake")

    def test_tls_platform_verified_and_wrong_ca(self):
        from test_platform_security import TlsBroker, make_pki
        pki = os.path.join(self.workdir, "tlspki")
        os.makedirs(pki)
        make_pki(pki)
        b = TlsBroker(self.workdir, pki, require_cert=False).start()
        self.extra.append(b)
        sec = {"type": "tlsAccessToken", "accessToken": "T", "caCert": os.path.join(pki, "ca.pem")}
        rc, items = self.doctor(tb={"port": b.port, "security": sec})
        self.assertEqual(rc, 0, json.dumps(items, indent=1))
        # the test CA's certificates live two days: verified, with a warning about their expiry
        self.find(items, "platform.tls", "warn", "verified for this host name; it expires in")
        self.find(items, "platform.mqtt", "ok", "accepted")
        sec["caCert"] = os.path.join(pki, "otherca.pem")
        rc, items = self.doctor(tb={"port": b.port, "security": sec})
        item = self.find(items, "platform.tls", "fail", "server certificate")
        self.assertIn("caCert", item["fix"])

    def test_storage_and_serial_ports(self):
        blocker = os.path.join(self.workdir, "not-a-folder")
        open(blocker, "w").close()
        rc, items = self.doctor(storage={"type": "sqlite", "data_file_path": os.path.join(blocker, "db", "x.db")})
        self.assertEqual(rc, 1)
        self.find(items, "storage", "fail", "is not a folder")
        rc, items = self.doctor(storage={"type": "sqlite", "data_file_path": os.path.join(self.workdir, "x.db"),
                                         "size_limit": 1e12, "max_db_amount": 1000})
        self.find(items, "storage.disk", "warn", "may grow to")
        pty = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s/ttyA" % self.workdir,
                                "pty,raw,echo=0,link=%s/ttyB" % self.workdir], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(pty.kill)
        wait_for(lambda: os.path.exists(self.workdir + "/ttyA"), 10, what="pty")
        slaves = [{"type": "serial", "port": self.workdir + "/ttyA", "deviceName": "Rtu", "unitId": 1},
                  {"type": "serial", "port": "/dev/ttyNOPE9", "deviceName": "Gone", "unitId": 2}]
        rc, items = self.doctor(connectors=[("modbus", {"master": {"slaves": slaves}})])
        self.assertEqual(rc, 1)
        self.find(items, "connector.modbus", "ok", "readable and writable")
        self.assertIn("plug the adapter in",
                      self.find(items, "connector.modbus", "fail", "/dev/ttyNOPE9 does not exist")["fix"])

    def test_opcua_endpoint(self):
        from test_opcua_connector import OpcuaServer
        srv = OpcuaServer(self.workdir, user="gw:secret").start()
        self.extra.append(srv)
        good = {"server": {"url": srv.url, "identity": {"type": "username", "username": "gw", "password": "secret"}},
                "mapping": []}
        bad = {"server": {"url": srv.url, "identity": {"type": "username", "username": "gw", "password": "wrong"}},
               "mapping": []}
        gone = {"server": {"url": "opc.tcp://127.0.0.1:%d/" % free_port()}, "mapping": []}
        rc, items = self.doctor(connectors=[("opcua", good), ("opcua", bad), ("opcua", gone)])
        self.assertEqual(rc, 1)
        self.find(items, "connector.opcua", "ok", "session opened")
        self.find(items, "connector.opcua", "fail", "OPC-UA " + srv.url)
        self.find(items, "connector.opcua", "fail", "Connection refused")

    def test_configuration_errors_name_the_position(self):
        rc, items = self.doctor(tb={"port": "not a number"})
        self.assertEqual(rc, 1)
        item = self.find(items, "config", "fail", "tb_gateway.json:")
        self.assertRegex(item["message"], r"tb_gateway\.json:\d+:\d+: thingsboard\.port")


if __name__ == "__main__":
    main()
