"""Indexing with the real offline components: incremental, replace, delete, resume, bad input."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from app.handbook import Handbook
from handbook.config import Settings
from handbook.errors import StoreLocked
from ingestion.pipeline import IndexReport, Status
from tests.conftest import make_settings


def index(settings: Settings, path: Path) -> IndexReport:
    async def work() -> IndexReport:
        async with Handbook(settings) as hb:
            return await (await hb.indexer()).index(path)

    return asyncio.run(work())


def state(settings: Settings) -> tuple[set[str], int, list[tuple[str, str, int]]]:
    """Chunk ids in the store, their count, and the registry rows."""

    async def work() -> tuple[set[str], int, list[tuple[str, str, int]]]:
        async with Handbook(settings) as hb:
            store = await hb.store()
            ids: set[str] = set()
            for record in hb.registry.all():
                ids |= await store.chunk_ids(record.doc_id)
            rows = [(r.path, r.sha256, r.chunks) for r in hb.registry.all()]
            return ids, await store.count(), rows

    return asyncio.run(work())


def small_corpus(root: Path) -> Path:
    root.mkdir()
    (root / "a.md").write_text(
        "# Wartung\n\nÖlwechsel alle 15 000 km.\n\n## Bremsen\n\nBeläge ab 2 mm ersetzen.\n",
        encoding="utf-8",
    )
    (root / "b.txt").write_text(
        "Pressure\n========\n\nMaximum pressure 210 bar.\n", encoding="utf-8"
    )
    return root


def test_rerun_is_incremental_and_changes_replace_chunks(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = small_corpus(tmp_path / "docs")
    first = index(settings, corpus)
    assert first.count(Status.INDEXED) == 2 and first.embedded > 0

    again = index(settings, corpus)
    assert again.count(Status.UNCHANGED) == 2
    assert again.embedded == 0, "an unchanged folder does no embedding work"

    ids_before, count_before, _ = state(settings)
    (corpus / "b.txt").write_text(
        "Pressure\n========\n\nMaximum pressure 250 bar.\n", encoding="utf-8"
    )
    changed = index(settings, corpus)
    assert changed.count(Status.UPDATED) == 1 and changed.count(Status.UNCHANGED) == 1
    ids_after, count_after, rows = state(settings)
    assert count_after == count_before
    assert len(ids_before - ids_after) == 1 and len(ids_after - ids_before) == 1

    (corpus / "a.md").unlink()
    removed = index(settings, corpus)
    assert removed.count(Status.REMOVED) == 1
    _, count, rows = state(settings)
    assert [Path(r[0]).name for r in rows] == ["b.txt"]
    assert count == rows[0][2]


def test_bad_files_are_reported_and_nothing_stored_is_lost(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = small_corpus(tmp_path / "docs")
    index(settings, corpus)
    _, count_before, _ = state(settings)

    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(300))
    (corpus / "fake.txt").write_bytes(bytes(range(256)) * 4)
    (corpus / "empty.md").write_text("", encoding="utf-8")
    (corpus / "loop").symlink_to(corpus, target_is_directory=True)
    (corpus / "dangling.md").symlink_to(tmp_path / "missing.md")
    (corpus / "x.md").symlink_to("y.md")  # a loop of file links: was "broken symbolic link"
    (corpus / "y.md").symlink_to("x.md")
    big = corpus / "huge.txt"
    with big.open("wb") as fh:
        fh.truncate(3 * 1024 * 1024)
    small_limit = make_settings(settings.home, INDEX__MAX_FILE_MB="2")
    report = index(small_limit, corpus)

    reasons = {Path(o.path).name: o.reason for o in report.failed}
    assert "damaged" in reasons["broken.pdf"]
    assert "binary" in reasons["fake.txt"]
    assert "empty" in reasons["empty.md"]
    assert "symbolic link loop" in reasons["loop"]
    assert "broken symbolic link" in reasons["dangling.md"]
    assert "missing.md does not exist" in reasons["dangling.md"]
    assert reasons["x.md"].startswith("symbolic link loop (x.md -> y.md -> x.md)")
    assert reasons["y.md"].startswith("symbolic link loop (y.md -> x.md -> y.md)")
    assert "over the 2 MB limit" in reasons["huge.txt"]
    assert report.count(Status.UNCHANGED) == 2
    assert state(settings)[1] == count_before

    # A file that was indexed and then broke keeps its old chunks.
    (corpus / "b.txt").write_bytes(b"\x00\x01" * 100)
    index(small_limit, corpus)
    assert state(settings)[1] == count_before


def test_reset_and_a_store_emptied_behind_the_registry(settings: Settings, tmp_path: Path) -> None:
    import shutil

    corpus = small_corpus(tmp_path / "docs")
    first = index(settings, corpus)
    shutil.rmtree(settings.store_path)  # the vectors vanish, the registry stays
    again = index(settings, corpus)
    assert again.embedded == first.embedded, "everything is embedded again, not skipped"
    assert state(settings)[1] == first.embedded

    async def reset() -> None:
        async with Handbook(settings) as hb:
            await hb.reset()

    asyncio.run(reset())
    assert state(settings) == (set(), 0, [])
    assert index(settings, corpus).count(Status.INDEXED) == 2


def test_second_process_gets_a_clear_lock_message(settings: Settings) -> None:
    async def work() -> None:
        async with Handbook(settings):
            with pytest.raises(StoreLocked, match="in use by"):
                async with Handbook(settings):
                    pass

    asyncio.run(work())
