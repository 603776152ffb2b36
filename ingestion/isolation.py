"""Read one file in a child process limited in memory and time.

Some files cost far more to read than their size suggests. Measured on this project's machine
(see docs/reliability.md): a 2 MB PDF whose content stream inflates to 2 GB took PDFium 3 GB of
memory; a 30 KB PDF holding 20 MB of `(A) Tj` operators 1.7 GB and 8 s; a line of 2 MB of `[`
in a Markdown file took markdown-it a minute (quadratic). PDFium aborts the whole process when
an allocation fails. Read in a child process with a memory limit (`RLIMIT_DATA`: the heap and
private writable mappings, which is what allocations use) and a timeout, such a file fails alone
with a clear reason, and neither the indexer nor the API server dies with it. Starting the child
costs about 0.15 s per file (it does not import pydantic or the settings), so only PDF and DOCX
files (which hold compressed data) and files over `ISOLATE_ABOVE` bytes are read this way.

This bounds resources; it is not a security sandbox (the child runs with the same rights).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from handbook.errors import LoaderError
from handbook.types import Section

ISOLATE_ABOVE = 256 * 1024
"""Bytes: larger text, Markdown and HTML files are read in the child too (below this, the
worst cases measured stay within a few seconds and 100 MB)."""
ISOLATED_FORMATS = frozenset({".pdf", ".docx"})
EXIT_MEMORY = 75
# How a child dies when an allocation fails: Python exits with EXIT_MEMORY, PDFium calls
# abort(), the kernel's OOM killer sends SIGKILL. Other signals are crashes.
_OUT_OF_MEMORY = {EXIT_MEMORY, -signal.SIGABRT, -signal.SIGKILL}

Loaded = tuple[str, str, list[Section]]


class ReadLimits(Protocol):
    """What reading one file may cost; the `index` settings (IndexSettings) are such limits."""

    @property
    def max_unpacked_mb(self) -> float: ...

    @property
    def reader_memory_mb(self) -> int: ...

    @property
    def read_timeout_s(self) -> float: ...


@dataclass(frozen=True)
class Limits:
    """The child's copy of the limits (importing the settings would cost it 0.25 s a file)."""

    max_unpacked_mb: float
    reader_memory_mb: int
    read_timeout_s: float


def needs_isolation(path: Path, size: int) -> bool:
    return path.suffix.lower() in ISOLATED_FORMATS or size > ISOLATE_ABOVE


def read_in_child(path: Path, limits: ReadLimits) -> Loaded:
    """(title, format, sections) of `path`, read by `ingestion.loaders.read_sections` in a
    child process; every way the child can fail becomes a LoaderError that says what to do."""
    root = Path(__file__).resolve().parent.parent
    code = (
        f"import sys; sys.path.insert(0, {str(root)!r}); "
        "from ingestion.isolation import main; main()"
    )
    copy = Limits(limits.max_unpacked_mb, limits.reader_memory_mb, limits.read_timeout_s)
    command = [sys.executable, "-c", code, str(path), json.dumps(asdict(copy))]
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=limits.read_timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise LoaderError(
            f"reading it took longer than {limits.read_timeout_s:g} s (a pathological or "
            "malicious file?); raise index.read_timeout_s if it is a genuine, huge document"
        ) from None
    if done.returncode in _OUT_OF_MEMORY:
        raise LoaderError(
            f"reading it needs more than {limits.reader_memory_mb} MB of memory (a decompression "
            "bomb?); raise index.reader_memory_mb if it is a genuine, huge document"
        )
    if done.returncode < 0:
        raise LoaderError(
            f"the reader crashed on this file ({_signal_name(-done.returncode)}); it is probably "
            "damaged: re-export it"
        )
    try:
        reply = json.loads(done.stdout)
    except ValueError:  # the child could not start or run: say why (a broken installation)
        lines = done.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise LoaderError(
            f"the reader process failed (exit code {done.returncode}: {lines[-1][:200]})"
        ) from None
    if "error" in reply:
        raise LoaderError(reply["error"])
    sections = [
        Section(text, page, tuple(heading), anchor)
        for text, page, heading, anchor in reply["sections"]
    ]
    return reply["title"], reply["format"], sections


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def main() -> None:
    """The child: `-c ... PATH LIMITS_JSON`; writes one JSON object to stdout."""
    path, limits = Path(sys.argv[1]), Limits(**json.loads(sys.argv[2]))
    _limit_resources(limits)
    # Libraries may print: keep stdout for the reply alone.
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        from ingestion.loaders import read_sections

        title, fmt, sections = read_sections(path, limits)
        reply: dict[str, object] = {
            "title": title,
            "format": fmt,
            "sections": [[s.text, s.page, list(s.heading_path), s.anchor] for s in sections],
        }
    except MemoryError:
        os._exit(EXIT_MEMORY)
    except LoaderError as exc:
        reply = {"error": str(exc)}
    except RecursionError:
        reply = {"error": "structure nested too deeply to read"}
    except Exception as exc:  # a loader bug must fail this file, not the whole run
        reply = {"error": f"could not be read ({type(exc).__name__}: {str(exc)[:200]})"}
    try:
        data = json.dumps(reply, ensure_ascii=False).encode()
    except MemoryError:
        os._exit(EXIT_MEMORY)
    with os.fdopen(reply_fd, "wb") as out:
        out.write(data)


def _limit_resources(limits: Limits) -> None:
    try:
        import resource
    except ImportError:  # Windows has no resource limits; the timeout still applies
        return
    # RLIMIT_DATA rather than RLIMIT_AS: address space that an allocator merely reserves
    # (PartitionAlloc reserves gigabytes) must not count. CPU seconds: end a child whose
    # parent was killed before it could stop it.
    wanted = {
        resource.RLIMIT_DATA: limits.reader_memory_mb * 1024 * 1024,
        resource.RLIMIT_CPU: int(limits.read_timeout_s) + 5,
    }
    for kind, value in wanted.items():
        _, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)  # a lower limit set for the whole process stays
        resource.setrlimit(kind, (value, value))
