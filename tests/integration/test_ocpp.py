"""OCPP connector: charge points driven by Debian's python3-websockets speaking OCPP-J 1.6 (and a
2.0.1 boot) against the reference's ocpp.json (port moved to a free one): authorization, the
handled actions and their answers, snake_case templates, downlink as DataTransfer and as OCPP
actions with the charge point's answer in the RPC reply, malformed frames, and 200 charge points at once."""

import asyncio
import base64
import json
import os
import ssl
import subprocess
import threading
import time

import websockets

from tbgwtest import SLOW, SOURCE_DIR, TBGW_BIN, GatewayTestCase, free_port, wait_for, wake_rate, main

REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "ocpp.json")
BASIC = "Basic " + base64.b64encode(b"admin:admin").decode()


class Loop:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        async def close_all():
            await asyncio.gather(*(cp.ws.close() for cp in ChargePoint.opened), return_exceptions=True)
            ChargePoint.opened.clear()
        try:
            self.run(close_all(), timeout=20)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


class ChargePoint:
    """One charge point: sends CALLs and awaits their answers; answers the central system's CALLs."""

    opened = []

    def __init__(self, port, path, proto="ocpp1.6", auth=BASIC, answer=None, ca=None):
        self.ca = ca
        self.url = "%s://127.0.0.1:%d/%s" % ("wss" if ca else "ws", port, path)
        self.proto, self.auth = proto, auth
        self.answer = answer or {"status": "Accepted", "data": "done"}
        self.pending, self.calls, self.seq = {}, [], 0

    async def connect(self):
        headers = {"Authorization": self.auth} if self.auth else {}
        kw = {}
        if self.ca:
            kw["ssl"] = ssl.create_default_context(cafile=self.ca)
        self.ws = await websockets.connect(self.url, subprotocols=[self.proto] if self.proto else None,
                                           extra_headers=headers, open_timeout=10, **kw)
        ChargePoint.opened.append(self)
        self.reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self):
        try:
            await self._read_all()
        except websockets.ConnectionClosed:
            pass

    async def _read_all(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if msg[0] == 2:
                self.calls.append(msg)
                await self.ws.send(json.dumps([3, msg[1], self.answer]))
            elif msg[1] in self.pending:
                self.pending.pop(msg[1]).set_result(msg)
            else:
                self.calls.append(msg)

    async def call(self, action, payload):
        self.seq += 1
        uid = "m%d" % self.seq
        fut = asyncio.get_event_loop().create_future()
        self.pending[uid] = fut
        await self.ws.send(json.dumps([2, uid, action, payload]))
        return await asyncio.wait_for(fut, 10)

    async def raw(self, text, uid="-1"):
        fut = asyncio.get_event_loop().create_future()
        self.pending[uid] = fut
        await self.ws.send(text)
        return await asyncio.wait_for(fut, 10)

    async def close(self):
        await self.ws.close()


class OcppCase(GatewayTestCase):
    tls = False

    def setUp(self):
        super().setUp()
        self.aio = Loop()
        self.port = free_port()
        with open(REFERENCE) as f:
            cfg = json.load(f)
        cfg["centralSystem"].update({"host": "127.0.0.1", "port": self.port})
        if self.tls:
            self.cert, key = os.path.join(self.workdir, "cs.pem"), os.path.join(self.workdir, "cs.key")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                            "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out",
                            self.cert], check=True, capture_output=True)
            cfg["centralSystem"]["connection"] = {"type": "tls", "cert": self.cert, "key": key}
        self.gw = self.gateway(connectors=[{"type": "ocpp", "name": "OCPP", "config": cfg}]).start()
        self.gw.wait_log("central system listening", timeout=10)

    def tearDown(self):
        self.aio.stop()
        super().tearDown()

    def cp(self, path="bidon/hello/CP_1", **kw):
        return self.aio.run(ChargePoint(self.port, path, **kw).connect())

    def rpc(self, device, rid, method, params):
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                             "params": params}})
        return wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 15,
                        what="rpc reply %d" % rid)[0]["data"]

    def reference_flow(self):
        cp = self.cp()
        boot = self.aio.run(cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "X1"}))
        self.assertEqual(boot[2]["status"], "Accepted")
        self.assertEqual(boot[2]["interval"], 10)
        wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/connect") if p.get("device") == "Acme X1"], 10,
                 what="device connect")
        mv = {"connectorId": 1, "meterValue": [{"timestamp": "2026-12-03T10:00:00Z",
                                                "sampledValue": [{"value": "230.5", "measurand": "Voltage"}]}]}
        self.assertEqual(self.aio.run(cp.call("MeterValues", mv))[2], {})
        attrs = wait_for(lambda: self.platform.attributes("Acme X1").get("Acme X1", {}).get("temp1") and
                         self.platform.attributes("Acme X1")["Acme X1"], 10, what="attributes from MeterValues")
        self.assertEqual(attrs["temp1"], "230.5")
        self.assertEqual(attrs["vendorId"], "1")
        dt = self.aio.run(cp.call("DataTransfer", {"vendorId": "acme", "data": json.dumps({"temp": 21.5})}))
        self.assertEqual(dt[2], {"status": "Accepted"})
        tel = wait_for(lambda: [v for d, _, v in self.platform.telemetry("Acme X1") if "temp" in v], 10,
                       what="telemetry from DataTransfer")
        self.assertEqual(tel[0], {"temp": "21.5"})
        hb = self.aio.run(cp.call("Heartbeat", {}))
        self.assertTrue(hb[2]["currentTime"].endswith("Z"))
        self.assertEqual(self.aio.run(cp.call("Authorize", {"idTag": "T1"}))[2], {"idTagInfo": {"status": "Accepted"}})
        st = self.aio.run(cp.call("StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 0,
                                                       "timestamp": "2026-12-03T10:00:00Z"}))
        self.assertIsInstance(st[2]["transactionId"], int)
        self.assertEqual(self.aio.run(cp.call("StatusNotification", {"connectorId": 1, "status": "Available",
                                                                      "errorCode": "NoError"}))[2], {})
        err = self.aio.run(cp.call("FrobnicateNow", {}))
        self.assertEqual(err[0], 4)
        self.assertEqual(err[2], "NotImplemented")
        bad = self.aio.run(cp.raw("this is not json"))
        self.assertEqual((bad[0], bad[2]), (4, "ProtocolError"))
        bad = self.aio.run(cp.raw(json.dumps([2, "u1", "Heartbeat"]), uid="u1"))
        self.assertEqual((bad[0], bad[2]), (4, "FormationViolation"))

        # downlink: attribute update as DataTransfer (vendorId "1")
        self.platform.publish("v1/gateway/attributes", {"device": "Acme X1", "data": {"shared": "on"}})
        call = wait_for(lambda: [c for c in cp.calls if c[2] == "DataTransfer"], 10, what="DataTransfer to the CP")[0]
        self.assertEqual(call[3], {"vendorId": "1", "data": '{"shared":"on"}'})
        # RPC rpc1: ${params} in a DataTransfer; the charge point's answer is the reply
        self.assertEqual(self.rpc("Acme X1", 1, "rpc1", {"a": 1}), {"result": {"status": "Accepted", "data": "done"}})
        self.assertEqual(cp.calls[-1][3], {"vendorId": "1", "data": '{"a":1}'})
        # an OCPP action by name
        self.assertEqual(self.rpc("Acme X1", 2, "Reset", {"type": "Soft"})["result"]["status"], "Accepted")
        self.assertEqual(cp.calls[-1][2:], ["Reset", {"type": "Soft"}])
        self.rpc("Acme X1", 3, "RemoteStartTransaction", {"id_tag": "T9", "connector_id": 2})
        self.assertEqual(cp.calls[-1][2:], ["RemoteStartTransaction", {"idTag": "T9", "connectorId": 2}])
        # reserved set
        self.rpc("Acme X1", 4, "set", "value=42;")
        self.assertEqual(cp.calls[-1][3], {"vendorId": "1", "data": "42"})
        self.assertEqual(self.rpc("Acme X1", 5, "nope", {}), {"error": "Method not found"})
        return cp



class Ocpp(OcppCase):
    def test_reference_config_end_to_end(self):
        cp = self.reference_flow()
        # idle with a charge point connected, the connector thread sleeps in lws on its sockets, the
        # downlink descriptor and its call deadlines; an RPC still goes out at once
        rate = wake_rate(self.gw.proc.pid, "OCPP")
        self.assertLess(rate, 10.0 * SLOW, "OCPP thread context switches per second at idle: %.1f" % rate)
        t0 = time.time()
        self.assertEqual(self.rpc("Acme X1", 6, "Reset", {"type": "Hard"})["result"]["status"], "Accepted")
        self.assertLess(time.time() - t0, 1.0 * SLOW)
        self.assertEqual(cp.calls[-1][2:], ["Reset", {"type": "Hard"}])

    def test_authorization_subprotocol_and_ids(self):
        with self.assertRaises(Exception):
            self.cp(auth="Basic " + base64.b64encode(b"admin:wrong").decode())
        with self.assertRaises(Exception):
            self.cp(auth=None)
        with self.assertRaises(Exception):
            self.cp(proto=None)
        with self.assertRaises(Exception):
            self.cp(path="other/CP_9")
        self.cp(auth="Bearer ACCESS_TOKEN")  # a token from the list
        cp2 = self.cp(proto="ocpp2.0.1")
        boot = self.aio.run(cp2.call("BootNotification", {"chargingStation": {"vendorName": "Volt", "model": "Z"},
                                                           "reason": "PowerUp"}))
        self.assertEqual(boot[2]["status"], "Accepted")
        wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/connect") if p.get("device") == "Volt Z"], 10,
                 what="2.0.1 device")
        self.assertIn("refused", self.gw.log())

    def test_many_charge_points_and_a_flooding_one(self):
        n = 200

        async def one(i):
            cp = await ChargePoint(self.port, "bidon/hello/CP_1_%d" % i).connect()
            await cp.call("BootNotification", {"chargePointVendor": "Fleet", "chargePointModel": "M%d" % i})
            await cp.call("MeterValues", {"connectorId": i, "meterValue": [{"timestamp": "2026-12-03T10:00:00Z",
                                                                             "sampledValue": [{"value": str(i)}]}]})
            return cp

        async def flood():
            cp = await ChargePoint(self.port, "bidon/hello/CP_1_flood").connect()
            try:
                for _ in range(1000):
                    await cp.ws.send("garbage")
                await asyncio.sleep(1)
            except websockets.ConnectionClosed:
                return True
            return cp.ws.closed

        async def all_of_them():
            f = asyncio.ensure_future(flood())
            cps = await asyncio.gather(*(one(i) for i in range(n)))
            return cps, await f

        cps, flood_closed = self.aio.run(all_of_them(), timeout=60)
        self.assertTrue(flood_closed)

        def arrived():
            attrs = self.platform.attributes()
            return sum(1 for i in range(n) if attrs.get("Fleet M%d" % i, {}).get("temp1") == str(i))
        wait_for(lambda: arrived() == n, 30, what="all %d charge points' values" % n)
        self.assertIn("malformed frames in a row; closing", self.gw.log())


class OcppTls(OcppCase):
    """The same central system over TLS (wss://), its certificate verified by the charge point."""
    tls = True

    def cp(self, path="bidon/hello/CP_1", **kw):
        return self.aio.run(ChargePoint(self.port, path, ca=self.cert, **kw).connect())

    def test_reference_config_over_tls(self):
        self.reference_flow()
        self.assertIn("(TLS)", self.gw.log())


class OcppConfig(GatewayTestCase):
    def test_bad_entries_reported_with_their_place(self):
        """A charge point entry or one key that cannot be used is reported with file:line:column (by
        --check-config too) and skipped; the rest of the file is used."""
        with open(REFERENCE) as f:
            cfg = json.load(f)
        cfg["chargePoints"][0]["attributes"].append({"key": "k", "value": "${x}"})  # no messageTypeFilter
        cfg["chargePoints"].append({"idRegexpPattern": "("})
        gw = self.gateway(connectors=[{"type": "ocpp", "name": "OCPP", "config": cfg}])
        check = subprocess.run([TBGW_BIN, "--check-config", "-c", gw.config_path], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout)
        n_attrs = len(cfg["chargePoints"][0]["attributes"]) - 1
        self.assertRegex(check.stdout, r"warning: \S*OCPP\.json:\d+:\d+: chargePoints\[0\]\.attributes\[%d\]"
                                       r"\.messageTypeFilter: expected" % n_attrs)
        self.assertRegex(check.stdout, r"warning: \S*OCPP\.json:\d+:\d+: chargePoints\[%d\]\.idRegexpPattern: bad "
                                       r"regular expression" % (len(cfg["chargePoints"]) - 1))


if __name__ == "__main__":
    main()
