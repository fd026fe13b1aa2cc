"""Re-ranking ideas tried on rtqa-2022, measured side by side on one candidate pool.

    python probes/retrieval_probe.py          # needs the rtqa-2022 eval index (make_results.py)

For every question it takes the candidate pool the retriever fuses (top 40 dense + top 40
BM25), then ranks that pool in several ways and keeps the top 5 through the same near-duplicate
collapse and per-article cap as `rag ask`. It prints retrieval_hit_rate / answer_in_context_rate
per way and writes them to eval/out/retrieval-probe.json, which eval/make_results.py shows in
eval/RESULTS.md. The learned ranker is scored by 5-fold cross-validation over questions, so it is
never judged on questions it was fitted to. This answers "would a re-ranking step pay?" with the
signals available offline here (MiniLM, BM25, word overlap); no cross-encoder can be installed.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.retrieval import Hit

ROOT = Path(__file__).resolve().parent.parent
RTQA = ROOT.parent / "shared" / "bench" / "rtqa-2022"
OUT = ROOT / "eval" / "out" / "retrieval-probe.json"
POOL = 40
K = 5


def build_pool() -> list[dict]:
    """Per question: the pool's chunks, dense similarity, BM25 score and extra features."""
    import numpy as np

    from rag.chunking import split_sentences
    from rag.embedding import query_embedder
    from rag.evaluation import default_index_dir, load_questions
    from rag.lexical import tokenize
    from rag.retrieval import Retriever
    from rag.settings import Settings

    base = Settings()
    settings = base.with_overrides(index_dir=default_index_dir(base, RTQA / "articles"))
    embedder = query_embedder(settings)
    retriever = Retriever(settings, embedder)
    pool = []
    for n, q in enumerate(load_questions(RTQA / "qa.jsonl"), 1):
        print(f"\rpool {n}/100", end="", file=sys.stderr)
        vector = embedder.embed_query(q.question)
        dense = retriever.store.query(vector, POOL)
        lexical = retriever.lexical.search(q.question, POOL)
        chunks = {c.id: c for c in dense}
        chunks.update((c.id, c) for c in retriever.store.get([h.id for h in lexical]))
        sim = {c.id: 1.0 - (c.distance or 0.0) for c in dense}
        sim.update(retriever.store.similarities([i for i in chunks if i not in sim], vector))
        top = max((h.score for h in lexical), default=1.0) or 1.0
        bm25 = {h.id: h.score / top for h in lexical}
        ids = list(chunks)
        # Sentence-level signals: best sentence cosine, best idf-weighted word coverage.
        q_terms = set(tokenize([q.question])[0])
        terms = {i: set(tokenize([chunks[i].text])[0]) for i in ids}
        df = Counter(t for i in ids for t in terms[i] & q_terms)
        idf = {t: math.log(1 + len(ids) / (1 + df[t])) for t in q_terms}
        total = sum(idf.values()) or 1.0
        sources = Counter(chunks[i].metadata.get("source") for i in ids)
        q_vec = np.asarray(vector)
        rows = []
        for i in ids:
            text = chunks[i].text
            sentences = [text[s:e] for s, e in split_sentences(text) if e - s > 12] or [text]
            s_vecs = np.asarray(embedder.embed_documents(sentences))
            s_terms = tokenize(sentences)
            coverage = max(sum(idf[t] for t in set(st) if t in idf) / total for st in s_terms)
            rows.append(
                [
                    sim.get(i, 0.0),
                    bm25.get(i, 0.0),
                    float((s_vecs @ q_vec).max()),
                    coverage,
                    math.log(sources[chunks[i].metadata.get("source")]),
                ]
            )
        pool.append({"question": q, "ids": ids, "chunks": chunks, "x": rows})
    print(file=sys.stderr)
    return pool


def top_k(item: dict, scores: list[float]) -> list[Hit]:
    """The pool ranked by scores, through `rag ask`'s collapse and per-article cap (matching
    chunks alone: no neighbouring chunks)."""
    from rag.retrieval import collapse
    from rag.settings import Settings

    order = sorted(range(len(scores)), key=lambda j: -scores[j])
    ranked = [(item["chunks"][item["ids"][j]], scores[j]) for j in order]
    return collapse(ranked, K, Settings().max_per_article)


def measure(pool: list[dict], score: Callable[[list[float]], float]) -> tuple[float, float]:
    """(retrieval_hit_rate, answer_in_context_rate) of ranking each pool by score(features)."""
    from rag.scoring import contains_answer

    hit = ctx = 0
    for item in pool:
        q = item["question"]
        hits = top_k(item, [score(x) for x in item["x"]])
        hit += any(h.source in q.sources for h in hits)
        ctx += any(contains_answer(h.chunk.text, q.answers) for h in hits)
    return hit / len(pool), ctx / len(pool)


def learned(pool: list[dict], features: list[int]) -> tuple[float, float]:
    """A logistic ranker on the given features, 5-fold cross-validated over questions."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from rag.scoring import contains_answer

    hits = ctxs = 0.0
    for fold in range(5):
        train = [p for n, p in enumerate(pool) if n % 5 != fold]
        test = [p for n, p in enumerate(pool) if n % 5 == fold]
        x = np.array([[row[f] for f in features] for p in train for row in p["x"]])
        y = np.array(
            [
                contains_answer(p["chunks"][i].text, p["question"].answers)
                for p in train
                for i in p["ids"]
            ]
        )
        model = LogisticRegression(max_iter=2000, class_weight="balanced").fit(x, y)
        hit, ctx = measure(
            test,
            lambda row, m=model: float(m.decision_function([[row[f] for f in features]])[0]),
        )
        hits += hit * len(test)
        ctxs += ctx * len(test)
    return hits / len(pool), ctxs / len(pool)


def main() -> None:
    from rag.scoring import contains_answer
    from rag.settings import Settings

    s = Settings()
    pool = build_pool()
    ceiling = sum(
        any(contains_answer(c.text, p["question"].answers) for c in p["chunks"].values())
        for p in pool
    ) / len(pool)

    def fused(row: list[float], extra: float = 0.0, which: int = 0) -> float:
        return s.dense_weight * row[0] + s.lexical_weight * row[1] + extra * row[which]

    ways: dict[str, tuple[float, float]] = {
        "score fusion, as `rag ask` (no recency boost)": measure(pool, fused),
        "+ 0.25 x best sentence cosine": measure(pool, lambda r: fused(r, 0.25, 2)),
        "+ 0.5 x best sentence cosine": measure(pool, lambda r: fused(r, 0.5, 2)),
        "+ 0.25 x best sentence word coverage": measure(pool, lambda r: fused(r, 0.25, 3)),
        "+ 0.1 x log(chunks of the same article in the pool)": measure(
            pool, lambda r: fused(r, 0.1, 4)
        ),
        "dense weight 1.0 instead of 0.5": measure(pool, lambda r: r[0] + r[1]),
        "logistic ranker on all five signals (5-fold CV)": learned(pool, [0, 1, 2, 3, 4]),
        "logistic ranker on dense + BM25 (5-fold CV)": learned(pool, [0, 1]),
    }
    result = {"pool": f"top {POOL} dense + top {POOL} BM25", "k": K, "pool_ceiling": ceiling}
    result["ways"] = [{"way": w, "hit": h, "ctx": c} for w, (h, c) in ways.items()]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"answer somewhere in the pool: {ceiling:.2f}")
    for way, (hit, ctx) in ways.items():
        print(f"{hit:.2f}  {ctx:.2f}  {way}")
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
