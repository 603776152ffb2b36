"""The llama-index retriever over a real index of the sample manuals, through llama-index's own
query engine: embedded store, the offline embedder, the packaged chat model; no network."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from app.handbook import Handbook
from handbook.errors import NotIndexed
from handbook.types import Language, RetrievalMode
from tests.conftest import ROOT, make_settings

pytest.importorskip("llama_index.core")

from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers.no_text import NoText
from llama_index.core.schema import MetadataMode

from app.llamaindex import HandbookRetriever

PRESSURE = "What is the maximum working pressure of the HP-200 press?"
TORQUE = "Mit welchem Anzugsdrehmoment werden die Radschrauben angezogen?"


def no_text_engine(retriever: HandbookRetriever) -> RetrieverQueryEngine:
    """A query engine that returns the retrieved nodes (`response_mode="no_text"`). Built from
    its synthesizer: `from_args(..., response_mode="no_text")` drops the LLM it is given and
    falls back to llama-index's default (OpenAI) in llama-index-core 0.14.25."""
    return RetrieverQueryEngine(retriever, response_synthesizer=NoText(llm=retriever.llm()))


def test_query_engine_cites_document_page_and_section(indexed_home: Path) -> None:
    with HandbookRetriever(make_settings(indexed_home), k=5) as retriever:
        engine = no_text_engine(retriever)
        pressure = engine.query(PRESSURE).source_nodes
        torque = engine.query(TORQUE).source_nodes
    assert len(pressure) == 5
    assert [n.score for n in pressure] == sorted((n.score for n in pressure), reverse=True)
    [data] = [n.node.metadata for n in pressure if "| 210 bar |" in n.node.get_content()]
    assert Path(data["path"]).name == "hydraulic_press_hp200.md"
    assert data["section"] == "2 Technical Data" and data["page"] is None
    assert data["title"].startswith("HP-200") and data["language"] == "en"
    assert len(data["doc_id"]) == 16
    # The PDF's fact cites its physical page.
    [wheel] = [n for n in torque[:3] if "120 Nm" in n.node.get_content()]
    assert Path(wheel.node.metadata["path"]).name == "werkstatthandbuch_kompakt-3.pdf"
    assert wheel.node.metadata["page"] == 2
    # What the LLM sees of each passage: its citation, not the file system.
    shown = wheel.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "page: 2" in shown and "path:" not in shown and "doc_id:" not in shown


@pytest.mark.parametrize(
    ("query", "k", "language", "mode"),
    [(PRESSURE, 5, None, "hybrid"), (TORQUE, 3, "de", "sparse"), (PRESSURE, 4, "en", "naive")],
)
def test_nodes_are_handbooks_search_with_its_fused_scores(
    indexed_home: Path, query: str, k: int, language: Language | None, mode: RetrievalMode
) -> None:
    settings = make_settings(indexed_home)
    with HandbookRetriever(settings, k=k, language=language, mode=mode) as retriever:
        nodes = retriever.retrieve(query)

    async def search() -> list[tuple[str, float]]:
        async with Handbook(settings) as hb:
            found = await (await hb.retriever()).search(
                query, k=k, where=hb.search_filter((), language), mode=mode
            )
        return [(p.chunk.id, p.score) for p in found.passages]

    assert [(n.node.node_id, n.score) for n in nodes] == asyncio.run(search())
    assert len(nodes) == k
    if language is not None:
        assert {n.node.metadata["language"] for n in nodes} == {language}


def test_documents_filter_and_async_query(indexed_home: Path) -> None:
    settings = make_settings(indexed_home)
    with HandbookRetriever(settings, docs=["werkstatthandbuch_kompakt-3.pdf"]) as retriever:
        engine = no_text_engine(retriever)
        sync = engine.query(PRESSURE).source_nodes
        later = asyncio.run(engine.aquery(PRESSURE)).source_nodes
    assert sync and {Path(n.node.metadata["path"]).name for n in sync} == {
        "werkstatthandbuch_kompakt-3.pdf"
    }
    assert [(n.node.node_id, n.score) for n in later] == [(n.node.node_id, n.score) for n in sync]


def test_off_topic_query_can_return_nothing(indexed_home: Path) -> None:
    settings = make_settings(indexed_home)
    question = "Who won the football world cup in 1954?"
    with HandbookRetriever(settings, keep_irrelevant=False) as strict:
        assert strict.retrieve(question) == []
        assert strict.retrieve(PRESSURE)
    with HandbookRetriever(settings) as lenient:
        assert lenient.retrieve(question)


def test_an_empty_index_says_so_and_releases_the_folder(isolated: Path) -> None:
    settings = make_settings(isolated)
    with pytest.raises(NotIndexed, match="handbook index"):
        HandbookRetriever(settings)
    with pytest.raises(NotIndexed):  # the data folder was released: no StoreLocked
        HandbookRetriever(settings)


def test_query_engine_answers_with_handbooks_own_chat_model(indexed_home: Path) -> None:
    """The packaged offline model (SmolLM2 through llama.cpp) writes the answer."""
    with HandbookRetriever(make_settings(indexed_home, chat__max_tokens="24"), k=2) as retriever:
        llm = retriever.llm()
        response = RetrieverQueryEngine.from_args(retriever, llm=llm).query(PRESSURE)
        retriever_nodes = retriever.retrieve(PRESSURE)
        streamed = list(llm.stream_complete("Name one safety device of a hydraulic press."))
    assert str(response).strip()
    assert [n.node.metadata["section"] for n in response.source_nodes] == [
        n.node.metadata["section"] for n in retriever_nodes
    ]
    assert len(streamed) > 1
    assert streamed[-1].text == "".join(r.delta or "" for r in streamed)
    assert llm.metadata.model_name.startswith("handbook:llamacpp:")


def test_missing_llama_index_names_the_extra() -> None:
    code = "import sys; sys.modules['llama_index'] = None; import app.llamaindex"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert "pip install 'handbook[llamaindex]'" in done.stderr
