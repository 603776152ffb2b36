"""The chat models by name. The `ChatModel` Protocol lives in the core (`handbook.protocols`)."""

from __future__ import annotations

from pathlib import Path

from handbook.backends import Backends
from handbook.config import ChatSettings
from handbook.protocols import ChatModel

CHAT_MODELS: Backends[ChatModel] = Backends("chat model")


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
