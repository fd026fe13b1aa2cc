"""Fit the grounding guard's wording thresholds on rtqa-2024-train, cross-validated.

    python fitting/fit_guard.py ../shared/bench/rtqa-2024-train            # prints the fit
    python fitting/fit_guard.py ../shared/bench/rtqa-2024-train --json OUT # and saves it

The guard (rag/answering/grounding.py) refuses a generated sentence whose names, numbers,
dates, negations or quoted terms its cited passage lacks near the quoted sentence: no threshold
there. What is fitted is how much of the remaining wording must match (Tuning.guard_min_overlap,
or a close paraphrase: guard_min_cosine with guard_min_cosine_overlap) and whether a sentence
repeating a word of the question that its passage lacks is refused (guard_question_words);
guard_negation stays on (see GRID). For comparison it also scores, on the same cases, the
word-overlap check generated answers had before (what `rag` still uses for verbatim extracts).

Cases, from each training question whose quiz evidence (a human paraphrase) holds the answer
and one of whose own candidate articles holds it too (the passage: the answer's sentence with
six sentences either side, about a retrieved passage with its neighbouring chunks):
- kept ought to be: the article's own answer sentence (verbatim), and each evidence sentence
  holding the answer (a paraphrase), against that passage;
- refused ought to be: each paraphrase with the answer swapped for one of the quiz's three wrong
  choices (answers of the right type), against the same passage; and each paraphrase against a
  passage of another of its candidate articles that lacks the answer (the closest one by words:
  a model citing the wrong passage).
Labels are weak: an evidence sentence can carry detail its article does not (the quiz writer
knew more), so a paraphrase's "kept" rate has a ceiling below 1.

The thresholds maximise Youden's J (kept rate of what ought to be kept less the kept rate of
what ought to be refused; the strictest of those within TOLERANCE of the best), with 5 folds
grouped by question: each fold's thresholds are chosen
on the other four and scored on it, so every figure printed is out of fold. The final values,
chosen on all questions, are what `Tuning` ships.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import random
import re
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fitting.guard_cases import contains, quizzes, swap  # noqa: E402
from rag.answering.citations import clauses  # noqa: E402
from rag.answering.grounding import Judgement, judge, windows  # noqa: E402
from rag.lexical import tokenize  # noqa: E402
from rag.question import analyse  # noqa: E402
from rag.settings import Settings, Tuning  # noqa: E402

SPAN = 6  # passage sentences either side of the answer's
FOLDS = 5
OVERLAPS = [round(0.30 + 0.05 * i, 2) for i in range(13)]  # 0.30 .. 0.90
COSINES = [round(0.50 + 0.05 * i, 2) for i in range(10)]  # 0.50 .. 0.95
COSINE_OVERLAPS = [0.0, 0.1, 0.2, 0.3, 0.4]
NOVELS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


@dataclass(frozen=True)
class Case:
    """One sentence against one passage, and whether the guard ought to keep it."""

    qid: str
    kind: str  # verbatim, paraphrase, swapped, other-passage
    sentence: str
    passage: tuple[str, ...]
    asked: frozenset[str]
    keep: bool
    says: str  # the answer it gives: the right one, or the wrong choice swapped in


def build_cases(set_dir: Path, limit: int | None = None) -> list[Case]:
    """Every case above from the set's extra.jsonl, questions in file order."""
    cases: list[Case] = []
    for quiz in itertools.islice(quizzes(set_dir), limit):
        ss = quiz.articles[quiz.holding]
        at = next(i for i, s in enumerate(ss) if contains(s, quiz.answer))
        passage = tuple(ss[max(0, at - SPAN) : at + SPAN + 1])
        asked = frozenset(analyse(quiz.question, date.fromisoformat(quiz.asked)).focus)
        qid = quiz.id
        right = quiz.answer
        cases.append(Case(qid, "verbatim", ss[at], passage, asked, True, right))
        for s in quiz.said:
            cases.append(Case(qid, "paraphrase", s, passage, asked, True, right))
            cases += [
                Case(qid, "swapped", swap(s, right, w), passage, asked, False, w)
                for w in quiz.wrong
            ]
        other = _closest_other(quiz.said[0], quiz.articles, quiz.holding, quiz.answer)
        if other:
            cases += [Case(qid, "other-passage", s, other, asked, False, right) for s in quiz.said]
    return cases


def _closest_other(
    sentence: str, texts: dict[str, list[str]], holding: str, answer: str
) -> tuple[str, ...] | None:
    """The passage of another candidate article lacking the answer that shares most words."""
    words = set(tokenize([sentence])[0])
    best, best_overlap = None, -1
    for name, ss in texts.items():
        if name == holding or any(contains(s, answer) for s in ss) or not ss:
            continue
        tokens = tokenize(ss)
        i = max(range(len(ss)), key=lambda k: len(words & set(tokens[k])))
        if len(words & set(tokens[i])) > best_overlap:
            best_overlap = len(words & set(tokens[i]))
            best = tuple(ss[max(0, i - SPAN) : i + SPAN + 1])
    return best


# Sentence vectors of earlier runs (the model is fixed: embedding ~8,000 sentences takes minutes).
CACHE = Path("eval/out/guard-fit/vectors.json")


def _cached(path: Path) -> dict[str, list[float]]:
    return json.loads(path.read_text()) if path.is_file() else {}


@dataclass(frozen=True)
class Judged:
    """Each case's judgement, and its opening clauses' (for Tuning.guard_cut): which case each
    clause is of, and whether it still gives the case's answer."""

    whole: list[Judgement]
    clauses: list[tuple[int, Judgement, bool]]

    @functools.cached_property
    def parts(self) -> tuple[list[Judgement], Any, Any]:
        """The clauses' judgements, whether each gives its case's answer, and its case."""
        import numpy as np

        says = np.array([s for _, _, s in self.clauses], dtype=bool)
        of = np.array([i for i, _, _ in self.clauses], dtype=int)
        return [j for _, j, _ in self.clauses], says, of

    def subset(self, keep: list[int]) -> Judged:
        new = {old: i for i, old in enumerate(keep)}
        return Judged(
            [self.whole[i] for i in keep],
            [(new[i], j, says) for i, j, says in self.clauses if i in new],
        )


def measure(cases: list[Case]) -> Judged:
    """Each case judged once, and each of its opening clauses (thresholds are applied
    afterwards, in `kept_all`)."""
    from rag.embedding import index_embedder

    heads = [clauses(c.sentence, Tuning().min_recite_words) for c in cases]
    texts = list(dict.fromkeys(t for c in cases for t in (c.sentence, *c.passage)))
    texts += [h for hs in heads for h in hs]
    vectors = _cached(CACHE)
    new = list(dict.fromkeys(t for t in texts if t not in vectors))
    if new:
        print(f"embedding {len(new)} sentences ...", file=sys.stderr)
        vectors |= dict(zip(new, index_embedder(Settings()).embed_documents(new), strict=True))
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(vectors))
    cache: dict[tuple[str, ...], list] = {}
    whole, parts = [], []
    for i, c in enumerate(cases):
        if c.passage not in cache:
            cache[c.passage] = windows(c.passage)
        spans = cache[c.passage]
        whole.append(judge(c.sentence, 1, spans, vectors, Tuning(), c.asked))
        for h in heads[i]:
            parts.append((i, judge(h, 1, spans, vectors, Tuning(), c.asked), contains(h, c.says)))
    return Judged(whole, parts)


# guard_negation is not fitted: no case here flips a negation (a swapped answer keeps the
# evidence's wording), so these cases can only show its cost, never its use; it stays on.
GRID = list(
    itertools.product(
        OVERLAPS, COSINES, COSINE_OVERLAPS, (True,), (True, False), NOVELS, (True, False)
    )
)
NAMES = (
    "guard_min_overlap",
    "guard_min_cosine",
    "guard_min_cosine_overlap",
    "guard_negation",
    "guard_question_words",
    "guard_min_novel",
    "guard_cut",
)


def word_overlap(cases: list[Case]) -> dict[str, float]:
    """The kept rate of each kind under the word-overlap check generated sentences had before
    the guard (rag 67e6152's citations._check, with its thresholds): no word of the question and
    no figure the passage lacks, then 0.6 of the content words, or a paraphrase of a passage
    sentence (cosine 0.75) sharing 0.3 of them."""
    from rag.answering.citations import _content_words
    from rag.answering.grounding import cosine

    vectors = _cached(CACHE)
    by: dict[str, list[bool]] = {}
    for c in cases:
        words, held = _content_words([c.sentence, " ".join(c.passage)])
        overlap = len(words & held) / len(words) if words else 0.0
        figures = {n.rstrip(".,").replace(",", "") for n in _NUMBER.findall(c.sentence)}
        passage = {n.rstrip(".,").replace(",", "") for n in _NUMBER.findall(" ".join(c.passage))}
        similar = max(cosine(vectors[c.sentence], vectors[s]) for s in c.passage)
        ok = not (words & c.asked) - held and not figures - passage
        ok = ok and (overlap >= 0.6 or (similar >= 0.75 and overlap >= 0.3))
        by.setdefault(c.kind, []).append(ok)
    return {k: round(sum(v) / len(v), 3) for k, v in by.items()}


_NUMBER = re.compile(r"\d[\d,.]*")


def kept_all(judged: Judged, params: tuple):  # noqa: ANN201 - a numpy bool array
    """Whether the guard keeps each case's answer under these thresholds (`verdict`'s keep,
    for all cases at once: the grid has thousands of points): the whole sentence, or with
    guard_cut an opening clause that still gives the case's answer."""
    import numpy as np

    *thresholds, cut = params
    kept = _keeps(_arrays(judged.whole), thresholds)
    if cut and judged.clauses:
        parts, says, of = judged.parts
        np.logical_or.at(kept, of, _keeps(_arrays(parts), thresholds) & says)
    return kept


def _keeps(a: dict, thresholds: list) -> Any:  # noqa: ANN401 - a numpy bool array
    overlap, cosine, cosine_overlap, neg, question, novel = thresholds
    wording = (a["o"] >= overlap) | ((a["c"] >= cosine) & (a["o"] >= cosine_overlap))
    wording &= a["n"] >= novel
    return ~a["fact"] & ~(a["premise"] & question) & ~(a["negation"] & neg) & wording


_ARRAYS: dict[int, tuple[list, dict]] = {}


def _arrays(judged: list[Judgement]) -> dict:
    """The judgements' measures as numpy arrays, made once per list."""
    import numpy as np

    kept = _ARRAYS.get(id(judged))
    if kept is not None and kept[0] is judged:
        return kept[1]
    arrays = {
        "fact": np.array([bool(j.missing) for j in judged]),
        "premise": np.array([bool(j.premise) for j in judged]),
        "negation": np.array([j.negates for j in judged]),
        "o": np.array([j.overlap for j in judged]),
        "c": np.array([j.cosine for j in judged]),
        "n": np.array([j.novel for j in judged]),
    }
    _ARRAYS[id(judged)] = (judged, arrays)
    return arrays


def youden(keep, ok) -> float:  # noqa: ANN001 - numpy bool arrays
    """Kept rate of what ought to be kept less kept rate of what ought to be refused."""
    return float(ok[keep].mean() - ok[~keep].mean())


# Points within this much of the best J count as equally good; among them the strictest is
# chosen (the guard's two errors are not equal: a wrong answer accepted costs more than a
# right one refused): strictest first on what the question's answer words must have (novel),
# then on the wording thresholds, and without cutting before with it.
TOLERANCE = 0.005


def choose(cases: list[Case], judged: Judged) -> tuple:
    """The strictest grid point within TOLERANCE of the best J."""
    import numpy as np

    keep = np.array([c.keep for c in cases])
    scores = {p: youden(keep, kept_all(judged, p)) for p in GRID}
    best = max(scores.values())
    good = [p for p, j in scores.items() if j >= best - TOLERANCE]
    return max(good, key=lambda p: (p[5], p[0], p[1], p[2], p[4], not p[6]))


def rates(cases: list[Case], judged: Judged, params: tuple) -> dict[str, float]:
    """The kept rate of each kind of case, and J."""
    import numpy as np

    ok = kept_all(judged, params)
    kinds = np.array([c.kind for c in cases])
    out = {k: round(float(ok[kinds == k].mean()), 3) for k in dict.fromkeys(kinds)}
    out["J"] = round(youden(np.array([c.keep for c in cases]), ok), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("--limit", type=int, help="only the first N usable questions")
    parser.add_argument("--json", type=Path, help="also write the fit and its figures here")
    args = parser.parse_args()

    cases = build_cases(args.set_dir, args.limit)
    judged = measure(cases)
    qids = sorted({c.qid for c in cases})
    random.Random(0).shuffle(qids)
    fold_of = {q: i % FOLDS for i, q in enumerate(qids)}
    oof_kept: list[bool] = [False] * len(cases)
    chosen = []
    for f in range(FOLDS):
        train = [i for i, c in enumerate(cases) if fold_of[c.qid] != f]
        params = choose([cases[i] for i in train], judged.subset(train))
        chosen.append(params)
        everything = kept_all(judged, params)
        for i, c in enumerate(cases):
            if fold_of[c.qid] == f:
                oof_kept[i] = bool(everything[i])
    by: dict[str, list[bool]] = {}
    for c, k in zip(cases, oof_kept, strict=True):
        by.setdefault(c.kind, []).append(k)
    final = choose(cases, judged)
    default = Tuning()
    current = tuple(getattr(default, name) for name in NAMES)
    checks: dict[str, dict[str, int]] = {}
    for c, j in zip(cases, judged.whole, strict=True):
        checks.setdefault(c.kind, {}).setdefault(j.check or "passed", 0)
        checks[c.kind][j.check or "passed"] += 1
    result = {
        "questions": len(qids),
        "cases": {k: len(v) for k, v in by.items()},
        "out_of_fold_kept": {k: round(sum(v) / len(v), 3) for k, v in by.items()},
        "fold_choices": chosen,
        "final": dict(zip(NAMES, final, strict=True)),
        "in_sample_final": {k: round(v, 3) for k, v in rates(cases, judged, final).items()},
        "in_sample_shipped": {k: round(v, 3) for k, v in rates(cases, judged, current).items()},
        "word_overlap_check": word_overlap(cases),
        "first_failed_check": checks,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
