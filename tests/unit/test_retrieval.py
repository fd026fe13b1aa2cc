"""Passages come back with their neighbouring chunks, joined exactly as the article has them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from rag import indexing
from rag.articles import ArticleFile, file_hash, load
from rag.attribution import quotes
from rag.question import analyse, asked_speaker
from rag.retrieval import Passage, Retriever, _prefer_recent
from rag.settings import Settings, Tuning
from rag.store import ChunkStore, Generations, StoredChunk
from tests.fakes import HashingEmbeddings

QUESTIONS = [
    "Where is the drone factory being built?",
    "What did the G7 warn Iran about?",
    "How many ballistic missiles did Iran send to Russia?",
    "Which sanctions did the Biden administration announce?",
    "Who wrote the article about the drone factory?",
]


def test_recent_means_close_before_the_as_of_day() -> None:
    def chunk(name: str, published: str | None) -> StoredChunk:
        return StoredChunk(name, name, {"date": published} if published else {})

    ordered = [
        (chunk("old", "2022-01-03"), 1.0),
        (chunk("that week", "2022-08-15"), 0.95),
        (chunk("newest", "2022-12-20"), 0.94),
        (chunk("undated", None), 0.93),
    ]
    # Without a day, "recent" is the newest of the candidates.
    assert [c.id for c, _ in _prefer_recent(ordered, Tuning())][0] == "newest"
    # As of 2022-08-19, the article of that week wins the near-tie; the months-old one does not.
    as_of = [c.id for c, _ in _prefer_recent(ordered, Tuning(), date(2022, 8, 19))]
    assert as_of[0] == "that week" and as_of.index("old") > 0


def article_text(settings: Settings, passage: Passage) -> str:
    path = settings.articles_dir / passage.source
    return load(ArticleFile(path, passage.source, file_hash(path), path.stat().st_size)).text


def stored_chunks(settings: Settings) -> list:
    gen = Generations(settings.index_dir).current()
    assert gen is not None
    return list(ChunkStore(settings, gen).iter_all())


def search_all(settings: Settings, embedder: HashingEmbeddings) -> list[Passage]:
    retriever = Retriever(settings, embedder)
    four = settings.with_overrides(k=4)
    return [p for q in QUESTIONS for p in retriever.search(analyse(q), four).passages]


@pytest.mark.parametrize("overlap", [40, 0])
def test_a_widened_passage_is_exactly_the_articles_text_at_its_offsets(
    settings: Settings, fake_embeddings: HashingEmbeddings, overlap: int
) -> None:
    # With no overlap, neighbouring chunks leave a gap: the recorded whitespace fills it.
    settings = settings.with_overrides(chunk_tokens=60, chunk_overlap_tokens=overlap)
    indexing.apply(settings, indexing.plan(settings), embedder=fake_embeddings)
    passages = search_all(settings, fake_embeddings)
    by_id = {c.id: c for c in stored_chunks(settings)}
    widened = 0
    for p in passages:
        text = article_text(settings, p)
        assert text[p.start : p.end] == p.text
        hit = by_id[p.chunk_id]
        assert hit.text in p.text  # the matching chunk is inside its context
        widened += len(p.text) > len(hit.text)
    assert widened >= len(passages) // 2


def test_no_chunk_is_shown_twice_and_k_slots_are_filled(
    fake_index: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    meta = {c.id: c.metadata for c in stored_chunks(fake_index)}
    for question in QUESTIONS:
        four = fake_index.with_overrides(k=4)
        passages = Retriever(fake_index, fake_embeddings).search(analyse(question), four).passages
        assert [p.rank for p in passages] == [1, 2, 3, 4]
        for p in passages:
            hit = meta[p.chunk_id]
            for other in passages:
                # Neighbouring windows may share the sentence their chunks overlap by, but no
                # passage holds another passage's matching chunk.
                inside = other.start <= hit["start"] and hit["end"] <= other.end
                assert other is p or other.source != p.source or not inside, question


def test_context_chunks_zero_returns_the_matching_chunks_alone(
    fake_index: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    settings = fake_index.with_overrides(context_chunks=0)
    stored = {c.id: c.text for c in stored_chunks(settings)}
    for p in search_all(settings, fake_embeddings):
        assert p.text == stored[p.chunk_id]


def test_each_chunk_records_its_neighbours(fake_index: Settings) -> None:
    chunks = stored_chunks(fake_index)
    by_place = {(c.metadata["source"], int(c.metadata["ordinal"])): c.id for c in chunks}
    for c in chunks:
        place = (c.metadata["source"], int(c.metadata["ordinal"]))
        assert c.metadata.get("prev_id") == by_place.get((place[0], place[1] - 1))
        assert c.metadata.get("next_id") == by_place.get((place[0], place[1] + 1))


def test_a_passage_quoting_the_asked_speaker_takes_the_place_of_the_last_that_does_not(
    fake_index: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    retriever = Retriever(fake_index, fake_embeddings)
    three = fake_index.with_overrides(k=3)
    plain_query = analyse("Where is the drone factory being built?")
    plain = retriever.search(plain_query, three).passages
    # "..., according to a senior Biden administration official" (the G-7 article, far from
    # the drone factory), among others.
    official = asked_speaker("What did the Biden administration official say?")
    assert official is not None and not any(quotes(official, p.text) for p in plain)
    got = retriever.search(replace(plain_query, speaker=official), three).passages
    assert len(got) == 3 and sum(quotes(official, p.text) for p in got) == 1
    # The first two stay; the speaker's chunk scores below them, so it comes last.
    assert [p.chunk_id for p in got[:2]] == [p.chunk_id for p in plain[:2]]
    assert quotes(official, got[2].text) and [p.rank for p in got] == [1, 2, 3]
    # Nobody quotes this speaker: the passages are as they were.
    nobody = asked_speaker("What did the Dalai Lama say?")
    assert retriever.search(replace(plain_query, speaker=nobody), three).passages == plain
