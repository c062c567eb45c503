"""MQTT connector `useEval: true` end to end: values rendered from the payload are evaluated as
Python expressions and cast by their type like the reference (int(float(v)), float(v), bool(v),
str(v); "string" types are not evaluated). A key whose evaluation fails is skipped and logged with
the device and the Python error; the other keys of the message arrive. A syntax error in a
constant expression is a configuration error naming file:line:column inside the string."""

import json
import os
import subprocess

from tbgwtest import TBGW_BIN, Broker, GatewayTestCase, wait_for, main
from test_mqtt_connector import Devices


def config(port, extra_ts=()):
    ts = [
        {"type": "double", "key": "fahrenheit", "value": "${temp} * 9 / 5 + 32"},
        {"type": "int", "key": "raw", "value": "int('${hex}', 16)"},
        {"type": "bool", "key": "alarm", "value": "${temp} > 30"},
        {"type": "integer", "key": "ratio", "value": "${a} // ${b}"},
        {"type": "double", "key": "root", "value": "2 ** 0.5"},
        {"type": "raw", "key": "joined", "value": "'-'.join(['${a}', '${b}'])"},
        {"type": "long", "key": "big", "value": "2 ** 70"},
        {"type": "double", "key": "avg", "value": "sum(x for x in [${a}, ${b}, 3]) / 3"},
    ] + list(extra_ts)
    return {
        "broker": {"host": "127.0.0.1", "port": port, "clientId": "tbgw-useeval", "version": 5,
                   "security": {"type": "anonymous"}},
        "mapping": [{
            "topicFilter": "eval/+",
            "subscriptionQos": 1,
            "converter": {
                "type": "json", "useEval": True,
                "deviceInfo": {"deviceNameExpressionSource": "topic", "deviceNameExpression": "(?<=eval/).*",
                               "deviceProfileExpressionSource": "constant", "deviceProfileExpression": "default"},
                "attributes": [{"type": "string", "key": "label", "value": "${a} + ${b}"}],
                "timeseries": ts,
            },
        }],
    }


class MqttUseEvalTest(GatewayTestCase):
    def test_use_eval(self):
        ext = Broker(self.workdir, name="external").start()
        self.extra.append(ext)
        gw = self.gateway(connectors=[{"type": "mqtt", "name": "MQTT Eval", "config": config(ext.port)}])
        devices = Devices(ext).start()
        self.extra.append(devices)
        gw.start()
        gw.wait_log("connected to 127.0.0.1:%d" % ext.port, 15)

        def publish_until(topic, payload, device):
            # the subscription may take a moment after the connection: publish until data arrives
            def got():
                devices.publish(topic, payload)
                return self.platform.telemetry(device)
            return wait_for(got, 15, interval=0.5, what="telemetry of " + device)

        tel = publish_until("eval/E1", {"temp": 35, "hex": "ff", "a": 7, "b": 2}, "E1")
        self.assertEqual(tel[0][2], {"fahrenheit": 95.0, "raw": 255, "alarm": True, "ratio": 3,
                                     "root": 1.4142135623730951, "joined": "7-2", "big": 1180591620717411303424,
                                     "avg": 4.0})
        label = wait_for(lambda: self.platform.attributes().get("E1", {}).get("label"), 10, what="E1 label")
        self.assertEqual(label, "7 + 2")  # "string" values are not evaluated

        # b = 0: only "ratio" fails (the reference loses every key of the message)
        tel = publish_until("eval/E2", {"temp": 10.5, "hex": "10", "a": 1, "b": 0}, "E2")
        self.assertEqual(tel[0][2], {"fahrenheit": 50.9, "raw": 16, "alarm": False, "root": 1.4142135623730951,
                                     "joined": "1-0", "big": 1180591620717411303424,
                                     "avg": 1.3333333333333333})
        gw.wait_log("device E2, key ratio: useEval failed: ZeroDivisionError: integer division or modulo by zero",
                    10)
        # a payload value that is not a Python literal after substitution: NameError for that key
        tel = publish_until("eval/E3", {"temp": "warm", "hex": "zz", "a": 1, "b": 1}, "E3")
        self.assertEqual(tel[0][2], {"ratio": 1, "root": 1.4142135623730951, "joined": "1-1",
                                     "big": 1180591620717411303424, "avg": 1.6666666666666667})
        gw.wait_log("device E3, key fahrenheit: useEval failed: NameError: name 'warm' is not defined", 10)
        gw.wait_log("device E3, key raw: useEval failed: ValueError: invalid literal for int() with base 16: 'zz'",
                    10)
        self.assertEqual(gw.stop(), 0)

    def test_syntax_error_position(self):
        """A constant expression with a syntax error: reported at load with file:line:column of the
        character inside the string, that key is skipped, the mapping keeps its other keys."""
        ext = Broker(self.workdir, name="external").start()
        self.extra.append(ext)
        bad = {"type": "double", "key": "broken", "value": "(1 + ) * 2"}
        gw = self.gateway(connectors=[{"type": "mqtt", "name": "MQTT Eval", "config": config(ext.port, [bad])}])
        path = os.path.join(gw.cfgdir, "MQTT_Eval.json")
        with open(path) as f:
            lines = f.read().split("\n")
        # the file is written with indent 2: the line of the broken value and the column of its ")"
        ln = next(i for i, line in enumerate(lines) if "(1 + ) * 2" in line)
        col = lines[ln].index("(1 + ) * 2") + 1 + 5
        where = "MQTT_Eval.json:%d:%d: mapping[0].converter.timeseries[8].value: SyntaxError: invalid syntax" % (
            ln + 1, col)
        p = subprocess.run([TBGW_BIN, "-c", gw.config_path, "--check-config"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode()
        self.assertIn("warning: " + path + ":%d:%d:" % (ln + 1, col), out)
        self.assertIn(where, out)
        self.assertIn("0 error(s), 1 warning(s)", out)
        devices = Devices(ext).start()
        self.extra.append(devices)
        gw.start()
        gw.wait_log(where, 15)
        gw.wait_log("connected to 127.0.0.1:%d" % ext.port, 15)

        def got():
            devices.publish("eval/E4", {"temp": 0, "hex": "1", "a": 4, "b": 2})
            return self.platform.telemetry("E4")
        tel = wait_for(got, 15, interval=0.5, what="telemetry of E4")
        self.assertEqual(tel[0][2]["fahrenheit"], 32.0)
        self.assertNotIn("broken", tel[0][2])
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
