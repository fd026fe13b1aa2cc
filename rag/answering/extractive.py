"""The offline answerer: pick the retrieved sentences that answer the question, cite each one."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from langchain_core.embeddings import Embeddings

from rag.answering import REFUSAL
from rag.answering.attribution import asked_speaker, quotes
from rag.chunking import split_sentences
from rag.lexical import same_name, tokenize
from rag.retrieval import Passage

_MONTH = (
    r"jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sept?(ember)?|"
    r"oct(ober)?|nov(ember)?|dec(ember)?"
)
_DATE = re.compile(
    rf"\b({_MONTH}|monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|"
    r"tomorrow|(last|next|this|earlier this|later this) (week|month|year|spring|summer|fall|"
    r"autumn|winter)|(19|20)\d\d)\b",
    re.I,
)
_DATELINE = re.compile(rf"^\s*({_MONTH})\.?\s+\d{{1,2}},?\s+\d{{4}}\b|^\s*\d{{4}}[-/]\d", re.I)
_BYLINE = re.compile(r"^\s*by\s+[A-Z]", re.I)
_NUMBER = re.compile(
    r"\b(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|dozens?|hundreds?|"
    r"thousands?|millions?|billions?|half)\b",
    re.I,
)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z'’-]+(?:\s+[A-Z][a-zA-Z'’-]+)*")

# What shape of answer a question wants, tried in order (the first match wins).
_TYPES = (
    # About the article itself: "Who wrote ...", "Who is the author of ..."; not "Author Raymond
    # Briggs ... which book?".
    ("author", re.compile(r"\b(who (wrote|authored)|who (is|was|are|were) the (author|writer)s?|"
                          r"byline|written by)\b", re.I)),
    ("published", re.compile(r"\b(when|what date|what day)\b.*\b(published|posted)\b", re.I)),
    ("date", re.compile(r"^\s*(when\b|what (date|day|year|month|time)\b|on what (date|day))", re.I)),
    ("money", re.compile(r"\bhow much\b.*\b(cost|costs|pay|paid|worth|spend|spent|charge|charged)\b|"
                         r"\bhow much (money|cash)\b|"
                         r"\b(pay|wage|salary|price|cost|fee|fine)s?\b.*\bhow much\b|"
                         r"\bwhat (is|was) the (\w+ )?(price|cost)\b", re.I)),
    ("number", re.compile(r"\b(how (many|much|far|long|old)|what (percentage|number|share)|"
                          r"what (is|was) the (\w+ )?\w+ (count|tally|total))\b", re.I)),
    ("place", re.compile(r"^\s*(where\b|in what (city|country|region|place)|from where)", re.I)),
    ("who", re.compile(r"^\s*(who|whom|whose)\b|\bwhat (was|is) \w+(\s\w+)? name\b", re.I)),
    # "Which tennis star ...", "a volcano in which country ...": a named thing is wanted.
    ("which", re.compile(r"\bwhich (?!(is|was|are|were|did|does|do|has|have|had|of)\b)\w+|"
                         r"\bwhat (?!(is|was|are|were|did|does|do|has|have|had|of|if|about|else|"
                         r"kind|type|sort|happened|happens|will|would|could|can|should|made|makes|"
                         r"caused|causes|led)\b)[a-z]+ (is|was|are|were|did|does|do|has|have|had)\b",
                         re.I)),
)  # fmt: skip
_HOW_MANY = re.compile(
    r"\bhow (?:many|much)\s+([a-z-]+(?:\s+[a-z-]+)?)|\b(\w+) (?:count|tally|total)\b", re.I
)
# "What is the maximum range of ...", "Who is Russia's ambassador to ...": the thing asked about,
# which the passage an answer comes from has to mention.
_ASKED = re.compile(
    r"\b(?:what|who|which)\s+(?:is|was|are|were)\s+(?:the\s+|an?\s+)?(?:[\w-]+['’]s\s+)?"
    r"((?:[\w-]+\s+){0,2}?[\w-]+)\s+(?:of|in|for|to|at|on|from|behind|that|who|which|whose)\b",
    re.I,
)
# Stems of an asked-about phrase that name the shape of the answer, not a thing to find.
_SHAPE_WORDS = {"name", "number", "count", "amount", "total", "kind", "type", "exact", "figur"}
# "What is the name of the ship that ...": past a shape word, the thing is named after "of".
_SHAPE_OF = re.compile(
    r"^(?:name|number|count|amount|total|kind|type)\s+(?:of\s+)?(?:the\s+|an?\s+)?([\w-]+)", re.I
)
_MONEY = re.compile(
    r"[$€£]\s?\d|\b\d[\d,.]*\s*(?:million |billion )?(?:dollars?|euros?|pounds?|rials?|rubles?|"
    r"roubles?)\b",
    re.I,
)
# A capitalised word or run of them inside the question: a named thing the answer is about.
_ENTITY = re.compile(r"(?<=\s)[A-Z][\w'’.-]*(?:\s+(?:of\s+)?[A-Z][\w'’.-]*)*")

# A question answered yes or no ("Did Iran send ...?", "Has Russia received ...?").
_YES_NO = re.compile(
    r"^\s*(?:did|does|do|is|are|was|were|has|have|had|will|would|can|could)\b", re.I
)
# A sentence that denies or disputes a claim, or says it is not confirmed.
_DISPUTED = re.compile(
    r"\b(?:den(?:y|ies|ied)|disput(?:e|es|ed)|reject(?:s|ed)?|refut(?:e|es|ed)|"
    r"declined to confirm|yet to (?:confirm|see)|lacks? any evidence|no evidence|"
    r"(?:has|have|had) not)\b",
    re.I,
)

# Sentences either side of a candidate that count as its surroundings (see _near_terms).
_NEAR = 1
_WH = re.compile(r"\b(who|whom|whose|what|which|where|when|why|how)\b", re.I)
# Stemmed words that shape a question but say nothing about its subject (bm25s's English stop
# list keeps them).
_QUESTION_WORDS = {
    "who", "whom", "whose", "what", "which", "where", "when", "whi", "how", "mani", "much",
    "did", "doe", "do", "is", "are", "was", "were", "accord", "exact", "roughli", "name",
}  # fmt: skip


@dataclass(frozen=True)
class Weights:
    """How the sentence score mixes its signals.

    cosine, coverage, typed, restated and context were chosen by `python eval/tune_weights.py`
    (a grid over the shipped set and rtqa-2022, with rtqa-2022 accuracy cross-validated: see
    eval/RESULTS.md). The others (rank_prior, focus, min_score, second_ratio,
    typed_min_coverage) come from an earlier search on eval/qa.jsonl that was not kept; the
    same script varies each on its own, and each default is the best or tied for it there.
    """

    cosine: float = 0.30
    coverage: float = 0.45
    context: float = 0.10
    typed: float = 0.10
    restated: float = 0.20
    rank_prior: float = 0.05
    focus: float = 3.0
    min_score: float = 0.20
    second_ratio: float = 0.8
    typed_min_coverage: float = 0.2
    # A yes/no question's answer also gives a sentence that denies or disputes the claim, when
    # one scores at least this share of the best (chosen on eval/attribution.jsonl c01-c06).
    counterclaim_ratio: float = 0.45
    # A speaker question ranks a sentence that only neighbours the speaker's at this share of
    # its score (see _grounded).
    own_speaker: float = 0.85


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate answer sentence; score is a weighted mix in [0, ~1] (higher is better)."""

    passage: Passage
    text: str
    score: float
    cosine: float
    coverage: float
    typed: bool
    near: str = ""  # the sentence with the sentences either side of it (_NEAR)


def asking_part(question: str) -> str:
    """The sentence that asks: "Microsoft retired IE this week. What year did it debut?" asks
    "What year did it debut?"; the sentence before only sets the scene."""
    text = question.strip()
    sentences = [text[s:e] for s, e in split_sentences(text)]
    asking = [s for s in sentences if _WH.search(s) or s.endswith("?")]
    return asking[-1] if asking else question


def question_type(question: str) -> str | None:
    """'author', 'published', 'date', 'money', 'number', 'place', 'who', 'which' or None."""
    for text in dict.fromkeys((asking_part(question), question)):
        for name, pattern in _TYPES:
            if pattern.search(text):
                return name
    return None


def focus_weights(question: str, factor: float = 2.0) -> dict[str, float]:
    """Stemmed question terms, weighted up in the clause that holds the question word.

    "Tehran supplies a plant east of Moscow; in which zone is that plant?" is about the zone:
    the clause with "which" says what is asked, the other only sets the scene.
    """
    sentences = [question[s:e] for s, e in split_sentences(question)]
    clauses = [c for s in sentences for c in re.split(r"[;:,]|\s-\s|\s—\s", s) if c.strip()]
    weights: dict[str, float] = {}
    for clause, terms in zip(clauses, tokenize(clauses), strict=True):
        w = factor if len(clauses) > 1 and _WH.search(clause) else 1.0
        for t in terms:
            if t not in _QUESTION_WORDS:
                weights[t] = max(weights.get(t, 0.0), w)
    return weights


def _counted_thing(question: str) -> str | None:
    """The stem of what a 'how many X' question counts ('worker' for 'how many workers')."""
    m = _HOW_MANY.search(question)
    if not m:
        return None
    stems = [t for t in tokenize([m.group(1) or m.group(2)])[0] if t not in _QUESTION_WORDS]
    return stems[0] if stems else None


def _has_type(sentence: str, kind: str | None, question: str, q_words: set[str]) -> bool:
    if kind == "author":
        return bool(_BYLINE.match(sentence))
    if kind == "published":
        return bool(_DATELINE.match(sentence))
    if kind == "date":
        return bool(_DATE.search(sentence))
    if kind == "money":
        return bool(_MONEY.search(sentence))
    if kind == "number":
        numbers = [n for n in _NUMBER.findall(sentence) if n.lower() not in q_words]
        thing = _counted_thing(question)
        if not numbers or thing is None:
            return bool(numbers)
        # "How many drones" is answered by "hundreds of ... drones", not by "hundreds of miles":
        # a figure must come within a few words before the thing counted.
        words = re.findall(r"[\w'’.,$-]+", sentence)
        stems = tokenize(words)
        for i, stem in enumerate(stems):
            if stem and stem[0] == thing:
                window = " ".join(words[max(0, i - 5) : i])
                if any(n.lower() not in q_words for n in _NUMBER.findall(window)):
                    return True
        return False
    if kind in ("place", "who", "which"):
        return any(n.lower() not in q_words for n in _NAME.findall(sentence))
    return True


def asked_about(question: str) -> set[str]:
    """Stems of the phrase a 'what is the X of ...' question asks about ({'maximum', 'rang'})."""
    m = _ASKED.search(question)
    if not m:
        return set()
    phrase = m.group(1)
    if all(t in _SHAPE_WORDS for t in tokenize([phrase])[0]):
        # "What is the name of the ship that ...": what is named is the ship.
        shape = _SHAPE_OF.match(f"{phrase} {question[m.end(1) :].strip()}")
        phrase = shape.group(1) if shape else ""
    return {t for t in tokenize([phrase])[0] if t not in _SHAPE_WORDS | _QUESTION_WORDS}


def named_phrases(question: str) -> list[tuple[str, ...]]:
    """Each named thing (capitalised words past the first) a question mentions, as its stems
    in order ("UN Security Council")."""
    # "US" is a stop word once lower-cased, and the articles spell it "U.S." as often as not.
    # "Iranian-assisted": the name is "Iranian".
    names = [re.sub(r"-[a-z][\w-]*", "", n) for n in _ENTITY.findall(question)]
    names = [n for n in names if n not in ("US", "U.S.")]
    phrases = [tuple(t for t in ts if t not in _QUESTION_WORDS) for ts in tokenize(names)]
    return [p for p in phrases if p]


@dataclass(frozen=True)
class _Terms:
    """Stemmed words of a stretch of text, as a set and in order."""

    words: frozenset[str]
    sequence: tuple[str, ...]


def _all_mentioned(names: list[tuple[str, ...]], terms: _Terms) -> bool:
    """Whether the text names every one of names, a many-word name as a phrase: "the UN
    Security Council" is not named by "the National Security Council" and "the UN"."""

    def found(name: tuple[str, ...]) -> bool:
        if len(name) == 1:
            return any(same_name(name[0], t) for t in terms.words)
        seq, n = terms.sequence, len(name)
        return any(
            all(same_name(a, b) for a, b in zip(name, seq[i : i + n], strict=True))
            for i in range(len(seq) - n + 1)
        )

    return all(found(n) for n in names)


def names_found(question: str, passages: list[Passage]) -> bool:
    """Whether the question gives a full name (two words or more: "Karine Jean-Pierre") and
    the passages name all its named things (see named_phrases), each as a phrase.

    The embedding model places a rare name far from everything, so a question about one can
    look off-topic by similarity alone when the passages name it. One-word names ("Iran") are
    what a whole corpus is about, and say nothing about whether a question is on its topic.
    """
    names = named_phrases(question)
    if not any(len(n) > 1 for n in names) or not passages:
        return False
    tokens = tokenize([" ".join(p.title + " " + p.text for p in passages)])[0]
    return _all_mentioned(names, _Terms(frozenset(tokens), tuple(tokens)))


def _passage_terms(passages: list[Passage]) -> dict[str, frozenset[str]]:
    """Stemmed words of each passage with its title, by chunk id."""
    tokens = tokenize([p.title + " " + p.text for p in passages])
    return {p.chunk_id: frozenset(t) for p, t in zip(passages, tokens, strict=True)}


def _near_terms(ranked: list[ScoredSentence]) -> list[_Terms]:
    """Each sentence's surroundings (the sentences either side, and the title) as terms."""
    tokens = tokenize([s.passage.title + " " + (s.near or s.passage.text) for s in ranked])
    return [_Terms(frozenset(t), tuple(t)) for t in tokens]


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

    def __init__(
        self, embedder: Embeddings, weights: Weights | None = None, max_sentences: int = 2
    ) -> None:
        self.embedder = embedder
        self.weights = weights or Weights()
        self.max_sentences = max_sentences

    def rank(self, question: str, passages: list[Passage]) -> list[ScoredSentence]:
        """Every distinct sentence of the passages, best first."""
        w = self.weights
        seen: set[str] = set()
        candidates = []
        for p in passages:
            spans = split_sentences(p.text)
            for i, (s, e) in enumerate(spans):
                key = " ".join(p.text[s:e].lower().split())
                # A question in the article (a quiz, a rhetorical one) answers nothing.
                if e - s > 12 and key not in seen and not key.rstrip("\"'” ").endswith("?"):
                    seen.add(key)
                    lo, hi = spans[max(0, i - _NEAR)][0], spans[min(len(spans) - 1, i + _NEAR)][1]
                    candidates.append((p, p.text[s:e], p.text[lo:hi]))
        if not candidates:
            return []
        texts = [c[1] for c in candidates]
        focus = focus_weights(question, w.focus)
        sent_terms = [set(t) for t in tokenize(texts)]
        # idf over the candidate sentences: a word every passage shares ("Iran") says little.
        df = {t: sum(1 for s in sent_terms if t in s) for t in focus}
        weight = {t: focus[t] * math.log(1 + len(sent_terms) / (1 + df[t])) for t in focus}
        total = sum(weight.values()) or 1.0
        passage_terms = _passage_terms(passages)

        # Similarity to the sentence that asks: "Roger Federer will retire after the Laver Cup.
        # Which Grand Slam has he won most?" is answered by a sentence close to the second
        # sentence, not by one that retells the first (its words still count in coverage).
        vectors = self.embedder.embed_documents([asking_part(question), *texts])
        q_vec = vectors[0]
        kind = question_type(question)
        q_words = {x.lower() for x in re.findall(r"[\w'’-]+", question)}

        scored = []
        for (passage, text, near), terms, vec in zip(
            candidates, sent_terms, vectors[1:], strict=True
        ):
            coverage = sum(weight[t] for t in terms if t in weight) / total
            context = sum(weight[t] for t in passage_terms[passage.chunk_id] if t in weight) / total
            # A sentence that only restates the question tells the reader nothing new.
            new = len(terms - focus.keys()) / max(1, len(terms))
            typed = _has_type(text, kind, question, q_words)
            cosine = sum(a * b for a, b in zip(q_vec, vec, strict=True))
            score = (
                w.cosine * cosine
                + w.coverage * coverage
                + w.context * context
                + (w.typed if typed and kind else 0.0)
                - (w.restated * (0.4 - new) / 0.4 if new < 0.4 else 0.0)
                + w.rank_prior / passage.rank
            )
            scored.append(
                ScoredSentence(passage, text, round(score, 4), cosine, coverage, typed, near)
            )
        scored.sort(key=lambda s: -s.score)
        return scored

    def answer(self, question: str, passages: list[Passage]) -> tuple[str, bool]:
        """(answer text with [n] markers, refused)."""
        ranked = self._grounded(question, self.rank(question, passages))
        if not ranked or ranked[0].score < self.weights.min_score:
            return REFUSAL, True
        chosen = [ranked[0]]
        for s in ranked[1:]:
            if len(chosen) >= self.max_sentences:
                break
            # A close second, from anywhere: the passage around the matching sentence often
            # holds the fact the question asks for in the next sentence.
            if s.score >= ranked[0].score * self.weights.second_ratio:
                chosen.append(s)
        if _YES_NO.match(asking_part(question)) and not any(
            _DISPUTED.search(s.text) for s in chosen
        ):
            # "Did Iran send missiles to Russia?": news reports claims, and a claim somebody
            # denies or nobody has confirmed is answered with both sides.
            floor = ranked[0].score * self.weights.counterclaim_ratio
            counter = next(
                (s for s in ranked if s.score >= floor and _DISPUTED.search(s.text)), None
            )
            if counter is not None:
                chosen.append(counter)
        return " ".join(
            f"{s.text.strip()} [{s.passage.rank}]" for s in _in_text_order(chosen)
        ), False

    def _grounded(self, question: str, ranked: list[ScoredSentence]) -> list[ScoredSentence]:
        """The ranked sentences that can answer question at all, best first.

        A question that wants a figure or a date ("how many", "when") is not answered by a
        sentence without one, nor by a figure about something else: the sentence must share
        enough with the question, and the text around it (a sentence either side) must name the
        question's named things ("the European Union", not just "sanctions"). Any answer's
        surroundings must mention what a "what is the X of" question asks about: "Who is
        Russia's ambassador to Iran?" is not answered by text that names no ambassador, however
        close it is otherwise. "What did Iran say ..." is answered only by a sentence whose
        surroundings report Iran saying something (see attribution.py).
        """
        kind = question_type(question)
        if kind in ("date", "number", "money", "author", "published"):
            ranked = [s for s in ranked if s.typed]
        named = []
        if kind in ("date", "number", "money"):
            named = named_phrases(question)
            ranked = [s for s in ranked if s.coverage >= self.weights.typed_min_coverage]
        asked = asked_about(question)
        if named or asked:
            # Checked near the sentence, not across the whole passage: a passage of several
            # chunks can name "the UN Security Council" paragraphs away from a date about
            # something else.
            near = _near_terms(ranked)
            ranked = [
                s
                for s, t in zip(ranked, near, strict=True)
                if _all_mentioned(named, t) and asked <= t.words
            ]
        speaker = asked_speaker(question)
        if speaker:
            ranked = [s for s in ranked if quotes(speaker, s.near or s.text)]
            # A quote runs on across sentences, so a sentence next to the one naming the
            # speaker may be theirs; but one naming them itself comes first on a near-tie
            # ("Podolyak threatened war with Iran" is not Iran's, the sentence after it is).
            own = self.weights.own_speaker
            ranked = sorted(
                (
                    s if quotes(speaker, s.text) else replace(s, score=round(s.score * own, 4))
                    for s in ranked
                ),
                key=lambda s: -s.score,
            )
        return ranked
