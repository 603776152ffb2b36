"""LightRAG (`lightrag-hku`) behind one adapter: the only module that imports `lightrag`.

Handbook drives LightRAG with its own parts: our chunks (ids, pages), our extraction model (a
`ChatModel`), our embedder, and a tokenizer that needs no network (LightRAG would fetch a
tiktoken file at construction). Every parameter is passed explicitly; storages open and close
in an async context manager. Modules that pip-install at import (`lightrag.llm.*`, most of
`lightrag.kg.*`) are never imported.

LightRAG's entity, relation and chunk vectors live in Handbook's Qdrant (`QdrantGraphVectors`,
registered through LightRAG's storage table, its public extension point): entities and
relations in two dense collections beside the chunks', and the chunk namespace is a view of
our chunk collection, so chunks are embedded once.

LightRAG parses extraction replies and drops malformed rows without a word, and marks a
document processed even when a model found nothing. So each extraction reply is also counted
here (`count_rows`): entities, relations, malformed rows and empty answers per chunk, per
document and model, and `handbook graph stats` reports them. Replies are cached in SQLite keyed
by model + prompt (the prompt holds the chunk), written as they arrive: a re-run over unchanged
chunks makes no LLM call, and a run killed half-way keeps what it had.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from generation.base import ChatModel
from handbook.config import GraphSettings
from handbook.errors import BackendUnavailable
from handbook.packaged import llama3_tokenizer_file
from handbook.registry import missing_extra
from handbook.sqlite import connect
from handbook.types import Chunk, GraphContext, GraphFact, GraphMode, Message, Role
from ingestion.base import Embedder
from retrieval.base import DenseCollection, VectorStore

STORAGE_NAME = "HandbookQdrantVectorStorage"
TUPLE = "<|#|>"  # LightRAG 1.5.7 PROMPTS["DEFAULT_TUPLE_DELIMITER"]
COMPLETE = "<|COMPLETE|>"  # PROMPTS["DEFAULT_COMPLETION_DELIMITER"]
LANGUAGES = {"de": "German", "en": "English"}


@dataclass
class Yield:
    """What extraction found, summed over chunks."""

    chunks: int = 0
    entities: int = 0
    relations: int = 0
    malformed: int = 0
    empty: int = 0

    def add(self, other: Yield) -> None:
        self.chunks += other.chunks
        self.entities += other.entities
        self.relations += other.relations
        self.malformed += other.malformed
        self.empty += other.empty

    @property
    def entities_per_chunk(self) -> float:
        return self.entities / self.chunks if self.chunks else 0.0

    @property
    def relations_per_chunk(self) -> float:
        return self.relations / self.chunks if self.chunks else 0.0


def count_rows(reply: str) -> Yield:
    """Count one extraction reply's rows as LightRAG 1.5.7 would accept or drop them.

    >>> count_rows("entity<|#|>Pumpe<|#|>Bauteil<|#|>Fördert Öl.\\n"
    ...            "relation<|#|>Pumpe<|#|>Ventil<|#|>speist<|#|>Die Pumpe speist das Ventil.\\n"
    ...            "entity<|#|>Kaputt<|#|>nur drei\\n<|COMPLETE|>")
    Yield(chunks=1, entities=1, relations=1, malformed=1, empty=0)
    >>> count_rows("I cannot find any entities.")
    Yield(chunks=1, entities=0, relations=0, malformed=1, empty=1)
    """
    found = Yield(chunks=1)
    for line in reply.splitlines():
        row = line.strip().removesuffix(COMPLETE).strip()
        if not row:
            continue
        fields = [part.strip() for part in row.split(TUPLE)]
        kind = fields[0].lower()
        if kind == "entity" and len(fields) == 4 and fields[1] and fields[3]:
            found.entities += 1
        elif kind == "relation" and len(fields) == 5 and fields[1] and fields[2] and fields[4]:
            found.relations += 1
        else:
            found.malformed += 1
    found.empty = int(found.entities == 0 and found.relations == 0)
    return found


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


class ReplyCache:
    """Extraction model replies (SQLite), and the yield of each document's extraction."""

    def __init__(self, path: Path) -> None:
        self._db = connect(
            path,
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
            "reply TEXT NOT NULL, created REAL NOT NULL);"
            "CREATE TABLE IF NOT EXISTS yields (doc_id TEXT NOT NULL, model TEXT NOT NULL, "
            "chunks INT, entities INT, relations INT, malformed INT, empty INT, "
            "PRIMARY KEY (doc_id, model));",
        )

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, model: str, reply: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)", (key, model, reply, time.time())
        )

    def set_yield(self, doc_id: str, model: str, found: Yield) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO yields VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc_id, model, found.chunks, found.entities, found.relations, found.malformed,
             found.empty),
        )  # fmt: skip

    def yields(self) -> dict[tuple[str, str], Yield]:
        rows = self._db.execute("SELECT * FROM yields").fetchall()
        return {(doc, model): Yield(*counts) for doc, model, *counts in rows}

    def forget(self, doc_id: str) -> None:
        self._db.execute("DELETE FROM yields WHERE doc_id = ?", (doc_id,))

    def forget_all(self) -> None:
        self._db.execute("DELETE FROM yields")

    def close(self) -> None:
        self._db.close()


def chunk_key(doc_id: str, chunk_id: str) -> str:
    """LightRAG's key for one of our chunks (it prefixes the document id)."""
    return f"{doc_id}-{chunk_id}"


def chunk_id_of(key: str) -> str:
    """Our chunk id inside LightRAG's chunk key (document ids hold no hyphen)."""
    return key.split("-", 1)[1]


def _text(row: dict[str, Any]) -> str:
    """A description; LightRAG joins those of merged mentions with `<SEP>`."""
    return "; ".join(part.strip() for part in _keys(str(row.get("description", ""))))


def _keys(source_id: str) -> tuple[str, ...]:
    return tuple(key for key in source_id.split("<SEP>") if key)


class _Shared:
    """Handbook's store, handed to LightRAG's storages through its configuration."""

    def __init__(self, store: VectorStore, dim: int) -> None:
        self.store = store
        self.dim = dim

    def __deepcopy__(self, memo: dict[int, Any]) -> _Shared:
        return self  # LightRAG deep-copies its configuration on every call


def __getattr__(name: str) -> Any:
    """LightRAG finds a storage class by module and name (`lightrag.kg.STORAGES`)."""
    if name == STORAGE_NAME:
        return _qdrant_vector_storage()
    raise AttributeError(name)


@functools.cache
def _qdrant_vector_storage() -> type[Any]:
    """LightRAG's vector storage over Handbook's Qdrant; built on first use, because it
    subclasses a LightRAG class and LightRAG is an optional extra."""
    from dataclasses import dataclass as storage_dataclass

    from lightrag.base import BaseVectorStorage
    from lightrag.utils import compute_mdhash_id

    @storage_dataclass
    class QdrantGraphVectors(BaseVectorStorage):  # type: ignore[misc]  # LightRAG is untyped
        """Entities and relations: a dense collection each, written at once (nothing is
        buffered until `index_done_callback`). Chunks: a read-only view of Handbook's chunk
        collection, whose vectors the indexer already made."""

        def __post_init__(self) -> None:
            self._validate_embedding_func()
            kwargs = self.global_config["vector_db_storage_cls_kwargs"]
            self.cosine_better_than_threshold = kwargs["cosine_better_than_threshold"]
            self._shared: _Shared = kwargs["handbook"]
            self._batch = int(self.global_config["embedding_batch_num"])
            self._points: DenseCollection | None = None

        @property
        def _chunks(self) -> bool:
            return bool(self.namespace == "chunks")

        async def initialize(self) -> None:
            if not self._chunks:
                self._points = await self._shared.store.collection(
                    f"graph_{self.namespace}", self._shared.dim
                )

        async def index_done_callback(self) -> None:
            return None

        async def _embed(self, texts: list[str], context: str) -> Any:
            vectors = await self.embedding_func(texts, context=context)
            return np.asarray(vectors, dtype=np.float32)

        async def _query_vector(self, query: str, given: list[float] | None) -> Any:
            if given is not None:
                return np.asarray(given, dtype=np.float32)
            return (await self._embed([query], "query"))[0]

        @staticmethod
        def _chunk_record(chunk: Chunk) -> dict[str, Any]:
            return {
                "id": chunk_key(chunk.doc_id, chunk.id),
                "content": chunk.text,
                "full_doc_id": chunk.doc_id,
                "file_path": chunk.path,
                "created_at": None,
            }

        @staticmethod
        def _record(key: str, payload: dict[str, Any]) -> dict[str, Any]:
            fields = {k: v for k, v in payload.items() if k != "key"}
            return {**fields, "id": key, "created_at": payload.get("created_at")}

        async def upsert(self, data: dict[str, dict[str, Any]]) -> None:
            if self._chunks or not data or self._points is None:
                return  # chunk vectors are Handbook's own
            keys = list(data)
            contents = [str(data[key]["content"]) for key in keys]
            vectors = [
                await self._embed(contents[i : i + self._batch], "document")
                for i in range(0, len(keys), self._batch)
            ]
            now = int(time.time())
            payloads = [
                {**{k: v for k, v in data[key].items() if k in self.meta_fields}, "created_at": now}
                for key in keys
            ]
            await self._points.upsert(keys, np.concatenate(vectors), payloads)

        async def query(
            self, query: str, top_k: int, query_embedding: list[float] | None = None
        ) -> list[dict[str, Any]]:
            vector = await self._query_vector(query, query_embedding)
            threshold = float(self.cosine_better_than_threshold)
            if self._chunks:
                from handbook.types import SearchFilter

                hits = await self._shared.store.search_dense(vector, top_k, SearchFilter())
                return [
                    {**self._chunk_record(chunk), "distance": score}
                    for chunk, score in hits
                    if score >= threshold
                ]
            assert self._points is not None
            found = await self._points.search(vector, top_k, threshold)
            return [
                {**self._record(key, payload), "distance": score} for key, payload, score in found
            ]

        async def get_by_id(self, id: str) -> dict[str, Any] | None:
            return (await self.get_by_ids([id]))[0]

        async def get_by_ids(self, ids: list[str]) -> list[dict[str, Any] | None]:
            if self._chunks:
                stored = await self._shared.store.get([chunk_id_of(key) for key in ids])
                by_key = {chunk_key(c.doc_id, c.id): self._chunk_record(c) for c, _ in stored}
            else:
                assert self._points is not None
                points = await self._points.get(ids)
                by_key = {key: self._record(key, payload) for key, payload, _ in points}
            return [by_key.get(key) for key in ids]

        async def get_vectors_by_ids(self, ids: list[str]) -> dict[str, list[float]]:
            if self._chunks:
                stored = await self._shared.store.get([chunk_id_of(key) for key in ids])
                return {chunk_key(c.doc_id, c.id): vector for c, vector in stored}
            assert self._points is not None
            points = await self._points.get(ids, vectors=True)
            return {key: vector for key, _, vector in points if vector is not None}

        async def delete(self, ids: list[str]) -> None:
            if self._points is not None:
                await self._points.delete(ids)

        async def delete_entity(self, entity_name: str) -> None:
            if self._points is not None:
                await self._points.delete([compute_mdhash_id(entity_name, prefix="ent-")])

        async def delete_entity_relation(self, entity_name: str) -> None:
            if self._points is not None:
                await self._points.delete_matching("src_id", [entity_name])
                await self._points.delete_matching("tgt_id", [entity_name])

        async def drop(self) -> dict[str, str]:
            if self._points is not None:
                await self._points.clear()
            return {"status": "success", "message": "data dropped"}

    QdrantGraphVectors.__name__ = QdrantGraphVectors.__qualname__ = STORAGE_NAME
    return QdrantGraphVectors


REPLIES = "replies.sqlite"


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
        vector_storages = STORAGE_IMPLEMENTATIONS["VECTOR_STORAGE"]["implementations"]
        if STORAGE_NAME not in vector_storages:
            vector_storages.append(STORAGE_NAME)
        STORAGES[STORAGE_NAME] = __name__
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
                "handbook": _Shared(self._store, self._embedder.dim),
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
        stored = await rag.text_chunks.get_by_ids([f"{doc_id}-{c.id}" for c in chunks])
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
