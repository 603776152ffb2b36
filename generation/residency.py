"""Model residency: which loaded model answers, so that models are not swapped per request.

Loading gemma-3-4b Q8_0 took 76 s on a 6 GB GPU; swapping between the extraction and the chat
model on every request is unusable. Rule: if the extraction model extracted within
`residency.window_s`, more recently than the chat model answered, and may chat, it answers;
otherwise the chat model does. The times live in the document registry (SQLite), so a graph
build in one process and questions in another (the API) see the same clock. Identical settings
share one loaded instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from generation.base import CHAT_MODELS
from handbook.config import ChatSettings, ResidencySettings
from handbook.protocols import ChatModel


class UsageLog(Protocol):
    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class Resident:
    """A model and the settings it was built from (prompt format, tasks, limits)."""

    chat: ChatModel
    settings: ChatSettings


def choose(
    chat_answered: float | None,
    extracted: float | None,
    now: float,
    settings: ResidencySettings,
) -> Literal["chat", "extraction"]:
    """Which model should answer, from when the chat model last answered and when the
    extraction model last extracted.

    >>> s = ResidencySettings(window_s=300)
    >>> choose(None, 1000.0, 1100.0, s)
    'extraction'
    >>> choose(1050.0, 1000.0, 1100.0, s)
    'chat'
    >>> choose(None, 1000.0, 1400.0, s)
    'chat'
    """
    if not settings.extraction_can_chat or settings.window_s <= 0 or extracted is None:
        return "chat"
    if now - extracted > settings.window_s:
        return "chat"
    return "extraction" if chat_answered is None or extracted >= chat_answered else "chat"


def _identity(settings: ChatSettings) -> tuple[str, str, str, str | None]:
    return (settings.backend, settings.model, settings.host, settings.adapter)


class Residency:
    def __init__(
        self,
        chat: ChatSettings,
        extraction: ChatSettings,
        settings: ResidencySettings,
        models_dir: Path,
        usage: UsageLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._chat_settings = chat
        self._extraction_settings = extraction
        self._settings = settings
        self._models_dir = models_dir
        self._usage = usage
        self._clock = clock
        # Keyed by all settings: the same model with another context size or token limit is
        # another llama.cpp server, and for Ollama another num_ctx means a reload anyway.
        self._loaded: dict[str, ChatModel] = {}

    def _model(self, settings: ChatSettings) -> ChatModel:
        key = settings.model_dump_json(exclude={"backend"}) + settings.backend
        if key not in self._loaded:
            self._loaded[key] = CHAT_MODELS.create(settings.backend, settings, self._models_dir)
        return self._loaded[key]

    def chat(self) -> Resident:
        return Resident(self._model(self._chat_settings), self._chat_settings)

    def extraction(self) -> Resident:
        return Resident(self._model(self._extraction_settings), self._extraction_settings)

    def _time(self, key: str) -> float | None:
        value = self._usage.get_meta(key)
        return float(value) if value else None

    def answering(self) -> Resident:
        if _identity(self._chat_settings) == _identity(self._extraction_settings):
            return self.chat()
        chosen = choose(
            self._time(f"answered:{self._name(self._chat_settings)}"),
            self._time(f"extracted:{self._name(self._extraction_settings)}"),
            self._clock(),
            self._settings,
        )
        return self.extraction() if chosen == "extraction" else self.chat()

    def mark_answered(self, resident: Resident) -> None:
        self._usage.set_meta(f"answered:{self._name(resident.settings)}", repr(self._clock()))

    def mark_extracted(self) -> None:
        """Called by the graph stage: the extraction model is loaded now."""
        key = f"extracted:{self._name(self._extraction_settings)}"
        self._usage.set_meta(key, repr(self._clock()))

    @staticmethod
    def _name(settings: ChatSettings) -> str:
        return ":".join(str(part) for part in _identity(settings))

    async def preload(self) -> Resident:
        """Load the model that would answer now, so the first question does not wait."""
        resident = self.answering()
        await resident.chat.load()
        return resident

    def load_times(self) -> dict[str, float | None]:
        return {model.name: model.load_seconds for model in self._loaded.values()}

    async def close(self) -> None:
        for model in self._loaded.values():
            await model.close()
        self._loaded.clear()
