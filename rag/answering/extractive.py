"""The offline answerer: pick the retrieved sentences that answer the question, cite each one.

The patterns here read the articles' sentences (a date, a figure, a byline); what the question
asks for comes analysed in the Query (rag/question.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from langchain_core.embeddings import Embeddings

from rag.answering import Answer, OnToken, Pick, selector
from rag.attribution import quotes
from rag.chunking import split_sentences
from rag.lexical import MONTHS, Terms, tokenize
from rag.question import Query
from rag.retrieval import Passage
from rag.settings import Tuning

# A month, spelled out or abbreviated: "sept|jan(uary)?|feb(ruary)?|...|may|...".
_MONTH = "sept|" + "|".join(f"{m[:3]}({m[3:]})?" if len(m) > 3 else m for m in MONTHS)
_DATE = re.compile(
    rf"\b({_MONTH}|monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|"
    r"tomorrow|(last|next|this|earlier this|later this) (week|month|year|spring|summer|fall|"
    r"autumn|winter)|(19|20)\d\d)\b",
    re.I,
)
_DATELINE = re.compile(rf"^\s*({_MONTH})\.?\s+\d{{1,2}},?\s+\d{{4}}\b|^\s*\d{{4}}[-/]\d", re.I)
_BYLINE = re.compile(r"^\s*by\s+[A-Z]", re.I)
NUMBER = re.compile(
    r"\b(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|dozens?|hundreds?|"
    r"thousands?|millions?|billions?|half)\b",
    re.I,
)
NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z'’-]+(?:\s+[A-Z][a-zA-Z'’-]+)*")
_QUOTE = re.compile(r"[\"“”]")

_MONEY = re.compile(
    r"[$€£]\s?\d|\b\d[\d,.]*\s*(?:million |billion )?(?:dollars?|euros?|pounds?|rials?|rubles?|"
    r"roubles?)\b",
    re.I,
)
# A sentence that denies or disputes a claim, or says it is not confirmed.
_DISPUTED = re.compile(
    r"\b(?:den(?:y|ies|ied)|disput(?:e|es|ed)|reject(?:s|ed)?|refut(?:e|es|ed)|"
    r"declined to confirm|yet to (?:confirm|see)|lacks? any evidence|no evidence|"
    r"(?:has|have|had) not)\b",
    re.I,
)

# The best unchosen sentences an answer keeps (Answer.runners_up), for the judgement's margin.
RUNNERS_UP = 3

# Sentences either side of a candidate that count as its surroundings (names_missing, ...).
_NEAR = 1


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate answer sentence and its score (higher is better): the learned selector's
    probability that it answers, or with Tuning.selector "weights" the hand-set weighted mix."""

    passage: Passage
    text: str
    score: float
    cosine: float
    coverage: float
    typed: bool
    near: str = ""  # the sentence with the sentences either side of it (_NEAR)
    # What made the score: the learned ranker's largest feature contributions to its score, or
    # each weighted signal's share of the hand-set score (they add up to it).
    signals: tuple[tuple[str, float], ...] = ()
    features: tuple[tuple[str, float], ...] = ()  # what the learned selector reads
    probability: float | None = None  # the learned selector's P(answers)


def has_type(sentence: str, query: Query) -> bool:
    """Whether the sentence holds the kind of thing the question asks for (a date for "when")."""
    kind, q_words = query.kind, query.words
    if kind == "author":
        return bool(_BYLINE.match(sentence))
    if kind == "published":
        return bool(_DATELINE.match(sentence))
    if kind == "date":
        return bool(_DATE.search(sentence))
    if kind == "money":
        return bool(_MONEY.search(sentence))
    if kind == "number":
        numbers = [n for n in NUMBER.findall(sentence) if n.lower() not in q_words]
        if not numbers or query.counted is None:
            return bool(numbers)
        # "How many drones" is answered by "hundreds of ... drones", not by "hundreds of miles":
        # a figure must come within a few words before the thing counted.
        words = re.findall(r"[\w'’.,$-]+", sentence)
        stems = tokenize(words)
        for i, stem in enumerate(stems):
            if stem and stem[0] == query.counted:
                window = " ".join(words[max(0, i - 5) : i])
                if any(n.lower() not in q_words for n in NUMBER.findall(window)):
                    return True
        return False
    if kind in ("place", "who", "which"):
        return any(n.lower() not in q_words for n in NAME.findall(sentence))
    return True


def _passage_terms(passages: Sequence[Passage]) -> dict[str, frozenset[str]]:
    """Stemmed words of each passage with its title, by chunk id."""
    tokens = tokenize([p.title + " " + p.text for p in passages])
    return {p.chunk_id: frozenset(t) for p, t in zip(passages, tokens, strict=True)}


Candidate = tuple[Passage, str, str]  # passage, sentence, the sentence with its neighbours
Measured = tuple[Passage, str, str, bool, dict[str, float]]  # ... typed, selector.FEATURES


def _candidates(passages: Sequence[Passage]) -> list[Candidate]:
    """Every distinct sentence of the passages that could answer, with its surroundings."""
    seen: set[str] = set()
    candidates = []
    for p in passages:
        spans = split_sentences(p.text)
        # The headline names the story; it is not a sentence of it to quote as an answer.
        headline = " ".join(p.title.lower().split())
        for i, (s, e) in enumerate(spans):
            key = " ".join(p.text[s:e].lower().split())
            if key.rstrip(".") == headline:
                continue
            # A question in the article (a quiz, a rhetorical one) answers nothing.
            if e - s > 12 and key not in seen and not key.rstrip("\"'” ").endswith("?"):
                seen.add(key)
                lo, hi = spans[max(0, i - _NEAR)][0], spans[min(len(spans) - 1, i + _NEAR)][1]
                candidates.append((p, p.text[s:e], p.text[lo:hi]))
    return candidates


def _measure(
    query: Query,
    passages: Sequence[Passage],
    candidates: list[Candidate],
    vectors: list[list[float]],
) -> list[Measured]:
    """Each candidate with whether it holds the kind asked for, and its selector.FEATURES.

    vectors: the asking sentence's embedding, then each candidate's.
    """
    focus = query.focus
    sent_terms = [set(t) for t in tokenize([c[1] for c in candidates])]
    # idf over the candidate sentences: a word every passage shares ("Iran") says little.
    df = {t: sum(1 for s in sent_terms if t in s) for t in focus}
    weight = {t: focus[t] * math.log(1 + len(sent_terms) / (1 + df[t])) for t in focus}
    total = sum(weight.values()) or 1.0

    def share(terms: Iterable[str]) -> float:
        """The focus-weighted share of the question's words among terms."""
        return sum(weight[t] for t in terms if t in weight) / total

    passage_terms = _passage_terms(passages)
    titles = tokenize([p.title for p in passages])
    title_terms = {p.chunk_id: set(t) for p, t in zip(passages, titles, strict=True)}
    near_terms = [Terms.of(t) for t in tokenize([p.title + " " + n for p, _, n in candidates])]
    q_vec, q_words = vectors[0], query.words
    measured = []
    for (passage, text, near), terms, vec, around in zip(
        candidates, sent_terms, vectors[1:], near_terms, strict=True
    ):
        typed = has_type(text, query)
        at = passage.text.find(text)
        features = {
            "cosine": sum(a * b for a, b in zip(q_vec, vec, strict=True)),
            "coverage": share(terms),
            "context": share(passage_terms[passage.chunk_id]),
            "near_coverage": share(around.words),
            "title": share(title_terms[passage.chunk_id]),
            # A sentence that only restates the question tells the reader nothing new.
            "new_words": len(terms - focus.keys()) / max(1, len(terms)),
            "typed": float(bool(query.kind) and typed),
            "untyped": float(bool(query.kind) and not typed),
            "names_missing": float(not around.names_all(query.names)),
            "asked_missing": float(not query.asked_about <= around.words),
            "new_name": float(any(n.lower() not in q_words for n in NAME.findall(text))),
            "new_number": float(any(n.lower() not in q_words for n in NUMBER.findall(text))),
            "inv_rank": 1.0 / passage.rank,
            "passage_similarity": passage.similarity or 0.0,
            "position": max(0, at) / max(1, len(passage.text)),
            "lead": float(passage.start == 0 and at == 0),
            "words": math.log1p(len(text.split())),
            "quoted": float(bool(_QUOTE.search(text))),
        }
        measured.append((passage, text, near, typed, features))
    for gap, of in (
        ("cosine_gap", "cosine"),
        ("coverage_gap", "coverage"),
        ("near_gap", "near_coverage"),
    ):
        best = max(f[of] for *_, f in measured)
        for *_, f in measured:
            f[gap] = f[of] - best
    return measured


def _weighted(w: Tuning, f: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """The hand-set score's signals (Tuning.selector "weights"): they add up to it."""
    cut = w.restated_below
    restated = f["new_words"] < cut
    return (
        ("cosine", w.cosine * f["cosine"]),
        ("coverage", w.coverage * f["coverage"]),
        ("context", w.context * f["context"]),
        ("typed", w.typed * f["typed"]),
        ("restated", -(w.restated * (cut - f["new_words"]) / cut) if restated else 0.0),
        ("rank_prior", w.rank_prior * f["inv_rank"]),
    )


def _neighbour_of_speaker(s: ScoredSentence, share: float) -> ScoredSentence:
    """The sentence scored at `share` of its score: it only neighbours the asked speaker's."""
    score = round(s.score * share, 4)
    return replace(s, score=score, signals=(*s.signals, ("neighbour_of_speaker", score - s.score)))


def _in_text_order(chosen: list[ScoredSentence]) -> list[ScoredSentence]:
    """The chosen sentences best first, but one that directly precedes another in its
    article goes before it ("Iran initially denied ..." before "Tehran later only
    acknowledged ..."): adjacent sentences read as the article has them."""

    def just_before(s: ScoredSentence, t: ScoredSentence) -> bool:
        text = s.passage.text
        a, b = text.find(s.text), text.find(t.text)
        return (
            s.passage.chunk_id == t.passage.chunk_id
            and 0 <= a < b
            and not text[a + len(s.text) : b].strip()
        )

    ordered: list[ScoredSentence] = []
    for s in chosen:
        at = next((i for i, t in enumerate(ordered) if just_before(s, t)), len(ordered))
        ordered.insert(at, s)
    return ordered


class ExtractiveAnswerer:
    """Scores each sentence of the top passages against the question; deterministic."""

    name = "extractive"
    streams = False  # the answer comes whole
    verbatim = True  # its sentences are the articles' own: a lexical citation check suffices
    condense = None  # follow-ups are rewritten by rule (conversation.standalone)

    def __init__(self, embedder: Embeddings, tuning: Tuning | None = None) -> None:
        self.embedder = embedder
        self.tuning = tuning or Tuning()
        # The last ranking: a model's prompt and then the judgement of its answer rank the
        # same passages for the same question.
        self._last: tuple[tuple[object, ...], list[ScoredSentence]] | None = None

    def rank(self, query: Query, passages: Sequence[Passage]) -> list[ScoredSentence]:
        """Every distinct sentence of the passages, best first."""
        key = (query, tuple((p.chunk_id, p.rank, p.text) for p in passages))
        if self._last is not None and self._last[0] == key:
            return list(self._last[1])
        ranked = self._rank(query, passages)
        self._last = (key, ranked)
        return list(ranked)

    def _rank(self, query: Query, passages: Sequence[Passage]) -> list[ScoredSentence]:
        candidates = _candidates(passages)
        if not candidates:
            return []
        # Similarity to the sentence that asks: "Roger Federer will retire after the Laver Cup.
        # Which Grand Slam has he won most?" is answered by a sentence close to the second
        # sentence, not by one that retells the first (its words still count in coverage).
        vectors = self.embedder.embed_documents([query.asking, *(c[1] for c in candidates)])
        measured = _measure(query, passages, candidates, vectors)
        w = self.tuning
        model = selector.load() if w.selector == "learned" else None
        chances = model.probabilities([f for *_, f in measured]) if model else None
        scored = []
        for i, (passage, text, near, typed, f) in enumerate(measured):
            probability = chances[i] if model and chances else None
            if model and probability is not None:
                score = probability
                top = sorted(model.contributions(f).items(), key=lambda kv: -abs(kv[1]))[:5]
                signals = tuple((k, round(v, 4)) for k, v in top)
            else:
                weighted = _weighted(w, f)
                score = sum(v for _, v in weighted)
                signals = tuple((k, round(v, 4)) for k, v in weighted)
            scored.append(
                ScoredSentence(
                    passage,
                    text,
                    round(score, 4),
                    f["cosine"],
                    f["coverage"],
                    typed,
                    near,
                    signals,
                    tuple((k, round(f[k], 4)) for k in selector.FEATURES),
                    None if probability is None else round(probability, 4),
                )  # fmt: skip
            )
        scored.sort(key=lambda s: -s.score)
        return scored

    def for_prompt(self, query: Query, passages: Sequence[Passage]) -> list[ScoredSentence]:
        """Every sentence, those that can answer the query at all first (the answerer's own
        filters: a byline for "who wrote", a date for "when"), each group best first: the order
        a language model's prompt takes sentences in (rag/answering/excerpt.py)."""
        ranked = self.rank(query, passages)
        grounded = self._grounded(query, ranked)
        kept = {(s.passage.chunk_id, s.text) for s in grounded}
        return grounded + [s for s in ranked if (s.passage.chunk_id, s.text) not in kept]

    def reading(self, query: Query, passages: Sequence[Passage]) -> str | None:
        """Nothing to say: the extractive answer takes well under a second."""
        return None

    def answer(
        self, query: Query, passages: Sequence[Passage], on_token: OnToken | None = None
    ) -> Answer:
        """The best sentences with [n] markers, or a refusal when none qualifies."""
        w = self.tuning
        ranked = self._grounded(query, self.rank(query, passages))
        learned = w.selector == "learned"
        floor = selector.load().threshold if learned else w.min_score
        second_ratio = selector.load().second_ratio if learned else w.second_ratio
        if not ranked or ranked[0].score < floor:
            reason = (
                "no sentence of the passages qualifies (see the query's kind, names and speaker)"
                if not ranked
                else f"the best sentence's probability of answering is {ranked[0].score:.3f} < "
                f"the learned threshold {floor:.3f}"
                if learned
                else f"the best sentence scores {ranked[0].score:.3f} < min_score {floor}"
            )
            return Answer.refusal(query, passages, self.name, reason)
        chosen = [ranked[0]]
        for s in ranked[1:]:
            if len(chosen) >= w.max_sentences:
                break
            # A close second, from anywhere: the passage around the matching sentence often
            # holds the fact the question asks for in the next sentence.
            if s.score >= max(floor, ranked[0].score * second_ratio):
                chosen.append(s)
        if query.yes_no and not any(_DISPUTED.search(s.text) for s in chosen):
            # "Did Iran send missiles to Russia?": news reports claims, and a claim somebody
            # denies or nobody has confirmed is answered with both sides.
            floor = ranked[0].score * w.counterclaim_ratio
            counter = next(
                (s for s in ranked if s.score >= floor and _DISPUTED.search(s.text)), None
            )
            if counter is not None:
                chosen.append(counter)
        ordered = _in_text_order(chosen)
        text = " ".join(f"{s.text.strip()} [{s.passage.rank}]" for s in ordered)
        picks = [
            Pick(s.text.strip(), s.passage.rank, s.score, dict(s.signals), s.probability)
            for s in ordered
        ]
        chosen_texts = {s.text for s in chosen}
        runners_up = [
            Pick(s.text.strip(), s.passage.rank, s.score, dict(s.signals), s.probability)
            for s in ranked
            if s.text not in chosen_texts
        ][:RUNNERS_UP]
        return Answer(
            query.text,
            text,
            False,
            self.name,
            [],
            list(passages),
            query=query,
            picks=picks,
            runners_up=runners_up,
        )

    def _grounded(self, query: Query, ranked: list[ScoredSentence]) -> list[ScoredSentence]:
        """The ranked sentences that can answer the query at all, best first.

        A question that wants a figure or a date ("how many", "when") is not answered by a
        sentence without one, nor by a figure about something else: the sentence must share
        enough with the question, and the text around it (a sentence either side) must name the
        question's named things ("the European Union", not just "sanctions"). Any answer's
        surroundings must mention what a "what is the X of" question asks about: "Who is
        Russia's ambassador to Iran?" is not answered by text that names no ambassador, however
        close it is otherwise. "What did Iran say ..." is answered only by a sentence whose
        surroundings report Iran saying something (see attribution.py).
        """
        filters = self.tuning.kind_filters
        if filters is None:
            filters = selector.load().kind_filters if self.tuning.selector == "learned" else True
        if filters:
            kind = query.kind
            if kind in ("date", "number", "money", "author", "published"):
                ranked = [s for s in ranked if s.typed]
            if kind in ("date", "number", "money"):
                ranked = [
                    s
                    for s in ranked
                    if s.coverage >= self.tuning.typed_min_coverage
                    and not dict(s.features)["names_missing"]
                ]
            # Checked near the sentence, not across the whole passage: a passage of several
            # chunks can name "the UN Security Council" paragraphs away from a date about
            # something else.
            ranked = [s for s in ranked if not dict(s.features)["asked_missing"]]
        speaker = query.speaker
        if speaker:
            ranked = [s for s in ranked if quotes(speaker, s.near or s.text)]
            # A quote runs on across sentences, so a sentence next to the one naming the
            # speaker may be theirs; but one naming them itself comes first on a near-tie
            # ("Podolyak threatened war with Iran" is not Iran's, the sentence after it is).
            own = self.tuning.own_speaker
            ranked = sorted(
                (s if quotes(speaker, s.text) else _neighbour_of_speaker(s, own) for s in ranked),
                key=lambda s: -s.score,
            )
        return ranked
