"""What every measurement records: the machine it ran on, and percentiles of timings."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict

# The packages whose versions move the figures.
PACKAGES = ("rag", "torch", "sentence-transformers", "onnxruntime", "chromadb", "bm25s")


class Machine(TypedDict):
    """The machine a run was measured on; stored as-is in summary.json and bench results."""

    cpu: str
    cores: int | None
    usable_cores: int | None
    memory_gb: float | None
    os: str
    python: str
    versions: dict[str, str | None]


def _proc_field(path: Path, key: str) -> str | None:
    """The value of `key:` in a /proc file (Linux), or None where there is none."""
    if path.is_file():
        for line in path.read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    return None


def machine() -> Machine:
    """This machine: CPU model, cores (all, and usable by this process), memory, OS, versions."""
    memory_kb = _proc_field(Path("/proc/meminfo"), "MemTotal")
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return Machine(
        cpu=_proc_field(Path("/proc/cpuinfo"), "model name")
        or platform.processor()
        or platform.machine(),
        cores=os.cpu_count(),
        usable_cores=len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        memory_gb=round(int(memory_kb.split()[0]) / 1024 / 1024, 1) if memory_kb else None,
        os=platform.platform(),
        python=platform.python_version(),
        versions=versions,
    )


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (runnable processes), where the OS has them: a
    run's timings depend on what else the machine was doing."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def describe(m: Mapping[str, Any]) -> str:
    """One line for a results file: "CPU, 2 usable of 4 cores, 15.6 GB RAM; OS; Python 3.11"."""
    return (
        f"{m['cpu']}, {m['usable_cores']} usable of {m['cores']} cores, "
        f"{m['memory_gb']} GB RAM; {m['os']}; Python {m['python']}"
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of non-empty values, linear between closest ranks (numpy's
    default method)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
