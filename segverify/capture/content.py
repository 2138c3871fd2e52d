"""Judge whether a file is free of active content, by its bytes and never by its name.

Why this exists: a file-sanitization channel (ファイル無害化, CDR) is the only sanctioned way for files to
cross from the internet tier into the LGWAN tier. ``segverify replay`` extracts the files that crossed the
channel's *outbound* leg and must show that each one really is sanitized. A name or a ``Content-Type`` is
chosen by whoever sent the file, so the verdict is taken from the content alone; ``name`` only makes the
reasons readable.

The verdict is three-valued, and fails closed:

* ``clean=False`` -- active content was found (the reasons say what and where, e.g. ``a.zip!b/c.exe``);
* ``clean=None``  -- the file could not be inspected fully: encrypted or password-protected, truncated,
  corrupt, an archive format we cannot open (7z, RAR, CAB, ISO, ...), a limit exceeded, an unrecognised
  binary format, or a library error. It must never be reported as clean;
* ``clean=True``  -- a format we understand, inspected completely, with none of the markers below.

Active content found anywhere wins over "could not inspect" elsewhere: an archive with one executable
member and one encrypted member is ``clean=False``.

What is detected (by content):

* Native and managed code: PE (``MZ`` + ``PE\\0\\0`` at ``e_lfanew``; an ``MZ`` header of at least 64
  bytes without it counts as a DOS/NE/LE executable), ELF, Mach-O (32/64-bit, both byte orders, fat and
  fat64; ``CAFEBABE`` is told apart from a Java class by the field after it, as ``file(1)`` does), Java
  class, Dalvik DEX, WebAssembly, Windows shortcut (LNK), compiled HTML help (CHM), MSO/ActiveMime
  macro containers.
* Scripts: a ``#!`` shebang, and in any file that decodes as text (UTF-8, UTF-16/32 with BOM or typical
  NUL pattern, Shift_JIS/cp932, EUC-JP, else Latin-1 if it has almost no control characters) the markers
  in :data:`_TEXT_MARKERS`: PowerShell cmdlets and download/encoding idioms, VBScript (``CreateObject``,
  ``WScript.``, ``On Error Resume Next``, ``Sub``..``End Sub``), JScript/JavaScript (``ActiveXObject``,
  ``eval(``, ``function(...){``, ``var x =``), batch (``@echo off``, ``%~dp0``, ``cmd /c``, ``goto``,
  LOLBins such as ``mshta``/``rundll32``/``regsvr32``/``certutil -decode``), HTML/SVG/XSL/HTA
  (``<script``, ``<msxsl:script``, ``<HTA:APPLICATION``, ``javascript:``, ``on...=`` event handlers),
  ``.reg`` files, ``.url``/``.scf``/``.desktop`` shortcuts, Word 2003 XML/Flat OPC/MHT carrying macros
  (``editdata.mso``, ``vbaProject.bin``, ``ActiveMime``), SYLK/CSV formulas that launch programs
  (``=cmd|' /C ...'``, ``EXEC(``). The markers are chosen to be rare in prose; a text that *quotes*
  such code is reported as active content -- deliberately, since this check fails closed.
* OLE compound files (``olefile``/``oletools``): VBA projects (``VBA``/``_VBA_PROJECT``/``dir``/``PROJECT``
  as ``olevba`` finds them, plus compressed VBA source in any stream), Excel 4.0/XLM macro sheets (a
  BOUNDSHEET record of type macro sheet in ``Workbook``/``Book``, and whatever ``olevba`` reports),
  embedded objects (``\\x01Ole10Native`` packages, with the packaged file's name, and ``\\x01CompObj``
  in any sub-storage such as ``ObjectPool``/``MBD...``), Windows Installer packages (MSI/MSP/MST by root
  CLSID), any stream that starts like an executable, and Outlook ``.msg`` attachments (judged recursively
  like archive members). Encrypted Office files (``oletools.crypto``) are ``clean=None``.
* OOXML (a zip with ``[Content_Types].xml``): ``vbaProject.bin`` (or its content type), ``activeX/``
  parts, ``embeddings/`` parts, XLM macro sheets (``macrosheets/``), DDE fields (``DDE``/``DDEAUTO`` in
  field instructions, ``<ddeLink``), and external relationships (``TargetMode="External"`` in any
  ``.rels``: attached templates, OLE links, frames, ...). External *hyperlinks* that need a click and
  point to ``http``/``https``/``mailto`` are not active content; a hyperlink to ``file:``, a UNC path or
  any other scheme (``ms-msdt:``, ``search-ms:``) is.
* OpenDocument (a zip with ``mimetype``): Basic/Scripts macro modules, macro event bindings, embedded
  OLE objects (``Object N`` stored as a file).
* RTF: ``\\object``/``\\objdata`` and the other ``\\obj...`` control words, ``oletools.rtfobj`` objects,
  remote ``\\*\\template``, DDE fields.
* PDF (``pypdf`` walking every object, with a raw scan of the bytes as a fallback because malicious PDFs
  are often malformed; ``#xx`` escapes in names are decoded): ``/JavaScript``, ``/JS``, ``/OpenAction``,
  ``/AA``, ``/Launch``, ``/EmbeddedFile``, ``/RichMedia``, ``/XFA``. An encrypted PDF is ``clean=None``
  unless the raw scan already shows active content.
* Archives: zip (including JAR/APK/...), gzip, bzip2, xz, tar are opened and every member judged
  recursively, with limits :data:`MAX_DEPTH` (each opened container or compression layer is one level),
  :data:`MAX_MEMBERS` and :data:`MAX_TOTAL_BYTES` (bytes actually decompressed, over the whole call).
  Password-protected members, 7z, RAR, CAB, ISO 9660, UDF, VHD(X), DMG, zstd, ARJ, LZH -> ``clean=None``.
* Inert: empty files, plain text without markers, PNG, JPEG, GIF, BMP, TIFF, WebP -> ``clean=True``.

Everything a library raises is caught and turned into ``clean=None`` with the reason; :func:`judge`
never raises on hostile input, and its work is bounded by the limits above.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import logging
import lzma
import re
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_MEMBERS", "MAX_TOTAL_BYTES", "Verdict", "judge"]

MAX_DEPTH = 3
"""Containers (archives, OOXML/ODF packages, compression layers) opened inside one another, at most."""
MAX_MEMBERS = 1000
"""Archive members looked at over one :func:`judge` call, at most."""
MAX_TOTAL_BYTES = 64 * 1024 * 1024
"""Bytes decompressed over one :func:`judge` call (and text scanned in one file), at most."""
_MAX_REASONS = 50
_PDF_MAX_OBJECTS = 200_000
_PDF_MAX_NODES = 2_000_000


@dataclass(slots=True)
class Verdict:
    """The judgement of one file.

    ``clean`` is True (inspected, no active content), False (active content found) or None (could not be
    inspected completely -- never to be reported as clean). ``kind`` is the detected format of the outer
    file (``pe``, ``zip``, ``pdf``, ``text``, ...); ``reasons`` explains False/None, one line per finding.
    """

    clean: bool | None
    kind: str
    reasons: list[str] = field(default_factory=list)


class _Limit(Exception):
    """A work limit was reached; the message is the reason."""


class _Ctx:
    """Limits shared by the whole recursion of one :func:`judge` call, so nesting cannot multiply work."""

    def __init__(self) -> None:
        self.bytes_left = MAX_TOTAL_BYTES
        self.members = 0

    def take_bytes(self, n: int) -> None:
        self.bytes_left -= n
        if self.bytes_left < 0:
            raise _Limit(f"total uncompressed size exceeds the {MAX_TOTAL_BYTES} byte limit")

    def take_member(self) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise _Limit(f"more than {MAX_MEMBERS} archive members")


def _combine(kind: str, parts: list[Verdict], extra: list[str] | None = None, unknown: bool = False) -> Verdict:
    """Merge member verdicts: any False wins, then any None (or ``unknown``), else True."""
    reasons: list[str] = list(extra or [])
    for p in parts:
        reasons.extend(p.reasons)
    clean: bool | None
    if any(p.clean is False for p in parts):
        clean = False
    elif unknown or any(p.clean is None for p in parts):
        clean = None
    else:
        clean = True
    if len(reasons) > _MAX_REASONS:
        reasons = reasons[:_MAX_REASONS] + [f"... and {len(reasons) - _MAX_REASONS} more"]
    return Verdict(clean, kind, reasons)


def judge(data: bytes, name: str | None = None, truncated: bool = False) -> Verdict:
    """Judge ``data`` by content. ``name`` is used only in reasons; ``truncated`` says ``data`` is a prefix.

    A truncated file can still be proven *not* clean (an executable header in the prefix is enough), but
    never clean: its missing part could hold anything.
    """
    label = name or "<data>"
    try:
        data = bytes(data)
    except Exception as exc:  # noqa: BLE001 - hostile input must never raise
        return Verdict(None, "unknown", [f"{label}: cannot read data: {exc!r}"])
    ctx = _Ctx()
    try:
        with _quiet_libraries():
            v = _judge(data, label, 0, ctx)
    except _Limit as exc:
        v = Verdict(None, "unknown", [f"{label}: {exc}"])
    except RecursionError:
        v = Verdict(None, "unknown", [f"{label}: structure nested too deeply to inspect"])
    except Exception as exc:  # noqa: BLE001 - a bug or library failure must not turn into "clean"
        v = Verdict(None, "unknown", [f"{label}: inspection failed: {type(exc).__name__}: {exc}"])
    if truncated and v.clean is not False:
        v = Verdict(None, v.kind, [f"{label}: file is truncated (only a prefix was captured)", *v.reasons])
    elif truncated:
        v.reasons.append(f"{label}: (file is truncated; active content found in the captured prefix)")
    return v


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """pypdf logs and warns on every malformed object; a hostile capture must not flood the report."""
    lg = logging.getLogger("pypdf")
    old = lg.level
    lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        lg.setLevel(old)


# --------------------------------------------------------------------------------------------------
# format detection

_LNK_MAGIC = bytes.fromhex("4c0000000114020000000000c000000000000046")
_OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
_MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",
    b"\xbe\xba\xfe\xca", b"\xbf\xba\xfe\xca", b"\xca\xfe\xba\xbf",
}  # fmt: skip
_UNOPENABLE: list[tuple[Callable[[bytes], bool], str]] = [
    (lambda d: d.startswith(b"7z\xbc\xaf\x27\x1c"), "7z"),
    (lambda d: d.startswith(b"Rar!\x1a\x07"), "rar"),
    (lambda d: d.startswith(b"MSCF\0\0\0\0"), "cab"),
    (lambda d: d.startswith(b"\x28\xb5\x2f\xfd"), "zstd"),
    (lambda d: d.startswith(b"\x60\xea"), "arj"),
    (lambda d: len(d) > 7 and d[2:5] == b"-lh" and d[6:7] == b"-", "lzh"),
    (lambda d: d.startswith(b"vhdxfile"), "vhdx"),
    (lambda d: d.startswith(b"conectix") or d[-512:-504] == b"conectix", "vhd"),
    (lambda d: d[-512:-508] == b"koly", "dmg"),
    (lambda d: any(d[o : o + 5] in (b"CD001", b"BEA01", b"NSR02", b"NSR03") for o in (0x8001, 0x8801, 0x9001)),
     "iso"),
    (lambda d: d.startswith(b"xar!"), "xar"),
    (lambda d: d[:6] in (b"070707", b"070701", b"070702") or d[:2] in (b"\xc7\x71", b"\x71\xc7"), "cpio"),
]  # fmt: skip


def _judge(data: bytes, path: str, depth: int, ctx: _Ctx) -> Verdict:
    """Dispatch on magic bytes. Order matters: executables first, so polyglots are caught by their worst."""
    if not data:
        return Verdict(True, "empty")
    head = data[:64]
    exe = _executable(data)
    if exe is not None:
        kind, what = exe
        return Verdict(False, kind, [f"{path}: {what}"])
    if head.startswith(b"#!") or head.startswith(b"\xef\xbb\xbf#!"):
        line = data[:120].split(b"\n", 1)[0].decode("latin-1", "replace").strip()
        return Verdict(False, "script", [f"{path}: script with interpreter line {line!r}"])
    if head.startswith(_OLE_MAGIC):
        return _judge_ole(data, path, depth, ctx)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06") or head.startswith(b"PK\x07\x08"):
        return _judge_zip(data, path, depth, ctx)
    if head.startswith(b"\x1f\x8b"):
        return _judge_stream(data, path, depth, ctx, "gzip")
    if head.startswith(b"BZh") and len(data) > 10 and data[3:4].isdigit():
        return _judge_stream(data, path, depth, ctx, "bzip2")
    if head.startswith(b"\xfd7zXZ\x00"):
        return _judge_stream(data, path, depth, ctx, "xz")
    if data[257:262] == b"ustar":
        return _judge_tar(data, path, depth, ctx)
    for test, kind in _UNOPENABLE:
        if test(data):
            return Verdict(None, kind, [f"{path}: {kind} archive/image cannot be opened; content not inspected"])
    if b"%PDF-" in data[:1024]:
        return _judge_pdf(data, path)
    stripped = data[:16].lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{\\rt"):
        return _judge_rtf(data, path)
    image = _image_kind(head)
    if image:
        return Verdict(True, image)
    text = _as_text(data)
    if text is not None:
        return _judge_text(text, path)
    return Verdict(None, "unknown", [f"{path}: unrecognised binary format; cannot confirm it has no active content"])


def _executable(data: bytes) -> tuple[str, str] | None:
    """Return (kind, description) when ``data`` starts like code the OS or a runtime would execute."""
    head = data[:64]
    if head[:2] in (b"MZ", b"ZM") and len(data) >= 64:
        (e_lfanew,) = struct.unpack_from("<I", data, 0x3C)
        sig = data[e_lfanew : e_lfanew + 4] if e_lfanew < len(data) else b""
        if sig == b"PE\0\0":
            return "pe", "Windows PE executable (MZ + PE header)"
        if sig[:2] in (b"NE", b"LE", b"LX"):
            return "pe", f"Windows/OS2 {sig[:2].decode()} executable (MZ header)"
        e_cblp, e_cp, _, e_cparhdr = struct.unpack_from("<4H", data, 2)
        if e_cblp < 512 and e_cp > 0 and e_cparhdr >= 2:  # a plausible DOS header, not text starting "MZ"
            return "pe", "DOS MZ executable (MZ header without PE header)"
    if head.startswith(b"\x7fELF"):
        return "elf", "ELF executable/shared object"
    if head[:4] in _MACHO_MAGICS:
        return "macho", "Mach-O executable"
    if head.startswith(b"\xca\xfe\xba\xbe") and len(data) >= 8:
        (n,) = struct.unpack_from(">I", data, 4)
        if 0 < n < 45:  # nfat_arch; a Java class has minor<<16|major >= 45 here
            return "macho", "Mach-O universal (fat) binary"
        return "java-class", "Java class file"
    if head.startswith(b"dex\n0"):
        return "dex", "Android Dalvik executable (DEX)"
    if head.startswith(b"\0asm"):
        return "wasm", "WebAssembly module"
    if head.startswith(_LNK_MAGIC):
        return "lnk", "Windows shortcut (LNK) that can launch commands"
    if head.startswith(b"ITSF"):
        return "chm", "compiled HTML help (CHM) with executable script"
    if head.startswith(b"ActiveMime"):
        return "activemime", "MSO/ActiveMime container (Office macro storage)"
    return None


def _image_kind(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM" and len(head) >= 26 and head[6:10] == b"\0\0\0\0":
        return "bmp"
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


# --------------------------------------------------------------------------------------------------
# text and scripts

_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
"""The C0 controls that text does not hold (tab, line ends, form feed, ^Z and ESC excepted), and DEL."""
_C1_BYTES = bytes(range(0x80, 0xA0))


def _count(data: bytes, chars: bytes) -> int:
    """How many bytes of ``data`` are among ``chars`` (one C pass; a regex's findall built a list of them)."""
    return len(data) - len(data.translate(None, chars))


def _as_text(data: bytes) -> str | None:
    """Decode ``data`` when it is text in an encoding a Japanese office would use; None for binary."""
    if len(data) > MAX_TOTAL_BYTES:
        return None
    encs: list[str]
    if data.startswith(b"\xff\xfe\0\0") or data.startswith(b"\0\0\xfe\xff"):
        encs = ["utf-32"]
    elif data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        encs = ["utf-16"]
    elif data.startswith(b"\xef\xbb\xbf"):
        encs = ["utf-8-sig"]
    else:
        sample = data[:4096]
        zeros_even = sample[0::2].count(0)
        zeros_odd = sample[1::2].count(0)
        half = max(1, len(sample) // 2)
        if zeros_odd > 0.3 * half and zeros_even < 0.05 * half:
            encs = ["utf-16-le"]
        elif zeros_even > 0.3 * half and zeros_odd < 0.05 * half:
            encs = ["utf-16-be"]
        elif 0 in sample:
            return None
        else:
            encs = ["utf-8", "cp932", "euc_jp", "latin-1"]
    for enc in encs:
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        probe = text[: 1 << 20]
        n = max(1, len(probe))
        # in UTF-8 a control character is its own byte and every other character is bytes over 0x7F
        if _count(probe.encode("utf-8", "surrogatepass"), _CONTROL_BYTES) > 0.01 * n:
            return None
        if enc == "latin-1" and _count(data[: 1 << 20], _C1_BYTES) > 0.05 * n:
            return None
        return text
    return None


@dataclass(frozen=True, slots=True)
class _Marker:
    """One active-content marker: cheap literal ``anchors`` (any) gate an optional regex on lowercased text."""

    what: str
    anchors: tuple[str, ...]
    regex: re.Pattern[str] | None = None
    also: tuple[str, ...] = ()  # every one of these literals must also be present


def _m(what: str, anchors: str | tuple[str, ...], regex: str | None = None, also: tuple[str, ...] = ()) -> _Marker:
    return _Marker(
        what, (anchors,) if isinstance(anchors, str) else anchors, re.compile(regex, re.M) if regex else None, also
    )


_EVENTS = (
    r"load|unload|beforeunload|error|abort|click|dblclick|contextmenu|mouse\w+|pointer\w+|touch\w+|key\w+|wheel"
    r"|focus\w*|blur|change|input|invalid|submit|reset|select|search|scroll|resize|toggle|show|drag\w*|drop"
    r"|copy|cut|paste|begin|end|repeat|animation\w+|transition\w+|page\w+|hashchange|popstate|message|storage"
    r"|activate|beforeprint|afterprint|readystatechange|play\w*|pause|ended|canplay\w*|loaded\w+|loadstart"
    r"|progress|seek\w+|timeupdate|volumechange|waiting|securitypolicyviolation"
)
"""HTML/SVG event handler attribute names (after ``on``): a list, since ``onset=``/``ongoing=`` are plain XML."""

_TEXT_MARKERS: tuple[_Marker, ...] = (
    # PowerShell
    _m("PowerShell Invoke-Expression/IEX", ("invoke-expression", "iex"), r"invoke-expression|\biex\s*[(\$'\"]"),
    _m("PowerShell web download", ("invoke-webrequest", "invoke-restmethod", "downloadstring", "downloadfile",
                                   "net.webclient", "start-bitstransfer")),
    _m("PowerShell encoded command / base64 decoding", ("-encodedcommand", "frombase64string", "-enc "),
       r"-encodedcommand|frombase64string|\s-enc\s+[a-z0-9+/=]{16,}"),
    _m("PowerShell process/assembly/execution-policy control",
       ("start-process", "add-type", "set-executionpolicy", "reflection.assembly", "invoke-command",
        "-executionpolicy", "new-object", "$env:", "invoke-item", "get-wmiobject", "invoke-wmimethod"),
       r"start-process|add-type\b|set-executionpolicy|reflection\.assembly|invoke-command|-executionpolicy\s+\w+"
       r"|new-object\s+(-\w+\s+)?[\w.]+|\$env:\w+|invoke-item|get-wmiobject|invoke-wmimethod"),
    _m("PowerShell script block", ("[cmdletbinding", "param(", "param ("), r"\[cmdletbinding|^\s*param\s*\(\s*\["),
    # VBScript / VBA source
    _m("VBScript/VBA CreateObject/GetObject", ("createobject", "getobject"), r"\b(create|get)object\s*\("),
    _m("Windows Script Host object", ("wscript.", "cscript", "wscript.shell", "shell.application",
                                     "scripting.filesystemobject", "adodb.stream", "xmlhttp")),
    _m("VBScript execution", ("executeglobal", "on error resume next", "execute(")),
    _m("VBScript/VBA procedure", ("end sub", "end function"), r"^\s*(private\s+|public\s+)?(sub|function)\s+\w+"),
    _m("Office macro auto-exec entry point", ("autoopen", "auto_open", "document_open", "workbook_open")),
    # JScript / JavaScript
    _m("JScript ActiveXObject", "activexobject"),
    _m("JavaScript eval/decoding", ("eval(", "eval (", "fromcharcode", "unescape(", "atob(", "document.write")),
    _m("JavaScript function", "function", r"\bfunction\b\s*[\w$]*\s*\([^)\n]{0,200}\)\s*\{"),
    _m("JavaScript variable declaration", "var ", r"(^|[;{}\s])var\s+[a-z_$][\w$]*\s*=[^=]"),
    # batch and living-off-the-land binaries
    _m("batch @echo off", "echo", r"^\s*@?echo\s+off\b"),
    _m("batch variables/commands", ("%~dp0", "%~f0", "%comspec%", "cmd /c", "cmd.exe", "cmd /k", "goto ",
                                    "call :"),
       r"%~dp0|%~f0|%comspec%|\bcmd(\.exe)?\s+/[ck]\b|^\s*goto\s+:?\w+|^\s*call\s+:\w+"),
    _m("Windows LOLBin invocation", ("mshta", "rundll32", "regsvr32", "certutil", "bitsadmin", "schtasks", "wmic",
                                     "reg add", "reg.exe", "powershell", "cscript", "msiexec"),
       r"\b(mshta|rundll32|regsvr32|bitsadmin|wmic|msiexec)(\.exe)?\b|\bcertutil(\.exe)?\s+-(decode|urlcache)"
       r"|\bschtasks(\.exe)?\s+/create|\breg(\.exe)?\s+add\b|\bpowershell(\.exe)?\s+-"),
    # HTML / SVG / XSL / HTA / scriptlets
    _m("HTML/SVG/XSL <script>", "script", r"<\s*([\w-]+:)?script(let)?\b"),
    _m("HTA application", "hta:application"),
    _m("javascript:/vbscript: URL", ("javascript:", "vbscript:")),
    _m("HTML event handler attribute", " on", r"<[a-z][^<>]{0,1000}?\son(" + _EVENTS + r")\s{0,64}=", also=("<",)),
    _m("embedded ActiveX/applet/iframe in markup", ("<object", "<applet", "<embed", "<iframe", "<frame"),
       r"<(object|applet|embed|iframe|frame|frameset)\b"),
    # Windows registry, shortcuts, settings
    _m("Windows registry file", ("windows registry editor", "regedit4"),
       r"\A\W{0,4}(windows registry editor|regedit4)"),
    _m("Internet shortcut (.url)", "[internetshortcut]"),
    _m("Explorer command file (.scf)", "[shell]", also=("command=",)),
    _m("desktop entry launching a program", "[desktop entry]", also=("exec=",)),
    _m("settingcontent-ms deep link", "<deeplink>"),
    # Office XML / MHT with macros, SYLK/CSV formula launchers
    _m("Office XML/MHT carrying a macro project", ("editdata.mso", "vbaproject.bin", "activemime", "qwn0axzltwltz")),
    _m("spreadsheet formula launching a program (DDE)", "|",
       r"(^|[,;\t\"'])\s*[=+@-]\s*[\w.\\]+\s*\|\s*'[^'\n]{0,300}'\s*!"),
    _m("SYLK/XLM macro function", ("exec(", "call(", "register("), r"\b(exec|call|register)\s*\(\s*\""),
)


_ANCHOR_CHARS: tuple[str, ...] = tuple(sorted({c for mk in _TEXT_MARKERS for a in mk.anchors + mk.also for c in a}))


def _judge_text(text: str, path: str) -> Verdict:
    """Plain text is inert unless it is a script: see :data:`_TEXT_MARKERS` and the module docstring."""
    low = text.lower()
    # An anchor with a character the text lacks cannot occur in it: one memchr per distinct character
    # (~40) rules out most of the ~100 substring scans on ordinary text.
    absent = frozenset(c for c in _ANCHOR_CHARS if c not in low)
    found: list[str] = []
    for mk in _TEXT_MARKERS:
        if not any(absent.isdisjoint(a) and a in low for a in mk.anchors):
            continue
        if mk.also and not all(absent.isdisjoint(a) and a in low for a in mk.also):
            continue
        if mk.regex is not None:
            m = mk.regex.search(low)
            if m is None:
                continue
            snippet = m.group(0).strip()[:60]
        else:
            snippet = next(a for a in mk.anchors if a in low)
        found.append(f"{path}: {mk.what} ({snippet!r})")
    if found:
        return Verdict(False, "script", found)
    return Verdict(True, "text")


# --------------------------------------------------------------------------------------------------
# compression and archives


def _judge_stream(data: bytes, path: str, depth: int, ctx: _Ctx, kind: str) -> Verdict:
    """Single-stream compression: decompress with a hard output cap, then judge what came out."""
    if depth >= MAX_DEPTH:
        return Verdict(None, kind, [f"{path}: nesting deeper than {MAX_DEPTH} containers; not inspected"])
    cap = ctx.bytes_left
    out = bytearray()
    try:
        if kind == "gzip":
            rest = data
            while rest:
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                buf = rest
                while buf and not d.eof:
                    out += d.decompress(buf, cap + 1 - len(out))
                    if len(out) > cap:
                        raise _Limit(f"decompressed size exceeds the {MAX_TOTAL_BYTES} byte limit")
                    buf = d.unconsumed_tail
                if not d.eof:
                    return Verdict(None, kind, [f"{path}: gzip stream is truncated or corrupt"])
                rest = d.unused_data.lstrip(b"\0")
                if rest and not rest.startswith(b"\x1f\x8b"):
                    return Verdict(None, kind, [f"{path}: trailing garbage after gzip stream"])
        else:
            rest = data
            while rest:
                dec = bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()
                out += dec.decompress(rest, cap + 1 - len(out))
                while not dec.eof and not dec.needs_input:
                    if len(out) > cap:
                        raise _Limit(f"decompressed size exceeds the {MAX_TOTAL_BYTES} byte limit")
                    out += dec.decompress(b"", cap + 1 - len(out))
                if len(out) > cap:
                    raise _Limit(f"decompressed size exceeds the {MAX_TOTAL_BYTES} byte limit")
                if not dec.eof:
                    return Verdict(None, kind, [f"{path}: {kind} stream is truncated or corrupt"])
                rest = dec.unused_data
    except _Limit as exc:
        return Verdict(None, kind, [f"{path}: {exc}"])
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
        return Verdict(None, kind, [f"{path}: corrupt {kind} data: {exc}"])
    ctx.take_bytes(len(out))
    stem, dot, ext = path.rpartition(".")
    if dot and ext.lower() in ("gz", "bz2", "xz"):
        inner_name = stem
    elif dot and ext.lower() in ("tgz", "tbz", "tbz2", "txz"):
        inner_name = stem + ".tar"
    else:
        inner_name = f"{path}!<{kind}>"
    inner = _judge(bytes(out), inner_name, depth + 1, ctx)
    return Verdict(inner.clean, kind, inner.reasons)


def _read_capped(f: io.BufferedIOBase, ctx: _Ctx) -> bytes:
    """Read a member in chunks, charging the shared budget, so a lying size field cannot blow memory."""
    chunks = []
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            break
        ctx.take_bytes(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)


def _judge_zip(data: bytes, path: str, depth: int, ctx: _Ctx) -> Verdict:
    """Zip: OOXML and ODF packages get their own checks; any other zip is an archive judged member by member."""
    if depth >= MAX_DEPTH:
        return Verdict(None, "zip", [f"{path}: nesting deeper than {MAX_DEPTH} containers; not inspected"])
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception as exc:  # noqa: BLE001 - zipfile raises many types on hostile input
        return Verdict(None, "zip", [f"{path}: corrupt zip: {type(exc).__name__}: {exc}"])
    names = {i.filename for i in infos}
    if "[Content_Types].xml" in names:
        return _judge_ooxml(zf, infos, path, ctx)
    if "mimetype" in names and any(n.startswith("META-INF/") for n in names):
        mt = _read_member(zf, "mimetype", ctx, 1024) or b""
        if mt.startswith(b"application/vnd.oasis.opendocument"):
            return _judge_odf(zf, infos, path, ctx)
    parts: list[Verdict] = []
    extra: list[str] = []
    unknown = False
    try:
        for info in infos:
            if info.is_dir():
                continue
            ctx.take_member()
            mpath = f"{path}!{info.filename}"
            if info.flag_bits & 0x1:
                parts.append(Verdict(None, "zip", [f"{mpath}: password-protected (encrypted) member"]))
                continue
            try:
                with zf.open(info) as f:
                    member = _read_capped(f, ctx)
            except _Limit:
                raise
            except Exception as exc:  # noqa: BLE001
                parts.append(Verdict(None, "zip", [f"{mpath}: cannot extract: {type(exc).__name__}: {exc}"]))
                continue
            parts.append(_judge(member, mpath, depth + 1, ctx))
    except _Limit as exc:
        extra.append(f"{path}: {exc}; remaining members not inspected")
        unknown = True
    return _combine("zip", parts, extra, unknown)


def _judge_tar(data: bytes, path: str, depth: int, ctx: _Ctx) -> Verdict:
    if depth >= MAX_DEPTH:
        return Verdict(None, "tar", [f"{path}: nesting deeper than {MAX_DEPTH} containers; not inspected"])
    parts: list[Verdict] = []
    extra: list[str] = []
    unknown = False
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            while True:
                try:
                    info = tf.next()
                except tarfile.TarError as exc:
                    extra.append(f"{path}: corrupt tar: {exc}")
                    unknown = True
                    break
                if info is None:
                    break
                ctx.take_member()
                if not info.isfile():
                    continue
                f = tf.extractfile(info)
                if f is None:
                    continue
                member = _read_capped(f, ctx)
                if len(member) < info.size:
                    extra.append(f"{path}!{info.name}: member is truncated")
                    unknown = True
                parts.append(_judge(member, f"{path}!{info.name}", depth + 1, ctx))
    except _Limit as exc:
        extra.append(f"{path}: {exc}; remaining members not inspected")
        unknown = True
    except Exception as exc:  # noqa: BLE001
        extra.append(f"{path}: corrupt tar: {type(exc).__name__}: {exc}")
        unknown = True
    return _combine("tar", parts, extra, unknown)


def _read_member(zf: zipfile.ZipFile, name: str, ctx: _Ctx, cap: int = MAX_TOTAL_BYTES) -> bytes | None:
    """Read one package part (at most ``cap`` bytes); None when it cannot be read."""
    try:
        with zf.open(name) as f:
            out = f.read(cap)
        ctx.take_bytes(len(out))
        return out
    except _Limit:
        raise
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------------------------------
# OOXML and ODF

_REL_RE = re.compile(rb"<(?:\w{1,32}:)?Relationship\b([^<>]{0,8192})>", re.I)  # bounded: no quadratic rescans
_ATTR_RE = re.compile(rb"([\w:]{1,64})\s{0,64}=\s{0,64}(\"[^\"]*\"|'[^']*')")
_SAFE_LINK = re.compile(r"^(https?://|mailto:|#)", re.I)
_INSTR_RE = re.compile(
    rb"<w:instrText\b[^<>]{0,4096}>([^<]{0,65536})<|\bw:instr\s{0,64}=\s{0,64}\"([^\"]{0,65536})\"", re.I
)


def _attrs(blob: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in _ATTR_RE.findall(blob):
        key = k.decode("latin-1").split(":")[-1].lower()
        out[key] = v[1:-1].decode("utf-8", "replace")
    return out


def _smuggled_code(zf: zipfile.ZipFile, name: str, ctx: _Ctx) -> str | None:
    """Package parts are not all content-checked (fonts, printer settings would read as unknown binary),
    but an executable or script hidden as a part is still found from its first bytes."""
    head = _read_member(zf, name, ctx, 4096) or b""
    exe = _executable(head)
    if exe is not None:
        return exe[1]
    if head.startswith(b"#!"):
        return "script with interpreter line"
    return None


def _judge_ooxml(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], path: str, ctx: _Ctx) -> Verdict:
    """OOXML packages: macros, ActiveX, embedded objects, XLM sheets, DDE and external relationships."""
    reasons: list[str] = []
    unknown: list[str] = []
    for info in infos:
        ctx.take_member()
        n = info.filename
        low = n.lower()
        base = low.rsplit("/", 1)[-1]
        if info.flag_bits & 0x1:
            unknown.append(f"{path}!{n}: encrypted package part")
            continue
        if base == "vbaproject.bin" or base == "vbaprojectsignature.bin":
            reasons.append(f"{path}!{n}: VBA macro project")
        elif "/activex/" in f"/{low}":
            if base.endswith(".xml") or base.endswith(".bin"):
                reasons.append(f"{path}!{n}: ActiveX control")
        elif "/embeddings/" in f"/{low}" and not info.is_dir():
            reasons.append(f"{path}!{n}: embedded object")
        elif "/macrosheets/" in f"/{low}" or "/intlmacrosheets/" in f"/{low}":
            reasons.append(f"{path}!{n}: Excel 4.0 (XLM) macro sheet")
        elif low.endswith(".rels"):
            blob = _read_member(zf, n, ctx, 16 << 20)
            if blob is None:
                unknown.append(f"{path}!{n}: unreadable relationship part")
                continue
            for m in _REL_RE.finditer(blob):
                a = _attrs(m.group(1))
                if a.get("targetmode", "").lower() != "external":
                    continue
                rtype = a.get("type", "").rsplit("/", 1)[-1]
                target = a.get("target", "")
                if rtype == "hyperlink" and _SAFE_LINK.match(target.strip()):
                    continue
                reasons.append(f"{path}!{n}: external relationship {rtype or '?'} -> {target[:200]!r}")
        elif not low.endswith((".xml", "/")):
            smuggled = _smuggled_code(zf, n, ctx)
            if smuggled:
                reasons.append(f"{path}!{n}: {smuggled} stored as a package part")
        if low == "[content_types].xml":
            blob = _read_member(zf, n, ctx, 16 << 20) or b""
            lb = blob.lower()
            if b"vbaproject" in lb or b"macroenabled" in lb or b"macrosheet" in lb:
                reasons.append(f"{path}!{n}: content types declare a macro-enabled document")
        elif (low.startswith("word/") and low.endswith(".xml") and "/" not in low[5:]) or (
            low.startswith("xl/externallinks/") and low.endswith(".xml")
        ):
            blob = _read_member(zf, n, ctx, 64 << 20)
            if blob is None:
                unknown.append(f"{path}!{n}: unreadable part")
                continue
            if b"<ddelink" in blob.lower():
                reasons.append(f"{path}!{n}: DDE link")
            instr = b"".join(a or b for a, b in _INSTR_RE.findall(blob))
            if re.search(rb"\bdde(auto)?\b", instr, re.I):
                reasons.append(f"{path}!{n}: DDE field {instr[:80].decode('utf-8', 'replace')!r}")
    if reasons:
        return Verdict(False, "ooxml", reasons + unknown)
    if unknown:
        return Verdict(None, "ooxml", unknown)
    return Verdict(True, "ooxml")


def _judge_odf(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], path: str, ctx: _Ctx) -> Verdict:
    """OpenDocument: Basic/script modules, event bindings to macros, embedded OLE objects."""
    reasons: list[str] = []
    for info in infos:
        ctx.take_member()
        n = info.filename
        parts = n.split("/")
        if parts[0] == "Basic" and len(parts) == 3 and parts[2] and parts[2] not in (
            "script-lb.xml", "dialog-lb.xml", "script-lc.xml", "dialog-lc.xml"
        ):
            reasons.append(f"{path}!{n}: OpenDocument Basic macro module")
        elif parts[0] == "Scripts" and parts[-1]:
            reasons.append(f"{path}!{n}: OpenDocument script")
        elif re.fullmatch(r"Object \d+", n):
            reasons.append(f"{path}!{n}: embedded OLE object")
        elif not n.endswith((".xml", "/")) and (smuggled := _smuggled_code(zf, n, ctx)):
            reasons.append(f"{path}!{n}: {smuggled} stored as a package part")
        elif n in ("content.xml", "styles.xml", "settings.xml"):
            blob = _read_member(zf, n, ctx, 64 << 20) or b""
            if b"script:event-listener" in blob or b"vnd.sun.star.script:" in blob or b'"macro:' in blob:
                reasons.append(f"{path}!{n}: macro event binding")
    if reasons:
        return Verdict(False, "odf", reasons)
    return Verdict(True, "odf")


# --------------------------------------------------------------------------------------------------
# OLE compound files

_MSI_CLSIDS = {
    "000C1084-0000-0000-C000-000000000046": "Windows Installer package (MSI)",
    "000C1086-0000-0000-C000-000000000046": "Windows Installer patch (MSP)",
    "000C1082-0000-0000-C000-000000000046": "Windows Installer transform (MST)",
}


def _biff_macro_sheets(stream: bytes) -> list[str]:
    """Sheet names whose BOUNDSHEET record (0x0085) marks an Excel 4.0 macro sheet (dt=1) or VBA module (6)."""
    out = []
    pos = 0
    n = len(stream)
    while pos + 4 <= n:
        rtype, rlen = struct.unpack_from("<HH", stream, pos)
        body = stream[pos + 4 : pos + 4 + rlen]
        if rtype == 0x0085 and len(body) >= 6 and body[5] in (1, 6):
            raw = body[8:] if len(body) > 8 else b""
            label = raw.decode("latin-1", "replace").strip("\0")
            out.append(("XLM macro sheet " if body[5] == 1 else "VBA module sheet ") + repr(label[:40]))
        pos += 4 + rlen
    return out


def _judge_ole(data: bytes, path: str, depth: int, ctx: _Ctx) -> Verdict:
    """OLE2 compound files: VBA/XLM macros, embedded objects, installers; encrypted -> not inspectable."""
    try:
        import olefile
        from oletools import crypto, oleobj, olevba
    except Exception as exc:  # noqa: BLE001
        return Verdict(None, "ole", [f"{path}: OLE inspection libraries unavailable: {exc}"])
    try:
        ole = olefile.OleFileIO(data)
    except Exception as exc:  # noqa: BLE001
        if b"A\0t\0t\0r\0i\0b\0u\0t\0" in data or b"_\0V\0B\0A\0_\0P\0R\0O\0J\0E\0C\0T\0" in data:
            return Verdict(False, "ole", [f"{path}: corrupt OLE file containing a VBA project marker"])
        return Verdict(None, "ole", [f"{path}: corrupt OLE file: {type(exc).__name__}: {exc}"])
    reasons: list[str] = []
    unknown: list[str] = []
    parts: list[Verdict] = []
    try:
        clsid = (ole.root.clsid or "").upper() if ole.root is not None else ""
        if clsid in _MSI_CLSIDS:
            reasons.append(f"{path}: {_MSI_CLSIDS[clsid]}")
        try:
            if crypto.is_encrypted(ole):
                unknown.append(f"{path}: encrypted/password-protected Office document")
        except Exception as exc:  # noqa: BLE001
            unknown.append(f"{path}: encryption check failed: {type(exc).__name__}: {exc}")
        entries = ole.listdir(streams=True, storages=True)
        for entry in entries:
            low = [e.lower() for e in entry]
            shown = "/".join(entry).replace("\x01", "\\x01")
            if low[-1] == "\x01ole10native":
                what = "embedded OLE package (Ole10Native)"
                try:
                    native = oleobj.OleNativeStream(ole.openstream(entry).read(), package=False)
                    if native.filename:
                        what += f" with file {native.filename!r}"
                except Exception:  # noqa: BLE001 - the object is reported either way
                    pass
                reasons.append(f"{path}!{shown}: {what}")
            elif low[-1] == "\x01compobj" and len(low) > 1:
                reasons.append(f"{path}!{'/'.join(entry[:-1])}: embedded OLE object")
            elif len(low) == 2 and low[0].startswith("__attach_version1.0_#") and low[1] == "__substg1.0_37010102":
                parts.append(_msg_attachment(ole, entry, path, depth, ctx))
            elif low[-1] in ("workbook", "book") and len(low) == 1:
                try:
                    for s in _biff_macro_sheets(ole.openstream(entry).read()):
                        reasons.append(f"{path}!{entry[0]}: Excel 4.0 {s}")
                except Exception as exc:  # noqa: BLE001
                    unknown.append(f"{path}!{entry[0]}: unreadable workbook stream: {exc}")
        for entry in ole.listdir(streams=True, storages=False)[:MAX_MEMBERS]:
            if entry[-1].lower() == "__substg1.0_37010102":
                continue  # judged above as an e-mail attachment
            try:
                with ole.openstream(entry) as f:
                    exe = _executable(f.read(64))
            except Exception:  # noqa: BLE001 - unreadable streams are caught by the scanners below
                continue
            if exe is not None:
                reasons.append(f"{path}!{'/'.join(entry)}: {exe[1]} stored in an OLE stream")
        try:
            vp = olevba.VBA_Parser(filename=path, data=data, relaxed=True)
            try:
                if vp.detect_vba_macros():
                    reasons.append(f"{path}: VBA macro project")
                if vp.detect_xlm_macros() and not any("Excel 4.0" in r for r in reasons):
                    reasons.append(f"{path}: Excel 4.0 (XLM) macros")
            finally:
                vp.close()
        except Exception as exc:  # noqa: BLE001
            unknown.append(f"{path}: macro scanner failed: {type(exc).__name__}: {exc}")
            if any(e[-1].lower() in ("_vba_project", "_vba_project_cur", "vba", "macros") for e in entries):
                reasons.append(f"{path}: VBA project storage present")
    finally:
        with contextlib.suppress(Exception):
            ole.close()
    found = [Verdict(False, "ole", reasons)] if reasons else []
    return _combine("ole", found + parts, unknown, unknown=bool(unknown))


def _msg_attachment(ole: Any, entry: list[str], path: str, depth: int, ctx: _Ctx) -> Verdict:
    """An Outlook .msg attachment (PR_ATTACH_DATA_BIN) is a file like any other: judge it recursively."""
    storage = entry[0]
    name = storage
    for prop in ("__substg1.0_3707001F", "__substg1.0_3704001F"):  # long / short attachment file name
        with contextlib.suppress(Exception):
            if ole.exists(f"{storage}/{prop}"):
                name = ole.openstream(f"{storage}/{prop}").read().decode("utf-16-le", "replace").strip("\0")
                break
    if depth >= MAX_DEPTH:
        return Verdict(None, "msg", [f"{path}!{name}: nesting deeper than {MAX_DEPTH} containers; not inspected"])
    ctx.take_member()
    try:
        blob = ole.openstream(entry).read()
    except Exception as exc:  # noqa: BLE001
        return Verdict(None, "msg", [f"{path}!{name}: unreadable e-mail attachment: {exc}"])
    ctx.take_bytes(len(blob))
    return _judge(blob, f"{path}!{name}", depth + 1, ctx)


# --------------------------------------------------------------------------------------------------
# RTF

_RTF_OBJ = re.compile(
    rb"\\(object|objdata|objemb|objlink|objautlink|objocx|objupdate|objsub|objpub|objicemb|objhtml|objclass)"
    rb"(?![a-z])",
    re.I,
)
_RTF_TEMPLATE = re.compile(rb"\\\*\s*\\template\b", re.I)
_RTF_DDE = re.compile(rb"\\fldinst[^}]{0,400}?\bdde(auto)?\b", re.I)


def _judge_rtf(data: bytes, path: str) -> Verdict:
    """RTF carries exploits in embedded objects; also remote templates and DDE fields."""
    reasons: list[str] = []
    words = sorted({m.group(1).decode().lower() for m in _RTF_OBJ.finditer(data)})
    if words:
        shown = ", ".join("\\" + w for w in words)
        reasons.append(f"{path}: RTF embedded object ({shown})")
    if _RTF_TEMPLATE.search(data):
        reasons.append(f"{path}: RTF remote template (\\*\\template)")
    if _RTF_DDE.search(data):
        reasons.append(f"{path}: RTF DDE field")
    if not reasons:
        try:
            from oletools import rtfobj

            parser = rtfobj.RtfObjParser(data)
            parser.parse()
            if parser.objects:
                reasons.append(f"{path}: RTF embedded object ({len(parser.objects)} found by rtfobj)")
        except Exception as exc:  # noqa: BLE001
            return Verdict(None, "rtf", [f"{path}: RTF object scanner failed: {type(exc).__name__}: {exc}"])
    if reasons:
        return Verdict(False, "rtf", reasons)
    return Verdict(True, "rtf")


# --------------------------------------------------------------------------------------------------
# PDF

_PDF_ACTIVE = {
    "JavaScript": "JavaScript",
    "JS": "JavaScript action",
    "OpenAction": "automatic action on open",
    "AA": "additional (automatic) actions",
    "Launch": "Launch action (runs a program)",
    "EmbeddedFile": "embedded file",
    "EmbeddedFiles": "embedded file",
    "RichMedia": "RichMedia (Flash/video) annotation",
    "XFA": "XFA form (can carry script)",
}
_PDF_NAME = re.compile(rb"/((?:[^\s()<>\[\]{}/%#]|#[0-9A-Fa-f]{2})+)")
_HEX_ESC = re.compile(rb"#([0-9A-Fa-f]{2})")


def _pdf_raw_names(data: bytes) -> tuple[set[str], bool]:
    """Every PDF name in the raw bytes (``#xx`` decoded): works on files too broken for a parser."""
    found: set[str] = set()
    encrypted = False
    for m in _PDF_NAME.finditer(data):
        raw = m.group(1)
        if b"#" in raw:
            raw = _HEX_ESC.sub(lambda h: bytes([int(h.group(1), 16)]), raw)
        s = raw.decode("latin-1")
        if s in _PDF_ACTIVE:
            found.add(s)
        elif s == "Encrypt":
            encrypted = True
    return found, encrypted


def _judge_pdf(data: bytes, path: str) -> Verdict:
    """PDF: raw name scan (robust to damage) plus a pypdf walk of every object (sees compressed object streams)."""
    raw, raw_encrypted = _pdf_raw_names(data)
    parsed: set[str] = set()
    problem = ""
    encrypted = False
    try:
        encrypted, parsed = _pypdf_names(data)
    except _Limit as exc:
        problem = str(exc)
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on damaged files
        problem = f"PDF could not be parsed: {type(exc).__name__}: {exc}"
    names = raw | parsed
    if names:
        reasons = [f"{path}: PDF {_PDF_ACTIVE[n]} (/{n})" for n in sorted(names)]
        if encrypted or raw_encrypted:
            reasons.append(f"{path}: PDF is encrypted; other content not inspected")
        return Verdict(False, "pdf", reasons)
    if encrypted or (raw_encrypted and problem):
        return Verdict(None, "pdf", [f"{path}: encrypted PDF; content cannot be inspected"])
    if problem:
        return Verdict(None, "pdf", [f"{path}: {problem}"])
    return Verdict(True, "pdf")


def _pypdf_names(data: bytes) -> tuple[bool, set[str]]:
    """Walk the trailer and every object in the cross-reference tables; return (encrypted, active names)."""
    from pypdf import PdfReader
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        return True, set()
    found: set[str] = set()
    seen: set[tuple[int, int]] = set()
    stack: list[object] = [reader.trailer]
    for gen, table in list(reader.xref.items()):
        for idnum in list(table)[:_PDF_MAX_OBJECTS]:
            stack.append(IndirectObject(idnum, gen, reader))
    for idnum in list(reader.xref_objStm)[:_PDF_MAX_OBJECTS]:
        stack.append(IndirectObject(idnum, 0, reader))
    nodes = 0
    while stack:
        nodes += 1
        if nodes > _PDF_MAX_NODES:
            raise _Limit(f"PDF has more than {_PDF_MAX_NODES} objects to inspect")
        obj = stack.pop()
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in seen or len(seen) > _PDF_MAX_OBJECTS:
                continue
            seen.add(key)
            try:
                obj = obj.get_object()
            except Exception:  # noqa: BLE001 - one broken object must not hide the others
                continue
        if isinstance(obj, DictionaryObject):
            for k, v in dict.items(obj):
                ks = str(k).lstrip("/")
                if ks in _PDF_ACTIVE:
                    found.add(ks)
                stack.append(v)
        elif isinstance(obj, ArrayObject):
            stack.extend(list.__iter__(obj))
        elif isinstance(obj, NameObject):
            ns = str(obj).lstrip("/")
            if ns in _PDF_ACTIVE:
                found.add(ns)
    return False, found
