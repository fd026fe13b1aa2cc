"""The grounding guard: a generated sentence's facts must be in its passage, its wording may
differ, and every failure names the word or measure that failed."""

from __future__ import annotations

from rag.answering.grounding import facts, judge, windows
from rag.settings import Tuning

PASSAGE = [
    "The Group of Seven met on February 23 in Washington.",
    "The leaders agreed to keep sanctions on Russia in place.",
    "Mexican officials said the airport in Chicago would close for five days.",
    "Iran has denied sending drones to Russia.",
    "The Milwaukee Bucks beat the Oklahoma City Thunder 97-81 in Las Vegas on Tuesday.",
]
SPANS = windows(PASSAGE)
TUNING = Tuning()


def check(sentence: str, asked: frozenset[str] = frozenset()):  # noqa: ANN201
    return judge(sentence, 1, SPANS, {}, TUNING, asked)


def test_spelling_variants_of_a_fact_are_the_fact() -> None:
    for sentence in [
        "The G-7 met on Feb. 23 in Washington.",
        "The G7 leaders met in Washington on February 23.",
        "Mexico said the airport in Chicago would close for 5 days.",
        "Iranian officials denied sending drones to Russia.",
    ]:
        j = check(sentence)
        assert j.supported, (sentence, j.reason)


def test_a_swapped_name_figure_or_date_is_refused_naming_the_word() -> None:
    cases = {
        "Mexican officials said the airport in Boston would close for five days.": "Boston",
        "Mexican officials said the airport in Chicago would close for six days.": "six",
        "The Group of Seven met on February 24 in Washington.": "24",
        "The Group of Seven met on March 23 in Washington.": "March",
        "The Milwaukee Bucks beat the Boston Celtics 97-81 in Las Vegas on Tuesday.": "Boston",
    }
    for sentence, word in cases.items():
        j = check(sentence)
        assert not j.supported and j.check == "fact", sentence
        assert j.reason == f'"{word}" is not in passage [1]'


def test_a_fact_elsewhere_in_the_passage_is_not_near_the_quote() -> None:
    j = check("The Group of Seven met on February 23 in Las Vegas.")
    assert not j.supported
    assert j.reason == '"Las" is in passage [1] but not near the sentence it quotes'


def test_a_paraphrase_with_its_facts_in_place_is_kept() -> None:
    j = check("In Washington on February 23, the Group of Seven leaders held a meeting.")
    assert j.supported, j.reason
    assert j.quote == PASSAGE[0]


def test_negation_must_match_both_ways() -> None:
    dropped = check("Iran sent drones to Russia.")
    assert not dropped.supported and dropped.check == "negation"
    assert "negates" in (dropped.reason or "")
    # a denial in a neighbouring sentence does not support this sentence's "not"
    invented = check("The leaders did not agree to keep sanctions on Russia in place.")
    assert not invented.supported
    alone = judge("The leaders did not agree to it.", 1, windows(PASSAGE[:2]), {}, TUNING)
    assert alone.reason == '"not": passage [1] says nothing negative near the quoted sentence'


def test_a_word_of_the_question_the_passage_lacks_is_refused() -> None:
    """ "Who is Iran's defence minister?" answered from a passage naming a foreign minister."""
    spans = windows(["Iran's Foreign Minister Hossein Amirabdollahian said a meeting was planned."])
    sentence = "Iran's defence minister Hossein Amirabdollahian said a meeting was planned."
    asked = frozenset({"iran", "defenc", "minist"})
    strict = Tuning(guard_question_words=True)  # off by default, as fitted
    j = judge(sentence, 2, spans, {}, strict, asked)
    assert not j.supported
    assert j.reason == '"defenc" (a word of the question) is not in passage [2]'
    assert judge(sentence, 2, spans, {}, TUNING, asked).supported


def test_unrelated_wording_around_a_matching_fact_is_refused_on_wording() -> None:
    j = check("A concert orchestra and choir performed for delighted crowds in Washington.")
    assert not j.supported and j.check == "wording"
    assert "says too little" in (j.reason or "")


def test_the_words_that_answer_the_question_must_be_there() -> None:
    """ "Where is the factory?" answered "The factory is on the moon": no name to check, and
    half its words are the passage's, but the one that answers is not."""
    spans = windows(["The factory will be built in an economic zone in the republic."])
    asked = frozenset({"factori", "built"})
    j = judge("The factory will be built on the moon.", 1, spans, {}, TUNING, asked)
    assert not j.supported and j.check == "wording"
    assert "what it adds to the question" in (j.reason or "")
    kept = judge("The factory will be built in an economic zone.", 1, spans, {}, TUNING, asked)
    assert kept.supported, kept.reason


def test_fact_words_found() -> None:
    found = {(f.word, f.kind) for f in facts('Target said on Feb 23 it would not take "checks".')}
    assert found == {
        ("Target", "name"),
        ("Feb", "date"),
        ("23", "number"),
        ("not", "negation"),
        ("checks", "quoted"),
    }
    # titles and common words opening a sentence are no names
    assert {f.word for f in facts("However, President Biden said so.")} == {"Biden"}


def test_an_opening_common_noun_written_in_lower_case_by_the_passage_is_no_fact() -> None:
    spans = windows(["Police said burglars stole $30 million from a facility in Los Angeles."])
    kept = judge("Burglars stole $30 million in Los Angeles.", 1, spans, {}, TUNING)
    assert kept.supported, kept.reason
    swapped = judge("Walmart stole $30 million in Los Angeles.", 1, spans, {}, TUNING)
    assert not swapped.supported and swapped.reason == '"Walmart" is not in passage [1]'


def test_a_name_of_two_words_must_be_one_name_beside_the_quote() -> None:
    """A swapped airline whose two words both appear, apart: "United" (Kingdom), "airline"."""
    spans = windows(
        [
            "The passengers were mostly from Australia and the United Kingdom.",
            "Severe turbulence hit the airline's flight from London, killing one.",
        ]
    )
    j = judge("Severe turbulence hit a United Airlines flight from London.", 1, spans, {}, TUNING)
    assert not j.supported
    assert j.reason == '"United Airlines" is not in passage [1] as one name (its words are apart)'
    named = windows(["Severe turbulence hit a Singapore Airlines flight from London."])
    kept = judge(
        "A Singapore Airlines flight from London hit severe turbulence.", 1, named, {}, TUNING
    )
    assert kept.supported, kept.reason
