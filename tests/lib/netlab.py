"""netlab: network-namespace labs for the lab tests and benches (root only),
on top of hltest (processes, cleanup, checks).

    import hltest, netlab
    net = netlab.Net()                       # namespaces hl<pid>-<rand>-*
    rtr = net.netns("rtr")                   # lo up; returns the full name
    net.veth("rtr", "r-lan", "lan", "l-r")   # made inside the namespaces
    net.lan(["a", "b"], "10.77.0.")          # a bridge LAN: eth0 10.77.0.1..
    net.sh("rtr", "sysctl -qw net.ipv4.ip_forward=1")
    p = net.spawn("a", [...], log="a")       # <tmp>/a.log
    rc, out, err = net.run("b", ["curl", ...])
    with net.inside("a"): ...                # this thread's sockets there
    node = t.node("server", ns=net.ns("a"))  # hltest.Hlcore in a namespace

    L = netlab.Lab("upnp", needs=[...])      # an hltest.Test that is a Net
    d = netlab.DhtLab(["srv", "cli"]); d.up()   # + three dhtnodes

Hosts are named by their short name ("a") or the namespace's full name.
Every namespace has a name unique to the run and is deleted, with every
process inside it killed, at exit, on SIGTERM/SIGHUP, on the script's
deadline and by destroy(): a failed run leaves nothing behind (hltest's
cleanup). Nothing is ever connected to the root namespace: veth pairs are
created inside the lab's namespaces. Every wait is bounded.
"""

import base64
import contextlib
import ctypes
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time

import hltest
from hltest import Fail

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: %s" % os.strerror(e))


def usable(tools=()):
    """None when a lab can be built here (root, ip netns, the tools),
    else why not (for a skip)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = [b for b in ["ip"] + list(tools) if shutil.which(b) is None]
    if missing:
        return "needs %s (see scripts/deps.sh test)" % ", ".join(missing)
    return None


def ip_cmd(args):
    """ip ... (or any command) in the root namespace, checked."""
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if p.returncode != 0:
        raise Fail("%s: exit %d: %s" % (" ".join(args), p.returncode,
                                         p.stderr.decode(errors="replace")))
    return p


class Net:
    def __init__(self, tmp=None):
        self.tag = "hl%d-%04x" % (os.getpid(), random.getrandbits(16))
        self.tmp = tmp or hltest.mkdtemp("netlab-")
        os.chmod(self.tmp, 0o755)
        self.namespaces = []
        self.hosts = []     # on the bridge LAN, in address order
        self.subnet = None
        hltest.at_cleanup(self.destroy)

    # ---- namespaces and links ----

    def ns(self, host):
        """The namespace of host (a short name or already a full one)."""
        return host if host in self.namespaces else \
            "%s-%s" % (self.tag, host)

    def netns(self, host):
        name = self.ns(host)
        ip_cmd(["ip", "netns", "add", name])
        self.namespaces.append(name)
        ip_cmd(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def veth(self, h1, if1, h2, if2):
        """A veth pair made inside h1's namespace with its peer moved into
        h2's, so the root namespace never holds either end."""
        ip_cmd(["ip", "-n", self.ns(h1), "link", "add", if1, "type", "veth",
                "peer", "name", if2, "netns", self.ns(h2)])

    def lan(self, hosts, subnet):
        """One LAN segment: a bridge in namespace "br" (snooping off: it
        floods the group to every port, as a small switch without an IGMP
        querier does) and a namespace per host with eth0 =
        <subnet><n>/24, up, with a route for 224.0.0.0/4."""
        self.subnet = subnet
        br = self.netns("br")
        ip_cmd(["ip", "-n", br, "link", "add", "br0", "type", "bridge",
                "mcast_snooping", "0"])
        ip_cmd(["ip", "-n", br, "link", "set", "br0", "up"])
        self.hosts = list(hosts)
        for i, h in enumerate(hosts):
            ns = self.netns(h)
            port = "p%d" % i
            self.veth(br, port, ns, "eth0")
            self.sh(br, "ip link set %s master br0; ip link set %s up" %
                    (port, port))
            self.sh(ns, "ip addr add %s/24 dev eth0; ip link set eth0 up; "
                    "ip route add 224.0.0.0/4 dev eth0" % self.ip(h))

    def ip(self, host):
        """host's address on the bridge LAN."""
        return "%s%d" % (self.subnet, self.hosts.index(host) + 1)

    # ---- processes inside ----

    def run(self, host, args, timeout=30, env=None, input=None):
        """Run args inside host's namespace to completion, bounded:
        (rc, stdout, stderr) as text."""
        return hltest.run(args, timeout=timeout, env=env, ns=self.ns(host),
                          input=input)

    def sh(self, host, script, timeout=30, check_rc=True):
        """Run a shell script inside host's namespace; its stdout."""
        rc, out, err = self.run(host, ["sh", "-ec", script], timeout=timeout)
        if check_rc and rc != 0:
            raise Fail("in %s: %s: exit %d: %s%s" % (host, script, rc, out,
                                                      err))
        return out

    def log_path(self, log):
        """A log name ("fake-igd": <tmp>/fake-igd.log) or a path."""
        return log if os.sep in log else \
            os.path.join(self.tmp, log + ".log")

    def spawn(self, host, args, log=None, **kw):
        """Start a long-running process inside host's namespace; its
        output goes to log (see log_path) unless stdout is given."""
        return hltest.spawn(args, log=log and self.log_path(log),
                            ns=self.ns(host), **kw)

    def log_of(self, log):
        return hltest.read_text(self.log_path(log))

    def stop(self, p, timeout=20, sig=signal.SIGTERM):
        return hltest.stop_proc(p, timeout, sig)

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
            _setns(prev)
            os.close(fd)
            os.close(prev)

    def port_open(self, host, ip, port, timeout=0.5):
        with self.inside(host):
            return hltest.port_open(port, ip, timeout)

    def http_backend(self, host, port, token):
        """python3 -m http.server on 127.0.0.1:port in host's namespace,
        serving a directory with token.txt and index.html (both holding
        token). Waits until it answers."""
        d = os.path.join(self.tmp, "www-%s" % port)
        os.makedirs(d, exist_ok=True)
        for f in ("token.txt", "index.html"):
            with open(os.path.join(d, f), "w") as fh:
                fh.write(token + "\n")
        p = self.spawn(host, ["python3", "-m", "http.server", "--bind",
                              "127.0.0.1", "--directory", d, str(port)],
                       "backend-%s" % port)
        hltest.wait_for(lambda: self.run(host, [
            "curl", "-sf", "-m", "2", "http://127.0.0.1:%d/token.txt" % port],
            timeout=5)[0] == 0, 30, "the HTTP backend in %s" % host, step=0.1)
        return p

    def start_client(self, host, hlcore, d, plugins, ready, timeout=15,
                     **more):
        """hlcore in host's namespace with a new state_dir in dir d, its
        proxy on 127.0.0.1:7009, transport-tls plus plugins and the keys in
        more; waits until its log (d/HOST.log) matches every regex in
        ready: (the process, the log's path)."""
        os.makedirs(d)
        cfg = {"state_dir": os.path.join(d, "state"),
               "log": {"level": "info"},
               "proxy": {"listen": "127.0.0.1:7009"},
               "plugins": dict({"transport-tls": {}}, **plugins)}
        cfg.update(more)
        path = hltest.write_yaml(os.path.join(d, host + ".yaml"), cfg)
        log = os.path.join(d, host + ".log")
        p = self.spawn(host, [hlcore, "-c", path], log=log)
        hltest.wait_file(log, ready, timeout)
        return p, log

    def first_byte_ms(self, host, host_header, port=7009):
        """curl GET / through the proxy on 127.0.0.1:port in host's
        namespace: (HTTP status as text, ms to the first byte)."""
        rc, out, err = self.run(host, [
            "curl", "-s", "-o", "/dev/null", "-m", "10", "-H",
            "Host: " + host_header, "-w",
            "%{http_code} %{time_starttransfer}",
            "http://127.0.0.1:%d/" % port], timeout=20)
        code, ttfb = out.split()
        return code, float(ttfb) * 1000

    def destroy(self):
        """Kill whatever runs inside (a daemon that forked too) and delete
        every namespace. Safe to call more than once."""
        for ns in reversed(self.namespaces):
            pids = subprocess.run(["ip", "netns", "pids", ns],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            for _ in range(3):
                if subprocess.run(["ip", "netns", "del", ns],
                                  stderr=subprocess.DEVNULL).returncode == 0:
                    break
                time.sleep(0.2)
        self.namespaces = []


class Lab(hltest.Test, Net):
    """A test (hltest.Test: cases, deadline, nodes) that is also its own
    Net, skipped without root, ip, curl and the tools in needs."""

    def __init__(self, name, needs=(), deadline=None):
        hltest.Test.__init__(self, name, root=True,
                             needs=["ip", "curl"] + list(needs),
                             deadline=deadline)
        Net.__init__(self, self.tmp)
        print("%s: lab id %s" % (name, self.tag), flush=True)


# ---- the DHT: an island of three dhtnodes, rolling codes, the proxy ----

DHT_PORT = 4222
PROXY_PORT = 8088
DHT_SUBNET = "10.231.0."


def rolling_code(keyhash, day):
    """docs/protocol.md: BLAKE2b-256(raw20 || uint64_le(day)), first 20 bytes,
    lowercase hex."""
    raw = bytes.fromhex(keyhash)
    h = hashlib.blake2b(raw + day.to_bytes(8, "little"), digest_size=32)
    return h.hexdigest()[:40]


def today():
    return int(time.time() // 86400)


def dht_key(keyhash, day=None):
    """docs/protocol.md: SHA-1 of the 40 ASCII hex characters of the rolling
    code, as OpenDHT's InfoHash::get(string)."""
    if day is None:
        day = today()
    return hashlib.sha1(rolling_code(keyhash, day).encode()).hexdigest()


# The test vectors of docs/protocol.md, so that this independent implementation
# (computed from docs/protocol.md alone, not from the C code under test) is
# itself checked before anything relies on it.
_KH = bytes(range(20)).hex()
assert rolling_code(_KH, 19000) == "3936c95c19f0b9f43a7cc45a6e2ca85429fc40f3"
assert dht_key(_KH, 19000) == "167a53807b43416fb4d1b9ea83d01a0451438c31"
assert rolling_code(_KH, 19001) == "26f55605ec3dfb7346b240fcd4c07d4bd51ab5ed"
assert dht_key(_KH, 19001) == "796a66cf0034b18d67a8e474ed3f09b9d4dd5f09"


# ---- hlcore's endpoints record (docs/protocol.md, "The endpoints record"),
# written here from the document alone ----

EP_MAGIC = b"HLEP"
EP_SIGN_CONTEXT = b"hardline-dht-endpoints-v1\x00"


def dht_ep_key(keyhash, day=None):
    """SHA-1 of "hardline-endpoints-v1:" and the rolling code's 40 hex."""
    if day is None:
        day = today()
    return hashlib.sha1(b"hardline-endpoints-v1:" +
                        rolling_code(keyhash, day).encode()).hexdigest()


def dht_ep_signed(keyhash, day, text):
    """The record's bytes before the certificate: what it signs."""
    t = text.encode()
    return (EP_MAGIC + bytes([1, 0]) + day.to_bytes(8, "big") +
            bytes.fromhex(keyhash) + len(t).to_bytes(2, "big") + t)


def dht_ep_record(key, day, text, keyhash=None, sig=None):
    """A record of text ("quic://...,hub://...") for day, signed by key
    (a hubpeer.Key); keyhash and sig replace the key's own (forgeries)."""
    head = dht_ep_signed(keyhash or key.keyhash, day, text)
    if sig is None:
        sig = key.sign(EP_SIGN_CONTEXT + head)
    return (head + len(key.cert_der).to_bytes(2, "big") + key.cert_der +
            len(sig).to_bytes(2, "big") + sig)


def dht_ep_parse(rec):
    """(day, keyhash, [endpoints], cert, sig, signed bytes) of a record;
    ValueError when its layout is wrong (no signature check)."""
    if len(rec) > 4096 or rec[:6] != EP_MAGIC + bytes([1, 0]):
        raise ValueError("not an endpoints record")
    day = int.from_bytes(rec[6:14], "big")
    kh = rec[14:34].hex()
    n = int.from_bytes(rec[34:36], "big")
    text = rec[36:36 + n].decode("ascii")
    p = 36 + n
    c = int.from_bytes(rec[p:p + 2], "big")
    cert = rec[p + 2:p + 2 + c]
    p += 2 + c
    s = int.from_bytes(rec[p:p + 2], "big")
    sig = rec[p + 2:p + 2 + s]
    if p + 2 + s != len(rec) or not (0 < n <= 1024 and 0 < c <= 2048 and
                                     0 < s <= 512):
        raise ValueError("bad lengths")
    return day, kh, text.split(","), cert, sig, rec[:36 + n]


def dht_ep_open(rec, keyhash, day):
    """The endpoints of a record read under keyhash's key for day, checked
    as docs/protocol.md says (Python cryptography); ValueError when a
    reader must drop it."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, \
        padding, rsa
    d, kh, eps, cert, sig, signed = dht_ep_parse(rec)
    if kh != keyhash or d != day:
        raise ValueError("for another keyhash or day")
    if hashlib.blake2b(cert, digest_size=32).hexdigest()[:40] != keyhash:
        raise ValueError("a certificate of another keyhash")
    pub = x509.load_der_x509_certificate(cert).public_key()
    data = EP_SIGN_CONTEXT + signed
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(sig, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(sig, data)
        else:
            raise ValueError("key type not accepted")
    except InvalidSignature:
        raise ValueError("bad signature")
    return eps


assert dht_ep_key(_KH, 19000) == "abc6be6cc4ded33a64f48ec815599362ba6517cc"
assert dht_ep_key(_KH, 19001) == "f7483b008e254c82b6496a919d9d03beba013dca"


class DhtLab(Net):
    """A bridge LAN (10.231.0.0/24) of d1, d2, d3 and hosts, plus isolated
    namespaces with nothing but loopback. up() starts `dhtnode -s` on UDP
    4222 in d1, d2 and d3; d1 and d2 also serve the OpenDHT HTTP proxy on
    TCP 8088."""

    def __init__(self, hosts=("srv", "cli"), isolated=(), tmp=None):
        Net.__init__(self, tmp)
        self.hosts = ["d1", "d2", "d3"] + list(hosts)
        self.subnet = DHT_SUBNET
        self.isolated = list(isolated)

    def up(self, dht=True):
        self.lan(self.hosts, DHT_SUBNET)
        for h in self.isolated:
            self.netns(h)
        if dht:
            self.start_dhtnodes()

    def start_dhtnodes(self):
        boot = "%s:%d" % (self.ip("d1"), DHT_PORT)
        for h in ("d1", "d2", "d3"):
            args = ["dhtnode", "-s", "-p", str(DHT_PORT), "-v", "-l",
                    self.log_path("dht-" + h)]
            if h != "d1":
                args += ["-b", boot]
            if h in ("d1", "d2"):
                args += ["--proxyserver", str(PROXY_PORT)]
            self.spawn(h, args)
        for h in ("d1", "d2"):
            hltest.wait_for(lambda: self.port_open(h, self.ip(h),
                                                   PROXY_PORT),
                            20, "dhtnode's proxy on %s" % h, step=0.1)
        # d2 and d3 joined through d1 once a value put at one proxy is
        # read back at the other (a put fails with HTTP 502 while d1 knows
        # no other node yet).
        key = hashlib.sha1(b"dhtlab-%d" % os.getpid()).hexdigest()

        def joined():
            self.proxy_put("d1", key, b"ready", vid=1)
            return b"ready" in self.proxy_values("d2", key)
        hltest.wait_for(joined, 20, "the three dhtnodes forming a network",
                        step=0.2)

    def dht_log(self, h):
        return self.log_of("dht-" + h)

    # ---- the OpenDHT HTTP proxy, as any client would use it ----

    def proxy_url(self, host="d2"):
        return "http://%s:%d/" % (self.ip(host), PROXY_PORT)

    def _http(self, host, method, path, body=None, timeout=10):
        with self.inside(host):
            c = http.client.HTTPConnection(self.ip(host), PROXY_PORT,
                                           timeout=timeout)
            try:
                c.request(method, path, body=body,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                return r.status, r.read(1 << 20)
            except OSError as e:
                raise Fail("%s %s at %s: %s" % (method, path, host, e))
            finally:
                c.close()

    def proxy_get(self, host, key):
        """GET /key/<key>: the raw answer (one JSON object a line)."""
        status, data = self._http(host, "GET", "/key/" + key)
        if status != 200:
            raise Fail("GET /key/%s at %s: HTTP %d" % (key, host, status))
        return data

    def proxy_values(self, host, key):
        """The values under key, decoded from base64."""
        return [base64.b64decode(json.loads(line)["data"])
                for line in self.proxy_get(host, key).splitlines()
                if line.strip()]

    def proxy_put(self, host, key, data, vid=None):
        """POST /key/<key> a value of type 0 (as Python Hardline would)."""
        body = json.dumps({"data": base64.b64encode(data).decode(),
                           "id": str(vid or int.from_bytes(os.urandom(6),
                                                           "big")),
                           "type": 0}).encode()
        status, answer = self._http(host, "POST", "/key/" + key, body)
        if status != 200:
            raise Fail("POST /key/%s at %s: HTTP %d %r" %
                       (key, host, status, answer[:200]))
        return answer


def lan_lab(hosts, subnet="10.77.0."):
    """A Net holding one bridge LAN of hosts (see Net.lan)."""
    net = Net()
    net.lan(hosts, subnet)
    return net


# ---- two homes behind NATs, a hub host (docs: LAB.md, "Two homes behind
# NATs, a hub and a TURN relay") ----

HUB_IP = "11.0.0.1"
HUB_IP2 = "11.0.0.4"   # a second address of the hub host: a second hub
HOMES = {  # home host -> (its router, router's public, LAN subnet prefix)
    "h1": ("r1", "11.0.0.2", "10.1.0."),
    "h2": ("r2", "11.0.0.3", "10.2.0."),
}
NAT_KINDS = ("cone", "symmetric")


class HomesLab(Net):
    """The public "internet" 11.0.0.0/24 on a bridge (namespace br): the hub
    host `hub` (11.0.0.1 and 11.0.0.4) and two home routers r1 (11.0.0.2)
    and r2 (11.0.0.3), each with interfaces `wan` and `lan` and one home
    host behind it: h1 (10.1.0.2, router 10.1.0.1) behind r1, h2
    (10.2.0.2) behind r2.

    Each router NATs with iptables-legacy MASQUERADE: "cone" keeps the
    source port where it can (endpoint-independent mapping),
    "symmetric" uses --random-fully (a new port per destination). Both
    filter as home routers do: from wan to lan only replies
    (ESTABLISHED,RELATED), and unsolicited UDP to the router itself is
    dropped (see LAB.md for why that rule matters in a lab).

    Counters: chain HLCOUNT in each router's FORWARD, one rule per source
    public address, counts what it forwards from wan into the home:
    counts("r1") -> {"11.0.0.1": (packets, bytes), "11.0.0.3": ...}.
    Cleanup (namespaces, processes inside) is Net's."""

    def __init__(self, nat=("cone", "cone"), tmp=None):
        Net.__init__(self, tmp)
        for n in nat:
            if n not in NAT_KINDS:
                raise ValueError("nat kind %r: one of %s" % (n, NAT_KINDS))
        self.nat = {"r1": nat[0], "r2": nat[1]}
        self.public = [HUB_IP, HUB_IP2] + [HOMES[h][1] for h in HOMES]

    def up(self):
        br = self.netns("br")
        ip_cmd(["ip", "-n", br, "link", "add", "br0", "type", "bridge"])
        ip_cmd(["ip", "-n", br, "link", "set", "br0", "up"])
        hub = self.netns("hub")
        self.veth(hub, "wan", br, "p-hub")
        self.sh(br, "ip link set p-hub master br0; ip link set p-hub up")
        self.sh(hub, "ip addr add %s/24 dev wan; ip addr add %s/24 dev wan; "
                "ip link set wan up" % (HUB_IP, HUB_IP2))
        for h, (r, pub, pre) in sorted(HOMES.items()):
            rns = self.netns(r)
            hns = self.netns(h)
            self.veth(rns, "wan", br, "p-" + r)
            self.sh(br, "ip link set p-%s master br0; ip link set p-%s up" %
                    (r, r))
            self.veth(rns, "lan", hns, "eth0")
            self.sh(rns, "ip addr add %s/24 dev wan; ip link set wan up; "
                    "ip addr add %s1/24 dev lan; ip link set lan up; "
                    "sysctl -qw net.ipv4.ip_forward=1" % (pub, pre))
            self.sh(hns, "ip addr add %s2/24 dev eth0; ip link set eth0 up; "
                    "ip route add default via %s1" % (pre, pre))
            self.sh(rns, self._nat_rules(self.nat[r]))
        return self

    def _nat_rules(self, kind):
        rnd = " --random-fully" if kind == "symmetric" else ""
        count = "".join("\n$I -A HLCOUNT -s %s -j RETURN" % a
                        for a in self.public)
        return """I=iptables-legacy
$I -t nat -A POSTROUTING -o wan -j MASQUERADE%s
$I -N HLCOUNT
$I -A FORWARD -i wan -o lan -j HLCOUNT%s
$I -A FORWARD -i lan -o wan -j ACCEPT
$I -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
$I -A FORWARD -i wan -o lan -j DROP
$I -A INPUT -i wan -p udp -m conntrack --ctstate NEW -j DROP""" % (rnd, count)

    def home_ip(self, h):
        return HOMES[h][2] + "2"

    def router_ip(self, r_or_h):
        """The public address of a router (r1) or of a home's router
        (h1)."""
        for h, (r, pub, _) in HOMES.items():
            if r_or_h in (h, r):
                return pub
        raise KeyError(r_or_h)

    def counts(self, router):
        """What router forwarded from wan into its home, per public source
        address: {addr: (packets, bytes)}."""
        out = self.sh(router, "iptables-legacy -L HLCOUNT -v -n -x")
        got = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 8 and f[0].isdigit() and f[2] == "RETURN" and \
                    f[7] in self.public:
                got[f[7]] = (int(f[0]), int(f[1]))
        return got

    def coturn(self, user="u", password="p", port=3478):
        """coturn's turnserver in the hub host on HUB_IP:port (UDP and
        TCP), long-term credentials user:password, realm "hardline",
        relay ports 49152-49200; waits until it listens. Its log:
        <tmp>/coturn.log."""
        p = self.spawn("hub", [
            "turnserver", "-n", "--listening-ip", HUB_IP,
            "--listening-port", str(port), "--relay-ip", HUB_IP,
            "--lt-cred-mech", "--user", "%s:%s" % (user, password),
            "--realm", "hardline", "--no-tls", "--no-dtls", "--no-cli",
            "--simple-log", "--log-file", "stdout", "--min-port", "49152",
            "--max-port", "49200", "--pidfile",
            os.path.join(self.tmp, "coturn.pid")], log="coturn")
        hltest.wait_for(lambda: self.port_open("hub", HUB_IP, port), 20,
                        "coturn listening on %s:%d" % (HUB_IP, port),
                        step=0.1)
        return p


def homes_lab(nat1="cone", nat2="cone", tmp=None):
    """A HomesLab built and up: r1 with NAT kind nat1, r2 with nat2."""
    return HomesLab((nat1, nat2), tmp).up()
