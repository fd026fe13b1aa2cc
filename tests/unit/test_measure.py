"""Unit tests for rag/measure.py: the machine record and percentiles every measurement uses."""

from __future__ import annotations

import json
import platform
import random

import numpy as np
import pytest

from rag import __version__
from rag.measure import Machine, describe, machine, percentile


def test_percentile_matches_numpys_default_method() -> None:
    rng = random.Random(0)
    for size in (1, 2, 3, 10, 101):
        values = [rng.uniform(0, 1000) for _ in range(size)]
        for q in (0, 25, 50, 95, 100):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5  # unsorted input is sorted first


def test_percentile_of_no_values_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_machine_records_this_machine_as_json() -> None:
    m = machine()
    assert set(m) == set(Machine.__annotations__)
    assert json.loads(json.dumps(m)) == m  # stored as-is in summary.json and results.json
    assert m["cpu"]
    assert m["cores"] and m["usable_cores"] and 1 <= m["usable_cores"] <= m["cores"]
    assert m["python"] == platform.python_version()
    assert m["versions"]["rag"] == __version__


def test_describe_is_one_line_naming_cpu_cores_memory_os_and_python() -> None:
    line = describe(
        Machine(
            cpu="AMD EPYC",
            cores=4,
            usable_cores=2,
            memory_gb=15.6,
            os="Linux-6.1",
            python="3.11.7",
            versions={},
        )
    )
    assert line == "AMD EPYC, 2 usable of 4 cores, 15.6 GB RAM; Linux-6.1; Python 3.11.7"
