"""hltest: the shared pieces of the integration tests (Python 3 stdlib only).

Every test script runs real hlcore processes against a real HTTP backend:

    import hltest
    t = hltest.Test("tunnel")       # temp dir, deadline; skips without hlcore
    backend = t.backend()           # threaded HTTP/1.1 server, counts conns
    node = t.node("server")
    def config():                   # called again with new ports on a clash
        port = hltest.free_port()
        return {"state_dir": node.state_dir, ...}
    node.start(config, listens=lambda cfg: [port, ...])
    r = hltest.fetch(proxy_port, "<pw>-<hash>.localhost", "/")
    t.case("name", fn)              # fn raises hltest.Fail (or anything)
    node.stop_ok()                  # SIGTERM, exit 0, no sanitizer report
    t.finish()                      # prints "N passed, N failed", exits

The environment (set by ctest): HLCORE (the binary), HL_BUILD_DIR,
HL_SOURCE_DIR. Scripts run in parallel with each other and under ASan, so:
every port is an ephemeral one, every file lives in the test's own temp
dir, every wait is bounded, every process is killed in the end (also on
SIGTERM and on the script's own deadline), and a daemon stopped with
SIGTERM must exit 0 (LeakSanitizer makes a leaking exit non-zero).

HLTEST_KEEP=1 keeps the temp dir; HLTEST_DEBUG=1 runs hlcore at log level
debug and prints its logs at the end.
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
        raise Fail("%s: expected %s, got %s" % (what, expected, _short(got)))


def check_eq(got, expected, what):
    check(got == expected, what, repr(expected), repr(got))


def check_in(needle, hay, what):
    check(needle in hay, what, "%r in it" % (needle,), hay)


def _short(v, n=1500):
    s = v if isinstance(v, str) else repr(v)
    if isinstance(v, bytes):
        s = v.decode("utf-8", "replace")
    return s if len(s) <= n else s[:n] + "... (%d more chars)" % (len(s) - n)


# ---- processes: all registered, all killed at exit ----

_procs = []
_tmpdirs = []
_lock = threading.Lock()


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


def _cleanup():
    _kill_all()
    dirs = list(_tmpdirs)
    del _tmpdirs[:]
    for d in dirs:
        if os.environ.get("HLTEST_KEEP"):
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


def run(args, timeout=60, cwd=None, env=None):
    """Run a command to completion; returns (rc, stdout, stderr) as text."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=cwd, env=env or child_env())
    with _lock:
        _procs.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=10)
        raise Fail("%s did not finish within %d s; stderr: %s" %
                   (" ".join(args), timeout, _short(err)))
    return p.returncode, out.decode("utf-8", "replace"), \
        err.decode("utf-8", "replace")


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


def port_open(port, host="127.0.0.1", timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


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
            self.status, self.reason, len(self.body), _short(self.text, 600))


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
    return json.dumps(str(v))


# ---- hlcore ----

class Hlcore:
    """One hlcore daemon with its config and log in the test's temp dir."""

    def __init__(self, test, name):
        self.t = test
        self.name = name
        self.dir = os.path.join(test.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.config_path = os.path.join(self.dir, "hardline.yaml")
        self.log_path = os.path.join(self.dir, "hlcore.log")
        self.proc = None
        self.cfg = None
        self.logf = None
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

    def cmd(self, *args, timeout=None):
        """hlcore -c <config> args...: (rc, stdout, stderr)."""
        return run([self.t.hlcore, "-c", self.config_path] + list(args),
                   timeout=timeout or self.t.slow(30), cwd=self.dir)

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
                   (self.name, listens(self.cfg), _short(last, 4000)))

    def spawn(self):
        """Start hlcore -c <config> (as written) without waiting for
        anything; its stdout and stderr go to its log."""
        self.logf = open(self.log_path, "ab")
        self.logf.write(b"---- start\n")
        self.logf.flush()
        self.proc = subprocess.Popen(
            [self.t.hlcore, "-c", self.config_path], stdin=subprocess.DEVNULL,
            stdout=self.logf, stderr=self.logf, cwd=self.dir,
            env=child_env(self.asan_extra), preexec_fn=self._preexec)
        with _lock:
            _procs.append(self.proc)
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
                                     _short(self.log(), 4000)))
        return True

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
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
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=self.t.slow(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        if self.logf:
            self.logf.close()
        return rc

    def stop_ok(self):
        """stop() and check that the exit was clean."""
        rc = self.stop()
        log = self.log()
        san = re.search(r"(ERROR: (Address|Leak)Sanitizer.*|runtime error:.*)",
                        log)
        check(rc == 0 and san is None,
              "hlcore %s after SIGTERM" % self.name,
              "exit status 0 and no sanitizer report",
              "exit status %s%s; end of log:\n%s" %
              (rc, " and a sanitizer report" if san else "",
               _short(log[-6000:], 6000)))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


# ---- the test runner ----

class Test:
    def __init__(self, name, deadline=None):
        self.name = name
        self.hlcore = hlcore_path()
        if not self.hlcore or not os.access(self.hlcore, os.X_OK):
            print("SKIP: no hlcore binary (set HLCORE or HL_BUILD_DIR); "
                  "got %r" % self.hlcore)
            print("0 passed, 0 failed")
            sys.exit(SKIP)
        self.hlcore = os.path.abspath(self.hlcore)
        self.build_dir = os.environ.get("HL_BUILD_DIR") or \
            os.path.dirname(self.hlcore)
        self.source_dir = os.environ.get("HL_SOURCE_DIR") or \
            os.path.abspath(os.path.join(os.path.dirname(__file__), "..",
                                         ".."))
        self.asan = is_asan(self.hlcore)
        self.tmp = tempfile.mkdtemp(prefix="hltest-%s-" % name)
        _tmpdirs.append(self.tmp)
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

    def backend(self):
        b = Backend()
        self.backends.append(b)
        return b

    def node(self, name):
        n = Hlcore(self, name)
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

    def _dump_logs(self):
        for n in self.nodes:
            log = n.log()
            if log:
                print("---- log of hlcore %s (last 8000 chars):\n%s" %
                      (n.name, log[-8000:]))

    def finish(self):
        signal.alarm(0)
        for n in self.nodes:
            n.kill()
        for b in self.backends:
            try:
                b.close()
            except Exception:
                pass
        if self.failed or os.environ.get("HLTEST_DEBUG"):
            self._dump_logs()
        print("%s: %.1f s" % (self.name, time.monotonic() - self.t0))
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        _cleanup()
        sys.exit(1 if self.failed else 0)


def log_level():
    return "debug" if os.environ.get("HLTEST_DEBUG") else "info"


URL_RE = re.compile(r"^http://([a-z2-7]*)-([0-9a-f]{40})\.localhost:(\d+)/$")
