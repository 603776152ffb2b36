"""Tables as text that keeps its header: one line per row, cells between pipes.

    | Bauteil | Anzugsdrehmoment | Hinweis |
    | Radschraube | 120 Nm | über Kreuz |

The first line of a table is its header. Every loader writes tables this way (Markdown, HTML,
DOCX, PDF), and the chunker repeats the header line at the top of a chunk that continues a
table (ingestion/chunking.py), so a row is never cited without the names of its columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_ROW = re.compile(r"^\| .* \|$")


def row_line(cells: Iterable[str | None]) -> str:
    r"""One table row: cells with their whitespace collapsed, a pipe inside a cell escaped.

    >>> row_line(["Radschraube", "120\nNm", None, "a|b"])
    '| Radschraube | 120 Nm |  | a\\|b |'
    """
    cleaned = (" ".join((cell or "").split()).replace("|", "\\|") for cell in cells)
    return "| " + " | ".join(cleaned) + " |"


def is_row(line: str) -> bool:
    """
    >>> is_row("| Rad | 120 Nm |"), is_row("Rad | 120 Nm")
    (True, False)
    """
    return bool(_ROW.match(line.strip()))


def table_lines(rows: Sequence[Sequence[str | None]]) -> list[str]:
    """Header and rows as lines; rows without any text are left out."""
    return [row_line(row) for row in rows if any((cell or "").strip() for cell in row)]


def headers(text: str) -> list[str | None]:
    r"""For each line of `text`, the header line of the table it is a row of (None for the
    header itself and for lines outside tables).

    >>> headers("Text\n| A | B |\n| 1 | 2 |\n| 3 | 4 |\nmehr")
    [None, None, '| A | B |', '| A | B |', None]
    """
    result: list[str | None] = []
    header: str | None = None
    for line in text.split("\n"):
        if not is_row(line):
            header = None
            result.append(None)
        elif header is None:
            header = line.strip()
            result.append(None)
        else:
            result.append(header)
    return result
