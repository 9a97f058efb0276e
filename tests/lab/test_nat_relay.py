#!/usr/bin/env python3
"""transport-udp's last resort: a TURN relay (real coturn) when no direct
path exists, and relays last when one does. LAB.md's "two homes behind
NATs" (netlab.homes_lab()) with coturn beside the hub:

      hub host 11.0.0.1: hlcore hub :7777, coturn :3478 (relay ports
                         49152-49200 on 11.0.0.1)
          |
      r1 11.0.0.2 (NAT)            r2 11.0.0.3 (NAT)
          |                            |
      h1 10.1.0.2: the service     h2 10.2.0.2: the client (proxy)

Both homes: `transport-udp: {listen: "0.0.0.0:7008", hubs: [hub], turn:
["turn://u:p@11.0.0.1:3478"]}` (the client's turn: only where said).

Cases:
- symmetric/symmetric, a relay on the service's side only: the GET
  works; r2 counts the page's bytes from the hub host's address (the
  relay), none from r1 (no direct path); the client's log says the path
  is relayed, the service's that the tunnel came through its relay;
- symmetric/symmetric, a relay on the client's side only: the GET works
  through the client's own allocation;
- cone/cone with relays on both sides: the path is direct (bytes from
  r1), the relay carries nothing of the page: relays come last;
- a wrong TURN password: the service says why in its log (and keeps
  serving direct paths).
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
import netlab  # noqa: E402
from hltest import check  # noqa: E402

t = hltest.Test("nat_relay", root=True,
                needs=["ip", "iptables-legacy", "curl", "turnserver"])
HUB = "%s:7777" % netlab.HUB_IP
TURN = "turn://u:p@%s:3478" % netlab.HUB_IP
TOKEN = "nat-relay-%d" % os.getpid()
# The page: big enough that its bytes stand out from probes and lookups.
PAGE_KB = 64
S = {}


def lab(nat1, nat2):
    L = netlab.homes_lab(nat1, nat2)
    L.coturn()
    hub = t.node("hub-%s%s" % (nat1, nat2), ns=L.ns("hub"))
    hub.configure({"proxy": {"listen": "off"},
                   "plugins": {"hub": {"listen": "0.0.0.0:7777"}}})
    hub.launch(r"rendezvous hub on UDP")
    L.http_backend("h1", 8080, TOKEN + "x" * (PAGE_KB * 1024))
    return L


def udp_conf(turn):
    c = {"listen": "0.0.0.0:7008", "hubs": [HUB]}
    if turn:
        c["turn"] = [turn]
    return c


def service(L, name, turn=TURN, ready=r"TURN relay .*: allocated"):
    n = t.node(name, ns=L.ns("h1"))
    n.configure({"proxy": {"listen": "off"},
                 "log": {"level": "debug"},
                 "plugins": {"transport-udp": udp_conf(turn)},
                 "services": {"web": {"target": "127.0.0.1:8080"}}})
    pw, kh = n.url("web")
    S["host"] = "%s-%s.localhost:7009" % (pw, kh)
    n.launch(ready)
    n.expect_log(r"hub %s: service web registered" % re.escape(HUB))
    return n


def client(L, name, turn):
    n = t.node(name, ns=L.ns("h2"))
    n.configure({"proxy": {"listen": "127.0.0.1:7009"},
                 "log": {"level": "debug"},
                 "plugins": {"transport-udp": udp_conf(turn)}})
    n.launch(r"proxy listening")
    if turn:
        n.expect_log(r"TURN relay .*: allocated")
    return n


def get(L, c, what):
    """A GET from the client; r2's counts of bytes from r1 and from the
    hub host (the relay) while it ran."""
    b1 = L.counts("r2").get(L.router_ip("r1"), (0, 0))[1]
    bh = L.counts("r2").get(netlab.HUB_IP, (0, 0))[1]
    code, body, secs = c.fetch(S["host"], timeout=30)
    r1 = L.counts("r2").get(L.router_ip("r1"), (0, 0))[1] - b1
    hub = L.counts("r2").get(netlab.HUB_IP, (0, 0))[1] - bh
    print("     GET %s: %d in %.3f s; r2 forwarded %d bytes from r1, %d "
          "from the hub host" % (what, code, secs, r1, hub), flush=True)
    check(code == 200 and TOKEN in body, "GET " + what, "200 with the "
          "backend's page", (code, body[-1500:]))
    return r1, hub


def case_symmetric_service_relay():
    """symmetric/symmetric, only the service has a relay: through it"""
    L = S["L"] = lab("symmetric", "symmetric")
    srv = service(L, "service-ss")
    c = client(L, "client-ss", None)
    try:
        r1, hub = get(L, c, "symmetric/symmetric, the service's relay")
        check(hub > PAGE_KB * 1024, "bytes r2 forwarded from the hub host "
              "(the relay)", "over the page's %d KiB" % PAGE_KB, hub)
        check(r1 < 4096, "bytes r2 forwarded from r1 (no direct path: "
              "probes at most)", "under 4096", r1)
        check(re.search(r"QUIC over a relayed path", c.run_log()),
              "the client's log", "QUIC over a relayed path",
              c.run_log()[-3000:])
        srv.expect_log(r"web: tunnel from relayed 11\.0\.0\.3:")
    finally:
        c.stop_ok()
        srv.stop_ok()


def case_symmetric_client_relay():
    """symmetric/symmetric, only the client has a relay: through it"""
    L = S["L"]
    srv = service(L, "service-ss2", turn=None,
                  ready=r"hub %s: service web registered" % re.escape(HUB))
    c = client(L, "client-ss2", TURN)
    try:
        r1, hub = get(L, c, "symmetric/symmetric, the client's relay")
        check(hub > PAGE_KB * 1024, "bytes r2 forwarded from the hub host "
              "(the client's relay)", "over the page's %d KiB" % PAGE_KB,
              hub)
        check(re.search(r"QUIC over a relayed path", c.run_log()),
              "the client's log", "QUIC over a relayed path",
              c.run_log()[-3000:])
    finally:
        c.stop_ok()
        srv.stop_ok()
        L.destroy()


def case_cone_direct():
    """cone/cone with relays on both sides: direct, relays last"""
    L = S["L"] = lab("cone", "cone")
    try:
        srv = service(L, "service-cc")
        c = client(L, "client-cc", TURN)
        r1, hub = get(L, c, "cone/cone")
        check(r1 > PAGE_KB * 1024, "bytes r2 forwarded from r1 (direct)",
              "over the page's %d KiB" % PAGE_KB, r1)
        check(hub < 8192, "bytes r2 forwarded from the hub host (lookup, "
              "TURN refreshes)", "under 8192", hub)
        check(re.search(r"QUIC over a direct path", c.run_log()),
              "the client's log", "QUIC over a direct path",
              c.run_log()[-3000:])
        c.stop_ok()
        srv.stop_ok()
    finally:
        L.destroy()


def case_wrong_password():
    """a wrong TURN password: the log says why"""
    L = S["L"] = lab("cone", "cone")
    try:
        srv = service(L, "service-bad",
                      turn="turn://u:wrong@%s:3478" % netlab.HUB_IP,
                      ready=r"TURN relay %s:3478: .*(401|credentials|"
                      r"[Uu]nauthori[sz]ed)" % re.escape(netlab.HUB_IP))
        srv.stop_ok()
    finally:
        L.destroy()


t.cases(case_symmetric_service_relay, case_symmetric_client_relay, case_cone_direct,
        case_wrong_password)
t.finish()
