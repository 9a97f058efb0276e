#!/usr/bin/env python3
"""The upnp plugin against a real miniupnpd, behind a real NAT.

    wan (11.0.0.1) --- rtr (11.0.0.2 | NAT, miniupnpd | 10.2.0.1) --- br0
                                                  lan1 (10.2.0.2) ---'  |
                                                  lan2 (10.2.0.3) ------'

The server (hlcore in lan1: transport-tls on [::]:7008 and on the loopback
127.0.0.1:7010, upnp loaded) maps its port on the router by itself; a
client in lan2 visits it once on the LAN (peers: 10.2.0.2:7008) and so
learns its WANHosts, which must hold the router's external address
11.0.0.2:7008; the same client, restarted in the WAN namespace with the same
state_dir and no peers:, still fetches through the mapped port; after the
server's SIGTERM the mapping is gone. Once over UPnP (natpmp: false), once
over NAT-PMP (upnp: false); then, with port 7008 taken on the router by
another host, the server maps the next port, 7009; then transport-udp's
UDP port 7008 is mapped too and used over QUIC from the WAN.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import netlab  # noqa: E402
from hltest import Fail, check  # noqa: E402

L = netlab.Lab("upnp", needs=["miniupnpd", "upnpc", "iptables-legacy",
                           "python3"])

WAN, RTR_PUB, RTR_LAN, LAN1, LAN2 = ("11.0.0.1", "11.0.0.2", "10.2.0.1",
                                     "10.2.0.2", "10.2.0.3")
EXT = RTR_PUB


def build():
    global wan, rtr, br, lan1, lan2
    wan = L.netns("wan")
    rtr = L.netns("rtr")
    br = L.netns("br")
    lan1 = L.netns("lan1")
    lan2 = L.netns("lan2")
    L.veth(rtr, "r-pub", wan, "w-r")
    L.veth(rtr, "r-lan", br, "b-r")
    L.veth(lan1, "l1", br, "b-1")
    L.veth(lan2, "l2", br, "b-2")
    L.sh(br, """ip link add br0 type bridge
        for i in b-r b-1 b-2; do ip link set $i master br0; ip link set $i up; done
        ip link set br0 up""")
    L.sh(wan, "ip addr add %s/24 dev w-r; ip link set w-r up" % WAN)
    L.sh(rtr, """ip addr add %s/24 dev r-pub; ip link set r-pub up
        ip addr add %s/24 dev r-lan; ip link set r-lan up
        sysctl -qw net.ipv4.ip_forward=1""" % (RTR_PUB, RTR_LAN))
    for ns, ifc, a in ((lan1, "l1", LAN1), (lan2, "l2", LAN2)):
        L.sh(ns, """ip addr add %s/24 dev %s; ip link set %s up
            ip route add default via %s""" % (a, ifc, ifc, RTR_LAN))
    # The NAT, with miniupnpd's chains (legacy back end, see docs/lab.md,
    # "Pitfalls"): from
    # the WAN only mapped ports and replies get in.
    L.sh(rtr, """I=iptables-legacy
        $I -t nat -A POSTROUTING -o r-pub -j MASQUERADE
        $I -t nat -N MINIUPNPD; $I -t nat -I PREROUTING -i r-pub -j MINIUPNPD
        $I -N MINIUPNPD; $I -A FORWARD -i r-pub ! -o r-pub -j MINIUPNPD
        $I -A FORWARD -i r-pub -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
        $I -A FORWARD -i r-pub -j DROP
        $I -t nat -N MINIUPNPD-POSTROUTING
        $I -t nat -I POSTROUTING -o r-pub -j MINIUPNPD-POSTROUTING""")
    conf = os.path.join(L.tmp, "miniupnpd.conf")
    with open(conf, "w") as f:
        f.write("""ext_ifname=r-pub
listening_ip=r-lan
port=5000
enable_upnp=yes
enable_natpmp=yes
secure_mode=yes
system_uptime=yes
uuid=3a3b5e4f-1111-2222-3333-444455556666
allow 1024-65535 10.2.0.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
""")
    start_miniupnpd()
    L.http_backend(lan1, 8080, TOKEN)


ROOTDESC = "http://%s:5000/rootDesc.xml" % RTR_LAN


def upnpc(*args):
    """upnpc in lan2, told where the IGD is (no 2 s discovery)."""
    return L.run(lan2, ["upnpc", "-u", ROOTDESC] + list(args), timeout=20)


def mappings(with_lease=False, proto="TCP"):
    """upnpc -l in lan2: the router's list of TCP (or UDP) mappings, as
    [(ext port, internal client, internal port)], or with the lease time
    left as a fourth item."""
    rc, out, err = upnpc("-l")
    check(rc == 0 and "Local LAN ip address" in out, "upnpc -l in lan2",
          "a listing from the IGD", out + err)
    found = [(int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4)))
             for m in re.finditer(proto + r"\s+(\d+)->([0-9.]+):(\d+)\s+"
                                  r"'[^']*'\s+'[^']*'\s+(\d+)", out)]
    return found if with_lease else [f[:3] for f in found]


TOKEN = "lab-upnp-%d" % os.getpid()
server = client = None
S = {}


def server_config(upnp_conf):
    return {
        "proxy": {"listen": "off"},
        "plugins": {
            "transport-tls": {"listen": ["[::]:7008", "127.0.0.1:7010"]},
            "upnp": upnp_conf,
        },
        "services": {"web": {"target": "127.0.0.1:8080"}},
    }


def start_server(upnp_conf, ext_port):
    server.configure(server_config(upnp_conf))
    if "host" not in S:
        pw, kh = server.url("web")
        S["host"] = "%s-%s.localhost:7009" % (pw, kh)
        S["kh"] = kh
    t0 = time.monotonic()
    server.launch()
    if ext_port is not None:
        server.expect_log(r"reachable at %s:%d" % (re.escape(EXT), ext_port),
                        timeout=20)
    return time.monotonic() - t0


def lan_visit(transport, addr, what):
    """The client, with a fresh state_dir, on the LAN (lan2) with only
    transport and `peers:` addr: it fetches the page and stops; returns
    its peers.cache (what it learnt from the server)."""
    import shutil
    shutil.rmtree(client.state_dir, ignore_errors=True)
    client.ns = lan2
    client.configure({
        "proxy": {"listen": "127.0.0.1:7009"},
        "plugins": {transport: {}},
        "peers": {S["kh"]: [addr]},
    })
    client.launch_and_fetch(S["host"], TOKEN, what)
    client.stop_ok()
    return client.peers_cache()


def variant(mode):
    # A short lease over UPnP, to see it renewed (at half) within the test.
    upnp_conf = {"upnp": mode == "upnp", "natpmp": mode == "natpmp",
                 "discover_timeout_ms": 2000,
                 "lease": 60 if mode == "upnp" else 3600}

    def mapped():
        secs = start_server(upnp_conf, 7008)
        print("     %s: mapped and reachable at %s:7008 %.2f s after start" %
              (mode, EXT, secs), flush=True)
        m = mappings()
        check((7008, LAN1, 7008) in m, "the router's mappings",
              "TCP 7008->%s:7008" % LAN1, m)
        check(all(p != 7010 for _, _, p in m), "the router's mappings",
              "nothing for the loopback listener 127.0.0.1:7010", m)

    def visit_on_lan():
        cache = lan_visit("transport-tls", "%s:7008" % LAN1,
                          "GET on the LAN")
        check(re.search(r"^%s \d+ .*\b%s:7008\b" % (S["kh"], re.escape(EXT)),
                        cache, re.M),
              "the client's peers.cache after a LAN visit",
              "the server's WANHost %s:7008" % EXT, cache)

    def fetch_from_wan():
        client.ns = wan
        client.configure({
            "proxy": {"listen": "127.0.0.1:7009"},
            "plugins": {"transport-tls": {}},
        })
        secs = client.launch_and_fetch(
            S["host"], TOKEN,
            "GET from the WAN with only the remembered address")
        print("     %s: fetched from the WAN in %.3f s" % (mode, secs),
              flush=True)
        client.stop_ok()

    def renewed():
        server.expect_log(r"renewed external TCP port 7008 -> %s:7008 over UPnP "
                        r"\(lease 60 s\)" % re.escape(LAN1), 45)
        m = [x for x in mappings(with_lease=True) if x[0] == 7008]
        check(len(m) == 1 and m[0][3] > 45, "the mapping after its renewal",
              "7008 with more than 45 s of its 60 s lease left", m)

    def unmapped_at_exit():
        t0 = time.monotonic()
        server.stop_ok()
        print("     %s: hlcore stopped (mapping removed) in %.2f s" %
              (mode, time.monotonic() - t0), flush=True)
        m = mappings()
        check(all(e != 7008 for e, _, _ in m), "the router's mappings "
              "after the server's SIGTERM", "no mapping of port 7008", m)

    ok = L.case("%s: the server maps its port on the router" % mode, mapped)
    if ok:
        ok = L.case("%s: a LAN visit teaches the client the external "
                    "address" % mode, visit_on_lan)
    if ok:
        L.case("%s: the client fetches from the WAN through the mapped "
               "port" % mode, fetch_from_wan)
    if ok and mode == "upnp":
        L.case("upnp: the lease is renewed at half its time", renewed)
    if server.proc and server.proc.poll() is None:
        L.case("%s: SIGTERM removes the mapping" % mode, unmapped_at_exit)


def next_port():
    """Another host holds external port 7008: the server takes 7009."""
    rc, out, err = upnpc("-e", "not hardline", "-a", LAN2, "7008", "7008",
                         "TCP")
    check(rc == 0 and (7008, LAN2, 7008) in mappings(),
          "upnpc -a in lan2", "port 7008 mapped to lan2", out + err)
    start_server({"natpmp": False}, 7009)
    m = mappings()
    check((7009, LAN1, 7008) in m and (7008, LAN2, 7008) in m,
          "the router's mappings", "7009->%s:7008 beside lan2's 7008" % LAN1,
          m)
    server.stop_ok()
    m = mappings()
    check(all(e != 7009 for e, _, _ in m) and (7008, LAN2, 7008) in m,
          "the router's mappings after the server's SIGTERM",
          "lan2's 7008 only", m)
    upnpc("-d", "7008", "TCP")


def udp_mapping():
    """transport-udp's UDP port is mapped too (same external port first),
    reported as the typed endpoint quic://<ext>:7008 (not a WANHost);
    a client that visited once over QUIC on the LAN learns it and, from
    the WAN with transport-udp only, fetches through the mapped UDP
    port; SIGTERM removes both mappings."""
    server.configure({
        "proxy": {"listen": "off"},
        "plugins": {
            "transport-tls": {"listen": "[::]:7008"},
            "transport-udp": {"listen": "[::]:7008"},
            "upnp": {"natpmp": False},
        },
        "services": {"web": {"target": "127.0.0.1:8080"}},
    })
    server.launch()
    server.expect_log(r"reachable at quic://%s:7008" % re.escape(EXT), 25)
    server.expect_log(r"reachable at %s:7008" % re.escape(EXT), 25)
    m = mappings(proto="UDP")
    check((7008, LAN1, 7008) in m, "the router's UDP mappings",
          "UDP 7008->%s:7008" % LAN1, m)
    check((7008, LAN1, 7008) in mappings(), "the router's TCP mappings",
          "TCP 7008->%s:7008 as well" % LAN1, mappings())
    cache = lan_visit("transport-udp", "quic://%s:7008" % LAN1,
                      "GET over QUIC on the LAN")
    check(re.search(r"^%s \d+ .*\bquic://%s:7008\b" %
                    (S["kh"], re.escape(EXT)), cache, re.M),
          "the client's peers.cache after a QUIC visit",
          "the typed endpoint quic://%s:7008" % EXT, cache)
    client.ns = wan
    client.configure({
        "log": {"level": "debug"},
        "proxy": {"listen": "127.0.0.1:7009"},
        "plugins": {"transport-udp": {}},
    })
    secs = client.launch_and_fetch(
        S["host"], TOKEN, "GET over QUIC from the WAN, remembered endpoint")
    print("     udp: fetched over QUIC from the WAN in %.3f s" % secs,
          flush=True)
    check(re.search(r"won by transport-udp (quic://)?%s:7008" %
                    re.escape(EXT), client.log()),
          "the client's route", "won by transport-udp at %s:7008" % EXT,
          client.log()[-2000:])
    client.stop_ok()
    server.stop_ok()
    check(all(e != 7008 for e, _, _ in mappings(proto="UDP")),
          "the router's UDP mappings after the server's SIGTERM",
          "no mapping of port 7008", mappings(proto="UDP"))


def start_miniupnpd():
    global mupnp
    mupnp = L.spawn(rtr, ["miniupnpd", "-d", "-f",
                          os.path.join(L.tmp, "miniupnpd.conf"), "-P",
                          os.path.join(L.tmp, "miniupnpd.pid")], "miniupnpd")
    L.wait_for(lambda: L.run(rtr, ["sh", "-c", "ss -ltn | grep -q :5000"],
                             timeout=5)[0] == 0,
               10, "miniupnpd listening on port 5000")


def router_comes_later():
    """No router answers at first: a warning, the daemon goes on, and the
    port is mapped once the router is back (the first retry is 10 s)."""
    check(L.stop(mupnp, timeout=10) is not None, "miniupnpd after SIGTERM",
          "an exit", None)
    start_server({}, None)
    server.expect_log(r"warn .*no router to map ports on \(no UPnP IGD "
                    r"answered within 2000 ms; NAT-PMP: .*\); will retry", 10)
    t0 = time.monotonic()
    start_miniupnpd()
    server.expect_log(r"reachable at %s:7008" % re.escape(EXT), 25)
    print("     mapped %.1f s after the router came back" %
          (time.monotonic() - t0), flush=True)
    check((7008, LAN1, 7008) in mappings(), "the router's mappings",
          "TCP 7008->%s:7008" % LAN1, mappings())
    server.stop_ok()
    check(all(e != 7008 for e, _, _ in mappings()),
          "the router's mappings after the server's SIGTERM",
          "no mapping of port 7008", mappings())


def bad_config():
    bad = os.path.join(L.tmp, "bad.yaml")
    with open(bad, "w") as f:
        f.write("plugins:\n  upnp: { lease: 5, natpmp: maybe, colour: "
                "blue }\n")
    rc, out, err = L.run(lan1, [L.hlcore, "-c", bad, "check"],
                         timeout=30)
    check(rc == 2 and re.search(r"bad.yaml:2:\d+: .*lease", err) and
          "natpmp" in err and "colour" in err,
          "hlcore check with bad upnp settings",
          "exit 2 naming lease, natpmp and colour at file:line:column",
          "exit %d: %s" % (rc, err))


if L.case("the lab: NAT router with miniupnpd, two LAN hosts, a WAN host",
          build):
    server = L.node("server", ns=lan1)
    client = L.node("client", ns=lan2)
    variant("upnp")
    variant("natpmp")
    L.case("upnp: port 7008 taken on the router: the next port is mapped",
           next_port)
    L.case("upnp: transport-udp's UDP port mapped, a quic:// endpoint "
           "used from the WAN", udp_mapping)
    L.case("upnp: no router at first: retried until it answers",
           router_comes_later)
    L.case("upnp: bad settings are refused by hlcore check", bad_config)
    if mupnp.poll() is not None:
        L.failed += 1
        print("FAIL miniupnpd exited (%s)" % mupnp.returncode)
L.finish()
