#!/usr/bin/env python3
"""The hub through real NATs: LAB.md's "two homes behind NATs" built by
netlab.homes_lab(), two hlcore hubs in the hub host, coturn beside them,
and hubpeer.py (the client side written from docs/protocol.md) in the
homes.

      hub host: hub A 0.0.0.0:7777 (11.0.0.1), hub B 11.0.0.4:7778, coturn 11.0.0.1:3478
          |  11.0.0.0/24 (bridge)
      r1 11.0.0.2 (NAT)            r2 11.0.0.3 (NAT)
          |                            |
      h1 10.1.0.2                  h2 10.2.0.2

Lab 1, r1 "cone" and r2 "symmetric":
- both homes register (from UDP port 5000) through their NATs; the hub's
  REGISTERED and its log give each home's public (router) address: r1
  keeps port 5000, r2 picks another;
- a lookup from h2 returns h1's public address and candidates, and h1
  gets h2's in an INTRO, through its NAT;
- STUN answers of hub A and hub B, from the same socket: behind the cone
  NAT the same mapped port for both destinations, behind the symmetric
  one two different ports;
- the status request is answered over the hub host's loopback only;
- coturn runs in the hub host and answers STUN there; a TURN allocation
  from behind the symmetric NAT works (turnutils_uclient);
- hub-probe (hubclient.c, the node's side in C that transport-udp
  reuses) asks hub A and coturn: "cone" in h1, "symmetric" in h2, and
  registers the vector key from h2 at the mapping hub A's STUN named;
- a simultaneous exchange of datagrams between the homes' public
  addresses from the hub's answers does not get through (symmetric NAT),
  as the router counters show.
Lab 2, both "cone": the same exchange gets through in both directions,
and each router's counters show datagrams forwarded from the other
router's address (a direct path, not via the hub host); with the hubs
stopped it still does.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
import hubpeer  # noqa: E402
import netlab  # noqa: E402
from hltest import check, check_eq, check_in  # noqa: E402
from hubpeer import Key, Peer  # noqa: E402

t = hltest.Test("hub_nat", root=True,
                needs=["ip", "iptables-legacy", "turnserver",
                       "turnutils_uclient"])
try:
    import cryptography  # noqa: F401
except ImportError:
    hltest.skip("needs python3-cryptography")

HUB_A = (netlab.HUB_IP, 7777)
HUB_B = (netlab.HUB_IP2, 7778)
PORT = 5000
S = {}


def start_hubs(L):
    nodes = []
    for name, listen in (("hubA", "0.0.0.0:7777"),
                         ("hubB", "%s:%d" % HUB_B)):
        n = t.node("%s-%s" % (name, L.tag), ns=L.ns("hub"))
        n.configure({"proxy": {"listen": "off"},
                     "plugins": {"hub": {"listen": listen}}})
        n.launch(r"rendezvous hub on UDP %s" % listen.replace(".", r"\."))
        nodes.append(n)
    return nodes


def home_peer(L, h, hub=HUB_A):
    with L.inside(h):
        p = Peer(hub, bind=(L.home_ip(h), PORT), timeout=t.slow(1.0))
    S.setdefault("peers", []).append(p)
    return p


def exchange(L, pa, pb):
    """h1 and h2 send to each other's public address (as the hub told
    them) at once, 20 datagrams 50 ms apart; what each received."""
    got = {pa: set(), pb: set()}
    dst = {pa: S["obs_b"], pb: S["obs_a"]}
    for p in (pa, pb):
        p.sock.setblocking(False)
    try:
        for i in range(20):
            for p in (pa, pb):
                p.sock.sendto(b"punch %d" % i, dst[p])
            time.sleep(0.05)
            for p in (pa, pb):
                while True:
                    try:
                        data, src = p.sock.recvfrom(2048)
                    except BlockingIOError:
                        break
                    if data.startswith(b"punch"):
                        got[p].add(src)
    finally:
        for p in (pa, pb):
            p.sock.setblocking(True)
    return got[pa], got[pb]


# ---- lab 1: cone and symmetric ----

def case_build():
    """lab 1 (cone, symmetric): build, two hubs"""
    L = S["L"] = netlab.homes_lab("cone", "symmetric")
    S["hubs"] = start_hubs(L)
    S["ka"], S["kb"] = Key.new(), Key.new()
    S["pa"] = home_peer(L, "h1")
    S["pb"] = home_peer(L, "h2")


def case_register():
    """registrations through the NATs: public addresses"""
    L = S["L"]
    ma = S["pa"].register(S["ka"], cands=[(hubpeer.HOST, L.home_ip("h1"),
                                           PORT)])
    mb = S["pb"].register(S["kb"], cands=[(hubpeer.HOST, L.home_ip("h2"),
                                           PORT)])
    check_eq(ma.type, hubpeer.REGISTERED, "h1's registration (error %s)" %
             ma.error)
    check_eq(mb.type, hubpeer.REGISTERED, "h2's registration (error %s)" %
             mb.error)
    check_eq(ma.observed, (L.router_ip("r1"), PORT),
             "h1 as the hub saw it (cone: its port kept)")
    check_eq(mb.observed[0], L.router_ip("r2"),
             "h2's public address as the hub saw it")
    check(mb.observed[1] != PORT, "h2's public port (symmetric, "
          "--random-fully)", "another than %d" % PORT, mb.observed[1])
    S["obs_a"], S["obs_b"] = ma.observed, mb.observed
    hub = S["hubs"][0]
    hub.expect_log(r"registered %s from %s:%d " %
                   (S["ka"].keyhash, L.router_ip("r1"), PORT))
    hub.expect_log(r"registered %s from %s:%d " %
                   (S["kb"].keyhash, L.router_ip("r2"), mb.observed[1]))
    print("     hub saw h1 at %s:%d, h2 at %s:%d" % (ma.observed +
                                                     mb.observed),
          flush=True)


def case_lookup():
    """lookup, INTRO and keep-alive through the NATs"""
    L = S["L"]
    a = S["pb"].lookup(S["ka"].keyhash, cands=[(hubpeer.HOST,
                                                L.home_ip("h2"), PORT)])
    check(a is not None and a.type == hubpeer.LOOKUP_ANSWER, "h2's lookup",
          "LOOKUP_ANSWER", a and (a.type, a.error))
    check_eq(a.observed, S["obs_a"], "h1's public address in the answer")
    check_eq(a.candidates, [(hubpeer.HOST, L.home_ip("h1"), PORT)],
             "h1's candidates")
    intro = S["pa"].wait_message(hubpeer.INTRO, t.slow(3))
    check(intro is not None, "INTRO at h1 through its NAT", "one", None)
    check_eq(intro.observed, S["obs_b"], "h2's public address in INTRO")
    check_eq(intro.candidates, [(hubpeer.HOST, L.home_ip("h2"), PORT)],
             "h2's candidates in INTRO")
    # The keep-alive from behind the symmetric NAT keeps its mapping.
    k = S["pb"].keepalive(S["kb"].keyhash)
    check(k is not None and k.type == hubpeer.KEEPALIVE_ACK and
          k.observed == S["obs_b"], "h2's keep-alive", "an ACK naming "
          "the registered mapping", k and (k.type, k.observed))


def case_second_address():
    """a hub on 0.0.0.0 answers from the address dialed

    Hub A listens on 0.0.0.0, and the hub host has two addresses: a
    node that dials 11.0.0.4:7777 registers (signed for that address) and
    gets its answers and INTROs from 11.0.0.4, or its NAT, filtering by
    address, would drop them."""
    L = S["L"]
    key = Key.new()
    with L.inside("h1"):
        p = Peer((netlab.HUB_IP2, HUB_A[1]), bind=(L.home_ip("h1"), 5002),
                 timeout=t.slow(1.0))
    S["peers"].append(p)
    m = p.register(key)
    check_eq((m.type, m.observed), (hubpeer.REGISTERED,
                                    (L.router_ip("r1"), 5002)),
             "registration at hub A's second address (error %s)" % m.error)
    a = S["pb"].lookup(key.keyhash)
    check_eq(a.observed, (L.router_ip("r1"), 5002), "lookup through the "
             "first address")
    intro = p.wait_message(hubpeer.INTRO, t.slow(3))
    check(intro is not None and intro.observed == S["obs_b"],
          "INTRO through h1's NAT from the address h1 dialed", "one", intro)


def case_stun_mapping():
    """STUN from two hubs: cone keeps the port, symmetric does not"""
    L = S["L"]
    a1, a2 = S["pa"].stun(HUB_A), S["pa"].stun(HUB_B)
    b1, b2 = S["pb"].stun(HUB_A), S["pb"].stun(HUB_B)
    print("     STUN, h1 (cone): %s and %s; h2 (symmetric): %s and %s" %
          (a1, a2, b1, b2), flush=True)
    check(a1 is not None and a2 is not None and b1 is not None and
          b2 is not None, "STUN answers from both hubs", "four", (a1, a2,
                                                                 b1, b2))
    check_eq(a1, (L.router_ip("r1"), PORT), "h1's mapping seen by hub A")
    check_eq(a2, a1, "h1's mapping seen by hub B (cone: the same)")
    check_eq(b1, S["obs_b"], "h2's mapping seen by hub A (the one it "
             "registered with)")
    check_eq(b2[0], L.router_ip("r2"), "h2's address seen by hub B")
    check(b2[1] != b1[1], "h2's port seen by hub B (symmetric)",
          "another than hub A's %d" % b1[1], b2[1])


def case_status():
    """status over the hub host's loopback only"""
    L = S["L"]
    with L.inside("hub"):
        local = Peer(("127.0.0.1", HUB_A[1]), timeout=t.slow(1.0))
    st = local.status()
    local.close()
    check_eq(st["registrations"], 3, "registrations in the hub's status")
    check(st["stun_answered"] >= 2 and st["lookups"] >= 1 and
          st["intros"] >= 1, "status counters", "STUN, lookups, intros",
          st)
    S["pa"].send(hubpeer.Message(hubpeer.STATUS_REQ).encode())
    check(S["pa"].recv(t.slow(1.0)) is None, "status asked from h1",
          "no answer (loopback only)", "an answer")
    with L.inside("hub"):
        local = Peer(("127.0.0.1", HUB_A[1]), timeout=t.slow(1.0))
    st2 = local.status()
    local.close()
    check_eq(st2["unauthenticated"] - st["unauthenticated"], 1,
             "the refused status request counted")


def case_coturn():
    """coturn in the hub host: STUN and a TURN allocation"""
    L = S["L"]
    L.coturn()
    mapped = S["pa"].stun(("11.0.0.1", 3478))
    check_eq(mapped, (L.router_ip("r1"), PORT),
             "coturn's STUN answer to h1")
    rc, out, err = L.run("h2", [
        "turnutils_uclient", "-u", "u", "-w", "p", "-e", netlab.HUB_IP,
        "-r", "3480", "-n", "5", "-m", "1", "-y", netlab.HUB_IP],
        timeout=t.slow(30))
    check(rc == 0 and "Total lost packets 0" in out + err,
          "a TURN allocation from behind the symmetric NAT "
          "(turnutils_uclient)", "exit 0, nothing lost",
          "%d: %s" % (rc, (out + err)[-1500:]))


def probe(L, h, *args):
    """hub-probe (hubclient.c, the node's side transport-udp uses) in a
    home, from UDP port 5001: its output lines."""
    exe = os.path.join(t.build_dir, "tests", "hub-probe")
    rc, out, err = L.run(h, [exe, "--bind", "%s:5001" % L.home_ip(h)] +
                         list(args), timeout=t.slow(20))
    check(rc == 0, "hub-probe in %s" % h, "exit 0", "%d: %s" % (rc,
                                                              out + err))
    print("     hub-probe in %s: %s" % (h, "; ".join(out.splitlines())),
          flush=True)
    return out.splitlines()


def case_probe():
    """hubclient.c (hub-probe): NAT kinds, a registration in C

    The C client side against hub A and coturn: it tells the cone
    from the symmetric NAT, and registers through the symmetric NAT at
    the very mapping that hub A's STUN answer named."""
    L = S["L"]
    stun = ["--stun", "%s:%d" % HUB_A, "--stun", "%s:3478" % netlab.HUB_IP]
    out = probe(L, "h1", *stun)
    check_eq([x for x in out if x.startswith(("mapped", "nat", "host"))],
             ["host %s:5001" % L.home_ip("h1"),
              "mapped %s:%d %s:5001" % (HUB_A + (L.router_ip("r1"),)),
              "mapped %s:3478 %s:5001" % (netlab.HUB_IP,
                                          L.router_ip("r1")),
              "nat cone (endpoint-independent mapping)"], "h1's probe")
    vec = os.path.join(t.source_dir, "tests", "vectors")
    out = probe(L, "h2", *stun, "--hub", "%s:%d" % HUB_A,
                "--cert", os.path.join(vec, "keyhash.cert"),
                "--key", os.path.join(vec, "keyhash.cert.private"))
    check_in("nat symmetric (a mapping per destination)", out,
             "h2's probe")
    m = [x.split()[2] for x in out if x.startswith("mapped %s:%d" % HUB_A)]
    check(m and m[0].startswith(L.router_ip("r2") + ":"), "h2's mapping "
          "at hub A", "at r2's address", out)
    check_in("registered 4edde683894d49d6c60b396ebe3c05deb97d4ab3 %s" %
             m[0], out, "h2's registration by hub-probe")
    S["hubs"][0].expect_log(r"registered 4edde683894d49d6c60b396ebe3c05deb9"
                            r"7d4ab3 from %s " % m[0].replace(".", r"\."))


def case_no_punch_symmetric():
    """no direct exchange through the symmetric NAT"""
    L = S["L"]
    before1, before2 = L.counts("r1"), L.counts("r2")
    got_a, got_b = exchange(L, S["pa"], S["pb"])
    c1, c2 = L.counts("r1"), L.counts("r2")
    print("     r1 forwarded from 11.0.0.3: %s; r2 from 11.0.0.2: %s" %
          (c1.get("11.0.0.3"), c2.get("11.0.0.2")), flush=True)
    check(not got_a and not got_b, "the simple exchange through a "
          "symmetric NAT", "nothing through", (got_a, got_b))
    check_eq(c1["11.0.0.3"][0] - before1["11.0.0.3"][0], 0,
             "r1: datagrams forwarded from r2's address")
    check_eq(c2["11.0.0.2"][0] - before2["11.0.0.2"][0], 0,
             "r2: datagrams forwarded from r1's address")
    check(c1[netlab.HUB_IP][0] > 0, "r1: datagrams forwarded from the hub",
          "some", c1)


def case_teardown():
    """lab 1 down"""
    for n in S["hubs"]:
        n.stop_ok()
    for p in S.pop("peers", []):
        p.close()
    S["L"].destroy()


# ---- lab 2: cone and cone ----

def case_punch_cones():
    """lab 2 (cone, cone): a direct exchange, router counters"""
    L = S["L"] = netlab.homes_lab("cone", "cone")
    S["hubs"] = start_hubs(L)
    pa, pb = home_peer(L, "h1"), home_peer(L, "h2")
    ma, mb = pa.register(S["ka"]), pb.register(S["kb"])
    check_eq((ma.type, mb.type), (hubpeer.REGISTERED, hubpeer.REGISTERED),
             "both registered")
    check_eq(mb.observed, (L.router_ip("r2"), PORT), "h2 behind a cone")
    a = pb.lookup(S["ka"].keyhash)
    S["obs_a"], S["obs_b"] = a.observed, mb.observed
    got_a, got_b = exchange(L, pa, pb)
    c1, c2 = L.counts("r1"), L.counts("r2")
    print("     r1 forwarded from 11.0.0.3: %s; r2 from 11.0.0.2: %s" %
          (c1.get("11.0.0.3"), c2.get("11.0.0.2")), flush=True)
    check_eq(got_a, {S["obs_b"]}, "h1 heard h2 at its public address")
    check_eq(got_b, {S["obs_a"]}, "h2 heard h1 at its public address")
    check(c1["11.0.0.3"][0] > 0 and c2["11.0.0.2"][0] > 0,
          "router counters", "datagrams forwarded from the other home's "
          "router (a direct path)", (c1, c2))
    check_eq(c1.get(netlab.HUB_IP2, (0, 0))[0], 0,
             "r1: nothing from hub B (it was never asked)")
    # The hubs are not on the path: with both stopped, the homes still
    # reach each other, and nothing more comes from the hub host.
    for n in S["hubs"]:
        n.stop_ok()
    hub_before = c1.get(netlab.HUB_IP, (0, 0))[0]
    got_a, got_b = exchange(L, pa, pb)
    c1b = L.counts("r1")
    check_eq((got_a, got_b), ({S["obs_b"]}, {S["obs_a"]}),
             "the exchange with the hubs stopped")
    check_eq(c1b.get(netlab.HUB_IP, (0, 0))[0], hub_before,
             "r1: datagrams from the hub host meanwhile")


t.cases(
    case_build, case_register, case_lookup, case_second_address,
    case_stun_mapping, case_status, case_coturn, case_probe,
    case_no_punch_symmetric, case_teardown, case_punch_cones)
t.finish()
