"""FTP connector against pyftpdlib (Debian's python3-pyftpdlib) on a free loopback port: the
reference's ftp.json (old flat format, converted) with its SLICED txt files, a growing CSV read in
PARTIAL mode across a restart, a JSON file, unchanged files not sent again, attribute updates and
RPCs writing and reading files checked on the server's disk."""

import json
import os
import signal
import subprocess
import time

from tbgwtest import SOURCE_DIR, GatewayTestCase, free_port, wait_for, wait_port, main

REFERENCE = os.path.join(SOURCE_DIR, "tests", "data", "reference", "ftp.json")


class FtpServer:
    def __init__(self, workdir):
        self.root = os.path.join(workdir, "ftproot")
        os.makedirs(os.path.join(self.root, "fol"))
        self.port = free_port()
        self.proc = subprocess.Popen(["/usr/bin/python3", "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", str(self.port),
                                      "-d", self.root, "-u", "admin", "-P", "admin", "-w"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
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
        gw = self.gateway(connectors=[{"type": "ftp", "name": "SFTP", "config": self.sliced_cfg(params, path)}]).start()
        tel = wait_for(lambda: [v for d_, _, v in self.platform.telemetry("secure")], 15, what="SFTP telemetry")
        self.assertEqual(tel[0], {"v": "7"})
        self.assertTrue(gw.proc.poll() is None)


if __name__ == "__main__":
    main()
