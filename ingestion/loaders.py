"""File -> Document. One function per format, chosen by extension and checked against content.

Every failure is a `LoaderError` whose message says what is wrong with the file, so the index
summary can show one clear line per bad file while the others are indexed. PDF and DOCX files
and large files are read in a child process limited in memory and time (ingestion/isolation.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handbook.errors import LoaderError
from handbook.language import detect_language
from handbook.types import Document, Section
from ingestion.isolation import (
    Limits,
    Loaded,
    PageProgress,
    ReadLimits,
    needs_isolation,
    read_in_child,
)
from ingestion.tables import row_line
from ingestion.text import HEADING_LIMIT, decode_text

# A heading is a short line; the ATX pattern is only tried on lines up to this long (on a
# gigantic line starting with "# ##..." it would backtrack quadratically).
HEADING_MAX_CHARS = 300
# A DOCX holds a few dozen parts, a few thousand with many images.
MAX_ZIP_MEMBERS = 10_000


def load_document(
    path: Path,
    doc_id: str,
    sha256: str,
    limits: ReadLimits | None = None,
    on_page: PageProgress | None = None,
) -> Document:
    """Read a file into a Document, by extension; content that does not match fails clearly.

    `limits` (default: the built-in `index` settings) bound what reading may cost and say
    how scanned pages are read; `on_page(done, total)` hears of each page read by OCR.
    """
    if limits is None:
        from handbook.config import IndexSettings

        limits = IndexSettings()
    suffix = path.suffix.lower()
    if suffix not in LOADERS:
        raise LoaderError(f"unsupported file type {suffix or '(none)'}")
    head = _head(path)
    _check_signature(suffix, head)
    if needs_isolation(path, path.stat().st_size):
        title, fmt, sections, notes = read_in_child(path, limits, on_page)
    else:
        title, fmt, sections, notes = read_sections(path, limits, on_page)
    kept = tuple(s for s in sections if s.text.strip())
    if not kept:
        if any(s.ocr for s in sections):
            raise LoaderError(
                "no text found: OCR read nothing on its scanned pages (blank, or too coarse an "
                "image; scan at 200 dpi or more)"
            )
        raise LoaderError("no text found")
    sample = " ".join(s.text for s in kept[:20])[:5000]
    return Document(
        doc_id=doc_id,
        path=str(path),
        title=title or path.stem,
        format=fmt,
        sha256=sha256,
        sections=kept,
        language=detect_language(sample),
        notes=notes,
    )


def read_sections(
    path: Path, limits: ReadLimits | Limits, on_page: PageProgress | None = None
) -> Loaded:
    """(title, format, sections, notes) of a file, in this process: what the child runs."""
    copy = limits if isinstance(limits, Limits) else Limits.of(limits)
    if path.suffix.lower() == ".pdf":
        return load_pdf(path, copy, on_page)
    return LOADERS[path.suffix.lower()](path, copy)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(8192)
    except PermissionError:
        raise LoaderError("permission denied: the file cannot be read") from None
    except OSError as exc:
        raise LoaderError(f"cannot be read: {exc.strerror or exc}") from None


def _describe(head: bytes) -> str:
    if head.startswith(b"%PDF"):
        return "a PDF"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP/Office file"
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary data"
    if re.search(rb"<(!doctype html|html|body)", head[:1024], re.IGNORECASE):
        return "HTML"
    return "text"


def _check_signature(suffix: str, head: bytes) -> None:
    if not head:
        raise LoaderError("the file is empty")
    kind = _describe(head)
    expected = {".pdf": "a PDF", ".docx": "a ZIP/Office file"}.get(suffix)
    if expected and kind != expected:
        raise LoaderError(f"named {suffix} but the content is {kind}; rename or re-export it")
    if expected is None and kind != "text" and kind != "HTML":
        raise LoaderError(f"named {suffix} but the content is {kind}, not text")


# --- text ---------------------------------------------------------------------------------


_UNDERLINE = re.compile(r"^(=+|-+)\s*$")


def _text_sections(text: str) -> list[Section]:
    """Plain text: underlined (setext) and '#' lines start sections."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []

    def flush() -> None:
        if "".join(body).strip():
            sections.append(Section("\n".join(body).strip(), None, tuple(t for _, t in path)))
        body.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        level = 0
        title = ""
        stripped = line.strip()
        if stripped and len(stripped) < 120 and _UNDERLINE.match(nxt) and len(nxt.strip()) >= 3:
            level, title = (1 if nxt.strip()[0] == "=" else 2), stripped
            i += 1
        elif len(line) <= HEADING_MAX_CHARS and (
            m := re.match(r"^(#{1,6})\s+(.+?)\s*#*\s*$", line)
        ):
            level, title = len(m.group(1)), m.group(2)
        if level:
            flush()
            path[:] = [(lv, t) for lv, t in path if lv < level][: HEADING_LIMIT - 1]
            path.append((level, title))
        else:
            body.append(line)
        i += 1
    flush()
    return sections


def load_text(path: Path, _limits: Limits) -> Loaded:
    text = decode_text(path.read_bytes())
    return Loaded(path.stem, "text", _text_sections(text))


# --- markdown -----------------------------------------------------------------------------


# Comments are not shown to a reader, so they are not indexed (a planted instruction hides
# there as easily as a note); their lines stay as blank lines so line numbers hold.
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _blank_lines(match: re.Match[str]) -> str:
    return "\n" * match.group().count("\n")


def load_markdown(path: Path, _limits: Limits) -> Loaded:
    from markdown_it import MarkdownIt

    text = _HTML_COMMENT.sub(_blank_lines, decode_text(path.read_bytes()).replace("\r\n", "\n"))
    lines: list[str | None] = list(text.split("\n"))
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headings: list[tuple[int, int, int, str]] = []  # (start line, end line, level, title)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            inline = tokens[i + 1]
            headings.append((tok.map[0], tok.map[1], int(tok.tag[1]), inline.content.strip()))
        elif tok.type == "table_open" and tok.map:
            # The table's lines become header and rows (no |---| line; pipes at both ends).
            start, end = tok.map
            rows = _markdown_rows(tokens, i)
            lines[start:end] = rows + [None] * (end - start - len(rows))
    sections: list[Section] = []
    path_stack: list[tuple[int, str]] = []
    title = ""
    bounds = [(0, 0, 0, ""), *headings]
    for n, (_start, end, level, heading) in enumerate(bounds):
        if level:
            path_stack[:] = [(lv, t) for lv, t in path_stack if lv < level][: HEADING_LIMIT - 1]
            path_stack.append((level, heading))
            if level == 1 and not title:
                title = heading
        stop = bounds[n + 1][0] if n + 1 < len(bounds) else len(lines)
        body = "\n".join(line for line in lines[end:stop] if line is not None).strip()
        if body:
            sections.append(Section(body, None, tuple(t for _, t in path_stack)))
    return Loaded(title or path.stem, "markdown", sections)


def _markdown_rows(tokens: list[Any], start: int) -> list[str]:
    """The rows of the table whose `table_open` token is at `start`, as table lines."""
    rows: list[str] = []
    cells: list[str] = []
    for tok in tokens[start + 1 :]:
        if tok.type == "table_close":
            break
        if tok.type == "inline":
            cells.append(tok.content)
        elif tok.type == "tr_close":
            rows.append(row_line(cells))
            cells = []
    return rows


# --- DOCX ---------------------------------------------------------------------------------


def check_zip(path: Path, max_unpacked_mb: float) -> None:
    """Refuse a ZIP that would unpack to more than `max_unpacked_mb`: first by the sizes its
    directory declares, then by the bytes it really inflates to, since declared sizes can lie.
    (Python's zipfile stops a member at its declared size and then fails its CRC check, so a
    member that inflates to more than it declares ends as a damaged file, never in memory.)
    """
    import zipfile

    limit = max_unpacked_mb * 1024 * 1024
    advice = "(a zip bomb?); raise index.max_unpacked_mb if it is a genuine, huge document"
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise LoaderError(
                f"holds {len(members)} files, more than the {MAX_ZIP_MEMBERS} a document has "
                "(a zip bomb?); not indexed"
            )
        declared = sum(info.file_size for info in members)
        if declared > limit:
            raise LoaderError(
                f"unpacks to {declared / 1024 / 1024:.0f} MB, over the "
                f"{max_unpacked_mb:g} MB limit {advice}"
            )
        unpacked = 0
        for info in members:
            with archive.open(info) as member:
                while block := member.read(1 << 20):
                    unpacked += len(block)
                    if unpacked > limit:
                        raise LoaderError(
                            f"unpacks to more than the {max_unpacked_mb:g} MB limit {advice}"
                        )


def load_docx(path: Path, limits: Limits) -> Loaded:
    import zipfile

    try:
        import docx
        import docx.table
    except ImportError:
        raise LoaderError("DOCX support needs python-docx: pip install python-docx") from None
    try:
        check_zip(path, limits.max_unpacked_mb)
        document = docx.Document(str(path))
    except LoaderError:
        raise
    except zipfile.BadZipFile as exc:  # "Bad CRC-32 for file 'word/document.xml'"
        raise LoaderError(
            f"the DOCX is damaged or forged ({exc}); open and save it again in Word"
        ) from None
    except Exception as exc:  # python-docx raises many types for broken files
        # lxml out of memory: "unknown error", with ERR_NO_MEMORY in its error log.
        if "NO_MEMORY" in str(getattr(exc, "error_log", "")) or "memory" in str(exc).lower():
            raise MemoryError(str(exc)) from exc
        raise LoaderError(f"not a readable DOCX file ({type(exc).__name__})") from None
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    title = document.core_properties.title or ""

    def flush() -> None:
        if "".join(lines).strip():
            sections.append(Section("\n".join(lines).strip(), None, tuple(t for _, t in stack)))
        lines.clear()

    # Style names by the paragraph's style id: python-docx's `paragraph.style` scans all
    # styles for the default on every call (2.5 ms a paragraph: minutes for a long document).
    names: dict[str | None, str] = {}
    # Paragraphs and tables in document order: a table stays under its heading.
    for block in document.iter_inner_content():
        if isinstance(block, docx.table.Table):
            rows = [row_line(cell.text for cell in row.cells) for row in block.rows]
            lines.extend(["", *rows, ""])  # a paragraph of its own: header first
            continue
        paragraph = block
        style_id = paragraph._p.style
        if style_id not in names:
            names[style_id] = (paragraph.style.name if paragraph.style is not None else "") or ""
        style = names[style_id]
        m = re.match(r"Heading (\d)", style or "")
        if m or style == "Title":
            flush()
            level = int(m.group(1)) if m else 1
            stack[:] = [s for s in stack if s[0] < level][: HEADING_LIMIT - 1]
            stack.append((level, paragraph.text.strip()))
            title = title or paragraph.text.strip()
        elif paragraph.text.strip():
            lines.append(paragraph.text)
    flush()
    return Loaded(title or path.stem, "docx", sections)


def load_pdf(path: Path, limits: Limits, on_page: PageProgress | None = None) -> Loaded:
    from ingestion.pdf import read_pdf

    title, sections, notes = read_pdf(path, limits.ocr_options, on_page, tables=limits.pdf_tables)
    return Loaded(title, "pdf", sections, notes)


def load_html(path: Path, limits: Limits) -> Loaded:
    from ingestion.html import load_html as read_html

    return read_html(path, limits)


LOADERS: dict[str, Callable[[Path, Limits], Loaded]] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
    ".pdf": load_pdf,
}
