"""Export a peft LoRA adapter for llama.cpp (GGUF LoRA) and Ollama (Modelfile ADAPTER).

The GGUF LoRA layout is the one llama.cpp's `convert_lora_to_gguf.py` writes: per target layer
`blk.N.<tensor>.weight.lora_a` (r x in) and `.lora_b` (out x r), `general.type = adapter`,
`adapter.type = lora`, `adapter.lora.alpha`. Llama's GGUF stores the query and key projections
with their rows permuted for llama.cpp's rotary embedding (transformers undoes this when it
loads a GGUF), so the B matrices of q_proj and k_proj get the same permutation here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from handbook.backends import missing_extra
from handbook.errors import ConfigError

# transformers module name -> llama.cpp tensor name, for the Llama architecture.
LLAMA_TENSORS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_KEY = re.compile(r"layers\.(\d+)\.(.+)\.lora_([AB])\.weight$")


def llama_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's row permutation of q/k projections (convert_hf_to_gguf `LlamaModel.permute`).

    >>> llama_permute(np.arange(8).reshape(8, 1), 2).ravel().tolist()
    [0, 2, 1, 3, 4, 6, 5, 7]
    """
    shape = weights.shape
    return (
        weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:])
        .swapaxes(1, 2)
        .reshape(shape)
    )


def to_gguf_lora(adapter: Path, base_config: dict[str, Any], output: Path) -> Path:
    """Write `output` (.gguf) from the peft adapter folder `adapter`."""
    try:
        import gguf
        from safetensors.numpy import load_file
    except ImportError:
        raise missing_extra("gguf", "adapter") from None
    config_file = adapter / "adapter_config.json"
    weights_file = adapter / "adapter_model.safetensors"
    if not config_file.is_file() or not weights_file.is_file():
        raise ConfigError(
            f"{adapter} is not a peft LoRA adapter folder (need {weights_file.name})."
        )
    if base_config.get("model_type") != "llama":
        raise ConfigError(
            f"GGUF LoRA export supports Llama-family bases; this base is "
            f"{base_config.get('model_type')!r}. Export a merged model instead."
        )
    lora = json.loads(config_file.read_text(encoding="utf-8"))
    n_head = int(base_config["num_attention_heads"])
    n_kv = int(base_config.get("num_key_value_heads") or n_head)
    writer = gguf.GGUFWriter(str(output), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(lora["lora_alpha"]))
    tensors = load_file(str(weights_file))
    written = 0
    for key in sorted(tensors):
        match = _KEY.search(key)
        if match is None:
            continue
        layer, module, which = match.groups()
        if module not in LLAMA_TENSORS:
            raise ConfigError(f"No llama.cpp tensor for the LoRA target {module!r} ({key}).")
        data = tensors[key].astype(np.float32)
        if which == "B" and module == "self_attn.q_proj":
            data = llama_permute(data, n_head)
        elif which == "B" and module == "self_attn.k_proj":
            data = llama_permute(data, n_kv)
        name = f"blk.{layer}.{LLAMA_TENSORS[module]}.weight.lora_{which.lower()}"
        writer.add_tensor(name, np.ascontiguousarray(data))
        written += 1
    if not written:
        raise ConfigError(f"{weights_file} holds no LoRA weights for transformer layers.")
    output.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return output


# Bases Ollama serves under a tag: a Modelfile `FROM` must name the weights the adapter was
# trained on.
OLLAMA_TAGS = {
    "meta-llama/Llama-3.2-3B-Instruct": "llama3.2:3b",
    "meta-llama/Llama-3.2-1B-Instruct": "llama3.2:1b",
    "meta-llama/Llama-3.1-8B-Instruct": "llama3.1:8b",
}


def ollama_base(base_model: str) -> str | None:
    """What a Modelfile's FROM says for a base: an Ollama tag or a GGUF file, if known."""
    from generation.llamacpp import PACKAGED, packaged_gguf

    if base_model in OLLAMA_TAGS:
        return OLLAMA_TAGS[base_model]
    if base_model in PACKAGED:
        return str(packaged_gguf(PACKAGED[base_model]))
    if base_model.endswith(".gguf") and Path(base_model).expanduser().is_file():
        return str(Path(base_model).expanduser().resolve())
    return None


def write_modelfile(folder: Path, base: str, lora: Path, name: str) -> list[str]:
    """`folder/Modelfile` (FROM base + ADAPTER lora) and the commands that create the model."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Modelfile").write_text(
        f"# Created by `handbook finetune export`.\nFROM {base}\nADAPTER ./{lora.name}\n",
        encoding="utf-8",
    )
    return [
        f"ollama create {name} -f {folder / 'Modelfile'}",
        f"ollama run {name}",
        f"# then: chat.backend ollama, chat.model {name}, chat.task_prefix true",
    ]


def merged_model(adapter: Path, base_model: str, output: Path, models_dir: Path) -> Path:
    """The base with the LoRA folded in, as a plain transformers model folder."""
    from generation.adapter import with_adapter
    from generation.hf import load_causal_lm, place, resolve_base

    model, tokenizer = load_causal_lm(resolve_base(base_model, models_dir), place("cpu", "none"))
    merged = with_adapter(model, adapter, base_model).merge_and_unload()
    output.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(output))
    tokenizer.save_pretrained(str(output))
    return output
