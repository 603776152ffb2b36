"""The `index` section of the settings: what `handbook index` reads, and how (limits, OCR,
tables). Part of `handbook.config.Settings`; a module of its own to keep config.py small."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from handbook.config_base import Section


class IndexSettings(Section):
    max_file_mb: float = Field(100.0, gt=0, description="Larger files are skipped and reported.")
    extensions: tuple[str, ...] = Field(
        (".pdf", ".html", ".htm", ".md", ".markdown", ".txt", ".docx"),
        description="File types that are indexed.",
    )
    max_unpacked_mb: float = Field(
        256.0,
        gt=0,
        description="A DOCX whose parts unpack to more than this is skipped and reported (a zip "
        "bomb: a few hundred KB can unpack to gigabytes). Raise it for a genuine huge document.",
    )
    reader_memory_mb: int = Field(
        1024,
        ge=256,
        description="PDF and DOCX files, and other files over 256 KB, are read in a child process "
        "limited to this much memory (a crafted 30 KB PDF can take PDFium gigabytes); a file "
        "that needs more is skipped and reported.",
    )
    read_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Reading one file in that child process may take this long without "
        "progress (each page read by OCR counts as progress); a slower file (a pathological or "
        "malicious one) is skipped and reported.",
    )
    pdf_tables: bool = Field(
        default=True,
        description="Read ruled tables in PDFs as header and rows (pdfplumber finds the grid); "
        "costs up to a few hundred ms per page that draws lines.",
    )
    ocr: Literal["auto", "off", "force"] = Field(
        "auto",
        description="OCR of PDF pages with Tesseract: auto = pages without a usable text layer "
        "that show an image (scans), force = every page, off = never (scanned pages are "
        "skipped).",
    )
    ocr_languages: tuple[str, ...] = Field(
        ("deu", "eng"),
        description="Tesseract language models used together (e.g. deu, eng, fra); each needs "
        "its package tesseract-ocr-LANG. Those not installed are left out.",
    )
    ocr_dpi: int = Field(
        300, ge=72, le=600, description="Resolution at which a page is rendered for OCR."
    )
    ocr_command: str = Field(
        "tesseract", description="The Tesseract program (a name on PATH or a full path)."
    )
    ocr_page_timeout_s: float = Field(
        120.0, gt=0, description="OCR of one page may take this long; a slower file fails."
    )
    ocr_workers: int = Field(
        0, ge=0, description="Pages recognised at once (Tesseract processes); 0 = one per core."
    )
