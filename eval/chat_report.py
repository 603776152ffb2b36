"""Render a chat benchmark run: Markdown and a self-contained HTML page with plots.

Tables per model (quality, speed, memory), per task type and language, the error patterns
(which questions all models get right, all get wrong, or split them), and human ratings when
they were imported (`handbook eval ratings import`).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.chat_bench import Run, judgements
from handbook.errors import ConfigError


def _mean(values: Sequence[float | bool | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(
    rows: Sequence[dict[str, Any]],
    ratings: dict[str, dict[str, int]],
    judged: dict[tuple[str, str], bool | None] | None = None,
) -> list[dict[str, Any]]:
    """One dict of figures per model, in the order the models first appear."""
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_model[row["model"]].append(row)
    summary = []
    for model, group in by_model.items():
        answered = [r for r in group if "failed" not in r]
        failed = [r for r in group if "failed" in r]
        rated = list(ratings.get(model, {}).values())
        verdicts = [v for (m, _), v in (judged or {}).items() if m == model]
        summary.append(
            {
                "model": model,
                "questions": len(group),
                "failed": len(failed),
                "failure": failed[0]["failed"] if failed else "",
                "correct": _mean([r["correct"] for r in answered]),
                "key_fact_recall": _mean([r["key_fact_recall"] for r in answered]),
                "citation_correct": _mean([r["citation_correct"] for r in answered]),
                "refusal_correct": _mean([r["refusal_correct"] for r in answered]),
                "language_match": _mean([r["language_match"] for r in answered]),
                "faithfulness": _mean([r["faithfulness"] for r in answered]),
                "hit_at_k": _mean([r["hit"] for r in answered]),
                "mrr": _mean([r["reciprocal_rank"] for r in answered]),
                "load_s": _median([r.get("load_s") for r in answered]),
                "ttft_s": _median([r["ttft_s"] for r in answered]),
                "tokens_per_s": _median([r["tokens_per_s"] for r in answered]),
                "total_s": _median([r["total_s"] for r in answered]),
                "rss_mb": max((r["rss_mb"] for r in answered), default=None),
                "cuda_mb": max((r["cuda_mb"] or 0 for r in answered), default=None) or None,
                "rating": _mean([float(v) for v in rated]) if rated else None,
                "judge_faithful": _mean(verdicts) if verdicts else None,
            }
        )
    return summary


def patterns(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per question: which models got it right; counted as all / none / mixed, overall and
    by task and language."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    right: dict[str, dict[str, bool]] = defaultdict(dict)
    info: dict[str, dict[str, Any]] = {}
    for row in rows:
        right[row["id"]][row["model"]] = bool(row.get("correct")) and "failed" not in row
        info[row["id"]] = {"task": row["task"], "language": row["language"],
                           "question": row["question"]}  # fmt: skip
    kinds: dict[str, str] = {}
    for qid, marks in right.items():
        values = [marks.get(m, False) for m in models]
        kinds[qid] = "all correct" if all(values) else "all wrong" if not any(values) else "mixed"
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for qid, kind in kinds.items():
        counts["all"][kind] += 1
        counts[f"task {info[qid]['task']}"][kind] += 1
        counts[f"language {info[qid]['language']}"][kind] += 1
    return {"models": models, "right": right, "kinds": kinds, "info": info,
            "counts": {k: dict(v) for k, v in counts.items()}}  # fmt: skip


def by_group(rows: Sequence[dict[str, Any]], field: str) -> dict[str, dict[str, float | None]]:
    """Share correct per model within each task type (or language)."""
    out: dict[str, dict[str, float | None]] = defaultdict(dict)
    groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for row in rows:
        if "failed" not in row:
            groups[(row[field], row["model"])].append(bool(row["correct"]))
    for (group, model), values in sorted(groups.items()):
        out[group][model] = sum(values) / len(values)
    return dict(out)


# --- plots -----------------------------------------------------------------------------------


def png_bytes(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return buffer.getvalue()


def plots(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> dict[str, bytes]:
    try:
        import matplotlib
    except ImportError:
        from handbook.backends import missing_extra

        raise missing_extra("matplotlib", "eval") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images: dict[str, bytes] = {}
    figure, axes = plt.subplots(figsize=(6, 4))
    for entry in summary:
        if entry["tokens_per_s"] is None or entry["correct"] is None:
            continue
        axes.scatter(entry["tokens_per_s"], entry["correct"] * 100, s=80)
        axes.annotate(entry["model"], (entry["tokens_per_s"], entry["correct"] * 100),
                      textcoords="offset points", xytext=(6, 6), fontsize=8)  # fmt: skip
    axes.set_xlabel("tokens/s (median)")
    axes.set_ylabel("questions answered correctly (%)")
    axes.set_title("Quality vs speed")
    axes.set_ylim(-5, 105)
    axes.grid(alpha=0.3)
    images["quality_vs_speed"] = png_bytes(figure)

    tasks = by_group(rows, "task")
    models = [e["model"] for e in summary]
    figure, axes = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(models))
    for index, model in enumerate(models):
        values = [(tasks[t].get(model) or 0.0) * 100 for t in tasks]
        axes.bar([n + index * width for n in range(len(tasks))], values, width, label=model)
    axes.set_xticks([n + width * (len(models) - 1) / 2 for n in range(len(tasks))], list(tasks))
    axes.set_ylabel("correct (%)")
    axes.set_ylim(0, 105)
    axes.set_title("Correct answers per task type")
    axes.legend(fontsize=8)
    images["per_task"] = png_bytes(figure)

    found = patterns(rows)
    questions = sorted(found["right"])
    matrix = [
        [1.0 if found["right"][q].get(m) else 0.0 for m in found["models"]] for q in questions
    ]
    figure, axes = plt.subplots(
        figsize=(1.5 + 1.2 * len(found["models"]), 0.3 * len(questions) + 1.5)
    )
    axes.imshow(matrix, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    axes.set_xticks(range(len(found["models"])), found["models"], rotation=20, fontsize=8)
    axes.set_yticks(range(len(questions)), questions, fontsize=7)
    axes.set_title("Error patterns (green: correct)")
    images["error_patterns"] = png_bytes(figure)
    return images


# --- output ----------------------------------------------------------------------------------

COLUMNS = [
    ("model", "model", "{}"),
    ("correct", "correct", "{:.0%}"),
    ("key_fact_recall", "key facts", "{:.0%}"),
    ("citation_correct", "citations", "{:.0%}"),
    ("refusal_correct", "refusals", "{:.0%}"),
    ("language_match", "language", "{:.0%}"),
    ("faithfulness", "faithful", "{:.0%}"),
    ("judge_faithful", "faithful (judge)", "{:.0%}"),
    ("hit_at_k", "hit@k", "{:.0%}"),
    ("mrr", "MRR", "{:.2f}"),
    ("load_s", "load s", "{:.1f}"),
    ("ttft_s", "TTFT s", "{:.2f}"),
    ("tokens_per_s", "tokens/s", "{:.1f}"),
    ("total_s", "total s", "{:.1f}"),
    ("rss_mb", "peak RSS MB", "{:.0f}"),
    ("cuda_mb", "CUDA MB", "{:.0f}"),
    ("rating", "rating 1-5", "{:.1f}"),
]


def _cell(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def ratings_of(run: Run) -> dict[str, dict[str, int]]:
    path = run.folder / "ratings.json"
    data: dict[str, dict[str, int]] = json.loads(path.read_text()) if path.is_file() else {}
    return data


def render(run: Run) -> tuple[Path, Path]:
    """Write RUN/report.md (with PNGs beside it) and RUN/report.html (images inlined)."""
    rows = run.results()
    if not rows:
        raise ConfigError(f"{run.folder} has no results yet; `handbook eval run` makes them.")
    meta = run.meta()
    judged, pairs = judgements(run)
    summary = summarize(rows, ratings_of(run), judged)
    found = patterns(rows)
    images = plots(summary, rows)
    ollama_path = run.folder / "ollama.json"
    ollama = json.loads(ollama_path.read_text()) if ollama_path.is_file() else {}
    for name, data in images.items():
        (run.folder / f"{name}.png").write_bytes(data)

    header = [title for _, title, _ in COLUMNS]
    table = [[_cell(entry[key], pattern) for key, _, pattern in COLUMNS] for entry in summary]
    lines = [
        "# Chat benchmark",
        "",
        f"Models: {', '.join(meta.get('models', []))}; retrieval mode {meta.get('mode', '?')}; "
        f"{len(found['kinds'])} questions from {', '.join(Path(q).name for q in meta.get('questions', []))}; "  # noqa: E501
        f"git {str(meta.get('git_revision') or '?')[:10]}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in table),
        "",
        "correct: all key facts stated (answerable) or declined (unanswerable). Faithfulness is "
        "the local heuristic of `eval/chat_bench.py` unless a judge was used.",
    ]
    failures = [e for e in summary if e["failed"]]
    if failures:
        lines += ["", "## Failures", ""]
        lines += [
            f"- {e['model']}: {e['failed']} questions failed: {e['failure']}" for e in failures
        ]
    if ollama:
        lines += ["", "## Ollama memory (`ps`)", ""]
        lines += [f"- {m}: {v['size_mb']:.0f} MB, VRAM {v['vram_mb'] or 0:.0f} MB"
                  for m, v in ollama.items()]  # fmt: skip
    if pairs:
        lines += [
            "",
            "## Pairwise (judge, both orders; a win needs both)",
            "",
            "| model A | model B | A wins | B wins | ties |",
            "|---|---|---|---|---|",
        ]
        tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for pair in pairs:
            counts = tally[(pair["a"], pair["b"])]
            counts[
                0 if pair["winner"] == pair["a"] else 1 if pair["winner"] == pair["b"] else 2
            ] += 1
        for (a, b), (wins_a, wins_b, ties) in tally.items():
            lines.append(f"| {a} | {b} | {wins_a} | {wins_b} | {ties} |")
    lines += ["", "## Error patterns", "", "| group | all correct | mixed | all wrong |",
              "|---|---|---|---|"]  # fmt: skip
    for group, counts in sorted(found["counts"].items()):
        lines.append(f"| {group} | {counts.get('all correct', 0)} | {counts.get('mixed', 0)} | "
                     f"{counts.get('all wrong', 0)} |")  # fmt: skip
    lines += ["", "| question | task | language | " + " | ".join(found["models"]) + " |",
              "|" + "---|" * (3 + len(found["models"]))]  # fmt: skip
    for qid in sorted(found["right"]):
        marks = ["yes" if found["right"][qid].get(m) else "no" for m in found["models"]]
        info = found["info"][qid]
        lines.append(f"| {qid} | {info['task']} | {info['language']} | " + " | ".join(marks) + " |")
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({name}.png)" for name in images]
    markdown = "\n".join(lines) + "\n"
    md_path = run.folder / "report.md"
    md_path.write_text(markdown, encoding="utf-8")

    html_path = run.folder / "report.html"
    html_path.write_text(markdown_html(markdown, images), encoding="utf-8")
    return md_path, html_path


def markdown_html(markdown: str, images: dict[str, bytes]) -> str:
    """A minimal Markdown-to-HTML for this report's headings, tables, lists and images."""
    body: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *rest = table
            body.append("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in head)
                        + "</tr></thead><tbody>"
                        + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                                  for row in rest)
                        + "</tbody></table>")  # fmt: skip
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                table.append(cells)
            continue
        flush()
        if line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("- "):
            body.append(f"<p>• {html.escape(line[2:])}</p>")
        elif line.startswith("!["):
            name = line[2 : line.index("]")]
            data = base64.b64encode(images[name]).decode()
            body.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}"></figure>')
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush()
    style = ("body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1c2330}"
             "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccd;"
             "padding:.25rem .5rem;text-align:right}th{background:#eef2f6}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}")  # fmt: skip
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Chat benchmark</title><style>{style}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")  # fmt: skip


# --- human ratings ---------------------------------------------------------------------------


def export_ratings(run: Run, path: Path) -> int:
    """A CSV with one row per answer and an empty `rating` column (1-5) for people to fill."""
    rows = [r for r in run.results() if "failed" not in r]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["model", "id", "question", "answer", "rating"])
        for row in rows:
            writer.writerow([row["model"], row["id"], row["question"], row["answer"], ""])
    return len(rows)


def import_ratings(run: Run, path: Path) -> int:
    """Ratings 1-5 from a filled CSV into RUN/ratings.json; bad rows are named by line."""
    ratings: dict[str, dict[str, int]] = ratings_of(run)
    problems = []
    count = 0
    with path.open(encoding="utf-8") as source:
        for number, row in enumerate(csv.DictReader(source), start=2):
            value = (row.get("rating") or "").strip()
            if not value:
                continue
            if value not in {"1", "2", "3", "4", "5"}:
                problems.append(f"line {number}: rating {value!r} is not 1-5")
                continue
            ratings.setdefault(row["model"], {})[row["id"]] = int(value)
            count += 1
    if problems:
        raise ConfigError(f"{path}:\n" + "\n".join(f"  {p}" for p in problems))
    (run.folder / "ratings.json").write_text(json.dumps(ratings, indent=2) + "\n")
    return count
