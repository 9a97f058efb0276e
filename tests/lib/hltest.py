"""hltest: the one library of the integration and lab tests and the bench
scripts (Python 3 stdlib only); netlab.py beside it adds network
namespaces. ctest puts this directory on PYTHONPATH; scripts also insert
it themselves (tests/lib from the source tree).

Every test script runs real hlcore processes against a real HTTP backend:

    import hltest
    t = hltest.Test("tunnel")       # temp dir, deadline; skips without hlcore
    backend = t.backend()           # threaded HTTP/1.1 server, counts conns
    node = t.node("server")
    def config():                   # called again with new ports on a clash
        hltest.fresh_ports(ports, "tls", "proxy")     # ports = {} above
        return node.tls_server_config(ports["tls"], {...}, ports["proxy"])
        # (base_config: state_dir, log level, proxy; tls_client_config,
        # admin_config: the other usual nodes)
    node.start(config, listens=lambda cfg: [ports["tls"], ...])
    r = hltest.fetch(ports["proxy"], "<pw>-<hash>.localhost", "/")
    t.case("name", fn)              # fn raises hltest.Fail (or anything)
    node.stop_ok()                  # SIGTERM, exit 0, no sanitizer report
    t.finish()                      # prints "N passed, N failed", exits

The environment (set by ctest): HLCORE (the binary), HL_BUILD_DIR,
HL_SOURCE_DIR. Scripts run in parallel with each other and under ASan, so:
every port is an ephemeral one, every file lives in the test's own temp
dir, every wait is bounded, every process is killed in the end (also on
SIGTERM and on the script's own deadline), and a daemon stopped with
SIGTERM must exit 0 (LeakSanitizer makes a leaking exit non-zero).

HLTEST_KEEP=1 (or LAB_KEEP=1) keeps the temp dir; HLTEST_DEBUG=1 (or
LAB_DEBUG=1) runs hlcore at log level debug and prints every log at the
end.
"""

import atexit
import hashlib
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SKIP = 77

# Under ASan everything is slower; waits are generous, but bounded.
ASAN = False


class Fail(Exception):
    """A check failed; the message says what was expected and what came."""


def check(cond, what, expected, got):
    if not cond:
        raise Fail("%s: expected %s, got %s" % (what, expected, short(got)))


def check_eq(got, expected, what):
    check(got == expected, what, repr(expected), repr(got))


def check_in(needle, hay, what):
    check(needle in hay, what, "%r in it" % (needle,), hay)


def short(v, n=1500):
    s = v if isinstance(v, str) else repr(v)
    if isinstance(v, bytes):
        s = v.decode("utf-8", "replace")
    return s if len(s) <= n else s[:n] + "... (%d more chars)" % (len(s) - n)


_short = short


# ---- processes: all registered, all killed at exit ----

_procs = []
_tmpdirs = []
_hooks = []  # more cleanup (namespaces), run after every process is gone
_lock = threading.Lock()


def _env_flag(name):
    """HLTEST_<name>, or the lab tests' LAB_<name>."""
    return os.environ.get("HLTEST_" + name) or os.environ.get("LAB_" + name)


def track(p):
    """Register a Popen: it is killed at exit, on a signal and at the
    script's deadline."""
    with _lock:
        _procs.append(p)
    return p


def at_cleanup(fn):
    """fn() runs at cleanup, after every process is killed."""
    _hooks.append(fn)


def _kill_all():
    with _lock:
        procs = list(_procs)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except Exception:
            pass


kill_all = _kill_all


def _cleanup():
    _kill_all()
    for fn in list(_hooks):
        try:
            fn()
        except Exception:
            traceback.print_exc()
    dirs = list(_tmpdirs)
    del _tmpdirs[:]
    for d in dirs:
        if _env_flag("KEEP"):
            print("kept %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


def _on_signal(signum, frame):
    print("hltest: signal %d: killing every process" % signum, flush=True)
    _cleanup()
    os._exit(1)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def skip(why):
    print("SKIP: %s" % why)
    print("0 passed, 0 failed", flush=True)
    sys.exit(SKIP)


def mkdtemp(prefix):
    """A temp dir removed at cleanup (kept with HLTEST_KEEP=1)."""
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


def hlcore_path():
    p = os.environ.get("HLCORE")
    if not p:
        bd = os.environ.get("HL_BUILD_DIR")
        if bd:
            p = os.path.join(bd, "hlcore")
    return p


def is_asan(binary):
    """True when the binary was built with AddressSanitizer."""
    try:
        with open(binary, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def in_ns(ns, args):
    """args run inside network namespace ns (none: as they are).
    `ip netns exec` execs them, so the pid is the command's own."""
    return (["ip", "netns", "exec", ns] if ns else []) + list(args)


def run(args, timeout=60, cwd=None, env=None, ns=None, input=None):
    """Run a command to completion (inside ns when given); returns
    (rc, stdout, stderr) as text."""
    p = track(subprocess.Popen(
        in_ns(ns, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if input else subprocess.DEVNULL,
        cwd=cwd, env=env or child_env()))
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=10)
        raise Fail("%s%s did not finish within %d s; stderr: %s" %
                   ("in %s: " % ns if ns else "", " ".join(args), timeout,
                    short(err)))
    return p.returncode, out.decode("utf-8", "replace"), \
        err.decode("utf-8", "replace")


def spawn(args, log=None, ns=None, env=None, cwd=None, stdin=None,
          stdout=None, stderr=None, preexec_fn=None):
    """Start a long-running command (inside ns when given), registered to
    be killed; its stdout and stderr are appended to the file log (else
    dropped) unless given."""
    f = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return track(subprocess.Popen(
            in_ns(ns, args), stdin=stdin or subprocess.DEVNULL,
            stdout=stdout or f, stderr=stderr or f, env=env or child_env(),
            cwd=cwd, preexec_fn=preexec_fn))
    finally:
        if log:
            f.close()


def stop_proc(p, timeout=20, sig=signal.SIGTERM):
    """Signal a process and wait (bounded): its exit status, or None when
    it had to be killed."""
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        return None


def wait_for(fn, timeout, what, step=0.05):
    """Poll fn() until it returns a true value (returned), at most timeout
    seconds (a Fail inside counts as not yet); then Fail naming what."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            last = fn()
        except Fail:
            last = None
        if last:
            return last
        if time.monotonic() > deadline:
            raise Fail("%s: not within %.1f s" % (what, timeout))
        time.sleep(step)


def wait_file(path, regexes, timeout=10):
    """Wait (bounded) until the file holds a match of every regex; Fail
    naming the file when it does not."""
    return wait_for(lambda: all(re.search(r, read_text(path), re.M)
                                for r in regexes), timeout,
                    "%s: %s" % (path, regexes), step=0.01)


def read_text(path):
    """A file's text, "" when it is not there."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def child_env(asan_extra=None):
    """The environment of a child: ours, with sanitizer defaults; asan_extra
    ("opt=value:...") goes after any ASAN_OPTIONS given, so it wins."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    if asan_extra:
        env["ASAN_OPTIONS"] = env["ASAN_OPTIONS"] + ":" + asan_extra
    return env


# ---- ports ----

_given_ports = set()


def free_port(host="127.0.0.1"):
    """A port nobody listens on now: bind port 0, note it, close it.
    Ports handed out once are not handed out again by this process."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _given_ports:
            _given_ports.add(port)
            return port
    raise Fail("no free port found")


def fresh_ports(ports, *names):
    """Put a new free_port() in ports[name] for each name."""
    for name in names:
        ports[name] = free_port()


def local(port):
    """The address "127.0.0.1:port", where every test listens."""
    return "127.0.0.1:%d" % port


def port_open(port, host="127.0.0.1", timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def closed_within(s, timeout):
    """True when the peer closes socket s (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def listen_and_serve(obj, handler, backlog=64):
    """A TCP listener on 127.0.0.1 for obj (obj.sock, obj.port,
    obj.addr), each connection handed to handler in a thread."""
    obj.sock = socket.socket()
    obj.sock.bind(("127.0.0.1", 0))
    obj.sock.listen(backlog)
    obj.port = obj.sock.getsockname()[1]
    obj.addr = local(obj.port)
    serve_in_threads(obj.sock, handler)


def read_to_eof(c, data=b""):
    """data and everything c brings until its EOF."""
    for d in iter(lambda: c.recv(65536), b""):
        data += d
    return data


def read_head(c):
    """Read from c up to a blank line: (head, what came after it), or
    None when c closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(65536)
        if not d:
            return None
        data += d
    return tuple(data.split(b"\r\n\r\n", 1))


def serve_in_threads(sock, handler):
    """Accept on a listening socket in a thread of its own until it is
    closed, handing each connection to handler in a new thread."""
    def loop():
        while True:
            try:
                c, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=handler, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


class BannerService:
    """A banner-first TCP service on 127.0.0.1 (addr, port): says line
    ("220 hltest-banner <token>\\r\\n") to each client at once, then echoes
    what it gets until EOF, a thread per client."""

    def __init__(self):
        self.token = os.urandom(6).hex()
        self.line = ("220 hltest-banner %s\r\n" % self.token).encode()
        listen_and_serve(self, self._serve)

    def _serve(self, c):
        try:
            c.settimeout(30)
            c.sendall(self.line)
            for d in iter(lambda: c.recv(65536), b""):  # echo until EOF
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()


class HalfCloseService:
    """A TCP backend for half-close, a thread per client. It reads the
    request head (up to a blank line), then by the head's path:
    - /answer-at-eof: reads on until the client's EOF, then answers what
      it read after the head ("got <n> <sha256>") and closes;
    - /shut-first: answers "hello <token>" and shuts its sending side at
      once, then reads on until the client's EOF; what it read after the
      head is kept in `after_shut` and `done` is set;
    - /hold: never answers; after the client's EOF it writes twice:
      `held` becomes "reset" when the node that connected it had closed
      the connection for good (the tunnel ended), "open" when it still
      read on (a half-close), and `done` is set."""

    def __init__(self):
        self.token = os.urandom(6).hex()
        self.after_shut = None
        self.held = None
        self.holding = threading.Event()  # a /hold request came
        self.done = threading.Event()
        listen_and_serve(self, self._serve)

    def _serve(self, c):
        try:
            c.settimeout(30)
            got = read_head(c)
            if got is None:
                return
            head, rest = got
            if b" /hold " in head:
                self.holding.set()
                read_to_eof(c, rest)
                try:
                    # A socket closed for good answers "late" with a
                    # reset, which fails the next send.
                    for word in (b"late", b"more"):
                        time.sleep(0.3)
                        c.sendall(word)
                    self.held = "open"
                except OSError:
                    self.held = "reset"
                self.done.set()
            elif b" /shut-first " in head:
                c.sendall(("hello %s" % self.token).encode())
                c.shutdown(socket.SHUT_WR)
                self.after_shut = read_to_eof(c, rest)
                self.done.set()
            else:
                rest = read_to_eof(c, rest)
                c.sendall(("got %d %s" % (
                    len(rest), hashlib.sha256(rest).hexdigest())).encode())
        except OSError:
            pass
        finally:
            c.close()


def check_browser_left(svc, proxy_port, host, server, name, timeout=20):
    """A browser that leaves (closes) while its request to `svc` (a
    HalfCloseService, the service `name` of node `server`, whose log level
    is debug) at `host` is unanswered, through the client node's HTTP
    proxy: the service's node ends the tunnel at once and closes the
    backend's connection, rather than hold it half-closed for an answer
    nobody will read (a long poll would hold it until the idle timeout)."""
    svc.done.clear()
    svc.holding.clear()
    svc.held = None
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    try:
        s.sendall(("GET /hold HTTP/1.1\r\nHost: %s\r\n\r\n" %
                   host).encode())
        check(svc.holding.wait(timeout), "the request through the proxy",
              "at the backend within %d s" % timeout, "not there")
        # It leaves: a browser never sends a half-close, so its EOF
        # (here a shutdown, to see what comes after) ends the tunnel.
        s.shutdown(socket.SHUT_WR)
        check(s.recv(65536) == b"", "the browser's connection after its "
              "EOF", "closed by the proxy, nothing more", "more bytes")
    finally:
        s.close()
    check(svc.done.wait(timeout) and svc.held == "reset", "the backend's "
          "connection after the browser left", "closed for good (a reset "
          "when the backend wrote)", svc.held)
    # Closed before the backend wrote a byte, not after its write went
    # down a tunnel nobody reads.
    ended = re.findall(r"^.* %s: tunnel from \S+ closed by the \w+ "
                       r"\(\d+ bytes in, (\d+) out\)$" % re.escape(name),
                       server.log(), re.M)
    check(ended and ended[-1] == "0", "the service node's tunnel after "
          "the browser left", "ended before the backend wrote (0 out)",
          ended[-1:])


def check_half_close(svc, port, timeout=20):
    """Half-close both ways through a client node's forward on `port` to
    `svc` (a HalfCloseService), as a plain TCP connection would carry it:
    1. the client sends and shuts its sending side; the service reads to
       that EOF and only then answers, and the client gets the answer;
    2. the service answers and shuts its sending side first; the client
       reads that EOF, then still sends, and the service gets it all."""
    def connect(path):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(("GET %s HTTP/1.1\r\n\r\n" % path).encode())
        return s

    for body, what in ((os.urandom(300000), ""),
                       (b"short", ", at once (before its tunnel stood)")):
        s = connect("/answer-at-eof")
        try:
            s.sendall(body)
            s.shutdown(socket.SHUT_WR)
            got = read_to_eof(s)
        finally:
            s.close()
        want = "got %d %s" % (len(body), hashlib.sha256(body).hexdigest())
        check(got == want.encode(), "the answer sent after the client's "
              "half-close" + what, want, got)
    body = os.urandom(300000)

    svc.done.clear()
    svc.after_shut = None
    s = connect("/shut-first")
    try:
        got = read_to_eof(s)
        check(got == ("hello %s" % svc.token).encode(), "what the service "
              "sent before shutting its side", "hello and EOF", got)
        s.sendall(body)  # after the EOF: the tunnel must still carry it
        s.shutdown(socket.SHUT_WR)
        check(svc.done.wait(timeout), "the service after the client's "
              "EOF", "EOF within %d s" % timeout, "no EOF")
        check(svc.after_shut == body, "what the service read after it "
              "had shut its side", "all %d bytes" % len(body),
              "%s bytes" % (None if svc.after_shut is None
                            else len(svc.after_shut)))
        check(read_to_eof(s) == b"", "the client's connection at the end",
              "closed", "more bytes")
    finally:
        s.close()


class SilentListener:
    """A TCP port that completes the TCP handshake (in the backlog) but
    never reads or answers: a TLS dial to it hangs until its own timeout."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


# ---- the HTTP backend ----

PATTERN_PERIOD = 65521  # a prime, so chunk and period boundaries drift
_pattern_block = random.Random(20240607).randbytes(PATTERN_PERIOD)
_pattern_big = _pattern_block * (1024 * 1024 // PATTERN_PERIOD + 3)


def pattern(offset, n):
    """n bytes of the endless test pattern from offset (n <= 1 MiB)."""
    o = offset % PATTERN_PERIOD
    return _pattern_big[o:o + n]


class PatternChecker:
    """Checks a byte stream against the pattern as it arrives."""

    def __init__(self):
        self.offset = 0
        self.bad_at = None

    def feed(self, data):
        if self.bad_at is None:
            mv = memoryview(data)
            pos = 0
            while pos < len(mv):
                n = min(len(mv) - pos, 1024 * 1024)
                if mv[pos:pos + n] != pattern(self.offset + pos, n):
                    self.bad_at = self.offset + pos
                    break
                pos += n
        self.offset += len(data)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hltest-backend/1"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, code, body, ctype="text/plain; charset=utf-8"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        b = self.server.backend
        with b.lock:
            b.requests += 1
        u = urlsplit(self.path)
        if u.path == "/big":
            q = parse_qs(u.query)
            size = int(q.get("size", ["1048576"])[0])
            chunk = int(q.get("chunk", ["1048576"])[0])
            delay = float(q.get("delay", ["0"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            sent = 0
            try:
                while sent < size:
                    n = min(chunk, size - sent, 1024 * 1024)
                    self.wfile.write(pattern(sent, n))
                    sent += n
                    with b.lock:
                        b.big_sent += n
                    if delay:
                        time.sleep(delay)
            except OSError:
                self.close_connection = True
            return
        body = ("hltest backend %s\npath=%s\nhost=%s\n" %
                (b.token, self.path, self.headers.get("Host", ""))).encode()
        self._reply(200, body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n) if n else b""
        body = ("hltest backend %s\nposted=%d sha256=%s\n" %
                (self.server.backend.token, len(data),
                 hashlib.sha256(data).hexdigest())).encode()
        self._reply(200, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def verify_request(self, request, client_address):
        with self.backend.lock:
            self.backend.connections += 1
        return True


class Backend:
    """A threaded HTTP/1.1 backend on 127.0.0.1: GET any path answers a
    small page naming its token; GET /big?size=N[&chunk=C&delay=S] sends N
    bytes of the test pattern as fast as the socket takes them (or C bytes
    every S seconds); POST answers the body's length and SHA-256. Counts
    the TCP connections it accepted and the /big bytes it has sent."""

    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.big_sent = 0
        self.token = "%016x" % random.getrandbits(64)
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.backend = self
        self.port = self.server.server_address[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return self.connections

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---- talking to the proxy ----

class Response:
    def __init__(self, status, reason, headers, body, elapsed):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<HTTP %s %s, %d bytes: %s>" % (
            self.status, self.reason, len(self.body), short(self.text, 600))


def fetch(proxy_port, host_header, path="/", timeout=30, method="GET",
          body=None, conn=None):
    """One request through the proxy on 127.0.0.1:proxy_port with the given
    Host header. Returns a Response. Pass conn (an HTTPConnection from
    connect()) to send several requests on one connection."""
    own = conn is None
    if own:
        conn = connect(proxy_port, timeout)
    t0 = time.monotonic()
    try:
        headers = {"Host": host_header, "User-Agent": "hltest"}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason,
                        {k.lower(): v for k, v in r.getheaders()}, data,
                        time.monotonic() - t0)
    finally:
        if own:
            conn.close()


def check_refused(proxy_port, host_header, backend, what, wait=30):
    """A request the service's node must refuse before its backend hears
    of it (a wrong or missing password): 502 naming the password, and no
    new connection at backend (anything with .count())."""
    before = backend.count()
    r = fetch(proxy_port, host_header, "/secret", timeout=wait)
    check(r.status == 502, what, "HTTP 502", r)
    check_in("password", r.text, "the 502 page for %s" % what)
    time.sleep(0.3)  # a wrongly made backend connection would show by now
    check_eq(backend.count() - before, 0,
             "backend connections caused by %s" % what)


def connect(proxy_port, timeout=30):
    return http.client.HTTPConnection("127.0.0.1", proxy_port,
                                      timeout=timeout)


def raw_request(port, data, timeout=30, max_bytes=1 << 20):
    """Send raw bytes, read until the peer closes (bounded); returns
    (status or None, the whole answer as text)."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the proxy may answer and close before reading it all
        deadline = time.monotonic() + timeout
        while len(out) < max_bytes and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", out)
    return (int(m.group(1)) if m else None), out.decode("utf-8", "replace")


def rss_kib(pid):
    """VmRSS of a process in KiB, or None when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---- YAML ----

def write_yaml(path, cfg):
    """Write cfg (a dict) to path as YAML; returns path."""
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    return path


def service_host(hlcore, config, service):
    """hlcore -c config url service: (the Host of its URL, its keyhash)."""
    url = subprocess.run([hlcore, "-c", config, "url", service],
                         capture_output=True, text=True,
                         check=True).stdout.strip()
    host = url.split("/")[2]
    return host, re.search(r"-([0-9a-f]{40})\.", host).group(1)


def to_yaml(v, indent=0):
    """A config dict as block YAML (strings double-quoted, lists in flow)."""
    pad = "  " * indent
    lines = []
    for k, val in v.items():
        if isinstance(val, dict):
            if not val:
                lines.append("%s%s: {}" % (pad, k))
            else:
                lines.append("%s%s:" % (pad, k))
                lines.append(to_yaml(val, indent + 1))
        else:
            lines.append("%s%s: %s" % (pad, k, _yaml_scalar(val)))
    return "\n".join(lines)


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (k, _yaml_scalar(x))
                               for k, x in v.items()) + "}"
    return json.dumps(str(v))


# ---- hlcore ----

SANITIZER_RE = re.compile(
    r"(ERROR: (Address|Leak)Sanitizer.*|runtime error:.*)")


class Hlcore:
    """One hlcore daemon with its config and log in the test's temp dir;
    inside network namespace ns when given (the attribute may change
    between runs)."""

    def __init__(self, test, name, ns=None):
        self.t = test
        self.name = name
        self.ns = ns
        self.dir = os.path.join(test.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.config_path = os.path.join(self.dir, "hardline.yaml")
        self.log_path = os.path.join(self.dir, "hlcore.log")
        self.proc = None
        self.cfg = None
        self.logf = None
        self.run_offset = 0     # where this run's log starts
        self.asan_extra = None  # more ASAN_OPTIONS for this daemon
        self.nofile = None  # RLIMIT_NOFILE to start it with: n or (soft, hard)
        self.preexec = None  # run in the child before exec (e.g. rlimits)

    @property
    def state_dir(self):
        return os.path.join(self.dir, "state")

    def write_config(self, cfg):
        self.cfg = cfg
        text = cfg if isinstance(cfg, str) else to_yaml(cfg) + "\n"
        with open(self.config_path, "w") as f:
            f.write(text)

    def configure(self, cfg):
        """write_config with this node's state_dir and the log level
        filled in when cfg does not set them."""
        cfg = dict(cfg)
        cfg.setdefault("state_dir", self.state_dir)
        cfg.setdefault("log", {"level": log_level()})
        self.write_config(cfg)

    def base_config(self, proxy=None, **more):
        """A config: this node's state_dir, the log level, the proxy on
        127.0.0.1:proxy ("off" when proxy is None), then the keys in more."""
        cfg = {"state_dir": self.state_dir, "log": {"level": log_level()},
               "proxy": {"listen": "off" if proxy is None else local(proxy)}}
        cfg.update(more)
        return cfg

    def tls_server_config(self, tls, services, proxy=None, **more):
        """base_config serving services with transport-tls listening on
        127.0.0.1:tls."""
        return self.base_config(proxy, plugins={"transport-tls": {
            "listen": local(tls)}}, services=services, **more)

    def tls_client_config(self, proxy, peers, **more):
        """base_config of a client: the proxy on 127.0.0.1:proxy,
        transport-tls that only dials out, and these peers."""
        return self.base_config(proxy, plugins={"transport-tls": {}},
                                peers=peers, **more)

    def admin_config(self, ports, services, new_ports=True, **more):
        """base_config with transport-tls, the proxy and admin-web each on a
        port (ports["tls"], ports["proxy"], ports["admin"]; fresh ones when
        new_ports) and plugins_strict: a port taken by someone else stops
        hlcore (so that start() tries others), not leaves it running
        without the panel."""
        if new_ports:
            fresh_ports(ports, "tls", "proxy", "admin")
        return self.base_config(ports["proxy"], plugins_strict=True, plugins={
            "transport-tls": {"listen": local(ports["tls"])},
            "admin-web": {"listen": local(ports["admin"])},
        }, services=services, **more)

    def admin_token(self):
        """The admin panel's token, from state_dir/admin.token."""
        with open(os.path.join(self.state_dir, "admin.token")) as f:
            return f.read().strip()

    def admin_status(self, admin_port):
        """GET /api/status from the admin panel on 127.0.0.1:admin_port
        with this node's token; checks for 200 and returns the JSON."""
        conn = http.client.HTTPConnection("127.0.0.1", admin_port,
                                          timeout=self.t.slow(10))
        try:
            conn.request("GET", "/api/status",
                         headers={"Authorization": "Bearer " +
                                  self.admin_token()})
            r = conn.getresponse()
            body = r.read()
        finally:
            conn.close()
        check(r.status == 200, "GET /api/status", "200", r.status)
        return json.loads(body.decode("utf-8"))

    def cmd(self, *args, timeout=None):
        """hlcore -c <config> args...: (rc, stdout, stderr)."""
        return run([self.t.hlcore, "-c", self.config_path] + list(args),
                   timeout=timeout or self.t.slow(30), cwd=self.dir,
                   ns=self.ns)

    def url(self, service):
        """hlcore url SERVICE: (password, keyhash)."""
        rc, out, err = self.cmd("url", service)
        m = URL_RE.match(out.strip())
        check(rc == 0 and m, "hlcore url %s" % service, "a URL", out + err)
        return m.group(1), m.group(2)

    def start(self, make_config, listens, attempts=4):
        """Start with make_config() (called again, with fresh ports, when
        a port turned out to be taken) and wait until every port in
        listens(cfg) accepts connections."""
        last = ""
        for _ in range(attempts):
            cfg = make_config()
            self.write_config(cfg)
            ports = listens(cfg)
            if self._start_once(ports):
                return self
            last = self.log()
            if "Address already in use" not in last:
                break
        raise Fail("hlcore %s did not start (ports %s); its log:\n%s" %
                   (self.name, listens(self.cfg), short(last, 4000)))

    def start_written(self, make_config, listens):
        """start() with the config written before (its ports chosen
        then), and make_config() with new ports on a retry after a
        clash."""
        written = [self.cfg]
        return self.start(lambda: written.pop() if written else make_config(),
                          listens)

    def spawn(self):
        """Start hlcore -c <config> (as written) without waiting for
        anything; its stdout and stderr go to its log."""
        self.logf = open(self.log_path, "ab")
        self.logf.write(b"---- start\n")
        self.logf.flush()
        self.run_offset = self.logf.tell()
        self.proc = spawn([self.t.hlcore, "-c", self.config_path],
                          ns=self.ns, stdout=self.logf, stderr=self.logf,
                          cwd=self.dir, env=child_env(self.asan_extra),
                          preexec_fn=self._preexec)
        return self

    def launch(self, wait_regex=None, timeout=20):
        """spawn(), then wait until this run logs wait_regex (if given)."""
        self.spawn()
        if wait_regex:
            self.expect_log(wait_regex, timeout)
        return self

    def _preexec(self):
        if self.preexec is not None:
            self.preexec()
        if self.nofile is not None:
            import resource
            n = self.nofile
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               n if isinstance(n, tuple) else (n, n))

    def _start_once(self, ports):
        self.spawn()
        deadline = time.monotonic() + self.t.slow(20)
        pending = list(ports)
        while pending and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.logf.close()
                return False
            pending = [p for p in pending if not port_open(p)]
            if pending:
                time.sleep(0.05)
        if pending:
            self.kill()
            raise Fail("hlcore %s: ports %s not listening within %d s; "
                       "log:\n%s" % (self.name, pending, self.t.slow(20),
                                     short(self.log(), 4000)))
        return True

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        """The whole log, every run."""
        return read_text(self.log_path)

    def run_log(self):
        """The log of the latest run only."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.run_offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, regex, timeout=10):
        """Wait (bounded) until the log matches regex; returns the match."""
        deadline = time.monotonic() + self.t.slow(timeout)
        while True:
            m = re.search(regex, self.log(), re.M)
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def expect_log(self, regex, timeout=20):
        """Wait (bounded) until this run's log matches regex and return
        the match; Fail when it does not, or when hlcore exits first."""
        def seen():
            if self.proc.poll() is not None:
                raise AssertionError(
                    "hlcore %s exited (%s) before logging /%s/" %
                    (self.name, self.proc.returncode, regex))
            return re.search(regex, self.run_log(), re.M)
        try:
            return wait_for(seen, self.t.slow(timeout), "hlcore %s logging "
                            "/%s/" % (self.name, regex))
        except (Fail, AssertionError) as e:
            raise Fail("%s; log:\n%s" % (e, short(self.run_log()[-4000:],
                                                   4000)))

    def wait_exit(self, timeout=30):
        try:
            return self.proc.wait(timeout=self.t.slow(timeout))
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=60):
        """SIGTERM; returns the exit status (None when it had to be
        killed). A sanitizer report in the log counts as a failure."""
        if self.proc is None:
            return None
        rc = stop_proc(self.proc, self.t.slow(timeout))
        if self.logf:
            self.logf.close()
        return rc

    def stop_ok(self):
        """stop() and check that the exit was clean."""
        rc = self.stop()
        log = self.log()
        san = SANITIZER_RE.search(log)
        check(rc == 0 and san is None,
              "hlcore %s after SIGTERM" % self.name,
              "exit status 0 and no sanitizer report",
              "exit status %s%s; end of log:\n%s" %
              (rc, " and a sanitizer report" if san else "",
               short(log[-6000:], 6000)))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def launch_and_fetch(self, host, token, what,
                         expected="200 with the backend's token"):
        """launch() until the proxy listens, GET host through it and check
        for status 200 with token in the body; returns the seconds."""
        self.launch(r"proxy listening")
        code, body, secs = self.fetch(host)
        check(code == 200 and token in body, what, expected, (code, body))
        return secs

    def peers_cache(self):
        return read_text(os.path.join(self.state_dir, "peers.cache"))

    def fetch(self, host, path="/token.txt", port=7009, timeout=20):
        """GET with curl through this node's proxy on 127.0.0.1:port (in
        its namespace) with the given Host header: (http status, body,
        seconds)."""
        rc, out, err = run(
            ["curl", "-sS", "-m", str(timeout), "-o", "-", "-w",
             "\n@@%{http_code} %{time_total}", "-H", "Host: %s" % host,
             "http://127.0.0.1:%d%s" % (port, path)],
            timeout=timeout + 10, ns=self.ns)
        m = re.search(r"\n@@(\d{3}) ([0-9.]+)$", out)
        if m is None:
            raise Fail("curl in %s: exit %d: %s %s" % (self.ns, rc, out,
                                                      err))
        return int(m.group(1)), out[:m.start()], float(m.group(2))


# ---- the test runner ----

class Test:
    """The case runner: a temp dir, a deadline, cases counted and printed
    as "N passed, N failed", exit 0, 1 or SKIP. root=True and needs (tools
    that must be on PATH) skip the script when missing."""

    def __init__(self, name, deadline=None, root=False, needs=()):
        self.name = name
        if root and os.geteuid() != 0:
            skip("%s needs root (network namespaces)" % name)
        missing = [b for b in needs if shutil.which(b) is None]
        if missing:
            skip("%s needs %s (see scripts/deps.sh test)" %
                 (name, ", ".join(missing)))
        self.hlcore = hlcore_path()
        if not self.hlcore or not os.access(self.hlcore, os.X_OK):
            skip("no hlcore binary (set HLCORE or HL_BUILD_DIR); got %r" %
                 self.hlcore)
        self.hlcore = os.path.abspath(self.hlcore)
        self.build_dir = os.environ.get("HL_BUILD_DIR") or \
            os.path.dirname(self.hlcore)
        self.source_dir = os.environ.get("HL_SOURCE_DIR") or \
            os.path.abspath(os.path.join(os.path.dirname(__file__), "..",
                                         ".."))
        self.asan = is_asan(self.hlcore)
        self.tmp = mkdtemp("hltest-%s-" % name)
        os.chmod(self.tmp, 0o755)
        self.passed = 0
        self.failed = 0
        self.nodes = []
        self.backends = []
        self.t0 = time.monotonic()
        # The whole script is bounded: ctest's timeout is 300 s.
        self.deadline = deadline or (240 if self.asan else 150)
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.alarm(self.deadline)
        print("%s: hlcore %s%s, temp dir %s" %
              (name, self.hlcore, " (ASan)" if self.asan else "", self.tmp),
              flush=True)

    def _on_alarm(self, signum, frame):
        print("FAIL: %s: the script ran past its %d s deadline" %
              (self.name, self.deadline), flush=True)
        self.failed += 1
        self._dump_logs()
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        _cleanup()
        os._exit(1)

    def slow(self, seconds):
        """A timeout, stretched under ASan."""
        return seconds * 3 if self.asan else seconds

    def wait_for(self, fn, timeout, what, step=0.05):
        return wait_for(fn, timeout, what, step)

    def need_built(self, *paths, hint=""):
        """Skip the script unless every path (relative to the build dir)
        was built."""
        for p in paths:
            if not os.path.exists(os.path.join(self.build_dir, p)):
                skip("%s was not built%s" % (os.path.basename(p), hint))

    def plugin_dir(self, *paths):
        """A new plugin_dir in the temp dir with a copy of every built
        path (relative to the build dir; skips when one was not built)."""
        self.need_built(*paths)
        d = os.path.join(self.tmp, "plugins")
        os.makedirs(d)
        for p in paths:
            shutil.copy(os.path.join(self.build_dir, p), d)
        return d

    def wait_log_file(self, path, regex, timeout=10):
        """Wait (stretched under ASan) until the file at path matches
        regex; returns the match, Fails naming the file when it does not."""
        return wait_for(lambda: re.search(regex, read_text(path), re.M),
                        self.slow(timeout), "%s: log line /%s/" % (
                            os.path.relpath(path, self.tmp), regex))

    def backend(self):
        b = Backend()
        self.backends.append(b)
        return b

    def node(self, name, ns=None):
        n = Hlcore(self, name, ns)
        self.nodes.append(n)
        return n

    def case(self, name, fn, *args):
        t0 = time.monotonic()
        try:
            fn(*args)
        except Fail as e:
            self.failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
            return False
        except Exception:
            self.failed += 1
            print("FAIL %s: exception:\n%s" % (name, traceback.format_exc()),
                  flush=True)
            return False
        self.passed += 1
        print("ok   %s (%.2f s)" % (name, time.monotonic() - t0), flush=True)
        return True

    def cases(self, *fns):
        """Run each fn as a case named by the first line of its docstring
        (its name without one); True when every one passed."""
        ok = True
        for fn in fns:
            doc = (fn.__doc__ or fn.__name__).strip().split("\n")[0]
            ok = self.case(doc, fn) and ok
        return ok

    def case_stops_cleanly(self, *nodes):
        """A case per node: "the NAME daemon stops cleanly" (stop_ok)."""
        for n in nodes:
            self.case("the %s daemon stops cleanly" % n.name, n.stop_ok)

    def expect(self, name, cond, expected, got):
        """A case that is one condition: counted, printed, returned."""
        return self.case(name, check, cond, name, expected, got)

    def _dump_logs(self):
        """The end of every *.log in the temp dir (hlcore's and every
        spawned process's)."""
        for root, _, files in sorted(os.walk(self.tmp)):
            for f in sorted(files):
                if f.endswith(".log"):
                    path = os.path.join(root, f)
                    text = read_text(path)
                    if text:
                        print("---- %s (last 8000 chars):\n%s" %
                              (os.path.relpath(path, self.tmp),
                               text[-8000:]), flush=True)

    def finish(self):
        signal.alarm(0)
        for n in self.nodes:
            n.kill()
        for b in self.backends:
            try:
                b.close()
            except Exception:
                pass
        if self.failed or _env_flag("DEBUG"):
            self._dump_logs()
        print("%s: %.1f s" % (self.name, time.monotonic() - self.t0))
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        _cleanup()
        sys.exit(1 if self.failed else 0)


def log_level():
    return "debug" if _env_flag("DEBUG") else "info"


URL_RE = re.compile(r"^http://([a-z2-7]*)-([0-9a-f]{40})\.localhost:(\d+)/$")
