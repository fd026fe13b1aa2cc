"""Unit tests for eval/rtqa_audit.py on a hand-made corpus and run."""

from __future__ import annotations

from typing import Any

from eval import rtqa_audit

ARTICLES = {
    "smoking.txt": "New cigarette warnings will be printed on every pack, officials said.",
    "cannabis.txt": "Canada and Israel permit far more research access to cannabis.",
    "search.txt": "Police found Owami Davies after the 118th reported sighting.",
}


def question(qid: str, text: str, answer: str) -> dict[str, Any]:
    return {"id": qid, "question": text, "answers": [answer], "sources": []}


def run(qid: str, *, hit: bool, in_context: bool, correct: bool) -> dict[str, Any]:
    return {
        "id": qid,
        "verdict": {"retrieval_hit": hit, "answer_in_context": in_context, "correct": correct},
    }


def test_an_entry_is_verified_only_when_no_story_article_holds_the_answer() -> None:
    story = [r"\bcigarettes?\b", r"\bwarnings?\b"]
    assert rtqa_audit.story_articles(story, ARTICLES) == ["smoking.txt"]
    assert rtqa_audit.verified(story, ["Canada"], ARTICLES)
    # "Canada" is in the corpus, but not in an article about cigarette warnings; "pack" is.
    assert not rtqa_audit.verified(story, ["pack"], ARTICLES)


def test_verification_is_looser_than_the_scorer() -> None:
    # The scorer does not count "118th" as "118"; the audit must not call that article silent.
    assert not rtqa_audit.verified([r"\bOwami\b"], ["118"], ARTICLES)


def test_audit_scores_the_run_without_the_verified_entries() -> None:
    questions = [
        question("q1", "Which country will print a warning on every cigarette?", "Canada"),
        question("q2", "How many sightings were reported?", "118"),
        question("q3", "Which of these films premiered?", "Blonde"),
        question("q4", "Who was found?", "Owami Davies"),
    ]
    entries = [
        {"id": "q1", "finding": "not_in_corpus", "story": [r"\bcigarette", r"\bwarning"]},
        {"id": "q2", "finding": "not_in_corpus", "story": [r"\bOwami\b"]},  # wrong: fails check
    ]
    results = [
        run("q1", hit=False, in_context=False, correct=False),
        run("q2", hit=True, in_context=False, correct=False),
        run("q3", hit=False, in_context=True, correct=True),
        run("q4", hit=True, in_context=True, correct=True),
    ]
    audit = rtqa_audit.audit(entries, questions, ARTICLES, results)
    assert [e["verified"] for e in audit["not_in_corpus"]] == [True, False]
    assert audit["needs_options"] == ["q3"]
    assert audit["needs_options_correct"] == 1
    assert audit["no_answer_retrieved"] == ["q1", "q2"]
    assert audit["hit_missed_answer_retrieved"] == ["q3"]
    # Only the verified entry (q1) is left out: q2, q3, q4 remain.
    rest = audit["answerable"]
    assert rest["n"] == 3
    assert rest["retrieval_hit_rate"] == 2 / 3
    assert rest["answer_in_context_rate"] == 2 / 3
    assert rest["answer_accuracy"] == 2 / 3
