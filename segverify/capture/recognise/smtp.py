"""SMTP (RFC 5321): the server's ``220`` greeting and the client's ``EHLO``/``HELO`` (or LMTP ``LHLO``).

Why: mail across a screen-transfer channel is a file-transfer path, not screen transfer. A ``220``
greeting alone is not enough (FTP greets with ``220`` too), so the client's first command must be
EHLO/HELO/LHLO; the server's first line, when captured, must be a 220 reply (single or multi-line,
``220 `` or ``220-``). With no client bytes, a 220 greeting that itself says SMTP (``ESMTP``, ``SMTP``)
is accepted. A STARTTLS command among the client's first lines is noted: what follows it is TLS.
"""

from __future__ import annotations

import re

from ._util import first_line, lines, printable

NAME = "smtp"

_HELLO = re.compile(rb"(EHLO|HELO|LHLO)(?: (.{0,255}))?", re.IGNORECASE | re.DOTALL)
_GREETING = re.compile(rb"220(?:[ -](.*))?", re.DOTALL)


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text when a 220 greeting and an EHLO/HELO open the flow."""
    if proto != 6:
        return None
    cline, sline = first_line(client, 1024), first_line(server, 1024)
    hello = _HELLO.fullmatch(cline) if cline is not None else None
    greeting = _GREETING.fullmatch(sline) if sline is not None else None
    if server and greeting is None:
        return None
    if hello is None:
        if client or greeting is None or not re.search(rb"smtp", sline or b"", re.IGNORECASE):
            return None
        return f"SMTP greeting '{printable(sline or b'', 60)}' (client side not captured)"
    text = f"SMTP: client {hello.group(1).decode().upper()} {printable(hello.group(2) or b'', 60)}".rstrip()
    text += f", server greeting '{printable(sline or b'', 60)}'" if greeting else ", no server greeting seen"
    if any(line.strip().upper() == b"STARTTLS" for line in lines(client, max_lines=32)):
        text += "; STARTTLS follows"
    return text
