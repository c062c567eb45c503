"""A `pass` handler for snmpd (tests): under .1.3.6.1.4.1.99999
  .1.0  INTEGER, writable, kept in the state file (default 7)
  .2.0  Counter32 that changes on every read (a sequence number kept in the state file)
  .3.0  STRING, writable, kept in the state file (default "hello")
Called by snmpd as: snmp_pass.py STATE_FILE -g|-n OID  or  STATE_FILE -s OID TYPE VALUE"""
import json
import sys

BASE = ".1.3.6.1.4.1.99999"
OIDS = [BASE + ".1.0", BASE + ".2.0", BASE + ".3.0"]


def key(oid):
    return [int(x) for x in oid.strip(".").split(".") if x]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"int": 7, "seq": 0, "str": "hello"}


def save(path, st):
    with open(path, "w") as f:
        json.dump(st, f)


def show(oid, st, path):
    if oid == OIDS[0]:
        print(oid, "integer", st["int"], sep="\n")
    elif oid == OIDS[1]:
        st["seq"] += 1
        save(path, st)
        print(oid, "counter", st["seq"], sep="\n")
    elif oid == OIDS[2]:
        print(oid, "string", st["str"], sep="\n")


def main():
    path, op, oid = sys.argv[1], sys.argv[2], sys.argv[3]
    st = load(path)
    if op == "-g":
        if oid in OIDS:
            show(oid, st, path)
    elif op == "-n":
        for o in OIDS:
            if key(o) > key(oid):
                show(o, st, path)
                break
    elif op == "-s":
        typ, value = sys.argv[4], " ".join(sys.argv[5:])
        if oid == OIDS[0] and typ == "integer":
            st["int"] = int(value)
        elif oid == OIDS[2] and typ == "string":
            st["str"] = value[1:-1] if value.startswith('"') and value.endswith('"') else value
        else:
            print("not-writable")
            return
        save(path, st)


if __name__ == "__main__":
    main()
