"""Fine-tuning on the CPU with the packaged SmolLM2: prepare -> check -> train -> eval -> export,
and the trained fact served by llama.cpp (base + GGUF LoRA) where the base model lacks it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from handbook.config import ChatSettings, FinetuneSettings
from handbook.errors import ConfigError, HandbookError
from handbook.types import Message, Role

MANUAL = """# Zorblax Z-9 Service Manual

This manual covers the Zorblax Z-9 compact pump unit. All names and values are invented.

## 1 Technical Data

| Parameter | Value |
| --- | --- |
| Flange bolt torque | 47 Nm |
| Quennic pump oil | Velmor HX-9, 2.4 l |
| Brantel seal interval | 3 years |
| Maximum pressure | 135 bar |
| Motor power | 2.2 kW |
| Tank capacity | 18 l |
| Suction filter | 90 µm |
| Weight | 64 kg |
| Noise level | 68 dB(A) |
| Rated speed | 1450 rpm |

## 2 Replacing the Brantel seal

1. Switch off the unit and lock the main switch.
2. Drain the oil into a clean container.
3. Remove the four flange bolts and lift off the cover.
4. Replace the Brantel seal and tighten the flange bolts to 47 Nm.

## 3 How the Quennic pump works

The Quennic pump is an internal gear pump. It draws oil from the tank through the suction filter
and feeds the pressure line. A relief valve limits the pressure to 135 bar and protects the unit.
"""
FAST = {
    "epochs": 14,
    "batch_size": 8,
    "gradient_accumulation": 1,
    "learning_rate": 0.003,
    "warmup_ratio": 0.0,
    "lora_dropout": 0.0,
    "gradient_checkpointing": False,
    "device": "cpu",
}


def handbook(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    env["HANDBOOK_HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True,
        timeout=1200,
    )  # fmt: skip
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def answer(settings: ChatSettings, question: str) -> str:
    from generation.llamacpp import LlamaCppChat

    async def ask() -> str:
        chat = LlamaCppChat(settings)
        try:
            return "".join([p async for p in chat.stream([Message(Role.USER, question)])])
        finally:
            await chat.close()

    return asyncio.run(ask())


@pytest.mark.slow
def test_prepare_train_eval_export_serve_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    manuals = tmp_path / "manuals"
    manuals.mkdir()
    (manuals / "zorblax.md").write_text(MANUAL, encoding="utf-8")
    handbook(home, "index", str(manuals))
    data = tmp_path / "data"
    prepared = handbook(home, "finetune", "prepare", "--out", str(data)).stdout
    assert "SPEC 10" in prepared and "PROCEDURE 1" in prepared and "EXPLAIN 1" in prepared
    examples = [json.loads(line) for line in (data / "examples.jsonl").read_text().splitlines()]
    torque = next(e for e in examples if "flange bolt torque" in e["messages"][0]["content"])
    assert torque["messages"][1]["content"] == "Flange bolt torque: 47 Nm."
    assert torque["meta"]["section"] == "1 Technical Data"
    counts = {
        s: len((data / f"{s}.jsonl").read_text().splitlines()) for s in ("train", "val", "test")
    }
    assert counts == {"train": 10, "val": 1, "test": 1}
    # Train on every example (a fact to recall), validate and test on the held-out ones.
    (data / "train.jsonl").write_text((data / "examples.jsonl").read_text())
    config = tmp_path / "fast.yaml"
    config.write_text(json.dumps(FAST))
    checked = handbook(
        home, "finetune", "check", str(data), "--config", str(config), "--json", check=False
    )
    report = json.loads(checked.stdout)
    assert checked.returncode == 1 and len(report["duplicates"]) == 2, "val/test are in train now"
    assert report["examples"]["train"] == 12 and not report["too_long"]

    tuned = tmp_path / "tuned"
    trained = handbook(
        home, "finetune", "train", str(data), "--out", str(tuned), "--config", str(config)
    )
    assert "Saved to" in trained.stdout
    meta = json.loads((tuned / "handbook.json").read_text())
    assert meta["train_loss"] > 0 and meta["eval_loss"] is not None and meta["log"]
    assert meta["metrics"]["tokens_per_second"] > 0 and meta["metrics"]["trainable_parameters"] > 0
    assert meta["dataset_sha256"] and meta["versions"]["peft"]

    # Tested on the facts it was trained on: with one held-out example "tuned >= base" held
    # at 0 >= 0, whatever training did.
    spec = [e for e in examples if e["messages"][0]["content"].startswith("[SPEC]")][:3]
    (data / "test.jsonl").write_text("".join(json.dumps(e) + "\n" for e in spec))
    evaluated = handbook(
        home, "finetune", "eval", str(tuned), "--data", str(data), "--config", str(config), "--json"
    )
    rows = {row["task"]: row for row in json.loads(evaluated.stdout)["by_task"]}
    print("finetune eval:", rows["all"])
    assert rows["all"]["examples"] == len(spec) == 3  # all 10 here: base 0.0, tuned 1.0
    assert rows["all"]["tuned"] > rows["all"]["base"], "trained on these facts: better than base"
    assert rows["all"]["tuned"] >= 0.5, "it recalls most of what it was trained on"
    assert (tuned / "eval.json").is_file()

    export = tmp_path / "export"
    exported = handbook(
        home, "finetune", "export", str(tuned), "--out", str(export), "--name", "zorblax"
    ).stdout
    assert "ollama create zorblax -f" in exported
    modelfile = (export / "Modelfile").read_text()
    assert "ADAPTER ./adapter.gguf" in modelfile and modelfile.split("FROM ")[1].split()[
        0
    ].endswith(".gguf")

    question = torque["messages"][0]["content"]
    base = ChatSettings(temperature=0.0, max_tokens=24)
    served = base.model_copy(update={"adapter": str(export / "adapter.gguf")})
    assert "47" not in answer(base, question), "the base model does not know the fact"
    assert "47 Nm" in answer(served, question), "llama.cpp with the GGUF LoRA does"


def row(*messages: tuple[str, str]) -> str:
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in messages]})


def test_bad_datasets_are_reported_by_line(tmp_path: Path) -> None:
    from finetune.dataset import check

    good = row(("user", "[SPEC] Torque?"), ("assistant", "47 Nm"))
    lines = [
        good,
        "{not json",
        row(("user", "[SPEC] Torque?")),
        json.dumps({"messages": [{"content": "no role"}, {"role": "assistant", "content": "x"}]}),
        row(("user", "[WIRING] a?"), ("assistant", "b")),
        row(("user", "no prefix"), ("assistant", "b")),
        "",
        row(("user", "[EXPLAIN] " + "word " * 300), ("assistant", "long")),
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "test.jsonl").write_text(good + "\n")
    tasks = ["SPEC", "PROCEDURE", "EXPLAIN", "TROUBLESHOOT"]
    report = check(tmp_path, tasks, max_length=64, count_tokens=lambda m: sum(
        len(x["content"].split()) for x in m))  # fmt: skip
    problems = {p.line: p.message for p in report.problems}
    assert problems[2].startswith("not valid JSON")
    assert problems[3] == "the last message must be the assistant's answer"
    assert "no role" in problems[4]
    assert problems[5].startswith("unknown task prefix [WIRING]")
    assert "no task prefix" in problems[6]
    assert [(p.file, p.line) for p in report.too_long] == [("train.jsonl", 8)]
    assert report.duplicates == [("[SPEC] Torque?", ("train", "test"))]
    assert report.tasks["train"] == {"SPEC": 1, "EXPLAIN": 1} and not report.ok
    with pytest.raises(ConfigError, match=r"holds no train\.jsonl"):
        check(tmp_path / "nothing", tasks, 64)


@pytest.mark.slow
def test_interrupted_training_keeps_its_checkpoint_and_resumes(tmp_path: Path) -> None:
    from finetune.train import train
    from tests.generation.conftest import fact_examples

    settings = FinetuneSettings(**{**FAST, "epochs": 4, "batch_size": 3, "save_every_steps": 1})
    output = tmp_path / "run"
    models = tmp_path / "models"

    def ctrl_c_in_step_three(step: int, total: int, loss: float | None) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(HandbookError, match="--resume") as stopped:
        train(settings, fact_examples(), output, models, progress=ctrl_c_in_step_three)
    assert "step 3 of 4" in str(stopped.value) and "checkpoint-2" in str(stopped.value)
    assert (output / "checkpoints" / "checkpoint-2").is_dir(), "the checkpoint is kept"
    steps: list[int] = []
    result = train(settings, fact_examples(), output, models, resume=True,
                   progress=lambda step, total, loss: steps.append(step))  # fmt: skip
    assert result.steps == 4 and steps and min(steps) > 2, "continued after step 2"
    with pytest.raises(ConfigError, match="No checkpoint"):
        train(settings, fact_examples(), tmp_path / "fresh", models, resume=True)


@pytest.mark.slow
def test_qlora_trains_a_4bit_base_on_the_cpu(tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes", reason="QLoRA needs the `gpu` extra (bitsandbytes)")
    from finetune.train import train
    from tests.generation.conftest import fact_examples

    settings = FinetuneSettings(**{**FAST, "method": "qlora", "epochs": 2, "batch_size": 3})
    result = train(settings, fact_examples(), tmp_path / "qlora", tmp_path / "models")
    meta = json.loads((tmp_path / "qlora" / "handbook.json").read_text())
    assert meta["method"] == "qlora" and meta["quantization"] == "4bit"
    assert result.steps == 2 and 0 < result.train_loss < 10
    # 4-bit weights are stored two per byte: the base holds about half the LoRA run's numbers.
    assert result.parameters < 100_000_000 and result.trainable_parameters == 1_843_200
    assert (tmp_path / "qlora" / "adapter_model.safetensors").is_file()
