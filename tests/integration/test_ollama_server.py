"""`rag ask --llm ollama:...` against a real server on 127.0.0.1 speaking Ollama's /api/chat
(newline-delimited JSON streaming), through langchain-ollama and the ollama client."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from rag.answering import REFUSAL
from rag.chunking import split_sentences
from rag.cli import app

pytestmark = pytest.mark.integration

QUESTION = "Where is the drone factory that Iran is helping Russia build?"
MODEL = "llama3.2:1b"


def first_passage_sentence(prompt: str) -> str:
    """The first sentence of passage [1] in the answer prompt, as the model would quote it."""
    block = re.search(r"^\[1\] [^\n]*\n(.+?)(?:\n\n\[2\] |\n\nQuestion:)", prompt, re.S | re.M)
    assert block, prompt
    s, e = split_sentences(block.group(1))[0]
    return block.group(1)[s:e]


class FakeOllama(ThreadingHTTPServer):
    """Speaks POST /api/chat for the models it has; streams the reply one word a line."""

    def __init__(self, models: tuple[str, ...] = (MODEL,)) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.models = models
        self.requests: list[dict[str, Any]] = []
        self.lines_sent = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeOllama

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is the CLI's."""

    def handle(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, **body})
        if self.path != "/api/chat":
            self._json(404, {"error": f"no route {self.path}"})
            return
        if body.get("model") not in self.server.models:
            # What Ollama answers for a model that was never pulled.
            self._json(404, {"error": f"model '{body.get('model')}' not found"})
            return
        answer = f"{first_passage_sentence(body['messages'][-1]['content'])} [1]"
        if not body.get("stream", True):
            self._json(200, self._part(answer, done=True))
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

    def _json(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    """A FakeOllama serving on a thread for the test."""
    server = FakeOllama()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def rag_ask(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["ask", *args], env={"COLUMNS": "200", **env})


def test_streamed_ollama_answer_with_verified_citation(
    real_index_env: dict[str, str], ollama: FakeOllama
) -> None:
    env = {**real_index_env, "RAG_OLLAMA_URL": ollama.url}
    result = rag_ask(env, QUESTION, "--llm", f"ollama:{MODEL}", "--as-of", "2024-03-01")
    assert result.exit_code == 0, result.output

    (request,) = ollama.requests
    assert request["path"] == "/api/chat"
    assert request["model"] == MODEL and request["stream"] is True
    assert request["options"]["temperature"] == 0
    system, human = request["messages"]
    assert system["role"] == "system" and REFUSAL in system["content"]
    assert human["role"] == "user" and QUESTION in human["content"]
    assert "The question is asked on 2024-03-01" in human["content"]
    quoted = first_passage_sentence(human["content"])

    assert ollama.lines_sent > 5
    streamed, _, sources = result.stdout.partition("\n[1] ")
    assert " ".join(streamed.split()) == " ".join(f"{quoted} [1]".split())
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
