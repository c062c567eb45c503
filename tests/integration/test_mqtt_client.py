"""The MQTT connector's own client under pressure:
  - saturation: the core refuses batches (a tiny ingress queue, TBGW_INGRESS_CAP) while a device
    floods the external broker, with the platform there or away during the flood (then back); the
    connector keeps the refused batch, stops framing and reading, and nothing is lost: every value
    arrives on the platform;
  - a v5 session with sessionExpiryInterval > 0 whose broker stops answering (TCP connects that get
    no answer at all): the connect attempt does not block the connector, an RPC to its device is
    answered at once, the attempt times out and is retried, and once the broker is back the
    downlink queued meanwhile (QoS 1) reaches it and uplink flows again."""

import json
import os
import subprocess
import time

import paho.mqtt.client as mqtt

from tbgwtest import Broker, GatewayTestCase, Platform, SilentPort, wait_for, main

N_FLOOD = 20000


class MqttClient(GatewayTestCase):
    def ext_broker(self, port=None, persistent=False):
        b = Broker(self.workdir, port=port, name="ext", persistent=persistent).start()
        self.extra.append(b)
        return b

    def test_saturated_core_loses_nothing(self):
        self.flood_and_check(platform_away=False)

    def test_saturated_core_with_the_platform_away(self):
        self.flood_and_check(platform_away=True)

    def flood_and_check(self, platform_away):
        ext = self.ext_broker()
        conf = {"broker": {"host": "127.0.0.1", "port": ext.port, "clientId": "gw-sat"},
                "mapping": [{"topicFilter": "sat/+", "subscriptionQos": 1, "converter": {
                    "type": "json",
                    "deviceInfo": {"deviceNameExpressionSource": "topic", "deviceNameExpression": "(?<=sat/).+"},
                    "timeseries": [{"type": "int", "key": "seq", "value": "${seq}"}]}}]}
        gw = self.gateway(connectors=[{"type": "mqtt", "name": "Sat", "config": conf}],
                          storage={"type": "memory", "read_records_count": 1000, "max_records_count": 1000000})
        gw.start(env={"TBGW_INGRESS_CAP": "300", "TBGW_LOG_LEVEL": "INFO"})
        gw.wait_log("connected to 127.0.0.1:%d" % ext.port, 15)
        time.sleep(0.5)
        port = self.broker.port
        if platform_away:  # the flood goes to the storage; the platform comes back afterwards
            self.platform.stop()
            self.broker.stop()
        lines = "".join(json.dumps({"seq": i}) + "\n" for i in range(N_FLOOD))
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(ext.port), "-q", "1", "-t", "sat/D",
                        "-l"], input=lines.encode(), check=True, timeout=120)
        if platform_away:
            time.sleep(1)
            self.broker = Broker(self.workdir, port=port, name="platform", persistent=True).start()
            self.platform = Platform(self.broker).start()

        def seqs():
            return {v["seq"] for _, _, v in self.platform.telemetry("D")}
        wait_for(lambda: len(seqs()) == N_FLOOD, 90, what="every flooded value on the platform")
        self.assertEqual(seqs(), set(range(N_FLOOD)))
        self.assertIn("core saturated: a batch was refused", gw.log())
        self.assertIn("it is kept and reads pause", gw.log())
        self.assertEqual(gw.stop(), 0)

    def test_v5_session_expiry_connect_does_not_block(self):
        ext = self.ext_broker(persistent=True)
        port = ext.port
        # the device's persistent session: what reaches the broker while it is offline is kept for it
        got = []
        sub = mqtt.Client(client_id="dev-sub", clean_session=False)
        sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
        sub.connect("127.0.0.1", port, 30)
        sub.loop_start()
        sub.subscribe("cmd/#", 1)
        time.sleep(0.3)
        sub.loop_stop()
        sub.disconnect()
        conf = {"broker": {"host": "127.0.0.1", "port": port, "version": 5, "clientId": "gw-v5",
                           "cleanStart": False, "sessionExpiryInterval": 600, "keepAlive": 5},
                "mapping": [{"topicFilter": "v5/+", "subscriptionQos": 1, "converter": {
                    "type": "json",
                    "deviceInfo": {"deviceNameExpressionSource": "topic", "deviceNameExpression": "(?<=v5/).+"},
                    "timeseries": [{"type": "double", "key": "t", "value": "${t}"}]}}],
                "requestsMapping": {"serverSideRpc": [{
                    "deviceNameFilter": ".*", "methodFilter": "set", "requestTopicExpression": "cmd/${deviceName}",
                    "valueExpression": "${params}", "qos": 1}]}}
        gw = self.gateway(connectors=[{"type": "mqtt", "name": "V5", "config": conf}]).start()
        gw.wait_log("connected to 127.0.0.1:%d" % port, 15)
        time.sleep(0.3)
        pub = mqtt.Client(client_id="dev-v5")
        pub.connect("127.0.0.1", port, 30)
        pub.loop_start()
        pub.publish("v5/D", json.dumps({"t": 1.5}), qos=1).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()
        wait_for(lambda: self.platform.telemetry("D"), 10, what="telemetry before the outage")

        # the broker goes away; its port then swallows connection attempts without an answer
        ext.stop()
        silent = SilentPort(port)
        try:
            gw.wait_log("disconnected from 127.0.0.1:%d" % port, 10)
            time.sleep(2.5)  # a reconnect attempt is pending in the silent port's queue
            t0 = time.time()
            self.platform.publish("v1/gateway/rpc", {"device": "D", "data": {"id": 7, "method": "set",
                                                                            "params": {"on": True}}})
            rep = wait_for(lambda: [p for _, p in self.platform.all("v1/gateway/rpc") if p.get("id") == 7], 5,
                           what="RPC reply while the broker does not answer")
            self.assertLess(time.time() - t0, 3.0)
            self.assertEqual(json.loads(rep[0]["data"]), {"success": True})  # queued for the broker (QoS 1)
            gw.wait_log("timed out after 10000 ms", 25)
        finally:
            silent.close()

        # the broker is back: the queued downlink reaches it, uplink flows again
        self.ext_broker(port, persistent=True)
        wait_for(lambda: gw.log().count("connected to 127.0.0.1:%d as" % port) >= 2, 30, what="reconnected")
        time.sleep(0.5)
        sub = mqtt.Client(client_id="dev-sub", clean_session=False)
        sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
        sub.connect("127.0.0.1", port, 30)
        sub.loop_start()
        try:
            wait_for(lambda: got, 10, what="the RPC queued during the outage")
            self.assertEqual(got[0], ("cmd/D", b'{"on":true}'))
            pub = mqtt.Client(client_id="dev-v5b")
            pub.connect("127.0.0.1", port, 30)
            pub.loop_start()
            pub.publish("v5/D", json.dumps({"t": 2.5}), qos=1).wait_for_publish(5)
            pub.loop_stop()
            pub.disconnect()
            wait_for(lambda: [1 for _, _, v in self.platform.telemetry("D") if v.get("t") == 2.5], 10,
                     what="telemetry after the broker came back")
        finally:
            sub.loop_stop()
            sub.disconnect()
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
