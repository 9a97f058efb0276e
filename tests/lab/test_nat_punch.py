#!/usr/bin/env python3
"""transport-udp through two NATs with a real hlcore hub: the service's URL
works from the other home with only `hubs:` configured (no peers:, no LAN,
no DHT). LAB.md's "two homes behind NATs" (netlab.homes_lab()):

      hub host: hlcore hub 0.0.0.0:7777 (11.0.0.1)
          |  11.0.0.0/24 (bridge)
      r1 11.0.0.2 (NAT)            r2 11.0.0.3 (NAT)
          |                            |
      h1 10.1.0.2: the service     h2 10.2.0.2: the client (proxy)

Both homes: `transport-udp: {listen: "0.0.0.0:7008", hubs:
["11.0.0.1:7777"]}`. Both routers "cone" (endpoint-independent mapping,
address and port dependent filtering, unsolicited UDP to the router
dropped).

Cases:
- the service registers with the hub from its QUIC socket (the hub sees
  r1's 11.0.0.2:7008);
- a GET from h2 through its proxy works; the route was won by the hub://
  candidate; r2's counters show the QUIC bytes came from r1's address,
  not the hub host (a direct path);
- the hub stopped: the next GET still works (the live QUIC connection
  carries the new tunnel; nothing from the hub host);
- the hub restarted: the service registers again within 30 s (error 5 on
  its keep-alive, or the keep-alives' timeout);
- the client restarted without hubs: still fetches, through the
  hub:// endpoint the service told it (OOB Endpoints, peers.cache);
- UDP blocked at the client's home (r2 drops UDP from h2): a fresh client
  gets a 502 whose page says the hub did not answer, that UDP may be
  blocked; with transport-tls on both nodes and the service's TCP port
  forwarded by hand on r1 (in the client's peers:), the GET gets the page
  over transport-tls;
- UDP blocked at the service's home: the service cannot register; a
  client's 502 says the service is not registered at the hub.
- `hlcore -c FILE nat` with the hub at both its addresses (11.0.0.1 and
  11.0.0.4, one hub on 0.0.0.0): "cone" in h1 (its mapping 11.0.0.2:7008
  for both, while the daemon holds 7008: an ephemeral port, said so) and
  filtering "address and port-dependent" (the hub's RFC 5780 answers from
  its other address and port do not get in), "none" and filtering
  "endpoint-independent" in the hub host (no NAT), then
  in a second lab (cone, symmetric) "cone" in h1 and "symmetric" in h2.
- symmetric NAT on one side (the birthday approach, within its budget): a
  GET from behind the symmetric NAT to the cone home, and (third lab,
  symmetric, cone) from the cone home to a service behind the symmetric
  NAT, each over a direct path (router counters).
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
import netlab  # noqa: E402
from hltest import check, check_in  # noqa: E402

t = hltest.Test("nat_punch", root=True, needs=["ip", "iptables-legacy",
                                               "curl"])
HUB = "%s:7777" % netlab.HUB_IP
TOKEN = "nat-punch-%d" % os.getpid()
S = {}


def start_hub(L):
    n = S.get("hub")
    if n is None or S.get("hub_lab") is not L:
        n = t.node("hub-%s" % L.tag, ns=L.ns("hub"))
        S["hub_lab"] = L
    n.configure({"proxy": {"listen": "off"},
                 "log": {"level": "debug"},
                 "plugins": {"hub": {"listen": "0.0.0.0:7777"}}})
    n.launch(r"rendezvous hub on UDP")
    S["hub"] = n
    return n


def udp_conf():
    return {"listen": "0.0.0.0:7008", "hubs": [HUB]}


def start_service(L):
    L.http_backend("h1", 8080, TOKEN)
    n = t.node("service-%s" % L.tag, ns=L.ns("h1"))
    n.configure({"proxy": {"listen": "off"},
                 "log": {"level": "debug"},
                 "plugins": {"transport-udp": udp_conf()},
                 "services": {"web": {"target": "127.0.0.1:8080"}}})
    pw, kh = n.url("web")
    S["host"] = "%s-%s.localhost:7009" % (pw, kh)
    S["kh"] = kh
    n.launch(r"hub %s: service web registered" % re.escape(HUB))
    S["service"] = n
    return n


def start_client(L, name="client"):
    n = t.node(name, ns=L.ns("h2"))
    n.configure({"proxy": {"listen": "127.0.0.1:7009"},
                 "log": {"level": "debug"},
                 "plugins": {"transport-udp": udp_conf()}})
    n.launch(r"proxy listening")
    return n


def from_addr(L, router, addr):
    return L.counts(router).get(addr, (0, 0))


def case_build():
    """lab (cone, cone): a hub, the service registers through its NAT"""
    L = S["L"] = netlab.homes_lab("cone", "cone")
    start_hub(L)
    start_service(L)
    S["hub"].expect_log(r"registered %s from %s:7008 " %
                        (S["kh"], re.escape(L.router_ip("r1"))))


def case_fetch_direct():
    """GET from the other home with only hubs: configured, a direct path"""
    L = S["L"]
    c = S["client"] = start_client(L)
    before_r1 = from_addr(L, "r2", L.router_ip("r1"))
    before_hub = from_addr(L, "r2", netlab.HUB_IP)
    code, body, secs = c.fetch(S["host"])
    print("     GET through two cone NATs: %d in %.3f s" % (code, secs),
          flush=True)
    check(code == 200 and TOKEN in body, "GET from h2", "200 with the "
          "backend's token", (code, body[-1500:]))
    check(re.search(r"won by transport-udp hub://%s" % re.escape(HUB),
                    c.run_log()), "the client's route", "won by "
          "transport-udp hub://%s" % HUB, c.run_log()[-3000:])
    r1 = from_addr(L, "r2", L.router_ip("r1"))
    hub = from_addr(L, "r2", netlab.HUB_IP)
    print("     r2 forwarded from r1: %d datagrams, %d bytes; from the hub "
          "host: %d, %d" % (r1[0] - before_r1[0], r1[1] - before_r1[1],
                            hub[0] - before_hub[0], hub[1] - before_hub[1]),
          flush=True)
    check(r1[1] - before_r1[1] > 1000, "bytes r2 forwarded from r1's "
          "address (QUIC handshake and the page)", "over 1000",
          r1[1] - before_r1[1])
    check(hub[1] - before_hub[1] < 1000, "bytes r2 forwarded from the hub "
          "host (the lookup's answer only)", "under 1000",
          hub[1] - before_hub[1])


def case_hub_stopped():
    """the hub stopped: the tunnel keeps working"""
    L = S["L"]
    S["hub"].stop_ok()
    before_hub = from_addr(L, "r2", netlab.HUB_IP)
    before_r1 = from_addr(L, "r2", L.router_ip("r1"))
    for i in range(3):
        code, body, secs = S["client"].fetch(S["host"])
        check(code == 200 and TOKEN in body, "GET %d with the hub "
              "stopped" % (i + 1), "200", (code, body[-1500:]))
    check(from_addr(L, "r2", netlab.HUB_IP) == before_hub,
          "datagrams from the hub host meanwhile", "none",
          from_addr(L, "r2", netlab.HUB_IP))
    check(from_addr(L, "r2", L.router_ip("r1"))[0] > before_r1[0],
          "datagrams from r1 meanwhile", "some", "none")


def case_hub_restart():
    """the hub restarted: the service registers again within 30 s"""
    L = S["L"]
    t0 = time.monotonic()
    start_hub(L)
    S["hub"].expect_log(r"registered %s from %s:7008 " %
                        (S["kh"], re.escape(L.router_ip("r1"))), 35)
    secs = time.monotonic() - t0
    print("     registered again %.1f s after the hub's restart" % secs,
          flush=True)
    check(secs <= 32, "time to register again", "within 30 s (+ start)",
          secs)


def case_remembered_endpoint():
    """a client without hubs: dials the hub:// endpoint it remembered"""
    L = S["L"]
    c = S["client"]
    c.stop_ok()
    cache = c.peers_cache()
    check(re.search(r"^%s \d+ .*\bhub://%s\b" % (S["kh"], re.escape(HUB)),
                    cache, re.M), "the client's peers.cache",
          "the service's typed endpoint hub://%s" % HUB, cache)
    c.configure({"proxy": {"listen": "127.0.0.1:7009"},
                 "log": {"level": "debug"},
                 "plugins": {"transport-udp": {"listen": "0.0.0.0:7008"}}})
    c.launch(r"proxy listening")
    code, body, secs = c.fetch(S["host"])
    check(code == 200 and TOKEN in body, "GET from h2 without hubs:",
          "200 through the remembered hub:// endpoint", (code, body[-1500:]))
    check(re.search(r"won by transport-udp hub://%s" % re.escape(HUB),
                    c.run_log()), "the client's route", "won by "
          "transport-udp hub://%s" % HUB, c.run_log()[-3000:])


def case_udp_blocked_client():
    """UDP blocked at the client's home: a 502 naming it"""
    L = S["L"]
    S["client"].stop_ok()
    L.sh("r2", "iptables-legacy -I FORWARD -i lan -p udp -j DROP")
    try:
        c = start_client(L, "client2")
        code, body, secs = c.fetch(S["host"], timeout=30)
        print("     with UDP blocked at h2's home: %d in %.1f s" %
              (code, secs), flush=True)
        check(code == 502, "GET from h2 with UDP blocked", "502",
              (code, body[-1500:]))
        check_in("did not answer", body, "the 502 page")
        check_in("UDP to it blocked on this network", body, "the 502 page")
        check_in("hub://%s" % HUB, body, "the 502 page")
        c.stop_ok()
    finally:
        L.sh("r2", "iptables-legacy -D FORWARD -i lan -p udp -j DROP")


def case_udp_blocked_tls():
    """UDP blocked at the client's home: transport-tls, where reachable"""
    # The service's home forwards TCP 7443 to it by hand; the client has
    # both transports and that address in peers:. With UDP blocked, the
    # hub:// attempt fails and transport-tls gets the page.
    L = S["L"]
    srv = S["service"]
    srv.stop_ok()
    cfg = {"proxy": {"listen": "off"}, "log": {"level": "debug"},
           "plugins": {"transport-udp": udp_conf(),
                       "transport-tls": {"listen": "0.0.0.0:7443"}},
           "services": {"web": {"target": "127.0.0.1:8080"}}}
    srv.configure(cfg)
    srv.launch(r"hub %s: service web registered" % re.escape(HUB))
    fwd = ("iptables-legacy -t nat %s PREROUTING -i wan -p tcp --dport 7443 "
           "-j DNAT --to-destination %s:7443; iptables-legacy %s FORWARD "
           "-i wan -o lan -p tcp --dport 7443 -j ACCEPT" %
           ("%s", L.home_ip("h1"), "%s"))
    L.sh("r1", fwd % ("-I", "-I"))
    L.sh("r2", "iptables-legacy -I FORWARD -i lan -p udp -j DROP")
    try:
        c = t.node("client-tls", ns=L.ns("h2"))
        c.configure({"proxy": {"listen": "127.0.0.1:7009"},
                     "log": {"level": "debug"},
                     "plugins": {"transport-udp": udp_conf(),
                                 "transport-tls": {}},
                     "peers": {S["kh"]: ["%s:7443" % L.router_ip("r1")]}})
        c.launch(r"proxy listening")
        code, body, secs = c.fetch(S["host"], timeout=30)
        print("     with UDP blocked at h2's home, TCP forwarded at h1's: "
              "%d in %.1f s" % (code, secs), flush=True)
        check(code == 200 and TOKEN in body, "GET from h2 with UDP blocked",
              "200 over transport-tls", (code, body[-1500:]))
        check(re.search(r"won by transport-tls %s:7443" %
                        re.escape(L.router_ip("r1")), c.run_log()),
              "the client's route", "won by transport-tls through the "
              "forwarded port", c.run_log()[-3000:])
        c.stop_ok()
    finally:
        L.sh("r2", "iptables-legacy -D FORWARD -i lan -p udp -j DROP")
        L.sh("r1", fwd % ("-D", "-D"))


def case_udp_blocked_service():
    """UDP blocked at the service's home: a 502 saying it is not registered"""
    L = S["L"]
    S["service"].stop_ok()
    L.sh("r1", "iptables-legacy -I FORWARD -i lan -p udp -j DROP")
    try:
        # The hub forgets the registration after its lifetime (90 s):
        # restart it instead.
        S["hub"].stop_ok()
        start_hub(L)
        S["service"].launch(r"QUIC on UDP")
        c = start_client(L, "client3")
        code, body, secs = c.fetch(S["host"], timeout=30)
        check(code == 502, "GET with UDP blocked at the service's home",
              "502", (code, body[-1500:]))
        check_in("the service is not registered there", body,
                 "the 502 page")
        c.stop_ok()
        S["service"].stop_ok()
        S["hub"].stop_ok()
    finally:
        L.sh("r1", "iptables-legacy -D FORWARD -i lan -p udp -j DROP")


def nat_node(L, h):
    n = t.node("nat-%s-%s" % (h, L.nat["r1"] + L.nat["r2"]), ns=L.ns(h))
    n.configure({"proxy": {"listen": "off"},
                 "plugins": {"transport-udp": {
                     "listen": "0.0.0.0:7008",
                     "hubs": [HUB, "%s:7777" % netlab.HUB_IP2]}}})
    return n


def nat_cmd(L, h):
    rc, out, err = nat_node(L, h).cmd("nat", timeout=t.slow(30))
    print("     hlcore nat in %s (%s): %s" % (h, L.nat.get("r" + h[1:2],
                                                         "no NAT"),
                                             "; ".join(out.splitlines())),
          flush=True)
    check(rc == 0, "hlcore nat in %s" % h, "exit 0", (rc, out, err))
    return out


def case_nat_cone():
    """hlcore nat in a cone home, beside the running daemon"""
    L = S["L"]
    start_hub(L)
    S["service"].launch(r"hub %s: service web registered" % re.escape(HUB))
    out = nat_cmd(L, "h1")
    check_in("nat cone (endpoint-independent mapping)", out.splitlines(),
             "h1's nat")
    check(re.search(r"^socket 0\.0\.0\.0:\d+ \(the listen port is in use",
                    out, re.M), "h1's socket", "an ephemeral port, said "
          "so (the daemon holds 7008)", out)
    check_in("host %s:" % L.home_ip("h1"), out, "h1's host candidate")
    check(re.search(r"^mapped %s %s:\d+$" % (re.escape(HUB),
                                             re.escape(L.router_ip("r1"))),
                    out, re.M), "h1's mapping at the hub",
          "at r1's address", out)
    # Linux conntrack lets in only what comes from where we sent: the
    # hub's answers from its other address or port are dropped.
    check_in("filtering address and port-dependent (hub %s's answers from "
             "another address or port did not come in)" % HUB,
             out.splitlines(), "h1's filtering")
    # The hub host itself has no NAT, nothing filters.
    hub_out = nat_cmd(L, "hub")
    check_in("nat no NAT", hub_out.splitlines(),
             "the hub host's nat")
    check_in("filtering endpoint-independent (hub %s's answer from another "
             "address and port came in)" % HUB, hub_out.splitlines(),
             "the hub host's filtering")
    S["service"].stop_ok()
    S["hub"].stop_ok()


def case_teardown():
    """lab down"""
    S["L"].destroy()


def case_nat_symmetric():
    """lab (cone, symmetric): nat says cone in h1, symmetric in h2; GET"""
    L = S["L"] = netlab.homes_lab("cone", "symmetric")
    try:
        start_hub(L)
        out1 = nat_cmd(L, "h1")
        out2 = nat_cmd(L, "h2")
        check_in("nat cone (endpoint-independent mapping)",
                 out1.splitlines(), "h1's nat (cone)")
        check_in("socket 0.0.0.0:7008", out1.splitlines(),
                 "h1's socket (no daemon: the listen port)")
        check_in("mapped %s %s:7008" % (HUB, L.router_ip("r1")),
                 out1.splitlines(), "h1's mapping (cone keeps the port)")
        check_in("nat symmetric (a mapping per destination)",
                 out2.splitlines(), "h2's nat (symmetric)")
        # The birthday approach: the client behind the symmetric NAT.
        birthday_get(L, "client-sym", "from h2 (symmetric) to h1 (cone)")
    finally:
        L.destroy()


def birthday_get(L, client, what):
    """A service in h1, a client in h2, one of them behind the symmetric
    NAT: a GET gets the page over a direct path (the birthday approach),
    by r2's count of bytes from r1's address; then all stop."""
    srv = start_service(L)
    c = start_client(L, client)
    before = from_addr(L, "r2", L.router_ip("r1"))
    code, body, secs = c.fetch(S["host"], timeout=30)
    after = from_addr(L, "r2", L.router_ip("r1"))
    print("     GET %s: %d in %.3f s; r2 forwarded %d bytes from r1" %
          (what, code, secs, after[1] - before[1]), flush=True)
    check(code == 200 and TOKEN in body, "GET " + what,
          "200 (the birthday approach)", (code, body[-1500:]))
    check(after[1] - before[1] > 1000, "bytes r2 forwarded from r1's "
          "address", "over 1000 (a direct path)", after[1] - before[1])
    c.stop_ok()
    srv.stop_ok()
    S["hub"].stop_ok()


def case_symmetric_service():
    """lab (symmetric, cone): a GET to a service behind the symmetric NAT"""
    L = S["L"] = netlab.homes_lab("symmetric", "cone")
    try:
        start_hub(L)
        birthday_get(L, "client-cone", "from h2 (cone) to h1 (symmetric)")
    finally:
        L.destroy()


t.cases(case_build, case_fetch_direct, case_hub_stopped, case_hub_restart,
        case_remembered_endpoint, case_udp_blocked_client,
        case_udp_blocked_tls, case_udp_blocked_service, case_nat_cone,
        case_teardown, case_nat_symmetric, case_symmetric_service)
t.finish()
