"""Score eval results (the `ask --json` objects plus expected answers) and compare runs."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from rag.lexical import MONTHS
from rag.measure import percentile

FAILURE_LABELS: tuple[str, ...] = ("retrieval_miss", "answer_miss", "false_answer")

# What a reader is shown, and how well the answer judgement ranks it (see _selective).
SELECTIVE_METRICS: tuple[str, ...] = (
    "coverage",
    "presented_precision",
    "wrong_presented_rate",
    "aurc",
    "coverage_at_80",
    "calibration_error",
)

# Top-level summary keys in the order `compare` reports them.
SUMMARY_METRICS: tuple[str, ...] = (
    "n",
    "n_answerable",
    "n_unanswerable",
    "retrieval_hit_rate",
    "mrr",
    "answer_in_context_rate",
    "answer_accuracy",
    "answer_f1",
    "citation_precision",
    "supported_citation_rate",
    "refusal_accuracy",
    "false_refusal_rate",
    "latency_ms_p50",
    "latency_ms_p95",
    *SELECTIVE_METRICS,
)

# What each summary metric measures (the eval report's legend, one line each), and the questions
# it is taken over: "answerable", "unanswerable" or "all". A column with none of those questions
# has no value for it ("–"), not 0.
METRIC_HELP: dict[str, tuple[str, str]] = {
    "n": ("all", "questions asked"),
    "n_answerable": ("all", "questions whose answer is in the articles"),
    "n_unanswerable": ("all", "questions the articles can't answer"),
    "retrieval_hit_rate": ("answerable", "answerable questions with an expected article retrieved"),
    "mrr": ("answerable", "mean 1/rank of the first expected article retrieved"),
    "answer_in_context_rate": (
        "answerable",
        "answerable questions with an expected answer retrieved",
    ),
    "answer_accuracy": ("answerable", "answerable questions answered with an expected answer"),
    "answer_f1": ("answerable", "word overlap with the expected answer: low if long"),
    "citation_precision": ("answerable", "citations naming an expected article or answer"),
    "supported_citation_rate": ("all", "citations the check found supported by the passage"),
    "refusal_accuracy": ("unanswerable", "unanswerable questions refused"),
    "false_refusal_rate": ("answerable", "answerable questions refused (lower is better)"),
    "coverage": ("all", "questions given an answer (not refused or withheld)"),
    "presented_precision": ("all", "answers given that hold an expected answer"),
    "wrong_presented_rate": ("all", "questions given a wrong answer (lower is better)"),
    "aurc": ("all", "mean risk as judged answers are added (lower is better)"),
    "coverage_at_80": ("all", "most questions answered at 0.80 precision, by judgement"),
    "calibration_error": ("all", "mean |judged probability - share right| (10 bins)"),
    "latency_ms_p50": ("all", "median ms to answer (varies with the machine's load)"),
    "latency_ms_p95": ("all", "95th-percentile ms to answer"),
}

_CHAR_MAP = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00a0": " ",
    }
)

_NUMBER_WORDS: dict[str, str] = {
    word: str(value)
    for value, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}

# Month names become their three-letter abbreviation, so "February 23" matches "Feb 23".
_MONTHS: dict[str, str] = {name: name[:3] for name in MONTHS if len(name) > 3}
_MONTHS["sept"] = "sep"

_WORD_MAP: dict[str, str] = {**_NUMBER_WORDS, **_MONTHS}
_ARTICLES = frozenset({"a", "an", "the"})

_THOUSANDS_SEP = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TRAILING_ZERO_DECIMAL = re.compile(r"(?<=\d)\.0+(?![\d.])")
# A possessive "'s" goes ("Iran's" -> "iran"); other apostrophes and the dots of initialisms
# join ("don't" -> "dont", "U.S." -> "us"); any other punctuation, including a dot that is not
# a decimal point, becomes a space.
_JOINING = re.compile(r"'s\b|'|(?<=\b[^\W\d_])\.")
_NON_WORD = re.compile(r"_|[^\w\s.]|(?<!\d)\.|\.(?!\d)")


def normalize(text: str) -> str:
    """Fold case, quotes, dashes, punctuation, articles and number formats for comparison."""
    text = unicodedata.normalize("NFKC", text or "").translate(_CHAR_MAP).lower()
    text = text.replace("%", " percent ")
    text = _THOUSANDS_SEP.sub("", text)
    text = _TRAILING_ZERO_DECIMAL.sub("", text)
    text = _NON_WORD.sub(" ", _JOINING.sub("", text))
    tokens = [_WORD_MAP.get(token, token) for token in text.split() if token not in _ARTICLES]
    return " ".join(tokens)


def contains_answer(text: str | None, answers: Iterable[str]) -> bool:
    """Whether the normalised text holds any normalised acceptable answer on word boundaries."""
    haystack = f" {normalize(text or '')} "
    for answer in answers:
        needle = normalize(answer)
        if needle and f" {needle} " in haystack:
            return True
    return False


def _f1(prediction_tokens: Sequence[str], answer_tokens: Sequence[str]) -> float:
    """SQuAD token F1 between two token lists."""
    common = Counter(prediction_tokens) & Counter(answer_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(answer_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str | None, answers: Iterable[str]) -> float:
    """SQuAD-style token F1 of the prediction against its best-matching acceptable answer."""
    prediction_tokens = normalize(prediction or "").split()
    if not prediction_tokens:
        return 0.0
    scores = [_f1(prediction_tokens, normalize(answer).split()) for answer in answers]
    return max(scores, default=0.0)


def _source_key(source: str | None) -> str:
    """A source file name reduced to its stem, so "articles/x.txt", "x.txt" and "x" agree."""
    if not source:
        return ""
    name = PurePosixPath(str(source).replace("\\", "/")).name
    return name[:-4].lower() if name.lower().endswith(".txt") else name.lower()


def _ranked(retrieved: Sequence[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    """Retrieved passages with 1-based ranks (their own `rank` field when it is usable)."""
    ranks = [item.get("rank") for item in retrieved]
    if all(isinstance(rank, int) and not isinstance(rank, bool) for rank in ranks):
        offset = 1 if ranks and min(ranks) == 0 else 0  # tolerate 0-based ranks
        return sorted(
            ((rank + offset, item) for rank, item in zip(ranks, retrieved, strict=True)),
            key=lambda pair: pair[0],
        )
    return [(index, item) for index, item in enumerate(retrieved, start=1)]


def _cited_passages(
    citation: Mapping[str, Any], ranked: Sequence[tuple[int, Mapping[str, Any]]]
) -> list[str]:
    """Texts of the retrieved passages a citation points at (by chunk id, else by number)."""
    chunk_id = citation.get("chunk_id")
    if chunk_id is not None:
        by_id = [item for _, item in ranked if item.get("chunk_id") == chunk_id]
        if by_id:
            return [str(item.get("text") or "") for item in by_id]
    number = citation.get("n")
    source = _source_key(citation.get("source"))
    return [
        str(item.get("text") or "")
        for rank, item in ranked
        if rank == number and (not source or _source_key(item.get("source")) == source)
    ]


def _latency(result: Mapping[str, Any]) -> float | None:
    """The total wall time of one ask in milliseconds, if recorded."""
    total = (result.get("timings_ms") or {}).get("total")
    if isinstance(total, int | float) and not isinstance(total, bool) and math.isfinite(total):
        return float(total)
    return None


def judge(result: Mapping[str, Any]) -> dict[str, Any]:
    """Per-item verdicts for one eval result: retrieval, answer, citations, refusal, failure."""
    answers = [str(a) for a in result.get("expected_answers") or []]
    expected = {_source_key(s) for s in result.get("expected_sources") or []} - {""}
    answerable = bool(answers)
    refused = bool(result.get("refused"))
    answer = str(result.get("answer") or "")
    ranked = _ranked(result.get("retrieved") or [])
    citations = list(result.get("citations") or [])

    retrieval_hit: bool | None = None
    reciprocal_rank: float | None = None
    answer_in_context: bool | None = None
    correct = False
    f1: float | None = None
    refused_correctly: bool | None = None
    if answerable:
        hit_ranks = [rank for rank, item in ranked if _source_key(item.get("source")) in expected]
        retrieval_hit = bool(hit_ranks)
        reciprocal_rank = 1.0 / min(hit_ranks) if hit_ranks else 0.0
        answer_in_context = any(
            contains_answer(str(item.get("text") or ""), answers) for _, item in ranked
        )
        correct = not refused and contains_answer(answer, answers)
        f1 = 0.0 if refused else token_f1(answer, answers)
    else:
        refused_correctly = refused

    citation_precision: float | None = None
    supported_rate: float | None = None
    if citations:
        precise = 0
        for citation in citations:
            texts = [str(citation.get("quote") or ""), *_cited_passages(citation, ranked)]
            if _source_key(citation.get("source")) in expected or any(
                contains_answer(text, answers) for text in texts
            ):
                precise += 1
        citation_precision = precise / len(citations)
        supported_rate = sum(1 for c in citations if c.get("supported") is True) / len(citations)

    # The judgement (rag/answering/judgement.py): its probability, and whether the answer it
    # judged (given, or withheld under the threshold) is right.
    judged = result.get("judgement") or {}
    probability = judged.get("probability") if isinstance(judged, Mapping) else None
    guess = result.get("withheld") or (None if refused else answer)
    guess_right = bool(answerable and guess and contains_answer(str(guess), answers))

    failure: str | None = None
    if answerable and not retrieval_hit:
        failure = "retrieval_miss"
    elif answerable and not correct:
        failure = "answer_miss"
    elif not answerable and not refused:
        failure = "false_answer"

    return {
        "id": result.get("id"),
        "type": result.get("type"),
        "question": result.get("question"),
        "answer": answer,
        "answerable": answerable,
        "refused": refused,
        "retrieval_hit": retrieval_hit,
        "reciprocal_rank": reciprocal_rank,
        "answer_in_context": answer_in_context,
        "correct": correct,
        "f1": f1,
        "n_citations": len(citations),
        "citation_precision": citation_precision,
        "supported_rate": supported_rate,
        "refused_correctly": refused_correctly,
        "passed": failure is None,
        "failure": failure,
        "latency_ms": _latency(result),
        "probability": probability if _is_number(probability) else None,
        "guess_right": guess_right,
    }


def _mean(values: Iterable[float | bool | None]) -> float | None:
    """Mean of the non-None values, or None when there are none."""
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _summary(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary metrics of one group of judged items."""
    answerable = [item for item in items if item["answerable"]]
    unanswerable = [item for item in items if not item["answerable"]]
    answered_cited = [
        item for item in items if not item["refused"] and item["citation_precision"] is not None
    ]
    latencies = [item["latency_ms"] for item in items if item.get("latency_ms") is not None]
    failures = dict.fromkeys(FAILURE_LABELS, 0)
    for item in items:
        if item["failure"] is not None:
            failures[item["failure"]] = failures.get(item["failure"], 0) + 1
    return {
        "n": len(items),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "retrieval_hit_rate": _mean(item["retrieval_hit"] for item in answerable),
        "mrr": _mean(item["reciprocal_rank"] for item in answerable),
        "answer_in_context_rate": _mean(item["answer_in_context"] for item in answerable),
        "answer_accuracy": _mean(item["correct"] for item in answerable),
        "answer_f1": _mean(item["f1"] for item in answerable),
        "citation_precision": _mean(item["citation_precision"] for item in answered_cited),
        "supported_citation_rate": _mean(item["supported_rate"] for item in answered_cited),
        "refusal_accuracy": _mean(item["refused_correctly"] for item in unanswerable),
        "false_refusal_rate": _mean(item["refused"] for item in answerable),
        **_selective(items),
        "latency_ms_p50": percentile(latencies, 50) if latencies else None,
        "latency_ms_p95": percentile(latencies, 95) if latencies else None,
        # The spread of one run's own timings (p90 - p10), against which `rag compare` judges
        # a change in timings between two runs.
        "latency_ms_p10": percentile(latencies, 10) if latencies else None,
        "latency_ms_p90": percentile(latencies, 90) if latencies else None,
        "failures": failures,
    }


def _selective(items: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """What a reader is shown: coverage, precision and wrong answers given, and the judged
    answers' risk-coverage figures (items judged by an older rag count as unjudged)."""
    n = len(items)
    shown = [item for item in items if not item["refused"]]
    right = sum(1 for item in shown if item["answerable"] and item["correct"])
    scored = [
        (float(item["probability"]), bool(item.get("guess_right")))
        for item in items
        if item.get("probability") is not None
    ]
    figures = selective_figures(scored, n) if scored else {}
    return {
        "coverage": len(shown) / n if n else None,
        "presented_precision": right / len(shown) if shown else None,
        "wrong_presented_rate": (len(shown) - right) / n if n else None,
        "aurc": figures.get("aurc"),
        "coverage_at_80": figures.get("coverage_at_80"),
        "calibration_error": calibration_error(scored) if scored else None,
    }


def selective_figures(scored: Sequence[tuple[float, bool]], n: int) -> dict[str, Any]:
    """Risk-coverage figures over n questions, of which `scored` have an answer with a score
    (higher: more likely right) and whether it is right. Answers are taken best first:
    - aurc: the mean risk (share wrong) of the best i answers, over i = 1..len(scored);
    - coverage_at_80: the largest share of the n questions whose best answers are right at
      least 0.80 of the time (0 when none);
    - precision_at_30: the share right of the best 30% of the n questions' answers;
    - curve: (coverage, precision) after each answer, for the picture."""
    order = sorted(scored, key=lambda pr: -pr[0])
    hits, risks, curve, at_80 = 0, [], [], 0.0
    for i, (_, right) in enumerate(order, 1):
        hits += right
        risks.append(1 - hits / i)
        curve.append((i / n, hits / i))
        if hits / i >= 0.8:
            at_80 = i / n
    top = max(1, round(0.3 * n))
    return {
        "aurc": sum(risks) / len(risks) if risks else None,
        "coverage_at_80": at_80,
        "precision_at_30": sum(r for _, r in order[:top]) / top if len(order) >= top else None,
        "curve": curve,
    }


def calibration_error(scored: Sequence[tuple[float, bool]], bins: int = 10) -> float:
    """Expected calibration error: the answers in equal-width probability bins, each bin's
    |mean probability - share right| weighted by its size."""
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        group = [(p, r) for p, r in scored if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if group:
            mean_p = sum(p for p, _ in group) / len(group)
            share = sum(r for _, r in group) / len(group)
            total += len(group) * abs(mean_p - share)
    return total / len(scored)


def reliability(
    scored: Sequence[tuple[float, bool]], bins: int = 10
) -> list[tuple[float, float, int]]:
    """(mean probability, share right, answers) of each non-empty probability bin."""
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        group = [(p, r) for p, r in scored if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if group:
            out.append(
                (
                    sum(p for p, _ in group) / len(group),
                    sum(r for _, r in group) / len(group),
                    len(group),
                )
            )
    return out


def summarize(judged_results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Overall and per-type metrics; items not yet judged are judged first."""
    items = [item if "failure" in item else judge(item) for item in judged_results]
    summary = _summary(items)
    types = sorted({str(item.get("type") or "unknown") for item in items})
    summary["by_type"] = {
        kind: _summary([item for item in items if str(item.get("type") or "unknown") == kind])
        for kind in types
    }
    return summary


def _is_number(value: Any) -> bool:
    """Whether a summary value is a plain number (bools are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def compare(
    old_summary: Mapping[str, Any], new_summary: Mapping[str, Any]
) -> list[tuple[str, float | None, float | None, float | None]]:
    """(metric, old, new, new - old) for every numeric top-level metric of two summaries."""
    extras = [
        key
        for key in (*new_summary, *old_summary)
        if key not in SUMMARY_METRICS
        and (_is_number(new_summary.get(key)) or _is_number(old_summary.get(key)))
    ]
    rows: list[tuple[str, float | None, float | None, float | None]] = []
    for key in (*SUMMARY_METRICS, *dict.fromkeys(extras)):
        if key not in old_summary and key not in new_summary:
            continue
        old, new = old_summary.get(key), new_summary.get(key)
        if not (old is None or _is_number(old)) or not (new is None or _is_number(new)):
            continue
        delta = new - old if old is not None and new is not None else None
        rows.append((key, old, new, delta))
    return rows
