"""The extraction model's replies and each document's yield, in SQLite: replies keyed by model
and prompt (the prompt holds the chunk), written as they arrive, so a re-run over unchanged
chunks makes no LLM call and a run killed half-way keeps what it had."""

from __future__ import annotations

import time
from pathlib import Path

from handbook.sqlite import connect
from ingestion.graph_yield import Yield

REPLIES = "replies.sqlite"


class ReplyCache:
    """Extraction model replies (SQLite), and the yield of each document's extraction."""

    def __init__(self, path: Path) -> None:
        self._db = connect(
            path,
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
            "reply TEXT NOT NULL, created REAL NOT NULL);"
            "CREATE TABLE IF NOT EXISTS yields (doc_id TEXT NOT NULL, model TEXT NOT NULL, "
            "chunks INT, entities INT, relations INT, malformed INT, empty INT, "
            "PRIMARY KEY (doc_id, model));",
        )

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, model: str, reply: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)", (key, model, reply, time.time())
        )

    def set_yield(self, doc_id: str, model: str, found: Yield) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO yields VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc_id, model, found.chunks, found.entities, found.relations, found.malformed,
             found.empty),
        )  # fmt: skip

    def yields(self) -> dict[tuple[str, str], Yield]:
        rows = self._db.execute("SELECT * FROM yields").fetchall()
        return {(doc, model): Yield(*counts) for doc, model, *counts in rows}

    def forget(self, doc_id: str) -> None:
        self._db.execute("DELETE FROM yields WHERE doc_id = ?", (doc_id,))

    def forget_all(self) -> None:
        self._db.execute("DELETE FROM yields")

    def close(self) -> None:
        self._db.close()
