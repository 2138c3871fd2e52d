"""FTP control (RFC 959): the server's ``220`` greeting (or ``120`` "ready soon") and a client command.

Why: files may leave a sanitizer by FTP, and FTP on a screen-transfer channel is a file path, not screen
transfer. A ``220`` greeting alone is also SMTP's, so the client's first line must be an FTP command that
opens a session (USER, AUTH, FEAT, SYST, OPTS, HOST, or the anonymous-login ACCT/PASS some clients send
first); SMTP is tried first and needs EHLO/HELO, so the two never both match.
"""

from __future__ import annotations

import re

from ._util import first_line, printable

NAME = "ftp"

_COMMAND = re.compile(rb"(USER|AUTH|FEAT|SYST|OPTS|HOST|ACCT|PASS|CLNT)(?: (.{0,255}))?", re.IGNORECASE | re.DOTALL)
_GREETING = re.compile(rb"(?:120|220)(?:[ -](.*))?", re.DOTALL)


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text when a client opens an FTP session (and the server's greeting, if captured, agrees)."""
    if proto != 6:
        return None
    cline, sline = first_line(client, 1024), first_line(server, 1024)
    command = _COMMAND.fullmatch(cline) if cline is not None else None
    if command is None:
        return None
    greeting = _GREETING.fullmatch(sline) if sline is not None else None
    if server and greeting is None:
        return None
    verb = command.group(1).decode().upper()
    text = f"FTP: client {verb}" + (f" {printable(command.group(2) or b'', 40)}" if verb != "PASS" else "")
    return text.rstrip() + (f", server greeting '{printable(sline or b'', 60)}'" if greeting else
                            ", no server greeting seen")
