"""How likely is it that an answer answers its question? A fitted, calibrated probability.

Citation checking says each sentence is in its passage; it cannot say the sentence answers
the question. On news rag never saw, about half the answers it presented were right, and
nothing told the right ones from the wrong. This module reads an answer, whoever wrote it,
for the signals that separate them, and turns them into P(the answer answers the question)
with a logistic regression fitted on rtqa-2024-train (`fitting/fit_judgement.py`, folds
grouped by question; `judgement.json` holds the coefficients and the out-of-fold figures):

- how close the answer is to the question (embedding cosine), and how close the best passage is;
- whether what the question is about is in the answer's own sentences and in its evidence,
  the passage sentence it quotes with one either side (`near_*`): the question's focus words,
  its specific names (a designation or quoted term as written, a name by its last word),
  what "what is the X of" asks about, and a year the question names (also in the passage's date);
- whether the answer holds the sort of thing asked for (a date for "when", a figure for "how
  many", a name for "who") and anything the question does not already say;
- how much older the cited article is than the newest one retrieved (news questions are about
  the latest of a story), and again for "current", "latest", "this week";
- how many of the retrieved articles name what the answer adds (its names and figures that
  the question lacks), whether the cited headline does, how many such things it names, and
  how many articles the passages come from;
- the extractive answerer's view of the same passages: its best sentence's score, the margin
  to the next candidate, and whether this answer agrees with its pick (a language model's
  answer that picks another sentence is right less often).

Evidence features read the passage sentence each answer sentence quotes, not the answer's own
words, so a generated sentence is judged by what its passage says ("Foreign Minister Hossein
Amirabdollahian" is no evidence for a question about the defence minister). Below the fitted
threshold (Settings.min_confidence) the pipeline withholds the answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

from langchain_core.embeddings import Embeddings

from rag.answering import Pick
from rag.answering.extractive import NAME, NUMBER, has_type
from rag.chunking import split_sentences
from rag.errors import RagError
from rag.lexical import tokenize
from rag.question import Query
from rag.retrieval import Passage

PARAMS = Path(__file__).with_name("judgement.json")

FEATURES: tuple[str, ...] = (
    "cosine",
    "best_similarity",
    "coverage",
    "near_coverage",
    "specific_near",
    "asked_near",
    "typed",
    "untyped",
    "new_name",
    "new_number",
    "new_words",
    "year_missing",
    "staleness",
    "age",
    "support",
    "in_title",
    "articles",
    "names",
    "top_score",
    "margin",
    "agrees",
    "inv_rank",
)

_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
# Questions about the present: an old article answers them less often.
_NOW = re.compile(r"\b(current|currently|latest|most recent|newest|now|this (week|month|year))\b",
                  re.I)  # fmt: skip


class JudgementError(RagError):
    """The shipped judgement parameters are missing or unreadable."""


@dataclass(frozen=True)
class Evidence:
    """One answer sentence and the passage it stands on: the text of the sentence, the passage
    sentence it quotes, and that sentence with one either side (its surroundings)."""

    text: str
    quote: str
    passage: Passage

    def near(self) -> str:
        spans = split_sentences(self.passage.text)
        texts = [self.passage.text[s:e] for s, e in spans]
        at = next((i for i, t in enumerate(texts) if self.quote in t or t in self.quote), None)
        if at is None:
            return self.quote
        return " ".join(texts[max(0, at - 1) : at + 2])


@dataclass(frozen=True)
class ExtractiveView:
    """What the extractive answerer makes of the same passages: its chosen sentences, their
    best score and the best score of a sentence it did not choose (0 when none)."""

    picks: tuple[str, ...]
    top_score: float
    runner_up: float

    @classmethod
    def of(cls, picks: Sequence[Pick], runners_up: Sequence[Pick]) -> ExtractiveView:
        top = max((p.score for p in picks), default=0.0)
        second = max((p.score for p in runners_up), default=0.0)
        return cls(tuple(p.text for p in picks), top, second)


@dataclass(frozen=True)
class Judgement:
    """P(the answer answers the question), the threshold it is held to, and what it read."""

    probability: float
    threshold: float
    features: dict[str, float] = field(default_factory=dict)

    @property
    def passes(self) -> bool:
        return self.probability >= self.threshold

    def words(self) -> str:
        """The probability as a reader takes it in (under the threshold: withheld)."""
        p = self.probability
        if p < self.threshold:
            return "unlikely to answer the question"
        if p < 0.35:
            return "may not answer the question"
        if p < 0.55:
            return "may answer the question"
        if p < 0.75:
            return "likely answers the question"
        return "very likely answers the question"

    def to_json(self) -> dict[str, object]:
        return {
            "probability": round(self.probability, 4),
            "threshold": self.threshold,
            "passes": self.passes,
            "words": self.words(),
            "features": {k: round(v, 4) for k, v in self.features.items()},
        }


@dataclass(frozen=True)
class JudgeModel:
    """A logistic regression over standardised FEATURES, and the threshold chosen for it."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    withheld_right: float  # the threshold withholds answers right at most this often (fitted)
    embedding_model: str  # whose similarities it was fitted on
    dims: int
    figures: dict[str, object] = field(default_factory=dict)

    def probability(self, features: dict[str, float]) -> float:
        z = self.intercept + sum(
            c * (features[f] - m) / s
            for f, c, m, s in zip(FEATURES, self.coef, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@cache
def load(path: Path = PARAMS) -> JudgeModel:
    """The shipped parameters (fitted by fitting/fit_judgement.py)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if tuple(raw["features"]) != FEATURES:
            raise JudgementError(
                f"{path} was fitted on other features; refit with fitting/fit_judgement.py"
            )
        return JudgeModel(
            tuple(raw["mean"]),
            tuple(raw["scale"]),
            tuple(raw["coef"]),
            float(raw["intercept"]),
            float(raw["threshold"]),
            float(raw["withheld_right"]),
            str(raw["embedding_model"]),
            int(raw["dims"]),
            dict(raw.get("figures") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise JudgementError(f"cannot read the answer judgement's parameters {path}: {e}") from e


def measure(
    query: Query,
    evidence: Sequence[Evidence],
    passages: Sequence[Passage],
    view: ExtractiveView,
    embedder: Embeddings,
    dims: int | None = None,
) -> dict[str, float] | None:
    """The FEATURES of an answer made of these sentences (at least one); None when the
    embedder's vectors are not dims long (not the model the judgement was fitted on)."""
    texts = [e.text for e in evidence]
    nears = [e.near() for e in evidence]
    vectors = embedder.embed_documents([query.asking, *texts])
    q_vec = vectors[0]
    if dims is not None and len(q_vec) != dims:
        return None
    cosine = max(sum(a * b for a, b in zip(q_vec, v, strict=True)) for v in vectors[1:])

    focus = query.focus
    total = sum(focus.values()) or 1.0
    answer_stems, near_stems = (
        {t for ts in tokenize(group) for t in ts} for group in (texts, nears)
    )

    def share(stems: set[str]) -> float:
        return sum(w for t, w in focus.items() if t in stems) / total

    near_text = " ".join(nears)
    near_phrase = f" {' '.join(t for ts in tokenize(nears) for t in ts)} "
    # A designation or quoted term as a phrase; a name by its last word ("Rubio").
    specific_near = (
        sum(
            f" {' '.join(s.stems)} " in near_phrase if s.exact else s.stems[-1] in near_stems
            for s in query.specific
        )
        / len(query.specific)
        if query.specific
        else 1.0
    )
    q_words = query.words
    kind = query.kind
    typed = any(has_type(t, query) for t in texts)
    years = set(_YEAR.findall(query.text))
    dates = " ".join(e.passage.date or "" for e in evidence)
    year_missing = bool(years) and not any(y in near_text or y in dates for y in years)
    # Agreeing: quoting the sentence the extractive answerer picked, or a part of it.
    agrees = any(e.quote.strip() in p or p in e.quote for e in evidence for p in view.picks)
    new = answer_stems - focus.keys()
    # What the answer adds (names and figures the question lacks), and how many of the
    # retrieved articles also name it: news that several articles repeat is the story.
    added = {n for t in texts for n in NAME.findall(t) if n.lower() not in q_words}
    added |= {n for t in texts for n in NUMBER.findall(t) if n[0].isdigit() and n not in q_words}
    articles: dict[str, str] = {}
    for p in passages:
        articles[p.source] = articles.get(p.source, "") + f" {p.title} {p.text}"
    support = max((sum(a in text for text in articles.values()) for a in added), default=0)
    titles = " ".join(e.passage.title for e in evidence)
    return {
        "cosine": cosine,
        "best_similarity": max((p.similarity or 0.0 for p in passages), default=0.0),
        "coverage": share(answer_stems),
        "near_coverage": share(near_stems),
        "specific_near": specific_near,
        "asked_near": float(query.asked_about <= near_stems),
        "typed": float(bool(kind) and typed),
        "untyped": float(bool(kind) and not typed),
        "new_name": float(any(n.lower() not in q_words for t in texts for n in NAME.findall(t))),
        "new_number": float(
            any(n.lower() not in q_words for t in texts for n in NUMBER.findall(t))
        ),
        "new_words": len(new) / max(1, len(answer_stems)),
        "year_missing": float(year_missing),
        "staleness": staleness(query, [e.passage for e in evidence], passages),
        "age": age([e.passage for e in evidence], passages),
        "support": support / max(1, len(articles)),
        # The cited headline names it: the article is about it, not passing by.
        "in_title": float(any(a in titles for a in added)),
        # Passages from few articles: the search found one story, not scattered mentions.
        "articles": len(articles) / max(1, len(passages)),
        "names": math.log1p(len(added)),
        "top_score": view.top_score,
        "margin": view.top_score - view.runner_up,
        "agrees": float(agrees),
        "inv_rank": 1.0 / min(e.passage.rank for e in evidence),
    }


def age(cited: Sequence[Passage], passages: Sequence[Passage]) -> float:
    """How much older the newest cited article is than the newest retrieved one, as
    log(1 + days) / log(366), at most 1 (0 when either is undated). Relative to what was
    retrieved, not to today, so a reader asking long after the news is not penalised for the
    day they ask; news questions are about the latest of the story."""

    def day(p: Passage) -> date | None:
        try:
            return date.fromisoformat((p.date or "")[:10])
        except ValueError:
            return None

    newest = max((d for p in passages if (d := day(p))), default=None)
    used = max((d for p in cited if (d := day(p))), default=None)
    if newest is None or used is None:
        return 0.0
    return min(1.0, math.log1p(max(0, (newest - used).days)) / math.log(366))


def staleness(query: Query, cited: Sequence[Passage], passages: Sequence[Passage]) -> float:
    """age() for a question about the present ("current", "latest", "this week"); else 0."""
    return age(cited, passages) if _NOW.search(query.text) else 0.0


def judge(
    query: Query,
    evidence: Sequence[Evidence],
    passages: Sequence[Passage],
    view: ExtractiveView,
    embedder: Embeddings,
    threshold: float | None = None,
    model: JudgeModel | None = None,
) -> Judgement | None:
    """The judgement of an answer: its probability under the fitted model, held to threshold
    (the fitted one when None); None when the embedder is not the fitted model's."""
    model = model or load()
    features = measure(query, evidence, passages, view, embedder, model.dims)
    if features is None:
        return None
    bar = model.threshold if threshold is None else threshold
    return Judgement(model.probability(features), bar, features)
