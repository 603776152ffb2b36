"""Terminal output with rich: progress bars, summary and result tables."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from handbook.types import SOURCES_LABEL, location
from ingestion.progress import Progress as Progress_

if TYPE_CHECKING:
    from generation.sessions import SessionInfo
    from handbook.config import Settings
    from handbook.types import Answer
    from ingestion.doc_registry import DocumentRecord
    from ingestion.graph_stage import GraphReport
    from ingestion.graph_yield import Yield
    from ingestion.pipeline import IndexReport
    from retrieval.search import SearchResult

console = Console()
errors = Console(stderr=True)


class _Shown:
    """A Rich progress display shown while the `with` block runs."""

    _progress: Progress

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()


class IndexProgress(_Shown, Progress_):
    """Two bars: files, and chunks embedded (with rate and ETA)."""

    def __init__(self, *, enabled: bool, unit: str = "chunks") -> None:
        self._unit = unit  # the second bar: "chunks" embedded, or chunks "extracted"
        self._progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=errors,
            disable=not enabled,
            transient=False,
        )
        self._files: TaskID | None = None
        self._chunks: TaskID | None = None
        self._ocr: TaskID | None = None

    def files(self, total: int) -> None:
        self._files = self._progress.add_task("files", total=total, rate="")
        self._chunks = self._progress.add_task(self._unit, total=0, rate="")

    def file_done(self, path: str) -> None:
        if self._files is not None:
            self._progress.advance(self._files)

    def chunks_planned(self, count: int) -> None:
        if self._chunks is not None:
            task = self._progress.tasks[self._chunks]
            self._progress.update(self._chunks, total=(task.total or 0) + count)

    def pages_read(self, path: str, done: int, total: int) -> None:
        name = f"OCR {Path(path).name}"
        if self._ocr is None:
            self._ocr = self._progress.add_task("OCR pages", total=total, rate=name)
        self._progress.update(self._ocr, completed=done, total=total, rate=name)

    def chunks_done(self, count: int) -> None:
        if self._chunks is not None:
            self._progress.advance(self._chunks, count)
            speed = self._progress.tasks[self._chunks].speed
            self._progress.update(self._chunks, rate=f"{speed:.1f}/s" if speed else "")


def index_summary(report: IndexReport) -> None:
    from ingestion.pipeline import Status

    table = Table(title="Index summary", show_lines=False)
    table.add_column("status")
    table.add_column("file", overflow="fold")
    table.add_column("chunks", justify="right")
    table.add_column("reason / note", overflow="fold")
    colours = {
        Status.FAILED: "red",
        Status.INDEXED: "green",
        Status.UPDATED: "cyan",
        Status.REMOVED: "yellow",
        Status.UNCHANGED: "dim",
    }
    for o in report.outcomes:
        style = colours.get(o.status, "")
        table.add_row(
            f"[{style}]{o.status}[/]", _short(o.path), str(o.chunks or ""), o.reason or o.note
        )
    console.print(table)
    counts = ", ".join(f"{report.count(s)} {s}" for s in Status if report.count(s)) or "no files"
    console.print(f"{counts}; {report.embedded} chunks embedded in {report.seconds:.1f} s.")
    if report.failed:
        console.print(
            f"[red]{len(report.failed)} file(s) could not be indexed (see reasons above).[/]"
        )


def _short(path: str) -> str:
    """A path relative to the working folder when it is below it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def search_table(result: SearchResult) -> None:
    table = Table(title=f"{result.query}", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("document")
    table.add_column("where")
    table.add_column("score", justify="right")
    table.add_column("text", overflow="fold", max_width=80)
    for n, p in enumerate(result.passages, start=1):
        text = p.chunk.text if len(p.chunk.text) < 300 else p.chunk.text[:300] + "…"
        table.add_row(
            str(n), p.chunk.title, location(p.chunk.page, p.chunk.section), f"{p.score:.3f}", text
        )
    console.print(table)
    if result.facts:
        console.print("[bold]Knowledge graph[/]")
        for fact in result.facts:
            cited = "".join(f"[{n}]" for n in fact.sources)
            console.print(f"  {fact.name}: {fact.text} {cited}", highlight=False, markup=False)


def print_sources(answer: Answer) -> None:
    if not answer.citations:
        return
    console.print(f"\n[bold]{SOURCES_LABEL[answer.language]}[/]")
    for c in answer.citations:
        console.print(f"  {c.label(answer.language)}", highlight=False, markup=False)
        console.print(f"      [dim]{_short(c.path)}[/]", highlight=False)


def docs_table(records: list[DocumentRecord]) -> None:
    if not records:
        console.print("Nothing is indexed yet. Run `handbook index PATH`.")
        return
    table = Table(title="Indexed documents")
    for column in ("id", "title", "format", "lang", "pages", "chunks", "file"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(
            r.doc_id,
            r.title,
            r.format,
            r.language,
            str(r.pages or ""),
            str(r.chunks) if r.indexed else "unfinished",
            Path(r.path).name,
        )
    console.print(table)
    unfinished = sum(not r.indexed for r in records)
    if unfinished:
        console.print(
            f"{unfinished} of {len(records)} documents are unfinished (a run was stopped before "
            "it finished them; their passages may be missing from answers). Run `handbook index "
            "PATH` again."
        )


def sessions_table(found: list[SessionInfo]) -> None:
    import datetime

    if not found:
        console.print("No sessions yet. Start one with `handbook chat`.")
        return
    table = Table("session", "user", "turns", "last used", "title")
    for info in found:
        when = datetime.datetime.fromtimestamp(info.updated).strftime("%Y-%m-%d %H:%M")
        table.add_row(info.id, info.owner or "(local)", str(info.turns), when, info.title)
    console.print(table)


def _yield_row(table: Table, name: str, model: str, found: Yield) -> None:
    table.add_row(
        name,
        model,
        str(found.chunks),
        f"{found.entities_per_chunk:.2f}",
        f"{found.relations_per_chunk:.2f}",
        str(found.malformed),
        str(found.empty),
    )


def _yield_table(title: str) -> Table:
    table = Table(title=title)
    for column in ("document", "model", "chunks", "entities/chunk", "relations/chunk"):
        table.add_column(column, overflow="fold")
    table.add_column("malformed rows")
    table.add_column("empty answers")
    return table


def graph_summary(report: GraphReport, settings: Settings) -> None:
    from ingestion.graph_stage import low_yield_warning

    table = _yield_table("Knowledge graph")
    for path, found in report.built:
        _yield_row(table, _short(path), report.model, found)
    if report.built:
        console.print(table)
    for path, reason in report.failed:
        errors.print(f"[red]failed[/red] {_short(path)}: {reason}")
    console.print(
        f"{len(report.built)} documents extracted, {report.unchanged} unchanged, "
        f"{len(report.failed)} failed; {report.llm_calls} LLM calls in {report.seconds:.1f} s."
    )
    if report.stopped:
        errors.print("Stopped early; run `handbook graph build` again to resume.")
    warning = low_yield_warning(report.total, report.model, settings)
    if warning:
        errors.print(f"[yellow]{warning}[/yellow]")


def graph_stats_table(
    nodes: int,
    edges: int,
    yields: dict[tuple[str, str], Yield],
    paths: dict[str, str],
    settings: Settings,
) -> None:
    from ingestion.graph_stage import low_yield_warning
    from ingestion.graph_yield import Yield

    console.print(f"{nodes} entities, {edges} relations.")
    if not yields:
        console.print("The graph is empty. Build it with `handbook graph build`.")
        return
    table = _yield_table("Extraction yield")
    per_model: dict[str, Yield] = {}
    for (doc, model), found in sorted(yields.items()):
        _yield_row(table, _short(paths.get(doc, doc)), model, found)
        per_model.setdefault(model, Yield()).add(found)
    console.print(table)
    for model, found in per_model.items():
        warning = low_yield_warning(found, model, settings)
        if warning:
            errors.print(f"[yellow]{warning}[/yellow]")


# --- fine-tuning -----------------------------------------------------------------------------


class TrainProgress(_Shown):
    """One bar over the training steps, with the latest loss, elapsed time and ETA."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=errors,
        )
        self._task: TaskID | None = None

    def update(self, step: int, total: int, loss: float | None) -> None:
        if self._task is None:
            self._task = self._progress.add_task("train", total=total, loss="-")
        shown = f"{loss:.3f}" if loss is not None else "-"
        self._progress.update(self._task, completed=step, total=total, loss=shown)


def dataset_report(report: Any) -> None:
    """`handbook finetune check`: counts per split and task, lengths, problems."""
    table = Table(title="Dataset")
    table.add_column("split")
    table.add_column("examples", justify="right")
    table.add_column("tasks")
    for split, count in report.examples.items():
        tasks = ", ".join(f"{t} {n}" for t, n in sorted(report.tasks[split].items()))
        table.add_row(split, str(count), tasks)
    console.print(table)
    if report.lengths:
        console.print(f"Token lengths (max_seq_length {report.max_length}):")
        top = max(count for _, _, count in report.histogram()) or 1
        for low, high, count in report.histogram():
            bar = "█" * round(30 * count / top)
            console.print(f"  {low:>5}-{high:<5} {count:>5} {bar}", highlight=False)
    for title, items in (("Bad rows", report.problems), ("Too long", report.too_long)):
        if items:
            console.print(f"[red]{title} ({len(items)}):[/]")
            for item in items[:50]:
                console.print(f"  {item}", highlight=False, markup=False)
    if report.duplicates:
        console.print(f"[red]In more than one split ({len(report.duplicates)}):[/]")
        for text, splits in report.duplicates[:20]:
            console.print(f"  {'/'.join(splits)}: {text}", highlight=False, markup=False)
    if report.ok:
        console.print("[green]The dataset is fine.[/]")


def eval_table(rows: list[dict[str, Any]], base: str, tuned: str) -> None:
    """`handbook finetune eval`: base vs fine-tuned per task."""
    table = Table(title="Test split: base vs fine-tuned")
    for column in ("task", "examples", "metric", base, tuned, "exact base", "exact tuned"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for row in rows:
        table.add_row(
            row["task"], str(row["examples"]), row["metric"], f"{row['base']:.2f}",
            f"{row['tuned']:.2f}", f"{row['base_exact']:.2f}", f"{row['tuned_exact']:.2f}",
        )  # fmt: skip
    console.print(table)
