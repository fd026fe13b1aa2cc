"""Server mode: RAG_CHROMA_URL points the store at a real `chroma run` on 127.0.0.1."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag import embedding, indexing
from rag.cli import app
from rag.embedding import SentenceTransformerEmbeddings, resolve_model_dir
from rag.pipeline import Pipeline
from rag.settings import DEFAULT_MODEL, Settings
from rag.store import SERVER_MARKER, ChunkStore, Generations, StoreError, collection_name
from tests.conftest import SHIPPED_ARTICLES
from tests.corpus import DRONES, G7, NEW_ARTICLE
from tests.fakes import HashingEmbeddings
from tests.integration.servers import free_port, running

pytestmark = pytest.mark.integration


@contextmanager
def chroma_server(data: Path) -> Iterator[str]:
    """A real Chroma server (the `chroma` CLI chromadb installs) on a free port, until exit."""
    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.is_file():
        pytest.skip("the chroma CLI is not installed next to this interpreter")
    data.mkdir(parents=True, exist_ok=True)
    port = str(free_port())
    url = f"http://127.0.0.1:{port}"
    command = [
        str(chroma),
        "run",
        "--path",
        str(data / "db"),
        "--host",
        "127.0.0.1",
        "--port",
        port,
    ]
    with running(command, f"{url}/api/v2/heartbeat", data / "server.log"):
        yield url


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server, up until the module ends."""
    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


@pytest.fixture(scope="module")
def model() -> SentenceTransformerEmbeddings:
    """The real embedding model, loaded once for the module."""
    return SentenceTransformerEmbeddings(resolve_model_dir(DEFAULT_MODEL))


def _server_collections(url: str) -> dict[str, int]:
    import chromadb

    port = int(url.rsplit(":", 1)[1])
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    return {c.name: c.count() for c in client.list_collections()}


def _index(settings: Settings, model: SentenceTransformerEmbeddings, **kw: bool):  # noqa: ANN202
    return indexing.apply(settings, indexing.plan(settings, **kw), embedder=model)


def test_index_update_ask_and_rebuild_through_a_chroma_server(
    chroma_url: str, model: SentenceTransformerEmbeddings, tmp_path: Path
) -> None:
    articles = tmp_path / "articles"
    shutil.copytree(SHIPPED_ARTICLES, articles)
    settings = Settings(articles_dir=articles, chroma_url=chroma_url, llm="extractive")

    first = _index(settings, model)
    assert first.added == 4
    gen = Generations(settings.index_dir).current()
    assert gen is not None
    # The vectors are on the server, not in a local Chroma folder.
    assert not (gen / "chroma").exists()
    assert (gen / SERVER_MARKER).is_file()
    assert _server_collections(chroma_url)[collection_name(gen)] == first.chunks

    answer = Pipeline(settings).ask("Where is the drone factory being built?")
    assert not answer.refused
    assert "Alabuga" in answer.text
    assert answer.citations[0].source == DRONES

    # Incremental: one article added, one deleted; only the new one is embedded.
    (articles / "iran-drone-carrier.txt").write_text(NEW_ARTICLE)
    g7_chunks = len(indexing.current_manifest(settings)[1].articles[G7].chunks)
    (articles / G7).unlink()
    update = _index(settings, model)
    assert (update.added, update.deleted, update.unchanged) == (1, 1, 3)
    assert update.embedded_chunks == update.chunks - (first.chunks - g7_chunks)
    assert Generations(settings.index_dir).current() == gen
    assert _server_collections(chroma_url)[collection_name(gen)] == update.chunks

    answer = Pipeline(settings).ask("What does Iran's new drone carrier ship carry?")
    assert not answer.refused
    assert answer.passages[0].source == "iran-drone-carrier.txt"
    assert answer.citations[0].source == "iran-drone-carrier.txt"
    assert G7 not in {p.source for p in answer.passages}

    # A rebuild builds a new collection aside and drops the old one on the server.
    rebuilt = _index(settings, model, rebuild=True)
    new_gen = Generations(settings.index_dir).current()
    assert new_gen is not None and new_gen != gen
    assert not gen.exists()
    collections = _server_collections(chroma_url)
    assert collection_name(gen) not in collections
    assert collections[collection_name(new_gen)] == rebuilt.chunks


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    settings = Settings(chroma_url=f"http://127.0.0.1:{free_port()}")
    gen = Generations(settings.index_dir).create()
    with pytest.raises(StoreError, match="cannot reach the Chroma server at http://127.0.0.1:"):
        ChunkStore(settings, gen).count()


def test_pruning_keeps_a_generation_whose_server_is_down(tmp_path: Path) -> None:
    """Its collection may still be on the server: the next prune, with the server up, drops it."""
    settings = Settings(chroma_url=f"http://127.0.0.1:{free_port()}")
    generations = Generations(settings.index_dir)
    old, new = generations.create(), generations.create()
    (old / SERVER_MARKER).write_text(
        f'{{"url": "{settings.chroma_url}", "collection": "{collection_name(old)}"}}'
    )
    generations.prune(keep=new)
    assert old.exists()


def _stored(settings: Settings) -> int:
    """Chunks the live generation's collection holds in the store settings point at."""
    gen = Generations(settings.index_dir).current()
    assert gen is not None
    return ChunkStore(settings, gen).count()


def test_switching_to_a_server_and_back_fills_each_store(chroma_url: str, tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    shutil.copytree(SHIPPED_ARTICLES, articles)
    local = Settings(articles_dir=articles)
    served = local.with_overrides(chroma_url=chroma_url + "/")
    fake = HashingEmbeddings()

    first = indexing.apply(local, indexing.plan(local), embedder=fake)
    assert first.added == 4

    # RAG_CHROMA_URL turned on: the server holds nothing yet, so the next index fills it.
    plan = indexing.plan(served)
    assert not plan.is_noop and plan.rebuild_reason is not None
    assert "local store" in plan.rebuild_reason and chroma_url in plan.rebuild_reason
    assert indexing.current_manifest(local)[1].store["kind"] == "local"
    with pytest.raises(StoreError, match="run `rag index` to fill it"):
        indexing.checked_manifest(served)
    with pytest.raises(StoreError, match="keeps its vectors in the local store"):
        _stored(served)  # what `rag ask` reads: refused, not "the index is empty"
    on_server = indexing.apply(served, plan, embedder=fake)
    assert on_server.rebuilt and on_server.embedded_chunks == on_server.chunks == first.chunks
    manifest = indexing.current_manifest(served)[1]
    assert manifest.store == {
        "kind": "server",
        "url": chroma_url,
        "collection": collection_name(Generations(served.index_dir).current()),
    }
    assert _stored(served) == first.chunks
    assert indexing.plan(served).is_noop
    assert len(indexing.checked_manifest(served).articles) == 4

    # And off again: back to a local store, filled anew.
    plan = indexing.plan(local)
    assert chroma_url in plan.rebuild_reason and "local store" in plan.rebuild_reason
    back = indexing.apply(local, plan, embedder=fake)
    assert back.rebuilt and back.embedded_chunks == back.chunks == first.chunks
    assert _stored(local) == first.chunks
    assert indexing.plan(local).is_noop
    # The server's copy went with the generation it belonged to.
    assert collection_name(Generations(served.index_dir).current()) not in _server_collections(
        chroma_url
    )


def test_a_server_that_lost_the_collection_is_filled_again(chroma_url: str, tmp_path: Path) -> None:
    import chromadb

    articles = tmp_path / "articles"
    shutil.copytree(SHIPPED_ARTICLES, articles)
    settings = Settings(articles_dir=articles, chroma_url=chroma_url)
    fake = HashingEmbeddings()
    first = indexing.apply(settings, indexing.plan(settings), embedder=fake)
    gen = Generations(settings.index_dir).current()
    port = int(chroma_url.rsplit(":", 1)[1])
    chromadb.HttpClient(host="127.0.0.1", port=port).delete_collection(collection_name(gen))

    plan = indexing.plan(settings)
    assert plan.rebuild_reason == (
        f"the Chroma server at {chroma_url} holds 0 of the {first.chunks} chunks the manifest "
        "records"
    )
    indexing.apply(settings, plan, embedder=fake)
    assert _stored(settings) == first.chunks


def test_every_command_fails_in_one_line_when_the_server_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = HashingEmbeddings()
    monkeypatch.setattr(indexing, "index_embedder", lambda settings: fake)
    monkeypatch.setattr(embedding, "query_embedder", lambda settings: fake)
    articles = tmp_path / "articles"
    shutil.copytree(SHIPPED_ARTICLES, articles)
    env = {"RAG_ARTICLES_DIR": str(articles), "RAG_INDEX_DIR": str(tmp_path / "index")}
    runner = CliRunner()
    with chroma_server(tmp_path / "server") as url:
        env["RAG_CHROMA_URL"] = url
        assert runner.invoke(app, ["index"], env=env).exit_code == 0
        assert runner.invoke(app, ["sources"], env=env).exit_code == 0

    for args in (["index"], ["index", "--dry-run"], ["sources"], ["ask", "Who sent drones?"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 1, (args, result.output)
        assert result.stdout == "", args
        assert result.stderr.startswith(f"error: cannot reach the Chroma server at {url}"), args
        assert result.stderr.count("\n") == 1, (args, result.stderr)
