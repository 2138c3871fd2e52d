"""Protocol recognisers: what does a flow's first bytes say it really carries?

``segverify replay`` must confirm that a flow on a screen-transfer channel (無害化通信 by 画面転送) carries a
screen-transfer protocol and not a tunnel. A port number proves nothing; the first bytes each side sent
do, because every screen protocol opens with a negotiation of its own (RDP's X.224 Connection Request,
RFB's version line, ICA's detect string, ...). This package looks at those bytes, the way dpkt or Zeek's
analyzers do, with one small declarative module per protocol.

Each module exposes ``NAME`` and ``match(client, server, proto) -> str | None`` (a short evidence text when
it matches). :func:`identify` runs them in :data:`RECOGNISERS` order and returns the first match as an
:class:`Evidence`. Order matters in one place: RDP comes before TLS, because an RDP session negotiates
in X.224 and then switches to TLS, and that TLS is RDP's. Screen-transfer recognisers come first; the
others (TLS, HTTP, SSH, SMB, SMTP, FTP, SOCKS) exist to *name* what must not pass as screen transfer, so a
report can say "this 3389 flow is TLS to vpn.example.com" instead of just "not RDP".

Hostile input: the bytes come from machines that may be compromised. Every recogniser is total (never
raises), never sizes an allocation or a loop from a length field in the data, and looks at no more
than :data:`MAX_BYTES` per direction; :func:`identify` also contains any exception a recogniser might
raise, so one bad flow cannot stop a replay (an exception counts as "no match", which can only make a
channel fail, never pass).

What cannot be confirmed from bytes at all is listed in :data:`UNVERIFIABLE` (PCoIP, Blast Extreme):
their recognisers never match, so channels declared with them never satisfy :func:`satisfies`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from . import blast, cgp, ftp, http, ica, pcoip, rdp, rdpudp, smb, smtp, socks, ssh, tls, vnc
from ._util import MAX_BYTES, hexdump

__all__ = [
    "MAX_BYTES",
    "PORT_HINTS",
    "RECOGNISERS",
    "SCREEN_PROTOCOLS",
    "UNVERIFIABLE",
    "Evidence",
    "identify",
    "satisfies",
]


@dataclass(frozen=True)
class Evidence:
    """What a flow's first bytes show: a recognised protocol name (None: nothing known) and why."""

    protocol: str | None
    detail: str


RECOGNISERS: tuple[ModuleType, ...] = (rdp, rdpudp, ica, cgp, vnc, pcoip, blast, tls, http, ssh, smb, smtp, ftp,
                                        socks)
"""Recogniser modules in the order :func:`identify` tries them (screen transfer first, RDP before TLS)."""

SCREEN_PROTOCOLS: dict[str, set[str]] = {
    "rdp": {"rdp", "rdp-udp"},
    "ica": {"ica", "cgp"},
    "vnc": {"vnc"},
    "pcoip": {"pcoip"},
    "blast": {"blast"},
}
"""A channel's declared protocol (topology value) -> recognised protocol names that satisfy it."""

UNVERIFIABLE: dict[str, str] = {"pcoip": pcoip.LIMITATION, "blast": blast.LIMITATION}
"""Declared protocols that no byte pattern can confirm, with the reason (for reports)."""

PORT_HINTS: dict[tuple[int, int], str] = {
    (6, 3389): "rdp", (17, 3389): "rdp-udp", (6, 1494): "ica", (6, 2598): "cgp",
    **{(6, p): "vnc" for p in range(5900, 5911)},
    (6, 4172): "pcoip", (17, 4172): "pcoip", (6, 22443): "blast", (17, 22443): "blast",
}  # fmt: skip
"""Where each screen protocol usually listens: used only to word the detail, never to decide."""


def identify(client: bytes, server: bytes, proto: int, dport: int) -> Evidence:
    """Name the protocol a flow's first bytes show.

    ``client``: the first bytes the initiator sent (its payloads concatenated in order), ``server``: the
    first bytes the responder sent; only the first :data:`MAX_BYTES` of each are looked at. ``proto`` is
    6 (TCP) or 17 (UDP); ``dport`` only adds a hint to the detail (e.g. that tcp/3389 usually carries
    RDP when what was seen is TLS) and never changes the verdict.
    """
    client = bytes(client[:MAX_BYTES])
    server = bytes(server[:MAX_BYTES])
    if not client and not server:
        return Evidence("empty", "no payload seen in either direction")
    failed = []
    for module in RECOGNISERS:
        try:
            detail = module.match(client, server, proto)
        except Exception as exc:  # noqa: BLE001 - contain recogniser bugs; counts as no match
            failed.append(f"{module.NAME} ({type(exc).__name__})")
            continue
        if detail:
            return Evidence(module.NAME, detail + _hint(module.NAME, proto, dport))
    parts = []
    if client:
        parts.append(f"client {hexdump(client)} ({len(client)} bytes)")
    if server:
        parts.append(f"server {hexdump(server)} ({len(server)} bytes)")
    detail = "no known protocol; first bytes " + ", ".join(parts)
    if failed:
        detail += "; recogniser error in " + ", ".join(failed)
    return Evidence(None, detail + _hint(None, proto, dport))


def _hint(name: str | None, proto: int, dport: int) -> str:
    usual = PORT_HINTS.get((proto, dport))
    if usual is None or usual == name:
        return ""
    where = f"{'tcp' if proto == 6 else 'udp' if proto == 17 else proto}/{dport}"
    if usual in UNVERIFIABLE:
        return f" [{where} usually carries {usual}, which cannot be confirmed from bytes]"
    return f" [{where} usually carries {usual}, whose negotiation was not seen]"


def satisfies(channel_protocol: str, ev: Evidence) -> bool:
    """Does the evidence show a protocol the channel's declared screen protocol allows?

    Only a positive recognition satisfies a channel: no payload, an unknown protocol, a tunnel, or a
    declared protocol that is not a screen protocol at all (or that cannot be confirmed from bytes, see
    :data:`UNVERIFIABLE`) all give False.
    """
    allowed = SCREEN_PROTOCOLS.get(str(channel_protocol).strip().lower())
    return bool(allowed) and ev.protocol in allowed
