"""Probe the grounding guard through the real CLI: a scripted model that always cites the
passage holding the answer, writing it three ways.

    python probes/guard_probe.py ../shared/bench/rtqa-2024-train --limit 60
    python probes/guard_probe.py SET_DIR --limit 60 --out eval/out/guard-probe --json

For each usable question of a set with extra.jsonl (quiz evidence holding the answer, and a
candidate article holding it too; see fitting/guard_cases.py), a scripted OpenAI-compatible server
on 127.0.0.1 answers `rag eval --llm openai:scripted` (the real path: retrieval, the prompt, the
streamed reply, verification, re-citation), citing the retrieved passage that holds the answer:

- verbatim: the passage's own sentence holding the answer (the guard should keep it);
- paraphrase: the quiz's evidence sentences holding the answer, a human paraphrase (keep, where
  the passage says it; evidence can carry detail the article lacks, so not always);
- swapped: that paraphrase with the answer swapped for one of the quiz's wrong choices, a name,
  place or word of the same type (refuse).

A question whose retrieved passages hold no answer is declined by the script and counted apart
(a retrieval miss, not the guard's). "kept" means the final answer still says the right answer;
"accepted wrong" that it says the swapped one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fitting.guard_cases import Quiz, contains, quizzes, sentences, swap  # noqa: E402
from rag.answering import REFUSAL  # noqa: E402
from tests.integration.http_fakes import JSONHandler, serving  # noqa: E402

MODES = ("verbatim", "paraphrase", "swapped")
_BLOCK = re.compile(r"^\[(\d+)\] [^\n]*\n(.*?)(?=\n\n\[\d+\] |\n\nQuestion: )", re.S | re.M)
_QUESTION = re.compile(r"^Question: (.*)$", re.M)


def reply(prompt: str, quiz: Quiz | None, mode: str) -> str:
    """What the scripted model writes for this prompt: the mode's sentences, each citing the
    first passage that holds the answer; the refusal when none does (or the question is not
    the probe's)."""
    if quiz is None:
        return REFUSAL
    passages = {int(n): text for n, text in _BLOCK.findall(prompt)}
    holding = next((n for n, text in passages.items() if contains(text, quiz.answer)), None)
    if holding is None:
        return REFUSAL
    if mode == "verbatim":
        said = [next(s for s in sentences(passages[holding]) if contains(s, quiz.answer))]
    elif mode == "paraphrase":
        said = quiz.said
    else:
        said = [swap(s, quiz.answer, quiz.wrong[0]) for s in quiz.said]
    return " ".join(_cite(s, holding) for s in said)


def _cite(sentence: str, n: int) -> str:
    end = re.search(r"[.!?][\"'”’)]*$", sentence)
    cut = end.start() if end else len(sentence)
    return f"{sentence[:cut]} [{n}]{sentence[cut:] or '.'}"


class ScriptedModel(ThreadingHTTPServer):
    """An OpenAI-compatible /v1/chat/completions that answers from the probe's script."""

    daemon_threads = True

    def __init__(self, by_question: dict[str, Quiz]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.by_question = by_question
        self.mode = "verbatim"
        self.calls = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(JSONHandler):
    server: ScriptedModel

    def do_GET(self) -> None:
        self.send_json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    def do_POST(self) -> None:
        body = self.read_json()
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        asked = _QUESTION.search(prompt)
        quiz = self.server.by_question.get(_key(asked.group(1))) if asked else None
        text = reply(prompt, quiz, self.server.mode)
        self.server.calls += 1
        self.send_completion(text, bool(body.get("stream")))


def _key(question: str) -> str:
    return " ".join(question.split()).lower()


def prepare(set_dir: Path, chosen: list[Quiz], out: Path) -> Path:
    """OUT/articles (the chosen questions' candidate articles) and OUT/set.jsonl."""
    articles = out / "articles"
    articles.mkdir(parents=True, exist_ok=True)
    wanted = {name for q in chosen for name in q.articles}
    for name in wanted:
        dest = articles / name
        if not dest.exists():
            shutil.copyfile(set_dir / "articles" / name, dest)
    for stale in articles.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    rows = [
        {"id": q.id, "question": q.question, "answers": [q.answer, *q.answers],
         "sources": q.sources, "type": q.type, "asked": q.asked}
        for q in chosen
    ]  # fmt: skip
    path = out / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_mode(model: ScriptedModel, mode: str, set_path: Path, out: Path) -> Path:
    """`rag eval` of the set with the scripted model writing in this mode; its results file."""
    model.mode = mode
    env = {**os.environ, "RAG_OPENAI_BASE_URL": model.url, "OPENAI_API_KEY": "not-needed"}
    # The model is shown the passages whole, as when the figures were first taken: the probe
    # measures the guard, not what the prompt shows (Tuning.prompt_budget).
    env["RAG_TUNING__PROMPT_BUDGET"] = "0"
    mode_out = out / mode
    cmd = [
        sys.executable, "-m", "rag", "eval", "--set", str(set_path),
        "--articles", str(out / "articles"), "--index", str(out / "index"),
        "--llm", "openai:scripted", "--out", str(mode_out), "--json",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"rag eval ({mode}) failed:\n{done.stderr[-2000:]}")
    return mode_out / "results.jsonl"


def score(results: Path, chosen: dict[str, Quiz], mode: str) -> dict[str, Any]:
    """What the guard kept of one mode's answers."""
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    counted = kept = wrong = 0
    missed = 0
    refused_by: dict[str, int] = {}
    reasons: list[str] = []
    for r in rows:
        quiz = chosen[r["id"]]
        declined = (r.get("refused_by") or "").startswith("the model")
        if declined:
            missed += 1  # no retrieved passage held the answer: the script declined
            continue
        counted += 1
        text = "" if r["refused"] else r["answer"]
        kept += contains(text, quiz.answer)
        if mode == "swapped":
            wrong += contains(text, quiz.wrong[0])
        if r["refused"]:
            check = (r.get("refused_by") or "").split(":")[0]
            refused_by[check] = refused_by.get(check, 0) + 1
        reasons += [d.get("reason") or "" for d in r.get("dropped") or []]
    out: dict[str, Any] = {
        "questions": len(rows),
        "answer_not_retrieved": missed,
        "answered": counted,
        "kept_answer": kept,
        "kept_rate": round(kept / counted, 3) if counted else None,
        "refused_by": refused_by,
        "dropped_reasons": _kinds(reasons),
    }
    if mode == "swapped":
        out["accepted_wrong"] = wrong
        out["accepted_wrong_rate"] = round(wrong / counted, 3) if counted else None
    return out


def _kinds(reasons: list[str]) -> dict[str, int]:
    """Dropped sentences by the check that dropped them."""
    kinds: dict[str, int] = {}
    for reason in reasons:
        if "a word of the question" in reason:
            kind = "question word"
        elif "not near the sentence" in reason:
            kind = "fact not near the quote"
        elif "is not in passage" in reason:
            kind = "fact not in passage"
        elif "negates" in reason or "nothing negative" in reason:
            kind = "negation"
        elif "says too little" in reason:
            kind = "wording"
        else:
            kind = reason or "unknown"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def record(path: Path, label: str, figures: dict[str, Any]) -> None:
    """Keep one run's figures in path, beside the other labelled runs on the same questions."""
    kept = json.loads(path.read_text()) if path.is_file() else {}
    same = {k: kept.get(k) for k in ("set", "skip", "limit")} == {
        k: figures[k] for k in ("set", "skip", "limit")
    }
    runs = [r for r in kept.get("runs", []) if r["label"] != label] if same else []
    modes = {m: figures[m] for m in MODES if m in figures}
    runs.append({"label": label, "figures": modes})
    data = {k: figures[k] for k in ("set", "skip", "limit")} | {"runs": runs}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("set_dir", type=Path, help="a set with qa.jsonl, extra.jsonl, articles/")
    parser.add_argument("--limit", type=int, default=60, help="usable questions to ask")
    parser.add_argument("--skip", type=int, default=0, help="usable questions to pass over first")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--out", type=Path, default=Path("eval/out/guard-probe"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    parser.add_argument(
        "--record",
        type=Path,
        help="also keep the figures under --label in this file (eval/guard-probe.json, which "
        "eval/RESULTS.md shows), replacing a run of the same label",
    )
    parser.add_argument("--label", default="grounding guard", help="the run's name in --record")
    args = parser.parse_args()

    usable = list(quizzes(args.set_dir))[args.skip : args.skip + args.limit]
    set_path = prepare(args.set_dir, usable, args.out)
    by_id = {q.id: q for q in usable}
    figures: dict[str, Any] = {"set": str(args.set_dir), "skip": args.skip, "limit": args.limit}
    with contextlib.contextmanager(serving)(
        ScriptedModel({_key(q.question): q for q in usable})
    ) as model:
        for mode in args.modes:
            started = time.perf_counter()
            results = run_mode(model, mode, set_path, args.out)
            figures[mode] = score(results, by_id, mode)
            figures[mode]["seconds"] = round(time.perf_counter() - started, 1)
            if not args.json:
                print(f"{mode}: {json.dumps(figures[mode])}", file=sys.stderr)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    if args.record:
        record(args.record, args.label, figures)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
