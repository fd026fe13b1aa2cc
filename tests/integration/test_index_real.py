"""`rag index` as a real subprocess with the real MiniLM model: reruns, kill -9, concurrency."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag import indexing
from rag.chunking import split_sentences
from rag.settings import Settings
from rag.store import ChunkStore, Generations, collection_name
from tests.conftest import SHIPPED_ARTICLES
from tests.fakes import HashingEmbeddings

pytestmark = pytest.mark.integration

RAG_SCRIPT = Path(sys.executable).with_name("rag")
# More one-chunk articles than indexing.GROUP_CHUNKS, so a run writes them in two groups.
VARIANTS = indexing.GROUP_CHUNKS + 100


@dataclass
class Folders:
    """An articles folder, its index folder, and the environment that points rag at them."""

    articles: Path
    index: Path

    def env(self, **extra: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        return {
            **clean,
            "RAG_ARTICLES_DIR": str(self.articles),
            "RAG_INDEX_DIR": str(self.index),
            "RAG_CONFIG": str(self.index.parent / "rag.toml"),
            **extra,
        }

    def settings(self) -> Settings:
        return Settings(articles_dir=self.articles, index_dir=self.index)

    def copy_to(self, root: Path) -> Folders:
        """A private copy (articles and index) for a test that changes them."""
        shutil.copytree(self.articles, root / "articles")
        shutil.copytree(self.index, root / "index")
        return Folders(root / "articles", root / "index")


def rag(folders: Folders, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m rag ARGS` in a real subprocess; raises if it runs away."""
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        env=folders.env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def start_index(folders: Folders, **env: str) -> subprocess.Popen[str]:
    """A `rag index --json` running in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "rag", "index", "--json"],
        env=folders.env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def indexed_articles(index_dir: Path) -> int:
    """How many articles the live manifest records (written atomically, so safe to poll)."""
    gen = Generations(index_dir).current()
    if gen is None or not (gen / "manifest.json").is_file():
        return 0
    return len(json.loads((gen / "manifest.json").read_text())["articles"])


def lock_is_held(index_dir: Path) -> bool:
    """Whether some process holds the index lock (checked without keeping it)."""
    lock = index_dir / ".lock"
    if not lock.exists():
        return False
    with lock.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def chroma_ids(folders: Folders) -> list[str]:
    """Every chunk id in the live Chroma collection, read with chromadb itself."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    gen = Generations(folders.index).current()
    assert gen is not None
    client = chromadb.PersistentClient(
        path=str(gen / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    return client.get_collection(collection_name(gen)).get(include=[])["ids"]


def write_variants(folder: Path, n: int) -> None:
    """n short, distinct articles made from sentences of the shipped ones (one chunk each).

    Short texts embed fast, so the real model gets through a few hundred in seconds.
    """
    sentences: list[str] = []
    for path in sorted(SHIPPED_ARTICLES.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        sentences += [text[s:e] for s, e in split_sentences(text) if 60 < e - s < 200]
    places = ["Tehran", "Moscow", "Kyiv", "Vienna", "Geneva", "Ankara", "Baku", "Doha", "Muscat"]
    for i in range(n):
        title = f"Brief {i}: {places[i % len(places)]} reacts"
        body = f"{sentences[(i * 7) % len(sentences)]} Report number {i} from {places[i % 9]}."
        (folder / f"brief-{i:04d}.txt").write_text(f"{title}\n\n{body}\n", encoding="utf-8")


def clean_build_ids(articles: Path, root: Path) -> list[str]:
    """Chunk ids a from-scratch build of articles produces (fake vectors: ids don't depend on them)."""
    settings = Settings(articles_dir=articles, index_dir=root / "clean-index")
    indexing.apply(settings, indexing.plan(settings), embedder=HashingEmbeddings())
    gen = Generations(settings.index_dir).current()
    assert gen is not None
    return [c.id for c in ChunkStore(settings, gen).iter_all()]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Folders, dict[str, Any]]:
    """The shipped articles indexed once by the installed `rag` command, and its JSON report."""
    root = tmp_path_factory.mktemp("shipped")
    shutil.copytree(SHIPPED_ARTICLES, root / "articles")
    folders = Folders(root / "articles", root / "index")
    result = subprocess.run(
        [str(RAG_SCRIPT), "index", "--json"],
        env=folders.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return folders, json_of(result)


def test_index_then_reindex_embeds_nothing(shipped: tuple[Folders, dict[str, Any]]) -> None:
    folders, first = shipped
    assert (first["added"], first["changed"], first["deleted"], first["unchanged"]) == (4, 0, 0, 0)
    assert first["chunks"] >= 12
    assert first["embedded_chunks"] == first["chunks"]
    assert first["warnings"] == []

    again = json_of(rag(folders, "index", "--json"))
    assert (again["added"], again["changed"], again["unchanged"]) == (0, 0, 4)
    assert again["embedded_chunks"] == 0
    assert again["chunks"] == first["chunks"]

    rows = json_of(rag(folders, "sources", "--json"))
    assert len(rows) == 4
    assert sum(r["chunks"] for r in rows) == first["chunks"]
    ids = chroma_ids(folders)
    assert len(ids) == len(set(ids)) == first["chunks"]


def test_kill_9_mid_index_keeps_the_old_index_and_the_next_run_finishes(
    shipped: tuple[Folders, dict[str, Any]], tmp_path: Path
) -> None:
    folders = shipped[0].copy_to(tmp_path)
    old_rows = json_of(rag(folders, "sources", "--json"))
    write_variants(folders.articles, VARIANTS)

    proc = start_index(folders)
    deadline = time.monotonic() + 240
    try:
        # Wait until the run has embedded and recorded its first group of new articles, so the
        # kill lands in the middle of writing the rest.
        while indexed_articles(folders.index) <= len(old_rows):
            assert proc.poll() is None, "rag index ended before it was killed"
            assert time.monotonic() < deadline, "rag index made no progress"
            time.sleep(0.01)
        assert proc.poll() is None, "rag index finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    partial = indexed_articles(folders.index)
    assert len(old_rows) < partial < len(old_rows) + VARIANTS, partial

    # The index stays readable: the articles indexed before, and those recorded since; and
    # it says that the run was interrupted.
    listing = rag(folders, "sources", "--json")
    rows = json_of(listing)
    assert {r["file"] for r in old_rows} <= {r["file"] for r in rows}
    assert len(rows) == partial
    assert (
        f"note: the last `rag index` was interrupted: {partial - len(old_rows)} of the "
        f"{VARIANTS} articles it was indexing are in the index; run it again to finish"
    ) in " ".join(listing.stderr.split())

    final = json_of(rag(folders, "index", "--json"))
    assert final["unchanged"] == partial, final
    assert final["added"] == len(old_rows) + VARIANTS - partial, final
    assert 0 < final["embedded_chunks"] <= final["added"]

    expected = clean_build_ids(folders.articles, tmp_path)
    ids = chroma_ids(folders)
    assert len(ids) == len(set(ids)), "duplicate chunks in Chroma after the interrupted run"
    assert sorted(ids) == sorted(expected)
    assert final["chunks"] == len(expected)
    assert json_of(rag(folders, "index", "--json"))["embedded_chunks"] == 0
    assert "note:" not in rag(folders, "sources", "--json").stderr


def test_concurrent_index_runs_fail_clearly_or_wait(
    shipped: tuple[Folders, dict[str, Any]], tmp_path: Path
) -> None:
    folders = shipped[0].copy_to(tmp_path)
    write_variants(folders.articles, 10)

    first = start_index(folders)
    try:
        deadline = time.monotonic() + 60
        while not lock_is_held(folders.index):
            assert first.poll() is None, "the first rag index ended before it took the lock"
            assert time.monotonic() < deadline
            time.sleep(0.05)

        impatient = rag(folders, "index", "--json", RAG_LOCK_TIMEOUT="0.5")
        waiting = start_index(folders, RAG_LOCK_TIMEOUT="300")
        first_out, first_err = first.communicate(timeout=300)
        waiting_out, waiting_err = waiting.communicate(timeout=300)
    finally:
        first.kill()

    assert impatient.returncode == 1
    assert impatient.stdout == ""
    assert impatient.stderr.count("\n") == 1, impatient.stderr
    assert impatient.stderr.startswith(f"error: another `rag index` is updating {folders.index}")

    assert first.returncode == 0, first_err
    done = json.loads(first_out)
    assert (done["added"], done["embedded_chunks"]) == (10, 10), done

    # The one that waited re-plans under the lock: nothing left to embed, nothing doubled.
    assert waiting.returncode == 0, waiting_err
    after = json.loads(waiting_out)
    assert (after["added"], after["unchanged"], after["embedded_chunks"]) == (0, 14, 0), after
    ids = chroma_ids(folders)
    assert len(ids) == len(set(ids)) == after["chunks"] == done["chunks"]
