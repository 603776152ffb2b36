"""What every command group shares: the CLI state, user-facing errors, running a job."""

from __future__ import annotations

import errno
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from handbook.types import RETRIEVAL_MODES

if TYPE_CHECKING:
    from app.handbook import Handbook
    from handbook.config import Settings

T = TypeVar("T")
MODES = click.Choice(RETRIEVAL_MODES)


class State:
    def __init__(self, config: Path | None, debug: bool) -> None:
        self.config = config
        self.debug = debug
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from handbook.config import load_settings

            self._settings = load_settings(self.config)
        return self._settings


@contextmanager
def user_errors(ctx: click.Context) -> Iterator[None]:
    """Our errors as one red line and exit 1 (`--debug` shows the traceback instead)."""
    from handbook.errors import HandbookError

    try:
        yield
    except HandbookError as exc:
        if ctx.obj.debug:
            raise
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.secho("Interrupted. Run the same command again to resume.", fg="yellow", err=True)
        sys.exit(130)
    except (OSError, sqlite3.OperationalError) as exc:
        full = getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in str(exc)
        if not full or ctx.obj.debug:
            raise
        where = getattr(exc, "filename", None) or ctx.obj.settings.home
        click.secho(
            f"Error: the disk is full (writing {where}). Free some space and run the same "
            "command again: it resumes where this run stopped.",
            fg="red",
            err=True,
        )
        sys.exit(1)


def run(ctx: click.Context, work: Callable[[Handbook], Awaitable[T]]) -> T:
    """Build the container and run one async job in it."""
    import asyncio

    with user_errors(ctx):
        from app.handbook import Handbook

        async def main() -> T:
            async with Handbook(ctx.obj.settings) as hb:
                return await work(hb)

        return asyncio.run(main())
