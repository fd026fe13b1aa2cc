"""`rag add` against a real HTTP server on 127.0.0.1, and local files into a live index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag import indexing
from rag.articles import load, scan
from rag.cli import app
from rag.settings import Settings
from tests.fakes import HashingEmbeddings

pytestmark = pytest.mark.integration

NEWS_PAGE = """<!doctype html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Iran is helping Russia build a drone factory, White House says | Example News</title>
<meta property="og:site_name" content="Example News">
<meta property="og:title" content="Iran is helping Russia build a drone factory, White House says">
<meta property="article:published_time" content="2023-06-09T14:30:00Z">
<meta name="author" content="Jane Roe">
</head><body>
<header><nav><ul>
<li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/login">NAVMENU Sign in to your account</a></li>
</ul></nav></header>
<div class="ad-slot advertisement" id="ad-top">ADVERT Buy cheap flights to Tehran today</div>
<main><article>
<h1>Iran is helping Russia build a drone factory, White House says</h1>
<p class="byline">By Jane Roe</p>
<p>Iran is helping Russia build a drone manufacturing plant east of Moscow that could be
fully operational early next year, the White House said on Friday.</p>
<p>National Security Council spokesman John Kirby said the drones were shipped across the
Caspian Sea, from Amirabad in Iran to Makhachkala in Russia, and then used by Russian forces
against Ukraine.</p>
<p>The United States released satellite imagery of the planned site in the Alabuga special
economic zone and said it would impose further sanctions on those involved.</p>
</article></main>
<aside class="sidebar">SIDEBAR Most read: ten recipes for summer</aside>
<section id="comments" class="comments">
<h2>Comments</h2>
<div class="comment"><p>COMMENTER says: first! this is all propaganda</p></div>
</section>
<footer>FOOTER Copyright 2023 Example News. All rights reserved.</footer>
</body></html>
"""

LEGACY_PAGE = NEWS_PAGE.replace('<meta charset="utf-8">', '<meta charset="windows-1252">').replace(
    "the White House said on Friday.",
    "the White House said on Friday \u2014 \u201ca dangerous step,\u201d Kirby added.",
)

# What python -m http.server serves for a folder.
LISTING_PAGE = """<!DOCTYPE HTML>
<html lang="en"><head><meta charset="utf-8"><title>Directory listing for /files/</title></head>
<body><h1>Directory listing for /files/</h1><hr><ul>
<li><a href="drones.html">drones.html</a></li>
<li><a href="sanctions-announced-on-friday.html">sanctions-announced-on-friday.html</a></li>
<li><a href="notes.txt">notes.txt</a></li>
</ul><hr></body></html>
"""

# A news site's front page: headlines linking to articles, a line of teaser under each.
FRONT_PAGE = (
    "<html><head><title>Example News - Home</title></head><body><h1>Example News</h1>"
    + "".join(
        f'<div><h2><a href="/news/{i}.html">Iran and Russia: headline number {i} of the day</a>'
        f"</h2><p>Teaser {i}.</p></div>"
        for i in range(20)
    )
    + "</body></html>"
)

# Boilerplate that must not end up in the saved article.
NOISE = ["NAVMENU", "ADVERT", "SIDEBAR", "COMMENTER", "FOOTER"]


@dataclass
class Server:
    """A real HTTP server on 127.0.0.1 in a thread; base is its http://127.0.0.1:PORT."""

    base: str
    requests: list[str]


@pytest.fixture
def news_server() -> Iterator[Server]:
    """Serves /news/drones.html, /big.html (200 KB), /legacy.html (cp1252), else 404."""
    requests: list[str] = []
    utf8 = "text/html; charset=utf-8"
    pages = {
        "/news/drones.html": (utf8, NEWS_PAGE.encode()),
        "/big.html": (
            utf8,
            NEWS_PAGE.replace("</main>", "<p>padding</p>" * 15_000 + "</main>").encode(),
        ),
        # An older site: the charset only in <meta>, not in the Content-Type header.
        "/legacy.html": ("text/html", LEGACY_PAGE.encode("cp1252")),
        "/files/": (utf8, LISTING_PAGE.encode()),
        "/": (utf8, FRONT_PAGE.encode()),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            requests.append(self.path)
            if self.path not in pages:
                self.send_error(404, "Not Found")
                return
            content_type, body = pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{server.server_address[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def rag(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real `python -m rag` with the test's folders (and any extra RAG_* settings)."""
    full_env = {
        **os.environ,
        "RAG_ARTICLES_DIR": str(tmp_path / "articles"),
        "RAG_INDEX_DIR": str(tmp_path / "index"),
        "RAG_CONFIG": str(tmp_path / "rag.toml"),
        "COLUMNS": "80",  # what a narrow terminal or a pipe gets: errors must still be one line
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_add_url_saves_the_article_text_with_a_header(news_server: Server, tmp_path: Path) -> None:
    url = f"{news_server.base}/news/drones.html"
    result = rag(["add", url, "--no-index", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["index"] is None
    (added,) = report["added"]
    assert added["origin"] == url
    saved = tmp_path / "articles" / added["file"]
    assert saved.suffix == ".txt"
    assert files_in(tmp_path / "articles") == [saved.name]

    text = saved.read_text(encoding="utf-8")
    header, _, body = text.partition("\n\n")
    lines = header.splitlines()
    assert lines[0] == "Iran is helping Russia build a drone factory, White House says"
    assert "Source: Example News" in lines
    assert "Published: 2023-06-09" in lines
    assert f"URL: {url}" in lines
    assert "Makhachkala" in body and "Alabuga special economic zone" in body
    for noise in NOISE:
        assert noise not in text, f"{noise} leaked into the saved article"

    # What was saved reads back through the loader with the same metadata.
    files, _ = scan(tmp_path / "articles")
    article = load(files[0])
    assert article.title == lines[0]
    assert (article.source, article.date, article.url) == ("Example News", "2023-06-09", url)
    assert article.text.lstrip().startswith("Iran is helping Russia build a drone")


def test_add_url_decodes_a_page_whose_charset_is_only_in_meta(
    news_server: Server, tmp_path: Path
) -> None:
    result = rag(["add", f"{news_server.base}/legacy.html", "--no-index", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    (added,) = json.loads(result.stdout)["added"]
    text = (tmp_path / "articles" / added["file"]).read_text(encoding="utf-8")
    assert "Friday \u2014 \u201ca dangerous step,\u201d Kirby added." in text
    assert "\ufffd" not in text


def test_add_url_404_fails_in_one_line_and_writes_nothing(
    news_server: Server, tmp_path: Path
) -> None:
    url = f"{news_server.base}/news/a-story-that-was-taken-down-and-no-longer-exists.html"
    result = rag(["add", url], tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: download of ")
    assert "HTTP 404" in result.stderr
    assert url in result.stderr
    assert files_in(tmp_path / "articles") == []
    assert not (tmp_path / "index").exists()


def test_add_oversized_page_fails_in_one_line_and_writes_nothing(
    news_server: Server, tmp_path: Path
) -> None:
    url = f"{news_server.base}/big.html"
    result = rag(["add", url], tmp_path, RAG_DOWNLOAD_MAX_BYTES="50000")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "larger than 50,000 bytes" in result.stderr
    assert files_in(tmp_path / "articles") == []


def test_each_url_succeeds_or_fails_on_its_own(news_server: Server, tmp_path: Path) -> None:
    good = f"{news_server.base}/news/drones.html"
    missing = f"{news_server.base}/missing.html"
    listing = f"{news_server.base}/files/"
    front = f"{news_server.base}/"
    result = rag(["add", missing, good, listing, front, "--no-index"], tmp_path)

    assert result.returncode == 1
    assert news_server.requests == ["/missing.html", "/news/drones.html", "/files/", "/"]
    saved = files_in(tmp_path / "articles")
    assert len(saved) == 1 and saved[0].endswith(".txt")
    stdout = result.stdout.splitlines()
    assert stdout == [f"added {saved[0]}  ({good})", "add: 1 added, 0 already there, 3 failed"]
    errors = result.stderr.splitlines()
    assert errors == [
        f"error: download of {missing} failed: HTTP 404",
        f"error: {listing} is not saved: it is a directory listing, not an article",
        f"error: {front} is not saved: it is a page of links (81% of its text), such as a "
        "front or section page, not an article; add the article's own URL",
    ]

    # Again: the article is there already, and says so; the failures fail again.
    again = rag(["add", good, missing, "--no-index"], tmp_path)
    assert again.returncode == 1
    assert f"present {good}: already in the articles folder as {saved[0]}" in again.stdout
    assert "add: 0 added, 1 already there, 1 failed" in again.stdout
    assert files_in(tmp_path / "articles") == saved


def test_unreachable_server_fails_in_one_line(tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    result = rag(["add", f"http://127.0.0.1:{port}/story.html"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "ConnectError" in result.stderr
    assert files_in(tmp_path / "articles") == []


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch, fake_embeddings: HashingEmbeddings) -> None:
    """`rag add` indexes with the fake embeddings (the real model is covered elsewhere)."""
    monkeypatch.setattr(indexing, "index_embedder", lambda settings: fake_embeddings)


NEW_ARTICLE = """Iran unveils a drone carrier in the Gulf

Published: 2024-03-01

Iran's navy unveiled a converted container ship on Friday that it says can launch drones.

The vessel, renamed the Shahid Bagheri, carries a runway and hangars, state television said.
"""


@pytest.mark.usefixtures("fake_model")
def test_add_file_copies_and_indexes_only_the_new_article(
    fake_index: Settings, fake_embeddings: HashingEmbeddings, tmp_path: Path
) -> None:
    before = indexing.current_manifest(fake_index)[1]
    assert before is not None and len(before.articles) == 4
    chunks_before = sum(len(e.chunks) for e in before.articles.values())
    embedded_before = sum(fake_embeddings.calls)
    source = tmp_path / "downloads" / "drone-carrier.txt"
    source.parent.mkdir()
    source.write_text(NEW_ARTICLE)
    env = {
        "RAG_ARTICLES_DIR": str(fake_index.articles_dir),
        "RAG_INDEX_DIR": str(fake_index.index_dir),
    }

    result = CliRunner().invoke(app, ["add", str(source), "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == [{"file": "drone-carrier.txt", "origin": str(source)}]
    assert (fake_index.articles_dir / "drone-carrier.txt").read_text() == NEW_ARTICLE
    assert source.exists()
    index = report["index"]
    assert (index["added"], index["changed"], index["deleted"], index["unchanged"]) == (1, 0, 0, 4)
    after = indexing.current_manifest(fake_index)[1]
    assert after is not None
    new_chunks = len(after.articles["drone-carrier.txt"].chunks)
    assert index["embedded_chunks"] == new_chunks
    # The new article's chunks, then only its sentences (rag/sentences.py).
    embedded = sum(fake_embeddings.calls) - embedded_before
    assert embedded == new_chunks + index["embedded_sentences"]
    assert index["embedded_sentences"] > 0
    assert index["chunks"] == chunks_before + new_chunks

    # Adding the same file again (under any name) changes nothing.
    again = CliRunner().invoke(app, ["add", str(source), "--json"], env=env)
    assert again.exit_code == 0, again.output
    repeat = json.loads(again.stdout)
    assert repeat["added"] == []
    assert repeat["present"] == [{"file": "drone-carrier.txt", "origin": str(source)}]
    assert repeat["index"]["embedded_chunks"] == 0


@pytest.mark.usefixtures("fake_model")
def test_a_missing_file_among_good_ones_fails_alone_and_the_rest_are_indexed(
    fake_index: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "downloads" / "drone-carrier.txt"
    source.parent.mkdir()
    source.write_text(NEW_ARTICLE)
    missing = tmp_path / "downloads" / "gone.txt"
    env = {
        "RAG_ARTICLES_DIR": str(fake_index.articles_dir),
        "RAG_INDEX_DIR": str(fake_index.index_dir),
    }

    result = CliRunner().invoke(app, ["add", str(missing), str(source), "--json"], env=env)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["added"] == [{"file": "drone-carrier.txt", "origin": str(source)}]
    assert report["failed"] == [
        {"origin": str(missing), "error": f"{missing}: no such file or folder"}
    ]
    assert report["index"]["added"] == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {missing}: no such file or folder"]
    _, manifest = indexing.current_manifest(fake_index)
    assert manifest is not None and "drone-carrier.txt" in manifest.articles


def test_add_missing_file_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["add", str(tmp_path / "nope.txt")], env={"RAG_ARTICLES_DIR": str(tmp_path / "a")}
    )
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'nope.txt'}: no such file or folder\n"
    assert not (tmp_path / "a").exists()
