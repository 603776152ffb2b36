"""Heading-aware, token-bounded chunking with overlap.

A chunk never crosses a section (a PDF page, or the text under one heading), so each chunk cites
exactly one page or heading. Inside a section, paragraphs are packed up to `max_tokens`; a
paragraph that is too long is split at sentence ends, then at word boundaries. The last
`overlap_tokens` of a chunk open the next one.

Tokens are counted with a word/punctuation regex: a stable, model-independent approximation
(about 0.75 of a subword tokenizer's count on German technical text). A chunk also holds at
most `MAX_TOKEN_CHARS` characters per token of budget, so a gigantic "word" (a line of base64, a
file without spaces) is cut into chunks of bounded size too. Work is linear in the text's size.

Tables are lines of pipe-separated cells whose first line is the header (ingestion/tables.py):
a table too long for one chunk is split between rows, and a chunk that continues a table
starts with its header line, so that every row keeps the names of its columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from handbook.config import ChunkingSettings
from handbook.language import detect_language
from handbook.text import sentences
from handbook.types import Chunk, Document, Language, Section
from ingestion.tables import headers

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\S+")
# Normal text has 4-6 characters per token; only runs of whitespace or gigantic words reach this.
MAX_TOKEN_CHARS = 24
_PARAGRAPH = re.compile(r"\n\s*\n")


def count_tokens(text: str) -> int:
    """
    >>> count_tokens("Radschrauben: 120 Nm.")
    5
    """
    if len(text) < 100_000:
        return len(_TOKEN.findall(text))
    return sum(1 for _ in _TOKEN.finditer(text))  # no list of millions of strings


def _size(text: str) -> int:
    """Tokens, or a token per MAX_TOKEN_CHARS characters where that is more.

    >>> _size("Radschrauben: 120 Nm."), _size("x" * 100)
    (5, 5)
    """
    return max(count_tokens(text), -(-len(text) // MAX_TOKEN_CHARS))


def _pieces(text: str, max_tokens: int) -> Iterator[tuple[str, str | None]]:
    """Pieces of at most max_tokens, preferring paragraph, line, sentence, then word ends, each
    with the header line of the table it continues (None outside tables).

    Each piece keeps its trailing whitespace: concatenating pieces gives back the text.
    """
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if count_tokens(paragraph) <= max_tokens:
            yield paragraph + "\n\n", None
            continue
        pieces: list[tuple[str, str | None]] = []
        # Lines first (table rows and list items stay whole), then sentences of long lines.
        units: list[tuple[str, str | None]] = []
        lines = paragraph.split("\n")
        for line, header in zip(lines, headers(paragraph), strict=True):
            if count_tokens(line) <= max_tokens:
                units.append((line + "\n", header))
            else:
                units += [(sentence, header) for sentence in sentences(line)]
                units[-1] = (units[-1][0].rstrip() + "\n", header)
        for sentence, header in units:
            if count_tokens(sentence) <= max_tokens:
                pieces.append((sentence, header))
                continue
            # Lazily, word by word: a gigantic line must not become a list of millions.
            words: list[str] = []
            size = 0
            for match in _WORD.finditer(sentence):
                word = match.group()
                n = count_tokens(word)
                if words and size + n > max_tokens:
                    pieces.append((" ".join(words) + " ", header))
                    words, size = [], 0
                words.append(word)
                size += n
            if words:
                pieces.append((" ".join(words) + " ", header))
        pieces[-1] = (pieces[-1][0].rstrip() + "\n\n", pieces[-1][1])
        yield from pieces


def _hard_split(piece: str, max_tokens: int) -> Iterator[str]:
    """Parts of at most max_tokens tokens and max_tokens * MAX_TOKEN_CHARS characters, for a
    piece over either (a gigantic line without spaces, a run of whitespace).

    >>> [len(p) for p in _hard_split("a" * 100 + " b c", 2)]
    [46, 46, 11, 1]
    """
    max_chars = max_tokens * MAX_TOKEN_CHARS - 2  # room for the separator kept after a part
    start = end = count = 0
    for token in _TOKEN.finditer(piece):
        if count and (count >= max_tokens or token.end() - start > max_chars):
            yield piece[start:end] + piece[end : token.start()][:1]
            count = 0
        if not count:
            start = token.start()
            while token.end() - start > max_chars:  # one token longer than a chunk
                yield piece[start : start + max_chars]
                start += max_chars
        end = token.end()
        count += 1
    if count:
        yield piece[start:end] + piece[end:][:2]


def split_section(text: str, settings: ChunkingSettings) -> list[str]:
    r"""Chunks of a section's text; a chunk that continues a table starts with its header.

    >>> rows = "".join(f"| Schraube {i} | {i} Nm |\n" for i in range(9))
    >>> tight = ChunkingSettings(max_tokens=40, overlap_tokens=0)
    >>> [c.split("\n")[0] for c in split_section("| Teil | Moment |\n" + rows, tight)]
    ['| Teil | Moment |', '| Teil | Moment |']
    """
    budget = settings.max_tokens
    chunks: list[str] = []
    current: list[tuple[str, int, str | None]] = []  # (piece, tokens, its table's header)
    size = 0
    for raw, header in _pieces(text, budget):
        raw_size = _size(raw)
        parts = (
            [(p, _size(p)) for p in _hard_split(raw, budget)]
            if raw_size > budget
            else [(raw, raw_size)]
        )
        for piece, n in parts:
            if current and size + n > budget:
                chunks.append("".join(p for p, _, _ in current).strip())
                # Carry whole trailing pieces up to the overlap budget into the next chunk.
                carried: list[tuple[str, int, str | None]] = []
                carried_size = 0
                for prev in reversed(current):
                    if carried_size + prev[1] > settings.overlap_tokens:
                        break
                    carried.insert(0, prev)
                    carried_size += prev[1]
                if carried_size + n > budget:
                    carried, carried_size = [], 0
                current, size = _with_header(carried, carried_size, (piece, n, header), budget)
            current.append((piece, n, header))
            size += n
    if current:
        chunks.append("".join(p for p, _, _ in current).strip())
    return chunks


def _with_header(
    carried: list[tuple[str, int, str | None]],
    size: int,
    piece: tuple[str, int, str | None],
    budget: int,
) -> tuple[list[tuple[str, int, str | None]], int]:
    """The start of a new chunk: the carried overlap, led by the header line of the table its
    first piece continues (the overlap is dropped where both do not fit)."""
    first = carried[0] if carried else piece
    if first[2] is None:
        return carried, size
    line = first[2] + "\n"
    n = _size(line)
    if n + size + piece[1] > budget:
        carried, size = [], 0
        if piece[2] is None or n + piece[1] > budget:
            return carried, size
        line = piece[2] + "\n"
    return [(line, n, None), *carried], size + n


def chunk_document(document: Document, settings: ChunkingSettings) -> list[Chunk]:
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for section in document.sections:
        for text in split_section(section.text, settings):
            chunk = _make(document, section, text, len(chunks))
            if chunk.id in seen:  # identical text twice on one page: store once
                continue
            seen.add(chunk.id)
            chunks.append(chunk)
    return chunks


def _make(document: Document, section: Section, text: str, ordinal: int) -> Chunk:
    return Chunk(
        doc_id=document.doc_id,
        ordinal=ordinal,
        text=text,
        title=document.title,
        path=document.path,
        page=section.page,
        # The document title is cited anyway: a top heading that repeats it adds nothing.
        heading_path=section.heading_path[1:]
        if section.heading_path[:1] == (document.title,)
        else section.heading_path,
        language=chunk_language(text, document.language),
    )


def chunk_language(text: str, document_language: Language) -> Language:
    """Per chunk: manuals mix languages (an English table in a German handbook). A short chunk
    keeps its document's; 800 characters decide, more only costs time (it is per chunk)."""
    return (
        detect_language(text, document_language, sample=800)
        if len(text) > 200
        else document_language
    )


def embedding_text(chunk: Chunk) -> str:
    """What is embedded: the heading path gives short chunks their context."""
    context = " > ".join((chunk.title, *chunk.heading_path))
    return f"{context}\n{chunk.text}"
