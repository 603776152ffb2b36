"""Settings of fine-tuning (`handbook finetune`); `handbook.config` assembles it into Settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from handbook.config_base import Section


class FinetuneSettings(Section):
    base_model: str = Field(
        "smollm2",
        description="Model to fine-tune: 'smollm2' (packaged), a .gguf file, a local folder or a "
        "Hugging Face id (e.g. meta-llama/Llama-3.2-3B-Instruct).",
    )
    method: Literal["lora", "qlora", "full"] = Field(
        "lora", description="lora; qlora (4-bit NF4 base through bitsandbytes); full (all weights)."
    )
    max_seq_length: int = Field(512, ge=16, description="Longer examples are reported, not cut.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling (alpha / r).")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    target_modules: tuple[str, ...] = Field(
        ("q_proj", "k_proj", "v_proj", "o_proj"), description="Layers that get LoRA weights."
    )
    epochs: float = Field(3.0, gt=0, description="Passes over the training set.")
    batch_size: int = Field(8, ge=1, description="Examples per device step.")
    gradient_accumulation: int = Field(2, ge=1, description="Steps per optimizer update.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Share of steps warming up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    optimizer: str = Field(
        "auto", description="auto = paged_adamw_8bit on CUDA, adamw_torch elsewhere."
    )
    gradient_checkpointing: bool = Field(default=True, description="Trade compute for memory.")
    save_every_steps: int | None = Field(
        None, ge=1, description="Checkpoint (and evaluate) every N steps; default: each epoch."
    )
    device: str = Field("auto", description="auto (CUDA, then MPS, then CPU), cuda, mps, cpu.")
    seed: int = Field(42, description="Seed for the split, initialisation and data order.")
