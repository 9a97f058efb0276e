#!/usr/bin/env python3
"""transport-udp's TURN client (plugins/transport-udp/turn.c, driven by
turn-probe) against a real coturn, through real symmetric NATs: LAB.md's
"two homes" built by netlab.homes_lab("symmetric", "symmetric").

      hub host: coturn 11.0.0.1:3478 (8 s allocations, 10 s permissions,
                nonces stale after 4 s), a stranger at 11.0.0.4
          |  11.0.0.0/24 (bridge)
      r1 11.0.0.2 (NAT, symmetric)   r2 11.0.0.3 (NAT, symmetric)
          |                              |
      h1 10.1.0.2: a plain UDP socket  h2 10.2.0.2: turn-probe

- wrong credentials, and a server that does not answer, give the
  sentences the 502 page shows;
- turn-probe in h2 allocates through r2 (coturn saw it at r2's address),
  permits h1's public address (r1) only, and echoes what it receives:
  a plain socket in h1 sends to the relayed address and gets the echo
  back from it (Send and Data indications both ways through the relay);
- the relay forwards nothing from an address without a permission (the
  hub host's second address): the probe never sees it;
- with coturn's allocations cut to 8 s, permissions to 10 s and nonces
  stale after 4 s, the probe's Refresh (at half the lifetime; coturn
  then grants 600 s, its minimum for a Refresh) and its permission
  refreshes every 3 s, through 438 stale nonces, keep the relay working
  after 20 s, while a second probe that does not refresh loses its
  allocation at 8 s (coturn's log) and h1's datagrams to it go
  unanswered;
- closing sends Refresh with lifetime 0: coturn frees the allocation at
  once (its log; the allocation had 600 s left), and the probe saw the
  answer (a 438 on the way is answered with the new nonce: test-turn).
"""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
import netlab  # noqa: E402
from hltest import check, check_eq, check_in  # noqa: E402

t = hltest.Test("turn", root=True,
                needs=["ip", "iptables-legacy", "turnserver"])
t.need_built(os.path.join("tests", "turn-probe"),
             hint=" (HL_TESTS=ON builds it)")
PROBE = os.path.join(t.build_dir, "tests", "turn-probe")
LIFETIME = 8
PERM_LIFETIME = 10
SERVER = "%s:3478" % netlab.HUB_IP
S = {}


def coturn(L):
    """coturn in the hub host (LAB.md's options) with short allocations,
    permissions and nonces (--max-allocate-lifetime, --permission-lifetime,
    --stale-nonce: coturn 4.6 takes these only in the --opt=value
    form)."""
    p = L.spawn("hub", [
        "turnserver", "-n", "--listening-ip", netlab.HUB_IP,
        "--listening-port", "3478", "--relay-ip", netlab.HUB_IP,
        "--lt-cred-mech", "--user", "u:p", "--realm", "hardline",
        "--no-tls", "--no-dtls", "--no-cli", "--simple-log", "--log-file",
        "stdout", "--verbose", "--min-port", "49152", "--max-port", "49200",
        "--permission-lifetime=%d" % PERM_LIFETIME, "--stale-nonce=4",
        "--max-allocate-lifetime=%d" % LIFETIME,
        "--pidfile", os.path.join(L.tmp, "coturn.pid")], log="coturn")
    hltest.wait_for(lambda: L.port_open("hub", netlab.HUB_IP, 3478), 20,
                    "coturn listening on %s" % SERVER, step=0.1)
    return p


def probe(L, name, port, *args, creds="u:p", server=SERVER):
    """turn-probe in h2 from UDP port `port`, its output in <name>.log."""
    return L.spawn("h2", [PROBE, "--bind", "%s:%d" % (L.home_ip("h2"),
                                                      port),
                          "--server", "turn://%s@%s" % (creds, server)] +
                   list(args), log=name)


def wait_line(L, name, regex, timeout=10):
    def seen():
        return re.search(regex, L.log_of(name), re.M)
    return hltest.wait_for(seen, t.slow(timeout), "%s: /%s/" % (name, regex),
                           step=0.05)


def ask(sock, dst, text, timeout=1.5):
    """Send text to dst from sock; the answers (data, source) that come
    within timeout."""
    sock.sendto(text, dst)
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.05, end - time.monotonic()))
        try:
            got.append(sock.recvfrom(2048))
        except socket.timeout:
            break
    return got


def case_build():
    """lab: two homes behind symmetric NATs, coturn in the hub host"""
    L = S["L"] = netlab.homes_lab("symmetric", "symmetric")
    S["coturn"] = coturn(L)


def case_wrong_credentials():
    """wrong credentials: "allocation refused: 401 wrong credentials\""""
    L = S["L"]
    p = probe(L, "wrong", 5003, "--run", "5", creds="u:wrong")
    rc = p.wait(timeout=t.slow(15))
    out = L.log_of("wrong")
    check_eq(rc, 1, "turn-probe's exit with a wrong password")
    check_in('error: allocation refused: 401 wrong credentials (user "u", '
             'realm "hardline")', out, "turn-probe's output")


def case_silent_server():
    """a silent server: "no answer from the TURN server within N s\""""
    L = S["L"]
    # Nothing listens on 3479; RTO 100 ms, 3 requests: 0.1 + 0.2 + 16 *
    # 0.1 s.
    p = probe(L, "silent", 5004, "--rto", "100", "--rc", "3",
              server="%s:3479" % netlab.HUB_IP)
    rc = p.wait(timeout=t.slow(15))
    check_eq(rc, 1, "turn-probe's exit with no server")
    check_in("error: no answer from the TURN server %s:3479 within 2 s" %
             netlab.HUB_IP, L.log_of("silent"), "turn-probe's output")


def case_allocate_and_relay():
    """allocation through r2, permission for h1 only, datagrams relayed"""
    L = S["L"]
    S["pa"] = probe(L, "probe", 5001, "--permit", L.router_ip("h1"),
                    "--echo", "--run", "30", "--perm-refresh", "3",
                    "--lifetime", str(LIFETIME))
    S["pb"] = probe(L, "noref", 5002, "--permit", L.router_ip("h1"),
                    "--echo", "--run", "30", "--no-refresh",
                    "--lifetime", str(LIFETIME))
    for name in ("probe", "noref"):
        m = wait_line(L, name, r"^allocated relayed=(\S+):(\d+) "
                      r"mapped=(\S+):(\d+) lifetime=(\d+)$")
        check_eq(m.group(1), netlab.HUB_IP, "%s: the relayed address" % name)
        check_eq(m.group(3), L.router_ip("h2"),
                 "%s: h2 as coturn saw it (r2's public address)" % name)
        check_eq(int(m.group(5)), LIFETIME, "%s: the lifetime coturn "
                 "granted" % name)
        S[name] = (m.group(1), int(m.group(2)))
        S["mapped_" + name] = m.group(4)
        wait_line(L, name, r"^permitted %s:0$" % L.router_ip("h1"))
        print("     %s: %s" % (name, m.group(0)), flush=True)
    S["t_alloc"] = time.monotonic()
    with L.inside("h1"):
        S["h1"] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        S["h1"].bind((L.home_ip("h1"), 6000))
    for name in ("probe", "noref"):
        got = ask(S["h1"], S[name], b"hello " + name.encode())
        check_eq(got, [(b"echo hello " + name.encode(), S[name])],
                 "h1's answer from %s through the relay" % name)
        m = wait_line(L, name, r"^data from (\S+):(\d+) len=\d+: hello")
        check_eq(m.group(1), L.router_ip("h1"),
                 "%s: the peer as the relay saw it (r1)" % name)


def case_not_permitted():
    """the relay forwards nothing from an address without a permission"""
    L = S["L"]
    with L.inside("hub"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((netlab.HUB_IP2, 0))
    try:
        got = ask(s, S["probe"], b"stranger", timeout=1.0)
    finally:
        s.close()
    check_eq(got, [], "answers to the stranger at %s" % netlab.HUB_IP2)
    check("stranger" not in L.log_of("probe"), "turn-probe's output",
          "no datagram from %s" % netlab.HUB_IP2, L.log_of("probe"))


def case_refresh():
    """refreshes keep the 8 s allocation alive; without them it ends"""
    L = S["L"]
    wait = S["t_alloc"] + 2 * PERM_LIFETIME - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    got = ask(S["h1"], S["probe"], b"still there")
    check_eq(got, [(b"echo still there", S["probe"])],
             "h1's answer through the refreshed allocation after %d s" %
             (2 * PERM_LIFETIME))
    m = re.findall(r"^refreshed lifetime=(\d+) count=(\d+)$",
                   L.log_of("probe"), re.M)
    # The first Refresh comes at half the 8 s; coturn answers it with 600 s
    # (its minimum: --max-allocate-lifetime clamps only the Allocate), so
    # one is all this test sees.
    check(len(m) >= 1, "turn-probe's refreshes", "at least one", m)
    got = ask(S["h1"], S["noref"], b"still there")
    check_eq(got, [], "answers from the probe that did not refresh")
    log = L.log_of("coturn")
    check(re.search(r"closed \(2nd stage\).*remote %s:%s, reason: "
                    r"allocation timeout" % (L.router_ip("h2"),
                                             S["mapped_noref"]), log),
          "coturn's log", "the allocation without refreshes timed out",
          log[-3000:])
    check(re.search(r"438: Stale nonce", log), "coturn's log",
          "stale nonces answered (and got through)", log[-3000:])


def case_close():
    """close: Refresh with lifetime 0 frees the allocation at once"""
    L = S["L"]
    before = L.log_of("coturn").count("closed (2nd stage)")
    rc = S["pa"].wait(timeout=t.slow(40))
    check_eq(rc, 0, "turn-probe's exit")
    check(re.search(r"^closed$", L.log_of("probe"), re.M),
          "turn-probe's output", "closed (Refresh 0 answered)",
          L.log_of("probe"))
    # Freed by the Refresh 0, not at the end of the 8 s lifetime (the
    # last refresh came less than 4 s before).
    hltest.wait_for(lambda: L.log_of("coturn").count("closed (2nd stage)") >
                    before, t.slow(1.5), "coturn: the session closed")
    got = ask(S["h1"], S["probe"], b"after close", timeout=0.5)
    check_eq(got, [], "answers after close")


def case_teardown():
    """lab down"""
    L = S["L"]
    if "h1" in S:
        S["h1"].close()
    for k in ("pa", "pb", "coturn"):
        if k in S:
            L.stop(S[k])
    L.destroy()


t.cases(case_build, case_wrong_credentials, case_silent_server,
        case_allocate_and_relay,
        case_not_permitted, case_refresh, case_close, case_teardown)
t.finish()
