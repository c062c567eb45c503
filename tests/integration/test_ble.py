"""BLE connector against BlueZ as python3-dbusmock's bluez5 template on a private D-Bus started here
(pointed at by DBUS_SYSTEM_BUS_ADDRESS), with GATT characteristics added by the test: the reference's
ble.json unchanged (reads, notifications, attribute update, RPC read/write/scan and reserved get/set),
a device that goes away and comes back, and an advertisement-only device with the hex converter."""

import json
import os
import signal
import subprocess
import time

import dbus
import dbus.lowlevel

from tbgwtest import SOURCE_DIR, GatewayTestCase, wait_for, main

REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "ble.json")
CHAR_IF = "org.bluez.GattCharacteristic1"
MOCK_IF = "org.freedesktop.DBus.Mock"
OM_IF = "org.freedesktop.DBus.ObjectManager"
MAC = "4C:65:A8:DF:85:C0"
NOTIFY_UUID = "226caa55-6476-4566-7562-66734470666d"
NAME_UUID = "00002a00-0000-1000-8000-00805f9b34fb"

CHAR_METHODS = [
    ("ReadValue", "a{sv}", "ay", 'ret = self.props["%s"]["Value"]' % CHAR_IF),
    ("WriteValue", "aya{sv}", "",
     'self.props["%s"]["Value"] = dbus.Array(args[0], signature="y")\n'
     'self.props["%s"]["TestWriteType"] = dbus.String(args[1].get("type", ""))' % (CHAR_IF, CHAR_IF)),
    ("StartNotify", "", "", 'self.props["%s"]["Notifying"] = dbus.Boolean(True)' % CHAR_IF),
    ("StopNotify", "", "", 'self.props["%s"]["Notifying"] = dbus.Boolean(False)' % CHAR_IF),
]


class Bluez:
    """A private bus with the bluez5 mock on it."""

    def __init__(self, workdir):
        self.daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self.address = self.daemon.stdout.readline().decode().strip()
        self.bus = dbus.bus.BusConnection(self.address)
        self.start_mock()

    def start_mock(self):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address, DBUS_SESSION_BUS_ADDRESS=self.address)
        self.mock = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--template", "bluez5"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_for(lambda: self.bus.name_has_owner("org.bluez"), 15, what="dbusmock on the bus")
        self.root = self.bus.get_object("org.bluez", "/")
        self.bluez = dbus.Interface(self.root, "org.bluez.Mock")
        self.bluez.AddAdapter("hci0", "gateway")

    def kill_mock(self):
        os.killpg(self.mock.pid, signal.SIGKILL)
        self.mock.wait()
        wait_for(lambda: not self.bus.name_has_owner("org.bluez"), 10, what="dbusmock gone")

    def dev_path(self, mac, adapter="hci0"):
        return "/org/bluez/%s/dev_" % adapter + mac.replace(":", "_")

    def add_char(self, mac, n, uuid, value, flags=("read", "write", "notify"), adapter="hci0"):
        path = self.dev_path(mac, adapter) + "/service0001/char%04x" % n
        props = {"UUID": uuid, "Value": dbus.Array(value, signature="y"), "Notifying": dbus.Boolean(False),
                 "Flags": dbus.Array(flags, signature="s"), "TestWriteType": ""}
        dbus.Interface(self.root, MOCK_IF).AddObject(path, CHAR_IF, props, CHAR_METHODS)
        dbus.Interface(self.root, MOCK_IF).EmitSignal(OM_IF, "InterfacesAdded", "oa{sa{sv}}",
                                                      [dbus.ObjectPath(path), dbus.Dictionary(
                                                          {CHAR_IF: dbus.Dictionary(props, signature="sv")},
                                                          signature="sa{sv}")])
        return path

    def add_device(self, mac, name="sensor", adapter="hci0"):
        return self.bluez.AddDevice(adapter, mac, name)

    def remove_device(self, mac, chars=()):
        """BlueZ drops the device's GATT objects with it."""
        for path in chars:
            dbus.Interface(self.root, MOCK_IF).RemoveObject(path)
            dbus.Interface(self.root, MOCK_IF).EmitSignal(OM_IF, "InterfacesRemoved", "oas", [
                dbus.ObjectPath(path), dbus.Array([CHAR_IF], signature="s")])
        adapter = dbus.Interface(self.bus.get_object("org.bluez", "/org/bluez/hci0"), "org.bluez.Adapter1")
        adapter.RemoveDevice(dbus.ObjectPath(self.dev_path(mac)))

    def prop(self, path, iface, name):
        return dbus.Interface(self.bus.get_object("org.bluez", path), "org.freedesktop.DBus.Properties").Get(iface, name)

    def changed(self, path, iface, props):
        dbus.Interface(self.bus.get_object("org.bluez", path), MOCK_IF).EmitSignal(
            "org.freedesktop.DBus.Properties", "PropertiesChanged", "sa{sv}as", [iface, dbus.Dictionary(props, signature="sv"), dbus.Array([], signature="s")])

    def notify(self, path, value):
        self.changed(path, CHAR_IF, {"Value": dbus.Array(value, signature="y", variant_level=1)})

    def stop(self):
        self.daemon.stdout.close()
        for p in (self.mock, self.daemon):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


class Ble(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.bz = Bluez(self.workdir)
        self.extra.append(self.bz)

    def start_gateway(self, cfg):
        return self.gateway(connectors=[{"type": "ble", "name": "BLE", "config": cfg}]).start(
            env={"DBUS_SYSTEM_BUS_ADDRESS": self.bz.address})

    def rpc(self, device, rid, method, params=None):
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                            "params": params}})
        return wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 10,
                        what="rpc reply %d" % rid)[0]["data"]

    def attrs(self, device):
        """The device's attributes the connector produced (without the core's connectorName/Type)."""
        got = self.platform.attributes(device).get(device, {})
        return {k: v for k, v in got.items() if k not in ("connectorName", "connectorType")}

    def add_sensor(self, name_value):
        notify = self.bz.add_char(MAC, 1, NOTIFY_UUID, [0, 0, 0])
        name = self.bz.add_char(MAC, 2, NAME_UUID, name_value)
        self.bz.add_device(MAC)
        return notify, name

    def test_reference_config(self):
        with open(REFERENCE) as f:
            cfg = json.load(f)
        dev = "Temperature and humidity sensor"
        notify, name = self.add_sensor([1, 23, 5])
        gw = self.start_gateway(cfg)
        # read items: decimal strings of the selected bytes
        attrs = wait_for(lambda: self.attrs(dev), 15, what="attributes")
        self.assertEqual(attrs, {"name": "123cm 5A", "values": "All values: 1235"})
        # notifications: subscribed at connect (upper-case UUID in the config), one record per value
        wait_for(lambda: bool(self.bz.prop(notify, CHAR_IF, "Notifying")), 10, what="StartNotify")
        self.bz.notify(notify, [10, 20, 30])
        tel = wait_for(lambda: [v for _, _, v in self.platform.telemetry(dev)], 10, what="telemetry")
        self.assertEqual(tel[0], {"temperature": "30", "humidity": "10"})
        # a PropertiesChanged from someone other than BlueZ is ignored
        spoof = dbus.lowlevel.SignalMessage(notify, "org.freedesktop.DBus.Properties", "PropertiesChanged")
        spoof.append(CHAR_IF, {"Value": dbus.Array([66, 66, 66], signature="y", variant_level=1)},
                     dbus.Array([], signature="s"), signature="sa{sv}as")
        self.bz.bus.send_message(spoof)
        self.bz.notify(notify, [11, 21, 31])
        wait_for(lambda: len(self.platform.telemetry(dev)) >= 2, 10, what="second notification")
        self.assertNotIn({"temperature": "66", "humidity": "66"}, [v for _, _, v in self.platform.telemetry(dev)])
        # attribute update: str(value) written with response
        self.platform.publish("v1/gateway/attributes", {"device": dev, "data": {"sharedName": 42.5}})
        wait_for(lambda: bytes(self.bz.prop(name, CHAR_IF, "Value")) == b"42.5", 10, what="attribute write")
        self.assertEqual(str(self.bz.prop(name, CHAR_IF, "TestWriteType")), "request")
        # RPC read replies with the UTF-8 text, write with "Ok", scan with the GATT map
        self.assertEqual(self.rpc(dev, 1, "rpcMethod1"), "42.5")
        self.assertEqual(self.rpc(dev, 2, "rpcMethod2", {"on": True}), "Ok")
        self.assertEqual(bytes(self.bz.prop(name, CHAR_IF, "Value")), b"{'on': True}")
        scan = self.rpc(dev, 3, "rpcMethod3")
        self.assertIn(NAME_UUID, scan)
        self.assertIn(NOTIFY_UUID, scan)
        # reserved get/set (case-insensitive UUIDs)
        self.assertEqual(self.rpc(dev, 4, "set", "characteristicUUID=%s;value=hi;" % NAME_UUID.upper()), "Ok")
        self.assertEqual(self.rpc(dev, 5, "get", "characteristicUUID=%s;" % NAME_UUID), "hi")
        self.assertEqual(self.rpc(dev, 6, "get", "characteristicUUID=0000ffff-0000-1000-8000-00805f9b34fb;"),
                         {"error": "characteristic 0000ffff-0000-1000-8000-00805f9b34fb not found on " + dev,
                          "success": False})
        self.assertEqual(self.rpc(dev, 7, "nothing")["error"], "Method not found")
        # the device goes away: requests fail cleanly, the connector stays up
        self.bz.remove_device(MAC, (notify, name))
        gw.wait_log("went away", timeout=10)
        self.assertEqual(self.rpc(dev, 8, "rpcMethod1"),
                         {"error": "device %s is not in range" % dev, "success": False})
        # ... and comes back: connected again as soon as it is seen, notifications flow
        self.platform.clear()
        notify, name = self.add_sensor([7, 8, 9])
        attrs = wait_for(lambda: self.attrs(dev), 15, what="attributes after return")
        self.assertEqual(attrs, {"name": "78cm 9A", "values": "All values: 789"})
        wait_for(lambda: bool(self.bz.prop(notify, CHAR_IF, "Notifying")), 10, what="StartNotify again")
        self.bz.notify(notify, [1, 2, 3])
        tel = wait_for(lambda: [v for _, _, v in self.platform.telemetry(dev)], 10, what="telemetry after return")
        self.assertEqual(tel[0], {"temperature": "3", "humidity": "1"})
        self.assertEqual(gw.stop(), 0)

    def test_advertisement_hex_and_bad_entries(self):
        cfg = {"name": "BLE", "scannerPollPeriod": 1000, "showMap": True, "devices": [
            {"name": "Beacon", "MACAddress": "aa:bb:cc:dd:ee:01", "pollPeriod": 200, "telemetry": [
                {"key": "temp", "dataSourceType": "advertisement", "valueExpression": "[0:2]",
                 "compute": "value / 10"},
                {"key": "flags", "dataSourceType": "advertisement", "valueExpression": "[2]"},
                {"key": "broken", "dataSourceType": "advertisement", "valueExpression": "[0:1]",
                 "compute": "value +* 2"}],
             "attributes": [{"key": "model", "dataSourceType": "advertisement", "valueExpression": "BX-1"}]},
            {"name": "Meter", "MACAddress": "AA:BB:CC:DD:EE:02", "type": "hex", "pollPeriod": 300, "showMap": True, "telemetry": [
                {"key": "counter", "method": "read", "characteristicUUID": NAME_UUID.upper(),
                 "valueExpression": "[1:4]", "compute": "value * 2"},
                {"key": "missing", "method": "read", "characteristicUUID": NAME_UUID, "valueExpression": "[9]"}],
             "attributeUpdates": [{"attributeOnThingsBoard": "mode", "characteristicUUID": NAME_UUID,
                                   "withoutResponse": True}],
             "serverSideRpc": [{"methodRPC": "quiet", "withResponse": False, "characteristicUUID": NAME_UUID,
                                "methodProcessing": "WRITE"}]},
            {"name": "Flaky", "MACAddress": "AA:BB:CC:DD:EE:03", "pollPeriod": 300, "connectRetry": 2,
             "connectRetryInSeconds": 0, "waitAfterConnectRetries": 1, "timeout": 2000,
             "attributes": [{"key": "fw", "characteristicUUID": NAME_UUID, "valueExpression": "v[0].[1]"}]},
            {"name": "NoMac", "MACAddress": "nonsense", "telemetry": [], "attributes": []}]}
        self.bz.add_char("AA:BB:CC:DD:EE:02", 1, NAME_UUID, [0xff, 0x00, 0x01, 0x00])
        self.bz.add_device("AA:BB:CC:DD:EE:02", "meter")
        beacon = self.bz.add_device("AA:BB:CC:DD:EE:01", "beacon")
        self.bz.add_char("AA:BB:CC:DD:EE:03", 1, NAME_UUID, [2, 7])
        flaky = self.bz.add_device("AA:BB:CC:DD:EE:03", "flaky")
        connect = dbus.Interface(self.bz.bus.get_object("org.bluez", flaky), MOCK_IF)
        connect.AddMethod("org.bluez.Device1", "Connect", "", "",
                          "raise dbus.exceptions.DBusException('abort', name='org.bluez.Error.Failed')")
        gw = self.start_gateway(cfg)
        gw.wait_log("Beacon (AA:BB:CC:DD:EE:01) seen", timeout=10)
        self.bz.changed(beacon, "org.bluez.Device1", {"ManufacturerData": dbus.Dictionary(
            {dbus.UInt16(0xffff): dbus.Array([0x01, 0x02, 0x07], signature="y", variant_level=1)},
            signature="qv", variant_level=1)})
        tel = wait_for(lambda: [v for _, _, v in self.platform.telemetry("Beacon")], 10, what="beacon telemetry")
        self.assertEqual(tel[0], {"temp": 25.8, "flags": 7})
        self.assertEqual(wait_for(lambda: self.attrs("Beacon"), 5, what="attr"),
                         {"model": "BX-1"})
        meter = wait_for(lambda: [v for _, _, v in self.platform.telemetry("Meter")], 10, what="meter telemetry")
        self.assertEqual(meter[0], {"counter": 512})  # 0x000100 * 2; [9] is out of range and skipped
        # a write without response
        self.platform.publish("v1/gateway/attributes", {"device": "Meter", "data": {"mode": "eco"}})
        wait_for(lambda: bytes(self.bz.prop(self.bz.dev_path("AA:BB:CC:DD:EE:02") + "/service0001/char0001", CHAR_IF,
                                            "Value")) == b"eco", 10, what="write without response")
        self.assertEqual(str(self.bz.prop(self.bz.dev_path("AA:BB:CC:DD:EE:02") + "/service0001/char0001", CHAR_IF,
                                          "TestWriteType")), "command")
        # an RPC entry without response writes and does not answer
        self.platform.publish("v1/gateway/rpc", {"device": "Meter", "data": {"id": 40, "method": "quiet",
                                                                            "params": 17}})
        wait_for(lambda: bytes(self.bz.prop(self.bz.dev_path("AA:BB:CC:DD:EE:02") + "/service0001/char0001", CHAR_IF,
                                            "Value")) == b"17", 10, what="RPC write without answer")
        time.sleep(0.3)
        self.assertFalse([p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == 40])
        # connect retries: two failures, then the pause, then a connect that works
        gw.wait_log("Flaky (AA:BB:CC:DD:EE:03): connect failed (2)", timeout=10)
        connect.AddMethod("org.bluez.Device1", "Connect", "", "", "")
        self.assertEqual(wait_for(lambda: self.attrs("Flaky"), 10, what="flaky attributes"), {"fw": "v2.7"})
        # a read failing with anything but not found/permitted/supported: disconnect and connect again
        flaky_char = dbus.Interface(self.bz.bus.get_object("org.bluez", flaky + "/service0001/char0001"), MOCK_IF)
        flaky_char.AddMethod(CHAR_IF, "ReadValue", "a{sv}", "ay",
                             "raise dbus.exceptions.DBusException('Operation failed', name='org.bluez.Error.Failed')")
        gw.wait_log("Flaky: reading %s: Operation failed" % NAME_UUID, timeout=10)
        flaky_char.AddMethod(CHAR_IF, "ReadValue", "a{sv}", "ay", CHAR_METHODS[0][3])
        wait_for(lambda: gw.log().count("Flaky (AA:BB:CC:DD:EE:03) connected") >= 2, 10, what="reconnect")
        log = gw.log()
        self.assertIn("found device AA:BB:CC:DD:EE:02: Meter", log)  # showMap at start
        self.assertIn("Meter GATT map:\nCharacteristic %s" % NAME_UUID, log)  # device showMap
        self.assertIn("devices[0].telemetry[2].compute", log)
        self.assertIn("MACAddress", log)
        self.assertIn("IndexError", log)
        self.assertFalse(self.platform.telemetry("NoMac"))
        self.assertEqual(gw.stop(), 0)

    def test_bluez_restarts(self):
        with open(REFERENCE) as f:
            cfg = json.load(f)
        dev = "Temperature and humidity sensor"
        self.add_sensor([1, 2, 3])
        gw = self.start_gateway(cfg)
        wait_for(lambda: self.attrs(dev), 15, what="attributes")
        self.bz.kill_mock()
        gw.wait_log("BlueZ left the bus", timeout=10)
        self.platform.clear()
        self.bz.start_mock()
        notify, _ = self.add_sensor([4, 5, 6])
        self.assertEqual(wait_for(lambda: self.attrs(dev), 15, what="attributes after the restart"),
                         {"name": "45cm 6A", "values": "All values: 456"})
        wait_for(lambda: bool(self.bz.prop(notify, CHAR_IF, "Notifying")), 10, what="StartNotify after the restart")
        self.bz.notify(notify, [9, 9, 8])
        tel = wait_for(lambda: [v for _, _, v in self.platform.telemetry(dev)], 10, what="telemetry after restart")
        self.assertEqual(tel[0], {"temperature": "8", "humidity": "9"})
        self.assertEqual(gw.stop(), 0)

    def test_adapter_selection(self):
        self.bz.bluez.AddAdapter("hci1", "second")
        cfg = {"name": "BLE", "adapter": "hci1", "devices": [
            {"name": "One", "MACAddress": "AA:BB:CC:DD:EE:0A", "attributes": [
                {"key": "v", "characteristicUUID": NAME_UUID, "valueExpression": "[:]"}]}]}
        self.bz.add_char("AA:BB:CC:DD:EE:0A", 1, NAME_UUID, [1], adapter="hci0")
        self.bz.add_device("AA:BB:CC:DD:EE:0A", adapter="hci0")  # the same address on the other adapter
        self.bz.add_char("AA:BB:CC:DD:EE:0A", 1, NAME_UUID, [2], adapter="hci1")
        self.bz.add_device("AA:BB:CC:DD:EE:0A", adapter="hci1")
        gw = self.start_gateway(cfg)
        gw.wait_log("using Bluetooth adapter /org/bluez/hci1", timeout=10)
        self.assertEqual(wait_for(lambda: self.attrs("One"), 10, what="attributes"), {"v": "2"})
        self.assertFalse(bool(self.bz.prop(self.bz.dev_path("AA:BB:CC:DD:EE:0A"), "org.bluez.Device1", "Connected")))
        self.assertEqual(gw.stop(), 0)

    def test_no_bluez_on_the_bus(self):
        self.bz.mock.kill()
        self.bz.mock.wait()
        gw = self.start_gateway({"name": "BLE", "devices": [{"name": "X", "MACAddress": MAC, "telemetry": [],
                                                              "attributes": []}]})
        gw.wait_log("BlueZ (org.bluez) is not on the system bus", timeout=10)
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
