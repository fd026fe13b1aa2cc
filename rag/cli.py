"""The `rag` command: parse options, call the core, render. Nothing else lives here."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from rag.errors import RagError
from rag.settings import Settings

if TYPE_CHECKING:  # the core's result types, for the renderers; imported lazily at run time
    from pydantic import ValidationError

    from rag.evaluation import Delta, EvalResult
    from rag.indexing import IndexReport, Plan


def _valueless(option: Any) -> Any:
    """typer shows a flag's type as "<bool>" in --help, its own --help too; a flag takes no
    value, so it shows none."""
    if option is not None:
        option.metavar = ""
    return option


class _Command(TyperCommand):
    def get_help_option(self, ctx: typer.Context) -> Any:
        return _valueless(super().get_help_option(ctx))


class _Group(TyperGroup):
    def get_help_option(self, ctx: typer.Context) -> Any:
        return _valueless(super().get_help_option(ctx))


app = typer.Typer(
    cls=_Group,
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
CollectionOpt = Annotated[
    str | None,
    typer.Option(
        "--collection",
        help="The collection to use (`rag collections` lists them) [env: RAG_COLLECTION; "
        "default: the current one, or the project's articles/ in a checkout].",
    ),
]
# metavar="": see _valueless.
JsonOpt = Annotated[
    bool, typer.Option("--json", metavar="", help="Print one JSON object instead of text.")
]


def _version(value: bool) -> None:
    """`rag --version`: print the version and stop."""
    if value:
        from rag import __version__

        out.print(f"rag {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            metavar="",
            help="Print rag's version and exit.",
        ),
    ] = False,
) -> None:
    """Build the one Settings object (environment, rag.toml) for every command."""
    from pydantic import ValidationError

    # Not a terminal (a pipe, a file): lines stay whole instead of being wrapped at 80 columns.
    for console in (out, err):
        console.soft_wrap = not console.is_terminal
    try:
        ctx.obj = Settings()
    except ValidationError as exc:  # a bad RAG_* value or rag.toml entry
        _invalid(exc)


def _settings(ctx: typer.Context, **options: Any) -> Settings:
    """The settings with the command-line options that were given (None: not given), reading
    the collection they name or the current one (rag/collection.py)."""
    from pydantic import ValidationError

    from rag import collection

    given = {k: v for k, v in options.items() if v is not None}
    try:
        settings = ctx.obj.with_overrides(**given)
    except ValidationError as exc:
        _invalid(exc)
    paths = {"articles_dir", "index_dir"}
    explicit = bool(paths & (set(given) | ctx.obj.model_fields_set))
    with _errors():
        return collection.resolve(settings, Path.cwd(), explicit)


def _invalid(exc: ValidationError) -> NoReturn:
    """One line per invalid setting, then exit 2 (a usage error)."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    )
    err.print(
        f"[red]error:[/] invalid settings: {escape(problems)}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(2) from exc


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the core's typed errors into one red line on stderr and exit status 1."""
    try:
        yield
    except RagError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


@contextmanager
def _progress_bars(enabled: bool, *labels: str) -> Iterator[list[Any]]:
    """One rich progress bar per label on one display, fed by the core's Progress callbacks.

    A bar appears when its work starts; disabled (not a terminal, or --json) they are silent.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from rag.indexing import Progress as CoreProgress

    if not enabled:
        yield [CoreProgress() for _ in labels]
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:

        def core(label: str) -> CoreProgress:
            task = bar.add_task(label, total=None, visible=False, note="")
            chunks = [0]

            def embedded(n: int) -> None:
                chunks[0] += n
                bar.update(task, note=f"{chunks[0]:,} chunks embedded")

            def sentences(total: int) -> None:
                # The chunks are stored; their sentences are embedded for the answerer.
                if total:
                    bar.update(task, description="Sentences", total=total, completed=0, note="")
                    bar.update(task, visible=True)

            return CoreProgress(
                start=lambda total: bar.update(task, total=total, visible=True),
                advance=lambda n: bar.advance(task, n),
                embedded=embedded,
                sentences=sentences,
                sentences_done=lambda n: bar.advance(task, n),
            )

        yield [core(label) for label in labels]


class LineProgress:
    """Plain progress lines for a stderr that is not a terminal (a log file, a pipe), so a long
    `rag index` shows life: one line when the work starts, then one every EVERY_SECONDS or
    EVERY_CHUNKS embedded chunks, whichever comes first."""

    EVERY_SECONDS = 10.0
    EVERY_CHUNKS = 1000

    def __init__(
        self, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.write = write
        self.clock = clock
        self.total = self.stored = self.chunks = self.chunks_shown = 0
        self.sentence_total = self.sentence_chunks = 0
        self.started = self.last = clock()

    def core(self) -> Any:
        """The core's Progress callbacks, bound to this printer."""
        from rag.indexing import Progress as CoreProgress

        return CoreProgress(
            start=self.start,
            advance=self.advance,
            embedded=self.embedded,
            sentences=self.sentences,
            sentences_done=self.sentences_done,
        )

    def start(self, total: int) -> None:
        self.total = total
        self.started = self.last = self.clock()
        if total:
            self.write(f"indexing {total} article{'' if total == 1 else 's'}")

    def advance(self, n: int) -> None:
        self.stored += n
        self._tick()

    def embedded(self, n: int) -> None:
        self.chunks += n
        self._tick()

    def sentences(self, total: int) -> None:
        self.sentence_total, self.sentence_chunks = total, 0
        if total:
            self.last = self.clock()
            self.write(f"embedding the sentences of {total:,} chunks (for answering)")

    def sentences_done(self, n: int) -> None:
        self.sentence_chunks += n
        now = self.clock()
        if now - self.last >= self.EVERY_SECONDS:
            self.last = now
            self.write(
                f"sentences: {self.sentence_chunks:,}/{self.sentence_total:,} chunks, "
                f"{now - self.started:.0f}s"
            )

    def _tick(self) -> None:
        now = self.clock()
        if (
            now - self.last < self.EVERY_SECONDS
            and self.chunks - self.chunks_shown < self.EVERY_CHUNKS
        ):
            return
        self.last, self.chunks_shown = now, self.chunks
        self.write(
            f"indexing: {self.stored}/{self.total} articles stored, {self.chunks:,} chunks "
            f"embedded, {now - self.started:.0f}s"
        )


@contextmanager
def _index_progress(as_json: bool) -> Iterator[Any]:
    """Progress of an index run: a bar on a terminal (none with --json), else plain lines."""
    if sys.stderr.isatty():
        with _progress_bars(not as_json, "Indexing") as (progress,):
            yield progress
        return

    def line(text: str) -> None:
        err.print(text, markup=False, highlight=False, soft_wrap=True)

    yield LineProgress(line).core()


@app.command(cls=_Command)
def index(
    ctx: typer.Context,
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="A folder of articles to index as a collection, from any directory; it "
            "becomes the current one [default: the current collection, or articles/ here].",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="The collection's name [default: the folder's name]."),
    ] = None,
    articles: ArticlesOpt = None,
    index_dir: IndexOpt = None,
    from_index: Annotated[
        Path | None,
        typer.Option(
            "--from-index",
            help="With FOLDER, a new collection starts from this existing index of the folder "
            "(copied, not re-embedded: one made before collections, or with RAG_INDEX_DIR) "
            "[default: FOLDER/../index or ./index, when made from FOLDER].",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            metavar="",
            help="Print the plan (and what is skipped, and why); change nothing.",
        ),
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild", metavar="", help="Re-embed everything (built aside, then swapped in)."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Index the articles folder, embedding only added or changed articles.

    Example: `rag index ~/news` (a collection of its own, then `rag ask` from anywhere), `rag
    index` in a checkout, and after adding files `rag index --dry-run` to see the plan.
    """
    from rag import collection, indexing

    settings = _settings(ctx, articles_dir=articles, index_dir=index_dir)
    with _errors():
        if folder is None and from_index is not None:
            raise collection.CollectionError("--from-index needs the FOLDER it was made from")
        if folder is not None:
            chosen = collection.for_folder(settings, folder, name)
            settings = collection.apply_to(settings, chosen)
            try:
                found = _earlier_index(settings, chosen, from_index)
            except collection.CollectionError:
                if not chosen.index_dir.exists():  # made just now: no trace of it stays
                    collection.remove(settings, chosen.name)
                raise
            collection.use(settings, chosen.name)
            err.print(
                f"collection {escape(chosen.name)}: {escape(str(chosen.folder))} (now current)",
                highlight=False,
            )
            if found is not None:
                if dry_run:  # plan against it, as the copy would be
                    settings = settings.with_overrides(index_dir=found)
                else:
                    collection.adopt(chosen, found)
                err.print(
                    f"{'would start' if dry_run else 'started'} from the index in "
                    f"{escape(str(found))} (made from this folder; copied, not re-embedded)",
                    highlight=False,
                )
        plan = indexing.plan(settings, rebuild=rebuild)
        if plan.reread and not as_json:
            from rag.articles import READER_CHANGE

            n = len(plan.reread)
            err.print(
                f"[dim]{n} of the changed articles {'is' if n == 1 else 'are'} read again, not "
                f"changed ({READER_CHANGE}); passages whose text is the same keep their vectors[/]",
                highlight=False,
            )
        if dry_run:
            _render_plan(plan, as_json)
            return
        with _index_progress(as_json) as progress:
            report = indexing.apply(settings, plan, progress)
    _render_report(report, as_json)


def _earlier_index(settings: Settings, chosen: Any, given: Path | None) -> Path | None:
    """An index made from the new collection's folder before it was one, to start from:
    --from-index (an error when it can't serve), else FOLDER/../index or ./index if either
    can (rag/collection.py adoptable); None when the collection has an index already."""
    from rag import collection

    if chosen.index_dir.exists():
        if given is not None:
            raise collection.CollectionError(
                f"the collection {chosen.name!r} has an index already; `rag collections "
                f"--remove {chosen.name}` first to start it from {given}"
            )
        return None
    candidates = [given] if given else [chosen.folder.parent / "index", Path.cwd() / "index"]
    for candidate in dict.fromkeys(c.expanduser().resolve() for c in candidates):
        why = collection.adoptable(settings, chosen.folder, candidate)
        if why is None:
            return candidate
        if given is not None:
            raise collection.CollectionError(f"cannot start from --from-index: {why}")
    return None


def _render_plan(plan: Plan, as_json: bool) -> None:
    if as_json:
        _print_json(
            {
                "added": plan.added,
                "changed": plan.changed,
                "deleted": plan.deleted,
                "unchanged": plan.unchanged,
                "skipped": {rel: plan.skip_reasons[rel] for rel in plan.skipped},
                "aliases": {k: v for k, v in plan.aliases.items() if v},
                "rebuild": plan.rebuild_reason,
                "retokenize": plan.retokenize,
                "resentence": plan.resentence,
                "warnings": plan.warnings,
            }
        )
    else:
        from rag.render import print_plan

        print_plan(out, err, plan)


def _render_report(report: IndexReport, as_json: bool) -> None:
    if as_json:
        _print_json(asdict(report))
    else:
        from rag.render import print_report

        print_report(out, err, report)


@app.command(cls=_Command)
def sources(
    ctx: typer.Context,
    use_collection: CollectionOpt = None,
    index_dir: IndexOpt = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", metavar="", help="Print a JSON array, one object per article, instead."
        ),
    ] = False,
) -> None:
    """List the indexed articles: file, title, date, source, chunk count.

    Piped or redirected, one tab-separated line an article, after a header line.
    Example: `rag sources | cut -f1,5`, or `rag sources --json | jq '.[].file'`
    """
    from rag.indexing import checked_manifest, staleness
    from rag.store import IndexMissing

    settings = _settings(ctx, index_dir=index_dir, collection=use_collection)
    with _errors():
        manifest = checked_manifest(settings)
        if manifest is not None and (stale := staleness(settings, manifest).note):
            err.print(f"[yellow]note:[/] {escape(stale)}", highlight=False, soft_wrap=True)
        if not (manifest and manifest.articles) and not as_json:  # --json prints [] instead
            missing = IndexMissing.empty if manifest else IndexMissing.nowhere
            raise missing(settings.index_dir)
    articles = manifest.articles if manifest else {}
    if as_json:
        _print_json(
            [
                {
                    "file": rel,
                    "title": e.title,
                    "date": e.date,
                    "source": e.source,
                    "chunks": len(e.chunks),
                    "aliases": e.aliases,
                }
                for rel, e in articles.items()
            ]
        )
        return
    from rag.render import print_articles

    print_articles(out, articles)


@app.command(cls=_Command)
def add(
    ctx: typer.Context,
    items: Annotated[list[str], typer.Argument(help="Files, folders or http(s) URLs.")],
    use_collection: CollectionOpt = None,
    articles: ArticlesOpt = None,
    index_dir: IndexOpt = None,
    no_index: Annotated[
        bool, typer.Option("--no-index", metavar="", help="Only copy/download.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy files into the articles folder, or download URLs as articles, then index.

    Each item is added on its own: one that fails is reported and the rest are still added
    and indexed; the exit status is 1 if any failed.
    Example: `rag add ~/Downloads/story.html https://apnews.com/article/...`
    """
    from rag import indexing
    from rag.ingest import add_items

    settings = _settings(ctx, articles_dir=articles, index_dir=index_dir, collection=use_collection)
    with _errors():
        results = add_items(settings, items)
        by_status = {
            s: [r for r in results if r.status == s] for s in ("added", "present", "failed")
        }
        for r in by_status["failed"]:
            err.print(f"[red]error:[/] {escape(r.error or '')}", highlight=False, soft_wrap=True)
        if not as_json:
            for r in by_status["added"]:
                out.print(
                    f"[green]added[/] {escape(r.dest.name)}  [dim]({escape(r.origin)})[/]",
                    highlight=False,
                    soft_wrap=True,
                )
            for r in by_status["present"]:
                out.print(
                    f"[dim]present[/] {escape(r.origin)}: already in the articles folder as "
                    f"{escape(r.dest.name)}",
                    highlight=False,
                    soft_wrap=True,
                )
            if len(results) > 1:
                out.print(
                    f"add: {len(by_status['added'])} added, {len(by_status['present'])} already "
                    f"there, {len(by_status['failed'])} failed",
                    highlight=False,
                )
        report = None
        if not no_index and len(by_status["failed"]) < len(results):
            plan = indexing.plan(settings)
            with _index_progress(as_json) as progress:
                report = indexing.apply(settings, plan, progress)
    if as_json:
        _print_json(
            {
                "added": [{"file": r.dest.name, "origin": r.origin} for r in by_status["added"]],
                "present": [
                    {"file": r.dest.name, "origin": r.origin} for r in by_status["present"]
                ],
                "failed": [{"origin": r.origin, "error": r.error} for r in by_status["failed"]],
                "index": asdict(report) if report else None,
            }
        )
    elif report:
        _render_report(report, False)
    if by_status["failed"]:
        raise typer.Exit(1)


KOpt = Annotated[
    int | None, typer.Option("--k", "-k", min=1, help="Passages to retrieve [env: RAG_K].")
]
LlmOpt = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="extractive | local:MODEL (a .gguf file, smollm2-135m, qwen2.5-coder-0.5b or "
        "qwen2.5-coder-1.5b, run in process) | ollama:MODEL | openai:MODEL | auto (an LLM if "
        "configured) [env: RAG_LLM].",
    ),
]

FallbackOpt = Annotated[
    bool,
    typer.Option(
        "--fallback",
        metavar="",
        help="When verification refuses an LLM's answer (no sentence of it is supported), "
        "give the extractive answer instead, labelled as such [env: RAG_LLM_FALLBACK; "
        "default: off].",
    ),
]


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2022-08-19") from None


AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="Answer as of that day: articles published later are left out, and 'this week' or "
        "'latest' mean just before it [env: RAG_AS_OF; default: every article].",
    ),
]


AllOpt = Annotated[
    bool,
    typer.Option(
        "--all",
        metavar="",
        help="Show the best answer even when rag judges it unlikely to answer the question "
        "(below min_confidence), marked as unsure, instead of withholding it [env: "
        "RAG_SHOW_WITHHELD; default: off].",
    ),
]


@app.command(cls=_Command)
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="Your question, in quotes.")],
    k: KOpt = None,
    llm: LlmOpt = None,
    fallback: FallbackOpt = False,
    show_all: AllOpt = False,
    use_collection: CollectionOpt = None,
    index_dir: IndexOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer one question from the indexed articles, citing the passages used.

    Every answer says how likely rag judges it to answer the question; one too unlikely is
    withheld (--all shows it, marked). Example: `rag ask "Where is the drone factory being
    built?"`, or `rag ask --as-of 2023-11-01 "What did Iran send Russia this week?"`
    """
    from rag.indexing import freshen
    from rag.pipeline import Pipeline, to_json
    from rag.render import StageLine, TokenPrinter, print_answer

    settings = _settings(
        ctx,
        index_dir=index_dir,
        k=k,
        llm=llm,
        llm_fallback=fallback or None,
        as_of=_as_of(as_of),
        show_withheld=show_all or None,
        collection=use_collection,
    )
    # What it is doing, on one line of the terminal's stderr, until the answer prints.
    stages = StageLine(err)
    printer = TokenPrinter(out, stages)

    with _errors(), stages:
        # Articles added since `rag index`: indexed first when that is quick, else said first
        # (--json: in its note).
        stages("looking for articles added since the last index")
        fresh = freshen(settings).note
        if fresh and not as_json:
            err.print(f"[yellow]note:[/] {escape(fresh)}", highlight=False, soft_wrap=True)
        stages("loading the embedding model")
        pipeline = Pipeline(settings, on_stage=stages)
        streaming = not as_json and pipeline.answerer().streams
        answer = pipeline.ask(question, on_token=printer if streaming else None)
        if as_json:
            answer = answer.noted(fresh)
    if as_json:
        if answer.note:
            err.print(f"[yellow]note:[/] {answer.note}", highlight=False, soft_wrap=True)
        _print_json(to_json(answer))
        return
    printer.finish()
    print_answer(out, err, answer, streamed=printer.printed)


@app.command(cls=_Command)
def chat(
    ctx: typer.Context,
    k: KOpt = None,
    llm: LlmOpt = None,
    fallback: FallbackOpt = False,
    use_collection: CollectionOpt = None,
    index_dir: IndexOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """Ask questions in a conversation: follow-ups, /sources, /open N, /help; Ctrl-D leaves.

    Example: `rag chat`, then "Where is the drone factory?" and "and what about missiles?"
    """
    from rag import chat as repl

    settings = _settings(
        ctx,
        index_dir=index_dir,
        k=k,
        llm=llm,
        llm_fallback=fallback or None,
        as_of=_as_of(as_of),
        collection=use_collection,
    )
    with _errors():
        repl.run(settings, out, err)


SetOpt = Annotated[
    Path | None,
    typer.Option("--set", help="Questions, one JSON object a line [default: eval/qa.jsonl]."),
]


@app.command("use", cls=_Command)
def use_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A collection's name (`rag collections`).")],
) -> None:
    """Make a collection the current one: `rag ask`, `chat`, `sources` and `add` use it.

    Example: `rag use news`, then `rag ask "..."` from any directory.
    """
    from rag import collection

    with _errors():
        chosen = collection.use(ctx.obj, name)
    out.print(f"current collection: {escape(chosen.name)} ({escape(str(chosen.folder))})")


@app.command("collections", cls=_Command)
def collections_command(
    ctx: typer.Context,
    remove: Annotated[
        str | None,
        typer.Option(
            "--remove",
            metavar="NAME",
            help="Delete that collection's index (never its articles folder).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="Print a JSON array instead.")
    ] = False,
) -> None:
    """List the collections: name, folder, articles, chunks, last indexed, model, size.

    Example: `rag collections`, `rag collections --remove old-news`. Collections live under
    the user data directory (RAG_DATA_DIR overrides it).
    """
    from rag import collection

    settings = ctx.obj
    with _errors():
        if remove is not None:
            gone = collection.remove(settings, remove)
            out.print(f"removed the collection {escape(gone.name)} (its folder is untouched)")
            return
        infos = [collection.info(settings, c) for c in collection.all_collections(settings)]
    if as_json:
        _print_json([asdict(i) for i in infos])
        return
    if not infos:
        out.print(
            f"no collections yet in {escape(str(collection.data_dir(settings)))}: "
            "`rag index FOLDER` makes one"
        )
        return
    from rag.render import print_collections

    print_collections(out, infos)


@app.command("eval", cls=_Command)
def eval_command(
    ctx: typer.Context,
    set_path: SetOpt = None,
    articles: Annotated[
        Path | None,
        typer.Option(
            "--articles",
            help="Articles the set asks about [default: the articles/ folder beside the set "
            "file or its parent; for the shipped set, the shipped articles].",
        ),
    ] = None,
    index_dir: Annotated[
        Path | None,
        typer.Option(
            "--index",
            help="Eval index folder, updated incrementally [default: "
            ".rag-eval/NAME-HASH beside the main index, named for the articles folder; the main "
            "index is not touched].",
        ),
    ] = None,
    use_collection: Annotated[
        str | None,
        typer.Option(
            "--collection",
            help="Ask the set over a collection's articles, with its own index (nothing "
            "embedded again); needs --set [env: RAG_COLLECTION].",
        ),
    ] = None,
    k: KOpt = None,
    llm: LlmOpt = None,
    fallback: FallbackOpt = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="YYYY-MM-DD",
            help="Ask every question as of that day (see `rag ask --help`); a question's own "
            '"asked" date wins [default: every article].',
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where results.jsonl and summary.json go [default: eval/out/SET-NAME/]."
        ),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option("--compare", help="An earlier summary.json (or its folder): show deltas."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            metavar="",
            help="Keep the answers an interrupted run left in OUT (same set and answerer) and "
            "ask only the rest: a slow local model's run goes on where it stopped.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", metavar="", help="Print the summary (and deltas) as one JSON object."
        ),
    ] = False,
) -> None:
    """Score the ask pipeline on a question set: retrieval, answers, citations, refusals.

    Indexes the set's articles into an index of its own, asks every question exactly as
    `rag ask --json` would, and writes OUT/results.jsonl (one judged answer a line) and
    OUT/summary.json. Example: `rag eval --compare eval/out/qa/summary.json` after a change
    (`rag compare OLD NEW` compares two saved runs without running anything).
    """
    from rag import evaluation

    with _errors():
        old = evaluation.load_summary(compare) if compare is not None else None
        set_file = set_path or evaluation.resolve_default(evaluation.DEFAULT_SET)
        articles_dir = articles or evaluation.default_articles(set_file)
        base = _settings(
            ctx,
            articles_dir=articles_dir,
            k=k,
            llm=llm,
            llm_fallback=fallback or None,
            as_of=_as_of(as_of),
            collection=use_collection,
        )
        if base.collection:  # the collection's folder, and its index (brought up to date)
            _check_collection_eval(base.collection, set_path, articles)
            settings = base.with_overrides(index_dir=index_dir or base.index_dir)
        else:
            settings = base.with_overrides(
                index_dir=index_dir or evaluation.default_index_dir(base, articles_dir)
            )
        out_folder = out_dir or evaluation.default_out_dir(set_file)
        bars = _progress_bars(not as_json and sys.stderr.isatty(), "Embedding", "Asking")
        with bars as (indexing, asking):
            result = evaluation.run(
                settings,
                set_file,
                out_folder,
                index_progress=indexing,
                ask_progress=asking,
                resume=resume,
            )
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    deltas = evaluation.compare(old, result.summary) if old is not None else None
    notes = evaluation.compare_notes(old, result.summary) if old is not None else []
    if as_json:
        # summary.json's, with each failure's question and answer (as the table shows them).
        data = {**result.summary, "failed": [asdict(f) for f in result.failures]}
        if deltas is not None:
            data["compare"] = _deltas(deltas)
            data["compare_notes"] = notes
        _print_json(data)
        return
    _render_eval(result)
    if deltas is not None:
        _render_compare(deltas, str(compare), str(result.summary_path), notes)
    _next_steps(result)


def _check_collection_eval(name: str, set_path: Path | None, articles: Path | None) -> None:
    """A collection's eval needs a set about its articles, and no second articles folder."""
    from rag.collection import CollectionError

    if articles is not None:
        raise CollectionError(f"--articles and the collection {name!r} name two folders; give one")
    if set_path is None:
        raise CollectionError(
            f"name a question set about the collection {name!r} with --set FILE (the default "
            "set asks about the shipped articles)"
        )


def _next_steps(result: EvalResult) -> None:
    """Where the run it replaced went, and what to look at next, as commands to paste (in
    lines that fit the report: render.shell_lines)."""
    from rag.render import report_width, shell_lines

    width = report_width(out)
    folder = result.summary_path.parent
    steps: list[tuple[str, list[str]]] = []
    if result.previous is not None:
        out.print(f"[dim]the run before it: {escape(str(result.previous))}[/]", highlight=False)
        steps.append(("compare them:", ["rag", "compare", str(result.previous), str(folder)]))
    if result.failures:
        first = result.failures[0]
        steps.append(
            (f"one failure in full ({first.id}):", ["rag", "ask", first.question, "--json"])
        )
    for label, words in steps:
        out.print(f"[dim]{escape(label)}[/]", highlight=False)
        for line in shell_lines(words, width):
            out.print(f"[dim]{escape(line)}[/]", highlight=False, overflow="ignore", crop=False)


@app.command("compare", cls=_Command)
def compare_command(
    old: Annotated[Path, typer.Argument(help="The earlier summary.json (or its folder).")],
    new: Annotated[Path, typer.Argument(help="The later summary.json (or its folder).")],
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="Print the deltas as one JSON object.")
    ] = False,
) -> None:
    """Compare two saved `rag eval` runs metric by metric, without running anything.

    Example: `rag compare eval/out/qa-before eval/out/qa` (each a summary.json or its folder).
    """
    from rag import evaluation

    with _errors():
        before, after = evaluation.load_summary(old), evaluation.load_summary(new)
    deltas = evaluation.compare(before, after)
    notes = evaluation.compare_notes(before, after)
    if as_json:
        _print_json({"old": str(old), "new": str(new), "deltas": _deltas(deltas), "notes": notes})
    else:
        _render_compare(deltas, str(old), str(new), notes)


def _render_eval(result: EvalResult) -> None:
    from rag.render import print_eval

    print_eval(out, result)


def _deltas(deltas: list[Delta]) -> list[dict[str, Any]]:
    return [asdict(d) for d in deltas]


def _render_compare(deltas: list[Delta], old: str, new: str, notes: list[str]) -> None:
    from rag.render import print_compare

    print_compare(out, err, deltas, old, new, notes)


def main() -> None:
    """Console-script entry point."""
    app()
