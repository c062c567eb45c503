"""The Modbus connector against peers we did not write: a libmodbus slave (bench_modbus_slave, TCP and
RTU over a socat pty pair) and Debian's python3-pymodbus servers (UDP, RTU over TCP, ASCII over TCP and
over a serial line, TLS). Exact telemetry/attributes for every type and byte/word order, RPC and
attribute updates changing the peer's registers, and a killed slave not slowing the others."""

import json
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tbgwtest import BUILD_DIR, SOURCE_DIR, SLOW, TBGW_BIN, GatewayTestCase, free_port, main, wait_for  # noqa: E402

PY = "/usr/bin/python3"
PYPEER = os.path.join(SOURCE_DIR, "tests", "peers", "pymodbus_slave.py")
LMB = os.path.join(BUILD_DIR, "bench_modbus_slave")

FMT = {"16int": ">h", "16uint": ">H", "16float": ">e", "32int": ">i", "32uint": ">I", "32float": ">f",
       "64int": ">q", "64uint": ">Q", "64float": ">d"}


def device_regs(typ, value, bo, wo, count=1):
    """Registers as a device with byte order bo and word order wo holds the value."""
    if typ in ("8int", "8uint"):
        return [struct.pack(">b" if typ == "8int" else ">B", value)[0] << 8]
    if typ == "string":
        raw = value.encode().ljust(count * 2, b"\0")
        return [raw[i] << 8 | raw[i + 1] for i in range(0, len(raw), 2)]
    raw = bytearray(struct.pack(FMT[typ], value))
    if bo == "LITTLE":
        for i in range(0, len(raw), 2):
            raw[i], raw[i + 1] = raw[i + 1], raw[i]
    words = [raw[i] << 8 | raw[i + 1] for i in range(0, len(raw), 2)]
    if wo == "LITTLE":
        words.reverse()
    return words


class Peer:
    """A peer process that prints "ready" once serving."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 15 * SLOW
        line = b""
        while time.time() < deadline and b"ready" not in line:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
        if b"ready" not in line:
            self.stop()
            raise AssertionError("peer did not start: %r" % argv)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


class PtyPair:
    """socat pty pair: two linked serial devices."""

    def __init__(self, workdir, suffix=""):
        self.a = os.path.join(workdir, "ttyA" + suffix)
        self.b = os.path.join(workdir, "ttyB" + suffix)
        self.proc = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s" % self.a, "pty,raw,echo=0,link=%s" % self.b],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: os.path.exists(self.a) and os.path.exists(self.b), 10, what="socat ptys")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


def lmb_args(values):
    args = []
    for flag, key in (("-h", "hr"), ("-i", "ir"), ("-c", "co"), ("-d", "di")):
        if values.get(key):
            args += [flag, ",".join("%d=%d" % (int(a), v) for a, v in values[key].items())]
    return args


def read_state(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def type_cases():
    """(key config, stored registers or bits, expected value) covering every type and order."""
    cases = []
    addr = 0
    samples = {"16int": -1234, "16uint": 60000, "16float": 1.5, "32int": -123456789, "32uint": 4000000000,
               "32float": 3.25, "64int": -1234567890123, "64uint": 9000000000000000001, "64float": -0.0025}
    counts = {"16": 1, "32": 2, "64": 4}
    for typ, val in samples.items():
        for bo in ("BIG", "LITTLE"):
            for wo in ("BIG", "LITTLE"):
                n = counts[typ[:2]]
                cfg = {"tag": "%s_%s_%s" % (typ, bo[0], wo[0]), "type": typ, "functionCode": 3, "objectsCount": n,
                       "address": addr, "byteOrder": bo, "wordOrder": wo}
                cases.append((cfg, {"hr": dict(enumerate(device_regs(typ, val, bo, wo), addr))}, val))
                addr += n

    def add(cfg, regs, want, table="hr"):
        nonlocal addr
        cfg = dict(cfg, address=addr)
        cfg.setdefault("functionCode", 3)
        cases.append((cfg, {table: dict(enumerate(regs, addr))}, want))
        addr += len(regs)

    add({"tag": "i8", "type": "8int", "objectsCount": 1}, device_regs("8int", -5, "BIG", "BIG"), -5)
    add({"tag": "u8", "type": "8uint", "objectsCount": 1}, device_regs("8uint", 200, "BIG", "BIG"), 200)
    add({"tag": "text", "type": "string", "objectsCount": 3}, device_regs("string", "hello!", "", "", 3), "hello!")
    add({"tag": "raw", "type": "bytes", "objectsCount": 2}, [0x0102, 0xA0FF], "0102a0ff")
    # spec §7.2 Bits: high byte LSB first, then low byte LSB first
    add({"tag": "flags", "type": "bits", "objectsCount": 16}, [0x8001], [False] * 7 + [True, True] + [False] * 7)
    add({"tag": "flag15", "type": "bits", "objectsCount": 16, "bit": 7}, [0x8000], 1)
    add({"tag": "scaled", "type": "16int", "objectsCount": 1, "divider": 10, "byteOrder": "BIG"},
        device_regs("16int", -215, "BIG", "BIG"), -21.5)
    add({"tag": "multiplied", "type": "16uint", "objectsCount": 1, "multiplier": 3, "byteOrder": "BIG"},
        device_regs("16uint", 7, "BIG", "BIG"), 21)
    add({"tag": "mode", "type": "16int", "objectsCount": 1, "byteOrder": "BIG", "variants": {"2": "AUTO"}},
        device_regs("16int", 2, "BIG", "BIG"), "AUTO")
    add({"tag": "alias_float", "type": "float", "objectsCount": 2, "byteOrder": "BIG", "wordOrder": "BIG"},
        device_regs("32float", 22.5, "BIG", "BIG"), 22.5)
    add({"tag": "alias_long", "type": "long", "objectsCount": 4, "byteOrder": "BIG", "wordOrder": "BIG"},
        device_regs("64int", -77, "BIG", "BIG"), -77)
    add({"tag": "rounded", "type": "32float", "objectsCount": 2, "round": 2, "byteOrder": "BIG", "wordOrder": "BIG"},
        device_regs("32float", 3.14159, "BIG", "BIG"), 3.14)
    add({"tag": "in_reg", "type": "16int", "functionCode": 4, "objectsCount": 1, "byteOrder": "BIG"},
        device_regs("16int", 4321, "BIG", "BIG"), 4321, table="ir")
    cases.append(({"tag": "coil", "type": "bits", "functionCode": 1, "objectsCount": 1, "address": 3},
                  {"co": {3: 1}}, True))
    cases.append(({"tag": "inputs", "type": "bits", "functionCode": 2, "objectsCount": 3, "address": 0},
                  {"di": {0: 1, 1: 1, 2: 0}}, [False, True, True]))
    return cases


def merge_values(cases):
    values = {}
    for _, regs, _ in cases:
        for table, m in regs.items():
            values.setdefault(table, {}).update({str(a): v for a, v in m.items()})
    return values


def slave_cfg(name, **kw):
    cfg = {"host": "127.0.0.1", "type": "tcp", "method": "socket", "unitId": 1, "deviceName": name,
           "deviceType": "modbus", "timeout": 2, "pollPeriod": 200, "retries": 1, "timeseries": [], "attributes": []}
    cfg.update(kw)
    return cfg


def modbus_connector(slaves, name="Modbus"):
    return {"type": "modbus", "name": name, "config": {"master": {"slaves": slaves}}}


class ModbusIntegration(GatewayTestCase):
    def peer(self, argv):
        p = Peer(argv)
        self.extra.append(p)
        return p

    def latest(self, device, keys, timeout=15):
        """The newest telemetry entry of device holding every key."""
        def find():
            for dev, ts, values in reversed(self.platform.telemetry(device)):
                if all(k in values for k in keys):
                    return ts, values
            return None
        return wait_for(find, timeout, what="telemetry of %s with %s" % (device, keys))

    def rpc(self, device, rid, method, params):
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                             "params": params}})
        msgs = wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 10,
                        what="rpc reply %d" % rid)
        self.assertEqual(msgs[0]["device"], device)
        return msgs[0]["data"]

    def test_tcp_libmodbus_every_type_and_order(self):
        cases = type_cases()
        port = free_port()
        self.peer([LMB, "tcp", str(port)] + lmb_args(merge_values(cases)))
        ts_keys = [c for c, _, _ in cases[:-4]]
        attr_keys = [c for c, _, _ in cases[-4:]]
        gw = self.gateway(connectors=[modbus_connector([slave_cfg("Types", port=port, timeseries=ts_keys,
                                                                  attributes=attr_keys)])]).start()
        ts, values = self.latest("Types", [c["tag"] for c in ts_keys])
        for cfg, _, want in cases[:-4]:
            got = values[cfg["tag"]]
            if isinstance(want, float):
                self.assertAlmostEqual(got, want, places=9, msg=cfg["tag"])
            else:
                self.assertEqual(got, want, msg=cfg["tag"])
        attrs = wait_for(lambda: self.platform.attributes().get("Types", {}).get("inputs") is not None
                         and self.platform.attributes()["Types"], 10, what="attributes")
        for cfg, _, want in cases[-4:]:
            self.assertEqual(attrs[cfg["tag"]], want, msg=cfg["tag"])
        # one timestamp per poll, close to now
        self.assertLess(abs(ts - time.time() * 1000), 10000)
        self.assertIn({"device": "Types", "type": "modbus"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        self.assertEqual(gw.stop(), 0)

    def test_rpc_and_attribute_updates_write_the_peer(self):
        port = free_port()
        state = os.path.join(self.workdir, "state.json")
        self.peer([LMB, "tcp", str(port), "-h", "0=100", "-c", "1=1", "-s", state])
        slave = slave_cfg("Meter", port=port, byteOrder="BIG", wordOrder="BIG",
                          timeseries=[{"tag": "v", "type": "16int", "functionCode": 3, "objectsCount": 1,
                                       "address": 0}],
                          attributeUpdates=[{"tag": "target", "type": "32float", "functionCode": 16,
                                             "objectsCount": 2, "address": 10}],
                          rpc=[{"tag": "setRelay", "type": "bits", "functionCode": 5, "objectsCount": 1, "address": 1},
                               {"tag": "getRelay", "type": "bits", "functionCode": 1, "objectsCount": 1, "address": 1},
                               {"tag": "setTotal", "type": "32int", "functionCode": 16, "objectsCount": 2,
                                "address": 20}])
        gw = self.gateway(connectors=[modbus_connector([slave])]).start()
        self.latest("Meter", ["v"])
        self.assertEqual(self.rpc("Meter", 1, "getRelay", None), {"result": {"value": True}})
        self.assertEqual(self.rpc("Meter", 2, "setRelay", False), {"result": {"value": False}})
        wait_for(lambda: read_state(state)["co"][1] == 0, 5, what="coil 1 cleared")
        self.assertEqual(self.rpc("Meter", 3, "setTotal", -100000), {"result": {"value": -100000}})
        wait_for(lambda: read_state(state)["hr"][20:22] == device_regs("32int", -100000, "BIG", "BIG"), 5)
        self.assertEqual(self.rpc("Meter", 4, "set", "type=16uint;functionCode=6;objectsCount=1;address=30;value=777;"),
                         {"result": {"value": 777}})
        wait_for(lambda: read_state(state)["hr"][30] == 777, 5)
        self.assertEqual(self.rpc("Meter", 5, "get", "type=16uint;functionCode=3;objectsCount=1;address=30;"),
                         {"result": {"value": 777}})
        self.assertEqual(self.rpc("Meter", 6, "nope", None), {"result": {"error": "Method not found for nope"}})
        self.platform.publish("v1/gateway/attributes", {"device": "Meter", "data": {"target": 21.5}})
        wait_for(lambda: read_state(state)["hr"][10:12] == device_regs("32float", 21.5, "BIG", "BIG"), 5,
                 what="attribute update written")
        self.assertEqual(gw.stop(), 0)

    def test_bits_order_and_tolerant_entries(self):
        """bits/bit of fc 1-4 in the reference's order (spec §7.2 Bits) against a pymodbus slave, the same
        rule backwards for RPC and attribute-update writes; one entry of an unknown type ("4bits", as in the
        reference's own test data) is reported with file:line:column (and by --check-config), every other
        entry runs, and an RPC to the broken entry answers its reason at once."""
        port = free_port()
        state = os.path.join(self.workdir, "state.json")
        coils = [1, 1, 0, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 1]  # c0..c15 (wire bytes 0x8B 0x86)
        values = {"hr": {"0": 0xDA4B, "1": 0xFFFF}, "ir": {"0": 0xDA4B, "1": 0x0080},
                  "co": {str(i): v for i, v in enumerate(coils)}, "di": {str(i): v for i, v in enumerate(coils)}}
        self.peer([PY, PYPEER, "--transport", "tcp", "--framer", "socket", "--port", str(port),
                   "--values", json.dumps(values), "--state", state])

        def bits(fc, addr, n, tag, **kw):
            return dict({"tag": tag, "type": "bits", "functionCode": fc, "objectsCount": n, "address": addr}, **kw)

        T, F = True, False
        want = {"hr16": [F, T, F, T, T, F, T, T, T, T, F, T, F, F, T, F], "hr4": [F, F, T, F],
                "ir8": [T, T, F, T, F, F, T, F], "ir1": T,
                "co16": [T, F, F, F, T, F, T, T, T, F, F, F, F, T, T, F], "co4": [T, F, T, T],
                "di8": [T, F, F, F, T, F, T, T], "di1": T, "cobit": 1}
        ts = [bits(3, 0, 16, "hr16"), bits(3, 0, 4, "hr4"), bits(4, 0, 8, "ir8"), bits(4, 1, 1, "ir1"),
              {"tag": "bad4", "type": "4bits", "functionCode": 3, "objectsCount": 1, "address": 5},
              bits(1, 0, 16, "co16"), bits(1, 0, 4, "co4"), bits(2, 0, 8, "di8"), bits(2, 0, 1, "di1"),
              bits(1, 0, 16, "cobit", bit=0)]
        rpc = [bits(1, 0, 16, "readCoils"), bits(15, 20, 4, "writeCoils"), bits(1, 20, 4, "readBack"),
               bits(16, 10, 16, "writeReg"), bits(3, 10, 16, "readReg"),
               {"tag": "broken", "type": "4bits", "functionCode": 3, "objectsCount": 1, "address": 0}]
        slave = slave_cfg("Bits", port=port, timeseries=ts, rpc=rpc,
                          attributeUpdates=[bits(15, 40, 8, "flags")])
        gw = self.gateway(connectors=[modbus_connector([slave])])
        check = subprocess.run([TBGW_BIN, "--check-config", "-c", gw.config_path], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout)
        self.assertRegex(check.stdout, r"warning: \S*Modbus\.json:\d+:\d+: master\.slaves\[0\]\.timeseries\[4\]"
                                       r"\.type: unknown type '4bits'")
        self.assertRegex(check.stdout, r"warning: \S*Modbus\.json:\d+:\d+: master\.slaves\[0\]\.rpc\[5\]\.type")
        gw.start()
        gw.wait_log("timeseries[4].type: unknown type '4bits'")
        self.assertRegex(gw.log(), r"Modbus\.json:\d+:\d+: master\.slaves\[0\]\.timeseries\[4\]\.type")
        _, got = self.latest("Bits", list(want))
        self.assertEqual({k: got[k] for k in want}, want)
        self.assertNotIn("bad4", got)
        self.assertEqual(self.rpc("Bits", 1, "readCoils", None), {"result": {"value": want["co16"]}})
        self.assertEqual(self.rpc("Bits", 2, "writeCoils", [T, F, T, T]), {"result": {"value": [T, F, T, T]}})
        wait_for(lambda: read_state(state)["co"][20:24] == [1, 1, 0, 1], 5, what="coils 20..23 written")
        self.assertEqual(self.rpc("Bits", 3, "readBack", None), {"result": {"value": [T, F, T, T]}})
        self.assertEqual(self.rpc("Bits", 4, "writeReg", want["hr16"]), {"result": {"value": want["hr16"]}})
        wait_for(lambda: read_state(state)["hr"][10] == 0xDA4B, 5, what="register 10 written")
        self.assertEqual(self.rpc("Bits", 5, "readReg", None), {"result": {"value": want["hr16"]}})
        t0 = time.time()
        reply = self.rpc("Bits", 6, "broken", None)
        self.assertLess(time.time() - t0, 2.0)
        self.assertIn("4bits", reply["result"]["error"])
        self.platform.publish("v1/gateway/attributes", {"device": "Bits", "data": {"flags": want["di8"]}})
        wait_for(lambda: read_state(state)["co"][40:48] == coils[:8], 5, what="attribute update written")
        self.assertEqual(gw.stop(), 0)

    def test_rtu_over_pty_libmodbus(self):
        pty = PtyPair(self.workdir)
        self.extra.append(pty)
        state = os.path.join(self.workdir, "state.json")
        regs = device_regs("32float", -7.75, "BIG", "LITTLE")
        self.peer([LMB, "rtu", pty.a, "19200", "-u", "7", "-h", "0=%d,1=%d,2=%d" % (regs[0], regs[1], 0x1234),
                   "-s", state])
        slave = slave_cfg("Rtu", type="serial", method="rtu", port=pty.b, baudrate=19200, unitId=7,
                          byteOrder="BIG", wordOrder="LITTLE",
                          timeseries=[{"tag": "f", "type": "32float", "functionCode": 3, "objectsCount": 2,
                                       "address": 0},
                                      {"tag": "h", "type": "16uint", "functionCode": 3, "objectsCount": 1,
                                       "address": 2}],
                          rpc=[{"tag": "setH", "type": "16uint", "functionCode": 6, "objectsCount": 1, "address": 2}])
        gw = self.gateway(connectors=[modbus_connector([slave])]).start()
        _, values = self.latest("Rtu", ["f", "h"])
        self.assertEqual(values, {"f": -7.75, "h": 0x1234})
        self.assertEqual(self.rpc("Rtu", 1, "setH", 4321), {"result": {"value": 4321}})
        wait_for(lambda: read_state(state)["hr"][2] == 4321, 5)
        self.latest("Rtu", ["h"])
        wait_for(lambda: self.platform.telemetry("Rtu")[-1][2].get("h") == 4321, 5, what="new value polled")
        self.assertEqual(gw.stop(), 0)

    def test_pymodbus_transports(self):
        """UDP (MBAP and RTU framing), RTU and ASCII over TCP, TLS (the reference's bare-PDU framing and
        MBAP), ASCII and RTU over serial lines — all slaves of one gateway."""
        cert = os.path.join(self.workdir, "cert.pem")
        key = os.path.join(self.workdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        pty = PtyPair(self.workdir)
        self.extra.append(pty)
        pty2 = PtyPair(self.workdir, "2")
        self.extra.append(pty2)
        keys = [{"tag": "t", "type": "16int", "functionCode": 3, "objectsCount": 1, "address": 0, "byteOrder": "BIG"},
                {"tag": "e", "type": "32float", "functionCode": 4, "objectsCount": 2, "address": 1},
                {"tag": "on", "type": "bits", "functionCode": 1, "objectsCount": 1, "address": 2}]
        slaves = []
        variants = [("udp", "socket", "udp"), ("udp", "rtu", "udp"), ("tcp", "rtu", "tcp"), ("tcp", "ascii", "tcp"),
                    ("tls", "tls", "tcp"), ("tls", "socket", "tls"), ("serial", "ascii", "serial"),
                    ("serial", "rtu", "serial")]
        ptys = {"ascii": pty, "rtu": pty2}
        for i, (transport, framer, gtype) in enumerate(variants):
            e = device_regs("32float", 1.25 * (i + 1), "LITTLE", "LITTLE")
            values = {"hr": {"0": (i + 1) * 100}, "ir": {"1": e[0], "2": e[1]}, "co": {"2": 1}}
            name = "Py %s %s" % (transport, framer)
            argv = [PY, PYPEER, "--transport", transport, "--framer", framer, "--values", json.dumps(values)]
            cfg = slave_cfg(name, type=gtype, method=framer, timeseries=keys)
            if transport == "serial":
                argv += ["--device", ptys[framer].a, "--baudrate", "19200"]
                cfg.update(port=ptys[framer].b, baudrate=19200)
            else:
                port = free_port()
                argv += ["--port", str(port)]
                cfg.update(port=port)
            if transport == "tls":
                argv += ["--cert", cert, "--key", key]
                cfg["tls"] = {"cafile": cert}  # the server certificate is verified against it
            self.peer(argv)
            slaves.append(cfg)
        # a TLS slave whose certificate names another address is refused
        other_cert = os.path.join(self.workdir, "other.pem")
        other_key = os.path.join(self.workdir, "other.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", other_key, "-out",
                        other_cert, "-subj", "/CN=elsewhere", "-addext", "subjectAltName=IP:127.0.0.2", "-days", "1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = free_port()
        self.peer([PY, PYPEER, "--transport", "tls", "--framer", "socket", "--port", str(port), "--cert", other_cert,
                   "--key", other_key, "--values", json.dumps({"hr": {"0": 1}})])
        bad = slave_cfg("Py wrong name", type="tls", method="socket", port=port, timeseries=keys,
                        tls={"cafile": other_cert})
        gw = self.gateway(connectors=[modbus_connector(slaves + [bad])]).start()
        for i, cfg in enumerate(slaves):
            _, values = self.latest(cfg["deviceName"], ["t", "e", "on"], timeout=20)
            self.assertEqual(values, {"t": (i + 1) * 100, "e": 1.25 * (i + 1), "on": True}, msg=cfg["deviceName"])
        gw.wait_log("certificate verify failed")
        self.assertEqual(self.platform.telemetry("Py wrong name"), [])
        self.assertEqual(gw.stop(), 0)

    def test_serial_parity_even_pymodbus(self):
        """RTU over a socat pty pair with both ends set to 9600 8E1 (pymodbus serial server; ptys do not
        enforce parity, but both sides must be configured with it and still talk). The exact termios flags
        are pinned by tests/unit/test_modbus_serial.c."""
        pty = PtyPair(self.workdir)
        self.extra.append(pty)
        state = os.path.join(self.workdir, "state.json")
        self.peer([PY, PYPEER, "--transport", "serial", "--framer", "rtu", "--device", pty.a, "--baudrate", "9600",
                   "--parity", "E", "--stopbits", "1", "--bytesize", "8", "--values", json.dumps({"hr": {"0": 4242}}),
                   "--state", state])
        slave = slave_cfg("Even", type="serial", method="rtu", port=pty.b, baudrate=9600, parity="E", stopbits=1,
                          bytesize=8, byteOrder="BIG",
                          timeseries=[{"tag": "v", "type": "16uint", "functionCode": 3, "objectsCount": 1,
                                       "address": 0}],
                          rpc=[{"tag": "setV", "type": "16uint", "functionCode": 6, "objectsCount": 1, "address": 0}])
        gw = self.gateway(connectors=[modbus_connector([slave])]).start()
        _, values = self.latest("Even", ["v"])
        self.assertEqual(values, {"v": 4242})
        self.assertEqual(self.rpc("Even", 1, "setV", 17), {"result": {"value": 17}})
        wait_for(lambda: (read_state(state) or {}).get("hr", [None])[0] == 17, 5, what="the write on the 8E1 line")
        self.assertEqual(gw.stop(), 0)

    def test_report_strategy_on_change(self):
        """A device-level ON_CHANGE strategy: static registers are sent once, a change is sent again."""
        port = free_port()
        state = os.path.join(self.workdir, "state.json")
        self.peer([LMB, "tcp", str(port), "-h", "0=5", "-s", state])
        slave = slave_cfg("Quiet", port=port, pollPeriod=100, byteOrder="BIG",
                          reportStrategy={"type": "ON_CHANGE"},
                          timeseries=[{"tag": "v", "type": "16int", "functionCode": 3, "objectsCount": 1,
                                       "address": 0}],
                          rpc=[{"tag": "setV", "type": "16int", "functionCode": 6, "objectsCount": 1, "address": 0}])
        gw = self.gateway(connectors=[modbus_connector([slave])]).start()
        self.latest("Quiet", ["v"])
        time.sleep(1.5)
        self.assertEqual([v for _, _, v in self.platform.telemetry("Quiet")], [{"v": 5}])
        self.assertEqual(self.rpc("Quiet", 1, "setV", 6), {"result": {"value": 6}})
        wait_for(lambda: len(self.platform.telemetry("Quiet")) == 2, 5, what="the changed value")
        self.assertEqual(self.platform.telemetry("Quiet")[1][2], {"v": 6})
        self.assertEqual(gw.stop(), 0)

    def test_slave_mode_over_tls(self):
        """The gateway's own server (slave section) over TLS: a pymodbus master reads and writes it, the
        values reach the platform, platform RPC and attribute updates land in its registers."""
        import asyncio
        import ssl
        from pymodbus.client import AsyncModbusTlsClient
        cert = os.path.join(self.workdir, "cert.pem")
        key = os.path.join(self.workdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = free_port()
        slave = {"type": "tls", "host": "127.0.0.1", "port": port, "method": "tls", "unitId": 0,
                 "deviceName": "Gateway Slave", "pollPeriod": 100, "sendDataToThingsBoard": True,
                 "byteOrder": "BIG", "wordOrder": "BIG", "security": {"certfile": cert, "keyfile": key},
                 "values": {"holding_registers": {
                     "attributes": [{"address": 1, "type": "string", "tag": "sm", "objectsCount": 1, "value": "ON"}],
                     "timeseries": [{"address": 2, "type": "16int", "tag": "smm", "objectsCount": 1,
                                     "value": 12334}],
                     "attributeUpdates": [{"tag": "shared", "type": "32int", "functionCode": 16, "objectsCount": 2,
                                           "address": 29, "value": 1243}],
                     "rpc": [{"tag": "setValue", "value": 22, "type": "16int", "address": 31, "objectsCount": 1,
                              "functionCode": 6}]},
                     "coils_initializer": {"timeseries": [{"address": 5, "type": "bits", "tag": "coil",
                                                           "objectsCount": 1, "value": 1}]}}}
        gw = self.gateway(connectors=[{"type": "modbus", "name": "Modbus", "config": {"slave": slave}}]).start()
        _, values = self.latest("Gateway Slave", ["smm", "coil"])
        self.assertEqual(values, {"smm": 12334, "coil": True})
        wait_for(lambda: self.platform.attributes().get("Gateway Slave", {}).get("sm") == "ON", 10)
        # pymodbus 3.0's synchronous TLS client cannot read; its asyncio client is used on a private loop
        loop = asyncio.new_event_loop()
        self.addCleanup(loop.close)
        client = AsyncModbusTlsClient("127.0.0.1", port=port, sslctx=ssl.create_default_context(cafile=cert))
        loop.run_until_complete(client.connect())
        self.addCleanup(lambda: loop.run_until_complete(client.close()))

        def read(addr, n):
            return loop.run_until_complete(client.read_holding_registers(addr, n, slave=1)).registers

        self.assertEqual(read(29, 3), [0, 1243, 22])
        # device identification without an identity section: the mandatory basic objects, revision = tbgw's
        from pymodbus.mei_message import ReadDeviceInformationRequest
        ident = loop.run_until_complete(client.execute(ReadDeviceInformationRequest(read_code=1, unit=1)))
        self.assertEqual(set(ident.information), {0, 1, 2})
        self.assertEqual((ident.information[0], ident.conformity), (b"", 0x81))
        self.assertRegex(ident.information[2].decode(), r"^\d+\.\d+")
        loop.run_until_complete(client.write_register(2, 999, slave=1))
        wait_for(lambda: self.platform.telemetry("Gateway Slave")[-1][2].get("smm") == 999, 5,
                 what="the master's write reported")
        self.assertEqual(self.rpc("Gateway Slave", 1, "setValue", 55), {"result": {"value": 55}})
        self.platform.publish("v1/gateway/attributes", {"device": "Gateway Slave", "data": {"shared": -2}})
        wait_for(lambda: read(29, 3) == [0xFFFF, 0xFFFE, 55], 5, what="attribute update and RPC written")
        self.assertEqual(gw.stop(), 0)

    def test_slave_mode_device_identification(self):
        """Function 43 / MEI 14 of the gateway's own server, read by pymodbus clients over TCP, UDP and RTU on
        a serial line: basic, regular and individual reads, and the exceptions for unknown objects / codes."""
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient, ModbusUdpClient
        from pymodbus.mei_message import ReadDeviceInformationRequest
        from pymodbus.transaction import ModbusRtuFramer
        identity = {"vendorName": "ACME Corp", "productCode": "GW-1", "vendorUrl": "https://acme.example",
                    "productName": "Gateway", "modelName": "Model 7", "majorMinorRevision": "3.4"}
        values = {"holding_registers": {"timeseries": [{"address": 0, "type": "16int", "tag": "v",
                                                        "objectsCount": 1, "value": 5}]}}
        pty = PtyPair(self.workdir)
        self.extra.append(pty)
        tcp_port, udp_port = free_port(), free_port()
        sections = [("tcp", {"type": "tcp", "host": "127.0.0.1", "port": tcp_port, "method": "socket"}),
                    ("udp", {"type": "udp", "host": "127.0.0.1", "port": udp_port, "method": "socket"}),
                    ("rtu", {"type": "serial", "port": pty.a, "method": "rtu", "baudrate": 19200})]
        connectors = []
        for name, sec in sections:
            sec.update({"unitId": 1, "deviceName": "Ident " + name, "pollPeriod": 500, "sendDataToThingsBoard": True,
                        "byteOrder": "BIG", "identity": identity, "values": values})
            connectors.append({"type": "modbus", "name": "Modbus " + name, "config": {"slave": sec}})
        gw = self.gateway(connectors=connectors).start()
        for name, _ in sections:
            self.latest("Ident " + name, ["v"])
        clients = {"tcp": ModbusTcpClient("127.0.0.1", port=tcp_port, timeout=3),
                   "udp": ModbusUdpClient("127.0.0.1", port=udp_port, timeout=3),
                   "rtu": ModbusSerialClient(port=pty.b, framer=ModbusRtuFramer, baudrate=19200, timeout=3)}
        want_all = {0: b"ACME Corp", 1: b"GW-1", 2: b"3.4", 3: b"https://acme.example", 4: b"Gateway", 5: b"Model 7"}
        for name, client in clients.items():
            self.assertTrue(client.connect(), name)
            self.addCleanup(client.close)

            def read(code, oid):
                return client.execute(ReadDeviceInformationRequest(read_code=code, object_id=oid, unit=1))

            basic = read(1, 0)
            self.assertFalse(basic.isError(), "%s: %s" % (name, basic))
            self.assertEqual(basic.information, {k: want_all[k] for k in (0, 1, 2)}, name)
            self.assertEqual((basic.conformity, basic.more_follows), (0x82, 0), name)
            regular = read(2, 0)
            self.assertEqual(regular.information, want_all, name)
            one = read(4, 5)
            self.assertEqual(one.information, {5: b"Model 7"}, name)
            unknown = read(4, 6)  # no userApplicationName configured
            self.assertTrue(unknown.isError(), name)
            self.assertEqual(unknown.exception_code, 2, name)
            bad_code = read(7, 0)
            self.assertTrue(bad_code.isError(), name)
            self.assertEqual(bad_code.exception_code, 3, name)
            # the connection still serves register reads afterwards
            self.assertEqual(client.read_holding_registers(0, 1, slave=1).registers, [5], name)
        self.assertEqual(gw.stop(), 0)

    def test_killed_slave_does_not_slow_the_others(self):
        ports = [free_port() for _ in range(3)]
        peers = [self.peer([LMB, "tcp", str(p), "-h", "0=%d" % (i + 1)]) for i, p in enumerate(ports)]
        hung = free_port()
        import socket
        hung_sock = socket.socket()
        hung_sock.bind(("127.0.0.1", hung))
        hung_sock.listen(8)  # accepts connections, never answers
        self.addCleanup(hung_sock.close)
        key = [{"tag": "v", "type": "16int", "functionCode": 3, "objectsCount": 1, "address": 0}]
        slaves = [slave_cfg("S%d" % i, port=p, pollPeriod=100, timeout=1, retries=0, timeseries=key)
                  for i, p in enumerate(ports)]
        slaves.append(slave_cfg("Hung", port=hung, pollPeriod=100, timeout=1, retries=0, timeseries=key))
        gw = self.gateway(connectors=[modbus_connector(slaves)]).start()
        for i in range(3):
            self.latest("S%d" % i, ["v"])
        peers[1].stop()
        t_kill = time.time() * 1000
        time.sleep(3)
        wait_for(lambda: {"device": "S1"} in [p for _, p in self.platform.all("v1/gateway/disconnect")], 10,
                 what="disconnect of the killed slave")
        for name in ("S0", "S2"):
            stamps = [ts for _, ts, _ in self.platform.telemetry(name) if t_kill + 200 <= ts <= t_kill + 2800]
            gaps = [b - a for a, b in zip(stamps, stamps[1:])]
            print("%s: %d polls in 2.6 s after the kill, max gap %d ms" % (name, len(stamps), max(gaps)))
            # 26 expected; a poll blocked behind the hung or killed slave would leave gaps of >= 1000 ms
            self.assertGreaterEqual(len(stamps), 12 if SLOW == 1 else 6)
            self.assertLess(max(gaps), 700)
        self.assertEqual(self.platform.telemetry("Hung"), [])
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
