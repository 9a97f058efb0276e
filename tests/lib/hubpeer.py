"""hubpeer: a rendezvous hub's client side in Python, written from
docs/protocol.md ("Hub messages") and not from the C code, so that the
tests check the hub against the document: the codec, the proof of the key
(the `cryptography` module, Debian's python3-cryptography), and a STUN
binding request (RFC 8489) with its XOR-MAPPED-ADDRESS.

    import hubpeer
    key = hubpeer.Key.load(cert_pem_path, key_pem_path)   # or Key.new()
    peer = hubpeer.Peer(("11.0.0.1", 7777))               # a UDP socket
    reg = peer.register(key)          # challenge, register: a Message
    ans = peer.lookup(keyhash_hex, cands=[(hubpeer.HOST, "10.2.0.2", 5000)])
    addr = peer.stun()                # ("11.0.0.2", 5000): the mapping

Every wait is bounded (a timeout per datagram, a few tries).
"""

import hashlib
import ipaddress
import os
import socket
import struct
import time

MARK = 0x0B
VERSION = 1
HEAD = 12
MAX = 1400

# message types
CHALLENGE_REQ, CHALLENGE, REGISTER, REGISTERED, KEEPALIVE, KEEPALIVE_ACK, \
    LOOKUP, LOOKUP_ANSWER, INTRO, STATUS_REQ, STATUS = range(1, 12)
ERROR = 15

# attribute types
A_KEYHASH, A_NONCE, A_TOKEN, A_CERT, A_SIGNATURE, A_HUB_ADDR, A_OBSERVED, \
    A_CANDIDATE, A_LIFETIME, A_REFRESH, A_ERROR, A_TEXT = range(1, 13)

# candidate kinds
HOST, SRFLX, MAPPED, RELAY = 1, 2, 3, 4

# error codes
E_NOT_FOUND, E_BAD_NONCE, E_BAD_PROOF, E_BAD_HUB, E_UNKNOWN, E_FULL = \
    range(1, 7)

SIGN_CONTEXT = b"hardline-hub-register-v1\x00"


class HubError(Exception):
    pass


def keyhash_of_der(der):
    """docs/protocol.md, "Identity": BLAKE2b-256 of the DER, first 20
    bytes, hex."""
    return hashlib.blake2b(der, digest_size=32).hexdigest()[:40]


# ---- addresses ----

def addr_bytes(ip, port):
    a = ipaddress.ip_address(ip)
    fam = 4 if a.version == 4 else 6
    return bytes([fam]) + struct.pack(">H", port) + a.packed


def addr_parse(v):
    if len(v) == 7 and v[0] == 4:
        ip = str(ipaddress.IPv4Address(v[3:7]))
    elif len(v) == 19 and v[0] == 6:
        ip = str(ipaddress.IPv6Address(v[3:19]))
    else:
        raise HubError("bad address attribute %r" % v)
    return ip, struct.unpack(">H", v[1:3])[0]


# ---- messages ----

class Message:
    """type, txid (8 bytes) and attrs: a list of (type, value bytes) in
    wire order; helpers read the common ones."""

    def __init__(self, mtype, txid=None, attrs=()):
        self.type = mtype
        self.txid = txid if txid is not None else os.urandom(8)
        self.attrs = list(attrs)

    def encode(self):
        out = bytes([MARK, VERSION, self.type, 0]) + self.txid
        for t, v in self.attrs:
            out += bytes([t]) + struct.pack(">H", len(v)) + v
        return out

    @classmethod
    def decode(cls, data):
        if len(data) < HEAD or len(data) > MAX or data[0] != MARK or \
                data[1] != VERSION or data[3] != 0:
            raise HubError("not a hub message: %r" % data[:16])
        m = cls(data[2], data[4:12])
        pos = HEAD
        while pos < len(data):
            if len(data) - pos < 3:
                raise HubError("attribute head cut short")
            t = data[pos]
            n = struct.unpack(">H", data[pos + 1:pos + 3])[0]
            v = data[pos + 3:pos + 3 + n]
            if len(v) != n:
                raise HubError("attribute runs past the end")
            m.attrs.append((t, v))
            pos += 3 + n
        return m

    def get(self, t):
        for a, v in self.attrs:
            if a == t:
                return v
        return None

    def all(self, t):
        return [v for a, v in self.attrs if a == t]

    @property
    def keyhash(self):
        v = self.get(A_KEYHASH)
        return v.hex() if v is not None else None

    @property
    def observed(self):
        v = self.get(A_OBSERVED)
        return addr_parse(v) if v is not None else None

    @property
    def candidates(self):
        return [(v[0],) + addr_parse(v[1:]) for v in self.all(A_CANDIDATE)]

    @property
    def error(self):
        v = self.get(A_ERROR)
        return struct.unpack(">H", v)[0] if v is not None else None

    def u16(self, t):
        v = self.get(t)
        return struct.unpack(">H", v)[0] if v is not None else None

    def __repr__(self):
        return "<hub message type %d, %d attributes>" % (self.type,
                                                         len(self.attrs))


def cand_attr(kind, ip, port):
    return (A_CANDIDATE, bytes([kind]) + addr_bytes(ip, port))


def signed_data(nonce, keyhash_hex, hub_addr):
    """The bytes a REGISTER's signature covers."""
    ha = hub_addr.encode()
    return SIGN_CONTEXT + nonce + bytes.fromhex(keyhash_hex) + \
        bytes([len(ha)]) + ha


# ---- keys ----

class Key:
    """A certificate (DER) and its private key (cryptography objects)."""

    def __init__(self, cert_der, private_key):
        self.cert_der = cert_der
        self.private_key = private_key
        self.keyhash = keyhash_of_der(cert_der)

    @classmethod
    def load(cls, cert_path, key_path):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        return cls(cert.public_bytes(serialization.Encoding.DER), key)

    @classmethod
    def new(cls, kind="ec"):
        """A fresh self-signed certificate: ECDSA P-256 (hlcore's kind)
        or RSA 2048 (Python Hardline's)."""
        import datetime
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import NameOID
        if kind == "rsa":
            key = rsa.generate_private_key(public_exponent=65537,
                                           key_size=2048)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             "hubpeer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name)
                .issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(days=30))
                .sign(key, hashes.SHA256()))
        return cls(cert.public_bytes(serialization.Encoding.DER), key)

    def sign(self, data):
        """ECDSA with SHA-256 (DER signature), RSA PKCS #1 v1.5 with
        SHA-256, or Ed25519, by the key's type."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, \
            rsa
        k = self.private_key
        if isinstance(k, ec.EllipticCurvePrivateKey):
            return k.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(k, rsa.RSAPrivateKey):
            return k.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return k.sign(data)


# ---- STUN (RFC 8489), by hand: a binding request and its answer ----

STUN_COOKIE = 0x2112A442


def stun_request():
    tid = os.urandom(12)
    return struct.pack(">HHI", 0x0001, 0, STUN_COOKIE) + tid, tid


def stun_mapped(data, tid):
    """The XOR-MAPPED-ADDRESS of a binding success response, (ip, port)."""
    if len(data) < 20:
        raise HubError("STUN answer too short")
    mtype, mlen, cookie = struct.unpack(">HHI", data[:8])
    if mtype != 0x0101 or cookie != STUN_COOKIE or data[8:20] != tid or \
            mlen + 20 != len(data):
        raise HubError("not a binding success for our request: %r" %
                       data[:20])
    pos = 20
    while pos + 4 <= len(data):
        t, n = struct.unpack(">HH", data[pos:pos + 4])
        v = data[pos + 4:pos + 4 + n]
        if t == 0x0020:
            port = struct.unpack(">H", v[2:4])[0] ^ (STUN_COOKIE >> 16)
            if v[1] == 1:
                ip = struct.unpack(">I", v[4:8])[0] ^ STUN_COOKIE
                return str(ipaddress.IPv4Address(ip)), port
            mask = struct.pack(">I", STUN_COOKIE) + tid
            ip = bytes(a ^ b for a, b in zip(v[4:20], mask))
            return str(ipaddress.IPv6Address(ip)), port
        pos += 4 + (n + 3) // 4 * 4
    raise HubError("no XOR-MAPPED-ADDRESS in the answer")


# ---- a peer ----

class Peer:
    """One UDP socket talking to one hub. hub: (ip, port); hub_addr: the
    "host:port" text signed in a REGISTER (default: the hub's ip:port).
    bind: a local (ip, port), default any."""

    def __init__(self, hub, hub_addr=None, bind=None, timeout=1.0,
                 tries=3):
        self.hub = hub
        v6 = ":" in hub[0]
        self.hub_addr = hub_addr or ("[%s]:%d" if v6 else "%s:%d") % hub
        self.sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET,
                                  socket.SOCK_DGRAM)
        self.sock.bind(bind or (("::", 0) if v6 else ("0.0.0.0", 0)))
        self.timeout = timeout
        self.tries = tries
        self.inbox = []   # hub messages that were not the awaited answer
        self.tokens = {}  # keyhash -> token

    def close(self):
        self.sock.close()

    @property
    def port(self):
        return self.sock.getsockname()[1]

    def send(self, data, to=None):
        self.sock.sendto(data, to or self.hub)

    def recv(self, timeout=None):
        """One datagram from the hub, or None after timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, src = self.sock.recvfrom(4096)
            except socket.timeout:
                return None
            if src[0] == self.hub[0] and src[1] == self.hub[1]:
                return data

    def ask(self, msg, want=None):
        """Send msg, wait for the answer with its txid (another hub
        message goes to inbox); retried `tries` times. The answer, or
        None when none came."""
        for _ in range(self.tries):
            self.send(msg.encode())
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                data = self.recv(max(0.01, deadline - time.monotonic()))
                if data is None:
                    break
                if not data or data[0] != MARK:
                    continue
                m = Message.decode(data)
                if m.txid == msg.txid and (want is None or
                                           m.type in want + (ERROR,)):
                    return m
                self.inbox.append(m)
        return None

    def wait_message(self, mtype, timeout=3.0):
        """A hub message of mtype from the inbox or the socket, or None."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.inbox:
                if m.type == mtype:
                    self.inbox.remove(m)
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self.recv(left)
            if data and data[0] == MARK:
                self.inbox.append(Message.decode(data))

    def challenge(self, keyhash):
        m = self.ask(Message(CHALLENGE_REQ,
                             attrs=[(A_KEYHASH, bytes.fromhex(keyhash))]),
                     (CHALLENGE,))
        if m is None or m.type != CHALLENGE:
            raise HubError("no challenge for %s: %r" % (keyhash, m))
        return m.get(A_NONCE)

    def register_message(self, key, nonce, cands=(), hub_addr=None,
                         sign_with=None, keyhash=None):
        """A REGISTER for key (its certificate), signed by sign_with (a
        Key; default key itself) over the nonce, the keyhash and
        hub_addr."""
        kh = keyhash or key.keyhash
        ha = hub_addr or self.hub_addr
        sig = (sign_with or key).sign(signed_data(nonce, kh, ha))
        attrs = [(A_KEYHASH, bytes.fromhex(kh)), (A_NONCE, nonce),
                 (A_CERT, key.cert_der), (A_SIGNATURE, sig),
                 (A_HUB_ADDR, ha.encode())]
        attrs += [cand_attr(*c) for c in cands]
        return Message(REGISTER, attrs=attrs)

    def register(self, key, cands=(), **kw):
        """Challenge, then register: the answer (REGISTERED or ERROR)."""
        nonce = self.challenge(kw.get("keyhash") or key.keyhash)
        msg = self.register_message(key, nonce, cands, **kw)
        m = self.ask(msg, (REGISTERED,))
        if m is None:
            raise HubError("no answer to a registration")
        if m.type == REGISTERED:
            self.tokens[m.keyhash] = m.get(A_TOKEN)
        m.sent = msg
        return m

    def keepalive(self, keyhash, token=None, cands=()):
        attrs = [(A_KEYHASH, bytes.fromhex(keyhash)),
                 (A_TOKEN, token or self.tokens[keyhash])]
        attrs += [cand_attr(*c) for c in cands]
        return self.ask(Message(KEEPALIVE, attrs=attrs), (KEEPALIVE_ACK,))

    def lookup(self, keyhash, cands=(), pad=True):
        """A LOOKUP, padded (an attribute 0x80) to 80 bytes so that the
        hub's answer may hold all 8 candidates (it answers at most three
        times what it was sent)."""
        attrs = [(A_KEYHASH, bytes.fromhex(keyhash))]
        attrs += [cand_attr(*c) for c in cands]
        size = len(Message(LOOKUP, attrs=attrs).encode())
        if pad and size < 80:
            attrs.append((0x80, bytes(max(0, 80 - size - 3))))
        return self.ask(Message(LOOKUP, attrs=attrs), (LOOKUP_ANSWER,))

    def status(self):
        """The hub's counters (a dict); only asked over loopback."""
        import json
        m = self.ask(Message(STATUS_REQ), (STATUS,))
        if m is None or m.type != STATUS:
            raise HubError("no status answer: %r" % m)
        return json.loads(m.get(A_TEXT).decode())

    def stun(self, to=None):
        """A STUN binding request to the hub (or to `to`): the mapped
        (ip, port) it saw, or None without an answer."""
        for _ in range(self.tries):
            req, tid = stun_request()
            self.send(req, to)
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data, src = self.sock.recvfrom(4096)
                except socket.timeout:
                    break
                if data[:1] in (b"\x01",) and data[8:20] == tid:
                    return stun_mapped(data, tid)
        return None
