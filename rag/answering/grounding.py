"""Whether a retrieved passage supports a sentence a model wrote: the words that carry its facts
must be there, the rest may be paraphrased.

A model paraphrases (what every real LLM does), so a word-overlap test either refuses honest
paraphrases or, loosened, passes a sentence whose other words match but whose name, figure or
date was swapped. So the check is split (`judge`, then `verdict`):

- **facts**: every name, number, date, negation and quoted term in the sentence must be in the
  passage sentence it quotes or the sentence either side (`Window`), allowing spelling variants
  ("G-7" / "Group of Seven", "Feb 23" / "February 23", "Iranian" / "Iran", "five" / "5"); a
  name of two words or more must be written there as one name ("United Airlines" is not named
  by "United Kingdom" and "the airline"), and a "not" needs a negation in the quoted sentence;
- **negation flips**: a sentence stating what the quoted sentence negates is refused;
- **the answer, and the rest**: enough of its words that are not the question's (the ones that
  answer it) are there, and enough of all its words, or it is a close paraphrase of a passage
  sentence (embedding cosine similarity) sharing some of them;
- optionally, **the question's words**: a word of the question that the sentence repeats must
  be there too (a sentence answering the question's premise, not the passage).

The thresholds and switches are `Tuning.guard_*`, fitted on rtqa-2024-train by
`fitting/fit_guard.py` (5 folds grouped by question). Every failure names what failed (`"Boston"
is not in passage [1]`), for the user and `--json`. What is done with a sentence that fails
(re-cited, cut to a clause, dropped) is citations.recite's business.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rag.lexical import MONTHS, same_name, tokenize
from rag.settings import Tuning

_WORD = re.compile(r"[A-Za-z0-9$€£][\w'’.,%$-]*[\w%]|[A-Za-z0-9]")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_LETTER_NUMBER = re.compile(r"^([a-z])-?(\d{1,4})$")
_QUOTED = re.compile(r"[\"“]([^\"“”]{2,120})[\"”]")

_MONTH_FORMS = (
    {m: m for m in MONTHS} | {m[:3]: m for m in MONTHS if m != "may"} | {"sept": "september"}
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _listed(words: str) -> list[str]:
    return words.split()


def _wordlist(words: str) -> frozenset[str]:
    return frozenset(_listed(words))


_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        _listed(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "dozen": "12"}
_ORDINALS = {
    w: str(i)
    for i, w in enumerate(
        _listed("zeroth first second third fourth fifth sixth seventh eighth ninth tenth")
    )
}
_MAGNITUDES = {"thousand": "thousand", "million": "million", "mn": "million", "m": "million",
               "billion": "billion", "bn": "billion", "b": "billion", "trillion": "trillion",
               "tn": "trillion"}  # fmt: skip
_NEGATIONS = _wordlist(
    "not no never none nobody nothing neither nor without cannot deny denies denied denying denial"
)
# Capitalised words that name no particular thing: a title before a name ("President"), or a
# common word that opens a sentence ("However", "Officials"). A name after a title is checked.
_TITLES = _wordlist(
    "president prime minister secretary senator sen rep representative governor gov mayor "
    "chancellor king queen prince ceo chief spokesperson spokesman spokeswoman mr mrs ms dr gen "
    "general pres vice"
)
_COMMON = _wordlist(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with i we you he she his her its our your my me us them "
    "who whom whose which what when where why how after before during while since until despite "
    "although though because also however meanwhile moreover still yet so thus instead both "
    "either each every all some many most more several other another one according officials "
    "authorities experts critics analysts people police sources reports report"
)
_CONNECTORS = frozenset({"of", "and", "the", "for", "&", "on", "de", "du", "al"})


@dataclass(frozen=True)
class Fact:
    """A word of a sentence that carries a fact, and the normalised forms that support it."""

    word: str  # as the sentence writes it ("Feb", "G-7", "Iranian")
    kind: str  # "name", "number", "date", "negation" or "quoted"
    keys: frozenset[str]
    opening: bool = False  # a capitalised word opening the sentence: a name only if no passage
    # writes it in lower case ("Burglars stole ..." from a passage about "burglars")


@dataclass(frozen=True)
class Judgement:
    """How well one passage supports one sentence (similarities are cosine, higher is closer)."""

    supported: bool
    quote: str  # the passage sentence the sentence is closest to
    reason: str | None  # why not, naming the word or measure that failed; None when supported
    check: str | None = None  # the check that failed: question, fact, negation or wording
    missing: tuple[str, ...] = ()  # those the passage lacks near the quote
    premise: tuple[str, ...] = ()  # words of the question it repeats that the passage lacks
    negates: bool = False  # the quoted passage sentence negates; the sentence does not
    overlap: float = 0.0  # share of the sentence's words near the quote (facts as checked)
    cosine: float = 0.0  # best similarity to a passage sentence near the quote
    own: float = 0.0  # share of its content words in the quoted sentence itself
    # share of its words that are not the question's (what answers it) near the quote; 1.0
    # when it has none
    novel: float = 1.0

    @property
    def strength(self) -> tuple[int, float, float, float, float]:
        """For choosing among windows and passages: fewer missing facts, then closer wording."""
        return (-len(self.missing), self.overlap, self.novel, self.own, self.cosine)


def _stem(words: list[str]) -> list[str]:
    return _stemmer().stemWords(words)


@functools.cache
def _stemmer():  # noqa: ANN202 - Stemmer.Stemmer, imported lazily
    """The English Snowball stemmer BM25 uses (rag.lexical.tokenize), made once."""
    import Stemmer

    return Stemmer.Stemmer("english")


def _clean(word: str) -> str:
    word = word.strip(".,'’")
    for suffix in ("'s", "’s"):
        if word.lower().endswith(suffix):
            word = word[: -len(suffix)]
    return word


def _number_keys(word: str) -> set[str]:
    """'$1,200' -> {'1200'}; '1.5bn' -> {'1.5', 'billion'}; '97-81' -> {'97', '81'}."""
    keys = {d.replace(",", "") for d in _DIGITS.findall(word)}
    keys = {k.rstrip("0").rstrip(".") if "." in k else k for k in keys}
    tail = re.sub(r"^[\d.,$€£%-]+", "", word.lower())
    if tail in _MAGNITUDES:
        keys.add(_MAGNITUDES[tail])
    return keys


def _caps(word: str) -> str | None:
    """An all-capitals word or letter-number code as its acronym key ("U.S." -> "^us",
    "G-7" -> "^g7"), or None: acronyms only ever match acronyms (not the pronoun "us")."""
    letters = word.replace(".", "").replace("-", "")
    if (
        len(letters) >= 2
        and letters.isalnum()
        and letters.upper() == letters
        and (sum(c.isalpha() for c in letters) >= 1)
    ):
        return "^" + letters.lower()
    return None


def _word_keys(word: str) -> set[str]:
    """Every normalised form of one word (what a fact may match, or a passage offer)."""
    low = _clean(word).lower()
    keys = {low}
    caps = _caps(_clean(word))
    if caps:
        keys.add(caps)
    joined = _LETTER_NUMBER.match(low)
    if joined:
        return {low, joined.group(1) + joined.group(2), "^" + joined.group(1) + joined.group(2)}
    if any(c.isdigit() for c in low):
        keys |= _number_keys(low)
    if low in _NUMBER_WORDS:
        keys.add(_NUMBER_WORDS[low])
    if low in _ORDINALS:
        keys.add(_ORDINALS[low])
    if low in _MAGNITUDES and len(low) > 2:
        keys.add(_MAGNITUDES[low])
    if low.rstrip(".") in _MONTH_FORMS:
        keys.add(_MONTH_FORMS[low.rstrip(".")])
    if "." in low and low.replace(".", "").isalpha():
        keys.add(low.replace(".", ""))  # U.S. / US
    if "-" in low:
        keys |= {p for p in low.split("-") if p}
    return keys


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


_RUN = re.compile(r"[A-Z][\w'’.-]*(?:\s+(?:(?:of|and|the|for|&)\s+)*[A-Z][\w'’.-]*)+")


def _runs(text: str) -> list[list[str]]:
    """Runs of capitalised words joined by spaces, "of", "and", "the" (names of bodies: "Group
    of Seven"), without crossing punctuation."""
    return [_words(m.group(0)) for m in _RUN.finditer(text)]


def _acronym(run: Sequence[str]) -> str:
    parts = []
    for w in run:
        low = _clean(w).lower()
        if low in _CONNECTORS:
            continue
        parts.append(_NUMBER_WORDS.get(low, low[:1]))
    return "^" + "".join(parts)


def text_keys(text: str) -> frozenset[str]:
    """The normalised forms of every word of a text, their stems, and the acronyms of its
    capitalised runs ("Group of Seven" also offers "^g7", "United Nations" "^un")."""
    keys: set[str] = set()
    for w in _words(text):
        keys |= _word_keys(w)
    keys |= set(_stem([k for k in keys if k.isalpha()]))
    keys |= {_acronym(run) for run in _runs(text)}
    return frozenset(keys)


def facts(sentence: str) -> list[Fact]:
    """The words of sentence that carry its facts: names (capitalised words other than titles
    and common words opening a sentence), numbers, dates, negations and quoted terms. A name
    in a run of capitalised words also matches the run's acronym ("Group of Seven": "G7")."""
    out: list[Fact] = []
    quoted = {w.lower() for m in _QUOTED.finditer(sentence) for w in _words(m.group(1))}
    run_of = {w: _acronym(run) for run in _runs(sentence) for w in run}
    for at, raw in enumerate(_words(sentence)):
        word = _clean(raw)
        low = word.lower()
        if not word:
            continue
        keys = frozenset(_word_keys(word))
        caps = _caps(word)
        if low in _TITLES:
            continue
        if caps:
            out.append(Fact(word, "name", frozenset({caps})))
        elif any(c.isdigit() for c in low) or low in _NUMBER_WORDS or low in _ORDINALS:
            run = run_of.get(raw)
            keys = keys | {run} if run and len(run) > 2 else keys
            out.append(Fact(word, "number", keys))
        elif (low.rstrip(".") in _MONTH_FORMS and word[:1].isupper()) or low in _WEEKDAYS:
            out.append(Fact(word, "date", keys))
        elif low in _NEGATIONS or low.endswith("n't"):
            out.append(Fact(word, "negation", frozenset({"<negation>"})))
        elif word[:1].isupper() and low not in _COMMON:
            run = run_of.get(raw)
            keys = keys | {run} if run and len(run) > 2 else keys
            out.append(Fact(word, "name", keys, opening=at == 0))
        elif low in quoted and low not in _COMMON:
            out.append(Fact(word, "quoted", keys))
    return list({(f.word, f.kind): f for f in out}.values())


def _has(fact: Fact, keys: frozenset[str], stems: frozenset[str]) -> bool:
    if fact.kind == "negation":  # keys: the quoted sentence's own (see judge)
        return "<negation>" in keys
    if fact.keys & keys:
        return True
    if fact.kind in ("name", "quoted"):
        stem = _stem([_clean(fact.word).lower()])[0]
        # both forms of a demonym pair share at least their first three letters
        return stem in stems or any(s[:3] == stem[:3] and _demonym(stem, s) for s in stems)
    return False


def _demonym(a: str, b: str) -> bool:
    """Whether two stems name one place and its people: 'iran'/'iranian', 'mexico'/'mexican',
    'china'/'chines', 'israel'/'isra' (prefix rule of lexical.same_name, plus a dropped vowel)."""
    if same_name(a, b):
        return True
    short, long = sorted((a, b), key=len)
    return (
        len(short) >= 4
        and short[-1] in "aeoy"
        and long.startswith(short[:-1])
        and (long[len(short) - 1 :] in ("an", "ian", "es", "ese", "i"))
    )


def _asks(word: str, asked: frozenset[str]) -> bool:
    """Whether a stem is one of the question's, or its other spelling ("defens" for the
    question's "defenc", "organiz" for "organis"): one letter changed in a stem of five or more."""
    if word in asked:
        return True
    return len(word) >= 5 and any(
        len(a) == len(word) and sum(x != y for x, y in zip(a, word, strict=True)) == 1
        for a in asked
    )


def _content(text: str) -> frozenset[str]:
    """Content-word stems (BM25's, less the auxiliary verbs' "be", "have", "do")."""
    return frozenset(tokenize([text])[0]) - {"be", "have", "do"}


def _negated(text: str) -> bool:
    return any(w.lower() in _NEGATIONS or w.lower().endswith("n't") for w in _words(text))


@dataclass(frozen=True)
class Window:
    """A passage sentence with the one either side: where a quoted fact must be."""

    quote: str
    keys: frozenset[str]
    stems: frozenset[str]  # the window's content-word stems
    own: frozenset[str]  # the quoted sentence's own stems
    negated: bool
    lower: frozenset[str]  # words the quoted sentence writes in lower case
    sequence: tuple[str, ...] = ()  # the window's words in order, lower case, as _form has them


def _form(word: str) -> str:
    """A word as a name is compared in a phrase: cleaned, lower case, stemmed."""
    return _stem([_clean(word).lower()])[0]


def names(sentence: str) -> list[tuple[str, ...]]:
    """The sentence's names of two words or more ("United Airlines", "Oklahoma City Thunder"),
    titles and common words trimmed off, as the words it writes."""
    out = []
    for run in _runs(sentence):
        words = [_clean(w) for w in run if _clean(w)]
        while words and (words[0].lower() in _TITLES or words[0].lower() in _COMMON):
            words.pop(0)
        if len(words) >= 2 and not any(w.lower() in _CONNECTORS for w in words):
            out.append(tuple(words))
    return out


def _named(name: tuple[str, ...], w: Window) -> bool:
    """Whether the window writes name as one phrase (or its acronym): "United Airlines" is not
    named by "United Kingdom" and "the airline"."""
    if _acronym(name) in w.keys:
        return True
    forms = [_form(x) for x in name]
    seq, n = w.sequence, len(forms)
    return any(
        all(_demonym(a, b) for a, b in zip(forms, seq[i : i + n], strict=True))
        for i in range(len(seq) - n + 1)
    )


def windows(passage_sents: Sequence[str]) -> list[Window]:
    """Each passage sentence's window (it and its neighbours), keys computed once."""
    keys = [text_keys(s) for s in passage_sents]
    stems = [frozenset(t) for t in tokenize(list(passage_sents))]
    out = []
    for i, s in enumerate(passage_sents):
        lo, hi = max(0, i - 1), i + 2
        near = frozenset().union(*keys[lo:hi])
        lower = frozenset(w.lower() for w in _words(s) if w[:1].islower())
        sequence = tuple(_form(w) for x in passage_sents[lo:hi] for w in _words(x))
        out.append(
            Window(
                s, near, frozenset().union(*stems[lo:hi]), stems[i], _negated(s), lower, sequence
            )
        )
    return out


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (higher is closer; 0.0 for a zero vector)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def judge(
    sentence: str,
    n: int,
    passage_windows: Sequence[Window],
    vectors: dict[str, list[float]],
    tuning: Tuning,
    asked: frozenset[str] = frozenset(),
) -> Judgement:
    """Whether passage [n] (its sentences' windows) supports sentence, and if not, why."""
    if not passage_windows:
        return Judgement(False, "", f"passage [{n}] is empty", "wording")
    lower = frozenset().union(*(w.lower for w in passage_windows))
    phrases = names(sentence)
    found = [f for f in facts(sentence) if not (f.opening and _clean(f.word).lower() in lower)]
    words = _content(sentence)
    fact_stems = frozenset(_stem([f.word.lower() for f in found]))
    rest = words - fact_stems  # the wording around the facts, which may be paraphrased
    total = len(rest) + len(found)
    vector = vectors.get(sentence)
    stems = frozenset().union(*(w.stems for w in passage_windows))
    premise = tuple(sorted(w for w in words - stems if _asks(w, asked)))
    best: Judgement | None = None
    for i, w in enumerate(passage_windows):
        # A negation must be the quoted sentence's own: "did not agree" is not supported by
        # a denial in the next sentence about something else.
        own_keys = w.keys | {"<negation>"} if w.negated else w.keys
        missing = tuple(f.word for f in found if not _has(f, own_keys, w.stems))
        # A name of two words or more, each word found, must be written as one name there.
        missing += tuple(
            " ".join(name)
            for name in phrases
            if not set(name) & set(missing) and not _named(name, w)
        )
        held = len(found) - len(missing) + len(rest & w.stems)
        overlap = held / total if total else 0.0
        new_facts = [f for f in found if not _asks(_stem([f.word.lower()])[0], asked)]
        new_rest = {x for x in rest if not _asks(x, asked)}
        novel = 1.0
        if new_facts or new_rest:
            supported = sum(f.word not in missing for f in new_facts) + len(new_rest & w.stems)
            novel = supported / (len(new_facts) + len(new_rest))
        own = len(words & w.own) / len(words) if words else 0.0
        near = passage_windows[max(0, i - 1) : i + 2]
        similarity = 0.0
        if vector is not None:
            similarity = max(
                (cosine(vector, vectors[x.quote]) for x in near if x.quote in vectors), default=0.0
            )
        negates = w.negated and not _negated(sentence)
        j = Judgement(
            False,
            w.quote,
            None,
            None,
            missing,
            premise,
            negates,
            overlap,
            similarity,
            own,
            novel,
        )
        if best is None or j.strength > best.strength:
            best = j
    assert best is not None
    return verdict(best, n, tuning, found, passage_windows)


def verdict(
    j: Judgement,
    n: int,
    tuning: Tuning,
    found: Sequence[Fact] = (),
    passage_windows: Sequence[Window] = (),
) -> Judgement:
    """The judgement with its verdict under tuning: the first check that fails, and why."""
    reason = check = None
    if j.missing:
        check = "fact"
        word = j.missing[0]
        fact = next((f for f in found if f.word == word), None)
        everywhere = frozenset().union(*(w.keys for w in passage_windows))
        stems = frozenset().union(*(w.stems for w in passage_windows))
        if fact is None and " " in word:
            reason = f'"{word}" is not in passage [{n}] as one name (its words are apart)'
        elif fact is not None and fact.kind == "negation":
            reason = f'"{word}": passage [{n}] says nothing negative near the quoted sentence'
        elif fact is not None and _has(fact, everywhere, stems):
            reason = f'"{word}" is in passage [{n}] but not near the sentence it quotes'
        else:
            reason = f'"{word}" is not in passage [{n}]'
    elif j.premise and tuning.guard_question_words:
        check = "question"
        reason = f'"{j.premise[0]}" (a word of the question) is not in passage [{n}]'
    elif j.negates and tuning.guard_negation:
        check = "negation"
        reason = f'passage [{n}] negates what the sentence states ("{j.quote[:60]}")'
    elif j.novel < tuning.guard_min_novel:
        check = "wording"
        reason = (
            f"passage [{n}] says too little of what it adds to the question ({j.novel:.0%} of "
            "those words)"
        )
    elif not (
        j.overlap >= tuning.guard_min_overlap
        or (j.cosine >= tuning.guard_min_cosine and j.overlap >= tuning.guard_min_cosine_overlap)
    ):
        check = "wording"
        reason = (
            f"passage [{n}] says too little of it ({j.overlap:.0%} of its words, "
            f"similarity {j.cosine:.2f})"
        )
    return replace(j, supported=reason is None, reason=reason, check=check)
