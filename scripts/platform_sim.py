"""A stand-in for ThingsBoard's MQTT endpoint for the demo: subscribes to everything the gateway
publishes on a local broker, answers getSessionLimits, and prints each message."""
import json
import sys
import time

import paho.mqtt.client as mqtt

port = int(sys.argv[1])


def on_connect(c, u, f, rc, props=None):
    c.subscribe("v1/#", options=mqtt.SubscribeOptions(qos=1, noLocal=True))


def on_message(c, u, msg):
    text = msg.payload.decode("utf-8", "replace")
    if msg.topic.startswith("v1/devices/me/rpc/request/"):
        try:
            if json.loads(text).get("method") == "getSessionLimits":
                rid = msg.topic.rsplit("/", 1)[1]
                c.publish("v1/devices/me/rpc/response/" + rid,
                          json.dumps({"maxPayloadSize": 65536, "maxInflightMessages": 100}), qos=1)
        except ValueError:
            pass
    print("%s  %-28s %s" % (time.strftime("%H:%M:%S"), msg.topic, text[:300]), flush=True)


client = mqtt.Client(client_id="demo-platform", protocol=mqtt.MQTTv5)
client.on_connect = on_connect
client.on_message = on_message
client.connect("127.0.0.1", port, 30)
client.loop_forever()
