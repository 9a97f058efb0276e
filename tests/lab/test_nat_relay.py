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
- cone/cone and cone/symmetric with relays on both sides: the path is
  direct (bytes from r1; /api/status says direct), the relay carries
  nothing of the page: relays come last;
- a wrong TURN password: the service says why in its log (and keeps
  serving direct paths).
"""
import http.client
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
import hubpeer  # noqa: E402
import netlab  # noqa: E402
from hltest import check  # noqa: E402

t = hltest.Test("nat_relay", root=True,
                needs=["ip", "iptables-legacy", "curl", "turnserver"])
HUB = "%s:7777" % netlab.HUB_IP
TURN = "turn://u:p@%s:3478" % netlab.HUB_IP
TOKEN = "nat-relay-%d" % os.getpid()
# The page: big enough that its bytes stand out from probes and lookups.
PAGE_KB = 64
ADMIN = 7010
S = {}


def lab(nat1, nat2):
    L = netlab.homes_lab(nat1, nat2)
    L.coturn()
    hub = t.node("hub-%s%s" % (nat1, nat2), ns=L.ns("hub"))
    hub.configure({"proxy": {"listen": "off"},
                   "plugins": {"hub": {"listen": "0.0.0.0:7777"}}})
    hub.launch(r"rendezvous hub on UDP")
    L.http_backend("h1", 8080, TOKEN + "x" * (PAGE_KB * 1024))
    # Read slowly, it holds a tunnel open (the backend closes each
    # connection after its answer).
    with open(os.path.join(L.tmp, "www-8080", "big.bin"), "wb") as f:
        f.write(b"\0" * (16 << 20))
    return L


def plugins(turn, advertise=None):
    c = {"listen": "0.0.0.0:7008", "hubs": [HUB]}
    if turn:
        c["turn"] = [turn]
    if advertise:
        c["advertise"] = [advertise]
    return {"transport-udp": c,
            "admin-web": {"listen": "127.0.0.1:%d" % ADMIN}}


def service(L, name, turn=TURN, ready=r"TURN relay .*: allocated",
            advertise=None):
    n = t.node(name, ns=L.ns("h1"))
    n.configure({"proxy": {"listen": "off"},
                 "log": {"level": "debug"},
                 "plugins": plugins(turn, advertise),
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
                 "plugins": plugins(turn)})
    n.launch(r"proxy listening")
    if turn:
        n.expect_log(r"TURN relay .*: allocated")
    return n


def hubpeer_lookup(peer, kh):
    """The service's candidates in a LOOKUP_ANSWER: [(kind, ip, port)],
    waiting (bounded) for the keep-alive that brings the relayed one."""
    got = []

    def answered():
        got[:] = peer.lookup(kh).candidates
        return any(k == hubpeer.RELAY for k, ip, port in got)
    try:
        hltest.wait_for(answered, 10, "a relayed candidate at the hub",
                        step=0.5)
    except Exception:
        pass  # the checks name what came
    return got


def wait_nat(L, srv):
    """Wait (bounded) until the service's transport-udp shows its NAT
    kind in /api/status (it looks every 250 ms)."""
    def shown():
        with L.inside("h1"):
            return "nat" in udp_status(srv.admin_status(ADMIN))
    hltest.wait_for(shown, 10, "the service's nat in /api/status",
                    step=0.25)


def held_status(L, c, srv):
    """With a GET of 16 MiB through the client's proxy read no further
    than its head (a live tunnel): the client's and the service's
    /api/status."""
    with L.inside("h2"):
        conn = http.client.HTTPConnection("127.0.0.1", 7009, timeout=20)
        try:
            conn.request("GET", "/big.bin", headers={"Host": S["host"]})
            r = conn.getresponse()
            check(r.status == 200, "a GET of 16 MiB", "200", r.status)
            cst = c.admin_status(ADMIN)
        finally:
            conn.close()
    with L.inside("h1"):
        sst = srv.admin_status(ADMIN)
    return cst, sst


def the(items, what, **match):
    got = [i for i in items if all(i.get(k) == v for k, v in match.items())]
    check(len(got) >= 1, what, "an entry with %r" % match, items)
    return got[0]


def udp_status(st):
    return the(st["plugins"], "/api/status plugins",
               name="transport-udp").get("status", {})


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
    # advertise: a UDP port forwarded by hand (here a dead one): a
    # "mapped" candidate in the registration.
    srv = service(L, "service-ss", advertise="11.0.0.2:7999")
    c = client(L, "client-ss", None)
    try:
        # What the hub hands clients (hubpeer.py, from the protocol
        # document): the relayed address, the TURN server's view
        # (server-reflexive) and the mapped port, before host ones.
        kh = S["host"].split("-")[1].split(".")[0]
        with L.inside("h2"):
            peer = hubpeer.Peer((netlab.HUB_IP, 7777))
            try:
                ans = hubpeer_lookup(peer, kh)
            finally:
                peer.close()
        kinds = {k for k, ip, port in ans}
        check(any(k == hubpeer.RELAY and ip == netlab.HUB_IP
                  for k, ip, port in ans), "the service's candidates at "
              "the hub", "a relayed one at %s" % netlab.HUB_IP, ans)
        check((hubpeer.MAPPED, "11.0.0.2", 7999) in ans and
              hubpeer.SRFLX in kinds and hubpeer.HOST in kinds,
              "the service's candidates at the hub", "mapped 11.0.0.2:7999, "
              "server-reflexive and host ones too", ans)
        r1, hub = get(L, c, "symmetric/symmetric, the service's relay")
        check(hub > PAGE_KB * 1024, "bytes r2 forwarded from the hub host "
              "(the relay)", "over the page's %d KiB" % PAGE_KB, hub)
        check(r1 < 4096, "bytes r2 forwarded from r1 (no direct path: "
              "probes at most)", "under 4096", r1)
        check(re.search(r"QUIC over a relayed path", c.run_log()),
              "the client's log", "QUIC over a relayed path",
              c.run_log()[-3000:])
        srv.expect_log(r"web: tunnel from relayed 11\.0\.0\.3:")
        wait_nat(L, srv)
        cst, sst = held_status(L, c, srv)
        out = the(cst["connections"], "the client's connections",
                  direction="out")
        check(out["path"] == "relayed" and
              "[relayed: QUIC to the service's TURN relay at 11.0.0.1:"
              in out["via"], "the client's tunnel in /api/status",
              "path relayed, via naming the service's relay", out)
        check("[relayed: " in cst["routes"][-1]["via"],
              "the client's last route in /api/status", "relayed",
              cst["routes"][-1])
        inc = the(sst["connections"], "the service's connections",
                  direction="in")
        check(inc["path"] == "relayed", "the service's tunnel in "
              "/api/status", "path relayed", inc)
        nat = udp_status(sst).get("nat", "")
        check(nat.startswith("symmetric"), "the service's NAT in "
              "/api/status (the hub and coturn saw it at two ports)",
              "symmetric ...", udp_status(sst))
        check(re.match(r"11\.0\.0\.1:3478: 11\.0\.0\.1:\d+$",
                       udp_status(sst).get("relays", "")),
              "the service's relays in /api/status",
              "11.0.0.1:3478: <its relayed address>", udp_status(sst))
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


def direct_with_relays(nat1, nat2):
    """Relays on both sides, yet the path is direct (relays last)."""
    L = S["L"] = lab(nat1, nat2)
    what = "%s/%s" % (nat1, nat2)
    try:
        srv = service(L, "service-%s%s" % (nat1[0], nat2[0]))
        c = client(L, "client-%s%s" % (nat1[0], nat2[0]), TURN)
        r1, hub = get(L, c, what)
        check(r1 > PAGE_KB * 1024, "bytes r2 forwarded from r1 (direct)",
              "over the page's %d KiB" % PAGE_KB, r1)
        check(hub < 8192, "bytes r2 forwarded from the hub host (lookup, "
              "TURN refreshes)", "under 8192", hub)
        check(re.search(r"QUIC over a direct path", c.run_log()),
              "the client's log", "QUIC over a direct path",
              c.run_log()[-3000:])
        wait_nat(L, srv)
        cst, sst = held_status(L, c, srv)
        out = the(cst["connections"], "the client's connections",
                  direction="out")
        check(out["path"] == "direct" and "[direct: QUIC to 11.0.0.2:"
              in out["via"], "the client's tunnel in /api/status",
              "path direct, to r1's address", out)
        inc = the(sst["connections"], "the service's connections",
                  direction="in")
        check(inc["path"] == "direct", "the service's tunnel in "
              "/api/status", "path direct", inc)
        check(udp_status(sst).get("nat", "").startswith(nat1),
              "the service's NAT in /api/status", nat1 + " ...",
              udp_status(sst))
        c.stop_ok()
        srv.stop_ok()
    finally:
        L.destroy()


def case_cone_direct():
    """cone/cone with relays on both sides: direct, relays last"""
    direct_with_relays("cone", "cone")


def case_cone_symmetric_direct():
    """cone/symmetric with relays on both sides: direct (birthday), not relayed"""
    direct_with_relays("cone", "symmetric")


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
        case_cone_symmetric_direct,
        case_wrong_password)
t.finish()
