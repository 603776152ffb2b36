"""What the LightRAG adapter and its storage plugin share, without importing `lightrag`: the
keys of our chunks inside LightRAG, and Handbook's store as LightRAG's configuration carries it."""

from __future__ import annotations

from typing import Any

from handbook.protocols import VectorStore

STORAGE_NAME = "HandbookQdrantVectorStorage"  # the class in lightrag_storage, looked up by name


def chunk_key(doc_id: str, chunk_id: str) -> str:
    """LightRAG's key for one of our chunks (it prefixes the document id)."""
    return f"{doc_id}-{chunk_id}"


def chunk_id_of(key: str) -> str:
    """Our chunk id inside LightRAG's chunk key (document ids hold no hyphen)."""
    return key.split("-", 1)[1]


class SharedStore:
    """Handbook's store, handed to LightRAG's storages through its configuration."""

    def __init__(self, store: VectorStore, dim: int) -> None:
        self.store = store
        self.dim = dim

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedStore:
        return self  # LightRAG deep-copies its configuration on every call
