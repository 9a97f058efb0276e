#!/usr/bin/env python3
"""The yggdrasil plugin with two real Yggdrasil nodes peered over a veth.

    y1 (10.3.0.1, yggdrasil, hlcore server) --- y2 (10.3.0.2, yggdrasil, client)

The server (transport-tls on [::]:7008, yggdrasil loaded) advertises its
mesh address in WANHosts: a client that visits once over IPv4 (peers:
10.3.0.1:7008) remembers "[<mesh address>]:7008" in its peers.cache. Then
IPv4 to the server's port is dropped (iptables in y1) and the client,
restarted, still fetches, through the mesh, within about a second (the
250 ms stagger, not a TCP timeout). Then the server's Yggdrasil restarts
with a new key and the plugin follows the new address; and with an admin
socket that never answers, the plugin falls back to the interface scan.
"""
import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import netlab  # noqa: E402
from hltest import Fail, check  # noqa: E402

L = netlab.Lab("yggdrasil", needs=["yggdrasil", "iptables-legacy", "python3"])

V4_SERVER, V4_CLIENT = "10.3.0.1", "10.3.0.2"
YPORT = 12345
TOKEN = "lab-ygg-%d" % os.getpid()
S = {}
ygg = {}


def ygg_config(name, listen, peers):
    rc, out, err = L.run(L.namespaces[0], ["yggdrasil", "-genconf", "-json"],
                         timeout=20)
    check(rc == 0, "yggdrasil -genconf", "a config", err)
    c = json.loads(out)
    sock = os.path.join(L.tmp, "%s.sock" % name)
    c.update({"AdminListen": "unix://" + sock, "Listen": listen,
              "Peers": peers, "MulticastInterfaces": [],
              "IfName": "auto", "NodeInfoPrivacy": True})
    path = os.path.join(L.tmp, "%s.conf" % name)
    with open(path, "w") as f:
        json.dump(c, f)
    os.chmod(path, 0o600)
    return path, sock


def admin_address(sock):
    """getSelf over the admin socket, as the plugin asks it."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    try:
        s.connect(sock)
        s.sendall(b'{"request":"getSelf"}\n')
        data = b""
        while len(data) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        s.close()
    try:
        return json.loads(data)["response"]["address"]
    except (ValueError, KeyError, TypeError):
        return None


def start_ygg(ns, name, listen, peers):
    conf, sock = ygg_config(name, listen, peers)
    if os.path.exists(sock):
        os.unlink(sock)
    p = L.spawn(ns, ["yggdrasil", "-useconffile", conf], "yggdrasil-" + name)
    addr = L.wait_for(lambda: admin_address(sock), 15,
                      "Yggdrasil %s answering on its admin socket" % name,
                      step=0.1)
    ygg[name] = {"proc": p, "sock": sock, "addr": addr}
    return addr


def tcp_reaches(ns, host, port, timeout=1.0):
    rc, _, _ = L.run(ns, ["python3", "-c",
                          "import socket,sys; socket.create_connection("
                          "(sys.argv[1], int(sys.argv[2])), float(sys.argv[3]))",
                          host, str(port), str(timeout)], timeout=timeout + 10)
    return rc == 0


def build():
    global y1, y2
    y1 = L.netns("y1")
    y2 = L.netns("y2")
    L.veth(y1, "s-c", y2, "c-s")
    L.sh(y1, "ip addr add %s/24 dev s-c; ip link set s-c up" % V4_SERVER)
    L.sh(y2, "ip addr add %s/24 dev c-s; ip link set c-s up" % V4_CLIENT)
    a1 = start_ygg(y1, "y1", ["tcp://%s:%d" % (V4_SERVER, YPORT)], [])
    start_ygg(y2, "y2", [], ["tcp://%s:%d" % (V4_SERVER, YPORT)])
    print("     y1's mesh address %s, y2's %s" % (a1, ygg["y2"]["addr"]),
          flush=True)
    L.http_backend(y1, 8080, TOKEN)


def server_config(admin):
    return {
        "proxy": {"listen": "off"},
        "plugins": {
            "transport-tls": {"listen": "[::]:7008"},
            "yggdrasil": {"admin": admin, "interval": 2},
        },
        "services": {"web": {"target": "127.0.0.1:8080"}},
    }


def client_config():
    return {
        "proxy": {"listen": "127.0.0.1:7009"},
        "plugins": {"transport-tls": {}},
        "peers": {S["kh"]: ["%s:7008" % V4_SERVER]},
    }


def advertised():
    server.configure(server_config("unix://" + ygg["y1"]["sock"]))
    pw, kh = server.url("web")
    S["host"] = "%s-%s.localhost:7009" % (pw, kh)
    S["kh"] = kh
    t0 = time.monotonic()
    server.launch()
    server.expect_log(r"reachable at \[%s\]:7008" %
                    re.escape(ygg["y1"]["addr"]))
    print("     WANHost [%s]:7008 %.2f s after start" %
          (ygg["y1"]["addr"], time.monotonic() - t0), flush=True)


def visit_over_ipv4():
    client.configure(client_config())
    client.launch_and_fetch(S["host"], TOKEN, "GET over IPv4")
    client.stop_ok()
    cache = client.peers_cache()
    want = "[%s]:7008" % ygg["y1"]["addr"]
    check(re.search(r"^%s \d+ \S*%s" % (S["kh"], re.escape(want)), cache,
                    re.M),
          "the client's peers.cache after the visit",
          "the server's mesh WANHost %s" % want, cache)


def mesh_after_ipv4_dropped():
    a = ygg["y1"]["addr"]
    L.wait_for(lambda: tcp_reaches(y2, a, 7008), L.slow(30),
               "y2 reaching [%s]:7008 over the mesh" % a, step=0.5)
    L.sh(y1, "iptables-legacy -A INPUT -p tcp --dport 7008 -j DROP")
    check(not tcp_reaches(y2, V4_SERVER, 7008, 1.0),
          "TCP from y2 to %s:7008 after the DROP rule" % V4_SERVER,
          "no connection", "a connection")
    secs = client.launch_and_fetch(
        S["host"], TOKEN, "GET with IPv4 dropped",
        "200 with the backend's token (through the mesh)")
    limit = L.slow(1.5)
    print("     fetched through the mesh in %.3f s with IPv4 dropped" % secs,
          flush=True)
    check(secs < limit, "time of the GET with IPv4 dropped",
          "under %.1f s (the stagger, not a TCP timeout)" % limit,
          "%.3f s" % secs)
    client.stop_ok()


def follows_address_change():
    old = ygg["y1"]["addr"]
    rc = L.stop(ygg["y1"]["proc"], timeout=10)
    check(rc is not None, "Yggdrasil y1 after SIGTERM", "an exit", rc)
    new = start_ygg(y1, "y1", ["tcp://%s:%d" % (V4_SERVER, YPORT)], [])
    check(new != old, "y1's new mesh address", "a new one", new)
    t0 = time.monotonic()
    server.expect_log(r"reachable at \[%s\]:7008" % re.escape(new), 15)
    print("     new address [%s]:7008 advertised %.2f s after Yggdrasil "
          "answered" % (new, time.monotonic() - t0), flush=True)
    server.stop_ok()


def silent_admin_socket():
    """An admin socket that accepts and never answers: the plugin gives up
    after 2 s and finds the address on the interface instead."""
    path = os.path.join(L.tmp, "silent.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(16)
    held = []

    def hold():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    stop = threading.Event()
    th = threading.Thread(target=hold, daemon=True)
    th.start()
    try:
        server.configure(server_config("unix://" + path))
        server.launch()
        server.expect_log(r"admin socket unix://\S+silent.sock: no answer "
                        r"within 2 s; using interface addresses", 10)
        server.expect_log(r"reachable at \[%s\]:7008" %
                        re.escape(ygg["y1"]["addr"]), 5)
        server.stop_ok()
    finally:
        stop.set()
        th.join(5)
        for c in held:
            c.close()
        srv.close()


def bad_config():
    bad = os.path.join(L.tmp, "bad.yaml")
    with open(bad, "w") as f:
        f.write("plugins:\n  yggdrasil: { admin: \"http://x\", "
                "interval: 0, colour: blue }\n")
    rc, out, err = L.run(y1, [L.hlcore, "-c", bad, "check"], timeout=30)
    check(rc == 2 and re.search(r"bad.yaml:2:\d+: .*admin", err) and
          "interval" in err and "colour" in err,
          "hlcore check with bad yggdrasil settings",
          "exit 2 naming admin, interval and colour at file:line:column",
          "exit %d: %s" % (rc, err))


if L.case("the lab: two Yggdrasil nodes peered over a veth", build):
    server = L.node("server", ns=y1)
    client = L.node("client", ns=y2)
    L.case("yggdrasil: bad settings are refused by hlcore check", bad_config)
    if L.case("yggdrasil: the server advertises its mesh address",
              advertised) and \
       L.case("yggdrasil: a visit over IPv4 teaches the client the mesh "
              "address", visit_over_ipv4):
        L.case("yggdrasil: with IPv4 dropped the client fetches through "
               "the mesh within about a second", mesh_after_ipv4_dropped)
    if server.proc and server.proc.poll() is None:
        L.case("yggdrasil: a new Yggdrasil address replaces the old one",
               follows_address_change)
    L.case("yggdrasil: a silent admin socket: interface addresses instead",
           silent_admin_socket)
L.finish()
