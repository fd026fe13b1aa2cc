"""`python bench/bench.py --quick` end to end on a tiny corpus: every figure is produced and
written (no timing is asserted: those are the bench's business, not a test's)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench import TARGETS
from tests.conftest import REPO, SHIPPED_ARTICLES

pytestmark = pytest.mark.integration


def test_quick_bench_writes_every_figure(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SHIPPED_ARTICLES, corpus / "articles")
    questions = (REPO / "eval" / "qa.jsonl").read_text().splitlines()[:3]
    (corpus / "qa.jsonl").write_text("\n".join(questions) + "\n")
    out, json_out = tmp_path / "RESULTS.md", tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}

    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench.py"), "--quick", "--corpus", str(corpus)]
        + ["--workdir", str(tmp_path / "work"), "--out", str(out), "--json", str(json_out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    results = json.loads(json_out.read_text())
    assert results["config"]["quick"] is True
    assert results["corpus"]["articles"] == 4
    assert {"cpu", "cores", "memory_gb", "versions"} <= results["machine"].keys()

    ingest = results["ingest"]
    assert ingest["chunks"] > 20
    assert ingest["embedded_chunks"] == ingest["chunks"]
    assert {
        "chunks_per_s",
        "mb_per_s",
        "ratio_to_bare",
        "ratio_to_bare_cpu",
        "cpu_s",
    } <= ingest.keys()
    assert ingest["bare_encode"]["chunks"] == ingest["chunks"]
    assert ingest["bare_encode"]["onnx_probe"]["min_cosine"] >= 0.999
    side = ingest["side_by_side"]
    assert 0 < side["articles"] < 4
    assert len(side["runs"]) == 1
    assert side["runs"][0]["embedded_chunks"] == side["chunks"] > 0
    assert side["ratio"] > 0 and side["ratio_cpu"] > 0

    incremental = results["incremental"]
    assert incremental["add_one_embedded_chunks"] > 0
    assert {"add_one_s", "add_one_ratio", "noop_s", "delete_one_s"} <= incremental.keys()

    for scale in ("corpus", "scaled"):
        latency = results["latency"][scale]
        assert latency["questions"] == 3
        assert {"p50_ms", "p95_ms"} <= latency["retrieval"].keys()
        assert {"p50_ms", "p95_ms"} <= latency["ask"].keys()
        # The warm query path runs on the ONNX export, never torch.
        assert latency["query_embedder"] == "OnnxEmbeddings"
        assert latency["torch_loaded"] is False
    assert results["latency"]["scaled"]["chunks"] >= 300
    assert results["latency"]["scaled"]["chunks"] > results["latency"]["corpus"]["chunks"]

    assert results["cold"]["ask_answerer"] == "extractive"
    assert {"ask_s", "help_s", "ask_scaled_s"} <= results["cold"].keys()
    assert {"index_mb", "ask_mb"} <= results["memory"].keys()
    assert [t["name"] for t in results["targets"]] == list(TARGETS)
    assert all(isinstance(t["met"], bool) for t in results["targets"])

    report = out.read_text()
    assert report.startswith("# rag benchmark results")
    assert "| Measure | Result | Target |" in report
    assert results["machine"]["cpu"] in report
    assert "--quick smoke run" in report
    assert "| Measure | Result | Target |" in proc.stdout  # the table is printed too
