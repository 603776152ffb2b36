"""PDF text per physical page with pypdfium2 (PDFium; Apache-2.0/BSD-3).

Measured against pypdf, pdfplumber and pdftotext on a pdfLaTeX-made PDF (tests/fixtures/latex)
and an fpdf2-made one: with the cleanup below pypdfium2 returned every expected phrase, at
2.7 ms/page (pypdf 27, pdfplumber 94); pdfplumber lost word spaces on tight lines and
pdftotext (GPL, a subprocess) rejoined real hyphens ("Bremsund"). PDFium marks a removed
line-end hyphen with U+FFFE, so typesetter hyphens can be joined and real ones kept.
Pages are 1-based physical pages, not printed labels. Headings come from the PDF outline
(bookmarks) when the file has one. PDFium is not thread-safe: one document at a time.
Pages without a usable text layer (scans) are read by OCR (ingestion/ocr.py), ruled tables
become header and rows (ingestion/tables.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handbook.errors import LoaderError
from handbook.types import Section
from ingestion.ocr import OcrOptions, OcrUnavailable, letters, ocr_pages

_LOCK = threading.Lock()
_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
    }
)
# After these words a line-end hyphen is a real one: "Brems-\nund Kupplungsflüssigkeit".
_CONJUNCTION = re.compile(r"(?:und|oder|bzw|sowie|bis|als|wie|and|or|nor|to|as)\b")
_EOL_HYPHEN = re.compile(r"(?<=[^\W\d_])-[ \t]*\n\s*(?=\w)")
_LONE_MARKER = re.compile(r"^(\d{1,3}[.)]|[-•–])\n(?=\S)", re.MULTILINE)
_WRAPPED = re.compile(r"(?<=[^\s.:;!?])\n(?=[a-zäöüß(])")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u3000]+")


def _eol_hyphen(match: re.Match[str]) -> str:
    following = match.string[match.end() : match.end() + 12]
    if _CONJUNCTION.match(following):
        return "- "  # "Brems- und"
    if following[:1].islower():
        return ""  # "Drehmo-\nment" -> "Drehmoment"
    return "-"  # "Kfz-\nWerkstatt" -> "Kfz-Werkstatt"


def clean_page_text(text: str) -> str:
    r"""Normalise extracted text: ligatures, hyphenation, soft hyphens, line ends, spaces.

    NFC, not NFKC: NFKC would turn "mm²" into "mm2" and "µ" into Greek "μ".

    >>> clean_page_text("Kraftstoﬀﬁlter: Drehmo\ufffement, Brems\ufffeund Kfz\ufffeWerkstatt")
    'Kraftstofffilter: Drehmoment, Brems- und Kfz-Werkstatt'
    >>> clean_page_text("Ab\u00adschnitt 2,5 mm²")
    'Abschnitt 2,5 mm²'
    >>> clean_page_text("3.\nRäder montieren und die\nschrauben anziehen.\nEnde")
    '3. Räder montieren und die schrauben anziehen.\nEnde'
    """
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\ufffe", "-\n").replace("\x02", "-\n")
    text = text.replace("\u00ad", "").replace("\x00", "")
    text = text.translate(_LIGATURES)
    text = _EOL_HYPHEN.sub(_eol_hyphen, text)
    text = _SPACES.sub(" ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    # A list number set apart from its item ("3.\nRad abnehmen") and a line that wraps in
    # the middle of a sentence ("die\nRadschrauben lösen" is kept: German nouns are
    # capitalised, so only a lowercase continuation is joined).
    text = _LONE_MARKER.sub(r"\1 ", text)
    text = _WRAPPED.sub(" ", text)
    return text.strip()


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", line.strip().lower())


def _edges(lines: list[str], edge: int) -> list[tuple[int, str]]:
    """(position, key) of the first and last `edge` lines; position -1 is the last line."""
    top = [(i, _line_key(line)) for i, line in enumerate(lines[:edge])]
    bottom = [(-1 - i, _line_key(line)) for i, line in enumerate(reversed(lines[-edge:]))]
    return top + bottom


def strip_running_lines(sections: list[Section], edge: int = 2) -> list[Section]:
    r"""Remove running headers and footers ("Seite 3 von 8"): lines at the same place among
    the first or last `edge` lines of a page that recur (numbers ignored) on at least 60 % of
    3+ pages. They would otherwise be embedded with every chunk and dilute it.

    >>> pages = [Section(f"Handbuch X\n{t}\nmehr {t}\nnoch {t}\nSeite {i} von 3", i)
    ...          for i, t in enumerate(("Rad", "Öl", "Bremse"), start=1)]
    >>> [s.text.replace("\n", " / ") for s in strip_running_lines(pages)]
    ['Rad / mehr Rad / noch Rad', 'Öl / mehr Öl / noch Öl', 'Bremse / mehr Bremse / noch Bremse']
    """
    if len(sections) < 3:
        return sections
    counts: dict[tuple[int, str], int] = {}
    for section in sections:
        lines = [line for line in section.text.split("\n") if line.strip()]
        if len(lines) > 2 * edge:
            for key in set(_edges(lines, edge)):
                counts[key] = counts.get(key, 0) + 1
    running = {key for key, n in counts.items() if n >= 0.6 * len(sections)}
    if not running:
        return sections
    cleaned = []
    for section in sections:
        every = section.text.split("\n")
        filled = [i for i, line in enumerate(every) if line.strip()]  # blank lines stay
        lines = [every[i] for i in filled]
        if len(lines) <= 2 * edge:
            cleaned.append(section)
            continue
        drop = {
            filled[pos if pos >= 0 else len(lines) + pos]
            for pos, key in _edges(lines, edge)
            if (pos, key) in running
        }
        kept = "\n".join(line for i, line in enumerate(every) if i not in drop)
        cleaned.append(dataclasses.replace(section, text=kept.strip()))
    return cleaned


def read_pdf(
    path: Path,
    ocr: OcrOptions | None = None,
    on_page: Callable[[int, int], None] | None = None,
    *,
    tables: bool = True,
) -> tuple[str, list[Section], tuple[str, ...]]:
    """(title, sections, notes): one section per physical page; `on_page(done, total)` hears
    of each page read by OCR; with `tables`, ruled tables become header and rows."""
    with _LOCK:
        return _read(path, ocr or OcrOptions(), on_page, tables=tables)


def _read(
    path: Path, ocr: OcrOptions, on_page: Callable[[int, int], None] | None, *, tables: bool
) -> tuple[str, list[Section], tuple[str, ...]]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        # No password: owner-password-only PDFs (print/copy restrictions) open without one.
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise LoaderError(
                "the PDF is password-protected; save an unprotected copy and index that"
            ) from None
        raise LoaderError("the PDF is damaged, truncated or has no pages; re-export it") from None
    try:
        if len(pdf) == 0:
            raise LoaderError("the PDF has no pages")
        outline = _outline(pdf)
        title = (pdf.get_metadata_dict().get("Title") or "").strip()
        sections: list[Section] = []
        heading: tuple[str, ...] = ()
        scanned: list[int] = []  # page indexes to read by OCR
        oversized: list[int] = []  # pages whose image is too large to render for OCR
        ruled: list[int] = []  # page indexes that draw lines: tables are looked for there
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                try:
                    text = clean_page_text(textpage.get_text_range())
                finally:
                    textpage.close()
                pixels = _image_pixels(page) if ocr.mode != "off" else 0
                if pixels > MAX_SCAN_PIXELS:
                    oversized.append(index + 1)
                elif ocr.mode == "force" or (letters(text) < MIN_LETTERS and pixels):
                    scanned.append(index)
                elif tables and _draws_lines(page):
                    ruled.append(index)
            finally:
                page.close()
            heading = outline.get(index, heading)
            sections.append(Section(text, index + 1, heading))
        if ruled:
            _read_tables(path, pdf, sections, ruled)
        notes = _run_ocr(pdf, sections, scanned, ocr, on_page)
        if oversized:
            notes += (
                f"page(s) {', '.join(map(str, oversized[:10]))} not read by OCR: an image of "
                f"over {MAX_SCAN_PIXELS // 1_000_000} megapixels (a decompression bomb?)",
            )
        sections = strip_running_lines(sections)
        if ocr.mode == "off" and not any(s.text for s in sections) and _has_image(pdf[0]):
            raise LoaderError(
                "the PDF has no text layer (a scan?) and index.ocr is off; set it to auto"
            )
        return title, sections, notes
    finally:
        pdf.close()


MIN_LETTERS = 20
"""A page whose text layer has fewer letters (a page number, a stray header) and that shows an
image is read by OCR."""


MAX_SCAN_PIXELS = 100_000_000
"""A page image larger than this is not rendered for OCR: an A3 page scanned at 600 dpi has 70
megapixels, and rendering decodes the whole image (a crafted 2 MB PDF can hold gigapixels)."""


def _has_image(page: Any) -> bool:
    import pypdfium2.raw as pdfium_c

    return any(True for _ in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=2))


def _image_pixels(page: Any) -> int:
    """Pixels of the page's largest image, from its header (nothing is decoded); 0: none."""
    import pypdfium2.raw as pdfium_c

    largest = 0
    for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=2):
        try:
            width, height = image.get_px_size()
        except Exception:  # an image whose header PDFium cannot read: count it, unknown size
            width, height = 1, 1
        largest = max(largest, width * height)
    return largest


def _draws_lines(page: Any) -> bool:
    import pypdfium2.raw as pdfium_c

    paths = page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_PATH,), max_depth=2)
    return sum(1 for _ in itertools.islice(paths, 3)) >= 3


def _read_tables(path: Path, pdf: Any, sections: list[Section], ruled: list[int]) -> None:
    """Rewrite the text of the `ruled` pages that hold tables (ingestion/tables.py)."""
    import pdfplumber

    try:
        plumber = pdfplumber.open(str(path))
    except Exception:  # pdfminer fails on some files PDFium reads: keep the plain text
        return
    with plumber:
        for index in ruled:
            page = pdf[index]
            try:
                text = _with_tables(plumber.pages[index], page)
            except Exception:  # a pdfminer/pdfplumber failure on one page: keep its text
                text = None
            finally:
                page.close()
            if text is not None:
                sections[index] = dataclasses.replace(sections[index], text=text)


def _with_tables(plumber_page: Any, page: Any) -> str | None:
    """The page's text with its tables as header and rows: the text above, beside and below
    each table from PDFium; None when the page holds no table."""
    from ingestion.tables import pdf_page_tables

    height, width = page.get_height(), page.get_width()
    textpage = page.get_textpage()
    try:

        def text(x0: float, top: float, x1: float, bottom: float) -> str:
            # pdfplumber measures from the top, PDFium from the bottom.
            raw = textpage.get_text_bounded(x0, height - bottom, x1, height - top)
            return clean_page_text(raw)

        def cell(box: tuple[float, float, float, float]) -> str:
            # Inside the rules: an accent reaching over a rule belongs to the next row.
            x0, top, x1, bottom = box
            return text(x0 + 0.5, top + 1.5, x1 - 0.5, bottom - 1.5)

        found = pdf_page_tables(plumber_page, cell)
        if not found:
            return None
        parts: list[str] = []
        y = 0.0
        for (x0, top, x1, bottom), lines in found:
            parts.append(text(0, y, width, top))
            parts.append("\n".join(lines))
            parts += [text(0, top, x0, bottom), text(x1, top, width, bottom)]
            y = bottom
        parts.append(text(0, y, width, height))
        return "\n\n".join(part for part in parts if part.strip())
    finally:
        textpage.close()


def _run_ocr(
    pdf: Any,
    sections: list[Section],
    scanned: list[int],
    ocr: OcrOptions,
    on_page: Callable[[int, int], None] | None,
) -> tuple[str, ...]:
    """Replace the text of the `scanned` pages by their OCR text; the note for the summary."""
    if not scanned:
        return ()

    def render(index: int) -> Any:
        page = pdf[index]
        try:
            return page.render(scale=ocr.dpi / 72, grayscale=True).to_pil()
        finally:
            page.close()

    start = time.monotonic()
    used = ""  # the languages the pages were read in (after the first pages: the document's)
    try:
        for index, text, languages in ocr_pages(render, scanned, ocr, on_page):
            sections[index] = dataclasses.replace(
                sections[index], text=clean_page_text(text), ocr=True
            )
            used = languages
    except OcrUnavailable as exc:
        if not any(s.text for i, s in enumerate(sections) if i not in set(scanned)):
            raise LoaderError(f"it is scanned (pages without text) and {exc}") from None
        # Half scanned: the pages with text are indexed, the scanned ones named.
        return (f"{len(scanned)} scanned page(s) not read: {exc}",)
    seconds = time.monotonic() - start
    return (
        f"OCR {len(scanned)}/{len(sections)} pages ({used}), "
        f"{len(scanned) / max(seconds, 1e-6):.1f} pages/s",
    )


def _outline(pdf: Any) -> dict[int, tuple[str, ...]]:
    """Page index -> heading path of the last bookmark that starts on that page."""
    result: dict[int, tuple[str, ...]] = {}
    stack: list[str] = []
    try:
        items = list(pdf.get_toc(max_depth=6))
    except Exception:  # a broken outline must not lose the text
        return result
    for item in items:
        title = (item.get_title() or "").strip()
        level = int(item.level)
        stack[:] = stack[:level]
        stack.append(title)
        destination = item.get_dest()
        index = destination.get_index() if destination is not None else None
        if index is not None:
            result[int(index)] = tuple(stack)
    return result
