"""How much of the answer a model is still shown when the passages are cut to a token budget.

    python probes/excerpt_probe.py SET.jsonl ARTICLES INDEX [--budgets 200 400 600 800 0]

For every answerable question of the set it retrieves the passages as `rag ask` does, builds
the prompt's passage text at each budget (rag/answering/excerpt.py; 0 = whole passages) and
records its size in word pieces and whether a gold answer string is still in it. A model cannot
answer from what it is not shown, so the smallest budget that keeps (nearly) every answer the
whole passages hold is the one to try with a model: this chooses Tuning.prompt_budget's
candidates without running a model. Prints one JSON object per budget; `--out` writes them.
The index must be an eval index of those articles (`rag eval --set SET --index INDEX` makes it).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("articles", type=Path)
    parser.add_argument("index", type=Path)
    parser.add_argument("--budgets", type=int, nargs="+", default=[200, 400, 600, 800, 1000, 0])
    parser.add_argument("--out", type=Path, help="also write the lines here")
    args = parser.parse_args()

    from rag.answering.excerpt import excerpt, whole
    from rag.answering.extractive import ExtractiveAnswerer
    from rag.embedding import resolve_model_dir, token_counter
    from rag.evaluation import load_questions
    from rag.pipeline import Pipeline
    from rag.question import analyse
    from rag.settings import Settings

    settings = Settings(articles_dir=args.articles, index_dir=args.index, llm="extractive")
    pipeline = Pipeline(settings)
    count = token_counter(resolve_model_dir(settings.embedding_model))
    ranker = ExtractiveAnswerer(pipeline.embedder, settings.tuning)
    items = [q for q in load_questions(args.questions) if q.answers]
    shown: dict[int, list[tuple[int, bool]]] = {b: [] for b in args.budgets}
    for item in items:
        query = analyse(item.question, tuning=settings.tuning)
        passages = pipeline.retriever.search(query, settings).passages
        ranked = ranker.for_prompt(query, passages)
        for budget in args.budgets:
            text = excerpt(ranked, passages, budget, count).text if budget else whole(passages)
            found = any(a.lower() in text.lower() for a in item.answers)
            shown[budget].append((sum(count([text])), found))
    lines = []
    for budget, rows in shown.items():
        lines.append(
            {
                "set": args.questions.name,
                "budget": budget or "whole",
                "questions": len(rows),
                "answer_shown": round(sum(f for _, f in rows) / len(rows), 3),
                "tokens_p50": statistics.median(t for t, _ in rows),
                "tokens_max": max(t for t, _ in rows),
            }
        )
        print(json.dumps(lines[-1]), flush=True)
    if args.out:
        args.out.write_text("".join(json.dumps(line) + "\n" for line in lines))


if __name__ == "__main__":
    main()
