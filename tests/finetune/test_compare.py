"""Model selection on the CPU: the packaged SmolLM2 with LoRA vs full fine-tuning on the same
tiny data, a base that cannot load (recorded, the comparison goes on), a kill and a resume, and
the rendered report with its verdicts."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.finetune.test_finetune import FAST
from tests.generation.conftest import fact_examples


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs)["src"] or "")


def compare(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDBOOK_")}
    env["HANDBOOK_HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "finetune", "compare", *args],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.slow
def test_two_methods_compared_resumed_after_a_kill_with_a_verdict(tmp_path: Path) -> None:
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    facts = fact_examples()
    for name, rows in (("train", facts), ("val", facts[:1]), ("test", facts[1:2])):
        (data / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    config = tmp_path / "fast.yaml"
    full = {"learning_rate": 5e-5}  # full fine-tuning: a far smaller step than LoRA
    config.write_text(
        json.dumps({**FAST, "epochs": 2, "batch_size": 3, "bases": {"smollm2@full": full}})
    )
    run = tmp_path / "run"
    home = tmp_path / "home"
    args = [
        "--bases",
        "smollm2@lora",
        "--bases",
        "no-such-model@lora",
        "--bases",
        "smollm2@full",
        "--data",
        str(data),
        "--config",
        str(config),
        "--run",
        str(run),
    ]

    first = compare(home, *args)
    state = run / "compare.json"
    deadline = time.monotonic() + 600
    while not (state.is_file() and "smollm2@lora" in json.loads(state.read_text())["bases"]):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.5)
    first.kill()  # interrupted after the first base
    first.wait()
    lora_meta = run / "smollm2-lora" / "handbook.json"
    trained_at = lora_meta.stat().st_mtime

    second = compare(home, *args)
    out, err = second.communicate(timeout=900)
    assert second.returncode == 0, err
    assert "smollm2@lora: already done, skipped" in err
    assert lora_meta.stat().st_mtime == trained_at, "a finished base is not trained again"
    bases = json.loads(state.read_text())["bases"]
    assert set(bases) == {"smollm2@lora", "no-such-model@lora", "smollm2@full"}
    assert "no-such-model" in bases["no-such-model@lora"]["failed"]
    lora, full = bases["smollm2@lora"], bases["smollm2@full"]
    assert (lora["method"], full["method"]) == ("lora", "full")
    assert full["trainable_parameters"] > 50 * lora["trainable_parameters"]
    for entry in (lora, full):
        assert entry["train_tokens_per_s"] > 0 and entry["peak_rss_mb"] > 100
        assert entry["tokens_per_s"] > 0 and entry["ttft_s"] > 0 and entry["load_s"] > 0
        assert 0.0 <= entry["test_accuracy"] <= 1.0 and any("loss" in p for p in entry["log"])
    assert "## Verdict" in out and "For quality:" in out and "For an 8 GB machine:" in out
    best = max(("smollm2@lora", lora), ("smollm2@full", full),
               key=lambda item: (item[1]["test_accuracy"], item[1]["tokens_per_s"]))[0]  # fmt: skip
    assert f"For quality: {best}" in out, "the verdict follows the numbers"

    parser = Images()
    parser.feed((run / "report.html").read_text())
    assert len(parser.sources) == 2
    for source in parser.sources:
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("L")
        low, high = image.getextrema()
        assert image.width > 200 and high - low > 100
    again = compare(home, "--report", str(run))
    assert again.wait(timeout=120) == 0


def test_an_empty_test_split_is_refused_before_training(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text(json.dumps(fact_examples()[0]) + "\n")
    done = compare(tmp_path / "home", "--bases", "smollm2@lora", "--bases", "smollm2@full",
                   "--data", str(data), "--run", str(tmp_path / "run"))  # fmt: skip
    _, err = done.communicate(timeout=120)
    assert done.returncode == 1 and "test.jsonl is missing or empty" in err
    assert not (tmp_path / "run" / "smollm2-lora").exists()
