"""OCR of scanned manual pages: character error rate, pages/s, and retrieval on the scan.

Real manuals from Debian packages (downloaded with `apt-get download` into bench/.cache):
gnuplot.pdf (English, gnuplot-doc) and debian-reference.de.pdf (German, debian-reference-de).
Pages with a real text layer are rendered to 200 dpi grayscale images and wrapped as an
image-only PDF (a scan). Each candidate setting reads the scan; its text is compared with the
text layer of the page it was rendered from (character error rate, CER: edit distance over
the reference's length, whitespace collapsed). Then both copies are indexed with `handbook
index` and searched with questions made from the text layer (a sentence of each page, its
first words dropped): hit@5 is the share whose page is among the first five results.

    python -m bench.ocr [--pages 16] [--candidates all|default]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from handbook.errors import LoaderError

CACHE = Path(__file__).resolve().parent / ".cache"
SOURCES = {  # language -> (Debian package, file in it)
    "en": ("gnuplot-doc", "usr/share/doc/gnuplot/gnuplot.pdf"),
    "de": ("debian-reference-de", "usr/share/debian-reference/debian-reference.de.pdf"),
}
TESSERACT_LANG = {"en": "eng", "de": "deu"}
SCAN_DPI = 200


def manual(language: str) -> Path:
    """The real manual of `language`, downloaded once with apt-get download."""
    package, member = SOURCES[language]
    target = CACHE / Path(member).name
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True)
        deb = next(Path(tmp).glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp + "/x"], check=True)
        shutil.copy(Path(tmp) / "x" / member, target)
    return target


def pick_pages(path: Path, count: int) -> list[tuple[int, str]]:
    """(page index, text layer) of `count` text-rich pages spread over the manual."""
    import pypdfium2 as pdfium

    from ingestion.pdf import clean_page_text

    pdf = pdfium.PdfDocument(str(path))
    rich = []
    for index in range(10, len(pdf)):  # past the title and contents pages
        textpage = pdf[index].get_textpage()
        text = clean_page_text(textpage.get_text_range())
        if sum(c.isalpha() for c in text) >= 1200:
            rich.append((index, text))
    step = len(rich) / count
    return [rich[int(i * step)] for i in range(count)]


def write_copies(path: Path, pages: list[int], text_pdf: Path, scan_pdf: Path) -> None:
    """The chosen pages as a text PDF and as an image-only PDF rendered at SCAN_DPI."""
    import pypdfium2 as pdfium

    source = pdfium.PdfDocument(str(path))
    copy = pdfium.PdfDocument.new()
    copy.import_pages(source, pages)
    copy.save(str(text_pdf))
    images = [
        source[i].render(scale=SCAN_DPI / 72, grayscale=True).to_pil().convert("L") for i in pages
    ]
    images[0].save(scan_pdf, "PDF", resolution=SCAN_DPI, save_all=True, append_images=images[1:])


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def cer(reference: str, hypothesis: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ref, hyp = squash(reference), squash(hypothesis)
    return Levenshtein.distance(ref, hyp) / max(len(ref), 1)


def words_missed(reference: str, hypothesis: str) -> float:
    """Share of the reference's words (as a multiset) that the OCR text lacks: unlike the CER,
    blind to reading order (a table read row by row vs column by column)."""
    from collections import Counter

    ref, hyp = Counter(reference.split()), Counter(hypothesis.split())
    return sum((ref - hyp).values()) / max(sum(ref.values()), 1)


def run_ocr(
    scan_pdf: Path, dpi: int, languages: tuple[str, ...], workers: int, omp: str, *, detect: bool
) -> tuple[list[str], float, float]:
    """(text per page, seconds, CPU seconds of the Tesseract processes) for one candidate
    setting, through Handbook's own OCR code: `ocr_pages` (the first page decides the
    language) or `recognise` on every page. CPU time is what to compare on a shared machine:
    wall time there depends on what else runs."""
    import resource
    from concurrent.futures import ThreadPoolExecutor

    import pypdfium2 as pdfium

    from ingestion.ocr import OcrOptions, ocr_pages, recognise
    from ingestion.pdf import clean_page_text

    os.environ["OMP_THREAD_LIMIT"] = omp
    options = OcrOptions(mode="force", languages=languages, dpi=dpi, workers=workers)
    pdf = pdfium.PdfDocument(str(scan_pdf))

    def render(index: int) -> object:
        return pdf[index].render(scale=dpi / 72, grayscale=True).to_pil()

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    pages = list(range(len(pdf)))
    if detect:
        texts = [t for _, t, _ in ocr_pages(render, pages, options)]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(recognise, render(i), "+".join(languages), options) for i in pages
            ]
            texts = [f.result() for f in futures]
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return [clean_page_text(t) for t in texts], seconds, cpu


# name -> (render dpi, languages ("page" = the page's own), processes, OMP threads, first page
# decides the language)
CANDIDATES = {
    "deu+eng, first page decides, 300 dpi, 2 processes x 1 thread (default)": (
        300,
        ("deu", "eng"),
        2,
        "1",
        True,
    ),
    "deu+eng on every page, 300 dpi, 2 x 1": (300, ("deu", "eng"), 2, "1", False),
    "deu+eng on every page, 200 dpi, 2 x 1": (200, ("deu", "eng"), 2, "1", False),
    "the page's language only, 300 dpi, 2 x 1": (300, ("page",), 2, "1", False),
    "deu+eng on every page, 300 dpi, 1 process x 2 OpenMP threads": (
        300,
        ("deu", "eng"),
        1,
        "2",
        False,
    ),
}


def questions(pages: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(page number in the copy, question): one sentence per page, first two words dropped."""
    result = []
    for number, (_, text) in enumerate(pages, start=1):
        sentences = [
            s for s in re.split(r"(?<=[.!?])\s+", squash(text)) if 10 <= len(s.split()) <= 30
        ]
        if sentences:
            words = sentences[len(sentences) // 2].split()[2:14]
            result.append((number, " ".join(words)))
    return result


def hit_at_5(pdf: Path, asked: list[tuple[int, str]], home: Path) -> float:
    env = {**os.environ, "HANDBOOK_HOME": str(home), "PYTHONPATH": str(Path.cwd())}
    folder = home.parent / (home.name + "-docs")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(pdf, folder / pdf.name)
    handbook = [sys.executable, "-m", "cli"]
    subprocess.run([*handbook, "index", str(folder)], env=env, check=True, capture_output=True)
    batch = home.parent / (home.name + "-q.txt")
    batch.write_text("\n".join(q for _, q in asked) + "\n", encoding="utf-8")
    out = subprocess.run(
        [*handbook, "search", "--batch", str(batch), "--json", "-k", "5"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    hits = 0
    for (page, _), line in zip(asked, out.strip().splitlines(), strict=True):
        hits += page in [r["page"] for r in json.loads(line)["results"]]
    return hits / len(asked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=16, help="pages per language")
    parser.add_argument(
        "--candidates",
        choices=["all", "default", "none"],
        default="all",
        help="which OCR settings to measure (none: only the retrieval comparison)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ocr-"))
    chosen = {lang: pick_pages(manual(lang), args.pages) for lang in SOURCES}
    for lang, pages in chosen.items():
        write_copies(
            manual(lang), [i for i, _ in pages], work / f"{lang}.pdf", work / f"{lang}-scan.pdf"
        )
    print(
        f"{args.pages} pages per language, scans at {SCAN_DPI} dpi; "
        f"load average {os.getloadavg()[0]:.1f} at the start; "
        f"{os.cpu_count()} cores; Tesseract {_tesseract_version()}\n"
    )
    print(
        "| candidate | language | CER % (mean) | CER % (median) | words missed % | pages/s "
        "| Tesseract CPU s/page |"
    )
    print("|---|---|---|---|---|---|---|")
    names = {"all": list(CANDIDATES), "default": list(CANDIDATES)[:1], "none": []}[args.candidates]
    for name in names:
        dpi, languages, workers, omp, detect = CANDIDATES[name]
        for lang, pages in chosen.items():
            langs = (TESSERACT_LANG[lang],) if languages == ("page",) else languages
            try:
                texts, seconds, cpu = run_ocr(
                    work / f"{lang}-scan.pdf", dpi, langs, workers, omp, detect=detect
                )
            except LoaderError as exc:  # a page over the OCR page timeout
                print(f"| {name} | {lang} | - | - | - | failed: {exc} | - |", flush=True)
                continue
            pairs = list(zip([ref for _, ref in pages], texts, strict=True))
            rates = sorted(cer(ref, hyp) for ref, hyp in pairs)
            missed = sum(words_missed(ref, hyp) for ref, hyp in pairs) / len(pairs)
            print(
                f"| {name} | {lang} | {100 * sum(rates) / len(rates):.2f} | "
                f"{100 * rates[len(rates) // 2]:.2f} | {100 * missed:.2f} | "
                f"{len(pages) / seconds:.2f} | {cpu / len(pages):.1f} |",
                flush=True,
            )
    print("\n| copy | language | questions | hit@5 |")
    print("|---|---|---|---|")
    for lang, pages in chosen.items():
        asked = questions(pages)
        text = hit_at_5(work / f"{lang}.pdf", asked, work / f"home-{lang}-text")
        scan = hit_at_5(work / f"{lang}-scan.pdf", asked, work / f"home-{lang}-scan")
        print(f"| text layer | {lang} | {len(asked)} | {text:.2f} |")
        print(
            f"| scan (OCR, default setting) | {lang} | {len(asked)} | {scan:.2f} "
            f"({scan / max(text, 1e-9):.2f}x) |"
        )
    shutil.rmtree(work, ignore_errors=True)


def _tesseract_version() -> str:
    out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout
    return out.split("\n")[0].split()[-1] if out else "?"


if __name__ == "__main__":
    main()
