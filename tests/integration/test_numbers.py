"""Numbers end to end, checked on the exact bytes that arrive: 64-bit integers from a libmodbus slave
(64uint above 2^63, 64int, the 4-register int/uint aliases, an exact integer multiplier) and integers
beyond int64 from an MQTT device reach the platform as exact JSON integers, through sqlite storage;
doubles are written in their shortest form (Python repr) on every path: uplink, attribute replies
and updates to the device, RPC to the device and its reply, Modbus RPC replies."""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tbgwtest import BUILD_DIR, SOURCE_DIR, Broker, GatewayTestCase, free_port, main, wait_for  # noqa: E402
from test_modbus import Peer, device_regs, lmb_args, read_state  # noqa: E402
from test_mqtt_connector import Devices  # noqa: E402

LMB = os.path.join(BUILD_DIR, "bench_modbus_slave")
REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "mqtt.json")

U64 = 0xEFBEADDEEFBEADDE  # 17275436393656397278, above 2^63
I64 = -1171307680053154338  # the same registers as 64int


def regs64(value):
    return device_regs("64uint" if value >= 0 else "64int", value, "BIG", "BIG")


def modbus_slave(port, state):
    keys = [
        {"tag": "u64", "type": "64uint", "address": 0},
        {"tag": "i64", "type": "64int", "address": 0},
        {"tag": "uint4", "type": "uint", "address": 0},
        {"tag": "int4", "type": "int", "address": 0},
        {"tag": "umax", "type": "64uint", "address": 4},
        {"tag": "imin", "type": "64int", "address": 8},
        {"tag": "u64x10", "type": "64uint", "address": 0, "multiplier": 10},
        {"tag": "u64div", "type": "64uint", "address": 16, "divider": 10},  # int / int, rounded once
    ]
    for k in keys:
        k.update(functionCode=3, objectsCount=4)
    keys.append({"tag": "f", "type": "32float", "functionCode": 3, "objectsCount": 2, "address": 12})
    return {"host": "127.0.0.1", "port": port, "type": "tcp", "method": "socket", "unitId": 1, "deviceName": "Meter64",
            "deviceType": "modbus", "timeout": 2, "pollPeriod": 300, "retries": 1, "byteOrder": "BIG",
            "wordOrder": "BIG", "timeseries": keys,
            "attributes": [{"tag": "serial64", "type": "64uint", "functionCode": 3, "objectsCount": 4, "address": 0}],
            "rpc": [{"tag": "getBig", "type": "64uint", "functionCode": 3, "objectsCount": 4, "address": 0},
                    {"tag": "setBig", "type": "64uint", "functionCode": 16, "objectsCount": 4, "address": 40}]}


def mqtt_config(port):
    with open(REFERENCE) as f:
        conf = json.load(f)
    conf["broker"]["port"] = port
    conf["mapping"].append({"topicFilter": "big/+", "converter": {
        "type": "json", "deviceInfo": {"deviceNameExpressionSource": "topic", "deviceNameExpression": "(?<=big/).*"},
        "timeseries": "*",
        "attributes": [{"type": "int", "key": "c_int", "value": "${counter}"},
                       {"type": "double", "key": "c_dbl", "value": "${counter}"},
                       {"type": "string", "key": "c_str", "value": "${counter}"},
                       {"type": "string", "key": "label", "value": "n=${counter}"}]}})
    return conf


def member(raw, key):
    """The JSON text of key's value in a compact payload (numbers and flat lists)."""
    m = re.search(rb'"%s":(\[[^\]]*\]|[^,}\]]+)' % re.escape(key.encode()), raw)
    return m.group(1).decode() if m else None


class NumbersEndToEnd(GatewayTestCase):
    def raw_with(self, topic, needle, timeout=15):
        return wait_for(lambda: [p for p in self.platform.raw(topic) if needle in p], timeout,
                        what="%s message with %r" % (topic, needle))[-1]

    def test_numbers_every_path(self):
        port = free_port()
        state = os.path.join(self.workdir, "state.json")
        hr = {}
        for base, value in ((0, U64), (4, 2**64 - 1), (8, -2**63)):
            hr.update({str(base + i): r for i, r in enumerate(regs64(value))})
        hr.update({str(12 + i): r for i, r in enumerate(device_regs("32float", 7.1, "BIG", "BIG"))})
        hr.update({str(16 + i): r for i, r in enumerate(regs64(0x91B7584A2265B1F5))})
        self.extra.append(Peer([LMB, "tcp", str(port), "-s", state] + lmb_args({"hr": hr})))
        ext = Broker(self.workdir, name="external").start()
        self.extra.append(ext)
        storage = {"type": "sqlite", "data_file_path": os.path.join(self.workdir, "data", "data.db"),
                   "messages_ttl_check_in_hours": 1, "messages_ttl_in_days": 7, "max_read_records_count": 100}
        gw = self.gateway(connectors=[
            {"type": "modbus", "name": "Modbus", "config": {"master": {"slaves": [modbus_slave(port, state)]}}},
            {"type": "mqtt", "name": "MQTT", "config": mqtt_config(ext.port)}], storage=storage)
        d = Devices(ext).start()
        self.extra.append(d)
        gw.start()
        gw.wait_log("connected to 127.0.0.1:%d" % ext.port, 15)
        time.sleep(0.3)

        # Modbus uplink: exact integers, shortest doubles
        raw = self.raw_with("v1/gateway/telemetry", b'"Meter64"')
        want = {"u64": str(U64), "i64": str(I64), "uint4": str(U64), "int4": str(I64), "umax": "18446744073709551615",
                "imin": "-9223372036854775808", "u64x10": str(U64 * 10), "f": "7.1",
                "u64div": repr(0x91B7584A2265B1F5 / 10)}
        self.assertEqual({k: member(raw, k) for k in want}, want, raw)
        values = json.loads(raw)["Meter64"][0]["values"]
        self.assertEqual(values["u64"], U64)
        self.assertIsInstance(values["u64"], int)
        raw = self.raw_with("v1/gateway/attributes", b'"serial64"')
        self.assertEqual(member(raw, "serial64"), str(U64))

        # Modbus RPC: a read answers the exact integer, a write takes one
        self.platform.publish("v1/gateway/rpc", {"device": "Meter64", "data": {"id": 1, "method": "getBig"}})
        raw = self.raw_with("v1/gateway/rpc", b'"id":1,')
        self.assertIn(b'"data":{"result":{"value":%d}}' % U64, raw)
        self.platform.publish("v1/gateway/rpc", '{"device":"Meter64","data":{"id":2,"method":"setBig",'
                                                '"params":18446744073709551614}}')
        raw = self.raw_with("v1/gateway/rpc", b'"id":2,')
        self.assertIn(b'"value":18446744073709551614', raw)
        wait_for(lambda: read_state(state)["hr"][40:44] == regs64(2**64 - 2), 5, what="64uint written")
        # the reserved set/get with the value in the params text
        self.platform.publish("v1/gateway/rpc", {"device": "Meter64", "data": {"id": 3, "method": "set", "params":
                              "type=64uint;functionCode=16;objectsCount=4;address=50;value=%d;" % U64}})
        self.assertIn(b'"value":%d' % U64, self.raw_with("v1/gateway/rpc", b'"id":3,'))
        wait_for(lambda: read_state(state)["hr"][50:54] == regs64(U64), 5, what="64uint set")
        self.platform.publish("v1/gateway/rpc", {"device": "Meter64", "data": {"id": 4, "method": "get", "params":
                              "type=64int;functionCode=3;objectsCount=4;address=50;"}})
        self.assertIn(b'"data":{"result":{"value":%d}}' % I64, self.raw_with("v1/gateway/rpc", b'"id":4,'))

        # MQTT device uplink: integers beyond int64 do not cost the message, and keep their digits
        d.publish("big/B-1", b'{"counter":12345678901234567890,"huge":123456789012345678901234567890,'
                             b'"neg":-9223372036854775809,"t":7.1,"arr":[18446744073709551615,0.1],"tiny":1e-7,'
                             b'"e300":1e300,"s":"x"}')
        raw = self.raw_with("v1/gateway/telemetry", b'"B-1"')
        want = {"counter": "12345678901234567890", "huge": "123456789012345678901234567890",
                "neg": "-9223372036854775809", "t": "7.1", "arr": "[18446744073709551615,0.1]", "tiny": "1e-07",
                "e300": "1e+300", "s": '"x"'}
        self.assertEqual({k: member(raw, k) for k in want}, want, raw)
        raw = self.raw_with("v1/gateway/attributes", b'"c_int"')
        want = {"c_int": "12345678901234567890", "c_dbl": "1.2345678901234567e+19", "c_str": '"12345678901234567890"',
                "label": '"n=12345678901234567890"'}
        self.assertEqual({k: member(raw, k) for k in want}, want, raw)

        # device-bound paths (the reference mqtt.json's requests) write the same number texts
        d.publish("data/", {"temperature": 20})
        wait_for(lambda: self.platform.telemetry("Demo Device"), 10)
        replies = []
        for i, value in enumerate(("7.1", "12345678901234567890", "25.0")):
            d.publish("v1/devices/me/attributes/request", {"relay": "relayState"})
            req = wait_for(lambda: self.platform.all("v1/gateway/attributes/request")[i:], 10,
                           what="attribute request %d" % i)[0][1]
            self.platform.publish("v1/gateway/attributes/response",
                                  '{"id":%d,"device":"Demo Device","value":%s}' % (req["id"], value))
            replies.append(value.encode())
            wait_for(lambda: d.got("devices/Demo Device/attrs") == replies, 10, what="attribute reply %s" % value)
        sent = []
        for value in ("0.30000000000000004", "18446744073709551615", "1e+300"):
            self.platform.publish("v1/gateway/attributes", '{"device":"Demo Device","data":{"relay":%s}}' % value)
            sent.append(value.encode())
            wait_for(lambda: d.got("sensor/request/setRelay") == sent, 10, what="attribute update %s" % value)
        d.responders["sensor/Demo Device/request/getRelay/"] = lambda t, p: (
            t.replace("/request/", "/response/"), b'{"r":1e300,"u":18446744073709551615,"x":0.1}')
        self.platform.publish("v1/gateway/rpc", '{"device":"Demo Device","data":{"id":21,"method":"getRelay",'
                                                '"params":{"v":7.1,"big":12345678901234567890,"tiny":1e-07}}}')
        raw = self.raw_with("v1/gateway/rpc", b'"id":21,')
        self.assertEqual(d.got("sensor/Demo Device/request/getRelay/21"),
                         [b'{"v":7.1,"big":12345678901234567890,"tiny":1e-07}'])
        self.assertIn(b'"data":{"r":1e+300,"u":18446744073709551615,"x":0.1}', raw)
        self.assertNotIn("malformed", gw.log())
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
