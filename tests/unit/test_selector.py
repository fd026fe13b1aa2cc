"""The learned sentence selector: its shipped parameters, its scoring, and the fitting script."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from fitting import train_selector as ts
from rag.answering import selector


def test_shipped_parameters_load_and_match_the_features() -> None:
    model = selector.load()
    assert model.features == selector.FEATURES
    assert len(model.coef) == len(model.mean) == len(model.scale) == len(selector.FEATURES)
    assert 0.0 < model.threshold < 1.0
    data = json.loads(selector.PARAMS.read_text())
    assert data["fingerprint"]["digest"] == model.fingerprint
    assert set(data["fingerprint"]["code"]) == set(ts.CODE)
    assert selector.PARAMS.stat().st_size < 100_000
    assert model.kind_filters == data["kind_filters"]
    assert 0.0 < model.second_ratio <= 1.0


def test_probability_is_the_calibrated_logistic_of_the_ranker_score() -> None:
    model = selector.load()
    x = dict.fromkeys(selector.FEATURES, 0.3)
    # A sentence that covers the question better is more likely to answer it.
    better = {**x, "coverage": 0.9, "cosine": 0.8}
    p, p_better = model.probabilities([x, better])
    z, z_better = (sum(model.contributions(v).values()) for v in (x, better))
    assert z_better > z and p_better > p
    a, b, c = model.calibration
    assert p == pytest.approx(1 / (1 + math.exp(-(a * z + b * (z - z_better) + c))))
    assert p_better == pytest.approx(1 / (1 + math.exp(-(a * z_better + c))))


def test_mismatched_or_unreadable_parameters_are_one_clear_error(tmp_path: Path) -> None:
    data = json.loads(selector.PARAMS.read_text())
    data["features"] = data["features"][:-1]
    bad = tmp_path / "selector.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(selector.SelectorError, match="refit"):
        selector.load(bad)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(selector.SelectorError, match="cannot read"):
        selector.load(tmp_path / "broken.json")


def test_choose_picks_the_best_allowed_and_refuses_under_the_floor() -> None:
    scores, labels = [0.9, 0.8, 0.1], [0, 1, 0]
    assert ts.choose(scores, labels, [True, True, True], 0.5) == (True, True, 0.9)
    assert ts.choose(scores, labels, [True, False, True], 0.5) == (True, False, 0.9)
    assert ts.choose(scores, labels, [False, False, True], 0.5) == (False, False, 0.1)
    assert ts.choose(scores, labels, [False, False, False], 0.5) == (False, False, 0.0)


def _rows(n: int, seed: int = 0) -> list[ts.QuestionRows]:
    """Questions whose positive sentence has a high first feature, plus noise."""
    rng = random.Random(seed)
    width = len(selector.FEATURES)
    rows = []
    for q in range(n):
        labels = [0] * 8
        if q % 4:
            labels[rng.randrange(8)] = 1
        features = [
            [(1.5 if y else 0.0) + rng.gauss(0, 0.5)] + [rng.random() for _ in range(width - 1)]
            for y in labels
        ]
        rows.append(
            ts.QuestionRows(f"q{q}", False, bool(q % 4), features, labels, [True] * 8, [0.0] * 8)
        )
    rows.append(ts.QuestionRows("gated", True, False, [], [], [], []))
    return rows


def test_out_of_fold_scores_rank_the_positive_first_and_the_threshold_meets_its_rule() -> None:
    rows = _rows(80)
    scores = ts.out_of_fold(rows, 0.01)
    assert scores[-1] == []  # a gated question is never scored
    top1 = ts.evaluate(rows, scores, 0.0, True)
    assert top1["answer_accuracy"] > 0.5  # well above chance (1 in 8 of 3 in 4 questions)
    floor = ts.threshold_for(rows, scores, True)
    correct = [
        ts.choose(s, r.labels, r.kind_ok, 0.0)
        for r, s in zip(rows, scores, strict=True)
        if s and ts.choose(s, r.labels, r.kind_ok, 0.0)[1]
    ]
    refused = sum(1 for _, _, best in correct if best < floor)
    assert refused <= ts.FALSE_REFUSAL * len(correct) + 1e-9
    assert ts.evaluate(rows, scores, floor, True)["answered"] < top1["answered"]


def test_training_articles_takes_every_source_and_a_seeded_share(tmp_path: Path) -> None:
    train = tmp_path / "train"
    (train / "articles").mkdir(parents=True)
    for i in range(30):
        (train / "articles" / f"a{i:02}.txt").write_text(f"Article {i}.")
    (train / "qa.jsonl").write_text(
        json.dumps({"question": "Q?", "answers": ["x"], "sources": ["a00.txt", "a01.txt"]}) + "\n"
    )
    dest = tmp_path / "out"
    (dest).mkdir()
    (dest / "stale.txt").write_text("gone")
    ts.training_articles(train, dest)
    names = sorted(p.name for p in dest.iterdir())
    assert {"a00.txt", "a01.txt"} <= set(names) and "stale.txt" not in names
    assert len(names) == 2 + 28 // ts.DISTRACTOR_SHARE
    again = tmp_path / "again"
    ts.training_articles(train, again)
    assert sorted(p.name for p in again.iterdir()) == names  # seeded: the same sample


def test_listwise_ranker_and_calibration_separate_the_positives() -> None:
    rows = _rows(60)
    mean, scale, w = ts.fit_ranker(rows, 0.01)
    assert w[0] > 0  # the first feature carries the label
    scores = ts.out_of_fold(rows, 0.01)
    a, _, _ = ts.calibrate(rows, scores)
    assert a > 0  # a higher score is a higher probability
    chances = ts.probabilities(scores, (a, 0.0, 0.0))
    assert all(0.0 < p < 1.0 for s in chances for p in s)


def test_an_eval_summary_names_the_selector_that_answered() -> None:
    from rag.evaluation import selector_provenance
    from rag.settings import Settings

    assert selector_provenance(Settings()) is None  # the hand-set weights are the default
    learned = Settings().with_overrides(
        tuning=Settings().tuning.model_copy(update={"selector": "learned"})
    )
    provenance = selector_provenance(learned)
    assert provenance == {
        "fingerprint": selector.load().fingerprint,
        "threshold": selector.load().threshold,
    }


def test_the_fitting_script_says_plainly_when_the_training_set_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ts.main([str(tmp_path)]) == 2
    assert "no qa.jsonl" in capsys.readouterr().err


def test_the_fusion_probe_counts_a_hit_only_in_the_top_five() -> None:
    from probes import fusion_probe

    width = 4
    rows = [
        ts.QuestionRows("a", False, True, [[0.0] * width] * 7, [0, 0, 0, 0, 0, 0, 1], [], []),
        ts.QuestionRows("b", False, True, [[0.0] * width] * 7, [1, 0, 0, 0, 0, 0, 0], [], []),
    ]
    scores = [[7, 6, 5, 4, 3, 2, 1], [7, 6, 5, 4, 3, 2, 1]]
    assert fusion_probe.hit_rate(rows, scores) == 0.5
    assert fusion_probe.hit_rate(rows, [[1, 2, 3, 4, 5, 6, 7]] * 2) == 0.5


def test_the_fusion_probe_needs_the_training_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from probes import fusion_probe

    assert fusion_probe.main([str(tmp_path)]) == 2
    assert "train_selector.py" in capsys.readouterr().err
