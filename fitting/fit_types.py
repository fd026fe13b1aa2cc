"""Fit the answer-type check (rag/answering/types.py) on rtqa-2024-train's quizzes.

    python fitting/fit_types.py ../shared/bench/rtqa-2024-train     # writes the shipped file
    python fitting/fit_types.py DIR --check    # refit, compare with the shipped file, write nothing

1. **Names.** Each question's type is what `rag.question.answer_type` reads in it (the same
   function `rag ask` uses). Its four choices are names of that type ("Boeing", "SpaceX", "Blue
   Origin", "Virgin Galactic" for "which company"): every choice that is a name as rag reads
   one (`types.as_name`; "Shein and Temu" is two) is a positive for its question's type, and a
   negative for the others (countries, states, people, teams, films), except names that are
   also positives and the choices of a question where two or more are (a "which streaming
   service" question lists companies without asking for one by that word).
2. **Model.** A logistic regression per type on the name's embedding by the query model
   (`rag.embedding.query_embedder`, the vector `rag ask` computes), balanced classes, C chosen
   from a grid by log loss over 5 folds of distinct names (their AUC is reported).
3. **Threshold, as the check is used.** Each question of the type brings sentences of its own
   candidate articles: up to 3 holding an answer string (should pass) and up to 6 holding none
   of its four choices (should mostly be refused). Over 5 folds of questions, a model fitted
   without the fold's questions' names judges the fold's sentences as `types.check` does: a
   name at or above the threshold, or one the articles describe as of the type. The threshold
   is the highest that passes RECALL of the answer sentences.
4. **Ship rule.** A type ships when, at that threshold, its check refuses at least SHIP_REFUSED
   of the sentences holding none of the choices; a weaker check would cost right answers for
   little. Both types pass it as of 2026-12-03 (figures in the file).
5. **Output.** rag/answering/types.json: per type the coefficients fitted on all names, the
   threshold, the out-of-fold figures; and the fingerprint of the data and code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answering.types import PARAMS, as_name, described, names_in  # noqa: E402
from rag.chunking import split_sentences  # noqa: E402
from rag.question import Query, analyse, answer_type, asking_part  # noqa: E402
from rag.settings import Settings  # noqa: E402

TYPES = ("country", "company")
RECALL = 0.95
SHIP_REFUSED = 0.5
FOLDS = 5
GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
ARTICLES_PER_QUESTION = 4
ANSWER_SENTENCES, OTHER_SENTENCES = 3, 6
SEED = 0
CODE = ("fitting/fit_types.py", "rag/answering/types.py", "rag/question.py")


@dataclass(frozen=True)
class Quiz:
    """One training question: what rag reads in it, its choices as names, its articles."""

    query: Query
    kind: str | None
    names: tuple[str, ...]
    answers: tuple[str, ...]
    choices: tuple[str, ...]
    articles: tuple[str, ...]  # file names, in the benchmark's search order


@dataclass(frozen=True)
class Case:
    """A sentence of a question's candidate articles, to pass (holds an answer) or not."""

    quiz: int
    sentence: str
    answers: bool


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def quizzes(train_dir: Path) -> list[Quiz]:
    questions = {}
    for line in (train_dir / "qa.jsonl").open(encoding="utf-8"):
        if line.strip():
            q = json.loads(line)
            questions[q["id"]] = q
    out = []
    for line in (train_dir / "extra.jsonl").open(encoding="utf-8"):
        if not line.strip():
            continue
        e = json.loads(line)
        q = questions[e["id"]]
        parts = [p.strip() for c in e["choices"] for p in re.split(r"\s+and\s+", c)]
        out.append(
            Quiz(
                query=analyse(q["question"]),
                kind=answer_type(asking_part(q["question"])),
                names=tuple(n for n in map(as_name, parts) if n),
                answers=tuple(q["answers"]),
                choices=tuple(e["choices"]),
                articles=tuple(e.get("search_results") or ()),
            )
        )
    return out


def examples(
    rows: list[Quiz], kind: str, leave_out: frozenset[str] | set[str] = frozenset()
) -> tuple[list[str], list[str]]:
    """The type's positive and negative names (distinct, first-seen order), none in leave_out."""
    positives = list(dict.fromkeys(n for q in rows if q.kind == kind for n in q.names))
    seen = set(positives)
    negatives = dict.fromkeys(
        n
        for q in rows
        if q.kind != kind and sum(n in seen for n in q.names) < 2
        for n in q.names
        if n not in seen
    )
    return [n for n in positives if n not in leave_out], [
        n for n in negatives if n not in leave_out
    ]


def cases(train_dir: Path, rows: list[Quiz], kind: str) -> tuple[list[Case], dict[int, list]]:
    """Sentences of each type question's candidate articles, and the articles' texts."""
    rng = random.Random(SEED)
    out, texts = [], {}
    for i, q in enumerate(rows):
        if q.kind != kind:
            continue
        articles = [
            (train_dir / "articles" / name).read_text(encoding="utf-8", errors="replace")
            for name in q.articles[:ARTICLES_PER_QUESTION]
        ]
        texts[i] = articles
        holding, other = [], []
        for text in articles:
            for start, end in split_sentences(text):
                sentence = text[start:end].strip()
                if sentence.startswith("URL:"):
                    continue  # the file's address line: an answer there is in lower case
                low = sentence.lower()
                if any(a.lower() in low for a in q.answers):
                    holding.append(sentence)
                elif not any(c.lower() in low for c in q.choices):
                    other.append(sentence)
        out += [Case(i, s, True) for s in holding[:ANSWER_SENTENCES]]
        out += [Case(i, s, False) for s in rng.sample(other, min(OTHER_SENTENCES, len(other)))]
    return out, texts


class Vectors:
    """The query model's vectors of names, each embedded once."""

    def __init__(self) -> None:
        from rag.embedding import query_embedder

        self.embedder = query_embedder(Settings())
        self.cache: dict[str, list[float]] = {}

    def __call__(self, names: list[str]) -> Any:
        import numpy as np

        missing = [n for n in dict.fromkeys(names) if n not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.embedder.embed_documents(missing), strict=True))
        return np.array([self.cache[n] for n in names], dtype=np.float64)


def model(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=3000)


def choose_c(vectors: Any, labels: Any) -> tuple[float, float, dict[str, float]]:
    """C by out-of-fold log loss over distinct names; that C's AUC."""
    import numpy as np
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(vectors, labels))
    chances = {}
    for c in GRID:
        p = np.zeros(len(labels))
        for train, test in folds:
            p[test] = model(c).fit(vectors[train], labels[train]).predict_proba(vectors[test])[:, 1]
        chances[c] = p
    losses = {c: log_loss(labels, p) for c, p in chances.items()}
    best = min(losses, key=losses.__getitem__)
    auc = float(roc_auc_score(labels, chances[best]))
    return best, auc, {str(c): round(v, 4) for c, v in losses.items()}


def judged(
    train_dir: Path, rows: list[Quiz], kind: str, c: float, vectors: Vectors
) -> dict[str, Any]:
    """The check's pass rates on held-out questions' sentences at each threshold."""
    import numpy as np

    found, texts = cases(train_dir, rows, kind)
    quizzes_of_kind = sorted(texts)
    scored = []  # (answers, best probability, described)
    for fold in range(FOLDS):
        held = {q for j, q in enumerate(quizzes_of_kind) if j % FOLDS == fold}
        unseen = {n for q in held for n in rows[q].names}
        positives, negatives = examples(
            [r for i, r in enumerate(rows) if i not in held], kind, leave_out=unseen
        )
        fitted = model(c).fit(
            vectors(positives + negatives), [1] * len(positives) + [0] * len(negatives)
        )
        for case in (x for x in found if x.quiz in held):
            names = names_in([case.sentence], rows[case.quiz].query.words, texts[case.quiz])
            best = max(fitted.predict_proba(vectors(names))[:, 1], default=0.0) if names else 0.0
            said = any(described(n, kind, texts[case.quiz]) for n in names)  # type: ignore[arg-type]
            scored.append((case.answers, float(best), said))
    answering = [s for s in scored if s[0]]
    other = [s for s in scored if not s[0]]

    def passed(group: list, t: float) -> float:
        return float(np.mean([b >= t or said for _, b, said in group])) if group else 0.0

    curve = {t: (passed(answering, t), passed(other, t)) for t in THRESHOLDS}
    threshold = max((t for t, (a, _) in curve.items() if a >= RECALL), default=THRESHOLDS[0])
    return {
        "threshold": threshold,
        "questions": len(quizzes_of_kind),
        "answer_sentences": len(answering),
        "other_sentences": len(other),
        "answer_sentences_passed": round(curve[threshold][0], 4),
        "other_sentences_refused": round(1 - curve[threshold][1], 4),
        "described_share_of_answer_sentences": round(
            float(np.mean([said for *_, said in answering])) if answering else 0.0, 4
        ),
        "curve": {str(t): [round(a, 4), round(o, 4)] for t, (a, o) in curve.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_dir", type=Path)
    parser.add_argument("--check", action="store_true", help="refit and compare; write nothing")
    args = parser.parse_args()
    import numpy as np

    rows = quizzes(args.train_dir)
    vectors = Vectors()
    types: dict[str, Any] = {}
    for kind in TYPES:
        positives, negatives = examples(rows, kind)
        x = vectors(positives + negatives)
        y = np.array([1] * len(positives) + [0] * len(negatives))
        c, auc, losses = choose_c(x, y)
        held_out = judged(args.train_dir, rows, kind, c, vectors)
        final = model(c).fit(x, y)
        types[kind] = {
            "C": c,
            "names": {"positives": len(positives), "negatives": len(negatives)},
            "names_auc_out_of_fold": round(auc, 4),
            "log_loss_by_C": losses,
            "threshold": held_out["threshold"],
            "out_of_fold": {k: v for k, v in held_out.items() if k != "threshold"},
            "ships": held_out["other_sentences_refused"] >= SHIP_REFUSED,
            "coef": [round(float(v), 6) for v in final.coef_[0]],
            "intercept": round(float(final.intercept_[0]), 6),
        }
        print(
            f"{kind}: {len(positives)} names of the type, {len(negatives)} others, C={c}, name "
            f"AUC {auc:.3f} out of fold; on {held_out['questions']} held-out questions' "
            f"sentences, threshold {held_out['threshold']} passes "
            f"{held_out['answer_sentences_passed']:.3f} of {held_out['answer_sentences']} "
            f"holding the answer and refuses {held_out['other_sentences_refused']:.3f} of "
            f"{held_out['other_sentences']} others"
            + ("" if types[kind]["ships"] else f" (< {SHIP_REFUSED}: not shipped)")
        )
    data = {
        "questions_sha256": sha((args.train_dir / "qa.jsonl").read_bytes()),
        "extra_sha256": sha((args.train_dir / "extra.jsonl").read_bytes()),
    }
    code = {path: sha((ROOT / path).read_bytes()) for path in CODE}
    params = {
        "fitted": date.today().isoformat(),
        "embedding_model": Settings().embedding_model,
        "dims": len(next(iter(vectors.cache.values()))),
        "threshold_rule": f"the highest passing {RECALL} of held-out answer sentences",
        "ship_rule": f"a type ships when it refuses {SHIP_REFUSED} of held-out other sentences",
        "types": {k: v for k, v in types.items() if v["ships"]},
        "not_shipped": {
            k: {key: val for key, val in v.items() if key not in ("coef", "intercept")}
            for k, v in types.items()
            if not v["ships"]
        },
        "fingerprint": {
            "data": data,
            "code": code,
            "digest": sha(json.dumps({"data": data, "code": code}, sort_keys=True).encode()),
        },
    }
    if args.check:
        current = json.loads(PARAMS.read_text(encoding="utf-8"))
        for kind, fitted in current["types"].items():
            print(
                f"{kind}: threshold shipped {fitted['threshold']} refit {types[kind]['threshold']}"
            )
        return 0
    PARAMS.write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {PARAMS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
