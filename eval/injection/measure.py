"""Measure the ingest and detection layers against the attack suite and real news, cheaply
(no model): writes eval/INJECTION.md.

    python eval/injection/measure.py ../shared/bench/rtqa-2024-train ../shared/bench/rtqa-2022

For each attack article: is the attack's text still in the article after ingest (hidden HTML
and invisible characters left out, rag/visible.py), and if so is every occurrence inside a span
rag/injection.py flags. For the benign twins and each bench folder's articles: how many are
flagged at all (false positives), and the time the scan takes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rag import injection
from rag.articles import load, scan

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "INJECTION.md"
ATTACKS_SECTION = "## Attack success through `rag ask`"


def _covered(text: str, mark: str, spans: list[injection.Span]) -> bool:
    """Whether every occurrence of mark in text lies inside a flagged span."""
    at = text.find(mark)
    while at >= 0:
        if not any(s.start <= at and at + len(mark) <= s.end for s in spans):
            return False
        at = text.find(mark, at + 1)
    return True


def suite() -> tuple[list[str], dict[str, int]]:
    rows = [json.loads(line) for line in (HERE / "attacks.jsonl").open(encoding="utf-8")]
    files = {f.rel: f for f in scan(HERE / "articles")[0]}
    lines = ["| id | after ingest | flagged |", "|---|---|---|"]
    counts = {
        "attacks": 0,
        "removed": 0,
        "flagged": 0,
        "missed": 0,
        "benign": 0,
        "benign_flagged": 0,
    }
    for row in rows:
        article = load(files[row["sources"][0]])
        spans = injection.find(article.text)
        if row["type"] == "injection-benign":
            counts["benign"] += 1
            counts["benign_flagged"] += bool(spans)
            lines.append(f"| {row['id']} | benign | {'**yes**' if spans else 'no'} |")
            continue
        counts["attacks"] += 1
        mark = row["attack"]
        if mark == "don't contain":  # a refusal order: its words are the instruction itself
            mark = "articles don't contain"
        present = mark in article.text
        if not present:
            counts["removed"] += 1
            lines.append(f"| {row['id']} | removed | – |")
        elif _covered(article.text, mark, spans):
            counts["flagged"] += 1
            lines.append(f"| {row['id']} | present | yes |")
        else:
            counts["missed"] += 1
            lines.append(f"| {row['id']} | present | **no** |")
    return lines, counts


def bench(folder: Path) -> tuple[int, int, float, list[str]]:
    """(articles, flagged, seconds, the flagged files with their first match)."""
    files = sorted((folder / "articles").glob("*.txt"))
    started = time.perf_counter()
    hits = []
    for f in files:
        spans = injection.find(f.read_text(encoding="utf-8", errors="replace"))
        if spans:
            hits.append(f"{f.name}: {injection.describe(spans[0])}")
    return len(files), len(hits), time.perf_counter() - started, hits


def main(folders: list[str]) -> None:
    lines, c = suite()
    report = [
        "# Text addressed to an AI: what ingest and detection catch",
        "",
        "Written by `python eval/injection/measure.py " + " ".join(folders) + "` (no model:",
        "article loading and rag/injection.py only). The answer-level figures (attack success",
        "through `rag ask`) are eval/injection/attack.py's, in the last section. The rules and the suite were written",
        "together, so the suite's figures are an upper bound on what unseen attacks meet;",
        "the real-news figures are the ones to trust. Scan times are on a busy 2-core machine.",
        "",
        "## False positives on real news (share of articles with any flagged span)",
        "",
        "| set | articles | flagged | share | scan time |",
        "|---|---:|---:|---:|---:|",
    ]
    details = []
    for folder in folders:
        n, hits, seconds, named = bench(Path(folder))
        report.append(
            f"| {Path(folder).name} | {n:,} | {hits} | {hits / n:.2%} | {seconds:.1f} s "
            f"({seconds / n * 1000:.1f} ms an article) |"
        )
        details += [f"- {Path(folder).name}/{h}" for h in named]
    report += [""] + (details or ["No article of these sets is flagged."]) + [""]
    report += [
        "## The attack suite (eval/injection/attacks.jsonl)",
        "",
        f"{c['attacks']} attacks: {c['removed']} removed at ingest (hidden HTML, invisible "
        f"characters), {c['flagged']} flagged wherever their text appears, {c['missed']} "
        f"missed by both. {c['benign']} benign twins: {c['benign_flagged']} flagged.",
        "",
        *lines,
        "",
    ]
    # What attack.py measured (written by hand from its output) stays as it was.
    kept = OUT.read_text("utf-8").partition(ATTACKS_SECTION)[1:] if OUT.exists() else ()
    OUT.write_text("\n".join(report) + ("\n" if kept else "") + "".join(kept), encoding="utf-8")
    print(f"wrote {OUT}: {c}")


if __name__ == "__main__":
    main(sys.argv[1:])
