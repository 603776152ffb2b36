"""Indexing: discover files, skip unchanged ones, load, chunk, embed, store, record.

Order of writes per document (what makes a killed run resumable without duplicates):
1. registry row written, its finished stages cleared;
2. chunks missing from the store embedded and upserted (ids are content hashes, so chunks
   stored by an interrupted run are not embedded again);
3. chunks of an older version of the file deleted;
4. the `vectors` stage recorded with the file's hash.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from handbook.config import Settings
from handbook.errors import HandbookError, LoaderError
from handbook.protocols import Embedder, VectorStore
from handbook.types import Chunk, SparseVector
from ingestion.chunking import chunk_document, embedding_text
from ingestion.doc_registry import STAGE_VECTORS, DocumentRecord, DocumentRegistry
from ingestion.loaders import load_document
from ingestion.progress import Progress
from retrieval import sparse

EMBED_BATCH = 64


class Status(StrEnum):
    INDEXED = "indexed"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    FAILED = "failed"


@dataclass(frozen=True)
class FileOutcome:
    path: str
    status: Status
    chunks: int = 0
    embedded: int = 0
    reason: str = ""
    doc_id: str = ""
    note: str = ""
    """Said about a file that was read (pages read by OCR, scanned pages left out)."""


@dataclass
class IndexReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == Status.FAILED]

    @property
    def embedded(self) -> int:
        return sum(o.embedded for o in self.outcomes)


def doc_id_for(path: Path) -> str:
    """Stable id of a file: a hash of its absolute path (content changes keep the id)."""
    return hashlib.sha256(str(path).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def discover(root: Path, extensions: tuple[str, ...]) -> tuple[list[Path], list[FileOutcome]]:
    """Files under root with a supported extension, plus problems found while walking.

    Follows symbolic links but visits each real folder once (symlink loops are reported, not
    followed forever). Hidden files and folders are skipped.
    """
    problems: list[FileOutcome] = []
    if not root.exists():
        if root.is_symlink():
            return [], [FileOutcome(str(root), Status.FAILED, reason=link_problem(root))]
        raise HandbookError(f"{root} does not exist.")
    if root.is_file():
        if root.suffix.lower() not in extensions:
            raise HandbookError(
                f"{root.name}: unsupported file type; Handbook reads {', '.join(extensions)}."
            )
        return [root.resolve()], problems
    files: list[Path] = []
    seen_dirs: set[str] = set()
    for current, dirs, names in _walk(root, problems):
        real = os.path.realpath(current)
        if real in seen_dirs:
            problems.append(
                FileOutcome(
                    current, Status.FAILED, reason="symbolic link loop (folder already visited)"
                )
            )
            dirs.clear()
            continue
        seen_dirs.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or Path(name).suffix.lower() not in extensions:
                continue
            path = Path(current, name)
            if not path.exists():
                problems.append(FileOutcome(str(path), Status.FAILED, reason=link_problem(path)))
                continue
            files.append(path.resolve())
    unique = list(dict.fromkeys(files))
    return unique, problems


def link_problem(path: Path) -> str:
    """Why a symbolic link leads to no file: a loop (named link by link), a missing target.

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> (folder / "a.md").symlink_to("b.md"); (folder / "b.md").symlink_to("a.md")
    >>> link_problem(folder / "a.md")
    'symbolic link loop (a.md -> b.md -> a.md); make one of them a real file or delete them'
    >>> (folder / "c.md").symlink_to("gone.md")
    >>> link_problem(folder / "c.md")
    'broken symbolic link (its target gone.md does not exist)'
    """
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            chain, seen, current = [path.name], {os.path.abspath(path)}, path
            while current.is_symlink() and len(chain) < 41:  # the kernel's limit is 40
                target = os.readlink(current)
                chain.append(target)
                current = current.parent / target
                if os.path.abspath(current) in seen:
                    break
                seen.add(os.path.abspath(current))
            return (
                f"symbolic link loop ({' -> '.join(chain)}); make one of them a real file or "
                "delete them"
            )
        if exc.errno == errno.ENOENT:
            return f"broken symbolic link (its target {os.readlink(path)} does not exist)"
        return f"cannot be read: {exc.strerror}"
    return "not a readable file"


def _walk(root: Path, problems: list[FileOutcome]) -> Iterator[tuple[str, list[str], list[str]]]:
    def on_error(exc: OSError) -> None:
        problems.append(
            FileOutcome(str(exc.filename), Status.FAILED, reason=f"cannot be read: {exc.strerror}")
        )

    yield from os.walk(root, followlinks=True, onerror=on_error)


@dataclass
class _Pending:
    """A document whose chunks are being embedded."""

    path: str
    doc_id: str
    sha256: str
    chunks: int
    todo: list[Chunk]
    stale: list[str]
    status: Status
    stored: int = 0
    note: str = ""


async def store_chunks(embedder: Embedder, store: VectorStore, chunks: Sequence[Chunk]) -> None:
    """Embed one batch of chunks (dense and lexical) and write it to the store."""
    texts = [embedding_text(c) for c in chunks]

    def lexical() -> list[SparseVector]:
        return [sparse.encode(text, c.language) for text, c in zip(texts, chunks, strict=True)]

    dense = await embedder.embed_documents(texts)
    vectors = await asyncio.to_thread(lexical)
    await store.upsert(chunks, dense, vectors)


class Indexer:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        store: VectorStore,
        registry: DocumentRegistry,
    ) -> None:
        self._settings = settings
        self._embedder = embedder
        self._store = store
        self._registry = registry

    async def index(self, root: Path, progress: Progress | None = None) -> IndexReport:
        started = time.perf_counter()
        progress = progress or Progress()
        if await self._store.count() == 0:
            # The store was emptied behind the registry's back (its folder deleted, a new
            # server): forget finished stages so every document is embedded again.
            self._registry.forget_stages()
        files, problems, vanished = await asyncio.to_thread(self._scan, root)
        report = IndexReport(outcomes=list(problems))
        progress.files(len(files))
        # Chunks from several documents share embedding batches (small documents would
        # otherwise make small, slow batches); a document is recorded as done only once
        # all of its chunks are stored.
        waiting: list[_Pending] = []
        queue: list[tuple[_Pending, Chunk]] = []
        for path in files:
            prepared = await self._prepare(path, progress)
            if isinstance(prepared, FileOutcome):
                report.outcomes.append(prepared)
                progress.file_done(str(path))
                continue
            waiting.append(prepared)
            queue += [(prepared, c) for c in prepared.todo]
            while len(queue) >= EMBED_BATCH:
                batch, queue = queue[:EMBED_BATCH], queue[EMBED_BATCH:]
                await self._store_batch(batch, progress)
            waiting = await self._finish_ready(waiting, report, progress)
        if queue:
            await self._store_batch(queue, progress)
        await self._finish_ready(waiting, report, progress)
        for record in vanished:
            await self.delete(record.doc_id)
            report.outcomes.append(
                FileOutcome(
                    record.path,
                    Status.REMOVED,
                    reason="file no longer exists",
                    doc_id=record.doc_id,
                )
            )
        report.seconds = time.perf_counter() - started
        return report

    def _scan(self, root: Path) -> tuple[list[Path], list[FileOutcome], list[DocumentRecord]]:
        """Files to index, problems found on the way, and indexed files that are gone."""
        root = Path(os.path.abspath(root.expanduser()))
        files, problems = discover(root, tuple(self._settings.index.extensions))
        vanished: list[DocumentRecord] = []
        if root.is_dir():
            found = {str(p) for p in files}
            vanished = [
                record
                for record in self._registry.under(root.resolve())
                if record.path not in found and not Path(record.path).exists()
            ]
        return files, problems, vanished

    async def _prepare(self, path: Path, progress: Progress) -> FileOutcome | _Pending:
        """Hash, skip if unchanged, load and chunk; what is left to embed for this file."""
        limit = self._settings.index.max_file_mb
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
            if size > limit * 1024 * 1024:
                return FileOutcome(
                    str(path),
                    Status.FAILED,
                    reason=f"{size / 1024 / 1024:.0f} MB is over the {limit:g} MB limit "
                    "(raise index.max_file_mb to index it)",
                )
            sha = await asyncio.to_thread(file_sha256, path)
        except OSError as exc:
            return FileOutcome(str(path), Status.FAILED, reason=f"cannot be read: {exc.strerror}")
        doc_id = doc_id_for(path)
        previous = self._registry.get(doc_id)
        if previous and self._registry.stage_done(doc_id, STAGE_VECTORS, sha):
            return FileOutcome(str(path), Status.UNCHANGED, chunks=previous.chunks, doc_id=doc_id)
        try:

            def on_page(done: int, total: int) -> None:
                progress.pages_read(str(path), done, total)

            document = await asyncio.to_thread(
                load_document, path, doc_id, sha, self._settings.index, on_page
            )
        except LoaderError as exc:
            # A file that was indexed before keeps its old chunks: nothing stored is lost.
            return FileOutcome(str(path), Status.FAILED, reason=str(exc), doc_id=doc_id)
        except RecursionError:
            return FileOutcome(str(path), Status.FAILED, reason="structure nested too deeply")
        except MemoryError:
            return FileOutcome(str(path), Status.FAILED, reason="too large to read into memory")
        chunks = await asyncio.to_thread(chunk_document, document, self._settings.chunking)
        pages = sum(1 for s in document.sections if s.page is not None) or None
        self._registry.begin(
            DocumentRecord(
                doc_id=doc_id,
                path=str(path),
                title=document.title,
                format=document.format,
                language=document.language,
                sha256=sha,
                size=size,
                chunks=len(chunks),
                pages=pages,
                updated_at=time.time(),
            )
        )
        stored = await self._store.chunk_ids(doc_id)
        todo = [c for c in chunks if c.id not in stored]
        progress.chunks_planned(len(todo))
        return _Pending(
            path=str(path),
            doc_id=doc_id,
            sha256=sha,
            chunks=len(chunks),
            todo=todo,
            stale=sorted(stored - {c.id for c in chunks}),
            # A document whose last run was killed before it finished was never indexed.
            status=Status.UPDATED if previous and previous.indexed else Status.INDEXED,
            note="; ".join(document.notes),
        )

    async def _store_batch(self, batch: list[tuple[_Pending, Chunk]], progress: Progress) -> None:
        await store_chunks(self._embedder, self._store, [c for _, c in batch])
        for pending, _ in batch:
            pending.stored += 1
        progress.chunks_done(len(batch))

    async def _finish_ready(
        self, waiting: list[_Pending], report: IndexReport, progress: Progress
    ) -> list[_Pending]:
        """Record the documents whose chunks are all stored; return those still waiting."""
        still: list[_Pending] = []
        for pending in waiting:
            if pending.stored < len(pending.todo):
                still.append(pending)
                continue
            await self._store.delete(pending.stale)
            self._registry.finish(
                pending.doc_id, STAGE_VECTORS, pending.sha256, detail=self._embedder.name
            )
            report.outcomes.append(
                FileOutcome(
                    pending.path,
                    pending.status,
                    chunks=pending.chunks,
                    embedded=len(pending.todo),
                    doc_id=pending.doc_id,
                    note=pending.note,
                )
            )
            progress.file_done(pending.path)
        return still

    async def delete(self, doc_id: str) -> None:
        """Remove a document from the store, then from the registry."""
        await self._store.delete_document(doc_id)
        self._registry.remove(doc_id)
