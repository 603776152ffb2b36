"""Index jobs: queued and run one at a time (the embedded store has a single writer), while
questions keep being answered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.handbook import Handbook
from handbook.errors import HandbookError
from ingestion.pipeline import Status

log = logging.getLogger("handbook.api")
KEEP = 1000  # finished jobs remembered

JobState = Literal["queued", "running", "done", "failed"]


@dataclass
class Job:
    id: str
    path: str
    state: JobState = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    documents: list[dict[str, Any]] = field(default_factory=list)
    graph: dict[str, Any] | None = None
    kept: Path | None = None
    """The earlier upload this one replaced: put back if this one fails to index."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": Path(self.path).name,
            "state": self.state,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
            "documents": self.documents,
            "graph": self.graph,
        }


class IndexJobs:
    """`submit(path)` queues an index run of one file or folder; one worker runs them."""

    def __init__(self, handbook: Handbook) -> None:
        self._handbook = handbook
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._worker: asyncio.Task[None] | None = None
        self.writer = asyncio.Lock()
        """Held while a job runs; document deletes and upload writes take it too."""

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="index-jobs")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    def submit(self, path: Path, kept: Path | None = None) -> Job:
        job = Job(uuid.uuid4().hex[:12], str(path), kept=kept)
        self._jobs[job.id] = job
        while len(self._jobs) > KEEP:
            self._jobs.popitem(last=False)
        self._queue.put_nowait(job)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return list(reversed(self._jobs.values()))

    @property
    def busy(self) -> bool:
        return any(job.state in ("queued", "running") for job in self._jobs.values())

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                async with self.writer:
                    job.state, job.started = "running", time.time()
                    await self._index(job)
                job.state = "failed" if job.error else "done"
            except HandbookError as exc:
                job.state, job.error = "failed", str(exc)
            except Exception as exc:  # a bug must not stop the worker; the log has the trace
                log.exception("index job %s failed", job.id)
                job.state, job.error = "failed", f"internal error ({type(exc).__name__})"
            if job.kept is not None:
                self._settle(job)
            job.finished = time.time()

    @staticmethod
    def _settle(job: Job) -> None:
        """An upload that replaced an earlier file: keep it if it was indexed, else put the
        earlier file back (its chunks are still the ones in the index)."""
        assert job.kept is not None
        if job.state == "failed":
            job.kept.replace(job.path)
            job.error = f"{job.error} The earlier {Path(job.path).name} was kept."
        else:
            job.kept.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # only when empty: no other replacement pending
            job.kept.parent.rmdir()

    async def _index(self, job: Job) -> None:
        hb = self._handbook
        report = await (await hb.indexer()).index(Path(job.path))
        job.documents = [
            {"id": o.doc_id, "path": Path(o.path).name, "status": str(o.status),
             "chunks": o.chunks, "reason": o.reason, "note": o.note}
            for o in report.outcomes
        ]  # fmt: skip
        failed = [o for o in report.outcomes if o.status == Status.FAILED]
        if failed:
            job.error = "; ".join(f"{Path(o.path).name}: {o.reason}" for o in failed)
        if hb.settings.graph.enabled and not failed:
            graph = await hb.build_graph()
            job.graph = {
                "llm_calls": graph.llm_calls,
                "documents": len(graph.built),
                "failed": [reason for _, reason in graph.failed],
            }
