"""A conversation's turns, and follow-up questions made standalone against them."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.answering import Answer, Condense
from rag.question import ask_of, is_follow_up, subject_of, without_connective


@dataclass
class Turn:
    """One exchange of a conversation, kept for follow-up questions."""

    question: str
    query: str  # the standalone question that was searched
    answer: Answer
    # The standalone question this turn follows up (its own query when it is standalone):
    # follow-ups carry it, so a long chat never chains every earlier question into the query.
    subject: str = ""


@dataclass
class Conversation:
    """The turns so far; follow-ups are rewritten against them."""

    turns: list[Turn] = field(default_factory=list)

    @property
    def subject(self) -> str:
        """What the conversation is about now: the last turn's subject."""
        previous = self.turns[-1]
        return previous.subject or previous.query

    def record(self, question: str, query: str, answer: Answer, carried: bool) -> None:
        """Add a turn; a follow-up that carried the subject keeps it as its own."""
        subject = self.subject if carried and self.turns else query
        self.turns.append(Turn(question, query, answer, subject))


def standalone(
    question: str, conversation: Conversation | None, condense: Condense | None = None
) -> tuple[str, bool]:
    """(a standalone question for a follow-up, whether it carries the previous subject).

    condense, when given (an LLM's), rewrites the follow-up from the transcript; otherwise the
    rule below does.
    """
    if not conversation or not conversation.turns:
        return question, False
    if condense is not None:
        history = [(t.question, t.answer.text) for t in conversation.turns]
        return condense(history, question), False
    # A longer question without a follow-up word ("Who is John Kirby?") is standalone: carrying
    # the last subject into it would answer an off-topic question instead of refusing it.
    if not is_follow_up(question):
        return question, False
    # "What did Kirby say about it?", then "And Iran?": the same question, asked of Iran.
    asked_again = ask_of(conversation.subject, question)
    if asked_again:
        return asked_again, False
    # Carry the previous turn's subject into this one, after the follow-up: the extractive
    # answerer reads the kind of answer wanted ("when ...") from the start. The subject loses
    # its own question words, so the follow-up alone says what is asked ("when"), and the
    # subject only says what it is about (the drone factory).
    follow_up = without_connective(question)
    subject = subject_of(conversation.subject)
    return (f"{follow_up}; {subject}", True) if subject else (follow_up, False)
