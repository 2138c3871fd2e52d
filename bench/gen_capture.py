"""Generate a large, deterministic pcap of みどり市's traffic (topologies/alpha-city.yaml) for benchmarks.

    python bench/gen_capture.py /tmp/alpha-1m.pcap                   # 1,000,000 packets
    python bench/gen_capture.py /tmp/alpha-4m.pcap --packets 4000000

Classic pcap, little-endian, microsecond timestamps, Ethernet link type. Built with numpy on whole blocks of
packets (no scapy, no Python code per packet except the few that carry protocol bytes), so 1M packets take a
few seconds. Same seed and packet count: byte-identical file.

What is in it (addresses from the topology; hosts beyond the named ones are drawn from each segment):

* TCP sessions -- SYN, SYN-ACK, ACK, data both ways with consistent sequence/ack numbers, FIN, FIN, ACK --
  inside a segment (LG PCs to LG servers on 445/443/80/389/88/1433, My Number PCs to their servers) and across
  segments the topology allows (LG to LGWAN-ASP, the 中間サーバー exception, the virtual browser to the
  security cloud proxy, the proxy to the Internet, the mail relays).
* RDP from LG PCs to the virtual-browser server vb1 on tcp/3389, opening with a real X.224 Connection
  Request / Confirm (HYBRID selected), then a TLS ClientHello / ServerHello, then screen data.
* SMTP sessions (banner, EHLO, MAIL, RCPT, DATA, a text/plain message, QUIT), among them the mail
  sanitizer's deliveries to the LG mail server (the inspected leg of the mail-text channel).
* HTTP downloads of sanitized CSV files from the CDR host cdr1 by LG PCs on tcp/443 (the inspected leg of the
  file-sanitization channel), with a Content-Length that matches the body.
* UDP DNS queries and answers (real DNS messages), some over IPv6 in LG's fd00:20::/48; some IPv6 TCP too.
* A few sessions tagged with their segment's VLAN (802.1Q), and a handful of deliberate violations (LG PC
  straight to the Internet, a My Number PC to an LG file server, a TLS tunnel on the RDP port) so the
  report has findings.

Payload bytes other than the protocol openings are ASCII CSV-like text. IPv4 header checksums are correct;
TCP/UDP checksums are left 0 (tshark and segverify do not verify them by default).

The number of flows does not depend on the packet count: the same sessions (``--sessions`` TCP sessions and
``--dns`` DNS exchanges) are generated for every size, and a larger file makes the sessions longer. That
is what lets a benchmark show that memory follows flows, not packets.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time

import numpy as np

T0_US = 1_711_929_600 * 1_000_000  # 2024-04-01 09:00 JST
SNAPLEN = 262_144
LINKTYPE_ETHERNET = 1
CHUNK = 1 << 17  # packets written per block

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10

RDP_REQUEST = bytes.fromhex("030000130ee000000000000100080003000000")
RDP_CONFIRM = bytes.fromhex("030000130ed000001234000200080002000000")  # selects HYBRID: TLS follows

# --------------------------------------------------------------------------------------------- addresses


def v4(s: str) -> int:
    a, b, c, d = (int(x) for x in s.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def v6(s: str) -> tuple[int, int]:
    import ipaddress

    x = int(ipaddress.IPv6Address(s))
    return x >> 64, x & 0xFFFF_FFFF_FFFF_FFFF


LG_PCS = [v4(f"10.20.{10 + i // 240}.{11 + i % 240}") for i in range(600)]  # lg-pc001 = 10.20.10.11, ...
LG_PCS6 = [v6(f"fd00:20:0:10::{11 + i:x}") for i in range(40)]  # dual-stack PCs (lg-pc001 first)
LG_SERVERS = {  # address: ports
    v4("10.20.1.10"): [445, 443],  # AD (SMB for policies, web enrolment)
    v4("10.20.1.40"): [445],  # file server
    v4("10.20.1.50"): [443, 80],  # groupware
    v4("10.20.1.60"): [1433, 443],  # finance
    v4("10.20.1.70"): [443, 445],  # documents
}
LG_SERVERS6 = [v6("fd00:20:0:1::40"), v6("fd00:20:0:1::50")]
LG_DNS, LG_DNS6 = v4("10.20.1.53"), v6("fd00:20:0:1::53")
LG_MAIL, MAIL_SAN_LG, MAIL_SAN_IN = v4("10.20.1.25"), v4("10.20.1.30"), v4("10.30.1.30")
MN_PCS = [v4(f"10.10.20.{11 + i}") for i in range(80)]
MN_SERVERS = {v4("10.10.0.20"): [443, 1521], v4("10.10.0.21"): [443, 1521], v4("10.10.0.22"): [445, 8443]}
MN_GW, MN_DNS = v4("10.10.0.5"), v4("10.10.0.53")
CHUKAN = v4("172.20.1.10")
ASP = [v4(f"172.16.10.{10 + i}") for i in range(12)]
LGWAN_MAIL, LGWAN_DNS = v4("172.20.2.25"), v4("172.16.0.53")
VB1, INET_MAIL = v4("10.30.0.10"), v4("10.30.1.25")
INET_HOSTS = [VB1, INET_MAIL, v4("10.30.0.11"), v4("10.30.0.12")]
CDR1 = v4("10.40.0.10")
SC_PROXY, SC_MAIL, SC_DNS = v4("100.64.1.10"), v4("100.64.1.25"), v4("100.64.1.53")
PUBLIC_WEB = [v4(f"203.0.113.{i}") for i in range(1, 120)] + [v4(f"198.51.100.{i}") for i in range(1, 120)]
PUBLIC_MAIL = [v4(f"198.51.100.{i}") for i in range(200, 230)]
PUBLIC_DNS = [v4(f"192.0.2.{i}") for i in range(1, 30)]

# --------------------------------------------------------------------------------------------- session kinds
# name, share of TCP sessions, mean middle packets (relative), P(data packet server->client),
# P(middle packet is a pure ACK), size profile client, size profile server
# Size profiles: 0 bulk, 1 small, 2 mixed, 3 request-like.
KINDS = [
    ("lg-intra", 0.40, 40, 0.65, 0.35, 3, 0),
    ("mn-intra", 0.10, 40, 0.65, 0.35, 3, 0),
    ("lg-lgwan-asp", 0.07, 30, 0.75, 0.35, 3, 0),
    ("lg-lgwan-mail", 0.01, 15, 0.0, 0.0, 0, 0),  # SMTP, both directions
    ("mn-chukan", 0.01, 30, 0.5, 0.35, 0, 0),
    ("rdp", 0.04, 300, 0.75, 0.25, 1, 2),
    ("vb1-cdr-in", 0.02, 60, 0.1, 0.35, 0, 1),
    ("cdr-http-out", 0.025, 80, 1.0, 0.33, 0, 0),  # HTTP downloads, inspected
    ("inetmail-mailsan", 0.012, 15, 0.0, 0.0, 0, 0),  # SMTP, inbound leg
    ("mailsan-lgmail", 0.012, 15, 0.0, 0.0, 0, 0),  # SMTP, outbound leg, inspected
    ("vb1-proxy", 0.14, 40, 0.8, 0.35, 3, 0),
    ("proxy-public", 0.13, 50, 0.8, 0.35, 3, 0),
    ("inetmail-scmail", 0.01, 15, 0.0, 0.0, 0, 0),  # SMTP, both directions
    ("scmail-public", 0.01, 15, 0.0, 0.0, 0, 0),  # SMTP, both directions
]
VIOLATIONS = [("viol-lg-internet", 5), ("viol-mn-lg", 3), ("viol-rdp-tunnel", 2)]
SMTP_KINDS = {"lg-lgwan-mail", "inetmail-mailsan", "mailsan-lgmail", "inetmail-scmail", "scmail-public"}
KIND_NAMES = [k[0] for k in KINDS] + [v[0] for v in VIOLATIONS] + ["dns"]
KIND_ID = {n: i for i, n in enumerate(KIND_NAMES)}
# per kind id: mean gap between a session's packets (µs)
GAP_US = {"rdp": 30_000, "cdr-http-out": 2_000, "vb1-cdr-in": 2_000, "dns": 2_000}

PATTERN_LINES = [
    f"2024-04-{1 + i % 28:02d},{100000 + i * 7919 % 900000},{dept},{item},{(i * 37) % 100000},{state}\r\n"
    for i, (dept, item, state) in enumerate(
        (d, t, s) for d in ("shiminka", "zeimuka", "fukushika", "somuka", "kaikeika", "kyoikuka")
        for t in ("juminhyo", "koseki", "nozei", "kenko", "hoiku", "kaigo", "shisetsu")
        for s in ("kanryo", "shinsei", "shinsa", "henkyaku")
    )
]
PATTERN = np.frombuffer("".join(PATTERN_LINES).encode("ascii"), dtype=np.uint8)  # ASCII, no '.', no script


# --------------------------------------------------------------------------------------------- protocol bytes


def _ext(kind: int, data: bytes) -> bytes:
    return kind.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def _handshake_record(kind: int, body: bytes, version: int = 3) -> bytes:
    msg = bytes([kind]) + len(body).to_bytes(3, "big") + body
    return bytes([0x16, 3, version]) + len(msg).to_bytes(2, "big") + msg


def tls_client_hello(rng: np.random.Generator, sni: str | None) -> bytes:
    """A TLS 1.3 ClientHello (SNI when given, groups, signature algorithms, ALPN, versions, key share)."""
    ext = b""
    if sni:
        name = sni.encode()
        entry = b"\x00" + len(name).to_bytes(2, "big") + name
        ext += _ext(0, len(entry).to_bytes(2, "big") + entry)
    ext += _ext(0x000A, bytes.fromhex("0006001d00170018"))
    ext += _ext(0x000D, bytes.fromhex("0012040305030603080408050806040105010601"))
    ext += _ext(0x0010, bytes.fromhex("000c02683208687474702f312e31"))
    ext += _ext(0x002B, bytes.fromhex("0403040303"))
    ext += _ext(0x0033, bytes.fromhex("0024001d0020") + rng.bytes(32))
    suites = bytes.fromhex("130113021303c02bc02fc02cc030cca9cca8c013c014009c009d002f0035")
    body = (b"\x03\x03" + rng.bytes(32) + b"\x20" + rng.bytes(32) + len(suites).to_bytes(2, "big") + suites
            + b"\x01\x00" + len(ext).to_bytes(2, "big") + ext)
    return _handshake_record(1, body, version=1)


def tls_server_hello(rng: np.random.Generator) -> bytes:
    """ServerHello, ChangeCipherSpec, then one encrypted record (as a TLS 1.3 server sends them)."""
    ext = _ext(0x002B, b"\x03\x04") + _ext(0x0033, bytes.fromhex("001d0020") + rng.bytes(32))
    body = b"\x03\x03" + rng.bytes(32) + b"\x20" + rng.bytes(32) + b"\x13\x01\x00" + len(ext).to_bytes(2, "big") + ext
    hello = _handshake_record(2, body)
    return hello + bytes.fromhex("140303000101") + b"\x17\x03\x03" + (600).to_bytes(2, "big") + rng.bytes(600)


def dns_pair(rng: np.random.Generator, name: str, aaaa: bool, answer: bytes) -> tuple[bytes, bytes]:
    qid = int(rng.integers(0, 65536))
    qname = b"".join(len(p).to_bytes(1, "big") + p.encode() for p in name.split(".")) + b"\0"
    qtype = 28 if aaaa else 1
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", qtype, 1)
    r = (struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + qname + struct.pack(">HH", qtype, 1)
         + struct.pack(">HHHIH", 0xC00C, qtype, 1, 300, len(answer)) + answer)
    return q, r


def smtp_head(client: str, server: str, sender: str, rcpt: str, n: int) -> list[tuple[int, bytes]]:
    return [
        (1, f"220 {server} ESMTP ready\r\n".encode()),
        (0, f"EHLO {client}\r\n".encode()),
        (1, f"250-{server}\r\n250-PIPELINING\r\n250-SIZE 20971520\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".encode()),
        (0, f"MAIL FROM:<{sender}>\r\n".encode()),
        (1, b"250 2.1.0 Ok\r\n"),
        (0, f"RCPT TO:<{rcpt}>\r\n".encode()),
        (1, b"250 2.1.5 Ok\r\n"),
        (0, b"DATA\r\n"),
        (1, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (0, (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: renraku {n}\r\nDate: Mon, 1 Apr 2024 09:00:00 +0900\r\n"
             f"Message-ID: <{n}@{client}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
             "Content-Transfer-Encoding: 7bit\r\n\r\n").encode()),
    ]


SMTP_TAIL = [(0, b"\r\n.\r\n"), (1, b"250 2.0.0 Ok: queued\r\n"), (0, b"QUIT\r\n"), (1, b"221 2.0.0 Bye\r\n")]


# --------------------------------------------------------------------------------------------- the plan


class Plan:
    """Sessions (one per flow) and their packets, in session order, before sorting by time."""

    def __init__(self, packets: int, seed: int, sessions: int, dns: int) -> None:
        rng = np.random.default_rng(seed)
        prng = np.random.default_rng(seed + 1)  # protocol bytes: independent of the packet count
        shares = np.array([k[1] for k in KINDS])
        kinds = rng.choice(len(KINDS), size=sessions, p=shares / shares.sum()).tolist()
        for name, count in VIOLATIONS:
            kinds += [KIND_ID[name]] * count
        kinds += [KIND_ID["dns"]] * dns
        S = len(kinds)
        self.S = S
        self.kind = np.array(kinds, dtype=np.int16)
        self.fam = np.full(S, 4, dtype=np.uint8)
        self.proto = np.full(S, 6, dtype=np.uint8)
        self.vlan = np.full(S, -1, dtype=np.int32)
        self.c_hi = np.zeros(S, dtype=np.uint64)
        self.c_lo = np.zeros(S, dtype=np.uint64)
        self.s_hi = np.zeros(S, dtype=np.uint64)
        self.s_lo = np.zeros(S, dtype=np.uint64)
        self.cport = rng.integers(49152, 65536, size=S).astype(np.uint16)
        self.sport = np.zeros(S, dtype=np.uint16)
        self.ttl_c = np.full(S, 128, dtype=np.uint8)
        self.ttl_s = np.full(S, 64, dtype=np.uint8)
        weight = np.zeros(S)
        head: list[list[tuple[int, bytes]]] = [[] for _ in range(S)]
        tail: list[list[tuple[int, bytes]]] = [[] for _ in range(S)]
        http_sessions: list[int] = []

        def pick(seq: list) -> object:
            return seq[int(rng.integers(len(seq)))]

        for s, kid in enumerate(kinds):
            name = KIND_NAMES[kid]
            c = srv = 0
            port = 443
            c6 = s6 = None
            if name == "lg-intra":
                if rng.random() < 0.06:
                    c6, s6, port = pick(LG_PCS6), pick(LG_SERVERS6), int(pick([445, 443]))
                else:
                    c = pick(LG_PCS)
                    srv = pick(list(LG_SERVERS))
                    port = int(pick(LG_SERVERS[srv]))
                    if rng.random() < 0.03:
                        self.vlan[s] = int(pick([20, 21]))
            elif name == "mn-intra":
                c, srv = pick(MN_PCS), pick(list(MN_SERVERS))
                port = int(pick(MN_SERVERS[srv]))
                if rng.random() < 0.03:
                    self.vlan[s] = 10
            elif name == "lg-lgwan-asp":
                c, srv, port = pick(LG_PCS), pick(ASP), int(pick([443, 443, 80]))
            elif name == "lg-lgwan-mail":
                c, srv = (LG_MAIL, LGWAN_MAIL) if rng.random() < 0.5 else (LGWAN_MAIL, LG_MAIL)
                port = 25
            elif name == "mn-chukan":
                c, srv, port = MN_GW, CHUKAN, 443
                self.ttl_c[s] = 64
            elif name == "rdp":
                c, srv, port = pick(LG_PCS), VB1, 3389
                head[s] = [(0, RDP_REQUEST), (1, RDP_CONFIRM), (0, tls_client_hello(prng, None)),
                           (1, tls_server_hello(prng))]
            elif name == "vb1-cdr-in":
                c, srv, port = VB1, CDR1, 443
                self.ttl_c[s] = 64
                head[s] = [(0, tls_client_hello(prng, "cdr1.midori.lg.jp")), (1, tls_server_hello(prng))]
            elif name == "cdr-http-out":
                c, srv, port = pick(LG_PCS), CDR1, 443
                http_sessions.append(s)
                head[s] = [(0, b""), (1, b"")]  # request and response header, written once the body is sized
            elif name == "inetmail-mailsan":
                c, srv, port = INET_MAIL, MAIL_SAN_IN, 25
            elif name == "mailsan-lgmail":
                c, srv, port = MAIL_SAN_LG, LG_MAIL, 25
            elif name == "vb1-proxy":
                c, srv, port = pick(INET_HOSTS[:1] * 6 + INET_HOSTS[2:]), SC_PROXY, 8080
                self.ttl_c[s] = 64
            elif name == "proxy-public":
                c, srv, port = SC_PROXY, pick(PUBLIC_WEB), int(pick([443, 443, 443, 80]))
                self.ttl_c[s] = 64
                if port == 443:
                    head[s] = [(0, tls_client_hello(prng, f"www{s % 97}.example.com")), (1, tls_server_hello(prng))]
            elif name == "inetmail-scmail":
                c, srv = (INET_MAIL, SC_MAIL) if rng.random() < 0.5 else (SC_MAIL, INET_MAIL)
                port = 25
            elif name == "scmail-public":
                c, srv = (SC_MAIL, pick(PUBLIC_MAIL)) if rng.random() < 0.5 else (pick(PUBLIC_MAIL), SC_MAIL)
                port = 25
            elif name == "viol-lg-internet":
                c, srv, port = pick(LG_PCS), v4("203.0.113.200"), 443
            elif name == "viol-mn-lg":
                c, srv, port = pick(MN_PCS), v4("10.20.1.40"), 445
            elif name == "viol-rdp-tunnel":  # TLS straight away on 3389: not RDP
                c, srv, port = pick(LG_PCS), VB1, 3389
                head[s] = [(0, tls_client_hello(prng, "vpn.example.net")), (1, tls_server_hello(prng))]
            elif name == "dns":
                self.proto[s] = 17
                port = 53
                r = rng.random()
                host = f"h{int(rng.integers(1000))}"
                if r < 0.45:
                    c, srv, qn = pick(LG_PCS), LG_DNS, f"{host}.midori.lg.jp"
                elif r < 0.50:
                    c6, s6, qn = pick(LG_PCS6), LG_DNS6, f"{host}.midori.lg.jp"
                elif r < 0.60:
                    c, srv, qn = LG_DNS, LGWAN_DNS, f"{host}.lgwan.lg.jp"
                    self.ttl_c[s] = 64
                elif r < 0.70:
                    c, srv, qn = pick(MN_PCS), MN_DNS, f"{host}.mn.midori.lg.jp"
                elif r < 0.85:
                    c, srv, qn = pick(INET_HOSTS), SC_DNS, f"www{int(rng.integers(500))}.example.com"
                    self.ttl_c[s] = 64
                else:
                    c, srv, qn = SC_DNS, pick(PUBLIC_DNS), f"www{int(rng.integers(500))}.example.com"
                    self.ttl_c[s] = 64
                aaaa = c6 is not None
                ans = bytes.fromhex("fd000020000000010000000000000050") if aaaa else prng.bytes(4)
                q, a = dns_pair(prng, qn, aaaa, ans)
                head[s] = [(0, q), (1, a)]
            if name in SMTP_KINDS:
                cn = {LG_MAIL: "lg-mail.midori.lg.jp", MAIL_SAN_LG: "mail-san.midori.lg.jp",
                      INET_MAIL: "mail.midori.jp", SC_MAIL: "relay.sc.pref.lg.jp"}
                client, server = cn.get(c, "mx.example.com"), cn.get(srv, "mx.example.com")
                head[s] = smtp_head(client, server, f"user{s % 50}@{client}", f"staff{s % 300}@{server}", s)
                tail[s] = list(SMTP_TAIL)
            if c6 is not None:
                self.fam[s] = 6
                self.c_hi[s], self.c_lo[s] = c6
                self.s_hi[s], self.s_lo[s] = s6  # type: ignore[misc]
            else:
                self.c_lo[s], self.s_lo[s] = c, srv
            self.sport[s] = port
            if name != "dns":
                base = KINDS[kid][2] if kid < len(KINDS) else 20
                weight[s] = base * rng.lognormal(0.0, 0.8)

        # one flow per session: no two sessions share a 5-tuple (a reused tuple would merge or split flows)
        used: set[tuple] = set()
        cports = self.cport.tolist()
        for s, key in enumerate(zip(self.c_hi.tolist(), self.c_lo.tolist(), self.s_hi.tolist(), self.s_lo.tolist(),
                                    self.sport.tolist(), self.proto.tolist(), strict=True)):
            while (key, cports[s]) in used:
                cports[s] = 49152 + (cports[s] - 49152 + 1) % 16384
            used.add((key, cports[s]))
        self.cport = np.array(cports, dtype=np.uint16)

        # --- packets per session: handshake + head + middle + tail + FIN exchange (TCP); DNS: 2
        tcp = self.proto == 6
        nhead = np.array([len(h) for h in head], dtype=np.int64)
        ntail = np.array([len(t) for t in tail], dtype=np.int64)
        fixed = np.where(tcp, 6 + nhead + ntail, nhead)
        budget = packets - int(fixed.sum())
        min_mid = 2
        if budget < min_mid * int(tcp.sum()):
            raise SystemExit(f"{packets} packets is too few for {S} flows (need at least "
                             f"{int(fixed.sum()) + min_mid * int(tcp.sum())}); use fewer --sessions/--dns")
        mid = np.where(tcp, np.maximum(min_mid, np.floor(weight / weight.sum() * budget)), 0).astype(np.int64)
        diff = budget - int(mid.sum())
        big = np.argsort(-weight, kind="stable")
        while diff:
            take = big[: min(abs(diff), int(tcp.sum()))]
            if diff < 0:
                take = take[mid[take] > min_mid]
            mid[take] += 1 if diff > 0 else -1
            diff -= len(take) if diff > 0 else -len(take)
        self.total = fixed + mid
        assert int(self.total.sum()) == packets

        # --- per packet, in session order
        n = packets
        starts = np.r_[0, np.cumsum(self.total)[:-1]]
        sess = np.repeat(np.arange(S, dtype=np.int32), self.total)
        k = np.arange(n, dtype=np.int64) - np.repeat(starts, self.total)
        stcp = np.repeat(tcp, self.total)
        nh, nm = np.repeat(nhead, self.total), np.repeat(mid, self.total)
        hs = np.where(stcp, 3, 0)
        in_mid = stcp & (k >= hs + nh) & (k < hs + nh + nm)
        fin_at = np.repeat(self.total, self.total) - 3
        in_fin = stcp & (k >= fin_at)

        direction = np.zeros(n, dtype=np.uint8)
        paylen = np.zeros(n, dtype=np.int64)
        flags = np.zeros(n, dtype=np.uint8)
        # handshake and FIN exchange
        hsk = stcp & (k < 3)
        direction[hsk] = np.array([0, 1, 0], dtype=np.uint8)[k[hsk]]
        flags[hsk] = np.array([SYN, SYN | ACK, ACK], dtype=np.uint8)[k[hsk]]
        fk = (k - fin_at)[in_fin]
        direction[in_fin] = np.array([0, 1, 0], dtype=np.uint8)[fk]
        flags[in_fin] = np.array([FIN | ACK, FIN | ACK, ACK], dtype=np.uint8)[fk]
        # middle: random per kind
        mi = np.flatnonzero(in_mid)
        mk = self.kind[sess[mi]].astype(np.int64)
        params = np.array([k_[3:] for k_ in KINDS] + [(0.5, 0.35, 0, 0)] * (len(KIND_NAMES) - len(KINDS)))
        p_s2c, p_ack = params[mk, 0], params[mk, 1]
        is_smtp = np.isin(mk, [KIND_ID[x] for x in SMTP_KINDS])
        d = np.where(is_smtp, 0, rng.random(len(mi)) < p_s2c).astype(np.uint8)  # who sends data
        ack_only = rng.random(len(mi)) < np.where(is_smtp, 0.3, p_ack)
        prof = np.where(d == 1, params[mk, 3], params[mk, 2]).astype(np.int64)
        mss = np.where(self.fam[sess[mi]] == 6, 1440, 1460)
        size = _sizes(rng, prof, mss)
        direction[mi] = np.where(ack_only, 1 - d, d)
        paylen[mi] = np.where(ack_only, 0, size)
        flags[mi] = np.where(ack_only, ACK, PSH | ACK)

        # HTTP downloads: the response header announces exactly the body the middle carries
        body_total = np.zeros(S, dtype=np.int64)
        np.add.at(body_total, sess[mi], paylen[mi] * (direction[mi] == 1))
        for s in http_sessions:
            fname = f"kohyo-{s:05d}.csv"
            head[s] = [
                (0, (f"GET /portal/download/{s:05d}/{fname} HTTP/1.1\r\nHost: cdr1.midori.lg.jp\r\n"
                     "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\nAccept: */*\r\n"
                     "Connection: close\r\n\r\n").encode()),
                (1, (f"HTTP/1.1 200 OK\r\nServer: cdr-portal\r\nContent-Type: text/csv\r\n"
                     f"Content-Length: {int(body_total[s])}\r\n"
                     f'Content-Disposition: attachment; filename="{fname}"\r\nConnection: close\r\n\r\n').encode()),
            ]
        sp_idx: list[int] = []
        sp_data: list[bytes] = []
        for s in range(S):
            at = int(starts[s]) + (3 if tcp[s] else 0)
            for j, (dd, data) in enumerate(head[s]):
                sp_idx.append(at + j)
                sp_data.append(data)
                direction[at + j], paylen[at + j] = dd, len(data)
                flags[at + j] = PSH | ACK if tcp[s] else 0
            at = int(starts[s] + self.total[s] - 3 - ntail[s])
            for j, (dd, data) in enumerate(tail[s]):
                sp_idx.append(at + j)
                sp_data.append(data)
                direction[at + j], paylen[at + j], flags[at + j] = dd, len(data), PSH | ACK

        # --- sequence and acknowledgment numbers from what each side consumed before each packet
        consume = paylen + ((flags & (SYN | FIN)) != 0)
        isn_c = rng.integers(0, 1 << 32, size=S, dtype=np.uint64).astype(np.int64)
        isn_s = rng.integers(0, 1 << 32, size=S, dtype=np.uint64).astype(np.int64)
        excl = []
        for side in (0, 1):
            c = consume * (direction == side)
            cs = np.cumsum(c) - c
            excl.append(cs - np.repeat(cs[starts], self.total))
        seq = np.where(direction == 0, isn_c[sess] + excl[0], isn_s[sess] + excl[1]) & 0xFFFFFFFF
        ackn = np.where(direction == 0, isn_s[sess] + excl[1], isn_c[sess] + excl[0]) & 0xFFFFFFFF
        ackn[(flags & ACK) == 0] = 0

        # --- time: sessions start uniformly over the span; packets follow with exponential gaps
        span_us = max(60, packets // 1700) * 1_000_000
        t_start = rng.integers(0, int(span_us * 0.9), size=S)
        gap_mean = np.array([GAP_US.get(nm_, 15_000) for nm_ in KIND_NAMES])[self.kind]
        gaps = 1 + np.floor(rng.exponential(1.0, size=n) * np.repeat(gap_mean, self.total)).astype(np.int64)
        gaps[hsk] = 1 + (gaps[hsk] // 50)  # handshakes run at LAN round-trip times
        gaps[k == 0] = 0
        cg = np.cumsum(gaps)
        ts = T0_US + np.repeat(t_start, self.total) + cg - np.repeat(cg[starts], self.total)

        order = np.argsort(ts, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        self.ts = ts[order]
        self.sess = sess[order]
        self.dir = direction[order]
        self.paylen = paylen[order].astype(np.int32)
        self.flags = flags[order]
        self.seq = seq[order].astype(np.uint32)
        self.ack = ackn[order].astype(np.uint32)
        sp_out = rank[np.array(sp_idx, dtype=np.int64)]
        so = np.argsort(sp_out)
        self.sp_out = sp_out[so]
        self.sp_data = [sp_data[i] for i in so.tolist()]
        self.n = n


def _sizes(rng: np.random.Generator, prof: np.ndarray, mss: np.ndarray) -> np.ndarray:
    """Payload sizes: 0 bulk (mostly full segments), 1 small (input, keystrokes), 2 mixed (screen
    updates), 3 request-like (HTTP/SMB requests)."""
    n = len(prof)
    u = rng.random(n)
    r = rng.random(n)
    full = mss
    bulk = np.where(u < 0.55, full, np.where(u < 0.70, 1 + r * 200, 200 + r * (full - 200)))
    small = np.where(u < 0.9, 20 + r * 180, 200 + r * 400)
    mixed = np.where(u < 0.3, full, np.where(u < 0.7, 100 + r * (full - 100), 20 + r * 80))
    req = 100 + r * 600
    out = np.choose(prof, [bulk, small, mixed, req])
    return np.minimum(out.astype(np.int64), full)


# --------------------------------------------------------------------------------------------- writing


def _put(h: np.ndarray, col: int, val: np.ndarray, nbytes: int) -> None:
    v = val.astype(np.uint64)
    for b in range(nbytes):
        h[:, col + b] = (v >> np.uint64(8 * (nbytes - 1 - b))) & np.uint64(0xFF)


def write(plan: Plan, path: str) -> int:
    """Write the plan as a pcap; returns the file size."""
    size = 0
    with open(path, "wb") as fh:
        hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
        fh.write(hdr)
        size += len(hdr)
        for a in range(0, plan.n, CHUNK):
            b = min(plan.n, a + CHUNK)
            data = _chunk(plan, a, b)
            fh.write(data)
            size += len(data)
    return size


def _chunk(plan: Plan, a: int, b: int) -> memoryview:
    n = b - a
    sess = plan.sess[a:b]
    dirn = plan.dir[a:b]
    pay = plan.paylen[a:b].astype(np.int64)
    fam = plan.fam[sess]
    proto = plan.proto[sess]
    vlan = plan.vlan[sess]
    tagged = vlan >= 0
    v6_ = fam == 6
    udp = proto == 17
    l2 = np.where(tagged, 18, 14)
    l3 = np.where(v6_, 40, 20)
    l4 = np.where(udp, 8, 20)
    hlen = l2 + l3 + l4
    frame = np.maximum(60, hlen + pay)
    rec = 16 + frame
    off = np.cumsum(rec) - rec
    total = int(rec.sum())
    buf = np.resize(PATTERN, total)

    # record headers
    ts = plan.ts[a:b]
    rh = np.empty((n, 4), dtype="<u4")
    rh[:, 0] = ts // 1_000_000
    rh[:, 1] = ts % 1_000_000
    rh[:, 2] = frame
    rh[:, 3] = frame
    buf[off[:, None] + np.arange(16)] = rh.view(np.uint8).reshape(n, 16)

    fwd = dirn == 0
    src_hi = np.where(fwd, plan.c_hi[sess], plan.s_hi[sess])
    src_lo = np.where(fwd, plan.c_lo[sess], plan.s_lo[sess])
    dst_hi = np.where(fwd, plan.s_hi[sess], plan.c_hi[sess])
    dst_lo = np.where(fwd, plan.s_lo[sess], plan.c_lo[sess])
    sp = np.where(fwd, plan.cport[sess], plan.sport[sess])
    dp = np.where(fwd, plan.sport[sess], plan.cport[sess])
    ttl = np.where(fwd, plan.ttl_c[sess], plan.ttl_s[sess])
    gidx = np.arange(a, b, dtype=np.int64)

    for tg in (False, True):
        for six in (False, True):
            for u in (False, True):
                sel = np.flatnonzero((tagged == tg) & (v6_ == six) & (udp == u))
                if not len(sel):
                    continue
                L2, L3, L4 = (18 if tg else 14), (40 if six else 20), (8 if u else 20)
                H = L2 + L3 + L4
                h = np.zeros((len(sel), H), dtype=np.uint8)
                # Ethernet: locally administered MACs derived from the addresses
                h[:, 0] = 2
                _put(h, 2, dst_lo[sel] & np.uint64(0xFFFFFFFF), 4)
                h[:, 6] = 2
                _put(h, 8, src_lo[sel] & np.uint64(0xFFFFFFFF), 4)
                if tg:
                    _put(h, 12, np.full(len(sel), 0x8100), 2)
                    _put(h, 14, vlan[sel], 2)
                _put(h, L2 - 2, np.full(len(sel), 0x86DD if six else 0x0800), 2)
                l4len = L4 + pay[sel]
                if six:
                    h[:, L2] = 0x60
                    _put(h, L2 + 1, sess[sel] & 0xFFFFF, 3)  # flow label per session
                    _put(h, L2 + 4, l4len, 2)
                    h[:, L2 + 6] = 17 if u else 6
                    h[:, L2 + 7] = ttl[sel]
                    _put(h, L2 + 8, src_hi[sel], 8)
                    _put(h, L2 + 16, src_lo[sel], 8)
                    _put(h, L2 + 24, dst_hi[sel], 8)
                    _put(h, L2 + 32, dst_lo[sel], 8)
                else:
                    h[:, L2] = 0x45
                    _put(h, L2 + 2, 20 + l4len, 2)
                    _put(h, L2 + 4, (gidx[sel] * 40503) & 0xFFFF, 2)
                    h[:, L2 + 6] = 0x40  # DF
                    h[:, L2 + 8] = ttl[sel]
                    h[:, L2 + 9] = 17 if u else 6
                    _put(h, L2 + 12, src_lo[sel], 4)
                    _put(h, L2 + 16, dst_lo[sel], 4)
                    words = h[:, L2 : L2 + 20].astype(np.uint32).reshape(-1, 10, 2)
                    s_ = (words[:, :, 0] << 8 | words[:, :, 1]).sum(axis=1)
                    s_ = (s_ & 0xFFFF) + (s_ >> 16)
                    s_ = (s_ & 0xFFFF) + (s_ >> 16)
                    _put(h, L2 + 10, ~s_ & 0xFFFF, 2)
                t = L2 + L3
                _put(h, t, sp[sel], 2)
                _put(h, t + 2, dp[sel], 2)
                if u:
                    _put(h, t + 4, l4len, 2)
                else:
                    _put(h, t + 4, plan.seq[a:b][sel], 4)
                    _put(h, t + 8, plan.ack[a:b][sel], 4)
                    h[:, t + 12] = 0x50
                    h[:, t + 13] = plan.flags[a:b][sel]
                    _put(h, t + 14, np.where(fwd[sel], 64240, 65160), 2)
                start = off[sel] + 16
                buf[start[:, None] + np.arange(H)] = h
    # Ethernet padding of short frames: zeros
    padn = frame - hlen - pay
    if padn.any():
        pstart = off + 16 + hlen + pay
        idx = np.repeat(pstart, padn) + (np.arange(int(padn.sum())) - np.repeat(np.cumsum(padn) - padn, padn))
        buf[idx] = 0
    # protocol bytes of the special packets
    lo, hi = np.searchsorted(plan.sp_out, [a, b])
    payoff = off + 16 + hlen
    for j in range(lo, hi):
        i = int(plan.sp_out[j]) - a
        data = plan.sp_data[j]
        o = int(payoff[i])
        buf[o : o + len(data)] = np.frombuffer(data, dtype=np.uint8)
        if udp[i]:  # DNS: a real UDP checksum (mandatory over IPv6)
            l3o = int(off[i]) + 16 + int(l2[i])
            u0 = o - 8
            seg = buf[u0 : o + len(data)].tobytes()
            if v6_[i]:
                pseudo = buf[l3o + 8 : l3o + 40].tobytes() + struct.pack(">IxxxB", len(seg), 17)
            else:
                pseudo = buf[l3o + 12 : l3o + 20].tobytes() + struct.pack(">xBH", 17, len(seg))
            c = _csum(pseudo + seg) or 0xFFFF
            buf[u0 + 6], buf[u0 + 7] = c >> 8, c & 0xFF
    return memoryview(buf)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(np.frombuffer(data, dtype=">u2").tolist())
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def generate(path: str, packets: int = 1_000_000, seed: int = 2024, sessions: int = 14_000, dns: int = 6_000) -> dict:
    """Write the capture; returns a summary (flows, bytes, seconds, packets per kind)."""
    t0 = time.perf_counter()
    plan = Plan(packets, seed, sessions, dns)
    size = write(plan, path)
    per_kind = np.bincount(plan.kind.astype(np.int64), weights=plan.total, minlength=len(KIND_NAMES))
    flows_kind = np.bincount(plan.kind.astype(np.int64), minlength=len(KIND_NAMES))
    return {
        "path": path, "packets": packets, "flows": plan.S, "bytes": size, "seconds": time.perf_counter() - t0,
        "ipv6_flows": int((plan.fam == 6).sum()), "vlan_flows": int((plan.vlan >= 0).sum()),
        "kinds": {n: (int(flows_kind[i]), int(per_kind[i])) for i, n in enumerate(KIND_NAMES)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--sessions", type=int, default=14_000, help="TCP sessions (flows), independent of --packets")
    ap.add_argument("--dns", type=int, default=6_000, help="DNS exchanges (UDP flows)")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = ap.parse_args()
    info = generate(args.out, args.packets, args.seed, args.sessions, args.dns)
    if args.json:
        import json

        print(json.dumps(info))
        return
    print(f"{info['path']}: {info['packets']:,} packets, {info['flows']:,} flows "
          f"({info['ipv6_flows']} IPv6, {info['vlan_flows']} VLAN-tagged), {info['bytes'] / 1e6:.0f} MB "
          f"in {info['seconds']:.1f} s")
    for name, (f, p) in info["kinds"].items():
        print(f"  {name:<18} {f:>6} flows {p:>9,} packets")


if __name__ == "__main__":
    sys.exit(main())
