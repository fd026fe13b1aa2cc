"""Passages come back with their neighbouring chunks, joined exactly as the article has them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from rag import indexing
from rag.articles import ArticleFile, file_hash, load
from rag.attribution import quotes
from rag.lexical import LexicalHit
from rag.question import analyse, asked_speaker
from rag.retrieval import Passage, Retriever, _fuse, _prefer_recent, collapse
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


def _chunk(cid: str, text: str, source: str, ordinal: int, distance: float = 0.5) -> StoredChunk:
    return StoredChunk(cid, text, {"source": source, "ordinal": ordinal}, distance)


WIRE = (
    "Iran has sent hundreds of ballistic missiles to Russia over the summer, three officials "
    "familiar with the matter told reporters on Friday, adding that more were on the way."
)


def test_wire_copy_repeated_by_another_outlet_is_one_passage_noted_as_corroboration() -> None:
    ordered = [
        (_chunk("a1", WIRE, "ap.txt", 3), 0.9),
        # The same paragraph, lightly edited, in another article: not a second passage.
        (_chunk("b1", WIRE.replace("on Friday", "late on Friday"), "reuters.txt", 7), 0.8),
        (
            _chunk(
                "c1", "Ukraine's air force said it shot down 40 drones overnight.", "kyiv.txt", 0
            ),
            0.7,
        ),
    ]
    hits = collapse(ordered, k=3, max_per_article=2)
    assert [h.chunk.id for h in hits] == ["a1", "c1"]
    assert hits[0].corroborated_by == ["reuters.txt"]
    # Below the containment threshold the two are kept apart.
    apart = collapse(ordered, k=3, max_per_article=2, near_duplicate=1.01)
    assert [h.chunk.id for h in apart] == ["a1", "b1", "c1"] and apart[0].corroborated_by == []


def test_at_most_max_per_article_and_neighbours_take_no_slot() -> None:
    texts = {
        0: "Iran sent drones to Russia in August.",
        1: "The factory in Tatarstan makes them now.",
        4: "Sanctions followed within weeks of the report.",
        8: "Tehran denied every part of the story.",
    }
    ordered = [(_chunk(f"a{i}", t, "a.txt", i), 1 - i / 10) for i, t in texts.items()]
    ordered.append((_chunk("b0", "Another article on oil prices entirely.", "b.txt", 0), 0.1))
    hits = collapse(ordered, k=5, max_per_article=2)
    assert [h.chunk.id for h in hits] == ["a0", "a1", "b0"]
    # With one neighbour shown either side, a1 is a0's context, not a passage of its own.
    hits = collapse(ordered, k=5, max_per_article=2, window=1)
    assert [h.chunk.id for h in hits] == ["a0", "a4", "b0"]


def test_rrf_fuses_by_rank_and_scores_by_similarity_and_bm25(fake_index: Settings) -> None:
    dense = [_chunk("x", "", "x.txt", 0, 0.1), _chunk("y", "", "y.txt", 0, 0.2)]
    lexical = [LexicalHit("z", 9.0), LexicalHit("y", 3.0)]
    similarity = {"x": 0.9, "y": 0.8, "z": 0.1}
    rrf = dict(_fuse(fake_index.with_overrides(fusion="rrf"), dense, lexical, similarity))
    # y is in both lists: it wins; x (dense rank 1) and z (BM25 rank 1) tie at 1/(60+1) * weight.
    assert max(rrf, key=rrf.get) == "y"
    assert rrf["x"] == pytest.approx(0.5 / 61) and rrf["z"] == pytest.approx(1.0 / 61)
    scores = dict(_fuse(fake_index, dense, lexical, similarity))
    # 0.5 * cosine + 1.0 * BM25 / best BM25.
    assert scores["z"] == pytest.approx(0.5 * 0.1 + 1.0)
    assert scores["y"] == pytest.approx(0.5 * 0.8 + 3.0 / 9.0)
    assert scores["x"] == pytest.approx(0.5 * 0.9)
