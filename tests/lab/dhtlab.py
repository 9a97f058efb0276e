"""dhtlab: an island of network namespaces with a real three-node OpenDHT
network, for the dht plugin's lab test and its benchmark (root only).

    lab = dhtlab.Lab(["srv", "cli"])     # hosts besides d1, d2, d3
    lab.up()                              # namespaces, a bridge, dhtnodes
    with lab.inside("srv"):               # this thread's sockets and the
        ...                               # processes it starts live there
    lab.down()                            # everything gone (also atexit)

Layout: a namespace <prefix>-br holds a bridge; every host is a namespace
<prefix>-<host> with eth0 on that bridge, 10.231.0.<n>/24. d1, d2 and d3
run `dhtnode -s` on UDP 4222; d1 and d2 also serve the OpenDHT HTTP proxy
on TCP 8088. Nothing is connected to the root namespace or to any host
interface; names carry the PID, so parallel runs do not meet.

The key of a service is computed here from docs/protocol.md alone
(hashlib: BLAKE2b with digest_size=32, then SHA-1), independently of the
C code under test.
"""

import atexit
import base64
import contextlib
import ctypes
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

CLONE_NEWNET = 0x40000000
DHT_PORT = 4222
PROXY_PORT = 8088
SUBNET = "10.231.0"

_libc = ctypes.CDLL(None, use_errno=True)
_labs = []


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: %s" % os.strerror(e))


def have_tools():
    """None when the lab can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "dhtnode"):
        if shutil.which(tool) is None:
            return "%s is not installed (apt-get install %s)" % (
                tool, "iproute2" if tool == "ip" else "dhtnode")
    return None


def rolling_code(keyhash, day):
    """BLAKE2b-256(raw20 || uint64_le(day)), first 20 bytes, lowercase hex
    (docs/protocol.md, "Rolling code")."""
    raw = bytes.fromhex(keyhash)
    h = hashlib.blake2b(raw + day.to_bytes(8, "little"), digest_size=32)
    return h.hexdigest()[:40]


def dht_key(keyhash, day=None):
    """SHA-1 of the 40 ASCII hex characters of the rolling code, as
    OpenDHT's InfoHash::get(string) (docs/protocol.md, "DHT")."""
    if day is None:
        day = int(time.time()) // 86400
    return hashlib.sha1(rolling_code(keyhash, day).encode()).hexdigest()


# The test vectors of docs/protocol.md, so that this independent
# implementation is itself checked before anything relies on it.
_KH = bytes(range(20)).hex()
assert rolling_code(_KH, 19000) == "3936c95c19f0b9f43a7cc45a6e2ca85429fc40f3"
assert dht_key(_KH, 19000) == "167a53807b43416fb4d1b9ea83d01a0451438c31"
assert rolling_code(_KH, 19001) == "26f55605ec3dfb7346b240fcd4c07d4bd51ab5ed"
assert dht_key(_KH, 19001) == "796a66cf0034b18d67a8e474ed3f09b9d4dd5f09"


def _run(args, check=True):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), p.returncode,
                                                p.stderr.decode().strip()))
    return p


class Lab:
    def __init__(self, hosts=("srv", "cli"), isolated=()):
        """hosts: namespaces on the bridge besides d1, d2, d3; isolated:
        namespaces with nothing but loopback."""
        self.prefix = "hl%d" % os.getpid()
        self.hosts = ["d1", "d2", "d3"] + list(hosts)
        self.isolated = list(isolated)
        self.ip = {h: "%s.%d" % (SUBNET, i + 1)
                   for i, h in enumerate(self.hosts)}
        self.made = []     # namespaces created, to delete
        self.procs = []    # (host, Popen) we started
        self.tmp = tempfile.mkdtemp(prefix="dhtlab-")
        _labs.append(self)

    def ns(self, host):
        return "%s-%s" % (self.prefix, host)

    # ---- building and tearing down ----

    def up(self, dht=True):
        br = self.ns("br")
        self._netns_add(br)
        _run(["ip", "-n", br, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", br, "link", "set", "br0", "up"])
        for i, h in enumerate(self.hosts):
            ns = self.ns(h)
            self._netns_add(ns)
            # Created straight inside the two namespaces: no name is ever
            # taken in the root namespace.
            _run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth",
                  "peer", "name", "p%d" % i, "netns", br])
            _run(["ip", "-n", br, "link", "set", "p%d" % i, "master", "br0"])
            _run(["ip", "-n", br, "link", "set", "p%d" % i, "up"])
            _run(["ip", "-n", ns, "addr", "add", self.ip[h] + "/24", "dev",
                  "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for h in self.isolated:
            self._netns_add(self.ns(h))
            _run(["ip", "-n", self.ns(h), "link", "set", "lo", "up"])
        if dht:
            self.start_dhtnodes()

    def _netns_add(self, ns):
        _run(["ip", "netns", "add", ns])
        self.made.append(ns)

    def start_dhtnodes(self):
        boot = "%s:%d" % (self.ip["d1"], DHT_PORT)
        for h in ("d1", "d2", "d3"):
            args = ["dhtnode", "-s", "-p", str(DHT_PORT), "-v", "-l",
                    os.path.join(self.tmp, "%s.log" % h)]
            if h != "d1":
                args += ["-b", boot]
            if h in ("d1", "d2"):
                args += ["--proxyserver", str(PROXY_PORT)]
            self.spawn(h, args)
        deadline = time.monotonic() + 20
        for h in ("d1", "d2"):
            while not self.port_open(h, self.ip[h], PROXY_PORT):
                if time.monotonic() > deadline:
                    raise RuntimeError("dhtnode's proxy on %s did not open "
                                       "within 20 s; log:\n%s" %
                                       (h, self.dht_log(h)[-2000:]))
                time.sleep(0.1)
        # d2 and d3 joined through d1 once a value put at one proxy is
        # read back at the other.
        # (A put fails with HTTP 502 while d1 knows no other node yet.)
        key = hashlib.sha1(b"dhtlab-%d" % os.getpid()).hexdigest()
        while True:
            try:
                self.proxy_put("d1", key, b"ready", vid=1)
                if b"ready" in self.proxy_values("d2", key):
                    break
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the three dhtnodes did not form a "
                                   "network within 20 s")
            time.sleep(0.2)

    def dht_log(self, h):
        try:
            with open(os.path.join(self.tmp, "%s.log" % h), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def spawn(self, host, args, **kw):
        """Start a process inside host's namespace (stdin closed)."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(host)] + args,
                             **kw)
        self.procs.append((host, p))
        return p

    def down(self):
        """Kill what runs in the lab, delete every namespace. Safe to call
        more than once, and from a signal handler."""
        for _, p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
        for _, p in self.procs:
            try:
                p.wait(timeout=10)
            except Exception:
                pass
        self.procs = []
        for ns in reversed(self.made):
            # Anything else started inside (by a test) goes too: a
            # namespace lives on while a process holds it.
            r = _run(["ip", "netns", "pids", ns], check=False)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            _run(["ip", "netns", "del", ns], check=False)
        self.made = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- being inside ----

    @contextlib.contextmanager
    def inside(self, host):
        """Run the block with this thread in host's namespace: sockets it
        opens and processes it starts live there (and stay there). Blocks
        may nest; each returns to the namespace it was entered from."""
        prev = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/%s" % self.ns(host), os.O_RDONLY)
        try:
            _setns(fd)
            yield
        finally:
            _setns(prev)   # nested blocks come back where they were
            os.close(fd)
            os.close(prev)

    def port_open(self, host, ip, port, timeout=0.5):
        with self.inside(host):
            try:
                with socket.create_connection((ip, port), timeout=timeout):
                    return True
            except OSError:
                return False

    # ---- the OpenDHT HTTP proxy, as any client would use it ----

    def proxy_url(self, host="d2"):
        return "http://%s:%d/" % (self.ip[host], PROXY_PORT)

    def _http(self, host, method, path, body=None, timeout=10):
        with self.inside(host):
            c = http.client.HTTPConnection(self.ip[host], PROXY_PORT,
                                           timeout=timeout)
            try:
                c.request(method, path, body=body,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read(1 << 20)
                return r.status, data
            finally:
                c.close()

    def proxy_get(self, host, key):
        """GET /key/<key>: the raw answer (one JSON object a line)."""
        status, data = self._http(host, "GET", "/key/" + key)
        if status != 200:
            raise RuntimeError("GET /key/%s at %s: HTTP %d" % (key, host,
                                                               status))
        return data

    def proxy_values(self, host, key):
        """The values under key, decoded from base64."""
        out = []
        for line in self.proxy_get(host, key).splitlines():
            line = line.strip()
            if line:
                out.append(base64.b64decode(json.loads(line)["data"]))
        return out

    def proxy_put(self, host, key, data, vid=None):
        """POST /key/<key> a value of type 0 (as Python Hardline would)."""
        body = json.dumps({"data": base64.b64encode(data).decode(),
                           "id": str(vid or int.from_bytes(os.urandom(6),
                                                           "big")),
                           "type": 0}).encode()
        status, answer = self._http(host, "POST", "/key/" + key, body)
        if status != 200:
            raise RuntimeError("POST /key/%s at %s: HTTP %d %r" %
                               (key, host, status, answer[:200]))
        return answer


def _down_all():
    for lab in list(_labs):
        try:
            lab.down()
        except Exception:
            pass


atexit.register(_down_all)


def install_signal_cleanup(test=None):
    """Make SIGTERM, SIGHUP and the test's deadline (SIGALRM, when test is
    an hltest.Test) take the lab down before the handlers hltest set up
    (which end the process with os._exit, skipping atexit)."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        prev = signal.getsignal(sig)

        def handler(signum, frame, prev=prev):
            _down_all()
            if callable(prev):
                prev(signum, frame)
            else:
                os._exit(1)
        signal.signal(sig, handler)
