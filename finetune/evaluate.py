"""Base model vs fine-tuned model on the test split, scored per task.

- SPEC: every number of the reference answer appears in the answer ("contains"), and the whole
  answer equals the reference, spacing and case aside ("exact");
- PROCEDURE: share of the reference's steps that the answer covers (half a step's words or more);
- EXPLAIN, TROUBLESHOOT: word overlap F1 with the reference.
Greedy decoding, so the numbers repeat run to run.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.dataset import task_of
from generation.hf import load_causal_lm, place, resolve_base
from handbook.config import FinetuneSettings
from handbook.errors import ConfigError

_WORD = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
METRICS = {
    "SPEC": "numbers contained",
    "PROCEDURE": "steps covered",
    "EXPLAIN": "word F1",
    "TROUBLESHOOT": "word F1",
}


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def word_f1(answer: str, reference: str) -> float:
    """Overlap of the two texts' words (as multisets).

    >>> round(word_f1("Die Pumpe fördert Öl", "Die Pumpe fördert Wasser"), 2)
    0.75
    """
    a, r = words(answer), words(reference)
    if not a or not r:
        return float(a == r)
    common = sum(min(a.count(w), r.count(w)) for w in set(a))
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


def numbers_contained(answer: str, reference: str) -> float:
    """1.0 when every number of the reference is in the answer (decimal comma or point).

    >>> numbers_contained("Radschrauben: 120 Nm", "Radschrauben 120 Nm über Kreuz")
    1.0
    >>> numbers_contained("2.5 bar", "2,4 bar")
    0.0
    """
    wanted = {n.replace(",", ".") for n in _NUMBER.findall(reference)}
    if not wanted:
        return word_f1(answer, reference)
    found = {n.replace(",", ".") for n in _NUMBER.findall(answer)}
    return float(wanted <= found)


def steps_covered(answer: str, reference: str) -> float:
    """Share of the reference's numbered steps whose words the answer holds (half or more).

    >>> steps_covered("Lower the ram. Switch off the main switch.",
    ...               "1. Lower the ram.\\n2. Switch off the main switch.\\n3. Open valve V3.")
    0.6666666666666666
    """
    steps = [s for s in re.split(r"\n?\s*\d{1,2}[.)]\s+", reference) if s.strip()]
    if not steps:
        return word_f1(answer, reference)
    have = set(words(answer))
    covered = 0
    for step in steps:
        needed = set(words(step))
        if needed and len(needed & have) / len(needed) >= 0.5:
            covered += 1
    return covered / len(steps)


def exact(answer: str, reference: str) -> float:
    return float(" ".join(words(answer)) == " ".join(words(reference)))


SCORERS: dict[str, Callable[[str, str], float]] = {
    "SPEC": numbers_contained,
    "PROCEDURE": steps_covered,
    "EXPLAIN": word_f1,
    "TROUBLESHOOT": word_f1,
}


@dataclass
class Scored:
    task: str
    question: str
    reference: str
    base: str
    tuned: str
    base_score: float
    tuned_score: float
    base_exact: float
    tuned_exact: float


@dataclass
class EvalReport:
    rows: list[Scored] = field(default_factory=list)

    def by_task(self) -> list[dict[str, Any]]:
        """One line per task (and `all`): examples, metric, base vs fine-tuned."""
        groups: dict[str, list[Scored]] = defaultdict(list)
        for row in self.rows:
            groups[row.task].append(row)
        lines = []
        for task in [*sorted(groups), "all"]:
            rows = self.rows if task == "all" else groups[task]
            if not rows:
                continue
            n = len(rows)
            lines.append(
                {
                    "task": task,
                    "examples": n,
                    "metric": METRICS.get(task, "task score"),
                    "base": sum(r.base_score for r in rows) / n,
                    "tuned": sum(r.tuned_score for r in rows) / n,
                    "base_exact": sum(r.base_exact for r in rows) / n,
                    "tuned_exact": sum(r.tuned_exact for r in rows) / n,
                }
            )
        return lines


def generate_all(model: Any, tokenizer: Any, prompts: Sequence[Sequence[Mapping[str, str]]],
                 max_new_tokens: int) -> list[str]:  # fmt: skip
    import torch

    answers = []
    for messages in prompts:
        inputs = tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        ).to(model.device)
        with torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        new = output[0][inputs["input_ids"].shape[1] :]
        answers.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    return answers


def evaluate(
    settings: FinetuneSettings,
    tuned: Path,
    test_set: Sequence[Mapping[str, Any]],
    models_dir: Path,
    max_new_tokens: int = 160,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Answer the test split with the base model, then with `tuned` (a LoRA adapter folder or
    a fully fine-tuned model folder), and score both against the references."""
    from finetune.train import quiet
    from generation.adapter import with_adapter

    quiet()

    if not test_set:
        raise ConfigError(
            "The test split is empty: nothing to evaluate. Give test.jsonl some examples "
            "(`handbook finetune prepare` splits 80/10/10)."
        )
    if not (tuned / "adapter_config.json").is_file() and not (tuned / "config.json").is_file():
        raise ConfigError(f"{tuned} is neither a LoRA adapter nor a model folder.")
    prompts = [list(e["messages"][:-1]) for e in test_set]
    references = [str(e["messages"][-1]["content"]) for e in test_set]
    placement = place(settings.device, "none")
    base_name = resolve_base(settings.base_model, models_dir)
    model, tokenizer = load_causal_lm(base_name, placement)
    model.eval()
    base_answers = generate_all(model, tokenizer, prompts, max_new_tokens)
    if progress:
        progress(1, 2)
    if (tuned / "adapter_config.json").is_file():
        model = with_adapter(model, tuned, settings.base_model)
    else:
        model, tokenizer = load_causal_lm(str(tuned), placement)
    model.eval()
    tuned_answers = generate_all(model, tokenizer, prompts, max_new_tokens)
    if progress:
        progress(2, 2)
    report = EvalReport()
    for example, prompt, reference, base, answer in zip(
        test_set, prompts, references, base_answers, tuned_answers, strict=True
    ):
        task = task_of(example) or "?"
        score = SCORERS.get(task, word_f1)
        report.rows.append(
            Scored(
                task=task,
                question=str(prompt[-1]["content"]),
                reference=reference,
                base=base,
                tuned=answer,
                base_score=score(base, reference),
                tuned_score=score(answer, reference),
                base_exact=exact(base, reference),
                tuned_exact=exact(answer, reference),
            )
        )
    return report
