"""Unit tests for incremental indexing: fake embeddings, real Chroma and bm25s in tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rag import indexing
from rag.cli import app
from rag.indexing import IndexLocked, IndexReport
from rag.lexical import TOKENIZER_VERSION, LexicalIndex
from rag.settings import Settings
from rag.store import ChunkStore, Generations
from tests.corpus import BIDEN, DRONES, G7, NEW_ARTICLE, US
from tests.fakes import HashingEmbeddings


def run(settings: Settings, embedder: HashingEmbeddings, *, rebuild: bool = False) -> IndexReport:
    """Plan and apply, as `rag index` does."""
    return indexing.apply(settings, indexing.plan(settings, rebuild=rebuild), embedder=embedder)


def live_generation(settings: Settings) -> Path:
    """The live generation folder (there must be one)."""
    gen = Generations(settings.index_dir).current()
    assert gen is not None
    return gen


def live_store(settings: Settings) -> ChunkStore:
    """The Chroma collection of the live generation."""
    return ChunkStore(settings, live_generation(settings))


def stored_ids(settings: Settings) -> list[str]:
    """Every chunk id in the live Chroma collection."""
    return [c.id for c in live_store(settings).iter_all()]


def manifest_ids(settings: Settings) -> list[str]:
    """Every chunk id the live manifest records."""
    _, manifest = indexing.current_manifest(settings)
    assert manifest is not None
    return [cid for entry in manifest.articles.values() for cid in entry.chunks]


def lexical_sources(settings: Settings, query: str) -> set[str]:
    """Articles whose chunks BM25 finds for query."""
    gen = live_generation(settings)
    hits = LexicalIndex(gen).search(query, 50)
    by_id = {c.id: c.metadata["source"] for c in live_store(settings).get([h.id for h in hits])}
    assert len(by_id) == len(hits), "BM25 returned ids that Chroma does not hold"
    return set(by_id.values())


def assert_consistent(settings: Settings) -> None:
    """Chroma, the manifest and BM25 hold exactly the same chunks, once each."""
    in_store = stored_ids(settings)
    in_manifest = manifest_ids(settings)
    assert len(in_store) == len(set(in_store)), "duplicate chunks in Chroma"
    assert sorted(in_store) == sorted(in_manifest)
    gen = live_generation(settings)
    assert sorted(json.loads((gen / "lexical" / "ids.json").read_text())) == sorted(in_manifest)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under folder with a hash of its bytes (to prove nothing changed)."""
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_first_index_embeds_everything(
    settings: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    report = run(settings, fake_embeddings)
    assert (report.added, report.changed, report.deleted, report.unchanged) == (4, 0, 0, 0)
    assert report.chunks > 12
    assert report.embedded_chunks == report.chunks
    # Each chunk once, then each distinct sentence of them once (rag/sentences.py).
    assert sum(fake_embeddings.calls) == report.chunks + report.embedded_sentences
    assert report.embedded_sentences > report.chunks
    assert report.reused_chunks == 0
    assert report.warnings == []
    assert_consistent(settings)
    assert lexical_sources(settings, "Makhachkala Caspian") == {DRONES}


def test_second_run_embeds_nothing(settings: Settings, fake_embeddings: HashingEmbeddings) -> None:
    first = run(settings, fake_embeddings)
    calls = len(fake_embeddings.calls)
    plan = indexing.plan(settings)
    assert plan.is_noop
    second = indexing.apply(settings, plan, embedder=fake_embeddings)
    assert (second.added, second.changed, second.deleted, second.unchanged) == (0, 0, 0, 4)
    assert second.embedded_chunks == 0
    assert second.chunks == first.chunks
    assert len(fake_embeddings.calls) == calls
    assert_consistent(settings)


def test_a_noop_run_rewrites_neither_manifest_nor_bm25(
    settings: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    run(settings, fake_embeddings)
    gen = live_generation(settings)
    files = [gen / "manifest.json", gen / "lexical" / "ids.json", gen / "lexical" / "tokens.jsonl"]
    before = [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files]
    report = run(settings, fake_embeddings)
    assert (report.added, report.changed, report.deleted, report.embedded_chunks) == (0, 0, 0, 0)
    assert Generations(settings.index_dir).current() == gen
    assert [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files] == before


class RecordingEmbeddings(HashingEmbeddings):
    """HashingEmbeddings that keeps every batch of texts it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Record the batch, then embed it."""
        self.batches.append(list(texts))
        return super().embed_documents(texts)


def test_chunks_are_embedded_in_batches_sorted_by_token_count(settings: Settings) -> None:
    from rag.embedding import resolve_model_dir, token_counter

    embedder = RecordingEmbeddings()
    report = indexing.apply(
        settings.with_overrides(embedding_batch_size=8), indexing.plan(settings), embedder=embedder
    )
    count = token_counter(resolve_model_dir(settings.embedding_model))
    # The chunks' batches; the sentences' (rag/sentences.py) come after them.
    chunk_batches = embedder.batches[: -(-report.embedded_chunks // 8)]
    assert sum(len(b) for b in chunk_batches) == report.embedded_chunks
    sizes = [count(batch) for batch in chunk_batches]
    assert len(sizes) > 2
    assert all(s == sorted(s) for s in sizes)
    # One group of chunks: sorted across batches too.
    assert all(a[-1] <= b[0] for a, b in zip(sizes, sizes[1:], strict=False))


def test_copy_under_a_new_name_is_an_alias(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    first = run(settings, fake_embeddings)
    shutil.copy(articles_dir / DRONES, articles_dir / "drones-copy.txt")
    plan = indexing.plan(settings)
    assert plan.added == []
    assert plan.aliases[DRONES] == ["drones-copy.txt"]
    report = indexing.apply(settings, plan, embedder=fake_embeddings)
    assert report.embedded_chunks == 0
    assert report.chunks == first.chunks
    assert any(w.startswith("drones-copy.txt:") and DRONES in w for w in report.warnings)
    _, manifest = indexing.current_manifest(settings)
    assert manifest is not None
    assert manifest.articles[DRONES].aliases == ["drones-copy.txt"]
    assert "drones-copy.txt" not in manifest.articles
    assert_consistent(settings)


def test_new_article_embeds_only_its_chunks(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    first = run(settings, fake_embeddings)
    (articles_dir / "drone-carrier.txt").write_text(NEW_ARTICLE)
    report = run(settings, fake_embeddings)
    assert (report.added, report.changed, report.deleted, report.unchanged) == (1, 0, 0, 4)
    _, manifest = indexing.current_manifest(settings)
    assert manifest is not None
    new_chunks = len(manifest.articles["drone-carrier.txt"].chunks)
    assert new_chunks >= 1
    assert report.embedded_chunks == new_chunks
    assert report.chunks == first.chunks + new_chunks
    assert manifest.articles["drone-carrier.txt"].date == "2024-03-01"
    assert_consistent(settings)
    assert lexical_sources(settings, "Shahid Bagheri") == {"drone-carrier.txt"}


def test_editing_one_paragraph_reembeds_only_changed_chunks(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    run(settings, fake_embeddings)
    _, before = indexing.current_manifest(settings)
    assert before is not None
    old_ids = before.articles[DRONES].chunks
    path = articles_dir / DRONES
    text = path.read_text()
    last_paragraph = text.rstrip().split("\n\n")[-1]
    path.write_text(text.replace(last_paragraph, last_paragraph + " Zanzibarian envoys objected."))

    report = run(settings, fake_embeddings)
    assert (report.added, report.changed, report.deleted, report.unchanged) == (0, 1, 0, 3)
    assert report.reused_chunks > 0
    assert 0 < report.embedded_chunks < len(old_ids)
    assert report.embedded_chunks + report.reused_chunks == len(
        indexing.current_manifest(settings)[1].articles[DRONES].chunks  # type: ignore[union-attr]
    )
    assert_consistent(settings)
    assert lexical_sources(settings, "Zanzibarian") == {DRONES}


def test_deleting_an_article_removes_it_from_chroma_and_bm25(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    first = run(settings, fake_embeddings)
    _, manifest = indexing.current_manifest(settings)
    assert manifest is not None
    gone = manifest.articles[DRONES].chunks
    assert lexical_sources(settings, "Makhachkala") == {DRONES}

    (articles_dir / DRONES).unlink()
    report = run(settings, fake_embeddings)
    assert (report.added, report.changed, report.deleted, report.unchanged) == (0, 0, 1, 3)
    assert report.embedded_chunks == 0
    assert report.chunks == first.chunks - len(gone)
    assert live_store(settings).get(gone) == []
    assert lexical_sources(settings, "Makhachkala Caspian Alabuga") == set()
    assert_consistent(settings)


def test_a_new_title_reaches_bm25_though_the_passages_are_unchanged(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    """Chunk ids come from the passage text, so a retitled article keeps its ids; the BM25
    side index must still pick up the new title, which every chunk's header carries."""
    run(settings, fake_embeddings)
    assert lexical_sources(settings, "Zeppelinfabrik") == set()
    path = articles_dir / DRONES
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("Zeppelinfabrik in Tatarstan\n" + "".join(lines[1:]), encoding="utf-8")

    report = run(settings, fake_embeddings)
    assert report.changed == 1
    assert lexical_sources(settings, "Zeppelinfabrik") == {DRONES}
    assert_consistent(settings)


def test_an_index_from_an_older_tokenizer_is_tokenized_again_not_re_embedded(
    settings: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    run(settings, fake_embeddings)
    gen = live_generation(settings)
    # As an index written before the tokenizer had a version (it joins "G-7" into "g7" now).
    (gen / "lexical" / "tokenizer.json").unlink()
    plan = indexing.plan(settings)
    assert plan.retokenize and not plan.is_noop
    assert not plan.added and not plan.changed and not plan.rebuild_reason
    calls = len(fake_embeddings.calls)
    report = indexing.apply(settings, plan, embedder=fake_embeddings)
    assert report.embedded_chunks == 0 and len(fake_embeddings.calls) == calls
    assert Generations(settings.index_dir).current() == gen
    assert json.loads((gen / "lexical" / "tokenizer.json").read_text()) == {
        "tokenizer": TOKENIZER_VERSION
    }
    assert lexical_sources(settings, "G7") == {G7}
    assert indexing.plan(settings).is_noop
    assert_consistent(settings)


def test_dry_run_touches_nothing(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    runner = CliRunner()
    env = {"RAG_ARTICLES_DIR": str(articles_dir), "RAG_INDEX_DIR": str(settings.index_dir)}
    result = runner.invoke(app, ["index", "--dry-run", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == sorted([BIDEN, DRONES, G7, US])
    assert not settings.index_dir.exists()

    run(settings, fake_embeddings)
    (articles_dir / "drone-carrier.txt").write_text(NEW_ARTICLE)
    (articles_dir / G7).unlink()
    before = snapshot(settings.index_dir)
    result = runner.invoke(app, ["index", "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert "1 added, 0 changed, 1 deleted, 3 unchanged" in result.stdout
    assert snapshot(settings.index_dir) == before


def test_changed_settings_rebuild_into_a_new_generation(
    settings: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    first = run(settings, fake_embeddings)
    old_gen = Generations(settings.index_dir).current()
    assert old_gen is not None
    smaller = settings.with_overrides(chunk_tokens=80)
    plan = indexing.plan(smaller)
    assert plan.rebuild_reason is not None
    assert "chunk_tokens" in plan.rebuild_reason
    assert sorted(plan.added) == sorted([BIDEN, DRONES, G7, US])

    seen_during: list[tuple[Path | None, int, int]] = []

    class Watching(HashingEmbeddings):
        """Records what a reader would see while the rebuild is embedding."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            _, manifest = indexing.current_manifest(settings)
            seen_during.append(
                (
                    Generations(settings.index_dir).current(),
                    len(manifest.articles) if manifest else 0,
                    ChunkStore(settings, old_gen).count(),
                )
            )
            return super().embed_documents(texts)

    report = indexing.apply(smaller, plan, embedder=Watching())
    assert seen_during
    assert all(seen == (old_gen, 4, first.chunks) for seen in seen_during)
    assert report.rebuilt == plan.rebuild_reason
    assert report.chunks > first.chunks
    assert report.embedded_chunks == report.chunks
    new_gen = Generations(smaller.index_dir).current()
    assert new_gen is not None and new_gen != old_gen
    assert not old_gen.exists()
    assert_consistent(smaller)
    assert indexing.plan(smaller).is_noop


def test_rebuild_flag_reembeds_everything(
    settings: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    first = run(settings, fake_embeddings)
    report = run(settings, fake_embeddings, rebuild=True)
    assert report.rebuilt == "--rebuild"
    assert report.embedded_chunks == report.chunks == first.chunks
    assert_consistent(settings)


def test_bad_files_warn_once_each_and_the_rest_index(
    settings: Settings, articles_dir: Path, tmp_path: Path, fake_embeddings: HashingEmbeddings
) -> None:
    (articles_dir / "empty.txt").write_text("")
    (articles_dir / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (articles_dir / "legacy.txt").write_bytes(
        "Caf\u00e9 diplomacy\n\n\u201cTalks resumed in Vienna,\u201d diplomats said.\n".encode(
            "cp1252"
        )
    )
    (articles_dir / "broken.html").write_text("</html></body></p><<<>>>")
    outside = tmp_path / "outside.txt"
    outside.write_text("Outside\n\nThis file lives outside the articles folder.\n")
    os.symlink(outside, articles_dir / "outside-link.txt")
    shutil.copy(articles_dir / BIDEN, articles_dir / "biden-copy.txt")

    report = run(settings, fake_embeddings)
    bad = ["empty.txt", "binary.txt", "legacy.txt", "broken.html", "outside-link.txt"]
    for name in [*bad, "biden-copy.txt"]:
        naming = [w for w in report.warnings if w.startswith(f"{name}:")]
        assert len(naming) == 1, (name, report.warnings)
    assert len(report.warnings) == len(bad) + 1

    _, manifest = indexing.current_manifest(settings)
    assert manifest is not None
    assert sorted(manifest.articles) == sorted([BIDEN, DRONES, G7, US, "legacy.txt"])
    assert manifest.articles["legacy.txt"].title == "Caf\u00e9 diplomacy"
    assert_consistent(settings)
    assert lexical_sources(settings, "diplomats Vienna resumed") >= {"legacy.txt"}


def test_an_article_that_becomes_unreadable_leaves_the_index(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    run(settings, fake_embeddings)
    (articles_dir / G7).write_text("")
    report = run(settings, fake_embeddings)
    assert report.warnings == [f"{G7}: empty file, skipped"]
    _, manifest = indexing.current_manifest(settings)
    assert manifest is not None
    assert G7 not in manifest.articles
    assert_consistent(settings)


def test_a_plan_made_before_another_run_finished_is_redone(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    # Two `rag index` started together both plan "4 added"; the one that waited for the lock
    # must not embed again what the first just indexed.
    waiting = indexing.plan(settings)
    first = run(settings, fake_embeddings)
    calls = len(fake_embeddings.calls)
    report = indexing.apply(settings, waiting, embedder=fake_embeddings)
    assert (report.added, report.unchanged, report.embedded_chunks) == (0, 4, 0)
    assert report.chunks == first.chunks
    assert len(fake_embeddings.calls) == calls
    assert_consistent(settings)


def test_a_file_removed_after_planning_is_a_warning_not_a_crash(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    plan = indexing.plan(settings)
    (articles_dir / G7).unlink()
    report = indexing.apply(settings, plan, embedder=fake_embeddings)
    assert [w for w in report.warnings if w.startswith(f"{G7}:")] != []
    _, manifest = indexing.current_manifest(settings)
    assert manifest is not None
    assert sorted(manifest.articles) == sorted([BIDEN, DRONES, US])
    assert_consistent(settings)


def test_a_held_lock_makes_apply_fail_clearly(
    settings: Settings, fake_embeddings: HashingEmbeddings
) -> None:
    impatient = settings.with_overrides(lock_timeout=0.3)
    plan = indexing.plan(impatient)
    with (
        indexing.index_lock(settings.index_dir, timeout=1),
        pytest.raises(IndexLocked) as caught,
    ):
        indexing.apply(impatient, plan, embedder=fake_embeddings)
    message = str(caught.value)
    assert "another `rag index`" in message
    assert str(settings.index_dir) in message
    assert "0.3s" in message
    assert fake_embeddings.calls == []
    assert Generations(settings.index_dir).current() is None
    # Once the lock is free the same plan goes through.
    assert indexing.apply(impatient, plan, embedder=fake_embeddings).added == 4


def test_a_held_lock_is_one_line_and_exit_1_from_the_cli(
    settings: Settings, articles_dir: Path
) -> None:
    env = {
        "RAG_ARTICLES_DIR": str(articles_dir),
        "RAG_INDEX_DIR": str(settings.index_dir),
        "RAG_LOCK_TIMEOUT": "0.2",
    }
    with indexing.index_lock(settings.index_dir, timeout=1):
        result = CliRunner().invoke(app, ["index", "--json"], env=env)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: another `rag index` is updating")


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch, fake_embeddings: HashingEmbeddings) -> None:
    """The CLI's embedder becomes the fake one, so CLI tests never load the real model."""

    monkeypatch.setattr(indexing, "index_embedder", lambda settings: fake_embeddings)


def invoke_json(args: list[str], env: dict[str, str]) -> Any:
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.usefixtures("fake_model")
def test_cli_index_and_sources_json_shapes(settings: Settings, articles_dir: Path) -> None:
    env = {"RAG_ARTICLES_DIR": str(articles_dir), "RAG_INDEX_DIR": str(settings.index_dir)}
    assert invoke_json(["sources", "--json"], env) == []

    report = invoke_json(["index", "--json"], env)
    expected = {"added", "changed", "deleted", "unchanged", "chunks", "embedded_chunks", "seconds"}
    assert expected <= set(report)
    assert report["added"] == 4
    assert report["embedded_chunks"] == report["chunks"] > 0
    assert isinstance(report["seconds"], float)

    again = invoke_json(["index", "--json"], env)
    assert (again["unchanged"], again["embedded_chunks"]) == (4, 0)

    rows = invoke_json(["sources", "--json"], env)
    assert isinstance(rows, list) and len(rows) == 4
    for row in rows:
        assert {"file", "title", "date", "source", "chunks"} <= set(row)
    by_file = {r["file"]: r for r in rows}
    assert by_file[BIDEN]["date"] == "2024-02-23"
    assert by_file[BIDEN]["title"].startswith("Biden Administration to Impose New Sanctions")
    assert sum(r["chunks"] for r in rows) == report["chunks"]


@pytest.mark.usefixtures("fake_model")
def test_cli_index_text_output_and_warnings(settings: Settings, articles_dir: Path) -> None:
    (articles_dir / "empty.txt").write_text("")
    env = {"RAG_ARTICLES_DIR": str(articles_dir), "RAG_INDEX_DIR": str(settings.index_dir)}
    result = CliRunner().invoke(app, ["index"], env=env)
    assert result.exit_code == 0, result.output
    assert "indexed: 4 added, 0 changed, 0 deleted, 0 unchanged, 1 skipped;" in result.stdout
    assert "warning: empty.txt: empty file, skipped" in result.stderr


def test_cli_index_missing_articles_folder_is_one_line(tmp_path: Path) -> None:
    env = {"RAG_ARTICLES_DIR": str(tmp_path / "nowhere"), "RAG_INDEX_DIR": str(tmp_path / "ix")}
    result = CliRunner().invoke(app, ["index"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: articles folder not found")
    assert result.stderr.count("\n") == 1


@pytest.mark.usefixtures("fake_model")
def test_cli_sources_without_articles_indexed_is_an_error_line(tmp_path: Path) -> None:
    index_dir = tmp_path / "ix"
    env = {"RAG_ARTICLES_DIR": str(tmp_path / "empty"), "RAG_INDEX_DIR": str(index_dir)}
    runner = CliRunner()
    missing = runner.invoke(app, ["sources"], env=env)
    assert missing.exit_code == 1
    assert missing.stdout == ""
    assert missing.stderr == (
        f"error: no index in {index_dir}; run `rag index` first, or `rag index FOLDER` to make a "
        "folder of articles a collection you can ask from anywhere\n"
    )

    (tmp_path / "empty").mkdir()
    assert runner.invoke(app, ["index"], env=env).exit_code == 0
    empty = runner.invoke(app, ["sources"], env=env)
    assert empty.exit_code == 1
    assert empty.stderr.startswith(f"error: the index in {index_dir} is empty; add articles")
    assert invoke_json(["sources", "--json"], env) == []  # --json: an empty list, as before


@pytest.mark.usefixtures("fake_model")
def test_cli_prints_bracketed_file_names_and_titles_verbatim(
    settings: Settings, articles_dir: Path
) -> None:
    # Rich would read "[draft]" as markup: dropped from the output, or a crash on "[/x]".
    (articles_dir / "notes [draft].txt").write_text("")
    (articles_dir / "update [AP].txt").write_text("Iran talks [/UPDATED]\n\nTalks resumed.\n")
    env = {"RAG_ARTICLES_DIR": str(articles_dir), "RAG_INDEX_DIR": str(settings.index_dir)}
    runner = CliRunner()
    dry = runner.invoke(app, ["index", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "skipped notes [draft].txt: empty file" in dry.stdout
    assert "added update [AP].txt" in dry.stdout
    done = runner.invoke(app, ["index"], env=env)
    assert done.exit_code == 0, done.output
    assert "warning: notes [draft].txt: empty file, skipped" in done.stderr
    listing = runner.invoke(app, ["sources"], env={**env, "COLUMNS": "300"})
    assert listing.exit_code == 0, listing.output
    assert "Iran talks [/UPDATED]" in listing.stdout


def test_an_unreadable_file_is_warned_about_not_re_added_until_it_changes(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    (articles_dir / "empty.txt").write_text("")
    first = run(settings, fake_embeddings)
    assert (first.added, first.skipped) == (4, 1)
    assert first.warnings == ["empty.txt: empty file, skipped"]

    again = indexing.plan(settings)
    assert (again.added, again.skipped, again.is_noop) == ([], ["empty.txt"], True)
    assert again.skip_reasons == {"empty.txt": "empty file"}
    report = run(settings, fake_embeddings)
    assert (report.added, report.skipped, report.embedded_chunks) == (0, 1, 0)
    assert report.warnings == ["empty.txt: empty file, skipped"]

    (articles_dir / "empty.txt").write_text("Now written\n\nThe article has a body at last.\n")
    fixed = run(settings, fake_embeddings)
    assert (fixed.added, fixed.skipped) == (1, 0)
    _, manifest = indexing.current_manifest(settings)
    assert manifest is not None
    assert "empty.txt" in manifest.articles and not manifest.skipped

    (articles_dir / "empty.txt").write_text("")
    emptied = run(settings, fake_embeddings)
    assert (emptied.deleted, emptied.skipped) == (1, 1)
    (articles_dir / "empty.txt").unlink()
    gone = run(settings, fake_embeddings)
    assert (gone.skipped, gone.warnings) == (0, [])
    _, manifest = indexing.current_manifest(settings)
    assert manifest is not None and not manifest.skipped
    assert_consistent(settings)


@pytest.mark.usefixtures("fake_model")
def test_dry_run_and_report_count_skipped_files_apart_with_why(
    settings: Settings, articles_dir: Path, tmp_path: Path
) -> None:
    (articles_dir / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (articles_dir / "empty.txt").write_text("")
    (articles_dir / "whitespace.txt").write_text("  \n\n\t \n" * 500)
    (articles_dir / "report.pdf").write_bytes(b"%PDF-1.4")
    outside = tmp_path / "outside.txt"
    outside.write_text("Outside\n\nThis file lives outside the articles folder.\n")
    os.symlink(outside, articles_dir / "outside-link.txt")
    link_why = f"symlink to {outside.resolve()} outside the articles folder"
    env = {"RAG_ARTICLES_DIR": str(articles_dir), "RAG_INDEX_DIR": str(settings.index_dir)}
    runner = CliRunner()

    dry = runner.invoke(app, ["index", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    lines = dry.stdout.splitlines()
    assert "  skipped binary.txt: binary file, not text" in lines
    assert "  skipped empty.txt: empty file" in lines
    assert "  skipped whitespace.txt: only whitespace, no text" in lines
    assert f"  skipped outside-link.txt: {link_why}" in lines
    assert "  skipped report.pdf: PDF is not supported yet" in lines
    bad = {"binary.txt", "empty.txt", "whitespace.txt", "outside-link.txt", "report.pdf"}
    assert not [line for line in lines if line.split()[:1] == ["added"] and line.split()[1] in bad]
    assert lines[-1] == (
        "plan: 4 added, 0 changed, 0 deleted, 0 unchanged, 5 skipped (dry run: nothing was changed)"
    )
    plan = invoke_json(["index", "--dry-run", "--json"], env)
    assert sorted(plan["added"]) == sorted([BIDEN, DRONES, G7, US])
    assert plan["skipped"] == {
        "binary.txt": "binary file, not text",
        "empty.txt": "empty file",
        "outside-link.txt": link_why,
        "report.pdf": "PDF is not supported yet",
        "whitespace.txt": "only whitespace, no text",
    }
    assert plan["warnings"] == []

    # Every file warned about and not indexed is counted as skipped: as many as the warnings.
    done = runner.invoke(app, ["index"], env=env)
    assert done.exit_code == 0, done.output
    assert "indexed: 4 added, 0 changed, 0 deleted, 0 unchanged, 5 skipped;" in done.stdout
    assert done.stderr.count("warning:") == 5
    assert f"warning: outside-link.txt: {link_why}, skipped" in done.stderr.splitlines()
    again = invoke_json(["index", "--json"], env)
    assert (again["added"], again["unchanged"], again["skipped"]) == (0, 4, 5)
    assert len(again["warnings"]) == 5


def _long_story(sentences: int) -> str:
    """A file far longer than a news article: distinct sentences, paragraph after paragraph."""
    body = "".join(
        f"Report {i} says the convoy number {i} crossed the border near checkpoint {i % 97}. "
        + ("\n\n" if i % 5 == 4 else "")
        for i in range(sentences)
    )
    return "A very long story\n\n" + body


def test_a_huge_article_is_capped_and_never_holds_the_short_ones_back(
    settings: Settings, articles_dir: Path
) -> None:
    # Named to come first: the order is by size, not by name.
    (articles_dir / "aaa-huge.txt").write_text(_long_story(20_000))
    capped = settings.with_overrides(max_article_chunks=100)
    stored_when_huge_embedded: list[set[str]] = []

    class Watching(HashingEmbeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            if any(t.startswith("A very long story") for t in texts):
                _, manifest = indexing.current_manifest(capped)
                stored_when_huge_embedded.append(set(manifest.articles) if manifest else set())
            return super().embed_documents(texts)

    embedder = Watching()
    report = run(capped, embedder)

    assert report.added == 5
    (warning,) = [w for w in report.warnings if w.startswith("aaa-huge.txt:")]
    assert "longer than a news article: only its first 100 chunks" in warning
    assert "RAG_MAX_ARTICLE_CHUNKS" in warning
    _, manifest = indexing.current_manifest(capped)
    assert manifest is not None
    assert len(manifest.articles["aaa-huge.txt"].chunks) == 100
    assert manifest.articles["aaa-huge.txt"].capped == 100
    # Only the kept chunks were embedded, and the four short articles were stored before it.
    assert sum(embedder.calls) == report.chunks + report.embedded_sentences
    assert stored_when_huge_embedded
    assert stored_when_huge_embedded[0] >= {BIDEN, DRONES, G7, US}
    assert_consistent(capped)

    # A new cap re-cuts the capped article only.
    plan = indexing.plan(capped.with_overrides(max_article_chunks=120))
    assert (plan.changed, len(plan.unchanged)) == (["aaa-huge.txt"], 4)
    assert indexing.plan(capped).is_noop


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_line_progress_prints_at_the_start_then_every_n_seconds_or_chunks() -> None:
    from rag.cli import LineProgress

    lines: list[str] = []
    clock = _Clock()
    progress = LineProgress(lines.append, clock=clock)
    progress.start(6)
    assert lines == ["indexing 6 articles"]
    progress.embedded(32)
    clock.now += 3
    progress.advance(2)
    assert len(lines) == 1  # neither 10 s nor 1,000 chunks yet
    clock.now += 8
    progress.embedded(32)
    assert lines[-1] == "indexing: 2/6 articles stored, 64 chunks embedded, 11s"
    progress.embedded(LineProgress.EVERY_CHUNKS)
    assert lines[-1] == "indexing: 2/6 articles stored, 1,064 chunks embedded, 11s"
    assert len(lines) == 3


@pytest.mark.usefixtures("fake_model")
def test_piped_index_output_is_unwrapped_with_progress_lines_on_stderr(
    settings: Settings, articles_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.cli import LineProgress

    monkeypatch.setattr(LineProgress, "EVERY_CHUNKS", 1)
    long_name = "an-article-whose-file-name-alone-is-longer-than-a-narrow-terminal-is-wide.txt"
    shutil.copy(articles_dir / G7, articles_dir / long_name)
    env = {"RAG_ARTICLES_DIR": str(articles_dir), "RAG_INDEX_DIR": str(settings.index_dir)}
    runner = CliRunner()  # stdout and stderr are not terminals, as in a pipe or a log file

    result = runner.invoke(app, ["index"], env=env)
    assert result.exit_code == 0, result.output
    (report,) = [line for line in result.stdout.splitlines() if line.startswith("indexed:")]
    assert len(report) > 80 and report.endswith("s") and "reused" in report
    warning = f"warning: {G7}: same content as {long_name}, indexed once under that name"
    assert warning in result.stderr.splitlines()
    progress = [line for line in result.stderr.splitlines() if line.startswith("indexing")]
    assert progress[0] == "indexing 4 articles"
    embedded = re.search(r"(\d+) embedded", report).group(1)
    assert len(progress) >= 2 and re.search(f", {embedded} chunks embedded, \\d+s$", progress[-1])

    listing = runner.invoke(app, ["sources"], env=env)
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.stdout.splitlines() if BIDEN in line)
    assert "Biden Administration to Impose New Sanctions on Iran" in row


@pytest.mark.usefixtures("fake_model")
def test_sources_on_an_80_column_terminal_keeps_file_names_whole_and_titles_on_one_line(
    settings: Settings, articles_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    env = {"RAG_ARTICLES_DIR": str(articles_dir), "RAG_INDEX_DIR": str(settings.index_dir)}
    invoke_json(["index", "--json"], env)
    rows = {r["file"]: r for r in invoke_json(["sources", "--json"], env)}
    monkeypatch.setattr("rag.cli.out", Console(width=80, force_terminal=True, color_system=None))
    listing = CliRunner().invoke(app, ["sources"], env=env)
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    # Three lines an article: the file name whole, the title, then date, source and chunks.
    assert lines[::3] == sorted(rows) == [BIDEN, G7, US, DRONES]
    title = rows[BIDEN]["title"]
    assert len(title) > 80 and lines[1].endswith("…")
    assert title.startswith(lines[1].removeprefix("  ").removesuffix("…").rstrip())
    assert lines[2] == f"  2024-02-23 · {rows[BIDEN]['chunks']} chunks"
    assert lines[10:] == [f"  {rows[DRONES]['title']}", f"  {rows[DRONES]['chunks']} chunks"]


@pytest.mark.usefixtures("fake_model")
def test_piped_sources_are_a_header_and_a_tab_separated_line_an_article(
    settings: Settings, articles_dir: Path
) -> None:
    env = {"RAG_ARTICLES_DIR": str(articles_dir), "RAG_INDEX_DIR": str(settings.index_dir)}
    invoke_json(["index", "--json"], env)
    listing = CliRunner().invoke(app, ["sources"], env=env)  # not a terminal, as in a pipe
    assert listing.exit_code == 0, listing.output
    header, *lines = listing.stdout.splitlines()
    assert header == "file\ttitle\tdate\tsource\tchunks"
    fields = ("file", "title", "date", "source", "chunks")
    expected = [
        [str(r[k]) if r[k] is not None else "" for k in fields]
        for r in invoke_json(["sources", "--json"], env)
    ]
    assert [line.split("\t") for line in lines] == expected
    assert expected[0][:3] == [BIDEN, expected[0][1], "2024-02-23"] and len(expected) == 4


@pytest.mark.parametrize(
    "command", ["index", "sources", "add", "ask", "eval", "compare", "chat", "--help"]
)
def test_help_shows_no_bool_type_for_flags(command: str) -> None:
    args = [command, "--help"] if command != "--help" else ["--help"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.stdout
    assert "<bool>" not in result.stdout


def test_sources_json_help_says_what_it_prints() -> None:
    result = CliRunner().invoke(app, ["sources", "--help"], env={"COLUMNS": "200"})
    assert "Print a JSON array, one object per article" in result.stdout
    assert "one JSON object" not in result.stdout


def test_articles_added_since_the_last_index_are_reported_until_it_runs(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    run(settings, fake_embeddings)
    assert indexing.staleness(settings).note is None
    for name in ("a.txt", "b.txt", "c.txt"):
        (articles_dir / name).write_text(NEW_ARTICLE.replace("Gulf", f"Gulf ({name})"))
    assert indexing.staleness(settings).note == (
        "3 articles added or changed since the last `rag index`; run it"
    )
    run(settings, fake_embeddings)
    assert indexing.staleness(settings).note is None


def test_an_edited_or_deleted_article_is_reported_and_a_touched_one_is_not(
    settings: Settings, articles_dir: Path, fake_embeddings: HashingEmbeddings
) -> None:
    run(settings, fake_embeddings)
    first, second = sorted(articles_dir.iterdir())[:2]
    later = first.stat().st_mtime_ns + 10**9
    os.utime(first, ns=(later, later))  # same bytes, new time: a copy or a `touch`
    assert indexing.staleness(settings).note is None
    second.write_text(second.read_text().replace("Iran", "Iram", 1))
    assert indexing.staleness(settings).changed == [second.name]
    second.unlink()
    stale = indexing.staleness(settings)
    assert stale.deleted == [second.name]
    assert stale.note == "1 article deleted since the last `rag index`; run it"


class DyingEmbeddings(HashingEmbeddings):
    """HashingEmbeddings that stops the process (as `kill -9` would) at its nth batch."""

    def __init__(self, dies_at: int) -> None:
        super().__init__()
        self.dies_at = dies_at
        self.batches = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed, or raise SystemExit at the nth batch (nothing after it runs)."""
        self.batches += 1
        if self.batches == self.dies_at:
            raise SystemExit(137)
        return super().embed_documents(texts)


def test_an_interrupted_index_says_so_until_a_run_completes_it(
    settings: Settings, fake_embeddings: HashingEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexing, "GROUP_CHUNKS", 1)  # one article a group, stored one by one
    with pytest.raises(SystemExit):
        run(settings, DyingEmbeddings(dies_at=3))  # type: ignore[arg-type]
    stale = indexing.staleness(settings)
    assert stale.interrupted == (2, 4)
    assert stale.note == (
        "the last `rag index` was interrupted: 2 of the 4 articles it was indexing are in the "
        "index; run it again to finish"
    )
    run(settings, fake_embeddings)
    assert indexing.staleness(settings).note is None


def test_the_staleness_check_of_1000_files_hashes_none_and_takes_milliseconds(
    settings: Settings, articles_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag import articles as articles_mod
    from rag.store import MANIFEST, ArticleEntry, Manifest

    shutil.rmtree(articles_dir)
    articles_dir.mkdir()
    for i in range(1000):
        (articles_dir / f"article-{i:04d}.txt").write_text(f"Story {i}\n\nIt happened {i}.\n")
    gen = Generations(settings.index_dir).create()
    Generations(settings.index_dir).promote(gen)
    files, _ = articles_mod.scan(articles_dir)
    manifest = Manifest(
        {},
        articles={f.rel: ArticleEntry(f.content_hash, f.rel, [f"{f.rel}#0"]) for f in files},
        files={f.rel: [f.size, f.mtime_ns] for f in files},
    )
    manifest.save(gen / MANIFEST)

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path} was hashed")

    monkeypatch.setattr(articles_mod, "file_hash", no_hashing)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        stale = indexing.staleness(settings)
        best = min(best, time.perf_counter() - started)
    assert stale.note is None
    # 11-18 ms here (two shared cores, manifest read included); the bound leaves room for a
    # busy machine.
    assert best < 0.05
