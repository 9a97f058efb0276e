#!/usr/bin/env python3
"""`hlcore -c FILE punch LABEL -- CMD` through two NATs with a real hlcore
hub (netlab.homes_lab(), LAB.md's "two homes behind NATs"):

      hub host: hlcore hub 0.0.0.0:7777 (11.0.0.1)
          |  11.0.0.0/24 (bridge)
      r1 11.0.0.2 (NAT)            r2 11.0.0.3 (NAT)
          |                            |
      h1 10.1.0.2: the service     h2 10.2.0.2: `hlcore punch`

The service node serves "web" with `punch: "python3 punch_peer.py service
DIR"` and "nopunch" without punch:. The client's config has only
transport-udp's hubs: (no listen, no daemon). Both sides' commands are
punch_peer.py: it takes the punched socket (HL_PUNCH_FD) and exchanges
datagrams with the other side, writing what came from where.

Cases:
- cone/cone: punch exits with the client command's status (0); each side
  got the other's datagrams, from the other ROUTER's public address (r1's
  11.0.0.2 at the client, r2's 11.0.0.3 at the service: through the
  NATs, not a side path); r2's counters show datagrams from r1's address;
  the HL_PUNCH_* environment on both sides (local, public and peer
  address and port, role, keyhash, service) is consistent; the socket
  came blocking as fd 3 with no other descriptor above 2 leaked;
- the client command's exit status is punch's (7);
- a service without punch: refused with a clear error, exit 1, no
  command runs on either side;
- a wrong password: refused (wrong password), exit 1, the service's
  command never runs (nor the client's);
- no path for the punched sockets (r1 drops the service's UDP except
  from its QUIC port): exit 1, the error names the candidates probed and
  that they did not answer; no command runs;
- usage and settings: no "--" or a bad label: exit 2; no hubs: exit 2;
  `punch: ""` in the config: `check` says file:line:column, exit 2;
- cone/symmetric (the client behind --random-fully) and symmetric/cone
  (the service behind it): the birthday approach finds a path both for
  QUIC and for the punched sockets; the datagrams come through both
  routers.
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
import netlab  # noqa: E402
from hltest import check, check_eq, check_in  # noqa: E402

t = hltest.Test("punch", root=True, needs=["ip", "iptables-legacy"])
HUB = "%s:7777" % netlab.HUB_IP
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "punch_peer.py")
S = {}


def outdir(name):
    d = os.path.join(t.tmp, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o777)
    return d


def results(d, role):
    out = []
    for f in sorted(os.listdir(d)):
        if f.startswith(role + "-"):
            with open(os.path.join(d, f)) as fh:
                out.append(json.load(fh))
    return out


def start_hub(L):
    n = t.node("hub-%s" % L.tag, ns=L.ns("hub"))
    n.configure({"proxy": {"listen": "off"},
                 "log": {"level": "debug"},
                 "plugins": {"hub": {"listen": "0.0.0.0:7777"}}})
    n.launch(r"rendezvous hub on UDP")
    return n


def start_service(L, sdir):
    n = t.node("service-%s" % L.tag, ns=L.ns("h1"))
    n.configure({
        "proxy": {"listen": "off"},
        "log": {"level": "debug"},
        "plugins": {"transport-udp": {"listen": "0.0.0.0:7008",
                                      "hubs": [HUB]}},
        "services": {
            "web": {"target": "127.0.0.1:8080",
                    "punch": "%s %s service %s" % (sys.executable, PEER,
                                                   sdir)},
            "nopunch": {"target": "127.0.0.1:8081"}}})
    web = n.url("web")
    nop = n.url("nopunch")
    n.launch(r"hub %s: service web registered" % re.escape(HUB))
    n.expect_log(r"hub %s: service nopunch registered" % re.escape(HUB))
    return n, web, nop


def client_node(L, name, hubs=True):
    n = t.node(name, ns=L.ns("h2"))
    udp = {"hubs": [HUB]} if hubs else {}
    n.configure({"proxy": {"listen": "off"},
                 "log": {"level": "info"},
                 "plugins": {"transport-udp": udp}})
    return n


def punch(c, label, *cmd, timeout=60):
    t0 = time.monotonic()
    rc, out, err = c.cmd("punch", label, "--", *cmd, timeout=timeout)
    check(not hltest.SANITIZER_RE.search(err), "hlcore punch's stderr",
          "no sanitizer report", err[-3000:])
    return rc, out, err, time.monotonic() - t0


def peer_cmd(cdir):
    return [sys.executable, PEER, "client", cdir]


def check_exchange(L, what, cdir, sdir, before):
    """Both sides' punch_peer.py completed over the routers' public
    addresses."""
    cl, sv = results(cdir, "client"), results(sdir, "service")
    check(len(cl) == 1 and len(sv) == 1, what + ": one run of each "
          "side's command", "1 and 1", (len(cl), len(sv)))
    cl, sv = cl[0], sv[0]
    r1, r2 = L.router_ip("r1"), L.router_ip("r2")
    print("     client got %s; service got %s" % (cl["got"][:1],
                                                  sv["got"][:1]),
          flush=True)
    check(cl["got"] and cl["acked"], what + ": the client's exchange",
          "the service's hello and ack", cl)
    check(sv["got"] and sv["acked"], what + ": the service's exchange",
          "the client's hello and ack", sv)
    check(all(g[0] == "hello from service" and g[1].startswith(r1 + ":")
              for g in cl["got"]), what + ": where the client's datagrams "
          "came from", "r1's public address %s" % r1, cl["got"])
    check(all(g[0] == "hello from client" and g[1].startswith(r2 + ":")
              for g in sv["got"]), what + ": where the service's "
          "datagrams came from", "r2's public address %s" % r2, sv["got"])
    ce, se = cl["env"], sv["env"]
    check_eq(ce.get("HL_PUNCH_ROLE"), "client", what + ": client's role")
    check_eq(se.get("HL_PUNCH_ROLE"), "service", what + ": service's role")
    check_eq(se.get("HL_PUNCH_SERVICE"), "web", what + ": HL_PUNCH_SERVICE")
    check_eq(ce.get("HL_PUNCH_KEYHASH"), S["web"][1], what + ": keyhash")
    check_eq(se.get("HL_PUNCH_KEYHASH"), S["web"][1], what + ": keyhash")
    check_eq(ce.get("HL_PUNCH_FD"), "3", what + ": HL_PUNCH_FD")
    check_eq(ce.get("HL_PUNCH_LOCAL_ADDR"), L.home_ip("h2"),
             what + ": the client's local address")
    check_eq(se.get("HL_PUNCH_LOCAL_ADDR"), L.home_ip("h1"),
             what + ": the service's local address")
    check_eq(ce.get("HL_PUNCH_PUBLIC_ADDR"), r2,
             what + ": the client's public address")
    check_eq(se.get("HL_PUNCH_PUBLIC_ADDR"), r1,
             what + ": the service's public address")
    check_eq(ce.get("HL_PUNCH_PEER_ADDR"), r1,
             what + ": the client's peer address")
    check_eq(se.get("HL_PUNCH_PEER_ADDR"), r2,
             what + ": the service's peer address")
    # Each side's public port is the port the other saw it at.
    check_eq(ce.get("HL_PUNCH_PUBLIC_PORT"), se.get("HL_PUNCH_PEER_PORT"),
             what + ": client's public port = service's peer port")
    check_eq(se.get("HL_PUNCH_PUBLIC_PORT"), ce.get("HL_PUNCH_PEER_PORT"),
             what + ": service's public port = client's peer port")
    check(cl["got"][0][1] == "%s:%s" % (r1, ce["HL_PUNCH_PEER_PORT"]),
          what + ": the service's datagrams came from the peer address",
          "%s:%s" % (r1, ce["HL_PUNCH_PEER_PORT"]), cl["got"][0][1])
    for side, r in (("client", cl), ("service", sv)):
        check(r["fd_was_blocking"], what + ": %s's socket" % side,
              "blocking", "non-blocking")
        check(not [f for f in r["fds"] if int(f) > 3],
              what + ": descriptors of the %s's command" % side,
              "0, 1, 2 and 3 only", r["fds"])
    after = L.counts("r2").get(r1, (0, 0))
    check(after[0] - before[0] >= 5, what + ": datagrams r2 forwarded "
          "from r1's address", "5 or more (the exchange)",
          after[0] - before[0])


def case_build():
    """lab (cone, cone): a hub, the service registered"""
    L = S["L"] = netlab.homes_lab("cone", "cone")
    S["hub"] = start_hub(L)
    S["sdir"] = outdir("service-out")
    S["srv"], S["web"], S["nopunch"] = start_service(L, S["sdir"])


def case_punch_cone():
    """cone/cone: both commands exchange datagrams over the punched path"""
    L = S["L"]
    c = S["client"] = client_node(L, "client")
    cdir = outdir("client-out")
    before = L.counts("r2").get(L.router_ip("r1"), (0, 0))
    rc, out, err, secs = punch(c, "%s-%s" % S["web"], *peer_cmd(cdir))
    print("     punch cone/cone: exit %d in %.2f s" % (rc, secs), flush=True)
    check(rc == 0, "hlcore punch", "exit 0 (the client command's)",
          (rc, out, err))
    S["srv"].expect_log(r"punch from .* for service web: path open, its "
                        r"command runs")
    S["srv"].expect_log(r"the command of service web for .* exited with "
                        r"status 0")
    check_exchange(L, "cone/cone", cdir, S["sdir"], before)


def case_exit_status():
    """punch exits with CMD's status"""
    L = S["L"]
    rc, out, err, secs = punch(S["client"], "%s-%s.localhost" % S["web"],
                               "sh", "-c", "exit 7")
    check(rc == 7, "hlcore punch -- sh -c 'exit 7'", "exit 7",
          (rc, out, err))
    # The service's side waited for datagrams that never came.
    S["srv"].expect_log(r"the command of service web for .* exited with "
                        r"status 3", 20)
    del L


def service_runs():
    return len(results(S["sdir"], "service"))


def case_forbidden():
    """a service without punch: refused, nothing runs"""
    runs = service_runs()
    cdir = outdir("client-forbidden")
    rc, out, err, secs = punch(S["client"], "%s-%s" % S["nopunch"],
                               *peer_cmd(cdir))
    check(rc == 1, "punch to a service without punch:", "exit 1",
          (rc, out, err))
    check_in("does not allow punch", err, "its error")
    check_in("punch:", err, "its error")
    neither_ran(cdir, runs, r"punch from .* for service nopunch: refused")


def neither_ran(cdir, runs, service_says):
    """After a refused or failed punch: the client's command did not run,
    the service's log says why (service_says), its command did not run."""
    check(not os.listdir(cdir), "the client's command", "not run",
          os.listdir(cdir))
    S["srv"].expect_log(service_says)
    check(service_runs() == runs, "the service's command", "not run",
          service_runs())


def case_wrong_password():
    """a wrong password: refused, the service's command never runs"""
    runs = service_runs()
    cdir = outdir("client-wrongpw")
    pw, kh = S["web"]
    bad = "zz" + pw[2:] if not pw.startswith("zz") else "aa" + pw[2:]
    rc, out, err, secs = punch(S["client"], "%s-%s" % (bad, kh),
                               *peer_cmd(cdir))
    check(rc == 1, "punch with a wrong password", "exit 1", (rc, out, err))
    check_in("wrong password", err, "its error")
    check(pw not in err and pw not in out, "the output", "without the "
          "right password", err)
    S["srv"].expect_log(r"punch from .* for service web: wrong password")
    check(not os.listdir(cdir), "the client's command", "not run",
          os.listdir(cdir))
    time.sleep(1)
    check(service_runs() == runs, "the service's command", "never run",
          service_runs())
    check(pw not in S["srv"].log(), "the service's log", "without the "
          "password", "it is there")


def case_no_path():
    """no path for the fresh sockets: exit 1 naming the candidates probed"""
    L = S["L"]
    runs = service_runs()
    cdir = outdir("client-nopath")
    # QUIC (the service's port 7008) still gets through r1; the service's
    # fresh sockets (STUN, probes) do not.
    rule = "FORWARD -i lan -p udp ! --sport 7008 -j DROP"
    L.sh("r1", "iptables-legacy -I " + rule)
    try:
        rc, out, err, secs = punch(S["client"], "%s-%s" % S["web"],
                                   *peer_cmd(cdir))
    finally:
        L.sh("r1", "iptables-legacy -D " + rule)
    print("     punch with the service's fresh sockets blocked: exit %d in "
          "%.1f s: %s" % (rc, secs, err.strip()[-300:]), flush=True)
    check(rc == 1, "punch without a path", "exit 1", (rc, out, err))
    check_in("no UDP path to the service's node", err, "its error")
    check_in("candidates probed: %s:" % L.home_ip("h1"), err, "its error "
             "(the service's host candidate, its only one)")
    check_in("no answer to", err, "its error")
    check(secs < 30, "the time it took", "under 30 s", secs)
    neither_ran(cdir, runs, r"punch from .* for service web: no path")


def case_usage():
    """usage and settings mistakes: exit 2"""
    c = S["client"]
    rc, out, err = c.cmd("punch", "%s-%s" % S["web"], "true")
    check(rc == 2 and "usage" in err, "punch without --", "exit 2, usage",
          (rc, err))
    rc, out, err = c.cmd("punch", "not-a-label", "--", "true")
    check(rc == 2 and "not a Hardline service name" in err,
          "punch with a bad label", "exit 2", (rc, err))
    n = client_node(S["L"], "client-nohubs", hubs=False)
    rc, out, err = n.cmd("punch", "%s-%s" % S["web"], "--", "true")
    check(rc == 2 and "no hubs" in err, "punch without hubs:", "exit 2",
          (rc, err))
    n.write_config("state_dir: %s\nservices:\n  w: { target: "
                   "\"127.0.0.1:1\", punch: \"\" }\n" % n.state_dir)
    rc, out, err = n.cmd("check")
    check(rc == 2 and re.search(r"hardline\.yaml:3:38: .*punch of service "
                                r"\"w\" is empty", err),
          "hlcore check with punch: \"\"", "exit 2 at file:3:38", (rc, err))


def case_teardown():
    """lab down"""
    S["srv"].stop_ok()
    S["hub"].stop_ok()
    S["L"].destroy()


def symmetric_lab(nat1, nat2, what):
    """A lab (nat1, nat2), a punch from h2 to h1, the exchange checked."""
    L = S["L"] = netlab.homes_lab(nat1, nat2)
    try:
        hub = start_hub(L)
        sdir = S["sdir"] = outdir("service-out-%s-%s" % (nat1, nat2))
        srv, S["web"], S["nopunch"] = start_service(L, sdir)
        c = client_node(L, "client-%s-%s" % (nat1, nat2))
        cdir = outdir("client-out-%s-%s" % (nat1, nat2))
        before = L.counts("r2").get(L.router_ip("r1"), (0, 0))
        rc, out, err, secs = punch(c, "%s-%s" % S["web"], *peer_cmd(cdir))
        print("     punch %s: exit %d in %.2f s" % (what, rc, secs),
              flush=True)
        check(rc == 0, "hlcore punch, " + what, "exit 0", (rc, out, err))
        check_exchange(L, what, cdir, sdir, before)
        srv.stop_ok()
        hub.stop_ok()
    finally:
        L.destroy()


def case_punch_symmetric_client():
    """cone/symmetric (the client behind --random-fully): the exchange"""
    symmetric_lab("cone", "symmetric", "client behind the symmetric NAT")


def case_punch_symmetric_service():
    """symmetric/cone (the service behind --random-fully): the exchange"""
    symmetric_lab("symmetric", "cone", "service behind the symmetric NAT")


t.cases(case_build, case_punch_cone, case_exit_status, case_forbidden,
        case_wrong_password, case_no_path, case_usage, case_teardown,
        case_punch_symmetric_client, case_punch_symmetric_service)
t.finish()
