"""Fit the answer-type check (rag/answering/types.py) on rtqa-2024-train's quiz choices.

    python eval/fit_types.py ../shared/bench/rtqa-2024-train     # writes the shipped file
    python eval/fit_types.py DIR --check    # refit, compare with the shipped file, write nothing

1. **Examples.** Each question's type is what `rag.question.answer_type` reads in it (the same
   function `rag ask` uses). Its four choices are names of that type ("Boeing", "SpaceX", "Blue
   Origin", "Virgin Galactic" for "which company"), so every capitalised choice of a "which
   company" question is a positive for "company", and every capitalised choice of any other
   question a negative (countries, states, people, teams, films), except names that are also
   positives and the choices of a question where two or more are (a "which streaming service"
   question lists companies without asking for one by that word).
2. **Features.** The name's embedding by the query model (`rag.embedding.query_embedder`), the
   vector `rag ask` computes for it.
3. **Fit.** A logistic regression per type (balanced classes; C chosen from a grid by
   out-of-fold log loss). 5-fold cross-validation over distinct names: a name is never in
   training and scoring at once, so the figures say how names never seen are judged.
4. **Threshold.** The highest that keeps RECALL of the positive names out of fold: an answer is
   refused only when none of its names reaches it, so it is set for few false refusals.
5. **Output.** rag/answering/types.json: coefficients, threshold, the out-of-fold figures and the
   fingerprint of the data and code, for each type whose threshold puts SHIP_BELOW of the other
   names below it out of fold. "company" does not (2026-12-03: AUC 0.91, and keeping 0.957 of
   company names passes half of all others, "U.S." among them, while "Iran Air" scores 0.006),
   so only "country" ships; its figures stay in the file under "not_shipped".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answering.types import PARAMS, as_name  # noqa: E402
from rag.question import answer_type, asking_part  # noqa: E402
from rag.settings import Settings  # noqa: E402

TYPES = ("country", "company")
RECALL = 0.95
# A type ships only when, out of fold, its threshold puts this share of other names below it:
# a weaker check lets most wrong answers through while still refusing some right ones.
SHIP_BELOW = 0.95
FOLDS = 5
GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
SEED = 0
CODE = ("eval/fit_types.py", "rag/answering/types.py", "rag/question.py")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def examples(train_dir: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Per type, its positive names and its negative names (distinct, in first-seen order)."""
    questions = {}
    for line in (train_dir / "qa.jsonl").open(encoding="utf-8"):
        if line.strip():
            q = json.loads(line)
            questions[q["id"]] = q["question"]
    rows = []
    for line in (train_dir / "extra.jsonl").open(encoding="utf-8"):
        if line.strip():
            e = json.loads(line)
            kind = answer_type(asking_part(questions[e["id"]]))
            # Choices that are names as rag reads them in a sentence ("Shein and Temu" is two);
            # not "Grocery stores" or "Minimum wage", which no sentence writes capitalised.
            parts = [p.strip() for c in e["choices"] for p in re.split(r"\s+and\s+", c)]
            names = [n for n in map(as_name, parts) if n]
            rows.append((kind, names))
    out = {}
    for kind in TYPES:
        positives = list(dict.fromkeys(n for k, names in rows if k == kind for n in names))
        seen = set(positives)
        negatives = list(
            dict.fromkeys(
                n
                for k, names in rows
                if k != kind and sum(n in seen for n in names) < 2
                for n in names
                if n not in seen
            )
        )
        out[kind] = (positives, negatives)
    return out


def fit(vectors: Any, labels: Any) -> dict[str, Any]:
    """The cross-validated choice of C, the out-of-fold probabilities, the threshold, the
    model refitted on everything."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(vectors, labels))

    def out_of_fold(c: float) -> Any:
        p = np.zeros(len(labels))
        for train, test in folds:
            m = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
            m.fit(vectors[train], labels[train])
            p[test] = m.predict_proba(vectors[test])[:, 1]
        return p

    losses = {c: log_loss(labels, out_of_fold(c)) for c in GRID}
    best_c = min(losses, key=losses.__getitem__)
    p = out_of_fold(best_c)
    positives = np.sort(p[labels == 1])
    # The highest threshold with at least RECALL of the positives at or above it.
    threshold = float(positives[int(np.floor((1 - RECALL) * len(positives)))])
    model = LogisticRegression(C=best_c, class_weight="balanced", max_iter=2000)
    model.fit(vectors, labels)
    return {
        "C": best_c,
        "log_loss_by_C": {str(c): round(v, 4) for c, v in losses.items()},
        "threshold": round(threshold, 4),
        "out_of_fold": {
            "positives": int(labels.sum()),
            "negatives": int(len(labels) - labels.sum()),
            "auc": round(float(roc_auc_score(labels, p)), 4),
            "recall": round(float((p[labels == 1] >= threshold).mean()), 4),
            "negatives_below": round(float((p[labels == 0] < threshold).mean()), 4),
        },
        "coef": [round(float(v), 6) for v in model.coef_[0]],
        "intercept": round(float(model.intercept_[0]), 6),
    }


def shipped(fitted: dict[str, Any]) -> bool:
    return fitted["out_of_fold"]["negatives_below"] >= SHIP_BELOW


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_dir", type=Path)
    parser.add_argument("--check", action="store_true", help="refit and compare; write nothing")
    args = parser.parse_args()
    import numpy as np

    from rag.embedding import query_embedder

    settings = Settings()
    embedder = query_embedder(settings)
    found = examples(args.train_dir)
    types: dict[str, Any] = {}
    dims = 0
    for kind, (positives, negatives) in found.items():
        names = positives + negatives
        vectors = np.array(embedder.embed_documents(names), dtype=np.float64)
        dims = vectors.shape[1]
        labels = np.array([1] * len(positives) + [0] * len(negatives))
        types[kind] = fit(vectors, labels)
        oof = types[kind]["out_of_fold"]
        print(
            f"{kind}: {oof['positives']} names of the type, {oof['negatives']} others; "
            f"C={types[kind]['C']}, out of fold AUC {oof['auc']}, threshold "
            f"{types[kind]['threshold']} keeps {oof['recall']:.3f} of the type's names and "
            f"puts {oof['negatives_below']:.3f} of the others below it"
            + ("" if shipped(types[kind]) else f" (< {SHIP_BELOW}: not shipped)")
        )
    data = {
        "questions_sha256": sha((args.train_dir / "qa.jsonl").read_bytes()),
        "extra_sha256": sha((args.train_dir / "extra.jsonl").read_bytes()),
    }
    code = {path: sha((ROOT / path).read_bytes()) for path in CODE}
    params = {
        "fitted": date.today().isoformat(),
        "embedding_model": settings.embedding_model,
        "dims": dims,
        "recall_rule": f"the highest threshold keeping {RECALL} of the type's names, out of fold",
        "ship_rule": f"a type ships when {SHIP_BELOW} of other names fall below it, out of fold",
        "types": {k: v for k, v in types.items() if shipped(v)},
        "not_shipped": {
            k: {key: v[key] for key in ("C", "threshold", "out_of_fold")}
            for k, v in types.items()
            if not shipped(v)
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
