"""ODBC connector against the SQLite ODBC driver (Debian libsqliteodbc, DSN-less connection string
"Driver=SQLite3;Database=<file>"): the reference's odbc.json (only the connection string pointed at
a SQLite file), SQL types, the iterator on a table empty at start and persisted across a restart,
RPCs (statements with bound parameters, reserved get/set) and attribute updates checked in the
database."""

import hashlib
import json
import os
import sqlite3
import subprocess
import time

from tbgwtest import SOURCE_DIR, TBGW_BIN, GatewayTestCase, wait_for, main

REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "odbc.json")

TS_KV = "CREATE TABLE ts_kv (entity_id TEXT, ts BIGINT, bool_v BOOLEAN, str_v VARCHAR(64), long_v BIGINT, dbl_v DOUBLE)"


class Odbc(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.db = os.path.join(self.workdir, "data.db")
        self.sql(TS_KV)

    def sql(self, statement, args=()):
        con = sqlite3.connect(self.db)
        try:
            cur = con.execute(statement, args)
            rows = cur.fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def reference(self):
        with open(REFERENCE) as f:
            cfg = json.load(f)
        cfg["connection"]["str"] = "Driver=SQLite3;Database=%s" % self.db
        cfg["polling"]["period"] = 0.3
        return cfg

    def start(self, cfg, name="ODBC"):
        return self.gateway(connectors=[{"type": "odbc", "name": name, "config": cfg}]).start()

    def rpc(self, device, rid, method, params=None):
        data = {"id": rid, "method": method}
        if params is not None:
            data["params"] = params
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": data})
        return wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 15,
                        what="rpc reply %d" % rid)[0]["data"]

    def own_attributes(self, device):
        """The device's attributes without the connectorName/connectorType the gateway adds."""
        attrs = dict(self.platform.attributes(device)[device])
        for k in ("connectorName", "connectorType"):
            attrs.pop(k, None)
        return attrs

    def values(self, device, key):
        return [v[key] for d, _, v in self.platform.telemetry(device) if key in v]

    def test_reference_config(self):
        rows = [("e%d" % (i % 3), 1000 + i, None, None, None, None) for i in range(15)]
        rows[0] = ("e0", 1000, None, "text", None, None)
        rows[1] = ("e1", 1001, None, None, 2 ** 53 + 1, None)
        rows[2] = ("e2", 1002, None, None, None, 1.5)
        rows[3] = ("e0", 1003, 1, None, None, None)
        rows[4:] = [(e, ts, None, None, ts, None) for e, ts, _, _, _, _ in rows[4:]]
        for r in rows:
            self.sql("INSERT INTO ts_kv (entity_id, ts, bool_v, str_v, long_v, dbl_v) VALUES (?,?,?,?,?,?)", r)
        gw = self.start(self.reference())
        # LIMIT 10 per poll: all 15 rows arrive over two polls, in ts order, each exactly once
        wait_for(lambda: len(self.platform.telemetry()) >= 15, 15, what="15 rows")
        time.sleep(1)
        tel = self.platform.telemetry()
        self.assertEqual(len(tel), 15)
        self.assertEqual(sorted(ts for _, ts, _ in tel), list(range(1000, 1015)))
        self.assertEqual(tel[0][0], "ODBC e0")
        self.assertEqual(self.values("ODBC e0", "value")[:2], ["text", True])
        self.assertEqual(self.values("ODBC e1", "value")[0], 2 ** 53 + 1)
        self.assertEqual(self.values("ODBC e2", "value")[0], 1.5)
        # "attributes": "*": every non-NULL column
        attrs = self.platform.attributes("ODBC e2")["ODBC e2"]
        self.assertEqual(attrs["entity_id"], "e2")
        self.assertNotIn("bool_v", attrs)
        # the literal type "postgres" is a constant
        self.assertIn({"device": "ODBC e0", "type": "postgres"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        # a new row is picked up by the iterator
        self.sql("INSERT INTO ts_kv VALUES ('e1', 2000, NULL, 'late', NULL, NULL)")
        wait_for(lambda: "late" in self.values("ODBC e1", "value"), 10, what="the new row")
        # RPC: SQLite has no stored procedures, so the CALL fails and says so
        self.assertEqual(self.rpc("ODBC e0", 1, "procedureOne"), {"success": False})
        self.assertEqual(self.rpc("ODBC e0", 2, "unknownProc"), {"success": False})
        self.assertEqual(gw.stop(), 0)  # a clean exit (and no leak under ASan)

    def test_types_and_broken_rows(self):
        self.sql("CREATE TABLE t (id INTEGER, dev TEXT, i BIGINT, r REAL, d DECIMAL(10,2), dd DATE, tm TIMESTAMP,"
                 " s VARCHAR(20), n INTEGER)")
        self.sql("INSERT INTO t VALUES (1, 'T', -9223372036854775807, 2.25, 12.50, '2024-02-29',"
                 " '2024-02-29 13:14:15', 'ü', NULL)")
        self.sql("INSERT INTO t VALUES (2, NULL, 5, NULL, 7, NULL, NULL, NULL, NULL)")  # no device name: skipped
        self.sql("INSERT INTO t VALUES (3, 'T', 6, NULL, NULL, NULL, NULL, NULL, NULL)")
        cfg = {"connection": {"str": "Driver=SQLite3;Database=%s" % self.db},
               "polling": {"query": "SELECT * FROM t WHERE id > ? ORDER BY id", "period": 0.3,
                           "iterator": {"column": "id", "value": 0}},
               "mapping": {"device": {"name": "dev.upper()", "type": "'meter' if i > 0 else 'probe'"},
                           "attributes": [{"nameExpression": "'attr_' + str(id)", "column": "s"}],
                           "timeseries": "*"}}
        self.start(cfg)
        wait_for(lambda: len(self.platform.telemetry("T")) >= 2, 15, what="two rows of T")
        first = self.platform.telemetry("T")[0][2]
        self.assertEqual(first["i"], -9223372036854775807)
        self.assertEqual(first["r"], 2.25)
        self.assertEqual(first["d"], "12.5")  # the SQLite driver reports DECIMAL columns as SQL_VARCHAR
        self.assertEqual(first["dd"], "2024-02-29")
        self.assertEqual(first["tm"], "2024-02-29T13:14:15")
        self.assertEqual(first["s"], "ü")
        self.assertNotIn("n", first)
        self.assertEqual(self.platform.telemetry("T")[1][2], {"id": 3, "dev": "T", "i": 6})
        attrs = self.platform.attributes("T")["T"]
        self.assertEqual(attrs["attr_1"], "ü")
        self.assertNotIn("attr_3", attrs)  # NULL value: no attribute
        self.assertIn({"device": "T", "type": "probe"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        time.sleep(1)
        self.assertEqual(len(self.platform.telemetry("T")), 2)  # row 2 was skipped and not read again

    def test_iterator_empty_table_and_restart(self):
        cfg = self.reference()
        cfg["polling"]["iterator"]["persistent"] = True
        gw = self.start(cfg)
        time.sleep(1.5)  # empty at start: MIN(ts) - 1 is NULL; asked again
        self.sql("INSERT INTO ts_kv VALUES ('a', 10, NULL, NULL, 1, NULL)")
        self.sql("INSERT INTO ts_kv VALUES ('a', 11, NULL, NULL, 2, NULL)")
        wait_for(lambda: self.values("ODBC a", "value") == [1, 2], 15, what="rows inserted after start")
        time.sleep(0.7)
        self.assertEqual(gw.stop(), 0)
        files = os.listdir(os.path.join(gw.cfgdir, "odbc"))
        self.assertEqual(len(files), 1)
        self.assertRegex(files[0], r"^[0-9a-f]{40}\.json$")
        with open(os.path.join(gw.cfgdir, "odbc", files[0])) as f:
            saved = json.load(f)
        self.assertEqual(saved, {"name": "ts", "value": 11, "total": 2})
        self.sql("INSERT INTO ts_kv VALUES ('a', 12, NULL, NULL, 3, NULL)")
        self.start(cfg)
        wait_for(lambda: self.values("ODBC a", "value") == [1, 2, 3], 15, what="the row inserted while stopped")
        time.sleep(1)
        self.assertEqual(self.values("ODBC a", "value"), [1, 2, 3])

    def test_rpc_and_attribute_updates(self):
        self.sql("CREATE TABLE dev (name TEXT, k TEXT, v)")
        self.sql("INSERT INTO ts_kv VALUES ('r', 1, NULL, NULL, 1, NULL)")
        cfg = self.reference()
        cfg["serverSideRpc"]["methods"] += [
            {"name": "put", "query": "INSERT INTO dev (name, k, v) VALUES (?, ?, ?)", "args": ["x", "y", "z"]},
            {"name": "count", "query": "SELECT COUNT(*) AS n, MAX(v) AS top FROM dev WHERE name = ?",
             "args": ["x"], "result": True}]
        cfg["attributeUpdates"] = [{"deviceNameFilter": "ODBC .*", "attributeFilter": "sp.*",
                                    "query": "INSERT INTO dev (name, k, v) VALUES (?, ?, ?)",
                                    "args": ["${deviceName}", "${attributeKey}", "${attributeValue}"]}]
        self.start(cfg)
        wait_for(lambda: self.platform.telemetry("ODBC r"), 15, what="first row")
        self.assertEqual(self.rpc("ODBC r", 1, "put"), {"success": True})
        # overrideRpcConfig: the request's args replace the configured ones; a quote stays data
        self.assertEqual(self.rpc("ODBC r", 2, "put", {"args": ["x", "q", "it's; DROP TABLE dev"]}), {"success": True})
        self.assertEqual(self.rpc("ODBC r", 3, "count"), {"n": 2, "top": "z"})
        self.assertEqual(self.sql("SELECT name, k, v FROM dev ORDER BY rowid"),
                         [("x", "y", "z"), ("x", "q", "it's; DROP TABLE dev")])
        # reserved get/set
        self.assertEqual(self.rpc("ODBC r", 4, "set", "query=INSERT INTO dev (name, k) VALUES (?, ?);value=s,t;"),
                         {"result": {"success": True}})
        self.assertEqual(self.rpc("ODBC r", 5, "get", "query=SELECT k FROM dev WHERE name = ?;value=s;"
                                                      "with_result=true;"), {"result": {"k": "t"}})
        bad = self.rpc("ODBC r", 6, "get", "query=SELECT nope FROM nowhere;")
        self.assertIn("Error during executing reserved RPC", bad["get"])
        # attribute update: one row per matching key, values bound with their type
        self.platform.publish("v1/gateway/attributes", {"device": "ODBC r", "data": {"sp": 21.5, "other": 1}})
        wait_for(lambda: self.sql("SELECT v FROM dev WHERE k = 'sp'"), 10, what="attribute update row")
        self.assertEqual(self.sql("SELECT name, v FROM dev WHERE k = 'sp'"), [("ODBC r", 21.5)])
        self.assertEqual(self.sql("SELECT COUNT(*) FROM dev WHERE k = 'other'"), [(0,)])

    def test_database_unreachable_then_back(self):
        cfg = self.reference()
        os.remove(self.db)
        os.makedirs(self.db)  # a folder: the driver cannot open it
        cfg["connection"]["reconnectPeriod"] = 0.5
        gw = self.start(cfg)
        time.sleep(1.5)
        self.assertIn("cannot connect", gw.log())
        os.rmdir(self.db)
        self.sql(TS_KV)
        self.sql("INSERT INTO ts_kv VALUES ('b', 5, NULL, NULL, 7, NULL)")
        wait_for(lambda: self.values("ODBC b", "value") == [7], 15, what="data once the database opens")
        self.assertEqual(gw.stop(), 0)  # a clean exit (and no leak under ASan)

    def test_hanging_query_is_cancelled(self):
        """A statement running past polling.queryTimeout is cancelled (SQLCancel from the watchdog, as
        the SQLite driver ignores SQL_ATTR_QUERY_TIMEOUT), logged with its SQL state and answered;
        polling goes on."""
        self.sql("INSERT INTO ts_kv VALUES ('h', 1, NULL, NULL, 1, NULL)")
        cfg = self.reference()
        cfg["polling"]["queryTimeout"] = 1
        cfg["serverSideRpc"]["methods"].append(
            {"name": "forever", "result": True,
             "query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"})
        hang = {"connection": {"str": "Driver=SQLite3;Database=%s" % self.db},
                "polling": {"query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"
                                     " SELECT x AS id FROM c WHERE x < ?", "period": 0.3, "queryTimeout": 1,
                            "iterator": {"column": "id", "value": 0}},
                "mapping": {"device": {"name": "'never'"}, "timeseries": "*"}}
        gw = self.gateway(connectors=[{"type": "odbc", "name": "ODBC", "config": cfg},
                                      {"type": "odbc", "name": "Hang", "config": hang}]).start()
        wait_for(lambda: self.values("ODBC h", "value") == [1], 15, what="first row")
        gw.wait_log("[connector.Hang] polling.query failed: [", 10)
        t0 = time.time()
        self.assertEqual(self.rpc("ODBC h", 1, "forever"), {"success": False})
        self.assertLess(time.time() - t0, 5)
        self.assertRegex(gw.log(), r"RPC forever failed: \[[0-9A-Z]{5}\]")
        self.assertIn("(timed out after 1 s, cancelled)", gw.log())
        self.sql("INSERT INTO ts_kv VALUES ('h', 2, NULL, NULL, 2, NULL)")
        wait_for(lambda: self.values("ODBC h", "value") == [1, 2], 15, what="polling after the cancelled query")
        self.assertEqual(gw.stop(), 0)  # a clean exit (and no leak under ASan)

    def test_whole_mapping(self):
        """"mapping": "*": every row carries deviceName (deviceType), and attributes and telemetry (or
        timeseries) as JSON text; they pass through with their JSON types. A row without deviceName or
        with a column that is not JSON is skipped and counted; the others go on."""
        self.sql("CREATE TABLE feed (id INTEGER, deviceName TEXT, deviceType TEXT, attributes TEXT,"
                 " telemetry TEXT, timeseries TEXT, ts BIGINT)")
        rows = [(1, "W1", "meter", '{"model": "X", "fw": 3}', '{"temp": 21.5, "on": true, "big": 9007199254740993}',
                 None, 5000),
                (2, "W1", None, None, '[{"ts": 6000, "values": {"temp": 22}}, {"ts": 7000, "values": {"temp": 23}}]',
                 None, None),
                (3, None, None, '{"a": 1}', None, None, None),
                (4, "W2", None, "not json", '{"x": 1}', None, None),
                (5, "W2", None, '[{"k1": "v"}, {"k2": null}]', None, '{"level": 7}', 8000)]
        for r in rows:
            self.sql("INSERT INTO feed VALUES (?,?,?,?,?,?,?)", r)
        cfg = {"connection": {"str": "Driver=SQLite3;Database=%s" % self.db},
               "polling": {"query": "SELECT * FROM feed WHERE id > ? ORDER BY id", "period": 0.3,
                           "iterator": {"column": "id", "value": 0}},
               "mapping": "*"}
        gw = self.start(cfg)
        wait_for(lambda: self.platform.telemetry("W2"), 15, what="row 5")
        time.sleep(0.5)
        self.assertEqual(self.platform.telemetry("W1"), [("W1", 5000, {"temp": 21.5, "on": True, "big": 9007199254740993}),
                                                         ("W1", 6000, {"temp": 22}), ("W1", 7000, {"temp": 23})])
        self.assertEqual(self.own_attributes("W1"), {"model": "X", "fw": 3})
        self.assertEqual(self.platform.telemetry("W2"), [("W2", 8000, {"level": 7})])
        self.assertEqual(self.own_attributes("W2"), {"k1": "v"})
        self.assertIn({"device": "W1", "type": "meter"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        self.assertIn({"device": "W2", "type": "default"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        log = gw.log()
        self.assertIn("row skipped: device name: the row has no deviceName text column", log)
        self.assertIn("row skipped: column attributes: not JSON", log)
        self.assertEqual(gw.stop(), 0)

    def test_custom_converter(self):
        """"converter" names a custom uplink converter (examples/odbc_custom_converter, found among the
        plugins): it gets every row as a JSON object and the device name from mapping.device.name as
        the topic; what it returns reaches the platform. An unknown converter is a configuration error."""
        self.sql("CREATE TABLE m (id INTEGER, dev TEXT, model TEXT, temp_c10 INTEGER, hum REAL, note TEXT, ts BIGINT)")
        self.sql("INSERT INTO m VALUES (1, 'c1', 'TH-2', 215, 40.5, 'ignored', 1234)")
        self.sql("INSERT INTO m VALUES (2, NULL, 'TH-2', 1, 1, NULL, 1235)")  # no device name: skipped
        cfg = {"connection": {"str": "Driver=SQLite3;Database=%s" % self.db},
               "polling": {"query": "SELECT * FROM m WHERE id > ? ORDER BY id", "period": 0.3,
                           "iterator": {"column": "id", "value": 0}},
               "mapping": {"device": {"name": "'Conv ' + dev"}},
               "converter": {"type": "custom", "extension": "OdbcRowConverter",
                             "extensionConfig": {"attributes": ["model"], "scale": {"temp_c10": 0.1},
                                                 "deviceType": "thermo"}}}
        gw = self.start(cfg)
        wait_for(lambda: self.platform.telemetry("Conv c1"), 15, what="the converted row")
        (dev, ts, values), = self.platform.telemetry("Conv c1")
        self.assertEqual(ts, 1234)
        self.assertEqual(values["id"], 1)
        self.assertAlmostEqual(values["temp_c10"], 21.5)
        self.assertEqual(values["hum"], 40.5)
        self.assertNotIn("note", values)
        self.assertEqual(self.own_attributes("Conv c1"), {"model": "TH-2"})
        self.assertIn({"device": "Conv c1", "type": "thermo"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        self.assertIn("row skipped: device name:", gw.log())
        self.assertEqual(gw.stop(), 0)
        # the reference's form: "converter": "<ClassName>"; an unknown one is refused, naming the field
        cfg["converter"] = "NoSuchConverter"
        bad = self.gateway(connectors=[{"type": "odbc", "name": "Bad", "config": cfg}])
        p = subprocess.run([TBGW_BIN, "-c", bad.config_path, "--check-config"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertIn("converter", p.stdout.decode())
        self.assertIn("NoSuchConverter", p.stdout.decode())
        self.assertNotEqual(p.returncode, 0)

    def test_encodings(self):
        """connection.decoding.char: text the driver gives as bytes of another encoding (latin-1 stored
        in SQLite) arrives as UTF-8; connection.encoding: text parameters are written in that encoding
        (checked as bytes in the database); an unknown encoding is a configuration error."""
        self.sql("CREATE TABLE enc (id INTEGER, dev TEXT, s TEXT)")
        self.sql("CREATE TABLE out (k TEXT, v TEXT)")
        self.sql("INSERT INTO enc VALUES (1, 'L', CAST(X'436166E920C37C' AS TEXT))")  # "Café Ã|" in latin-1
        cfg = {"connection": {"str": "Driver=SQLite3;Database=%s" % self.db, "encoding": "latin-1",
                              "decoding": {"char": "latin-1", "metadata": "cp1252"}},
               "polling": {"query": "SELECT * FROM enc WHERE id > ? ORDER BY id", "period": 0.3,
                           "iterator": {"column": "id", "value": 0}},
               "mapping": {"device": {"name": "dev"}, "timeseries": [{"name": "s", "column": "s"}]},
               "serverSideRpc": {"methods": [{"name": "put", "query": "INSERT INTO out VALUES (?, ?)",
                                              "args": ["k", "v"]}], "overrideRpcConfig": True}}
        gw = self.start(cfg)
        wait_for(lambda: self.values("L", "s"), 15, what="the latin-1 row")
        self.assertEqual(self.values("L", "s"), ["Café Ã|"])
        self.assertEqual(self.rpc("L", 1, "put", {"args": ["é", "Grüße"]}), {"success": True})
        self.assertEqual(self.sql("SELECT hex(k), hex(v) FROM out"), [("E9", "4772FCDF65")])
        self.assertIn("connection.decoding.metadata: column names are always read as UTF-8", gw.log())
        self.assertEqual(gw.stop(), 0)
        cfg["connection"]["decoding"]["char"] = "klingon-8"
        bad = self.gateway(connectors=[{"type": "odbc", "name": "Bad", "config": cfg}])
        p = subprocess.run([TBGW_BIN, "-c", bad.config_path, "--check-config"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertIn('connection.decoding.char: unknown encoding "klingon-8"', p.stdout.decode())
        self.assertNotEqual(p.returncode, 0)

    def test_dsn_and_configuration_mistakes(self):
        """A DSN from an odbc.ini (ODBCINI); a broken mapping item is reported with file:line:column and
        skipped while the rest runs; a configuration without polling.query is refused, naming it."""
        ini = os.path.join(self.workdir, "odbc.ini")
        with open(ini, "w") as f:
            f.write("[gwtest]\nDriver = SQLite3\nDatabase = %s\n" % self.db)
        self.sql("INSERT INTO ts_kv VALUES ('d', 1, NULL, NULL, 4, NULL)")
        cfg = self.reference()
        cfg["connection"]["str"] = "DSN=gwtest"
        cfg["mapping"]["timeseries"].append({"name": "broken", "value": "long_v +"})
        cfg["attributeUpdates"] = [{"deviceNameFilter": ".*", "attributeFilter": "x"},
                                   {"query": "SELECT 1", "attributeFilter": "(("}]
        gw = self.gateway(connectors=[{"type": "odbc", "name": "ODBC", "config": cfg}])
        p = subprocess.run([TBGW_BIN, "-c", gw.config_path, "--check-config"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode()
        with open(os.path.join(gw.cfgdir, "ODBC.json")) as f:
            lines = f.read().split("\n")
        ln = next(i for i, line in enumerate(lines) if "long_v +" in line)
        col = lines[ln].index("long_v +") + 1 + len("long_v +")
        self.assertIn("ODBC.json:%d:%d: mapping.timeseries[1].value" % (ln + 1, col), out)
        self.assertRegex(out, r"ODBC\.json:\d+:\d+: attributeUpdates\[0\]: query: expected SQL")
        self.assertRegex(out, r"ODBC\.json:\d+:\d+: attributeUpdates\[1\]: attributeFilter: not a valid")
        gw.start(env={"ODBCINI": ini})
        wait_for(lambda: self.values("ODBC d", "value") == [4], 15, what="a row through the DSN")
        self.assertEqual(gw.stop(), 0)
        del cfg["polling"]["query"]
        bad = self.gateway(connectors=[{"type": "odbc", "name": "Bad", "config": cfg}])
        p = subprocess.run([TBGW_BIN, "-c", bad.config_path, "--check-config"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertRegex(p.stdout.decode(), r"Bad\.json:\d+:\d+: polling\.query: expected SQL")


if __name__ == "__main__":
    main()
