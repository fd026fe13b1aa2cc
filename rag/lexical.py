"""The BM25 side index (bm25s), persisted beside the Chroma store and kept in step with it."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

LEXICAL = "lexical"
_TOKENS = "tokens.jsonl"
_IDS = "ids.json"
_VERSION = "tokenizer.json"
# Bumped whenever tokenize() changes: an index tokenized by another version is tokenized again
# (on the next `rag index` or `rag eval`; the vectors are kept).
TOKENIZER_VERSION = 2
# "G-7", "F-16": a single letter joined to a number. bm25s keeps words of two characters or
# more, so both halves would be lost; joined, "G-7" and "G7" are the same token.
_LETTER_NUMBER = re.compile(r"\b([A-Za-z])-(\d{1,4})\b")


# Written once: the sentence splitter's abbreviations, the answerer's dates and the scorer's
# normalisation are each derived from it.
MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip


def tokenize(texts: list[str]) -> list[list[str]]:
    """English BM25 tokens: lowercased, stop words removed, Snowball-stemmed; "G-7" is "g7"."""
    import bm25s
    import Stemmer

    return bm25s.tokenize(
        [_LETTER_NUMBER.sub(r"\1\2", t) for t in texts],
        stopwords="en",
        stemmer=Stemmer.Stemmer("english"),
        return_ids=False,
        show_progress=False,
    )


def same_name(a: str, b: str) -> bool:
    """Whether two stems name the same thing: 'iran' matches 'iranian' and the other way round."""
    return a == b or (len(a) >= 4 and len(b) >= 4 and (a.startswith(b) or b.startswith(a)))


def spelled_alike(a: str, b: str) -> bool:
    """Whether two stems are one name spelled two ways, as transliterations are ("zelenskyy" /
    "zelenski", "amirabdollahian" / "amirabhollahian"); figures only ever match exactly."""
    if same_name(a, b):
        return True
    if min(len(a), len(b)) < 6 or any(ch.isdigit() for ch in a + b):
        return False
    matcher = SequenceMatcher(None, a, b)
    return matcher.real_quick_ratio() >= 0.8 and matcher.ratio() >= 0.8


# Words that say nothing about who is speaking ("officials said"); stop words are gone already.
_GENERIC_SPEAKER = {"offici", "said", "say"}


def speaker_stems(text: str) -> list[str]:
    """The stems that can name a speaker: "U.S. officials" -> ["u.s"], not "offici"."""
    return [t for t in tokenize([text])[0] if t not in _GENERIC_SPEAKER]


@dataclass(frozen=True)
class Terms:
    """Stemmed words of a stretch of text, as a set and in order."""

    words: frozenset[str]
    sequence: tuple[str, ...]

    @classmethod
    def of(cls, tokens: list[str]) -> Terms:
        return cls(frozenset(tokens), tuple(tokens))

    def names_all(self, names: Iterable[tuple[str, ...]]) -> bool:
        """Whether the text names every one of names, a many-word name as a phrase: "the UN
        Security Council" is not named by "the National Security Council" and "the UN"."""

        def found(name: tuple[str, ...]) -> bool:
            if len(name) == 1:
                return any(same_name(name[0], t) for t in self.words)
            seq, n = self.sequence, len(name)
            return any(
                all(same_name(a, b) for a, b in zip(name, seq[i : i + n], strict=True))
                for i in range(len(seq) - n + 1)
            )

        return all(found(n) for n in names)


def _best(scores, n: int):  # noqa: ANN001, ANN202 - numpy arrays, numpy imported lazily
    """Positions of the n highest positive scores, best first; equal scores in index order.

    Not bm25s's retrieve(): its top-k runs np.argpartition over every chunk's score, which
    takes ~8 ms at 50,000 chunks when most scores tie at zero (and orders ties arbitrarily);
    selecting among the matching chunks only takes a tenth of that.
    """
    import numpy as np

    hits = np.flatnonzero(scores > 0)
    if len(hits) > n:
        cut = len(hits) - n
        worst_kept = np.partition(scores[hits], cut)[cut]
        hits = hits[scores[hits] >= worst_kept]
    order = np.argsort(-scores[hits], kind="stable")
    return hits[order[:n]]


@dataclass(frozen=True)
class LexicalHit:
    """A BM25 match; score is a BM25 score (higher is better, unbounded)."""

    id: str
    score: float


class LexicalIndex:
    """bm25s over every chunk; update() re-tokenizes only the chunks that changed."""

    def __init__(self, generation: Path) -> None:
        self.dir = generation / LEXICAL
        self._retriever = None
        self._ids: list[str] | None = None

    def update(
        self,
        wanted: Iterable[str],
        texts_for: Callable[[list[str]], Mapping[str, str]],
        rewritten: Iterable[str] = (),
    ) -> int:
        """Bring the index to exactly the `wanted` chunk ids, tokenizing only the new ones.

        texts_for(ids) returns the text of chunks not yet indexed. `rewritten` names chunks
        whose text was written again under the same id (an article's new title or date changes
        the header, not the passage): they are tokenized again too. Tokens of other chunks are
        kept on disk; the BM25 matrix itself is rebuilt (a fast sparse op). Returns the number
        of chunks tokenized.
        """
        wanted = list(dict.fromkeys(wanted))
        again = set(rewritten).intersection(wanted)
        stale = self.stale()
        if not again and not stale and self._load_ids() == wanted:
            # Nothing to do: skip reading tokens.jsonl, most of a no-op `rag index`.
            return 0
        known = {} if stale else self._load_tokens()
        missing = [cid for cid in wanted if cid not in known or cid in again]
        if missing:
            texts = texts_for(missing)
            for cid, tokens in zip(missing, tokenize([texts[c] for c in missing]), strict=True):
                known[cid] = tokens
        self._save({cid: known[cid] for cid in wanted}, wanted)
        return len(missing)

    def search(self, query: str, n: int) -> list[LexicalHit]:
        """The n best BM25 matches for query (fewer when few chunks share its words)."""
        retriever, ids = self._load()
        if retriever is None or not ids:
            return []
        tokens = tokenize([query])
        if not tokens or not any(t in retriever.vocab_dict for t in tokens[0]):
            return []
        scores = retriever.get_scores(tokens[0])
        return [LexicalHit(ids[int(d)], float(scores[d])) for d in _best(scores, n)]

    def _load(self):  # noqa: ANN202
        if self._retriever is None:
            current = self._current_dir()
            if current is None or not (current / "params.index.json").is_file():
                return None, []
            import bm25s

            self._retriever = bm25s.BM25.load(str(current), mmap=True, show_progress=False)
            self._ids = json.loads((current / _IDS).read_text())
        return self._retriever, self._ids

    def _current_dir(self) -> Path | None:
        # A crash between the two renames in _save leaves only the .old copy: still usable.
        for candidate in (self.dir, self.dir.with_name(LEXICAL + ".old")):
            if (candidate / _IDS).is_file():
                return candidate
        return None

    def _load_ids(self) -> list[str] | None:
        current = self._current_dir()
        return json.loads((current / _IDS).read_text()) if current else None

    def stale(self) -> bool:
        """Whether the stored chunks were tokenized by another tokenize() (TOKENIZER_VERSION)."""
        return self._current_dir() is not None and self._load_version() != TOKENIZER_VERSION

    def _load_version(self) -> int | None:
        """The tokenizer version the chunks were tokenized with (None: before versions)."""
        current = self._current_dir()
        if current is None or not (current / _VERSION).is_file():
            return None
        return json.loads((current / _VERSION).read_text()).get("tokenizer")

    def _load_tokens(self) -> dict[str, list[str]]:
        current = self._current_dir()
        if current is None or not (current / _TOKENS).is_file():
            return {}
        out = {}
        with (current / _TOKENS).open() as fh:
            for line in fh:
                cid, tokens = json.loads(line)
                out[cid] = tokens
        return out

    def _save(self, tokens: dict[str, list[str]], ids: list[str]) -> None:
        """Write a new index beside the old one, then swap them by renames."""
        import bm25s

        tmp = self.dir.with_name(f"{LEXICAL}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        retriever = bm25s.BM25()
        corpus = [tokens[cid] for cid in ids]
        if any(corpus):
            retriever.index(corpus, show_progress=False)
            retriever.save(str(tmp), show_progress=False)
        with (tmp / _TOKENS).open("w") as fh:
            for cid in ids:
                fh.write(json.dumps([cid, tokens[cid]]) + "\n")
        (tmp / _IDS).write_text(json.dumps(ids))
        (tmp / _VERSION).write_text(json.dumps({"tokenizer": TOKENIZER_VERSION}))
        old = self.dir.with_name(LEXICAL + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.dir.exists():
            os.replace(self.dir, old)
        os.replace(tmp, self.dir)
        shutil.rmtree(old, ignore_errors=True)
        self._retriever = None
        self._ids = None
