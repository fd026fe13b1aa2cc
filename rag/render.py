"""Rich rendering of answers and passages, shared by `rag ask` and the `rag chat` REPL."""

from __future__ import annotations

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape

from rag.answering import Answer
from rag.retrieval import Passage


class TokenPrinter:
    """An on_token callback that prints streamed LLM text as it arrives, verbatim."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.printed = False

    def __call__(self, token: str) -> None:
        self.console.print(token, end="", markup=False, highlight=False, soft_wrap=True)
        self.printed = True

    def finish(self) -> None:
        """End the streamed line, if anything was streamed."""
        if self.printed:
            self.console.print()


_INNER_QUOTES = str.maketrans({"“": "‘", "”": "’", '"': "'"})


def nested_quotes(quote: str) -> str:
    """A quote to show inside “…”: its own double quotation marks become single ones, as in
    print ('“‘Iran considers …,’ a statement said.”'), so none are doubled. --json keeps the
    article's text exactly."""
    return quote.translate(_INNER_QUOTES)


def print_answer(out: Console, err: Console, answer: Answer, streamed: bool = False) -> None:
    """The answer (unless it was already streamed), its verified sources and how it was made."""
    if answer.note:
        err.print(f"[yellow]note:[/] {escape(answer.note)}", soft_wrap=True)
    if not streamed:
        out.print(Markdown(answer.text))
    elif answer.dropped or answer.recited:  # the streamed text is not what stands: show it
        out.print("[bold]verified answer:[/]", highlight=False)
        out.print(Markdown(answer.text))
    if answer.refused:
        near = list(dict.fromkeys(p.title for p in answer.passages))[:3]
        if near:
            out.print("[dim]closest articles: " + escape("; ".join(near)) + "[/]", highlight=False)
    for c in answer.citations:
        mark = "[green]✓[/]" if c.supported else "[red]✗ unsupported[/]"
        date = f", {c.date}" if c.date else ""
        out.print(
            f"[bold]\\[{c.n}][/] {escape(c.title + date)} [dim]({escape(c.source)})[/] {mark}",
            highlight=False,
            soft_wrap=True,
        )
        out.print(f"    [italic]“{escape(nested_quotes(c.quote))}”[/]", highlight=False)
    if answer.unsupported:
        out.print(
            f"[red]{answer.unsupported} sentence(s) not supported by the cited passages:[/]",
            highlight=False,
        )
        for s in answer.sentences:
            if not s.supported:
                cites = "".join(f"[{n}]" for n in s.cites) or "no citation"
                out.print(f"[red]  ✗[/] {escape(s.text)} [dim]{escape(cites)}[/]", highlight=False)
    for s in answer.recited:
        cites = "".join(f"[{n}]" for n in s.cites) or "no citation"
        out.print(
            f"[yellow]re-cited:[/] {escape(s.text)} [dim](the model cited {escape(cites)})[/]",
            highlight=False,
        )
    if answer.dropped:
        out.print(
            f"[red]dropped {len(answer.dropped)} sentence(s) the cited passages don't support:[/]",
            highlight=False,
        )
        for s in answer.dropped:
            cites = "".join(f"[{n}]" for n in s.cites) or "no citation"
            out.print(f"[red]  ✗[/] {escape(s.text)} [dim]{escape(cites)}[/]", highlight=False)
    as_of = f" as of {answer.as_of.isoformat()}" if answer.as_of else ""
    out.print(
        f"[dim]answered by {escape(answer.answerer)}{as_of} in "
        f"{answer.timings_ms.get('total', 0):.0f} ms[/]"
    )


def print_sources(out: Console, answer: Answer) -> None:
    """Every retrieved passage of an answer, cited ones marked with their check."""
    cited = {c.rank: c for c in answer.citations}
    numbers = answer.numbers()
    for p in sorted(answer.passages, key=lambda p: numbers[p.rank]):
        c = cited.get(p.rank)
        mark = "" if c is None else (" [green]✓ cited[/]" if c.supported else " [red]✗ cited[/]")
        date = f", {p.date}" if p.date else ""
        out.print(
            f"[bold]\\[{numbers[p.rank]}][/] {escape(p.title + date)} [dim]({escape(p.source)}, "
            f"retrieved #{p.rank}, score {p.score:.4f})[/]{mark}",
            highlight=False,
        )


def print_passage(
    out: Console, passage: Passage, number: int, path: str, quote: str | None = None
) -> None:
    """One passage in full, shown as [number], with where it comes from; the cited quote is
    highlighted."""
    date = f", {passage.date}" if passage.date else ""
    out.print(f"[bold]\\[{number}] {escape(passage.title + date)}[/]", highlight=False)
    out.print(
        f"[dim]{escape(path)}, characters {passage.start}–{passage.end}"
        + (f", {escape(passage.url)}" if passage.url else "")
        + "[/]",
        highlight=False,
    )
    text = passage.text.strip()
    if quote and quote in text:
        before, _, after = text.partition(quote)
        out.print(
            f"{escape(before)}[bold yellow]{escape(quote)}[/]{escape(after)}", highlight=False
        )
    else:
        out.print(text, markup=False, highlight=False)
    if passage.corroborated_by:
        out.print(
            "[dim]also reported in: " + escape(", ".join(passage.corroborated_by)) + "[/]",
            highlight=False,
        )
