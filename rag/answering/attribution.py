"""Who said what: the speaker a question asks about, and the speakers a stretch of text quotes.

News reports claims, and a question like "What did Iran say about the transfers?" is only
answered by something Iran is reported to have said: a sentence about the transfers that quotes
the White House answers a different question. These rules are plain patterns over the text
(no parser): a reporting verb ("said", "denies", "warned") and the words before it, back to
the start of its sentence, quote or clause; the name after an inverted "…," said X"; and
whoever "according to" names. See speakers().
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.lexical import same_name, tokenize

# Verbs a question uses to ask what somebody said or how they answered.
_ASKING_VERBS = (
    r"say|said|claim|warn|argue|insist|deny|denied|respond|react|threaten|acknowledge|admit|"
    r"announce|tell|told|allege|accuse|blame|describe|state|confirm|think|believe|predict|"
    r"reveal|call\s+for|demand|urge|promise|vow|suggest|explain|comment"
)
# "What did Iran say ...", "How has Tehran responded ...", "Did the White House confirm ...".
_SPEAKER_QUESTION = re.compile(
    rf"(?:^\s*|\b(?:what|how|why|when)\s+(?:\w+\s+){{0,2}}?)(?:did|does|do|has|have|had)\s+"
    rf"(?P<speaker>(?:the\s+)?[^\s?,][^?,]*?)\s+(?:{_ASKING_VERBS})\w*\b",
    re.I,
)
# "And Iran?", "What about the G-7 leaders?": a follow-up that only names somebody (four words
# at most, capitalised).
_ONLY_A_NAME = re.compile(
    r"^\s*(?i:and|what about|how about)\s+(?P<who>(?:the\s+)?[A-Z][\w.'’-]*(?:\s+[\w.'’-]+){0,3})"
    r"\s*\??\s*$"
)
# Verbs that report what somebody said, in any of their forms.
_REPORTING = re.compile(
    r"\b(?:says?|said|saying|tells?|told|add(?:s|ed)|not(?:es|ed)|warn(?:s|ed|ing)?|"
    r"claim(?:s|ed)?|insist(?:s|ed)?|den(?:y|ies|ied)|acknowledg(?:es|ed)|admit(?:s|ted)|"
    r"stat(?:es|ed)|argu(?:es|ed)|believes?|believed|think|thinks|thought|accus(?:es|ed)|"
    r"alleg(?:es|ed)|announc(?:es|ed)|confirm(?:s|ed)|declined|reiterat(?:es|ed)|urg(?:es|ed|ing)|"
    r"threaten(?:s|ed)|explain(?:s|ed)|respond(?:s|ed)|call(?:s|ed) for|consider(?:s|ed)|"
    r"reported|predict(?:s|ed)|vow(?:s|ed)|promis(?:es|ed)|suggest(?:s|ed)|describ(?:es|ed)|"
    r"blam(?:es|ed)|demand(?:s|ed)|reveal(?:s|ed)|dispute[sd]?)\b"
)  # lower case only: "the United States" is not a verb
# Where the words before a reporting verb stop: a sentence's end, a quote, a clause break.
_BOUNDARY = re.compile(
    r"[.!?;:\"“”]\s|[\"“”]|^|(?P<conjunction>\b(?:and|but|that|which|while|after|before|because|"
    r"if)\s)",
    re.M,
)
# "…," said National Security Council spokesman John Kirby.
_INVERTED = re.compile(r"[,\"“”]\s*(?:said|says|added|noted|told)\s+([^,.;\"“”]{2,80})", re.I)
_ACCORDING = re.compile(r"\baccording to\s+([^,.;\"“”]{2,80})", re.I)
# Words that say nothing about who is speaking.
_GENERIC = {"offici", "said", "say"}  # ("officials said"); stop words are gone already
_PRONOUNS = {"he", "she", "it", "they", "we", "you", "i", "this", "that"}
# "A report by the institute about the embargo on Iran explains": past these, the words before
# the verb say what the statement is about, not who makes it.
_TOPIC = re.compile(r"^(?:about|on|regarding|concerning|over|against)$", re.I)
# A speaker is named in the few words before its verb ("Foreign Minister Hossein Amirabdollahian
# said"): further back is what the sentence is about, not who says it.
_SUBJECT_WORDS = 6


@dataclass(frozen=True)
class Speaker:
    """Who a question asks about, as the stems a speaker in the text must have: all of them
    ("Iran's supreme leader" is a supreme leader, not anyone from Iran), but for a name only
    the last ("Kirby" is John Kirby)."""

    required: frozenset[str]
    # Whose it is ("China's foreign ministry"): named anywhere near, not necessarily as speaker.
    owner: frozenset[str] = frozenset()


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
    required = _stems(" ".join(words))
    if not required:
        return None
    return Speaker(frozenset(required), frozenset(_stems(" ".join(owners))))


def ask_of(previous: str, follow_up: str) -> str | None:
    """The previous question asked again of the speaker a bare follow-up names, or None.

    "What did Kirby say about the factory?" then "And Iran?" asks what Iran said about it.
    """
    m = _SPEAKER_QUESTION.search(previous)
    named = _ONLY_A_NAME.match(follow_up)
    if not m or not named or asked_speaker(previous) is None:
        return None
    return f"{previous[: m.start('speaker')]}{named.group('who')}{previous[m.end('speaker') :]}"


def speakers(text: str) -> list[frozenset[str]]:
    """The stems of each speaker the text reports.

    Before a reporting verb, back to the last sentence end, quote mark or clause break ("but",
    "that"): the words just before it ("... , U.S. officials said") and any short stretch
    between commas ("Iran, as with previous findings, denies"). After an inverted "…," said
    X": X. And whoever "according to" names. Each as its stems, plus the initials of each run
    of capitalised words.
    """
    found = []
    starts = [(b.end(), bool(b.group("conjunction"))) for b in _BOUNDARY.finditer(text)]
    for verb in _REPORTING.finditer(text):
        start, after_conjunction = max(
            (s for s in starts if s[0] <= verb.start()), default=(0, False)
        )
        segments = [
            _before_topic(p.split()) for p in text[start : verb.start()].split(",") if p.strip()
        ]
        segments = [words for words in segments if words]
        if not segments:
            continue
        # "Mykhailo Podolyak, one of Zelensky's top advisors, threatened": a short stretch
        # between commas, or opening the sentence, may be the one that names the speaker; not
        # one after "and" ("Iran and Russia amid the war in Ukraine, US officials believe").
        candidates = [segments[-1][-_SUBJECT_WORDS:]]
        candidates += [
            words
            for i, words in enumerate(segments[:-1])
            if len(words) <= _SUBJECT_WORDS and (i > 0 or not after_conjunction)
        ]
        found += [_speaker_stems(words) for words in candidates]
    for m in (*_INVERTED.finditer(text), *_ACCORDING.finditer(text)):
        found.append(_speaker_stems(m.group(1).split()))
    return [f for f in found if f]


def quotes(speaker: Speaker, text: str) -> bool:
    """Whether text reports something said by speaker."""
    if speaker.owner:
        named = _stems(text)
        if not all(any(same_name(o, w) for w in named) for o in speaker.owner):
            return False
    return any(
        all(any(same_name(r, w) for w in said_by) for r in speaker.required)
        for said_by in speakers(text)
    )


def _before_topic(words: list[str]) -> list[str]:
    """The words before the first that starts a topic ("about the embargo on Iran")."""
    cut = next((i for i, w in enumerate(words) if _TOPIC.match(w)), len(words))
    return words[:cut]


def _stems(text: str) -> list[str]:
    return [t for t in tokenize([text])[0] if t not in _GENERIC]


def _speaker_stems(words: list[str]) -> frozenset[str]:
    """A speaker's stems, with the initials of each run of capitalised words: "the United
    Nations" is also "UN", as a question may call it."""
    runs = " ".join(w if w[:1].isupper() else "|" for w in words).split("|")
    initials = ["".join(w[0] for w in run.split()).lower() for run in runs]
    return frozenset(_stems(" ".join(words))) | {i for i in initials if len(i) >= 2}
