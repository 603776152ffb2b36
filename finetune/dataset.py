"""Fine-tuning datasets: chat `messages` JSONL, task-prefixed questions, a deterministic split,
and a check that reports every problem with its line number.

One example per line: `{"messages": [{"role": "user", "content": "[SPEC] ..."},
{"role": "assistant", "content": "..."}]}` (a system message may come first; `meta` is kept
for the reviewer and ignored by training).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handbook.errors import ConfigError
from handbook.jsonl import read_lines

Example = dict[str, Any]
SPLITS = ("train", "val", "test")
ROLES = ("system", "user", "assistant")
_PREFIX = re.compile(r"^\[(?P<task>[A-Za-z_]+)\]\s*(?P<rest>.*)", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def task_of(example: Mapping[str, Any]) -> str | None:
    """The `[TASK]` prefix of the first user message.

    >>> task_of({"messages": [{"role": "user", "content": "[SPEC] Torque?"}]})
    'SPEC'
    """
    for message in example.get("messages", []):
        if message.get("role") == "user":
            match = _PREFIX.match(str(message.get("content", "")))
            return match.group("task") if match else None
    return None


def validate(example: Any, tasks: Sequence[str]) -> str | None:
    """What is wrong with one example, or None.

    >>> validate({"messages": [{"role": "user", "content": "[SPEC] x"}]}, ["SPEC"])
    "the last message must be the assistant's answer"
    >>> validate({"messages": [{"role": "user", "content": "[FOO] x"},
    ...                        {"role": "assistant", "content": "y"}]}, ["SPEC"])
    'unknown task prefix [FOO] (known: SPEC)'
    """
    if not isinstance(example, dict) or not isinstance(example.get("messages"), list):
        return 'each line must be an object with a "messages" list'
    messages = example["messages"]
    if not messages:
        return "no messages"
    for n, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"message {n} has no role of {', '.join(ROLES)}"
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            return f"message {n} ({message['role']}) has no text"
    if messages[-1]["role"] != "assistant":
        return "the last message must be the assistant's answer"
    if not any(m["role"] == "user" for m in messages):
        return "no user message"
    first_user = next(m for m in messages if m["role"] == "user")
    match = _PREFIX.match(first_user["content"])
    if match is None:
        return f"the question has no task prefix ([{'], ['.join(tasks)}])"
    if match.group("task") not in tasks:
        return f"unknown task prefix [{match.group('task')}] (known: {', '.join(tasks)})"
    return None


def read_jsonl(path: Path, tasks: Sequence[str]) -> tuple[list[tuple[int, Example]], list[Problem]]:
    """Valid examples with their line numbers (from 1), and the problems of the other lines."""
    if not path.is_file():
        raise ConfigError(f"{path} does not exist.")
    examples: list[tuple[int, Example]] = []
    problems: list[Problem] = []
    for line in read_lines(path, errors="replace"):
        reason = line.problem or validate(line.value, tasks)
        if reason:
            problems.append(Problem(path.name, line.number, reason))
        else:
            examples.append((line.number, line.value))
    return examples, problems


def write_jsonl(path: Path, examples: Iterable[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps(example, ensure_ascii=False) + "\n")


def split(
    examples: Sequence[Example], seed: int, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict[str, list[Example]]:
    """Train/val/test, the same for the same seed; each task is split in the given ratios.

    >>> data = [{"messages": [{"role": "user", "content": f"[SPEC] q{n}"}]} for n in range(10)]
    >>> parts = split(data, seed=1)
    >>> [len(parts[s]) for s in SPLITS], split(data, seed=1) == parts
    ([8, 1, 1], True)
    """
    by_task: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_task[task_of(example) or ""].append(example)
    parts: dict[str, list[Example]] = {name: [] for name in SPLITS}
    rng = random.Random(seed)
    for task in sorted(by_task):
        group = list(by_task[task])
        rng.shuffle(group)
        n_val = round(len(group) * ratios[1])
        n_test = round(len(group) * ratios[2])
        n_train = len(group) - n_val - n_test
        parts["train"] += group[:n_train]
        parts["val"] += group[n_train : n_train + n_val]
        parts["test"] += group[n_train + n_val :]
    return parts


def key(example: Mapping[str, Any]) -> str:
    """What makes two examples the same: their messages, whitespace and case aside."""
    return " | ".join(" ".join(str(m["content"]).lower().split()) for m in example["messages"])


@dataclass
class CheckReport:
    examples: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, Counter[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    too_long: list[Problem] = field(default_factory=list)
    duplicates: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    max_length: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.too_long and not self.duplicates

    def histogram(self, bins: int = 8) -> list[tuple[int, int, int]]:
        """(from, to, count) over the token lengths, `bins` equal-width bins."""
        if not self.lengths:
            return []
        top = max(max(self.lengths), 1)
        width = max(1, -(-top // bins))
        counts = Counter(min(length // width, bins - 1) for length in self.lengths)
        return [(b * width, (b + 1) * width - 1, counts.get(b, 0)) for b in range(bins)]


def check(
    folder: Path,
    tasks: Sequence[str],
    max_length: int,
    count_tokens: Callable[[Sequence[Mapping[str, str]]], int] | None = None,
) -> CheckReport:
    """Validate `folder`'s train/val/test JSONL: bad rows (with line numbers), task counts,
    token lengths against `max_length`, and the same example in two splits."""
    report = CheckReport(max_length=max_length)
    seen: dict[str, set[str]] = defaultdict(set)
    shown: dict[str, str] = {}
    found = False
    for name in SPLITS:
        path = folder / f"{name}.jsonl"
        if not path.is_file():
            continue
        found = True
        rows, problems = read_jsonl(path, tasks)
        report.problems += problems
        report.examples[name] = len(rows)
        report.tasks[name] = Counter(task_of(e) or "?" for _, e in rows)
        for line, example in rows:
            seen[key(example)].add(name)
            shown.setdefault(key(example), str(example["messages"][-2]["content"]))
            if count_tokens is not None:
                length = count_tokens(example["messages"])
                report.lengths.append(length)
                if length > max_length:
                    message = f"{length} tokens, over max_seq_length {max_length}"
                    report.too_long.append(Problem(path.name, line, message))
    if not found:
        raise ConfigError(
            f"{folder} holds no train.jsonl, val.jsonl or test.jsonl. "
            "`handbook finetune prepare` writes them."
        )
    report.duplicates = [
        (shown[text][:120], tuple(s for s in SPLITS if s in splits))
        for text, splits in seen.items()
        if len(splits) > 1
    ]
    return report
