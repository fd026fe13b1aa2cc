"""`python bench/defences.py`: the own time of the defences against text addressed to an AI
(issue 31), measured inside real runs: what they add to an answer, and their share of indexing.

- Answers: the shipped set's questions (or --set/--index) through the real pipeline, with the
  extractive answerer and with an in-process chat model that quotes passage [1] (as an LLM
  answer goes through evidence blanking, the refusal check and screening). The time spent in
  the output layer (injection.flags, injection.evidence, pipeline._order_in,
  screening.screened; outermost calls only) is clocked per answer; medians over --runs asks of
  each question.
- Indexing: --articles articles of rtqa-2022 plus the attack suite's HTML pages, indexed from
  scratch --runs times; the time in the ingest layer (visible.strip_invisible, visible_tree)
  and in detection (injection.find) against the whole `indexing.apply`.

Targets (issue 31): at most 20 ms an answer, at most 5% of indexing.

    python bench/defences.py --runs 3 --json bench/defences.json
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from rag.measure import machine, percentile
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RTQA = ROOT.parent / "shared" / "bench" / "rtqa-2022"
SUITE = ROOT / "eval" / "injection" / "articles"


class Clock:
    """Seconds spent in the functions it wraps, outermost calls only (a wrapped function that
    calls another is counted once)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - started

        return timed


@contextmanager
def clocked(clock: Clock, *targets: tuple[Any, str]) -> Iterator[None]:
    """The (module, name) functions wrapped by clock for the duration."""
    saved = [(module, name, getattr(module, name)) for module, name in targets]
    for module, name, fn in saved:
        setattr(module, name, clock.wrap(fn))
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


class QuotingModel(BaseChatModel):
    """Answers with the first sentence of passage [1], citing it (a plain model's answer)."""

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        prompt = str(messages[-1].content)
        block = re.search(r"^\[1\] [^\n]*\n(.+?)(?:\n\n|\n</passages>)", prompt, re.S | re.M)
        first = (block.group(1) if block else prompt).split(". ")[0].strip().rstrip(".")
        return ChatResult(generations=[ChatGeneration(message=AIMessage(f"{first} [1]."))])

    @property
    def _llm_type(self) -> str:
        return "quoting"


def answers(settings: Settings, questions: list[str], runs: int) -> dict[str, Any]:
    """The output layer's ms per answer, extractive and LLM, median of runs per question."""
    from rag import injection, pipeline
    from rag.pipeline import Pipeline

    out: dict[str, Any] = {}
    for name, chat in (("extractive", None), ("llm", QuotingModel())):
        asking = Pipeline(settings.with_overrides(llm="extractive" if chat is None else "auto"),
                          chat_model=chat)  # fmt: skip
        asking.ask(questions[0])  # warm: models loaded, caches filled
        layer: list[list[float]] = [[] for _ in questions]
        total: list[list[float]] = [[] for _ in questions]
        for _ in range(runs):
            for i, question in enumerate(questions):
                clock = Clock()
                targets = [(injection, "flags"), (injection, "evidence"), (pipeline, "_order_in"),
                           (pipeline, "screened")]  # fmt: skip
                with clocked(clock, *targets):
                    answer = asking.ask(question)
                layer[i].append(clock.seconds * 1000)
                total[i].append((answer.timings_ms or {}).get("total", 0.0))
        own = [statistics.median(v) for v in layer]
        whole = [statistics.median(v) for v in total]
        out[name] = {
            "questions": len(questions),
            "layer_ms_p50": round(statistics.median(own), 2),
            "layer_ms_p95": round(percentile(own, 95), 2),
            "layer_ms_max": round(max(own), 2),
            "answer_ms_p50": round(statistics.median(whole), 1),
            "share_p50": round(
                statistics.median(o / w for o, w in zip(own, whole, strict=True) if w), 4
            ),
        }
    return out


def indexing_share(articles: list[Path], runs: int) -> dict[str, Any]:
    """Ingest and detection's share of indexing these articles from scratch, per run."""
    from rag import articles as articles_mod
    from rag import indexing, injection

    rows = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "articles"
            folder.mkdir()
            for path in articles:
                shutil.copyfile(path, folder / path.name)
            settings = Settings(articles_dir=folder, index_dir=Path(tmp) / "index")
            ingest, detection = Clock(), Clock()
            started = time.perf_counter()
            with (
                clocked(ingest, (articles_mod, "strip_invisible"), (articles_mod, "visible_tree")),
                clocked(detection, (injection, "find")),
            ):
                report = indexing.apply(settings, indexing.plan(settings))
            wall = time.perf_counter() - started
            rows.append(
                {
                    "seconds": round(wall, 2),
                    "chunks": report.chunks,
                    "ingest_s": round(ingest.seconds, 4),
                    "detection_s": round(detection.seconds, 4),
                    "share": round((ingest.seconds + detection.seconds) / wall, 5),
                }
            )
    return {
        "articles": len(articles),
        "runs": rows,
        "seconds_p50": round(statistics.median(r["seconds"] for r in rows), 2),
        "ingest_s_p50": round(statistics.median(r["ingest_s"] for r in rows), 4),
        "detection_s_p50": round(statistics.median(r["detection_s"] for r in rows), 4),
        "share_p50": round(statistics.median(r["share"] for r in rows), 5),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", type=Path, default=ROOT / "eval" / "qa.jsonl")
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--articles-dir", type=Path, default=ROOT / "articles")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--articles", type=int, default=40, help="rtqa-2022 articles indexed")
    parser.add_argument("--json", type=Path, dest="json_out")
    args = parser.parse_args(argv)

    settings = Settings(articles_dir=args.articles_dir, index_dir=args.index)
    questions = [json.loads(line)["question"] for line in args.set.read_text().splitlines() if line]
    results: dict[str, Any] = {"machine": machine(), "runs": args.runs}
    print(f"answers: {len(questions)} questions x {args.runs} runs", file=sys.stderr)
    results["answers"] = answers(settings, questions, args.runs)
    corpus = sorted((RTQA / "articles").glob("*.txt"))[: args.articles] + sorted(
        SUITE.glob("*.html")
    )
    print(f"indexing: {len(corpus)} articles x {args.runs} runs", file=sys.stderr)
    results["indexing"] = indexing_share(corpus, args.runs)
    text = json.dumps(results, indent=2)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
