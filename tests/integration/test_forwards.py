#!/usr/bin/env python3
"""Any TCP service, not only web pages: `forwards:` and `hlcore connect`.

A server node serves a real OpenSSH sshd (run here on loopback with a
generated host key), a banner-first service (it speaks before the client
does, as SSH, SMTP and MySQL do) and an HTTP backend. A client node runs
the proxy, a transport-tls listener, admin-web and forwards to them. Then:

- the banner arrives through a forward and through `hlcore connect`
  without the client sending anything;
- ssh logs in through a forward, through the proxy's SOCKS5 with
  `nc -X 5` as its ProxyCommand, and through `hlcore connect` as its
  ProxyCommand (with no forward for it, while the client daemon with the
  same config and state_dir runs); 16 MiB go up and down over ssh intact;
- a wrong password and an unknown keyhash are refused: connect exits
  non-zero saying why, a forward closes the local connection at once and
  the next connection tries again;
- the admin panel lists the forwards and says which forward a tunnel
  came from;
- a forward's port already in use is a config error naming file:line, in
  `check` and at start;
- the same against the independent Python server (hardline_peer.py).
"""
import getpass
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
from hltest import check, check_eq, check_in  # noqa: E402
import hardline_peer as hp  # noqa: E402

SSHD = "/usr/sbin/sshd"
if not os.path.exists(SSHD) or not shutil.which("ssh"):
    print("SKIP: openssh-server and openssh-client are needed "
          "(scripts/deps.sh test installs them)")
    print("0 passed, 0 failed")
    sys.exit(hltest.SKIP)

t = hltest.Test("forwards", deadline=280)
ADMIN = os.path.exists(os.path.join(t.build_dir, "plugins", "admin-web.so"))
backend = t.backend()
UNKNOWN = "fedcba9876543210fedcba9876543210fedcba98"
dead_port = hltest.free_port()
lab = os.path.join(t.tmp, "lab")
os.makedirs(lab)


# ---- a banner-first service: "220 <token>\r\n" at once, then echo ----

banner = hltest.BannerService()
half = hltest.HalfCloseService()


# ---- a real sshd on loopback ----

def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    path], check=True, stdout=subprocess.DEVNULL,
                   timeout=30)


USER = getpass.getuser()
HOSTKEY = os.path.join(lab, "ssh_host_ed25519_key")
USERKEY = os.path.join(lab, "id_ed25519")
keygen(HOSTKEY)
keygen(USERKEY)
shutil.copy(USERKEY + ".pub", os.path.join(lab, "authorized_keys"))
sshd_port = None
sshd_proc = None


def start_sshd():
    global sshd_port, sshd_proc
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    for _ in range(4):
        sshd_port = hltest.free_port()
        cfg = os.path.join(lab, "sshd_config")
        with open(cfg, "w") as f:
            f.write("\n".join([
                "Port %d" % sshd_port, "ListenAddress 127.0.0.1",
                "HostKey %s" % HOSTKEY,
                "PidFile %s" % os.path.join(lab, "sshd.pid"),
                "AuthorizedKeysFile %s" % os.path.join(lab,
                                                       "authorized_keys"),
                "PubkeyAuthentication yes", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "UsePAM no",
                "StrictModes no", "PermitRootLogin prohibit-password",
                "AllowTcpForwarding no", "X11Forwarding no", "PrintMotd no",
                "LogLevel ERROR", ""]))
        sshd_proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", cfg, "-h", HOSTKEY],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(lab, "sshd.log"), "ab"))
        with hltest._lock:
            hltest._procs.append(sshd_proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sshd_proc.poll() is None:
            if hltest.port_open(sshd_port):
                return
            time.sleep(0.05)
        sshd_proc.kill()
    raise hltest.Fail("sshd did not start: %s" %
                      open(os.path.join(lab, "sshd.log")).read())


SSH_OPTS = ["-F", "/dev/null", "-i", USERKEY, "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=30"]


def ssh_forward(port, command, stdin=None, timeout=60):
    return subprocess.run(
        ["ssh"] + SSH_OPTS + ["-p", str(port), "%s@127.0.0.1" % USER,
                              command],
        stdin=stdin or subprocess.DEVNULL, capture_output=True,
        timeout=t.slow(timeout))


def ssh_connect(label, command, stdin=None, timeout=60, config=None):
    proxy = "%s -c %s connect %%h" % (t.hlcore, config or client.config_path)
    return subprocess.run(
        ["ssh"] + SSH_OPTS + ["-o", "ProxyCommand=" + proxy,
                              "%s@%s" % (USER, label), command],
        stdin=stdin or subprocess.DEVNULL, capture_output=True,
        timeout=t.slow(timeout), env=hltest.child_env())


# ---- the nodes ----

server = t.node("server")
client = t.node("client")
S = {}
ports = {}
PY = {}


def label(name, pw=None):
    return "%s-%s" % (S[name]["pw"] if pw is None else pw, S[name]["hash"])


def server_config():
    ports["tls"] = hltest.free_port()
    return server.tls_server_config(ports["tls"], {
        "ssh": {"target": hltest.local(sshd_port)},
        "banner": {"target": banner.addr, "password": "none"},
        "web": {"target": backend.addr},
        "half": {"target": half.addr, "password": "none"},
    })


FWD = ("ssh", "banner", "web", "wrongpw", "unknown", "python", "half")


def client_config():
    for k in FWD + ("proxy", "ctls", "admin"):
        ports[k] = hltest.free_port()
    real = "127.0.0.1:%d" % ports["tls"]
    peers = {S[n]["hash"]: [real] for n in ("ssh", "banner", "web", "half")}
    peers[UNKNOWN] = [real, "127.0.0.1:%d" % dead_port]
    peers[PY["hash"]] = ["127.0.0.1:%d" % PY["srv"].port]
    plugins = {"transport-tls": {"listen": "127.0.0.1:%d" % ports["ctls"]}}
    if ADMIN:
        plugins["admin-web"] = {"listen": "127.0.0.1:%d" % ports["admin"]}
    cfg = client.base_config(ports["proxy"], plugins=plugins, peers=peers)
    cfg["proxy"]["socks"] = True
    text = hltest.to_yaml(cfg) + "\nforwards:\n"
    tos = {"ssh": label("ssh"),
           "banner": label("banner") + ".localhost",
           "web": label("web"),
           "wrongpw": label("ssh", pw="wrongpw"),
           "unknown": "-" + UNKNOWN,
           "python": "%s-%s" % (PY["pw"], PY["hash"]),
           "half": label("half")}
    for k in FWD:
        text += "  - { listen: \"127.0.0.1:%d\", to: \"%s\", title: \"%s\" }\n" \
            % (ports[k], tos[k], k)
    return text


def client_listens(_cfg):
    return [ports["proxy"]] + [ports[k] for k in FWD] + \
        ([ports["admin"]] if ADMIN else [])


def recv_until(s, needle, timeout):
    s.settimeout(timeout)
    got = b""
    deadline = time.monotonic() + timeout
    while needle not in got and time.monotonic() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        got += d
    return got


# ---- cases ----

def case_setup():
    start_sshd()
    server.write_config(server_config())
    for name in ("ssh", "banner", "web", "half"):
        rc, out, err = server.cmd("url", name)
        check(rc == 0, "hlcore url %s" % name, "exit 0", err)
        m = hltest.URL_RE.match(out.strip())
        S[name] = {"pw": m.group(1), "hash": m.group(2)}
    server.start(server_config, lambda c: [ports["tls"]])
    cert, key, pyhash = hp.make_cert(lab, "pyservice")
    PY["hash"], PY["pw"] = pyhash, "pythonpw"
    PY["srv"] = hp.Server(
        {pyhash: {"cert": cert, "key": key, "password": PY["pw"],
                  "backend": ("127.0.0.1", banner.port)}}).start()
    hltest.at_cleanup(PY["srv"].stop)
    client.start(client_config, client_listens)


def case_banner_forward():
    """a banner-first service through a forward"""
    with socket.create_connection(("127.0.0.1", ports["banner"]),
                                  timeout=10) as s:
        got = recv_until(s, b"\r\n", t.slow(10))
        check_eq(got, banner.line,
                 "the banner through a forward, before sending anything")
        s.sendall(b"ping\n")
        check_eq(recv_until(s, b"ping\n", t.slow(10)), b"ping\n",
                 "the echo through the forward")


def connect_proc(lbl, config=None):
    p = subprocess.Popen(
        [t.hlcore, "-c", config or client.config_path, "connect", lbl],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=hltest.child_env())
    with hltest._lock:
        hltest._procs.append(p)
    return p


def read_line(p, timeout):
    """A line of p's stdout within timeout (b"" at EOF or timeout)."""
    out = []
    th = threading.Thread(target=lambda: out.append(p.stdout.readline()),
                          daemon=True)
    th.start()
    th.join(timeout)
    return out[0] if out else b""


def case_banner_connect():
    """a banner-first service through hlcore connect"""
    p = connect_proc(label("banner") + ".localhost")
    try:
        check_eq(read_line(p, t.slow(10)), banner.line,
                 "the banner through hlcore connect, before writing anything")
        p.stdin.write(b"ping\n")
        p.stdin.flush()
        check_eq(read_line(p, t.slow(10)), b"ping\n", "the echo")
        p.stdin.close()
        rc = p.wait(timeout=t.slow(10))
        err = p.stderr.read().decode("utf-8", "replace")
        check(rc == 0 and "ERROR" not in err and "runtime error" not in err,
              "hlcore connect after stdin closed", "exit 0, nothing on "
              "stderr but maybe warnings", "exit %s: %s" % (rc, err))
    finally:
        if p.poll() is None:
            p.kill()


def case_half_close():
    """half-close both ways through a forward and hlcore connect"""
    hltest.check_half_close(half, ports["half"], timeout=t.slow(20))
    # connect: stdin's EOF is the client's half-close; the answer that
    # comes after it still reaches stdout.
    body = os.urandom(200000)
    p = connect_proc(label("half"))
    try:
        out, err = p.communicate(b"GET /answer-at-eof HTTP/1.1\r\n\r\n" +
                                 body, timeout=t.slow(20))
        want = "got %d %s" % (len(body), hashlib.sha256(body).hexdigest())
        check(p.returncode == 0 and out == want.encode(), "hlcore connect "
              "with stdin closed before the answer", "exit 0 and " + want,
              "exit %s, out %r, err %r" % (p.returncode, out[:80], err))
    finally:
        if p.poll() is None:
            p.kill()
    # The service shuts its side first: stdout ends (EOF), stdin is
    # still carried until it closes.
    half.done.clear()
    p = connect_proc(label("half"))
    try:
        p.stdin.write(b"GET /shut-first HTTP/1.1\r\n\r\n")
        p.stdin.flush()
        got = []
        th = threading.Thread(target=lambda: got.append(p.stdout.read()),
                              daemon=True)
        th.start()
        th.join(t.slow(20))
        check(got == [("hello %s" % half.token).encode()], "hlcore "
              "connect's stdout when the service shut its side",
              "hello, then EOF while hlcore connect runs", got)
        check(p.poll() is None, "hlcore connect after stdout's EOF",
              "still running (stdin open)", "exit %s" % p.poll())
        p.stdin.write(body)
        p.stdin.close()
        check(half.done.wait(t.slow(20)) and half.after_shut == body,
              "what the service read after it shut its side",
              "all %d bytes, then EOF" % len(body), "%s bytes" %
              (None if half.after_shut is None else len(half.after_shut)))
        rc = p.wait(timeout=t.slow(10))
        check(rc == 0, "hlcore connect at the end", "exit 0", rc)
    finally:
        if p.poll() is None:
            p.kill()


def case_ssh_forward():
    """ssh through a forward"""
    r = ssh_forward(ports["ssh"], "echo hello-$((6*7))")
    check(r.returncode == 0 and r.stdout.strip() == b"hello-42",
          "ssh through the forward", "exit 0 and hello-42",
          "exit %d, out %r, err %r" % (r.returncode, r.stdout, r.stderr))


def case_ssh_connect():
    """ssh with hlcore connect as ProxyCommand"""
    for lbl in (label("ssh"), label("ssh") + ".localhost"):
        r = ssh_connect(lbl, "echo hello-$((6*7))")
        check(r.returncode == 0 and r.stdout.strip() == b"hello-42",
              "ssh with ProxyCommand hlcore connect %%h to %s" %
              ("<pw>-<hash>.localhost" if lbl.endswith("localhost")
               else "<pw>-<hash>"), "exit 0 and hello-42",
              "exit %d, out %r, err %r" % (r.returncode, r.stdout,
                                            r.stderr))


def case_ssh_socks():
    """ssh through SOCKS5 (nc -X 5 as ProxyCommand)"""
    nc = shutil.which("nc")
    if nc is None:
        raise hltest.Fail("nc (netcat-openbsd) is not installed: "
                          "scripts/deps.sh test installs it")
    r = subprocess.run(
        ["ssh"] + SSH_OPTS +
        ["-o", "ProxyCommand=%s -X 5 -x 127.0.0.1:%d %%h %%p" %
         (nc, ports["proxy"]),
         "%s@%s.localhost" % (USER, label("ssh")), "echo hello-$((6*7))"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=t.slow(60))
    check(r.returncode == 0 and r.stdout.strip() == b"hello-42",
          "ssh with ProxyCommand nc -X 5 through the proxy's SOCKS5",
          "exit 0 and hello-42",
          "exit %d, out %r, err %r" % (r.returncode, r.stdout, r.stderr))


def case_ssh_16mib():
    """16 MiB up and down over ssh, intact"""
    data = os.urandom(16 * 1024 * 1024)
    want = hashlib.sha256(data).hexdigest()
    src = os.path.join(lab, "up.bin")
    dst = os.path.join(lab, "copied.bin")
    with open(src, "wb") as f:
        f.write(data)
    with open(src, "rb") as f:
        r = ssh_forward(ports["ssh"], "cat > %s" % dst, stdin=f,
                        timeout=120)
    check_eq(r.returncode, 0, "ssh 'cat > file' with 16 MiB on stdin "
             "through the forward (stderr %r)" % r.stderr)
    with open(dst, "rb") as f:
        check_eq(hashlib.sha256(f.read()).hexdigest(), want,
                 "SHA-256 of the 16 MiB copied up through the forward")
    r = ssh_connect(label("ssh"), "cat %s" % dst, timeout=120)
    check(r.returncode == 0 and
          hashlib.sha256(r.stdout).hexdigest() == want,
          "16 MiB copied down with ssh through hlcore connect",
          "exit 0 and %d bytes with SHA-256 %s" % (len(data), want),
          "exit %d, %d bytes, err %r" % (r.returncode, len(r.stdout),
                                          r.stderr[-500:]))


def case_wrong_password():
    """a wrong password is refused"""
    p = connect_proc(label("ssh", pw="wrongpw"))
    try:
        rc = p.wait(timeout=t.slow(20))
    except subprocess.TimeoutExpired:
        p.kill()
        raise hltest.Fail("connect with a wrong password did not exit "
                          "within %d s" % t.slow(20))
    err = p.stderr.read().decode("utf-8", "replace")
    check(rc == 1 and "password" in err and "Sanitizer" not in err,
          "connect with a wrong password",
          "a non-zero exit saying the password may be wrong",
          "exit %d: %s" % (rc, err))
    check("wrongpw" not in err, "connect's message",
          "not repeating the password", err)
    with socket.create_connection(("127.0.0.1", ports["wrongpw"]),
                                  timeout=10) as s:
        check(hltest.closed_within(s, t.slow(10)),
              "a forward with a wrong password", "the connection closed",
              "still open after %d s" % t.slow(10))
    m = client.wait_log(r"forward 127\.0\.0\.1:%d: .*without sending "
                        r"anything" % ports["wrongpw"], 10)
    check(m is not None, "the client's log", "the forward's failure with "
          "its reason", client.log()[-2000:])


def case_unknown_keyhash():
    """an unknown keyhash is refused, and tried again"""
    for bad in ("example.com", "pw-%s.localhost:22" % UNKNOWN, UNKNOWN):
        rc, out, err = client.cmd("connect", bad)
        check(rc == 2 and "not a Hardline service name" in err,
              "hlcore connect %s" % bad, "exit 2 saying why",
              "exit %d: %s" % (rc, err))
    p = connect_proc("-" + UNKNOWN)
    try:
        rc = p.wait(timeout=t.slow(30))
    except subprocess.TimeoutExpired:
        p.kill()
        raise hltest.Fail("connect to an unknown keyhash did not exit")
    err = p.stderr.read().decode("utf-8", "replace")
    check(rc == 1 and "no path to the service %s" % UNKNOWN in err and
          "via transport-tls" in err, "connect to an unknown keyhash",
          "exit 1 and the routing trace on stderr",
          "exit %d: %s" % (rc, err))
    for attempt in (1, 2):
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", ports["unknown"]),
                                      timeout=10) as s:
            check(hltest.closed_within(s, t.slow(10)),
                  "forward to an unknown keyhash, connection %d" % attempt,
                  "closed at once", "still open after %d s" % t.slow(10))
        el = time.monotonic() - t0
        check(el < t.slow(5), "how soon it closed", "under %d s" %
              t.slow(5), "%.1f s" % el)
        pat = r"forward 127\.0\.0\.1:%d: no path" % ports["unknown"]
        deadline = time.monotonic() + t.slow(5)
        while (len(__import__("re").findall(pat, client.log())) < attempt
               and time.monotonic() < deadline):
            time.sleep(0.05)
        n = len(__import__("re").findall(pat, client.log()))
        check(n >= attempt, "log lines for the unknown forward",
              "%d (each connection tries again)" % attempt, n)


def admin_status():
    tok = open(os.path.join(client.state_dir, "admin.token")).read().strip()
    req = urllib.request.Request(
        "http://127.0.0.1:%d/api/status" % ports["admin"],
        headers={"Authorization": "Bearer " + tok})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    return text, json.loads(text)


def dashboard():
    """Log in with the form as a browser does; the dashboard's HTML."""
    import http.client
    import re

    def req(method, path, cookies, body=None):
        c = http.client.HTTPConnection("127.0.0.1", ports["admin"],
                                       timeout=t.slow(10))
        h = {"Cookie": "; ".join("%s=%s" % kv for kv in cookies.items())}
        if body:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        got = {}
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                n, _, rest = v.partition("=")
                got[n] = rest.split(";")[0]
        data = r.read().decode("utf-8", "replace")
        c.close()
        return data, got

    tok = open(os.path.join(client.state_dir, "admin.token")).read().strip()
    page, cookies = req("GET", "/login", {})
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    _, sess = req("POST", "/login", cookies, "csrf=%s&token=%s" %
                  (csrf, tok))
    page, _ = req("GET", "/", sess)
    return page


def case_admin_panel():
    """the admin panel lists forwards and origins"""
    if not ADMIN:
        print("  (admin-web.so not built: the panel is not checked)")
        return
    with socket.create_connection(("127.0.0.1", ports["banner"]),
                                  timeout=10) as s:
        recv_until(s, b"\r\n", t.slow(10))
        text, st = admin_status()
        page = dashboard()
    for needle in ('id="forwards-body"', "127.0.0.1:%d" % ports["ssh"],
                   "<td>forward 127.0.0.1:%d</td>" % ports["banner"]):
        check_in(needle, page, "the dashboard's HTML")
    for secret in (S["ssh"]["pw"], PY["pw"]):
        check(secret not in page, "the dashboard", "no forward's password",
              "a password in it")
    fw = {f["listen"]: f for f in st.get("forwards", [])}
    check_eq(len(fw), len(FWD), "forwards in /api/status")
    b = fw.get("127.0.0.1:%d" % ports["banner"], {})
    check(b.get("keyhash") == S["banner"]["hash"] and
          b.get("title") == "banner" and b.get("password") is False,
          "the banner forward in /api/status", "its keyhash, title, "
          "password false", b)
    u = fw.get("127.0.0.1:%d" % ports["unknown"], {})
    check(u.get("failed", 0) >= 2 and "no path" in u.get("last_error", ""),
          "the unknown forward in /api/status", "failed >= 2 and its "
          "last error", u)
    origins = [c.get("origin") for c in st.get("connections", [])
               if c.get("direction") == "out"]
    check_in("forward 127.0.0.1:%d" % ports["banner"], origins,
             "the origin of the open tunnel in /api/status connections")
    for secret in (S["ssh"]["pw"], S["web"]["pw"], PY["pw"]):
        check(secret not in text, "/api/status", "no forward's password",
              "a password in it")
    check(any(r.get("keyhash") == UNKNOWN and not r.get("ok") and
              "transport-tls" in r.get("trace", "")
              for r in st.get("routes", [])),
          "the routing trace in /api/status", "the unknown keyhash's "
          "failed route with its trace", st.get("routes"))


def case_python_peer():
    """forward and connect to the Python server"""
    with socket.create_connection(("127.0.0.1", ports["python"]),
                                  timeout=10) as s:
        got = recv_until(s, b"\r\n", t.slow(10))
        check_eq(got, banner.line, "the banner through a forward to the "
                 "Python server, before sending anything")
        s.sendall(b"hello python\n")
        check_eq(recv_until(s, b"python\n", t.slow(10)), b"hello python\n",
                 "the echo through the Python server")
    p = connect_proc("%s-%s" % (PY["pw"], PY["hash"]))
    try:
        check_eq(read_line(p, t.slow(10)), banner.line,
                 "the banner through hlcore connect to the Python server")
        p.stdin.close()
        check_eq(p.wait(timeout=t.slow(15)), 0, "connect's exit status")
    finally:
        if p.poll() is None:
            p.kill()


def case_port_in_use():
    """a forward's port in use is a config error"""
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    hold.listen(1)
    busy = hold.getsockname()[1]
    node = t.node("busy")
    text = ("state_dir: %s\nproxy: { listen: \"127.0.0.1:%d\" }\n"
            "forwards:\n"
            "  - { listen: \"127.0.0.1:%d\", to: \"-%s\" }\n"
            "  - { listen: \"127.0.0.1:%d\", to: \"-%s\" }\n" %
            (node.state_dir, hltest.free_port(), hltest.free_port(),
             UNKNOWN, busy, UNKNOWN))
    node.write_config(text)
    try:
        want = "%s:5:15: forward 2 cannot listen on 127.0.0.1:%d" % (
            node.config_path, busy)
        rc, out, err = node.cmd("check")
        check(rc == 2 and want in err, "check with a forward's port in use",
              "exit 2 and %r" % want, "exit %d: %s" % (rc, err))
        rc, out, err = hltest.run([t.hlcore, "-c", node.config_path],
                                  timeout=t.slow(20))
        check(rc == 2 and want in err and "nothing was started" in err,
              "starting with a forward's port in use",
              "exit 2 and %r" % want, "exit %d: %s" % (rc, err))
    finally:
        hold.close()
    rc, out, err = node.cmd("check")
    check_eq(rc, 0, "check once the port is free (stderr %r)" % err)


t.case("setup: sshd, banner service, server and client nodes", case_setup)
if t.failed == 0:
    t.cases(
        case_banner_forward, case_banner_connect, case_half_close,
        case_ssh_forward,
        case_ssh_connect, case_ssh_socks, case_ssh_16mib, case_wrong_password,
        case_unknown_keyhash, case_admin_panel, case_python_peer,
        case_port_in_use)
    t.case_stops_cleanly(client, server)
t.finish()
