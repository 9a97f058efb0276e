"""lab: network-namespace labs for the tests in tests/lab (root only).

    import lab
    L = lab.Lab("upnp", needs=["miniupnpd", "upnpc"])   # exit 77 if missing
    rtr = L.netns("rtr")                    # "hl<pid>-rtr", lo up
    L.veth(rtr, "r-lan", lan, "l-r")        # created inside the namespaces
    L.sh(rtr, "sysctl -qw net.ipv4.ip_forward=1")
    p = L.spawn(rtr, ["miniupnpd", "-d", ...], "miniupnpd")
    n = L.hlcore(lan, "server", {...config...}); n.start(); n.fetch(...)
    L.case("name", fn); L.finish()

Every namespace has a name unique to the run and is deleted, and every
process started here is killed, in an exit handler that also runs on
SIGTERM, SIGINT, SIGHUP and the script's own deadline: a failed run leaves
nothing behind. Namespaces are joined only to each other by veth pairs and
bridges made inside them; nothing touches the root namespace's interfaces.
Every wait is bounded.

Environment (from ctest): HLCORE, HL_BUILD_DIR, HL_SOURCE_DIR.
LAB_KEEP=1 keeps the temp dir; LAB_DEBUG=1 runs hlcore at log level debug
and prints every log at the end.
"""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77


class Fail(Exception):
    """A check failed; the message says what was expected and what came."""


def check(cond, what, expected, got):
    if not cond:
        raise Fail("%s: expected %s, got %s" % (what, expected, short(got)))


def short(v, n=2000):
    s = v if isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[:n] + "... (%d more chars)" % (len(s) - n)


def skip(why):
    print("SKIP: %s" % why, flush=True)
    sys.exit(SKIP)


def _is_asan(binary):
    try:
        with open(binary, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def _yaml(v, indent=0):
    """A config dict as block YAML (strings quoted, lists in flow)."""
    pad = "  " * indent
    out = []
    for k, val in v.items():
        if isinstance(val, dict):
            if val:
                out.append("%s%s:" % (pad, k))
                out.append(_yaml(val, indent + 1))
            else:
                out.append("%s%s: {}" % (pad, k))
        else:
            out.append("%s%s: %s" % (pad, k, _scalar(val)))
    return "\n".join(out)


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    return json.dumps(str(v))


class Lab:
    def __init__(self, name, needs=(), deadline=None):
        self.name = name
        if os.geteuid() != 0:
            skip("%s needs root (network namespaces)" % name)
        missing = [b for b in ["ip", "curl"] + list(needs)
                   if shutil.which(b) is None]
        if missing:
            skip("%s needs %s (see scripts/deps.sh test)" %
                 (name, ", ".join(missing)))
        hl = os.environ.get("HLCORE") or os.path.join(
            os.environ.get("HL_BUILD_DIR", ""), "hlcore")
        if not hl or not os.access(hl, os.X_OK):
            skip("no hlcore binary (set HLCORE or HL_BUILD_DIR); got %r" %
                 hl)
        self.hlcore_bin = os.path.abspath(hl)
        self.asan = _is_asan(self.hlcore_bin)
        self.id = "hl%d" % os.getpid()
        self.tmp = tempfile.mkdtemp(prefix="hllab-%s-" % name)
        os.chmod(self.tmp, 0o755)
        self.namespaces = []
        self.procs = []  # (Popen, name)
        self.nodes = []
        self.passed = 0
        self.failed = 0
        self.t0 = time.monotonic()
        self.deadline = deadline or (200 if self.asan else 110)
        self._cleaned = False
        atexit.register(self.cleanup)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.alarm(self.deadline)
        print("%s: hlcore %s%s, lab id %s, temp dir %s" %
              (name, self.hlcore_bin, " (ASan)" if self.asan else "",
               self.id, self.tmp), flush=True)

    # ---- the bounds ----

    def slow(self, seconds):
        """A timeout, stretched under ASan."""
        return seconds * 3 if self.asan else seconds

    def _on_signal(self, signum, frame):
        print("lab: signal %d: cleaning up" % signum, flush=True)
        self.cleanup()
        os._exit(1)

    def _on_alarm(self, signum, frame):
        print("FAIL: %s ran past its %d s deadline" %
              (self.name, self.deadline), flush=True)
        self.dump_logs()
        self.cleanup()
        os._exit(1)

    # ---- namespaces and links ----

    def netns(self, short_name):
        name = "%s-%s" % (self.id, short_name)
        self.run_root(["ip", "netns", "add", name])
        self.namespaces.append(name)
        self.sh(name, "ip link set lo up")
        return name

    def veth(self, ns1, if1, ns2, if2):
        """A veth pair made inside ns1 with its peer moved into ns2, so the
        root namespace never holds either end."""
        self.run_root(["ip", "-n", ns1, "link", "add", if1, "type", "veth",
                       "peer", "name", if2, "netns", ns2])

    def run_root(self, args, timeout=30, check_rc=True):
        p = subprocess.run(args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        if check_rc and p.returncode != 0:
            raise Fail("%s: exit %d: %s" % (" ".join(args), p.returncode,
                                             p.stderr.decode(errors="replace")))
        return p

    def sh(self, ns, script, timeout=30, check_rc=True):
        """Run a shell script inside ns; returns its stdout (text)."""
        rc, out, err = self.run(ns, ["sh", "-ec", script], timeout=timeout)
        if check_rc and rc != 0:
            raise Fail("in %s: %s: exit %d: %s%s" % (ns, script, rc, out,
                                                      err))
        return out

    def run(self, ns, args, timeout=30, env=None):
        """Run args inside ns to completion: (rc, stdout, stderr)."""
        p = subprocess.Popen(["ip", "netns", "exec", ns] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=env)
        self.procs.append((p, args[0]))
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=10)
            raise Fail("in %s: %s did not finish within %d s" %
                       (ns, " ".join(args), timeout))
        return (p.returncode, out.decode("utf-8", "replace"),
                err.decode("utf-8", "replace"))

    def spawn(self, ns, args, logname, env=None, cwd=None):
        """Start a long-running process inside ns, its output to
        <tmp>/<logname>.log. `ip netns exec` execs it, so the Popen's pid
        is the process's own."""
        log = open(os.path.join(self.tmp, logname + ".log"), "ab")
        p = subprocess.Popen(["ip", "netns", "exec", ns] + list(args),
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd)
        log.close()
        self.procs.append((p, logname))
        return p

    def log_of(self, logname):
        try:
            with open(os.path.join(self.tmp, logname + ".log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, p, sig=signal.SIGTERM, timeout=20):
        """Signal a spawned process and wait (bounded); its exit status, or
        None when it had to be killed."""
        if p.poll() is None:
            p.send_signal(sig)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            return None

    def wait_for(self, fn, timeout, what, step=0.05):
        """Poll fn() until it returns a true value (returned), at most
        timeout seconds; then Fail naming what was awaited."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = fn()
            except Fail:
                last = None
            if last:
                return last
            if time.monotonic() > deadline:
                raise Fail("%s: not within %.1f s" % (what, timeout))
            time.sleep(step)

    # ---- hlcore and a backend ----

    def hlcore(self, ns, name):
        n = Node(self, ns, name)
        self.nodes.append(n)
        return n

    def http_backend(self, ns, port, token):
        """python3 -m http.server on 127.0.0.1:port in ns, serving a
        directory with token.txt (holding token). Waits until it answers."""
        d = os.path.join(self.tmp, "www-%s" % port)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "token.txt"), "w") as f:
            f.write(token + "\n")
        p = self.spawn(ns, ["python3", "-m", "http.server", "--bind",
                            "127.0.0.1", "--directory", d, str(port)],
                       "backend-%s" % port)
        self.wait_for(lambda: self.run(ns, ["curl", "-sf", "-m", "2",
                                            "http://127.0.0.1:%d/token.txt" %
                                            port], timeout=5)[0] == 0,
                      self.slow(10), "the HTTP backend in %s" % ns, step=0.1)
        return p

    # ---- the runner ----

    def case(self, name, fn, *args):
        t0 = time.monotonic()
        try:
            fn(*args)
        except Fail as e:
            self.failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
            return False
        except Exception:
            self.failed += 1
            print("FAIL %s: exception:\n%s" % (name, traceback.format_exc()),
                  flush=True)
            return False
        self.passed += 1
        print("ok   %s (%.2f s)" % (name, time.monotonic() - t0), flush=True)
        return True

    def dump_logs(self):
        for f in sorted(os.listdir(self.tmp)):
            if f.endswith(".log"):
                text = self.log_of(f[:-4])
                if text:
                    print("---- %s (last 6000 chars):\n%s" %
                          (f, text[-6000:]), flush=True)

    def finish(self):
        signal.alarm(0)
        if self.failed or os.environ.get("LAB_DEBUG"):
            self.dump_logs()
        print("%s: %.1f s" % (self.name, time.monotonic() - self.t0))
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        self.cleanup()
        sys.exit(1 if self.failed else 0)

    def cleanup(self):
        if self._cleaned:
            return
        self._cleaned = True
        for p, _ in self.procs:
            if p.poll() is None:
                try:
                    p.terminate()
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for p, _ in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for ns in reversed(self.namespaces):
            # Whatever still runs inside (a daemon that forked) goes too.
            pids = subprocess.run(["ip", "netns", "pids", ns],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns],
                           stderr=subprocess.DEVNULL)
        if os.environ.get("LAB_KEEP"):
            print("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Node:
    """One hlcore in a namespace, with its dir (config, state, log) in the
    lab's temp dir."""

    def __init__(self, lab, ns, name):
        self.lab = lab
        self.ns = ns
        self.name = name
        self.dir = os.path.join(lab.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.state_dir = os.path.join(self.dir, "state")
        self.config_path = os.path.join(self.dir, "hardline.yaml")
        self.proc = None
        self.starts = 0

    def configure(self, cfg):
        cfg = dict(cfg)
        cfg.setdefault("state_dir", self.state_dir)
        cfg.setdefault("log", {"level": "debug" if os.environ.get(
            "LAB_DEBUG") else "info"})
        with open(self.config_path, "w") as f:
            f.write(_yaml(cfg) + "\n")

    def env(self):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        return env

    def url(self, service):
        """hlcore url SERVICE: (password, keyhash)."""
        rc, out, err = self.lab.run(self.ns, [self.lab.hlcore_bin, "-c",
                                              self.config_path, "url",
                                              service],
                                    timeout=self.lab.slow(30),
                                    env=self.env())
        m = re.search(r"http://([a-z2-7]*)-([0-9a-f]{40})\.localhost", out)
        check(rc == 0 and m, "hlcore url %s" % service, "a URL",
              out + err)
        return m.group(1), m.group(2)

    @property
    def logname(self):
        return "hlcore-%s-%d" % (self.name, self.starts)

    def start(self, wait_regex=None, timeout=20):
        self.starts += 1
        self.proc = self.lab.spawn(self.ns, [self.lab.hlcore_bin, "-c",
                                             self.config_path],
                                   self.logname, env=self.env(),
                                   cwd=self.dir)
        if wait_regex:
            self.wait_log(wait_regex, timeout)
        return self

    def log(self):
        return self.lab.log_of(self.logname)

    def wait_log(self, regex, timeout=20):
        def seen():
            if self.proc.poll() is not None:
                raise Fail("hlcore %s exited (%s) before logging /%s/; "
                           "log:\n%s" % (self.name, self.proc.returncode,
                                          regex, short(self.log(), 4000)))
            return re.search(regex, self.log(), re.M)
        try:
            return self.lab.wait_for(seen, self.lab.slow(timeout),
                                     "hlcore %s logging /%s/" %
                                     (self.name, regex))
        except Fail as e:
            raise Fail("%s; log:\n%s" % (e, short(self.log()[-4000:], 4000)))

    def stop_ok(self):
        """SIGTERM; the exit must be 0 with no sanitizer report."""
        rc = self.lab.stop(self.proc, timeout=self.lab.slow(20))
        log = self.log()
        san = re.search(r"(ERROR: (Address|Leak)Sanitizer.*|runtime error:.*)",
                        log)
        check(rc == 0 and san is None, "hlcore %s after SIGTERM" % self.name,
              "exit status 0 and no sanitizer report",
              "exit status %s; end of log:\n%s" % (rc, log[-4000:]))

    def peers_cache(self):
        try:
            with open(os.path.join(self.state_dir, "peers.cache")) as f:
                return f.read()
        except OSError:
            return ""

    def fetch(self, host, path="/token.txt", port=7009, timeout=20):
        """GET through this node's proxy (in its namespace) with the given
        Host header: (http status, body, seconds)."""
        rc, out, err = self.lab.run(
            self.ns, ["curl", "-sS", "-m", str(timeout), "-o", "-", "-w",
                      "\n@@%{http_code} %{time_total}", "-H",
                      "Host: %s" % host,
                      "http://127.0.0.1:%d%s" % (port, path)],
            timeout=timeout + 10)
        m = re.search(r"\n@@(\d{3}) ([0-9.]+)$", out)
        if m is None:
            raise Fail("curl in %s: exit %d: %s %s" % (self.ns, rc, out,
                                                      err))
        return int(m.group(1)), out[:m.start()], float(m.group(2))
