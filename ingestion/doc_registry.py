"""The document registry (SQLite): which files are indexed, their hashes and finished stages.

A document's `sha256` together with a finished stage tells `index` to skip it. A stage is
recorded only after the store has durably taken the document's data, so a run killed half-way
leaves the stage unrecorded and the next run redoes it (chunk ids are content hashes, so
nothing is duplicated).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handbook.sqlite import connect, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    format TEXT NOT NULL,
    language TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    chunks INTEGER NOT NULL DEFAULT 0,
    pages INTEGER,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS stages (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    done_at REAL NOT NULL,
    PRIMARY KEY (doc_id, stage)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

STAGE_VECTORS = "vectors"


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    path: str
    title: str
    format: str
    language: str
    sha256: str
    size: int
    chunks: int
    pages: int | None
    updated_at: float
    indexed: bool = True
    """Its vectors are stored for its current content. False: a run that started it was killed
    (or failed) before it finished; `chunks` is then what that run meant to store, and the
    next `handbook index` redoes it."""


class DocumentRegistry:
    def __init__(self, path: Path) -> None:
        # A power cut can lose the last commits (handbook.sqlite); the write order (stage
        # recorded last) makes that a redo, not a loss.
        self._db = connect(path, SCHEMA)

    def close(self) -> None:
        self._db.close()

    def get(self, doc_id: str) -> DocumentRecord | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS}, {_INDEXED} FROM documents d WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        return _record(row) if row else None

    def all(self) -> list[DocumentRecord]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS}, {_INDEXED} FROM documents d ORDER BY path"
        ).fetchall()
        return [_record(row) for row in rows]

    def find(self, key: str) -> list[DocumentRecord]:
        """Documents matching an id, an id prefix, a path or a file name."""
        resolved = str(Path(key).expanduser().resolve()) if key else key
        rows = self._db.execute(
            f"SELECT {_COLUMNS}, {_INDEXED} FROM documents d WHERE doc_id = ? OR path = ? "
            "OR (length(?) >= 4 AND doc_id LIKE ? || '%') ORDER BY path",
            (key, resolved, key, key),
        ).fetchall()
        if not rows:
            rows = [
                r
                for r in self._db.execute(
                    f"SELECT {_COLUMNS}, {_INDEXED} FROM documents d"
                ).fetchall()
                if Path(r[1]).name == key
            ]
        return [_record(row) for row in rows]

    def stage_done(self, doc_id: str, stage: str, sha256: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM stages WHERE doc_id = ? AND stage = ? AND sha256 = ?",
            (doc_id, stage, sha256),
        ).fetchone()
        return row is not None

    def begin(self, record: DocumentRecord) -> None:
        """Record a document about to be (re)indexed; clears its finished stages."""
        with transaction(self._db):
            self._db.execute("DELETE FROM stages WHERE doc_id = ?", (record.doc_id,))
            self._db.execute(
                f"INSERT OR REPLACE INTO documents ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    record.doc_id,
                    record.path,
                    record.title,
                    record.format,
                    record.language,
                    record.sha256,
                    record.size,
                    record.chunks,
                    record.pages,
                    record.updated_at,
                ),
            )

    def finish(self, doc_id: str, stage: str, sha256: str, detail: str = "") -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO stages (doc_id, stage, sha256, detail, done_at) "
            "VALUES (?,?,?,?,?)",
            (doc_id, stage, sha256, detail, time.time()),
        )

    def forget_stages(self) -> None:
        self._db.execute("DELETE FROM stages")

    def remove(self, doc_id: str) -> None:
        self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    def under(self, root: Path) -> list[DocumentRecord]:
        prefix = str(root).rstrip("/") + "/"
        return [r for r in self.all() if r.path.startswith(prefix) or r.path == str(root)]

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


_COLUMNS = "doc_id, path, title, format, language, sha256, size, chunks, pages, updated_at"
_INDEXED = (
    f"EXISTS (SELECT 1 FROM stages s WHERE s.doc_id = d.doc_id AND s.stage = '{STAGE_VECTORS}' "
    "AND s.sha256 = d.sha256)"
)


def _record(row: tuple[Any, ...]) -> DocumentRecord:
    doc_id, path, title, form, language, sha256, size, chunks, pages, updated_at, indexed = row
    return DocumentRecord(
        doc_id, path, title, form, language, sha256, size, chunks, pages, updated_at, bool(indexed)
    )
