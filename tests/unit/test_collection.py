"""Folders as collections: `rag index FOLDER` from anywhere, then `rag ask` from anywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rag.cli import app
from tests.conftest import REPO, SHIPPED_ARTICLES
from tests.corpus import NEW_ARTICLE
from tests.fakes import HashingEmbeddings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user outside any checkout: HOME in tmp_path, no RAG_* paths, fake embeddings."""
    for key in ("RAG_ARTICLES_DIR", "RAG_INDEX_DIR", "RAG_DATA_DIR", "XDG_DATA_HOME"):
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    (home / "somewhere").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home / "somewhere")
    monkeypatch.setattr("rag.embedding.query_embedder", lambda settings: HashingEmbeddings())
    monkeypatch.setattr("rag.indexing.index_embedder", lambda settings: HashingEmbeddings())
    return home


def rag(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"RAG_REFUSAL_THRESHOLD": "0"})


def sources(*args: str) -> set[str]:
    result = rag("sources", "--json", *args)
    assert result.exit_code == 0, result.output
    return {row["file"] for row in json.loads(result.stdout)}


def test_two_folders_are_two_collections_used_from_anywhere(home: Path) -> None:
    shipped = home / "news" / "iran"
    shutil.copytree(SHIPPED_ARTICLES, shipped)
    other = home / "other"
    other.mkdir()
    (other / "carrier.txt").write_text(NEW_ARTICLE)

    first = rag("index", str(shipped))
    assert first.exit_code == 0, first.output
    assert "collection iran:" in first.stderr and "4 added" in first.stdout
    second = rag("index", str(other))
    assert second.exit_code == 0, second.output
    # The second folder's index is its own: the first keeps its four articles.
    assert second.stdout.count("0 deleted") == 1
    assert sources("--collection", "iran") == {p.name for p in SHIPPED_ARTICLES.iterdir()}
    assert sources() == {"carrier.txt"}  # the last indexed is current

    # Kept in the user's data directory, named, remembering the folder.
    listed = json.loads(rag("collections", "--json").stdout)
    assert [(c["name"], c["folder"], c["articles"]) for c in listed] == [
        ("iran", str(shipped), 4),
        ("other", str(other), 1),
    ]
    assert len(list(home.rglob("collection.json"))) == 2  # under HOME: the user data dir

    used = rag("use", "iran")
    assert used.exit_code == 0 and "current collection: iran" in used.stdout
    answer = json.loads(rag("ask", "Where is the drone factory being built?", "--json").stdout)
    assert answer["retrieved"] and all(p["source"] != "carrier.txt" for p in answer["retrieved"])

    removed = rag("collections", "--remove", "other")
    assert removed.exit_code == 0 and (other / "carrier.txt").is_file()
    assert [c["name"] for c in json.loads(rag("collections", "--json").stdout)] == ["iran"]


def test_a_name_another_folder_has_is_an_error(home: Path) -> None:
    for name in ("a", "b"):
        (home / name / "news").mkdir(parents=True)
        (home / name / "news" / "carrier.txt").write_text(NEW_ARTICLE)
    assert rag("index", str(home / "a" / "news")).exit_code == 0
    clash = rag("index", str(home / "b" / "news"))
    assert clash.exit_code == 1 and "is the folder" in clash.stderr and "--name" in clash.stderr
    assert rag("index", str(home / "b" / "news"), "--name", "b-news").exit_code == 0
    missing = rag("ask", "anything?", "--collection", "nope")
    assert missing.exit_code == 1 and "no collection named 'nope'" in missing.stderr


def test_in_a_checkout_the_project_articles_stay_the_default(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    news = home / "news"
    news.mkdir()
    (news / "carrier.txt").write_text(NEW_ARTICLE)
    assert rag("index", str(news)).exit_code == 0
    checkout = home / "checkout"
    shutil.copytree(SHIPPED_ARTICLES, checkout / "articles")
    monkeypatch.chdir(checkout)
    assert rag("index").exit_code == 0
    assert (checkout / "index").is_dir()  # ./index, not the current collection's
    assert sources() == {p.name for p in SHIPPED_ARTICLES.iterdir()}


def test_an_earlier_index_of_the_folder_is_copied_not_embedded_again(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = home / "work"
    shutil.copytree(SHIPPED_ARTICLES, work / "articles")
    made = rag("index", "--articles", str(work / "articles"), "--index", str(work / "index"))
    assert made.exit_code == 0, made.output
    counting = HashingEmbeddings()
    monkeypatch.setattr("rag.indexing.index_embedder", lambda settings: counting)

    planned = rag("index", str(work / "articles"), "--dry-run")
    assert planned.exit_code == 0 and "would start from the index in" in planned.stderr
    adopted = rag("index", str(work / "articles"))
    assert adopted.exit_code == 0, adopted.output
    assert "started from the index in" in adopted.stderr and "0 added" in adopted.stdout
    assert counting.calls == []  # nothing embedded
    assert (work / "index").is_dir()  # the original stays
    assert sources() == {p.name for p in SHIPPED_ARTICLES.iterdir()}

    # An index made from another folder is not taken, and naming it says why.
    other = home / "other"
    other.mkdir()
    (other / "carrier.txt").write_text(NEW_ARTICLE)
    refused = rag("index", str(other), "--from-index", str(work / "index"))
    assert refused.exit_code == 1 and "was made from" in refused.stderr
    assert [c["name"] for c in json.loads(rag("collections", "--json").stdout)] == ["articles"]


def test_eval_asks_a_set_over_a_collection_with_its_own_index(home: Path) -> None:
    iran = home / "news" / "iran"
    shutil.copytree(SHIPPED_ARTICLES, iran)
    assert rag("index", str(iran)).exit_code == 0
    questions = home / "mine.jsonl"
    shipped_set = REPO / "eval" / "qa.jsonl"
    questions.write_text("".join(shipped_set.read_text().splitlines(keepends=True)[:2]))

    result = rag("eval", "--collection", "iran", "--set", str(questions), "--out", "out", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n"] == 2 and summary["fingerprint"]["n_articles"] == 4
    assert not list(home.rglob(".rag-eval"))  # the collection's own index, no eval copy

    unnamed = rag("eval", "--collection", "iran")
    assert unnamed.exit_code == 1 and "--set FILE" in unnamed.stderr
