"""KNX test peers: knxd (Debian) as a KNXnet/IP server on a dummy bus on loopback, knxtool, and a client of
knxd's own protocol (the one libeibclient and knxtool speak: 2-octet length, 2-octet message type) that
acts as a bus device: it records every group telegram and answers GroupValueRead with configured
GroupValueResponse APDUs."""

import socket
import struct
import subprocess
import threading

from tbgwtest import SLOW, wait_port

EIB_OPEN_GROUPCON = 0x26
EIB_GROUP_PACKET = 0x27


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def ga_parse(s):
    a, b, c = (int(x) for x in s.split("/"))
    return a << 11 | b << 8 | c


def ga_str(v):
    return "%d/%d/%d" % (v >> 11, (v >> 8) & 7, v & 0xFF)


def dpt9(value):
    """The 2-octet float (DPT 9) of value."""
    x = round(value * 100)
    e = 0
    while not -2048 <= x <= 2047:
        e += 1
        x = round(value * 100 / (1 << e))
    raw = e << 11 | (x & 0x7FF) | (0x8000 if x < 0 else 0)
    return [raw >> 8, raw & 0xFF]


def knxtool(*args, timeout=10):
    return subprocess.run(["knxtool"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout * SLOW, check=True).stdout.decode()


class Knxd:
    """knxd with a tunnelling/routing/discovery server on a free UDP port (multicast group 224.0.23.12 on
    lo) and its own protocol on a free TCP port, over a dummy bus."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.udp_port = free_udp_port()
        self.tcp_port = free_tcp_port()
        self.url = "ip:127.0.0.1:%d" % self.tcp_port
        self.proc = None

    def start(self):
        log = open("%s/knxd-%d.log" % (self.workdir, self.udp_port), "ab")
        self.proc = subprocess.Popen(["knxd", "-e", "0.0.1", "-E", "0.0.2:40", "-i", str(self.tcp_port), "-D", "-T",
                                      "-R", "-I", "lo", "-S", "224.0.23.12:%d" % self.udp_port, "-b", "dummy:"],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_port(self.tcp_port, 10)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


class KnxBus:
    """A bus device on knxd's protocol. answers: {"1/0/6": [apdu octets]} (APDU from the TPCI octet on)."""

    def __init__(self, tcp_port):
        self.port = tcp_port
        self.answers = {}
        self.telegrams = []  # (src, dst "a/b/c", apci, data octets)
        self.lock = threading.Lock()
        self.sock = None
        self.running = False

    def start(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self._send(EIB_OPEN_GROUPCON, b"\0\0\0")
        t, _ = self._recv()
        assert t == EIB_OPEN_GROUPCON, t
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _send(self, t, payload):
        body = struct.pack(">H", t) + payload
        self.sock.sendall(struct.pack(">H", len(body)) + body)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _recv(self):
        n = struct.unpack(">H", self._recv_exact(2))[0]
        body = self._recv_exact(n)
        return struct.unpack(">H", body[:2])[0], body[2:]

    def send(self, ga, apdu):
        self._send(EIB_GROUP_PACKET, struct.pack(">H", ga_parse(ga)) + bytes(apdu))

    def _run(self):
        while self.running:
            try:
                t, body = self._recv()
            except socket.timeout:
                continue
            except (OSError, EOFError):
                return
            if t != EIB_GROUP_PACKET or len(body) < 6:
                continue
            src, dst = struct.unpack(">HH", body[:4])
            apdu = body[4:]
            apci = ((apdu[0] & 3) << 8 | apdu[1]) & 0x3C0
            with self.lock:
                self.telegrams.append((src, ga_str(dst), apci, list(apdu[2:]) or [apdu[1] & 0x3F]))
            if apci == 0 and ga_str(dst) in self.answers:
                try:
                    self.send(ga_str(dst), self.answers[ga_str(dst)])
                except OSError:
                    return

    def reads(self, ga):
        with self.lock:
            return [x for x in self.telegrams if x[1] == ga and x[2] == 0]

    def writes(self, ga):
        with self.lock:
            return [x for x in self.telegrams if x[1] == ga and x[2] == 0x80]

    def stop(self):
        self.running = False
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
