"""llama-index's readers and node parsers against Handbook's loaders and chunker.

Every candidate turns the same files into chunks; everything after that is Handbook's and the
same for all: the offline embedder, the lexical vectors, a fresh embedded store per candidate,
and hybrid search (k = 5, fused as configured). So only reading and chunking differ.

Where a chunk "is" is decided from its text, not from the candidate's metadata (llama-index's
nodes carry no heading path): Handbook's loader cuts each file into sections (a PDF page, the
text under one heading), and a chunk lies in every section with which it shares enough word
5-grams. Measures, over the answerable questions:
- hit@5: a top-5 passage lies in the question's section (or page);
- hit@6k: the same within the first 6,000 characters of retrieved text, passages in rank order
  (at most 30, the retriever's candidates), so that big chunks gain nothing from their size;
- page: questions with a page whose top-5 passage lies on that page *and* cites it;
- index time: reading + chunking, and embedding + storing.

    python -m bench.llamaindex [--corpus devset|samples] [--candidates NAME ...]

`devset`: the development set's real manuals (eval/devset.py; HTML and one PDF),
`samples`: samples/manuals (Markdown, HTML, text, PDF) with eval/questions/retrieval.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.devset import default_cache, fetch
from eval.retrieval import Question, load_questions
from eval.scoring import key_fact_recall
from handbook.config import ChunkingSettings, Settings, load_settings
from handbook.language import detect_language
from handbook.protocols import Embedder
from handbook.types import Chunk, Document, Language
from ingestion.base import EMBEDDERS
from ingestion.chunking import chunk_document, chunk_language, count_tokens
from ingestion.loaders import load_document
from ingestion.pipeline import EMBED_BATCH, doc_id_for, file_sha256, store_chunks
from retrieval.base import STORES
from retrieval.search import Retriever

ROOT = Path(__file__).resolve().parent.parent
K = 5
BUDGET = 6_000
POOL = 30  # the retriever's candidates per list: asking for more would change the fusion
SHINGLE = 5
MIN_SHARED = 8


# ---------------------------------------------------------------- where a chunk lies


def _shingles(text: str) -> set[int]:
    words = re.findall(r"\w+", text.lower())
    return {hash(tuple(words[i : i + SHINGLE])) for i in range(len(words) - SHINGLE + 1)}


@dataclass
class Locator:
    """Handbook's sections of every file, found again from a chunk's words."""

    # file name -> [(page, heading path, shingles)]
    sections: dict[str, list[tuple[int | None, tuple[str, ...], set[int]]]] = field(
        default_factory=dict
    )
    index: dict[str, dict[int, list[int]]] = field(default_factory=dict)

    def add(self, document: Document) -> None:
        name = Path(document.path).name
        rows = self.sections.setdefault(name, [])
        index = self.index.setdefault(name, defaultdict(list))
        for section in document.sections:
            shingles = _shingles(section.text)
            for s in shingles:
                index[s].append(len(rows))
            rows.append((section.page, (document.title, *section.heading_path), shingles))

    def locate(self, name: str, text: str) -> tuple[set[int], set[str]]:
        """(pages, headings) of the sections the text lies in."""
        pages: set[int] = set()
        headings: set[str] = set()
        for page, path in self.rows(name, text):
            if page is not None:
                pages.add(page)
            headings.update(path)
        return pages, headings

    def rows(self, name: str, text: str) -> list[tuple[int | None, tuple[str, ...]]]:
        """(page, heading path) of each section the text lies in."""
        shingles = _shingles(text)
        if not shingles or name not in self.sections:
            return []
        shared: dict[int, int] = defaultdict(int)
        index = self.index[name]
        for s in shingles:
            for row in set(index.get(s, ())):
                shared[row] += 1
        found = []
        for row, count in shared.items():
            page, path, own = self.sections[name][row]
            if count >= max(1, min(MIN_SHARED, math.ceil(len(shingles) / 2), len(own))):
                found.append((page, path))
        return found


def hit(question: Question, chunk: Chunk, text: str, locator: Locator) -> bool:
    name = Path(chunk.path).name
    if question.doc is None or name != question.doc:
        return False
    pages, headings = locator.locate(name, text)
    if question.page is not None:
        return question.page in pages
    if question.section:
        return question.section in headings
    return bool(pages or headings)


# ---------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Piece:
    """A candidate's chunk before Handbook's indexing: file, text, what it cites."""

    path: Path
    text: str
    title: str
    page: int | None = None
    heading_path: tuple[str, ...] = ()


Loaded = dict[Path, Document]
Build = Callable[[list[Path], Loaded, int], list[Piece]]


def handbook_chunker(files: list[Path], docs: Loaded, size: int) -> list[Piece]:
    settings = ChunkingSettings()
    return [
        Piece(Path(c.path), c.text, c.title, c.page, c.heading_path)
        for f in files
        for c in chunk_document(docs[f], settings)
    ]


def _li_documents(files: list[Path]) -> list[Any]:
    """llama-index's SimpleDirectoryReader as installed (llama-index-core only)."""
    from llama_index.core import SimpleDirectoryReader

    return list(
        SimpleDirectoryReader(input_files=[str(f) for f in files], exclude_hidden=False).load_data()
    )


def _pieces(nodes: Sequence[Any], titles: dict[str, str]) -> list[Piece]:
    pieces = []
    for node in nodes:
        path = Path(node.metadata["file_path"])
        header = str(node.metadata.get("header_path", "")).strip("/")
        pieces.append(
            Piece(
                path,
                node.get_content(),
                titles.get(str(path), path.stem),
                node.metadata.get("page"),
                tuple(h for h in header.split("/") if h),
            )
        )
    return [p for p in pieces if p.text.strip()]


def li_reader_sentence(files: list[Path], docs: Loaded, size: int) -> list[Piece]:
    from llama_index.core.node_parser import SentenceSplitter

    return _pieces(SentenceSplitter().get_nodes_from_documents(_li_documents(files)), {})


def li_reader_structured(files: list[Path], docs: Loaded, size: int) -> list[Piece]:
    """HTMLNodeParser for HTML, MarkdownNodeParser for Markdown, SentenceSplitter otherwise."""
    from llama_index.core.node_parser import (
        HTMLNodeParser,
        MarkdownNodeParser,
        SentenceSplitter,
    )

    parsers = {".html": HTMLNodeParser(), ".htm": HTMLNodeParser(), ".md": MarkdownNodeParser()}
    nodes: list[Any] = []
    for document in _li_documents(files):
        suffix = Path(document.metadata["file_path"]).suffix.lower()
        parser = parsers.get(suffix, SentenceSplitter())
        nodes += parser.get_nodes_from_documents([document])
    return _pieces(nodes, {})


def _as_li_documents(files: list[Path], docs: Loaded) -> list[Any]:
    """Handbook's extracted text as llama-index Documents: one per PDF page, one per other
    file rendered as Markdown (each section's heading as a `#` line of its depth)."""
    from llama_index.core import Document as LiDocument

    out = []
    for f in files:
        doc = docs[f]
        meta = {"file_path": str(f)}
        if doc.format == "pdf":
            out += [LiDocument(text=s.text, metadata={**meta, "page": s.page})
                    for s in doc.sections]  # fmt: skip
            continue
        parts: list[str] = []
        shown: tuple[str, ...] = ()
        for s in doc.sections:
            path = s.heading_path
            for depth in range(len(path)):
                if path[: depth + 1] != shown[: depth + 1]:
                    parts.append(f"{'#' * (depth + 1)} {path[depth]}")
            shown = path
            # A body line starting with "#" (a root prompt) is not a heading.
            parts.append(re.sub(r"(?m)^#", " #", s.text))
        out.append(LiDocument(text="\n\n".join(parts), metadata=meta))
    for d in out:
        d.excluded_embed_metadata_keys = list(d.metadata)
        d.excluded_llm_metadata_keys = list(d.metadata)
    return out


def _titles(docs: Loaded) -> dict[str, str]:
    return {str(f): d.title for f, d in docs.items()}


def hb_text_sentence_default(files: list[Path], docs: Loaded, size: int) -> list[Piece]:
    from llama_index.core.node_parser import SentenceSplitter

    nodes = SentenceSplitter().get_nodes_from_documents(_as_li_documents(files, docs))
    return _pieces(nodes, _titles(docs))


def hb_text_sentence_same(files: list[Path], docs: Loaded, size: int) -> list[Piece]:
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(chunk_size=size, chunk_overlap=size // 8)
    return _pieces(splitter.get_nodes_from_documents(_as_li_documents(files, docs)), _titles(docs))


def hb_text_markdown(files: list[Path], docs: Loaded, size: int) -> list[Piece]:
    from llama_index.core.node_parser import MarkdownNodeParser

    nodes = MarkdownNodeParser().get_nodes_from_documents(_as_li_documents(files, docs))
    return _pieces(nodes, _titles(docs))


def hb_text_markdown_same(files: list[Path], docs: Loaded, size: int) -> list[Piece]:
    from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter

    sections = MarkdownNodeParser().get_nodes_from_documents(_as_li_documents(files, docs))
    splitter = SentenceSplitter(chunk_size=size, chunk_overlap=size // 8)
    return _pieces(splitter(sections), _titles(docs))


CANDIDATES: dict[str, tuple[str, Build, bool]] = {
    # name: (label, build, reads with Handbook's loaders)
    "handbook": ("Handbook loaders + chunker (256 tokens, overlap 32) [baseline]",
                 handbook_chunker, True),
    "li-reader-sentence": ("llama-index SimpleDirectoryReader + SentenceSplitter (1024/200)",
                           li_reader_sentence, False),
    "li-reader-structured": ("llama-index SimpleDirectoryReader + HTMLNodeParser / "
                             "MarkdownNodeParser (defaults)", li_reader_structured, False),
    "hb-text-sentence": ("Handbook's extracted text + SentenceSplitter (1024/200)",
                         hb_text_sentence_default, True),
    "hb-text-sentence-same": ("Handbook's extracted text + SentenceSplitter (same size)",
                              hb_text_sentence_same, True),
    "hb-text-markdown": ("Handbook's extracted text as Markdown + MarkdownNodeParser "
                         "(whole sections)", hb_text_markdown, True),
    "hb-text-markdown-same": ("Handbook's extracted text as Markdown + MarkdownNodeParser + "
                              "SentenceSplitter (same size)", hb_text_markdown_same, True),
}  # fmt: skip


def same_size(pieces: Sequence[Piece]) -> int:
    """Handbook's chunk budget (256 of its word/punctuation tokens) in llama-index's tokens
    (tiktoken cl100k, its default), from the ratio of the two counts over Handbook's chunks."""
    from llama_index.core.utils import get_tokenizer

    tokenize = get_tokenizer()
    ratio = sum(len(tokenize(p.text)) for p in pieces) / sum(count_tokens(p.text) for p in pieces)
    return round(ChunkingSettings().max_tokens * ratio)


# ---------------------------------------------------------------- indexing and measuring


@dataclass
class Row:
    name: str
    chunks: int
    mean_chars: float
    read_chunk_s: float
    embed_store_s: float
    hits: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    budget_hits: list[bool] = field(default_factory=list)
    page_right: list[bool] = field(default_factory=list)
    facts: list[float] = field(default_factory=list)
    budget_facts: list[float] = field(default_factory=list)
    spread: float = 0.0


def to_chunks(pieces: Sequence[Piece], languages: dict[Path, Language]) -> list[Chunk]:
    """Chunks as Handbook's chunker makes them from a piece (same id, language rule)."""
    chunks: dict[str, Chunk] = {}
    for ordinal, p in enumerate(pieces):
        language = chunk_language(p.text, languages.get(p.path) or detect_language(p.text))
        chunk = Chunk(
            doc_id_for(p.path), ordinal, p.text, p.title, str(p.path), p.page, p.heading_path,
            language,
        )  # fmt: skip
        chunks.setdefault(chunk.id, chunk)
    return list(chunks.values())


async def measure(
    name: str,
    chunks: list[Chunk],
    read_chunk_s: float,
    embedder: Embedder,
    settings: Settings,
    questions: list[Question],
    locator: Locator,
) -> Row:
    with tempfile.TemporaryDirectory() as folder:
        store = STORES.create(settings.store.backend, settings.store, Path(folder) / "store")
        await store.open(embedder.dim)
        started = time.perf_counter()
        for i in range(0, len(chunks), EMBED_BATCH):
            await store_chunks(embedder, store, chunks[i : i + EMBED_BATCH])
        row = Row(name, len(chunks), statistics.mean(len(c.text) for c in chunks),
                  read_chunk_s, time.perf_counter() - started)  # fmt: skip
        retriever = Retriever(embedder, store, settings.retrieval)
        try:
            for q in (q for q in questions if q.answerable):
                found = (await retriever.search(q.question, k=POOL)).passages
                top = [p.chunk for p in found[:K]]
                suffix = Path(q.doc or "").suffix.lower()
                row.hits[suffix].append(any(hit(q, c, c.text, locator) for c in top))
                used, within, shown = 0, False, []
                for p in found:
                    text = p.chunk.text[: BUDGET - used]
                    within = within or hit(q, p.chunk, text, locator)
                    shown.append((p.chunk, text))
                    used += len(text)
                    if used >= BUDGET:
                        break
                row.budget_hits.append(within)
                row.facts.append(fact_recall(q, [(c, c.text) for c in top]))
                row.budget_facts.append(fact_recall(q, shown))
                if q.page is not None:
                    row.page_right.append(
                        any(hit(q, c, c.text, locator) and c.page == q.page for c in top)
                    )
        finally:
            await store.close()
    return row


def fact_recall(question: Question, shown: Sequence[tuple[Chunk, str]]) -> float:
    """Share of the question's key facts written in the shown text of its own document (a
    measure blind to sections: the answer's words must be retrieved)."""
    own = "\n".join(text for chunk, text in shown if Path(chunk.path).name == question.doc)
    return key_fact_recall(own, question.key_facts)


def share(values: Sequence[float]) -> str:
    return f"{sum(values) / len(values):.2f}" if values else "-"


def print_row(row: Row, label: str) -> None:
    every = [h for hits in row.hits.values() for h in hits]
    by_format = " · ".join(f"{s.lstrip('.')} {share(h)}" for s, h in sorted(row.hits.items()))
    pages = f"{sum(row.page_right)}/{len(row.page_right)}" if row.page_right else "-"
    print(
        f"| {label} | {row.chunks} | {row.mean_chars:.0f} | {row.spread:.2f} | "
        f"**{share(every)}** ({by_format}) | {share(row.budget_hits)} | {pages} | "
        f"{share(row.facts)} | {share(row.budget_facts)} | "
        f"{row.read_chunk_s:.1f} | {row.embed_store_s:.1f} |",
        flush=True,
    )


def corpus(name: str) -> tuple[list[Path], list[Question]]:
    if name == "devset":
        folder = fetch(default_cache())
        questions = load_questions(ROOT / "eval" / "questions" / "devset.jsonl")
    else:
        folder = ROOT / "samples" / "manuals"
        questions = load_questions(ROOT / "eval" / "questions" / "retrieval.jsonl")
    return sorted(p for p in folder.iterdir() if p.is_file()), questions


async def run(corpus_name: str, names: list[str]) -> None:
    files, questions = corpus(corpus_name)
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(environ={"HANDBOOK_HOME": home})
    embedder = EMBEDDERS.create(settings.embedder.backend, settings.embedder)
    started = time.perf_counter()
    docs = {f: load_document(f, doc_id_for(f), file_sha256(f), settings.index) for f in files}
    read_s = time.perf_counter() - started
    locator = Locator()
    for doc in docs.values():
        locator.add(doc)
    languages = {f: d.language for f, d in docs.items()}
    size = same_size(handbook_chunker(files, docs, 0))
    await embedder.embed_documents(["warm-up"])
    print(f"{corpus_name}: {len(files)} files, {sum(q.answerable for q in questions)} answerable "
          f"questions; Handbook's loaders read them in {read_s:.1f} s; same size = {size} "
          f"llama-index tokens (overlap {size // 8}); embedder {embedder.name}\n")  # fmt: skip
    print("| candidate | chunks | mean chars | sections per chunk | hit@5 (by format) "
          "| hit@6k chars | page right | key facts in top 5 | key facts in 6k chars "
          "| read + chunk s | embed + store s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        label, build, reads_with_handbook = CANDIDATES[name]
        started = time.perf_counter()
        pieces = build(files, docs, size)
        elapsed = time.perf_counter() - started + (read_s if reads_with_handbook else 0.0)
        chunks = to_chunks(pieces, languages)
        row = await measure(name, chunks, elapsed, embedder, settings, questions, locator)
        row.spread = statistics.mean(len(locator.rows(Path(c.path).name, c.text)) for c in chunks)
        if name == "handbook":
            agree = sum(
                (c.page in locator.locate(Path(c.path).name, c.text)[0])
                if c.page is not None
                else set(c.heading_path) <= locator.locate(Path(c.path).name, c.text)[1]
                for c in chunks
            )
            print(f"(locator check: Handbook's own chunks found in the section they cite: "
                  f"{agree}/{len(chunks)})")  # fmt: skip
        print_row(row, label)


def main() -> None:
    # llama-index fetches NLTK data and tiktoken encodings when it finds none: count every
    # attempt to connect anywhere (this machine has no internet but PyPI).
    connects: list[str] = []

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if event in ("socket.connect", "socket.getaddrinfo"):
            connects.append(repr(args[1] if event == "socket.connect" else args[0]))

    sys.addaudithook(audit)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", choices=["devset", "samples"], default="devset")
    parser.add_argument("--candidates", nargs="+", choices=list(CANDIDATES),
                        default=list(CANDIDATES))  # fmt: skip
    args = parser.parse_args()
    asyncio.run(run(args.corpus, args.candidates))
    print(f"\nnetwork connections attempted: {len(connects)} {sorted(set(connects))}")


if __name__ == "__main__":
    main()
