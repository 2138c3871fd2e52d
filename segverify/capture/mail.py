"""SMTP transactions and MIME parts from reassembled TCP streams, for checking *mail-text* channels.

A municipal network's mail-text channel (メール無害化: 本文のテキスト化) may only carry mail reduced to plain
text. ``segverify replay`` proves that from a capture: it reassembles each SMTP connection
(:mod:`.tcpstream`), cuts the client's stream into transactions here (:func:`smtp_transactions`), and
lists what in each message is not plain text (:func:`non_text_parts`).

The guiding rule is **never report clean what could not be read**. Whatever stops a message from being
read exactly as the receiving server and mail client would -- STARTTLS, holes in the capture, a cap, a
message cut off, an end-of-data marker a lenient server would read differently (SMTP smuggling), MIME
the parser had to guess about -- makes the transaction or message *not inspectable*, with a reason.
:func:`non_text_parts` then returns a sentinel part (:data:`UNINSPECTABLE`), so a caller that only asks
"is the list empty?" still cannot conclude "text only".

How the SMTP dialogue is followed: the client's commands and the server's replies are paired in order
(one reply per command, plus the greeting, per AUTH continuation line, per end of DATA and per BDAT
chunk), which also holds under PIPELINING (RFC 2920). The server's replies decide what the server did
with the client's bytes -- whether DATA got 354 (otherwise the following lines are commands, not a
message), whether the message was accepted (250). Where the capture lacks the server's side the reply
is unknown (``None``) and the parser assumes the server went along, so that the client's bytes are
inspected as a message rather than overlooked.
"""

from __future__ import annotations

import email.errors
import email.policy
import re
from dataclasses import dataclass, field, replace
from email.message import Message
from email.parser import BytesParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tcpstream import Connection

MAX_MESSAGE = 8 << 20
"""Default cap on one message's bytes kept (after dot-unstuffing)."""
MAX_LINE = 4096
"""Longest client command line accepted. RFC 5321 §4.5.3.1.4 allows 512 octets; the slack covers
long ESMTP parameters. A longer line means the stream is not (or no longer) SMTP."""
MAX_PARTS = 1000
"""MIME parts walked at most; a message with more is not inspectable (the parser spends ~0.5 ms a part)."""
MAX_MIME_HEADER = 4096
"""Longest Content-Type/Content-Disposition header (folded) parsed; a longer one makes the message not
inspectable. Long RFC 2231 Japanese file names take ~1 KB; the header parser is superlinear beyond."""
MAX_LONG_HEADERS = 16
"""Content-Type/Content-Disposition headers over 512 bytes accepted in one message."""
MAX_DEPTH = 64
"""MIME nesting followed at most; deeper is not inspectable."""

UNINSPECTABLE = "x-segverify/uninspectable"
"""``content_type`` of the sentinel :class:`Part` that :func:`non_text_parts` returns for a message it
could not read with certainty: its ``reason`` says why."""


# ====================================================================== SMTP


@dataclass(frozen=True)
class Reply:
    """One (possibly multi-line) server reply: its code, text lines, and offset in the server stream."""

    code: int
    lines: tuple[str, ...]
    offset: int

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400


@dataclass
class MailTransaction:
    """One message the client sent (or began to send), or a marker for what could not be followed.

    ``raw`` is the message as the server received it (DATA: dot-unstuffed, without the final ``.``
    line; BDAT: the chunks concatenated), at most ``max_message`` bytes (``truncated``). ``accepted`` is
    the server's verdict on the message (``None``: reply not captured). ``complete`` says the end of
    the message was seen (CRLF.CRLF, or every byte of the BDAT LAST chunk). ``inspectable`` False means
    the content must not be called text-only whatever it looks like; ``reason`` says why. A marker
    (``mode`` None, ``raw`` empty, not inspectable) stands for content that may have crossed but could
    not be read: after STARTTLS (``starttls``), in holes of the capture, in a stream that is not SMTP.
    """

    mail_from: str | None = None
    rcpt_to: list[str] = field(default_factory=list)
    raw: bytes = b""
    truncated: bool = False
    accepted: bool | None = None
    starttls: bool = False
    complete: bool = False
    inspectable: bool = True
    reason: str = ""
    mode: str | None = None  # "DATA", "BDAT", or None for a marker
    helo: str | None = None
    rejected_rcpt: list[str] = field(default_factory=list)  # RCPT TO the server refused
    offset: int = 0  # where the message content starts in the client stream (delivered bytes)
    end: int = 0  # where it ends
    notes: list[str] = field(default_factory=list)

    def mark(self, reason: str) -> None:
        """Make the transaction not inspectable, keeping every reason."""
        self.inspectable = False
        self.reason = f"{self.reason}; {reason}" if self.reason else reason


_REPLY_RE = re.compile(rb"(\d{3})([ -]?)(.*)")
_VERB_RE = re.compile(rb"([A-Za-z]{1,16})(?:[ \t]+(.*))?")
_ADDR_RE = re.compile(r"(?i)^(?:MAIL[ \t]+FROM|RCPT[ \t]+TO)[ \t]*:[ \t]*(<[^>]*>|[^ \t]*)")
_BDAT_RE = re.compile(rb"(?i)BDAT[ \t]+(\d{1,19})([ \t]+LAST)?[ \t]*")
_B64_LINE_RE = re.compile(rb"[A-Za-z0-9+/=]*|\*")
# A line holding only "." between line ends other than CRLF: servers that accept bare LF or CR as line
# ends see the end of DATA there, strict ones do not (SMTP smuggling, CVE-2023-51764/51765/51766).
_AMBIGUOUS_ENDS = (b"\n.\n", b"\n.\r", b"\r.\n", b"\r.\r")
"""A '.' line between any two of CR and LF: the lenient ends of a message (CRLF.CRLF itself ends it first)."""


def ambiguous_end(body: bytes) -> bool:
    """Whether ``body`` holds a '.' line ended by bare LF or CR, or one after a bare LF or CR, which a lenient
    server takes for the end of the message (four substring scans; a regex tried three alternatives at
    every byte)."""
    return body.startswith((b".\n", b".\r")) or any(end in body for end in _AMBIGUOUS_ENDS)
_KNOWN_VERBS = frozenset(
    b"HELO EHLO LHLO MAIL RCPT DATA BDAT RSET QUIT NOOP VRFY EXPN HELP STARTTLS AUTH TURN ETRN ATRN XCLIENT "
    b"XFORWARD".split()
)
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def parse_replies(server: bytes) -> list[Reply]:
    """The server's replies in order. Lines that are not replies are skipped (a cut last line still counts)."""
    out: list[Reply] = []
    code: int | None = None
    lines: list[str] = []
    start = 0
    pos = 0
    n = len(server)
    while pos < n:
        eol = server.find(b"\n", pos)
        if eol < 0:
            eol = n
        line = server[pos:eol].rstrip(b"\r")
        here = pos
        pos = eol + 1
        m = _REPLY_RE.fullmatch(line)
        if not m:
            continue
        c = int(m.group(1))
        if code is None or c != code:
            if code is not None:  # a continuation cut short: close it
                out.append(Reply(code, tuple(lines), start))
            code, lines, start = c, [], here
        lines.append(m.group(3).decode("utf-8", "replace"))
        if m.group(2) != b"-":
            out.append(Reply(code, tuple(lines), start))
            code, lines = None, []
    if code is not None:
        out.append(Reply(code, tuple(lines), start))
    return out


def _address(line: str) -> str:
    m = _ADDR_RE.match(line)
    if not m:
        return ""
    a = m.group(1)
    return a[1:-1] if a.startswith("<") and a.endswith(">") else a


class _Smtp:
    """The state machine behind :func:`smtp_transactions` (one instance per call)."""

    def __init__(self, client: bytes, server: bytes, max_message: int) -> None:
        self.c = client
        self.replies = parse_replies(server)
        self.have_server = bool(server)
        self.ri = 0
        self.max_message = max_message
        self.out: list[MailTransaction] = []
        self.txn: MailTransaction | None = None
        self.chunks: list[bytes] = []  # BDAT chunks of self.txn (joined once, at the end: no quadratic copying)
        self.chunk_bytes = 0
        self.helo: str | None = None
        # The first reply is the greeting when it has a greeting code (a capture that starts mid-session
        # has no greeting; then its first reply answers the first command seen).
        if self.replies and self.replies[0].code in (220, 421, 554):
            self.ri = 1

    def reply(self) -> Reply | None:
        if self.ri < len(self.replies):
            self.ri += 1
            return self.replies[self.ri - 1]
        return None

    def new_txn(self, mail_from: str | None) -> MailTransaction:
        return MailTransaction(mail_from=mail_from, helo=self.helo)

    def emit(self, t: MailTransaction) -> None:
        if not self.have_server:
            t.notes.append("the server's side was not captured: its replies are unknown")
        self.out.append(t)

    def marker(self, reason: str, starttls: bool = False, offset: int = 0) -> None:
        t = MailTransaction(helo=self.helo, starttls=starttls, inspectable=False, reason=reason,
                            offset=offset, end=len(self.c))  # fmt: skip
        if self.txn is not None:
            t.mail_from, t.rcpt_to = self.txn.mail_from, list(self.txn.rcpt_to)
        self.emit(t)

    def abort_bdat(self, why: str) -> None:
        """A BDAT transaction that ends without LAST: its chunks crossed, the message was never committed."""
        t = self.txn
        if t is not None and t.mode == "BDAT":
            if why != "capture ends":
                t.accepted = False  # RSET, QUIT, EHLO ... discard the chunks
            t.mark(f"BDAT transaction without LAST chunk ({why})")
            self.emit_bdat(t)
        self.txn = None

    def emit_bdat(self, t: MailTransaction) -> None:
        self._store(t, b"".join(self.chunks))
        self.chunks, self.chunk_bytes = [], 0
        self.emit(t)

    def run(self) -> list[MailTransaction]:
        c, n = self.c, len(self.c)
        pos = 0
        while pos < n:
            eol = c.find(b"\n", pos, pos + MAX_LINE + 1)
            if eol < 0:
                if n - pos > MAX_LINE:
                    self.marker(f"client sent a line longer than {MAX_LINE} bytes at offset {pos}: not SMTP",
                                offset=pos)  # fmt: skip
                elif _CONTROL.search(c, pos):
                    self.marker(f"client sent binary data where a command belongs at offset {pos}: not SMTP",
                                offset=pos)  # fmt: skip
                break  # otherwise a command cut off by the end of the capture
            raw_line = c[pos:eol]
            line_at = pos
            pos = eol + 1
            if raw_line.endswith(b"\r"):
                raw_line = raw_line[:-1]
            if _CONTROL.search(raw_line):
                self.marker(f"client sent binary data where a command belongs at offset {line_at}: not SMTP",
                            offset=line_at)  # fmt: skip
                break
            m = _VERB_RE.fullmatch(raw_line)
            verb = m.group(1).upper() if m else b""
            arg = (m.group(2) or b"") if m else b""
            line = raw_line.decode("utf-8", "replace")
            if verb in (b"EHLO", b"HELO", b"LHLO"):
                r = self.reply()
                self.abort_bdat("new EHLO")
                if r is None or r.positive:
                    self.helo = arg.decode("utf-8", "replace").strip()
            elif verb == b"MAIL":
                r = self.reply()
                if r is None or r.positive:
                    self.abort_bdat("MAIL FROM inside it")
                    self.txn = self.new_txn(_address(line))
            elif verb == b"RCPT":
                r = self.reply()
                if self.txn is None:
                    continue  # the server answers 503: no transaction to add to
                (self.txn.rcpt_to if r is None or r.positive else self.txn.rejected_rcpt).append(_address(line))
            elif verb == b"DATA" and not arg.strip():
                pos = self.data(pos)
            elif verb == b"BDAT":
                pos = self.bdat(raw_line, pos)
                if pos < 0:
                    break
            elif verb == b"RSET":
                self.reply()
                self.abort_bdat("RSET")
                self.txn = None
            elif verb == b"QUIT":
                self.reply()
                self.abort_bdat("QUIT")
                return self.out
            elif verb == b"STARTTLS":
                r = self.reply()
                rest = c[pos : pos + 1]
                if (r is not None and r.code == 220) or (r is None and (not rest or rest == b"\x16")):
                    self.abort_bdat("STARTTLS")
                    why = ("STARTTLS accepted (220)" if r is not None
                           else "STARTTLS sent, server reply not captured")  # fmt: skip
                    self.marker(f"{why}: the rest of the session is encrypted", starttls=True, offset=pos)
                    self.txn = None
                    return self.out
            elif verb == b"AUTH":
                pos = self.auth(arg, pos)
            else:
                self.reply()  # NOOP, VRFY, HELP, unknown commands: one reply each
        self.abort_bdat("capture ends")
        return self.out

    def auth(self, arg: bytes, pos: int) -> int:
        """Skip the SASL exchange: one client line per 334 challenge (or, without replies, base64 lines)."""
        c, n = self.c, len(self.c)
        r = self.reply()
        while pos < n:
            if r is not None and r.code != 334:
                break
            eol = c.find(b"\n", pos, pos + MAX_LINE + 1)
            if eol < 0:
                break
            line = c[pos:eol].rstrip(b"\r")
            # No reply to go by: a mechanism given an initial response usually finishes at once, and
            # continuation lines are base64 (never a command verb).
            if r is None and (len(arg.split()) > 1 or not _B64_LINE_RE.fullmatch(line) or line.upper() in _KNOWN_VERBS):
                break
            pos = eol + 1
            r = self.reply()
        return pos

    def data(self, pos: int) -> int:
        """DATA: if the server said 354 (or its reply is unknown), read the message up to CRLF.CRLF."""
        c, n = self.c, len(self.c)
        r = self.reply()
        if r is not None and r.code != 354:
            return pos  # refused: what follows are commands
        t = self.txn if self.txn is not None and self.txn.mode is None else self.new_txn(None)
        if self.txn is None:
            t.notes.append("DATA without an accepted MAIL FROM")
        t.mode = "DATA"
        t.offset = pos
        if c.startswith(b".\r\n", pos):
            body, nxt, t.complete = b"", pos + 3, True
        else:
            idx = c.find(b"\r\n.\r\n", pos)
            if idx < 0:
                body, nxt = c[pos:], n
                t.mark("message cut off: no CRLF.CRLF before the end of the captured stream")
            else:
                body, nxt, t.complete = c[pos : idx + 2], idx + 5, True
        if ambiguous_end(body):
            t.mark("the message holds a '.' line ended by bare LF or CR: a lenient server ends the message "
                   "there and reads the rest as commands (SMTP smuggling)")  # fmt: skip
        if body.startswith(b"."):
            body = body[1:]
        body = body.replace(b"\r\n.", b"\r\n")  # dot-unstuffing (RFC 5321 §4.5.2)
        self._store(t, body)
        t.end = nxt
        if t.complete:
            r = self.reply()
            t.accepted = None if r is None else r.code // 100 == 2
        self.emit(t)
        self.txn = None
        return nxt

    def bdat(self, raw_line: bytes, pos: int) -> int:
        """BDAT n [LAST] (RFC 3030): exactly n bytes follow the command line, whatever they are."""
        m = _BDAT_RE.fullmatch(raw_line)
        if not m:
            self.reply()  # 501 syntax error: the server cannot know a size, so no chunk follows
            return pos
        size, last = int(m.group(1)), bool(m.group(2))
        t = self.txn
        if t is None or t.mode not in (None, "BDAT"):
            t = self.txn = self.new_txn(None)
            t.notes.append("BDAT without an accepted MAIL FROM")
        if t.mode is None:
            t.mode, t.offset = "BDAT", pos
            self.chunks, self.chunk_bytes = [], 0
        avail = len(self.c) - pos
        take = min(size, avail, self.max_message + 1 - self.chunk_bytes)  # never sized from the length field
        if take > 0:
            self.chunks.append(self.c[pos : pos + take])
            self.chunk_bytes += take
        if size > avail:
            t.end = len(self.c)
            t.mark(f"BDAT chunk of {size} bytes cut off after {avail} by the end of the captured stream")
            self.emit_bdat(t)
            self.txn = None
            return -1
        pos += size
        t.end = pos
        r = self.reply()
        if r is not None and r.code // 100 != 2:
            t.accepted = False
        if last:
            t.complete = True
            if t.accepted is None and r is not None:
                t.accepted = True
            self.emit_bdat(t)
            self.txn = None
        return pos

    def _store(self, t: MailTransaction, body: bytes) -> None:
        if len(body) > self.max_message:
            body = body[: self.max_message]
            if not t.truncated:
                t.truncated = True
                t.mark(f"message longer than max_message={self.max_message} bytes: only the start is kept")
        t.raw = body


def smtp_transactions(client: bytes, server: bytes, gaps: bool = False, *,
                      max_message: int = MAX_MESSAGE) -> list[MailTransaction]:  # fmt: skip
    """The mail transactions in one SMTP session: ``client`` and ``server`` are the two reassembled streams.

    ``gaps`` says the streams are not the whole session (holes, caps or conflicting retransmissions in
    reassembly): every transaction is then not inspectable and a marker is appended, since a hole may
    hold a whole message. Never raises on any input.
    """
    client, server = bytes(client), bytes(server)
    try:
        out = _Smtp(client, server, max_message).run()
    except Exception as exc:  # a parser bug must not turn into "no mail seen"
        out = [MailTransaction(inspectable=False, reason=f"SMTP parser failed: {exc!r}", end=len(client))]
    if gaps:
        for t in out:
            t.mark("the TCP streams have holes or were cut by a cap")
        out.append(MailTransaction(inspectable=False, end=len(client),
                                   reason="the TCP streams have holes or were cut by a cap: a message may hide in "
                                   "what was not captured"))  # fmt: skip
    return out


def connection_transactions(conn: Connection, *, max_message: int = MAX_MESSAGE) -> list[MailTransaction]:
    """:func:`smtp_transactions` for a reassembled :class:`.tcpstream.Connection` (finished first).

    The streams count as having gaps when either direction has a hole, hit a cap, or had overlapping
    retransmissions with different bytes (the receiver may have read other bytes than the capture shows).
    """
    conn.finish()
    cl, sv = conn.client, conn.server
    bad = any(r.gap_count or r.truncated or r.conflict_bytes for r in (cl, sv))
    return smtp_transactions(cl.data(), sv.data(), gaps=bad, max_message=max_message)


# ====================================================================== MIME


@dataclass(frozen=True)
class Part:
    """One MIME part: its type, file name, disposition and decoded size.

    ``path`` locates it in the MIME tree ("" for the message itself, "1.2" for the second child of the
    first child). ``reason`` says, in :func:`non_text_parts`, why the part is not plain text (or, for the
    :data:`UNINSPECTABLE` sentinel, why the message could not be read).
    """

    content_type: str
    filename: str | None
    disposition: str | None
    size: int
    path: str = ""
    reason: str = ""


@dataclass
class MimeReport:
    """Everything :func:`inspect_message` found: all parts, the non-text ones, and whether to trust it."""

    parts: list[Part] = field(default_factory=list)
    non_text: list[Part] = field(default_factory=list)
    inspectable: bool = True
    reasons: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        self.inspectable = False
        if reason not in self.reasons:
            self.reasons.append(reason)


# Defects that mean the parser guessed at the structure; a mail client may have guessed otherwise.
_STRUCTURE_DEFECTS = (
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.CloseBoundaryNotFoundDefect,
    email.errors.NoBoundaryInMultipartDefect,
    email.errors.MultipartInvariantViolationDefect,
    email.errors.MissingHeaderBodySeparatorDefect,
    email.errors.InvalidMultipartContentTransferEncodingDefect,
)
_BASE64_DEFECTS = (
    email.errors.InvalidBase64CharactersDefect,
    email.errors.InvalidBase64LengthDefect,
    email.errors.InvalidBase64PaddingDefect,
)
_ONE_ONLY = ("content-type", "content-disposition", "content-transfer-encoding")
_KNOWN_CTE = frozenset({"7bit", "8bit", "binary", "quoted-printable", "base64"})
# Files carried inside plain text: uuencode, yEnc, BinHex.
_EMBEDDED_FILE_RE = re.compile(rb"(?m)^(?:begin(?:-base64)? [0-7]{3,4} \S|=ybegin .*name=|\(This file must be "
                               rb"converted with BinHex)")  # fmt: skip


MAX_HEADER_CACHE = 4096
"""Parsed headers remembered by :data:`_POLICY` (a hostile message's distinct headers are bounded by this)."""


class _RememberingPolicy(email.policy.EmailPolicy):
    """``email.policy.default`` that parses a header's text once: the parser and the walk fetch each part's
    Content-Type three or four times, and every fetch parsed it again (half of a message's inspection), while
    mail repeats the same few MIME headers. A header object is a function of its name and text and is only
    read here, so sharing one is the same as parsing again."""

    def header_fetch_parse(self, name: str, value: str) -> object:
        if hasattr(value, "name"):  # already a header object (set by a program, not parsed)
            return value
        key = (name, value)
        hit = _HEADERS.get(key)
        if hit is None:
            if len(_HEADERS) >= MAX_HEADER_CACHE:
                _HEADERS.clear()
            hit = _HEADERS[key] = super().header_fetch_parse(name, value)
        return hit


_HEADERS: dict[tuple[str, str], object] = {}
_POLICY = _RememberingPolicy()


def inspect_message(raw: bytes) -> MimeReport:
    """Parse ``raw`` (an RFC 5322 message) and classify every part. Never raises.

    A part is *text* only when it is a ``text/plain`` leaf, not an attachment (no ``attachment``
    disposition, no file name), in a known transfer encoding that decodes cleanly, with no NUL byte and
    no file embedded in the text (uuencode, yEnc, BinHex). Multipart containers are structure, neither
    text nor non-text; everything else is non-text -- text/html (also as the alternative of a text/plain
    part), images, message/rfc822 (and the parts inside it), application/*. A container's ``size`` is
    the sum of the decoded sizes of the leaves inside it.
    """
    rep = MimeReport()
    raw = bytes(raw)
    why = _prescan(raw)
    if why:
        rep.fail(why)
        return rep
    try:
        msg = BytesParser(policy=_POLICY).parsebytes(raw)
        parts = _walk(msg, rep)
    except Exception as exc:  # the email package is lenient, but header parsing has raised on odd input
        rep.fail(f"MIME parser failed: {type(exc).__name__}: {exc}")
        return rep
    # Containers get the sizes of the leaves inside them.
    sizes: dict[str, int] = {}
    for p, leaf in parts:
        if leaf:
            segs = p.path.split(".") if p.path else []
            for k in range(len(segs)):
                anc = ".".join(segs[:k])
                sizes[anc] = sizes.get(anc, 0) + p.size
    for p, leaf in parts:
        if not leaf:
            p = replace(p, size=sizes.get(p.path, 0))
        rep.parts.append(p)
        if p.reason:
            rep.non_text.append(p)
    return rep


_MIME_HEADER_RE = re.compile(rb"(?im)^content-(?:type|disposition)[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*")
_BOUNDARY_PARAM_RE = re.compile(rb'(?i)\bboundary[ \t]*=[ \t]*"?([^";\r\n]{1,70})')
_DELIMITER_RE = re.compile(rb"(?m)^--([^\r\n]{1,72})")


def _prescan(raw: bytes) -> str:
    """Refuse, before parsing, what would make the parser slow: the email package's header parser is
    superlinear in a header's tokens (a 200 KB Content-Type takes tens of seconds) and parses each part's
    Content-Type, so long MIME headers and huge part counts are bounded here with one linear pass each."""
    long_headers = 0
    for m in _MIME_HEADER_RE.finditer(raw):
        n = m.end() - m.start()
        if n > MAX_MIME_HEADER:
            return f"a Content-Type/Content-Disposition header of {n} bytes (over {MAX_MIME_HEADER})"
        if n > 512:
            long_headers += 1
            if long_headers > MAX_LONG_HEADERS:
                return f"more than {MAX_LONG_HEADERS} Content-Type/Content-Disposition headers over 512 bytes"
    boundaries = {b.rstrip(b" \t") for b in _BOUNDARY_PARAM_RE.findall(raw)}
    if len(boundaries) > MAX_PARTS:
        return f"more than {MAX_PARTS} MIME boundaries declared"
    if boundaries:
        delimiters = 0
        for m in _DELIMITER_RE.finditer(raw):
            b = m.group(1).rstrip(b" \t\r")
            if b in boundaries or (b.endswith(b"--") and b[:-2] in boundaries):
                delimiters += 1
        if delimiters > 2 * MAX_PARTS:
            return f"more than {MAX_PARTS} MIME parts"
    return ""


def _walk(msg: Message, rep: MimeReport) -> list[tuple[Part, bool]]:
    """Classify every part, pre-order; returns (part, is_leaf) pairs. Each header is fetched once: every
    fetch re-parses it with policy.default."""
    out: list[tuple[Part, bool]] = []
    stack: list[tuple[Message, str, int]] = [(msg, "", 0)]
    while stack:
        part, path, depth = stack.pop()
        where = path or "message"
        if len(out) >= MAX_PARTS:
            rep.fail(f"more than {MAX_PARTS} MIME parts")
            break
        if depth > MAX_DEPTH:
            rep.fail(f"MIME nesting deeper than {MAX_DEPTH}")
            break
        for d in part.defects:
            rep.defects.append(f"{where}: {type(d).__name__}")
            if isinstance(d, _STRUCTURE_DEFECTS):
                rep.fail(f"malformed MIME structure at part {where}: {type(d).__name__}")
        names = [k.lower() for k in part]  # header names, unparsed
        for h in _ONE_ONLY:
            if names.count(h) > 1:
                rep.fail(f"part {where} has several {h} headers: clients may pick different ones")
        ctype = part.get_content_type()
        ct_header = part.get("content-type")
        cd_header = part.get("content-disposition")
        why = _header_trouble(ct_header, ctype)
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        children = part.get_payload() if part.is_multipart() else None
        if isinstance(children, list):
            if ctype.startswith("multipart/") and not children:
                rep.fail(f"multipart part {where} has no parts")
            for i in range(len(children) - 1, -1, -1):
                stack.append((children[i], f"{path}.{i + 1}" if path else str(i + 1), depth + 1))
            if not why and not ctype.startswith("multipart/"):
                why = f"{ctype} is not plain text"  # message/rfc822 and the like: a whole message attached
            out.append((Part(ctype, filename, disposition, 0, path, why), False))
        else:
            payload = _decoded(part)
            if not why:
                why = _leaf_trouble(part, ctype, filename, disposition, payload, (ct_header, cd_header))
            out.append((Part(ctype, filename, disposition, len(payload), path, why), True))
    return out


def _header_trouble(h: object, ctype: str) -> str:
    """Why the part's Content-Type cannot be trusted ('' if it can): its type is not the one written.

    An unparseable Content-Type makes the parser assume text/plain (RFC 2045 §5.2), which a mail client
    that sniffs the content or the file name may not do; so such a part is never plain text.
    """
    if h is None:
        return ""
    written = str(h).split(";", 1)[0].strip().lower()
    if written != ctype:
        return f"invalid Content-Type {written[:60]!r}: the parser assumed {ctype}"
    return ""


def _decoded(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    return b""


def _leaf_trouble(part: Message, ctype: str, filename: str | None, disposition: str | None, payload: bytes,
                  headers: tuple[object, object]) -> str:  # fmt: skip
    if ctype != "text/plain":
        return f"{ctype} is not plain text"
    if disposition == "attachment":
        return "text/plain attachment"
    if filename:
        return "text/plain part with a file name (an attached file)"
    for name, h in zip(("content-type", "content-disposition"), headers, strict=True):
        defects = getattr(h, "defects", None)
        if defects:
            # A parameter the parser had to repair or drop may be a file name to a mail client.
            kinds = ", ".join(sorted({type(d).__name__ for d in defects}))
            return f"text/plain part whose {name} header had to be repaired ({kinds})"
    cte = part.get("content-transfer-encoding")
    if cte is not None and str(cte).strip().lower() not in _KNOWN_CTE:
        return f"unknown Content-Transfer-Encoding {str(cte)[:40]!r}: the content cannot be read as text"
    if any(isinstance(d, _BASE64_DEFECTS) for d in part.defects):
        return "text/plain part whose base64 does not decode cleanly"
    if b"\x00" in payload:
        return "text/plain part with binary content (NUL bytes)"
    if _EMBEDDED_FILE_RE.search(payload):
        return "text/plain part carrying an encoded file (uuencode, yEnc or BinHex)"
    return ""


def message_parts(raw: bytes) -> list[Part]:
    """Every part of the message in tree order, containers included (see :func:`inspect_message`)."""
    return inspect_message(raw).parts


def non_text_parts(raw: bytes) -> list[Part]:
    """The parts that are not plain text; plus an :data:`UNINSPECTABLE` part if the message could not be read.

    An empty list therefore means: read with certainty, and text/plain only.
    """
    rep = inspect_message(raw)
    out = list(rep.non_text)
    if not rep.inspectable:
        out.append(Part(UNINSPECTABLE, None, None, len(raw), "", "; ".join(rep.reasons)))
    return out


def transaction_findings(t: MailTransaction) -> list[Part]:
    """:func:`non_text_parts` of a transaction's message, with a sentinel when the transaction itself is
    not inspectable (STARTTLS, holes, cut off, smuggling ...). Empty only for a text-only message."""
    out = non_text_parts(t.raw) if t.raw or t.mode else []
    if not t.inspectable:
        out.append(Part(UNINSPECTABLE, None, None, len(t.raw), "", t.reason))
    return out


__all__ = [
    "MAX_MESSAGE",
    "UNINSPECTABLE",
    "MailTransaction",
    "MimeReport",
    "Part",
    "Reply",
    "connection_transactions",
    "inspect_message",
    "message_parts",
    "non_text_parts",
    "parse_replies",
    "smtp_transactions",
    "transaction_findings",
]
