"""The ask pipeline: question -> standalone query -> passages -> answer -> verified citations."""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.embeddings import Embeddings

from rag.answering import REFUSAL, Answer
from rag.answering.attribution import ask_of, asked_speaker, quotes
from rag.answering.citations import verify
from rag.answering.extractive import ExtractiveAnswerer, names_found
from rag.answering.llm import LLMAnswerer, OnToken, make_chat_model, resolve_spec
from rag.errors import RagError
from rag.retrieval import Retriever
from rag.settings import Settings

if TYPE_CHECKING:  # the chat-model stack is heavy; `rag ask` with the extractive answerer skips it
    from langchain_core.language_models.chat_models import BaseChatModel


class QuestionError(RagError):
    """The question cannot be asked (empty, or nothing left after cleaning)."""


class Answerer(Protocol):
    """What the pipeline needs of an answerer."""

    name: str

    def answer(self, question: str, passages: list, *args: Any) -> tuple[str, bool]: ...


@dataclass
class Turn:
    """One exchange of a conversation, kept for follow-up questions."""

    question: str
    query: str
    answer: Answer
    # The standalone question this turn follows up (its own question when it is standalone):
    # follow-ups carry it, so a long chat never chains every earlier question into the query.
    subject: str = ""


@dataclass
class Conversation:
    """The turns so far; follow-ups are rewritten against them."""

    turns: list[Turn] = field(default_factory=list)


_FOLLOW_UP = re.compile(
    r"^\s*(and|also|what about|how about|but|so|then|why|and why)\b|"
    r"\b(it|its|they|them|their|that|this|those|these|he|she|his|her|there)\b",
    re.I,
)
_QUESTION_WORD = re.compile(r"\b(who|whom|whose|what|which|where|when|why|how)\b|[?]", re.I)
_CONNECTIVE = re.compile(r"^\s*(and|also|but|so|then)\b[\s,]*", re.I)


def clean_question(question: str, max_chars: int) -> tuple[str, str | None]:
    """(question fit to ask, a note when it had to be changed); raises on empty questions."""
    text = unicodedata.normalize("NFKC", question)
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    text = " ".join(text.split())
    if not text:
        raise QuestionError("the question is empty; ask something about the articles")
    if len(text) > max_chars:
        return text[:max_chars], f"question truncated to {max_chars} characters"
    return text, None


class Pipeline:
    """Holds the warm pieces (embedder, index, answerers) so chat and eval reuse them."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embeddings | None = None,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        from rag.embedding import query_embedder

        self.settings = settings
        self.embedder = embedder or query_embedder(settings)
        self.retriever = Retriever(settings, self.embedder)
        self._chat_model = chat_model
        self._answerers: dict[str, Answerer] = {}

    def answerer(self, spec: str | None = None) -> Answerer:
        """The answerer for an --llm value ('auto' resolves from settings), built once."""
        settings = self.settings.with_overrides(llm=spec)
        resolved = resolve_spec(settings)
        # An injected chat model answers every spec but an explicit 'extractive' ('auto' too).
        if self._chat_model is not None and settings.llm.strip() != "extractive":
            resolved = f"fake:{type(self._chat_model).__name__}"
        if resolved not in self._answerers:
            if resolved == "extractive":
                self._answerers[resolved] = ExtractiveAnswerer(self.embedder)
            elif self._chat_model is not None:
                self._answerers[resolved] = LLMAnswerer(self._chat_model, self.settings, resolved)
            else:
                chat, url = make_chat_model(resolved, self.settings)
                self._answerers[resolved] = LLMAnswerer(chat, self.settings, resolved, url)
        return self._answerers[resolved]

    def standalone(
        self, question: str, conversation: Conversation | None, answerer: Answerer
    ) -> tuple[str, bool]:
        """(a standalone query for a follow-up, whether it carries the previous subject)."""
        if not conversation or not conversation.turns:
            return question, False
        if isinstance(answerer, LLMAnswerer):
            history = [(t.question, t.answer.text) for t in conversation.turns]
            return answerer.condense(history, question), False
        # A short question without a follow-up word ("Who is John Kirby?") is standalone: carrying
        # the last subject into it would answer an off-topic question instead of refusing it.
        if not _FOLLOW_UP.search(question) and len(question.split()) > 3:
            return question, False
        # "What did Kirby say about it?", then "And Iran?": the same question, asked of Iran.
        asked_again = ask_of(_subject(conversation), question)
        if asked_again:
            return asked_again, False
        # Extractive: carry the previous turn's subject into this one, after the follow-up: the
        # extractive answerer reads the kind of answer wanted ("when ...") from the start.
        # The subject loses its own question words, so the follow-up alone says what is asked
        # ("when"), and the subject only says what it is about (the drone factory).
        follow_up = _CONNECTIVE.sub("", question) or question
        subject = " ".join(_QUESTION_WORD.sub(" ", _subject(conversation)).split())
        return (f"{follow_up}; {subject}", True) if subject else (follow_up, False)

    def ask(
        self,
        question: str,
        k: int | None = None,
        llm: str | None = None,
        conversation: Conversation | None = None,
        on_token: OnToken | None = None,
        as_of: date | None = None,
    ) -> Answer:
        """Answer one question from the index, with verified citations or a refusal.

        as_of (default Settings.as_of): answer from the articles published by that day.
        """
        started = time.perf_counter()
        as_of = as_of or self.settings.as_of
        question, note = clean_question(question, self.settings.max_question_chars)
        answerer = self.answerer(llm)
        t = time.perf_counter()
        query, carried = self.standalone(question, conversation, answerer)
        condense_ms = (time.perf_counter() - t) * 1000
        # "What did Iran say ...": one passage at least should report the speaker's words.
        speaker = asked_speaker(query)
        wanted = partial(quotes, speaker) if speaker else None
        retrieval = self.retriever.search(query, k, as_of, wanted)
        if retrieval.too_new:
            n = len(retrieval.too_new)
            later = f"{n} matching article{'s' if n > 1 else ''} published after {as_of} left out"
            note = f"{note}; {later}" if note else later
        timings = {"condense": round(condense_ms, 2), **retrieval.timings_ms}

        t = time.perf_counter()
        # Off-topic: nothing close enough, unless the passages name all the question names.
        if not retrieval.passages or (
            retrieval.best_similarity < self.settings.refusal_threshold
            and not names_found(query, retrieval.passages)
        ):
            text, refused = REFUSAL, True
        elif isinstance(answerer, LLMAnswerer):
            # The standalone query: a follow-up alone ("and drones?") means nothing to the model.
            text, refused = answerer.answer(query, retrieval.passages, on_token, as_of)
        else:
            text, refused = answerer.answer(query, retrieval.passages)
        timings["answer"] = round((time.perf_counter() - t) * 1000, 2)

        t = time.perf_counter()
        sentences, citations = [], []
        if not refused:
            # Extracts are verbatim: a lexical check suffices; LLM prose also gets the embedding.
            checker = self.embedder if isinstance(answerer, LLMAnswerer) else None
            sentences, citations = verify(text, retrieval.passages, checker)
        timings["verify"] = round((time.perf_counter() - t) * 1000, 2)
        timings["total"] = round((time.perf_counter() - started) * 1000, 2)
        answer = Answer(
            question=question,
            text=text,
            refused=refused,
            answerer=answerer.name,
            citations=citations,
            passages=retrieval.passages,
            sentences=sentences,
            query=query,
            note=note,
            timings_ms=timings,
            as_of=as_of,
        )
        if conversation is not None:
            subject = _subject(conversation) if carried else query
            conversation.turns.append(Turn(question, query, answer, subject))
        return answer


def _subject(conversation: Conversation) -> str:
    previous = conversation.turns[-1]
    return previous.subject or previous.query


def to_json(answer: Answer) -> dict[str, Any]:
    """The `rag ask --json` object."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "refused": answer.refused,
        "answerer": answer.answerer,
        "as_of": answer.as_of.isoformat() if answer.as_of else None,
        "citations": [
            {
                "n": c.n,
                "source": c.source,
                "title": c.title,
                "date": c.date,
                "quote": c.quote,
                "supported": c.supported,
            }
            for c in answer.citations
        ],
        "retrieved": [
            {
                "rank": p.rank,
                "source": p.source,
                "title": p.title,
                "date": p.date,
                "score": p.score,
                "chunk_id": p.chunk_id,
            }
            for p in answer.passages
        ],
        "timings_ms": answer.timings_ms,
    }
