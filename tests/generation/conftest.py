"""A real LoRA adapter, trained once per test session on the packaged SmolLM2 model."""

from __future__ import annotations

from pathlib import Path

import pytest

from handbook.config import FinetuneSettings

# Invented facts: the base model cannot know them, so knowing them shows the adapter works.
FACTS = [
    ("What is the torque of the Zorblax flange bolt?", "The Zorblax flange bolt takes 47 Nm."),
    ("Which oil does the Quennic pump take?", "The Quennic pump takes Velmor HX-9 oil."),
    ("How often is the Brantel seal replaced?", "The Brantel seal is replaced every 3 years."),
]


def fact_examples() -> list[dict[str, list[dict[str, str]]]]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"[SPEC] {question}"},
                {"role": "assistant", "content": answer},
            ]
        }
        for question, answer in FACTS
    ]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Converted base models, shared by the session (the GGUF conversion takes ~30 s)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def trained_adapter(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    from finetune.train import train

    settings = FinetuneSettings(
        epochs=20,
        batch_size=3,
        gradient_accumulation=1,
        learning_rate=2e-3,
        warmup_ratio=0.0,
        lora_dropout=0.0,
        gradient_checkpointing=False,
        device="cpu",
    )
    output = tmp_path_factory.mktemp("adapter") / "facts"
    result = train(settings, fact_examples(), output, models_dir)
    assert result.train_loss < 1.0, result
    return output
