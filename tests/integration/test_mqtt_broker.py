"""MQTT connector broker handling: basic authentication with MQTT 3.1.1, reconnection with
re-subscription after the external broker restarts, refused credentials, TLS with a CA, and TLS with a
client certificate and the broker's name checked."""

import json
import os
import subprocess
import time

import paho.mqtt.client as mqtt

from tbgwtest import GatewayTestCase, free_port, wait_for, wait_port, main


class Mosquitto:
    """A mosquitto with extra configuration lines. `user root` keeps it able to read the password
    file and certificates in the test's private folder (mosquitto drops privileges otherwise)."""

    def __init__(self, workdir, name, lines, port=None):
        self.port = port or free_port()
        self.conf = os.path.join(workdir, name + ".conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(["listener %d 127.0.0.1" % self.port, "persistence false", "log_dest none",
                               "user root"] + lines) + "\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None


def password_broker(workdir, users, port=None):
    pw = os.path.join(workdir, "ext.passwd")
    if not os.path.exists(pw):
        open(pw, "w").close()
        for user, password in users.items():
            subprocess.run(["mosquitto_passwd", "-b", pw, user, password], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Mosquitto(workdir, "ext", ["allow_anonymous false", "password_file " + pw], port).start()


def mapping():
    return [{"topicFilter": "th/+", "subscriptionQos": 1, "converter": {
        "type": "json",
        "deviceInfo": {"deviceNameExpressionSource": "topic", "deviceNameExpression": "(?<=th/).+"},
        "timeseries": [{"type": "double", "key": "t", "value": "${t}"}]}}]


def publish(port, topic, payload, auth=None, tls_ca=None):
    c = mqtt.Client(client_id="pub-%d-%f" % (os.getpid(), time.time()))
    if auth:
        c.username_pw_set(*auth)
    if tls_ca:
        c.tls_set(ca_certs=tls_ca)
    c.connect("127.0.0.1", port, 30)
    c.loop_start()
    c.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


class BrokerHandling(GatewayTestCase):
    def test_basic_auth_v311_reconnect_and_resubscribe(self):
        ext = password_broker(self.workdir, {"gw": "secret", "dev": "devpw"})
        self.extra.append(ext)
        conf = {"broker": {"host": "127.0.0.1", "port": ext.port, "version": "3.1.1", "clientId": "gw-basic",
                           "security": {"type": "basic", "username": "gw", "password": "secret"}},
                "mapping": mapping()}
        gw = self.gateway(connectors=[{"type": "mqtt", "name": "Ext", "config": conf}]).start()
        gw.wait_log("connected to 127.0.0.1:%d as gw-basic" % ext.port, 15)
        time.sleep(0.3)
        publish(ext.port, "th/A", {"t": 1.5}, auth=("dev", "devpw"))
        tel = wait_for(lambda: self.platform.telemetry("A"), 10, what="telemetry before restart")
        self.assertEqual(tel[0][2], {"t": 1.5})
        # the external broker goes away and comes back on the same port: reconnect + resubscribe
        ext.stop()
        gw.wait_log("disconnected from 127.0.0.1:%d" % ext.port, 10)
        ext2 = password_broker(self.workdir, {}, port=ext.port)
        self.extra.append(ext2)
        wait_for(lambda: gw.log().count("connected to 127.0.0.1:%d as gw-basic" % ext.port) >= 2, 40,
                 what="reconnect")
        time.sleep(0.3)
        publish(ext.port, "th/B", {"t": 2.5}, auth=("dev", "devpw"))
        tel = wait_for(lambda: self.platform.telemetry("B"), 10, what="telemetry after restart")
        self.assertEqual(tel[0][2], {"t": 2.5})
        self.assertEqual(gw.stop(), 0)

    def test_refused_credentials_are_reported_and_retried(self):
        ext = password_broker(self.workdir, {"gw": "secret"})
        self.extra.append(ext)
        conf = {"broker": {"host": "127.0.0.1", "port": ext.port, "version": 5,
                           "security": {"type": "basic", "username": "gw", "password": "wrong"}},
                "mapping": mapping()}
        gw = self.gateway(connectors=[{"type": "mqtt", "name": "Ext", "config": conf}]).start()
        gw.wait_log("refused the connection", 15)
        # the gateway itself keeps running and serving the platform
        wait_for(lambda: "connected to ThingsBoard" in gw.log(), 10)
        self.assertIsNone(gw.proc.poll())
        self.assertEqual(gw.stop(), 0)

    def test_tls_with_ca(self):
        d = os.path.join(self.workdir, "tls")
        os.makedirs(d)

        def run(*args):
            subprocess.run(args, cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
        broker = Mosquitto(self.workdir, "tls", ["allow_anonymous true", "cafile %s/ca.crt" % d,
                                                 "certfile %s/server.crt" % d, "keyfile %s/server.key" % d])
        port = broker.port
        broker.start()
        try:
            conf = {"broker": {"host": "127.0.0.1", "port": port, "security": {
                "type": "certificates", "pathToCACert": os.path.join(d, "ca.crt")}}, "mapping": mapping()}
            gw = self.gateway(connectors=[{"type": "mqtt", "name": "Ext", "config": conf}]).start()
            gw.wait_log("connected to 127.0.0.1:%d" % port, 15)
            time.sleep(0.3)
            publish(port, "th/S", {"t": 3}, tls_ca=os.path.join(d, "ca.crt"))
            tel = wait_for(lambda: self.platform.telemetry("S"), 10, what="telemetry over TLS")
            self.assertEqual(tel[0][2], {"t": 3.0})
            self.assertEqual(gw.stop(), 0)
        finally:
            broker.stop()

    def test_tls_client_certificate_and_name_check(self):
        """A broker that requires a client certificate; the broker's certificate names another host, so
        the name check refuses it until `insecure` lifts that check."""
        d = os.path.join(self.workdir, "mtls")
        os.makedirs(d)

        def run(*args):
            subprocess.run(args, cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")
        for name, cn in (("server", "broker.invalid"), ("client", "gw")):
            run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout", name + ".key",
                "-out", name + ".csr")
            with open(os.path.join(d, name + ".cnf"), "w") as f:
                f.write("subjectAltName=DNS:%s\n" % cn)
            run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", name + ".cnf", "-out", name + ".crt")
        broker = Mosquitto(self.workdir, "mtls", ["allow_anonymous true", "cafile %s/ca.crt" % d,
                                                  "certfile %s/server.crt" % d, "keyfile %s/server.key" % d,
                                                  "require_certificate true"])
        port = broker.port
        broker.start()
        try:
            sec = {"type": "certificates", "pathToCACert": os.path.join(d, "ca.crt"),
                   "pathToClientCert": os.path.join(d, "client.crt"),
                   "pathToPrivateKey": os.path.join(d, "client.key")}
            conf = {"broker": {"host": "127.0.0.1", "port": port, "security": sec}, "mapping": mapping()}
            gw = self.gateway(connectors=[{"type": "mqtt", "name": "Ext", "config": conf}]).start()
            gw.wait_log("certificate verification", 15)  # 127.0.0.1 is not broker.invalid
            self.assertNotIn("connected to 127.0.0.1:%d as" % port, gw.log())
            self.assertEqual(gw.stop(), 0)
            sec["insecure"] = True
            gw = self.gateway(connectors=[{"type": "mqtt", "name": "Ext2", "config": conf}]).start()
            gw.wait_log("connected to 127.0.0.1:%d" % port, 15)
            time.sleep(0.3)
            c = mqtt.Client(client_id="pub-mtls")
            c.tls_set(ca_certs=os.path.join(d, "ca.crt"), certfile=os.path.join(d, "client.crt"),
                      keyfile=os.path.join(d, "client.key"))
            c.tls_insecure_set(True)
            c.connect("127.0.0.1", port, 30)
            c.loop_start()
            c.publish("th/M", json.dumps({"t": 4}), qos=1).wait_for_publish(5)
            c.loop_stop()
            c.disconnect()
            tel = wait_for(lambda: self.platform.telemetry("M"), 10, what="telemetry over mutual TLS")
            self.assertEqual(tel[0][2], {"t": 4.0})
            self.assertEqual(gw.stop(), 0)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
