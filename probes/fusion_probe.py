"""Can passage fusion be fitted? Dense/BM25 fusion weights and candidate counts on rtqa-2024-train.

    python probes/fusion_probe.py ../shared/bench/rtqa-2024-train   # after fitting/train_selector.py

On the training corpus that fitting/train_selector.py indexes, each question's candidates are the
union of the dense top-N and the BM25 top-N chunks, as Retriever.search gathers them. A
candidate is relevant when its article is one of the question's sources. It prints the share
of questions with a relevant chunk among the 5 best-fused chunks (before the per-article cap and
neighbouring chunks, so it reads lower than `rag eval`'s hit rate):
- for the shipped score fusion at several dense weights (lexical weight 1.0; the default 0.5);
- for a fusion fitted listwise (fitting/train_selector.fit_ranker) over the cosine, the scaled BM25
  score and whether each list found the chunk, cross-validated over questions;
- at N = 40 (Settings.candidates) and 80.
Nothing is written; the figures go into eval/LEARNED.md by hand.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DENSE_WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
CANDIDATES = (40, 80)
TOP = 5


def rows_for(n: int, train_dir: Path) -> list:
    """One QuestionRows per training question: candidate features and source labels."""
    from fitting import train_selector as ts
    from rag.embedding import query_embedder
    from rag.evaluation import default_index_dir, load_questions
    from rag.question import analyse
    from rag.retrieval import Retriever
    from rag.settings import Settings

    base = Settings(articles_dir=ts.ARTICLES)
    settings = base.with_overrides(index_dir=default_index_dir(base, ts.ARTICLES))
    embedder = query_embedder(settings)
    retriever = Retriever(settings, embedder)
    out = []
    for q in load_questions(train_dir / "qa.jsonl"):
        query = analyse(q.question, date.today(), settings.tuning)
        vector = embedder.embed_query(query.text)
        dense = retriever.store.query(vector, n)
        lexical = retriever.lexical.search(query.text, n)
        similarity = {c.id: 1.0 - (c.distance or 0.0) for c in dense}
        similarity.update(
            retriever.store.similarities([h.id for h in lexical if h.id not in similarity], vector)
        )
        top = max((h.score for h in lexical), default=0.0) or 1.0
        bm25 = {h.id: h.score / top for h in lexical}
        source = {c.id: c.metadata.get("source", "") for c in dense}
        rest = [i for i in bm25 if i not in source]
        source.update((c.id, c.metadata.get("source", "")) for c in retriever.store.get(rest))
        ids = list(dict.fromkeys([*similarity, *bm25]))
        wanted = {Path(s).name.lower() for s in q.sources}
        in_dense = {c.id for c in dense}
        features = [
            [similarity.get(i, 0.0), bm25.get(i, 0.0), float(i in bm25), float(i in in_dense)]
            for i in ids
        ]
        labels = [int(Path(source.get(i, "")).name.lower() in wanted) for i in ids]
        out.append(ts.QuestionRows(q.id, False, any(labels), features, labels, [], []))
    return out


def hit_rate(rows: list, scores: list[list[float]]) -> float:
    """Share of questions with a relevant chunk among the TOP best-scored candidates."""
    hits = 0
    for r, s in zip(rows, scores, strict=True):
        best = sorted(range(len(s)), key=lambda i: -s[i])[:TOP]
        hits += any(r.labels[i] for i in best)
    return round(hits / len(rows), 3)


def main(argv: list[str] | None = None) -> int:
    from fitting import train_selector as ts

    args = sys.argv[1:] if argv is None else argv
    train_dir = Path(args[0] if args else "../shared/bench/rtqa-2024-train").resolve()
    if not (train_dir / "qa.jsonl").is_file() or not ts.ARTICLES.is_dir():
        print(
            f"error: needs {train_dir / 'qa.jsonl'} and the training index "
            "(run python fitting/train_selector.py first)",
            file=sys.stderr,
        )
        return 2
    for n in CANDIDATES:
        rows = rows_for(n, train_dir)
        for w in DENSE_WEIGHTS:
            scores = [[w * f[0] + f[1] for f in r.features] for r in rows]
            print(f"N={n} score fusion, dense weight {w}: hit@{TOP} {hit_rate(rows, scores)}")
        learned = ts.out_of_fold(rows, 0.01)
        print(f"N={n} fitted fusion, out of fold: hit@{TOP} {hit_rate(rows, learned)}")
    return 0


if __name__ == "__main__":
    # Run by path, Python puts probes/ on sys.path, not the repo root `fitting.train_selector` is
    # imported from (as it is under pytest).
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
