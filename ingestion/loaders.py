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
from ingestion.isolation import ReadLimits, needs_isolation, read_in_child

HEADING_LIMIT = 6
# A heading is a short line; the ATX pattern is only tried on lines up to this long (on a
# gigantic line starting with "# ##..." it would backtrack quadratically).
HEADING_MAX_CHARS = 300
# A DOCX holds a few dozen parts, a few thousand with many images.
MAX_ZIP_MEMBERS = 10_000


def load_document(
    path: Path, doc_id: str, sha256: str, limits: ReadLimits | None = None
) -> Document:
    """Read a file into a Document, by extension; content that does not match fails clearly.

    `limits` (default: the built-in `index` settings) bound what reading may cost.
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
        title, fmt, sections = read_in_child(path, limits)
    else:
        title, fmt, sections = read_sections(path, limits)
    kept = tuple(s for s in sections if s.text.strip())
    if not kept:
        raise LoaderError(
            "no text found"
            + (" (a scanned PDF? run OCR on it first, e.g. ocrmypdf)" if fmt == "pdf" else "")
        )
    sample = " ".join(s.text for s in kept[:20])[:5000]
    return Document(
        doc_id=doc_id,
        path=str(path),
        title=title or path.stem,
        format=fmt,
        sha256=sha256,
        sections=kept,
        language=detect_language(sample),
    )


def read_sections(path: Path, limits: ReadLimits) -> tuple[str, str, list[Section]]:
    """(title, format, sections) of a file, in this process: what the child process runs."""
    return LOADERS[path.suffix.lower()](path, limits)


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


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else the encoding charset-normalizer finds.

    >>> text = "Die Größe der Ölablassschraube beträgt 14 mm; Anzugsdrehmoment 30 Nm."
    >>> decode_text(text.encode("cp1252")) == text
    True
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise LoaderError("broken UTF-16 text; save the file as UTF-8") from None
    if b"\x00" in data[:8192]:
        raise LoaderError("binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Windows-1252 is by far the most common legacy encoding of German/English manuals, and
    # statistical detection is unreliable on short files: take it when it reads as such text.
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        western = ""
    unusual = [c for c in western if ord(c) > 127 and c not in _WESTERN_EXTRA]
    if western and len(unusual) <= len(western) // 200:
        return western
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoaderError("unknown text encoding; save the file as UTF-8")
    return str(best)


_WESTERN_EXTRA = frozenset("äöüÄÖÜßéèêáàâçñ€°µ²³§–—„“”‚‘’«»·±×÷½¼¾©®™…")
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


def load_text(path: Path, _limits: ReadLimits) -> tuple[str, str, list[Section]]:
    text = decode_text(path.read_bytes())
    return path.stem, "text", _text_sections(text)


# --- markdown -----------------------------------------------------------------------------


# Comments are not shown to a reader, so they are not indexed (a planted instruction hides
# there as easily as a note); their lines stay as blank lines so line numbers hold.
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _blank_lines(match: re.Match[str]) -> str:
    return "\n" * match.group().count("\n")


def load_markdown(path: Path, _limits: ReadLimits) -> tuple[str, str, list[Section]]:
    from markdown_it import MarkdownIt

    text = _HTML_COMMENT.sub(_blank_lines, decode_text(path.read_bytes()).replace("\r\n", "\n"))
    lines = text.split("\n")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headings: list[tuple[int, int, int, str]] = []  # (start line, end line, level, title)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            inline = tokens[i + 1]
            headings.append((tok.map[0], tok.map[1], int(tok.tag[1]), inline.content.strip()))
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
        body = "\n".join(lines[end:stop]).strip()
        if body:
            sections.append(Section(body, None, tuple(t for _, t in path_stack)))
    return title or path.stem, "markdown", sections


# --- HTML ---------------------------------------------------------------------------------

_BLOCKS = ("p", "li", "pre", "blockquote", "dt", "dd", "caption", "figcaption", "td", "th")


_BLOCK_INSIDE = re.compile(r"^(h[1-6]|table|ul|ol|dl|p|div|pre|blockquote)$")
# Elements that start a new line of text; everything else (code, em, a, span...) is inline.
_BREAKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)


def _html_text(node: Any) -> str:
    r"""An element's text as a browser shows it: inline elements add no spaces of their own
    (`<code>apt</code>-get` stays `apt-get`), block elements and <br> break words apart,
    and whitespace collapses except inside <pre>.

    >>> from bs4 import BeautifulSoup
    >>> _html_text(BeautifulSoup("<p>Edit <code>/etc/apt/sources.list</code>, then run "
    ...     "<em>apt</em>.</p>", "html.parser").p)
    'Edit /etc/apt/sources.list, then run apt.'
    >>> _html_text(BeautifulSoup("<pre>$ cd <em>pkg</em>\n$ ls</pre>", "html.parser").pre)
    '$ cd pkg\n$ ls'
    """
    from bs4.element import NavigableString, Tag

    pre = node.name == "pre" or node.find_parent("pre") is not None
    parts: list[str] = []
    for piece in node.descendants:
        if isinstance(piece, Tag) and piece.name in _BREAKS:
            parts.append("\n" if piece.name == "br" and pre else " ")
        elif type(piece) is NavigableString:  # not a comment, CDATA or doctype
            parts.append(str(piece))
    text = "".join(parts)
    if pre:
        return "\n".join(" ".join(line.split()) for line in text.strip("\n").splitlines())
    return " ".join(text.split())


def _runs(node: Any) -> list[Any]:
    """An element's children for the walk: block elements as they are, each run of inline
    content between them as one line of text."""
    from bs4.element import NavigableString, Tag

    out: list[Any] = []
    run: list[str] = []

    def end_run() -> None:
        text = " ".join("".join(run).split())
        if text:
            out.append(text)
        run.clear()

    for child in node.children:
        if isinstance(child, Tag) and (child.name in _BREAKS or child.find(_BLOCK_INSIDE)):
            end_run()
            out.append(child)
        elif isinstance(child, Tag):
            run.append(_html_text(child))
        elif type(child) is NavigableString:
            run.append(str(child))
    end_run()
    return out


_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


# Navigation that documentation generators (DocBook, Sphinx) write around the text.
_CHROME_CLASSES = frozenset({"navheader", "navfooter", "toc", "breadcrumb", "breadcrumbs"})


def _is_hidden(tag: Any) -> bool:
    """An element a browser does not render (`hidden`, `aria-hidden="true"`, a style of
    `display: none` / `visibility: hidden`), or navigation around the text (a table of
    contents, a header or footer with links to the next page)."""
    attrs = getattr(tag, "attrs", None) or {}
    classes = set(attrs.get("class") or ())
    return (
        bool(classes & _CHROME_CLASSES)
        or str(attrs.get("role", "")).lower() in ("navigation", "banner", "contentinfo")
        or "hidden" in attrs
        or str(attrs.get("aria-hidden", "")).lower() == "true"
        or bool(_HIDDEN_STYLE.search(str(attrs.get("style", ""))))
    )


def load_html(path: Path, _limits: ReadLimits) -> tuple[str, str, list[Section]]:
    from bs4 import BeautifulSoup, Tag

    soup = BeautifulSoup(decode_text(path.read_bytes()), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav", "svg", "head"]):
        if tag.name == "head":
            continue
        tag.decompose()
    # Text a browser does not show is not indexed: what a reader never sees is no part of the
    # manual, and hidden text is where planted instructions go.
    for tag in soup.find_all(_is_hidden):
        if not tag.decomposed:
            tag.decompose()
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text(" ").split()) if title_tag else ""
    body = soup.body or soup
    sections: list[Section] = []
    stack: list[tuple[int, str, str | None]] = []
    lines: list[str] = []

    def flush() -> None:
        text = "\n".join(lines).strip()
        if text:
            anchor = stack[-1][2] if stack else None
            sections.append(Section(text, None, tuple(t for _, t, _ in stack), anchor))
        lines.clear()

    # Iterative walk (deeply nested HTML must not hit the recursion limit). The stack holds
    # elements, and runs of inline content (text mixed with <code>, <em>...) of an element
    # that also has blocks inside (DocBook's <div class="para">).
    todo: list[Tag | str] = [body] if isinstance(body, Tag) else []
    while todo:
        node = todo.pop()
        if isinstance(node, str):
            lines.append(node)
            continue
        name = node.name or ""
        if re.fullmatch(r"h[1-6]", name):
            flush()
            level = int(name[1])
            heading = " ".join(node.get_text(" ").split())
            parent = node.find_parent(id=True)
            anchor = node.get("id") or (parent.get("id") if parent is not None else None)
            stack[:] = [s for s in stack if s[0] < level][: HEADING_LIMIT - 1]
            stack.append((level, heading, str(anchor) if anchor else None))
            if not title and level == 1:
                title = heading
            continue
        if name == "tr":
            cells = [_html_text(c) for c in node.find_all(["td", "th"])]
            if any(cells):
                lines.append(" | ".join(cells))
            continue
        if name in _BLOCKS and not node.find(_BLOCK_INSIDE):
            text = _html_text(node)
            if text:
                prefix = "- " if name == "li" and node.parent and node.parent.name == "ul" else ""
                lines.append(prefix + text)
            continue
        todo.extend(reversed(_runs(node)))
    flush()
    return title or path.stem, "html", sections


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


def load_docx(path: Path, limits: ReadLimits) -> tuple[str, str, list[Section]]:
    import zipfile

    try:
        import docx
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
    for paragraph in document.paragraphs:
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
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    flush()
    return title or path.stem, "docx", sections


def load_pdf(path: Path, _limits: ReadLimits) -> tuple[str, str, list[Section]]:
    from ingestion.pdf import read_pdf

    return read_pdf(path)


LOADERS: dict[str, Callable[[Path, ReadLimits], tuple[str, str, list[Section]]]] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
    ".pdf": load_pdf,
}
