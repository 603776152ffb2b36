"""Transformers models for the adapter backend and for fine-tuning: where the base comes from,
which device and precision it runs in.

A base model is a packaged name ('smollm2'), a .gguf file, a local folder or a Hugging Face id.
transformers dequantizes a GGUF on every load (30 s for the 135M packaged model here, against
0.4 s from safetensors) and marks the result as quantized, which its Trainer refuses to train; so
a GGUF is converted once into a plain transformers folder under `models_dir` and used from there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from handbook.backends import missing_extra
from handbook.errors import ConfigError

Quantization = Literal["auto", "none", "4bit", "8bit"]
FINGERPRINT_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")


@dataclass(frozen=True)
class Placement:
    device: str  # cuda, mps or cpu
    dtype: str  # float32, float16 or bfloat16
    quantization: Literal["none", "4bit", "8bit"]


def place(device: str = "auto", quantization: Quantization = "auto") -> Placement:
    """Device and precision: CUDA, then MPS, then CPU; 4-bit on CUDA when bitsandbytes is there."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("chat.device is 'cuda' but torch sees no CUDA GPU; use 'auto' or 'cpu'.")
    have_bnb = _has_module("bitsandbytes")
    if quantization == "auto":
        quantization = "4bit" if device.startswith("cuda") and have_bnb else "none"
    elif quantization != "none" and not have_bnb:
        raise missing_extra("bitsandbytes", "gpu")
    if device.startswith("cuda"):
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    elif device == "mps":
        dtype = "float16"
    else:
        dtype = "float32"
    return Placement(device, dtype, quantization)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def resolve_base(model: str, models_dir: Path) -> str:
    """A folder or hub id that `from_pretrained` loads without dequantizing anything."""
    from generation.llamacpp import PACKAGED, packaged_gguf

    if model in PACKAGED:
        return str(materialize_gguf(packaged_gguf(PACKAGED[model]), models_dir))
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"Base model file {path} does not exist.")
        return str(materialize_gguf(path, models_dir))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path} is not a transformers model folder (no config.json).")
        return str(path)
    if path.is_absolute() or model.startswith("."):
        raise ConfigError(f"Base model folder {path} does not exist.")
    return model  # a hub id: from_pretrained finds it in the local Hugging Face cache


def materialize_gguf(gguf: Path, models_dir: Path) -> Path:
    """Convert a GGUF model into a transformers folder once; later calls return the folder."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    target = models_dir / f"{gguf.stem}-{key.hexdigest()[:12]}"
    if (target / "config.json").is_file():
        return target
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise missing_extra("transformers", "adapter") from None
    if not _has_module("gguf"):
        raise missing_extra("gguf", "adapter")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except (ValueError, OSError) as exc:
        raise ConfigError(f"transformers cannot load {gguf}: {exc}") from exc
    # The weights are plain floats now; drop the marker that says "quantized with GGUF".
    model.hf_quantizer = None  # type: ignore[assignment]  # the attribute is optional
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / "handbook-source.json").write_text(json.dumps({"gguf": str(gguf)}) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)  # atomic: a killed conversion leaves only the .partial folder
    return target


def fingerprint(config: Any) -> dict[str, Any]:
    """What must match between a base model and an adapter trained on it."""
    return {key: getattr(config, key, None) for key in FINGERPRINT_KEYS}


def load_causal_lm(base: str, placement: Placement) -> tuple[Any, Any]:
    """(model, tokenizer) for `base` as resolved by `resolve_base`."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise missing_extra("transformers", "adapter") from None
    kwargs: dict[str, Any] = {"dtype": getattr(torch, placement.dtype)}
    if placement.quantization != "none":
        from transformers import BitsAndBytesConfig

        if placement.quantization == "4bit":
            kwargs["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=kwargs["dtype"],
                bnb_4bit_use_double_quant=True,
            )
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
                load_in_8bit=True
            )
        kwargs["device_map"] = {"": placement.device}
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    except OSError as exc:
        raise ConfigError(
            f"Cannot load the base model {base!r}: {exc}. For a Hugging Face id, download it "
            f"first (`hf download {base}`) or set chat.model to a local folder or .gguf file."
        ) from exc
    if placement.quantization == "none":
        model.to(placement.device)  # type: ignore[arg-type]  # a device name is accepted
    return model, tokenizer
