"""Command line: `handbook index|graph|search|ask|chat`; the other commands live in
`cli.manage` (sessions, docs, models, config, reset, serve), `cli.finetune` and `cli.evaluate`.

Heavy libraries are imported inside the commands (`handbook --help` answers at once).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.common import MODES, State, run

if TYPE_CHECKING:
    from app.handbook import Handbook
    from generation.answer import AnswerModeSetting
    from generation.events import AnswerEvent
    from handbook.config import Settings
    from handbook.types import Answer, RetrievalMode, SearchFilter


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (handbook.yaml).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="handbook")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, debug: bool) -> None:
    """Handbook: ask your technical manuals, with page-level citations."""
    ctx.obj = State(config, debug)


# --- index ---------------------------------------------------------------------------------


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--graph/--no-graph",
    default=None,
    help="Also build the knowledge graph (default: setting graph.enabled).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def index(ctx: click.Context, path: Path, graph: bool | None, as_json: bool) -> None:
    """Index the manuals in PATH (a folder or a file). Unchanged files are skipped."""
    from cli.render import IndexProgress, graph_summary, index_summary

    with_graph = ctx.obj.settings.graph.enabled if graph is None else graph

    async def work(hb: Handbook) -> Any:
        indexer = await hb.indexer()
        with IndexProgress(enabled=not as_json) as progress:
            report = await indexer.index(path, progress)
        graph_report = None
        if with_graph:
            with IndexProgress(enabled=not as_json, unit="extracted") as progress:
                graph_report = await hb.build_graph(progress)
        return report, graph_report

    report, graph_report = run(ctx, work)
    if as_json:
        payload = _report_json(report)
        if graph_report is not None:
            payload["graph"] = _graph_json(graph_report, ctx.obj.settings)
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        index_summary(report)
        if graph_report is not None:
            graph_summary(graph_report, ctx.obj.settings)
    if report.failed or (graph_report is not None and graph_report.failed):
        sys.exit(1)


def _graph_json(report: Any, settings: Settings) -> dict[str, Any]:
    from dataclasses import asdict

    from ingestion.graph_stage import low_yield_warning

    total = report.total
    return {
        "model": report.model,
        "seconds": round(report.seconds, 3),
        "llm_calls": report.llm_calls,
        "prompt_tokens": report.prompt_tokens,
        "unchanged": report.unchanged,
        "documents": [{"path": path, **asdict(found)} for path, found in report.built],
        "failed": [{"path": path, "reason": reason} for path, reason in report.failed],
        "entities_per_chunk": round(total.entities_per_chunk, 3),
        "relations_per_chunk": round(total.relations_per_chunk, 3),
        "warning": low_yield_warning(total, report.model, settings),
    }


@cli.group()
def graph() -> None:
    """The knowledge graph (LightRAG): build, stats, show."""


@graph.command("build")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def graph_build(ctx: click.Context, as_json: bool) -> None:
    """Extract entities and relations from indexed documents not yet in the graph."""
    from cli.render import IndexProgress, graph_summary

    async def work(hb: Handbook) -> Any:
        with IndexProgress(enabled=not as_json, unit="extracted") as progress:
            return await hb.build_graph(progress)

    report = run(ctx, work)
    if as_json:
        click.echo(json.dumps(_graph_json(report, ctx.obj.settings), ensure_ascii=False))
    else:
        graph_summary(report, ctx.obj.settings)
    if report.failed:
        sys.exit(1)


@graph.command("show")
@click.argument("entity")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def graph_show(ctx: click.Context, entity: str, as_json: bool) -> None:
    """An entity's relations, each with the documents and pages it comes from."""
    from dataclasses import asdict

    from handbook.errors import NotIndexed

    async def work(hb: Handbook) -> tuple[Any, dict[str, Any]]:
        view = await (await hb.graph()).entity(entity)
        if view is None:
            raise NotIndexed(
                f"The graph has no entity {entity!r}. `handbook graph stats` shows how many "
                "there are; `handbook graph build` extracts them."
            )
        return view, {r.doc_id: r for r in hb.registry.all()}

    view, records = run(ctx, work)

    def where(sources: Any) -> str:
        parts = []
        for doc, page in sources:
            record = records.get(doc)
            name = Path(record.path).name if record else doc
            parts.append(f"{name} p. {page}" if page else name)
        return "; ".join(parts)

    if as_json:
        click.echo(json.dumps(asdict(view), ensure_ascii=False))
        return
    click.secho(f"{view.name} ({view.type})", bold=True)
    click.echo(f"{view.description}\n  [{where(view.sources)}]")
    for relation in view.relations:
        click.echo(f"- {relation.other}: {relation.description} [{where(relation.sources)}]")


@graph.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def graph_stats(ctx: click.Context, as_json: bool) -> None:
    """Entities, relations and extraction yield per document and model."""
    from dataclasses import asdict

    from cli.render import graph_stats_table

    async def work(hb: Handbook) -> tuple[int, int, dict[tuple[str, str], Any], dict[str, str]]:
        graph = await hb.graph()
        nodes, edges = await graph.counts()
        paths = {r.doc_id: r.path for r in hb.registry.all()}
        return nodes, edges, graph.yields(), paths

    nodes, edges, yields, paths = run(ctx, work)
    if as_json:
        rows = [
            {"doc": doc, "path": paths.get(doc, ""), "model": model, **asdict(found)}
            for (doc, model), found in sorted(yields.items())
        ]
        payload = {"entities": nodes, "relations": edges, "documents": rows}
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        graph_stats_table(nodes, edges, yields, paths, ctx.obj.settings)


def _report_json(report: Any) -> dict[str, Any]:
    return {
        "seconds": round(report.seconds, 3),
        "files": [
            {
                "path": o.path,
                "status": str(o.status),
                "chunks": o.chunks,
                "embedded": o.embedded,
                "reason": o.reason,
                "note": o.note,
                "doc": o.doc_id,
            }
            for o in report.outcomes
        ],
    }


# --- search and ask ----------------------------------------------------------------------


def _filter(docs: tuple[str, ...], lang: str | None, hb: Handbook) -> SearchFilter:
    return hb.search_filter(docs, lang)  # type: ignore[arg-type]  # Choice


def _questions(text: str | None, batch: Path | None) -> Iterator[str]:
    from cli.batch import read_questions

    if batch is not None:
        yield from read_questions(batch)
    elif text:
        yield text
    else:
        raise click.UsageError("Give a question, or --batch FILE.")


filter_options = [
    click.option("-k", type=click.IntRange(1, 100), default=None, help="Number of sources."),
    click.option(
        "--doc", "docs", multiple=True, help="Only this document (id, path or file name)."
    ),
    click.option(
        "--lang", type=click.Choice(["de", "en"]), default=None, help="Only this language."
    ),
    click.option("--mode", type=MODES, default="hybrid", show_default=True, help="Retrieval mode."),
    click.option(
        "--batch",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Questions from a file: one per line, or JSONL with a 'question' field.",
    ),
    click.option(
        "--json", "as_json", is_flag=True, help="Machine-readable output (one object per line)."
    ),
]


def with_filters(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(filter_options):
        fn = option(fn)
    return fn


@cli.command()
@click.argument("query", required=False)
@with_filters
@click.pass_context
def search(
    ctx: click.Context,
    query: str | None,
    k: int | None,
    docs: tuple[str, ...],
    lang: str | None,
    mode: RetrievalMode,
    batch: Path | None,
    as_json: bool,
) -> None:
    """Show the passages that best match QUERY (no model answers)."""
    from cli.render import search_table

    questions = list(_questions(query, batch))

    async def work(hb: Handbook) -> None:
        retriever = await hb.retriever()
        where = _filter(docs, lang, hb)
        for q in questions:
            result = await retriever.search(q, k=k, where=where, mode=mode)
            if as_json:
                click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
            else:
                search_table(result)

    run(ctx, work)


async def _show(
    events: AsyncIterator[Any], *, as_json: bool, sources: bool = True
) -> Answer | None:
    """Stream an answer's events to the terminal (or one JSON line); return the answer."""
    from cli.render import print_sources
    from generation.events import Done, Replaced, Token

    answer = None
    async for event in events:
        if isinstance(event, Token) and not as_json:
            click.echo(event.text, nl=False)
        elif isinstance(event, Replaced) and not as_json:
            click.echo("\n")
            click.echo(event.text)
        elif isinstance(event, Done):
            answer = event.answer
            if as_json:
                click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
            else:
                click.echo()
                if sources:
                    print_sources(answer)
    return answer


ANSWER_MODE = click.option(
    "--answer-mode",
    type=click.Choice(["auto", "extract", "generate"]),
    default=None,
    help="extract: the manuals' own words, no model; generate: the chat model writes the "
    "answer, checked against the sources; auto (default, answer.mode): extract with the "
    "packaged offline model, generate with a real one.",
)


@cli.command()
@click.argument("question", required=False)
@with_filters
@click.option("--session", help="Ask within this session (its history; the turn is kept).")
@ANSWER_MODE
@click.pass_context
def ask(
    ctx: click.Context,
    question: str | None,
    k: int | None,
    docs: tuple[str, ...],
    lang: str | None,
    mode: RetrievalMode,
    batch: Path | None,
    as_json: bool,
    session: str | None,
    answer_mode: AnswerModeSetting | None,
) -> None:
    """Answer QUESTION from the indexed manuals, with sources (document, page)."""
    questions = list(_questions(question, batch))

    async def work(hb: Handbook) -> None:
        where = _filter(docs, lang, hb)
        stream: Callable[..., AsyncIterator[AnswerEvent]]
        if session is not None:
            stream = functools.partial((await hb.conversation()).stream, session)
        else:
            stream = (await hb.answerer()).stream
        for q in questions:
            events = stream(q, k=k, where=where, mode=mode, answer_mode=answer_mode)
            await _show(events, as_json=as_json)

    run(ctx, work)


CHAT_HELP = "Commands: /sources (of the last answer), /reset (forget this session), /exit."


@cli.command()
@click.option("--session", help="Continue this session (see `handbook sessions list`).")
@click.option("--mode", type=MODES, default="hybrid", show_default=True, help="Retrieval mode.")
@ANSWER_MODE
@click.pass_context
def chat(
    ctx: click.Context,
    session: str | None,
    mode: RetrievalMode,
    answer_mode: AnswerModeSetting | None,
) -> None:
    """Talk with the manuals: questions keep their context (settings: history.*)."""
    import asyncio

    from cli.render import print_sources

    async def work(hb: Handbook) -> None:
        conversation = await hb.conversation()
        session_id = session or hb.sessions.create().id
        info = hb.sessions.get(session_id)
        strategy = hb.settings.history.strategy
        click.secho(
            f"Session {info.id} ({info.turns} earlier turns, history: {strategy}). {CHAT_HELP}",
            fg="cyan",
            err=True,
        )
        last: Answer | None = None
        while True:
            try:
                line = await asyncio.to_thread(input, "> " if sys.stdin.isatty() else "")
            except EOFError:
                break
            line = line.strip()
            if not line:
                continue
            if line in ("/exit", "/quit"):
                break
            if line == "/reset":
                hb.sessions.reset(session_id)
                click.secho("History cleared.", fg="cyan", err=True)
            elif line == "/sources":
                if last is None or not last.citations:
                    click.echo("No sources yet.")
                else:
                    print_sources(last)
            elif line.startswith("/"):
                click.echo(CHAT_HELP)
            else:
                stream = conversation.stream(session_id, line, mode=mode, answer_mode=answer_mode)
                last = await _show(stream, as_json=False, sources=False)
        click.secho(f"Continue with: handbook chat --session {session_id}", fg="cyan", err=True)

    run(ctx, work)


def _add_groups() -> None:
    from cli.evaluate import evaluate, renamed
    from cli.finetune import finetune
    from cli.manage import COMMANDS

    cli.add_command(finetune)
    cli.add_command(evaluate)
    cli.add_command(renamed)
    for command in COMMANDS:
        cli.add_command(command)


_add_groups()


def main() -> None:
    cli(prog_name="handbook")
