"""The learned sentence selector: the probability that a candidate sentence answers the question.

Two fitted parts, both by `python fitting/train_selector.py ../shared/bench/rtqa-2024-train` with
cross-validation over questions:
- a linear ranker over the features ExtractiveAnswerer.rank measures for each sentence
  (FEATURES), fitted listwise: a softmax over one question's candidate sentences, trained to
  put its mass on the sentences that hold an answer;
- a calibration of its score into P(the sentence answers): a logistic regression on the
  score and the score's distance to the best candidate's, fitted on out-of-fold scores.
The parameters ship beside this module as selector.json with the fingerprint of the data and
code that produced them; scoring is a dot product in plain Python, so answering imports nothing
heavier than it did.

The probability decides refusal: the best sentence must reach `threshold`, chosen by the
training script for a stated false-refusal rate (see selector.json's "threshold_rule").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rag.errors import RagError

PARAMS = Path(__file__).with_name("selector.json")

# What the model reads about a candidate sentence; ExtractiveAnswerer.rank measures each.
FEATURES: tuple[str, ...] = (
    "cosine",  # embedding similarity of the sentence to the question's asking sentence
    "cosine_gap",  # cosine minus the best cosine among the candidates (0 for the best)
    "coverage",  # share of the question's focus-weighted (idf) words the sentence has
    "coverage_gap",  # coverage minus the best coverage among the candidates
    "context",  # the same share over the sentence's passage and title
    "near_coverage",  # the same share over the sentence and the sentences either side of it
    "near_gap",  # near_coverage minus the best near_coverage among the candidates
    "title",  # the same share over the passage's title
    "new_words",  # share of the sentence's words the question does not have
    "typed",  # the question asks for a kind (date, figure, ...) and the sentence has one
    "untyped",  # the question asks for a kind and the sentence has none
    "names_missing",  # a named thing of the question is not named around the sentence
    "asked_missing",  # what "the X of" asks about is not mentioned around the sentence
    "new_name",  # the sentence names something the question does not (a who/which answer)
    "new_number",  # the sentence has a figure the question does not
    "inv_rank",  # 1 / the rank of the sentence's passage
    "passage_similarity",  # the passage's cosine similarity to the question
    "position",  # where the sentence sits in its passage, 0 (first) to 1 (last)
    "lead",  # the sentence opens its article
    "words",  # log(1 + the sentence's word count)
    "quoted",  # the sentence carries a quotation
)


class SelectorError(RagError):
    """The shipped selector parameters are missing or unreadable."""


@dataclass(frozen=True)
class SentenceModel:
    """A fitted linear ranker over standardized features, its calibration, and the refusal
    threshold on the calibrated probability."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    # P(answers) = logistic(calibration[0] * score + calibration[1] * (score - best score)
    # + calibration[2]), the best score being the best among the question's candidates.
    calibration: tuple[float, float, float]
    threshold: float
    second_ratio: (
        float  # a second sentence is added when its probability is this share of the best's
    )
    kind_filters: bool  # whether ExtractiveAnswerer applies its kind filters before scoring
    fingerprint: str  # digest of the training data and code (selector.json has the parts)

    def contributions(self, x: Mapping[str, float]) -> dict[str, float]:
        """Each feature's share of the ranker's score (they add up to it)."""
        return {
            name: c * (x[name] - m) / s
            for name, m, s, c in zip(self.features, self.mean, self.scale, self.coef, strict=True)
        }

    def probabilities(self, xs: Sequence[Mapping[str, float]]) -> list[float]:
        """P(answers) for each of one question's candidate sentences."""
        scores = [sum(self.contributions(x).values()) for x in xs]
        best = max(scores, default=0.0)
        a, b, c = self.calibration
        return [_logistic(a * z + b * (z - best) + c) for z in scores]

    @classmethod
    def from_json(cls, data: Mapping) -> SentenceModel:
        features = tuple(data["features"])
        if features != FEATURES:
            missing = sorted(set(FEATURES) ^ set(features))
            raise SelectorError(
                f"selector parameters do not match the features measured ({', '.join(missing)}"
                "); refit with python fitting/train_selector.py"
            )
        return cls(
            features=features,
            mean=tuple(float(v) for v in data["mean"]),
            scale=tuple(float(v) or 1.0 for v in data["scale"]),
            coef=tuple(float(v) for v in data["coef"]),
            calibration=tuple(float(v) for v in data["calibration"]),  # type: ignore[arg-type]
            threshold=float(data["threshold"]),
            second_ratio=float(data["second_ratio"]),
            kind_filters=bool(data["kind_filters"]),
            fingerprint=str(data["fingerprint"]["digest"]),
        )


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


@cache
def load(path: Path = PARAMS) -> SentenceModel:
    """The shipped (or given) selector parameters, read once."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SelectorError(
            f"cannot read the sentence selector's parameters {path}: {exc}; refit with "
            "python fitting/train_selector.py ../shared/bench/rtqa-2024-train"
        ) from None
    try:
        return SentenceModel.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise SelectorError(f"malformed sentence selector parameters {path}: {exc}") from None
