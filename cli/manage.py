"""Command line, managing the data folder and the server: `handbook sessions|docs|models|config|
reset|serve`. Registered on the `handbook` group by `cli.main`.

Heavy libraries are imported inside the commands (`handbook --help` answers at once).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import click

from cli.common import T, run, user_errors

if TYPE_CHECKING:
    from app.handbook import Handbook
    from handbook.config import Settings


@click.group()
def sessions() -> None:
    """Conversation sessions: list, show, delete."""


@sessions.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def sessions_list(ctx: click.Context, as_json: bool) -> None:
    """List sessions, newest first."""
    from dataclasses import asdict

    from cli.render import sessions_table

    async def work(hb: Handbook) -> None:
        found = hb.sessions.all()
        if as_json:
            click.echo(json.dumps({"sessions": [asdict(s) for s in found]}, ensure_ascii=False))
        else:
            sessions_table(found)

    run(ctx, work)


@sessions.command("show")
@click.argument("session")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def sessions_show(ctx: click.Context, session: str, as_json: bool) -> None:
    """Print a session's questions and answers."""

    async def work(hb: Handbook) -> None:
        turns = hb.sessions.turns(session)
        if as_json:
            payload = {"session": session, "turns": [t.answer.to_dict() for t in turns]}
            click.echo(json.dumps(payload, ensure_ascii=False))
            return
        for turn in turns:
            click.secho(f"> {turn.answer.question}", bold=True)
            click.echo(turn.answer.answer + "\n")

    run(ctx, work)


@sessions.command("delete")
@click.argument("session")
@click.pass_context
def sessions_delete(ctx: click.Context, session: str) -> None:
    """Delete a session and its history."""

    async def work(hb: Handbook) -> None:
        hb.sessions.delete(session)
        click.echo(f"Deleted session {session}.")

    run(ctx, work)


# --- docs ----------------------------------------------------------------------------------


@click.group()
def docs() -> None:
    """List and delete indexed documents."""


@docs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def docs_list(ctx: click.Context, as_json: bool) -> None:
    """List indexed documents."""
    from dataclasses import asdict

    from cli.render import docs_table

    async def work(hb: Handbook) -> list[Any]:
        return hb.registry.all()

    records = run(ctx, work)
    if as_json:
        click.echo(json.dumps({"documents": [asdict(r) for r in records]}, ensure_ascii=False))
    else:
        docs_table(records)


@docs.command("delete")
@click.argument("doc")
@click.pass_context
def docs_delete(ctx: click.Context, doc: str) -> None:
    """Delete DOC (id, path or file name) from the index."""
    from handbook.errors import HandbookError, NotIndexed

    async def work(hb: Handbook) -> list[str]:
        found = hb.registry.find(doc)
        if not found:
            raise NotIndexed(f"No indexed document matches {doc!r}. See `handbook docs list`.")
        if len(found) > 1:
            listing = "\n".join(f"  {r.doc_id}  {r.path}" for r in found)
            raise HandbookError(f"{doc!r} matches several documents; give an id:\n{listing}")
        await hb.delete_document(found[0].doc_id)
        return [found[0].path]

    for path in run(ctx, work):
        click.echo(f"Deleted {path}")


# --- models (Ollama) ----------------------------------------------------------------------


@click.group()
def models() -> None:
    """Models on the Ollama server (chat.host): list, running, pull."""


def _ollama(ctx: click.Context, work: Callable[[Any], Awaitable[T]]) -> T:
    import asyncio

    from generation.ollama import OllamaModels

    async def main() -> T:
        async with OllamaModels(ctx.obj.settings.chat) as server:
            return await work(server)

    with user_errors(ctx):
        return asyncio.run(main())


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _print_models(found: list[Any], *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"models": [m.__dict__ for m in found]}))
        return
    for m in found:
        line = f"{m.name:40} {_size(m.size):>10}"
        if m.expires_at:  # loaded models (`ps`)
            vram = _size(m.size_vram) if m.size_vram else "-"
            line += f"  VRAM {vram:>8}  until {m.expires_at}"
        click.echo(line)


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def models_list(ctx: click.Context, as_json: bool) -> None:
    """Models the Ollama server has pulled."""
    _print_models(_ollama(ctx, lambda server: server.available()), as_json=as_json)


@models.command("ps")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def models_ps(ctx: click.Context, as_json: bool) -> None:
    """Models loaded in the Ollama server now, with memory and keep-alive expiry."""
    _print_models(_ollama(ctx, lambda server: server.running()), as_json=as_json)


@models.command("pull")
@click.argument("model", required=False)
@click.pass_context
def models_pull(ctx: click.Context, model: str | None) -> None:
    """Download MODEL (default: chat.model) into the Ollama server."""
    name = model or ctx.obj.settings.chat.model

    async def work(server: Any) -> None:
        last = ""
        async for status, done, total in server.pull(name):
            line = f"{status} {done * 100 // total}%" if total else status
            if line != last:
                click.echo(line, err=True)
                last = line

    _ollama(ctx, work)
    click.echo(f"Pulled {name}.")


# --- config and reset -------------------------------------------------------------------------


@click.group()
def config() -> None:
    """Show the resolved settings."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of YAML.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print the resolved settings (profile + handbook.yaml + HANDBOOK_* variables)."""
    from handbook.config import settings_as_dict

    with user_errors(ctx):
        data = settings_as_dict(ctx.obj.settings)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        import yaml

        click.echo(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), nl=False)


@config.command("example")
def config_example() -> None:
    """Print an example handbook.yaml with every setting and its description."""
    from handbook.config import example_yaml

    click.echo(example_yaml(), nl=False)


@click.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def reset(ctx: click.Context, yes: bool) -> None:
    """Delete the whole index (vectors, registry, knowledge graph) in the data folder.

    Sessions and the cache of extraction replies stay: a rebuilt graph costs no LLM call."""
    home = ctx.obj.settings.home
    if not yes:
        click.confirm(f"Delete the index in {home}?", abort=True)

    async def work(hb: Handbook) -> None:
        await hb.reset()

    run(ctx, work)
    click.echo(f"Index in {home} deleted.")


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: api.host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: api.port.")
@click.option(
    "--no-auth",
    is_flag=True,
    help="Serve beyond loopback without API keys (anyone who reaches the port can read and "
    "change the index).",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, no_auth: bool) -> None:
    """Run the HTTP API and the web page (http://HOST:PORT/, API docs at /docs)."""
    settings: Settings = ctx.obj.settings
    host = host or settings.api.host
    port = port or settings.api.port
    from api.auth import LOOPBACK, KeyRing
    from api.server import serve as run_server

    keys = KeyRing.from_settings(settings.api)
    with user_errors(ctx):
        keys.check_file()
    if not keys.current() and host not in LOOPBACK and not no_auth:
        raise click.UsageError(
            f"Listening on {host} needs API keys: set HANDBOOK_API_KEYS=key1,key2 (or api.keys, "
            "or api.keys_file with one key per line), or pass --no-auth to serve without them."
        )
    with user_errors(ctx):
        run_server(settings, host, port)


@click.command()
@click.option(
    "--release-after",
    type=click.FloatRange(min=0.1),
    default=300.0,
    show_default=True,
    help="Seconds after the last call before the index is closed (and its folder free for "
    "`handbook index`); the next call opens it again.",
)
@click.pass_context
def mcp(ctx: click.Context, release_after: float) -> None:
    """Serve the manuals to an AI assistant over MCP on stdin/stdout (Claude Desktop, IDE
    agents): tools search, ask and list_documents, documents as resources. The assistant starts
    this command; see the README. Logs go to stderr."""
    from api.mcp_server import run_stdio

    with user_errors(ctx):
        run_stdio(ctx.obj.settings, release_after)


COMMANDS = (sessions, docs, models, config, reset, serve, mcp)
