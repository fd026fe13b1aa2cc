"""Does an answer name the sort of thing its question asks for?

"Which countries are members of the G-7?" is not answered by sentences that name no country,
however well their citations check out: they answer some other question. `Query.answer_type`
says what a question wants ("country", "company"; rag/question.py). Here the answer's sentences
are read for names (runs of capitalised words the question does not have, and their stretches),
and a name is of the type when either
- a logistic regression on its embedding by the query model gives P(of the type) at least the
  type's threshold ("Boeing" a company, "Chile" a country, "White House" neither), or
- a retrieved passage says so in so many words: "Iran Air, the country's national air carrier",
  "automaker General Motors", "Tesla Inc." (`described`, with the question's own nouns).
The answer names one when some name is. Otherwise it is refused.

Fitted by `python fitting/fit_types.py ../shared/bench/rtqa-2024-train` on the 2024 quizzes'
answer choices (four of a type per question; other questions' choices are the negatives). The
threshold is chosen out of fold, over questions whose names the model never saw, as the highest
that still passes 0.95 of the candidate articles' sentences holding the answer; types.json has
the figures, and how many sentences that do not hold it each type's check refuses. The
parameters read all-MiniLM-L6-v2's vectors: with another embedding model (or a test's fake) the
check does not run (`check` returns None) and the answer stands.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from langchain_core.embeddings import Embeddings

from rag.errors import RagError
from rag.question import TYPE_NOUNS, AnswerType, Query

PARAMS = Path(__file__).with_name("types.json")
MAX_WORDS = 3  # the longest part of a longer run of capitalised words read as a name

# A run of capitalised words, with "of", "de" or "&" inside: "Bank of America", "Iran Air".
_NAME = re.compile(r"[A-Z][\w’'.&-]*(?:\s+(?:(?:of|de|&)\s+)?[A-Z][\w’'.&-]*)*")
_POSSESSIVE = re.compile(r"['’]s?$")
# Words capitalised because they open a sentence or a quote, not because they name anything.
_NOT_NAMES = frozenset(
    {
        "a", "an", "the", "and", "but", "or", "so", "yet", "if", "as", "in", "on", "at", "by",
        "for", "from", "to", "of", "with", "after", "before", "when", "while", "since", "it",
        "he", "she", "they", "we", "i", "you", "this", "that", "these", "those", "his", "her",
        "their", "its", "our", "there", "here", "also", "however", "meanwhile", "still",
        "according", "last", "next", "earlier", "later", "now", "then", "some", "many", "one",
    }
)  # fmt: skip


class TypesError(RagError):
    """The shipped answer-type parameters are missing or unreadable."""


@dataclass(frozen=True)
class TypeModel:
    """A logistic regression on a name's embedding: P(the name is a `kind`)."""

    kind: AnswerType
    coef: tuple[float, ...]
    intercept: float
    threshold: float

    def probability(self, vector: Sequence[float]) -> float:
        z = self.intercept + sum(c * v for c, v in zip(self.coef, vector, strict=True))
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


@dataclass(frozen=True)
class TypeModels:
    """The fitted models, and the embedding model whose vectors they read."""

    embedding_model: str
    dims: int
    models: dict[str, TypeModel]


@dataclass(frozen=True)
class TypeCheck:
    """What an answer's names are, as the type the question wants."""

    wanted: AnswerType
    names: tuple[tuple[str, float], ...]  # each name the answer gives, and P(it is `wanted`)
    threshold: float
    described: tuple[str, ...] = ()  # names a retrieved passage calls a `wanted` in words

    @property
    def named(self) -> bool:
        """Whether some name of the answer is of the wanted type."""
        return bool(self.described) or any(p >= self.threshold for _, p in self.names)

    def reason(self) -> str:
        """Why the answer was refused, for `refused_by`."""
        best = sorted(self.names, key=lambda np: -np[1])[:3]
        shown = ", ".join(f'"{n}" {p:.2f}' for n, p in best) or "no name at all"
        return (
            f"answer type: the question asks which {self.wanted} and the answer names none "
            f"(best: {shown}; a {self.wanted} needs {self.threshold:.2f}, or a passage "
            f"calling it one)"
        )


def described(name: str, kind: AnswerType, texts: Sequence[str]) -> bool:
    """Whether a text calls the name a `kind` in so many words: "Iran Air, the country's
    national air carrier", "Boeing is the largest maker", "automaker General Motors", "Tesla
    Inc." (the nouns are those a question asks for the type with: question.TYPE_NOUNS)."""
    nouns, n = TYPE_NOUNS[kind], re.escape(name)
    forms = [
        rf"\b(?:{nouns})\s+{n}(?!\w)",  # "automaker General Motors"
        # "Iran Air, the country's national air carrier", "Boeing is the largest maker"
        rf"\b{n}(?:['’]s)?,?\s+(?:is\s+|was\s+)?(?:the|a|an)\s+(?:[\w’'-]+\s+){{0,4}}?"
        rf"(?:{nouns})\b(?!['’])",  # not "the country's"
    ]
    if kind == "company":
        forms.append(rf"\b{n},?\s+(?:Inc|Corp|Corporation|Co|Ltd|LLC|plc)\b")  # "Tesla Inc."
    pattern = re.compile("|".join(forms))
    return any(pattern.search(t) for t in texts)


def names_in(
    texts: Sequence[str], question_words: frozenset[str], context: Sequence[str] = ()
) -> list[str]:
    """The names the sentences give that the question does not ("Iran Air", "Boeing"), each
    once, in order.

    A run of capitalised words is one name, or several: "Russian President Vladimir Putin"
    gives "Russian" and "Vladimir Putin" too, where the texts or the context (the passages)
    write them as names of their own ("the Russian republic", "Putin said"); "White House"
    gives no "White", which nothing writes alone.
    """
    runs = [part for text in texts for part in _runs(text)]
    alone = {" ".join(part) for text in (*texts, *context) for part in _runs(text)}
    found: dict[str, None] = {}
    for part in runs:
        for n in range(len(part), 0, -1):
            for i in range(len(part) - n + 1):
                words = part[i : i + n]
                name = " ".join(words)
                whole = n == len(part)
                if (whole or (n <= MAX_WORDS and name in alone)) and not all(
                    w.lower() in question_words for w in words
                ):
                    found[name] = None
    return list(found)


def _runs(text: str) -> list[list[str]]:
    """The runs of capitalised words of a text, each as its words: no opening "The", no full
    stop, split after a possessive ("India's Prime Minister" is "India", "Prime Minister")."""
    out = []
    for m in _NAME.finditer(text):
        words = m.group().split()
        while words and words[0].lower() in _NOT_NAMES:
            words = words[1:]
        if not words:
            continue
        if words[-1].endswith(".") and words[-1].count(".") == 1:
            words[-1] = words[-1][:-1]  # the sentence's full stop, not "U.S."'s
        out += _split_possessive(words)
    return out


def as_name(text: str) -> str | None:
    """The text as one name, the way `names_in` reads it ("The Bahamas" is "Bahamas"), or None
    when it is not one run of capitalised words ("Grocery stores", "Shein and Temu")."""
    if not _NAME.fullmatch(text.strip()):
        return None
    words = text.split()
    while words and words[0].lower() in _NOT_NAMES:
        words = words[1:]
    return " ".join(words) or None


def _split_possessive(words: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for w in words:
        bare = _POSSESSIVE.sub("", w)
        if bare:
            parts[-1].append(bare)
        if bare != w:
            parts.append([])
    return [p for p in parts if p]


def check(
    query: Query,
    sentences: Sequence[str],
    embedder: Embeddings,
    embedding_model: str,
    passages: Sequence[str] = (),
) -> TypeCheck | None:
    """Whether the answer's sentences name a thing of the type the question asks for (by the
    fitted model, or as the passages' texts describe it); None when it asks for no type, or
    the check cannot run (another embedding model than the one the parameters were fitted
    with)."""
    if query.answer_type is None:
        return None
    fitted = load()
    model = fitted.models.get(query.answer_type)
    if model is None or embedding_model != fitted.embedding_model:
        return None
    names = names_in(sentences, query.words, passages)
    vectors = embedder.embed_documents(names) if names else []
    if any(len(v) != fitted.dims for v in vectors):
        return None  # not the fitted model's vectors (a test's fake embedder)
    scored = tuple((n, round(model.probability(v), 4)) for n, v in zip(names, vectors, strict=True))
    said = tuple(n for n in names if described(n, query.answer_type, passages))
    return TypeCheck(query.answer_type, scored, model.threshold, said)


@cache
def load(path: Path = PARAMS) -> TypeModels:
    """The shipped (or given) answer-type parameters, read once."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return TypeModels(
            embedding_model=str(data["embedding_model"]),
            dims=int(data["dims"]),
            models={
                kind: TypeModel(
                    kind, tuple(map(float, m["coef"])), float(m["intercept"]), float(m["threshold"])
                )
                for kind, m in data["types"].items()
            },
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TypesError(
            f"cannot read the answer-type parameters {path}: {exc}; refit with "
            "python fitting/fit_types.py ../shared/bench/rtqa-2024-train"
        ) from None
