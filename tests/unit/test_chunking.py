"""Unit tests for rag.chunking with the model's real tokenizer (tokenizers only, no torch)."""

from __future__ import annotations

import random

import pytest

from rag.articles import Article, iter_loaded, scan
from rag.chunking import (
    SPECIAL_TOKENS,
    Chunk,
    ChunkingConfig,
    TokenCounter,
    chunk_article,
    split_sentences,
)
from rag.embedding import resolve_model_dir, token_counter
from rag.settings import DEFAULT_MODEL
from tests.conftest import SHIPPED_ARTICLES

CONFIG = ChunkingConfig()
# MiniLM reads at most max_seq_length pieces, two of them [CLS] and [SEP]: past that it truncates.
MAX_PIECES = CONFIG.max_seq_length - SPECIAL_TOKENS


@pytest.fixture(scope="module")
def count() -> TokenCounter:
    """The embedding model's own word-piece counter."""
    return token_counter(resolve_model_dir(DEFAULT_MODEL))


def make_article(text: str, title: str = "Iran and Russia", date: str | None = None) -> Article:
    """An article with the given body, as the loader would produce it."""
    return Article(path="story.txt", title=title, text=text, content_hash="x", date=date)


def shipped_articles() -> list[Article]:
    """The four shipped articles, loaded as indexing loads them."""
    files, _ = scan(SHIPPED_ARTICLES)
    loaded = [article for _, article, _ in iter_loaded(files, 5_000_000)]
    assert len(loaded) == 4 and all(loaded)
    return loaded


def assert_well_formed(article: Article, chunks: list[Chunk], count: TokenCounter) -> None:
    """Offsets point at the chunk's text, every input fits the model, and nothing is lost."""
    assert chunks
    for c in chunks:
        assert article.text[c.start : c.end] == c.text
        assert c.text.strip()
    pieces = count([c.embed_text for c in chunks])
    assert max(pieces) <= MAX_PIECES, f"a chunk would be truncated: {max(pieces)} pieces"
    covered = [False] * len(article.text)
    for c in chunks:
        covered[c.start : c.end] = [True] * (c.end - c.start)
    lost = [ch for ch, kept in zip(article.text, covered, strict=True) if not kept and ch.strip()]
    assert not lost, f"{len(lost)} characters of the body are in no chunk"
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_abbreviations_stay_inside_their_sentence() -> None:
    text = (
        "The U.S. Treasury imposed sanctions on Friday. Mr. Kirby said Dr. Jones would attend. "
        "Gen. Milley met U.K. officials at 9 a.m. Tuesday. It cost $1.5 million in total."
    )
    assert sentences(text) == [
        "The U.S. Treasury imposed sanctions on Friday.",
        "Mr. Kirby said Dr. Jones would attend.",
        "Gen. Milley met U.K. officials at 9 a.m. Tuesday.",
        "It cost $1.5 million in total.",
    ]


def test_sentence_ends_with_quotes_questions_and_paragraphs() -> None:
    text = '"We will respond," he said. "When?" she asked!\n\nNew paragraph without stop\nNext line'
    assert sentences(text) == [
        '"We will respond," he said.',
        '"When?" she asked!',
        "New paragraph without stop",
        "Next line",
    ]


def test_sentence_offsets_are_exact_and_trimmed() -> None:
    text = "  First one.   Second one!  \n\n  Third?  "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["First one.", "Second one!", "Third?"]


def test_shipped_articles_chunk_within_the_model_limit(count: TokenCounter) -> None:
    for article in shipped_articles():
        chunks = chunk_article(article, count, CONFIG)
        assert_well_formed(article, chunks, count)
        assert len(chunks) >= 3
        body_pieces = count([c.text for c in chunks])
        assert max(body_pieces) <= CONFIG.chunk_tokens
        for c in chunks:
            assert c.header.startswith(article.title)


def test_header_carries_title_and_date(count: TokenCounter) -> None:
    article = make_article("Officials met on Friday. They agreed.", date="2024-02-23")
    (chunk,) = chunk_article(article, count, CONFIG)
    assert chunk.header == "Iran and Russia | Published 2024-02-23\n"
    assert chunk.embed_text == chunk.header + "Officials met on Friday. They agreed."


def test_consecutive_chunks_overlap(count: TokenCounter) -> None:
    text = " ".join(
        f"Sentence number {i} reports that officials discussed sanctions on drone makers."
        for i in range(120)
    )
    article = make_article(text)
    chunks = chunk_article(article, count, CONFIG)
    assert_well_formed(article, chunks, count)
    assert len(chunks) >= 5
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.start < prev.end, "no overlap between consecutive chunks"
        assert nxt.start > prev.start, "chunking must move forward"
        shared = count([article.text[nxt.start : prev.end]])[0]
        assert 0 < shared <= CONFIG.overlap_tokens


def test_no_overlap_requested_gives_adjacent_chunks(count: TokenCounter) -> None:
    text = " ".join(f"Sentence {i} is about drones and sanctions." for i in range(200))
    config = ChunkingConfig(chunk_tokens=60, overlap_tokens=0)
    chunks = chunk_article(make_article(text), count, config)
    assert len(chunks) > 3
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.start > prev.end - 1
        assert not text[prev.end : nxt.start].strip()


def test_one_5000_word_sentence_without_punctuation(count: TokenCounter) -> None:
    rng = random.Random(7)
    vocab = ["sanctions", "Iran", "missiles", "Russia", "drones", "Ukraine", "Tehran", "officials"]
    text = " ".join(rng.choice(vocab) for _ in range(5000))
    article = make_article(text)
    chunks = chunk_article(article, count, CONFIG)
    assert_well_formed(article, chunks, count)
    assert len(chunks) > 20


@pytest.mark.parametrize(
    "word",
    [
        "x-" * 1500,  # punctuation splits it into ~3,000 word pieces
        "https://example.com/" + "a1b2/" * 596,
        "z" * 3000,  # one [UNK] for the tokenizer, still one chunk of text
    ],
    ids=["hyphens", "url", "letters"],
)
def test_a_3000_character_word(count: TokenCounter, word: str) -> None:
    assert len(word) >= 3000
    article = make_article(f"Before the word. {word} After the word.")
    chunks = chunk_article(article, count, CONFIG)
    assert_well_formed(article, chunks, count)
    assert chunks[0].text.startswith("Before the word.")
    assert chunks[-1].text.endswith("After the word.")


def test_a_300_word_title(count: TokenCounter) -> None:
    title = " ".join(f"headline{i % 7} antidisestablishmentarianism" for i in range(150))
    assert len(title.split()) == 300
    body = " ".join(f"Paragraph {i} says officials discussed new sanctions." for i in range(80))
    article = make_article(body, title=title, date="2024-02-23")
    chunks = chunk_article(article, count, CONFIG)
    assert_well_formed(article, chunks, count)
    header_pieces = count([chunks[0].header])[0]
    assert header_pieces <= MAX_PIECES // 3
    assert chunks[0].header.startswith("headline0 antidisestablishmentarianism")
    # The title is shortened, not the date.
    assert chunks[0].header.endswith(" | Published 2024-02-23\n")


def test_same_article_gives_the_same_ids(count: TokenCounter) -> None:
    article = shipped_articles()[0]
    first = chunk_article(article, count, CONFIG)
    # A fresh load of the same file (a new object, as in a later run) gives the same ids.
    again = chunk_article(shipped_articles()[0], count, CONFIG)
    assert [c.id for c in first] == [c.id for c in again]
    assert [c.embed_hash for c in first] == [c.embed_hash for c in again]


def test_editing_one_paragraph_keeps_other_ids_and_embed_hashes(count: TokenCounter) -> None:
    paragraphs = [
        " ".join(f"Paragraph {p} sentence {i} discusses sanctions on Iran." for i in range(12))
        for p in range(8)
    ]
    before = make_article("\n\n".join(paragraphs))
    paragraphs[6] = paragraphs[6].replace("sanctions", "tariffs")
    after = make_article("\n\n".join(paragraphs))
    old = chunk_article(before, count, CONFIG)
    new = chunk_article(after, count, CONFIG)
    assert len(old) >= 4
    kept = {c.id for c in old} & {c.id for c in new}
    assert 0 < len(kept) < len(new)
    assert new[0].id == old[0].id and new[0].embed_hash == old[0].embed_hash
    assert new[-1].embed_hash != old[-1].embed_hash or new[-2].embed_hash != old[-2].embed_hash


def test_ids_differ_between_articles_with_the_same_text(count: TokenCounter) -> None:
    text = "Officials met on Friday. They agreed on sanctions."
    a = chunk_article(make_article(text), count, CONFIG)
    b = chunk_article(
        Article(path="other.txt", title="Iran and Russia", text=text, content_hash="x"),
        count,
        CONFIG,
    )
    assert a[0].embed_hash == b[0].embed_hash
    assert a[0].id != b[0].id


def test_whitespace_only_body_gives_no_chunks(count: TokenCounter) -> None:
    assert chunk_article(make_article("  \n\n \t "), count, CONFIG) == []
