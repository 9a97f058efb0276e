#!/usr/bin/env python3
"""End to end through two hlcore processes and a real HTTP backend.

A server node serves services (password auto, none, fixed; one whose
backend is down) on its transport-tls listener; a client node runs the
proxy with `peers:` pointing at that listener. Every check goes through the
client's proxy, as a browser would.
"""
import hashlib
import os
import re
import socket
import stat
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
from hltest import check, check_eq, check_in, fetch  # noqa: E402

t = hltest.Test("tunnel")
backend = t.backend()
dead_port = hltest.free_port()          # nothing listens here
silent = hltest.SilentListener()         # accepts TCP, never speaks TLS
half = hltest.HalfCloseService()
FIXED_PW = "s3cretpw"
UNKNOWN_LISTED = "0123456789abcdef0123456789abcdef01234567"
UNKNOWN_NOWHERE = "fedcba9876543210fedcba9876543210fedcba98"
UNKNOWN_SILENT = "00112233445566778899aabbccddeeff00112233"

server = t.node("server")
client = t.node("client")
S = {}  # service name -> {"pw", "hash", "url"}
ports = {}


def server_config():
    hltest.fresh_ports(ports, "tls", "sproxy")
    return server.tls_server_config(ports["tls"], {
        "auto": {"target": backend.addr, "title": "auto password"},
        "open": {"target": backend.addr, "password": "none"},
        "fixed": {"target": backend.addr, "password": FIXED_PW},
        "down": {"target": hltest.local(dead_port), "password": "none"},
        "stagger": {"target": backend.addr, "password": "none"},
        "half": {"target": half.addr, "password": "none"},
    }, proxy=ports["sproxy"], log={"level": "debug"})


def client_config():
    ports["proxy"] = hltest.free_port()
    real = "127.0.0.1:%d" % ports["tls"]
    dead = "127.0.0.1:%d" % dead_port
    peers = {S[n]["hash"]: [real]
             for n in ("auto", "open", "fixed", "down", "half")}
    # A closed port and a port that never answers TLS come first: the
    # router must move on at once from the first and after ~250 ms from
    # the second (the stagger), not after a 10 s handshake timeout.
    peers[S["stagger"]["hash"]] = [dead, "127.0.0.1:%d" % silent.port, real]
    # A keyhash nobody serves, at the real node and at a closed port.
    peers[UNKNOWN_LISTED] = [real, dead]
    # Only the silent port: a route still dialling when SIGTERM comes.
    peers[UNKNOWN_SILENT] = ["127.0.0.1:%d" % silent.port]
    ports["fhalf"] = hltest.free_port()
    return client.tls_client_config(ports["proxy"], peers, forwards=[
        {"listen": "127.0.0.1:%d" % ports["fhalf"],
         "to": "-" + S["half"]["hash"]}])


def host(name, pw=None, port=None):
    """The Host header of a service, with its own password by default."""
    s = S[name]
    return "%s-%s.localhost:%d" % (s["pw"] if pw is None else pw, s["hash"],
                                   port or ports["proxy"])


def expect_page(r, name, path):
    check(r.status == 200 and backend.token in r.text and
          ("path=%s\n" % path) in r.text,
          "GET %s of service %s through the tunnel" % (path, name),
          "200 with the backend's page (token %s, path %s)" %
          (backend.token, path), r)


# ---- identities and URLs, before the daemons run ----

def case_url():
    # The url command needs the final config: ports first.
    server.write_config(server_config())
    for name in ("auto", "open", "fixed", "down", "stagger", "half"):
        rc, out, err = server.cmd("url", name)
        check(rc == 0, "hlcore url %s" % name, "exit 0", "exit %d: %s" %
              (rc, err))
        url = out.strip()
        m = hltest.URL_RE.match(url)
        check(m is not None, "url %s" % name,
              "http://<pw>-<40 hex>.localhost:<port>/", repr(out))
        check_eq(int(m.group(3)), ports["sproxy"],
                 "the port in the URL of %s (the proxy's)" % name)
        S[name] = {"pw": m.group(1), "hash": m.group(2), "url": url}
    check(re.fullmatch(r"[a-z2-7]{13}", S["auto"]["pw"]) is not None,
          "the generated password", "13 characters of [a-z2-7]",
          S["auto"]["pw"])
    check_eq(S["open"]["pw"], "", "the password of a password: none service")
    check_eq(S["fixed"]["pw"], FIXED_PW, "the fixed password")
    hashes = {s["hash"] for s in S.values()}
    check_eq(len(hashes), 6, "distinct keyhashes for 6 services")
    rc, out, err = server.cmd("url", "auto")
    check_eq(out.strip(), S["auto"]["url"], "the URL the second time")
    rc, out, err = server.cmd("url", "nosuch")
    check(rc == 2 and "nosuch" in err, "url of an unknown service",
          "exit 2 naming it", "exit %d: %s" % (rc, err))


def case_modes():
    sd = server.state_dir
    mode = stat.S_IMODE(os.stat(sd).st_mode)
    check_eq(oct(mode), oct(0o700), "mode of state_dir %s" % sd)
    for name in ("auto", "open", "fixed"):
        key = os.path.join(sd, "%s.cert.private" % name)
        check(os.path.isfile(key), "key file", key, "no such file: %s" %
              sorted(os.listdir(sd)))
        mode = stat.S_IMODE(os.stat(key).st_mode)
        check_eq(oct(mode), oct(0o600), "mode of %s" % key)
        check(os.path.isfile(os.path.join(sd, "%s.cert" % name)),
              "certificate file", "%s.cert" % name, sorted(os.listdir(sd)))
    cert = os.path.join(sd, "auto.cert")
    with open(cert) as f:
        check_in("BEGIN CERTIFICATE", f.read(), "the certificate (PEM)")


def start_nodes():
    # The server's ports were chosen by case_url; a retry picks new ones
    # (the keyhashes stay: they live in state_dir).
    server.start_written(server_config,
                         lambda cfg: [ports["tls"], ports["sproxy"]])
    client.start(client_config, lambda cfg: [ports["proxy"]])


def case_same_identity():
    # The log names the service by its keyhash, never its password.
    url = S["auto"]["url"]
    pw, rest = url[len("http://"):].split("-", 1)
    want = "http://<password>-" + rest
    m = server.wait_log(r"serving auto .* at (\S+)")
    check(m is not None and m.group(1) == want,
          "the URL the running daemon logs for auto", want,
          m.group(0) if m else server.log()[-2000:])
    check(pw not in server.log(), "the daemon's log",
          "no trace of the password", "the password %r" % pw)


# ---- through the tunnel ----

def case_fetch(name, path):
    r = fetch(ports["proxy"], host(name), path, timeout=t.slow(20))
    expect_page(r, name, path)
    check_in("host=%s" % host(name), r.text,
             "the Host header as the backend saw it")


def case_hash_any_case():
    """hash in any case, www. prefix"""
    s = S["open"]
    h = "-%s.LOCALHOST:%d" % (s["hash"].upper(), ports["proxy"])
    r = fetch(ports["proxy"], h, "/upper", timeout=t.slow(20))
    expect_page(r, "open (upper-case hash)", "/upper")
    h = "www.%s-%s.localhost:%d" % (S["fixed"]["pw"], S["fixed"]["hash"],
                                    ports["proxy"])
    r = fetch(ports["proxy"], h, "/www", timeout=t.slow(20))
    expect_page(r, "fixed (www. before the label)", "/www")


def refused(name, pw, what):
    hltest.check_refused(ports["proxy"], host(name, pw=pw), backend, what,
                         wait=t.slow(20))


def case_wrong_password():
    """wrong password: 502, backend untouched"""
    refused("auto", "wrongpassword", "a wrong password")
    check(server.wait_log(r"auto: tunnel from .* refused: wrong password")
          is not None, "the server's log", "a line 'refused: wrong password'",
          server.log()[-2000:])


def case_missing_password():
    """missing password: 502, backend untouched"""
    refused("auto", "", "a missing password")
    refused("fixed", "", "a missing fixed password")
    check(server.wait_log(r"refused: missing password") is not None,
          "the server's log", "a line 'refused: missing password'",
          server.log()[-2000:])


def case_backend_down():
    """backend down: 502 'closed the tunnel'"""
    r = fetch(ports["proxy"], host("down"), "/", timeout=t.slow(30))
    check(r.status == 502, "a service whose backend is down", "HTTP 502", r)
    check_in("closed the tunnel", r.text, "the 502 page (backend down)")
    check(server.wait_log(r"down: backend 127\.0\.0\.1:%d is not answering"
                          % dead_port) is not None,
          "the server's log", "a line saying the backend is not answering",
          server.log()[-2000:])


def case_keep_alive():
    """keep-alive: several requests on one connection"""
    before = backend.count()
    conn = hltest.connect(ports["proxy"], timeout=t.slow(20))
    try:
        for i in range(3):
            r = fetch(ports["proxy"], host("auto"), "/ka%d" % i, conn=conn)
            expect_page(r, "auto (request %d on one connection)" % (i + 1),
                        "/ka%d" % i)
        body = os.urandom(300000)
        r = fetch(ports["proxy"], host("auto"), "/post", method="POST",
                  body=body, conn=conn)
        check_in("posted=%d sha256=%s" % (len(body),
                                          hashlib.sha256(body).hexdigest()),
                 r.text, "a 300 kB POST after them on the same connection")
    finally:
        conn.close()
    check_eq(backend.count() - before, 1,
             "backend connections for 4 keep-alive requests")


def case_not_hardline():
    """not a Hardline Host: 400 with an explanation"""
    for h in ("example.com", "localhost:%d" % ports["proxy"],
              "nohash.localhost", "pw-1234.localhost",
              "pw-%s.example.com" % S["open"]["hash"]):
        r = fetch(ports["proxy"], h, "/", timeout=t.slow(10))
        check(r.status == 400, "Host %r" % h, "HTTP 400", r)
        check_in("not a Hardline", r.text, "the 400 page for Host %r" % h)
        check_in("&lt;password&gt;-&lt;keyhash&gt;.localhost", r.text,
                 "the 400 page's explanation")
    st, text = hltest.raw_request(ports["proxy"],
                                  b"GET / HTTP/1.1\r\nX-No: host\r\n\r\n",
                                  timeout=t.slow(10))
    check(st == 400, "a request without a Host", "HTTP 400", text)


def case_head_too_large():
    """request head over 16 KiB: 431"""
    head = ("GET / HTTP/1.1\r\nHost: %s\r\n" % host("open")).encode()
    head += b"X-Filler: " + b"a" * (17 * 1024) + b"\r\n\r\n"
    before = backend.count()
    st, text = hltest.raw_request(ports["proxy"], head, timeout=t.slow(10))
    check(st == 431, "a 17 KiB request head", "HTTP 431", text)
    check_eq(backend.count() - before, 0,
             "backend connections caused by a too large head")


def case_unknown_keyhash():
    """unknown keyhash: 502 listing the attempts"""
    h = "-%s.localhost:%d" % (UNKNOWN_LISTED, ports["proxy"])
    r = fetch(ports["proxy"], h, "/", timeout=t.slow(30))
    check(r.status == 502, "a keyhash no node serves", "HTTP 502", r)
    for want in (UNKNOWN_LISTED, "127.0.0.1:%d via transport-tls" %
                 ports["tls"], "127.0.0.1:%d via transport-tls" % dead_port,
                 "peers:"):
        check_in(want, r.text, "the 502 page listing what was tried")
    h = "-%s.localhost:%d" % (UNKNOWN_NOWHERE, ports["proxy"])
    r = fetch(ports["proxy"], h, "/", timeout=t.slow(30))
    check(r.status == 502, "a keyhash with no known address", "HTTP 502", r)
    check_in("No address is known", r.text,
             "the 502 page for a keyhash with no address")


def case_stagger():
    """dead candidates first: still works, fast"""
    r = fetch(ports["proxy"], host("stagger"), "/stagger",
              timeout=t.slow(30))
    expect_page(r, "stagger (dead and silent candidates first)", "/stagger")
    limit = t.slow(3)
    check(r.elapsed < limit, "time to the page past a dead and a silent "
          "candidate", "under %d s (the 250 ms stagger, not the 10 s "
          "handshake timeout)" % limit, "%.2f s" % r.elapsed)


def case_self_route():
    # The server node's own proxy reaches its own service over its own
    # listener (the same path as from any other node).
    """a node reaches its own service"""
    r = fetch(ports["sproxy"], host("fixed", port=ports["sproxy"]), "/self",
              timeout=t.slow(20))
    expect_page(r, "fixed through the serving node's own proxy", "/self")


def case_half_close():
    """half-close both ways over TLS, through a forward"""
    hltest.check_half_close(half, ports["fhalf"], timeout=t.slow(20))
    # A browser that leaves ends the tunnel on both nodes (a TCP close
    # without close_notify, not a half-close).
    hltest.check_browser_left(half, ports["proxy"], host("half"), server,
                              "half", timeout=t.slow(20))


def case_sigterm_busy():
    # SIGTERM while the daemons hold every kind of connection: an idle
    # keep-alive tunnel, a download under way, a request head half sent,
    # a route still dialling. Both must exit 0 at once, without leaks.
    """SIGTERM with connections open: both exit 0"""
    held = []
    try:
        conn = hltest.connect(ports["proxy"], timeout=t.slow(20))
        held.append(conn)
        expect_page(fetch(ports["proxy"], host("auto"), "/idle", conn=conn),
                    "auto (kept open)", "/idle")
        dl = socket.create_connection(("127.0.0.1", ports["proxy"]),
                                      timeout=t.slow(20))
        held.append(dl)
        dl.sendall(("GET /big?size=%d HTTP/1.1\r\nHost: %s\r\n\r\n" %
                    (64 << 20, host("open"))).encode())
        check(dl.recv(65536).startswith(b"HTTP/1.1 200"), "a download",
              "started", "no answer")
        half = socket.create_connection(("127.0.0.1", ports["proxy"]),
                                        timeout=t.slow(20))
        held.append(half)
        half.sendall(b"GET / HTTP/1.1\r\nHost: ")
        dialling = socket.create_connection(("127.0.0.1", ports["proxy"]),
                                            timeout=t.slow(20))
        held.append(dialling)
        dialling.sendall(("GET / HTTP/1.1\r\nHost: -%s.localhost\r\n\r\n"
                          % UNKNOWN_SILENT).encode())
        time.sleep(0.5)
        t0 = time.monotonic()
        client.stop_ok()
        server.stop_ok()
        took = time.monotonic() - t0
        check(took < t.slow(5), "the time both took to stop",
              "under %d s" % t.slow(5), "%.1f s" % took)
    finally:
        for h in held:
            h.close()


try:
    if t.case("url: format, password modes, stable", case_url):
        t.case("key file 0600, state_dir 0700", case_modes)
        if t.case("both nodes start", start_nodes):
            t.case("the daemon uses the identity url created",
                   case_same_identity)
            t.case("fetch, password auto", case_fetch, "auto", "/")
            t.case("fetch, password none", case_fetch, "open", "/a/b?c=d")
            t.case("fetch, password fixed", case_fetch, "fixed", "/fixed")
            t.cases(
                case_hash_any_case, case_wrong_password, case_missing_password,
                case_backend_down, case_keep_alive, case_not_hardline,
                case_head_too_large, case_unknown_keyhash, case_stagger,
                case_self_route, case_half_close, case_sigterm_busy)
finally:
    silent.close()
t.finish()
