#!/usr/bin/env python3
"""The admin panel when descriptors run out (README, "Limits: what one node holds"): hlcore
runs with a soft and hard limit of 64 descriptors, and a client opens and
holds hundreds of connections to the panel's port. accept() then fails
with EMFILE; hlcore must not spin on it (its CPU stays well under half a
core), nor log a line per try (its log stays short), and the panel must
answer again once the connections are gone. And the same when the
descriptors are taken by another part of the node (the fixture plugin
fd-hog takes them all for 4 s), so that the panel has no connection of its
own to wait for: libmicrohttpd then retries accept() at once, forever.
"""
import http.client
import os
import re
import resource
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
from hltest import check  # noqa: E402

t = hltest.Test("admin_emfile")

NOFILE = 64
HOLD = 300
HOG_SO = os.path.join(t.build_dir, "tests", "abi", "fd-hog.so")
node = t.node("node")
hogged = t.node("hogged")
ports = {}
plugin_dir = t.plugin_dir("plugins/admin-web.so")
if os.path.isfile(HOG_SO):
    shutil.copy(HOG_SO, plugin_dir)


def limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def config(n=node, hog=False):
    ports["admin"] = hltest.free_port()
    plugins = {"admin-web": {"listen": hltest.local(ports["admin"])}}
    if hog:
        plugins["fd-hog"] = {}
    return n.base_config(plugin_dir=plugin_dir, plugins_strict=True,
                         plugins=plugins)


def cpu_and_lines(n, seconds=2):
    """hlcore's CPU (in cores) and the lines it logged over seconds."""
    lines0 = n.log().count("\n")
    hz = os.sysconf("SC_CLK_TCK")
    c0 = cpu_ticks(n.pid)
    time.sleep(seconds)
    used = (cpu_ticks(n.pid) - c0) / hz / seconds
    return used, n.log().count("\n") - lines0


def wait_panel(seconds):
    deadline = time.monotonic() + t.slow(seconds)
    status = None
    while time.monotonic() < deadline:
        try:
            status = get_root(2)
            if status == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    return status


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def get_root(timeout):
    conn = http.client.HTTPConnection("127.0.0.1", ports["admin"],
                                      timeout=timeout)
    try:
        conn.request("GET", "/login")
        return conn.getresponse().status
    finally:
        conn.close()


def case_descriptors_run_out():
    node.preexec = limit_fds
    node.start(config, lambda cfg: [ports["admin"]])
    check(get_root(t.slow(10)) == 200, "GET /login before", "200", "")
    socks = []
    try:
        for _ in range(HOLD):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", ports["admin"]))
            except OSError:
                s.close()
                break
            socks.append(s)
        time.sleep(1)  # let hlcore hit the limit
        used, lines = cpu_and_lines(node)
        check(node.running(), "hlcore out of descriptors", "still running",
              node.log()[-2000:])
        check(used < 0.5, "hlcore's CPU while accept() fails with EMFILE",
              "well under half a core", "%.0f%% of a core; log:\n%s" %
              (used * 100, node.log()[-2000:]))
        check(lines < 20, "hlcore's log while accept() fails with EMFILE",
              "a few lines", "%d lines in 2 s:\n%s" %
              (lines, node.log()[-2000:]))
    finally:
        for s in socks:
            s.close()
    status = wait_panel(20)
    check(status == 200, "GET /login once the connections are gone",
          "200 within 20 s", status)
    log = node.log()
    check(log.count("\n") < 200, "hlcore's whole log", "short",
          "%d lines:\n%s" % (log.count("\n"), log[-3000:]))
    node.stop_ok()


def case_descriptors_taken_elsewhere():
    if not os.path.isfile(HOG_SO):
        raise hltest.Fail("no fixture %s (build the tests)" % HOG_SO)
    hogged.preexec = limit_fds
    hogged.start(lambda: config(hogged, hog=True), lambda cfg: [ports["admin"]])
    m = hogged.wait_log(r"fd-hog: holding (\d+) descriptors \((\w+)", 10)
    check(m is not None and m.group(2) == "EMFILE", "fd-hog",
          "all descriptors taken", hogged.log()[-2000:])
    socks = []
    try:
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", ports["admin"]), 2)
            socks.append(s)
        time.sleep(0.3)
        used, lines = cpu_and_lines(hogged)
        check(used < 0.5, "hlcore's CPU while accept() fails with EMFILE "
              "and the panel has no connection", "well under half a core",
              "%.0f%% of a core; log:\n%s" % (used * 100,
                                               hogged.log()[-2000:]))
        check(lines < 20, "hlcore's log meanwhile", "a few lines",
              "%d lines in 2 s:\n%s" % (lines, hogged.log()[-2000:]))
    finally:
        for s in socks:
            s.close()
    check(hogged.wait_log(r"fd-hog: released", 10) is not None, "fd-hog",
          "released the descriptors", hogged.log()[-2000:])
    status = wait_panel(10)
    check(status == 200, "GET /login once the descriptors are free",
          "200 within 10 s", "%s; log:\n%s" % (status, hogged.log()[-2000:]))
    check(re.search(r"admin-web: .*descriptors", hogged.log()) is not None,
          "the log", "a line saying the panel paused for descriptors",
          hogged.log()[-2000:])
    hogged.stop_ok()


t.case("the panel out of descriptors: no busy loop, a short log, back "
       "after", case_descriptors_run_out)
t.case("descriptors taken by another part: no busy loop, back after",
       case_descriptors_taken_elsewhere)
t.finish()
