"""Hybrid search: dense (Chroma) + BM25, score fusion, near-duplicate collapse, dates."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from langchain_core.embeddings import Embeddings

from rag.attribution import quotes
from rag.lexical import LexicalIndex
from rag.question import Query
from rag.settings import Settings, Tuning
from rag.store import MANIFEST, ChunkStore, Generations, IndexMissing, Manifest, StoredChunk


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its neighbouring chunks (Settings.context_chunks) as one text.

    start/end are the text's character span in the article; `score` is the matching chunk's
    fused score (higher is better, see Settings.fusion).
    """

    rank: int
    chunk_id: str
    text: str
    source: str
    title: str
    date: str | None
    start: int
    end: int
    score: float
    similarity: float | None = None  # cosine similarity to the query (higher is closer)
    bm25: float | None = None  # BM25 score (higher is better, unbounded)
    url: str | None = None
    publisher: str | None = None
    corroborated_by: tuple[str, ...] = ()


@dataclass
class Hit:
    """A kept chunk on its way to becoming a Passage: its fused score (higher is better), and
    the other articles that repeat it (wire copy)."""

    chunk: StoredChunk
    score: float
    corroborated_by: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return str(self.chunk.metadata.get("source", ""))

    @property
    def ordinal(self) -> int:
        return _ordinal(self.chunk)


@dataclass
class Retrieval:
    """The passages for one query, and how sure the dense side was about any of them."""

    query: str
    passages: list[Passage]
    best_similarity: float
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Articles among the candidates that were left out for being published after as_of.
    too_new: tuple[str, ...] = ()


_WORDS = re.compile(r"[a-z0-9]+")


class Retriever:
    """Searches the live index generation; open once, query many times."""

    def __init__(self, settings: Settings, embedder: Embeddings) -> None:
        gen = Generations(settings.index_dir).current()
        if gen is None:
            raise IndexMissing.nowhere(settings.index_dir)
        self.index_dir = settings.index_dir
        self.generation: Path = gen
        self.store = ChunkStore(settings, gen)
        self.lexical = LexicalIndex(gen)
        self.embedder = embedder
        self._manifest: Manifest | None = None  # read on first need: most questions never need it

    def search(self, query: Query, settings: Settings) -> Retrieval:
        """The top settings.k passages for query, fused, deduplicated and date-aware.

        settings.as_of: leave out articles published after that day, and read "this week" /
        "latest" relative to it. A question asking what somebody said (query.speaker) needs one
        passage that reports them: the best candidate that does is among the passages, in the
        place of the last one that does not.
        """
        k, as_of, tuning = settings.k, settings.as_of, settings.tuning
        n = max(settings.candidates, k * tuning.candidate_factor)
        if as_of:
            n *= tuning.as_of_candidate_factor  # some candidates will be too new
        timings: dict[str, float] = {}

        t = time.perf_counter()
        vector = self.embedder.embed_query(query.text)
        timings["embed"] = _ms(t)
        t = time.perf_counter()
        dense = self.store.query(vector, n)
        timings["dense"] = _ms(t)
        if not dense:
            raise IndexMissing.empty(self.index_dir)
        t = time.perf_counter()
        lexical = self.lexical.search(query.text, n)
        timings["bm25"] = _ms(t)

        t = time.perf_counter()
        similarity = {c.id: 1.0 - c.distance for c in dense if c.distance is not None}
        bm25 = {h.id: h.score for h in lexical}
        lexical_only = [h.id for h in lexical if h.id not in similarity]
        similarity.update(self.store.similarities(lexical_only, vector))
        fused = _fuse(settings, dense, lexical, similarity)
        chunks = {c.id: c for c in dense}
        missing = [cid for cid, _ in fused if cid not in chunks]
        chunks.update((c.id, c) for c in self.store.get(missing))
        ordered = [(chunks[cid], score) for cid, score in fused if cid in chunks]
        later: dict[str, str] = {}  # chunk id -> article, for chunks published after as_of
        if as_of:
            later = {
                c.id: c.metadata.get("source", "") for c, _ in ordered if _published_after(c, as_of)
            }
            ordered = [(c, s) for c, s in ordered if c.id not in later]
            dense = [c for c in dense if c.id not in later]  # dense is a subset of ordered
        if query.recency:
            ordered = _prefer_recent(ordered, tuning, as_of)
        window = settings.context_chunks
        hits = collapse(ordered, k, settings.max_per_article, window, tuning.near_duplicate)
        if query.speaker is not None:
            speaker = query.speaker
            hits = _with_wanted(hits, ordered, lambda text: quotes(speaker, text), window)
        if hits and query.about_article:
            hits = self._with_lead(hits, k, window)
        timings["fuse"] = _ms(t)
        context: dict[str, list[StoredChunk]] = {}
        if window:
            t = time.perf_counter()
            context = self._neighbours(hits, window)
            timings["context"] = _ms(t)
        passages = [
            _passage(rank, hit, context.get(hit.chunk.id, []), similarity, bm25)
            for rank, hit in enumerate(hits, start=1)
        ]
        best = max((1.0 - c.distance for c in dense if c.distance is not None), default=0.0)
        return Retrieval(query.text, passages, best, timings, tuple(dict.fromkeys(later.values())))

    def _with_lead(self, hits: list[Hit], k: int, window: int) -> list[Hit]:
        """The hits with the best article's first chunk in the last slot, if not there."""
        source = hits[0].source
        # Shown already, as a passage or as the context of one (see _neighbours).
        if any(h.source == source and h.ordinal <= window for h in hits):
            return hits
        lead = self._lead(source)
        if lead is None:
            return hits
        last = hits[-1] if len(hits) >= k else None
        kept = [h for h in hits if h is not last]
        return [*kept, Hit(lead, last.score if last else 0.0)]

    def _neighbours(self, hits: list[Hit], window: int) -> dict[str, list[StoredChunk]]:
        """Up to `window` neighbouring chunks of each hit's article on either side, by hit id.

        Chunks are small so that each vector stays precise; the answer to a question often sits
        a sentence or two past the one that matches it, so the reader (and the answerer) gets
        the surrounding text. A neighbour already shown with a better passage is not repeated.
        Neighbours are looked up by the ids each chunk records (one round trip per step out).
        """
        shown: dict[str, set[int]] = {}
        for h in hits:
            shown.setdefault(h.source, set()).add(h.ordinal)
        context: dict[str, list[StoredChunk]] = {h.chunk.id: [] for h in hits}
        edges = {
            h.chunk.id: [
                (h.chunk.metadata.get("prev_id"), -1),
                (h.chunk.metadata.get("next_id"), 1),
            ]
            for h in hits
        }
        for _ in range(window):
            wanted = {cid for pairs in edges.values() for cid, _ in pairs if cid}
            if not wanted:
                break
            found = {c.id: c for c in self.store.get(sorted(wanted))}
            for h in hits:
                step = []
                for cid, side in edges[h.chunk.id]:
                    chunk = found.get(cid) if cid else None
                    if chunk is None or _ordinal(chunk) in shown[h.source]:
                        continue
                    shown[h.source].add(_ordinal(chunk))
                    context[h.chunk.id].append(chunk)
                    key = "prev_id" if side < 0 else "next_id"
                    step.append((chunk.metadata.get(key), side))
                edges[h.chunk.id] = step
        return context

    def _lead(self, source: str) -> StoredChunk | None:
        """The first chunk of an article, by the manifest's chunk list (in article order)."""
        if self._manifest is None:
            self._manifest = Manifest.load(self.generation / MANIFEST) or Manifest({})
        entry = self._manifest.articles.get(source)
        found = self.store.get(entry.chunks[:1]) if entry else []
        return found[0] if found else None


def _fuse(
    settings: Settings, dense: list[StoredChunk], lexical: list, similarity: dict[str, float]
) -> list[tuple[str, float]]:
    """Rank the union of both candidate lists; the fused score is higher-is-better.

    "scores" adds the cosine similarity and the BM25 score scaled by the best BM25 score;
    "rrf" is plain reciprocal rank fusion, kept to compare against (see Settings.fusion).
    """
    s = settings
    scores: dict[str, float] = {}
    if s.fusion == "rrf":
        for rank, c in enumerate(dense):
            scores[c.id] = scores.get(c.id, 0.0) + s.dense_weight / (s.rrf_k + rank + 1)
        for rank, h in enumerate(lexical):
            scores[h.id] = scores.get(h.id, 0.0) + s.lexical_weight / (s.rrf_k + rank + 1)
    else:
        top = max((h.score for h in lexical), default=0.0) or 1.0
        bm25 = {h.id: h.score / top for h in lexical}
        for cid in dict.fromkeys([c.id for c in dense] + [h.id for h in lexical]):
            scores[cid] = s.dense_weight * similarity.get(cid, 0.0) + s.lexical_weight * bm25.get(
                cid, 0.0
            )
    return sorted(scores.items(), key=lambda kv: -kv[1])


def _ordinal(chunk: StoredChunk) -> int:
    """The chunk's position in its article (-1 when not recorded)."""
    return int(chunk.metadata.get("ordinal", -1))


def _chunk_date(chunk: StoredChunk) -> date | None:
    try:
        return date.fromisoformat(chunk.metadata.get("date") or "")
    except ValueError:
        return None


def _published_after(chunk: StoredChunk, as_of: date) -> bool:
    """Whether the chunk's article is dated after as_of (an undated article is not)."""
    published = _chunk_date(chunk)
    return published is not None and published > as_of


def _prefer_recent(
    ordered: list[tuple[StoredChunk, float]], tuning: Tuning, as_of: date | None = None
) -> list[tuple[StoredChunk, float]]:
    """For 'latest'/'this week' questions, let recent articles win near-ties in the fused score.

    Recent means close before as_of when it is given, else the newest among the candidates.
    """
    if as_of:

        def recency(chunk: StoredChunk) -> float:
            published = _chunk_date(chunk)
            if published is None or published > as_of:
                return 0.0
            # How fast "recent" fades: an article recency_half_life_days older than the as-of
            # day gets half the lift of one published that day.
            return 0.5 ** ((as_of - published).days / tuning.recency_half_life_days)

    else:
        dates = sorted({c.metadata.get("date") for c, _ in ordered if c.metadata.get("date")})
        if len(dates) < 2:
            return ordered
        position = {d: i / (len(dates) - 1) for i, d in enumerate(dates)}

        def recency(chunk: StoredChunk) -> float:
            return position.get(chunk.metadata.get("date"), 0.0)

    top = ordered[0][1] if ordered else 1.0

    def boosted(item: tuple[StoredChunk, float]) -> float:
        chunk, score = item
        # Up to a 15% lift (recency_lift) of the best score for the most recent article:
        # enough to reorder near-equals, not to surface an irrelevant recent passage.
        return score + tuning.recency_lift * top * recency(chunk)

    return sorted(ordered, key=boosted, reverse=True)


def _stitch(chunks: list[StoredChunk]) -> tuple[str, int, int]:
    """(text, start, end) of chunks of one article joined in article order, overlaps removed.

    The text is exactly the article's text between the first chunk's start and the last
    chunk's end: chunks overlap by a sentence or so, and a gap between two is the whitespace
    the indexer recorded after the earlier one ("tail").
    """
    pieces = sorted(
        (
            int(c.metadata.get("start", 0)),
            int(c.metadata.get("end", 0)),
            c.text,
            str(c.metadata.get("tail", "")),
        )
        for c in chunks
    )
    start, end, text, tail = pieces[0]
    for s, e, t, next_tail in pieces[1:]:
        if e <= end:
            continue
        if s < end:
            text += t[end - s :]
        else:
            gap = s - end
            text += tail[:gap].ljust(gap) + t
        end, tail = e, next_tail
    return text, start, end


def _passage(
    rank: int,
    hit: Hit,
    neighbours: list[StoredChunk],
    similarity: dict[str, float],
    bm25: dict[str, float],
) -> Passage:
    """The Passage for a hit: its chunk joined with its neighbours, and where it came from."""
    c = hit.chunk
    text, start, end = _stitch([c, *neighbours])
    return Passage(
        rank=rank,
        chunk_id=c.id,
        text=text,
        source=hit.source,
        title=c.metadata.get("title", ""),
        date=c.metadata.get("date"),
        start=start,
        end=end,
        score=round(hit.score, 6),
        similarity=round(similarity[c.id], 4) if c.id in similarity else None,
        bm25=round(bm25[c.id], 4) if c.id in bm25 else None,
        url=c.metadata.get("url"),
        publisher=c.metadata.get("publisher"),
        corroborated_by=tuple(hit.corroborated_by),
    )


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORDS.findall(text.lower())
    return set(zip(words, words[1:], words[2:], strict=False)) or {tuple(words)}


def collapse(
    ordered: list[tuple[StoredChunk, float]],
    k: int,
    max_per_article: int,
    window: int = 0,
    near_duplicate: float = 0.5,
) -> list[Hit]:
    """Keep the first of near-duplicate passages (word 3-gram containment >= near_duplicate;
    see Tuning), and at most
    max_per_article passages of one article. A chunk within `window` chunks of a kept chunk of
    its article takes no slot: it is shown as that passage's context (see
    Retriever._neighbours).

    Wire copy is republished by many outlets: a repeated paragraph is noted as corroboration
    from the other article instead of taking a second slot.
    """
    kept: list[Hit] = []
    grams_of: list[set[tuple[str, ...]]] = []
    per_article: dict[str, int] = {}
    for chunk, score in ordered:
        hit, grams = Hit(chunk, score), _shingles(chunk.text)
        duplicate_of = next(
            (
                other
                for other, seen in zip(kept, grams_of, strict=True)
                if len(grams & seen) / max(1, min(len(grams), len(seen))) >= near_duplicate
            ),
            None,
        )
        if duplicate_of is not None:
            if hit.source != duplicate_of.source and hit.source not in duplicate_of.corroborated_by:
                duplicate_of.corroborated_by.append(hit.source)
            continue
        if window and any(
            h.source == hit.source and abs(h.ordinal - hit.ordinal) <= window for h in kept
        ):
            continue
        if len(kept) < k and per_article.get(hit.source, 0) < max_per_article:
            per_article[hit.source] = per_article.get(hit.source, 0) + 1
            kept.append(hit)
            grams_of.append(grams)
    return kept


def _with_wanted(
    hits: list[Hit],
    ordered: list[tuple[StoredChunk, float]],
    wanted: Callable[[str], bool],
    window: int,
) -> list[Hit]:
    """The hits with the best candidate passing `wanted` among them, if it is not already
    shown (as a hit or as a hit's context); it replaces the last hit that does not pass.

    "What did Iran say about the missiles?": the per-article cap or a better-matching
    paragraph of the same article can crowd out the one paragraph that reports Iran's words.
    """
    best = next(((c, s) for c, s in ordered if wanted(c.text)), None)
    if best is None:
        return hits
    chunk, score = best
    source = str(chunk.metadata.get("source", ""))
    if any(h.source == source and abs(h.ordinal - _ordinal(chunk)) <= window for h in hits):
        return hits
    replaceable = [i for i, h in enumerate(hits) if not wanted(h.chunk.text)]
    if not replaceable:
        return hits
    kept = [h for i, h in enumerate(hits) if i != replaceable[-1]]
    return sorted([*kept, Hit(chunk, score)], key=lambda h: -h.score)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
