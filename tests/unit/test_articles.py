"""Unit tests for rag.articles: what a user's files turn into (title, byline, date, body)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.articles import Article, ArticleError, iter_loaded, load, scan
from rag.settings import Settings
from tests.corpus import BIDEN, DRONES, G7

BODY = (
    "Iran is helping Russia build a drone factory east of Moscow, officials said on Friday.\n\n"
    "The plant could be fully operational early next year, according to the White House.\n"
)

NEWS_HTML = """<!doctype html>
<html><head>
<title>Iran helps Russia build drone plant | Example News</title>
<meta property="og:site_name" content="Example News">
<meta property="article:published_time" content="2023-06-09T10:00:00Z">
</head><body>
<nav><a href="/">Home</a> <a href="/world">World</a> NAVIGATION-MENU</nav>
<article>
<h1>Iran helps Russia build drone plant</h1>
<p>Iran is helping Russia build a drone factory east of Moscow, officials said on Friday,
in a deal that could see production begin early next year.</p>
<p>The plant in the Alabuga special economic zone could be fully operational next year,
according to the White House, which released satellite imagery of the site.</p>
</article>
<footer>FOOTER-COPYRIGHT all rights reserved</footer>
</body></html>
"""


def write(folder: Path, name: str, data: str | bytes) -> Path:
    """Write one file into folder (bytes as is, str as UTF-8)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def load_named(folder: Path, name: str, max_bytes: int = 5_000_000) -> Article:
    """Scan folder and load the file called name, as indexing does."""
    files, _ = scan(folder)
    (file,) = [f for f in files if f.rel == name]
    return load(file, max_bytes)


def test_shipped_biden_article_has_title_byline_and_date(articles_dir: Path) -> None:
    article = load_named(articles_dir, BIDEN)
    assert article.title.startswith("Biden Administration to Impose New Sanctions on Iran")
    assert article.byline == "Jace Dela Cruz"
    assert article.date == "2024-02-23"
    # The title is not part of the body; the byline and date lines are, so they can be cited.
    assert not article.text.lstrip().startswith("Biden Administration")
    assert article.text.lstrip().startswith("By Jace Dela Cruz")
    assert "Feb 23, 2024 04:44 AM EST" in article.text
    assert "The Biden administration is reportedly preparing" in article.text
    assert article.warnings == ()


def test_every_shipped_article_loads_with_its_first_line_as_title(articles_dir: Path) -> None:
    files, skipped = scan(articles_dir)
    assert skipped == {}
    assert len(files) == 4
    for file, article, problems in iter_loaded(files, 5_000_000):
        first_line = file.path.read_text(encoding="utf-8").splitlines()[0].strip()
        assert article is not None, problems
        assert problems == []
        assert article.title == first_line
        assert len(article.text) > 1000
        assert article.content_hash == file.content_hash


def test_shipped_article_without_a_date_line_gets_no_invented_date(articles_dir: Path) -> None:
    # "Estimated read time 3 min read" sits where a date line would; it is not a date.
    assert load_named(articles_dir, G7).date is None
    assert load_named(articles_dir, DRONES).date is None


def test_published_header_with_slashes(tmp_path: Path) -> None:
    write(tmp_path / "a", "story.txt", f"Drone plant news\nPublished: 2022/06/24\n\n{BODY}")
    article = load_named(tmp_path / "a", "story.txt")
    assert article.title == "Drone plant news"
    assert article.date == "2022-06-24"
    assert "Published" not in article.text
    assert article.text.strip().startswith("Iran is helping Russia")


def test_source_url_and_iso_date_header_lines(tmp_path: Path) -> None:
    text = (
        "Drone plant news\n"
        "Source: Example News\n"
        "By: Jane Roe\n"
        "Date: 2023-06-09\n"
        "URL: https://example.com/drones\n\n" + BODY
    )
    write(tmp_path / "a", "story.txt", text)
    article = load_named(tmp_path / "a", "story.txt")
    assert (article.source, article.byline, article.date, article.url) == (
        "Example News",
        "Jane Roe",
        "2023-06-09",
        "https://example.com/drones",
    )
    assert "example.com" not in article.text


def test_bare_iso_date_line_under_the_title(tmp_path: Path) -> None:
    write(tmp_path / "a", "story.txt", f"Drone plant news\n\n2023-06-09\n\n{BODY}")
    article = load_named(tmp_path / "a", "story.txt")
    assert article.date == "2023-06-09"
    assert article.text.lstrip().startswith("2023-06-09")  # kept, so the date can be cited


def test_markdown_heading_is_the_title(tmp_path: Path) -> None:
    write(tmp_path / "a", "story.md", f"# Drone plant news\n\n{BODY}")
    article = load_named(tmp_path / "a", "story.md")
    assert article.title == "Drone plant news"
    assert article.text.strip().startswith("Iran is helping Russia")


def test_html_title_and_published_meta_through_trafilatura(tmp_path: Path) -> None:
    write(tmp_path / "a", "story.html", NEWS_HTML)
    article = load_named(tmp_path / "a", "story.html")
    assert article.title.startswith("Iran helps Russia build drone plant")
    assert article.date == "2023-06-09"
    assert article.source == "Example News"
    assert "Alabuga special economic zone" in article.text
    assert "NAVIGATION-MENU" not in article.text
    assert "FOOTER-COPYRIGHT" not in article.text
    assert "<p>" not in article.text


def test_malformed_html_is_parsed_leniently(tmp_path: Path) -> None:
    broken = (
        "<html><body><div><p>Unclosed <b>bold <i>Iran shipped drones to Russia across the "
        "Caspian Sea, officials said. <p>Another paragraph &amp; a broken <table><tr><td>cell"
    )
    write(tmp_path / "a", "broken.html", broken)
    article = load_named(tmp_path / "a", "broken.html")
    assert "Iran shipped drones to Russia across the Caspian Sea" in article.text
    assert "<b>" not in article.text


def test_html_without_article_text_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path / "a", "empty-page.html", "<html><head><title>x</title></head><body></body>")
    with pytest.raises(ArticleError, match="empty-page.html"):
        load_named(tmp_path / "a", "empty-page.html")


@pytest.mark.parametrize(
    ("content", "reason"), [("", "empty file"), ("   \n\n\t\n", "only whitespace, no text")]
)
def test_empty_file_is_an_error_naming_the_file(tmp_path: Path, content: str, reason: str) -> None:
    write(tmp_path / "a", "empty.txt", content)
    with pytest.raises(ArticleError, match=rf"empty\.txt: {reason}, skipped"):
        load_named(tmp_path / "a", "empty.txt")


def test_binary_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path / "a", "photo.txt", bytes(range(256)) * 20)
    with pytest.raises(ArticleError, match=r"photo\.txt: binary file"):
        load_named(tmp_path / "a", "photo.txt")


def test_cp1252_bytes_decode_with_a_warning(tmp_path: Path) -> None:
    text = "Caf\u00e9 talks\n\n\u201cWe will respond,\u201d the minister said \u2014 in Paris.\n"
    write(tmp_path / "a", "legacy.txt", text.encode("cp1252"))
    article = load_named(tmp_path / "a", "legacy.txt")
    assert article.title == "Caf\u00e9 talks"
    assert "\u201cWe will respond,\u201d the minister said \u2014 in Paris." in article.text
    assert len(article.warnings) == 1
    assert "legacy.txt" in article.warnings[0]
    assert "cp1252" in article.warnings[0]


def test_utf8_file_has_no_encoding_warning(tmp_path: Path) -> None:
    write(tmp_path / "a", "modern.txt", "Caf\u00e9 talks\n\n\u201cQuoted,\u201d he said.\n")
    article = load_named(tmp_path / "a", "modern.txt")
    assert article.warnings == ()
    assert "\u201cQuoted,\u201d" in article.text


def test_huge_file_is_read_bounded_and_marked_truncated(tmp_path: Path) -> None:
    settings = Settings(max_article_bytes=4_000)
    paragraph = "Officials said the sanctions would target drone makers. " * 10 + "\n\n"
    write(tmp_path / "a", "huge.txt", "A very long story\n\n" + paragraph * 2_000)
    assert (tmp_path / "a" / "huge.txt").stat().st_size > 1_000_000
    article = load_named(tmp_path / "a", "huge.txt", settings.max_article_bytes)
    assert len(article.text.encode()) <= settings.max_article_bytes
    assert article.text.strip().startswith("Officials said the sanctions")
    # Indexing words the one warning: it may cut the article shorter still (by chunks).
    assert article.truncated
    assert article.warnings == ()


def test_cut_through_a_multibyte_character_stays_utf8(tmp_path: Path) -> None:
    # "\u2019" is three bytes in UTF-8; the cap falls inside one of them.
    body = "Iran\u2019s drones reached Russia\u2019s army. " * 200
    data = ("Curly quotes\n\n" + body).encode()
    cut = next(n for n in range(3_000, 3_100) if data[n] & 0xC0 == 0x80)
    write(tmp_path / "a", "curly.txt", data)
    article = load_named(tmp_path / "a", "curly.txt", max_bytes=cut)
    assert "Iran\u2019s drones" in article.text
    assert "\u00e2\u20ac" not in article.text  # mojibake of a UTF-8 quote read as cp1252
    assert [w for w in article.warnings if "UTF-8" in w] == []


def test_symlink_outside_the_folder_is_skipped_with_a_warning(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    write(folder, "inside.txt", f"Inside story\n\n{BODY}")
    secret = write(tmp_path / "elsewhere", "secret.txt", f"Secret\n\n{BODY}")
    os.symlink(secret, folder / "leak.txt")
    os.symlink(folder / "inside.txt", folder / "link-inside.txt")
    files, skipped = scan(folder)
    assert [f.rel for f in files] == ["inside.txt", "link-inside.txt"]
    assert list(skipped) == ["leak.txt"]
    assert "outside the articles folder" in skipped["leak.txt"]


def test_hidden_and_unsupported_files_are_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    write(folder, "story.txt", f"Story\n\n{BODY}")
    write(folder, ".draft.txt", f"Draft\n\n{BODY}")
    write(folder / ".git", "notes.txt", f"Notes\n\n{BODY}")
    write(folder, "photo.jpg", b"\xff\xd8\xff")
    write(folder, "report.pdf", b"%PDF-1.4")
    files, skipped = scan(folder)
    assert [f.rel for f in files] == ["story.txt"]
    assert skipped == {"report.pdf": "PDF is not supported yet"}


def test_missing_articles_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArticleError, match="articles folder not found"):
        scan(tmp_path / "nowhere")


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    write(folder, "a-empty.txt", "")
    write(folder, "b-good.txt", f"Good story\n\n{BODY}")
    files, _ = scan(folder)
    results = {f.rel: (article, problems) for f, article, problems in iter_loaded(files, 10_000)}
    assert results["a-empty.txt"][0] is None
    assert results["a-empty.txt"][1] == ["a-empty.txt: empty file, skipped"]
    assert results["b-good.txt"][0] is not None
    assert results["b-good.txt"][0].title == "Good story"
