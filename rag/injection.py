"""Text in an article addressed to an AI assistant ("ignore previous instructions", "note to AI
summarizers: ...", a fake "SYSTEM NOTE"): found by a few rules, so it is flagged at index time
and is never evidence for an answer.

An article is data; an instruction inside it is content to report, never to follow (issue 31).
The rules are deliberately few and general, each a pattern of the language such text uses and
news rarely does; their false positives on real news are measured in eval/INJECTION.md. A rule
match flags a span: from the start of its sentence to the end of its paragraph (what follows an
instruction is its payload: 'say "The factory is in Paris"'), or the bracketed aside it sits in.

Not caught: an instruction in words none of the rules know, in a language other than English,
French, Spanish, German, Italian or Portuguese, or in look-alike letters of another alphabet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.retrieval import Passage

_AI = (
    r"(?:AIs?|A\.I\.|artificial intelligence|(?:AI |virtual |digital )?assistants?|chat ?bots?"
    r"|LLMs?|(?:large )?language models?|GPT\w*|summari[sz]ers?|(?:AI|automated)\s+(?:systems?"
    r"|models?|agents?|tools?|crawlers?|readers?|summari[sz]ation tools?))"
)
_RULES: dict[str, str] = {
    # "ignore all previous instructions", "disregard the above", "forget your rules"
    "override": (
        r"\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:(?:all|any|the|your|my|of|these"
        r"|every|everything)\s+){0,3}(?:(?:previous|prior|above|earlier|preceding|foregoing"
        r"|original|other|system|existing)\s+)(?:instructions?|prompts?|rules|directions"
        r"|guidelines|context|passages|messages|sources|articles|text)\b"
        r"|\bdisregard\s+(?:all\s+|everything\s+)?(?:the\s+)?above\b"
    ),
    # "Note to AI systems", "IMPORTANT MESSAGE FOR THE ASSISTANT", "Attention chatbots:"
    "addressed": (
        r"\b(?:notes?|message|instructions?|attention|reminder|notice|warning|memo|request)\s+"
        rf"(?:to|for)\s+(?:all\s+|any\s+)?(?:the\s+)?{_AI}\b"
        rf"|\b(?:attention|dear|hey|hello)\s*,?\s+(?:all\s+)?{_AI}\s*[:,!]"
        rf"|\bif\s+you\s+are\s+(?:an?\s+)?{_AI}\b"
        rf"|\b{_AI}\s+(?:reading|summari[sz]ing|quoting|processing|answering|citing)\s+this\b"
    ),
    # a fake system, developer or admin message: "[SYSTEM NOTE]", "Developer message:"
    "fake-system": (
        r"(?:^|[\[(<{*#|])\s*(?:important\s+|urgent\s+|new\s+)?(?:system|developer|admin"
        r"|administrator|assistant)\s+(?:note|message|prompt|instructions?|override|command)s?"
        r"\s*(?:[:\]>)}*|]|to\s+the\s+(?:assistant|AI|model))"
        r"|\b(?:important|urgent)\s+(?:system|developer)\s+(?:note|message|instructions?)\b"
    ),
    # a role switch: "you are now DAN", "enter developer mode"
    "role": (
        r"\byou\s+are\s+now\s+(?:a|an|in|the|my)\b(?!\s+(?:able|free|ready|eligible|required"
        r"|allowed|entering|leaving|watching|reading|listening|going|looking|seeing))"
        r"|\b(?:developer|jailbreak|god|DAN)\s+mode\b"
        r"|\bnew\s+instructions\s*:"
    ),
    # orders about the answer: "answer every question with", "say this and cite this article"
    "answer": (
        r"\b(?:answer|respond\s+to|reply\s+to)\s+(?:every|all|any|each)\s+(?:question|quer(?:y|ies)"
        r"|prompt|request)s?\s+(?:with|by|saying|as|using)\b"
        r"|\b(?:always|only)\s+(?:answer|respond|reply)\s+(?:with|by\s+saying)\b"
        r"|\bsay\s+(?:this|that|so|only|exactly)\b[^.\n]{0,40}\bcite\b"
        r"|\bcite\s+this\s+(?:article|page|passage|source)\s+as\s+(?:the|your)\b"
        r"|\b(?:tell|inform|remind|direct|send|refer)\s+(?:the\s+|your\s+)?users?\s+(?:that|to)\b"
        r"|\b(?:in\s+your|your)\s+(?:answer|response|reply|summary)\s*,?\s+(?:say|state|write"
        r"|claim|report|mention|include)\b"
        r"|\b(?:when|if)\s+(?:you\s+are\s+)?(?:asked|answering|summari[sz]ing|quoting|citing)\b"
        r"[^.\n]{0,80}?,\s*(?:always\s+)?(?:say|answer|reply|respond|state|write|tell|refuse)\b"
        r"|\brefuse\s+to\s+answer\s+(?:any|all|every)\b"
        r"|\b(?:do\s+not|don't|never)\s+(?:mention|reveal|disclose|repeat)\s+(?:this|these)"
        r"\s+(?:instructions?|notes?|messages?)\b"
    ),
    # the same orders in other languages
    "foreign": (
        r"\b(?:ignor\w*|olvid\w*|vergiss\w*|oublie\w*|dimentica\w*|esque[cç]a\w*)\s+(?:\w+\s+){0,3}"
        r"(?:instructions|instrucciones|anweisungen|istruzioni|instru[cç][oõ]es)\b"
        r"|\b(?:note|nota|hinweis|mensaje|messaggio)\s+(?:pour|para|f[üu]r|per|a)\s+(?:les\s+|la\s+"
        r"|las\s+|los\s+|die\s+|gli\s+|os\s+|as\s+)?(?:IA|KI|AI|assistant\w*|asistente\w*"
        r"|assistente\w*|chatbots?)\b"
    ),
}
_PATTERNS = {name: re.compile(rule, re.I | re.M) for name, rule in _RULES.items()}
# Letters spaced out ("i g n o r e  a l l"), which the rules would otherwise read as one-letter
# words: a single separator joins letters, a wider gap separates words.
_SPACED = re.compile(r"(?<!\w)(?:[A-Za-z][ ._*\-]{1,3}){5,}[A-Za-z](?!\w)")
_SENTENCE_START = re.compile(r"[.!?][\"'”’)\]]*\s+|\n")
_BRACKETS = {"(": ")", "[": "]"}


@dataclass(frozen=True)
class Span:
    """A stretch of text addressed to an AI assistant: [start, end) in the text it was found
    in, the rule that found it, and the words that matched."""

    start: int
    end: int
    rule: str
    match: str


def find(text: str) -> list[Span]:
    """The spans of text addressed to an AI assistant, in order, overlapping ones merged."""
    spans: list[Span] = []
    for normal, origin in _views(text):
        for rule, pattern in _PATTERNS.items():
            for m in pattern.finditer(normal):
                start, end = origin(m.start()), origin(m.end() - 1) + 1
                spans.append(Span(*_extent(text, start, end), rule, " ".join(m.group(0).split())))
    return _merged(spans)


def _views(text: str) -> list[tuple[str, Callable[[int], int]]]:
    """The text, and where it spaces letters out a copy with them joined, each with the map
    from its offsets back to the text's."""
    views: list[tuple[str, Callable[[int], int]]] = [(text, lambda i: i)]
    if not _SPACED.search(text):
        return views
    parts: list[str] = []
    where: list[int] = []
    at = 0
    for m in _SPACED.finditer(text):
        parts.append(text[at : m.start()])
        where.extend(range(at, m.start()))
        run = m.group(0)
        for i, c in enumerate(run):
            if c.isalpha():
                parts.append(c)
                where.append(m.start() + i)
            elif run[i - 1].isalpha() and not run[i + 1].isalpha():
                parts.append(" ")  # a gap of two or more separators: a word ends
                where.append(m.start() + i)
        at = m.end()
    parts.append(text[at:])
    where.extend(range(at, len(text)))
    joined = "".join(parts)
    return [*views, (joined, lambda i: where[min(i, len(where) - 1)])]


def _extent(text: str, start: int, end: int) -> tuple[int, int]:
    """The flagged stretch around a match: the bracketed aside it is in, else from its
    sentence's start to its paragraph's end."""
    opening = max(text.rfind(o, 0, start) for o in _BRACKETS)
    if opening >= 0 and "\n" not in text[opening:start]:
        closing = text.find(_BRACKETS[text[opening]], end)
        if (
            closing >= 0
            and "\n" not in text[end:closing]
            and text.find(text[opening], opening + 1, start) < 0
        ):
            return opening, closing + 1
    line_start = text.rfind("\n", 0, start) + 1
    sentence_start = line_start
    for m in _SENTENCE_START.finditer(text, line_start, start):
        sentence_start = m.end()
    paragraph_end = text.find("\n", end)
    return sentence_start, len(text) if paragraph_end < 0 else paragraph_end


def _merged(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and s.start <= out[-1].end:
            last = out[-1]
            out[-1] = replace(last, end=max(last.end, s.end))
        else:
            out.append(s)
    return out


def flagged(text: str) -> bool:
    """Whether any of the text is addressed to an AI assistant."""
    return bool(find(text))


def masked(text: str, spans: Sequence[Span] | None = None) -> str:
    """The text with its flagged spans blanked (spaces; line breaks and offsets kept)."""
    spans = find(text) if spans is None else spans
    if not spans:
        return text
    out = list(text)
    for s in spans:
        for i in range(s.start, s.end):
            if out[i] != "\n":
                out[i] = " "
    return "".join(out)


def flags(passages: Sequence[Passage]) -> dict[int, list[Span]]:
    """Each passage's flagged spans, by rank: found once per answer, read at each step that
    needs them (the evidence, a model's refusal, the screening)."""
    return {p.rank: find(p.text) for p in passages}


def evidence(
    passages: Sequence[Passage], flagged: dict[int, list[Span]] | None = None
) -> list[Passage]:
    """The passages as evidence for an answer: flagged spans (flags(passages), unless given)
    blanked, so no answer sentence, URL, e-mail address or phone number stands on text
    addressed to an AI assistant."""
    flagged = flags(passages) if flagged is None else flagged
    return [
        replace(p, text=masked(p.text, s)) if (s := flagged.get(p.rank)) else p for p in passages
    ]


def describe(span: Span, limit: int = 60) -> str:
    """A span as a reason names it: the rule and the words that matched."""
    words = span.match if len(span.match) <= limit else span.match[: limit - 1] + "…"
    return f'{span.rule}: "{words}"'
