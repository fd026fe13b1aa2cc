"""Plan an index update (added / changed / deleted / unchanged) and apply it, crash-safely."""

from __future__ import annotations

import fcntl
import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from rag import articles as articles_mod
from rag import injection
from rag.articles import Article, ArticleFile
from rag.chunking import Chunk, ChunkingConfig, chunk_article
from rag.embedding import (
    EmbeddingError,
    ensure_query_model,
    index_embedder,
    model_fingerprint,
    resolve_model_dir,
    sentence_embedder,
    token_counter,
)
from rag.errors import RagError
from rag.lexical import LexicalIndex
from rag.sentences import SentenceStore
from rag.settings import Settings
from rag.store import (
    MANIFEST,
    ArticleEntry,
    ChunkStore,
    Generations,
    Manifest,
    StoreError,
    location,
    store_problem,
)

# Bumped when article parsing, chunking or header logic changes what gets embedded.
CHUNKER_VERSION = 5
# Articles are processed (embedded, written, recorded) in groups of about this many chunks, so
# memory stays bounded and an interruption loses at most one group of work.
GROUP_CHUNKS = 256
# An article longer than this (about 5,800 words) is written in a group of its own, after the
# shorter ones before it are stored.
LONG_ARTICLE_CHUNKS = GROUP_CHUNKS // 4
_TAIL = re.compile(r"\s*")


class IndexLocked(RagError):
    """Another rag process holds the index lock."""


@dataclass
class Plan:
    """What an index run will do; `files` maps each article to index to its file."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Files that will not be indexed, each with why (empty, binary, ...): seen from their bytes
    # now, unreadable at an earlier run and unchanged since (not retried), or never candidates
    # (a symlink out of the folder, a PDF).
    skipped: list[str] = field(default_factory=list)
    skip_reasons: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rebuild_reason: str | None = None
    files: dict[str, ArticleFile] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    # The live index this plan was made against; apply plans again if another run changed it.
    based_on: str | None = None
    # The BM25 side was tokenized by an older tokenizer: every chunk is tokenized again (cheap;
    # no vector changes).
    retokenize: bool = False
    # The stored sentence vectors (rag/sentences.py) are missing, of an older format, or were
    # interrupted: indexing embeds the sentences of the chunks that lack them (no chunk vector
    # changes).
    resentence: bool = False
    # Of `changed`, the articles read again because rag reads files differently now
    # (articles.READER_VERSION), not because they changed.
    reread: list[str] = field(default_factory=list)
    # Size and modification time (ns) of every file found, recorded in the manifest when the
    # run completes (see staleness).
    stats: dict[str, list[int]] = field(default_factory=dict)

    def skip_warnings(self) -> dict[str, str]:
        """The warning each skipped file gives ("REL: WHY, skipped"), by file."""
        return {rel: f"{rel}: {self.skip_reasons[rel]}, skipped" for rel in self.skipped}

    @property
    def is_noop(self) -> bool:
        """True when nothing needs embedding, removing or tokenizing again."""
        return not (
            self.added
            or self.changed
            or self.deleted
            or self.rebuild_reason
            or self.retokenize
            or self.resentence
        )


@dataclass
class IndexReport:
    """The outcome of an index run (the JSON output of `rag index --json`).

    added and changed count articles actually stored; a file that turned out unreadable is
    counted in skipped instead (with a warning saying why).
    """

    added: int
    changed: int
    deleted: int
    unchanged: int
    skipped: int
    chunks: int
    embedded_chunks: int
    reused_chunks: int
    embedded_sentences: int
    seconds: float
    warnings: list[str]
    rebuilt: str | None = None
    # Of `seconds`, the time spent storing sentence vectors (rag/sentences.py).
    sentences_seconds: float = 0.0
    # Text a reader never sees, left out of the articles stored (rag/visible.py): characters,
    # and the articles that had any.
    unseen_chars: int = 0
    unseen_articles: int = 0


@dataclass
class Progress:
    """Callbacks the CLI uses to show progress; the core never touches the terminal.

    Indexing calls start(articles to index), advance(n) as n articles are stored, and
    embedded(n) as n more chunks are embedded (an article can take a while).
    """

    start: Callable[[int], None] = lambda total: None
    advance: Callable[[int], None] = lambda n: None
    embedded: Callable[[int], None] = lambda n: None
    # sentences(total) once the chunks are stored, then sentences_done(n) as the sentences of
    # n more chunks are embedded and stored (see rag/sentences.py).
    sentences: Callable[[int], None] = lambda total: None
    sentences_done: Callable[[int], None] = lambda n: None


def fingerprint(settings: Settings) -> dict[str, Any]:
    """Everything that changes the vectors: model, chunking settings, chunker version."""
    model_dir = resolve_model_dir(settings.embedding_model)
    return {
        "embedding_model": settings.embedding_model,
        "model_hash": model_fingerprint(model_dir),
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        "max_seq_length": settings.max_seq_length,
        "chunker_version": CHUNKER_VERSION,
    }


@contextmanager
def index_lock(index_dir: Path, timeout: float) -> Iterator[None]:
    """An exclusive lock on the index; waits up to timeout seconds, then raises IndexLocked."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexLocked(
                        f"another `rag index` is updating {index_dir} (waited {timeout:g}s); "
                        "try again when it finishes"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def current_manifest(settings: Settings) -> tuple[Path | None, Manifest | None]:
    """The live generation folder and its manifest (None, None before the first index)."""
    gen = Generations(settings.index_dir).current()
    if gen is None:
        return None, None
    return gen, Manifest.load(gen / MANIFEST)


def checked_manifest(settings: Settings) -> Manifest | None:
    """The live manifest, once the configured store is known to hold what it records.

    Raises StoreError when the store cannot be reached, or is not the one the index was built
    in (RAG_CHROMA_URL switched on or off since): listing the manifest would claim articles
    that cannot be searched.
    """
    gen, manifest = current_manifest(settings)
    if gen is not None and manifest is not None and (p := store_problem(settings, gen, manifest)):
        raise StoreError(f"{p}; run `rag index` to fill it")
    return manifest


@dataclass(frozen=True)
class Staleness:
    """How the articles folder differs from what the live index holds (empty: it doesn't)."""

    # Files added or changed since the last completed `rag index`, and indexed articles whose
    # file is gone.
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # An interrupted `rag index`: (articles it stored, articles it set out to store).
    interrupted: tuple[int, int] | None = None

    @property
    def note(self) -> str | None:
        """What to tell somebody asking questions of this index (None: nothing)."""
        parts = []
        if self.interrupted is not None:
            done, total = self.interrupted
            parts.append(
                f"the last `rag index` was interrupted: {done} of the {total} articles it was "
                "indexing are in the index; run it again to finish"
            )
        counts = []
        if self.changed:
            counts.append(f"{_articles(len(self.changed))} added or changed")
        if self.deleted:
            gone = len(self.deleted)
            counts.append(f"{gone if counts else _articles(gone)} deleted")
        if counts:
            parts.append(" and ".join(counts) + " since the last `rag index`; run it")
        return "; ".join(parts) or None


# Measured here (bench/RESULTS.md, this session's indexing of 16.7 MB of news): about 8 KB of
# article text a second once the model is loaded, which takes several seconds more.
INDEX_BYTES_PER_SECOND = 8_000
MODEL_LOAD_SECONDS = 8.0


@dataclass(frozen=True)
class Freshening:
    """What `ask` and `chat` did about a folder that changed since the last `rag index`:
    updated the index first (report), or left it (stale, with the estimate that decided)."""

    stale: Staleness
    estimate_s: float = 0.0
    report: IndexReport | None = None

    @property
    def note(self) -> str | None:
        """One line for the reader, said before the answer (None: nothing to say)."""
        if self.report is not None:
            r = self.report
            done = [f"{r.added} added"] if r.added else []
            done += [f"{r.changed} changed"] if r.changed else []
            done += [f"{r.deleted} deleted"] if r.deleted else []
            return (
                f"updated the index first: {', '.join(done) or 'nothing new'} in {r.seconds:.1f}s"
            )
        if not self.stale.note:
            return None
        if not self.stale.changed and not self.stale.deleted:
            return self.stale.note
        return (
            f"the index is stale: {self.stale.note} (about {self.estimate_s:.0f}s); until then "
            "answers come from the articles as they were (RAG_AUTO_INDEX=always updates first)"
        )


def estimate_seconds(settings: Settings, stale: Staleness) -> float:
    """About how long indexing what changed takes: loading the model, then its bytes."""
    if not stale.changed:
        return 0.0 if not stale.deleted else 1.0
    size = 0
    for rel in stale.changed:
        try:
            size += (settings.articles_dir / rel).stat().st_size
        except OSError:
            continue
    return MODEL_LOAD_SECONDS + size / INDEX_BYTES_PER_SECOND


def freshen(settings: Settings, embedder: Embeddings | None = None) -> Freshening:
    """Before answering: update the index when the articles folder changed since the last
    `rag index` and Settings.auto_index allows it (always, or when it is small: estimated at
    most Settings.auto_index_seconds); otherwise say what the index misses."""
    _, manifest = current_manifest(settings)
    stale = staleness(settings, manifest)
    if not stale.changed and not stale.deleted:
        return Freshening(stale)
    estimate = estimate_seconds(settings, stale)
    policy = settings.auto_index
    # Only from the folder the index was made from: `rag ask --index X` standing in another
    # folder must not fill X with that folder's articles, or empty it.
    own = manifest is not None and manifest.folder == str(settings.articles_dir.resolve())
    if (
        not own
        or policy == "never"
        or (policy == "small" and estimate > settings.auto_index_seconds)
    ):
        return Freshening(stale, estimate)
    return Freshening(stale, estimate, apply(settings, plan(settings), embedder=embedder))


def _articles(n: int) -> str:
    return f"{n} article{'' if n == 1 else 's'}"


def staleness(settings: Settings, manifest: Manifest | None = None) -> Staleness:
    """Compare the articles folder with the live manifest, cheaply: names, sizes and
    modification times (one stat a file); only a file whose size or time differs from the
    recorded ones is hashed, so a copy touched but unchanged is not reported.

    manifest: the live one, if the caller has read it already. No index, or no articles
    folder to compare with: nothing to report.
    """
    if manifest is None:
        _, manifest = current_manifest(settings)
    if manifest is None:
        return Staleness()
    try:
        folder = articles_mod.stat_folder(settings.articles_dir)
    except articles_mod.ArticleError:
        return Staleness()
    recorded = manifest.files or {}
    known = {rel: rec.get("hash") for rel, rec in manifest.skipped.items()}
    for rel, entry in manifest.articles.items():
        known.update(dict.fromkeys([rel, *entry.aliases], entry.hash))
    pending = manifest.pending
    changed = []
    for rel, stat in folder.items():
        if rel in pending or recorded.get(rel) == list(stat):
            continue
        if rel not in known:
            changed.append(rel)
            continue
        try:
            if articles_mod.file_hash(settings.articles_dir / rel) != known[rel]:
                changed.append(rel)
        except OSError:
            continue  # unreadable: `rag index` reports it
    deleted = [rel for rel in manifest.articles if rel not in folder and rel not in pending]
    interrupted = None
    if pending:
        stored = sum(
            1
            for rel, h in pending.items()
            if rel in manifest.articles and manifest.articles[rel].hash == h
        )
        interrupted = (stored, len(pending))
    return Staleness(changed, deleted, interrupted)


def _index_state(settings: Settings) -> str | None:
    """Identifies the live generation and manifest contents (None before the first index)."""
    gen = Generations(settings.index_dir).current()
    if gen is None:
        return None
    try:
        return gen.name + ":" + hashlib.sha256((gen / MANIFEST).read_bytes()).hexdigest()
    except FileNotFoundError:
        return gen.name


def plan(settings: Settings, rebuild: bool = False) -> Plan:
    """Compare the articles folder with the manifest; touches nothing."""
    files, left_out = articles_mod.scan(settings.articles_dir)
    result = Plan(
        skipped=list(left_out),
        skip_reasons=left_out,
        fingerprint=fingerprint(settings),
        based_on=_index_state(settings),
        stats={f.rel: [f.size, f.mtime_ns] for f in files},
    )
    gen, manifest = current_manifest(settings)
    if manifest is not None and manifest.fingerprint != result.fingerprint:
        changed = sorted(
            k
            for k in set(manifest.fingerprint) | set(result.fingerprint)
            if manifest.fingerprint.get(k) != result.fingerprint.get(k)
        )
        result.rebuild_reason = "index was built with other settings (" + ", ".join(changed) + ")"
    elif (
        gen is not None
        and manifest is not None
        and (problem := store_problem(settings, gen, manifest))
    ):
        # Nothing in the configured store can be trusted: fill it as a rebuild does.
        result.rebuild_reason = problem
    elif rebuild and manifest is not None:
        result.rebuild_reason = "--rebuild"
    elif gen is not None and manifest is not None:
        result.retokenize = LexicalIndex(gen).stale()
        result.resentence = bool(manifest.articles) and SentenceStore(gen).stale()
    known = {} if result.rebuild_reason or manifest is None else manifest.articles
    bad = {} if result.rebuild_reason or manifest is None else manifest.skipped

    by_hash: dict[str, list[ArticleFile]] = {}
    for f in files:
        by_hash.setdefault(f.content_hash, []).append(f)
    canonical: set[str] = set()
    for group in by_hash.values():
        indexed = [f for f in group if f.rel in known and known[f.rel].hash == f.content_hash]
        first = indexed[0] if indexed else group[0]
        canonical.add(first.rel)
        result.files[first.rel] = first
        result.aliases[first.rel] = [f.rel for f in group if f is not first]
        result.warnings.extend(
            f"{alias}: same content as {first.rel}, indexed once under that name"
            for alias in result.aliases[first.rel]
        )
        entry = known.get(first.rel)
        if entry is None and bad.get(first.rel, {}).get("hash") == first.content_hash:
            result.skipped.append(first.rel)
            result.skip_reasons[first.rel] = _reason(first.rel, bad[first.rel].get("warnings"))
        elif entry is not None and entry.hash == first.content_hash:
            if entry.reader != articles_mod.READER_VERSION:
                result.changed.append(first.rel)
                result.reread.append(first.rel)
            elif _cap_changed(entry, settings.max_article_chunks):
                result.changed.append(first.rel)
            else:
                result.unchanged.append(first.rel)
        elif reason := articles_mod.precheck(first):
            result.skipped.append(first.rel)
            result.skip_reasons[first.rel] = reason
        elif entry is None:
            result.added.append(first.rel)
        else:
            result.changed.append(first.rel)
    # An indexed article whose file can no longer be read leaves the index.
    result.deleted = sorted(rel for rel in known if rel not in canonical or rel in result.skipped)
    for name in ("added", "changed", "unchanged", "skipped"):
        getattr(result, name).sort()
    return result


def _reason(rel: str, warnings: list[str] | None) -> str:
    """The why of a skip warning recorded as "REL: WHY, skipped"."""
    text = (warnings or ["unreadable"])[0]
    return text.removeprefix(f"{rel}: ").removesuffix(", skipped")


def _cap_changed(entry: ArticleEntry, cap: int) -> bool:
    """Whether an indexed article would be cut differently under the chunk cap now."""
    if entry.capped is not None:
        return entry.capped != cap
    return len(entry.chunks) > cap


def apply(
    settings: Settings,
    the_plan: Plan,
    progress: Progress | None = None,
    embedder: Embeddings | None = None,
) -> IndexReport:
    """Carry out a plan under the index lock; safe to interrupt at any moment.

    embedder defaults to the configured sentence-transformers model (loaded only if needed).
    """
    progress = progress or Progress()
    started = time.perf_counter()
    with index_lock(settings.index_dir, settings.lock_timeout):
        if _index_state(settings) != the_plan.based_on:
            # Another run changed the index while this one waited for the lock: re-planning
            # avoids embedding again what it just indexed.
            the_plan = plan(settings, rebuild=the_plan.rebuild_reason == "--rebuild")
        warnings = list(the_plan.warnings)
        generations = Generations(settings.index_dir)
        live = generations.current()
        if live is None or the_plan.rebuild_reason:
            # A first index becomes live at once (nothing to protect, and progress survives a
            # crash); a rebuild is built aside and swapped in only when complete.
            gen = generations.create()
            if live is None:
                Manifest(the_plan.fingerprint).save(gen / MANIFEST)
                generations.promote(gen)
        else:
            gen = live
        manifest = Manifest.load(gen / MANIFEST) or Manifest(the_plan.fingerprint)
        store = ChunkStore(settings, gen)
        manifest.store = location(settings, gen)
        builder = _Builder(settings, store, manifest, gen, embedder)

        # Vectors of chunks about to be replaced, reused where the embedded text is unchanged
        # (an edited article keeps most of its paragraphs; a renamed one keeps all).
        retiring = [c for rel in the_plan.changed + the_plan.deleted for c in _ids(manifest, rel)]
        builder.cache.update(store.vectors_by_hash(retiring))

        for rel in the_plan.deleted:
            store.delete(manifest.articles[rel].chunks)
            del manifest.articles[rel]
        # Skipped files are remembered with their hash, so an unchanged one is not retried.
        skipped = set(the_plan.skipped)
        skips_changed = False
        for rel, message in the_plan.skip_warnings().items():
            warnings.append(message)
            if rel not in the_plan.files:  # never a candidate (a symlink out, a PDF): no hash
                continue
            record = {"hash": the_plan.files[rel].content_hash, "warnings": [message]}
            skips_changed |= manifest.skipped.get(rel) != record
            manifest.skipped[rel] = record
        # Smallest first, each group stored as soon as it is embedded: the short articles are
        # searchable within seconds, and a long one never holds them back.
        todo = sorted(the_plan.added + the_plan.changed, key=lambda r: (the_plan.files[r].size, r))
        # Recorded before any is stored, so a run killed midway is reported (see staleness).
        manifest.pending.update((rel, the_plan.files[rel].content_hash) for rel in todo)
        if skips_changed or not the_plan.is_noop:
            manifest.save(gen / MANIFEST)

        progress.start(len(todo))
        loaded = articles_mod.iter_loaded(
            [the_plan.files[r] for r in todo], settings.max_article_bytes
        )
        group: list[tuple[Article, list[Chunk]]] = []
        unseen: dict[str, int] = {}
        for file, article, problems in loaded:
            warnings.extend(problems)
            if article is None:
                builder.forget(file.rel)
                manifest.skipped[file.rel] = {"hash": file.content_hash, "warnings": problems}
                skipped.add(file.rel)
                progress.advance(1)
                continue
            manifest.skipped.pop(file.rel, None)
            if article.unseen:
                unseen[file.rel] = article.unseen
            builder.flags[file.rel] = spans = injection.find(article.text)
            if spans:
                warnings.append(
                    f"{file.rel}: text addressed to an AI assistant ("
                    + "; ".join(injection.describe(s) for s in spans[:3])
                    + "); it is indexed, marked, and never taken as evidence for an answer"
                )
            chunks = chunk_article(
                article, builder.count, builder.chunking, settings.max_article_chunks
            )
            if capped := _was_capped(article, chunks, settings.max_article_chunks):
                warnings.append(
                    f"{file.rel}: longer than a news article: only its first {len(chunks)} "
                    f"chunks (its first {chunks[-1].end:,} characters, of a {file.size:,}-byte "
                    "file) are indexed; RAG_MAX_ARTICLE_CHUNKS sets the cap"
                )
            elif article.truncated:
                warnings.append(
                    f"{file.rel}: larger than {settings.max_article_bytes:,} bytes, only the "
                    "start is indexed"
                )
            builder.caps[file.rel] = settings.max_article_chunks if capped else None
            if group and len(chunks) > LONG_ARTICLE_CHUNKS:
                # The shorter articles before a long one never wait for it to be embedded.
                builder.write(group, the_plan.aliases, progress)
                group = []
            group.append((article, chunks))
            if sum(len(cs) for _, cs in group) >= GROUP_CHUNKS:
                builder.write(group, the_plan.aliases, progress)
                group = []
        if group:
            builder.write(group, the_plan.aliases, progress)

        aliases_changed = False
        for rel, aliases in the_plan.aliases.items():
            if rel in manifest.articles and manifest.articles[rel].aliases != aliases:
                manifest.articles[rel].aliases = aliases
                aliases_changed = True
        gone = [rel for rel in manifest.skipped if rel not in the_plan.files]
        for rel in gone:  # bad files since deleted or fixed under another name
            del manifest.skipped[rel]
        manifest.pending = {}
        restat = manifest.files != the_plan.stats
        manifest.files = the_plan.stats
        folder = str(settings.articles_dir.resolve())
        moved, manifest.folder = manifest.folder != folder, folder
        # A no-op run (the common `rag index` after nothing changed) rewrites nothing.
        if aliases_changed or gone or restat or moved or not the_plan.is_noop:
            manifest.save(gen / MANIFEST)
        # In file-name order whatever order they were stored in, so a no-op run matches.
        wanted = [c for _, entry in sorted(manifest.articles.items()) for c in entry.chunks]
        LexicalIndex(gen).update(wanted, builder.texts_for, rewritten=builder.texts)
        if manifest.articles:
            # The ONNX copy of the model that `rag ask` embeds questions with (no torch there).
            try:
                ensure_query_model(settings, builder.embedder)
            except EmbeddingError as exc:
                warnings.append(str(exc))
        sentences_started = time.perf_counter()
        sentences = SentenceStore(gen)
        builder.sentences = sentences.update(
            wanted,
            builder.bodies_for,
            sentence_embedder(settings, builder.embedder).embed_documents,
            rewritten=builder.texts,
            progress=progress.sentences_done,
            total=progress.sentences,
        )
        sentences_s = time.perf_counter() - sentences_started
        if the_plan.rebuild_reason:
            generations.promote(gen)
        else:
            generations.prune(keep=gen)
        n_chunks = sum(len(e.chunks) for e in manifest.articles.values())

    return IndexReport(
        added=len([r for r in the_plan.added if r not in skipped]),
        changed=len([r for r in the_plan.changed if r not in skipped]),
        deleted=len(the_plan.deleted),
        unchanged=len(the_plan.unchanged),
        skipped=len(skipped),
        chunks=n_chunks,
        embedded_chunks=builder.embedded,
        reused_chunks=builder.reused,
        embedded_sentences=builder.sentences,
        sentences_seconds=round(sentences_s, 3),
        seconds=round(time.perf_counter() - started, 3),
        warnings=warnings,
        rebuilt=the_plan.rebuild_reason,
        unseen_chars=sum(unseen.values()),
        unseen_articles=len(unseen),
    )


def _was_capped(article: Article, chunks: list[Chunk], cap: int) -> bool:
    """Whether the chunk cap left part of the article out."""
    return len(chunks) >= cap and bool(article.text[chunks[-1].end :].strip())


def _ids(manifest: Manifest, rel: str) -> list[str]:
    entry = manifest.articles.get(rel)
    return list(entry.chunks) if entry else []


class _Builder:
    """Embeds and writes groups of articles, recording each in the manifest once written."""

    def __init__(
        self,
        settings: Settings,
        store: ChunkStore,
        manifest: Manifest,
        gen: Path,
        embedder: Embeddings | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.manifest = manifest
        self.gen = gen
        model_dir = resolve_model_dir(settings.embedding_model)
        self.count = token_counter(model_dir)
        self.chunking = ChunkingConfig(
            settings.chunk_tokens, settings.chunk_overlap_tokens, settings.max_seq_length
        )
        self.batch_size = settings.embedding_batch_size
        self.embedder = embedder or index_embedder(settings)
        # Vectors of retiring chunks, by embed_hash, to reuse; this run's new vectors are not
        # kept past their group, so memory stays bounded by a group, not by the corpus.
        self.cache: dict[str, list[float]] = {}
        # The chunk cap each article was cut at (None: not cut), recorded in its entry.
        self.caps: dict[str, int | None] = {}
        # Each article's spans addressed to an AI assistant (rag/injection.py), by file.
        self.flags: dict[str, list[injection.Span]] = {}
        self.texts: dict[str, str] = {}
        self.bodies: dict[str, str] = {}  # this run's chunks' passage text (no header)
        self.embedded = 0
        self.reused = 0
        self.sentences = 0

    def write(
        self,
        group: list[tuple[Article, list[Chunk]]],
        aliases: dict[str, list[str]],
        progress: Progress,
    ) -> None:
        """Embed what the cache lacks, upsert, drop stale chunks, then record in the manifest.

        The order matters for crash safety: new chunks are written before old ones go, and the
        manifest changes last, so an interruption leaves the old article searchable and the next
        run redoes it (ids are deterministic, so re-doing is an upsert, not a duplicate).
        """
        chunks = [c for _, cs in group for c in cs]
        vectors = {
            c.embed_hash: self.cache[c.embed_hash] for c in chunks if c.embed_hash in self.cache
        }
        need = list({c.embed_hash: c.embed_text for c in chunks if c.embed_hash not in vectors})
        if need:
            texts = {c.embed_hash: c.embed_text for c in chunks}
            # Batches of similar token counts pad least, so each encodes fastest. Counting
            # characters (as SentenceTransformer.encode sorts) pads news text ~11%; tokens ~3%.
            tokens = dict(zip(need, self.count([texts[h] for h in need]), strict=True))
            need.sort(key=lambda h: tokens[h])
            for b in range(0, len(need), self.batch_size):
                batch = need[b : b + self.batch_size]
                vectors.update(
                    zip(
                        batch, self.embedder.embed_documents([texts[h] for h in batch]), strict=True
                    )
                )
                progress.embedded(len(batch))
            self.embedded += len(need)
        self.reused += len(chunks) - len(need)
        by_article = {a.path: a for a, _ in group}
        self.store.upsert(
            [c.id for c in chunks],
            [c.text for c in chunks],
            [vectors[c.embed_hash] for c in chunks],
            [
                _metadata(c, by_article[c.article], cs, self.flags.get(c.article, []))
                for _, cs in group
                for c in cs
            ],
        )
        for article, cs in group:
            new_ids = [c.id for c in cs]
            stale = [cid for cid in _ids(self.manifest, article.path) if cid not in set(new_ids)]
            self.store.delete(stale)
            self.manifest.articles[article.path] = ArticleEntry(
                hash=article.content_hash,
                title=article.title,
                chunks=new_ids,
                date=article.date,
                source=article.source,
                byline=article.byline,
                url=article.url,
                aliases=aliases.get(article.path, []),
                capped=self.caps.get(article.path),
                reader=articles_mod.READER_VERSION,
            )
            self.texts.update((c.id, c.embed_text) for c in cs)
            self.bodies.update((c.id, c.text) for c in cs)
        self.manifest.save(self.gen / MANIFEST)
        progress.advance(len(group))

    def forget(self, rel: str) -> None:
        """An article that can no longer be read: its old chunks go too."""
        if rel in self.manifest.articles:
            self.store.delete(self.manifest.articles.pop(rel).chunks)
            self.manifest.save(self.gen / MANIFEST)

    def bodies_for(self, ids: list[str]) -> dict[str, str]:
        """Passage text of chunks (no header), from this run or from the store."""
        out = {cid: self.bodies[cid] for cid in ids if cid in self.bodies}
        out.update((c.id, c.text) for c in self.store.get([cid for cid in ids if cid not in out]))
        return out

    def texts_for(self, ids: list[str]) -> dict[str, str]:
        """Embedded text of chunks, from this run or (after a crash) from the store."""
        out = {cid: self.texts[cid] for cid in ids if cid in self.texts}
        rest = [cid for cid in ids if cid not in out]
        for stored in self.store.get(rest):
            out[stored.id] = stored.metadata.get("header", "") + stored.text
        return out


def _metadata(
    chunk: Chunk, article: Article, siblings: list[Chunk], flags: Sequence[injection.Span] = ()
) -> dict[str, Any]:
    """What Chroma stores beside a chunk's text; siblings: all the article's chunks, in order;
    flags: the article's spans addressed to an AI assistant."""
    before = siblings[chunk.ordinal - 1].id if chunk.ordinal > 0 else None
    after = siblings[chunk.ordinal + 1].id if chunk.ordinal + 1 < len(siblings) else None
    return {
        "source": article.path,
        "title": article.title,
        "date": article.date,
        "publisher": article.source,
        "byline": article.byline,
        "url": article.url,
        "ordinal": chunk.ordinal,
        "start": chunk.start,
        "end": chunk.end,
        # The whitespace after the chunk, so retrieval can join neighbouring chunks exactly.
        "tail": _TAIL.match(article.text, chunk.end).group(),
        # The neighbouring chunks, which retrieval returns as the passage's context.
        "prev_id": before,
        "next_id": after,
        "header": chunk.header,
        "embed_hash": chunk.embed_hash,
        # Its text addressed to an AI assistant, as "start-end:rule" offsets into the chunk's
        # text, ";"-separated (None: none).
        "injection": ";".join(
            f"{max(s.start, chunk.start) - chunk.start}-{min(s.end, chunk.end) - chunk.start}:{s.rule}"
            for s in flags
            if s.start < chunk.end and s.end > chunk.start
        )
        or None,
    }
