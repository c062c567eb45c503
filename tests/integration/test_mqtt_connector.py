"""MQTT connector end to end: an external mosquitto broker with simulated devices, tbgw with the
reference mqtt.json (only broker.port changed), and the platform broker recording what arrives.
Every mapping and request of the reference configuration is exercised with exact messages."""

import copy
import json
import os
import threading
import time

import paho.mqtt.client as mqtt

from tbgwtest import BUILD_DIR, SOURCE_DIR, Broker, GatewayTestCase, wait_for, main

REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "mqtt.json")
PLUGIN = os.path.join(BUILD_DIR, "plugins", "custom_converter_example.so")


class Devices:
    """A client on the external broker: publishes as devices and records what the gateway sends."""

    def __init__(self, broker):
        self.broker = broker
        self.lock = threading.Lock()
        self.messages = []
        self.responders = {}  # topic prefix -> function(topic, payload) -> (topic, payload) or None
        self.client = mqtt.Client(client_id="devices-%d" % os.getpid(), protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message

    def start(self):
        self.client.connect("127.0.0.1", self.broker.port, 30)
        self.client.subscribe("#", qos=1)
        self.client.loop_start()
        wait_for(lambda: self.client.is_connected(), 10, what="device client connected")
        time.sleep(0.2)
        return self

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload))
        for prefix, fn in list(self.responders.items()):
            if msg.topic.startswith(prefix):
                out = fn(msg.topic, msg.payload)
                if out:
                    client.publish(out[0], out[1], qos=1)

    def got(self, topic):
        with self.lock:
            return [p for t, p in self.messages if t == topic]

    def publish(self, topic, payload, qos=1):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        self.client.publish(topic, payload, qos=qos).wait_for_publish(5)


class MqttConnectorTest(GatewayTestCase):
    def start_all(self, cfg=None, thingsboard=None):
        self.ext = Broker(self.workdir, name="external").start()
        self.extra.append(self.ext)
        with open(REFERENCE) as f:
            conf = json.load(f)
        conf = cfg(conf) if cfg else conf
        conf["broker"]["port"] = self.ext.port
        gw = self.gateway(connectors=[{"type": "mqtt", "name": "MQTT Broker Connector", "config": conf}],
                          thingsboard=thingsboard)
        ext_dir = os.path.join(gw.cfgdir, "extensions", "mqtt")
        os.makedirs(ext_dir, exist_ok=True)
        os.symlink(PLUGIN, os.path.join(ext_dir, "CustomMqttUplinkConverter.so"))
        self.devices = Devices(self.ext).start()
        self.extra.append(self.devices)
        gw.start()
        gw.wait_log("connected to 127.0.0.1:%d" % self.ext.port, 15)
        time.sleep(0.3)  # subscriptions settle
        return gw

    def test_reference_mappings(self):
        gw = self.start_all()
        d = self.devices
        d.publish("data/", {"power": 1200, "frequency": "50", "temperature": 21.5, "humidity": 60, "relay": "on"})
        tel = wait_for(lambda: self.platform.telemetry("Demo Device"), 10, what="Demo Device telemetry")
        self.assertEqual(tel[0][2], {"temperature": 21.5, "humidity": 60.0, "relay": True})
        attrs = wait_for(lambda: self.platform.attributes().get("Demo Device", {}).get("power") and
                         self.platform.attributes()["Demo Device"], 10)
        self.assertEqual(attrs["power"], 1200.0)
        self.assertEqual(attrs["frequency"], 50)
        self.assertIn({"device": "Demo Device", "type": "default"}, [p for _, p in self.platform.all("v1/gateway/connect")])

        before = time.time() * 1000
        d.publish("sensor/SN-001/data", {"sensorModel": "T1000", "temp": 23.5, "hum": 41})
        tel = wait_for(lambda: self.platform.telemetry("SN-001"), 10, what="SN-001 telemetry")
        self.assertEqual(tel[0][2], {"temperature": 23.5, "humidity": "41"})
        self.assertGreaterEqual(tel[0][1], before - 1000)
        self.assertEqual(wait_for(lambda: self.platform.attributes().get("SN-001", {}).get("model"), 10), "T1000")
        self.assertIn({"device": "SN-001", "type": "Thermometer"}, [p for _, p in self.platform.all("v1/gateway/connect")])

        d.publish("sensor/raw_data", b"AM0125.5")
        tel = wait_for(lambda: self.platform.telemetry("AM01"), 10, what="bytes converter telemetry")
        self.assertEqual(tel[0][2], {"temp": "25.5"})
        self.assertEqual(wait_for(lambda: self.platform.attributes().get("AM01", {}).get("rawData"), 10), "AM0125.5")

        d.publish("custom/sensors/SN-7", b"0x00FA01F45F")
        tel = wait_for(lambda: self.platform.telemetry("SN-7"), 10, what="custom converter telemetry")
        self.assertEqual(tel[0][2], {"temperature": 250, "humidity": 500, "batteryLevel": 95})
        self.assertIn({"device": "SN-7", "type": "Thermostat"}, [p for _, p in self.platform.all("v1/gateway/connect")])

        # list payloads, ts from the payload, keys with missing values skipped
        d.publish("data/", [{"temperature": 1, "ts": 1700000000000}, {"humidity": 2, "ts": 1700000000001}])
        wait_for(lambda: [x for x in self.platform.telemetry("Demo Device") if x[1] == 1700000000001], 10)
        tel = [x for x in self.platform.telemetry("Demo Device") if x[1] in (1700000000000, 1700000000001)]
        self.assertEqual(sorted([(ts, v) for _, ts, v in tel], key=lambda x: x[0]),
                         [(1700000000000, {"temperature": 1.0}), (1700000000001, {"humidity": 2.0})])
        self.assertEqual(gw.stop(), 0)

    def test_connect_disconnect_requests(self):
        gw = self.start_all()
        d = self.devices
        d.publish("sensor/SN-9/connect", "")
        wait_for(lambda: {"device": "SN-9", "type": "default"} in [p for _, p in self.platform.all("v1/gateway/connect")],
                 10, what="SN-9 connect")
        d.publish("sensor/connect", "{}")
        wait_for(lambda: {"device": "Demo Device", "type": "default"} in
                 [p for _, p in self.platform.all("v1/gateway/connect")], 10, what="Demo Device connect")
        d.publish("sensor/disconnect", "{}")
        wait_for(lambda: {"device": "Demo Device"} in [p for _, p in self.platform.all("v1/gateway/disconnect")], 10,
                 what="Demo Device disconnect")
        # the reference sample's disconnect regex (?=/connect) cannot match sensor/+/disconnect: no message
        d.publish("sensor/SN-9/disconnect", "{}")
        gw.wait_log("disconnect request on sensor/SN-9/disconnect: no device name found", 10)
        self.assertEqual([p for _, p in self.platform.all("v1/gateway/disconnect")], [{"device": "Demo Device"}])
        self.assertEqual(gw.stop(), 0)

    def test_attribute_request_update_and_rpc(self):
        def with_empty_filter(conf):
            # the reference refuses an attributeUpdates rule with an empty attributeFilter: reported, skipped
            conf["requestsMapping"]["attributeUpdates"].append(
                {"retain": False, "deviceNameFilter": ".*", "attributeFilter": "",
                 "topicExpression": "everything/${attributeKey}", "valueExpression": "${attributeValue}"})
            return conf

        gw = self.start_all(with_empty_filter)
        self.assertRegex(gw.log(), r"MQTT_Broker_Connector\.json:\d+:\d+: requestsMapping\.attributeUpdates\[1\]"
                                   r"\.attributeFilter: empty")
        d = self.devices
        d.publish("data/", {"temperature": 20})
        wait_for(lambda: self.platform.telemetry("Demo Device"), 10)
        # attribute request: the payload field "relay" names the attribute to fetch
        d.publish("v1/devices/me/attributes/request", {"relay": "relayState"})
        req = wait_for(lambda: self.platform.all("v1/gateway/attributes/request"), 10, what="attribute request")[0][1]
        self.assertEqual({k: v for k, v in req.items() if k != "id"},
                         {"device": "Demo Device", "keys": ["relayState"], "client": False})
        self.platform.publish("v1/gateway/attributes/response", {"id": req["id"], "device": "Demo Device", "value": "on"})
        got = wait_for(lambda: d.got("devices/Demo Device/attrs"), 10, what="attribute value on device topic")
        self.assertEqual(got, [b'"on"'])
        # shared attribute update -> device topic
        self.platform.publish("v1/gateway/attributes", {"device": "Demo Device", "data": {"relay": True, "other": 1}})
        got = wait_for(lambda: d.got("sensor/request/setRelay"), 10, what="attribute update on device topic")
        self.assertEqual(got, [b"true"])
        self.assertEqual([t for t, _ in d.messages if t.startswith("everything/")], [])
        # two-way RPC: the device answers on the response topic
        d.responders["sensor/Demo Device/request/getRelay/"] = lambda t, p: (
            t.replace("/request/", "/response/"), b"{'relay': true, 'echo': %s}" % p)
        self.platform.publish("v1/gateway/rpc", {"device": "Demo Device",
                                                 "data": {"id": 17, "method": "getRelay", "params": {"a": 1}}})
        rep = wait_for(lambda: [p for _, p in self.platform.all("v1/gateway/rpc") if p["id"] == 17], 10, what="rpc 17")
        self.assertEqual(d.got("sensor/Demo Device/request/getRelay/17"), [b'{"a":1}'])
        self.assertEqual(rep[0], {"device": "Demo Device", "id": 17, "data": {"relay": True, "echo": {"a": 1}}})
        # one-way RPC
        self.platform.publish("v1/gateway/rpc", {"device": "Demo Device",
                                                 "data": {"id": 18, "method": "setRelay", "params": False}})
        rep = wait_for(lambda: [p for _, p in self.platform.all("v1/gateway/rpc") if p["id"] == 18], 10, what="rpc 18")
        self.assertEqual(json.loads(rep[0]["data"]), {"success": True})
        self.assertIn(b"false", d.got("sensor/request/setRelay"))
        # reserved set with key=value params
        self.platform.publish("v1/gateway/rpc", {"device": "Demo Device", "data": {
            "id": 19, "method": "set", "params": "requestTopicExpression=dev/${deviceName}/set;value=42"}})
        rep = wait_for(lambda: [p for _, p in self.platform.all("v1/gateway/rpc") if p["id"] == 19], 10, what="rpc 19")
        self.assertEqual(json.loads(rep[0]["data"]), {"success": True})
        self.assertEqual(d.got("dev/Demo Device/set"), [b"42"])
        self.assertEqual(gw.stop(), 0)

    def test_rpc_timeout_malformed_payloads_and_old_format(self):
        def cfg(conf):
            conf["requestsMapping"]["serverSideRpc"][0]["responseTimeout"] = 500
            # an old-format mapping (deviceNameJsonExpression) next to the new ones
            conf["mapping"].append({"topicFilter": "old/+", "converter": {
                "type": "json", "deviceNameJsonExpression": "${serial}", "deviceTypeTopicExpression": "(?<=old/).*",
                "timeseries": [{"type": "int", "key": "n", "value": "${n}"}]}})
            # a shared subscription
            conf["mapping"].append({"topicFilter": "$share/tbgw/shared/+", "subscriptionQos": 0, "converter": {
                "type": "json", "deviceInfo": {"deviceNameExpressionSource": "topic",
                                               "deviceNameExpression": "(?<=shared/).+"},
                "attributes": "*"}})
            # a connect request naming the device from the payload (reference unit-test config)
            conf["requestsMapping"]["connectRequests"].append({"topicFilter": "dev/connect", "deviceInfo": {
                "deviceNameExpressionSource": "message", "deviceNameExpression": "${serialNumber}",
                "deviceProfileExpressionSource": "constant", "deviceProfileExpression": "Thermometer"}})
            return conf
        gw = self.start_all(cfg)
        d = self.devices
        d.publish("old/meter", {"serial": "M-1", "n": "7"})
        tel = wait_for(lambda: self.platform.telemetry("M-1"), 10, what="old-format mapping")
        self.assertEqual(tel[0][2], {"n": 7})
        self.assertIn({"device": "M-1", "type": "meter"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        self.platform.publish("v1/gateway/rpc", {"device": "M-1", "data": {"id": 5, "method": "getRelay"}})
        rep = wait_for(lambda: [p for _, p in self.platform.all("v1/gateway/rpc") if p["id"] == 5], 10, what="timeout")
        self.assertEqual(json.loads(rep[0]["data"]), {"success": False})
        d.publish("shared/S-1", {"fw": "1.2", "n": 3})
        wait_for(lambda: self.platform.attributes().get("S-1", {}).get("fw") == "1.2", 10, what="shared subscription")
        self.assertEqual(self.platform.attributes()["S-1"]["n"], 3)
        # connect request: a missing name is an error, not a device called "${serialNumber}"
        d.publish("dev/connect", b"")
        gw.wait_log("connect request on dev/connect: no device name found", 10)
        d.publish("dev/connect", {"serialNumber": "SN-002"})
        wait_for(lambda: {"device": "SN-002", "type": "Thermometer"} in
                 [p for _, p in self.platform.all("v1/gateway/connect")], 10, what="SN-002 connect")
        self.assertFalse([p for _, p in self.platform.all("v1/gateway/connect") if "$" in p["device"]])
        # attribute request without the named field: nothing is requested
        d.publish("v1/devices/me/attributes/request", {"other": 1})
        gw.wait_log("attribute request on v1/devices/me/attributes/request: no attribute name found", 10)
        self.assertEqual(self.platform.all("v1/gateway/attributes/request"), [])
        # malformed payloads: logged once per topic, never fatal
        for _ in range(3):
            d.publish("data/", b"{not json")
        d.publish("data/", b"17")
        d.publish("data/", {"temperature": 5})
        wait_for(lambda: [v for _, _, v in self.platform.telemetry("Demo Device") if v == {"temperature": 5.0}], 10)
        log = gw.log()
        warned = [l for l in log.splitlines() if "|WARNING|" in l and "malformed payload on topic data/" in l]
        self.assertEqual(len(warned), 1, log[-3000:])
        self.assertEqual(len([l for l in log.splitlines() if "malformed payload on topic data/" in l]), 4)
        self.assertEqual(gw.stop(), 0)

    def test_report_strategies_from_the_mapping(self):
        def cfg(conf):
            conf["mapping"][0]["converter"]["sendDataOnlyOnChange"] = True  # device level ON_CHANGE
            conf["mapping"][1]["converter"]["timeseries"][0]["reportStrategy"] = {"type": "ON_RECEIVED"}
            conf["mapping"][1]["reportStrategy"] = {"type": "ON_CHANGE"}
            return conf
        gw = self.start_all(cfg)
        d = self.devices
        for v in (20, 20, 21, 21):
            d.publish("data/", {"temperature": v, "humidity": 50})
            time.sleep(0.15)
        for v in (1, 1):
            d.publish("sensor/S9/data", {"temp": v, "hum": 7})
            time.sleep(0.15)
        wait_for(lambda: len(self.platform.telemetry("S9")) >= 2, 10, what="S9 telemetry")
        time.sleep(0.5)
        demo = [v for _, _, v in self.platform.telemetry("Demo Device")]
        self.assertEqual(demo, [{"temperature": 20.0, "humidity": 50.0}, {"temperature": 21.0}])
        s9 = [v for _, _, v in self.platform.telemetry("S9")]
        # temperature has its own ON_RECEIVED; humidity inherits the mapping's ON_CHANGE
        self.assertEqual(s9, [{"temperature": 1.0, "humidity": "7"}, {"temperature": 1.0}])
        self.assertEqual(gw.stop(), 0)

    def test_statistics(self):
        gw = self.start_all(thingsboard={"statistics": {"enable": True, "statsSendPeriodInSeconds": 2}})
        d = self.devices
        for i in range(3):
            d.publish("data/", {"temperature": i})
        d.publish("data/", b"{bad")
        d.publish("sensor/raw_data", b"")  # empty device name
        d.publish("nobody/listens", b"x")  # matches nothing: not received by the connector at all
        d.publish("data/", {"nothing": 1})  # converted, but no configured key: reported and counted

        def totals():
            out = {}
            for _, p in self.platform.all("v1/devices/me/telemetry"):
                for entry in p if isinstance(p, list) else [p]:
                    st = entry.get("values", {}).get("connectorsStats", {}).get("MQTT Broker Connector")
                    for k, v in (st or {}).items():
                        if isinstance(v, (int, float)):
                            out[k] = out.get(k, 0) + v
            return out
        wait_for(lambda: totals().get("convertersErrors", 0) >= 3 and totals().get("convertersMsgProcessed", 0) >= 4,
                 20, what="connector statistics")
        t = totals()
        self.assertEqual(t["connectorMsgsReceived"], 6)
        self.assertEqual(t["convertersMsgProcessed"], 4)
        self.assertEqual(t["convertersErrors"], 3)
        self.assertEqual(t["connectorBytesReceived"], sum(len(json.dumps({"temperature": i})) for i in range(3)) + 4 + 0
                         + len(json.dumps({"nothing": 1})))
        self.assertIn("malformed payload on topic data/: no configured key found in the payload", gw.log())
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
