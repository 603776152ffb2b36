"""LightRAG (`lightrag-hku`) behind one adapter: the only module that imports `lightrag`.

Handbook drives LightRAG with its own parts: our chunks (ids, pages), our extraction model (a
`ChatModel`), our embedder, and a tokenizer that needs no network (LightRAG would fetch a
tiktoken file at construction). Every parameter is passed explicitly; storages open and close
in an async context manager. Modules that pip-install at import (`lightrag.llm.*`, most of
`lightrag.kg.*`) are never imported.

LightRAG parses extraction replies and drops malformed rows without a word, and marks a
document processed even when a model found nothing. So each extraction reply is also counted
here (`count_rows`): entities, relations, malformed rows and empty answers per chunk, per
document and model, and `handbook graph stats` reports them. Replies are cached in SQLite keyed
by model + prompt (the prompt holds the chunk), written as they arrive: a re-run over unchanged
chunks makes no LLM call, and a run killed half-way keeps what it had.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from generation.base import ChatModel
from handbook.config import GraphSettings
from handbook.errors import BackendUnavailable
from handbook.packaged import llama3_tokenizer_file
from handbook.registry import missing_extra
from handbook.sqlite import connect
from handbook.types import Chunk, Message, Role
from ingestion.base import Embedder

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

    def close(self) -> None:
        self._db.close()


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
        folder: Path,
        on_call: Callable[[], None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._model = model
        self._embedder = embedder
        self._folder = folder
        self._on_call = on_call
        self._tokens = _Llama3Tokens(str(llama3_tokenizer_file()))
        self._cache = ReplyCache(folder / "replies.sqlite")
        self._rag: Any = None
        self._chunks: list[Chunk] = []
        self.calls = Calls()

    async def __aenter__(self) -> LightRagGraph:
        try:
            from lightrag import LightRAG
            from lightrag.utils import EmbeddingFunc, Tokenizer
        except ImportError:
            raise missing_extra("lightrag-hku", "graph") from None
        self._folder.mkdir(parents=True, exist_ok=True)
        for name in ("lightrag", "nano-vectordb"):  # their INFO lines would bury our output
            logging.getLogger(name).setLevel(logging.WARNING)
        # LightRAG deep-copies its configuration on every call; a bound method would drag this
        # object (SQLite connection, locks) along. Plain functions are copied by reference.
        graph = self

        async def llm(prompt: str, system_prompt: str | None = None, **kwargs: Any) -> str:
            return await graph._llm(prompt, system_prompt, **kwargs)

        async def embed(texts: Sequence[str], **kwargs: Any) -> Any:
            return await graph._embed(texts)

        def chunks(tokenizer: Any, content: str, *args: Any) -> list[dict[str, Any]]:
            return graph._our_chunks(tokenizer, content)

        self._rag = LightRAG(
            working_dir=str(self._folder),
            # LightRAG keeps storages in process-wide tables keyed by workspace, not folder:
            # one workspace per data folder keeps two indexes in one process apart.
            workspace="hb" + hashlib.sha256(str(self._folder.resolve()).encode()).hexdigest()[:12],
            kv_storage="JsonKVStorage",
            vector_storage="NanoVectorDBStorage",
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

    async def _embed(self, texts: Sequence[str], **_: Any) -> Any:
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
            reply = "".join([piece async for piece in self._model.stream(messages)])
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
        rag.addon_params["language"] = LANGUAGES.get(language, "English")
        text = "\n\n".join(chunk.text for chunk in chunks)
        await rag.ainsert(text, ids=[doc_id], file_paths=[path])
        status = await rag.doc_status.get_by_id(doc_id)
        if status is None or str(status.get("status")) not in ("processed", "DocStatus.PROCESSED"):
            reason = (status or {}).get("error_msg") or "extraction did not finish"
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
            chunk_keys = str(node.get("source_id", "")).split("<SEP>")
            docs = {key.split("-", 1)[0] for key in chunk_keys if key}
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
        keys = [key for key in source_id.split("<SEP>") if key]
        stored = await self._rag.text_chunks.get_by_ids(keys)
        found = {
            (key.split("-", 1)[0], (entry or {}).get("page"))
            for key, entry in zip(keys, stored, strict=True)
        }
        return tuple(sorted(found, key=lambda s: (s[0], s[1] or 0)))

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
