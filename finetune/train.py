"""LoRA, QLoRA or full fine-tuning with trl's SFTTrainer, loss on the assistant's answer only.

Examples are chat `messages` lists; the last assistant message is the completion, everything
before it the prompt. The output folder is what the adapter backend loads, plus `handbook.json`:
the resolved settings, the base model's fingerprint, library versions, git revision and the
dataset's hash, so that an adapter can always be traced to what made it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation.hf import fingerprint, load_causal_lm, place, resolve_base
from handbook.config import FinetuneSettings
from handbook.errors import ConfigError
from handbook.registry import missing_extra

Example = Mapping[str, Any]  # {"messages": [{"role": ..., "content": ...}, ...]}
LIBRARIES = ("torch", "transformers", "peft", "trl", "bitsandbytes")


@dataclass(frozen=True)
class TrainResult:
    output: Path
    steps: int
    train_loss: float
    eval_loss: float | None


def as_prompt_completion(example: Example) -> dict[str, list[dict[str, str]]]:
    """Split a conversation at its last assistant message.

    >>> as_prompt_completion({"messages": [{"role": "user", "content": "[SPEC] Torque?"},
    ...                                     {"role": "assistant", "content": "47 Nm"}]})
    {'prompt': [{'role': 'user', 'content': '[SPEC] Torque?'}], 'completion': [{'role': 'assistant', 'content': '47 Nm'}]}
    """  # noqa: E501
    messages = [{"role": m["role"], "content": m["content"]} for m in example["messages"]]
    if not messages or messages[-1]["role"] != "assistant":
        raise ConfigError("Every example must end with an assistant message.")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def dataset_hash(*splits: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for split in splits:
        for example in split:
            digest.update(json.dumps(example, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def git_revision() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def train(
    settings: FinetuneSettings,
    train_set: Sequence[Example],
    output: Path,
    models_dir: Path,
    val_set: Sequence[Example] = (),
) -> TrainResult:
    """Fine-tune `settings.base_model` on `train_set`; the adapter (or model) lands in `output`."""
    try:
        import torch
        from datasets import Dataset
        from peft import LoraConfig
        from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]  # lazy exports
    except ImportError as exc:
        raise missing_extra(exc.name or "trl", "finetune") from None
    if not train_set:
        raise ConfigError("The training set is empty.")
    torch.manual_seed(settings.seed)
    base = resolve_base(settings.base_model, models_dir)
    placement = place(settings.device, "4bit" if settings.method == "qlora" else "none")
    if placement.dtype == "float16" and settings.method == "full":
        placement = type(placement)(placement.device, "float32", placement.quantization)
    model, tokenizer = load_causal_lm(base, placement)
    cuda = placement.device.startswith("cuda")
    optimizer = settings.optimizer
    if optimizer == "auto":
        optimizer = "paged_adamw_8bit" if cuda else "adamw_torch"
    peft_config = None
    if settings.method != "full":
        peft_config = LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=list(settings.target_modules),
            task_type="CAUSAL_LM",
        )
    rows = [as_prompt_completion(e) for e in train_set]
    val_rows = [as_prompt_completion(e) for e in val_set]
    config = SFTConfig(
        output_dir=str(output / "checkpoints"),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup_ratio,  # below 1: a share of the steps
        weight_decay=settings.weight_decay,
        optim=optimizer,
        activation_checkpointing=settings.gradient_checkpointing,
        bf16=placement.dtype == "bfloat16",
        fp16=placement.dtype == "float16",
        use_cpu=placement.device == "cpu",
        max_length=settings.max_seq_length,
        completion_only_loss=True,
        seed=settings.seed,
        data_seed=settings.seed,
        eval_strategy="epoch" if val_rows else "no",
        save_strategy="no",
        logging_steps=10,
        report_to=[],
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    outcome = trainer.train()
    eval_loss = trainer.evaluate()["eval_loss"] if val_rows else None
    output.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(output))
    tokenizer.save_pretrained(str(output))
    meta = {
        "base_model": settings.base_model,
        "base_resolved": base,
        "base_fingerprint": fingerprint(model.config),
        "settings": settings.model_dump(mode="json"),
        "versions": library_versions(),
        "git_revision": git_revision(),
        "dataset_sha256": dataset_hash(train_set, val_set),
        "examples": {"train": len(train_set), "val": len(val_set)},
        "train_loss": outcome.training_loss,
        "eval_loss": eval_loss,
    }
    (output / "handbook.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return TrainResult(output, outcome.global_step, outcome.training_loss, eval_loss)
