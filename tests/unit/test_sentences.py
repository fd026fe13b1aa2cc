"""Stored sentence vectors (rag/sentences.py): filled once by `rag index`, read by answers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rag import indexing
from rag.pipeline import Pipeline
from rag.sentences import SENTENCES, SentenceStore, StoredSentenceEmbeddings, sentences_of
from rag.settings import Settings
from rag.store import Generations
from tests.corpus import NEW_ARTICLE
from tests.fakes import HashingEmbeddings

QUESTIONS = (
    "Where is the drone factory being built?",
    "Who is Iran's defence minister?",
    "When were the sanctions announced?",
    "What did Iran say about the drones?",
)

TEXTS = {
    "a": "Iran sent drones to Russia. The drones struck Kyiv. Ok.",
    "b": "The drones struck Kyiv. Washington imposed sanctions on Monday.",
}


def live(settings: Settings) -> Path:
    gen = Generations(settings.index_dir).current()
    assert gen is not None
    return gen


def float32(vectors: list[list[float]]) -> list[list[float]]:
    """Vectors as stored: a real model's are float32 already (so stored exactly); the fake's
    float64 ones are rounded."""
    import numpy as np

    return np.asarray(vectors, dtype=np.float32).tolist()


def fill(
    store: SentenceStore,
    embedder: HashingEmbeddings,
    wanted: list[str],
    totals: list[int] | None = None,
) -> int:
    """Fill the store; totals gets how many chunks' sentences update() said it would embed."""
    told = totals if totals is not None else []
    return store.update(
        wanted, lambda ids: {i: TEXTS[i] for i in ids}, embedder.embed_documents, total=told.append
    )


def test_each_distinct_sentence_is_embedded_once_and_read_back_as_embedded(
    tmp_path: Path,
) -> None:
    store, embedder = SentenceStore(tmp_path), HashingEmbeddings()
    assert store.stale()
    # "Ok." is too short to answer anything; "The drones struck Kyiv." is in both chunks.
    assert sentences_of(TEXTS["a"]) == ["Iran sent drones to Russia.", "The drones struck Kyiv."]
    assert fill(store, embedder, ["a", "b"]) == 3
    assert not store.stale()
    sentences = [*sentences_of(TEXTS["a"]), *sentences_of(TEXTS["b"])]
    expected = float32(embedder.embed_documents(sentences))
    assert store.lookup(sentences) == dict(zip(sentences, expected, strict=True))
    assert store.lookup(["A sentence no chunk has."]) == {}
    # Nothing new: nothing embedded.
    calls = len(embedder.calls)
    assert fill(store, embedder, ["a", "b"]) == 0 and len(embedder.calls) == calls


def test_a_removed_chunk_takes_only_its_own_sentences_with_it(tmp_path: Path) -> None:
    store, embedder = SentenceStore(tmp_path), HashingEmbeddings()
    fill(store, embedder, ["a", "b"])
    assert fill(store, embedder, ["b"]) == 0
    assert set(store.lookup([*sentences_of(TEXTS["a"]), *sentences_of(TEXTS["b"])])) == set(
        sentences_of(TEXTS["b"])
    )


def test_an_interrupted_fill_is_stale_and_the_next_run_embeds_only_what_is_missing(
    tmp_path: Path,
) -> None:
    store, embedder = SentenceStore(tmp_path), HashingEmbeddings()

    class Interrupted(Exception):
        pass

    def dies_on_b(ids: list[str]) -> dict[str, str]:
        if "b" in ids:
            raise Interrupted
        return {i: TEXTS[i] for i in ids}

    with pytest.raises(Interrupted):
        store.update(["a", "b"], dies_on_b, embedder.embed_documents, batch=1)
    assert store.stale()
    # Only chunk b's new sentence: chunk a's page was committed.
    totals: list[int] = []
    assert fill(store, embedder, ["a", "b"], totals) == 1
    assert totals == [1]  # chunks left to fill, as the progress bar is told
    assert not store.stale()


def test_a_store_of_another_format_is_filled_again(tmp_path: Path) -> None:
    store, embedder = SentenceStore(tmp_path), HashingEmbeddings()
    fill(store, embedder, ["a"])
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE meta SET value = '0' WHERE name = 'format'")
    assert store.stale()
    totals: list[int] = []
    assert fill(store, embedder, ["a"], totals) == 2
    assert totals == [1]


def test_looking_up_never_creates_the_file(tmp_path: Path) -> None:
    store = SentenceStore(tmp_path)
    assert store.lookup(["Iran sent drones to Russia."]) == {}
    assert not (tmp_path / SENTENCES).exists()


def test_the_wrapper_embeds_only_what_the_store_lacks_and_gives_the_same_vectors(
    tmp_path: Path,
) -> None:
    inner = HashingEmbeddings()
    fill(SentenceStore(tmp_path), HashingEmbeddings(), ["a", "b"])
    wrapped = StoredSentenceEmbeddings(inner, SentenceStore(tmp_path))
    texts = ["What did Iran send?", "Iran sent drones to Russia.", "The drones struck Kyiv."]
    vectors = HashingEmbeddings().embed_documents(texts)
    assert wrapped.embed_documents(texts) == [vectors[0], *float32(vectors[1:])]
    assert inner.calls == [1] and (wrapped.hits, wrapped.misses) == (2, 1)
    assert wrapped.embed_query(texts[0]) == inner.embed_query(texts[0])


def test_indexing_stores_the_sentences_of_every_chunk_and_answers_embed_only_the_question(
    fake_index: Settings,
) -> None:
    pipeline = Pipeline(fake_index, embedder=HashingEmbeddings())
    assert isinstance(pipeline.embedder, StoredSentenceEmbeddings)
    for question in QUESTIONS:
        pipeline.ask(question)
    assert pipeline.embedder.hits > 20 * len(QUESTIONS)
    # Per question, only the asking sentence (and a passage sentence split across chunks).
    assert pipeline.embedder.misses <= 2 * len(QUESTIONS)


def test_answers_are_the_same_with_and_without_stored_vectors(fake_index: Settings) -> None:
    stored = Pipeline(fake_index, embedder=HashingEmbeddings())
    with_store = [stored.ask(q) for q in QUESTIONS]
    (live(fake_index) / SENTENCES).unlink()
    bare = Pipeline(fake_index, embedder=HashingEmbeddings())
    without = [bare.ask(q) for q in QUESTIONS]
    assert bare.embedder.hits == 0
    assert [(a.text, a.refused) for a in with_store] == [(a.text, a.refused) for a in without]
    assert [[p.score for p in a.picks] for a in with_store] == [
        [p.score for p in a.picks] for a in without
    ]


def test_an_index_without_stored_sentences_is_upgraded_by_the_next_index_run(
    fake_index: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    gen = live(fake_index)
    (gen / SENTENCES).unlink()  # as an index written before sentence vectors were stored
    plan = indexing.plan(fake_index)
    assert plan.resentence and not plan.is_noop
    assert not (plan.added or plan.changed or plan.rebuild_reason)
    report = indexing.apply(fake_index, plan, embedder=fake_embeddings)
    assert report.embedded_chunks == 0 and report.embedded_sentences > report.chunks
    assert live(fake_index) == gen and not SentenceStore(gen).stale()
    assert indexing.plan(fake_index).is_noop


def test_adding_an_article_embeds_only_its_sentences(
    fake_index: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    (fake_index.articles_dir / "new.txt").write_text(NEW_ARTICLE)
    report = indexing.apply(fake_index, indexing.plan(fake_index), embedder=fake_embeddings)
    assert report.added == 1
    new = sum(len(sentences_of(text)) for text in _chunk_texts(fake_index, "new.txt"))
    assert 0 < report.embedded_sentences <= new
    # Deleting it again removes its sentences and embeds nothing.
    (fake_index.articles_dir / "new.txt").unlink()
    report = indexing.apply(fake_index, indexing.plan(fake_index), embedder=fake_embeddings)
    assert report.deleted == 1 and report.embedded_sentences == 0
    with sqlite3.connect(live(fake_index) / SENTENCES) as db:
        ids = {row[0] for row in db.execute("SELECT DISTINCT id FROM chunk")}
    _, manifest = indexing.current_manifest(fake_index)
    assert manifest is not None
    assert ids == {c for e in manifest.articles.values() for c in e.chunks}


def _chunk_texts(settings: Settings, rel: str) -> list[str]:
    from rag.store import ChunkStore

    _, manifest = indexing.current_manifest(settings)
    assert manifest is not None
    gen = live(settings)
    return [c.text for c in ChunkStore(settings, gen).get(manifest.articles[rel].chunks)]


def test_dry_run_says_the_sentence_vectors_will_be_added(
    fake_index: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    from typer.testing import CliRunner

    from rag.cli import app

    (live(fake_index) / SENTENCES).unlink()
    env = {
        "RAG_ARTICLES_DIR": str(fake_index.articles_dir),
        "RAG_INDEX_DIR": str(fake_index.index_dir),
    }
    result = CliRunner().invoke(app, ["index", "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert "sentence vectors:" in result.stdout and "chunk vectors are kept" in result.stdout
    plan = CliRunner().invoke(app, ["index", "--dry-run", "--json"], env=env)
    assert '"resentence": true' in plan.stdout
