"""The installed `rag ask` in real subprocesses, with the real embedding model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.answering import REFUSAL
from rag.cli import app
from tests.conftest import SHIPPED_ARTICLES
from tests.readme import readme_question

pytestmark = pytest.mark.integration

RAG = Path(sys.executable).with_name("rag")


def run_rag(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, with only the given RAG_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return subprocess.run(
        [str(RAG), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_installed_rag_ask_json(real_index_env: dict[str, str]) -> None:
    """The question the README's first command ends by asking gets a cited, checked answer
    from the shipped articles, through the installed `rag`."""
    result = run_rag(real_index_env, "ask", readme_question(), "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)  # exactly one JSON object, nothing else on stdout
    assert data["answerer"] == "extractive" and not data["refused"]
    assert "Tatarstan" in data["answer"] or "Alabuga" in data["answer"]
    assert data["citations"] and all(c["supported"] for c in data["citations"])
    assert data["citations"][0]["source"] == (
        "white-house-says-iran-helping-russia-build-drone-factory.txt"
    )
    assert len(data["retrieved"]) == 5


def test_installed_rag_ask_without_index(tmp_path: Path) -> None:
    env = {"RAG_INDEX_DIR": str(tmp_path / "nothing"), "RAG_CONFIG": str(tmp_path / "rag.toml")}
    result = run_rag(env, "ask", "Where is the drone factory being built?")
    assert result.returncode == 1
    assert "`rag index`" in result.stderr and "Traceback" not in result.stderr


def test_off_topic_question_is_refused(real_index_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        app, ["ask", "What is the capital of France?", "--json"], env=real_index_env
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["refused"] is True and data["answer"] == REFUSAL
    assert data["citations"] == []


def test_text_answer_cites_checked_sources(real_index_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        app,
        ["ask", "Which sanctions did the G7 threaten against Iran Air?"],
        env={"COLUMNS": "200", **real_index_env},
    )
    assert result.exit_code == 0, result.output
    assert "[1]" in result.stdout or "[2]" in result.stdout
    assert "✓" in result.stdout and "unsupported" not in result.stdout
    assert "answered by extractive" in result.stdout


def test_rag_device_cuda_without_a_gpu_is_one_clear_line(tmp_path: Path) -> None:
    """RAG_DEVICE=cuda on a machine where torch sees no GPU: indexing says so and stops,
    rather than falling back to the CPU unannounced or printing a traceback."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    articles = tmp_path / "articles"
    shutil.copytree(SHIPPED_ARTICLES, articles)
    env = {"RAG_ARTICLES_DIR": str(articles), "RAG_INDEX_DIR": str(tmp_path / "index")}
    result = run_rag({**env, "RAG_DEVICE": "cuda"}, "index")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "RAG_DEVICE=cuda, but torch sees no CUDA device" in result.stderr


def test_a_long_paste_ending_in_the_question_is_answered_about_the_question(
    real_index_env: dict[str, str],
) -> None:
    # 19,000 characters of the shipped articles pasted, then the question on its own line.
    pasted = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted(SHIPPED_ARTICLES.iterdir()))
    question = pasted[:19_000] + "\n\nWhere is the drone factory being built?"
    result = run_rag(real_index_env, "ask", question, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["question"] == "Where is the drone factory being built?"
    assert not data["refused"] and "Alabuga" in data["answer"]
