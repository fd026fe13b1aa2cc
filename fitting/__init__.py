"""The fitters: each writes a parameter file rag ships (`python fitting/NAME.py`).

| script | writes |
|---|---|
| fit_judgement.py | rag/answering/judgement.json (the answer judgement and its threshold) |
| fit_types.py | rag/answering/types.json (the answer-type check) |
| fit_guard.py | the grounding guard's Tuning.guard_* defaults, figures in eval/guard-fit.json |
| train_selector.py | rag/answering/selector.json (the learned sentence selector, not the default) |
| tune_weights.py | the hand-set Tuning weights (a grid; its figures go to eval/RESULTS.md) |

guard_cases.py reads the training quizzes for fit_guard.py and probes/guard_probe.py. A package
so tests and probes can import them.
"""
