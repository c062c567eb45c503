"""FTP connector against pyftpdlib (Debian's python3-pyftpdlib) on a free loopback port: the
reference's ftp.json (old flat format, converted) with its SLICED txt files, a growing CSV read in
PARTIAL mode across a restart, a JSON file, unchanged files not sent again, attribute updates and
RPCs writing and reading files checked on the server's disk; a 20 MB CSV streamed in PARTIAL mode
(every row once at the platform, bounded memory), appended to, shrunk and replaced; an RPC answered
while a slow transfer runs; an idle connector that sleeps until its next poll."""

import json
import os
import signal
import subprocess
import time

from tbgwtest import SLOW, SANITIZED, SOURCE_DIR, GatewayTestCase, free_port, switches, wait_for, wait_port, main

REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "ftp.json")

# pyftpdlib with a bandwidth limit on data transfers (bytes/s; 0 = none)
THROTTLED = """
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
from pyftpdlib.servers import FTPServer
port, root, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if "norest" in sys.argv[4:]:  # a server without REST: no resumed transfers
    FTPHandler.proto_cmds = {k: v for k, v in FTPHandler.proto_cmds.items() if k != "REST"}
auth = DummyAuthorizer()
auth.add_user("admin", "admin", root, perm="elradfmwMT")
FTPHandler.authorizer = auth
if rate:
    ThrottledDTPHandler.read_limit = ThrottledDTPHandler.write_limit = rate
    FTPHandler.dtp_handler = ThrottledDTPHandler
FTPServer(("127.0.0.1", port), FTPHandler).serve_forever()
"""



def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class FtpServer:
    def __init__(self, workdir, rate=0, name="ftproot", rest=True):
        self.root = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.root, "fol"))
        self.port = free_port()
        if rate or not rest:
            cmd = ["/usr/bin/python3", "-c", THROTTLED, str(self.port), self.root, str(rate)] + ([] if rest else ["norest"])
        else:
            cmd = ["/usr/bin/python3", "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", str(self.port), "-d", self.root,
                   "-u", "admin", "-P", "admin", "-w"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)

    def write(self, rel, text, append=False):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a" if append else "w") as f:
            f.write(text)
        # a new modification time for MDTM (second resolution)
        st = os.stat(path)
        os.utime(path, (st.st_atime, st.st_mtime + 1 + time.time() % 1000))

    def read(self, rel):
        with open(os.path.join(self.root, rel)) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Ftp(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.srv = FtpServer(self.workdir)
        self.extra.append(self.srv)

    def config(self):
        with open(REFERENCE) as f:
            cfg = json.load(f)
        cfg.update({"host": "127.0.0.1", "port": self.srv.port})
        cfg["paths"][0]["pollPeriod"] = 1
        cfg["paths"].append({"devicePatternName": "${name}", "devicePatternType": "meter", "delimiter": ",",
                             "path": "data/log.csv", "readMode": "PARTIAL", "pollPeriod": 1,
                             "timeseries": [{"key": "temp", "value": "${temp}"}]})
        cfg["paths"].append({"devicePatternName": "${dev}", "path": "j/*.json", "readMode": "FULL", "pollPeriod": 1,
                             "timeseries": [{"type": "integer", "key": "v", "value": "${v}"}],
                             "attributes": [{"type": "string", "key": "model", "value": "${info.model}"}]})
        return cfg

    def start(self, cfg):
        return self.gateway(connectors=[{"type": "ftp", "name": "FTP", "config": cfg}]).start()

    def values(self, device, key):
        return [v[key] for d, _, v in self.platform.telemetry(device) if key in v]

    def rpc(self, device, rid, method, params):
        self.platform.publish("v1/gateway/rpc", {"device": device, "data": {"id": rid, "method": method,
                                                                             "params": params}})
        return wait_for(lambda: [p for t, p in self.platform.all("v1/gateway/rpc") if p.get("id") == rid], 15,
                        what="rpc reply %d" % rid)[0]["data"]

    def test_reference_config_and_every_file_kind(self):
        self.srv.write("fol/a_hello1.txt", "12345,x\n67890,y\n")
        self.srv.write("fol/other.txt", "99999\n")  # does not match *_hello*.txt
        self.srv.write("data/log.csv", "name,temp\nd1,10\n")
        self.srv.write("j/data.json", json.dumps([{"dev": "J1", "v": 5, "info": {"model": "M"}}]))
        cfg = self.config()
        gw = self.start(cfg)
        # SLICED: [a:b] of each line's first field; two lines, two records for device "asd"
        tel = wait_for(lambda: [v for d, _, v in self.platform.telemetry("asd")], 15, what="sliced telemetry")
        wait_for(lambda: len([v for d, _, v in self.platform.telemetry("asd")]) >= 2, 10, what="both lines")
        got = [v for d, _, v in self.platform.telemetry("asd")][:2]
        self.assertEqual(got, [{"1": "1", "temp": "2345"}, {"6": "6", "temp": "7890"}])
        attrs = self.platform.attributes("asd")["asd"]
        self.assertEqual((attrs["temp"], attrs["tmp"]), ("7890", "6"))
        self.assertFalse(self.platform.telemetry("9"))
        # CSV in PARTIAL mode and JSON with types
        wait_for(lambda: self.values("d1", "temp") == ["10"], 10, what="csv row")
        wait_for(lambda: self.values("J1", "v") == [5], 10, what="json value (an integer)")
        self.assertEqual(self.platform.attributes("J1")["J1"]["model"], "M")
        # unchanged files are not sent again
        time.sleep(2.5)
        self.assertEqual(len([v for d, _, v in self.platform.telemetry("asd")]), 2)
        self.assertEqual(self.values("J1", "v"), [5])
        # an appended row: only that row
        self.srv.write("data/log.csv", "d1,11\n", append=True)
        wait_for(lambda: self.values("d1", "temp") == ["10", "11"], 10, what="the appended row only")
        # across a restart the position is kept
        gw.stop()
        self.srv.write("data/log.csv", "d1,12\n", append=True)
        gw2 = self.start(cfg)
        wait_for(lambda: self.values("d1", "temp") == ["10", "11", "12"], 15, what="the row appended while stopped")
        time.sleep(1.5)
        self.assertEqual(self.values("d1", "temp"), ["10", "11", "12"])

        # attribute update: the reference's entry writes JSON to fol/hello.json
        self.platform.publish("v1/gateway/attributes", {"device": "asd", "data": {"shared": "on"}})
        wait_for(lambda: os.path.exists(os.path.join(self.srv.root, "fol/hello.json")), 10, what="hello.json")
        self.assertEqual(json.loads(self.srv.read("fol/hello.json")), {"shared": "on"})
        # RPC: configured read/write, reserved get/set
        self.assertEqual(self.rpc("asd", 1, "read", "fol/a_hello1.txt"), {"result": "12345,x\n67890,y\n"})
        self.rpc("asd", 2, "write", "out/w.txt;written")
        self.assertEqual(self.srv.read("out/w.txt"), "written")
        self.assertEqual(self.rpc("asd", 3, "get", "filePath=out/w.txt;"), {"result": "written"})
        self.rpc("asd", 4, "set", "filePath=out/s.txt;value=0;")
        self.assertEqual(self.srv.read("out/s.txt"), "0")
        self.assertIn("error", self.rpc("asd", 5, "get", "filePath=nope/none.txt;"))
        self.assertIn("FTP", gw2.log())

    def csv_cfg(self, port=None, poll=1):
        return {"parameters": {"host": "127.0.0.1", "port": port or self.srv.port,
                               "security": {"type": "basic", "username": "admin", "password": "admin"}},
                "paths": [{"path": "big/data.csv", "readMode": "PARTIAL", "pollPeriod": poll, "maxFileSize": 100,
                           "devicePatternName": "${name}",
                           "timeseries": [{"key": "seq", "value": "${seq}"}, {"key": "ts", "value": "${ts}"}]}],
                "requestsMapping": {"serverSideRpc": [{"deviceNameFilter": ".*", "methodFilter": "read",
                                                       "valueExpression": "${params}"}]}}

    def seqs(self):
        out = []
        for _, p in self.platform.all("v1/gateway/telemetry"):
            for dev, entries in p.items():
                out.extend(int(e["values"]["seq"]) for e in entries if "seq" in e["values"])
        return out

    def count(self):
        return sum(p.count(b'"seq"') for p in self.platform.raw("v1/gateway/telemetry"))

    def test_large_file_streamed_in_partial_mode(self):
        """A 20 MB CSV read in PARTIAL mode: every row arrives once and the gateway's peak RSS stays far
        below what holding the file (and its records) would take; then appended rows only, a file that
        shrank and a file replaced by one as long are read from the start."""
        pad = "p" * 40
        path = os.path.join(self.srv.root, "big", "data.csv")
        os.makedirs(os.path.dirname(path))
        rows = []
        size, n = 0, 0
        while size < 20 * 1024 * 1024:
            line = "d%d,%d,%d,%s\n" % (n % 7, n, 1700000000000 + n, pad)
            rows.append(line)
            size += len(line)
            n += 1
        with open(path, "w") as f:
            f.write("name,seq,ts,pad\n")
            f.write("".join(rows))
        del rows
        gw = self.start(self.csv_cfg())
        wait_for(lambda: self.count() >= n, 120 * SLOW, interval=0.5, what="%d rows" % n)
        time.sleep(1.5)
        got = self.seqs()
        self.assertEqual(len(got), n)
        self.assertEqual(set(got), set(range(n)))
        hwm = vm_hwm_kb(gw.proc.pid)
        # streamed: tens of MB at most (the file alone is 20 MB; its records held at once would be far
        # more). Not under ASan, whose quarantine keeps freed memory resident.
        if not SANITIZED:
            self.assertLess(hwm, 100 * 1024, "peak RSS %d kB" % hwm)
        # appended rows, and a last line without '\n' waits for its end
        self.srv.write("big/data.csv", "".join("d1,%d,%d,x\n" % (i, 1700000000000 + i) for i in range(n, n + 1000)) + "d1,%d" % (n + 1000),
                       append=True)
        wait_for(lambda: self.count() >= n + 1000, 15, what="the appended rows")
        time.sleep(1.5)
        self.assertEqual(self.count(), n + 1000)
        self.srv.write("big/data.csv", "0,1800000000000\n", append=True)
        wait_for(lambda: self.count() >= n + 1001, 15, what="the completed last line")
        self.assertEqual(sorted(self.seqs())[-2:], [n + 999, n * 10 + 10000])  # "d1,<n+1000>" + "0,..."
        # a shorter file (rotated): read from the start, its header included
        self.platform.clear()
        self.srv.write("big/data.csv", "seq,name\n5,r1\n6,r1\n")
        wait_for(lambda: sorted(self.seqs()) == [5, 6], 15, what="the shorter file from its start")
        # replaced by a file at least as long whose content differs before the old end
        self.platform.clear()
        self.srv.write("big/data.csv", "seq,name\n7,r2\n8,r2\n9,r2\n")  # a '\n' where the old one ended
        wait_for(lambda: sorted(self.seqs()) == [7, 8, 9], 15, what="the replaced file from its start")
        self.assertIn("replaced", gw.log())
        time.sleep(1.5)
        self.assertEqual(sorted(self.seqs()), [7, 8, 9])
        # across a restart the position and the bytes before it are remembered
        gw.stop()
        self.platform.clear()
        self.srv.write("big/data.csv", "seq,name\n1,r3\n2,r3\n3,r3\n4,r3\n")
        gw = self.start(self.csv_cfg())
        wait_for(lambda: sorted(self.seqs()) == [1, 2, 3, 4], 15, what="the file replaced while stopped")
        self.assertEqual(gw.stop(), 0)

    def test_rpc_answered_during_a_slow_transfer(self):
        """A 2 MB file served at 400 kB/s: an RPC sent while it is read is answered at once, not after it."""
        slow = FtpServer(self.workdir, rate=400 * 1024, name="slowroot")
        self.extra.append(slow)
        with open(os.path.join(slow.root, "fol", "small.txt"), "w") as f:
            f.write("hello")
        os.makedirs(os.path.join(slow.root, "big"))
        with open(os.path.join(slow.root, "big", "data.csv"), "w") as f:
            # a timestamp column, as logs have: rows merge into records, so the memory storage of the
            # test gateway (100,000 records) does not overflow when the platform side is slow
            f.write("name,seq,ts\n" + "".join("s,%d,%d\n" % (i, 1700000000000 + i) for i in range(200000)))
        gw = self.start(self.csv_cfg(port=slow.port, poll=60))
        wait_for(lambda: self.count() > 0, 15, what="the first rows")
        t0 = time.time()
        self.assertEqual(self.rpc("s", 1, "read", "fol/small.txt"), {"result": "hello"})
        took = time.time() - t0
        remaining = 200000 - self.count()
        self.assertGreater(remaining, 0, "the transfer ended before the RPC: nothing shown")
        self.assertLess(took, 2.0 * SLOW)
        wait_for(lambda: self.count() >= 200000, 30 * SLOW, what="every row")
        self.assertEqual(sorted(self.seqs()), list(range(200000)))
        self.assertEqual(gw.stop(), 0)

    def test_server_without_rest(self):
        """A server that refuses REST: PARTIAL reads the file from the start, skips what was read before
        and still sends only the appended rows."""
        self.srv = FtpServer(self.workdir, name="norestroot", rest=False)
        self.extra.append(self.srv)
        self.srv.write("big/data.csv", "name,seq\n" + "".join("d,%d\n" % i for i in range(40)))  # > 64 bytes
        gw = self.start(self.csv_cfg())
        wait_for(lambda: sorted(self.seqs()) == list(range(40)), 15, what="the first rows")
        self.srv.write("big/data.csv", "d,40\nd,41\n", append=True)
        wait_for(lambda: len(self.seqs()) >= 42, 15, what="the appended rows")
        time.sleep(1.5)
        self.assertEqual(sorted(self.seqs()), list(range(42)))
        self.assertIn("cannot resume", gw.log())

    def test_idle_connector_sleeps(self):
        """Between polls (60 s) the connector sleeps on the downlink descriptor: few context switches,
        and an RPC is still answered at once."""
        self.srv.write("big/data.csv", "name,seq\nd,1\n")
        self.srv.write("fol/x.txt", "content")
        gw = self.start(self.csv_cfg(poll=60))
        wait_for(lambda: self.count() == 1, 15, what="the first poll")
        time.sleep(1.0)
        a = switches(gw.proc.pid)
        time.sleep(3.0)
        rate = (switches(gw.proc.pid) - a) / 3.0
        self.assertLess(rate, 20.0 * SLOW, "context switches per second at idle: %.1f" % rate)
        t0 = time.time()
        self.assertEqual(self.rpc("d", 1, "read", "fol/x.txt"), {"result": "content"})
        self.assertLess(time.time() - t0, 1.0 * SLOW)
        self.assertEqual(gw.stop(), 0)

    def test_bad_entries_are_reported_and_skipped(self):
        """A path, an attribute update and an RPC entry with mistakes: each is reported with its place in
        the file and skipped; the rest works."""
        self.srv.write("big/data.csv", "name,seq\nd,1\n")
        self.srv.write("fol/x.txt", "content")
        cfg = self.csv_cfg()
        cfg["paths"].insert(0, {"path": "a.csv", "devicePatternName": "x", "pollPeriod": "often"})
        cfg["requestsMapping"]["serverSideRpc"].insert(0, {"deviceNameFilter": "(", "methodFilter": "read"})
        cfg["requestsMapping"]["attributeUpdates"] = [{"deviceNameFilter": ".*", "path": "x.txt"}]
        cfg["paths"].append({"path": "j/bad.json", "devicePatternName": "${dev}", "readMode": "FULL", "pollPeriod": 1,
                             "timeseries": [{"key": "v", "value": "${v}"}]})
        self.srv.write("j/bad.json", '{"dev": "J",\n "v": }')
        gw = self.start(cfg)
        wait_for(lambda: self.count() == 1, 15, what="the good path")
        self.assertEqual(self.rpc("d", 1, "read", "fol/x.txt"), {"result": "content"})
        log = gw.log()
        # placed at the field the message names (the kit's tbgw_cfg_each)
        self.assertRegex(log, r"FTP\.json:\d+:\d+: paths\[0\]\.pollPeriod: expected a number")
        self.assertRegex(log, r"FTP\.json:\d+:\d+: requestsMapping\.serverSideRpc\[0\]\.deviceNameFilter: ")
        self.assertRegex(log, r"FTP\.json:\d+:\d+: requestsMapping\.attributeUpdates\[0\]: .*valueExpression")
        gw.wait_log("j/bad.json:2:7: not JSON")  # a file that does not parse: its line and column

    def test_dead_server_is_retried(self):
        self.srv.stop()
        cfg = self.config()
        gw = self.start(cfg)
        time.sleep(2)
        self.srv = FtpServer.__new__(FtpServer)
        self.srv.root = os.path.join(self.workdir, "ftproot")
        self.srv.port = cfg["port"]
        self.srv.proc = subprocess.Popen(["/usr/bin/python3", "-m", "pyftpdlib", "-i", "127.0.0.1", "-p",
                                          str(cfg["port"]), "-d", self.srv.root, "-u", "admin", "-P", "admin", "-w"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.extra.append(self.srv)
        wait_port(cfg["port"])
        self.srv.write("fol/b_hello.txt", "55555\n")
        wait_for(lambda: self.platform.telemetry("asd"), 15, what="data once the server is up")
        self.assertTrue(gw.proc.poll() is None)


class SecureTransports(GatewayTestCase):
    def sliced_cfg(self, params, path):
        return {"parameters": params, "paths": [
            {"devicePatternName": "secure", "path": path, "readMode": "FULL", "pollPeriod": 1,
             "txtFileDataView": "SLICED", "timeseries": [{"key": "v", "value": "[0:]"}]}],
            "requestsMapping": {}}

    def test_ftps_with_a_verified_certificate(self):
        """vsftpd with explicit TLS required for the login and the data, anonymous."""
        root = os.path.join(self.workdir, "ftpsroot")
        os.makedirs(os.path.join(root, "fol"))
        os.makedirs(os.path.join(self.workdir, "empty"))
        with open(os.path.join(root, "fol/a.txt"), "w") as f:
            f.write("42\n")
        os.chmod(self.workdir, 0o755)
        os.chmod(root, 0o755)
        cert, key = os.path.join(self.workdir, "ftps.pem"), os.path.join(self.workdir, "ftps.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        port = free_port()
        conf = os.path.join(self.workdir, "vsftpd.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                "listen=YES", "listen_ipv6=NO", "background=NO", "listen_address=127.0.0.1", "listen_port=%d" % port,
                "anonymous_enable=YES", "local_enable=NO", "anon_root=%s" % root, "no_anon_password=YES",
                "secure_chroot_dir=%s/empty" % self.workdir, "seccomp_sandbox=NO", "ssl_enable=YES",
                "allow_anon_ssl=YES", "force_anon_data_ssl=YES", "force_anon_logins_ssl=YES",
                "rsa_cert_file=%s" % cert, "rsa_private_key_file=%s" % key, "require_ssl_reuse=NO", ""]))
        proc = subprocess.Popen(["vsftpd", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.addCleanup(lambda: os.killpg(proc.pid, signal.SIGKILL))
        wait_port(port)
        params = {"host": "127.0.0.1", "port": port, "TLSSupport": True, "caCert": cert,
                  "security": {"type": "anonymous"}}
        self.gateway(connectors=[{"type": "ftp", "name": "FTPS", "config": self.sliced_cfg(params, "fol/*.txt")}]).start()
        tel = wait_for(lambda: [v for d, _, v in self.platform.telemetry("secure")], 15, what="FTPS telemetry")
        self.assertEqual(tel[0], {"v": "42"})

    def test_sftp_with_an_ed25519_key(self):
        d = os.path.join(self.workdir, "ssh")
        os.makedirs(os.path.join(d, "root", "fol"))
        with open(os.path.join(d, "root", "fol", "a.txt"), "w") as f:
            f.write("7\n")
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, name)], check=True)
        with open(os.path.join(d, "client.pub")) as f, open(os.path.join(d, "authorized_keys"), "w") as g:
            g.write(f.read())
        port = free_port()
        conf = os.path.join(d, "sshd_config")
        with open(conf, "w") as f:
            f.write("\n".join(["Port %d" % port, "ListenAddress 127.0.0.1", "HostKey %s/host" % d,
                                "AuthorizedKeysFile %s/authorized_keys" % d, "StrictModes no", "UsePAM no",
                                "PasswordAuthentication no", "PermitRootLogin prohibit-password",
                                "PidFile %s/sshd.pid" % d, "Subsystem sftp internal-sftp", ""]))
        os.makedirs("/run/sshd", exist_ok=True)
        proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(lambda: os.killpg(proc.pid, signal.SIGKILL))
        wait_port(port)
        user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        params = {"protocol": "sftp", "host": "127.0.0.1", "port": port,
                  "security": {"type": "key", "username": user, "privateKey": os.path.join(d, "client")}}
        path = os.path.join(d, "root", "fol").lstrip("/") + "/*.txt"  # absolute on the server, without the first /
        csv = os.path.join(d, "root", "log.csv")
        with open(csv, "w") as f:
            f.write("name,seq\n" + "".join("s,%d\n" % i for i in range(30)))
        cfg = self.sliced_cfg(params, path)
        cfg["paths"].append({"devicePatternName": "${name}", "path": csv.lstrip("/"), "readMode": "PARTIAL",
                             "pollPeriod": 1, "timeseries": [{"key": "seq", "value": "${seq}"}]})
        gw = self.gateway(connectors=[{"type": "ftp", "name": "SFTP", "config": cfg}]).start()
        tel = wait_for(lambda: [v for d_, _, v in self.platform.telemetry("secure")], 15, what="SFTP telemetry")
        self.assertEqual(tel[0], {"v": "7"})
        seqs = lambda: sorted(int(v["seq"]) for d_, _, v in self.platform.telemetry("s"))  # noqa: E731
        wait_for(lambda: seqs() == list(range(30)), 15, what="the csv over SFTP")
        with open(csv, "a") as f:  # PARTIAL over SFTP: resumed with a seek, only the new rows
            f.write("s,30\ns,31\n")
        st = os.stat(csv)
        os.utime(csv, (st.st_atime, st.st_mtime + 2))
        wait_for(lambda: len(seqs()) >= 32, 15, what="the appended rows over SFTP")
        time.sleep(1.5)
        self.assertEqual(seqs(), list(range(32)))
        self.assertTrue(gw.proc.poll() is None)


if __name__ == "__main__":
    main()
