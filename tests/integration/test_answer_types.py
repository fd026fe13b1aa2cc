"""The shipped answer-type parameters with the real query model: real names, real sentences."""

from __future__ import annotations

import json

import pytest
from langchain_core.embeddings import Embeddings
from typer.testing import CliRunner

from rag.answering import types
from rag.cli import app
from rag.embedding import query_embedder
from rag.question import analyse
from rag.settings import DEFAULT_MODEL, Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedder(real_index_env: dict[str, str]) -> Embeddings:
    """The ONNX query model of the shipped articles' real index."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in real_index_env.items():
            mp.setenv(key, value)
        return query_embedder(Settings())


@pytest.mark.parametrize(
    ("sentence", "named"),
    [
        ("Colombia elected Gustavo Petro, a former guerrilla, on Sunday.", True),
        ("Voters in the Philippines chose a new leader on Sunday.", True),
        ("Gustavo Petro, a former guerrilla, won on Sunday, his campaign said.", False),
        ("The White House said the vote was free and fair, according to Reuters.", False),
    ],
)
def test_a_country_is_told_from_people_and_institutions(
    embedder: Embeddings, sentence: str, named: bool
) -> None:
    query = analyse("Which country elected its first leftist president this week?")
    check = types.check(query, [sentence], embedder, DEFAULT_MODEL)
    assert check is not None
    assert check.named is named, check.names


@pytest.mark.parametrize(
    ("question", "refused"),
    [
        # The passages name no drone maker; the best sentences name the U.S., Iran and the
        # White House, none of them a company.
        ("Which company makes the Shahed drones?", True),
        # "Iran Air, the country's national air carrier": the passage says what Iran Air is.
        ("Which carrier could lose permission to operate flights into European skies?", False),
        ("Which country supplies drones to Russia?", False),
    ],
)
def test_an_answer_of_the_wrong_sort_is_refused_through_rag_ask(
    real_index_env: dict[str, str], question: str, refused: bool
) -> None:
    result = CliRunner().invoke(app, ["ask", question, "--json"], env=real_index_env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["refused"] is refused, data["answer"]
    if refused:
        assert data["refused_by"].startswith("answer type: the question asks which company")
    else:
        assert data["refused_by"] is None
