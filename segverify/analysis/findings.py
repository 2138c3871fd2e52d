"""Findings and results: what analyses produce and reports read (reports never see the model)."""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("critical", "high", "medium", "low", "info")
VIOLATION_SEVERITIES = frozenset({"critical", "high", "medium"})

# code → (default severity, short English title, short Japanese title)
CODES: dict[str, tuple[str, str, str]] = {
    "MYNUMBER_ISOLATION": ("critical", "My Number segment not isolated", "マイナンバー利用事務系の分離不備"),
    "LGWAN_INTERNET_UNSANITIZED": ("high", "Unsanitized LGWAN ↔ Internet traffic allowed",
                                   "LGWAN接続系とインターネット接続系の間で無害化されない通信を許可"),
    "FIREWALL_BYPASS": ("high", "Path between families without a firewall", "ファイアウォールを経由しない経路"),
    "CHANNEL_NOT_ALLOWED_BY_MODEL": ("high", "Channel not permitted by the declared model",
                                     "採用モデルで認められない通信経路"),
    "EXCEPTION_TOO_BROAD": ("high", "Exception too broad", "例外通信の範囲が広すぎる"),
    "EXCEPTION_NOT_ALLOWED": ("high", "Exception between families that allow none",
                              "例外を認められない領域間の例外通信"),
    "SECURITY_CLOUD_BYPASS": ("medium", "Internet reached without the security cloud",
                              "自治体情報セキュリティクラウドを経由しないインターネット接続"),
    "UNKNOWN_ADDRESS": ("medium", "Address in no segment", "どのセグメントにも属さないアドレス"),
    "UNSUPPORTED_RULE": ("low", "Rule modelled conservatively", "保守的に解釈したルール"),
    "RULE_SHADOWED": ("info", "Rule can never match", "一致することのないルール"),
    "MYNUMBER_FLOW": ("critical", "Observed My Number flow", "マイナンバー利用事務系の通信を観測"),
    "UNSANITIZED_FLOW": ("high", "Observed unsanitized flow", "無害化されていない通信を観測"),
    "PROTOCOL_MISMATCH": ("high", "Screen-transfer channel carries another protocol", "画面転送以外のプロトコル"),
    "MAIL_NOT_TEXT": ("high", "Mail not reduced to text", "テキスト化されていないメール"),
    "FILE_NOT_SANITIZED": ("high", "File with active content", "無害化されていないファイル"),
    "DENIED_BUT_OBSERVED": ("high", "Flow the rules deny was observed", "ルール上拒否される通信を観測"),
    "CAPTURE_DAMAGED": ("low", "Capture damaged", "キャプチャの破損"),
}


@dataclass
class Finding:
    code: str
    severity: str
    message: str
    message_ja: str
    src_segment: str | None = None
    dst_segment: str | None = None
    witness: dict[str, Any] | None = None
    path: list[dict[str, Any]] | None = None
    rules: list[dict[str, Any]] | None = None  # every rule involved (capped), with rules_total
    rules_total: int | None = None
    packets: int | None = None  # exact number of packets concerned, where that is meaningful
    flow: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def sort_key(self) -> tuple[Any, ...]:
        return (SEVERITIES.index(self.severity), self.code, self.src_segment or "", self.dst_segment or "",
                self.message)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "severity": self.severity}
        if self.src_segment is not None:
            out["src_segment"] = self.src_segment
        if self.dst_segment is not None:
            out["dst_segment"] = self.dst_segment
        out["message"] = self.message
        out["message_ja"] = self.message_ja
        for key in ("witness", "path", "rules", "rules_total", "packets", "flow"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return out


@dataclass
class Result:
    """What one command found, on which inputs: the only thing reports read."""

    command: str
    findings: list[Finding]
    inputs: list[str]
    stats: dict[str, Any] = field(default_factory=dict)
    incomplete: list[str] = field(default_factory=list)  # why the analysis could not cover everything
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. replay's flows
    # for renderers, not part of the JSON report: segment → family, the channels declared
    context: dict[str, Any] = field(default_factory=dict)
    # inputs' sha256 already known or under way (:func:`hash_in_background`, a cluster's workers)
    digests: dict[str, str | Future[str]] = field(default_factory=dict)
    # what the analysis built (check: the compiled context), held as long as the result: the console command
    # writes its report and leaves without freeing it, where freeing 10k rules' BDDs node by node took 0.3 s
    retain: Any = field(default=None, repr=False, compare=False)

    def input_hashes(self) -> list[tuple[str, str]]:
        """Each input with its sha256, so every report names exactly what it judged. A digest computed
        elsewhere that failed is computed here again (and its error, if any, raised here)."""
        out = []
        for path in self.inputs:
            digest = self.digests.get(path)
            if isinstance(digest, Future):
                try:
                    digest = digest.result()
                except Exception:  # noqa: BLE001 - hashed again below, where its error is the one reported
                    digest = None
            out.append((path, digest if digest is not None else sha256_file(path)))
        return out

    @property
    def status(self) -> str:
        if any(f.severity in VIOLATION_SEVERITIES for f in self.findings):
            return "violations"
        if self.incomplete:
            return "incomplete"
        return "compliant"

    @property
    def exit_code(self) -> int:
        return {"compliant": 0, "violations": 1, "incomplete": 3}[self.status]


def hash_in_background(paths: Sequence[str]) -> dict[str, Future[str]]:
    """Start hashing ``paths``, one after another, beside the analysis, and return the digests to come.

    Captures are gigabytes and the report needs their digests only at the end: hashing them while they are
    read puts the second core to work, where hashing after the analysis added 0.4 s to a replay of 1M
    packets. On Linux a forked process maps each file in windows and hashes the pages in place (a thread
    reading the file copied every byte first: a fifth of the hashing's CPU); a file cut short while mapped
    kills that process, never this one, and a digest it did not deliver is computed again by
    :meth:`Result.input_hashes`. Elsewhere, or with ``SEGVERIFY_NO_SIDECAR=1``, a daemon thread reads them."""
    if paths and sys.platform.startswith("linux") and os.environ.get("SEGVERIFY_NO_SIDECAR") is None:
        try:
            return _hash_in_process(list(dict.fromkeys(paths)))
        except OSError:
            pass  # no process to be had: a thread does it
    futures: dict[str, Future[str]] = {p: Future() for p in paths}
    if not futures:
        return futures

    def work() -> None:
        for path, fut in futures.items():
            try:
                fut.set_result(sha256_file(path))
            except BaseException as exc:  # noqa: BLE001 - delivered to whoever asks for this digest
                fut.set_exception(exc)

    threading.Thread(target=work, name="segverify-hash", daemon=True).start()
    return futures


BESIDE_NICENESS = 3
"""How much the processes forked beside the main one (the hashing here, the replay's side process) yield to it:
the main process's work (reading, the flow table, judging every flow) is the longest chain, and when the two
cores are contended a little priority lets it finish first (1M packets: 0.02 s; 4M: 0.1 s). More starved the
hashing at 4M packets, which then ended last."""


def yield_to_main() -> None:
    """Lower this (forked) process's priority by :data:`BESIDE_NICENESS`; nothing where that is refused."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(BESIDE_NICENESS)


HASH_WINDOW = 64 << 20
"""Bytes of a file mapped at a time by the hashing process (its memory stays flat whatever the file's size)."""


def _hash_in_process(paths: list[str]) -> dict[str, Future[str]]:
    """Fork a process that writes one line per file, its digest or ``-``; the futures read the pipe when first
    asked (no thread here: the replay forks its side process later). A line that never comes fails its future,
    and the digest is computed again."""
    rfd, wfd = os.pipe()
    try:
        parent = os.getpid()
        pid = os.fork()
    except OSError:
        os.close(rfd)
        os.close(wfd)
        raise
    if pid == 0:  # the hashing process: digests to the pipe, then gone without running any exit handler
        try:
            # only the pipe: a copy of another process's pipe end here would keep it from seeing its peer go
            for fd in map(int, os.listdir("/proc/self/fd")):
                if fd > 2 and fd != wfd:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
            yield_to_main()
            with os.fdopen(wfd, "w") as out:
                for path in paths:
                    try:
                        line = _sha256_mapped(path, parent)
                    except Exception:  # noqa: BLE001 - the main process hashes it again and reports its error
                        line = "-"
                    out.write(line + "\n")
                    out.flush()
        finally:
            os._exit(0)
    os.close(wfd)
    pipe = _DigestPipe(rfd, pid, paths)
    return pipe.futures


class _DigestPipe:
    """The hashing process's answers, read all at once when the first is asked for."""

    def __init__(self, rfd: int, pid: int, paths: list[str]) -> None:
        self._rfd, self._pid = rfd, pid
        self.futures: dict[str, Future[str]] = {p: _PipedDigest(self) for p in paths}
        self._read = False

    def read_all(self) -> None:
        if self._read:
            return
        self._read = True
        with os.fdopen(self._rfd, "r") as lines:
            for path, fut in self.futures.items():
                line = lines.readline().strip()
                if len(line) == 64:
                    fut.set_result(line)
                else:
                    fut.set_exception(OSError(f"{path}: not hashed beside the analysis"))
        os.waitpid(self._pid, 0)

    def __del__(self) -> None:
        """Never asked for (the run failed first): the process is stopped and reaped, its pipe closed."""
        if not self._read:
            self._read = True
            with contextlib.suppress(OSError):
                os.close(self._rfd)
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)


class _PipedDigest(Future):  # type: ignore[type-arg]
    """A future the hashing process's pipe completes when it is asked for."""

    def __init__(self, pipe: _DigestPipe) -> None:
        super().__init__()
        self._pipe = pipe

    def result(self, timeout: float | None = None) -> str:
        self._pipe.read_all()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._pipe.read_all()
        return super().exception(timeout)


def _sha256_mapped(path: str, parent: int) -> str:
    """The sha256 of a file, hashed from mapped windows of it (nothing copied); what it grew by meanwhile is
    read. Stops (ends the process) when ``parent`` is gone: nobody is waiting for the digest any more."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        at = 0
        while at < size:
            if os.getppid() != parent:
                os._exit(0)
            n = min(HASH_WINDOW, size - at)
            with mmap.mmap(fd, n, access=mmap.ACCESS_READ, offset=at) as window:
                h.update(window)
            at += n
        fh.seek(at)
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str) -> str:
    """The sha256 of a file, read in blocks (captures are gigabytes)."""
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
