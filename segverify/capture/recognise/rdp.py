"""RDP over TCP: the TPKT + X.224 connection sequence that every RDP session starts with ([MS-RDPBCGR] 1.3.1.1).

Why these checks:

* The client's first PDU is a TPKT header (``03 00`` + 16-bit length, RFC 1006) around an X.224 Connection
  Request (TPDU code ``0xE0``, class 0). Its variable part holds, in this order and nothing else, an
  optional ``Cookie: mstshash=<user>`` or ``Cookie: msts=<routing token>`` line, an optional
  RDP_NEG_REQ (type 1, length 8, requested protocols) and an optional RDP_NEG_CORRELATION_INFO (type 6,
  length 36) [MS-RDPBCGR 2.2.1.1]. The lengths must agree (TPKT length = X.224 length indicator + 5).
* The server answers with an X.224 Connection Confirm (``0xD0``) carrying nothing, an RDP_NEG_RSP (type 2,
  the selected protocol) or an RDP_NEG_FAILURE (type 3) [2.2.1.2].
* What follows must fit what was negotiated: for PROTOCOL_SSL/HYBRID/RDSTLS/HYBRID_EX/RDSAAD the client
  sends a TLS ClientHello and the server a ServerHello (the TLS session *is* RDP's, because the X.224
  negotiation came first); for standard RDP security both sides continue with TPKT + X.224 Data + MCS
  Connect-Initial / Connect-Response (BER tags ``7F 65`` / ``7F 66``). After a negotiation failure the
  server closes, so nothing may follow. A flow that does the X.224 dance and then speaks something else
  is a tunnel dressed up as RDP, and is not recognised.
* TPKT + X.224 alone is not RDP: ISO-on-TCP protocols (S7comm on 102, MMS, ICCP) use the same framing
  with COTP parameters (TPDU size, TSAPs) in the variable part. Those parameters are rejected, and a
  bare Connection Request only counts as RDP when an RDP-specific element (cookie, negotiation PDU or
  MCS Connect-Initial) is present.
* TLS alone on 3389 without the X.224 exchange is not recognised here (it is plain TLS; see ``tls``).
  RD Gateway (RDP inside HTTPS on 443) is therefore not RDP to this recogniser either: what crosses the
  wire there is TLS.
"""

from __future__ import annotations

from ._util import be16, le16, le32, printable

NAME = "rdp"

_CR, _CC = 0xE0, 0xD0
_NEG_REQ, _NEG_RSP, _NEG_FAILURE, _CORRELATION = 1, 2, 3, 6
_PROTOCOLS = {0: "RDP", 1: "SSL", 2: "HYBRID", 4: "RDSTLS", 8: "HYBRID_EX", 0x10: "RDSAAD"}
_FAILURES = {
    1: "SSL_REQUIRED_BY_SERVER", 2: "SSL_NOT_ALLOWED_BY_SERVER", 3: "SSL_CERT_NOT_ON_SERVER",
    4: "INCONSISTENT_FLAGS", 5: "HYBRID_REQUIRED_BY_SERVER", 6: "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER",
}  # fmt: skip


def _x224(b: bytes, code: int) -> tuple[bytes, int, bool] | None:
    """(variable part, TPKT length, whole PDU present) of a TPKT + X.224 CR/CC, or None."""
    if len(b) < 11 or b[0] != 3 or b[1] != 0 or b[5] != code:
        return None
    tlen = be16(b, 2)
    if tlen < 11 or b[4] != tlen - 5 or b[10] & 0xF0:  # length indicator agrees; class 0
        return None
    if code == _CR and (b[6] or b[7]):  # the initiator cannot know the responder's reference yet
        return None
    return b[11:tlen], tlen, len(b) >= tlen


def _request(var: bytes, whole: bool) -> dict | None:
    """Parse a Connection Request's variable part; None when it holds anything RDP does not put there."""
    info: dict = {"cookie": None, "token": False, "requested": None, "correlation": False}
    rest = var
    if rest.startswith(b"Cookie: "):
        end = rest.find(b"\r\n")
        if end < 0:
            if whole:
                return None
            info["cookie"] = rest[8:]  # cut by the capture: what is there is still a cookie
            return info
        line = rest[8:end]
        if line.startswith(b"mstshash="):
            info["cookie"] = line[9:]
        elif line.startswith(b"msts="):
            info["token"] = True
        else:
            return None
        rest = rest[end + 2 :]
    if rest[:1] == bytes([_NEG_REQ]):
        if len(rest) < 8:
            return None if whole else info
        if rest[1] & 0xF0 or le16(rest, 2) != 8:
            return None
        info["requested"] = le32(rest, 4)
        rest = rest[8:]
    if rest[:1] == bytes([_CORRELATION]):
        if len(rest) < 4:
            return None if whole else info
        if le16(rest, 2) != 36 or (whole and len(rest) != 36):
            return None
        info["correlation"] = True
        rest = rest[36:]
    return info if not rest else None


def _confirm(var: bytes, whole: bool) -> tuple[str, int] | None:
    """('legacy'|'selected'|'failure', value) from a Connection Confirm's variable part, or None."""
    if not var:
        return ("legacy", 0) if whole else ("partial", 0)
    if var[0] not in (_NEG_RSP, _NEG_FAILURE):
        return None
    if len(var) < 8:
        return None if whole else ("partial", 0)
    if le16(var, 2) != 8 or len(var) != 8:
        return None
    return ("selected" if var[0] == _NEG_RSP else "failure", le32(var, 4))


def _tls_hello(b: bytes, hs_type: int) -> bool:
    """Do the bytes start like a TLS handshake record holding ``hs_type`` (checked as far as present)?"""
    want = ((0, {0x16}), (1, {3}), (2, set(range(5))), (5, {hs_type}))
    return bool(b) and all(len(b) <= i or b[i] in ok for i, ok in want)


def _mcs(b: bytes, tag: int) -> bool:
    """TPKT + X.224 Data (``02 F0 80``) + MCS Connect-Initial/Response (BER ``7F 65``/``7F 66``)."""
    want = ((0, 3), (1, 0), (4, 2), (5, 0xF0), (6, 0x80), (7, 0x7F), (8, tag))
    return bool(b) and all(len(b) <= i or b[i] == v for i, v in want)


def _protocols(mask: int) -> str:
    if mask == 0:
        return "RDP"
    names = [n for bit, n in _PROTOCOLS.items() if bit and mask & bit]
    unknown = mask & ~sum(_PROTOCOLS)
    return "|".join(names + ([f"0x{unknown:x}"] if unknown else []))


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text when the flow starts with RDP's X.224 negotiation and continues consistently."""
    if proto != 6:
        return None
    cr = _x224(client, _CR)
    if cr is None:
        return None
    var, tlen, whole = cr
    req = _request(var, whole)
    if req is None:
        return None
    client_next = client[tlen:] if whole else b""

    outcome: tuple[str, int] | None = None
    server_next = b""
    if server:
        cc = _x224(server, _CC)
        if cc is None:
            return None  # the server did not answer as an RDP server
        outcome = _confirm(cc[0], cc[2])
        if outcome is None:
            return None
        server_next = server[cc[1] :] if cc[2] else b""

    kind = outcome[0] if outcome else "none"
    if kind == "selected" and outcome and outcome[1] != 0:
        after = "TLS"
        ok = (not client_next or _tls_hello(client_next, 1)) and (not server_next or _tls_hello(server_next, 2))
    elif kind in ("selected", "legacy"):
        after = "MCS"
        ok = (not client_next or _mcs(client_next, 0x65)) and (not server_next or _mcs(server_next, 0x66))
    elif kind == "failure":
        after = ""
        ok = not client_next and not server_next
    else:  # no (complete) confirm seen: the client's own continuation must still be one of the two
        after = "TLS" if _tls_hello(client_next, 1) else "MCS" if _mcs(client_next, 0x65) else ""
        ok = not client_next or bool(after)
    if not ok:
        return None
    rdp_specific = (
        req["cookie"] is not None or req["token"] or req["requested"] is not None
        or kind in ("selected", "failure") or (after == "MCS" and (client_next or server_next))
    )  # fmt: skip
    if not rdp_specific:
        return None

    parts = ["TPKT/X.224 Connection Request"]
    notes = []
    if req["cookie"] is not None:
        notes.append(f"cookie mstshash={printable(req['cookie'], 40)}")
    if req["token"]:
        notes.append("routing token")
    if req["requested"] is not None:
        notes.append(f"requests {_protocols(req['requested'])}")
    if notes:
        parts.append(f"({', '.join(notes)})")
    if outcome is None:
        parts.append("; no server reply seen")
    elif kind == "selected":
        sel = outcome[1]
        parts.append(f"→ Connection Confirm selecting {_PROTOCOLS.get(sel, f'0x{sel:x}')}")
    elif kind == "failure":
        parts.append(f"→ negotiation failure {_FAILURES.get(outcome[1], outcome[1])}")
    elif kind == "legacy":
        parts.append("→ Connection Confirm without negotiation (standard RDP security)")
    else:
        parts.append("→ Connection Confirm (cut short in the capture)")
    if after == "TLS" and (client_next or server_next):
        parts.append("; TLS follows")
    elif after == "MCS" and (client_next or server_next):
        parts.append("; MCS Connect-Initial follows (RDP standard security)")
    return " ".join(parts).replace(" ;", ";")
