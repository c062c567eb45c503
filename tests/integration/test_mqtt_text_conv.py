"""The MQTT connector's JSON converter reading payload text in place (plain `${}` paths) against the
jansson-tree path (the same mapping written with `$..key` paths, which only the tree resolves): the
same payloads, published to both, reach the platform as the same values, number texts and types
(integers beyond int64, 1e400, -0.0, escapes, duplicate keys, payload ts), and a payload that is not
JSON is reported with jansson's line and column on either path."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tbgwtest import Broker, GatewayTestCase, main, wait_for  # noqa: E402
from test_mqtt_connector import Devices  # noqa: E402

KEYS = [("raw", "v"), ("int", "w"), ("double", "r"), ("int", "z"), ("double", "d"), ("string", "s"),
        ("int", "n"), ("bool", "b"), ("raw", "o"), ("long", "big")]

PAYLOADS = [
    b'{"v":18446744073709551615,"w":-99999999999999999999,"r":1e400,"z":-0,"d":-0.0,'
    b'"s":"a\\u00e9\\ud83d\\ude00\\n\\"q\\"","n":"7","b":"on","o":{"k":[1,2.50,1e400]},"big":"12345678901234567890"}',
    b'{"v":1,"v":"last","w":0.5,"r":0.1,"z":true,"d":2,"s":"x\\u0000y","n":"1e3","b":0,"o":[],"big":9223372036854775807}',
    b' {\n "ts" : 1700000000000 ,\t"v" : [ true , null ] , "w" : "12" , "r" : "2.5" , "d" : 1E2 , "o" : {"a":1,"a":2} } ',
    b'{"timestamp":"2024-01-31T12:00:00Z","v":{"x":"\\ud834\\udd1e"},"r":4.9e-324,"d":1.7976931348623157e308}',
]


def mapping(prefix, tree):
    def ph(k):
        return "${$..%s}" % k if tree else "${%s}" % k
    ts = [{"type": t, "key": k, "value": ph(k)} for t, k in KEYS]
    ts.append({"type": "string", "key": "label", "value": "v=%s o=%s" % (ph("v"), "${$..o.k[-1]}" if tree else "${o.k[-1]}")})
    return {"topicFilter": prefix + "/+", "subscriptionQos": 1, "converter": {
        "type": "json", "deviceInfo": {"deviceNameExpressionSource": "topic",
                                       "deviceNameExpression": "%s/.+" % prefix},
        "timeseries": ts}}


class MqttTextConversion(GatewayTestCase):
    def test_text_and_tree_paths_agree(self):
        ext = Broker(self.workdir, name="external").start()
        self.extra.append(ext)
        conf = {"broker": {"host": "127.0.0.1", "port": ext.port, "clientId": "tbgw-text", "version": 5,
                           "security": {"type": "anonymous"}},
                "mapping": [mapping("fast", False), mapping("tree", True)]}
        gw = self.gateway(connectors=[{"type": "mqtt", "name": "MQTT", "config": conf}])
        devices = Devices(ext).start()
        self.extra.append(devices)
        gw.start()
        gw.wait_log("connected to 127.0.0.1:%d" % ext.port, 15)
        time.sleep(0.3)
        for i, p in enumerate(PAYLOADS):
            devices.publish("fast/d%d" % i, p)
            devices.publish("tree/d%d" % i, p)
        for i in range(len(PAYLOADS)):
            wait_for(lambda: self.platform.telemetry("fast/d%d" % i) and self.platform.telemetry("tree/d%d" % i),
                     15, what="telemetry of payload %d" % i)
        for i in range(len(PAYLOADS)):
            (_, ts_f, vf), = self.platform.telemetry("fast/d%d" % i)
            (_, ts_t, vt), = self.platform.telemetry("tree/d%d" % i)
            # json.dumps tells -0.0 from 0 and 1.0 from 1
            self.assertEqual(json.dumps(vf, sort_keys=True), json.dumps(vt, sort_keys=True), PAYLOADS[i])
            if i >= 2:  # ts from the payload (the others: the time each message arrived)
                self.assertEqual(ts_f, ts_t)
        raw = b"".join(self.platform.raw("v1/gateway/telemetry"))
        for needle in (b'"v":18446744073709551615', b'"w":-99999999999999999999', b'"z":0', b'"d":-0.0',
                       b'"o":{"k":[1,2.5,1e400]}', b'"big":12345678901234567890', b'"v":"last"',
                       b'"o":{"a":2}', b'"label":"v=18446744073709551615 o=1e400"'):
            self.assertEqual(raw.count(needle), 2, needle)
        self.assertEqual(self.platform.telemetry("fast/d2")[0][1], 1700000000000)
        self.assertEqual(self.platform.telemetry("fast/d3")[0][1], 1706702400000)
        v0 = self.platform.telemetry("fast/d0")[0][2]
        self.assertEqual(v0["s"], 'a\u00e9\U0001F600\n"q"')
        self.assertEqual((v0["n"], v0["b"], v0["r"]), (7, True, "1e400"))
        # not JSON: the same report on both paths
        devices.publish("fast/bad", b'{"v": 1,\n "w": }')
        devices.publish("tree/bad", b'{"v": 1,\n "w": }')
        gw.wait_log("malformed payload on topic tree/bad", 10)
        gw.wait_log("malformed payload on topic fast/bad", 10)
        log = gw.log()
        msgs = [line.split("malformed payload on topic ", 1)[1].split(": ", 1)[1]
                for line in log.splitlines() if "malformed payload on topic " in line and "/bad" in line]
        self.assertEqual(len(msgs), 2, log[-2000:])
        self.assertEqual(msgs[0], msgs[1])
        self.assertIn("invalid JSON at line 2 column", msgs[0])
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
