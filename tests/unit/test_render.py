"""Unit tests for how answers are shown in the terminal."""

from __future__ import annotations

from rag.render import nested_quotes


def test_a_quoted_sentence_inside_a_citation_quote_is_not_doubled() -> None:
    quote = '“Iran considers it inhumane,” a statement said. Kirby called it "swift".'
    shown = nested_quotes(quote)
    assert shown == "‘Iran considers it inhumane,’ a statement said. Kirby called it 'swift'."
    assert f"“{shown}”".count("“") == 1
