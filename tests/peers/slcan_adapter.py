"""A USB-CAN adapter speaking slcan (LAWICEL) for the tests, on one end of a socat pty pair
(Debian's python3-serial). It acknowledges C / S<n> / O, prints every line it receives as a JSON
line {"rx": "..."} on stdout, answers frames listed in RULES (a JSON object: received line -> list of
frame lines to send back), and sends the frame lines it reads on stdin (injected traffic).
Usage: slcan_adapter.py PORT RULES_JSON"""

import json
import sys
import threading

import serial


def main():
    port = serial.Serial(sys.argv[1], 115200, timeout=0.1)
    rules = json.loads(sys.argv[2])
    lock = threading.Lock()

    def send(line):
        with lock:
            port.write((line + "\r").encode())

    def inject():
        for line in sys.stdin:
            line = line.strip()
            if line:
                send(line)

    threading.Thread(target=inject, daemon=True).start()
    print(json.dumps({"ready": True}), flush=True)
    buf = b""
    while True:
        buf += port.read(256)
        while b"\r" in buf:
            raw, buf = buf.split(b"\r", 1)
            line = raw.decode("ascii", "replace")
            print(json.dumps({"rx": line}), flush=True)
            if line[:1] in ("C", "S", "O"):
                with lock:
                    port.write(b"\r")
            for reply in rules.get(line, []):
                send(reply)


if __name__ == "__main__":
    main()
