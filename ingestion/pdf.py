"""PDF text per physical page with pypdfium2 (PDFium; Apache-2.0/BSD).

Chosen over pypdf because pypdf drops word spaces in LaTeX-made PDFs (measured on
tests/fixtures/latex/manual.pdf, see tests/ingestion/test_pdf.py). Pages are 1-based physical
pages, not printed labels. Headings come from the PDF outline (bookmarks) when it has one.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from handbook.errors import LoaderError
from handbook.types import Section

_HYPHEN_BREAK = re.compile(r"([^\W\d_])-\n([a-zäöüß])")


def clean_page_text(text: str) -> str:
    """Normalise extracted text: ligatures, soft hyphens, line-end hyphenation, line ends.

    >>> clean_page_text("Kraftstoﬀﬁlter und Drehmo-\\r\\nment\\u00adschlüssel")
    'Kraftstofffilter und Drehmomentschlüssel'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00ad", "").replace("\ufffe", "").replace("\x02", "")
    # NFKC splits ligatures (ﬁ -> fi) and unifies widths; it keeps umlauts composed.
    text = unicodedata.normalize("NFKC", text)
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return text.strip()


def read_pdf(path: Path) -> tuple[str, str, list[Section]]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        message = str(exc).lower()
        if "password" in message:
            raise LoaderError(
                "the PDF is encrypted (password-protected); save an unprotected copy"
            ) from None
        raise LoaderError(f"damaged or not a PDF ({exc})") from None
    try:
        if len(pdf) == 0:
            raise LoaderError("the PDF has no pages")
        outline = _outline(pdf)
        title = (pdf.get_metadata_dict().get("Title") or "").strip()
        sections: list[Section] = []
        heading: tuple[str, ...] = ()
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                try:
                    text = clean_page_text(textpage.get_text_range())
                finally:
                    textpage.close()
            finally:
                page.close()
            heading = outline.get(index, heading)
            sections.append(Section(text, index + 1, heading))
        return title, "pdf", sections
    finally:
        pdf.close()


def _outline(pdf: object) -> dict[int, tuple[str, ...]]:
    """Page index -> heading path of the last bookmark that starts on that page."""
    result: dict[int, tuple[str, ...]] = {}
    stack: list[str] = []
    try:
        items = list(pdf.get_toc(max_depth=6))  # type: ignore[attr-defined]  # PdfDocument
    except Exception:  # a broken outline must not lose the text
        return result
    for item in items:
        title = (item.title or "").strip()
        level = int(item.level)
        stack[:] = stack[:level]
        stack.append(title)
        if item.page_index is not None:
            result[int(item.page_index)] = tuple(stack)
    return result
