"""The child process of `ingestion.isolation.Reader`: limits its own memory and CPU, then reads
the files the parent names, one per line, and replies with their sections. Apart from
`isolation` (the parent's side, whose types the loaders use), so that neither imports in a
circle: this module imports the loaders, the loaders import `isolation`."""

from __future__ import annotations

import json
import os
import select
import sys
from pathlib import Path

from handbook.errors import LoaderError
from ingestion.isolation import EXIT_MEMORY, IDLE_S, Limits


def main() -> None:
    """The child: `-c ... LIMITS_JSON`; reads a JSON file name per line on stdin and writes a
    JSON reply per line. It stops when the parent goes away or after IDLE_S without work."""
    limits = Limits.from_json(sys.argv[1])
    _limit_resources(limits)
    # Libraries may print: keep stdout for the replies alone.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    from ingestion.loaders import read_sections  # after the redirection: imports may print

    while select.select([sys.stdin], [], [], IDLE_S)[0]:
        line = sys.stdin.readline()
        if not line:
            return
        _limit_cpu(limits)

        def progress(done: int, total: int) -> None:
            replies.write(json.dumps({"progress": [done, total]}).encode() + b"\n")
            replies.flush()
            _limit_cpu(limits)  # OCR pages are progress: the CPU limit moves on

        try:
            loaded = read_sections(Path(json.loads(line)), limits, progress)
            reply: dict[str, object] = {
                "title": loaded.title,
                "format": loaded.format,
                "sections": [
                    [s.text, s.page, list(s.heading_path), s.anchor, s.ocr] for s in loaded.sections
                ],
                "notes": list(loaded.notes),
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
            data = json.dumps(reply, ensure_ascii=False).encode() + b"\n"
        except MemoryError:
            os._exit(EXIT_MEMORY)
        del reply
        replies.write(data)
        replies.flush()


def _limit_resources(limits: Limits) -> None:
    try:
        import resource
    except ImportError:  # Windows has no resource limits; the timeout still applies
        return
    # RLIMIT_DATA rather than RLIMIT_AS: address space that an allocator merely reserves
    # (PartitionAlloc reserves gigabytes) must not count.
    value = limits.reader_memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)  # a lower limit set for the whole process stays
    resource.setrlimit(resource.RLIMIT_DATA, (value, value))


def _limit_cpu(limits: Limits) -> None:
    """CPU seconds for the next file (the soft limit, moved on per file): ends a child whose
    parent was killed while the child was stuck in a file."""
    try:
        import resource
    except ImportError:
        return
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime + limits.read_timeout_s) + 5
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
