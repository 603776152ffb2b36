"""LightRAG (`lightrag-hku`) behind one adapter: this module and the storage plugin it registers
(`lightrag_storage`) are the only ones that import `lightrag`.

Handbook drives LightRAG with its own parts: our chunks (ids, pages), our extraction model (a
`ChatModel`), our embedder, and a tokenizer that needs no network (LightRAG would fetch a
tiktoken file at construction). Every parameter is passed explicitly; storages open and close
in an async context manager. Modules that pip-install at import (`lightrag.llm.*`, most of
`lightrag.kg.*`) are never imported.

LightRAG's entity, relation and chunk vectors live in Handbook's Qdrant (`lightrag_storage`).
Each extraction reply is counted (`graph_yield.count_rows`: LightRAG drops malformed rows
silently) and cached with the yields in SQLite (`graph_replies.ReplyCache`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from handbook.backends import missing_extra
from handbook.config import GraphSettings
from handbook.errors import BackendUnavailable
from handbook.packaged import llama3_tokenizer_file
from handbook.protocols import ChatModel, Embedder, VectorStore
from handbook.types import Chunk, GraphContext, GraphFact, GraphMode, Message, Role
from ingestion.graph_replies import REPLIES, ReplyCache
from ingestion.graph_yield import Yield, count_rows
from ingestion.lightrag_shared import STORAGE_NAME, SharedStore, chunk_id_of, chunk_key

LANGUAGES = {"de": "German", "en": "English"}


@dataclass(frozen=True)
class RelationView:
    other: str
    keywords: str
    description: str
    sources: tuple[tuple[str, int | None], ...]  # (document id, page)


@dataclass(frozen=True)
class EntityView:
    name: str
    type: str
    description: str
    sources: tuple[tuple[str, int | None], ...]
    relations: tuple[RelationView, ...]


def _text(row: dict[str, Any]) -> str:
    """A description; LightRAG joins those of merged mentions with `<SEP>`."""
    return "; ".join(part.strip() for part in _keys(str(row.get("description", ""))))


def _keys(source_id: str) -> tuple[str, ...]:
    return tuple(key for key in source_id.split("<SEP>") if key)


def _no_errors(record: logging.LogRecord) -> bool:
    return record.levelno < logging.ERROR


def reset_graph(folder: Path) -> None:
    """Delete the graph's storages and yields; keep the extraction replies (a rebuild then
    makes no LLM call). Its vectors go with the store's collections."""
    import shutil

    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name.startswith(REPLIES):
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    cache = ReplyCache(folder / REPLIES)
    cache.forget_all()
    cache.close()


@dataclass
class Calls:
    """LLM calls made and answered from the cache, for reports and the benchmark."""

    made: int = 0
    cached: int = 0
    prompt_tokens: int = 0


class LightRagGraph:
    """`async with LightRagGraph(...) as graph: await graph.add(doc_id, path, language, chunks)`"""

    def __init__(
        self,
        settings: GraphSettings,
        model: ChatModel,
        embedder: Embedder,
        store: VectorStore,
        folder: Path,
        on_call: Callable[[], None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._model = model
        self._embedder = embedder
        self._store = store
        self._folder = folder
        self._on_call = on_call
        self._tokens = _Llama3Tokens(str(llama3_tokenizer_file()))
        self._cache = ReplyCache(folder / REPLIES)
        self._rag: Any = None
        self._chunks: list[Chunk] = []
        self._failure: BackendUnavailable | None = None
        self.calls = Calls()

    async def __aenter__(self) -> LightRagGraph:
        try:
            from lightrag import LightRAG
            from lightrag.kg import STORAGE_IMPLEMENTATIONS, STORAGES
            from lightrag.utils import EmbeddingFunc, Tokenizer
        except ImportError:
            raise missing_extra("lightrag-hku", "graph") from None
        from ingestion import lightrag_storage

        vector_storages = STORAGE_IMPLEMENTATIONS["VECTOR_STORAGE"]["implementations"]
        if STORAGE_NAME not in vector_storages:
            vector_storages.append(STORAGE_NAME)
        STORAGES[STORAGE_NAME] = lightrag_storage.__name__
        self._folder.mkdir(parents=True, exist_ok=True)
        for name in ("lightrag", "nano-vectordb"):  # their INFO lines would bury our output
            logging.getLogger(name).setLevel(logging.WARNING)
        # A failed extraction is reported by `add` with our own message; LightRAG's ERROR
        # lines would repeat it, wrapped in task ids and followed by tracebacks.
        logging.getLogger("lightrag").addFilter(_no_errors)
        # LightRAG deep-copies its configuration on every call; a bound method would drag this
        # object (SQLite connection, locks) along. Plain functions are copied by reference.
        graph = self

        async def llm(prompt: str, system_prompt: str | None = None, **kwargs: Any) -> str:
            return await graph._llm(prompt, system_prompt, **kwargs)

        async def embed(texts: Sequence[str], context: str = "document", **kwargs: Any) -> Any:
            return await graph._embed(texts, context)

        def chunks(tokenizer: Any, content: str, *args: Any) -> list[dict[str, Any]]:
            return graph._our_chunks(tokenizer, content)

        self._rag = LightRAG(
            working_dir=str(self._folder),
            # LightRAG keeps storages in process-wide tables keyed by workspace, not folder:
            # one workspace per data folder keeps two indexes in one process apart.
            workspace="hb" + hashlib.sha256(str(self._folder.resolve()).encode()).hexdigest()[:12],
            kv_storage="JsonKVStorage",
            vector_storage=STORAGE_NAME,
            vector_db_storage_cls_kwargs={
                "cosine_better_than_threshold": 0.2,  # LightRAG's default
                "handbook": SharedStore(self._store, self._embedder.dim),
            },
            graph_storage="NetworkXStorage",
            doc_status_storage="JsonDocStatusStorage",
            llm_model_func=llm,
            llm_model_name=self._model.name,
            llm_model_max_async=self._settings.max_async,
            max_parallel_insert=1,  # documents one by one: yields are counted per document
            entity_extract_max_gleaning=self._settings.gleaning,
            embedding_func=EmbeddingFunc(
                embedding_dim=self._embedder.dim,
                func=embed,
                model_name=self._embedder.name,
            ),
            tokenizer=Tokenizer("llama3", self._tokens),
            chunking_func=chunks,
            enable_llm_cache=True,
            enable_llm_cache_for_entity_extract=True,
            addon_params={"language": "English"},
        )
        await self._rag.initialize_storages()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._rag is not None:
                await self._rag.finalize_storages()
        finally:
            self._cache.close()

    # --- the callables LightRAG is given ---------------------------------------------------

    async def _embed(self, texts: Sequence[str], context: str) -> Any:
        if context == "query":  # instruction-tuned embedders prefix queries
            return np.stack([await self._embedder.embed_query(text) for text in texts])
        return await self._embedder.embed_documents(list(texts))

    def _our_chunks(self, tokenizer: Any, content: str, *_: Any) -> list[dict[str, Any]]:
        return [
            {
                "content": chunk.text,
                "tokens": len(tokenizer.encode(chunk.text)),
                "chunk_order_index": n,
                "chunk_id": chunk.id,
                "page": chunk.page,
            }
            for n, chunk in enumerate(self._chunks)
        ]

    async def _llm(
        self,
        prompt: str,
        system_prompt: str | None = None,
        history_messages: Sequence[dict[str, str]] | None = None,
        **kwargs: Any,
    ) -> str:
        history = list(history_messages or [])
        response_format = kwargs.get("response_format")
        key = hashlib.sha256(
            json.dumps(
                [self._model.name, system_prompt, history, prompt, response_format],
                ensure_ascii=False,
            ).encode()
        ).hexdigest()
        reply = self._cache.get(key)
        if reply is None:
            messages = [Message(Role.SYSTEM, system_prompt)] if system_prompt else []
            messages += [Message(Role(m["role"]), m["content"]) for m in history]
            messages.append(Message(Role.USER, prompt))
            self.calls.made += 1
            # Llama 3 tokens for every model, so that pipelines and models compare.
            self.calls.prompt_tokens += sum(len(self._tokens.encode(m.content)) for m in messages)
            self._on_call()
            try:
                reply = "".join([piece async for piece in self._model.stream(messages)])
            except BackendUnavailable as exc:
                self._failure = exc  # LightRAG reports it wrapped in its own prefixes
                raise
            self._cache.put(key, self._model.name, reply)
        else:
            self.calls.cached += 1
        return reply

    # --- what Handbook calls ---------------------------------------------------------------

    async def add(self, doc_id: str, path: str, language: str, chunks: Sequence[Chunk]) -> Yield:
        """Extract `chunks` of one document into the graph (replacing what it had there)."""
        rag = self._rag
        status = await rag.doc_status.get_by_id(doc_id)
        if status is not None:  # changed, failed or interrupted before: start it clean
            await rag.adelete_by_doc_id(doc_id)
        self._chunks = list(chunks)
        self._failure = None
        rag.addon_params["language"] = LANGUAGES.get(language, "English")
        text = "\n\n".join(chunk.text for chunk in chunks)
        await rag.ainsert(text, ids=[doc_id], file_paths=[path])
        status = await rag.doc_status.get_by_id(doc_id)
        if status is None or str(status.get("status")) not in ("processed", "DocStatus.PROCESSED"):
            reason = self._failure or (status or {}).get("error_msg") or "it did not finish"
            raise BackendUnavailable(f"Graph extraction of {path} failed: {reason}")
        found = await self._yield_of(doc_id, chunks)
        self._cache.set_yield(doc_id, self._model.name, found)
        return found

    async def _yield_of(self, doc_id: str, chunks: Sequence[Chunk]) -> Yield:
        """Count the extraction replies LightRAG kept for each chunk (cached ones included)."""
        rag = self._rag
        stored = await rag.text_chunks.get_by_ids([chunk_key(doc_id, c.id) for c in chunks])
        keys = [key for entry in stored if entry for key in entry.get("llm_cache_list", [])]
        found = Yield()
        for entry in await rag.llm_response_cache.get_by_ids(keys):
            if entry and entry.get("cache_type") == "extract":
                found.add(count_rows(str(entry.get("return", ""))))
        return found

    async def delete(self, doc_id: str) -> None:
        """Remove a document's entities and relations; those other documents support stay."""
        if await self._rag.doc_status.get_by_id(doc_id) is not None:
            await self._rag.adelete_by_doc_id(doc_id)
        self._cache.forget(doc_id)

    def yields(self) -> dict[tuple[str, str], Yield]:
        return self._cache.yields()

    async def entity_documents(self, names: dict[str, str]) -> dict[str, list[str]]:
        """Each entity with the documents that support it (`names`: doc id -> shown name)."""
        graph = self._rag.chunk_entity_relation_graph
        out: dict[str, list[str]] = {}
        for node in await graph.get_all_nodes():
            docs = {key.split("-", 1)[0] for key in _keys(str(node.get("source_id", "")))}
            out[str(node["entity_id"])] = sorted(names.get(d, d) for d in docs)
        return out

    async def entity(self, name: str) -> EntityView | None:
        """An entity (name matched without regard to case) with its relations and sources."""
        graph = self._rag.chunk_entity_relation_graph
        labels = await graph.get_all_labels()
        match = next((label for label in labels if label.casefold() == name.casefold()), None)
        if match is None:
            return None
        node = await graph.get_node(match) or {}
        relations = []
        for source, target in await graph.get_node_edges(match) or []:
            edge = await graph.get_edge(source, target) or {}
            relations.append(
                RelationView(
                    other=target if source == match else source,
                    keywords=str(edge.get("keywords", "")),
                    description=str(edge.get("description", "")),
                    sources=await self._sources(str(edge.get("source_id", ""))),
                )
            )
        return EntityView(
            name=match,
            type=str(node.get("entity_type", "")),
            description=str(node.get("description", "")),
            sources=await self._sources(str(node.get("source_id", ""))),
            relations=tuple(sorted(relations, key=lambda r: r.other.casefold())),
        )

    async def _sources(self, source_id: str) -> tuple[tuple[str, int | None], ...]:
        """LightRAG's `<SEP>`-joined chunk keys as (document id, page)."""
        keys = list(_keys(source_id))
        stored = await self._rag.text_chunks.get_by_ids(keys)
        found = {
            (key.split("-", 1)[0], (entry or {}).get("page"))
            for key, entry in zip(keys, stored, strict=True)
        }
        return tuple(sorted(found, key=lambda s: (s[0], s[1] or 0)))

    async def query(self, question: str, mode: GraphMode, top_k: int) -> GraphContext:
        """Entities and relations for a question, and the chunks behind them. The question is
        the keyword list: no LLM call (LightRAG would ask the model for keywords)."""
        from lightrag import QueryParam

        param = QueryParam(
            mode=mode,
            top_k=top_k,
            chunk_top_k=top_k,
            hl_keywords=[question],
            ll_keywords=[question],
            enable_rerank=False,
        )
        result = await self._rag.aquery_data(question, param)
        data = result.get("data") or {}
        facts = [
            GraphFact(str(e["entity_name"]), _text(e), self._ids(e))
            for e in data.get("entities", [])
        ]
        facts += [  # LightRAG's relations have no direction
            GraphFact(f"{r['src_id']} — {r['tgt_id']}", _text(r), self._ids(r))
            for r in data.get("relationships", [])
        ]
        chunks = tuple(chunk_id_of(str(c["chunk_id"])) for c in data.get("chunks", []))
        return GraphContext(tuple(facts), chunks)

    @staticmethod
    def _ids(row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(chunk_id_of(key) for key in _keys(str(row.get("source_id", ""))))

    async def counts(self) -> tuple[int, int]:
        graph = self._rag.chunk_entity_relation_graph
        nodes = await graph.get_all_nodes()
        edges = await graph.get_all_edges()
        return len(nodes), len(edges)


class _Llama3Tokens:
    """LightRAG's tokenizer interface over the Llama 3 tokenizer (no network)."""

    def __init__(self, path: str) -> None:
        from tokenizers import Tokenizer

        self._path = path
        self._tokenizer = Tokenizer.from_file(path)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def decode(self, ids: list[int]) -> str:
        text: str = self._tokenizer.decode(ids)
        return text

    def __deepcopy__(self, memo: dict[int, Any]) -> _Llama3Tokens:
        return self  # read-only and thread-safe; LightRAG deep-copies its config per call
