"""Domain types that cross package boundaries. All immutable."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal, get_args

Language = Literal["de", "en"]
RetrievalMode = Literal["hybrid", "naive", "sparse", "local", "global", "mix"]
RETRIEVAL_MODES: tuple[RetrievalMode, ...] = get_args(RetrievalMode)  # for the CLI's choices
GraphMode = Literal["local", "global", "hybrid"]
GRAPH_MODES = ("local", "global", "mix")
AnswerMode = Literal["extract", "generate"]


class Task(StrEnum):
    """What kind of answer a question asks for; fine-tuned adapters see it as `[TASK]`."""

    SPEC = "SPEC"
    PROCEDURE = "PROCEDURE"
    EXPLAIN = "EXPLAIN"
    TROUBLESHOOT = "TROUBLESHOOT"


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True)
class Section:
    """A piece of a loaded document with its location: a PDF page or a heading's text."""

    text: str
    page: int | None = None
    """1-based physical page for PDFs, None for formats without pages."""
    heading_path: tuple[str, ...] = ()
    anchor: str | None = None
    """HTML id of the heading, when the format has one."""
    ocr: bool = False
    """The text was read from the page image by OCR (a scanned page)."""


@dataclass(frozen=True)
class Document:
    """A file read by a loader, before chunking."""

    doc_id: str
    path: str
    title: str
    format: str
    sha256: str
    sections: tuple[Section, ...]
    language: Language = "en"
    notes: tuple[str, ...] = ()
    """What the index summary says about the file (pages read by OCR, pages left out)."""

    @property
    def text_length(self) -> int:
        return sum(len(s.text) for s in self.sections)


@dataclass(frozen=True)
class Chunk:
    """The unit that is embedded, stored and cited."""

    doc_id: str
    ordinal: int
    text: str
    title: str
    path: str
    page: int | None
    heading_path: tuple[str, ...]
    language: Language
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", chunk_id(self.doc_id, self.page, self.text))

    @property
    def section(self) -> str:
        return " > ".join(self.heading_path)


def chunk_id(doc_id: str, page: int | None, text: str) -> str:
    """Content hash of a chunk, shaped as a UUID so every Qdrant engine accepts it.

    >>> chunk_id("d1", 3, "Radschrauben: 120 Nm") == chunk_id("d1", 3, "Radschrauben: 120 Nm")
    True
    >>> chunk_id("d1", 3, "a") != chunk_id("d2", 3, "a")
    True
    """
    digest = hashlib.sha256(f"{doc_id}\x1f{page}\x1f{text}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16]))


@dataclass(frozen=True)
class SparseVector:
    """Lexical vector: hashed term ids and weights, sorted by index."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused score."""

    chunk: Chunk
    score: float
    dense_rank: int | None = None
    sparse_rank: int | None = None


@dataclass(frozen=True)
class GraphFact:
    """An entity or a relation of the knowledge graph, with the chunks it was extracted from."""

    name: str
    """The entity, or `A -> B` for a relation."""
    text: str
    chunk_ids: tuple[str, ...]


@dataclass(frozen=True)
class GraphContext:
    """What the graph holds for a question: facts, and the chunks behind them, best first."""

    facts: tuple[GraphFact, ...] = ()
    chunk_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchFilter:
    """Restricts retrieval to documents and/or a language."""

    doc_ids: tuple[str, ...] = ()
    language: Language | None = None


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


SOURCES_LABEL: dict[Language, str] = {"de": "Quellen", "en": "Sources"}


def location(page: int | None, section: str, language: Language = "en") -> str:
    """Where in a document, in the reader's language.

    >>> location(2, "Wartung", "de"), location(7, ""), location(None, "Maintenance")
    ('S. 2, Wartung', 'p. 7', 'Maintenance')
    """
    parts = []
    if page is not None:
        parts.append(f"{'S.' if language == 'de' else 'p.'} {page}")
    if section:
        parts.append(section)
    return ", ".join(parts)


@dataclass(frozen=True)
class SearchHit:
    """A passage as readers see it: which document, where in it, how well it matched, its text.
    `handbook search --json`, the API and the MCP tools all write this record."""

    doc: str
    title: str
    path: str
    page: int | None
    section: str
    score: float
    text: str

    @classmethod
    def of(cls, passage: Passage) -> SearchHit:
        chunk = passage.chunk
        return cls(
            doc=chunk.doc_id,
            title=chunk.title,
            path=chunk.path,
            page=chunk.page,
            section=chunk.section,
            score=round(passage.score, 6),
            text=chunk.text,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Citation(SearchHit):
    """A passage an answer cites as `[n]`."""

    n: int

    @classmethod
    def numbered(cls, passages: Sequence[Passage]) -> tuple[Citation, ...]:
        """The passages as citations [1], [2], ... in their order."""
        return tuple(cls(n=n, **vars(SearchHit.of(p))) for n, p in enumerate(passages, start=1))

    def label(self, language: Language = "en") -> str:
        """`[n] Title, p. 2, Section`: how a citation is named to a reader."""
        where = location(self.page, self.section, language)
        return f"[{self.n}] {self.title}" + (f", {where}" if where else "")


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    language: Language
    found: bool
    citations: tuple[Citation, ...]
    model: str = ""
    task: str = ""
    """SPEC, PROCEDURE, EXPLAIN or TROUBLESHOOT (generation.tasks.route)."""
    model_answer: str = ""
    """What the model generated; differs from `answer` when that was replaced by the extractive
    answer because the sources did not support it."""
    answer_mode: AnswerMode = "extract"
    """Which composition gave `answer`: extract (the manuals' own spans) or generate."""

    def sources_line(self) -> str:
        """The citations on one line in the answer's language (`Quellen: [1] ...; [2] ...`),
        for clients that show only text; '' without citations.

        >>> cite = Citation("d", "HP-200", "hp200.pdf", 2, "", 0.9, "210 bar", n=1)
        >>> Answer("Druck?", "210 bar [1]", "de", True, (cite,)).sources_line()
        'Quellen: [1] HP-200, S. 2'
        """
        if not self.citations:
            return ""
        labels = "; ".join(c.label(self.language) for c in self.citations)
        return f"{SOURCES_LABEL[self.language]}: {labels}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `handbook ask --json`, of the API and of a session's stored turn."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        return cls(**{**data, "citations": tuple(Citation(**c) for c in data["citations"])})
