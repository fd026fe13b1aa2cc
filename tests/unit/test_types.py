"""The answer-type check: "Which countries ...?" is not answered by sentences naming no country."""

from __future__ import annotations

import json

import pytest

from rag.answering import types
from rag.answering.types import TypeCheck, TypeModel, TypeModels, as_name, names_in
from rag.pipeline import Pipeline
from rag.question import analyse, answer_type
from rag.settings import DEFAULT_MODEL, Settings
from tests.fakes import HashingEmbeddings

# A question the shipped articles answer with sentences (Iran, Russia, North Korea).
COUNTRY_QUESTION = "Which country supplies drones to Russia?"


@pytest.mark.parametrize(
    ("question", "wanted"),
    [
        ("Which countries are members of the G-7?", "country"),
        ("In which country has Snowden been granted citizenship?", "country"),
        ("Junkanoo originated on what island nation?", "country"),
        ("Which technology company could be forced to pay Britons?", "company"),
        ("Which of these airlines was fined?", "company"),
        ("Which country's leader said that?", None),  # a person is wanted
        ("What did the company say?", None),  # "the company" is the subject, not the answer
        ("Who leads the country?", None),
        ("Which state passed the law?", None),
    ],
)
def test_the_answer_type_is_the_noun_after_the_question_word(
    question: str, wanted: str | None
) -> None:
    assert answer_type(question) == wanted
    assert analyse(question).answer_type == wanted


def test_a_run_of_capitalised_words_is_one_name_or_several_written_alone_elsewhere() -> None:
    sentence = "Russian President Vladimir Putin met India’s Prime Minister in Moscow."
    passages = ["Putin said so in the Russian republic.", "Vladimir Putin agreed."]
    found = names_in([sentence], frozenset({"moscow"}), passages)
    assert found == [
        "Russian President Vladimir Putin",
        "Vladimir Putin",  # written alone in a passage
        "Russian",
        "Putin",
        "India",  # a possessive ends a name
        "Prime Minister",
    ]
    # "White House" gives no "White": nothing writes it alone.
    assert names_in(["The White House said so."], frozenset(), passages) == ["White House"]


def test_a_sentence_opening_word_is_no_name_and_abbreviations_keep_their_dots() -> None:
    assert names_in(["The U.S. and Iran Air."], frozenset()) == ["U.S.", "Iran Air"]
    assert names_in(["But they said so."], frozenset()) == []


def test_a_passage_can_say_what_a_name_is_in_so_many_words() -> None:
    passage = "G-7 countries may prohibit Iran Air, the country’s national air carrier."
    assert types.described("Iran Air", "company", [passage])
    assert not types.described("Iran Air", "country", [passage])  # "the country's" is not one
    assert types.described("General Motors", "company", ["automaker General Motors said"])
    assert types.described("Tesla", "company", ["Tesla Inc. said"])
    assert not types.described("Iranian", "company", ["private companies about Iranian"])


def test_as_name_reads_a_choice_the_way_a_sentence_would() -> None:
    assert as_name("The Bahamas") == "Bahamas"
    assert as_name("Grocery stores") is None
    assert as_name("Shein and Temu") is None


def test_a_check_names_the_type_when_one_name_reaches_the_threshold() -> None:
    check = TypeCheck("country", (("Kirby", 0.01), ("Iran", 0.98)), 0.7)
    assert check.named
    refused = TypeCheck("country", (("Kirby", 0.01), ("Alabuga", 0.2)), 0.7)
    assert not refused.named
    assert TypeCheck("country", (("Alabuga", 0.2),), 0.7, described=("Alabuga",)).named
    assert refused.reason().startswith("answer type: the question asks which country")
    assert '"Alabuga" 0.20' in refused.reason()


def _constant(probability_logit: float, dims: int = 256) -> TypeModels:
    """Parameters whose every name scores logistic(probability_logit), for fake embeddings."""
    model = TypeModel("country", (0.0,) * dims, probability_logit, 0.5)
    return TypeModels(DEFAULT_MODEL, dims, {"country": model})


def test_the_check_does_not_run_without_the_fitted_model_s_vectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    query = analyse(COUNTRY_QUESTION)
    embedder = HashingEmbeddings()
    monkeypatch.setattr(types, "load", lambda: _constant(-10.0, dims=384))
    assert types.check(query, ["Iran sends drones."], embedder, DEFAULT_MODEL) is None  # 256 dims
    monkeypatch.setattr(types, "load", lambda: _constant(-10.0))
    assert types.check(query, ["Iran sends drones."], embedder, "another-model") is None
    assert types.check(analyse("Where is it?"), ["Iran."], embedder, DEFAULT_MODEL) is None
    check = types.check(query, ["Iran sends drones."], embedder, DEFAULT_MODEL)
    assert check is not None and not check.named


@pytest.fixture
def extractive(fake_index: Settings) -> Pipeline:
    return Pipeline(fake_index.with_overrides(refusal_threshold=0.0), embedder=HashingEmbeddings())


def test_an_answer_naming_no_thing_of_the_type_is_refused_with_the_reason(
    extractive: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(types, "load", lambda: _constant(10.0))  # every name is a country
    assert not extractive.ask(COUNTRY_QUESTION).refused
    monkeypatch.setattr(types, "load", lambda: _constant(-10.0))  # no name is one
    answer = extractive.ask(COUNTRY_QUESTION)
    assert answer.refused and answer.citations == []
    assert answer.refused_by is not None and answer.refused_by.startswith("answer type:")
    assert answer.dropped and all("names no country" in (s.reason or "") for s in answer.dropped)
    assert answer.passages  # the passages it read are still listed


def test_the_shipped_parameters_read_and_hold_only_what_passed_the_ship_rule() -> None:
    shipped = json.loads(types.PARAMS.read_text(encoding="utf-8"))
    fitted = types.load()
    assert fitted.embedding_model == DEFAULT_MODEL and fitted.dims == 384
    assert set(fitted.models) == set(shipped["types"]) == {"country", "company"}
    for kind, params in shipped["types"].items():
        held_out = params["out_of_fold"]
        assert held_out["answer_sentences_passed"] >= 0.95
        assert held_out["other_sentences_refused"] >= 0.5
        assert 0.0 < fitted.models[kind].threshold < 1.0
