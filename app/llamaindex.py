"""Handbook for llama-index users: a retriever over a Handbook index, and its chat model.

    from app.llamaindex import HandbookRetriever
    from llama_index.core.query_engine import RetrieverQueryEngine

    with HandbookRetriever(k=5) as retriever:
        engine = RetrieverQueryEngine.from_args(retriever, llm=retriever.llm())
        print(engine.query("What is the maximum working pressure of the HP-200?"))

`HandbookRetriever` searches the index that `handbook index` built (hybrid dense + lexical
search, as `handbook search`) and returns `NodeWithScore`s: a `TextNode` per passage with
document id, title, path, page, section and language in its metadata, scored with the fused
score. `retriever.llm()` is Handbook's configured chat model (the packaged offline model by
default) as a llama-index LLM, so a query engine needs no OpenAI key.

This is a face, like the CLI: it builds Handbook's services through the composition root. They
are async and live on one event loop, which this module runs on a thread of its own, so that
llama-index's synchronous calls (`query`, `retrieve`) and its async ones (`aquery`,
`aretrieve`) both reach them. The index's data folder is held (one process per folder for the
embedded store) until `close()`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from handbook.errors import BackendUnavailable

try:
    from llama_index.core.base.llms.types import (
        CompletionResponse,
        CompletionResponseGen,
        LLMMetadata,
    )
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.llms import CustomLLM
    from llama_index.core.llms.callbacks import llm_completion_callback
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as exc:  # pragma: no cover - the message is tested in a subprocess
    raise BackendUnavailable(
        "llama-index is not installed: pip install 'handbook[llamaindex]'"
    ) from exc

from app.handbook import Handbook
from handbook.config import ChatSettings, Settings, load_settings
from handbook.types import Language, Message, Passage, RetrievalMode, Role, SearchFilter
from retrieval.search import Retriever

T = TypeVar("T")

# Shown to the LLM with each passage (what a citation needs); the id and the path are not.
LLM_METADATA = ("title", "page", "section")


class _Loop:
    """An event loop on its own thread: Handbook's services are created and used there."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="handbook-llamaindex", daemon=True
        )
        self._thread.start()

    def submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        return self.submit(work).result()

    async def wait(self, work: Coroutine[Any, Any, T]) -> T:
        """Await `work` from another event loop (llama-index's async calls)."""
        return await asyncio.wrap_future(self.submit(work))

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def to_node(passage: Passage) -> NodeWithScore:
    """A retrieved passage as llama-index sees it: its chunk's text and citation metadata."""
    chunk = passage.chunk
    metadata: dict[str, Any] = {
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "path": chunk.path,
        "page": chunk.page,
        "section": chunk.section,
        "language": chunk.language,
    }
    hidden = [key for key in metadata if key not in LLM_METADATA]
    node = TextNode(
        id_=chunk.id,
        text=chunk.text,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=hidden,
    )
    return NodeWithScore(node=node, score=passage.score)


class HandbookRetriever(BaseRetriever):
    """Passages of a Handbook index for llama-index (hybrid search, as `handbook search`)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        k: int | None = None,
        language: Language | None = None,
        docs: Sequence[str] = (),
        mode: RetrievalMode = "hybrid",
        keep_irrelevant: bool = True,
    ) -> None:
        """Open the index of `settings` (default: `handbook.yaml` and `HANDBOOK_*`, as the
        CLI resolves them).

        `k`: passages per query (default `retrieval.k`); `language`: only passages in that
        language; `docs`: only these documents (id, path or file name, as `handbook search
        --doc`); `mode`: `hybrid`, `naive` (dense only), `sparse` (lexical only), or the graph
        modes `local`, `global`, `mix` (they need `handbook graph build`);
        `keep_irrelevant=False`: no passages for an off-topic query (below
        `retrieval.min_dense_score`).
        """
        super().__init__()
        self._settings = settings or load_settings()
        self._k = k
        self._mode: RetrievalMode = mode
        self._keep_irrelevant = keep_irrelevant
        self._runner = _Loop()
        self._handbook = Handbook(self._settings)
        self._closed = False
        try:
            self._where, self._retriever = self._runner.call(self._open(docs, language))
        except BaseException:
            self.close()
            raise

    async def _open(
        self, docs: Sequence[str], language: Language | None
    ) -> tuple[SearchFilter, Retriever]:
        """On the services' loop (the registry's connection belongs to that thread)."""
        await self._handbook.__aenter__()
        return self._handbook.search_filter(docs, language), await self._handbook.retriever()

    def llm(self) -> HandbookLLM:
        """Handbook's configured chat model (`chat.*` settings) as a llama-index LLM."""
        return HandbookLLM(self._settings, self._handbook, self._runner)

    async def _search(self, query: str) -> list[NodeWithScore]:
        found = await self._retriever.search(
            query,
            k=self._k,
            where=self._where,
            mode=self._mode,
            keep_irrelevant=self._keep_irrelevant,
        )
        return [to_node(p) for p in found.passages]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._runner.call(self._search(query_bundle.query_str))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await self._runner.wait(self._search(query_bundle.query_str))

    def close(self) -> None:
        """Close the index (and a loaded chat model) and release its data folder."""
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.call(self._handbook.__aexit__(None, None, None))
        finally:
            self._runner.close()

    def __enter__(self) -> HandbookRetriever:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HandbookLLM(CustomLLM):
    """Handbook's chat model as a llama-index LLM: the prompt is one user message.

    Made by `HandbookRetriever.llm()`; it shares the retriever's services and its lifetime.
    """

    _chat_settings: ChatSettings = PrivateAttr()
    _handbook: Handbook = PrivateAttr()
    _runner: _Loop = PrivateAttr()

    def __init__(self, settings: Settings, handbook: Handbook, runner: _Loop) -> None:
        super().__init__()
        self._chat_settings = settings.chat
        self._handbook = handbook
        self._runner = runner

    @property
    def metadata(self) -> LLMMetadata:
        chat = self._chat_settings
        return LLMMetadata(
            context_window=chat.context_tokens,
            num_output=chat.max_tokens,
            model_name=f"handbook:{chat.backend}:{chat.model}",
        )

    async def _pieces(self, prompt: str) -> AsyncIterator[str]:
        """The model's answer as it streams (created on the services' loop)."""
        return self._handbook.chat().stream([Message(Role.USER, prompt)])

    async def _answer(self, prompt: str) -> str:
        return "".join([piece async for piece in await self._pieces(prompt)])

    @llm_completion_callback()
    def complete(  # llama-index's signature
        self,
        prompt: str,
        formatted: bool = False,  # noqa: FBT001, FBT002
        **kwargs: Any,
    ) -> CompletionResponse:
        return CompletionResponse(text=self._runner.call(self._answer(prompt)))

    @llm_completion_callback()
    def stream_complete(  # llama-index's signature
        self,
        prompt: str,
        formatted: bool = False,  # noqa: FBT001, FBT002
        **kwargs: Any,
    ) -> CompletionResponseGen:
        pieces = self._runner.call(self._pieces(prompt))

        async def step() -> str | None:
            try:
                return await anext(pieces)
            except StopAsyncIteration:
                return None

        text = ""
        try:
            while (piece := self._runner.call(step())) is not None:
                text += piece
                yield CompletionResponse(text=text, delta=piece)
        finally:  # a consumer that stops early frees the model's slot
            close = getattr(pieces, "aclose", None)
            if close is not None:
                self._runner.call(close())
