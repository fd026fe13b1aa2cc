"""Grid search of the extractive answerer's sentence weights (Tuning), cross-validated on rtqa-2022.

    python fitting/tune_weights.py          # needs the eval indexes (python eval/make_results.py)

Each question is analysed and retrieved once, and passes the pipeline's refusal gate or not,
exactly as `rag ask` does; every weight setting then answers the same passages, with sentence
embeddings cached, so the grid costs one embedding pass. It
prints, for the current defaults and the best settings, answer accuracy and refusal accuracy on
the shipped set, the held-out set and rtqa-2022, and writes every row to
eval/out/weights-grid.json.

Picking the best of many settings on rtqa-2022 flatters it, so the script also reports a
2-fold cross-validated rtqa-2022 accuracy: the setting is chosen on half the questions (plus
the shipped set) and scored on the other half, over 5 random splits.

The answerer's other values (SWEEP) are not searched, only checked: each is varied on its own
around the defaults, to show what moving it would cost or gain on each set. Tuning's retrieval
constants are measured by probes/retrieval_probe.py and the retrieval variants of
eval/make_results.py; its citation thresholds are not calibrated by any script.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from rag.question import Query
    from rag.retrieval import Passage
    from rag.settings import Tuning

ROOT = Path(__file__).resolve().parent.parent
RTQA = ROOT.parent / "shared" / "bench" / "rtqa-2022"
OUT = ROOT / "eval" / "out" / "weights-grid.json"
SETS = {
    "shipped": (ROOT / "eval" / "qa.jsonl", ROOT / "articles"),
    "holdout": (ROOT / "eval" / "holdout.jsonl", ROOT / "articles"),
    "rtqa-2022": (RTQA / "qa.jsonl", RTQA / "articles"),
}
GRID = {
    "cosine": (0.3, 0.45, 0.6),
    "coverage": (0.15, 0.3, 0.45),
    "typed": (0.05, 0.1, 0.2),
    "restated": (0.1, 0.2),
    "context": (0.0, 0.1),
}
# Varied one at a time from the defaults (second_ratio 1.01: never a second sentence).
SWEEP = {
    "rank_prior": (0.0, 0.025, 0.05, 0.1),
    "focus": (1.0, 2.0, 3.0, 4.0),
    "min_score": (0.1, 0.15, 0.2, 0.25, 0.3),
    "second_ratio": (0.7, 0.8, 0.9, 1.01),
    "typed_min_coverage": (0.1, 0.2, 0.3),
    "restated_below": (0.3, 0.4, 0.5),
    "counterclaim_ratio": (0.3, 0.45, 0.6, 2.0),
    "own_speaker": (0.7, 0.85, 1.0),
    "max_sentences": (1, 2, 3),
}
Row = tuple[dict, "Query", "list[Passage] | None"]


class CachedEmbeddings(Embeddings):
    """Wraps an embedder and remembers every text's vector (sentences recur across settings)."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.memo: dict[str, list[float]] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        need = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if need:
            self.memo.update(zip(need, self.inner.embed_documents(need), strict=True))
        return [self.memo[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def retrieve_all(embedder: CachedEmbeddings) -> dict[str, list[Row]]:
    """Per set: each question, analysed, with its passages (None when the pipeline's refusal
    gate refuses before any answerer sees them, as `rag ask` does)."""
    from datetime import date

    from rag.evaluation import default_index_dir, load_questions
    from rag.pipeline import refusal_gate
    from rag.question import analyse
    from rag.retrieval import Retriever
    from rag.settings import Settings

    out = {}
    for name, (questions, articles) in SETS.items():
        if not questions.is_file():
            print(f"skipping {name}: {questions} not found")
            continue
        base = Settings(articles_dir=articles)
        settings = base.with_overrides(index_dir=default_index_dir(base, articles))
        if name == "rtqa-2022":
            settings = settings.with_overrides(k=5)
        retriever = Retriever(settings, embedder)
        rows = []
        for q in load_questions(questions):
            asked = settings.with_overrides(as_of=q.asked) if q.asked else settings
            query = analyse(q.question, asked.as_of or date.today(), asked.tuning)
            r = retriever.search(query, asked)
            refused = refusal_gate(query, r, asked) is not None
            rows.append(
                (
                    {"question": q.question, "answers": q.answers},
                    query,
                    None if refused else r.passages,
                )
            )
        out[name] = rows
    return out


def judge(tuning: Tuning, embedder: CachedEmbeddings, rows: list[Row]) -> list[int]:
    """Per question: 1/0 answered correctly or not (answerable), -1/-2 refused or answered
    (unanswerable)."""
    from rag.answering.extractive import ExtractiveAnswerer
    from rag.scoring import contains_answer

    answerer = ExtractiveAnswerer(embedder, tuning)
    verdicts = []
    for q, query, passages in rows:
        answer = None if passages is None else answerer.answer(query, passages)
        text, refused = ("", True) if answer is None else (answer.text, answer.refused)
        if q["answers"]:
            verdicts.append(int(not refused and contains_answer(text, q["answers"])))
        else:
            verdicts.append(-1 if refused else -2)  # unanswerable: refused / answered
    return verdicts


def varied(tuning: Tuning, changes: dict) -> Tuning:
    """The tuning with these values, validated (model_copy(update=) would not check them)."""
    return type(tuning).model_validate({**tuning.model_dump(), **changes})


def rates(verdicts: list[int]) -> dict[str, float | None]:
    answerable = [v for v in verdicts if v >= 0]
    unanswerable = [v for v in verdicts if v < 0]
    return {
        "answer_accuracy": round(sum(answerable) / len(answerable), 3) if answerable else None,
        "refusal_accuracy": (
            round(sum(v == -1 for v in unanswerable) / len(unanswerable), 3)
            if unanswerable
            else None
        ),
    }


def main() -> None:
    from rag.embedding import query_embedder
    from rag.settings import Settings

    settings = Settings()
    defaults = settings.tuning
    embedder = CachedEmbeddings(query_embedder(settings))
    data = retrieve_all(embedder)
    rows = []
    for values in itertools.product(*GRID.values()):
        tuning = varied(defaults, dict(zip(GRID, values, strict=True)))
        per_set = {name: judge(tuning, embedder, r) for name, r in data.items()}
        rows.append({"weights": tuning.model_dump(), "verdicts": per_set})
    default = {name: judge(defaults, embedder, r) for name, r in data.items()}
    sweep = {
        key: [
            {
                "value": value,
                **{
                    name: rates(judge(varied(defaults, {key: value}), embedder, r))
                    for name, r in data.items()
                },
            }
            for value in values
        ]
        for key, values in SWEEP.items()
    }

    def score(row: dict, questions: set[int]) -> float:
        """rtqa-2022 accuracy on the given questions plus shipped accuracy and refusals."""
        rt = row["verdicts"].get("rtqa-2022", [])
        shipped = rates(row["verdicts"].get("shipped", []))
        return (
            sum(rt[i] for i in questions) / max(1, len(questions))
            + (shipped["answer_accuracy"] or 0.0)
            + (shipped["refusal_accuracy"] or 0.0)
        )

    n = len(data.get("rtqa-2022", []))
    everything = set(range(n))
    best = max(rows, key=lambda r: score(r, everything))
    cv = []
    rng = random.Random(0)
    for _ in range(5):
        order = list(range(n))
        rng.shuffle(order)
        halves = (set(order[: n // 2]), set(order[n // 2 :]))
        correct = 0
        for train, test in (halves, halves[::-1]):
            chosen = max(rows, key=lambda r: score(r, train))
            correct += sum(chosen["verdicts"]["rtqa-2022"][i] for i in test)
        cv.append(correct / n)

    print(f"{len(rows)} settings of {', '.join(GRID)}")
    for label, verdicts in (("defaults", default), ("best", best["verdicts"])):
        shown = {name: rates(v) for name, v in verdicts.items()}
        print(f"{label}: {json.dumps(shown)}")
    print("best weights:", {k: best["weights"][k] for k in GRID})
    print(
        "rtqa-2022 answer_accuracy, 2-fold cross-validated over 5 splits:",
        [round(c, 3) for c in cv],
    )
    for key, points in sweep.items():
        print(f"{key} (default {getattr(defaults, key)}):")
        for point in points:
            print(
                f"  {point['value']}: "
                + json.dumps({k: v for k, v in point.items() if k != "value"})
            )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "grid": GRID,
                "defaults": {k: rates(v) for k, v in default.items()},
                "best": {
                    "weights": best["weights"],
                    **{k: rates(v) for k, v in best["verdicts"].items()},
                },
                "cross_validated_rtqa_accuracy": cv,
                "sweep": sweep,
                "rows": [
                    {"weights": r["weights"], **{k: rates(v) for k, v in r["verdicts"].items()}}
                    for r in rows
                ],
            },
            indent=1,
        )
    )
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
