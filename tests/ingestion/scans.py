"""Real PDFs made in the tests: text pages (fpdf2), scans of them (rendered by PDFium at 200 dpi
and wrapped as image-only pages), ruled tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SCAN_DPI = 200


def text_pdf(path: Path, pages: Sequence[Sequence[str]]) -> Path:
    """A PDF with a text layer: one page per entry, one paragraph per string."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=13)
    for paragraphs in pages:
        pdf.add_page()
        for paragraph in paragraphs:
            pdf.multi_cell(0, 7, paragraph)
            pdf.ln(4)
    pdf.output(str(path))
    return path


def scan(source: Path, path: Path, scanned: set[int] | None = None) -> Path:
    """`source` with the pages in `scanned` (1-based; all when None) replaced by images of
    themselves at SCAN_DPI: no text layer, as a scanner makes them."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(source))
    out = pdfium.PdfDocument.new()
    for index in range(len(pdf)):
        if scanned is not None and index + 1 not in scanned:
            out.import_pages(pdf, [index])
            continue
        page = pdf[index]
        width, height = page.get_size()
        bitmap = page.render(scale=SCAN_DPI / 72, grayscale=True)
        image = pdfium.PdfImage.new(out)
        image.set_bitmap(bitmap)
        image.set_matrix(pdfium.PdfMatrix().scale(width, height))
        target = out.new_page(width, height)
        target.insert_obj(image)
        target.gen_content()
    out.save(str(path))
    return path


def table_pdf(
    path: Path,
    rows: Sequence[Sequence[str]],
    *,
    before: str = "",
    borders: str = "ALL",
) -> Path:
    """A PDF page with `before` and a ruled table (first row = header); `borders` is fpdf2's
    TableBordersLayout (INTERNAL leaves out the outer frame, as many manuals do)."""
    from fpdf import FPDF
    from fpdf.enums import TableBordersLayout

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    if before:
        pdf.multi_cell(0, 6, before)
        pdf.ln(4)
    with pdf.table(borders_layout=TableBordersLayout.coerce(borders)) as table:
        for row in rows:
            cells = table.row()
            for cell in row:
                cells.cell(cell)
    pdf.output(str(path))
    return path


def open_sided_table_pdf(path: Path, rows: Sequence[Sequence[str]], before: str = "") -> Path:
    """A table ruled as the Debian Reference and many manuals rule theirs: a rule under every
    row and between the columns, none at the outer sides; each rule drawn cell by cell."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    if before:
        pdf.multi_cell(0, 6, before)
        pdf.ln(4)
    left, width, height = pdf.l_margin, 60.0, 8.0
    top = pdf.get_y()
    for r, row in enumerate(rows):
        y = top + r * height
        for c, cell in enumerate(row):
            x = left + c * width
            pdf.line(x, y, x + width, y)
            pdf.line(x, y + height, x + width, y + height)
            if c:
                pdf.line(x, y, x, y + height)
            pdf.set_xy(x + 1, y + 1)
            pdf.cell(width - 2, height - 2, cell)
    pdf.set_xy(left, top + len(rows) * height + 6)
    pdf.multi_cell(0, 6, "Text below the table.")
    pdf.output(str(path))
    return path


def framed_listing_pdf(path: Path, lines: Sequence[str]) -> Path:
    """A code listing in a ruled frame: one column, not a table."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("courier", size=10)
    pdf.add_page()
    with pdf.table(first_row_as_headings=False) as table:
        for line in lines:
            table.row().cell(line)
    pdf.output(str(path))
    return path
