"""Unit tests for rag.scoring on hand-made eval results."""

from __future__ import annotations

from typing import Any

import pytest

from rag.scoring import compare, contains_answer, judge, normalize, summarize, token_f1
from tests.corpus import DRONES, G7

SANCTIONS = "biden-administration-new-sanctions-on-iran-over-arms-for-russia.txt"


def passage(rank: int, source: str, text: str) -> dict[str, Any]:
    """A retrieved passage as `ask --json` reports it."""
    return {
        "rank": rank,
        "source": source,
        "title": source.removesuffix(".txt"),
        "score": 1.0 / rank,
        "chunk_id": f"{source}:{rank}",
        "text": text,
    }


def citation(n: int, source: str, quote: str = "", *, supported: bool = True) -> dict[str, Any]:
    """A citation as `ask --json` reports it."""
    return {
        "n": n,
        "source": source,
        "title": source,
        "date": None,
        "quote": quote,
        "supported": supported,
    }


def result(
    *,
    answer: str = "",
    refused: bool = False,
    expected_answers: list[str] | None = None,
    expected_sources: list[str] | None = None,
    retrieved: list[dict[str, Any]] | None = None,
    citations: list[dict[str, Any]] | None = None,
    kind: str = "factoid",
    total_ms: float | None = 100.0,
) -> dict[str, Any]:
    """One eval result: the `ask --json` object plus the expectations."""
    return {
        "id": "q",
        "question": "Where will the drone factory be built?",
        "answer": answer,
        "refused": refused,
        "answerer": "extractive",
        "citations": citations or [],
        "retrieved": retrieved or [],
        "timings_ms": {} if total_ms is None else {"total": total_ms, "retrieve": 5.0},
        "expected_answers": expected_answers or [],
        "expected_sources": expected_sources or [],
        "type": kind,
    }


ALABUGA_TEXT = "The drone factory will be built in the Alabuga special economic zone in Tatarstan."


def good_result(**overrides: Any) -> dict[str, Any]:
    """A correct, cited, well-retrieved answer to the Alabuga question."""
    fields: dict[str, Any] = {
        "answer": "In the Alabuga special economic zone [1].",
        "expected_answers": ["Alabuga", "Alabuga special economic zone"],
        "expected_sources": [DRONES],
        "retrieved": [passage(1, DRONES, ALABUGA_TEXT), passage(2, G7, "Iran Air.")],
        "citations": [citation(1, DRONES, "built in the Alabuga special economic zone")],
    }
    fields.update(overrides)
    return result(**fields)


def unanswerable_result(**overrides: Any) -> dict[str, Any]:
    """A question the articles do not answer, refused by default."""
    fields: dict[str, Any] = {
        "answer": "The articles do not say.",
        "refused": True,
        "retrieved": [passage(1, G7, "Iran Air may be banned.")],
        "kind": "unanswerable",
    }
    fields.update(overrides)
    return result(**fields)


# --- normalize -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The ALABUGA Zone", "alabuga zone"),
        ("an Iranian drone, a factory", "iranian drone factory"),
        ("“Swift” — and ‘severe’!", "swift and severe"),
        ("1,000 drones", "1000 drones"),
        ("1,300,000", "1300000"),
        ("3.0 missiles", "3 missiles"),
        ("3.5 percent", "3.5 percent"),
        ("50%", "50 percent"),
        ("$60 billion", "60 billion"),
        ("Five years ago", "5 years ago"),
        ("twenty", "20"),
        ("Iran’s mission", "iran mission"),
        ("the U.S. and the U.N.", "us and un"),
        ("second-largest bank", "second largest bank"),
        ("February 24, 2022", "feb 24 2022"),
        ("  spaced \n\t out  ", "spaced out"),
    ],
)
def test_normalize_folds_surface_differences(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_keeps_words_that_merely_start_with_articles() -> None:
    assert normalize("Theresa and Anne") == "theresa and anne"


def test_normalize_equates_number_formats() -> None:
    assert normalize("1,000") == normalize("1000") == normalize("1000.0")


# --- contains_answer and token_f1 ------------------------------------------------------------


def test_contains_answer_ignores_case_punctuation_and_articles() -> None:
    assert contains_answer("It is in THE Alabuga, Tatarstan.", ["alabuga"])
    assert contains_answer("About 1,300 kilometers.", ["1300 kilometers"])
    assert contains_answer("Iran Air could be banned", ["Iran Air", "Tatarstan"])


def test_contains_answer_respects_word_boundaries() -> None:
    assert not contains_answer("Amirabdollahian said so", ["Amirabad"])
    assert not contains_answer("about 4000 missiles", ["400"])
    assert not contains_answer("the US said", ["us said no"])


def test_contains_answer_is_false_without_answers() -> None:
    assert not contains_answer("anything at all", [])
    assert not contains_answer("anything at all", ["", "  ", "the"])
    assert not contains_answer(None, ["Alabuga"])


def test_token_f1_is_one_for_an_exact_answer() -> None:
    assert token_f1("The Alabuga special economic zone.", ["Alabuga special economic zone"]) == 1.0


def test_token_f1_drops_with_padding() -> None:
    short = token_f1("Alabuga", ["Alabuga"])
    padded = token_f1("It will be built in Alabuga", ["Alabuga"])
    assert short == 1.0
    # 1 of 6 prediction tokens matches: precision 1/6, recall 1, so F1 = 2/7.
    assert padded == pytest.approx(2 / 7)


def test_token_f1_takes_the_best_acceptable_answer() -> None:
    score = token_f1("Alabuga zone", ["Tatarstan", "Alabuga special economic zone"])
    # 2 shared tokens: precision 2/2, recall 2/4.
    assert score == pytest.approx(2 * 1.0 * 0.5 / 1.5)


def test_token_f1_is_zero_for_no_overlap_or_empty_input() -> None:
    assert token_f1("Tatarstan", ["Alabuga"]) == 0.0
    assert token_f1("", ["Alabuga"]) == 0.0
    assert token_f1("Alabuga", []) == 0.0


# --- judge -----------------------------------------------------------------------------------


def test_judge_a_correct_answer() -> None:
    verdict = judge(good_result())
    assert verdict["answerable"] is True
    assert verdict["retrieval_hit"] is True
    assert verdict["reciprocal_rank"] == 1.0
    assert verdict["answer_in_context"] is True
    assert verdict["correct"] is True
    assert 0.0 < verdict["f1"] < 1.0  # "in" pads the answer
    assert verdict["citation_precision"] == 1.0
    assert verdict["supported_rate"] == 1.0
    assert verdict["refused_correctly"] is None
    assert verdict["failure"] is None
    assert verdict["latency_ms"] == 100.0


def test_judge_reciprocal_rank_uses_the_first_expected_source() -> None:
    verdict = judge(
        good_result(
            retrieved=[
                passage(1, G7, "nothing here"),
                passage(2, SANCTIONS, "nor here"),
                passage(3, DRONES, ALABUGA_TEXT),
                passage(4, DRONES, ALABUGA_TEXT),
            ]
        )
    )
    assert verdict["reciprocal_rank"] == pytest.approx(1 / 3)


def test_judge_matches_sources_by_file_name() -> None:
    verdict = judge(good_result(retrieved=[passage(1, f"articles/{DRONES}", ALABUGA_TEXT)]))
    assert verdict["retrieval_hit"] is True


def test_judge_retrieval_miss() -> None:
    verdict = judge(good_result(retrieved=[passage(1, G7, "Iran Air"), passage(2, SANCTIONS, "")]))
    assert verdict["retrieval_hit"] is False
    assert verdict["reciprocal_rank"] == 0.0
    assert verdict["answer_in_context"] is False
    assert verdict["failure"] == "retrieval_miss"


def test_judge_answer_in_context_can_come_from_another_source() -> None:
    verdict = judge(good_result(retrieved=[passage(1, G7, "a plant in Alabuga, Tatarstan")]))
    assert verdict["retrieval_hit"] is False
    assert verdict["answer_in_context"] is True


def test_judge_wrong_answer_is_an_answer_miss() -> None:
    verdict = judge(good_result(answer="In Makhachkala [1]."))
    assert verdict["correct"] is False
    assert verdict["f1"] == 0.0
    assert verdict["failure"] == "answer_miss"


def test_judge_refusing_an_answerable_question_is_an_answer_miss() -> None:
    verdict = judge(good_result(answer="Alabuga, maybe; not sure.", refused=True, citations=[]))
    assert verdict["correct"] is False
    assert verdict["f1"] == 0.0
    assert verdict["failure"] == "answer_miss"
    assert verdict["citation_precision"] is None
    assert verdict["supported_rate"] is None


def test_judge_citation_precision_counts_source_or_answer_bearing_quote() -> None:
    verdict = judge(
        good_result(
            citations=[
                citation(1, DRONES, "unrelated words"),  # expected source
                citation(2, G7, "the Alabuga zone"),  # quote holds the answer
                citation(3, SANCTIONS, "Navalny"),  # neither
                citation(4, G7, "Iran Air"),  # neither
            ]
        )
    )
    assert verdict["citation_precision"] == 0.5


def test_judge_citation_precision_looks_at_the_cited_passage_text() -> None:
    verdict = judge(
        good_result(
            retrieved=[passage(1, G7, "a plant in the Alabuga zone"), passage(2, G7, "no")],
            citations=[citation(1, G7, "a plant"), citation(2, G7, "no")],
        )
    )
    assert verdict["citation_precision"] == 0.5


def test_judge_supported_rate() -> None:
    verdict = judge(
        good_result(
            citations=[
                citation(1, DRONES, supported=True),
                citation(1, DRONES, supported=False),
                citation(1, DRONES, supported=False),
                citation(1, DRONES, supported=True),
            ]
        )
    )
    assert verdict["supported_rate"] == 0.5


def test_judge_unanswerable_refused() -> None:
    verdict = judge(unanswerable_result())
    assert verdict["answerable"] is False
    assert verdict["refused_correctly"] is True
    assert verdict["failure"] is None
    assert verdict["retrieval_hit"] is None
    assert verdict["reciprocal_rank"] is None
    assert verdict["answer_in_context"] is None
    assert verdict["f1"] is None
    assert verdict["correct"] is False


def test_judge_unanswerable_answered_is_a_false_answer() -> None:
    verdict = judge(
        unanswerable_result(
            answer="Iran sent 400 missiles [1].",
            refused=False,
            citations=[citation(1, G7, "Iran Air may be banned", supported=False)],
        )
    )
    assert verdict["refused_correctly"] is False
    assert verdict["failure"] == "false_answer"
    assert verdict["citation_precision"] == 0.0
    assert verdict["supported_rate"] == 0.0


def test_judge_without_timings_has_no_latency() -> None:
    assert judge(good_result(total_ms=None))["latency_ms"] is None


# --- summarize -------------------------------------------------------------------------------


def test_summarize_overall_metrics() -> None:
    judged = [
        judge(good_result(total_ms=100.0)),
        judge(good_result(answer="In Makhachkala [1].", total_ms=200.0)),
        judge(
            good_result(
                retrieved=[passage(1, G7, "no"), passage(2, DRONES, ALABUGA_TEXT)],
                refused=True,
                citations=[],
                total_ms=300.0,
            )
        ),
        judge(good_result(retrieved=[passage(1, G7, "no")], total_ms=400.0)),
        judge(unanswerable_result(total_ms=500.0)),
        judge(
            unanswerable_result(
                answer="Yes [1].",
                refused=False,
                citations=[citation(1, G7, "no", supported=False)],
                total_ms=600.0,
            )
        ),
    ]
    summary = summarize(judged)
    assert summary["n"] == 6
    assert summary["n_answerable"] == 4
    assert summary["n_unanswerable"] == 2
    assert summary["retrieval_hit_rate"] == 0.75
    assert summary["mrr"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert summary["answer_in_context_rate"] == 0.75
    # the first and the fourth answer are right (the fourth despite the retrieval miss)
    assert summary["answer_accuracy"] == 0.5
    assert summary["answer_f1"] == pytest.approx((judged[0]["f1"] + judged[3]["f1"]) / 4)
    # answered items with citations: 1, 2, 4 (precision 1 each) and the false answer (0)
    assert summary["citation_precision"] == pytest.approx(3 / 4)
    assert summary["supported_citation_rate"] == pytest.approx(3 / 4)
    assert summary["refusal_accuracy"] == 0.5
    assert summary["false_refusal_rate"] == 0.25
    assert summary["latency_ms_p50"] == pytest.approx(350.0)
    assert summary["latency_ms_p95"] == pytest.approx(575.0)
    assert summary["failures"] == {"retrieval_miss": 1, "answer_miss": 2, "false_answer": 1}


def test_summarize_breaks_down_by_type() -> None:
    summary = summarize(
        [
            judge(good_result(kind="factoid")),
            judge(good_result(kind="paraphrase", answer="Tatarstan")),
            judge(unanswerable_result()),
        ]
    )
    assert set(summary["by_type"]) == {"factoid", "paraphrase", "unanswerable"}
    assert summary["by_type"]["factoid"]["answer_accuracy"] == 1.0
    assert summary["by_type"]["paraphrase"]["answer_accuracy"] == 0.0
    assert summary["by_type"]["paraphrase"]["failures"]["answer_miss"] == 1
    unanswerable = summary["by_type"]["unanswerable"]
    assert unanswerable["n"] == 1
    assert unanswerable["refusal_accuracy"] == 1.0
    assert unanswerable["answer_accuracy"] is None
    assert "by_type" not in unanswerable


def test_summarize_empty_denominators_are_none() -> None:
    only_unanswerable = summarize([judge(unanswerable_result(total_ms=None))])
    for metric in (
        "retrieval_hit_rate",
        "mrr",
        "answer_in_context_rate",
        "answer_accuracy",
        "answer_f1",
        "false_refusal_rate",
        "citation_precision",
        "supported_citation_rate",
        "latency_ms_p50",
        "latency_ms_p95",
    ):
        assert only_unanswerable[metric] is None, metric
    assert only_unanswerable["refusal_accuracy"] == 1.0

    only_answerable = summarize([judge(good_result())])
    assert only_answerable["refusal_accuracy"] is None
    assert only_answerable["answer_accuracy"] == 1.0

    empty = summarize([])
    assert empty["n"] == 0
    assert empty["answer_accuracy"] is None
    assert empty["by_type"] == {}
    assert empty["failures"] == {"retrieval_miss": 0, "answer_miss": 0, "false_answer": 0}


def test_summarize_judges_raw_results_itself() -> None:
    raw = [good_result(), unanswerable_result(refused=False)]
    assert summarize(raw) == summarize([judge(item) for item in raw])


# --- compare ---------------------------------------------------------------------------------


def test_compare_reports_deltas_for_numeric_metrics() -> None:
    old = summarize([judge(good_result(answer="Makhachkala")), judge(good_result())])
    new = summarize([judge(good_result()), judge(good_result())])
    rows = {metric: (before, after, delta) for metric, before, after, delta in compare(old, new)}
    assert rows["answer_accuracy"] == (0.5, 1.0, 0.5)
    assert rows["n"] == (2, 2, 0)
    assert rows["refusal_accuracy"] == (None, None, None)
    assert "failures" not in rows
    assert "by_type" not in rows


def test_compare_delta_is_none_when_one_side_is_missing() -> None:
    old = summarize([judge(good_result())])
    new = summarize([judge(good_result()), judge(unanswerable_result())])
    rows = {metric: (before, after, delta) for metric, before, after, delta in compare(old, new)}
    assert rows["refusal_accuracy"] == (None, 1.0, None)
    assert rows["n"] == (1, 2, 1)


def test_compare_keeps_extra_numeric_metrics_and_skips_the_rest() -> None:
    rows = compare({"custom": 1.5, "label": "a"}, {"custom": 1.0, "label": "b", "flag": True})
    assert rows == [("custom", 1.5, 1.0, -0.5)]
