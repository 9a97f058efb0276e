#!/usr/bin/env python3
"""The dht plugin against a real three-node OpenDHT network (root only).

An island of namespaces (tests/lib/netlab.py): dhtnode on d1, d2, d3 (d1
and d2 also serve the OpenDHT HTTP proxy); the server hlcore on srv
(transport-tls listening on its lab address and advertising it, dht
bootstrapped to d1); clients on cli with no LAN plugin, no peers: and a
fresh state_dir, so the DHT is their only way to the service; and a node
on an island of its own (only loopback) with the default bootstrap host.

The key is computed here from docs/protocol.md alone (hashlib), and the record
is read back through dhtnode's own proxy, independently of the plugin.
A record put the way Python Hardline puts it (raw ASCII through the
proxy) is found by hlcore too, next to junk records that must be ignored.

hlcore's own endpoints record (docs/protocol.md, "The endpoints record"):
servers with transport-udp `advertise:` (a quic:// endpoint) or `hubs:`
(hub://, a real hlcore hub on the host "hub") publish it beside WANHosts,
which stays exactly what Python reads; it is read back and verified here
with Python's own code (netlab.dht_ep_open). Clients with transport-udp
only, no `hubs:`, no `peers:` and no LAN plugin, fetch a QUIC-only service
(no WANHosts at all) and a service behind a hub: the DHT's endpoints record
is their only way there. Forged, replayed, oversized and malformed
endpoints records pointing at a real service's real address are dropped
and counted (the fetch fails); one made and signed by this script with the
service's key then works.
"""
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import netlab  # noqa: E402

why = netlab.usable(["dhtnode"])
if why:
    print("SKIP: %s" % why)
    print("0 passed, 0 failed")
    sys.exit(77)

import hltest  # noqa: E402
import hubpeer  # noqa: E402
from hltest import check, check_eq, check_in, fetch  # noqa: E402

t = hltest.Test("dht")
if not os.path.exists(os.path.join(t.build_dir, "plugins", "dht.so")):
    print("SKIP: the dht plugin is not built (HL_PLUGIN_DHT=OFF?)")
    print("0 passed, 0 failed")
    sys.exit(77)
lab = netlab.DhtLab(hosts=("srv", "cli", "cx", "hub"), isolated=("off",))
SRV = lab.ip("srv")
TLS = SRV + ":7008"          # where the DHT server listens and advertises
TLS2 = SRV + ":7009"         # a server that does not publish itself
TLS3 = SRV + ":7010"         # a server that publishes through the proxy
QUIC = SRV + ":7011"         # a QUIC-only server (no WANHosts)
QUICF = SRV + ":7012"        # a QUIC server that publishes nothing itself
QUICH = SRV + ":7013"        # a QUIC server registered with the hub
HUB = lab.ip("hub") + ":7777"
BOOT = ["%s:%d" % (lab.ip("d1"), netlab.DHT_PORT)]
UNKNOWN = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
S = {}       # name -> keyhash
P = {}       # node name -> proxy port (127.0.0.1 in its namespace)
nodes = {}


def level():
    return hltest.log_level()


def node(name, host, cfg):
    """Start an hlcore in host's namespace with cfg (plus state, log and a
    proxy on 127.0.0.1 there); returns it once its proxy listens."""
    n = t.node(name)
    nodes[name] = (n, host)

    def make():
        with lab.inside(host):
            P[name] = hltest.free_port()
        c = {"state_dir": n.state_dir, "log": {"level": level()},
             "proxy": {"listen": "127.0.0.1:%d" % P[name]}}
        c.update(cfg)  # may set its own log level
        return c
    with lab.inside(host):
        n.start(make, lambda c: [P[name]])
    return n


def keyhash_of(n, service):
    rc, out, err = n.cmd("url", service)
    check(rc == 0, "hlcore url %s" % service, "exit 0", err)
    m = hltest.URL_RE.match(out.strip())
    check(m is not None, "the URL of %s" % service, "a Hardline URL", out)
    return m.group(2)


def get(name, kh, path, timeout=30):
    with lab.inside(nodes[name][1]):
        return fetch(P[name], "-%s.localhost:%d" % (kh, P[name]), path,
                     timeout=t.slow(timeout))


def expect_page(r, what, path):
    check(r.status == 200 and backend.token in r.text and
          ("path=%s\n" % path) in r.text, what,
          "200 with the backend's page (token %s, path %s)" %
          (backend.token, path), r)


def wait_for(fn, what, timeout):
    deadline = time.monotonic() + t.slow(timeout)
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK")
    except OSError:
        return None


def lookup_ends(name, what):
    """A GET through node name of a keyhash nobody serves ends in 502
    within 9 s (stretched under ASan)."""
    t0 = time.monotonic()
    r = get(name, UNKNOWN, "/")
    took = time.monotonic() - t0
    check(r.status == 502 and took < t.slow(9), what,
          "502 within %d s" % t.slow(9), "%s after %.1f s" % (r, took))


# ---- the cases ----

def case_lab():
    lab.up()


def case_offline_start():
    # The default bootstrap (bootstrap.jami.net) cannot be reached from an
    # island: hlcore starts anyway, says so once, and retries cheaply.
    node("offline", "off", {"log": {"level": "debug"},
                            "plugins": {"dht": {}}})
    # Stopped while its name lookup of the bootstrap host still waits
    # for a name server that never answers: nothing may leak (ASan).
    # It serves a service but knows no outside address: it says once
    # that it has nothing to publish.
    n = node("offline-stop", "off", {
        "plugins": {"dht": {}},
        "services": {"x": {"target": "127.0.0.1:9", "password": "none"}}})
    time.sleep(1)
    n.stop_ok()
    check_eq(len(re.findall(r"nothing to publish", n.log())), 1,
             "'nothing to publish' lines of a node with empty WANHosts")


def start_server(name, service, tls, dht, udp=None):
    """Start node name in srv, serving service (no password) with
    transport-tls on tls, advertised (none when tls is None), this dht
    config (none when None) and transport-udp with config udp (a dict, or
    an address to listen on and advertise: a quic:// endpoint); its
    keyhash goes in S[service]."""
    plugins = {}
    if tls is not None:
        plugins["transport-tls"] = {"listen": tls, "advertise": [tls]}
    if dht is not None:
        plugins["dht"] = dht
    if isinstance(udp, str):
        udp = {"listen": udp, "advertise": [udp]}
    if udp is not None:
        plugins["transport-udp"] = udp
    cfg = {"plugins": plugins,
           "services": {service: {"target": backend.addr, "password": "none"}}}
    n = t.node(name)
    nodes[name] = (n, "srv")
    with lab.inside("srv"):
        P[name] = hltest.free_port()
    cfg.update({"state_dir": n.state_dir, "log": {"level": level()},
                "proxy": {"listen": "127.0.0.1:%d" % P[name]}})
    n.write_config(cfg)
    S[service] = keyhash_of(n, service)
    with lab.inside("srv"):
        n.start(lambda: cfg, lambda c: [P[name]])
    return n


def published_endpoints(n, timeout=30):
    """The endpoints node n says it published in its endpoints record."""
    m = n.wait_log(r'published the endpoints "([^"]*)" for 1 service',
                   timeout)
    check(m is not None, "%s's log" % n.name,
          'published the endpoints "..."', n.log()[-3000:])
    return m.group(1)


def key_days():
    """The UTC days whose keys a node reads now (docs/protocol.md, "DHT":
    today's, and within an hour of midnight the neighbouring day's)."""
    now = int(time.time())
    today, into = now // 86400, now % 86400
    if into < 3600:
        return [today, today - 1]
    if into >= 86400 - 3600:
        return [today, today + 1]
    return [today]


def endpoints_at_proxy(service, want):
    """The endpoints records of service at d2's proxy (the server put them
    through d1 or its own node), each checked with this script's own code
    from docs/protocol.md; waits until one holds exactly want."""
    kh, day = S[service], netlab.today()
    key = netlab.dht_ep_key(kh, day)

    def opened():
        out = []
        for v in lab.proxy_values("d2", key):
            try:
                out.append(netlab.dht_ep_open(v, kh, day))
            except ValueError as e:
                out.append("refused: %s" % e)
        return out
    got = wait_for(lambda: want in opened(), "endpoints record", 20)
    recs = opened()
    check(got and all(r == want for r in recs),
          "the endpoints records of %s at d2's proxy (key %s)" %
          (service, key), "signed by its key, endpoints %s" % want, recs)


def case_server_start():
    n = start_server("server", "web", TLS, {"bootstrap": BOOT}, udp=TLS)
    m = n.wait_log(r'published "([^"]*)" for 1 service', 30)
    check(m is not None, "the server's log", 'published "%s"' % TLS,
          n.log()[-3000:])
    check_eq(m.group(1), TLS, "the record the server says it published")
    # Its quic:// endpoint goes into its endpoints record, never into
    # WANHosts (checked at the proxy below).
    check_eq(published_endpoints(n), "quic://" + TLS,
             "the endpoints the server says it published")


def case_record_through_proxy():
    # Read back at dhtnode's proxy (d2, not the node the server knows),
    # at the key computed here from docs/protocol.md.
    key = netlab.dht_key(S["web"])
    vals = wait_for(lambda: lab.proxy_values("d2", key), "record", 20)
    check(vals, "GET /key/%s at d2's proxy" % key, "the server's record",
          vals)
    check_in(TLS.encode(), vals, "the values under today's key")
    # What Python Hardline reads is untouched by the endpoints record:
    # the server has a quic:// endpoint, and none of it is here.
    check(all(v == TLS.encode() for v in vals), "every value under the key",
          "the server's WANHosts %r, raw ASCII" % TLS, vals)
    endpoints_at_proxy("web", ["quic://" + TLS])
    # Not under another day's key unless near midnight.
    now = time.time()
    if 3600 < now % 86400 < 86400 - 3600:
        other = netlab.dht_key(S["web"], int(now) // 86400 + 2)
        check_eq(lab.proxy_values("d2", other), [],
                 "values under the key of the day after tomorrow")


def case_native_client():
    n = node("native", "cli", {"plugins": {
        "transport-tls": {},
        "dht": {"bootstrap": ["%s:%d" % (lab.ip("d3"), netlab.DHT_PORT)]}}})
    check(n.wait_log(r"joined the DHT", 20) is not None,
          "the native client's log", "joined the DHT", n.log()[-3000:])
    r = get("native", S["web"], "/via-native-dht")
    expect_page(r, "the service through a DHT lookup (native node)",
                "/via-native-dht")


def case_proxy_client():
    n = node("light", "cli", {"plugins": {
        "transport-tls": {}, "dht": {"proxy": lab.proxy_url("d2")}}})
    check_in("using the OpenDHT proxy", n.log(), "the light client's log")
    r = get("light", S["web"], "/via-proxy")
    expect_page(r, "the service through the OpenDHT proxy", "/via-proxy")


def case_proxy_server():
    # A server with no DHT node: it publishes with POST at d1's proxy; the
    # record is read at d2's and found by the native client.
    n = start_server("server3", "web3", TLS3,
                     {"proxy": lab.proxy_url("d1")}, udp=TLS3)
    m = n.wait_log(r'published "([^"]*)" for 1 service', 20)
    check(m is not None and m.group(1) == TLS3, "the proxy server's log",
          'published "%s"' % TLS3, n.log()[-2000:])
    check_eq(published_endpoints(n, 20), "quic://" + TLS3,
             "the endpoints the proxy server says it published")
    endpoints_at_proxy("web3", ["quic://" + TLS3])
    key = netlab.dht_key(S["web3"])
    vals = wait_for(lambda: TLS3.encode() in lab.proxy_values("d2", key),
                    "record", 20)
    check(vals, "the record POSTed through d1's proxy, read at d2", TLS3,
          lab.proxy_values("d2", key))
    expect_page(get("native", S["web3"], "/published-by-proxy"),
                "a service published through the proxy",
                "/published-by-proxy")


def case_python_style_record():
    # A second server with no dht plugin: its record is put by "Python
    # Hardline" (this script), raw ASCII through the proxy, among records
    # that must be ignored: blank, junk, too many addresses, too long.
    # (dhtnode's proxy stores "data":"" as two NUL bytes, so the truly
    # empty record is left to the unit test.)
    cfg = {"plugins": {"transport-tls": {"listen": TLS2}},
           "services": {"web2": {"target": backend.addr,
                                 "password": "none"}}}
    n = t.node("server2")
    nodes["server2"] = (n, "srv")
    with lab.inside("srv"):
        P["server2"] = hltest.free_port()
    cfg.update({"state_dir": n.state_dir, "log": {"level": level()},
                "proxy": {"listen": "127.0.0.1:%d" % P["server2"]}})
    n.write_config(cfg)
    S["web2"] = keyhash_of(n, "web2")
    with lab.inside("srv"):
        n.start(lambda: cfg, lambda c: [P["server2"]])
    key = netlab.dht_key(S["web2"])
    junk = [b"  ", b"not an address", b"10.0.0.1:99999",
            ",".join("10.9.9.%d:7" % i for i in range(17)).encode(),
            b"a" * 1100 + b":7008"]
    for v in junk:
        lab.proxy_put("d1", key, v)
    lab.proxy_put("d1", key, TLS2.encode())
    vals = wait_for(lambda: TLS2.encode() in lab.proxy_values("d2", key),
                    "record", 20)
    check(vals, "the Python-style record at d2", TLS2, "not there")
    expect_page(get("native", S["web2"], "/python-record"),
                "a Python-style record (native node)", "/python-record")
    expect_page(get("light", S["web2"], "/python-record-proxy"),
                "a Python-style record (proxy)", "/python-record-proxy")


def quic_client(name, dht):
    """A client on cli with transport-udp only (dial only, no hubs:), no
    LAN plugin, no peers:: the DHT is its only source of candidates, and
    it dials only typed quic:// and hub:// ones (and bare host:port)."""
    return node(name, "cli", {"plugins": {"transport-udp": {}, "dht": dht}})


def case_quic_only():
    # A QUIC-only server: no transport-tls, so no WANHosts and nothing
    # under the key Python reads; its quic:// endpoint goes only into the
    # endpoints record.
    n = start_server("qserver", "webq", None, {"bootstrap": BOOT}, udp=QUIC)
    check_eq(published_endpoints(n), "quic://" + QUIC,
             "the endpoints the QUIC-only server says it published")
    check("nothing to publish" not in n.log(), "the QUIC-only server's log",
          "no 'nothing to publish' (it has endpoints)", n.log()[-2000:])
    endpoints_at_proxy("webq", ["quic://" + QUIC])
    check_eq(lab.proxy_values("d2", netlab.dht_key(S["webq"])), [],
             "values under the WANHosts key of the QUIC-only service")
    c = quic_client("qclient", {"bootstrap": ["%s:%d" % (lab.ip("d3"),
                                                         netlab.DHT_PORT)]})
    check(c.wait_log(r"joined the DHT", 20) is not None,
          "the QUIC client's log", "joined the DHT", c.log()[-3000:])
    expect_page(get("qclient", S["webq"], "/quic-from-dht"),
                "a QUIC-only service through its DHT endpoints record "
                "(native)", "/quic-from-dht")


def case_quic_only_proxy():
    quic_client("qlight", {"proxy": lab.proxy_url("d2")})
    expect_page(get("qlight", S["webq"], "/quic-from-dht-proxy"),
                "a QUIC-only service through its DHT endpoints record "
                "(OpenDHT proxy)", "/quic-from-dht-proxy")


def case_hub():
    # A real hlcore hub; the server registers there (hubs:) and has no
    # advertise:, so its one endpoint is hub://; the client has no hubs:
    # of its own and learns it from the DHT alone.
    h = node("hubnode", "hub", {"plugins": {"hub": {"listen": "0.0.0.0:7777"}}})
    h.wait_log(r"rendezvous hub on UDP", 10)
    n = start_server("hserver", "webh", None, {"bootstrap": BOOT},
                     udp={"listen": QUICH, "hubs": [HUB]})
    check_eq(published_endpoints(n), "hub://" + HUB,
             "the endpoints the hub-registered server says it published")
    endpoints_at_proxy("webh", ["hub://" + HUB])
    expect_page(get("qclient", S["webh"], "/hub-from-dht"),
                "a service behind a hub learnt from the DHT (the client "
                "has no hubs:)", "/hub-from-dht")


def case_forged():
    # A QUIC server that publishes nothing (no dht plugin, no advertise:):
    # its address is real, and only records this script puts name it.
    start_server("fserver", "webf", None, None, udp={"listen": QUICF})
    kh = S["webf"]
    st = nodes["fserver"][0].state_dir
    key = hubpeer.Key.load(os.path.join(st, "webf.cert"),
                           os.path.join(st, "webf.cert.private"))
    check_eq(key.keyhash, kh, "the keyhash of webf's certificate")
    other = hubpeer.Key.new()
    ep = "quic://" + QUICF
    bad_ep = "quic://" + SRV + ":7999"  # as long as ep
    for day in key_days():
        k = netlab.dht_ep_key(kh, day)
        genuine = netlab.dht_ep_record(key, day, bad_ep)
        altered = genuine.replace(bad_ep.encode(), ep.encode())
        for rec in (
                # another key, claiming webf's keyhash
                netlab.dht_ep_record(other, day, ep, keyhash=kh),
                # webf's key, yesterday's record replayed under today's key
                netlab.dht_ep_record(key, day - 1, ep),
                # webf's own record with its endpoint changed after signing
                altered,
                # oversized: 4097 bytes and more
                genuine + bytes(4600),
                # malformed
                b"HLEP\x01\x00 not a record"):
            lab.proxy_put("d1", k, rec)
    vals = wait_for(lambda: len(lab.proxy_values("d2", netlab.dht_ep_key(
        kh, netlab.today()))) >= 5, "records", 20)
    check(vals, "the forged records at d2", "5 values", "not there")
    r = get("qclient", kh, "/forged")
    check(r.status == 502, "webf with only forged, replayed, altered, "
          "oversized and malformed endpoints records",
          "502 (every record dropped, though they name its real address)",
          r)
    # Now a record made and signed by this script (Python, from
    # docs/protocol.md) with webf's key: hlcore takes it.
    for day in key_days():
        lab.proxy_put("d1", netlab.dht_ep_key(kh, day),
                      netlab.dht_ep_record(key, day, ep))
    wait_for(lambda: len(lab.proxy_values("d2", netlab.dht_ep_key(
        kh, netlab.today()))) >= 6, "records", 20)
    expect_page(get("qclient", kh, "/python-signed"),
                "webf through an endpoints record made by Python",
                "/python-signed")


def case_unknown():
    t0 = time.monotonic()
    r = get("native", UNKNOWN, "/")
    took = time.monotonic() - t0
    check(r.status == 502 and "dht" in r.text, "a service nobody published",
          "502 naming the dht lookup", r)
    check(took < t.slow(9), "time to the 502 of an unknown service",
          "under %d s (the lookup is bounded at 5 s)" % t.slow(9),
          "%.1f s" % took)


def case_offline():
    n, _ = nodes["offline"]
    # The first round fails (no route, no name server) within 15 s; the
    # next comes 5 s later and fails too: by then there must be exactly
    # one warning, and the node has spent next to no CPU.
    m = n.wait_log(r"still no answer from bootstrap\.jami\.net", 50)
    check(m is not None, "the offline node's log",
          "a second bootstrap round (debug: still no answer ...)",
          n.log()[-3000:])
    log = n.log()
    check_eq(len(re.findall(r"no DHT bootstrap node answered", log)), 1,
             "warnings about the unreachable bootstrap in the log")
    cpu = cpu_seconds(n.pid)
    check(cpu is not None and cpu < t.slow(1.0), "CPU used by the offline "
          "node in its first ~35 s", "under %.0f s" % t.slow(1.0), cpu)
    lookup_ends("offline", "a lookup on the offline node")
    check(n.running(), "the offline node", "still running", "it exited")


def case_cancel_in_flight():
    # The route wins through peers: within milliseconds while the DHT
    # lookup is still running, so the core cancels it: natively with the
    # node's UDP to the DHT dropped (its get waits for timeouts), and in
    # proxy mode against a proxy that accepts and never answers. Later
    # results must be dropped, nothing touched after the cancel, and the
    # nodes must stop cleanly (ASan) with OpenDHT operations still open.
    with lab.inside("cx"):
        silent = hltest.SilentListener()
    peers = {S["web"]: [TLS]}
    n = node("cancel-native", "cx", {
        "log": {"level": "debug"}, "peers": peers, "plugins": {
            "transport-tls": {}, "dht": {"bootstrap": BOOT}}})
    check(n.wait_log(r"joined the DHT", 20) is not None,
          "the cancel-native node's log", "joined the DHT", n.log()[-2000:])
    with lab.inside("cx"):
        # Replies dropped on the way in: requests leave without an error,
        # so OpenDHT waits for its timeouts.
        hltest.run(["iptables", "-A", "INPUT", "-p", "udp", "-s",
                    netlab.DHT_SUBNET.rstrip(".") + ".0/24", "-j", "DROP"])
    node("cancel-proxy", "cx", {
        "log": {"level": "debug"}, "peers": peers, "plugins": {
            "transport-tls": {},
            "dht": {"proxy": "http://127.0.0.1:%d/" % silent.port}}})
    for name in ("cancel-native", "cancel-proxy"):
        for i in range(3):
            expect_page(get(name, S["web"], "/peers-%d" % i),
                        "the service through peers: (%s)" % name,
                        "/peers-%d" % i)
    # A lookup that gets no answer at all still ends, within 5 s.
    lookup_ends("cancel-proxy", "a lookup at a silent proxy")
    for name in ("cancel-native", "cancel-proxy"):
        nodes[name][0].stop_ok()
    silent.close()


def case_stop():
    for name in ("native", "light", "server", "server2", "server3",
                 "offline", "qclient", "qlight", "qserver", "hserver",
                 "fserver", "hubnode"):
        if name in nodes and nodes[name][0].running():
            nodes[name][0].stop_ok()
    log = nodes["native"][0].log()
    m = re.search(r"(\d+) empty and (\d+) malformed ignored", log)
    check(m is not None and int(m.group(1)) >= 1 and int(m.group(2)) >= 4,
          "the native client's counters at stop",
          "at least 1 empty and 4 malformed records ignored", log[-2000:])
    if "qclient" in forged_done:
        log = nodes["qclient"][0].log()
        m = re.search(r"endpoints records: (\d+) read, (\d+) forged, "
                      r"(\d+) oversized and (\d+) malformed dropped", log)
        check(m is not None and int(m.group(2)) >= 3 and
              int(m.group(3)) >= 1 and int(m.group(4)) >= 1,
              "the QUIC client's endpoints counters at stop",
              "at least 3 forged, 1 oversized and 1 malformed dropped",
              log[-2000:])


backend = None
forged_done = set()
try:
    ok = t.case("lab: three dhtnodes on an island", case_lab)
    if ok:
        with lab.inside("srv"):
            backend = t.backend()
        t.case("a node offline starts anyway", case_offline_start)
        ok = t.case("server publishes its WANHosts", case_server_start)
    if ok:
        t.case("record read back through dhtnode's proxy at the key from "
               "docs/protocol.md", case_record_through_proxy)
        native = t.case("client finds the service through the DHT (native)",
                        case_native_client)
        light = t.case("client finds the service through an OpenDHT proxy",
                       case_proxy_client)
        if native and light:
            t.case("a record put as Python Hardline does is found",
                   case_python_style_record)
        if native:
            t.case("a server publishes through an OpenDHT proxy",
                   case_proxy_server)
        if ok:
            quic = t.case("a QUIC-only service found through its endpoints "
                          "record (native)", case_quic_only)
            if quic:
                t.case("... and through an OpenDHT proxy",
                       case_quic_only_proxy)
                t.case("a hub:// learnt from the DHT by a client without "
                       "hubs:", case_hub)
                if t.case("forged, replayed, oversized and malformed "
                          "endpoints records are dropped; a Python-made "
                          "one works", case_forged):
                    forged_done.add("qclient")
        if native:
            t.case("an unknown service fails fast", case_unknown)
            t.case("lookups cancelled in flight are dropped safely",
                   case_cancel_in_flight)
    if "offline" in nodes:
        t.case("offline: one warning, little CPU, lookups still end",
               case_offline)
    if "native" in nodes:
        t.case("every node stops cleanly", case_stop)
finally:
    try:
        for n, _ in nodes.values():
            n.kill()
    finally:
        lab.destroy()
t.finish()
