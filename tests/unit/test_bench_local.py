"""bench/RESULTS.md's local-model section, rendered from bench/local_llm.py's saved lines."""

from __future__ import annotations

import json
from pathlib import Path

from bench.bench import local_section


def test_each_saved_answer_is_a_row_beside_the_extractive_time(tmp_path: Path) -> None:
    saved = tmp_path / "bench" / "local_llm.jsonl"
    saved.parent.mkdir()
    head = {"model": "qwen2.5-coder-1.5b", "date": "2026-12-02", "commit": "abc1234"}
    row = {
        "threads": 1,
        "question": "Who is Iran's defence minister?",
        "prompt_tokens": 2081,
        "ttft_s": 94.85,
        "answer_s": 102.48,
        "generated_tokens": 11,
        "extractive_ask_s": 0.77,
        "load_average": 2.61,
    }
    cut = row | {"dtype": "bfloat16", "prompt_budget": 600, "prompt_tokens": 812}
    saved.write_text(
        f"{json.dumps(head)}\n{json.dumps(row)}\n{json.dumps(row | {'dtype': 'bfloat16'})}\n"
        f"{json.dumps(cut)}\n"
    )

    lines = local_section(saved, tmp_path / "bench" / "RESULTS.md")

    rows = [line for line in lines if line.startswith("| qwen")]
    # A line saved before RAG_LOCAL_DTYPE existed was float32; before Tuning.prompt_budget, the
    # model was shown the passages whole.
    assert rows == [
        "| qwen2.5-coder-1.5b | 2026-12-02 @ abc1234 | 1 | float32 | whole passages | Who is "
        "Iran's defence minister? | 2081 | 94.85 s | 102.48 s | 11 | 0.77 s | 2.61 |",
        "| qwen2.5-coder-1.5b | 2026-12-02 @ abc1234 | 1 | bfloat16 | whole passages | Who is "
        "Iran's defence minister? | 2081 | 94.85 s | 102.48 s | 11 | 0.77 s | 2.61 |",
        "| qwen2.5-coder-1.5b | 2026-12-02 @ abc1234 | 1 | bfloat16 | best sentences, 600 word "
        "pieces | Who is Iran's defence minister? | 812 | 94.85 s | 102.48 s | 11 | 0.77 s | 2.61 |",
    ]
    assert any("[local_llm.jsonl](local_llm.jsonl)" in line for line in lines)
