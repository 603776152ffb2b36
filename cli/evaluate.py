"""`handbook eval run|report|ratings`: compare chat models on answer quality, speed, memory
(the chat benchmark of `eval/`; the performance benchmarks are the scripts in `bench/`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.common import MODES, user_errors

if TYPE_CHECKING:
    from handbook.types import RetrievalMode

EXISTING = click.Path(exists=True, path_type=Path)


@click.group("eval")
def evaluate() -> None:
    """Compare chat models through the full RAG path on question sets."""


@evaluate.command("run")
@click.option("--models", "models", required=True, multiple=True,
              help="Repeat or list: ollama:TAG, llamacpp:default, llamacpp:FILE.gguf, "
              "adapter:FOLDER, transformers:MODEL.")  # fmt: skip
@click.option("--questions", "questions", required=True, multiple=True, type=EXISTING,
              help="Question set (JSONL); repeat for several.")  # fmt: skip
@click.option("--mode", type=MODES, default="hybrid", show_default=True, help="Retrieval mode.")
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder; an existing one is resumed (default: eval/runs/<time>).",
)
@click.option(
    "--judge",
    default=None,
    help="A judge model (named like --models): faithfulness and pairwise comparisons.",
)
@click.pass_context
def run_command(
    ctx: click.Context, models: tuple[str, ...], questions: tuple[Path, ...], mode: RetrievalMode,
    run_dir: Path | None, judge: str | None,
) -> None:  # fmt: skip
    """Ask every question with every model; results are saved as they come (resumable)."""
    import asyncio

    from app.handbook import Handbook
    from eval.chat_bench import run_bench
    from eval.chat_report import render

    specs = [spec for entry in models for spec in entry.split()]
    folder = run_dir or Path("eval/runs") / time.strftime("%Y%m%d-%H%M%S")
    with user_errors(ctx):

        def progress(spec: str, n: int, total: int) -> None:
            click.echo(f"{spec}: question {n}/{total}", err=True)

        run = asyncio.run(
            run_bench(
                ctx.obj.settings,
                specs,
                list(questions),
                folder,
                mode,
                progress,
                judge,
                services=Handbook,
            )
        )
        markdown, page = render(run)
    click.echo(f"Run {folder}: {len(run.results())} answers. Report: {markdown}, {page}")


@evaluate.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.pass_context
def report(ctx: click.Context, run_dir: Path) -> None:
    """Render RUN_DIR's results as report.md and a self-contained report.html."""
    from eval.chat_bench import Run
    from eval.chat_report import render

    with user_errors(ctx):
        markdown, page = render(Run(run_dir))
    click.echo(markdown.read_text(encoding="utf-8"))
    click.echo(f"HTML: {page}")


@evaluate.group()
def ratings() -> None:
    """Human 1-5 ratings of the answers: export a CSV, fill it, import it."""


@ratings.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def export_command(ctx: click.Context, run_dir: Path, out: Path) -> None:
    """Write OUT (CSV): one row per answer, an empty `rating` column to fill with 1-5."""
    from eval.chat_bench import Run
    from eval.chat_report import export_ratings

    with user_errors(ctx):
        count = export_ratings(Run(run_dir), out)
    click.echo(f"{count} answers in {out}; fill `rating`, then `handbook eval ratings import`.")


@ratings.command("import")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("csv_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def import_command(ctx: click.Context, run_dir: Path, csv_file: Path) -> None:
    """Read the ratings of CSV_FILE into the run; the report shows their mean per model."""
    from eval.chat_bench import Run
    from eval.chat_report import import_ratings, render

    with user_errors(ctx):
        count = import_ratings(Run(run_dir), csv_file)
        render(Run(run_dir))
    click.echo(f"{count} ratings imported; the report is updated.")


renamed = click.Group(
    "bench",
    commands=evaluate.commands,
    help="The former name of `handbook eval`.",
    hidden=True,
    deprecated="Use `handbook eval`.",
)
"""`handbook bench`, the name before `handbook eval`: still works, and says so."""
