"""Answers with citations: the types every answerer returns, and the contract they keep."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Protocol

from rag.question import Query
from rag.retrieval import Passage

if TYPE_CHECKING:
    from rag.answering.judgement import Judgement

OnToken = Callable[[str], None]
# (the conversation so far as (question, answer) pairs, a follow-up) -> a standalone question
Condense = Callable[[list[tuple[str, str]], str], str]

REFUSAL = "The articles don't contain the answer to this question."
# An answer the judgement withheld: the passages may hold it, rag is not sure they do.
WITHHELD = (
    "The articles don't seem to answer this question (rag's best guess is too unsure to show)."
)


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer: [n] in its text (numbered 1, 2, 3 in the order the
    answer first cites them), the retrieved passage of that rank, and the quoted support."""

    n: int
    source: str
    title: str
    date: str | None
    quote: str
    supported: bool
    chunk_id: str
    start: int = 0
    end: int = 0
    rank: int = 0  # the passage's place in the retrieved list


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer, the passages it cites, and whether they support it."""

    text: str
    cites: tuple[int, ...]
    supported: bool
    # Why its passages don't support it, naming the check and the word that failed
    # ('"Boston" is not in passage [1]'); None when supported or not checked word by word.
    reason: str | None = None
    # The sentence as written, when only its opening clause is kept (the clause is the text).
    whole: str | None = None


@dataclass(frozen=True)
class Pick:
    """A sentence an answerer chose, and why, for `rag ask --json`: its score (higher is
    better) and signals: the learned selector's largest feature contributions to its ranker
    score, or the hand-set weighted signals that add up to the score (see
    ExtractiveAnswerer.rank)."""

    text: str
    rank: int  # the retrieved passage it comes from
    score: float
    signals: dict[str, float]
    probability: float | None = None  # the learned selector's P(answers), when it chose


@dataclass
class Answer:
    """What `rag ask` prints: the answer, its citations and the passages it was drawn from.

    An answerer returns it with text, refused and passages; the pipeline adds the citations
    it verified, the question as the user typed it, notes and timings.
    """

    question: str
    text: str
    refused: bool
    answerer: str
    citations: list[Citation]
    passages: list[Passage]
    sentences: list[Sentence] = field(default_factory=list)
    query: Query | None = None  # the analysed (standalone) question that was searched
    note: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    as_of: date | None = None  # the day the question was asked as of, when one was given
    refused_by: str | None = None  # which check refused, and why (None when answered)
    picks: list[Pick] = field(default_factory=list)  # the chosen sentences, when an answerer says
    # The best sentences the extractive answerer did not choose (the judgement reads its margin).
    runners_up: list[Pick] = field(default_factory=list)
    # How likely the answer answers the question (rag/answering/judgement.py): set by the
    # pipeline for every answer it judged, presented or withheld.
    judgement: Judgement | None = None
    # The answer the judgement withheld (below the threshold), kept for --all and the eval.
    withheld: str | None = None
    # Generated sentences that verification took out of the answer (unsupported, or citing
    # nothing), kept so the output can show what the model wrote and was not allowed to say.
    dropped: list[Sentence] = field(default_factory=list)
    # Generated sentences whose citation verification corrected (as the model cited them).
    recited: list[Sentence] = field(default_factory=list)
    # Generated sentences cut to the opening clause a passage supports (text: the clause kept;
    # whole: as written; reason: why the whole sentence was not supported).
    cut: list[Sentence] = field(default_factory=list)
    # The answerer whose answer verification refused, when this is the extractive fallback.
    fallback_from: str | None = None

    @classmethod
    def refusal(
        cls,
        query: Query,
        passages: Sequence[Passage],
        answerer: str,
        reason: str,
        text: str = REFUSAL,
    ) -> Answer:
        """The plain refusal, saying which check refused."""
        return cls(
            query.text, text, True, answerer, [], list(passages), query=query, refused_by=reason
        )

    def noted(self, extra: str | None) -> Answer:
        """This answer with extra added to its note (the answer itself when extra is None)."""
        if not extra:
            return self
        return replace(self, note=f"{self.note}; {extra}" if self.note else extra)

    def numbers(self) -> dict[int, int]:
        """Each retrieved passage's number as shown, by rank: the cited ones as the answer
        cites them (1, 2, ...), the others after them in retrieval order."""
        shown = {c.rank: c.n for c in self.citations}
        rest = [p.rank for p in self.passages if p.rank not in shown]
        start = max(shown.values(), default=0) + 1
        return {**shown, **{rank: start + i for i, rank in enumerate(rest)}}

    @property
    def unsupported(self) -> int:
        """Answer sentences whose citations do not support them (or that cite nothing)."""
        return sum(1 for s in self.sentences if not s.supported)


class Answerer(Protocol):
    """What the pipeline needs of an answerer; the refusal gate before it is the pipeline's."""

    name: str
    streams: bool  # whether on_token receives the answer as it is written
    verbatim: bool  # whether its sentences are the passages' own (a lexical check suffices)
    condense: Condense | None  # rewrites a follow-up itself, or None for the rule-based rewrite

    def answer(
        self, query: Query, passages: Sequence[Passage], on_token: OnToken | None = None
    ) -> Answer: ...

    def reading(self, query: Query, passages: Sequence[Passage]) -> str | None:
        """What answering these passages will take, for a progress line ("reading 5
        passages (≈970 tokens) with MODEL"); None when it is too quick to say."""
        ...
