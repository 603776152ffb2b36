"""JSON Lines, read tolerantly: every line comes back with its number, and a line that does not
parse comes back with the reason instead of an exception, so that each caller decides what a bad
line means (a question file reports it, a results file written up to a kill skips it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Line:
    """One non-blank line: its number (from 1) and its value, or why it is not JSON."""

    number: int
    value: Any = None
    problem: str | None = None


def parse_line(number: int, text: str) -> Line:
    """One line of JSON.

    >>> parse_line(3, '{"id": 1}')
    Line(number=3, value={'id': 1}, problem=None)
    >>> parse_line(4, '{"id": ').problem
    'not valid JSON (Expecting value)'
    """
    try:
        return Line(number, json.loads(text))
    except json.JSONDecodeError as exc:
        return Line(number, problem=f"not valid JSON ({exc.msg})")


def read_lines(path: Path, *, errors: str = "strict") -> Iterator[Line]:
    """The non-blank lines of a JSONL file, parsed; `errors` is how undecodable bytes are read
    (`"replace"`: a stray byte becomes U+FFFD instead of failing the whole file)."""
    with path.open(encoding="utf-8", errors=errors) as lines:
        for number, text in enumerate(lines, start=1):
            if text.strip():
                yield parse_line(number, text)


def read_records(path: Path) -> list[Any]:
    """The values of the lines that parse; the others (a line cut by a kill) are skipped, and a
    missing file has none."""
    if not path.is_file():
        return []
    return [line.value for line in read_lines(path) if line.problem is None]
