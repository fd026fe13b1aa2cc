"""The `rag` command: parse options, call the core, render. Nothing else lives here."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rag.errors import RagError
from rag.settings import Settings

app = typer.Typer(
    help="Ask questions of a folder of news articles; answers cite the passages they come from.\n\n"
    'Start with `rag index`, then `rag ask "..."` or `rag chat`.',
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
out = Console()
err = Console(stderr=True)

ArticlesOpt = Annotated[
    Path | None, typer.Option("--articles", help="Articles folder [env: RAG_ARTICLES_DIR].")
]
IndexOpt = Annotated[
    Path | None, typer.Option("--index", help="Index folder [env: RAG_INDEX_DIR].")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


@app.callback()
def main_callback(ctx: typer.Context) -> None:
    """Build the one Settings object (environment, rag.toml) for every command."""
    try:
        ctx.obj = Settings()
    except Exception as exc:  # pydantic's ValidationError: a bad RAG_* value
        err.print(f"[red]error:[/] invalid settings: {exc}")
        raise typer.Exit(2) from exc


def _settings(ctx: typer.Context, **overrides: Any) -> Settings:
    return ctx.obj.with_overrides(**overrides)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the core's typed errors into one red line on stderr and exit status 1."""
    try:
        yield
    except RagError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


@contextmanager
def _progress_bar(enabled: bool, label: str) -> Iterator[Any]:
    """A rich progress bar fed by the core's Progress callbacks (silent when disabled)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from rag.indexing import Progress as CoreProgress

    if not enabled:
        yield CoreProgress()
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield CoreProgress(
            start=lambda total: bar.update(task, total=total),
            advance=lambda n: bar.advance(task, n),
        )


@app.command()
def index(
    ctx: typer.Context,
    articles: ArticlesOpt = None,
    index_dir: IndexOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Re-embed everything (built aside, then swapped in).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Index the articles folder, embedding only added or changed articles.

    Example: `rag index`, then after adding files `rag index --dry-run` to see the plan.
    """
    from rag import indexing

    settings = _settings(ctx, articles_dir=articles, index_dir=index_dir)
    with _errors():
        plan = indexing.plan(settings, rebuild=rebuild)
        if dry_run:
            _render_plan(plan, as_json)
            return
        with _progress_bar(not as_json and sys.stderr.isatty(), "Embedding") as progress:
            report = indexing.apply(settings, plan, progress)
    _render_report(report, as_json)


def _render_plan(plan: Any, as_json: bool) -> None:
    data = {
        "added": plan.added,
        "changed": plan.changed,
        "deleted": plan.deleted,
        "unchanged": plan.unchanged,
        "aliases": {k: v for k, v in plan.aliases.items() if v},
        "rebuild": plan.rebuild_reason,
        "warnings": plan.warnings,
    }
    if as_json:
        _print_json(data)
        return
    if plan.rebuild_reason:
        out.print(f"[yellow]rebuild:[/] {plan.rebuild_reason}")
    for key, colour in (("added", "green"), ("changed", "yellow"), ("deleted", "red")):
        for rel in data[key]:
            out.print(f"[{colour}]{key:>9}[/] {rel}", highlight=False)
    for rel, names in data["aliases"].items():
        out.print(f"[dim]    alias[/] {', '.join(names)} = {rel}", highlight=False)
    for w in plan.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    out.print(
        f"plan: {len(plan.added)} added, {len(plan.changed)} changed, {len(plan.deleted)} deleted,"
        f" {len(plan.unchanged)} unchanged (dry run: nothing was changed)"
    )


def _render_report(report: Any, as_json: bool) -> None:
    if as_json:
        data = asdict(report)
        _print_json(data)
        return
    for w in report.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    if report.rebuilt:
        out.print(f"[yellow]rebuilt:[/] {report.rebuilt}")
    out.print(
        f"indexed: {report.added} added, {report.changed} changed, {report.deleted} deleted, "
        f"{report.unchanged} unchanged; {report.chunks} chunks in the index, "
        f"{report.embedded_chunks} embedded ({report.reused_chunks} reused) "
        f"in {report.seconds:.1f}s"
    )


@app.command()
def sources(ctx: typer.Context, index_dir: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """List the indexed articles: file, title, date, source, chunk count.

    Example: `rag sources --json | jq '.[].file'`
    """
    from rag.indexing import current_manifest

    settings = _settings(ctx, index_dir=index_dir)
    _, manifest = current_manifest(settings)
    rows = [
        {
            "file": rel,
            "title": e.title,
            "date": e.date,
            "source": e.source,
            "chunks": len(e.chunks),
            "aliases": e.aliases,
        }
        for rel, e in (manifest.articles.items() if manifest else [])
    ]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        err.print(f"no articles indexed in {settings.index_dir}; run `rag index`")
        raise typer.Exit(1)
    from rich.table import Table

    table = Table("file", "title", "date", "source", "chunks")
    for r in rows:
        table.add_row(r["file"], r["title"], r["date"] or "", r["source"] or "", str(r["chunks"]))
    out.print(table)


@app.command()
def add(
    ctx: typer.Context,
    items: Annotated[list[str], typer.Argument(help="Files, folders or http(s) URLs.")],
    articles: ArticlesOpt = None,
    index_dir: IndexOpt = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Only copy/download.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy files into the articles folder, or download URLs as articles, then index.

    Example: `rag add ~/Downloads/story.html https://apnews.com/article/...`
    """
    from rag import indexing
    from rag.ingest import add_items

    settings = _settings(ctx, articles_dir=articles, index_dir=index_dir)
    with _errors():
        added = add_items(settings, items)
        if not as_json:
            for a in added:
                out.print(f"[green]added[/] {a.dest.name}  [dim]({a.origin})[/]", highlight=False)
        report = None
        if not no_index:
            plan = indexing.plan(settings)
            with _progress_bar(not as_json and sys.stderr.isatty(), "Embedding") as progress:
                report = indexing.apply(settings, plan, progress)
    if as_json:
        _print_json(
            {
                "added": [{"file": a.dest.name, "origin": a.origin} for a in added],
                "index": asdict(report) if report else None,
            }
        )
    elif report:
        _render_report(report, False)


KOpt = Annotated[int | None, typer.Option("--k", "-k", help="Passages to retrieve [env: RAG_K].")]
LlmOpt = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="extractive | ollama:MODEL | openai:MODEL | auto (an LLM if configured) [env: RAG_LLM].",
    ),
]


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="Your question, in quotes.")],
    k: KOpt = None,
    llm: LlmOpt = None,
    index_dir: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer one question from the indexed articles, citing the passages used.

    Example: `rag ask "Where is the drone factory being built?"`
    """
    from rag.pipeline import Pipeline, to_json

    settings = _settings(ctx, index_dir=index_dir, k=k)
    with _errors():
        pipeline = Pipeline(settings)
        streaming = not as_json and pipeline.answerer(llm).name != "extractive"
        on_token = (lambda t: out.print(t, end="", highlight=False)) if streaming else None
        answer = pipeline.ask(question, llm=llm, on_token=on_token)
    if as_json:
        _print_json(to_json(answer))
        return
    if streaming:
        out.print()
    render_answer(answer, streamed=streaming)


def render_answer(answer: Any, streamed: bool = False) -> None:
    """The answer as markdown, then its numbered sources with the quoted support."""
    from rich.markdown import Markdown

    if answer.note:
        err.print(f"[yellow]note:[/] {answer.note}")
    if not streamed:
        out.print(Markdown(answer.text))
    if answer.refused:
        near = list(dict.fromkeys(p.title for p in answer.passages))[:3]
        if near:
            out.print("[dim]closest articles: " + "; ".join(near) + "[/]", highlight=False)
    for c in answer.citations:
        mark = "[green]✓[/]" if c.supported else "[red]✗ unsupported[/]"
        date = f", {c.date}" if c.date else ""
        out.print(f"[bold][{c.n}][/] {c.title}{date} [dim]({c.source})[/] {mark}", highlight=False)
        out.print(f"    [italic]“{c.quote}”[/]", highlight=False)
    if answer.unsupported:
        out.print(f"[red]{answer.unsupported} sentence(s) not supported by the cited passages[/]")
    out.print(
        f"[dim]answered by {answer.answerer} in {answer.timings_ms.get('total', 0):.0f} ms[/]"
    )


def main() -> None:
    """Console-script entry point."""
    app()
