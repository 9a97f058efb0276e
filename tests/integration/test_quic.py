#!/usr/bin/env python3
"""QUIC tunnels (transport-udp) end to end, with transport-udp the only
transport on both nodes: two hlcore processes, a real HTTP backend, every
request through the client node's proxy as a browser sends it.

Checks: pages for three password modes; a wrong and a missing password
(502, the backend never contacted); a backend that is down; an impostor
node (its certificate refused, the next candidate tried, the 502 page
naming each QUIC attempt and why it failed); 50 tunnels at once over one
QUIC connection; close and half-close both ways (with a raw TCP backend);
a node with both transports (a bare candidate tried over both, a quic://
one over QUIC only);
a slow reader of a large download (RSS bounded on both nodes, every
byte checked); the server restarted in the middle of a download (the download ends, the
next request reconnects); a server that vanishes (SIGKILL) under an open
tunnel (the tunnel ends within the idle timeout).
"""
import hashlib
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
from hltest import Fail, check, check_eq, check_in, fetch  # noqa: E402

IDLE = 3  # idle_timeout of both nodes, seconds
t = hltest.Test("quic")
backend = t.backend()
dead_port = hltest.free_port()
FIXED_PW = "s3cretpw"
UNKNOWN = "0123456789abcdef0123456789abcdef01234567"

server = t.node("server")
impostor = t.node("impostor")
client = t.node("client")
S = {}
ports = {}


class RawBackend:
    """A TCP backend that records what it reads and when the other side
    closed, and in 'close' mode answers a fixed response and closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.mode = "read"
        self.body = os.urandom(300000)
        self.got = b""
        self.eof = threading.Event()
        hltest.serve_in_threads(self.sock, self.serve)

    def serve(self, c):
        c.settimeout(30)
        try:
            if self.mode == "close":
                if hltest.read_head(c) is None:
                    return
                c.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + self.body)
                c.close()
                return
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    self.eof.set()
                    return
                self.got += chunk
        except OSError:
            pass
        finally:
            c.close()


raw = RawBackend()
half = hltest.HalfCloseService()


def udp_listen_port():
    # A port free for UDP (and TCP: the same number, by convention).
    while True:
        p = hltest.free_port()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()


def server_config(limits=None):
    ports["udp"] = ports.get("udp") or udp_listen_port()
    extra = {"limits": limits} if limits else {}
    return server.base_config(
        log={"level": "debug"}, **extra,
        plugins={"transport-udp": {
            "listen": "127.0.0.1:%d" % ports["udp"],
            "idle_timeout": str(IDLE),
            "advertise": "127.0.0.1:%d" % ports["udp"]}},
        services={
            "auto": {"target": backend.addr},
            "open": {"target": backend.addr, "password": "none"},
            "fixed": {"target": backend.addr, "password": FIXED_PW},
            "down": {"target": "127.0.0.1:%d" % dead_port,
                     "password": "none"},
            "raw": {"target": "127.0.0.1:%d" % raw.port,
                    "password": "none"},
            "half": {"target": half.addr, "password": "none"},
        })


def impostor_config():
    ports["imp"] = ports.get("imp") or udp_listen_port()
    # The test fixture that answers every name with its own certificate
    # (plugins/transport-udp/CMakeLists.txt).
    return impostor.base_config(
        log={"level": "debug"},
        plugins={"transport-udp-impostor": {
            "listen": "127.0.0.1:%d" % ports["imp"]}},
        services={"other": {"target": backend.addr, "password": "none"}})


def client_config():
    ports["proxy"] = hltest.free_port()
    ports["fhalf"] = hltest.free_port()
    ports["fopen"] = hltest.free_port()
    real = "127.0.0.1:%d" % ports["udp"]
    imp = "127.0.0.1:%d" % ports["imp"]
    peers = {S[n]["hash"]: [real] for n in ("auto", "down", "raw", "half")}
    # A typed endpoint (ABI 1.2): for transport-udp only.
    peers[S["fixed"]["hash"]] = ["quic://" + real]
    # The impostor first: its certificate must be refused, then the
    # real node tried.
    peers[S["open"]["hash"]] = [imp, real]
    # tls:// names a transport this node has not loaded: listed on the
    # 502 page, never dialled.
    peers[UNKNOWN] = [imp, "127.0.0.1:%d" % dead_port, "tls://127.0.0.1:1"]
    return {
        "state_dir": client.state_dir,
        "log": {"level": "debug"},
        "proxy": {"listen": "127.0.0.1:%d" % ports["proxy"]},
        "plugins": {"transport-udp": {"idle_timeout": str(IDLE)}},
        "peers": peers,
        "forwards": [{"listen": "127.0.0.1:%d" % ports["fhalf"],
                      "to": "-" + S["half"]["hash"]},
                     {"listen": "127.0.0.1:%d" % ports["fopen"],
                      "to": "-" + S["open"]["hash"]}],
    }


def host(name, pw=None):
    s = S[name]
    return "%s-%s.localhost:%d" % (s["pw"] if pw is None else pw, s["hash"],
                                   ports["proxy"])


def expect_page(r, what, path):
    check(r.status == 200 and backend.token in r.text and
          ("path=%s\n" % path) in r.text, what,
          "200 with the backend's page (path %s)" % path, r)


def start_server(limits=None):
    server.write_config(server_config(limits))
    server.launch(r"QUIC on UDP 127\.0\.0\.1:%d" % ports["udp"],
                  timeout=t.slow(20))


def case_bad_config():
    bad = os.path.join(t.tmp, "bad-udp.yaml")
    with open(bad, "w") as f:
        f.write("plugins:\n  transport-udp: { listen: \"nope\", "
                "idle_timeout: 1, advertise: [\"1.2.3.4:0\"], hubs: [] }\n")
    rc, out, err = hltest.run([t.hlcore, "-c", bad, "check"],
                              timeout=t.slow(30))
    check(rc == 2 and re.search(r"bad-udp.yaml:2:\d+: .*listen", err) and
          "idle_timeout" in err and "advertise" in err and "hubs" in err,
          "hlcore check with bad transport-udp settings",
          "exit 2 naming listen, idle_timeout, advertise and hubs (an empty "
          "list) at file:line:column", "exit %d: %s" % (rc, err))
    # TURN relays: a URL that is not one, and relays without hubs (their
    # candidate would reach nobody).
    check_bad(bad, "    hubs: [\"h:7777\"]\n    turn: [\"turn://nopass@h\"]\n",
              r"bad-udp.yaml:4:\d+: .*turn URL", "a bad turn: URL")
    check_bad(bad, "    turn: [\"turn://u:p@h:3478\"]\n",
              r"bad-udp.yaml:3:\d+: .*add hubs", "turn: but no hubs:")


def check_bad(path, udp_lines, regex, what):
    """hlcore check of a transport-udp section: exit 2 and regex in its
    errors (file:line:column)."""
    with open(path, "w") as f:
        f.write("plugins:\n  transport-udp:\n" + udp_lines)
    rc, out, err = hltest.run([t.hlcore, "-c", path, "check"],
                              timeout=t.slow(30))
    check(rc == 2 and re.search(regex, err), "hlcore check with " + what,
          "exit 2, /%s/" % regex, "exit %d: %s" % (rc, err))


def case_start():
    server.write_config(server_config())
    for name in ("auto", "open", "fixed", "down", "raw", "half"):
        pw, h = server.url(name)
        S[name] = {"pw": pw, "hash": h}
    impostor.write_config(impostor_config())
    S["other"] = dict(zip(("pw", "hash"), impostor.url("other")))
    start_server()
    impostor.launch(r"QUIC on UDP", timeout=t.slow(20))
    client.start(client_config, lambda cfg: [ports["proxy"]])


def case_fetch(name, path):
    r = fetch(ports["proxy"], host(name), path, timeout=t.slow(20))
    expect_page(r, "GET %s of %s over QUIC" % (path, name), path)
    check_in("host=%s" % host(name), r.text, "the Host the backend saw")


def refused(name, pw, what):
    hltest.check_refused(ports["proxy"], host(name, pw=pw), backend, what,
                         wait=t.slow(20))


def case_endpoints():
    """advertise: a quic:// endpoint, told and remembered, not a WANHost"""
    # advertise: becomes a typed endpoint: in the OOB field Endpoints for
    # hlcore clients (remembered in peers.cache), never in WANHosts.
    ep = "quic://127.0.0.1:%d" % ports["udp"]
    check(server.wait_log(r'WANHosts now ""; endpoints "%s"' % re.escape(ep))
          is not None, "the server's log", "WANHosts empty, endpoint %s" % ep,
          server.log()[-2000:])
    expect_page(fetch(ports["proxy"], host("auto"), "/ep", timeout=t.slow(20)),
                "a visit", "/ep")
    client.stop_ok()
    cache = client.peers_cache()
    check(re.search(r"^%s \d+ %s$" % (S["auto"]["hash"], re.escape(ep)),
                    cache, re.M), "the client's peers.cache",
          "the typed endpoint %s" % ep, cache)
    client.start(client_config, lambda cfg: [ports["proxy"]])


def case_passwords():
    """wrong and missing password: 502, backend untouched"""
    refused("auto", "wrongpassword", "a wrong password")
    refused("fixed", "", "a missing password")
    check(server.wait_log(r"auto: tunnel from .* refused: wrong password")
          is not None, "the server's log", "'refused: wrong password'",
          server.log()[-2000:])


def case_backend_down():
    """backend down: 502"""
    r = fetch(ports["proxy"], host("down"), "/", timeout=t.slow(30))
    check(r.status == 502, "a service whose backend is down", "HTTP 502", r)
    check_in("closed the tunnel", r.text, "the 502 page (backend down)")


def case_impostor():
    """impostor refused, next candidate; 502 lists QUIC attempts"""
    # open's first candidate is the impostor: refused by the pin, then
    # the real node.
    r = fetch(ports["proxy"], host("open"), "/imp", timeout=t.slow(20))
    expect_page(r, "open, past an impostor", "/imp")
    check(client.wait_log(r"127\.0\.0\.1:%d via transport-udp failed: "
                          r"answered with a certificate whose hash is "
                          r"%s, not the one in the URL" %
                          (ports["imp"], S["other"]["hash"])) is not None,
          "the client's log", "the impostor's certificate refused",
          client.log()[-3000:])
    h = "-%s.localhost:%d" % (UNKNOWN, ports["proxy"])
    t0 = time.monotonic()
    r = fetch(ports["proxy"], h, "/", timeout=t.slow(30))
    check(r.status == 502, "a keyhash served by nobody", "HTTP 502", r)
    check(time.monotonic() - t0 < t.slow(5), "the time to the 502 page",
          "under %d s (a closed UDP port fails at once)" % t.slow(5),
          "%.1f s" % (time.monotonic() - t0))
    for want in ("127.0.0.1:%d via transport-udp" % ports["imp"],
                 "not the one in the URL: an impostor",
                 "127.0.0.1:%d via transport-udp" % dead_port,
                 "nothing listens on that UDP port",
                 "tls://127.0.0.1:1 (address from a candidate source): no "
                 "transport loaded here dials such an address"):
        check_in(want, r.text, "the 502 page listing the QUIC attempts")
    check(impostor.wait_log(r"tunnel from", timeout=0.5) is None, "the impostor's log",
          "no tunnel handed to its core", "a tunnel")


def case_parallel():
    """50 parallel tunnels over one connection"""
    before = len(re.findall(r"QUIC connection to 127\.0\.0\.1:%d for %.8s" %
                            (ports["udp"], S["auto"]["hash"]),
                            client.log()))
    results = [None] * 50
    errors = []

    def one(i):
        try:
            results[i] = fetch(ports["proxy"], host("auto"), "/p%d" % i,
                               timeout=t.slow(30))
        except Exception as e:  # noqa: BLE001
            errors.append("%d: %s" % (i, e))

    th = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    t0 = time.monotonic()
    for x in th:
        x.start()
    for x in th:
        x.join(t.slow(60))
    took = time.monotonic() - t0
    check(not errors, "50 parallel requests", "no error", errors[:5])
    for i, r in enumerate(results):
        expect_page(r, "parallel request %d" % i, "/p%d" % i)
    after = len(re.findall(r"QUIC connection to 127\.0\.0\.1:%d for %.8s" %
                           (ports["udp"], S["auto"]["hash"]), client.log()))
    check(after - before <= 1, "QUIC connections opened for 50 tunnels",
          "at most one (the warm one reused)", after - before)
    print("   50 parallel tunnels in %.2f s, %d new QUIC connection(s)" %
          (took, after - before))


def case_close_both_ways():
    """close and half-close both ways"""
    # Server to client: the backend answers and closes; the browser gets
    # every byte, then EOF.
    raw.mode = "close"
    s = socket.create_connection(("127.0.0.1", ports["proxy"]),
                                 timeout=t.slow(20))
    try:
        s.sendall(("GET /c HTTP/1.0\r\nHost: %s\r\n\r\n" %
                   host("raw")).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        want = b"HTTP/1.0 200 OK\r\n\r\n" + raw.body
        check(data == want, "a response closed by the backend",
              "%d bytes then EOF" % len(want),
              "%d bytes (%r...)" % (len(data), data[:60]))
    finally:
        s.close()
    # Client to server: the browser sends and half-closes; the backend
    # gets every byte, then EOF.
    raw.mode = "read"
    raw.got = b""
    raw.eof.clear()
    s = socket.create_connection(("127.0.0.1", ports["proxy"]),
                                 timeout=t.slow(20))
    try:
        head = ("POST /h HTTP/1.1\r\nHost: %s\r\n\r\n" % host("raw")).encode()
        body = os.urandom(200000)
        s.sendall(head + body)
        s.shutdown(socket.SHUT_WR)
        check(raw.eof.wait(t.slow(10)), "the backend after the browser's "
              "half-close", "EOF within %d s" % t.slow(10), "no EOF")
        check(raw.got.endswith(body) and raw.got.startswith(b"POST /h"),
              "what the backend read", "the head and all %d bytes" %
              len(body), "%d bytes" % len(raw.got))
    finally:
        s.close()
    # True half-close: each side still carries bytes after the other
    # side's EOF (a QUIC stream's FIN one way, the other way still open).
    # (Through a forward: the HTTP proxy takes a browser's EOF for its
    # leaving, as nginx does.)
    hltest.check_half_close(half, ports["fhalf"], timeout=t.slow(20))
    # A browser that leaves ends the tunnel on both nodes (a RESET_STREAM,
    # not a FIN that would half-close it).
    hltest.check_browser_left(half, ports["proxy"], host("half"), server,
                              "half", timeout=t.slow(20))


def case_slow_reader():
    """slow reader, 128 MiB: RSS bounded on both nodes"""
    # 128 MiB read slowly for a while, then fast: neither node holds it
    # (flow control follows the reader), and every byte arrives in order.
    size = 128 << 20
    for n in (server, client):
        check(hltest.rss_kib(n.pid) is not None, "hlcore %s" % n.name,
              "running", "gone")
    expect_page(fetch(ports["proxy"], host("auto"), "/w", timeout=t.slow(20)),
                "a warm-up", "/w")
    r = fetch(ports["proxy"], host("auto"), "/big?size=%d" % (4 << 20),
              timeout=t.slow(30))
    check(r.status == 200 and len(r.body) == 4 << 20, "a 4 MiB warm-up",
          "200 with 4 MiB", r)
    time.sleep(0.2)
    base = {n.name: hltest.rss_kib(n.pid) for n in (server, client)}
    peak = dict(base)
    s = socket.create_connection(("127.0.0.1", ports["proxy"]),
                                 timeout=t.slow(20))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    chk = hltest.PatternChecker()
    try:
        s.sendall(("GET /big?size=%d HTTP/1.1\r\nHost: %s\r\n"
                   "Connection: close\r\n\r\n" % (size, host("auto"))).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            check(chunk, "the response head", "bytes", "EOF")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 200"), "the response", "200", head)
        chk.feed(rest)
        t_end = time.monotonic() + 6
        while time.monotonic() < t_end:
            got = s.recv(64 * 1024)
            check(got, "the slow download", "bytes", "EOF")
            chk.feed(got)
            for n in (server, client):
                peak[n.name] = max(peak[n.name], hltest.rss_kib(n.pid) or 0)
            time.sleep(0.2)
        with backend.lock:
            sent = backend.big_sent
        slow = chk.offset
        s.settimeout(t.slow(60))
        while chk.offset < size:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            chk.feed(chunk)
    finally:
        s.close()
    check_eq(chk.offset, size, "bytes received")
    check(chk.bad_at is None, "the body", "the backend's bytes in order",
          "a difference at %s" % chk.bad_at)
    grew = {k: peak[k] - base[k] for k in peak}
    print("   slow phase: read %.1f MiB, backend had sent %.1f MiB in all; "
          "RSS growth %s KiB" % (slow / 1048576, sent / 1048576, grew))
    for k, v in grew.items():
        check(v < 32 * 1024, "RSS growth of hlcore %s during the slow read" % k,
              "under 32 MiB", "%d KiB" % v)


def case_restart():
    """server restarted mid-transfer, then reconnects"""
    # A download under way when the server restarts: it ends (short),
    # and the next request works over a new connection.
    size = 256 << 20
    s = socket.create_connection(("127.0.0.1", ports["proxy"]),
                                 timeout=t.slow(20))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    got = 0
    try:
        s.sendall(("GET /big?size=%d HTTP/1.1\r\nHost: %s\r\n\r\n" %
                   (size, host("auto"))).encode())
        first = s.recv(65536)
        check(first.startswith(b"HTTP/1.1 200"), "the download", "started",
              first[:100])
        got = len(first)
        server.stop_ok()
        start_server()
        s.settimeout(t.slow(IDLE + 10))
        t0 = time.monotonic()
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        except socket.timeout:
            raise Fail("the download still open %d s after the restart" %
                       (time.monotonic() - t0))
        except ConnectionResetError:
            pass
        check(got < size, "the interrupted download", "cut short",
              "%d bytes" % got)
    finally:
        s.close()
    t0 = time.monotonic()
    r = fetch(ports["proxy"], host("auto"), "/after", timeout=t.slow(20))
    expect_page(r, "a request after the restart", "/after")
    print("   download cut at %.1f MiB; next request in %.2f s" %
          (got / 1048576, time.monotonic() - t0))
    # A crash and restart while the connection is idle (warm, no tunnel,
    # no CONNECTION_CLOSE sent): the next tunnel goes out on the old
    # connection, meets a stateless reset (the secret is kept in
    # state_dir) and moves to a new connection by itself: no error page.
    expect_page(fetch(ports["proxy"], host("auto"), "/warm",
                      timeout=t.slow(20)), "a request warming up", "/warm")
    server.kill()
    start_server()
    t0 = time.monotonic()
    r = fetch(ports["proxy"], host("auto"), "/idle-restart",
              timeout=t.slow(20))
    expect_page(r, "the first request after an idle restart",
                "/idle-restart")
    took = time.monotonic() - t0
    check(took < IDLE - 0.5, "the time to that page",
          "under %.1f s (a stateless reset, not the idle timeout)" %
          (IDLE - 0.5), "%.2f s" % took)
    check(client.wait_log(r"stateless reset: it restarted", timeout=1)
          is not None, "the client's log", "the old connection ended by a "
          "stateless reset", client.log()[-2000:])
    print("   first request after an idle restart in %.2f s" % took)


def case_busy_resend():
    """a request sent with the OOB line goes again after a busy line"""
    # Over QUIC the proxy and forwards send what the client sent so far
    # right behind the OOB line, before the server's line. At the
    # server's cap (1 tunnel per peer) that line says busy: the client
    # waits, and those bytes (and the rest behind them) must go again,
    # whole, on the next stream.
    server.stop_ok()
    start_server(limits={"tunnels_per_peer": 1})
    body = os.urandom(100000)
    want = "posted=%d sha256=%s" % (len(body),
                                    hashlib.sha256(body).hexdigest())

    def through_forward():
        with socket.create_connection(("127.0.0.1", ports["fopen"]),
                                      timeout=t.slow(30)) as s:
            s.sendall(b"POST /busy HTTP/1.0\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
            return hltest.read_to_eof(s).decode("latin-1")
    try:
        for via, send in (
                ("the proxy", lambda: fetch(
                    ports["proxy"], host("open"), "/busy", method="POST",
                    body=body, timeout=t.slow(30)).text),
                ("a forward", through_forward)):
            held = socket.create_connection(("127.0.0.1", ports["proxy"]),
                                            timeout=t.slow(20))
            held.sendall(("GET /held HTTP/1.1\r\nHost: %s\r\n\r\n" %
                          host("open")).encode())
            check(held.recv(65536).startswith(b"HTTP/1.1 200"), "a held "
                  "tunnel (the cap)", "served", "no answer")
            result = {}
            th = threading.Thread(
                target=lambda: result.setdefault("r", send()))
            th.start()
            time.sleep(1.5)
            check("r" not in result, "a POST through %s while the one "
                  "tunnel is held" % via, "waiting for a slot",
                  result.get("r"))
            held.close()
            th.join(t.slow(30))
            r = result.get("r")
            check(r is not None and want in r, "the POST through %s once "
                  "the slot freed" % via, "the backend read the whole "
                  "body once (%s)" % want, r)
    finally:
        server.stop_ok()
        start_server()


def case_new_token():
    """a returning client skips the Retry round trip (NEW_TOKEN)"""
    # The server gave the client a NEW_TOKEN at the end of its first
    # handshake; once that connection has gone idle and closed, the next
    # one presents it and is accepted at once.
    r = fetch(ports["proxy"], host("auto"), "/t1", timeout=t.slow(20))
    expect_page(r, "a GET", "/t1")
    time.sleep(IDLE + 1.5)  # the connection times out (no tunnels)
    r = fetch(ports["proxy"], host("auto"), "/t2", timeout=t.slow(20))
    expect_page(r, "a GET on a new connection", "/t2")
    server.expect_log(r"QUIC connection from 127\.0\.0\.1:\d+: address "
                      r"validated by its NEW_TOKEN \(no Retry\)")


def case_vanished():
    """server vanishes: the tunnel ends within the idle timeout"""
    # An idle tunnel whose server node vanishes without a word: the
    # tunnel ends within the idle timeout (keep-alives go unanswered).
    conn = hltest.connect(ports["proxy"], timeout=t.slow(20))
    try:
        r = fetch(ports["proxy"], host("auto"), "/ka", conn=conn)
        expect_page(r, "a keep-alive request", "/ka")
        server.kill()
        t0 = time.monotonic()
        sock = conn.sock
        sock.settimeout(IDLE + t.slow(5))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            raise Fail("the tunnel still open %.1f s after the server "
                       "vanished" % (time.monotonic() - t0))
        except ConnectionResetError:
            data = b""
        took = time.monotonic() - t0
        check(data == b"", "the browser side", "closed", data[:100])
        check(took < IDLE + t.slow(3), "time to notice",
              "under %d s" % (IDLE + t.slow(3)), "%.1f s" % took)
        print("   tunnel closed %.1f s after the server vanished" % took)
    finally:
        conn.close()


def case_both_transports():
    """both transports: bare raced over both, quic:// to QUIC only"""
    # A node with both transports: a bare host:port goes to each (TCP and
    # UDP, same port number). Nothing listens on TCP there, so TLS is
    # refused and QUIC wins; a quic:// candidate goes to transport-udp
    # only.
    both = t.node("both")
    pb = {}

    def cfg():
        udp = hltest.local(ports["udp"])
        hltest.fresh_ports(pb, "proxy")
        return both.base_config(
            pb["proxy"], log={"level": "debug"},
            plugins={"transport-tls": {}, "transport-udp": {}},
            peers={S["auto"]["hash"]: [udp],
                   S["fixed"]["hash"]: ["quic://" + udp]})
    both.start(cfg, lambda c: [pb["proxy"]])
    try:
        h = "%s-%s.localhost:%d" % (S["auto"]["pw"], S["auto"]["hash"],
                                    pb["proxy"])
        expect_page(fetch(pb["proxy"], h, "/both", timeout=t.slow(20)),
                    "a bare candidate, both transports", "/both")
        log = both.log()
        for want in (r"trying 127\.0\.0\.1:%d via transport-tls" % ports["udp"],
                     r"won by transport-udp 127\.0\.0\.1:%d" % ports["udp"]):
            check(re.search(want, log), "the route of a bare candidate",
                  want, log[-2000:])
        h = "%s-%s.localhost:%d" % (S["fixed"]["pw"], S["fixed"]["hash"],
                                    pb["proxy"])
        expect_page(fetch(pb["proxy"], h, "/typed", timeout=t.slow(20)),
                    "a quic:// candidate", "/typed")
        check(re.search(r"trying quic://127\.0\.0\.1:%d via transport-tls" %
                        ports["udp"], both.log()) is None,
              "transport-tls", "never given a quic:// candidate",
              both.log()[-2000:])
    finally:
        both.stop_ok()


def case_wildcard():
    """a wildcard listener answers from the address dialled; a node reaches its own service over QUIC"""
    # A listener on "[::]:port" of a host with several addresses answers
    # from the address the client dialled (IPV6_PKTINFO; for IPv4 over the
    # dual-stack socket too): 127.0.0.2 here, which the kernel would not
    # pick as the source of an answer to 127.0.0.1 by itself.
    wild, wc = t.node("wild"), t.node("wildclient")
    pw = {"u": udp_listen_port(), "wp": hltest.free_port()}
    wild.write_config(wild.base_config(
        pw["wp"], plugins={"transport-udp": {"listen": "[::]:%d" % pw["u"]}},
        services={"w": {"target": backend.addr, "password": "none"}}))
    _, kh = wild.url("w")
    wild.launch(r"QUIC on UDP", timeout=t.slow(20))

    def cfg():
        hltest.fresh_ports(pw, "p")
        return wc.base_config(pw["p"], plugins={"transport-udp": {}},
                              peers={kh: ["127.0.0.2:%d" % pw["u"]]})
    wc.start(cfg, lambda c: [pw["p"]])
    try:
        expect_page(fetch(pw["p"], "-%s.localhost:%d" % (kh, pw["p"]), "/w",
                          timeout=t.slow(20)),
                    "a wildcard listener dialled at 127.0.0.2", "/w")
        # The node reaches its own service over its own UDP listener
        # (the router's "this node" candidate is quic://127.0.0.1:port).
        t.wait_for(lambda: hltest.port_open(pw["wp"]), t.slow(10),
                   "the wild node's proxy")
        expect_page(fetch(pw["wp"], "-%s.localhost:%d" % (kh, pw["wp"]),
                          "/self", timeout=t.slow(20)),
                    "a node's own service through its own proxy", "/self")
    finally:
        wc.stop_ok()
        wild.stop_ok()


def case_stop():
    """nodes stop cleanly"""
    client.stop_ok()
    impostor.stop_ok()


t.case("bad transport-udp settings: hlcore check names each", case_bad_config)
if t.case("three nodes start (QUIC only)", case_start):
    t.case("fetch over QUIC, password auto", case_fetch, "auto", "/")
    t.case("fetch over QUIC, password fixed", case_fetch, "fixed", "/f")
    t.cases(case_endpoints, case_passwords, case_backend_down, case_impostor,
            case_parallel, case_close_both_ways, case_both_transports,
            case_wildcard, case_slow_reader, case_restart, case_busy_resend,
            case_new_token,
            case_vanished,
            case_stop)
t.finish()
