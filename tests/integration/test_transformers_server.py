"""`--llm openai:...` against a real OpenAI-compatible server on 127.0.0.1: Hugging Face's
`transformers serve` (FastAPI and uvicorn, installed with the test extra), serving the SmolLM2-135M
that `--llm local:` runs in process, converted from the same pinned GGUF.

The scripted fakes in test_openai_server.py test the failure modes (a crashing or dead server);
these test that a real server's stream, its chat template and its model's real answers go
through rag's parsing and verification. They assert shape and grounding, not wording.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.answering.llm import LLMAnswerer
from rag.local_models import prepare
from rag.pipeline import Pipeline
from tests.conftest import settings_of
from tests.integration.servers import free_port, running
from tests.integration.test_ask_cli import run_rag
from tests.integration.test_local_model import (
    FACTORY,
    MINISTER,
    assert_condenses_a_follow_up,
    assert_every_sentence_judged,
    assert_kept_only_what_is_supported,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(
    local_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """`transformers serve` on a free port, serving SmolLM2: (its base URL …/v1, its model name)."""
    folder = prepare("smollm2-135m", Path(local_env["RAG_MODELS_DIR"]))
    port = str(free_port())
    command = [
        str(Path(sys.executable).with_name("transformers")),
        "serve",
        folder.name,  # the one model it serves, by that name (a folder in its working directory)
        *("--host", "127.0.0.1", "--port", port, "--device", "cpu"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the folder is local; nothing is downloaded
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("transformers-serve") / "server.log"
    with running(command, f"{url}/health", log, startup_s=180, cwd=folder.parent, env=env):
        yield f"{url}/v1", folder.name


@pytest.fixture(scope="module")
def server_env(local_env: dict[str, str], served: tuple[str, str]) -> dict[str, str]:
    """local_env, answering with the served model (RAG_LLM is its openai: spec)."""
    url, model = served
    return {**local_env, "RAG_OPENAI_BASE_URL": url, "RAG_LLM": f"openai:{model}"}


def test_a_real_server_streams_an_answer_that_is_parsed_and_verified(
    server_env: dict[str, str],
) -> None:
    pipeline = Pipeline(settings_of(server_env, llm=server_env["RAG_LLM"]))
    tokens: list[str] = []
    answer = pipeline.ask(FACTORY, on_token=tokens.append)

    assert answer.answerer == server_env["RAG_LLM"]
    assert len(tokens) > 5  # the server's SSE stream arrived piece by piece
    assert_every_sentence_judged(answer, "".join(tokens))


def test_rag_ask_through_a_real_server_keeps_only_what_the_passages_support(
    server_env: dict[str, str],
) -> None:
    """ "Who is Iran's defence minister?": no article says, and a tiny model invents."""
    result = run_rag(server_env, "ask", MINISTER, "--llm", server_env["RAG_LLM"], "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    assert data["answerer"] == server_env["RAG_LLM"]
    assert_kept_only_what_is_supported(data)


def test_the_answer_length_cap_reaches_the_real_server(server_env: dict[str, str]) -> None:
    """RAG_LLM_MAX_TOKENS is sent as max_completion_tokens, and this server honours it."""
    settings = settings_of(server_env, llm=server_env["RAG_LLM"], llm_max_tokens=5)
    answerer = Pipeline(settings).answerer()
    assert isinstance(answerer, LLMAnswerer)
    reply = answerer.chat.invoke("Count from one to a hundred in words.")
    assert 0 < reply.usage_metadata["output_tokens"] <= 5


def test_a_follow_up_is_condensed_by_the_real_server(server_env: dict[str, str]) -> None:
    assert_condenses_a_follow_up(Pipeline(settings_of(server_env, llm=server_env["RAG_LLM"])))
