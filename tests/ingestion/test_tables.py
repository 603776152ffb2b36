"""Tables keep their header: PDF (ruled grids, open-sided tables), Markdown, DOCX; a table
split across chunks repeats its header at the top of every chunk."""

from __future__ import annotations

from pathlib import Path

from handbook.config import ChunkingSettings
from ingestion.chunking import chunk_document
from ingestion.loaders import load_document
from tests.ingestion.scans import framed_listing_pdf, open_sided_table_pdf, table_pdf

HEADER = ["Bauteil", "Anzugsdrehmoment", "Hinweis"]
ROWS = [
    ["Radschraube", "120 Nm", "über Kreuz"],
    ["Zylinderkopf", "90 Nm", "in drei Stufen"],
    ["Ölablassschraube", "30 Nm", "neuer Dichtring"],
]
HEADER_LINE = "| Bauteil | Anzugsdrehmoment | Hinweis |"
ROW_LINE = "| Radschraube | 120 Nm | über Kreuz |"


def lines_of(path: Path) -> list[str]:
    return load_document(path, "d", "s").sections[0].text.split("\n")


def test_ruled_pdf_table_comes_out_as_header_and_rows(tmp_path: Path) -> None:
    lines = lines_of(table_pdf(tmp_path / "t.pdf", [HEADER, *ROWS], before="Drehmomente"))
    assert lines[0] == "Drehmomente"
    start = lines.index(HEADER_LINE)
    assert lines[start + 1 : start + 4] == [
        ROW_LINE,
        "| Zylinderkopf | 90 Nm | in drei Stufen |",
        "| Ölablassschraube | 30 Nm | neuer Dichtring |",
    ]


def test_table_without_outer_rules_is_found_and_text_around_it_kept(tmp_path: Path) -> None:
    path = open_sided_table_pdf(tmp_path / "t.pdf", [HEADER, *ROWS], before="Drehmomente")
    lines = [line for line in lines_of(path) if line]
    assert lines[0] == "Drehmomente"
    assert lines[1:5] == [HEADER_LINE, ROW_LINE, *lines[3:5]]
    assert lines[3] == "| Zylinderkopf | 90 Nm | in drei Stufen |"
    assert lines[-1] == "Text below the table."


def test_framed_code_listing_is_not_a_table(tmp_path: Path) -> None:
    lines = lines_of(framed_listing_pdf(tmp_path / "l.pdf", ["$ ls -l /etc", "$ cd /tmp"]))
    assert not any(line.startswith("|") for line in lines)
    assert "$ ls -l /etc" in lines


def test_long_pdf_table_repeats_its_header_in_every_chunk(tmp_path: Path) -> None:
    rows = [[f"Schraube M{i}", f"{10 + i} Nm", "trocken"] for i in range(6, 30)]
    document = load_document(table_pdf(tmp_path / "t.pdf", [HEADER, *rows]), "d", "s")
    chunks = chunk_document(document, ChunkingSettings(max_tokens=64, overlap_tokens=16))
    with_rows = [c for c in chunks if "| Schraube M" in c.text]
    assert len(with_rows) >= 3
    for chunk in with_rows:
        assert chunk.text.split("\n")[0] == HEADER_LINE, chunk.text
        assert chunk.page == 1
    found = "\n".join(c.text for c in with_rows)
    assert all(f"| Schraube M{i} | {10 + i} Nm | trocken |" in found for i in range(6, 30))


def test_markdown_table_header_is_repeated_in_every_chunk(tmp_path: Path) -> None:
    rows = "".join(f"| Fehler E{i:02} | Sensor {i} prüfen |\n" for i in range(40))
    path = tmp_path / "codes.md"
    path.write_text(f"# Fehlercodes\n\n| Code | Abhilfe |\n|---|---|\n{rows}", encoding="utf-8")
    document = load_document(path, "d", "s")
    chunks = chunk_document(document, ChunkingSettings(max_tokens=48, overlap_tokens=8))
    assert len(chunks) >= 3
    for chunk in chunks:
        assert chunk.text.startswith("| Code | Abhilfe |\n| Fehler E"), chunk.text
        assert "---" not in chunk.text
    assert "| Fehler E39 | Sensor 39 prüfen |" in chunks[-1].text


def test_docx_table_stays_in_place_with_its_header(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Drehmomente", level=1)
    document.add_paragraph("Die Werte gelten für trockene Gewinde.")
    table = document.add_table(rows=0, cols=3)
    for row in [HEADER, *ROWS]:
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            cell.text = text
    document.add_heading("Wartung", level=1)
    document.add_paragraph("Ölwechsel alle 15000 km.")
    document.save(str(tmp_path / "m.docx"))
    sections = load_document(tmp_path / "m.docx", "d", "s").sections
    first = sections[0]
    assert first.heading_path == ("Drehmomente",)
    assert first.text == "\n".join(
        [
            "Die Werte gelten für trockene Gewinde.",
            "",
            HEADER_LINE,
            ROW_LINE,
            "| Zylinderkopf | 90 Nm | in drei Stufen |",
            "| Ölablassschraube | 30 Nm | neuer Dichtring |",
        ]
    )
    assert sections[1].heading_path == ("Wartung",) and "|" not in sections[1].text


def test_html_table_rows_follow_their_header(tmp_path: Path) -> None:
    cells = "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in ROWS)
    path = tmp_path / "t.html"
    path.write_text(
        "<html><body><h1>Drehmomente</h1><p>Trockene Gewinde.</p><table><tr>"
        + "".join(f"<th>{h}</th>" for h in HEADER)
        + f"</tr>{cells}</table></body></html>",
        encoding="utf-8",
    )
    assert lines_of(path) == [
        "Trockene Gewinde.",
        HEADER_LINE,
        ROW_LINE,
        "| Zylinderkopf | 90 Nm | in drei Stufen |",
        "| Ölablassschraube | 30 Nm | neuer Dichtring |",
    ]
