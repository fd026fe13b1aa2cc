"""`rag eval` end to end on a two-article mini set, with fake embeddings and real Chroma."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rag import evaluation, scoring
from rag.cli import app
from rag.evaluation import EvalError
from rag.lexical import TOKENIZER_VERSION
from rag.settings import Settings
from tests.conftest import SHIPPED_ARTICLES
from tests.corpus import BIDEN, DRONES
from tests.fakes import HashingEmbeddings

# k=20 retrieves every chunk of the two articles, so whether retrieval hits depends only on
# whether the expected article is in the folder; a refusal threshold of -1 never refuses.
# That makes three of the failure labels certain whatever the fake embedding ranks first.
QUESTIONS: list[dict[str, Any]] = [
    {
        "id": "kirby",
        "question": "Which National Security Council spokesman said the US would impose "
        "additional sanctions on Iran?",
        "answers": ["John Kirby", "Kirby"],
        "sources": [BIDEN],
        "type": "factoid",
    },
    {
        "id": "factory",
        "question": "Where will the Iranian-designed drone factory in Russia be built?",
        "answers": ["Alabuga", "Tatarstan"],
        "sources": [DRONES],
        "type": "factoid",
    },
    {
        "id": "impossible",
        "question": "How many sanctions did the US Treasury plan to impose on Russia?",
        "answers": ["zqxj sanctions"],  # occurs in no article: a certain answer_miss
        "sources": [BIDEN],
        "type": "paraphrase",
    },
    {
        "id": "elsewhere",
        "question": "What did the G7 allies warn Iran about?",
        "answers": ["ballistic missiles"],
        "sources": ["g7-allies-warn-iran-over-ballistic-missiles-for-russia.txt"],  # not copied
        "type": "factoid",
    },
    {
        "id": "nothing",
        "question": "What did Kirby say about Iran drones and sanctions on Russia?",
        "answers": [],
        "sources": [],
        "type": "unanswerable",
    },
]


@pytest.fixture
def mini_set(tmp_path: Path) -> Path:
    """tmp/mini/qa.jsonl with two shipped articles beside it in tmp/mini/articles."""
    root = tmp_path / "mini"
    (root / "articles").mkdir(parents=True)
    for name in (BIDEN, DRONES):
        shutil.copy(SHIPPED_ARTICLES / name, root / "articles" / name)
    path = root / "qa.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return path


def _settings(mini_set: Path) -> Settings:
    base = Settings(articles_dir=mini_set.parent / "articles", refusal_threshold=-1.0)
    return base.with_overrides(index_dir=evaluation.default_index_dir(base, base.articles_dir))


def test_run_writes_judged_results_and_summary(mini_set: Path, tmp_path: Path) -> None:
    settings = _settings(mini_set).with_overrides(k=20, llm="extractive")
    out = tmp_path / "out"

    result = evaluation.run(settings, mini_set, out, embedder=HashingEmbeddings())

    records = list(evaluation.read_results(out / "results.jsonl"))
    assert [r["id"] for r in records] == [q["id"] for q in QUESTIONS]
    for record, question in zip(records, QUESTIONS, strict=True):
        assert record["question"] == question["question"]
        assert record["expected_answers"] == question["answers"]
        assert record["expected_sources"] == question["sources"]
        assert record["type"] == question["type"]
        assert {"answer", "refused", "answerer", "citations", "timings_ms"} <= set(record)
        assert record["retrieved"] and all(item["text"] for item in record["retrieved"])
        assert record["verdict"]["failure"] in (None, *scoring.FAILURE_LABELS)

    summary = json.loads((out / "summary.json").read_text())
    assert summary == result.summary
    assert summary["n"] == 5 and summary["n_answerable"] == 4 and summary["n_unanswerable"] == 1
    assert set(summary["by_type"]) == {"factoid", "paraphrase", "unanswerable"}
    assert summary["failed_ids"]["retrieval_miss"] == ["elsewhere"]
    assert "impossible" in summary["failed_ids"]["answer_miss"]
    assert summary["failed_ids"]["false_answer"] == ["nothing"]
    assert summary["failures"]["retrieval_miss"] == 1
    assert summary["answerer"] == "extractive" and summary["k"] == 20
    # Every tuned value that produced the result, and each question as it was analysed.
    assert summary["tuning"] == settings.tuning.model_dump() and "min_score" in summary["tuning"]
    assert all(r["query"]["text"] == r["question"] for r in records)
    assert summary["set"] == str(mini_set.resolve())
    fingerprint = summary["fingerprint"]
    assert fingerprint["n_articles"] == 2 and fingerprint["embedding_model"]
    assert {"articles_digest", "chunk_tokens", "chunker_version", "n_chunks"} <= set(fingerprint)
    assert fingerprint["tokenizer_version"] == TOKENIZER_VERSION
    assert {"version", "timestamp", "machine", "retrieval"} <= set(summary)
    # Timings are recorded with the machine's load and the run's own spread.
    assert all(len(summary["load_average"][when]) == 3 for when in ("start", "end"))
    assert summary["latency_ms_p10"] <= summary["latency_ms_p50"] <= summary["latency_ms_p90"]
    # The missing article is worth a warning: that question can never be retrieved.
    assert any("elsewhere" in w for w in result.warnings)

    # results.jsonl holds everything needed to score the run again.
    rescored = scoring.summarize(evaluation.read_results(out / "results.jsonl"))
    assert rescored["answer_accuracy"] == summary["answer_accuracy"]
    assert rescored["failures"] == summary["failures"]


def test_resume_keeps_what_an_interrupted_run_answered_and_asks_the_rest(
    mini_set: Path, tmp_path: Path
) -> None:
    settings = _settings(mini_set).with_overrides(k=20, llm="extractive")
    out = tmp_path / "out"
    full = evaluation.run(settings, mini_set, out, embedder=HashingEmbeddings())
    lines = (out / "results.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["answer"] = "Nobody knows."  # marks the kept answer; judged again, it is wrong
    (out / "results.jsonl").write_text(json.dumps(first) + "\n" + lines[1] + "\n")

    resumed = evaluation.run(settings, mini_set, out, embedder=HashingEmbeddings(), resume=True)

    records = list(evaluation.read_results(out / "results.jsonl"))
    assert [r["id"] for r in records] == [q["id"] for q in QUESTIONS]
    assert records[0]["answer"] == "Nobody knows." and not records[0]["verdict"]["correct"]
    assert [r["answer"] for r in records[1:]] == [json.loads(line)["answer"] for line in lines[1:]]
    assert resumed.summary["resumed"] == 2 and full.summary["resumed"] == 0
    assert resumed.summary["n"] == 5
    assert resumed.summary["answer_accuracy"] < full.summary["answer_accuracy"]


def test_resume_refuses_answers_by_another_answerer(mini_set: Path, tmp_path: Path) -> None:
    settings = _settings(mini_set).with_overrides(k=20, llm="extractive")
    out = tmp_path / "out"
    evaluation.run(settings, mini_set, out, embedder=HashingEmbeddings())
    record = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    (out / "results.jsonl").write_text(json.dumps(record | {"answerer": "ollama:llama3"}) + "\n")

    with pytest.raises(EvalError, match="--resume: .*by ollama:llama3.*drop --resume"):
        evaluation.run(settings, mini_set, out, embedder=HashingEmbeddings(), resume=True)
    assert (out / "results.jsonl").read_text().count("\n") == 1  # left as it was


def test_eval_index_is_separate_and_incremental(mini_set: Path, tmp_path: Path) -> None:
    settings = _settings(mini_set).with_overrides(k=5)
    main_index = Settings().index_dir
    assert not settings.index_dir.is_relative_to(main_index)

    first = evaluation.run(settings, mini_set, tmp_path / "a", embedder=HashingEmbeddings())
    second = evaluation.run(settings, mini_set, tmp_path / "b", embedder=HashingEmbeddings())

    assert first.index is not None and first.index.added == 2
    assert second.index is None  # nothing changed: nothing re-embedded
    assert not main_index.exists()
    assert first.summary["fingerprint"] == second.summary["fingerprint"]


def test_a_question_asked_on_a_day_is_answered_from_that_days_articles(
    mini_set: Path, tmp_path: Path
) -> None:
    # The Biden article is dated 2024-02-23; the drone factory article is undated.
    kirby = {**QUESTIONS[0], "id": "early", "asked": "2024-01-01"}
    mini_set.write_text(json.dumps(kirby) + "\n" + json.dumps(QUESTIONS[0]) + "\n")
    out = tmp_path / "out"
    settings = _settings(mini_set).with_overrides(k=20)
    result = evaluation.run(settings, mini_set, out, embedder=HashingEmbeddings())

    early, anytime = evaluation.read_results(out / "results.jsonl")
    assert early["as_of"] == "2024-01-01" and anytime["as_of"] is None
    assert {r["source"] for r in early["retrieved"]} == {DRONES}
    assert BIDEN in {r["source"] for r in anytime["retrieved"]}
    assert early["verdict"]["failure"] == "retrieval_miss"
    assert result.summary["dated_questions"] == 1 and result.summary["as_of"] is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "question": "q?", "answers": []}\n{"id": "b", "quest', "line 2: not valid"),
        ('\n{"id": "a", "answers": ["x"]}\n', 'line 2: "question" must be'),
        ('{"id": "a", "question": "q?"}\n{"id": "a", "question": "r?"}\n', "duplicate id 'a'"),
        ('{"id": "a", "question": "q?", "answers": "Kirby"}\n', '"answers" must be a list'),
        ("[1, 2]\n", "line 1: expected a JSON object"),
        ('{"id": "a", "question": "q?", "asked": "June"}\n', 'line 1: "asked" must be a date'),
        ("\n\n", "no questions"),
    ],
)
def test_bad_questions_file_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(content)
    with pytest.raises(EvalError, match="qa.jsonl") as caught:
        evaluation.load_questions(path)
    assert message in str(caught.value)


def test_missing_questions_file(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="questions file not found: .*nope.jsonl"):
        evaluation.load_questions(tmp_path / "nope.jsonl")


def test_compare_marks_better_and_worse() -> None:
    old = {"n": 10, "answer_accuracy": 0.5, "false_refusal_rate": 0.2, "latency_ms_p50": 90.0}
    new = {"n": 10, "answer_accuracy": 0.7, "false_refusal_rate": 0.3, "latency_ms_p50": 80.0}

    deltas = {d.metric: d for d in evaluation.compare(old, new)}

    assert deltas["answer_accuracy"].delta == pytest.approx(0.2)
    assert deltas["answer_accuracy"].better is True
    assert deltas["false_refusal_rate"].better is False  # more false refusals is worse
    assert deltas["latency_ms_p50"].better is True
    assert deltas["n"].better is None


def test_compare_notes_say_when_runs_differ() -> None:
    old = {"set": "a.jsonl", "fingerprint": {"chunk_tokens": 160}, "answerer": "extractive"}
    same = dict(old)
    other = {**old, "set": "b.jsonl", "fingerprint": {"chunk_tokens": 200}}

    assert evaluation.compare_notes(old, same) == []
    notes = evaluation.compare_notes(old, other)
    assert any("question sets" in n for n in notes)
    assert any("fingerprint differs: chunk_tokens" in n for n in notes)


def test_cli_eval_table_json_and_compare(
    mini_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.embedding.query_embedder", lambda settings: HashingEmbeddings())
    runner = CliRunner()
    env = {"RAG_REFUSAL_THRESHOLD": "-1"}
    out = tmp_path / "out"
    # --articles is left out: the articles/ folder beside the set is the default.
    args = ["eval", "--set", str(mini_set), "--k", "20", "--llm", "extractive", "--out", str(out)]

    shown = runner.invoke(app, args, env=env)

    assert shown.exit_code == 0, shown.output
    assert "answer_accuracy" in shown.output and "factoid" in shown.output
    assert "retrieval_miss (1):\n  elsewhere  What did the G7 allies warn Iran about?\n" in (
        shown.output
    )
    assert "false_answer (1):\n  nothing  What did Kirby say about Iran drones" in shown.output
    assert "answer_f1               word overlap with the expected answer" in shown.output
    assert (out / "results.jsonl").is_file() and (out / "summary.json").is_file()
    assert not (tmp_path / "index").exists()  # the main index is not touched

    old = tmp_path / "old.json"
    before = json.loads((out / "summary.json").read_text())
    old.write_text(json.dumps({**before, "answer_accuracy": 0.0}))
    again = runner.invoke(app, [*args, "--json", "--compare", str(old)], env=env)

    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["n"] == 5 and data["fingerprint"] == before["fingerprint"]
    failed = {f["id"]: f for f in data["failed"]}
    assert failed["nothing"]["label"] == "false_answer" and failed["nothing"]["answer"]
    assert failed["elsewhere"]["question"] == "What did the G7 allies warn Iran about?"
    accuracy = next(d for d in data["compare"] if d["metric"] == "answer_accuracy")
    assert accuracy["old"] == 0.0 and accuracy["new"] == before["answer_accuracy"]

    offline = runner.invoke(app, ["compare", str(old), str(out)])
    assert offline.exit_code == 0, offline.output
    assert "answer_accuracy" in offline.output and "0.000" in offline.output
    # piped, the report and the comparison fit 100 columns
    for output in (shown.output, offline.output):
        assert max(len(line) for line in output.splitlines()) <= 100, [
            line for line in output.splitlines() if len(line) > 100
        ]
    as_json = json.loads(runner.invoke(app, ["compare", str(old), str(out), "--json"]).stdout)
    accuracy = next(d for d in as_json["deltas"] if d["metric"] == "answer_accuracy")
    assert accuracy["old"] == 0.0 and accuracy["new"] == before["answer_accuracy"]
    missing = runner.invoke(app, ["compare", str(tmp_path / "nothing"), str(out)])
    assert missing.exit_code == 1 and "summary not found" in missing.stderr


def test_cli_eval_keeps_the_run_before_and_says_what_next(
    mini_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.embedding.query_embedder", lambda settings: HashingEmbeddings())
    out = tmp_path / "out"
    args = ["eval", "--set", str(mini_set), "--llm", "extractive", "--out", str(out)]
    env = {"RAG_REFUSAL_THRESHOLD": "-1"}
    first = CliRunner().invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    assert "the run before it" not in first.output
    assert "one failure in full (" in first.output and "\n  rag ask " in first.output
    stamp = json.loads((out / "summary.json").read_text())["timestamp"]

    second = CliRunner().invoke(app, args, env=env)
    assert second.exit_code == 0, second.output
    (kept,) = [p for p in tmp_path.iterdir() if p.name.startswith("out-")]
    # The first run is kept whole beside the new one, and the output says how to compare them.
    assert json.loads((kept / "summary.json").read_text())["timestamp"] == stamp
    assert (kept / "results.jsonl").is_file() and (out / "summary.json").is_file()
    assert f"rag compare {kept} {out}" in " ".join(second.output.replace("\\\n", " ").split())


def test_cli_eval_bad_set_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text('{"id": "a", "question": "q?"}\nnot json\n')

    result = CliRunner().invoke(app, ["eval", "--set", str(path), "--articles", str(tmp_path)])

    assert result.exit_code == 1
    assert "line 2: not valid JSON" in result.output
    assert len(result.output.strip().splitlines()) == 1


def run_summary(p10: float, p50: float, p90: float, load: float) -> dict[str, Any]:
    """A saved eval summary with these timings, asked under this 1-minute load average."""
    return {
        "n": 72,
        "answer_accuracy": 0.9,
        "latency_ms_p10": p10,
        "latency_ms_p50": p50,
        "latency_ms_p90": p90,
        "latency_ms_p95": p90 + 100,
        "load_average": {"start": [load, 1.0, 1.0], "end": [load, 1.0, 1.0]},
    }


def test_a_timing_change_the_runs_own_spread_explains_is_no_change() -> None:
    old = run_summary(300.0, 1694.0, 2500.0, load=3.1)  # spread 2,200 ms
    same = run_summary(250.0, 492.0, 1900.0, load=0.2)  # spread 1,650 ms
    p50 = {d.metric: d for d in evaluation.compare(old, same)}["latency_ms_p50"]
    assert p50.timing and p50.within_spread is True and p50.better is None

    slower = run_summary(2700.0, 4000.0, 4600.0, load=0.2)  # 2,306 ms slower: beyond 2,200
    p50 = {d.metric: d for d in evaluation.compare(old, slower)}["latency_ms_p50"]
    assert p50.within_spread is False and p50.better is False
    accuracy = {d.metric: d for d in evaluation.compare(old, slower)}["answer_accuracy"]
    assert not accuracy.timing and accuracy.within_spread is None


def test_rag_compare_shows_timings_apart_with_the_rule_and_the_load(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(run_summary(300.0, 1694.0, 2500.0, load=3.1)))
    new.write_text(json.dumps({**run_summary(250.0, 492.0, 1900.0, load=0.2), "n": 72}))
    result = CliRunner().invoke(app, ["compare", str(old), str(new)])
    assert result.exit_code == 0, result.output
    quality, _, timings = result.stdout.partition("timings (ms")
    assert "answer_accuracy" in quality and "latency" not in quality
    assert re.search(r"latency_ms_p50 +1694 +492 +-1202 +within spread", timings)
    assert "old 2,200 ms, new 1,650 ms" in timings
    assert "1-minute load average at the start 3.1 (old) vs 0.2 (new)" in " ".join(
        result.stderr.split()
    )
    data = json.loads(CliRunner().invoke(app, ["compare", str(old), str(new), "--json"]).stdout)
    p50 = next(d for d in data["deltas"] if d["metric"] == "latency_ms_p50")
    assert p50["timing"] is True and p50["within_spread"] is True and p50["better"] is None
