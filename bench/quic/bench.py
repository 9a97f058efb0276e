#!/usr/bin/env python3
"""bench/quic/bench.py HLCORE: transport-udp (QUIC) against transport-tls,
side by side in one run, in a two-namespace lab: "srv" and "cli" joined by
one veth pair at MTU 1500 (tests/lib/netlab.py). In srv: nginx (one
worker) serving a big file and a 100-byte one on 127.0.0.1, and one hlcore
serving it with both transports listening on [::]:7008 (TCP and UDP). In
cli: two hlcore clients, one with transport-tls only (proxy :7101), one
with transport-udp only (proxy :7102), each with a peers: entry for srv.

  1. bulk: a BULK_MIB download through each proxy (curl), the two paths
     taking turns, best of BULK_RUNS (every run is printed); and the CPU
     seconds per GiB of the pair (client + server hlcore, user + system,
     over all runs).
  2. keep-alive requests/s of the small file (wrk, WRK_CONNS connections).
  3. first byte of a new tunnel: a new browser connection per request
     (curl), so a new tunnel each: over TLS a fresh TCP + TLS handshake,
     over QUIC a new stream on the warm connection. Median of FB_RUNS.
  4. RSS per idle tunnel: IDLE_CONNS keep-alive connections held through
     each proxy after one request each; RSS growth of the client node, of
     the server node and of both, per tunnel.

Prints every figure and the ratios against the targets of issue 10.

Environment: BULK_MIB, BULK_RUNS, WRK_SECONDS, WRK_CONNS, FB_RUNS,
IDLE_CONNS; BENCH_PARTS (a subset of "bulk rps fb idle"); LOSS (e.g.
"1%": that share of the packets each node receives is dropped, see
below); KINDS=quic (or tls: one path only, e.g. to profile it; no
ratios).
"""
import os
import re
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "lib"))
import hltest  # noqa: E402
import netlab  # noqa: E402

BULK_MIB = int(os.environ.get("BULK_MIB", "512"))
BULK_RUNS = int(os.environ.get("BULK_RUNS", "3"))
WRK_SECONDS = int(os.environ.get("WRK_SECONDS", "10"))
WRK_CONNS = int(os.environ.get("WRK_CONNS", "32"))
FB_RUNS = int(os.environ.get("FB_RUNS", "51"))
IDLE_CONNS = int(os.environ.get("IDLE_CONNS", "1000"))
# LOSS: a share of the packets each node receives is dropped (e.g. "1%",
# each direction; iptables' statistic match on INPUT: this kernel has no
# netem). Segmentation offload is then turned off on the veth, so that the
# loss hits single packets (1500 bytes), not whole 64 KiB GSO/TSO batches.
LOSS = os.environ.get("LOSS", "")
PARTS = os.environ.get("BENCH_PARTS", "bulk rps fb idle").split()
SRV, CLI = "10.88.0.1", "10.88.0.2"
PORTS = {"tls": 7101, "quic": 7102}
# KINDS=quic: one path only (to profile it; no ratios then)
PORTS = {k: v for k, v in PORTS.items()
         if k in os.environ.get("KINDS", "tls quic").split()}


def nofile_max():
    """In the child: the soft descriptor limit raised to the hard one."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    hlcore = sys.argv[1]
    why = netlab.usable(("nginx", "curl", "wrk") +
                        (("ethtool", "iptables-legacy") if LOSS else ()))
    if why:
        raise SystemExit("bench: %s" % why)
    lab = netlab.Net()
    tmp = lab.tmp
    lab.netns("srv")
    lab.netns("cli")
    lab.veth("srv", "eth0", "cli", "eth0")
    lab.sh("srv", "ip addr add %s/24 dev eth0; ip link set eth0 mtu 1500 "
           "up" % SRV)
    lab.sh("cli", "ip addr add %s/24 dev eth0; ip link set eth0 mtu 1500 "
           "up" % CLI)
    if LOSS:
        p = float(LOSS.rstrip("%")) / 100
        for h in ("srv", "cli"):
            lab.sh(h, "ethtool -K eth0 tso off gso off gro off "
                   "tx-udp-segmentation off >/dev/null; "
                   "iptables-legacy -A INPUT -i eth0 -m statistic "
                   "--mode random --probability %g -j DROP" % p)
        print("loss: %s of the packets received, each direction" % LOSS,
              flush=True)

    www = os.path.join(tmp, "www")
    os.makedirs(os.path.join(tmp, "ngx-tmp"), exist_ok=True)
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "big.bin"), "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(BULK_MIB):
            f.write(chunk)
    with open(os.path.join(www, "small.txt"), "w") as f:
        f.write("x" * 100)
    for n in os.listdir(www):
        os.chmod(os.path.join(www, n), 0o644)
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write("""user nobody nogroup;
daemon off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid %(t)s/nginx.pid;
error_log %(t)s/nginx-error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  sendfile on;
  keepalive_timeout 600s;
  keepalive_requests 100000000;
  client_body_temp_path %(t)s/ngx-tmp/body;
  proxy_temp_path %(t)s/ngx-tmp/proxy;
  fastcgi_temp_path %(t)s/ngx-tmp/fastcgi;
  uwsgi_temp_path %(t)s/ngx-tmp/uwsgi;
  scgi_temp_path %(t)s/ngx-tmp/scgi;
  server { listen 127.0.0.1:8080; root %(t)s/www; }
}
""" % {"t": tmp})
    lab.spawn("srv", ["nginx", "-e", os.path.join(tmp, "nginx-error.log"),
                      "-p", tmp, "-c", os.path.join(tmp, "nginx.conf")],
              "nginx")
    hltest.wait_for(lambda: lab.port_open("srv", "127.0.0.1", 8080), 20,
                    "nginx")

    scfg = hltest.write_yaml(os.path.join(tmp, "srv.yaml"), {
        "state_dir": os.path.join(tmp, "srv-state"),
        "log": {"level": "info"},
        "proxy": {"listen": "off"},
        "plugins": {"transport-tls": {"listen": "[::]:7008"},
                    "transport-udp": {"listen": "[::]:7008"}},
        "services": {"bench": {"target": "127.0.0.1:8080",
                               "password": "none"}}})
    host_hdr, keyhash = hltest.service_host(hlcore, scfg, "bench")
    srv = lab.spawn("srv", [hlcore, "-c", scfg], log="srv",
)
    hltest.wait_file(lab.log_path("srv"), [r"QUIC on UDP",
                                           r"listening on \[::\]:7008"])
    clients = {}
    for kind, plugin in (("tls", "transport-tls"), ("quic", "transport-udp")):
        if kind not in PORTS:
            continue
        cfg = hltest.write_yaml(os.path.join(tmp, "cli-%s.yaml" % kind), {
            "state_dir": os.path.join(tmp, "cli-%s-state" % kind),
            "log": {"level": "info"},
            "proxy": {"listen": "127.0.0.1:%d" % PORTS[kind]},
            "plugins": {plugin: {}},
            "peers": {keyhash: ["%s:7008" % SRV]}})
        clients[kind] = lab.spawn(
            "cli", [hlcore, "-c", cfg], log="cli-%s" % kind)
        hltest.wait_file(lab.log_path("cli-%s" % kind), [r"proxy listening"])

    def host(kind):
        return host_hdr.rsplit(":", 1)[0] + ":%d" % PORTS[kind]

    def curl(kind, path, fmt):
        rc, out, err = lab.run("cli", [
            "curl", "-sS", "-o", "/dev/null", "-m", "300", "-w", fmt, "-H",
            "Host: %s" % host(kind),
            "http://127.0.0.1:%d%s" % (PORTS[kind], path)], timeout=320)
        if rc != 0:
            raise SystemExit("bench: curl via %s: %s" % (kind, err))
        return out

    res = {k: {} for k in PORTS}
    for kind in PORTS:  # warm up: the QUIC connection stands afterwards
        curl(kind, "/small.txt", "%{http_code}")

    # 1. bulk, the two paths taking turns (both see the same machine load)
    bulk = {k: {"runs": [], "cpu": 0.0, "total": 0} for k in PORTS}
    for _ in range(BULK_RUNS if "bulk" in PARTS else 0):
        for kind in PORTS:
            b = bulk[kind]
            c0 = cpu_seconds(clients[kind].pid) + cpu_seconds(srv.pid)
            out = curl(kind, "/big.bin", "%{size_download} %{time_total}")
            c1 = cpu_seconds(clients[kind].pid) + cpu_seconds(srv.pid)
            size, secs = out.split()
            if int(size) != BULK_MIB << 20:
                raise SystemExit("bench: %s: %s bytes" % (kind, size))
            b["runs"].append(int(size) / 1048576 / float(secs))
            b["cpu"] += c1 - c0
            b["total"] += int(size)
    for kind in PORTS if "bulk" in PARTS else ():
        b = bulk[kind]
        res[kind]["bulk"] = max(b["runs"])
        res[kind]["cpu"] = b["cpu"] / (b["total"] / (1 << 30))
        print("bulk %-4s %8.1f MiB/s  %5.2f CPU s/GiB (pair)  runs: %s" %
              (kind, res[kind]["bulk"], res[kind]["cpu"],
               " ".join("%.0f" % r for r in b["runs"])), flush=True)

    # 2. keep-alive requests/s
    for kind in PORTS if "rps" in PARTS else ():
        rc, out, err = lab.run("cli", [
            "wrk", "-t2", "-c%d" % WRK_CONNS, "-d%ds" % WRK_SECONDS, "-H",
            "Host: %s" % host(kind),
            "http://127.0.0.1:%d/small.txt" % PORTS[kind]],
            timeout=WRK_SECONDS + 60)
        m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
        if rc != 0 or m is None or "Non-2xx" in out:
            raise SystemExit("bench: wrk via %s: %s %s" % (kind, out, err))
        res[kind]["rps"] = float(m.group(1))
        print("rps  %-4s %8.0f req/s" % (kind, res[kind]["rps"]), flush=True)

    # 3. first byte of a new tunnel (interleaved, so both see the same
    # machine load)
    fb = {k: [] for k in PORTS}
    for _ in range(FB_RUNS if "fb" in PARTS else 0):
        for kind in PORTS:
            fb[kind].append(float(curl(kind, "/small.txt",
                                       "%{time_starttransfer}")) * 1000)
    for kind in PORTS if "fb" in PARTS else ():
        res[kind]["fb"] = statistics.median(fb[kind])
        print("first byte %-4s %6.2f ms (median of %d; p90 %.2f)" %
              (kind, res[kind]["fb"], FB_RUNS,
               sorted(fb[kind])[int(FB_RUNS * 0.9)]), flush=True)

    # 4. RSS per idle tunnel
    idle = os.path.join(here, "..", "idle_conns.py")
    # QUIC first: the server node is shared, and memory the other path
    # freed would otherwise be reused and make QUIC look smaller.
    for kind in [k for k in ("quic", "tls") if k in PORTS and
                 "idle" in PARTS]:
        time.sleep(1)
        r0 = (hltest.rss_kib(clients[kind].pid), hltest.rss_kib(srv.pid))
        p = lab.spawn("cli", [sys.executable, idle, "--deadline=120",
                              "127.0.0.1", str(PORTS[kind]),
                              str(IDLE_CONNS), host(kind), "/small.txt"],
                      stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                      preexec_fn=nofile_max)
        line = p.stdout.readline().decode()
        if not line.startswith("ready"):
            raise SystemExit("bench: idle via %s: %s" % (kind, line))
        time.sleep(2)
        r1 = (hltest.rss_kib(clients[kind].pid), hltest.rss_kib(srv.pid))
        p.stdin.close()
        p.wait(30)
        per = [(b - a) * 1024 / IDLE_CONNS for a, b in zip(r0, r1)]
        res[kind]["rss"] = per
        print("idle %-4s %d tunnels: %.0f B per tunnel on the client node, "
              "%.0f B on the server node, %.0f B both" %
              (kind, IDLE_CONNS, per[0], per[1], per[0] + per[1]),
              flush=True)
    lab.stop(srv)
    for p in clients.values():
        lab.stop(p)

    if len(PORTS) < 2:
        return
    q, t = res["quic"], res["tls"]
    print()
    print("| figure | transport-tls | transport-udp (QUIC) | QUIC/TLS | "
          "target | met |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    if "bulk" in PARTS:
        rows += [("bulk MiB/s", t["bulk"], q["bulk"], ">= 0.6x",
                  q["bulk"] >= 0.6 * t["bulk"]),
                 ("CPU s/GiB, pair", t["cpu"], q["cpu"], "", None)]
    if "rps" in PARTS:
        rows += [("keep-alive req/s", t["rps"], q["rps"], "", None)]
    if "fb" in PARTS:
        rows += [("first byte of a new tunnel, ms", t["fb"], q["fb"],
                  "<= 0.5x", q["fb"] <= 0.5 * t["fb"])]
    if "idle" in PARTS:
        rows += [("RSS per idle tunnel, server node, B", t["rss"][1],
                  q["rss"][1], "QUIC <= 4096 B", q["rss"][1] <= 4096),
                 ("RSS per idle tunnel, client node, B", t["rss"][0],
                  q["rss"][0], "QUIC <= 4096 B", q["rss"][0] <= 4096)]
    for name, a, b, target, met in rows:
        print("| %s | %.2f | %.2f | %.2fx | %s | %s |" %
              (name, a, b, b / a if a else 0, target,
               "" if met is None else ("yes" if met else "NO")))


if __name__ == "__main__":
    main()
