#!/usr/bin/env python3
"""punch_peer.py ROLE OUTDIR: the command test_punch.py gives `hlcore punch`
(the client's CMD, the service's punch: command). It takes the punched
socket (HL_PUNCH_FD) and exchanges datagrams with the other side over it:
"hello from ROLE" every 100 ms, each hello answered by "ack from ROLE";
done when the other side's hello and ack both came (then it answers a
second more), at most 10 s. It writes OUTDIR/ROLE-<pid>.json (the HL_PUNCH_*
environment, what came from where) and exits 0 when the exchange
completed, 3 when not."""
import json
import os
import socket
import sys
import time

role, outdir = sys.argv[1], sys.argv[2]
env = {k: v for k, v in os.environ.items() if k.startswith("HL_PUNCH_")}
fd = int(os.environ["HL_PUNCH_FD"])
s = socket.socket(fileno=fd)
peer = (os.environ["HL_PUNCH_PEER_ADDR"], int(os.environ["HL_PUNCH_PEER_PORT"]))
hello = ("hello from %s" % role).encode()
ack = ("ack from %s" % role).encode()
got, acked, other = [], False, 0
blocking = s.getblocking()
s.settimeout(0.1)
t0 = time.monotonic()
done_at = None
while time.monotonic() - t0 < 10:
    if done_at is not None and time.monotonic() - done_at > 1:
        break
    if not acked:
        s.sendto(hello, peer)
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    if data.startswith(b"hello from "):
        got.append([data.decode(), "%s:%d" % addr])
        s.sendto(ack, addr)
    elif data.startswith(b"ack from "):
        acked = True
    else:
        other += 1   # a late punch probe, say
    if got and acked and done_at is None:
        done_at = time.monotonic()
fds = {}
for x in os.listdir("/proc/self/fd"):
    try:
        fds[int(x)] = os.readlink("/proc/self/fd/" + x)
    except OSError:
        pass   # the listing's own descriptor, closed by now
with open(os.path.join(outdir, "%s-%d.json" % (role, os.getpid())), "w") as f:
    json.dump({"env": env, "got": got, "acked": acked, "other": other,
               "fd_was_blocking": blocking, "fds": fds}, f)
sys.exit(0 if got and acked else 3)
