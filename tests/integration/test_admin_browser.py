#!/usr/bin/env python3
"""The admin panel end to end in a real browser.

hlcore serves a service and runs admin-web; a tunnel is left open through
its proxy and a route to an unknown keyhash fails, so that every part of
the dashboard has something to show. Then tests/browser/admin.mjs drives
Debian's chromium through playwright-core: log in with the token, see the
service and its URL (copy button, QR code), turn transport-tls off and on
with its switch, change its priority with its field (the rows follow the
new order), press the LAN section's Refresh button, watch the page follow
a change made through the API, the switch and the priority field without
JavaScript, and save screenshots of the dashboard in
$HL_BUILD_DIR/test-output/.

Skips (77) only when chromium, node or tests/browser/node_modules is
missing; ./test.sh installs all three.
"""
import os
import shutil
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
from hltest import check, check_eq, check_in  # noqa: E402

t = hltest.Test("admin_browser", deadline=280 if hltest.is_asan(
    hltest.hlcore_path() or "") else 200)
browser_dir = os.path.join(t.source_dir, "tests", "browser")
chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or \
    "/usr/bin/chromium"
node_bin = shutil.which("node")
missing = [what for what, ok in (
    ("chromium (apt-get install chromium)", os.access(chromium, os.X_OK)),
    ("node (apt-get install nodejs npm)", node_bin is not None),
    ("tests/browser/node_modules (cd tests/browser && npm ci)",
     os.path.isdir(os.path.join(browser_dir, "node_modules",
                                "playwright-core"))),
    ("admin-web.so", os.path.exists(os.path.join(t.build_dir, "plugins",
                                                 "admin-web.so")))) if not ok]
if missing:
    print("SKIP: missing %s" % ", ".join(missing))
    print("0 passed, 0 failed")
    sys.exit(hltest.SKIP)

backend = t.backend()
node = t.node("node")
TITLE = 'Home wiki <i>& "friends"</i>'
UNKNOWN = "0123456789abcdef0123456789abcdef01234567"
dead_port = hltest.free_port()
ports = {}
S = {}
out_dir = os.path.join(t.build_dir, "test-output")


def make_config():
    return node.admin_config(
        ports, {"wiki": {"target": backend.addr, "title": TITLE}},
        peers={UNKNOWN: [hltest.local(dead_port)]})


def case_start():
    node.start(make_config, lambda cfg: [ports["admin"], ports["proxy"]])
    rc, out, err = node.cmd("url", "wiki")
    check_eq(rc, 0, "hlcore url wiki")
    S["url"] = out.strip()
    m = hltest.URL_RE.match(S["url"])
    check(m is not None, "the URL", "a Hardline URL", S["url"])
    S["host"] = S["url"][len("http://"):-1]
    path = os.path.join(node.state_dir, "admin.token")
    check_eq(stat.S_IMODE(os.stat(path).st_mode), 0o600,
             "mode of admin.token")
    with open(path) as f:
        S["token"] = f.read().strip()


def case_traffic():
    # A tunnel that stays open (keep-alive) while the browser looks ...
    S["conn"] = hltest.connect(ports["proxy"], timeout=t.slow(15))
    r = hltest.fetch(ports["proxy"], S["host"], "/kept-open",
                     conn=S["conn"])
    check_eq(r.status, 200, "a fetch through the proxy")
    # ... and a route that failed, with its trace.
    r = hltest.fetch(ports["proxy"], "-%s.localhost:%d" % (UNKNOWN,
                                                          ports["proxy"]),
                     timeout=t.slow(15))
    check_eq(r.status, 502, "a fetch for a keyhash nobody serves")


def case_browser():
    os.makedirs(out_dir, exist_ok=True)
    for f in ("admin-dashboard.png", "admin-dashboard-nojs.png"):
        try:
            os.unlink(os.path.join(out_dir, f))
        except OSError:
            pass
    env = hltest.child_env()
    env.update({
        "ADMIN_URL": "http://127.0.0.1:%d/" % ports["admin"],
        "ADMIN_TOKEN": S["token"],
        "SERVICE_NAME": "wiki",
        "SERVICE_TITLE": TITLE,
        "SERVICE_URL": S["url"],
        "PLUGIN": "transport-tls",
        "OUT_DIR": out_dir,
        "CHROMIUM": chromium,
        "STEP_TIMEOUT_MS": str(t.slow(15) * 1000),
    })
    rc, out, err = hltest.run([node_bin, os.path.join(browser_dir,
                                                      "admin.mjs")],
                              timeout=t.slow(150), cwd=browser_dir, env=env)
    print(out, end="")
    check(rc == 0, "admin.mjs", "exit 0 (every step ok)",
          "exit %d; stderr:\n%s" % (rc, err[-3000:]))


def case_screenshot():
    for f in ("admin-dashboard.png", "admin-dashboard-nojs.png"):
        path = os.path.join(out_dir, f)
        check(os.path.exists(path), f, "saved", "missing")
        with open(path, "rb") as fh:
            data = fh.read()
        check(data.startswith(b"\x89PNG") and len(data) > 20000, f,
              "a PNG image of a real page", "%d bytes" % len(data))
        print("     screenshot: %s" % path)
    # Where a QR reader is installed, the code in the picture must be the
    # service's URL (zbar-tools is not required).
    zbar = shutil.which("zbarimg")
    if zbar:
        rc, out, err = hltest.run([zbar, "-q", "--raw", os.path.join(
            out_dir, "admin-dashboard.png")], timeout=t.slow(30))
        check_eq(out.strip(), S["url"], "the QR code in the screenshot")


def case_after():
    with open(os.path.join(node.state_dir, "plugins.state")) as f:
        check_in("transport-tls on", f.read(), "plugins.state at the end")
    r = hltest.fetch(ports["proxy"], S["host"], "/after",
                     timeout=t.slow(15))
    check_eq(r.status, 200, "a fetch through the proxy at the end")
    S["conn"].close()
    node.stop_ok()


if t.case("hlcore with admin-web starts; token 0600", case_start):
    if t.case("a live tunnel and a failed route to show", case_traffic):
        if t.case("chromium: log in, service URL, switch off/on, "
                  "priority, LAN refresh, live refresh, no JS",
                  case_browser):
            t.case("screenshots saved", case_screenshot)
        t.case("transport-tls on at the end; SIGTERM: exit 0", case_after)
t.finish()
