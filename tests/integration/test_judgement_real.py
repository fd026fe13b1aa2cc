"""The answer judgement with the real model over the shipped articles: a language model's
answer whose every sentence its passage supports, but that does not answer the question, is
withheld; the right answer still stands. The model here is scripted (a real chat-model
subclass) to write what the packaged 0.5B wrote; tests/integration/test_local_model.py runs
the 0.5B itself."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from rag.answering import WITHHELD
from rag.pipeline import Pipeline
from rag.settings import Settings

pytestmark = pytest.mark.integration

FACTORY = "Where is the drone factory being built?"
CURRENT = "Who is the current defence minister of Iran?"


def scripted(env: dict[str, str], reply: str) -> Pipeline:
    """A pipeline over the real index whose language model always writes reply."""
    settings = Settings(llm="openai:scripted", refusal_threshold=0.26)
    return Pipeline(settings, chat_model=FakeListChatModel(responses=[reply] * 4))


@pytest.fixture
def env(real_index_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in real_index_env.items():
        monkeypatch.setenv(key, value)
    return real_index_env


def test_a_supported_answer_to_another_question_is_withheld(env: dict[str, str]) -> None:
    # The 0.5B's answer: a real sentence of the articles, supported, about something else.
    biden = (
        "President Joe Biden is about to host British Prime Minister Keir Starmer for talks at "
        "the White House on Friday [1]."
    )
    answer = scripted(env, biden).ask(CURRENT)
    assert answer.refused, answer.text
    assert answer.text == WITHHELD or answer.refused_by


def test_the_foreign_minister_is_not_given_as_the_defence_minister(env: dict[str, str]) -> None:
    answer = scripted(env, "Iran's defense minister is Hossein Amirabdollahian [1].").ask(CURRENT)
    assert answer.refused, answer.text


def test_the_alabuga_answer_still_stands(env: dict[str, str]) -> None:
    kirby = (
        "According to Kirby, the alleged drone factory will be built in the Alabuga special "
        "economic zone in the Russian republic of Tatarstan [1]."
    )
    answer = scripted(env, kirby).ask(FACTORY)
    assert not answer.refused and "Alabuga" in answer.text
    assert answer.judgement is not None and answer.judgement.passes
    extractive = Pipeline(Settings(llm="extractive")).ask(FACTORY)
    assert not extractive.refused and "Alabuga" in extractive.text
    assert extractive.judgement is not None and extractive.judgement.passes


def test_a_question_about_the_article_itself_is_not_judged(env: dict[str, str]) -> None:
    # Its byline answers it by rule; the judgement's training questions have none of the kind.
    strict = Pipeline(Settings(llm="extractive", min_confidence=0.99))
    answer = strict.ask(
        "Who wrote the article about the Biden administration preparing new sanctions on Iran "
        "for its arms sales to Russia?"
    )
    assert not answer.refused and answer.judgement is None
    assert strict.ask(FACTORY).refused  # the bar itself does withhold
