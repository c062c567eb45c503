#!/usr/bin/python3
"""BLE notifications through D-Bus into the platform: notifications/s and tbgw CPU per
notification. BlueZ is python3-dbusmock's bluez5 template on a private bus; the notifications
(PropertiesChanged of a characteristic's Value) are emitted by the mock (the connector takes
signals only from BlueZ's bus name), so the rate is bounded by the Python mock; the figure that
matters is tbgw's CPU per notification.

usage: /usr/bin/python3 bench/ble_notify.py [--count 20000]
Needs a build in ./build (tbgw and modules/) or TBGW_BIN / TBGW_BUILD_DIR."""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
os.environ.setdefault("TBGW_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "tbgw"))
os.environ.setdefault("TBGW_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "build"))
import dbus  # noqa: E402
from tbgwtest import Broker, Gateway, Platform, wait_for  # noqa: E402
from test_ble import CHAR_IF, MAC, NOTIFY_UUID, Bluez  # noqa: E402


class Counter(Platform):
    def __init__(self, broker):
        super().__init__(broker)
        self.values = 0
        self.count_lock = threading.Lock()

    def _on_message(self, client, userdata, msg):
        if msg.topic == "v1/gateway/telemetry":
            with self.count_lock:
                self.values += msg.payload.count(b'"t"')
        else:
            super()._on_message(client, userdata, msg)


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=20000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tbgw-ble-bench-")
    bz = broker = platform = gw = None
    try:
        bz = Bluez(work)
        path = bz.add_char(MAC, 1, NOTIFY_UUID, [0, 0])
        bz.add_device(MAC)
        broker = Broker(work, name="platform").start()
        platform = Counter(broker).start()
        cfg = {"name": "BLE", "devices": [{"name": "S", "MACAddress": MAC, "pollPeriod": 60000, "telemetry": [
            {"key": "t", "method": "notify", "characteristicUUID": NOTIFY_UUID, "valueExpression": "[0:2]"}],
            "attributes": []}]}
        gw = Gateway(work, broker.port, connectors=[{"type": "ble", "name": "BLE", "config": cfg}])
        gw.start(env={"DBUS_SYSTEM_BUS_ADDRESS": bz.address, "TBGW_LOG_LEVEL": "WARNING"})
        wait_for(lambda: bool(bz.prop(path, CHAR_IF, "Notifying")), 15, what="StartNotify")
        c0, t0 = cpu_s(gw.proc.pid), time.monotonic()
        mock = dbus.Interface(bz.bus.get_object("org.bluez", path), "org.freedesktop.DBus.Mock")
        for i in range(args.count):
            mock.EmitSignal("org.freedesktop.DBus.Properties", "PropertiesChanged", "sa{sv}as",
                            [CHAR_IF, dbus.Dictionary({"Value": dbus.Array([i & 255, (i >> 8) & 255], signature="y",
                                                                           variant_level=1)}, signature="sv"),
                             dbus.Array([], signature="s")])
        t_sent = time.monotonic()
        wait_for(lambda: platform.values >= args.count, 120, interval=0.02, what="all notifications")
        t1, c1 = time.monotonic(), cpu_s(gw.proc.pid)
        print("notifications: %d sent in %.2f s, all on the platform after %.2f s: %.0f/s; tbgw CPU %.2f s = "
              "%.1f us per notification" % (args.count, t_sent - t0, t1 - t0, args.count / (t1 - t0), c1 - c0,
                                            (c1 - c0) * 1e6 / args.count))
    finally:
        for x in (gw,):
            if x:
                x.kill()
        for x in (platform, broker, bz):
            if x:
                x.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
