#!/usr/bin/env python3
"""discovery-lan in a namespace lab: three hosts on one bridge (docs/lab.md).

  a  (10.77.0.1)  hlcore A: services "secret" (password), "open" (none) and
                  "legacy" (lan_announce_password: true) on transport-tls
                  [::]:7008 with discovery-lan; a second hlcore, A2, serves
                  "relayed" on 0.0.0.0:7010 WITHOUT discovery-lan; the HTTP
                  backend is python3 -m http.server on 127.0.0.1:8080.
  b  (10.77.0.2)  hlcore B: proxy + discovery-lan + transport-tls (dial
                  only), no peers: at all; later a second instance, B2.
  c  (10.77.0.3)  an independent Python Hardline node written from
                  docs/protocol.md alone (below, not from the C code): it
                  announces "relayed" at its own address and forwards TCP
                  from c:7008 to A2; it also probes hlcore A's answers. And
                  a sniffer joined to the group.
  br              the bridge; an AF_PACKET capture of every frame on it.

Run as root (exit 77 otherwise) with HLCORE, HL_BUILD_DIR, HL_SOURCE_DIR.
The same file is also the peer, the sniffers and the forwarder, run inside
the namespaces as `python3 test_lan.py <role> <json args>`.
"""
import base64
import hashlib
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time

GROUP = "239.192.152.143"
LPD_PORT = 6771

# ---------------------------------------------------------------------------
# The independent Python Hardline node, from docs/protocol.md ("LAN
# discovery", "Identity"). Nothing here is taken from the C plugin.
# ---------------------------------------------------------------------------


def rolling_code(keyhash_hex, day):
    """BLAKE2b-256(raw20 || uint64_le(day)), first 20 bytes, lowercase hex
    (docs/protocol.md, "Rolling code")."""
    raw = bytes.fromhex(keyhash_hex)
    h = hashlib.blake2b(raw + struct.pack("<Q", day), digest_size=32)
    return h.digest()[:20].hex()


def today():
    return int(time.time() // 86400)


def make_search(infohash, cookie):
    return ("HARDLINE-SEARCH * HTTP/1.1\r\n"
            "Infohash: %s\r\n"
            "cookie: %s\r\n"
            "\r\n\r\n" % (infohash, cookie)).encode()


def make_announce(port, infohash, cookie, title):
    return ("HARDLINE-SERVICE * HTTP/1.1\r\n"
            "Port: %d\r\n"
            "Infohash: %s\r\n"
            "cookie: %s\r\n"
            "title: %s\r\n"
            "\r\n\r\n" % (port, infohash, cookie, title)).encode()


def parse_packet(data):
    """(kind, fields) of a CRLF packet, kind "search" or "service"; or
    (None, {}) when it is not one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, {}
    if "\r\n" not in text:
        return None, {}
    lines = text.split("\r\n")
    kind = {"HARDLINE-SEARCH * HTTP/1.1": "search",
            "HARDLINE-SERVICE * HTTP/1.1": "service"}.get(lines[0])
    if kind is None:
        return None, {}
    fields = {}
    for line in lines[1:]:
        if line == "":
            break
        name, sep, value = line.partition(":")
        if sep:
            fields[name] = value.strip()
    return kind, fields


def group_socket(my_ip):
    """Bound to the shared port and joined to the group on my interface."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("0.0.0.0", LPD_PORT))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(GROUP) + socket.inet_aton(my_ip))
    return s


def send_socket(my_ip, bind_ip="0.0.0.0"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind_ip, 0))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                 socket.inet_aton(my_ip))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    return s


def collect(sock, seconds):
    """Every datagram that arrives on sock within seconds:
    [(src ip, src port, bytes)]."""
    got = []
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return got
        r, _, _ = select.select([sock], [], [], left)
        if r:
            data, src = sock.recvfrom(65536)
            got.append((src[0], src[1], data))


def role_serve(args):
    """A Python Hardline node announcing one service: it answers searches
    for every service, for the hash itself and for its rolling codes
    (yesterday, today, tomorrow), by unicast to the searcher and to the
    group; it sends one unsolicited announce at start; and it forwards TCP
    from its port to where the service really listens. It writes every
    search it hears from others to args["searches"] (one JSON line each)."""
    me, port, h = args["ip"], args["port"], args["hash"]
    title, target = args["title"], tuple(args["target"])
    cookie = "py-%08x" % (os.getpid() * 7919 % (1 << 32))
    label = "-" + h
    announce = make_announce(port, label, cookie, title)
    gs = group_socket(me)
    tx = send_socket(me)
    log = open(args["searches"], "a")
    end = time.monotonic() + args["lifetime"]

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("0.0.0.0", port))
    lsock.listen(16)

    def pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def forward():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(target, timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            threading.Thread(target=pump, args=(c, u), daemon=True).start()
            threading.Thread(target=pump, args=(u, c), daemon=True).start()

    threading.Thread(target=forward, daemon=True).start()
    tx.sendto(announce, (GROUP, LPD_PORT))  # unsolicited, once
    print("serving", flush=True)
    while time.monotonic() < end:
        r, _, _ = select.select([gs], [], [], 0.5)
        if not r:
            continue
        data, src = gs.recvfrom(65536)
        kind, f = parse_packet(data)
        if kind != "search" or f.get("cookie") == cookie:
            continue
        log.write(json.dumps({"src": src[0], "port": src[1],
                              "raw": data.decode("latin-1")}) + "\n")
        log.flush()
        want = f.get("Infohash", "").lower()
        d = today()
        if want in ("", h) or want in [rolling_code(h, d + k)
                                       for k in (-1, 0, 1)]:
            tx.sendto(announce, src)
            tx.sendto(announce, (GROUP, LPD_PORT))


def role_probe(args):
    """Search hlcore A as a Python node would, and report every answer."""
    me, a_ip = args["ip"], args["a_ip"]
    hashes = args["hashes"]
    out = {}
    d = today()

    def ask(name, infohash, wait=0.7, sock=None):
        s = sock or send_socket(me)
        cookie = "probe-%s" % name
        s.sendto(make_search(infohash, cookie), (GROUP, LPD_PORT))
        got = collect(s, wait)
        out[name] = [(ip, port, data.decode("latin-1"))
                     for ip, port, data in got]
        if sock is None:
            s.close()

    ask("all", "")
    ask("code_today", rolling_code(hashes["secret"], d))
    ask("code_yesterday", rolling_code(hashes["open"], d - 1))
    ask("code_tomorrow", rolling_code(hashes["open"], d + 1))
    ask("raw_hash", hashes["open"])
    ask("raw_hash_upper", hashes["open"].upper())
    ask("code_stale", rolling_code(hashes["open"], d - 5), wait=0.5)
    ask("unknown", "ab" * 20, wait=0.5)

    # Malformed packets to the group: none may be answered, and a good
    # search right after them still is.
    s = send_socket(me)
    good = make_search("", "probe-bad")
    bad = [
        good.replace(b"\r\n", b"\n"),                   # LF only
        good[:-4] + b"X" * 3000 + b"\r\n\r\n",          # too big
        b"HARDLINE-SEARCH * HTTP/1.1\r\nInfohash: zz\r\n\r\n",
        b"\x00\xff" * 40,
        b"HARDLINE-SEARCH * HTTP/1.1\r\n" + b"X-A: b\r\n" * 100 + b"\r\n",
        b"HARDLINE-SEARCH * HTTP/1.1\r\nInfohash: \r\nInfohash: \r\n\r\n",
    ]
    for b in bad:
        s.sendto(b, (GROUP, LPD_PORT))
    out["malformed"] = [(ip, port, data.decode("latin-1"))
                        for ip, port, data in collect(s, 0.7)]
    out["malformed_sent"] = len(bad)
    s.close()
    ask("after_malformed", "")

    # A searcher outside A's subnet on the same wire: A must not answer,
    # not even to the group.
    watch = group_socket(me)
    collect(watch, 0.2)  # drain
    fs = send_socket(me, bind_ip=args["foreign_ip"])
    fs.sendto(make_search("", "probe-foreign"), (GROUP, LPD_PORT))
    heard = collect(watch, 1.0)
    out["foreign_group"] = [(ip, port, data.decode("latin-1"))
                            for ip, port, data in heard
                            if ip == a_ip and
                            data.startswith(b"HARDLINE-SERVICE")]
    fs.close()
    watch.close()

    # A burst of searches from one source: rate-limited.
    s = send_socket(me)
    for i in range(40):
        s.sendto(make_search(hashes["open"], "probe-burst"),
                 (GROUP, LPD_PORT))
    out["burst"] = len(collect(s, 1.0))
    s.close()
    print(json.dumps(out), flush=True)


def capture(s, f, ready, lifetime, record):
    """For lifetime seconds, write record(s) to file f each time socket s
    has a packet; prints ready first (the parent waits for it)."""
    end = time.monotonic() + lifetime
    print(ready, flush=True)
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], 0.5)
        if r:
            f.write(record(s))
            f.flush()


def role_sniff_group(args):
    """Every datagram sent to the group, as a host on the LAN hears it:
    one JSON line each in args["out"]."""
    def record(s):
        data, src = s.recvfrom(65536)
        return json.dumps({"src": src[0], "data": base64.b64encode(
            data).decode()}) + "\n"
    capture(group_socket(args["ip"]), open(args["out"], "a"), "sniffing",
            args["lifetime"], record)


def role_sniff_bridge(args):
    """Every frame on every port of the bridge (AF_PACKET, ETH_P_ALL), to
    args["out"] as length-prefixed records."""
    def record(s):
        data = s.recv(65536)
        return struct.pack("<I", len(data)) + data
    capture(socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                          socket.htons(3)),
            open(args["out"], "ab"), "capturing", args["lifetime"], record)


ROLES = {"serve": role_serve, "probe": role_probe,
         "sniff-group": role_sniff_group, "sniff-bridge": role_sniff_bridge}

# ---------------------------------------------------------------------------
# The test.
# ---------------------------------------------------------------------------


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "lib"))
    import netlab
    why = netlab.usable()
    if why:
        print("SKIP: %s" % why)
        sys.exit(77)
    import hltest
    from hltest import Fail, check, check_eq, check_in

    t = hltest.Test("lan")
    tmp = t.tmp
    lab = netlab.lan_lab(["a", "b", "c"])
    me = os.path.abspath(__file__)
    life = t.slow(100)
    a_ip, b_ip, c_ip = lab.ip("a"), lab.ip("b"), lab.ip("c")
    foreign_ip = "10.78.0.3"
    procs = {}
    S = {}   # service -> {"pw", "hash", "url"}
    token = "lan-backend-%d" % os.getpid()
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write(token + "\n")

    def path(*p):
        return os.path.join(tmp, *p)

    def write_cfg(name, cfg):
        with open(path(name + ".yaml"), "w") as f:
            f.write(hltest.to_yaml(cfg) + "\n")
        return path(name + ".yaml")

    read = hltest.read_text

    def wait_for(fn, what, timeout):
        return hltest.wait_for(fn, t.slow(timeout), what)

    def wait_log(name, regex, timeout=10):
        return t.wait_log_file(path(name + ".log"), regex, timeout)

    def start_hlcore(name, host, cfg, ready):
        c = write_cfg(name, cfg)
        procs[name] = lab.spawn(host, [t.hlcore, "-c", c],
                                log=path(name + ".log"),
                                env=hltest.child_env())
        for r in ready:
            wait_log(name, r, 20)

    def role(name, host, role_name, args, ready):
        procs[name] = lab.spawn(host, [sys.executable, me, role_name,
                                       json.dumps(args)],
                                log=path(name + ".log"))
        wait_for(lambda: ready in read(path(name + ".log")),
                 "%s to start" % name, 15)

    def curl(host, url, proxy_port=7009):
        hostpart = url.split("/")[2]
        rc, out, err = lab.run(host, [
            "curl", "-sS", "-m", str(t.slow(15)), "-H", "Host: " + hostpart,
            "-w", "\n%{http_code} %{time_starttransfer}",
            "http://127.0.0.1:%d/" % proxy_port], timeout=t.slow(30))
        return rc, out, err

    def fetch_ok(host, name, proxy_port=7009):
        rc, out, err = curl(host, S[name]["url"], proxy_port)
        check(rc == 0 and token in out and out.rsplit("\n", 1)[-1]
              .startswith("200 "), "GET %s through %s's proxy" %
              (S[name]["url"], host), "200 with the backend's page",
              "curl exit %s, %r %r" % (rc, out[-2000:], err))

    base_cfg = {"log": {"level": "debug"}}
    a_cfg = dict(base_cfg, state_dir=path("a-state"),
                 proxy={"listen": "127.0.0.1:7009"},
                 plugins={"transport-tls": {"listen": "[::]:7008"},
                          "discovery-lan": {}},
                 services={
                     "secret": {"target": "127.0.0.1:8080",
                                "title": "Secret wiki"},
                     "open": {"target": "127.0.0.1:8080",
                              "title": "Open NAS", "password": "none"},
                     "legacy": {"target": "127.0.0.1:8080",
                                "title": "Legacy app",
                                "password": "legacypw",
                                "lan_announce_password": True}})
    a2_cfg = dict(base_cfg, state_dir=path("a2-state"),
                  proxy={"listen": "off"},
                  plugins={"transport-tls": {"listen": "0.0.0.0:7010"}},
                  services={"relayed": {"target": "127.0.0.1:8080",
                                        "title": "Relayed by Python"}})
    b_cfg = dict(base_cfg, state_dir=path("b-state"),
                 proxy={"listen": "127.0.0.1:7009"},
                 plugins={"transport-tls": {}, "discovery-lan": {}})
    b2_cfg = dict(b_cfg, state_dir=path("b2-state"),
                  proxy={"listen": "127.0.0.1:7019"},
                  plugins={"transport-tls": {"listen": "0.0.0.0:7020"},
                           "discovery-lan": {"announce_interval": 5}},
                  services={"b2svc": {"target": "127.0.0.1:8080",
                                      "title": "B2 service"}})

    def setup():
        for name, cfg, svcs in (("a", a_cfg, ("secret", "open", "legacy")),
                                ("a2", a2_cfg, ("relayed",))):
            c = write_cfg(name, cfg)
            for s in svcs:
                rc, out, err = hltest.run([t.hlcore, "-c", c, "url", s],
                                          cwd=tmp)
                m = hltest.URL_RE.match(out.strip())
                check(rc == 0 and m, "hlcore url %s" % s, "a URL",
                      out + err)
                S[s] = {"pw": m.group(1), "hash": m.group(2),
                        "url": out.strip()}
        check(len(S["secret"]["pw"]) == 13, "secret's auto password",
              "13 characters", S["secret"]["pw"])
        lab.run("c", ["ip", "addr", "add", foreign_ip + "/24", "dev",
                      "eth0"])
        role("sniff-bridge", "br", "sniff-bridge",
             {"out": path("bridge.cap"), "lifetime": life}, "capturing")
        role("sniff-group", "c", "sniff-group",
             {"ip": c_ip, "out": path("group.jsonl"), "lifetime": life},
             "sniffing")
        procs["http"] = lab.spawn("a", [
            sys.executable, "-m", "http.server", "8080", "--bind",
            "127.0.0.1", "--directory", www], log=path("http.log"))
        start_hlcore("a", "a", a_cfg, [r"searching and answering",
                                       r"listening on \[::\]:7008"])
        start_hlcore("a2", "a", a2_cfg, [r"listening on 0\.0\.0\.0:7010"])
        start_hlcore("b", "b", b_cfg, [r"searching and answering",
                                       r"proxy listening"])
        role("peer", "c", "serve",
             {"ip": c_ip, "port": 7008, "hash": S["relayed"]["hash"],
              "title": "Relayed by Python", "target": [a_ip, 7010],
              "searches": path("peer-searches.jsonl"), "lifetime": life},
             "serving")
        # The backend answers in A's namespace before anything fetches.
        wait_for(lambda: lab.run("a", ["curl", "-s", "-m", "2",
                                       "http://127.0.0.1:8080/"],
                                 timeout=5)[1].strip() == token,
                 "the HTTP backend", 10)

    if not t.case("lab: bridge, three hosts, hlcore A, A2, B, peer, "
                  "sniffers", setup):
        lab.destroy()
        t.finish()

    def fetch_password():
        fetch_ok("b", "secret")
        wait_log("b", r"won by transport-tls %s:7008" % re.escape(a_ip), 2)

    def fetch_open():
        fetch_ok("b", "open")

    t.case("B finds A with no address book: service with a password",
           fetch_password)
    t.case("B finds A with no address book: service without a password",
           fetch_open)

    def unsolicited():
        # The peer announced once at start; B heard it and kept it.
        wait_log("b", r'heard -%s "Relayed by Python" at %s:7008' %
                 (S["relayed"]["hash"], re.escape(c_ip)), 5)

    t.case("an unsolicited announce from the Python node reaches B",
           unsolicited)

    def via_peer():
        fetch_ok("b", "relayed")
        wait_log("b", r"won by transport-tls %s:7008" % re.escape(c_ip), 2)
        # hlcore's search, as the Python node parsed it: exact format.
        code = rolling_code(S["relayed"]["hash"], today())
        lines = [json.loads(x) for x in
                 read(path("peer-searches.jsonl")).splitlines()]
        from_b = [x["raw"] for x in lines if x["src"] == b_ip]
        check(from_b, "searches from B heard by the Python node",
              "at least one", lines)
        rx = re.compile(r"HARDLINE-SEARCH \* HTTP/1\.1\r\nInfohash: "
                        r"([0-9a-f]*)\r\ncookie: ([^\r\n]+)\r\n\r\n\r\n\Z")
        codes = set()
        for raw in from_b:
            m = rx.match(raw)
            check(m, "a search from hlcore B", "exactly "
                  "'HARDLINE-SEARCH * HTTP/1.1\\r\\nInfohash: <code>\\r\\n"
                  "cookie: <id>\\r\\n\\r\\n\\r\\n'", raw)
            codes.add(m.group(1))
        check_in(code, codes, "B's searches carry the day's rolling code")
        check(S["relayed"]["hash"] not in codes, "B's searches",
              "never the raw hash (only rolling codes)", codes)

    t.case("B fetches a service announced by the independent Python node",
           via_peer)

    def discover():
        t0 = time.monotonic()
        rc, out, err = lab.run("b", [t.hlcore, "-c", path("b.yaml"),
                                     "discover"], timeout=t.slow(20),
                               env=hltest.child_env())
        took = time.monotonic() - t0
        check(rc == 0, "hlcore discover", "exit 0", "%s: %s%s" %
              (rc, out, err[-3000:]))
        want = [("Secret wiki", "-" + S["secret"]["hash"], a_ip + ":7008"),
                ("Open NAS", "-" + S["open"]["hash"], a_ip + ":7008"),
                ("Legacy app", "legacypw-" + S["legacy"]["hash"],
                 a_ip + ":7008"),
                ("Relayed by Python", "-" + S["relayed"]["hash"],
                 c_ip + ":7008")]
        for title, label, addr in want:
            rx = r"^%s\s+http://%s\.localhost:7009/\s+%s$" % (
                re.escape(title), re.escape(label), re.escape(addr))
            check(re.search(rx, out, re.M), "discover's list",
                  "a line %r %r %r" % (title, label, addr), out)
        check(S["secret"]["pw"] not in out, "discover's list",
              "no password of a service that did not opt in", out)
        check(took < t.slow(4), "discover's run time", "about 2 s",
              "%.1f s" % took)
        # On A itself: answered by the daemon on the same host, by
        # unicast over lo and by the group looped back.
        rc, out, err = lab.run("a", [t.hlcore, "-c", path("a.yaml"),
                                     "discover"], timeout=t.slow(20),
                               env=hltest.child_env())
        rx = r"^Open NAS\s+http://-%s\.localhost:7009/\s+%s:7008$" % (
            S["open"]["hash"], re.escape(a_ip))
        check(rc == 0 and re.search(rx, out, re.M),
              "hlcore discover on A", "A's own services", out + err[-3000:])
        check("not on a directly connected subnet" not in err,
              "discover on A", "no answer from this host refused", err)

    t.case("`hlcore discover` on B lists every LAN service (title, label, "
           "address) in ~2 s", discover)

    probe = {}

    def python_searches():
        rc, out, err = lab.run("c", [sys.executable, me, "probe", json.dumps(
            {"ip": c_ip, "a_ip": a_ip, "foreign_ip": foreign_ip,
             "hashes": {k: v["hash"] for k, v in S.items()}})],
            timeout=t.slow(40))
        check(rc == 0, "the Python prober", "exit 0", out + err)
        probe.update(json.loads(out.strip().splitlines()[-1]))
        rx = re.compile(r"HARDLINE-SERVICE \* HTTP/1\.1\r\n"
                        r"Port: (\d+)\r\n"
                        r"Infohash: ([^\r\n]*)\r\n"
                        r"cookie: ([^\r\n]+)\r\n"
                        r"title: ([^\r\n]*)\r\n\r\n\r\n\Z")

        def from_a(name):
            # The Python node on c answers searches for every service
            # too; only hlcore A's answers are under test here.
            return [x for x in probe[name] if x[0] != c_ip]

        def answers(name):
            got = {}
            for ip, port, raw in from_a(name):
                check_eq(ip, a_ip, "%s: source of an answer" % name)
                m = rx.match(raw)
                check(m, "%s: an answer" % name, "exactly 'HARDLINE-SERVICE"
                      " * HTTP/1.1\\r\\nPort: ..\\r\\nInfohash: ..\\r\\n"
                      "cookie: ..\\r\\ntitle: ..\\r\\n\\r\\n\\r\\n'", raw)
                check_eq(m.group(1), "7008", "%s: Port" % name)
                got[m.group(2)] = m.group(4)
            return got

        every = answers("all")
        check_eq(every, {"-" + S["secret"]["hash"]: "Secret wiki",
                         "-" + S["open"]["hash"]: "Open NAS",
                         "legacypw-" + S["legacy"]["hash"]: "Legacy app"},
                 "a search for every service: Infohash -> title")
        check_eq(answers("code_today"),
                 {"-" + S["secret"]["hash"]: "Secret wiki"},
                 "today's rolling code of the password-protected service")
        for name in ("code_yesterday", "code_tomorrow", "raw_hash",
                     "raw_hash_upper"):
            check_eq(answers(name), {"-" + S["open"]["hash"]: "Open NAS"},
                     "a search by %s" % name)
        for name in ("code_stale", "unknown"):
            check_eq(from_a(name), [], "a search by %s" % name)
        probe["after_malformed"] = from_a("after_malformed")

    t.case("the Python node searches; hlcore answers in the exact format "
           "(every service, rolling codes d-1..d+1, raw hash)",
           python_searches)

    def hostile():
        check(probe, "the probe's results", "present (see the case above)",
              probe)
        check_eq([x for x in probe["malformed"] if x[0] != c_ip], [],
                 "answers to %d malformed searches" % probe["malformed_sent"])
        check(len(probe["after_malformed"]) == 3,
              "answers to a good search after the malformed ones",
              "3 (A still answers)", probe["after_malformed"])
        check_eq(probe["foreign_group"], [],
                 "announces after a search from %s, outside A's subnet" %
                 foreign_ip)
        check(1 <= probe["burst"] <= 30, "answers to 40 searches at once "
              "from one host", "between 1 and 30 (rate-limited)",
              probe["burst"])

    t.case("malformed packets and off-subnet searchers are not answered; "
           "bursts are rate-limited", hostile)

    def two_on_one_host():
        start_hlcore("b2", "b", b2_cfg, [r"searching and answering",
                                         r"proxy listening"])
        fetch_ok("b", "open")
        fetch_ok("b", "secret", proxy_port=7019)
        # B2 announces unsolicited (announce_interval): B, on the same
        # host, and A both hear it.
        for n in ("b", "a"):
            wait_log(n, r'heard -[0-9a-f]{40} "B2 service" at %s:7020' %
                     re.escape(b_ip), 3)
        rc = lab.stop(procs["b2"], t.slow(20))
        check_eq(rc, 0, "hlcore B2's exit status after SIGTERM")

    t.case("two hlcore on one host share port 6771, both find A, and "
           "hear each other's announces",
           two_on_one_host)

    def wire():
        rc1 = lab.stop(procs["sniff-group"], 5)
        rc2 = lab.stop(procs["sniff-bridge"], 5)
        del rc1, rc2
        group = [base64.b64decode(json.loads(x)["data"]) for x in
                 read(path("group.jsonl")).splitlines() if x]
        check(len(group) > 10, "datagrams the group sniffer on C heard",
              "many", len(group))
        with open(path("bridge.cap"), "rb") as f:
            cap = f.read()
        frames = []
        i = 0
        while i + 4 <= len(cap):
            n = struct.unpack("<I", cap[i:i + 4])[0]
            frames.append(cap[i + 4:i + 4 + n])
            i += 4 + n
        check(len(frames) > 50, "frames captured on the bridge", "many",
              len(frames))
        for name in ("secret", "relayed"):
            pw = S[name]["pw"].encode()
            check(not any(pw in g for g in group),
                  "the group sniffer's datagrams",
                  "no trace of %s's password" % name, "it was there")
            check(not any(pw in fr for fr in frames),
                  "every frame on the bridge (searches, answers, TLS)",
                  "no trace of %s's password" % name, "it was there")
        leg = ("Infohash: legacypw-%s\r\n" % S["legacy"]["hash"]).encode()
        check(any(leg in g for g in group), "the group sniffer's datagrams",
              "the opted-in service's announce with its password",
              [g[:200] for g in group[:5]])

    t.case("on the wire: no password of a service that did not opt in; "
           "the opted-in one is announced with it", wire)

    def clean_stop():
        for name in ("b", "a2", "a"):
            rc = lab.stop(procs[name], t.slow(20))
            log = read(path(name + ".log"))
            san = re.search(r"(ERROR: (Address|Leak)Sanitizer|runtime "
                            r"error:)", log)
            check(rc == 0 and not san, "hlcore %s after SIGTERM" % name,
                  "exit 0, no sanitizer report",
                  "%s; %s" % (rc, log[-3000:]))
        log = read(path("a.log"))
        m = re.search(r"discovery-lan: (\d+) packets received: (\d+) "
                      r"malformed \(dropped\), (\d+) from outside the LAN "
                      r"subnets, (\d+) rate-limited, (\d+) searches "
                      r"answered", log)
        check(m, "A's counters at exit", "a 'packets received' line",
              log[-2000:])
        check(int(m.group(2)) >= probe.get("malformed_sent", 1),
              "malformed packets counted by A", ">= %s" %
              probe.get("malformed_sent"), m.group(0))
        check(int(m.group(3)) >= 1 and int(m.group(4)) >= 1,
              "off-subnet and rate-limited counted by A", ">= 1 each",
              m.group(0))

    t.case("every hlcore stops cleanly; A counted what it dropped",
           clean_stop)
    lab.destroy()
    t.finish()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ROLES:
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        ROLES[sys.argv[1]](json.loads(sys.argv[2]))
    else:
        main()
