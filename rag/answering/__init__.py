"""Answers with citations: the types every answerer returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from rag.retrieval import Passage


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer: passage n of the retrieved list, and the quoted support."""

    n: int
    source: str
    title: str
    date: str | None
    quote: str
    supported: bool
    chunk_id: str
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer, the passages it cites, and whether they support it."""

    text: str
    cites: tuple[int, ...]
    supported: bool


@dataclass
class Answer:
    """What `rag ask` prints: the answer, its citations and the passages it was drawn from."""

    question: str
    text: str
    refused: bool
    answerer: str
    citations: list[Citation]
    passages: list[Passage]
    sentences: list[Sentence] = field(default_factory=list)
    query: str = ""
    note: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    as_of: date | None = None  # the day the question was asked as of, when one was given

    @property
    def unsupported(self) -> int:
        """Answer sentences whose citations do not support them (or that cite nothing)."""
        return sum(1 for s in self.sentences if not s.supported)


REFUSAL = "The articles don't contain the answer to this question."
