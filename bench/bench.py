"""`python bench/bench.py`: ingest, incremental update, latency, cold start and memory in one run.

Every figure is measured on real `rag` processes or the real pipeline, over a corpus folder
holding `articles/` and `qa.jsonl` (rtqa-2022 by default), plus a synthetic scale-up of its
index for query latency. Prints a table, writes JSON and regenerates bench/RESULTS.md.

Examples:
    python bench/bench.py                  # the full run (a full rtqa build: most of an hour)
    python bench/bench.py --articles 100   # a subset
    python bench/bench.py --quick          # a smoke run on a tiny corpus (CI)

It needs only the installed `rag` package, so it runs by path from anywhere; its workers are
this file run again with `--worker`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.measure import describe, machine, percentile
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "bench" / "rtqa-2022"
DEFAULT_OUT = ROOT / "bench" / "RESULTS.md"
DEFAULT_JSON = ROOT / "bench" / "results.json"
# The run before stored sentence vectors, shown beside the current one in RESULTS.md.
BEFORE_NAME = "results-before.json"
DEFAULT_BEFORE = ROOT / "bench" / BEFORE_NAME
# What `python bench/local_llm.py MODEL --save` measured: a local model beside the extractive one.
DEFAULT_LOCAL = ROOT / "bench" / "local_llm.jsonl"
ADDED_ARTICLE = "zz-bench-added-article.txt"

# name: (results path, comparison, limit, unit); checked against every run, never in tests.
TARGETS: dict[str, tuple[str, str, float, str]] = {
    # Ingest now also stores sentence vectors (rag/sentences.py): >= 0.9 x before that.
    "ingest vs bare encoding": ("ingest.side_by_side.ratio", ">=", 0.75, "x"),
    "ingest with sentence vectors vs without": (
        "ingest.side_by_side.sentence_cost",
        "<=",
        1.3,
        "x",
    ),
    "add one article vs full build": ("incremental.add_one_ratio", "<=", 0.03, "x"),
    "no-op re-index": ("incremental.noop_s", "<=", 2.0, "s"),
    "warm retrieval p95 at scale": ("latency.scaled.retrieval.p95_ms", "<=", 50.0, "ms"),
    "warm `ask` p50 at scale": ("latency.scaled.ask.p50_ms", "<=", 100.0, "ms"),
    "cold `rag ask --json`": ("cold.ask_s", "<=", 2.0, "s"),
    "cold `rag --help`": ("cold.help_s", "<=", 0.5, "s"),
    "peak RSS of `rag ask`": ("memory.ask_mb", "<=", 1024.0, "MB"),
}


class BenchError(RagError):
    """A benchmark step failed; the message names the command and its error output."""


@dataclass(frozen=True)
class Config:
    """One bench run's scale: corpus subset, questions, scale-up size, repetitions."""

    corpus: Path
    workdir: Path
    articles: int | None
    questions: int
    scale_chunks: int
    ratio_chunks: int
    runs: int
    cold_runs: int
    onnx_sample: int
    quick: bool


@dataclass(frozen=True)
class Measured:
    """A finished subprocess: wall time, CPU time (all threads), peak resident memory, output."""

    wall_s: float
    cpu_s: float
    max_rss_mb: float
    stdout: str
    stderr: str


# ---------------------------------------------------------------------------------------------
# Running things


def measure(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> Measured:
    """Run cmd to completion; wall time, and peak RSS from the kernel's rusage of that child."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(
            f"`{' '.join(cmd)}` exited {proc.returncode}: {stderr.strip()[-2000:] or stdout[-500:]}"
        )
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(wall, cpu, usage.ru_maxrss / scale, stdout, stderr)


def rag_command() -> list[str]:
    """The installed `rag` console script of this interpreter (what users run)."""
    script = Path(sys.executable).with_name("rag")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rag"]


def rag_env(config: Config, articles: Path, index: Path) -> dict[str, str]:
    """The environment for a rag subprocess: this run's folders, no user RAG_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        RAG_ARTICLES_DIR=str(articles),
        RAG_INDEX_DIR=str(index),
        RAG_CONFIG=str(config.workdir / "no-config.toml"),
        RAG_LLM="extractive",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def worker(config: Config, env: dict[str, str], name: str, *args: str) -> tuple[dict, Measured]:
    """Run one of this script's workers in a fresh interpreter; its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, *args]
    result = measure(cmd, env, config.workdir)
    return json.loads(result.stdout.strip().splitlines()[-1]), result


def _r(x: float, digits: int = 3) -> float:
    return round(x, digits)


# ---------------------------------------------------------------------------------------------
# Workers (run in their own process so each phase starts clean)


def _stored_chunks(index_dir: Path, with_vectors: bool = False) -> list[dict[str, Any]]:
    """Every chunk of the live generation: id, embedded text, metadata (and vector)."""
    from rag.settings import Settings
    from rag.store import ChunkStore, Generations

    gen = Generations(index_dir).current()
    if gen is None:
        raise BenchError(f"no index in {index_dir}")
    store = ChunkStore(Settings(index_dir=index_dir), gen)
    include = ["documents", "metadatas"] + (["embeddings"] if with_vectors else [])
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        res = store.collection.get(limit=2000, offset=offset, include=include)
        if not res["ids"]:
            return out
        for i, cid in enumerate(res["ids"]):
            meta = res["metadatas"][i] or {}
            row = {"id": cid, "text": res["documents"][i], "meta": meta}
            if with_vectors:
                row["vector"] = res["embeddings"][i]
            out.append(row)
        offset += len(res["ids"])


def encode_worker(index_dir: Path, batch_size: int, onnx_sample: int) -> dict[str, Any]:
    """Bare SentenceTransformer.encode of the index's chunk texts; and ONNX on a sample."""
    from rag.embedding import (
        OnnxEmbeddings,
        SentenceTransformerEmbeddings,
        onnx_path,
        resolve_model_dir,
    )
    from rag.settings import Settings

    texts = list(
        {
            r["meta"].get("embed_hash", r["id"]): r["meta"].get("header", "") + r["text"]
            for r in _stored_chunks(index_dir)
        }.values()
    )
    settings = Settings(index_dir=index_dir, embedding_batch_size=batch_size)
    model_dir = resolve_model_dir(settings.embedding_model)
    started = time.perf_counter()
    st = SentenceTransformerEmbeddings(model_dir, batch_size)
    model = st.model
    load_s = time.perf_counter() - started
    model.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    result: dict[str, Any] = {
        "chunks": len(texts),
        "chars": sum(len(t) for t in texts),
        "seconds": _r(seconds),
        "cpu_s": _r(cpu_s),
        "chunks_per_s": _r(len(texts) / seconds, 2),
        "chunks_per_cpu_s": _r(len(texts) / cpu_s, 3),
        "model_load_s": _r(load_s),
    }

    exported = onnx_path(settings, model_dir)
    if onnx_sample and exported.is_file():
        import numpy as np

        sample = random.Random(0).sample(texts, min(onnx_sample, len(texts)))
        onnx = OnnxEmbeddings(exported, model_dir, batch_size)
        onnx.embed_documents(sample[:batch_size])  # warm-up (session load)
        st_s, onnx_s = [], []
        for _ in range(2):  # alternate, so load on a shared machine hits both alike
            started = time.perf_counter()
            a = np.array(st.embed_documents(sample))
            st_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            b = np.array(onnx.embed_documents(sample))
            onnx_s.append(time.perf_counter() - started)
        result["onnx_probe"] = {
            "chunks": len(sample),
            "st_chunks_per_s": _r(len(sample) / min(st_s), 2),
            "onnx_chunks_per_s": _r(len(sample) / min(onnx_s), 2),
            "min_cosine": _r(float((a * b).sum(axis=1).min()), 6),
        }
    return result


def scale_worker(source: Path, dest: Path, target_chunks: int) -> dict[str, Any]:
    """A synthetic index of at least target_chunks: the source's chunks plus perturbed copies.

    Copy j of a chunk drops ~10% of its words and moves its vector by Gaussian noise (cosine
    about 0.93 to the original): near-duplicates like syndicated wire copy, so dense and BM25
    search see a realistic neighbourhood, without embedding 50,000 chunks for a latency test.
    """
    import numpy as np

    from rag.embedding import query_embedder
    from rag.lexical import LexicalIndex
    from rag.sentences import SentenceStore, sentences_of
    from rag.settings import Settings
    from rag.store import MANIFEST, ArticleEntry, ChunkStore, Generations, Manifest

    src_gen = Generations(source).current()
    if src_gen is None:
        raise BenchError(f"no index in {source}")
    manifest = Manifest.load(src_gen / MANIFEST)
    rows = _stored_chunks(source, with_vectors=True)
    copies = max(1, math.ceil(target_chunks / len(rows)))

    generations = Generations(dest)
    gen = generations.create()
    store = ChunkStore(Settings(index_dir=dest), gen)
    out = Manifest(manifest.fingerprint)
    texts: dict[str, str] = {}
    sentences = SentenceStore(gen)
    source_sentences = SentenceStore(src_gen)
    embedder = query_embedder(Settings(index_dir=source))
    stored_ids: list[str] = []
    started = time.perf_counter()
    for j in range(copies):
        rng = np.random.default_rng(j)
        words_rng = random.Random(j)
        ids, docs, vectors, metas = [], [], [], []
        # Each copy's sentence vectors: the original sentence's, moved by the same noise as
        # the chunk vectors (a copy's sentence is paired with the original it shares most
        # words with), so answers read stored vectors as they do on a real index.
        noisy: dict[str, list[float]] = {}
        for row in rows:
            cid, text, meta = row["id"], row["text"], dict(row["meta"])
            vector = np.asarray(row["vector"], dtype=np.float64)
            if j:
                cid = f"s{j:02d}-{cid}"
                kept = [w for w in text.split(" ") if words_rng.random() >= 0.1]
                text = " ".join(kept) or text
                vector = vector + rng.normal(0.0, 0.02, vector.shape)
                vector /= np.linalg.norm(vector)
                meta["source"] = f"synthetic-{j:02d}/{meta.get('source', '')}"
                meta["embed_hash"] = f"{meta.get('embed_hash', '')}-{j}"
            ids.append(cid)
            docs.append(text)
            vectors.append(vector.tolist())
            metas.append(meta)
            texts[cid] = meta.get("header", "") + text
            originals = sentences_of(row["text"])
            found = source_sentences.lookup(originals)
            for sentence in sentences_of(text):
                words = set(sentence.split())
                best = max(originals, key=lambda o: len(words & set(o.split())), default=None)
                if best is None or best not in found:
                    continue  # embedded for real below
                moved = np.asarray(found[best], dtype=np.float64)
                if j:
                    moved = moved + rng.normal(0.0, 0.02, moved.shape)
                    moved /= np.linalg.norm(moved)
                noisy[sentence] = moved.tolist()
        store.upsert(ids, docs, vectors, metas)
        bodies = dict(zip(ids, docs, strict=True))
        stored_ids += ids

        def embed(batch: list[str], noisy: dict[str, list[float]] = noisy) -> list[list[float]]:
            lacking = [t for t in batch if t not in noisy]
            real = dict(zip(lacking, embedder.embed_documents(lacking), strict=True))
            return [noisy[t] if t in noisy else real[t] for t in batch]

        sentences.update(
            stored_ids, lambda wanted, bodies=bodies: {i: bodies[i] for i in wanted}, embed
        )
        for rel, entry in manifest.articles.items():
            name = rel if not j else f"synthetic-{j:02d}/{rel}"
            chunks = entry.chunks if not j else [f"s{j:02d}-{c}" for c in entry.chunks]
            out.articles[name] = ArticleEntry(
                hash=f"{entry.hash}-{j}", title=entry.title, chunks=chunks, date=entry.date
            )
    write_s = time.perf_counter() - started
    out.save(gen / MANIFEST)
    LexicalIndex(gen).update(list(texts), lambda ids: {i: texts[i] for i in ids})
    models = source / "models"
    if models.is_dir():
        shutil.copytree(models, dest / "models", dirs_exist_ok=True)
    generations.promote(gen)
    return {
        "chunks": store.count(),
        "copies": copies,
        "build_s": _r(time.perf_counter() - started),
        "chroma_write_s": _r(write_s),
    }


def latency_worker(index_dir: Path, qa: Path, questions: int, runs: int) -> dict[str, Any]:
    """Warm latency of retrieval alone and of `ask` (extractive), over the first N questions."""
    from rag.pipeline import Pipeline
    from rag.question import analyse
    from rag.settings import Settings

    items = [json.loads(line) for line in qa.read_text().splitlines() if line.strip()]
    items = items[:questions]
    settings = Settings(index_dir=index_dir, llm="extractive")
    started = time.perf_counter()
    pipeline = Pipeline(settings)
    for item in items[:3]:  # warm-up: model session, Chroma segment, BM25 matrix
        pipeline.ask(item["question"])
    warmup_s = time.perf_counter() - started

    def timed(fn: Callable[[str], Any]) -> tuple[list[list[float]], list[Any]]:
        all_runs, last = [], []
        for _ in range(runs):
            times, last = [], []
            for item in items:
                t = time.perf_counter()
                last.append(fn(item["question"]))
                times.append((time.perf_counter() - t) * 1000)
            all_runs.append(times)
        return all_runs, last

    # Retrieval includes analysing the question (rag/question.py), as `ask` does before it.
    retrieval_runs, retrievals = timed(
        lambda q: pipeline.retriever.search(analyse(q, tuning=settings.tuning), settings)
    )
    ask_runs, answers = timed(pipeline.ask)
    stages = {
        stage: _r(statistics.median(r.timings_ms.get(stage, 0.0) for r in retrievals), 2)
        for stage in ("embed", "dense", "bm25", "fuse")
    }
    found = sum(
        1
        for item, answer in zip(items, answers, strict=True)
        if not answer.refused and any(a.lower() in answer.text.lower() for a in item["answers"])
    )
    return {
        "chunks": pipeline.retriever.store.count(),
        "questions": len(items),
        "runs": runs,
        "query_embedder": type(pipeline.embedder.inner).__name__,
        # Texts the answerer needed vectors for: read from the stored sentence vectors, or
        # embedded at question time (the questions themselves, sentences the store lacks).
        "sentence_vectors": {
            "stored": pipeline.embedder.hits,
            "embedded": pipeline.embedder.misses,
        },
        "torch_loaded": "torch" in sys.modules,
        "warmup_s": _r(warmup_s),
        "retrieval": _summary(retrieval_runs) | {"median_stage_ms": stages},
        "ask": _summary(ask_runs),
        "answered_with_gold": found,
        "refused": sum(1 for a in answers if a.refused),
    }


def _summary(runs: list[list[float]]) -> dict[str, Any]:
    """p50/p95 of each run, and their medians across runs."""
    p50s = [percentile(r, 50) for r in runs]
    p95s = [percentile(r, 95) for r in runs]
    return {
        "p50_ms": _r(statistics.median(p50s), 2),
        "p95_ms": _r(statistics.median(p95s), 2),
        "max_ms": _r(max(max(r) for r in runs), 2),
        "p50_ms_runs": [_r(x, 2) for x in p50s],
        "p95_ms_runs": [_r(x, 2) for x in p95s],
    }


# ---------------------------------------------------------------------------------------------
# The bench


def _load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else -1.0


def prepare_corpus(config: Config) -> tuple[Path, Path, list[Path]]:
    """Copy the chosen articles into the workdir; (articles dir, qa file, all corpus files)."""
    source = config.corpus / "articles"
    qa = config.corpus / "qa.jsonl"
    if not source.is_dir() or not qa.is_file():
        raise BenchError(f"{config.corpus} needs articles/ and qa.jsonl")
    files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    if config.articles is not None and config.articles < len(files):
        # Keep the articles that answer the benchmark questions first, then fill in order.
        wanted: list[str] = []
        for line in qa.read_text().splitlines():
            if line.strip():
                wanted.extend(json.loads(line).get("sources", []))
        by_name = {p.name: p for p in files}
        first = [by_name[n] for n in dict.fromkeys(wanted) if n in by_name]
        chosen = list(dict.fromkeys(first + files))[: config.articles]
        files = sorted(chosen)
    dest = config.workdir / "articles"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for f in files:
        shutil.copy2(f, dest / f.name)
    return dest, qa, files


def _added_article(files: list[Path]) -> str:
    """A new article (a median-sized one retitled, so every chunk is new), as file text."""
    by_size = sorted(files, key=lambda p: p.stat().st_size)
    lines = by_size[len(by_size) // 2].read_text(errors="replace").splitlines()
    return "\n".join(["Bench addition: " + (lines[0] if lines else ""), *lines[1:]]) + "\n"


def ingest_side_by_side(
    config: Config, articles: Path, index: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Ingest against bare encoding under the same load: `rag index` of a fixed subset into a
    fresh index, then bare encoding of exactly its chunk texts, alternated config.runs times.

    The full build and its bare encoding run minutes apart, so other processes' load can sway
    their ratio either way; a pair run back to back shares it. The subset's index is seeded
    with the full build's ONNX query model, a one-time cost per index rather than ingest work.
    """
    from rag.store import MANIFEST, Generations, Manifest

    gen = Generations(index).current()
    manifest = Manifest.load(gen / MANIFEST) if gen else None
    if manifest is None:
        raise BenchError(f"no index in {index}")
    chosen: list[str] = []
    chunks = 0
    for rel, entry in sorted(manifest.articles.items()):
        if chunks >= config.ratio_chunks:
            break
        chosen.append(rel)
        chunks += len(entry.chunks)
    subset = config.workdir / "articles-side-by-side"
    shutil.rmtree(subset, ignore_errors=True)
    for rel in chosen:
        (subset / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(articles / rel, subset / rel)
    sub_index = config.workdir / "index-side-by-side"
    env = rag_env(config, subset, sub_index)
    batch = str(Settings.model_fields["embedding_batch_size"].default)
    runs: list[dict[str, Any]] = []
    for i in range(config.runs):
        shutil.rmtree(sub_index, ignore_errors=True)
        if (index / "models").is_dir():
            shutil.copytree(index / "models", sub_index / "models")
        built = measure([*rag_command(), "index", "--json"], env, config.workdir)
        report = json.loads(built.stdout)
        embedded = report["embedded_chunks"]
        encoded, _ = worker(config, env, "encode", str(sub_index), batch, "0")
        ingest_rate, bare_rate = embedded / built.wall_s, encoded["chunks"] / encoded["seconds"]
        runs.append(
            {
                "embedded_chunks": embedded,
                "index_wall_s": _r(built.wall_s),
                "index_cpu_s": _r(built.cpu_s),
                "encode_s": encoded["seconds"],
                "encode_cpu_s": encoded["cpu_s"],
                "ratio": _r(ingest_rate / bare_rate),
                "ratio_cpu": _r((embedded / built.cpu_s) / (encoded["chunks"] / encoded["cpu_s"])),
                # The sentence-vector stage (rag/sentences.py) timed inside the same run: the
                # run's wall time against the same run without that stage.
                "embedded_sentences": report["embedded_sentences"],
                "sentences_s": report["sentences_seconds"],
                "sentence_cost": _r(built.wall_s / (built.wall_s - report["sentences_seconds"])),
                "load_avg": _load(),
            }
        )
        log(f"  pair {i + 1}/{config.runs}: ingest / bare {runs[-1]['ratio']:.3f} wall time")
    shutil.rmtree(sub_index, ignore_errors=True)
    return {
        "articles": len(chosen),
        "chunks": chunks,
        "runs": runs,
        "ratio": _r(statistics.median(r["ratio"] for r in runs)),
        "ratio_cpu": _r(statistics.median(r["ratio_cpu"] for r in runs)),
        "sentence_cost": _r(statistics.median(r["sentence_cost"] for r in runs)),
    }


def bench(config: Config, log: Callable[[str], None]) -> dict[str, Any]:
    """Every measurement, in an order that needs one full build."""
    config.workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "corpus": str(config.corpus),
            "articles": config.articles,
            "questions": config.questions,
            "scale_chunks": config.scale_chunks,
            "ratio_chunks": config.ratio_chunks,
            "runs": config.runs,
            "cold_runs": config.cold_runs,
            "quick": config.quick,
        },
        "load_avg": {"start": _load()},
    }
    articles, qa, files = prepare_corpus(config)
    index = config.workdir / "index"
    shutil.rmtree(index, ignore_errors=True)
    env = rag_env(config, articles, index)
    rag = rag_command()
    corpus_bytes = sum(f.stat().st_size for f in files)
    results["corpus"] = {"articles": len(files), "mb": _r(corpus_bytes / 1e6, 2)}

    log(f"full build of {len(files)} articles ({corpus_bytes / 1e6:.1f} MB)")
    build = measure([*rag, "index", "--json"], env, config.workdir)
    report = json.loads(build.stdout)
    results["load_avg"]["after_build"] = _load()
    log(f"  {report['chunks']} chunks in {build.wall_s:.1f}s; bare encoding of the same texts")
    batch = str(Settings.model_fields["embedding_batch_size"].default)
    encoded, _ = worker(config, env, "encode", str(index), batch, str(config.onnx_sample))
    results["load_avg"]["after_encode"] = _load()
    ingest_rate = report["embedded_chunks"] / build.wall_s
    # CPU time (all threads, from rusage) barely moves with other processes' load, so on a
    # shared machine it is the fairer measure of the pipeline's own overhead.
    ingest_cpu_rate = report["embedded_chunks"] / build.cpu_s
    results["ingest"] = {
        "chunks": report["chunks"],
        "embedded_chunks": report["embedded_chunks"],
        "wall_s": _r(build.wall_s),
        "core_s": report["seconds"],
        "cpu_s": _r(build.cpu_s),
        "chunks_per_s": _r(ingest_rate, 2),
        "mb_per_s": _r(corpus_bytes / 1e6 / build.wall_s, 4),
        "bare_encode": encoded,
        "ratio_to_bare": _r(ingest_rate / encoded["chunks_per_s"]),
        "ratio_to_bare_cpu": _r(ingest_cpu_rate / encoded["chunks_per_cpu_s"]),
    }
    log(f"ingest vs bare encoding side by side on >= {config.ratio_chunks} chunks, {config.runs}x")
    results["ingest"]["side_by_side"] = ingest_side_by_side(config, articles, index, log)
    results["load_avg"]["after_side_by_side"] = _load()

    log("incremental: add one article, no-op re-index, delete it again")
    (articles / ADDED_ARTICLE).write_text(_added_article(files))
    added = measure([*rag, "index", "--json"], env, config.workdir)
    added_report = json.loads(added.stdout)
    noops = [measure([*rag, "index", "--json"], env, config.workdir) for _ in range(config.runs)]
    (articles / ADDED_ARTICLE).unlink()
    deleted = measure([*rag, "index", "--json"], env, config.workdir)
    results["incremental"] = {
        "add_one_s": _r(added.wall_s),
        "add_one_embedded_chunks": added_report["embedded_chunks"],
        "add_one_ratio": _r(added.wall_s / build.wall_s, 4),
        "noop_s": _r(statistics.median(m.wall_s for m in noops)),
        "noop_s_runs": [_r(m.wall_s) for m in noops],
        "delete_one_s": _r(deleted.wall_s),
    }

    log("cold start: `rag ask --json` and `rag --help` in fresh processes")
    items = [json.loads(line) for line in qa.read_text().splitlines() if line.strip()]
    question = items[0]["question"]
    asks = [
        measure([*rag, "ask", question, "--json"], env, config.workdir)
        for _ in range(config.cold_runs)
    ]
    helps = [measure([*rag, "--help"], env, config.workdir) for _ in range(config.cold_runs)]
    cold_answer = json.loads(asks[-1].stdout)
    results["cold"] = {
        "question": question,
        "ask_s": _r(statistics.median(m.wall_s for m in asks)),
        "ask_s_runs": [_r(m.wall_s) for m in asks],
        "ask_answerer": cold_answer.get("answerer"),
        "help_s": _r(statistics.median(m.wall_s for m in helps)),
        "help_s_runs": [_r(m.wall_s) for m in helps],
    }
    results["memory"] = {
        "index_mb": _r(build.max_rss_mb, 1),
        "add_one_mb": _r(added.max_rss_mb, 1),
        "noop_mb": _r(max(m.max_rss_mb for m in noops), 1),
        "ask_mb": _r(max(m.max_rss_mb for m in asks), 1),
        "help_mb": _r(max(m.max_rss_mb for m in helps), 1),
    }

    n_questions = str(config.questions)
    runs = str(config.runs)
    log(f"warm latency on the corpus index ({report['chunks']} chunks)")
    corpus_latency, _ = worker(config, env, "latency", str(index), str(qa), n_questions, runs)
    results["load_avg"]["after_latency"] = _load()

    scaled = config.workdir / "index-scaled"
    shutil.rmtree(scaled, ignore_errors=True)
    log(f"synthetic scale-up to >= {config.scale_chunks} chunks")
    built, _ = worker(config, env, "scale", str(index), str(scaled), str(config.scale_chunks))
    log(f"  {built['chunks']} chunks; warm latency on it")
    scaled_env = rag_env(config, articles, scaled)
    scaled_latency, _ = worker(
        config, scaled_env, "latency", str(scaled), str(qa), n_questions, runs
    )
    scaled_asks = [
        measure([*rag, "ask", question, "--json"], scaled_env, config.workdir)
        for _ in range(config.cold_runs)
    ]
    results["latency"] = {"corpus": corpus_latency, "scaled": scaled_latency | {"build": built}}
    results["cold"]["ask_scaled_s"] = _r(statistics.median(m.wall_s for m in scaled_asks))
    results["memory"]["ask_scaled_mb"] = _r(max(m.max_rss_mb for m in scaled_asks), 1)
    results["load_avg"]["end"] = _load()
    results["targets"] = check_targets(results)
    return results


def _lookup(results: dict[str, Any], dotted: str) -> Any:
    value: Any = results
    for key in dotted.split("."):
        value = value[key]
    return value


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value and whether it was met."""
    out = []
    for name, (path, op, limit, unit) in TARGETS.items():
        value = _lookup(results, path)
        met = value >= limit if op == ">=" else value <= limit
        out.append(
            {"name": name, "value": value, "target": f"{op} {limit:g}", "unit": unit, "met": met}
        )
    return out


# ---------------------------------------------------------------------------------------------
# Reporting


def _rows(results: dict[str, Any]) -> list[tuple[str, Callable[[], str], str]]:
    """The table's rows: a label, how to write the figure from results, the target's name."""
    ing, inc, cold, mem = (results.get(k, {}) for k in ("ingest", "incremental", "cold", "memory"))
    latency = results.get("latency", {})
    lat_c, lat_s = latency.get("corpus", {}), latency.get("scaled", {})
    bare = ing.get("bare_encode", {})
    side = ing.get("side_by_side", {})
    at = f"{lat_s.get('chunks', '?')} chunks"
    return [
        ("Full `rag index`", lambda: f"{ing['chunks']} chunks, {ing['wall_s']:.1f} s wall, {ing['cpu_s']:.0f} s CPU", ""),
        ("  ingest throughput", lambda: f"{ing['chunks_per_s']:.2f} chunks/s, {ing['mb_per_s']:.4f} MB/s", ""),
        ("  bare `SentenceTransformer.encode`", lambda: f"{bare['chunks_per_s']:.2f} chunks/s ({bare['chunks']} texts, batch 32, {bare['seconds']:.0f} s wall, {bare['cpu_s']:.0f} s CPU)", ""),
        ("  full build / bare encoding, minutes apart", lambda: f"{ing['ratio_to_bare']:.3f} wall time ({ing['ratio_to_bare_cpu']:.3f} by CPU time)", ""),
        ("Ingest / bare encoding, side by side (median of the pairs)", lambda: f"{side['ratio']:.3f} wall time ({side['ratio_cpu']:.3f} by CPU time; {side['chunks']} chunks)", "ingest vs bare encoding"),
        ("  ingest with sentence vectors / without (same runs)", lambda: f"{side['sentence_cost']:.3f} ({statistics.median(r['sentences_s'] for r in side['runs']):.1f} s for {side['runs'][0]['embedded_sentences']} sentences)", "ingest with sentence vectors vs without"),
        ("Add one article", lambda: f"{inc['add_one_s']:.2f} s ({inc['add_one_embedded_chunks']} chunks embedded)", ""),
        ("  as a share of the full build", lambda: f"{inc['add_one_ratio'] * 100:.2f} %", "add one article vs full build"),
        ("No-op re-index (median)", lambda: f"{inc['noop_s']:.2f} s", "no-op re-index"),
        ("Delete one article", lambda: f"{inc['delete_one_s']:.2f} s", ""),
        ("Warm retrieval, corpus index", lambda: f"p50 {lat_c['retrieval']['p50_ms']:.1f} ms, p95 {lat_c['retrieval']['p95_ms']:.1f} ms ({lat_c['chunks']} chunks)", ""),
        ("Warm `ask` (extractive), corpus index", lambda: f"p50 {lat_c['ask']['p50_ms']:.0f} ms, p95 {lat_c['ask']['p95_ms']:.0f} ms", ""),
        ("Warm retrieval, scaled index", lambda: f"p50 {lat_s['retrieval']['p50_ms']:.1f} ms, p95 {lat_s['retrieval']['p95_ms']:.1f} ms ({at})", "warm retrieval p95 at scale"),
        ("Warm `ask` (extractive), scaled index", lambda: f"p50 {lat_s['ask']['p50_ms']:.0f} ms, p95 {lat_s['ask']['p95_ms']:.0f} ms", "warm `ask` p50 at scale"),
        ("  sentence vectors read / embedded while answering", lambda: f"{lat_s['sentence_vectors']['stored']} / {lat_s['sentence_vectors']['embedded']}", ""),
        ("Cold `rag ask --json` (median)", lambda: f"{cold['ask_s']:.2f} s ({cold['ask_answerer']})", "cold `rag ask --json`"),
        ("Cold `rag ask --json`, scaled index", lambda: f"{cold['ask_scaled_s']:.2f} s", ""),
        ("Cold `rag --help` (median)", lambda: f"{cold['help_s']:.3f} s", "cold `rag --help`"),
        ("Peak RSS `rag index` (full build)", lambda: f"{mem['index_mb']:.0f} MB", ""),
        ("Peak RSS `rag ask`", lambda: f"{mem['ask_mb']:.0f} MB ({mem['ask_scaled_mb']:.0f} MB at {at})", "peak RSS of `rag ask`"),
    ]  # fmt: skip


def table(results: dict[str, Any], before: dict[str, Any] | None = None) -> str:
    """The figures as a markdown table; with `before`, an earlier run's figures beside them."""
    targets = {t["name"]: t for t in results["targets"]}

    def written(fn: Callable[[], str]) -> str:
        try:
            return fn()
        except (KeyError, IndexError, TypeError, statistics.StatisticsError):
            return "–"  # not measured by that run

    def mark(name: str) -> str:
        if not name:
            return ""
        if name not in targets:  # a results file from before the target existed
            return f"{TARGETS[name][1]} {TARGETS[name][2]:g} {TARGETS[name][3]}: not measured"
        t = targets[name]
        return f"{t['target']} {t['unit']}: " + ("met" if t["met"] else "**missed**")

    now = _rows(results)
    if before is None:
        lines = ["| Measure | Result | Target |", "|---|---|---|"]
        lines += [f"| {label} | {written(fn)} | {mark(name)} |" for label, fn, name in now]
        return "\n".join(lines)
    then = _rows(before)
    day = str(before.get("generated", "?"))[:10]
    lines = [f"| Measure | Result | Before ({day}) | Target |", "|---|---|---|---|"]
    lines += [
        f"| {label} | {written(fn)} | {written(old)} | {mark(name)} |"
        for (label, fn, name), (_, old, _) in zip(now, then, strict=True)
    ]
    return "\n".join(lines)


def _shown(budget: int) -> str:
    """What a local-model run showed the model: the passages whole (runs before
    Tuning.prompt_budget existed, or 0), or the best sentences within a budget of word pieces."""
    return f"best sentences, {budget} word pieces" if budget else "whole passages"


def local_section(local_path: Path, out_path: Path) -> list[str]:
    """RESULTS.md lines for a local model's answers (bench/local_llm.py's saved runs), each
    question's time to first token and answer time beside the extractive `ask` on it."""
    runs: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for line in local_path.read_text().splitlines():
        record = json.loads(line)
        if "model" in record:
            runs.append((record, []))
        elif runs:
            runs[-1][1].append(record)
    ref = Path(os.path.relpath(local_path.resolve(), out_path.resolve().parent)).as_posix()
    lines = [
        "",
        "## A local model (`--llm local:`) beside the extractive answerer",
        "",
        f"Measured by `python bench/local_llm.py MODEL --save` over an index of the shipped "
        f"articles (k=5: whole passages make prompts of 1,700-2,400 tokens; `--budgets` shows "
        f"the model the best sentences within Tuning.prompt_budget instead), one question at a "
        f"time, the model's "
        f"time alone (retrieval excluded) and then the whole warm extractive `ask` on the same "
        f"question in the same process. Raw lines: [{ref}]({ref}).",
        "",
        "| model | run | threads | weights | passages shown | question | prompt tokens "
        "| first token | answer | tokens written | extractive `ask` | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for head, rows in runs:
        run = f"{head.get('date', '?')} @ {head.get('commit') or '?'}"
        for r in rows:
            lines.append(
                # Runs before RAG_LOCAL_DTYPE existed loaded float32 weights.
                f"| {head['model']} | {run} | {r['threads']} | {r.get('dtype', 'float32')} "
                f"| {_shown(r.get('prompt_budget', 0))} | {r['question']} "
                f"| {r['prompt_tokens']} | {r['ttft_s']} s | {r['answer_s']} s "
                f"| {r['generated_tokens']} | {r['extractive_ask_s']} s | {r['load_average']} |"
            )
    lines += [
        "",
        "Reading the prompt dominates: nearly all of a short answer's time passes before its "
        "first token. The load average column is the machine's 1-minute load as each question "
        "finished: above 2 (two cores), other processes slowed the model.",
    ]
    return lines


def markdown(
    results: dict[str, Any],
    json_path: Path,
    out_path: Path,
    local_path: Path | None = None,
    before: dict[str, Any] | None = None,
) -> str:
    """bench/RESULTS.md: the table, the machine, and how each figure was taken."""
    m = results["machine"]
    cfg = results["config"]
    ing = results["ingest"]
    side = ing["side_by_side"]
    lat_c, lat_s = results["latency"]["corpus"], results["latency"]["scaled"]
    probe = ing["bare_encode"].get("onnx_probe")
    load = ", ".join(f"{k} {v}" for k, v in results["load_avg"].items())
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    met = sum(1 for t in results["targets"] if t["met"])
    json_ref = Path(os.path.relpath(json_path.resolve(), out_path.resolve().parent)).as_posix()
    parts = [
        "# rag benchmark results",
        "",
        "Generated by `python bench/bench.py` (do not edit by hand; rerun it). "
        f"Raw figures: [{json_ref}]({json_ref}).",
        "",
        f"- Run: {results['generated']}; corpus `{Path(cfg['corpus']).name}`, "
        f"{results['corpus']['articles']} articles ({results['corpus']['mb']} MB), "
        f"{cfg['questions']} questions, {cfg['runs']} runs, {cfg['cold_runs']} cold starts"
        + (" (**--quick smoke run**)" if cfg["quick"] else ""),
        f"- Machine: {describe(m)}",
        f"- Packages: {versions}",
        f"- 1-minute load average during the run: {load}. The machine is shared: figures above "
        "about 1 load per core are inflated by other processes.",
        "",
        f"## Figures ({met} of {len(results['targets'])} targets met)",
        "",
        table(results, before),
        "",
        *(
            [
                f"Before: the run of {before.get('generated', '?')} "
                f"([{BEFORE_NAME}]({BEFORE_NAME})), on the same corpus settings, before sentence "
                "vectors were stored; `–`: not measured then.",
                "",
            ]
            if before
            else []
        ),
        "## How each figure was taken",
        "",
        "- **Ingest**: one `rag index --json` subprocess over a fresh index; wall time includes "
        "start-up, model load, chunking, embedding, Chroma and BM25 writes and the ONNX export of "
        "the query model. Bare encoding: `SentenceTransformer.encode` of the same unique chunk "
        "texts (header + passage), batch 32, model preloaded and warmed, in a fresh process. "
        "These two run minutes apart, so their ratio moves with the machine's load in between.",
        f"- **Ingest / bare encoding, side by side** (judged against the target): the first "
        f"{side['articles']} articles by name ({side['chunks']} chunks) indexed by `rag index "
        "--json` into a fresh index, then bare encoding (as above) of exactly the chunk texts "
        f"that index holds, the pair repeated {len(side['runs'])} times; the figure is the "
        "median of the pairs' throughput ratios, each pair sharing whatever load the machine "
        "had. `rag index` wall time includes start-up, model load, chunking, embedding, Chroma "
        "and BM25 writes; the fresh index is seeded with the ONNX query model (a one-time export "
        "per index, not ingest work). The CPU-time ratio (rusage of the `rag index` child against "
        "`time.process_time` around `encode`, all threads) is shown beside it because it hardly "
        "moves with other processes' load. Pair ratios (wall): "
        + ", ".join(f"{r['ratio']:.3f}" for r in side["runs"])
        + ".",
        "- **Sentence vectors**: `rag index` embeds every sentence of the stored chunks once "
        "(rag/sentences.py) after storing them; the index report times that stage "
        "(`sentences_seconds`), and the side-by-side runs' wall time divided by the same wall "
        "time less that stage is the slowdown it costs. While answering, the extractive "
        "answerer reads its candidate sentences' vectors from that store; the row under the "
        "scaled `ask` counts the texts read from it and those embedded at question time (each "
        "question's own asking sentence, and any sentence the store lacks).",
        "- **Incremental**: a retitled copy of a median-sized article is added (every chunk new) "
        "and `rag index` run; then `rag index` with nothing changed (median of the runs); then "
        "the article is deleted and `rag index` run again.",
        "- **Warm latency**: one process, `Pipeline` built once and warmed on 3 questions; each "
        "of the questions timed for `Retriever.search` alone (query embedding, Chroma, BM25, "
        "fusion, collapse) and for `Pipeline.ask` with the extractive answerer. p50/p95 per "
        "run, median across runs. Query embedder: "
        f"`{lat_c['query_embedder']}` (torch loaded: {lat_c['torch_loaded']}). Median stage "
        f"times at {lat_s['chunks']} chunks: "
        + ", ".join(f"{k} {v} ms" for k, v in lat_s["retrieval"]["median_stage_ms"].items())
        + ".",
        f"- **Scale-up**: the corpus index plus {lat_s['build']['copies'] - 1} perturbed copies "
        "of every chunk (10% of words dropped, vector moved by Gaussian noise, about 0.93 "
        f"cosine): {lat_s['chunks']} chunks, written straight into a real index generation "
        "(Chroma + BM25 + manifest + sentence vectors, each copy's sentence vector moved by the "
        "same noise) without re-embedding. Sanity: extractive answers containing "
        f"a gold answer string: {lat_c['answered_with_gold']}/{lat_c['questions']} on the corpus, "
        f"{lat_s['answered_with_gold']}/{lat_s['questions']} scaled.",
        "- **Cold start**: wall time of fresh `rag ask QUESTION --json` and `rag --help` "
        "processes (median); peak RSS from the kernel's rusage of each child (`ru_maxrss`).",
    ]
    if probe:
        parts.append(
            f"- **ONNX Runtime for chunks (probe; `rag index` embeds chunks with "
            f"sentence-transformers, sentences with ONNX Runtime)**: on {probe['chunks']}"
            f" sampled chunk texts, sentence-transformers {probe['st_chunks_per_s']} chunks/s vs "
            f"ONNX Runtime fp32 {probe['onnx_chunks_per_s']} chunks/s; minimum cosine between "
            f"the two {probe['min_cosine']}."
        )
    if local_path is not None and local_path.is_file():
        parts += local_section(local_path, out_path)
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run the bench (or one worker), print and write the results."""
    parser = argparse.ArgumentParser(
        prog="python bench/bench.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="articles/ + qa.jsonl")
    parser.add_argument("--articles", type=int, help="index only N articles of the corpus")
    parser.add_argument("--questions", type=int, help="questions timed (default 100)")
    parser.add_argument("--scale-chunks", type=int, help="scale-up size (default 50000)")
    parser.add_argument(
        "--ratio-chunks", type=int, help="chunks of the side-by-side ingest subset (default 1500)"
    )
    parser.add_argument("--runs", type=int, help="repetitions of latency and no-op runs")
    parser.add_argument("--cold-runs", type=int, help="repetitions of cold starts")
    parser.add_argument("--onnx-sample", type=int, help="chunks for the ONNX indexing probe")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (CI)")
    parser.add_argument("--workdir", type=Path, help="keep the indexes here (default: a tmp dir)")
    parser.add_argument("--out", type=Path, help="RESULTS.md to write")
    parser.add_argument("--json", type=Path, dest="json_out", help="results JSON to write")
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite RESULTS.md from the saved results JSON and bench/local_llm.jsonl",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("worker_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        return _run_worker(args.worker, args.worker_args)

    quick = args.quick
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rag-bench-"))
    config = Config(
        corpus=args.corpus.resolve(),
        workdir=workdir.resolve(),
        articles=args.articles if args.articles is not None else (4 if quick else None),
        questions=args.questions or (5 if quick else 100),
        scale_chunks=args.scale_chunks or (300 if quick else 50_000),
        ratio_chunks=args.ratio_chunks or (10 if quick else 1500),
        runs=args.runs or (1 if quick else 3),
        cold_runs=args.cold_runs or (1 if quick else 5),
        onnx_sample=args.onnx_sample if args.onnx_sample is not None else (16 if quick else 512),
        quick=quick,
    )
    # A smoke run must not overwrite the committed results.
    out = args.out or (config.workdir / "RESULTS.md" if quick else DEFAULT_OUT)
    json_out = args.json_out or (config.workdir / "results.json" if quick else DEFAULT_JSON)

    local = None if quick else DEFAULT_LOCAL
    before = (
        None if quick or not DEFAULT_BEFORE.is_file() else json.loads(DEFAULT_BEFORE.read_text())
    )
    if args.render:
        out.write_text(markdown(json.loads(json_out.read_text()), json_out, out, local, before))
        print(f"wrote {out}", file=sys.stderr)
        return 0

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    try:
        results = bench(config, log)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(results, indent=1) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(results, json_out, out, local, before))
    print(table(results, before))
    print(f"\nwrote {out} and {json_out}", file=sys.stderr)
    return 0


def _run_worker(name: str, args: list[str]) -> int:
    if name == "encode":
        result = encode_worker(Path(args[0]), int(args[1]), int(args[2]))
    elif name == "scale":
        result = scale_worker(Path(args[0]), Path(args[1]), int(args[2]))
    elif name == "latency":
        result = latency_worker(Path(args[0]), Path(args[1]), int(args[2]), int(args[3]))
    else:
        raise SystemExit(f"unknown worker {name!r}")
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
