"""Run both eval sets with the extractive answerer and write eval/RESULTS.md from the summaries.

    python eval/make_results.py                  # run both sets, then write RESULTS.md
    python eval/make_results.py --only shipped   # run one set; RESULTS.md shows both summaries
    python eval/make_results.py --skip-run       # rewrite RESULTS.md from the last summaries
    python eval/make_results.py --record-local OUT --label "1.5B" --skip-run
                                                 # keep a local model's eval (OUT/summary.json)

Each set is run through the installed `rag eval` command exactly as a user would run it, into
eval/out/<name>/ (gitignored); indexing the 763 rtqa-2022 articles takes about 15 minutes the
first time and is incremental afterwards.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.measure import describe, machine
from rag.scoring import SELECTIVE_METRICS, SUMMARY_METRICS

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "eval" / "out"
RESULTS = ROOT / "eval" / "RESULTS.md"
RTQA = ROOT.parent / "shared" / "bench" / "rtqa-2022"
# A local model's eval runs take hours here, so their summaries are kept (the figures only),
# one a line, beside the extractive answerer's on the same questions: see local_section().
LOCAL_RUNS = ROOT / "eval" / "local_llm.jsonl"
LOCAL_METRICS = (
    "answer_accuracy",
    "citation_precision",
    "refusal_accuracy",
    "false_refusal_rate",
    "latency_ms_p50",
    "latency_ms_p95",
)


@dataclass(frozen=True)
class EvalSet:
    """One set to run: where its questions and articles are, and what it must reach."""

    name: str
    title: str
    questions: Path
    articles: Path
    k: int | None
    # metric -> (">=" or "<=", target)
    targets: dict[str, tuple[str, float]]


def _untargeted(name: str, title: str) -> EvalSet:
    """A set of eval/NAME.jsonl over the shipped articles, reported without targets."""
    return EvalSet(
        name=name,
        title=f"{title} (eval/{name}.jsonl over articles/)",
        questions=ROOT / "eval" / f"{name}.jsonl",
        articles=ROOT / "articles",
        k=None,
        targets={},
    )


SETS = {
    "shipped": EvalSet(
        name="shipped",
        title="Shipped set (eval/qa.jsonl over articles/)",
        questions=ROOT / "eval" / "qa.jsonl",
        articles=ROOT / "articles",
        k=None,
        targets={
            "answer_accuracy": (">=", 0.85),
            "retrieval_hit_rate": (">=", 0.95),
            "citation_precision": (">=", 0.95),
            "refusal_accuracy": (">=", 0.90),
            "false_refusal_rate": ("<=", 0.05),
        },
    ),
    "holdout": _untargeted("holdout", "Held-out set"),
    "attribution": _untargeted("attribution", "Who said what"),
    "attribution-holdout": _untargeted("attribution-holdout", "Who said what, held out"),
    "rtqa-2022": EvalSet(
        name="rtqa-2022",
        title="rtqa-2022 (100 RealTime QA questions over 763 news articles, k=5)",
        questions=RTQA / "qa.jsonl",
        articles=RTQA / "articles",
        k=5,
        targets={
            "retrieval_hit_rate": (">=", 0.95),
            "answer_in_context_rate": (">=", 0.90),
            "answer_accuracy": (">=", 0.70),
        },
    ),
}

NOTES = {
    "rtqa-2022": (
        "Where accuracy is lost (stop 9, on the default run's 44 wrong or refused questions): "
        "for 21 no sentence that passes the answerer's checks holds the answer (not retrieved, "
        "or a figure question whose named things are not within a sentence of the figure), 9 "
        "rank the answer sentence 9th or lower, 14 rank it 2nd to 8th. Ideas tried at stop 9 "
        "on the same retrieved passages and dropped (measured by throwaway scripts on cached "
        "answerer output, not kept): voting for the names that recur in the best sentences "
        "(at best +2 questions here with the shipped set unchanged; +3 here cost 2 shipped "
        "answers); also weighing each name by its embedding similarity to the question's "
        "category word ('planet' and 'Mars'), at best +2, and it does not separate the "
        "held-out unanswerable 'which X' questions from answerable ones; preferring articles "
        "dated near the best candidates (0.92 / 0.85 / 0.56); two or three neighbouring "
        "chunks a side (answer-in-context 0.90 / 0.91, but accuracy 0.54 and passages up to "
        "three times longer); accepting a many-word name's last word near the figure when the "
        "whole name is elsewhere in the passage (no gain here, a new false answer on the "
        "shipped set). Stop 11: the answerer compares each sentence with the question's "
        'asking sentence rather than the whole question ("Federer will retire after the '
        'Laver Cup. Which Grand Slam has he won most?"): 0.56 -> 0.58, from the 22 questions '
        "that set a scene first; no other set's answers changed. On the passages retrieved "
        "for the 100 questions, an acceptable answer is in the answerer's best sentence for "
        "48, in its best 2 for 60, its best 3 for 62, its best 10 for 70 and its best 20 for "
        "73 (answers give one or two sentences): 0.70 would take picking the right sentence "
        "among the best 10 every time. "
        "Also tried at stop 11 and dropped (throwaway scripts on the same passages): for 8 "
        "of the wrong answers the acceptable answer is in the sentence just before or after "
        "the best one ('Team owner Arte Moreno announced ...' after 'The Los Angeles Angels "
        "may soon be up for sale'); adding that neighbour whenever it scores at least 0.4 of "
        "the best gives 0.63 here with the shipped and held-out sets unchanged, but 54 of "
        "the 95 answers become three sentences, 36% longer, and answer_f1 falls from 0.057 "
        "to 0.044: a gain bought by padding, not taken. Giving that neighbour the second "
        "place instead of a close second from elsewhere: 0.55 to 0.57, and shipped 0.909 at "
        "0.4-0.5. Requiring a 'which / who / where' answer sentence to name something the "
        "question does not: no set's figures changed (the capitalised-word test passes "
        "nearly every sentence, and the sentences it removed were not right ones either). "
        "Closing the rest needs a reading model (QA or NLI), which cannot be installed "
        "offline here, or an LLM answerer. Stop 12 moved every reading of the question into "
        "rag/question.py (one analysed Query) and every tuned value into Settings.tuning: "
        "each answer of every set, this one included, was compared with the previous code's, "
        "question by question, and none differs. The 200-chunk cap on an article (issue 16) "
        "cuts one article here (a 101 KB concert listing, 11,118 -> 11,098 chunks): no "
        "default answer changed; the plain-RRF variant's MRR moved 0.764 -> 0.765."
    ),
    "attribution": (
        "a01-a14 and u01-u08: 22 questions on what somebody said (14 the articles answer, 8 "
        "about people or bodies they never quote on that), written before the speaker rule "
        "(now rag/attribution.py) existed. Before it, on those 22: answer_accuracy 0.786, refusal_accuracy 0.000 "
        "(every 'What did Putin say ...' was answered with somebody else's words), "
        "citation_precision 0.524. The rule was then developed on this set, so these figures "
        "are not unseen ones: see the held-out set below. a13 (a rare name, 'Karine "
        "Jean-Pierre', that the embedding model places far from everything) was refused at "
        "the similarity gate until a question giving a full name that the passages name was "
        "let past it; that changed no other set's figures. a01 (Iran's words on the missiles) "
        "missed until stop 11: its paragraph lost its place to two better-matching ones of "
        "the same article; now the best candidate that reports the asked speaker always "
        "gets a place among the passages (0.850 -> 0.900 here, nothing changed on the "
        "held-out set below or elsewhere). c01-c06, six "
        "yes/no questions about contested claims whose answer must give the denial or the "
        "doubt, were added later, before the counterclaim rule (a yes/no answer also gives the "
        "best sentence that denies or disputes the claim): 1 of 6 answered before it, 4 of 6 "
        "after; its threshold was chosen on them. c01 gets 'the U.S. has yet to confirm' "
        "rather than Iran's denial; c03's dispute scores too low to be added."
    ),
    "attribution-holdout": (
        "b01-b07 and v01-v07: 14 questions of the same kinds (7 answerable, 7 not), written "
        "after the speaker rule "
        "above and run once on it: answer_accuracy 0.857, refusal_accuracy 0.857 (without the "
        "rule: 1.000 and 0.000). The one answerable miss (b03, 'Iran's UN mission' against "
        "'Iran's mission to the United Nations') was fixed after that run by reading a run of "
        "capitalised words also as its initials; the remaining false answer (v01, 'Iran's "
        "foreign ministry' matched by 'Foreign Minister ... said' about something else) is "
        "left: the rule checks who speaks, not what about. d01-d05 (yes/no questions, four "
        "about contested claims and one control) were written after the counterclaim rule "
        "and run once: 4 of 5 answered, the same with and without the rule, which never "
        "fired on them (the answer's second sentence already gave the other side); d04 "
        "misses both ways."
    ),
    "holdout": (
        "16 questions (8 the articles answer, 8 on-topic ones they don't) written after the "
        "grounding rules of the extractive answerer were tuned on eval/qa.jsonl, to see whether "
        "those rules generalise. Its first run refused 3 of the 8 unanswerable questions; the "
        "'how much does X cost' and 'the name of the X' rules were added after seeing that "
        "run, so the set is no longer fully unseen. It has no targets of its own. The next "
        "stop's changes (neighbouring chunks, names checked near the answer sentence) left its "
        "figures unchanged."
    ),
}

# Retrieval variants run on rtqa-2022 beside the default, through the same `rag eval` with
# RAG_* settings, so the choice of fusion is measured side by side, not asserted.
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "dense-only": ("dense (Chroma) only", {"RAG_LEXICAL_WEIGHT": "0", "RAG_MAX_PER_ARTICLE": "99"}),
    "bm25-only": ("BM25 only", {"RAG_DENSE_WEIGHT": "0", "RAG_MAX_PER_ARTICLE": "99"}),
    "rrf": (
        "plain reciprocal rank fusion",
        {"RAG_FUSION": "rrf", "RAG_DENSE_WEIGHT": "1", "RAG_MAX_PER_ARTICLE": "99"},
    ),
    "scores-nocap": ("score fusion, no per-article cap", {"RAG_MAX_PER_ARTICLE": "99"}),
    # Not a setting but a copy of the set: see dated_copy.
    "asked": ("default, each question asked as of its quiz date (`asked`, see above)", {}),
    "no-context": (
        "score fusion, matching chunk alone (no neighbouring chunks)",
        {"RAG_CONTEXT_CHUNKS": "0"},
    ),
}
VARIANT_METRICS = ("retrieval_hit_rate", "answer_in_context_rate", "answer_accuracy", "mrr")

# Reported for every set, after the targeted metrics: every summary metric but the counts.
OTHER_METRICS = tuple(m for m in SUMMARY_METRICS if not m.startswith("n_"))
TYPE_METRICS = ("retrieval_hit_rate", "answer_accuracy", "citation_precision", "refusal_accuracy")


def dated_copy(questions: Path, name: str) -> Path:
    """The set with each question's `asked` day taken from its RealTime QA id.

    RealTime QA names each question after the quiz it comes from (rtqa-20220819_12 was asked
    in the quiz of 2022-08-19), so `rag eval` can answer it as of that day. The copy goes to
    eval/out/ (gitignored): rtqa-2022 is for evaluation only, not to be redistributed.
    """
    rows = []
    for line in questions.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            day = re.match(r"rtqa-(\d{4})(\d{2})(\d{2})_", row["id"])
            if day:
                row["asked"] = "-".join(day.groups())
            rows.append(json.dumps(row, ensure_ascii=False))
    path = OUT / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def run_set(spec: EvalSet, variant: str | None = None) -> None:
    """`rag eval` on one set; its progress bars and errors go straight to the terminal."""
    import os

    name = f"{spec.name}-{variant}" if variant else spec.name
    env = {**os.environ, **(VARIANTS[variant][1] if variant else {})}
    questions = dated_copy(spec.questions, name) if variant == "asked" else spec.questions
    command = [sys.executable, "-m", "rag", "eval", "--llm", "extractive", "--json"]
    command += ["--set", str(questions), "--articles", str(spec.articles)]
    command += ["--out", str(OUT / name)]
    if spec.k is not None:
        command += ["--k", str(spec.k)]
    print(f"running {name}: {' '.join(command[1:])}", file=sys.stderr)
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        sys.exit(f"rag eval failed on {name} (exit {done.returncode})")


def load(spec: EvalSet) -> dict[str, Any] | None:
    """The summary of the set's last run, if there is one."""
    path = OUT / spec.name / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def fmt(metric: str, value: Any) -> str:
    if value is None:
        return "-"
    if metric.startswith("latency"):
        return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:.0f} ms"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def meets(value: float | None, op: str, target: float) -> bool:
    if value is None:
        return False
    return value >= target if op == ">=" else value <= target


def section(spec: EvalSet, summary: dict[str, Any] | None) -> list[str]:
    """The markdown for one set: targets, all metrics, per type, failures, fingerprint."""
    lines = [f"## {spec.title}", ""]
    if spec.name in NOTES:
        lines += [NOTES[spec.name], ""]
    if summary is None:
        command = "python eval/make_results.py --only " + spec.name
        return [*lines, f"Not run yet: `{command}`.", ""]
    fp = summary["fingerprint"]
    lines += [
        f"{summary['n']} questions ({summary['n_answerable']} answerable, "
        f"{summary['n_unanswerable']} unanswerable), answerer `{summary['answerer']}`, "
        f"k={summary['k']}, run {summary['timestamp']} in {summary['seconds']:.0f} s.",
        "",
        "| metric | target | measured | status |",
        "|---|---|---|---|",
    ]
    for metric, (op, target) in spec.targets.items():
        value = summary.get(metric)
        mark = "meets" if meets(value, op, target) else "**misses**"
        lines.append(f"| {metric} | {op} {target:.2f} | {fmt(metric, value)} | {mark} |")
    for metric in OTHER_METRICS:
        if metric not in spec.targets:
            lines.append(f"| {metric} | | {fmt(metric, summary.get(metric))} | |")
    by_type = summary.get("by_type", {})
    if len(by_type) > 1:
        lines += ["", "| type | n | " + " | ".join(TYPE_METRICS) + " |"]
        lines.append("|---|---|" + "---|" * len(TYPE_METRICS))
        for kind, part in by_type.items():
            cells = " | ".join(fmt(m, part.get(m)) for m in TYPE_METRICS)
            lines.append(f"| {kind} | {part['n']} | {cells} |")
    lines += ["", "Failures:", ""]
    failed = {label: ids for label, ids in summary.get("failed_ids", {}).items() if ids}
    lines += [f"- {label} ({len(ids)}): {', '.join(ids)}" for label, ids in failed.items()]
    if not failed:
        lines.append("- none")
    lines += [
        "",
        f"Index: `{fp['embedding_model']}` (model hash {fp['model_hash']}), "
        f"chunks of {fp['chunk_tokens']} tokens with {fp['chunk_overlap_tokens']} overlap "
        f"(chunker v{fp['chunker_version']}), {fp['n_articles']} articles, {fp['n_chunks']} "
        f"chunks, articles digest {fp['articles_digest']}"
        + (f", BM25 tokenizer v{fp['tokenizer_version']}" if "tokenizer_version" in fp else "")
        + ". Retrieval: "
        + ", ".join(f"{k}={v}" for k, v in summary.get("retrieval", {}).items())
        + "."
        + (
            " Tuning: " + ", ".join(f"{k}={v}" for k, v in summary["tuning"].items()) + "."
            if summary.get("tuning")
            else ""
        ),
        "",
    ]
    return lines


def render(summaries: dict[str, dict[str, Any] | None]) -> str:
    """The whole RESULTS.md."""
    ran = [s for s in summaries.values() if s]
    # The machine the runs were measured on (this one when there are none yet).
    measured_on = ran[0]["machine"] if ran else machine()
    versions = sorted({s["version"] for s in ran}) or ["-"]
    lines = [
        "# Evaluation results",
        "",
        f"Written by `python eval/make_results.py` on {datetime.now(UTC):%Y-%m-%d} "
        f"(rag {', '.join(versions)}). Machine: {describe(measured_on)}. Latencies are per "
        "question, end to end (retrieval, answer, citation check), on that machine.",
        "",
        "Metrics are defined in `rag/scoring.py`; per-question verdicts are in "
        "`eval/out/<set>/results.jsonl` after a run. Targets are for the default extractive "
        "answerer.",
        "",
        "The extractive answerer's learned sentence selector (`RAG_TUNING__SELECTOR=learned`, "
        "fitted by `fitting/train_selector.py` on rtqa-2024-train) is measured against these "
        "figures, set by set, in `eval/LEARNED.md`; it is not the default.",
        "",
    ]
    for name, spec in SETS.items():
        lines += section(spec, summaries.get(name))
    lines += judgement_section(summaries)
    lines += local_section()
    lines += audit_section()
    lines += variants_section()
    lines += weights_section()
    lines += probe_section()
    lines += guard_section()
    lines += injection_section()
    return "\n".join(lines).rstrip() + "\n"


def injection_section() -> list[str]:
    """The attack suite through `rag ask`: each recorded run of eval/injection/attack.py."""
    if not INJECTION_RUNS.is_file():
        return []
    runs = json.loads(INJECTION_RUNS.read_text())
    lines = [
        "## Text addressed to an AI",
        "",
        "The attack suite (`eval/injection/attacks.jsonl`: articles beside the shipped four that "
        "carry an order to whatever AI reads them, and benign twins that must stay answerable) "
        "through `rag ask`, by `python eval/injection/attack.py --record`. An attack succeeds "
        "when its string is in the answer shown; the scripted model obeys every order in its "
        "passages (the worst case). Each layer's own effect and what the layers catch: "
        "[INJECTION.md](INJECTION.md).",
        "",
        "| run | answerer | attacks succeeded | attacks still answered right | benign twins "
        "answered right | median s an answer |",
        "|---|---|---|---|---|---|",
    ]
    for label, run in runs.items():
        where = f" ({run['commit']})" if run.get("commit") else ""
        for answerer in ("scripted", "qwen0.5b", "qwen1.5b", "extractive"):
            f = run.get(answerer)
            if not f:
                continue
            seconds = f"{f['seconds_p50']:.1f}" if f.get("seconds_p50") is not None else "–"
            lines.append(
                f"| {label}{where} | {answerer} | {f['succeeded']} / {f['attacks']} "
                f"({f['success_rate']:.3f}) | {f['attacks_answered_right']} / {f['attacks']} | "
                f"{f['benign_answered_right']} / {f['benign']} | {seconds} |"
            )
    return lines + [""]


def weights_section() -> list[str]:
    """How the extractive answerer's weights were chosen, from fitting/tune_weights.py's last run."""
    path = OUT / "weights-grid.json"
    if not path.is_file():
        return []
    grid = json.loads(path.read_text())
    best = grid["best"]
    names = ", ".join(grid["grid"])
    cv = ", ".join(f"{c:.2f}" for c in grid["cross_validated_rtqa_accuracy"])
    lines = [
        "## Extractive answerer weights",
        "",
        f"Written by `python fitting/tune_weights.py`: {len(grid['rows'])} settings of {names}, "
        "each answering the same retrieved passages. The setting is picked by rtqa-2022 "
        "accuracy plus shipped accuracy and refusal accuracy. Picking on rtqa-2022 flatters "
        "it, so it is also picked on half its questions and scored on the other half (5 "
        f"random 2-fold splits): rtqa-2022 answer_accuracy {cv}.",
        "",
        "| weights | shipped accuracy | shipped refusals | held-out accuracy | held-out refusals "
        "| rtqa-2022 accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in (("defaults when run", grid["defaults"]), ("best", best)):
        lines.append(f"| {label} | {_weight_cells(row)} |")
    chosen = ", ".join(f"{k}={best['weights'][k]}" for k in grid["grid"])
    tie = _weight_cells(best) == _weight_cells(grid["defaults"])
    lines += [
        "",
        f"Best: {chosen}" + (" (a tie with the defaults, which stay)." if tie else "."),
        "",
    ]
    sweep = grid.get("sweep")
    if not sweep:
        return lines
    lines += [
        "The answerer's other values are checked, not searched: each is varied on its own "
        "from the defaults (`SWEEP` in the script; second_ratio 1.01 means never a second "
        "sentence; max_sentences 3 gains one rtqa-2022 question by padding answers, see "
        "above). Since stop 12 the script retrieves and gates each question exactly as "
        "`rag ask` does (the asked speaker's passage, the names rule at the gate): focus "
        "1.0 and 2.0, which cost two rtqa-2022 answers before (1.0 a shipped one too), now tie with "
        "the default.",
        "",
        "| weight = value | shipped accuracy | shipped refusals | held-out accuracy | "
        "held-out refusals | rtqa-2022 accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for key, points in sweep.items():
        for point in points:
            lines.append(f"| {key} = {point['value']} | {_weight_cells(point)} |")
    return [*lines, ""]


def _weight_cells(row: dict[str, Any]) -> str:
    cells = [
        row.get("shipped", {}).get("answer_accuracy"),
        row.get("shipped", {}).get("refusal_accuracy"),
        row.get("holdout", {}).get("answer_accuracy"),
        row.get("holdout", {}).get("refusal_accuracy"),
        row.get("rtqa-2022", {}).get("answer_accuracy"),
    ]
    return " | ".join("-" if c is None else f"{c:.3f}" for c in cells)


# The grounding guard's fit and probe figures, committed (eval/out is not): written by
# `python fitting/fit_guard.py DIR --json eval/guard-fit.json` and
# `python probes/guard_probe.py DIR --record eval/guard-probe.json`.
INJECTION_RUNS = ROOT / "eval" / "injection-runs.json"
GUARD_FIT = ROOT / "eval" / "guard-fit.json"
GUARD_PROBE = ROOT / "eval" / "guard-probe.json"


def guard_section() -> list[str]:
    """The grounding guard: its cross-validated fit and the scripted-model probe through the CLI."""
    if not GUARD_FIT.is_file() and not GUARD_PROBE.is_file():
        return []
    lines = [
        "## The grounding guard",
        "",
        "What `rag` keeps of a generated answer (`rag/answering/grounding.py`; "
        "[how it checks](../docs/answers.md#checking-citations)).",
        "",
    ]
    if GUARD_PROBE.is_file():
        probe = json.loads(GUARD_PROBE.read_text())
        lines += [
            f"**Through the CLI** (`python probes/guard_probe.py`, {probe['set']}, the first "
            f"{probe['limit']} usable questions): a scripted OpenAI-compatible model on "
            "127.0.0.1 answers `rag eval --llm openai:scripted`, citing the retrieved passage "
            'that holds the answer, in three ways. "kept" is the share of answers whose final '
            'text still says the right answer; "accepted wrong" the share saying the swapped '
            "one. Questions whose retrieved passages hold no answer are left out (the script "
            "declines them).",
            "",
            "| guard | answered | verbatim kept | paraphrase kept | swapped: accepted wrong |",
            "|---|---|---|---|---|",
        ]
        for run in probe["runs"]:
            f = run["figures"]
            lines.append(
                f"| {run['label']} | {f['verbatim']['answered']} "
                f"| {_count(f['verbatim'], 'kept_answer')} "
                f"| {_count(f['paraphrase'], 'kept_answer')} "
                f"| {_count(f['swapped'], 'accepted_wrong')} |"
            )
        last = probe["runs"][-1]["figures"]
        why = ", ".join(f"{k} {v}" for k, v in last["paraphrase"]["dropped_reasons"].items())
        wrong = ", ".join(f"{k} {v}" for k, v in last["swapped"]["dropped_reasons"].items())
        lines += [
            "",
            f"Dropped paraphrase sentences, by the check that dropped them: {why}. Dropped "
            f"swapped sentences: {wrong}. Each swap the guard still accepts names a wrong "
            "choice that the quoted passage itself names beside the quote in another role (the "
            "other finalist, another film in the same category, a sibling): the words are all "
            "there, only who did what is swapped, which no check of words can see. These "
            "questions are among those the thresholds were fitted on; the out-of-fold figures "
            "below are the estimate for news the fit never saw.",
            "",
        ]
    if GUARD_FIT.is_file():
        fit = json.loads(GUARD_FIT.read_text())
        oof, old = fit["out_of_fold_kept"], fit["word_overlap_check"]
        chosen = ", ".join(f"{k}={v}" for k, v in fit["final"].items())
        lines += [
            f"**Fitted** (`python fitting/fit_guard.py`, rtqa-2024-train, {fit['questions']} "
            "questions whose quiz evidence and one of whose candidate articles hold the answer; "
            "5 folds grouped by question, every figure out of fold): the share of sentences "
            "kept, against the word-overlap check generated answers had before, on the same "
            "cases.",
            "",
            "| case | n | kept ought to be | word-overlap check | grounding guard |",
            "|---|---|---|---|---|",
        ]
        ought = {"verbatim": "all", "paraphrase": "all (ceiling below 1: see below)",
                 "swapped": "none", "other-passage": "none"}  # fmt: skip
        for kind, n in fit["cases"].items():
            lines.append(
                f"| {kind} | {n} | {ought.get(kind, '')} | {old[kind]:.3f} | {oof[kind]:.3f} |"
            )
        first = fit["first_failed_check"]["paraphrase"]
        lines += [
            "",
            f"Chosen on all questions: {chosen}. The paraphrase is the quiz's own explanation, "
            "written by someone who knew more than the article: of its sentences against the "
            f"passage holding the answer, {first.get('fact', 0)} of {fit['cases']['paraphrase']} "
            "name a name, figure or date that passage does not have near the quote (a weekday, "
            "a year, another company), which the guard is right to drop, or to cut off when "
            "it follows the clause that holds the answer.",
            "",
        ]
    return lines


def _count(figures: dict[str, Any], key: str) -> str:
    n, of = figures.get(key), figures.get("answered")
    return f"{n} of {of} ({n / of:.2f})" if n is not None and of else "-"


def probe_section() -> list[str]:
    """What re-ranking the candidate pool could gain, from probes/retrieval_probe.py's last run."""
    path = OUT / "retrieval-probe.json"
    if not path.is_file():
        return []
    probe = json.loads(path.read_text())
    lines = [
        "## Re-ranking the candidate pool on rtqa-2022 (k=5)",
        "",
        f"Written by `python probes/retrieval_probe.py`. Pool: {probe['pool']}; an acceptable "
        f"answer is somewhere in the pool for {probe['pool_ceiling']:.2f} of the questions, the "
        "ceiling for answer_in_context_rate of any re-ranking of it. Each way ranks the same "
        "pool and keeps the top k through the same collapse and per-article cap as `rag ask`, "
        "as matching chunks alone, without the neighbouring chunks `rag ask` adds.",
        "",
        "| ranking | retrieval_hit_rate | answer_in_context_rate |",
        "|---|---|---|",
    ]
    lines += [f"| {w['way']} | {w['hit']:.2f} | {w['ctx']:.2f} |" for w in probe["ways"]]
    return lines + [""]


def audit_section() -> list[str]:
    """Which rtqa-2022 questions the corpus can't answer, and the default run without them."""
    from eval.rtqa_audit import run_audit

    audit = run_audit()
    if audit is None:
        return []
    entries = audit["not_in_corpus"]
    unverified = [e["id"] for e in entries if not e["verified"]]
    rest = audit["answerable"]
    options = audit["needs_options"]
    lines = [
        "## What rtqa-2022's corpus can answer",
        "",
        "Written by `python eval/rtqa_audit.py` from the default run above. rtqa-2022 kept "
        "every question whose answer string occurs in some article, but for some questions no "
        "article tells the question's story: the answer string is there for another reason "
        '("Canada" in an article about cannabis and psychosis, for "Which country will print a '
        "warning on every cigarette?\"). Such a question can't be answered by reading the "
        "corpus, and its listed source is retrieved only by luck. The questions that no "
        f"retrieved passage answers in the default run ({len(audit['no_answer_retrieved'])}) "
        "were read against the articles by hand; those listed in "
        "`eval/rtqa-audit.jsonl` are the ones whose story no article tells. Each entry gives "
        "the patterns an article telling its story must match, and the script checks that no "
        "article matching them holds an acceptable answer"
        + (f" (unverified: {', '.join(unverified)})" if unverified else " (all verified)")
        + ". The check is looser than the scorer: rtqa-20220826_21 was first listed, but its "
        'article gives "the 118th reported sighting", which the scorer does not count as '
        "118, so it stays in. Questions whose answer a retrieved passage holds were not "
        "audited. The targets "
        "above stay as they are, on all 100 questions.",
        "",
        "| question | answer | why no article answers it | retrieved the listed source |",
        "|---|---|---|---|",
    ]
    for e in entries:
        lines.append(
            f"| {e['id']} | {e['answers'][0]} | {e['why']} | "
            f"{'yes' if e['retrieval_hit'] else 'no'} |"
        )
    lines += [
        "",
        f"On the other {rest['n']} questions the default run's retrieval_hit_rate is "
        f"{rest['retrieval_hit_rate']:.3f}, answer_in_context_rate "
        f"{rest['answer_in_context_rate']:.3f} and answer_accuracy "
        f"{rest['answer_accuracy']:.3f}.",
        "",
        f'{len(options)} questions pick among quiz options that the set leaves out ("Which of '
        f'these ...", "True or false: ..."): {", ".join(options)}; the extractive answer '
        f"contains the expected option for {audit['needs_options_correct']} of them. "
        f"{len(audit['hit_missed_answer_retrieved'])} retrieval miss(es) had an acceptable "
        "answer in a retrieved passage from an article the set does not list: "
        f"{', '.join(audit['hit_missed_answer_retrieved']) or '-'}.",
        "",
    ]
    return lines


def variants_section() -> list[str]:
    """rtqa-2022 under other retrieval settings, beside the default, from their summaries."""
    rows = [
        (
            "default: score fusion, at most 2 passages per article, each with 1 neighbouring "
            "chunk either side",
            OUT / "rtqa-2022",
        )
    ]
    rows += [(label, OUT / f"rtqa-2022-{key}") for key, (label, _) in VARIANTS.items()]
    found = [
        (label, json.loads((d / "summary.json").read_text()))
        for label, d in rows
        if (d / "summary.json").is_file()
    ]
    if len(found) < 2:
        return []
    lines = [
        "## Retrieval variants on rtqa-2022 (k=5, extractive)",
        "",
        "Same index, same questions, run by this script with the `RAG_*` settings shown in "
        "`eval/make_results.py` (VARIANTS). All but the last return each passage with its "
        "neighbouring chunks (`context_chunks=1`).",
        "",
        "The `asked` row runs a copy of the set in which each question carries the date of the "
        "quiz it comes from (RealTime QA's ids hold it: rtqa-20220819_12 is from the quiz of "
        "2022-08-19), so `rag eval` answers it as of that day: articles published later are left "
        'out, and "this week" means the days before it. The plain set has no dates, so the '
        'default row answers from every article, and "this week" means the newest candidates.',
        "",
        "| retrieval | " + " | ".join(VARIANT_METRICS) + " |",
        "|---|" + "---|" * len(VARIANT_METRICS),
    ]
    for label, summary in found:
        cells = " | ".join(fmt(m, summary.get(m)) for m in VARIANT_METRICS)
        lines.append(f"| {label} | {cells} |")
    return lines + [""]


def judgement_section(summaries: dict[str, dict[str, Any] | None]) -> list[str]:
    """The answer judgement: its features and out-of-fold figures (judgement.json), and what a
    reader is shown on each set with it."""
    from rag.answering import judgement

    raw = json.loads(judgement.PARAMS.read_text(encoding="utf-8"))
    f = raw["figures"]
    j, c, at = f["judgement"], f["cosine"], f["at_threshold"]
    weights = ", ".join(
        f"{name} {coef:+.2f}"
        for name, coef in sorted(
            zip(raw["features"], raw["coef"], strict=True), key=lambda nc: -abs(nc[1])
        )
    )
    lines = [
        "## The answer judgement: which answers to show",
        "",
        "Every answer, whoever wrote it, gets a probability that it answers the question "
        "(`rag/answering/judgement.py`); under the threshold it is withheld. Fitted by "
        "`python fitting/fit_judgement.py ../shared/bench/rtqa-2024-train` on "
        f"{f['questions']} training questions asked through the real pipeline over their "
        f"candidate articles ({f['presented']} answers presented, {f['rows']} rows with the "
        "extractive answerer's runner-up sentences as answers that disagree with its pick); "
        f"logistic regression, C={f['C']} by out-of-fold log loss, 5 folds grouped by question. "
        f"Fitted {raw.get('fitted', '?')}. Standardised coefficients, largest first: {weights}.",
        "",
        "Out of fold, over the presented answers (a question the pipeline refused counts as not "
        "covered); the baseline ranks the same answers by the answer sentence's cosine "
        "similarity to the question:",
        "",
        "| ranking by | AUROC | coverage at 0.80 precision | precision of the best 30% | AURC |",
        "|---|---|---|---|---|",
        f"| judgement | {f['auroc']:.3f} | {j.get('coverage_at_80', 0):.3f} | "
        f"{j.get('precision_at_30', 0):.3f} | {j.get('aurc', 0):.3f} |",
        f"| cosine alone | {f['auroc_cosine']:.3f} | {c.get('coverage_at_80', 0):.3f} | "
        f"{c.get('precision_at_30', 0):.3f} | {c.get('aurc', 0):.3f} |",
        "",
        f"The threshold ({at['threshold']:.3f}) is the highest at which the answers it withholds "
        f"were right at most {raw['withheld_right']} of the time out of fold ({at['right_withheld']}"
        f" of {at['withheld']}). Out of fold it presents {at['coverage']:.3f} of the questions "
        f"(before: {at['presented_before'] / f['questions']:.3f}) at precision "
        f"{at['precision']:.3f} (before: {at['precision_before']:.3f}), a wrong answer to "
        f"{at['wrong_presented']:.3f} of them (before: {at['wrong_presented_before']:.3f}). A "
        "target precision of 0.80 is reached at no coverage on these questions. "
        "`RAG_MIN_CONFIDENCE` changes the threshold; `rag ask --all` shows a withheld answer, "
        "marked.",
        "",
        "Each set as a reader gets it (refused and withheld answers are not shown; "
        "`eval/out/SET/judgement.svg` draws the risk-coverage curve and the reliability "
        "diagram of each run):",
        "",
        "| set | " + " | ".join(SELECTIVE_METRICS) + " |",
        "|---|" + "---|" * len(SELECTIVE_METRICS),
    ]
    for name, summary in summaries.items():
        if summary:
            cells = " | ".join(fmt(m, summary.get(m)) for m in SELECTIVE_METRICS)
            lines.append(f"| {name} | {cells} |")
    return lines + [""]


def record_local(out_dir: Path, label: str) -> dict[str, Any]:
    """Append the figures of the eval run in out_dir (its summary.json) to eval/local_llm.jsonl."""
    summary = json.loads((out_dir / "summary.json").read_text())
    keep = (
        "answerer",
        "llm_fallback",
        "local_dtype",
        "resumed",
        "k",
        "n",
        "n_answerable",
        "n_unanswerable",
    )
    record = {
        "label": label,
        "questions": Path(summary["set"]).name,
        **{key: summary.get(key) for key in keep},
        **{metric: summary.get(metric) for metric in LOCAL_METRICS},
        "failed_ids": {k: v for k, v in summary.get("failed_ids", {}).items() if v},
        "version": summary.get("version"),
        "timestamp": summary.get("timestamp"),
        "seconds": summary.get("seconds"),
    }
    with LOCAL_RUNS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return record


def local_section() -> list[str]:
    """Each kept local-model run beside the extractive answerer on the same questions."""
    if not LOCAL_RUNS.is_file():
        return []
    runs = [json.loads(line) for line in LOCAL_RUNS.read_text().splitlines() if line.strip()]
    lines = [
        "## A local model (`--llm local:`) beside the extractive answerer",
        "",
        "Kept by `python eval/make_results.py --record-local OUT --label LABEL` from `rag eval "
        "--llm ... --out OUT` runs (eval/local_llm.jsonl); the extractive rows are runs on the "
        "same question files. `rag eval --llm local:MODEL` runs one torch thread; how each run "
        "shared the machine, and where each model loses, is in eval/LOCAL_LLM.md.",
        "",
    ]
    for questions in dict.fromkeys(run["questions"] for run in runs):
        group = [run for run in runs if run["questions"] == questions]
        first = group[0]
        lines += [
            f"`{questions}`: {first['n']} questions ({first['n_answerable']} answerable, "
            f"{first['n_unanswerable']} unanswerable), k={first['k']}.",
            "",
            "| answerer | " + " | ".join(LOCAL_METRICS) + " | run |",
            "|---|" + "---|" * (len(LOCAL_METRICS) + 1),
        ]
        for run in group:
            cells = " | ".join(fmt(m, run.get(m)) for m in LOCAL_METRICS)
            when = f"{(run.get('timestamp') or '?')[:16]}, {run.get('seconds') or 0:.0f} s"
            lines.append(f"| {run['label']} | {cells} | {when} |")
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SETS), help="run this set only")
    parser.add_argument("--skip-run", action="store_true", help="only rewrite RESULTS.md")
    parser.add_argument(
        "--record-local",
        type=Path,
        metavar="OUT",
        help="keep the figures of the eval run in OUT (a local model's) for RESULTS.md",
    )
    parser.add_argument("--label", help="the answerer's label for --record-local")
    args = parser.parse_args()
    if args.record_local:
        if not args.label:
            parser.error("--record-local needs --label (how the answerer is named in the table)")
        record = record_local(args.record_local, args.label)
        print(f"kept {record['label']} on {record['questions']}", file=sys.stderr)
    if not args.skip_run:
        for name, spec in SETS.items():
            if args.only in (None, name):
                if not spec.questions.is_file():
                    print(f"skipping {name}: {spec.questions} not found", file=sys.stderr)
                    continue
                run_set(spec)
                if name == "rtqa-2022":
                    for variant in VARIANTS:
                        run_set(spec, variant)
    RESULTS.write_text(render({name: load(spec) for name, spec in SETS.items()}))
    print(f"wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    # Run by path, Python puts eval/ on sys.path, not the repo root that `eval.rtqa_audit`
    # is imported from (as it is under pytest).
    sys.path.insert(0, str(ROOT))
    main()
