"""The fast slice of probes/guard_probe.py: a scripted model answers through the real
`rag eval --llm openai:` path over the shipped articles, verbatim, paraphrased and with the
answer swapped for a wrong choice; the guard keeps the first two and refuses the third."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHIPPED_ARTICLES

pytestmark = pytest.mark.integration


def test_the_guard_keeps_paraphrases_and_refuses_swapped_answers(tmp_path: Path) -> None:
    quiz = tmp_path / "set"
    shutil.copytree(REPO / "tests" / "data" / "guard-probe", quiz)
    shutil.copytree(SHIPPED_ARTICLES, quiz / "articles")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_MODELS_DIR"] = str(tmp_path / "models")
    proc = subprocess.run(
        [sys.executable, str(REPO / "probes" / "guard_probe.py"), str(quiz), "--limit", "2"]
        + ["--out", str(tmp_path / "out"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout)

    for mode in ("verbatim", "paraphrase", "swapped"):
        assert figures[mode]["answer_not_retrieved"] == 0, figures[mode]
        assert figures[mode]["answered"] == 2
    assert figures["verbatim"]["kept_answer"] == 2
    assert figures["paraphrase"]["kept_answer"] == 2, figures["paraphrase"]
    assert figures["swapped"]["accepted_wrong"] == 0, figures["swapped"]
    # every swapped sentence was dropped, or cut to a clause without the swap, by the fact
    # check naming the swapped place
    results = (tmp_path / "out" / "swapped" / "results.jsonl").read_text().splitlines()
    rows = list(map(json.loads, results))
    reasons = [d["reason"] for r in rows for d in [*r["dropped"], *r["cut"]]]
    assert len(reasons) == 2
    assert any('"Chechnya" is not in passage' in r for r in reasons), reasons
    assert any('"Bandar" is not in passage' in r for r in reasons), reasons
