"""Tables as text that keeps its header: one line per row, cells between pipes.

    | Bauteil | Anzugsdrehmoment | Hinweis |
    | Radschraube | 120 Nm | über Kreuz |

The first line of a table is its header. Every loader writes tables this way (Markdown, HTML,
DOCX, PDF), and the chunker repeats the header line at the top of a chunk that continues a
table (ingestion/chunking.py), so a row is never cited without the names of its columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

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


# --- PDF ----------------------------------------------------------------------------------

Box = tuple[float, float, float, float]
"""x0, top, x1, bottom in PDF points from the page's top left (pdfplumber's coordinates)."""
CellText = Callable[[Box], str]
MAX_ROW_PT = 80.0
"""A ruled row taller than this (about six lines of text) is a column of unruled rows."""
STACK_GAP_PT = 40.0
"""Horizontal rules at most this far apart stack up into one table (two tables with a caption
between them stay apart). On the Debian Reference 40 gave 161/170 right headers, 30 gave 155,
55 gave 159 and 80 gave 157."""


def pdf_page_tables(page: Any, cell_text: CellText) -> list[tuple[Box, list[str]]]:
    """(region, table lines) of the ruled tables on a pdfplumber page, top to bottom.

    pdfplumber finds the grid from the drawn rules (its `lines` strategy). Manuals often leave
    out the outer vertical rules, or have a single rule between two columns: a table is also
    looked for where horizontal rules of the same width stack up, and every region is read
    with vertical rules added at the ends of its horizontal ones. The text of each cell comes
    from `cell_text` (PDFium, which keeps word spaces that pdfplumber's own text loses on
    tightly set PDFs). A grid of one column (a framed code listing) is not a table; a table
    whose columns or rows are not ruled stays running text.
    """
    rules = _joined([e for e in page.edges if e["orientation"] == "h"])
    rules = [(x0, x1, top) for x0, x1, top in rules if x1 - x0 > 20]
    regions = [_widen(table.bbox, rules) for table in page.find_tables()] + _stacks(rules)
    found: list[tuple[Box, list[str]]] = []
    for box in regions:
        if any(_overlap(box, other) for other, _ in found):
            continue
        x0, top, x1, bottom = box
        region = page.crop((max(x0 - 1, 0), max(top - 1, 0), min(x1 + 1, page.width), bottom + 1))
        grids = region.find_tables({"explicit_vertical_lines": [x0, x1]})
        table = max(grids, key=lambda t: len(t.cells), default=None)
        if table is None or any(row.bbox[3] - row.bbox[1] > MAX_ROW_PT for row in table.rows):
            continue  # rows are not ruled: one "row" holds many lines of text
        rows = [
            [cell_text(cell) if cell is not None else "" for cell in row.cells]
            for row in table.rows
        ]
        lines = _rows_to_lines(rows)
        if lines:
            found.append((box, lines))
    return sorted(found, key=lambda item: item[0][1])


def _widen(box: Box, rules: list[tuple[float, float, float]]) -> Box:
    """`box` widened to the ends of the (joined) horizontal rules that cross it."""
    x0, top, x1, bottom = box
    for left, right, y in rules:
        if top - 2 <= y <= bottom + 2 and left <= x1 and right >= x0:
            x0, x1 = min(x0, left), max(x1, right)
    return (x0, top, x1, bottom)


def _stacks(rules: list[tuple[float, float, float]]) -> list[Box]:
    """Regions where 3+ horizontal rules of the same extent follow each other closely (a
    table ruled between rows, with few or no vertical rules)."""
    regions: list[Box] = []
    groups: dict[tuple[int, int], list[float]] = {}
    for x0, x1, top in rules:
        groups.setdefault((round(x0 / 2), round(x1 / 2)), []).append(top)
    for (left, right), tops in groups.items():
        tops = sorted(set(round(t, 1) for t in tops))
        run = [tops[0]]
        for top in [*tops[1:], float("inf")]:
            if top - run[-1] <= STACK_GAP_PT:
                run.append(top)
                continue
            if len(run) >= 3:
                regions.append((left * 2.0, run[0], right * 2.0, run[-1]))
            run = [top]
    return regions


def _joined(rules: list[dict[str, Any]]) -> list[tuple[float, float, float]]:
    """(x0, x1, top) of the horizontal rules, pieces that meet on one line joined (a rule is
    often drawn cell by cell)."""
    joined: list[list[float]] = []
    for rule in sorted(rules, key=lambda r: (round(r["top"], 1), r["x0"])):
        last = joined[-1] if joined else None
        if last and abs(last[2] - rule["top"]) < 0.5 and rule["x0"] <= last[1] + 2:
            last[1] = max(last[1], rule["x1"])
        else:
            joined.append([rule["x0"], rule["x1"], rule["top"]])
    return [(x0, x1, top) for x0, x1, top in joined]


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _rows_to_lines(rows: list[list[str]]) -> list[str]:
    """Header and rows; leading rows with one filled cell (a title over the table) become a
    plain line before it. [] when it is not a table (one column, or a header alone)."""
    cells = [[" ".join(c.split()) for c in row] for row in rows]
    cells = [row for row in cells if any(row)]
    titles: list[str] = []
    while cells and len(cells[0]) > 1 and sum(1 for c in cells[0] if c) == 1:
        titles.append(next(c for c in cells[0] if c))
        cells.pop(0)
    if len(cells) < 2 or max(sum(1 for c in row if c) for row in cells) < 2:
        return []
    return titles + table_lines(cells)
