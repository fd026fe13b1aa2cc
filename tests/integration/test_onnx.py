"""The ONNX query model: exported by `rag index`, same vectors as sentence-transformers, and the
reason `rag ask` and `rag --help` never import torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import indexing
from rag.embedding import (
    OnnxEmbeddings,
    SentenceTransformerEmbeddings,
    index_embedder,
    onnx_path,
    query_embedder,
)
from rag.settings import Settings
from rag.store import ChunkStore, Generations
from tests.conftest import REPO, SHIPPED_ARTICLES

pytestmark = pytest.mark.integration

HEAVY = {"torch", "sentence_transformers", "transformers", "onnxruntime", "chromadb"}
QUESTION = "Where is the drone factory being built?"


@pytest.fixture(scope="module")
def indexed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, SentenceTransformerEmbeddings]:
    """The shipped articles indexed with the real model; the (loaded) model that indexed them."""
    root = tmp_path_factory.mktemp("onnx")
    shutil.copytree(SHIPPED_ARTICLES, root / "articles")
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before isolated_env
        for key in [k for k in os.environ if k.startswith("RAG_")]:
            mp.delenv(key)
        mp.setenv("RAG_CONFIG", str(root / "rag.toml"))
        settings = Settings(articles_dir=root / "articles", index_dir=root / "index")
    embedder = index_embedder(settings)
    indexing.apply(settings, indexing.plan(settings), embedder=embedder)
    return settings, embedder


@pytest.fixture(scope="module")
def onnx_embedder(indexed: tuple[Settings, SentenceTransformerEmbeddings]) -> OnnxEmbeddings:
    settings, _ = indexed
    chosen = query_embedder(settings)
    assert isinstance(chosen, OnnxEmbeddings)
    return chosen


def _cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    x, y = np.asarray(a), np.asarray(b)
    return (x * y).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


def test_rag_index_writes_the_query_model_next_to_the_index(
    indexed: tuple[Settings, SentenceTransformerEmbeddings],
) -> None:
    settings, _ = indexed
    exported = onnx_path(settings)
    assert exported.is_file()
    assert exported.parent == settings.index_dir / "models"
    assert not list(exported.parent.glob(".*.tmp"))  # written atomically, nothing left over


def test_query_vectors_match_sentence_transformers(
    indexed: tuple[Settings, SentenceTransformerEmbeddings], onnx_embedder: OnnxEmbeddings
) -> None:
    settings, st = indexed
    gen = Generations(settings.index_dir).current()
    assert gen is not None
    chunks = list(ChunkStore(settings, gen).iter_all())[:20]
    texts = [c.metadata.get("header", "") + c.text for c in chunks]
    questions = [
        json.loads(line)["question"]
        for line in (REPO / "eval" / "qa.jsonl").read_text().splitlines()[:10]
    ]
    assert len(texts) == 20 and len(questions) == 10

    onnx_docs = onnx_embedder.embed_documents(texts + questions)
    assert len(onnx_docs) == 30 and len(onnx_docs[0]) == 384
    assert _cosines(onnx_docs, st.embed_documents(texts + questions)).min() >= 0.999
    onnx_queries = [onnx_embedder.embed_query(q) for q in questions]
    assert _cosines(onnx_queries, [st.embed_query(q) for q in questions]).min() >= 0.999
    assert np.allclose(np.linalg.norm(onnx_queries, axis=1), 1.0, atol=1e-4)


def test_index_vectors_and_query_vectors_share_one_space(
    indexed: tuple[Settings, SentenceTransformerEmbeddings], onnx_embedder: OnnxEmbeddings
) -> None:
    """What Chroma stored at index time is what the query model computes for the same text."""
    settings, _ = indexed
    gen = Generations(settings.index_dir).current()
    assert gen is not None
    res = ChunkStore(settings, gen).collection.get(include=["documents", "metadatas", "embeddings"])
    texts = [m["header"] + d for d, m in zip(res["documents"], res["metadatas"], strict=True)]
    assert len(texts) > 20
    assert _cosines(onnx_embedder.embed_documents(texts), res["embeddings"]).min() >= 0.999


def test_long_texts_are_truncated_like_sentence_transformers(
    indexed: tuple[Settings, SentenceTransformerEmbeddings], onnx_embedder: OnnxEmbeddings
) -> None:
    _, st = indexed
    article = next(SHIPPED_ARTICLES.glob("*.txt")).read_text()
    long = " ".join([article] * 3)  # far past 256 word pieces
    assert len(onnx_embedder.tokenizer.encode(long).ids) == 256
    cosine = _cosines([onnx_embedder.embed_query(long)], [st.embed_query(long)])[0]
    assert cosine >= 0.999


def _imported(args: list[str], env: dict[str, str]) -> tuple[set[str], str]:
    """Top-level packages a `python -X importtime -m rag ...` run imported, and its stdout."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rag", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    return names, proc.stdout


def _env(settings: Settings) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return clean | {
        "RAG_INDEX_DIR": str(settings.index_dir),
        "RAG_ARTICLES_DIR": str(settings.articles_dir),
        "RAG_CONFIG": str(settings.index_dir.parent / "rag.toml"),
        "RAG_LLM": "extractive",
    }


def test_help_imports_no_heavy_module(
    indexed: tuple[Settings, SentenceTransformerEmbeddings],
) -> None:
    names, stdout = _imported(["--help"], _env(indexed[0]))
    assert "rag ask" in stdout or "ask" in stdout
    assert "typer" in names  # the parse works: the CLI's own imports are seen
    assert not names & HEAVY


def test_ask_embeds_the_question_without_torch(
    indexed: tuple[Settings, SentenceTransformerEmbeddings],
) -> None:
    names, stdout = _imported(["ask", QUESTION, "--json"], _env(indexed[0]))
    answer = json.loads(stdout)
    assert not answer["refused"]
    assert "Alabuga" in answer["answer"]
    assert "onnxruntime" in names
    assert not names & {"torch", "sentence_transformers", "transformers"}


class _OtherPooling(SentenceTransformerEmbeddings):
    """A model whose sentence vectors are not the mean-pooled ones the exported graph computes."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(reversed(v)) for v in super().embed_documents(texts)]


def test_an_export_that_disagrees_with_the_model_is_not_used(
    indexed: tuple[Settings, SentenceTransformerEmbeddings], tmp_path: Path
) -> None:
    settings, st = indexed
    other = _OtherPooling(st.model_dir)
    other.__dict__["model"] = st.model  # reuse the loaded weights
    settings = settings.model_copy(update={"index_dir": tmp_path / "index"})

    report = indexing.apply(settings, indexing.plan(settings), embedder=other)
    assert report.added == 4
    assert any("could not export the query model" in w for w in report.warnings)
    assert not list((tmp_path / "index" / "models").iterdir())  # nothing half-written
    # Questions fall back to the model itself: slower to start, same space as the index.
    assert isinstance(query_embedder(settings), SentenceTransformerEmbeddings)
