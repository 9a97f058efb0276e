#!/usr/bin/env python3
"""The hub plugin in a real hlcore, against hubpeer.py, a client side
written in Python from docs/protocol.md ("Hub messages"), not from the C
code.

A service registers its key (the test vector's ECDSA key, and a fresh RSA
one as Python Hardline makes); a client looks it up with its candidates
and gets the service's, while the service gets the client's (INTRO); a
replayed registration, a forged one (signed by another key; another
certificate than the keyhash's) and one signed for another hub are
refused with their error codes; keep-alives work with the token and are
refused without it; a silent registration is forgotten after `lifetime`;
a restarted hub asks for a new registration; STUN binding answers carry
the sender's address; malformed, oversized and foreign datagrams are
dropped and counted, a flood from one address is rate-limited, and so
are INTROs to one service; full tables (registrations, pending nonces)
refuse what does not fit; a hub on [::] serves IPv4 and IPv6; the
counters come through the loopback status request and the log; bad
configs are refused by `hlcore check`.
"""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
import hubpeer  # noqa: E402
from hltest import check, check_eq, check_in  # noqa: E402
from hubpeer import Peer, Key  # noqa: E402

t = hltest.Test("hub")
try:
    import cryptography  # noqa: F401
except ImportError:
    hltest.skip("needs python3-cryptography")

VEC = os.path.join(t.source_dir, "tests", "vectors")
LIFETIME = 10
hub = t.node("hub")
S = {}


def udp_port():
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in hltest._given_ports:
            hltest._given_ports.add(port)
            return port
    raise hltest.Fail("no free UDP port")


def start_hub(rate=200, burst=400, **more):
    S.setdefault("port", udp_port())
    conf = {"listen": "127.0.0.1:%d" % S["port"], "lifetime": LIFETIME,
            "refresh": 5, "rate": rate, "burst": burst}
    conf.update(more)
    hub.configure({"proxy": {"listen": "off"}, "plugins": {"hub": conf}})
    hub.launch(r"rendezvous hub on UDP 127\.0\.0\.1:%d" % S["port"])


def peer(**kw):
    p = Peer(("127.0.0.1", S["port"]), timeout=t.slow(1.0), **kw)
    S.setdefault("peers", []).append(p)
    return p


def status():
    return peer().status()


def case_start():
    """start a hub"""
    start_hub()
    S["key"] = Key.load(os.path.join(VEC, "keyhash.cert"),
                        os.path.join(VEC, "keyhash.cert.private"))
    check_eq(S["key"].keyhash, "4edde683894d49d6c60b396ebe3c05deb97d4ab3",
             "the vector's keyhash in Python")


def case_vectors():
    """the protocol document's vectors in Python

    hubpeer's codec gives docs/protocol.md's vector bytes, and parses
    the REGISTER vector; the document holds them."""
    doc = hltest.read_text(os.path.join(t.source_dir, "docs",
                                        "protocol.md"))
    kh = bytes.fromhex(S["key"].keyhash)
    tx = bytes(range(8))
    m = hubpeer.Message(hubpeer.LOOKUP, tx, [
        (hubpeer.A_KEYHASH, kh),
        hubpeer.cand_attr(hubpeer.HOST, "10.1.0.2", 5000),
        hubpeer.cand_attr(hubpeer.HOST, "2001:db8::1", 7008)])
    check_in(m.encode().hex(), doc.replace("\n    ", ""),
             "the lookup vector in docs/protocol.md")
    reg = hubpeer.Message.decode(bytes.fromhex(hltest.read_text(
        os.path.join(VEC, "hub-register.hex")).strip()))
    check_eq(reg.type, hubpeer.REGISTER, "the REGISTER vector's type")
    check_eq(hubpeer.keyhash_of_der(reg.get(hubpeer.A_CERT)),
             S["key"].keyhash, "the REGISTER vector's certificate")
    check_eq(hubpeer.signed_data(reg.get(hubpeer.A_NONCE), reg.keyhash,
                                 "11.0.0.1:7777").hex(),
             "686172646c696e652d6875622d72656769737465722d763100"
             "101112131415161718191a1b1c1d1e1f" + S["key"].keyhash +
             "0d31312e302e302e313a37373737", "the signed data")


def case_stun():
    """STUN binding answer"""
    p = peer()
    got = p.stun()
    check_eq(got, ("127.0.0.1", p.port), "XOR-MAPPED-ADDRESS")


def case_register():
    """register with proof of the key"""
    svc = S["svc"] = peer()
    cands = [(hubpeer.HOST, "10.1.0.2", 5000), (hubpeer.SRFLX, "11.0.0.2",
                                                 5000)]
    m = svc.register(S["key"], cands=cands)
    check_eq(m.type, hubpeer.REGISTERED, "answer to a registration (error "
             "%s)" % m.error)
    check_eq(m.keyhash, S["key"].keyhash, "registered keyhash")
    check_eq(m.observed, ("127.0.0.1", svc.port), "observed address")
    check_eq((m.u16(hubpeer.A_LIFETIME), m.u16(hubpeer.A_REFRESH)),
             (LIFETIME, 5), "lifetime and refresh")
    check_eq(len(m.get(hubpeer.A_TOKEN)), 16, "token length")
    S["reg"] = m
    hub.expect_log(r"registered %s from 127\.0\.0\.1:%d \(2 candidates\)" %
                   (S["key"].keyhash, svc.port))


def case_lookup():
    """lookup: candidates both ways, INTRO"""
    cli = peer()
    mine = [(hubpeer.HOST, "10.2.0.2", 6000),
            (hubpeer.HOST, "2001:db8::2", 6000)]
    a = cli.lookup(S["key"].keyhash, cands=mine)
    check(a is not None and a.type == hubpeer.LOOKUP_ANSWER,
          "lookup answer", "LOOKUP_ANSWER", a and (a.type, a.error))
    check_eq(a.observed, ("127.0.0.1", S["svc"].port),
             "the service's observed address")
    check_eq(a.candidates, [(hubpeer.HOST, "10.1.0.2", 5000),
                            (hubpeer.SRFLX, "11.0.0.2", 5000)],
             "the service's candidates")
    intro = S["svc"].wait_message(hubpeer.INTRO, t.slow(3))
    check(intro is not None, "INTRO at the service", "one", None)
    check_eq(intro.keyhash, S["key"].keyhash, "INTRO keyhash")
    check_eq(intro.observed, ("127.0.0.1", cli.port),
             "the client's observed address in INTRO")
    check_eq(intro.candidates, mine, "the client's candidates in INTRO")
    check_eq(intro.txid, a.txid, "INTRO carries the lookup's txid")


def case_amplification():
    """no amplification: answers at most 3x the lookup

    An answer is at most three times the lookup: eight IPv6
    candidates only come back to a padded lookup."""
    key = Key.new()
    eight = [(hubpeer.HOST, "2001:db8::%d" % i, 7000 + i)
             for i in range(1, 9)]
    check_eq(peer().register(key, cands=eight).type, hubpeer.REGISTERED,
             "registration with 8 candidates")
    cli = peer()
    msg = hubpeer.Message(hubpeer.LOOKUP, attrs=[
        (hubpeer.A_KEYHASH, bytes.fromhex(key.keyhash))])
    cli.send(msg.encode())
    data = cli.recv(t.slow(2))
    check(data is not None and len(data) <= 3 * len(msg.encode()),
          "answer to a %d-byte lookup" % len(msg.encode()),
          "at most %d bytes" % (3 * len(msg.encode())),
          data and len(data))
    got = hubpeer.Message.decode(data).candidates
    check_eq(got, eight[:len(got)], "the first candidates, in order")
    check(len(got) < 8, "candidates in the short answer", "fewer than 8",
          len(got))
    check_eq(cli.lookup(key.keyhash).candidates, eight,
             "all 8 to a lookup padded to 80 bytes")


def case_not_found():
    """lookup of an unknown keyhash"""
    a = peer().lookup("00" * 20)
    check(a is not None and a.type == hubpeer.ERROR and
          a.error == hubpeer.E_NOT_FOUND, "lookup of an unknown keyhash",
          "ERROR not-found", a and (a.type, a.error))


def case_replay():
    """replayed registration refused

    The very REGISTER datagram again, from the same socket: its nonce
    is used up."""
    before = status()
    svc = S["svc"]
    m = svc.ask(S["reg"].sent, (hubpeer.REGISTERED,))
    check(m is not None and m.type == hubpeer.ERROR and
          m.error == hubpeer.E_BAD_NONCE, "a replayed registration",
          "ERROR bad-nonce", m and (m.type, m.error))
    # A nonce made for another keyhash, or asked for from another
    # address, is no good either.
    other = peer()
    nonce = other.challenge(S["key"].keyhash)
    m = svc.ask(svc.register_message(S["key"], nonce), (hubpeer.REGISTERED,))
    check(m is not None and m.error == hubpeer.E_BAD_NONCE,
          "a nonce given to another address", "ERROR bad-nonce",
          m and (m.type, m.error))
    m = svc.ask(svc.register_message(S["key"], os.urandom(16)),
                (hubpeer.REGISTERED,))
    check(m is not None and m.error == hubpeer.E_BAD_NONCE,
          "a made-up nonce", "ERROR bad-nonce", m and (m.type, m.error))
    after = status()
    check(after["replayed"] - before["replayed"] >= 3, "replayed counter",
          "+3", (before["replayed"], after["replayed"]))


def case_forged():
    """forged registrations refused"""
    before = status()
    mallory = Key.new()
    p = peer()
    # The vector's certificate, signed by another key.
    m = p.register(S["key"], sign_with=mallory)
    check(m.type == hubpeer.ERROR and m.error == hubpeer.E_BAD_PROOF,
          "registration signed by the wrong key", "ERROR bad-proof",
          (m.type, m.error))
    # Mallory's own certificate and key, for the vector's keyhash.
    m = p.register(mallory, keyhash=S["key"].keyhash)
    check(m.type == hubpeer.ERROR and m.error == hubpeer.E_BAD_PROOF,
          "another certificate for the keyhash", "ERROR bad-proof",
          (m.type, m.error))
    # Signed for another hub.
    m = p.register(S["key"], hub_addr="192.0.2.1:7777")
    check(m.type == hubpeer.ERROR and m.error == hubpeer.E_BAD_HUB,
          "registration signed for another hub", "ERROR bad-hub",
          (m.type, m.error))
    after = status()
    check(after["forged"] - before["forged"] == 2, "forged counter", "+2",
          (before["forged"], after["forged"]))
    check(after["wrong_hub"] - before["wrong_hub"] == 1, "wrong_hub counter",
          "+1", (before["wrong_hub"], after["wrong_hub"]))
    # The genuine registration is untouched.
    a = peer().lookup(S["key"].keyhash)
    check_eq(a.observed, ("127.0.0.1", S["svc"].port),
             "the genuine registration after the forgeries")
    hub.expect_log(r"refused a registration of %s from \S+: bad signature" %
                   S["key"].keyhash)


def case_rsa():
    """an RSA key registers

    An RSA 2048 certificate (Python Hardline's kind) registers too."""
    key = Key.new("rsa")
    p = peer()
    m = p.register(key)
    check_eq((m.type, m.error), (hubpeer.REGISTERED, None),
             "an RSA registration")


def case_keepalive():
    """keep-alive with and without the token"""
    svc = S["svc"]
    kh = S["key"].keyhash
    a = svc.keepalive(kh, cands=[(hubpeer.HOST, "10.1.0.2", 5001)])
    check(a is not None and a.type == hubpeer.KEEPALIVE_ACK,
          "keep-alive", "KEEPALIVE_ACK", a and (a.type, a.error))
    check_eq(a.observed, ("127.0.0.1", svc.port), "observed in the ack")
    got = peer().lookup(kh).candidates
    check_eq(got, [(hubpeer.HOST, "10.1.0.2", 5001)],
             "candidates replaced by the keep-alive")
    before = status()["unauthenticated"]
    a = svc.keepalive(kh, token=os.urandom(16))
    check(a is not None and a.type == hubpeer.ERROR and
          a.error == hubpeer.E_UNKNOWN, "keep-alive with a wrong token",
          "ERROR unknown", a and (a.type, a.error))
    a = peer().keepalive(kh, token=svc.tokens[kh])
    check(a is not None and a.error == hubpeer.E_UNKNOWN,
          "the right token from another address", "ERROR unknown",
          a and (a.type, a.error))
    check_eq(status()["unauthenticated"] - before, 2,
             "unauthenticated counter")


def case_forgotten():
    """silent nodes forgotten, kept-alive ones kept

    A registration kept alive stays; a silent one is forgotten after
    `lifetime` (the sweep runs every 5 s)."""
    quiet, alive = Key.new(), Key.new()
    pq, pa = peer(), peer()
    check_eq(pq.register(quiet).type, hubpeer.REGISTERED, "quiet registers")
    check_eq(pa.register(alive).type, hubpeer.REGISTERED, "alive registers")
    deadline = time.monotonic() + LIFETIME + 5 + t.slow(4)
    gone = None
    while time.monotonic() < deadline:
        a = pa.keepalive(alive.keyhash)
        check(a is not None and a.type == hubpeer.KEEPALIVE_ACK,
              "keep-alive of the live one", "ACK", a and (a.type, a.error))
        r = peer().lookup(quiet.keyhash)
        if r is not None and r.type == hubpeer.ERROR:
            gone = time.monotonic()
            break
        time.sleep(2)
    check(gone is not None, "the silent registration", "forgotten within "
          "lifetime + sweep", "still there")
    hub.expect_log(r"forgot %s: silent for %d s" % (quiet.keyhash, LIFETIME))
    check_eq(peer().lookup(alive.keyhash).type, hubpeer.LOOKUP_ANSWER,
             "the registration kept alive")
    check(status()["expired"] >= 1, "expired counter", ">= 1", status())


def case_bad_input():
    """bad input dropped and counted"""
    before = status()
    p = peer()
    bad = [b"\x0b\x01\x07\x00" + b"\x00" * 8 + b"\x01\x00\x14" + b"\x00" * 5,
           b"\x0b\x02\x01\x00" + b"\x00" * 8,
           b"\x0b\x01\x01\x00" + b"\x00" * 8 + b"\x0d\x00\x00",
           b"\x0b" + os.urandom(40)]
    for b in bad:
        p.send(b)
    p.send(b"\x0b\x01\x0a\x00" + b"\x00" * 2000)   # oversized
    p.send(b"\xc0" + os.urandom(30))               # QUIC-looking: not ours
    p.send(b"\x00\x01\x00\x00" + os.urandom(16))   # STUN without a cookie
    # A hub's own answer types, sent to the hub.
    p.send(hubpeer.Message(hubpeer.INTRO, attrs=[
        (hubpeer.A_KEYHASH, b"\x00" * 20),
        (hubpeer.A_OBSERVED, hubpeer.addr_bytes("1.2.3.4", 5))]).encode())
    check_eq(p.stun(), ("127.0.0.1", p.port), "STUN after the garbage")

    def counted():
        s = status()
        return (s["malformed"] - before["malformed"] >= 4 and
                s["oversized"] - before["oversized"] >= 1 and
                s["not_ours"] - before["not_ours"] >= 1 and
                s["stun_dropped"] - before["stun_dropped"] >= 1 and
                s["unexpected"] - before["unexpected"] >= 1) and s
    s = t.wait_for(counted, t.slow(5), "the drops counted")
    print("     counters: %s" % s, flush=True)
    check(hub.running(), "hub after bad input", "running", "exited")


def case_restart():
    """hub restart: register again

    A restarted hub knows nobody: a keep-alive gets ERROR unknown and
    a new registration heals it."""
    hub.stop_ok()
    svc = S["svc"]
    port = S["port"]
    hub.launch(r"rendezvous hub on UDP 127\.0\.0\.1:%d" % port)
    a = svc.keepalive(S["key"].keyhash)
    check(a is not None and a.error == hubpeer.E_UNKNOWN,
          "keep-alive after a hub restart", "ERROR unknown",
          a and (a.type, a.error))
    check_eq(svc.register(S["key"]).type, hubpeer.REGISTERED,
             "registration again")
    check_eq(peer().lookup(S["key"].keyhash).observed,
             ("127.0.0.1", svc.port), "found after the new registration")


def case_intro_limit():
    """INTROs to one service rate-limited

    A burst of lookups for one service: at most 10 INTROs (then 5 a
    second) reach it; every lookup is still answered."""
    key = Key.new()
    svc = peer()
    check_eq(svc.register(key).type, hubpeer.REGISTERED, "registration")
    before = status()
    cli = peer()
    answered = sum(1 for _ in range(20)
                   if cli.lookup(key.keyhash).type == hubpeer.LOOKUP_ANSWER)
    check_eq(answered, 20, "lookups answered")
    intros = 0
    while svc.wait_message(hubpeer.INTRO, 0.3) is not None:
        intros += 1
    after = status()
    check(10 <= intros <= 13, "INTROs to the service", "10 and a few "
          "refilled", intros)
    check_eq(after["intros_limited"] - before["intros_limited"],
             20 - intros, "intros_limited counter")


def case_tables_full():
    """tables full: registrations, pending nonces

    A hub restarted with max_registrations 2 and max_pending 16: a
    third keyhash is refused (error full) while the two registered ones
    may register again; the 17th challenge pushes out the first nonce."""
    hub.stop_ok()
    start_hub(max_registrations=2, max_pending=16)
    keys = [Key.new() for _ in range(3)]
    p = peer()
    check_eq([p.register(k).type for k in keys[:2]],
             [hubpeer.REGISTERED] * 2, "two registrations")
    m = p.register(keys[2])
    check_eq((m.type, m.error), (hubpeer.ERROR, hubpeer.E_FULL),
             "a third keyhash")
    check_eq(p.register(keys[0]).type, hubpeer.REGISTERED,
             "a registered keyhash again, the table full")
    check_eq(status()["full"], 1, "full counter")
    first = p.challenge(keys[1].keyhash)
    for _ in range(16):
        p.challenge(keys[1].keyhash)
    m = p.ask(p.register_message(keys[1], first), (hubpeer.REGISTERED,))
    check_eq((m.type, m.error), (hubpeer.ERROR, hubpeer.E_BAD_NONCE),
             "the nonce pushed out by 16 newer ones")
    hub.stop_ok()
    start_hub()


def case_dual_stack():
    """dual stack [::]: IPv4 and IPv6 clients

    A hub on [::] serves IPv4 and IPv6: each is told its own address
    (IPv4 as IPv4, not ::ffff:), and a registration signed for either
    local address is ours."""
    n = t.node("hub6")
    port = udp_port()
    n.configure({"proxy": {"listen": "off"},
                 "plugins": {"hub": {"listen": "[::]:%d" % port}}})
    n.launch(r"rendezvous hub on UDP \[::\]:%d" % port)
    p4 = Peer(("127.0.0.1", port), timeout=t.slow(1.0))
    p6 = Peer(("::1", port), timeout=t.slow(1.0))
    try:
        check_eq(p4.stun(), ("127.0.0.1", p4.port), "STUN over IPv4")
        check_eq(p6.stun(), ("::1", p6.port), "STUN over IPv6")
        k4, k6 = Key.new(), Key.new()
        m = p4.register(k4)
        check_eq((m.type, m.observed), (hubpeer.REGISTERED,
                                        ("127.0.0.1", p4.port)),
                 "registration over IPv4 (error %s)" % m.error)
        m = p6.register(k6)
        check_eq((m.type, m.observed), (hubpeer.REGISTERED,
                                        ("::1", p6.port)),
                 "registration over IPv6, signed for [::1] (error %s)" %
                 m.error)
        a = p6.lookup(k4.keyhash)
        check_eq(a.observed, ("127.0.0.1", p4.port),
                 "an IPv4 service looked up over IPv6")
        intro = p4.wait_message(hubpeer.INTRO, t.slow(3))
        check(intro is not None and intro.observed == ("::1", p6.port),
              "INTRO to the IPv4 service", "the IPv6 client's address",
              intro and intro.observed)
    finally:
        p4.close()
        p6.close()
    n.stop_ok()


def case_rate_limit():
    """rate limit per address

    One address sending far beyond rate/burst gets dropped, and the
    drops are counted (a hub restarted with rate 20, burst 40)."""
    hub.stop_ok()
    start_hub(rate=20, burst=40)
    before = status()["rate_limited"]
    p = peer()
    for _ in range(300):
        req, _tid = hubpeer.stun_request()
        p.send(req)
        time.sleep(0.001)
    answers = 0
    p.sock.settimeout(t.slow(1.0))
    try:
        while True:
            p.sock.recvfrom(2048)
            answers += 1
    except socket.timeout:
        pass
    check(30 <= answers <= 120, "STUN answers to 300 requests in about "
          "0.5 s at rate 20, burst 40", "40 and a few more", answers)
    time.sleep(2.5)
    s = status()
    check(s["rate_limited"] - before >= 300 - answers - 10,
          "rate_limited counter", ">= the unanswered (%d)" %
          (300 - answers), s)


def case_status_loopback_only():
    # hubpeer.status() over loopback works (every case above used it);
    # the log has the counters at exit.
    """counters at exit, clean stop"""
    hub.stop_ok()
    check(re.search(r"counters at exit: \{\"registrations\":\d+",
                    hub.run_log()), "the counters in the log at exit",
          "a line", hub.run_log()[-2000:])


def case_check():
    """hlcore check of hub configs"""
    bad = {
        "no listen": {"hub": {}},
        "refresh over half the lifetime": {
            "hub": {"listen": "0.0.0.0:7777", "lifetime": 30,
                    "refresh": 20}},
        "a name, not an IP, to listen on": {
            "hub": {"listen": "hub.example.org:7777"}},
        "an unknown key": {"hub": {"listen": "0.0.0.0:7777", "colour": 1}},
        "addresses not host:port": {
            "hub": {"listen": "0.0.0.0:7777", "addresses": ["nope"]}},
    }
    words = {"no listen": "listen: expected",
             "refresh over half the lifetime": "at most half of lifetime",
             "a name, not an IP, to listen on": "an IP address and a port",
             "an unknown key": "colour",
             "addresses not host:port": "addresses: expected"}
    n = t.node("check")
    for name, plugins in bad.items():
        n.configure({"proxy": {"listen": "off"}, "plugins": plugins})
        rc, out, err = n.cmd("check")
        check(rc == 2, "hlcore check, %s" % name, "exit 2",
              "%d: %s" % (rc, out + err))
        check_in(words[name], out + err, "hlcore check, %s" % name)
    n.configure({"proxy": {"listen": "off"},
                 "plugins": {"hub": {"listen": "[::]:7777",
                                     "addresses": ["hub.example.org:7777"]}}})
    rc, out, err = n.cmd("check")
    check_eq(rc, 0, "hlcore check of a good hub config: %s" % (out + err))


t.cases(
    case_start, case_vectors, case_stun, case_register, case_lookup,
    case_amplification, case_not_found, case_replay, case_forged, case_rsa,
    case_keepalive, case_bad_input, case_forgotten, case_restart,
    case_intro_limit, case_tables_full, case_dual_stack, case_rate_limit,
    case_status_loopback_only, case_check)
t.finish()
