"""Shared fixtures: every test gets its own articles and index folders and a clean RAG_* env."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rag.settings import Settings
from tests.fakes import HashingEmbeddings

REPO = Path(__file__).resolve().parent.parent
SHIPPED_ARTICLES = REPO / "articles"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every path setting at tmp_path and clear RAG_* so no test touches the user's index."""
    for key in list(os.environ):
        if key.startswith("RAG_") or key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAG_ARTICLES_DIR", str(tmp_path / "articles"))
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "rag.toml"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def articles_dir(tmp_path: Path) -> Path:
    """A copy of the four shipped articles in tmp_path/articles."""
    dest = tmp_path / "articles"
    shutil.copytree(SHIPPED_ARTICLES, dest)
    return dest


@pytest.fixture
def settings(articles_dir: Path) -> Settings:
    """Settings over the tmp copies (built from the isolated environment)."""
    return Settings()


@pytest.fixture
def fake_embeddings() -> HashingEmbeddings:
    """A deterministic LangChain Embeddings; no model load."""
    return HashingEmbeddings()
