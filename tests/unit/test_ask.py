"""Unit tests for `rag ask` (CliRunner, fake embeddings) and extractive follow-up questions."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rag import embedding
from rag.answering import REFUSAL
from rag.cli import app
from rag.conversation import Conversation
from rag.pipeline import Pipeline
from rag.settings import Settings
from tests.conftest import SHIPPED_ARTICLES
from tests.corpus import BIDEN, NEW_ARTICLE
from tests.fakes import HashingEmbeddings

QUESTION = "Where is the drone factory that Iran is helping Russia build?"


@pytest.fixture
def cli(fake_index: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose `rag` uses the fake embeddings over the fake index."""
    monkeypatch.setattr(embedding, "query_embedder", lambda settings: HashingEmbeddings())
    return CliRunner()


def ask(runner: CliRunner, *args: str) -> Result:
    """`rag ask ARGS`, refusal threshold off: fake similarities are not calibrated for it."""
    return runner.invoke(app, ["ask", *args], env={"RAG_REFUSAL_THRESHOLD": "0"})


def test_json_has_exactly_the_documented_shape(cli: CliRunner) -> None:
    result = ask(cli, QUESTION, "--json", "--k", "3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == [
        "question",
        "answer",
        "refused",
        "refused_by",
        "answerer",
        "note",
        "as_of",
        "query",
        "judgement",
        "withheld",
        "picks",
        "citations",
        "retrieved",
        "dropped",
        "recited",
        "cut",
        "fallback_from",
        "timings_ms",
    ]
    assert data["question"] == QUESTION
    # the extractive answer quotes the passages: nothing to drop or re-cite
    assert data["dropped"] == [] and data["recited"] == [] and data["cut"] == []
    assert data["answerer"] == "extractive"
    assert data["refused"] is False
    assert data["as_of"] is None and data["note"] is None
    assert data["refused_by"] is None
    assert data["fallback_from"] is None
    # The analysed question, so a refusal or a pick can be explained from the output.
    assert data["query"]["text"] == QUESTION and data["query"]["kind"] == "place"
    assert data["query"]["today"] == date.today().isoformat()
    # Each chosen sentence with the weighted signals that add up to its score.
    assert data["picks"]
    for pick in data["picks"]:
        assert pick["sentence"] in data["answer"]
        assert sum(pick["signals"].values()) == pytest.approx(pick["score"], abs=1e-3)
        assert {"cosine", "coverage", "typed"} <= set(pick["signals"])
        assert pick["probability"] is None  # the hand-set weights give no probability
    assert len(data["retrieved"]) == 3
    for r in data["retrieved"]:
        assert list(r) == ["rank", "source", "title", "date", "score", "chunk_id"]
    assert data["citations"]
    ranks = {r["rank"]: r for r in data["retrieved"]}
    # Numbered 1, 2, ... as the answer cites them; rank and chunk_id say which passage.
    assert [c["n"] for c in data["citations"]] == list(range(1, len(data["citations"]) + 1))
    for c in data["citations"]:
        assert list(c) == [
            "n", "rank", "chunk_id", "source", "title", "date", "quote", "supported"
        ]  # fmt: skip
        passage = ranks[c["rank"]]
        assert c["source"] == passage["source"] and c["chunk_id"] == passage["chunk_id"]
        assert c["supported"] is True
        assert f"[{c['n']}]" in data["answer"]
        assert c["quote"] in data["answer"]
    assert {"embed", "answer", "verify", "total"} <= set(data["timings_ms"])


def test_text_output_shows_answer_and_checked_sources(cli: CliRunner) -> None:
    result = ask(cli, QUESTION)
    assert result.exit_code == 0, result.output
    data = json.loads(ask(cli, QUESTION, "--json").stdout)
    first = data["citations"][0]
    assert f"[{first['n']}] {first['title']}" in result.stdout
    assert "✓" in result.stdout
    assert "answered by extractive" in result.stdout


def test_piped_output_is_not_wrapped_at_80_columns(cli: CliRunner) -> None:
    # CliRunner's stdout is not a terminal, as with `rag ask ... | less` or `> answer.txt`.
    answer = json.loads(ask(cli, QUESTION, "--json").stdout)["answer"]
    lines = ask(cli, QUESTION).stdout.splitlines()
    assert len(answer) > 80 and "\n" not in answer
    assert lines[0] == answer


def test_refusal_is_printed(cli: CliRunner) -> None:
    result = cli.invoke(app, ["ask", QUESTION], env={"RAG_REFUSAL_THRESHOLD": "0.999"})
    assert result.exit_code == 0
    assert REFUSAL in " ".join(result.stdout.split())
    assert "closest articles:" in result.stdout


@pytest.mark.parametrize("question", ["", "   ", "\u200b\u200d\t", "\x00\x07"])
def test_empty_question_is_a_clear_error(cli: CliRunner, question: str) -> None:
    result = ask(cli, question)
    assert result.exit_code == 1
    assert "question is empty" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_a_long_question_keeps_the_question_at_its_end_with_a_note(cli: CliRunner) -> None:
    article = " ".join((SHIPPED_ARTICLES / BIDEN).read_text().split())
    # Pasted articles, then the question on its own line.
    question = "\n\n".join([article] * (20_000 // len(article)) + [QUESTION])
    result = ask(cli, question, "--json")
    assert result.exit_code == 0, result.output
    assert "note: question too long (" in result.stderr
    data = json.loads(result.stdout)
    assert len(question) > 15_000
    assert data["question"] == QUESTION  # the paste would decide the search
    assert "left out the first" in data["note"]
    assert data["query"]["asking"] == QUESTION
    # Answered as the question alone is: the paste does not pull the search its way.
    alone = json.loads(ask(cli, QUESTION, "--json").stdout)
    assert data["answer"] == alone["answer"] and data["retrieved"] == alone["retrieved"]


def test_odd_unicode_is_answered(cli: CliRunner) -> None:
    question = "Ｗｈｅｒｅ is the drone 🏭 factory\u200b that Iran is helping Russia build? مصنع"
    result = ask(cli, question, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["question"].startswith("Where is the drone 🏭 factory that")
    assert data["retrieved"]


def test_missing_index_points_to_rag_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding, "query_embedder", lambda settings: HashingEmbeddings())
    result = CliRunner().invoke(app, ["ask", QUESTION])
    assert result.exit_code == 1
    assert "`rag index`" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_llm_is_a_clear_error(cli: CliRunner) -> None:
    result = ask(cli, QUESTION, "--llm", "claude:opus")
    assert result.exit_code == 2
    assert "'claude:opus' is not an answerer" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_as_of_leaves_out_later_articles(cli: CliRunner) -> None:
    # Only the Biden article is dated (2024-02-23); undated articles are always kept.
    question = "What sanctions did the Biden administration impose on Iran?"
    before = json.loads(ask(cli, question, "--json", "--as-of", "2024-01-01").stdout)
    after = json.loads(ask(cli, question, "--json", "--as-of", "2024-02-23").stdout)
    assert before["as_of"] == "2024-01-01"
    assert BIDEN not in {r["source"] for r in before["retrieved"]}
    later = ask(cli, question, "--as-of", "2024-01-01")
    assert "note: 1 matching article published after 2024-01-01 left out" in later.stderr
    assert BIDEN in {r["source"] for r in after["retrieved"]}
    assert all(r["date"] is None for r in before["retrieved"])


def test_as_of_must_be_a_date(cli: CliRunner) -> None:
    result = ask(cli, QUESTION, "--as-of", "last tuesday")
    assert result.exit_code == 2
    assert "not a date like" in result.output


def test_k_must_be_positive(cli: CliRunner) -> None:
    assert ask(cli, QUESTION, "--k", "0").exit_code == 2


@pytest.fixture
def extractive(fake_index: Settings) -> Pipeline:
    """An extractive pipeline over the fake index, refusal threshold off."""
    return Pipeline(fake_index.with_overrides(refusal_threshold=0.0), embedder=HashingEmbeddings())


def test_follow_up_carries_the_previous_subject(extractive: Pipeline) -> None:
    conversation = Conversation()
    extractive.ask(QUESTION, conversation=conversation)
    follow_up = extractive.ask("and what about missiles?", conversation=conversation)
    assert (
        follow_up.query.text
        == "what about missiles?; is the drone factory that Iran is helping Russia build"
    )
    assert follow_up.question == "and what about missiles?"
    again = extractive.ask("why is that?", conversation=conversation)
    # The subject is carried, not every earlier question: queries don't grow turn after turn.
    assert (
        again.query.text == "why is that?; is the drone factory that Iran is helping Russia build"
    )
    assert len(conversation.turns) == 3


def test_standalone_questions_are_not_rewritten(extractive: Pipeline) -> None:
    conversation = Conversation()
    extractive.ask(QUESTION, conversation=conversation)
    for question in ["Who is John Kirby?", "What sanctions did the G7 threaten against Iran?"]:
        assert extractive.ask(question, conversation=conversation).query.text == question
    fresh = Conversation()
    assert extractive.ask("and drones?", conversation=fresh).query.text == "and drones?"


def test_a_question_far_by_similarity_is_answered_when_the_passages_name_its_names(
    fake_index: Settings,
) -> None:
    # No question is close enough by similarity; naming things the passages name overrides it.
    strict = Pipeline(
        fake_index.with_overrides(refusal_threshold=2.0), embedder=HashingEmbeddings()
    )
    named = strict.ask("Where did Secretary of State Antony Blinken hold a news conference?")
    assert not named.refused and "Vienna" in named.text
    unnamed = strict.ask("Where did Secretary of State Marco Rubio hold a news conference?")
    assert unnamed.refused


def test_a_follow_up_naming_somebody_else_asks_the_same_of_them(extractive: Pipeline) -> None:
    conversation = Conversation()
    extractive.ask("What did Kirby say about the drone factory?", conversation=conversation)
    follow_up = extractive.ask("And Iran?", conversation=conversation)
    assert follow_up.query.text == "What did Iran say about the drone factory?"
    # The rewritten question stands alone: the next follow-up builds on it, not on Kirby's.
    assert conversation.turns[-1].subject == follow_up.query.text
    again = extractive.ask("When?", conversation=conversation)
    assert again.query.text == "When?; did Iran say about the drone factory"


def test_a_missing_index_is_named_by_its_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding, "query_embedder", lambda settings: HashingEmbeddings())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["ask", QUESTION], env={"RAG_INDEX_DIR": "index"})
    assert result.exit_code == 1
    # Not "no index in index": the folder it looked in.
    assert str(tmp_path / "index") in " ".join(result.stderr.split())


def test_settings_are_the_one_channel_for_k_and_the_answerer(extractive: Pipeline) -> None:
    two = extractive.with_settings(extractive.settings.with_overrides(k=2))
    assert two.retriever is extractive.retriever and two.embedder is extractive.embedder
    assert len(two.ask(QUESTION).passages) == 2
    assert len(extractive.ask(QUESTION).passages) == extractive.settings.k == 5
    # The answerer is built once per answerer and tuning, and shared.
    assert two.answerer() is extractive.answerer()
    stricter = extractive.settings.with_overrides(tuning={"min_score": 0.9})
    assert extractive.with_settings(stricter).answerer() is not extractive.answerer()


def test_articles_not_yet_indexed_are_named_before_the_answer(
    cli: CliRunner, fake_index: Settings
) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        (fake_index.articles_dir / name).write_text(NEW_ARTICLE.replace("Gulf", f"Gulf {name}"))
    stale = "the index is stale: 3 articles added or changed since the last `rag index`; run it"
    never = {"RAG_REFUSAL_THRESHOLD": "0", "RAG_AUTO_INDEX": "never"}
    result = cli.invoke(app, ["ask", QUESTION, "--json"], env=never)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["note"].startswith(stale)
    text = cli.invoke(app, ["ask", QUESTION], env=never)
    # Said before the answer, not after it.
    assert text.stderr.startswith(f"note: {stale}") and "until then" in text.stderr
    listing = cli.invoke(app, ["sources"])
    assert listing.exit_code == 0 and "3 articles added or changed" in listing.stderr


def test_a_small_change_is_indexed_before_the_answer(
    cli: CliRunner, fake_index: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.indexing.index_embedder", lambda settings: HashingEmbeddings())
    (fake_index.articles_dir / "carrier.txt").write_text(NEW_ARTICLE)
    question = "What did Iran's navy unveil in the Gulf?"
    result = ask(cli, question, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["note"].startswith("updated the index first: 1 added in ")
    assert "carrier.txt" in {p["source"] for p in data["retrieved"]}
    # Up to date now: nothing more to say, and `rag sources` agrees.
    again = ask(cli, question, "--json")
    assert json.loads(again.stdout)["note"] is None
    assert "added or changed" not in cli.invoke(app, ["sources"]).stderr


def test_a_question_in_spanish_is_told_rag_answers_in_english(cli: CliRunner) -> None:
    result = ask(cli, "¿Dónde se está construyendo la fábrica de drones?", "--json")
    assert result.exit_code == 0, result.output
    line = (
        "this question seems to be in Spanish; rag answers questions in English, the language "
        "of the articles"
    )
    assert json.loads(result.stdout)["note"] == line
    assert f"note: {line}" in result.stderr


@pytest.mark.parametrize(
    ("plain", "with_actor"),
    [
        ("When were the sanctions announced?", "When did the Biden administration announce new sanctions?"),
        ("What sanctions were announced against Iran?", "What sanctions did the Biden administration announce against Iran?"),
        ("What was said about the drone factory?", "What did John Kirby say about the drone factory?"),
    ],
)  # fmt: skip
def test_naming_who_acted_does_not_change_the_outcome(
    extractive: Pipeline, plain: str, with_actor: str
) -> None:
    # Only "what did X say" makes X a speaker whose words must answer; an actor of an event
    # ("the Biden administration announced") is not one, so the paraphrase ends the same way.
    first, second = extractive.ask(plain), extractive.ask(with_actor)
    assert not first.refused and not second.refused


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        # A designation no article has: the passages talk about "a range of ballistic missile
        # systems", which answers a different question.
        ("What is the range of Iran's Shahed-238 drones?", "Shahed-238"),
        ("What was Emmanuel Macron's view on the Iranian drone factory?", "Emmanuel Macron"),
        ("What did Kirby call the 'kamikaze swarm' Iran is sending?", "kamikaze swarm"),
    ],
)
def test_a_thing_the_question_names_that_no_passage_names_is_refused(
    extractive: Pipeline, question: str, missing: str
) -> None:
    answer = extractive.ask(question)
    assert answer.refused
    assert answer.refused_by is not None and answer.refused_by.startswith("not named")
    assert f'"{missing}"' in answer.refused_by


@pytest.mark.parametrize(
    "question",
    [
        # The articles write "Zelensky" and "Amirabhollahian": one name spelled two ways.
        "What did Zelenskyy urge allies to allow?",
        "What did Hossein Amirabdollahian say Ukraine would have shown Iran?",
        # "G7" is the articles' "G-7"; 'swift' is a word the articles quote.
        "What did the G7 leaders threaten to do?",
        "Which US spokesman threatened a 'swift' response?",
    ],
)
def test_things_the_passages_name_in_their_own_spelling_are_not_refused(
    extractive: Pipeline, question: str
) -> None:
    assert not extractive.ask(question).refused


def test_version_is_printed() -> None:
    from rag import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"rag {__version__}"


def test_an_index_is_only_updated_from_its_own_folder(
    cli: CliRunner, fake_index: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.indexing.index_embedder", lambda settings: HashingEmbeddings())
    # The index was made from fake_index.articles_dir; asked with another folder beside it
    # (`rag ask --index X` standing elsewhere), it is neither emptied nor filled from there.
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "carrier.txt").write_text(NEW_ARTICLE)
    env = {"RAG_REFUSAL_THRESHOLD": "0", "RAG_ARTICLES_DIR": str(other)}
    result = cli.invoke(app, ["ask", QUESTION, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["note"].startswith("the index is stale:")
    listing = json.loads(cli.invoke(app, ["sources", "--json"]).stdout)
    assert {row["file"] for row in listing} == {p.name for p in SHIPPED_ARTICLES.iterdir()}
