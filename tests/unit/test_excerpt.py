"""What a language model is shown (rag/answering/excerpt.py): the best sentences, in budget."""

from __future__ import annotations

import re

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from rag.answering.excerpt import GAP, excerpt, header, whole
from rag.answering.extractive import ExtractiveAnswerer
from rag.chunking import split_sentences
from rag.embedding import resolve_model_dir, token_counter
from rag.pipeline import Pipeline
from rag.question import analyse
from rag.retrieval import Passage
from rag.settings import Settings
from tests.fakes import HashingEmbeddings

QUESTION = "Where is the drone factory that Iran is helping Russia build?"
COUNT = token_counter(resolve_model_dir(Settings().embedding_model))


def retrieved(settings: Settings, question: str = QUESTION) -> tuple[Pipeline, list[Passage]]:
    pipeline = Pipeline(settings, embedder=HashingEmbeddings())
    query = analyse(question)
    return pipeline, pipeline.retriever.search(query, settings).passages


def blocks(text: str) -> dict[str, str]:
    """The excerpt's passages by header line: header -> the text shown under it."""
    out = {}
    for block in text.split("\n\n"):
        head, _, body = block.partition("\n")
        out[head] = body
    return out


def test_the_excerpt_keeps_within_budget_numbers_titles_dates_and_verbatim_sentences(
    fake_index: Settings,
) -> None:
    settings = fake_index.with_overrides(k=5)
    pipeline, passages = retrieved(settings)
    ranked = ExtractiveAnswerer(pipeline.embedder).rank(analyse(QUESTION), passages)
    full = sum(COUNT([whole(passages)]))
    shown = excerpt(ranked, passages, 250, COUNT)

    assert not shown.whole and shown.tokens <= 250 < full
    assert sum(COUNT([shown.text])) < full / 2
    by_header = {header(p): p for p in passages}
    parts = blocks(shown.text)
    assert parts and set(parts) <= set(by_header)
    # Passages in rank order, as whole passages would be.
    order = [by_header[h].rank for h in parts]
    assert order == sorted(order)
    # The best-ranked sentence is there, under its own passage.
    best = ranked[0]
    assert best.text.strip() in parts[header(best.passage)]
    for head, body in parts.items():
        passage = by_header[head]
        pieces = [p.strip() for p in body.split(GAP) if p.strip()]
        assert pieces
        positions = []
        for piece in pieces:
            # Each sentence shown is the passage's own, in article order.
            for s, e in split_sentences(piece):
                assert piece[s:e] in passage.text
                positions.append(passage.text.index(piece[s:e]))
        assert positions == sorted(positions)


def test_passages_that_fit_the_budget_are_shown_whole(fake_index: Settings) -> None:
    pipeline, passages = retrieved(fake_index.with_overrides(k=2))
    ranked = ExtractiveAnswerer(pipeline.embedder).rank(analyse(QUESTION), passages)
    shown = excerpt(ranked, passages, 100_000, COUNT)
    assert shown.whole and shown.text == whole(passages)


def test_the_best_sentence_is_shown_whatever_the_budget(fake_index: Settings) -> None:
    pipeline, passages = retrieved(fake_index)
    ranked = ExtractiveAnswerer(pipeline.embedder).rank(analyse(QUESTION), passages)
    shown = excerpt(ranked, passages, 1, COUNT)
    assert ranked[0].text.strip() in shown.text
    assert len(blocks(shown.text)) == 1


def prompt_blocks(prompt: str) -> list[str]:
    """The passages a prompt shows (inside its <passages> fence), each its number, title and
    date, then its sentences."""
    inside = prompt.split("<passages>\n", 1)[1].split("\n</passages>", 1)[0]
    return inside.split("\n\n")


class CitesWhatItIsShown(BaseChatModel):
    """Answers with the first sentence shown under the last passage of the prompt, cited to
    that passage's number: a model that copies from the excerpt."""

    prompts: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "cites-what-it-is-shown"

    def _generate(self, messages: list[BaseMessage], *args: object, **kwargs: object) -> ChatResult:
        prompt = str(messages[-1].content)
        self.prompts.append(prompt)
        last = prompt_blocks(prompt)[-1]
        head, _, body = last.partition("\n")
        number = re.match(r"\[(\d+)\]", head)
        assert number is not None
        first = next(p.strip() for p in body.split(GAP) if p.strip())
        s, e = split_sentences(first)[0]
        reply = f"{first[s:e]} [{number.group(1)}]"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def test_a_model_citing_the_excerpt_is_verified_against_the_passage_it_names(
    fake_index: Settings,
) -> None:
    settings = fake_index.with_overrides(refusal_threshold=0.0, k=5, tuning={"prompt_budget": 250})
    chat = CitesWhatItIsShown()
    answer = Pipeline(settings, embedder=HashingEmbeddings(), chat_model=chat).ask(QUESTION)
    assert not answer.refused, answer.refused_by
    (prompt,) = chat.prompts
    shown = prompt_blocks(prompt)
    number = re.match(r"\[(\d+)\]", shown[-1])
    assert number is not None
    # Within budget: headers and the sentences shown, counted as the budget counts them.
    heads = [block.partition("\n")[0] for block in shown]
    pieces = [p for block in shown for p in block.partition("\n")[2].split(GAP) if p.strip()]
    assert sum(COUNT(heads + pieces)) <= 250
    (citation,) = answer.citations
    # Renumbered [1] in the answer, it is the passage the prompt showed it under, and supported.
    assert citation.n == 1 and citation.rank == int(number.group(1)) and citation.supported
    passage = next(p for p in answer.passages if p.rank == citation.rank)
    assert citation.chunk_id == passage.chunk_id and citation.quote.strip() in passage.text


def test_sentences_that_can_answer_come_first_so_a_byline_is_shown_for_who_wrote(
    fake_index: Settings,
) -> None:
    question = "Who wrote the article about the Biden administration's new sanctions on Iran?"
    pipeline, passages = retrieved(fake_index, question)
    answerer = ExtractiveAnswerer(pipeline.embedder)
    query = analyse(question)
    # By score alone the byline is not first; the answerer's own filter (a byline for "who
    # wrote") puts it first for the prompt.
    assert not answerer.rank(query, passages)[0].text.startswith("By ")
    first = answerer.for_prompt(query, passages)[0]
    assert first.text.startswith("By ")
    shown = excerpt(answerer.for_prompt(query, passages), passages, 250, COUNT)
    assert first.text in shown.text
