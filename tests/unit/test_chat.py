"""Unit tests for the `rag chat` session: questions, follow-ups and slash commands."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from rich.console import Console

from rag import chat
from rag.answering import REFUSAL
from rag.chat import ChatSession, history_file, make_reader, repl
from rag.pipeline import Pipeline
from rag.settings import Settings
from tests.corpus import NEW_ARTICLE
from tests.fakes import HashingEmbeddings

QUESTION = "Where is the drone factory that Iran is helping Russia build?"


class Screen:
    """A chat session writing to two in-memory consoles."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        out = Console(file=self.stdout, width=200)
        err = Console(file=self.stderr, width=200)
        self.session = ChatSession(pipeline, out, err)

    def send(self, line: str) -> tuple[str, str]:
        """Handle one line; (what it printed, what it reported on stderr)."""
        self.stdout.seek(0), self.stdout.truncate()
        self.stderr.seek(0), self.stderr.truncate()
        assert self.session.handle(line)
        return self.stdout.getvalue(), self.stderr.getvalue()


@pytest.fixture
def screen(fake_index: Settings) -> Screen:
    """A session over the fake index (refusal threshold off for the fake embeddings)."""
    settings = fake_index.with_overrides(refusal_threshold=0.0)
    return Screen(Pipeline(settings, embedder=HashingEmbeddings()))


def test_question_then_follow_up(screen: Screen) -> None:
    out, _ = screen.send(QUESTION)
    assert re.search(r"\[\d\]", out) and "answered by extractive" in out
    out, _ = screen.send("and what about missiles?")
    assert (
        "searched for: what about missiles?; is the drone factory that Iran is helping Russia build"
        in out
    )
    assert len(screen.session.conversation.turns) == 2


def test_sources_lists_the_last_answers_passages(screen: Screen) -> None:
    _, err = screen.send("/sources")
    assert "no answer yet" in err
    screen.send(QUESTION)
    out, _ = screen.send("/sources")
    last = screen.session.last
    assert last is not None
    numbers = last.numbers()
    # Numbered as the answer cites them (1, 2, ...), the uncited ones after.
    assert sorted(numbers.values()) == list(range(1, len(last.passages) + 1))
    for p in last.passages:
        assert f"[{numbers[p.rank]}] {p.title}" in out and f"retrieved #{p.rank}," in out
    first = next(p for p in last.passages if numbers[p.rank] == 1)
    assert out.index(f"[1] {first.title}") < out.index("[2] ")
    assert "✓ cited" in out


def test_open_shows_the_passage_with_its_file_and_offsets(screen: Screen) -> None:
    screen.send(QUESTION)
    last = screen.session.last
    assert last is not None
    # [1] in the answer is the passage /open 1 shows, whatever its retrieval rank.
    assert last.citations[0].n == 1
    cited = next(p for p in last.passages if p.rank == last.citations[0].rank)
    out, err = screen.send("/open 1")
    assert err == ""
    assert f"[1] {cited.title}" in out
    assert cited.source in out
    assert f"characters {cited.start}–{cited.end}" in out
    assert " ".join(cited.text.split()) in " ".join(out.split())


def test_open_notices_an_article_changed_since_indexing(screen: Screen) -> None:
    screen.send(QUESTION)
    last = screen.session.last
    assert last is not None
    first = next(p for p in last.passages if last.numbers()[p.rank] == 1)
    path = screen.session.pipeline.settings.articles_dir / first.source
    path.write_text("Rewritten\n\nNothing of the old article is left.\n", encoding="utf-8")
    _, err = screen.send("/open 1")
    assert "no longer holds this passage" in err and "rag index" in err
    path.unlink()
    _, err = screen.send("/open 1")
    assert "no longer in the articles folder" in err


@pytest.mark.parametrize("arg", ["", "0", "99", "one"])
def test_open_needs_a_passage_number(screen: Screen, arg: str) -> None:
    screen.send(QUESTION)
    _, err = screen.send(f"/open {arg}")
    assert "usage: /open N" in err


def test_k_changes_the_passages_retrieved(screen: Screen) -> None:
    out, _ = screen.send("/k 2")
    assert "retrieving 2 passages" in out
    screen.send(QUESTION)
    assert screen.session.last is not None and len(screen.session.last.passages) == 2
    for bad in ("0", "x", "500"):
        _, err = screen.send(f"/k {bad}")
        assert "usage: /k N" in err
    out, _ = screen.send("/k")
    assert "k = 2" in out


def test_llm_switches_or_reports_a_bad_spec(screen: Screen) -> None:
    _, err = screen.send("/llm claude:opus")
    assert "'claude:opus' is not an answerer" in err
    assert screen.session.settings.llm == "auto"
    out, _ = screen.send("/llm extractive")
    assert "answering with extractive" in out
    assert screen.session.settings.llm == "extractive"


def test_asof_sets_the_day_questions_are_asked(screen: Screen) -> None:
    out, _ = screen.send("/asof 2024-01-01")
    assert "answering as of 2024-01-01" in out
    out, _ = screen.send("What sanctions did the Biden administration impose on Iran?")
    assert "as of 2024-01-01" in out
    last = screen.session.last
    assert last is not None and last.as_of == date(2024, 1, 1)
    assert all(p.date is None for p in last.passages)  # the dated Biden article is later
    _, err = screen.send("/asof yesterday")
    assert "usage: /asof YYYY-MM-DD" in err and screen.session.settings.as_of == date(2024, 1, 1)
    out, _ = screen.send("/asof off")
    assert "answering from every article" in out and screen.session.settings.as_of is None
    # The day is really gone: the later article answers again (it was ignored, issue 13).
    screen.send("What sanctions did the Biden administration impose on Iran?")
    last = screen.session.last
    assert last is not None and last.as_of is None
    assert any(p.date == "2024-02-23" for p in last.passages)


def test_reset_forgets_the_conversation(screen: Screen) -> None:
    screen.send(QUESTION)
    out, _ = screen.send("/reset")
    assert "cleared" in out
    assert screen.session.conversation.turns == [] and screen.session.last is None
    out, _ = screen.send("and what about missiles?")
    assert "searched for" not in out


def test_help_unknown_command_and_quit(screen: Screen) -> None:
    out, _ = screen.send("/help")
    for command in ("/sources", "/open N", "/k N", "/llm X", "/reset", "/quit"):
        assert command in out
    _, err = screen.send("/frobnicate")
    assert "unknown command /frobnicate" in err
    assert screen.session.handle("/quit") is False


def test_empty_lines_are_ignored(screen: Screen) -> None:
    assert screen.send("   ") == ("", "")


class Interrupted(GenericFakeChatModel):
    """A chat model the user interrupts (Ctrl-C) after its first token."""

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(message=AIMessageChunk(content="The factory"))
        raise KeyboardInterrupt


def test_ctrl_c_cancels_the_answer_and_keeps_the_chat(fake_index: Settings) -> None:
    settings = fake_index.with_overrides(refusal_threshold=0.0)
    chat_model = Interrupted(messages=iter([AIMessage("unused")]))
    screen = Screen(Pipeline(settings, embedder=HashingEmbeddings(), chat_model=chat_model))
    out, err = screen.send(QUESTION)
    assert out == "draft, not yet checked against the passages:\nThe factory\n"
    assert "cancelled" in err
    assert screen.session.conversation.turns == [] and screen.session.last is None
    out, _ = screen.send("/llm extractive")
    out, _ = screen.send(QUESTION)
    assert "answered by extractive" in out


def test_llm_failure_is_reported_and_the_chat_goes_on(fake_index: Settings) -> None:
    settings = fake_index.with_overrides(refusal_threshold=0.0, ollama_url="http://127.0.0.1:9")
    screen = Screen(Pipeline(settings, embedder=HashingEmbeddings()))
    # Found out when switching, before any question is searched; the chat goes on as it was.
    _, err = screen.send("/llm ollama:llama3.2")
    assert "http://127.0.0.1:9" in err and "/llm extractive" in err
    out, _ = screen.send(QUESTION)
    assert "answered by extractive" in out
    assert screen.session.handle("/quit") is False


def test_repl_reads_until_ctrl_d(screen: Screen) -> None:
    lines: list[BaseException | str] = [QUESTION, KeyboardInterrupt(), "/sources", EOFError()]

    def read(prompt: str) -> str:
        assert prompt == chat.PROMPT
        item = lines.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    repl(screen.session, read)
    assert lines == []
    assert screen.session.last is not None


def test_repl_stops_at_quit(screen: Screen) -> None:
    lines = ["/quit", "never read"]
    repl(screen.session, lambda prompt: lines.pop(0))
    assert lines == ["never read"]


def test_plain_input_when_stdin_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("first line\n"))
    read = make_reader(tmp_path / "history")
    assert read(chat.PROMPT) == "first line"
    with pytest.raises(EOFError):
        read(chat.PROMPT)


def test_history_lives_with_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = tmp_path / "index"
    index.mkdir()
    assert history_file(index) == index / ".chat_history"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert history_file(tmp_path / "missing") == tmp_path / "home" / ".rag_history"


def test_asof_off_in_a_chat_started_as_of_a_day_answers_from_later_articles(
    fake_index: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rag chat --as-of D`, then `/asof off`: the day must not come back from the command line."""
    from typer.testing import CliRunner

    from rag import embedding
    from rag.cli import app

    monkeypatch.setattr(embedding, "query_embedder", lambda settings: HashingEmbeddings())
    question = "What sanctions did the Biden administration impose on Iran?"
    lines = f"{question}\n/asof off\n{question}\n"
    result = CliRunner().invoke(
        app, ["chat", "--as-of", "2024-01-01"], input=lines, env={"RAG_REFUSAL_THRESHOLD": "0"}
    )
    assert result.exit_code == 0, result.output
    before, after = result.stdout.split("answering from every article")
    # Only the Biden article (dated 2024-02-23) says when the sanctions came; as of 2024-01-01
    # it is left out, after /asof off it is cited.
    assert "2024-02-23" not in before and "as of 2024-01-01" in before
    assert "2024-02-23" in after


def test_an_article_added_since_the_index_is_indexed_before_the_answer(
    screen: Screen, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.indexing.index_embedder", lambda settings: HashingEmbeddings())
    articles = screen.session.settings.articles_dir
    (articles / "drone-carrier.txt").write_text(NEW_ARTICLE)
    out, err = screen.send("What did Iran's navy unveil in the Gulf?")
    assert "updated the index first: 1 added in " in err
    # The warm pipeline searches the updated index: the new article is cited.
    assert screen.session.last is not None
    assert "drone-carrier.txt" in {p.source for p in screen.session.last.passages}


def test_a_large_change_is_said_before_the_answer(screen: Screen) -> None:
    session = screen.session
    session.pipeline = session.pipeline.with_settings(
        session.settings.with_overrides(auto_index="never")
    )
    (session.settings.articles_dir / "drone-carrier.txt").write_text(NEW_ARTICLE)
    _, err = screen.send(QUESTION)
    assert err.startswith("note: the index is stale: 1 article added or changed since the last")


def test_a_streamed_draft_is_dimmed_and_the_verified_answer_stands_apart(
    fake_index: Settings,
) -> None:
    settings = fake_index.with_overrides(refusal_threshold=0.0)
    invented = "The factory is on the Moon [1]."
    chat_model = GenericFakeChatModel(messages=iter([AIMessage(invented)]))
    stdout = io.StringIO()
    out = Console(file=stdout, width=200, force_terminal=True, color_system="standard")
    err = Console(file=io.StringIO(), width=200)
    pipeline = Pipeline(settings, embedder=HashingEmbeddings(), chat_model=chat_model)
    ChatSession(pipeline, out, err).ask(QUESTION)
    shown = stdout.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    draft, _, verified = plain.partition("verified answer:")
    assert draft.endswith("draft, not yet checked against the passages:\n" + invented + "\n")
    assert verified.lstrip().startswith(REFUSAL)  # verification dropped the invention
    # Every streamed word is dimmed (SGR 2); the verified answer is not.
    streamed = shown[: shown.index("verified answer:")]
    assert all(re.search(rf"\x1b\[2m{w}", streamed) for w in ("The", "factory", "Moon"))
    answer = shown[shown.index("verified answer:") :]
    assert not re.search(r"\x1b\[2m[^\x1b]*" + re.escape(REFUSAL[:12]), answer)
