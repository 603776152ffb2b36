"""`handbook finetune prepare|split|check|train|export|eval`: datasets, training, adapters."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.common import run, user_errors

if TYPE_CHECKING:
    from app.handbook import Handbook
    from handbook.config import FinetuneSettings, Settings

DIR = click.Path(file_okay=False, path_type=Path)


def finetune_settings(
    settings: Settings, config: Path | None, per_base: dict[str, Any] | None = None
) -> FinetuneSettings:
    """The `finetune` section, overridden by a YAML file of finetune keys (`--config`). Its
    `bases` mapping (settings per base, for `compare`) goes into `per_base`."""
    from pydantic import ValidationError

    from handbook.config import FinetuneSettings
    from handbook.errors import ConfigError

    if config is None:
        return settings.finetune
    import yaml

    try:
        values = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read {config}: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"{config} must hold finetune settings (base_model: ..., epochs: ...).")
    values = dict(values.get("finetune", values))
    bases = values.pop("bases", {})
    if per_base is not None:
        if not isinstance(bases, dict):
            raise ConfigError(f"`bases` in {config} must map a base to its settings.")
        per_base.update(bases)
    try:
        return FinetuneSettings.model_validate({**settings.finetune.model_dump(), **values})
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"Invalid settings in {config}:\n" + "\n".join(lines)) from exc


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="YAML with finetune settings (base_model, method, epochs...) over the `finetune` section.",
)


def tasks(settings: Settings) -> list[str]:
    return [str(t) for t in settings.chat.tasks]


@click.group()
def finetune() -> None:
    """Fine-tune a model on your manuals: prepare, check, train, export, eval."""


@finetune.command()
@click.option("--out", "out", type=DIR, required=True, help="Folder for the dataset.")
@click.option("--doc", "docs", multiple=True, help="Only this document (id, path or name).")
@click.option("--draft", is_flag=True, help="Let the chat model reword the questions.")
@click.option("--seed", type=int, default=None, help="Split seed (default: finetune.seed).")
@click.pass_context
def prepare(
    ctx: click.Context, out: Path, docs: tuple[str, ...], draft: bool, seed: int | None
) -> None:
    """Draft task-prefixed examples from the indexed manuals, for review.

    Writes OUT/examples.jsonl (every example, with `meta` saying where it came from) and the
    split OUT/train.jsonl, val.jsonl, test.jsonl. After editing examples.jsonl, run
    `handbook finetune split OUT/examples.jsonl --out OUT`."""
    import asyncio

    from finetune.dataset import SPLITS, split, write_jsonl
    from finetune.prepare import deduplicate, draft_questions, examples_from
    from handbook.errors import NotIndexed
    from ingestion.chunking import chunk_document
    from ingestion.loaders import load_document

    async def work(hb: Handbook) -> tuple[list[dict[str, Any]], int]:
        records = hb.registry.all()
        if docs:
            wanted = set(hb.search_filter(docs).doc_ids)
            records = [r for r in records if r.doc_id in wanted]
        if not records:
            raise NotIndexed("Nothing is indexed yet. Run `handbook index PATH` first.")
        found: list[dict[str, Any]] = []
        for record in records:
            document = await asyncio.to_thread(
                load_document,
                Path(record.path),
                record.doc_id,
                record.sha256,
                hb.settings.index,
            )
            for chunk in chunk_document(document, hb.settings.chunking):
                found += examples_from(chunk)
        found = deduplicate(found)
        drafted = 0
        if draft:
            from generation.prompts import QUESTION_WRITER
            from handbook.types import Message, Role

            chat = hb.chat()

            async def ask(answer: str, language: str) -> str:
                messages = [
                    Message(Role.SYSTEM, QUESTION_WRITER[language]),
                    Message(Role.USER, answer),
                ]
                return "".join([piece async for piece in chat.stream(messages)])

            drafted = await draft_questions(found, ask)
        return found, drafted

    examples, drafted = run(ctx, work)
    settings = ctx.obj.settings
    parts = split(examples, settings.finetune.seed if seed is None else seed)
    write_jsonl(out / "examples.jsonl", examples)
    for name in SPLITS:
        write_jsonl(out / f"{name}.jsonl", parts[name])
    _print_counts(examples, parts)
    if draft:
        click.echo(f"{drafted} of {len(examples)} questions reworded by the chat model.")
    click.echo(f"Review {out / 'examples.jsonl'}; then `handbook finetune check {out}`.")


def _print_counts(examples: list[dict[str, Any]], parts: dict[str, list[dict[str, Any]]]) -> None:
    from collections import Counter

    from finetune.dataset import SPLITS, task_of

    counts = Counter(task_of(e) or "?" for e in examples)
    listing = ", ".join(f"{task} {n}" for task, n in sorted(counts.items()))
    click.echo(f"{len(examples)} examples: {listing}")
    click.echo("split: " + ", ".join(f"{name} {len(parts[name])}" for name in SPLITS))


@finetune.command("split")
@click.argument("examples", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--out", "out", type=DIR, required=True, help="Folder for train/val/test.jsonl.")
@click.option("--seed", type=int, default=None, help="Split seed (default: finetune.seed).")
@click.pass_context
def split_command(ctx: click.Context, examples: Path, out: Path, seed: int | None) -> None:
    """Split a reviewed EXAMPLES file into train/val/test (80/10/10 per task, seeded)."""
    from finetune.dataset import SPLITS, read_jsonl, split, write_jsonl
    from handbook.errors import ConfigError

    with user_errors(ctx):
        settings = ctx.obj.settings
        rows, problems = read_jsonl(examples, tasks(settings))
        if problems:
            raise ConfigError("Fix these lines first:\n" + "\n".join(f"  {p}" for p in problems))
        found = [example for _, example in rows]
        parts = split(found, settings.finetune.seed if seed is None else seed)
        for name in SPLITS:
            write_jsonl(out / f"{name}.jsonl", parts[name])
    _print_counts(found, parts)


@finetune.command()
@click.argument("data", type=click.Path(file_okay=False, exists=True, path_type=Path))
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def check(ctx: click.Context, data: Path, config_file: Path | None, as_json: bool) -> None:
    """Validate a dataset folder: bad rows by line, task counts, token lengths, duplicates."""
    from finetune.dataset import check as check_dataset
    from finetune.train import token_count
    from generation.hf import resolve_base

    with user_errors(ctx):
        settings = ctx.obj.settings
        ft = finetune_settings(settings, config_file)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(resolve_base(ft.base_model, settings.models_path))
        report = check_dataset(
            data, tasks(settings), ft.max_seq_length, lambda m: token_count(tokenizer, m)
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "examples": report.examples,
                    "tasks": {k: dict(v) for k, v in report.tasks.items()},
                    "problems": [str(p) for p in report.problems],
                    "too_long": [str(p) for p in report.too_long],
                    "duplicates": [{"text": t, "splits": list(s)} for t, s in report.duplicates],
                    "lengths": report.histogram(),
                },
                ensure_ascii=False,
            )
        )
    else:
        from cli.render import dataset_report

        dataset_report(report)
    if not report.ok:
        sys.exit(1)


@finetune.command()
@click.argument("data", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--out", "out", type=DIR, required=True, help="Folder for the adapter (or model).")
@config_option
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in OUT.")
@click.pass_context
def train(
    ctx: click.Context, data: Path, out: Path, config_file: Path | None, resume: bool
) -> None:
    """Train on DATA/train.jsonl (validating on val.jsonl): LoRA, QLoRA or full."""
    from cli.render import TrainProgress
    from finetune.dataset import read_jsonl
    from finetune.train import train as run_training
    from handbook.errors import ConfigError

    with user_errors(ctx):
        settings = ctx.obj.settings
        ft = finetune_settings(settings, config_file)
        splits: dict[str, list[dict[str, Any]]] = {}
        for name in ("train", "val"):
            path = data / f"{name}.jsonl"
            if not path.is_file():
                if name == "train":
                    raise ConfigError(
                        f"{path} does not exist. `handbook finetune prepare` writes it."
                    )
                splits[name] = []
                continue
            rows, problems = read_jsonl(path, tasks(settings))
            if problems:
                listing = "\n".join(f"  {p}" for p in problems[:20])
                raise ConfigError(f"{len(problems)} bad examples; fix them first:\n{listing}")
            splits[name] = [example for _, example in rows]
        click.echo(
            f"Training {ft.base_model} ({ft.method}) on {len(splits['train'])} examples, "
            f"{len(splits['val'])} for validation."
        )
        with TrainProgress() as progress:
            result = run_training(
                ft, splits["train"], out, settings.models_path, splits["val"],
                resume=resume, progress=progress.update,
            )  # fmt: skip
    eval_loss = f"{result.eval_loss:.3f}" if result.eval_loss is not None else "-"
    click.echo(
        f"Done in {result.seconds:.0f} s: {result.steps} steps, "
        f"train loss {result.train_loss:.3f}, "
        f"val loss {eval_loss}, {result.tokens_per_second:.0f} tokens/s, peak memory "
        f"{result.peak_rss_mb:.0f} MB. Saved to {out}."
    )
    if ft.method == "full":
        click.echo(f"Use it: chat.backend adapter, chat.model {out}")
    else:
        click.echo(f"Use it: chat.backend adapter, chat.model {ft.base_model}, chat.adapter {out}")


@finetune.command()
@click.argument("adapter", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--out", "out", type=DIR, required=True, help="Folder for the exported files.")
@click.option("--name", default="handbook-tuned", show_default=True, help="Ollama model name.")
@click.option("--merged", is_flag=True, help="Also write the base with the LoRA merged in.")
@click.pass_context
def export(ctx: click.Context, adapter: Path, out: Path, name: str, merged: bool) -> None:
    """Export ADAPTER: a GGUF LoRA for llama.cpp, an Ollama Modelfile, a merged model."""
    from finetune.export import merged_model, ollama_base, to_gguf_lora, write_modelfile
    from handbook.errors import ConfigError

    with user_errors(ctx):
        settings = ctx.obj.settings
        meta_file = adapter / "handbook.json"
        if not (adapter / "adapter_config.json").is_file():
            raise ConfigError(
                f"{adapter} is not a LoRA adapter folder. A fully fine-tuned model is already "
                "a model folder: serve it with chat.backend adapter, chat.model FOLDER."
            )
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        base_model = meta.get("base_model") or settings.finetune.base_model
        from generation.hf import resolve_base

        config_file = Path(resolve_base(base_model, settings.models_path)) / "config.json"
        base_config = json.loads(config_file.read_text(encoding="utf-8"))
        out.mkdir(parents=True, exist_ok=True)
        lora = to_gguf_lora(adapter, base_config, out / "adapter.gguf")
        click.echo(f"GGUF LoRA: {lora} (llama.cpp: chat.backend llamacpp, chat.adapter {lora})")
        base = ollama_base(base_model)
        if base is None:
            click.echo(
                f"No Modelfile: Ollama has no known tag for {base_model}; write FROM <its GGUF> "
                f"and ADAPTER {lora} yourself."
            )
        else:
            commands = write_modelfile(out, base, lora, name)
            click.echo(f"Ollama Modelfile: {out / 'Modelfile'}. Create the model with:")
            for command in commands:
                click.echo(f"  {command}")
        if merged:
            folder = merged_model(adapter, base_model, out / "merged", settings.models_path)
            click.echo(f"Merged model: {folder} (chat.backend adapter, chat.model {folder})")


@finetune.command("eval")
@click.argument("tuned", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--data",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="Dataset folder; its test.jsonl is answered.",
)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def evaluate(
    ctx: click.Context, tuned: Path, data: Path, config_file: Path | None, as_json: bool
) -> None:
    """Base model vs TUNED (adapter or model folder) on the test split, per task."""
    from dataclasses import asdict

    from finetune.dataset import read_jsonl
    from finetune.evaluate import evaluate as run_eval

    with user_errors(ctx):
        settings = ctx.obj.settings
        ft = finetune_settings(settings, config_file)
        meta_file = tuned / "handbook.json"
        if meta_file.is_file():  # evaluate against the base it was trained on
            base = json.loads(meta_file.read_text(encoding="utf-8")).get("base_model")
            ft = ft.model_copy(update={"base_model": base or ft.base_model})
        rows, problems = read_jsonl(data / "test.jsonl", tasks(settings))
        report = run_eval(ft, tuned, [e for _, e in rows], settings.models_path)
    (tuned / "eval.json").write_text(
        json.dumps({"by_task": report.by_task(), "answers": [asdict(r) for r in report.rows]},
                   ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps({"by_task": report.by_task()}, ensure_ascii=False))
    else:
        from cli.render import eval_table

        eval_table(report.by_task(), ft.base_model, tuned.name)
        if problems:
            click.echo(f"{len(problems)} bad lines in test.jsonl were skipped.", err=True)


@finetune.command("compare")
@click.option(
    "--bases", "bases", multiple=True, help="BASE or BASE@METHOD (lora, qlora, full); repeat."
)
@click.option(
    "--data",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Dataset folder (train/val/test.jsonl).",
)
@config_option
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder; an existing one is resumed (default: eval/compare/<time>).",
)
@click.option(
    "--questions",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Also ask this question set through the full RAG path (repeatable).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Only render the report of this run folder.",
)
@click.pass_context
def compare_command(
    ctx: click.Context,
    bases: tuple[str, ...],
    data: Path | None,
    config_file: Path | None,
    run_dir: Path | None,
    questions: tuple[Path, ...],
    report_dir: Path | None,
) -> None:
    """Fine-tune several bases on the same data and compare them (resumable)."""
    import time

    from app.handbook import Handbook
    from finetune.compare import compare
    from finetune.compare_report import render
    from handbook.errors import ConfigError

    with user_errors(ctx):
        if report_dir is None:
            specs = [spec for entry in bases for spec in entry.split()]
            if not specs or data is None:
                raise ConfigError("Give --bases (two or more) and --data, or --report RUN.")
            settings = ctx.obj.settings
            folder = run_dir or Path("eval/compare") / time.strftime("%Y%m%d-%H%M%S")
            per_base: dict[str, Any] = {}
            compare(
                settings,
                finetune_settings(settings, config_file, per_base),
                specs,
                data,
                folder,
                list(questions),
                progress=lambda message: click.echo(message, err=True),
                per_base=per_base,
                services=Handbook,
            )
            report_dir = folder
        markdown, page = render(report_dir)
    click.echo(markdown.read_text(encoding="utf-8"))
    click.echo(f"HTML: {page}")
