"""The Linux kernel as the oracle for the iptables and nftables importers.

Three network namespaces: a client, a router (the firewall under test) and a server, joined by veth
pairs. The router's client side is ``lan0``/``lan1``, its server side ``wan0``/``wan1``; those are the
names the random rule sets use. Packets are crafted here as whole Ethernet frames and injected on the
client's veths through AF_PACKET sockets (so one syscall sends one packet, with any source address and
no socket state in the client); what the router forwards is read off the server's veths through
AF_PACKET sockets. Every packet ends with a tag (magic, case nonce, index), so the kernel's fate is
known per packet, and it is compared with segverify's verdict for the very same packet.

Why the addresses are split: sources are drawn from 1.0.0.0–99.255.255.255 (``2000::/5``), destinations
from 101.0.0.0–223.255.255.255 (``3000::/4``). No packet is then the reverse of another, so conntrack
never sees a reply (every packet is an initiation, as the importers model it), and the router's own
addresses (100.64.0.0/16, ``fd00::/8``) are never a source or a destination. Destinations below
128.0.0.0 (``3000::/5``) leave by ``wan0``, the others by ``wan1``. Conntrack is flushed between rule
sets through ctnetlink.

What the random rule sets hold (seeded ``random.Random``: a seed gives the same case everywhere):
  * iptables-save + ip6tables-save: FORWARD with policy ACCEPT or DROP and up to three user chains
    (``-j``, ``-g``, RETURN), raw PREROUTING ``CT --notrack``, mangle PREROUTING/FORWARD drops; ``-i``/``-o``
    with ``+`` and ``!``; ``-s``/``-d`` prefixes /8–/32 (/32–/128), negated or as lists; ``iprange``;
    ``-p`` by name or number, negated; ports, ranges and ``multiport`` (names too), negated; ``--syn`` and
    ``--tcp-flags``; ICMP and ICMPv6 types and codes; ``conntrack``/``state``; ACCEPT, DROP, REJECT.
  * nftables: an inet table with named address and port sets, user chains (jump, goto, return),
    verdict maps (on addresses, ``meta l4proto``, ``ct state``), anonymous sets, ranges, concatenations,
    ``th``, ``meta nfproto``, ICMP types and codes, ``ct state``, ``tcp flags``, the reject variants,
    a ``notrack`` chain at raw priority, a prerouting or postrouting filter chain, and maybe a second
    ``ip``/``ip6`` table whose forward chain must accept too.
  Probes: TCP SYNs, UDP, ICMP/ICMPv6 (echo, replies, errors quoting a packet, neighbour discovery) and
  protocol 253, over both families, mostly inside or at the edges of the rule sets' prefixes and ports.

Used by ``tests/importers/test_kernel_oracle.py`` (CI-sized) and ``bench/oracle_kernel.py`` (larger).
"""

from __future__ import annotations

import ctypes
import functools
import ipaddress
import os
import random
import re
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from segverify.importers import iptables as ipt_importer
from segverify.importers import nftables as nft_importer
from segverify.model.addresses import V6_BASE
from segverify.model.rules import Packet, RuleSet
from segverify.packetspace.firewall import compile_ruleset
from segverify.packetspace.space import PacketSpace

LAN = ("lan0", "lan1")
WAN = ("wan0", "wan1")
IFACES = LAN + WAN
ROUTER_MAC = {"lan0": "02:5e:00:00:00:10", "lan1": "02:5e:00:00:00:11"}
SERVER_MAC = {"wan0": "02:5e:00:00:01:20", "wan1": "02:5e:00:00:01:21"}
CLIENT_MAC = {"lan0": "02:5e:00:00:02:10", "lan1": "02:5e:00:00:02:11"}
PEER = {"lan0": "c0", "lan1": "c1", "wan0": "s0", "wan1": "s1"}  # the other end of each router veth
MAGIC = b"SVko"
TAG = struct.Struct("!4sII")  # magic, case nonce, packet index: the last 12 bytes of every packet
CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003

SRC_V4 = (int(ipaddress.IPv4Address("1.0.0.0")), int(ipaddress.IPv4Address("99.255.255.255")))
DST_V4 = (int(ipaddress.IPv4Address("101.0.0.0")), int(ipaddress.IPv4Address("223.255.255.255")))
BAD_DST_V4 = ((127 << 24, (128 << 24) - 1), (int(ipaddress.IPv4Address("169.254.0.0")),
                                               int(ipaddress.IPv4Address("169.254.255.255"))))
SRC_V6 = (0x2000 << 112, (0x2800 << 112) - 1)
DST_V6 = (0x3000 << 112, (0x4000 << 112) - 1)
INNER_V4 = ("100.127.0.1", "100.127.0.2")  # inside ICMP errors: a flow no packet ever opened
INNER_V6 = ("fd00:dead::1", "fd00:dead::2")

PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6, PROTO_OTHER = 6, 17, 1, 58, 253
ICMP4_CHOICES = ((8, 0), (8, 0), (0, 0), (3, 0), (3, 1), (3, 3), (3, 13), (11, 0), (13, 0), (14, 0), (4, 0))
ICMP6_CHOICES = ((128, 0), (128, 0), (129, 0), (1, 0), (1, 4), (2, 0), (3, 0), (4, 1), (135, 0), (136, 0))
ICMP4_ERRORS = frozenset({3, 4, 5, 11, 12})
ICMP6_ERRORS = frozenset({1, 2, 3, 4})


# --- availability ------------------------------------------------------------------------------


@functools.cache
def unavailable(need_nft: bool = False) -> str | None:
    """Why the lab cannot run here (None when it can): root, ``ip netns``, the firewall tools."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, AF_PACKET sockets and iptables-restore)"
    tools = ["ip", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save"]
    if need_nft:
        tools.append("nft")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (Debian packages iptables, iproute2, nftables)"
    name = f"svprobe{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if done.returncode != 0:
        return f"cannot create a network namespace: {done.stderr.strip()}"
    try:
        done = subprocess.run(["ip", "netns", "exec", name, "iptables-save"], capture_output=True, text=True)
        if done.returncode != 0:
            return f"iptables does not work in a network namespace: {done.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


# --- packets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One initiating packet: where it enters the router and what it carries."""

    index: int
    v6: bool
    in_iface: str
    proto: int
    src: int  # the plain address (not segverify's unified 129-bit form)
    dst: int
    sport: int = 0
    dport: int = 0
    icmp_type: int = 0
    icmp_code: int = 0

    @property
    def out_iface(self) -> str:
        """The router's egress for this destination (its static routes)."""
        if self.v6:
            return "wan0" if self.dst < (0x3800 << 112) else "wan1"
        return "wan0" if self.dst < (128 << 24) else "wan1"

    def packet(self) -> Packet:
        """The same packet as segverify sees it."""
        base = V6_BASE if self.v6 else 0
        if self.proto in (PROTO_TCP, PROTO_UDP):
            return Packet(base + self.src, base + self.dst, self.proto, self.sport, self.dport)
        if self.proto in (PROTO_ICMP, PROTO_ICMPV6):
            return Packet(base + self.src, base + self.dst, self.proto, 0, 0, self.icmp_type, self.icmp_code)
        return Packet(base + self.src, base + self.dst, self.proto)

    def describe(self) -> str:
        return f"#{self.index} in {self.in_iface} out {self.out_iface}: {self.packet().describe()}"


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _ip4(src: int, dst: int, proto: int, payload: bytes, ident: int = 0) -> bytes:
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0,
                       src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
    return head[:10] + struct.pack("!H", _csum(head)) + head[12:] + payload


def _ip6(src: int, dst: int, proto: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), proto, 64, src.to_bytes(16, "big"),
                       dst.to_bytes(16, "big")) + payload


def _l4(p: Probe, src: int, dst: int, body: bytes) -> bytes:
    """The transport segment with a correct checksum (conntrack checks it in PREROUTING)."""
    n = 16 if p.v6 else 4
    if p.proto == PROTO_TCP:
        seg = struct.pack("!HHIIBBHHH", p.sport, p.dport, 0x1000 + p.index, 0, 5 << 4, 0x02, 64240, 0, 0) + body
        off = 16
    elif p.proto == PROTO_UDP:
        seg = struct.pack("!HHHH", p.sport, p.dport, 8 + len(body), 0) + body
        off = 6
    elif p.proto in (PROTO_ICMP, PROTO_ICMPV6):
        errors = ICMP6_ERRORS if p.v6 else ICMP4_ERRORS
        rest = struct.pack("!HH", 0x5EED, p.index & 0xFFFF)  # echo: identifier and sequence number
        if p.icmp_type in errors:  # an error quotes a packet: one of a flow no probe ever opened
            inner_udp = struct.pack("!HHHH", 5353, 5354, 8, 0)
            rest = b"\0\0\0\0"
            isrc, idst = (int(ipaddress.ip_address(a)) for a in (INNER_V6 if p.v6 else INNER_V4))
            body = (_ip6 if p.v6 else _ip4)(isrc, idst, PROTO_UDP, inner_udp) + body
        seg = struct.pack("!BBH", p.icmp_type, p.icmp_code, 0) + rest + body
        off = 2
        if p.proto == PROTO_ICMP:
            return seg[:2] + struct.pack("!H", _csum(seg)) + seg[4:]
    else:
        return body
    tail = struct.pack("!IxxxB", len(seg), p.proto) if p.v6 else struct.pack("!xBH", p.proto, len(seg))
    pseudo = src.to_bytes(n, "big") + dst.to_bytes(n, "big") + tail
    ck = _csum(pseudo + seg)
    if p.proto == PROTO_UDP and ck == 0:
        ck = 0xFFFF
    return seg[:off] + struct.pack("!H", ck) + seg[off + 2:]


def frame(p: Probe, nonce: int) -> bytes:
    """The Ethernet frame that carries ``p`` from the client to the router's ``p.in_iface``."""
    body = TAG.pack(MAGIC, nonce, p.index)
    seg = _l4(p, p.src, p.dst, body)
    if p.v6:
        return _mac(ROUTER_MAC[p.in_iface]) + _mac(CLIENT_MAC[p.in_iface]) + b"\x86\xdd" + _ip6(
            p.src, p.dst, p.proto, seg)
    return _mac(ROUTER_MAC[p.in_iface]) + _mac(CLIENT_MAC[p.in_iface]) + b"\x08\x00" + _ip4(
        p.src, p.dst, p.proto, seg, p.index & 0xFFFF)


def read_tag(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(nonce, index, src, dst, proto) of a captured frame that carries a tag, else None."""
    if len(data) < 14 + 20 + TAG.size:
        return None
    etype = data[12:14]
    if etype == b"\x08\x00":
        total = struct.unpack("!H", data[16:18])[0]
        end = 14 + total
        src, dst, proto = int.from_bytes(data[26:30], "big"), int.from_bytes(data[30:34], "big"), data[23]
    elif etype == b"\x86\xdd" and len(data) >= 54 + TAG.size:
        end = 54 + struct.unpack("!H", data[18:20])[0]
        src, dst, proto = int.from_bytes(data[22:38], "big"), int.from_bytes(data[38:54], "big"), data[20]
    else:
        return None
    if end > len(data) or end < TAG.size:
        return None
    magic, nonce, index = TAG.unpack(data[end - TAG.size:end])
    if magic != MAGIC:
        return None
    return nonce, index, src, dst, proto


# --- the namespaces ----------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


@contextmanager
def inside(ns: str) -> Iterator[None]:
    """Run the block in network namespace ``ns`` (this thread only); sockets made there stay there."""
    here = os.open(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns}")
        try:
            yield
        finally:
            if _libc.setns(here, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(here)
        os.close(there)


class LabError(RuntimeError):
    """The lab could not be set up or a tool refused its input."""


@dataclass
class KernelLab:
    """Client, router and server namespaces with AF_PACKET sockets; ``close()`` removes everything."""

    tag: str = field(default_factory=lambda: f"sv{os.getpid()}")
    send_socks: dict[str, socket.socket] = field(default_factory=dict)
    recv_socks: dict[str, socket.socket] = field(default_factory=dict)
    ct_sock: socket.socket | None = None
    made: list[str] = field(default_factory=list)

    @property
    def client(self) -> str:
        return f"{self.tag}-c"

    @property
    def router(self) -> str:
        return f"{self.tag}-r"

    @property
    def server(self) -> str:
        return f"{self.tag}-s"

    def sh(self, *args: str, ns: str | None = None, stdin: str | None = None, check: bool = True) -> str:
        cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise LabError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def up(self) -> KernelLab:
        """Build the three namespaces, the veths, addresses, static routes and neighbours."""
        try:
            self._up()
        except BaseException:
            self.close()
            raise
        return self

    def _up(self) -> None:
        for ns in (self.client, self.router, self.server):
            self.sh("ip", "netns", "add", ns)
            self.made.append(ns)
            self.sh("ip", "-n", ns, "link", "set", "lo", "up")
        r = self.router
        sysctls = ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=0",
                   "net.ipv4.conf.default.rp_filter=0", "net.ipv6.conf.default.accept_ra=0",
                   "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"]
        self.sh("sysctl", "-q", "-w", *sysctls, ns=r)
        for ns in (self.client, self.server):
            self.sh("sysctl", "-q", "-w", "net.ipv6.conf.default.accept_ra=0", "net.ipv6.conf.all.accept_ra=0",
                    ns=ns)
        for k, name in enumerate(IFACES):
            peer_ns = self.client if name in LAN else self.server
            self.sh("ip", "-n", r, "link", "add", name, "type", "veth", "peer", "name", PEER[name], "netns", peer_ns)
            mine = ROUTER_MAC.get(name, f"02:5e:00:00:00:2{k}")
            theirs = CLIENT_MAC.get(name) or SERVER_MAC[name]
            self.sh("ip", "-n", r, "link", "set", name, "address", mine, "up")
            self.sh("ip", "-n", peer_ns, "link", "set", PEER[name], "address", theirs, "up")
            self.sh("sysctl", "-q", "-w", f"net.ipv4.conf.{name}.rp_filter=0", ns=r)
            net = 10 + k
            self.sh("ip", "-n", r, "addr", "add", f"100.64.{net}.1/24", "dev", name)
            self.sh("ip", "-n", r, "-6", "addr", "add", f"fd00:{net}::1/64", "dev", name, "nodad")
        for k, name in ((2, "wan0"), (3, "wan1")):
            net = 10 + k
            self.sh("ip", "-n", r, "neigh", "replace", f"100.64.{net}.2", "lladdr", SERVER_MAC[name], "dev", name,
                    "nud", "permanent")
            self.sh("ip", "-n", r, "-6", "neigh", "replace", f"fd00:{net}::2", "lladdr", SERVER_MAC[name],
                    "dev", name, "nud", "permanent")
        self.sh("ip", "-n", r, "route", "add", "0.0.0.0/1", "via", "100.64.12.2", "dev", "wan0")
        self.sh("ip", "-n", r, "route", "add", "128.0.0.0/1", "via", "100.64.13.2", "dev", "wan1")
        self.sh("ip", "-n", r, "-6", "route", "add", "3000::/5", "via", "fd00:12::2", "dev", "wan0")
        self.sh("ip", "-n", r, "-6", "route", "add", "3800::/5", "via", "fd00:13::2", "dev", "wan1")
        self.sh("ip", "-n", r, "-6", "route", "add", "2000::/5", "via", "fd00:12::2", "dev", "wan0")
        with inside(self.client):
            for name in LAN:
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                s.bind((PEER[name], 0))
                self.send_socks[name] = s
        with inside(self.server):
            for name in WAN:
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: a whole batch fits
                s.bind((PEER[name], ETH_P_ALL))
                s.setblocking(False)
                self.recv_socks[name] = s
        with inside(self.router):
            self.ct_sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
            self.ct_sock.bind((0, 0))
        time.sleep(0.05)
        self.drain()

    def close(self) -> None:
        """Close the sockets and delete the namespaces (the veths go with them)."""
        for s in [*self.send_socks.values(), *self.recv_socks.values(), *([self.ct_sock] if self.ct_sock else [])]:
            s.close()
        self.send_socks.clear()
        self.recv_socks.clear()
        self.ct_sock = None
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=60)
        self.made.clear()

    def __enter__(self) -> KernelLab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- rules ---------------------------------------------------------------------------------

    def flush_conntrack(self) -> None:
        """Forget every connection (ctnetlink IPCTNL_MSG_CT_DELETE without a tuple: flush)."""
        assert self.ct_sock is not None
        msg = struct.pack("=IHHII", 20, (1 << 8) | 2, 1 | 4, 1, 0) + struct.pack("!BBH", 0, 0, 0)
        self.ct_sock.send(msg)
        reply = self.ct_sock.recv(4096)
        err = struct.unpack("=i", reply[16:20])[0] if len(reply) >= 20 else 0
        if err not in (0, -2):  # -ENOENT: conntrack not loaded in this namespace yet
            raise LabError(f"conntrack flush failed: errno {-err}")

    def load_iptables(self, v4: str, v6: str) -> None:
        self.sh("iptables-restore", ns=self.router, stdin=v4)
        self.sh("ip6tables-restore", ns=self.router, stdin=v6)
        self.flush_conntrack()

    def save_iptables(self) -> str:
        """The kernel's own iptables-save and ip6tables-save output, one after the other."""
        return self.sh("iptables-save", ns=self.router) + self.sh("ip6tables-save", ns=self.router)

    def load_nft(self, text: str) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as fh:
            fh.write(text)
        try:
            self.sh("nft", "-f", fh.name, ns=self.router)
        finally:
            os.unlink(fh.name)
        self.flush_conntrack()

    def nft_json(self) -> str:
        return self.sh("nft", "-j", "list", "ruleset", ns=self.router)

    def reset(self) -> None:
        """No rules at all (either tool may have loaded the last rule set)."""
        if shutil.which("nft"):
            self.sh("nft", "flush", "ruleset", ns=self.router)
        else:
            for tool, stdin in (("iptables-restore", EMPTY_TABLES), ("ip6tables-restore", EMPTY_TABLES)):
                self.sh(tool, ns=self.router, stdin=stdin)

    # --- traffic -------------------------------------------------------------------------------

    def drain(self) -> None:
        for s in self.recv_socks.values():
            while True:
                try:
                    s.recv(65535)
                except BlockingIOError:
                    break

    def send(self, probes: Sequence[Probe], nonce: int, batch: int = 200,
             quiet: float = 0.02, limit: float = 30.0) -> dict[int, str]:
        """Inject every probe; return the index → egress interface of those that came out the server side.

        Batches keep the server sockets' queues short; after the last batch the sockets are read until
        they stay quiet for ``quiet`` seconds (forwarding runs in the sender's softirq, so that is
        ample), bounded by ``limit`` seconds in all.
        """
        by_index = {p.index: p for p in probes}
        seen: dict[int, str] = {}
        deadline = time.monotonic() + limit
        for start in range(0, len(probes), batch):
            for p in probes[start:start + batch]:
                self.send_socks[p.in_iface].send(frame(p, nonce))
            self._collect(by_index, nonce, seen, 0.0)
        while time.monotonic() < deadline:
            if not self._collect(by_index, nonce, seen, quiet):
                break
        return seen

    def _collect(self, by_index: dict[int, Probe], nonce: int, seen: dict[int, str], wait: float) -> int:
        socks = {s.fileno(): (name, s) for name, s in self.recv_socks.items()}
        got = 0
        ready, _, _ = select.select(list(socks), [], [], wait)
        for fd in ready:
            name, s = socks[fd]
            while True:
                try:
                    data, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == socket.PACKET_OUTGOING:
                    continue
                t = read_tag(data)
                if t is None or t[0] != nonce:
                    continue
                p = by_index.get(t[1])
                if p is None or (t[2], t[3], t[4]) != (p.src, p.dst, p.proto):
                    continue  # e.g. the router's own ICMP error quoting the probe
                seen[p.index] = name
                got += 1
        return got


EMPTY_TABLES = "".join(f"*{t}\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in chains) + "COMMIT\n"
                       for t, chains in (("raw", ("PREROUTING", "OUTPUT")),
                                         ("mangle", ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")),
                                         ("filter", ("INPUT", "FORWARD", "OUTPUT"))))


# --- random rule sets --------------------------------------------------------------------------


@dataclass
class Pools:
    """The values a rule set is built around; probes are drawn near them so that rules get hit."""

    v6: bool
    src: list[tuple[int, int]] = field(default_factory=list)  # (network, prefix length)
    dst: list[tuple[int, int]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    @property
    def bits(self) -> int:
        return 128 if self.v6 else 32


def _rand_in(rng: random.Random, span: tuple[int, int], bad: Sequence[tuple[int, int]] = ()) -> int:
    while True:
        a = rng.randint(*span)
        if not any(lo <= a <= hi for lo, hi in bad):
            return a


def make_pools(rng: random.Random, v6: bool) -> Pools:
    pools = Pools(v6)
    bits = pools.bits
    lo_len, hi_len = (32, 128) if v6 else (8, 32)
    for side, span in (("src", SRC_V6 if v6 else SRC_V4), ("dst", DST_V6 if v6 else DST_V4)):
        for _ in range(rng.randint(2, 5)):
            a = _rand_in(rng, span, () if v6 or side == "src" else BAD_DST_V4)
            length = rng.choice([lo_len, hi_len, rng.randint(lo_len, hi_len), rng.randint(lo_len, hi_len)])
            net = a & ~((1 << (bits - length)) - 1) & ((1 << bits) - 1)
            getattr(pools, side).append((net, length))
        # a nested prefix sometimes, so that order and RETURN matter
        net, length = rng.choice(getattr(pools, side))
        if length < hi_len:
            inner = rng.randint(length + 1, hi_len)
            a = net | rng.getrandbits(bits - length)
            getattr(pools, side).append((a & ~((1 << (bits - inner)) - 1), inner))
    pools.ports = sorted({rng.choice([22, 53, 80, 443, 1024, 3389]) for _ in range(2)}
                         | {rng.randint(1, 65535) for _ in range(rng.randint(2, 5))})
    return pools


def _addr_text(a: int, v6: bool) -> str:
    return str(ipaddress.IPv6Address(a) if v6 else ipaddress.IPv4Address(a))


def _prefix_text(pools: Pools, p: tuple[int, int]) -> str:
    return f"{_addr_text(p[0], pools.v6)}/{p[1]}"


def make_probes(rng: random.Random, pools4: Pools, pools6: Pools, n: int, protos: Sequence[int] | None = None,
                start: int = 0) -> list[Probe]:
    """``n`` initiating packets, mostly near the rule sets' prefixes and ports (and at their edges)."""
    out: list[Probe] = []
    for k in range(n):
        pools = pools6 if rng.random() < 0.4 else pools4
        v6 = pools.v6
        bits = pools.bits

        def pick(side: str, span: tuple[int, int], bad: Sequence[tuple[int, int]], pools: Pools = pools,
                 bits: int = bits) -> int:
            r = rng.random()
            if r < 0.2:
                return _rand_in(rng, span, bad)
            net, length = rng.choice(getattr(pools, side))
            size = 1 << (bits - length)
            a = net + rng.randrange(size) if r < 0.7 else rng.choice([net, net + size - 1, net - 1, net + size])
            return a if span[0] <= a <= span[1] and not any(lo <= a <= hi for lo, hi in bad) else \
                _rand_in(rng, span, bad)

        src = pick("src", SRC_V6 if v6 else SRC_V4, ())
        dst = pick("dst", DST_V6 if v6 else DST_V4, () if v6 else BAD_DST_V4)
        icmp = PROTO_ICMPV6 if v6 else PROTO_ICMP
        proto = rng.choice(protos or (PROTO_TCP, PROTO_TCP, PROTO_UDP, PROTO_UDP, icmp, PROTO_OTHER))
        if proto == PROTO_ICMP and v6:
            proto = PROTO_ICMPV6
        if proto == PROTO_ICMPV6 and not v6:
            proto = PROTO_ICMP
        sport = dport = itype = icode = 0
        if proto in (PROTO_TCP, PROTO_UDP):
            sport, dport = _probe_port(rng, pools), _probe_port(rng, pools)
        elif proto in (PROTO_ICMP, PROTO_ICMPV6):
            itype, icode = rng.choice(ICMP6_CHOICES if v6 else ICMP4_CHOICES)
        out.append(Probe(start + k, v6, rng.choice(LAN), proto, src, dst, sport, dport, itype, icode))
    return out


def _probe_port(rng: random.Random, pools: Pools) -> int:
    if rng.random() < 0.35:
        return rng.randint(1, 65535)
    return min(max(rng.choice(pools.ports) + rng.choice([0, 0, 0, -1, 1]), 1), 65535)


# --- iptables-save text ---

SERVICE_NAMES = {"tcp": [("ssh", 22), ("http", 80), ("https", 443), ("domain", 53), ("smtp", 25)],
                 "udp": [("domain", 53), ("ntp", 123), ("snmp", 161), ("kerberos", 88), ("sunrpc", 111)]}
HAVE_SERVICES = os.path.exists("/etc/services")


def _ipt_ports(rng: random.Random, pools: Pools, proto: str) -> list[str]:
    """Port matches for ``-p tcp``/``-p udp``: single, range, negated, multiport."""
    out: list[str] = []

    def one() -> str:
        if rng.random() < 0.08:  # by name (iptables-restore looks it up in /etc/services, if there is one)
            name, number = rng.choice(SERVICE_NAMES[proto])
            return name if HAVE_SERVICES else str(number)
        a = rng.choice(pools.ports)
        if rng.random() < 0.4:
            b = min(65535, a + rng.choice([1, 10, 1000, rng.randint(1, 30000)]))
            return f"{a}:{b}" if b > a else str(a)
        return str(a)

    r = rng.random()
    if r < 0.35:
        which = rng.choice(["--sport", "--dport", "--dport"])
        out += (["!"] if rng.random() < 0.2 else []) + [which, one()]
    elif r < 0.55:
        which = rng.choice(["--dports", "--sports", "--ports"])
        items = sorted({one() for _ in range(rng.randint(1, 5))})
        out += ["-m", "multiport"] + (["!"] if rng.random() < 0.2 else []) + [which, ",".join(items)]
    if proto == "tcp" and rng.random() < 0.15:
        out += rng.choice([["--syn"], ["!", "--syn"], ["--tcp-flags", "SYN,ACK", "SYN"],
                           ["--tcp-flags", "SYN,RST", "RST"]])
    return out


def _ipt_rule(rng: random.Random, pools: Pools, chain: str, targets: list[str]) -> str:
    parts: list[str] = ["-A", chain]
    if rng.random() < 0.3:
        parts += (["!"] if rng.random() < 0.3 else []) + ["-i", rng.choice(["lan0", "lan1", "lan+", "wan0"])]
    if rng.random() < 0.3:
        parts += (["!"] if rng.random() < 0.3 else []) + ["-o", rng.choice(["wan0", "wan1", "wan+", "lan1"])]
    listed = rng.random() < 0.15  # an address list: iptables-restore makes one rule per address (no "!" then)
    for flag, side in (("-s", "src"), ("-d", "dst")):
        if rng.random() < 0.5:
            prefix = _prefix_text(pools, rng.choice(getattr(pools, side)))
            if listed:
                parts += [flag, prefix + "," + _prefix_text(pools, rng.choice(getattr(pools, side)))]
            else:
                parts += (["!"] if rng.random() < 0.2 else []) + [flag, prefix]
    if rng.random() < 0.1:
        net, length = rng.choice(pools.dst)
        a = net + rng.randrange(1 << (pools.bits - length))
        b = min(a + rng.randrange(1 << min(20, pools.bits - length + 1)), (DST_V6 if pools.v6 else DST_V4)[1])
        parts += ["-m", "iprange"] + (["!"] if rng.random() < 0.3 else []) + [
            "--dst-range", f"{_addr_text(a, pools.v6)}-{_addr_text(b, pools.v6)}"]
    r = rng.random()
    icmp = "ipv6-icmp" if pools.v6 else "icmp"
    proto = None
    if r < 0.6:
        proto = rng.choice(["tcp", "tcp", "udp", icmp])
        parts += ["-p", rng.choice({"tcp": ["tcp", "tcp", "6"], "udp": ["udp", "udp", "17"]}.get(proto, [proto]))]
        if proto in ("tcp", "udp"):
            parts += _ipt_ports(rng, pools, proto)
        elif rng.random() < 0.6:
            names = (["echo-request", "echo-reply", "destination-unreachable", "port-unreachable", "128", "1/4",
                      "neighbour-solicitation", "time-exceeded"] if pools.v6 else
                     ["echo-request", "echo-reply", "destination-unreachable", "port-unreachable", "8", "3/3",
                      "timestamp-request", "time-exceeded", "any", "3/13", "11/0", "source-quench", "14"])
            opt = "--icmpv6-type" if pools.v6 else "--icmp-type"
            parts += (["!"] if rng.random() < 0.2 else []) + [opt, rng.choice(names)]
    elif r < 0.7:
        parts += ["!", "-p", rng.choice(["tcp", "udp", icmp, "253"])]
    elif r < 0.75:
        parts += ["-p", rng.choice(["253", "all", "0"])]
    if rng.random() < 0.25:
        # (not SNAT/DNAT: without NAT rules they never hold, but segverify flags them as approximated)
        states = rng.choice(["NEW", "INVALID", "NEW,UNTRACKED", "ESTABLISHED,RELATED", "UNTRACKED", "NEW,INVALID",
                             "RELATED", "INVALID,UNTRACKED"])
        if rng.random() < 0.3:
            states = rng.choice(["NEW", "INVALID", "NEW,UNTRACKED", "ESTABLISHED,RELATED", "UNTRACKED"])
            parts += ["-m", "state"] + (["!"] if rng.random() < 0.3 else []) + ["--state", states]
        else:
            parts += ["-m", "conntrack"] + (["!"] if rng.random() < 0.3 else []) + ["--ctstate", states]
    if rng.random() < 0.1:
        parts += ["-m", "comment", "--comment", f'"rule {rng.randint(1, 99)}"']
    target = rng.choice(targets)
    if target == "REJECT":
        if proto == "tcp" and rng.random() < 0.5:
            parts += ["-j", "REJECT", "--reject-with", "tcp-reset"]
        else:
            parts += ["-j", "REJECT", "--reject-with",
                      "icmp6-adm-prohibited" if pools.v6 else "icmp-host-prohibited"]
    elif target.startswith("goto "):
        parts += ["-g", target[5:]]
    else:
        parts += ["-j", target]
    return " ".join(parts)


def random_iptables(rng: random.Random, pools: Pools) -> str:
    """An ``iptables-save`` (or ``ip6tables-save``) text: raw, mangle and filter, user chains included."""
    fam = "ip6tables-save" if pools.v6 else "iptables-save"
    lines = [f"# Generated by {fam} v1.8.9 (nf_tables) on oracle"]
    raw = ["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    if rng.random() < 0.3:
        raw.append(f"-A PREROUTING -s {_prefix_text(pools, rng.choice(pools.src))} -j "
                   + rng.choice(["CT --notrack", "NOTRACK"]).replace("NOTRACK", "CT --notrack"))
    lines += raw + ["COMMIT"]
    mangle = ["*mangle"] + [f":{c} ACCEPT [0:0]" for c in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")]
    if rng.random() < 0.3:
        mangle.append(f"-A {rng.choice(['PREROUTING', 'FORWARD'])} -d {_prefix_text(pools, rng.choice(pools.dst))} "
                      f"-p udp -j DROP")
    lines += mangle + ["COMMIT"]
    n_user = rng.randint(0, 3)
    users = [f"U{k}" for k in range(n_user)]
    body: list[str] = []
    for k, name in enumerate(users):
        later = users[k + 1:]
        targets = ["ACCEPT", "DROP", "REJECT", "RETURN", "RETURN"] + later + [f"goto {u}" for u in later]
        body += [_ipt_rule(rng, pools, name, targets) for _ in range(rng.randint(1, 5))]
    targets = ["ACCEPT", "ACCEPT", "DROP", "REJECT"] + users * 2 + [f"goto {u}" for u in users]
    if rng.random() < 0.2:
        targets.append("RETURN")  # in a built-in chain: the policy decides
    body = [_ipt_rule(rng, pools, "FORWARD", targets) for _ in range(rng.randint(2, 10))] + body
    policy = rng.choice(["ACCEPT", "DROP"])
    lines += ["*filter", ":INPUT ACCEPT [0:0]", f":FORWARD {policy} [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":{u} - [0:0]" for u in users] + body + ["COMMIT", ""]
    return "\n".join(lines)


# --- nftables text -----------------------------------------------------------------------------


def _nft_set(rng: random.Random, items: list[str]) -> str:
    return items[0] if len(items) == 1 and rng.random() < 0.7 else "{ " + ", ".join(items) + " }"


def _nft_disjoint(prefixes: list[tuple[int, int]], bits: int) -> list[tuple[int, int]]:
    """Drop prefixes that overlap an earlier one (nft refuses overlapping set and map keys)."""
    kept: list[tuple[int, int]] = []
    for net, length in prefixes:
        hi = net + (1 << (bits - length)) - 1
        if all(hi < n or net > n + (1 << (bits - ln)) - 1 for n, ln in kept):
            kept.append((net, length))
    return kept


def _nft_rule(rng: random.Random, families: Sequence[Pools], verdicts: list[str], sets: dict[str, bool],
              inet: bool = True) -> str:
    parts: list[str] = []
    if rng.random() < 0.3:
        op = "!= " if rng.random() < 0.3 else ""
        parts.append(f"iifname {op}" + _nft_set(rng, [f'"{n}"' for n in rng.sample(["lan0", "lan1", "lan*", "wan0"],
                                                                                      rng.randint(1, 2))]))
    if rng.random() < 0.3:
        op = "!= " if rng.random() < 0.3 else ""
        parts.append(f"oifname {op}" + _nft_set(rng, [f'"{n}"' for n in rng.sample(["wan0", "wan1", "wan*", "lan1"],
                                                                                      rng.randint(1, 2))]))
    pools = rng.choice(families)
    key = "ip6" if pools.v6 else "ip"
    if rng.random() < 0.85:
        for word, side in (("saddr", "src"), ("daddr", "dst")):
            if rng.random() < 0.5:
                op = "!= " if rng.random() < 0.2 else ""
                named = [s for s, v6 in sets.items() if v6 == pools.v6 and s.startswith(side)]
                if named and rng.random() < 0.3:
                    parts.append(f"{key} {word} {op}@{rng.choice(named)}")
                elif rng.random() < 0.1:  # a range
                    net, length = rng.choice(getattr(pools, side))
                    a = net + rng.randrange(1 << (pools.bits - length))
                    b = a + rng.randrange(1 << min(24, pools.bits - length + 1))
                    hi = (SRC_V6 if side == "src" else DST_V6)[1] if pools.v6 else (SRC_V4 if side == "src"
                                                                                    else DST_V4)[1]
                    parts.append(f"{key} {word} {op}{_addr_text(a, pools.v6)}-{_addr_text(min(b, hi), pools.v6)}")
                else:
                    chosen = _nft_disjoint(rng.sample(getattr(pools, side), rng.randint(1, 2)), pools.bits)
                    parts.append(f"{key} {word} {op}" + _nft_set(rng, [_prefix_text(pools, c) for c in chosen]))
    elif inet and rng.random() < 0.3:
        parts.append(rng.choice([f"meta nfproto {'ipv6' if pools.v6 else 'ipv4'}",
                                 f"meta nfproto != {'ipv6' if pools.v6 else 'ipv4'}"]))
    r = rng.random()
    icmp = "icmpv6" if pools.v6 else "icmp"
    proto = None
    if r < 0.55:
        proto = rng.choice(["tcp", "tcp", "udp", icmp])
        which = rng.random()
        if proto in ("tcp", "udp") and which < 0.08 and "ports" in sets:
            parts.append(f"{proto} {rng.choice(['dport', 'sport'])} {rng.choice(['', '!= '])}@ports")
        elif proto in ("tcp", "udp") and which < 0.15:  # the protocol by another name, then th
            parts.append(rng.choice([f"{key} {'nexthdr' if pools.v6 else 'protocol'} {proto}",
                                     f"meta l4proto {proto}"]) + f" th dport {rng.choice(pools.ports)}")
        elif proto in ("tcp", "udp") and which < 0.22:  # a concatenation
            net, length = rng.choice(pools.src)
            parts.append(f"{key} saddr . {proto} dport {{ {_prefix_text(pools, (net, length))} . "
                         f"{rng.choice(pools.ports)} }}")
        elif proto in ("tcp", "udp") and which < 0.6:
            words = rng.choice(["dport", "dport", "sport"])
            op = "!= " if rng.random() < 0.2 else ""
            items = []
            for _ in range(rng.randint(1, 3)):
                a = rng.choice(pools.ports)
                items.append(f"{a}-{min(65535, a + rng.choice([1, 10, 1000]))}" if rng.random() < 0.4 else str(a))
            items = _dedup_ports(items)
            parts.append(f"{proto} {words} {op}" + _nft_set(rng, items))
            if proto == "tcp" and rng.random() < 0.15:
                # (not "tcp flags != syn": an ECN-setup SYN matches it, so segverify rightly approximates it)
                parts.append(rng.choice(["tcp flags syn", "tcp flags & (syn | ack) == syn",
                                         "tcp flags & (syn | rst) == rst"]))
        elif proto == icmp and which < 0.6:
            names = (["echo-request", "echo-reply", "destination-unreachable", "nd-neighbor-solicit", "packet-too-big"]
                     if pools.v6 else ["echo-request", "echo-reply", "destination-unreachable", "timestamp-request",
                                       "time-exceeded"])
            op = "!= " if rng.random() < 0.2 else ""
            parts.append(f"{icmp} type {op}" + _nft_set(rng, rng.sample(names, rng.randint(1, 2))))
            if rng.random() < 0.2:
                # nft 1.0.6 compiles "icmp type != A icmp code != B" as (type, code) != (A, B): never both
                codes = ['0', '1', '3', '4', '1-4'] + ([] if op else ['!= 0'])
                parts.append(f"{icmp} code {rng.choice(codes)}")
        else:
            parts.append(f"meta l4proto {proto}")
    elif r < 0.65:
        parts.append("meta l4proto != " + _nft_set(rng, rng.sample(["tcp", "udp", icmp], rng.randint(1, 2))))
    if rng.random() < 0.25:
        op = "!= " if rng.random() < 0.3 else ""
        parts.append(f"ct state {op}" + _nft_set(rng, rng.sample(["new", "invalid", "untracked", "established",
                                                                  "related"], rng.randint(1, 2))))
    if rng.random() < 0.1:
        parts.append("counter")
    verdict = rng.choice(verdicts)
    if verdict == "reject":
        # each "with" implies a match nft adds and its listings leave out (tcp: TCP only, icmp: IPv4 only …)
        choices = ["reject", "reject with icmpx type admin-prohibited" if inet else "reject"]
        text = " ".join(parts)
        if proto in (None, "tcp") and "l4proto" not in text:
            choices.append("reject with tcp reset")
        if inet and "ip6 " not in text and "icmpv6" not in text and "nfproto" not in text:
            choices.append("reject with icmp type host-unreachable")
        if inet and "ip " not in text and not re.search(r"\bicmp\b", text) and "nfproto" not in text:
            choices.append("reject with icmpv6 type admin-prohibited")
        verdict = rng.choice(choices)
    if verdict == "vmap" and rng.random() < 0.3:
        outs = [v for v in verdicts if v not in ("vmap", "reject")]
        if rng.random() < 0.5:
            return " ".join(parts + ["meta l4proto vmap { tcp : " + rng.choice(outs) + ", udp : "
                                     + rng.choice(outs) + " }"])
        return " ".join(parts + ["ct state vmap { new : " + rng.choice(outs) + ", invalid : " + rng.choice(outs)
                                 + ", untracked : " + rng.choice(outs) + " }"])
    if verdict == "vmap":
        chosen = _nft_disjoint(rng.sample(pools.dst, rng.randint(1, len(pools.dst))), pools.bits)
        outs = [v for v in verdicts if v not in ("vmap", "reject")]
        items = [f"{_prefix_text(pools, c)} : {rng.choice(outs)}" for c in chosen]
        return " ".join(parts + [f"{key} daddr vmap {{ " + ", ".join(items) + " }"])
    return " ".join(parts + [verdict])


def _dedup_ports(items: list[str]) -> list[str]:
    """Keep port items that do not overlap (nft refuses overlapping intervals in an anonymous set)."""
    kept: list[tuple[int, int]] = []
    out: list[str] = []
    for it in items:
        lo, _, hi = it.partition("-")
        a, b = int(lo), int(hi or lo)
        if all(b < x or a > y for x, y in kept):
            kept.append((a, b))
            out.append(it)
    return out


def random_nft(rng: random.Random, p4: Pools, p6: Pools) -> str:
    """An ``nft list ruleset``-style text: an inet table with user chains and named sets, maybe a second
    forward base chain (both must accept) and a raw-priority notrack chain."""
    sets: dict[str, bool] = {}
    lines = ["flush ruleset", "", "table inet filter {"]
    for pools in (p4, p6):
        for side in ("src", "dst"):
            if rng.random() < 0.5:
                name = f"{side}{6 if pools.v6 else 4}"
                sets[name] = pools.v6
                pool = getattr(pools, side)
                elems = _nft_disjoint(rng.sample(pool, rng.randint(1, min(3, len(pool)))), pools.bits)
                lines += [f"\tset {name} {{", f"\t\ttype {'ipv6_addr' if pools.v6 else 'ipv4_addr'}",
                          "\t\tflags interval",
                          "\t\telements = { " + ", ".join(_prefix_text(pools, e) for e in elems) + " }", "\t}"]
    if rng.random() < 0.4:
        sets["ports"] = False
        items = _dedup_ports([f"{a}-{min(65535, a + 100)}" if rng.random() < 0.4 else str(a)
                              for a in rng.sample(p4.ports, min(3, len(p4.ports)))])
        lines += ["\tset ports {", "\t\ttype inet_service", "\t\tflags interval",
                  "\t\telements = { " + ", ".join(items) + " }", "\t}"]
    users = [f"u{k}" for k in range(rng.randint(0, 3))]
    chains: list[tuple[str, list[str]]] = []
    base_verdicts = ["accept", "accept", "drop", "reject", "vmap"] + [f"jump {u}" for u in users] + \
        [f"goto {u}" for u in users]
    chains.append(("forward", [_nft_rule(rng, (p4, p6), base_verdicts, sets) for _ in range(rng.randint(2, 10))]))
    for k, u in enumerate(users):
        later = users[k + 1:]
        v = ["accept", "drop", "reject", "return", "return", "vmap"] + [f"jump {x}" for x in later] + \
            [f"goto {x}" for x in later]
        chains.append((u, [_nft_rule(rng, (p4, p6), v, sets) for _ in range(rng.randint(1, 5))]))
    policy = rng.choice(["accept", "drop"])
    for name, rules in chains:
        lines.append(f"\tchain {name} {{")
        if name == "forward":
            lines.append(f"\t\ttype filter hook forward priority filter; policy {policy};")
        lines += [f"\t\t{r}" for r in rules]
        lines.append("\t}")
    if rng.random() < 0.3:
        pools = rng.choice([p4, p6])
        key = "ip6" if pools.v6 else "ip"
        lines += ["\tchain pre {", "\t\ttype filter hook prerouting priority raw; policy accept;",
                  f"\t\t{key} saddr {_prefix_text(pools, rng.choice(pools.src))} notrack", "\t}"]
    if rng.random() < 0.25:  # other hooks on the path: no output interface yet / no input interface any more
        hook, prio = rng.choice([("prerouting", "-150"), ("postrouting", "0")])
        rule = _nft_rule(rng, (p4, p6), ["drop", "accept", "drop"], {})
        lines += ["\tchain other {", f"\t\ttype filter hook {hook} priority {prio}; policy accept;",
                  f"\t\t{rule}", "\t}"]
    lines.append("}")
    if rng.random() < 0.4:
        pools = rng.choice([p4, p6])
        fam = "ip6" if pools.v6 else "ip"
        rules = [_nft_rule(rng, (pools,), ["drop", "accept", "reject", "vmap"], {}, inet=False)
                 for _ in range(rng.randint(1, 3))]
        lines += [f"table {fam} second {{", "\tchain fw2 {",
                  f"\t\ttype filter hook forward priority {rng.choice([-10, 10])}; "
                  f"policy {rng.choice(['accept', 'accept', 'drop'])};"]
        lines += [f"\t\t{r}" for r in rules] + ["\t}", "}"]
    return "\n".join(lines) + "\n"


# --- one case: load, send, compare ---------------------------------------------------------------


@dataclass
class Disagreement:
    """One packet on which the kernel and segverify's reading of one text differ."""

    probe: Probe
    kernel: str  # "forwarded via wanN" or "dropped"
    segverify: str  # "allow by RULE" / "deny by the default" …
    source: str  # which text segverify read: "generated", "iptables-save" or "nft -j"

    def describe(self) -> str:
        return (f"{self.probe.describe()}: kernel {self.kernel}, segverify ({self.source} text) "
                f"{self.segverify}")


@dataclass
class CaseResult:
    seed: int
    kind: str
    text: str
    probes: int
    forwarded: int
    resent: int
    disagreements: list[Disagreement]

    def report(self, limit: int = 20) -> str:
        head = (f"{len(self.disagreements)} disagreement(s) in {self.kind} case, seed {self.seed} "
                f"(reproduce: random.Random({self.seed})); rule set:\n{self.text}\n")
        return head + "\n".join(d.describe() for d in self.disagreements[:limit])


SPACE: PacketSpace | None = None


def _space() -> PacketSpace:
    global SPACE
    if SPACE is None:
        SPACE = PacketSpace()
    return SPACE


def _bdd_member(space: PacketSpace, u: object, pkt: Packet) -> bool:
    """Whether ``pkt`` lies in the BDD ``u``: one walk from the root, following the packet's bits.

    Building the packet's own BDD (``space.packet``) costs ~0.2 ms in Python; this walk a tenth of it,
    which is what lets every probe be checked against the BDD engine too. Cross-checked with
    ``space.packet`` on a sample in ``segverify_verdicts``.
    """
    true, false = space.true, space.false
    neg = False
    node = u
    bit_of = _bit_names(space)
    while node != true and node != false:
        if node.negated:  # type: ignore[attr-defined]
            neg = not neg
        field_name, i = bit_of[node.var]  # type: ignore[attr-defined]
        value = pkt.get(field_name)
        if field_name in ("src", "dst"):
            v6 = value >= V6_BASE
            bit = v6 if i == 0 else bool(((value - V6_BASE if v6 else value << 96) >> (128 - i)) & 1)
        else:
            bit = bool((value >> (space.widths[field_name] - 1 - i)) & 1)
        node = node.high if bit else node.low  # type: ignore[attr-defined]
    return (node == true) != neg


_BIT_NAMES: dict[int, dict[str, tuple[str, int]]] = {}


def _bit_names(space: PacketSpace) -> dict[str, tuple[str, int]]:
    hit = _BIT_NAMES.get(id(space))
    if hit is None:
        hit = {v: (name, i) for name, vs in space.vars.items() for i, v in enumerate(vs)}
        _BIT_NAMES[id(space)] = hit
    return hit


def segverify_verdicts(ruleset: RuleSet, probes: Sequence[Probe], sample: int = 25) -> list[bool]:
    """segverify's verdict per probe: the first-match loop, which the BDD engine must confirm."""
    space = _space()
    compiled = compile_ruleset(space, ruleset, list(IFACES))
    out: list[bool] = []
    for k, p in enumerate(probes):
        pkt = p.packet()
        hop = compiled.hop(p.in_iface, p.out_iface)
        loop = ruleset.decide(pkt, p.in_iface, p.out_iface)[0] == "allow"
        bdd = _bdd_member(space, hop, pkt)
        if k < sample:  # the walk itself, against the engine's own packet set
            bdd_slow = (space.packet(pkt) & hop) != space.false
            if bdd_slow != bdd:
                raise AssertionError(f"BDD walk and space.packet disagree on {p.describe()}")
        if loop != bdd:
            raise AssertionError(f"segverify's first-match loop and BDD disagree on {p.describe()}")
        out.append(loop)
    return out


def _import(text: str, suffix: str, loader: Callable[[str, Sequence[str]], RuleSet]) -> RuleSet:
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as fh:
        fh.write(text)
    try:
        return loader(fh.name, IFACES)
    finally:
        os.unlink(fh.name)


def generate(kind: str, seed: int, n_packets: int) -> tuple[str, list[Probe]]:
    """The rule set text (``iptables``: iptables-save then ip6tables-save; ``nftables``) and the probes
    of one seed: the same seed gives the same case on every machine."""
    rng = random.Random(seed)
    p4, p6 = make_pools(rng, False), make_pools(rng, True)
    if kind == "iptables":
        text = random_iptables(rng, p4) + random_iptables(rng, p6)
    elif kind == "nftables":
        text = random_nft(rng, p4, p6)
    else:
        raise ValueError(kind)
    return text, make_probes(rng, p4, p6, n_packets)


def _split_families(text: str) -> tuple[str, str]:
    """An iptables text of this lab: its iptables-save part and its ip6tables-save part."""
    cut = text.find("# Generated by ip6tables-save")
    return (text, "") if cut < 0 else (text[:cut], text[cut:])


def check_text(lab: KernelLab, kind: str, text: str, probes: Sequence[Probe], nonce: int,
               reread: bool = True) -> tuple[list[Disagreement], int, int]:
    """Load ``text`` into the router, send ``probes``, and compare the kernel's fate of each with
    segverify's verdict on the text and (``reread``) on the kernel's own export of what it loaded.
    Returns the disagreements, how many probes were forwarded, and how many were sent twice."""
    lab.reset()
    readings: list[tuple[str, RuleSet]] = []
    if kind == "iptables":
        v4, v6 = _split_families(text)
        lab.load_iptables(v4, v6 or EMPTY_TABLES)
        readings.append(("generated", _import(text, ".rules", ipt_importer.load)))
        if reread:
            readings.append(("iptables-save", _import(lab.save_iptables(), ".rules", ipt_importer.load)))
    else:
        lab.load_nft(text)
        readings.append(("generated", _import(text, ".nft", nft_importer.load)))
        if reread:
            readings.append(("nft -j", _import(lab.nft_json(), ".json", nft_importer.load_json)))
    seen = lab.send(probes, nonce)
    verdicts = [(source, segverify_verdicts(rs, probes)) for source, rs in readings]
    rulesets = dict(readings)
    # a packet segverify lets through that did not show up is sent once more, alone, before it counts
    missing = [p for k, p in enumerate(probes) if p.index not in seen and any(v[k] for _, v in verdicts)]
    if missing:
        seen.update(lab.send(missing, nonce, batch=1, quiet=0.05))
    bad: list[Disagreement] = []
    for k, p in enumerate(probes):
        egress = seen.get(p.index)
        if egress is not None and egress != p.out_iface:
            bad.append(Disagreement(p, f"forwarded via {egress}", f"(the lab routes it via {p.out_iface})", "lab"))
            continue
        for source, v in verdicts:
            if v[k] != (egress is not None):
                action, rule = rulesets[source].decide(p.packet(), p.in_iface, p.out_iface)
                why = f"by {rule.id} ({rule.source})" if rule else "by the default"
                if rule and rule.approximation:
                    why += f", approximated: {rule.approximation}"
                bad.append(Disagreement(p, f"forwarded via {egress}" if egress else "dropped", f"{action} {why}",
                                        source))
    return bad, len(seen), len(missing)


def run_case(lab: KernelLab, kind: str, seed: int, n_packets: int, reread: bool = True) -> CaseResult:
    """One random rule set of ``kind`` (``iptables`` or ``nftables``) with ``n_packets`` probes."""
    text, probes = generate(kind, seed, n_packets)
    bad, forwarded, resent = check_text(lab, kind, text, probes, seed & 0xFFFFFFFF, reread)
    return CaseResult(seed, kind, text, len(probes), forwarded, resent, bad)


def _rule_lines(kind: str, lines: list[str]) -> list[int]:
    if kind == "iptables":
        return [k for k, line in enumerate(lines) if line.startswith("-A ")]
    return [k for k, line in enumerate(lines) if line.startswith("\t\t") and not line.lstrip().startswith(
        ("type ", "flags ", "elements "))]


def minimise(lab: KernelLab, result: CaseResult, budget: float = 60.0) -> tuple[str, Disagreement] | None:
    """The first disagreement of ``result`` with its rule set cut down to the rules it needs: rules are
    deleted one at a time while the kernel and segverify still disagree on that packet."""
    if not result.disagreements:
        return None
    first = result.disagreements[0]
    probe = first.probe
    lines = result.text.splitlines()
    deadline = time.monotonic() + budget
    for k in reversed(_rule_lines(result.kind, lines)):
        if time.monotonic() > deadline:
            break
        trial = lines[:k] + lines[k + 1:]
        try:
            bad, _, _ = check_text(lab, result.kind, "\n".join(trial) + "\n", [probe], 0xD1FF)
        except Exception:  # noqa: BLE001 - a cut that nft refuses (a chain left unused is fine) is not kept
            continue
        if bad:
            lines = trial
            first = bad[0]
    return "\n".join(lines) + "\n", first
