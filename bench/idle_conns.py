#!/usr/bin/env python3
"""Open N keep-alive HTTP connections, send one request on each, read the
whole response (so a tunnel is set up behind each one), then hold them all
idle until stdin closes or says anything.

usage: idle_conns.py HOST PORT N HOSTHEADER PATH [PARALLEL]

Prints "ready N" on stdout once every connection has had its response
(or "failed K of N: reason" and exits 1). Loopback only: HOST must be
127.0.0.1 or ::1.
"""
import selectors
import socket
import sys
import time


def main():
    host, port, n, hosthdr, path = sys.argv[1:6]
    port, n = int(port), int(n)
    parallel = int(sys.argv[6]) if len(sys.argv) > 6 else 64
    if host not in ("127.0.0.1", "::1"):
        sys.exit("idle_conns.py: loopback only")
    req = (f"GET {path} HTTP/1.1\r\nHost: {hosthdr}\r\n"
           "Connection: keep-alive\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    held, failed, reasons = [], 0, {}
    started = 0
    deadline = time.monotonic() + 120

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
            start_one()
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
            if status != "200":
                done(st, False, f"HTTP {status}")
            else:
                done(st, True)
    if len(held) < n:
        missing = n - len(held) - failed
        if missing:
            reasons["timeout"] = missing
        print(f"failed {n - len(held)} of {n}: {reasons}", flush=True)
        sys.exit(1)
    print(f"ready {len(held)}", flush=True)
    sys.stdin.read(1)
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
