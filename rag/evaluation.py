"""Run a question set through the ask pipeline on an index of its own, score it, compare runs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel

from rag import scoring
from rag.answering.local import weights_dtype
from rag.errors import RagError
from rag.indexing import IndexReport, Progress
from rag.measure import load_average, machine
from rag.settings import PROJECT_ROOT, Settings

DEFAULT_SET = Path("eval/qa.jsonl")
DEFAULT_ARTICLES = Path("articles")
DEFAULT_OUT = Path("eval/out")
RESULTS = "results.jsonl"
SUMMARY = "summary.json"
PICTURE = "judgement.svg"  # the risk-coverage curve and reliability diagram

# Metrics where a smaller number is the better one; counts and k have no direction; for the
# rest, higher is better.
LOWER_IS_BETTER = frozenset(
    {
        "false_refusal_rate",
        "latency_ms_p10",
        "latency_ms_p50",
        "latency_ms_p90",
        "latency_ms_p95",
        "seconds",
    }
)
# Timings: they measure the machine and its load as much as rag, so `rag compare` shows them
# apart from the quality metrics and judges their changes against the runs' own spread.
TIMINGS = frozenset(
    {"latency_ms_p10", "latency_ms_p50", "latency_ms_p90", "latency_ms_p95", "seconds"}
)
_NO_DIRECTION = frozenset({"n", "n_answerable", "n_unanswerable", "k"})
# Fields of scoring.judge's verdict already present in the ask object they are added to.
_ASK_FIELDS = frozenset({"id", "type", "question", "answer", "refused"})


class EvalError(RagError):
    """The question set, a summary or the eval folders cannot be used."""


@dataclass(frozen=True)
class Question:
    """One line of an eval set: the question, acceptable answers, the articles holding them."""

    id: str
    question: str
    answers: list[str]
    sources: list[str]
    type: str
    asked: date | None = None  # the day it was asked: answered from the articles of that day


@dataclass(frozen=True)
class Failure:
    """A question the run failed: how (a scoring.FAILURE_LABELS label), and what was asked and
    answered, so the report shows it without a look into results.jsonl."""

    id: str
    label: str
    question: str
    answer: str
    refused: bool


@dataclass
class EvalResult:
    """What an eval run wrote, and its summary (the contents of summary.json)."""

    summary: dict[str, Any]
    results_path: Path
    summary_path: Path
    index: IndexReport | None
    warnings: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    previous: Path | None = None  # where the run this one replaced in OUT was moved, if any


@dataclass(frozen=True)
class Delta:
    """One metric of two summaries; `better` is None when unchanged or not comparable, and for
    a timing change the runs' own spread explains (see timing_spread)."""

    metric: str
    old: float | None
    new: float | None
    delta: float | None
    better: bool | None
    timing: bool = False
    # For a per-question latency: whether the change is smaller than the larger of the two
    # runs' spreads (None: a run recorded no spread, or not a latency).
    within_spread: bool | None = None


def resolve_default(path: Path) -> Path:
    """A default relative path from the cwd when it exists there, else from the project root."""
    if path.is_absolute() or path.exists():
        return path
    shipped = PROJECT_ROOT / path
    return shipped if shipped.exists() else path


def default_index_dir(settings: Settings, articles_dir: Path) -> Path:
    """The eval index for an articles folder: `.rag-eval/<name>-<hash>` beside the main index.

    One per articles folder (named from its absolute path), so re-runs only embed what changed
    and the main index is never touched.
    """
    absolute = articles_dir.expanduser().resolve()
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(absolute.parts[-2:]).lower()).strip("-")
    digest = hashlib.sha256(str(absolute).encode()).hexdigest()[:8]
    return settings.index_dir.expanduser().absolute().parent / ".rag-eval" / f"{slug}-{digest}"


def default_articles(set_path: Path) -> Path:
    """The `articles/` folder beside the set file or its parent (the shipped one for eval/)."""
    for folder in (set_path.parent / "articles", set_path.parent.parent / "articles"):
        if folder.is_dir():
            return folder
    return resolve_default(DEFAULT_ARTICLES)


def default_out_dir(set_path: Path) -> Path:
    """eval/out/<set file stem>/ under the current directory."""
    return DEFAULT_OUT / set_path.stem


def _strings(value: Any, key: str, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EvalError(f'{where}: "{key}" must be a list of strings')
    return value


def load_questions(path: Path) -> list[Question]:
    """Parse and check a JSONL eval set; errors name the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EvalError(f"questions file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"cannot read questions file {path}: {exc}") from None
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise EvalError(f"{where}: expected a JSON object")
        text = row.get("question")
        if not isinstance(text, str) or not text.strip():
            raise EvalError(f'{where}: "question" must be a non-empty string')
        qid = str(row.get("id") or f"line-{number}")
        if qid in seen:
            raise EvalError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        answers = _strings(row.get("answers"), "answers", where)
        day = row.get("asked")
        try:
            asked = date.fromisoformat(day) if day is not None else None
        except (TypeError, ValueError):
            raise EvalError(f'{where}: "asked" must be a date like "2022-08-19"') from None
        questions.append(
            Question(
                id=qid,
                question=text,
                answers=answers,
                sources=_strings(row.get("sources"), "sources", where),
                type=str(row.get("type") or "unknown"),
                asked=asked,
            )
        )
    if not questions:
        raise EvalError(f"no questions in {path}")
    return questions


def prepare_index(
    settings: Settings, embedder: Embeddings, progress: Progress | None = None
) -> tuple[IndexReport | None, list[str]]:
    """Bring the eval index up to date with its articles folder (incrementally)."""
    from rag import indexing

    the_plan = indexing.plan(settings)
    if not the_plan.files:
        raise EvalError(f"no articles to evaluate on in {settings.articles_dir}")
    if the_plan.is_noop:
        return None, [*the_plan.warnings, *the_plan.skip_warnings().values()]
    report = indexing.apply(settings, the_plan, progress, embedder)
    return report, report.warnings


def index_fingerprint(settings: Settings) -> dict[str, Any]:
    """The manifest's fingerprint plus a digest of every indexed article's content hash and
    the BM25 tokenizer's version."""
    from rag.indexing import current_manifest
    from rag.lexical import TOKENIZER_VERSION

    _, manifest = current_manifest(settings)
    if manifest is None:
        raise EvalError(f"no index in {settings.index_dir}")
    digest = hashlib.sha256()
    for rel, entry in sorted(manifest.articles.items()):
        digest.update(f"{rel}\0{entry.hash}\n".encode())
    return {
        **manifest.fingerprint,
        "articles_digest": digest.hexdigest()[:16],
        "n_articles": len(manifest.articles),
        "n_chunks": sum(len(e.chunks) for e in manifest.articles.values()),
        "tokenizer_version": TOKENIZER_VERSION,
    }


def selector_provenance(settings: Settings) -> dict[str, Any] | None:
    """What fitted the learned sentence selector the run used (None with hand-set weights)."""
    if settings.tuning.selector != "learned":
        return None
    from rag.answering import selector

    model = selector.load()
    return {"fingerprint": model.fingerprint, "threshold": model.threshold}


def _source_warnings(questions: list[Question], settings: Settings) -> list[str]:
    """Questions whose expected articles are not in the folder (a guaranteed retrieval miss)."""
    from rag.indexing import current_manifest

    _, manifest = current_manifest(settings)
    present: set[str] = set()
    for rel, entry in (manifest.articles if manifest else {}).items():
        present.update(Path(name).name.lower() for name in (rel, *entry.aliases))
    missing = [
        q.id
        for q in questions
        if q.sources and not any(Path(s).name.lower() in present for s in q.sources)
    ]
    if not missing:
        return []
    shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
    return [f"{len(missing)} question(s) name no article found in the index: {shown}"]


def run(
    settings: Settings,
    set_path: Path,
    out_dir: Path,
    *,
    embedder: Embeddings | None = None,
    chat_model: BaseChatModel | None = None,
    index_progress: Progress | None = None,
    ask_progress: Progress | None = None,
    resume: bool = False,
) -> EvalResult:
    """Index settings.articles_dir into settings.index_dir, ask every question, score, write.

    Each result is appended to OUT/results.jsonl as soon as it is judged, so memory stays bounded
    and an interrupted run leaves what it did; OUT/summary.json is written at the end. resume:
    keep the answers an interrupted run of the same set and answerer left there (re-judged, not
    re-asked) and ask only the rest.
    """
    from rag import __version__
    from rag.embedding import query_embedder
    from rag.pipeline import Pipeline, to_json

    questions = load_questions(set_path)
    started = time.perf_counter()
    embedder = embedder or query_embedder(settings)
    report, warnings = prepare_index(settings, embedder, index_progress)
    warnings.extend(_source_warnings(questions, settings))

    pipeline = Pipeline(settings, embedder=embedder, chat_model=chat_model)
    answerer = pipeline.answerer().name
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path, summary_path = out_dir / RESULTS, out_dir / SUMMARY
    kept = _resumable(results_path, questions, answerer) if resume else {}
    previous = None if resume else keep_previous(out_dir)
    summary_path.unlink(missing_ok=True)  # no stale summary beside a new, partial results file

    ask_progress = ask_progress or Progress()
    ask_progress.start(len(questions))
    load_at_start = load_average()
    verdicts: list[dict[str, Any]] = []
    with results_path.open("w", encoding="utf-8") as fh:
        for q in questions:
            if q.id in kept:
                record = kept[q.id]  # judged again, against the set as it is now
                record.update(expected_answers=q.answers, expected_sources=q.sources, type=q.type)
                verdict = scoring.judge(record)
                record["verdict"] = {
                    key: value for key, value in verdict.items() if key not in _ASK_FIELDS
                }
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                verdicts.append(verdict)
                ask_progress.advance(1)
                continue
            # A question's own "asked" day wins over the run's --as-of.
            asked = (
                pipeline.with_settings(settings.with_overrides(as_of=q.asked))
                if q.asked
                else pipeline
            )
            answer = asked.ask(q.question)
            record = to_json(answer)
            for item, passage in zip(record["retrieved"], answer.passages, strict=True):
                item["text"] = passage.text
            record.update(
                id=q.id, expected_answers=q.answers, expected_sources=q.sources, type=q.type
            )
            verdict = scoring.judge(record)
            record["verdict"] = {
                key: value for key, value in verdict.items() if key not in _ASK_FIELDS
            }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            verdicts.append(verdict)
            ask_progress.advance(1)

    summary = scoring.summarize(verdicts)
    summary["failed_ids"] = {
        label: [v["id"] for v in verdicts if v["failure"] == label]
        for label in scoring.FAILURE_LABELS
    }
    summary.update(
        answerer=answerer,
        llm_fallback=settings.llm_fallback,
        resumed=len(kept),
        local_dtype=weights_dtype(settings.local_dtype) if answerer.startswith("local:") else None,
        k=settings.k,
        as_of=settings.as_of.isoformat() if settings.as_of else None,
        dated_questions=sum(1 for q in questions if q.asked),
        version=__version__,
        set=str(set_path.resolve()),
        articles=str(settings.articles_dir.resolve()),
        index=str(settings.index_dir.resolve()),
        fingerprint=index_fingerprint(settings),
        retrieval={
            "candidates": settings.candidates,
            "fusion": settings.fusion,
            "max_per_article": settings.max_per_article,
            "context_chunks": settings.context_chunks,
            "rrf_k": settings.rrf_k,
            "dense_weight": settings.dense_weight,
            "lexical_weight": settings.lexical_weight,
            "refusal_threshold": settings.refusal_threshold,
        },
        tuning=settings.tuning.model_dump(),
        selector=selector_provenance(settings),
        machine=machine(),
        # While the questions were asked: timings of two runs compare on equal loads only.
        load_average={"start": load_at_start, "end": load_average()},
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 2),
    )
    _draw(verdicts, summary, out_dir, out_dir.name)
    tmp = summary_path.with_name(f".{SUMMARY}.tmp")
    tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, summary_path)
    failures = [
        Failure(v["id"], v["failure"], v["question"] or "", v["answer"], v["refused"])
        for v in verdicts
        if v["failure"] is not None
    ]
    return EvalResult(summary, results_path, summary_path, report, warnings, failures, previous)


def keep_previous(out_dir: Path) -> Path | None:
    """Move a finished earlier run out of out_dir, to OUT-<its timestamp> beside it, so a new
    run never overwrites one (rag compare reads both); None when there is none."""
    summary = out_dir / SUMMARY
    if not summary.is_file():
        return None
    try:
        stamp = str(json.loads(summary.read_text(encoding="utf-8")).get("timestamp") or "")
    except ValueError:
        stamp = ""
    stamp = re.sub(r"[^0-9T]", "", stamp.split("+")[0]) or "earlier"
    dest = out_dir.with_name(f"{out_dir.name}-{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = out_dir.with_name(f"{out_dir.name}-{stamp}-{n}")
    out_dir.rename(dest)
    out_dir.mkdir(parents=True)
    return dest


def _draw(
    verdicts: list[dict[str, Any]], summary: dict[str, Any], out_dir: Path, name: str
) -> None:
    """OUT/judgement.svg: the judged answers' risk-coverage curve and reliability diagram."""
    from rag.plots import judgement_svg

    scored = [
        (float(v["probability"]), bool(v["guess_right"]))
        for v in verdicts
        if v.get("probability") is not None
    ]
    path = out_dir / PICTURE
    if not scored:
        path.unlink(missing_ok=True)
        return
    curve = scoring.selective_figures(scored, len(verdicts))["curve"]
    title = (
        f"{name}: {len(verdicts)} questions, {len(scored)} judged; answered "
        f"{summary['coverage']:.2f} at precision {summary['presented_precision'] or 0:.2f}"
    )
    svg = judgement_svg(curve, scoring.reliability(scored), summary["coverage"], title)
    path.write_text(svg, encoding="utf-8")
    summary["picture"] = str(path)


def _resumable(
    results_path: Path, questions: list[Question], answerer: str
) -> dict[str, dict[str, Any]]:
    """The answers an interrupted run left in results_path, by question id: each must be to
    this set's question, by this answerer (a fallback counts as its LLM's), else EvalError."""
    if not results_path.is_file():
        return {}
    asked = {q.id: q.question for q in questions}
    kept: dict[str, dict[str, Any]] = {}
    for record in read_results(results_path):
        by = record.get("fallback_from") or record.get("answerer")
        if by != answerer or asked.get(record.get("id", "")) != record.get("question"):
            raise EvalError(
                f"--resume: {results_path} holds an answer to {record.get('id')!r} by {by} "
                f"that is not this set's question by {answerer}; give another --out, or drop "
                "--resume to start over"
            )
        kept[record["id"]] = record
    return kept


def read_results(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a results.jsonl, one at a time."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_summary(path: Path) -> dict[str, Any]:
    """A summary.json written by an earlier run (or an OUT folder holding one)."""
    if path.is_dir():
        path = path / SUMMARY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalError(f"summary not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalError(f"cannot read summary {path}: {exc}") from None
    if not isinstance(data, dict) or "n" not in data:
        raise EvalError(f"{path} is not an eval summary (no 'n' field)")
    return data


def timing_spread(summary: Mapping[str, Any]) -> float | None:
    """A run's own spread of per-question latency, p90 - p10 in ms (None: not recorded)."""
    p10, p90 = summary.get("latency_ms_p10"), summary.get("latency_ms_p90")
    return p90 - p10 if p10 is not None and p90 is not None else None


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Delta]:
    """Metric-by-metric deltas (scoring.compare), each marked better or worse.

    A latency change smaller than the larger of the two runs' p90 - p10 spreads is within what
    the runs' own variation explains: marked neither better nor worse.
    """
    before_spread, after_spread = timing_spread(old), timing_spread(new)
    noise = None
    if before_spread is not None and after_spread is not None:
        noise = max(before_spread, after_spread)
    deltas: list[Delta] = []
    for metric, before, after, delta in scoring.compare(old, new):
        better = within = None
        if metric.startswith("latency_ms") and delta is not None and noise is not None:
            within = abs(delta) < noise
        if delta and metric not in _NO_DIRECTION and not within:
            better = (delta < 0) if metric in LOWER_IS_BETTER else (delta > 0)
        deltas.append(Delta(metric, before, after, delta, better, metric in TIMINGS, within))
    return deltas


def compare_notes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Why two runs may not be comparable: other questions, articles, index or answerer."""
    notes = []
    if old.get("set") != new.get("set"):
        notes.append(f"different question sets: {old.get('set')} vs {new.get('set')}")
    before, after = old.get("fingerprint") or {}, new.get("fingerprint") or {}
    changed = sorted(key for key in {*before, *after} if before.get(key) != after.get(key))
    if changed:
        notes.append("index fingerprint differs: " + ", ".join(changed))
    for key in ("answerer", "k", "retrieval"):
        if old.get(key) != new.get(key):
            notes.append(f"{key} differs: {old.get(key)} vs {new.get(key)}")
    loads = [(s.get("load_average") or {}).get("start") for s in (old, new)]
    if all(loads):
        notes.append(
            "timings depend on the machine's load: 1-minute load average at the start "
            f"{loads[0][0]:g} (old) vs {loads[1][0]:g} (new)"
        )
    return notes
