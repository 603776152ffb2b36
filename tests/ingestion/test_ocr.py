"""OCR of scanned PDF pages with the real Tesseract, on scans made here from text PDFs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handbook.config import IndexSettings
from handbook.errors import LoaderError
from ingestion.loaders import load_document
from tests.ingestion.scans import scan, text_pdf

GERMAN = [
    [
        "Zylinderkopf",
        "Die Zylinderkopfschrauben werden in drei Stufen angezogen. Das Anzugsdrehmoment "
        "beträgt zuerst 40 Nm, dann 90 Nm und zuletzt ein Weiterdrehwinkel von 90 Grad.",
    ],
    ["Ölwechsel", "Das Motoröl wird alle 15000 Kilometer gewechselt. Ölsorte: SAE 5W-30."],
    ["Bremsen", "Die Bremsflüssigkeit DOT 4 wird alle zwei Jahre vollständig erneuert."],
]


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def german_pdf(tmp_path: Path) -> Path:
    return text_pdf(tmp_path / "text.pdf", GERMAN)


def test_scanned_pdf_is_read_by_ocr_page_by_page(german_pdf: Path, tmp_path: Path) -> None:
    scanned = scan(german_pdf, tmp_path / "werkstatt_scan.pdf")
    progress: list[tuple[int, int]] = []
    document = load_document(
        scanned, "d", "s", on_page=lambda done, total: progress.append((done, total))
    )
    assert [s.page for s in document.sections] == [1, 2, 3]
    assert all(s.ocr for s in document.sections)
    text = {s.page: words(s.text) for s in document.sections}
    assert "Anzugsdrehmoment beträgt zuerst 40 Nm" in text[1]
    assert "alle 15000 Kilometer" in text[2] and "Ölwechsel" in text[2]
    assert "DOT 4" in text[3]
    assert document.language == "de"
    assert progress == [(1, 3), (2, 3), (3, 3)]  # from the reader child, page by page
    (note,) = document.notes
    assert note.startswith("OCR 3/3 pages (deu)"), note  # the first page chose German


def test_half_scanned_pdf_keeps_text_pages_and_reads_the_scanned_one(
    german_pdf: Path, tmp_path: Path
) -> None:
    half = scan(german_pdf, tmp_path / "half.pdf", scanned={2})
    document = load_document(half, "d", "s")
    assert [(s.page, s.ocr) for s in document.sections] == [(1, False), (2, True), (3, False)]
    assert "alle 15000 Kilometer" in words(document.sections[1].text)
    # the text pages come from the text layer, exactly
    assert "Weiterdrehwinkel von 90 Grad" in words(document.sections[0].text)
    assert document.notes[0].startswith("OCR 1/3 pages")


def test_ocr_force_reads_text_pages_too_and_off_refuses_a_scan(
    german_pdf: Path, tmp_path: Path
) -> None:
    forced = load_document(german_pdf, "d", "s", IndexSettings(ocr="force"))
    assert all(s.ocr for s in forced.sections)
    assert "DOT 4" in words(forced.sections[2].text)
    scanned = scan(german_pdf, tmp_path / "scan.pdf", scanned={1})
    one_page = text_pdf(tmp_path / "one.pdf", GERMAN[:1])
    with pytest.raises(LoaderError, match=r"index\.ocr is off; set it to auto"):
        load_document(scan(one_page, tmp_path / "one_scan.pdf"), "d", "s", IndexSettings(ocr="off"))
    kept = load_document(scanned, "d", "s", IndexSettings(ocr="off"))
    assert [s.page for s in kept.sections] == [2, 3]


def test_without_the_ocr_engine_a_scan_says_how_to_install_it(
    german_pdf: Path, tmp_path: Path
) -> None:
    missing = IndexSettings(ocr_command=str(tmp_path / "no-tesseract"))
    with pytest.raises(LoaderError) as failure:
        load_document(scan(german_pdf, tmp_path / "scan.pdf"), "d", "s", missing)
    message = str(failure.value)
    assert "\n" not in message
    assert "apt-get install tesseract-ocr tesseract-ocr-deu tesseract-ocr-eng" in message
    # half scanned: the text pages are indexed, the summary names the pages left out
    document = load_document(scan(german_pdf, tmp_path / "half.pdf", {2}), "d", "s", missing)
    assert [s.page for s in document.sections] == [1, 3]
    assert document.notes[0].startswith("1 scanned page(s) not read: the OCR engine Tesseract")


def test_missing_language_model_is_named(german_pdf: Path, tmp_path: Path) -> None:
    only_klingon = IndexSettings(ocr_languages=("tlh",))
    with pytest.raises(LoaderError, match="apt-get install tesseract-ocr-tlh"):
        load_document(scan(german_pdf, tmp_path / "scan.pdf"), "d", "s", only_klingon)


def test_page_with_an_image_bomb_is_not_rendered_for_ocr(tmp_path: Path) -> None:
    from tests.ingestion.test_hostile import pdf_image_bomb

    # 19 letters of text and a 20000 x 20000 image: it looks scanned, but rendering it would
    # decode 400 MB (a crafted 2 MB file can hold gigapixels).
    document = load_document(pdf_image_bomb(tmp_path / "bomb.pdf", side=20_000), "d", "s")
    assert "47 Nm" in document.sections[0].text and not document.sections[0].ocr
    assert document.notes == (
        "page(s) 1 not read by OCR: an image of over 100 megapixels (a decompression bomb?)",
    )
