"""Composition root: builds the services from Settings, lazily, and closes them.

    async with Handbook(settings) as hb:
        report = await (await hb.indexer()).index(Path("manuals"))

Nothing heavy is built until a service asks for it: `docs list` never loads a model.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from generation.answer import Answerer
from generation.residency import Residency
from generation.sessions import Conversation, SessionStore
from handbook.config import Settings
from handbook.errors import ConfigError, NotIndexed, StoreLocked
from handbook.protocols import ChatModel, Embedder, VectorStore
from handbook.types import GraphContext, GraphMode, Language, SearchFilter
from ingestion.base import EMBEDDERS
from ingestion.doc_registry import DocumentRegistry
from ingestion.pipeline import Indexer
from retrieval.base import STORES
from retrieval.search import Retriever

if TYPE_CHECKING:
    from ingestion.graph_stage import GraphReport
    from ingestion.lightrag_adapter import LightRagGraph
    from ingestion.progress import Progress

EMBEDDED_STORES = ("qdrant-edge", "qdrant-local")


class HomeLock:
    """One process at a time per data folder for the embedded store (a single writer)."""

    def __init__(self, home: Path) -> None:
        self._path = home / "lock"
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        if self.held:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle = self._path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreLocked(
                f"The index in {self._path.parent} is in use by {holder}. Wait for it to finish "
                "(or stop it), or run `handbook serve` and use the API to share one index, or "
                "use a Qdrant server (store.backend: qdrant) for concurrent access."
            ) from None
        handle.seek(0)
        handle.truncate()
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:2]])
        handle.write(f"pid {os.getpid()} ({command})")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class _GraphOnDemand:
    """The graph for retrieval, opened at its first query (loading LightRAG takes seconds)."""

    def __init__(self, handbook: Handbook) -> None:
        self._handbook = handbook

    async def query(self, question: str, mode: GraphMode, top_k: int) -> GraphContext:
        return await (await self._handbook.graph()).query(question, mode, top_k)


class Handbook:
    def __init__(self, settings: Settings, lock: HomeLock | None = None) -> None:
        """`lock`: the data folder's lock, when the caller took it already (`handbook serve`
        takes it before the server starts, so that a held folder is one clear line); it is
        released with the Handbook."""
        self.settings = settings
        self._lock = lock or HomeLock(settings.home)
        self._registry: DocumentRegistry | None = None
        self._embedder: Embedder | None = None
        self._store: VectorStore | None = None
        self._residency: Residency | None = None
        self._sessions: SessionStore | None = None
        self._graph: LightRagGraph | None = None
        self._closing = AsyncExitStack()

    async def __aenter__(self) -> Handbook:
        if self.uses_home_lock(self.settings):
            self._lock.acquire()
        return self

    @staticmethod
    def uses_home_lock(settings: Settings) -> bool:
        """An embedded store has a single writer: one process per data folder."""
        return settings.store.backend in EMBEDDED_STORES

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._closing.aclose()  # the graph, which writes through the store
            if self._store is not None:
                await self._store.close()
            if self._residency is not None:
                await self._residency.close()
            if self._sessions is not None:
                self._sessions.close()
            if self._registry is not None:
                self._registry.close()
        finally:
            self._lock.release()

    @property
    def registry(self) -> DocumentRegistry:
        if self._registry is None:
            self._registry = DocumentRegistry(self.settings.registry_path)
        return self._registry

    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = EMBEDDERS.create(
                self.settings.embedder.backend, self.settings.embedder
            )
        return self._embedder

    def _check_embedder(self, *, writing: bool) -> Embedder:
        embedder = self.embedder()
        stored = self.registry.get_meta("embedder")
        if stored is None:
            if writing:
                self.registry.set_meta("embedder", embedder.name)
                self.registry.set_meta("dim", str(embedder.dim))
        elif stored != embedder.name:
            raise ConfigError(
                f"This index was built with the embedder {stored!r}, but the settings select "
                f"{embedder.name!r}. Switch embedder settings back, or run `handbook reset` and "
                "index again."
            )
        return embedder

    async def store(self) -> VectorStore:
        if self._store is None:
            dim_text = self.registry.get_meta("dim")
            dim = int(dim_text) if dim_text else self.embedder().dim
            store = STORES.create(
                self.settings.store.backend, self.settings.store, self.settings.store_path
            )
            await store.open(dim)
            self._store = store
        return self._store

    async def reset(self) -> None:
        """Delete the whole index: the store's collections, the document registry and the
        knowledge graph (its cache of extraction replies stays)."""
        from ingestion.lightrag_adapter import reset_graph

        await self._closing.aclose()
        self._graph = None
        store = await self.store()
        await store.drop()
        self._store = None
        reset_graph(self.settings.graph_path)
        self.registry.close()
        self._registry = None
        path = self.settings.registry_path
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            candidate.unlink(missing_ok=True)

    def residency(self) -> Residency:
        """Decides which model answers; holds every loaded model."""
        if self._residency is None:
            self._residency = Residency(
                self.settings.chat,
                self.settings.extraction,
                self.settings.residency,
                self.settings.models_path,
                self.registry,
            )
        return self._residency

    def chat(self) -> ChatModel:
        return self.residency().chat().chat

    @property
    def sessions(self) -> SessionStore:
        if self._sessions is None:
            self._sessions = SessionStore(self.settings.sessions_path)
        return self._sessions

    async def conversation(self) -> Conversation:
        return Conversation(await self.answerer(), self.sessions)

    async def indexer(self) -> Indexer:
        embedder = self._check_embedder(writing=True)
        return Indexer(self.settings, embedder, await self.store(), self.registry)

    async def retriever(self) -> Retriever:
        if not self.registry.all():
            raise NotIndexed("Nothing is indexed yet. Run `handbook index PATH` first.")
        embedder = self._check_embedder(writing=False)
        graph = _GraphOnDemand(self) if self.graph_built() else None
        return Retriever(embedder, await self.store(), self.settings.retrieval, graph)

    def search_filter(
        self, docs: Sequence[str] = (), language: Language | None = None
    ) -> SearchFilter:
        """Documents named by id, path or file name (all matches), and a language."""
        ids: list[str] = []
        for key in docs:
            found = self.registry.find(key)
            if not found:
                raise NotIndexed(f"No indexed document matches {key!r}. See `handbook docs list`.")
            ids.extend(r.doc_id for r in found)
        return SearchFilter(doc_ids=tuple(ids), language=language)

    async def delete_document(self, doc_id: str) -> None:
        """A document's chunks, registry entry, and graph contributions (entities and
        relations other documents support stay)."""
        await (await self.indexer()).delete(doc_id)
        if self.settings.graph_path.is_dir():
            await (await self.graph()).delete(doc_id)

    def graph_built(self) -> bool:
        """Whether any indexed document is in the knowledge graph."""
        from ingestion.graph_stage import STAGE_GRAPH

        return any(
            self.registry.stage_done(r.doc_id, STAGE_GRAPH, r.sha256) for r in self.registry.all()
        )

    async def graph(self) -> LightRagGraph:
        """The knowledge graph (opened once, closed with the Handbook); it extracts with the
        extraction model (see residency)."""
        if self._graph is None:
            from ingestion.lightrag_adapter import LightRagGraph

            embedder = self._check_embedder(writing=False)
            residency = self.residency()
            graph = LightRagGraph(
                self.settings.graph,
                residency.extraction().chat,
                embedder,
                await self.store(),
                self.settings.graph_path,
                on_call=residency.mark_extracted,
            )
            self._graph = await self._closing.enter_async_context(graph)
        return self._graph

    async def build_graph(self, progress: Progress | None = None) -> GraphReport:
        from ingestion.graph_stage import build_graph

        graph = await self.graph()
        model = self.residency().extraction().chat.name
        return await build_graph(self.settings, self.registry, graph, model, progress)

    async def answerer(self) -> Answerer:
        from generation.extract import Extractor

        retriever = await self.retriever()
        extractor = Extractor(self._check_embedder(writing=False), self.settings.answer.max_chars)
        return Answerer(
            retriever, self.residency(), self.settings.history, self.settings.answer, extractor
        )
