"""Unit tests for probes/retrieval_probe.py's scoring of a ranking, on a hand-made pool."""

from __future__ import annotations

from types import SimpleNamespace

from probes import retrieval_probe
from rag.store import StoredChunk


def chunk(cid: str, source: str, ordinal: int, text: str) -> StoredChunk:
    return StoredChunk(cid, text, {"source": source, "ordinal": ordinal})


def pool_item() -> dict:
    """Six candidates: the answer is in the one the first feature ranks last."""
    # Distinct texts: near-duplicates would collapse into one passage.
    texts = [
        "Oil sanctions tightened again.",
        "The football final ended level.",
        "Heavy rain flooded Spanish towns.",
        "Apple unveiled another phone.",
        "Parliament passed the tax law.",
    ]
    chunks = [chunk(f"d{n}", f"distractor-{n}.txt", 0, text) for n, text in enumerate(texts)]
    chunks.append(chunk("a", "answer.txt", 0, "The drone factory is in Alabuga."))
    question = SimpleNamespace(answers=["Alabuga"], sources=["answer.txt"])
    rows = [[0.9 - 0.1 * n, 0.0] for n in range(5)] + [[0.1, 1.0]]
    return {
        "question": question,
        "ids": [c.id for c in chunks],
        "chunks": {c.id: c for c in chunks},
        "x": rows,
    }


def test_measure_counts_a_hit_only_when_the_ranking_brings_the_answer_into_the_top_k() -> None:
    pool = [pool_item()]
    # Ranked by the first feature, the answer chunk is 6th of 6: outside the top 5.
    assert retrieval_probe.measure(pool, lambda row: row[0]) == (0.0, 0.0)
    # Ranked by the second, it is first.
    assert retrieval_probe.measure(pool, lambda row: row[1]) == (1.0, 1.0)


def test_top_k_keeps_the_per_article_cap_of_rag_ask() -> None:
    item = pool_item()
    texts = [
        "Drones crossed the Caspian Sea.",
        "Missiles were sent last month.",
        "New sanctions were announced.",
        "Talks resumed in Vienna.",
    ]
    same = [chunk(f"s{n}", "same.txt", 10 * n, text) for n, text in enumerate(texts)]
    item["chunks"] = {c.id: c for c in same}
    item["ids"] = [c.id for c in same]
    hits = retrieval_probe.top_k(item, [4.0, 3.0, 2.0, 1.0])
    assert [h.chunk.id for h in hits] == ["s0", "s1"]  # max_per_article is 2
