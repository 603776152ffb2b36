"""Heading-aware, token-bounded chunking with overlap.

A chunk never crosses a section (a PDF page, or the text under one heading), so each chunk cites
exactly one page or heading. Inside a section, paragraphs are packed up to `max_tokens`; a
paragraph that is too long is split at sentence ends, then at word boundaries. The last
`overlap_tokens` of a chunk open the next one.

Tokens are counted with a word/punctuation regex: a stable, model-independent approximation
(about 0.75 of a subword tokenizer's count on German technical text).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from handbook.config import ChunkingSettings
from handbook.language import detect_language
from handbook.types import Chunk, Document, Section

_TOKEN = re.compile(r"\w+|[^\w\s]")
_PARAGRAPH = re.compile(r"\n\s*\n")
# A sentence ends at . ! ? : ; followed by space and a word, except after a list number
# ("3.") or a common abbreviation ("ca.", "bzw.").
_SENTENCE = re.compile(
    r"(?<=[.!?:;])(?<!\b\d\.)(?<!\b\d\d\.)(?<!ca\.)(?<!bzw\.)(?<!usw\.)(?<!Nr\.)(?<!z\.B\.)"
    r"(?<!e\.g\.)(?<!i\.e\.)(?<!vs\.)(\s+)(?=[\wÄÖÜ(\"„])"
)


def count_tokens(text: str) -> int:
    """
    >>> count_tokens("Radschrauben: 120 Nm.")
    5
    """
    return len(_TOKEN.findall(text))


def sentences(paragraph: str) -> list[str]:
    r"""Sentences with the whitespace that followed them, so joining restores the text.

    >>> sentences("3. Rad ab. Die Schrauben ca. 120 Nm.\nFertig")
    ['3. Rad ab. ', 'Die Schrauben ca. 120 Nm.\n', 'Fertig']
    """
    parts = _SENTENCE.split(paragraph)
    return [
        parts[i] + (parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)
    ]


def _pieces(text: str, max_tokens: int) -> Iterator[str]:
    """Pieces of at most max_tokens, preferring paragraph, line, sentence, then word ends.

    Each piece keeps its trailing whitespace: concatenating pieces gives back the text.
    """
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if count_tokens(paragraph) <= max_tokens:
            yield paragraph + "\n\n"
            continue
        pieces: list[str] = []
        # Lines first (table rows and list items stay whole), then sentences of long lines.
        units: list[str] = []
        for line in paragraph.split("\n"):
            if count_tokens(line) <= max_tokens:
                units.append(line + "\n")
            else:
                units += sentences(line)
                units[-1] = units[-1].rstrip() + "\n"
        for sentence in units:
            if count_tokens(sentence) <= max_tokens:
                pieces.append(sentence)
                continue
            words = sentence.split()
            start = 0
            while start < len(words):
                end, size = start, 0
                while end < len(words):
                    size += count_tokens(words[end])
                    if size > max_tokens and end > start:
                        break
                    end += 1
                pieces.append(" ".join(words[start : max(end, start + 1)]) + " ")
                start = max(end, start + 1)
        pieces[-1] = pieces[-1].rstrip() + "\n\n"
        yield from pieces


def _hard_split(piece: str, max_tokens: int) -> Iterator[str]:
    """A single 'word' longer than the budget (a gigantic line without spaces)."""
    tokens = list(_TOKEN.finditer(piece))
    for i in range(0, len(tokens), max_tokens):
        part = tokens[i : i + max_tokens]
        yield piece[part[0].start() : part[-1].end()]


def split_section(text: str, settings: ChunkingSettings) -> list[str]:
    budget = settings.max_tokens
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    size = 0
    for raw in _pieces(text, budget):
        raw_size = count_tokens(raw)
        parts = (
            [(p, count_tokens(p)) for p in _hard_split(raw, budget)]
            if raw_size > budget
            else [(raw, raw_size)]
        )
        for piece, n in parts:
            if current and size + n > budget:
                chunks.append("".join(p for p, _ in current).strip())
                # Carry whole trailing pieces up to the overlap budget into the next chunk.
                carried: list[tuple[str, int]] = []
                carried_size = 0
                for prev in reversed(current):
                    if carried_size + prev[1] > settings.overlap_tokens:
                        break
                    carried.insert(0, prev)
                    carried_size += prev[1]
                if carried_size + n > budget:
                    carried, carried_size = [], 0
                current, size = carried, carried_size
            current.append((piece, n))
            size += n
    if current:
        chunks.append("".join(p for p, _ in current).strip())
    return chunks


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
        # Per chunk: manuals mix languages (an English table in a German handbook).
        # 800 characters decide the language; more only costs time (it is per chunk).
        language=(
            detect_language(text, document.language, sample=800)
            if len(text) > 200
            else document.language
        ),
    )


def embedding_text(chunk: Chunk) -> str:
    """What is embedded: the heading path gives short chunks their context."""
    context = " > ".join((chunk.title, *chunk.heading_path))
    return f"{context}\n{chunk.text}"
