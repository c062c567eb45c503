"""Every security type against a real mosquitto: usernamePassword (MQTT 5 and 3.1.1),
tlsAccessToken with server verification, X.509 client certificates, and a wrong CA refused."""

import os
import subprocess
import time

from tbgwtest import Broker, GatewayTestCase, Platform, free_port, test_connector, wait_for, wait_port, main


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d):
    ext = os.path.join(d, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for ca in ("ca", "otherca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=%s" % ca,
                "-keyout", ca + ".key", "-out", ca + ".pem", cwd=d)
    for name, cn in (("server", "localhost"), ("client", "gateway-client")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % cn, "-keyout", name + ".key",
                "-out", name + ".csr", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", name + ".pem", "-extfile", ext, cwd=d)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    os.chmod(d, 0o755)


class TlsBroker(Broker):
    def __init__(self, workdir, pki, require_cert):
        super().__init__(workdir, name="tls")
        self.pki = pki
        self.require_cert = require_cert

    def start(self):
        conf = os.path.join(self.workdir, "tls.conf")
        lines = ["listener %d 127.0.0.1" % self.port, "persistence false", "log_dest none",
                 "cafile %s/ca.pem" % self.pki, "certfile %s/server.pem" % self.pki,
                 "keyfile %s/server.key" % self.pki, "allow_anonymous true"]
        if self.require_cert:
            lines += ["require_certificate true", "use_identity_as_username true"]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.workdir, 0o755)
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)
        return self


class Security(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.pki = os.path.join(self.workdir, "pki")
        os.makedirs(self.pki)
        make_pki(self.pki)

    def tls_platform(self, require_cert):
        b = TlsBroker(self.workdir, self.pki, require_cert).start()
        self.extra.append(b)
        # the recorder listens on a plain listener of its own broker: bridge-free, it connects with TLS
        return b

    def record_tls(self, broker, cert=False):
        import paho.mqtt.client as mqtt
        p = Platform(broker)
        p.client = None
        c = mqtt.Client(client_id="platform-tls", protocol=mqtt.MQTTv5)
        c.tls_set(ca_certs=os.path.join(self.pki, "ca.pem"),
                  certfile=os.path.join(self.pki, "client.pem") if cert else None,
                  keyfile=os.path.join(self.pki, "client.key") if cert else None)
        c.on_message = p._on_message
        c.on_connect = lambda cl, u, f, rc, props=None: cl.subscribe(
            "v1/#", options=mqtt.SubscribeOptions(qos=1, noLocal=True))
        c.connect("127.0.0.1", broker.port, 30)
        c.loop_start()
        p.client = c
        wait_for(lambda: c.is_connected(), 10)
        time.sleep(0.2)
        self.extra.append(p)
        return p

    def test_tls_access_token_verifies_server(self):
        b = self.tls_platform(False)
        rec = self.record_tls(b)
        gw = self.gateway(connectors=[test_connector(messages=3)],
                          thingsboard={"port": b.port, "security": {"type": "tlsAccessToken", "accessToken": "T",
                                                                     "caCert": os.path.join(self.pki, "ca.pem")}})
        gw.start()
        wait_for(lambda: len(rec.telemetry("Test Device 1")) >= 3, 15, what="telemetry over TLS")
        self.assertEqual(gw.stop(), 0)
        # a CA that did not sign the server certificate: refused, explained, retried
        gw2 = self.gateway(connectors=[test_connector(messages=1)],
                           thingsboard={"port": b.port, "security": {"type": "tlsAccessToken", "accessToken": "T",
                                                                      "caCert": os.path.join(self.pki, "otherca.pem")}})
        gw2.start()
        gw2.wait_log("TLS", 15)
        wait_for(lambda: "reconnecting to ThingsBoard" in gw2.log(), 10)
        self.assertNotIn("connected to ThingsBoard at", gw2.log())
        self.assertEqual(gw2.stop(), 0)

    def test_x509_client_certificate(self):
        b = self.tls_platform(True)
        rec = self.record_tls(b, cert=True)
        gw = self.gateway(connectors=[test_connector(messages=2)],
                          thingsboard={"port": b.port, "security": {
                              "type": "tlsPrivateKey", "caCert": os.path.join(self.pki, "ca.pem"),
                              "cert": os.path.join(self.pki, "client.pem"),
                              "privateKey": os.path.join(self.pki, "client.key")}})
        gw.start()
        wait_for(lambda: len(rec.telemetry("Test Device 1")) >= 2, 15, what="telemetry with a client certificate")
        self.assertEqual(gw.stop(), 0)

    def test_username_password_mqtt5_and_311(self):
        b = Broker(self.workdir, passwords={"gw-user": "s3cret"}, name="basic").start()
        self.extra.append(b)
        import paho.mqtt.client as mqtt
        rec = Platform(b)
        c = mqtt.Client(client_id="platform-basic", protocol=mqtt.MQTTv5)
        c.username_pw_set("gw-user", "s3cret")
        c.on_message = rec._on_message
        c.on_connect = lambda cl, u, f, rc, props=None: cl.subscribe(
            "v1/#", options=mqtt.SubscribeOptions(qos=1, noLocal=True))
        c.connect("127.0.0.1", b.port, 30)
        c.loop_start()
        rec.client = c
        self.extra.append(rec)
        wait_for(lambda: c.is_connected(), 10)
        for version, prefix in ((5, "V5 "), (4, "V311 ")):
            gw = self.gateway(connectors=[test_connector(messages=2, deviceNamePrefix=prefix)],
                              thingsboard={"port": b.port, "mqttVersion": version,
                                           "security": {"type": "usernamePassword", "clientId": "gw-%d" % version,
                                                        "username": "gw-user", "password": "s3cret"}})
            gw.start()
            wait_for(lambda: len(rec.telemetry(prefix + "1")) >= 2, 15, what="telemetry with MQTT %d" % version)
            self.assertEqual(gw.stop(), 0)
        gw = self.gateway(connectors=[test_connector(messages=1)],
                          thingsboard={"port": b.port, "security": {"type": "usernamePassword",
                                                                     "username": "gw-user", "password": "wrong"}})
        gw.start()
        gw.wait_log("check clientId/username/password", 15)
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
