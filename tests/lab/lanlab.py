"""lanlab: one LAN segment in network namespaces, for the discovery-lan
tests and bench (Python 3 stdlib only, root only).

    lab = lanlab.Lab(["a", "b", "c"])   # namespaces hl<pid>-<rand>-{br,a,b,c}
    lab.ip("a")                          # "10.77.0.1"
    p = lab.spawn("a", [hlcore, "-c", cfg], log="a.log")
    rc, out, err = lab.run("b", ["curl", ...], timeout=10)
    lab.destroy()                        # kills every process, deletes it all

A bridge in a namespace of its own joins one veth per host; each host has
eth0 = 10.77.0.<n>/24, lo up and a route for 224.0.0.0/4 on eth0
(docs/lab.md).
Nothing is ever connected to the root namespace or a host interface: the
veths are created inside the lab's namespaces. destroy() runs at exit, on
SIGTERM/SIGHUP/SIGINT/SIGALRM (before any handler that was there) and may
be called any number of times.
"""

import atexit
import os
import random
import signal
import subprocess
import time

SUBNET = "10.77.0."


def _sh(args, check=True, timeout=20):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), p.returncode,
                                                p.stderr.decode().strip()))
    return p


def usable():
    """None when a lab can be built here, else why not (for a skip)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    try:
        _sh(["ip", "netns", "list"])
    except (OSError, RuntimeError) as e:
        return "no usable ip netns: %s" % e
    return None


class Lab:
    def __init__(self, hosts, subnet=SUBNET):
        self.tag = "hl%d-%04x" % (os.getpid(), random.getrandbits(16))
        self.hosts = list(hosts)
        self.subnet = subnet
        self.procs = []
        self.namespaces = []
        self._destroyed = False
        atexit.register(self.destroy)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT,
                    signal.SIGALRM):
            self._wrap_signal(sig)
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise

    def _wrap_signal(self, sig):
        prev = signal.getsignal(sig)

        def handler(signum, frame):
            self.destroy()
            if callable(prev):
                prev(signum, frame)
            elif prev == signal.SIG_DFL and signum != signal.SIGALRM:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
        signal.signal(sig, handler)

    def ns(self, host):
        return "%s-%s" % (self.tag, host)

    def ip(self, host):
        return "%s%d" % (self.subnet, self.hosts.index(host) + 1)

    def _add_ns(self, name):
        _sh(["ip", "netns", "add", name])
        self.namespaces.append(name)
        _sh(["ip", "-n", name, "link", "set", "lo", "up"])

    def _build(self):
        br = self.ns("br")
        self._add_ns(br)
        # Snooping off: the bridge floods the group to every port, as a
        # small switch without an IGMP querier does.
        _sh(["ip", "-n", br, "link", "add", "br0", "type", "bridge",
             "mcast_snooping", "0"])
        _sh(["ip", "-n", br, "link", "set", "br0", "up"])
        for i, h in enumerate(self.hosts):
            ns = self.ns(h)
            self._add_ns(ns)
            port = "p%d" % i
            _sh(["ip", "-n", br, "link", "add", port, "type", "veth",
                 "peer", "name", "eth0", "netns", ns])
            _sh(["ip", "-n", br, "link", "set", port, "master", "br0"])
            _sh(["ip", "-n", br, "link", "set", port, "up"])
            _sh(["ip", "-n", ns, "addr", "add", self.ip(h) + "/24", "dev",
                 "eth0"])
            _sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            _sh(["ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev",
                 "eth0"])

    def exec_args(self, host, args):
        return ["ip", "netns", "exec", self.ns(host)] + list(args)

    def spawn(self, host, args, log=None, env=None, stdin=None,
              stdout=None):
        """Start args in host's namespace (host "br": the bridge's);
        stdout and stderr go to the file log (appended) unless stdout is
        given. Killed by destroy()."""
        f = open(log, "ab") if log else subprocess.DEVNULL
        p = subprocess.Popen(self.exec_args(host, args),
                             stdin=stdin or subprocess.DEVNULL,
                             stdout=stdout or f, stderr=f, env=env)
        if log:
            f.close()
        self.procs.append(p)
        return p

    def run(self, host, args, timeout=30, env=None, input=None):
        """Run to completion in host's namespace, bounded:
        (rc, stdout, stderr) as text; rc None when it timed out."""
        p = subprocess.Popen(self.exec_args(host, args),
                             stdin=subprocess.PIPE if input else
                             subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env)
        self.procs.append(p)
        try:
            out, err = p.communicate(input=input, timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=10)
            rc = None
        return rc, out.decode("utf-8", "replace"), \
            err.decode("utf-8", "replace")

    def stop(self, p, timeout=20):
        """SIGTERM and wait (bounded); the exit status, None if killed."""
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            return None

    def destroy(self):
        if self._destroyed:
            return
        self._destroyed = True
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except Exception:
                pass
        for ns in reversed(self.namespaces):
            for _ in range(3):
                r = subprocess.run(["ip", "netns", "del", ns],
                                   stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                if r.returncode == 0:
                    break
                time.sleep(0.2)
        self.namespaces = []
