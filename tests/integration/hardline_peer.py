"""hardline_peer: an independent, stdlib-only Python implementation of the
Hardline tunnel protocol (docs/protocol.md, "The tunnel" and "Out-of-band
lines"), both roles, for testing
hlcore against something that was not written from the C sources.

It behaves like the original Python Hardline (EternityForest/hardlinep2p):

- keyhash(cert) = BLAKE2b-256 over the certificate's DER, first 20 bytes, hex.
- Server: picks the certificate by SNI (one SSLContext per service), fails the
  handshake for an unknown or missing SNI, sends its out-of-band line
  (`{"WANHosts": "..."}\n` or `{}\n`) right after the handshake in a send of
  its own, reads the client's line with ONE recv(4096) and refuses the tunnel
  if that read holds a second line or anything after the line (the original's
  strictness), checks the password, and only then connects the backend and
  relays bytes both ways.
- Client: TCP, TLS with SNI = the bare keyhash and no verification, hashes the
  leaf certificate and compares, reads the server's line (bounded), sends
  `{"password": "..."}\n` (or `{}\n`) in a send of its own, then the payload.
- ImpostorServer: presents its own certificate whatever the SNI, so a client
  that pins by keyhash must refuse it (and send it no password).

Every socket has a timeout; every read is bounded.
"""

import hashlib
import hmac
import json
import os
import select
import socket
import ssl
import subprocess
import threading
import time

OOB_MAX = 4096
IO_TIMEOUT = 10.0


def keyhash_der(der):
    """The Hardline keyhash of a DER certificate: BLAKE2b-256, first 20 bytes."""
    return hashlib.blake2b(der, digest_size=32).hexdigest()[:40]


def keyhash_pem_file(path):
    with open(path) as f:
        pem = f.read()
    return keyhash_der(ssl.PEM_cert_to_DER_cert(pem))


def make_cert(directory, name="service"):
    """Generate an RSA 2048 self-signed certificate with the openssl CLI, like
    the original.  Returns (certfile, keyfile, keyhash)."""
    cert = os.path.join(directory, name + ".cert")
    key = cert + ".private"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", "3650",
         "-subj", "/CN=hardline-test-" + name],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        timeout=60)
    os.chmod(key, 0o600)
    return cert, key, keyhash_pem_file(cert)


def parse_addr(s):
    """'1.2.3.4:5' or '[::1]:5' -> (host, port)."""
    host, _, port = s.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def free_port(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _listen(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(16)
    s.settimeout(0.2)
    return s


def relay(tls, plain, timeout=IO_TIMEOUT):
    """Copy bytes both ways until one side closes (or nothing moves for
    `timeout`).  Single-threaded: one SSL object is never used by two
    threads at once.  Returns (bytes tls->plain, bytes plain->tls)."""
    up = down = 0
    tls_open = True
    plain.settimeout(timeout)
    tls.settimeout(timeout)
    while True:
        if tls_open and tls.pending():
            ready = [tls]
        else:
            watch = [plain] + ([tls] if tls_open else [])
            ready, _, _ = select.select(watch, [], [], timeout)
            if not ready:
                break  # idle too long
        if tls in ready:
            try:
                data = tls.recv(65536)
            except (ssl.SSLError, OSError):
                data = b""
            if data:
                plain.sendall(data)
                up += len(data)
            else:
                tls_open = False
                try:
                    plain.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        if plain in ready:
            try:
                data = plain.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            try:
                tls.sendall(data)
            except (ssl.SSLError, OSError):
                break
            down += len(data)
    return up, down


def server_handshake(ctx, conn, tl, rec):
    """The TLS server side of a handshake on conn: the TLS socket, or None
    with the SNI seen (tl.sni) and the error noted in rec."""
    tls = ctx.wrap_socket(conn, server_side=True,
                          do_handshake_on_connect=False)
    try:
        tls.do_handshake()
    except (ssl.SSLError, OSError) as e:
        rec["sni"] = tl.sni
        rec["result"] = "handshake-failed"
        rec["error"] = str(e)
        return None
    return tls


class _Listener:
    """Accept loop(s) on one or more ports, one thread per connection."""

    def __init__(self, host="127.0.0.1", ports=(0,)):
        self.host = host
        self.socks = {}
        for p in ports:
            s = _listen(host, p)
            self.socks[s.getsockname()[1]] = s
        self.ports = list(self.socks)
        self.port = self.ports[0]
        self.log = []  # one dict per connection
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = []

    def start(self):
        for port, s in self.socks.items():
            t = threading.Thread(target=self._accept_loop, args=(port, s),
                                 daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def close_port(self, port):
        s = self.socks.pop(port, None)
        if s:
            s.close()

    def stop(self):
        self.stopping = True
        for p in list(self.socks):
            self.close_port(p)

    def _accept_loop(self, port, s):
        while not self.stopping and port in self.socks:
            try:
                conn, peer = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            rec = {"port": port, "peer": peer, "time": time.time()}
            with self.lock:
                self.log.append(rec)
            threading.Thread(target=self._guard, args=(conn, rec),
                             daemon=True).start()

    def _guard(self, conn, rec):
        try:
            conn.settimeout(IO_TIMEOUT)
            self.handle(conn, rec)
        except Exception as e:  # noqa: BLE001 - recorded for the test
            rec.setdefault("error", "%s: %s" % (type(e).__name__, e))
        finally:
            rec["done"] = True
            try:
                conn.close()
            except OSError:
                pass

    def entries(self):
        with self.lock:
            return [dict(r) for r in self.log]


class Server(_Listener):
    """A Hardline tunnel server.

    services: {keyhash: {"cert": path, "key": path, "password": str|None,
                         "backend": (host, port)}}
    wanhosts: the WANHosts string to send, or None to send `{}`.
    oob_delay: seconds to wait after the handshake before sending our line;
      meanwhile we record what the client sends: its line may come early,
      payload must not (the protocol: no payload before the server's line).

    Each connection's record in .log: port, sni, client_line_before_ours,
    early_payload (bytes after the client's first read that arrived before
    our line was sent), first_read (the client's first read, raw),
    password_ok, result ('relayed', 'handshake-failed', 'bad-oob',
    'bad-password', 'backend-failed'), up/down byte counts.
    """

    def __init__(self, services, wanhosts=None, host="127.0.0.1", ports=(0,),
                 oob_delay=0.0):
        super().__init__(host, ports)
        self.services = services
        self.wanhosts = wanhosts
        self.oob_delay = oob_delay
        self.contexts = {}
        for h, svc in services.items():
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(svc["cert"], svc["key"])
            self.contexts[h] = ctx
        self._tl = threading.local()
        # The socket's own context has no certificate: a handshake only
        # succeeds when the SNI callback swapped in a service's context.
        self.base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.base.sni_callback = self._sni

    def _sni(self, sslsock, server_name, _ctx):
        self._tl.sni = server_name
        ctx = self.contexts.get(server_name) if server_name else None
        if ctx is None:
            self._tl.sni_refused = True
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslsock.context = ctx
        return None

    def oob_line(self):
        if self.wanhosts is None:
            return b"{}\n"
        return json.dumps({"WANHosts": self.wanhosts}).encode() + b"\n"

    def handle(self, conn, rec):
        self._tl.sni = None
        self._tl.sni_refused = False
        tls = server_handshake(self.base, conn, self._tl, rec)
        if tls is None:
            return
        sni = self._tl.sni
        rec["sni"] = sni
        svc = self.services[sni]

        # Watch what the client sends before our line (for oob_delay
        # seconds): its own line may come early (harmless: the original
        # reads it after sending its line), but no payload may.
        first = None
        early_payload = b""
        deadline = time.monotonic() + self.oob_delay
        while self.oob_delay:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not tls.pending():
                r, _, _ = select.select([tls], [], [], left)
                if not r:
                    break
            try:
                data = tls.recv(OOB_MAX)
            except (ssl.SSLError, OSError) as e:
                rec["error"] = "reading before our line: %s" % e
                break
            if not data:
                break
            if first is None:
                first = data
            else:
                early_payload += data
                if len(early_payload) >= OOB_MAX:
                    break
        rec["client_line_before_ours"] = first is not None
        rec["early_payload"] = early_payload

        tls.sendall(self.oob_line())  # a send (and TLS record) of its own
        rec["sent_oob"] = True

        if early_payload:
            rec["result"] = "bad-oob"
            rec["first_read"] = first
            return

        # The original: one recv(4096), and it breaks if that read holds a
        # second line or anything beyond the first.
        data = first
        if data is None:
            tls.settimeout(IO_TIMEOUT)
            try:
                data = tls.recv(OOB_MAX)
            except (ssl.SSLError, OSError) as e:
                rec["result"] = "bad-oob"
                rec["error"] = "reading the client's line: %s" % e
                return
        rec["first_read"] = data
        if data.count(b"\n") != 1 or not data.endswith(b"\n"):
            rec["result"] = "bad-oob"
            return
        try:
            line = json.loads(data.decode("utf-8"))
            if not isinstance(line, dict):
                raise ValueError("not an object")
        except ValueError as e:
            rec["result"] = "bad-oob"
            rec["error"] = "client line: %s" % e
            return
        rec["client_line"] = line

        want = svc.get("password")
        if want:
            got = line.get("password")
            ok = isinstance(got, str) and hmac.compare_digest(
                got.encode(), want.encode())
        else:
            ok = True
        rec["password_ok"] = ok
        if not ok:
            rec["result"] = "bad-password"
            return

        try:
            backend = socket.create_connection(svc["backend"], timeout=5)
        except OSError as e:
            rec["result"] = "backend-failed"
            rec["error"] = str(e)
            return
        try:
            rec["result"] = "relaying"
            rec["up"], rec["down"] = relay(tls, backend)
            rec["result"] = "relayed"
        finally:
            backend.close()


class ImpostorServer(_Listener):
    """Presents its own certificate whatever the SNI, sends `{}\n` like a real
    server, and records everything the client sends (it must get no
    password)."""

    def __init__(self, host="127.0.0.1", ports=(0,), certdir=None):
        super().__init__(host, ports)
        self.cert, self.key, self.keyhash = make_cert(certdir, "impostor")
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, self.key)
        self._tl = threading.local()
        self.ctx.sni_callback = self._sni

    def _sni(self, _sslsock, server_name, _ctx):
        self._tl.sni = server_name
        return None

    def handle(self, conn, rec):
        self._tl.sni = None
        tls = server_handshake(self.ctx, conn, self._tl, rec)
        if tls is None:
            return
        rec["sni"] = self._tl.sni
        rec["received"] = b""
        try:
            tls.sendall(b"{}\n")
            tls.settimeout(3.0)
            while len(rec["received"]) < OOB_MAX:
                data = tls.recv(OOB_MAX)
                if not data:
                    break
                rec["received"] += data
        except (ssl.SSLError, OSError) as e:
            rec["error"] = str(e)
        rec["result"] = "done"

    def got_password(self):
        return any(b"password" in (r.get("received") or b"")
                   for r in self.entries())


class ClientResult:
    def __init__(self):
        self.error = None         # str when the attempt failed
        self.stage = None         # where it stopped
        self.cert_hash = None
        self.server_first_read = None  # the first recv after the handshake
        self.server_line = None   # raw bytes of the server's line (with \n)
        self.server_json = None
        self.response = b""       # everything after our line until EOF
        self.version = None

    def __repr__(self):
        return "ClientResult(%r)" % self.__dict__


def client(host, port, keyhash, password=None, payload=b"", sni="hash",
           send_line=True, timeout=IO_TIMEOUT, family=socket.AF_INET):
    """One tunnel attempt as a Hardline client.

    sni: "hash" (the bare keyhash, as the protocol wants), None (send no SNI),
    or any other string to send.  password None sends `{}`.
    Returns a ClientResult; .error is set if it stopped early."""
    res = ClientResult()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    server_name = keyhash if sni == "hash" else sni
    res.stage = "connect"
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        res.error = "connect: %s" % e
        return res
    tls = None
    try:
        res.stage = "handshake"
        try:
            tls = ctx.wrap_socket(raw, server_hostname=server_name)
        except (ssl.SSLError, OSError) as e:
            res.error = "handshake: %s" % e
            return res
        res.version = tls.version()
        der = tls.getpeercert(binary_form=True)
        res.cert_hash = keyhash_der(der)
        res.stage = "pin"
        if res.cert_hash != keyhash.lower():
            res.error = "certificate hash %s, wanted %s" % (res.cert_hash,
                                                           keyhash)
            return res
        res.stage = "server-line"
        buf = b""
        deadline = time.monotonic() + timeout
        try:
            while b"\n" not in buf and len(buf) < OOB_MAX:
                tls.settimeout(max(0.01, deadline - time.monotonic()))
                data = tls.recv(OOB_MAX - len(buf))
                if res.server_first_read is None:
                    res.server_first_read = data
                if not data:
                    break
                buf += data
        except (ssl.SSLError, OSError) as e:
            res.error = "reading the server's line: %s" % e
            return res
        if b"\n" not in buf:
            res.error = "no server line (got %r)" % buf
            return res
        line, _, rest = buf.partition(b"\n")
        res.server_line = line + b"\n"
        try:
            res.server_json = json.loads(line.decode("utf-8"))
        except ValueError as e:
            res.error = "server line is not JSON: %s" % e
            return res
        res.response = rest
        if send_line:
            res.stage = "client-line"
            obj = {"password": password} if password is not None else {}
            tls.sendall(json.dumps(obj).encode() + b"\n")
        res.stage = "payload"
        if payload:
            # A record of its own, after our line.
            time.sleep(0.05)
            try:
                tls.sendall(payload)
            except (ssl.SSLError, OSError) as e:
                res.error = "sending the payload: %s" % e
                return res
        res.stage = "response"
        try:
            tls.settimeout(timeout)
            while len(res.response) < (1 << 22):
                data = tls.recv(65536)
                if not data:
                    break
                res.response += data
        except socket.timeout:
            res.error = "response: timed out"
        except (ssl.SSLError, OSError) as e:
            # An abrupt close (no close_notify, or a reset) still ends it.
            res.stage = "response-closed: %s" % e
        res.stage = "done" if res.error is None else res.stage
        return res
    finally:
        for s in (tls, raw):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
