"""`rag chat` in a real pseudo-terminal (pexpect): prompt_toolkit, follow-ups, commands, Ctrl-D."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

pytestmark = pytest.mark.integration

RAG = Path(sys.executable).with_name("rag")
PROMPT = "rag>"  # prompt_toolkit draws the trailing space as a cursor move
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|[\r\x07]")


def screen_text(raw: str) -> str:
    """What the user read, escape sequences removed and line wrapping undone."""
    return " ".join(ANSI.sub("", raw).split())


def spawn_chat(env: dict[str, str], home: Path, *args: str) -> pexpect.spawn:
    """`rag chat ARGS` on a terminal 200 columns wide, with only the given RAG_* settings."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    full.update(env)
    # No cursor position requests: the pty answers none, and prompt_toolkit would wait for it.
    full.update(TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="200", HOME=str(home))
    return pexpect.spawn(
        str(RAG),
        ["chat", *args],
        env=full,
        encoding="utf-8",
        timeout=180,
        dimensions=(50, 200),
        # A user's terminal delivers Ctrl-C; a test run started in the background (`cmd &` in a
        # script) would pass on an ignored SIGINT, and Python then never raises
        # KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.fixture
def chat(real_index_env: dict[str, str], tmp_path: Path) -> Iterator[pexpect.spawn]:
    """`rag chat` over the real index."""
    child = spawn_chat(real_index_env, tmp_path)
    yield child
    if child.isalive():
        child.terminate(force=True)


def turn(child: pexpect.spawn, line: str, last: str, times: int = 1) -> str:
    """Type a line, wait for the times-th match of its last output, then for the next prompt.

    Waiting for the prompt alone is not enough: prompt_toolkit redraws it while the line is typed.
    """
    child.sendline(line)
    text = ""
    for _ in range(times):
        child.expect(last)
        text += child.before + child.after
    child.expect_exact(PROMPT)
    return screen_text(text + child.before)


def test_question_follow_up_sources_open_and_ctrl_d(
    chat: pexpect.spawn, real_index_env: dict[str, str]
) -> None:
    chat.expect_exact(PROMPT)
    assert "answering with extractive" in screen_text(chat.before)

    first = turn(chat, "Where is the drone factory being built?", "answered by extractive")
    assert "Alabuga" in first or "Tatarstan" in first
    assert re.search(r"\[\d\] White House Says Iran Is Helping Russia Build a Drone Factory", first)
    assert "✓" in first

    follow_up = turn(chat, "and when will it be operational?", "answered by extractive")
    assert "searched for: when will it be operational?; is the drone factory" in follow_up
    assert "next year" in follow_up

    sources = turn(chat, "/sources", r"score \d", times=5)
    assert re.search(
        r"\[1\] .+ \(white-house-says-iran-helping-russia-build-drone-factory\.txt", sources
    )
    assert "✓ cited" in sources and "score" in sources

    opened = turn(chat, "/open 1", "characters")
    assert re.search(r"articles/[\w-]+\.txt, characters \d+–\d+", opened)
    assert "no longer holds" not in opened

    chat.sendintr()  # Ctrl-C at the prompt clears the line and keeps the chat going
    chat.expect_exact(PROMPT)
    assert "cancelled" not in screen_text(chat.before)
    # The prompt is drawn before prompt_toolkit is reading keys again; a Ctrl-D sent inside
    # that window is lost, so give the redraw a moment to settle.
    time.sleep(1.0)

    chat.sendcontrol("d")
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0

    history = Path(real_index_env["RAG_INDEX_DIR"]) / ".chat_history"
    assert "Where is the drone factory being built?" in history.read_text(encoding="utf-8")


def test_quit_command_and_piped_input(real_index_env: dict[str, str], tmp_path: Path) -> None:
    """Without a terminal (a pipe), rag chat reads plain lines and still answers."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(real_index_env, HOME=str(tmp_path), COLUMNS="200")
    result = subprocess.run(
        [str(RAG), "chat"],
        input="Where is the drone factory being built?\n/sources\n/quit\nnever asked\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = " ".join(result.stdout.split())
    assert "answered by extractive" in out and "score" in out
    assert out.count("answered by") == 1


def test_ctrl_c_cancels_a_streaming_answer(real_index_env: dict[str, str], tmp_path: Path) -> None:
    from tests.integration.test_openai_server import UNCITED, serve

    servers = serve(delay=0.5)
    server = next(servers)
    env = {**real_index_env, "RAG_OPENAI_BASE_URL": server.url}
    child = spawn_chat(env, tmp_path, "--llm", "openai:test-model")
    try:
        child.expect_exact(PROMPT)
        child.sendline("Where is the drone factory being built?")
        deadline = time.monotonic() + 120
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.requests, "the chat never called the LLM"
        # Ctrl-C once the answer is visibly streaming, as a user would, a couple of chunks
        # into a stream that takes several seconds.
        while server.chunks_sent < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        first = server.answers[0].split()[0]
        child.expect(re.escape(first), timeout=60)
        begun = child.before + child.after
        child.sendintr()
        child.expect_exact("cancelled")
        streamed = screen_text(begun + child.before)
        (answer,) = server.answers
        assert " ".join(answer.split()[:2]) in streamed  # the answer had begun to stream
        assert UNCITED not in streamed  # and stopped there
        child.expect_exact(PROMPT)
        assert "answered by" not in screen_text(child.before)
        child.sendline("/quit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert len(server.requests) == 1
    finally:
        if child.isalive():
            child.terminate(force=True)
        servers.close()
