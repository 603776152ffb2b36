"""The vector stores by name. The vector store and graph Protocols live in the core
(`handbook.protocols`); the backends' shared helpers in `retrieval.store_common`, which the
backends import instead of this module (no circle)."""

from __future__ import annotations

from typing import Any

from handbook.backends import Backends
from handbook.config import StoreSettings
from handbook.protocols import VectorStore

STORES: Backends[VectorStore] = Backends("vector store")


def _register_builtins() -> None:
    def qdrant_local(settings: StoreSettings, path: Any) -> VectorStore:
        from retrieval.qdrant_client_store import QdrantClientStore

        return QdrantClientStore(settings, path=path)

    def qdrant_server(settings: StoreSettings, path: Any) -> VectorStore:
        from retrieval.qdrant_client_store import QdrantClientStore

        return QdrantClientStore(settings, path=None)

    def qdrant_edge(settings: StoreSettings, path: Any) -> VectorStore:
        from retrieval.qdrant_edge_store import QdrantEdgeStore

        return QdrantEdgeStore(settings, path=path)

    STORES.register("qdrant-local", qdrant_local)
    STORES.register("qdrant", qdrant_server)
    STORES.register("qdrant-edge", qdrant_edge)


_register_builtins()
