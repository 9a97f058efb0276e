#!/usr/bin/env python3
"""A node that holds under load and attack (README, "Limits").

Two real hlcore nodes and a real HTTP backend on loopback:
- a burst of keep-alive tunnels from one client, 64 at a time, is served
  in full, and a new request is still served while they are held;
- at a cap (a small tunnels_per_peer) the client waits for a slot instead
  of failing, gets the page once a slot frees, and a clear 503 ("busy")
  when none does;
- a small `routes:` cap on the proxy: 40 requests at once all succeed;
- idle tunnels close after limits idle_timeout, busy ones stay;
- wrong passwords slow down per source, logged one line per source;
- the proxy out of descriptors (soft and hard limit 64, 200 idle
  connects): no busy loop, a short log, and it serves again after;
- 400/431 pages reach the client whole (lingering close).
"""
import os
import re
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
from hltest import check, check_eq, check_in, fetch  # noqa: E402

t = hltest.Test("limits", deadline=280)
backend = t.backend()
server = t.node("server")
client = t.node("client")
small = t.node("small")  # a client node with limits routes: 4
S = {}
ports = {}
PW = "rightpassword"


def server_config(new_ports=True):
    if new_ports or "tls" not in ports:
        hltest.fresh_ports(ports, "tls", "sproxy")
    return server.tls_server_config(ports["tls"], {
        "open": {"target": backend.addr, "password": "none"},
        "locked": {"target": backend.addr, "password": PW},
    }, proxy=ports["sproxy"], limits={"idle_timeout": 3})


def capped_config():
    """The same node with at most 4 tunnels per peer address."""
    cfg = server_config(new_ports=False)
    cfg["limits"] = {"tunnels_per_peer": 4}
    return cfg


def client_config(node, proxy_key, limits=None):
    def make():
        ports[proxy_key] = hltest.free_port()
        real = hltest.local(ports["tls"])
        cfg = node.tls_client_config(ports[proxy_key],
                                     {S[n]["hash"]: [real] for n in S})
        if limits:
            cfg["limits"] = limits
        return cfg
    return make


def host(name, pw=None):
    s = S[name]
    return "%s-%s.localhost" % (s["pw"] if pw is None else pw, s["hash"])


def ok_page(r, what):
    check(r.status == 200 and backend.token in r.text, what,
          "200 with the backend's page", r)


class Held:
    """Keep-alive connections through a proxy, each with one answered
    request (so that a tunnel stands behind it), held open."""

    def __init__(self, port, hosthdr):
        self.port, self.host = port, hosthdr
        self.socks, self.errors = [], []
        self.lock = threading.Lock()

    def one(self, _):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=40)
        try:
            s.sendall(("GET /x HTTP/1.1\r\nHost: %s\r\nConnection: "
                       "keep-alive\r\n\r\n" % self.host).encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                c = s.recv(65536)
                if not c:
                    raise OSError("closed before the head: %r" % buf[:300])
                buf += c
            head, _, body = buf.partition(b"\r\n\r\n")
            m = re.search(rb"Content-Length: (\d+)", head, re.I)
            n = int(m.group(1)) if m else 0
            while len(body) < n:
                c = s.recv(65536)
                if not c:
                    break
                body += c
            if not head.startswith(b"HTTP/1.1 200"):
                raise OSError("got %r" % (head + body)[:400])
            with self.lock:
                self.socks.append(s)
        except Exception as e:
            s.close()
            with self.lock:
                self.errors.append(str(e))

    def open(self, n, parallel=64):
        with ThreadPoolExecutor(parallel) as ex:
            list(ex.map(self.one, range(n)))
        return self

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


def case_start():
    server.write_config(server_config())
    for name in ("open", "locked"):
        rc, out, err = server.cmd("url", name)
        m = hltest.URL_RE.match(out.strip())
        check(rc == 0 and m, "hlcore url %s" % name, "a URL", out + err)
        S[name] = {"pw": m.group(1), "hash": m.group(2)}
    server.start(server_config, lambda c: [ports["tls"]])
    client.start(client_config(client, "proxy"), lambda c: [ports["proxy"]])
    small.start(client_config(small, "small", {"routes": 4}),
                lambda c: [ports["small"]])
    check(client.wait_log(r"descriptors: \d+") is not None,
          "the client's log", "a line 'descriptors: N'", client.log()[-2000:])
    check(server.wait_log(r"limits: \d+ tunnels served") is not None,
          "the server's log", "a line with the limits", server.log()[-2000:])


def case_burst():
    """burst: 300 tunnels 64 at a time, all served"""
    held = Held(ports["proxy"], host("open")).open(300, 64)
    try:
        check(not held.errors, "300 keep-alive tunnels opened 64 at a time "
              "through one client node", "all served",
              "%d failed, e.g. %s" % (len(held.errors), held.errors[:3]))
        ok_page(fetch(ports["proxy"], host("open"), "/new"),
                "a new request while 300 tunnels are held")
    finally:
        held.close()


def case_routes_cap():
    """routes: 4 on the proxy, 40 requests at once"""
    with ThreadPoolExecutor(40) as ex:
        rs = list(ex.map(lambda i: fetch(ports["small"], host("open"),
                                         "/img%d" % i), range(40)))
    bad = [r for r in rs if r.status != 200]
    check(not bad, "40 requests at once through a proxy with limits "
          "routes: 4", "all 200", "%d not: %s" % (len(bad), bad[:2]))


def case_idle_timeout():
    """idle tunnels close, busy ones stay"""
    quiet = socket.create_connection(("127.0.0.1", ports["proxy"]),
                                     timeout=20)
    busy = hltest.connect(ports["proxy"], 20)
    try:
        quiet.sendall(("GET /q HTTP/1.1\r\nHost: %s\r\n\r\n" %
                       host("open")).encode())
        first = quiet.recv(65536)
        check(first.startswith(b"HTTP/1.1 200"), "a first request",
              "200", first[:200])
        t0 = time.monotonic()
        for i in range(6):  # a request every second: never idle for 3 s
            ok_page(fetch(ports["proxy"], host("open"), "/b%d" % i,
                          conn=busy), "request %d on a busy tunnel" % i)
            time.sleep(1)
        quiet.settimeout(t.slow(10))
        closed = False
        try:
            while quiet.recv(65536):
                pass  # the rest of the first answer
            closed = True
        except socket.timeout:
            pass
        check(closed, "a tunnel idle for more than 3 s "
              "(limits idle_timeout: 3)", "closed", "still open after %.1f s"
              % (time.monotonic() - t0))
        check(time.monotonic() - t0 >= 2.5, "when the idle tunnel closed",
              "not before 3 s of silence", "after %.1f s" %
              (time.monotonic() - t0))
    finally:
        quiet.close()
        busy.close()


def case_password_backoff():
    """wrong passwords back off per source"""
    times = []
    for i in range(6):
        r = fetch(ports["proxy"], host("locked", "wrongguess"), "/g%d" % i)
        check(r.status == 502, "wrong password %d" % i, "502", r)
        times.append(r.elapsed)
    check(max(times[:3]) < 1.0, "the first 3 wrong passwords",
          "answered at once", times)
    check(sum(times[3:]) >= 1 + 2 + 4 - 0.5, "wrong passwords 4 to 6",
          "checked 1, 2 and 4 s later (backoff)", times)
    r = fetch(ports["proxy"], host("locked"), "/right", timeout=40)
    ok_page(r, "the right password after the wrong ones")
    check(r.elapsed >= 5, "the right password's check",
          "waits its turn (8 s backoff)", "%.1f s" % r.elapsed)
    lines = re.findall(r"refused: wrong password", server.log())
    check_eq(len(lines), 1, "log lines 'refused: wrong password' for 6 "
             "guesses within a minute")


def case_busy_waits():
    """at a cap the client waits, then 503 busy"""
    server.stop_ok()
    server.start(capped_config, lambda c: [ports["tls"]])
    held = Held(ports["proxy"], host("open")).open(4, 4)
    check(not held.errors, "4 held tunnels (the cap)", "served",
          held.errors)
    result = {}

    def late():
        result["r"] = fetch(ports["proxy"], host("open"), "/late",
                            timeout=40)
    th = threading.Thread(target=late)
    th.start()
    time.sleep(2)
    check("r" not in result, "a 5th request while 4 are held "
          "(tunnels_per_peer: 4)", "waiting for a slot",
          result.get("r"))
    held.socks.pop().close()  # a slot frees
    th.join(t.slow(20))
    ok_page(result.get("r"), "the 5th request once a slot freed")
    check(result["r"].elapsed >= 1.5, "the 5th request", "waited",
          "%.2f s" % result["r"].elapsed)
    held.open(1, 1)  # the cap again
    r = fetch(ports["proxy"], host("open"), "/never", timeout=60)
    check(r.status == 503 and "busy" in r.text and
          "tunnels_per_peer" in r.text, "a request that never gets a slot",
          "503 saying the service is busy and which limit", r)
    check(13 <= r.elapsed <= 30, "how long it waited", "about 15 s",
          "%.1f s" % r.elapsed)
    held.close()
    server.stop_ok()
    server.start(lambda: server_config(new_ports=False),
                 lambda c: [ports["tls"]])


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def case_out_of_descriptors():
    """out of descriptors: no busy loop, serves again"""
    node = t.node("tiny")
    node.nofile = (64, 64)
    node.start(client_config(node, "tiny"), lambda c: [ports["tiny"]])
    before = len(node.log().splitlines())
    socks = []
    try:
        for _ in range(200):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", ports["tiny"]))
            socks.append(s)
        time.sleep(0.5)
        c0, t0 = cpu_ticks(node.pid), time.monotonic()
        time.sleep(3)
        used = (cpu_ticks(node.pid) - c0) / os.sysconf("SC_CLK_TCK") / \
            (time.monotonic() - t0)
        check(used < 0.3, "hlcore's CPU while out of descriptors",
              "well under a core (no busy loop)", "%.0f%%" % (used * 100))
        lines = len(node.log().splitlines()) - before
        check(lines < 100, "its log while out of descriptors",
              "a few lines", "%d lines: %s" % (lines, node.log()[-1500:]))
        check(re.search(r"out of descriptors|connections held, the maximum",
                        node.log()), "its log", "a line saying why it "
              "stopped accepting", node.log()[-1500:])
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + t.slow(10)
    while True:
        r = fetch(ports["tiny"], host("open"), "/again", timeout=20)
        if r.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    ok_page(r, "a request once the connections closed")
    node.stop_ok()


def case_linger():
    # A request with no Host and a large body: the 400 page must arrive
    # whole, not cut by a reset for the unread body.
    """400/431 pages arrive whole"""
    data = b"POST / HTTP/1.1\r\nContent-Length: 300000\r\n\r\n" + \
        b"x" * 300000
    status, text = hltest.raw_request(ports["proxy"], data, timeout=20)
    check(status == 400 and "</html>" in text, "400 with a large body",
          "the whole page", text[:300])
    big = b"GET / HTTP/1.1\r\nX-Big: " + b"y" * 40000 + b"\r\n\r\n"
    status, text = hltest.raw_request(ports["proxy"], big, timeout=20)
    check(status == 431 and "</html>" in text, "431 for a 40 KB head",
          "the whole page", text[:300])


try:
    if t.case("start: the limits are logged", case_start):
        t.cases(
            case_burst, case_routes_cap, case_idle_timeout,
            case_password_backoff, case_busy_waits, case_linger,
            case_out_of_descriptors)
        client.stop_ok()
        small.stop_ok()
        server.stop_ok()
        t.case("the wrong passwords' count is in the log at stop",
               lambda: check(re.search(r"\d+ more wrong passwords? from "
                                       r"127\.0\.0\.1", server.log()),
                             "the server's log after stop",
                             "a line 'N more wrong passwords from "
                             "127.0.0.1'", server.log()[-3000:]))
finally:
    t.finish()
