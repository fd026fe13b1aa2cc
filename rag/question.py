"""Understanding the question, once: `analyse(text, today)` -> a frozen `Query`.

Every pattern and word list that reads a *question* lives here, so "why did it refuse?" and
"why that sentence?" start from one object: retrieval, the refusal gate and every answerer
take the `Query`, and `rag ask --json` prints it. Patterns that read *articles* (dates and
figures in a sentence, who a sentence quotes) stay with their readers (answering/).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from rag.chunking import split_sentences
from rag.errors import RagError
from rag.lexical import speaker_stems, tokenize
from rag.settings import Tuning

_DEFAULT_TUNING = Tuning()

Kind = Literal["author", "published", "date", "money", "number", "place", "who", "which"]
# What sort of named thing a "which ..." question wants (rag/answering/types.py checks answers).
AnswerType = Literal["country", "company"]


class QuestionError(RagError):
    """The question cannot be asked (empty, or nothing left after cleaning)."""


# --- word lists, each written once -------------------------------------------------------------

# Question words, as written.
_WH = re.compile(r"\b(who|whom|whose|what|which|where|when|why|how)\b", re.I)
# Stemmed words that shape a question but say nothing about its subject, as bm25s stems them
# ("why" -> "whi", "many" -> "mani"; its English stop list keeps them).
QUESTION_STEMS = frozenset(
    {
        "who", "whom", "whose", "what", "which", "where", "when", "whi", "how", "mani", "much",
        "did", "doe", "do", "is", "are", "was", "were", "accord", "exact", "roughli", "name",
    }
)  # fmt: skip
_AUXILIARY = r"did|does|do|is|are|was|were|has|have|had|will|would|can|could"

# --- what shape of answer a question wants ------------------------------------------------------

# Tried in order (the first match wins), on the asking sentence, then on the whole question.
_KINDS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
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
# "How many workers", "the death toll": the thing a figure question counts.
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
# A capitalised word or run of them inside the question: a named thing the answer is about.
_ENTITY = re.compile(r"(?<=\s)[A-Z][\w'’.-]*(?:\s+(?:of\s+)?[A-Z][\w'’.-]*)*")
# A designation with digits: "Shahed-238", "F-16", "G7", "COVID-19"; not "2022" or "1990s".
_DESIGNATION = re.compile(r"\b[A-Z][A-Za-z]*-?\d[\dA-Za-z]*(?:-[\dA-Za-z]+)*\b")
# A quoted term: "kamikaze drone", ‘swift’ (not the apostrophe of "Iran's").
_QUOTED = re.compile(r"[\"“]([^\"“”]{2,80}?)[\"”]|(?<!\w)['‘]([^'‘’]{2,80}?)['’](?!\w)")
_TERM_WORDS = 4
# "Which countries", "in what island nation", "which technology company", "which of these
# airlines": the noun after the question word (up to two words between) says what is wanted.
_ANSWER_TYPES: tuple[tuple[AnswerType, str], ...] = (
    ("country", r"countr(?:y|ies)|nations?"),
    ("company", r"compan(?:y|ies)|firms?|corporations?|(?:auto|car)?makers?|manufacturers?|"
                r"airlines?|carriers?|retailers?|chains?|brands?|banks?|startups?|insurers?|giants?|"
                r"apps?|platforms?|networks?|streaming services?|streamers?"),
)  # fmt: skip
TYPE_NOUNS: dict[AnswerType, str] = dict(_ANSWER_TYPES)  # the nouns that ask for each type
_TYPE_ASKED = re.compile(
    rf"\b(?:which|what)\s+(?:(?!(?:{_AUXILIARY})\b)[\w’'-]+\s+){{0,2}}?("
    + "|".join(f"(?P<{name}>{words})" for name, words in _ANSWER_TYPES)
    + r")\b(?!['’]s)",
    re.I,
)
# A question answered yes or no ("Did Iran send ...?", "Has Russia received ...?").
_YES_NO = re.compile(rf"^\s*(?:{_AUXILIARY})\b", re.I)
# "Latest", "this week": newer articles should win near-ties.
_RECENCY = re.compile(r"\b(latest|most recent|newest|recently|this week|last week|now)\b", re.I)
# Questions about an article itself (its author, its date) are answered by its first chunk,
# which holds the byline and dateline but rarely matches the question's words.
_ABOUT_ARTICLE = re.compile(
    r"\b(who wrote|written by|who (is|was) the author|byline|when was .* (published|posted)|"
    r"(what|which) (date|day) was .* (published|posted))\b",
    re.I,
)

# --- who a question asks about ------------------------------------------------------------------

# Verbs a question uses to ask what somebody said or how they answered. Not "announce": what
# is announced (sanctions, a deal) is an act, and whoever announced it is its actor.
_ASKING_VERBS = (
    r"say|said|claim|warn|argue|insist|deny|denied|respond|react|threaten|acknowledge|admit|"
    r"tell|told|allege|accuse|blame|describe|state|confirm|think|believe|predict|"
    r"reveal|call\s+for|demand|urge|promise|vow|suggest|explain|comment"
)
# "What did Iran say ...", "How has Tehran responded ...", "Did the White House confirm ...":
# questions about what was said. "When did X warn ..." and "Why did X deny ..." ask about the
# act, which an article reports in its own voice as often as in X's words: X is its actor.
_SPEAKER_QUESTION = re.compile(
    rf"(?:^\s*|\b(?:what|how)\s+(?:\w+\s+){{0,2}}?)(?:did|does|do|has|have|had)\s+"
    rf"(?P<speaker>(?:the\s+)?[^\s?,][^?,]*?)\s+(?:{_ASKING_VERBS})\w*\b",
    re.I,
)
_PRONOUNS = {"he", "she", "it", "they", "we", "you", "i", "this", "that"}

# --- follow-ups in a conversation ---------------------------------------------------------------

_FOLLOW_UP = re.compile(
    r"^\s*(and|also|what about|how about|but|so|then|why|and why)\b|"
    r"\b(it|its|they|them|their|that|this|those|these|he|she|his|her|there)\b",
    re.I,
)
_QUESTION_WORD = re.compile(r"\b(who|whom|whose|what|which|where|when|why|how)\b|[?]", re.I)
_CONNECTIVE = re.compile(r"^\s*(and|also|but|so|then)\b[\s,]*", re.I)
# "And Iran?", "What about the G-7 leaders?": a follow-up that only names somebody (four words
# at most, capitalised).
_ONLY_A_NAME = re.compile(
    r"^\s*(?i:and|what about|how about)\s+(?P<who>(?:the\s+)?[A-Z][\w.'’-]*(?:\s+[\w.'’-]+){0,3})"
    r"\s*\??\s*$"
)


@dataclass(frozen=True)
class Speaker:
    """Who a question asks about, as the stems a speaker in the text must have: all of them
    ("Iran's supreme leader" is a supreme leader, not anyone from Iran), but for a name only
    the last ("Kirby" is John Kirby)."""

    required: frozenset[str]
    # Whose it is ("China's foreign ministry"): named anywhere near, not necessarily as speaker.
    owner: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Specific:
    """A thing a question names specifically: an answer about anything else answers a different
    question, so some passage must name it ("Shahed-238" is not named by "Shahed-136")."""

    text: str  # as the question writes it: "Shahed-238", "Marco Rubio", "kamikaze drone"
    stems: tuple[str, ...]  # what a passage must have, in this order
    # Spelled exactly: a designation's figures, a quoted term's words. A name may be spelled
    # differently ("Zelenskyy", "Zelensky"), and is named by its last word ("Rubio") once its
    # first is somewhere too ("Cup" alone does not name the "Stanley Cup").
    exact: bool


@dataclass(frozen=True)
class Query:
    """A question as rag understands it; built once per ask by analyse().

    Every field is derived from `text` (and `today`); nothing else reads the question's words.
    """

    text: str  # what is searched: the cleaned question (a follow-up already made standalone)
    asking: str  # the sentence that asks ("What year did it debut?" after a scene-setting one)
    kind: Kind | None  # the shape of answer wanted (see _KINDS)
    speaker: Speaker | None  # "What did Iran say ...": whose words answer it
    names: tuple[tuple[str, ...], ...]  # named things, each as its stems in order
    specific: tuple[Specific, ...]  # names, designations and quoted terms some passage must name
    asked_about: frozenset[str]  # stems of what "what is the X of ..." asks about
    counted: str | None  # the stem of what "how many X" counts
    focus: dict[str, float] = field(compare=False)  # stem -> weight (the asking clause weighs more)
    words: frozenset[str] = frozenset()  # the question's lower-cased words, as written
    yes_no: bool = False  # "Did Iran send ...?": a claim, answered with both sides
    recency: bool = False  # "latest", "this week": newer articles win near-ties
    about_article: bool = False  # "who wrote", "when was it published": the article's lead
    today: date | None = None  # the day it is asked (as of), for "this week"
    answer_type: AnswerType | None = None  # "which country": an answer must name one

    def to_json(self) -> dict[str, Any]:
        """The analysed query as `rag ask --json` and eval results show it."""
        return {
            "text": self.text,
            "asking": self.asking,
            "kind": self.kind,
            "speaker": (
                {"required": sorted(self.speaker.required), "owner": sorted(self.speaker.owner)}
                if self.speaker
                else None
            ),
            "names": [list(n) for n in self.names],
            "specific": [s.text for s in self.specific],
            "asked_about": sorted(self.asked_about),
            "counted": self.counted,
            "focus": {t: round(w, 3) for t, w in sorted(self.focus.items())},
            "yes_no": self.yes_no,
            "recency": self.recency,
            "about_article": self.about_article,
            "today": self.today.isoformat() if self.today else None,
            "answer_type": self.answer_type,
        }


def clean(question: str, max_chars: int) -> tuple[str, str | None]:
    """(question fit to ask, a note when it had to be changed); raises on empty questions."""
    text = unicodedata.normalize("NFKC", question)
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    # Line breaks end a sentence (a pasted headline, a paste then the question on its own line).
    lines = [" ".join(line.split()) for line in text.splitlines()]
    text = "\n".join(line for line in lines if line)
    if not text:
        raise QuestionError("the question is empty; ask something about the articles")
    note = None
    if len(text) > max_chars:
        text, note = _shorten(text, max_chars)
    text = text.replace("\n", " ")
    if other := other_language(text):
        said = (
            f"this question seems to be in {other}; rag answers questions in English, the "
            "language of the articles"
        )
        note = f"{note}; {said}" if note else said
    return text, note


# Common words of other languages written in Latin letters, none of them an English word (so
# not "was", "die", "do", "come", "per", "non", "comment", "met", "hat"): a question with at
# least two of one list's words, and more than twice as many as English function words (less
# "a" and "an", which Spanish, Italian and German use too), is in that language.
_FOREIGN_WORDS: dict[str, frozenset[str]] = {
    "Spanish": frozenset({
        "el", "los", "las", "del", "que", "qué", "por", "para", "con", "una", "es", "está",
        "están", "fue", "dónde", "cuándo", "cómo", "cuál", "cuáles", "quién", "quiénes",
        "cuánto", "cuántos", "cuántas", "se", "su", "sus", "al", "lo", "la", "de", "en", "y",
        "ha", "han", "sobre", "según", "entre", "más"
    }),
    "French": frozenset({
        "le", "la", "les", "des", "du", "est", "sont", "qui", "que", "quoi", "où", "quand",
        "pourquoi", "quel", "quelle", "quels", "quelles", "combien", "une", "un", "et", "dans",
        "pour", "avec", "sur", "pas", "il", "elle", "ils", "ont", "été", "au", "aux", "ce",
        "cette", "qu", "l"
    }),
    "German": frozenset({
        "der", "das", "den", "dem", "des", "ein", "eine", "einen", "und", "ist", "sind", "wer",
        "wo", "wann", "wie", "warum", "welche", "welcher", "welches", "wieviel", "wieviele",
        "nicht", "mit", "von", "für", "auf", "im", "zu", "haben", "wurde", "wurden", "werden",
        "wird", "nach", "bei", "über", "aus", "dass", "sich"
    }),
    "Portuguese": frozenset({
        "os", "de", "da", "dos", "das", "se", "que", "quem", "onde", "quando", "qual", "quais", "quantos",
        "quantas", "é", "está", "são", "foi", "um", "uma", "em", "para", "com", "não", "pelo",
        "pela", "nos", "nas", "ao"
    }),
    "Italian": frozenset({
        "il", "lo", "la", "gli", "di", "del", "della", "dei", "che", "chi", "quando", "perché",
        "quale", "quali", "quanti", "quante", "è", "sono", "stato", "stata", "un", "una", "con",
        "nel", "nella", "ha", "hanno"
    }),
    "Dutch": frozenset({
        "de", "het", "een", "en", "van", "wie", "wat", "waar", "wanneer", "hoe", "waarom",
        "welke", "niet", "voor", "zijn", "heeft", "hebben", "werd", "wordt"
    }),
}  # fmt: skip
_ENGLISH_WORDS = frozenset({
    "the", "of", "in", "on", "to", "is", "are", "was", "were", "be", "been", "did",
    "does", "do", "what", "who", "whom", "whose", "where", "when", "why", "how", "which", "and",
    "or", "for", "with", "by", "from", "that", "this", "these", "those", "about", "say", "said",
    "says", "has", "have", "had", "will", "would", "can", "could", "many", "much", "it", "its",
    "their", "his", "her", "they", "he", "she", "there", "not"
})  # fmt: skip
_LETTERS = re.compile(r"[^\W\d_]+")


def other_language(text: str) -> str | None:
    """The language or script of a question plainly not in English (most of its letters not
    Latin, or more of another language's common words than English ones); None for English,
    foreign names of people and places included.

    Cheap, and meant to tell the asker why the English articles don't answer them, not to
    identify languages: "Spanish" may be Galician, "Cyrillic script" Russian or Ukrainian.
    """
    letters = [ch for ch in text if ch.isalpha()]
    scripts = [unicodedata.name(ch, "?").split()[0] for ch in letters]
    foreign = [name for name in scripts if name != "LATIN"]
    if letters and len(foreign) * 2 > len(letters):
        if "HIRAGANA" in foreign or "KATAKANA" in foreign:
            return "Japanese"  # written with Chinese characters too
        script = max(set(foreign), key=foreign.count)
        return _SCRIPTS.get(script, f"{script.title()} script")
    if "¿" in text or "¡" in text:
        return "Spanish"
    words = _LETTERS.findall(text.lower())
    english = sum(1 for w in words if w in _ENGLISH_WORDS)
    hits = {lang: sum(1 for w in words if w in common) for lang, common in _FOREIGN_WORDS.items()}
    language, most = max(hits.items(), key=lambda item: item[1])
    # Twice English's: "Did Charles de Gaulle visit La Paz?" has two Spanish words, one English.
    return language if most >= 2 and most > 2 * english else None


# Scripts named for their language where that is all but certain; others as "X script".
_SCRIPTS = {"CJK": "Chinese", "HIRAGANA": "Japanese", "KATAKANA": "Japanese", "HANGUL": "Korean"}


# A question that refers back ("Who denies it?") needs the sentence before it.
_REFERS = re.compile(r"\b(?:it|its|he|him|his|she|her|they|them|their|this|these|those)\b", re.I)


def _shorten(text: str, max_chars: int) -> tuple[str, str]:
    """The sentence that asks (with the sentence before it when it refers back: "Who denies
    it?"), with a note saying what was left out.

    A long paste (an article, then "Where is the drone factory being built?") asks at its end,
    and only the asking sentence should decide the search: the pasted text before it is about
    whatever the paste is about, and would pull the passages its way.
    """
    spans, at = [], 0
    for line in text.split("\n"):
        spans += [(at + s, at + e) for s, e in split_sentences(line)]
        at += len(line) + 1
    asks = [i for i, (s, e) in enumerate(spans) if text[s:e].endswith("?")] or [
        i for i, (s, e) in enumerate(spans) if _WH.search(text[s:e])
    ]
    first = last = asks[-1] if asks else len(spans) - 1
    end = spans[last][1]
    asking = text[spans[last][0] : end]
    if first > 0 and _REFERS.search(asking) and end - spans[first - 1][0] <= max_chars:
        first -= 1
    start = max(spans[first][0], end - max_chars)  # a sentence too long alone keeps its end
    if start > spans[first][0]:
        kept = "the end of the sentence that asks"
    elif first < last:
        kept = "the sentence that asks and the one before it, which it refers to"
    else:
        kept = "only the sentence that asks"
    after = f" and the last {len(text) - end:,}" if end < len(text) else ""
    note = (
        f"question too long ({len(text):,} characters; RAG_MAX_QUESTION_CHARS is "
        f"{max_chars:,}): kept {kept}, left out the first {start:,} characters{after}"
    )
    return text[start:end], note


def analyse(text: str, today: date | None = None, tuning: Tuning = _DEFAULT_TUNING) -> Query:
    """The Query for a (clean, standalone) question asked on `today` (None: no day given)."""
    asking = asking_part(text)
    return Query(
        text=text,
        asking=asking,
        kind=_kind(text, asking),
        speaker=asked_speaker(text),
        names=tuple(named_phrases(text)),
        specific=tuple(specific_things(text)),
        asked_about=frozenset(_asked_about(text)),
        counted=_counted_thing(text),
        focus=focus_weights(text, tuning.focus),
        words=frozenset(x.lower() for x in re.findall(r"[\w'’-]+", text)),
        yes_no=bool(_YES_NO.match(asking)),
        recency=bool(_RECENCY.search(text)),
        about_article=bool(_ABOUT_ARTICLE.search(text)),
        today=today,
        answer_type=answer_type(asking),
    )


def answer_type(asking: str) -> AnswerType | None:
    """The sort of named thing the asking sentence wants: "In which country ..." a country,
    "Which airline ..." a company; "Which country's leader ..." wants a person, so none."""
    m = _TYPE_ASKED.search(asking)
    if not m:
        return None
    return next(name for name, _ in _ANSWER_TYPES if m.group(name))


def asking_part(question: str) -> str:
    """The sentence that asks: "Microsoft retired IE this week. What year did it debut?" asks
    "What year did it debut?"; the sentence before only sets the scene."""
    text = question.strip()
    sentences = [text[s:e] for s, e in split_sentences(text)]
    asking = [s for s in sentences if _WH.search(s) or s.endswith("?")]
    return asking[-1] if asking else question


def _kind(question: str, asking: str) -> Kind | None:
    for text in dict.fromkeys((asking, question)):
        for name, pattern in _KINDS:
            if pattern.search(text):
                return name
    return None


def focus_weights(question: str, factor: float) -> dict[str, float]:
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
            if t not in QUESTION_STEMS:
                weights[t] = max(weights.get(t, 0.0), w)
    return weights


def _counted_thing(question: str) -> str | None:
    """The stem of what a 'how many X' question counts ('worker' for 'how many workers')."""
    m = _HOW_MANY.search(question)
    if not m:
        return None
    stems = [t for t in tokenize([m.group(1) or m.group(2)])[0] if t not in QUESTION_STEMS]
    return stems[0] if stems else None


def _asked_about(question: str) -> set[str]:
    """Stems of the phrase a 'what is the X of ...' question asks about ({'maximum', 'rang'})."""
    m = _ASKED.search(question)
    if not m:
        return set()
    phrase = m.group(1)
    if all(t in _SHAPE_WORDS for t in tokenize([phrase])[0]):
        # "What is the name of the ship that ...": what is named is the ship.
        shape = _SHAPE_OF.match(f"{phrase} {question[m.end(1) :].strip()}")
        phrase = shape.group(1) if shape else ""
    return {t for t in tokenize([phrase])[0] if t not in _SHAPE_WORDS | QUESTION_STEMS}


def named_phrases(question: str) -> list[tuple[str, ...]]:
    """Each named thing (capitalised words past the first) a question mentions, as its stems
    in order ("UN Security Council")."""
    # "US" is a stop word once lower-cased, and the articles spell it "U.S." as often as not.
    # "Iranian-assisted": the name is "Iranian".
    names = [re.sub(r"-[a-z][\w-]*", "", n) for n in _ENTITY.findall(question)]
    names = [n for n in names if n not in ("US", "U.S.")]
    phrases = [tuple(t for t in ts if t not in QUESTION_STEMS) for ts in tokenize(names)]
    return [p for p in phrases if p]


def specific_things(question: str) -> list[Specific]:
    """What the question names specifically, each once: designations with digits and quoted
    terms (spelled exactly), and names of two words or more (capitalised words past the first,
    by their last word).

    "What is the range of the Shahed-238?" is about the Shahed-238, and a passage about "a
    range of ballistic missile systems" answers something else.
    """
    found: dict[tuple[str, ...], Specific] = {}
    exact = [m.group(0) for m in _DESIGNATION.finditer(question)]
    # A term, not a quotation: "swift", "kamikaze drone"; a longer quote may be paraphrased.
    quoted = [m.group(1) or m.group(2) for m in _QUOTED.finditer(question)]
    exact += [q.strip(" ,.") for q in quoted if len(q.split()) <= _TERM_WORDS]
    for text, stems in zip(exact, tokenize(exact), strict=True):
        if stems:
            found.setdefault(tuple(stems), Specific(text, tuple(stems), exact=True))
    # "after the Laver Cup. Which Grand Slam": two runs ("U.N. Mission" is one).
    runs = [r for n in _ENTITY.findall(question) for r in re.split(r"(?<=[a-z]{2})[.!?]\s+", n)]
    names = [n.strip(".,'’") for n in runs if n not in ("US", "U.S.")]
    for text, stems in zip(names, tokenize(names), strict=True):
        stems = [t for t in stems if t not in QUESTION_STEMS]
        # A name of one word is as often a metonym the articles don't use ("Beijing" for
        # China, "Tehran" for Iran) as a thing they never mention: only full names count.
        if len(stems) > 1 and not any(stems[-1] in s.stems for s in found.values()):
            # "Macron's view": Macron; "Which Grand Slam": Grand Slam.
            text = re.sub(r"['’]s$", "", _WH.sub("", text, count=1).strip())
            found.setdefault((stems[-1],), Specific(text, tuple(stems), exact=False))
    return list(found.values())


def asked_speaker(question: str) -> Speaker | None:
    """The speaker of a "what did X say / how did X respond" question, or None.

    "According to X, ..." questions are not included: they ask for a fact X reports, which an
    article may state in its own voice a few sentences after naming X.
    """
    m = _SPEAKER_QUESTION.search(question)
    if not m:
        return None
    phrase = re.sub(r"^the\s+", "", m.group("speaker"), flags=re.I)
    if phrase.lower() in _PRONOUNS:
        return None  # "What did he say?": who "he" is, the text around the question says
    # "Iran's U.N. Mission": the speaker is the mission, Iran's.
    *owners, owned = re.split(r"['’]s\s+", phrase)
    words = owned.split()
    if words and all(w[0].isupper() for w in words):
        words = words[-1:]  # a name: "John Kirby" is quoted as "Kirby"
    required = speaker_stems(" ".join(words))
    if not required:
        return None
    return Speaker(frozenset(required), frozenset(speaker_stems(" ".join(owners))))


# --- follow-ups ---------------------------------------------------------------------------------


def is_follow_up(question: str) -> bool:
    """Whether a question leans on the one before: a follow-up word ("and", "it", "that"), or
    three words at most. "Who is John Kirby?" is standalone, "And the drones?" is not."""
    return bool(_FOLLOW_UP.search(question)) or len(question.split()) <= 3


def without_connective(question: str) -> str:
    """The follow-up without its leading "and" / "but" / "so"."""
    return _CONNECTIVE.sub("", question) or question


def subject_of(question: str) -> str:
    """What a question is about, without its question words: "When did X happen?" -> "did X
    happen"; a follow-up adds it to say what it is about while saying itself what it asks."""
    return " ".join(_QUESTION_WORD.sub(" ", question).split())


def ask_of(previous: str, follow_up: str) -> str | None:
    """The previous question asked again of the speaker a bare follow-up names, or None.

    "What did Kirby say about the factory?" then "And Iran?" asks what Iran said about it.
    """
    m = _SPEAKER_QUESTION.search(previous)
    named = _ONLY_A_NAME.match(follow_up)
    if not m or not named or asked_speaker(previous) is None:
        return None
    return f"{previous[: m.start('speaker')]}{named.group('who')}{previous[m.end('speaker') :]}"
