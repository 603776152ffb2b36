"""The adapter backend and the llama.cpp GGUF LoRA path, with a LoRA trained in this session on
the packaged SmolLM2 model (conftest.trained_adapter): answers change with the adapter."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from generation.base import CHAT_MODELS
from handbook.config import ChatSettings
from handbook.errors import ConfigError
from handbook.types import Message, Role
from tests.generation.conftest import FACTS

pytestmark = pytest.mark.slow


def answer(settings: ChatSettings, models_dir: Path, question: str) -> str:
    async def work() -> str:
        chat = CHAT_MODELS.create(settings.backend, settings, models_dir)
        try:
            return "".join([p async for p in chat.stream([Message(Role.USER, question)])])
        finally:
            await chat.close()

    return asyncio.run(work())


def adapter_settings(adapter: Path, **extra: object) -> ChatSettings:
    return ChatSettings(
        backend="adapter", adapter=str(adapter), temperature=0.0, max_tokens=24, **extra
    )


def test_adapter_knows_the_trained_facts_and_the_base_does_not(
    trained_adapter: Path, models_dir: Path
) -> None:
    base = ChatSettings(backend="llamacpp", temperature=0.0, max_tokens=24)
    for (question, _), key in zip(FACTS, ["47 Nm", "Velmor HX-9", "3 years"], strict=True):
        tuned = answer(adapter_settings(trained_adapter), models_dir, f"[SPEC] {question}")
        assert key in tuned, (question, tuned)
        plain = answer(base, models_dir, f"[SPEC] {question}")
        assert key not in plain, (question, plain)


def test_adapter_folder_records_its_provenance(trained_adapter: Path) -> None:
    meta = json.loads((trained_adapter / "handbook.json").read_text())
    assert meta["base_model"] == "smollm2"
    assert meta["base_fingerprint"]["model_type"] == "llama"
    assert meta["versions"]["peft"] and meta["versions"]["trl"]
    assert len(meta["dataset_sha256"]) == 64
    assert meta["settings"]["lora_r"] == 16


def test_gguf_lora_served_by_llamacpp_knows_the_facts(
    trained_adapter: Path, models_dir: Path, tmp_path: Path
) -> None:
    from finetune.export import to_gguf_lora
    from generation.hf import resolve_base

    base_folder = Path(resolve_base("smollm2", models_dir))
    base_config = json.loads((base_folder / "config.json").read_text())
    lora = to_gguf_lora(trained_adapter, base_config, tmp_path / "facts.gguf")
    settings = ChatSettings(backend="llamacpp", adapter=str(lora), temperature=0.0, max_tokens=24)
    assert settings.uses_task_prefix
    tuned = answer(settings, models_dir, f"[SPEC] {FACTS[0][0]}")
    assert "47 Nm" in tuned


def test_adapter_on_another_base_model_is_refused(
    trained_adapter: Path, models_dir: Path, tmp_path: Path
) -> None:
    """A real, different base model (a tiny random Llama) against the SmolLM2 adapter."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from generation.hf import resolve_base

    other = tmp_path / "tiny-llama"
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=49152,
    )
    LlamaForCausalLM(config).save_pretrained(other)
    AutoTokenizer.from_pretrained(resolve_base("smollm2", models_dir)).save_pretrained(other)
    with pytest.raises(ConfigError, match=r"trained on 'smollm2'.*hidden_size 576 vs 64"):
        answer(adapter_settings(trained_adapter, model=str(other)), models_dir, "[SPEC] Hi")


def test_adapter_folder_errors_say_what_to_do(tmp_path: Path, models_dir: Path) -> None:
    # Without chat.adapter the backend serves chat.model itself (a fully fine-tuned folder).
    plain = CHAT_MODELS.create("adapter", ChatSettings(backend="adapter"), models_dir)
    assert plain.name == "transformers:smollm2"
    with pytest.raises(ConfigError, match="does not exist"):
        answer(adapter_settings(tmp_path / "missing"), models_dir, "Hi")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no adapter_config\.json"):
        answer(adapter_settings(tmp_path / "empty"), models_dir, "Hi")
    with pytest.raises(ConfigError, match="not a GGUF LoRA file"):
        CHAT_MODELS.create("llamacpp", ChatSettings(adapter=str(tmp_path / "empty")), models_dir)


def test_base_model_errors_say_what_to_do(tmp_path: Path) -> None:
    from generation.hf import resolve_base

    with pytest.raises(ConfigError, match="does not exist"):
        resolve_base(str(tmp_path / "missing.gguf"), tmp_path)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match=r"no config\.json"):
        resolve_base(str(tmp_path / "folder"), tmp_path)
    assert resolve_base("meta-llama/Llama-3.2-3B-Instruct", tmp_path).startswith("meta-llama/")


def test_cpu_placement_is_full_precision() -> None:
    from generation.hf import place

    placement = place("cpu", "auto")
    assert (placement.device, placement.dtype, placement.quantization) == ("cpu", "float32", "none")
