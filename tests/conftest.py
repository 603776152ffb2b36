"""Shared fixtures. Every test gets its own data folder and working directory."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handbook.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "manuals"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
QUESTIONS = ROOT / "eval" / "questions" / "retrieval.jsonl"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Data folder and cwd in tmp_path; no HANDBOOK_* variables leak in from the shell."""
    for name in list(os.environ):
        if name.startswith("HANDBOOK_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("HANDBOOK_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    yield home


def run_cli(
    *args: str,
    home: Path,
    timeout: int = 600,
    stdin: str | None = None,
    path: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m cli ARGS` (this checkout's code) in a subprocess on the data folder
    `home`, with no HANDBOOK_* variable of the shell; `path` replaces PATH (a machine without
    some program)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    env["HANDBOOK_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


def make_settings(home: Path, **env: str) -> Settings:
    values = {"HANDBOOK_HOME": str(home)}
    values.update({f"HANDBOOK_{k.upper()}": v for k, v in env.items()})
    return load_settings(environ=values)


@pytest.fixture
def settings(isolated: Path) -> Settings:
    return make_settings(isolated)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A writable copy of the sample manuals."""
    target = tmp_path / "manuals"
    shutil.copytree(SAMPLES, target)
    return target


@pytest.fixture(scope="session")
def indexed_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample manuals indexed once with the default (offline) profile."""
    from app.handbook import Handbook

    home = tmp_path_factory.mktemp("indexed") / "home"

    async def build() -> None:
        async with Handbook(make_settings(home)) as hb:
            report = await (await hb.indexer()).index(SAMPLES)
            assert not report.failed, report.failed

    asyncio.run(build())
    return home


@pytest.fixture
def own_index(indexed_home: Path, tmp_path: Path) -> Path:
    """A copy of the indexed sample manuals that a test may write to (sessions, usage)."""
    copy = tmp_path / "indexed-copy"
    shutil.copytree(indexed_home, copy)
    return copy


@pytest.fixture
def scripted() -> Iterator[Any]:
    """The scripted chat model (bench/support/scripted_chat.py), registered as backend
    'scripted' for one test."""
    from bench.support.scripted_chat import ScriptedChat
    from generation.base import CHAT_MODELS

    CHAT_MODELS.register("scripted", ScriptedChat)
    ScriptedChat.script = ""
    ScriptedChat.respond = None
    ScriptedChat.fail_after = None
    ScriptedChat.fail_calls_after = None
    ScriptedChat.calls = []
    ScriptedChat.created = []
    yield ScriptedChat
    CHAT_MODELS.unregister("scripted")
