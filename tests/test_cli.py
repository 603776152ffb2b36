"""The CLI as a user runs it: real models, real embedded Qdrant, real files, a real subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, run_cli


def handbook(
    *args: str, home: Path, check: bool = True, timeout: int = 600, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = run_cli(*args, home=home, timeout=timeout, stdin=stdin)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def home(own_index: Path) -> Path:
    return own_index


def test_help_and_config_show(tmp_path: Path) -> None:
    out = handbook("--help", home=tmp_path).stdout
    for command in ("index", "ask", "search", "docs", "config"):
        assert command in out
    shown = json.loads(handbook("config", "show", "--json", home=tmp_path).stdout)
    assert shown["profile"] == "offline" and shown["home"] == str(tmp_path)


def test_search_json_german_and_cross_lingual(home: Path) -> None:
    out = handbook(
        "search", "Wie viel Drehmoment für die Radschrauben?", "-k", "5", "--json", home=home
    )
    results = json.loads(out.stdout)["results"]
    assert len(results) == 5
    first = results[0]
    assert set(first) == {"doc", "title", "path", "page", "section", "score", "text"}
    assert any(
        r["path"].endswith("werkstatthandbuch_kompakt-3.pdf") and r["page"] in (2, 3)
        for r in results
    )

    english = json.loads(
        handbook("search", "torque for the wheel bolts", "--json", home=home).stdout
    )
    assert english["results"][0]["path"].endswith("werkstatthandbuch_kompakt-3.pdf")
    assert english["results"][0]["page"] in (2, 3)


def test_graph_modes_before_the_graph_is_built_say_what_to_do(home: Path) -> None:
    out = handbook("search", "Drehmoment", "--mode", "local", home=home, check=False)
    assert out.returncode == 1 and "handbook graph build" in out.stderr
    assert "Traceback" not in out.stderr


def test_serve_beyond_loopback_needs_keys(tmp_path: Path) -> None:
    out = handbook("serve", "--host", "0.0.0.0", home=tmp_path, check=False)
    assert out.returncode == 2 and "HANDBOOK_API_KEYS" in out.stderr and "--no-auth" in out.stderr


def test_search_filters_by_document_and_language(home: Path) -> None:
    out = handbook("search", "pressure", "--doc", "hydraulic_press_hp200.md", "--json", home=home)
    assert {Path(r["path"]).name for r in json.loads(out.stdout)["results"]} == {
        "hydraulic_press_hp200.md"
    }
    out = handbook("search", "Timer", "--lang", "de", "--json", home=home)
    assert {Path(r["path"]).suffix for r in json.loads(out.stdout)["results"]} <= {".pdf", ".txt"}


def test_batch_prints_one_object_per_question(home: Path, tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_text('{"question": "Ölwechsel Füllmenge"}\nfault code E01\n\n', encoding="utf-8")
    lines = handbook(
        "search", "--batch", str(batch), "--json", "-k", "2", home=home
    ).stdout.splitlines()
    assert [json.loads(line)["query"] for line in lines] == [
        "Ölwechsel Füllmenge",
        "fault code E01",
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\n{"q": 1}\n', encoding="utf-8")
    failed = handbook("search", "--batch", str(bad), "--json", home=home, check=False)
    assert failed.returncode == 1 and "bad.jsonl:2" in failed.stderr


@pytest.mark.slow
def test_ask_json_answers_with_citations_or_declines(home: Path) -> None:
    out = handbook("ask", "What is the maximum pressure of the HP-200 press?", "--json", home=home)
    answer = json.loads(out.stdout)
    assert set(answer) >= {"answer", "language", "found", "citations"}
    assert answer["language"] == "en" and answer["answer"].strip()
    assert answer["task"] == "SPEC"
    assert answer["found"] is True, answer  # the manual holds it: citations must follow
    assert answer["citations"]
    citation = answer["citations"][0]
    assert set(citation) == {"n", "doc", "title", "path", "page", "section", "score", "text"}
    assert any(c["path"].endswith("hydraulic_press_hp200.md") for c in answer["citations"])

    off_topic = "Wer hat die Fußball-Weltmeisterschaft 1954 gewonnen?"
    declined = json.loads(handbook("ask", off_topic, "--json", home=home).stdout)
    assert declined["language"] == "de"
    assert declined["found"] is False and declined["citations"] == []
    assert "keine Angaben" in declined["answer"]


def test_docs_list_and_delete(home: Path) -> None:
    listed = json.loads(handbook("docs", "list", "--json", home=home).stdout)["documents"]
    assert {Path(d["path"]).name for d in listed} == {p.name for p in SAMPLES.iterdir()}
    handbook("docs", "delete", "plc_basics.html", home=home)
    listed = json.loads(handbook("docs", "list", "--json", home=home).stdout)["documents"]
    assert "plc_basics.html" not in {Path(d["path"]).name for d in listed}
    out = handbook("search", "TON timer preset", "--json", "-k", "10", home=home)
    assert all(not r["path"].endswith("plc_basics.html") for r in json.loads(out.stdout)["results"])
    missing = handbook("docs", "delete", "nope.pdf", home=home, check=False)
    assert missing.returncode == 1 and "No indexed document matches" in missing.stderr


def test_index_reports_failures_in_summary_and_exit_code(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "ok.md").write_text("# Pumpe\n\nDie Pumpe fördert 40 l/min.\n", encoding="utf-8")
    (corpus / "bad.pdf").write_text("not a pdf", encoding="utf-8")
    result = handbook("index", str(corpus), "--json", home=tmp_path / "h", check=False)
    assert result.returncode == 1
    files = {Path(f["path"]).name: f for f in json.loads(result.stdout)["files"]}
    assert files["ok.md"]["status"] == "indexed"
    assert files["bad.pdf"]["status"] == "failed"
    assert "named .pdf but the content is text" in files["bad.pdf"]["reason"]


def test_ask_before_indexing_says_what_to_do(tmp_path: Path) -> None:
    result = handbook("ask", "Hallo?", home=tmp_path / "empty", check=False)
    assert result.returncode == 1
    assert "handbook index" in result.stderr and "Traceback" not in result.stderr


def test_chat_streams_keeps_the_session_and_shows_sources_on_request(home: Path) -> None:
    """`handbook chat` with the real packaged model, its input piped as a user might."""
    script = "What is the maximum pressure of the HP-200 press?\n/sources\n/help\n"
    out = handbook("chat", home=home, stdin=script, timeout=300)
    assert "Session " in out.stderr and "history: window" in out.stderr
    assert "hydraulic_press_hp200.md" in out.stdout, "/sources lists the last answer's sources"
    assert "/reset" in out.stdout, "/help"
    session = out.stderr.split("handbook chat --session ")[-1].strip()
    listed = json.loads(handbook("sessions", "list", "--json", home=home).stdout)["sessions"]
    assert [(s["id"], s["turns"]) for s in listed] == [(session, 1)]
    again = handbook("chat", "--session", session, home=home, stdin="/reset\n")
    assert "1 earlier turns" in again.stderr and "History cleared" in again.stderr
    shown = json.loads(handbook("sessions", "show", session, "--json", home=home).stdout)
    assert shown["turns"] == []
    missing = handbook("ask", "--session", "nope", "Hi?", home=home, check=False)
    assert missing.returncode == 1 and "no session 'nope'" in missing.stderr
