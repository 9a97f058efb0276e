#!/usr/bin/env python3
"""Backpressure: a 200 MiB download through the tunnel, read very slowly
by the browser side while the backend writes as fast as it can. Neither
hlcore may buffer it: the RSS of both stays within a bound over where it
started, and the backend is held back. Then the rest is read fast and
every byte is checked.

Long quiet stretches must not cut a tunnel either: a reader that stops
for 12 s, and a backend that trickles its answer over 12 s while the
client sends nothing (both once cut at 10 s by a handshake timeout that
libevent kept in the event)."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
from hltest import Fail, check, check_eq  # noqa: E402

SIZE = 200 * 1024 * 1024
SLOW_SECONDS = int(os.environ.get("HLTEST_SLOW_SECONDS", "10"))
SLOW_READ = 64 * 1024
SLOW_SLEEP = 0.2
RSS_BOUND_KIB = 64 * 1024  # over the RSS before the download
PAUSE_SECONDS = 12         # longer than hlcore's 10 s handshake timeouts
SLOW_BACKEND_SECONDS = 12

t = hltest.Test("slow_reader")
backend = t.backend()
server = t.node("server")
client = t.node("client")
# Under ASan, freed memory waits in a quarantine (256 MB by default) before
# it is reused, so RSS would measure the bytes that went through rather
# than the bytes held. A small quarantine keeps RSS about what is held.
for n in (server, client):
    n.asan_extra = "quarantine_size_mb=4"
ports = {}
info = {}


def server_config():
    ports["tls"] = hltest.free_port()
    return server.tls_server_config(
        ports["tls"], {"big": {"target": backend.addr, "password": "none"}})


def client_config():
    ports["proxy"] = hltest.free_port()
    return client.tls_client_config(
        ports["proxy"], {info["hash"]: [hltest.local(ports["tls"])]})


def case_start():
    server.write_config(server_config())
    _, info["hash"] = server.url("big")
    server.start_written(server_config, lambda cfg: [ports["tls"]])
    client.start(client_config, lambda cfg: [ports["proxy"]])
    info["host"] = "-%s.localhost:%d" % (info["hash"], ports["proxy"])
    # Warm up (TLS contexts, first buffers), then take the baseline.
    r = hltest.fetch(ports["proxy"], info["host"], "/warm",
                     timeout=t.slow(20))
    check(r.status == 200 and backend.token in r.text, "warm-up request",
          "200 from the backend", r)
    r = hltest.fetch(ports["proxy"], info["host"], "/big?size=4194304",
                     timeout=t.slow(20))
    check(r.status == 200 and len(r.body) == 4194304, "a 4 MiB warm-up",
          "200 with 4194304 bytes", r)
    time.sleep(0.2)
    info["base"] = {n.name: hltest.rss_kib(n.pid) for n in (server, client)}
    print("   baseline RSS: %s KiB" % info["base"])


def read_head(sock):
    data = b""
    deadline = time.monotonic() + t.slow(20)
    while b"\r\n\r\n" not in data:
        if time.monotonic() > deadline or len(data) > 65536:
            raise Fail("no response head within %d s: %r" %
                       (t.slow(20), data[:500]))
        chunk = sock.recv(4096)
        if not chunk:
            raise Fail("connection closed before the response head: %r" %
                       data[:500])
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def get_big(size):
    """GET /big?size=SIZE through the client's proxy, on a socket with a
    small receive buffer (so the kernel soaks up little of the body):
    (socket, response head, the body bytes read with it)."""
    sock = socket.create_connection(("127.0.0.1", ports["proxy"]),
                                    timeout=t.slow(20))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        sock.sendall(("GET /big?size=%d HTTP/1.1\r\nHost: %s\r\n"
                      "Connection: close\r\n\r\n" %
                      (size, info["host"])).encode())
        head, rest = read_head(sock)
    except BaseException:
        sock.close()
        raise
    return sock, head, rest


def case_slow_then_fast():
    sock, head, rest = get_big(SIZE)
    try:
        check(head.startswith("HTTP/1.1 200") and
              ("Content-Length: %d" % SIZE) in head,
              "the response head", "200 with Content-Length %d" % SIZE,
              head)
        chk = hltest.PatternChecker()
        chk.feed(rest)
        peak = {n.name: 0 for n in (server, client)}
        samples = 0
        t_end = time.monotonic() + SLOW_SECONDS
        while time.monotonic() < t_end:
            got = b""
            while len(got) < SLOW_READ:
                chunk = sock.recv(SLOW_READ - len(got))
                if not chunk:
                    raise Fail("the download ended after %d bytes during "
                               "the slow phase" % (chk.offset + len(got)))
                got += chunk
            chk.feed(got)
            for n in (server, client):
                r = hltest.rss_kib(n.pid)
                check(r is not None, "hlcore %s" % n.name, "running",
                      "gone; log:\n%s" % n.log()[-3000:])
                peak[n.name] = max(peak[n.name], r)
            samples += 1
            time.sleep(SLOW_SLEEP)
        slow_read = chk.offset
        with backend.lock:
            sent = backend.big_sent
        print("   slow phase: read %.1f MiB in %d s, backend sent %.1f MiB, "
              "peak RSS %s KiB (%d samples)" %
              (slow_read / 1048576, SLOW_SECONDS, sent / 1048576, peak,
               samples))
        for n in (server, client):
            grew = peak[n.name] - info["base"][n.name]
            check(grew < RSS_BOUND_KIB,
                  "RSS growth of hlcore %s while the reader is slow" %
                  n.name, "under %d KiB" % RSS_BOUND_KIB,
                  "%d KiB (baseline %d, peak %d)" %
                  (grew, info["base"][n.name], peak[n.name]))
        # What the backend got rid of sits in kernel buffers and the two
        # daemons; far less than the whole body.
        check(sent < slow_read + 96 * 1024 * 1024,
              "bytes the backend could send while the reader was slow",
              "under %d (read so far + 96 MiB)" % (slow_read + 96 * 1048576),
              sent)

        # Now fast, to the end.
        sock.settimeout(t.slow(30))
        deadline = time.monotonic() + t.slow(60)
        while chk.offset < SIZE:
            if time.monotonic() > deadline:
                raise Fail("fast phase: only %d of %d bytes within %d s" %
                           (chk.offset, SIZE, t.slow(60)))
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            chk.feed(chunk)
        # Connection: close: the end of the body is the end of the stream.
        extra = b""
        sock.settimeout(t.slow(10))
        try:
            while len(extra) < 1 << 20:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                extra += chunk
        except socket.timeout:
            pass
        chk.feed(extra)
        check_eq(chk.offset, SIZE, "bytes received in all")
        check(chk.bad_at is None, "the body", "the backend's bytes, in order",
              "a difference at offset %s" % chk.bad_at)
    finally:
        sock.close()


def case_paused_reader():
    # A reader that stops altogether for longer than any of hlcore's
    # handshake timeouts (10 s), then goes on: nothing is cut, nothing
    # piles up.
    size = 32 * 1024 * 1024
    sock, head, rest = get_big(size)
    try:
        check(head.startswith("HTTP/1.1 200"), "the response head", "200",
              head)
        chk = hltest.PatternChecker()
        chk.feed(rest)
        while chk.offset < 1024 * 1024:
            chunk = sock.recv(65536)
            if not chunk:
                raise Fail("the download ended after %d bytes" % chk.offset)
            chk.feed(chunk)
        base = {n.name: hltest.rss_kib(n.pid) for n in (server, client)}
        peak = dict(base)
        t_end = time.monotonic() + PAUSE_SECONDS
        while time.monotonic() < t_end:
            for n in (server, client):
                peak[n.name] = max(peak[n.name], hltest.rss_kib(n.pid) or 0)
            time.sleep(0.5)
        print("   pause: RSS %s KiB -> peak %s KiB" % (base, peak))
        for n in (server, client):
            grew = peak[n.name] - base[n.name]
            check(grew < RSS_BOUND_KIB,
                  "RSS growth of hlcore %s while the reader is stopped" %
                  n.name, "under %d KiB" % RSS_BOUND_KIB,
                  "%d KiB (from %d)" % (grew, base[n.name]))
        sock.settimeout(t.slow(30))
        deadline = time.monotonic() + t.slow(30)
        while time.monotonic() < deadline:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            chk.feed(chunk)
        check_eq(chk.offset, size, "bytes received after a %d s pause" %
                 PAUSE_SECONDS)
        check(chk.bad_at is None, "the body", "the backend's bytes",
              "a difference at offset %s" % chk.bad_at)
    finally:
        sock.close()


def case_slow_backend():
    # The other way round: a backend that trickles its answer for longer
    # than 10 s while the client, having sent its request, says nothing.
    n = SLOW_BACKEND_SECONDS + 1
    r = hltest.fetch(ports["proxy"], info["host"],
                     "/big?size=%d&chunk=65536&delay=1" % (n * 65536),
                     timeout=t.slow(30))
    check(r.status == 200 and len(r.body) == n * 65536,
          "a %d s trickle from the backend" % n,
          "200 with %d bytes" % (n * 65536), r)
    check(r.body == hltest.pattern(0, n * 65536), "the trickled body",
          "the backend's bytes", "different bytes")


def case_stop():
    client.stop_ok()
    server.stop_ok()


if t.case("start two nodes, warm up", case_start):
    t.case("slow reader: RSS bounded, then every byte arrives",
           case_slow_then_fast)
    t.case("a reader stopped for %d s: nothing cut, RSS bounded" %
           PAUSE_SECONDS, case_paused_reader)
    t.case("a backend trickling for %d s: nothing cut" %
           SLOW_BACKEND_SECONDS, case_slow_backend)
    t.case("SIGTERM: both exit 0", case_stop)
t.finish()
