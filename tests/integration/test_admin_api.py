#!/usr/bin/env python3
"""The admin-web plugin's HTTP side, against a running hlcore.

One node serves a service (with a title full of HTML) through its own
transport-tls listener and proxy, and runs admin-web. The checks speak
HTTP as a script and as a browser would: who gets in (token, session
cookie, CSRF token) and who does not (401, a redirect to the login page,
nothing shown), what /api/status says, turning transport-tls off and on
through the API and the forms (the fetch through the proxy fails while it
is off) and that the choice survives a restart, plugin priorities set at
run time (the order of plugins follows, plugins.state keeps them), the LAN
refresh, that the admin token is in no answer (its one log line is
private to stderr), the login rate limit, and the bounds on requests.
"""
import http.client
import json
import os
import re
import stat
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
from hltest import Fail, check, check_eq, check_in  # noqa: E402

t = hltest.Test("admin_api")
t.need_built("plugins/admin-web.so", hint=" (libmicrohttpd-dev missing?)")

backend = t.backend()
node = t.node("node")
TITLE = '<b>Home & "wiki"</b><script>alert(1)</script>'
ports = {}
S = {}  # what the test learned: token, url, host, keyhash
BAD_LOGINS = []  # when this test sent a wrong token to /login


def make_config(new_ports=True):
    return node.admin_config(
        ports, {"wiki": {"target": backend.addr, "title": TITLE}},
        new_ports=new_ports)


def config():
    """make_config() on the ports chosen before."""
    return make_config(new_ports=False)


class R:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> list of values
        self.body = body
        self.text = body.decode("utf-8", "replace")

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def __repr__(self):
        return "<HTTP %d %s: %s>" % (self.status, self.headers,
                                     hltest._short(self.text, 800))


def names(st):
    """The loaded plugins' names, in the order /api/status gives."""
    return [p["name"] for p in st["plugins"] if p["loaded"]]


def state_file():
    with open(os.path.join(node.state_dir, "plugins.state")) as f:
        return f.read()


def req(method, path, headers=None, body=None, cookies=None, port=None):
    """One request to the panel; no redirect is followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port or ports["admin"],
                                      timeout=t.slow(10))
    h = dict(headers or {})
    if cookies:
        h["Cookie"] = "; ".join("%s=%s" % kv for kv in cookies.items())
    if body is not None and isinstance(body, str):
        body = body.encode()
    if body is not None:
        h.setdefault("Content-Type", "application/x-www-form-urlencoded")
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        hs = {}
        for k, v in r.getheaders():
            hs.setdefault(k.lower(), []).append(v)
        return R(r.status, hs, r.read())
    finally:
        conn.close()


def bearer(token=None):
    return {"Authorization": "Bearer %s" % (token or S["token"])}


def status():
    r = req("GET", "/api/status", bearer())
    check_eq(r.status, 200, "GET /api/status with the token")
    return json.loads(r.text)


def plugin(st, name):
    for p in st["plugins"]:
        if p["name"] == name:
            return p
    raise Fail("plugin %s not in /api/status: %s" % (name, st["plugins"]))


def set_cookies(r):
    out = {}
    for c in r.headers.get("set-cookie", []):
        name, _, rest = c.partition("=")
        out[name.strip()] = (rest.split(";")[0], c)
    return out


def login_form():
    """GET /login: (the form's CSRF value, the cookies to send back)."""
    r = req("GET", "/login")
    check_eq(r.status, 200, "GET /login")
    m = re.search(r'name="csrf" value="([0-9a-f]{64})"', r.text)
    check(m is not None, "the login form", "a csrf field", r.text)
    pre = set_cookies(r).get("hl_pre")
    check(pre is not None and pre[0] == m.group(1), "the hl_pre cookie",
          "the form's csrf value", r.headers)
    return m.group(1), {"hl_pre": pre[0]}


def login():
    """Log in with the form; returns (session cookies, the page's CSRF)."""
    csrf, cookies = login_form()
    r = req("POST", "/login", body="csrf=%s&token=%s" % (csrf, S["token"]),
            cookies=cookies)
    check_eq(r.status, 303, "POST /login with the right token")
    sess = set_cookies(r).get("hl_session")
    check(sess is not None, "the answer to a good login", "a hl_session "
          "cookie", r.headers)
    cookies = {"hl_session": sess[0]}
    page = req("GET", "/", cookies=cookies)
    check_eq(page.status, 200, "the dashboard after login")
    m = re.search(r'<meta name="hl-csrf" content="([0-9a-f]{64})">',
                  page.text)
    check(m is not None, "the dashboard", "the hl-csrf meta tag", page.text)
    return cookies, m.group(1)


def proxy_fetch():
    return hltest.fetch(ports["proxy"], S["host"], "/admin-test",
                        timeout=t.slow(15))


def no_secret(r, what):
    for secret in (S["token"], S["password"]):
        check(secret not in r.text, what, "no token or service password",
              r.text)


def start():
    node.start(make_config if not ports else config,
               lambda cfg: [ports["admin"], ports["proxy"]])


def wait_plugin(name, running, timeout=10):
    deadline = time.monotonic() + t.slow(timeout)
    while True:
        p = plugin(status(), name)
        if p["running"] == running or time.monotonic() > deadline:
            return p
        time.sleep(0.1)


# ---- the cases ----

def case_start():
    node.write_config(make_config())
    rc, out, err = node.cmd("url", "wiki")
    check_eq(rc, 0, "hlcore url wiki")
    S["url"] = out.strip()
    m = hltest.URL_RE.match(S["url"])
    check(m is not None, "the URL", "http://<pw>-<hash>.localhost:port/",
          S["url"])
    S["password"], S["keyhash"] = m.group(1), m.group(2)
    S["host"] = "%s-%s.localhost:%d" % (m.group(1), m.group(2),
                                        ports["proxy"])
    start()
    path = os.path.join(node.state_dir, "admin.token")
    check(node.wait_log(r"admin-web: first start") is not None,
          "the log", "the first-start line", node.log())
    with open(path) as f:
        S["token"] = f.read().strip()


def case_token_file():
    path = os.path.join(node.state_dir, "admin.token")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    check_eq(oct(mode), oct(0o600), "mode of admin.token")
    check(re.fullmatch(r"[a-z2-7]{32}", S["token"]) is not None,
          "the token", "32 base32 characters (160 bits)", S["token"])
    log = node.log()
    check_eq(log.count(S["token"]), 1, "times the token is in the log")
    check_in("open http://127.0.0.1:%d/ and log in" % ports["admin"], log,
             "the first-start line")


ROUTES = [
    ("GET", "/api/status"),
    ("POST", "/api/plugins/transport-tls/disable"),
    ("POST", "/api/plugins/transport-tls/enable"),
    ("GET", "/api/nothing-here"),
    ("GET", "/qr/wiki.svg"),
    ("GET", "/"),
    ("GET", "/anything"),
    ("POST", "/plugins/transport-tls/disable"),
    ("POST", "/plugins/transport-tls/enable"),
    ("POST", "/api/plugins/transport-tls/priority"),
    ("POST", "/plugins/transport-tls/priority"),
    ("POST", "/api/lan/refresh"),
    ("POST", "/lan/refresh"),
    ("POST", "/logout"),
]


def shows_nothing(r, what):
    no_secret(r, what)
    for s in ("wiki", S["keyhash"], "transport-tls", backend.addr):
        check(s not in r.text, what, "nothing about the node", r.text)


def case_unauthorized():
    forged = {"hl_session": "0" * 64}
    for method, path in ROUTES:
        body = "csrf=x" if method == "POST" else None
        for how, headers, cookies in (
                ("no credentials", {}, None),
                ("a wrong token", bearer("x" * 32), None),
                ("a token off by one letter",
                 bearer(S["token"][:-1] + ("a" if S["token"][-1] != "a"
                                           else "b")), None),
                ("Basic auth", {"Authorization": "Basic YWRtaW46eA=="},
                 None),
                ("a forged session cookie", {}, forged)):
            r = req(method, path, headers, body, cookies)
            what = "%s %s with %s" % (method, path, how)
            page = method == "GET" and not path.startswith(("/api/",
                                                            "/qr/"))
            if page and "Authorization" not in headers:
                check(r.status == 303 and r.header("Location") == "/login",
                      what, "303 to /login", r)
            else:
                check_eq(r.status, 401, what)
            shows_nothing(r, what)
    p = plugin(status(), "transport-tls")
    check(p["enabled"] and p["running"], "transport-tls after all that",
          "still on", p)
    check_eq(p["priority"], 10, "transport-tls's priority after all that")
    # A JSON body does not get a script in either.
    r = req("POST", "/api/plugins/transport-tls/priority",
            {"Content-Type": "application/json"}, '{"priority": 500}')
    check_eq(r.status, 401, "priority with a JSON body and no credentials")
    check_eq(plugin(status(), "transport-tls")["priority"], 10,
             "transport-tls's priority after that")


def case_public():
    for path, ctype in (("/static/admin.css", "text/css"),
                        ("/static/admin.js", "text/javascript"),
                        ("/login", "text/html")):
        r = req("GET", path)
        check_eq(r.status, 200, "GET %s without credentials" % path)
        check_in(ctype, r.header("Content-Type") or "", "its type")
        shows_nothing(r, "GET %s" % path)
    r = req("GET", "/login")
    csp = r.header("Content-Security-Policy") or ""
    check_in("default-src 'none'", csp, "the CSP of /login")
    check_in("frame-ancestors 'none'", csp, "the CSP of /login")
    check_eq(r.header("X-Content-Type-Options"), "nosniff", "nosniff")
    check_eq(r.header("Cache-Control"), "no-store", "Cache-Control")
    r = req("GET", "/static/admin.js")
    check(re.search(r"https?://[A-Za-z0-9]", r.text) is None, "admin.js",
          "no URL of another site", re.findall(r"https?://\S+", r.text))


def case_status():
    st = status()
    for key in ("services", "plugins", "lan", "connections", "routes",
                "log", "stats", "wanhosts"):
        check(key in st, "/api/status", "a %r member" % key, st)
    check_eq(len(st["services"]), 1, "number of services")
    s = st["services"][0]
    check_eq(s["name"], "wiki", "service name")
    check_eq(s["title"], TITLE, "service title (as configured)")
    check_eq(s["url"], S["url"], "service URL (as `hlcore url` says)")
    check_eq(s["keyhash"], S["keyhash"], "service keyhash")
    check_eq(s["target"], backend.addr, "service target")
    tls = plugin(st, "transport-tls")
    check_eq(tls["kind"], ["transport"], "kind of transport-tls")
    check_eq(tls["priority"], 10, "priority of transport-tls")
    check(tls["enabled"] and tls["running"] and tls["loaded"],
          "transport-tls", "loaded, enabled, running", tls)
    aw = plugin(st, "admin-web")
    check_eq(aw["kind"], ["control"], "kind of admin-web")
    # The first-start line went to stderr only (HL_LOG_PRIVATE): it is
    # not in the recent log at all, while the lines around it are.
    texts = [line["text"] for line in st["log"]]
    check(any("admin-web" in x for x in texts) and
          any("proxy listening" in x for x in texts), "the log in "
          "/api/status", "the start's lines", texts)
    check(not any(S["token"] in x for x in texts), "the log in "
          "/api/status", "no token", texts)
    check(not any("first start" in x for x in texts), "the log in "
          "/api/status", "no first-start line (private)", texts)
    check(not any("hidden" in x for x in texts), "the log in "
          "/api/status", "no masked line (nothing to mask)", texts)
    check_in("admin-web: first start", node.log(), "stderr")
    r = req("GET", "/api/status", bearer())
    check_in("application/json", r.header("Content-Type"), "its type")
    check(S["token"] not in r.text, "/api/status", "no token", r.text)


def case_api_toggle():
    r = proxy_fetch()
    check_eq(r.status, 200, "fetch through the proxy before")
    check_in(backend.token, r.text, "the backend's page")
    r = req("POST", "/api/plugins/transport-tls/disable", bearer())
    check_eq(r.status, 200, "POST disable")
    body = json.loads(r.text)
    check(body == {"name": "transport-tls", "enabled": False,
                   "running": False}, "the answer", "off", body)
    p = plugin(status(), "transport-tls")
    check(not p["enabled"] and not p["running"], "/api/status",
          "transport-tls off", p)
    check(not hltest.port_open(ports["tls"]), "transport-tls's port",
          "closed", "open")
    r = proxy_fetch()
    check_eq(r.status, 502, "fetch through the proxy while it is off")
    with open(os.path.join(node.state_dir, "plugins.state")) as f:
        check_in("transport-tls off", f.read(), "plugins.state")
    r = req("POST", "/api/plugins/transport-tls/enable", bearer())
    check_eq(r.status, 200, "POST enable")
    check(json.loads(r.text)["running"], "the answer", "running",
          r.text)
    r = proxy_fetch()
    check_eq(r.status, 200, "fetch through the proxy once it is on")


def case_api_errors():
    r = req("POST", "/api/plugins/no-such-plugin/enable", bearer())
    check_eq(r.status, 404, "enable an unknown plugin")
    r = req("POST", "/api/plugins/admin-web/disable", bearer())
    check_eq(r.status, 409, "admin-web turning itself off")
    check_in("cannot turn itself", r.text, "the reason")
    r = req("POST", "/api/plugins/transport-tls/explode", bearer())
    check_eq(r.status, 404, "an unknown action")
    r = req("GET", "/api/plugins/transport-tls/disable", bearer())
    check_eq(r.status, 404, "GET on a POST route")
    check(plugin(status(), "transport-tls")["running"], "transport-tls",
          "still running", "stopped")
    r = req("DELETE", "/api/status", bearer())
    check_eq(r.status, 405, "DELETE")


def case_persist():
    r = req("POST", "/api/plugins/transport-tls/disable", bearer())
    check_eq(r.status, 200, "POST disable")
    node.stop_ok()
    start()
    p = plugin(status(), "transport-tls")
    check(not p["enabled"] and not p["running"], "transport-tls after a "
          "restart", "still off", p)
    check_in("turned off", p["error"], "why it is not running")
    check(not hltest.port_open(ports["tls"]), "its port", "closed", "open")
    check_eq(node.log().count(S["token"]), 1, "times the token is in the "
             "log after a restart")
    check_in("admin panel at http://127.0.0.1:%d/" % ports["admin"],
             node.log(), "the log of the second start")
    r = req("POST", "/api/plugins/transport-tls/enable", bearer())
    check_eq(r.status, 200, "POST enable")
    check_eq(proxy_fetch().status, 200, "fetch once it is on again")
    node.stop_ok()
    start()
    check(hltest.port_open(ports["tls"]), "transport-tls's port after "
          "another restart", "open", "closed")
    check(plugin(status(), "transport-tls")["running"], "transport-tls",
          "running", "off")


def case_api_priority():
    st = status()
    check_eq(plugin(st, "transport-tls")["priority"], 10, "transport-tls's "
             "priority (its default)")
    check_eq(plugin(st, "admin-web")["priority"], 100, "admin-web's")
    check_eq(names(st), ["transport-tls", "admin-web"], "the order before")
    r = req("POST", "/api/plugins/transport-tls/priority",
            dict(bearer(), **{"Content-Type": "application/json"}),
            json.dumps({"priority": 500}))
    check_eq(r.status, 200, "POST priority 500")
    body = json.loads(r.text)
    check(body == {"name": "transport-tls", "priority": 500}, "the answer",
          "the new priority", body)
    st = status()
    check_eq(plugin(st, "transport-tls")["priority"], 500, "its priority "
             "in /api/status")
    check_eq(names(st), ["admin-web", "transport-tls"], "the order after")
    check(plugin(st, "transport-tls")["running"], "transport-tls",
          "still running", "stopped")
    check_in("transport-tls on 500", state_file(), "plugins.state")
    check_eq(proxy_fetch().status, 200, "a fetch through the proxy after")
    log = [line["text"] for line in st["log"]]
    check(any("priority of plugin transport-tls set to 500 by the admin"
              in x for x in log), "the log", "who changed it", log)
    # Kept across a restart, and applied before the plugins start.
    node.stop_ok()
    start()
    st = status()
    check_eq(plugin(st, "transport-tls")["priority"], 500, "its priority "
             "after a restart")
    check_eq(names(st), ["admin-web", "transport-tls"], "the order after "
             "a restart")
    check_in("transport-tls 0.1.0 loaded from", node.log(), "the log")
    check(re.search(r"plugin transport-tls \S+ loaded from \S+ \(priority "
                    r"500\)", node.log()) is not None, "the log after a "
          "restart", "transport-tls loaded with priority 500", node.log())
    check_eq(proxy_fetch().status, 200, "a fetch through the proxy")
    # The bounds are inclusive; then back to 10 (the other cases expect
    # it). Without a Content-Type the body is JSON all the same.
    for value in (0, 1000, 10):
        r = req("POST", "/api/plugins/transport-tls/priority", bearer(),
                json.dumps({"priority": value}).encode())
        check_eq(r.status, 200, "POST priority %d" % value)
        check_eq(plugin(status(), "transport-tls")["priority"], value,
                 "its priority")
    check_eq(names(status()), ["transport-tls", "admin-web"],
             "the order at the end")
    check_in("transport-tls on 10", state_file(), "plugins.state")
    check_eq(state_file().count("transport-tls"), 1, "transport-tls's "
             "lines in plugins.state")


def case_api_priority_errors():
    h = dict(bearer(), **{"Content-Type": "application/json"})
    for body in ('{"priority": 1001}', '{"priority": -1}',
                 '{"priority": "20"}', '{"priority": 20.5}',
                 '{"priority": true}', '{"priority": null}',
                 '{"priority": 99999999999999999999}', '{}', '[20]', '20',
                 '{"priority": 20', 'priority=20', '',
                 '{"priority": 20, "priority": 30}'):
        r = req("POST", "/api/plugins/transport-tls/priority", h, body)
        check_eq(r.status, 400, "POST priority with body %r" % body)
        check_in("0 to 1000", json.loads(r.text)["error"], "the reason")
    r = req("POST", "/api/plugins/no-such-plugin/priority", h,
            '{"priority": 20}')
    check_eq(r.status, 404, "priority of an unknown plugin")
    r = req("POST", "/api/plugins/NO/priority", h, '{"priority": 20}')
    check_eq(r.status, 404, "priority of a name no plugin can have")
    # A plugin file that is not loaded has no priority to change yet.
    st = status()
    idle = [p["name"] for p in st["plugins"] if not p["loaded"]]
    if idle:
        r = req("POST", "/api/plugins/%s/priority" % idle[0], h,
                '{"priority": 20}')
        check_eq(r.status, 409, "priority of %s (not loaded)" % idle[0])
        check_in("loaded", json.loads(r.text)["error"], "the reason")
    r = req("GET", "/api/plugins/transport-tls/priority", bearer())
    check_eq(r.status, 404, "GET on the priority route")
    check_eq(plugin(status(), "transport-tls")["priority"], 10,
             "transport-tls's priority after the refused requests")
    check("transport-tls on 10" in state_file(), "plugins.state",
          "unchanged", state_file())


def case_api_lan_refresh():
    r = req("POST", "/api/lan/refresh", bearer())
    check_eq(r.status, 200, "POST /api/lan/refresh with the token")
    check_eq(json.loads(r.text), {"ok": True}, "the answer")
    r = req("POST", "/api/lan/refresh")
    check_eq(r.status, 401, "POST /api/lan/refresh without credentials")
    r = req("POST", "/api/lan/refresh", bearer("x" * 32))
    check_eq(r.status, 401, "POST /api/lan/refresh with a wrong token")
    r = req("GET", "/api/lan/refresh", bearer())
    check_eq(r.status, 404, "GET /api/lan/refresh")
    check_eq(status()["lan"], [], "lan (no discovery plugin here)")
    check(node.running(), "hlcore", "still running", "gone")


def case_no_token_anywhere():
    cookies, csrf = login()
    h = dict(bearer())
    for path, how in (("/api/status", h), ("/api/status", {}),
                      ("/", {}), ("/qr/wiki.svg", {}),
                      ("/static/admin.js", {}), ("/static/admin.css", {}),
                      ("/login", {}), ("/nothing", {})):
        r = req("GET", path, how, cookies=None if how else cookies)
        check(r.status in (200, 303, 404), "GET %s" % path, "an answer",
              r)
        # (The service password is in its URL, which the admin sees.)
        check(S["token"] not in r.text, "GET %s" % path, "no token",
              r.text)
    for path, body, how in (
            ("/api/lan/refresh", None, h),
            ("/api/plugins/transport-tls/priority", '{"priority": 10}', h),
            ("/api/plugins/transport-tls/priority", '{"priority": 5000}',
             h),
            ("/api/plugins/transport-tls/enable", None, h),
            ("/api/plugins/admin-web/disable", None, h)):
        r = req("POST", path, how, body)
        check(S["token"] not in r.text, "POST %s" % path, "no token",
              r.text)
    st = req("GET", "/api/status", h).text
    check(S["token"] not in st, "/api/status at the end", "no token", st)
    page = req("GET", "/", cookies=cookies).text
    check(S["token"] not in page, "the dashboard at the end", "no token",
          page)


def case_login_and_dashboard():
    csrf, cookies = login_form()
    r = req("POST", "/login", body="csrf=%s&token=%s" % (csrf, "nope" * 8),
            cookies=cookies)
    BAD_LOGINS.append(time.monotonic())
    check_eq(r.status, 401, "POST /login with a wrong token")
    check("hl_session" not in set_cookies(r), "a failed login",
          "no session cookie", r.headers)
    r = req("POST", "/login", body="csrf=%s&token=%s" % (csrf, S["token"]),
            cookies=cookies)
    check_eq(r.status, 303, "POST /login with the right token")
    check_eq(r.header("Location"), "/", "where a login leads")
    value, line = set_cookies(r)["hl_session"]
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/"):
        check_in(flag, line, "the session cookie")
    check(re.fullmatch(r"[0-9a-f]{64}", value) is not None, "the session "
          "id", "256 random bits", value)
    check(S["token"] not in line, "the cookie", "not the token", line)
    page = req("GET", "/", cookies={"hl_session": value})
    check_eq(page.status, 200, "GET / with the session")
    check_in(S["url"], page.text, "the dashboard: the service URL")
    check_in("&lt;b&gt;Home &amp; &quot;wiki&quot;&lt;/b&gt;&lt;script&gt;",
             page.text, "the dashboard: the title, escaped")
    check("<script>alert" not in page.text, "the dashboard",
          "no raw title", page.text)
    check_in('data-plugin="transport-tls"', page.text, "plugin rows")
    check_in("/plugins/transport-tls/disable", page.text, "its switch")
    check(S["token"] not in page.text, "the dashboard", "no token",
          page.text)
    r = req("GET", "/api/status", cookies={"hl_session": value})
    check_eq(r.status, 200, "GET /api/status with the session")
    r = req("GET", "/login", cookies={"hl_session": value})
    check_eq(r.status, 303, "GET /login when logged in")
    r = req("GET", "/qr/wiki.svg", cookies={"hl_session": value})
    check_eq(r.status, 200, "the QR code")
    check_eq(r.header("Content-Type"), "image/svg+xml", "its type")
    check(r.text.startswith("<svg") and "<path" in r.text, "the QR code",
          "an SVG image", r.text[:200])
    check_eq(req("GET", "/qr/nothing.svg",
                 cookies={"hl_session": value}).status, 404,
             "QR of an unknown service")
    # This hlcore can change priorities and browse: the controls are on.
    check(re.search(r'<form method="post" action="/plugins/transport-tls/'
                    r'priority" class="prio"><input type="hidden" '
                    r'name="csrf" value="[0-9a-f]{64}"><input '
                    r'type="number" name="priority" min="0" max="1000" '
                    r'step="1" required value="10"', page.text)
          is not None, "the dashboard", "a priority field for "
          "transport-tls (CSRF, 0..1000, its value)", page.text)
    check_in('data-can-priority="1"', page.text, "the plugins table")
    check(re.search(r'<form method="post" action="/lan/refresh" '
                    r'class="section-tool"><input type="hidden" '
                    r'name="csrf" value="[0-9a-f]{64}"><button '
                    r'type="submit" class="btn">Refresh</button>',
                    page.text) is not None, "the dashboard",
          "a Refresh button in the LAN section", page.text)


def case_login_csrf():
    csrf, cookies = login_form()
    body = "csrf=%s&token=%s" % (csrf, S["token"])
    r = req("POST", "/login", body=body)
    check_eq(r.status, 403, "POST /login without the form's cookie")
    r = req("POST", "/login", body="token=%s" % S["token"], cookies=cookies)
    check_eq(r.status, 403, "POST /login without the form's csrf field")
    r = req("POST", "/login", body=body, cookies=cookies,
            headers={"Origin": "http://evil.example",
                     "Sec-Fetch-Site": "cross-site"})
    check_eq(r.status, 403, "POST /login from another site")
    check("hl_session" not in set_cookies(r), "the refused logins",
          "no session", r.headers)


def case_csrf():
    cookies, csrf = login()
    for body, what in (("", "no csrf field"), ("csrf=" + "0" * 64,
                                               "a wrong csrf")):
        r = req("POST", "/plugins/transport-tls/disable", body=body,
                cookies=cookies)
        check_eq(r.status, 403, "form POST with %s" % what)
    r = req("POST", "/plugins/transport-tls/disable", body="csrf=" + csrf,
            cookies=cookies, headers={"Origin": "http://evil.example"})
    check_eq(r.status, 403, "form POST from another origin")
    r = req("POST", "/api/plugins/transport-tls/disable", cookies=cookies)
    check_eq(r.status, 403, "API POST with a session but no X-CSRF-Token")
    r = req("POST", "/api/plugins/transport-tls/disable", cookies=cookies,
            headers={"X-CSRF-Token": "f" * 64})
    check_eq(r.status, 403, "API POST with a wrong X-CSRF-Token")
    check(plugin(status(), "transport-tls")["running"], "transport-tls "
          "after the refused POSTs", "running", "stopped")
    # With the right token: the form turns it off, and says so.
    r = req("POST", "/plugins/transport-tls/disable", body="csrf=" + csrf,
            cookies=cookies)
    check(r.status == 303 and r.header("Location") == "/", "form POST "
          "with the csrf field", "303 to /", r)
    check(not plugin(status(), "transport-tls")["running"],
          "transport-tls after the form", "off", "running")
    page = req("GET", "/", cookies=cookies)
    check_in("transport-tls is now off.", page.text, "the message")
    check_in("/plugins/transport-tls/enable", page.text, "the switch")
    r = req("POST", "/api/plugins/transport-tls/enable", cookies=cookies,
            headers={"X-CSRF-Token": csrf})
    check_eq(r.status, 200, "API POST with the session's X-CSRF-Token")
    check(plugin(status(), "transport-tls")["running"], "transport-tls",
          "on again", "off")
    # The priority field and the refresh button, as forms and as the
    # page's script posts them; refused without the CSRF token.
    for body in ("priority=20", "csrf=%s&priority=20" % ("0" * 64)):
        r = req("POST", "/plugins/transport-tls/priority", body=body,
                cookies=cookies)
        check_eq(r.status, 403, "priority form with %r" % body)
    r = req("POST", "/plugins/transport-tls/priority",
            body="csrf=%s&priority=20" % csrf, cookies=cookies,
            headers={"Origin": "http://evil.example"})
    check_eq(r.status, 403, "priority form from another origin")
    r = req("POST", "/api/plugins/transport-tls/priority", cookies=cookies,
            headers={"Content-Type": "application/json"},
            body='{"priority": 20}')
    check_eq(r.status, 403, "priority API with a session, no X-CSRF-Token")
    r = req("POST", "/lan/refresh", body="", cookies=cookies)
    check_eq(r.status, 403, "refresh form without the csrf field")
    r = req("POST", "/api/lan/refresh", cookies=cookies)
    check_eq(r.status, 403, "refresh API with a session, no X-CSRF-Token")
    check_eq(plugin(status(), "transport-tls")["priority"], 10,
             "transport-tls's priority after the refused POSTs")
    r = req("POST", "/plugins/transport-tls/priority",
            body="csrf=%s&priority=20" % csrf, cookies=cookies)
    check(r.status == 303 and r.header("Location") == "/", "priority "
          "form with the csrf field", "303 to /", r)
    check_eq(plugin(status(), "transport-tls")["priority"], 20,
             "transport-tls's priority after the form")
    page = req("GET", "/", cookies=cookies)
    check_in("The priority of transport-tls is now 20.", page.text,
             "the message")
    check_in('required value="20"', page.text, "the field")
    for bad in ("abc", "-5", "1001", "", "5x", "%2B5", "99999999999999999"):
        r = req("POST", "/plugins/transport-tls/priority",
                body="csrf=%s&priority=%s" % (csrf, bad), cookies=cookies)
        check_eq(r.status, 303, "priority form with %r" % bad)
        page = req("GET", "/", cookies=cookies)
        check_in("from 0 to 1000", page.text, "the message for %r" % bad)
    r = req("POST", "/plugins/no-such-plugin/priority",
            body="csrf=%s&priority=5" % csrf, cookies=cookies)
    check_eq(r.status, 303, "priority form for an unknown plugin")
    check_in("There is no plugin named no-such-plugin.",
             req("GET", "/", cookies=cookies).text, "the message")
    r = req("POST", "/api/plugins/transport-tls/priority", cookies=cookies,
            headers={"X-CSRF-Token": csrf,
                     "Content-Type": "application/json"},
            body='{"priority": 10}')
    check_eq(r.status, 200, "priority API with the session's X-CSRF-Token")
    check_eq(plugin(status(), "transport-tls")["priority"], 10,
             "transport-tls's priority back")
    r = req("POST", "/api/lan/refresh", cookies=cookies,
            headers={"X-CSRF-Token": csrf})
    check_eq(r.status, 200, "refresh API with the session's X-CSRF-Token")
    r = req("POST", "/lan/refresh", body="csrf=" + csrf, cookies=cookies)
    check(r.status == 303 and r.header("Location") == "/", "refresh form "
          "with the csrf field", "303 to /", r)
    check_in("Asked the discovery plugins to look for services",
             req("GET", "/", cookies=cookies).text, "the message")
    # Log out: the session is gone.
    r = req("POST", "/logout", body="csrf=" + csrf, cookies=cookies)
    check_eq(r.status, 303, "POST /logout")
    check_eq(req("GET", "/", cookies=cookies).status, 303,
             "GET / after logout")
    check_eq(req("GET", "/api/status", cookies=cookies).status, 401,
             "GET /api/status after logout")


def case_limits():
    # A body announced over 8 KiB is refused before it is sent.
    status, text = hltest.raw_request(
        ports["admin"], b"POST /login HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 102400\r\n\r\n", timeout=t.slow(10))
    check_eq(status, 413, "a POST announcing 100 KiB")
    # One without a length that grows past 8 KiB: the connection ends.
    chunk = b"a" * 4096
    data = (b"POST /login HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" +
            (b"1000\r\n" + chunk + b"\r\n") * 4 + b"0\r\n\r\n")
    status, text = hltest.raw_request(ports["admin"], data,
                                      timeout=t.slow(10))
    check(status in (None, 413), "a chunked 16 KiB body",
          "the connection closed, or 413", text[:300])
    # A head bigger than the connection's memory: refused by MHD.
    r = req("GET", "/api/status", dict(bearer(), **{"X-Big": "b" * 65536}))
    check(r.status in (413, 431), "a 64 KiB header", "413 or 431", r)
    check(node.running(), "hlcore", "still running", "gone")


def case_rate_limit():
    csrf, cookies = login_form()
    # 5 failures within a minute are allowed, counting the earlier ones.
    check(not BAD_LOGINS or time.monotonic() - BAD_LOGINS[0] < 50,
          "the earlier bad logins", "within the last 50 s", BAD_LOGINS)
    for i in range(5 - len(BAD_LOGINS)):
        r = req("POST", "/login", body="csrf=%s&token=wrong%d" % (csrf, i),
                cookies=cookies)
        check_eq(r.status, 401, "bad login %d" % (len(BAD_LOGINS) + i + 1))
    r = req("POST", "/login", body="csrf=%s&token=wrong" % csrf,
            cookies=cookies)
    check_eq(r.status, 429, "the 6th bad login within a minute")
    check(int(r.header("Retry-After") or "0") > 0, "Retry-After",
          "seconds to wait", r.headers)
    r = req("POST", "/login", body="csrf=%s&token=%s" % (csrf, S["token"]),
            cookies=cookies)
    check_eq(r.status, 429, "even the right token, while limited")
    check("hl_session" not in set_cookies(r), "a limited login",
          "no session", r.headers)
    # Scripts with the token are not locked out.
    check_eq(req("GET", "/api/status", bearer()).status, 200,
             "the API with the token meanwhile")


def case_wide_listen():
    other = t.node("wide")
    port = {}

    def cfg():
        hltest.fresh_ports(port, "p")
        return other.base_config(plugins_strict=True, plugins={
            "admin-web": {"listen": "0.0.0.0:%d" % port["p"]}})
    other.start(cfg, lambda c: [port["p"]])
    check(other.wait_log(r"admin-web: listening on 0\.0\.0\.0:\d+, beyond "
                         r"this machine") is not None, "the log",
          "a warning about the wide listen", other.log())
    check_eq(req("GET", "/api/status", port=port["p"]).status, 401,
             "its API without the token")
    other.stop_ok()


def case_sigterm():
    node.stop_ok()
    check(S["token"] not in node.log().split("first start", 1)[1]
          .split("\n", 1)[1], "the log after the first start line",
          "no token", "the token")


if t.case("start: token created, URL known", case_start):
    t.case("admin.token: 0600, 160 bits, logged once", case_token_file)
    t.case("no credentials, bad token, forged cookie: 401 or /login, "
           "nothing shown", case_unauthorized)
    t.case("static files and /login: public, with security headers",
           case_public)
    t.case("/api/status: services with URL, plugins, lists; no token",
           case_status)
    t.case("API: disable transport-tls stops it (fetch 502), enable "
           "brings it back", case_api_toggle)
    t.case("API: unknown plugin 404, itself 409, bad route 404",
           case_api_errors)
    t.case("the choice persists across restarts (plugins.state)",
           case_persist)
    t.case("API: priority 500 reorders the plugins, kept in plugins.state "
           "across a restart", case_api_priority)
    t.case("API: a bad priority body 400, unknown plugin 404, not loaded "
           "409", case_api_priority_errors)
    t.case("API: LAN refresh 200 with the token, 401 without",
           case_api_lan_refresh)
    t.case("login form -> HttpOnly SameSite=Strict session; dashboard "
           "escaped", case_login_and_dashboard)
    t.case("login form: refused without its CSRF cookie/field or "
           "cross-site", case_login_csrf)
    t.case("CSRF: form and API posts (switch, priority, refresh) need the "
           "session's token; logout", case_csrf)
    t.case("the token is in no page and no API answer",
           case_no_token_anywhere)
    t.case("bounded requests: 8 KiB body, MHD memory", case_limits)
    t.case("login rate limit: 5 failures a minute, then 429",
           case_rate_limit)
    t.case("a non-loopback listen logs a warning", case_wide_listen)
    t.case("SIGTERM: exit 0, token never logged again", case_sigterm)
t.finish()
