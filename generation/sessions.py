"""Conversation sessions, persisted in SQLite (`sessions.sqlite` in the data folder).

A turn is written once, in one transaction, after its answer is complete: a failed or cancelled
answer (model down, timeout, Ctrl-C) leaves the session exactly as it was.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation.answer import Answerer
from generation.events import AnswerEvent, Done, Summarized
from generation.history import History, Turn
from handbook.errors import HandbookError
from handbook.sqlite import connect, transaction
from handbook.types import Answer

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    summary_upto INTEGER NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    answer_json TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (session_id, n)
);
"""


class SessionNotFound(HandbookError):
    pass


@dataclass(frozen=True)
class SessionInfo:
    id: str
    title: str
    created: float
    updated: float
    turns: int
    owner: str = ""
    """The API user who started it ('' from the CLI or before users existed: admins only)."""


@dataclass(frozen=True)
class StoredTurn:
    n: int
    answer: Answer
    created: float


class SessionStore:
    def __init__(self, path: Path) -> None:
        self._db = connect(path, SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        if "owner" not in columns:  # a sessions.sqlite from before users existed
            self._db.execute("ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        self._db.close()

    def create(self, title: str = "", owner: str = "") -> SessionInfo:
        now = time.time()
        session_id = uuid.uuid4().hex[:12]
        self._db.execute(
            "INSERT INTO sessions (id, title, created, updated, owner) VALUES (?, ?, ?, ?, ?)",
            (session_id, title, now, now, owner),
        )
        return SessionInfo(session_id, title, now, now, 0, owner)

    _INFO = (
        "SELECT s.id, s.title, s.created, s.updated, COUNT(t.n), s.owner FROM sessions s "
        "LEFT JOIN turns t ON t.session_id = s.id"
    )

    def all(self, owner: str | None = None) -> list[SessionInfo]:
        """Newest first; only `owner`'s when given."""
        where, args = ("WHERE s.owner = ? ", (owner,)) if owner is not None else ("", ())
        rows = self._db.execute(
            f"{self._INFO} {where}GROUP BY s.id ORDER BY s.updated DESC", args
        ).fetchall()
        return [SessionInfo(*row) for row in rows]

    def get(self, session_id: str) -> SessionInfo:
        row = self._db.execute(
            f"{self._INFO} WHERE s.id = ? GROUP BY s.id", (session_id,)
        ).fetchone()
        if row is not None:
            return SessionInfo(*row)
        raise SessionNotFound(
            f"There is no session {session_id!r}. `handbook chat` (or POST /v1/sessions) starts "
            "a new one; `handbook sessions list` (or GET /v1/sessions) shows the existing ones."
        )

    def history(self, session_id: str) -> History:
        self.get(session_id)
        turns = self._db.execute(
            "SELECT question, answer FROM turns WHERE session_id = ? ORDER BY n", (session_id,)
        ).fetchall()
        summary, upto = self._db.execute(
            "SELECT summary, summary_upto FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        return History(tuple(Turn(q, a) for q, a in turns), summary, upto)

    def turns(self, session_id: str) -> list[StoredTurn]:
        self.get(session_id)
        rows = self._db.execute(
            "SELECT n, answer_json, created FROM turns WHERE session_id = ? ORDER BY n",
            (session_id,),
        ).fetchall()
        return [StoredTurn(n, Answer.from_dict(json.loads(data)), at) for n, data, at in rows]

    def add_turn(
        self, session_id: str, answer: Answer, summary: tuple[str, int] | None = None
    ) -> None:
        """One transaction: the turn, the new summary (if any) and the session's title."""
        now = time.time()
        data = json.dumps(answer.to_dict(), ensure_ascii=False)
        with transaction(self._db):
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM turns WHERE session_id = ?", (session_id,)
            ).fetchone()
            self._db.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, count, answer.question, answer.answer, data, now),
            )
            self._db.execute(
                "UPDATE sessions SET updated = ?, title = CASE WHEN title = '' THEN ? "
                "ELSE title END WHERE id = ?",
                (now, answer.question[:80], session_id),
            )
            if summary is not None:
                self._db.execute(
                    "UPDATE sessions SET summary = ?, summary_upto = ? WHERE id = ?",
                    (*summary, session_id),
                )

    def reset(self, session_id: str) -> None:
        """Forget the session's turns; the session itself stays."""
        self.get(session_id)
        with transaction(self._db):
            self._db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
            self._db.execute(
                "UPDATE sessions SET summary = '', summary_upto = 0 WHERE id = ?", (session_id,)
            )

    def delete(self, session_id: str) -> None:
        self.get(session_id)
        self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))


class Conversation:
    """Asks within a session: history in, the finished turn out (and stored)."""

    def __init__(self, answerer: Answerer, store: SessionStore) -> None:
        self._answerer = answerer
        self._store = store

    async def stream(
        self, session_id: str, question: str, **kwargs: Any
    ) -> AsyncGenerator[AnswerEvent, None]:
        history = self._store.history(session_id)
        summary: tuple[str, int] | None = None
        async for event in self._answerer.stream(question, history=history, **kwargs):
            if isinstance(event, Summarized):
                summary = (event.text, event.upto)
            if isinstance(event, Done):
                self._store.add_turn(session_id, event.answer, summary)
            yield event
