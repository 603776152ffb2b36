"""Passages cut into the pieces an answer is made of: table rows (with their header), list
items (and whole lists), lines of line-structured text, and sentences.

Manual text comes in three shapes: Markdown/HTML tables and lists (rows start with `|`, items
with `1.` or `-`), prose (sentences, often hard-wrapped in PDFs), and PDF tables or data sheets
pulled out as short lines without sentence punctuation. Each unit keeps what it needs to be
shown on its own: a row its header, an item its list, a sentence its neighbours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from handbook.text import sentences

Kind = Literal["row", "item", "list", "line", "sentence"]

_ROW = re.compile(r"^\s*\|")
_RULE = re.compile(r"^[|\s:+-]+$")
_ITEM = re.compile(r"^\s*(?:\d{1,3}[.)]|[-•*–])\s+\S")
_SENTENCE_END = re.compile(r"[.!?:;]\s*$")
# A line that goes on in the next one: an open bracket, a hyphen or a conjunction at its end.
_CONTINUES = re.compile(r"(?:[-,/(]|\b(?:und|oder|and|or|the|der|die|das|mit|with))\s*$", re.I)


@dataclass(frozen=True)
class Unit:
    """A piece of a passage: what is scored (`core`) and what is shown (`text`)."""

    kind: Kind
    core: str
    text: str
    position: int
    """Order within the passage: spans of one passage are shown in reading order."""
    block: int
    """Units of one table, list or paragraph share a block number."""
    context: str = ""
    """What the unit belongs under: a row's header, an item's intro line, a data line's first
    line (the header of a table pulled out of a PDF as lines)."""


def _flat(text: str) -> str:
    return " ".join(text.split())


def _cells(row: str) -> str:
    """A Markdown row as `a | b | c` without the outer pipes.

    >>> _cells("| Radschraube | 120 Nm |  über Kreuz |")
    'Radschraube | 120 Nm | über Kreuz'
    """
    return " | ".join(_flat(cell) for cell in row.strip().strip("|").split("|"))


def _marker(line: str) -> str:
    """The kind of a list item's marker: numbered steps or bullets."""
    return "number" if line.lstrip()[:1].isdigit() else "bullet"


def _is_title(line: str) -> bool:
    """A short line without sentence punctuation: a heading such as "Arbeitsschritte"."""
    return len(line.strip()) <= 40 and not _SENTENCE_END.search(line) and not _ITEM.match(line)


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    r"""Consecutive lines grouped into ("table" | "list" | "text", lines); blank lines split, and
    so does a change from bullets to numbered steps. A PDF's hard-wrapped item goes on in the
    next line, but a heading-like line right before a list of the other kind is that list's
    title.

    >>> for block in _blocks("- Filter\n- Schlüssel\nArbeitsschritte\n1. Motor warmfahren."):
    ...     print(block)
    ('list', ['- Filter', '- Schlüssel'])
    ('text', ['Arbeitsschritte'])
    ('list', ['1. Motor warmfahren.'])
    """
    blocks: list[tuple[str, list[str]]] = []
    wrapped: str | None = None  # the line last joined to an item as its hard-wrapped end
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            blocks.append(("blank", []))
            wrapped = None
            continue
        kind = (
            "table"
            if _ROW.match(line) or " | " in line
            else "list"
            if _ITEM.match(line)
            else "text"
        )
        last = blocks[-1] if blocks else None
        if last and last[0] == "list" == kind and _marker(line) != _marker(last[1][-1]):
            if wrapped is not None and _is_title(wrapped):
                last[1][-1] = last[1][-1][: -len(wrapped) - 1]
                blocks.append(("text", [wrapped]))
            blocks.append((kind, [line]))
        elif last and last[0] == kind:
            last[1].append(line)
        elif last and last[0] == "list" and kind == "text" and raw[:1].isspace():
            last[1][-1] += " " + line.strip()  # an indented continuation of the item above
        elif (
            last and last[0] == "list" and kind == "text" and not _SENTENCE_END.search(last[1][-1])
        ):
            last[1][-1] += " " + line.strip()  # a hard-wrapped item (PDF)
            wrapped = line.strip()
            continue
        else:
            blocks.append((kind, [line]))
        wrapped = None
    return [(kind, lines) for kind, lines in blocks if lines]


def _joined_lines(lines: list[str]) -> list[str]:
    """Lines of a line-structured block, a line that goes on joined with the next.

    >>> _joined_lines(["Radschrauben (Stahl- und", "Felgen) 120 Nm", "Zündkerzen 25 Nm"])
    ['Radschrauben (Stahl- und Felgen) 120 Nm', 'Zündkerzen 25 Nm']
    """
    out: list[str] = []
    for line in lines:
        flat = _flat(line)
        previous = out[-1] if out else ""
        if previous and (previous.count("(") > previous.count(")") or _CONTINUES.search(previous)):
            out[-1] = f"{previous} {flat}"
        else:
            out.append(flat)
    return out


def _is_prose(lines: list[str]) -> bool:
    """Prose (sentences wrapped over lines) rather than a data sheet of short lines."""
    joined = " ".join(lines)
    ends = len(re.findall(r"[.!?](?:\s|$)", joined))
    return ends >= max(1, len(lines) // 3) or (len(lines) <= 2 and len(joined) > 80)


def units(text: str, skip: frozenset[str] = frozenset()) -> list[Unit]:
    r"""The units of a passage's text; lines equal to one of `skip` (headings) are left out.

    >>> [(u.kind, u.text) for u in units("| Teil | Moment |\n|---|---|\n| Rad | 120 Nm |")]
    [('row', 'Teil | Moment\nRad | 120 Nm')]
    >>> [(u.kind, u.text) for u in units("Teil | Moment\nRad | 120 Nm")]
    [('row', 'Teil | Moment\nRad | 120 Nm')]
    >>> [(u.kind, u.text) for u in units("| Teil | Moment |\n| Rad | 120 Nm |")]
    [('row', 'Teil | Moment\nRad | 120 Nm')]
    >>> [u.kind for u in units("Steps:\n1. Lift.\n2. Remove the wheel.\nDone. Now test it.")]
    ['item', 'item', 'list', 'sentence', 'sentence']
    """
    out: list[Unit] = []
    position = 0

    def add(kind: Kind, core: str, shown: str, block: int, context: str = "") -> None:
        nonlocal position
        out.append(Unit(kind, core, shown, position, block, context))
        position += 1

    intro = ""
    for block, (kind, lines) in enumerate(_blocks(text)):
        lines = [line for line in lines if _flat(line) not in skip]
        if not lines:
            continue
        if kind == "table":
            rows = [_cells(r) for r in lines if not _RULE.match(r.strip())]
            # A table starts with its header row (the loaders write one `| a | b |` line per
            # row and repeat the header at the top of a chunk that continues a table).
            has_header = len(rows) > 1
            header = rows[0] if has_header else ""
            for row in rows[1:] if has_header else rows:
                add("row", row, f"{header}\n{row}" if header else row, block, header)
        elif kind == "list":
            items = [_flat(item) for item in lines]
            for item in items:
                add("item", item, item, block, intro)
            if len(items) > 1:
                whole = "\n".join(items)
                add("list", whole, f"{intro}\n{whole}" if intro else whole, block, intro)
        elif _is_prose(lines):
            for sentence in sentences(_flat(" ".join(lines))):
                add("sentence", sentence.strip(), sentence.strip(), block)
        elif len(lines) == 1 and _is_title(lines[0]):
            pass  # a title: shown as the intro of the list that follows it
        else:
            header = ""
            for line in _joined_lines(lines):
                if not line.endswith(":"):  # an intro ("Steps:"): shown with its list
                    add("line", line, line, block, header)
                if not any(c.isdigit() for c in line) and not _SENTENCE_END.search(line):
                    header = line  # a header-like line: what the data lines below it mean
        last = _flat(lines[-1])
        titled = len(lines) == 1 and _is_title(last)
        intro = last if kind == "text" and (last.endswith(":") or titled) else ""
    return out
