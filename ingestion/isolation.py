"""Read one file in a child process limited in memory and time.

Some files cost far more to read than their size suggests. Measured on this project's machine
(see docs/reliability.md): a 2 MB PDF whose content stream inflates to 2 GB took PDFium 3 GB of
memory; a 30 KB PDF holding 20 MB of `(A) Tj` operators 1.7 GB and 8 s; a line of 2 MB of `[`
in a Markdown file took markdown-it a minute (quadratic). PDFium aborts the whole process when
an allocation fails. Read in a child process with a memory limit (`RLIMIT_DATA`: the heap and
private writable mappings, which is what allocations use) and a timeout, such a file fails alone
with a clear reason, and neither the indexer nor the API server dies with it. One child reads
file after file (`Reader`; starting one per file cost 0.16 s, 8x the reading of the sample
PDF), so that the limits cost little. PDF and DOCX files (which hold compressed data) and files
over `ISOLATE_ABOVE` bytes are read this way.

This bounds resources; it is not a security sandbox (the child runs with the same rights).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

from handbook.errors import LoaderError
from handbook.types import Section
from ingestion.ocr import OcrMode, OcrOptions

ISOLATE_ABOVE = 256 * 1024
"""Bytes: larger text, Markdown and HTML files are read in the child too (below this, the
worst cases measured stay within a few seconds and 100 MB)."""
ISOLATED_FORMATS = frozenset({".pdf", ".docx"})
IDLE_S = 60.0  # a child without work for this long stops (the next file starts a new one)
EXIT_MEMORY = 75
# How a child dies when an allocation fails: Python exits with EXIT_MEMORY, PDFium calls
# abort(), the kernel's OOM killer sends SIGKILL. Other signals are crashes.
_OUT_OF_MEMORY = {EXIT_MEMORY, -signal.SIGABRT, -signal.SIGKILL}


class Loaded(NamedTuple):
    """What a loader reads from a file."""

    title: str
    format: str
    sections: list[Section]
    notes: tuple[str, ...] = ()
    """Said about the file in the index summary (pages read by OCR, pages left out)."""


class ReadLimits(Protocol):
    """What reading one file may cost; the `index` settings (IndexSettings) are such limits."""

    @property
    def max_unpacked_mb(self) -> float: ...

    @property
    def reader_memory_mb(self) -> int: ...

    @property
    def read_timeout_s(self) -> float: ...

    @property
    def pdf_tables(self) -> bool: ...

    @property
    def ocr(self) -> OcrMode: ...

    @property
    def ocr_languages(self) -> tuple[str, ...]: ...

    @property
    def ocr_dpi(self) -> int: ...

    @property
    def ocr_command(self) -> str: ...

    @property
    def ocr_page_timeout_s(self) -> float: ...

    @property
    def ocr_workers(self) -> int: ...


PageProgress = Callable[[int, int], None]
"""Called with (pages done, pages to do) as OCR reads the pages of a file."""


@dataclass(frozen=True)
class Limits:
    """The child's copy of the limits (importing the settings would cost it 0.25 s a file)."""

    max_unpacked_mb: float
    reader_memory_mb: int
    read_timeout_s: float
    ocr_options: OcrOptions = field(default_factory=OcrOptions)
    pdf_tables: bool = True

    @classmethod
    def of(cls, limits: ReadLimits) -> Limits:
        return cls(
            limits.max_unpacked_mb,
            limits.reader_memory_mb,
            limits.read_timeout_s,
            OcrOptions(
                mode=limits.ocr,
                languages=tuple(limits.ocr_languages),
                dpi=limits.ocr_dpi,
                command=limits.ocr_command,
                page_timeout_s=limits.ocr_page_timeout_s,
                workers=limits.ocr_workers,
            ),
            limits.pdf_tables,
        )

    @classmethod
    def from_json(cls, text: str) -> Limits:
        values = json.loads(text)
        ocr = values.pop("ocr_options")
        ocr["languages"] = tuple(ocr["languages"])
        return cls(**values, ocr_options=OcrOptions(**ocr))


def needs_isolation(path: Path, size: int) -> bool:
    return path.suffix.lower() in ISOLATED_FORMATS or size > ISOLATE_ABOVE


def read_in_child(path: Path, limits: ReadLimits, on_page: PageProgress | None = None) -> Loaded:
    """(title, format, sections, notes) of `path`, read by `ingestion.loaders.read_sections`
    in a child process; every way the child can fail becomes a LoaderError that says what to
    do. `on_page` hears of each page read by OCR."""
    copy = Limits.of(limits)
    with _LOCK:
        reader = _READERS.get(copy)
        if reader is None:
            reader = _READERS[copy] = Reader(copy)
    reply = reader.read(path, on_page)
    if "error" in reply:
        raise LoaderError(reply["error"])
    sections = [
        Section(text, page, tuple(heading), anchor, ocr)
        for text, page, heading, anchor, ocr in reply["sections"]
    ]
    return Loaded(reply["title"], reply["format"], sections, tuple(reply["notes"]))


def close() -> None:
    """Stop the reader processes (they also stop on their own when idle or orphaned)."""
    with _LOCK:
        for reader in _READERS.values():
            reader.close()
        _READERS.clear()


class Reader:
    """One child process that reads files one after another, under `limits`.

    Starting a child per file cost 0.16 s (Python and pypdfium2 starting up), 8x the reading
    of the sample PDF itself; so the child stays, reads the next file, and is replaced when a
    file kills it. A file that runs out of memory in a child that has read others is retried
    once in a fresh child, so that no file pays for memory an earlier one left behind.
    """

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._process: subprocess.Popen[bytes] | None = None
        self._errors: IO[bytes] | None = None  # its stderr (a pipe could fill and block it)
        self._rest = bytearray()  # read from its stdout past the last line
        self._lock = threading.Lock()

    def read(self, path: Path, on_page: PageProgress | None = None) -> dict[str, Any]:
        with self._lock:
            for _ in range(2):
                fresh = self._process is None or self._process.poll() is not None
                if fresh:
                    self._process = self._start()
                assert self._process is not None
                try:
                    return self._ask(self._process, path, on_page)
                except _Retry:
                    self._process = None
                    if fresh:
                        break
            raise self._out_of_memory()

    @property
    def pid(self) -> int | None:
        """The child's process id, while one runs."""
        running = self._process is not None and self._process.poll() is None
        return self._process.pid if running and self._process is not None else None

    def _start(self) -> subprocess.Popen[bytes]:
        root = Path(__file__).resolve().parent.parent
        code = (
            f"import sys; sys.path.insert(0, {str(root)!r}); "
            "from ingestion.reader_child import main; main()"
        )
        if self._errors is not None:
            self._errors.close()
        self._rest.clear()
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115  # closed in close() or the next _start()
        return subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(asdict(self._limits))],
            # One thread per Tesseract process: OCR runs one process per core.
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
        )

    def _ask(
        self, process: subprocess.Popen[bytes], path: Path, on_page: PageProgress | None
    ) -> dict[str, Any]:
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(str(path)).encode() + b"\n")
            process.stdin.flush()
        except BrokenPipeError:  # it had stopped (idle); a fresh one is started
            process.wait()
            raise _Retry() from None
        while True:  # progress lines, then the reply
            reply = _read_line(process.stdout, self._limits.read_timeout_s, self._rest)
            if not reply or not reply.startswith(b'{"progress"'):
                break
            if on_page is not None:
                on_page(*json.loads(reply)["progress"])
        if reply is None:  # timed out: this child is spent
            process.kill()
            process.wait()
            self._process = None
            raise LoaderError(
                f"reading it took longer than {self._limits.read_timeout_s:g} s (a pathological "
                "or malicious file?) without progress; raise index.read_timeout_s if it is a "
                "genuine, huge document"
            )
        if reply:
            return dict(json.loads(reply))
        code = process.wait()  # it died on this file, or it had just stopped (idle)
        self._process = None
        if code in _OUT_OF_MEMORY or code == 0:
            raise _Retry()
        if code == -signal.SIGXCPU:
            raise LoaderError(
                f"reading it took longer than {self._limits.read_timeout_s:g} s of CPU time; "
                "raise index.read_timeout_s if it is a genuine, huge document"
            )
        if code < 0:
            raise LoaderError(
                f"the reader crashed on this file ({_signal_name(-code)}); it is probably "
                "damaged: re-export it"
            )
        assert self._errors is not None
        self._errors.seek(0)
        lines = self._errors.read().decode(errors="replace").strip().splitlines()
        raise LoaderError(  # the child could not start or run (a broken installation)
            f"the reader process failed (exit code {code}: {(lines or ['no output'])[-1][:200]})"
        )

    def _out_of_memory(self) -> LoaderError:
        return LoaderError(
            f"reading it needs more than {self._limits.reader_memory_mb} MB of memory (a "
            "decompression bomb?); raise index.reader_memory_mb if it is a genuine, huge document"
        )

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                self._process.kill()
                self._process.wait()
                self._process = None
            if self._errors is not None:
                self._errors.close()
                self._errors = None


class _Retry(Exception):
    """The child died of memory or had stopped: try again in a fresh one."""


def _read_line(stream: IO[bytes], timeout_s: float, rest: bytearray) -> bytes | None:
    """One line from the child (b"" when it ended without one), None after `timeout_s`.
    `rest` keeps what was read past that line (progress lines come in bursts)."""
    deadline = time.monotonic() + timeout_s
    fd = stream.fileno()
    while b"\n" not in rest:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        piece = os.read(fd, 1 << 20)
        if not piece:
            rest.clear()
            return b""
        rest += piece
    end = rest.index(b"\n") + 1
    line = bytes(rest[:end])
    del rest[:end]
    return line


_READERS: dict[Limits, Reader] = {}  # one per limits, for the life of the process
_LOCK = threading.Lock()
atexit.register(close)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
