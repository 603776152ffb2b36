"""PDF tables: rows with the right header on real tables, and the cost per page.

Ground truth: the Debian Reference in German (Debian package debian-reference-de, downloaded
with `apt-get download` into bench/.cache) ships the same text as a PDF and as HTML; the HTML
marks up each of its ~170 tables ("Tabelle 1.1. ...") with <th> headers and <td> cells. For each
HTML table whose caption is found in the PDF, the tables Handbook reads from that page and the
page before it (a long table starts earlier) are compared with the HTML table, cells compared
without whitespace: is the header right, and which rows come out exactly (all cells equal).
The cost is the reading time per page with tables against plain text extraction, on this
manual and on gnuplot.pdf (English; package gnuplot-doc), whose tables rule no columns.

    python -m bench.tables [--camelot-python /path/to/venv/bin/python]

With --camelot-python (a Python that has `camelot-py` installed, not a Handbook dependency),
camelot's lattice flavor is measured the same way on the same pages.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
REFERENCE = ("debian-reference-de", "usr/share/debian-reference")
GNUPLOT = ("gnuplot-doc", "usr/share/doc/gnuplot/gnuplot.pdf")
CAPTION = re.compile(r"Tabelle (\d+\.\d+)[.:]")


def fetch(package: str, member: str) -> Path:
    target = CACHE / package
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", package], cwd=tmp, check=True)
            deb = next(Path(tmp).glob("*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    return target / member


def key(cell: str) -> str:
    """A cell without whitespace, quotes unified (the HTML has straight, the PDF curly ones)."""
    return re.sub(r"\s+", "", cell).translate(str.maketrans("”“„’‘", '"""\'\''))


def truth(folder: Path) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Table number -> (header cells, rows) from the HTML edition."""
    from bs4 import BeautifulSoup

    tables = {}
    for page in sorted(folder.glob("*.de.html")):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        for div in soup.select("div.table"):
            title = div.select_one("p.title")
            match = CAPTION.search(title.get_text(" ", strip=True)) if title else None
            if not match:
                continue
            header = [key(th.get_text(" ", strip=True)) for th in div.select("thead th")]
            rows = [
                [key(td.get_text(" ", strip=True)) for td in tr.select("td")]
                for tr in div.select("tbody tr")
            ]
            tables[match.group(1)] = (header, rows)
    return tables


def cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\) \| ", line.strip()[2:-2])
    return [key(c.replace("\\|", "|")) for c in parts]


def handbook_tables(pdf: Path) -> tuple[dict[int, list[list[list[str]]]], dict[str, int], float]:
    """Page -> tables (rows of cells, header first) as Handbook reads them; caption -> page;
    seconds."""
    from ingestion.pdf import read_pdf
    from ingestion.tables import headers, is_row

    start = time.perf_counter()
    _, sections, _ = read_pdf(pdf, tables=True)
    seconds = time.perf_counter() - start
    pages: dict[int, list[list[list[str]]]] = {}
    captions: dict[str, int] = {}
    for section in sections:
        assert section.page is not None
        found: list[list[list[str]]] = []
        lines = section.text.split("\n")
        for line, header in zip(lines, headers(section.text), strict=True):
            if is_row(line):
                if header is None:
                    found.append([])
                found[-1].append(cells(line))
        pages[section.page] = found
        for match in CAPTION.finditer(section.text):
            captions.setdefault(match.group(1), section.page)
    return pages, captions, seconds


def plumber_tables(pdf: Path) -> tuple[dict[int, list[list[list[str]]]], float]:
    """Page -> tables as pdfplumber's default `extract_tables` reads them (the baseline)."""
    import pdfplumber

    start = time.perf_counter()
    pages: dict[int, list[list[list[str]]]] = {}
    with pdfplumber.open(str(pdf)) as document:
        for number, page in enumerate(document.pages, start=1):
            pages[number] = [
                [[key(c or "") for c in row] for row in table] for table in page.extract_tables()
            ]
            page.close()
    return pages, time.perf_counter() - start


def camelot_tables(python: str, pdf: Path, pages: list[int]) -> tuple[dict[int, list], float]:
    code = (
        "import camelot, json, sys, time\n"
        "t = time.perf_counter()\n"
        "found = camelot.read_pdf(sys.argv[1], pages=sys.argv[2], flavor='lattice')\n"
        "s = time.perf_counter() - t\n"
        "out = {}\n"
        "for tb in found:\n"
        "    out.setdefault(tb.page, []).append(tb.df.values.tolist())\n"
        "print(json.dumps({'seconds': s, 'pages': out}))\n"
    )
    text = subprocess.run(
        [python, "-c", code, str(pdf), ",".join(map(str, pages))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    reply = json.loads(text.strip().splitlines()[-1])
    tables = {
        int(page): [[[key(c) for c in row] for row in table] for table in found]
        for page, found in reply["pages"].items()
    }
    return tables, reply["seconds"]


def score(
    expected: dict[str, tuple[list[str], list[list[str]]]],
    captions: dict[str, int],
    pages: dict[int, list[list[list[str]]]],
) -> tuple[int, int, int, int, int]:
    """(tables, with the right header, rows expected, rows found exactly, rows read)."""
    tables = right = wanted = exact = read = 0
    for number, (header, rows) in expected.items():
        page = captions.get(number)
        if page is None or not header:
            continue
        tables += 1
        candidates = [t for p in (page - 1, page) for t in pages.get(p, []) if t]
        best = max(
            candidates,
            key=lambda t: len({tuple(r) for r in t} & {tuple(r) for r in rows}),
            default=[],
        )
        right += bool(best) and best[0] == header
        got = {tuple(r) for t in candidates if t and t[0] == header for r in t[1:]}
        wanted += len(rows)
        exact += len(got & {tuple(r) for r in rows})
        read += sum(len(t) - 1 for t in candidates if t and t[0] == header)
    return tables, right, wanted, exact, read


def plain_seconds(pdf: Path) -> float:
    from ingestion.pdf import read_pdf

    start = time.perf_counter()
    read_pdf(pdf, tables=False)
    return time.perf_counter() - start


def page_count(pdf: Path) -> int:
    import pypdfium2 as pdfium

    return len(pdfium.PdfDocument(str(pdf)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--camelot-python", help="a Python with camelot-py installed")
    args = parser.parse_args()
    folder = fetch(*REFERENCE)
    reference = folder / "debian-reference.de.pdf"
    gnuplot = fetch(*GNUPLOT)
    expected = truth(folder)
    pages, captions, seconds = handbook_tables(reference)
    tables, right, wanted, exact, read = score(expected, captions, pages)
    print(
        f"Debian-Referenz (de): {len(expected)} HTML tables, {tables} of their captions in the PDF"
    )
    print(
        "\n| method | tables with the right header | rows exactly right (recall) "
        "| rows read that are right (precision) | ms/page |"
    )
    print("|---|---|---|---|---|")
    n = page_count(reference)
    print(
        f"| Handbook (pdfplumber grid + PDFium cell text) | "
        f"{right}/{tables} ({100 * right / tables:.0f} %) | "
        f"{exact}/{wanted} ({100 * exact / wanted:.0f} %) | "
        f"{100 * exact / max(read, 1):.0f} % | {1000 * seconds / n:.0f} (whole manual) |",
        flush=True,
    )
    plain, plain_s = plumber_tables(reference)
    tables, right, wanted, exact, read = score(expected, captions, plain)
    print(
        f"| pdfplumber `extract_tables` alone (baseline) | "
        f"{right}/{tables} ({100 * right / tables:.0f} %) | "
        f"{exact}/{wanted} ({100 * exact / wanted:.0f} %) | "
        f"{100 * exact / max(read, 1):.0f} % | {1000 * plain_s / n:.0f} (whole manual) |",
        flush=True,
    )
    if args.camelot_python:
        wanted_pages = sorted({p for number, p in captions.items() if number in expected})
        spread = sorted({q for p in wanted_pages for q in (p - 1, p) if q >= 1})
        found, cam_seconds = camelot_tables(args.camelot_python, reference, spread)
        tables, right, wanted, exact, read = score(expected, captions, found)
        print(
            f"| camelot 2.0 lattice (OpenCV on the rendered page) | "
            f"{right}/{tables} ({100 * right / tables:.0f} %) | "
            f"{exact}/{wanted} ({100 * exact / wanted:.0f} %) | "
            f"{100 * exact / max(read, 1):.0f} % | "
            f"{1000 * cam_seconds / len(spread):.0f} (table pages only) |",
            flush=True,
        )
    print("\n| manual | pages | plain text ms/page | with tables ms/page | tables found |")
    print("|---|---|---|---|---|")
    for name, pdf in (("debian-reference.de.pdf", reference), ("gnuplot.pdf", gnuplot)):
        n = page_count(pdf)
        plain = plain_seconds(pdf)
        found_pages, _, with_tables = handbook_tables(pdf)
        count = sum(len([t for t in found if t]) for found in found_pages.values())
        print(
            f"| {name} | {n} | {1000 * plain / n:.1f} | {1000 * with_tables / n:.1f} | {count} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
