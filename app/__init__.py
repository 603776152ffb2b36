"""The composition root: builds the services (embedder, store, retriever, answerer, graph,
chat model) from settings, in one place above the parts. `app.llamaindex` is a library face
over it; the faces (`api/`, `cli/`) call it."""

from app.handbook import Handbook, HomeLock

__all__ = ["Handbook", "HomeLock"]
