"""Chat through an Ollama server with the official `ollama` client (production: llama3.2:3b).

Error translation is ours: the client raises `ConnectionError` for a refused connection on plain
calls but lets `httpx.ConnectError` escape from streaming calls, and only once iteration starts;
a missing model comes back as `ResponseError` with status 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from handbook.backends import missing_package
from handbook.config import ChatSettings, ExtractionSettings
from handbook.errors import BackendUnavailable, ConfigError
from handbook.packaged import llama3_tokenizer_file
from handbook.types import Message

T = TypeVar("T")


class OllamaChat:
    def __init__(self, settings: ChatSettings) -> None:
        try:
            import ollama
        except ImportError:
            raise missing_package("ollama") from None
        self._settings = settings
        self.name = f"ollama:{settings.model}"
        self.load_seconds: float | None = None
        self._tokenizer: Any = None  # None: not looked for yet; False: none available
        self._client = ollama.AsyncClient(host=settings.host, timeout=settings.timeout_s)

    def _options(self) -> dict[str, Any]:
        return {
            "num_ctx": self._settings.context_tokens,
            "num_predict": self._settings.max_tokens,
            "temperature": self._settings.temperature,
            "seed": self._settings.seed,
        }

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        import httpx
        import ollama

        payload = [{"role": str(m.role), "content": m.content} for m in messages]
        try:
            response = await self._client.chat(
                model=self._settings.model,
                messages=payload,
                stream=True,
                options=self._options(),
                keep_alive=self._settings.keep_alive,
            )
            async for part in response:
                piece = part.message.content
                if piece:
                    yield piece
        except (ConnectionError, httpx.TransportError, ollama.ResponseError, ValueError) as exc:
            raise translate(exc, self._settings) from exc

    async def load(self) -> None:
        """Load the model into the server's memory and keep it there for `keep_alive`
        (an empty generate request, as Ollama documents); records the server's load time."""
        import httpx
        import ollama

        try:
            response = await self._client.generate(
                model=self._settings.model, prompt="", keep_alive=self._settings.keep_alive
            )
        except (ConnectionError, httpx.TransportError, ollama.ResponseError, ValueError) as exc:
            raise translate(exc, self._settings) from exc
        if response.load_duration is not None:
            self.load_seconds = response.load_duration / 1e9

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            self._tokenizer = local_tokenizer(self._settings)
        if self._tokenizer is False:
            return max(1, len(text) // 4)  # no tokenizer at hand: ~4 characters per token
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    async def close(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # unannotated upstream


def local_tokenizer(settings: ChatSettings) -> Any:
    """The model's tokenizer (`tokenizers.Tokenizer`) when one is at hand, else False.
    Ollama has no tokenize route (ollama/ollama#3582, #6774); Llama 3's ships in a wheel."""
    from tokenizers import Tokenizer

    if settings.tokenizer:
        return Tokenizer.from_file(settings.tokenizer)
    if settings.model.startswith("llama3"):
        try:
            return Tokenizer.from_file(str(llama3_tokenizer_file()))
        except ConfigError:
            return False
    return False


def translate(exc: BaseException, settings: ChatSettings) -> BackendUnavailable:
    """The ollama client's and httpx's exceptions as errors that say what to do."""
    import httpx
    import ollama

    host, model = settings.host, settings.model
    section = "extraction" if isinstance(settings, ExtractionSettings) else "chat"
    if isinstance(exc, ollama.ResponseError) and exc.status_code == 404:
        return BackendUnavailable(
            f"Ollama at {host} does not have the model {model!r}. Run: ollama pull {model}"
        )
    if isinstance(exc, ollama.ResponseError):
        return BackendUnavailable(f"Ollama at {host} answered {exc.status_code}: {exc.error}")
    if isinstance(exc, ValueError):  # not JSON, or not the shape of Ollama's replies
        return BackendUnavailable(
            f"The server at {host} answered something that is not Ollama's API ({exc}). Check "
            f"that {section}.host points at Ollama and not at a proxy or another service."
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        return BackendUnavailable(
            f"Ollama at {host} closed the connection without an answer; it may have crashed "
            "or run out of memory (see the log of `ollama serve`). Run the command again."
        )
    if isinstance(exc, httpx.TimeoutException):
        return BackendUnavailable(
            f"Ollama at {host} did not answer within {settings.timeout_s:g} s "
            f"({section}.timeout_s). The model may still be loading; try again or raise the "
            "timeout."
        )
    return BackendUnavailable(
        f"Ollama is not reachable at {host} ({type(exc).__name__}). Start it with "
        f"`ollama serve`, or set {section}.host to where it runs."
    )


@dataclass(frozen=True)
class ServedModel:
    name: str
    size: int
    size_vram: int | None = None
    expires_at: str | None = None


class OllamaModels:
    """`handbook models list|ps|pull`: what the Ollama server has, runs, and fetches."""

    def __init__(self, settings: ChatSettings) -> None:
        import ollama

        self._settings = settings
        self._client = ollama.AsyncClient(host=settings.host, timeout=settings.timeout_s)

    async def __aenter__(self) -> OllamaModels:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # unannotated upstream

    async def _call(self, coroutine: Awaitable[T]) -> T:
        import httpx
        import ollama

        try:
            return await coroutine
        except (ConnectionError, httpx.TransportError, ollama.ResponseError, ValueError) as exc:
            raise translate(exc, self._settings) from exc

    async def available(self) -> list[ServedModel]:
        response = await self._call(self._client.list())
        return [ServedModel(str(m.model), int(m.size or 0)) for m in response.models]

    async def running(self) -> list[ServedModel]:
        response = await self._call(self._client.ps())
        return [
            ServedModel(
                str(m.model),
                int(m.size or 0),
                int(m.size_vram) if m.size_vram is not None else None,
                m.expires_at.isoformat() if m.expires_at else None,
            )
            for m in response.models
        ]

    async def pull(self, model: str) -> AsyncIterator[tuple[str, int, int]]:
        """Yield (status, completed bytes, total bytes) while the server downloads."""
        import httpx
        import ollama

        try:
            async for part in await self._client.pull(model, stream=True):
                yield str(part.status or ""), int(part.completed or 0), int(part.total or 0)
        except (ConnectionError, httpx.TransportError, ollama.ResponseError, ValueError) as exc:
            settings = self._settings.model_copy(update={"model": model})
            raise translate(exc, settings) from exc
