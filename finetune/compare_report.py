"""The comparison report: one table, quality vs speed, loss curves, and a verdict per criterion
derived from the numbers (never written by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.chat_report import markdown_html, png_bytes
from handbook.errors import ConfigError

MEMORY_LIMIT_MB = 8 * 1024


def verdicts(entries: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-language verdicts from the measured figures.

    >>> verdicts({"a": {"test_accuracy": .8, "tokens_per_s": 10, "peak_rss_mb": 9000,
    ...                 "train_tokens_per_s": 50},
    ...           "b": {"test_accuracy": .5, "tokens_per_s": 30, "peak_rss_mb": 2000,
    ...                 "train_tokens_per_s": 90}})[:3]
    ['For quality: a (test accuracy 0.80 vs 0.50 for b).', 'For speed: b (30.0 tokens/s vs 10.0 for a).', 'For an 8 GB machine: b (peak 2000 MB while training; a needs 9000 MB).']
    """  # noqa: E501
    done = {name: e for name, e in entries.items() if "failed" not in e}
    if not done:
        return ["No base finished: no verdict."]
    lines = []

    def runner_up(key: str, best: str) -> str:
        others = sorted(((e[key] or 0, n) for n, e in done.items() if n != best), reverse=True)
        return f" vs {others[0][0]:.2f} for {others[0][1]}" if others else ""

    quality = max(done, key=lambda n: (done[n]["test_accuracy"] or 0, done[n]["tokens_per_s"] or 0))
    lines.append(f"For quality: {quality} (test accuracy {done[quality]['test_accuracy']:.2f}"
                 f"{runner_up('test_accuracy', quality)}).")  # fmt: skip
    speed = max(done, key=lambda n: done[n]["tokens_per_s"] or 0)
    others = [(done[n]["tokens_per_s"] or 0, n) for n in done if n != speed]
    slower = f" vs {max(others)[0]:.1f} for {max(others)[1]}" if others else ""
    lines.append(f"For speed: {speed} ({done[speed]['tokens_per_s'] or 0:.1f} tokens/s{slower}).")
    fits = {n: e for n, e in done.items() if (e["peak_rss_mb"] or 0) <= MEMORY_LIMIT_MB}
    if fits:
        small = max(
            fits, key=lambda n: (fits[n]["test_accuracy"] or 0, -(fits[n]["peak_rss_mb"] or 0))
        )
        heavy = [n for n in done if n not in fits]
        note = (
            "; " + ", ".join(f"{n} needs {done[n]['peak_rss_mb']:.0f} MB" for n in heavy)
            if heavy
            else ""
        )
        lines.append(f"For an 8 GB machine: {small} (peak {fits[small]['peak_rss_mb']:.0f} MB "
                     f"while training{note}).")  # fmt: skip
    else:
        lines.append("For an 8 GB machine: none of these (every base needed more while training).")
    cheap = max(done, key=lambda n: done[n]["train_tokens_per_s"] or 0)
    lines.append(f"Cheapest to train: {cheap} ({done[cheap]['train_tokens_per_s']:.0f} training "
                 "tokens/s).")  # fmt: skip
    return lines


def render(folder: Path) -> tuple[Path, Path]:
    state_path = folder / "compare.json"
    if not state_path.is_file():
        raise ConfigError(f"{folder} holds no comparison; `handbook finetune compare` makes one.")
    state = json.loads(state_path.read_text())
    entries: dict[str, dict[str, Any]] = state["bases"]
    order = [b for b in state.get("order", []) if b in entries] or list(entries)
    images = _plots({n: entries[n] for n in order})
    for name, data in images.items():
        (folder / f"{name}.png").write_bytes(data)

    def cell(value: Any, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    header = ["base", "method", "parameters", "trainable", "train s", "train tokens/s",
              "peak MB", "VRAM MB", "train loss", "val loss", "test acc. base", "test acc. tuned",
              "load s", "TTFT s", "tokens/s", "Q&A correct"]  # fmt: skip
    lines = ["# Model selection", "", f"Data: {state.get('data')}.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]  # fmt: skip
    for name in order:
        e = entries[name]
        if "failed" in e:
            lines.append(f"| {name} | failed: {e['failed']} |" + " |" * (len(header) - 2))
            continue
        quality = (e.get("quality") or {}).get("correct")
        row = [name, e["method"], cell(e["parameters"] / 1e6, "{:.0f}M"),
               cell(e["trainable_parameters"] / 1e6, "{:.1f}M"), cell(e["train_seconds"], "{:.0f}"),
               cell(e["train_tokens_per_s"], "{:.0f}"), cell(e["peak_rss_mb"], "{:.0f}"),
               cell(e["peak_vram_mb"], "{:.0f}"), cell(e["train_loss"], "{:.3f}"),
               cell(e["val_loss"], "{:.3f}"), cell(e["test_accuracy_base"], "{:.2f}"),
               cell(e["test_accuracy"], "{:.2f}"), cell(e["load_s"], "{:.1f}"),
               cell(e["ttft_s"], "{:.2f}"), cell(e["tokens_per_s"], "{:.1f}"),
               cell(quality, "{:.0%}")]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Verdict", ""]
    lines += [f"- {line}" for line in verdicts({n: entries[n] for n in order})]
    lines += ["", "## Plots", ""] + [f"![{name}]({name}.png)" for name in images]
    markdown = "\n".join(lines) + "\n"
    md_path = folder / "report.md"
    md_path.write_text(markdown, encoding="utf-8")
    html_path = folder / "report.html"
    html_path.write_text(
        markdown_html(markdown, images).replace("Chat benchmark", "Model selection")
    )
    return md_path, html_path


def _plots(entries: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = {n: e for n, e in entries.items() if "failed" not in e}
    images = {}
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, e in done.items():
        axes.scatter(e["tokens_per_s"] or 0, (e["test_accuracy"] or 0) * 100, s=80)
        axes.annotate(name, (e["tokens_per_s"] or 0, (e["test_accuracy"] or 0) * 100),
                      textcoords="offset points", xytext=(6, 6), fontsize=8)  # fmt: skip
    axes.set_xlabel("inference tokens/s")
    axes.set_ylabel("test-split accuracy (%)")
    axes.set_ylim(-5, 105)
    axes.set_title("Quality vs speed")
    axes.grid(alpha=0.3)
    images["quality_vs_speed"] = png_bytes(figure)
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, e in done.items():
        train = [(p["step"], p["loss"]) for p in e["log"] if "loss" in p]
        val = [(p["step"], p["eval_loss"]) for p in e["log"] if "eval_loss" in p]
        if train:
            axes.plot(*zip(*train, strict=True), marker="o", label=f"{name} train")
        if val:
            axes.plot(*zip(*val, strict=True), linestyle="--", marker="x", label=f"{name} val")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("Loss curves")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    images["loss_curves"] = png_bytes(figure)
    return images
