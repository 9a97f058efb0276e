#!/usr/bin/env python3
"""Open N keep-alive HTTP connections, PARALLEL at a time (64), send one
request on each, read the whole response (so a tunnel is set up behind
each one), then hold them all idle until stdin closes or says anything.

usage: idle_conns.py [--partial] [--deadline=S] HOST PORT N HOSTHEADER PATH [PARALLEL]

Prints one line on stdout once every connection has had its response:
"ready N (T s)". If some failed, it prints "failed K of N: REASONS" and
exits 1; with --partial it prints "held M of N (T s); failed K: REASONS"
instead and holds the M that were served. REASONS counts each reason:
"HTTP 502 (No path to the service): 17, connect: errno 111: 3" (in
brackets, the <title> of the error page). Connections still waiting when
the deadline (S seconds after the start, 120) passes count as "no
response by the deadline", those not yet opened as "not tried (deadline)".
Loopback only: HOST must be 127.0.0.1 or ::1.
"""
import re
import selectors
import socket
import sys
import time


def main():
    opts = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    partial = "--partial" in opts
    limit = 120.0
    for o in opts:
        if o.startswith("--deadline="):
            limit = float(o.split("=", 1)[1])
        elif o != "--partial":
            sys.exit(f"idle_conns.py: unknown option {o}")
    host, port, n, hosthdr, path = args[0:5]
    port, n = int(port), int(n)
    parallel = int(args[5]) if len(args) > 5 else 64
    if host not in ("127.0.0.1", "::1"):
        sys.exit("idle_conns.py: loopback only")
    req = (f"GET {path} HTTP/1.1\r\nHost: {hosthdr}\r\n"
           "Connection: keep-alive\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    held, failed, reasons = [], 0, {}
    started = 0
    t0 = time.monotonic()
    deadline = t0 + limit

    def start_one():
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        st = {"sock": s, "sent": False, "buf": b""}
        sel.register(s, selectors.EVENT_WRITE, st)

    def done(st, ok, why=None):
        nonlocal failed
        sel.unregister(st["sock"])
        if ok:
            held.append(st["sock"])
        else:
            failed += 1
            reasons[why] = reasons.get(why, 0) + 1
            st["sock"].close()

    while len(held) + failed < n:
        while started < n and started - len(held) - failed < parallel:
            try:
                start_one()
            except OSError as e:  # e.g. out of descriptors here
                failed += 1
                why = f"socket: {e.strerror}"
                reasons[why] = reasons.get(why, 0) + 1
            started += 1
        if time.monotonic() > deadline:
            break
        for key, ev in sel.select(timeout=1.0):
            st = key.data
            s = st["sock"]
            if not st["sent"]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    done(st, False, f"connect: errno {err}")
                    continue
                s.send(req)  # small: goes out whole
                st["sent"] = True
                sel.modify(s, selectors.EVENT_READ, st)
                continue
            try:
                chunk = s.recv(65536)
            except ConnectionError as e:
                done(st, False, type(e).__name__)
                continue
            if not chunk:
                done(st, False, "closed before a full response")
                continue
            st["buf"] += chunk
            b = st["buf"]
            end = b.find(b"\r\n\r\n")
            if end < 0:
                continue
            head = b[:end].decode("latin-1")
            status = head.split(" ", 2)[1] if " " in head else "?"
            clen = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    clen = int(v.strip())
            if len(b) - end - 4 < clen:
                continue
            if status != "200":  # hlcore's error pages say why in <title>
                title = re.search(rb"<title>([^<]{1,120})</title>", b)
                why = f" ({title.group(1).decode('latin-1')})" if title else ""
                done(st, False, f"HTTP {status}{why}")
            else:
                done(st, True)
    took = time.monotonic() - t0
    if len(held) < n:
        waiting = started - len(held) - failed
        if waiting:
            reasons["no response by the deadline"] = waiting
        if n - started:
            reasons["not tried (deadline)"] = n - started
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        why = ", ".join(f"{k}: {v}" for k, v in
                        sorted(reasons.items(), key=lambda kv: -kv[1]))
        if not partial:
            print(f"failed {n - len(held)} of {n}: {why}", flush=True)
            sys.exit(1)
        print(f"held {len(held)} of {n} ({took:.1f} s); "
              f"failed {n - len(held)}: {why}", flush=True)
    else:
        print(f"ready {len(held)} ({took:.1f} s)", flush=True)
    sys.stdin.read(1)
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
