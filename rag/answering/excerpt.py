"""The passages as a model is shown them: the sentences that bear on the question, in budget.

Reading the prompt is most of a local model's answer time (bench/LOCAL_LLM.md), and five
passages, each joined with its neighbouring chunks, run to 1,700-2,400 tokens. The extractive
answerer already ranks every sentence of those passages by how likely it answers; a prompt of
the best of them, each with the sentence either side, says as much in a fraction of the tokens.
The passages keep their numbers, titles and dates, and every sentence shown is the passage's
own text, so the model's citations are checked against the whole passages as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

from rag.chunking import split_sentences
from rag.retrieval import Passage

TokenCounter = Callable[[Sequence[str]], list[int]]
# Marks text left out between (or before, or after) the sentences shown.
GAP = "…"


class Ranked(Protocol):
    """A sentence of a passage as the extractive answerer ranks them (its ScoredSentence)."""

    @property
    def passage(self) -> Passage: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Excerpt:
    """The numbered passages for the prompt, and what went into them."""

    text: str
    tokens: int  # by the counter given (the embedding model's word pieces in rag)
    whole: bool  # the passages are shown whole (they fit the budget)


def header(p: Passage) -> str:
    """A passage's first line in the prompt: its number, title and date."""
    dated = f", {p.date}" if p.date else ""
    return f"[{p.rank}] {p.title}{dated}"


def whole(passages: Sequence[Passage]) -> str:
    """Numbered passages for the prompt, each whole, with its article title and date."""
    return "\n\n".join(f"{header(p)}\n{p.text.strip()}" for p in passages)


def excerpt(
    ranked: Sequence[Ranked],
    passages: Sequence[Passage],
    budget: int,
    count: TokenCounter,
    around: int = 1,
) -> Excerpt:
    """The best-ranked sentences, each with `around` sentences either side, shown in article
    order under their passage's number, until the next would pass `budget` tokens.

    The best sentence and its neighbours are always shown, whatever the budget. Passages whose
    sentences all fit are shown whole, as `whole` would.
    """
    spans = {p.chunk_id: split_sentences(p.text) for p in passages}
    texts = {p.chunk_id: [p.text[s:e] for s, e in spans[p.chunk_id]] for p in passages}
    # A paragraph break after each sentence stays a line break (it may be all that ends it).
    breaks = {
        p.chunk_id: ["\n" in p.text[a[1] : b[0]] for a, b in pairwise(spans[p.chunk_id])]
        for p in passages
    }
    flat = [t for p in passages for t in texts[p.chunk_id]]
    heads = [header(p) for p in passages]
    sizes = iter(count([*heads, *flat]))
    head_tokens = {p.chunk_id: next(sizes) for p in passages}
    tokens = {p.chunk_id: [next(sizes) for _ in texts[p.chunk_id]] for p in passages}
    total_whole = sum(head_tokens.values()) + sum(sum(t) for t in tokens.values())
    if total_whole <= budget:
        return Excerpt(whole(passages), total_whole, True)

    chosen: dict[str, set[int]] = {}
    used = 0
    for r in ranked:
        cid = r.passage.chunk_id
        if cid not in texts:
            continue
        at = _index(texts[cid], r.text)
        if at is None:
            continue
        last = len(texts[cid]) - 1
        want = set(range(max(0, at - around), min(last, at + around) + 1))
        new = want - chosen.get(cid, set())
        if not new:
            continue
        cost = sum(tokens[cid][i] for i in new) + (0 if cid in chosen else head_tokens[cid])
        if chosen and used + cost > budget:
            continue  # a later, shorter one may still fit
        chosen.setdefault(cid, set()).update(new)
        used += cost
    blocks = []
    for p in passages:
        if p.chunk_id in chosen:
            shown = _joined(texts[p.chunk_id], breaks[p.chunk_id], chosen[p.chunk_id])
            blocks.append(f"{header(p)}\n{shown}")
    return Excerpt("\n\n".join(blocks), used, False)


def _index(sentences: list[str], text: str) -> int | None:
    """Where the ranked sentence is among the passage's (the answerer quotes them exactly)."""
    stripped = text.strip()
    for i, s in enumerate(sentences):
        if s.strip() == stripped:
            return i
    return None


def _joined(sentences: list[str], breaks: list[bool], chosen: set[int]) -> str:
    """The chosen sentences in order, text left out marked GAP; adjacent sentences are joined
    by a space, or by a line break where the article starts a paragraph."""
    parts: list[str] = []
    previous: int | None = None
    for i in sorted(chosen):
        if previous is None:
            parts.append(f"{GAP} " if i > 0 else "")
        elif i != previous + 1:
            parts.append(f" {GAP} ")
        else:
            parts.append("\n" if breaks[previous] else " ")
        parts.append(sentences[i].strip())
        previous = i
    if previous is not None and previous < len(sentences) - 1:
        parts.append(f" {GAP}")
    return "".join(parts)
