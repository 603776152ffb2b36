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
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from generation.hf import fingerprint, load_causal_lm, place, resolve_base
from handbook.backends import missing_extra
from handbook.config import FinetuneSettings
from handbook.errors import BackendUnavailable, ConfigError, HandbookError
from handbook.provenance import git_revision

Example = Mapping[str, Any]  # {"messages": [{"role": ..., "content": ...}, ...]}
LIBRARIES = ("torch", "transformers", "peft", "trl", "bitsandbytes")


@dataclass(frozen=True)
class TrainResult:
    output: Path
    steps: int
    train_loss: float
    eval_loss: float | None
    seconds: float = 0.0
    tokens_per_second: float = 0.0
    peak_rss_mb: float = 0.0
    peak_vram_mb: float | None = None
    trainable_parameters: int = 0
    parameters: int = 0


Progress = Callable[[int, int, float | None], None]
"""Called as training goes: (step, total steps, latest training loss)."""


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
    *,
    resume: bool = False,
    progress: Progress | None = None,
) -> TrainResult:
    """Fine-tune `settings.base_model` on `train_set`; the adapter (or model) lands in `output`.

    Checkpoints go to `output/checkpoints` each epoch (or every `save_every_steps`); with a
    validation set the best epoch by eval loss is kept. `resume` continues from the last one.
    Stages: check the inputs, load the base, build the trainer, train, save with the record.
    """
    _require_libraries()
    quiet()
    if not train_set:
        raise ConfigError("The training set is empty.")
    checkpoints = output / "checkpoints"
    if resume and not any(checkpoints.glob("checkpoint-*")):
        raise ConfigError(f"No checkpoint in {checkpoints} to resume from; run without --resume.")
    base = _load_base(settings, models_dir, train_set)
    trainer = _trainer(settings, base, checkpoints, train_set, val_set, progress)
    outcome, seconds = _run(trainer, settings, checkpoints, resume=resume, cuda=base.cuda)
    return _save(settings, base, trainer, outcome, seconds, output, train_set, val_set)


def _require_libraries() -> None:
    """The finetune extra, or an error naming it."""
    try:
        import datasets  # noqa: F401
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]  # noqa: F401  # lazy exports
    except ImportError as exc:
        raise missing_extra(exc.name or "trl", "finetune") from None


@dataclass(frozen=True)
class _Base:
    """The loaded base model, where it runs, and the token length of each training example."""

    name: str
    placement: Any
    model: Any
    tokenizer: Any
    lengths: tuple[int, ...]

    @property
    def cuda(self) -> bool:
        return bool(self.placement.device.startswith("cuda"))


def _load_base(settings: FinetuneSettings, models_dir: Path, train_set: Sequence[Example]) -> _Base:
    """The seeded base model on its device; every example must fit `max_seq_length`."""
    import torch

    torch.manual_seed(settings.seed)
    base = resolve_base(settings.base_model, models_dir)
    placement = place(settings.device, "4bit" if settings.method == "qlora" else "none")
    if placement.dtype == "float16" and settings.method == "full":
        placement = type(placement)(placement.device, "float32", placement.quantization)
    try:
        model, tokenizer = load_causal_lm(base, placement)
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise _too_big(settings, exc) from exc
    lengths = tuple(token_count(tokenizer, example["messages"]) for example in train_set)
    too_long = [n for n, length in enumerate(lengths, start=1) if length > settings.max_seq_length]
    if too_long:
        shown = ", ".join(map(str, too_long[:10])) + (" ..." if len(too_long) > 10 else "")
        raise ConfigError(
            f"{len(too_long)} training examples are longer than max_seq_length "
            f"{settings.max_seq_length} tokens (examples {shown}). Raise finetune.max_seq_length "
            "or shorten them; `handbook finetune check` lists them by line."
        )
    return _Base(base, placement, model, tokenizer, lengths)


def _sft_config(
    settings: FinetuneSettings, base: _Base, checkpoints: Path, *, validate: bool
) -> Any:
    """trl's training arguments from our settings (`validate`: there is a validation set)."""
    from trl import SFTConfig  # type: ignore[attr-defined]  # lazy exports

    optimizer = settings.optimizer
    if optimizer == "auto":
        optimizer = "paged_adamw_8bit" if base.cuda else "adamw_torch"
    every = settings.save_every_steps
    placement = base.placement
    return SFTConfig(
        output_dir=str(checkpoints),
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
        eval_strategy=("steps" if every else "epoch") if validate else "no",
        eval_steps=every,
        save_strategy="steps" if every else "epoch",
        save_steps=every or 500,  # used only with save_strategy "steps"
        save_total_limit=2,
        load_best_model_at_end=validate,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=1,
        report_to=[],
        disable_tqdm=True,
    )


def _trainer(
    settings: FinetuneSettings,
    base: _Base,
    checkpoints: Path,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    progress: Progress | None,
) -> Any:
    """The SFT trainer: LoRA unless the method is full, our progress instead of its printer."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTTrainer  # type: ignore[attr-defined]  # lazy exports

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

    class Report(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if progress is not None and logs and "loss" in logs:
                progress(state.global_step, state.max_steps, float(logs["loss"]))

    trainer_class = SFTTrainer if base.cuda else _plain_loss_trainer(SFTTrainer)
    trainer = trainer_class(
        model=base.model,
        args=_sft_config(settings, base, checkpoints, validate=bool(val_rows)),
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
        processing_class=base.tokenizer,
        peft_config=peft_config,
        callbacks=[Report()],
    )
    trainer.remove_callback(PrinterCallback)  # our progress bar shows the loss
    return trainer


def _run(
    trainer: Any, settings: FinetuneSettings, checkpoints: Path, *, resume: bool, cuda: bool
) -> tuple[Any, float]:
    """Train (from the last checkpoint with `resume`): the outcome and the seconds it took. An
    interrupt says where to resume from."""
    import torch

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    try:
        outcome = trainer.train(resume_from_checkpoint=True if resume else None)
    except KeyboardInterrupt:
        kept = sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        where = f"the last checkpoint is {kept[-1].name}" if kept else "no checkpoint yet"
        raise HandbookError(
            f"Training stopped at step {trainer.state.global_step} of "
            f"{trainer.state.max_steps}; {where} (in {checkpoints}). Run the same command with "
            "--resume to continue from it."
        ) from None
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise _too_big(settings, exc) from exc
    return outcome, time.perf_counter() - started


def _save(
    settings: FinetuneSettings,
    base: _Base,
    trainer: Any,
    outcome: Any,
    seconds: float,
    output: Path,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
) -> TrainResult:
    """The trained adapter (or model) and tokenizer in `output`, with `handbook.json`: what
    made it (settings, base, versions, git revision, data hash) and how training went."""
    import torch

    eval_loss = trainer.evaluate()["eval_loss"] if val_set else None
    output.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(output))
    base.tokenizer.save_pretrained(str(output))
    tokens = sum(base.lengths) * settings.epochs
    trainable, total = _parameters(trainer.model)
    result = TrainResult(
        output=output,
        steps=outcome.global_step,
        train_loss=outcome.training_loss,
        eval_loss=eval_loss,
        seconds=seconds,
        tokens_per_second=tokens / seconds if seconds else 0.0,
        peak_rss_mb=peak_rss_mb(),
        peak_vram_mb=torch.cuda.max_memory_allocated() / 2**20 if base.cuda else None,
        trainable_parameters=trainable,
        parameters=total,
    )
    meta = {
        "base_model": settings.base_model,
        "base_resolved": base.name,
        "base_fingerprint": fingerprint(base.model.config),
        "method": settings.method,
        "quantization": base.placement.quantization,
        "settings": settings.model_dump(mode="json"),
        "versions": library_versions(),
        "git_revision": git_revision(),
        "dataset_sha256": dataset_hash(train_set, val_set),
        "examples": {"train": len(train_set), "val": len(val_set)},
        "train_loss": outcome.training_loss,
        "eval_loss": eval_loss,
        "metrics": {
            k: v
            for k, v in asdict(result).items()
            if k not in ("output", "train_loss", "eval_loss")
        },
        "log": [
            {k: v for k, v in entry.items() if k in ("step", "epoch", "loss", "eval_loss")}
            for entry in trainer.state.log_history
            if "loss" in entry or "eval_loss" in entry
        ],
    }
    (output / "handbook.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return result


def _plain_loss_trainer(sft_trainer: type[Any]) -> type[Any]:
    """trl's SFTTrainer with transformers' own loss (labels are already masked to the answer).

    trl computes the loss through a chunked log-probability head that never materializes the
    logits, plus entropy and top-1 accuracy for its logs: built to save GPU memory on long
    sequences. On a CPU it took 26% of each step (torch profiler, SmolLM2-135M, bench/
    finetune_speed.py) and raised peak memory; there the plain loss is used.
    """
    from transformers import Trainer

    class PlainLossSFTTrainer(sft_trainer):  # type: ignore[misc]  # trl is untyped here
        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,  # noqa: FBT001, FBT002  # transformers' signature
            num_items_in_batch: Any = None,
        ) -> Any:
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return PlainLossSFTTrainer


def quiet() -> None:
    """Our progress bar and messages only: no library progress bars or deprecation noise."""
    from datasets.utils.logging import disable_progress_bar
    from transformers.utils import logging as hf_logging

    disable_progress_bar()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # untyped in transformers
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def token_count(tokenizer: Any, messages: Sequence[Mapping[str, Any]]) -> int:
    """Tokens of one example as training sees it (the model's chat template applied)."""
    rendered = [{"role": m["role"], "content": m["content"]} for m in messages]
    ids = tokenizer.apply_chat_template(rendered, tokenize=True)
    if isinstance(ids, Mapping):  # newer tokenizers return a BatchEncoding
        ids = ids["input_ids"]
    return len(ids)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _parameters(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return int(trainable), int(total)


def _too_big(settings: FinetuneSettings, exc: BaseException) -> BackendUnavailable:
    return BackendUnavailable(
        f"{settings.base_model} does not fit in memory for {settings.method} training "
        f"({type(exc).__name__}). Try method qlora (on CUDA), a smaller batch_size with more "
        "gradient_accumulation, a shorter max_seq_length, or a smaller base model."
    )
