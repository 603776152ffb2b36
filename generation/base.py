"""The chat model protocol and its registry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from handbook.config import ChatSettings
from handbook.registry import Registry
from handbook.types import Message


@runtime_checkable
class ChatModel(Protocol):
    """Streams an answer to a conversation."""

    name: str
    load_seconds: float | None

    def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        """Yield the answer's text as it is generated. Raises BackendUnavailable when the
        model cannot answer (not installed, server down, timed out)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's own tokenizer."""
        ...

    async def load(self) -> None:
        """Load the model now (in-process) or into the server's memory (Ollama), so that the
        first question does not wait for it; records `load_seconds`."""
        ...

    async def close(self) -> None:
        """Free the model (in-process) or the connection (server)."""
        ...


CHAT_MODELS: Registry[ChatModel] = Registry("chat model")


def _register_builtins() -> None:
    """Factories take the chat settings and the folder for converted models."""

    def llamacpp(settings: ChatSettings, models_dir: Path) -> ChatModel:
        from generation.llamacpp import LlamaCppChat

        return LlamaCppChat(settings)

    def ollama(settings: ChatSettings, models_dir: Path) -> ChatModel:
        from generation.ollama import OllamaChat

        return OllamaChat(settings)

    def adapter(settings: ChatSettings, models_dir: Path) -> ChatModel:
        from generation.adapter import PeftChat

        return PeftChat(settings, models_dir)

    CHAT_MODELS.register("llamacpp", llamacpp)
    CHAT_MODELS.register("ollama", ollama)
    CHAT_MODELS.register("adapter", adapter)


_register_builtins()
