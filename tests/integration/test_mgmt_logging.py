"""Logging: logs.json handlers (files with rotation, formats, levels), remote logging through the
RemoteLoggingLevel shared attribute, error counters telemetry."""

import glob
import json
import os
import subprocess
import time

from tbgwtest import GatewayTestCase, TBGW_BIN, test_connector, wait_for, main

FMT = "%(asctime)s.%(msecs)03d - |%(levelname)s| - [%(filename)s] - %(module)s - %(funcName)s - %(lineno)d - %(message)s"


def logs_json(handlers, loggers, root_level="ERROR"):
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"LogFormatter": {"class": "logging.Formatter", "format": FMT,
                                            "datefmt": "%Y-%m-%d %H:%M:%S"}},
            "handlers": handlers, "loggers": loggers,
            "root": {"level": root_level, "handlers": ["consoleHandler"]}}


CONSOLE = {"class": "logging.StreamHandler", "formatter": "LogFormatter", "level": 0, "stream": "ext://sys.stdout"}
ROT = "thingsboard_gateway.tb_utility.tb_rotating_file_handler.TimedRotatingFileHandler"


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def own_telemetry(platform):
    out = []
    for _, p in platform.all("v1/devices/me/telemetry"):
        out.extend(p if isinstance(p, list) else [{"ts": 0, "values": p}])
    return out


class LogFiles(GatewayTestCase):
    def test_reference_style_files_levels_and_size_rotation(self):
        handlers = {
            "consoleHandler": CONSOLE,
            "serviceHandler": {"class": ROT, "formatter": "LogFormatter", "filename": "./logs/service.log",
                               "backupCount": 2, "interval": 3, "when": "D", "maxBytes": 600, "encoding": "utf-8"},
            "connectorHandler": {"class": ROT, "formatter": "LogFormatter", "filename": "./logs/Connector Log.log",
                                 "backupCount": 7, "interval": 3, "when": "D", "maxBytes": 0},
        }
        loggers = {"service": {"handlers": ["serviceHandler", "consoleHandler"], "level": "INFO", "propagate": False},
                   "connector": {"handlers": ["connectorHandler"], "level": "DEBUG", "propagate": False}}
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=100, failAfter=2)],
                          extra_files={"logs.json": logs_json(handlers, loggers)})
        gw.start(env={"TBGW_LOG_LEVEL": ""})
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        # each rename logs an INFO line on "service": enough to roll the 600-byte file several times
        for i in range(12):
            self.platform.publish("v1/devices/me/rpc/request/%d" % (i + 1),
                                  {"method": "gateway_device_renamed", "params": {"Dev %d" % i: "New %d" % i}})
        wait_for(lambda: len(self.platform.all("v1/devices/me/rpc/response/12")) > 0, 10)
        logdir = os.path.join(self.workdir, "logs")  # relative to the working directory, not the config
        wait_for(lambda: "renamed to \"New 11\"" in "".join(read(p) for p in glob.glob(logdir + "/service.log*")),
                 10, what="last rename line in the service log files")
        self.assertEqual(gw.stop(), 0)
        backups = sorted(glob.glob(os.path.join(logdir, "service.log.*")))
        self.assertEqual(len(backups), 2, backups)  # backupCount
        for p in backups + [os.path.join(logdir, "service.log")]:
            self.assertLess(os.path.getsize(p), 600 + 400, p)
        text = read(os.path.join(logdir, "service.log")) + "".join(read(p) for p in backups)
        self.assertRegex(text, r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} - \|INFO\| - \[router\.c\] - router - "
                               r"gw_method - \d+ - device \"Dev \d+\" renamed to \"New \d+\"")
        self.assertNotIn("|DEBUG|", text)  # service at INFO
        # the connector file: snake_case name like the reference, DEBUG lines of connector.<name>
        conn = read(os.path.join(logdir, "connector_log.log"))
        self.assertIn("connector stopped unexpectedly", conn)
        self.assertNotIn("renamed", conn)
        # console handler got service lines in the reference format too
        self.assertIn("- |INFO| - [router.c]", gw.log())

    def test_timed_rotation_by_seconds(self):
        handlers = {"consoleHandler": CONSOLE,
                    "serviceHandler": {"class": ROT, "formatter": "LogFormatter", "filename": "./logs/service.log",
                                       "backupCount": 3, "interval": 1, "when": "S"}}
        loggers = {"service": {"handlers": ["serviceHandler"], "level": "INFO", "propagate": False}}
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)],
                          extra_files={"logs.json": logs_json(handlers, loggers)})
        gw.start(env={"TBGW_LOG_LEVEL": ""})
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        for i in range(8):
            self.platform.publish("v1/devices/me/rpc/request/%d" % (i + 1),
                                  {"method": "gateway_device_renamed", "params": {"A%d" % i: "B%d" % i}})
            time.sleep(0.6)
        self.assertEqual(gw.stop(), 0)
        backups = glob.glob(os.path.join(self.workdir, "logs", "service.log.*"))
        self.assertTrue(1 <= len(backups) <= 3, backups)
        for b in backups:
            self.assertRegex(os.path.basename(b), r"^service\.log\.\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d$")

    def test_bad_logs_json_is_explained_and_console_kept(self):
        handlers = {"consoleHandler": CONSOLE,
                    "serviceHandler": {"class": ROT, "filename": "./logs/service.log", "when": "fortnight"}}
        gw = self.gateway(connectors=[test_connector(messages=1)],
                          extra_files={"logs.json": logs_json(handlers, {"service": {"handlers": ["serviceHandler"]}})})
        out = subprocess.run([TBGW_BIN, "-c", gw.config_path, "--check-config"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertRegex(out.stdout, r"logs\.json:\d+:\d+: handlers\.serviceHandler\.when: expected S, M, H, D")
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "logs")))  # checking creates nothing
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        self.assertRegex(gw.log(), r"logs\.json:\d+:\d+: handlers\.serviceHandler\.when: expected S, M, H, D")
        self.assertIn("|INFO| [service]", gw.log())
        self.assertEqual(gw.stop(), 0)


class RemoteLogging(GatewayTestCase):
    def test_level_from_attribute_response_and_update(self):
        requests = []

        def on_msg(client, userdata, msg):
            if msg.topic.startswith("v1/devices/me/attributes/request/"):
                body = json.loads(msg.payload)
                requests.append(body)
                if "RemoteLoggingLevel" in body.get("sharedKeys", ""):
                    rid = msg.topic.rsplit("/", 1)[1]
                    client.publish("v1/devices/me/attributes/response/" + rid,
                                   json.dumps({"shared": {"RemoteLoggingLevel": "INFO"}}), qos=1)
        self.platform.client.message_callback_add("v1/devices/me/attributes/request/+", on_msg)
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=500)])
        gw.start()
        wait_for(lambda: requests, 10, what="attribute request for RemoteLoggingLevel")
        gw.wait_log("remote logging level set to INFO")
        for i in range(45):
            self.platform.publish("v1/devices/me/rpc/request/%d" % (i + 1),
                                  {"method": "gateway_device_renamed", "params": {"R%d" % i: "S%d" % i}})

        def lines():
            return [e for e in own_telemetry(self.platform) if "SERVICE_LOGS" in e["values"]]
        wait_for(lambda: any("renamed to \\\"S44\\\"" in json.dumps(e) for e in lines()), 15, what="remote log lines")
        entries = lines()
        for e in entries:
            self.assertEqual(e["values"]["SERVICE_LOGS"], e["values"]["LOGS"])
            self.assertNotIn("|DEBUG|", e["values"]["LOGS"])
            if "renamed" not in e["values"]["LOGS"]:
                continue
            self.assertRegex(e["values"]["LOGS"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - \|INFO\|<.*> \[router\.c\] - "
                                                  r"router gw_method - \d+ - ")
        texts = [e["values"]["LOGS"] for e in entries]
        for i in range(45):
            self.assertEqual(sum('"R%d" renamed to "S%d"' % (i, i) in t for t in texts), 1, i)
        ts = [e["ts"] for e in entries]
        self.assertEqual(len(set(ts)), len(ts))  # one entry per line, none overwritten
        for _, p in self.platform.all("v1/devices/me/telemetry"):
            self.assertLessEqual(len([e for e in p if "LOGS" in e.get("values", {})]), 20)
        # NONE switches it off
        self.platform.publish("v1/devices/me/attributes", {"RemoteLoggingLevel": "NONE"})
        gw.wait_log("remote logging level set to NONE")
        time.sleep(1.5)
        n = len(lines())
        for i in range(5):
            self.platform.publish("v1/devices/me/rpc/request/%d" % (100 + i),
                                  {"method": "gateway_device_renamed", "params": {"X%d" % i: "Y%d" % i}})
        wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/104"), 10)
        time.sleep(1.5)
        self.assertEqual(len(lines()), n)
        self.assertEqual(gw.stop(), 0)

    def test_connector_remote_logging_from_its_file(self):
        conn = test_connector(name="Flaky", messages=0, intervalMs=50, failAfter=2)
        conn["config"].update({"enableRemoteLogging": True, "logLevel": "ERROR"})
        gw = self.gateway(connectors=[conn])
        gw.start()
        gw.wait_log("connector stopped unexpectedly", 15)
        entries = wait_for(lambda: [e for e in own_telemetry(self.platform) if "Flaky_LOGS" in e["values"]], 15,
                           what="connector log lines")
        self.assertIn("|ERROR|", entries[0]["values"]["Flaky_LOGS"])
        self.assertIn("connector stopped unexpectedly", entries[0]["values"]["Flaky_LOGS"])
        self.assertNotIn("LOGS", entries[0]["values"])  # only gateway loggers fill LOGS
        # the gateway's own loggers stay off without RemoteLoggingLevel
        self.assertEqual([e for e in own_telemetry(self.platform) if "SERVICE_LOGS" in e["values"]], [])
        self.assertEqual(gw.stop(), 0)

    def test_off_by_default_sends_nothing(self):
        gw = self.gateway(connectors=[test_connector(messages=3)])
        gw.start()
        wait_for(lambda: len(self.platform.telemetry("Test Device 1")) >= 3, 15)
        self.platform.publish("v1/devices/me/rpc/request/1",
                              {"method": "gateway_device_renamed", "params": {"A": "B"}})
        wait_for(lambda: self.platform.all("v1/devices/me/rpc/response/1"), 10)
        time.sleep(1.5)
        self.assertEqual([e for e in own_telemetry(self.platform) if "LOGS" in e["values"]], [])
        self.assertEqual(gw.stop(), 0)


class ErrorCounters(GatewayTestCase):
    def test_counts_per_logger_and_total(self):
        gw = self.gateway(connectors=[test_connector(name="Flaky", messages=0, intervalMs=50, failAfter=2)])
        gw.start()
        gw.wait_log("connector stopped unexpectedly", 15)

        def counters():
            return [e["values"] for e in own_telemetry(self.platform) if "ALL_ERRORS_COUNT" in e["values"]]
        c = wait_for(counters, 15, what="error counters telemetry")
        self.assertGreaterEqual(c[0]["ALL_ERRORS_COUNT"], 1)
        self.assertGreaterEqual(c[0]["Flaky_ERRORS_COUNT"], 1)
        self.assertLessEqual(c[0]["Flaky_ERRORS_COUNT"], c[0]["ALL_ERRORS_COUNT"])
        t_first = time.time()
        wait_for(lambda: len(counters()) >= 2, 20, what="a second counters message after more errors")
        self.assertGreaterEqual(time.time() - t_first, 3.5)  # at most every 5 s
        self.assertGreater(counters()[1]["Flaky_ERRORS_COUNT"], c[0]["Flaky_ERRORS_COUNT"])
        self.assertEqual(gw.stop(), 0)

    def test_quiet_without_errors(self):
        gw = self.gateway(connectors=[test_connector(messages=0, intervalMs=200)])
        gw.start()
        wait_for(lambda: self.platform.telemetry("Test Device 1"), 15)
        time.sleep(6)
        self.assertEqual([e for e in own_telemetry(self.platform) if "ALL_ERRORS_COUNT" in e["values"]], [])
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
