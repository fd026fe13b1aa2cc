"""`python bench/auto_update.py`: an article added, then a question. How long until the answer
when `rag ask` updates the index itself (RAG_AUTO_INDEX=small, issue 32), against running
`rag index` by hand first and then `rag ask`: real processes, alternated, medians of --runs.

Each run starts from an index of the four shipped articles, adds one rtqa-2022 article (a
different one each run) and asks the same question. "auto" is one `rag ask` process; "manual"
is `rag index` plus `rag ask` (RAG_AUTO_INDEX=never), timed together and apart.

    python bench/auto_update.py --runs 5 --json bench/auto_update.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RTQA = ROOT.parent / "shared" / "bench" / "rtqa-2022" / "articles"
QUESTION = "Where is the drone factory being built?"


def timed(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Seconds a `python -m rag ARGS --json` process took, and its JSON."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rag", *args, "--json"], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"rag {args[0]} failed: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, dest="json_out")
    args = parser.parse_args(argv)

    added = sorted(RTQA.glob("*.txt"))[: 2 * args.runs]
    rows: dict[str, list[dict[str, float]]] = {"auto": [], "manual": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        shutil.copytree(ROOT / "articles", base / "articles")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env |= {"RAG_ARTICLES_DIR": str(base / "articles"), "RAG_INDEX_DIR": str(base / "index")}
        timed(["index"], env)
        for run in range(args.runs):
            for mode in ("auto", "manual") if run % 2 == 0 else ("manual", "auto"):
                work = Path(tmp) / f"{mode}-{run}"
                shutil.copytree(base, work)
                here = env | {
                    "RAG_ARTICLES_DIR": str(work / "articles"),
                    "RAG_INDEX_DIR": str(work / "index"),
                    "RAG_AUTO_INDEX": "small" if mode == "auto" else "never",
                }
                timed(["index"], here)  # untimed: the copy's index records its own folder
                new = added[2 * run + (mode == "manual")]
                shutil.copyfile(new, work / "articles" / new.name)
                if mode == "auto":
                    asked, answer = timed(["ask", QUESTION], here)
                    assert "updated" in (answer.get("note") or ""), answer.get("note")
                    rows[mode].append({"total": asked})
                else:
                    indexed, _ = timed(["index"], here)
                    asked, _ = timed(["ask", QUESTION], here)
                    rows[mode].append({"total": indexed + asked, "index": indexed, "ask": asked})
                shutil.rmtree(work)
                print(mode, run, rows[mode][-1], file=sys.stderr, flush=True)
    results = {
        "runs": args.runs,
        "auto_s_p50": round(statistics.median(r["total"] for r in rows["auto"]), 2),
        "manual_s_p50": round(statistics.median(r["total"] for r in rows["manual"]), 2),
        "manual_index_s_p50": round(statistics.median(r["index"] for r in rows["manual"]), 2),
        "manual_ask_s_p50": round(statistics.median(r["ask"] for r in rows["manual"]), 2),
        "rows": rows,
    }
    results["auto_over_manual"] = round(results["auto_s_p50"] / results["manual_s_p50"], 3)
    text = json.dumps(results, indent=2)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
