"""Article -> Chunks: whole sentences packed to a word-piece budget, with overlap and offsets."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.articles import Article
from rag.lexical import MONTHS

# Counts word pieces for a batch of texts (no special tokens). The real one is the embedding
# model's own tokenizer (see embedding.token_counter), so the budget is exact, not estimated.
TokenCounter = Callable[[Sequence[str]], list[int]]

# Special tokens ([CLS], [SEP]) the model adds around every input.
SPECIAL_TOKENS = 2


@dataclass(frozen=True)
class Chunk:
    """A passage of one article: text[start:end] of the article body, plus what it's about."""

    id: str
    article: str
    ordinal: int
    text: str
    start: int
    end: int
    header: str

    @property
    def embed_text(self) -> str:
        """What gets embedded: the contextual header (title, date) then the passage."""
        return self.header + self.text

    @property
    def embed_hash(self) -> str:
        """Identifies the embedded text, so unchanged chunks can reuse their vectors."""
        return hashlib.sha256(self.embed_text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class ChunkingConfig:
    """The chunking knobs that change what gets embedded (part of the index fingerprint)."""

    chunk_tokens: int = 160
    overlap_tokens: int = 40
    max_seq_length: int = 256


# Regex sentence splitting rather than nltk/spaCy: those need model downloads at run time, and
# we need exact character offsets, which LangChain's splitters only approximate.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "gen", "lt", "col", "sgt", "capt", "cmdr",
    "adm", "sen", "rep", "gov", "pres", "sec", "amb", "rev", "hon", "no", "vs", "etc", "inc",
    "ltd", "co", "corp", "sept", "u.s", "u.k", "u.n", "e.u", "a.m", "p.m", "d.c", "approx",
    "est", "fig",
}  # fmt: skip
# "Jan." abbreviates a month; "May." ends a sentence.
_ABBREVIATIONS |= {m[:3] for m in MONTHS if len(m) > 3}
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])|\n\s*\n|\n")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences in text, whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        if m.group(0)[0] in ".!?" and _is_abbreviation(text, m.start()):
            continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    trimmed = []
    for s, e in spans:
        piece = text[s:e]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if e - trail > s + lead:
            trimmed.append((s + lead, e - trail))
    return trimmed


def _is_abbreviation(text: str, dot: int) -> bool:
    word = re.search(r"([\w.]+)$", text[max(0, dot - 12) : dot])
    if not word:
        return False
    token = word.group(1).lower()
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def make_header(article: Article, title: str | None = None) -> str:
    """The contextual header embedded with every chunk, so a chunk says what it is about."""
    parts = [article.title if title is None else title]
    if article.date:
        parts.append(f"Published {article.date}")
    return " | ".join(parts) + "\n"


def chunk_article(
    article: Article, count: TokenCounter, config: ChunkingConfig, max_chunks: int | None = None
) -> list[Chunk]:
    """Pack whole sentences into chunks of at most chunk_tokens word pieces, overlapping.

    max_chunks: stop after that many (the article's start); only the sentences those chunks
    need are tokenized, so capping a huge file costs what its first chunks cost.
    """
    header = make_header(article)
    header_tokens = count([header])[0]
    limit = config.max_seq_length - SPECIAL_TOKENS
    if header_tokens > limit // 3:
        # Shorten the title, not the date: "when" questions and recency need the date.
        rest = count([make_header(article, "")])[0]
        title = _truncate_words(article.title, count, limit // 3 - rest).rstrip("\n")
        header = make_header(article, title)
        header_tokens = count([header])[0]
    budget = max(16, min(config.chunk_tokens, limit - header_tokens))

    text = article.text
    units = _Units(text, split_sentences(text), count, budget)
    chunks: list[Chunk] = []
    i = 0
    while units.has(i) and (max_chunks is None or len(chunks) < max_chunks):
        j, used = i, 0
        while units.has(j) and (j == i or used + units[j][2] <= budget):
            used += units[j][2]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        chunks.append(_make_chunk(article, len(chunks), text[start:end], start, end, header))
        if not units.has(j):
            break
        # Step back over trailing sentences worth at most overlap_tokens, always moving forward.
        back, overlap = j, 0
        while back - 1 > i and overlap + units[back - 1][2] <= config.overlap_tokens:
            back -= 1
            overlap += units[back][2]
        i = back
    return chunks


class _Units:
    """The sentences of a text as (start, end, tokens), counted a block at a time as the
    packing reaches them (the same units _units gives for the whole text at once)."""

    _BLOCK = 256

    def __init__(
        self, text: str, spans: list[tuple[int, int]], count: TokenCounter, budget: int
    ) -> None:
        self.text, self.spans, self.count, self.budget = text, spans, count, budget
        self.items: list[tuple[int, int, int]] = []
        self.counted = 0

    def has(self, j: int) -> bool:
        """Whether there is a unit j (counting sentences up to it if needed)."""
        while j >= len(self.items) and self.counted < len(self.spans):
            block = self.spans[self.counted : self.counted + self._BLOCK]
            self.counted += len(block)
            self.items.extend(_units(self.text, block, self.count, self.budget))
        return j < len(self.items)

    def __getitem__(self, j: int) -> tuple[int, int, int]:
        return self.items[j]


def _units(
    text: str, spans: list[tuple[int, int]], count: TokenCounter, budget: int
) -> list[tuple[int, int, int]]:
    """Sentences as (start, end, tokens); a sentence over budget is cut at word boundaries."""
    sizes = count([text[s:e] for s, e in spans]) if spans else []
    units: list[tuple[int, int, int]] = []
    for (s, e), n in zip(spans, sizes, strict=True):
        if n <= budget:
            units.append((s, e, n))
        else:
            units.extend(_split_long(text, s, e, count, budget))
    return units


def _split_long(
    text: str, start: int, end: int, count: TokenCounter, budget: int
) -> list[tuple[int, int, int]]:
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    sizes = count([text[s:e] for s, e in words])
    pieces: list[tuple[int, int, int]] = []
    i = 0
    while i < len(words):
        j, used = i, 0
        while j < len(words) and (j == i or used + sizes[j] <= budget):
            used += sizes[j]
            j += 1
        if used > budget:  # a single "word" longer than the budget: cut by characters
            s, e = words[i]
            step = max(1, (e - s) * budget // used)
            pieces.extend((p, min(p + step, e), budget) for p in range(s, e, step))
        else:
            pieces.append((words[i][0], words[j - 1][1], used))
        i = j
    return pieces


def _truncate_words(header: str, count: TokenCounter, max_tokens: int) -> str:
    words = header.split()
    while words and count([" ".join(words)])[0] > max_tokens - 1:
        words.pop()
    return " ".join(words) + "\n"


def _make_chunk(article: Article, ordinal: int, text: str, start: int, end: int, header: str):
    path_key = hashlib.sha1(article.path.encode()).hexdigest()[:10]
    text_key = hashlib.sha1(text.encode()).hexdigest()[:10]
    return Chunk(
        id=f"{path_key}-{ordinal:04d}-{text_key}",
        article=article.path,
        ordinal=ordinal,
        text=text,
        start=start,
        end=end,
        header=header,
    )
