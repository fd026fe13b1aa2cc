"""Fit the extractive answerer's sentence selector and refusal threshold on rtqa-2024-train.

    python fitting/train_selector.py ../shared/bench/rtqa-2024-train     # writes the shipped file
    python fitting/train_selector.py DIR --check    # refit, compare with the shipped file, write nothing

What it does, from a fresh clone:
1. **Articles.** The training corpus is every article a question names as a source, plus a
   seeded third of the others as distractors (1,979 of 3,345 articles, ~25 MB, indexed in 21
   minutes on two cores; all 40 MB would take roughly 35, by extrapolation). They are copied to
   eval/out/train-articles and indexed there like any eval folder (`.rag-eval/`, incremental).
2. **Candidates.** Each question is analysed, retrieved (k=5, as the rtqa eval runs) and passed
   through the pipeline's refusal gate exactly as `rag ask` does; every sentence of the
   retrieved passages that the answerer would consider becomes a row of FEATURES
   (rag/answering/selector.py), measured by the answerer's own `rank`.
3. **Labels, weak.** A sentence is positive when it contains an acceptable answer string
   (rag.scoring.contains_answer, as the eval scores answers). That over-counts (a sentence
   can name "United Airlines" about something else) and under-counts (a paraphrased answer);
   the model is a ranker over many sentences per question, and is judged not on sentence
   labels but on what the eval judges, the answer chosen per question. Questions with no
   positive sentence stay in: for them every sentence is a negative, which is what refusal
   must learn.
4. **Fit.** A linear ranker over standardized features, fitted listwise (a softmax over each
   question's candidates, its mass pushed onto the sentences holding an answer; L2 penalty
   chosen from a grid), then calibrated into a probability by logistic regression on its
   out-of-fold scores. 5-fold cross-validation grouped by question, so a question's sentences
   are never split across training and scoring; every figure printed is out-of-fold.
   (Pointwise logistic regression and gradient-boosted trees on the same features were
   measured first and picked the right sentence less often than the hand-set weights.)
5. **Refusal.** The threshold on the best sentence's probability is the highest one that
   refuses at most FALSE_REFUSAL (5%) of the questions whose out-of-fold pick is correct.
6. **Output.** rag/answering/selector.json: coefficients, standardization, threshold, the
   cross-validated figures, and the fingerprint of the data (questions, indexed articles) and
   code (this script and the modules that measure features) that produced them.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import random
import shutil
import statistics
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.embeddings import Embeddings

    from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ROOT / "eval" / "out" / "train-articles"
ROWS = ROOT / "eval" / "out" / "train-rows.json"
SEED = 2024
DISTRACTOR_SHARE = 3  # one in this many non-source articles joins the corpus
FOLDS = 5
LAMBDAS = (0.001, 0.01, 0.1)  # the ranker's L2 penalty, chosen by cross-validation
FALSE_REFUSAL = 0.05
# A second sentence is added when it scores this share of the best: chosen by cross-validation.
SECOND_RATIOS = (0.8, 0.6, 0.4)
# The code whose output the parameters depend on (the fingerprint's "code" part).
CODE = (
    "fitting/train_selector.py",
    "rag/answering/selector.py",
    "rag/answering/extractive.py",
    "rag/question.py",
    "rag/retrieval.py",
    "rag/lexical.py",
    "rag/chunking.py",
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def training_articles(train_dir: Path, dest: Path = ARTICLES) -> Path:
    """Copy the sources of every question plus a seeded share of the other articles to dest."""
    questions = [json.loads(line) for line in (train_dir / "qa.jsonl").open() if line.strip()]
    names = sorted(p.name for p in (train_dir / "articles").iterdir() if p.is_file())
    sources = {s for q in questions for s in q.get("sources") or ()}
    others = [n for n in names if n not in sources]
    rng = random.Random(SEED)
    picked = sources & set(names) | set(rng.sample(others, len(others) // DISTRACTOR_SHARE))
    dest.mkdir(parents=True, exist_ok=True)
    for stale in {p.name for p in dest.iterdir()} - picked:
        (dest / stale).unlink()
    for name in sorted(picked):
        src, dst = train_dir / "articles" / name, dest / name
        if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dst)
    return dest


@dataclass
class QuestionRows:
    """One training question: its candidate sentences' features and labels."""

    id: str
    gated: bool  # the pipeline's refusal gate refused before any answerer saw passages
    in_context: bool  # an acceptable answer is in the retrieved passages
    features: list[list[float]]
    labels: list[int]
    kind_ok: list[bool]  # the sentence survives Tuning.kind_filters
    weights_score: list[float]  # the hand-set "weights" score, the baseline


def build_rows(
    train_dir: Path, settings: Settings, embedder: Embeddings, progress: bool = True
) -> list[QuestionRows]:
    """Every training question's candidates, measured by the answerer's own rank()."""
    from rag.answering import selector
    from rag.answering.extractive import ExtractiveAnswerer
    from rag.evaluation import load_questions
    from rag.pipeline import refusal_gate
    from rag.question import analyse
    from rag.retrieval import Retriever
    from rag.scoring import contains_answer

    weights = settings.tuning.model_copy(update={"selector": "weights"})
    ranker = ExtractiveAnswerer(embedder, weights.model_copy(update={"kind_filters": False}))
    filtering = ExtractiveAnswerer(embedder, weights)
    retriever = Retriever(settings, embedder)
    questions = load_questions(train_dir / "qa.jsonl")
    out = []
    for i, q in enumerate(questions, 1):
        query = analyse(q.question, settings.as_of or date.today(), settings.tuning)
        r = retriever.search(query, settings)
        in_context = any(contains_answer(p.text, q.answers) for p in r.passages)
        if refusal_gate(query, r, settings) is not None:
            out.append(QuestionRows(q.id, True, in_context, [], [], [], []))
            continue
        ranked = ranker._grounded(query, ranker.rank(query, r.passages))
        survivors = {id(s) for s in filtering._grounded(query, ranked)}
        out.append(
            QuestionRows(
                q.id,
                False,
                in_context,
                [[dict(s.features)[f] for f in selector.FEATURES] for s in ranked],
                [int(contains_answer(s.text, q.answers)) for s in ranked],
                [id(s) in survivors for s in ranked],
                [s.score for s in ranked],
            )
        )
        if progress and i % 25 == 0:
            print(f"  {i}/{len(questions)} questions measured", file=sys.stderr, flush=True)
    return out


def cached_rows(
    train_dir: Path, settings: Settings, embedder: Embeddings, progress: bool = True
) -> list[QuestionRows]:
    """build_rows, kept in eval/out/train-rows.json for as long as data and code are the same."""
    from dataclasses import asdict

    key = fingerprint(train_dir, settings)["digest"]
    if ROWS.is_file():
        saved = json.loads(ROWS.read_text(encoding="utf-8"))
        if saved.get("fingerprint") == key:
            return [QuestionRows(**r) for r in saved["rows"]]
    rows = build_rows(train_dir, settings, embedder, progress)
    ROWS.parent.mkdir(parents=True, exist_ok=True)
    ROWS.write_text(json.dumps({"fingerprint": key, "rows": [asdict(r) for r in rows]}))
    return rows


def choose(
    scores: Sequence[float],
    labels: Sequence[int],
    allowed: Sequence[bool],
    floor: float,
    ratio: float = 0.8,
) -> tuple[bool, bool, float]:
    """(answered, correct, best score) for one question, as ExtractiveAnswerer.answer picks:
    the best allowed sentence, plus a second scoring ratio of it, refused under floor."""
    order = sorted((i for i in range(len(scores)) if allowed[i]), key=lambda i: -scores[i])
    if not order or scores[order[0]] < floor:
        return False, False, scores[order[0]] if order else 0.0
    best = scores[order[0]]
    chosen = [order[0]] + [i for i in order[1:2] if scores[i] >= max(floor, best * ratio)]
    return True, any(labels[i] for i in chosen), best


def evaluate(
    rows: list[QuestionRows],
    scores: list[list[float]],
    floor: float,
    filters: bool,
    ratio: float = 0.8,
) -> dict[str, float]:
    """Per-question figures over all training questions (a gated question is a refusal)."""
    answered = correct = 0
    for qr, s in zip(rows, scores, strict=True):
        if qr.gated:
            continue
        allowed = qr.kind_ok if filters else [True] * len(s)
        a, c, _ = choose(s, qr.labels, allowed, floor, ratio)
        answered += a
        correct += c
    n = len(rows)
    return {
        "answer_accuracy": round(correct / n, 3),
        "answered": round(answered / n, 3),
        "precision": round(correct / answered, 3) if answered else 0.0,
    }


def fit_ranker(rows: Sequence[QuestionRows], lam: float) -> tuple[Any, Any, Any]:
    """(mean, scale, weights) of a linear ranker fitted listwise with L2 penalty lam.

    For each question with a positive sentence, a softmax over its candidates; the loss is
    -log of the probability mass on its positive sentences. Weak labels suit this: it asks
    that some sentence holding the answer string rank high, not that every one does.
    """
    import numpy as np
    from scipy.optimize import minimize

    used = [r for r in rows if any(r.labels)]
    stacked = np.vstack([np.array(r.features) for r in used])
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    xs = [(np.array(r.features) - mean) / scale for r in used]
    ys = [np.array(r.labels) > 0 for r in used]

    def loss(w: Any) -> tuple[float, Any]:
        total, grad = lam * float(w @ w), 2 * lam * w
        for x, pos in zip(xs, ys, strict=True):
            z = x @ w
            e = np.exp(z - z.max())
            mass, norm = e[pos].sum(), e.sum()
            total -= float(np.log(mass) - np.log(norm))
            grad = grad - (x[pos].T @ e[pos]) / mass + x.T @ (e / norm)
        return total / len(xs), grad / len(xs)

    w = minimize(loss, np.zeros(stacked.shape[1]), jac=True, method="L-BFGS-B").x
    return mean, scale, w


def folds(rows: Sequence[QuestionRows]) -> dict[int, int]:
    """Question index -> fold, seeded, over the questions that have candidates."""
    live = [i for i, r in enumerate(rows) if not r.gated and r.features]
    random.Random(SEED).shuffle(live)
    return {q: k % FOLDS for k, q in enumerate(live)}


def out_of_fold(rows: list[QuestionRows], lam: float) -> list[list[float]]:
    """Each sentence's ranker score from a ranker fitted without its question's fold."""
    import numpy as np

    fold = folds(rows)
    scores: list[list[float]] = [[] for _ in rows]
    for k in range(FOLDS):
        mean, scale, w = fit_ranker([rows[i] for i, f in fold.items() if f != k], lam)
        for i, f in fold.items():
            if f == k:
                scores[i] = (((np.array(rows[i].features) - mean) / scale) @ w).tolist()
    return scores


def calibrate(rows: list[QuestionRows], scores: list[list[float]]) -> tuple[float, float, float]:
    """(a, b, c): P(answers) = logistic(a * score + b * (score - best) + c), fitted by logistic
    regression on out-of-fold scores against the sentence labels."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x, y = [], []
    for r, s in zip(rows, scores, strict=True):
        if s:
            best = max(s)
            x += [[z, z - best] for z in s]
            y += r.labels
    model = LogisticRegression(C=1e4, max_iter=2000).fit(np.array(x), np.array(y))
    a, b = model.coef_[0]
    return float(a), float(b), float(model.intercept_[0])


def probabilities(
    scores: list[list[float]], calibration: tuple[float, float, float]
) -> list[list[float]]:
    a, b, c = calibration
    out = []
    for s in scores:
        best = max(s, default=0.0)
        out.append([1 / (1 + math.exp(-(a * z + b * (z - best) + c))) for z in s])
    return out


def threshold_for(
    rows: list[QuestionRows], scores: list[list[float]], filters: bool, ratio: float = 0.8
) -> float:
    """The highest threshold refusing at most FALSE_REFUSAL of correctly picked questions."""
    best = []
    for qr, s in zip(rows, scores, strict=True):
        if qr.gated or not s:
            continue
        allowed = qr.kind_ok if filters else [True] * len(s)
        answered, correct, top = choose(s, qr.labels, allowed, 0.0, ratio)
        if answered and correct:
            best.append(top)
    best.sort()
    return best[int(FALSE_REFUSAL * len(best))] if best else 0.0


def brier(rows: list[QuestionRows], scores: list[list[float]]) -> float:
    """Mean squared error of the best sentence's probability against its label."""
    errors = []
    for qr, s in zip(rows, scores, strict=True):
        if s:
            i = max(range(len(s)), key=s.__getitem__)
            errors.append((s[i] - qr.labels[i]) ** 2)
    return round(statistics.fmean(errors), 4) if errors else 0.0


def fingerprint(train_dir: Path, settings: Settings) -> dict[str, Any]:
    from rag.evaluation import index_fingerprint

    index = index_fingerprint(settings)
    data = {
        "questions_sha256": sha((train_dir / "qa.jsonl").read_bytes()),
        "articles_digest": index["articles_digest"],
        "n_articles": index["n_articles"],
        "n_chunks": index["n_chunks"],
        **{
            key: index[key]
            for key in ("embedding_model", "model_hash", "chunker_version", "tokenizer_version")
        },
    }
    code = {path: sha((ROOT / path).read_bytes()) for path in CODE}
    return {
        "data": data,
        "code": code,
        "digest": sha(json.dumps({"data": data, "code": code}, sort_keys=True).encode()),
    }


def train(
    train_dir: Path, settings: Settings, embedder: Embeddings, progress: bool = True
) -> dict[str, Any]:
    """Measure, cross-validate, fit: the selector parameters as selector.json holds them."""

    from rag.answering import selector

    rows = cached_rows(train_dir, settings, embedder, progress)
    n = len(rows)
    in_context = sum(r.in_context for r in rows)
    cv: dict[str, Any] = {}
    for lam in LAMBDAS:
        scores = out_of_fold(rows, lam)
        calibration = calibrate(rows, scores)
        chances = probabilities(scores, calibration)
        for filters, ratio in itertools.product((True, False), SECOND_RATIOS):
            floor = threshold_for(rows, chances, filters, ratio)
            cv[f"lambda={lam} kind_filters={filters} second_ratio={ratio}"] = {
                "lambda": lam,
                "kind_filters": filters,
                "second_ratio": ratio,
                "threshold": round(floor, 4),
                **evaluate(rows, chances, floor, filters, ratio),
                "unrefused_accuracy": evaluate(rows, chances, 0.0, filters, ratio)[
                    "answer_accuracy"
                ],
                "brier": brier(rows, chances),
            }
    baseline = [r.weights_score for r in rows]
    # Ties go to the stronger penalty and the fewer second sentences.
    chosen = max(cv.values(), key=lambda v: (v["answer_accuracy"], v["lambda"], v["second_ratio"]))
    calibration = calibrate(rows, out_of_fold(rows, chosen["lambda"]))
    mean, scale, w = fit_ranker(rows, chosen["lambda"])
    live = [r for r in rows if not r.gated and r.features]
    y = [label for r in live for label in r.labels]
    return {
        "about": "Learned sentence selector of rag's extractive answerer: a listwise linear "
        "ranker over standardized FEATURES and its calibration into P(answers) (see "
        "rag/answering/selector.py); refit with "
        "python fitting/train_selector.py ../shared/bench/rtqa-2024-train",
        "features": list(selector.FEATURES),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "coef": [round(float(v), 6) for v in w],
        "calibration": [round(v, 6) for v in calibration],
        "threshold": chosen["threshold"],
        "second_ratio": chosen["second_ratio"],
        "kind_filters": chosen["kind_filters"],
        "lambda": chosen["lambda"],
        "threshold_rule": f"highest threshold refusing at most {FALSE_REFUSAL:.0%} of the "
        "training questions whose out-of-fold pick is correct",
        "training": {
            "questions": n,
            "gated": sum(r.gated for r in rows),
            "answer_in_context": round(in_context / n, 3),
            "sentences": len(y),
            "positive_sentences": sum(y),
            "questions_with_a_positive": sum(1 for r in live if any(r.labels)),
            "folds": FOLDS,
        },
        "cross_validated": list(cv.values()),
        "baseline_weights": {
            "kind_filters=True, min_score": settings.tuning.min_score,
            "second_ratio": settings.tuning.second_ratio,
            **evaluate(
                rows, baseline, settings.tuning.min_score, True, settings.tuning.second_ratio
            ),
        },
        "fingerprint": fingerprint(train_dir, settings),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("train_dir", type=Path, help="e.g. ../shared/bench/rtqa-2024-train")
    parser.add_argument("--out", type=Path, default=None, help="default: the shipped file")
    parser.add_argument(
        "--check", action="store_true", help="compare with the shipped file; write nothing"
    )
    args = parser.parse_args(argv)

    from rag.answering import selector
    from rag.embedding import query_embedder
    from rag.evaluation import default_index_dir, prepare_index
    from rag.settings import Settings

    train_dir = args.train_dir.resolve()
    if not (train_dir / "qa.jsonl").is_file():
        print(f"error: no qa.jsonl in {train_dir}", file=sys.stderr)
        return 2
    articles = training_articles(train_dir)
    base = Settings(articles_dir=articles)
    settings = base.with_overrides(index_dir=default_index_dir(base, articles), k=5)
    embedder = query_embedder(settings)
    print(f"indexing {articles} (incremental) ...", file=sys.stderr, flush=True)
    prepare_index(settings, embedder)
    params = train(train_dir, settings, embedder)
    text = json.dumps(params, indent=1) + "\n"
    if args.check:
        shipped = json.loads(selector.PARAMS.read_text(encoding="utf-8"))
        keys = ("coef", "calibration", "threshold", "mean", "scale")
        same = all(
            max(abs(a - b) for a, b in zip(_flat(shipped[k]), _flat(params[k]), strict=True)) < 1e-4
            for k in keys
        )
        print("reproduces the shipped parameters" if same else "differs from the shipped file")
        return 0 if same else 1
    out = args.out or selector.PARAMS
    out.write_text(text, encoding="utf-8")
    for row in params["cross_validated"]:
        print(json.dumps(row))
    print("baseline (hand-set weights):", json.dumps(params["baseline_weights"]))
    print(f"wrote {out} ({len(text)} bytes)")
    return 0


def _flat(v: Any) -> list[float]:
    return [float(x) for x in v] if isinstance(v, list) else [float(v)]


if __name__ == "__main__":
    sys.exit(main())
