"""Regenerate the generated sample manuals in ``samples/manuals/``.

Currently this builds one file:

* ``werkstatthandbuch_kompakt-3.pdf`` - a German workshop manual for the
  fictional car "Nordwagen Kompakt 3" (8 pages, one topic per page).

The content lives in ``samples/werkstatthandbuch.yaml``. The output is
deterministic: the PDF creation date is fixed, so rebuilding with the same
fpdf2 version gives byte-identical output.

Usage (from the repository root)::

    .venv/bin/python samples/build.py            # (re)write the PDF
    .venv/bin/python samples/build.py --check    # exit 1 if the PDF is stale

The other sample manuals (HTML, Markdown, plain text) are hand-written and
are not touched by this script.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

HERE = Path(__file__).resolve().parent
MANUALS = HERE / "manuals"
PDF_NAME = "werkstatthandbuch_kompakt-3.pdf"

# Fixed creation date -> reproducible bytes.
CREATION_DATE = datetime(2024, 1, 15, 8, 0, 0, tzinfo=UTC)

DOC_TITLE = "Nordwagen Kompakt 3 - Werkstatthandbuch"
RUNNING_HEADER = "Nordwagen Kompakt 3 - Werkstatthandbuch (fiktives Beispieldokument)"

CONTENT = HERE / "werkstatthandbuch.yaml"
"""The manual's pages: a heading and blocks of paragraphs, sub-headings, lists and tables."""
PAGES: list[dict[str, Any]] = yaml.safe_load(CONTENT.read_text(encoding="utf-8"))


class ManualPDF(FPDF):
    def header(self) -> None:
        self.set_font("helvetica", size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, RUNNING_HEADER, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(160, 160, 160)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(4)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("helvetica", size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, f"Seite {self.page_no()} von {len(PAGES)}", align="C")
        self.set_text_color(0, 0, 0)


BODY_SIZE = 10
LINE_H = 5


def _heading(pdf: FPDF, text: str) -> None:
    pdf.set_font("helvetica", style="B", size=16)
    pdf.multi_cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)


def _subheading(pdf: FPDF, text: str) -> None:
    pdf.ln(2)
    pdf.set_font("helvetica", style="B", size=12)
    pdf.multi_cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)


def _paragraph(pdf: FPDF, text: str) -> None:
    pdf.set_font("helvetica", size=BODY_SIZE)
    pdf.multi_cell(0, LINE_H, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)


def _list(pdf: FPDF, items: list[str], *, numbered: bool) -> None:
    pdf.set_font("helvetica", size=BODY_SIZE)
    indent = 8
    for i, item in enumerate(items, start=1):
        marker = f"{i}." if numbered else "-"
        pdf.set_x(pdf.l_margin)
        pdf.cell(indent, LINE_H, marker)
        pdf.multi_cell(
            pdf.epw - indent, LINE_H, item, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        pdf.ln(0.8)
    pdf.ln(1)


def _table(pdf: FPDF, spec: dict[str, Any]) -> None:
    size = spec.get("font_size", BODY_SIZE)
    pdf.set_font("helvetica", size=size)
    with pdf.table(
        col_widths=spec["widths"],
        width=sum(spec["widths"]),
        align="LEFT",
        text_align="LEFT",
        line_height=size * 0.5,
        padding=1.2,
        headings_style=FontFace(emphasis="BOLD", fill_color=(225, 225, 225)),
        first_row_as_headings=True,
    ) as table:
        for row_data in spec["rows"]:
            row = table.row()
            for value in row_data:
                row.cell(value)
    pdf.ln(3)


def build_pdf() -> bytes:
    pdf = ManualPDF(orientation="P", unit="mm", format="A4")
    pdf.set_creation_date(CREATION_DATE)
    pdf.set_title(DOC_TITLE)
    pdf.set_author("Handbook sample data (fictional)")
    pdf.set_subject("Fiktives Werkstatthandbuch für Tests und Demos")
    pdf.set_lang("de-DE")
    pdf.set_margins(20, 15, 20)
    pdf.set_auto_page_break(True, margin=18)

    for number, page in enumerate(PAGES, start=1):
        pdf.add_page()
        pdf.start_section(page["heading"])  # PDF outline (bookmarks): headings for citations
        _heading(pdf, page["heading"])
        for kind, payload in page["blocks"]:
            if kind == "p":
                _paragraph(pdf, payload)
            elif kind == "h":
                _subheading(pdf, payload)
            elif kind == "ol":
                _list(pdf, payload, numbered=True)
            elif kind == "ul":
                _list(pdf, payload, numbered=False)
            elif kind == "table":
                _table(pdf, payload)
            else:  # pragma: no cover - content error
                raise ValueError(f"unknown block kind {kind!r}")
        if pdf.page != number:
            raise SystemExit(
                f"content of page {number} ({page['heading']!r}) overflowed onto a new page"
            )
    return bytes(pdf.output())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the committed PDF differs from a fresh build",
    )
    args = parser.parse_args(argv)

    data = build_pdf()
    target = MANUALS / PDF_NAME
    if args.check:
        if not target.exists() or target.read_bytes() != data:
            print(f"{target} is stale; run: python samples/build.py", file=sys.stderr)
            return 1
        print(f"{target.name}: up to date")
        return 0
    MANUALS.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"wrote {target} ({len(data)} bytes, {len(PAGES)} pages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
