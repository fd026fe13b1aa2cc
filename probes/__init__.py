"""Probes: measurements that inform a choice and ship nothing (`python probes/NAME.py`).

excerpt_probe.py (what a model's cut prompt still shows), fusion_probe.py (dense/BM25 fusion on
the training questions), guard_probe.py (a scripted model through the grounding guard),
retrieval_probe.py (re-ranking ideas on rtqa-2022's candidate pools). A package so tests can
import them.
"""
