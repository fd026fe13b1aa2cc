"""Unit tests for who-said-what: the speaker a question asks about, the speakers a text quotes."""

from __future__ import annotations

from rag.answering import REFUSAL
from rag.answering.extractive import ExtractiveAnswerer
from rag.attribution import quotes, speakers
from rag.question import analyse, asked_speaker
from rag.retrieval import Passage
from rag.settings import Tuning
from tests.fakes import HashingEmbeddings


def passage(rank: int, text: str) -> Passage:
    return Passage(
        rank=rank,
        chunk_id=f"a.txt-{rank}",
        text=text,
        source="a.txt",
        title="Iran and Russia",
        date="2024-09-10",
        start=0,
        end=len(text),
        score=1.0 / rank,
    )


def answer_of(
    extractive: ExtractiveAnswerer, question: str, passages: list[Passage]
) -> tuple[str, bool]:
    """(answer text, refused) for a question asked of hand-made passages."""
    answer = extractive.answer(analyse(question), passages)
    return answer.text, answer.refused


def test_speakers_before_the_verb_after_a_quote_and_according_to() -> None:
    assert {"iran"} in speakers("Iran, as with previous US findings, denies supplying weapons.")
    quoted = speakers("“A transfer would be an escalation,” Sean Savett, spokesman, said.")
    assert any({"sean", "savett"} <= s for s in quoted)
    inverted = speakers('The drones are "shipped across the sea," said spokesman John Kirby.')
    assert any("kirbi" in s for s in inverted)
    assert any("associ" in s for s in speakers("According to the Arms Control Association, no."))
    # "the United Nations" is also the UN.
    assert any(
        "un" in s for s in speakers("A statement from Iran’s mission to the United Nations said.")
    )


def test_a_speaker_is_not_whatever_the_sentence_is_about() -> None:
    # The Kremlin is what the sentence is about; the administration is who says it.
    text = (
        "The Biden administration has sought to make the case that the Kremlin has become "
        "reliant on Iran and has disclosed intelligence findings that it says show as much."
    )
    assert not quotes(asked_speaker("How did the Kremlin respond?"), text)
    # A short stretch after "and" is what the clause is about, not who speaks.
    text = "A partnership between Iran and Russia amid the war in Ukraine, US officials believe."
    assert not quotes(asked_speaker("How did Ukraine react?"), text)
    assert quotes(
        asked_speaker("What do US intelligence officials believe?"),
        text.replace("US", "US intelligence"),
    )
    # "the United States" is a place, not a verb.
    assert speakers("Foreign ministers of the United States, Iran and China met.") == []


def test_g7_in_a_question_is_the_g_7_of_the_text() -> None:
    text = "“We are prepared to respond swiftly,” the G-7 leaders said in a statement."
    assert quotes(asked_speaker("What did the G7 leaders say?"), text)
    assert quotes(asked_speaker("What did the G-7 threaten?"), text)
    assert not quotes(asked_speaker("What did the G-20 say?"), text)


def test_the_owner_must_be_named_near() -> None:
    text = "Foreign Minister Hossein Amirabdollahian said a meeting was planned."
    assert not quotes(asked_speaker("How did China's foreign ministry respond?"), text)
    assert quotes(
        asked_speaker("What did Iran's foreign minister say?"), f"For Iran's part, {text}"
    )


def test_what_somebody_said_is_only_answered_by_what_they_said() -> None:
    answerer = ExtractiveAnswerer(HashingEmbeddings())
    others = [
        passage(1, "The White House said Iran sent ballistic missiles to Russia last week."),
        passage(2, "Putin hosted Iranian officials in Moscow, where the missiles were shown."),
    ]
    question = "What did Putin say about the Iranian missiles?"
    text, refused = answer_of(answerer, question, others)
    assert refused and text == REFUSAL
    his = passage(3, "Putin told reporters the Iranian missiles were never delivered to Russia.")
    text, refused = answer_of(answerer, question, [*others, his])
    assert not refused and "never delivered" in text and "[3]" in text


def test_what_a_statement_is_about_is_not_who_makes_it() -> None:
    text = (
        "A report by the Stockholm institute about the UN arms embargo on Iran explains "
        '"restrictions on supplies of arms expired in 2020."'
    )
    assert not quotes(asked_speaker("What did Iran say?"), text)
    assert quotes(asked_speaker("What did the Stockholm institute say?"), text)


def test_a_sentence_naming_the_speaker_comes_before_one_next_to_it() -> None:
    text = (
        "Last fall, Mykhailo Podolyak, an adviser to Zelensky, threatened war with Iran over "
        "the drones. For Iran's part, Foreign Minister Hossein Amirabdollahian said a meeting "
        "on drones was planned."
    )
    question = "What did Iran say about the drones?"  # a near-tie between the two
    both = [passage(1, text)]
    text_of = ExtractiveAnswerer(HashingEmbeddings(), Tuning(second_ratio=1.01))
    answer, refused = answer_of(text_of, question, both)
    assert not refused and answer.startswith("For Iran's part")
    # Without the preference, the neighbour of Iran's words would come first.
    plain = ExtractiveAnswerer(HashingEmbeddings(), Tuning(second_ratio=1.01, own_speaker=1.0))
    answer, _ = answer_of(plain, question, both)
    assert answer.startswith("Last fall")
