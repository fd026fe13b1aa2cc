"""The benchmark script (`python bench/bench.py`); a package so tests can import it."""
