"""Unit tests for the BM25 side index: real bm25s in tmp_path, no model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.lexical import LexicalIndex, tokenize

TEXTS = {
    "a": "The drone factory in Tatarstan will build Shahed drones for Russia.",
    "b": "Iran sent ballistic missiles to Russia, officials said.",
    "c": "The drone factory in Tatarstan will build Shahed drones for Russia.",  # copy of a
    "d": "Sanctions target Iran's drone programme and its suppliers.",
    "e": "A recipe for lemon cake with poppy seeds.",
    "f": "Russia builds drones; Russia buys drones; drones, drones, drones.",
}


@pytest.fixture
def lexical(tmp_path: Path) -> LexicalIndex:
    """An index over TEXTS, in their order."""
    index = LexicalIndex(tmp_path)
    index.update(list(TEXTS), lambda ids: {i: TEXTS[i] for i in ids})
    return index


def reference(index: LexicalIndex, query: str, n: int) -> list[tuple[str, float]]:
    """bm25s's own scores, ranked best first, equal scores in index order, positive only."""
    retriever, ids = index._load()
    scores = retriever.get_scores(tokenize([query])[0])
    ranked = sorted(range(len(ids)), key=lambda i: (-scores[i], i))
    return [(ids[i], float(scores[i])) for i in ranked if scores[i] > 0][:n]


@pytest.mark.parametrize("query", ["drone factory Russia", "Iran", "drones", "lemon Iran drone"])
@pytest.mark.parametrize("n", [1, 2, 3, 40])
def test_search_ranks_by_bm25_score_with_ties_in_index_order(
    lexical: LexicalIndex, query: str, n: int
) -> None:
    hits = [(h.id, h.score) for h in lexical.search(query, n)]
    assert hits == reference(lexical, query, n)
    assert len(hits) == min(n, len(reference(lexical, query, 100)))


def test_search_agrees_with_bm25s_retrieve(lexical: LexicalIndex) -> None:
    retriever, ids = lexical._load()
    tokens = tokenize(["drone factory Russia"])
    docs, scores = retriever.retrieve(tokens, k=len(ids), show_progress=False)
    expected = {(ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0}
    assert {(h.id, h.score) for h in lexical.search("drone factory Russia", 40)} == expected


def test_exact_copies_tie_and_the_earlier_chunk_ranks_first(lexical: LexicalIndex) -> None:
    hits = lexical.search("Tatarstan", 40)
    assert [h.id for h in hits] == ["a", "c"]
    assert hits[0].score == hits[1].score > 0
    assert [h.id for h in lexical.search("Tatarstan", 1)] == ["a"]


def test_search_without_known_words_finds_nothing(lexical: LexicalIndex) -> None:
    assert lexical.search("zeppelin", 5) == []
    assert lexical.search("the and of", 5) == []


def test_search_of_an_empty_folder_finds_nothing(tmp_path: Path) -> None:
    assert LexicalIndex(tmp_path).search("drone", 5) == []


def test_update_with_nothing_new_does_not_read_the_stored_tokens(
    lexical: LexicalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("tokens.jsonl read on a no-op update")

    monkeypatch.setattr(LexicalIndex, "_load_tokens", fail)
    assert lexical.update(list(TEXTS), lambda ids: {}) == 0


def test_update_tokenizes_only_new_and_rewritten_chunks(lexical: LexicalIndex) -> None:
    asked: list[list[str]] = []
    texts = TEXTS | {"g": "Zeppelin works at Friedrichshafen.", "b": "Lemon cake again."}

    def texts_for(ids: list[str]) -> dict[str, str]:
        asked.append(ids)
        return {i: texts[i] for i in ids}

    assert lexical.update(["a", "b", "g"], texts_for, rewritten=["b"]) == 2
    assert asked == [["b", "g"]]
    assert [h.id for h in lexical.search("zeppelin", 5)] == ["g"]
    assert [h.id for h in lexical.search("lemon", 5)] == ["b"]
    assert lexical.search("Tatarstan", 5)[0].id == "a"
    assert json.loads((lexical.dir / "ids.json").read_text()) == ["a", "b", "g"]


def test_a_letter_joined_to_a_number_is_one_token() -> None:
    # bm25s drops one-character words: "G-7" would lose both halves.
    assert tokenize(["The G-7 leaders", "G7 leaders", "F-16 jets, Su-35 jets, X-ray"]) == [
        ["g7", "leader"],
        ["g7", "leader"],
        ["f16", "jet", "su", "35", "jet", "ray"],
    ]


def test_an_index_tokenized_by_another_tokenizer_is_tokenized_again(
    lexical: LexicalIndex,
) -> None:
    texts = TEXTS | {"g": "The G-7 leaders warned Iran."}
    lexical.update([*TEXTS, "g"], lambda ids: {i: texts[i] for i in ids})
    assert [h.id for h in lexical.search("G7", 5)] == ["g"]
    # As an index written before the tokenizer joined "G-7" would be stored: no version, and
    # the letter and number lost.
    (lexical.dir / "tokenizer.json").unlink()
    rows = [json.loads(line) for line in (lexical.dir / "tokens.jsonl").read_text().splitlines()]
    old = [[cid, [t for t in tokens if t != "g7"]] for cid, tokens in rows]
    (lexical.dir / "tokens.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))

    asked: list[list[str]] = []

    def texts_for(ids: list[str]) -> dict[str, str]:
        asked.append(ids)
        return {i: texts[i] for i in ids}

    assert lexical.update([*TEXTS, "g"], texts_for) == len(texts)
    assert asked == [[*TEXTS, "g"]]
    assert [h.id for h in lexical.search("G7", 5)] == ["g"]
    # Once tokenized again, nothing more to do.
    assert lexical.update([*TEXTS, "g"], texts_for) == 0
