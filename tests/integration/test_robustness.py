#!/usr/bin/env python3
"""What a careless admin or a hostile peer can do to a running node.

- Turning transport-tls off (admin-web's API) while a request is still
  dialling through it: the browser gets its 502 at once, naming the
  plugin that was turned off, and the node goes on (and exits 0 under
  ASan: nothing freed twice).
- A peer that trickles the TLS handshake, or the OOB line after it, one
  byte every 2 s: each is closed about 10 s after it began, not kept open
  for as long as bytes keep coming.
"""
import http.client
import os
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
from hltest import check, check_eq, check_in  # noqa: E402

t = hltest.Test("robustness")
t.need_built("plugins/admin-web.so")

backend = t.backend()
node = t.node("node")
silent = hltest.SilentListener()
OTHER = "ab" * 20  # a keyhash this node does not serve
ports = {}
S = {}


def make_config():
    return node.admin_config(
        ports, {"wiki": {"target": backend.addr, "password": "none"}},
        peers={OTHER: [hltest.local(silent.port)]})


def api(method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", ports["admin"],
                                      timeout=t.slow(10))
    try:
        h = {"Authorization": "Bearer " + S["token"]}
        if body is not None:
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def case_start():
    node.start(make_config, lambda cfg: [ports["tls"], ports["proxy"],
                                         ports["admin"]])
    S["token"] = node.admin_token()
    rc, out, err = node.cmd("url", "wiki")
    check_eq(rc, 0, "hlcore url wiki")
    url = out.strip()
    S["host"] = url[len("http://"):].rstrip("/")


def case_turn_off_while_dialling():
    got = {}

    def browse():
        got["r"] = hltest.fetch(ports["proxy"],
                                "-%s.localhost:%d" % (OTHER, ports["proxy"]),
                                timeout=t.slow(30))

    th = threading.Thread(target=browse)
    th.start()
    time.sleep(0.7)  # the dial to the silent port is under way
    t0 = time.monotonic()
    status, body = api("POST", "/api/plugins/transport-tls/disable")
    check_eq(status, 200, "disable transport-tls while a dial is running")
    th.join(t.slow(20))
    check("r" in got, "the browser's request", "an answer", "none")
    r = got["r"]
    check_eq(r.status, 502, "the answer to the dialling request")
    check(time.monotonic() - t0 < t.slow(3), "the 502", "at once after "
          "turning the transport off (not at the 10 s handshake timeout)",
          "%.1f s" % (time.monotonic() - t0))
    check_in("transport-tls was turned off", r.text, "the 502 page")
    status, body = api("POST", "/api/plugins/transport-tls/enable")
    check_eq(status, 200, "enable transport-tls again")
    r = hltest.fetch(ports["proxy"], S["host"], "/", timeout=t.slow(20))
    check_eq(r.status, 200, "a fetch of the node's own service after")
    check(node.running(), "hlcore", "still running", "gone")


def trickle(sock, data, every, until):
    """Send data a byte at a time; return when the peer closes (seconds
    since the start), or None if it was still open at `until`."""
    t0 = time.monotonic()
    for b in data:
        if time.monotonic() - t0 > until:
            return None
        try:
            sock.send(bytes([b]))
        except OSError:
            return time.monotonic() - t0
        deadline = time.monotonic() + every
        while time.monotonic() < deadline:
            try:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                if sock.recv(65536) == b"":
                    return time.monotonic() - t0
            except socket.timeout:
                pass
            except (OSError, ssl.SSLError):
                return time.monotonic() - t0
    return None


def case_slow_handshake():
    # A real ClientHello, sent one byte every 2 s.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=node_hash())
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    s = socket.create_connection(("127.0.0.1", ports["tls"]), timeout=5)
    try:
        closed = trickle(s, hello, 2.0, t.slow(30))
    finally:
        s.close()
    check(closed is not None and closed < t.slow(14), "a handshake "
          "trickled a byte every 2 s", "closed about 10 s after it began",
          "still open after %d s" % t.slow(30) if closed is None else
          "closed after %.1f s" % closed)


def case_slow_oob():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", ports["tls"]), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname=node_hash())
    try:
        s.settimeout(5)
        line = s.recv(4096)
        check(line.endswith(b"\n"), "the server's OOB line", "one line",
              line)
        closed = trickle(s, b'{"password":"' + b"a" * 40, 2.0, t.slow(30))
    finally:
        s.close()
    check(closed is not None and closed < t.slow(14), "an OOB line "
          "trickled a byte every 2 s", "closed about 10 s after the "
          "handshake", "still open after %d s" % t.slow(30)
          if closed is None else "closed after %.1f s" % closed)
    check_eq(backend.count(), 1, "backend connections (the one fetch "
             "of the first case, none from the trickling peer)")


def node_hash():
    return S["host"].split("-", 1)[1].split(".", 1)[0]


def case_slow_peers():
    # Both at once, to keep the test short.
    results = {}

    def run(name, fn):
        results[name] = t.case(name, fn)

    ths = [threading.Thread(target=run, args=(n, f)) for n, f in (
        ("a TLS handshake trickled byte by byte is cut at 10 s",
         case_slow_handshake),
        ("an OOB line trickled byte by byte is cut at 10 s", case_slow_oob))]
    for th in ths:
        th.start()
    for th in ths:
        th.join(t.slow(60))


def case_sigterm():
    node.stop_ok()


if t.case("start a node with transport-tls, admin-web and a peer that "
          "never answers", case_start):
    t.case("turning transport-tls off while a dial runs: 502 at once, "
           "the node goes on", case_turn_off_while_dialling)
    case_slow_peers()
    t.case("SIGTERM: exit 0", case_sigterm)
silent.close()
t.finish()
