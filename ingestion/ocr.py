"""OCR of scanned PDF pages with Tesseract 5 (Debian `tesseract-ocr`), through pytesseract.

Chosen by measurement on real manual pages rendered to 200 dpi images (bench/ocr.py,
bench/README.md §OCR). A page is read by OCR when its text layer holds fewer than
`MIN_LETTERS` letters and it shows an image (decided per page: a manual can be half scanned),
or on every page with `index.ocr: force`. Pages are rendered by PDFium (one at a time: it is
not thread-safe) and recognised by Tesseract processes in parallel, one per core; Tesseract's
own threads are turned off (OMP_THREAD_LIMIT=1), which is faster with one process per core.
Tesseract's text keeps its reading order and separates paragraphs by blank lines.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from handbook.errors import LoaderError

OcrMode = Literal["auto", "off", "force"]
INSTALL_HINT = (
    "the OCR engine Tesseract is not installed: run `sudo apt-get install tesseract-ocr "
    "tesseract-ocr-deu tesseract-ocr-eng` (or `make ocr`), or set index.ocr_command"
)


@dataclass(frozen=True)
class OcrOptions:
    """The `index.ocr*` settings the reader child needs (plain values: cheap to pass)."""

    mode: OcrMode = "auto"
    languages: tuple[str, ...] = ("deu", "eng")
    dpi: int = 300
    command: str = "tesseract"
    page_timeout_s: float = 120.0
    workers: int = 0
    """Tesseract processes at once; 0 = one per CPU core."""


class OcrUnavailable(LoaderError):
    """The OCR engine or its language models are missing."""


def letters(text: str) -> int:
    """
    >>> letters("Seite 3 – Öl")
    7
    """
    return sum(1 for c in text if c.isalpha())


@functools.cache
def installed_languages(command: str) -> tuple[str, ...]:
    """The language models Tesseract has; OcrUnavailable when it is not installed."""
    if shutil.which(command) is None:
        raise OcrUnavailable(INSTALL_HINT)
    try:
        result = subprocess.run(
            [command, "--list-langs"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise OcrUnavailable(f"{INSTALL_HINT} (it does not run: {exc})") from None
    lines = result.stdout.strip().splitlines()
    return tuple(line.strip() for line in lines[1:] if line.strip())


def usable_languages(options: OcrOptions) -> str:
    """Tesseract's `-l` value: the configured languages that are installed."""
    have = installed_languages(options.command)
    wanted = [lang for lang in options.languages if lang in have]
    if not wanted:
        missing = " ".join(f"tesseract-ocr-{lang}" for lang in options.languages)
        raise OcrUnavailable(
            f"Tesseract has none of the OCR languages {list(options.languages)} (it has "
            f"{list(have)}): run `sudo apt-get install {missing}` or set index.ocr_languages"
        )
    return "+".join(wanted)


def recognise(image: Any, languages: str, options: OcrOptions) -> str:
    """Text of one page image, paragraphs separated by blank lines."""
    import pytesseract

    pytesseract.pytesseract.tesseract_cmd = options.command
    try:
        text = pytesseract.image_to_string(
            image, lang=languages, config="--psm 3", timeout=options.page_timeout_s
        )
    except RuntimeError as exc:  # pytesseract's timeout
        raise LoaderError(
            f"OCR of one page took longer than {options.page_timeout_s:g} s; "
            "raise index.ocr_page_timeout_s"
        ) from exc
    except pytesseract.TesseractNotFoundError:
        raise OcrUnavailable(INSTALL_HINT) from None
    except pytesseract.TesseractError as exc:
        raise LoaderError(f"OCR failed ({str(exc)[:200]})") from None
    return _paragraphs(text)


def _paragraphs(text: str) -> str:
    r"""Tesseract ends each line with a newline and each block with a blank line; form feeds
    end the page.

    >>> _paragraphs("Zeile eins\nzwei\n\n\n\nNeuer Absatz\n\x0c")
    'Zeile eins\nzwei\n\nNeuer Absatz'
    """
    text = text.replace("\x0c", "\n")
    return re.sub(r"\n\s*\n\s*", "\n\n", text).strip()


_DETECTED = {"de": "deu", "en": "eng"}  # handbook.language's codes -> Tesseract's models
DECIDE_WITHIN = 3


def ocr_pages(
    render: Callable[[int], Any],
    pages: list[int],
    options: OcrOptions,
    on_page: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[int, str, str]]:
    """(page index, text, Tesseract languages used) for `pages` in order. `render(index)` gives
    the page image (called in this thread, one at a time); Tesseract runs in up to `workers`
    processes at once.

    Each language model that Tesseract loads adds to its time (deu+eng on every page took
    15-20 % more CPU than this, at the same error rate: bench/README.md §10): the first page with
    enough text is read with all configured languages, the rest with the language found on it
    alone (a German manual's English table is still read well by the German model).
    """
    if not pages:
        return
    languages = usable_languages(options)
    workers = options.workers or os.cpu_count() or 1
    done = 0
    # Read one page at a time with all languages until one holds enough text to tell its
    # language (a cover page may not), at most DECIDE_WITHIN pages.
    while done < len(pages) and "+" in languages and done < DECIDE_WITHIN:
        text = recognise(render(pages[done]), languages, options)
        done += 1
        if on_page is not None:
            on_page(done, len(pages))
        yield pages[done - 1], text, languages
        if letters(text) >= 50:
            from handbook.language import detect_language

            found = _DETECTED.get(detect_language(text))
            languages = found if found in languages.split("+") else languages
            break
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list[tuple[int, Future[str]]] = []
        for index in pages[done:]:
            pending.append((index, pool.submit(recognise, render(index), languages, options)))
            if len(pending) < 2 * workers:  # a few images ahead, not the whole file in memory
                continue
            ready, future = pending.pop(0)
            done += 1
            text = future.result()
            if on_page is not None:
                on_page(done, len(pages))
            yield ready, text, languages
        for ready, future in pending:
            done += 1
            text = future.result()
            if on_page is not None:
                on_page(done, len(pages))
            yield ready, text, languages
