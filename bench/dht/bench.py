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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "lib"))
import hltest  # noqa: E402
import netlab  # noqa: E402

MODES = ("native", "proxy", "peers")


def yaml(d):
    return hltest.to_yaml(d)


def main():
    hlcore, runs = sys.argv[1], int(sys.argv[2])
    why = netlab.usable(["dhtnode"])
    if why:
        raise SystemExit("bench: %s" % why)
    tmp = tempfile.mkdtemp(prefix="hlbench-dht-")
    lab = netlab.DhtLab(hosts=("srv", "cli"))
    logs = []
    try:
        lab.up()
        srv = lab.ip("srv")
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("hello from srv\n")
        lab.spawn("srv", [sys.executable, "-m", "http.server", "8080",
                          "--bind", "127.0.0.1", "--directory", www])
        s_cfg = os.path.join(tmp, "srv.yaml")
        with open(s_cfg, "w") as f:
            f.write(yaml({
                "state_dir": os.path.join(tmp, "srv-state"),
                "log": {"level": "info"},
                "proxy": {"listen": "off"},
                "plugins": {
                    "transport-tls": {"listen": "%s:7008" % srv,
                                      "advertise": ["%s:7008" % srv]},
                    "dht": {"bootstrap": ["%s:4222" % lab.ip("d1")]}},
                "services": {"wiki": {"target": "127.0.0.1:8080",
                                      "title": "Bench wiki"}}}) + "\n")
        url = subprocess.run([hlcore, "-c", s_cfg, "url", "wiki"],
                             capture_output=True, text=True,
                             check=True).stdout.strip()
        host = url.split("/")[2]
        keyhash = re.search(r"-([0-9a-f]{40})\.", host).group(1)
        s_log = os.path.join(tmp, "srv.log")
        logs.append(s_log)
        with open(s_log, "ab") as lf:
            lab.spawn("srv", [hlcore, "-c", s_cfg], stdout=lf, stderr=lf)
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
            os.makedirs(d)
            cfg = {"state_dir": os.path.join(d, "state"),
                   "log": {"level": "info"},
                   "proxy": {"listen": "127.0.0.1:7009"},
                   "plugins": {"transport-tls": {}}}
            if mode == "native":
                cfg["plugins"]["dht"] = {
                    "bootstrap": ["%s:4222" % lab.ip("d3")]}
            elif mode == "proxy":
                cfg["plugins"]["dht"] = {"proxy": lab.proxy_url("d2")}
            else:
                cfg["peers"] = {keyhash: ["%s:7008" % srv]}
            path = os.path.join(d, "cli.yaml")
            with open(path, "w") as f:
                f.write(yaml(cfg) + "\n")
            log = os.path.join(d, "cli.log")
            with open(log, "ab") as lf:
                p = lab.spawn("cli", [hlcore, "-c", path], stdout=lf,
                              stderr=lf)
            hltest.wait_file(log, [r"proxy listening"], 15)
            if mode == "native":
                hltest.wait_file(log, [r"joined the DHT"], 15)
            with lab.inside("cli"):
                out = subprocess.run([
                    "curl", "-s", "-o", "/dev/null", "-m", "10", "-H",
                    "Host: " + host, "-w",
                    "%{http_code} %{time_starttransfer}",
                    "http://127.0.0.1:7009/"], capture_output=True,
                    text=True, timeout=20).stdout
            hltest.stop_proc(p, 10)
            code, ttfb = out.split()
            if code != "200":
                raise SystemExit("bench: run %d (%s): HTTP %s; see %s" %
                                 (i, mode, code, log))
            return float(ttfb) * 1000

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
