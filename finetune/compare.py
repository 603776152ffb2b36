"""Model selection: fine-tune several bases on the same data and compare them side by side.

    handbook finetune compare --bases smollm2@lora smollm2@full --data DIR [--questions FILE]
    handbook finetune compare --report RUN

Each base is trained with the method that suits it: `BASE@METHOD` names one (lora, qlora,
full); otherwise bases under 1B parameters are fully fine-tuned and larger ones get LoRA (QLoRA on
CUDA). Then each is evaluated on the test split (`finetune eval`), timed at inference (load,
time to first token, tokens/s), and, with `--questions`, asked a question set through the full RAG
path (the chat benchmark). Results land in RUN/compare.json base by base: a finished base is not
trained again, and a base that fails is recorded with the reason while the others go on.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handbook.config import FinetuneSettings, Settings
from handbook.errors import ConfigError, HandbookError

if TYPE_CHECKING:
    from eval.chat_bench import OpenServices

METHODS = ("lora", "qlora", "full")
SMALL = 1_000_000_000  # parameters: below this, full fine-tuning


def parse_base(spec: str) -> tuple[str, str | None]:
    """`BASE[@METHOD]`.

    >>> parse_base("smollm2@full"), parse_base("meta-llama/Llama-3.2-3B-Instruct")
    (('smollm2', 'full'), ('meta-llama/Llama-3.2-3B-Instruct', None))
    """
    base, _, method = spec.partition("@")
    if method and method not in METHODS:
        raise ConfigError(f"{spec}: the method after @ must be one of {', '.join(METHODS)}.")
    return base, method or None


def estimate_parameters(config: dict[str, Any]) -> int:
    """Parameters of a decoder from its config (embeddings + layers), for choosing a method."""
    hidden = int(config.get("hidden_size", 0))
    layers = int(config.get("num_hidden_layers", 0))
    vocab = int(config.get("vocab_size", 0))
    inner = int(config.get("intermediate_size", 4 * hidden))
    return vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * inner)


def choose_method(base: str, method: str | None, models_dir: Path) -> tuple[str, int]:
    from generation.hf import place, resolve_base

    folder = Path(resolve_base(base, models_dir))
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    parameters = estimate_parameters(config)
    if method is None:
        if parameters and parameters < SMALL:
            method = "full"
        else:
            method = "qlora" if place("auto", "none").device.startswith("cuda") else "lora"
    return method, parameters


def inference_speed(settings: Settings, tuned: Path, method: str, base: str) -> dict[str, Any]:
    """Load time, time to first token and tokens/s of the tuned model on two prompts."""
    import asyncio

    from generation.adapter import PeftChat
    from handbook.types import Message, Role

    update: dict[str, Any] = {"backend": "adapter", "max_tokens": 48, "temperature": 0.0}
    if method == "full":
        update.update(model=str(tuned), adapter=None)
    else:
        update.update(model=base, adapter=str(tuned))
    chat = PeftChat(settings.chat.model_copy(update=update), settings.models_path)
    prompts = ["[SPEC] What is the torque of the flange bolt?", "[EXPLAIN] What is a TON timer?"]

    async def measure() -> dict[str, Any]:
        started = time.perf_counter()
        await chat.load()
        load = time.perf_counter() - started
        firsts, rates = [], []
        for prompt in prompts:
            asked = time.perf_counter()
            first: float | None = None
            pieces = []
            async for piece in chat.stream([Message(Role.USER, prompt)]):
                first = first or time.perf_counter()
                pieces.append(piece)
            if first is not None:
                firsts.append(first - asked)
                tokens = chat.count_tokens("".join(pieces))
                spent = time.perf_counter() - first
                if spent > 0:
                    rates.append(tokens / spent)
        await chat.close()
        return {
            "load_s": load,
            "ttft_s": sum(firsts) / len(firsts) if firsts else None,
            "tokens_per_s": sum(rates) / len(rates) if rates else None,
        }

    return asyncio.run(measure())


Progress = Callable[[str], None]


def compare(
    settings: Settings,
    finetune: FinetuneSettings,
    bases: Sequence[str],
    data: Path,
    folder: Path,
    questions: Sequence[Path] = (),
    progress: Progress = lambda message: None,
    per_base: dict[str, dict[str, Any]] | None = None,
    services: OpenServices | None = None,
) -> dict[str, Any]:
    """Train, evaluate and time each base; returns the run's compare.json. `per_base` holds
    settings for one base (`{"smollm2@full": {"learning_rate": 5e-5}}`): full fine-tuning
    wants a far smaller learning rate than LoRA. `services` opens the composition root
    (`app.Handbook`) for asking `questions`."""
    if questions and services is None:
        raise ConfigError("Asking a question set needs the services (`app.Handbook`).")
    splits = _splits(data, [str(t) for t in settings.chat.tasks])
    for spec in bases:
        parse_base(spec)
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "compare.json"
    state: dict[str, Any] = (
        json.loads(state_path.read_text()) if state_path.is_file() else {"bases": {}}
    )
    state.update({"data": str(data), "order": list(bases)})

    def save() -> None:
        state_path.write_text(json.dumps(state, indent=2, ensure_ascii=False) + "\n")

    for spec in bases:
        entry = state["bases"].get(spec)
        if entry and ("done" in entry or "failed" in entry):
            progress(f"{spec}: already {'done' if 'done' in entry else 'failed'}, skipped")
            continue
        base, method = parse_base(spec)
        try:
            method, parameters = choose_method(base, method, settings.models_path)
            progress(f"{spec}: training ({method})")
            overrides = {**(per_base or {}).get(base, {}), **(per_base or {}).get(spec, {})}
            own = FinetuneSettings.model_validate(
                {**finetune.model_dump(), **overrides, "base_model": base, "method": method}
            )
            entry = {
                "base": base,
                "method": method,
                "parameters": parameters,
                **_train_and_measure(
                    settings, own, spec, splits, folder, questions, progress, services
                ),
            }
        except (HandbookError, MemoryError, RuntimeError, OSError, ValueError) as exc:
            # ValueError covers invalid per-base settings (pydantic) and library refusals
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            entry = {"base": base, "failed": f"{type(exc).__name__}: {message}",
                     "trace": traceback.format_exc(limit=3)}  # fmt: skip
        state["bases"][spec] = entry
        save()
    save()
    return state


def _splits(data: Path, tasks: list[str]) -> dict[str, list[Any]]:
    """The train/val/test examples of a prepared data folder; train and test must hold some."""
    from finetune.dataset import read_jsonl

    splits = {}
    for name in ("train", "val", "test"):
        path = data / f"{name}.jsonl"
        rows, problems = read_jsonl(path, tasks) if path.is_file() else ([], [])
        if problems:
            raise ConfigError(f"{path} has bad rows; run `handbook finetune check {data}`.")
        splits[name] = [example for _, example in rows]
    if not splits["train"]:
        raise ConfigError(f"{data}/train.jsonl is missing or empty.")
    if not splits["test"]:
        raise ConfigError(
            f"{data}/test.jsonl is missing or empty: a comparison needs held-out examples. "
            "`handbook finetune prepare` splits 80/10/10."
        )
    return splits


def _train_and_measure(
    settings: Settings,
    own: FinetuneSettings,
    spec: str,
    splits: dict[str, list[Any]],
    folder: Path,
    questions: Sequence[Path],
    progress: Progress,
    services: OpenServices | None,
) -> dict[str, Any]:
    """One base (its settings resolved), stage by stage: train, evaluate on the test split, time
    inference and, with `questions`, ask the question set; the figures of its compare.json
    entry."""
    import asyncio

    from eval.memory import PeakMemory
    from finetune.evaluate import evaluate
    from finetune.train import train

    base = own.base_model
    output = folder / spec.replace("/", "_").replace("@", "-")
    # Sampled while this base trains: the process's own peak (ru_maxrss) would carry the bases
    # trained before it.
    with PeakMemory() as memory:
        result = train(own, splits["train"], output, settings.models_path, splits["val"])
    meta = json.loads((output / "handbook.json").read_text())
    progress(f"{spec}: evaluating on {len(splits['test'])} test examples")
    report = evaluate(own, output, splits["test"], settings.models_path)
    overall = next(r for r in report.by_task() if r["task"] == "all")
    progress(f"{spec}: timing inference")
    speed = inference_speed(settings, output, own.method, base)
    entry = {
        "trainable_parameters": result.trainable_parameters,
        "train_seconds": result.seconds,
        "train_tokens_per_s": result.tokens_per_second,
        "peak_rss_mb": memory.peak,
        "peak_vram_mb": result.peak_vram_mb,
        "train_loss": result.train_loss,
        "val_loss": result.eval_loss,
        "log": meta["log"],
        "test_by_task": report.by_task(),
        "test_accuracy": overall["tuned"],
        "test_accuracy_base": overall["base"],
        **speed,
        "output": str(output),
    }
    if questions and services is not None:
        progress(f"{spec}: asking the question set")
        entry["quality"] = asyncio.run(_bench(settings, output, questions, folder, services))
    entry["done"] = time.time()
    return entry


async def _bench(
    settings: Settings, tuned: Path, files: Sequence[Path], folder: Path, services: OpenServices
) -> Any:
    """The chat benchmark's quality figures for one tuned model (its own run folder)."""
    from eval.chat_bench import Run, load_questions, run_model
    from eval.chat_report import summarize

    spec = f"adapter:{tuned}"
    run = Run(folder / f"bench-{tuned.name}")
    run.start([spec], list(files), "hybrid")
    await run_model(settings, spec, load_questions(files), run, "hybrid", services=services)
    figures = summarize(run.results(), {})[0]
    keys = ("correct", "key_fact_recall", "refusal_correct", "language_match", "citation_correct")
    return {key: figures[key] for key in keys}
