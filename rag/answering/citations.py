"""Parse `[n]` markers out of an answer and check each cited sentence against its passage."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from langchain_core.embeddings import Embeddings

from rag.answering import Citation, Sentence
from rag.answering.grounding import Judgement, judge, windows
from rag.attribution import quotes
from rag.chunking import split_sentences
from rag.lexical import tokenize
from rag.question import Speaker
from rag.retrieval import Passage
from rag.settings import Tuning

MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_LEADING = re.compile(r"(?:\s*\[\d+(?:\s*,\s*\d+)*\])+")
_NUMBER = re.compile(r"\d[\d,.]*")

# A verbatim extract is supported when Tuning.min_overlap of its content words are in the cited
# passage (and every figure); a generated sentence goes through rag/answering/grounding.py.
_DEFAULT_TUNING = Tuning()


_AFTER_MARKER = re.compile(r"(?<=\])\s+(?=[\"'“‘(]?[A-Z0-9])")


def split_answer(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """Answer sentences (markers removed) with the passage numbers each one cites.

    A marker that follows a sentence's final period (`... said. [2]`) belongs to that sentence.
    """
    out: list[tuple[str, tuple[int, ...]]] = []
    # A marker followed by a capitalised word also ends a sentence, even one without a final
    # period (a headline quoted as an answer: `Iran denies it [1] The White House says [2]`).
    pieces = [part[s:e] for part in _AFTER_MARKER.split(text) for s, e in split_sentences(part)]
    for piece in pieces:
        # The sentence splitter breaks before `[2] Next sentence`, so markers that open a piece
        # close the previous sentence.
        lead = _LEADING.match(piece)
        if lead and out:
            prev_text, prev_cites = out[-1]
            out[-1] = (prev_text, prev_cites + _numbers(lead.group(0)))
            piece = piece[lead.end() :]
        cites = _numbers(piece)
        clean = MARKER.sub("", piece).strip()
        if clean:
            out.append((clean, cites))
        elif out:  # a lone marker after the sentence it belongs to
            prev_text, prev_cites = out[-1]
            out[-1] = (prev_text, prev_cites + cites)
    return out


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(n) for m in MARKER.finditer(text) for n in m.group(1).split(","))


def verify(
    answer_text: str,
    passages: Sequence[Passage],
    embedder: Embeddings | None,
    tuning: Tuning = _DEFAULT_TUNING,
    asked: frozenset[str] = frozenset(),
) -> tuple[list[Sentence], list[Citation]]:
    """Check every answer sentence against the passages it cites; build the citation list.

    A citation can only point at a retrieved passage: `[n]` outside 1..len(passages) makes its
    sentence unsupported. embedder=None checks lexical overlap only (verbatim extracts);
    with an embedder, a generated sentence goes through the grounding guard
    (rag/answering/grounding.py: its facts must be in the passage, its wording may differ).
    asked: the question's word stems (Query.focus), which the guard reads.
    """
    by_n = {p.rank: p for p in passages}
    parsed = split_answer(answer_text)
    passage_sents = _passage_sentences(passages)
    cited = sorted({n for _, cites in parsed for n in cites if n in by_n})
    vectors = _vectors([s for s, _ in parsed], passage_sents, cited, embedder)
    guard = embedder is not None
    spans = {n: windows(passage_sents[n]) for n in cited} if guard else {}

    sentences: list[Sentence] = []
    support: dict[int, list[tuple[bool, str]]] = {}
    for text, cites in parsed:
        ok = bool(cites) and all(n in by_n for n in cites)
        reason = None if cites else "it cites no passage"
        for n in cites:
            if n not in by_n:
                reason = reason or f"[{n}] is not a retrieved passage"
                continue
            if guard:
                judged = judge(text, n, spans[n], vectors, tuning, asked)
                good, quote = judged.supported, judged.quote
                reason = reason or judged.reason
            else:
                good, quote = _check(text, by_n[n], passage_sents[n], tuning)
            support.setdefault(n, []).append((good, quote))
            ok = ok and good
        sentences.append(Sentence(text, cites, ok, None if ok else reason))

    citations = []
    for n in cited:
        p = by_n[n]
        checks = support[n]
        quote = next((q for good, q in checks if good), checks[0][1])
        citations.append(
            Citation(
                n=n,
                source=p.source,
                title=p.title,
                date=p.date,
                quote=quote,
                supported=all(good for good, _ in checks),
                chunk_id=p.chunk_id,
                start=p.start,
                end=p.end,
                rank=n,
            )
        )
    return sentences, citations


_END = re.compile(r"[.!?][\"'”’)]*$")


def compose(sentences: Sequence[Sentence]) -> str:
    """An answer text of these sentences, each with its citations before its final stop
    (`The factory is in Tatarstan [1].`)."""
    parts = []
    for s in sentences:
        marker = " [" + ", ".join(str(n) for n in s.cites) + "]"
        end = _END.search(s.text)
        cut = end.start() if end else len(s.text)
        parts.append(s.text[:cut] + marker + s.text[cut:])
    return " ".join(parts)


def recite(
    sentences: list[Sentence],
    passages: Sequence[Passage],
    embedder: Embeddings | None,
    tuning: Tuning = _DEFAULT_TUNING,
    asked: frozenset[str] = frozenset(),
) -> list[Sentence]:
    """The sentences, each unsupported one citing instead the retrieved passage that supports
    it best by the same check (the grounding guard), when one does: a model that cites the
    wrong passage, or none (small models often write no markers), has its citation corrected
    rather than its true sentence lost. Failing that, with tuning.guard_cut, the sentence is cut
    to its longest opening clause a passage supports (`whole` keeps it as written), so a true
    statement is not lost to one unsupported detail after a comma; the clause is checked
    exactly as a sentence is. Only sentences (and clauses) of at least
    tuning.min_recite_words content words qualify: a word or two ("HACKED") is found in some
    passage too easily to count as support. One that cites nothing and that no passage
    supports is given the reason the closest passage does not."""
    wrong = [
        i
        for i, s in enumerate(sentences)
        if not s.supported and len(_content_words([s.text])[0]) >= tuning.min_recite_words
    ]
    if not wrong:
        return sentences
    passage_sents = _passage_sentences(passages)
    heads = {
        i: clauses(sentences[i].text, tuning.min_recite_words) if tuning.guard_cut else []
        for i in wrong
    }
    texts = [t for i in wrong for t in (sentences[i].text, *heads[i])]
    vectors = _vectors(texts, passage_sents, [p.rank for p in passages], embedder)
    spans = {p.rank: windows(passage_sents[p.rank]) for p in passages}

    def best(text: str) -> tuple[int | None, list[Judgement]]:
        judged = [judge(text, p.rank, spans[p.rank], vectors, tuning, asked) for p in passages]
        good = [(j, p.rank) for j, p in zip(judged, passages, strict=True) if j.supported]
        return (max(good, key=lambda jn: jn[0].strength)[1] if good else None), judged

    out = list(sentences)
    for i in wrong:
        s = sentences[i]
        n, judged = best(s.text)
        if n is not None:
            out[i] = Sentence(s.text, (n,), True)
            continue
        why = s.reason
        if not s.cites and judged:
            closest = max(judged, key=lambda j: j.strength)
            why = f"it cites no passage, and none supports it: {closest.reason}"
        out[i] = replace(s, reason=why)
        for head in heads[i]:
            n, _ = best(head)
            if n is not None:
                out[i] = Sentence(head, (n,), True, why, whole=s.text)
                break
    return out


_CLAUSE_END = re.compile(
    r"[,;:]\s|\s[—–-]\s|\s(?:and|but|while|after|as|which|who|where|when|because|though)\s"
)


def clauses(sentence: str, min_words: int) -> list[str]:
    """The sentence's opening clauses, longest first: what it says before a comma, a dash or a
    conjunction, ended with a full stop; each with at least min_words content words."""
    heads = []
    for m in _CLAUSE_END.finditer(sentence):
        head = sentence[: m.start()].rstrip(" ,;:—–-")
        if len(_content_words([head])[0]) >= min_words:
            heads.append(head + ".")
    return heads[::-1]


# Forms of "be", "have" and "do" that the stop-word list lacks ("being", "having", "doing")
# stem to these: they carry no content, and a passage's "will be built" has no "be" left to
# match an answer's "is being built".
_AUXILIARY_STEMS = frozenset({"be", "have", "do"})


def _content_words(texts: list[str]) -> list[set[str]]:
    """Each text's content-word stems: its BM25 tokens less the auxiliary verbs' stems."""
    return [set(tokens) - _AUXILIARY_STEMS for tokens in tokenize(texts)]


def reports_speaker(
    speaker: Speaker, citations: Sequence[Citation], passages: Sequence[Passage]
) -> bool:
    """Whether a supported citation's quote, with the passage sentence either side of it (a
    speaker is often named in the sentence before a quote), reports something the speaker
    said: what the extractive answerer requires of its sentences for "What did Iran say...?"
    (attribution.quotes). A generated sentence can put any words in anyone's mouth ("Sergei
    Shoigu said that Iran hosted Russian Defense Minister Sergei Shoigu"); its passage can't.
    """
    sentences = _passage_sentences(passages)
    for c in citations:
        if not c.supported or c.rank not in sentences:
            continue
        spans = sentences[c.rank]
        at = next((i for i, text in enumerate(spans) if c.quote in text or text in c.quote), None)
        near = c.quote if at is None else " ".join(spans[max(0, at - 1) : at + 2])
        if quotes(speaker, near):
            return True
    return False


def _passage_sentences(passages: Sequence[Passage]) -> dict[int, list[str]]:
    return {p.rank: [p.text[s:e] for s, e in split_sentences(p.text)] or [p.text] for p in passages}


def _vectors(
    sentences: list[str],
    passage_sents: dict[int, list[str]],
    ranks: Sequence[int],
    embedder: Embeddings | None,
) -> dict[str, list[float]]:
    """Embeddings of the answer sentences and of the sentences of the passages ranked so,
    in one batch; none without an embedder (verbatim extracts) or passages to check."""
    if embedder is None or not ranks:
        return {}
    texts = list(dict.fromkeys(sentences + [x for n in ranks for x in passage_sents[n]]))
    return dict(zip(texts, embedder.embed_documents(texts), strict=True))


def renumber(
    text: str, sentences: list[Sentence], citations: list[Citation]
) -> tuple[str, list[Sentence], list[Citation]]:
    """The answer with its citations numbered 1, 2, 3 in the order it first cites them (not a
    lone [2], or [1] and [4]: the passages' ranks). A number citing no retrieved passage keeps
    its number (it is flagged unsupported)."""
    order = list(dict.fromkeys(n for s in sentences for n in s.cites))
    valid = {c.rank for c in citations}
    number = {rank: i for i, rank in enumerate((n for n in order if n in valid), start=1)}

    def marker(m: re.Match[str]) -> str:
        cited = ", ".join(str(number.get(int(n), int(n))) for n in m.group(1).split(","))
        return m.group(0).replace(m.group(1), cited)

    return (
        MARKER.sub(marker, text),
        [replace(s, cites=tuple(number.get(n, n) for n in s.cites)) for s in sentences],
        sorted((replace(c, n=number[c.rank]) for c in citations), key=lambda c: c.n),
    )


def _check(
    sentence: str, passage: Passage, passage_sents: list[str], tuning: Tuning
) -> tuple[bool, str]:
    """(supported, the passage sentence that best supports it) for a verbatim extract: most of
    its content words are in the passage, and no figure the passage lacks."""
    words, passage_words = _content_words([sentence, passage.text])
    overlap = len(words & passage_words) / len(words) if words else 0.0
    numbers = {n.rstrip(".,").replace(",", "") for n in _NUMBER.findall(sentence)}
    passage_numbers = {n.rstrip(".,").replace(",", "") for n in _NUMBER.findall(passage.text)}
    supported = overlap >= tuning.min_overlap and not numbers - passage_numbers
    return supported, _best_lexical(words, passage_sents)


def _best_lexical(words: set[str], passage_sents: list[str]) -> str:
    tokens = _content_words(passage_sents)
    best = max(range(len(passage_sents)), key=lambda i: len(words & tokens[i]))
    return passage_sents[best]
