"""What the grounding guard's fit and probe share: a training question's answer, its quiz
evidence, its wrong choices and the candidate article that holds the answer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.chunking import split_sentences


@dataclass(frozen=True)
class Quiz:
    """One question of a set with extra.jsonl, usable by the probe: its evidence says the
    answer and one of its own candidate articles holds it."""

    id: str
    question: str
    answers: list[str]  # the set's acceptable answers
    answer: str  # the quiz's right choice
    wrong: list[str]  # its three wrong choices, of the same type
    said: list[str]  # the evidence sentences holding the answer (a human paraphrase)
    asked: str  # YYYY-MM-DD
    articles: dict[str, list[str]]  # its candidate articles' sentences, by file name
    holding: str  # the first candidate article holding the answer
    sources: list[str]
    type: str


def body(path: Path) -> str:
    """An article file's text without its header lines (title, Source:, Published:, URL:)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    head, _, rest = text.partition("\n\n")
    return rest if rest.strip() else head


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def contains(text: str, answer: str) -> bool:
    """Whether text says answer as a whole word or phrase (any case)."""
    return re.search(r"(?<!\w)" + re.escape(answer.lower()) + r"(?!\w)", text.lower()) is not None


def swap(sentence: str, answer: str, wrong: str) -> str:
    """sentence with every mention of answer replaced by wrong."""
    return re.sub(r"(?<!\w)" + re.escape(answer) + r"(?!\w)", lambda _: wrong, sentence, flags=re.I)


def quizzes(set_dir: Path) -> Iterator[Quiz]:
    """The set's usable questions, in extra.jsonl's order."""
    rows = (set_dir / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    questions = {q["id"]: q for q in map(json.loads, rows)}
    for line in (set_dir / "extra.jsonl").read_text(encoding="utf-8").splitlines():
        extra = json.loads(line)
        q = questions[extra["id"]]
        answer = extra["choices"][extra["answer_choice"]]
        said = [s for s in sentences(extra.get("evidence") or "") if contains(s, answer)]
        if not said:
            continue
        texts = {}
        for name in extra["search_results"]:
            path = set_dir / "articles" / name
            if path.is_file():
                texts[name] = sentences(body(path))
        holding = next((n for n, ss in texts.items() if any(contains(s, answer) for s in ss)), None)
        if holding is None:
            continue
        yield Quiz(
            id=extra["id"],
            question=q["question"],
            answers=list(q["answers"]),
            answer=answer,
            wrong=[c for i, c in enumerate(extra["choices"]) if i != extra["answer_choice"]],
            said=said,
            asked=extra["asked"],
            articles=texts,
            holding=holding,
            sources=list(q.get("sources") or []),
            type=q.get("type") or "",
        )
