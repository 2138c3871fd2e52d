"""SMB over NetBIOS session service (139) or direct TCP (445): the SMB1/SMB2/SMB3 header magic.

Why: file sharing across a screen-transfer channel defeats the point of screen transfer (files cross, not
pixels). Checks: a session message (type ``00``) with a length that covers at least the SMB header, then
``FF 'SMB'`` (SMB1, 32-byte header), ``FE 'SMB'`` (SMB2/3, 64-byte header), ``FD 'SMB'`` (SMB3 transform,
encrypted) or ``FC 'SMB'`` (SMB3 compression). On port 139 a NetBIOS session request (``81``) and the
positive response (``82``) may come first and are skipped, their lengths bounded by the bytes present.
The command (e.g. NEGOTIATE) is put in the detail.
"""

from __future__ import annotations

from ._util import be16, be24, le16

NAME = "smb"

_SMB1_CMDS = {0x72: "NEGOTIATE", 0x73: "SESSION_SETUP_ANDX", 0x75: "TREE_CONNECT_ANDX", 0xA2: "NT_CREATE_ANDX",
              0x25: "TRANSACTION", 0x32: "TRANSACTION2", 0x2E: "READ_ANDX", 0x2F: "WRITE_ANDX"}  # fmt: skip
_SMB2_CMDS = {0: "NEGOTIATE", 1: "SESSION_SETUP", 2: "LOGOFF", 3: "TREE_CONNECT", 5: "CREATE", 6: "CLOSE",
              8: "READ", 9: "WRITE", 11: "IOCTL", 14: "QUERY_DIRECTORY", 16: "QUERY_INFO"}  # fmt: skip
_HEADER_MIN = {0xFF: 32, 0xFE: 64, 0xFD: 52, 0xFC: 16}


def _nbss_skip(b: bytes, kind: int) -> bytes | None:
    """Drop a leading NetBIOS message of type ``kind`` (81 request / 82 response) if present."""
    if b[:1] == bytes([kind]):
        n = be16(b, 2)
        if n < 0 or b[1] & 0xFE:
            return None
        return b[4 + n + ((b[1] & 1) << 16) :]
    return b


def _smb(b: bytes) -> str | None:
    """Describe the SMB message in a NetBIOS session message at the start of ``b``, or None."""
    if len(b) < 8 or b[0] != 0 or b[5:8] != b"SMB" or b[4] not in _HEADER_MIN:
        return None
    length = be24(b, 1)  # direct TCP uses 24 bits; NBSS on 139 uses 17 (a 1-bit extension + 16)
    if length < _HEADER_MIN[b[4]]:
        return None
    magic = b[4]
    if magic == 0xFF:
        cmd = b[8] if len(b) > 8 else -1
        return "SMB1 " + _SMB1_CMDS.get(cmd, f"command 0x{cmd:02x}" if cmd >= 0 else "message")
    if magic == 0xFE:
        if le16(b, 8) != 64 and len(b) >= 10:  # StructureSize of the SMB2 header is always 64
            return None
        cmd = le16(b, 16)
        return "SMB2/3 " + _SMB2_CMDS.get(cmd, f"command {cmd}" if cmd >= 0 else "message")
    return "SMB3 encrypted (transform header)" if magic == 0xFD else "SMB3 compressed message"


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text when the client's first SMB message (after an optional NetBIOS session setup) is SMB."""
    if proto != 6:
        return None
    c = _nbss_skip(client, 0x81)
    s = _nbss_skip(server, 0x82)
    if c is None or s is None:
        return None
    described = _smb(c)
    via = "NetBIOS session, " if c is not client else ""
    if described:
        reply = _smb(s)
        tail = f"server answers {reply}" if reply else "no server reply seen" if not s else "server reply is not SMB"
        return f"{described} ({via}{tail})"
    if not client or (c is not client and not c):
        reply = _smb(s)
        if reply:
            return f"{reply} from the server ({via}client side not captured as SMB)"
    return None
