"""Integration test harness: real peers on 127.0.0.1 with free ports.

- Broker: a mosquitto process (the platform, or an external broker for connectors).
- Platform: a paho-mqtt client on the platform broker that records everything the gateway
  publishes (v1/#), answers getSessionLimits, and can send downlink messages.
- Gateway: a tbgw process started on a generated configuration folder.

Uses Debian's /usr/bin/python3 with python3-paho-mqtt. Every wait is bounded."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt

TBGW_BIN = os.environ.get("TBGW_BIN", os.path.join(os.path.dirname(__file__), "../../build/tbgw"))
BUILD_DIR = os.environ.get("TBGW_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE_DIR = os.environ.get("TBGW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
TEST_PLUGIN = os.path.join(BUILD_DIR, "plugins", "test_connector.so")
SANITIZED = "asan" in os.path.basename(os.path.normpath(BUILD_DIR))
SLOW = 3 if SANITIZED else 1  # sanitizer builds are slower: scale timeouts


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout * SLOW, what))


def thread_switches(pid):
    """{tid: (name, context switches so far, voluntary + involuntary)} of every thread of pid; a
    connector's thread carries the connector's name, cut to 15 characters."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                st = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        out[tid] = (st["Name"].strip(), int(st["voluntary_ctxt_switches"]) + int(st["nonvoluntary_ctxt_switches"]))
    return out


def switches(pid, thread=None):
    """Context switches so far of the threads of pid, or only of those named thread."""
    return sum(n for name, n in thread_switches(pid).values() if thread is None or name == thread[:15])


def rss_kb(pid):
    """Resident set size of pid in kB (VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wake_rate(pid, thread=None, secs=3.0):
    """Context switches per second of pid's threads (or of the thread named thread) over secs."""
    a = switches(pid, thread)
    time.sleep(secs)
    return (switches(pid, thread) - a) / secs


def wait_port(port, timeout=10.0):
    def ok():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False
    wait_for(ok, timeout, what="port %d" % port)


class Broker:
    """A mosquitto broker on a free loopback port. passwords: {user: password} adds a password
    file (anonymous refused)."""

    def __init__(self, workdir, port=None, passwords=None, name="broker", persistent=False):
        self.workdir = workdir
        self.port = port or free_port()
        self.passwords = passwords
        self.name = name
        self.persistent = persistent  # keep sessions (subscriptions, queued messages) over restarts
        self.proc = None

    def start(self):
        conf = os.path.join(self.workdir, "%s.conf" % self.name)
        lines = ["listener %d 127.0.0.1" % self.port, "log_dest none",
                 "max_queued_messages 1000000", "max_inflight_messages 0"]
        if self.persistent:
            pdir = os.path.join(self.workdir, "%s-db" % self.name)
            os.makedirs(pdir, exist_ok=True)
            os.chmod(pdir, 0o777)  # mosquitto started as root writes it as user "mosquitto"
            os.chmod(self.workdir, 0o755)
            lines += ["persistence true", "persistence_location %s/" % pdir, "autosave_interval 0"]
        else:
            lines += ["persistence false"]
        if self.passwords:
            pw = os.path.join(self.workdir, "%s.passwd" % self.name)
            open(pw, "w").close()
            for user, password in self.passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", pw, user, password], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(pw, 0o644)  # mosquitto started as root reads it as user "mosquitto"
            os.chmod(self.workdir, 0o755)
            lines += ["allow_anonymous false", "password_file %s" % pw]
        else:
            lines += ["allow_anonymous true"]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class SilentPort:
    """A listener with a full accept queue: connection attempts get no answer at all."""

    def __init__(self, port):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(0)
        self.fill = []
        for _ in range(3):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            self.fill.append(s)
        time.sleep(0.05)

    def close(self):
        for s in self.fill:
            s.close()
        self.ls.close()


class Platform:
    """Plays ThingsBoard on a broker: records uplink, answers getSessionLimits."""

    def __init__(self, broker, limits=None, answer_limits=True):
        self.broker = broker
        self.limits = limits if limits is not None else {"maxPayloadSize": 65536, "maxInflightMessages": 1000}
        self.answer_limits = answer_limits
        self.lock = threading.Lock()
        self.messages = []  # (topic, parsed json or raw bytes)
        self.raw_messages = []  # (topic, payload bytes as received)
        self.client = None

    def start(self):
        # MQTT 5 "no local": the recorder does not see the downlink it publishes itself
        # A persistent session on a persistent broker: what the gateway publishes while the recorder
        # is away (broker restart) is queued for it and delivered when it resumes the session.
        from paho.mqtt.properties import Properties
        from paho.mqtt.packettypes import PacketTypes
        self.client = mqtt.Client(client_id="platform-%d-%d" % (os.getpid(), id(self)), protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        opts = mqtt.SubscribeOptions(qos=1, noLocal=True)
        self.client.on_connect = lambda c, u, f, rc, props=None: c.subscribe("v1/#", options=opts)
        self.client.reconnect_delay_set(0.1, 0.5)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        # clean_start False from the first connect on: mosquitto persists a session over a restart only
        # then (each test has a fresh broker and a unique client id, so nothing stale is resumed)
        self.client.connect("127.0.0.1", self.broker.port, 30, clean_start=False, properties=props)
        self.client.loop_start()
        wait_for(lambda: self.client.is_connected(), 10, what="platform client connected")
        time.sleep(0.1)
        return self

    def resume(self):
        """After a broker restart: a fresh client on the same persistent session."""
        if self.client:
            self.client.loop_stop()
            self.client = None
        return self.start()

    def stop(self):
        if self.client:
            self.client.loop_stop()
            self.client.disconnect()
            self.client = None

    def _on_message(self, client, userdata, msg):
        try:
            payload = json.loads(msg.payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            payload = msg.payload
        with self.lock:
            self.messages.append((msg.topic, payload))
            self.raw_messages.append((msg.topic, msg.payload))
        if msg.topic.startswith("v1/devices/me/rpc/request/") and isinstance(payload, dict) \
                and payload.get("method") == "getSessionLimits" and self.answer_limits:
            rid = msg.topic.rsplit("/", 1)[1]
            client.publish("v1/devices/me/rpc/response/" + rid, json.dumps(self.limits), qos=1)

    def all(self, topic=None):
        with self.lock:
            return [(t, p) for (t, p) in self.messages if topic is None or t == topic]

    def raw(self, topic=None):
        """Payloads exactly as they arrived (bytes), for checking number texts."""
        with self.lock:
            return [p for (t, p) in self.raw_messages if topic is None or t == topic]

    def clear(self):
        with self.lock:
            self.messages = []
            self.raw_messages = []

    def telemetry(self, device=None):
        """Flattened device telemetry: list of (device, ts, values)."""
        out = []
        for _, p in self.all("v1/gateway/telemetry"):
            for dev, entries in p.items():
                if device is None or dev == device:
                    for e in entries:
                        out.append((dev, e["ts"], e["values"]))
        return out

    def attributes(self, device=None):
        out = {}
        for _, p in self.all("v1/gateway/attributes"):
            for dev, values in p.items():
                if device is None or dev == device:
                    out.setdefault(dev, {}).update(values)
        return out

    def publish(self, topic, payload, qos=1):
        self.client.publish(topic, json.dumps(payload) if not isinstance(payload, (bytes, str)) else payload, qos=qos)


class Gateway:
    """A tbgw process on a configuration folder built from dicts."""

    count = 0

    def __init__(self, workdir, tb_port, connectors=(), storage=None, thingsboard=None, token="TEST_TOKEN",
                 extra_files=None):
        self.workdir = workdir
        self.cfgdir = os.path.join(workdir, "config")
        os.makedirs(self.cfgdir, exist_ok=True)
        tb = {"host": "127.0.0.1", "port": tb_port, "security": {"type": "accessToken", "accessToken": token},
              "statistics": {"enable": False}, "minPackSendDelayMS": 10}
        tb.update(thingsboard or {})
        conf = {"thingsboard": tb, "storage": storage or {"type": "memory", "read_records_count": 100,
                                                         "max_records_count": 100000},
                "connectors": []}
        for c in connectors:
            entry = {"type": c["type"], "name": c["name"], "configuration": c["name"].replace(" ", "_") + ".json"}
            for k in ("class", "plugin"):
                if k in c:
                    entry[k] = c[k]
            conf["connectors"].append(entry)
            with open(os.path.join(self.cfgdir, entry["configuration"]), "w") as f:
                json.dump(c["config"], f, indent=2)
        for name, content in (extra_files or {}).items():
            with open(os.path.join(self.cfgdir, name), "w") as f:
                f.write(content if isinstance(content, str) else json.dumps(content, indent=2))
        self.config_path = os.path.join(self.cfgdir, "tb_gateway.json")
        with open(self.config_path, "w") as f:
            json.dump(conf, f, indent=2)
        Gateway.count += 1
        self.log_path = os.path.join(workdir, "tbgw-%d.log" % Gateway.count)
        self.proc = None
        self.logf = None

    def start(self, env=None, binary=None):
        e = dict(os.environ)
        e.setdefault("TBGW_LOG_LEVEL", "DEBUG")
        e.update(env or {})
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary or TBGW_BIN, "-c", self.config_path], stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=e, cwd=self.workdir, start_new_session=True)
        return self

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, text, timeout=10.0):
        wait_for(lambda: text in self.log(), timeout, what="log line %r" % text)

    def stop(self, timeout=10.0):
        """SIGTERM; returns the exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("tbgw did not exit within %.0fs of SIGTERM" % (timeout * SLOW))
        finally:
            if self.logf:
                self.logf.close()
                self.logf = None
        self.proc = None
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self.logf:
            self.logf.close()
            self.logf = None


def test_connector(name="Test Connector", **cfg):
    base = {"devices": 1, "intervalMs": 100, "messages": 5, "keys": 2}
    base.update(cfg)
    return {"type": "tbgw_test", "name": name, "plugin": TEST_PLUGIN, "config": base}


class GatewayTestCase(unittest.TestCase):
    """Creates a temp folder, a platform broker and a Platform recorder per test."""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="tbgw-it-")
        self.broker = Broker(self.workdir, name="platform", persistent=True).start()
        self.platform = Platform(self.broker).start()
        self.gateways = []
        self.extra = []

    def tearDown(self):
        for g in self.gateways:
            g.kill()
        self.platform.stop()
        self.broker.stop()
        for x in self.extra:
            x.stop()
        if self._outcome_ok():
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            for g in self.gateways:
                try:
                    print("---- tbgw log (%s) ----\n%s" % (g.log_path, g.log()[-6000:]))
                except OSError:
                    pass

    def _outcome_ok(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return True
        errors = getattr(outcome, "errors", None)
        if errors is None:
            result = getattr(outcome, "result", None)
            return not (result and (result.failures or result.errors))
        return all(e[1] is None for e in errors)

    def gateway(self, *args, **kw):
        g = Gateway(self.workdir, self.broker.port, *args, **kw)
        self.gateways.append(g)
        return g


def main():
    unittest.main(verbosity=2)
