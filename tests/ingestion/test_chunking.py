from __future__ import annotations

import itertools

from handbook.config import ChunkingSettings
from handbook.types import Document, Section
from ingestion.chunking import chunk_document, count_tokens, split_section


def test_chunks_respect_budget_and_overlap() -> None:
    settings = ChunkingSettings(max_tokens=40, overlap_tokens=10)
    sentences = [f"Schritt {i}: Die Schraube Nummer {i} mit 25 Nm anziehen." for i in range(30)]
    chunks = split_section(" ".join(sentences), settings)
    assert len(chunks) > 3
    assert all(count_tokens(c) <= 40 for c in chunks)
    # consecutive chunks share their boundary sentence (overlap)
    for before, after in itertools.pairwise(chunks):
        tail = before[-10:]
        assert tail in after[: len(after) // 2], (before, after)
    joined = " ".join(" ".join(c.split()) for c in chunks)
    assert all(s in joined for s in sentences), "no text is lost"


def test_gigantic_line_without_spaces_is_split() -> None:
    settings = ChunkingSettings(max_tokens=50, overlap_tokens=5)
    chunks = split_section("x" * 5000 + ".y" * 400, settings)
    assert all(count_tokens(c) <= 50 for c in chunks)


def test_chunks_never_cross_sections_and_ids_are_content_hashes() -> None:
    document = Document(
        doc_id="d1",
        path="/m.pdf",
        title="M",
        format="pdf",
        sha256="x",
        sections=(
            Section("Radschrauben 120 Nm.", page=1, heading_path=("Drehmomente",)),
            Section("Ölwechsel alle 15 000 km.", page=2, heading_path=("Wartung",)),
        ),
        language="de",
    )
    settings = ChunkingSettings()
    first = chunk_document(document, settings)
    again = chunk_document(document, settings)
    assert [c.page for c in first] == [1, 2]
    assert [c.heading_path for c in first] == [("Drehmomente",), ("Wartung",)]
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == 2
