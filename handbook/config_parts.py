"""Settings sections of the API, indexing and fine-tuning, and the base of every section
(`handbook.config` assembles them into `Settings` and re-exports them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class IndexSettings(Section):
    max_file_mb: float = Field(100.0, gt=0, description="Larger files are skipped and reported.")
    extensions: tuple[str, ...] = Field(
        (".pdf", ".html", ".htm", ".md", ".markdown", ".txt", ".docx"),
        description="File types that are indexed.",
    )
    max_unpacked_mb: float = Field(
        256.0,
        gt=0,
        description="A DOCX whose parts unpack to more than this is skipped and reported (a zip "
        "bomb: a few hundred KB can unpack to gigabytes). Raise it for a genuine huge document.",
    )
    reader_memory_mb: int = Field(
        1024,
        ge=256,
        description="PDF and DOCX files, and other files over 256 KB, are read in a child process "
        "limited to this much memory (a crafted 30 KB PDF can take PDFium gigabytes); a file "
        "that needs more is skipped and reported.",
    )
    read_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Reading one file in that child process may take this long; a slower file "
        "(a pathological or malicious one) is skipped and reported.",
    )


class ApiSettings(Section):
    host: str = Field("127.0.0.1", description="`handbook serve` listens here.")
    port: int = Field(8000, ge=1, le=65535, description="`handbook serve` port.")
    keys: tuple[str, ...] = Field(
        (),
        description="API keys (`Authorization: Bearer KEY`); when set, every route but the "
        "health checks and the web page needs one. Each key is its own user with the admin "
        "role (name users and give roles in api.keys_file). Env: HANDBOOK_API_KEYS=k1,k2.",
    )
    keys_file: Path | None = Field(
        None,
        description="A file of API keys, one per line: `KEY NAME ROLE` (a named user, ROLE "
        "reader or admin) or a plain `KEY` (its own user, admin); lines starting with # are "
        "comments. Accepted besides api.keys. It is re-read when it changes: delete a line and "
        "that key is refused from the next request on, without a restart. When set, keys are "
        "required even if the file holds none; `serve` does not start if it cannot be read or "
        "a line is malformed, and none of its keys is accepted while it is missing.",
    )
    max_upload_mb: float = Field(50.0, gt=0, description="Largest document upload.")
    max_body_kb: int = Field(256, ge=1, description="Largest JSON request body.")
    max_header_kb: int = Field(
        32, ge=1, description="Largest request head (request line and all headers); else 431."
    )
    max_headers: int = Field(100, ge=1, description="Most request headers; more get a 431.")
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A client must send a request's line and headers within this many seconds "
        "of connecting (or of the previous response); else the connection is closed.",
    )
    body_timeout_s: float = Field(
        120.0,
        gt=0,
        description="A request body must arrive completely within this many seconds, else 408. "
        "Raise it for large uploads over slow links.",
    )
    max_connections: int = Field(
        200, ge=1, description="Open connections served at once; more get a 503 at once."
    )
    max_concurrent_answers: int = Field(
        4, ge=1, description="Answers generated at once; more requests wait their turn."
    )
    queue_timeout_s: float = Field(
        60.0, gt=0, description="How long a request waits for its turn before a 503."
    )
    cors_origins: tuple[str, ...] = Field(
        (), description="Origins allowed by CORS (off when empty), e.g. http://localhost:3000."
    )
    preload: bool = Field(
        default=True, description="Load the chat model at start-up (`handbook serve`)."
    )

    @field_validator("keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
