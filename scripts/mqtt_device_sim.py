"""Simulated MQTT devices for the demo: a few thermometers publish JSON once a second to
sensor/<name>/data on the external broker, print attribute updates the gateway forwards
(sensor/<name>/set/<key>) and answer two-way RPC (sensor/<name>/request/<method>/<id>)."""
import json
import random
import sys
import time

import paho.mqtt.client as mqtt

port = int(sys.argv[1])
devices = ["TH-%02d" % i for i in range(1, int(sys.argv[2]) + 1)] if len(sys.argv) > 2 else ["TH-01", "TH-02", "TH-03"]
state = {d: {"temperature": 20.0 + i, "humidity": 40.0 + 2 * i, "battery": 100} for i, d in enumerate(devices)}


def on_connect(c, u, f, rc, props=None):
    c.subscribe("sensor/+/set/#", qos=1)
    c.subscribe("sensor/+/request/#", qos=1)


def on_message(c, u, msg):
    parts = msg.topic.split("/")
    text = msg.payload.decode("utf-8", "replace")
    print("%s  [device sim] %s %s" % (time.strftime("%H:%M:%S"), msg.topic, text), flush=True)
    if len(parts) == 5 and parts[2] == "request":
        dev = parts[1]
        c.publish("sensor/%s/response/%s/%s" % (dev, parts[3], parts[4]), json.dumps(state.get(dev, {})), qos=1)


client = mqtt.Client(client_id="demo-devices")
client.on_connect = on_connect
client.on_message = on_message
client.connect("127.0.0.1", port, 30)
client.loop_start()
while True:
    for d in devices:
        s = state[d]
        s["temperature"] = round(s["temperature"] + random.uniform(-0.3, 0.3), 2)
        s["humidity"] = round(min(100.0, max(0.0, s["humidity"] + random.uniform(-1, 1))), 1)
        s["battery"] = max(0, s["battery"] - (1 if random.random() < 0.05 else 0))
        client.publish("sensor/%s/data" % d, json.dumps(dict(s, model="TH-1000")), qos=1)
    time.sleep(1)
