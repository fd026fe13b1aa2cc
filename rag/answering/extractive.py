"""The offline answerer: pick the retrieved sentences that answer the question, cite each one."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from rag.answering import REFUSAL
from rag.chunking import split_sentences
from rag.lexical import tokenize
from rag.retrieval import Passage

_DATE = re.compile(
    r"\b(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sept?(ember)?|"
    r"oct(ober)?|nov(ember)?|dec(ember)?|monday|tuesday|wednesday|thursday|friday|saturday|"
    r"sunday|yesterday|today|tomorrow|(last|next|this|earlier this|later this) "
    r"(week|month|year|spring|summer|fall|autumn|winter)|(19|20)\d\d)\b",
    re.I,
)
_NUMBER = re.compile(
    r"\b(\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|dozens?|hundreds?|"
    r"thousands?|millions?|billions?)\b",
    re.I,
)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z'’-]+(?:\s+[A-Z][a-zA-Z'’-]+)*")

_TYPES = (
    (
        "date",
        re.compile(r"^\s*(when\b|what (date|day|year|month|time)\b|on what (date|day))", re.I),
    ),
    (
        "number",
        re.compile(r"\b(how (many|much|far|long|old)|what (percentage|number|share))\b", re.I),
    ),
    ("place", re.compile(r"^\s*(where\b|in what (city|country|region|place)|from where)", re.I)),
    (
        "who",
        re.compile(r"^\s*(who|whom|whose)\b|\bwhich (official|person|country|agency|leader)", re.I),
    ),
)


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate answer sentence; score is a weighted mix in [0, ~1] (higher is better)."""

    passage: Passage
    text: str
    score: float
    coverage: float
    typed: bool


def question_type(question: str) -> str | None:
    """'date', 'number', 'place', 'who' or None: what shape of answer the question wants."""
    for name, pattern in _TYPES:
        if pattern.search(question):
            return name
    return None


def _has_type(sentence: str, kind: str | None, question_words: set[str]) -> bool:
    if kind == "date":
        return bool(_DATE.search(sentence))
    if kind == "number":
        return bool(_NUMBER.search(sentence))
    if kind in ("place", "who"):
        names = _NAME.findall(sentence)
        return any(n.lower() not in question_words for n in names)
    return True


class ExtractiveAnswerer:
    """Scores each sentence of the top passages against the question; deterministic."""

    name = "extractive"

    def __init__(self, embedder: Embeddings, max_sentences: int = 2, min_score: float = 0.35):
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.min_score = min_score

    def rank(self, question: str, passages: list[Passage]) -> list[ScoredSentence]:
        """Every sentence of the passages, best first."""
        candidates = [
            (p, p.text[s:e]) for p in passages for s, e in split_sentences(p.text) if e - s > 20
        ]
        if not candidates:
            return []
        texts = [c[1] for c in candidates]
        tokens = tokenize([question, *texts])
        q_terms, sent_terms = set(tokens[0]), [set(t) for t in tokens[1:]]
        # idf over the candidate sentences: a word every passage shares ("Iran") says little.
        df = {t: sum(1 for s in sent_terms if t in s) for t in q_terms}
        idf = {t: math.log(1 + len(sent_terms) / (1 + df[t])) for t in q_terms}
        total = sum(idf.values()) or 1.0
        passage_terms = {p.chunk_id: set(tokenize([p.title + " " + p.text])[0]) for p in passages}

        vectors = self.embedder.embed_documents([question, *texts])
        q_vec = vectors[0]
        kind = question_type(question)
        q_words = {w.lower() for w in re.findall(r"[A-Za-z'’-]+", question)}

        scored = []
        for (passage, text), terms, vec in zip(candidates, sent_terms, vectors[1:], strict=True):
            coverage = sum(idf[t] for t in q_terms & terms) / total
            context = sum(idf[t] for t in q_terms & passage_terms[passage.chunk_id]) / total
            novel = len(terms - q_terms) > 0
            typed = _has_type(text, kind, q_words)
            cosine = sum(a * b for a, b in zip(q_vec, vec, strict=True))
            score = (
                0.45 * cosine
                + 0.30 * coverage
                + 0.10 * context
                + (0.10 if typed and kind else 0.0)
                + (0.0 if novel else -0.2)
                + 0.05 / passage.rank
            )
            scored.append(ScoredSentence(passage, text, round(score, 4), coverage, typed))
        scored.sort(key=lambda s: -s.score)
        return scored

    def answer(self, question: str, passages: list[Passage]) -> tuple[str, bool]:
        """(answer text with [n] markers, refused)."""
        ranked = self.rank(question, passages)
        kind = question_type(question)
        if kind in ("date", "number"):
            # A "how many"/"when" question answered by a sentence with no figure or date is
            # not answered at all: prefer the best typed sentence, refuse if there is none close.
            typed = [s for s in ranked if s.typed]
            ranked = typed if typed and typed[0].score >= ranked[0].score - 0.15 else []
        if not ranked or ranked[0].score < self.min_score:
            return REFUSAL, True
        chosen = [ranked[0]]
        for s in ranked[1:]:
            if len(chosen) >= self.max_sentences:
                break
            if (
                s.score >= ranked[0].score * 0.9
                and s.passage.chunk_id != chosen[0].passage.chunk_id
            ):
                chosen.append(s)
        text = " ".join(f"{s.text.strip()} [{s.passage.rank}]" for s in chosen)
        return text, False
