"""Question files for `--batch`: one question per line, or JSONL with a `question` field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from handbook.errors import HandbookError
from handbook.jsonl import parse_line


def read_questions(path: Path) -> Iterator[str]:
    """Yield questions; a malformed line fails with its line number.

    Blank lines and lines starting with '#' are skipped.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            parsed = parse_line(number, line)
            if parsed.problem is not None:
                raise HandbookError(f"{path}:{number}: {parsed.problem}.")
            record = parsed.value
            question = record.get("question") if isinstance(record, dict) else None
            if not isinstance(question, str) or not question.strip():
                raise HandbookError(f"{path}:{number}: needs a non-empty 'question' string.")
            yield question.strip()
        else:
            yield line
