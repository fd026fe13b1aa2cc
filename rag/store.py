"""The persisted index: generations on disk, the manifest, and the Chroma collection."""

from __future__ import annotations

import functools
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from rag.errors import RagError
from rag.settings import Settings

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
# In server mode, names the server and collection a generation's vectors live in, so pruning
# the generation can drop its collection even after RAG_CHROMA_URL has changed.
SERVER_MARKER = "chroma-server.json"
MANIFEST_VERSION = 1
_PAGE = 2000
# Where a local generation keeps its Chroma files, relative to the generation folder (relative,
# so a moved or copied index folder still describes its own store).
LOCAL_CHROMA = "chroma"
T = TypeVar("T")


class StoreError(RagError):
    """The index is missing, unreadable or unreachable; the message says what to do."""


class IndexMissing(RagError):
    """There is no index (or it is empty) to search or list."""

    @classmethod
    def nowhere(cls, index_dir: Path) -> IndexMissing:
        """No index has been built in index_dir (named by its full path)."""
        return cls(
            f"no index in {index_dir.resolve()}; run `rag index` first, or `rag index FOLDER` "
            "to make a folder of articles a collection you can ask from anywhere"
        )

    @classmethod
    def empty(cls, index_dir: Path) -> IndexMissing:
        """The index in index_dir holds no article."""
        return cls(
            f"the index in {index_dir.resolve()} is empty; add articles to the articles folder "
            "and run `rag index`"
        )


def location(settings: Settings, generation: Path) -> dict[str, str]:
    """Where a generation's vectors live under these settings: the local store or a server.

    The manifest records it, so switching RAG_CHROMA_URL on or off is seen, not mistaken for an
    index that is up to date.
    """
    name = collection_name(generation)
    if settings.chroma_url:
        return {"kind": "server", "url": settings.chroma_url.rstrip("/"), "collection": name}
    return {"kind": "local", "path": LOCAL_CHROMA, "collection": name}


def recorded_location(generation: Path) -> dict[str, str] | None:
    """Where an existing generation's vectors were written (None: nowhere yet).

    Read from the generation's files, for manifests written before they recorded it.
    """
    marker = generation / SERVER_MARKER
    if marker.is_file():
        info = json.loads(marker.read_text())
        return {"kind": "server", "url": info["url"].rstrip("/"), "collection": info["collection"]}
    if (generation / LOCAL_CHROMA).is_dir():
        return {"kind": "local", "path": LOCAL_CHROMA, "collection": collection_name(generation)}
    return None


def describe(where: dict[str, str] | None) -> str:
    """A store location in words, for messages."""
    if where is None:
        return "no store"
    if where.get("kind") == "server":
        return f"the Chroma server at {where['url']}"
    return "the local store"


@dataclass
class ArticleEntry:
    """What the manifest remembers of one indexed article."""

    hash: str
    title: str
    chunks: list[str]
    date: str | None = None
    source: str | None = None
    byline: str | None = None
    url: str | None = None
    aliases: list[str] = field(default_factory=list)
    # The chunk cap (Settings.max_article_chunks) that cut this article short; None if whole.
    capped: int | None = None
    # The article reader's version that read it (articles.READER_VERSION); 1 for entries
    # written before it was recorded.
    reader: int = 1


@dataclass
class Manifest:
    """Content hashes and chunk ids per article, and the fingerprint the vectors were made with."""

    fingerprint: dict[str, Any]
    articles: dict[str, ArticleEntry] = field(default_factory=dict)
    # Files that could not be read (empty, binary, ...): content hash and the warnings they
    # gave, so an unchanged bad file is reported, not retried as "added", on every run.
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Which store the vectors are in (see location()): {"kind": "local", "path", "collection"}
    # or {"kind": "server", "url", "collection"}. None: not known yet.
    store: dict[str, str] | None = None
    # Size and modification time (ns) of every file in the folder as the last completed run saw
    # it, so a question can tell cheaply whether the folder changed since (None: not recorded).
    files: dict[str, list[int]] | None = None
    # The articles a run set out to store, with their content hashes; emptied when it
    # completes, so a run killed midway leaves it saying what is still missing.
    pending: dict[str, str] = field(default_factory=dict)
    # The articles folder the last completed run read (absolute), so `rag ask` updates an
    # index only from its own folder (None: not recorded, an older index).
    folder: str | None = None

    @classmethod
    def load(cls, path: Path) -> Manifest | None:
        """The manifest at path, or None if there is none yet."""
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        articles = {k: ArticleEntry(**v) for k, v in data.get("articles", {}).items()}
        return cls(
            fingerprint=data.get("fingerprint", {}),
            articles=articles,
            skipped=data.get("skipped", {}),
            store=data.get("store") or recorded_location(path.parent),
            files=data.get("files"),
            pending=data.get("pending", {}),
            folder=data.get("folder"),
        )

    def save(self, path: Path) -> None:
        """Write atomically (temp file, fsync, rename): a crash leaves the old or the new one."""
        data = {
            "version": MANIFEST_VERSION,
            "fingerprint": self.fingerprint,
            "articles": {k: v.__dict__ for k, v in sorted(self.articles.items())},
            "skipped": dict(sorted(self.skipped.items())),
            "store": self.store,
            "files": self.files,
            "pending": self.pending,
            "folder": self.folder,
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


class Generations:
    """index_dir/CURRENT names the live generation folder; a rebuild writes a new one and swaps."""

    def __init__(self, index_dir: Path) -> None:
        self.root = index_dir

    def current(self) -> Path | None:
        """The live generation folder, or None when nothing has been indexed."""
        pointer = self.root / CURRENT
        if not pointer.is_file():
            return None
        gen = self.root / pointer.read_text().strip()
        return gen if gen.is_dir() else None

    def create(self) -> Path:
        """A new, empty generation folder (not live until promoted)."""
        self.root.mkdir(parents=True, exist_ok=True)
        gen = self.root / f"gen-{uuid.uuid4().hex[:12]}"
        gen.mkdir()
        return gen

    def promote(self, gen: Path) -> None:
        """Make gen live with one atomic rename, then remove the generations it replaced."""
        tmp = self.root / f".{CURRENT}.{os.getpid()}.tmp"
        tmp.write_text(gen.name)
        os.replace(tmp, self.root / CURRENT)
        self.prune(keep=gen)

    def prune(self, keep: Path) -> None:
        """Remove generations other than keep (left behind by rebuilds or crashes).

        A generation whose vectors live on a Chroma server loses its collection there first;
        if the server cannot be reached the folder stays, so the next prune tries again.
        """
        for other in self.root.glob("gen-*"):
            if other != keep and other.is_dir() and _drop_server_collection(other):
                shutil.rmtree(other, ignore_errors=True)


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back from Chroma; distance is cosine distance (lower is closer)."""

    id: str
    text: str
    metadata: dict[str, Any]
    distance: float | None = None


def _server_call(method: Callable[..., T]) -> Callable[..., T]:
    """Run a ChunkStore method so that a Chroma server gone away is a StoreError."""

    @functools.wraps(method)
    def call(self: ChunkStore, *args: Any, **kwargs: Any) -> T:
        with self._reaching():
            return method(self, *args, **kwargs)

    return call


class ChunkStore:
    """One Chroma collection (persistent under the generation folder, or on a Chroma server)."""

    def __init__(self, settings: Settings, generation: Path) -> None:
        self.settings = settings
        self.generation = generation
        self._collection = None

    @property
    def collection(self):  # noqa: ANN201 - chromadb.Collection, imported lazily
        if self._collection is None:
            self._check_location()
            client = _client(self.settings, self.generation)
            name = collection_name(self.generation)
            if self.settings.chroma_url:
                _write_server_marker(self.generation, self.settings.chroma_url, name)
            # One collection per generation, so a rebuild on a server also builds aside.
            with self._reaching():
                self._collection = client.get_or_create_collection(
                    name=name, configuration={"hnsw": {"space": "cosine"}}
                )
        return self._collection

    def _check_location(self) -> None:
        """Refuse to read or write a generation through another store than it was written to
        (it would find nothing there, or mix two stores)."""
        recorded = recorded_location(self.generation)
        current = location(self.settings, self.generation)
        if recorded is not None and recorded != current:
            raise StoreError(switched_message(self.settings, recorded, current))

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """A Chroma server that stops answering mid-run is a StoreError, not a traceback."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            if self.settings.chroma_url and _unreachable(exc):
                raise _cannot_reach(self.settings.chroma_url, exc) from exc
            raise

    def stored_count(self) -> int:
        """Chunks in this generation's collection, without creating it (0 when it is missing)."""
        self._check_location()
        client = _client(self.settings, self.generation)
        with self._reaching():
            try:
                found = client.get_collection(collection_name(self.generation))
            except Exception as exc:  # NotFoundError, or ValueError in older chromadb
                if _unreachable(exc):
                    raise
                return 0
            return found.count()

    @_server_call
    def upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        vectors: Sequence[Sequence[float]],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        """Add or replace chunks, in pages small enough for Chroma's batch limit."""
        for i in range(0, len(ids), _PAGE):
            self.collection.upsert(
                ids=list(ids[i : i + _PAGE]),
                documents=list(texts[i : i + _PAGE]),
                embeddings=[list(v) for v in vectors[i : i + _PAGE]],
                metadatas=[_clean(m) for m in metadatas[i : i + _PAGE]],
            )

    @_server_call
    def delete(self, ids: Sequence[str]) -> None:
        """Remove chunks by id (missing ids are ignored)."""
        for i in range(0, len(ids), _PAGE):
            self.collection.delete(ids=list(ids[i : i + _PAGE]))

    @_server_call
    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        """Chunks by id, in the order asked, skipping ids that are not stored."""
        found: dict[str, StoredChunk] = {}
        for i in range(0, len(ids), _PAGE):
            res = self.collection.get(
                ids=list(ids[i : i + _PAGE]), include=["documents", "metadatas"]
            )
            for cid, doc, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True):
                found[cid] = StoredChunk(cid, doc, meta or {})
        return [found[c] for c in ids if c in found]

    @_server_call
    def similarities(self, ids: Sequence[str], vector: Sequence[float]) -> dict[str, float]:
        """Cosine similarity (higher is closer) of the query vector to stored chunks by id."""
        if not ids:
            return {}
        import numpy as np

        res = self.collection.get(ids=list(ids), include=["embeddings"])
        matrix = np.asarray(res["embeddings"], dtype=np.float32)
        query = np.asarray(vector, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
        sims = matrix @ query / np.where(norms == 0, 1.0, norms)
        return {cid: float(s) for cid, s in zip(res["ids"], sims, strict=True)}

    @_server_call
    def vectors_by_hash(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors of the given chunks keyed by embed_hash, to reuse for unchanged text."""
        if not ids:
            return {}
        out: dict[str, list[float]] = {}
        for i in range(0, len(ids), _PAGE):
            res = self.collection.get(
                ids=list(ids[i : i + _PAGE]), include=["metadatas", "embeddings"]
            )
            for meta, vector in zip(res["metadatas"], res["embeddings"], strict=True):
                if meta and meta.get("embed_hash"):
                    out[meta["embed_hash"]] = [float(x) for x in vector]
        return out

    @_server_call
    def query(self, vector: Sequence[float], n: int) -> list[StoredChunk]:
        """The n nearest chunks by cosine distance (lower is closer); fewer if fewer are stored.

        No count() first to cap n: Chroma returns what it holds (nothing when empty), and the
        count costs as much as the query itself at 50,000 chunks.
        """
        res = self.collection.query(
            query_embeddings=[list(vector)],
            n_results=n,
            include=["documents", "metadatas", "distances"],
        )
        return [
            StoredChunk(cid, doc, meta or {}, float(dist))
            for cid, doc, meta, dist in zip(
                res["ids"][0],
                res["documents"][0],
                res["metadatas"][0],
                res["distances"][0],
                strict=True,
            )
        ]

    @_server_call
    def count(self) -> int:
        """Number of chunks stored."""
        return self.collection.count()

    def iter_all(self) -> Iterator[StoredChunk]:
        """Every stored chunk, page by page (bounded memory)."""
        offset = 0
        while True:
            with self._reaching():
                res = self.collection.get(
                    limit=_PAGE, offset=offset, include=["documents", "metadatas"]
                )
            if not res["ids"]:
                return
            for cid, doc, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True):
                yield StoredChunk(cid, doc, meta or {})
            offset += len(res["ids"])


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata holds str/int/float/bool only: drop Nones."""
    return {k: v for k, v in meta.items() if v is not None}


def collection_name(generation: Path) -> str:
    """The Chroma collection of a generation (unique per generation folder)."""
    return f"rag-{generation.name}"


def _write_server_marker(generation: Path, url: str, name: str) -> None:
    marker = generation / SERVER_MARKER
    if not marker.is_file():
        tmp = marker.with_name(f".{SERVER_MARKER}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"url": url, "collection": name}))
        os.replace(tmp, marker)


def _drop_server_collection(generation: Path) -> bool:
    """Delete the generation's collection on its Chroma server, if it has one; False if the
    server could not be asked (the collection may still be there)."""
    marker = generation / SERVER_MARKER
    if not marker.is_file():
        return True
    try:
        info = json.loads(marker.read_text())
        client = _http_client(info["url"])
        client.delete_collection(info["collection"])
    except StoreError:
        return False
    except Exception as exc:  # chromadb raises NotFoundError, or ValueError in older versions
        if "does not exist" not in str(exc) and "not found" not in str(exc).lower():
            return False
    return True


def _client(settings: Settings, generation: Path):  # noqa: ANN202 - chromadb client
    if settings.chroma_url:
        return _http_client(settings.chroma_url)
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(
        path=str(generation / LOCAL_CHROMA), settings=ChromaSettings(anonymized_telemetry=False)
    )


def _http_client(chroma_url: str):  # noqa: ANN202 - chromadb.HttpClient
    """A client of the Chroma server at chroma_url (http://HOST:PORT or https://...)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    url = urlparse(chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise StoreError(f"RAG_CHROMA_URL={chroma_url!r} is not an http(s)://HOST:PORT address")
    try:
        return chromadb.HttpClient(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=ChromaSettings(anonymized_telemetry=False),
        )
    except Exception as exc:  # connection refused, timeouts, auth: all "cannot reach"
        raise _cannot_reach(chroma_url, exc) from exc


def _cannot_reach(chroma_url: str, exc: Exception) -> StoreError:
    return StoreError(
        f"cannot reach the Chroma server at {chroma_url} ({exc.__class__.__name__}: {exc}); "
        "start one with `chroma run --path DIR --port PORT` or unset RAG_CHROMA_URL"
    )


def _unreachable(exc: Exception) -> bool:
    """Whether a chromadb error means the server did not answer (not a bad request)."""
    import httpx

    return isinstance(exc, httpx.TransportError) or "could not connect" in str(exc).lower()


def switched_message(settings: Settings, recorded: dict[str, str], current: dict[str, str]) -> str:
    """What to tell a user whose index lives in another store than the one configured."""
    back = (
        f"set RAG_CHROMA_URL={recorded['url']}"
        if recorded.get("kind") == "server"
        else "unset RAG_CHROMA_URL"
    )
    return (
        f"the index in {settings.index_dir} keeps its vectors in {describe(recorded)}, but rag "
        f"is set to use {describe(current)}; run `rag index` to fill it (or {back})"
    )


def store_problem(settings: Settings, generation: Path, manifest: Manifest) -> str | None:
    """Why the configured store cannot serve this manifest as it is (None: it can).

    A switched RAG_CHROMA_URL, a missing local store, or a server that holds fewer chunks than
    the manifest records (wiped, or another server at the same address): the next `rag index`
    must fill it rather than trust it. Raises StoreError when a server cannot be reached.
    """
    current = location(settings, generation)
    if manifest.store is not None and manifest.store != current:
        return f"the vectors are in {describe(manifest.store)}, and rag is set to use {describe(current)}"
    expected = sum(len(e.chunks) for e in manifest.articles.values())
    if current["kind"] == "local":
        if expected and not (generation / LOCAL_CHROMA).is_dir():
            return f"the local store {generation / LOCAL_CHROMA} is missing"
        return None
    held = ChunkStore(settings, generation).stored_count()
    if held < expected:
        return f"{describe(current)} holds {held} of the {expected} chunks the manifest records"
    return None
