"""`rag ask --llm ollama:...` against a real server on 127.0.0.1 speaking Ollama's /api/chat
(newline-delimited JSON streaming), through langchain-ollama and the ollama client."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from rag.answering import REFUSAL
from rag.cli import app
from tests.integration.http_fakes import JSONHandler, first_passage_sentence, serving

pytestmark = pytest.mark.integration

QUESTION = "Where is the drone factory that Iran is helping Russia build?"
MODEL = "llama3.2:1b"


class FakeOllama(ThreadingHTTPServer):
    """Speaks POST /api/chat for the models it has; streams the reply one word a line."""

    def __init__(self, models: tuple[str, ...] = (MODEL,)) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.models = models
        self.requests: list[dict[str, Any]] = []  # POSTs (chat requests)
        self.listings = 0  # GET /api/tags
        self.lines_sent = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(JSONHandler):
    server: FakeOllama

    def do_GET(self) -> None:
        """GET /api/tags: the models pulled, as Ollama lists them."""
        self.server.listings += 1
        if self.path != "/api/tags":
            self.send_json(404, {"error": f"no route {self.path}"})
            return
        self.send_json(200, {"models": [{"name": m, "model": m} for m in self.server.models]})

    def do_POST(self) -> None:
        body = self.read_json()
        self.server.requests.append({"path": self.path, **body})
        if self.path != "/api/chat":
            self.send_json(404, {"error": f"no route {self.path}"})
            return
        if body.get("model") not in self.server.models:
            # What Ollama answers for a model that was never pulled.
            self.send_json(404, {"error": f"model '{body.get('model')}' not found"})
            return
        answer = f"{first_passage_sentence(body['messages'][-1]['content'])} [1]"
        if not body.get("stream", True):
            self.send_json(200, self._part(answer, done=True))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        for piece in re.findall(r"\S+\s*", answer):
            self._line(self._part(piece, done=False))
            self.server.lines_sent += 1
        self._line({**self._part("", done=True), "done_reason": "stop", "eval_count": 42})

    def _part(self, content: str, done: bool) -> dict[str, Any]:
        return {
            "model": MODEL,
            "created_at": "2026-11-25T00:00:00Z",
            "message": {"role": "assistant", "content": content},
            "done": done,
        }

    def _line(self, data: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(data).encode() + b"\n")
        self.wfile.flush()


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    """A FakeOllama serving on a thread for the test."""
    yield from serving(FakeOllama())


def rag_ask(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["ask", *args], env={"COLUMNS": "200", **env})


def test_streamed_ollama_answer_with_verified_citation(
    real_index_env: dict[str, str], ollama: FakeOllama
) -> None:
    env = {**real_index_env, "RAG_OLLAMA_URL": ollama.url}
    env["RAG_LLM_MAX_TOKENS"] = "150"
    result = rag_ask(env, QUESTION, "--llm", f"ollama:{MODEL}", "--as-of", "2024-03-01")
    assert result.exit_code == 0, result.output

    (request,) = ollama.requests
    assert request["path"] == "/api/chat"
    assert request["model"] == MODEL and request["stream"] is True
    assert request["options"]["temperature"] == 0
    assert request["options"]["num_predict"] == 150  # the answer's length is capped
    system, human = request["messages"]
    assert system["role"] == "system" and REFUSAL in system["content"]
    assert human["role"] == "user" and QUESTION in human["content"]
    assert "The question is asked on 2024-03-01" in human["content"]
    quoted = first_passage_sentence(human["content"])

    assert ollama.lines_sent > 5
    # A draft while it streams, then the same text as the verified answer.
    draft, _, rest = result.stdout.partition("\nverified answer:\n")
    assert draft.startswith("draft, not yet checked against the passages:\n")
    assert " ".join(draft.split("\n", 1)[1].split()) == " ".join(f"{quoted} [1]".split())
    verified, _, sources = rest.partition("\n[1] ")
    verified = verified.split("\nrag's judgement:")[0]  # the judgement's line follows it
    assert " ".join(verified.split()) == " ".join(f"{quoted} [1]".split())
    assert "✓" in sources.splitlines()[0]
    assert f"answered by ollama:{MODEL} as of 2024-03-01" in sources


def test_auto_uses_the_configured_ollama_model_and_json_checks_it(
    real_index_env: dict[str, str], ollama: FakeOllama
) -> None:
    env = {**real_index_env, "RAG_OLLAMA_URL": ollama.url, "RAG_OLLAMA_MODEL": MODEL}
    result = rag_ask(env, QUESTION, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answerer"] == f"ollama:{MODEL}" and not data["refused"]
    (citation,) = data["citations"]
    assert citation["n"] == 1 and citation["supported"] is True
    assert ollama.requests[0]["model"] == MODEL
    today = date.today().isoformat()
    assert f"The question is asked on {today}" in ollama.requests[0]["messages"][-1]["content"]


def test_auto_passes_over_an_ollama_without_the_model_and_says_so(
    real_index_env: dict[str, str],
) -> None:
    for ollama in serving(FakeOllama(models=("mistral",))):
        env = {**real_index_env, "RAG_OLLAMA_URL": ollama.url, "RAG_OLLAMA_MODEL": MODEL}
        result = rag_ask(env, QUESTION, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["answerer"] == "extractive" and not data["refused"]
        assert f"auto: model '{MODEL}' not found on Ollama at {ollama.url}" in data["note"]
        assert "answered extractively" in data["note"]
        assert ollama.listings == 1 and ollama.requests == []


def test_a_model_that_was_never_pulled_is_one_clear_error(
    real_index_env: dict[str, str], ollama: FakeOllama
) -> None:
    env = {**real_index_env, "RAG_OLLAMA_URL": ollama.url}
    result = rag_ask(env, QUESTION, "--llm", "ollama:mistral")
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:") and "Traceback" not in result.output
    for text in (
        "ollama:mistral",
        ollama.url,
        "not found",
        "`ollama pull mistral`",
        "--llm extractive",
    ):
        assert text in line
    assert result.stdout == ""
    # Found out from the model listing, before any search or chat request.
    assert ollama.listings == 1 and ollama.requests == []
