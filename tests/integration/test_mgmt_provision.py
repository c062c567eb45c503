"""Provisioning (spec §1.10) against a scripted responder: a paho client on a mosquitto that
answers /provision/request. The broker's ACLs let only the provisioned credentials publish
gateway data, so data arriving proves the credentials are used."""

import json
import os
import shutil
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

from tbgwtest import Broker, GatewayTestCase, Platform, free_port, test_connector, wait_for, main


def load_text(path):
    with open(path) as f:
        return f.read()


def make_pki(d):
    def openssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ca", "-keyout", "ca.key",
            "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-out", "server.pem", "-extfile", "san.ext")
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    os.chmod(d, 0o755)


class AclBroker(Broker):
    """mosquitto where only the listed users may use v1/# (the provisioning session gets /provision/#)."""

    def __init__(self, workdir, users):
        super().__init__(workdir, name="acl")
        self.users = users
        self.extra = []  # more listener lines

    def start(self):
        acl = os.path.join(self.workdir, "acl")
        with open(acl, "w") as f:
            f.write("topic readwrite #\n")  # anonymous: the recorder and the responder
            f.write("user provision\ntopic readwrite /provision/#\n")
            for u in self.users:
                f.write("user %s\ntopic readwrite v1/#\n" % u)
        os.chmod(acl, 0o644)
        os.chmod(self.workdir, 0o755)
        conf = os.path.join(self.workdir, "acl.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
                    "acl_file %s\n" % (self.port, acl))
            f.write("".join(line + "\n" for line in self.extra))
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        from tbgwtest import wait_port
        wait_port(self.port)
        return self


class Responder:
    """Answers provisioning requests like ThingsBoard: answer(request) -> response dict or None."""

    def __init__(self, port, answer):
        self.requests = []
        self.answer = answer
        self.client = mqtt.Client(client_id="prov-responder-%d" % os.getpid())
        self.client.on_message = self._on
        self.client.connect("127.0.0.1", port, 30)
        self.client.subscribe("/provision/request", qos=1)
        self.client.loop_start()
        wait_for(lambda: self.client.is_connected(), 10)
        time.sleep(0.2)

    def _on(self, client, userdata, msg):
        req = json.loads(msg.payload)
        self.requests.append(req)
        resp = self.answer(req)
        if resp is not None:
            client.publish("/provision/response", json.dumps(resp), qos=1)

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


class Provisioning(GatewayTestCase):
    USERS = ("GW_TOKEN_42", "gwuser")

    def setUp(self):
        import tempfile
        self.workdir = tempfile.mkdtemp(prefix="tbgw-it-")
        self.broker = AclBroker(self.workdir, self.USERS).start()
        self.platform = Platform(self.broker).start()
        self.gateways = []
        self.extra = []

    def prov_gateway(self, prov):
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)])
        with open(gw.config_path) as f:
            conf = json.load(f)
        del conf["thingsboard"]["security"]
        conf["thingsboard"]["provisioning"] = prov
        with open(gw.config_path, "w") as f:
            json.dump(conf, f)
        return gw

    def test_access_token_saved_and_reused(self):
        def answer(req):
            if req["provisionDeviceKey"] != "KEY" or req["provisionDeviceSecret"] != "SECRET":
                return {"status": "NOT_FOUND", "errorMsg": "Provision data was not found!"}
            return {"credentialsType": "ACCESS_TOKEN", "credentialsValue": "GW_TOKEN_42", "status": "SUCCESS"}
        resp = Responder(self.broker.port, answer)
        self.extra.append(resp)
        gw = self.prov_gateway({"type": "ACCESS_TOKEN", "provisionDeviceKey": "KEY",
                                "provisionDeviceSecret": "SECRET", "deviceName": "My Gateway"})
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 20, what="data with the provisioned token")
        req = resp.requests[0]
        self.assertEqual(req["deviceName"], "My Gateway")
        self.assertEqual(req["credentialsType"], "ACCESS_TOKEN")
        self.assertIs(req["gateway"], True)
        self.assertRegex(req["token"], r"^[a-z]{15}$")
        saved = json.loads(load_text(os.path.join(gw.cfgdir, ".credentials")))
        self.assertEqual(saved, {"credentialsType": "ACCESS_TOKEN", "credentialsValue": "GW_TOKEN_42",
                                 "status": "SUCCESS"})
        self.assertEqual(os.stat(os.path.join(gw.cfgdir, ".credentials")).st_mode & 0o777, 0o600)
        self.assertEqual(gw.stop(), 0)
        # next start: no new request, same credentials
        self.platform.clear()
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 20)
        self.assertEqual(len(resp.requests), 1)
        self.assertIn("using provisioned credentials", gw.log())
        self.assertEqual(gw.stop(), 0)

    def test_environment_provisioning_and_credentials_removal(self):
        resp = Responder(self.broker.port, lambda req: {"credentialsType": "ACCESS_TOKEN", "status": "SUCCESS",
                                                        "credentialsValue": req["token"]})
        self.extra.append(resp)
        # a file with placeholder credentials, as in the docker image: the environment provisions instead
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)], token="PLACEHOLDER")
        gw.start(env={"TB_GW_PROVISIONING_DEVICE_KEY": "K", "TB_GW_PROVISIONING_DEVICE_SECRET": "S",
                      "TB_GW_PROVISIONING_DEVICE_NAME": "Env Gateway",
                      "TB_GW_PROVISIONING_DEVICE_ACCESS_TOKEN": "GW_TOKEN_42"})
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 20)
        self.assertEqual(resp.requests[0]["deviceName"], "Env Gateway")
        self.assertEqual(resp.requests[0]["token"], "GW_TOKEN_42")
        cred = os.path.join(gw.cfgdir, ".credentials")
        self.assertTrue(os.path.exists(cred))
        self.platform.publish("v1/devices/me/rpc/request/1", {"method": "gateway_remove_provisioned_credentials"})
        r = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/1"), 10)[0][1]
        self.assertEqual(r["code"], 200)
        self.assertFalse(os.path.exists(cred))
        self.platform.publish("v1/devices/me/rpc/request/2", {"method": "gateway_remove_provisioned_credentials"})
        r = wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/2"), 10)[0][1]
        self.assertEqual(r["code"], 404)
        self.assertEqual(gw.stop(), 0)

    def test_mqtt_basic(self):
        def answer(req):
            self.assertEqual(req["credentialsType"], "MQTT_BASIC")
            return {"credentialsType": "MQTT_BASIC", "status": "SUCCESS",
                    "credentialsValue": {"clientId": req["clientId"], "userName": "gwuser",
                                         "password": req["password"]}}
        resp = Responder(self.broker.port, answer)
        self.extra.append(resp)
        gw = self.prov_gateway({"type": "MQTT_BASIC", "provisionDeviceKey": "K", "provisionDeviceSecret": "S",
                                "client_id": "gw-client-1", "password": "pw"})
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 20)
        self.assertEqual(resp.requests[0]["clientId"], "gw-client-1")
        self.assertEqual(resp.requests[0]["password"], "pw")
        self.assertRegex(resp.requests[0]["username"], r"^[a-z]{15}$")
        self.assertRegex(resp.requests[0]["deviceName"], r"^Gateway [a-z]{5}$")
        saved = json.loads(load_text(os.path.join(gw.cfgdir, ".credentials")))
        self.assertEqual(saved["credentialsValue"]["userName"], "gwuser")
        self.assertEqual(gw.stop(), 0)

    def test_x509_generates_key_and_certificate_used_over_tls(self):
        pki = os.path.join(self.workdir, "pki")
        os.makedirs(pki)
        make_pki(pki)
        resp = Responder(self.broker.port, lambda req: {"credentialsType": "X509_CERTIFICATE", "status": "SUCCESS",
                                                        "credentialsValue": req["hash"]})
        self.extra.append(resp)
        gw = self.prov_gateway({"type": "X509_CERTIFICATE", "provisionDeviceKey": "K", "provisionDeviceSecret": "S",
                                "deviceName": "X Gateway", "caCert": os.path.join(pki, "ca.pem")})
        gw.start()
        wait_for(lambda: resp.requests, 20)
        gw.wait_log("provisioned; credentials saved")
        gw.kill()  # its main session needs TLS, which this plain listener does not speak
        pem = resp.requests[0]["hash"]
        self.assertTrue(pem.startswith("-----BEGIN CERTIFICATE-----"), pem[:40])
        self.assertEqual(load_text(os.path.join(gw.cfgdir, "cert.pem")), pem)
        self.assertEqual(os.stat(os.path.join(gw.cfgdir, "key.pem")).st_mode & 0o777, 0o600)
        out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", os.path.join(gw.cfgdir, "cert.pem")],
                             capture_output=True, text=True)
        self.assertIn("X Gateway", out.stdout)
        saved = json.loads(load_text(os.path.join(gw.cfgdir, ".credentials")))
        self.assertEqual(saved["caCert"], os.path.join(pki, "ca.pem"))
        self.assertEqual(saved["credentialsType"], "X509_CERTIFICATE")
        # the platform now trusts the provisioned certificate on a TLS listener that requires client
        # certificates; the next start uses .credentials and its data arrives
        with open(os.path.join(pki, "trusted.pem"), "w") as f:
            f.write(load_text(os.path.join(pki, "ca.pem")) + pem)
        os.chmod(os.path.join(pki, "trusted.pem"), 0o644)
        tls_port = free_port()
        self.broker.stop()
        self.broker.extra = ["listener %d 127.0.0.1" % tls_port, "cafile %s/trusted.pem" % pki,
                             "certfile %s/server.pem" % pki, "keyfile %s/server.key" % pki,
                             "require_certificate true", "use_identity_as_username true"]
        self.broker.users = ("X Gateway",)
        self.broker.start()
        wait_for(lambda: self.platform.client.is_connected(), 10)
        with open(gw.config_path) as f:
            conf = json.load(f)
        conf["thingsboard"]["port"] = tls_port
        with open(gw.config_path, "w") as f:
            json.dump(conf, f)
        time.sleep(0.3)
        self.platform.clear()
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 20, what="data over TLS with the provisioned cert")
        self.assertIn("using provisioned credentials", gw.log())
        self.assertEqual(len(resp.requests), 1)
        self.assertEqual(gw.stop(), 0)

    def test_acl_refuses_other_credentials(self):
        # control: the broker really keeps gateway data from unprovisioned credentials
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=100)], token="NOT_PROVISIONED")
        gw.start()
        gw.wait_log("connected to ThingsBoard")
        time.sleep(2)
        self.assertEqual(self.platform.telemetry(), [])
        gw.kill()

    def test_refusal_is_explained(self):
        resp = Responder(self.broker.port, lambda req: {"status": "NOT_FOUND",
                                                        "errorMsg": "Provision data was not found!"})
        self.extra.append(resp)
        gw = self.prov_gateway({"type": "ACCESS_TOKEN", "provisionDeviceKey": "BAD", "provisionDeviceSecret": "S"})
        gw.start()
        self.assertEqual(gw.proc.wait(20), 1)
        self.assertIn("provisioning refused by ThingsBoard: Provision data was not found!", gw.log())
        self.assertFalse(os.path.exists(os.path.join(gw.cfgdir, ".credentials")))

    def test_timeout_is_explained(self):
        gw = self.prov_gateway({"type": "ACCESS_TOKEN", "provisionDeviceKey": "K", "provisionDeviceSecret": "S",
                                "timeoutSeconds": 2})
        gw.start()
        self.assertEqual(gw.proc.wait(20), 1)
        self.assertIn("provisioning: no answer from 127.0.0.1:%d on /provision/response within 2 s" % self.broker.port,
                      gw.log())


if __name__ == "__main__":
    main()
