"""Unit tests for the Chroma side of the store: real persistent Chroma in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.settings import Settings
from rag.store import ChunkStore

VECTORS = {"a": [1.0, 0.0, 0.0], "b": [0.6, 0.8, 0.0], "c": [0.0, 0.0, 1.0]}


@pytest.fixture
def store(tmp_path: Path) -> ChunkStore:
    """A store holding three chunks with known vectors."""
    gen = tmp_path / "gen-test"
    gen.mkdir()
    chunks = ChunkStore(Settings(), gen)
    chunks.upsert(
        list(VECTORS),
        [f"text {cid}" for cid in VECTORS],
        list(VECTORS.values()),
        [{"source": f"{cid}.txt", "date": None} for cid in VECTORS],
    )
    return chunks


def test_query_for_more_than_stored_returns_all_nearest_first(store: ChunkStore) -> None:
    hits = store.query([1.0, 0.0, 0.0], 40)
    assert [h.id for h in hits] == ["a", "b", "c"]
    assert [round(h.distance, 4) for h in hits] == [0.0, 0.4, 1.0]
    assert hits[1].text == "text b"
    assert hits[1].metadata == {"source": "b.txt"}


def test_query_returns_n_nearest(store: ChunkStore) -> None:
    # a is a little closer than c (which is orthogonal): no tie to break arbitrarily.
    assert [h.id for h in store.query([0.1, 1.0, 0.0], 2)] == ["b", "a"]


def test_query_of_an_empty_store_finds_nothing(tmp_path: Path) -> None:
    gen = tmp_path / "gen-empty"
    gen.mkdir()
    assert ChunkStore(Settings(), gen).query([1.0, 0.0, 0.0], 5) == []


def test_query_sees_chunks_added_after_an_earlier_query(store: ChunkStore) -> None:
    assert len(store.query([1.0, 0.0, 0.0], 40)) == 3
    store.upsert(["d"], ["text d"], [[0.0, 1.0, 0.0]], [{"source": "d.txt"}])
    assert [h.id for h in store.query([0.0, 1.0, 0.0], 40)][:2] == ["d", "b"]
    store.delete(["a", "b", "c", "d"])
    assert store.query([1.0, 0.0, 0.0], 40) == []


def test_get_and_similarities_by_id(store: ChunkStore) -> None:
    assert [c.id for c in store.get(["c", "missing", "a"])] == ["c", "a"]
    sims = store.similarities(["b", "c"], [2.0, 0.0, 0.0])
    assert sims.keys() == {"b", "c"}
    assert sims["b"] == pytest.approx(0.6)
    assert sims["c"] == pytest.approx(0.0)
    assert store.similarities([], [1.0, 0.0, 0.0]) == {}
