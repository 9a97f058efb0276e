#!/usr/bin/env python3
"""bench/nat/bench.py HLCORE TRIALS: transport-udp through two NATs.

For each NAT combination (r1, the service's home / r2, the client's): the
two-homes lab (netlab.homes_lab: iptables-legacy MASQUERADE, "cone" keeps
the port, "symmetric" is --random-fully; both filter by address and port
and drop unsolicited UDP), an hlcore hub on 11.0.0.1:7777 and coturn on
11.0.0.1:3478, the service (a python http.server behind hlcore) in h1 with
`transport-udp: {listen: "0.0.0.0:7008", hubs: ["11.0.0.1:7777"], turn:
["turn://u:p@11.0.0.1:3478"]}`. Then TRIALS times: a fresh
hlcore client in h2 (same settings, a proxy; a new process, so no QUIC
connection to reuse), one GET through its proxy with curl (15 s at most):
success is a 200 with the page; the path is direct when r2 forwarded
over 1000 bytes from r1's public address, relayed when it forwarded over
1000 from the hub host (coturn) and not from r1; time to
first byte is curl's time_starttransfer (the lookup, the punch, the QUIC
handshake with its Retry, the OOB lines and the backend's answer).
"""
import os
import statistics
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "lib"))
import hltest  # noqa: E402
import netlab  # noqa: E402

COMBOS = [("cone", "cone"), ("cone", "symmetric"), ("symmetric", "cone"),
          ("symmetric", "symmetric")]
HUB = "%s:7777" % netlab.HUB_IP
TURN = "turn://u:p@%s:3478" % netlab.HUB_IP
TOKEN = "nat-bench"


def one_combo(hlcore, trials, nat1, nat2):
    L = netlab.homes_lab(nat1, nat2)
    tmp = L.tmp
    res = []
    try:
        hcfg = hltest.write_yaml(os.path.join(tmp, "hub.yaml"), {
            "state_dir": os.path.join(tmp, "hub-state"),
            "proxy": {"listen": "off"},
            "plugins": {"hub": {"listen": "0.0.0.0:7777"}}})
        L.spawn("hub", [hlcore, "-c", hcfg], log="hub")
        hltest.wait_file(L.log_path("hub"), [r"rendezvous hub on UDP"])
        L.coturn()
        L.http_backend("h1", 8080, TOKEN)
        udp = {"listen": "0.0.0.0:7008", "hubs": [HUB], "turn": [TURN]}
        scfg = hltest.write_yaml(os.path.join(tmp, "srv.yaml"), {
            "state_dir": os.path.join(tmp, "srv-state"),
            "proxy": {"listen": "off"},
            "plugins": {"transport-udp": udp},
            "services": {"web": {"target": "127.0.0.1:8080",
                                 "password": "none"}}})
        host, _ = hltest.service_host(hlcore, scfg, "web")
        L.spawn("h1", [hlcore, "-c", scfg], log="srv")
        hltest.wait_file(L.log_path("srv"), [r"service web registered"])
        hltest.wait_file(L.log_path("srv"), [r"TURN relay .*: allocated"])
        ccfg = hltest.write_yaml(os.path.join(tmp, "cli.yaml"), {
            "state_dir": os.path.join(tmp, "cli-state"),
            "proxy": {"listen": "127.0.0.1:7009"},
            "plugins": {"transport-udp": udp}})
        r1 = L.router_ip("r1")
        for i in range(trials):
            cli = L.spawn("h2", [hlcore, "-c", ccfg], log="cli-%d" % i)
            hltest.wait_file(L.log_path("cli-%d" % i),
                             [r"proxy listening", r"TURN relay .*: allocated"])
            before = L.counts("r2").get(r1, (0, 0))[1]
            hbefore = L.counts("r2").get(netlab.HUB_IP, (0, 0))[1]
            rc, out, err = L.run("h2", [
                "curl", "-sS", "-m", "15", "-o", "/dev/null", "-w",
                "%{http_code} %{time_starttransfer}", "-H",
                "Host: %s" % host, "http://127.0.0.1:7009/token.txt"],
                timeout=30)
            after = L.counts("r2").get(r1, (0, 0))[1]
            hafter = L.counts("r2").get(netlab.HUB_IP, (0, 0))[1]
            f = out.split()
            code = int(f[0]) if f and f[0].isdigit() else 0
            ttfb = float(f[1]) if len(f) > 1 else 0.0
            direct = after - before > 1000
            res.append((code == 200, direct,
                        not direct and hafter - hbefore > 1000, ttfb))
            L.stop(cli)
            # the service forgets the client's connection (it closed)
            time.sleep(0.1)
    finally:
        L.destroy()
    return res


def main():
    hlcore = sys.argv[1]
    trials = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    why = netlab.usable(("iptables-legacy", "curl"))
    if why:
        raise SystemExit("bench: %s" % why)
    rows = []
    for nat1, nat2 in COMBOS:
        t0 = time.monotonic()
        res = one_combo(hlcore, trials, nat1, nat2)
        ok = [r for r in res if r[0]]
        direct = [r for r in ok if r[1]]
        relayed = [r for r in ok if r[2]]
        fb = sorted(r[3] for r in ok)
        rows.append((nat1, nat2, len(res), len(ok), len(direct), len(relayed),
                     statistics.median(fb) * 1000 if fb else None,
                     fb[-1] * 1000 if fb else None))
        print("%s/%s: %d/%d connected, %d direct, %d relayed, %.0f s" %
              (nat1, nat2, len(ok), len(res), len(direct), len(relayed),
               time.monotonic() - t0), flush=True)
    print()
    print("| service home / client home | trials | success | direct | "
          "relayed | median first byte | worst first byte |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for nat1, nat2, n, ok, direct, relayed, med, worst in rows:
        print("| %s / %s | %d | %d%% | %d%% | %d%% | %s | %s |" % (
            nat1, nat2, n, 100 * ok // n, 100 * direct // n,
            100 * relayed // n,
            "%.0f ms" % med if med is not None else "-",
            "%.0f ms" % worst if worst is not None else "-"))


if __name__ == "__main__":
    main()
