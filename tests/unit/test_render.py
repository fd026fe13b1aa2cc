"""Unit tests for how answers and eval reports are shown in the terminal."""

from __future__ import annotations

import io
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from rag import scoring
from rag.answering import Answer, Sentence
from rag.evaluation import EvalResult, Failure
from rag.render import (
    REPORT_WIDTH,
    StageLine,
    nested_quotes,
    print_answer,
    print_articles,
    print_eval,
    shell_lines,
)
from rag.store import ArticleEntry

TYPES = ("conflict", "date", "factoid", "multi", "paraphrase", "unanswerable")
LONG_QUESTION = (
    "Which National Security Council spokesman said the United States would impose additional "
    "sanctions on Iran over its deliveries of drones and missiles to Russia?"
)


def test_a_quoted_sentence_inside_a_citation_quote_is_not_doubled() -> None:
    quote = '“Iran considers it inhumane,” a statement said. Kirby called it "swift".'
    shown = nested_quotes(quote)
    assert shown == "‘Iran considers it inhumane,’ a statement said. Kirby called it 'swift'."
    assert f"“{shown}”".count("“") == 1


def test_a_re_cited_sentence_says_what_the_model_cited_in_plain_english() -> None:
    recited = [Sentence("Tehran sent drones.", (9,), False), Sentence("Kyiv said so.", (), False)]
    answer = Answer("Q?", "Tehran sent drones [1]. Kyiv said so [2].", False, "fake", [], [])
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    print_answer(console, console, replace(answer, recited=recited))
    lines = buffer.getvalue().splitlines()
    assert "re-cited: Tehran sent drones. (the model cited [9])" in lines
    assert "re-cited: Kyiv said so. (the model gave no citation)" in lines


LONG_NAME = "a-" * 50 + "story.txt"  # wider than the terminal
ARTICLES = {
    LONG_NAME: ArticleEntry("h1", "Talks [/UPDATED]\tin Vienna", ["c1"], "2024-03-01", "AP News"),
    "untitled.txt": ArticleEntry("h2", "", ["c2", "c3"]),
}


def articles_shown(terminal: bool) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=terminal, color_system=None)
    console.soft_wrap = not terminal  # as the CLI sets it
    print_articles(console, ARTICLES)
    return buffer.getvalue()


def test_a_file_name_wider_than_the_terminal_is_folded_whole_never_cut() -> None:
    lines = articles_shown(terminal=True).splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "".join(lines[:2]) == LONG_NAME
    assert lines[2:] == [
        "  Talks [/UPDATED] in Vienna",
        "  2024-03-01 · AP News · 1 chunk",
        "untitled.txt",
        "  2 chunks",
    ]


def test_piped_articles_are_tab_separated_with_no_tab_inside_a_field() -> None:
    assert articles_shown(terminal=False).splitlines() == [
        "file\ttitle\tdate\tsource\tchunks",
        f"{LONG_NAME}\tTalks [/UPDATED] in Vienna\t2024-03-01\tAP News\t1",
        "untitled.txt\t\t\t\t2",
    ]


def eval_result() -> EvalResult:
    """An eval of the shipped set's six question types, every false answer citing a passage."""
    records: list[dict[str, Any]] = []
    for i, kind in enumerate(TYPES * 3):
        answerable = kind != "unanswerable"
        records.append(
            {
                "id": f"q{i:03d}",
                "type": kind,
                "question": LONG_QUESTION,
                "answer": "Kirby said so [1]. " * 12,
                "refused": False,
                "expected_answers": ["John Kirby"] if answerable else [],
                "expected_sources": ["a.txt"] if answerable else [],
                "retrieved": [{"rank": 1, "source": "a.txt", "text": "John Kirby said so."}],
                "citations": [{"n": 1, "rank": 1, "source": "a.txt", "quote": "q"}],
                "timings_ms": {"total": 1000.0 + i},
            }
        )
    summary = scoring.summarize(records)
    summary.update(set="eval/qa.jsonl", answerer="extractive", k=5)
    failures = [
        Failure(v["id"], v["failure"], v["question"], v["answer"], v["refused"])
        for v in map(scoring.judge, records)
        if v["failure"]
    ]
    return EvalResult(
        summary, Path("out/results.jsonl"), Path("out/summary.json"), None, [], failures
    )


def shown(terminal: bool) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=terminal, color_system=None)
    console.soft_wrap = not terminal  # as the CLI sets it
    print_eval(console, eval_result())
    return buffer.getvalue()


def test_the_eval_report_fits_a_terminal_with_every_header_whole() -> None:
    text = shown(terminal=True)
    assert max(len(line) for line in text.splitlines()) <= 80
    headers = " ".join(line for line in text.splitlines() if line.lstrip().startswith("metric "))
    assert headers.split() == ["metric", "overall", *TYPES[:4], "metric", *TYPES[4:]]
    # The failed question is cut to the width, not wrapped onto a second line.
    assert (
        "  q005  Which National Security Council spokesman said the United States would …" in text
    )


def test_the_eval_report_piped_fits_100_columns_and_keeps_whole_questions() -> None:
    text = shown(terminal=False)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= REPORT_WIDTH
    assert [line.split() for line in lines if line.lstrip().startswith("metric ")] == [
        ["metric", "overall", *TYPES]
    ]
    # wrapped under its start, not cut
    at = lines.index(next(line for line in lines if line.startswith("  q005  ")))
    assert " ".join(" ".join(lines[at : at + 2]).split()) == f"q005 {LONG_QUESTION}"
    assert lines[at + 1].startswith(" " * len("  q005  ") + "sanctions")


@pytest.mark.parametrize(
    "question",
    ["Who is Kirby?", "Who leads America's foreign spy agency in the reporting on it? " * 4],
)
def test_a_command_to_paste_fits_the_report_and_still_runs(question: str) -> None:
    lines = shell_lines(["printf", "%s|", question, "--json"])
    assert all(len(line) <= REPORT_WIDTH for line in lines)
    ran = subprocess.run(["bash", "-c", "\n".join(lines)], capture_output=True, text=True)
    assert ran.stdout == f"{question}|--json|"


def test_the_eval_report_explains_each_metric_and_shows_a_dash_where_none_applies() -> None:
    text = shown(terminal=False)
    for name in scoring.SUMMARY_METRICS:
        assert re.search(rf"^{name} +{re.escape(scoring.METRIC_HELP[name][1])}$", text, re.M)
        assert len(f"{name:<24}{scoring.METRIC_HELP[name][1]}") <= 80
    row = re.search(r"^ citation_precision .*$", text, re.M)
    assert row is not None and row.group().split()[-1] == "–"  # no unanswerable answer cites
    refusal = re.search(r"^ refusal_accuracy .*$", text, re.M)
    assert refusal is not None and refusal.group().split()[2:-1] == ["–"] * 5


def test_each_failure_shows_its_question_and_the_start_of_its_answer() -> None:
    text = shown(terminal=False)
    assert "false_answer (3):" in text
    answer = re.search(r"^ +→ (.*)$", text, re.M)
    assert answer is not None
    assert answer.group(1).startswith("Kirby said so [1]. Kirby said so [1].")
    # cut to the start that fits the report's 100 columns
    assert answer.group(1).endswith("…") and len(answer.group(0)) == REPORT_WIDTH


def test_a_streamed_draft_wraps_between_words_on_a_terminal() -> None:
    import io

    from rich.console import Console

    from rag.render import DRAFT_LABEL, TokenPrinter

    buffer = io.StringIO()
    console = Console(file=buffer, width=50, force_terminal=True, color_system=None)
    printer = TokenPrinter(console)
    text = "the alleged drone factory will be built in the Alabuga special economic zone [1]."
    for i in range(0, len(text), 3):  # tokens that split words
        printer(text[i : i + 3])
    printer.finish()
    lines = buffer.getvalue().splitlines()
    assert lines[0] == DRAFT_LABEL
    assert len(lines) > 2 and all(len(line) <= 50 for line in lines[1:])
    assert " ".join(lines[1:]) == text  # every word whole, none split across lines


def test_the_stage_line_says_what_rag_is_doing_and_for_how_long() -> None:
    now = [100.0]
    buffer = io.StringIO()
    terminal = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    stages = StageLine(terminal, clock=lambda: now[0])
    stages("reading 5 passages (≈970 tokens) with qwen2.5-coder-0.5b")
    assert stages.__rich__() == "reading 5 passages (≈970 tokens) with qwen2.5-coder-0.5b…"
    now[0] += 6.2
    assert stages.__rich__().endswith("qwen2.5-coder-0.5b… 6 s")
    stages("writing")
    assert stages.__rich__() == "writing…"
    # piped: nothing is printed
    piped = io.StringIO()
    with StageLine(Console(file=piped, force_terminal=False)) as quiet:
        quiet("searching")
    assert piped.getvalue() == ""
