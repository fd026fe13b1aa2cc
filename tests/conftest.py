"""Shared fixtures: every test gets its own articles and index folders and a clean RAG_* env."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rag.settings import Settings
from tests.fakes import HashingEmbeddings

REPO = Path(__file__).resolve().parent.parent
# A fixed copy of the four shipped articles: tests never read the live articles/ folder, which
# `rag add` and the user change.
SHIPPED_ARTICLES = REPO / "tests" / "data" / "articles"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every path setting at tmp_path and clear RAG_* so no test touches the user's index."""
    for key in list(os.environ):
        if key.startswith("RAG_") or key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAG_ARTICLES_DIR", str(tmp_path / "articles"))
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "rag.toml"))
    monkeypatch.setenv("RAG_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))  # collections
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


@pytest.fixture
def fake_index(settings: Settings, fake_embeddings: HashingEmbeddings) -> Settings:
    """settings whose index holds the shipped articles, embedded with the fake embeddings."""
    from rag import indexing

    indexing.apply(settings, indexing.plan(settings), embedder=fake_embeddings)
    return settings


@pytest.fixture(scope="module")
def real_index_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """RAG_* variables of the shipped articles indexed with the real model, once per module.

    Read-only for the tests that share it: pass it as CliRunner/subprocess env.
    """
    from rag import indexing

    root = tmp_path_factory.mktemp("real-index")
    shutil.copytree(SHIPPED_ARTICLES, root / "articles")
    env = {
        "RAG_ARTICLES_DIR": str(root / "articles"),
        "RAG_INDEX_DIR": str(root / "index"),
        "RAG_CONFIG": str(root / "rag.toml"),
    }
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before isolated_env
        for key in list(os.environ):
            if key.startswith("RAG_"):
                mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        settings = Settings()
        indexing.apply(settings, indexing.plan(settings))
    return env


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where local models are converted, once per test run (about 30 s for SmolLM2); set
    RAG_TEST_MODELS_DIR to keep the converted folders between runs."""
    kept = os.environ.get("RAG_TEST_MODELS_DIR")
    return Path(kept) if kept else tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def local_env(real_index_env: dict[str, str], models_dir: Path) -> dict[str, str]:
    """The real index's settings, the models folder, two passages and short answers (speed)."""
    return {
        **real_index_env,
        "RAG_MODELS_DIR": str(models_dir),
        "RAG_K": "2",
        "RAG_LLM_MAX_TOKENS": "60",
    }


def settings_of(env: dict[str, str], **overrides: object) -> Settings:
    """Settings from local_env's variables, as the CLI would build them from the environment."""
    values: dict[str, object] = {
        "articles_dir": Path(env["RAG_ARTICLES_DIR"]),
        "index_dir": Path(env["RAG_INDEX_DIR"]),
        "models_dir": Path(env["RAG_MODELS_DIR"]),
        "k": int(env["RAG_K"]),
        "llm_max_tokens": int(env["RAG_LLM_MAX_TOKENS"]),
    }
    if "RAG_OPENAI_BASE_URL" in env:
        values["openai_base_url"] = env["RAG_OPENAI_BASE_URL"]
    return Settings(**{**values, **overrides})
