"""A Modbus slave on Debian's python3-pymodbus (3.0), a peer independent of tbgw's own stack.

usage: /usr/bin/python3 pymodbus_slave.py --transport tcp|udp|tls|serial --framer socket|rtu|ascii|tls
           [--port N | --device PATH --baudrate B] [--cert F --key F] --values JSON [--state FILE]
--values: {"hr": {"addr": value}, "ir": {...}, "co": {...}, "di": {...}} (zero-based addresses).
--state: the holding registers and coils 0..199 are dumped there as JSON every 50 ms.
Prints "ready" once serving; runs until killed."""

import argparse
import asyncio
import json
import os
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer, StartAsyncTlsServer, StartAsyncUdpServer
from pymodbus.transaction import ModbusAsciiFramer, ModbusRtuFramer, ModbusSocketFramer, ModbusTlsFramer

FRAMERS = {"socket": ModbusSocketFramer, "rtu": ModbusRtuFramer, "ascii": ModbusAsciiFramer, "tls": ModbusTlsFramer}
N = 1000


def block(values):
    data = [0] * N
    for addr, v in (values or {}).items():
        data[int(addr)] = int(v)
    return ModbusSequentialDataBlock(0, data)


async def dump(ctx, path):
    while True:
        slave = ctx[0]
        state = {"hr": slave.getValues(3, 0, 200), "co": [int(b) for b in slave.getValues(1, 0, 200)]}
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, path)
        await asyncio.sleep(0.05)


async def announce():
    await asyncio.sleep(0.3)
    print("ready", flush=True)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--transport", default="tcp")
    ap.add_argument("--framer", default="socket")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--device")
    ap.add_argument("--baudrate", type=int, default=19200)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--values", default="{}")
    ap.add_argument("--state")
    a = ap.parse_args()
    v = json.loads(a.values)
    slave = ModbusSlaveContext(di=block(v.get("di")), co=block(v.get("co")), hr=block(v.get("hr")),
                               ir=block(v.get("ir")), zero_mode=True)
    ctx = ModbusServerContext(slaves=slave, single=True)
    framer = FRAMERS[a.framer]
    if a.state:
        asyncio.ensure_future(dump(ctx, a.state))
    asyncio.ensure_future(announce())
    addr = ("127.0.0.1", a.port)
    if a.transport == "tcp":
        await StartAsyncTcpServer(context=ctx, address=addr, framer=framer, allow_reuse_address=True)
    elif a.transport == "udp":
        await StartAsyncUdpServer(context=ctx, address=addr, framer=framer)
    elif a.transport == "tls":
        await StartAsyncTlsServer(context=ctx, address=addr, framer=framer, certfile=a.cert, keyfile=a.key,
                                  allow_reuse_address=True)
    else:
        await StartAsyncSerialServer(context=ctx, framer=framer, port=a.device, baudrate=a.baudrate,
                                     bytesize=8, parity="N", stopbits=1)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
