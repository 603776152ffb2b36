"""The graph stage through LightRAG: scripted extraction answers in LightRAG's own output format
for graph building, merging, deletion and resume; the real packaged model for the whole path."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.handbook import Handbook
from handbook.config import Settings
from handbook.types import Message
from ingestion.graph_stage import GraphReport
from tests.conftest import make_settings

DE = """# Hydraulik

Die Pumpe P1 speist das Druckbegrenzungsventil DV-2.

# Bedienung

Der Fußschalter startet die Pumpe P1.
"""
EN = """# Valves

The pressure relief valve DV-2 opens at 210 bar.
"""
# What a capable extraction model answers, in LightRAG 1.5.7's row format.
ANSWERS = {
    "Pumpe P1 speist": (
        "entity<|#|>Pumpe P1<|#|>equipment<|#|>Hydraulikpumpe der Presse.\n"
        "entity<|#|>Druckbegrenzungsventil DV-2<|#|>equipment<|#|>Begrenzt den Druck.\n"
        "relation<|#|>Pumpe P1<|#|>Druckbegrenzungsventil DV-2<|#|>speist<|#|>"
        "Die Pumpe P1 speist das Ventil DV-2.\n<|COMPLETE|>"
    ),
    "Fußschalter": (
        "entity<|#|>Fußschalter<|#|>equipment<|#|>Startet die Pumpe.\n"
        "entity<|#|>Pumpe P1<|#|>equipment<|#|>Wird vom Fußschalter gestartet.\n"
        "relation<|#|>Fußschalter<|#|>Pumpe P1<|#|>startet<|#|>Der Fußschalter startet P1.\n"
        "entity<|#|>Halbe Zeile<|#|>nur drei Felder\n"  # malformed: LightRAG drops it
        "<|COMPLETE|>"
    ),
    "relief valve": (
        "entity<|#|>Druckbegrenzungsventil DV-2<|#|>equipment<|#|>Opens at 210 bar.\n<|COMPLETE|>"
    ),
}


def extraction_answer(messages: Sequence[Message]) -> str:
    prompt = messages[-1].content
    text = re.search(r"---Input Text---\n```\n(.*?)\n```", prompt, re.DOTALL)
    if text is None:  # a description summary, when an entity's descriptions are merged
        return "A component of the press."
    for key, answer in ANSWERS.items():
        if key in text.group(1):
            return answer
    return "<|COMPLETE|>"


@pytest.fixture
def manuals(tmp_path: Path) -> Path:
    folder = tmp_path / "manuals"
    folder.mkdir()
    (folder / "hydraulik.md").write_text(DE, encoding="utf-8")
    (folder / "valves.md").write_text(EN, encoding="utf-8")
    return folder


def build(home: Path, folder: Path | None = None, **env: str) -> GraphReport:
    async def work() -> GraphReport:
        settings = make_settings(home, EXTRACTION__BACKEND="scripted", **env)
        async with Handbook(settings) as hb:
            if folder is not None:
                await (await hb.indexer()).index(folder)
            return await hb.build_graph()

    return asyncio.run(work())


def graph_state(home: Path) -> dict[str, list[str]]:
    """Each entity with the documents (file names) that support it."""

    async def work() -> dict[str, list[str]]:
        async with Handbook(make_settings(home, EXTRACTION__BACKEND="scripted")) as hb:
            paths = {r.doc_id: Path(r.path).name for r in hb.registry.all()}
            return await (await hb.graph()).entity_documents(paths)

    return asyncio.run(work())


def test_graph_builds_merges_across_documents_and_reports_yield(
    isolated: Path, manuals: Path, scripted
) -> None:  # type: ignore[no-untyped-def]
    scripted.respond = extraction_answer
    report = build(isolated, manuals)
    assert not report.failed and report.model == "scripted:smollm2"
    by_file = {Path(path).name: found for path, found in report.built}
    assert (by_file["hydraulik.md"].chunks, by_file["hydraulik.md"].entities) == (2, 4)
    assert by_file["hydraulik.md"].relations == 2 and by_file["hydraulik.md"].malformed == 1
    assert (by_file["valves.md"].entities, by_file["valves.md"].empty) == (1, 0)
    state = graph_state(isolated)
    assert set(state) == {"Pumpe P1", "Druckbegrenzungsventil DV-2", "Fußschalter"}
    assert state["Druckbegrenzungsventil DV-2"] == ["hydraulik.md", "valves.md"], "merged"
    # Extraction follows each document's language.
    systems = [c[0].content for c in scripted.calls if "Knowledge Graph" in c[0].content]
    prompts = [c[-1].content for c in scripted.calls if "---Input Text---" in c[-1].content]
    assert any("German" in p for p in prompts) and any("English" in p for p in prompts)
    assert systems, "LightRAG's own extraction prompt reached our model"


def test_graph_show_lists_relations_with_their_sources(
    isolated: Path, manuals: Path, scripted
) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    scripted.respond = extraction_answer
    build(isolated, manuals)

    def show(name: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cli", "graph", "show", name, "--json"]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    view = json.loads(show("pumpe p1").stdout)  # any case
    assert view["name"] == "Pumpe P1"
    others = {r["other"]: r for r in view["relations"]}
    assert set(others) == {"Druckbegrenzungsventil DV-2", "Fußschalter"}
    assert "startet" in others["Fußschalter"]["keywords"]
    assert len(others["Fußschalter"]["sources"]) == 1
    missing = show("Kühlmittelpumpe")
    assert missing.returncode == 1 and "graph build" in missing.stderr


def test_rerun_of_an_unchanged_corpus_makes_no_llm_call(
    isolated: Path, manuals: Path, scripted
) -> None:  # type: ignore[no-untyped-def]
    scripted.respond = extraction_answer
    first = build(isolated, manuals)
    calls = len(scripted.calls)
    again = build(isolated, manuals)
    assert first.llm_calls >= 3
    assert (again.llm_calls, again.unchanged, again.built) == (0, 2, [])
    assert len(scripted.calls) == calls


def test_delete_keeps_what_other_documents_support(isolated: Path, manuals: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    scripted.respond = extraction_answer
    build(isolated, manuals)

    deleted = subprocess.run(
        [sys.executable, "-m", "cli", "docs", "delete", "hydraulik.md"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert deleted.returncode == 0, deleted.stderr
    assert graph_state(isolated) == {"Druckbegrenzungsventil DV-2": ["valves.md"]}
    stats = subprocess.run(
        [sys.executable, "-m", "cli", "graph", "stats", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    payload = json.loads(stats.stdout)
    assert payload["entities"] == 1
    assert [Path(d["path"]).name for d in payload["documents"]] == ["valves.md"]


def test_model_going_away_mid_run_resumes_where_it_stopped(
    isolated: Path, manuals: Path, scripted
) -> None:  # type: ignore[no-untyped-def]
    scripted.respond = extraction_answer
    scripted.fail_calls_after = 2  # hydraulik.md (2 chunks) is extracted, then Ollama stops
    first = build(isolated, manuals)
    assert [Path(p).name for p, _ in first.built] == ["hydraulik.md"]
    assert first.stopped and "not reachable" in first.failed[0][1]
    scripted.fail_calls_after = None
    second = build(isolated)
    assert [Path(p).name for p, _ in second.built] == ["valves.md"]
    assert second.unchanged == 1 and second.llm_calls == 1, "only the missing chunk"
    assert graph_state(isolated)["Druckbegrenzungsventil DV-2"] == ["hydraulik.md", "valves.md"]


@pytest.mark.slow
def test_real_packaged_model_yield_is_reported_honestly(tmp_path: Path) -> None:
    """SmolLM2-135M through LightRAG's real prompt: whatever it finds is counted and, when it
    is too little, `index --graph` says so and names a model that can extract."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "pump.md").write_text("# Pump\n\nThe pump P1 feeds the valve V2.\n")
    env = {**os.environ, "HANDBOOK_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-m", "cli", "index", str(folder), "--graph", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    graph = json.loads(out.stdout)["graph"]
    document = graph["documents"][0]
    assert graph["llm_calls"] == 1 and document["chunks"] == 1
    rows = document["entities"] + document["relations"] + document["malformed"]
    assert rows > 0 or document["empty"] == 1, "every reply is accounted for"
    # The 135M model finds next to nothing (README: ~0 entities per chunk): it must be told.
    assert graph["entities_per_chunk"] < 0.5, graph
    assert "too small for extraction" in graph["warning"] and "gemma3:4b" in graph["warning"]


def test_a_model_that_extracts_enough_gets_no_warning(settings: Settings) -> None:
    """The other side of the yield warning, at the threshold and above it."""
    from ingestion.graph_stage import low_yield_warning
    from ingestion.graph_yield import Yield

    enough = settings.graph.min_entities_per_chunk
    assert low_yield_warning(Yield(chunks=4, entities=int(4 * enough)), "m", settings) == ""
    assert low_yield_warning(Yield(chunks=4, entities=40), "m", settings) == ""
    assert "too small" in low_yield_warning(Yield(chunks=4, entities=0, empty=4), "m", settings)


def _two_page_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in ("Die Pumpe P1 speist das Druckbegrenzungsventil DV-2.",
                 "Der Fußschalter startet die Pumpe P1."):  # fmt: skip
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    pdf.output(str(path))
    return path


def test_graph_modes_retrieve_through_the_graph_and_cite_document_and_page(
    isolated: Path, tmp_path: Path, scripted
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "pdfs"
    folder.mkdir()
    _two_page_pdf(folder / "presse.pdf")
    (folder / "valves.md").write_text(EN, encoding="utf-8")
    scripted.respond = extraction_answer
    build(isolated, folder)
    settings = make_settings(isolated, EXTRACTION__BACKEND="scripted", CHAT__BACKEND="scripted")

    async def work() -> tuple[dict[str, object], object]:
        async with Handbook(settings) as hb:
            retriever = await hb.retriever()
            results = {
                mode: await retriever.search("Was startet die Pumpe P1?", k=2, mode=mode)
                for mode in ("local", "global", "mix")
            }
            scripted.calls.clear()
            scripted.respond = lambda messages: "Der Fußschalter startet die Pumpe P1 [1]."
            answer = await (await hb.answerer()).ask("Was startet die Pumpe P1?", mode="mix")
            return results, answer

    results, answer = asyncio.run(work())
    for mode, result in results.items():
        pages = {(Path(p.chunk.path).name, p.chunk.page) for p in result.passages}  # type: ignore[attr-defined]
        assert ("presse.pdf", 2) in pages, mode
        facts = {f.name: f for f in result.facts}  # type: ignore[attr-defined]
        assert facts, f"{mode}: the graph contributed facts"
        for fact in facts.values():  # every fact cites passages that hold its source chunk
            for n in fact.sources:
                assert 1 <= n <= len(result.passages)  # type: ignore[attr-defined]
    local = {f.name for f in results["local"].facts}  # type: ignore[attr-defined]
    assert {"Fußschalter", "Pumpe P1"} <= local, "local mode: entities"
    relations = {f.name for f in results["global"].facts}  # type: ignore[attr-defined]
    assert "Fußschalter — Pumpe P1" in relations or "Pumpe P1 — Fußschalter" in relations
    # The prompt carries the graph's facts inside the delimited sources, citing numbers.
    prompt = scripted.calls[-1][-1].content
    assert "Fakten aus dem Wissensgraphen" in prompt
    fact_lines = [line for line in prompt.splitlines() if line.startswith("- ")]
    assert fact_lines and all(re.search(r"\[\d+\]$", line) for line in fact_lines)
    assert "<SEP>" not in prompt
    assert answer.found and answer.citations[0].page is not None  # type: ignore[attr-defined]
    assert Path(answer.citations[0].path).name == "presse.pdf"  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["qdrant-edge", "qdrant-local"])
def test_graph_vectors_live_in_handbooks_qdrant(
    isolated: Path, manuals: Path, scripted, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    scripted.respond = extraction_answer
    build(isolated, manuals, STORE__BACKEND=backend)
    graph_files = {p.name for p in (isolated / "graph").rglob("*")}
    assert not any(name.startswith("vdb_") for name in graph_files), "no NanoVectorDB files"

    async def counts() -> tuple[int, int, int, int]:
        settings = make_settings(isolated, EXTRACTION__BACKEND="scripted", STORE__BACKEND=backend)
        async with Handbook(settings) as hb:
            store = await hb.store()
            nodes, edges = await (await hb.graph()).counts()
            embedder = hb.embedder()
            query = await embedder.embed_query("Pumpe")
            points = [
                len(await (await store.collection(name, embedder.dim)).search(query, 10, -1.0))
                for name in ("graph_entities", "graph_relationships")
            ]
            return nodes, edges, points[0], points[1]

    nodes, edges, entity_points, relation_points = asyncio.run(counts())
    assert (entity_points, relation_points) == (nodes, edges) == (3, 2)

    monkeypatch.setenv("HANDBOOK_STORE__BACKEND", backend)
    reset = subprocess.run(
        [sys.executable, "-m", "cli", "reset", "--yes"], capture_output=True, text=True
    )
    assert reset.returncode == 0, reset.stderr
    left = {p.name for p in (isolated / "graph").iterdir()}
    assert left <= {"replies.sqlite", "replies.sqlite-wal", "replies.sqlite-shm"}, left
    assert asyncio.run(counts()) == (0, 0, 0, 0), "graph collections dropped with the index"
    rebuilt = build(isolated, manuals, STORE__BACKEND=backend)
    assert rebuilt.llm_calls == 0 and len(rebuilt.built) == 2, "replies kept: no LLM call"
