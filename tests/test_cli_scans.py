"""`handbook index` / `search` on a folder of scanned and table manuals: the real CLI in a
subprocess, real Tesseract, real models, embedded Qdrant."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import run_cli
from tests.ingestion.scans import open_sided_table_pdf, scan, text_pdf
from tests.ingestion.test_ocr import GERMAN


def test_scanned_manual_and_table_are_indexed_and_found_with_pages(tmp_path: Path) -> None:
    manuals = tmp_path / "manuals"
    manuals.mkdir()
    source = text_pdf(
        tmp_path / "source.pdf", [["Inhalt", "Dieses Handbuch beschreibt den Motor."], *GERMAN]
    )
    scan(source, manuals / "Werkstatthandbuch_1998_scan.pdf")
    open_sided_table_pdf(
        manuals / "drehmomente.pdf",
        [
            ["Bauteil", "Anzugsdrehmoment", "Hinweis"],
            ["Radschraube", "120 Nm", "über Kreuz"],
            ["Zylinderkopfschraube", "90 Nm", "in drei Stufen"],
        ],
        before="Anzugsdrehmomente der Schrauben",
    )
    home = tmp_path / "home"
    indexed = run_cli("index", str(manuals), "--json", home=home)
    assert indexed.returncode == 0, indexed.stderr
    files = {Path(f["path"]).name: f for f in json.loads(indexed.stdout)["files"]}
    scanned = files["Werkstatthandbuch_1998_scan.pdf"]
    assert scanned["status"] == "indexed" and scanned["note"].startswith("OCR 4/4 pages (deu)")

    found = run_cli("search", "Bremsflüssigkeit DOT 4 erneuern", "--json", "-k", "3", home=home)
    first = json.loads(found.stdout)["results"][0]
    assert first["path"].endswith("Werkstatthandbuch_1998_scan.pdf") and first["page"] == 4

    found = run_cli("search", "Anzugsdrehmoment Radschraube", "--json", "-k", "3", home=home)
    table = next(
        r for r in json.loads(found.stdout)["results"] if r["path"].endswith("drehmomente.pdf")
    )
    lines = table["text"].split("\n")
    header = lines.index("| Bauteil | Anzugsdrehmoment | Hinweis |")
    assert lines[header + 1] == "| Radschraube | 120 Nm | über Kreuz |" and table["page"] == 1


def test_scan_without_the_ocr_engine_gets_one_line_and_the_rest_is_indexed(
    tmp_path: Path,
) -> None:
    manuals = tmp_path / "manuals"
    manuals.mkdir()
    scan(text_pdf(tmp_path / "source.pdf", GERMAN), manuals / "scan.pdf")
    (manuals / "notes.md").write_text("# Notiz\n\nReifendruck vorne 2,3 bar.\n", encoding="utf-8")
    # A PATH without Tesseract: the machine as it is before `make ocr`.
    bare = tmp_path / "bin"
    bare.mkdir()
    assert shutil.which("tesseract", path=str(bare)) is None
    indexed = run_cli("index", str(manuals), "--json", home=tmp_path / "home", path=str(bare))
    assert indexed.returncode == 1
    files = {Path(f["path"]).name: f for f in json.loads(indexed.stdout)["files"]}
    assert files["notes.md"]["status"] == "indexed"
    reason = files["scan.pdf"]["reason"]
    assert files["scan.pdf"]["status"] == "failed" and "\n" not in reason
    assert "Tesseract is not installed" in reason and "make ocr" in reason
