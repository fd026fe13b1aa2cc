"""RAG_DEVICE: where torch runs, decided without a GPU in sight (torch.cuda is stood in for)."""

from __future__ import annotations

import sys

import pytest

from rag.devices import DeviceError, torch_device
from rag.embedding import index_embedder
from rag.settings import Settings


@pytest.fixture
def cuda(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - a setter
    import torch

    def seen(available: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)

    return seen


def test_auto_is_cuda_where_torch_sees_it_else_the_cpu(cuda) -> None:  # noqa: ANN001
    cuda(True)
    assert torch_device("auto") == "cuda"
    cuda(False)
    assert torch_device("auto") == "cpu"


def test_cuda_asked_for_and_not_there_is_an_error_not_a_silent_cpu(cuda) -> None:  # noqa: ANN001
    cuda(False)
    with pytest.raises(DeviceError, match="RAG_DEVICE=cuda, but torch sees no CUDA device"):
        torch_device("cuda")
    cuda(True)
    assert torch_device("cuda") == "cuda"


def test_cpu_needs_no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # importing torch would now fail
    assert torch_device("cpu") == "cpu"


def test_the_setting_reaches_the_index_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().device == "auto"
    monkeypatch.setenv("RAG_DEVICE", "cpu")
    assert index_embedder(Settings()).device == "cpu"
    monkeypatch.setenv("RAG_DEVICE", "gpu")
    with pytest.raises(ValueError, match="device"):
        Settings()
