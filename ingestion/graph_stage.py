"""The graph stage: extract entities and relations from indexed documents, one at a time.

A stage of its own because it costs an LLM call per chunk: `handbook index` stays fast and
chunks are searchable at once; `handbook graph build` (or `index --graph`) adds the graph. The
document registry records the stage per document and content hash, so a re-run skips what is
done (no LLM call), and a run stopped by Ctrl-C, a kill or a model that went away resumes at the
first unfinished document.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from handbook.config import Settings
from handbook.errors import BackendUnavailable, LoaderError
from ingestion.chunking import chunk_document
from ingestion.doc_registry import STAGE_VECTORS, DocumentRegistry
from ingestion.graph_yield import Yield
from ingestion.lightrag_adapter import LightRagGraph
from ingestion.loaders import load_document
from ingestion.progress import Progress

STAGE_GRAPH = "graph"


@dataclass
class GraphReport:
    model: str
    built: list[tuple[str, Yield]] = field(default_factory=list)
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    stopped: str = ""  # why the run stopped early (the extraction model went away)
    llm_calls: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> Yield:
        total = Yield()
        for _, found in self.built:
            total.add(found)
        return total


def low_yield_warning(found: Yield, model: str, settings: Settings) -> str:
    """A sentence for the user when a model extracts too little to be worth a graph."""
    threshold = settings.graph.min_entities_per_chunk
    if not found.chunks or found.entities_per_chunk >= threshold:
        return ""
    return (
        f"Extraction found {found.entities_per_chunk:.2f} entities per chunk with {model} "
        f"({found.empty} of {found.chunks} chunks gave nothing usable, {found.malformed} "
        f"malformed rows): the model is too small for extraction. Use gemma3:4b "
        "(extraction.backend: ollama, extraction.model: gemma3:4b-it-q8_0)."
    )


async def build_graph(
    settings: Settings,
    registry: DocumentRegistry,
    graph: LightRagGraph,
    model: str,
    progress: Progress | None = None,
) -> GraphReport:
    progress = progress or Progress()
    report = GraphReport(model)
    started = time.perf_counter()
    records = [
        r
        for r in registry.all()
        if registry.stage_done(r.doc_id, STAGE_VECTORS, r.sha256)  # searchable first
    ]
    todo = [r for r in records if not registry.stage_done(r.doc_id, STAGE_GRAPH, r.sha256)]
    report.unchanged = len(records) - len(todo)
    progress.files(len(todo))
    made_before = graph.calls.made
    tokens_before = graph.calls.prompt_tokens
    for record in todo:
        try:
            document = await asyncio.to_thread(
                load_document,
                Path(record.path),
                record.doc_id,
                record.sha256,
                settings.index,
            )
            chunks = chunk_document(document, settings.chunking)
        except (LoaderError, OSError) as exc:
            report.failed.append((record.path, str(exc)))
            progress.file_done(record.path)
            continue
        progress.chunks_planned(len(chunks))
        try:
            found = await graph.add(record.doc_id, record.path, record.language, chunks)
        except BackendUnavailable as exc:
            # The model is down or timing out: every further document would fail the same way.
            report.failed.append((record.path, str(exc)))
            report.stopped = str(exc)
            break
        registry.finish(
            record.doc_id,
            STAGE_GRAPH,
            record.sha256,
            json.dumps({"model": model, "entities": found.entities, "chunks": found.chunks}),
        )
        report.built.append((record.path, found))
        progress.chunks_done(len(chunks))
        progress.file_done(record.path)
    report.llm_calls = graph.calls.made - made_before
    report.prompt_tokens = graph.calls.prompt_tokens - tokens_before
    report.seconds = time.perf_counter() - started
    return report
