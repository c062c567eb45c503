"""A small device HTTP API on loopback for the HTTP connector tests (Python's http.server).

routes: {(method, path): fn(handler, body) -> (status, content_type, body bytes) or None to hang}.
A path key may end in "*" to match a prefix. Every request is recorded as a dict with method, path,
headers and body. "hang" routes never answer (until stop())."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Api:
    def __init__(self, routes, auth=None, tls=None):
        self.routes = routes
        self.auth = auth  # (user, password): anything else gets 401
        self.lock = threading.Lock()
        self.requests = []
        self.release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                rec = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                       "body": body, "t": time.monotonic()}
                with api.lock:
                    api.requests.append(rec)
                if api.auth:
                    want = "Basic " + base64.b64encode(("%s:%s" % api.auth).encode()).decode()
                    if self.headers.get("Authorization") != want:
                        return self._send(401, "text/plain", b"unauthorized")
                fn = api._route(self.command, self.path)
                if fn is None:
                    return self._send(404, "text/plain", b"no route")
                out = fn(self, body)
                if out is None:  # never answers
                    api.release.wait(60)
                    return
                self._send(*out)

            def _send(self, status, ctype, data):
                if isinstance(data, (dict, list)):
                    data = json.dumps(data).encode()
                elif isinstance(data, str):
                    data = data.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:  # (cert file, key file): HTTPS
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = None

    def _route(self, method, path):
        for (m, p), fn in self.routes.items():
            if m != method and m != "*":
                continue
            if p == path or (p.endswith("*") and path.startswith(p[:-1])):
                return fn
        return None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def got(self, method=None, prefix=""):
        with self.lock:
            return [r for r in self.requests if (method is None or r["method"] == method)
                    and r["path"].startswith(prefix)]


def json_reply(obj, status=200):
    return lambda h, body: (status, "application/json", obj)


def make_cert(folder, name="cert"):
    """A self-signed certificate for 127.0.0.1 (openssl CLI); returns (cert path, key path)."""
    import subprocess
    cert, key = "%s/%s.pem" % (folder, name), "%s/%s.key" % (folder, name)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key
