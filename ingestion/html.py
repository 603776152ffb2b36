"""HTML files -> sections under their headings (BeautifulSoup), as a browser shows the text:
inline elements add no spaces, block elements break lines, hidden text and the navigation of
documentation generators are left out, table rows become header and rows (ingestion/tables.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from handbook.types import Section
from ingestion.isolation import Limits, Loaded
from ingestion.tables import row_line
from ingestion.text import HEADING_LIMIT, decode_text

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


def load_html(path: Path, _limits: Limits) -> Loaded:
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
                lines.append(row_line(cells))
            continue
        if name in _BLOCKS and not node.find(_BLOCK_INSIDE):
            text = _html_text(node)
            if text:
                prefix = "- " if name == "li" and node.parent and node.parent.name == "ul" else ""
                lines.append(prefix + text)
            continue
        todo.extend(reversed(_runs(node)))
    flush()
    return Loaded(title or path.stem, "html", sections)
