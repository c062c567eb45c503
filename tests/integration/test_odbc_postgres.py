"""ODBC connector against PostgreSQL through its ODBC driver (Debian postgresql + odbc-postgresql,
"PostgreSQL Unicode"): a throw-away cluster started by the test on a free loopback port. The
reference's odbc.json on ThingsBoard's ts_kv table (uuid entity ids, as pyodbc shows them:
upper-case), the SQL types the SQLite driver cannot show (NUMERIC, DATE, TIMESTAMP, uuid, SMALLINT,
REAL) and the reference's procedure RPCs (procedureOne, procedureTwo with its configured args)
checked in the database."""

import json
import os
import shutil
import subprocess
import time
import unittest

from tbgwtest import SOURCE_DIR, GatewayTestCase, free_port, wait_for, main

REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "odbc.json")
PG_BIN = "/usr/lib/postgresql/15/bin"
HAVE_PG = os.path.exists(os.path.join(PG_BIN, "pg_ctl")) and os.path.exists("/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so")


def as_postgres(cmd):
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.geteuid() == 0 else cmd


class Cluster:
    def __init__(self, workdir):
        os.chmod(workdir, 0o755)
        self.dir = os.path.join(workdir, "pg")
        os.makedirs(self.dir)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        subprocess.run(as_postgres([PG_BIN + "/initdb", "-D", self.dir + "/data", "-U", "postgres", "--auth=trust",
                                    "-E", "UTF8"]), check=True, capture_output=True)
        subprocess.run(as_postgres([PG_BIN + "/pg_ctl", "-D", self.dir + "/data", "-w", "-l", self.dir + "/log",
                                    "-o", "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (self.port, self.dir),
                                    "start"]), check=True, capture_output=True)
        self.psql("CREATE DATABASE thingsboard", db="postgres")

    def psql(self, sql, db="thingsboard"):
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db, "-At",
                              "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self):
        subprocess.run(as_postgres([PG_BIN + "/pg_ctl", "-D", self.dir + "/data", "-m", "immediate", "stop"]),
                       capture_output=True)


@unittest.skipUnless(HAVE_PG, "postgresql and odbc-postgresql are not installed")
class OdbcPostgres(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.pg = Cluster(self.workdir)
        self.extra.append(self.pg)

    def conn_str(self):
        return "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=%d;Database=thingsboard;Uid=postgres;Pwd=postgres;" \
               % self.pg.port

    def rpc(self, device, rid, method, params=None):
        data = {"id": rid, "method": method}
        if params is not None:
            data["params"] = params
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": data})
        return wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 15,
                        what="rpc reply %d" % rid)[0]["data"]

    def test_reference_config_types_and_procedures(self):
        pg = self.pg
        pg.psql("CREATE TABLE ts_kv (entity_id uuid, key int, ts bigint, bool_v boolean, str_v varchar(255),"
                " long_v bigint, dbl_v double precision)")
        pg.psql("INSERT INTO ts_kv VALUES ('0b2f6a4e-1c1d-4e5f-9a7b-3c2d1e0f9a8b', 1, 100, NULL, NULL, 42, NULL),"
                " ('0b2f6a4e-1c1d-4e5f-9a7b-3c2d1e0f9a8b', 1, 101, true, NULL, NULL, NULL)")
        pg.psql("CREATE TABLE calls (name text, a text, b int, c double precision)")
        pg.psql("CREATE FUNCTION procedureOne() RETURNS void AS $$ INSERT INTO calls (name) VALUES ('one') $$"
                " LANGUAGE sql")
        pg.psql("CREATE FUNCTION procedureTwo(a text, b int, c double precision) RETURNS void AS"
                " $$ INSERT INTO calls VALUES ('two', a, b, c) $$ LANGUAGE sql")
        pg.psql("CREATE TABLE t (id serial, n numeric(12,3), d date, tm timestamp, u uuid, s smallint, r real,"
                " big numeric(30,0), txt text, b boolean)")
        pg.psql("INSERT INTO t (n, d, tm, u, s, r, big, txt, b) VALUES (12.5, '2024-02-29', '2024-02-29 13:14:15.25',"
                " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', -3, 0.5, 123456789012345678901234567890, 'ünï', false)")
        with open(REFERENCE) as f:
            ref = json.load(f)
        ref["connection"]["str"] = self.conn_str()
        ref["polling"]["period"] = 0.3
        types = {"connection": {"str": self.conn_str() + "BoolsAsChar=0;"},
                 "polling": {"query": "SELECT * FROM t WHERE id > ? ORDER BY id", "period": 0.3,
                             "iterator": {"column": "id", "query": "SELECT 0"}},
                 "mapping": {"device": {"name": "'Types'"}, "timeseries": "*"}}
        # encoding "utf-16le": text parameters are bound as SQL_C_WCHAR (UTF-16 text); decoding.wchar
        # applies to columns the driver reports as wide, which psqlodbc does not do for a connection
        # made through the ANSI calls, so its text columns stay narrow UTF-8 and are unaffected
        wide = {"connection": {"str": self.conn_str(), "encoding": "utf-16le", "decoding": {"wchar": "utf-16le"}},
                "polling": {"query": "SELECT id, txt FROM t WHERE id > ? ORDER BY id", "period": 0.3,
                            "iterator": {"column": "id", "value": 0}},
                "mapping": {"device": {"name": "'Wide'"}, "timeseries": "*"},
                "serverSideRpc": {"methods": [{"name": "put", "query": "INSERT INTO calls (name, a) VALUES ('wide', ?)",
                                               "args": ["Grüße €"]}]}}
        gw = self.gateway(connectors=[{"type": "odbc", "name": "PG", "config": ref},
                                      {"type": "odbc", "name": "PG types", "config": types},
                                      {"type": "odbc", "name": "PG wide", "config": wide}]).start()
        dev = "ODBC 0B2F6A4E-1C1D-4E5F-9A7B-3C2D1E0F9A8B"
        wait_for(lambda: len(self.platform.telemetry(dev)) >= 2, 20, what="reference rows")
        self.assertEqual([v["value"] for _, _, v in self.platform.telemetry(dev)], [42, "1"])  # psqlodbc: BoolsAsChar
        self.assertIn({"device": dev, "type": "postgres"}, [p for _, p in self.platform.all("v1/gateway/connect")])
        tel = wait_for(lambda: self.platform.telemetry("Types"), 20, what="typed row")[0][2]
        self.assertEqual(tel["n"], 12.5)
        self.assertEqual(tel["d"], "2024-02-29")
        self.assertEqual(tel["tm"], "2024-02-29T13:14:15.250000")
        self.assertEqual(tel["u"], "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
        self.assertEqual(tel["s"], -3)
        self.assertEqual(tel["r"], 0.5)
        self.assertEqual(tel["big"], 1.2345678901234568e+29)
        self.assertEqual(tel["txt"], "ünï")
        self.assertEqual(tel["id"], 1)
        self.assertIs(tel["b"], False)
        # the reference's procedures: {CALL procedureOne}, {CALL procedureTwo (?,?,?)} with its args
        self.assertEqual(self.rpc(dev, 1, "procedureOne"), {"success": True})
        self.assertEqual(self.rpc(dev, 2, "procedureTwo"), {"success": True})
        # overrideRpcConfig: the request's args are bound instead
        self.assertEqual(self.rpc(dev, 3, "procedureTwo", {"args": ["x'); DROP TABLE calls; --", 5, 0.25]}),
                         {"success": True})
        self.assertEqual(pg.psql("SELECT name, a, b, c FROM calls ORDER BY name, b").split("\n"),
                         ["one|||", "two|One|2|3", "two|x'); DROP TABLE calls; --|5|0.25"])
        self.assertEqual(self.rpc(dev, 4, "get", "procedure_name=procedureOne;"), {"result": {"success": True}})
        wait_for(lambda: self.platform.telemetry("Wide"), 20, what="the row read as wide text")
        self.assertEqual(self.platform.telemetry("Wide")[0][2], {"id": 1, "txt": "ünï"})
        self.assertEqual(self.rpc("Wide", 5, "put"), {"success": True})
        self.assertEqual(pg.psql("SELECT a FROM calls WHERE name = 'wide'"), "Grüße €")
        self.assertEqual(gw.stop(), 0)  # a clean exit (and no leak under ASan)

    def test_server_restart_reconnects(self):
        """The server goes away mid-run: the failed poll is logged with its SQL state, the connector
        reconnects with backoff (reconnectPeriod caps it) and carries on from its iterator."""
        pg = self.pg
        pg.psql("CREATE TABLE m (id int, v int)")
        pg.psql("INSERT INTO m VALUES (1, 10)")
        cfg = {"connection": {"str": self.conn_str(), "reconnectPeriod": 1},
               "polling": {"query": "SELECT id, v FROM m WHERE id > ? ORDER BY id", "period": 0.3,
                           "iterator": {"column": "id", "value": 0}},
               "mapping": {"device": {"name": "'M'"}, "timeseries": [{"name": "v", "column": "v"}]}}
        gw = self.gateway(connectors=[{"type": "odbc", "name": "PG", "config": cfg}]).start()
        wait_for(lambda: [x["v"] for _, _, x in self.platform.telemetry("M")] == [10], 20, what="first row")
        pg.stop()
        gw.wait_log("polling.query failed: [", 15)
        time.sleep(1.5)
        subprocess.run(as_postgres([PG_BIN + "/pg_ctl", "-D", pg.dir + "/data", "-w", "-l", pg.dir + "/log", "-o",
                                    "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (pg.port, pg.dir),
                                    "start"]), check=True, capture_output=True)
        pg.psql("INSERT INTO m VALUES (2, 20)")
        wait_for(lambda: [x["v"] for _, _, x in self.platform.telemetry("M")] == [10, 20], 20,
                 what="the row after the restart")
        self.assertIn("cannot connect to the database: [", gw.log())
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
