"""Draft task-prefixed training examples from indexed manuals, for a person to review.

Rules per chunk, in the chunk's language:
- SPEC: table rows and `name: value` lines whose value holds a number ("Radschrauben 120 Nm");
- PROCEDURE: three or more numbered steps under a heading;
- TROUBLESHOOT: sections about faults (Fehlersuche, Störung, troubleshooting...);
- EXPLAIN: prose paragraphs under a heading.
Answers are the manual's own text (nothing invented); `meta` says where each example came from.
With a model (`draft_questions`), the question is reworded by the chat model; the answer stays.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from handbook.types import Chunk, Task

Example = dict[str, Any]

UNITS = (
    r"Nm|bar|kN|N|mm|cm|m|km|l|ml|kg|g|kW|W|V|A|Hz|rpm|U/min|°C|%|µm|dB\(A\)|s|min|h|Jahre?|"
    r"years?|months?|Monate?|cm³/rev|mm/s|mm/m"
)
_ROW = re.compile(r"^\|(.+)\|\s*$")
_AMOUNT = rf"\d[\d.,]*\s*(?:{UNITS})(?!\w)"  # "120 Nm", "68 dB(A)"
_VALUE = re.compile(_AMOUNT)
_PLAIN_ROW = re.compile(rf"^(?P<key>[^\d|:]{{3,70}}?)\s+(?P<value>{_AMOUNT}.*)$")
_COLON = re.compile(r"^(?P<key>[^:\d]{3,70}):\s+(?P<value>.*\d.*)$")
_STEP = re.compile(r"^\s*(\d{1,2})[.)]\s+(.+)")
_FAULT = re.compile(
    r"fehlersuche|störung|stoerung|fehler|troubleshoot|fault|malfunction", re.IGNORECASE
)
_BULLET = re.compile(r"^\s*[-*•]\s+")

QUESTIONS = {
    "en": {
        Task.SPEC: "[SPEC] {subject}: what is the {key}?",
        Task.PROCEDURE: "[PROCEDURE] {subject}: how is this done: {heading}?",
        Task.TROUBLESHOOT: "[TROUBLESHOOT] {subject}: {heading}: what are the causes and remedies?",
        Task.EXPLAIN: "[EXPLAIN] {subject}: explain {heading}.",
    },
    "de": {
        Task.SPEC: "[SPEC] {subject}: Wie lautet der Wert für {key}?",
        Task.PROCEDURE: "[PROCEDURE] {subject}: Wie geht man vor: {heading}?",
        Task.TROUBLESHOOT: "[TROUBLESHOOT] {subject}: {heading}: Welche Ursachen und Abhilfen gibt "
        "es?",
        Task.EXPLAIN: "[EXPLAIN] {subject}: Erkläre {heading}.",
    },
}


def _clean(text: str) -> str:
    return " ".join(text.replace("**", "").split())


def _heading(chunk: Chunk) -> str:
    """The innermost heading without its number ("3 Commissioning" -> "Commissioning")."""
    if not chunk.heading_path:
        return ""
    return re.sub(r"^[\d.]+\s+", "", chunk.heading_path[-1]).strip()


def _example(chunk: Chunk, task: Task, rule: str, answer: str, **fields: str) -> Example:
    language = chunk.language if chunk.language in QUESTIONS else "en"
    subject = chunk.title.split(":")[0].strip()
    question = QUESTIONS[language][task].format(subject=subject, heading=_heading(chunk), **fields)
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ],
        "meta": {
            "task": task.value,
            "rule": rule,
            "document": chunk.title,
            "path": chunk.path,
            "page": chunk.page,
            "section": chunk.section,
            "chunk": chunk.id,
            "language": language,
        },
    }


_LOOSE_END = {
    "the", "a", "an", "to", "of", "in", "on", "at", "for", "with", "and", "or", "is", "are",
    "der", "die", "das", "den", "dem", "des", "ein", "eine", "für", "mit", "und", "oder", "im",
    "am", "zu", "auf", "ist", "sind", "ca.", "alle", "every",
}  # fmt: skip


def _good_key(key: str) -> bool:
    """A name of a value, not the start of a sentence ("Connect terminal M to the").

    >>> _good_key("Maximum working pressure"), _good_key("Connect terminal M to the")
    (True, False)
    """
    words = key.split()
    return (
        0 < len(words) <= 7
        and not _BULLET.match(key)
        and words[-1].lower() not in _LOOSE_END
        and not key[0].islower()
    )


def _specs(chunk: Chunk) -> Iterable[Example]:
    for line in chunk.text.splitlines():
        key = value = ""
        row = _ROW.match(line.strip())
        if row:
            cells = [_clean(c) for c in row.group(1).split("|")]
            if len(cells) >= 2 and not set("".join(cells)) <= set("-: "):
                key, value = cells[0], " | ".join(c for c in cells[1:] if c)
        else:
            match = _PLAIN_ROW.match(line.strip()) or _COLON.match(line.strip())
            if match:
                key, value = _clean(match.group("key")), _clean(match.group("value"))
        if _good_key(key) and value and _VALUE.search(value) and not _STEP.match(line):
            answer = f"{key}: {value}."
            named = key[0].lower() + key[1:] if key[1:2].islower() else key  # "the flange..."
            yield _example(chunk, Task.SPEC, "value", answer, key=named)


def _procedure(chunk: Chunk) -> Example | None:
    steps: list[str] = []
    for line in chunk.text.splitlines():
        step = _STEP.match(line)
        if step and int(step.group(1)) == len(steps) + 1:
            steps.append(step.group(2))
        elif (
            steps
            and line.strip()
            and not _STEP.match(line)
            and (
                line.startswith((" ", "\t"))
                or not steps[-1].rstrip().endswith((".", "!", "?", ":"))
            )
        ):
            steps[-1] += " " + line.strip()  # a step's wrapped continuation
    if len(steps) < 3 or not _heading(chunk):
        return None
    answer = "\n".join(f"{n}. {_clean(s)}" for n, s in enumerate(steps, start=1))
    return _example(chunk, Task.PROCEDURE, "numbered-steps", answer)


def _prose(chunk: Chunk) -> str:
    """The chunk's first paragraph of running text (not a list, table or step)."""
    for block in re.split(r"\n\s*\n", chunk.text):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines or any(_ROW.match(x.strip()) or _STEP.match(x) for x in lines):
            continue
        if sum(bool(_BULLET.match(x)) for x in lines) > len(lines) / 2:
            continue
        text = _clean(" ".join(lines))
        if len(re.findall(r"[.!?](\s|$)", text)) >= 2 and len(text) >= 120:
            return text[:700]
    return ""


def examples_from(chunk: Chunk) -> list[Example]:
    """Every example the rules find in one chunk."""
    found = list(_specs(chunk))
    procedure = _procedure(chunk)
    if procedure is not None:
        found.append(procedure)
    heading = _heading(chunk)
    if heading and _FAULT.search(" ".join(chunk.heading_path)):
        found.append(_example(chunk, Task.TROUBLESHOOT, "fault-section", _clean(chunk.text)[:900]))
    elif heading and procedure is None:
        prose = _prose(chunk)
        if prose:
            found.append(_example(chunk, Task.EXPLAIN, "prose", prose))
    return found


def deduplicate(examples: Iterable[Example]) -> list[Example]:
    seen: set[str] = set()
    unique = []
    for example in examples:
        question = example["messages"][0]["content"].lower()
        if question not in seen:
            seen.add(question)
            unique.append(example)
    return unique


async def draft_questions(
    examples: list[Example], ask: Callable[[str, str], Awaitable[str]]
) -> int:
    """Let a model reword each question from its answer (`ask(prompt, language)`); the task
    prefix and the answer stay. Returns how many questions were replaced."""
    replaced = 0
    for example in examples:
        user, assistant = example["messages"][0], example["messages"][-1]
        task = example["meta"]["task"]
        language = example["meta"]["language"]
        text = (await ask(assistant["content"], language)).strip().splitlines()
        question = text[0].strip().strip('"') if text else ""
        if question.endswith("?") and 8 <= len(question) <= 200:
            user["content"] = f"[{task}] {question}"
            example["meta"]["drafted_by_model"] = True
            replaced += 1
    return replaced
