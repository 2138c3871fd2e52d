"""SSH (RFC 4253 section 4.2): the identification string ``SSH-protoversion-softwareversion``.

Why: SSH is the classic way to tunnel anything (``-L``/``-D`` port forwarding, ``-w`` tun devices), so on a
screen-transfer channel it is a finding in itself. The client's first line must be its identification
string; the server may send other lines before its own (RFC 4253 allows it), so the server's first 16
lines are searched. Protocol versions 2.0, 1.99 and 1.5 are accepted; the software version is put in the
detail (it names the implementation).
"""

from __future__ import annotations

import re

from ._util import first_line, lines, printable

NAME = "ssh"

_IDENT = re.compile(rb"SSH-(2\.0|1\.99|1\.5)-([\x21-\x2c\x2e-\x7e][\x21-\x7e]{0,250})(?: .*)?", re.DOTALL)


def _ident(line: bytes | None) -> tuple[str, str] | None:
    if line is None:
        return None
    m = _IDENT.fullmatch(line[:255])
    return (m.group(1).decode(), printable(m.group(2), 60)) if m else None


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text when the client or server identifies itself as SSH."""
    if proto != 6:
        return None
    c = _ident(first_line(client, 256))
    s = next((x for x in map(_ident, lines(server, max_lines=16, limit=4096)) if x), None)
    if client and c is None:
        return None  # the client speaks first in SSH too; anything else is not an SSH client
    if c is None and s is None:
        return None
    parts = []
    if c:
        parts.append(f"client {c[1]}")
    if s:
        parts.append(f"server {s[1]}")
    version = (c or s)[0]  # type: ignore[index]
    return f"SSH-{version} identification ({', '.join(parts)})"
