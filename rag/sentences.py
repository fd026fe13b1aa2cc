"""Stored sentence vectors: every sentence of the indexed chunks, embedded once at `rag index`.

The extractive answerer scores each sentence of the retrieved passages by its similarity to
the question, and the grounding guard compares answer sentences with passage sentences. Both
used to embed those sentences again on every question (most of a warm `ask`). `rag index` now
embeds them once, with the model questions are embedded with, into a SQLite file beside the
index (`sentences.sqlite` in the generation folder); at question time `StoredSentenceEmbeddings`
looks each sentence up by the hash of its exact text and embeds only what is missing (a
sentence that spans two chunks, an index older than this file), so an answer never depends on
whether a vector was stored, only its speed does.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from pathlib import Path

from langchain_core.embeddings import Embeddings

from rag.chunking import split_sentences

SENTENCES = "sentences.sqlite"
# Bumped when what is stored changes (the splitter, the key, the vector encoding): a store of
# another version is filled again by the next `rag index`.
FORMAT = 1
# The answerer ignores fragments this short (see extractive._candidates); so does the store.
MIN_CHARS = 13
Embed = Callable[[list[str]], list[list[float]]]


def key(text: str) -> bytes:
    """A sentence's key: the hash of its exact text (the embedder sees exactly that text)."""
    return hashlib.sha256(text.encode()).digest()[:12]


def sentences_of(text: str) -> list[str]:
    """The sentences of a chunk's passage text worth a vector, in order, each once."""
    spans = split_sentences(text)
    return list(dict.fromkeys(text[s:e] for s, e in spans if e - s >= MIN_CHARS))


def _pack(vector: Sequence[float]) -> bytes:
    import numpy as np

    return np.asarray(vector, dtype=np.float32).tobytes()


def _unpack(blob: bytes) -> list[float]:
    import numpy as np

    return np.frombuffer(blob, dtype=np.float32).tolist()


class SentenceStore:
    """The SQLite file of one index generation: sentence vectors, and which chunk has which."""

    def __init__(self, generation: Path) -> None:
        self.path = generation / SENTENCES

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS sentence (key BLOB PRIMARY KEY, vector BLOB NOT NULL);
            -- key NULL: the chunk has no sentence worth a vector (still recorded as done).
            CREATE TABLE IF NOT EXISTS chunk (id TEXT NOT NULL, key BLOB);
            CREATE INDEX IF NOT EXISTS chunk_id ON chunk (id);
            CREATE INDEX IF NOT EXISTS chunk_key ON chunk (key);
            """
        )
        return db

    def _meta(self) -> dict[str, str]:
        """The file's format and completeness marks ({} when there is no readable file)."""
        if not self.path.is_file():
            return {}
        try:
            with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
                return dict(db.execute("SELECT name, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            return {}

    def stale(self) -> bool:
        """Whether `rag index` must fill the store: missing, of another format, or left
        incomplete by an interrupted run."""
        meta = self._meta()
        return meta.get("format") != str(FORMAT) or meta.get("complete") != "1"

    def update(
        self,
        wanted: Iterable[str],
        texts_for: Callable[[list[str]], Mapping[str, str]],
        embed: Embed,
        rewritten: Iterable[str] = (),
        progress: Callable[[int], None] = lambda n: None,
        batch: int = 256,
        total: Callable[[int], None] = lambda n: None,
    ) -> int:
        """Bring the store to exactly the `wanted` chunk ids; returns sentences embedded.

        texts_for(ids) gives the passage text (no header) of chunks the store lacks; a sentence
        already stored under any chunk is not embedded again. `rewritten`: chunks written again
        under the same id this run. Committed in batches of chunks, so an interrupted run keeps
        what it did; the format is recorded only once the store is complete. total(n) is told
        first how many chunks' sentences it will embed; progress(n) as each batch is in.
        """
        with closing(self._open()) as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
            if row != (str(FORMAT),):
                db.execute("DELETE FROM chunk")
                db.execute("DELETE FROM sentence")
                db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (str(FORMAT),))
            gone, missing = _todo(db, wanted, rewritten)
            total(len(missing))
            for ids in _pages(gone, 500):
                marks = ",".join("?" * len(ids))
                db.execute(f"DELETE FROM chunk WHERE id IN ({marks})", ids)  # noqa: S608
            # Incomplete until the last page is in: an interrupted run leaves it stale.
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('complete', ?)", (str(int(not missing)),)
            )
            db.commit()
            embedded = 0
            for ids in _pages(missing, batch):
                texts = texts_for(ids)
                rows = [(c, key(s), s) for c in ids for s in sentences_of(texts.get(c, ""))]
                known = _known(db, {k for _, k, _ in rows})
                todo = list({k: s for _, k, s in rows if k not in known}.items())
                # Shortest first: batches of similar length pad least.
                todo.sort(key=lambda ks: len(ks[1]))
                vectors = embed([s for _, s in todo]) if todo else []
                db.executemany(
                    "INSERT OR REPLACE INTO sentence VALUES (?, ?)",
                    [(k, _pack(v)) for (k, _), v in zip(todo, vectors, strict=True)],
                )
                filled = {c for c, _, _ in rows}
                db.executemany(
                    "INSERT INTO chunk VALUES (?, ?)",
                    [(c, k) for c, k, _ in rows] + [(c, None) for c in ids if c not in filled],
                )
                db.commit()
                embedded += len(todo)
                progress(len(ids))
            if gone:  # last, so a chunk written again keeps its sentences' vectors meanwhile
                db.execute(
                    "DELETE FROM sentence WHERE key NOT IN "
                    "(SELECT key FROM chunk WHERE key IS NOT NULL)"
                )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('complete', '1')")
            db.commit()
        return embedded

    def lookup(self, texts: Sequence[str]) -> dict[str, list[float]]:
        """The stored vectors of those texts that have one; never writes (or creates) the file."""
        if not texts or not self.path.is_file():
            return {}
        keys = {key(t): t for t in texts}
        try:
            with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
                found = _known(db, set(keys), vectors=True)
        except sqlite3.Error:  # a generation pruned by a concurrent `rag index`: embed instead
            return {}
        return {keys[k]: _unpack(v) for k, v in found.items()}


def _todo(
    db: sqlite3.Connection, wanted: Iterable[str], rewritten: Iterable[str]
) -> tuple[list[str], list[str]]:
    """The chunks to remove from the store, and those whose sentences to embed, in order."""
    wanted = list(dict.fromkeys(wanted))
    have = {row[0] for row in db.execute("SELECT DISTINCT id FROM chunk")}
    again = set(rewritten)
    gone = sorted((have - set(wanted)) | (again & have))
    return gone, [cid for cid in wanted if cid not in have or cid in again]


def _pages(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _known(db: sqlite3.Connection, keys: set[bytes], vectors: bool = False) -> dict[bytes, bytes]:
    """The stored vectors (or, without `vectors`, empty values) of those keys that exist."""
    out: dict[bytes, bytes] = {}
    listed = list(keys)
    column = "vector" if vectors else "x''"
    for i in range(0, len(listed), 500):
        page = listed[i : i + 500]
        marks = ",".join("?" * len(page))
        query = f"SELECT key, {column} FROM sentence WHERE key IN ({marks})"  # noqa: S608
        out.update(db.execute(query, page).fetchall())
    return out


class StoredSentenceEmbeddings(Embeddings):
    """An embedder that answers embed_documents from the stored sentence vectors where it can.

    Questions (embed_query) and texts the store lacks go to the wrapped embedder, the one the
    store was filled with, so the vectors are the same either way.
    """

    def __init__(self, inner: Embeddings, store: SentenceStore) -> None:
        self.inner = inner
        self.store = store
        self.hits = 0  # texts answered from the store, and embedded, since creation
        self.misses = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        found = self.store.lookup(texts)
        rest = list(dict.fromkeys(t for t in texts if t not in found))
        if rest:
            found.update(zip(rest, self.inner.embed_documents(rest), strict=True))
        self.hits += len(texts) - len(rest)
        self.misses += len(rest)
        return [found[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)
