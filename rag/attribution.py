"""Who said what: the speakers a stretch of text quotes, and whether one is the asked speaker.

News reports claims, and a question like "What did Iran say about the transfers?" is only
answered by something Iran is reported to have said: a sentence about the transfers that quotes
the White House answers a different question. These rules are plain patterns over the text
(no parser): a reporting verb ("said", "denies", "warned") and the words before it, back to
the start of its sentence, quote or clause; the name after an inverted "…," said X"; and
whoever "according to" names. See speakers().
"""

from __future__ import annotations

import re

from rag.lexical import same_name, speaker_stems
from rag.question import Speaker

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
# "A report by the institute about the embargo on Iran explains": past these, the words before
# the verb say what the statement is about, not who makes it.
_TOPIC = re.compile(r"^(?:about|on|regarding|concerning|over|against)$", re.I)
# A speaker is named in the few words before its verb ("Foreign Minister Hossein Amirabdollahian
# said"): further back is what the sentence is about, not who says it.
_SUBJECT_WORDS = 6


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
        found += [_said_by(words) for words in candidates]
    for m in (*_INVERTED.finditer(text), *_ACCORDING.finditer(text)):
        found.append(_said_by(m.group(1).split()))
    return [f for f in found if f]


def quotes(speaker: Speaker, text: str) -> bool:
    """Whether text reports something said by speaker."""
    if speaker.owner:
        named = speaker_stems(text)
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


def _said_by(words: list[str]) -> frozenset[str]:
    """A speaker's stems, with the initials of each run of capitalised words: "the United
    Nations" is also "UN", as a question may call it."""
    runs = " ".join(w if w[:1].isupper() else "|" for w in words).split("|")
    initials = ["".join(w[0] for w in run.split()).lower() for run in runs]
    return frozenset(speaker_stems(" ".join(words))) | {i for i in initials if len(i) >= 2}
