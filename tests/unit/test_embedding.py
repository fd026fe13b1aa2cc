"""Unit tests for model resolution, token counting and the choice of query embedder (no model
is loaded: every embedder here is constructed lazily and never asked to embed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag import embedding
from rag.embedding import (
    EmbeddingError,
    OnnxEmbeddings,
    SentenceTransformerEmbeddings,
    ensure_query_model,
    max_seq_length,
    model_fingerprint,
    onnx_path,
    query_embedder,
    resolve_model_dir,
    token_counter,
)
from rag.settings import DEFAULT_MODEL, Settings
from tests.fakes import HashingEmbeddings


@pytest.fixture(scope="module")
def model_dir() -> Path:
    """The packaged MiniLM folder."""
    return resolve_model_dir(DEFAULT_MODEL)


def test_packaged_model_resolves_to_a_sentence_transformers_folder(model_dir: Path) -> None:
    assert (model_dir / "config.json").is_file()
    assert (model_dir / "tokenizer.json").is_file()
    for alias in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        assert resolve_model_dir(alias) == model_dir


def test_a_local_folder_resolves_to_itself(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve_model_dir(str(folder)) == folder.resolve()


def test_an_unknown_model_name_is_refused_without_downloading(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError) as info:
        resolve_model_dir("BAAI/bge-small-en-v1.5")
    message = str(info.value)
    assert "'BAAI/bge-small-en-v1.5'" in message
    assert "does not download" in message
    assert "RAG_EMBEDDING_MODEL" in message
    # A folder without a model in it is refused the same way.
    with pytest.raises(EmbeddingError):
        resolve_model_dir(str(tmp_path))


def test_token_counter_counts_word_pieces_without_special_tokens(model_dir: Path) -> None:
    count = token_counter(model_dir)
    assert count([]) == []
    assert count(["hello world"]) == [2]
    # "Tatarstan" is split into several word pieces; counts come back in input order.
    short, long = count(["drone", "Alabuga special economic zone in Tatarstan"])
    assert short == 1
    assert long > 6


def test_max_seq_length_is_the_models_own(model_dir: Path, tmp_path: Path) -> None:
    assert max_seq_length(model_dir) == 256
    assert max_seq_length(tmp_path, default=128) == 128


def test_the_onnx_export_lives_in_the_index_and_is_named_by_the_model(
    model_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    path = onnx_path(settings, model_dir)
    assert path.parent == tmp_path / "index" / "models"
    assert path.name.startswith(model_fingerprint(model_dir))

    other = tmp_path / "other-model"
    shutil.copytree(model_dir, other, ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps(config | {"hidden_dropout_prob": 0.2}))
    assert onnx_path(settings, other) != path


def test_query_embedder_uses_the_export_when_the_index_has_one(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    fallback = query_embedder(settings)
    assert isinstance(fallback, SentenceTransformerEmbeddings)
    assert not fallback.loaded  # choosing an embedder loads nothing

    exported = onnx_path(settings)
    exported.parent.mkdir(parents=True)
    exported.write_bytes(b"")
    chosen = query_embedder(settings)
    assert isinstance(chosen, OnnxEmbeddings)
    assert chosen.onnx_file == exported
    assert chosen.max_length == 256


def test_a_broken_export_says_how_to_recreate_it(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    broken = onnx_path(settings)
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not an onnx graph")
    with pytest.raises(EmbeddingError, match="run `rag index`"):
        query_embedder(settings).embed_query("anything")


def test_only_the_real_model_is_exported(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    assert ensure_query_model(settings, HashingEmbeddings()) is None
    assert not (tmp_path / "index" / embedding.MODELS_DIR).exists()


def test_an_existing_export_is_reused_without_loading_the_model(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    current = onnx_path(settings)
    current.parent.mkdir(parents=True)
    current.write_bytes(b"current")
    embedder = SentenceTransformerEmbeddings(resolve_model_dir(DEFAULT_MODEL))
    assert ensure_query_model(settings, embedder) == current
    assert current.read_bytes() == b"current"
    assert not embedder.loaded  # nothing to export, so torch was never loaded
