#!/usr/bin/env python3
"""hlcore against an independent Python implementation of the Hardline tunnel
protocol (hardline_peer.py, written from docs/protocol.md alone and modelled
on the original Python Hardline), with real hlcore processes and a real HTTP
backend.

 1. Python client -> C server: pinning, the server's OOB line (own record,
    WANHosts from `advertise`), password checks before the backend is
    touched, SNI refusal.
 2. C client -> Python server: SNI, the client's line (own record, no early
    payload), the WANHosts cache (peers.cache) used after a restart.
 3. Impostor: a server with the wrong certificate is passed over, and gets
    no password; alone, the proxy answers 502 naming the hash mismatch.

Env (set by ctest): HLCORE, HL_BUILD_DIR, HL_SOURCE_DIR.
Exit 0 pass, 1 fail, 77 skip.  HL_KEEP_TMP=1 keeps the temp dir.
"""

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hardline_peer as hp  # noqa: E402
import hltest  # noqa: E402

TOTAL_BUDGET = 60.0
RESULTS = []  # (name, ok, message)
TMP = None
LOGS = {}


def log(msg):
    print(msg, flush=True)


def check(name, ok, expected, got):
    RESULTS.append((name, bool(ok), "expected %s, got %s" % (expected, got)))
    if ok:
        log("PASS %s" % name)
    else:
        log("FAIL %s: expected %s, got %s" % (name, expected, got))
    return bool(ok)


kill_all = hltest.kill_all


def on_signal(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


def watchdog():
    log("FAIL watchdog: the whole test took more than %ds; killing "
        "everything" % TOTAL_BUDGET)
    kill_all()
    dump_logs()
    if TMP and not os.environ.get("HL_KEEP_TMP"):
        shutil.rmtree(TMP, ignore_errors=True)
    n_ok = sum(1 for r in RESULTS if r[1])
    log("%d passed, %d failed" % (n_ok, len(RESULTS) - n_ok + 1))
    sys.stdout.flush()
    os._exit(1)


def dump_logs(lines=30):
    for name, path in LOGS.items():
        try:
            with open(path, errors="replace") as f:
                tail = f.readlines()[-lines:]
        except OSError:
            continue
        log("---- %s (last %d lines) ----" % (name, len(tail)))
        for line in tail:
            log("  " + line.rstrip())


# ---------------------------------------------------------------- helpers

class Backend(http.server.ThreadingHTTPServer):
    """A real HTTP backend that counts the TCP connections it accepts."""
    daemon_threads = True

    def __init__(self, marker):
        self.marker = marker
        self.connections = 0
        self.count_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), BackendHandler)
        self.timeout = 5

    def verify_request(self, request, client_address):
        with self.count_lock:
            self.connections += 1
        request.settimeout(10)
        return True


class BackendHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("<html><body><h1>%s</h1></body></html>\n"
                % self.server.marker).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def http_get(port, host_header, timeout=15):
    """GET / from 127.0.0.1:port with the given Host; returns (status, body)
    or (None, error text)."""
    req = ("GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: hl-test\r\n"
           "Connection: close\r\n\r\n" % host_header).encode()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as e:
        return None, "connect: %s" % e
    data = b""
    deadline = time.monotonic() + timeout
    try:
        s.sendall(req)
        while len(data) < (1 << 22):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        if not data:
            return None, "%s: %s" % (type(e).__name__, e)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        return None, "not an HTTP response: %r" % data[:200]
    return int(m.group(1)), body.decode("utf-8", "replace")


def check_listening(name, port, proc, expected):
    """check(name) that proc listens on port within 10 s (expected: what
    should listen); the result of the check."""
    return check(name, wait_port(port, proc), expected,
                 "exit %s" % proc.poll() if proc.poll() is not None
                 else "not listening after 10 s")


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def write_config(path, state_dir, proxy_port=None, tls=None, services=None,
                 peers=None):
    """YAML by hand (flow style, JSON strings), the keys of README.md's
    configuration reference."""
    q = json.dumps
    out = ["state_dir: %s" % q(state_dir), "log: { level: debug }"]
    if proxy_port:
        out.append("proxy: { listen: %s }" % q("127.0.0.1:%d" % proxy_port))
    else:
        out.append("proxy: { listen: off }")
    parts = []
    for k, v in (tls or {}).items():
        parts.append("%s: %s" % (k, q(v)))
    out.append("plugins:")
    out.append("  transport-tls: { %s }" % ", ".join(parts))
    if services:
        out.append("services:")
        for name, svc in services.items():
            out.append("  %s:" % name)
            for k, v in svc.items():
                out.append("    %s: %s" % (k, q(v) if k != "password"
                                           or v not in ("auto", "none")
                                           else v))
    if peers:
        out.append("peers:")
        for h, addrs in peers.items():
            out.append("  %s: %s" % (h, q(addrs)))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def start_hlcore(cfg, name):
    logpath = os.path.join(TMP, name + ".log")
    LOGS[name] = logpath
    return hltest.spawn([HLCORE, "-c", cfg], log=logpath, cwd=TMP,
                        env=dict(os.environ))


def stop_hlcore(p):
    """SIGTERM (a clean stop saves the caches); SIGKILL after 5 s."""
    rc = hltest.stop_proc(p, 5)
    return "killed after 5 s" if rc is None else rc


def wait_for(pred, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def closed_without_response(res):
    """The tunnel was closed by the server with nothing sent back (a send
    failing because the server already closed counts as closed)."""
    if res.response:
        return False
    if res.error is None:
        return True
    return res.error.startswith("sending the payload")


def gen_password():
    import base64
    return base64.b32encode(os.urandom(8)).decode().lower().rstrip("=")


REQUEST = (b"GET / HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n"
           b"User-Agent: hl-python-peer\r\n\r\n")


# ---------------------------------------------------------------- case 1

def case1(backend):
    """Python client -> C server."""
    d = os.path.join(TMP, "c1")
    os.makedirs(d)
    tls_port = hp.free_port()
    cfg = write_config(
        os.path.join(d, "hardline.yaml"), os.path.join(d, "state"),
        tls={"listen": "127.0.0.1:%d" % tls_port,
             "advertise": ["198.51.100.7:7008"]},
        services={"web": {"target": "127.0.0.1:%d" % backend.server_port,
                          "title": "python peer test", "password": "auto"}})
    u = subprocess.run([HLCORE, "-c", cfg, "url", "web"], cwd=TMP,
                       capture_output=True, text=True, timeout=20)
    url = u.stdout.strip()
    m = re.fullmatch(r"http://([a-z2-7]*)-([0-9a-f]{40})\.localhost:(\d+)/",
                     url)
    if not check("c1/url", u.returncode == 0 and m,
                 "exit 0 and http://<pw>-<hash>.localhost:<port>/",
                 "exit %s, %r %r" % (u.returncode, url, u.stderr.strip())):
        return
    pw, h = m.group(1), m.group(2)
    check("c1/url-password", len(pw) == 13,
          "a generated 13-character password", repr(pw))

    p = start_hlcore(cfg, "c1-server")
    if not check_listening("c1/start", tls_port, p,
                           "hlcore listening on 127.0.0.1:%d" % tls_port):
        return

    before = backend.connections
    r = hp.client("127.0.0.1", tls_port, h, pw, REQUEST)
    check("c1/cert-hash", r.cert_hash == h,
          "certificate hashing to %s (the URL's)" % h,
          "%s (%s)" % (r.cert_hash, r.error))
    line = r.server_line or b""
    obj_ok = isinstance(r.server_json, dict)
    check("c1/server-line-format",
          obj_ok and line.endswith(b"\n") and line.count(b"\n") == 1,
          "a JSON object then one \\n", repr(line) + (" / " + r.error
                                                      if r.error else ""))
    check("c1/server-line-own-record", r.server_first_read == line and line,
          "the first read after the handshake to be exactly the line %r"
          % line, repr(r.server_first_read))
    wan = (r.server_json or {}).get("WANHosts") if obj_ok else None
    check("c1/wanhosts-advertise",
          isinstance(wan, str) and "198.51.100.7:7008" in wan.split(","),
          'WANHosts listing "198.51.100.7:7008"', repr(wan))
    body = r.response.decode("utf-8", "replace")
    check("c1/good-password",
          r.error is None and body.startswith("HTTP/1.")
          and " 200 " in body.split("\r\n")[0] and backend.marker in body,
          "HTTP 200 with the backend's page (%s)" % backend.marker,
          "error=%s, response=%r" % (r.error, r.response[:200]))
    check("c1/good-password-backend",
          backend.connections == before + 1,
          "1 backend connection", backend.connections - before)

    def refused(name, password):
        """With this password (None: none) the tunnel to h closes with no
        response and no backend connection: checks name-closed and
        name-no-backend."""
        before = backend.connections
        r = hp.client("127.0.0.1", tls_port, h, password, REQUEST)
        time.sleep(0.3)
        check(name + "-closed", closed_without_response(r),
              "the tunnel closed with no response",
              "error=%s, stage=%s, response=%r" % (r.error, r.stage,
                                                   r.response[:200]))
        check(name + "-no-backend", backend.connections == before,
              "0 backend connections", backend.connections - before)

    time.sleep(0.2)
    refused("c1/wrong-password", "wrong" + pw[5:])
    refused("c1/missing-password", None)

    before = backend.connections
    other = "%040x" % int.from_bytes(os.urandom(20), "big")
    r = hp.client("127.0.0.1", tls_port, other, pw, REQUEST, sni="hash")
    check("c1/unknown-sni", r.error and r.error.startswith("handshake"),
          "a failed TLS handshake",
          "error=%s (cert %s)" % (r.error, r.cert_hash))
    r = hp.client("127.0.0.1", tls_port, h, pw, REQUEST, sni=None)
    check("c1/no-sni", r.error and r.error.startswith("handshake"),
          "a failed TLS handshake",
          "error=%s (cert %s)" % (r.error, r.cert_hash))
    check("c1/sni-no-backend", backend.connections == before,
          "0 backend connections", backend.connections - before)

    rc = stop_hlcore(p)
    check("c1/clean-stop", rc == 0, "exit 0 on SIGTERM", rc)


# ---------------------------------------------------------------- case 2

def case2(backend, pysrv, pyhash, pypw):
    """C client -> Python server, and the WANHosts cache."""
    d = os.path.join(TMP, "c2")
    os.makedirs(d)
    state = os.path.join(d, "state")
    port_a, port_b = pysrv.ports
    proxy = hp.free_port()
    cfg = write_config(os.path.join(d, "hardline.yaml"), state,
                       proxy_port=proxy, tls={},
                       peers={pyhash: ["127.0.0.1:%d" % port_a]})
    p = start_hlcore(cfg, "c2-client")
    if not check_listening("c2/start", proxy, p,
                           "the proxy listening on 127.0.0.1:%d" % proxy):
        return
    host = "%s-%s.localhost:%d" % (pypw, pyhash, proxy)
    n0 = len(pysrv.entries())
    status, body = http_get(proxy, host)
    check("c2/fetch", status == 200 and backend.marker in body,
          "HTTP 200 with the backend's page (%s)" % backend.marker,
          "%s %r" % (status, body[:300]))
    wait_for(lambda: all(e.get("done") for e in pysrv.entries()[n0:]), 3)
    conns = pysrv.entries()[n0:]
    good = [e for e in conns if e.get("result") == "relayed"]
    check("c2/python-server-relayed", len(good) >= 1,
          "a relayed tunnel on the Python server",
          [(e.get("result"), e.get("error"), e.get("first_read"))
           for e in conns])
    check("c2/sni", conns and all(e.get("sni") == pyhash for e in conns),
          "SNI = %s (bare hash)" % pyhash, [e.get("sni") for e in conns])
    if conns:
        e = (good or conns)[0]
        check("c2/no-payload-before-server-line",
              e.get("early_payload") == b"",
              "no payload from the client before the server's line",
              repr(e.get("early_payload")))
        log("     (the client's line came %s the server's)"
            % ("before" if e.get("client_line_before_ours") else "after"))
        fr = e.get("first_read")
        try:
            fr_obj = json.loads(fr) if fr else None
        except ValueError:
            fr_obj = None
        check("c2/client-line",
              isinstance(fr, bytes) and fr.endswith(b"\n")
              and fr.count(b"\n") == 1 and fr_obj == {"password": pypw},
              'the first read to be exactly {"password":"%s"}\\n' % pypw,
              repr(fr))
    rc = stop_hlcore(p)
    check("c2/clean-stop", rc == 0, "exit 0 on SIGTERM", rc)

    cache = os.path.join(state, "peers.cache")
    try:
        with open(cache, errors="replace") as f:
            text = f.read()
    except OSError as e:
        text = "<%s>" % e
    adv = "127.0.0.1:%d" % port_b
    check("c2/peers-cache", pyhash in text and adv in text,
          "%s holding %s and %s" % (cache, pyhash, adv), repr(text[:400]))

    # Restart without peers:, with only the advertised address listening.
    pysrv.close_port(port_a)
    cfg2 = write_config(os.path.join(d, "hardline2.yaml"), state,
                        proxy_port=proxy, tls={})
    p = start_hlcore(cfg2, "c2-client-restart")
    if not check_listening("c2/restart", proxy, p,
                           "the proxy listening again"):
        return
    n0 = len(pysrv.entries())
    status, body = http_get(proxy, host)
    check("c2/fetch-from-cache", status == 200 and backend.marker in body,
          "HTTP 200 through the remembered %s" % adv,
          "%s %r" % (status, body[:300]))
    wait_for(lambda: all(e.get("done") for e in pysrv.entries()[n0:]), 3)
    conns = pysrv.entries()[n0:]
    check("c2/cache-address-used",
          any(e["port"] == port_b and e.get("result") == "relayed"
              for e in conns),
          "a relayed tunnel on port %d" % port_b,
          [(e["port"], e.get("result")) for e in conns])
    rc = stop_hlcore(p)
    check("c2/clean-stop-2", rc == 0, "exit 0 on SIGTERM", rc)


# ---------------------------------------------------------------- case 3

def case3(backend, pysrv, pyhash, pypw, impostor):
    """An impostor before the real server, then the impostor alone."""
    real = "127.0.0.1:%d" % pysrv.ports[-1]
    imp = "127.0.0.1:%d" % impostor.port
    for sub, peers in (("both", [imp, real]), ("alone", [imp])):
        d = os.path.join(TMP, "c3-" + sub)
        os.makedirs(d)
        proxy = hp.free_port()
        cfg = write_config(os.path.join(d, "hardline.yaml"),
                           os.path.join(d, "state"), proxy_port=proxy,
                           tls={}, peers={pyhash: peers})
        p = start_hlcore(cfg, "c3-" + sub)
        if not check_listening("c3/%s-start" % sub, proxy, p,
                               "the proxy listening"):
            continue
        host = "%s-%s.localhost:%d" % (pypw, pyhash, proxy)
        i0 = len(impostor.entries())
        status, body = http_get(proxy, host)
        wait_for(lambda: all(e.get("done")
                             for e in impostor.entries()[i0:]), 4)
        tried = impostor.entries()[i0:]
        if sub == "both":
            check("c3/both-fetch", status == 200 and backend.marker in body,
                  "HTTP 200 with the backend's page via %s" % real,
                  "%s %r" % (status, body[:300]))
        else:
            check("c3/alone-502", status == 502,
                  "HTTP 502", "%s %r" % (status, body[:300]))
            check("c3/alone-page-says-hash", "hash" in body.lower(),
                  'the 502 page to mention the "hash" mismatch',
                  repr(body[:600]))
            check("c3/alone-page-lists-candidate", imp in body,
                  "the 502 page to list the tried address %s" % imp,
                  repr(body[:600]))
            check("c3/alone-impostor-contacted", len(tried) >= 1,
                  "the impostor to have been tried", len(tried))
        check("c3/%s-no-password-to-impostor" % sub,
              not any(b"password" in (e.get("received") or b"")
                      for e in tried),
              "no password line sent to the impostor",
              [e.get("received") for e in tried])
        log("     (%s: impostor saw %d connection(s), received %r)"
            % (sub, len(tried), [e.get("received") for e in tried]))
        stop_hlcore(p)


# ---------------------------------------------------------------- main

def main():
    global TMP
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    timer = threading.Timer(TOTAL_BUDGET, watchdog)
    timer.daemon = True
    timer.start()

    backend = pysrv = impostor = None
    TMP = tempfile.mkdtemp(prefix="hl-pypeer-")
    try:
        backend = Backend("hl-python-peer-" + os.urandom(6).hex())
        threading.Thread(target=backend.serve_forever, kwargs={
            "poll_interval": 0.1}, daemon=True).start()

        cert, key, pyhash = hp.make_cert(TMP, "pyservice")
        pypw = gen_password()
        # Two ports: A is given to hlcore in peers:, B is advertised in
        # WANHosts (and must be what hlcore remembers).
        pysrv = hp.Server(
            {pyhash: {"cert": cert, "key": key, "password": pypw,
                      "backend": ("127.0.0.1", backend.server_port)}},
            ports=(0, 0), oob_delay=0.3)
        pysrv.wanhosts = "127.0.0.1:%d" % pysrv.ports[1]
        pysrv.start()
        impostor = hp.ImpostorServer(certdir=TMP).start()

        for name, fn, args in (
                ("case 1: Python client -> C server", case1, (backend,)),
                ("case 2: C client -> Python server", case2,
                 (backend, pysrv, pyhash, pypw)),
                ("case 3: impostor", case3,
                 (backend, pysrv, pyhash, pypw, impostor))):
            log("== %s" % name)
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001
                check(name + " (ran to the end)", False, "no exception",
                      "%s: %s" % (type(e).__name__, e))
            kill_all()
    except KeyboardInterrupt as e:
        check("interrupted", False, "to run to the end", str(e))
    finally:
        timer.cancel()
        kill_all()
        for s in (pysrv, impostor):
            if s:
                s.stop()
        if backend:
            backend.shutdown()
            backend.server_close()
        failed = [r for r in RESULTS if not r[1]]
        if failed:
            dump_logs()
        if os.environ.get("HL_KEEP_TMP"):
            log("temp dir kept: %s" % TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    n_ok = sum(1 for r in RESULTS if r[1])
    log("%d passed, %d failed" % (n_ok, len(RESULTS) - n_ok))
    return 1 if failed or not RESULTS else 0


if __name__ == "__main__":
    HLCORE = os.environ.get("HLCORE") or os.path.join(
        os.environ.get("HL_BUILD_DIR", "build"), "hlcore")
    if not os.access(HLCORE, os.X_OK):
        print("SKIP: no hlcore binary at %s (set HLCORE)" % HLCORE)
        sys.exit(77)
    if not shutil.which("openssl"):
        print("SKIP: the openssl command is not installed")
        sys.exit(77)
    HLCORE = os.path.abspath(HLCORE)
    sys.exit(main())
