#!/usr/bin/env python3
"""The SOCKS5 front: `proxy: { socks: true }` on the proxy's own port and
`socks_listen` on a port of its own.

- curl --socks5-hostname reaches a service's HTTP backend by its Hardline
  name, on both ports; plain HTTP keeps working on the shared one;
- a banner-first service speaks through SOCKS before the client does;
- the refusals, each with its RFC 1928 code and the connection closed,
  never a hang: SOCKS4, no acceptable method, BIND, UDP ASSOCIATE, IPv4
  and IPv6 destinations, an unknown address type, a name that is not a
  Hardline service, an unknown keyhash, a wrong password, a malformed
  request, and a client that stops halfway;
- the same against the independent Python server (hardline_peer.py).
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
from hltest import check, check_eq, check_in, closed_within  # noqa: E402
import hardline_peer as hp  # noqa: E402

t = hltest.Test("socks")
backend = t.backend()
UNKNOWN = "fedcba9876543210fedcba9876543210fedcba98"
dead_port = hltest.free_port()
CURL = shutil.which("curl")
banner = hltest.BannerService()  # says its line first
server = t.node("server")
client = t.node("client")
S = {}
ports = {}
PY = {}


def server_config():
    ports["tls"] = hltest.free_port()
    return server.tls_server_config(ports["tls"], {
        "web": {"target": backend.addr},
        "banner": {"target": banner.addr, "password": "none"},
    })


def client_config():
    ports["proxy"] = hltest.free_port()
    ports["socks"] = hltest.free_port()
    real = "127.0.0.1:%d" % ports["tls"]
    peers = {S[n]["hash"]: [real] for n in S}
    peers[UNKNOWN] = [real, "127.0.0.1:%d" % dead_port]
    peers[PY["hash"]] = ["127.0.0.1:%d" % PY["srv"].port]
    cfg = client.tls_client_config(ports["proxy"], peers)
    cfg["proxy"].update(socks=True, socks_listen=hltest.local(ports["socks"]))
    return cfg


def name(svc, pw=None):
    s = S[svc]
    return "%s-%s.localhost" % (s["pw"] if pw is None else pw, s["hash"])


def greet(port, methods=b"\x00"):
    s = socket.create_connection(("127.0.0.1", port), timeout=t.slow(10))
    s.sendall(b"\x05" + bytes([len(methods)]) + methods)
    return s


def recv_n(s, n, timeout):
    s.settimeout(timeout)
    got = b""
    while len(got) < n:
        try:
            d = s.recv(n - len(got))
        except (socket.timeout, ConnectionResetError):
            break
        if not d:
            break
        got += d
    return got


def request(port, cmd, atyp, addr, dport=80, timeout=20):
    """Greet, send a request; returns (method reply, reply, closed after)."""
    s = greet(port)
    try:
        m = recv_n(s, 2, t.slow(10))
        s.sendall(bytes([5, cmd, 0, atyp]) + addr + struct.pack(">H", dport))
        r = recv_n(s, 10, t.slow(timeout))
        return m, r, closed_within(s, t.slow(10))
    finally:
        s.close()


def domain(n):
    b = n.encode()
    return bytes([len(b)]) + b


def curl(port, url, hostname=True):
    return subprocess.run(
        [CURL, "-sS", "--max-time", str(t.slow(20)),
         "--socks5-hostname" if hostname else "--socks5",
         "127.0.0.1:%d" % port, url],
        capture_output=True, timeout=t.slow(30))


def case_setup():
    server.write_config(server_config())
    for n in ("web", "banner"):
        rc, out, err = server.cmd("url", n)
        check(rc == 0, "hlcore url %s" % n, "exit 0", err)
        m = hltest.URL_RE.match(out.strip())
        S[n] = {"pw": m.group(1), "hash": m.group(2)}
    server.start(server_config, lambda c: [ports["tls"]])
    cert, key, pyhash = hp.make_cert(client.dir, "pyservice")
    PY["hash"], PY["pw"] = pyhash, "pythonpw"
    PY["srv"] = hp.Server(
        {pyhash: {"cert": cert, "key": key, "password": PY["pw"],
                  "backend": ("127.0.0.1", backend.port)}}).start()
    hltest.at_cleanup(PY["srv"].stop)
    client.start(client_config, lambda c: [ports["proxy"], ports["socks"]])


def case_curl():
    """curl --socks5-hostname reaches a service"""
    if CURL is None:
        raise hltest.Fail("curl is not installed (scripts/deps.sh build)")
    for what, port in (("the proxy's port", ports["proxy"]),
                       ("socks_listen", ports["socks"])):
        r = curl(port, "http://%s/socks-path" % name("web"))
        out = r.stdout.decode("utf-8", "replace")
        check(r.returncode == 0 and backend.token in out and
              "path=/socks-path" in out,
              "curl --socks5-hostname on %s" % what,
              "the backend's page", "exit %d, out %r, err %r" %
              (r.returncode, out, r.stderr))
    r = hltest.fetch(ports["proxy"], name("web") + ":%d" % ports["proxy"],
                     "/http-still")
    check(r.status == 200 and backend.token in r.text,
          "plain HTTP on the proxy's port with socks: true",
          "the backend's page", r)


def case_banner():
    """a banner-first service through SOCKS"""
    s = greet(ports["socks"])
    try:
        check_eq(recv_n(s, 2, t.slow(10)), b"\x05\x00", "method reply")
        s.sendall(b"\x05\x01\x00\x03" + domain(name("banner")) +
                  b"\x00\x19")
        check_eq(recv_n(s, 10, t.slow(10))[:2], b"\x05\x00", "reply")
        check_eq(recv_n(s, len(banner.line), t.slow(10)), banner.line,
                 "the banner through SOCKS, before sending anything")
    finally:
        s.close()


def case_refusals():
    # SOCKS4: "request rejected or failed" (0x5B), then closed.
    """every other request is refused with its code"""
    s = socket.create_connection(("127.0.0.1", ports["socks"]),
                                 timeout=10)
    s.sendall(b"\x04\x01\x00\x50\x7f\x00\x00\x01user\x00")
    check_eq(recv_n(s, 8, t.slow(10)), b"\x00\x5b" + b"\x00" * 6,
             "the answer to SOCKS4")
    check(closed_within(s, t.slow(10)), "after the SOCKS4 refusal", "closed",
          "open")
    s.close()
    # Only username/password offered: "no acceptable methods".
    s = greet(ports["proxy"], b"\x02")
    check_eq(recv_n(s, 2, t.slow(10)), b"\x05\xff",
             "the answer to a greeting without \"no authentication\"")
    check(closed_within(s, t.slow(10)), "after 05 FF", "closed", "open")
    s.close()
    cases = [
        ("BIND", 2, 3, domain(name("web")), 7),
        ("UDP ASSOCIATE", 3, 3, domain(name("web")), 7),
        ("an IPv4 destination", 1, 1, socket.inet_aton("127.0.0.1"), 8),
        ("an IPv6 destination", 1, 4, socket.inet_pton(socket.AF_INET6,
                                                        "::1"), 8),
        ("a name that is not a Hardline service", 1, 3,
         domain("example.com"), 2),
        ("a Hardline name with a port in it", 1, 3,
         domain(name("web") + ":80"), 2),
        ("an unknown keyhash", 1, 3, domain("-%s.localhost" % UNKNOWN), 4),
        ("a wrong password", 1, 3, domain(name("web", pw="wrongpw")), 5),
        ("an unknown address type", 1, 9, b"", 8),
    ]
    for what, cmd, atyp, addr, code in cases:
        for port in (ports["socks"], ports["proxy"]):
            m, r, gone = request(port, cmd, atyp, addr)
            check(m == b"\x05\x00" and r[:2] == bytes([5, code]) and
                  len(r) == 10 and gone,
                  "SOCKS5 %s on port %d" % (what, port),
                  "05 00, then 05 %02x and the connection closed" % code,
                  "%r, %r, closed=%s" % (m, r, gone))
    # A request with the wrong version: general failure.
    s = greet(ports["socks"])
    recv_n(s, 2, t.slow(10))
    s.sendall(b"\x04\x01\x00\x03" + domain(name("web")) + b"\x00\x50")
    r = recv_n(s, 10, t.slow(10))
    check(r[:2] == b"\x05\x01" and closed_within(s, t.slow(10)),
          "a request with version 4 after a SOCKS5 greeting",
          "05 01 and closed", r)
    s.close()


def case_no_hang():
    # A client that stops halfway is closed within the 10 s deadline.
    """a stalled negotiation does not hang"""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", ports["socks"]), timeout=10)
    s.sendall(b"\x05\x02\x00")  # promises two methods, sends one
    gone = closed_within(s, t.slow(15))
    el = time.monotonic() - t0
    s.close()
    check(gone and el < t.slow(13), "a greeting that stops halfway",
          "closed within about 10 s", "closed=%s after %.1f s" % (gone, el))


def case_curl_refused():
    """curl gets failures, and the daemon lives on"""
    r = curl(ports["socks"], "http://%s/" % name("web", pw="wrongpw"))
    check(r.returncode != 0, "curl through SOCKS with a wrong password",
          "a failure", r)
    r = curl(ports["socks"], "http://-%s.localhost/" % UNKNOWN)
    check(r.returncode != 0, "curl through SOCKS to an unknown keyhash",
          "a failure", r)
    # --socks5 resolves the name itself and sends an address: refused.
    r = curl(ports["socks"], "http://%s/" % name("web"), hostname=False)
    check(r.returncode != 0, "curl --socks5 (an address, not the name)",
          "a failure", r)
    check(client.running(), "the client daemon", "still running",
          "gone")


def case_python():
    """SOCKS to the Python server"""
    r = curl(ports["proxy"], "http://%s-%s.localhost/py" %
             (PY["pw"], PY["hash"]))
    out = r.stdout.decode("utf-8", "replace")
    check(r.returncode == 0 and backend.token in out and "path=/py" in out,
          "curl --socks5-hostname to the Python server",
          "the backend's page", "exit %d, out %r, err %r" %
          (r.returncode, out, r.stderr))
    m, rep, gone = request(ports["socks"], 1, 3,
                           domain("wrongpw-%s.localhost" % PY["hash"]))
    check(rep[:2] == b"\x05\x05" and gone,
          "a wrong password for the Python server", "05 05 and closed",
          rep)


t.case("setup", case_setup)
if t.failed == 0:
    t.cases(
        case_curl, case_banner, case_refusals, case_no_hang, case_curl_refused,
        case_python)
    t.case_stops_cleanly(client, server)
t.finish()
