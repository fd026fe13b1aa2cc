"""What the fake LLM servers share: a quiet JSON handler, serving on a thread, the prompt's
passage [1] as a model would quote it."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from rag.answering.excerpt import GAP
from rag.chunking import split_sentences

Server = TypeVar("Server", bound=ThreadingHTTPServer)


def first_passage_sentence(prompt: str) -> str:
    """The first sentence of passage [1] in the answer prompt, as the model would quote it (the
    prompt may show a passage's best sentences only, "…" marking what it leaves out)."""
    block = re.search(r"^\[1\] [^\n]*\n(.+?)(?:\n\n\[\d+\] |\n\nQuestion:)", prompt, re.S | re.M)
    assert block, prompt
    text = block.group(1).removeprefix(f"{GAP} ")
    s, e = split_sentences(text)[0]
    return text[s:e]


class JSONHandler(BaseHTTPRequestHandler):
    """Quiet, tolerant of clients that hang up, and able to answer one JSON object."""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is the CLI's."""

    def handle(self) -> None:
        # A client that hangs up mid-stream (Ctrl-C in rag chat) leaves nothing to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def read_json(self) -> dict[str, Any]:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def send_json(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def send_completion(self, text: str, stream: bool, model: str = "scripted") -> None:
        """An OpenAI chat completion of text: one JSON object, or (stream) the text as one
        server-sent chunk, then the stop chunk and [DONE]."""
        if not stream:
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            self.send_json(200, {"id": "x", "object": "chat.completion", "model": model,
                                 "choices": [choice]})  # fmt: skip
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in (text, None):
            delta = {"content": piece} if piece else {}
            choice = {"index": 0, "delta": delta, "finish_reason": None if piece else "stop"}
            chunk = {"id": "x", "object": "chat.completion.chunk", "model": model,
                     "choices": [choice]}  # fmt: skip
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


def serving(server: Server) -> Iterator[Server]:
    """server, serving on a thread for as long as the generator is suspended."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
