"""`rag ask --llm openai:...` against a real OpenAI-compatible server on 127.0.0.1 (SSE streaming)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from rag.answering import REFUSAL
from rag.cli import app
from tests.integration.http_fakes import JSONHandler, first_passage_sentence, serving
from tests.integration.servers import free_port

pytestmark = pytest.mark.integration

QUESTION = "Where is the drone factory that Iran is helping Russia build?"
UNCITED = "Analysts expect more such factories."


class FakeOpenAI(ThreadingHTTPServer):
    """Speaks /v1/chat/completions: a streamed (SSE) or plain reply quoting passage [1]."""

    def __init__(
        self, status: int = 200, delay: float = 0.0, error: dict[str, Any] | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.status = status
        self.error = error or {"error": {"message": "the model crashed"}}  # the body of a non-200
        self.delay = delay  # seconds between streamed chunks
        self.requests: list[dict[str, Any]] = []
        self.answers: list[str] = []
        self.chunks_sent = 0

    @property
    def url(self) -> str:
        """The base URL a client is configured with."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(JSONHandler):
    server: FakeOpenAI

    def do_POST(self) -> None:
        body = self.read_json()
        self.server.requests.append({"path": self.path, **body})
        if self.path != "/v1/chat/completions":
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if self.server.status != 200:
            self.send_json(self.server.status, self.server.error)
            return
        answer = f"{first_passage_sentence(body['messages'][-1]['content'])} [1] {UNCITED}"
        self.server.answers.append(answer)
        if not body.get("stream"):
            message = {"role": "assistant", "content": answer}
            self.send_json(200, {**_envelope("chat.completion"), "choices": [{"message": message}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in re.findall(r"\S+\s*", answer):
            time.sleep(self.server.delay)
            self._event(
                {
                    **_envelope("chat.completion.chunk"),
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
            )
            self.server.chunks_sent += 1
        self._event(
            {
                **_envelope("chat.completion.chunk"),
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
        )
        self.wfile.write(b"data: [DONE]\n\n")

    def _event(self, data: dict[str, Any]) -> None:
        self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()


def _envelope(kind: str) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": kind, "created": 1, "model": "test-model"}


def serve(
    status: int = 200, delay: float = 0.0, error: dict[str, Any] | None = None
) -> Iterator[FakeOpenAI]:
    """A FakeOpenAI serving on a thread for as long as the generator is suspended."""
    yield from serving(FakeOpenAI(status, delay, error))


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    """A healthy OpenAI-compatible server on a free port."""
    yield from serve()


@pytest.fixture
def broken_server() -> Iterator[FakeOpenAI]:
    """A server that answers every completion with HTTP 500."""
    yield from serve(500)


def rag_ask(env: dict[str, str], *args: str) -> Result:
    """`rag ask ARGS` in-process, on a wide terminal so no source line wraps."""
    return CliRunner().invoke(app, ["ask", *args], env={"COLUMNS": "200", **env})


def assert_one_clear_error(result: Result, *mentions: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for text in (*mentions, "--llm extractive"):
        assert text in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_streamed_answer_with_verified_citation(
    real_index_env: dict[str, str], openai_server: FakeOpenAI
) -> None:
    env = {**real_index_env, "RAG_OPENAI_BASE_URL": openai_server.url, "RAG_LLM_MAX_TOKENS": "150"}
    result = rag_ask(env, QUESTION, "--llm", "openai:test-model")
    assert result.exit_code == 0, result.output

    (request,) = openai_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "test-model" and request["stream"] is True
    assert request["max_completion_tokens"] == 150  # the answer's length is capped
    system, human = request["messages"]
    assert system["role"] == "system" and REFUSAL in system["content"]
    assert human["role"] == "user"
    assert QUESTION in human["content"] and re.search(r"^\[1\] ", human["content"], re.M)
    assert re.search(r"^\[3\] ", human["content"], re.M)
    quoted = first_passage_sentence(human["content"])

    assert openai_server.chunks_sent > 5
    # The stream shows what the model wrote, labelled a draft; the uncited sentence is then
    # dropped from the verified answer shown after it, and listed as dropped.
    streamed, _, verified = result.stdout.partition("\nverified answer:")
    assert streamed.startswith("draft, not yet checked against the passages:\n")
    streamed = streamed.split("\n", 1)[1]
    assert " ".join(streamed.split()) == " ".join(f"{quoted} [1] {UNCITED}".split())
    answer_and_sources, _, dropped = verified.partition("dropped 1 sentence(s)")
    assert UNCITED not in answer_and_sources and "✓" in answer_and_sources
    assert UNCITED in dropped
    assert "answered by openai:test-model" in dropped


def test_json_reports_the_llm_answer_and_its_checks(
    real_index_env: dict[str, str], openai_server: FakeOpenAI
) -> None:
    env = {**real_index_env, "RAG_OPENAI_BASE_URL": openai_server.url}
    result = rag_ask(env, QUESTION, "--llm", "openai:test-model", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answerer"] == "openai:test-model" and not data["refused"]
    assert UNCITED not in data["answer"] and data["answer"].rstrip(".").endswith("[1]")
    (dropped,) = data["dropped"]
    assert (dropped["text"], dropped["cites"]) == (UNCITED, [])
    assert dropped["reason"].startswith("it cites no passage, and none supports it: passage [")
    (citation,) = data["citations"]
    assert citation["n"] == 1 and citation["supported"] is True
    assert citation["source"] == data["retrieved"][0]["source"]


def test_auto_uses_the_configured_openai_model(
    real_index_env: dict[str, str], openai_server: FakeOpenAI
) -> None:
    env = {
        **real_index_env,
        "RAG_OPENAI_BASE_URL": openai_server.url,
        "RAG_OPENAI_MODEL": "test-model",
    }
    result = rag_ask(env, QUESTION, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["answerer"] == "openai:test-model"
    assert openai_server.requests[0]["model"] == "test-model"


def test_off_topic_question_is_refused_without_calling_the_model(
    real_index_env: dict[str, str], openai_server: FakeOpenAI
) -> None:
    env = {**real_index_env, "RAG_OPENAI_BASE_URL": openai_server.url}
    result = rag_ask(env, "What is the capital of France?", "--llm", "openai:test-model")
    assert result.exit_code == 0, result.output
    assert REFUSAL in " ".join(result.stdout.split())
    assert openai_server.requests == []


def test_unreachable_server_is_one_clear_error(real_index_env: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = rag_ask(
        {**real_index_env, "RAG_OPENAI_BASE_URL": url}, QUESTION, "--llm", "openai:test-model"
    )
    assert_one_clear_error(result, url, "RAG_OPENAI_BASE_URL")


def test_server_error_is_one_clear_error(
    real_index_env: dict[str, str], broken_server: FakeOpenAI
) -> None:
    env = {**real_index_env, "RAG_OPENAI_BASE_URL": broken_server.url}
    result = rag_ask(env, QUESTION, "--llm", "openai:test-model")
    assert_one_clear_error(result, broken_server.url, "500", "the model crashed")
    assert len(broken_server.requests) == 1  # no silent retries


def test_a_servers_own_error_detail_is_in_the_one_line_error(
    real_index_env: dict[str, str],
) -> None:
    """FastAPI servers (transformers serve, among others) say what is wrong in {"detail"}."""
    detail = "Server is pinned to 'other-model'; requested 'test-model'."
    for server in serve(400, error={"detail": detail}):
        env = {**real_index_env, "RAG_OPENAI_BASE_URL": server.url}
        result = rag_ask(env, QUESTION, "--llm", "openai:test-model")
        assert_one_clear_error(result, server.url, "400", detail.rstrip("."))


def test_unreachable_ollama_is_one_clear_error(real_index_env: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = rag_ask({**real_index_env, "RAG_OLLAMA_URL": url}, QUESTION, "--llm", "ollama:llama3")
    assert_one_clear_error(result, url, "RAG_OLLAMA_URL")
