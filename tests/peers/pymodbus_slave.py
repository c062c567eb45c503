"""A Modbus slave on Debian's python3-pymodbus (3.0), a peer independent of tbgw's own stack.

usage: /usr/bin/python3 pymodbus_slave.py --transport tcp|udp|tls|serial --framer socket|rtu|ascii|tls
           [--port N | --device PATH --baudrate B [--parity N|E|O --stopbits 1|2 --bytesize 7|8]]
           [--cert F --key F] --values JSON [--state FILE]
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


def tolerate_pty_parity():
    """pyserial applies the line settings at open (parity included) and again whenever serial_asyncio
    changes the timeout. A Linux pty keeps no PARENB (it emulates no parity), and this kernel refuses to
    set it once more with EINVAL; such a repeat is retried without the parity bits, which the pty
    ignores anyway. The first configuration (at open) carries the requested parity."""
    import termios
    real = termios.tcsetattr

    def tcsetattr(fd, when, attrs):
        try:
            real(fd, when, attrs)
        except termios.error as e:
            if e.args[0] != 22 or not attrs[2] & termios.PARENB:
                raise
            attrs = list(attrs)
            attrs[2] &= ~(termios.PARENB | termios.PARODD)
            real(fd, when, attrs)
    termios.tcsetattr = tcsetattr


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--transport", default="tcp")
    ap.add_argument("--framer", default="socket")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--device")
    ap.add_argument("--baudrate", type=int, default=19200)
    ap.add_argument("--parity", default="N")
    ap.add_argument("--stopbits", type=int, default=1)
    ap.add_argument("--bytesize", type=int, default=8)
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
        if a.parity != "N":
            tolerate_pty_parity()
        await StartAsyncSerialServer(context=ctx, framer=framer, port=a.device, baudrate=a.baudrate,
                                     bytesize=a.bytesize, parity=a.parity, stopbits=a.stopbits)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
