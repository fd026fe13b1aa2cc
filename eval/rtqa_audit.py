"""Which rtqa-2022 questions the corpus can answer at all, checked against the articles.

    python eval/rtqa_audit.py        # after make_results.py has run rtqa-2022; prints JSON

rtqa-2022 kept every question whose answer string occurs in some article, but that article is
often not about the question: "Which country will print a warning on every cigarette?" lists
an article that names Canada for another reason. Such a question can't be answered by reading
the corpus, and its listed source can only be retrieved by luck. eval/rtqa-audit.jsonl names
these questions, each with the patterns an article telling its story must match and why it is
listed. This script checks every entry against the articles (no article matching all its
patterns may hold an acceptable answer; an entry that fails the check is reported as
unverified), finds the questions that refer to quiz options the set doesn't give ("Which of
these ..."), and scores the default run on the questions that remain. eval/make_results.py
shows the result in eval/RESULTS.md beside the targets, which it does not change.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rag.evaluation import read_results
from rag.scoring import normalize

ROOT = Path(__file__).resolve().parent.parent
RTQA = ROOT.parent / "shared" / "bench" / "rtqa-2022"
AUDIT = ROOT / "eval" / "rtqa-audit.jsonl"
RUN = ROOT / "eval" / "out" / "rtqa-2022" / "results.jsonl"

# A quiz question that picks among options the set leaves out.
NEEDS_OPTIONS = re.compile(r"\bwhich of (these|the following)\b|^\s*true or false\b", re.I)


def story_articles(story: list[str], articles: dict[str, str]) -> list[str]:
    """The articles that match every pattern of story (case-insensitive)."""
    patterns = [re.compile(p, re.I) for p in story]
    return sorted(name for name, text in articles.items() if all(p.search(text) for p in patterns))


def holds(text: str, answers: list[str]) -> bool:
    """Whether text holds an acceptable answer, even inside a longer word ("118th" holds
    "118"): looser than the scorer, so that an entry is never verified on a technicality."""
    haystack = normalize(text)
    return any(needle and needle in haystack for needle in map(normalize, answers))


def verified(story: list[str], answers: list[str], articles: dict[str, str]) -> bool:
    """Whether no article telling the story holds an acceptable answer (see holds)."""
    return not any(holds(articles[n], answers) for n in story_articles(story, articles))


def _rate(rows: list[dict[str, Any]], key: str) -> float | None:
    return sum(bool(r["verdict"][key]) for r in rows) / len(rows) if rows else None


def audit(
    entries: list[dict[str, Any]],
    questions: list[dict[str, Any]],
    articles: dict[str, str],
    results: list[dict[str, Any]],
) -> dict[str, Any]:
    """The checked entries, the option questions, and the run's figures without the entries."""
    by_id = {q["id"]: q for q in questions}
    run = {r["id"]: r for r in results}
    checked = []
    for e in entries:
        q = by_id[e["id"]]
        verdict = run.get(e["id"], {}).get("verdict", {})
        checked.append(
            {
                **e,
                "answers": q["answers"],
                "story_articles": len(story_articles(e["story"], articles)),
                "verified": verified(e["story"], q["answers"], articles),
                "retrieval_hit": verdict.get("retrieval_hit"),
                "correct": verdict.get("correct"),
            }
        )
    left_out = {e["id"] for e in checked if e["verified"]}
    rest = [r for r in results if r["id"] not in left_out]
    options = [q["id"] for q in questions if NEEDS_OPTIONS.search(q["question"])]
    return {
        "n": len(questions),
        "not_in_corpus": checked,
        "needs_options": options,
        "needs_options_correct": sum(
            bool(run[i]["verdict"]["correct"]) for i in options if i in run
        ),
        "no_answer_retrieved": sorted(
            r["id"] for r in results if not r["verdict"]["answer_in_context"]
        ),
        # Missed by the listed sources, though a retrieved passage holds an acceptable answer.
        "hit_missed_answer_retrieved": sorted(
            r["id"]
            for r in results
            if not r["verdict"]["retrieval_hit"] and r["verdict"]["answer_in_context"]
        ),
        "answerable": {
            "n": len(rest),
            "retrieval_hit_rate": _rate(rest, "retrieval_hit"),
            "answer_in_context_rate": _rate(rest, "answer_in_context"),
            "answer_accuracy": _rate(rest, "correct"),
        },
    }


def run_audit() -> dict[str, Any] | None:
    """The audit of the last default rtqa-2022 run, or None when there is none to read."""
    if not (RUN.is_file() and AUDIT.is_file() and (RTQA / "qa.jsonl").is_file()):
        return None
    articles = {p.name: p.read_text(errors="replace") for p in (RTQA / "articles").glob("*.txt")}
    rows = [list(read_results(path)) for path in (AUDIT, RTQA / "qa.jsonl", RUN)]
    return audit(rows[0], rows[1], articles, rows[2])


if __name__ == "__main__":
    result = run_audit()
    if result is None:
        raise SystemExit(f"nothing to audit: run `python eval/make_results.py` first ({RUN})")
    print(json.dumps(result, indent=2))
