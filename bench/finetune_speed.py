"""Training speed and memory: `handbook finetune train` (trl SFTTrainer, loss on the answers)
vs a plain transformers `Trainer` + peft loop on the same model, data and settings
(targets: tokens/s >= 1.0x the plain loop, peak memory <= 1.0x).

Each run is its own process, so that its peak RSS is its own; runs alternate (plain, Handbook)
for `--rounds` and the medians are compared. Tokens are counted the same way for both (the
chat-templated examples) and divided by the time spent inside training steps, measured by the
same callback in both loops; the wall time (set-up and Handbook's checkpoint at the end of each
epoch included) is shown beside it.

    python -m bench.finetune_speed [--examples 64] [--rounds 2] [--base smollm2]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

PARTS = ["Zorblax flange", "Quennic pump", "Brantel seal", "Velmor valve", "Kessin filter",
         "Dravo bearing", "Ostrel hose", "Mirvak sensor"]  # fmt: skip
PROPERTIES = [("torque", "Nm"), ("pressure", "bar"), ("interval", "km"), ("capacity", "l")]


def examples(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        part = PARTS[n % len(PARTS)]
        prop, unit = PROPERTIES[(n // len(PARTS)) % len(PROPERTIES)]
        value = rng.randint(2, 400)
        rows.append({"messages": [
            {"role": "user", "content": f"[SPEC] What is the {prop} of the {part} (variant {n})?"},
            {"role": "assistant", "content": f"The {prop} of the {part} (variant {n}) is {value} {unit}."},  # noqa: E501
        ]})  # fmt: skip
    return rows


def settings_for(base: str) -> Any:
    from handbook.config import FinetuneSettings

    return FinetuneSettings(
        base_model=base, epochs=1, batch_size=8, gradient_accumulation=1, device="cpu",
        gradient_checkpointing=True, warmup_ratio=0.0,
    )  # fmt: skip


def run_handbook(data: list[dict[str, Any]], base: str, models: Path, out: Path) -> dict[str, Any]:
    from finetune.train import peak_rss_mb, train

    result = train(settings_for(base), data, out, models)
    return {"seconds": result.seconds, "tokens_per_second": result.tokens_per_second,
            "peak_rss_mb": peak_rss_mb(), "loss": result.train_loss}  # fmt: skip


def run_plain(data: list[dict[str, Any]], base: str, models: Path, out: Path) -> dict[str, Any]:
    """The loop one writes by hand: tokenize with the chat template, mask the prompt, pad."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from finetune.train import peak_rss_mb, quiet, token_count
    from generation.hf import load_causal_lm, place, resolve_base

    quiet()
    settings = settings_for(base)
    torch.manual_seed(settings.seed)
    model, tokenizer = load_causal_lm(resolve_base(base, models), place("cpu", "none"))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = get_peft_model(model, LoraConfig(
        r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
        target_modules=list(settings.target_modules), task_type="CAUSAL_LM",
    ))  # fmt: skip

    def encode(example: dict[str, Any]) -> dict[str, list[int]]:
        messages = example["messages"]
        prompt = tokenizer.apply_chat_template(
            messages[:-1], add_generation_prompt=True, tokenize=True
        )
        full = tokenizer.apply_chat_template(messages, tokenize=True)
        prompt = prompt["input_ids"] if isinstance(prompt, Mapping) else prompt
        full = full["input_ids"] if isinstance(full, Mapping) else full
        full = list(full)[: settings.max_seq_length]
        labels = [-100] * len(prompt) + full[len(prompt) :]
        return {"input_ids": full, "attention_mask": [1] * len(full), "labels": labels}

    dataset = Dataset.from_list(data).map(encode, remove_columns=["messages"])
    args = TrainingArguments(
        output_dir=str(out), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate, weight_decay=settings.weight_decay,
        optim="adamw_torch", gradient_checkpointing=settings.gradient_checkpointing,
        use_cpu=True, seed=settings.seed, save_strategy="no", report_to=[],
        disable_tqdm=True, logging_steps=1,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=dataset,
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True))  # fmt: skip
    started = time.perf_counter()
    outcome = trainer.train()
    seconds = time.perf_counter() - started
    tokens = sum(token_count(tokenizer, e["messages"]) for e in data) * settings.epochs
    return {"seconds": seconds, "tokens_per_second": tokens / seconds,
            "peak_rss_mb": peak_rss_mb(), "loss": outcome.training_loss}  # fmt: skip


class StepTimer:
    """Adds up the time spent inside training steps (forward, backward, optimizer), the same
    way for both loops; checkpoint writes and set-up fall outside."""

    seconds = 0.0

    @classmethod
    def attach(cls) -> None:
        import transformers

        class Callback(transformers.TrainerCallback):
            def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                self.started = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                cls.seconds += time.perf_counter() - self.started

        original = transformers.Trainer.__init__

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), Callback()]
            original(self, *args, **kwargs)

        transformers.Trainer.__init__ = init  # type: ignore[method-assign]


def child(kind: str, base: str, count: int, models: str, out: str) -> None:
    from finetune.train import token_count
    from generation.hf import resolve_base

    StepTimer.attach()
    run = run_handbook if kind == "handbook" else run_plain
    data = examples(count)
    result = run(data, base, Path(models), Path(out))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_base(base, Path(models)))
    tokens = sum(token_count(tokenizer, e["messages"]) for e in data)  # 1 epoch
    result["step_seconds"] = StepTimer.seconds
    result["tokens_per_second"] = tokens / StepTimer.seconds
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--base", default="smollm2")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "COUNT", "MODELS", "OUT"))
    args = parser.parse_args()
    if args.child:
        kind, count, models, out = args.child
        child(kind, args.base, int(count), models, out)
        return
    results: dict[str, list[dict[str, Any]]] = {"plain": [], "handbook": []}
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        for round_ in range(args.rounds):
            for kind in ("plain", "handbook"):
                out = Path(tmp) / f"{kind}-{round_}"
                done = subprocess.run(
                    [sys.executable, "-m", "bench.finetune_speed", "--base", args.base,
                     "--child", kind, str(args.examples), str(models), str(out)],
                    cwd=ROOT, capture_output=True, text=True, check=True,
                )  # fmt: skip
                line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
                results[kind].append(json.loads(line[7:]))
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in results.items()}
    speed = med["handbook"]["tokens_per_second"] / med["plain"]["tokens_per_second"]
    memory = med["handbook"]["peak_rss_mb"] / med["plain"]["peak_rss_mb"]
    print(f"LoRA training on {args.base}, CPU, {args.examples} examples, 1 epoch, batch 8, "
          f"medians of {args.rounds} runs each\n")  # fmt: skip
    print("| loop | wall s | in steps s | tokens/s (in steps) | peak RSS MB | final loss |")
    print("|---|---|---|---|---|---|")
    for kind, label in (("plain", "transformers Trainer + peft"), ("handbook", "Handbook")):
        m = med[kind]
        figures = (m["seconds"], m["step_seconds"], m["tokens_per_second"])
        print(f"| {label} | " + " | ".join(f"{x:.1f}" for x in figures)
              + f" | {m['peak_rss_mb']:.0f} | {m['loss']:.3f} |")  # fmt: skip
    print("\n| check | measured | target | |")
    print("|---|---|---|---|")
    print(f"| speed vs plain loop | {speed:.2f}x | >= 1.0x | "
          f"{'ok' if speed >= 1.0 else 'MISSED'} |")  # fmt: skip
    print(f"| memory vs plain loop | {memory:.2f}x | <= 1.0x | "
          f"{'ok' if memory <= 1.0 else 'MISSED'} |")  # fmt: skip


if __name__ == "__main__":
    main()
