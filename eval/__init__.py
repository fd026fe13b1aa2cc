"""The evaluation scripts (`python eval/NAME.py`); a package so tests can import them."""
