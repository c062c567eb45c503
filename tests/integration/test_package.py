"""The Debian package and the service integration: the .deb built by CPack from this build installs
into a scratch root with dpkg (chrootless), runs there, and removes cleanly; it holds exactly what
`cmake --install` stages (what the container image's runtime stage installs); every library the
binary and its modules need comes from a package it depends on; and the gateway speaks sd_notify
(READY, STATUS, WATCHDOG, STOPPING) to a NOTIFY_SOCKET this test listens on."""

import glob
import os
import signal
import socket
import subprocess
import tempfile
import time

from tbgwtest import BUILD_DIR, TBGW_BIN, GatewayTestCase, test_connector, wait_for, main


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


class Package(GatewayTestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="tbgw-pkg-")
        run("cpack", "-G", "DEB", "-B", cls.out, cwd=BUILD_DIR)
        cls.deb = glob.glob(os.path.join(cls.out, "tbgw_*.deb"))[0]

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["rm", "-rf", cls.out])

    def files(self, root):
        out = set()
        for d, _, fs in os.walk(root):
            for f in fs:
                out.add(os.path.relpath(os.path.join(d, f), root))
        return out

    def test_contents_equal_cmake_install_and_dependencies_cover_the_libraries(self):
        stage = os.path.join(self.workdir, "stage")
        run("cmake", "--install", BUILD_DIR, "--prefix", "/usr", env=dict(os.environ, DESTDIR=stage))
        extracted = os.path.join(self.workdir, "x")
        run("dpkg-deb", "-x", self.deb, extracted)
        self.assertEqual(self.files(extracted), self.files(stage))
        self.assertIn("usr/bin/tbgw", self.files(extracted))
        self.assertIn("usr/lib/systemd/system/tbgw.service", self.files(extracted))
        depends = run("dpkg-deb", "-f", self.deb, "Depends").stdout
        deps = {d.strip().split(" ")[0] for d in depends.split(",")}
        elfs = [os.path.join(extracted, "usr/bin/tbgw")] + glob.glob(os.path.join(extracted, "usr/lib/tbgw/*/*.so"))
        for elf in elfs:
            needed = [l.split("[")[1].rstrip("]") for l in run("readelf", "-d", elf).stdout.splitlines()
                      if "(NEEDED)" in l]
            ldd = run("ldd", elf).stdout
            for lib in needed:
                if lib.startswith("ld-linux"):  # the dynamic loader (libc6), listed without "=>"
                    self.assertIn("libc6", deps)
                    continue
                line = [l for l in ldd.splitlines() if l.strip().startswith(lib + " ")]
                self.assertTrue(line and "=>" in line[0] and "not found" not in line[0], (elf, lib, ldd))
                path = os.path.realpath(line[0].split("=>")[1].split("(")[0].strip())
                owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True).stdout
                if not owner:  # merged /usr: dpkg knows the /lib path
                    owner = subprocess.run(["dpkg", "-S", path.replace("/usr/lib/", "/lib/", 1)],
                                           capture_output=True, text=True).stdout
                pkg = owner.split(":")[0]
                self.assertIn(pkg, deps, "%s needs %s from %s, not in Depends: %s" % (elf, lib, pkg, depends))

    def test_install_run_remove_in_a_scratch_root(self):
        root = os.path.join(self.workdir, "root")
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"):
            os.makedirs(os.path.join(root, d))
        open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
        dpkg = ["dpkg", "--root", root, "--force-script-chrootless", "--force-depends", "--log=/dev/null"]
        run(*dpkg, "-i", self.deb)
        self.assertIn("ii  tbgw", run("dpkg", "--root", root, "-l", "tbgw").stdout)
        binary = os.path.join(root, "usr/bin/tbgw")
        self.assertRegex(run(binary, "--version").stdout, r"^tbgw \d+\.\d+\.\d+")
        self.assertTrue(os.path.isdir(os.path.join(root, "var/lib/tbgw")))
        cfg = os.path.join(root, "etc/tbgw/tb_gateway.json")
        check = subprocess.run([binary, "--check-config", "-c", cfg], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn("0 error(s)", check.stdout)
        self.assertIn("tbgw doctor", run("man", "-l", "-P", "cat", os.path.join(root, "usr/share/man/man1/tbgw.1"),
                                         env=dict(os.environ, MANWIDTH="100")).stdout)
        run(*dpkg, "-r", "tbgw")
        self.assertFalse(os.path.exists(binary))
        self.assertTrue(os.path.exists(cfg))  # conffiles stay until purge
        run(*dpkg, "-P", "tbgw")
        self.assertFalse(os.path.exists(cfg))
        self.assertFalse(os.path.exists(os.path.join(root, "var/lib/tbgw")))
        left = [f for f in self.files(root) if not f.startswith("var/lib/dpkg/")]
        self.assertEqual(left, [])


class Notify(GatewayTestCase):
    def test_ready_status_watchdog_stopping(self):
        path = os.path.join(self.workdir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.setblocking(False)
        self.addCleanup(sock.close)
        got = []

        def drain():
            try:
                while True:
                    got.append(sock.recv(4096).decode())
            except BlockingIOError:
                pass
            return got

        gw = self.gateway(connectors=[test_connector(messages=1)])
        gw.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
        wait_for(lambda: any("READY=1" in m for m in drain()), 10, what="READY=1")
        ready = [m for m in got if "READY=1" in m][0]
        self.assertIn("MAINPID=%d" % gw.proc.pid, ready)
        wait_for(lambda: any(m == "STATUS=connected to the platform" for m in drain()), 10, what="connected status")
        n = sum(1 for m in got if m == "WATCHDOG=1")
        time.sleep(0.6)
        self.assertGreaterEqual(sum(1 for m in drain() if m == "WATCHDOG=1") - n, 3)  # every 100 ms
        self.broker.stop()
        wait_for(lambda: any(m.startswith("STATUS=platform disconnected") for m in drain()), 15,
                 what="disconnected status")
        self.broker.start()
        os.kill(gw.proc.pid, signal.SIGTERM)
        wait_for(lambda: any("STOPPING=1" in m for m in drain()), 10, what="STOPPING=1")
        self.assertEqual(gw.proc.wait(10), 0)


if __name__ == "__main__":
    main()
