"""Where torch runs: RAG_DEVICE=auto|cpu|cuda resolved against what this machine has."""

from __future__ import annotations

from typing import Literal

from rag.errors import RagError

DeviceSetting = Literal["auto", "cpu", "cuda"]


class DeviceError(RagError):
    """The device asked for is not there."""


def torch_device(setting: DeviceSetting) -> str:
    """'cuda' or 'cpu' for the setting: 'auto' is CUDA when torch sees a CUDA device, else the
    CPU; 'cuda' without one is an error rather than a silent fall back to the CPU. Imports torch
    unless the setting is 'cpu' (call it where torch is about to load anyway)."""
    if setting == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if setting == "cuda" and not available:
        raise DeviceError(
            "RAG_DEVICE=cuda, but torch sees no CUDA device (a CPU-only torch build, or no GPU "
            "driver); use RAG_DEVICE=auto or cpu"
        )
    return "cuda" if available else "cpu"
