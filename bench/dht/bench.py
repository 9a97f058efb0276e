#!/usr/bin/env python3
"""bench/dht/bench.py HLCORE RUNS: time to first byte for a service that
the client finds only through OpenDHT, in the dhtnode lab
(tests/lib/netlab.py: dhtnode on d1, d2, d3; the server on srv, which
publishes its advertised address; the client on cli).

Each run starts a fresh hlcore on cli (new state_dir: no remembered
address; no LAN plugin; no peers:), waits until it is ready (native: it
joined the DHT; proxy: its proxy listens), then times one request through
its proxy with curl (time_starttransfer: from curl's start to the first
byte of the answer). Modes: "native" (a DHT node of its own, bootstrapped
to d3), "proxy" (dhtnode's HTTP proxy on d2) and "peers" (a peers: entry,
no lookup), so the differences are what the lookups cost. Prints every
run and the medians."""
import os
import shutil
import statistics
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "lib"))
import hltest  # noqa: E402
import netlab  # noqa: E402

MODES = ("native", "proxy", "peers")


def main():
    hlcore, runs = sys.argv[1], int(sys.argv[2])
    why = netlab.usable(["dhtnode"])
    if why:
        raise SystemExit("bench: %s" % why)
    tmp = tempfile.mkdtemp(prefix="hlbench-dht-")
    lab = netlab.DhtLab(hosts=("srv", "cli"))
    try:
        lab.up()
        srv = lab.ip("srv")
        lab.http_backend("srv", 8080, "hello from srv")
        s_cfg = hltest.write_yaml(os.path.join(tmp, "srv.yaml"), {
            "state_dir": os.path.join(tmp, "srv-state"),
            "log": {"level": "info"},
            "proxy": {"listen": "off"},
            "plugins": {
                "transport-tls": {"listen": "%s:7008" % srv,
                                  "advertise": ["%s:7008" % srv]},
                "dht": {"bootstrap": ["%s:4222" % lab.ip("d1")]}},
            "services": {"wiki": {"target": "127.0.0.1:8080",
                                  "title": "Bench wiki"}}})
        host, keyhash = hltest.service_host(hlcore, s_cfg, "wiki")
        s_log = os.path.join(tmp, "srv.log")
        lab.spawn("srv", [hlcore, "-c", s_cfg], log=s_log)
        hltest.wait_file(s_log, [r"published \""], 15)
        # The record is in the DHT (read at d2's proxy) before run 1.
        key = netlab.dht_key(keyhash)
        end = time.monotonic() + 20
        while ("%s:7008" % srv).encode() not in lab.proxy_values("d2", key):
            if time.monotonic() > end:
                raise SystemExit("bench: the server's record never "
                                 "reached d2")
            time.sleep(0.1)

        def one(i, mode):
            d = os.path.join(tmp, "%s-%d" % (mode, i))
            if mode == "native":
                p, log = lab.start_client(
                    "cli", hlcore, d,
                    {"dht": {"bootstrap": ["%s:4222" % lab.ip("d3")]}},
                    [r"proxy listening", r"joined the DHT"], 30)
            elif mode == "proxy":
                p, log = lab.start_client(
                    "cli", hlcore, d, {"dht": {"proxy": lab.proxy_url("d2")}},
                    [r"proxy listening"])
            else:
                p, log = lab.start_client(
                    "cli", hlcore, d, {}, [r"proxy listening"],
                    peers={keyhash: ["%s:7008" % srv]})
            code, ms = lab.first_byte_ms("cli", host)
            lab.stop(p, 10)
            if code != "200":
                raise SystemExit("bench: run %d (%s): HTTP %s; see %s" %
                                 (i, mode, code, log))
            return ms

        res = {m: [] for m in MODES}
        for i in range(runs):
            for mode in MODES:
                res[mode].append(one(i, mode))
            print("run %2d: native DHT %6.1f ms   proxy %6.1f ms   peers: "
                  "entry %6.1f ms" % (i + 1, res["native"][-1],
                                      res["proxy"][-1], res["peers"][-1]),
                  flush=True)
        med = {m: statistics.median(res[m]) for m in MODES}
        print()
        print("time to first byte, median of %d fresh clients:" % runs)
        print("  found through the DHT, node of its own: %6.1f ms "
              "(min %.1f, max %.1f)" % (med["native"], min(res["native"]),
                                        max(res["native"])))
        print("  found through an OpenDHT HTTP proxy:    %6.1f ms "
              "(min %.1f, max %.1f)" % (med["proxy"], min(res["proxy"]),
                                        max(res["proxy"])))
        print("  same service from a peers: entry:       %6.1f ms" %
              med["peers"])
        print("  what the lookup adds: native %.1f ms, proxy %.1f ms" %
              (med["native"] - med["peers"], med["proxy"] - med["peers"]))
    finally:
        lab.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
