"""FTP control connections (RFC 959, RFC 2428): which files moved, which way, over which data connection.

Why: a file-sanitization channel may hand files to its peer by FTP. The file itself travels on a separate
data connection whose port is negotiated on the control connection (PORT/EPRT for active mode, the 227/229
replies to PASV/EPSV for passive mode). To judge the file's content, replay must find that data connection
in the flow table; this module reads the two directions of a reassembled control connection and says, for
each transfer, its command, file name, direction and the data connection's expected endpoints.

Commands and replies are paired in lockstep, as the protocol requires: after the greeting, every command
is answered by zero or more preliminary (1yz) replies and one completion reply. Multi-line replies
(``123-`` … ``123 ``) count as one. ``AUTH TLS``/``AUTH SSL`` accepted with 234 encrypts the rest: the
session is then marked ``encrypted`` and no later transfer can be seen.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_LINES = 100_000  # a control connection holds commands, not data: more lines than this is not FTP
MAX_LINE = 4096

UPLOAD, DOWNLOAD = "upload", "download"  # as seen from the client of the control connection
TRANSFER_COMMANDS = {"RETR": DOWNLOAD, "STOR": UPLOAD, "STOU": UPLOAD, "APPE": UPLOAD}

_PASV = re.compile(rb"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV = re.compile(rb"\((.)\1\1(\d{1,5})\1\)")


@dataclass(frozen=True)
class DataEndpoint:
    """Where the data connection goes: ``connector`` opens a TCP connection to (address, port)."""

    connector: str  # "client" (passive mode) or "server" (active mode)
    address: int | None  # unified integer address (IPv6 = 2**128 + address); None: the control peer's
    port: int


@dataclass
class FtpTransfer:
    command: str  # RETR, STOR, STOU, APPE
    filename: str
    direction: str  # UPLOAD or DOWNLOAD, from the control client's point of view
    data: DataEndpoint | None  # None: no PORT/PASV preceded it (the default data port, RFC 959 3.2)
    reply: int | None  # the completion reply code (226 = done), None if the capture ended first
    accepted: bool  # a 1yz or 2yz reply: the server started (or finished) the transfer


@dataclass
class FtpSession:
    transfers: list[FtpTransfer]
    encrypted: bool  # AUTH TLS/SSL accepted: what followed could not be read
    malformed: str | None  # why the control stream stopped being readable as FTP


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n", MAX_LINES)[:MAX_LINES]
    return [line.rstrip(b"\r")[:MAX_LINE] for line in lines]


def _replies(data: bytes) -> list[tuple[int, bytes]]:
    """Server replies as (code, text of all its lines); a multi-line reply is one entry."""
    out: list[tuple[int, bytes]] = []
    pending: tuple[int, list[bytes]] | None = None
    for line in _lines(data):
        if pending is not None:
            pending[1].append(line)
            if len(line) >= 4 and line[:3] == str(pending[0]).encode() and line[3:4] == b" ":
                out.append((pending[0], b"\n".join(pending[1])))
                pending = None
            continue
        if len(line) >= 3 and line[:3].isdigit():
            code = int(line[:3])
            if line[3:4] == b"-":
                pending = (code, [line])
            else:
                out.append((code, line))
    return out


def _address(text: bytes) -> int | None:
    try:
        ip = ipaddress.ip_address(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    return int(ip) if ip.version == 4 else (1 << 128) + int(ip)


def _hostport(m: re.Match[bytes]) -> tuple[int | None, int] | None:
    parts = [int(x) for x in m.groups()]
    if any(p > 255 for p in parts):
        return None
    return _address(".".join(map(str, parts[:4])).encode()), parts[4] * 256 + parts[5]


def _eprt(arg: bytes) -> tuple[int | None, int] | None:
    """``EPRT |1|132.235.1.2|6275|`` (RFC 2428): any delimiter, protocol 1 (IPv4) or 2 (IPv6)."""
    if len(arg) < 7:
        return None
    fields = arg.split(arg[:1])
    if len(fields) != 5 or fields[1] not in (b"1", b"2") or not fields[3].isdigit():
        return None
    port = int(fields[3])
    return (_address(fields[2]), port) if 0 < port < 65536 else None


def parse_session(client: bytes, server: bytes) -> FtpSession:
    """The transfers of one control connection, from its two reassembled directions."""
    replies = _replies(server)
    at = 0

    def completion() -> tuple[int | None, bool]:
        """Consume the replies to one command: (final code, whether a 1yz/2yz reply came)."""
        nonlocal at
        ok = False
        while at < len(replies):
            code, _ = replies[at]
            at += 1
            if 100 <= code < 300:
                ok = True
            if code >= 200:
                return code, ok
        return None, ok

    # the greeting (possibly preceded by 120 "ready in n minutes")
    completion()
    transfers: list[FtpTransfer] = []
    data: DataEndpoint | None = None
    for line in _lines(client):
        if not line.strip():
            continue
        verb, _, arg = line.partition(b" ")
        verb = verb.upper()
        if not verb.isalpha() or len(verb) > 4:
            return FtpSession(transfers, False, f"not an FTP command: {line[:40]!r}")
        start = at
        code, ok = completion()
        text = replies[at - 1][1] if at > start else b""
        name = verb.decode()
        if name == "AUTH" and code == 234:
            return FtpSession(transfers, True, None)
        if name == "PORT":
            m = _PASV.fullmatch(arg.strip())
            hp = _hostport(m) if m else None
            data = DataEndpoint("server", hp[0], hp[1]) if hp and code and code < 300 else data
        elif name == "EPRT":
            hp = _eprt(arg.strip())
            data = DataEndpoint("server", hp[0], hp[1]) if hp and code and code < 300 else data
        elif name == "PASV" and code == 227:
            m = _PASV.search(text)
            hp = _hostport(m) if m else None
            data = DataEndpoint("client", hp[0], hp[1]) if hp else data
        elif name == "EPSV" and code == 229:
            m = _EPSV.search(text)
            if m and 0 < int(m.group(2)) < 65536:
                data = DataEndpoint("client", None, int(m.group(2)))
        elif name in TRANSFER_COMMANDS:
            filename = arg.decode("utf-8", "replace")
            transfers.append(FtpTransfer(name, filename, TRANSFER_COMMANDS[name], data, code, ok))
            data = None  # a negotiated data port serves one transfer
    return FtpSession(transfers, False, None)
