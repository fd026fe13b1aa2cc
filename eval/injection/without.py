"""`python -m rag` with defence layers against injected text switched off, to measure each
layer's own effect (attack.py --without):

    python eval/injection/without.py ingest,output ask "Where is ..." --json

- ingest: hidden HTML and invisible characters are indexed (rag/visible.py not applied);
- detection: no text is found addressed to an AI assistant (rag/injection.find finds nothing),
  so nothing is flagged, blanked from the evidence, or named in a refusal;
- output: text is still flagged at index time, but an answer is verified against the passages
  as retrieved, and not screened (rag/answering/screening.py); a model's refusal or failed
  answer next to flagged text does not give way to the extractive answer.

The prompt's fencing is not switched: the obeying model of attack.py ignores it by design.
"""

from __future__ import annotations

import runpy
import sys
from dataclasses import replace


def switch_off(layers: set[str]) -> None:
    from rag import articles, injection, pipeline

    if "ingest" in layers:
        articles.strip_invisible = lambda text: (text, 0)
        articles.visible_tree = lambda html: (html, 0)
    if "detection" in layers:
        injection.find = lambda text: []
    if "output" in layers:
        injection.evidence = lambda passages, flagged=None: list(passages)
        pipeline._order_in = lambda shown, flags: None
        pipeline.screened = lambda answer, shown, tuning, flags=None: replace(
            answer, passages=list(shown)
        )


if __name__ == "__main__":
    switch_off(set(sys.argv[1].split(",")))
    sys.argv = ["rag", *sys.argv[2:]]
    runpy.run_module("rag", run_name="__main__", alter_sys=True)
