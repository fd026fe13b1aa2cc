"""Rich rendering for the terminal: answers and passages (shared by `rag ask` and the `rag chat`
REPL), index plans and reports, eval results and comparisons. `rag/cli.py` calls it."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape

from rag.answering import Answer, Sentence
from rag.retrieval import Passage

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from rag.collection import CollectionInfo
    from rag.evaluation import Delta, EvalResult
    from rag.indexing import IndexReport, Plan
    from rag.store import ArticleEntry


# Above streamed text: verification, which may drop any of it, runs when it is complete.
DRAFT_LABEL = "draft, not yet checked against the passages:"
VERIFIED_LABEL = "verified answer:"


class StageLine:
    """An on_stage callback: one line on a terminal saying what rag is doing and for how long
    ("reading 5 passages (≈970 tokens) with qwen2.5-coder-0.5b… 6 s"), replaced by the next
    stage, gone once the answer starts to print (stop). Off a terminal it says nothing."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self._status = console.status("") if console.is_terminal else None
        self._clock = clock
        self._label = ""
        self._since = clock()
        if self._status is not None:
            self._status.update(self)  # rendered each refresh: the seconds count up

    def __call__(self, label: str) -> None:
        self._label, self._since = label, self._clock()

    def __rich__(self) -> str:
        seconds = self._clock() - self._since
        return f"{self._label}…" + (f" {seconds:.0f} s" if seconds >= 1 else "")

    def __enter__(self) -> StageLine:
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Clear the line (the answer prints from here on)."""
        if self._status is not None:
            self._status.stop()


class TokenPrinter:
    """An on_token callback that prints streamed LLM text as it arrives, dimmed under a label
    saying it is an unchecked draft: print_answer then gives the verified answer.

    On a terminal the draft wraps between words ("special e / conomic zone" is what the
    terminal's own wrap makes of it): a word is held until the space after it, then put on the
    line if it fits, else on the next. Piped, the text goes out verbatim.
    """

    def __init__(self, console: Console, stages: StageLine | None = None) -> None:
        """stages: the progress line to clear when the first token arrives."""
        self.console = console
        self.stages = stages
        self.printed = False
        self._word = ""  # the word being written, not yet printed
        self._space = False  # a space due before the next word
        self._column = 0

    def __call__(self, token: str) -> None:
        if not self.printed:
            if self.stages is not None:
                self.stages.stop()  # the answer itself shows progress from here on
            self.console.print(DRAFT_LABEL, style="dim italic", highlight=False)
        self.printed = True
        if not self.console.is_terminal:
            self._out(token)
            return
        for piece in re.split(r"(\s+)", token):
            if not piece:
                continue
            if not piece.isspace():
                self._word += piece
                continue
            self._flush()
            if "\n" in piece:
                self._out("\n")
                self._column, self._space = 0, False
            elif self._column:
                self._space = True  # printed before the next word, unless that wraps

    def _flush(self) -> None:
        word, self._word = self._word, ""
        if not word:
            return
        if self._column and self._column + 1 + len(word) > self.console.width:
            self._out("\n")
            self._column = 0
        elif self._space:
            self._out(" ")
            self._column += 1
        self._space = False
        self._out(word)
        self._column += len(word)

    def _out(self, text: str) -> None:
        self.console.print(text, end="", style="dim", markup=False, highlight=False, soft_wrap=True)

    def finish(self) -> None:
        """End the streamed line, if anything was streamed."""
        if self.printed:
            self._flush()
            self.console.print()


_INNER_QUOTES = str.maketrans({"“": "‘", "”": "’", '"': "'"})


def nested_quotes(quote: str) -> str:
    """A quote to show inside “…”: its own double quotation marks become single ones, as in
    print ('“‘Iran considers …,’ a statement said.”'), so none are doubled. --json keeps the
    article's text exactly."""
    return quote.translate(_INNER_QUOTES)


def print_answer(out: Console, err: Console, answer: Answer, streamed: bool = False) -> None:
    """The answer (after a streamed draft, labelled as the verified one), its verified sources
    and how it was made."""
    if answer.note:
        err.print(f"[yellow]note:[/] {escape(answer.note)}", soft_wrap=True)
    if streamed:  # the draft above was dimmed: the answer is this, even when it is the same
        out.print(f"[bold]{VERIFIED_LABEL}[/]", highlight=False)
    out.print(Markdown(answer.text))
    if answer.refused and answer.withheld is not None:
        _print_leads(out, answer)
    elif answer.refused:
        near = list(dict.fromkeys(p.title for p in answer.passages))[:3]
        if near:
            out.print("[dim]closest articles: " + escape("; ".join(near)) + "[/]", highlight=False)
    judged = answer.judgement
    if judged is not None and not answer.refused:
        # Two different claims: the judgement is about the question, a ✓ about a quote.
        if judged.passes:
            out.print(
                f"[bold]rag's judgement:[/] this {judged.words()} "
                f"[dim](probability {judged.probability:.2f}; ✓ below: the quote is in its "
                "passage)[/]",
                highlight=False,
            )
        else:
            out.print(
                f"[yellow]unsure:[/] rag judges this {judged.words()} (probability "
                f"{judged.probability:.2f}, below {judged.threshold:.2f}); shown because of --all",
                highlight=False,
            )
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
                why = f"\n      [dim]why: {escape(s.reason)}[/]" if s.reason else ""
                out.print(
                    f"[red]  ✗[/] {escape(s.text)} [dim]{escape(_cites(s))}[/]{why}",
                    highlight=False,
                )
    for s in answer.cut:
        why = f"\n      [dim]why: {escape(s.reason)}[/]" if s.reason else ""
        out.print(
            f"[yellow]cut:[/] {escape(s.whole or '')} [dim](kept only: {escape(s.text)})[/]{why}",
            highlight=False,
        )
    for s in answer.recited:
        given = f"cited {_cites(s)}" if s.cites else "gave no citation"
        out.print(
            f"[yellow]re-cited:[/] {escape(s.text)} [dim](the model {escape(given)})[/]",
            highlight=False,
        )
    if answer.dropped:
        out.print(
            f"[red]dropped {len(answer.dropped)} sentence(s) the cited passages don't support:[/]",
            highlight=False,
        )
        for s in answer.dropped:
            why = f"\n      [dim]why: {escape(s.reason)}[/]" if s.reason else ""
            out.print(
                f"[red]  ✗[/] {escape(s.text)} [dim]{escape(_cites(s))}[/]{why}", highlight=False
            )
    as_of = f" as of {answer.as_of.isoformat()}" if answer.as_of else ""
    out.print(
        f"[dim]answered by {escape(answer.answerer)}{as_of} in "
        f"{answer.timings_ms.get('total', 0):.0f} ms[/]"
    )


def _print_leads(out: Console, answer: Answer) -> None:
    """Where to read on after a withheld answer: the passages rag's unsure guess came from
    (then the closest others), as leads, with no mark that they answer."""
    judged = answer.judgement
    if judged is not None:
        out.print(
            f"[dim]rag's best guess is {judged.words()} (probability {judged.probability:.2f}, "
            f"below {judged.threshold:.2f}); rag ask --all shows it[/]",
            highlight=False,
        )
    ranks = [p.rank for p in answer.picks]
    ordered = sorted(answer.passages, key=lambda p: (p.rank not in ranks, p.rank))
    shown = []
    for p in ordered:
        if p.title not in {q.title for q in shown}:
            shown.append(p)
    out.print("[dim]closest passages, to read yourself:[/]", highlight=False)
    for p in shown[:3]:
        date = f", {p.date}" if p.date else ""
        out.print(
            f"  [dim]-[/] {escape(p.title + date)} [dim]({escape(p.source)})[/]",
            highlight=False,
            soft_wrap=True,
        )


def print_collections(out: Console, infos: Sequence[CollectionInfo]) -> None:
    """`rag collections`: one row a collection, the current one marked."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("", "name", "folder", "articles", "chunks", "last indexed", "model", "size"):
        table.add_column(
            header, justify="right" if header in ("articles", "chunks", "size") else "left"
        )
    for i in infos:
        table.add_row(
            "*" if i.current else "",
            i.name,
            i.folder,
            str(i.articles),
            str(i.chunks),
            i.last_indexed or "never",
            i.embedding_model or "-",
            f"{i.size_bytes / 1e6:.1f} MB",
        )
    print_unfolded(out, table)


def _cites(sentence: Sentence) -> str:
    """A sentence's citations as its text gives them ("[1][3]"), or "no citation"."""
    return "".join(f"[{n}]" for n in sentence.cites) or "no citation"


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


def print_plan(out: Console, err: Console, plan: Plan) -> None:
    """What `rag index --dry-run` would do, file by file, and the plan's counts."""
    if plan.rebuild_reason:
        out.print(f"[yellow]rebuild:[/] {plan.rebuild_reason}")
    if plan.retokenize:
        out.print(
            "[yellow]re-tokenize:[/] the keyword (BM25) index was made by an older tokenizer: "
            "indexing tokenizes its chunks again (nothing is re-embedded)"
        )
    if plan.resentence:
        out.print(
            "[yellow]sentence vectors:[/] the index lacks its stored sentence vectors (made "
            "by an older rag, or interrupted): indexing embeds the sentences of its chunks once, "
            "so answers need not (chunk vectors are kept)"
        )
    for key, colour, rels in (
        ("added", "green", plan.added),
        ("changed", "yellow", plan.changed),
        ("deleted", "red", plan.deleted),
    ):
        for rel in rels:
            out.print(f"[{colour}]{key:>9}[/] {escape(rel)}", highlight=False)
    for rel in plan.skipped:
        reason = plan.skip_reasons[rel]
        out.print(f"[magenta]  skipped[/] {escape(rel)}: {escape(reason)}", highlight=False)
    for rel, names in plan.aliases.items():
        if names:
            out.print(
                f"[dim]    alias[/] {escape(', '.join(names))} = {escape(rel)}", highlight=False
            )
    for w in plan.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    out.print(
        f"plan: {len(plan.added)} added, {len(plan.changed)} changed, {len(plan.deleted)} deleted,"
        f" {len(plan.unchanged)} unchanged, {len(plan.skipped)} skipped"
        " (dry run: nothing was changed)"
    )


def print_report(out: Console, err: Console, report: IndexReport) -> None:
    """What `rag index` did: its warnings and one line of counts."""
    for w in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    if report.rebuilt:
        out.print(f"[yellow]rebuilt:[/] {report.rebuilt}")
    out.print(
        f"indexed: {report.added} added, {report.changed} changed, {report.deleted} deleted, "
        f"{report.unchanged} unchanged, {report.skipped} skipped"
        f"; {report.chunks} chunks in the index, "
        f"{report.embedded_chunks} embedded ({report.reused_chunks} reused), "
        f"{report.embedded_sentences} sentences embedded in {report.seconds:.1f}s"
    )
    if report.unseen_chars:
        n = report.unseen_articles
        out.print(
            f"left out: {report.unseen_chars:,} characters a reader never sees (hidden HTML, "
            f"invisible characters) in {n} article{'' if n == 1 else 's'}"
        )


ARTICLE_FIELDS = ("file", "title", "date", "source", "chunks")


def print_articles(out: Console, articles: Mapping[str, ArticleEntry]) -> None:
    """The indexed articles (`rag sources`), by file name.

    On a terminal, each in three lines that fit its width: the file name whole, the title
    (cut with "…" if it is wider), then date, source and chunk count. Piped or redirected, a
    header line and one tab-separated line an article (file, title, date, source, chunks), for
    cut, sort and awk.
    """
    from rich.text import Text

    if not out.is_terminal:
        lines = [ARTICLE_FIELDS]
        for rel, e in articles.items():
            lines.append((rel, e.title, e.date or "", e.source or "", str(len(e.chunks))))
        # Written as is: rich would expand the tabs to spaces.
        out.file.write("".join("\t".join(map(_one_line, line)) + "\n" for line in lines))
        return

    def indented(text: str, style: str = "") -> None:
        """One indented line, cut with "…" where the terminal is narrower."""
        line = Text("  " + _one_line(text), style=style)
        out.print(line, no_wrap=True, overflow="ellipsis", soft_wrap=False)

    for rel, e in articles.items():
        out.print(Text(rel, style="bold"), overflow="fold", soft_wrap=False)
        if e.title:
            indented(e.title)
        n = len(e.chunks)
        about = (e.date, e.source, f"{n} chunk{'' if n == 1 else 's'}")
        indented(" · ".join(a for a in about if a), "dim")


def _one_line(value: str) -> str:
    """A value on one line, fit for a tab-separated field: a tab or line break becomes a space."""
    return " ".join(value.replace("\t", " ").splitlines())


NONE = "–"
# The start of a failed question's answer shown in the eval report.
ANSWER_START = 100
# The widest a report's line is when piped or redirected (a file or pipe has no width of its own).
REPORT_WIDTH = 100


def _metric(name: str, value: Any) -> str:
    """A metric as a table shows it: counts whole, latencies in ms, rates to 3 places."""
    if value is None:
        return NONE
    if isinstance(value, int):
        return str(value)
    if name.startswith("latency"):
        return f"{value:.0f}"
    return f"{value:.3f}"


def _cell(name: str, column: dict[str, Any]) -> str:
    """A metric of one column (overall or a question type): "–" where it has none of the
    questions the metric is taken over (no citation precision for unanswerable ones)."""
    from rag.scoring import METRIC_HELP

    scope = METRIC_HELP.get(name, ("all", ""))[0]
    if scope != "all" and not column.get(f"n_{scope}"):
        return NONE
    return _metric(name, column.get(name))


def _table_width(out: Console, table: Any) -> int:
    """The width a table takes when nothing constrains it."""
    from rich.measure import Measurement

    return Measurement.get(out, out.options.update_width(10_000), table).maximum


def print_unfolded(out: Console, table: Any) -> None:
    """Print a table; piped or redirected, at its natural width: a pipe or file has no width to
    fit, so cells and headers stay whole instead of folding at 80 columns."""
    if not out.is_terminal:
        out.width = max(out.width, _table_width(out, table))
    out.print(table)


def print_eval(out: Console, result: EvalResult) -> None:
    """Metrics as rows, overall then one column per question type; what each metric measures;
    then each failed question with the start of its answer.

    The table fits the terminal's width, or REPORT_WIDTH piped or redirected (the type columns
    that don't fit go to a second table, headers whole); so do the lines after it, wrapped
    under their start piped, cropped on a terminal.
    """
    import textwrap

    from rich import box
    from rich.table import Table

    from rag.scoring import FAILURE_LABELS, METRIC_HELP, SUMMARY_METRICS

    summary = result.summary
    columns = [("overall", summary), *summary.get("by_type", {}).items()]
    title = (
        f"{Path(summary['set']).name}: {summary['n']} questions, {summary['answerer']}, "
        f"k={summary['k']}" + (f", as of {summary['as_of']}" if summary.get("as_of") else "")
    )

    def table_of(group: list[tuple[str, dict[str, Any]]], caption: str | None) -> Table:
        table = Table(title=caption, box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("metric", no_wrap=True)
        for header, _ in group:
            table.add_column(header, justify="right", no_wrap=True)
        for name in SUMMARY_METRICS:
            table.add_row(name, *(_cell(name, column) for _, column in group))
        return table

    width = report_width(out)
    groups: list[list[tuple[str, dict[str, Any]]]] = [[]]
    for column in columns:
        wider = [*groups[-1], column]
        if groups[-1] and _table_width(out, table_of(wider, title)) > width:
            groups.append([column])
        else:
            groups[-1] = wider
    for n, group in enumerate(groups):
        print_unfolded(out, table_of(group, title if n == 0 else None))

    def lines(text: str, indent: int) -> None:
        """text in lines of the report's width: cropped on a terminal, wrapped when piped."""
        if out.is_terminal:
            out.print(text, markup=False, highlight=False, overflow="ellipsis", no_wrap=True)
            return
        wrapped = textwrap.wrap(text, width, subsequent_indent=" " * indent, break_on_hyphens=False)
        for line in wrapped or [text]:
            out.print(line, markup=False, highlight=False, overflow="ignore", crop=False)

    out.print(f"[dim]what each metric measures ({NONE}: none of those questions):[/]")
    for name in SUMMARY_METRICS:
        lines(f"{name:<24}{METRIC_HELP[name][1]}", 24)

    for label in FAILURE_LABELS:
        failed = [f for f in result.failures if f.label == label]
        if failed:
            out.print(f"[red]{label}[/] ({len(failed)}):", highlight=False)
        for f in failed:
            indent = f"  {' ' * len(f.id)}  "
            room = min(ANSWER_START, width - len(indent) - 2)
            lines(f"  {f.id}  {f.question}", len(indent))
            lines(
                f"{indent}→ {'refused' if f.refused else _start(f.answer, room)}", len(indent) + 2
            )
    if not result.failures:
        out.print("[green]no failures[/]")
    out.print(f"[dim]results: {escape(str(result.results_path))}[/]", highlight=False)
    out.print(f"[dim]summary: {escape(str(result.summary_path))}[/]", highlight=False)


def shell_lines(words: list[str], width: int = REPORT_WIDTH, indent: str = "  ") -> list[str]:
    """A command, shell-quoted, in lines of at most width (a word longer than a line apart): a
    long argument is split between words into quoted pieces ended by a backslash (the next
    piece starts its line, unindented), so the lines pasted into a shell still run the command."""
    out, line = [], indent
    for word in words:
        sep = "" if line == indent else " "
        if len(line) + len(sep) + len(shlex.quote(word)) <= width:
            line += sep + shlex.quote(word)
            continue
        if line != indent:  # the argument starts a line of its own
            out.append(line + " \\")
            line = indent
        while len(line) + len(shlex.quote(word)) > width:
            cut = word.rfind(" ", 0, width - len(line))
            while cut > 0 and len(line) + len(shlex.quote(word[: cut + 1])) + 1 > width:
                cut = word.rfind(" ", 0, cut)
            if cut <= 0:
                break
            out.append(line + shlex.quote(word[: cut + 1]) + "\\")
            word, line = word[cut + 1 :], ""  # no indent: it would part the pieces
        line += shlex.quote(word)
    out.append(line)
    return out


def _start(text: str, limit: int) -> str:
    """The start of text on one line, at most limit characters, "…" where it was cut."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def print_compare(
    out: Console, err: Console, deltas: list[Delta], old: str, new: str, notes: list[str]
) -> None:
    """One row per metric: old, new, and the change (green better, red worse); the quality
    metrics first, then the timings apart, each latency change judged against the runs' own
    spread (p90 - p10 of their per-question timings)."""
    from rich import box
    from rich.table import Table

    quality = Table("metric", "old", "new", "delta", box=box.SIMPLE_HEAD)
    timings = Table(
        "timing",
        "old",
        "new",
        "delta",
        "",
        title="timings (ms; seconds: the whole run)",
        box=box.SIMPLE_HEAD,
    )
    for d in deltas:
        change = "-" if d.delta is None else f"{d.delta:+.3f}"
        if isinstance(d.delta, int) or (d.metric.startswith("latency") and d.delta is not None):
            change = f"{d.delta:+.0f}"
        colour = {True: "green", False: "red"}.get(d.better, "dim" if not d.delta else "")
        cells = [
            d.metric,
            _metric(d.metric, d.old),
            _metric(d.metric, d.new),
            f"[{colour}]{change}[/]" if colour else change,
        ]
        if d.timing:
            verdict = {True: "[dim]within spread[/]", False: "beyond spread"}.get(
                d.within_spread, ""
            )
            timings.add_row(*cells, verdict)
        else:
            quality.add_row(*cells)
    # The runs compared, a line each (two paths on one line overflow a report's width).
    out.print(f"old: {old}\nnew: {new}", markup=False, highlight=False)
    out.print(quality)
    if timings.row_count:
        out.print(timings)
        out.print(_spread_rule(deltas), highlight=False, soft_wrap=False, width=report_width(out))
    for note in notes:
        err.print(
            f"[yellow]note:[/] {note}", highlight=False, soft_wrap=False, width=report_width(err)
        )


def report_width(console: Console) -> int:
    """The width a report's lines wrap at: the terminal's, or REPORT_WIDTH piped."""
    return console.width if console.is_terminal else REPORT_WIDTH


def _spread_rule(deltas: list[Delta]) -> str:
    """The rule the timing verdicts follow, with each run's spread."""
    by_name = {d.metric: d for d in deltas}
    spreads = []
    for side in ("old", "new"):
        p10, p90 = (getattr(by_name.get(f"latency_ms_p{q}"), side, None) for q in (10, 90))
        spreads.append(f"{p90 - p10:,.0f} ms" if p10 is not None and p90 is not None else "?")
    if "?" in spreads:
        return (
            "[dim]a run without latency_ms_p10/p90 (recorded since this version) has no spread "
            "to judge a timing change by: re-run it to compare timings[/]"
        )
    return (
        "[dim]a latency change smaller than the larger of the runs' own spreads (p90 - p10 of "
        f"the per-question times: old {spreads[0]}, new {spreads[1]}) is within spread: "
        "what the runs' own variation explains, not a change[/]"
    )
