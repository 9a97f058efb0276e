#!/usr/bin/env python3
"""The admin panel's LAN refresh end to end, in a namespace lab
(docs/lab.md).

Two hosts on one bridge: A serves "Lab NAS" (no password, so its hash is
announced) with transport-tls and discovery-lan, which announces nothing
by itself (announce_interval 0); B runs discovery-lan and admin-web. B has
heard of nothing until the admin asks: POST /api/lan/refresh makes B's
discovery-lan search the LAN (svc->browse), A answers, and the service
shows in B's /api/status "lan". The same through the dashboard's form.

Needs root (network namespaces); skips (77) without, like tests/lab/.
"""
import json
import os
import re
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "lib"))
import netlab  # noqa: E402

why = netlab.usable()
if why:
    print("SKIP: %s" % why)
    print("0 passed, 0 failed")
    sys.exit(77)

import hltest  # noqa: E402
from hltest import Fail, check, check_eq  # noqa: E402

t = hltest.Test("admin_lan")
for so in ("admin-web.so", "discovery-lan.so", "transport-tls.so"):
    if not os.path.exists(os.path.join(t.build_dir, "plugins", so)):
        print("SKIP: %s was not built" % so)
        print("0 passed, 0 failed")
        sys.exit(hltest.SKIP)

lab = netlab.lan_lab(["a", "b"])
a_ip = lab.ip("a")
TITLE = "Lab NAS"
procs = {}
S = {}


def path(*p):
    return os.path.join(t.tmp, *p)


read = hltest.read_text


def write_cfg(name, cfg):
    with open(path(name + ".yaml"), "w") as f:
        f.write(hltest.to_yaml(cfg) + "\n")
    return path(name + ".yaml")


def wait_for(fn, what, timeout):
    return hltest.wait_for(fn, t.slow(timeout), what)


def wait_log(name, regex, timeout=10):
    return t.wait_log_file(path(name + ".log"), regex, timeout)


def start(name, cfg, ready):
    c = write_cfg(name, cfg)
    procs[name] = lab.spawn(name, [t.hlcore, "-c", c],
                            log=path(name + ".log"), env=hltest.child_env())
    for r in ready:
        wait_log(name, r, 20)


def panel(method, p, headers=(), data=None):
    """A request to B's panel from inside B: (status, body text)."""
    args = ["curl", "-sS", "-m", str(t.slow(10)), "-X", method,
            "-w", "\n%{http_code}"]
    for h in headers:
        args += ["-H", h]
    if data is not None:
        args += ["--data-binary", data]
    rc, out, err = lab.run("b", args + ["http://127.0.0.1:7010" + p],
                           timeout=t.slow(20))
    check(rc == 0, "curl %s %s in B" % (method, p), "exit 0",
          "exit %s: %s" % (rc, err))
    body, _, code = out.rpartition("\n")
    return int(code), body


def bearer():
    return "Authorization: Bearer %s" % S["token"]


def lan():
    code, body = panel("GET", "/api/status", [bearer()])
    check_eq(code, 200, "GET /api/status on B")
    return json.loads(body)["lan"]


def seen():
    return [s for s in lan() if s["title"] == TITLE]


def case_setup():
    a_cfg = {"state_dir": path("a-state"), "log": {"level": "debug"},
             "proxy": {"listen": "off"},
             "plugins": {"transport-tls": {"listen": "0.0.0.0:7008"},
                         "discovery-lan": {}},
             "services": {"nas": {"target": "127.0.0.1:8080",
                                  "title": TITLE, "password": "none"}}}
    b_cfg = {"state_dir": path("b-state"), "log": {"level": "debug"},
             "proxy": {"listen": "127.0.0.1:7009"},
             "plugins": {"discovery-lan": {},
                         "admin-web": {"listen": "127.0.0.1:7010"}}}
    rc, out, err = hltest.run([t.hlcore, "-c", write_cfg("a", a_cfg), "url",
                               "nas"], cwd=t.tmp)
    m = hltest.URL_RE.match(out.strip())
    check(rc == 0 and m is not None and m.group(1) == "", "hlcore url nas",
          "a URL without a password", out + err)
    S["hash"] = m.group(2)
    start("a", a_cfg, [r"searching and answering",
                       r"listening on 0\.0\.0\.0:7008"])
    start("b", b_cfg, [r"searching and answering",
                       r"admin-web: first start"])
    with open(path("b-state", "admin.token")) as f:
        S["token"] = f.read().strip()


def case_nothing_yet():
    time.sleep(t.slow(1))
    check_eq(seen(), [], "B's lan before any refresh")


def case_api_refresh():
    code, body = panel("POST", "/api/lan/refresh")
    check_eq(code, 401, "POST /api/lan/refresh without the token")
    time.sleep(t.slow(0.5))
    check_eq(seen(), [], "B's lan after a refused refresh")
    code, body = panel("POST", "/api/lan/refresh", [bearer()])
    check_eq(code, 200, "POST /api/lan/refresh with the token")
    got = wait_for(seen, "%r in B's lan" % TITLE, 5)
    s = got[0]
    check_eq(s["addr"], "%s:7008" % a_ip, "its address")
    check_eq(s["label"], "-" + S["hash"], "its label")
    check_eq(s["source"], "discovery-lan", "who heard it")
    check_eq(s["url"], "http://-%s.localhost:7009/" % S["hash"], "its URL")


def case_form_refresh():
    # The dashboard's button, as a browser without JavaScript sends it.
    jar = path("cookies.txt")

    def curl(*args):
        rc, out, err = lab.run("b", ["curl", "-sS", "-m", str(t.slow(10)),
                                     "-b", jar, "-c", jar] + list(args),
                               timeout=t.slow(20))
        check(rc == 0, "curl %s" % " ".join(args), "exit 0", err)
        return out
    page = curl("http://127.0.0.1:7010/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
    curl("--data-binary", "csrf=%s&token=%s" % (csrf, S["token"]),
         "http://127.0.0.1:7010/login")
    page = curl("http://127.0.0.1:7010/")
    m = re.search(r'<form method="post" action="/lan/refresh" '
                  r'class="section-tool"><input type="hidden" name="csrf" '
                  r'value="([0-9a-f]{64})">', page)
    check(m is not None, "B's dashboard", "the LAN Refresh button", page)
    check(TITLE in page, "B's dashboard", "%r in the LAN section" % TITLE,
          page)
    # Let the sighting age (seconds, whole) so that a new one shows.
    time.sleep(2.2)
    before = min(s["age"] for s in seen())
    check(before >= 2, "the sighting's age", "at least 2 s", before)
    out = curl("-w", "\n%{http_code} %{redirect_url}", "--data-binary",
               "csrf=" + m.group(1), "http://127.0.0.1:7010/lan/refresh")
    check(out.rsplit("\n", 1)[-1].startswith("303 "), "the form POST",
          "303 back to the dashboard", out)
    # Heard again: its age starts from 0.
    wait_for(lambda: [s for s in seen() if s["age"] < before],
             "%r heard again after the form" % TITLE, 5)
    check("Asked the discovery plugins" in curl("http://127.0.0.1:7010/"),
          "the dashboard after the form", "the message", "none")


def case_stop():
    for name in ("b", "a"):
        rc = lab.stop(procs[name])
        check_eq(rc, 0, "hlcore %s after SIGTERM" % name)


try:
    if t.case("lab: A serves %r with discovery-lan, B runs the panel"
              % TITLE, case_setup):
        t.case("B has heard of nothing before the admin asks",
               case_nothing_yet)
        if t.case("POST /api/lan/refresh: A's service in B's lan",
                  case_api_refresh):
            t.case("the dashboard's Refresh form (no JS) searches again",
                   case_form_refresh)
        t.case("SIGTERM: both exit 0", case_stop)
finally:
    if t.failed or os.environ.get("HLTEST_DEBUG"):
        for name in ("a", "b"):
            print("---- log of hlcore %s (last 4000 chars):\n%s" %
                  (name, read(path(name + ".log"))[-4000:]))
    lab.destroy()
t.finish()
