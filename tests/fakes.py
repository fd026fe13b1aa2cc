"""Test doubles that are real subclasses of the interfaces they stand in for."""

from __future__ import annotations

import hashlib
import math
import re

from langchain_core.embeddings import Embeddings


class HashingEmbeddings(Embeddings):
    """Deterministic bag-of-words vectors: texts sharing words are close, no model needed."""

    def __init__(self, dims: int = 256) -> None:
        self.dims = dims
        self.calls: list[int] = []

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dims
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            h = int(hashlib.md5(word.encode()).hexdigest(), 16)
            vec[h % self.dims] += 1.0 if (h >> 8) % 2 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text; records the batch size so tests can count embedded chunks."""
        self.calls.append(len(texts))
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Same space as the documents."""
        return self._vector(text)
