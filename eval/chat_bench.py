"""Chat quality benchmark: every question through the full RAG path for each model.

    handbook eval run --models llamacpp:default ollama:llama3.2:3b adapter:PATH \\
        --questions eval/questions/plc_de.jsonl
    handbook eval report RUN

Per answer: key-fact recall, citation correctness (a cited passage is from the question's source
document and page or section), correct refusal of unanswerable questions, answer language =
question language, faithfulness, retrieval hit and reciprocal rank; time to first token,
tokens/s, total latency. Per model: load time and peak memory (RSS of this process; CUDA
memory; Ollama's own figures from `ps`).

Faithfulness without a judge model is a local heuristic: the share of the answer's sentences
whose numbers all appear in the retrieved sources and at least 60% of whose content words
(4+ letters) do. With `--judge MODEL`, the judge says per answer whether every claim is supported
by the sources, and compares the models' answers pairwise in both orders (a win counts only
when both orders agree).

Each (model, question) result is appended to `RUN/results.jsonl` as it finishes; running the
same command with `--run RUN` again continues where it stopped. A model that fails (not
installed, server down) is recorded as failed with the reason and the run goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from eval.memory import PeakMemory, cuda_peak_mb, rss_mb
from eval.retrieval import is_hit
from eval.scoring import CITED, faithfulness, key_fact_recall
from handbook.config import ChatSettings, Settings
from handbook.errors import ConfigError, HandbookError
from handbook.jsonl import read_lines, read_records
from handbook.language import detect_language
from handbook.protocols import ChatModel
from handbook.provenance import git_revision
from handbook.types import Answer, AnswerMode, Passage, RetrievalMode

if TYPE_CHECKING:
    from generation.answer import Answerer

TASKS = ("SPEC", "PROCEDURE", "EXPLAIN", "TROUBLESHOOT")
SPEC_HELP = (
    "extract (the extractive answerer), ollama:TAG, llamacpp:default or llamacpp:FILE.gguf, "
    "adapter:FOLDER, transformers:MODEL"
)


@dataclass(frozen=True)
class BenchQuestion:
    id: str
    language: str
    task: str
    question: str
    reference: str
    key_facts: tuple[str, ...]
    doc: str | None
    page: int | None
    section: str | None
    answerable: bool


def load_questions(paths: Iterable[Path]) -> list[BenchQuestion]:
    """Questions from JSONL files; every bad line is reported with its file and number."""
    questions: list[BenchQuestion] = []
    problems: list[str] = []
    seen: set[str] = set()
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"The question file {path} does not exist.")
        for line in read_lines(path):
            where = f"{path.name}:{line.number}"
            if line.problem is not None:
                problems.append(f"{where}: {line.problem}")
                continue
            raw = line.value
            try:
                if not isinstance(raw, dict):
                    raise ValueError("not an object")
                question = BenchQuestion(
                    id=str(raw["id"]),
                    language=str(raw["language"]),
                    task=str(raw.get("task", "EXPLAIN")),
                    question=str(raw["question"]),
                    reference=str(raw.get("reference", "")),
                    key_facts=tuple(str(f) for f in raw.get("key_facts") or ()),
                    doc=raw.get("doc"),
                    page=raw.get("page"),
                    section=raw.get("section"),
                    answerable=bool(raw.get("answerable", True)),
                )
            except (KeyError, ValueError, TypeError) as exc:
                problems.append(f"{where}: missing or bad field {exc}")
                continue
            if question.language not in ("de", "en"):
                problems.append(f"{where}: language must be de or en")
            elif question.task not in TASKS:
                problems.append(f"{where}: task must be one of {', '.join(TASKS)}")
            elif question.answerable and not question.key_facts:
                problems.append(f"{where}: an answerable question needs key_facts")
            elif question.id in seen:
                problems.append(f"{where}: the id {question.id!r} is used twice")
            else:
                seen.add(question.id)
                questions.append(question)
    if problems:
        raise ConfigError("Bad question files:\n" + "\n".join(f"  {p}" for p in problems))
    if not questions:
        raise ConfigError("The question files hold no questions.")
    return questions


EXTRACT = "extract"
"""The model spec of the extractive answerer: the manuals' own spans, no model call. Every
report shows whether a generative model beats quoting the manual."""


def chat_settings(spec: str, base: ChatSettings) -> ChatSettings:
    """The chat settings a model spec names.

    >>> chat_settings("ollama:llama3.2:3b", ChatSettings()).model
    'llama3.2:3b'
    """
    kind, _, name = spec.partition(":")
    if spec == EXTRACT:
        return base  # no model answers: the extractive answerer quotes the manuals
    if not name:
        raise ConfigError(f"Unknown model {spec!r}; name one as {SPEC_HELP}.")
    if kind == "ollama":
        return base.model_copy(update={"backend": "ollama", "model": name, "adapter": None})
    if kind == "llamacpp":
        model = "smollm2" if name == "default" else name
        return base.model_copy(update={"backend": "llamacpp", "model": model, "adapter": None})
    if kind == "transformers":
        return base.model_copy(update={"backend": "adapter", "model": name, "adapter": None})
    if kind == "adapter":
        folder = Path(name).expanduser()
        meta = folder / "handbook.json"
        if not meta.is_file():
            raise ConfigError(f"{folder} is not an adapter from `handbook finetune train`.")
        base_model = json.loads(meta.read_text(encoding="utf-8")).get("base_model", "smollm2")
        if (folder / "adapter_config.json").is_file():
            update = {"backend": "adapter", "model": base_model, "adapter": str(folder)}
        else:  # a fully fine-tuned model folder
            update = {"backend": "adapter", "model": str(folder), "adapter": None}
        return base.model_copy(update={**update, "task_prefix": True})
    raise ConfigError(f"Unknown model {spec!r}; name one as {SPEC_HELP}.")


# --- scoring (eval/scoring.py holds the measures) ----------------------------------------


def score(question: BenchQuestion, answer: Answer, passages: Sequence[Passage]) -> dict[str, Any]:
    """Per-answer quality figures (None where a figure does not apply)."""
    refused = not answer.found
    cited = {int(n) for n in CITED.findall(answer.answer)}
    given = [p for n, p in enumerate(passages, start=1) if not cited or n in cited]
    hits = [n for n, p in enumerate(passages, start=1) if is_hit(question, p)]
    if question.answerable:
        recall = key_fact_recall(answer.answer, question.key_facts)
        correct = recall == 1.0 and not refused
        citation = any(is_hit(question, p) for p in given) if answer.found else False
    else:
        recall = None
        correct = refused
        citation = None
    return {
        "key_fact_recall": recall,
        "correct": correct,
        "refused": refused,
        "refusal_correct": refused if not question.answerable else None,
        "citation_correct": citation,
        "language_match": detect_language(answer.answer) == question.language,
        "faithfulness": faithfulness(answer.answer, passages) if answer.found else None,
        "hit": bool(hits) if question.answerable else None,
        "reciprocal_rank": (1.0 / hits[0] if hits else 0.0) if question.answerable else None,
    }


# --- the run ---------------------------------------------------------------------------------


class Run:
    """A run folder: `run.json` (what was asked of it) and `results.jsonl` (one line per
    finished model x question)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.results_path = folder / "results.jsonl"

    def results(self) -> list[dict[str, Any]]:
        return read_records(self.results_path)  # a line cut by a kill: that question is asked again

    def done(self) -> set[tuple[str, str]]:
        return {(r["model"], r["id"]) for r in self.results()}

    def add(self, row: dict[str, Any]) -> None:
        with self.results_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()

    def meta(self) -> dict[str, Any]:
        path = self.folder / "run.json"
        data: dict[str, Any] = (
            json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        )
        return data

    def start(self, models: Sequence[str], files: Sequence[Path], mode: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.meta()
        if meta and (meta.get("models") != list(models) or meta.get("mode") != mode):
            raise ConfigError(
                f"{self.folder} holds a run with models {meta.get('models')} and mode "
                f"{meta.get('mode')}; resume it with the same --models and --mode, or start "
                "a new run folder."
            )
        if not meta:
            meta = {
                "models": list(models),
                "questions": [str(f) for f in files],
                "mode": mode,
                "started": time.time(),
                "git_revision": git_revision(),
            }
            (self.folder / "run.json").write_text(json.dumps(meta, indent=2) + "\n")


Progress = Callable[[str, int, int], None]


class Services(Protocol):
    """What the benchmark asks of the composition root (`app.Handbook`): an answerer and the
    configured chat model."""

    async def answerer(self) -> Answerer: ...

    def chat(self) -> ChatModel: ...


OpenServices = Callable[[Settings], AbstractAsyncContextManager[Services]]
"""Opens the services for some settings (`app.Handbook`); the caller, a face, passes it in so
that the benchmark, a part, does not import the root above it."""


async def run_model(
    settings: Settings,
    spec: str,
    questions: Sequence[BenchQuestion],
    run: Run,
    mode: RetrievalMode,
    progress: Progress | None = None,
    *,
    services: OpenServices,
) -> None:
    """Ask `questions` not yet answered by `spec`; append each result to the run."""
    from generation.events import Done, Retrieved, Token

    done = run.done()
    todo = [q for q in questions if (spec, q.id) not in done]
    if not todo:
        return
    chat = chat_settings(spec, settings.chat)
    residency = settings.residency.model_copy(update={"extraction_can_chat": False})
    own = settings.model_copy(update={"chat": chat, "residency": residency})
    failure = ""
    with PeakMemory() as memory:
        async with services(own) as hb:
            answerer = await hb.answerer()
            model = hb.chat()
            extract = spec == EXTRACT
            answer_mode: AnswerMode = "extract" if extract else "generate"
            started = time.perf_counter()
            try:
                if not extract:
                    await model.load()
            except HandbookError as exc:
                failure = str(exc)
            load_seconds = 0.0 if extract else model.load_seconds or (time.perf_counter() - started)
            for n, question in enumerate(todo, start=1):
                if progress is not None:
                    progress(spec, n, len(todo))
                row: dict[str, Any] = {
                    "model": spec,
                    "model_name": EXTRACT if extract else model.name,
                    **{k: v for k, v in asdict(question).items() if k != "key_facts"},
                    "key_facts": list(question.key_facts),
                }
                if failure:
                    run.add({**row, "failed": failure})
                    continue
                passages: Sequence[Passage] = ()
                first: float | None = None
                pieces: list[str] = []
                asked = time.perf_counter()
                try:
                    events = answerer.stream(question.question, mode=mode, answer_mode=answer_mode)
                    async for event in events:
                        if isinstance(event, Retrieved):
                            passages = event.result.passages
                        elif isinstance(event, Token):
                            first = first or time.perf_counter()
                            pieces.append(event.text)
                        elif isinstance(event, Done):
                            answer = event.answer
                except HandbookError as exc:  # recorded; the next question is tried
                    run.add({**row, "failed": str(exc)})
                    continue
                total = time.perf_counter() - asked
                generated = answer.model_answer or "".join(pieces)
                tokens = model.count_tokens(generated) if generated and not extract else 0
                generating = total - (first - asked) if first else 0.0
                row.update(
                    {
                        "answer": answer.answer,
                        "model_answer": answer.model_answer,
                        "found": answer.found,
                        "citations": [c.to_dict() for c in answer.citations],
                        "sources": [p.chunk.text[:800] for p in passages],
                        "ttft_s": (first - asked) if first else None,
                        "total_s": total,
                        "tokens": tokens,
                        "tokens_per_s": tokens / generating if generating > 0 else None,
                        "load_s": load_seconds,
                        "rss_mb": max(memory.peak, rss_mb()),
                        "cuda_mb": cuda_peak_mb(),
                        **score(question, answer, passages),
                    }
                )
                run.add(row)
            if chat.backend == "ollama" and not failure:
                await _record_ollama(hb, run, spec, chat.model)


async def _record_ollama(hb: Any, run: Run, spec: str, tag: str) -> None:
    """Ollama's own memory figures for the model (`ps`), kept beside the results."""
    from generation.ollama import OllamaModels

    try:
        async with OllamaModels(hb.settings.chat) as server:
            loaded = await server.running()
    except HandbookError:
        return
    for model in loaded:
        if model.name.startswith(tag):
            path = run.folder / "ollama.json"
            data = json.loads(path.read_text()) if path.is_file() else {}
            vram = model.size_vram / 2**20 if model.size_vram is not None else None
            data[spec] = {"size_mb": model.size / 2**20, "vram_mb": vram}
            path.write_text(json.dumps(data, indent=2) + "\n")


# --- the judge -------------------------------------------------------------------------------

JUDGE_FAITHFUL = (
    "You check answers from a technical assistant against its sources. Reply with one word: "
    "YES if every claim of the answer is supported by the sources, NO otherwise."
)
JUDGE_PAIR = (
    "You compare two answers to a question about technical manuals. The better answer is "
    "correct, complete, supported by the sources and in the question's language. Reply with "
    "one character: 1 or 2."
)


def _verdict(reply: str, choices: Sequence[str]) -> str | None:
    """The first of `choices` the reply starts with (case aside), if any.

    >>> _verdict(" Yes, all claims.", ["YES", "NO"]), _verdict("2", ["1", "2"])
    ('YES', '2')
    """
    head = reply.strip().upper()
    return next((c for c in choices if head.startswith(c)), None)


async def run_judge(settings: Settings, spec: str, run: Run, *, services: OpenServices) -> int:
    """Faithfulness of every answer, and every pair of models on every question in both
    orders, by the judge model `spec`; appended to RUN/judge.jsonl (resumable). Returns how
    many verdicts were asked for."""
    from handbook.types import Message, Role

    path = run.folder / "judge.jsonl"
    done: set[tuple[str, ...]] = {tuple(entry["key"]) for entry in read_records(path)}
    answered = [r for r in run.results() if "failed" not in r]
    by_question: dict[str, dict[str, dict[str, Any]]] = {}
    for row in answered:
        by_question.setdefault(row["id"], {})[row["model"]] = row
    own = settings.model_copy(update={"chat": chat_settings(spec, settings.chat)})
    asked = 0
    async with services(own) as hb:
        judge = hb.chat()

        async def ask(system: str, user: str) -> str:
            messages = [Message(Role.SYSTEM, system), Message(Role.USER, user)]
            return "".join([piece async for piece in judge.stream(messages)])

        def record(entry: dict[str, Any]) -> None:
            with path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")

        for qid, rows in by_question.items():
            for model, row in rows.items():
                key = ("faithful", model, qid)
                if key in done or not row["found"]:
                    continue
                sources = "\n\n".join(f"[{n}] {t}" for n, t in enumerate(row["sources"], 1))
                reply = await ask(
                    JUDGE_FAITHFUL, f"Sources:\n{sources}\n\nAnswer:\n{row['answer']}"
                )
                verdict = _verdict(reply, ["YES", "NO"])
                record(
                    {"key": list(key), "faithful": None if verdict is None else verdict == "YES"}
                )
                asked += 1
            models = sorted(rows)
            for i, a in enumerate(models):
                for b in models[i + 1 :]:
                    pair_key = ("pair", a, b, qid)
                    if pair_key in done:
                        continue
                    votes = []
                    for first, second in ((a, b), (b, a)):
                        prompt = (
                            f"Question: {rows[a]['question']}\n\n"
                            f"Answer 1:\n{rows[first]['answer']}\n\n"
                            f"Answer 2:\n{rows[second]['answer']}"
                        )
                        choice = _verdict(await ask(JUDGE_PAIR, prompt), ["1", "2"])
                        votes.append(None if choice is None else first if choice == "1" else second)
                        asked += 1
                    winner = votes[0] if votes[0] is not None and votes[0] == votes[1] else "tie"
                    record({"key": list(pair_key), "votes": votes, "winner": winner})
    return asked


def judgements(run: Run) -> tuple[dict[tuple[str, str], bool | None], list[dict[str, Any]]]:
    """The judge's faithfulness verdicts by (model, question), and its pairwise comparisons."""
    path = run.folder / "judge.jsonl"
    faithful: dict[tuple[str, str], bool | None] = {}
    pairs: list[dict[str, Any]] = []
    for entry in read_records(path):
        if entry["key"][0] == "faithful":
            faithful[(entry["key"][1], entry["key"][2])] = entry["faithful"]
        else:
            pairs.append({"a": entry["key"][1], "b": entry["key"][2], **entry})
    return faithful, pairs


async def run_bench(
    settings: Settings,
    models: Sequence[str],
    files: Sequence[Path],
    folder: Path,
    mode: RetrievalMode = "hybrid",
    progress: Progress | None = None,
    judge: str | None = None,
    *,
    services: OpenServices,
) -> Run:
    questions = load_questions(files)
    for spec in [*models, *([judge] if judge else [])]:
        chat_settings(spec, settings.chat)  # every spec is checked before anything runs
    run = Run(folder)
    run.start(models, files, mode)
    for spec in models:
        await run_model(settings, spec, questions, run, mode, progress, services=services)
    if judge:
        await run_judge(settings, judge, run, services=services)
    return run
