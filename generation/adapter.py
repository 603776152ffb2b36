"""Answers from a base model plus a LoRA adapter (transformers + peft), on CUDA, MPS or CPU.

The adapter folder is what peft's `save_pretrained` writes (adapter_config.json and the weights);
`handbook finetune train` adds `handbook.json` with the base model's fingerprint, which is
checked before loading so that an adapter on the wrong base fails with a clear message instead
of shape errors or, worse, silent nonsense.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from generation.hf import fingerprint, load_causal_lm, place, resolve_base
from generation.prompts import STOP
from handbook.backends import missing_extra
from handbook.config import ChatSettings
from handbook.errors import BackendUnavailable, ConfigError
from handbook.types import Message


def check_adapter_folder(adapter: Path, base_config: Any, base_name: str) -> None:
    """Raise ConfigError when `adapter` is not a LoRA folder or was trained on another base."""
    if not (adapter / "adapter_config.json").is_file():
        raise ConfigError(
            f"{adapter} is not a LoRA adapter folder (no adapter_config.json). Point chat.adapter "
            "at the folder `handbook finetune train` wrote."
        )
    meta_file = adapter / "handbook.json"
    if not meta_file.is_file():
        return  # trained elsewhere: peft's own checks are all there is
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    expected = meta.get("base_fingerprint")
    actual = fingerprint(base_config)
    if expected and expected != actual:
        differing = ", ".join(
            f"{key} {expected.get(key)} vs {actual.get(key)}"
            for key in actual
            if expected.get(key) != actual.get(key)
        )
        raise ConfigError(
            f"The adapter {adapter} was trained on {meta.get('base_model')!r}, which does not "
            f"match the base model {base_name!r} ({differing}). Set chat.model to "
            f"{meta.get('base_model')!r}."
        )


def with_adapter(model: Any, adapter: Path, base_name: str) -> Any:
    """`model` with the peft adapter folder `adapter` (checked against the base first)."""
    try:
        from peft import PeftModel
    except ImportError:
        raise missing_extra("peft", "adapter") from None
    check_adapter_folder(adapter, model.config, base_name)
    try:
        return PeftModel.from_pretrained(model, str(adapter))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"The adapter {adapter} does not fit the base model {base_name!r}: "
            f"{str(exc).splitlines()[0]}"
        ) from exc


class PeftChat:
    """`chat.model` (a base, or a fully fine-tuned model folder) with the LoRA adapter
    `chat.adapter` when one is set."""

    def __init__(self, settings: ChatSettings, models_dir: Path) -> None:
        self._settings = settings
        self._models_dir = models_dir
        self.adapter = Path(settings.adapter).expanduser() if settings.adapter else None
        self.name = (
            f"adapter:{self.adapter.name}@{settings.model}"
            if self.adapter
            else f"transformers:{settings.model}"
        )
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = asyncio.Lock()
        self.load_seconds: float | None = None

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._model is not None:
                return self._model, self._tokenizer
            if self.adapter is not None and not self.adapter.is_dir():
                raise ConfigError(f"The adapter folder {self.adapter} does not exist.")
            started = time.perf_counter()
            base = resolve_base(self._settings.model, self._models_dir)
            placement = place(self._settings.device, self._settings.quantization)
            model, tokenizer = load_causal_lm(base, placement)
            if self.adapter is not None:
                model = with_adapter(model, self.adapter, self._settings.model)
                if placement.quantization == "none":
                    # Fold the LoRA weights into the base: same outputs, fewer matmuls per layer.
                    model = model.merge_and_unload()
            model.eval()
            self._model, self._tokenizer = model, tokenizer
            self.load_seconds = time.perf_counter() - started
            return model, tokenizer

    async def load(self) -> None:
        await asyncio.to_thread(self._load)

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        from transformers import StoppingCriteria, TextIteratorStreamer

        model, tokenizer = await asyncio.to_thread(self._load)
        inputs = tokenizer.apply_chat_template(
            [{"role": str(m.role), "content": m.content} for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        ).to(model.device)
        cancel = threading.Event()

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return cancel.is_set()

        streamer = TextIteratorStreamer(
            tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=self._settings.timeout_s
        )
        sampling = self._settings.temperature > 0
        options: dict[str, Any] = {
            **inputs,
            "max_new_tokens": self._settings.max_tokens,
            "do_sample": sampling,
            "streamer": streamer,
            "stopping_criteria": [Cancelled()],
            "stop_strings": STOP,
            "tokenizer": tokenizer,
            "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
        }
        if sampling:
            options["temperature"] = self._settings.temperature
        errors: list[BaseException] = []

        def work() -> None:
            import torch

            torch.manual_seed(self._settings.seed)
            try:
                with torch.inference_mode():
                    model.generate(**options)
            except Exception as exc:  # forwarded to the consumer below
                errors.append(exc)
                streamer.end()  # type: ignore[no-untyped-call]  # unannotated upstream

        async with self._generate_lock:
            worker = asyncio.ensure_future(asyncio.to_thread(work))
            deadline = time.monotonic() + self._settings.timeout_s
            pieces = iter(streamer)
            try:
                while True:
                    try:
                        piece = await asyncio.to_thread(next, pieces, None)
                    except queue.Empty:
                        piece = ""  # no token within timeout_s: the deadline below applies
                    if piece is None:
                        break
                    if piece:
                        yield _cut_stop(piece)
                    if time.monotonic() > deadline:
                        raise BackendUnavailable(
                            f"The model did not finish within {self._settings.timeout_s:g} s "
                            "(chat.timeout_s); try fewer sources (-k) or a smaller max_tokens."
                        )
                if errors:
                    raise BackendUnavailable(f"Generation failed: {errors[0]}") from errors[0]
            finally:
                cancel.set()
                await asyncio.shield(worker)

    def count_tokens(self, text: str) -> int:
        _, tokenizer = self._load()
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    async def close(self) -> None:
        self._model = self._tokenizer = None


def _cut_stop(piece: str) -> str:
    """generate() stops after a stop string; the string itself is not part of the answer."""
    for stop in STOP:
        if stop in piece:
            return piece.split(stop, 1)[0]
    return piece
