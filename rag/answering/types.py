"""Does an answer name the sort of thing its question asks for?

"Which countries are members of the G-7?" is not answered by sentences that name no country,
however well their citations check out: they answer some other question. `Query.answer_type`
says what a question wants ("country", "company"; rag/question.py). Here the answer's sentences
are read for names (runs of capitalised words the question does not have), each name is
embedded with the query model, and a logistic regression per type gives P(the name is one):
"Boeing" a company, "Chile" a country, "White House" neither. The answer names one when some
name reaches the type's threshold.

Fitted by `python eval/fit_types.py ../shared/bench/rtqa-2024-train` on the 2024 quizzes'
answer choices (four of a type per question; the types of the other questions' choices are the
negatives), cross-validated over names, never the same name in training and scoring; the
threshold is chosen for recall, so that a true answer's name is rarely refused (types.json has
the figures). The parameters read all-MiniLM-L6-v2's vectors: with another embedding model (or
a test's fake) the check does not run (`check` returns None) and the answer stands.
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
from rag.question import AnswerType, Query

PARAMS = Path(__file__).with_name("types.json")
MAX_WORDS = 3  # the longest stretch of a run of capitalised words read as one name

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

    @property
    def named(self) -> bool:
        """Whether some name of the answer is of the wanted type."""
        return any(p >= self.threshold for _, p in self.names)

    def reason(self) -> str:
        """Why the answer was refused, for `refused_by`."""
        best = sorted(self.names, key=lambda np: -np[1])[:3]
        shown = ", ".join(f'"{n}" {p:.2f}' for n, p in best) or "no name at all"
        return (
            f"answer type: the question asks which {self.wanted} and the answer names none "
            f"(best: {shown}; a {self.wanted} needs {self.threshold:.2f})"
        )


def names_in(texts: Sequence[str], question_words: frozenset[str]) -> list[str]:
    """The names the sentences give that the question does not ("Iran Air", "Boeing"),
    each once, in order."""
    found: dict[str, None] = {}
    for text in texts:
        for m in _NAME.finditer(text):
            words = m.group().split()
            while words and words[0].lower() in _NOT_NAMES:
                words = words[1:]
            if not words:
                continue
            if words[-1].endswith(".") and words[-1].count(".") == 1:
                words[-1] = words[-1][:-1]  # the sentence's full stop, not "U.S."'s
            # A run holds several names: "Russian President Vladimir Putin", "India's Prime
            # Minister": each stretch of up to MAX_WORDS words is read (possessives end one).
            for part in _split_possessive(words):
                for n in range(1, min(MAX_WORDS, len(part)) + 1):
                    for i in range(len(part) - n + 1):
                        name = " ".join(part[i : i + n])
                        if not all(w.lower() in question_words for w in part[i : i + n]):
                            found[name] = None
    return list(found)


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
    query: Query, sentences: Sequence[str], embedder: Embeddings, embedding_model: str
) -> TypeCheck | None:
    """Whether the answer's sentences name a thing of the type the question asks for; None
    when it asks for no type, or the check cannot run (another embedding model than the one
    the parameters were fitted with)."""
    if query.answer_type is None:
        return None
    fitted = load()
    model = fitted.models.get(query.answer_type)
    if model is None or embedding_model != fitted.embedding_model:
        return None
    names = names_in(sentences, query.words)
    vectors = embedder.embed_documents(names) if names else []
    if any(len(v) != fitted.dims for v in vectors):
        return None  # not the fitted model's vectors (a test's fake embedder)
    scored = tuple((n, round(model.probability(v), 4)) for n, v in zip(names, vectors, strict=True))
    return TypeCheck(query.answer_type, scored, model.threshold)


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
            "python eval/fit_types.py ../shared/bench/rtqa-2024-train"
        ) from None
