"""An XMPP device for the tests (Debian's python3-slixmpp): logs in with the given full JID, sends
the lines it reads on stdin as chat messages ("TO<TAB>BODY"), and prints every chat message it
receives as a JSON line {"from": ..., "body": ...}."""

import asyncio
import json
import sys
import threading

import slixmpp


def main():
    jid, password, host, port, ca = sys.argv[1:6]
    client = slixmpp.ClientXMPP(jid, password)
    client.ca_certs = ca
    ready = threading.Event()

    def on_start(_):
        client.send_presence()
        print(json.dumps({"ready": True}), flush=True)
        ready.set()

    def on_message(msg):
        if msg["type"] in ("chat", "normal"):
            print(json.dumps({"from": str(msg["from"]), "body": msg["body"]}), flush=True)

    client.add_event_handler("session_start", on_start)
    client.add_event_handler("message", on_message)
    loop = asyncio.get_event_loop()

    def reader():
        for line in sys.stdin:
            to, _, body = line.rstrip("\n").partition("\t")
            body = body.replace("\\n", "\n")
            loop.call_soon_threadsafe(lambda t=to, b=body: client.send_message(mto=t, mbody=b, mtype="chat"))
        loop.call_soon_threadsafe(client.disconnect)

    threading.Thread(target=reader, daemon=True).start()
    client.connect((host, int(port)), force_starttls=True)
    client.process(forever=True)


if __name__ == "__main__":
    main()
