"""The `rag chat` REPL: follow-up questions, slash commands, line editing and history."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from rag.answering import Answer
from rag.conversation import Conversation
from rag.errors import RagError
from rag.indexing import freshen
from rag.pipeline import Pipeline
from rag.render import StageLine, TokenPrinter, print_answer, print_passage, print_sources
from rag.retrieval import Passage
from rag.settings import Settings

PROMPT = "rag> "
MAX_K = 50
HELP = """\
Ask a question about the articles; follow-ups ("and what about drones?") use the conversation.
  /sources   the passages behind the last answer
  /open N    passage N of the last answer in full, with its article, file, date and offsets
  /k N       retrieve N passages per question
  /llm X     answer with X: extractive, local:MODEL, ollama:MODEL, openai:MODEL or auto
  /asof DAY  answer as of DAY (YYYY-MM-DD): later articles left out; /asof off for all
  /reset     forget the conversation
  /help      this help
  /quit      leave (or Ctrl-D); Ctrl-C cancels the answer being written"""

Reader = Callable[[str], str]


def history_file(index_dir: Path) -> Path:
    """Chat history lives with the index it was asked of, else in ~/.rag_history."""
    if index_dir.is_dir() and os.access(index_dir, os.W_OK):
        return index_dir / ".chat_history"
    return Path.home() / ".rag_history"


def make_reader(history: Path) -> Reader:
    """Line editing and history with prompt_toolkit on a terminal; plain input() otherwise.

    Piped or redirected input (tests, scripts) gets no prompt_toolkit, which needs a real tty.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return lambda prompt: input(prompt if sys.stdin.isatty() else "")
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    try:
        history.touch(exist_ok=True)
        store: Any = FileHistory(str(history))
    except OSError:
        store = InMemoryHistory()
    session: PromptSession[str] = PromptSession(history=store)
    return lambda prompt: session.prompt(prompt)


class ChatSession:
    """One conversation over a warm pipeline; `handle` acts on one line of input."""

    def __init__(self, pipeline: Pipeline, out: Console, err: Console) -> None:
        # The pipeline's settings are the chat's: /k, /asof and /llm replace them.
        self.pipeline = pipeline
        self.out = out
        self.err = err
        self.conversation = Conversation()
        self.last: Answer | None = None
        self._commands: dict[str, Callable[[str], bool]] = {
            "/help": self._help,
            "/quit": self._quit,
            "/exit": self._quit,
            "/sources": self._sources,
            "/open": self._open,
            "/k": self._k,
            "/llm": self._llm,
            "/asof": self._as_of,
            "/reset": self._reset,
        }

    def handle(self, line: str) -> bool:
        """Answer a question or run a slash command; False when the user asked to leave."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("/"):
            name, _, arg = text.partition(" ")
            command = self._commands.get(name.lower())
            if command is None:
                self._error(f"unknown command {name}; /help lists the commands")
                return True
            return command(arg.strip())
        self.ask(text)
        return True

    def ask(self, question: str) -> None:
        """Answer one question, streaming LLM tokens; Ctrl-C abandons it and keeps the chat."""
        stages = StageLine(self.out)
        printer = TokenPrinter(self.out, stages)

        try:
            with stages:
                # Articles added since the last index: indexed first when that is quick.
                stages("looking for articles added since the last index")
                fresh = freshen(self.settings)
                if fresh.report is not None:
                    self.pipeline = self.pipeline.reopened()
                if fresh.note:
                    self.err.print(f"[yellow]note:[/] {escape(fresh.note)}", soft_wrap=True)
                self.pipeline.on_stage = stages
                answer = self.pipeline.ask(
                    question, conversation=self.conversation, on_token=printer
                )
        except KeyboardInterrupt:
            printer.finish()
            self.err.print("[yellow]cancelled[/]")
            return
        except RagError as exc:
            printer.finish()
            self._rag_error(exc)
            return
        printer.finish()
        if answer.query is not None and answer.query.text != answer.question:
            self.out.print(f"[dim]searched for: {escape(answer.query.text)}[/]", highlight=False)
        print_answer(self.out, self.err, answer, streamed=printer.printed)
        self.last = answer

    def _rag_error(self, exc: RagError) -> None:
        """The core's error; its advice for the command line said as in chat."""
        self._error(f"{exc} (in chat: /llm extractive)" if "--llm" in str(exc) else str(exc))

    def _error(self, message: str) -> None:
        self.err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)

    def _help(self, _: str) -> bool:
        self.out.print(HELP, markup=False, highlight=False)
        return True

    def _quit(self, _: str) -> bool:
        return False

    def _sources(self, _: str) -> bool:
        if self.last is None:
            self._error("no answer yet; ask a question first")
        else:
            print_sources(self.out, self.last)
        return True

    def _open(self, arg: str) -> bool:
        if self.last is None:
            self._error("no answer yet; ask a question first")
            return True
        numbers = self.last.numbers()
        by_number = {numbers[p.rank]: p for p in self.last.passages}
        if not arg.isdigit() or int(arg) not in by_number:
            self._error(f"usage: /open N, with N from 1 to {len(by_number)} (see /sources)")
            return True
        passage = by_number[int(arg)]
        quote = next((c.quote for c in self.last.citations if c.rank == passage.rank), None)
        path = self.pipeline.settings.articles_dir / passage.source
        print_passage(self.out, passage, int(arg), str(path), quote)
        problem = _check_offsets(path, passage)
        if problem:
            self.err.print(f"[yellow]note:[/] {escape(problem)}", highlight=False, soft_wrap=True)
        return True

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    def _override(self, **changes: Any) -> bool:
        """Answer from now on under settings with these changes; False if they are invalid."""
        from pydantic import ValidationError

        try:
            self.pipeline = self.pipeline.with_settings(self.settings.with_overrides(**changes))
        except ValidationError as exc:
            self._error("; ".join(e["msg"] for e in exc.errors()))
            return False
        return True

    def _k(self, arg: str) -> bool:
        if not arg:
            self.out.print(f"k = {self.settings.k}")
        elif not (arg.isdigit() and 1 <= int(arg) <= MAX_K):
            self._error(f"usage: /k N, with N from 1 to {MAX_K}")
        elif self._override(k=int(arg)):
            self.out.print(f"retrieving {self.settings.k} passages per question")
        return True

    def _llm(self, arg: str) -> bool:
        if not arg:
            self.out.print(f"answering with {self.pipeline.answerer().name}", highlight=False)
            return True
        before = self.pipeline
        if not self._override(llm=arg):
            return True
        try:
            name = self.pipeline.answerer().name
        except RagError as exc:
            self.pipeline = before  # an unusable answerer leaves the current one in place
            self._rag_error(exc)
            return True
        self.out.print(f"answering with {name}", highlight=False)
        return True

    def _as_of(self, arg: str) -> bool:
        if arg.lower() in ("off", "none"):
            self._override(as_of=None)
        elif arg:
            try:
                day = date.fromisoformat(arg)
            except ValueError:
                self._error("usage: /asof YYYY-MM-DD, or /asof off for every article")
                return True
            self._override(as_of=day)
        as_of = self.settings.as_of
        self.out.print(
            f"answering as of {as_of.isoformat()}" if as_of else "answering from every article"
        )
        return True

    def _reset(self, _: str) -> bool:
        self.conversation = Conversation()
        self.last = None
        self.out.print("conversation cleared")
        return True


def _check_offsets(path: Path, passage: Passage) -> str | None:
    """Why the article file no longer holds the passage at its offsets, or None when it does."""
    from rag.articles import ArticleFile, file_hash, load

    if not path.is_file():
        return f"{path} is no longer in the articles folder; run `rag index`"
    try:
        article = load(ArticleFile(path, passage.source, file_hash(path), path.stat().st_size))
    except (RagError, OSError) as exc:
        return f"cannot re-read {path}: {exc}"
    if article.text[passage.start : passage.end] != passage.text:
        return f"{path} no longer holds this passage at these offsets; run `rag index`"
    return None


def repl(session: ChatSession, read: Reader) -> None:
    """Read and handle lines until /quit or Ctrl-D; Ctrl-C at the prompt just clears the line."""
    while True:
        try:
            line = read(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            session.out.print()
            return
        try:
            if not session.handle(line):
                return
        except KeyboardInterrupt:
            session.err.print("[yellow]cancelled[/]")


def run(settings: Settings, out: Console, err: Console) -> None:
    """`rag chat`: open the index, check the answerer, then converse on the terminal."""
    pipeline = Pipeline(settings)
    name = pipeline.answerer().name  # an unusable --llm fails here, before the first prompt
    session = ChatSession(pipeline, out, err)
    out.print(
        f"[bold]rag chat[/] answering with {escape(name)} from {escape(str(settings.index_dir))}"
        + (f" as of {settings.as_of.isoformat()}" if settings.as_of else "")
        + ". /help for commands, Ctrl-D to leave.",
        highlight=False,
    )
    repl(session, make_reader(history_file(settings.index_dir)))
